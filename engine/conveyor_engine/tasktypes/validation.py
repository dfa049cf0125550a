"""Checks shared by the SDK and the worker: task type names, and validation errors worded
with the field they are about (``params.url: ...``, ``outputs.digest: ...``). Pure."""

from __future__ import annotations

import re

from pydantic import ValidationError

#: Task type names: lower-case letters, digits, ``-``, ``_`` and ``.`` (a team may prefix its
#: own, ``acme.checksum``), starting with a letter and ending with a letter or digit, at most
#: 63 characters. The Workflow CRD's ``tasks[].type`` has the same pattern.
TYPE_NAME_PATTERN = r"^[a-z]([-a-z0-9_.]{0,61}[a-z0-9])?$"
_TYPE_NAME_RE = re.compile(TYPE_NAME_PATTERN)


def check_type_name(name: object) -> str:
    """Return ``name`` when it is a valid task type name; else ``ValueError`` saying why."""
    if not isinstance(name, str) or not _TYPE_NAME_RE.match(name):
        raise ValueError(f"name: {name!r} is not a valid task type name (lower-case letters, "
                         f"digits, '-', '_' and '.', starting with a letter, at most 63)")
    return name


def describe_errors(exc: ValidationError, root: str) -> str:
    """``"<root>.<field>: <message>; ..."`` for every error of ``exc``."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        # Validators that name their field already ("duration: ...") are said once.
        message = message.removeprefix(f"{where}: ")
        parts.append(f"{root}.{where}: {message}" if where else f"{root}: {message}")
    return "; ".join(parts)

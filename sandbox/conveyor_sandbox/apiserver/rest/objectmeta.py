"""ObjectMeta validation common to every resource: name formats, label and annotation values."""

from __future__ import annotations

import re
from typing import Any

from .. import fielderrors, selectors
from ..fielderrors import FieldError
from ..registry import ResourceType
from .kinds import CRDS, NAMESPACES

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_DNS_1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def _metadata_errors(rtype: ResourceType, obj: dict[str, Any]) -> list[FieldError]:
    """ObjectMeta validation (apimachinery/pkg/api/validation/objectmeta.go), the common part."""
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    problems: list[FieldError] = []
    if not name:
        return [FieldError(fielderrors.REQUIRED, "metadata.name",
                           detail="name or generateName is required")]
    if rtype.storage_key == NAMESPACES:
        pattern, message, limit = _DNS_LABEL, _LABEL_MSG, 63
    elif rtype.storage_key == ("", "services"):
        pattern, message, limit = _DNS_1035, _DNS_1035_MSG, 63
    else:
        pattern, message, limit = _DNS_SUBDOMAIN, _SUBDOMAIN_MSG, 253
    if rtype.storage_key == CRDS:
        pattern = _DNS_SUBDOMAIN
    if len(name) > limit:
        problems.append(FieldError(fielderrors.INVALID, "metadata.name", name,
                                   f"must be no more than {limit} characters"))
    if not pattern.match(name):
        problems.append(FieldError(fielderrors.INVALID, "metadata.name", name, message))
    for key, value in (meta.get("labels") or {}).items():
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.append(FieldError(fielderrors.INVALID, "metadata.labels", value,
                                       _LABEL_VALUE_MSG))
        if not selectors.is_label_key(str(key)):
            problems.append(FieldError(fielderrors.INVALID, "metadata.labels", key,
                                       "name part must consist of alphanumeric characters, '-', "
                                       "'_' or '.'"))
    for key, value in (meta.get("annotations") or {}).items():
        if not isinstance(value, str):
            problems.append(FieldError(fielderrors.INVALID, f"metadata.annotations[{key}]",
                                       value, "annotation values must be strings"))
    return problems

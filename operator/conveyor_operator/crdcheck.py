"""Are the installed CRDs the ones this operator was built for? And: install them.

Helm installs a chart's CRDs once and never upgrades them, so after an upgrade the operator
may meet older CRDs (or, after a rollback, newer ones). At start it compares each CRD it
expects (``expected_crds()``: the package's copy of ``crds/``) with the cluster's:

- the ``conveyor.dev/crd-version`` label (bumped whenever a schema changes),
- the served versions (the operator's API version must be served),
- a hash of each served version's schema, subresources and printer columns (catches a CRD
  edited by hand, or a release that changed a schema and forgot the label).

:func:`crd_problems` is the pure comparison (a list of messages, each saying what to do);
:func:`check_installed_crds` reads the cluster; :func:`apply_crds` creates or replaces the
CRDs (the chart's pre-upgrade hook runs it as ``conveyor-operator crds apply``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from .resources import CRD_VERSION_LABEL, VERSION

#: Where expected CRDs are looked for, first found wins: shipped in the wheel, then the
#: repository checkout this module runs from (``operator/conveyor_operator/`` → ``crds/``).
CRD_DIRS = (Path(__file__).resolve().parent / "crds", Path(__file__).resolve().parents[2] / "crds")


def release() -> str:
    """This operator's release (the package version), for messages."""
    try:
        return importlib.metadata.version("conveyor")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - not installed
        return "this release"


def expected_crds(dirs: tuple[Path, ...] = CRD_DIRS) -> list[dict[str, Any]]:
    """The CRDs this operator expects, parsed from the first of ``dirs`` that has any.

    Raises ``FileNotFoundError`` naming the places looked in when none has CRDs.
    """
    for directory in dirs:
        files = sorted(directory.glob("*.yaml"))
        if files:
            return [yaml.safe_load(path.read_text()) for path in files]
    raise FileNotFoundError(f"no CRD files in {', '.join(str(d) for d in dirs)}")


def crd_version(crd: dict[str, Any]) -> str | None:
    """The ``conveyor.dev/crd-version`` label, or None."""
    return ((crd.get("metadata") or {}).get("labels") or {}).get(CRD_VERSION_LABEL)


def served_versions(crd: dict[str, Any]) -> set[str]:
    """Names of the API versions the CRD serves."""
    return {v["name"] for v in (crd.get("spec") or {}).get("versions", []) if v.get("served")}


def schema_hash(crd: dict[str, Any]) -> str:
    """sha256 over each served version's schema, subresources and printer columns.

    Canonical JSON (sorted keys, ``10.0`` as ``10``) so key order, YAML style and clients
    that type ``maximum`` as a float (kubernetes_asyncio) do not matter; fields the API
    server fills in with defaults (``priority`` of a column, ``conversion``) are left out.
    """
    versions = {}
    for version in (crd.get("spec") or {}).get("versions", []):
        if not version.get("served"):
            continue
        columns = [{k: v for k, v in column.items() if k != "priority" or v}
                   for column in version.get("additionalPrinterColumns") or []]
        versions[version["name"]] = {
            "schema": (version.get("schema") or {}).get("openAPIV3Schema"),
            "subresources": version.get("subresources") or {},
            "columns": columns,
        }
    canonical = json.dumps(_integral(versions), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _integral(value: Any) -> Any:
    """``value`` with every whole float turned into an int, recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def _fix() -> str:
    """What to do about any mismatch: install the CRDs of this operator's release."""
    return (f"apply the CRDs of Conveyor {release()}: `helm upgrade` (its hook applies them "
            f"first), or `kubectl apply --server-side --force-conflicts -f crds/` from release "
            f"{release()}")


def crd_problems(installed: list[dict[str, Any]], expected: list[dict[str, Any]]) -> list[str]:
    """Messages for each expected CRD that is missing or differs from the installed one.

    ``installed``/``expected``: CRD objects as dicts (``metadata.name``, ``metadata.labels``,
    ``spec.versions``), e.g. from ``kubectl get crd -o json`` and ``crds/*.yaml``. An empty
    list means the operator may start. Installed CRDs that are not expected are ignored.
    """
    by_name = {crd["metadata"]["name"]: crd for crd in installed}
    problems = []
    for want in expected:
        name = want["metadata"]["name"]
        needed = crd_version(want)
        have = by_name.get(name)
        if have is None:
            problems.append(f"CRD {name} is not installed; {_fix()}.")
            continue
        current = crd_version(have)
        if current != needed:
            shown = "unlabelled" if current is None else f"version {current}"
            problems.append(f"CRD {name} is {shown}, this operator needs version {needed}: "
                            f"{_fix()}.")
            continue
        if VERSION in served_versions(want) and VERSION not in served_versions(have):
            problems.append(f"CRD {name} does not serve {VERSION}, which this operator uses: "
                            f"{_fix()}.")
            continue
        if schema_hash(have) != schema_hash(want):
            problems.append(f"CRD {name} is labelled version {current} but its schema differs "
                            f"from this operator's (edited by hand?): {_fix()}.")
    return problems


async def check_installed_crds(api_client: client.ApiClient,
                               expected: list[dict[str, Any]] | None = None) -> list[str]:
    """Read each expected CRD by name (RBAC: ``get`` on customresourcedefinitions) and
    return :func:`crd_problems`. Other API errors (403, 5xx) propagate."""
    wanted = expected if expected is not None else expected_crds()
    api = client.ApiextensionsV1Api(api_client)
    installed = []
    for crd in wanted:
        try:
            found = await api.read_custom_resource_definition(crd["metadata"]["name"])
        except ApiException as exc:
            if exc.status == 404:
                continue
            raise
        installed.append(api_client.sanitize_for_serialization(found))
    return crd_problems(installed, wanted)


async def apply_crds(api_client: client.ApiClient,
                     crds: list[dict[str, Any]] | None = None) -> list[str]:
    """Create each CRD, or replace it (PUT) when it exists; return one line per CRD.

    Replacing, not merging: a field removed from a schema is removed from the cluster too.
    Labels and annotations others put on the installed CRD are kept (ours win).
    RBAC: ``get``, ``update`` (limitable by resourceNames) and ``create`` on CRDs.
    """
    api = client.ApiextensionsV1Api(api_client)
    done = []
    for crd in crds if crds is not None else expected_crds():
        name = crd["metadata"]["name"]
        try:
            current = api_client.sanitize_for_serialization(
                await api.read_custom_resource_definition(name))
        except ApiException as exc:
            if exc.status != 404:
                raise
            await api.create_custom_resource_definition(crd)
            done.append(f"created {name} (version {crd_version(crd)})")
            continue
        meta = current["metadata"]
        body = {**crd, "metadata": {
            **crd["metadata"],
            "resourceVersion": meta["resourceVersion"],
            "labels": {**(meta.get("labels") or {}), **(crd["metadata"].get("labels") or {})},
            "annotations": {**(meta.get("annotations") or {}),
                            **(crd["metadata"].get("annotations") or {})},
        }}
        await api.replace_custom_resource_definition(name, body)
        done.append(f"replaced {name} (version {crd_version(current)} -> {crd_version(crd)})")
    return done

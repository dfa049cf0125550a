"""Reading CRDs and manifests, and validating documents against a CRD's schema."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
EXAMPLES = ROOT / "examples"


def manifest(text: str) -> str:
    """An indented YAML block from a test, dedented for ``kubectl apply -f -``."""
    return textwrap.dedent(text).strip() + "\n"


def print_logs(workdir: Path, tail: int = 4000) -> None:
    """The end of every process log under ``workdir`` (pytest shows it when a test failed)."""
    for log in sorted(workdir.glob("*.log")):
        print(f"--- {log}\n{log.read_text(errors='replace')[-tail:]}")


def load_all(path: Path) -> list[dict[str, Any]]:
    """Every YAML document in ``path`` (a file), skipping empty ones."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def crds() -> dict[str, dict[str, Any]]:
    """The project's CRDs by kind."""
    found = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for doc in load_all(path):
            found[doc["spec"]["names"]["kind"]] = doc
    return found


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema from an OpenAPI v3 CRD schema that rejects unknown fields.

    The API server prunes unknown fields silently; a test should hear about them instead,
    so objects with ``properties`` get ``additionalProperties: false`` unless marked
    ``x-kubernetes-preserve-unknown-fields``.
    """
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: strict(v) for k, v in out["properties"].items()}
        if not out.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
    if "items" in out:
        out["items"] = strict(out["items"])
    return out


def validator(kind: str, *, part: str | None = None) -> jsonschema.Draft7Validator:
    """A validator for ``kind`` (or its ``spec``/``status`` part) from its CRD."""
    schema = crds()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    if part:
        schema = schema["properties"][part]
    return jsonschema.Draft7Validator(strict(schema),
                                      format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def schema_errors(kind: str, document: dict[str, Any], *, part: str | None = None) -> list[str]:
    """Readable schema violations of ``document`` (empty when it is valid)."""
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator(kind, part=part).iter_errors(document)]

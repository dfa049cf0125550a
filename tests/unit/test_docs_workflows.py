"""Every complete Workflow manifest shown in docs/ compiles (as kubectl would read it: YAML
1.1, so an unquoted ``n`` or ``on`` key would arrive as a boolean), so a reader who copies
an example gets a working one. Fragments (no ``tasks``, or ``tasks: [...]``) are skipped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conveyor_engine.compiler import compile_workflow
from conveyor_operator.resources.workflow import workflow_spec

DOCS = Path(__file__).resolve().parents[2] / "docs"
_BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)


class Yaml11Loader(yaml.SafeLoader):
    """PyYAML with the whole YAML 1.1 boolean set (``y``/``n`` too), as kubectl's go-yaml
    reads a manifest: PyYAML alone leaves ``n`` a string and would hide the trap."""


Yaml11Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Yaml11Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE"
               r"|on|On|ON|off|Off|OFF)$"),
    list("yYnNtTfFoO"))
Yaml11Loader.add_constructor(
    "tag:yaml.org,2002:bool",
    lambda loader, node: loader.construct_scalar(node).lower() in ("y", "yes", "true", "on"))


def documented_workflows() -> list[tuple[str, str, dict]]:
    """``(page, workflow name, spec)`` of each complete Workflow in a yaml block."""
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for block in _BLOCK.findall(page.read_text()):
            try:
                documents = list(yaml.load_all(block, Loader=Yaml11Loader))
            except yaml.YAMLError:
                continue  # a fragment with placeholders, not a manifest
            for doc in documents:
                if not (isinstance(doc, dict) and doc.get("kind") == "Workflow"
                        and isinstance(doc.get("spec"), dict)):
                    continue
                tasks = doc["spec"].get("tasks")
                if not tasks or not all(isinstance(t, dict) for t in tasks):
                    continue  # a fragment: "tasks: [...]" or only the fields discussed
                name = (doc.get("metadata") or {}).get("name", "?")
                # What the operator hands the engine (its own keys removed).
                found.append((page.name, name, workflow_spec(doc)))
    return found


WORKFLOWS = documented_workflows()


def test_the_docs_show_workflows() -> None:
    assert len(WORKFLOWS) >= 4, WORKFLOWS


@pytest.mark.parametrize(("page", "name", "spec"), WORKFLOWS,
                         ids=[f"{p}:{n}" for p, n, _ in WORKFLOWS])
def test_each_documented_workflow_compiles(page: str, name: str, spec: dict) -> None:
    compile_workflow(f"docs/{name}", spec)

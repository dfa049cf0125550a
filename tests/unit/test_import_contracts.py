"""The import contract that keeps the emulated API server apart names every other part of
conveyor_sandbox: import-linter cannot forbid a package's siblings without listing them, so
a new module must not slip past the rule unnoticed."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import conveyor_sandbox

ROOT = Path(__file__).resolve().parents[2]


def test_the_apiserver_contract_forbids_every_sibling_module() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"]
                    if c["source_modules"] == ["conveyor_sandbox.apiserver"])
    siblings = {f"conveyor_sandbox.{m.name}" for m in pkgutil.iter_modules(
        conveyor_sandbox.__path__) if m.name != "apiserver"}
    assert siblings, "conveyor_sandbox has no modules besides apiserver?"
    missing = siblings - set(contract["forbidden_modules"])
    assert not missing, f"add to the apiserver contract in pyproject.toml: {sorted(missing)}"
    assert {"conveyor_engine", "conveyor_operator"} <= set(contract["forbidden_modules"])

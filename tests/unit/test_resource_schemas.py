"""Each resource model and its CRD's ``openAPIV3Schema`` name the same fields.

The walk goes through ``spec`` and ``status`` of every resource, field by field (by the
camelCase name on the wire). A field present on one side and not the other fails the test, and
so does a field required on one side and optional on the other. Nested models are walked
wherever they sit: a model field, a list's items, a dict's values, an optional.

Engine-owned structures are compared like the operator's own: ``Workflow.spec`` is the engine's
:class:`conveyor_engine.model.WorkflowSpec`, and its inputs, tasks and retry policy are walked
field by field against the CRD, since the CRD is their only schema on the API server.

Where the walk stops: a schema node with ``x-kubernetes-preserve-unknown-fields`` and no
``properties`` (free-form data: a task's ``params``, an input's ``default``, a pool's
``resources``) or with ``additionalProperties`` (a map) matches a model's ``dict``/``Any``;
nothing beneath them is compared. ``apiVersion``, ``kind`` and ``metadata`` are checked to be
present on both sides only: Kubernetes, not these models, owns their shape.
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel, Field

from conveyor_engine.phases import ExecutionPhase, TaskPhase
from conveyor_operator.resources import (
    ExecutionResource,
    ScheduleResource,
    WorkerPoolResource,
    WorkflowResource,
)

CRDS = Path(__file__).resolve().parents[2] / "crds"
RESOURCES: dict[str, type[BaseModel]] = {
    "workflows.conveyor.dev.yaml": WorkflowResource,
    "executions.conveyor.dev.yaml": ExecutionResource,
    "workerpools.conveyor.dev.yaml": WorkerPoolResource,
    "schedules.conveyor.dev.yaml": ScheduleResource,
}
#: Walked field by field; the other top-level fields are Kubernetes' own.
WALKED = ("spec", "status")
TOP = {"apiVersion", "kind", "metadata", *WALKED}


def crd_schema(file: str) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of the CRD's one version."""
    crd = yaml.safe_load((CRDS / file).read_text())
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def _unwrap(annotation: Any) -> Any:
    """``X`` of ``X | None`` (and of ``Optional[X]``); anything else unchanged."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _fields(model: type[BaseModel]) -> dict[str, tuple[Any, bool]]:
    """Wire name -> (annotation, required) of each field of ``model``."""
    return {(info.alias or name): (info.annotation, info.is_required())
            for name, info in model.model_fields.items()}


def _free_form(schema: dict[str, Any]) -> bool:
    """A schema node whose contents the CRD leaves open (a map or preserved unknown fields)."""
    return "properties" not in schema and (
        bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        or "additionalProperties" in schema)


def differences(annotation: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Where ``annotation`` (a model, a list or dict of one, or a plain type) and the schema
    node ``schema`` disagree about fields, as ``path: what`` lines (empty when in step)."""
    annotation = _unwrap(annotation)
    origin = get_origin(annotation)
    if origin is list:
        if schema.get("type") != "array":
            return [f"{path}: a list in the model, {schema.get('type')!r} in the CRD"]
        return differences(get_args(annotation)[0], schema.get("items") or {}, f"{path}[]")
    if origin is dict:
        if "properties" in schema:
            return [f"{path}: a free-form dict in the model, fields "
                    f"{sorted(schema['properties'])} in the CRD"]
        values = schema.get("additionalProperties")
        if isinstance(values, dict):
            return differences(get_args(annotation)[1], values, f"{path}{{}}")
        return []
    if not _is_model(annotation):
        if "properties" in schema:
            return [f"{path}: {annotation!r} in the model, fields "
                    f"{sorted(schema['properties'])} in the CRD"]
        return []
    if _free_form(schema):
        return [f"{path}: model {annotation.__name__} has fields, the CRD leaves it free-form"]
    fields = _fields(annotation)
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    where = f"{path}." if path else ""
    found = [f"{where}{name}: in the model, not in the CRD"
             for name in sorted(set(fields) - set(properties))]
    found += [f"{where}{name}: in the CRD, not in the model"
              for name in sorted(set(properties) - set(fields))]
    for name in sorted(set(fields) & set(properties)):
        field_type, model_required = fields[name]
        if model_required != (name in required):
            found.append(f"{where}{name}: required in the "
                         f"{'model' if model_required else 'CRD'} only")
        found += differences(field_type, properties[name], f"{path}.{name}" if path else name)
    return found


def resource_differences(model: type[BaseModel], schema: dict[str, Any]) -> list[str]:
    """:func:`differences` of a resource: its top-level fields present on both sides,
    ``spec`` and ``status`` walked."""
    fields, properties = _fields(model), schema["properties"]
    found = [f"{name}: missing in the {side}" for side, names in
             (("model", set(fields)), ("CRD", set(properties))) for name in sorted(TOP - names)]
    for name in WALKED:
        if name in fields and name in properties:
            field_type, model_required = fields[name]
            if model_required != (name in (schema.get("required") or [])):
                found.append(f"{name}: required in the "
                             f"{'model' if model_required else 'CRD'} only")
            found += differences(field_type, properties[name], name)
    return found


@pytest.mark.parametrize("file", sorted(RESOURCES))
def test_model_and_crd_name_the_same_fields(file: str) -> None:
    assert resource_differences(RESOURCES[file], crd_schema(file)) == []


# -- The walk itself, on small models: each kind of drift is caught. --

class _Leaf(BaseModel):
    name: str
    size: int | None = None


class _Tree(BaseModel):
    leaf: _Leaf | None = None
    leaves: list[_Leaf] = Field(default_factory=list)
    by_name: dict[str, _Leaf] = Field(default_factory=dict, alias="byName")
    free: dict[str, Any] = Field(default_factory=dict)


def _leaf() -> dict[str, Any]:
    return {"type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}, "size": {"type": "integer"}}}


TREE = {"type": "object", "properties": {
    "leaf": _leaf(),
    "leaves": {"type": "array", "items": _leaf()},
    "byName": {"type": "object", "additionalProperties": _leaf()},
    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
}}


def _with(schema: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    """A deep copy of ``schema`` with the key at ``path`` set to ``value`` (None deletes)."""
    copy = json.loads(json.dumps(schema))
    node = copy
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return copy


class _Alias(BaseModel):
    by_name: dict[str, _Leaf] = Field(default_factory=dict, alias="byName")


@pytest.mark.parametrize(("schema", "expected"), [
    pytest.param(TREE, [], id="in-step"),
    pytest.param(_with(TREE, ["properties", "leaf", "properties", "size"], None),
                 ["leaf.size: in the model, not in the CRD"], id="nested-field-missing-in-crd"),
    pytest.param(_with(TREE, ["properties", "leaves", "items", "properties", "colour"],
                       {"type": "string"}),
                 ["leaves[].colour: in the CRD, not in the model"], id="list-item-field-extra"),
    pytest.param(_with(TREE, ["properties", "leaf", "required"], ["name", "size"]),
                 ["leaf.size: required in the CRD only"], id="required-differs"),
    pytest.param(_with(TREE, ["properties", "free", "properties"], {"a": {"type": "string"}}),
                 ["free: a free-form dict in the model, fields ['a'] in the CRD"],
                 id="crd-gives-fields-to-a-free-form-dict"),
    pytest.param(_with(TREE, ["properties", "leaf"],
                       {"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
                 ["leaf: model _Leaf has fields, the CRD leaves it free-form"],
                 id="crd-free-form-where-model-has-fields"),
    pytest.param(_with(TREE, ["properties", "leaves"], {"type": "object"}),
                 ["leaves: a list in the model, 'object' in the CRD"], id="list-vs-object"),
])
def test_the_walk_catches_each_drift(schema: dict[str, Any], expected: list[str]) -> None:
    assert differences(_Tree, schema, "") == expected


def test_the_walk_descends_into_map_values() -> None:
    schema = {"type": "object", "properties": {
        "byName": {"type": "object", "additionalProperties": {"type": "object", "properties": {
            "name": {"type": "string"}}, "required": ["name"]}}}}
    assert differences(_Alias, schema, "") == ["byName{}.size: in the model, not in the CRD"]


@pytest.mark.parametrize(("file", "path", "expected"), [
    pytest.param("workflows.conveyor.dev.yaml",
                 ["properties", "spec", "properties", "tasks", "items", "properties", "retry",
                  "properties", "factor"],
                 "spec.tasks[].retry.factor: in the model, not in the CRD",
                 id="engine-task-language"),
    pytest.param("executions.conveyor.dev.yaml",
                 ["properties", "status", "properties", "tasks", "items", "properties",
                  "attempts"],
                 "status.tasks[].attempts: in the model, not in the CRD", id="execution-status"),
    pytest.param("workerpools.conveyor.dev.yaml",
                 ["properties", "spec", "properties", "redis", "properties", "urlSecretRef",
                  "properties", "key"],
                 "spec.redis.urlSecretRef.key: in the model, not in the CRD",
                 id="workerpool-spec"),
    pytest.param("workerpools.conveyor.dev.yaml",
                 ["properties", "status", "properties", "conditions", "items", "properties",
                  "observedGeneration"],
                 "status.conditions[].observedGeneration: in the model, not in the CRD",
                 id="conditions"),
    pytest.param("schedules.conveyor.dev.yaml",
                 ["properties", "status", "properties", "lastOutcome", "properties",
                  "scheduledTime"],
                 "status.lastOutcome.scheduledTime: in the model, not in the CRD",
                 id="schedule-status"),
])
def test_the_walk_reaches_every_level_of_the_real_crds(file: str, path: list[str],
                                                       expected: str) -> None:
    """Removing a deep field from a real CRD is noticed (the walk goes all the way down)."""
    assert resource_differences(RESOURCES[file], _with(crd_schema(file), path, None)) == [
        expected]


def _status_property(file: str, *path: str) -> dict[str, Any]:
    node = crd_schema(file)["properties"]["status"]
    for key in path:
        node = node[key]
    return node


def test_crd_phase_enums_are_the_engine_phases() -> None:
    """``status.phase`` and ``status.tasks[].phase`` allow exactly the engine's phases."""
    file = "executions.conveyor.dev.yaml"
    assert _status_property(file, "properties", "phase")["enum"] == list(ExecutionPhase)
    assert _status_property(file, "properties", "tasks", "items", "properties", "phase")[
        "enum"] == list(TaskPhase)

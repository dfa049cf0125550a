"""The workflow compiler: a :class:`~conveyor_engine.model.WorkflowSpec` checked and turned
into a DAG. Pure: no I/O (an import-linter contract keeps it so).

Modules, each with one job:

- :mod:`.compile_pass`: :func:`compile_workflow`, the checks and the content hash;
- :mod:`.compiled`: :class:`CompiledWorkflow` and :class:`CompiledTask`, what it produces;
- :mod:`.problems`: :class:`Problem`, :class:`WorkflowInvalid`, :class:`InvalidInputs` and
  the wording of every message;
- :mod:`.pools`: :class:`PoolFacts` (what pools advertise and mount) and the checks made
  with them, :class:`TaskTypesUnavailable` (a workflow that waits for a pool's workers);
- :mod:`.outputs`: a workflow's declared ``outputs``, checked and evaluated;
- :mod:`.subworkflows`: ``workflow`` tasks: the child's name, and the checks made with
  :class:`WorkflowFacts` (recursion, unknown child, its inputs);
- :mod:`.graph`: cycle detection, topological order, transitive up- and downstream.

Import from the package (``from conveyor_engine.compiler import compile_workflow``); the
module layout is free to change.
"""

from .compile_pass import STRICT_ONLY, canonical_json, compile_workflow
from .compiled import CompiledTask, CompiledWorkflow
from .outputs import OUTPUTS_FAILED, OutputsFailed
from .pools import PoolFacts, TaskTypesUnavailable, Unavailable
from .problems import YAML_BOOLEAN_HINT, InvalidInputs, Problem, WorkflowInvalid
from .subworkflows import (
    WORKFLOW_TYPE,
    ChildWorkflowsNotFound,
    WorkflowFacts,
    child_name,
    facts_of,
    facts_of_raw,
)

__all__ = [
    "OUTPUTS_FAILED",
    "STRICT_ONLY",
    "WORKFLOW_TYPE",
    "YAML_BOOLEAN_HINT",
    "ChildWorkflowsNotFound",
    "CompiledTask",
    "CompiledWorkflow",
    "InvalidInputs",
    "OutputsFailed",
    "PoolFacts",
    "Problem",
    "TaskTypesUnavailable",
    "Unavailable",
    "WorkflowFacts",
    "WorkflowInvalid",
    "canonical_json",
    "child_name",
    "compile_workflow",
    "facts_of",
    "facts_of_raw",
]

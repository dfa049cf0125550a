"""The task SDK: what a team imports to write its own task types (docs/task-types.md).

```python
from pydantic import BaseModel
from conveyor_engine.sdk import RetryableError, TaskContext, task_type

class Params(BaseModel):
    text: str

@task_type(name="word-count", params=Params)
def word_count(params: Params, ctx: TaskContext) -> dict:
    return {"words": len(params.text.split())}
```

Publish it as an entry point of the group ``conveyor.tasktypes`` in the package's
``pyproject.toml`` (``word-count = "my_tasks.words:word_count"``); every worker with the
package installed loads it at start. Test it with :class:`conveyor_engine.sdk.testing.
TaskEnvironment`, no servers needed.

Exports: :func:`task_type` (the decorator), :class:`TaskType` (the base class, for a type
written as a class, as the built-ins are), :class:`TaskContext` (what a function receives),
the errors :class:`RetryableError`, :class:`NonRetryableError`, :class:`TaskError` and
:class:`TaskCancelled`, the outcomes :class:`Succeeded`, :class:`Failed` and
:class:`Suspended` (a function may return one), and :data:`ENTRY_POINT_GROUP`.
"""

from __future__ import annotations

from ..tasktypes.base import Failed, Succeeded, Suspended, TaskContext, TaskType
from ..tasktypes.errors import NonRetryableError, RetryableError, TaskCancelled, TaskError
from ..tasktypes.function import FunctionTaskType, task_type
from ..tasktypes.registry import ENTRY_POINT_GROUP

__all__ = [
    "ENTRY_POINT_GROUP",
    "Failed",
    "FunctionTaskType",
    "NonRetryableError",
    "RetryableError",
    "Succeeded",
    "Suspended",
    "TaskCancelled",
    "TaskContext",
    "TaskError",
    "TaskType",
    "task_type",
]

"""The ``set`` task type: outputs are its own (rendered) params.

It does no I/O. Workflows use it to shape data between tasks, for example to pick a few
fields out of a large response or to name a computed value once.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from .base import Outcome, Succeeded, TaskContext, TaskType


class SetParams(BaseModel):
    """Any keys with any JSON values; no key is required or reserved."""

    model_config = ConfigDict(extra="allow", frozen=True)


class SetTask(TaskType):
    """Return the params, as rendered, as the task's outputs.

    Outputs: a dict with exactly the keys and values given in ``params`` (a deep copy, so
    later changes to either side do not leak). Never fails: params are already rendered
    and validated, and there is nothing else to go wrong.
    """

    name: ClassVar[str] = "set"
    Params: ClassVar[type[BaseModel]] = SetParams

    async def run(self, params: BaseModel, ctx: TaskContext) -> Outcome:
        return Succeeded(params.model_dump())

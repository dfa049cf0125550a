"""The ``set`` task type: outputs are its own (rendered) params.

It does no I/O. Workflows use it to shape data between tasks, for example to pick a few
fields out of a large response or to name a computed value once.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from ..outputs import json_size, largest_key
from .base import Failed, Outcome, Succeeded, TaskContext, TaskType


class SetParams(BaseModel):
    """Any keys with any JSON values; no key is required or reserved."""

    model_config = ConfigDict(extra="allow", frozen=True)


class SetTask(TaskType):
    """Return the params, as rendered, as the task's outputs.

    Outputs: a dict with exactly the keys and values given in ``params`` (a deep copy, so
    later changes to either side do not leak). Fails, not retryable (the same params
    render the same way), when the outputs serialised as JSON are larger than
    ``resources.max_output_bytes`` (``CONVEYOR_MAX_OUTPUT_BYTES``): the message names the
    size, the limit and the largest key.
    """

    name: ClassVar[str] = "set"
    Params: ClassVar[type[BaseModel]] = SetParams

    async def run(self, params: BaseModel, ctx: TaskContext) -> Outcome:
        outputs = params.model_dump()
        size, cap = json_size(outputs), ctx.resources.max_output_bytes
        if size > cap:
            key, key_size = largest_key(outputs) or ("", 0)
            return Failed(f"outputs are {size} bytes as JSON, more than the limit of {cap} "
                          f"bytes per task (CONVEYOR_MAX_OUTPUT_BYTES); the largest is "
                          f"params.{key} ({key_size} bytes)", retryable=False)
        return Succeeded(outputs)

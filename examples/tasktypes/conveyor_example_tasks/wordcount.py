"""``word-count``: a plain (non-async) task type; the worker runs it in a thread.

Params: ``text`` (required), ``top`` (how many most frequent words to list, default 3,
0 to 100). Outputs: ``words``, ``lines``, ``characters``, ``top`` (a list of
``{"word", "count"}``, most frequent first, ties in alphabetical order). Words are
case-folded runs of letters, digits and apostrophes.
"""

from __future__ import annotations

import re
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

from conveyor_engine.sdk import NonRetryableError, TaskContext, task_type

_WORD = re.compile(r"[\w']+")
#: Lines counted between checks of the cancellation flag.
_CHECK_EVERY = 10_000


class WordCountParams(BaseModel):
    """The text to count."""

    model_config = ConfigDict(extra="forbid")

    text: str
    top: int = Field(3, ge=0, le=100)


class WordCount(BaseModel):
    """One word and how often it occurs."""

    word: str
    count: int


class WordCountOutputs(BaseModel):
    """Counts of ``text``."""

    words: int
    lines: int
    characters: int
    top: list[WordCount]


@task_type(name="word-count", params=WordCountParams, outputs=WordCountOutputs)
def word_count(params: WordCountParams, ctx: TaskContext) -> dict:
    """Count words, lines and characters; checks ``ctx`` for cancellation as it goes.

    Raises :class:`NonRetryableError` for a text with no words at all when ``top`` asks for
    some: the same text would fail the same way again.
    """
    counts: Counter[str] = Counter()
    lines = params.text.splitlines()
    for number, line in enumerate(lines, 1):
        counts.update(word.casefold() for word in _WORD.findall(line))
        if number % _CHECK_EVERY == 0:
            ctx.raise_if_cancelled()
            ctx.heartbeat({"lines": number})
    if params.top and not counts:
        raise NonRetryableError("text: has no words to rank (set top: 0 to count anyway)")
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:params.top]
    return {"words": sum(counts.values()), "lines": len(lines),
            "characters": len(params.text),
            "top": [{"word": word, "count": count} for word, count in ranked]}

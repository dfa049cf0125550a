"""The vocabulary of expressions: the variables, fields, macros and functions they may use,
the ``${{ }}`` delimiters of templates, and the bound on expression length."""

from __future__ import annotations

#: The top-level variables of every expression. ``secrets`` (``secrets.NAME.KEY``) holds the
#: Secrets the task's pool mounts; it is given values only on the worker, when params are
#: rendered, and a rendered value holding one is never stored (issue 11 item 4).
ROOTS = frozenset({"inputs", "tasks", "execution", "task", "secrets"})
#: What ``tasks.NAME`` holds: ``error`` is its last attempt's error text (null unless it
#: failed; read it after a ``continueOn.failed`` task or in a handler).
TASK_FIELDS = frozenset({"outputs", "phase", "error"})
#: What ``execution`` holds: ``startedAt`` (a CEL timestamp: when the run was submitted)
#: and ``scheduledTime`` (a timestamp: the Schedule tick that created it; null otherwise);
#: ``phase``, ``reason`` and ``failedTasks`` (the main tasks' outcome) only in
#: ``onFailure``/``finally`` tasks (:mod:`conveyor_engine.handlers`).
EXECUTION_FIELDS = frozenset({"id", "workflow", "startedAt", "scheduledTime", "phase",
                              "reason", "failedTasks"})
#: What ``task`` (the task being run) holds.
SELF_FIELDS = frozenset({"name", "attempt"})
#: Comprehension macros of the CEL spec (``e.map(x, ...)`` binds ``x``).
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
#: Named functions the CEL runtime itself provides (CEL spec "standard definitions", as
#: implemented by cel-rust); the extension libraries are in :mod:`.functions`. Checked
#: before a workflow is accepted so a typo fails at apply time, not in the middle of an
#: execution. Operators (``_+_``, ``@in`` ...) are not listed.
FUNCTIONS = frozenset(
    {
        "size", "contains", "startsWith", "endsWith", "matches",
        "int", "uint", "double", "string", "bytes", "timestamp", "duration", "dyn", "type",
        "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear",
        "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    }
)  # fmt: skip
#: Longest accepted expression. CEL has no loops, but comprehensions nest, so evaluation
#: cost grows with text; a bound keeps one manifest from monopolising a worker.
MAX_EXPRESSION_CHARS = 4096

OPEN = "${{"
CLOSE = "}}"
_ESCAPED_OPEN = "$" + OPEN

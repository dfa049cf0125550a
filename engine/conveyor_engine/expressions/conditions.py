"""Conditions: bare CEL expressions that decide something (a task's ``when``), which must
evaluate to a bool."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .compiled import Expression, _expression
from .errors import ExpressionError, _Invalid
from .language import OPEN
from .reads import select
from .templates import _split
from .values import _type_name, to_json_value, to_text


class Condition:
    """A compiled bare CEL expression that decides something (a task's ``when``).

    Attributes as on :class:`Template`: ``field``, ``source``, ``expression``,
    ``references``, ``roots``, ``inputs``.
    """

    __slots__ = ("_reads", "expression", "field", "inputs", "references", "roots", "source")

    def __init__(self, source: str, expression: Expression):
        self.source = source
        self.field = expression.field
        self.expression = expression
        self._reads = expression._reads
        self.references = expression.references
        self.roots = expression.roots
        self.inputs = expression.inputs

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        """Evaluate against the runtime context.

        Raises :class:`ExpressionError` when evaluation fails or the result is not a bool
        (CEL has no truthiness: ``1`` or ``'yes'`` are errors, not true).
        """
        value = self.expression.evaluate(select(context, self._reads))
        if value is True or value is False:
            return value
        raise ExpressionError(
            self.field,
            f"must evaluate to true or false, but {self.expression.text!r} gave "
            f"{_type_name(value)} {to_text(to_json_value(value))[:60]}",
        )

    def __repr__(self) -> str:
        return f"Condition({self.field}: {self.expression.text!r})"


def compile_condition(expr: str, field: str = "when", *,
                      check_constant: bool = True) -> Condition:
    """Compile a bare CEL expression such as ``inputs.env == 'prod'``.

    A condition wholly wrapped as one template (``${{ inputs.dryRun }}``) is accepted too,
    as in GitHub Actions' ``if:``: ``$`` is not CEL, so the wrapping cannot change meaning.
    Raises :class:`ExpressionError` naming ``field`` for the problems
    :func:`compile_template` reports, and for a constant condition (one that reads no
    variable) that is not a bool. Whether a condition that reads inputs or task outputs
    gives a bool is known only at run time (CEL has no static types for them here).
    """
    if not isinstance(expr, str):
        raise ExpressionError(field, f"must be a CEL expression string, not {_type_name(expr)}")
    text = expr.strip()
    if OPEN in text:
        try:
            parts, is_expr = _split(text)
        except _Invalid as exc:
            raise ExpressionError(field, str(exc)) from None
        around = "".join(p for p, e in zip(parts, is_expr, strict=True) if not e)
        if sum(is_expr) != 1 or around.strip():
            raise ExpressionError(field, "a condition is one bare CEL expression, without ${{ }}")
        text = next(p for p, e in zip(parts, is_expr, strict=True) if e)
    if not text:
        raise ExpressionError(field, "empty expression")
    condition = Condition(expr, _expression(text, field))
    if check_constant and not condition.roots:
        # A condition that reads nothing is a constant: a non-bool ('yes', 1) is a mistake
        # that can be reported now instead of failing the task at run time.
        condition.evaluate({})
    return condition

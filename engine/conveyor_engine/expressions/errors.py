"""What goes wrong with expressions: :class:`ExpressionError` for callers, and the
field-less problem raised while analysing an expression's text."""

from __future__ import annotations


class ExpressionError(ValueError):
    """An expression that does not parse, refers to what it may not, or fails to evaluate.

    ``field`` is the dotted path of the string holding it (``params.headers.Authorization``,
    ``when``); ``message`` says what is wrong; ``str()`` is ``"<field>: <message>"``.
    ``errors`` holds every problem found by the same compile call (this one first), so a
    caller can report them all at once.
    """

    def __init__(self, field: str, message: str, *, others: tuple[ExpressionError, ...] = ()):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.errors: tuple[ExpressionError, ...] = (self, *others)


class _Invalid(Exception):
    """A problem with an expression's text, before a field is known."""

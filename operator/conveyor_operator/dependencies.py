"""Which failures mean "a store is unreachable" (Redis or PostgreSQL), and how soon to retry.

Pure: exceptions are classified by type and module name, so this module imports neither
redis-py nor asyncpg. A handler that fails for such a reason is retried soon (a short
exponential backoff) instead of after kopf's default 60 s, and says so on status.
"""

from __future__ import annotations

#: Exception classes of the store clients that mean the server could not be reached or
#: the connection broke (redis-py's ``ConnectionError``/``TimeoutError``/``BusyLoadingError``,
#: asyncpg's connection errors and "cannot connect now" while PostgreSQL starts).
_CLIENT_ERRORS = {
    ("redis", "ConnectionError"), ("redis", "TimeoutError"), ("redis", "BusyLoadingError"),
    ("redis", "ReadOnlyError"), ("redis", "MasterDownError"),
    ("asyncpg", "ConnectionDoesNotExistError"), ("asyncpg", "InterfaceError"),
    ("asyncpg", "PostgresConnectionError"), ("asyncpg", "CannotConnectNowError"),
    ("asyncpg", "ConnectionFailureError"), ("asyncpg", "AdminShutdownError"),
    ("asyncpg", "TooManyConnectionsError"),
}


def store_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says Redis or PostgreSQL could not be reached:
    an ``OSError``/``TimeoutError`` (refused, reset, unreachable) or a client error above."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError | TimeoutError | ConnectionError):
            return True
        for cls in type(current).__mro__:
            root = cls.__module__.split(".", 1)[0]
            if (root, cls.__name__) in _CLIENT_ERRORS:
                return True
        current = current.__cause__ or current.__context__
    return False


def retry_delay(retry: int, *, first: float = 0.5, cap: float = 5.0) -> float:
    """Seconds before retry number ``retry`` + 1 (``retry`` counts the retries so far, as
    kopf's ``retry`` argument): ``first``, doubling, at most ``cap``."""
    return min(first * 2 ** max(retry, 0), cap)

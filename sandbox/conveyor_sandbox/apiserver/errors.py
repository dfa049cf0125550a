"""API errors answered as ``kind: Status`` objects, worded like the API server's.

Each constructor mirrors one of k8s.io/apimachinery/pkg/api/errors (NewNotFound,
NewAlreadyExists, NewConflict, NewInvalid, NewBadRequest, ...), so clients classify them by
``reason``/``code`` (kopf by code, kubectl by reason: ``Error from server (NotFound): ...``).
The ``Status`` shape is the API conventions' one:
https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import fielderrors


class ApiError(Exception):
    """An error that the server answers with a ``Status`` body and the given HTTP code.

    ``status`` (also ``code``) is the HTTP status, ``reason`` the ``StatusReason`` (``NotFound``,
    ``Conflict``...), ``details`` the optional ``StatusDetails`` mapping.
    """

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(code, reason, message)
        self.status = code
        self.reason = reason
        self.message = message
        self.details = details

    @property
    def code(self) -> int:
        return self.status

    def to_status(self) -> dict[str, Any]:
        """The ``Status`` object (apiVersion v1) for the response body or a watch ERROR event."""
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.status,
        }
        if self.details:
            status["details"] = self.details
        return status

    def __str__(self) -> str:
        return f"{self.status} {self.reason}: {self.message}"


def qualified_resource(group: str, plural: str) -> str:
    """``GroupResource.String()``: ``widgets.test.conveyor.dev`` or ``pods`` for the core."""
    return f"{plural}.{group}" if group else plural


def qualified_kind(group: str, kind: str) -> str:
    """``GroupKind.String()``: ``Widget.test.conveyor.dev`` or ``Pod`` for the core."""
    return f"{kind}.{group}" if group else kind


def _details(group: str, kind_or_plural: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind_or_plural
    return details


def not_found(group: str, plural: str, name: str) -> ApiError:
    """404 ``widgets.test.conveyor.dev "x" not found``."""
    return ApiError(
        404,
        "NotFound",
        f'{qualified_resource(group, plural)} "{name}" not found',
        _details(group, plural, name),
    )


def resource_not_found() -> ApiError:
    """404 for an unknown URL or resource (what the server's mux answers)."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(group: str, plural: str, name: str) -> ApiError:
    """409 AlreadyExists on a duplicate create."""
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified_resource(group, plural)} "{name}" already exists',
        _details(group, plural, name),
    )


def conflict(group: str, plural: str, name: str, why: str) -> ApiError:
    """409 Conflict, e.g. a stale resourceVersion on update (optimistic concurrency)."""
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified_resource(group, plural)} "{name}": {why}',
        _details(group, plural, name),
    )


STALE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def invalid(
    group: str, kind: str, name: str, errors: Sequence[fielderrors.FieldError]
) -> ApiError:
    """422 Invalid with one cause per field error (``errors.NewInvalid``)."""
    details = _details(group, kind, name)
    details["causes"] = [error.cause() for error in errors]
    message = f'{qualified_kind(group, kind)} "{name}" is invalid: {fielderrors.aggregate(errors)}'
    return ApiError(422, "Invalid", message, details)


def unprocessable(cause: str) -> ApiError:
    """422 without field causes (``NewGenericServerResponse(422, ...)``), e.g. a JSON patch whose
    ``test`` operation failed; kopf treats 422 as "retry on the next cycle"."""
    return ApiError(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        {"causes": [{"reason": "UnexpectedServerResponse", "message": cause}]},
    )


def bad_request(message: str) -> ApiError:
    """400 BadRequest (malformed bodies, mismatched names, unknown selectors...)."""
    return ApiError(400, "BadRequest", message, {})


def forbidden(group: str, plural: str, name: str, why: str) -> ApiError:
    """403 Forbidden, e.g. creating objects in a namespace that is being deleted."""
    target = f'{qualified_resource(group, plural)} "{name}"' if name else (
        qualified_resource(group, plural)
    )
    return ApiError(403, "Forbidden", f"{target} is forbidden: {why}",
                    _details(group, plural, name))


def method_not_allowed() -> ApiError:
    """405 for a verb the resource does not support."""
    return ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
        {},
    )


def unsupported_media_type(content_type: str, accepted: Sequence[str]) -> ApiError:
    """415 for a PATCH content type the resource does not accept."""
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)}",
        {},
    )


def gone(message: str) -> ApiError:
    """410 Expired: a watch asked for a resourceVersion older than the retained history."""
    return ApiError(410, "Expired", message, {})


def internal(message: str) -> ApiError:
    """500 InternalError: a bug in the sandbox (it is reported, never hidden)."""
    return ApiError(
        500, "InternalError", f"Internal error occurred: {message}", {"causes": [
            {"message": message}
        ]},
    )

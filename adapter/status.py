"""The Kubernetes ``Status`` object every error of the adapter is answered with.

One builder for the API routes (:mod:`adapter.api.status`) and the security layer
(:mod:`adapter.security.middleware`), so that a 401 from authentication and a 404 from a
route look alike to clients: ``kind: Status``, ``status: Failure``, a ``reason`` from
the code, a ``message`` saying what to do, optional ``details``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["REASONS", "status_body"]

REASONS: Mapping[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
"""kube-apiserver's ``reason`` for each HTTP status code (``metav1.StatusReason``)."""


def status_body(
    code: int, message: str, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A ``Status`` object with ``status: Failure``; the reason defaults from the code."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details:
        body["details"] = dict(details)
    return body

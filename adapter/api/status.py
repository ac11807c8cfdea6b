"""Errors as Kubernetes ``Status`` objects, the way kube-apiserver reports them.

Every error the API answers is a ``meta/v1`` ``Status`` with ``status: Failure``, a
``reason`` a client can switch on and a ``message`` a person can act on
(DESIGN.md, Contract 2):

==========================================================  ====  ======================
cause                                                        code  reason
==========================================================  ====  ======================
malformed selector, bad name or parameter, absurd window      400  ``BadRequest``
unknown metric, resource or object; no fresh data             404  ``NotFound``
a method other than GET                                       405  ``MethodNotAllowed``
the metric source or kube-apiserver cannot answer             503  ``ServiceUnavailable``
anything unexpected (a bug): logged with its traceback        500  ``InternalError``
==========================================================  ====  ======================

:class:`StatusRoute` makes every route of the API answer this way (the unexpected
included, with a generic message and no traceback), and
:func:`install_status_handlers` does the same for what fails before a route runs
(no route matches the path).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapter.objects import ObjectNotFoundError, ObjectsUnavailableError, UnknownResourceError
from adapter.sources.base import MetricNotFoundError, SourceUnavailableError
from adapter.status import REASONS, status_body
from kubepulse.errors import KubepulseError, KubepulseValueError, UnknownObjectError

__all__ = [
    "ApiError",
    "BadRequestError",
    "NotFoundError",
    "ServiceUnavailableError",
    "StatusRoute",
    "error_status",
    "install_status_handlers",
    "status_body",
    "status_response",
]

logger = logging.getLogger("adapter.api")

_INTERNAL_MESSAGE = (
    "an internal error occurred while answering the request; the adapter's log has the "
    "details. Please report it"
)


class ApiError(KubepulseError):
    """An error the API answers with a given code, reason and message.

    Attributes:
        code: the HTTP status.
        reason: the ``Status`` reason (``BadRequest``, ``NotFound``...).
        details: the ``Status`` details (``name``, ``group``, ``kind``), if any.
    """

    code = 500
    reason = "InternalError"

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = dict(details) if details else None


class BadRequestError(ApiError):
    """The request is malformed (400)."""

    code = 400
    reason = "BadRequest"


class NotFoundError(ApiError):
    """What the request asks for does not exist, or has no fresh data (404)."""

    code = 404
    reason = "NotFound"


class ServiceUnavailableError(ApiError):
    """The adapter cannot answer now (503)."""

    code = 503
    reason = "ServiceUnavailable"


def status_response(
    code: int, message: str, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> JSONResponse:
    """:func:`status_body` as a JSON response with that status code."""
    return JSONResponse(
        status_body(code, message, reason=reason, details=details),
        status_code=code,
        headers={"Cache-Control": "no-cache, private"},
    )


def error_status(error: BaseException) -> tuple[int, str, str, dict[str, Any] | None]:
    """The code, reason, message and details answering ``error``.

    Unexpected errors are logged here with their traceback and answered with a generic
    message, so that no internals reach the client.
    """
    if isinstance(error, ApiError):
        return error.code, error.reason, str(error), error.details
    if isinstance(error, RequestValidationError):
        return 400, "BadRequest", _validation_message(error), None
    if isinstance(
        error, (MetricNotFoundError, ObjectNotFoundError, UnknownResourceError, UnknownObjectError)
    ):
        return 404, "NotFound", str(error), None
    if isinstance(error, (SourceUnavailableError, ObjectsUnavailableError)):
        logger.warning("cannot answer: %s", error)
        return 503, "ServiceUnavailable", str(error), None
    if isinstance(error, KubepulseValueError):
        return 400, "BadRequest", str(error), None
    if isinstance(error, StarletteHTTPException):
        code = error.status_code
        return code, REASONS.get(code, "Unknown"), _http_message(error), None
    logger.error("unexpected error answering a request", exc_info=error)
    return 500, "InternalError", _INTERNAL_MESSAGE, None


def _validation_message(error: RequestValidationError) -> str:
    problems = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem.get("loc", ()))
        problems.append(f"{where}: {problem.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(problems)


def _http_message(error: StarletteHTTPException) -> str:
    if error.status_code == 404:
        return (
            "the server could not find the requested resource; list what is served under "
            "/apis/custom.metrics.k8s.io and /apis/external.metrics.k8s.io"
        )
    if error.status_code == 405:
        return "the metrics API is read-only: only GET is allowed"
    return str(error.detail)


async def _handle_http_error(request: Request, error: Exception) -> Response:
    code, reason, message, details = error_status(error)
    headers = getattr(error, "headers", None)
    response = status_response(code, message, reason=reason, details=details)
    if headers:
        response.headers.update(headers)
    return response


def install_status_handlers(app: FastAPI) -> None:
    """Answer errors raised outside routes (no route matched...) with ``Status`` objects."""
    app.add_exception_handler(StarletteHTTPException, _handle_http_error)
    app.add_exception_handler(RequestValidationError, _handle_http_error)


class StatusRoute(APIRoute):
    """A route whose every failure is answered with a ``Status``: never a traceback."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as error:  # every failure becomes a Status, by design
                code, reason, message, details = error_status(error)
                return status_response(code, message, reason=reason, details=details)

        return answer

"""Structured logs: one JSON object per line, and an access log of every request.

A line looks like::

    {"time":"2026-05-20T10:11:12.345Z","level":"info","logger":"kubepulse.adapter.access",
     "msg":"request","method":"GET","path":"/apis/custom.metrics.k8s.io/v1beta2",
     "status":200,"duration_ms":1.8,"user":"system:serviceaccount:kube-system:hpa"}

``time`` is UTC with milliseconds, ``level`` is lower case, ``msg`` is the message, and
the structured fields a call passes as ``extra={"fields": {...}}`` follow at the top
level (they never override the four fixed keys). An exception adds ``error`` (its
message) and ``traceback``. The ``text`` format prints the same in one readable line
for a terminal. uvicorn's own loggers go through the same handler.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import IO, Any

__all__ = [
    "AccessLogMiddleware",
    "JSONFormatter",
    "TextFormatter",
    "configure_logging",
]

_FIXED_KEYS = ("time", "level", "logger", "msg")
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.datetime.fromtimestamp(record.created, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    if not isinstance(fields, dict):
        return {}
    return {str(key): value for key, value in fields.items() if key not in _FIXED_KEYS}


class JSONFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as compact JSON; values JSON cannot encode are written as strings."""
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = str(record.exc_info[1])
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """Formats a record as ``time LEVEL logger: message key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one readable line (plus a traceback if there is one)."""
        parts = [
            _timestamp(record),
            record.levelname,
            f"{record.name}:",
            record.getMessage(),
        ]
        parts += [
            f"{key}={json.dumps(value, default=str)}" for key, value in _fields(record).items()
        ]
        line = " ".join(parts)
        if record.exc_info and record.exc_info[1] is not None:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def configure_logging(
    level: str = "info", log_format: str = "json", stream: IO[str] | None = None
) -> None:
    """Send every logger (uvicorn's included) to ``stream`` (stderr) in ``log_format``.

    Replaces the root logger's handlers, so calling it again changes the settings rather
    than duplicating lines.

    Raises:
        ValueError: unknown level or format; the message lists the accepted ones.
    """
    if level not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(_LEVELS)}")
    formatters = {"json": JSONFormatter, "text": TextFormatter}
    if log_format not in formatters:
        raise ValueError(f"unknown log format {log_format!r}; use json or text")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatters[log_format]())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(_LEVELS[level])
    # uvicorn configures its loggers to stop at their own handlers; send them to the root.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(logging.NOTSET)
    # httpx logs every request at INFO: one line per scrape and per kube-apiserver call
    # would drown what matters. Their failures are logged by the code that sees them.
    logging.getLogger("httpx").setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


class AccessLogMiddleware:
    """ASGI middleware that logs one line per HTTP request once its response is sent.

    Fields: ``method``, ``path``, ``status``, ``duration_ms``, ``bytes``, ``client`` and,
    when authentication identified the caller, ``user``. Open paths such as ``/healthz``
    are logged at debug level so that probes do not drown the log.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        logger: logging.Logger | None = None,
        quiet_paths: frozenset[str] = frozenset({"/healthz", "/livez", "/readyz", "/metrics"}),
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self._logger = logger or logging.getLogger("kubepulse.adapter.access")
        self._quiet_paths = quiet_paths
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request through the wrapped app and log it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self._clock()
        status = 0
        sent_bytes = 0

        async def recording_send(message: Message) -> None:
            nonlocal status, sent_bytes
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent_bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self._log(scope, status or 500, sent_bytes, self._clock() - started)

    def _log(self, scope: Scope, status: int, sent_bytes: int, seconds: float) -> None:
        path = scope.get("path", "")
        client = scope.get("client")
        fields: dict[str, Any] = {
            "method": scope.get("method", ""),
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "bytes": sent_bytes,
            "client": f"{client[0]}:{client[1]}" if client else "",
        }
        state = scope.get("state")
        user = state.get("kubepulse_user") if isinstance(state, MutableMapping) else None
        if user is not None:
            fields["user"] = getattr(user, "name", str(user))
        level = logging.DEBUG if path in self._quiet_paths and status < 400 else logging.INFO
        self._logger.log(level, "request", extra={"fields": fields})

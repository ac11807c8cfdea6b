"""Structured logs for the standard :mod:`logging` module: one JSON object per line on stderr.

A line looks like::

    {"ts":"2026-05-20T10:11:12.345Z","level":"info","logger":"kubepulse.exporter",
     "msg":"serving","listen_address":"0.0.0.0:9847","metadata_mode":"local"}

``ts`` is RFC 3339 in UTC with milliseconds, ``level`` is lower case, ``logger`` is the
logger's name and ``msg`` the formatted message. Whatever a call passes as ``extra``
follows at the top level: ``logger.info("serving", extra={"listen_address": ...})``
(a ``fields`` mapping, as the adapter's logs pass them, is spread out the same way).
Extra keys never override the four fixed ones. An exception adds ``error`` (its type
and message) and ``traceback``; values JSON cannot encode are written with ``str()``.

The ``text`` format writes the same on one readable line for a terminal::

    2026-05-20T10:11:12.345Z INFO kubepulse.exporter: serving listen_address="0.0.0.0:9847"
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from collections.abc import Mapping
from typing import IO, Any, Final

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "JSONFormatter",
    "TextFormatter",
    "configure_logging",
    "extra_fields",
]

LOG_LEVELS: Final[Mapping[str, int]] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
"""The accepted ``--log-level`` values."""

_FIXED_KEYS: Final = frozenset({"ts", "level", "logger", "msg"})
_FIELDS_ATTRIBUTE: Final = "fields"
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))
) | {"message", "asctime", "taskName"}


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.datetime.fromtimestamp(record.created, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a call attached to ``record`` through ``extra=``."""
    fields: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key in _RECORD_ATTRIBUTES or key.startswith("_"):
            continue
        if key == _FIELDS_ATTRIBUTE and isinstance(value, Mapping):
            fields.update({str(name): item for name, item in value.items()})
        else:
            fields[key] = value
    return {key: value for key, value in fields.items() if key not in _FIXED_KEYS}


def _error(record: logging.LogRecord) -> str | None:
    if record.exc_info and record.exc_info[1] is not None:
        exception = record.exc_info[1]
        return f"{type(exception).__name__}: {exception}"
    return None


class JSONFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as compact JSON (see the module docstring for the keys)."""
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(extra_fields(record))
        error = _error(record)
        if error is not None:
            entry["error"] = error
            entry["traceback"] = self.formatException(record.exc_info)  # type: ignore[arg-type]
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """Formats a record as ``ts LEVEL logger: message key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one readable line, then its traceback if it has one."""
        parts = [_timestamp(record), record.levelname, f"{record.name}:", record.getMessage()]
        parts += [
            f"{key}={json.dumps(value, default=str, ensure_ascii=False)}"
            for key, value in extra_fields(record).items()
        ]
        line = " ".join(parts)
        if _error(record) is not None:
            line = f"{line}\n{self.formatException(record.exc_info)}"  # type: ignore[arg-type]
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


LOG_FORMATS: Final[Mapping[str, type[logging.Formatter]]] = {
    "json": JSONFormatter,
    "text": TextFormatter,
}
"""The accepted ``--log-format`` values and their formatters."""


def configure_logging(
    level: str = "info", log_format: str = "json", stream: IO[str] | None = None
) -> logging.Handler:
    """Send every logger to ``stream`` (stderr) in ``log_format``, at ``level`` and above.

    Replaces the root logger's handlers, so calling it again changes the settings rather
    than duplicating lines, and routes :mod:`warnings` through logging. The Kubernetes
    client's HTTP library logs every retry at warning level; it is held at error unless
    the level is ``debug``.

    Returns:
        The handler installed on the root logger.

    Raises:
        ValueError: unknown level or format; the message lists the accepted ones.
    """
    if level not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LOG_LEVELS)}")
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; use one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(LOG_FORMATS[log_format]())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(LOG_LEVELS[level])
    logging.getLogger("urllib3").setLevel(logging.NOTSET if level == "debug" else logging.ERROR)
    logging.captureWarnings(True)
    return handler

"""Talking PromQL safely: literals and exact-match patterns, and reading answers.

Both Prometheus clients, the adapter's Prometheus source (``adapter.sources``) and the
analyzers' history (:mod:`kubepulse.collect.prometheus_history`), put label values that
come from users and from the cluster into queries: :func:`escape_string` and
:func:`escape_regex` are the only way they do it, so that a namespace or pod name can
never change a query's meaning. :func:`answer_data` reads Prometheus' answer the same way
for both; each client turns a failure into its own error with its own advice.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final

from kubepulse.errors import KubepulseError

__all__ = [
    "AnswerKind",
    "PrometheusAnswerError",
    "answer_data",
    "escape_regex",
    "escape_string",
]

# RE2's metacharacters: escaped, they match themselves.
_REGEX_SPECIAL: Final = frozenset("\\.+*?()|[]{}^$")


def escape_string(value: str) -> str:
    """``value`` as a PromQL double-quoted string literal, quotes included."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def escape_regex(value: str) -> str:
    """``value`` as an RE2 pattern matching exactly that text (before string escaping)."""
    return "".join(f"\\{char}" if char in _REGEX_SPECIAL else char for char in value)


class AnswerKind(enum.Enum):
    """Why a Prometheus HTTP API answer carried no data."""

    NOT_API = "not-api"
    """The body is not a Prometheus API object: the URL is not Prometheus' base URL."""
    REFUSED = "refused"
    """``errorType`` ``bad_data``: Prometheus refused the query as written."""
    FAILED = "failed"
    """Any other error: timeouts, cancellations, resource limits, internal errors."""


class PrometheusAnswerError(KubepulseError):
    """Prometheus answered, but not with data; :attr:`kind` says how."""

    def __init__(self, message: str, kind: AnswerKind) -> None:
        super().__init__(message)
        self.kind = kind


def answer_data(status: int, body: object, where: str) -> Any:
    """The ``data`` of an answer of Prometheus' HTTP API (``/api/v1/...``).

    Args:
        status: the HTTP status.
        body: the body parsed as JSON (``None`` when it was not JSON).
        where: the URL asked, for the message.

    Raises:
        PrometheusAnswerError: the answer is not a success; the message gives the URL,
            the status and Prometheus' own ``errorType`` and ``error``.
    """
    if not isinstance(body, Mapping):
        raise PrometheusAnswerError(
            f"Prometheus at {where} answered HTTP {status} without a Prometheus API answer",
            AnswerKind.NOT_API,
        )
    if body.get("status") == "success" and status < 400:
        return body.get("data")
    error_type = body.get("errorType", "unknown")
    message = body.get("error", "no message")
    if error_type == "bad_data":
        raise PrometheusAnswerError(
            f"Prometheus at {where} refused the query (HTTP {status}, bad_data: {message})",
            AnswerKind.REFUSED,
        )
    raise PrometheusAnswerError(
        f"Prometheus at {where} failed with HTTP {status} ({error_type}: {message})",
        AnswerKind.FAILED,
    )

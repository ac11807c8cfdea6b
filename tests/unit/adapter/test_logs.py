"""Structured logs: the JSON line format, the text format, and the access log."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from adapter.logs import AccessLogMiddleware, JSONFormatter, TextFormatter, configure_logging
from adapter.security.authn import UserInfo


def record(message: str = "hello %s", *args: object, **fields: object) -> logging.LogRecord:
    entry = logging.LogRecord("adapter.test", logging.WARNING, __file__, 1, message, args, None)
    entry.created = 1_779_278_400.25  # 2026-05-20T12:00:00.250Z
    if fields:
        entry.fields = fields
    return entry


def test_a_json_line_has_time_level_logger_message_and_fields() -> None:
    line = JSONFormatter().format(record("hello %s", "world", user="alice", status=403))
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2026-05-20T12:00:00.250Z",
        "level": "warning",
        "logger": "adapter.test",
        "msg": "hello world",
        "user": "alice",
        "status": 403,
    }


def test_fields_never_override_the_fixed_keys_and_odd_values_become_strings() -> None:
    line = JSONFormatter().format(record("m", msg="forged", level="debug", when=object))
    decoded = json.loads(line)
    assert decoded["msg"] == "m"
    assert decoded["level"] == "warning"
    assert decoded["when"] == "<class 'object'>"


def test_an_exception_adds_its_message_and_traceback() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        entry = logging.LogRecord("a", logging.ERROR, __file__, 1, "failed", (), None)
        entry.exc_info = sys.exc_info()
    decoded = json.loads(JSONFormatter().format(entry))
    assert decoded["error"] == "boom"
    assert "RuntimeError: boom" in decoded["traceback"]


def test_the_text_format_is_one_readable_line() -> None:
    line = TextFormatter().format(record("hello %s", "world", user="alice"))
    assert line == '2026-05-20T12:00:00.250Z WARNING adapter.test: hello world user="alice"'


@pytest.fixture
def clean_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configure_logging_sends_everything_including_uvicorn_to_one_handler(
    clean_root: None,
) -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    configure_logging("info", "json", stream=stream)  # again: no duplicate lines
    logging.getLogger("uvicorn.error").info("Started server process")
    logging.getLogger("kubepulse.adapter.x").debug("not shown at info")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["logger"], line["msg"]) for line in lines] == [
        ("uvicorn.error", "Started server process")
    ]


def test_configure_logging_names_bad_settings(clean_root: None) -> None:
    with pytest.raises(ValueError, match="use one of debug, info, warning, error"):
        configure_logging("verbose")
    with pytest.raises(ValueError, match="use json or text"):
        configure_logging("info", "xml")


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def run_request(path: str, status: int, user: UserInfo | None) -> logging.LogRecord:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if user is not None:
            scope["state"]["kubepulse_user"] = user
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"12345"})

    logger = logging.getLogger(f"test.access.{path}")
    logger.setLevel(logging.DEBUG)
    recorder = Recorder()
    logger.addHandler(recorder)
    ticks = iter([10.0, 10.0125])
    middleware = AccessLogMiddleware(app, logger=logger, clock=lambda: next(ticks))
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "client": ("127.0.0.1", 50000),
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(_message: Any) -> None:
        return None

    asyncio.run(middleware(scope, receive, send))
    (entry,) = recorder.records
    return entry


def test_the_access_log_records_status_duration_size_and_user() -> None:
    entry = run_request("/apis/custom.metrics.k8s.io/v1beta2", 200, UserInfo("alice"))
    assert entry.levelno == logging.INFO
    assert entry.fields == {  # type: ignore[attr-defined]
        "method": "GET",
        "path": "/apis/custom.metrics.k8s.io/v1beta2",
        "status": 200,
        "duration_ms": 12.5,
        "bytes": 5,
        "client": "127.0.0.1:50000",
        "user": "alice",
    }


def test_probes_are_logged_at_debug_unless_they_fail() -> None:
    assert run_request("/healthz", 200, None).levelno == logging.DEBUG
    assert run_request("/readyz", 503, None).levelno == logging.INFO

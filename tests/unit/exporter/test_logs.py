"""Structured logs: one JSON object per line, RFC 3339 times, extra fields at the top level."""

from __future__ import annotations

import datetime
import io
import json
import logging
import re
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from exporter.logs import JSONFormatter, TextFormatter, configure_logging, extra_fields

RFC3339_UTC_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, with pytest's handlers and level put back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    urllib3_level = logging.getLogger("urllib3").level
    yield root
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("urllib3").setLevel(urllib3_level)
    logging.captureWarnings(False)


def record(
    msg: str = "hello %s",
    args: tuple[Any, ...] = ("world",),
    *,
    level: int = logging.INFO,
    extra: dict[str, Any] | None = None,
    exc_info: Any = None,
) -> logging.LogRecord:
    logger = logging.getLogger("kubepulse.exporter.test")
    made = logger.makeRecord(
        logger.name, level, __file__, 1, msg, args, exc_info, extra=extra or {}
    )
    made.created = 1_763_000_000.1234  # 2025-11-13T02:13:20.123Z
    return made


def test_a_json_line_has_the_four_fixed_keys_first() -> None:
    line = JSONFormatter().format(record())

    entry = json.loads(line)
    assert list(entry) == ["ts", "level", "logger", "msg"]
    assert entry == {
        "ts": "2025-11-13T02:13:20.123Z",
        "level": "info",
        "logger": "kubepulse.exporter.test",
        "msg": "hello world",
    }
    assert RFC3339_UTC_MS.match(entry["ts"])
    parsed = datetime.datetime.fromisoformat(entry["ts"].replace("Z", "+00:00"))
    assert abs(parsed.timestamp() - 1_763_000_000.1234) < 0.001


def test_extra_fields_follow_at_the_top_level() -> None:
    line = JSONFormatter().format(
        record(
            "serving",
            (),
            extra={
                "listen_address": "0.0.0.0:9847",
                "config": {"mode": "local", "max_series": 50000},
                "fields": {"pid": 42},
            },
        )
    )

    entry = json.loads(line)
    assert entry["listen_address"] == "0.0.0.0:9847"
    assert entry["config"] == {"mode": "local", "max_series": 50000}
    # The adapter's way of passing fields is spread out the same way.
    assert entry["pid"] == 42
    assert "fields" not in entry


def test_extra_fields_never_override_the_fixed_keys() -> None:
    entry = json.loads(
        JSONFormatter().format(record(extra={"fields": {"level": "fake", "ts": 0, "x": 1}}))
    )

    assert entry["level"] == "info"
    assert entry["ts"] == "2025-11-13T02:13:20.123Z"
    assert entry["x"] == 1


def test_an_exception_adds_error_and_traceback() -> None:
    try:
        raise OSError("no such cgroup")
    except OSError:
        line = JSONFormatter().format(record("scan failed", (), exc_info=sys.exc_info()))

    entry = json.loads(line)
    assert entry["error"] == "OSError: no such cgroup"
    assert entry["traceback"].startswith("Traceback (most recent call last):")
    assert "\n" not in line


def test_values_json_cannot_encode_are_strings_and_messages_stay_on_one_line() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    line = JSONFormatter().format(record("two\nlines é", (), extra={"odd": Odd()}))

    assert line.count("\n") == 0
    entry = json.loads(line)
    assert entry["msg"] == "two\nlines é"
    assert entry["odd"] == "odd"


def test_text_lines_are_readable() -> None:
    line = TextFormatter().format(
        record("serving", (), level=logging.WARNING, extra={"listen_address": "127.0.0.1:9847"})
    )

    assert line == (
        "2025-11-13T02:13:20.123Z WARNING kubepulse.exporter.test: serving "
        'listen_address="127.0.0.1:9847"'
    )


def test_extra_fields_leave_out_the_record_s_own_attributes() -> None:
    assert extra_fields(record()) == {}
    assert extra_fields(record(extra={"a": 1})) == {"a": 1}


def test_configure_logging_writes_json_lines_at_the_level_asked(
    root_logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    configure_logging("warning", "json", stream=stream)
    logger = logging.getLogger("kubepulse.exporter.collector")

    logger.info("not written")
    logger.warning("max_series=%d reached", 10, extra={"dropped": 3})

    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["msg"] == "max_series=10 reached"
    assert json.loads(line)["dropped"] == 3
    assert json.loads(line)["level"] == "warning"


def test_configuring_again_replaces_the_handler(root_logger: logging.Logger) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", "json", stream=first)
    configure_logging("info", "text", stream=second)

    logging.getLogger("kubepulse").info("once")

    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1
    assert len(root_logger.handlers) == 1


def test_warnings_and_the_http_library_are_routed_and_tamed(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)

    logging.getLogger("urllib3.connectionpool").warning("Retrying (Retry(total=0))")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["logger"] for line in lines] == ["py.warnings"]
    assert "deprecated thing" in lines[0]["msg"]


def test_debug_lets_the_http_library_through(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("debug", "text", stream=stream)

    logging.getLogger("urllib3.connectionpool").debug("Starting new HTTPS connection")

    assert "Starting new HTTPS connection" in stream.getvalue()


@pytest.mark.parametrize(
    ("level", "log_format", "message"),
    [("verbose", "json", "use one of debug, info"), ("info", "xml", "use one of json, text")],
)
def test_unknown_settings_are_refused(level: str, log_format: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        configure_logging(level, log_format)

"""Prometheus-style durations: parsing to milliseconds, canonical rendering, windows."""

from __future__ import annotations

import pytest

from kubepulse.duration import DurationError, format_duration, parse_duration, parse_window
from kubepulse.errors import KubepulseError

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
YEAR = 365 * DAY


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        ("0", 0),
        ("0s", 0),
        ("500ms", 500),
        ("30s", 30 * SECOND),
        ("90s", 90 * SECOND),
        ("5m", 5 * MINUTE),
        ("1h30m", HOUR + 30 * MINUTE),
        ("24h", DAY),
        ("1d", DAY),
        ("1w", WEEK),
        ("1y", YEAR),
        ("2h0m", 2 * HOUR),
        ("007s", 7 * SECOND),
        ("1m500ms", MINUTE + 500),
        ("1d10h17m36s789ms", 123_456_789),
        ("1y1w1d1h1m1s1ms", YEAR + WEEK + DAY + HOUR + MINUTE + SECOND + 1),
        ("106751d23h47m16s854ms", 9_223_372_036_854),  # the largest Prometheus allows
    ],
)
def test_parse_duration(text: str, expected_ms: int) -> None:
    assert parse_duration(text) == expected_ms


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", 0, "the string is empty"),
        ("-5m", 0, "durations cannot be negative"),
        ("5", 1, "the number '5' at position 0 has no unit"),
        ("1h30", 4, "the number '30' at position 2 has no unit"),
        ("00", 2, "the number '00' at position 0 has no unit"),
        ("m", 0, "expected a number at position 0, found 'm'"),
        ("+5m", 0, "expected a number at position 0, found '+'"),
        ("5x", 1, "unknown unit 'x' at position 1; the units are ms, s, m, h, d, w and y"),
        ("5min", 1, "unknown unit 'min' at position 1"),
        ("5M", 1, "unknown unit 'M' at position 1; units are lowercase"),
        ("5m-3s", 1, "unknown unit 'm-' at position 1"),
        ("1.5h", 1, "fractions are not supported (the '.' at position 1)"),
        ("1m.5s", 2, "fractions are not supported (the '.' at position 2)"),
        ("5 m", 1, "unexpected space at position 1"),
        (" 5m", 0, "unexpected space at position 0"),
        ("5m ", 2, "unexpected space at position 2"),
        ("5s1m", 2, "comes after the smaller unit 's'"),
        ("1ms1s", 3, "comes after the smaller unit 'ms'"),
        ("1h2d", 2, "comes after the smaller unit 'h'"),
        ("1m1m", 2, "repeats unit 'm'"),
        ("9" * 30 + "s", 0, "is too large"),
    ],
)
def test_parse_duration_errors_name_the_bad_part(text: str, position: int, fragment: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    error = caught.value
    assert error.position == position
    assert error.text == text
    assert fragment in str(error)
    assert str(error).startswith(f"invalid duration {text!r}: ")


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("5s1m", "did you mean '1m5s'?"),
        ("1m1m", "did you mean '2m'?"),
        ("30m1h", "did you mean '1h30m'?"),
        ("500ms1s", "did you mean '1s500ms'?"),
    ],
)
def test_out_of_order_units_suggest_the_canonical_spelling(text: str, suggestion: str) -> None:
    with pytest.raises(DurationError, match=suggestion):
        parse_duration(text)


def test_syntax_errors_list_the_units() -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration("5x")
    assert "one of ms, s, m, h, d, w, y" in str(caught.value)
    assert isinstance(caught.value, KubepulseError)
    assert isinstance(caught.value, ValueError)


def test_parse_duration_refuses_more_than_prometheus_can_hold() -> None:
    with pytest.raises(DurationError, match="longer than the maximum 106751d23h47m16s854ms"):
        parse_duration("106751d23h47m16s855ms")


def test_parse_duration_rejects_non_strings() -> None:
    with pytest.raises(DurationError, match="expected a string such as '5m', got int"):
        parse_duration(300)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("duration_ms", "expected"),
    [
        (0, "0s"),
        (1, "1ms"),
        (500, "500ms"),
        (1_500, "1s500ms"),
        (30 * SECOND, "30s"),
        (90 * SECOND, "1m30s"),
        (5 * MINUTE, "5m"),
        (HOUR + 30 * MINUTE, "1h30m"),
        (DAY, "1d"),
        (DAY + HOUR, "1d1h"),
        (WEEK, "1w"),
        (2 * WEEK, "2w"),
        (8 * DAY, "8d"),  # weeks only when exact, as Prometheus prints
        (90 * DAY, "90d"),
        (YEAR, "1y"),
        (YEAR + DAY, "366d"),
        (YEAR + WEEK + DAY + HOUR + MINUTE + SECOND + 1, "373d1h1m1s1ms"),
    ],
)
def test_format_duration(duration_ms: int, expected: str) -> None:
    assert format_duration(duration_ms) == expected


@pytest.mark.parametrize(
    "duration_ms",
    [
        0,
        1,
        999,
        1_000,
        61_001,
        HOUR + 1,
        DAY - 1,
        WEEK,
        8 * DAY,
        YEAR,
        3 * YEAR + 5,
        9_223_372_036_854,
    ],
)
def test_format_then_parse_round_trips(duration_ms: int) -> None:
    assert parse_duration(format_duration(duration_ms)) == duration_ms


@pytest.mark.parametrize(
    ("value", "fragment"),
    [(-1, "durations cannot be negative"), (1.5, "got float"), (True, "got bool")],
)
def test_format_duration_rejects_bad_input(value: object, fragment: str) -> None:
    with pytest.raises(DurationError, match=fragment):
        format_duration(value)  # type: ignore[arg-type]


WINDOW_MIN_MS = 30 * SECOND
WINDOW_MAX_MS = DAY


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [("30s", 30 * SECOND), ("1m", MINUTE), ("5m", 5 * MINUTE), ("24h", DAY), ("1d", DAY)],
)
def test_parse_window_inside_the_range(text: str, expected_ms: int) -> None:
    assert parse_window(text, WINDOW_MIN_MS, WINDOW_MAX_MS) == expected_ms


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("29s", "29s is shorter than the minimum 30s; give a duration from 30s to 1d"),
        ("0", "0s is shorter than the minimum 30s"),
        ("24h1ms", "1d1ms is longer than the maximum 1d; give a duration from 30s to 1d"),
        ("1w", "1w is longer than the maximum 1d"),
        ("5x", "unknown unit 'x'"),
    ],
)
def test_parse_window_outside_the_range(text: str, fragment: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_window(text, WINDOW_MIN_MS, WINDOW_MAX_MS)
    assert fragment in str(caught.value)


def test_parse_window_range_errors_do_not_repeat_the_grammar() -> None:
    with pytest.raises(DurationError) as caught:
        parse_window("2d", WINDOW_MIN_MS, WINDOW_MAX_MS)
    assert "write a whole number" not in str(caught.value)


@pytest.mark.parametrize(("minimum_ms", "maximum_ms"), [(-1, 10), (10, 5)])
def test_parse_window_rejects_inconsistent_bounds(minimum_ms: int, maximum_ms: int) -> None:
    with pytest.raises(KubepulseError, match="0 <= minimum_ms <= maximum_ms"):
        parse_window("1m", minimum_ms, maximum_ms)

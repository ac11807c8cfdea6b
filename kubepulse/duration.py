"""Prometheus-style durations (``30s``, ``5m``, ``1h30m``, ``1d``), as integer milliseconds.

The grammar is Prometheus' ``model.ParseDuration``: one or more ``<whole number><unit>``
parts, units from largest to smallest, each at most once, and ``0`` on its own::

    duration ::= "0" | part+
    part     ::= digits unit
    unit     ::= "y" | "w" | "d" | "h" | "m" | "s" | "ms"

A year is 365 days and a week 7 days, as in Prometheus. There are no fractions, signs,
spaces or negative durations. Milliseconds are kubepulse's time unit everywhere (see
``docs/architecture.md``), so parsing returns an ``int`` of them.
"""

from __future__ import annotations

from kubepulse.errors import KubepulseValueError

__all__ = [
    "DurationError",
    "format_duration",
    "parse_duration",
    "parse_window",
]

_MS_PER_SECOND = 1000
_MS_PER_MINUTE = 60 * _MS_PER_SECOND
_MS_PER_HOUR = 60 * _MS_PER_MINUTE
_MS_PER_DAY = 24 * _MS_PER_HOUR
_MS_PER_WEEK = 7 * _MS_PER_DAY
_MS_PER_YEAR = 365 * _MS_PER_DAY

# Largest unit first: the order parts must appear in, and the order they are formatted in.
_UNIT_MS: dict[str, int] = {
    "y": _MS_PER_YEAR,
    "w": _MS_PER_WEEK,
    "d": _MS_PER_DAY,
    "h": _MS_PER_HOUR,
    "m": _MS_PER_MINUTE,
    "s": _MS_PER_SECOND,
    "ms": 1,
}
_UNIT_RANK = {unit: rank for rank, unit in enumerate(_UNIT_MS)}
# Prometheus keeps durations as Go time.Duration (int64 nanoseconds), so nothing longer
# than about 292 years is a duration Prometheus or a Go client could read back.
_MAX_DURATION_MS = (2**63 - 1) // 1_000_000
# A number with more digits than the maximum is out of range whatever its unit; checking
# the length first also keeps int() away from absurdly long digit strings.
_MAX_DIGITS = len(str(_MAX_DURATION_MS))
_DIGITS = frozenset("0123456789")

_GRAMMAR_HINT = (
    "write a whole number followed by a unit, one of ms, s, m, h, d, w, y, and combine "
    "parts from the largest unit to the smallest, e.g. '30s', '5m', '1h30m', '1d'"
)


class DurationError(KubepulseValueError):
    """A string is not a duration, or a duration is outside the range allowed for it.

    Attributes:
        text: the input as given.
        position: index of the offending character in ``text``, or ``None`` when the
            problem concerns the whole duration (empty, out of range).
        problem: what was wrong, without the grammar reminder.
    """

    def __init__(
        self,
        text: str,
        problem: str,
        *,
        position: int | None = None,
        explain_grammar: bool = True,
    ) -> None:
        self.text = text
        self.position = position
        self.problem = problem
        reminder = f"; {_GRAMMAR_HINT}" if explain_grammar else ""
        super().__init__(f"invalid duration {text!r}: {problem}{reminder}")


def parse_duration(text: str) -> int:
    """Parse a Prometheus duration into milliseconds.

    ``parse_duration("30s") == 30_000``, ``parse_duration("1h30m") == 5_400_000``,
    ``parse_duration("500ms") == 500``, ``parse_duration("0") == 0``.

    Raises:
        DurationError: ``text`` is empty, negative, fractional, has an unknown or missing
            unit, repeats a unit or puts a smaller unit before a larger one (``5s1m``;
            the message suggests the canonical spelling), or exceeds Prometheus' range
            (about 292 years). The message names the bad part and its position.
    """
    if not isinstance(text, str):
        raise DurationError(
            repr(text), f"expected a string such as '5m', got {type(text).__name__}"
        )
    if text == "":
        raise DurationError(text, "the string is empty", position=0)
    if text == "0":
        return 0

    total_ms = 0
    previous_unit: str | None = None
    out_of_order: tuple[int, str, str] | None = None
    position = 0
    while position < len(text):
        number_start = position
        while position < len(text) and text[position] in _DIGITS:
            position += 1
        if position == number_start:
            raise DurationError(text, _describe_non_digit(text, position), position=position)
        digits = text[number_start:position]
        if len(digits) > _MAX_DIGITS:
            raise DurationError(
                text,
                f"the number at position {number_start} is too large; the longest duration "
                f"is {format_duration(_MAX_DURATION_MS)}",
                position=number_start,
                explain_grammar=False,
            )

        # Like Prometheus, everything up to the next digit is the unit.
        unit_start = position
        while position < len(text) and text[position] not in _DIGITS:
            position += 1
        unit = text[unit_start:position]
        if unit not in _UNIT_MS:
            raise DurationError(
                text,
                _describe_bad_unit(text, digits, number_start, unit_start, unit),
                position=unit_start + _first_bad_offset(unit),
            )
        # Keep going after an ordering mistake so that the error can suggest the fix.
        if (
            out_of_order is None
            and previous_unit is not None
            and _UNIT_RANK[unit] <= _UNIT_RANK[previous_unit]
        ):
            out_of_order = (number_start, previous_unit, unit)
        previous_unit = unit
        total_ms += int(digits) * _UNIT_MS[unit]

    if total_ms > _MAX_DURATION_MS:
        raise DurationError(
            text,
            f"the duration is longer than the maximum {format_duration(_MAX_DURATION_MS)}",
            explain_grammar=False,
        )
    if out_of_order is not None:
        part_start, earlier, later = out_of_order
        relation = "repeats" if earlier == later else "comes after the smaller"
        raise DurationError(
            text,
            f"the part at position {part_start} {relation} unit {earlier!r}: "
            f"each unit may appear once, largest first; did you mean "
            f"{format_duration(total_ms)!r}?",
            position=part_start,
        )
    return total_ms


def parse_window(text: str, minimum_ms: int, maximum_ms: int) -> int:
    """Parse a duration that must lie within ``[minimum_ms, maximum_ms]``.

    For settings with a meaningful range, such as the statistics window an HPA asks for
    (``30s`` to ``24h``): ``parse_window("5m", 30_000, 86_400_000) == 300_000``.

    Raises:
        DurationError: ``text`` is not a duration, or lies outside the range; the message
            gives the allowed range in duration form.
        KubepulseValueError: the bounds themselves are inconsistent (a programming error).
    """
    if not 0 <= minimum_ms <= maximum_ms:
        raise KubepulseValueError(
            f"parse_window bounds must satisfy 0 <= minimum_ms <= maximum_ms, "
            f"got {minimum_ms} and {maximum_ms}"
        )
    duration_ms = parse_duration(text)
    if not minimum_ms <= duration_ms <= maximum_ms:
        side = "shorter than the minimum" if duration_ms < minimum_ms else "longer than the maximum"
        limit = minimum_ms if duration_ms < minimum_ms else maximum_ms
        raise DurationError(
            text,
            f"{format_duration(duration_ms)} is {side} {format_duration(limit)}; give a "
            f"duration from {format_duration(minimum_ms)} to {format_duration(maximum_ms)}",
            explain_grammar=False,
        )
    return duration_ms


def format_duration(duration_ms: int) -> str:
    """Render milliseconds the way Prometheus prints a duration.

    Units go from largest to smallest and zero parts are left out:
    ``format_duration(90_000) == "1m30s"``, ``format_duration(0) == "0s"``,
    ``format_duration(1_500) == "1s500ms"``. Like Prometheus, years and weeks are used
    only when they divide the duration exactly, because ``90d`` reads better than
    ``12w6d``: ``format_duration(7 * 86_400_000) == "1w"`` but ``8`` days is ``"8d"``.
    The output parses back to the same value with :func:`parse_duration`.

    Raises:
        DurationError: ``duration_ms`` is negative or not an integer.
    """
    if isinstance(duration_ms, bool) or not isinstance(duration_ms, int):
        raise DurationError(
            repr(duration_ms),
            f"expected whole milliseconds as an int, got {type(duration_ms).__name__}",
            explain_grammar=False,
        )
    if duration_ms < 0:
        raise DurationError(
            str(duration_ms),
            "durations cannot be negative; pass a number of milliseconds >= 0",
            explain_grammar=False,
        )
    if duration_ms == 0:
        return "0s"
    parts: list[str] = []
    remaining_ms = duration_ms
    for unit, unit_ms in _UNIT_MS.items():
        if unit in {"y", "w"} and remaining_ms % unit_ms != 0:
            continue
        count, remaining_ms = divmod(remaining_ms, unit_ms)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _describe_non_digit(text: str, position: int) -> str:
    character = text[position]
    if character == "-" and position == 0:
        return "durations cannot be negative"
    if character.isspace():
        return f"unexpected space at position {position}; write the parts without spaces"
    return f"expected a number at position {position}, found {character!r}"


def _describe_bad_unit(
    text: str, digits: str, number_start: int, unit_start: int, unit: str
) -> str:
    if unit == "":
        return f"the number {digits!r} at position {number_start} has no unit"
    offset = _first_bad_offset(unit)
    if unit[offset] == ".":
        return (
            f"fractions are not supported (the '.' at position {unit_start + offset}); "
            "use a smaller unit instead, e.g. '1h30m' rather than '1.5h'"
        )
    if unit[offset].isspace():
        return f"unexpected space at position {unit_start + offset}; write the parts without spaces"
    if unit.lower() in _UNIT_MS:
        return f"unknown unit {unit!r} at position {unit_start}; units are lowercase"
    return f"unknown unit {unit!r} at position {unit_start}; the units are ms, s, m, h, d, w and y"


def _first_bad_offset(unit: str) -> int:
    """Offset in ``unit`` of the character a caller should look at first."""
    for offset, character in enumerate(unit):
        if character == "." or character.isspace():
            return offset
    return 0

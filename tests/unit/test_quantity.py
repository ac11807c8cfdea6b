"""Kubernetes quantities: parsing, canonical formatting and the helpers built on them.

Expected canonical strings are those apimachinery's ``resource.Quantity`` produces
(``ParseQuantity`` followed by ``String()``), worked out by hand from its rules.
"""

from __future__ import annotations

import math
import random
import sys
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubepulse.errors import KubepulseError
from kubepulse.quantity import (
    QuantityError,
    QuantityLike,
    cpu_cores,
    format_quantity,
    memory_bytes,
    parse_quantity,
    to_milli,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # plain numbers, every shape of the number part
        ("0", Decimal(0)),
        ("10", Decimal(10)),
        ("007", Decimal(7)),
        ("1.5", Decimal("1.5")),
        (".5", Decimal("0.5")),
        ("5.", Decimal(5)),
        ("0.000", Decimal(0)),
        ("+3", Decimal(3)),
        ("-3", Decimal(-3)),
        ("-0", Decimal(0)),
        ("-.25", Decimal("-0.25")),
        # decimal SI suffixes
        ("1n", Decimal("1E-9")),
        ("250u", Decimal("0.00025")),
        ("500m", Decimal("0.5")),
        ("1500m", Decimal("1.5")),
        ("100m", Decimal("0.1")),
        ("2k", Decimal(2000)),
        ("1.5k", Decimal(1500)),
        ("128M", Decimal(128_000_000)),
        ("3G", Decimal(3 * 10**9)),
        ("4T", Decimal(4 * 10**12)),
        ("5P", Decimal(5 * 10**15)),
        ("6E", Decimal(6 * 10**18)),
        # binary SI suffixes
        ("1Ki", Decimal(1024)),
        ("123Mi", Decimal(123 * 2**20)),
        ("1.5Gi", Decimal(1_610_612_736)),
        ("2Ti", Decimal(2 * 2**40)),
        ("1Pi", Decimal(2**50)),
        ("1Ei", Decimal(2**60)),
        ("0.5Ki", Decimal(512)),
        ("-1Mi", Decimal(-(2**20))),
        # decimal exponents; "E" followed by digits is an exponent, not exa
        ("129e6", Decimal(129_000_000)),
        ("1E3", Decimal(1000)),
        ("1e-2", Decimal("0.01")),
        ("1.5e+3", Decimal(1500)),
        ("2E0", Decimal(2)),
        # precision: exact well past float, sub-nano rounded away from zero like Kubernetes
        ("123456789012345678901234567890", Decimal("123456789012345678901234567890")),
        ("0.123456789", Decimal("0.123456789")),
        ("0.1234567891", Decimal("0.123456790")),
        ("0.1n", Decimal("1E-9")),
        ("1e-10", Decimal("1E-9")),
        ("-1e-10", Decimal("-1E-9")),
        ("0.9999999999", Decimal(1)),
        ("1e-2000000000", Decimal("1E-9")),
    ],
)
def test_parse_quantity_reads_every_grammar_branch(text: str, expected: Decimal) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2, Decimal(2)),
        (-7, Decimal(-7)),
        (0.1, Decimal("0.1")),  # shortest repr, not 0.1000000000000000055...
        (1.5, Decimal("1.5")),
        (1e-12, Decimal("1E-9")),
        (Decimal("0.25"), Decimal("0.25")),
        (Decimal("1E+3"), Decimal(1000)),
    ],
)
def test_parse_quantity_accepts_numbers(value: QuantityLike, expected: Decimal) -> None:
    assert parse_quantity(value) == expected


@pytest.mark.parametrize(
    ("text", "expected_repr"),
    [
        ("1500m", "Decimal('1.5')"),
        ("1k", "Decimal('1000')"),
        ("1.5Gi", "Decimal('1610612736')"),
        ("0.000", "Decimal('0')"),
        ("-0", "Decimal('0')"),
    ],
)
def test_parse_quantity_returns_tidy_decimals(text: str, expected_repr: str) -> None:
    assert repr(parse_quantity(text)) == expected_repr


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", 0, "the string is empty"),
        ("1.5.5", 3, "unexpected character '.' at position 3"),
        ("10 Mi", 2, "unexpected character ' ' at position 2"),
        (" 1", 0, "expected a number at position 0, found ' '"),
        ("1 ", 1, "unexpected character ' ' at position 1"),
        ("Mi", 0, "expected a number at position 0, found 'M'"),
        ("--1", 1, "expected a number at position 1, found '-'"),
        (".", 1, "expected digits at position 1"),
        ("+", 1, "expected digits at position 1"),
        (".e3", 1, "expected a number at position 1, found 'e'"),
        ("\u0661", 0, "found '\u0661'"),  # an Arabic-Indic digit is not an ASCII digit
        ("1KiB", 1, "write '1Ki', not '1KiB'"),
        ("1K", 1, "kilo is lowercase 'k'"),
        ("1mi", 1, "mebi is 'Mi' with a capital M"),
        ("1Kib", 3, "unexpected character 'b' at position 3"),
        ("1kk", 2, "unexpected character 'k' at position 2"),
        ("1Z", 1, "unexpected character 'Z' at position 1"),
        ("1e", 2, "the exponent at position 1 has no digits"),
        ("1e+", 3, "the exponent at position 1 has no digits"),
        ("1e1.5", 3, "unexpected character '.' at position 3 in the exponent"),
        ("1Ex", 2, "unexpected character 'x' at position 2 in the exponent"),
        ("1e3000000000", 1, "the exponent 3000000000 is out of range"),
        ("NaN", None, "finite"),
        ("-inf", None, "finite"),
        ("Infinity", None, "finite"),
    ],
)
def test_parse_quantity_errors_name_the_problem(
    text: str, position: int | None, fragment: str
) -> None:
    with pytest.raises(QuantityError) as caught:
        parse_quantity(text)
    error = caught.value
    assert error.position == position
    assert error.text == text
    assert fragment in str(error)
    assert str(error).startswith(f"invalid quantity {text!r}: ")


def test_syntax_errors_list_the_valid_suffixes() -> None:
    with pytest.raises(QuantityError) as caught:
        parse_quantity("10 Mi")
    message = str(caught.value)
    assert "Ki, Mi, Gi, Ti, Pi, Ei" in message
    assert "n, u, m, k, M, G, T, P, E" in message
    assert "e3 or E-2" in message


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (None, "got NoneType"),
        (True, "got bool"),
        ([1], "got list"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (Decimal("NaN"), "finite"),
        (Decimal("-Infinity"), "finite"),
    ],
)
def test_parse_quantity_rejects_non_numbers(value: object, fragment: str) -> None:
    with pytest.raises(QuantityError, match=fragment) as caught:
        parse_quantity(value)  # type: ignore[arg-type]
    assert caught.value.text == repr(value)


def test_quantity_error_is_a_kubepulse_value_error() -> None:
    with pytest.raises(QuantityError) as caught:
        parse_quantity("1.5.5")
    assert isinstance(caught.value, KubepulseError)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # the custom metrics API strings an HPA reads
        (Decimal("0.5"), "500m"),
        (10, "10"),
        (Decimal("1.5"), "1500m"),
        (0.5, "500m"),
        (1.5, "1500m"),
        (0.1, "100m"),
        (Decimal("0.001"), "1m"),
        # zero and signs
        (0, "0"),
        (Decimal("-0.0"), "0"),
        (Decimal("-1.5"), "-1500m"),
        (-2000, "-2k"),
        # largest suffix that keeps the number whole, exponent a multiple of three
        (1000, "1k"),
        (1500, "1500"),
        (12000, "12k"),
        (100, "100"),
        (Decimal("1E+6"), "1M"),
        (Decimal("2.5E+9"), "2500M"),
        (10**18, "1E"),
        (Decimal("12345.678"), "12345678m"),
        (Decimal("0.0001"), "100u"),
        (Decimal("0.0000015"), "1500n"),
        (Decimal("1E-9"), "1n"),
        # sub-nano: rounded away from zero, never to zero
        (Decimal("1E-10"), "1n"),
        (Decimal("-1E-10"), "-1n"),
        (Decimal("1.0000000001"), "1000000001n"),
        # beyond E: Kubernetes' exponent form
        (10**21, "1e21"),
        (Decimal("2.5E+21"), "2500E"),
        (Decimal("1E+2000000000"), "100e1999999998"),
        # exact beyond 28 significant digits (Decimal's default context)
        (
            Decimal("1152921504606846975999999999999998847078495393153024"),
            "1152921504606846975999999999999998847078495393153024",
        ),
        # strings are normalised too
        ("1.5Gi", "1610612736"),
        ("2e3", "2k"),
        ("0.5Ki", "512"),
    ],
)
def test_format_quantity_decimal_form(value: QuantityLike, expected: str) -> None:
    assert format_quantity(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1024, "1Ki"),
        (2048, "2Ki"),
        (-2048, "-2Ki"),
        (-1024, "-1Ki"),
        (1_610_612_736, "1536Mi"),
        (2**30, "1Gi"),
        (2**60, "1Ei"),
        (2**70, "1024Ei"),  # no suffix beyond Ei
        (1025, "1025"),
        (2000, "2000"),  # whole but not a multiple of 1024: no decimal suffix either
        (10**6, "1000000"),
        # below 1024 or fractional: decimal form, as Kubernetes does
        (1000, "1k"),
        (512, "512"),
        (-1023, "-1023"),
        (Decimal("1024.5"), "1024500m"),
        (Decimal("0.5"), "500m"),
        (0, "0"),
        ("1.5Gi", "1536Mi"),
        ("128974848", "123Mi"),
        (Decimal("1E+100"), "10e99"),  # far beyond any memory size: decimal form
    ],
)
def test_format_quantity_binary_form(value: QuantityLike, expected: str) -> None:
    assert format_quantity(value, binary=True) == expected


@pytest.mark.parametrize(
    "value",
    [
        Decimal(0),
        Decimal("0.5"),
        Decimal("1.5"),
        Decimal(10),
        Decimal(1000),
        Decimal(1500),
        Decimal("-0.25"),
        Decimal("0.000000001"),
        Decimal("123456789.123456789"),
        Decimal(1_610_612_736),
        Decimal(2**60),
        Decimal(10**21),
        Decimal("98765432109876543210987654321.000000007"),
    ],
)
@pytest.mark.parametrize("binary", [False, True])
def test_format_then_parse_round_trips(value: Decimal, binary: bool) -> None:
    assert parse_quantity(format_quantity(value, binary=binary)) == value


@pytest.mark.parametrize(
    "text", ["500m", "10", "1500m", "1k", "1536Mi", "100u", "1n", "-2k", "1e21", "1025"]
)
def test_canonical_strings_are_fixed_points(text: str) -> None:
    binary = text.endswith("i")
    assert format_quantity(parse_quantity(text), binary=binary) == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("500m", 500),
        ("1.5", 1500),
        ("2", 2000),
        ("1Ki", 1_024_000),
        ("0.1m", 1),  # rounded up, like MilliValue
        ("1.0001m", 2),
        ("-0.1m", -1),  # away from zero
        ("1n", 1),
        ("0", 0),
        (Decimal("0.25"), 250),
        (3, 3000),
        ("9223372036854775807m", 2**63 - 1),
    ],
)
def test_to_milli_rounds_away_from_zero(value: QuantityLike, expected: int) -> None:
    assert to_milli(value) == expected


@pytest.mark.parametrize("value", ["9223372036854775808m", "1e30", "-1e30", "1e2000000000"])
def test_to_milli_refuses_what_int64_cannot_hold(value: str) -> None:
    with pytest.raises(QuantityError, match="does not fit in a signed 64-bit integer"):
        to_milli(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("100m", Decimal("0.1")),
        ("0.5", Decimal("0.5")),
        ("2", Decimal(2)),
        ("1500m", Decimal("1.5")),
        (4, Decimal(4)),
        ("0", Decimal(0)),
    ],
)
def test_cpu_cores(value: QuantityLike, expected: Decimal) -> None:
    assert cpu_cores(value) == expected


def test_cpu_requests_in_different_styles_add_up_exactly() -> None:
    total = sum((cpu_cores(text) for text in ["100m", "0.5", "250m", "1"]), Decimal(0))
    assert total == Decimal("1.85")
    assert format_quantity(total) == "1850m"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.5Gi", 1_610_612_736),
        ("128M", 128_000_000),
        ("512Mi", 536_870_912),
        ("1e3", 1000),
        ("100m", 1),  # a tenth of a byte: rounded up like Quantity.Value()
        ("1.5", 2),
        ("0", 0),
        (65536, 65536),
    ],
)
def test_memory_bytes(value: QuantityLike, expected: int) -> None:
    assert memory_bytes(value) == expected


@pytest.mark.parametrize(
    ("function", "value", "fragment"),
    [
        (cpu_cores, "-100m", "a CPU amount cannot be negative"),
        (memory_bytes, "-1Mi", "a memory amount cannot be negative"),
        (memory_bytes, "16Ei", "does not fit in a signed 64-bit integer"),
        (cpu_cores, "1.5.5", "unexpected character '.' at position 3"),
        (memory_bytes, "1GB", "not '1GB'"),
    ],
)
def test_helpers_reject_bad_amounts(function: object, value: str, fragment: str) -> None:
    assert callable(function)
    with pytest.raises(QuantityError, match=fragment):
        function(value)


def test_range_errors_do_not_repeat_the_grammar() -> None:
    with pytest.raises(QuantityError) as caught:
        memory_bytes("-1Mi")
    assert "a quantity is an optional sign" not in str(caught.value)


# ---------------------------------------------------------------------------- floats
# format_quantity writes finite floats below 1e17 without its Decimal pipeline (a
# 5,000-pod metrics answer formats 5,000 of them); held here to the same strings.


def decimal_path(value: float) -> str:
    """``format_quantity`` of ``value`` by the Decimal pipeline, not the float short cut."""
    return format_quantity(Decimal(repr(value)))


BOUNDARIES = [
    0.0,
    -0.0,
    1e-9,
    -1e-9,
    1e-10,  # below a nano: rounds away from zero to 1n
    -1e-10,
    5e-324,  # the smallest float
    -5e-324,
    1.0000000001e-9,
    2.5e-9,
    0.9999999999,  # carries into the next digit when rounded up to nanos
    999.9999999995,
    0.1 + 0.2,
    0.5,
    1.5,
    1.0,
    10.0,
    999.0,
    1000.0,
    1500.0,
    1e6,
    123456789.123456789,
    2.0**53,
    1e15 + 0.5,
    1e16,
    9.99e16,
    99999999999999990.0,  # just below the short cut's limit
    1e17,  # the general path from here on
    1e18,
    1e21,
    -1e21,
    sys.float_info.max,
]


@pytest.mark.parametrize("value", BOUNDARIES, ids=repr)
def test_the_float_short_cut_is_the_decimal_path_on_the_boundaries(value: float) -> None:
    assert format_quantity(value) == decimal_path(value)


def test_the_float_short_cut_is_the_decimal_path_on_random_floats() -> None:
    generator = random.Random(20261123)
    mismatches = []
    for _ in range(100_000):
        magnitude = 10.0 ** generator.randint(-15, 18)
        value = generator.random() * magnitude * (1 if generator.random() < 0.8 else -1)
        for candidate in (value, round(value, generator.randint(0, 12)), float(int(value))):
            if format_quantity(candidate) != decimal_path(candidate):
                mismatches.append(candidate)
    assert not mismatches[:5]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_the_float_short_cut_is_the_decimal_path_on_any_finite_float(value: float) -> None:
    assert format_quantity(value) == decimal_path(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused(value: float) -> None:
    with pytest.raises(QuantityError):
        format_quantity(value)


def test_an_int_takes_the_decimal_path() -> None:
    assert format_quantity(1500) == "1500"

"""Aggregations: parsing, and evaluate() on merged summaries against exact_evaluate()."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from kubepulse.errors import KubepulseValueError
from kubepulse.stats.aggregate import (
    Aggregation,
    AggregationKind,
    evaluate,
    exact_evaluate,
    parse_aggregation,
)
from kubepulse.stats.summary import SeriesKind, WindowSummary

START_MS = 1_700_000_000_000
RELATIVE_ACCURACY = 0.01

# ---------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "kind", "percentile", "name"),
    [
        ("avg", AggregationKind.AVG, None, "avg"),
        ("min", AggregationKind.MIN, None, "min"),
        ("max", AggregationKind.MAX, None, "max"),
        ("sum", AggregationKind.SUM, None, "sum"),
        ("last", AggregationKind.LAST, None, "last"),
        ("rate", AggregationKind.RATE, None, "rate"),
        (" AVG ", AggregationKind.AVG, None, "avg"),
        ("p50", AggregationKind.PERCENTILE, 50.0, "p50"),
        ("p90", AggregationKind.PERCENTILE, 90.0, "p90"),
        ("p95", AggregationKind.PERCENTILE, 95.0, "p95"),
        ("p99", AggregationKind.PERCENTILE, 99.0, "p99"),
        ("P99.9", AggregationKind.PERCENTILE, 99.9, "p99.9"),
        ("p99.99", AggregationKind.PERCENTILE, 99.99, "p99.99"),
        ("p5", AggregationKind.PERCENTILE, 5.0, "p5"),
        ("p0.5", AggregationKind.PERCENTILE, 0.5, "p0.5"),
        ("p05", AggregationKind.PERCENTILE, 5.0, "p5"),
        ("p50.0", AggregationKind.PERCENTILE, 50.0, "p50"),
    ],
)
def test_parse_aggregation_accepts(
    text: str, kind: AggregationKind, percentile: float | None, name: str
) -> None:
    aggregation = parse_aggregation(text)
    assert aggregation == Aggregation(kind, percentile)
    assert aggregation.name == str(aggregation) == name
    assert parse_aggregation(aggregation.name) == aggregation  # the name reads back


@pytest.mark.parametrize(
    "text",
    [
        "",
        "mean",
        "average",
        "p",
        "p100",
        "p0",
        "p0.0",
        "p-5",
        "p999",
        "p99.9999",
        "99",
        "p 99",
        "p99%",
        "q99",
        "pNN",
    ],
)
def test_parse_aggregation_rejects_and_lists_the_accepted_forms(text: str) -> None:
    with pytest.raises(KubepulseValueError) as caught:
        parse_aggregation(text)
    message = str(caught.value)
    assert repr(text) in message
    assert "avg, min, max, sum, last, rate" in message
    assert "pNN" in message
    assert "p99.9" in message


def test_percentile_quantile() -> None:
    assert parse_aggregation("p99").quantile == 0.99
    assert parse_aggregation("p50").quantile == 0.5
    assert parse_aggregation("avg").quantile is None


@pytest.mark.parametrize(
    ("kind", "percentile"),
    [
        (AggregationKind.PERCENTILE, None),
        (AggregationKind.PERCENTILE, 0.0),
        (AggregationKind.PERCENTILE, 100.0),
        (AggregationKind.PERCENTILE, math.nan),
        (AggregationKind.AVG, 50.0),
    ],
)
def test_aggregation_rejects_inconsistent_levels(
    kind: AggregationKind, percentile: float | None
) -> None:
    with pytest.raises(KubepulseValueError, match="percentile"):
        Aggregation(kind, percentile)


# ---------------------------------------------------------------------- evaluation

ALL_AGGREGATIONS = [
    parse_aggregation(name)
    for name in (
        "avg",
        "min",
        "max",
        "sum",
        "last",
        "rate",
        "p1",
        "p25",
        "p50",
        "p90",
        "p95",
        "p99",
        "p99.9",
    )
]
EXACT = {
    AggregationKind.AVG,
    AggregationKind.MIN,
    AggregationKind.MAX,
    AggregationKind.SUM,
    AggregationKind.LAST,
    AggregationKind.RATE,
}


def timestamps_with_gaps(rng: random.Random, n: int) -> list[int]:
    stamps = [START_MS + rng.randint(0, 999)]
    for _ in range(n - 1):
        gap = rng.choice((15_000, 15_000, 15_000, 30_000, 600_000))  # missed scrapes, outages
        stamps.append(stamps[-1] + gap + rng.randint(-500, 500))
    return stamps[:n]


def cpu_gauge(rng: random.Random, n: int) -> list[float]:
    return [max(0.0, rng.gauss(0.8, 0.3)) for _ in range(n)]


def negative_gauge(rng: random.Random, n: int) -> list[float]:
    return [rng.gauss(-20.0, 40.0) for _ in range(n)]


def gauge_with_nans_and_zeros(rng: random.Random, n: int) -> list[float]:
    return [rng.choice((math.nan, 0.0, rng.uniform(0.0, 1e9))) for _ in range(n)]


def constant(rng: random.Random, n: int) -> list[float]:
    return [3.0] * n


def zeros(rng: random.Random, n: int) -> list[float]:
    return [0.0] * n


def requests_counter(rng: random.Random, n: int) -> list[float]:
    total = rng.uniform(0.0, 1e5)
    out = []
    for _ in range(n):
        if rng.random() < 0.04:
            total = rng.uniform(0.0, 50.0)  # the pod restarted
        else:
            total += rng.expovariate(1 / 300)
        out.append(total)
    return out


def idle_counter_with_nans(rng: random.Random, n: int) -> list[float]:
    total = 10.0
    out = []
    for _ in range(n):
        total += rng.choice((0.0, 0.0, 1.0))
        out.append(math.nan if rng.random() < 0.1 else total)
    return out


Generator = Callable[[random.Random, int], list[float]]
CASES: dict[str, tuple[SeriesKind, Generator]] = {
    "cpu_gauge": (SeriesKind.GAUGE, cpu_gauge),
    "negative_gauge": (SeriesKind.GAUGE, negative_gauge),
    "gauge_with_nans_and_zeros": (SeriesKind.GAUGE, gauge_with_nans_and_zeros),
    "constant_gauge": (SeriesKind.GAUGE, constant),
    "zero_gauge": (SeriesKind.GAUGE, zeros),
    "requests_counter": (SeriesKind.COUNTER, requests_counter),
    "idle_counter_with_nans": (SeriesKind.COUNTER, idle_counter_with_nans),
    "constant_counter": (SeriesKind.COUNTER, constant),
}


def merged_summary(
    rng: random.Random, kind: SeriesKind, timestamps: list[int], values: list[float]
) -> WindowSummary | None:
    """Summaries of random consecutive pieces, merged back in time order."""
    n = len(values)
    cuts = sorted(rng.sample(range(1, n), rng.randint(0, min(10, n - 1)))) if n > 1 else []
    pieces = [
        WindowSummary.from_samples(
            kind, timestamps[start:end], values[start:end], relative_accuracy=RELATIVE_ACCURACY
        )
        for start, end in zip([0, *cuts], [*cuts, n], strict=True)
    ]
    return WindowSummary.merge_all(piece for piece in pieces if piece is not None)


def assert_agrees(
    aggregation: Aggregation,
    from_summary: float | None,
    exact: float | None,
    scale: float,
) -> None:
    if exact is None:
        assert from_summary is None, aggregation
        return
    assert from_summary is not None, aggregation
    if aggregation.kind in EXACT:
        # Equal up to float rounding, relative to the magnitudes summed (sums can cancel).
        assert abs(from_summary - exact) <= 1e-9 * max(abs(exact), scale), (
            aggregation,
            from_summary,
            exact,
        )
    else:
        assert abs(from_summary - exact) <= RELATIVE_ACCURACY * (1 + 1e-9) * abs(exact), (
            aggregation,
            from_summary,
            exact,
        )


@pytest.mark.parametrize("case", sorted(CASES))
def test_evaluate_on_merged_summaries_matches_exact_evaluate(case: str) -> None:
    kind, generate = CASES[case]
    rng = random.Random(case)
    for n in (0, 1, 2, 3, 10, 60, 400):
        for _ in range(3):
            timestamps = timestamps_with_gaps(rng, n)
            values = generate(rng, n)
            summary = merged_summary(rng, kind, timestamps, values)
            finite = [abs(v) for v in values if not math.isnan(v)]
            scale = math.fsum(finite) / max(1, len(finite))
            for aggregation in ALL_AGGREGATIONS:
                assert_agrees(
                    aggregation,
                    evaluate(aggregation, summary),
                    exact_evaluate(aggregation, kind, timestamps, values),
                    scale,
                )


# Hand-computed tables: (kind, timestamps in seconds from START_MS, values, expectations).
GAUGE_SECONDS = [0, 10, 20, 40]
GAUGE_VALUES = [2.0, 4.0, math.nan, -2.0]
COUNTER_SECONDS = [0, 10, 20, 30, 40]
COUNTER_VALUES = [100.0, 130.0, 10.0, 40.0, 40.0]  # restarted between 130 and 10


@pytest.mark.parametrize(
    ("kind", "seconds", "values", "name", "expected"),
    [
        (SeriesKind.GAUGE, GAUGE_SECONDS, GAUGE_VALUES, "avg", 4.0 / 3),
        (SeriesKind.GAUGE, GAUGE_SECONDS, GAUGE_VALUES, "min", -2.0),
        (SeriesKind.GAUGE, GAUGE_SECONDS, GAUGE_VALUES, "max", 4.0),
        (SeriesKind.GAUGE, GAUGE_SECONDS, GAUGE_VALUES, "sum", 4.0),
        (SeriesKind.GAUGE, GAUGE_SECONDS, GAUGE_VALUES, "last", -2.0),
        (SeriesKind.GAUGE, GAUGE_SECONDS, GAUGE_VALUES, "rate", -0.1),  # (-2 - 2) / 40 s
        (SeriesKind.GAUGE, GAUGE_SECONDS, GAUGE_VALUES, "p50", 2.0),
        # Increases 30, 10 (the reset: the new value), 30, 0 over 10 s each.
        (SeriesKind.COUNTER, COUNTER_SECONDS, COUNTER_VALUES, "avg", 70.0 / 40),
        (SeriesKind.COUNTER, COUNTER_SECONDS, COUNTER_VALUES, "rate", 70.0 / 40),
        (SeriesKind.COUNTER, COUNTER_SECONDS, COUNTER_VALUES, "sum", 70.0),
        (SeriesKind.COUNTER, COUNTER_SECONDS, COUNTER_VALUES, "min", 0.0),
        (SeriesKind.COUNTER, COUNTER_SECONDS, COUNTER_VALUES, "max", 3.0),
        (SeriesKind.COUNTER, COUNTER_SECONDS, COUNTER_VALUES, "last", 0.0),
        (SeriesKind.COUNTER, COUNTER_SECONDS, COUNTER_VALUES, "p50", 1.0),
        (SeriesKind.COUNTER, COUNTER_SECONDS, COUNTER_VALUES, "p99", 3.0),
    ],
)
def test_hand_computed_values(
    kind: SeriesKind, seconds: list[int], values: list[float], name: str, expected: float
) -> None:
    timestamps = [START_MS + 1000 * second for second in seconds]
    aggregation = parse_aggregation(name)
    exact = exact_evaluate(aggregation, kind, timestamps, values)
    assert exact == pytest.approx(expected, rel=1e-12)
    summary = WindowSummary.from_samples(kind, timestamps, values)
    assert evaluate(aggregation, summary) == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize(
    ("kind", "values", "answering"),
    [
        # One sample: a gauge still has a level; a counter has no interval, so no rate.
        (SeriesKind.GAUGE, [5.0], {"avg", "min", "max", "sum", "last", "p50"}),
        (SeriesKind.COUNTER, [5.0], set()),
        (SeriesKind.GAUGE, [math.nan], set()),
        (SeriesKind.COUNTER, [math.nan, 7.0, math.nan], set()),
    ],
)
def test_windows_that_cannot_answer_give_none(
    kind: SeriesKind, values: list[float], answering: set[str]
) -> None:
    timestamps = [START_MS + 1000 * i for i in range(len(values))]
    summary = WindowSummary.from_samples(kind, timestamps, values)
    for aggregation in ALL_AGGREGATIONS:
        expected_answer = aggregation.name in answering or (
            aggregation.kind is AggregationKind.PERCENTILE and "p50" in answering
        )
        from_summary = evaluate(aggregation, summary)
        exact = exact_evaluate(aggregation, kind, timestamps, values)
        assert (from_summary is not None) == expected_answer, aggregation
        assert (exact is not None) == expected_answer, aggregation


def test_evaluate_of_no_summary_is_none() -> None:
    for aggregation in ALL_AGGREGATIONS:
        assert evaluate(aggregation, None) is None
        assert exact_evaluate(aggregation, SeriesKind.GAUGE, [], []) is None


def test_counter_reset_at_a_merge_boundary() -> None:
    timestamps = [START_MS + 15_000 * i for i in range(6)]
    values = [1000.0, 1015.0, 1030.0, 3.0, 18.0, 33.0]  # restarted right at the cut
    left = WindowSummary.from_samples(SeriesKind.COUNTER, timestamps[:3], values[:3])
    right = WindowSummary.from_samples(SeriesKind.COUNTER, timestamps[3:], values[3:])
    assert left is not None
    assert right is not None
    merged = left.merge(right)
    for name, expected in [("sum", 63.0), ("rate", 63.0 / 75), ("min", 0.2), ("max", 1.0)]:
        aggregation = parse_aggregation(name)
        assert evaluate(aggregation, merged) == pytest.approx(expected, rel=1e-12)
        assert exact_evaluate(aggregation, SeriesKind.COUNTER, timestamps, values) == pytest.approx(
            expected, rel=1e-12
        )


@pytest.mark.parametrize(
    ("timestamps", "values", "message"),
    [
        ([START_MS], [1.0, 2.0], "1 timestamps but 2 values"),
        ([START_MS, START_MS], [1.0, 2.0], "strictly increasing"),
        ([START_MS, START_MS + 1], [1.0, math.inf], "finite"),
    ],
)
def test_exact_evaluate_rejects_bad_samples(
    timestamps: list[int], values: list[float], message: str
) -> None:
    with pytest.raises(KubepulseValueError, match=message):
        exact_evaluate(parse_aggregation("avg"), SeriesKind.GAUGE, timestamps, values)

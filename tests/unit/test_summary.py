"""WindowSummary: fields against a plain-loop reference, merging in time order, bytes."""

from __future__ import annotations

import contextlib
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, fields

import pytest

from kubepulse.errors import KubepulseValueError
from kubepulse.stats.sketch import DDSketch
from kubepulse.stats.summary import SeriesKind, WindowSummary

START_MS = 1_700_000_000_000
QUANTILES = [i / 20 for i in range(21)] + [0.99, 0.999]


@dataclass
class Expected:
    """What a summary of some samples must hold, computed with plain loops."""

    count: int
    first_ms: int
    last_ms: int
    first_value: float
    last_value: float
    minimum: float
    maximum: float
    total: float
    increase: float
    last_rate: float
    sketched: list[float]  # the values the sketch must have counted


def reference(kind: SeriesKind, timestamps_ms: list[int], values: list[float]) -> Expected:
    samples = [(t, v) for t, v in zip(timestamps_ms, values, strict=True) if not math.isnan(v)]
    rates = []
    increase = 0.0
    for (previous_t, previous_v), (t, v) in itertools.pairwise(samples):
        if kind is SeriesKind.COUNTER:
            delta = v - previous_v if v >= previous_v else v  # a drop is a reset
        else:
            delta = v - previous_v
        increase += delta
        rates.append(delta * 1000.0 / (t - previous_t))
    sample_values = [v for _, v in samples]
    sketched = rates if kind is SeriesKind.COUNTER else sample_values
    if kind is SeriesKind.GAUGE:
        increase = sample_values[-1] - sample_values[0]
    return Expected(
        count=len(samples),
        first_ms=samples[0][0],
        last_ms=samples[-1][0],
        first_value=sample_values[0],
        last_value=sample_values[-1],
        minimum=min(sketched) if sketched else math.nan,
        maximum=max(sketched) if sketched else math.nan,
        total=math.fsum(sketched),
        increase=increase,
        last_rate=rates[-1] if rates else math.nan,
        sketched=sketched,
    )


def close(actual: float, expected: float, scale: float) -> bool:
    """Equal up to float rounding: NaN matches NaN, else within 1e-9 of the data's scale."""
    if math.isnan(expected):
        return math.isnan(actual)
    return abs(actual - expected) <= 1e-9 * max(scale, abs(expected), 1e-300)


def assert_matches(summary: WindowSummary | None, expected: Expected) -> None:
    assert summary is not None
    # Sums of many terms can cancel (negative gauges): rounding is relative to their size.
    scale = math.fsum(abs(value) for value in expected.sketched) + abs(expected.increase)
    assert summary.count == expected.count
    assert summary.interval_count == expected.count - 1
    assert (summary.first_ms, summary.last_ms) == (expected.first_ms, expected.last_ms)
    assert (summary.first_value, summary.last_value) == (
        expected.first_value,
        expected.last_value,
    )
    for name in ("minimum", "maximum", "total", "increase", "last_rate"):
        actual_value = getattr(summary, name)
        expected_value = getattr(expected, name)
        assert close(actual_value, expected_value, scale), (name, actual_value, expected_value)
    assert summary.sketch.count == len(expected.sketched)
    exact_sketch = DDSketch.from_values(expected.sketched)
    # The sketch counted exactly the expected values: identical buckets, identical answers.
    assert [summary.sketch.quantile(q) for q in QUANTILES] == [
        exact_sketch.quantile(q) for q in QUANTILES
    ]


def assert_same_summary(left: WindowSummary, right: WindowSummary) -> None:
    """Field by field, NaN equal to NaN."""
    for field in fields(WindowSummary):
        a = getattr(left, field.name)
        b = getattr(right, field.name)
        if isinstance(a, float) and math.isnan(a):
            assert isinstance(b, float)
            assert math.isnan(b), field.name
        else:
            assert a == b, field.name


# ---------------------------------------------------------------------- generated series


def regular_timestamps(rng: random.Random, n: int) -> list[int]:
    return [START_MS + 15_000 * i for i in range(n)]


def irregular_timestamps(rng: random.Random, n: int) -> list[int]:
    stamps = [START_MS]
    for _ in range(n - 1):
        # Mostly 15 s apart with jitter, sometimes a long gap (a missed scrape or restart).
        step = rng.choice((15_000, 15_000, 15_000, 120_000)) + rng.randint(-2_000, 2_000)
        stamps.append(stamps[-1] + step)
    return stamps


def gauge_values(rng: random.Random, n: int) -> list[float]:
    return [rng.uniform(0.0, 4.0) for _ in range(n)]


def negative_gauge_values(rng: random.Random, n: int) -> list[float]:
    return [rng.gauss(0.0, 50.0) for _ in range(n)]


def constant_values(rng: random.Random, n: int) -> list[float]:
    return [7.25] * n


def zero_values(rng: random.Random, n: int) -> list[float]:
    return [0.0] * n


def gauge_with_nans(rng: random.Random, n: int) -> list[float]:
    return [math.nan if rng.random() < 0.2 else rng.uniform(-1.0, 1.0) for _ in range(n)]


def counter_values(rng: random.Random, n: int) -> list[float]:
    total = rng.uniform(0.0, 1e6)
    out = []
    for _ in range(n):
        total += rng.expovariate(0.01)
        out.append(total)
    return out


def counter_with_resets(rng: random.Random, n: int) -> list[float]:
    total = 500.0
    out = []
    for _ in range(n):
        if rng.random() < 0.05:
            total = rng.uniform(0.0, 20.0)  # the process restarted
        else:
            total += rng.choice((0.0, rng.uniform(0.0, 30.0)))
        out.append(total)
    return out


def counter_with_nans(rng: random.Random, n: int) -> list[float]:
    return [math.nan if rng.random() < 0.15 else v for v in counter_with_resets(rng, n)]


Generator = Callable[[random.Random, int], list[float]]
CASES: dict[str, tuple[SeriesKind, Generator]] = {
    "gauge": (SeriesKind.GAUGE, gauge_values),
    "negative_gauge": (SeriesKind.GAUGE, negative_gauge_values),
    "constant_gauge": (SeriesKind.GAUGE, constant_values),
    "zero_gauge": (SeriesKind.GAUGE, zero_values),
    "gauge_with_nans": (SeriesKind.GAUGE, gauge_with_nans),
    "counter": (SeriesKind.COUNTER, counter_values),
    "counter_with_resets": (SeriesKind.COUNTER, counter_with_resets),
    "counter_with_nans": (SeriesKind.COUNTER, counter_with_nans),
    "constant_counter": (SeriesKind.COUNTER, constant_values),
}


@pytest.mark.parametrize("stamps", [regular_timestamps, irregular_timestamps])
@pytest.mark.parametrize("case", sorted(CASES))
def test_from_samples_matches_the_plain_loop_reference(
    case: str, stamps: Callable[[random.Random, int], list[int]]
) -> None:
    kind, generate = CASES[case]
    rng = random.Random(case)
    for n in (1, 2, 3, 17, 240):
        timestamps = stamps(rng, n)
        values = generate(rng, n)
        if all(math.isnan(v) for v in values):
            continue
        assert_matches(
            WindowSummary.from_samples(kind, timestamps, values),
            reference(kind, timestamps, values),
        )


@pytest.mark.parametrize("case", sorted(CASES))
def test_merging_pieces_equals_summarising_everything(case: str) -> None:
    kind, generate = CASES[case]
    rng = random.Random(f"merge-{case}")
    for _ in range(20):
        n = rng.randint(2, 300)
        timestamps = irregular_timestamps(rng, n)
        values = generate(rng, n)
        cuts = sorted(rng.sample(range(1, n), rng.randint(1, min(8, n - 1))))
        bounds = list(zip([0, *cuts], [*cuts, n], strict=True))
        pieces = [
            WindowSummary.from_samples(kind, timestamps[start:end], values[start:end])
            for start, end in bounds
        ]
        present = [piece for piece in pieces if piece is not None]  # all-NaN pieces vanish
        if not present:
            continue
        expected = reference(kind, timestamps, values)
        merged = WindowSummary.merge_all(present)
        assert_matches(merged, expected)
        # Pairwise merge() agrees with merge_all().
        folded = present[0]
        for piece in present[1:]:
            folded = folded.merge(piece)
        assert_matches(folded, expected)


def test_counter_reset_exactly_at_a_merge_boundary_counts_the_new_value() -> None:
    timestamps = [START_MS + 10_000 * i for i in range(6)]
    values = [100.0, 110.0, 130.0, 5.0, 15.0, 20.0]  # restarted between 130 and 5
    left = WindowSummary.from_samples(SeriesKind.COUNTER, timestamps[:3], values[:3])
    right = WindowSummary.from_samples(SeriesKind.COUNTER, timestamps[3:], values[3:])
    assert left is not None
    assert right is not None
    merged = left.merge(right)
    # 10 + 20 before, 5 across the reset (the new value itself), then 10 + 5.
    assert merged.increase == 50.0
    assert merged.minimum == 0.5  # 5 over 10 s, at the boundary and again at the end
    assert merged.maximum == 2.0
    assert merged.last_rate == 0.5
    assert merged.sketch.count == 5
    assert_matches(merged, reference(SeriesKind.COUNTER, timestamps, values))


def test_one_sample_counter_has_no_interval() -> None:
    summary = WindowSummary.from_samples(SeriesKind.COUNTER, [START_MS], [42.0])
    assert summary is not None
    assert summary.count == 1
    assert summary.interval_count == 0
    assert math.isnan(summary.minimum)
    assert math.isnan(summary.maximum)
    assert math.isnan(summary.last_rate)
    assert summary.total == 0.0
    assert summary.increase == 0.0
    assert summary.sketch.is_empty

    later = WindowSummary.from_samples(SeriesKind.COUNTER, [START_MS + 4_000], [50.0])
    assert later is not None
    merged = summary.merge(later)
    assert (merged.count, merged.interval_count) == (2, 1)
    assert merged.minimum == merged.maximum == merged.last_rate == 2.0
    assert merged.increase == 8.0


def test_one_sample_gauge() -> None:
    summary = WindowSummary.from_samples(SeriesKind.GAUGE, [START_MS], [-3.5])
    assert summary is not None
    assert (summary.minimum, summary.maximum, summary.total, summary.increase) == (
        -3.5,
        -3.5,
        -3.5,
        0.0,
    )
    assert math.isnan(summary.last_rate)
    later = WindowSummary.from_samples(SeriesKind.GAUGE, [START_MS + 2_000], [0.5])
    assert later is not None
    assert summary.merge(later).last_rate == 2.0  # (0.5 - -3.5) over 2 s


@pytest.mark.parametrize(
    ("timestamps", "values"),
    [([], []), ([START_MS], [math.nan]), ([START_MS, START_MS + 1], [math.nan, math.nan])],
)
def test_no_usable_sample_gives_none(timestamps: list[int], values: list[float]) -> None:
    for kind in SeriesKind:
        assert WindowSummary.from_samples(kind, timestamps, values) is None


@pytest.mark.parametrize(
    ("timestamps", "values", "message"),
    [
        ([START_MS, START_MS + 1], [1.0], "2 timestamps but 1 values"),
        ([START_MS, START_MS], [1.0, 2.0], "strictly increasing"),
        ([START_MS + 5, START_MS], [1.0, 2.0], "strictly increasing"),
        # A NaN sample's timestamp still has to be in order.
        ([START_MS, START_MS + 9, START_MS + 3], [1.0, math.nan, 2.0], "strictly increasing"),
        ([START_MS, START_MS + 1], [1.0, math.inf], "finite"),
        ([START_MS, START_MS + 1], [-math.inf, 1.0], "finite"),
    ],
)
def test_bad_samples_are_rejected_with_advice(
    timestamps: list[int], values: list[float], message: str
) -> None:
    for kind in SeriesKind:
        with pytest.raises(KubepulseValueError, match=message):
            WindowSummary.from_samples(kind, timestamps, values)


def test_bad_relative_accuracy_is_rejected_even_without_samples() -> None:
    with pytest.raises(KubepulseValueError, match="relative_accuracy"):
        WindowSummary.from_samples(SeriesKind.GAUGE, [], [], relative_accuracy=0.0)


def summary_at(kind: SeriesKind, start_ms: int, values: list[float]) -> WindowSummary:
    summary = WindowSummary.from_samples(
        kind, [start_ms + 1_000 * i for i in range(len(values))], values
    )
    assert summary is not None
    return summary


@pytest.mark.parametrize(
    ("later_start_ms", "problem"),
    [
        (START_MS + 2_000, "overlap"),  # starts on the earlier one's last sample
        (START_MS + 1_000, "overlap"),
        (START_MS - 10_000, "time order"),
    ],
)
def test_merge_needs_parts_in_time_order(later_start_ms: int, problem: str) -> None:
    earlier = summary_at(SeriesKind.GAUGE, START_MS, [1.0, 2.0, 3.0])
    later = summary_at(SeriesKind.GAUGE, later_start_ms, [4.0])
    with pytest.raises(KubepulseValueError, match=problem):
        earlier.merge(later)
    with pytest.raises(KubepulseValueError, match=problem):
        WindowSummary.merge_all([earlier, later])


def test_merge_rejects_mixed_kinds_and_accuracies() -> None:
    gauge = summary_at(SeriesKind.GAUGE, START_MS, [1.0, 2.0])
    counter = summary_at(SeriesKind.COUNTER, START_MS + 10_000, [1.0, 2.0])
    with pytest.raises(KubepulseValueError, match="same series"):
        gauge.merge(counter)
    coarse = WindowSummary.from_samples(
        SeriesKind.GAUGE, [START_MS + 10_000], [1.0], relative_accuracy=0.05
    )
    assert coarse is not None
    with pytest.raises(KubepulseValueError, match="relative_accuracy"):
        gauge.merge(coarse)


def test_merge_leaves_its_inputs_unchanged() -> None:
    rng = random.Random(8)
    earlier = summary_at(SeriesKind.COUNTER, START_MS, counter_values(rng, 50))
    later = summary_at(SeriesKind.COUNTER, START_MS + 100_000, counter_values(rng, 50))
    earlier_bytes, later_bytes = earlier.to_bytes(), later.to_bytes()
    merged = WindowSummary.merge_all([earlier, later])
    assert merged is not None
    assert merged.sketch is not earlier.sketch
    assert (earlier.to_bytes(), later.to_bytes()) == (earlier_bytes, later_bytes)


def test_merge_all_of_nothing_and_of_one() -> None:
    assert WindowSummary.merge_all([]) is None
    only = summary_at(SeriesKind.GAUGE, START_MS, [1.0, 5.0])
    alone = WindowSummary.merge_all(iter([only]))
    assert alone is not None
    assert_same_summary(alone, only)
    assert alone.sketch is not only.sketch


# ---------------------------------------------------------------------- bytes


@pytest.mark.parametrize("case", sorted(CASES))
def test_bytes_round_trip(case: str) -> None:
    kind, generate = CASES[case]
    rng = random.Random(f"bytes-{case}")
    for n in (1, 2, 240):
        values = generate(rng, n)
        summary = WindowSummary.from_samples(kind, irregular_timestamps(rng, n), values)
        if summary is None:
            continue
        restored = WindowSummary.from_bytes(summary.to_bytes())
        assert_same_summary(restored, summary)
        # Merged summaries round-trip too (their total and extremes come from the sketch).
        merged = summary.merge(summary_at(kind, summary.last_ms + 60_000, [1e9, 2e9]))
        assert_same_summary(WindowSummary.from_bytes(merged.to_bytes()), merged)


def test_an_hourly_summary_is_compact() -> None:
    rng = random.Random(4)
    values = [max(0.0, rng.gauss(0.5, 0.1)) for _ in range(240)]  # an hour at 15 s
    summary = summary_at(SeriesKind.GAUGE, START_MS, values)
    fixed = 2 + 6 + 3 + 24  # version and kind, first_ms, span, three float64
    sketch_header = 1 + 8 + 2 + 24 + 2
    assert len(summary.to_bytes()) <= fixed + sketch_header + 2.5 * summary.sketch.bucket_count()


def test_truncated_or_damaged_summary_bytes_are_rejected() -> None:
    summary = summary_at(SeriesKind.COUNTER, START_MS, [1.0, 3.0, 2.0, 8.0])
    data = summary.to_bytes()
    for length in range(len(data)):
        with pytest.raises(KubepulseValueError, match="corrupt"):
            WindowSummary.from_bytes(data[:length])
    with pytest.raises(KubepulseValueError, match="trailing"):
        WindowSummary.from_bytes(data + b"\x00")
    with pytest.raises(KubepulseValueError, match="kind code 7"):
        WindowSummary.from_bytes(data[:1] + b"\x07" + data[2:])
    with pytest.raises(KubepulseValueError, match="version 9"):
        WindowSummary.from_bytes(b"\x09" + data[1:])
    # One sample that claims to span 5 ms.
    one_sample = summary_at(SeriesKind.COUNTER, START_MS, [1.0]).to_bytes()
    with pytest.raises(KubepulseValueError, match="cannot span"):
        WindowSummary.from_bytes(one_sample[:8] + b"\x05" + one_sample[9:])


def test_random_corruption_only_raises_kubepulse_value_error() -> None:
    rng = random.Random(21)
    data = summary_at(SeriesKind.GAUGE, START_MS, gauge_values(rng, 100)).to_bytes()
    for _ in range(1000):
        damaged = bytearray(data)
        damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        with contextlib.suppress(KubepulseValueError):
            WindowSummary.from_bytes(bytes(damaged))

"""``Series.increase``, the store's fast path for rates and histogram buckets, vs summaries.

:meth:`Series.increase` must give the numbers the summary path gives (``increase``,
``first_ms``, ``last_ms`` and ``count`` of :meth:`Series.summary`) without building a
sketch. Against the summary of the window's raw samples (``WindowSummary.from_samples``,
the definition) it must agree bit for bit; against :meth:`Series.summary` (the path the
adapter used before, whose memos merge parts with plain additions) to floating-point
rounding, and exactly where the values are integers. The series are random, with counter
resets, NaN staleness markers, values that more than double (inexact differences),
scrape outages, windows cutting sealed chunks, and samples appended between queries.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pytest

from kubepulse.stats.aggregate import (
    evaluate,
    evaluate_increase,
    needs_increase_only,
    parse_aggregation,
)
from kubepulse.stats.summary import SeriesKind, WindowSummary
from kubepulse.store import Series, TimeSeriesStore
from kubepulse.store.series import WindowIncrease

HOUR_MS = 3_600_000
STEP_MS = 15_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS


@dataclass
class Recorded:
    """What a test appended, the reference for every check."""

    timestamps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def window(self, start_ms: int, end_ms: int) -> tuple[list[int], list[float]]:
        pairs = [
            (stamp, value)
            for stamp, value in zip(self.timestamps, self.values, strict=True)
            if start_ms <= stamp <= end_ms
        ]
        return [stamp for stamp, _ in pairs], [value for _, value in pairs]


def next_value(rng: random.Random, kind: SeriesKind, level: float, integers: bool) -> float:
    """The next sample: mostly steady growth, sometimes a reset, a jump or a NaN marker."""
    roll = rng.random()
    if roll < 0.01:
        return math.nan
    if kind is SeriesKind.GAUGE:
        step = rng.gauss(0, 50)
        return float(round(level + step)) if integers else level + step
    if roll < 0.02:
        return 0.0  # a restart
    if roll < 0.03:
        return float(rng.randint(0, 5)) if integers else rng.uniform(0, 5)  # small restart
    if roll < 0.04:
        return level * 3 + 1  # more than doubles: the difference may be inexact
    step = rng.randint(0, 40) if integers else rng.uniform(0, 40) * rng.choice((1, 1e-7, 1e6))
    return level + step


def fill(
    store: TimeSeriesStore, rng: random.Random, kind: SeriesKind, hours: float, integers: bool
) -> tuple[Series, Recorded]:
    series = store.series("metric", {"pod": "p"}, kind)
    recorded = Recorded()
    stamp = START_MS + rng.randint(0, 60_000)
    level = rng.uniform(0, 1e6) if not integers else float(rng.randint(0, 10**6))
    end_ms = START_MS + int(hours * HOUR_MS)
    while stamp < end_ms:
        if rng.random() < 0.003:
            stamp += rng.randint(1, 2) * HOUR_MS  # a scrape outage
        value = next_value(rng, kind, level, integers)
        if value == value:
            level = value
        append(series, recorded, stamp, value)
        stamp += STEP_MS + rng.randint(-500, 500)
    return series, recorded


def append(series: Series, recorded: Recorded, stamp: int, value: float) -> None:
    series.append(stamp, value)
    recorded.timestamps.append(stamp)
    recorded.values.append(value)


def reference(
    kind: SeriesKind, timestamps: list[int], values: list[float]
) -> WindowIncrease | None:
    summary = WindowSummary.from_samples(kind, timestamps, values)
    if summary is None:
        return None
    return WindowIncrease(summary.increase, summary.first_ms, summary.last_ms, summary.count)


def assert_same(got: WindowIncrease | None, expected: WindowIncrease | None) -> None:
    """Bit for bit (``increase`` compared by its float value, -0.0 == 0.0 as fsum gives)."""
    assert (got is None) == (expected is None)
    if got is not None and expected is not None:
        assert got == expected


def assert_close_to_summary(
    got: WindowIncrease | None, series: Series, start: int, end: int, exact: bool
) -> None:
    summary = series.summary(start, end)
    assert (got is None) == (summary is None)
    if got is None or summary is None:
        return
    assert (got.first_ms, got.last_ms, got.sample_count) == (
        summary.first_ms,
        summary.last_ms,
        summary.count,
    )
    if exact:
        assert got.increase == summary.increase
    else:
        assert got.increase == pytest.approx(summary.increase, rel=1e-12, abs=1e-6)


def random_window(rng: random.Random, recorded: Recorded) -> tuple[int, int]:
    first, last = recorded.timestamps[0], recorded.timestamps[-1]
    roll = rng.random()
    if roll < 0.5:  # what HPAs ask: a few minutes ending at the newest data
        end = last + rng.randint(-HOUR_MS, 60_000)
        return end - rng.choice((30_000, 60_000, 300_000, 600_000, 1_800_000)), end
    if roll < 0.7:  # across a chunk boundary
        boundary = START_MS + rng.randint(1, (last - START_MS) // HOUR_MS + 1) * HOUR_MS
        return boundary - rng.randint(0, 900_000), boundary + rng.randint(0, 900_000)
    if roll < 0.8:  # longer than a chunk range: the summary path
        start = rng.randint(first - HOUR_MS, last)
        return start, start + rng.randint(HOUR_MS, 6 * HOUR_MS)
    start = rng.randint(first - 60_000, last)
    return start, start + rng.randint(0, 20 * 60_000)


@pytest.mark.parametrize("kind", list(SeriesKind))
@pytest.mark.parametrize("integers", [True, False], ids=["integers", "floats"])
@pytest.mark.parametrize("seed", range(3))
def test_increase_of_any_window_equals_the_summary_of_its_raw_samples(
    kind: SeriesKind, integers: bool, seed: int
) -> None:
    rng = random.Random(f"{kind.value}-{integers}-{seed}")
    store = TimeSeriesStore(retention_ms=48 * HOUR_MS)
    series, recorded = fill(store, rng, kind, 8, integers)
    assert len(series.chunks) >= 5
    for _ in range(300):
        start, end = random_window(rng, recorded)
        got = series.increase(start, end)
        window = recorded.window(start, end)
        if end - start < HOUR_MS:  # at most one sealed chunk: the fast path's own answer
            assert_same(got, reference(kind, *window))
        assert_close_to_summary(got, series, start, end, exact=integers)


@pytest.mark.parametrize("kind", list(SeriesKind))
@pytest.mark.parametrize("integers", [True, False], ids=["integers", "floats"])
def test_a_sliding_window_stays_exact_as_samples_arrive(kind: SeriesKind, integers: bool) -> None:
    """An HPA's pattern: a sample arrives, the same 5 m window is asked again, across hours.

    The head's scan of irregular pairs grows with every sample and is forgotten when the
    head seals; the edge chunk's scan is made once.
    """
    rng = random.Random(f"sliding-{kind.value}-{integers}")
    store = TimeSeriesStore(retention_ms=8 * HOUR_MS)
    series, recorded = fill(store, rng, kind, 1.5, integers)
    stamp = recorded.timestamps[-1]
    level = recorded.values[-1] if recorded.values[-1] == recorded.values[-1] else 1.0
    for step in range(700):
        stamp += STEP_MS
        value = next_value(rng, kind, level, integers)
        if value == value:
            level = value
        append(series, recorded, stamp, value)
        for window_ms in (60_000, 300_000):
            start = stamp - window_ms
            got = series.increase(start, stamp)
            assert_same(got, reference(kind, *recorded.window(start, stamp)))
            assert_close_to_summary(got, series, start, stamp, exact=integers)
        if step % 200 == 0:
            store.compact(stamp)


def test_regular_counters_take_first_and_last_and_resets_count_from_zero() -> None:
    store = TimeSeriesStore()
    series = store.series("requests_total", {"pod": "a"}, SeriesKind.COUNTER)
    for index, value in enumerate([10.0, 20.0, 5.0, 15.0, 15.0, math.nan, 18.0]):
        series.append(START_MS + index * STEP_MS, value)
    # 10 -> 20 (+10), reset to 5 (+5), +10, +0, NaN skipped, +3.
    assert series.increase(START_MS, START_MS + HOUR_MS) == WindowIncrease(
        28.0, START_MS, START_MS + 6 * STEP_MS, 6
    )
    assert series.increase(START_MS + 2 * STEP_MS, START_MS + 4 * STEP_MS) == WindowIncrease(
        10.0, START_MS + 2 * STEP_MS, START_MS + 4 * STEP_MS, 3
    )
    # One sample: no increase yet; only a NaN marker: nothing.
    assert series.increase(START_MS, START_MS) == WindowIncrease(0.0, START_MS, START_MS, 1)
    assert series.increase(START_MS + 5 * STEP_MS, START_MS + 5 * STEP_MS) is None
    assert series.increase(START_MS + HOUR_MS, START_MS - 1) is None


def test_windows_longer_than_a_chunk_go_through_the_summaries() -> None:
    store = TimeSeriesStore(retention_ms=8 * HOUR_MS)
    series = store.series("requests_total", {"pod": "a"}, SeriesKind.COUNTER)
    for index in range(4 * 240):
        series.append(START_MS + index * STEP_MS, float(index * 3))
    assert len(series.chunks) == 3
    got = series.increase(START_MS, START_MS + 4 * HOUR_MS)
    assert got == WindowIncrease(
        3.0 * (4 * 240 - 1), START_MS, START_MS + (4 * 240 - 1) * STEP_MS, 960
    )


@pytest.mark.parametrize("kind", list(SeriesKind))
def test_statistics_from_the_increase_equal_those_from_the_summary(kind: SeriesKind) -> None:
    """``evaluate_increase`` over ``Series.increase`` is ``evaluate`` over the raw summary."""
    rng = random.Random(f"statistics-{kind.value}")
    store = TimeSeriesStore(retention_ms=48 * HOUR_MS)
    series, recorded = fill(store, rng, kind, 4, integers=False)
    aggregations = [
        aggregation
        for aggregation in map(
            parse_aggregation, ("avg", "min", "max", "sum", "last", "rate", "p95")
        )
        if needs_increase_only(aggregation, kind)
    ]
    expected_names = {"avg", "sum", "rate"} if kind is SeriesKind.COUNTER else {"rate"}
    assert {aggregation.name for aggregation in aggregations} == expected_names
    for _ in range(200):
        start, end = random_window(rng, recorded)
        if end - start >= HOUR_MS:
            continue
        window = recorded.window(start, end)
        summary = WindowSummary.from_samples(kind, *window)
        increase = series.increase(start, end)
        for aggregation in aggregations:
            expected = evaluate(aggregation, summary)
            got = None if increase is None else evaluate_increase(aggregation, *increase)
            assert got == expected  # never NaN: a window with a value has a span


def test_the_name_generation_changes_when_series_come_and_go_not_on_appends() -> None:
    store = TimeSeriesStore()
    assert store.name_generation("requests_total") == 0
    first = store.series("requests_total", {"pod": "a"}, SeriesKind.COUNTER)
    created = store.name_generation("requests_total")
    assert created != 0
    first.append(START_MS, 1.0)
    store.append("requests_total", {"pod": "a"}, START_MS + STEP_MS, 2.0, SeriesKind.COUNTER)
    store.series("requests_total", {"pod": "a"}, SeriesKind.COUNTER)  # exists already
    assert store.name_generation("requests_total") == created
    store.series("other", {"pod": "a"})
    assert store.name_generation("requests_total") == created
    store.series("requests_total", {"pod": "b"}, SeriesKind.COUNTER)
    added = store.name_generation("requests_total")
    assert added != created
    store.delete_series(pod="b")
    assert store.name_generation("requests_total") not in (created, added)


def test_the_name_generation_in_a_namespace_ignores_other_namespaces() -> None:
    store = TimeSeriesStore()
    store.series("requests_total", {"namespace": "a", "pod": "p"}, SeriesKind.COUNTER)
    in_a = store.name_generation("requests_total", "a")
    assert in_a != 0
    assert store.name_generation("requests_total", "b") == 0
    store.series("requests_total", {"namespace": "b", "pod": "p"}, SeriesKind.COUNTER)
    store.series("other", {"namespace": "a", "pod": "q"})
    store.series("requests_total", {"pod": "unnamespaced"}, SeriesKind.COUNTER)
    assert store.name_generation("requests_total", "a") == in_a
    overall = store.name_generation("requests_total")
    assert overall not in (0, in_a)
    store.delete_series(namespace="a", pod="p")
    assert store.name_generation("requests_total", "a") not in (0, in_a)
    assert store.name_generation("requests_total") != overall

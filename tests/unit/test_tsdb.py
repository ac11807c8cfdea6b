"""The store and its series: exact window summaries, retention, staleness, selection, deletion."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from kubepulse.errors import KubepulseValueError
from kubepulse.stats.summary import SeriesKind, WindowSummary
from kubepulse.store import AppendOutcome, Series, TimeSeriesStore

HOUR_MS = 3_600_000
STEP_MS = 15_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS
ACCURACY = 0.01
QUANTILES = (0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0)


@dataclass
class Recorded:
    """The samples a test appended to one series, as the reference for every check."""

    kind: SeriesKind
    timestamps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def window(self, start_ms: int, end_ms: int) -> tuple[list[int], list[float]]:
        pairs = [
            (stamp, value)
            for stamp, value in zip(self.timestamps, self.values, strict=True)
            if start_ms <= stamp <= end_ms
        ]
        return [stamp for stamp, _ in pairs], [value for _, value in pairs]


def counter_rates(timestamps: list[int], values: list[float]) -> list[float]:
    """Per-interval rates with Prometheus' reset rule: a drop means the counter restarted."""
    rates = []
    for index in range(1, len(values)):
        previous, current = values[index - 1], values[index]
        increase = current - previous if current >= previous else current
        rates.append(increase * 1000.0 / (timestamps[index] - timestamps[index - 1]))
    return rates


def exact_quantile(population: list[float], q: float) -> float:
    ordered = sorted(population)
    return ordered[math.floor(q * (len(ordered) - 1))]


def same_float(left: float, right: float) -> bool:
    return (math.isnan(left) and math.isnan(right)) or left == right


def assert_matches_raw(
    got: WindowSummary | None, kind: SeriesKind, timestamps: list[int], values: list[float]
) -> None:
    """``got`` must equal the summary of the raw samples, and its quantiles the exact ones."""
    expected = WindowSummary.from_samples(kind, timestamps, values, relative_accuracy=ACCURACY)
    if expected is None:
        assert got is None
        return
    assert got is not None
    # NaN samples (staleness markers) are skipped: counters' intervals span them.
    kept = [
        (stamp, value) for stamp, value in zip(timestamps, values, strict=True) if value == value
    ]
    timestamps = [stamp for stamp, _ in kept]
    values = [value for _, value in kept]
    assert got.kind is expected.kind
    assert got.count == expected.count == len(values)
    assert (got.first_ms, got.last_ms) == (expected.first_ms, expected.last_ms)
    assert got.first_value == expected.first_value
    assert got.last_value == expected.last_value
    assert same_float(got.minimum, expected.minimum)
    assert same_float(got.maximum, expected.maximum)
    assert same_float(got.last_rate, expected.last_rate)
    assert got.total == pytest.approx(expected.total, rel=1e-12, abs=1e-9)
    assert got.increase == pytest.approx(expected.increase, rel=1e-12, abs=1e-9)
    assert got.sketch.count == expected.sketch.count
    population = values if kind is SeriesKind.GAUGE else counter_rates(timestamps, values)
    for q in QUANTILES:
        # Merging sketches adds bucket counts, so merged and direct sketches agree exactly.
        assert got.sketch.quantile(q) == expected.sketch.quantile(q)
        if population:
            estimate = got.sketch.quantile(q)
            assert estimate is not None
            exact = exact_quantile(population, q)
            assert abs(estimate - exact) <= ACCURACY * abs(exact) + 1e-12


def fill(
    store: TimeSeriesStore,
    rng: random.Random,
    kind: SeriesKind,
    hours: float,
    labels: Mapping[str, str] | None = None,
) -> tuple[Series, Recorded]:
    """Append jittered 15 s samples with gaps (and resets for counters) for ``hours``."""
    series = store.series("metric", labels or {"pod": "p"}, kind)
    recorded = Recorded(kind)
    stamp = START_MS + rng.randint(0, 60_000)
    counter = rng.uniform(0, 1e6)
    gauge = rng.uniform(1e6, 1e9)
    end_ms = START_MS + int(hours * HOUR_MS)
    while stamp < end_ms:
        if rng.random() < 0.002:
            stamp += rng.randint(1, 3) * HOUR_MS  # a scrape outage
        if kind is SeriesKind.COUNTER:
            counter = 0.0 if rng.random() < 0.003 else counter + round(rng.uniform(0, 30), 6)
            value = counter
        else:
            gauge = max(0.0, gauge + rng.gauss(0, 1e6))
            value = float(round(gauge) // 4096 * 4096)
        assert series.append(stamp, value) is AppendOutcome.APPENDED
        recorded.timestamps.append(stamp)
        recorded.values.append(value)
        stamp += STEP_MS + rng.randint(-500, 500)
    return series, recorded


def chunk_count(series: Series) -> int:
    return len(series.chunks)


def random_window(rng: random.Random, recorded: Recorded) -> tuple[int, int]:
    first, last = recorded.timestamps[0], recorded.timestamps[-1]
    choice = rng.random()
    if choice < 0.2:  # aligned on chunk windows
        start = START_MS + rng.randint(0, (last - START_MS) // HOUR_MS) * HOUR_MS
        return start, start + rng.randint(1, 30) * HOUR_MS - 1
    if choice < 0.3:  # inside one chunk window
        start = rng.randint(first, last)
        return start, start + rng.randint(0, 20 * 60_000)
    if choice < 0.4:  # beyond the data on either side
        return first - rng.randint(0, 5 * HOUR_MS), last + rng.randint(0, 5 * HOUR_MS)
    start = rng.randint(first - HOUR_MS, last)
    return start, rng.randint(start, last + HOUR_MS)


@pytest.mark.parametrize("kind", list(SeriesKind))
@pytest.mark.parametrize("seed", range(4))
def test_summary_of_any_window_equals_the_summary_of_its_raw_samples(
    kind: SeriesKind, seed: int
) -> None:
    rng = random.Random(seed)
    store = TimeSeriesStore(retention_ms=48 * HOUR_MS)
    series, recorded = fill(store, rng, kind, hours=30)
    assert len(series.chunks) >= 15  # hourly chunks, fewer where an outage left a gap
    for _ in range(80):
        start, end = random_window(rng, recorded)
        assert_matches_raw(store.summary(series, start, end), kind, *recorded.window(start, end))
        timestamps, values = series.samples(start, end)
        assert (list(timestamps), list(values)) == recorded.window(start, end)


@pytest.mark.parametrize("kind", list(SeriesKind))
@pytest.mark.parametrize("windows", ["fixed", "alternating"])
def test_a_sliding_window_queried_between_scrapes_stays_exact(
    kind: SeriesKind, windows: str
) -> None:
    """What an HPA does: a sample arrives, the same long window is asked again, repeat.

    This goes through the query memos (the merged run of chunks and the run without its
    first chunk, the head summary, the decoded edge chunk) as they grow, get invalidated
    by sealing and are reused when the start moves on. One hour holds only NaN samples
    (a target that reported staleness markers): its chunk has no summary.
    """
    rng = random.Random(f"{kind.value}-{windows}")
    store = TimeSeriesStore(retention_ms=8 * HOUR_MS)
    series, recorded = fill(store, rng, kind, hours=5)
    stamp = recorded.timestamps[-1]
    level = recorded.values[-1]
    for step in range(1300):
        stamp += STEP_MS
        level += rng.randint(0, 100) if kind is SeriesKind.COUNTER else rng.gauss(0, 10)
        value = level if kind is SeriesKind.COUNTER else float(round(level))
        if 300 <= step < 560:
            value = math.nan
        store.append_many([(series, stamp, value)])
        recorded.timestamps.append(stamp)
        recorded.values.append(value)
        window_ms = 3 * HOUR_MS
        if windows == "alternating" and step % 5 == 0:
            window_ms = 4 * HOUR_MS + 7_000
        start = stamp - window_ms
        assert_matches_raw(series.summary(start, stamp), kind, *recorded.window(start, stamp))
        if step % 240 == 0:
            store.compact(stamp)


def test_counter_resets_count_the_new_value_as_the_increase() -> None:
    store = TimeSeriesStore()
    series = store.series("requests_total", {"pod": "a"}, SeriesKind.COUNTER)
    for index, value in enumerate([10.0, 20.0, 5.0, 15.0, 15.0]):
        series.append(START_MS + index * STEP_MS, value)
    summary = series.summary(START_MS, START_MS + HOUR_MS)
    assert summary is not None
    assert summary.increase == 10.0 + 5.0 + 10.0 + 0.0
    assert summary.minimum == 0.0
    assert summary.maximum == 10.0 * 1000 / STEP_MS


def test_heads_seal_into_one_chunk_per_aligned_window() -> None:
    store = TimeSeriesStore()
    series = store.series("m", {}, SeriesKind.GAUGE)
    for index in range(240 * 3 + 10):
        series.append(START_MS + index * STEP_MS, float(index))
    assert len(series.chunks) == 3
    for hour, chunk_bytes in enumerate(series.chunks):
        summary = store.summary(
            series, START_MS + hour * HOUR_MS, START_MS + (hour + 1) * HOUR_MS - 1
        )
        assert summary is not None
        assert summary.count == 240
        assert len(chunk_bytes) < 240 * 2
    assert len(series.head[0]) == 10


def test_compaction_seals_finished_heads_and_a_late_sample_starts_a_new_chunk() -> None:
    store = TimeSeriesStore()
    series = store.series("m", {}, SeriesKind.COUNTER)
    recorded = Recorded(SeriesKind.COUNTER)
    for index in range(100):
        series.append(START_MS + index * STEP_MS, float(index))
        recorded.timestamps.append(START_MS + index * STEP_MS)
        recorded.values.append(float(index))
    result = store.compact(START_MS + HOUR_MS)
    assert (result.sealed_heads, result.dropped_samples, result.removed_series) == (1, 0, 0)
    assert chunk_count(series) == 1
    assert len(series.head[0]) == 0
    late = START_MS + 100 * STEP_MS  # still inside the sealed chunk's window
    assert series.append(late, 100.0) is AppendOutcome.APPENDED
    recorded.timestamps.append(late)
    recorded.values.append(100.0)
    series.seal_head()
    assert chunk_count(series) == 2
    assert_matches_raw(series.summary(0, late), SeriesKind.COUNTER, *recorded.window(0, late))


def test_retention_drops_whole_old_chunks_and_then_empty_series() -> None:
    store = TimeSeriesStore(retention_ms=6 * HOUR_MS)
    rng = random.Random(5)
    kept, kept_record = fill(store, rng, SeriesKind.GAUGE, hours=10, labels={"pod": "kept"})
    gone = store.series("metric", {"pod": "gone"}, SeriesKind.GAUGE)
    gone.append(START_MS, 1.0)
    now = kept_record.timestamps[-1]
    before = store.sample_count
    result = store.compact(now)
    cutoff = now - 6 * HOUR_MS
    assert result.removed_series == 1
    assert gone.deleted
    assert store.series_count == 1
    remaining, _ = kept.samples(0, now)
    # Whole chunks go: a chunk window is kept when its newest sample is not older
    # than the cutoff, so the oldest kept sample may be up to a window before it.
    last_in_window: dict[int, int] = {}
    for stamp in kept_record.timestamps:
        last_in_window[stamp // HOUR_MS] = stamp
    expected = [
        stamp for stamp in kept_record.timestamps if last_in_window[stamp // HOUR_MS] >= cutoff
    ]
    assert list(remaining) == expected
    assert expected[0] < cutoff < expected[-1]
    assert store.sample_count == len(expected) == before - result.dropped_samples


def test_append_outcomes_follow_prometheus() -> None:
    store = TimeSeriesStore(resolution_ms=15_000)  # minimum interval 12 s
    series = store.series("m", {"pod": "a"})
    assert series.append(START_MS, 1.0) is AppendOutcome.APPENDED
    assert series.append(START_MS - 1, 1.0) is AppendOutcome.OUT_OF_ORDER
    assert series.append(START_MS, 1.0) is AppendOutcome.DUPLICATE
    assert series.append(START_MS, 2.0) is AppendOutcome.CONFLICTING_DUPLICATE
    assert series.append(START_MS + 11_999, 2.0) is AppendOutcome.TOO_FREQUENT
    assert series.append(START_MS + 12_000, math.inf) is AppendOutcome.INFINITE
    assert series.append(START_MS + 12_000, -math.inf) is AppendOutcome.INFINITE
    assert series.append(START_MS + 12_000, math.nan) is AppendOutcome.APPENDED
    assert series.append(START_MS + 12_000, math.nan) is AppendOutcome.DUPLICATE
    assert store.append("m", {"pod": "a"}, START_MS + 30_000, 3.0)
    assert not store.append("m", {"pod": "a"}, START_MS + 30_000, 4.0)
    counts = store.outcome_counts
    assert counts[AppendOutcome.APPENDED] == 1
    assert counts[AppendOutcome.CONFLICTING_DUPLICATE] == 1
    timestamps, values = series.samples(0, START_MS + HOUR_MS)
    assert list(timestamps) == [START_MS, START_MS + 12_000, START_MS + 30_000]
    assert values[0] == 1.0
    assert math.isnan(values[1])
    assert values[2] == 3.0


def test_scraping_faster_than_the_resolution_keeps_one_sample_per_interval() -> None:
    store = TimeSeriesStore(resolution_ms=15_000, min_interval_ms=15_000)
    series = store.series("m", {})
    stored = store.append_many(
        (series, START_MS + second * 1000, float(second)) for second in range(600)
    )
    assert stored == 40
    assert store.outcome_counts[AppendOutcome.TOO_FREQUENT] == 560
    timestamps, _ = series.samples(0, START_MS + HOUR_MS)
    assert list(timestamps) == [START_MS + 15_000 * index for index in range(40)]


def test_latest_is_absent_when_stale_or_marked_stale() -> None:
    store = TimeSeriesStore()
    series = store.series("m", {"pod": "a"})
    assert store.latest(series, START_MS, 60_000) is None
    series.append(START_MS, 5.0)
    assert store.latest(series, START_MS + 60_000, 60_000) == (START_MS, 5.0)
    assert store.latest(series, START_MS + 60_001, 60_000) is None
    series.append(START_MS + STEP_MS, math.nan)  # the target said the series is gone
    assert store.latest(series, START_MS + STEP_MS, 60_000) is None
    series.append(START_MS + 2 * STEP_MS, 7.0)
    assert store.latest(series, START_MS + 2 * STEP_MS, 60_000) == (START_MS + 2 * STEP_MS, 7.0)


def populate_pods(store: TimeSeriesStore, pods: int) -> dict[str, list[Series]]:
    by_metric: dict[str, list[Series]] = {}
    for pod in range(pods):
        labels = {
            "namespace": f"ns-{pod % 50}",
            "pod": f"pod-{pod}",
            "pod_uid": f"uid-{pod}",
            "container": "app",
        }
        for metric, kind in (("cpu", SeriesKind.COUNTER), ("memory", SeriesKind.GAUGE)):
            series = store.series(metric, labels, kind)
            series.append(START_MS, float(pod))
            by_metric.setdefault(metric, []).append(series)
    return by_metric


def test_select_goes_through_the_postings_index() -> None:
    store = TimeSeriesStore()
    by_metric = populate_pods(store, 5000)
    seen: list[Mapping[str, str]] = []

    def even_pods(labels: Mapping[str, str]) -> bool:
        seen.append(labels)
        return int(labels["pod"].split("-")[1]) % 2 == 0

    selected = store.select("cpu", even_pods, namespace="ns-7")
    # The predicate only sees the 100 series the index returned, not the 10,000.
    assert len(seen) == 100
    expected = [
        series
        for series in by_metric["cpu"]
        if series.labels["namespace"] == "ns-7" and int(series.labels["pod"][4:]) % 2 == 0
    ]
    assert selected == sorted(expected, key=lambda series: series.label_pairs)
    assert store.select("cpu", namespace="ns-7", pod="pod-7") == [by_metric["cpu"][7]]
    assert store.select("cpu", namespace="ns-7", pod="pod-8") == []
    assert store.select("nonexistent") == []
    assert store.label_values("__name__") == ["cpu", "memory"]


def test_delete_series_when_a_pod_goes_away() -> None:
    store = TimeSeriesStore()
    by_metric = populate_pods(store, 200)
    samples_before = store.sample_count
    assert store.delete_series(pod_uid="uid-3") == 2
    assert store.delete_series(namespace="ns-4", pod="pod-4") == 2
    assert store.delete_series(lambda labels: labels["pod"] == "pod-5", namespace="ns-5") == 2
    assert store.delete_series(__name__="memory", pod="pod-6") == 1
    assert store.series_count == 400 - 7
    assert store.sample_count == samples_before - 7
    assert store.select("cpu", pod="pod-3") == []
    assert "uid-3" not in store.label_values("pod_uid")
    deleted = by_metric["cpu"][3]
    assert deleted.deleted
    assert store.append_many([(deleted, START_MS + HOUR_MS, 1.0)]) == 0
    assert store.select("cpu", pod="pod-6") == [by_metric["cpu"][6]]
    with pytest.raises(KubepulseValueError, match="every series"):
        store.delete_series()


def test_a_series_keeps_its_kind() -> None:
    store = TimeSeriesStore()
    store.series("m", {"pod": "a"}, SeriesKind.COUNTER)
    with pytest.raises(KubepulseValueError, match="counter, not a gauge"):
        store.series("m", {"pod": "a"}, SeriesKind.GAUGE)
    assert store.series("m", {"pod": "a"}, SeriesKind.COUNTER) is store.series(
        "m", {"pod": "a"}, SeriesKind.COUNTER
    )


def test_counts_memory_and_time_range() -> None:
    store = TimeSeriesStore()
    assert store.time_range() is None
    rng = random.Random(9)
    recorded = [
        fill(store, rng, kind, hours=3, labels={"pod": str(index)})[1]
        for index, kind in enumerate([SeriesKind.GAUGE, SeriesKind.COUNTER] * 3)
    ]
    total = sum(len(record.timestamps) for record in recorded)
    assert store.sample_count == total
    assert sum(series.sample_count for series in store) == total
    assert store.series_count == 6
    oldest = min(record.timestamps[0] for record in recorded)
    newest = max(record.timestamps[-1] for record in recorded)
    assert store.time_range() == (oldest, newest)
    chunk_bytes = sum(len(chunk) for series in store for chunk in series.chunks)
    # The estimate covers at least the chunks, and stays below the 16 bytes a raw
    # timestamp and value would take (these gauges are noisy on purpose).
    assert chunk_bytes < store.memory_bytes() < 16 * total


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"resolution_ms": 0}, "resolution_ms"),
        ({"retention_ms": 1000}, "shorter than one chunk range"),
        ({"relative_accuracy": 1.5}, "relative_accuracy"),
        ({"min_interval_ms": 10, "chunk_range_ms": HOUR_MS}, "samples per chunk"),
        ({"chunk_range_ms": 2**31, "retention_ms": 2**32, "min_interval_ms": 10**6}, "2\\*\\*31"),
    ],
)
def test_invalid_settings_are_refused(settings: dict[str, float], problem: str) -> None:
    with pytest.raises(KubepulseValueError, match=problem):
        TimeSeriesStore(**settings)  # type: ignore[arg-type]

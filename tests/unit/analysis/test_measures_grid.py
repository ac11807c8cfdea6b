""":class:`GridReader` and :meth:`HistoryAssembler.add_grid_points` equal the per-series path.

The reader and the grid points exist for speed only: on random series (irregular and
shared timestamps, counter restarts, staleness markers, infinities, gaps longer than the
window, empty series) every figure must be exactly what :func:`rate_points`,
:func:`gauge_points` and :func:`grid_samples` with :func:`increment_instants` give, and a
history assembled from grid points must equal, key order included, the one assembled
with :meth:`HistoryAssembler.add_points`.
"""

from __future__ import annotations

import math
import random
from array import array

import pytest

from kubepulse.analysis.inputs import UsageHistory
from kubepulse.analysis.measures import (
    GRID_READER_PATTERNS,
    MEASURES,
    GridReader,
    HistoryAssembler,
    Reduce,
    Transform,
    evaluation_grid,
    gauge_points,
    grid_samples,
    increment_instants,
    measure,
    rate_points,
)

STEP = 15_000
T0 = 1_700_000_000_000


def random_samples(rng: random.Random, count: int) -> tuple[array[int], array[float]]:
    """Scrape-like timestamps with jitter and gaps; counter-like or gauge-like values."""
    timestamps: array[int] = array("q")
    values: array[float] = array("d")
    stamp = T0 - rng.randint(0, 20) * STEP
    counter = rng.random() < 0.6
    level = rng.uniform(0, 5)
    for _ in range(count):
        stamp += rng.choice((STEP, STEP, STEP, STEP + rng.randint(-3000, 3000), 7 * STEP, 1))
        if counter:
            level = 0.0 if rng.random() < 0.03 else level + rng.choice((0.0, rng.uniform(0, 3)))
        else:
            level = rng.choice((level, rng.uniform(-1, 2), 0.0, -0.0, 1.0))
        value = level
        draw = rng.random()
        if draw < 0.02:
            value = math.nan
        elif draw < 0.025:
            value = math.inf
        timestamps.append(stamp)
        values.append(value)
    return timestamps, values


def pairs(points: list[tuple[int, float]]) -> tuple[tuple[int, ...], list[float]]:
    return tuple(t for t, _ in points), [v for _, v in points]


def same(
    left: tuple[tuple[int, ...], list[float]], right: tuple[tuple[int, ...], list[float]]
) -> None:
    """Equal timestamps and values, bit for bit (0.0 is not -0.0; NaN never appears)."""
    assert tuple(left[0]) == tuple(right[0])
    assert [math.copysign(1, v) for v in left[1]] == [math.copysign(1, v) for v in right[1]]
    assert list(left[1]) == list(right[1])


@pytest.mark.parametrize("seed", range(40))
def test_the_reader_equals_the_per_series_transforms(seed: int) -> None:
    rng = random.Random(seed)
    step = rng.choice((STEP, 2 * STEP, 60_000))
    grid = evaluation_grid(T0, T0 + rng.randint(0, 80) * STEP, step)
    lookback = max(step, 2 * STEP) + rng.choice((0, 1000))
    reader = GridReader(grid, lookback)
    for _ in range(30):
        timestamps, values = random_samples(rng, rng.choice((0, 1, 2, 5, 40, 120)))
        samples = list(zip(timestamps, values, strict=True))
        same(reader.rate(timestamps, values), pairs(rate_points(samples, grid, lookback)))
        for reduce in Reduce:
            expected = pairs(gauge_points(samples, grid, lookback, reduce))
            same(reader.gauge(timestamps, values, reduce), expected)
        instants = increment_instants(grid_samples(samples, grid))
        assert reader.increment_instants(timestamps, values) == instants


def test_series_sharing_timestamps_share_their_windows_and_the_memory_is_bounded() -> None:
    rng = random.Random(5)
    grid = evaluation_grid(T0, T0 + 40 * STEP, STEP)
    reader = GridReader(grid, 2 * STEP)
    timestamps = array("q", range(T0 - 10 * STEP, T0 + 41 * STEP, STEP))
    for _ in range(3):
        values = array("d", sorted(rng.uniform(0, 100) for _ in timestamps))
        samples = list(zip(timestamps, values, strict=True))
        same(reader.rate(timestamps, values), pairs(rate_points(samples, grid, 2 * STEP)))
    assert len(reader._windows) == 1
    for shift in range(GRID_READER_PATTERNS + 5):
        reader.gauge(array("q", [T0 + shift]), array("d", [1.0]), Reduce.MAX)
    assert len(reader._windows) <= GRID_READER_PATTERNS


def assembled(seed: int, fast: bool) -> UsageHistory:
    """A history of random series on a few keys, from grid points or from pairs."""
    rng = random.Random(seed)
    grid = evaluation_grid(T0, T0 + 30 * STEP, STEP)
    lookback = 2 * STEP
    reader = GridReader(grid, lookback)
    # A range narrower than the grid on some seeds, so that the range filter applies.
    assembler = HistoryAssembler(T0 + rng.choice((0, 3 * STEP)), grid[-1])
    keys: dict[str, list[tuple[str, ...]]] = {
        "container": [("ns", f"pod-{i}", "app") for i in range(4)],
        "node": [(f"node-{i}",) for i in range(3)],
        "quota": [("ns", "q", "cpu"), ("ns", "q", "memory")],
    }
    for row in MEASURES:
        kind = {"node": "node", "namespace": "container"}[row.key[0]]
        if row.field == "quota_used":
            kind = "quota"
        for part, _metric in enumerate(row.metrics):
            for _ in range(rng.randint(0, 8)):
                key = rng.choice(keys[kind])
                timestamps, values = random_samples(rng, rng.choice((0, 3, 30, 60)))
                if rng.random() < 0.7:  # most values finite, as scraped
                    values = array("d", (v if math.isfinite(v) else 1.0 for v in values))
                if row.transform is Transform.RATIO_OF_RATES and rng.random() < 0.5:
                    values = array("d", sorted(abs(v) for v in values))  # a rising counter
                samples = list(zip(timestamps, values, strict=True))
                if row.transform is Transform.INCREMENTS:
                    instants = reader.increment_instants(timestamps, values)
                    assembler.add_instants(row, key, instants)
                elif row.transform is Transform.GAUGE:
                    assert row.reduce is not None
                    if fast:
                        points = reader.gauge(timestamps, values, row.reduce)
                        assembler.add_grid_points(row, key, points, part)
                    else:
                        pairs_ = gauge_points(samples, grid, lookback, row.reduce)
                        assembler.add_points(row, key, pairs_, part)
                elif fast:
                    assembler.add_grid_points(row, key, reader.rate(timestamps, values), part)
                else:
                    assembler.add_points(row, key, rate_points(samples, grid, lookback), part)
    return assembler.history()


@pytest.mark.parametrize("seed", range(60))
def test_a_history_from_grid_points_equals_one_from_pairs(seed: int) -> None:
    fast, reference = assembled(seed, True), assembled(seed, False)
    assert fast == reference
    for field in ("cpu_cores", "cpu_throttled_ratio", "node_pressure", "quota_used"):
        assert list(getattr(fast, field)) == list(getattr(reference, field))  # key order


def test_a_ratio_on_the_same_grid_points_is_divided_clamped_and_kept() -> None:
    row = measure("cpu_throttled_ratio")
    assembler = HistoryAssembler(T0, T0 + 2 * STEP)
    stamps = (T0, T0 + STEP, T0 + 2 * STEP)
    assembler.add_grid_points(row, ("ns", "p", "c"), (stamps, [1.0, 0.0, 30.0]), 0)
    assembler.add_grid_points(row, ("ns", "p", "c"), (stamps, [4.0, 2.0, 10.0]), 1)
    # 1/4 = 0.25, 0/2 = 0, 30/10 = 3 clamped to 1.
    series = assembler.history().cpu_throttled_ratio
    assert [one.timestamps_ms for one in series.values()] == [stamps]
    assert next(iter(series.values())).values == (0.25, 0.0, 1.0)

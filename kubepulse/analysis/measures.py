"""Where each :class:`~kubepulse.analysis.inputs.UsageHistory` figure comes from, and how.

:data:`MEASURES` is the one table that says, for every history figure, which metric(s)
are read, which labels form its key and which transform turns samples into the figure.
Both history builders read it: :mod:`kubepulse.collect.prometheus_history` renders it
as PromQL range queries, and the adapter's ``adapter.analysis.store_history`` applies
the transforms below to the raw samples of its embedded store. Changing a figure's
source means changing one row here, and both builders follow.

Every figure is evaluated on one grid, ``start, start + step, ... <= end``
(:func:`evaluation_grid`, the points of a Prometheus ``query_range``). At a grid point
``t`` each series contributes the transform of its samples in the window
``[t - lookback, t]``, and the contributions of the series that share a key are added
up (``sum by (key)``): two cgroups of the same ``namespace/pod/container`` can coexist
on a node for a moment (a replaced static pod, a force-deleted StatefulSet pod), and
both use CPU and memory.

The transforms (:class:`Transform`):

- ``RATE``: a counter's per-second increase over the window, reset-aware (a drop means
  the counter restarted from zero), from the first to the last sample in the window:
  :func:`kubepulse.stats.exact_evaluate` with ``rate``. PromQL: ``rate(x[lookback])``,
  which extrapolates to the window's edges; with samples across the whole window the
  two agree (see :mod:`adapter.sources.promql` in the adapter for the exact bounds).
- ``GAUGE``: a gauge reduced over the window (:class:`Reduce`: ``max`` for working set,
  so that a spike between grid points is kept; ``min`` for what is left available;
  ``last`` for quota usage). PromQL: ``max_over_time(x[lookback])`` and so on.
- ``RATIO_OF_RATES``: the rate of the first metric over the rate of the second, each
  summed by key first, then divided point by point where the denominator is positive
  (:func:`ratio_points`). PromQL: two ``rate()`` queries divided in Python.
- ``INCREMENTS``: a counter's increments as instants. Each series is read at the grid
  points (its newest sample at or before ``t`` within :data:`INSTANT_LOOKBACK_MS`, what
  a PromQL instant selector returns at ``t``), and every increase between consecutive
  grid points is that many instants at the later point (:func:`increment_instants`).
  Instants are therefore resolved to the step; they are computed per series before the
  key's instants are merged, so a series that appears or vanishes is not a reset.

A figure with no sample is absent, never zero. ``RATE`` and ``GAUGE`` figures that are
shares of time (pressure stall) are clamped to ``[0, 1]`` (:attr:`Measure.clamp_unit`),
since two samples taken a little late make a rate slightly above one.

Pure: no clock, file or network. :class:`HistoryAssembler` collects what a builder
measured and makes the :class:`~kubepulse.analysis.inputs.UsageHistory`.
"""

from __future__ import annotations

import bisect
import enum
import math
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, repeat
from operator import add, itemgetter, mul, sub, truediv
from typing import Any, Final, TypeAlias

from kubepulse.analysis.inputs import ContainerRef, QuotaRef, TimeSeries, UsageHistory
from kubepulse.catalog import MetricType
from kubepulse.catalog import get as catalog_spec
from kubepulse.errors import KubepulseValueError
from kubepulse.stats import Aggregation, AggregationKind, SeriesKind

__all__ = [
    "CONTAINER_KEY",
    "DEFAULT_GRID_POINTS",
    "GRID_READER_PATTERNS",
    "INSTANT_LOOKBACK_MS",
    "MAX_GRID_POINTS",
    "MEASURES",
    "NODE_KEY",
    "QUOTA_KEY",
    "QUOTA_USED_METRIC",
    "GridPoints",
    "GridReader",
    "HistoryAssembler",
    "Measure",
    "Reduce",
    "Selection",
    "Transform",
    "choose_step",
    "evaluation_grid",
    "gauge_points",
    "grid_samples",
    "increment_instants",
    "key_of",
    "lookback_for",
    "measure",
    "rate_points",
    "ratio_points",
    "sum_points",
]

CONTAINER_KEY: Final = ("namespace", "pod", "container")
"""The labels that name one container's series (``node`` and ``pod_uid`` are summed over)."""
NODE_KEY: Final = ("node",)
"""The label that names one node's series."""
QUOTA_KEY: Final = ("namespace", "resourcequota", "resource")
"""kube-state-metrics' labels naming one resource of one ResourceQuota."""
QUOTA_USED_METRIC: Final = "kube_resourcequota"
"""kube-state-metrics' ResourceQuota gauge; ``type="used"`` holds ``status.used``."""

INSTANT_LOOKBACK_MS: Final = 300_000
"""How far back an instant read looks for a sample: Prometheus' default lookback delta."""
MAX_GRID_POINTS: Final = 11_000
"""The most grid points one history may have: Prometheus refuses range queries with more."""
DEFAULT_GRID_POINTS: Final = 1_441
"""The grid points a history has when its builder chooses the step (:func:`choose_step`):
one a minute over a day, one a scrape over the last six hours at 15 s. Enough for
percentiles and trends, and a day of 5,000 containers stays a few million points."""

# Labels the scrapers write when a target's own labels collide with exposed ones
# (Prometheus with honor_labels: false, the adapter's scraper for pod targets).
_EXPORTED_PREFIX: Final = "exported_"


class Transform(enum.Enum):
    """How samples become a history figure; see the module docstring."""

    RATE = "rate"
    GAUGE = "gauge"
    RATIO_OF_RATES = "ratio_of_rates"
    INCREMENTS = "increments"


class Reduce(enum.Enum):
    """How a ``GAUGE`` figure reduces the samples of one window."""

    MAX = "max"
    MIN = "min"
    LAST = "last"

    @property
    def aggregation(self) -> Aggregation:
        """The :mod:`kubepulse.stats` aggregation that computes it."""
        return Aggregation(AggregationKind(self.value))

    @property
    def promql_function(self) -> str:
        """The PromQL ``*_over_time`` function that computes it."""
        return f"{self.value}_over_time"


class Selection(enum.Enum):
    """Which request filters narrow a measure's series."""

    CONTAINERS = "containers"
    """Namespaces and nodes both apply (container series carry both labels)."""
    NODES = "nodes"
    """Only nodes apply."""
    QUOTAS = "quotas"
    """Only namespaces apply, read after the scrape's renaming (see :func:`key_of`)."""


@dataclass(frozen=True, slots=True)
class Measure:
    """One row of :data:`MEASURES`: one history figure and how it is computed.

    Attributes:
        field: the :class:`~kubepulse.analysis.inputs.UsageHistory` attribute filled.
        name: the figure's name inside the field (the pressure name of ``node_pressure``,
            else equal to ``field``).
        metrics: the metric names read: one, or the numerator and the denominator of a
            ``RATIO_OF_RATES``.
        transform: how samples become the figure.
        key: the labels that form the figure's key, in the key's order.
        selection: which request filters apply.
        reduce: for ``GAUGE``, how a window's samples are reduced.
        matchers: fixed label equalities every series must have (``type="used"``).
        clamp_unit: the figure is a share of time, kept within ``[0, 1]``.
        combine_max: series of one key are combined by their maximum rather than their
            sum: the same quota can be published by two kube-state-metrics replicas.
        source: who publishes the metric: ``exporter`` or ``kube-state-metrics``.
    """

    field: str
    name: str
    metrics: tuple[str, ...]
    transform: Transform
    key: tuple[str, ...]
    selection: Selection
    reduce: Reduce | None = None
    matchers: tuple[tuple[str, str], ...] = ()
    clamp_unit: bool = False
    combine_max: bool = False
    source: str = "exporter"

    def __post_init__(self) -> None:
        wanted = 2 if self.transform is Transform.RATIO_OF_RATES else 1
        if len(self.metrics) != wanted:
            raise KubepulseValueError(
                f"measure {self.name!r}: a {self.transform.value} reads {wanted} metric(s), "
                f"got {len(self.metrics)}"
            )
        if (self.transform is Transform.GAUGE) != (self.reduce is not None):
            raise KubepulseValueError(
                f"measure {self.name!r}: a reduce goes with a gauge transform and only there"
            )
        if self.source == "exporter":
            for metric in self.metrics:
                spec = catalog_spec(metric)  # raises for a name not in the catalog
                counter = spec.type is MetricType.COUNTER
                if counter == (self.transform is Transform.GAUGE):
                    raise KubepulseValueError(
                        f"measure {self.name!r}: {metric} is a {spec.type.value}, which a "
                        f"{self.transform.value} transform cannot read"
                    )
                missing = [label for label in self.key if label not in spec.labels]
                if missing:
                    raise KubepulseValueError(
                        f"measure {self.name!r}: {metric} has no label {missing[0]!r}"
                    )

    @property
    def combiner(self) -> str:
        """The PromQL aggregation that combines the series of one key."""
        return "max" if self.combine_max else "sum"

    @property
    def series_kind(self) -> SeriesKind:
        """How the metric's raw samples are read."""
        return SeriesKind.GAUGE if self.transform is Transform.GAUGE else SeriesKind.COUNTER


def _pressure(name: str, resource: str, line: str) -> Measure:
    return Measure(
        field="node_pressure",
        name=name,
        metrics=(f"kubepulse_node_pressure_{resource}_{line}_seconds_total",),
        transform=Transform.RATE,
        key=NODE_KEY,
        selection=Selection.NODES,
        clamp_unit=True,
    )


MEASURES: Final[tuple[Measure, ...]] = (
    Measure(
        field="cpu_cores",
        name="cpu_cores",
        metrics=("kubepulse_container_cpu_usage_seconds_total",),
        transform=Transform.RATE,
        key=CONTAINER_KEY,
        selection=Selection.CONTAINERS,
    ),
    Measure(
        field="memory_working_set_bytes",
        name="memory_working_set_bytes",
        metrics=("kubepulse_container_memory_working_set_bytes",),
        transform=Transform.GAUGE,
        key=CONTAINER_KEY,
        selection=Selection.CONTAINERS,
        reduce=Reduce.MAX,
    ),
    Measure(
        field="cpu_throttled_ratio",
        name="cpu_throttled_ratio",
        metrics=(
            "kubepulse_container_cpu_cfs_throttled_periods_total",
            "kubepulse_container_cpu_cfs_periods_total",
        ),
        transform=Transform.RATIO_OF_RATES,
        key=CONTAINER_KEY,
        selection=Selection.CONTAINERS,
        clamp_unit=True,
    ),
    Measure(
        field="oom_kill_ms",
        name="oom_kill_ms",
        metrics=("kubepulse_container_oom_kills_total",),
        transform=Transform.INCREMENTS,
        key=CONTAINER_KEY,
        selection=Selection.CONTAINERS,
    ),
    # "some" is the exporter's "waiting" (the some line), "full" its "stalled".
    _pressure("cpu_some", "cpu", "waiting"),
    _pressure("memory_some", "memory", "waiting"),
    _pressure("memory_full", "memory", "stalled"),
    _pressure("io_some", "io", "waiting"),
    _pressure("io_full", "io", "stalled"),
    Measure(
        field="node_memory_available_bytes",
        name="node_memory_available_bytes",
        metrics=("kubepulse_node_memory_available_bytes",),
        transform=Transform.GAUGE,
        key=NODE_KEY,
        selection=Selection.NODES,
        reduce=Reduce.MIN,
    ),
    Measure(
        field="node_ephemeral_storage_available_bytes",
        name="node_ephemeral_storage_available_bytes",
        metrics=("kubepulse_node_ephemeral_storage_available_bytes",),
        transform=Transform.GAUGE,
        key=NODE_KEY,
        selection=Selection.NODES,
        reduce=Reduce.MIN,
    ),
    Measure(
        field="quota_used",
        name="quota_used",
        metrics=(QUOTA_USED_METRIC,),
        transform=Transform.GAUGE,
        key=QUOTA_KEY,
        selection=Selection.QUOTAS,
        reduce=Reduce.LAST,
        matchers=(("type", "used"),),
        combine_max=True,
        source="kube-state-metrics",
    ),
)
"""Every history figure, in :class:`~kubepulse.analysis.inputs.UsageHistory` order."""

_BY_NAME: Final[Mapping[str, Measure]] = {row.name: row for row in MEASURES}


def measure(name: str) -> Measure:
    """The row of :data:`MEASURES` called ``name`` (``cpu_cores``, ``io_full``, ...)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KubepulseValueError(
            f"no history measure is called {name!r}; known: {', '.join(_BY_NAME)}"
        ) from None


# --------------------------------------------------------------------- keys and grid


def key_of(
    row: Measure, labels: Mapping[str, str], namespaces: Collection[str] | None = None
) -> tuple[str, ...] | None:
    """The key of a series with ``labels`` for ``row``; ``None`` when a key label is missing.

    For quota rows an ``exported_<label>`` wins over ``<label>``: kube-state-metrics is
    scraped as a pod, and a scrape that attaches the pod's own ``namespace`` keeps the
    quota's namespace as ``exported_namespace``. That namespace is only known from the
    key, so with ``namespaces`` a quota of another namespace is ``None`` too (the
    selectors of the other rows already narrow by namespace).
    """
    values: list[str] = []
    for label in row.key:
        value = None
        if row.selection is Selection.QUOTAS:
            value = labels.get(_EXPORTED_PREFIX + label)
        if not value:
            value = labels.get(label)
        if not value:
            return None
        values.append(value)
    if row.selection is Selection.QUOTAS and namespaces is not None and values[0] not in namespaces:
        return None
    return tuple(values)


def lookback_for(step_ms: int, resolution_ms: int) -> int:
    """The window each grid point reads: ``max(step, 2 * resolution)``.

    ``resolution_ms`` is the scrape interval. Two scrape intervals make sure a counter
    has two samples for a rate even when the step is shorter; a step longer than that
    reads every sample once (windows of ``RATE`` and ``GAUGE`` points touch, they do
    not overlap nor leave gaps). The adapter's forecasts use the same rule.
    """
    if step_ms <= 0 or resolution_ms <= 0:
        raise KubepulseValueError(
            f"step and resolution must be positive, got {step_ms} and {resolution_ms} ms"
        )
    return max(step_ms, 2 * resolution_ms)


def choose_step(
    start_ms: int, end_ms: int, resolution_ms: int, points: int = DEFAULT_GRID_POINTS
) -> int:
    """The step of a history over ``[start_ms, end_ms]`` whose grid has at most ``points``.

    The smallest whole multiple of ``resolution_ms`` (the scrape interval) that keeps the
    grid within ``points``: a step shorter than a scrape interval only repeats samples,
    and a multiple of it makes every grid point's window hold the same number of scrapes.

    Raises:
        KubepulseValueError: the range is reversed, the resolution is not positive, or
            ``points`` is below 2 or above :data:`MAX_GRID_POINTS`.
    """
    if resolution_ms <= 0:
        raise KubepulseValueError(f"the resolution must be positive, got {resolution_ms} ms")
    if end_ms < start_ms:
        raise KubepulseValueError(f"the history ends ({end_ms}) before it starts ({start_ms})")
    if not 2 <= points <= MAX_GRID_POINTS:
        raise KubepulseValueError(
            f"a history's grid has 2 to {MAX_GRID_POINTS} points, not {points}"
        )
    shortest = -(-(end_ms - start_ms) // (points - 1))
    scrapes = max(1, -(-shortest // resolution_ms))
    return scrapes * resolution_ms


def evaluation_grid(start_ms: int, end_ms: int, step_ms: int) -> tuple[int, ...]:
    """The grid points ``start, start + step, ... <= end``, as Prometheus' ``query_range``.

    Raises:
        KubepulseValueError: the step is not positive, the range is reversed, or the grid
            would have more than :data:`MAX_GRID_POINTS` points.
    """
    if step_ms <= 0:
        raise KubepulseValueError(f"the step must be positive, got {step_ms} ms")
    if end_ms < start_ms:
        raise KubepulseValueError(f"the history ends ({end_ms}) before it starts ({start_ms})")
    count = (end_ms - start_ms) // step_ms + 1
    if count > MAX_GRID_POINTS:
        raise KubepulseValueError(
            f"{count} points of {step_ms} ms from {start_ms} to {end_ms} is more than "
            f"{MAX_GRID_POINTS}; choose a step of at least "
            f"{-(-(end_ms - start_ms) // (MAX_GRID_POINTS - 1))} ms"
        )
    return tuple(start_ms + index * step_ms for index in range(count))


# --------------------------------------------------------------------- transforms


def _finite(samples: Iterable[tuple[int, float]]) -> tuple[list[int], list[float]]:
    timestamps: list[int] = []
    values: list[float] = []
    for stamp, value in samples:
        if math.isfinite(value):
            timestamps.append(int(stamp))
            values.append(float(value))
    return timestamps, values


def _windows(
    timestamps: Sequence[int], grid: Sequence[int], lookback_ms: int
) -> Iterator[tuple[int, int, int]]:
    """``(grid point, low, high)``: the samples with ``t - lookback <= timestamp <= t``.

    Grid points ascend, so both ends only move forward: ``O(samples + grid)``.
    """
    low = high = 0
    count = len(timestamps)
    for point_ms in grid:
        while low < count and timestamps[low] < point_ms - lookback_ms:
            low += 1
        high = max(high, low)
        while high < count and timestamps[high] <= point_ms:
            high += 1
        yield point_ms, low, high


def rate_points(
    samples: Iterable[tuple[int, float]], grid: Sequence[int], lookback_ms: int
) -> list[tuple[int, float]]:
    """A counter's reset-aware per-second rate over ``[t - lookback, t]`` at each grid point.

    ``samples`` are ``(timestamp_ms, value)`` in increasing time; non-finite values
    (Prometheus' staleness marker) are skipped. A grid point whose window holds fewer
    than two samples has no rate.

    The value is :func:`kubepulse.stats.exact_evaluate`'s ``rate`` of the window's
    samples (the sum of the increases, a drop counting as a restart from zero, over the
    time from the first to the last sample), computed from running sums of the
    increases so that a day of samples on a fine grid costs one pass, not one pass per
    grid point (``tests/unit/analysis/test_measures.py`` checks the two agree).
    """
    timestamps, values = _finite(samples)
    # cumulative[i]: the counter's total increase from the first sample to sample i.
    cumulative: list[float] = []
    total = 0.0
    previous: float | None = None
    for value in values:
        if previous is not None:
            total += value - previous if value >= previous else value
        cumulative.append(total)
        previous = value
    points: list[tuple[int, float]] = []
    for point_ms, low, high in _windows(timestamps, grid, lookback_ms):
        if high - low < 2:
            continue
        span_ms = timestamps[high - 1] - timestamps[low]
        rate = (cumulative[high - 1] - cumulative[low]) * 1000.0 / span_ms
        if math.isfinite(rate):
            points.append((point_ms, rate))
    return points


def gauge_points(
    samples: Iterable[tuple[int, float]], grid: Sequence[int], lookback_ms: int, reduce: Reduce
) -> list[tuple[int, float]]:
    """A gauge reduced (max, min or last) over ``[t - lookback, t]`` at each grid point.

    As :func:`kubepulse.stats.exact_evaluate` of the window's finite samples.
    """
    timestamps, values = _finite(samples)
    points: list[tuple[int, float]] = []
    for point_ms, low, high in _windows(timestamps, grid, lookback_ms):
        if high == low:
            continue
        if reduce is Reduce.LAST:
            points.append((point_ms, values[high - 1]))
        elif reduce is Reduce.MAX:
            points.append((point_ms, max(values[low:high])))
        else:
            points.append((point_ms, min(values[low:high])))
    return points


def grid_samples(
    samples: Iterable[tuple[int, float]],
    grid: Sequence[int],
    lookback_ms: int = INSTANT_LOOKBACK_MS,
) -> list[tuple[int, float]]:
    """The series read at each grid point: its newest sample at or before ``t``.

    What a PromQL instant selector returns at ``t``: nothing when the newest sample is
    older than ``lookback_ms`` or is the staleness marker (NaN).
    """
    timestamps: list[int] = []
    values: list[float] = []
    for stamp, value in samples:
        timestamps.append(int(stamp))
        values.append(float(value))
    points: list[tuple[int, float]] = []
    for point_ms in grid:
        index = bisect.bisect_right(timestamps, point_ms) - 1
        if index < 0 or point_ms - timestamps[index] > lookback_ms:
            continue
        value = values[index]
        if math.isfinite(value):
            points.append((point_ms, value))
    return points


def increment_instants(samples: Iterable[tuple[int, float]]) -> list[int]:
    """The instants a counter went up: each whole increment is one instant.

    Between consecutive finite samples the increase is ``value - previous``, or
    ``value`` when the counter dropped (it restarted from zero). An increase of ``n``
    (rounded; at least one when positive) gives ``n`` copies of the later sample's time.
    The first sample has nothing before it and gives none.
    """
    instants: list[int] = []
    previous: float | None = None
    for stamp, value in samples:
        if not math.isfinite(value):
            continue
        if previous is not None:
            increase = value - previous if value >= previous else value
            if increase > 0.0:
                instants.extend([int(stamp)] * max(1, round(increase)))
        previous = value
    return instants


def sum_points(parts: Iterable[Iterable[tuple[int, float]]]) -> list[tuple[int, float]]:
    """Points of several series added up at equal timestamps (``sum by (key)``)."""
    totals: dict[int, float] = {}
    for part in parts:
        for stamp, value in part:
            totals[stamp] = totals.get(stamp, 0.0) + value
    return sorted(totals.items())


def ratio_points(
    numerator: Iterable[tuple[int, float]], denominator: Iterable[tuple[int, float]]
) -> list[tuple[int, float]]:
    """``numerator / denominator`` at the timestamps both have, where the denominator > 0."""
    below = dict(denominator)
    points: list[tuple[int, float]] = []
    for stamp, value in numerator:
        divisor = below.get(stamp)
        if divisor is not None and divisor > 0.0 and math.isfinite(value):
            points.append((stamp, value / divisor))
    return sorted(points)


# --------------------------------------------------------------------- many series

GRID_READER_PATTERNS: Final = 4_096
"""How many distinct timestamp sequences a :class:`GridReader` remembers the windows of."""

GridPoints: TypeAlias = tuple[tuple[int, ...], list[float]]
"""A figure's grid points as two parallel sequences: timestamps and finite values."""


class _Windows:
    """The windows of one timestamp sequence on one grid, what every transform indexes by.

    For ``RATE``: the grid points whose window holds two samples or more, the index of
    each window's first and last sample, and the milliseconds between them. For
    ``GAUGE``: the grid points whose window holds a sample, the window as a slice and
    its last index. For an instant read: the grid points that have a fresh sample, and
    its index.
    """

    __slots__ = (
        "gauge_last",
        "gauge_last_of",
        "gauge_slices",
        "gauge_stamps",
        "gauge_windows_of",
        "instant_indices",
        "instant_stamps",
        "instants_of",
        "rate_first",
        "rate_first_of",
        "rate_last",
        "rate_last_of",
        "rate_spans",
        "rate_stamps",
    )

    def __init__(self, timestamps: Sequence[int], grid: Sequence[int], lookback_ms: int) -> None:
        # As _windows(): the first sample at or after t - lookback, the first after t.
        lows = list(map(bisect.bisect_left, repeat(timestamps), [t - lookback_ms for t in grid]))
        highs = list(map(bisect.bisect_right, repeat(timestamps), grid))
        rate_stamps: list[int] = []
        self.rate_first: list[int] = []
        self.rate_last: list[int] = []
        self.rate_spans: list[int] = []
        gauge_stamps: list[int] = []
        self.gauge_slices: list[slice] = []
        self.gauge_last: list[int] = []
        instant_stamps: list[int] = []
        self.instant_indices: list[int] = []
        for point_ms, low, high in zip(grid, lows, highs, strict=True):
            if high > low:
                gauge_stamps.append(point_ms)
                self.gauge_slices.append(slice(low, high))
                self.gauge_last.append(high - 1)
                if high - low >= 2:
                    rate_stamps.append(point_ms)
                    self.rate_first.append(low)
                    self.rate_last.append(high - 1)
                    self.rate_spans.append(timestamps[high - 1] - timestamps[low])
            # As grid_samples(): the newest sample at or before t, if recent enough.
            if high and point_ms - timestamps[high - 1] <= INSTANT_LOOKBACK_MS:
                instant_stamps.append(point_ms)
                self.instant_indices.append(high - 1)
        self.rate_stamps = tuple(rate_stamps)
        self.gauge_stamps = tuple(gauge_stamps)
        self.instant_stamps = tuple(instant_stamps)
        self.rate_first_of = _getter(self.rate_first)
        self.rate_last_of = _getter(self.rate_last)
        self.gauge_windows_of = _getter(self.gauge_slices)
        self.gauge_last_of = _getter(self.gauge_last)
        self.instants_of = _getter(self.instant_indices)


def _getter(
    indices: Sequence[int] | Sequence[slice],
) -> Callable[[Sequence[float]], tuple[Any, ...]]:
    """``seq -> tuple(seq[i] for i in indices)``, looked up in C (``itemgetter``)."""
    if len(indices) > 1:
        return itemgetter(*indices)
    return lambda values: tuple(values[index] for index in indices)


class GridReader:
    """The transforms of many series on one grid, faster than one call per series.

    :func:`rate_points`, :func:`gauge_points` and :func:`grid_samples` with
    :func:`increment_instants`, with the same results (``test_measures_grid.py`` checks
    it on random series), for builders that read thousands of series on the same grid:

    - the series scraped together share their timestamps, so the windows of a grid
      point (which samples each one holds) are found once per distinct timestamp
      sequence (at most :data:`GRID_READER_PATTERNS` remembered) and reused;
    - a series whose values are all finite, the usual case, is transformed by
      ``map`` over whole lists instead of a Python loop per grid point; a series with
      a staleness marker goes through the per-series functions above;
    - points come back as :data:`GridPoints` (timestamps, values), not pairs.

    Args:
        grid: the grid (:func:`evaluation_grid`).
        lookback_ms: the window of ``RATE`` and ``GAUGE`` points (:func:`lookback_for`);
            instant reads look back :data:`INSTANT_LOOKBACK_MS`, as :func:`grid_samples`.
    """

    def __init__(self, grid: Sequence[int], lookback_ms: int) -> None:
        self.grid = tuple(grid)
        self.lookback_ms = lookback_ms
        self._windows: dict[bytes, _Windows] = {}

    def _windows_of(self, timestamps: array[int]) -> _Windows:
        pattern = timestamps.tobytes()
        windows = self._windows.get(pattern)
        if windows is None:
            if len(self._windows) >= GRID_READER_PATTERNS:
                self._windows.clear()
            windows = _Windows(timestamps, self.grid, self.lookback_ms)
            self._windows[pattern] = windows
        return windows

    def rate(self, timestamps: array[int], values: Sequence[float]) -> GridPoints:
        """:func:`rate_points` of the samples ``timestamps`` (``array('q')``), ``values``."""
        if len(timestamps) < 2:
            return (), []
        if not math.isfinite(sum(values)):  # a NaN or an infinity (or an overflow)
            samples = zip(timestamps, values, strict=True)
            return _unzipped(rate_points(samples, self.grid, self.lookback_ms))
        windows = self._windows_of(timestamps)
        if not windows.rate_stamps:
            return (), []
        values = _as_list(values)
        increases = list(map(sub, values[1:], values[:-1]))
        if min(increases) < 0.0:
            # A drop is a restart from zero: the increase is the new value (rate_points).
            increases = [
                value if increase < 0.0 else increase
                for increase, value in zip(increases, values[1:], strict=True)
            ]
        cumulative = list(accumulate(increases, initial=0.0))
        rates = list(
            map(
                truediv,
                map(
                    mul,
                    map(sub, windows.rate_last_of(cumulative), windows.rate_first_of(cumulative)),
                    repeat(1000.0),
                ),
                windows.rate_spans,
            )
        )
        if math.isfinite(sum(rates)):
            return windows.rate_stamps, rates
        return _unzipped(
            (stamp, rate)
            for stamp, rate in zip(windows.rate_stamps, rates, strict=True)
            if math.isfinite(rate)
        )

    def gauge(self, timestamps: array[int], values: Sequence[float], reduce: Reduce) -> GridPoints:
        """:func:`gauge_points` of the samples ``timestamps`` (``array('q')``), ``values``."""
        if not timestamps:
            return (), []
        if not math.isfinite(sum(values)):
            samples = zip(timestamps, values, strict=True)
            return _unzipped(gauge_points(samples, self.grid, self.lookback_ms, reduce))
        windows = self._windows_of(timestamps)
        if not windows.gauge_stamps:
            return (), []
        values = _as_list(values)
        if reduce is Reduce.LAST:
            reduced = windows.gauge_last_of(values)
        else:
            pick = max if reduce is Reduce.MAX else min
            reduced = tuple(map(pick, windows.gauge_windows_of(values)))
        return windows.gauge_stamps, list(map(float, reduced))

    def increment_instants(self, timestamps: array[int], values: Sequence[float]) -> list[int]:
        """:func:`increment_instants` of :func:`grid_samples` of the samples."""
        if not timestamps:
            return []
        if not math.isfinite(sum(values)):
            samples = zip(timestamps, values, strict=True)
            return increment_instants(grid_samples(samples, self.grid))
        windows = self._windows_of(timestamps)
        read = windows.instants_of(_as_list(values))
        if len(read) < 2 or min(read) == max(read):
            return []  # no increase and no restart between the grid points
        return increment_instants(zip(windows.instant_stamps, read, strict=True))


def _as_list(values: Sequence[float]) -> Sequence[float]:
    """``values`` as a list: indexing and slicing a list is faster than an array's."""
    return values.tolist() if isinstance(values, array) else values


def _unzipped(points: Iterable[tuple[int, float]]) -> GridPoints:
    timestamps: list[int] = []
    values: list[float] = []
    for stamp, value in points:
        timestamps.append(stamp)
        values.append(value)
    return tuple(timestamps), values


def _items(figure: dict[int, float] | GridPoints) -> Iterable[tuple[int, float]]:
    if isinstance(figure, dict):
        return figure.items()
    return zip(*figure, strict=True)


def _clamped(points: Iterable[tuple[int, float]]) -> list[tuple[int, float]]:
    return [(stamp, min(1.0, max(0.0, value))) for stamp, value in points]


# --------------------------------------------------------------------- assembly


class HistoryAssembler:
    """Collects what a builder measured, keyed as :data:`MEASURES` says, into a history.

    Builders call :meth:`add_points` (for ``RATE`` and ``GAUGE`` rows, and with
    ``part`` 0 or 1 for the numerator and the denominator of ``RATIO_OF_RATES`` rows)
    and :meth:`add_instants` (``INCREMENTS`` rows) once per series or once per key
    (:meth:`add_grid_points` takes a :class:`GridReader`'s points, the faster way);
    points of one key are added up at equal timestamps (or their maximum kept, for
    :attr:`Measure.combine_max` rows). :meth:`history` then divides
    ratios, clamps shares of time, and builds the
    :class:`~kubepulse.analysis.inputs.UsageHistory`.
    """

    def __init__(self, start_ms: int, end_ms: int) -> None:
        if end_ms < start_ms:
            raise KubepulseValueError(f"the history ends ({end_ms}) before it starts ({start_ms})")
        self.start_ms = start_ms
        self.end_ms = end_ms
        # A key's points: the only series' GridPoints as given (add_grid_points), or the
        # running totals by timestamp once two series (or add_points) met there.
        self._points: dict[tuple[str, int], dict[tuple[str, ...], dict[int, float] | GridPoints]]
        self._points = {}
        self._instants: dict[str, dict[tuple[str, ...], list[int]]] = {}

    def add_points(
        self,
        row: Measure,
        key: tuple[str, ...],
        points: Iterable[tuple[int, float]],
        part: int = 0,
    ) -> None:
        """Add one series' (or one key's) points to ``row``'s figure of ``key``."""
        totals = self._totals(row, key, part)
        for stamp, value in points:
            if not math.isfinite(value):
                continue
            earlier = totals.get(stamp)
            if earlier is None:
                totals[stamp] = value
            elif row.combine_max:
                totals[stamp] = max(earlier, value)
            else:
                totals[stamp] = earlier + value

    def add_grid_points(
        self, row: Measure, key: tuple[str, ...], points: GridPoints, part: int = 0
    ) -> None:
        """:meth:`add_points` of a :class:`GridReader`'s result, kept as it is when alone.

        The values must be finite and the timestamps strictly increasing, as a
        :class:`GridReader` returns them. The figure of a key only one series has (the
        usual case) is then built from them without a dictionary per point.
        """
        figures = self._figures(row, part)
        if key not in figures:
            # No point still makes the key (add_points does): the keys' order is kept.
            figures[key] = points if points[0] else {}
            return
        self.add_points(row, key, zip(*points, strict=True), part)

    def _figures(
        self, row: Measure, part: int
    ) -> dict[tuple[str, ...], dict[int, float] | GridPoints]:
        if row.transform is Transform.INCREMENTS:
            raise KubepulseValueError(f"{row.name} is made of instants; use add_instants")
        if part not in ((0, 1) if row.transform is Transform.RATIO_OF_RATES else (0,)):
            raise KubepulseValueError(f"{row.name} has no part {part}")
        return self._points.setdefault((row.name, part), {})

    def _totals(self, row: Measure, key: tuple[str, ...], part: int) -> dict[int, float]:
        """The running totals of ``key``, made from its grid points if it has them."""
        figures = self._figures(row, part)
        figure = figures.get(key)
        if isinstance(figure, dict):
            return figure
        totals: dict[int, float] = {}
        if figure is not None:
            totals.update(zip(*figure, strict=True))
        figures[key] = totals
        return totals

    def add_instants(self, row: Measure, key: tuple[str, ...], instants: Iterable[int]) -> None:
        """Add one series' increment instants to ``row``'s figure of ``key``."""
        if row.transform is not Transform.INCREMENTS:
            raise KubepulseValueError(f"{row.name} is made of points; use add_points")
        self._instants.setdefault(row.name, {}).setdefault(key, []).extend(instants)

    def _series(self, row: Measure) -> dict[tuple[str, ...], TimeSeries]:
        numerators = self._points.get((row.name, 0), {})
        result: dict[tuple[str, ...], TimeSeries] = {}
        denominators = self._points.get((row.name, 1), {})
        for key, figure in numerators.items():
            if not isinstance(figure, dict):
                fast = self._grid_series(row, figure, denominators.get(key))
                if fast is not None:
                    if fast:
                        result[key] = fast
                    continue
            points = sorted(_items(figure))
            if row.transform is Transform.RATIO_OF_RATES:
                points = ratio_points(points, _items(denominators.get(key, {})))
            if row.clamp_unit:
                points = _clamped(points)
            inside = [(t, v) for t, v in points if self.start_ms <= t <= self.end_ms]
            if inside:
                result[key] = TimeSeries.of(inside)
        return result

    def _grid_series(
        self, row: Measure, points: GridPoints, denominator: dict[int, float] | GridPoints | None
    ) -> TimeSeries | None:
        """What :meth:`_series` makes of one key's grid points; ``None``: not a fast case.

        The fast case is a key of one series whose points all lie within the range, and
        for a ratio a denominator of one series on the same timestamps, positive
        everywhere: then ratio, clamp and range filter keep every point, and the values
        are finite, so the series is built as :meth:`TimeSeries.of` would build it.
        """
        timestamps, values = points
        if timestamps[0] < self.start_ms or timestamps[-1] > self.end_ms:
            return None
        if row.transform is Transform.RATIO_OF_RATES:
            if not isinstance(denominator, tuple) or denominator[0] != timestamps:
                return None
            divisors = denominator[1]
            if min(divisors) <= 0.0:
                return None
            values = list(map(truediv, values, divisors))
        if not math.isfinite(sum(values)):
            return None
        if row.clamp_unit:
            if min(values) >= 0.0 and max(values) <= 1.0:
                # Nothing to clamp; adding 0.0 turns -0.0 into 0.0, as max(0.0, -0.0) does.
                values = list(map(add, values, repeat(0.0)))
            else:
                values = [min(1.0, max(0.0, value)) for value in values]
        # Grid timestamps strictly increase and the values were checked finite above.
        return TimeSeries.trusted(timestamps, tuple(values))

    def _instants_of(self, row: Measure) -> dict[tuple[str, ...], tuple[int, ...]]:
        result: dict[tuple[str, ...], tuple[int, ...]] = {}
        for key, instants in self._instants.get(row.name, {}).items():
            if not instants:
                continue  # most containers were never OOM-killed
            kept = sorted(t for t in instants if self.start_ms <= t <= self.end_ms)
            if kept:
                result[key] = tuple(kept)
        return result

    def _containers(self, name: str) -> dict[ContainerRef, TimeSeries]:
        return {ContainerRef(*key): one for key, one in self._series(measure(name)).items()}

    def _nodes(self, name: str) -> dict[str, TimeSeries]:
        return {key[0]: one for key, one in self._series(measure(name)).items()}

    def history(self) -> UsageHistory:
        """The :class:`~kubepulse.analysis.inputs.UsageHistory` of everything added."""
        pressure: dict[str, dict[str, TimeSeries]] = {}
        for row in MEASURES:
            if row.field == "node_pressure":
                for node, one in self._nodes(row.name).items():
                    pressure.setdefault(node, {})[row.name] = one
        oom_kills = self._instants_of(measure("oom_kill_ms"))
        quota = self._series(measure("quota_used"))
        return UsageHistory(
            start_ms=self.start_ms,
            end_ms=self.end_ms,
            cpu_cores=self._containers("cpu_cores"),
            memory_working_set_bytes=self._containers("memory_working_set_bytes"),
            cpu_throttled_ratio=self._containers("cpu_throttled_ratio"),
            oom_kill_ms={ContainerRef(*key): stamps for key, stamps in oom_kills.items()},
            node_pressure=pressure,
            node_memory_available_bytes=self._nodes("node_memory_available_bytes"),
            node_ephemeral_storage_available_bytes=self._nodes(
                "node_ephemeral_storage_available_bytes"
            ),
            quota_used={QuotaRef(*key): one for key, one in quota.items()},
        )

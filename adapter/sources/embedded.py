"""The embedded source: statistics from the adapter's own time-series store.

The adapter's scraper fills a :class:`~kubepulse.store.TimeSeriesStore` with what the
exporters and annotated pods publish; :class:`EmbeddedSource` answers
:class:`~kubepulse.metricquery.SeriesRequest` from it, as the protocol in
:mod:`adapter.sources.base` describes.

How a value is computed, per object (a pod, a node, a namespace, a Deployment's pods, or
everything selected for an external metric), over ``[now - window, now]``:

- **gauges and counters**: each series' window summary
  (:meth:`~kubepulse.store.Series.summary`) is evaluated with
  :func:`~kubepulse.stats.evaluate` (counters read as reset-aware per-second rates, as
  :mod:`kubepulse.stats.aggregate` defines), and the object's value is the sum over its
  series, as Prometheus' ``sum by (pod) (rate(x[w]))`` or ``sum by (pod)
  (avg_over_time(x[w]))``;
- **histograms**, stored the way the scraper stores Prometheus histograms (one counter
  series per bucket, ``<name>_bucket{le="..."}``, plus ``<name>_sum`` and
  ``<name>_count``): each bucket's increase over the window is summed per ``le`` across
  the object's series, and a percentile is interpolated within the bucket that holds
  its rank, exactly as Prometheus' ``histogram_quantile`` does
  (:func:`histogram_quantile`); ``avg`` is the ``_sum`` increase over the observation
  count, ``rate`` the observations per second, ``sum`` the ``_sum`` increase;
- **forecasts** (``kubepulse.io/predict``): the same statistic is evaluated at points
  one *step* apart across the window (the store's resolution, or window / 60 if
  coarser), each over the trailing ``max(step, 2 * resolution)`` so that a counter or a
  histogram has two samples to take an increase from (a PromQL subquery
  ``stat(x[lookback])[window:step]``). Each point is stamped at the middle of the
  samples it used, where a sliding average or rate of a trend is unbiased. The chosen
  model (:func:`~kubepulse.stats.forecast_linear` or
  :func:`~kubepulse.stats.forecast_holt`) is fitted to those points and the value at
  ``now + horizon`` is served.

An object none of whose series has a sample newer than ``staleness_ms`` (or whose
newest sample is Prometheus' NaN staleness marker) is absent; so is one whose statistic
has no value (one counter sample, no histogram observation, too few forecast points).

**Thread safety.** The store is not thread-safe, and even queries change it (they keep
memos in the series). Every access goes through :attr:`EmbeddedSource.lock`, a
:class:`threading.Lock`: queries run in worker threads (``asyncio.to_thread``) and take
it around each piece of work, and the scraper, the checkpointer and compaction **must
take the same lock** around every call on the store (``with source.lock:
store.append_many(...)``), holding it only for the synchronous call, never across an
``await`` or network I/O. Pass ``lock=`` to share a lock created elsewhere.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from adapter.sources.base import (
    MetricDescriptor,
    MetricNotFoundError,
    MetricScope,
    scopes_from_labels,
    served_forecast,
)
from kubepulse.errors import KubepulseValueError
from kubepulse.metricquery import (
    NAMESPACE_LABEL,
    ForecastModel,
    MetricKind,
    ObjectValue,
    SeriesRequest,
    Statistic,
    StatisticError,
    resolve_aggregation,
)
from kubepulse.stats import (
    Aggregation,
    AggregationKind,
    InsufficientDataError,
    SeriesKind,
    WindowSummary,
    evaluate,
    forecast_holt,
    forecast_linear,
)
from kubepulse.store import METRIC_NAME_LABEL, Series, TimeSeriesStore

__all__ = [
    "DEFAULT_STALENESS_MS",
    "MAX_FORECAST_POINTS",
    "EmbeddedSource",
    "histogram_quantile",
]

DEFAULT_STALENESS_MS = 60_000
"""Staleness of an EmbeddedSource built without ``staleness_ms`` (one minute, four scrapes
at 15 s); the adapter passes ``--staleness``, two minutes by default."""
MAX_FORECAST_POINTS = 60
"""The most points a forecast is fitted to; the step widens to stay below."""

_BUCKET_SUFFIX = "_bucket"
_SUM_SUFFIX = "_sum"
_BUCKET_LABEL = "le"
_KINDS = {SeriesKind.GAUGE: MetricKind.GAUGE, SeriesKind.COUNTER: MetricKind.COUNTER}


def histogram_quantile(quantile: float, bucket_counts: Mapping[float, float]) -> float | None:
    """The ``quantile`` of observations counted in cumulative buckets, as Prometheus computes it.

    ``bucket_counts`` maps each bucket's upper bound (``le``, ``math.inf`` for ``+Inf``)
    to the number of observations at or below it. As ``histogram_quantile`` does, the
    counts are made monotonic, the rank ``quantile * total`` is located in the first
    bucket whose count reaches it, and the value is interpolated linearly within that
    bucket (from 0 for the first bucket when its bound is positive). A rank in the
    ``+Inf`` bucket gives the highest finite bound.

    ``None`` (Prometheus' NaN) without a ``+Inf`` bucket, with fewer than two buckets or
    with no observations.
    """
    if math.inf not in bucket_counts or len(bucket_counts) < 2:
        return None
    bounds = sorted(bucket_counts)
    counts: list[float] = []
    for bound in bounds:
        count = bucket_counts[bound]
        # Buckets scraped a moment apart can disagree slightly; Prometheus forces them up.
        counts.append(max(count, counts[-1]) if counts else count)
    observations = counts[-1]
    if not observations > 0.0:
        return None
    rank = quantile * observations
    index = next(
        (position for position in range(len(bounds) - 1) if counts[position] >= rank),
        len(bounds) - 1,
    )
    if index == len(bounds) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0.0:
        return bounds[0]
    bucket_start = bounds[index - 1] if index > 0 else 0.0
    below = counts[index - 1] if index > 0 else 0.0
    in_bucket = counts[index] - below
    return bucket_start + (bounds[index] - bucket_start) * ((rank - below) / in_bucket)


@dataclass(frozen=True, slots=True)
class _Measured:
    """A statistic over some samples, and the time span of those samples."""

    value: float
    first_ms: int
    last_ms: int


@dataclass(slots=True)
class _Histogram:
    """The series of one object's histogram: buckets by upper bound, and ``_sum`` series."""

    buckets: list[tuple[float, Series]] = field(default_factory=list)
    sums: list[Series] = field(default_factory=list)

    @property
    def counting(self) -> list[Series]:
        """The ``+Inf`` buckets: one per histogram, counting every observation."""
        return [series for bound, series in self.buckets if bound == math.inf]


class _Span:
    """Adds up the contributions to one statistic and the time span of their samples."""

    __slots__ = ("first_ms", "last_ms", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.first_ms: int | None = None
        self.last_ms: int | None = None

    def add(self, value: float, summary: WindowSummary) -> None:
        self.total += value
        first_ms, last_ms = summary.first_ms, summary.last_ms
        self.first_ms = first_ms if self.first_ms is None else min(self.first_ms, first_ms)
        self.last_ms = last_ms if self.last_ms is None else max(self.last_ms, last_ms)

    def result(self, value: float | None = None) -> _Measured | None:
        """The total (or ``value`` instead), ``None`` when nothing contributed or not finite."""
        answer = self.total if value is None else value
        if self.first_ms is None or self.last_ms is None or not math.isfinite(answer):
            return None
        return _Measured(answer, self.first_ms, self.last_ms)


class EmbeddedSource:
    """A :class:`~adapter.sources.base.MetricSource` over a :class:`TimeSeriesStore`.

    Args:
        store: the store the scraper fills.
        clock: the current time in epoch milliseconds (for discovery's freshness).
        staleness_ms: an object whose newest sample is older than this is absent.
        lock: the lock guarding ``store``; a new one when not given. The scraper must
            hold it around every store call (see the module docstring).
        ready: says whether the source is ready (e.g. the checkpoint is loaded and the
            first scrape round done); always ready when not given.
        discovery_ttl_ms: how long :meth:`metrics` reuses its last answer; listing walks
            every series.

    Raises:
        KubepulseValueError: ``staleness_ms`` or ``discovery_ttl_ms`` is negative.
    """

    def __init__(
        self,
        store: TimeSeriesStore,
        *,
        clock: Callable[[], int],
        staleness_ms: int = DEFAULT_STALENESS_MS,
        lock: threading.Lock | None = None,
        ready: Callable[[], bool] | None = None,
        discovery_ttl_ms: int = 10_000,
    ) -> None:
        if staleness_ms <= 0 or discovery_ttl_ms < 0:
            raise KubepulseValueError(
                f"staleness_ms must be positive and discovery_ttl_ms not negative, got "
                f"{staleness_ms} and {discovery_ttl_ms}"
            )
        self._store = store
        self._clock = clock
        self._staleness_ms = staleness_ms
        self._lock = lock if lock is not None else threading.Lock()
        self._ready = ready
        self._discovery_ttl_ms = discovery_ttl_ms
        self._discovered: tuple[int, list[MetricDescriptor]] | None = None

    @property
    def lock(self) -> threading.Lock:
        """The lock every user of the store takes around each store call."""
        return self._lock

    @property
    def store(self) -> TimeSeriesStore:
        """The store queried (take :attr:`lock` before touching it)."""
        return self._store

    @property
    def staleness_ms(self) -> int:
        """Objects whose newest sample is older than this are absent."""
        return self._staleness_ms

    # ------------------------------------------------------------------ protocol

    async def query(self, request: SeriesRequest, now_ms: int) -> list[ObjectValue]:
        """The statistic of ``request`` per object, computed in a worker thread.

        Raises:
            MetricNotFoundError: the store has no series of the metric.
            StatisticError: a histogram is asked for a statistic its buckets lack.
        """
        return await asyncio.to_thread(self.evaluate, request, now_ms)

    async def metrics(self) -> list[MetricDescriptor]:
        """Every metric with at least one fresh series, by name (cached briefly)."""
        return await asyncio.to_thread(self.list_metrics)

    async def ready(self) -> bool:
        """Whether the ``ready`` callable says so (always, without one)."""
        return True if self._ready is None else bool(self._ready())

    # ------------------------------------------------------------------ synchronous API

    def evaluate(self, request: SeriesRequest, now_ms: int) -> list[ObjectValue]:
        """:meth:`query` without the thread hop, for callers already off the event loop.

        Values are sorted by object name.
        """
        statistic = request.statistic
        measures: dict[str, tuple[list[Series], Callable[[int, int], _Measured | None]]] = {}
        with self._lock:
            if self._is_histogram(request.metric):
                aggregation = resolve_aggregation(statistic, MetricKind.HISTOGRAM, request.metric)
                for name, histogram in self._select_histograms(request).items():
                    bucket_series = [series for _, series in histogram.buckets]
                    measures[name] = (bucket_series, _histogram_measure(histogram, aggregation))
            else:
                by_kind = {
                    series_kind: resolve_aggregation(statistic, metric_kind, request.metric)
                    for series_kind, metric_kind in _KINDS.items()
                }
                for name, series in self._select_series(request).items():
                    measures[name] = (series, _series_measure(series, by_kind))
        values: list[ObjectValue] = []
        for name in sorted(measures):
            series, measure = measures[name]
            # One object at a time, so that the scraper never waits long for the lock.
            with self._lock:
                value = self._object_value(name, series, measure, statistic, now_ms)
            if value is not None:
                values.append(value)
        return values

    def list_metrics(self) -> list[MetricDescriptor]:
        """:meth:`metrics` without the thread hop."""
        now_ms = self._clock()
        cached = self._discovered
        if cached is not None and now_ms - cached[0] < self._discovery_ttl_ms:
            return cached[1]
        kinds: dict[str, MetricKind] = {}
        scopes: dict[str, set[MetricScope]] = {}
        with self._lock:
            for series in self._store:
                if series.latest(now_ms, self._staleness_ms) is None:
                    continue
                labels = series.labels
                name = series.name
                if name.endswith(_BUCKET_SUFFIX) and _BUCKET_LABEL in labels:
                    name = name[: -len(_BUCKET_SUFFIX)]
                    kind = MetricKind.HISTOGRAM
                else:
                    kind = _KINDS[series.kind]
                kinds.setdefault(name, kind)
                scopes.setdefault(name, set()).update(scopes_from_labels(labels))
        listed = [
            MetricDescriptor(name, kinds[name], frozenset(scopes[name])) for name in sorted(kinds)
        ]
        self._discovered = (now_ms, listed)
        return listed

    # ------------------------------------------------------------------ selection

    def _is_histogram(self, metric: str) -> bool:
        """Whether ``metric`` is a histogram; raises when the store has no such metric."""
        names = self._store.label_values(METRIC_NAME_LABEL)
        if metric in names:
            return False
        if metric + _BUCKET_SUFFIX in names:
            return True
        raise MetricNotFoundError(
            metric,
            f"no series of the metric {metric!r} are in the store (nor histogram buckets "
            f"{metric + _BUCKET_SUFFIX!r}); list what is served with kubectl get --raw "
            "/apis/custom.metrics.k8s.io/v1beta2",
        )

    def _select(
        self, name: str, request: SeriesRequest
    ) -> Iterable[tuple[str, Series, Mapping[str, str]]]:
        """The series of ``name`` the request keeps, with their object and labels."""
        equals: dict[str, str] = {}
        if request.namespace is not None:
            equals[NAMESPACE_LABEL] = request.namespace
        names = request.object_names
        if request.object_label is not None and names is not None and len(names) == 1:
            (equals[request.object_label],) = names  # one object: let the index find it
        matches = request.series_selector.matches
        for series in self._store.select(name, **equals):
            labels = series.labels  # built on every access: read it once
            if matches(labels):
                owner = request.object_of(labels)
                if owner is not None:
                    yield owner, series, labels

    def _select_series(self, request: SeriesRequest) -> dict[str, list[Series]]:
        groups: dict[str, list[Series]] = {}
        for owner, series, _ in self._select(request.metric, request):
            groups.setdefault(owner, []).append(series)
        return groups

    def _select_histograms(self, request: SeriesRequest) -> dict[str, _Histogram]:
        for requirement in request.series_selector.requirements:
            if requirement.key == _BUCKET_LABEL:
                raise StatisticError(
                    f"{request.metric} is a histogram: its buckets are combined by the "
                    f"percentile, so the selector cannot filter on {_BUCKET_LABEL!r}; drop "
                    f"{str(requirement)!r}"
                )
        groups: dict[str, _Histogram] = {}
        for owner, series, labels in self._select(request.metric + _BUCKET_SUFFIX, request):
            bound = _bucket_bound(labels.get(_BUCKET_LABEL))
            if bound is not None:
                groups.setdefault(owner, _Histogram()).buckets.append((bound, series))
        for owner, series, _ in self._select(request.metric + _SUM_SUFFIX, request):
            if owner in groups:
                groups[owner].sums.append(series)
        return groups

    # ------------------------------------------------------------------ evaluation

    def _newest_fresh_ms(self, series: Iterable[Series], now_ms: int) -> int | None:
        newest: int | None = None
        for one in series:
            latest = one.latest(now_ms, self._staleness_ms)
            if latest is not None and (newest is None or latest[0] > newest):
                newest = latest[0]
        return newest

    def _object_value(
        self,
        name: str,
        series: list[Series],
        measure: Callable[[int, int], _Measured | None],
        statistic: Statistic,
        now_ms: int,
    ) -> ObjectValue | None:
        newest_ms = self._newest_fresh_ms(series, now_ms)
        if newest_ms is None:
            return None
        if statistic.prediction is None:
            measured = measure(now_ms - statistic.window_ms, now_ms)
            value = None if measured is None else measured.value
        else:
            value = self._forecast(measure, statistic, now_ms)
        if value is None or not math.isfinite(value):
            return None
        return ObjectValue(name, newest_ms, value, statistic.window_ms)

    def _forecast(
        self,
        measure: Callable[[int, int], _Measured | None],
        statistic: Statistic,
        now_ms: int,
    ) -> float | None:
        prediction = statistic.prediction
        assert prediction is not None
        resolution_ms = self._store.resolution_ms
        step_ms = max(resolution_ms, -(-statistic.window_ms // MAX_FORECAST_POINTS))
        lookback_ms = max(step_ms, 2 * resolution_ms)
        window_start_ms = now_ms - statistic.window_ms
        ends = []
        end_ms = now_ms
        while end_ms - lookback_ms >= window_start_ms:
            ends.append(end_ms)
            end_ms -= step_ms
        timestamps: list[int] = []
        values: list[float] = []
        for end_ms in reversed(ends):
            measured = measure(end_ms - lookback_ms, end_ms)
            if measured is None:
                continue
            middle_ms = (measured.first_ms + measured.last_ms) // 2
            # Two sub-windows over the same samples give the same point: keep one.
            if timestamps and middle_ms <= timestamps[-1]:
                continue
            timestamps.append(middle_ms)
            values.append(measured.value)
        if not timestamps:
            return None
        horizon_ms = now_ms + prediction.horizon_ms - timestamps[-1]
        fit = forecast_holt if prediction.model is ForecastModel.HOLT else forecast_linear
        try:
            return served_forecast(fit(timestamps, values, horizon_ms).value, values)
        except InsufficientDataError:
            return None


def _series_measure(
    series: list[Series], aggregations: Mapping[SeriesKind, Aggregation]
) -> Callable[[int, int], _Measured | None]:
    """How to compute the statistic of gauge or counter ``series``, summed, over a window."""

    def measure(start_ms: int, end_ms: int) -> _Measured | None:
        span = _Span()
        for one in series:
            summary = one.summary(start_ms, end_ms)
            if summary is None:
                continue
            value = evaluate(aggregations[one.kind], summary)
            if value is not None and math.isfinite(value):
                span.add(value, summary)
        return span.result()

    return measure


def _histogram_measure(
    histogram: _Histogram, aggregation: Aggregation
) -> Callable[[int, int], _Measured | None]:
    """How to compute ``aggregation`` of ``histogram`` over a window."""
    kind = aggregation.kind

    def percentile(start_ms: int, end_ms: int) -> _Measured | None:
        quantile = aggregation.quantile
        assert quantile is not None
        counts: dict[float, float] = {}
        span = _Span()
        for bound, series in histogram.buckets:
            summary = series.summary(start_ms, end_ms)
            if summary is None:
                continue
            counts[bound] = counts.get(bound, 0.0) + summary.increase
            span.add(0.0, summary)
        value = histogram_quantile(quantile, counts)
        return None if value is None else span.result(value)

    def observations(start_ms: int, end_ms: int) -> tuple[_Span, float, float]:
        """The span, the observation count and the ``_sum`` increase over the window."""
        span = _Span()
        count = 0.0
        observed_total = 0.0
        for series in histogram.counting:
            summary = series.summary(start_ms, end_ms)
            if summary is not None and summary.count > 1:
                count += summary.increase
                span.add(0.0, summary)
        for series in histogram.sums:
            summary = series.summary(start_ms, end_ms)
            if summary is not None and summary.count > 1:
                observed_total += summary.increase
        return span, count, observed_total

    def rate(start_ms: int, end_ms: int) -> _Measured | None:
        span = _Span()
        for series in histogram.counting:
            summary = series.summary(start_ms, end_ms)
            value = evaluate(aggregation, summary)
            if summary is not None and value is not None:
                span.add(value, summary)
        return span.result()

    def average(start_ms: int, end_ms: int) -> _Measured | None:
        span, count, observed_total = observations(start_ms, end_ms)
        if not histogram.sums or not count > 0.0:
            return None
        return span.result(observed_total / count)

    def total(start_ms: int, end_ms: int) -> _Measured | None:
        span, _, observed_total = observations(start_ms, end_ms)
        if not histogram.sums:
            return None
        return span.result(observed_total)

    if kind is AggregationKind.PERCENTILE:
        return percentile
    if kind is AggregationKind.RATE:
        return rate
    if kind is AggregationKind.AVG:
        return average
    return total


def _bucket_bound(text: str | None) -> float | None:
    """A bucket's upper bound from its ``le`` label (``+Inf`` is infinity); ``None`` if bad."""
    if text is None:
        return None
    try:
        bound = float(text)
    except ValueError:
        return None
    return None if math.isnan(bound) or bound == -math.inf else bound

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
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import compress
from typing import Any, TypeVar

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
    evaluate,
    forecast_holt,
    forecast_linear,
)
from kubepulse.stats.aggregate import evaluate_increase, needs_increase_only
from kubepulse.store import METRIC_NAME_LABEL, Series, TimeSeriesStore
from kubepulse.store.series import fresh_range, last_timestamps

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
_REMEMBERED_SELECTIONS = 16
_REMEMBERED_PLANS = 8  # statistics per grouping; forgotten all at once when full
_REMEMBERED_ANSWERS = 100_000  # objects per plan; forgotten all at once when full
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
    bounds = sorted(bucket_counts)
    return _sorted_histogram_quantile(quantile, bounds, [bucket_counts[bound] for bound in bounds])


def _sorted_histogram_quantile(
    quantile: float, bounds: list[float], bucket_counts: list[float]
) -> float | None:
    """:func:`histogram_quantile` of ``bounds`` (sorted, distinct) and their counts."""
    if len(bounds) < 2 or bounds[-1] != math.inf:
        return None
    counts: list[float] = []
    for count in bucket_counts:
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
    oldest_ms: int | None = None
    """The oldest sample the value depends on when older than ``first_ms`` (a histogram's
    ``_sum`` series, which do not count in the span): when it leaves the window, the
    value may change."""


@dataclass(slots=True)
class _Histogram:
    """The series of one object's histogram: buckets by upper bound, and ``_sum`` series."""

    buckets: list[tuple[float, Series]] = field(default_factory=list)
    sums: list[Series] = field(default_factory=list)

    @property
    def counting(self) -> list[Series]:
        """The ``+Inf`` buckets: one per histogram, counting every observation."""
        return [series for bound, series in self.buckets if bound == math.inf]

    @property
    def series(self) -> list[Series]:
        """The bucket series (what decides whether the object has fresh data)."""
        return [series for _, series in self.buckets]


_Selected = TypeVar("_Selected", list[Series], _Histogram)


@dataclass(frozen=True, slots=True)
class _ObjectMeasure:
    """How to compute one object's statistic, and from which series."""

    series: list[Series]
    """The series whose freshness decides whether the object has a value."""
    read: list[Series]
    """Every series the measure reads (a histogram's ``_sum`` series too)."""
    measure: Callable[[int, int], _Measured | None]


@dataclass(frozen=True, slots=True)
class _Answer:
    """An object's last answer and for which times it still holds (see _object_value)."""

    signature: int
    computed_ms: int
    valid_until_ms: int
    value: ObjectValue


_Answers = dict[str, _Answer]


@dataclass(frozen=True, slots=True)
class _Plan:
    """One statistic over one grouping: the objects in order, their measures and answers."""

    names: list[str]
    measures: dict[str, _ObjectMeasure]
    answers: _Answers

    @classmethod
    def of(cls, measures: dict[str, _ObjectMeasure]) -> _Plan:
        return cls(sorted(measures), measures, {})


_Plans = dict[Statistic, _Plan]


class _Span:
    """Adds up the contributions to one statistic and the time span of their samples."""

    __slots__ = ("first_ms", "last_ms", "oldest_ms", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.oldest_ms: int | None = None

    def depends_on(self, first_ms: int) -> None:
        """The value also depends on samples from ``first_ms`` on (outside the span)."""
        self.oldest_ms = first_ms if self.oldest_ms is None else min(self.oldest_ms, first_ms)

    def add(self, value: float, first_ms: int, last_ms: int) -> None:
        self.total += value
        self.first_ms = first_ms if self.first_ms is None else min(self.first_ms, first_ms)
        self.last_ms = last_ms if self.last_ms is None else max(self.last_ms, last_ms)

    def result(self, value: float | None = None) -> _Measured | None:
        """The total (or ``value`` instead), ``None`` when nothing contributed or not finite."""
        answer = self.total if value is None else value
        if self.first_ms is None or self.last_ms is None or not math.isfinite(answer):
            return None
        oldest_ms = self.oldest_ms
        if oldest_ms is not None and oldest_ms >= self.first_ms:
            oldest_ms = None
        return _Measured(answer, self.first_ms, self.last_ms, oldest_ms)


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
        # Recent requests' groupings of series into objects, see _selected().
        self._selections: OrderedDict[Hashable, tuple[tuple[int, ...], dict[str, Any], _Plans]] = (
            OrderedDict()
        )

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
        with self._lock:
            if self._is_histogram(request.metric):
                aggregation = resolve_aggregation(statistic, MetricKind.HISTOGRAM, request.metric)
                histograms, prepared = self._selected(request, self._select_histograms)
                plan = prepared.get(statistic)
                if plan is None:
                    plan = _Plan.of({
                        name: _ObjectMeasure(
                            histogram.series,
                            histogram.series + histogram.sums,
                            _histogram_measure(histogram, aggregation),
                        )
                        for name, histogram in histograms.items()
                    })  # fmt: skip
            else:
                by_kind = {
                    series_kind: resolve_aggregation(statistic, metric_kind, request.metric)
                    for series_kind, metric_kind in _KINDS.items()
                }
                groups, prepared = self._selected(request, self._select_series)
                plan = prepared.get(statistic)
                if plan is None:
                    plan = _Plan.of({
                        name: _ObjectMeasure(series, series, _series_measure(series, by_kind))
                        for name, series in groups.items()
                    })  # fmt: skip
            if statistic not in prepared:
                if len(prepared) >= _REMEMBERED_PLANS:
                    prepared.clear()
                prepared[statistic] = plan
        values: list[ObjectValue] = []
        measures = plan.measures
        answers = plan.answers
        for name in plan.names:
            # One object at a time, so that the scraper never waits long for the lock.
            with self._lock:
                value = self._object_value(name, measures[name], statistic, now_ms, answers)
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

    def _selected(
        self, request: SeriesRequest, select: Callable[[SeriesRequest], dict[str, _Selected]]
    ) -> tuple[dict[str, _Selected], _Plans]:
        """``select(request)``, remembered until a series of the metric is added or removed.

        Selecting walks every series of the metric (labels, selector, object), which cost
        as much as the statistics themselves on a ``pods/*`` request; the same request
        (an HPA asks every 15 s) reuses the grouping while no series of the metric (or
        of its ``_bucket`` and ``_sum`` series) came or went in the request's namespace
        (:meth:`~kubepulse.store.TimeSeriesStore.name_generation`). With it comes the
        statistics asked of it (:class:`_Plan`: the measures and the objects' last
        answers, see :meth:`_object_value`), which go with the grouping. Callers hold
        the lock and must not change the grouping.
        """
        key = (
            select.__name__,
            request.metric,
            request.namespace,
            request.series_selector,
            request.object_label,
            request.object_names,
            request.merge_objects,
        )
        store = self._store
        generation = tuple(
            store.name_generation(request.metric + suffix, request.namespace)
            for suffix in ("", _BUCKET_SUFFIX, _SUM_SUFFIX)
        )
        remembered = self._selections.get(key)
        if remembered is not None and remembered[0] == generation:
            self._selections.move_to_end(key)
            return remembered[1], remembered[2]
        selected = select(request)
        plans: _Plans = {}
        self._selections[key] = (generation, selected, plans)
        while len(self._selections) > _REMEMBERED_SELECTIONS:
            self._selections.popitem(last=False)
        return selected, plans

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

    def _object_value(
        self,
        name: str,
        measure: _ObjectMeasure,
        statistic: Statistic,
        now_ms: int,
        answers: _Answers,
    ) -> ObjectValue | None:
        """The object's value at ``now_ms``, from ``answers`` when it cannot have changed.

        An answer (without a forecast) stays right while no sample is appended to the
        series it read (their newest timestamps add up to the same number), no sample it
        used leaves the window (the oldest one used is still inside), no fresh series
        turns stale, and no sample is newer than the time it was computed for. An HPA
        asking again within a scrape interval, or several clients asking the same
        question, get it without recomputing; anything that changed is recomputed.
        """
        signature = 0
        if statistic.prediction is None:
            newest_samples = last_timestamps(measure.read)
            signature = sum(newest_samples)
            remembered = answers.get(name)
            if (
                remembered is not None
                and remembered.signature == signature
                and remembered.computed_ms <= now_ms < remembered.valid_until_ms
            ):
                return remembered.value
        fresh = fresh_range(measure.series, now_ms, self._staleness_ms)
        if fresh is None:
            return None
        if statistic.prediction is not None:
            value = self._forecast(measure.measure, statistic, now_ms)
            if value is None or not math.isfinite(value):
                return None
            return ObjectValue(name, fresh[1], value, statistic.window_ms)
        measured = measure.measure(now_ms - statistic.window_ms, now_ms)
        if measured is None or not math.isfinite(measured.value):
            return None
        answer = ObjectValue(name, fresh[1], measured.value, statistic.window_ms)
        if max(newest_samples, default=now_ms) <= now_ms:
            if len(answers) >= _REMEMBERED_ANSWERS:
                answers.clear()
            oldest_ms = measured.first_ms if measured.oldest_ms is None else measured.oldest_ms
            valid_until_ms = min(
                oldest_ms + statistic.window_ms + 1,  # the oldest sample used leaves
                fresh[0] + self._staleness_ms + 1,  # a fresh series turns stale
            )
            answers[name] = _Answer(signature, now_ms, valid_until_ms, answer)
        return answer

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

    # rate, and a counter's avg and sum, need only the increase: no sketch to build.
    increase_only = {
        kind: needs_increase_only(aggregation, kind) for kind, aggregation in aggregations.items()
    }

    def measure(start_ms: int, end_ms: int) -> _Measured | None:
        span = _Span()
        for one in series:
            aggregation = aggregations[one.kind]
            if increase_only[one.kind]:
                increase = one.increase(start_ms, end_ms)
                if increase is None:
                    continue
                value = evaluate_increase(aggregation, *increase)
                first_ms, last_ms = increase.first_ms, increase.last_ms
            else:
                summary = one.summary(start_ms, end_ms)
                if summary is None:
                    continue
                value = evaluate(aggregation, summary)
                first_ms, last_ms = summary.first_ms, summary.last_ms
            if value is not None and math.isfinite(value):
                span.add(value, first_ms, last_ms)
        return span.result()

    return measure


def _histogram_measure(
    histogram: _Histogram, aggregation: Aggregation
) -> Callable[[int, int], _Measured | None]:
    """How to compute ``aggregation`` of ``histogram`` over a window."""
    kind = aggregation.kind

    def observations(start_ms: int, end_ms: int) -> tuple[_Span, float, float]:
        """The span, the observation count and the ``_sum`` increase over the window."""
        span = _Span()
        count = 0.0
        observed_total = 0.0
        for series in histogram.counting:
            increase = series.increase(start_ms, end_ms)
            if increase is not None and increase.sample_count > 1:
                count += increase.increase
                span.add(0.0, increase.first_ms, increase.last_ms)
        for series in histogram.sums:
            increase = series.increase(start_ms, end_ms)
            if increase is not None and increase.sample_count > 1:
                observed_total += increase.increase
                span.depends_on(increase.first_ms)
        return span, count, observed_total

    def rate(start_ms: int, end_ms: int) -> _Measured | None:
        span = _Span()
        for series in histogram.counting:
            increase = series.increase(start_ms, end_ms)
            if increase is None:
                continue
            value = evaluate_increase(aggregation, *increase)
            if value is not None:
                span.add(value, increase.first_ms, increase.last_ms)
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
        assert aggregation.quantile is not None  # a percentile always has its level
        return _percentile_measure(histogram, aggregation.quantile)
    if kind is AggregationKind.RATE:
        return rate
    if kind is AggregationKind.AVG:
        return average
    return total


def _percentile_measure(
    histogram: _Histogram, quantile: float
) -> Callable[[int, int], _Measured | None]:
    """How to compute the ``quantile`` of ``histogram`` over a window."""
    # The bounds in order once, and each bucket series' place among them, so that a
    # query adds up a list instead of sorting a dict per object.
    bounds = sorted({bound for bound, _ in histogram.buckets})
    places = {bound: place for place, bound in enumerate(bounds)}
    placed = [(places[bound], series) for bound, series in histogram.buckets]

    def percentile(start_ms: int, end_ms: int) -> _Measured | None:
        counts = [0.0] * len(bounds)
        present = [False] * len(bounds)
        first_ms: int | None = None
        last_ms: int | None = None
        for place, series in placed:
            increase = series.increase(start_ms, end_ms)
            if increase is None:
                continue
            counts[place] += increase.increase
            present[place] = True
            # The span of the samples used (inlined _Span.add: this loop is the hot path).
            if first_ms is None or increase.first_ms < first_ms:
                first_ms = increase.first_ms
            if last_ms is None or increase.last_ms > last_ms:
                last_ms = increase.last_ms
        if first_ms is None or last_ms is None:
            return None
        if all(present):
            value = _sorted_histogram_quantile(quantile, bounds, counts)
        else:  # a bucket without samples in the window is left out, as before
            value = _sorted_histogram_quantile(
                quantile,
                list(compress(bounds, present)),
                list(compress(counts, present)),
            )
        if value is None or not math.isfinite(value):
            return None
        return _Measured(value, first_ms, last_ms)

    return percentile


def _bucket_bound(text: str | None) -> float | None:
    """A bucket's upper bound from its ``le`` label (``+Inf`` is infinity); ``None`` if bad."""
    if text is None:
        return None
    try:
        bound = float(text)
    except ValueError:
        return None
    return None if math.isnan(bound) or bound == -math.inf else bound

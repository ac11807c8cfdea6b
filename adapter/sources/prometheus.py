"""The Prometheus source: the same answers as the embedded source, computed by PromQL.

:class:`PrometheusSource` implements :class:`~adapter.sources.base.MetricSource` against
Prometheus' HTTP API (or anything that speaks it: Thanos, Mimir, VictoriaMetrics). The
statistics mean exactly what :mod:`adapter.sources.embedded` defines; the PromQL that
computes each one, and where it can differ, is in :mod:`adapter.sources.promql`. This
module sends the queries and reads the answers:

- **One request per answer.** The value query and the freshness query are one PromQL
  query, their parts tagged and joined by ``or``
  (:func:`~adapter.sources.promql.combined_query`); raw-sample statistics are one
  range-vector selector whose samples also give each object's newest sample. Only the
  metric names and metadata (cached) cost other requests.
- **Per object.** Queries group ``by (<object label>)``; the source keeps the objects
  the request names (``object_names``). One object's statistic is computed whole by
  Prometheus, a histogram's percentile by ``histogram_quantile``. For a Deployment over
  its pods (``merge_objects``) the source adds the pods' numbers up: values are summed,
  histogram bucket increases are summed per ``le`` before
  :func:`~adapter.sources.embedded.histogram_quantile` (the embedded source's copy of
  Prometheus' function) interpolates the percentile, and a histogram's mean is the
  summed ``_sum`` increase over the summed observation count.
- **Raw samples** where PromQL has no function with the embedded definition (a gauge's
  percentile, a counter's ``min``, ``max``, ``sum`` and percentiles, a histogram's
  ``sum``): an instant query of a range-vector selector returns the window's samples,
  evaluated per series with :func:`kubepulse.stats.exact_evaluate`, the exact
  reference the embedded summaries are tested against.
- **Forecasts.** The statistic is evaluated one *step* apart across the window, each
  point over the trailing *lookback*, with the embedded source's step and lookback
  (``step = max(resolution, window / 60)``, ``lookback = max(step, 2 * resolution)``,
  ``resolution_ms`` being the scrape interval): one ``query_range`` whose points end at
  ``now``, ``now - step``, ... Each point is stamped at the middle of its lookback (the
  embedded source stamps the middle of the samples used, within half a scrape interval
  of it). Raw-sample statistics fetch the window's samples once and slide over them in
  Python, stamping exactly as the embedded source does. The model
  (:func:`~kubepulse.stats.forecast_linear` or :func:`~kubepulse.stats.forecast_holt`)
  is fitted in Python and read at ``now + horizon``.
- **Staleness.** The freshness part of the query gives each object's newest sample
  (``max by (pod) (timestamp(x{...}))``, at ``now``: in a range query its point at the
  range's end). An object whose newest sample is older than ``staleness_ms``, or that
  Prometheus no longer returns at all (its target went away and the series was marked
  stale, or it has no sample within Prometheus' lookback delta, five minutes by
  default), is absent: never zero. A staleness limit above the lookback delta therefore
  acts as the lookback delta. For raw-sample statistics the newest sample is read from
  the window's samples, which Prometheus returns without its staleness markers: a
  series whose target went away stays until its last sample is older than
  ``staleness_ms``, as in the embedded source. The newest sample is the answer's
  timestamp.
- **Kinds.** A metric's kind comes from ``/api/v1/metadata`` (the ``# TYPE`` its targets
  declared, cached for ``metadata_ttl_ms``), read with the scraper's rules (the
  ``_total`` of a counter, the ``_sum`` and ``_count`` of a histogram or summary are
  counters; gauges, summaries' quantiles and untyped samples are gauges). Without
  metadata (remote-written data, recording rules) the names decide: ``x_bucket`` series
  and no ``x`` make a histogram, a name ending in ``_total`` a counter, anything else a
  gauge. Metric names come from ``/api/v1/label/__name__/values`` (cached as long; a
  name not found there is looked up again before the answer is 404).
- **Transport.** ``GET`` for short queries, ``POST`` (form-encoded) when the encoded
  parameters exceed :data:`POST_THRESHOLD_BYTES`. Every request carries the timeout,
  also passed to Prometheus so that it stops working when the adapter stops waiting.
  Connection errors, timeouts, non-JSON bodies, 5xx and Prometheus errors raise
  :class:`~adapter.sources.base.SourceUnavailableError` naming the URL and the status.
  A ``bad_data`` error means a query this module built is wrong: it is logged with the
  query and raised the same way. No series of the metric at all raises
  :class:`~adapter.sources.base.MetricNotFoundError`.

Calls may run concurrently; the caches are plain attributes replaced whole, so two
requests that both find a cache expired both refresh it, which is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode

import httpx

from adapter.sources.base import (
    MetricDescriptor,
    MetricNotFoundError,
    MetricScope,
    SourceUnavailableError,
    scopes_from_labels,
    served_forecast,
)
from adapter.sources.embedded import MAX_FORECAST_POINTS, histogram_quantile
from adapter.sources.promql import (
    BUCKET_LABEL,
    BUCKET_SUFFIX,
    DISCOVERY_TAGS,
    NEWEST_PART,
    PART_LABEL,
    PlanMode,
    QueryPlan,
    discovery_query,
    plan_query,
)
from kubepulse.errors import KubepulseValueError
from kubepulse.metricquery import (
    ForecastModel,
    MetricKind,
    ObjectValue,
    SeriesRequest,
    Statistic,
)
from kubepulse.promql import AnswerKind, PrometheusAnswerError, answer_data
from kubepulse.stats import InsufficientDataError, exact_evaluate, forecast_holt, forecast_linear

__all__ = [
    "DEFAULT_RESOLUTION_MS",
    "POST_THRESHOLD_BYTES",
    "PrometheusSource",
]

logger = logging.getLogger(__name__)

_ADVICE: Final = {
    AnswerKind.NOT_API: "check that the URL is Prometheus' base URL (without /api/v1)",
    AnswerKind.REFUSED: "this is a kubepulse bug, the query is in the adapter's log: please "
    "report it",
    AnswerKind.FAILED: "check that Prometheus is healthy and not overloaded",
}

POST_THRESHOLD_BYTES = 2_000
"""Encoded parameters longer than this go in a form-encoded POST body, not the URL."""
DEFAULT_RESOLUTION_MS = 15_000
"""The scrape interval assumed for forecast steps: Prometheus' usual 15 s."""

_METRIC_NAME_LABEL = "__name__"
_CREATED_SUFFIX = "_created"
# Declared types whose samples named exactly like the family are gauges (as the scraper).
_GAUGE_TYPES = frozenset({"gauge", "summary", "stateset", "info", "gaugehistogram"})
# The counter samples of a family, by the family's declared type (as the scraper).
_COUNTER_SUFFIXES: Mapping[str, tuple[str, ...]] = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
}


@dataclass(frozen=True)
class _Result:
    """One series of a Prometheus answer: its labels and its ``(ms, value)`` points."""

    labels: Mapping[str, str]
    points: list[tuple[int, float]]


@dataclass
class _Cached:
    """A value fetched at ``fetched`` (monotonic seconds)."""

    fetched: float
    value: Any


@dataclass
class _Sum:
    """Adds up values; ``None`` until something was added."""

    total: float = 0.0
    seen: bool = False

    def add(self, value: float) -> None:
        self.total += value
        self.seen = True


@dataclass
class _Point:
    """What one object contributed at one timestamp, whatever the plan's mode."""

    values: _Sum = field(default_factory=_Sum)
    denominator: _Sum = field(default_factory=_Sum)
    buckets: dict[float, float] = field(default_factory=dict)


class PrometheusSource:
    """A :class:`~adapter.sources.base.MetricSource` that asks Prometheus.

    Args:
        url: Prometheus' base URL (``http://prometheus.monitoring:9090``, with a path
            prefix if it serves under one).
        timeout_ms: how long one HTTP request may take, end to end.
        staleness_ms: an object whose newest sample is older than this is absent.
        transport: the httpx transport (tests pass an :class:`httpx.MockTransport`).
        resolution_ms: the scrape interval of the series queried, which sets the forecast
            step and lookback as in the embedded source.
        metadata_ttl_ms: how long metric names and metadata (kinds) are reused.
        discovery_ttl_ms: how long :meth:`metrics` reuses its last answer.
        clock: monotonic seconds, for the caches.

    Raises:
        KubepulseValueError: a duration is not positive, or the URL is not http(s).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_ms: int,
        staleness_ms: int,
        transport: httpx.AsyncBaseTransport | None = None,
        resolution_ms: int = DEFAULT_RESOLUTION_MS,
        metadata_ttl_ms: int = 60_000,
        discovery_ttl_ms: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if min(timeout_ms, staleness_ms, resolution_ms) <= 0:
            raise KubepulseValueError(
                f"timeout_ms, staleness_ms and resolution_ms must be positive, got "
                f"{timeout_ms}, {staleness_ms} and {resolution_ms}"
            )
        if metadata_ttl_ms < 0 or discovery_ttl_ms < 0:
            raise KubepulseValueError(
                f"metadata_ttl_ms and discovery_ttl_ms must not be negative, got "
                f"{metadata_ttl_ms} and {discovery_ttl_ms}"
            )
        if not url.startswith(("http://", "https://")):
            raise KubepulseValueError(
                f"the Prometheus URL {url!r} must start with http:// or https://, e.g. "
                "http://prometheus-operated.monitoring:9090"
            )
        self._url = url.rstrip("/")
        self._timeout_ms = timeout_ms
        self._staleness_ms = staleness_ms
        self._resolution_ms = resolution_ms
        self._metadata_ttl_s = metadata_ttl_ms / 1000.0
        self._discovery_ttl_s = discovery_ttl_ms / 1000.0
        self._clock = clock
        self._client = httpx.AsyncClient(
            base_url=self._url,
            transport=transport,
            timeout=httpx.Timeout(timeout_ms / 1000.0),
            headers={"Accept": "application/json"},
        )
        self._names: _Cached | None = None
        self._metadata: _Cached | None = None
        self._discovered: _Cached | None = None

    @property
    def url(self) -> str:
        """The Prometheus base URL queried."""
        return self._url

    @property
    def staleness_ms(self) -> int:
        """Objects whose newest sample is older than this are absent."""
        return self._staleness_ms

    async def aclose(self) -> None:
        """Close the HTTP client's connections."""
        await self._client.aclose()

    # ------------------------------------------------------------------ protocol

    async def query(self, request: SeriesRequest, now_ms: int) -> list[ObjectValue]:
        """The statistic of ``request`` per object at ``now_ms``, sorted by object name.

        Raises:
            MetricNotFoundError: Prometheus has no series of the metric.
            SourceUnavailableError: Prometheus cannot be reached or fails.
            StatisticError: a histogram is asked for a statistic its buckets lack.
        """
        kind = await self._kind(request.metric)
        statistic = request.statistic
        newest: dict[str, int]
        values: Mapping[str, float | None]
        if statistic.prediction is None:
            plan = plan_query(request, kind, statistic.window_ms)
            if plan.matches_nothing:
                return []
            newest, values = await self._instant_values(request, plan, now_ms)
        else:
            step_ms, lookback_ms = self._forecast_step(statistic)
            plan = plan_query(request, kind, lookback_ms)
            if plan.mode is PlanMode.SAMPLES:
                plan = plan_query(request, kind, statistic.window_ms)
            if plan.matches_nothing or statistic.window_ms < lookback_ms:
                return []
            newest, values = await self._forecasts(request, plan, now_ms, step_ms, lookback_ms)
        newest = {
            name: stamp_ms
            for name, stamp_ms in newest.items()
            if now_ms - stamp_ms <= self._staleness_ms
        }
        answer: list[ObjectValue] = []
        for name in sorted(newest):
            value = values.get(name)
            if value is not None and math.isfinite(value):
                answer.append(ObjectValue(name, newest[name], value, statistic.window_ms))
        return answer

    async def metrics(self) -> list[MetricDescriptor]:
        """Every metric with a current sample, by name, with its kind and scopes (cached).

        Raises:
            SourceUnavailableError: Prometheus cannot be reached or fails.
        """
        cached = self._discovered
        if cached is not None and self._clock() - cached.fetched < self._discovery_ttl_s:
            listed: list[MetricDescriptor] = cached.value
            return listed
        rows, metadata = await asyncio.gather(
            self._query(discovery_query(), None), self._fetch_metadata()
        )
        kinds: dict[str, MetricKind] = {}
        scopes: dict[str, set[MetricScope]] = {}
        for row in rows:
            name = row.labels.get(_METRIC_NAME_LABEL)
            if not name or _is_created(name, metadata):
                continue
            present = {label for label, tag in DISCOVERY_TAGS.items() if row.labels.get(tag)}
            if name.endswith(BUCKET_SUFFIX) and BUCKET_LABEL in present:
                name = name[: -len(BUCKET_SUFFIX)]
                kind = MetricKind.HISTOGRAM
            else:
                kind = _plain_kind(name, metadata)
            kinds.setdefault(name, kind)
            scopes.setdefault(name, set()).update(
                scopes_from_labels(frozenset(present - {BUCKET_LABEL}))
            )
        listed = [
            MetricDescriptor(name, kinds[name], frozenset(scopes[name])) for name in sorted(kinds)
        ]
        self._discovered = _Cached(self._clock(), listed)
        return listed

    async def ready(self) -> bool:
        """Whether Prometheus answers ``/-/ready`` with 200."""
        try:
            response = await self._client.get("/-/ready")
        except httpx.HTTPError:
            return False
        return response.status_code == httpx.codes.OK

    # ------------------------------------------------------------------ kinds

    async def _kind(self, metric: str) -> MetricKind:
        """The kind of ``metric``; raises :class:`MetricNotFoundError` when it has no series."""
        names = await self._metric_names(refresh=False)
        if metric not in names and metric + BUCKET_SUFFIX not in names:
            names = await self._metric_names(refresh=True)
        if metric in names:
            return _plain_kind(metric, await self._fetch_metadata())
        if metric + BUCKET_SUFFIX in names:
            return MetricKind.HISTOGRAM
        raise MetricNotFoundError(
            metric,
            f"Prometheus at {self._url} has no series of the metric {metric!r} (nor histogram "
            f"buckets {metric + BUCKET_SUFFIX!r}); check that it is scraped (Status > Targets "
            "in its UI), and list what is served with kubectl get --raw "
            "/apis/custom.metrics.k8s.io/v1beta2",
        )

    async def _metric_names(self, *, refresh: bool) -> frozenset[str]:
        cached = self._names
        now = self._clock()
        fresh_enough = cached is not None and now - cached.fetched < self._metadata_ttl_s
        # A name missing from the cache is looked up again, but at most once a second.
        if cached is not None and ((fresh_enough and not refresh) or now - cached.fetched < 1.0):
            names: frozenset[str] = cached.value
            return names
        data = await self._api("/api/v1/label/__name__/values", [])
        if not isinstance(data, list):
            raise self._malformed("/api/v1/label/__name__/values", "a list of names")
        names = frozenset(name for name in data if isinstance(name, str))
        self._names = _Cached(now, names)
        return names

    async def _fetch_metadata(self) -> Mapping[str, str]:
        """Metric name -> declared type (``counter``, ``gauge``, ``histogram``, ...)."""
        cached = self._metadata
        now = self._clock()
        if cached is not None and now - cached.fetched < self._metadata_ttl_s:
            known: Mapping[str, str] = cached.value
            return known
        data = await self._api("/api/v1/metadata", [])
        if not isinstance(data, dict):
            raise self._malformed("/api/v1/metadata", "an object of metric names")
        types: dict[str, str] = {}
        for name, entries in data.items():
            if isinstance(entries, list) and entries and isinstance(entries[0], dict):
                declared = entries[0].get("type")
                if isinstance(declared, str):
                    types[name] = declared
        self._metadata = _Cached(now, types)
        return types

    # ------------------------------------------------------------------ evaluation

    def _forecast_step(self, statistic: Statistic) -> tuple[int, int]:
        """The embedded source's forecast step and lookback for ``statistic``."""
        step_ms = max(self._resolution_ms, -(-statistic.window_ms // MAX_FORECAST_POINTS))
        return step_ms, max(step_ms, 2 * self._resolution_ms)

    async def _instant_values(
        self, request: SeriesRequest, plan: QueryPlan, now_ms: int
    ) -> tuple[dict[str, int], dict[str, float | None]]:
        """Each kept object's newest sample (ms) and statistic at ``now_ms``: one request."""
        results = await self._query(plan.request_query, now_ms)
        if plan.mode is PlanMode.SAMPLES:
            values: dict[str, _Sum] = {}
            for result in results:
                name = request.object_of(result.labels)
                value = _evaluate_samples(plan, result.points)
                if name is None or value is None:
                    continue
                values.setdefault(name, _Sum()).add(value)
            return _newest_of_samples(request, results), {
                name: total.total for name, total in values.items()
            }
        parts, fresh = _split_parts(plan, results)
        merged = _merge(request, plan, parts)
        return _newest_at(request, fresh, now_ms, None), {
            name: _value_of(plan, by_time[max(by_time)])
            for name, by_time in merged.items()
            if by_time
        }

    async def _forecasts(
        self,
        request: SeriesRequest,
        plan: QueryPlan,
        now_ms: int,
        step_ms: int,
        lookback_ms: int,
    ) -> tuple[dict[str, int], dict[str, float | None]]:
        """Each object's newest sample and forecast, fitted to the statistic sliding across
        the window: one request."""
        prediction = request.statistic.prediction
        assert prediction is not None
        window_ms = request.statistic.window_ms
        steps = (window_ms - lookback_ms) // step_ms
        series: dict[str, tuple[list[int], list[float]]] = {}
        if plan.mode is PlanMode.SAMPLES:
            ends = [now_ms - index * step_ms for index in range(steps, -1, -1)]
            results = await self._query(plan.request_query, now_ms)
            newest = _newest_of_samples(request, results)
            series = _sliding_samples(request, plan, results, ends, lookback_ms)
        else:
            start_ms = now_ms - steps * step_ms
            results = await self._query_range(plan.request_query, start_ms, now_ms, step_ms)
            parts, fresh = _split_parts(plan, results)
            newest = _newest_at(request, fresh, now_ms, step_ms)
            for name, by_time in _merge(request, plan, parts).items():
                stamps: list[int] = []
                values: list[float] = []
                for stamp_ms in sorted(by_time):
                    value = _value_of(plan, by_time[stamp_ms])
                    if value is not None and math.isfinite(value):
                        stamps.append(stamp_ms - lookback_ms // 2)
                        values.append(value)
                series[name] = (stamps, values)
        fit = forecast_holt if prediction.model is ForecastModel.HOLT else forecast_linear
        forecasts: dict[str, float | None] = {}
        for name, (stamps, values) in series.items():
            if not stamps:
                continue
            horizon_ms = now_ms + prediction.horizon_ms - stamps[-1]
            try:
                forecasts[name] = served_forecast(fit(stamps, values, horizon_ms).value, values)
            except InsufficientDataError:
                continue
        return newest, forecasts

    # ------------------------------------------------------------------ HTTP

    async def _query(self, query: str, now_ms: int | None) -> list[_Result]:
        """An instant query's series (a vector's or a matrix's)."""
        parameters = [("query", query)]
        if now_ms is not None:
            parameters.append(("time", _seconds(now_ms)))
        return self._results(await self._api("/api/v1/query", parameters, query), query)

    async def _query_range(
        self, query: str, start_ms: int, end_ms: int, step_ms: int
    ) -> list[_Result]:
        parameters = [
            ("query", query),
            ("start", _seconds(start_ms)),
            ("end", _seconds(end_ms)),
            ("step", _seconds(step_ms)),
        ]
        return self._results(await self._api("/api/v1/query_range", parameters, query), query)

    def _results(self, data: Any, query: str) -> list[_Result]:
        if not isinstance(data, dict) or not isinstance(data.get("result"), list):
            raise self._malformed("/api/v1/query", "a result list")
        results: list[_Result] = []
        try:
            for item in data["result"]:
                labels = item.get("metric", {})
                raw = item["values"] if "values" in item else [item["value"]]
                points = [(round(float(stamp) * 1000.0), float(value)) for stamp, value in raw]
                results.append(_Result(labels, points))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise self._malformed("/api/v1/query", f"series and samples ({error})") from None
        return results

    async def _api(
        self, path: str, parameters: Sequence[tuple[str, str]], query: str | None = None
    ) -> Any:
        """GET (or POST, when long) ``path``; the ``data`` of a successful answer.

        Raises:
            SourceUnavailableError: anything but a successful JSON answer.
        """
        parameters = [*parameters, ("timeout", f"{self._timeout_ms}ms")]
        encoded = urlencode(parameters)
        where = f"{self._url}{path}"
        try:
            if len(encoded) > POST_THRESHOLD_BYTES:
                response = await self._client.post(
                    path,
                    content=encoded.encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
            else:
                response = await self._client.get(f"{path}?{encoded}")
        except httpx.TimeoutException:
            raise SourceUnavailableError(
                f"Prometheus at {where} did not answer within {self._timeout_ms} ms; check "
                "that it is up and not overloaded, or raise the source's timeout"
            ) from None
        except httpx.HTTPError as error:
            raise SourceUnavailableError(
                f"cannot reach Prometheus at {where}: {type(error).__name__}: {error}; check "
                "the URL and that Prometheus is running"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        try:
            return answer_data(response.status_code, body, where)
        except PrometheusAnswerError as error:
            if error.kind is AnswerKind.REFUSED:
                logger.error("%s; the query kubepulse built: %s", error, query)
            raise SourceUnavailableError(f"{error}; {_ADVICE[error.kind]}") from None

    def _malformed(self, path: str, expected: str) -> SourceUnavailableError:
        return SourceUnavailableError(
            f"Prometheus at {self._url}{path} answered without {expected}; is it Prometheus "
            "or a compatible API?"
        )


# ---------------------------------------------------------------------- pure helpers


def _seconds(stamp_ms: int) -> str:
    """Milliseconds as the API's float seconds: ``1700000000.5``."""
    whole, fraction = divmod(stamp_ms, 1000)
    return f"{whole}.{fraction:03d}"


def _plain_kind(name: str, metadata: Mapping[str, str]) -> MetricKind:
    """The kind of the series named ``name`` (not a histogram's base name).

    The declared type decides, by the scraper's rules; without one, a ``_total`` name is
    a counter and anything else a gauge.
    """
    declared = metadata.get(name)
    if declared == "counter":
        return MetricKind.COUNTER
    if declared in _GAUGE_TYPES:
        return MetricKind.GAUGE
    for family_type, suffixes in _COUNTER_SUFFIXES.items():
        for suffix in suffixes:
            if name.endswith(suffix) and metadata.get(name[: -len(suffix)]) == family_type:
                return MetricKind.COUNTER
    if declared is None and name.endswith("_total"):
        return MetricKind.COUNTER
    return MetricKind.GAUGE


def _is_created(name: str, metadata: Mapping[str, str]) -> bool:
    """Whether ``name`` is the ``_created`` timestamp of a counter, histogram or summary.

    The scraper does not store those, so discovery does not list them either.
    """
    if not name.endswith(_CREATED_SUFFIX):
        return False
    family = name[: -len(_CREATED_SUFFIX)]
    return metadata.get(family) in _COUNTER_SUFFIXES or metadata.get(f"{family}_total") == "counter"


def _bucket_bound(text: str | None) -> float | None:
    """A bucket's upper bound from its ``le`` label; ``None`` when it is not a bound."""
    if text is None:
        return None
    try:
        bound = float(text)
    except ValueError:
        return None
    return None if math.isnan(bound) or bound == -math.inf else bound


def _split_parts(
    plan: QueryPlan, results: list[_Result]
) -> tuple[list[list[_Result]], list[_Result]]:
    """The answer of a combined query split by part: one list per plan query, and freshness.

    A series without a known tag is not from the query the plan built, and is dropped.
    """
    parts: list[list[_Result]] = [[] for _ in plan.queries]
    fresh: list[_Result] = []
    for result in results:
        tag = result.labels.get(PART_LABEL)
        if tag == NEWEST_PART:
            fresh.append(result)
        elif tag is not None and tag.isdigit() and int(tag) < len(parts):
            parts[int(tag)].append(result)
    return parts, fresh


def _newest_at(
    request: SeriesRequest, fresh: list[_Result], now_ms: int, step_ms: int | None
) -> dict[str, int]:
    """Each kept object's newest sample (ms) from the freshness part's values at ``now_ms``.

    An instant answer (``step_ms`` ``None``) is at ``now_ms``. In a range answer the point
    of the range's last step is used: at ``now_ms`` in Prometheus, less than ``step_ms``
    earlier in a store that aligns steps to their size. An object without that point was
    not current at ``now_ms``.
    """
    newest: dict[str, int] = {}
    for result in fresh:
        name = request.object_of(result.labels)
        if name is None or not result.points:
            continue
        stamp_ms, value = result.points[-1]
        if (step_ms is not None and stamp_ms <= now_ms - step_ms) or not math.isfinite(value):
            continue
        sample_ms = round(value * 1000.0)
        if name not in newest or sample_ms > newest[name]:
            newest[name] = sample_ms
    return newest


def _newest_of_samples(request: SeriesRequest, results: list[_Result]) -> dict[str, int]:
    """Each kept object's newest sample (ms) among raw samples of the window."""
    newest: dict[str, int] = {}
    for result in results:
        name = request.object_of(result.labels)
        if name is None or not result.points:
            continue
        stamp_ms = max(stamp for stamp, _ in result.points)
        if name not in newest or stamp_ms > newest[name]:
            newest[name] = stamp_ms
    return newest


def _merge(
    request: SeriesRequest, plan: QueryPlan, answers: Sequence[list[_Result]]
) -> dict[str, dict[int, _Point]]:
    """Each kept object's contributions by timestamp; merged objects added up.

    ``answers`` holds one list of series per query of the plan: for ``RATIO`` the first
    is the numerator and the second the denominator.
    """
    merged: dict[str, dict[int, _Point]] = {}
    for position, results in enumerate(answers):
        for result in results:
            name = request.object_of(result.labels)
            if name is None:
                continue
            bound = None
            if plan.mode is PlanMode.BUCKETS:
                bound = _bucket_bound(result.labels.get(BUCKET_LABEL))
                if bound is None:
                    continue
            by_time = merged.setdefault(name, {})
            for stamp_ms, value in result.points:
                if math.isnan(value):
                    continue
                point = by_time.setdefault(stamp_ms, _Point())
                if bound is not None:
                    point.buckets[bound] = point.buckets.get(bound, 0.0) + value
                elif position == 0:
                    point.values.add(value)
                else:
                    point.denominator.add(value)
    return merged


def _value_of(plan: QueryPlan, point: _Point) -> float | None:
    """The statistic of one object at one time from what it contributed."""
    if plan.mode is PlanMode.BUCKETS:
        quantile = plan.aggregation.quantile
        assert quantile is not None
        return histogram_quantile(quantile, point.buckets)
    if plan.mode is PlanMode.RATIO:
        denominator = point.denominator.total
        if not point.values.seen or not denominator > 0.0:
            return None
        return point.values.total / denominator
    return point.values.total if point.values.seen else None


def _evaluate_samples(plan: QueryPlan, points: Sequence[tuple[int, float]]) -> float | None:
    """The plan's statistic of one series' raw samples (non-finite samples dropped)."""
    kept = [(stamp, value) for stamp, value in points if math.isfinite(value)]
    if not kept:
        return None
    value = exact_evaluate(
        plan.aggregation,
        plan.series_kind,
        [stamp for stamp, _ in kept],
        [value for _, value in kept],
    )
    return value if value is not None and math.isfinite(value) else None


def _sliding_samples(
    request: SeriesRequest,
    plan: QueryPlan,
    results: list[_Result],
    ends: list[int],
    lookback_ms: int,
) -> dict[str, tuple[list[int], list[float]]]:
    """Forecast points from raw samples, exactly as the embedded source makes them.

    For each end (oldest first), each series' statistic over ``[end - lookback, end]``,
    summed per object and stamped at the middle of the samples used; a point whose
    stamp does not advance (the same samples again) is skipped.
    """
    by_object: dict[str, list[list[tuple[int, float]]]] = {}
    for result in results:
        name = request.object_of(result.labels)
        if name is not None:
            by_object.setdefault(name, []).append(result.points)
    series: dict[str, tuple[list[int], list[float]]] = {}
    for name, members in by_object.items():
        stamps: list[int] = []
        values: list[float] = []
        for end_ms in ends:
            start_ms = end_ms - lookback_ms
            total = _Sum()
            first_ms: int | None = None
            last_ms: int | None = None
            for points in members:
                inside = [(stamp, value) for stamp, value in points if start_ms <= stamp <= end_ms]
                value = _evaluate_samples(plan, inside)
                if value is None:
                    continue
                total.add(value)
                finite = [stamp for stamp, sample in inside if math.isfinite(sample)]
                first_ms = finite[0] if first_ms is None else min(first_ms, finite[0])
                last_ms = finite[-1] if last_ms is None else max(last_ms, finite[-1])
            if not total.seen or first_ms is None or last_ms is None:
                continue
            middle_ms = (first_ms + last_ms) // 2
            if stamps and middle_ms <= stamps[-1]:
                continue
            stamps.append(middle_ms)
            values.append(total.total)
        series[name] = (stamps, values)
    return series

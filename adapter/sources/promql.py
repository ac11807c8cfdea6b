"""PromQL for a :class:`~kubepulse.metricquery.SeriesRequest`: pure text, no I/O.

The Prometheus source (:mod:`adapter.sources.prometheus`) asks Prometheus for numbers
that mean exactly what :mod:`adapter.sources.embedded` computes from its own store. This
module decides *which* PromQL computes them; the source only sends it and reads the
answer. Three rules shape every query:

- **Select by namespace and labels, never by pod names.** A series selector carries the
  request's ``namespace`` and its metric selector translated matcher by matcher
  (:func:`label_matchers`). The objects asked for (``object_names``) are *not* written as
  a regular expression of names, which grows with the Deployment and blows past URL
  limits; the query groups ``by (<object label>)`` and the source keeps the objects it
  wants. One name, the common case of an HPA asking for one pod, is written as an
  equality matcher, which Prometheus' index answers directly.
- **Group server-side, merge client-side only when it must.** ``sum by (pod) (...)``
  gives one number per object, and where the statistic of one object is a PromQL
  expression Prometheus computes it whole: a histogram's percentile is
  ``histogram_quantile(q, sum by (pod, le) (increase(x_bucket{sel}[w])))`` and its mean
  the quotient of two sums, per pod. A Deployment over its pods (``merge_objects``) is
  merged in Python, because its pods are kept client-side (never named in a regex):
  values are added up, histograms are read ``by (pod, le)`` so that the source adds
  bucket increases per ``le`` across the kept pods before interpolating the percentile
  once, and a mean is read as its numerator and denominator by pod.
- **One request per answer.** The value and each object's newest sample (freshness)
  travel in one query: every part is tagged with the label :data:`PART_LABEL`
  (``label_replace(<part>, "kubepulse_part", "<tag>", "", "")``) and the parts are joined
  with ``or`` (:func:`combined_query`); the source splits the answer by tag. Raw-sample
  plans need no freshness part: each object's newest sample is among the samples.
- **Use a PromQL function only where it means what the embedded source means.** Where no
  PromQL function has the embedded definition, the query asks for the raw samples of the
  window (a range-vector selector) and the source evaluates them with
  :func:`kubepulse.stats.exact_evaluate`, the reference the embedded summaries are
  tested against (:attr:`PlanMode.SAMPLES`).

The statistic per series, then ``sum by (object)`` (``{sel}`` is the series selector,
``[w]`` the window, ``w_s`` the window in seconds):

============  ==========================================  ==================================
statistic     gauge                                       counter
============  ==========================================  ==================================
``avg``       ``avg_over_time(x{sel}[w])``                ``rate(x{sel}[w])``
``min``       ``min_over_time(x{sel}[w])``                raw samples (min interval rate)
``max``       ``max_over_time(x{sel}[w])``                raw samples (max interval rate)
``sum``       ``sum_over_time(x{sel}[w])``                raw samples (increase, not
                                                          extrapolated)
``last``      ``last_over_time(x{sel}[w])``               ``irate(x{sel}[w])``
``rate``      ``delta(x{sel}[w]) / w_s``                  ``rate(x{sel}[w])``
``pNN``       raw samples (lower-rank percentile)         raw samples (of interval rates)
============  ==========================================  ==================================

``rate`` and ``delta`` extrapolate the increase to the window's edges; when a series has
samples across the whole window (within 1.1 sample intervals of each edge) the
extrapolated increase divided by the window equals the sampled increase divided by the
sampled span, which is the embedded definition. They differ for a series that starts or
ends inside the window (Prometheus extrapolates half an interval) and for a counter
whose first sample in the window is close to zero (Prometheus stops at zero).

Histograms (``x_bucket{le=...}``, ``x_sum``):

- ``pNN``: ``histogram_quantile(q, sum by (pod, le) (increase(x_bucket{sel}[w])))``
  (:attr:`PlanMode.VALUES`). Extrapolation scales every bucket of a series alike, so the
  percentile is the one of the sampled increases, and Prometheus' ``histogram_quantile``
  is the function :func:`adapter.sources.embedded.histogram_quantile` reproduces (counts
  forced monotonic, linear interpolation from 0 in the first bucket, the highest finite
  bound for a rank in ``+Inf``; no observations: NaN, dropped: absent). Merged objects:
  ``sum by (pod, le) (increase(x_bucket{sel}[w]))`` (:attr:`PlanMode.BUCKETS`),
  interpolated in Python after summing the kept pods' buckets.
- ``avg``: ``sum by (pod) (increase(x_sum{sel}[w])) / sum by (pod)
  (increase(x_bucket{sel,le="+Inf"}[w]))`` (no observations: NaN or infinite, dropped);
  merged objects read the numerator and the denominator apart and divide after adding
  up (:attr:`PlanMode.RATIO`).
- ``rate``: ``sum by (pod) (rate(x_bucket{sel,le="+Inf"}[w]))``; ``sum``: the raw
  samples of ``x_sum``.

Freshness (:func:`freshness_query`): ``max by (pod) (timestamp(x{sel}))``, the newest
sample of each object that Prometheus still considers current (newer than its lookback
delta, five minutes by default, and not marked stale); for a histogram its
``le="+Inf"`` buckets only (every bucket of a histogram is scraped at once, so they
have the same newest sample, at a fraction of the series). It is folded into the value
query (:func:`combined_query`); in a range query (forecasts) its point at the range's
end is the newest sample at ``now``. A raw-sample plan reads each object's newest sample
from the window's samples instead: the same instant, except for a series Prometheus
marked stale (its target went away) within the window, which counts as fresh until its
last sample is older than the staleness limit, as in the embedded source. The source
drops objects whose newest sample is older than its staleness limit.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kubepulse.duration import format_duration
from kubepulse.errors import KubepulseValueError
from kubepulse.metricquery import (
    NAMESPACE_LABEL,
    MetricKind,
    SeriesRequest,
    StatisticError,
    resolve_aggregation,
)
from kubepulse.promql import escape_regex, escape_string
from kubepulse.selector import LabelSelector, Operator, Requirement
from kubepulse.stats import Aggregation, AggregationKind, SeriesKind

__all__ = [
    "BUCKET_LABEL",
    "BUCKET_SUFFIX",
    "DISCOVERY_TAGS",
    "INFINITE_BUCKET",
    "NEWEST_PART",
    "PART_LABEL",
    "SUM_SUFFIX",
    "PlanMode",
    "QueryPlan",
    "combined_query",
    "discovery_query",
    "escape_regex",
    "escape_string",
    "freshness_query",
    "is_label_name",
    "label_matchers",
    "plan_query",
    "promql_duration",
    "series_selector",
]

BUCKET_SUFFIX = "_bucket"
"""A histogram's bucket series are ``<name>_bucket``."""
SUM_SUFFIX = "_sum"
"""A histogram's observed total is ``<name>_sum``."""
BUCKET_LABEL = "le"
"""The label holding a bucket's upper bound."""
INFINITE_BUCKET = "+Inf"
"""The ``le`` of the bucket that counts every observation."""
PART_LABEL = "kubepulse_part"
"""The label tagging each part of a :func:`combined_query` answer: the position of the
plan's query (``"0"``, ``"1"``) or :data:`NEWEST_PART`."""
NEWEST_PART = "newest"
"""The :data:`PART_LABEL` of the freshness part: each object's newest sample."""

# Discovery tags each series with the object labels it carries (see discovery_query).
DISCOVERY_TAGS = {
    "namespace": "kubepulse_has_namespace",
    "pod": "kubepulse_has_pod",
    "node": "kubepulse_has_node",
    BUCKET_LABEL: "kubepulse_has_le",
}

# Characters with a meaning in RE2, which Prometheus' =~ and !~ use.
_LABEL_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_LABEL_NAME_REST = _LABEL_NAME_START | frozenset("0123456789")


class PlanMode(enum.Enum):
    """How the source reads a plan's answer."""

    VALUES = "values"
    """One query, one number per object, computed by Prometheus: ``sum by (object)
    (...)``, ``histogram_quantile(...)`` or a quotient of two sums."""
    BUCKETS = "buckets"
    """One query, ``sum by (object, le) (increase(x_bucket[w]))``: a percentile of
    merged objects, interpolated after adding up their buckets."""
    RATIO = "ratio"
    """Two queries by object, numerator and denominator, divided after merging objects."""
    SAMPLES = "samples"
    """One range-vector selector: the raw samples of each series, evaluated in Python;
    each object's newest sample is read from them."""


@dataclass(frozen=True)
class QueryPlan:
    """The PromQL that answers one request, and how to read it."""

    mode: PlanMode
    """How to read the answer."""
    aggregation: Aggregation
    """The statistic, resolved for the metric's kind (the natural one when not asked)."""
    queries: tuple[str, ...]
    """The query texts: one, or the numerator and the denominator for ``RATIO``. For
    ``SAMPLES`` a range-vector selector, valid only as an instant query."""
    series_kind: SeriesKind
    """How raw samples are read (``SAMPLES``): a gauge's levels or a counter's total."""
    matches_nothing: bool = False
    """The selector can match no series Prometheus may hold (``tier=`` asks for a label
    that is present and empty, which Prometheus never stores): nothing to send."""
    freshness: str | None = None
    """Each object's newest sample (:func:`freshness_query`); ``None`` for ``SAMPLES``
    (the samples carry it) and when nothing matches."""

    @property
    def request_query(self) -> str:
        """The one query the source sends: the plan's queries and its freshness, tagged
        (:func:`combined_query`), or the range-vector selector of ``SAMPLES``.

        Raises:
            KubepulseValueError: the plan matches nothing, so there is nothing to send.
        """
        if self.matches_nothing or not self.queries:
            raise KubepulseValueError("this plan matches no series: there is no query to send")
        if self.mode is PlanMode.SAMPLES or self.freshness is None:
            return self.queries[0] if len(self.queries) == 1 else combined_query(self.queries)
        return combined_query(self.queries, self.freshness)


def is_label_name(name: str) -> bool:
    """Whether ``name`` can be a Prometheus label name (``[a-zA-Z_][a-zA-Z0-9_]*``).

    Kubernetes selector keys may hold ``/``, ``.`` and ``-``; no series carries such a
    label, so a requirement on one is decided without asking Prometheus.
    """
    return bool(name) and name[0] in _LABEL_NAME_START and all(c in _LABEL_NAME_REST for c in name)


def promql_duration(duration_ms: int) -> str:
    """A PromQL duration literal: ``1m``, ``90s`` written ``1m30s``, ``1500ms``."""
    if duration_ms <= 0:
        raise KubepulseValueError(f"a PromQL range must be positive, got {duration_ms} ms")
    return format_duration(duration_ms)


def _requirement_matchers(requirement: Requirement) -> list[str] | None:
    """Matchers with Kubernetes' meaning under Prometheus' model; ``None``: never matches.

    In Prometheus a label with an empty value does not exist, so an empty value is the
    same as no label: ``k=""`` matches series *without* ``k``, and ``k!=""`` those with
    it. Kubernetes instead means "present with the value": ``tier=`` (present and empty)
    can match nothing Prometheus stores, and ``tier!=`` (absent or not empty) matches
    everything. The empty value is therefore dropped from value sets before writing.
    """
    key = requirement.key
    operator = requirement.operator
    values = sorted(value for value in requirement.values if value)
    positive = operator in {Operator.EQUALS, Operator.IN, Operator.EXISTS}
    if not is_label_name(key):
        # No series has this label: it is absent everywhere.
        return None if positive else []
    if operator is Operator.EXISTS:
        return [f'{key}=~".+"']
    if operator is Operator.DOES_NOT_EXIST:
        return [f'{key}=""']
    if not values:
        return None if positive else []
    if len(values) == 1:
        symbol = "=" if positive else "!="
        return [f"{key}{symbol}{escape_string(values[0])}"]
    pattern = "|".join(escape_regex(value) for value in values)
    symbol = "=~" if positive else "!~"
    return [f"{key}{symbol}{escape_string(pattern)}"]


def label_matchers(selector: LabelSelector) -> list[str] | None:
    """The PromQL matchers of a Kubernetes label selector; ``None`` when it matches nothing.

    ``=``/``==`` become ``="v"``, ``!=`` ``!="v"``, ``in`` ``=~"a|b"`` (values
    regex-escaped), ``notin`` ``!~"a|b"``, exists ``=~".+"`` and ``!key`` ``=""``; see
    ``_requirement_matchers`` for empty values and keys that are not label names.
    """
    matchers: list[str] = []
    for requirement in selector.requirements:
        translated = _requirement_matchers(requirement)
        if translated is None:
            return None
        matchers.extend(translated)
    return matchers


def series_selector(name: str, request: SeriesRequest, extra: Iterable[str] = ()) -> str | None:
    """``name{namespace="ns", <selector>, <extra>}`` for ``request``; ``None``: nothing matches.

    One requested object is written as an equality matcher on the object label; several
    are left to the caller to filter (never a regular expression of names).
    """
    matchers = label_matchers(request.series_selector)
    if matchers is None:
        return None
    written: list[str] = []
    if request.namespace is not None:
        written.append(f"{NAMESPACE_LABEL}={escape_string(request.namespace)}")
    names = request.object_names
    if request.object_label is not None and names is not None and len(names) == 1:
        (only,) = names
        written.append(f"{request.object_label}={escape_string(only)}")
    written.extend(matchers)
    written.extend(extra)
    return f"{name}{{{', '.join(written)}}}"


def _grouping(request: SeriesRequest, *labels: str) -> str:
    """``sum by (pod)``, ``sum by (pod, le)``, ``sum by (le)`` or ``sum``."""
    names = ([request.object_label] if request.object_label is not None else []) + list(labels)
    return f"sum by ({', '.join(names)})" if names else "sum"


def _check_histogram_selector(request: SeriesRequest) -> None:
    for requirement in request.series_selector.requirements:
        if requirement.key == BUCKET_LABEL:
            raise StatisticError(
                f"{request.metric} is a histogram: its buckets are combined by the "
                f"percentile, so the selector cannot filter on {BUCKET_LABEL!r}; drop "
                f"{str(requirement)!r}"
            )


_GAUGE_FUNCTIONS = {
    AggregationKind.AVG: "avg_over_time",
    AggregationKind.MIN: "min_over_time",
    AggregationKind.MAX: "max_over_time",
    AggregationKind.SUM: "sum_over_time",
    AggregationKind.LAST: "last_over_time",
}
_COUNTER_FUNCTIONS = {
    AggregationKind.AVG: "rate",
    AggregationKind.RATE: "rate",
    AggregationKind.LAST: "irate",
}


def plan_query(request: SeriesRequest, kind: MetricKind, range_ms: int) -> QueryPlan:
    """The PromQL computing ``request``'s statistic of a ``kind`` metric over ``range_ms``.

    ``range_ms`` is the window for an instant answer, or a forecast point's lookback for
    a range query (``SAMPLES`` plans are always instant: raw samples of the range). The
    plan carries the freshness query too, except for ``SAMPLES``; its
    :attr:`~QueryPlan.request_query` is the one query to send.

    Raises:
        StatisticError: a histogram is asked for ``min``, ``max`` or ``last``, or its
            selector filters on ``le``.
    """
    plan = _plan_values(request, kind, range_ms)
    if plan.matches_nothing or plan.mode is PlanMode.SAMPLES:
        return plan
    return dataclasses.replace(plan, freshness=freshness_query(request, kind))


def _plan_values(request: SeriesRequest, kind: MetricKind, range_ms: int) -> QueryPlan:
    aggregation = resolve_aggregation(request.statistic, kind, request.metric)
    window = promql_duration(range_ms)
    metric = request.metric
    if kind is MetricKind.HISTOGRAM:
        _check_histogram_selector(request)
        return _histogram_plan(request, aggregation, window)
    series_kind = SeriesKind.COUNTER if kind is MetricKind.COUNTER else SeriesKind.GAUGE
    selector = series_selector(metric, request)
    if selector is None:
        return QueryPlan(PlanMode.VALUES, aggregation, (), series_kind, matches_nothing=True)
    by_object = _grouping(request)
    function: str | None
    if kind is MetricKind.COUNTER:
        function = _COUNTER_FUNCTIONS.get(aggregation.kind)
        if function is not None:
            query = f"{by_object} ({function}({selector}[{window}]))"
            return QueryPlan(PlanMode.VALUES, aggregation, (query,), series_kind)
    else:
        function = _GAUGE_FUNCTIONS.get(aggregation.kind)
        if function is not None:
            query = f"{by_object} ({function}({selector}[{window}]))"
            return QueryPlan(PlanMode.VALUES, aggregation, (query,), series_kind)
        if aggregation.kind is AggregationKind.RATE:
            seconds = _seconds_literal(range_ms)
            query = f"{by_object} (delta({selector}[{window}]) / {seconds})"
            return QueryPlan(PlanMode.VALUES, aggregation, (query,), series_kind)
    return QueryPlan(PlanMode.SAMPLES, aggregation, (f"{selector}[{window}]",), series_kind)


def _histogram_plan(request: SeriesRequest, aggregation: Aggregation, window: str) -> QueryPlan:
    metric = request.metric
    counter = SeriesKind.COUNTER
    infinite = f"{BUCKET_LABEL}={escape_string(INFINITE_BUCKET)}"
    buckets = series_selector(metric + BUCKET_SUFFIX, request)
    counting = series_selector(metric + BUCKET_SUFFIX, request, (infinite,))
    sums = series_selector(metric + SUM_SUFFIX, request)
    if buckets is None or counting is None or sums is None:
        return QueryPlan(PlanMode.BUCKETS, aggregation, (), counter, matches_nothing=True)
    by_object = _grouping(request)
    kind = aggregation.kind
    # Merged objects are kept and added up client-side (see the module docstring); one
    # object's statistic is computed whole by Prometheus.
    merged = request.merge_objects
    if kind is AggregationKind.PERCENTILE:
        increases = f"{_grouping(request, BUCKET_LABEL)} (increase({buckets}[{window}]))"
        if merged:
            return QueryPlan(PlanMode.BUCKETS, aggregation, (increases,), counter)
        assert aggregation.quantile is not None
        query = f"histogram_quantile({aggregation.quantile!r}, {increases})"
        return QueryPlan(PlanMode.VALUES, aggregation, (query,), counter)
    if kind is AggregationKind.RATE:
        query = f"{by_object} (rate({counting}[{window}]))"
        return QueryPlan(PlanMode.VALUES, aggregation, (query,), counter)
    if kind is AggregationKind.AVG:
        numerator = f"{by_object} (increase({sums}[{window}]))"
        denominator = f"{by_object} (increase({counting}[{window}]))"
        if merged:
            return QueryPlan(PlanMode.RATIO, aggregation, (numerator, denominator), counter)
        query = f"{numerator} / {denominator}"
        return QueryPlan(PlanMode.VALUES, aggregation, (query,), counter)
    # SUM: the increase of x_sum, not extrapolated: from the raw samples.
    return QueryPlan(PlanMode.SAMPLES, aggregation, (f"{sums}[{window}]",), counter)


def _seconds_literal(duration_ms: int) -> str:
    """A duration in seconds as a PromQL number: ``60``, ``1.5``."""
    whole, fraction = divmod(duration_ms, 1000)
    return str(whole) if not fraction else f"{duration_ms / 1000:g}"


def freshness_query(request: SeriesRequest, kind: MetricKind) -> str | None:
    """``max by (object) (timestamp(x{sel}))``: each object's newest current sample.

    For a histogram its ``+Inf`` buckets are read: the embedded source reads the bucket
    series, and every bucket of one histogram is scraped at the same instant. ``None``
    when the selector matches nothing.
    """
    if kind is MetricKind.HISTOGRAM:
        infinite = f"{BUCKET_LABEL}={escape_string(INFINITE_BUCKET)}"
        selector = series_selector(request.metric + BUCKET_SUFFIX, request, (infinite,))
    else:
        selector = series_selector(request.metric, request)
    if selector is None:
        return None
    grouping = f"max by ({request.object_label})" if request.object_label is not None else "max"
    return f"{grouping} (timestamp({selector}))"


def combined_query(queries: Sequence[str], freshness: str | None = None) -> str:
    """One query answering several: each part tagged with :data:`PART_LABEL`, joined by ``or``.

    ``queries[i]`` is tagged ``"i"`` and ``freshness`` :data:`NEWEST_PART`. Every part
    must be an instant vector whose series carry no :data:`PART_LABEL` of their own (the
    grouped expressions of a plan carry only the object label and ``le``); tagged apart,
    no series of one part matches one of another, so ``or`` keeps them all. In a range
    query every part is evaluated at every step.
    """
    parts = [(str(position), query) for position, query in enumerate(queries)]
    if freshness is not None:
        parts.append((NEWEST_PART, freshness))
    if not parts:
        raise KubepulseValueError("a combined query needs at least one part")
    return " or ".join(
        f'label_replace({query}, "{PART_LABEL}", "{tag}", "", "")' for tag, query in parts
    )


def discovery_query() -> str:
    """One query listing every metric with a current sample and which object labels it has.

    Each series is tagged ``kubepulse_has_namespace="1"`` (and ``_pod``, ``_node``,
    ``_le``) when it carries that label, then grouped by name and tags: the answer has
    at most 16 rows per metric name however many series there are.
    """
    expression = '{__name__=~".+"}'
    for label, tag in DISCOVERY_TAGS.items():
        expression = f'label_replace({expression}, "{tag}", "1", "{label}", ".+")'
    tags = ", ".join(DISCOVERY_TAGS.values())
    return f"group by (__name__, {tags}) ({expression})"

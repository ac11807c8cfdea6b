"""What a metrics request asks for: the vocabulary the adapter's API and its sources share.

An HPA asks the adapter for one metric of some objects. Besides the metric's name and the
objects, the request says *which statistic* of the metric's recent past to serve. That
choice travels in one of two spellings, both read here:

* reserved keys in the metric selector (``metricLabelSelector``, which an HPA fills from
  its metric's ``selector``), read by :func:`parse_metric_selector`::

      kubepulse.io/window       30s ... 24h (default 1m)
      kubepulse.io/aggregation  avg min max sum last rate pNN (default: natural, below)
      kubepulse.io/predict      a horizon, 1s ... 1h: serve the value forecast that far ahead
      kubepulse.io/model        linear (default) or holt, with kubepulse.io/predict

  Every other key filters series labels. An unknown ``kubepulse.io/`` key is an error;

* a *derived metric name*, for tools that cannot set selectors, read by
  :func:`split_derived_name` and written by :func:`format_derived_name`::

      derived     ::= base "-" statistic
      statistic   ::= [aggregation "-"] window ["-predict-" horizon ["-" model]]
                    | aggregation ["-predict-" horizon ["-" model]]
                    | "predict-" horizon ["-" model]
      aggregation ::= avg | min | max | sum | last | rate | p<NN>
      window, horizon ::= a duration such as 30s, 5m, 1h30m

  so ``http_request_duration_seconds-p95-5m`` is the p95 over five minutes and
  ``queue_depth-avg-1m-predict-2m-holt`` the one-minute average forecast two minutes
  ahead with Holt's method. The separator is ``-`` because it is the one character that
  is valid in an HPA metric name and a URL path segment but never in a Prometheus metric
  name (``[a-zA-Z_:][a-zA-Z0-9_:]*``). ``:`` would not do: recording rules are named
  ``job:http_requests:rate5m``, so ``http_requests:p95:5m`` could be a real series. With
  ``-``, everything before the first ``-`` is the base name and everything after it is
  the statistic, whatever the store holds. The canonical form always writes the window
  and, with a forecast, the model: ``format_derived_name("x", Statistic())`` is
  ``x-1m``.

A request says the statistic once: a derived name together with reserved selector keys
is an error (:func:`parse_metric_request` enforces it).

*Natural* aggregation (``kubepulse.io/aggregation`` not given) depends on what the metric
is (:func:`natural_aggregation`): a counter's per-second ``rate``, a gauge's ``avg``, a
histogram's ``p95``. Histograms answer ``pNN`` (interpolated from bucket increases as
``histogram_quantile`` does), ``avg`` (mean observation: increase of ``_sum`` over
increase of ``_count``), ``rate`` (observations per second) and ``sum`` (increase of
``_sum``); ``min``, ``max`` and ``last`` are not recoverable from buckets and are refused
(:func:`resolve_aggregation`).

Finally :class:`SeriesRequest` is what the API asks a metric source, and
:class:`ObjectValue` what a source answers: one value per object, stale objects absent.

This module is pure.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kubepulse.duration import DurationError, format_duration, parse_window
from kubepulse.errors import KubepulseValueError
from kubepulse.selector import LabelSelector, parse_selector
from kubepulse.stats.aggregate import Aggregation, AggregationKind, parse_aggregation

__all__ = [
    "AGGREGATION_KEY",
    "DEFAULT_WINDOW_MS",
    "DERIVED_SEPARATOR",
    "HISTOGRAM_AGGREGATIONS",
    "MAX_HORIZON_MS",
    "MAX_WINDOW_MS",
    "MIN_HORIZON_MS",
    "MIN_WINDOW_MS",
    "MODEL_KEY",
    "NAMESPACE_LABEL",
    "NODE_LABEL",
    "OPTION_KEYS",
    "POD_LABEL",
    "PREDICT_KEY",
    "RESERVED_PREFIX",
    "WINDOW_KEY",
    "DerivedNameError",
    "ForecastModel",
    "MetricKind",
    "ObjectValue",
    "ParsedMetric",
    "Prediction",
    "SeriesRequest",
    "Statistic",
    "StatisticError",
    "format_derived_name",
    "is_metric_name",
    "natural_aggregation",
    "parse_metric_request",
    "parse_metric_selector",
    "parse_statistic",
    "resolve_aggregation",
    "split_derived_name",
]

RESERVED_PREFIX = "kubepulse.io/"
"""Selector keys starting with this are options, not label filters."""
WINDOW_KEY = "kubepulse.io/window"
"""How far back the statistic looks."""
AGGREGATION_KEY = "kubepulse.io/aggregation"
"""Which statistic: ``avg min max sum last rate pNN``."""
PREDICT_KEY = "kubepulse.io/predict"
"""Serve the value forecast this far ahead instead of the current one."""
MODEL_KEY = "kubepulse.io/model"
"""The forecast model: ``linear`` or ``holt``."""
OPTION_KEYS = (WINDOW_KEY, AGGREGATION_KEY, PREDICT_KEY, MODEL_KEY)
"""Every reserved key there is."""

DEFAULT_WINDOW_MS = 60_000
"""The window when none is given: one minute."""
MIN_WINDOW_MS = 30_000
"""The shortest window: 30 seconds, two scrapes at the default 15 s resolution."""
MAX_WINDOW_MS = 86_400_000
"""The longest window: 24 hours, the embedded store's retention."""
MIN_HORIZON_MS = 1_000
"""The shortest forecast horizon: one second."""
MAX_HORIZON_MS = 3_600_000
"""The longest forecast horizon: one hour. Further out a trend is a guess, not a forecast."""

DERIVED_SEPARATOR = "-"
"""Separates a derived name's base from its statistic, and the statistic's parts."""
_PREDICT_WORD = "predict"

POD_LABEL = "pod"
"""The series label naming a pod (with ``namespace``), as cAdvisor and kube-state-metrics."""
NODE_LABEL = "node"
"""The series label naming a node."""
NAMESPACE_LABEL = "namespace"
"""The series label naming a namespace."""

# Prometheus' metric name syntax.
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

_WINDOW_RANGE = f"from {format_duration(MIN_WINDOW_MS)} to {format_duration(MAX_WINDOW_MS)}"
_HORIZON_RANGE = f"from {format_duration(MIN_HORIZON_MS)} to {format_duration(MAX_HORIZON_MS)}"
_DERIVED_HINT = (
    "a derived metric name is '<metric>-<statistic>', the statistic being "
    "[aggregation-]window[-predict-horizon[-model]], e.g. "
    "'http_request_duration_seconds-p95-5m' or 'queue_depth-avg-1m-predict-2m-holt'; "
    "aggregations are avg, min, max, sum, last, rate and pNN, windows "
    f"{_WINDOW_RANGE}, horizons {_HORIZON_RANGE}, models linear and holt"
)


class StatisticError(KubepulseValueError):
    """A statistic option (reserved selector key or derived name part) is invalid."""


class DerivedNameError(StatisticError):
    """A metric name has a derived-name suffix that does not follow the grammar."""


_Fail = Callable[[str], DerivedNameError]
"""Builds the error for a derived name, given what is wrong with it."""


class ForecastModel(enum.Enum):
    """How a forecast extrapolates (see :mod:`kubepulse.stats.forecast`)."""

    LINEAR = "linear"
    """A least-squares line through the window: steady trends."""
    HOLT = "holt"
    """Holt's linear exponential smoothing: follows a trend that changes, recent first."""


class MetricKind(enum.Enum):
    """What a metric's series are, which decides its natural aggregation."""

    GAUGE = "gauge"
    """A level that goes up and down (queue depth, memory)."""
    COUNTER = "counter"
    """A running total (requests, CPU seconds): read as per-second rates."""
    HISTOGRAM = "histogram"
    """Prometheus buckets ``<name>_bucket{le=...}`` with ``_sum`` and ``_count``."""


HISTOGRAM_AGGREGATIONS = (
    AggregationKind.PERCENTILE,
    AggregationKind.AVG,
    AggregationKind.RATE,
    AggregationKind.SUM,
)
"""What a histogram can answer from bucket, ``_sum`` and ``_count`` increases."""

_NATURAL = {
    MetricKind.GAUGE: Aggregation(AggregationKind.AVG),
    MetricKind.COUNTER: Aggregation(AggregationKind.RATE),
    MetricKind.HISTOGRAM: Aggregation(AggregationKind.PERCENTILE, 95.0),
}


def natural_aggregation(kind: MetricKind) -> Aggregation:
    """The statistic served when none is asked for: counter ``rate``, gauge ``avg``,
    histogram ``p95`` (the latency percentile HPAs are usually given)."""
    return _NATURAL[kind]


@dataclass(frozen=True)
class Prediction:
    """Serve the forecast ``horizon_ms`` ahead of now, by ``model``.

    Raises:
        StatisticError: the horizon is outside 1 s to 1 h.
    """

    horizon_ms: int
    """How far ahead, in milliseconds, 1 s to 1 h."""
    model: ForecastModel = ForecastModel.LINEAR
    """How to extrapolate; linear unless asked otherwise."""

    def __post_init__(self) -> None:
        if not MIN_HORIZON_MS <= self.horizon_ms <= MAX_HORIZON_MS:
            raise StatisticError(
                f"a forecast horizon of {self.horizon_ms} ms is out of range; give one "
                f"{_HORIZON_RANGE}"
            )


@dataclass(frozen=True)
class Statistic:
    """Which number to serve from a metric's recent past.

    Raises:
        StatisticError: the window is outside 30 s to 24 h.
    """

    window_ms: int = DEFAULT_WINDOW_MS
    """How far back from now the statistic looks, in milliseconds, 30 s to 24 h."""
    aggregation: Aggregation | None = None
    """What to compute over the window; ``None`` is the metric's natural aggregation."""
    prediction: Prediction | None = None
    """When set, the value forecast ahead instead of the value now."""

    def __post_init__(self) -> None:
        if not MIN_WINDOW_MS <= self.window_ms <= MAX_WINDOW_MS:
            raise StatisticError(
                f"a window of {self.window_ms} ms is out of range; give one {_WINDOW_RANGE}"
            )

    @property
    def window_seconds(self) -> int:
        """The window in whole seconds, as the custom metrics API reports it."""
        return self.window_ms // 1000

    def options(self) -> dict[str, str]:
        """The reserved selector keys that ask for this statistic (defaults left out).

        ``parse_statistic(statistic.options()) == statistic``.
        """
        options: dict[str, str] = {}
        if self.window_ms != DEFAULT_WINDOW_MS:
            options[WINDOW_KEY] = format_duration(self.window_ms)
        if self.aggregation is not None:
            options[AGGREGATION_KEY] = self.aggregation.name
        if self.prediction is not None:
            options[PREDICT_KEY] = format_duration(self.prediction.horizon_ms)
            options[MODEL_KEY] = self.prediction.model.value
        return options

    def describe(self) -> str:
        """In words, for messages: ``p95 over 5m, forecast 2m ahead (holt)``."""
        what = self.aggregation.name if self.aggregation is not None else "natural statistic"
        text = f"{what} over {format_duration(self.window_ms)}"
        if self.prediction is not None:
            text += (
                f", forecast {format_duration(self.prediction.horizon_ms)} ahead "
                f"({self.prediction.model.value})"
            )
        return text


def resolve_aggregation(statistic: Statistic, kind: MetricKind, metric: str) -> Aggregation:
    """The aggregation to compute for a metric of ``kind``: the one asked, or the natural one.

    Raises:
        StatisticError: a histogram is asked for ``min``, ``max`` or ``last``, which its
            buckets cannot answer; the message lists what it can.
    """
    aggregation = statistic.aggregation
    if aggregation is None:
        return natural_aggregation(kind)
    if kind is MetricKind.HISTOGRAM and aggregation.kind not in HISTOGRAM_AGGREGATIONS:
        raise StatisticError(
            f"{metric} is a histogram, whose buckets cannot give its {aggregation.name}; "
            "ask for a percentile (pNN), avg (mean observation), rate (observations per "
            "second) or sum (increase of the observed total)"
        )
    return aggregation


def parse_statistic(options: Mapping[str, str], *, defaults: Statistic | None = None) -> Statistic:
    """Read the reserved ``kubepulse.io/*`` options into a :class:`Statistic`.

    Keys not given keep their value in ``defaults`` (the default statistic: 1 m window,
    natural aggregation, no forecast). ``kubepulse.io/model`` needs
    ``kubepulse.io/predict`` (here or in ``defaults``).

    Raises:
        StatisticError: an unknown ``kubepulse.io/`` key (the message lists the valid
            ones), a value that is not valid for its key (the message says what is).
    """
    base = defaults if defaults is not None else Statistic()
    unknown = sorted(key for key in options if key not in OPTION_KEYS)
    if unknown:
        raise StatisticError(
            f"unknown option {', '.join(repr(key) for key in unknown)}; the "
            f"{RESERVED_PREFIX} keys are {', '.join(OPTION_KEYS)}"
        )
    window_ms = base.window_ms
    if WINDOW_KEY in options:
        window_ms = _duration_option(WINDOW_KEY, options[WINDOW_KEY], MIN_WINDOW_MS, MAX_WINDOW_MS)
    aggregation = base.aggregation
    if AGGREGATION_KEY in options:
        aggregation = _aggregation_option(options[AGGREGATION_KEY], AGGREGATION_KEY)
    prediction = base.prediction
    if PREDICT_KEY in options:
        horizon_ms = _duration_option(
            PREDICT_KEY, options[PREDICT_KEY], MIN_HORIZON_MS, MAX_HORIZON_MS
        )
        model = prediction.model if prediction is not None else ForecastModel.LINEAR
        prediction = Prediction(horizon_ms, model)
    if MODEL_KEY in options:
        if prediction is None:
            raise StatisticError(
                f"{MODEL_KEY} chooses the model of a forecast, but no forecast is asked "
                f"for; add {PREDICT_KEY}=<horizon> (e.g. 2m) or drop {MODEL_KEY}"
            )
        prediction = Prediction(prediction.horizon_ms, _model_option(options[MODEL_KEY]))
    return Statistic(window_ms, aggregation, prediction)


def _duration_option(key: str, text: str, minimum_ms: int, maximum_ms: int) -> int:
    try:
        return parse_window(text, minimum_ms, maximum_ms)
    except DurationError as error:
        raise StatisticError(f"{key}: {error}") from error


def _aggregation_option(text: str, where: str) -> Aggregation:
    try:
        return parse_aggregation(text)
    except KubepulseValueError as error:
        raise StatisticError(f"{where}: {error}") from error


def _model_option(text: str) -> ForecastModel:
    for model in ForecastModel:
        if text.strip().lower() == model.value:
            return model
    choices = " or ".join(model.value for model in ForecastModel)
    raise StatisticError(f"{MODEL_KEY}: unknown forecast model {text!r}; use {choices}")


def parse_metric_selector(
    text: str, *, defaults: Statistic | None = None
) -> tuple[LabelSelector, Statistic]:
    """Split a ``metricLabelSelector`` into the series filter and the statistic asked for.

    ``parse_metric_selector("code=200,kubepulse.io/window=5m")`` filters series on
    ``code=200`` and asks for the natural statistic over five minutes.

    Raises:
        SelectorError: the selector is malformed, or a reserved key is used as a filter.
        StatisticError: a reserved key is unknown or has an invalid value.
    """
    series_selector, options = parse_selector(text).split_reserved(RESERVED_PREFIX)
    return series_selector, parse_statistic(options, defaults=defaults)


def is_metric_name(name: str) -> bool:
    """Whether ``name`` is a valid Prometheus metric name."""
    return _METRIC_NAME.fullmatch(name) is not None


def split_derived_name(name: str) -> tuple[str, Statistic | None]:
    """Split a derived metric name into its base and statistic; ``(name, None)`` if not derived.

    ``split_derived_name("latency_seconds-p95-5m")`` is ``("latency_seconds",
    Statistic(300_000, p95))``; ``split_derived_name("latency_seconds")`` is
    ``("latency_seconds", None)``. Parts left out of the suffix take their defaults
    (window 1 m, natural aggregation, linear model).

    Raises:
        DerivedNameError: the name has a ``-`` but what follows it is not a statistic;
            the message shows the grammar.
    """
    base, separator, suffix = name.partition(DERIVED_SEPARATOR)
    if not separator:
        return name, None
    if not base:
        raise DerivedNameError(f"{name!r} has no metric name before '-'; {_DERIVED_HINT}")
    return base, _parse_derived_suffix(name, suffix.split(DERIVED_SEPARATOR))


def _parse_derived_suffix(name: str, parts: list[str]) -> Statistic:
    position = 0

    def fail(problem: str) -> DerivedNameError:
        return DerivedNameError(f"metric name {name!r}: {problem}; {_DERIVED_HINT}")

    def current() -> str | None:
        return parts[position] if position < len(parts) else None

    if "" in parts:
        raise fail("an empty part between '-' separators")
    aggregation: Aggregation | None = None
    window_ms = DEFAULT_WINDOW_MS
    prediction: Prediction | None = None
    part = current()
    if part is not None and part[0].isalpha() and part != _PREDICT_WORD:
        aggregation = _derived_aggregation(part, fail)
        position += 1
    part = current()
    if part is not None and part[0].isdigit():
        window_ms = _derived_duration(part, "window", MIN_WINDOW_MS, MAX_WINDOW_MS, fail)
        position += 1
    part = current()
    if part == _PREDICT_WORD:
        position += 1
        horizon = current()
        if horizon is None:
            raise fail("'predict' must be followed by a horizon such as 2m")
        horizon_ms = _derived_duration(horizon, "horizon", MIN_HORIZON_MS, MAX_HORIZON_MS, fail)
        position += 1
        model = ForecastModel.LINEAR
        model_text = current()
        if model_text is not None:
            try:
                model = ForecastModel(model_text)
            except ValueError:
                raise fail(f"unknown forecast model {model_text!r}") from None
            position += 1
        prediction = Prediction(horizon_ms, model)
    if position == 0:
        raise fail(f"{parts[0]!r} is not an aggregation, a window or 'predict'")
    if position < len(parts):
        raise fail(f"unexpected {parts[position]!r}")
    return Statistic(window_ms, aggregation, prediction)


def _derived_aggregation(part: str, fail: _Fail) -> Aggregation:
    # Derived names are canonical: lower case only, so that one statistic has one name.
    if part != part.lower():
        raise fail(f"{part!r} must be lower case")
    try:
        return parse_aggregation(part)
    except KubepulseValueError:
        raise fail(f"{part!r} is not an aggregation") from None


def _derived_duration(part: str, what: str, minimum_ms: int, maximum_ms: int, fail: _Fail) -> int:
    try:
        return parse_window(part, minimum_ms, maximum_ms)
    except DurationError as error:
        raise fail(f"the {what} {part!r}: {error.problem}") from None


def format_derived_name(base: str, statistic: Statistic) -> str:
    """The canonical derived name of ``statistic`` of ``base``; the inverse of
    :func:`split_derived_name`.

    The window is always written, the aggregation when one is chosen, a forecast with
    its model: ``format_derived_name("x", Statistic(300_000, p95))`` is ``"x-p95-5m"``.

    Raises:
        DerivedNameError: ``base`` contains ``-`` or is empty, so the name would not
            read back.
    """
    if not base or DERIVED_SEPARATOR in base:
        raise DerivedNameError(
            f"cannot derive a name from {base!r}: a base name must be non-empty and without '-'"
        )
    parts = [base]
    if statistic.aggregation is not None:
        parts.append(statistic.aggregation.name)
    parts.append(format_duration(statistic.window_ms))
    if statistic.prediction is not None:
        parts += [
            _PREDICT_WORD,
            format_duration(statistic.prediction.horizon_ms),
            statistic.prediction.model.value,
        ]
    return DERIVED_SEPARATOR.join(parts)


@dataclass(frozen=True)
class ParsedMetric:
    """A requested metric name and metric selector, understood."""

    name: str
    """The base metric name (a derived suffix removed)."""
    series_selector: LabelSelector
    """The metric selector without the reserved keys: what series labels must match."""
    statistic: Statistic
    """The statistic asked for, by derived name, reserved keys or the defaults."""


def parse_metric_request(
    metric_name: str, metric_selector: str = "", *, defaults: Statistic | None = None
) -> ParsedMetric:
    """Read a requested metric name and its ``metricLabelSelector`` together.

    The statistic comes from the derived name, or from the reserved selector keys, or
    from ``defaults``; giving it both ways is an error, because one would silently lose.

    Raises:
        DerivedNameError: the name's derived suffix is malformed.
        SelectorError: the selector is malformed.
        StatisticError: reserved keys are invalid, or given with a derived name.
    """
    base, derived = split_derived_name(metric_name)
    series_selector, options = parse_selector(metric_selector).split_reserved(RESERVED_PREFIX)
    if derived is not None and options:
        raise StatisticError(
            f"the metric name {metric_name!r} already chooses the statistic "
            f"({derived.describe()}); drop {', '.join(sorted(options))} from the selector "
            f"or ask for {base!r} instead"
        )
    statistic = derived if derived is not None else parse_statistic(options, defaults=defaults)
    return ParsedMetric(base, series_selector, statistic)


# ---------------------------------------------------------------------- source requests


@dataclass(frozen=True)
class SeriesRequest:
    """What the API asks a metric source: one statistic of one metric, per object.

    The series considered are those of ``metric`` whose labels match ``series_selector``,
    restricted to ``namespace`` (the ``namespace`` label) when given. They are grouped
    into objects by ``object_label``:

    - ``object_label`` set (``"pod"``, ``"node"``, ``"namespace"``): one object per value
      of that label, only the values in ``object_names`` when given; series without the
      label are ignored;
    - ``merge_objects``: the kept objects form *one* object (a Deployment over its pods),
      reported with the name ``""``;
    - ``object_label`` ``None``: every selected series forms one object named ``""`` (an
      external metric).

    Within an object, series are combined as Prometheus' ``sum by (object)`` combines
    them: the statistic of each series over the window, summed (a pod's containers, a
    metric's label variants). Histograms are the exception: bucket increases are summed
    per ``le`` first and the percentile is taken once, as ``histogram_quantile(q, sum by
    (object, le) (rate(..._bucket[w])))``.

    Raises:
        KubepulseValueError: ``object_names`` or ``merge_objects`` without
            ``object_label``, or an invalid metric name.
    """

    metric: str
    """The base metric name (a histogram's name without ``_bucket``)."""
    statistic: Statistic
    """What to compute over which window, and whether to forecast."""
    namespace: str | None = None
    """Only series with this ``namespace`` label; ``None`` for any."""
    series_selector: LabelSelector = field(default_factory=LabelSelector)
    """What the series' labels must match (the metric selector without reserved keys)."""
    object_label: str | None = None
    """The label naming the object a series belongs to; ``None``: all one object."""
    object_names: frozenset[str] | None = None
    """Keep only these objects; ``None`` keeps every object found."""
    merge_objects: bool = False
    """Combine the kept objects into one, named ``""``."""

    def __post_init__(self) -> None:
        if not is_metric_name(self.metric):
            raise KubepulseValueError(
                f"{self.metric!r} is not a metric name; metric names match [a-zA-Z_:][a-zA-Z0-9_:]*"
            )
        if self.object_label is None and (self.object_names is not None or self.merge_objects):
            raise KubepulseValueError(
                "object_names and merge_objects need object_label, the label that names the objects"
            )
        if self.object_names is not None:
            object.__setattr__(self, "object_names", frozenset(self.object_names))

    def object_of(self, labels: Mapping[str, str]) -> str | None:
        """The object a series with ``labels`` belongs to, or ``None`` when it is not kept.

        Does not check the namespace or the series selector.
        """
        if self.object_label is None:
            return ""
        name = labels.get(self.object_label)
        if name is None or (self.object_names is not None and name not in self.object_names):
            return None
        return "" if self.merge_objects else name


@dataclass(frozen=True)
class ObjectValue:
    """One object's value, as a source answers it.

    Raises:
        KubepulseValueError: the value is not finite.
    """

    name: str
    """The object (pod or node name, label value), ``""`` for a merged or single object."""
    timestamp_ms: int
    """When the value was measured: the newest sample used, epoch milliseconds."""
    value: float
    """The statistic (or its forecast), in the metric's unit (rates per second)."""
    window_ms: int
    """The window the statistic covers."""

    def __post_init__(self) -> None:
        if not math.isfinite(self.value):
            raise KubepulseValueError(
                f"the value of {self.name!r} is {self.value!r}; a source leaves out objects "
                "without a finite value instead"
            )

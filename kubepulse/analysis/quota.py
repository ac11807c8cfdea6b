"""Quota analysis and the namespace report: who will run out, when, and what is idle.

Two entry points, both pure functions of a
:class:`~kubepulse.analysis.inputs.ClusterSnapshot` and a
:class:`~kubepulse.analysis.inputs.UsageHistory`:

- :func:`analyze_quotas`: every ResourceQuota resource (``requests.cpu`` of quota
  ``compute`` in ``shop``...) with its used/hard figures, its trend over the history
  (``UsageHistory.quota_used``), a forecast of the days until ``used`` reaches ``hard``
  with a confidence interval, alerts for quotas near their limit, and allocations that
  sit unused.
- :func:`namespace_report`: one namespace's pods, requests, limits, measured usage,
  quota and top consumers, as ``kubectl pulse report`` and
  ``K8sResourceMonitor.get_namespace_resources`` show it.

Why a line and not Holt: quota usage moves in steps (a Deployment scaled, a namespace
onboarded) and a least-squares line over the window is the simplest model whose
prediction interval can be inverted in closed form into "between N and M days". The
fit itself is :func:`kubepulse.stats.forecast_linear`; this module only adds the
inversion (where the prediction band meets ``hard``). ``docs/analysis/quota.md`` explains
every figure and its limits.

Missing data stays missing: a quota resource without history has no trend and a
``NO_HISTORY`` forecast; a quota the controller has not counted yet has ``used=None``;
a running container without a usage series is counted as unmeasured, never as idle.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Final, Literal

from kubepulse.analysis.inputs import (
    ClusterSnapshot,
    QuotaRef,
    TimeSeries,
    UsageHistory,
)
from kubepulse.duration import parse_duration
from kubepulse.errors import KubepulseValueError
from kubepulse.model import CPU, MEMORY, Pod, ResourceList, ResourceQuota
from kubepulse.stats import forecast_linear

__all__ = [
    "AlertReason",
    "AlertSeverity",
    "ConsumerBasis",
    "ExhaustionForecast",
    "ForecastStatus",
    "NamespaceReport",
    "NamespaceResourceTotals",
    "PodResources",
    "QuotaAlert",
    "QuotaReport",
    "QuotaResourceAnalysis",
    "QuotaSettings",
    "QuotaStatus",
    "QuotaTrend",
    "TopConsumer",
    "TrendDirection",
    "UnusedQuota",
    "analyze_quotas",
    "namespace_report",
]

_MS_PER_DAY: Final = 86_400_000
_SECONDS_PER_DAY: Final = 86_400.0
_MINIMUM_FORECAST_SAMPLES: Final = 3
# How many known namespaces an "unknown namespace" error lists.
_NAMESPACES_LISTED: Final = 10
# In a ResourceQuota `cpu` and `requests.cpu` name the same entry; history may be keyed
# by either spelling.
_QUOTA_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "cpu": "requests.cpu",
        "requests.cpu": "cpu",
        "memory": "requests.memory",
        "requests.memory": "memory",
        "ephemeral-storage": "requests.ephemeral-storage",
        "requests.ephemeral-storage": "ephemeral-storage",
    }
)


# ---------------------------------------------------------------------------- enums


class QuotaStatus(enum.Enum):
    """Where one quota resource stands now, from ``used / hard`` in the snapshot."""

    OK = "ok"
    """Below the warning threshold."""
    WARNING = "warning"
    """At or above ``warning_percent`` of hard."""
    CRITICAL = "critical"
    """At or above ``critical_percent`` of hard."""
    EXHAUSTED = "exhausted"
    """``used >= hard``: admission refuses anything that needs more of the resource."""
    DISALLOWED = "disallowed"
    """``hard`` is zero: the quota forbids the resource on purpose; nothing to forecast."""
    UNCOUNTED = "uncounted"
    """The quota controller has not reported ``status.used`` for the resource yet."""


class TrendDirection(enum.Enum):
    """Which way usage went over the window, judged by the slope's confidence interval."""

    RISING = "rising"
    """The whole confidence interval of the slope is above zero."""
    FALLING = "falling"
    """The whole confidence interval of the slope is below zero."""
    FLAT = "flat"
    """The interval contains zero: no trend the data can tell from noise."""
    UNKNOWN = "unknown"
    """Too few samples to fit a line."""


class ForecastStatus(enum.Enum):
    """What the exhaustion forecast could say."""

    EXHAUSTED = "exhausted"
    """Already at or over hard: zero days."""
    PROJECTED = "projected"
    """Usage rises: the fitted line reaches hard after ``days_until`` days."""
    NOT_RISING = "not_rising"
    """The fitted line is flat or falling, so it never reaches hard (the pessimistic
    end of the interval, ``earliest_days``, may still be finite)."""
    INSUFFICIENT_DATA = "insufficient_data"
    """Fewer samples in the window than the forecast needs."""
    NO_HISTORY = "no_history"
    """No usage history for this quota resource: unmeasured, not idle."""
    NOT_APPLICABLE = "not_applicable"
    """``hard`` is zero (the resource is forbidden); there is nothing to run out of."""


class AlertSeverity(enum.Enum):
    """How urgent a quota alert is."""

    WARNING = "warning"
    CRITICAL = "critical"


class AlertReason(enum.Enum):
    """Why a quota resource raised an alert; one alert may carry several reasons."""

    NEAR_LIMIT = "near_limit"
    """Usage is at or above the warning (or critical) threshold percentage."""
    EXHAUSTED = "exhausted"
    """Usage has reached hard: new objects needing the resource are refused now."""
    FORECAST = "forecast"
    """The forecast reaches hard within ``forecast_alert_days``."""


class ConsumerBasis(enum.Enum):
    """What a top-consumer ranking is ordered by."""

    USAGE = "usage"
    """Measured usage: the latest CPU cores or working-set bytes of the pod's containers."""
    REQUESTS = "requests"
    """The pod's effective requests, as the scheduler and the quota count them."""


# ---------------------------------------------------------------------------- quota results


@dataclass(frozen=True)
class QuotaSettings:
    """The parameters an :func:`analyze_quotas` run used, echoed in its result."""

    warning_percent: float
    """Usage at or above this percentage of hard is a warning."""
    critical_percent: float
    """Usage at or above this percentage of hard is critical."""
    unused_percent: float
    """A quota resource whose peak usage stayed at or below this percentage of hard is
    reported as unused."""
    forecast_alert_days: float
    """A forecast reaching hard within this many days raises an alert."""
    confidence: float
    """Coverage of the forecast's prediction interval, e.g. 0.95."""
    window_ms: int | None
    """How much history the trend and forecast used (the newest part); None = all."""
    min_samples: int
    """The fewest samples a trend or forecast is fitted on."""


@dataclass(frozen=True)
class QuotaTrend:
    """How one quota resource's ``used`` moved over the window (from history).

    The slope is the least-squares slope per day; its interval is the usual Student-t
    confidence interval ``slope ± t · s / sqrt(Sxx)`` at the run's confidence.
    """

    sample_count: int
    """Samples in the window."""
    first_ms: int
    """Time of the oldest sample used."""
    last_ms: int
    """Time of the newest sample used."""
    first_value: float
    """``used`` at the oldest sample, in the resource's base unit (cores, bytes, count)."""
    last_value: float
    """``used`` at the newest sample."""
    min_value: float
    """Lowest ``used`` seen in the window."""
    max_value: float
    """Highest ``used`` seen in the window."""
    slope_per_day: float | None
    """Fitted change of ``used`` per day; None with fewer than ``min_samples`` samples."""
    slope_lower_per_day: float | None
    """Lower end of the slope's confidence interval."""
    slope_upper_per_day: float | None
    """Upper end of the slope's confidence interval."""
    direction: TrendDirection
    """Rising, falling or flat, judged by whether the slope's interval excludes zero."""


@dataclass(frozen=True)
class ExhaustionForecast:
    """When ``used`` is expected to reach ``hard``, with a confidence interval.

    Days are counted from ``as_of_ms`` (the snapshot's time, or the newest sample if that
    is later). The interval inverts the fitted line's prediction band: ``earliest_days``
    is when the band's upper edge reaches hard (the pessimistic case), ``latest_days``
    when its lower edge does (the optimistic case). ``latest_days`` is None when the
    lower edge never reaches hard: the data cannot rule out that usage never runs out.
    """

    status: ForecastStatus
    """What the forecast could say; the figures below are None when it could not."""
    as_of_ms: int | None
    """The instant days are counted from."""
    days_until: float | None
    """Point estimate: days until the fitted line reaches hard (0 when already there)."""
    earliest_days: float | None
    """Pessimistic end of the interval."""
    latest_days: float | None
    """Optimistic end of the interval; None = not bounded (may never run out)."""
    exhaustion_ms: int | None
    """The instant of the point estimate."""
    confidence: float
    """Coverage of the prediction band the interval comes from."""
    sample_count: int
    """Samples the line was fitted on."""
    residual_stddev: float | None
    """Standard deviation of the fit's residuals, in the resource's unit."""


@dataclass(frozen=True)
class QuotaResourceAnalysis:
    """One resource of one ResourceQuota: now, trend and forecast."""

    ref: QuotaRef
    """Namespace, quota name and resource (as the quota spells it)."""
    scopes: tuple[str, ...]
    """The quota's scopes: a scoped quota counts only the matching pods."""
    hard: Decimal
    """The enforced limit (``status.hard``), in the resource's base unit."""
    used: Decimal | None
    """``status.used`` in the snapshot; None when the controller has not counted yet."""
    remaining: Decimal | None
    """``hard - used`` (negative when over quota)."""
    utilisation_percent: float | None
    """``100 · used / hard``; None when used is unknown or hard is zero."""
    status: QuotaStatus
    """OK / warning / critical / exhausted, or why there is no percentage."""
    trend: QuotaTrend | None
    """How usage moved over the window; None when there is no history."""
    forecast: ExhaustionForecast
    """When usage reaches hard."""


@dataclass(frozen=True)
class QuotaAlert:
    """A quota resource that needs attention."""

    ref: QuotaRef
    """The quota resource."""
    severity: AlertSeverity
    """Critical when exhausted, at or above the critical threshold, or when even the
    optimistic end of the forecast falls within ``forecast_alert_days``."""
    reasons: tuple[AlertReason, ...]
    """Every reason that applies."""
    utilisation_percent: float | None
    """Usage as a percentage of hard, when known."""
    days_until: float | None
    """The forecast's point estimate, when there is one."""
    message: str
    """One line for a human, saying what is wrong and what to do."""


@dataclass(frozen=True)
class UnusedQuota:
    """A quota allocation whose usage stayed far below its hard limit."""

    ref: QuotaRef
    """The quota resource."""
    hard: Decimal
    """The allocation."""
    peak_used: float
    """The highest ``used`` seen: the history's maximum in the window and the snapshot's."""
    peak_percent: float
    """``100 · peak_used / hard``."""
    reclaimable: float
    """``hard - peak_used``: what could be lowered without refusing anything seen."""
    from_history: bool
    """True when the peak includes history; False when only the snapshot was known."""


@dataclass(frozen=True)
class QuotaReport:
    """Every quota resource analysed in one run, with its alerts and idle allocations."""

    taken_at_ms: int
    """The snapshot's instant."""
    namespace: str | None
    """The namespace analysed; None for the whole cluster."""
    settings: QuotaSettings
    """The parameters used."""
    resources: tuple[QuotaResourceAnalysis, ...]
    """One entry per quota resource, by namespace, quota, resource."""
    alerts: tuple[QuotaAlert, ...]
    """The resources needing attention, most urgent first."""
    unused: tuple[UnusedQuota, ...]
    """Idle allocations, largest reclaimable share first."""
    missing_history: tuple[QuotaRef, ...]
    """Quota resources with no usage history at all (unmeasured, not idle)."""
    uncounted: tuple[QuotaRef, ...]
    """Quota resources whose ``status.used`` the controller has not reported."""
    namespaces_without_quota: tuple[str, ...]
    """Known namespaces with no ResourceQuota (only listed for a cluster-wide run)."""


# ---------------------------------------------------------------------------- report results


@dataclass(frozen=True)
class PodResources:
    """One pod of a namespace report: what it asks for and what it was measured using."""

    name: str
    """``metadata.name``."""
    phase: str | None
    """``status.phase``."""
    node: str | None
    """The node the pod is bound to, if any."""
    qos_class: str
    """Guaranteed, Burstable or BestEffort."""
    requests: ResourceList
    """Effective requests (what the scheduler and the quota count)."""
    limits: ResourceList
    """Effective limits (a resource missing here is unlimited for some container)."""
    cpu_cores: float | None
    """Latest CPU usage summed over the measured containers; None if none was measured."""
    cpu_cores_average: float | None
    """Mean CPU usage over the window, summed over the measured containers."""
    memory_working_set_bytes: float | None
    """Latest working set summed over the measured containers; None if none was measured."""
    memory_working_set_bytes_average: float | None
    """Mean working set over the window, summed over the measured containers."""
    unmeasured_containers: tuple[str, ...]
    """Containers that should be running (the pod is Running) but have no CPU or no
    memory series: the pod's usage above leaves them out."""
    containers_missing_limits: tuple[str, ...]
    """Containers without a CPU or memory limit."""
    containers_missing_requests: tuple[str, ...]
    """Containers without a CPU or memory request."""
    restarts: int
    """Restarts of all its containers."""


@dataclass(frozen=True)
class NamespaceResourceTotals:
    """One resource (``cpu``, ``memory``, ``nvidia.com/gpu``...) summed over a namespace.

    Requests and limits count the active pods (not Succeeded or Failed). Usage counts
    the Running pods' containers that have a series; ``measured_containers`` and
    ``unmeasured_containers`` say how complete it is. Usage is only collected for CPU
    and memory; for other resources it is None.
    """

    resource: str
    """The resource name."""
    requests: Decimal
    """Sum of the active pods' effective requests."""
    limits: Decimal
    """Sum of the active pods' effective limits (pods without a limit add nothing)."""
    pods_without_request: int | None
    """Active pods with a container lacking a request (CPU and memory only)."""
    pods_without_limit: int | None
    """Active pods with a container lacking a limit (CPU and memory only): their real
    ceiling is unbounded, so ``limits`` understates it."""
    usage: float | None
    """Latest usage summed over the measured containers; None when nothing was measured."""
    usage_average: float | None
    """Mean usage over the window summed over the measured containers."""
    measured_containers: int
    """Running containers with a usage series for this resource."""
    unmeasured_containers: int
    """Running containers without one."""
    usage_to_requests: float | None
    """Latest usage over requests, counting only pods whose every running container was
    measured and that request the resource; None when there are none."""


@dataclass(frozen=True)
class TopConsumer:
    """A pod among the largest consumers of a resource in its namespace."""

    resource: str
    """``cpu`` or ``memory``."""
    basis: ConsumerBasis
    """Ranked by measured usage or by requests."""
    rank: int
    """1 for the largest."""
    pod: str
    """The pod's name."""
    amount: float
    """Cores or bytes."""
    share: float | None
    """Fraction of the namespace's total on the same basis; None when that total is 0."""


@dataclass(frozen=True)
class NamespaceReport:
    """One namespace: pods, requests, limits, measured usage, quota and top consumers."""

    namespace: str
    """The namespace."""
    taken_at_ms: int
    """The snapshot's instant."""
    phase: str | None
    """The Namespace object's phase (``Active``, ``Terminating``); None when the snapshot
    knows the namespace only through its pods or quotas."""
    pod_count: int
    """Every pod, finished ones included."""
    active_pod_count: int
    """Pods holding resources (not Succeeded or Failed)."""
    pods_by_phase: Mapping[str, int]
    """Pod count per phase (``Unknown`` when the phase is not reported)."""
    pods_by_qos: Mapping[str, int]
    """Active pod count per QoS class."""
    resources: tuple[NamespaceResourceTotals, ...]
    """CPU and memory first, then every other resource requested or limited, by name."""
    top_consumers: tuple[TopConsumer, ...]
    """The largest pods by CPU and memory, by usage then by requests."""
    pods: tuple[PodResources, ...] | None
    """Every pod, by name; None unless ``include_pods``."""
    quota: QuotaReport | None
    """The namespace's quota analysis; None unless ``include_quota``."""
    missing_data: tuple[str, ...]
    """What could not be measured, in words (empty when everything was)."""


# ---------------------------------------------------------------------------- validation


def _check_percent(name: str, value: float, low: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise KubepulseValueError(f"{name} must be a number between {low:g} and 100, got {value!r}")
    if not low <= value <= 100:
        raise KubepulseValueError(f"{name} must be between {low:g} and 100, got {value:g}")
    return float(value)


def _check_settings(
    *,
    warning_percent: float,
    critical_percent: float,
    unused_percent: float,
    forecast_alert_days: float,
    confidence: float,
    window: str | None,
    min_samples: int,
) -> QuotaSettings:
    warning = _check_percent("warning_percent", warning_percent, 1)
    critical = _check_percent("critical_percent", critical_percent, 1)
    if critical < warning:
        raise KubepulseValueError(
            f"critical_percent ({critical:g}) must be at least warning_percent ({warning:g}); "
            "raise critical_percent or lower warning_percent"
        )
    unused = _check_percent("unused_percent", unused_percent, 0)
    if (
        isinstance(forecast_alert_days, bool)
        or not isinstance(forecast_alert_days, (int, float))
        or not math.isfinite(forecast_alert_days)
        or forecast_alert_days < 0
    ):
        raise KubepulseValueError(
            f"forecast_alert_days must be a finite number of days, 0 or more, got "
            f"{forecast_alert_days!r}; use 0 to turn forecast alerts off"
        )
    if isinstance(confidence, bool) or not isinstance(confidence, float | int):
        raise KubepulseValueError(f"confidence must be a number such as 0.95, got {confidence!r}")
    if not 0.0 < confidence < 1.0:
        raise KubepulseValueError(
            f"confidence must be strictly between 0 and 1, got {confidence!r}; use 0.95 "
            "for a 95% interval"
        )
    if isinstance(min_samples, bool) or not isinstance(min_samples, int):
        raise KubepulseValueError(f"min_samples must be an integer, got {min_samples!r}")
    if min_samples < _MINIMUM_FORECAST_SAMPLES:
        raise KubepulseValueError(
            f"min_samples must be at least {_MINIMUM_FORECAST_SAMPLES} (a line through two "
            f"samples leaves no error to build an interval from), got {min_samples}"
        )
    window_ms = None
    if window is not None:
        window_ms = parse_duration(window)
        if window_ms <= 0:
            raise KubepulseValueError(
                f"window must be longer than zero, got {window!r}; give a duration such as "
                "'7d', or None to use the whole history"
            )
    return QuotaSettings(
        warning_percent=warning,
        critical_percent=critical,
        unused_percent=unused,
        forecast_alert_days=float(forecast_alert_days),
        confidence=float(confidence),
        window_ms=window_ms,
        min_samples=min_samples,
    )


def _known_namespaces(snapshot: ClusterSnapshot) -> set[str]:
    names = set(snapshot.namespace_names())
    names.update(quota.namespace for quota in snapshot.quotas)
    return names


# ---------------------------------------------------------------------------- the fit


@dataclass(frozen=True, slots=True)
class _Line:
    """A least-squares line in centred seconds, with what its prediction band needs.

    Time ``z`` is seconds from the mean sample time. The fitted value is
    ``mean_value + slope · z``; the prediction band for a new observation is that value
    ``± band · sqrt(1 + 1/n + z² / spread)`` with ``band = t · s``.
    """

    origin_ms: int
    mean_seconds: float
    mean_value: float
    slope: float
    spread: float
    count: int
    band: float
    residual_stddev: float
    t_quantile: float

    def z_at(self, timestamp_ms: float) -> float:
        return (timestamp_ms - self.origin_ms) / 1000.0 - self.mean_seconds

    def ms_at(self, z: float) -> float:
        return self.origin_ms + (z + self.mean_seconds) * 1000.0

    def value(self, z: float) -> float:
        return self.mean_value + self.slope * z

    def half_width(self, z: float) -> float:
        return self.band * math.sqrt(1.0 + 1.0 / self.count + z * z / self.spread)


def _fit(series: TimeSeries, confidence: float) -> _Line:
    """Fit with :func:`forecast_linear` and keep what the band inversion needs."""
    fitted = forecast_linear(series.timestamps_ms, series.values, 0, confidence=confidence)
    origin_ms = series.timestamps_ms[0]
    seconds = [(stamp - origin_ms) / 1000.0 for stamp in series.timestamps_ms]
    count = len(seconds)
    mean_seconds = math.fsum(seconds) / count
    spread = math.fsum((second - mean_seconds) ** 2 for second in seconds)
    slope = fitted.parameters["slope"]
    residual_stddev = fitted.parameters["residual_stddev"]
    t_quantile = fitted.parameters["t_quantile"]
    return _Line(
        origin_ms=origin_ms,
        mean_seconds=mean_seconds,
        mean_value=fitted.parameters["intercept"] + slope * mean_seconds,
        slope=slope,
        spread=spread,
        count=count,
        band=t_quantile * residual_stddev,
        residual_stddev=residual_stddev,
        t_quantile=t_quantile,
    )


def _band_crossings(line: _Line, hard: float) -> tuple[list[float], list[float]]:
    """Where the upper and the lower edge of the prediction band equal ``hard``.

    With ``d = hard - mean_value`` both edges meet hard where
    ``(d - slope · z)² = band² (c + z² / spread)``, ``c = 1 + 1/n``: the quadratic
    ``(slope² - band²/spread) z² - 2 slope d z + (d² - band² c) = 0``, whose discriminant
    simplifies to ``4 band² (slope² c + (d² - band² c) / spread)``. A root with
    ``d - slope · z >= 0`` lies on the upper edge (value + half width = hard), the others
    on the lower edge. Returns (upper-edge roots, lower-edge roots), in centred seconds.
    """
    c = 1.0 + 1.0 / line.count
    d = hard - line.mean_value
    band_squared = line.band * line.band
    a = line.slope * line.slope - band_squared / line.spread
    b = -2.0 * line.slope * d
    constant = d * d - band_squared * c
    quarter_discriminant = band_squared * (
        line.slope * line.slope * c + (d * d - band_squared * c) / line.spread
    )
    roots: list[float] = []
    scale = max(line.slope * line.slope, band_squared / line.spread)
    if scale == 0.0:
        return [], []
    if abs(a) <= 1e-12 * scale:
        # The band's edge grows as fast as the line: one crossing, from the linear term.
        if b != 0.0:
            roots.append(-constant / b)
    elif quarter_discriminant >= 0.0:
        root = math.sqrt(4.0 * quarter_discriminant)
        # The numerically stable pair: q / a and constant / q.
        q = -0.5 * (b + math.copysign(root, b))
        if q != 0.0:
            roots.extend((q / a, constant / q))
        else:
            roots.append(0.0)
    upper: list[float] = []
    lower: list[float] = []
    for z in roots:
        (upper if d - line.slope * z >= 0.0 else lower).append(z)
    return upper, lower


def _first_reach(z_now: float, reached_now: bool, roots: Iterable[float]) -> float | None:
    """The first instant (centred seconds) from ``z_now`` on where an edge reaches hard."""
    if reached_now:
        return z_now
    later = [z for z in roots if z >= z_now]
    return min(later) if later else None


def _days(line: _Line, z: float | None, as_of_ms: int) -> float | None:
    if z is None:
        return None
    return max(0.0, (line.ms_at(z) - as_of_ms) / _MS_PER_DAY)


# ---------------------------------------------------------------------------- quota analysis


def _quota_history(history: UsageHistory, ref: QuotaRef) -> TimeSeries | None:
    series = history.quota_used.get(ref)
    if series is None:
        alias = _QUOTA_ALIASES.get(ref.resource)
        if alias is not None:
            series = history.quota_used.get(QuotaRef(ref.namespace, ref.quota, alias))
    return series


def _windowed(series: TimeSeries, history: UsageHistory, window_ms: int | None) -> TimeSeries:
    if window_ms is None:
        return series
    return series.between(history.end_ms - window_ms, history.end_ms)


def _status(used: Decimal | None, hard: Decimal, settings: QuotaSettings) -> QuotaStatus:
    if hard == 0:
        return QuotaStatus.DISALLOWED
    if used is None:
        return QuotaStatus.UNCOUNTED
    if used >= hard:
        return QuotaStatus.EXHAUSTED
    percent = float(used / hard) * 100.0
    if percent >= settings.critical_percent:
        return QuotaStatus.CRITICAL
    if percent >= settings.warning_percent:
        return QuotaStatus.WARNING
    return QuotaStatus.OK


def _trend(series: TimeSeries, line: _Line | None) -> QuotaTrend:
    values = series.values
    slope = lower = upper = None
    direction = TrendDirection.UNKNOWN
    if line is not None:
        slope = line.slope * _SECONDS_PER_DAY
        margin = line.t_quantile * line.residual_stddev / math.sqrt(line.spread)
        lower = (line.slope - margin) * _SECONDS_PER_DAY
        upper = (line.slope + margin) * _SECONDS_PER_DAY
        if lower > 0.0:
            direction = TrendDirection.RISING
        elif upper < 0.0:
            direction = TrendDirection.FALLING
        else:
            direction = TrendDirection.FLAT
    return QuotaTrend(
        sample_count=len(series),
        first_ms=series.timestamps_ms[0],
        last_ms=series.timestamps_ms[-1],
        first_value=values[0],
        last_value=values[-1],
        min_value=min(values),
        max_value=max(values),
        slope_per_day=slope,
        slope_lower_per_day=lower,
        slope_upper_per_day=upper,
        direction=direction,
    )


def _no_forecast(
    status: ForecastStatus, settings: QuotaSettings, samples: int
) -> ExhaustionForecast:
    return ExhaustionForecast(
        status=status,
        as_of_ms=None,
        days_until=None,
        earliest_days=None,
        latest_days=None,
        exhaustion_ms=None,
        confidence=settings.confidence,
        sample_count=samples,
        residual_stddev=None,
    )


def _forecast(
    line: _Line | None,
    series: TimeSeries | None,
    *,
    hard: Decimal,
    used: Decimal | None,
    taken_at_ms: int,
    settings: QuotaSettings,
) -> ExhaustionForecast:
    samples = 0 if series is None else len(series)
    if hard == 0:
        return _no_forecast(ForecastStatus.NOT_APPLICABLE, settings, samples)
    last_ms = series.last_ms if series is not None else None
    as_of_ms = taken_at_ms if last_ms is None else max(taken_at_ms, last_ms)
    if used is not None and used >= hard:
        return ExhaustionForecast(
            status=ForecastStatus.EXHAUSTED,
            as_of_ms=as_of_ms,
            days_until=0.0,
            earliest_days=0.0,
            latest_days=0.0,
            exhaustion_ms=as_of_ms,
            confidence=settings.confidence,
            sample_count=samples,
            residual_stddev=None if line is None else line.residual_stddev,
        )
    if series is None or samples == 0:
        return _no_forecast(ForecastStatus.NO_HISTORY, settings, 0)
    if line is None:
        return _no_forecast(ForecastStatus.INSUFFICIENT_DATA, settings, samples)
    limit = float(hard)
    z_now = line.z_at(as_of_ms)
    upper_roots, lower_roots = _band_crossings(line, limit)
    value_now = line.value(z_now)
    half_width_now = line.half_width(z_now)
    earliest = _first_reach(z_now, value_now + half_width_now >= limit, upper_roots)
    latest = _first_reach(z_now, value_now - half_width_now >= limit, lower_roots)
    point: float | None = None
    if line.slope > 0.0:
        point = max(z_now, (limit - line.mean_value) / line.slope)
    if line.band == 0.0:
        # A perfect fit: the band has no width, both ends are the line itself.
        earliest = latest = point
    status = ForecastStatus.PROJECTED if point is not None else ForecastStatus.NOT_RISING
    return ExhaustionForecast(
        status=status,
        as_of_ms=as_of_ms,
        days_until=_days(line, point, as_of_ms),
        earliest_days=_days(line, earliest, as_of_ms),
        latest_days=_days(line, latest, as_of_ms),
        exhaustion_ms=None if point is None else round(line.ms_at(point)),
        confidence=settings.confidence,
        sample_count=samples,
        residual_stddev=line.residual_stddev,
    )


def _analyse_resource(
    quota: ResourceQuota,
    *,
    resource: str,
    hard: Decimal,
    history: UsageHistory,
    taken_at_ms: int,
    settings: QuotaSettings,
) -> tuple[QuotaResourceAnalysis, bool]:
    """One quota resource; the flag says whether it had any history."""
    ref = QuotaRef(quota.namespace, quota.name, resource)
    used = quota.used.get(resource)
    if used is None:
        alias = _QUOTA_ALIASES.get(resource)
        used = None if alias is None else quota.used.get(alias)
    raw_series = _quota_history(history, ref)
    series = None if raw_series is None else _windowed(raw_series, history, settings.window_ms)
    if series is not None and len(series) == 0:
        series = None
    line = (
        _fit(series, settings.confidence)
        if series is not None and len(series) >= settings.min_samples
        else None
    )
    utilisation = None if used is None or hard == 0 else float(used / hard) * 100.0
    analysis = QuotaResourceAnalysis(
        ref=ref,
        scopes=quota.scopes,
        hard=hard,
        used=used,
        remaining=None if used is None else hard - used,
        utilisation_percent=utilisation,
        status=_status(used, hard, settings),
        trend=None if series is None else _trend(series, line),
        forecast=_forecast(
            line, series, hard=hard, used=used, taken_at_ms=taken_at_ms, settings=settings
        ),
    )
    return analysis, raw_series is not None and len(raw_series) > 0


def _alert(item: QuotaResourceAnalysis, settings: QuotaSettings) -> QuotaAlert | None:
    reasons: list[AlertReason] = []
    critical = False
    if item.status is QuotaStatus.EXHAUSTED:
        reasons.append(AlertReason.EXHAUSTED)
        critical = True
    elif item.status in (QuotaStatus.WARNING, QuotaStatus.CRITICAL):
        reasons.append(AlertReason.NEAR_LIMIT)
        critical = item.status is QuotaStatus.CRITICAL
    forecast = item.forecast
    if (
        forecast.status is ForecastStatus.PROJECTED
        and forecast.days_until is not None
        and forecast.days_until <= settings.forecast_alert_days
        and settings.forecast_alert_days > 0
    ):
        reasons.append(AlertReason.FORECAST)
        if (
            forecast.latest_days is not None
            and forecast.latest_days <= settings.forecast_alert_days
        ):
            critical = True
    if not reasons:
        return None
    ref = item.ref
    what = f"quota {ref.quota} in namespace {ref.namespace}: {ref.resource}"
    if item.utilisation_percent is not None:
        what += f" at {item.utilisation_percent:.1f}% of hard ({item.used} of {item.hard})"
    if AlertReason.EXHAUSTED in reasons:
        advice = "new pods or objects needing it are refused now; raise the quota or free some"
    elif AlertReason.FORECAST in reasons and forecast.days_until is not None:
        advice = (
            f"forecast to run out in {forecast.days_until:.1f} days; raise the quota or "
            "trim requests before then"
        )
    else:
        advice = "close to its limit; raise the quota or trim requests"
    return QuotaAlert(
        ref=ref,
        severity=AlertSeverity.CRITICAL if critical else AlertSeverity.WARNING,
        reasons=tuple(reasons),
        utilisation_percent=item.utilisation_percent,
        days_until=forecast.days_until,
        message=f"{what}: {advice}",
    )


def _unused(item: QuotaResourceAnalysis, settings: QuotaSettings) -> UnusedQuota | None:
    if item.hard <= 0:
        return None
    peaks: list[float] = []
    if item.used is not None:
        peaks.append(float(item.used))
    if item.trend is not None:
        peaks.append(item.trend.max_value)
    if not peaks:
        return None  # nothing measured: unknown, not unused
    peak = max(peaks)
    hard = float(item.hard)
    percent = peak / hard * 100.0
    if percent > settings.unused_percent:
        return None
    return UnusedQuota(
        ref=item.ref,
        hard=item.hard,
        peak_used=peak,
        peak_percent=percent,
        reclaimable=hard - peak,
        from_history=item.trend is not None,
    )


def analyze_quotas(
    snapshot: ClusterSnapshot,
    history: UsageHistory,
    *,
    namespace: str | None = None,
    warning_percent: float = 80.0,
    critical_percent: float = 95.0,
    unused_percent: float = 10.0,
    forecast_alert_days: float = 7.0,
    confidence: float = 0.95,
    window: str | None = None,
    min_samples: int = 3,
) -> QuotaReport:
    """Analyse every ResourceQuota resource of the cluster, or of one namespace.

    Args:
        snapshot: the quotas' ``hard`` and ``used`` now (and the known namespaces).
        history: ``quota_used`` over time, per :class:`QuotaRef`; ``cpu`` and
            ``requests.cpu`` (likewise memory, ephemeral storage) are matched either way.
        namespace: only this namespace; None for all.
        warning_percent: usage at or above this percentage of hard warns (1-100).
        critical_percent: usage at or above this is critical (``warning_percent``-100).
        unused_percent: allocations whose peak stayed at or below this percentage of
            hard are listed as unused (0-100; 0 lists only never-used ones).
        forecast_alert_days: alert when the forecast reaches hard within this many days
            (0 turns forecast alerts off).
        confidence: coverage of the forecast's interval and the trend's slope interval.
        window: how much of the newest history to fit (a duration such as ``7d``);
            None uses all of it.
        min_samples: the fewest samples to fit a trend and forecast on (3 or more).

    Raises:
        KubepulseValueError: an unknown namespace (the message lists known ones) or a
            parameter out of range (the message gives the valid range).
    """
    settings = _check_settings(
        warning_percent=warning_percent,
        critical_percent=critical_percent,
        unused_percent=unused_percent,
        forecast_alert_days=forecast_alert_days,
        confidence=confidence,
        window=window,
        min_samples=min_samples,
    )
    known = _known_namespaces(snapshot)
    if namespace is not None:
        snapshot.require_namespace(namespace)
        quotas: Sequence[ResourceQuota] = snapshot.quotas_in(namespace)
    else:
        quotas = snapshot.quotas
    return _quota_report(
        snapshot, history, quotas, namespace=namespace, known=known, settings=settings
    )


def _quota_report(
    snapshot: ClusterSnapshot,
    history: UsageHistory,
    quotas: Sequence[ResourceQuota],
    *,
    namespace: str | None,
    known: set[str],
    settings: QuotaSettings,
) -> QuotaReport:
    items: list[QuotaResourceAnalysis] = []
    missing: list[QuotaRef] = []
    for quota in sorted(quotas, key=lambda q: (q.namespace, q.name)):
        for resource in sorted(quota.hard):
            item, had_history = _analyse_resource(
                quota,
                resource=resource,
                hard=quota.hard[resource],
                history=history,
                taken_at_ms=snapshot.taken_at_ms,
                settings=settings,
            )
            items.append(item)
            if not had_history:
                missing.append(item.ref)
    alerts = [alert for item in items if (alert := _alert(item, settings)) is not None]
    alerts.sort(
        key=lambda alert: (
            alert.severity is not AlertSeverity.CRITICAL,
            -(alert.utilisation_percent or 0.0),
            math.inf if alert.days_until is None else alert.days_until,
            alert.ref,
        )
    )
    unused = [entry for item in items if (entry := _unused(item, settings)) is not None]
    unused.sort(key=lambda entry: (entry.peak_percent, entry.ref))
    without_quota: tuple[str, ...] = ()
    if namespace is None:
        with_quota = {quota.namespace for quota in snapshot.quotas}
        without_quota = tuple(sorted(known - with_quota))
    return QuotaReport(
        taken_at_ms=snapshot.taken_at_ms,
        namespace=namespace,
        settings=settings,
        resources=tuple(items),
        alerts=tuple(alerts),
        unused=tuple(unused),
        missing_history=tuple(missing),
        uncounted=tuple(item.ref for item in items if item.status is QuotaStatus.UNCOUNTED),
        namespaces_without_quota=without_quota,
    )


# ---------------------------------------------------------------------------- namespace report


@dataclass(slots=True)
class _Usage:
    """Latest and mean usage of one resource, summed over measured containers."""

    latest: float = 0.0
    average: float = 0.0
    measured: int = 0

    def add(self, series: TimeSeries) -> None:
        self.latest += series.values[-1]
        self.average += math.fsum(series.values) / len(series.values)
        self.measured += 1

    def merge(self, other: _Usage) -> None:
        self.latest += other.latest
        self.average += other.average
        self.measured += other.measured


@dataclass(slots=True)
class _Totals:
    """One resource of a namespace, accumulated pod by pod."""

    requests: Decimal = Decimal(0)
    limits: Decimal = Decimal(0)
    without_request: int = 0
    without_limit: int = 0
    usage: _Usage | None = None
    unmeasured: int = 0
    ratio_usage: float = 0.0
    ratio_requests: float = 0.0


def _series_by_pod(
    history: UsageHistory,
    name: Literal["cpu_cores", "memory_working_set_bytes"],
    namespace: str,
) -> dict[str, dict[str, TimeSeries]]:
    """The non-empty series of ``namespace`` in mapping ``name`` of ``history``, by pod.

    Only the namespace's own series are read (:meth:`UsageHistory.in_namespace`).
    """
    by_pod: dict[str, dict[str, TimeSeries]] = {}
    for ref, samples in history.in_namespace(name, namespace).items():
        if len(samples) > 0:
            by_pod.setdefault(ref.pod, {})[ref.container] = samples
    return by_pod


def _running_containers(pod: Pod) -> tuple[str, ...]:
    """The containers a Running pod is expected to have running: app ones and sidecars."""
    return tuple(c.name for c in pod.init_containers if c.is_sidecar) + tuple(
        c.name for c in pod.containers
    )


class _NamespaceAccumulator:
    """Adds a namespace's pods up in one pass: counts, totals, rankings and pod rows."""

    def __init__(
        self,
        cpu_by_pod: Mapping[str, Mapping[str, TimeSeries]],
        memory_by_pod: Mapping[str, Mapping[str, TimeSeries]],
        *,
        include_pods: bool,
    ) -> None:
        self.series_by_pod = {CPU: cpu_by_pod, MEMORY: memory_by_pod}
        self.include_pods = include_pods
        self.by_phase: dict[str, int] = {}
        self.by_qos: dict[str, int] = {}
        self.totals: dict[str, _Totals] = {
            CPU: _Totals(usage=_Usage()),
            MEMORY: _Totals(usage=_Usage()),
        }
        self.usage_rank: dict[str, list[tuple[float, str]]] = {CPU: [], MEMORY: []}
        self.request_rank: dict[str, list[tuple[float, str]]] = {CPU: [], MEMORY: []}
        self.active = 0
        self.rows: list[PodResources] = []

    def add(self, pod: Pod) -> None:
        phase = pod.phase or "Unknown"
        self.by_phase[phase] = self.by_phase.get(phase, 0) + 1
        requests = pod.effective_requests
        limits = pod.effective_limits
        # Asked once per resource: the totals count per resource, the pod row the union.
        missing_requests = {r: pod.containers_missing_requests((r,)) for r in (CPU, MEMORY)}
        missing_limits = {r: pod.containers_missing_limits((r,)) for r in (CPU, MEMORY)}
        if pod.phase not in ("Succeeded", "Failed"):
            self._add_allocations(pod, requests, limits, missing_requests, missing_limits)
        pod_usage: dict[str, _Usage] = {}
        unmeasured: set[str] = set()
        if pod.phase == "Running":
            expected = _running_containers(pod)
            for resource in (CPU, MEMORY):
                usage = self._add_usage(pod, resource, expected, requests, unmeasured)
                if usage.measured:
                    pod_usage[resource] = usage
        if self.include_pods:
            self.rows.append(
                _pod_row(
                    pod,
                    requests,
                    limits,
                    pod_usage,
                    unmeasured,
                    missing_limits=_union_in_order(pod, missing_limits.values()),
                    missing_requests=_union_in_order(pod, missing_requests.values()),
                )
            )

    def _add_allocations(
        self,
        pod: Pod,
        requests: ResourceList,
        limits: ResourceList,
        missing_requests: Mapping[str, tuple[str, ...]],
        missing_limits: Mapping[str, tuple[str, ...]],
    ) -> None:
        self.active += 1
        self.by_qos[pod.qos_class] = self.by_qos.get(pod.qos_class, 0) + 1
        for resource, amount in requests.items():
            self.totals.setdefault(resource, _Totals()).requests += amount
        for resource, amount in limits.items():
            self.totals.setdefault(resource, _Totals()).limits += amount
        for resource in (CPU, MEMORY):
            entry = self.totals[resource]
            if missing_requests[resource]:
                entry.without_request += 1
            if missing_limits[resource]:
                entry.without_limit += 1
            request = requests.get(resource)
            if request is not None and request > 0:
                self.request_rank[resource].append((float(request), pod.name))

    def _add_usage(
        self,
        pod: Pod,
        resource: str,
        expected: tuple[str, ...],
        requests: ResourceList,
        unmeasured: set[str],
    ) -> _Usage:
        found = self.series_by_pod[resource].get(pod.name, {})
        usage = _Usage()
        for container in expected:
            series = found.get(container)
            if series is None:
                unmeasured.add(container)
            else:
                usage.add(series)
        entry = self.totals[resource]
        assert entry.usage is not None  # CPU and memory always carry a usage accumulator
        entry.usage.merge(usage)
        entry.unmeasured += len(expected) - usage.measured
        if usage.measured:
            self.usage_rank[resource].append((usage.latest, pod.name))
        request = requests.get(resource)
        # Only fully measured pods that request the resource compare like with like.
        if expected and usage.measured == len(expected) and request is not None and request > 0:
            entry.ratio_usage += usage.latest
            entry.ratio_requests += float(request)
        return usage


def _union_in_order(pod: Pod, groups: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    """The container names in any of ``groups``, in the pod's container order."""
    names = {name for group in groups for name in group}
    if not names:
        return ()
    return tuple(c.name for c in pod.all_containers if c.name in names)


def _pod_row(
    pod: Pod,
    requests: ResourceList,
    limits: ResourceList,
    usage: Mapping[str, _Usage],
    unmeasured: set[str],
    *,
    missing_limits: tuple[str, ...],
    missing_requests: tuple[str, ...],
) -> PodResources:
    cpu = usage.get(CPU)
    memory = usage.get(MEMORY)
    return PodResources(
        name=pod.name,
        phase=pod.phase,
        node=pod.node_name,
        qos_class=pod.qos_class,
        requests=requests,
        limits=limits,
        cpu_cores=None if cpu is None else cpu.latest,
        cpu_cores_average=None if cpu is None else cpu.average,
        memory_working_set_bytes=None if memory is None else memory.latest,
        memory_working_set_bytes_average=None if memory is None else memory.average,
        unmeasured_containers=tuple(sorted(unmeasured)),
        containers_missing_limits=missing_limits,
        containers_missing_requests=missing_requests,
        restarts=pod.restart_count,
    )


def _check_top(top: int) -> int:
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise KubepulseValueError(
            f"top must be a whole number of pods, 0 or more, got {top!r}; 0 leaves the "
            "top consumers out"
        )
    return top


def namespace_report(
    snapshot: ClusterSnapshot,
    history: UsageHistory,
    namespace: str,
    *,
    include_pods: bool = True,
    include_quota: bool = True,
    top: int = 5,
    quota_window: str | None = None,
) -> NamespaceReport:
    """Usage, requests, limits, quota and top consumers of one namespace.

    Requests and limits are the pods' effective ones (as the scheduler and the quota
    count them) summed over active pods. Usage is the latest sample and the window mean
    of each Running pod's containers (CPU cores, working-set bytes), summed; containers
    without a series are counted as unmeasured and named in ``missing_data``, never
    taken as idle. The quota section is :func:`analyze_quotas` for the namespace with
    its default thresholds (``quota_window`` is its ``window``).

    Args:
        snapshot: the objects.
        history: the measured usage and quota history.
        namespace: the namespace to report on.
        include_pods: list every pod with its figures.
        include_quota: analyse the namespace's ResourceQuotas.
        top: how many pods to rank per resource and basis (0 for none).
        quota_window: the quota trend's window, as :func:`analyze_quotas` takes it.

    Raises:
        KubepulseValueError: the namespace is unknown (the message lists known ones and
            close matches), or ``top`` or ``quota_window`` is invalid.
    """
    top = _check_top(top)
    known = _known_namespaces(snapshot)
    snapshot.require_namespace(namespace)
    quota_report = None
    if include_quota:
        settings = _check_settings(
            warning_percent=80.0,
            critical_percent=95.0,
            unused_percent=10.0,
            forecast_alert_days=7.0,
            confidence=0.95,
            window=quota_window,
            min_samples=_MINIMUM_FORECAST_SAMPLES,
        )
        quota_report = _quota_report(
            snapshot,
            history,
            snapshot.quotas_in(namespace),
            namespace=namespace,
            known=known,
            settings=settings,
        )

    accumulator = _NamespaceAccumulator(
        _series_by_pod(history, "cpu_cores", namespace),
        _series_by_pod(history, "memory_working_set_bytes", namespace),
        include_pods=include_pods,
    )
    pods = sorted(snapshot.pods_in(namespace), key=lambda pod: pod.name)
    for pod in pods:
        accumulator.add(pod)

    totals = accumulator.totals
    resources = tuple(
        _resource_totals(resource, totals[resource])
        for resource in (CPU, MEMORY, *sorted(set(totals) - {CPU, MEMORY}))
    )
    consumers: list[TopConsumer] = []
    if top:
        for resource in (CPU, MEMORY):
            consumers += _top(resource, ConsumerBasis.USAGE, accumulator.usage_rank[resource], top)
            consumers += _top(
                resource, ConsumerBasis.REQUESTS, accumulator.request_rank[resource], top
            )
    namespace_object = next((ns for ns in snapshot.namespaces if ns.name == namespace), None)
    return NamespaceReport(
        namespace=namespace,
        taken_at_ms=snapshot.taken_at_ms,
        phase=None if namespace_object is None else namespace_object.phase,
        pod_count=len(pods),
        active_pod_count=accumulator.active,
        pods_by_phase=MappingProxyType(dict(sorted(accumulator.by_phase.items()))),
        pods_by_qos=MappingProxyType(dict(sorted(accumulator.by_qos.items()))),
        resources=resources,
        top_consumers=tuple(consumers),
        pods=tuple(accumulator.rows) if include_pods else None,
        quota=quota_report,
        missing_data=_missing_data(resources, quota_report),
    )


def _missing_data(
    resources: Sequence[NamespaceResourceTotals], quota_report: QuotaReport | None
) -> tuple[str, ...]:
    notes = [
        f"{figures.unmeasured_containers} of "
        f"{figures.unmeasured_containers + figures.measured_containers} running containers "
        f"have no {'CPU' if figures.resource == CPU else 'memory'} usage series"
        for figures in resources
        if figures.resource in (CPU, MEMORY) and figures.unmeasured_containers
    ]
    if quota_report is not None and quota_report.missing_history:
        notes.append(
            f"{len(quota_report.missing_history)} quota resources have no usage history, "
            "so no trend or forecast"
        )
    if quota_report is not None and quota_report.uncounted:
        notes.append(
            f"{len(quota_report.uncounted)} quota resources have no status.used yet "
            "(the quota controller has not counted them)"
        )
    return tuple(notes)


def _resource_totals(resource: str, totals: _Totals) -> NamespaceResourceTotals:
    usage = totals.usage
    measured = usage is not None and usage.measured > 0
    is_measured_kind = resource in (CPU, MEMORY)
    return NamespaceResourceTotals(
        resource=resource,
        requests=totals.requests,
        limits=totals.limits,
        pods_without_request=totals.without_request if is_measured_kind else None,
        pods_without_limit=totals.without_limit if is_measured_kind else None,
        usage=usage.latest if measured and usage is not None else None,
        usage_average=usage.average if measured and usage is not None else None,
        measured_containers=0 if usage is None else usage.measured,
        unmeasured_containers=totals.unmeasured,
        usage_to_requests=(
            totals.ratio_usage / totals.ratio_requests if totals.ratio_requests > 0 else None
        ),
    )


def _top(
    resource: str, basis: ConsumerBasis, ranked: list[tuple[float, str]], top: int
) -> list[TopConsumer]:
    total = math.fsum(amount for amount, _ in ranked)
    # Largest first; equal amounts by pod name, so the order never depends on input order.
    best = sorted(ranked, key=lambda entry: (-entry[0], entry[1]))[:top]
    return [
        TopConsumer(
            resource=resource,
            basis=basis,
            rank=rank,
            pod=name,
            amount=amount,
            share=amount / total if total > 0 else None,
        )
        for rank, (amount, name) in enumerate(best, start=1)
    ]

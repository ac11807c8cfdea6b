"""HPA metrics and an HPA replay: what an autoscaler would see and what it would have done.

:func:`generate_hpa_metrics` answers, for one Deployment, two questions a platform
engineer asks before trusting an autoscaler:

1. *What values would kubepulse serve?* For each sync step of the history (every 15 s,
   the controller's default ``--horizontal-pod-autoscaler-sync-period``), the chosen
   statistic (``avg``, ``p95``...: :func:`kubepulse.stats.parse_aggregation`) over the
   trailing window, per pod and averaged over the pods, and with ``predict`` the value
   forecast that far ahead (:func:`kubepulse.stats.forecast_linear` or ``forecast_holt``),
   as the adapter serves ``kubepulse.io/predict``.
2. *What would the HPA have done?* A replay of the Kubernetes HPA controller over that
   history: the replica count step by step, the scaling events, and the next event it
   would take from now on, once on the measured values and once on forecasts.

The replay follows the controller's real code (``pkg/controller/podautoscaler``):

- :func:`resource_replicas` is ``ReplicaCalculator.GetResourceReplicas`` with
  ``metricsclient.GetResourceUtilizationRatio`` (replica_calculator.go): integer
  percent utilisation, tolerance, and the missing-pod rule (on a scale-down a pod
  without metrics counts as using ``max(100 %, target)`` of its request, on a scale-up
  as using nothing; no change when that flips the direction);
- :func:`plain_metric_replicas` is ``calcPlainMetricReplicas`` (``AverageValue``
  targets, with the same missing-pod rule, missing pods counting as exactly on target);
- :func:`usage_ratio_replicas` is ``getUsageRatioReplicaCount`` (``Value`` targets of
  Object and External metrics) and :func:`per_pod_total_replicas` is
  ``GetExternalPerPodMetricReplicas`` / ``GetObjectPerPodMetricReplicas``;
- :class:`HpaController` is ``HorizontalController.reconcileAutoscaler`` with
  ``computeReplicasForMetrics`` (the largest proposal wins; when every metric is
  invalid, or some are and the others would scale down, nothing changes and no
  recommendation is recorded), ``normalizeDesiredReplicasWithBehaviors``
  (``stabilizeRecommendationWithBehaviors``: up to the smallest recommendation of the
  scale-up window, down to the largest of the scale-down window;
  ``convertDesiredReplicasWithBehaviorRate`` with
  ``calculateScaleUpLimitWithScalingRules`` / ``calculateScaleDownLimitWithBehaviors``:
  the policies' rate limits over their periods, ``selectPolicy`` Max/Min/Disabled; then
  min/max replicas) and, for an HPA without ``behavior``, the legacy
  ``normalizeDesiredReplicas`` (``stabilizeRecommendation`` over the 5-minute
  downscale window, ``convertDesiredReplicasWithRules`` with the scale-up limit
  ``max(2 * current, 4)``) from horizontal.go.

The simulated Deployment does not run the pods that were measured: it runs however many
the replay decided. The replay therefore conserves *demand*: at each step the measured
pods' average times the number of pods that existed is the total load, and the simulated
``S`` replicas share it evenly, ``load / S`` each. This is the same proportional model
the controller itself assumes (``desired = ceil(current * current_value / target)``).
Pods that existed but had no value in the window are *missing*, never zero: the same
share of the simulated pods is missing (rounded up), and the controller's missing-pod
rule applies to them. ``docs/analysis/hpa.md`` explains every figure and its limits.

Pure: no clock, no I/O. ``generate_hpa_metrics`` is what the facade, the adapter's
``hpametrics`` resource and ``kubectl pulse hpa`` call.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from kubepulse.analysis.inputs import ClusterSnapshot, ContainerRef, TimeSeries, UsageHistory
from kubepulse.duration import format_duration, parse_window
from kubepulse.errors import KubepulseValueError, UnknownObjectError
from kubepulse.model import (
    HorizontalPodAutoscaler,
    HpaMetric,
    MetricTarget,
    Pod,
    ScalingPolicy,
    ScalingRules,
)
from kubepulse.stats import (
    Aggregation,
    Forecast,
    InsufficientDataError,
    SeriesKind,
    exact_evaluate,
    forecast_holt,
    forecast_linear,
    parse_aggregation,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "ControllerDecision",
    "DecisionReason",
    "EventDirection",
    "HpaController",
    "HpaMetricsReport",
    "HpaReplay",
    "HpaSource",
    "HpaSpec",
    "MetricReading",
    "MetricType",
    "ReplayStep",
    "ScalingBehavior",
    "ScalingEvent",
    "SelectPolicy",
    "ServedValue",
    "Tolerances",
    "default_spec",
    "generate_hpa_metrics",
    "hpa_spec_from_model",
    "per_pod_total_replicas",
    "plain_metric_replicas",
    "resource_replicas",
    "usage_ratio_replicas",
]

DEFAULT_TOLERANCE: Final = 0.1
"""The controller's ``--horizontal-pod-autoscaler-tolerance``: no change within 10 %."""

_DOWNSCALE_STABILIZATION_S: Final = 300  # --horizontal-pod-autoscaler-downscale-stabilization
_LEGACY_SCALE_UP_FACTOR: Final = 2.0  # scaleUpLimitFactor (horizontal.go)
_LEGACY_SCALE_UP_MINIMUM: Final = 4.0  # scaleUpLimitMinimum (horizontal.go)
_DEFAULT_UTILIZATION: Final = 80  # autoscaling/v2 defaults.go: DefaultCPUUtilization
_DEFAULT_MIN_REPLICAS: Final = 1
_DEFAULT_MAX_REPLICAS: Final = 10
_WINDOW_MIN_MS: Final = 30_000
_WINDOW_MAX_MS: Final = 24 * 3_600_000
_PREDICT_MAX_MS: Final = 24 * 3_600_000
_LOOKAHEAD_MS: Final = 30 * 60_000
_MIN_FIT_STEPS: Final = 4
_MILLI: Final = 1000
# The alphabet of pod-template-hash and of generated pod-name suffixes
# (k8s.io/apimachinery/pkg/util/rand.SafeEncodeString): no vowels, no 0/1/3.
_SAFE: Final = "bcdfghjklmnpqrstvwxz2456789"
_POD_TEMPLATE_HASH: Final = "pod-template-hash"


# ---------------------------------------------------------------------------- enums


class MetricType(enum.Enum):
    """The metric served: usage in cores or bytes, or utilisation in percent of request."""

    CPU = "cpu"
    MEMORY = "memory"
    CPU_UTILIZATION = "cpu-utilization"
    MEMORY_UTILIZATION = "memory-utilization"

    @property
    def resource(self) -> str:
        """``cpu`` or ``memory``."""
        return "cpu" if self in (MetricType.CPU, MetricType.CPU_UTILIZATION) else "memory"

    @property
    def is_utilization(self) -> bool:
        """Whether values are percent of the pods' request."""
        return self in (MetricType.CPU_UTILIZATION, MetricType.MEMORY_UTILIZATION)

    @property
    def unit(self) -> str:
        """The unit of served values: ``cores``, ``bytes`` or ``percent``."""
        if self.is_utilization:
            return "percent"
        return "cores" if self is MetricType.CPU else "bytes"


class HpaSource(enum.Enum):
    """Where the replayed HPA came from."""

    HPA = "hpa"
    """An HPA in ``autoscalers`` targets the Deployment."""
    DEFAULT = "default"
    """No HPA targets it: the replay uses the API's defaults (see :func:`default_spec`)."""


class SelectPolicy(enum.Enum):
    """``selectPolicy`` of a scaling direction."""

    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class EventDirection(enum.Enum):
    """Which way a scaling event went."""

    UP = "up"
    DOWN = "down"


class DecisionReason(enum.Enum):
    """Why a controller step ended where it did (the controller's condition reasons)."""

    WITHIN_TOLERANCE = "WithinTolerance"
    """The proposal equals the current count (usage within tolerance of the target)."""
    DESIRED_WITHIN_RANGE = "DesiredWithinRange"
    """The proposal is applied as is."""
    SCALE_UP_STABILIZED = "ScaleUpStabilized"
    """The scale-up window held the count below the proposal."""
    SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
    """The scale-down window held the count above the proposal."""
    SCALE_UP_LIMIT = "ScaleUpLimit"
    """A scale-up policy (or the legacy 2x/4-pod limit) capped the change."""
    SCALE_DOWN_LIMIT = "ScaleDownLimit"
    """A scale-down policy capped the change."""
    TOO_MANY_REPLICAS = "TooManyReplicas"
    """Clamped to ``maxReplicas``."""
    TOO_FEW_REPLICAS = "TooFewReplicas"
    """Clamped to ``minReplicas``."""
    INVALID_METRICS = "FailedGetMetrics"
    """No usable metric (or a missing one while the others would scale down): held."""


# ---------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class ScalingBehavior:
    """One direction of ``behavior`` with the controller's defaults applied.

    Attributes:
        stabilization_window_seconds: recommendations kept for this long; scale-down
            takes the largest of the window, scale-up the smallest.
        select_policy: which policy wins when several allow different changes.
        policies: the rate limits (``Pods`` or ``Percent`` per ``period_seconds``).
        tolerance: no change while the usage ratio is within this fraction of 1.
    """

    stabilization_window_seconds: int
    select_policy: SelectPolicy
    policies: tuple[ScalingPolicy, ...]
    tolerance: float = DEFAULT_TOLERANCE


@dataclass(frozen=True)
class HpaSpec:
    """The HPA the replay runs: the object's fields with the controller's defaults.

    Attributes:
        name: the HPA's name, ``None`` for the default HPA.
        min_replicas: ``minReplicas`` (the API's default is 1).
        max_replicas: ``maxReplicas``.
        metrics: ``spec.metrics`` (the model's :class:`~kubepulse.model.HpaMetric`;
            target types ``Utilization``, ``AverageValue`` or ``Value``); the API's
            default of 80 % CPU when the HPA lists none.
        scale_up: ``behavior.scaleUp`` completed like ``GenerateHPAScaleUpRules``
            (0 s window, Max of 4 pods or 100 % per 15 s); ``None`` when the HPA has no
            ``behavior`` at all, so that the controller's legacy path runs.
        scale_down: ``behavior.scaleDown`` completed like ``GenerateHPAScaleDownRules``
            (300 s window, 100 % per 15 s); ``None`` without ``behavior``.
    """

    min_replicas: int
    max_replicas: int
    metrics: tuple[HpaMetric, ...]
    scale_up: ScalingBehavior | None = None
    scale_down: ScalingBehavior | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.min_replicas < 1:
            raise KubepulseValueError(
                f"minReplicas must be at least 1, got {self.min_replicas}; scale-to-zero "
                "(HPAScaleToZero) is not simulated"
            )
        if self.max_replicas < self.min_replicas:
            raise KubepulseValueError(
                f"maxReplicas ({self.max_replicas}) must be at least minReplicas "
                f"({self.min_replicas})"
            )
        if (self.scale_up is None) != (self.scale_down is None):
            raise KubepulseValueError(
                "give both scale_up and scale_down (behavior set) or neither (legacy path)"
            )

    @property
    def has_behavior(self) -> bool:
        """Whether ``spec.behavior`` was set (the controller's behavior path runs)."""
        return self.scale_up is not None


def _tolerance(rules: ScalingRules | None) -> float:
    if rules is None or rules.tolerance is None:
        return DEFAULT_TOLERANCE
    return float(rules.tolerance)


def _select_policy(text: str | None, where: str) -> SelectPolicy:
    if text is None:
        return SelectPolicy.MAX
    for policy in SelectPolicy:
        if policy.value == text:
            return policy
    raise KubepulseValueError(f"{where}.selectPolicy must be Max, Min or Disabled, got {text!r}")


def _check_policies(policies: tuple[ScalingPolicy, ...], where: str) -> None:
    for policy in policies:
        if policy.type not in ("Pods", "Percent"):
            raise KubepulseValueError(
                f"{where}.policies: type must be Pods or Percent, got {policy.type!r}"
            )
        if policy.value <= 0 or policy.period_seconds <= 0:
            raise KubepulseValueError(
                f"{where}.policies: value and periodSeconds must be positive, got "
                f"{policy.value} and {policy.period_seconds}"
            )


def _scale_up_behavior(rules: ScalingRules | None) -> ScalingBehavior:
    """``GenerateHPAScaleUpRules`` (pkg/apis/autoscaling/v2/defaults.go)."""
    policies = (
        (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15))
        if rules is None or rules.policies is None
        else rules.policies
    )
    _check_policies(policies, "behavior.scaleUp")
    window = None if rules is None else rules.stabilization_window_seconds
    return ScalingBehavior(
        stabilization_window_seconds=0 if window is None else window,
        select_policy=_select_policy(None if rules is None else rules.select_policy, "scaleUp"),
        policies=policies,
        tolerance=_tolerance(rules),
    )


def _scale_down_behavior(rules: ScalingRules | None) -> ScalingBehavior:
    """``GenerateHPAScaleDownRules`` plus ``maybeInitScaleDownStabilizationWindow``."""
    policies = (
        (ScalingPolicy("Percent", 100, 15),)
        if rules is None or rules.policies is None
        else rules.policies
    )
    _check_policies(policies, "behavior.scaleDown")
    window = None if rules is None else rules.stabilization_window_seconds
    return ScalingBehavior(
        stabilization_window_seconds=_DOWNSCALE_STABILIZATION_S if window is None else window,
        select_policy=_select_policy(None if rules is None else rules.select_policy, "scaleDown"),
        policies=policies,
        tolerance=_tolerance(rules),
    )


def _default_metric(resource: str) -> HpaMetric:
    return HpaMetric(
        source="Resource",
        name=resource,
        target=MetricTarget(type="Utilization", average_utilization=_DEFAULT_UTILIZATION),
    )


def hpa_spec_from_model(hpa: HorizontalPodAutoscaler) -> HpaSpec:
    """The :class:`HpaSpec` the controller runs for ``hpa``: its fields plus the defaults.

    The API server's defaulting (``SetDefaults_HorizontalPodAutoscaler``) fills
    ``behavior`` only when the HPA has one, so an HPA without ``behavior`` keeps
    ``scale_up``/``scale_down`` ``None`` and is replayed on the legacy path.

    Raises:
        KubepulseValueError: min/max replicas or policies the API would reject.
    """
    has_behavior = hpa.scale_up is not None or hpa.scale_down is not None
    return HpaSpec(
        name=hpa.name,
        min_replicas=hpa.min_replicas,
        max_replicas=hpa.max_replicas,
        metrics=hpa.metrics or (_default_metric("cpu"),),
        scale_up=_scale_up_behavior(hpa.scale_up) if has_behavior else None,
        scale_down=_scale_down_behavior(hpa.scale_down) if has_behavior else None,
    )


def default_spec(resource: str) -> HpaSpec:
    """The HPA replayed when none targets the Deployment.

    The autoscaling/v2 defaults (``minReplicas`` 1, 80 % utilisation, no ``behavior``)
    with ``maxReplicas`` 10, on the resource of the metric asked for (80 % CPU for
    ``cpu``, which is exactly the API's default).
    """
    return HpaSpec(
        min_replicas=_DEFAULT_MIN_REPLICAS,
        max_replicas=_DEFAULT_MAX_REPLICAS,
        metrics=(_default_metric(resource),),
    )


# ---------------------------------------------------------------------------- replica_calculator.go


@dataclass(frozen=True)
class Tolerances:
    """``Tolerances`` of replica_calculator.go: no change while the ratio stays within.

    The ratio of current to target is "within" when
    ``1 - scale_down <= ratio <= 1 + scale_up``. Both default to the controller's 10 %;
    ``behavior.scaleUp/scaleDown.tolerance`` (Kubernetes 1.33+) sets them apart.
    """

    scale_down: float = DEFAULT_TOLERANCE
    scale_up: float = DEFAULT_TOLERANCE

    def is_within(self, ratio: float) -> bool:
        """``Tolerances.isWithin``."""
        return 1.0 - self.scale_down <= ratio <= 1.0 + self.scale_up


def _within(ratio: float, tolerance: float | Tolerances) -> bool:
    if isinstance(tolerance, Tolerances):
        return tolerance.is_within(ratio)
    return 1.0 - tolerance <= ratio <= 1.0 + tolerance


def _utilization_ratio(
    metrics: Mapping[str, int], requests: Mapping[str, int], target_utilization: int
) -> tuple[float, int] | None:
    """``metricsclient.GetResourceUtilizationRatio``: (ratio, integer percent)."""
    metrics_total = 0
    requests_total = 0
    for pod, value in metrics.items():
        request = requests.get(pod)
        if request is None:
            continue
        metrics_total += value
        requests_total += request
    if requests_total == 0:
        return None  # "no metrics returned matched known pods"
    utilization = metrics_total * 100 // requests_total
    return utilization / target_utilization, utilization


def resource_replicas(
    current_replicas: int,
    target_utilization: int,
    metrics: Mapping[str, int],
    requests: Mapping[str, int],
    missing: Collection[str] = (),
    *,
    tolerance: float | Tolerances = DEFAULT_TOLERANCE,
) -> tuple[int, int] | None:
    """``ReplicaCalculator.GetResourceReplicas`` for a ``Utilization`` target.

    ``metrics`` are the measured pods' usage and ``requests`` every pod's request, in
    milli-units (millicores, millibytes) as the controller keeps them; ``missing`` are
    the pods that exist without a metric. Readiness is not modelled: every measured pod
    counts as ready. Returns ``(replicas, utilization_percent)``, or ``None`` when the
    controller fails (no metrics, or no request: ``missing request for cpu``), which
    makes this metric invalid for the step.
    """
    if not metrics or any(pod not in requests for pod in (*metrics, *missing)):
        return None
    first = _utilization_ratio(metrics, requests, target_utilization)
    if first is None:
        return None
    usage_ratio, utilization = first
    if not missing:
        if _within(usage_ratio, tolerance):
            return current_replicas, utilization
        return math.ceil(usage_ratio * len(metrics)), utilization
    filled = dict(metrics)
    if usage_ratio < 1.0:
        fallback = max(100, target_utilization)
        for pod in missing:
            filled[pod] = requests[pod] * fallback // 100
    elif usage_ratio > 1.0:
        for pod in missing:
            filled[pod] = 0
    second = _utilization_ratio(filled, requests, target_utilization)
    assert second is not None  # the measured pods already had requests
    replicas = _with_missing_pods(current_replicas, usage_ratio, second[0], len(filled), tolerance)
    return replicas, utilization


def _with_missing_pods(
    current_replicas: int,
    usage_ratio: float,
    new_ratio: float,
    pods: int,
    tolerance: float | Tolerances,
) -> int:
    """The controller's second pass once missing pods are filled in.

    It holds when the filled-in ratio is within tolerance or points the other way than
    the measured one, and when the new count would move against the ratio; otherwise it
    scales to ``ceil(new_ratio * pods)`` (``replica_calculator.go``).
    """
    if (
        _within(new_ratio, tolerance)
        or (usage_ratio < 1.0 < new_ratio)
        or (usage_ratio > 1.0 > new_ratio)
    ):
        return current_replicas
    new_replicas = math.ceil(new_ratio * pods)
    if (new_ratio < 1.0 and new_replicas > current_replicas) or (
        new_ratio > 1.0 and new_replicas < current_replicas
    ):
        return current_replicas
    return new_replicas


def plain_metric_replicas(
    current_replicas: int,
    target_usage: int,
    metrics: Mapping[str, int],
    missing: Collection[str] = (),
    *,
    tolerance: float | Tolerances = DEFAULT_TOLERANCE,
) -> tuple[int, int] | None:
    """``ReplicaCalculator.calcPlainMetricReplicas`` for an ``AverageValue`` target.

    Milli-units throughout; the average is ``metricsTotal / len(metrics)`` truncated, as
    ``metricsclient.GetMetricUsageRatio`` computes it. Missing pods count as exactly on
    target on a scale-down and as zero on a scale-up. Returns ``(replicas,
    average_usage)``, ``None`` when no pod has a metric or the target is not positive.
    """
    if not metrics or target_usage <= 0:
        return None
    usage = sum(metrics.values()) // len(metrics)
    usage_ratio = usage / target_usage
    if not missing:
        if _within(usage_ratio, tolerance):
            return current_replicas, usage
        return math.ceil(usage_ratio * len(metrics)), usage
    filled = dict(metrics)
    for pod in missing:
        filled[pod] = target_usage if usage_ratio < 1.0 else 0
    new_ratio = (sum(filled.values()) // len(filled)) / target_usage
    replicas = _with_missing_pods(current_replicas, usage_ratio, new_ratio, len(filled), tolerance)
    return replicas, usage


def usage_ratio_replicas(
    current_replicas: int,
    usage_ratio: float,
    ready_pods: int,
    *,
    tolerance: float | Tolerances = DEFAULT_TOLERANCE,
) -> int:
    """``ReplicaCalculator.getUsageRatioReplicaCount``: ``Value`` targets (Object, External).

    Within tolerance nothing changes; otherwise ``ceil(ratio * ready pods)``; from zero
    replicas, ``ceil(ratio)``.
    """
    if current_replicas == 0:
        return math.ceil(usage_ratio)
    if _within(usage_ratio, tolerance):
        return current_replicas
    return math.ceil(usage_ratio * ready_pods)


def per_pod_total_replicas(
    current_replicas: int,
    total_usage: int,
    target_per_pod: int,
    *,
    tolerance: float | Tolerances = DEFAULT_TOLERANCE,
) -> int:
    """``GetExternalPerPodMetricReplicas`` / ``GetObjectPerPodMetricReplicas``.

    ``AverageValue`` of an External or Object metric: the total divided by the target
    per pod, ``ceil(total / target)``, unless ``total / (target * current)`` is within
    tolerance.
    """
    if target_per_pod <= 0:
        raise KubepulseValueError(f"the per-pod target must be positive, got {target_per_pod}")
    ratio = total_usage / (target_per_pod * current_replicas) if current_replicas else math.inf
    if _within(ratio, tolerance):
        return current_replicas
    return math.ceil(total_usage / target_per_pod)


# ---------------------------------------------------------------------------- horizontal.go


@dataclass(frozen=True)
class ControllerDecision:
    """One reconcile of :class:`HpaController`.

    Attributes:
        replicas: the count after the step.
        recommendation: the metrics' proposal before stabilisation (``None`` when
            metrics were invalid, or the count was outside min/max and corrected).
        stabilized: the proposal after the stabilisation windows.
        reason: why the step ended where it did.
    """

    replicas: int
    recommendation: int | None
    stabilized: int | None
    reason: DecisionReason


class HpaController:
    """The state the HPA controller keeps per HPA, and its reconcile step.

    It keeps ``recommendations`` (timestamped raw proposals, for the stabilisation
    windows) and scale-up/scale-down events (for the policies' periods), exactly the
    per-key state of ``HorizontalController``. Feed :meth:`reconcile` once per sync
    period in time order.
    """

    def __init__(self, spec: HpaSpec) -> None:
        self.spec = spec
        self._recommendations: list[tuple[int, int]] = []
        self._scale_up_events: list[tuple[int, int]] = []
        self._scale_down_events: list[tuple[int, int]] = []

    def copy(self) -> HpaController:
        """An independent copy, to look ahead without disturbing this one."""
        twin = HpaController(self.spec)
        twin._recommendations = list(self._recommendations)
        twin._scale_up_events = list(self._scale_up_events)
        twin._scale_down_events = list(self._scale_down_events)
        return twin

    def reconcile(
        self, now_ms: int, current_replicas: int, proposal: int | None
    ) -> ControllerDecision:
        """``reconcileAutoscaler`` at ``now_ms`` given the metrics' ``proposal``.

        ``proposal`` is what :meth:`propose_for` (``computeReplicasForMetrics``) returned:
        ``None`` for invalid metrics, which holds the count and records nothing.
        """
        spec = self.spec
        if current_replicas > spec.max_replicas:
            decision = ControllerDecision(
                spec.max_replicas, None, None, DecisionReason.TOO_MANY_REPLICAS
            )
        elif current_replicas < spec.min_replicas:
            decision = ControllerDecision(
                spec.min_replicas, None, None, DecisionReason.TOO_FEW_REPLICAS
            )
        elif proposal is None:
            decision = ControllerDecision(
                current_replicas, None, None, DecisionReason.INVALID_METRICS
            )
        elif spec.scale_up is None or spec.scale_down is None:
            decision = self._normalize_legacy(now_ms, current_replicas, proposal)
        else:
            decision = self._normalize_with_behaviors(
                now_ms, current_replicas, proposal, spec.scale_up, spec.scale_down
            )
        if decision.replicas != current_replicas and spec.has_behavior:
            self._store_scale_event(now_ms, current_replicas, decision.replicas)
        return decision

    @staticmethod
    def propose_for(current_replicas: int, proposals: Sequence[int | None]) -> int | None:
        """``computeReplicasForMetrics`` given the current count.

        Returns the largest proposal; ``None`` when every metric is invalid, or when some
        are invalid and the valid ones would scale down (the controller refuses to scale
        down on partial information).
        """
        valid = [proposal for proposal in proposals if proposal is not None]
        if not valid:
            return None
        replicas = max(valid)
        if len(valid) < len(proposals) and replicas < current_replicas:
            return None
        return replicas

    # -- legacy path (no behavior) ------------------------------------------------

    def _normalize_legacy(
        self, now_ms: int, current_replicas: int, proposal: int
    ) -> ControllerDecision:
        """``normalizeDesiredReplicas``: ``stabilizeRecommendation`` then the legacy rules."""
        cutoff_ms = now_ms - _DOWNSCALE_STABILIZATION_S * 1000
        stabilized = proposal
        old_index: int | None = None
        for index, (stamp_ms, recommendation) in enumerate(self._recommendations):
            if stamp_ms < cutoff_ms:
                old_index = index
            elif recommendation > stabilized:
                stabilized = recommendation
        self._record(old_index, now_ms, proposal)
        spec = self.spec
        scale_up_limit = int(
            max(_LEGACY_SCALE_UP_FACTOR * current_replicas, _LEGACY_SCALE_UP_MINIMUM)
        )
        if spec.max_replicas > scale_up_limit:
            maximum, maximum_reason = scale_up_limit, DecisionReason.SCALE_UP_LIMIT
        else:
            maximum, maximum_reason = spec.max_replicas, DecisionReason.TOO_MANY_REPLICAS
        if stabilized < spec.min_replicas:
            return ControllerDecision(
                spec.min_replicas, proposal, stabilized, DecisionReason.TOO_FEW_REPLICAS
            )
        if stabilized > maximum:
            return ControllerDecision(maximum, proposal, stabilized, maximum_reason)
        if stabilized != proposal:
            reason = DecisionReason.SCALE_DOWN_STABILIZED
        elif stabilized == current_replicas:
            reason = DecisionReason.WITHIN_TOLERANCE
        else:
            reason = DecisionReason.DESIRED_WITHIN_RANGE
        return ControllerDecision(stabilized, proposal, stabilized, reason)

    # -- behavior path -------------------------------------------------------------

    def _normalize_with_behaviors(
        self,
        now_ms: int,
        current_replicas: int,
        proposal: int,
        scale_up: ScalingBehavior,
        scale_down: ScalingBehavior,
    ) -> ControllerDecision:
        """``normalizeDesiredReplicasWithBehaviors``: stabilise, then rate-limit and clamp."""
        stabilized = self._stabilize(now_ms, current_replicas, proposal, scale_up, scale_down)
        replicas, limit_reason = self._rate_limit(
            now_ms, current_replicas, stabilized, scale_up, scale_down
        )
        if limit_reason is not None:
            reason = limit_reason
        elif stabilized > proposal:
            reason = DecisionReason.SCALE_DOWN_STABILIZED
        elif stabilized < proposal:
            reason = DecisionReason.SCALE_UP_STABILIZED
        elif replicas == current_replicas:
            reason = DecisionReason.WITHIN_TOLERANCE
        else:
            reason = DecisionReason.DESIRED_WITHIN_RANGE
        return ControllerDecision(replicas, proposal, stabilized, reason)

    def _stabilize(
        self,
        now_ms: int,
        current_replicas: int,
        proposal: int,
        scale_up: ScalingBehavior,
        scale_down: ScalingBehavior,
    ) -> int:
        """``stabilizeRecommendationWithBehaviors``."""
        up_cutoff_ms = now_ms - scale_up.stabilization_window_seconds * 1000
        down_cutoff_ms = now_ms - scale_down.stabilization_window_seconds * 1000
        up_recommendation = proposal
        down_recommendation = proposal
        old_index: int | None = None
        for index, (stamp_ms, recommendation) in enumerate(self._recommendations):
            if stamp_ms > up_cutoff_ms:
                up_recommendation = min(recommendation, up_recommendation)
            if stamp_ms > down_cutoff_ms:
                down_recommendation = max(recommendation, down_recommendation)
            if stamp_ms < up_cutoff_ms and stamp_ms < down_cutoff_ms:
                old_index = index
        recommendation = max(current_replicas, up_recommendation)
        recommendation = min(recommendation, down_recommendation)
        self._record(old_index, now_ms, proposal)
        return recommendation

    def _record(self, old_index: int | None, now_ms: int, proposal: int) -> None:
        # The controller overwrites one expired sample instead of growing the list.
        if old_index is None:
            self._recommendations.append((now_ms, proposal))
        else:
            self._recommendations[old_index] = (now_ms, proposal)

    @staticmethod
    def _changed_within(events: list[tuple[int, int]], now_ms: int, period_s: int) -> int:
        """``getReplicasChangePerPeriod``: replicas changed after ``now - period``."""
        cutoff_ms = now_ms - period_s * 1000
        return sum(change for stamp_ms, change in events if stamp_ms > cutoff_ms)

    def _period_start(self, now_ms: int, current_replicas: int, period_s: int) -> int:
        added = self._changed_within(self._scale_up_events, now_ms, period_s)
        removed = self._changed_within(self._scale_down_events, now_ms, period_s)
        return current_replicas - added + removed

    def _scale_up_limit(self, now_ms: int, current: int, rules: ScalingBehavior) -> int:
        """``calculateScaleUpLimitWithScalingRules``."""
        if rules.select_policy is SelectPolicy.DISABLED:
            return current
        proposals = []
        for policy in rules.policies:
            start = self._period_start(now_ms, current, policy.period_seconds)
            if policy.type == "Pods":
                proposals.append(start + policy.value)
            else:
                proposals.append(math.ceil(start * (1 + policy.value / 100)))
        if not proposals:
            return current
        return min(proposals) if rules.select_policy is SelectPolicy.MIN else max(proposals)

    def _scale_down_limit(self, now_ms: int, current: int, rules: ScalingBehavior) -> int:
        """``calculateScaleDownLimitWithBehaviors``."""
        if rules.select_policy is SelectPolicy.DISABLED:
            return current
        proposals = []
        for policy in rules.policies:
            start = self._period_start(now_ms, current, policy.period_seconds)
            if policy.type == "Pods":
                proposals.append(start - policy.value)
            else:
                proposals.append(int(start * (1 - policy.value / 100)))
        if not proposals:
            return current
        return max(proposals) if rules.select_policy is SelectPolicy.MIN else min(proposals)

    def _rate_limit(
        self,
        now_ms: int,
        current: int,
        desired: int,
        scale_up: ScalingBehavior,
        scale_down: ScalingBehavior,
    ) -> tuple[int, DecisionReason | None]:
        """``convertDesiredReplicasWithBehaviorRate``."""
        spec = self.spec
        if desired > current:
            limit = max(self._scale_up_limit(now_ms, current, scale_up), current)
            if spec.max_replicas > limit:
                maximum, reason = limit, DecisionReason.SCALE_UP_LIMIT
            else:
                maximum, reason = spec.max_replicas, DecisionReason.TOO_MANY_REPLICAS
            if desired > maximum:
                return maximum, reason
        elif desired < current:
            limit = min(self._scale_down_limit(now_ms, current, scale_down), current)
            if spec.min_replicas < limit:
                minimum, reason = limit, DecisionReason.SCALE_DOWN_LIMIT
            else:
                minimum, reason = spec.min_replicas, DecisionReason.TOO_FEW_REPLICAS
            if desired < minimum:
                return minimum, reason
        return desired, None

    def _store_scale_event(self, now_ms: int, previous: int, replicas: int) -> None:
        """``storeScaleEvent``: remember the change for the policies' periods.

        Events older than the longest policy period can never count again; the
        controller marks and reuses them, here they are dropped.
        """
        spec = self.spec
        assert spec.scale_up is not None
        assert spec.scale_down is not None
        if replicas > previous:
            events, rules, change = self._scale_up_events, spec.scale_up, replicas - previous
        else:
            events, rules, change = self._scale_down_events, spec.scale_down, previous - replicas
        longest_s = max((policy.period_seconds for policy in rules.policies), default=0)
        cutoff_ms = now_ms - longest_s * 1000
        events[:] = [event for event in events if event[0] > cutoff_ms]
        events.append((now_ms, change))


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ServedValue:
    """What kubepulse would serve for the Deployment at one sync step.

    Attributes:
        timestamp_ms: the step.
        value: the statistic averaged over the pods that had a value (the per-pod
            average an HPA ``Pods`` metric reads), in the metric's unit; ``None`` when
            no pod had one (missing, not zero).
        total: the sum over those pods; for utilisation the pods' usage over their
            summed request, in percent (what the controller computes).
        pods_measured: pods with a value in the window.
        pods_missing: pods that existed at the step without a value.
        predicted: with ``predict``, ``value`` forecast ``predict`` ahead from the
            values of the window (``None`` without ``predict`` or with too few points).
    """

    timestamp_ms: int
    value: float | None
    total: float | None
    pods_measured: int
    pods_missing: int
    predicted: float | None = None


@dataclass(frozen=True)
class MetricReading:
    """One replayed metric at one step, as the controller saw it.

    Attributes:
        metric: ``Resource/cpu`` or ``ContainerResource/app/memory``.
        current: utilisation in percent for ``Utilization`` targets, else the average
            per pod in the metric's unit (cores, bytes); ``None`` when invalid.
        target: the target in the same unit.
        proposal: the replica count this metric proposed; ``None`` when invalid.
    """

    metric: str
    current: float | None
    target: float
    proposal: int | None


@dataclass(frozen=True)
class ReplayStep:
    """One reconcile of the replayed controller.

    Attributes:
        timestamp_ms: the step.
        observed_replicas: pods of the Deployment that existed then (measured or not).
        replicas_before: the simulated count going into the step.
        replicas: the simulated count after it.
        recommendation: the metrics' proposal before stabilisation.
        stabilized: the proposal after the stabilisation windows.
        reason: why the step ended there.
        readings: each replayed metric.
    """

    timestamp_ms: int
    observed_replicas: int
    replicas_before: int
    replicas: int
    recommendation: int | None
    stabilized: int | None
    reason: DecisionReason
    readings: tuple[MetricReading, ...] = ()


@dataclass(frozen=True)
class ScalingEvent:
    """A change of the replica count.

    Attributes:
        timestamp_ms: when the controller changes the count.
        from_replicas: before.
        to_replicas: after.
        direction: up or down.
        reason: the step's reason (e.g. ``ScaleUpLimit`` when a policy capped it).
    """

    timestamp_ms: int
    from_replicas: int
    to_replicas: int
    direction: EventDirection
    reason: DecisionReason


@dataclass(frozen=True)
class HpaReplay:
    """The replay of the controller over the history, and what it does next.

    Attributes:
        on_forecasts: whether the controller was fed forecasts (``predict`` ahead)
            rather than the measured values.
        steps: every reconcile, oldest first.
        events: the steps that changed the count.
        final_replicas: the count at the end of the history; ``None`` without steps.
        next_event: the next change from the end of the history on, continuing the
            loop every sync period for up to 30 minutes: on the last measured load held
            constant, or (``on_forecasts``) on the load's trend; ``None`` when the count
            stays put for that long, or when the last load is unknown (missing).
        next_event_basis: how ``next_event`` was projected, in words.
    """

    on_forecasts: bool
    steps: tuple[ReplayStep, ...]
    events: tuple[ScalingEvent, ...]
    final_replicas: int | None
    next_event: ScalingEvent | None
    next_event_basis: str


@dataclass(frozen=True)
class HpaMetricsReport:
    """:func:`generate_hpa_metrics`' answer for one Deployment.

    Attributes:
        namespace: the Deployment's namespace.
        deployment: its name.
        metric_type: the metric served.
        unit: ``cores``, ``bytes`` or ``percent``.
        aggregation: the statistic, canonical name (``avg``, ``p95``).
        window: the window each value is computed over, as a duration.
        predict: the forecast horizon, or ``None``.
        forecast_model: ``linear`` or ``holt``.
        sync_period: the controller's sync period the steps follow.
        hpa_source: whether an HPA of the cluster was replayed or the default one.
        hpa: the replayed HPA with the controller's defaults applied.
        pods: the Deployment's pods found (snapshot and history), sorted.
        served: the served values, one per step.
        latest_per_pod: each pod's value at the last step (``None``: missing).
        replay: the replay on measured values.
        forecast_replay: the replay on forecasts, with ``predict`` only.
        unreplayed_metrics: HPA metrics the replay could not use (no history for
            ``Pods``, ``Object`` and ``External`` metrics): it ran on the others.
        notes: missing data and assumptions that matter for reading the figures.
    """

    namespace: str
    deployment: str
    metric_type: MetricType
    unit: str
    aggregation: str
    window: str
    predict: str | None
    forecast_model: str
    sync_period: str
    hpa_source: HpaSource
    hpa: HpaSpec
    pods: tuple[str, ...]
    served: tuple[ServedValue, ...]
    latest_per_pod: Mapping[str, float | None]
    replay: HpaReplay
    forecast_replay: HpaReplay | None
    unreplayed_metrics: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------- pods


@dataclass(frozen=True)
class _DeploymentPod:
    name: str
    pod: Pod | None  # None: only in history (gone by the snapshot)
    exists_from_ms: int | None
    exists_until_ms: int | None


def _deployment_of(pod: Pod) -> str | None:
    """The Deployment of ``pod`` by the ReplicaSet naming convention, or ``None``."""
    owner = pod.controller_owner
    if owner is None or owner.kind != "ReplicaSet":
        return None
    template_hash = pod.labels.get(_POD_TEMPLATE_HASH)
    if not template_hash or not owner.name.endswith(f"-{template_hash}"):
        return None
    return owner.name[: -len(template_hash) - 1]


def _resolve_pods(
    snapshot: ClusterSnapshot, history: UsageHistory, namespace: str, deployment: str
) -> list[_DeploymentPod]:
    """The Deployment's pods: owned ones from the snapshot, gone ones from history."""
    namespace_pods = snapshot.pods_in(namespace)
    if not namespace_pods:
        known = snapshot.namespace_names()
        if namespace not in known:
            raise UnknownObjectError(
                f"namespace {namespace!r} not found; known namespaces: "
                f"{', '.join(known) or '(none)'}"
            )
    owned: dict[str, Pod] = {}
    deployments: set[str] = set()
    for pod in namespace_pods:
        name = _deployment_of(pod)
        if name is None:
            continue
        deployments.add(name)
        if name == deployment:
            owned[pod.name] = pod
    if not owned:
        raise UnknownObjectError(
            f"deployment {deployment!r} not found in namespace {namespace!r} (no pod is "
            f"owned by one of its ReplicaSets); deployments with pods there: "
            f"{', '.join(sorted(deployments)) or '(none)'}"
        )
    # Pods gone by the snapshot still have history: match their generated names.
    gone_pattern = re.compile(rf"{re.escape(deployment)}-[{_SAFE}]{{6,10}}-[{_SAFE}]{{5}}")
    present = {pod.name for pod in namespace_pods}  # another owner's pods are not ours
    first_ms: dict[str, int] = {}
    last_ms: dict[str, int] = {}
    for series_map in (history.cpu_cores, history.memory_working_set_bytes):
        for ref, series in series_map.items():
            if ref.namespace != namespace or not series.timestamps_ms:
                continue
            if ref.pod not in owned and (ref.pod in present or not gone_pattern.fullmatch(ref.pod)):
                continue
            first_ms[ref.pod] = min(
                first_ms.get(ref.pod, series.timestamps_ms[0]), series.timestamps_ms[0]
            )
            last_ms[ref.pod] = max(
                last_ms.get(ref.pod, series.timestamps_ms[-1]), series.timestamps_ms[-1]
            )
    result: list[_DeploymentPod] = []
    for name in sorted(set(owned) | set(first_ms)):
        current = owned.get(name)
        if current is not None:
            start = current.creation_ms if current.creation_ms is not None else current.start_ms
            if start is None:
                start = first_ms.get(name)
            until = current.deletion_ms
            if current.phase in ("Succeeded", "Failed", "Pending"):
                # groupPods: a Failed (evicted) pod is ignored, not missing, and so is a
                # Pending one on a scale-down (unready). Such a pod counts only while it
                # reported, and never without a sample.
                until = last_ms.get(name, -1)
            result.append(_DeploymentPod(name, current, start, until))
        else:
            result.append(_DeploymentPod(name, None, first_ms[name], last_ms[name]))
    return result


def _pod_series(
    per_container: Mapping[ContainerRef, TimeSeries],
    namespace: str,
    pod_names: Collection[str],
    container: str | None,
) -> dict[str, TimeSeries]:
    """Each pod's series: one container's, or the sum over its containers.

    Containers are summed at the timestamps every one of them has, so that a missing
    container sample never makes the pod look lighter than it was.
    """
    grouped: dict[str, list[TimeSeries]] = {}
    for ref, series in per_container.items():
        if ref.namespace != namespace or ref.pod not in pod_names:
            continue
        if container is not None and ref.container != container:
            continue
        grouped.setdefault(ref.pod, []).append(series)
    result: dict[str, TimeSeries] = {}
    for pod, parts in grouped.items():
        if len(parts) == 1:
            result[pod] = parts[0]
            continue
        common = set(parts[0].timestamps_ms)
        for part in parts[1:]:
            common.intersection_update(part.timestamps_ms)
        totals = dict.fromkeys(common, 0.0)
        for part in parts:
            for stamp, value in part:
                if stamp in totals:
                    totals[stamp] += value
        result[pod] = TimeSeries.of(totals.items())
    return result


def _pod_request_milli(pod: Pod, resource: str, container: str | None) -> int | None:
    """``calculateRequests`` (replica_calculator.go): a pod's request in milli-units.

    Pod-level requests when the pod sets them (and no container is named); otherwise
    the sum over the app containers and the sidecars (restartable init containers), or
    the named container's. ``None`` when a container has none (the controller fails with
    ``missing request for <resource>``) or the named container does not exist.
    """
    if container is None:
        pod_level = pod.pod_requests.get(resource)
        if pod_level is not None:
            return math.ceil(pod_level * _MILLI)
    total = 0
    found = False
    for spec in (*pod.containers, *(init for init in pod.init_containers if init.is_sidecar)):
        if container is not None and spec.name != container:
            continue
        amount = spec.requests.get(resource)
        if amount is None:
            return None
        total += math.ceil(amount * _MILLI)  # Quantity.MilliValue rounds up
        found = True
    return total if found or container is None else None


def _to_milli(value: float) -> int:
    """``value`` in whole milli-units, rounded half up.

    The rounding to 6 places first keeps ``0.1 * 1000`` from landing just off 100
    through binary floating point.
    """
    return math.floor(round(value * _MILLI, 6) + 0.5)


# ---------------------------------------------------------------------------- replay inputs


@dataclass
class _MetricFeed:
    """One replayable HPA metric: its per-step demand, measured share and request."""

    label: str
    metric: HpaMetric
    resource: str
    demand: list[float | None]  # per step: load in the resource's unit, None: no value
    missing_share: list[float]  # per step: share of existing pods without a value
    request_milli: int | None  # per pod, for Utilization targets


_Evaluation = tuple[dict[str, float], int]
"""One step: the pods' values (pods without one left out) and how many pods existed."""


def _evaluate_step(
    series: Mapping[str, TimeSeries],
    pods: Sequence[_DeploymentPod],
    aggregation: Aggregation,
    start_ms: int,
    end_ms: int,
) -> tuple[dict[str, float], int]:
    """The pods' statistic over ``(start_ms, end_ms]`` and how many pods existed."""
    values: dict[str, float] = {}
    existing = 0
    for pod in pods:
        one = series.get(pod.name)
        value = None
        if one is not None:
            low = bisect.bisect_right(one.timestamps_ms, start_ms)
            high = bisect.bisect_right(one.timestamps_ms, end_ms)
            if high > low:
                value = exact_evaluate(
                    aggregation,
                    SeriesKind.GAUGE,
                    one.timestamps_ms[low:high],
                    one.values[low:high],
                )
        if value is not None:
            values[pod.name] = value
            existing += 1
            continue
        began = pod.exists_from_ms
        ended = pod.exists_until_ms
        if (began is None or began <= end_ms) and (ended is None or ended >= end_ms):
            existing += 1
    return values, existing


def _fit(
    model: str, stamps: Sequence[int], values: Sequence[float], horizon_ms: int
) -> Forecast | None:
    fit = forecast_holt if model == "holt" else forecast_linear
    try:
        return fit(stamps, values, horizon_ms)
    except InsufficientDataError:
        return None


def _forecast_at(
    stamps: Sequence[int],
    values: Sequence[float | None],
    index: int,
    *,
    lookback_ms: int,
    horizon_ms: int,
    model: str,
) -> float | None:
    """Forecast of ``values`` ``horizon_ms`` after ``stamps[index]``, from its lookback."""
    end_ms = stamps[index]
    low = bisect.bisect_left(stamps, end_ms - lookback_ms, 0, index + 1)
    points = [(stamps[i], value) for i in range(low, index + 1) if (value := values[i]) is not None]
    if not points:
        return None
    forecast = _fit(
        model,
        [stamp for stamp, _ in points],
        [value for _, value in points],
        end_ms + horizon_ms - points[-1][0],
    )
    if forecast is None:
        return None
    # As the adapter serves it: a load never below zero.
    return max(0.0, forecast.value)


def _metric_label(metric: HpaMetric) -> str:
    if metric.source == "ContainerResource":
        return f"ContainerResource/{metric.container}/{metric.name}"
    return f"{metric.source}/{metric.name}"


# ---------------------------------------------------------------------------- replay


def _propose(
    feed: _MetricFeed,
    step: int,
    replicas: int,
    demand: float | None,
    tolerance: Tolerances,
) -> MetricReading:
    """The metric's proposal with ``replicas`` simulated pods sharing ``demand``."""
    target = feed.metric.target
    label = feed.label
    unit_target: float
    if target.type == "Utilization":
        unit_target = float(target.average_utilization or 0)
    else:
        unit_target = float(target.average_value or 0)
    if demand is None or replicas <= 0:
        return MetricReading(label, None, unit_target, None)
    missing_count = min(replicas, math.ceil(replicas * feed.missing_share[step] - 1e-9))
    measured_count = replicas - missing_count
    if measured_count == 0:
        return MetricReading(label, None, unit_target, None)
    # The measured pods carry their share of the load, in whole milli-units that add up
    # to it (so that the rounding never invents load): 200 over 3 pods is 67, 67, 66.
    measured_milli = _to_milli(demand * measured_count / replicas)
    base, extra = divmod(measured_milli, measured_count)
    metrics = {f"p{i}": base + (1 if i < extra else 0) for i in range(measured_count)}
    missing = [f"m{i}" for i in range(missing_count)]
    if target.type == "Utilization":
        if feed.request_milli is None or not target.average_utilization:
            return MetricReading(label, None, unit_target, None)
        requests = dict.fromkeys((*metrics, *missing), feed.request_milli)
        answer = resource_replicas(
            replicas, target.average_utilization, metrics, requests, missing, tolerance=tolerance
        )
        if answer is None:
            return MetricReading(label, None, unit_target, None)
        return MetricReading(label, float(answer[1]), unit_target, answer[0])
    target_milli = _to_milli(float(target.average_value or 0))
    plain = plain_metric_replicas(replicas, target_milli, metrics, missing, tolerance=tolerance)
    if plain is None:
        return MetricReading(label, None, unit_target, None)
    return MetricReading(label, plain[1] / _MILLI, unit_target, plain[0])


_Projection = Callable[[int], float]
"""A projected load at a future step's timestamp."""


def _tolerances(spec: HpaSpec) -> Tolerances:
    if spec.scale_up is None or spec.scale_down is None:
        return Tolerances()
    return Tolerances(scale_down=spec.scale_down.tolerance, scale_up=spec.scale_up.tolerance)


def _step(
    controller: HpaController,
    feeds: Sequence[_MetricFeed],
    step: int,
    *,
    now_ms: int,
    replicas: int,
    demands: Sequence[float | None],
) -> tuple[ControllerDecision, tuple[MetricReading, ...]]:
    """One sync: every metric's proposal, ``computeReplicasForMetrics``, reconcile."""
    tolerances = _tolerances(controller.spec)
    readings = tuple(
        _propose(feed, step, replicas, demand, tolerances)
        for feed, demand in zip(feeds, demands, strict=True)
    )
    proposal = HpaController.propose_for(replicas, [reading.proposal for reading in readings])
    return controller.reconcile(now_ms, replicas, proposal), readings


def _event(before: int, decision: ControllerDecision, now_ms: int) -> ScalingEvent:
    return ScalingEvent(
        timestamp_ms=now_ms,
        from_replicas=before,
        to_replicas=decision.replicas,
        direction=EventDirection.UP if decision.replicas > before else EventDirection.DOWN,
        reason=decision.reason,
    )


def _replay(
    spec: HpaSpec,
    feeds: Sequence[_MetricFeed],
    stamps: Sequence[int],
    *,
    observed: Sequence[int],
    demand_of: Sequence[Sequence[float | None]],
    future_demand: Sequence[_Projection | None],
    on_forecasts: bool,
    sync_ms: int,
    basis: str,
) -> HpaReplay:
    """Run the controller over the steps, then look ahead for the next event.

    ``demand_of[m][i]`` is metric ``m``'s load at step ``i``; ``future_demand[m]``
    projects metric ``m``'s load to a future timestamp (``None``: no projection, so no
    next event is predicted). The simulation starts from the pods observed at the first
    step (``minReplicas`` when none).
    """
    controller = HpaController(spec)
    steps: list[ReplayStep] = []
    events: list[ScalingEvent] = []
    replicas: int | None = None
    for index, now_ms in enumerate(stamps):
        if replicas is None:
            replicas = observed[index] or spec.min_replicas
        decision, readings = _step(
            controller,
            feeds,
            index,
            now_ms=now_ms,
            replicas=replicas,
            demands=[column[index] for column in demand_of],
        )
        steps.append(
            ReplayStep(
                timestamp_ms=now_ms,
                observed_replicas=observed[index],
                replicas_before=replicas,
                replicas=decision.replicas,
                recommendation=decision.recommendation,
                stabilized=decision.stabilized,
                reason=decision.reason,
                readings=readings,
            )
        )
        if decision.replicas != replicas:
            events.append(_event(replicas, decision, now_ms))
        replicas = decision.replicas
    next_event = None
    projections = [project for project in future_demand if project is not None]
    if replicas is not None and feeds and len(projections) == len(feeds):
        next_event = _next_event(
            controller.copy(),
            feeds,
            end_ms=stamps[-1],
            replicas=replicas,
            projections=projections,
            sync_ms=sync_ms,
        )
    return HpaReplay(
        on_forecasts=on_forecasts,
        steps=tuple(steps),
        events=tuple(events),
        final_replicas=replicas,
        next_event=next_event,
        next_event_basis=basis,
    )


def _next_event(
    controller: HpaController,
    feeds: Sequence[_MetricFeed],
    *,
    end_ms: int,
    replicas: int,
    projections: Sequence[_Projection],
    sync_ms: int,
) -> ScalingEvent | None:
    """Keep reconciling past the history until the count changes (30 minutes at most).

    The future is assumed fully measured (no missing pods).
    """
    future = [
        _MetricFeed(feed.label, feed.metric, feed.resource, [], [0.0], feed.request_milli)
        for feed in feeds
    ]
    for offset_ms in range(sync_ms, _LOOKAHEAD_MS + 1, sync_ms):
        now_ms = end_ms + offset_ms
        decision, _ = _step(
            controller,
            future,
            0,
            now_ms=now_ms,
            replicas=replicas,
            demands=[project(now_ms) for project in projections],
        )
        if decision.replicas != replicas:
            return _event(replicas, decision, now_ms)
    return None


def _trend(
    stamps: Sequence[int],
    demand: Sequence[float | None],
    *,
    lookback_ms: int,
    predict_ms: int,
    model: str,
) -> _Projection | None:
    """A projection ``now_ms -> load at now_ms + predict_ms`` fitted on the last lookback.

    Both models extrapolate along a straight line (the fitted slope; Holt's last level
    and trend), so one fit gives the whole projection. ``None`` without enough points.
    """
    if not stamps:
        return None
    end_ms = stamps[-1]
    points = [
        (stamp, value)
        for stamp, value in zip(stamps, demand, strict=True)
        if value is not None and stamp >= end_ms - lookback_ms
    ]
    forecast = _fit(model, [s for s, _ in points], [v for _, v in points], 0)
    if forecast is None:
        return None
    per_second = forecast.parameters["slope" if model == "linear" else "trend_per_second"]
    base_ms = forecast.target_ms
    base = forecast.value

    def project(now_ms: int) -> float:
        return max(0.0, base + per_second * (now_ms + predict_ms - base_ms) / 1000.0)

    return project


# ---------------------------------------------------------------------------- entry point


def _parse_metric_type(text: str) -> MetricType:
    for kind in MetricType:
        if kind.value == text:
            return kind
    raise KubepulseValueError(
        f"unknown metric_type {text!r}; valid: {', '.join(kind.value for kind in MetricType)}"
    )


def _find_hpa(
    autoscalers: Sequence[Mapping[str, Any]], namespace: str, deployment: str
) -> tuple[HorizontalPodAutoscaler | None, int]:
    """The HPA on the Deployment (first by name) and how many there are."""
    found = []
    for raw in autoscalers:
        hpa = HorizontalPodAutoscaler.from_api(raw)
        if hpa.namespace == namespace and hpa.scales("Deployment", deployment):
            found.append(hpa)
    found.sort(key=lambda hpa: hpa.name)
    return (found[0] if found else None), len(found)


def _step_stamps(start_ms: int, end_ms: int, sync_ms: int) -> list[int]:
    """Sync steps ending exactly at ``end_ms``, the first one sync period after the start."""
    count = (end_ms - start_ms) // sync_ms
    return [end_ms - (count - i) * sync_ms for i in range(1, count + 1)]


@dataclass(frozen=True)
class _Settings:
    kind: MetricType
    aggregation: Aggregation
    window_ms: int
    predict_ms: int | None
    model: str
    sync_ms: int

    @property
    def lookback_ms(self) -> int:
        """How far back forecasts fit: the window, at least four sync steps."""
        return max(self.window_ms, _MIN_FIT_STEPS * self.sync_ms)


def _served_values(
    settings: _Settings,
    pods: Sequence[_DeploymentPod],
    evaluations: Sequence[_Evaluation],
    stamps: Sequence[int],
) -> tuple[list[ServedValue], dict[str, float | None], bool]:
    """The served timeline, each pod's value at the last step, whether a request lacked."""
    kind = settings.kind
    requests = {
        pod.name: _pod_request_milli(pod.pod, kind.resource, None)
        for pod in pods
        if pod.pod is not None
    }

    def shown(pod: str, raw: float) -> float | None:
        if not kind.is_utilization:
            return raw
        request = requests.get(pod)
        return raw * _MILLI * 100 / request if request else None

    served: list[ServedValue] = []
    latest: dict[str, float | None] = {}
    last_values: dict[str, float] = {}
    for now_ms, (values, existing) in zip(stamps, evaluations, strict=True):
        if kind.is_utilization:
            usable = {pod: value for pod, value in values.items() if requests.get(pod)}
            request_total = sum(requests[pod] or 0 for pod in usable)
            total = (
                math.fsum(usable.values()) * _MILLI * 100 / request_total if request_total else None
            )
            value = total
        else:
            total = math.fsum(values.values()) if values else None
            value = None if total is None else total / len(values)
        served.append(ServedValue(now_ms, value, total, len(values), existing - len(values)))
        last_values = values
    if stamps:
        latest = {pod.name: None for pod in pods}
        latest.update((pod, shown(pod, raw)) for pod, raw in last_values.items())
    if settings.predict_ms is not None:
        values_only = [item.value for item in served]
        served = [
            dataclasses.replace(
                item,
                predicted=_forecast_at(
                    stamps,
                    values_only,
                    index,
                    lookback_ms=settings.lookback_ms,
                    horizon_ms=settings.predict_ms,
                    model=settings.model,
                ),
            )
            for index, item in enumerate(served)
        ]
    lacking = kind.is_utilization and any(request is None for request in requests.values())
    return served, latest, lacking


def _metric_feed(
    metric: HpaMetric,
    pods: Sequence[_DeploymentPod],
    evaluations: Sequence[_Evaluation],
    *,
    observed: list[int],
) -> _MetricFeed:
    """One replayable metric's load per step; raises ``observed`` to the pods seen."""
    container = metric.container if metric.source == "ContainerResource" else None
    request_counts = Counter(
        _pod_request_milli(pod.pod, metric.name, container) for pod in pods if pod.pod is not None
    )
    # Pods of one template share requests; after a rollout the most common one wins.
    request_milli = request_counts.most_common(1)[0][0] if request_counts else None
    demand: list[float | None] = []
    missing_share: list[float] = []
    for index, (values, existing) in enumerate(evaluations):
        observed[index] = max(observed[index], existing)
        if values:
            demand.append(math.fsum(values.values()) / len(values) * existing)
            missing_share.append((existing - len(values)) / existing)
        else:
            demand.append(None)
            missing_share.append(1.0)
    return _MetricFeed(
        _metric_label(metric), metric, metric.name, demand, missing_share, request_milli
    )


def _is_replayable(metric: HpaMetric) -> bool:
    return (
        metric.source in ("Resource", "ContainerResource")
        and metric.name in ("cpu", "memory")
        and metric.target.type in ("Utilization", "AverageValue")
    )


def _parse_settings(
    metric_type: str,
    aggregation: str,
    window: str,
    *,
    predict: str | None,
    forecast_model: str,
    sync_period: str,
) -> _Settings:
    kind = _parse_metric_type(metric_type)
    parsed = parse_aggregation(aggregation)
    window_ms = parse_window(window, _WINDOW_MIN_MS, _WINDOW_MAX_MS)
    predict_ms = None if predict is None else parse_window(predict, 1_000, _PREDICT_MAX_MS)
    if forecast_model not in ("linear", "holt"):
        raise KubepulseValueError(f"unknown forecast_model {forecast_model!r}; valid: linear, holt")
    sync_ms = parse_window(sync_period, 1_000, 600_000)
    return _Settings(kind, parsed, window_ms, predict_ms, forecast_model, sync_ms)


def generate_hpa_metrics(
    snapshot: ClusterSnapshot,
    history: UsageHistory,
    *,
    namespace: str,
    deployment: str,
    metric_type: str = "cpu",
    aggregation: str = "avg",
    autoscalers: Sequence[Mapping[str, Any]] = (),
    window: str = "1m",
    predict: str | None = None,
    forecast_model: str = "linear",
    sync_period: str = "15s",
) -> HpaMetricsReport:
    """The values an HPA on ``deployment`` would be served, and a replay of the HPA.

    The Deployment's pods are found without reading ReplicaSets: a pod belongs to
    Deployment ``D`` when its controller owner is a ReplicaSet named
    ``D-<pod-template-hash>`` (the pod's ``pod-template-hash`` label), the Deployment
    controller's naming convention. Pods already gone by the snapshot are matched in the
    history by their generated names (``D-<hash>-<5 characters>``).

    ``metric_type`` ``cpu`` / ``memory`` serves usage (cores, bytes: ``cpu_cores`` and
    ``memory_working_set_bytes`` summed over each pod's containers);
    ``cpu-utilization`` / ``memory-utilization`` serves it in percent of the pods'
    request. ``aggregation`` is any of :func:`kubepulse.stats.parse_aggregation`'s,
    computed over ``window`` (30 s to 24 h) at each sync step (``sync_period``, the
    controller's 15 s by default). ``predict`` (a horizon such as ``2m``) adds forecasts
    with ``forecast_model`` (``linear`` or ``holt``, as ``kubepulse.io/model``), fitted
    on the last ``max(window, 4 sync periods)`` of values, and a second replay on them.

    The replay runs the HPA in ``autoscalers`` (raw ``autoscaling/v2`` objects) whose
    target is this Deployment, with the controller's defaults; its ``Resource`` and
    ``ContainerResource`` metrics on ``cpu`` and ``memory`` are replayed from history
    with this ``aggregation`` and ``window`` (the real controller reads metrics-server's
    latest value: ``last`` over ``1m`` comes closest); others are listed in
    ``unreplayed_metrics``. Without such an HPA the replay uses the API's defaults
    (``hpa_source="default"``): min 1, max 10, 80 % utilisation of the metric's
    resource, no ``behavior``. There are deliberately no parameters to override them:
    to replay another HPA, pass it in ``autoscalers``.

    Raises:
        UnknownObjectError: the namespace or the Deployment is unknown; the message lists
            the known ones.
        KubepulseValueError: a bad metric type, aggregation, window, horizon, model or
            sync period, or an HPA the API would reject.
    """
    settings = _parse_settings(
        metric_type,
        aggregation,
        window,
        predict=predict,
        forecast_model=forecast_model,
        sync_period=sync_period,
    )
    kind = settings.kind
    pods = _resolve_pods(snapshot, history, namespace, deployment)
    pod_names = {pod.name for pod in pods}
    hpa, hpa_count = _find_hpa(autoscalers, namespace, deployment)
    notes: list[str] = []
    if hpa is None:
        spec = default_spec(kind.resource)
        notes.append(
            f"no HPA targets Deployment {deployment}: replayed the default HPA (min 1, "
            f"max 10, 80 % {kind.resource} utilisation, no behavior)"
        )
    else:
        spec = hpa_spec_from_model(hpa)
        if hpa_count > 1:
            notes.append(
                f"{hpa_count} HPAs target Deployment {deployment}: the controller refuses "
                f"to act on any of them (AmbiguousSelector); replayed {hpa.name}"
            )
    stamps = _step_stamps(history.start_ms, history.end_ms, settings.sync_ms)
    if not stamps:
        notes.append("the history is shorter than one sync period: nothing to serve or replay")

    cache: dict[tuple[str, str | None], Sequence[_Evaluation]] = {}

    def evaluations_of(resource: str, container: str | None) -> Sequence[_Evaluation]:
        # Each (resource, container) is evaluated once, whoever asks for it.
        key = (resource, container)
        if key not in cache:
            usage = history.cpu_cores if resource == "cpu" else history.memory_working_set_bytes
            series = _pod_series(usage, namespace, pod_names, container)
            cache[key] = [
                _evaluate_step(
                    series, pods, settings.aggregation, now_ms - settings.window_ms, now_ms
                )
                for now_ms in stamps
            ]
        return cache[key]

    served, latest, lacking = _served_values(
        settings, pods, evaluations_of(kind.resource, None), stamps
    )
    if any(item.pods_missing for item in served):
        notes.append(
            "some pods had no value at some steps: counted as missing (never as zero) "
            "and handled as the controller handles pods without metrics"
        )
    if lacking:
        notes.append(
            f"some pods have no {kind.resource} request: they have no utilisation, and an "
            "HPA on utilisation fails for them (missing request)"
        )

    feeds: list[_MetricFeed] = []
    unreplayed: list[str] = []
    observed = [item.pods_measured + item.pods_missing for item in served]
    for metric in spec.metrics:
        if not _is_replayable(metric):
            unreplayed.append(_metric_label(metric))
            continue
        container = metric.container if metric.source == "ContainerResource" else None
        feed = _metric_feed(
            metric,
            pods,
            evaluations_of(metric.name, container),
            observed=observed,
        )
        if metric.target.type == "Utilization" and feed.request_milli is None:
            notes.append(
                f"{feed.label}: the Deployment's pods have no {metric.name} request, so the "
                "controller cannot compute utilisation: the metric is invalid at every step"
            )
        feeds.append(feed)
    if unreplayed:
        notes.append("not replayed (kubepulse has no history for them): " + ", ".join(unreplayed))

    replay = _replay(
        spec,
        feeds,
        stamps,
        observed=observed,
        demand_of=[feed.demand for feed in feeds],
        future_demand=[_held(feed.demand) for feed in feeds],
        on_forecasts=False,
        sync_ms=settings.sync_ms,
        basis="the last measured load, held constant",
    )
    forecast_replay = None
    if settings.predict_ms is not None:
        forecast_replay = _forecast_replay(spec, feeds, stamps, observed, settings)

    return HpaMetricsReport(
        namespace=namespace,
        deployment=deployment,
        metric_type=kind,
        unit=kind.unit,
        aggregation=settings.aggregation.name,
        window=format_duration(settings.window_ms),
        predict=None if settings.predict_ms is None else format_duration(settings.predict_ms),
        forecast_model=settings.model,
        sync_period=format_duration(settings.sync_ms),
        hpa_source=HpaSource.DEFAULT if hpa is None else HpaSource.HPA,
        hpa=spec,
        pods=tuple(sorted(pod_names)),
        served=tuple(served),
        latest_per_pod=MappingProxyType(latest),
        replay=replay,
        forecast_replay=forecast_replay,
        unreplayed_metrics=tuple(unreplayed),
        notes=tuple(notes),
    )


def _held(demand: Sequence[float | None]) -> _Projection | None:
    last = demand[-1] if demand else None
    if last is None:
        return None
    held = last
    return lambda _now_ms: held


def _forecast_replay(
    spec: HpaSpec,
    feeds: Sequence[_MetricFeed],
    stamps: Sequence[int],
    observed: Sequence[int],
    settings: _Settings,
) -> HpaReplay:
    """The replay with every step's load replaced by its forecast ``predict`` ahead."""
    assert settings.predict_ms is not None
    forecasts = [
        [
            _forecast_at(
                stamps,
                feed.demand,
                index,
                lookback_ms=settings.lookback_ms,
                horizon_ms=settings.predict_ms,
                model=settings.model,
            )
            for index in range(len(stamps))
        ]
        for feed in feeds
    ]
    trends = [
        _trend(
            stamps,
            feed.demand,
            lookback_ms=settings.lookback_ms,
            predict_ms=settings.predict_ms,
            model=settings.model,
        )
        for feed in feeds
    ]
    return _replay(
        spec,
        feeds,
        stamps,
        observed=observed,
        demand_of=forecasts,
        future_demand=trends,
        on_forecasts=True,
        sync_ms=settings.sync_ms,
        basis=(
            f"the {settings.model} trend of the last {format_duration(settings.lookback_ms)} "
            f"of load, read {format_duration(settings.predict_ms)} ahead of each step"
        ),
    )

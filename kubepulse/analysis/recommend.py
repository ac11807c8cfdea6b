"""Requests and limits per container: the VPA recommender's estimate, made HPA-aware.

Why another recommender: the Vertical Pod Autoscaler's recommender is the reference
everybody compares against, so the engine here reproduces its arithmetic exactly
(:func:`vpa_estimate`) and then fixes the three things it gets wrong for a platform
engineer reading a report rather than a controller acting on it:

1. **HPA-aware CPU (and memory).** A workload scaled by an HPA on CPU utilisation has its
   replica count chosen so that ``usage / request`` sits at the HPA's target. The VPA
   rule (request = p90 usage + 15 %) makes utilisation ~87 %, above an 80 % target, so
   the HPA adds replicas, per-replica usage falls, the next VPA round shrinks the
   request again: the *shrinking spiral*. Here such a request is anchored on the HPA:
   ``request = per-replica usage percentile / target utilisation``, which is the fixed
   point at which the HPA neither scales out nor in, and never less than what lets
   ``maxReplicas`` carry the peak total load at the target. The result says so
   (:class:`HpaInfluence`).
2. **Start-up separated from steady state.** Samples in the first
   :data:`STARTUP_WINDOW_MS` after a container (re)started (``state.running.startedAt``
   and ``lastState.terminated.startedAt``) do not feed the request histograms; their
   peaks are reported apart (:class:`StartupPeaks`) and only size the memory limit,
   which must hold the start-up peak because memory cannot be throttled.
3. **A confidence for every figure, and a ready-to-apply change**: a strategic merge
   patch per workload and the ``kubectl patch`` command line that applies it.

The VPA constants, as in ``kubernetes/autoscaler`` (``vertical-pod-autoscaler``):

- ``pkg/recommender/model/aggregations_config.go``: exponential histograms whose buckets
  grow by 5 % (``DefaultHistogramBucketSizeGrowth = 0.05``); CPU from 0.001 core to
  1000 cores, memory from 1e7 bytes to 1e12 bytes; decay half-life 24 h for both
  (``DefaultCPUHistogramDecayHalfLife``, ``DefaultMemoryHistogramDecayHalfLife``); memory
  enters as one peak per 24 h interval (``DefaultMemoryAggregationInterval``);
  ``minSampleWeight = 0.1``; OOM bump ``DefaultOOMBumpUpRatio = 1.2`` and
  ``DefaultOOMMinBumpUp = 100 * 1024 * 1024``.
- ``pkg/recommender/model/aggregate_container_state.go``: a CPU sample weighs
  ``max(request cores, minSampleWeight)``, a memory peak weighs 1.
- ``pkg/recommender/model/container.go`` (``RecordOOM``): an OOM kill adds the memory
  sample ``max(used + 100Mi, used * 1.2)`` with ``used = max(request, interval peak)``.
- ``pkg/recommender/logic/recommender.go``: target p90 CPU and p90 memory, lower bound
  p50, upper bound p95, ``recommendation-margin-fraction = 0.15`` on all three, pod
  minimum 25 millicores and 250 MiB split evenly between containers; upper bound times
  ``(1 + 1/confidence)``, lower bound times ``(1 + 0.001/confidence)^-2``.
- ``pkg/recommender/logic/estimator.go`` (``getConfidence``): confidence =
  ``min(days between first and last sample, samples / 1440)``.
- ``pkg/recommender/util/histogram.go``: a percentile is the *end* of the bucket where
  the cumulative weight first reaches ``percentile * total weight``.

The ``balanced`` target is exactly the VPA's target; ``performance`` and ``cost`` change
the percentiles and margins (:data:`TARGET_POLICIES`). Confidences are reported in
``[0, 1]`` as ``c / (1 + c)`` of the VPA confidence ``c``: the ratio between the VPA's
estimate and its confidence-widened upper bound (1 day of history gives 0.5, a week
0.875).

Absent history is reported as missing (:class:`MissingHistory`), never guessed: a
container without a CPU series gets no CPU figure. Pure: no I/O.
"""

from __future__ import annotations

import bisect
import enum
import json
import math
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from kubepulse.analysis.fragmentation import RepackResult, repack
from kubepulse.analysis.inputs import ClusterSnapshot, ContainerRef, TimeSeries, UsageHistory
from kubepulse.analysis.limits import WorkloadRef, resolve_workload
from kubepulse.analysis.listing import Truncation, check_top
from kubepulse.errors import KubepulseValueError
from kubepulse.model import ContainerSpec, HorizontalPodAutoscaler, Pod
from kubepulse.quantity import format_quantity

__all__ = [
    "CPU_HISTOGRAM",
    "MEMORY_HISTOGRAM",
    "STARTUP_WINDOW_MS",
    "TARGET_POLICIES",
    "Change",
    "ContainerRecommendation",
    "DecayingHistogram",
    "Figure",
    "HistogramOptions",
    "HpaInfluence",
    "MissingHistory",
    "RecommendationReport",
    "StartupPeaks",
    "Target",
    "TargetPolicy",
    "VpaEstimate",
    "WhatIfView",
    "WorkloadRecommendation",
    "oom_bump",
    "recommend_resources",
    "vpa_confidence",
    "vpa_estimate",
]

# ---------------------------------------------------------------------------- constants

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
HALF_LIFE_MS: Final = 24 * HOUR_MS
"""VPA's ``DefaultCPUHistogramDecayHalfLife`` and ``DefaultMemoryHistogramDecayHalfLife``."""
MEMORY_AGGREGATION_INTERVAL_MS: Final = 24 * HOUR_MS
"""VPA's ``DefaultMemoryAggregationInterval``: one memory peak per interval."""
MIN_SAMPLE_WEIGHT: Final = 0.1
"""VPA's ``minSampleWeight``: a CPU sample weighs at least this (cores of request)."""
EPSILON: Final = 0.001 * MIN_SAMPLE_WEIGHT
"""VPA's histogram ``epsilon``: a histogram lighter than this is empty."""
OOM_BUMP_UP_RATIO: Final = 1.2
"""VPA's ``DefaultOOMBumpUpRatio``."""
OOM_MIN_BUMP_UP_BYTES: Final = 100 * 1024 * 1024
"""VPA's ``DefaultOOMMinBumpUp`` (100 MiB)."""
SAFETY_MARGIN: Final = 0.15
"""VPA's ``recommendation-margin-fraction``."""
LOWER_BOUND_PERCENTILE: Final = 0.5
"""VPA's ``recommendation-lower-bound-{cpu,memory}-percentile``."""
UPPER_BOUND_PERCENTILE: Final = 0.95
"""VPA's ``recommendation-upper-bound-{cpu,memory}-percentile``."""
POD_MIN_CPU_CORES: Final = 0.025
"""VPA's ``pod-recommendation-min-cpu-millicores`` (25), in cores, split between containers."""
POD_MIN_MEMORY_BYTES: Final = 250 * 1024 * 1024
"""VPA's ``pod-recommendation-min-memory-mb`` (250, multiplied by 1024*1024 in the source)."""
SAMPLES_PER_DAY: Final = 60 * 24
"""VPA's confidence counts samples in days of one sample a minute."""
STARTUP_WINDOW_MS: Final = 5 * 60_000
"""Samples this soon after a container (re)started are start-up, not steady state."""
CHANGE_TOLERANCE: Final = 0.05
"""A recommendation within 5 % of the current value is reported unchanged (no churn)."""
OOM_MATCH_TOLERANCE_MS: Final = 120_000
"""A history OOM instant and a recorded OOMKilled termination this close are one kill."""
DEFAULT_HPA_CPU_UTILIZATION: Final = 80
"""The HPA's default metric when ``spec.metrics`` is empty: 80 % CPU utilisation."""
MIB: Final = 1024 * 1024
_PATCHABLE_KINDS: Final = MappingProxyType(
    {
        "Deployment": "deployment",
        "StatefulSet": "statefulset",
        "DaemonSet": "daemonset",
        "ReplicaSet": "replicaset",
    }
)


# ---------------------------------------------------------------------------- histogram


@dataclass(frozen=True, slots=True)
class HistogramOptions:
    """VPA's exponential buckets: ``i`` starts at ``first * (ratio^i - 1) / (ratio - 1)``."""

    max_value: float
    first_bucket_size: float
    ratio: float
    num_buckets: int = field(init=False)
    """As VPA: ``ceil(log(max * (ratio - 1) / first + 1) / log(ratio)) + 1``."""
    _log_ratio: float = field(init=False, repr=False, compare=False)
    _scale: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once: bucket() runs for every sample of every container.
        log_ratio = math.log(self.ratio)
        scale = (self.ratio - 1) / self.first_bucket_size
        object.__setattr__(self, "_log_ratio", log_ratio)
        object.__setattr__(self, "_scale", scale)
        object.__setattr__(
            self, "num_buckets", math.ceil(math.log(self.max_value * scale + 1) / log_ratio) + 1
        )

    def bucket(self, value: float) -> int:
        """The bucket holding ``value`` (values below the first bucket size go to 0)."""
        if value < self.first_bucket_size:
            return 0
        return min(int(math.log(value * self._scale + 1) / self._log_ratio), self.num_buckets - 1)

    def bucket_start(self, index: int) -> float:
        """Where bucket ``index`` starts."""
        return self.first_bucket_size * (self.ratio**index - 1) / (self.ratio - 1)


CPU_HISTOGRAM: Final = HistogramOptions(max_value=1000.0, first_bucket_size=0.001, ratio=1.05)
"""VPA's CPU histogram: cores, ``NewExponentialHistogramOptions(1000.0, 0.001, 1.05, ...)``."""
MEMORY_HISTOGRAM: Final = HistogramOptions(max_value=1e12, first_bucket_size=1e7, ratio=1.05)
"""VPA's memory histogram: bytes, ``NewExponentialHistogramOptions(1e12, 1e7, 1.05, ...)``."""


class DecayingHistogram:
    """VPA's decaying histogram: weights halve every ``half_life_ms`` of age.

    Age is measured from ``reference_ms`` (the history's end), so a sample taken then
    weighs its full weight, one a half-life older half of it. VPA renormalises its
    reference time to avoid overflow; only weight ratios matter to percentiles, so
    the results agree.
    """

    __slots__ = ("_half_life_ms", "_options", "_reference_ms", "_total", "_weights")

    def __init__(self, options: HistogramOptions, reference_ms: int, half_life_ms: int) -> None:
        self._options = options
        self._reference_ms = reference_ms
        self._half_life_ms = half_life_ms
        self._weights: dict[int, float] = {}
        self._total = 0.0

    def add(self, value: float, weight: float, timestamp_ms: int) -> None:
        """Add ``value`` with ``weight`` decayed by the sample's age."""
        decayed = weight * 2.0 ** ((timestamp_ms - self._reference_ms) / self._half_life_ms)
        index = self._options.bucket(value)
        self._weights[index] = self._weights.get(index, 0.0) + decayed
        self._total += decayed

    @property
    def is_empty(self) -> bool:
        """True when the total weight is below VPA's epsilon."""
        return self._total < EPSILON

    def percentile(self, fraction: float) -> float:
        """The end of the bucket where the cumulative weight reaches ``fraction`` of it all.

        ``0.0`` for an empty histogram, as VPA.
        """
        if self.is_empty:
            return 0.0
        threshold = fraction * self._total
        partial = 0.0
        ordered = sorted(self._weights)
        index = ordered[-1]
        for index in ordered:
            partial += self._weights[index]
            if partial >= threshold:
                break
        if index < self._options.num_buckets - 1:
            return self._options.bucket_start(index + 1)
        return self._options.bucket_start(index)


# ---------------------------------------------------------------------------- VPA engine


@dataclass(frozen=True, slots=True)
class VpaEstimate:
    """One resource's VPA-style estimate: percentiles with margin and confidence bounds."""

    target: float
    """``percentile(target) * (1 + margin)``, at least the per-container minimum."""
    lower_bound: float
    """``p50 * (1 + margin) * (1 + 0.001 / c)^-2``, at least the minimum."""
    upper_bound: float
    """``p95 * (1 + margin) * (1 + 1 / c)``, at least the minimum; ``inf`` without history."""
    vpa_confidence: float
    """VPA's ``c = min(days spanned, samples / 1440)``."""
    samples: int
    """Samples that entered the histogram (memory: peaks, OOM samples included)."""


def vpa_confidence(first_ms: int | None, last_ms: int | None, samples: int) -> float:
    """VPA's ``getConfidence``: ``min(days between first and last sample, samples / 1440)``."""
    if first_ms is None or last_ms is None or samples == 0:
        return 0.0
    return min((last_ms - first_ms) / DAY_MS, samples / SAMPLES_PER_DAY)


def oom_bump(used_bytes: float) -> float:
    """VPA's ``RecordOOM`` sample: ``max(used + 100Mi, used * 1.2)``."""
    return max(used_bytes + OOM_MIN_BUMP_UP_BYTES, used_bytes * OOM_BUMP_UP_RATIO)


def _bounded(
    histogram: DecayingHistogram,
    *,
    percentile: float,
    margin: float,
    minimum: float,
    confidence: float,
    samples: int,
) -> VpaEstimate:
    scale = 1.0 + margin
    target = max(histogram.percentile(percentile) * scale, minimum)
    lower = histogram.percentile(LOWER_BOUND_PERCENTILE) * scale
    upper = histogram.percentile(UPPER_BOUND_PERCENTILE) * scale
    if confidence > 0:
        lower *= (1.0 + 0.001 / confidence) ** -2.0
        upper *= 1.0 + 1.0 / confidence
    else:
        lower, upper = 0.0, math.inf
    return VpaEstimate(
        target=target,
        lower_bound=max(lower, minimum),
        upper_bound=max(upper, minimum),
        vpa_confidence=confidence,
        samples=samples,
    )


def vpa_estimate(
    *,
    resource: str,
    samples: Iterable[tuple[int, float, float]],
    reference_ms: int,
    percentile: float = 0.9,
    margin: float = SAFETY_MARGIN,
    containers_per_pod: int = 1,
    oom_kills: Iterable[tuple[int, float]] = (),
) -> VpaEstimate | None:
    """The VPA recommender's estimate for one container, from raw samples.

    ``samples`` are ``(timestamp_ms, usage, request)``: cores for ``cpu``, working-set
    bytes for ``memory``. CPU samples weigh ``max(request, 0.1)``; memory samples are
    reduced to one peak per 24 h interval ending at ``reference_ms`` (VPA's memory
    aggregation), each weighing 1. ``oom_kills`` are ``(timestamp_ms, request bytes)``:
    each raises its interval's peak to :func:`oom_bump` of ``max(request, peak so far)``.
    Weights decay with a 24 h half-life from ``reference_ms``. ``None`` without samples.

    Raises:
        KubepulseValueError: ``resource`` is not ``cpu`` or ``memory``.
    """
    if resource not in ("cpu", "memory"):
        raise KubepulseValueError(f"resource must be 'cpu' or 'memory', got {resource!r}")
    ordered = sorted(samples)
    if not ordered:
        return None
    if resource == "cpu":
        histogram = _cpu_histogram(ordered, reference_ms)
        minimum = POD_MIN_CPU_CORES / containers_per_pod
        samples_used = len(ordered)
    else:
        histogram, samples_used = _memory_histogram(ordered, reference_ms, sorted(oom_kills))
        minimum = POD_MIN_MEMORY_BYTES / containers_per_pod
    # VPA's confidence comes from the CPU samples of the container's aggregate; memory
    # on its own uses its raw working-set samples the same way.
    confidence = vpa_confidence(ordered[0][0], ordered[-1][0], len(ordered))
    return _bounded(
        histogram,
        percentile=percentile,
        margin=margin,
        minimum=minimum,
        confidence=confidence,
        samples=samples_used,
    )


def _cpu_histogram(
    ordered: Sequence[tuple[int, float, float]], reference_ms: int
) -> DecayingHistogram:
    histogram = DecayingHistogram(CPU_HISTOGRAM, reference_ms, HALF_LIFE_MS)
    for timestamp_ms, usage, request in ordered:
        histogram.add(usage, max(request, MIN_SAMPLE_WEIGHT), timestamp_ms)
    return histogram


def _memory_histogram(
    ordered: Sequence[tuple[int, float, float]],
    reference_ms: int,
    oom_kills: Sequence[tuple[int, float]],
) -> tuple[DecayingHistogram, int]:
    """One peak per interval (when it was seen), OOM samples competing with the peaks."""
    peaks: dict[int, tuple[float, int]] = {}
    for timestamp_ms, usage, _request in ordered:
        interval = _interval_of(timestamp_ms, reference_ms)
        if interval not in peaks or usage > peaks[interval][0]:
            peaks[interval] = (usage, timestamp_ms)
    for kill_ms, request in oom_kills:
        interval = _interval_of(kill_ms, reference_ms)
        seen = max(
            (
                usage
                for timestamp_ms, usage, _ in ordered
                if timestamp_ms <= kill_ms and _interval_of(timestamp_ms, reference_ms) == interval
            ),
            default=0.0,
        )
        needed = oom_bump(max(request, seen))
        if interval not in peaks or needed > peaks[interval][0]:
            peaks[interval] = (needed, kill_ms)
    histogram = DecayingHistogram(MEMORY_HISTOGRAM, reference_ms, HALF_LIFE_MS)
    for usage, timestamp_ms in peaks.values():
        histogram.add(usage, 1.0, timestamp_ms)
    return histogram, len(peaks)


def _interval_of(timestamp_ms: int, reference_ms: int) -> int:
    """0 for ``(reference - 24 h, reference]``, 1 for the day before, and so on."""
    return max(0, (reference_ms - timestamp_ms) // MEMORY_AGGREGATION_INTERVAL_MS)


# ---------------------------------------------------------------------------- results


class Target(enum.Enum):
    """What the recommendation optimises for."""

    BALANCED = "balanced"
    """The VPA's own target: p90 CPU and memory plus 15 %."""
    PERFORMANCE = "performance"
    """More headroom: p95 CPU and memory plus 25 %, a roomier memory limit."""
    COST = "cost"
    """Tighter: p75 CPU, p90 memory, 5 % margin, a tight memory limit."""


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """The percentiles and margins one :class:`Target` uses."""

    cpu_percentile: float
    memory_percentile: float
    margin: float
    """Added to the request percentiles (VPA's safety margin)."""
    memory_limit_headroom: float
    """The memory limit is the highest working set seen (start-up included) times
    ``1 + headroom``, and at least the request and the OOM bump."""


TARGET_POLICIES: Final[Mapping[Target, TargetPolicy]] = MappingProxyType(
    {
        Target.BALANCED: TargetPolicy(0.90, 0.90, SAFETY_MARGIN, 0.15),
        Target.PERFORMANCE: TargetPolicy(0.95, 0.95, 0.25, 0.30),
        Target.COST: TargetPolicy(0.75, 0.90, 0.05, 0.05),
    }
)


class Change(enum.Enum):
    """How a recommended figure compares with what is set now."""

    INCREASE = "increase"
    DECREASE = "decrease"
    UNCHANGED = "unchanged"
    """Within 5 % of the current value, or nothing to set: not in the patch."""
    NEW = "new"
    """Nothing is set now; the patch sets it."""
    UNKNOWN = "unknown"
    """No history: nothing is recommended (see the report's ``missing``)."""


@dataclass(frozen=True)
class Figure:
    """One request or limit: what is set, what is recommended, how sure, and why."""

    current: float | None
    """Set now (cores or bytes); ``None`` when unset."""
    recommended: float | None
    """Recommended (rounded up to whole millicores or MiB); ``None`` when there is no
    history to base it on, or (CPU limits) when none should be set."""
    lower_bound: float | None
    """Below this the VPA updater would call the current value too small."""
    upper_bound: float | None
    """Above this the VPA updater would call the current value too large (``inf``, which
    JSON shows as ``null``, with no confidence at all)."""
    confidence: float
    """``[0, 1]``: ``c / (1 + c)`` of the VPA confidence ``c`` of the history used; 0
    without history."""
    change: Change
    basis: str
    """How the figure was computed, in words."""


@dataclass(frozen=True)
class StartupPeaks:
    """Usage in the first :data:`STARTUP_WINDOW_MS` after each start seen in the window."""

    starts_observed: int
    """Container starts whose start-up window holds at least one sample."""
    cpu_peak_cores: float | None
    memory_peak_bytes: float | None
    steady_cpu_p90_cores: float | None
    """The steady-state p90 CPU, for comparison (no margin)."""
    confidence: float
    """``n / (n + 1)`` for ``n`` starts observed: one start gives 0.5."""


@dataclass(frozen=True)
class HpaInfluence:
    """An HPA scales this workload on a resource's utilisation: the request is anchored."""

    hpa: str
    """``namespace/name`` of the HorizontalPodAutoscaler."""
    resource: str
    """``cpu`` or ``memory``."""
    container: str | None
    """The container of a ``ContainerResource`` metric; ``None`` for ``Resource``."""
    target_utilization_percent: int
    min_replicas: int
    max_replicas: int
    peak_total_usage: float | None
    """The highest sum of the workload's usage at one instant (cores or bytes)."""
    explanation: str


@dataclass(frozen=True)
class ContainerRecommendation:
    """Requests and limits for one container of a workload (all its pods pooled)."""

    container: str
    is_sidecar: bool
    cpu_request: Figure
    cpu_limit: Figure
    memory_request: Figure
    memory_limit: Figure
    startup: StartupPeaks
    oom_kills: int
    """OOM kills in the window (history instants and recorded terminations, deduplicated)."""
    hpa_aware: bool
    """True when an HPA anchored a request (see the workload's ``hpa``)."""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkloadRecommendation:
    """The recommendation for one workload, and the patch that applies it."""

    workload: WorkloadRef
    pods: int
    """Active pods of the workload in the snapshot (their history is pooled, as VPA)."""
    containers: tuple[ContainerRecommendation, ...]
    hpa: tuple[HpaInfluence, ...]
    patch: Mapping[str, Any] | None
    """A strategic merge patch setting the changed requests and limits; ``None`` when
    nothing changes or the owner cannot be patched (see ``patch_note``)."""
    kubectl_patch: str | None
    """The ``kubectl patch`` command line that applies :attr:`patch`."""
    patch_note: str | None
    cpu_request_change_cores: float
    """Sum over pods and containers of recommended minus current CPU requests (figures
    with both values only)."""
    memory_request_change_bytes: float


@dataclass(frozen=True)
class MissingHistory:
    """A container with no usable history for some figure: unmeasured, not idle."""

    workload: WorkloadRef
    container: str
    figures: tuple[str, ...]
    """``cpu`` and/or ``memory``."""


@dataclass(frozen=True)
class WhatIfView:
    """The cluster re-packed with the recommended requests, against its current requests."""

    before: RepackResult
    after: RepackResult
    nodes_freed_change: int
    """``len(after.nodes_freed) - len(before.nodes_freed)``: nodes the change frees."""
    pods_changed: int


@dataclass(frozen=True)
class RecommendationReport:
    """:func:`recommend_resources`' answer."""

    target: Target
    policy: TargetPolicy
    namespace: str | None
    taken_at_ms: int
    history_start_ms: int
    history_end_ms: int
    workloads: tuple[WorkloadRecommendation, ...]
    """Sorted by namespace, kind, name."""
    missing: tuple[MissingHistory, ...]
    cpu_requests_current_cores: float
    cpu_requests_recommended_cores: float
    memory_requests_current_bytes: float
    memory_requests_recommended_bytes: float
    """Totals over every pod, for the containers that have both a current and a
    recommended request."""
    what_if: WhatIfView | None = None
    """Filled when asked for (``what_if=True``)."""
    notes: tuple[str, ...] = field(default=())
    top: int | None = None
    """Only the ``top`` workloads whose requests change most are listed (and the first
    ``top`` missing histories); None: every workload. The totals and the what-if view
    always cover every workload."""
    truncated: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """With ``top``: for each list that had more items (``workloads``, ``missing``), how
    many it had."""


# ---------------------------------------------------------------------------- entry point


def recommend_resources(
    snapshot: ClusterSnapshot,
    history: UsageHistory,
    *,
    namespace: str | None = None,
    target: str = "balanced",
    autoscalers: Sequence[Mapping[str, Any]] = (),
    what_if: bool = False,
    top: int | None = None,
) -> RecommendationReport:
    """Requests and limits per container of every workload (of ``namespace``, if given).

    ``autoscalers`` are ``autoscaling/v2`` HorizontalPodAutoscaler objects as the API
    returns them; a workload scaled on CPU or memory utilisation gets that request
    anchored on the HPA's target (see the module docstring). With ``what_if``, the
    cluster is re-packed with the recommended requests
    (:func:`kubepulse.analysis.fragmentation.repack`) and compared with today.

    With ``top``, only the ``top`` workloads whose requests change most are listed (still
    by namespace, kind and name): ranked by the larger of their shares of the cluster's
    total absolute CPU and memory request change. The totals, the what-if view and
    :attr:`RecommendationReport.truncated` cover every workload.

    Raises:
        KubepulseValueError: ``target`` is not ``balanced``, ``performance`` or
            ``cost``, an autoscaler object is malformed, or ``top`` is not a whole number
            from 1 to 100,000.
        UnknownObjectError: ``namespace`` names no namespace of the snapshot.
    """
    chosen = _parse_target(target)
    top = check_top(top)
    policy = TARGET_POLICIES[chosen]
    if namespace is not None:
        snapshot.require_namespace(namespace)
    hpas = [HorizontalPodAutoscaler.from_api(raw) for raw in autoscalers]
    groups: dict[WorkloadRef, list[Pod]] = {}
    for pod in snapshot.active_pods():
        if namespace is None or pod.namespace == namespace:
            groups.setdefault(resolve_workload(pod), []).append(pod)

    workloads: list[WorkloadRecommendation] = []
    missing: list[MissingHistory] = []
    for ref in sorted(groups, key=lambda item: (item.namespace, item.kind, item.name)):
        scaling = [
            hpa for hpa in hpas if hpa.namespace == ref.namespace and hpa.scales(ref.kind, ref.name)
        ]
        recommendation, gaps = _recommend_workload(ref, groups[ref], history, policy, scaling)
        workloads.append(recommendation)
        missing.extend(gaps)

    totals = _totals(workloads)
    view = _what_if(snapshot, workloads, groups) if what_if else None
    notes = [
        "Classic init containers run to completion and are not sized here; sidecars are.",
    ]
    if any(ref.inferred for ref in groups):
        notes.append(
            "Some Deployments were inferred from ReplicaSet names (pod-template-hash); "
            "check the patch target before applying."
        )
    cut = Truncation(top)
    return RecommendationReport(
        target=chosen,
        policy=policy,
        namespace=namespace,
        taken_at_ms=snapshot.taken_at_ms,
        history_start_ms=history.start_ms,
        history_end_ms=history.end_ms,
        workloads=cut.first("workloads", _largest_changes(workloads, top), len(workloads)),
        missing=cut.first("missing", missing),
        cpu_requests_current_cores=totals[0],
        cpu_requests_recommended_cores=totals[1],
        memory_requests_current_bytes=totals[2],
        memory_requests_recommended_bytes=totals[3],
        what_if=view,
        notes=tuple(notes),
        top=top,
        truncated=MappingProxyType(cut.full_lengths),
    )


def _largest_changes(
    workloads: Sequence[WorkloadRecommendation], top: int | None
) -> Sequence[WorkloadRecommendation]:
    """The ``top`` workloads whose requests change most, in their original order.

    CPU cores and memory bytes do not add up, so each workload's change is taken as a
    share of the total absolute change of its resource, and the larger share ranks it.
    Ties keep the original order (namespace, kind, name).
    """
    if top is None or len(workloads) <= top:
        return workloads
    cpu_total = math.fsum(abs(item.cpu_request_change_cores) for item in workloads) or 1.0
    memory_total = math.fsum(abs(item.memory_request_change_bytes) for item in workloads) or 1.0
    ranked = sorted(
        range(len(workloads)),
        key=lambda index: (
            -max(
                abs(workloads[index].cpu_request_change_cores) / cpu_total,
                abs(workloads[index].memory_request_change_bytes) / memory_total,
            ),
            index,
        ),
    )
    return [workloads[index] for index in sorted(ranked[:top])]


def _parse_target(target: str) -> Target:
    for candidate in Target:
        if target == candidate.value:
            return candidate
    raise KubepulseValueError(f"target must be one of balanced, performance, cost, got {target!r}")


# ---------------------------------------------------------------------------- per workload


@dataclass
class _Pool:
    """Everything measured for one container name across the workload's pods."""

    cpu_steady: list[tuple[int, float, float]] = field(default_factory=list)
    memory_steady: list[tuple[int, float, float]] = field(default_factory=list)
    cpu_startup_peak: float | None = None
    memory_startup_peak: float | None = None
    memory_highest: float | None = None
    starts_observed: int = 0
    oom_kills: list[tuple[int, float]] = field(default_factory=list)
    cpu_total: dict[int, float] = field(default_factory=dict)
    memory_total: dict[int, float] = field(default_factory=dict)
    has_cpu_series: bool = False
    has_memory_series: bool = False


def _running_containers(pod: Pod) -> tuple[ContainerSpec, ...]:
    """Sidecars and app containers: what runs once the pod started."""
    return tuple(c for c in pod.init_containers if c.is_sidecar) + pod.containers


def _template_pod(pods: Sequence[Pod]) -> Pod:
    """The newest pod: during a rollout, its spec is what the owner's template says now."""
    return max(pods, key=lambda pod: (pod.creation_ms or 0, pod.name))


def _starts(pod: Pod, container: str) -> list[int]:
    status = pod.status_of(container)
    if status is None:
        return [pod.start_ms] if pod.start_ms is not None else []
    starts = [status.state.started_at_ms]
    if status.last_termination is not None:
        starts.append(status.last_termination.started_at_ms)
    return sorted({start for start in starts if start is not None})


def _startup_mask(series: TimeSeries, starts: Sequence[int]) -> tuple[list[range], int]:
    """Index ranges of ``series`` inside a start-up window, and how many windows hold one."""
    ranges: list[range] = []
    for start in starts:
        low = bisect.bisect_left(series.timestamps_ms, start)
        high = bisect.bisect_left(series.timestamps_ms, start + STARTUP_WINDOW_MS)
        if high > low:
            ranges.append(range(low, high))
    return ranges, len(ranges)


def _kills(pod: Pod, container: str, history: UsageHistory) -> list[int]:
    instants = list(history.oom_kill_ms.get(ContainerRef(pod.namespace, pod.name, container), ()))
    status = pod.status_of(container)
    if status is not None:
        for termination in (status.state.termination, status.last_termination):
            if (
                termination is not None
                and termination.is_oom_kill
                and termination.finished_at_ms is not None
                and history.start_ms <= termination.finished_at_ms <= history.end_ms
                and all(
                    abs(termination.finished_at_ms - seen) > OOM_MATCH_TOLERANCE_MS
                    for seen in instants
                )
            ):
                instants.append(termination.finished_at_ms)
    return sorted(instants)


def _amount(container: ContainerSpec | None, kind: str, resource: str) -> float | None:
    if container is None:
        return None
    amounts = container.requests if kind == "requests" else container.limits
    value = amounts.cpu_cores if resource == "cpu" else amounts.memory_bytes
    return None if value is None or value <= 0 else float(value)


def _pool(pods: Sequence[Pod], names: Sequence[str], history: UsageHistory) -> dict[str, _Pool]:
    pools = {name: _Pool() for name in names}
    for pod in pods:
        specs = {c.name: c for c in _running_containers(pod)}
        for name in names:
            pool = pools[name]
            spec = specs.get(name)
            ref = ContainerRef(pod.namespace, pod.name, name)
            starts = _starts(pod, name)
            windows_seen = 0
            for resource in ("cpu", "memory"):
                mapping = (
                    history.cpu_cores if resource == "cpu" else history.memory_working_set_bytes
                )
                series = mapping.get(ref)
                if series is None or not len(series):
                    continue
                request = _amount(spec, "requests", resource) or 0.0
                ranges, windows = _startup_mask(series, starts)
                windows_seen = max(windows_seen, windows)
                in_startup = {index for span in ranges for index in span}
                steady = pool.cpu_steady if resource == "cpu" else pool.memory_steady
                total = pool.cpu_total if resource == "cpu" else pool.memory_total
                startup_peak: float | None = None
                for index, (timestamp_ms, value) in enumerate(series):
                    total[timestamp_ms] = total.get(timestamp_ms, 0.0) + value
                    if index in in_startup:
                        startup_peak = value if startup_peak is None else max(startup_peak, value)
                    else:
                        steady.append((timestamp_ms, value, request))
                if resource == "cpu":
                    pool.has_cpu_series = True
                    pool.cpu_startup_peak = _max(pool.cpu_startup_peak, startup_peak)
                else:
                    pool.has_memory_series = True
                    pool.memory_startup_peak = _max(pool.memory_startup_peak, startup_peak)
                    pool.memory_highest = _max(pool.memory_highest, max(series.values))
            pool.starts_observed += windows_seen
            memory_request = _amount(spec, "requests", "memory") or 0.0
            pool.oom_kills.extend((kill, memory_request) for kill in _kills(pod, name, history))
    return pools


def _max(current: float | None, value: float | None) -> float | None:
    if value is None:
        return current
    return value if current is None else max(current, value)


def _recommend_workload(
    ref: WorkloadRef,
    pods: Sequence[Pod],
    history: UsageHistory,
    policy: TargetPolicy,
    hpas: Sequence[HorizontalPodAutoscaler],
) -> tuple[WorkloadRecommendation, list[MissingHistory]]:
    template = _template_pod(pods)
    containers = _running_containers(template)
    names = [c.name for c in containers]
    pools = _pool(pods, names, history)
    anchors = _hpa_anchors(hpas, names)
    influences: list[HpaInfluence] = []
    recommendations: list[ContainerRecommendation] = []
    missing: list[MissingHistory] = []
    for spec in containers:
        pool = pools[spec.name]
        recommendation, used = _recommend_container(
            spec,
            pool,
            reference_ms=history.end_ms,
            policy=policy,
            containers_per_pod=len(containers),
            anchors=anchors.get(spec.name, {}),
        )
        recommendations.append(recommendation)
        influences.extend(used)
        gaps = tuple(
            resource
            for resource, present in (
                ("cpu", pool.has_cpu_series),
                ("memory", pool.has_memory_series),
            )
            if not present
        )
        if gaps:
            missing.append(MissingHistory(ref, spec.name, gaps))
    patch, command, note = _patch(ref, template, recommendations)
    cpu_change = memory_change = 0.0
    for item in recommendations:
        cpu_change += len(pods) * _delta(item.cpu_request)
        memory_change += len(pods) * _delta(item.memory_request)
    unique = {(i.hpa, i.resource, i.container): i for i in influences}
    return (
        WorkloadRecommendation(
            workload=ref,
            pods=len(pods),
            containers=tuple(recommendations),
            hpa=tuple(
                unique[key] for key in sorted(unique, key=lambda k: (k[0], k[1], k[2] or ""))
            ),
            patch=patch,
            kubectl_patch=command,
            patch_note=note,
            cpu_request_change_cores=cpu_change,
            memory_request_change_bytes=memory_change,
        ),
        missing,
    )


def _delta(figure: Figure) -> float:
    if figure.current is None or figure.recommended is None:
        return 0.0
    return figure.recommended - figure.current


@dataclass(frozen=True)
class _Anchor:
    hpa: HorizontalPodAutoscaler
    resource: str
    container: str | None
    utilization: int


def _hpa_anchors(
    hpas: Sequence[HorizontalPodAutoscaler], names: Sequence[str]
) -> dict[str, dict[str, _Anchor]]:
    """Per container and resource, the HPA utilisation target that anchors the request.

    ``Resource`` metrics apply to every container (the pod's utilisation is the sum of
    usage over the sum of requests: the same ratio per container keeps it on target);
    ``ContainerResource`` metrics to their container. With several, the lowest target
    wins (it asks for the largest request, the conservative choice).
    """
    anchors: dict[str, dict[str, _Anchor]] = {}
    for hpa in hpas:
        metrics: list[tuple[str, str, str | None, int | None]] = [
            (m.source, m.name, m.container, m.target.average_utilization)
            for m in hpa.metrics
            if m.target.type == "Utilization"
        ]
        if not hpa.metrics:
            metrics = [("Resource", "cpu", None, DEFAULT_HPA_CPU_UTILIZATION)]
        for source, resource, container, utilization in metrics:
            if resource not in ("cpu", "memory") or not utilization or utilization <= 0:
                continue
            if source == "Resource":
                targets = list(names)
            elif source == "ContainerResource" and container is not None and container in names:
                targets = [container]
            else:
                continue
            for name in targets:
                current = anchors.setdefault(name, {}).get(resource)
                if current is None or utilization < current.utilization:
                    anchors[name][resource] = _Anchor(
                        hpa,
                        resource,
                        container if source == "ContainerResource" else None,
                        utilization,
                    )
    return anchors


# ---------------------------------------------------------------------------- per container


def _confidence(vpa: float) -> float:
    return vpa / (1.0 + vpa) if vpa > 0 else 0.0


def _round_cpu(cores: float) -> float:
    """Up to whole millicores (VPA's ``round-cpu-millicores = 1``)."""
    return math.ceil(cores * 1000 - 1e-9) / 1000


def _round_memory(amount: float) -> float:
    """Up to whole MiB, so that the patch reads ``512Mi`` rather than a byte count."""
    return float(math.ceil(amount / MIB - 1e-9) * MIB)


def _change(current: float | None, recommended: float | None, *, measured: bool) -> Change:
    if recommended is None:
        return Change.UNCHANGED if measured else Change.UNKNOWN
    if current is None:
        return Change.NEW
    if current > 0 and abs(recommended - current) / current <= CHANGE_TOLERANCE:
        return Change.UNCHANGED
    return Change.INCREASE if recommended > current else Change.DECREASE


def _unknown(current: float | None, what: str) -> Figure:
    return Figure(current, None, None, None, 0.0, Change.UNKNOWN, f"no {what} history")


def _recommend_container(
    spec: ContainerSpec,
    pool: _Pool,
    *,
    reference_ms: int,
    policy: TargetPolicy,
    containers_per_pod: int,
    anchors: Mapping[str, _Anchor],
) -> tuple[ContainerRecommendation, list[HpaInfluence]]:
    notes: list[str] = []
    influences: list[HpaInfluence] = []
    rounders = {"cpu": _round_cpu, "memory": _round_memory}
    minimums = {
        "cpu": POD_MIN_CPU_CORES / containers_per_pod,
        "memory": POD_MIN_MEMORY_BYTES / containers_per_pod,
    }
    histograms: dict[str, tuple[DecayingHistogram, float]] = {}
    requests: dict[str, Figure] = {}
    for resource in ("cpu", "memory"):
        current = _amount(spec, "requests", resource)
        steady = sorted(pool.cpu_steady if resource == "cpu" else pool.memory_steady)
        if not steady:
            what = "steady-state CPU" if resource == "cpu" else "steady-state memory"
            requests[resource] = _unknown(current, what)
            if pool.has_cpu_series if resource == "cpu" else pool.has_memory_series:
                notes.append(f"{resource}: only start-up samples in the window; not sized")
            continue
        if resource == "cpu":
            histogram = _cpu_histogram(steady, reference_ms)
            samples = len(steady)
        else:
            histogram, samples = _memory_histogram(steady, reference_ms, sorted(pool.oom_kills))
        vpa = vpa_confidence(steady[0][0], steady[-1][0], len(steady))
        histograms[resource] = (histogram, vpa)
        percentile = policy.cpu_percentile if resource == "cpu" else policy.memory_percentile
        estimate = _bounded(
            histogram,
            percentile=percentile,
            margin=policy.margin,
            minimum=minimums[resource],
            confidence=vpa,
            samples=samples,
        )
        anchor = anchors.get(resource)
        unit = "cores" if resource == "cpu" else "bytes"
        if anchor is None:
            recommended = rounders[resource](estimate.target)
            basis = (
                f"VPA: p{percentile * 100:g} of {samples} decayed "
                f"{'samples' if resource == 'cpu' else 'daily peaks'} + {policy.margin:.0%}"
                + (
                    f", OOM bump from {len(pool.oom_kills)} kill(s)"
                    if resource == "memory" and pool.oom_kills
                    else ""
                )
            )
            lower, upper = estimate.lower_bound, estimate.upper_bound
        else:
            utilization = anchor.utilization / 100
            per_replica = histogram.percentile(percentile)
            totals = pool.cpu_total if resource == "cpu" else pool.memory_total
            peak_total = max(totals.values()) if totals else None
            floor = (
                peak_total / (utilization * anchor.hpa.max_replicas)
                if peak_total is not None and anchor.hpa.max_replicas > 0
                else 0.0
            )
            anchored = per_replica / utilization
            recommended = rounders[resource](max(anchored, floor, minimums[resource]))
            vpa_rule = estimate.target
            basis = (
                f"HPA {anchor.hpa.namespace}/{anchor.hpa.name} targets {anchor.utilization}% "
                f"{resource} utilisation: per-replica p{percentile * 100:g} "
                f"{per_replica:.6g} {unit} / {utilization:g} = {anchored:.6g} {unit}"
                + (
                    f", raised to {floor:.6g} so that maxReplicas "
                    f"{anchor.hpa.max_replicas} carries the peak total {peak_total:.6g}"
                    if floor > anchored
                    else ""
                )
                + f"; the VPA rule ({vpa_rule:.6g}) would start the shrinking spiral"
            )
            scale = 1.0 / (1.0 + policy.margin) / utilization
            lower = estimate.lower_bound * scale
            upper = estimate.upper_bound * scale
            influences.append(
                HpaInfluence(
                    hpa=f"{anchor.hpa.namespace}/{anchor.hpa.name}",
                    resource=resource,
                    container=anchor.container,
                    target_utilization_percent=anchor.utilization,
                    min_replicas=anchor.hpa.min_replicas,
                    max_replicas=anchor.hpa.max_replicas,
                    peak_total_usage=peak_total,
                    explanation=(
                        f"the {resource} request is anchored on the HPA's "
                        f"{anchor.utilization}% utilisation target: request = per-replica "
                        "usage / target, the point where the HPA neither scales out nor "
                        "in. Sizing it to usage + margin instead would raise utilisation "
                        "above the target, add replicas, lower per-replica usage and "
                        "shrink the next recommendation again (the shrinking spiral)."
                    ),
                )
            )
        requests[resource] = Figure(
            current=current,
            recommended=recommended,
            lower_bound=lower,
            upper_bound=upper,
            confidence=_confidence(vpa),
            change=_change(current, recommended, measured=True),
            basis=basis,
        )

    memory_limit = _memory_limit(spec, pool, policy, requests["memory"], histograms)
    cpu_limit = _cpu_limit(spec, requests["cpu"], histograms)
    steady_p90 = histograms["cpu"][0].percentile(0.9) if "cpu" in histograms else None
    startup = StartupPeaks(
        starts_observed=pool.starts_observed,
        cpu_peak_cores=pool.cpu_startup_peak,
        memory_peak_bytes=pool.memory_startup_peak,
        steady_cpu_p90_cores=steady_p90,
        confidence=pool.starts_observed / (pool.starts_observed + 1),
    )
    if (
        pool.cpu_startup_peak is not None
        and steady_p90 is not None
        and pool.cpu_startup_peak > 2 * steady_p90
    ):
        notes.append(
            f"start-up CPU peak {pool.cpu_startup_peak:.3g} cores is over twice the "
            f"steady p90 ({steady_p90:.3g}); left out of the request: consider VPA's CPU "
            "startup boost or a startupProbe with a longer budget rather than a bigger request"
        )
    return (
        ContainerRecommendation(
            container=spec.name,
            is_sidecar=spec.is_sidecar,
            cpu_request=requests["cpu"],
            cpu_limit=cpu_limit,
            memory_request=requests["memory"],
            memory_limit=memory_limit,
            startup=startup,
            oom_kills=len(pool.oom_kills),
            hpa_aware=bool(influences),
            notes=tuple(notes),
        ),
        influences,
    )


def _memory_limit(
    spec: ContainerSpec,
    pool: _Pool,
    policy: TargetPolicy,
    request: Figure,
    histograms: Mapping[str, tuple[DecayingHistogram, float]],
) -> Figure:
    current = _amount(spec, "limits", "memory")
    if pool.memory_highest is None or request.recommended is None:
        return _unknown(current, "memory")
    highest = pool.memory_highest * (1.0 + policy.memory_limit_headroom)
    bumps = [oom_bump(max(requested, pool.memory_highest)) for _, requested in pool.oom_kills]
    oom_floor = max(bumps, default=0.0)
    recommended = _round_memory(max(request.recommended, highest, oom_floor))
    parts = [
        f"highest working set {pool.memory_highest:.0f} B (start-up included) "
        f"+ {policy.memory_limit_headroom:.0%}"
    ]
    if oom_floor:
        parts.append(f"at least the OOM bump {oom_floor:.0f} B")
    parts.append("at least the request")
    return Figure(
        current=current,
        recommended=recommended,
        lower_bound=request.recommended,
        upper_bound=None,
        confidence=_confidence(histograms["memory"][1]) if "memory" in histograms else 0.0,
        change=_change(current, recommended, measured=True),
        basis="; ".join(parts),
    )


def _cpu_limit(
    spec: ContainerSpec, request: Figure, histograms: Mapping[str, tuple[DecayingHistogram, float]]
) -> Figure:
    current = _amount(spec, "limits", "cpu")
    if current is None:
        return Figure(
            None,
            None,
            None,
            None,
            _confidence(histograms["cpu"][1]) if "cpu" in histograms else 0.0,
            Change.UNCHANGED,
            "no CPU limit set and none recommended: a CPU limit only throttles",
        )
    if request.recommended is None or request.current is None:
        return _unknown(current, "CPU")
    ratio = current / request.current
    recommended = _round_cpu(request.recommended * ratio)
    return Figure(
        current=current,
        recommended=recommended,
        lower_bound=None,
        upper_bound=None,
        confidence=request.confidence,
        change=_change(current, recommended, measured=True),
        basis=f"keeps today's limit/request ratio {ratio:.3g} (as VPA does)",
    )


# ---------------------------------------------------------------------------- patches


def _cpu_text(cores: float) -> str:
    return format_quantity(f"{round(cores * 1000)}m")


def _memory_text(amount: float) -> str:
    return format_quantity(int(amount), binary=True)


def _container_patch(item: ContainerRecommendation) -> dict[str, Any] | None:
    resources: dict[str, dict[str, str]] = {}
    for kind, resource, figure in (
        ("requests", "cpu", item.cpu_request),
        ("limits", "cpu", item.cpu_limit),
        ("requests", "memory", item.memory_request),
        ("limits", "memory", item.memory_limit),
    ):
        if figure.recommended is None or figure.change not in (
            Change.INCREASE,
            Change.DECREASE,
            Change.NEW,
        ):
            continue
        text = (
            _cpu_text(figure.recommended) if resource == "cpu" else _memory_text(figure.recommended)
        )
        resources.setdefault(kind, {})[resource] = text
    if not resources:
        return None
    return {"name": item.container, "resources": resources}


def _patch(
    ref: WorkloadRef, template: Pod, recommendations: Sequence[ContainerRecommendation]
) -> tuple[Mapping[str, Any] | None, str | None, str | None]:
    containers: list[dict[str, Any]] = []
    sidecars: list[dict[str, Any]] = []
    for item in recommendations:
        entry = _container_patch(item)
        if entry is not None:
            (sidecars if item.is_sidecar else containers).append(entry)
    if not containers and not sidecars:
        return None, None, "nothing to change"
    pod_spec: dict[str, Any] = {}
    if containers:
        pod_spec["containers"] = containers
    if sidecars:
        pod_spec["initContainers"] = sidecars
    if ref.kind == "Pod":
        body: dict[str, Any] = {"spec": pod_spec}
        command = _kubectl("pod", ref, body, subresource="resize")
        note = (
            "a pod without an owner: resized in place (Kubernetes 1.33+); the change must "
            "keep the pod's QoS class, and a recreated pod needs the same edit in its manifest"
        )
        return _freeze(body), command, note
    resource = _PATCHABLE_KINDS.get(ref.kind)
    if resource is None:
        where = "the manifest on the node" if ref.kind == "Node" else f"the {ref.kind}"
        return None, None, f"pods owned by a {ref.kind} cannot be patched here: change {where}"
    body = {"spec": {"template": {"spec": pod_spec}}}
    note = "strategic merge patch: containers merge by name; applying it rolls the pods"
    if ref.kind == "ReplicaSet":
        note = (
            "strategic merge patch of a ReplicaSet without a Deployment: its existing pods "
            "keep their requests until they are recreated"
        )
    if ref.inferred:
        note += "; the Deployment name was inferred from the ReplicaSet's name"
    return _freeze(body), _kubectl(resource, ref, body), note


def _kubectl(
    resource: str, ref: WorkloadRef, body: Mapping[str, Any], subresource: str | None = None
) -> str:
    text = json.dumps(body, separators=(",", ":"), sort_keys=True)
    parts = ["kubectl", "patch", resource, ref.name, "-n", ref.namespace]
    if subresource is not None:
        parts.append(f"--subresource={subresource}")
    parts += ["--type=strategic", "-p", text]
    return " ".join(shlex.quote(part) for part in parts)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


# ---------------------------------------------------------------------------- totals, what if


def _totals(workloads: Sequence[WorkloadRecommendation]) -> tuple[float, float, float, float]:
    cpu_now = cpu_new = memory_now = memory_new = 0.0
    for workload in workloads:
        for item in workload.containers:
            if item.cpu_request.current is not None and item.cpu_request.recommended is not None:
                cpu_now += workload.pods * item.cpu_request.current
                cpu_new += workload.pods * item.cpu_request.recommended
            memory = item.memory_request
            if memory.current is not None and memory.recommended is not None:
                memory_now += workload.pods * memory.current
                memory_new += workload.pods * memory.recommended
    return cpu_now, cpu_new, memory_now, memory_new


def _what_if(
    snapshot: ClusterSnapshot,
    workloads: Sequence[WorkloadRecommendation],
    groups: Mapping[WorkloadRef, Sequence[Pod]],
) -> WhatIfView:
    """Each pod's new requests: today's effective requests plus the recommended change of
    each running container (classic init containers keep theirs)."""
    requests: dict[tuple[str, str], tuple[float, float]] = {}
    for workload in workloads:
        changes = {item.container: item for item in workload.containers}
        for pod in groups[workload.workload]:
            effective = pod.effective_requests
            cpu = float(effective.cpu_cores or 0)
            memory = float(effective.memory_bytes or 0)
            changed = False
            for spec in _running_containers(pod):
                item = changes.get(spec.name)
                if item is None:
                    continue
                for resource, figure in (
                    ("cpu", item.cpu_request),
                    ("memory", item.memory_request),
                ):
                    if figure.recommended is None or figure.change is Change.UNCHANGED:
                        continue
                    delta = figure.recommended - (_amount(spec, "requests", resource) or 0.0)
                    if resource == "cpu":
                        cpu += delta
                    else:
                        memory += delta
                    changed = True
            if changed:
                requests[(pod.namespace, pod.name)] = (max(cpu, 0.0), max(memory, 0.0))
    before = repack(snapshot, {})
    after = repack(snapshot, requests)
    return WhatIfView(
        before=before,
        after=after,
        nodes_freed_change=len(after.nodes_freed) - len(before.nodes_freed),
        pods_changed=after.pods_changed,
    )

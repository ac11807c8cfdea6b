"""Node pressure: how full and how stressed each node is, and who the kubelet evicts first.

:func:`analyze_node_pressure` answers, per node and for the cluster:

- **health**: the node's conditions (``MemoryPressure``, ``DiskPressure``, ``PIDPressure``,
  ``Ready``) and its pressure-stall figures (PSI: the share of time tasks were stalled
  on CPU, memory or I/O) from the history;
- **room**: capacity versus allocatable versus requested versus used, for CPU, memory,
  ephemeral storage and the pod count;
- **eviction thresholds**: the kubelet's hard signals ``memory.available`` and
  ``nodefs.available`` against their thresholds (defaults ``100Mi`` and ``10%``, the
  kubelet's), with the margin left and, from the trend of available memory, how soon
  the memory threshold would be crossed;
- **eviction risk**: every evictable pod ranked the way the kubelet ranks pods under
  memory pressure, within each node and cluster-wide (see :func:`rank_for_eviction`);
- **scheduling pressure**: pending pods that no node takes, and what blocks them;
- optionally **scheduling hints**: what to do about it.

Levels. A node is ``under_pressure`` when a pressure condition is true or a measured
signal is below its threshold; ``near_pressure`` when a signal is within its margin
(``memory.available`` within the larger of the threshold and 5% of memory capacity,
``nodefs.available`` within 5 percentage points), available memory trends to the
threshold within 30 minutes, or PSI is high (memory ``some`` averaging at least 10% of
the window, memory ``full`` 2%, I/O ``full`` 10%, CPU ``some`` 50%); ``ok`` when
measured and none of these hold; ``unknown`` when nothing is measured and no condition
is reported. These margins are heuristics, stated here so that nobody mistakes them for
the kubelet's.

Missing data is reported, never guessed: a node without a memory-available series has
``memory_available_bytes=None``; a pod without working-set series is ranked by what is
known and marked ``usage_measured=False``.

Pure: takes a :class:`~kubepulse.analysis.inputs.ClusterSnapshot` and a
:class:`~kubepulse.analysis.inputs.UsageHistory`, does no I/O.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from operator import itemgetter
from types import MappingProxyType
from typing import Any, Final

from kubepulse.analysis.fragmentation import (
    CPU_SLACK,
    MEMORY_SLACK,
    FragmentationReport,
    NodeRoom,
    RequestCache,
    analyze_fragmentation,
    free_room,
)
from kubepulse.analysis.inputs import ClusterSnapshot, ContainerRef, TimeSeries, UsageHistory
from kubepulse.analysis.listing import Truncation, check_top
from kubepulse.errors import KubepulseValueError, UnknownObjectError
from kubepulse.model import CPU, EPHEMERAL_STORAGE, MEMORY, PODS, Node, Pod, QosClass
from kubepulse.quantity import QuantityError, memory_bytes
from kubepulse.stats.forecast import InsufficientDataError, forecast_linear

__all__ = [
    "CRITICAL_PRIORITY",
    "ConditionState",
    "EvictionCandidate",
    "EvictionThresholds",
    "HintKind",
    "NodePressure",
    "NodePressureReport",
    "PendingPod",
    "PressureLevel",
    "PsiFigure",
    "RankedPod",
    "ResourceFigures",
    "SchedulingBlocker",
    "SchedulingHint",
    "SchedulingPressure",
    "analyze_node_pressure",
    "rank_for_eviction",
]

CRITICAL_PRIORITY: Final = 2_000_000_000
"""``system-cluster-critical`` and above: the kubelet never evicts such pods, nor static
or mirror pods (``kubelettypes.IsCriticalPod``)."""

# Heuristic margins for "near pressure"; see the module docstring.
_MEMORY_NEAR_SHARE: Final = 0.05
_NODEFS_NEAR_POINTS: Final = 5.0
_ETA_NEAR_SECONDS: Final = 1800.0
_MIN_TREND_SAMPLES: Final = 3
_PSI_NEAR: Final[Mapping[str, float]] = {
    "memory_some": 0.10,
    "memory_full": 0.02,
    "io_full": 0.10,
    "cpu_some": 0.50,
}
_PRESSURE_CONDITIONS: Final = ("MemoryPressure", "DiskPressure", "PIDPressure")
_KNOWN_NODES_IN_ERROR: Final = 5
_PREFERRED_NODES_IN_HINTS: Final = 3
_MI: Final = 2**20
_GI: Final = 2**30


class PressureLevel(enum.Enum):
    """How close a node is to the kubelet evicting pods; see the module docstring."""

    UNDER_PRESSURE = "under_pressure"
    NEAR_PRESSURE = "near_pressure"
    UNKNOWN = "unknown"
    OK = "ok"


# Most at risk first.
_LEVEL_ORDER: Final[Mapping[PressureLevel, int]] = {
    PressureLevel.UNDER_PRESSURE: 0,
    PressureLevel.NEAR_PRESSURE: 1,
    PressureLevel.UNKNOWN: 2,
    PressureLevel.OK: 3,
}
# Among pods otherwise equal, BestEffort then Burstable then Guaranteed: what the
# kubelet's order amounts to in practice, since requests grow in that order.
_QOS_ORDER: Final[Mapping[QosClass, int]] = {"BestEffort": 0, "Burstable": 1, "Guaranteed": 2}


class SchedulingBlocker(enum.Enum):
    """Why a pending pod finds no node, judged from requests and free room."""

    INSUFFICIENT_CPU = "insufficient_cpu"
    """No schedulable node has that much CPU free."""
    INSUFFICIENT_MEMORY = "insufficient_memory"
    """No schedulable node has that much memory free."""
    TOO_MANY_PODS = "too_many_pods"
    """No schedulable node has a pod slot left."""
    FRAGMENTED = "fragmented"
    """Each resource is free somewhere, but no node has all of them at once."""
    NO_SCHEDULABLE_NODE = "no_schedulable_node"
    """Every node is cordoned, tainted ``NoSchedule``/``NoExecute`` or lacks allocatable."""
    NOT_BY_REQUESTS = "not_by_requests"
    """Some node has room: what blocks the pod is not in the snapshot (tolerations, node
    selectors, affinity, volumes, ports) or the scheduler has not caught up."""


class HintKind(enum.Enum):
    """What a scheduling hint suggests."""

    AVOID_NODE = "avoid_node"
    PREFER_NODE = "prefer_node"
    RESIZE_PENDING_POD = "resize_pending_pod"
    ADD_CAPACITY = "add_capacity"
    UNCORDON_OR_TOLERATE = "uncordon_or_tolerate"
    RAISE_REQUESTS = "raise_requests"


@dataclass(frozen=True, slots=True)
class EvictionThresholds:
    """The kubelet's hard eviction thresholds the analysis compares against."""

    memory_available_bytes: float | None
    """``memory.available`` threshold in bytes, or ``None`` when given as a percentage."""
    memory_available_percent: float | None
    """``memory.available`` threshold as a percentage of memory capacity, or ``None``."""
    nodefs_available_percent: float
    """``nodefs.available`` threshold, percent of the node's ephemeral-storage capacity."""

    def memory_bytes_for(self, capacity_bytes: float | None) -> float | None:
        """The memory threshold in bytes for a node of that capacity (None if unknown)."""
        if self.memory_available_bytes is not None:
            return self.memory_available_bytes
        if capacity_bytes is None or self.memory_available_percent is None:
            return None
        return capacity_bytes * self.memory_available_percent / 100.0


@dataclass(frozen=True, slots=True)
class ConditionState:
    """One node condition as reported."""

    type: str
    status: str
    reason: str | None
    message: str | None


@dataclass(frozen=True, slots=True)
class PsiFigure:
    """One pressure-stall series of a node over the history window, shares in ``[0, 1]``."""

    name: str
    """``cpu_some``, ``memory_some``, ``memory_full``, ``io_some``, ``io_full``…"""
    latest: float
    """The newest sample."""
    mean: float
    """Mean of the samples in the window."""
    peak: float
    """Largest sample in the window."""
    samples: int
    """How many samples the figures come from."""


@dataclass(frozen=True, slots=True)
class ResourceFigures:
    """Capacity, allocatable, requested and used of one resource on one node.

    CPU in cores, memory and ephemeral storage in bytes, pods as a count.
    """

    resource: str
    """``cpu``, ``memory``, ``ephemeral-storage`` or ``pods``."""
    capacity: float | None
    """``status.capacity``; ``None`` when the node does not report it."""
    allocatable: float | None
    """``status.allocatable``: capacity minus reservations, what pods may request."""
    requested: float
    """Sum of the active pods' effective requests (for ``pods``: the pod count)."""
    requested_percent: float | None
    """``requested`` as a percentage of ``allocatable``; ``None`` without allocatable."""
    used: float | None
    """Measured use; ``None`` when nothing was measured. CPU and memory: the newest
    sample of each measured container of the active pods, summed (memory is working
    set). Ephemeral storage: capacity minus the node's available bytes. Pods: the count."""
    used_percent: float | None
    """``used`` as a percentage of ``allocatable``."""
    unmeasured_pods: int
    """Active pods whose use of this resource has no series (``used`` leaves them out)."""


@dataclass(frozen=True, slots=True)
class EvictionCandidate:
    """One pod in the kubelet's memory-pressure eviction order; see :func:`rank_for_eviction`."""

    namespace: str
    pod: str
    node: str
    rank: int
    """Position in the cluster-wide ranking, 1 = evicted first."""
    node_rank: int
    """Position among the evictable pods of its node, 1 = evicted first there."""
    node_level: PressureLevel
    """How close the pod's node is to evicting."""
    qos: QosClass
    priority: int
    """``spec.priority``; 0 when unset, as the kubelet reads it."""
    memory_request_bytes: float
    """The pod's effective memory request (0 when it requests none)."""
    memory_usage_bytes: float | None
    """Working set of the pod's measured containers (newest samples); ``None`` when none
    is measured. A lower bound when ``usage_measured`` is False."""
    memory_above_request_bytes: float | None
    """``memory_usage_bytes - memory_request_bytes``; ``None`` when usage is unmeasured."""
    exceeds_request: bool | None
    """Whether usage exceeds the request; ``None`` when that cannot be known."""
    usage_measured: bool
    """True when every container of the pod has a working-set series."""
    predicted_eviction: bool
    """True when evicting the pods ranked before it on its node would not yet bring
    ``memory.available`` back above the threshold, so the kubelet would evict this one too."""
    reason: str
    """Why it sits here, in words."""


_CANDIDATE_SLOTS: Final = tuple(
    getattr(EvictionCandidate, item.name).__set__ for item in fields(EvictionCandidate)
)


def _new_candidate(*values: Any) -> EvictionCandidate:
    """``EvictionCandidate(*values)``, about a third cheaper.

    The frozen dataclass's ``__init__`` assigns each of the 15 fields through
    ``object.__setattr__``; setting the slots through their descriptors does the same
    without the lookups, which at 50,000 candidates per analysis is a tenth of node
    pressure's time. There is no ``__post_init__`` to skip; a test pins the two to equal
    objects.
    """
    candidate = object.__new__(EvictionCandidate)
    for assign, value in zip(_CANDIDATE_SLOTS, values, strict=True):
        assign(candidate, value)
    return candidate


@dataclass(frozen=True, slots=True)
class NodePressure:
    """Everything about one node's pressure."""

    node: str
    level: PressureLevel
    reasons: tuple[str, ...]
    """What put the node at its level (empty when ``ok``)."""
    ready: bool
    """The ``Ready`` condition is ``True``."""
    schedulable: bool
    """Not cordoned and without ``NoSchedule``/``NoExecute`` taints."""
    conditions: tuple[ConditionState, ...]
    """Every reported condition."""
    pressure_conditions: tuple[str, ...]
    """The types of the pressure conditions that are ``True``."""
    psi: tuple[PsiFigure, ...]
    """Pressure-stall figures; empty when the node has no PSI history (old kernel, or
    not collected)."""
    resources: tuple[ResourceFigures, ...]
    """CPU, memory, ephemeral storage and pods, in that order."""
    memory_available_bytes: float | None
    """The newest ``memory.available`` sample; ``None`` when not measured."""
    memory_threshold_bytes: float | None
    """The ``memory.available`` threshold for this node."""
    memory_margin_bytes: float | None
    """``memory_available_bytes - memory_threshold_bytes`` (negative: below threshold)."""
    memory_threshold_eta_seconds: float | None
    """When available memory keeps its linear trend over the window, seconds until it
    reaches the threshold; ``None`` when it is not falling, is already below, too few
    samples exist, or evictions are not predicted."""
    nodefs_available_percent: float | None
    """Newest available ephemeral storage as a percentage of its capacity."""
    nodefs_threshold_percent: float
    """The ``nodefs.available`` threshold."""
    evictable_pods: int
    """Active pods the kubelet may evict (not static, mirror or critical-priority)."""
    critical_pods: int
    """Active pods the kubelet never evicts."""


@dataclass(frozen=True, slots=True)
class PendingPod:
    """A pod waiting for a node, and what blocks it."""

    namespace: str
    pod: str
    cpu_request: float
    """Effective CPU request, cores."""
    memory_request: float
    """Effective memory request, bytes."""
    priority: int
    blockers: tuple[SchedulingBlocker, ...]
    nodes_with_room: int
    """Schedulable nodes with room for its CPU, memory and a pod slot."""
    fits_if_allowed: tuple[str, ...]
    """Cordoned or tainted nodes that have room for it (if uncordoned, or tolerated)."""


@dataclass(frozen=True, slots=True)
class SchedulingPressure:
    """Pods waiting for a node, and the cluster-wide reasons."""

    pending_pods: tuple[PendingPod, ...]
    """Unscheduled pending pods, highest priority first, then by name."""
    blocked_by: Mapping[SchedulingBlocker, int]
    """How many pending pods each blocker affects."""
    nodes_cordoned: tuple[str, ...]
    nodes_tainted: Mapping[str, tuple[str, ...]]
    """Nodes with ``NoSchedule``/``NoExecute`` taints, with the taints (``key:effect``)."""
    nodes_not_ready: tuple[str, ...]
    largest_schedulable_cpu: float
    """The most CPU one new pod can request and still fit on some node, cores."""
    largest_schedulable_memory: float
    """The most memory one new pod can request and still fit on some node, bytes."""


@dataclass(frozen=True, slots=True)
class SchedulingHint:
    """One suggestion; only with ``include_scheduling_hints``."""

    kind: HintKind
    subject: str
    """The node (``node-a``) or pod (``shop/web-1``) concerned, or ``cluster``."""
    message: str


@dataclass(frozen=True, slots=True)
class NodePressureReport:
    """The answer of :func:`analyze_node_pressure`."""

    taken_at_ms: int
    """When the snapshot was taken."""
    thresholds: EvictionThresholds
    nodes: tuple[NodePressure, ...]
    """Per node, most at risk first (level, then smallest memory margin), then by name."""
    eviction_ranking: tuple[EvictionCandidate, ...]
    """Every evictable pod, most at risk first: nodes under or near pressure first, then
    round by round in the kubelet's order within each node (the kubelet evicts at most one
    pod per node per eviction cycle), the most pressed node first in each round. Empty
    when ``predict_evictions`` is False."""
    scheduling: SchedulingPressure
    """Pending pods cluster-wide (also when narrowed to one node)."""
    fragmentation: FragmentationReport
    """Free room and stranded resources, from requests (cluster-wide)."""
    hints: tuple[SchedulingHint, ...]
    """Empty unless ``include_scheduling_hints``."""
    nodes_under_pressure: int
    nodes_near_pressure: int
    missing_data: tuple[str, ...]
    """What was not measured, in words (``node-a: no memory.available series``)."""
    top: int | None = None
    """Only the first ``top`` candidates of ``eviction_ranking`` are listed; None: every
    evictable pod. The per-node figures always cover every pod."""
    truncated: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """With ``top``: ``{"evictionRanking": N}`` when the ranking had N > ``top`` pods."""


# ---------------------------------------------------------------------------- parameters


def _parse_thresholds(memory_available: str, nodefs_percent: float) -> EvictionThresholds:
    if (
        isinstance(nodefs_percent, bool)
        or not isinstance(nodefs_percent, int | float)
        or not 0.0 <= nodefs_percent < 100.0
    ):
        raise KubepulseValueError(
            "nodefs_available_percent must be a number from 0 up to (not including) 100, "
            f"got {nodefs_percent!r}"
        )
    if not isinstance(memory_available, str) or not memory_available.strip():
        raise KubepulseValueError(
            "memory_available_threshold must be a quantity such as '100Mi' or a percentage "
            f"such as '5%', got {memory_available!r}"
        )
    text = memory_available.strip()
    if text.endswith("%"):
        try:
            percent = float(text[:-1])
        except ValueError:
            percent = math.nan
        if not 0.0 <= percent < 100.0:
            raise KubepulseValueError(
                "memory_available_threshold as a percentage must be from 0% up to 100%, "
                f"got {memory_available!r}"
            )
        return EvictionThresholds(None, percent, float(nodefs_percent))
    try:
        threshold = float(memory_bytes(text))
    except QuantityError as exc:
        raise KubepulseValueError(
            f"memory_available_threshold must be a quantity such as '100Mi' or a "
            f"percentage such as '5%': {exc}"
        ) from exc
    return EvictionThresholds(threshold, None, float(nodefs_percent))


def _unknown_node_error(name: str, snapshot: ClusterSnapshot) -> UnknownObjectError:
    known = sorted(node.name for node in snapshot.nodes)
    if not known:
        return UnknownObjectError(f"node {name!r} is not in the snapshot, which has no nodes")
    shown = ", ".join(known[:_KNOWN_NODES_IN_ERROR])
    more = len(known) - _KNOWN_NODES_IN_ERROR
    suffix = f" and {more} more" if more > 0 else ""
    return UnknownObjectError(
        f"node {name!r} is not in the snapshot; known nodes: {shown}{suffix} "
        "(kubectl get nodes lists them)"
    )


# ---------------------------------------------------------------------------- usage


LatestByContainer = dict[tuple[str, str, str], float]
"""The newest sample of each container's series, keyed ``(namespace, pod, container)``."""


def latest_by_container(series: Mapping[ContainerRef, TimeSeries]) -> LatestByContainer:
    """Index the newest sample of every container's series by plain tuples.

    One pass over the series, so that the per-container lookups that follow hash and
    compare tuples of strings in C: at 50,000 pods that is several times cheaper than
    building a :class:`ContainerRef` per container and looking it up. Empty series are
    left out, like missing ones.
    """
    return {
        (ref.namespace, ref.pod, ref.container): samples.values[-1]
        for ref, samples in series.items()
        if samples.values
    }


# ---------------------------------------------------------------------------- ranking


@dataclass(frozen=True, slots=True)
class RankedPod:
    """One pod in a node's eviction order, as :func:`rank_for_eviction` returns it."""

    pod: Pod
    memory_request_bytes: float
    """Effective memory request, 0 when none."""
    memory_usage_bytes: float | None
    """Measured working set, ``None`` when unmeasured (a lower bound when incomplete)."""
    usage_measured: bool
    """Every running container was measured."""
    exceeds_request: bool | None
    """Usage above the request; ``None`` when unknown."""


def _exceeds(qos: QosClass, request: float, usage: float | None, complete: bool) -> bool | None:
    if usage is not None:
        if usage > request:
            # Partial usage is a lower bound: above the request it already exceeds.
            return True
        if complete:
            return False
    if qos == "BestEffort" and request <= 0.0:
        # Requests nothing: any running process is above it. Known without measuring.
        return True
    return None


_EXCEEDS_ORDER: Final[Mapping[bool | None, int]] = {True: 0, None: 1, False: 2}
_UNMEASURED: Final[tuple[None, bool]] = (None, False)


def rank_for_eviction(
    pods: Iterable[Pod],
    memory_usage: Mapping[tuple[str, str], tuple[float | None, bool]],
    *,
    cache: RequestCache | None = None,
) -> list[RankedPod]:
    """Order one node's evictable pods as the kubelet does under memory pressure.

    The kubelet's eviction manager (``pkg/kubelet/eviction/helpers.go`` in
    kubernetes/kubernetes, ``rankMemoryPressure``; documented at
    https://kubernetes.io/docs/concepts/scheduling-eviction/node-pressure-eviction/#pod-selection-for-kubelet-eviction)
    sorts with ``orderedBy(exceedMemoryRequests, priority, memory)``:

    1. pods whose memory usage (working set) exceeds their memory request first;
    2. then lower ``spec.priority`` first (unset counts as 0);
    3. then larger usage above the request first.

    It never evicts critical pods (static, mirror, priority of at least
    :data:`CRITICAL_PRIORITY`); pass only evictable pods. The kubelet puts pods *it* has
    no stats for first; here a missing series means kubepulse did not measure the pod,
    not that the kubelet cannot, so such a pod is ranked by what is known instead: it
    exceeds its request when the measured part already does or when it is BestEffort
    (a request of zero); otherwise "unknown" ranks between pods known to exceed and pods
    known not to; among equal priorities, unknown usage comes after known usage. Ties
    are broken by QoS (BestEffort, Burstable, Guaranteed) and then by name, so the order
    is deterministic.

    ``memory_usage`` maps ``(namespace, pod)`` to (usage bytes or None, fully measured);
    ``cache`` shares computed requests with the caller. Returns the pods in eviction
    order, first evicted first.
    """
    del cache  # requests are memoised on the pods now; kept for callers that pass one
    return [RankedPod(*row) for row in _rank(pods, memory_usage)]


_RankRow = tuple[Pod, float, float | None, bool, bool | None]
"""A :class:`RankedPod` as a plain tuple, in its field order: the analysis ranks every
pod of the cluster, and building tuples instead of frozen dataclasses saves a third of
the ranking's time at 50,000 pods."""


def _rank_entry(
    pod: Pod, request: float, usage: float | None, complete: bool
) -> tuple[tuple[int, int, int, float, int, str, str], _RankRow]:
    """One pod's sort key in :func:`rank_for_eviction`'s order, and its row.

    The kubelet's ``rankMemoryPressure`` order: exceedMemoryRequests, then priority
    (lower first), then usage above the request (larger first); pods of unknown usage
    after known ones of equal priority, then QoS and name so that the order is total.
    """
    exceeds = _exceeds(pod.qos_class, request, usage, complete)
    if usage is None:
        unknown, above = 1, 0.0
    else:
        unknown, above = 0, -(usage - request)
    key = (
        _EXCEEDS_ORDER[exceeds],
        pod.priority or 0,
        unknown,
        above,
        _QOS_ORDER[pod.qos_class],
        pod.namespace,
        pod.name,
    )
    return key, (pod, request, usage, complete, exceeds)


def _rank(
    pods: Iterable[Pod], memory_usage: Mapping[tuple[str, str], tuple[float | None, bool]]
) -> list[_RankRow]:
    """:func:`rank_for_eviction`'s order, as :data:`_RankRow` tuples."""
    keyed = [
        _rank_entry(
            pod,
            pod.request_amounts[1],
            *memory_usage.get((pod.namespace, pod.name), _UNMEASURED),
        )
        for pod in pods
    ]
    keyed.sort(key=itemgetter(0))
    return [row for _, row in keyed]


def _verdict(exceeds: bool | None) -> str:
    if exceeds is True:
        return "above its memory request"
    if exceeds is False:
        return "within its memory request"
    return "unknown whether above its memory request"


class _Reasons:
    """Each candidate's reason in words, for one analysis.

    ``"Burstable, priority 0, above its memory request: uses 300Mi of 200Mi requested"``.
    The parts that repeat from pod to pod (QoS, priority and verdict; the request, the
    same for every replica of a workload) are formatted once per call: with 50,000
    candidates, formatting every float anew was a fifth of the ranking's time.
    """

    __slots__ = ("_heads", "_requested")

    def __init__(self) -> None:
        self._heads: dict[tuple[str, int, bool | None], str] = {}
        self._requested: dict[float, str] = {}

    def __call__(self, qos: QosClass, priority: int, row: _RankRow) -> str:
        _, request, usage, complete, exceeds = row
        head = self._heads.get((qos, priority, exceeds))
        if head is None:
            head = f"{qos}, priority {priority}, {_verdict(exceeds)}: "
            self._heads[(qos, priority, exceeds)] = head
        if usage is None:
            return head + "memory use not measured"
        requested = self._requested.get(request)
        if requested is None:
            requested = self._requested[request] = f"{request / _MI:.0f}Mi requested"
        if complete:
            return f"{head}uses {usage / _MI:.0f}Mi of {requested}"
        return (
            f"{head}uses at least {usage / _MI:.0f}Mi of {requested} (some containers not measured)"
        )


# ---------------------------------------------------------------------------- per node


def _psi(history: UsageHistory, node: str) -> tuple[PsiFigure, ...]:
    figures: list[PsiFigure] = []
    for name, series in sorted(history.node_pressure.get(node, {}).items()):
        window = series.between(history.start_ms, history.end_ms)
        if not len(window):
            continue
        values = window.values
        figures.append(
            PsiFigure(
                name=name,
                latest=values[-1],
                mean=math.fsum(values) / len(values),
                peak=max(values),
                samples=len(values),
            )
        )
    return tuple(figures)


def _amount(node: Node, resource: str, *, allocatable: bool) -> float | None:
    amount = (node.allocatable if allocatable else node.capacity).get(resource)
    return None if amount is None else float(amount)


def _percent(part: float | None, whole: float | None) -> float | None:
    if part is None or whole is None or whole <= 0:
        return None
    return 100.0 * part / whole


def _figures(
    resource: str,
    node: Node,
    requested: float,
    used: float | None,
    unmeasured: int,
) -> ResourceFigures:
    allocatable = _amount(node, resource, allocatable=True)
    return ResourceFigures(
        resource=resource,
        capacity=_amount(node, resource, allocatable=False),
        allocatable=allocatable,
        requested=requested,
        requested_percent=_percent(requested, allocatable),
        used=used,
        used_percent=_percent(used, allocatable),
        unmeasured_pods=unmeasured,
    )


def _memory_eta_seconds(series: TimeSeries, threshold: float) -> float | None:
    """Seconds until the linear trend of available memory reaches the threshold."""
    if len(series) < _MIN_TREND_SAMPLES:
        return None
    try:
        fit = forecast_linear(series.timestamps_ms, series.values, 0)
    except (InsufficientDataError, KubepulseValueError):
        return None
    slope = fit.parameters.get("slope", 0.0)
    if not slope < 0.0 or fit.value <= threshold:
        return None
    return (fit.value - threshold) / -slope


@dataclass(slots=True)
class _NodeWork:
    """Per-node intermediate results, before the cluster-wide ranking."""

    pressure: NodePressure
    ordered: list[_RankRow]
    deficit_bytes: float | None
    severity: float


@dataclass(slots=True)
class _Signals:
    """A node's eviction signals and the level they put it at."""

    reasons: list[str]
    under: bool = False
    near: bool = False
    available: float | None = None
    threshold: float | None = None
    margin: float | None = None
    eta: float | None = None
    nodefs_percent: float | None = None
    storage_used: float | None = None


@dataclass(slots=True)
class _PodPass:
    """What one pass over a node's pods yields."""

    requested: dict[str, float]
    used_cpu: float | None
    used_memory: float | None
    unmeasured_cpu: int
    unmeasured_memory: int
    critical: int
    evictable: int
    ordered: list[_RankRow]
    """The evictable pods in eviction order (empty unless asked to rank)."""


def _pod_pass(
    pods: Sequence[Pod],
    memory_usage: LatestByContainer,
    cpu_usage: LatestByContainer,
    *,
    rank: bool,
) -> _PodPass:
    """Requests, measured use, evictability and eviction order in one pass over a node's pods.

    A pod's use is the sum of the newest samples of its running containers
    (:attr:`~kubepulse.model.Pod.running_container_names`), and it is fully measured when
    every one of them has a sample. Looking the pod's own containers up costs one lookup
    per container and nothing for series of pods that are gone. With ``rank``, the
    evictable pods are sorted as :func:`rank_for_eviction` sorts them, from the figures
    this pass has already computed.
    """
    requested_cpu = requested_memory = requested_storage = 0.0
    used_cpu: float | None = None
    used_memory: float | None = None
    unmeasured_cpu = unmeasured_memory = critical = evictable = 0
    keyed: list[tuple[tuple[int, int, int, float, int, str, str], _RankRow]] = []
    entry = _rank_entry
    for pod in pods:
        cpu_request, memory_request, storage_request = pod.request_amounts
        requested_cpu += cpu_request
        requested_memory += memory_request
        requested_storage += storage_request
        namespace, name = pod.namespace, pod.name
        memory_total = cpu_total = 0.0
        memory_found = cpu_found = False
        memory_complete = cpu_complete = True
        for container in pod.running_container_names:
            ref = (namespace, name, container)
            value = memory_usage.get(ref)
            if value is None:
                memory_complete = False
            else:
                memory_total += value
                memory_found = True
            value = cpu_usage.get(ref)
            if value is None:
                cpu_complete = False
            else:
                cpu_total += value
                cpu_found = True
        if memory_found:
            used_memory = (used_memory or 0.0) + memory_total
        else:
            memory_complete = False
        if not memory_complete:
            unmeasured_memory += 1
        if cpu_found:
            used_cpu = (used_cpu or 0.0) + cpu_total
        if not (cpu_found and cpu_complete):
            unmeasured_cpu += 1
        # The kubelet never evicts critical pods: static (mirror) ones and those of
        # priority CRITICAL_PRIORITY or more.
        priority = pod.priority
        if (priority is not None and priority >= CRITICAL_PRIORITY) or pod.is_static:
            critical += 1
            continue
        evictable += 1
        if rank:
            keyed.append(
                entry(pod, memory_request, memory_total if memory_found else None, memory_complete)
            )
    keyed.sort(key=itemgetter(0))
    return _PodPass(
        requested={
            CPU: requested_cpu,
            MEMORY: requested_memory,
            EPHEMERAL_STORAGE: requested_storage,
        },
        used_cpu=used_cpu,
        used_memory=used_memory,
        unmeasured_cpu=unmeasured_cpu,
        unmeasured_memory=unmeasured_memory,
        critical=critical,
        evictable=evictable,
        ordered=[row for _, row in keyed],
    )


def _memory_signal(
    node: Node,
    history: UsageHistory,
    thresholds: EvictionThresholds,
    signals: _Signals,
    *,
    predict: bool,
    missing: list[str],
) -> None:
    capacity = _amount(node, MEMORY, allocatable=False)
    signals.threshold = thresholds.memory_bytes_for(capacity)
    series = history.node_memory_available_bytes.get(node.name)
    signals.available = available = None if series is None else series.last()
    threshold = signals.threshold
    if available is None or series is None:
        missing.append(f"{node.name}: no memory.available series")
        return
    if threshold is None:
        missing.append(f"{node.name}: no memory capacity for the percentage threshold")
        return
    signals.margin = margin = available - threshold
    near_margin = max(threshold, _MEMORY_NEAR_SHARE * (capacity or 0.0))
    if margin < 0:
        signals.under = True
        signals.reasons.append(
            f"memory.available {available / _MI:.0f}Mi is below the "
            f"{threshold / _MI:.0f}Mi eviction threshold"
        )
        return
    if margin < near_margin:
        signals.near = True
        signals.reasons.append(
            f"memory.available {available / _MI:.0f}Mi is within "
            f"{near_margin / _MI:.0f}Mi of the eviction threshold"
        )
    if predict:
        signals.eta = _memory_eta_seconds(
            series.between(history.start_ms, history.end_ms), threshold
        )
        if signals.eta is not None and signals.eta <= _ETA_NEAR_SECONDS:
            signals.near = True
            signals.reasons.append(
                "memory.available falls toward the threshold: crossing in about "
                f"{signals.eta / 60:.0f} min at the window's trend"
            )


def _storage_signal(
    node: Node,
    history: UsageHistory,
    thresholds: EvictionThresholds,
    signals: _Signals,
    *,
    missing: list[str],
) -> None:
    capacity = _amount(node, EPHEMERAL_STORAGE, allocatable=False)
    series = history.node_ephemeral_storage_available_bytes.get(node.name)
    available = None if series is None else series.last()
    if available is None:
        missing.append(f"{node.name}: no nodefs.available series")
        return
    if capacity is None:
        missing.append(f"{node.name}: no ephemeral-storage capacity")
        return
    signals.storage_used = capacity - available
    signals.nodefs_percent = percent = _percent(available, capacity)
    if percent is None:
        return
    threshold = thresholds.nodefs_available_percent
    if percent < threshold:
        signals.under = True
        signals.reasons.append(
            f"nodefs.available {percent:.1f}% is below the {threshold:g}% eviction threshold"
        )
    elif percent < threshold + _NODEFS_NEAR_POINTS:
        signals.near = True
        signals.reasons.append(
            f"nodefs.available {percent:.1f}% is within {_NODEFS_NEAR_POINTS:g} points of "
            f"the {threshold:g}% threshold"
        )


def _psi_signal(psi: Sequence[PsiFigure], signals: _Signals) -> None:
    for figure in psi:
        limit = _PSI_NEAR.get(figure.name)
        if limit is not None and figure.mean >= limit:
            signals.near = True
            signals.reasons.append(
                f"PSI {figure.name} averaged {100 * figure.mean:.0f}% of the window "
                f"(at least {100 * limit:.0f}% counts as pressure)"
            )


def _level(signals: _Signals, node: Node, psi: Sequence[PsiFigure]) -> PressureLevel:
    if signals.under:
        return PressureLevel.UNDER_PRESSURE
    if signals.near:
        return PressureLevel.NEAR_PRESSURE
    measured = (
        signals.available is not None
        or signals.nodefs_percent is not None
        or bool(psi)
        or any(condition.type in _PRESSURE_CONDITIONS for condition in node.conditions)
    )
    return PressureLevel.OK if measured else PressureLevel.UNKNOWN


def _analyze_node(
    node: Node,
    *,
    room: NodeRoom | None,
    history: UsageHistory,
    pods: _PodPass,
    pod_count: int,
    thresholds: EvictionThresholds,
    predict: bool,
    missing: list[str],
) -> _NodeWork:
    signals = _Signals(reasons=[])
    _memory_signal(node, history, thresholds, signals, predict=predict, missing=missing)
    _storage_signal(node, history, thresholds, signals, missing=missing)
    pressure_conditions = tuple(condition.type for condition in node.pressure_conditions)
    for condition_type in pressure_conditions:
        signals.under = True
        signals.reasons.append(f"condition {condition_type} is True")
    psi = _psi(history, node.name)
    if not psi:
        missing.append(f"{node.name}: no PSI series")
    _psi_signal(psi, signals)
    level = _level(signals, node, psi)

    resources = (
        _figures(CPU, node, pods.requested[CPU], pods.used_cpu, pods.unmeasured_cpu),
        _figures(MEMORY, node, pods.requested[MEMORY], pods.used_memory, pods.unmeasured_memory),
        _figures(
            EPHEMERAL_STORAGE,
            node,
            pods.requested[EPHEMERAL_STORAGE],
            signals.storage_used,
            0 if signals.storage_used is not None else pod_count,
        ),
        _figures(PODS, node, float(pod_count), float(pod_count), 0),
    )
    ordered = pods.ordered
    margin = signals.margin
    deficit: float | None = None
    if margin is not None and margin < 0:
        deficit = -margin
    elif signals.available is None and "MemoryPressure" in pressure_conditions:
        # The kubelet is evicting but the size of the gap is unknown: at least one pod.
        deficit = math.nan
    # Smaller margin relative to capacity = more pressed; unknown margins last.
    capacity = _amount(node, MEMORY, allocatable=False)
    if margin is None:
        severity = math.inf
    elif capacity:
        severity = margin / capacity
    else:
        severity = margin
    pressure = NodePressure(
        node=node.name,
        level=level,
        reasons=tuple(signals.reasons),
        ready=node.is_ready,
        schedulable=room.schedulable if room is not None else False,
        conditions=tuple(
            ConditionState(c.type, c.status, c.reason, c.message) for c in node.conditions
        ),
        pressure_conditions=pressure_conditions,
        psi=psi,
        resources=resources,
        memory_available_bytes=signals.available,
        memory_threshold_bytes=signals.threshold,
        memory_margin_bytes=margin,
        memory_threshold_eta_seconds=signals.eta,
        nodefs_available_percent=signals.nodefs_percent,
        nodefs_threshold_percent=thresholds.nodefs_available_percent,
        evictable_pods=pods.evictable,
        critical_pods=pods.critical,
    )
    return _NodeWork(pressure, ordered, deficit, severity)


def _predicted_count(deficit_bytes: float | None, ordered: Sequence[_RankRow]) -> int:
    """How many of a node's first pods the kubelet would evict to cover ``deficit_bytes``.

    Pods are taken in eviction order while memory is still missing; an unmeasured pod
    frees an unknown amount, so it counts as nothing and the prediction errs towards
    more evictions, never fewer. A gap of unknown size (NaN) means at least one pod.
    """
    if deficit_bytes is None or not ordered:
        return 0
    if math.isnan(deficit_bytes):
        return 1
    remaining = deficit_bytes
    count = 0
    for row in ordered:
        if not remaining > 0:
            break
        count += 1
        remaining -= row[2] or 0.0
    return count


def _by_level_then_severity(item: _NodeWork) -> tuple[int, float, str]:
    return _LEVEL_ORDER[item.pressure.level], item.severity, item.pressure.node


def _candidates(work: Sequence[_NodeWork], top: int | None) -> list[EvictionCandidate]:
    """Interleave the nodes' orders: by node level, then round, then node severity.

    That is the order of a sort by (node level, position on the node, node severity, node
    name). It is produced without a key per pod: the nodes are sorted by (level,
    severity, name), and within each level the first pod of each node comes, in that
    order, then the second pod of each, and so on. With ``top`` only the first ``top``
    candidates are built: at 50,000 pods building every one is nearly half of the
    analysis.
    """
    limit = math.inf if top is None else top
    nodes = sorted(work, key=_by_level_then_severity)
    # One constructor call per pod, positional and inline (see _new_candidate).
    candidates: list[EvictionCandidate] = []
    add = candidates.append
    reason = _Reasons()
    rank = 0
    for _, group in itertools.groupby(nodes, key=lambda item: _LEVEL_ORDER[item.pressure.level]):
        active = [
            (item.pressure, item.ordered, _predicted_count(item.deficit_bytes, item.ordered))
            for item in group
            if item.ordered
        ]
        position = 0
        while active and rank < limit:
            index = position
            position += 1
            for pressure, ordered, predicted in active:
                if rank >= limit:
                    break
                row = ordered[index]
                pod, request, usage, measured, exceeds = row
                priority = pod.priority or 0
                qos = pod.qos_class
                rank += 1
                add(
                    _new_candidate(
                        pod.namespace,
                        pod.name,
                        pressure.node,
                        rank,
                        position,
                        pressure.level,
                        qos,
                        priority,
                        request,
                        usage,
                        None if usage is None else usage - request,
                        exceeds,
                        measured,
                        position <= predicted,
                        reason(qos, priority, row),
                    )
                )
            active = [member for member in active if len(member[1]) > position]
    return candidates


# ---------------------------------------------------------------------------- scheduling


_Placement = tuple[int, tuple[SchedulingBlocker, ...], tuple[str, ...]]
"""Where a pending pod's shape fits: nodes with room, blockers, unschedulable nodes
with room."""


def _scheduling(
    snapshot: ClusterSnapshot, rooms: Sequence[NodeRoom], cache: RequestCache
) -> SchedulingPressure:
    pool = [room for room in rooms if room.schedulable]
    others = [room for room in rooms if not room.schedulable]
    pool_free = [
        (
            room.free_cpu,
            room.free_memory,
            math.inf if room.free_pods is None else float(room.free_pods),
        )
        for room in pool
    ]
    # Largest free amounts on nodes with a slot (what a new pod can get), and on any
    # node (to tell "not enough CPU anywhere" from "no slot anywhere").
    max_cpu = max((cpu for cpu, _, pods in pool_free if pods >= 1), default=-math.inf)
    max_memory = max((memory for _, memory, pods in pool_free if pods >= 1), default=-math.inf)
    any_cpu = max((cpu for cpu, _, _ in pool_free), default=-math.inf)
    any_memory = max((memory for _, memory, _ in pool_free), default=-math.inf)
    any_slot = any(pods >= 1 for _, _, pods in pool_free)

    def place(cpu: float, memory: float) -> _Placement:
        """Nodes with room, blockers, and unschedulable nodes it would fit: per shape."""
        with_room = sum(
            1
            for free_cpu, free_memory, free_pods in pool_free
            if free_pods >= 1
            and free_cpu + CPU_SLACK >= cpu
            and free_memory + MEMORY_SLACK >= memory
        )
        blockers: list[SchedulingBlocker] = []
        if not pool:
            blockers.append(SchedulingBlocker.NO_SCHEDULABLE_NODE)
        elif with_room:
            blockers.append(SchedulingBlocker.NOT_BY_REQUESTS)
        else:
            if not any_slot:
                blockers.append(SchedulingBlocker.TOO_MANY_PODS)
            if any_cpu + CPU_SLACK < cpu:
                blockers.append(SchedulingBlocker.INSUFFICIENT_CPU)
            if any_memory + MEMORY_SLACK < memory:
                blockers.append(SchedulingBlocker.INSUFFICIENT_MEMORY)
            if not blockers:
                blockers.append(SchedulingBlocker.FRAGMENTED)
        fits_elsewhere = tuple(
            sorted(
                room.node
                for room in others
                if (room.free_pods is None or room.free_pods >= 1)
                and room.free_cpu + CPU_SLACK >= cpu
                and room.free_memory + MEMORY_SLACK >= memory
            )
        )
        return with_room, tuple(blockers), fits_elsewhere

    # Pending replicas share their shape: each shape is placed once (1,000 nodes are
    # scanned per shape, not per pod).
    placements: dict[tuple[float, float], _Placement] = {}
    pending: list[PendingPod] = []
    counts: dict[SchedulingBlocker, int] = {}
    for pod in snapshot.pods:
        if pod.node_name is not None or pod.phase not in (None, "Pending"):
            continue
        cpu, memory = cache.cpu_memory(pod)
        placement = placements.get((cpu, memory))
        if placement is None:
            placement = placements[(cpu, memory)] = place(cpu, memory)
        with_room, blockers, fits_elsewhere = placement
        for blocker in blockers:
            counts[blocker] = counts.get(blocker, 0) + 1
        pending.append(
            PendingPod(
                namespace=pod.namespace,
                pod=pod.name,
                cpu_request=cpu,
                memory_request=memory,
                priority=pod.priority or 0,
                blockers=blockers,
                nodes_with_room=with_room,
                fits_if_allowed=fits_elsewhere,
            )
        )
    pending.sort(key=lambda item: (-item.priority, item.namespace, item.pod))
    return SchedulingPressure(
        pending_pods=tuple(pending),
        blocked_by=counts,
        nodes_cordoned=tuple(sorted(room.node for room in others if "cordoned" in room.blocked_by)),
        nodes_tainted={
            room.node: tuple(
                reason.removeprefix("taint ")
                for reason in room.blocked_by
                if reason.startswith("taint ")
            )
            for room in others
            if any(reason.startswith("taint ") for reason in room.blocked_by)
        },
        nodes_not_ready=tuple(sorted(node.name for node in snapshot.nodes if not node.is_ready)),
        largest_schedulable_cpu=max(max_cpu, 0.0) if any_slot else 0.0,
        largest_schedulable_memory=max(max_memory, 0.0) if any_slot else 0.0,
    )


def _hints(
    nodes: Sequence[NodePressure],
    rooms: Sequence[NodeRoom],
    scheduling: SchedulingPressure,
) -> tuple[SchedulingHint, ...]:
    hints: list[SchedulingHint] = []
    pressed = {node.node for node in nodes if node.level is not PressureLevel.OK}
    for node in nodes:
        if node.level in (PressureLevel.UNDER_PRESSURE, PressureLevel.NEAR_PRESSURE):
            hints.append(
                SchedulingHint(
                    HintKind.AVOID_NODE,
                    node.node,
                    f"{node.level.value.replace('_', ' ')} ({'; '.join(node.reasons)}): "
                    f"keep new pods off it (kubectl cordon {node.node}) until it recovers",
                )
            )
            memory = next(figure for figure in node.resources if figure.resource == MEMORY)
            if memory.used is not None and memory.used > memory.requested:
                hints.append(
                    SchedulingHint(
                        HintKind.RAISE_REQUESTS,
                        node.node,
                        f"its pods use {(memory.used - memory.requested) / _MI:.0f}Mi more "
                        "memory than they request, so the scheduler over-packs it: raise the "
                        "memory requests of the pods ranked first for eviction",
                    )
                )
    calm = [
        room
        for room in rooms
        if room.schedulable and room.node not in pressed and room.allocatable_cpu > 0
    ]
    calm.sort(
        key=lambda room: (
            -min(
                room.free_cpu / room.allocatable_cpu,
                room.free_memory / room.allocatable_memory if room.allocatable_memory else 0.0,
            ),
            room.node,
        )
    )
    for room in calm[:_PREFERRED_NODES_IN_HINTS]:
        hints.append(
            SchedulingHint(
                HintKind.PREFER_NODE,
                room.node,
                f"most room and no pressure: {max(room.free_cpu, 0):.2f} cores and "
                f"{max(room.free_memory, 0) / _GI:.1f}Gi free by requests",
            )
        )
    largest_cpu = scheduling.largest_schedulable_cpu
    largest_memory = scheduling.largest_schedulable_memory
    for pending in scheduling.pending_pods:
        subject = f"{pending.namespace}/{pending.pod}"
        if pending.fits_if_allowed:
            hints.append(
                SchedulingHint(
                    HintKind.UNCORDON_OR_TOLERATE,
                    subject,
                    "fits on "
                    + ", ".join(pending.fits_if_allowed[:_PREFERRED_NODES_IN_HINTS])
                    + " if uncordoned or if the pod tolerates their taints",
                )
            )
        if any(
            blocker
            in (
                SchedulingBlocker.INSUFFICIENT_CPU,
                SchedulingBlocker.INSUFFICIENT_MEMORY,
                SchedulingBlocker.FRAGMENTED,
            )
            for blocker in pending.blockers
        ):
            hints.append(
                SchedulingHint(
                    HintKind.RESIZE_PENDING_POD,
                    subject,
                    f"requests {pending.cpu_request:.2f} cores and "
                    f"{pending.memory_request / _GI:.2f}Gi; the largest that fits anywhere "
                    f"is {largest_cpu:.2f} cores or {largest_memory / _GI:.2f}Gi: lower its "
                    "requests or add a node at least that large",
                )
            )
    if any(
        SchedulingBlocker.TOO_MANY_PODS in pending.blockers
        or SchedulingBlocker.NO_SCHEDULABLE_NODE in pending.blockers
        for pending in scheduling.pending_pods
    ):
        hints.append(
            SchedulingHint(
                HintKind.ADD_CAPACITY,
                "cluster",
                "no schedulable node has a pod slot (or none is schedulable): add nodes",
            )
        )
    return tuple(hints)


# ---------------------------------------------------------------------------- entry point


def analyze_node_pressure(
    snapshot: ClusterSnapshot,
    history: UsageHistory,
    *,
    include_scheduling_hints: bool = False,
    predict_evictions: bool = True,
    node: str | None = None,
    memory_available_threshold: str = "100Mi",
    nodefs_available_percent: float = 10.0,
    tolerated_taint_keys: Collection[str] = (),
    top: int | None = None,
) -> NodePressureReport:
    """Pressure, room and eviction risk per node; see the module docstring.

    Args:
        snapshot: nodes and pods.
        history: node PSI, available memory and storage, per-container working set and
            CPU. Only the newest sample counts for "used" and the signals; the whole
            window for PSI figures and the memory trend.
        include_scheduling_hints: add :attr:`NodePressureReport.hints`.
        predict_evictions: rank pods for eviction, mark the ones the kubelet would evict
            to get back above the memory threshold, and estimate when falling available
            memory crosses it. False leaves ``eviction_ranking`` empty.
        node: narrow the per-node figures and the ranking to this node (scheduling
            pressure and fragmentation stay cluster-wide).
        memory_available_threshold: the kubelet's hard ``memory.available`` threshold,
            a quantity (``"100Mi"``) or a percentage of capacity (``"5%"``).
        nodefs_available_percent: the kubelet's hard ``nodefs.available`` threshold, in
            percent of the node's ephemeral-storage capacity.
        tolerated_taint_keys: taint keys every pod tolerates, so that nodes carrying them
            still count as schedulable (for example ``kwok.x-k8s.io/node`` on kwok
            clusters); pods' own tolerations are not in the snapshot.
        top: list only the first ``top`` pods of the eviction ranking (the most at risk);
            the report's ``truncated`` says how many there were.

    Raises:
        KubepulseValueError: ``node`` is not in the snapshot (the message lists some that
            are), a threshold is malformed or out of range, or ``top`` is not a whole
            number from 1 to :data:`~kubepulse.analysis.listing.MAXIMUM_TOP`.
    """
    thresholds = _parse_thresholds(memory_available_threshold, nodefs_available_percent)
    top = check_top(top)
    if node is not None and snapshot.node(node) is None:
        raise _unknown_node_error(node, snapshot)
    cache = RequestCache()
    rooms, missing_allocatable = free_room(
        snapshot, tolerated_taint_keys=tolerated_taint_keys, cache=cache
    )
    rooms_by_node = {room.node: room for room in rooms}
    memory_usage = latest_by_container(history.memory_working_set_bytes)
    cpu_usage = latest_by_container(history.cpu_cores)
    missing: list[str] = [f"{name}: no allocatable cpu or memory" for name in missing_allocatable]

    work: list[_NodeWork] = []
    for item in snapshot.nodes:
        if node is not None and item.name != node:
            continue
        pods = snapshot.pods_on(item.name)
        work.append(
            _analyze_node(
                item,
                room=rooms_by_node.get(item.name),
                history=history,
                pods=_pod_pass(pods, memory_usage, cpu_usage, rank=predict_evictions),
                pod_count=len(pods),
                thresholds=thresholds,
                predict=predict_evictions,
                missing=missing,
            )
        )
    work.sort(
        key=lambda item: (_LEVEL_ORDER[item.pressure.level], item.severity, item.pressure.node)
    )
    nodes = tuple(item.pressure for item in work)
    cut = Truncation(top)
    ranking = cut.first(
        "evictionRanking",
        _candidates(work, top) if predict_evictions else (),
        total=sum(len(item.ordered) for item in work),
    )
    scheduling = _scheduling(snapshot, rooms, cache)
    hints = _hints(nodes, rooms, scheduling) if include_scheduling_hints else ()
    return NodePressureReport(
        taken_at_ms=snapshot.taken_at_ms,
        thresholds=thresholds,
        nodes=nodes,
        eviction_ranking=ranking,
        scheduling=scheduling,
        fragmentation=analyze_fragmentation(
            snapshot, tolerated_taint_keys=tolerated_taint_keys, cache=cache
        ),
        hints=hints,
        nodes_under_pressure=sum(1 for n in nodes if n.level is PressureLevel.UNDER_PRESSURE),
        nodes_near_pressure=sum(1 for n in nodes if n.level is PressureLevel.NEAR_PRESSURE),
        missing_data=tuple(missing),
        top=top,
        truncated=MappingProxyType(cut.full_lengths),
    )

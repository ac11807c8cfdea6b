"""Limit breaches and efficiency: which containers run into their limits, and what is idle.

One entry point, :func:`detect_limit_breaches`, a pure function of a
:class:`~kubepulse.analysis.inputs.ClusterSnapshot` and a
:class:`~kubepulse.analysis.inputs.UsageHistory`, answering in one
:class:`LimitBreachReport`:

- **breaches**: containers (and multi-container pods) whose CPU or working-set memory,
  reduced over the newest ``time_window`` of history by a statistic (``max`` by default,
  ``avg``, ``last`` or a percentile such as ``p95``), reached ``threshold_percent`` of
  their limit or request, or went over it;
- **throttling**: containers whose CFS throttling ratio (throttled periods over all
  periods) was high over the window: the symptom of a CPU limit that is too tight, which
  a CPU usage figure alone hides because throttled usage stays just under the limit;
- **OOM kills**: from both ``UsageHistory.oom_kill_ms`` (the kernel's count, resolved to
  the history's step) and the containers' last termination reason ``OOMKilled`` (what the
  kubelet recorded), each correlated with the working set against the limit just before
  the kill and with the node's memory pressure (its ``MemoryPressure`` condition and the
  memory pressure-stall figures), so that "the container outgrew its limit" is told
  apart from "the node ran out of memory";
- **missing settings**: pods with containers that set no CPU or memory limit or request,
  with the pod's QoS class;
- **efficiency**: average usage against requests per container, pod, workload (the
  controlling owner, a ReplicaSet resolved to its Deployment) and namespace;
- **missing data**: running containers that have no CPU or memory series in the window.
  They are never counted as idle: they appear in no breach or efficiency figure.

Why one pass: at 50,000 pods the analyzer must not look anything up by scanning. It walks
the pods once, reads each container's series by key, and accumulates pod, workload and
namespace totals as it goes; OOM kills from history are joined to pods through a dict.

``docs/analysis/limits.md`` explains every figure, its arithmetic and its limits.
"""

from __future__ import annotations

import bisect
import enum
import heapq
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from types import MappingProxyType
from typing import Final

from kubepulse.analysis.inputs import ClusterSnapshot, ContainerRef, TimeSeries, UsageHistory
from kubepulse.analysis.listing import Truncation, check_top
from kubepulse.duration import format_duration, parse_duration
from kubepulse.errors import KubepulseValueError
from kubepulse.model import CPU, MEMORY, ContainerSpec, Node, Pod, QosClass
from kubepulse.stats import (
    Aggregation,
    AggregationKind,
    SeriesKind,
    exact_evaluate,
    parse_aggregation,
)

__all__ = [
    "Bound",
    "BreachSettings",
    "BreachSummary",
    "EfficiencyFigure",
    "EfficiencyLevel",
    "LimitBreachReport",
    "MissingData",
    "MissingSettings",
    "OomCause",
    "OomKill",
    "OomSource",
    "ResourceBreach",
    "Severity",
    "ThrottlingFinding",
    "WorkloadRef",
    "detect_limit_breaches",
    "resolve_workload",
]

RESOURCES: Final = (CPU, MEMORY)
"""The resources whose usage is measured per container: CPU in cores, memory in bytes."""

THROTTLING_WARNING_RATIO: Final = 0.10
"""A throttling ratio at or above this (10 % of CFS periods throttled) is a warning."""
THROTTLING_CRITICAL_RATIO: Final = 0.25
"""A throttling ratio at or above this (a quarter of the periods) is critical."""
OOM_LOOKBACK_MS: Final = 300_000
"""How far before a kill the working set and node figures are read ("just before")."""
OOM_MATCH_TOLERANCE_MS: Final = 120_000
"""A history kill instant and a recorded termination this close are the same kill:
history instants are resolved to the collection step, the kubelet's to the second."""
PSI_MEMORY_FULL_PRESSURE: Final = 0.05
"""Node ``memory_full`` stall share at or above which the node counts as under memory
pressure (5 % of the time every task was stalled on memory)."""

_MINIMUM_THRESHOLD: Final = 1.0
_MAXIMUM_THRESHOLD: Final = 100.0
_NAMESPACES_LISTED: Final = 10
_ALLOWED_STATISTICS: Final = "avg, max, last or a percentile such as p50, p90, p95, p99"
_POD_TEMPLATE_HASH: Final = "pod-template-hash"
# The Deployment controller writes the template hash with rand.SafeEncodeString, whose
# alphabet has no vowels (so no words) and none of 0, 1 and 3; a uint32 gives <= 10 chars.
_TEMPLATE_HASH: Final = re.compile(r"[bcdfghjklmnpqrstvwxz2456789]{8,10}")
_GAUGE: Final = SeriesKind.GAUGE
_AVG: Final = Aggregation(AggregationKind.AVG)
_MAX: Final = Aggregation(AggregationKind.MAX)


# ---------------------------------------------------------------------------- enums


class Severity(enum.Enum):
    """How urgent a finding is; reports list the worst first."""

    CRITICAL = "critical"
    """Act now: a limit is reached (OOM kill or hard throttling) or about to be."""
    WARNING = "warning"
    """Act soon: near a limit, over a memory request, or no memory limit at all."""
    INFO = "info"
    """Worth knowing: near a request, over a CPU request, no CPU limit."""

    @property
    def rank(self) -> int:
        """0 for the worst (critical), larger for milder; the sort key of every list."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK: Final = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


class Bound(enum.Enum):
    """What usage is compared with."""

    LIMIT = "limit"
    """``resources.limits``: the cgroup's cap (CPU throttles, memory OOM-kills)."""
    REQUEST = "request"
    """``resources.requests``: what the scheduler reserved; eviction ranks usage above it."""


class OomSource(enum.Enum):
    """Where an OOM kill was seen."""

    HISTORY = "history"
    """The kernel's OOM-kill counter (``UsageHistory.oom_kill_ms``)."""
    CONTAINER_STATUS = "container_status"
    """The kubelet's record: ``lastState.terminated.reason`` (or ``state``) ``OOMKilled``."""
    BOTH = "both"
    """Both, within :data:`OOM_MATCH_TOLERANCE_MS` of each other."""


class OomCause(enum.Enum):
    """The likeliest reason for an OOM kill, from the figures just before it."""

    CONTAINER_LIMIT = "container_limit"
    """The working set was at or above ``threshold_percent`` of the memory limit."""
    NODE_MEMORY_PRESSURE = "node_memory_pressure"
    """The working set was below that (or the container had no limit) while the node was
    under memory pressure: the node, not the container, ran out."""
    UNDETERMINED = "undetermined"
    """Neither explains it, or the figures that would tell are missing (see the fields)."""


class EfficiencyLevel(enum.Enum):
    """What an efficiency figure totals."""

    CONTAINER = "container"
    POD = "pod"
    WORKLOAD = "workload"
    NAMESPACE = "namespace"


# ---------------------------------------------------------------------------- results


def _nothing_cut() -> Mapping[str, int]:
    return MappingProxyType({})


@dataclass(frozen=True)
class BreachSettings:
    """The parameters a run used, echoed in its report."""

    threshold_percent: float
    """Usage at or above this percentage of a limit or request is reported."""
    time_window: str
    """The window as given, e.g. ``5m``."""
    window_start_ms: int
    """The window's first instant: ``window_end_ms`` minus the window."""
    window_end_ms: int
    """The window's last instant: the history's end."""
    statistic: str
    """How each series is reduced over the window: ``max``, ``avg``, ``last``, ``p95``..."""
    namespace: str | None
    """The namespace the run was narrowed to; None for every namespace."""
    top: int | None = None
    """Each list was cut to its first ``top`` items; None: every item is listed."""


@dataclass(frozen=True)
class WorkloadRef:
    """The workload a pod belongs to: its controlling owner, resolved one step."""

    namespace: str
    kind: str
    """``Deployment``, ``StatefulSet``, ``DaemonSet``, ``Job``, ``ReplicaSet``, ``Node``
    (static pods) or ``Pod`` for a pod without a controller."""
    name: str
    inferred: bool = False
    """True when the kind and name were inferred, not read: a ReplicaSet named
    ``<name>-<pod-template-hash>`` is taken to belong to Deployment ``<name>`` (the
    Deployment controller's naming convention) without reading the ReplicaSet's owner."""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.kind}/{self.name}"


@dataclass(frozen=True)
class ResourceBreach:
    """A container or pod whose usage reached ``threshold_percent`` of a limit or request."""

    severity: Severity
    namespace: str
    pod: str
    container: str | None
    """None for a pod-level figure (the sum of the pod's running containers)."""
    node: str | None
    resource: str
    """``cpu`` (cores) or ``memory`` (working-set bytes)."""
    bound: Bound
    usage: float
    """The window's statistic of the usage series (or of the pod's summed series)."""
    bound_value: float
    """The limit or request, in the same unit."""
    percent: float
    """``usage / bound_value * 100``."""
    over: bool
    """True when usage is at or above the bound itself (``percent >= 100``)."""
    samples: int
    """How many samples the statistic was computed from."""


@dataclass(frozen=True)
class ThrottlingFinding:
    """A container whose CPU was throttled for a large share of CFS periods."""

    severity: Severity
    namespace: str
    pod: str
    container: str
    node: str | None
    throttled_ratio: float
    """The window's statistic of the throttled-periods ratio, in ``[0, 1]``."""
    average_ratio: float
    """The mean ratio over the window, whatever the statistic."""
    cpu_limit_cores: float | None
    """The container's CPU limit; None when it has none (throttling then comes from a
    pod-level limit)."""
    cpu_usage_cores: float | None
    """The window's statistic of CPU usage; None when unmeasured."""
    samples: int


@dataclass(frozen=True)
class OomKill:
    """One OOM kill, with the figures that tell whose memory ran out."""

    severity: Severity
    namespace: str
    pod: str
    container: str
    node: str | None
    """Where the pod runs now; None when unscheduled or no longer in the snapshot."""
    killed_at_ms: int | None
    """When; None when the kubelet recorded the kill without a finish time."""
    source: OomSource
    in_window: bool
    """Whether the kill falls in the analysed window (older recorded kills are kept, at
    a lower severity, because the termination reason is still the container's last)."""
    cause: OomCause
    memory_limit_bytes: float | None
    """The container's memory limit; None when it has none."""
    working_set_before_bytes: float | None
    """The largest working-set sample in the :data:`OOM_LOOKBACK_MS` before the kill
    (inclusive); None when unmeasured there."""
    working_set_percent_of_limit: float | None
    """``working_set_before_bytes / memory_limit_bytes * 100``; None when either is."""
    node_memory_pressure_condition: bool | None
    """The node's ``MemoryPressure`` condition at the kill: known only when the condition
    has not changed since before the kill (its last transition precedes it)."""
    node_memory_full_stall: float | None
    """The largest ``memory_full`` pressure-stall share in the lookback before the kill."""
    node_memory_available_min_bytes: float | None
    """The smallest available-memory sample in the lookback before the kill."""
    node_under_memory_pressure: bool | None
    """True when the condition was true or the full stall reached
    :data:`PSI_MEMORY_FULL_PRESSURE`; False when the known evidence says no; None when
    there is no evidence at all."""
    restart_count: int | None
    """The container's restarts so far, from its status."""


@dataclass(frozen=True)
class MissingSettings:
    """A pod with containers that set no limit or no request for CPU or memory."""

    severity: Severity
    namespace: str
    pod: str
    qos_class: QosClass
    containers_without_limits: Mapping[str, tuple[str, ...]]
    """Per resource (``cpu``, ``memory``), the containers without a positive limit."""
    containers_without_requests: Mapping[str, tuple[str, ...]]
    """Per resource, the containers without a positive request (defaulted ones count)."""
    workload: WorkloadRef


@dataclass(frozen=True)
class EfficiencyFigure:
    """Average usage against requests for one container, pod, workload or namespace."""

    level: EfficiencyLevel
    key: str
    """``ns/pod/container``, ``ns/pod``, ``ns/Kind/name`` or ``ns``."""
    namespace: str
    resource: str
    used: float
    """Mean usage over the window, summed over the measured containers that request the
    resource."""
    peak: float
    """Sum of those containers' largest samples (an upper bound of the joint peak)."""
    requested: float
    """Sum of those containers' requests."""
    efficiency_percent: float | None
    """``used / requested * 100``; None when ``requested`` is zero."""
    idle: float
    """``requested - used`` when positive, else 0: reserved but unused."""
    containers: int
    """Containers counted in ``used`` and ``requested``."""
    unrequested_containers: int
    """Measured containers that request none of the resource."""
    unrequested_used: float
    """Mean usage of those containers, summed: they use capacity nobody reserved, so
    they are kept out of the ratio."""
    unmeasured_containers: int
    """Running containers without a series for the resource: not counted as idle."""


@dataclass(frozen=True)
class MissingData:
    """A running container without some series in the window: unmeasured, not idle."""

    namespace: str
    pod: str
    container: str
    node: str | None
    figures: tuple[str, ...]
    """Which are missing: ``cpu``, ``memory``, and ``cpu_throttling`` (only looked for
    when the container has a CPU limit, the only case the kernel throttles it)."""


@dataclass(frozen=True)
class BreachSummary:
    """Counts, for a one-line status."""

    pods: int
    """Pods analysed (active pods of the selected namespaces)."""
    containers_measured: int
    """Containers with at least one CPU or memory sample in the window."""
    breaches_by_severity: Mapping[str, int]
    oom_kills_in_window: int
    throttled_containers: int
    pods_missing_settings: int
    containers_missing_data: int


@dataclass(frozen=True)
class LimitBreachReport:
    """What :func:`detect_limit_breaches` found; every list is sorted worst first."""

    settings: BreachSettings
    summary: BreachSummary
    breaches: tuple[ResourceBreach, ...]
    """By severity, then percent of the bound, highest first."""
    throttling: tuple[ThrottlingFinding, ...]
    """By severity, then throttled ratio, highest first."""
    oom_kills: tuple[OomKill, ...]
    """By severity (in the window first), then most recent first."""
    missing_settings: tuple[MissingSettings, ...]
    """By severity, then namespace and pod."""
    container_efficiency: tuple[EfficiencyFigure, ...]
    """Lowest efficiency (most idle request) first; figures without a request last."""
    pod_efficiency: tuple[EfficiencyFigure, ...]
    workload_efficiency: tuple[EfficiencyFigure, ...]
    namespace_efficiency: tuple[EfficiencyFigure, ...]
    missing_data: tuple[MissingData, ...]
    """Running containers without series in the window, by namespace, pod, container."""
    truncated: Mapping[str, int] = field(default_factory=_nothing_cut)
    """With ``top``: for each list that had more items, its name as the API spells it
    (``containerEfficiency``) and how many items it had. The summary's counts always
    cover every item."""


# ---------------------------------------------------------------------------- validation


def _check_threshold(threshold_percent: float) -> float:
    if (
        isinstance(threshold_percent, bool)
        or not isinstance(threshold_percent, int | float)
        or not math.isfinite(threshold_percent)
        or not _MINIMUM_THRESHOLD <= threshold_percent <= _MAXIMUM_THRESHOLD
    ):
        raise KubepulseValueError(
            f"threshold_percent must be between {_MINIMUM_THRESHOLD:g} and "
            f"{_MAXIMUM_THRESHOLD:g}, got {threshold_percent!r}; 90 reports usage at 90 % "
            "of a limit or request and above"
        )
    return float(threshold_percent)


def _check_window(time_window: str, history: UsageHistory) -> int:
    window_ms = parse_duration(time_window)
    if window_ms <= 0:
        raise KubepulseValueError(
            f"time_window must be longer than zero, got {time_window!r}; give a duration "
            "such as '5m' or '1h'"
        )
    if window_ms > history.window_ms:
        raise KubepulseValueError(
            f"time_window {time_window!r} is longer than the history, which covers "
            f"{format_duration(history.window_ms)}; shorten the window or collect at least "
            f"{format_duration(window_ms)} of history"
        )
    return window_ms


def _check_statistic(statistic: str) -> Aggregation:
    if not isinstance(statistic, str):
        raise KubepulseValueError(
            f"statistic must be a string, got {statistic!r}; use {_ALLOWED_STATISTICS}"
        )
    try:
        aggregation = parse_aggregation(statistic)
    except KubepulseValueError as exc:
        raise KubepulseValueError(
            f"unknown statistic {statistic!r}; use {_ALLOWED_STATISTICS}"
        ) from exc
    if aggregation.kind not in (
        AggregationKind.AVG,
        AggregationKind.MAX,
        AggregationKind.LAST,
        AggregationKind.PERCENTILE,
    ):
        raise KubepulseValueError(
            f"statistic {statistic!r} does not describe a level of usage; use {_ALLOWED_STATISTICS}"
        )
    return aggregation


# ---------------------------------------------------------------------------- helpers


def _amount(amount: Decimal | None) -> float | None:
    """A positive quantity as a float; zero or absent is None (no limit, no request)."""
    if amount is None or amount <= 0:
        return None
    return float(amount)


@dataclass(slots=True)
class _Samples:
    """The samples of one series inside the window.

    Not a :class:`TimeSeries`: slicing an already checked series needs no second check,
    and at 50,000 pods re-validating every slice is most of the run.
    """

    timestamps_ms: Sequence[int]
    values: Sequence[float]

    def __len__(self) -> int:
        return len(self.values)


def _reduce(aggregation: Aggregation, series: _Samples) -> float | None:
    """The window statistic of a gauge series; None when it has no sample.

    The definitions of :func:`kubepulse.stats.exact_evaluate` for a gauge (mean, largest,
    newest, lower-rank percentile ``sorted(x)[floor(q * (n - 1))]``), computed here
    directly: a :class:`TimeSeries` was checked when it was built (finite values,
    increasing timestamps), and at 50,000 pods re-checking every slice costs more than
    the statistic. A test pins the two to the same answers.
    """
    values = series.values
    if not values:
        return None
    kind = aggregation.kind
    if kind is AggregationKind.MAX:
        return max(values)
    if kind is AggregationKind.LAST:
        return values[-1]
    if kind is AggregationKind.AVG:
        return math.fsum(values) / len(values)
    quantile = aggregation.quantile
    if quantile is None:  # unreachable: _check_statistic lets no other kind through
        return exact_evaluate(aggregation, _GAUGE, series.timestamps_ms, values)
    return sorted(values)[math.floor(quantile * (len(values) - 1))]


def resolve_workload(pod: Pod) -> WorkloadRef:
    """The workload of ``pod``: its controlling owner, one step resolved.

    A ReplicaSet owner named ``<name>-<hash>`` becomes Deployment ``<name>`` when ``<hash>``
    is the pod's ``pod-template-hash`` label, the Deployment controller's naming
    convention. Without the label, a suffix that can only be such a hash (8 to 10
    characters of the controller's consonants-and-digits alphabet) is accepted too. Both
    are inferences (``inferred=True``): the ReplicaSet object itself is not read, so a
    ReplicaSet made by hand and named like that would be taken for a Deployment's.
    """
    owner = pod.controller_owner
    if owner is None:
        return WorkloadRef(pod.namespace, "Pod", pod.name)
    if owner.kind == "ReplicaSet":
        prefix, _, suffix = owner.name.rpartition("-")
        template_hash = pod.labels.get(_POD_TEMPLATE_HASH)
        matches = (
            suffix == template_hash
            if template_hash is not None
            else _TEMPLATE_HASH.fullmatch(suffix) is not None
        )
        if prefix and matches:
            return WorkloadRef(pod.namespace, "Deployment", prefix, inferred=True)
    return WorkloadRef(pod.namespace, owner.kind, owner.name)


def _containers_without(
    pod: Pod, pod_level: Mapping[str, Decimal], *, limits: bool
) -> dict[str, tuple[str, ...]]:
    """Per resource, the containers without a positive limit (or request).

    :meth:`Pod.containers_missing_limits` per resource, in one pass over the containers:
    a zero amount counts as missing, and a resource with a positive pod-level amount is
    missing for no container.
    """
    uncovered = [name for name in RESOURCES if not _amount(pod_level.get(name))]
    if not uncovered:
        return {}
    found: dict[str, list[str]] = {}
    for container in pod.all_containers:
        amounts = container.limits if limits else container.requests
        for name in uncovered:
            if not _amount(amounts.get(name)):
                found.setdefault(name, []).append(container.name)
    return {name: tuple(found[name]) for name in RESOURCES if name in found}


def _running_containers(pod: Pod) -> tuple[ContainerSpec, ...]:
    """The containers that run beside each other once the pod started: sidecars and app
    containers (classic init containers have exited and have no steady usage)."""
    sidecars = tuple(container for container in pod.init_containers if container.is_sidecar)
    return sidecars + pod.containers


def _window_series(
    mapping: Mapping[ContainerRef, TimeSeries], ref: ContainerRef, start_ms: int, end_ms: int
) -> _Samples | None:
    """The samples of ``mapping[ref]`` in ``[start_ms, end_ms]``; None when there are none."""
    series = mapping.get(ref)
    if series is None:
        return None
    timestamps = series.timestamps_ms
    low = bisect.bisect_left(timestamps, start_ms)
    high = bisect.bisect_right(timestamps, end_ms)
    if low >= high:
        return None
    if low == 0 and high == len(timestamps):
        return _Samples(timestamps, series.values)
    return _Samples(timestamps[low:high], series.values[low:high])


def _breach_severity(resource: str, bound: Bound, over: bool) -> Severity:
    if bound is Bound.LIMIT:
        # At the limit, memory is OOM-killed and CPU is throttled: both hurt now.
        return Severity.CRITICAL if over else Severity.WARNING
    if over and resource == MEMORY:
        # Above its memory request a pod is among the first evicted under node pressure.
        return Severity.WARNING
    return Severity.INFO


def _breach(
    *,
    pod: Pod,
    container: str | None,
    resource: str,
    bound: Bound,
    usage: float,
    bound_value: float,
    samples: int,
    threshold_percent: float,
) -> ResourceBreach | None:
    percent = usage / bound_value * 100.0
    if percent < threshold_percent:
        return None
    over = percent >= 100.0
    return ResourceBreach(
        severity=_breach_severity(resource, bound, over),
        namespace=pod.namespace,
        pod=pod.name,
        container=container,
        node=pod.node_name,
        resource=resource,
        bound=bound,
        usage=usage,
        bound_value=bound_value,
        percent=percent,
        over=over,
        samples=samples,
    )


def _summed_series(parts: Sequence[_Samples]) -> _Samples:
    """The sum of several series at the instants where every one has a sample."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0].timestamps_ms
    if all(part.timestamps_ms == first for part in parts[1:]):
        # The usual case: every history builder evaluates all series on one grid.
        return _Samples(
            first, tuple(map(math.fsum, zip(*(part.values for part in parts), strict=True)))
        )
    common = set(first)
    for part in parts[1:]:
        common.intersection_update(part.timestamps_ms)
    totals = dict.fromkeys(common, 0.0)
    for part in parts:
        for timestamp_ms, value in zip(part.timestamps_ms, part.values, strict=True):
            if timestamp_ms in totals:
                totals[timestamp_ms] += value
    ordered = sorted(totals.items())
    return _Samples(tuple(t for t, _ in ordered), tuple(v for _, v in ordered))


def _max_between(series: TimeSeries | None, start_ms: int, end_ms: int) -> float | None:
    if series is None:
        return None
    values = series.between(start_ms, end_ms).values
    return max(values) if values else None


def _min_between(series: TimeSeries | None, start_ms: int, end_ms: int) -> float | None:
    if series is None:
        return None
    values = series.between(start_ms, end_ms).values
    return min(values) if values else None


# ---------------------------------------------------------------------------- efficiency


class _Totals:
    """Running sums for one efficiency figure (per key and resource)."""

    __slots__ = (
        "containers",
        "namespace",
        "peak",
        "requested",
        "unmeasured",
        "unrequested",
        "unrequested_used",
        "used",
    )

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.used = 0.0
        self.peak = 0.0
        self.requested = 0.0
        self.containers = 0
        self.unrequested = 0
        self.unrequested_used = 0.0
        self.unmeasured = 0

    def add(self, other: _Totals) -> None:
        self.used += other.used
        self.peak += other.peak
        self.requested += other.requested
        self.containers += other.containers
        self.unrequested += other.unrequested
        self.unrequested_used += other.unrequested_used
        self.unmeasured += other.unmeasured

    def figure(self, level: EfficiencyLevel, key: str, resource: str) -> EfficiencyFigure:
        efficiency = self.used / self.requested * 100.0 if self.requested > 0 else None
        return EfficiencyFigure(
            level=level,
            key=key,
            namespace=self.namespace,
            resource=resource,
            used=self.used,
            peak=self.peak,
            requested=self.requested,
            efficiency_percent=efficiency,
            idle=max(0.0, self.requested - self.used),
            containers=self.containers,
            unrequested_containers=self.unrequested,
            unrequested_used=self.unrequested_used,
            unmeasured_containers=self.unmeasured,
        )


def _figures(
    level: EfficiencyLevel, totals: Mapping[tuple[str, str], _Totals], top: int | None = None
) -> tuple[list[EfficiencyFigure], int]:
    """The figures of ``totals`` worst first (only the first ``top``), and how many there are.

    Lowest efficiency (most idle request) first, figures without a request last; then
    the most idle, then by resource and key.
    The order is computed from the totals, so that with ``top`` only the figures kept
    are built: at 50,000 pods that spares some 130,000 objects per call.
    """
    keyed: list[tuple[tuple[bool, float, float, str, str], str, str, _Totals]] = []
    for (key, resource), item in totals.items():
        if not (item.containers or item.unrequested or item.unmeasured):
            continue
        requested, used = item.requested, item.used
        efficiency = used / requested * 100.0 if requested > 0 else None
        order = (
            efficiency is None,
            efficiency if efficiency is not None else 0.0,
            -max(0.0, requested - used),
            resource,
            key,
        )
        keyed.append((order, key, resource, item))
    if top is not None and top < len(keyed):
        # The order is total (it ends with the key), so the kept ones are the same as
        # the first of a full sort; the rest only need counting.
        chosen = heapq.nsmallest(top, keyed, key=itemgetter(0))
    else:
        keyed.sort(key=itemgetter(0))
        chosen = keyed
    return [item.figure(level, key, resource) for _, key, resource, item in chosen], len(keyed)


# ---------------------------------------------------------------------------- OOM kills


def _condition_at(node: Node | None, condition_type: str, at_ms: int | None) -> bool | None:
    """A node condition's status at ``at_ms``, when the snapshot can tell: the condition
    has not transitioned since before that instant."""
    if node is None or at_ms is None:
        return None
    condition = node.condition(condition_type)
    if condition is None or condition.status not in ("True", "False"):
        return None
    if condition.last_transition_ms is None or condition.last_transition_ms > at_ms:
        return None
    return condition.is_true


def _oom_kill(
    *,
    ref: ContainerRef,
    pod: Pod | None,
    node: Node | None,
    killed_at_ms: int | None,
    source: OomSource,
    history: UsageHistory,
    window_start_ms: int,
    window_end_ms: int,
    threshold_percent: float,
) -> OomKill:
    spec = _container_spec(pod, ref.container) if pod is not None else None
    limit = _amount(spec.limits.get(MEMORY)) if spec is not None else None
    if limit is None and pod is not None:
        limit = _amount(pod.pod_limits.get(MEMORY))
    working_set: float | None = None
    stall: float | None = None
    available: float | None = None
    if killed_at_ms is not None:
        before = killed_at_ms - OOM_LOOKBACK_MS
        working_set = _max_between(history.memory_working_set_bytes.get(ref), before, killed_at_ms)
        node_name = pod.node_name if pod is not None else None
        if node_name is not None:
            pressure = history.node_pressure.get(node_name, {})
            stall = _max_between(pressure.get("memory_full"), before, killed_at_ms)
            available = _min_between(
                history.node_memory_available_bytes.get(node_name), before, killed_at_ms
            )
    condition = _condition_at(node, "MemoryPressure", killed_at_ms)
    evidence = [condition]
    if stall is not None:
        evidence.append(stall >= PSI_MEMORY_FULL_PRESSURE)
    under_pressure: bool | None
    if any(item is True for item in evidence):
        under_pressure = True
    elif any(item is False for item in evidence):
        under_pressure = False
    else:
        under_pressure = None
    percent = working_set / limit * 100.0 if working_set is not None and limit is not None else None
    if percent is not None and percent >= threshold_percent:
        cause = OomCause.CONTAINER_LIMIT
    elif under_pressure is True and (limit is None or percent is not None):
        # Below the limit (or no limit at all) while the node was short of memory.
        cause = OomCause.NODE_MEMORY_PRESSURE
    else:
        cause = OomCause.UNDETERMINED
    in_window = killed_at_ms is not None and window_start_ms <= killed_at_ms <= window_end_ms
    status = pod.status_of(ref.container) if pod is not None else None
    return OomKill(
        severity=Severity.CRITICAL if in_window else Severity.WARNING,
        namespace=ref.namespace,
        pod=ref.pod,
        container=ref.container,
        node=pod.node_name if pod is not None else None,
        killed_at_ms=killed_at_ms,
        source=source,
        in_window=in_window,
        cause=cause,
        memory_limit_bytes=limit,
        working_set_before_bytes=working_set,
        working_set_percent_of_limit=percent,
        node_memory_pressure_condition=condition,
        node_memory_full_stall=stall,
        node_memory_available_min_bytes=available,
        node_under_memory_pressure=under_pressure,
        restart_count=status.restart_count if status is not None else None,
    )


def _container_spec(pod: Pod, name: str) -> ContainerSpec | None:
    return next((c for c in pod.all_containers if c.name == name), None)


def _recorded_oom_kills(pod: Pod) -> Iterable[tuple[str, int | None]]:
    """``(container, finished_at_ms)`` of every kill the pod's statuses record."""
    for status in pod.container_statuses + pod.init_container_statuses:
        for termination in (status.state.termination, status.last_termination):
            if termination is not None and termination.is_oom_kill:
                yield status.name, termination.finished_at_ms


def _merge_kills(
    history_instants: Sequence[int], recorded: Sequence[int | None]
) -> list[tuple[int | None, OomSource]]:
    """History instants and recorded kills of one container, a recorded kill within
    :data:`OOM_MATCH_TOLERANCE_MS` of a history instant being the same kill."""
    merged: list[tuple[int | None, OomSource]] = []
    matched: set[int] = set()
    for finished_ms in recorded:
        match = None
        if finished_ms is not None:
            for index, instant in enumerate(history_instants):
                if index not in matched and abs(instant - finished_ms) <= OOM_MATCH_TOLERANCE_MS:
                    match = index
                    break
        if match is None:
            merged.append((finished_ms, OomSource.CONTAINER_STATUS))
        else:
            matched.add(match)
            # The kubelet's timestamp is to the second; the history's is to the step.
            merged.append((finished_ms, OomSource.BOTH))
    merged.extend(
        (instant, OomSource.HISTORY)
        for index, instant in enumerate(history_instants)
        if index not in matched
    )
    return merged


# ---------------------------------------------------------------------------- the scan


@dataclass(frozen=True)
class _Run:
    """The validated parameters of one run."""

    threshold: float
    aggregation: Aggregation
    start_ms: int
    end_ms: int


class _Scan:
    """One pass over the selected pods, accumulating every finding and total."""

    def __init__(self, history: UsageHistory, run: _Run) -> None:
        self.history = history
        self.run = run
        self.usage_maps: Mapping[str, Mapping[ContainerRef, TimeSeries]] = {
            CPU: history.cpu_cores,
            MEMORY: history.memory_working_set_bytes,
        }
        self.breaches: list[ResourceBreach] = []
        self.throttling: list[ThrottlingFinding] = []
        self.missing_settings: list[MissingSettings] = []
        self.missing_data: list[MissingData] = []
        self.container_totals: dict[tuple[str, str], _Totals] = {}
        self.pod_totals: dict[tuple[str, str], _Totals] = {}
        self.workload_totals: dict[tuple[str, str], _Totals] = {}
        self.namespace_totals: dict[tuple[str, str], _Totals] = {}
        self.measured_containers = 0

    def window(
        self, mapping: Mapping[ContainerRef, TimeSeries], ref: ContainerRef
    ) -> _Samples | None:
        return _window_series(mapping, ref, self.run.start_ms, self.run.end_ms)

    def add_breaches(
        self,
        pod: Pod,
        *,
        container: str | None,
        resource: str,
        usage: float,
        samples: int,
        bounds: Iterable[tuple[Bound, float | None]],
    ) -> None:
        for bound, bound_value in bounds:
            if bound_value is None:
                continue
            found = _breach(
                pod=pod,
                container=container,
                resource=resource,
                bound=bound,
                usage=usage,
                bound_value=bound_value,
                samples=samples,
                threshold_percent=self.run.threshold,
            )
            if found is not None:
                self.breaches.append(found)

    def scan_pod(self, pod: Pod) -> None:
        workload = resolve_workload(pod)
        self.check_settings(pod, workload)
        running = _running_containers(pod)
        expects_series = pod.phase == "Running"
        parts: dict[str, list[_Samples]] = {CPU: [], MEMORY: []}
        aggregate_keys = (
            (self.pod_totals, pod.key),
            (self.workload_totals, str(workload)),
            (self.namespace_totals, pod.namespace),
        )
        for container in running:
            ref = ContainerRef(pod.namespace, pod.name, container.name)
            missing: list[str] = []
            measured = False
            for resource in RESOURCES:
                series = self.window(self.usage_maps[resource], ref)
                if series is None:
                    if expects_series:
                        missing.append(resource)
                    totals = _Totals(pod.namespace)
                    totals.unmeasured = 1 if expects_series else 0
                else:
                    measured = True
                    parts[resource].append(series)
                    totals = self.scan_usage(pod, container, resource, series)
                self.container_totals[(str(ref), resource)] = totals
                for bucket, key in aggregate_keys:
                    aggregate = bucket.get((key, resource))
                    if aggregate is None:
                        aggregate = bucket[(key, resource)] = _Totals(pod.namespace)
                    aggregate.add(totals)
            if measured:
                self.measured_containers += 1
            if not self.scan_throttling(pod, container, ref) and expects_series:
                missing.append("cpu_throttling")
            if missing:
                self.missing_data.append(
                    MissingData(
                        namespace=pod.namespace,
                        pod=pod.name,
                        container=container.name,
                        node=pod.node_name,
                        figures=tuple(missing),
                    )
                )
        # A single container's pod figure repeats the container's, so pod-level figures
        # are only for several containers or pod-level resources.
        if len(running) > 1 or pod.pod_limits or pod.pod_requests:
            for resource in RESOURCES:
                # A partial sum would understate the pod's usage: all or nothing.
                if len(parts[resource]) == len(running):
                    self.scan_pod_level(pod, running, resource, parts[resource])

    def check_settings(self, pod: Pod, workload: WorkloadRef) -> None:
        if pod.qos_class == "Guaranteed":
            return  # every container (or the pod) sets both limits, and requests equal them
        without_limits = _containers_without(pod, pod.pod_limits, limits=True)
        without_requests = _containers_without(pod, pod.pod_requests, limits=False)
        if not without_limits and not without_requests:
            return
        # Unbounded memory can push the node into pressure, and a pod without requests is
        # placed blind; a missing CPU limit alone is often a deliberate choice.
        severity = (
            Severity.WARNING
            if MEMORY in without_limits or bool(without_requests)
            else Severity.INFO
        )
        self.missing_settings.append(
            MissingSettings(
                severity=severity,
                namespace=pod.namespace,
                pod=pod.name,
                qos_class=pod.qos_class,
                containers_without_limits=without_limits,
                containers_without_requests=without_requests,
                workload=workload,
            )
        )

    def scan_usage(
        self, pod: Pod, container: ContainerSpec, resource: str, series: _Samples
    ) -> _Totals:
        """Breaches of one measured container and resource; its efficiency totals."""
        limit = _amount(container.limits.get(resource))
        request = _amount(container.requests.get(resource))
        usage = _reduce(self.run.aggregation, series)
        assert usage is not None  # the window series has samples
        self.add_breaches(
            pod,
            container=container.name,
            resource=resource,
            usage=usage,
            samples=len(series),
            bounds=((Bound.LIMIT, limit), (Bound.REQUEST, request)),
        )
        totals = _Totals(pod.namespace)
        mean = math.fsum(series.values) / len(series.values)
        if request is None:
            totals.unrequested = 1
            totals.unrequested_used = mean
        else:
            totals.used = mean
            totals.peak = max(series.values)
            totals.requested = request
            totals.containers = 1
        return totals

    def scan_throttling(self, pod: Pod, container: ContainerSpec, ref: ContainerRef) -> bool:
        """Report heavy throttling; False when a series the kernel keeps is missing."""
        cpu_limit = _amount(container.limits.get(CPU))
        throttled = self.window(self.history.cpu_throttled_ratio, ref)
        if throttled is None:
            # The kernel throttles only containers under a CFS quota (a CPU limit).
            return cpu_limit is None
        ratio = _reduce(self.run.aggregation, throttled)
        assert ratio is not None
        if ratio < THROTTLING_WARNING_RATIO:
            return True
        cpu_series = self.window(self.history.cpu_cores, ref)
        self.throttling.append(
            ThrottlingFinding(
                severity=(
                    Severity.CRITICAL if ratio >= THROTTLING_CRITICAL_RATIO else Severity.WARNING
                ),
                namespace=pod.namespace,
                pod=pod.name,
                container=container.name,
                node=pod.node_name,
                throttled_ratio=ratio,
                average_ratio=math.fsum(throttled.values) / len(throttled),
                cpu_limit_cores=cpu_limit,
                cpu_usage_cores=(
                    _reduce(self.run.aggregation, cpu_series) if cpu_series is not None else None
                ),
                samples=len(throttled),
            )
        )
        return True

    def scan_pod_level(
        self,
        pod: Pod,
        running: Sequence[ContainerSpec],
        resource: str,
        parts: Sequence[_Samples],
    ) -> None:
        summed = _summed_series(parts)
        usage = _reduce(self.run.aggregation, summed)
        if usage is None:
            return
        limits = [_amount(container.limits.get(resource)) for container in running]
        requests = [_amount(container.requests.get(resource)) for container in running]
        # One container without a limit leaves the pod unlimited, unless a pod-level limit
        # caps it; containers without a request reserve nothing.
        pod_limit = _amount(pod.pod_limits.get(resource))
        if pod_limit is None and all(limit is not None for limit in limits):
            pod_limit = math.fsum(limit for limit in limits if limit is not None)
        pod_request = _amount(pod.pod_requests.get(resource))
        if pod_request is None:
            pod_request = math.fsum(request for request in requests if request is not None)
        self.add_breaches(
            pod,
            container=None,
            resource=resource,
            usage=usage,
            samples=len(summed),
            bounds=((Bound.LIMIT, pod_limit), (Bound.REQUEST, pod_request or None)),
        )


def _scan_oom_kills(
    snapshot: ClusterSnapshot,
    history: UsageHistory,
    namespace: str | None,
    run: _Run,
) -> list[OomKill]:
    """OOM kills in the window from history, and every kill the selected pods record.

    Finished pods count here: a pod with ``restartPolicy: Never`` (a Job's) that is
    OOM-killed ends ``Failed``, and its kill is the one worth seeing.
    """
    pods = [pod for pod in snapshot.pods if namespace is None or pod.namespace == namespace]
    pods_by_key = {(pod.namespace, pod.name): pod for pod in pods}
    history_kills: dict[ContainerRef, list[int]] = {}
    for ref, instants in history.oom_kill_ms.items():
        if namespace is not None and ref.namespace != namespace:
            continue
        kept = sorted(instant for instant in instants if run.start_ms <= instant <= run.end_ms)
        if kept:
            history_kills[ref] = kept
    recorded_kills: dict[ContainerRef, list[int | None]] = {}
    for selected in pods:
        for container_name, finished_ms in _recorded_oom_kills(selected):
            ref = ContainerRef(selected.namespace, selected.name, container_name)
            recorded_kills.setdefault(ref, []).append(finished_ms)
    kills: list[OomKill] = []
    for ref in sorted(history_kills.keys() | recorded_kills.keys()):
        pod = pods_by_key.get((ref.namespace, ref.pod))
        node_name = pod.node_name if pod is not None else None
        node = snapshot.node(node_name) if node_name is not None else None
        for killed_at_ms, source in _merge_kills(
            history_kills.get(ref, ()), recorded_kills.get(ref, ())
        ):
            kills.append(
                _oom_kill(
                    ref=ref,
                    pod=pod,
                    node=node,
                    killed_at_ms=killed_at_ms,
                    source=source,
                    history=history,
                    window_start_ms=run.start_ms,
                    window_end_ms=run.end_ms,
                    threshold_percent=run.threshold,
                )
            )
    return kills


def _breach_order(item: ResourceBreach) -> tuple[int, float, str, str, str, str, str]:
    return (
        item.severity.rank,
        -item.percent,
        item.namespace,
        item.pod,
        item.container or "",
        item.resource,
        item.bound.value,
    )


def _throttling_order(item: ThrottlingFinding) -> tuple[int, float, str, str, str]:
    return (item.severity.rank, -item.throttled_ratio, item.namespace, item.pod, item.container)


def _oom_order(item: OomKill) -> tuple[int, bool, int, str, str, str]:
    # In-window kills first; among the rest the newest first, kills without a time last.
    return (
        item.severity.rank,
        item.killed_at_ms is None,
        -(item.killed_at_ms or 0),
        item.namespace,
        item.pod,
        item.container,
    )


# ---------------------------------------------------------------------------- entry point


def detect_limit_breaches(
    snapshot: ClusterSnapshot,
    history: UsageHistory,
    *,
    threshold_percent: float = 90.0,
    time_window: str = "5m",
    namespace: str | None = None,
    statistic: str = "max",
    top: int | None = None,
) -> LimitBreachReport:
    """Containers and pods near or over their limits and requests, and what goes with it.

    Args:
        snapshot: the cluster's objects.
        history: what was measured; it must cover at least ``time_window`` ending at
            ``history.end_ms``, and only that newest part is used for breaches,
            throttling and efficiency. OOM correlation reads the samples just before each
            kill wherever they are in the history.
        threshold_percent: report usage at or above this percentage of a limit or request
            (1 to 100); also the working-set share of the limit above which an OOM kill
            is put down to the limit.
        time_window: how much of the newest history to reduce, as a duration (``5m``).
        namespace: narrow everything to one namespace; None for all.
        statistic: how each series is reduced over the window: ``max`` (default: the
            worst moment), ``avg``, ``last`` or a percentile ``pNN`` (``p95`` ignores the
            worst 5 % of samples).
        top: keep only the first ``top`` items (the worst) of each list; the summary
            still counts every item and :attr:`LimitBreachReport.truncated` names the
            lists that were cut. None (default) lists everything, which at 50,000 pods is
            some 110 MB of JSON.

    Returns:
        A :class:`LimitBreachReport` whose lists are sorted worst first.

    Raises:
        KubepulseValueError: a threshold outside 1-100, a malformed or non-positive window
            or one longer than the history, an unknown statistic, or an unknown namespace
            (the message lists the known ones), or a ``top`` that is not a whole number
            from 1 to 100,000.
    """
    threshold = _check_threshold(threshold_percent)
    top = check_top(top)
    window_ms = _check_window(time_window, history)
    aggregation = _check_statistic(statistic)
    if namespace is not None:
        snapshot.require_namespace(namespace)
    run = _Run(
        threshold=threshold,
        aggregation=aggregation,
        start_ms=history.end_ms - window_ms,
        end_ms=history.end_ms,
    )
    pods = [
        pod for pod in snapshot.active_pods() if namespace is None or pod.namespace == namespace
    ]
    scan = _Scan(history, run)
    for pod in pods:
        scan.scan_pod(pod)
    oom_kills = _scan_oom_kills(snapshot, history, namespace, run)

    breaches = sorted(scan.breaches, key=_breach_order)
    throttling = sorted(scan.throttling, key=_throttling_order)
    oom_kills.sort(key=_oom_order)
    missing_settings = sorted(
        scan.missing_settings, key=lambda item: (item.severity.rank, item.namespace, item.pod)
    )
    missing_data = sorted(
        scan.missing_data, key=lambda item: (item.namespace, item.pod, item.container)
    )
    by_severity = {severity.value: 0 for severity in Severity}
    for breach in breaches:
        by_severity[breach.severity.value] += 1
    cut = Truncation(top)
    return LimitBreachReport(
        settings=BreachSettings(
            threshold_percent=threshold,
            time_window=time_window,
            window_start_ms=run.start_ms,
            window_end_ms=run.end_ms,
            statistic=aggregation.name,
            namespace=namespace,
            top=top,
        ),
        summary=BreachSummary(
            pods=len(pods),
            containers_measured=scan.measured_containers,
            breaches_by_severity=by_severity,
            oom_kills_in_window=sum(1 for kill in oom_kills if kill.in_window),
            throttled_containers=len(throttling),
            pods_missing_settings=len(missing_settings),
            containers_missing_data=len(missing_data),
        ),
        breaches=cut.first("breaches", breaches),
        throttling=cut.first("throttling", throttling),
        oom_kills=cut.first("oomKills", oom_kills),
        missing_settings=cut.first("missingSettings", missing_settings),
        container_efficiency=cut.first(
            "containerEfficiency", *_figures(EfficiencyLevel.CONTAINER, scan.container_totals, top)
        ),
        pod_efficiency=cut.first(
            "podEfficiency", *_figures(EfficiencyLevel.POD, scan.pod_totals, top)
        ),
        workload_efficiency=cut.first(
            "workloadEfficiency", *_figures(EfficiencyLevel.WORKLOAD, scan.workload_totals, top)
        ),
        namespace_efficiency=cut.first(
            "namespaceEfficiency", *_figures(EfficiencyLevel.NAMESPACE, scan.namespace_totals, top)
        ),
        missing_data=cut.first("missingData", missing_data),
        truncated=MappingProxyType(cut.full_lengths),
    )

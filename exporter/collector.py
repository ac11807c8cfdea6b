"""The exporter's prometheus_client collector: every ``kubepulse_*`` family, fresh per scrape.

:class:`ExporterCollector` runs one :func:`~exporter.scan.scan_node` pass per
:meth:`~ExporterCollector.collect` and turns it, the pod metadata and the sampler's
histograms into metric families, every name, type, help text and label set taken from
:mod:`kubepulse.catalog`. Register it with a ``CollectorRegistry``; ``describe()``
returns nothing, so registering does not trigger a collection. A scrape never raises and
never waits on the API server (the metadata source returns its newest view at once).

**Labels of pods and containers the exporter has no object for.** In local mode (no
cluster) and for a pod the watch has not delivered yet, there is no namespace, pod name
or container name to report. Such series are labelled ``namespace=""`` (an empty label,
which PromQL treats as absent), ``pod=<pod UID from the cgroup path>``,
``container=<the runtime's full 64-hex container ID>`` and ``pod_uid=<the same pod
UID>``, as :class:`~exporter.metadata.MetadataMode` ``LOCAL`` promises ("reported by pod
UID and container ID only"). The full ID keeps containers apart and joins with
``kubepulse_container_info{container_id}``. A pod known by its object is labelled with
its namespace and name, its containers with their names, and ``pod_uid`` with
``metadata.uid`` (for a static pod the mirror pod's UID, not the config hash). The QoS
class of such a pod comes from its cgroup's parent (the kubelet's own decision); spec
and status series (requests, limits, restarts, terminations) exist only for pods with
an object. A ``runtime`` label the exporter cannot tell is empty.

**Which pods get spec series.** Every pod of the view that has not reached a terminal
phase (``Succeeded``, ``Failed``); per container, app containers and native sidecars
(classic init containers have finished and hold nothing).

**OOM kills** are published from the cgroup (``kubepulse_container_oom_kills_total``:
``memory.events`` ``oom_kill`` on v2, ``memory.oom_control`` on v1), and the kills
that ended a container, whose cgroup is gone by then, from the pod status
(``kubepulse_container_last_terminated_reason{reason="OOMKilled"}``).

**Sampled histograms.** A daemon thread (:meth:`ExporterCollector.start`) runs
:meth:`ExporterCollector.sample_once` every ``sample_interval_seconds``: it reads each
container's CPU usage and working set (three files: :func:`~exporter.scan.sample_containers`)
and observes the working set, and the CPU used since the previous sample divided by the
time between them (cores), into that container's cumulative histograms. It uses the
cgroup tree of the last collection (skipping the sandboxes that collection found) and
walks the tree itself every 10 steps without a collection, so that containers started
between scrapes are sampled too. The bucket bounds are the catalog's: 0.01, 0.025, 0.05,
0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64 cores and 1Mi to 64Gi bytes in powers of two. A
container's state is dropped as soon as its cgroup is gone, so a deleted pod's series
disappear; its first CPU observation comes one interval after it was first seen.

**Counters from processes.** Runtime overhead and host-process CPU are counters
accumulated from per-process deltas between scans (a process is keyed by PID and start
time, so a reused PID is a new process); the first scan counts what each process has
used so far. Host processes are grouped by command name; the top ``top_host_processes``
groups by CPU accumulated since the exporter started keep their own series, the others
are folded into ``group="other"``. A group's counter grows only while it is shown, so
the counters of all groups and ``other`` add up to the total without double counting.

**Cardinality.** At most ``max_series`` series are published. The exporter's own
families are always published (a few dozen series: they report what was dropped); the
rest are added family by family in priority order, node, pod, container (usage, limits,
requests, OOM kills, restarts), container detail (CFS, RSS, cache, swap, processes,
threads, pressure, sampled histograms), host processes, and a family that no longer fits
is dropped whole, with every family after it, and each is counted as
``kubepulse_exporter_errors_total{reason="series_limit"}`` under its collector.

**The ``collector`` label** of the exporter's own series names a part of the collection:

=============  ===========================================================================
collector      covers
=============  ===========================================================================
``cgroups``    walking the cgroup tree and reading pod and container cgroups
``processes``  the scan of /proc/<pid> (runtime overhead and host processes)
``node``       /proc/stat, /proc/meminfo, /proc/pressure and the kubelet root's filesystem
``pods``       the pod and Node objects (series: spec and status; errors: the watch's own)
``sampler``    the sampler thread's steps (series: the sampled histograms)
``exporter``   a whole collection (series: the exporter's own families)
=============  ===========================================================================

``kubepulse_exporter_last_success_timestamp_seconds`` is set when a part finished
without an error other than ``vanished`` (processes and cgroups that exit while they are
read are normal churn, counted but not a failure).

**Ephemeral storage** is read with ``statvfs`` from the kubelet's root directory, found
next to the proc root: ``/var/lib/kubelet`` for ``proc_root="/proc"``,
``/host/var/lib/kubelet`` for ``proc_root="/host/proc"`` (mount the host's
``/var/lib/kubelet`` there). Without that directory the series are absent.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Generic, TypeVar

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

import kubepulse
from exporter.cgroup_path import ContainerRuntime, RuntimeHelper
from exporter.cgroupfs import CgroupMode, CgroupStats, PressureStats, detect_cgroup_mode
from exporter.metadata import ClusterView, MetadataMode, MetadataSource
from exporter.podindex import PodIndex
from exporter.scan import (
    COLLECTOR_CGROUPS,
    COLLECTOR_NODE,
    COLLECTOR_PROCESSES,
    REASON_VANISHED,
    CgroupTree,
    ContainerKey,
    ContainerSample,
    ContainerUsage,
    NodeScan,
    PodUsage,
    ProcessGroupUsage,
    ProcessKey,
    discover_cgroups,
    error_reason,
    sample_containers,
    scan_node,
)
from kubepulse import catalog
from kubepulse.catalog import (
    HOST_PROCESS_OTHER_GROUP,
    HOST_PROCESS_TOP_N_DEFAULT,
    MetricSpec,
    MetricType,
)
from kubepulse.errors import KubepulseError, KubepulseValueError
from kubepulse.model import CPU, EPHEMERAL_STORAGE, MEMORY, ContainerSpec, Pod

__all__ = [
    "COLLECTORS",
    "COLLECTOR_EXPORTER",
    "COLLECTOR_PODS",
    "COLLECTOR_SAMPLER",
    "REASON_INTERNAL",
    "REASON_SERIES_LIMIT",
    "ExporterCollector",
    "HostProcessAccounting",
    "ProcessCpuAccounting",
    "SampledHistogram",
]

COLLECTOR_PODS: Final = "pods"
"""The pod metadata source; its errors come from :attr:`ClusterView.errors`."""
COLLECTOR_SAMPLER: Final = "sampler"
"""The sampler thread's steps."""
COLLECTOR_EXPORTER: Final = "exporter"
"""A whole collection."""
COLLECTORS: Final = (
    COLLECTOR_CGROUPS,
    COLLECTOR_PROCESSES,
    COLLECTOR_NODE,
    COLLECTOR_PODS,
    COLLECTOR_SAMPLER,
    COLLECTOR_EXPORTER,
)
"""Every value of the ``collector`` label, in the order the exporter's series list them."""

REASON_SERIES_LIMIT: Final = "series_limit"
"""A family was dropped because publishing it would exceed ``max_series``."""
REASON_INTERNAL: Final = "internal"
"""An unexpected exception inside the exporter (a bug: the log has the traceback)."""

_LOGGER = logging.getLogger("kubepulse.exporter.collector")

# The sampler reads the cgroup tree of the last scan, and walks it itself after this many
# steps without a scan, so that containers started between scrapes are sampled too.
_SAMPLER_STEPS_PER_WALK: Final = 10
# How long stop() waits for a sampler step that is under way.
_STOP_TIMEOUT_SECONDS: Final = 5.0
# After this many failed scans in a row (cgroup root unusable), /healthz reports failure.
_FAILED_SCANS_BEFORE_UNHEALTHY: Final = 3
_TERMINAL_PHASES: Final = frozenset({"Succeeded", "Failed"})
# /proc/stat modes published; guest time is already inside user and nice.
_PUBLISHED_CPU_MODES: Final = (
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "irq",
    "softirq",
    "steal",
)
_RUNTIME_LABELS: Final[Mapping[ContainerRuntime, str]] = {
    "containerd": "containerd",
    "cri-o": "crio",
    "docker": "docker",
    "unknown": "",
}
# The scheme of a pod status' containerID for each runtime.
_CONTAINER_ID_SCHEMES: Final[Mapping[ContainerRuntime, str]] = {
    "containerd": "containerd",
    "cri-o": "cri-o",
    "docker": "docker",
}
_HUGEPAGES_PREFIX: Final = "hugepages-"
_BYTE_RESOURCES: Final = frozenset({MEMORY, EPHEMERAL_STORAGE})
_QOS_RESOURCES: Final = (CPU, MEMORY)
_SAMPLED_CPU: Final = "kubepulse_container_sampled_cpu_usage_cores"
_SAMPLED_MEMORY: Final = "kubepulse_container_sampled_memory_working_set_bytes"
_COLLECTION_DURATION: Final = "kubepulse_exporter_collection_duration_seconds"

# Families dropped last to first when max_series is reached, by tier (0 is kept first).
_CONTAINER_CORE_FAMILIES: Final = frozenset(
    {
        "kubepulse_container_info",
        "kubepulse_container_cpu_usage_seconds_total",
        "kubepulse_container_cpu_limit_cores",
        "kubepulse_container_memory_working_set_bytes",
        "kubepulse_container_memory_usage_bytes",
        "kubepulse_container_memory_limit_bytes",
        "kubepulse_container_oom_kills_total",
        "kubepulse_container_resource_requests",
        "kubepulse_container_resource_limits",
        "kubepulse_container_restarts_total",
        "kubepulse_container_last_terminated_reason",
        "kubepulse_container_last_terminated_timestamp_seconds",
    }
)
_TIER_NODE: Final = 0
_TIER_POD: Final = 1
_TIER_CONTAINER: Final = 2
_TIER_CONTAINER_DETAIL: Final = 3
_TIER_HOST: Final = 4

KeyT = TypeVar("KeyT")

# prometheus_client's own formatting of bucket bounds ("+Inf", "1.048576e+06"), so that
# these histograms read like those of its Histogram class; it carries no annotations.
_format_bound: Callable[[float], str] = floatToGoString


def _tier(spec: MetricSpec) -> int:
    if spec.scope is catalog.Scope.NODE:
        return _TIER_NODE
    if spec.scope is catalog.Scope.POD:
        return _TIER_POD
    if spec.scope is catalog.Scope.CONTAINER:
        return _TIER_CONTAINER if spec.name in _CONTAINER_CORE_FAMILIES else _TIER_CONTAINER_DETAIL
    return _TIER_HOST


def _collector_of(spec: MetricSpec) -> str:
    """The collector whose series a family counts as."""
    if spec.name in (_SAMPLED_CPU, _SAMPLED_MEMORY):
        return COLLECTOR_SAMPLER
    if spec.scope is catalog.Scope.EXPORTER:
        return COLLECTOR_EXPORTER
    if spec.source is catalog.Source.KUBERNETES_API:
        return COLLECTOR_PODS
    if spec.source is catalog.Source.CGROUP:
        return COLLECTOR_CGROUPS
    if spec.scope is catalog.Scope.HOST_PROCESS or spec.name.startswith("kubepulse_node_runtime_"):
        return COLLECTOR_PROCESSES
    return COLLECTOR_NODE


# ---------------------------------------------------------------- state across scans


class SampledHistogram:
    """A cumulative histogram over fixed bounds, as Prometheus histograms are."""

    __slots__ = ("_bounds", "_counts", "count", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = tuple(bounds)
        # One slot per bound plus +Inf; not cumulative until exposed.
        self._counts = [0] * (len(self._bounds) + 1)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count ``value`` in the first bucket whose upper bound is at least ``value``."""
        self._counts[bisect.bisect_left(self._bounds, value)] += 1
        self.count += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        """``(le, cumulative count)`` pairs, ``+Inf`` last, as the exposition wants them."""
        pairs: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self._bounds, math.inf), self._counts, strict=True):
            running += count
            pairs.append((_format_bound(bound), float(running)))
        return pairs


class ProcessCpuAccounting(Generic[KeyT]):
    """Monotonic CPU-seconds counters per group, from per-process CPU times across scans.

    Each :meth:`add_scan` charges every process's CPU time since the previous scan to the
    group the process is in now. A process seen for the first time is charged what it
    has used so far; one that exited since the last scan loses at most one interval.
    """

    __slots__ = ("_last_seconds",)

    def __init__(self) -> None:
        self._last_seconds: dict[ProcessKey, float] = {}

    def add_scan(self, groups: Mapping[KeyT, ProcessGroupUsage]) -> dict[KeyT, float]:
        """Charge one scan; returns the CPU seconds each group used since the last one."""
        deltas: dict[KeyT, float] = {}
        seen: dict[ProcessKey, float] = {}
        for key, group in groups.items():
            delta = 0.0
            for process, seconds in group.cpu_seconds_by_process.items():
                previous = self._last_seconds.get(process)
                delta += seconds if previous is None else max(seconds - previous, 0.0)
                seen[process] = seconds
            deltas[key] = delta
        self._last_seconds = seen
        return deltas


@dataclass(frozen=True, slots=True)
class HostProcessGroup:
    """One published host-process group: a command name among the top N, or ``other``."""

    cpu_seconds_total: float
    rss_bytes: int
    processes: int


@dataclass(frozen=True, slots=True)
class HostProcessReport:
    """Host processes as published: top-N groups plus ``other``."""

    groups: Mapping[str, HostProcessGroup] = field(hash=False)
    folded_groups: int


class HostProcessAccounting:
    """Host-process groups folded to the top N by CPU, with monotonic CPU counters."""

    __slots__ = ("_cpu", "_lifetime_seconds", "_published_seconds", "_top_n")

    def __init__(self, top_n: int) -> None:
        self._top_n = top_n
        self._cpu: ProcessCpuAccounting[str] = ProcessCpuAccounting()
        self._lifetime_seconds: dict[str, float] = {}
        self._published_seconds: dict[str, float] = {}

    def add_scan(self, groups: Mapping[str, ProcessGroupUsage]) -> HostProcessReport:
        """Charge one scan and return the groups to publish."""
        deltas = self._cpu.add_scan(groups)
        # Groups whose processes are all gone are forgotten, which bounds the state by
        # the command names alive at once.
        self._lifetime_seconds = {
            comm: self._lifetime_seconds.get(comm, 0.0) + deltas[comm] for comm in groups
        }
        ranked = sorted(groups, key=lambda comm: (-self._lifetime_seconds[comm], comm))
        top = ranked[: self._top_n]
        folded = ranked[self._top_n :]
        published: dict[str, HostProcessGroup] = {}
        for comm in top:
            total = self._published_seconds.get(comm, 0.0) + deltas[comm]
            self._published_seconds[comm] = total
            published[comm] = HostProcessGroup(
                cpu_seconds_total=total,
                rss_bytes=groups[comm].rss_bytes,
                processes=groups[comm].processes,
            )
        other_total = self._published_seconds.get(HOST_PROCESS_OTHER_GROUP, 0.0) + sum(
            deltas[comm] for comm in folded
        )
        self._published_seconds[HOST_PROCESS_OTHER_GROUP] = other_total
        if folded:
            published[HOST_PROCESS_OTHER_GROUP] = HostProcessGroup(
                cpu_seconds_total=other_total,
                rss_bytes=sum(groups[comm].rss_bytes for comm in folded),
                processes=sum(groups[comm].processes for comm in folded),
            )
        self._published_seconds = {
            comm: seconds
            for comm, seconds in self._published_seconds.items()
            if comm in groups or comm == HOST_PROCESS_OTHER_GROUP
        }
        return HostProcessReport(groups=published, folded_groups=len(folded))


@dataclass(slots=True)
class _SampledContainer:
    """One container's sampled histograms and its previous CPU reading."""

    cpu_cores: SampledHistogram
    working_set_bytes: SampledHistogram
    last_cpu_seconds: float | None = None
    last_sampled_at: float | None = None

    def observe(self, sample: ContainerSample, now: float) -> None:
        """Observe the working set, and the cores used since the previous sample."""
        if sample.working_set_bytes is not None:
            self.working_set_bytes.observe(sample.working_set_bytes)
        cpu_seconds = sample.cpu_usage_seconds
        if cpu_seconds is None:
            return
        previous_seconds, previous_at = self.last_cpu_seconds, self.last_sampled_at
        if (
            previous_seconds is not None
            and previous_at is not None
            and now > previous_at
            and cpu_seconds >= previous_seconds
        ):
            self.cpu_cores.observe((cpu_seconds - previous_seconds) / (now - previous_at))
        self.last_cpu_seconds = cpu_seconds
        self.last_sampled_at = now


# ---------------------------------------------------------------- building families


def _new_family(spec: MetricSpec) -> Metric:
    if spec.type is MetricType.COUNTER:
        return CounterMetricFamily(spec.family_name, spec.help, labels=spec.labels, unit=spec.unit)
    if spec.type is MetricType.GAUGE:
        return GaugeMetricFamily(spec.family_name, spec.help, labels=spec.labels, unit=spec.unit)
    return HistogramMetricFamily(spec.family_name, spec.help, labels=spec.labels, unit=spec.unit)


class _Families:
    """Families of one collection, created from the catalog on first use."""

    def __init__(self) -> None:
        self._by_name: dict[str, tuple[MetricSpec, Metric]] = {}

    def _family(self, name: str, labels: Sequence[str]) -> Metric:
        entry = self._by_name.get(name)
        if entry is None:
            spec = catalog.get(name)
            entry = (spec, _new_family(spec))
            self._by_name[name] = entry
        spec, family = entry
        if len(labels) != len(spec.labels):
            raise KubepulseValueError(
                f"{name} takes the labels {', '.join(spec.labels)}, but "
                f"{len(labels)} values were given; fix the exporter's label building"
            )
        return family

    def add(self, name: str, labels: Sequence[str], value: float | int | Decimal | None) -> None:
        """Add one sample; a ``None`` value means absent and adds nothing."""
        if value is None:
            return
        family = self._family(name, labels)
        assert isinstance(family, CounterMetricFamily | GaugeMetricFamily)
        family.add_metric(labels, float(value))

    def add_histogram(self, name: str, labels: Sequence[str], histogram: SampledHistogram) -> None:
        """Add one histogram's buckets, sum and count."""
        family = self._family(name, labels)
        assert isinstance(family, HistogramMetricFamily)
        family.add_metric(labels, histogram.buckets(), histogram.sum)

    def in_catalog_order(self) -> list[tuple[MetricSpec, Metric]]:
        """The families that have samples, in catalog order."""
        order = {name: position for position, name in enumerate(catalog.names())}
        return sorted(
            (entry for entry in self._by_name.values() if entry[1].samples),
            key=lambda entry: order[entry[0].name],
        )


def _resource_unit(resource: str) -> str:
    """The ``unit`` label of a resource, as kube-state-metrics writes it."""
    if resource == CPU:
        return "core"
    if resource in _BYTE_RESOURCES or resource.startswith(_HUGEPAGES_PREFIX):
        return "byte"
    return "integer"


def _runtime_label(runtime: ContainerRuntime) -> str:
    return _RUNTIME_LABELS.get(runtime, "")


def _container_id_label(usage: ContainerUsage) -> str:
    status = usage.status
    if status is not None and status.runtime and status.container_id:
        return f"{status.runtime}://{status.container_id}"
    scheme = _CONTAINER_ID_SCHEMES.get(usage.runtime)
    return usage.key.container_id if scheme is None else f"{scheme}://{usage.key.container_id}"


def _spec_of(pod: Pod | None, name: str | None) -> ContainerSpec | None:
    if pod is None or name is None:
        return None
    return next((spec for spec in pod.all_containers if spec.name == name), None)


def _pod_identity(pod: Pod | None, cgroup_uid: str) -> tuple[str, str, str]:
    """``(namespace, pod, pod_uid)`` labels; see the module docstring for unknown pods."""
    if pod is None:
        return "", cgroup_uid, cgroup_uid
    return pod.namespace, pod.name, pod.uid or cgroup_uid


def _running_containers(pod: Pod) -> tuple[ContainerSpec, ...]:
    """App containers and native sidecars: the containers that run beside each other."""
    return tuple(spec for spec in pod.all_containers if not spec.runs_to_completion)


def _add_pressure(
    families: _Families,
    prefix: str,
    labels: Sequence[str],
    resource: str,
    pressure: PressureStats | None,
    *,
    with_stalled: bool = True,
) -> None:
    if pressure is None:
        return
    families.add(
        f"{prefix}pressure_{resource}_waiting_seconds_total", labels, pressure.some_total_seconds
    )
    if with_stalled:
        families.add(
            f"{prefix}pressure_{resource}_stalled_seconds_total",
            labels,
            pressure.full_total_seconds,
        )


def _add_cgroup_pressure(
    families: _Families, prefix: str, labels: Sequence[str], stats: CgroupStats
) -> None:
    _add_pressure(families, prefix, labels, "cpu", stats.cpu_pressure)
    _add_pressure(families, prefix, labels, "memory", stats.memory_pressure)
    _add_pressure(families, prefix, labels, "io", stats.io_pressure)


def _add_container_usage(
    families: _Families,
    node: str,
    usage: ContainerUsage,
    sampled: _SampledContainer | None,
) -> None:
    namespace, pod_name, pod_uid = _pod_identity(usage.pod, usage.key.pod_uid)
    container = usage.name or usage.key.container_id
    labels = (namespace, pod_name, container, node, pod_uid)
    stats = usage.stats
    spec = _spec_of(usage.pod, usage.name)
    image = (usage.status.image if usage.status else None) or (spec.image if spec else None)
    families.add(
        "kubepulse_container_info",
        (*labels, _container_id_label(usage), image or "", _runtime_label(usage.runtime)),
        1,
    )
    families.add("kubepulse_container_cpu_usage_seconds_total", labels, stats.cpu_usage_seconds)
    families.add("kubepulse_container_cpu_cfs_periods_total", labels, stats.nr_periods)
    families.add("kubepulse_container_cpu_cfs_throttled_periods_total", labels, stats.nr_throttled)
    families.add(
        "kubepulse_container_cpu_cfs_throttled_seconds_total", labels, stats.throttled_seconds
    )
    families.add("kubepulse_container_cpu_limit_cores", labels, stats.cpu_limit_cores)
    families.add("kubepulse_container_memory_working_set_bytes", labels, stats.working_set_bytes)
    families.add("kubepulse_container_memory_usage_bytes", labels, stats.memory_usage_bytes)
    families.add("kubepulse_container_memory_rss_bytes", labels, stats.rss_bytes)
    families.add("kubepulse_container_memory_cache_bytes", labels, stats.cache_bytes)
    families.add("kubepulse_container_memory_swap_bytes", labels, usage.swap_bytes)
    families.add("kubepulse_container_memory_limit_bytes", labels, stats.memory_limit_bytes)
    families.add("kubepulse_container_oom_kills_total", labels, stats.oom_kills)
    families.add("kubepulse_container_processes", labels, usage.processes)
    families.add("kubepulse_container_threads", labels, usage.threads)
    _add_cgroup_pressure(families, "kubepulse_container_", labels, stats)
    if sampled is not None:
        if sampled.cpu_cores.count:
            families.add_histogram(_SAMPLED_CPU, labels, sampled.cpu_cores)
        if sampled.working_set_bytes.count:
            families.add_histogram(_SAMPLED_MEMORY, labels, sampled.working_set_bytes)


def _add_pod_usage(families: _Families, node: str, usage: PodUsage) -> None:
    namespace, pod_name, pod_uid = _pod_identity(usage.pod, usage.pod_uid)
    labels = (namespace, pod_name, node, pod_uid)
    stats = usage.stats
    families.add("kubepulse_pod_cpu_usage_seconds_total", labels, stats.cpu_usage_seconds)
    families.add("kubepulse_pod_memory_working_set_bytes", labels, stats.working_set_bytes)
    families.add("kubepulse_pod_memory_usage_bytes", labels, stats.memory_usage_bytes)
    families.add("kubepulse_pod_memory_rss_bytes", labels, stats.rss_bytes)
    families.add("kubepulse_pod_memory_cache_bytes", labels, stats.cache_bytes)
    families.add("kubepulse_pod_oom_kills_total", labels, stats.oom_kills)
    families.add("kubepulse_pod_processes", labels, usage.processes)
    families.add("kubepulse_pod_threads", labels, usage.threads)
    _add_cgroup_pressure(families, "kubepulse_pod_", labels, stats)
    if usage.pod is None:
        # No object to take the class from: the cgroup's parent is the kubelet's verdict.
        families.add(
            "kubepulse_pod_qos_class_info", (namespace, pod_name, node, usage.qos_class), 1
        )


def _add_pod_spec(families: _Families, node: str, pod: Pod) -> None:
    pod_labels = (pod.namespace, pod.name, node)
    families.add("kubepulse_pod_qos_class_info", (*pod_labels, pod.qos_class), 1)
    for resource, amount in pod.effective_requests.items():
        families.add(
            "kubepulse_pod_resource_requests",
            (*pod_labels, resource, _resource_unit(resource)),
            amount,
        )
    for resource, amount in pod.effective_limits.items():
        if pod.containers_missing_limits((resource,)):
            continue
        families.add(
            "kubepulse_pod_resource_limits",
            (*pod_labels, resource, _resource_unit(resource)),
            amount,
        )
    for resource in _QOS_RESOURCES:
        families.add(
            "kubepulse_pod_resource_requests_missing",
            (*pod_labels, resource),
            int(bool(pod.containers_missing_requests((resource,)))),
        )
        families.add(
            "kubepulse_pod_resource_limits_missing",
            (*pod_labels, resource),
            int(bool(pod.containers_missing_limits((resource,)))),
        )
    for spec in _running_containers(pod):
        labels = (pod.namespace, pod.name, spec.name, node)
        for resource, amount in spec.requests.items():
            families.add(
                "kubepulse_container_resource_requests",
                (*labels, resource, _resource_unit(resource)),
                amount,
            )
        for resource, amount in spec.limits.items():
            families.add(
                "kubepulse_container_resource_limits",
                (*labels, resource, _resource_unit(resource)),
                amount,
            )
        status = pod.status_of(spec.name)
        if status is None:
            continue
        families.add("kubepulse_container_restarts_total", labels, status.restart_count)
        termination = status.last_termination
        if termination is None:
            continue
        if termination.reason:
            families.add(
                "kubepulse_container_last_terminated_reason", (*labels, termination.reason), 1
            )
        if termination.finished_at_ms is not None:
            families.add(
                "kubepulse_container_last_terminated_timestamp_seconds",
                labels,
                termination.finished_at_ms / 1000,
            )


def _add_node(families: _Families, node: str, scan: NodeScan, view: ClusterView) -> None:
    labels = (node,)
    if scan.node_cpu is not None:
        for mode in _PUBLISHED_CPU_MODES:
            families.add(
                "kubepulse_node_cpu_seconds_total",
                (node, mode),
                scan.node_cpu.seconds_by_mode.get(mode),
            )
    if scan.memory is not None:
        families.add("kubepulse_node_memory_total_bytes", labels, scan.memory.total_bytes)
        families.add("kubepulse_node_memory_available_bytes", labels, scan.memory.available_bytes)
    if scan.pressure is not None:
        # The kernel defines no node-wide CPU "full" line worth publishing (it reads zero).
        _add_pressure(
            families, "kubepulse_node_", labels, "cpu", scan.pressure.cpu, with_stalled=False
        )
        _add_pressure(families, "kubepulse_node_", labels, "memory", scan.pressure.memory)
        _add_pressure(families, "kubepulse_node_", labels, "io", scan.pressure.io)
    if view.node is not None:
        for resource, amount in view.node.capacity.items():
            families.add(
                "kubepulse_node_status_capacity", (node, resource, _resource_unit(resource)), amount
            )
        for resource, amount in view.node.allocatable.items():
            families.add(
                "kubepulse_node_status_allocatable",
                (node, resource, _resource_unit(resource)),
                amount,
            )
    if view.mode is MetadataMode.CLUSTER and view.synced:
        active = sum(1 for pod in view.pods.values() if pod.phase not in _TERMINAL_PHASES)
        families.add("kubepulse_node_pods", labels, active)
    storage = scan.ephemeral_storage
    if storage is not None:
        families.add(
            "kubepulse_node_ephemeral_storage_capacity_bytes", labels, storage.capacity_bytes
        )
        families.add(
            "kubepulse_node_ephemeral_storage_available_bytes", labels, storage.available_bytes
        )
        families.add("kubepulse_node_ephemeral_storage_used_bytes", labels, storage.used_bytes)


def _add_runtime_overhead(
    families: _Families,
    node: str,
    groups: Mapping[RuntimeHelper, ProcessGroupUsage],
    cpu_totals: Mapping[RuntimeHelper, float],
) -> None:
    for helper, group in groups.items():
        labels = (node, _runtime_label(helper.runtime), helper.component)
        families.add("kubepulse_node_runtime_cpu_usage_seconds_total", labels, cpu_totals[helper])
        families.add("kubepulse_node_runtime_memory_rss_bytes", labels, group.rss_bytes)
        families.add("kubepulse_node_runtime_processes", labels, group.processes)


def _add_host_processes(families: _Families, node: str, report: HostProcessReport) -> None:
    for group_name, group in report.groups.items():
        labels = (node, group_name)
        families.add(
            "kubepulse_host_process_cpu_usage_seconds_total", labels, group.cpu_seconds_total
        )
        families.add("kubepulse_host_process_memory_rss_bytes", labels, group.rss_bytes)
        families.add("kubepulse_host_processes", labels, group.processes)
    families.add("kubepulse_host_process_groups_folded", (node,), report.folded_groups)


def _kubelet_root_next_to(proc_root: str) -> str:
    """The kubelet root of the host whose procfs is at ``proc_root`` (module docstring)."""
    host_root = os.path.dirname(os.path.normpath(os.path.abspath(proc_root)))
    return os.path.join(host_root, "var", "lib", "kubelet")


def _is_failure(reason: str) -> bool:
    return reason != REASON_VANISHED


# ---------------------------------------------------------------- the collector


class ExporterCollector:
    """The exporter's collector: scans the node on every scrape, samples in between.

    Args:
        node_name: this node's name, the ``node`` label of every series.
        metadata: where pod and Node objects come from; read once per collection.
        proc_root: where the host's procfs is mounted (``/host/proc`` in the DaemonSet).
        cgroup_root: where the host's cgroupfs is mounted (``/host/sys/fs/cgroup``).
        sample_interval_seconds: how often the sampler thread observes the sampled
            histograms; shorter than the scrape interval.
        top_host_processes: host-process groups with their own series; the rest are
            folded into ``other``.
        max_series: the most series one collection publishes (see the module docstring).

    Raises:
        KubepulseValueError: a setting is out of range; the message says which.
    """

    def __init__(
        self,
        *,
        node_name: str,
        metadata: MetadataSource,
        proc_root: str = "/proc",
        cgroup_root: str = "/sys/fs/cgroup",
        sample_interval_seconds: float = 1.0,
        top_host_processes: int = HOST_PROCESS_TOP_N_DEFAULT,
        max_series: int = 50_000,
    ) -> None:
        if not node_name:
            raise KubepulseValueError(
                "node_name is empty; pass the node's name (the DaemonSet sets it from "
                "spec.nodeName through the downward API)"
            )
        if not (math.isfinite(sample_interval_seconds) and sample_interval_seconds > 0):
            raise KubepulseValueError(
                f"sample_interval_seconds is {sample_interval_seconds!r}; use a positive "
                "number of seconds shorter than the scrape interval, such as 1"
            )
        if top_host_processes < 0:
            raise KubepulseValueError(
                f"top_host_processes is {top_host_processes}; use 0 or more (0 folds every "
                "host process into the group 'other')"
            )
        if max_series < 0:
            raise KubepulseValueError(f"max_series is {max_series}; use 0 or more")
        self._node_name = node_name
        self._metadata = metadata
        self._proc_root = proc_root
        self._cgroup_root = cgroup_root
        self._kubelet_root = _kubelet_root_next_to(proc_root)
        self._sample_interval_seconds = float(sample_interval_seconds)
        self._max_series = max_series

        # One collection at a time: scans feed the cross-scan counters below.
        self._collect_lock = threading.Lock()
        self._runtime_cpu: ProcessCpuAccounting[RuntimeHelper] = ProcessCpuAccounting()
        self._runtime_cpu_totals: dict[RuntimeHelper, float] = {}
        self._host_processes = HostProcessAccounting(top_host_processes)
        self._last_view: ClusterView | None = None
        self._last_view_errors: Mapping[str, int] = {}
        self._dropping_series = False

        # Shared by collections and sampler steps.
        self._state_lock = threading.Lock()
        self._sample_lock = threading.Lock()
        self._sampled: dict[ContainerKey, _SampledContainer] = {}
        self._sampler_tree: CgroupTree | None = None
        self._sampler_steps_on_tree = 0
        self._sandboxes: frozenset[ContainerKey] = frozenset()
        self._errors: Counter[tuple[str, str]] = Counter()
        self._durations: dict[str, SampledHistogram] = {}
        self._last_success: dict[str, float] = {}
        self._series: dict[str, int] = {}
        self._cgroup_mode: CgroupMode | None = None
        self._runtime: ContainerRuntime = "unknown"
        self._failed_scans = 0

        self._thread_lock = threading.Lock()
        self._sampler_thread: threading.Thread | None = None
        self._stop_sampler = threading.Event()

        try:
            self._cgroup_mode = detect_cgroup_mode(cgroup_root)
        except (OSError, KubepulseError) as error:
            # Not fatal: the HTTP server still starts, and /healthz says what is wrong.
            _LOGGER.warning("%s", error)
            self._failed_scans = _FAILED_SCANS_BEFORE_UNHEALTHY

    # ------------------------------------------------------------ prometheus_client protocol

    def describe(self) -> list[Metric]:
        """Nothing: registering the collector must not run a collection."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Scan the node and yield every family, built afresh. Never raises."""
        with self._collect_lock:
            started = time.perf_counter()
            succeeded = True
            try:
                families = self._collect_families()
            except Exception:
                _LOGGER.exception("a collection failed; only the exporter's own series are served")
                succeeded = False
                families = []
            with self._state_lock:
                self._observe_duration(COLLECTOR_EXPORTER, time.perf_counter() - started)
                if succeeded:
                    self._last_success[COLLECTOR_EXPORTER] = time.time()
                else:
                    self._errors[(COLLECTOR_EXPORTER, REASON_INTERNAL)] += 1
                    self._failed_scans += 1
            families.extend(self._exporter_families())
        yield from families

    # ------------------------------------------------------------ health

    def last_scan_ok(self) -> bool:
        """False once the cgroup root has been unusable for several scans in a row.

        For ``/healthz``: a node whose cgroup filesystem is not mounted (or not readable)
        can report nothing about its pods, and restarting with the right mount fixes it.
        """
        with self._state_lock:
            return self._failed_scans < _FAILED_SCANS_BEFORE_UNHEALTHY

    # ------------------------------------------------------------ the sampler

    def start(self) -> None:
        """Start the sampler thread (a daemon); does nothing if it is running."""
        with self._thread_lock:
            if self._sampler_thread is not None and self._sampler_thread.is_alive():
                return
            self._stop_sampler = threading.Event()
            self._sampler_thread = threading.Thread(
                target=self._run_sampler,
                args=(self._stop_sampler,),
                name="kubepulse-sampler",
                daemon=True,
            )
            self._sampler_thread.start()

    def stop(self) -> None:
        """Stop the sampler thread and wait for its current step to end."""
        with self._thread_lock:
            thread, self._sampler_thread = self._sampler_thread, None
            self._stop_sampler.set()
        if thread is not None:
            thread.join(timeout=_STOP_TIMEOUT_SECONDS)
            if thread.is_alive():
                # A read blocked in the kernel; the daemon thread ends with the process.
                _LOGGER.warning(
                    "the sampler thread did not stop within %.0f seconds", _STOP_TIMEOUT_SECONDS
                )

    def sample_once(self, monotonic_seconds: float | None = None) -> None:
        """Take one sample of every container and observe it into the histograms.

        The sampler thread calls this every ``sample_interval_seconds``; tests call it
        with an explicit ``monotonic_seconds`` (a :func:`time.monotonic` reading) to
        drive it on a fake clock. Never raises.
        """
        now = time.monotonic() if monotonic_seconds is None else monotonic_seconds
        with self._sample_lock:
            started = time.perf_counter()
            try:
                self._sample(now)
            except Exception:
                _LOGGER.exception("a sampler step failed")
                with self._state_lock:
                    self._errors[(COLLECTOR_SAMPLER, REASON_INTERNAL)] += 1
            with self._state_lock:
                self._observe_duration(COLLECTOR_SAMPLER, time.perf_counter() - started)

    def _run_sampler(self, stop: threading.Event) -> None:
        next_due = time.monotonic()
        while not stop.is_set():
            self.sample_once()
            next_due += self._sample_interval_seconds
            delay = next_due - time.monotonic()
            if delay < 0:
                # A step overran (a slow disk, a paused VM): skip the missed ticks rather
                # than sampling in a burst.
                next_due = time.monotonic()
                delay = 0.0
            stop.wait(delay)

    def _sample(self, now: float) -> None:
        tree, walk_errors = self._tree_for_sampler()
        if tree is None:
            return
        with self._state_lock:
            sandboxes = self._sandboxes
        samples = sample_containers(tree, skip=sandboxes)
        present = {cgroup.key for cgroup in tree.containers()}
        with self._state_lock:
            for key in [
                key for key in self._sampled if key not in present or key in samples.vanished
            ]:
                del self._sampled[key]
            for key, sample in samples.samples.items():
                state = self._sampled.get(key)
                if state is None:
                    state = _SampledContainer(
                        cpu_cores=SampledHistogram(catalog.get(_SAMPLED_CPU).buckets),
                        working_set_bytes=SampledHistogram(catalog.get(_SAMPLED_MEMORY).buckets),
                    )
                    self._sampled[key] = state
                state.observe(sample, now)
            reasons = Counter(walk_errors) + Counter(samples.errors)
            for reason, count in reasons.items():
                self._errors[(COLLECTOR_SAMPLER, reason)] += count
            if not any(_is_failure(reason) for reason in reasons):
                self._last_success[COLLECTOR_SAMPLER] = time.time()

    def _tree_for_sampler(self) -> tuple[CgroupTree | None, Mapping[str, int]]:
        """The last scan's cgroup tree, walked afresh every few steps to find new containers."""
        with self._state_lock:
            tree, mode = self._sampler_tree, self._cgroup_mode
            self._sampler_steps_on_tree += 1
            if tree is not None and self._sampler_steps_on_tree <= _SAMPLER_STEPS_PER_WALK:
                return tree, {}
        try:
            if mode is None:
                mode = detect_cgroup_mode(self._cgroup_root)
            tree = discover_cgroups(self._cgroup_root, mode)
        except (OSError, KubepulseError) as error:
            with self._state_lock:
                self._errors[(COLLECTOR_SAMPLER, error_reason(error))] += 1
                self._failed_scans += 1
            return None, {}
        with self._state_lock:
            self._cgroup_mode = mode
            self._failed_scans = 0
            self._sampler_tree = tree
            self._sampler_steps_on_tree = 0
        return tree, tree.walk_errors

    # ------------------------------------------------------------ one collection

    def _current_view(self) -> ClusterView:
        try:
            view = self._metadata.current()
        except Exception:
            # A source must not raise; if one does, the last good view (or none) is used.
            _LOGGER.exception("the metadata source failed; using the last view it returned")
            with self._state_lock:
                self._errors[(COLLECTOR_PODS, REASON_INTERNAL)] += 1
            return self._last_view or ClusterView(mode=MetadataMode.LOCAL, synced=True)
        self._last_view = view
        return view

    def _collect_families(self) -> list[Metric]:
        node = self._node_name
        started = time.perf_counter()
        view = self._current_view()
        index = PodIndex(view)
        pods_seconds = time.perf_counter() - started

        scan = scan_node(
            proc_root=self._proc_root,
            cgroup_root=self._cgroup_root,
            mode=None,
            index=index,
            kubelet_root=self._kubelet_root,
        )
        runtime_deltas = self._runtime_cpu.add_scan(scan.runtime_overhead)
        for helper, delta in runtime_deltas.items():
            self._runtime_cpu_totals[helper] = self._runtime_cpu_totals.get(helper, 0.0) + delta
        host_report = self._host_processes.add_scan(scan.host_processes)

        with self._state_lock:
            self._record_scan(scan, view, pods_seconds)
            if scan.cgroup_tree is not None:
                present = {cgroup.key for cgroup in scan.cgroup_tree.containers()}
                for key in [key for key in self._sampled if key not in present]:
                    del self._sampled[key]
                self._sampler_tree = scan.cgroup_tree
                self._sampler_steps_on_tree = 0
                self._sandboxes = scan.sandbox_containers
            sampled = dict(self._sampled)

            families = _Families()
            for container in scan.containers:
                _add_container_usage(families, node, container, sampled.get(container.key))
            for pod_usage in scan.pods:
                _add_pod_usage(families, node, pod_usage)
            for pod in index.pods:
                if pod.phase not in _TERMINAL_PHASES:
                    _add_pod_spec(families, node, pod)
            _add_node(families, node, scan, view)
            _add_runtime_overhead(families, node, scan.runtime_overhead, self._runtime_cpu_totals)
            _add_host_processes(families, node, host_report)
            return self._within_series_limit(families)

    def _record_scan(self, scan: NodeScan, view: ClusterView, pods_seconds: float) -> None:
        """Fold one scan's errors, timings and health into the exporter's own state."""
        now = time.time()
        for (collector, reason), count in scan.errors.items():
            self._errors[(collector, reason)] += count
        for collector, seconds in scan.stage_seconds.items():
            self._observe_duration(collector, seconds)
            failed = any(part == collector and _is_failure(reason) for part, reason in scan.errors)
            if not failed:
                self._last_success[collector] = now
        self._observe_duration(COLLECTOR_PODS, pods_seconds)
        for reason, count in view.errors.items():
            # The source's counts are cumulative already.
            self._errors[(COLLECTOR_PODS, reason)] = count
        view_failed = any(
            count > self._last_view_errors.get(reason, 0) for reason, count in view.errors.items()
        )
        self._last_view_errors = dict(view.errors)
        if view.synced and not view_failed:
            self._last_success[COLLECTOR_PODS] = now
        if scan.cgroup_mode is None:
            self._failed_scans += 1
        else:
            self._failed_scans = 0
            self._cgroup_mode = scan.cgroup_mode
        self._runtime = scan.runtime

    def _within_series_limit(self, families: _Families) -> list[Metric]:
        """The families that fit in ``max_series``, dropping by tier (see module docstring)."""
        built = families.in_catalog_order()
        budget = self._max_series - self._exporter_series_estimate()
        kept: set[str] = set()
        dropped: list[MetricSpec] = []
        for spec, family in sorted(built, key=lambda entry: _tier(entry[0])):
            size = len(family.samples)
            # Once one family does not fit, nothing of lower priority is added either, so
            # that a small host family never displaces container detail.
            if not dropped and size <= budget:
                budget -= size
                kept.add(spec.name)
            else:
                dropped.append(spec)
        series: Counter[str] = Counter()
        for spec, family in built:
            if spec.name in kept:
                series[_collector_of(spec)] += len(family.samples)
        for spec in dropped:
            self._errors[(_collector_of(spec), REASON_SERIES_LIMIT)] += 1
        if dropped and not self._dropping_series:
            _LOGGER.warning(
                "max_series=%d reached: dropped %s; raise max_series or lower top_host_processes",
                self._max_series,
                ", ".join(spec.name for spec in dropped),
            )
        elif not dropped and self._dropping_series:
            _LOGGER.info("all series fit within max_series=%d again", self._max_series)
        self._dropping_series = bool(dropped)
        self._series = {collector: series.get(collector, 0) for collector in COLLECTORS}
        return [family for spec, family in built if spec.name in kept]

    def _exporter_series_estimate(self) -> int:
        """An upper bound of the exporter's own series, reserved before anything else.

        Info, a duration histogram, a last-success and a series gauge per collector, the
        error series so far and room for one new error series per collector.
        """
        histogram_series = len(catalog.get(_COLLECTION_DURATION).buckets) + 3
        per_collector = histogram_series + 3
        return 1 + per_collector * len(COLLECTORS) + len(self._errors)

    # ------------------------------------------------------------ the exporter's own series

    def _observe_duration(self, collector: str, seconds: float) -> None:
        histogram = self._durations.get(collector)
        if histogram is None:
            histogram = SampledHistogram(catalog.get(_COLLECTION_DURATION).buckets)
            self._durations[collector] = histogram
        histogram.observe(seconds)

    def _exporter_families(self) -> list[Metric]:
        with self._state_lock:
            return self._exporter_family_list()

    def _exporter_family_list(self) -> list[Metric]:
        """The exporter's own families, from the state the collections left."""
        node = self._node_name
        families = _Families()
        mode = self._cgroup_mode
        cgroup_version = "" if mode is None else ("2" if mode == "v2" else "1")
        families.add(
            "kubepulse_exporter_info",
            (node, kubepulse.__version__, cgroup_version, _runtime_label(self._runtime)),
            1,
        )
        for collector in COLLECTORS:
            histogram = self._durations.get(collector)
            if histogram is not None:
                families.add_histogram(_COLLECTION_DURATION, (node, collector), histogram)
        for (collector, reason), count in sorted(self._errors.items()):
            families.add("kubepulse_exporter_errors_total", (node, collector, reason), count)
        for collector in COLLECTORS:
            families.add(
                "kubepulse_exporter_last_success_timestamp_seconds",
                (node, collector),
                self._last_success.get(collector),
            )
        own_series = sum(len(family.samples) for _, family in families.in_catalog_order())
        # The series gauge counts itself too: one series per collector.
        self._series[COLLECTOR_EXPORTER] = own_series + len(COLLECTORS)
        for collector in COLLECTORS:
            families.add(
                "kubepulse_exporter_series", (node, collector), self._series.get(collector, 0)
            )
        return [family for _, family in families.in_catalog_order()]

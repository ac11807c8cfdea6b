"""One collection pass over a node: its pod and container cgroups, its processes, its totals.

:func:`scan_node` is what the collector runs on every scrape. It works in four steps,
each timed and each with its own error counts (the ``collector`` of
``kubepulse_exporter_errors_total``):

1. ``cgroups``: walk the host's cgroup hierarchy (:func:`discover_cgroups`) to find every
   pod-level and container cgroup, whether or not the exporter can see its processes;
2. ``processes``: read every process under the proc root and sort it into a pod (by its
   own cgroup, never by its parent: with ``shareProcessNamespace`` an app's parent is the
   pause process of another container), the container runtime's overhead
   (containerd-shim, conmon, the daemons: :func:`~exporter.cgroup_path.classify_runtime_helper`)
   or the host, grouped by command name; kernel threads are left out;
3. ``cgroups`` again: decide which container cgroups are containers to report, and read
   their stats and those of every pod-level cgroup;
4. ``node``: ``/proc/stat``, ``/proc/meminfo``, ``/proc/pressure`` and the filesystem
   of the kubelet's root directory.

**Pods are read at pod level.** A pod's totals come from its pod-level cgroup, which
holds its containers, its sandbox and (on CRI-O) its conmon. Adding the containers to it,
or the pause container to the containers, would count the same usage twice.

**Which container cgroups are containers.** Under a pod the :class:`PodIndex` knows, a
container ID found in a container status is reported under that container's name, and
any other ID is the sandbox (or a container already replaced) and is not reported (see
:mod:`exporter.podindex`). Under a pod it does not know (local mode, or a pod newer than
the watch), a container whose visible processes are all ``pause`` is the sandbox; any
other container cgroup is reported by its ID. CRI-O's ``crio-conmon-<id>`` scopes are
never containers, and a crun ``crio-<id>.scope/container`` subgroup is part of its
scope, whose files are read (:func:`~exporter.cgroup_path.stats_cgroup_path`).

**Processes and threads of a container or pod** are counted from the cgroups, not from
/proc, so that they are right whatever the exporter's PID namespace: processes are the
PIDs in ``cgroup.procs`` of the cgroup and its descendants; threads are ``pids.current``,
or the lines of ``cgroup.threads`` (cgroup v2) or ``tasks`` (v1) when the pids controller
is not enabled. Either is ``None`` when none of those files can be read.

**Nothing raises.** A process or cgroup that vanishes during the pass, a file the exporter
may not read and a file whose content is malformed are counted in
:attr:`NodeScan.errors` by ``(collector, reason)``, and the pass goes on without that
item; PSI that the kernel does not provide is ``None``, not an error. Reasons are a
fixed set of short words (:data:`ERROR_REASONS`), never exception text.

For the sampler, :func:`sample_containers` reads only what the sampled histograms need
(CPU usage and working set) for the containers of a :class:`CgroupTree`.
"""

from __future__ import annotations

import errno
import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, NamedTuple

from exporter.cgroup_path import (
    CgroupIdentity,
    ContainerRuntime,
    MalformedFileError,
    RuntimeHelper,
    classify_runtime_helper,
    identify_cgroup,
)
from exporter.cgroupfs import (
    CgroupMode,
    CgroupRootError,
    CgroupStats,
    StrPath,
    detect_cgroup_mode,
    parse_flat_keyed,
    parse_single_int,
    read_cgroup_stats,
    read_text_if_present,
)
from exporter.podindex import PodIndex
from exporter.procfs import (
    MemInfo,
    NodeCpuTimes,
    NodePressure,
    ProcessScanCounters,
    iter_processes,
    read_meminfo,
    read_node_cpu,
    read_node_pressure,
)
from kubepulse.errors import KubepulseValueError
from kubepulse.model import ContainerStatus, Pod, QosClass

__all__ = [
    "COLLECTOR_CGROUPS",
    "COLLECTOR_NODE",
    "COLLECTOR_PROCESSES",
    "ERROR_REASONS",
    "REASON_INVALID_PATH",
    "REASON_IO_ERROR",
    "REASON_NOT_FOUND",
    "REASON_PARSE_ERROR",
    "REASON_PERMISSION_DENIED",
    "REASON_VANISHED",
    "SANDBOX_COMMAND",
    "CgroupTree",
    "ContainerCgroup",
    "ContainerKey",
    "ContainerSample",
    "ContainerSamples",
    "ContainerUsage",
    "FilesystemUsage",
    "NodeScan",
    "PodCgroup",
    "PodUsage",
    "ProcessGroupUsage",
    "ProcessKey",
    "discover_cgroups",
    "error_reason",
    "sample_containers",
    "scan_node",
]

COLLECTOR_CGROUPS: Final = "cgroups"
"""Errors and timings of the cgroup walk and of reading pod and container cgroups."""
COLLECTOR_PROCESSES: Final = "processes"
"""Errors and timings of the scan of /proc/<pid> (runtime overhead, host processes)."""
COLLECTOR_NODE: Final = "node"
"""Errors and timings of the node-wide files: /proc/stat, meminfo, pressure, statvfs."""

REASON_PERMISSION_DENIED: Final = "permission_denied"
"""The exporter may not read a file: a missing mount, capability or ``hidepid``."""
REASON_NOT_FOUND: Final = "not_found"
"""A file or directory that must exist does not (no cgroupfs at the root, no /proc/stat)."""
REASON_PARSE_ERROR: Final = "parse_error"
"""A kernel file does not have the format the kernel writes."""
REASON_VANISHED: Final = "vanished"
"""A process or cgroup went away while it was read (it exited): normal churn."""
REASON_IO_ERROR: Final = "io_error"
"""Any other failed read."""
REASON_INVALID_PATH: Final = "invalid_path"
"""A cgroup path that climbs out of the cgroup root."""
ERROR_REASONS: Final = frozenset(
    {
        REASON_PERMISSION_DENIED,
        REASON_NOT_FOUND,
        REASON_PARSE_ERROR,
        REASON_VANISHED,
        REASON_IO_ERROR,
        REASON_INVALID_PATH,
    }
)
"""Every ``reason`` a scan counts errors under."""

SANDBOX_COMMAND: Final = "pause"
"""The command name of the sandbox image's only process (``registry.k8s.io/pause``)."""

# v1 (and hybrid) hierarchies to walk for pods, best first: the kubelet creates its pod
# cgroups in every controller it manages, and memory is the one read most.
_V1_WALK_HIERARCHIES: Final = ("memory", "cpu,cpuacct", "cpuacct,cpu", "cpuacct", "cpu", "pids")
# Where cpuacct.usage lives on v1, as in exporter.cgroupfs.
_V1_CPUACCT_HIERARCHIES: Final = ("cpuacct", "cpu,cpuacct", "cpuacct,cpu")
_V1_MEMORY_HIERARCHY: Final = "memory"
_USEC_PER_SECOND: Final = 1_000_000
_NSEC_PER_SECOND: Final = 1_000_000_000
_RUNTIME_BY_STATUS_SCHEME: Final[Mapping[str, ContainerRuntime]] = MappingProxyType(
    {"containerd": "containerd", "cri-o": "cri-o", "docker": "docker"}
)
# Which runtime a node runs when its daemons are all that says so: dockerd drives
# containerd, so docker wins over containerd; CRI-O runs alone.
_RUNTIME_DAEMON_PREFERENCE: Final[tuple[ContainerRuntime, ...]] = ("docker", "cri-o", "containerd")


class ContainerKey(NamedTuple):
    """A container cgroup: the pod UID of its path and the runtime's container ID."""

    pod_uid: str
    """The UID in the cgroup path: ``metadata.uid``, or a static pod's config hash."""
    container_id: str
    """The runtime's 64-hex container ID."""


class ProcessKey(NamedTuple):
    """One process across scans: a PID is reused, a PID with its start time is not."""

    pid: int
    start_time_seconds: float


# ---------------------------------------------------------------- the cgroup tree


@dataclass(frozen=True, slots=True)
class ContainerCgroup:
    """A container's cgroup, as found by walking the hierarchy."""

    identity: CgroupIdentity
    """Pod UID, container ID, runtime (from the path) and QoS class."""
    path: str
    """The cgroup whose files account for the container, relative to the hierarchy."""
    member_paths: tuple[str, ...]
    """:attr:`path` and its descendants (CRI-O's ``container`` subgroup and the like)."""

    @property
    def key(self) -> ContainerKey:
        """The container's key."""
        assert self.identity.container_id is not None  # containers always have one
        return ContainerKey(self.identity.pod_uid, self.identity.container_id)


@dataclass(frozen=True, slots=True)
class PodCgroup:
    """A pod-level cgroup and the container cgroups found under it."""

    identity: CgroupIdentity
    """Pod UID and QoS class, from the path."""
    path: str
    """The pod-level cgroup, relative to the hierarchy."""
    member_paths: tuple[str, ...]
    """:attr:`path` and every cgroup below it: containers, sandbox, conmon scopes."""
    containers: tuple[ContainerCgroup, ...]
    """The container cgroups below it, sandbox included, in path order."""


@dataclass(frozen=True, slots=True)
class CgroupTree:
    """Every pod and container cgroup of a node, from one walk of its hierarchy."""

    mode: CgroupMode
    """The cgroup mode of the root that was walked."""
    root: str
    """The cgroup root (``/sys/fs/cgroup``) that paths are read under."""
    hierarchy_dir: str
    """The directory that was walked: the root on v2, a v1 controller's directory."""
    pods: tuple[PodCgroup, ...]
    """Pod-level cgroups in path order."""
    walk_errors: Mapping[str, int] = field(default_factory=dict, hash=False)
    """Directories the walk skipped, by reason (``vanished``, ``permission_denied``…)."""

    def containers(self) -> Iterator[ContainerCgroup]:
        """Every container cgroup, sandboxes included."""
        for pod in self.pods:
            yield from pod.containers


# ---------------------------------------------------------------- scan results


@dataclass(frozen=True, slots=True)
class ContainerUsage:
    """One container to report: who it is and what its cgroup says it uses."""

    key: ContainerKey
    """Pod UID of the cgroup path and container ID."""
    name: str | None
    """The container's name from the pod status; ``None`` when the pod is unknown."""
    runtime: ContainerRuntime
    """From the cgroup name, else the pod status' ``containerID`` scheme, else the node's."""
    qos_class: QosClass
    """From the cgroup's parent."""
    pod: Pod | None
    """The pod object; ``None`` in local mode or for a pod the watch has not seen."""
    status: ContainerStatus | None
    """The container's status; ``None`` when the pod is unknown."""
    cgroup_path: str
    """The cgroup that was read, relative to the hierarchy."""
    stats: CgroupStats
    """Usage, limits (``None`` = unlimited), OOM kills and pressure."""
    swap_bytes: int | None
    """``memory.swap.current`` (v2) or ``total_swap`` (v1); ``None`` without swap accounting."""
    processes: int | None
    """PIDs in ``cgroup.procs`` of the cgroup and its descendants."""
    threads: int | None
    """``pids.current``, else the lines of ``cgroup.threads`` (v2) or ``tasks`` (v1)."""


@dataclass(frozen=True, slots=True)
class PodUsage:
    """One pod, read from its pod-level cgroup (containers, sandbox and conmon included)."""

    pod_uid: str
    """The UID in the cgroup path (a static pod's config hash)."""
    qos_class: QosClass
    """From the cgroup's parent."""
    pod: Pod | None
    """The pod object; ``None`` when unknown."""
    cgroup_path: str
    """The pod-level cgroup, relative to the hierarchy."""
    stats: CgroupStats
    """The pod-level cgroup's stats."""
    processes: int | None
    """PIDs in ``cgroup.procs`` of the pod cgroup and all its descendants."""
    threads: int | None
    """``pids.current`` of the pod cgroup, else a count of its descendants' threads."""


@dataclass(frozen=True, slots=True)
class ProcessGroupUsage:
    """Processes grouped together (one runtime component, or one host command name)."""

    processes: int
    """How many processes."""
    threads: int
    """Their threads."""
    rss_bytes: int
    """Their resident memory."""
    cpu_seconds_by_process: Mapping[ProcessKey, float] = field(hash=False)
    """Each process's CPU seconds so far (user + system), for per-process deltas."""

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds the live processes have used so far."""
        return sum(self.cpu_seconds_by_process.values())


@dataclass(frozen=True, slots=True)
class FilesystemUsage:
    """Space on the filesystem holding the kubelet's root directory, from ``statvfs``."""

    capacity_bytes: int
    """``f_blocks * f_frsize``."""
    available_bytes: int
    """``f_bavail * f_frsize``: what unprivileged writers may still use."""
    used_bytes: int
    """``(f_blocks - f_bfree) * f_frsize``."""


@dataclass(frozen=True, slots=True)
class NodeScan:
    """Everything one pass over a node found."""

    cgroup_mode: CgroupMode | None
    """The mode of the cgroup root; ``None`` when no cgroup filesystem was usable there."""
    cgroup_tree: CgroupTree | None
    """The pod and container cgroups found; ``None`` when the root was unusable."""
    containers: tuple[ContainerUsage, ...]
    """Containers to report (never a sandbox), in path order."""
    pods: tuple[PodUsage, ...]
    """Pods read from their pod-level cgroups, in path order."""
    sandbox_containers: frozenset[ContainerKey]
    """Container cgroups recognised as sandboxes (or replaced containers): not reported."""
    runtime_overhead: Mapping[RuntimeHelper, ProcessGroupUsage]
    """The container runtime's own processes, by runtime and component."""
    host_processes: Mapping[str, ProcessGroupUsage]
    """Processes of no pod and no runtime, by command name (``comm``); no kernel threads."""
    node_cpu: NodeCpuTimes | None
    """``/proc/stat``; ``None`` when unreadable (counted as an error)."""
    memory: MemInfo | None
    """``/proc/meminfo``; ``None`` when unreadable (counted as an error)."""
    pressure: NodePressure | None
    """``/proc/pressure``; ``None`` on kernels without PSI (not an error)."""
    ephemeral_storage: FilesystemUsage | None
    """The kubelet root's filesystem; ``None`` without a kubelet root directory."""
    runtime: ContainerRuntime
    """The node's container runtime, as far as the scan could tell."""
    errors: Mapping[tuple[str, str], int] = field(hash=False)
    """Errors of this pass by ``(collector, reason)``."""
    stage_seconds: Mapping[str, float] = field(hash=False)
    """How long each collector's part of the pass took, in seconds."""


@dataclass(frozen=True, slots=True)
class ContainerSample:
    """What the sampler reads of one container cgroup."""

    cpu_usage_seconds: float | None
    """Cumulative CPU time of the cgroup."""
    working_set_bytes: int | None
    """Usage minus inactive file pages, clamped at zero."""


@dataclass(frozen=True, slots=True)
class ContainerSamples:
    """One sampler pass: a sample per container cgroup that could be read."""

    samples: Mapping[ContainerKey, ContainerSample] = field(hash=False)
    """Samples by container."""
    vanished: frozenset[ContainerKey]
    """Containers whose cgroup is gone (their container exited or their pod was deleted)."""
    errors: Mapping[str, int] = field(hash=False)
    """Errors by reason."""


# ---------------------------------------------------------------- errors


def error_reason(error: BaseException) -> str:
    """The fixed ``reason`` word for an exception met while reading kernel files."""
    if isinstance(error, MalformedFileError):
        return REASON_PARSE_ERROR
    if isinstance(error, PermissionError):
        return REASON_PERMISSION_DENIED
    if isinstance(error, FileNotFoundError | CgroupRootError):
        return REASON_NOT_FOUND
    if isinstance(error, ProcessLookupError):
        return REASON_VANISHED
    if isinstance(error, KubepulseValueError):
        return REASON_INVALID_PATH
    return REASON_IO_ERROR


class _Errors:
    """Error counts of one pass by (collector, reason)."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def add(self, collector: str, reason: str, count: int = 1) -> None:
        if count:
            self.counts[(collector, reason)] += count

    def add_error(self, collector: str, error: BaseException) -> None:
        self.add(collector, error_reason(error))


# ---------------------------------------------------------------- walking the hierarchy


def _hierarchy_dir(cgroup_root: str, mode: CgroupMode) -> str:
    if mode == "v2":
        return cgroup_root
    for name in _V1_WALK_HIERARCHIES:
        candidate = os.path.join(cgroup_root, name)
        if os.path.isdir(candidate):
            return candidate
    raise CgroupRootError(
        f"no v1 controller hierarchy ({', '.join(_V1_WALK_HIERARCHIES)}) under "
        f"{cgroup_root!r}; mount the host's /sys/fs/cgroup there"
    )


@dataclass(slots=True)
class _PodBuilder:
    identity: CgroupIdentity
    path: str
    member_paths: list[str] = field(default_factory=list)
    containers: dict[str, tuple[CgroupIdentity, str, list[str]]] = field(default_factory=dict)


def discover_cgroups(cgroup_root: StrPath, mode: CgroupMode) -> CgroupTree:
    """Walk the cgroup hierarchy and return every pod-level and container cgroup in it.

    The whole hierarchy is walked, because the kubelet's ``kubepods`` may sit below any
    prefix (kind's ``kubelet.slice``, a ``/docker/<id>`` parent). A directory that
    vanishes during the walk, or cannot be listed, is skipped and counted in
    :attr:`CgroupTree.walk_errors`.

    Raises:
        CgroupRootError: the hierarchy to walk does not exist.
    """
    walk_errors: Counter[str] = Counter()
    root = os.fspath(cgroup_root)
    hierarchy = _hierarchy_dir(root, mode)
    if not os.path.isdir(hierarchy):
        raise CgroupRootError(
            f"the cgroup root {root!r} is not a directory; mount the host's /sys/fs/cgroup there"
        )
    pods: dict[str, _PodBuilder] = {}
    # (directory, path relative to the hierarchy, pod UID above it, container ID above it)
    stack: list[tuple[str, str, str | None, str | None]] = [(hierarchy, "", None, None)]
    while stack:
        directory, relative, pod_uid, container_id = stack.pop()
        try:
            with os.scandir(directory) as entries:
                children = sorted(
                    entry.name for entry in entries if entry.is_dir(follow_symlinks=False)
                )
        except OSError as error:
            vanished = error.errno in (errno.ENOENT, errno.ENODEV)
            walk_errors[REASON_VANISHED if vanished else error_reason(error)] += 1
            continue
        for name in reversed(children):
            child_relative = f"{relative}/{name}"
            child_pod_uid, child_container_id = pod_uid, container_id
            if container_id is None:
                identity = identify_cgroup(child_relative)
                if identity is not None:
                    child_pod_uid = identity.pod_uid
                    child_container_id = identity.container_id
                    _register(pods, identity, child_relative)
            if child_pod_uid is not None and child_pod_uid in pods:
                builder = pods[child_pod_uid]
                if child_relative != builder.path:
                    builder.member_paths.append(child_relative)
                if child_container_id is not None:
                    builder.containers[child_container_id][2].append(child_relative)
            stack.append(
                (os.path.join(directory, name), child_relative, child_pod_uid, child_container_id)
            )
    return CgroupTree(
        mode=mode,
        root=root,
        hierarchy_dir=hierarchy,
        pods=tuple(_build_pod(builder) for _, builder in sorted(pods.items(), key=_by_path)),
        walk_errors=MappingProxyType(dict(walk_errors)),
    )


def _by_path(item: tuple[str, _PodBuilder]) -> str:
    return item[1].path


def _register(pods: dict[str, _PodBuilder], identity: CgroupIdentity, path: str) -> None:
    """Record a pod-level cgroup, or a container cgroup under its pod."""
    if identity.is_pod_level or identity.container_id is None:
        pods.setdefault(identity.pod_uid, _PodBuilder(identity=identity, path=path))
        return
    builder = pods.get(identity.pod_uid)
    if builder is None:
        # A container outside its pod's cgroup does not happen on a real hierarchy (the
        # pod's directory is always walked first); without a pod-level cgroup there is
        # nothing to account the pod by, so the container is left out.
        return
    builder.containers.setdefault(identity.container_id, (identity, path, []))


def _build_pod(builder: _PodBuilder) -> PodCgroup:
    containers = tuple(
        ContainerCgroup(identity=identity, path=path, member_paths=tuple(members))
        for identity, path, members in sorted(builder.containers.values(), key=lambda c: c[1])
    )
    return PodCgroup(
        identity=builder.identity,
        path=builder.path,
        member_paths=(builder.path, *builder.member_paths),
        containers=containers,
    )


# ---------------------------------------------------------------- reading cgroup files


def _cgroup_dir(hierarchy_dir: str, relative_path: str) -> str:
    return hierarchy_dir + relative_path


class _LineCounts:
    """Lines of ``cgroup.procs`` and thread files per cgroup, each file read once a scan.

    A pod's count covers its containers' cgroups, which were counted for the containers
    already; the cache saves reading them twice.
    """

    __slots__ = ("_counts", "_hierarchy_dir")

    def __init__(self, hierarchy_dir: str) -> None:
        self._hierarchy_dir = hierarchy_dir
        self._counts: dict[tuple[str, str], int | None] = {}

    def _count(self, relative_path: str, file_name: str) -> int | None:
        key = (relative_path, file_name)
        if key not in self._counts:
            path = os.path.join(_cgroup_dir(self._hierarchy_dir, relative_path), file_name)
            text = read_text_if_present(path)
            self._counts[key] = (
                None if text is None else sum(1 for line in text.splitlines() if line.strip())
            )
        return self._counts[key]

    def total(self, member_paths: tuple[str, ...], file_name: str) -> int | None:
        """Non-empty lines of ``file_name`` summed over cgroups; ``None`` if none was read.

        Raises:
            OSError: a file exists but cannot be read (``EACCES``).
        """
        counts = [self._count(relative, file_name) for relative in member_paths]
        known = [count for count in counts if count is not None]
        return sum(known) if known else None


def _thread_file(mode: CgroupMode) -> str:
    return "cgroup.threads" if mode == "v2" else "tasks"


def _read_swap_bytes(tree: CgroupTree, relative_path: str) -> int | None:
    """Swap in use by the cgroup; ``None`` without swap accounting.

    Raises:
        MalformedFileError: the file's content is not what the kernel writes.
        OSError: the file exists but cannot be read.
    """
    if tree.mode == "v2":
        path = os.path.join(_cgroup_dir(tree.root, relative_path), "memory.swap.current")
        text = read_text_if_present(path)
        return None if text is None else parse_single_int(text, source=path)
    memory_dir = os.path.join(tree.root, _V1_MEMORY_HIERARCHY)
    path = os.path.join(_cgroup_dir(memory_dir, relative_path), "memory.stat")
    text = read_text_if_present(path)
    return None if text is None else parse_flat_keyed(text, source=path).get("total_swap")


@dataclass(frozen=True, slots=True)
class _CgroupReading:
    stats: CgroupStats
    processes: int | None
    threads: int | None


def _read_cgroup(
    tree: CgroupTree,
    path: str,
    member_paths: tuple[str, ...],
    line_counts: _LineCounts,
    errors: _Errors,
) -> _CgroupReading | None:
    """Stats and process and thread counts of one cgroup; ``None`` if it could not be read."""
    try:
        stats = read_cgroup_stats(tree.root, path, tree.mode)
    except (OSError, KubepulseValueError) as error:
        errors.add_error(COLLECTOR_CGROUPS, error)
        return None
    if stats is None:
        errors.add(COLLECTOR_CGROUPS, REASON_VANISHED)
        return None
    try:
        processes = line_counts.total(member_paths, "cgroup.procs")
        threads = stats.pids_current
        if threads is None:
            threads = line_counts.total(member_paths, _thread_file(tree.mode))
    except OSError as error:
        errors.add_error(COLLECTOR_CGROUPS, error)
        processes = threads = None
    return _CgroupReading(stats=stats, processes=processes, threads=threads)


# ---------------------------------------------------------------- processes


@dataclass(slots=True)
class _GroupBuilder:
    processes: int = 0
    threads: int = 0
    rss_bytes: int = 0
    cpu_seconds_by_process: dict[ProcessKey, float] = field(default_factory=dict)

    def build(self) -> ProcessGroupUsage:
        return ProcessGroupUsage(
            processes=self.processes,
            threads=self.threads,
            rss_bytes=self.rss_bytes,
            cpu_seconds_by_process=MappingProxyType(self.cpu_seconds_by_process),
        )


@dataclass(slots=True)
class _ProcessSort:
    """Processes sorted into pods, runtime overhead and host groups."""

    commands_by_container: dict[ContainerKey, set[str]] = field(default_factory=dict)
    runtime: dict[RuntimeHelper, _GroupBuilder] = field(default_factory=dict)
    host: dict[str, _GroupBuilder] = field(default_factory=dict)


def _scan_processes(
    proc_root: StrPath, clock_ticks: int | None, page_size: int | None, errors: _Errors
) -> _ProcessSort:
    sort = _ProcessSort()
    counters = ProcessScanCounters()
    try:
        for process in iter_processes(
            proc_root, clock_ticks=clock_ticks, page_size=page_size, counters=counters
        ):
            if process.is_kernel_thread:
                continue
            path = process.cgroup_path
            identity = identify_cgroup(path)
            if identity is not None:
                # A pod's process, mapped by its own cgroup; only the commands are kept,
                # to recognise sandboxes of pods the index does not know.
                if identity.container_id is not None:
                    key = ContainerKey(identity.pod_uid, identity.container_id)
                    sort.commands_by_container.setdefault(key, set()).add(process.comm)
                continue
            helper = classify_runtime_helper(path, process.comm)
            group = (
                sort.runtime.setdefault(helper, _GroupBuilder())
                if helper is not None
                else sort.host.setdefault(process.comm, _GroupBuilder())
            )
            group.processes += 1
            group.threads += process.threads
            group.rss_bytes += process.rss_bytes
            group.cpu_seconds_by_process[ProcessKey(process.pid, process.start_time_seconds)] = (
                process.cpu_seconds
            )
    except OSError as error:
        # The proc root cannot be listed, or a process's files are unreadable (hidepid):
        # iter_processes stops there, and what was read so far is kept.
        errors.add_error(COLLECTOR_PROCESSES, error)
    errors.add(COLLECTOR_PROCESSES, REASON_VANISHED, counters.vanished)
    errors.add(COLLECTOR_PROCESSES, REASON_PARSE_ERROR, len(counters.malformed))
    return sort


# ---------------------------------------------------------------- runtime


def _runtime_of_status(status: ContainerStatus | None) -> ContainerRuntime:
    if status is None or status.runtime is None:
        return "unknown"
    return _RUNTIME_BY_STATUS_SCHEME.get(status.runtime, "unknown")


def _detect_runtime(
    tree: CgroupTree | None, index: PodIndex, daemons: Mapping[RuntimeHelper, object]
) -> ContainerRuntime:
    """The node's runtime: from container cgroup names, pod statuses, then daemons."""
    votes: Counter[ContainerRuntime] = Counter()
    if tree is not None:
        votes.update(
            cgroup.identity.runtime
            for cgroup in tree.containers()
            if cgroup.identity.runtime != "unknown"
        )
    if not votes:
        votes.update(
            runtime
            for pod in index.pods
            for status in pod.container_statuses
            if (runtime := _runtime_of_status(status)) != "unknown"
        )
    if votes:
        return votes.most_common(1)[0][0]
    running = {helper.runtime for helper in daemons}
    preferred = (runtime for runtime in _RUNTIME_DAEMON_PREFERENCE if runtime in running)
    return next(preferred, "unknown")


# ---------------------------------------------------------------- containers and pods


def _is_unknown_pods_sandbox(commands: set[str] | None) -> bool:
    return bool(commands) and commands == {SANDBOX_COMMAND}


def _read_containers(
    tree: CgroupTree,
    *,
    index: PodIndex,
    commands_by_container: Mapping[ContainerKey, set[str]],
    node_runtime: ContainerRuntime,
    line_counts: _LineCounts,
    errors: _Errors,
) -> tuple[list[ContainerUsage], set[ContainerKey]]:
    containers: list[ContainerUsage] = []
    sandboxes: set[ContainerKey] = set()
    for cgroup in tree.containers():
        key = cgroup.key
        match = index.match_container(cgroup.identity)
        if match is not None and match.is_sandbox:
            sandboxes.add(key)
            continue
        if match is None and _is_unknown_pods_sandbox(commands_by_container.get(key)):
            sandboxes.add(key)
            continue
        reading = _read_cgroup(tree, cgroup.path, cgroup.member_paths, line_counts, errors)
        if reading is None:
            continue
        try:
            swap_bytes = _read_swap_bytes(tree, cgroup.path)
        except (OSError, MalformedFileError) as error:
            errors.add_error(COLLECTOR_CGROUPS, error)
            swap_bytes = None
        status = None if match is None else match.status
        runtime = cgroup.identity.runtime
        if runtime == "unknown":
            runtime = _runtime_of_status(status)
        if runtime == "unknown":
            runtime = node_runtime
        containers.append(
            ContainerUsage(
                key=key,
                name=None if match is None else match.name,
                runtime=runtime,
                qos_class=cgroup.identity.qos_class,
                pod=None if match is None else match.pod,
                status=status,
                cgroup_path=cgroup.path,
                stats=reading.stats,
                swap_bytes=swap_bytes,
                processes=reading.processes,
                threads=reading.threads,
            )
        )
    return containers, sandboxes


def _read_pods(
    tree: CgroupTree, index: PodIndex, line_counts: _LineCounts, errors: _Errors
) -> list[PodUsage]:
    pods: list[PodUsage] = []
    for cgroup in tree.pods:
        reading = _read_cgroup(tree, cgroup.path, cgroup.member_paths, line_counts, errors)
        if reading is None:
            continue
        pods.append(
            PodUsage(
                pod_uid=cgroup.identity.pod_uid,
                qos_class=cgroup.identity.qos_class,
                pod=index.lookup(cgroup.identity),
                cgroup_path=cgroup.path,
                stats=reading.stats,
                processes=reading.processes,
                threads=reading.threads,
            )
        )
    return pods


# ---------------------------------------------------------------- node-wide files


@dataclass(frozen=True, slots=True)
class _NodeFiles:
    cpu: NodeCpuTimes | None
    memory: MemInfo | None
    pressure: NodePressure | None
    ephemeral_storage: FilesystemUsage | None


def _read_filesystem(path: StrPath) -> FilesystemUsage:
    stat = os.statvfs(path)
    return FilesystemUsage(
        capacity_bytes=stat.f_blocks * stat.f_frsize,
        available_bytes=stat.f_bavail * stat.f_frsize,
        used_bytes=(stat.f_blocks - stat.f_bfree) * stat.f_frsize,
    )


def _read_node_files(
    proc_root: StrPath, kubelet_root: StrPath | None, clock_ticks: int | None, errors: _Errors
) -> _NodeFiles:
    cpu: NodeCpuTimes | None = None
    memory: MemInfo | None = None
    pressure: NodePressure | None = None
    ephemeral_storage: FilesystemUsage | None = None
    try:
        cpu = read_node_cpu(proc_root, clock_ticks=clock_ticks)
    except (OSError, MalformedFileError) as error:
        errors.add_error(COLLECTOR_NODE, error)
    try:
        memory = read_meminfo(proc_root)
    except (OSError, MalformedFileError) as error:
        errors.add_error(COLLECTOR_NODE, error)
    try:
        pressure = read_node_pressure(proc_root)
    except (OSError, MalformedFileError) as error:
        errors.add_error(COLLECTOR_NODE, error)
    if kubelet_root is not None and os.path.isdir(kubelet_root):
        try:
            ephemeral_storage = _read_filesystem(kubelet_root)
        except OSError as error:
            errors.add_error(COLLECTOR_NODE, error)
    return _NodeFiles(cpu, memory, pressure, ephemeral_storage)


# ---------------------------------------------------------------- the pass


def scan_node(
    *,
    proc_root: StrPath,
    cgroup_root: StrPath,
    mode: CgroupMode | None,
    index: PodIndex,
    kubelet_root: StrPath | None = None,
    clock_ticks: int | None = None,
    page_size: int | None = None,
) -> NodeScan:
    """Scan the node once: cgroups, processes and node-wide files. Never raises.

    Args:
        proc_root: where the host's procfs is mounted (``/proc``, ``/host/proc``).
        cgroup_root: where the host's cgroupfs is mounted (``/sys/fs/cgroup``).
        mode: the cgroup mode of ``cgroup_root``; ``None`` to detect it now.
        index: this node's pods; an index of a local view reports everything by ID.
        kubelet_root: the kubelet's root directory (``/var/lib/kubelet``) whose filesystem
            backs ephemeral storage; ``None`` or a missing directory leaves it out.
        clock_ticks: ticks per second of ``/proc`` times; default the host's.
        page_size: bytes per page of ``statm``; default the host's.

    Returns:
        What was found; what could not be read is left out and counted in
        :attr:`NodeScan.errors`. When the cgroup root is unusable, the cgroup part is
        empty, :attr:`NodeScan.cgroup_mode` is ``None`` and the process and node parts
        are still read.
    """
    errors = _Errors()
    stage_seconds: dict[str, float] = {}

    started = time.perf_counter()
    tree: CgroupTree | None = None
    try:
        resolved_mode = mode if mode is not None else detect_cgroup_mode(cgroup_root)
        tree = discover_cgroups(cgroup_root, resolved_mode)
        for reason, count in tree.walk_errors.items():
            errors.add(COLLECTOR_CGROUPS, reason, count)
    except (CgroupRootError, OSError) as error:
        errors.add_error(COLLECTOR_CGROUPS, error)
    walk_seconds = time.perf_counter() - started

    started = time.perf_counter()
    processes = _scan_processes(proc_root, clock_ticks, page_size, errors)
    stage_seconds[COLLECTOR_PROCESSES] = time.perf_counter() - started

    started = time.perf_counter()
    runtime = _detect_runtime(tree, index, processes.runtime)
    containers: list[ContainerUsage] = []
    sandboxes: set[ContainerKey] = set()
    pods: list[PodUsage] = []
    if tree is not None:
        line_counts = _LineCounts(tree.hierarchy_dir)
        containers, sandboxes = _read_containers(
            tree,
            index=index,
            commands_by_container=processes.commands_by_container,
            node_runtime=runtime,
            line_counts=line_counts,
            errors=errors,
        )
        pods = _read_pods(tree, index, line_counts, errors)
    stage_seconds[COLLECTOR_CGROUPS] = walk_seconds + time.perf_counter() - started

    started = time.perf_counter()
    node_files = _read_node_files(proc_root, kubelet_root, clock_ticks, errors)
    stage_seconds[COLLECTOR_NODE] = time.perf_counter() - started

    return NodeScan(
        cgroup_mode=None if tree is None else tree.mode,
        cgroup_tree=tree,
        containers=tuple(containers),
        pods=tuple(pods),
        sandbox_containers=frozenset(sandboxes),
        runtime_overhead=MappingProxyType(
            {helper: group.build() for helper, group in processes.runtime.items()}
        ),
        host_processes=MappingProxyType(
            {comm: group.build() for comm, group in sorted(processes.host.items())}
        ),
        node_cpu=node_files.cpu,
        memory=node_files.memory,
        pressure=node_files.pressure,
        ephemeral_storage=node_files.ephemeral_storage,
        runtime=runtime,
        errors=MappingProxyType(dict(errors.counts)),
        stage_seconds=MappingProxyType(stage_seconds),
    )


# ---------------------------------------------------------------- the sampler's pass


def _first_dir(root: str, names: tuple[str, ...]) -> str | None:
    for name in names:
        candidate = os.path.join(root, name)
        if os.path.isdir(candidate):
            return candidate
    return None


def _working_set(usage: int | None, inactive_file: int | None) -> int | None:
    # As exporter.cgroupfs and cAdvisor compute it: usage minus inactive file pages.
    if usage is None or inactive_file is None:
        return usage
    return max(usage - inactive_file, 0)


def _read_int_file(path: str) -> int | None:
    text = read_text_if_present(path)
    return None if text is None else parse_single_int(text, source=path)


def _keyed_value(text: str, key: str, source: str) -> int | None:
    """The value of one ``key value`` line of a flat keyed file, without parsing the rest.

    ``memory.stat`` has some fifty lines and the sampler needs one of them every second
    for every container, so the line is found with a substring search.

    Raises:
        MalformedFileError: the line is not ``key <integer>``.
    """
    prefix = f"{key} "
    if text.startswith(prefix):
        start = 0
    else:
        found = text.find(f"\n{prefix}")
        if found < 0:
            return None
        start = found + 1
    end = text.find("\n", start)
    line = text[start:] if end < 0 else text[start:end]
    words = line.split()
    if len(words) != 2:
        raise MalformedFileError(source, None, line, f"expected '{key} <integer>'")
    try:
        return int(words[1])
    except ValueError:
        raise MalformedFileError(
            source, None, line, f"the value of {key!r} is not an integer"
        ) from None


def _read_keyed_value(path: str, key: str) -> int | None:
    text = read_text_if_present(path)
    return None if text is None else _keyed_value(text, key, path)


def _sample_v2(directory: str) -> ContainerSample | None:
    usage_usec = _read_keyed_value(os.path.join(directory, "cpu.stat"), "usage_usec")
    usage = _read_int_file(os.path.join(directory, "memory.current"))
    if usage_usec is None and usage is None:
        return None
    inactive_file = _read_keyed_value(os.path.join(directory, "memory.stat"), "inactive_file")
    return ContainerSample(
        cpu_usage_seconds=None if usage_usec is None else usage_usec / _USEC_PER_SECOND,
        working_set_bytes=_working_set(usage, inactive_file),
    )


def _sample_v1(cpuacct_dir: str | None, memory_dir: str | None) -> ContainerSample | None:
    usage_nsec = None if cpuacct_dir is None else _read_int_file(f"{cpuacct_dir}/cpuacct.usage")
    usage = None if memory_dir is None else _read_int_file(f"{memory_dir}/memory.usage_in_bytes")
    if usage_nsec is None and usage is None:
        return None
    inactive_file = (
        None
        if memory_dir is None
        else _read_keyed_value(f"{memory_dir}/memory.stat", "total_inactive_file")
    )
    return ContainerSample(
        cpu_usage_seconds=None if usage_nsec is None else usage_nsec / _NSEC_PER_SECOND,
        working_set_bytes=_working_set(usage, inactive_file),
    )


def sample_containers(
    tree: CgroupTree, *, skip: frozenset[ContainerKey] = frozenset()
) -> ContainerSamples:
    """Read CPU usage and working set of the container cgroups of ``tree``. Never raises.

    Three files per container (``cpu.stat``, ``memory.current``, ``memory.stat`` on v2;
    ``cpuacct.usage``, ``memory.usage_in_bytes``, ``memory.stat`` on v1), cheap enough to
    run every second. ``skip`` names containers not to read (the sandboxes a scan found).
    A container whose cgroup is gone is listed in :attr:`ContainerSamples.vanished`.
    """
    samples: dict[ContainerKey, ContainerSample] = {}
    vanished: set[ContainerKey] = set()
    errors: Counter[str] = Counter()
    cpuacct_root = memory_root = None
    if tree.mode != "v2":
        cpuacct_root = _first_dir(tree.root, _V1_CPUACCT_HIERARCHIES)
        memory_root = _first_dir(tree.root, (_V1_MEMORY_HIERARCHY,))
    for cgroup in tree.containers():
        key = cgroup.key
        if key in skip:
            continue
        try:
            if tree.mode == "v2":
                sample = _sample_v2(_cgroup_dir(tree.root, cgroup.path))
            else:
                sample = _sample_v1(
                    None if cpuacct_root is None else _cgroup_dir(cpuacct_root, cgroup.path),
                    None if memory_root is None else _cgroup_dir(memory_root, cgroup.path),
                )
        except (OSError, MalformedFileError) as error:
            errors[error_reason(error)] += 1
            continue
        if sample is None:
            vanished.add(key)
        else:
            samples[key] = sample
    return ContainerSamples(
        samples=MappingProxyType(samples),
        vanished=frozenset(vanished),
        errors=MappingProxyType(dict(errors)),
    )

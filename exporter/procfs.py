"""Processes and node-wide CPU, memory and pressure from procfs.

The root of procfs is a parameter: ``/proc`` on a host, the host's ``/proc`` mounted at
``/host/proc`` in the DaemonSet (a procfs mount shows the host's PID namespace, so the
pod needs no ``hostPID``), a small fake tree in the tests. Nothing here reads
``/proc/self`` or the exporter's own PID, so a root that is not ``/proc`` works the same.

Per process, three files are read: ``stat`` (command name, state, parent, CPU times,
thread count, start time), ``statm`` (resident pages) and ``cgroup``. ``stat`` gives the
thread count (its ``num_threads`` field holds the same value as ``status``'s
``Threads:``), which saves reading the larger ``status`` file for each of thousands of
processes; ``status``'s ``VmRSS`` is only read when ``statm`` is missing.

Processes exit while they are scanned. A process whose files are gone (``ENOENT``,
``ESRCH``) is skipped and counted in :attr:`ProcessScanCounters.vanished`; one whose
files are malformed is skipped and its error kept in
:attr:`ProcessScanCounters.malformed`, so that one odd process never ends a scan.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from exporter.cgroup_path import MalformedFileError, ProcCgroups, parse_proc_cgroup
from exporter.cgroupfs import (
    PressureStats,
    StrPath,
    read_pressure_file,
    read_text_if_present,
)

__all__ = [
    "CPU_MODES",
    "DEFAULT_PROC_ROOT",
    "MemInfo",
    "NodeCpuTimes",
    "NodePressure",
    "ProcStat",
    "ProcessInfo",
    "ProcessScanCounters",
    "iter_processes",
    "parse_meminfo",
    "parse_pid_stat",
    "parse_proc_stat",
    "parse_statm_resident_pages",
    "parse_status_vmrss_bytes",
    "read_meminfo",
    "read_node_cpu",
    "read_node_pressure",
]

DEFAULT_PROC_ROOT: Final = "/proc"
"""Where the host mounts procfs; the DaemonSet mounts it at ``/host/proc``."""

CPU_MODES: Final = (
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "irq",
    "softirq",
    "steal",
    "guest",
    "guest_nice",
)
"""The columns of ``/proc/stat``'s ``cpu`` line, in order (older kernels have fewer)."""

# Bit of /proc/<pid>/stat's flags field set on kernel threads (PF_KTHREAD in sched.h).
_PF_KTHREAD: Final = 0x00200000
_KIB: Final = 1024
# Field numbers of /proc/<pid>/stat as proc(5) counts them (1-based; comm is 2).
_STAT_STATE: Final = 3
_STAT_PPID: Final = 4
_STAT_FLAGS: Final = 9
_STAT_UTIME: Final = 14
_STAT_STIME: Final = 15
_STAT_NUM_THREADS: Final = 20
_STAT_STARTTIME: Final = 22


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields kubepulse uses from ``/proc/<pid>/stat``; times in clock ticks."""

    pid: int
    comm: str
    state: str
    ppid: int
    flags: int
    utime_ticks: int
    stime_ticks: int
    num_threads: int
    start_time_ticks: int


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One process, as seen in one scan."""

    pid: int
    """Process ID, in the PID namespace of the procfs that was read."""
    ppid: int
    """Parent's process ID."""
    comm: str
    """The kernel's command name (at most 15 characters; may hold spaces and ``)``)."""
    state: str
    """One-letter state: ``R`` running, ``S`` sleeping, ``D`` disk sleep, ``Z`` zombie…"""
    threads: int
    """Number of threads."""
    rss_bytes: int
    """Resident memory in bytes (anonymous, file-backed and shared pages)."""
    cpu_seconds: float
    """User plus system CPU time used so far, in seconds."""
    start_time_seconds: float
    """When the process started, in seconds after boot; with the PID, tells a reused PID
    from the same process across scans."""
    is_kernel_thread: bool
    """True for kernel threads (``kthreadd`` and its children), which no pod owns."""
    cgroups: ProcCgroups
    """The process's cgroups, from ``/proc/<pid>/cgroup``."""

    @property
    def cgroup_path(self) -> str:
        """The cgroup path to identify the process by (:attr:`ProcCgroups.path`)."""
        return self.cgroups.path


@dataclass(slots=True)
class ProcessScanCounters:
    """What one :func:`iter_processes` scan skipped; pass a fresh one to each scan."""

    vanished: int = 0
    """Processes that exited between being listed and being read."""
    malformed: list[MalformedFileError] = field(default_factory=list)
    """Processes skipped because a file of theirs was malformed, with the errors."""


@dataclass(frozen=True, slots=True)
class NodeCpuTimes:
    """Node-wide CPU time by mode, from the ``cpu`` line of ``/proc/stat``."""

    seconds_by_mode: Mapping[str, float] = field(hash=False)
    """Mode (:data:`CPU_MODES`) to seconds, summed over all CPUs. ``guest`` and
    ``guest_nice`` are already included in ``user`` and ``nice``: leave them out of sums."""
    cpu_count: int
    """Number of ``cpuN`` lines: the CPUs online when the file was read."""


@dataclass(frozen=True, slots=True)
class MemInfo:
    """Node memory from ``/proc/meminfo``, in bytes."""

    total_bytes: int
    """``MemTotal``: usable RAM."""
    free_bytes: int | None
    """``MemFree``: RAM not used for anything."""
    available_bytes: int | None
    """``MemAvailable``: the kernel's estimate of what can be allocated without
    swapping; ``None`` on kernels before 3.14."""


@dataclass(frozen=True, slots=True)
class NodePressure:
    """Node-wide pressure stall information from ``/proc/pressure``."""

    cpu: PressureStats | None
    memory: PressureStats | None
    io: PressureStats | None


# ---------------------------------------------------------------- pure parsers


def _int(word: str, source: str, line: str, what: str) -> int:
    try:
        return int(word)
    except ValueError:
        raise MalformedFileError(source, 1, line, f"{what} is not an integer") from None


def parse_pid_stat(text: str, *, source: str = "/proc/<pid>/stat") -> ProcStat:
    """Parse ``/proc/<pid>/stat``.

    The command name is the second field, in parentheses, and may itself hold spaces and
    parentheses (``(my (odd) app)``); it is everything between the first ``(`` and the
    *last* ``)``, which the kernel guarantees because no later field has one.

    Raises:
        MalformedFileError: no parenthesised name, too few fields, or a non-integer.
    """
    line = text.rstrip("\n")
    pid_word, opening, rest = line.partition(" (")
    comm, closing, tail = rest.rpartition(") ")
    if not opening or not closing:
        raise MalformedFileError(source, 1, line, "expected 'pid (comm) state …'")
    fields = tail.split()
    # fields[0] is field 3 (state) of proc(5); index = field number - 3.
    if len(fields) < _STAT_STARTTIME - 2:
        raise MalformedFileError(source, 1, line, "too few fields")

    def number(field_number: int, what: str) -> int:
        return _int(fields[field_number - 3], source, line, what)

    return ProcStat(
        pid=_int(pid_word, source, line, "the pid"),
        comm=comm,
        state=fields[_STAT_STATE - 3],
        ppid=number(_STAT_PPID, "ppid"),
        flags=number(_STAT_FLAGS, "flags"),
        utime_ticks=number(_STAT_UTIME, "utime"),
        stime_ticks=number(_STAT_STIME, "stime"),
        num_threads=number(_STAT_NUM_THREADS, "num_threads"),
        start_time_ticks=number(_STAT_STARTTIME, "starttime"),
    )


def parse_statm_resident_pages(text: str, *, source: str = "/proc/<pid>/statm") -> int:
    """The resident set size in pages: the second field of ``/proc/<pid>/statm``.

    Raises:
        MalformedFileError: fewer than two fields, or a non-integer.
    """
    line = text.strip()
    words = line.split()
    if len(words) < 2:
        raise MalformedFileError(source, 1, line, "expected 'size resident shared …'")
    return _int(words[1], source, line, "resident")


def parse_status_vmrss_bytes(text: str, *, source: str = "/proc/<pid>/status") -> int:
    """``VmRSS`` from ``/proc/<pid>/status`` in bytes; 0 when absent (kernel threads).

    Raises:
        MalformedFileError: a ``VmRSS`` line that is not ``VmRSS: <n> kB``.
    """
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith("VmRSS:"):
            continue
        words = line.split()
        if len(words) != 3 or words[2] != "kB" or not words[1].isdigit():
            raise MalformedFileError(source, line_number, line, "expected 'VmRSS: <n> kB'")
        return int(words[1]) * _KIB
    return 0


def parse_proc_stat(text: str, *, clock_ticks: int, source: str = "/proc/stat") -> NodeCpuTimes:
    """Parse the CPU lines of ``/proc/stat``; times are in ``clock_ticks`` per second.

    Raises:
        MalformedFileError: no aggregate ``cpu`` line, or a non-integer time.
    """
    seconds_by_mode: dict[str, float] | None = None
    cpu_count = 0
    for line_number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words or not words[0].startswith("cpu"):
            continue
        if words[0] != "cpu":
            cpu_count += 1
            continue
        seconds_by_mode = {}
        for mode, word in zip(CPU_MODES, words[1:], strict=False):
            try:
                seconds_by_mode[mode] = int(word) / clock_ticks
            except ValueError:
                raise MalformedFileError(
                    source, line_number, line, f"the {mode} time is not an integer"
                ) from None
    if seconds_by_mode is None:
        raise MalformedFileError(source, None, None, "no aggregate 'cpu' line")
    return NodeCpuTimes(seconds_by_mode=MappingProxyType(seconds_by_mode), cpu_count=cpu_count)


def parse_meminfo(text: str, *, source: str = "/proc/meminfo") -> MemInfo:
    """Parse ``/proc/meminfo`` (``Key:   <n> kB`` lines) into :class:`MemInfo`.

    Raises:
        MalformedFileError: no ``MemTotal``, or a wanted line that is not ``<n> kB``.
    """
    wanted = {"MemTotal", "MemFree", "MemAvailable"}
    values: dict[str, int] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        key, separator, rest = line.partition(":")
        if not separator or key not in wanted:
            continue
        words = rest.split()
        if len(words) != 2 or words[1] != "kB" or not words[0].isdigit():
            raise MalformedFileError(source, line_number, line, "expected '<n> kB'")
        values[key] = int(words[0]) * _KIB
    if "MemTotal" not in values:
        raise MalformedFileError(source, None, None, "no MemTotal line")
    return MemInfo(
        total_bytes=values["MemTotal"],
        free_bytes=values.get("MemFree"),
        available_bytes=values.get("MemAvailable"),
    )


# ---------------------------------------------------------------- readers


def _sysconf(name: str) -> int:
    value = os.sysconf(name)
    if value <= 0:
        raise OSError(f"sysconf({name}) is {value}; pass the value explicitly")
    return value


def _read_process(pid_dir: str, clock_ticks: int, page_size: int) -> ProcessInfo | None:
    """One process, or ``None`` when it exited while being read."""
    stat_path = os.path.join(pid_dir, "stat")
    stat_text = read_text_if_present(stat_path)
    if stat_text is None:
        return None
    stat = parse_pid_stat(stat_text, source=stat_path)
    statm_path = os.path.join(pid_dir, "statm")
    statm_text = read_text_if_present(statm_path)
    if statm_text is not None:
        rss_bytes = parse_statm_resident_pages(statm_text, source=statm_path) * page_size
    else:
        status_path = os.path.join(pid_dir, "status")
        status_text = read_text_if_present(status_path)
        if status_text is None:
            return None
        rss_bytes = parse_status_vmrss_bytes(status_text, source=status_path)
    cgroup_path = os.path.join(pid_dir, "cgroup")
    cgroup_text = read_text_if_present(cgroup_path)
    if cgroup_text is None:
        return None
    return ProcessInfo(
        pid=stat.pid,
        ppid=stat.ppid,
        comm=stat.comm,
        state=stat.state,
        threads=stat.num_threads,
        rss_bytes=rss_bytes,
        cpu_seconds=(stat.utime_ticks + stat.stime_ticks) / clock_ticks,
        start_time_seconds=stat.start_time_ticks / clock_ticks,
        is_kernel_thread=bool(stat.flags & _PF_KTHREAD),
        cgroups=parse_proc_cgroup(cgroup_text, source=cgroup_path),
    )


def iter_processes(
    proc_root: StrPath = DEFAULT_PROC_ROOT,
    *,
    clock_ticks: int | None = None,
    page_size: int | None = None,
    counters: ProcessScanCounters | None = None,
) -> Iterator[ProcessInfo]:
    """Every process under ``proc_root``, in PID order.

    Args:
        proc_root: where procfs is mounted.
        clock_ticks: ticks per second of the times in ``stat``; default
            ``os.sysconf("SC_CLK_TCK")`` (the host's, since the kernel is shared).
        page_size: bytes per page for ``statm``; default ``os.sysconf("SC_PAGE_SIZE")``.
        counters: receives the number of vanished processes and the errors of malformed
            ones, which are skipped.

    Raises:
        OSError: ``proc_root`` cannot be listed, or a process's files cannot be read for
            a reason other than its exit (e.g. ``EACCES`` with ``hidepid``).
    """
    ticks = clock_ticks if clock_ticks is not None else _sysconf("SC_CLK_TCK")
    page = page_size if page_size is not None else _sysconf("SC_PAGE_SIZE")
    scan = counters if counters is not None else ProcessScanCounters()
    root = os.fspath(proc_root)
    pids = sorted(int(name) for name in os.listdir(root) if name.isdigit())
    for pid in pids:
        try:
            process = _read_process(os.path.join(root, str(pid)), ticks, page)
        except MalformedFileError as error:
            scan.malformed.append(error)
            continue
        if process is None:
            scan.vanished += 1
            continue
        yield process


def read_node_cpu(
    proc_root: StrPath = DEFAULT_PROC_ROOT, *, clock_ticks: int | None = None
) -> NodeCpuTimes:
    """Node-wide CPU seconds by mode from ``<proc_root>/stat``.

    Raises:
        MalformedFileError: see :func:`parse_proc_stat`.
        OSError: the file cannot be read.
    """
    ticks = clock_ticks if clock_ticks is not None else _sysconf("SC_CLK_TCK")
    path = os.path.join(proc_root, "stat")
    with open(path, encoding="utf-8") as file:
        return parse_proc_stat(file.read(), clock_ticks=ticks, source=path)


def read_meminfo(proc_root: StrPath = DEFAULT_PROC_ROOT) -> MemInfo:
    """Node memory from ``<proc_root>/meminfo``.

    Raises:
        MalformedFileError: see :func:`parse_meminfo`.
        OSError: the file cannot be read.
    """
    path = os.path.join(proc_root, "meminfo")
    with open(path, encoding="utf-8") as file:
        return parse_meminfo(file.read(), source=path)


def read_node_pressure(proc_root: StrPath = DEFAULT_PROC_ROOT) -> NodePressure | None:
    """Node-wide PSI from ``<proc_root>/pressure/{cpu,memory,io}``.

    Returns:
        The pressure of each resource whose file exists, or ``None`` when none does:
        kernels before 4.20, kernels without ``CONFIG_PSI``, and ``psi=0`` boots.

    Raises:
        MalformedFileError: see :func:`~exporter.cgroupfs.parse_pressure`.
    """
    directory = os.path.join(proc_root, "pressure")
    pressure = NodePressure(
        cpu=read_pressure_file(os.path.join(directory, "cpu")),
        memory=read_pressure_file(os.path.join(directory, "memory")),
        io=read_pressure_file(os.path.join(directory, "io")),
    )
    if pressure.cpu is None and pressure.memory is None and pressure.io is None:
        return None
    return pressure

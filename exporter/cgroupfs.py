"""Read a cgroup's usage, limits, OOM kills and pressure from cgroupfs, v1 or v2.

The root of the cgroup filesystem is a parameter (``/sys/fs/cgroup`` on a host,
``/host/sys/fs/cgroup`` in the DaemonSet, a small fake tree in the tests). Each kernel
file is parsed by a pure function that takes its text (:func:`parse_cpu_stat`,
:func:`parse_memory_stat`, :func:`parse_cpu_max`, :func:`parse_pressure`…); the readers
only open files and hand the text over.

Where each field of :class:`CgroupStats` comes from:

===================  ======================================  ====================================
field                cgroup v2 (``<root>/<path>/``)          cgroup v1 (``<root>/<ctrl>/<path>/``)
===================  ======================================  ====================================
cpu_usage_seconds    ``cpu.stat`` ``usage_usec``             ``cpuacct/cpuacct.usage`` (ns)
nr_periods           ``cpu.stat`` ``nr_periods``             ``cpu/cpu.stat`` ``nr_periods``
nr_throttled         ``cpu.stat`` ``nr_throttled``           ``cpu/cpu.stat`` ``nr_throttled``
throttled_seconds    ``cpu.stat`` ``throttled_usec``         ``cpu/cpu.stat`` ``throttled_time``
memory_usage_bytes   ``memory.current``                      ``memory/memory.usage_in_bytes``
working_set_bytes    usage - ``memory.stat inactive_file``   usage - ``total_inactive_file``
rss_bytes            ``memory.stat`` ``anon``                ``memory.stat`` ``total_rss``
cache_bytes          ``memory.stat`` ``file``                ``memory.stat`` ``total_cache``
memory_limit_bytes   ``memory.max``                          ``memory/memory.limit_in_bytes``
cpu_limit_cores      ``cpu.max``                             ``cpu.cfs_quota_us / cfs_period_us``
cpu_weight           ``cpu.weight``                          —
cpu_shares           —                                       ``cpu/cpu.shares``
oom_kills            ``memory.events`` ``oom_kill``          ``memory.oom_control`` ``oom_kill``
pids_current         ``pids.current``                        ``pids/pids.current``
*_pressure           ``cpu|memory|io.pressure``              hybrid only: under ``unified/``
===================  ======================================  ====================================

The working set is usage minus inactive file pages, clamped at zero, as cAdvisor and
the kubelet compute it (and so what the kubelet evicts by). When ``memory.stat`` lacks
``inactive_file`` the usage is the working set, again as cAdvisor does.

**No limit.** cgroup v2 writes ``max``. cgroup v1 writes the page counter's maximum in
bytes: ``LONG_MAX`` rounded down to a whole page, 9223372036854771712 with 4 KiB pages
(9223372036854710272 with 64 KiB pages). Any memory limit of 2**62 bytes (4 EiB) or more
is read as no limit (``None``): that covers the sentinel for every page size and is far
above the memory of any machine. A CPU quota of ``max`` (v2) or a negative
``cfs_quota_us`` (v1 writes ``-1``) is no limit.

**Vanishing cgroups.** A container can exit while its files are read: a file that is
gone (``ENOENT``), belongs to a dead cgroup (``ENODEV``) or process (``ESRCH``), or is not
supported by this kernel (``EOPNOTSUPP``, e.g. PSI files with ``psi=0``) reads as absent,
and its fields are ``None``. When the cgroup directory itself is gone by the end of the
read, :func:`read_cgroup_stats` returns ``None`` rather than a half-read sample.
Malformed content raises :class:`~exporter.cgroup_path.MalformedFileError`.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from exporter.cgroup_path import MalformedFileError
from kubepulse.errors import KubepulseError, KubepulseValueError

__all__ = [
    "DEFAULT_CGROUP_ROOT",
    "V1_UNLIMITED_MEMORY_THRESHOLD",
    "CgroupMode",
    "CgroupRootError",
    "CgroupStats",
    "PressureStats",
    "StrPath",
    "detect_cgroup_mode",
    "parse_cfs_quota",
    "parse_cpu_max",
    "parse_cpu_stat",
    "parse_flat_keyed",
    "parse_memory_limit",
    "parse_memory_stat",
    "parse_pressure",
    "parse_single_int",
    "read_cgroup_stats",
    "read_pressure_file",
    "read_text_if_present",
]

StrPath: TypeAlias = str | os.PathLike[str]
"""A filesystem path: a string or a :class:`os.PathLike` such as :class:`pathlib.Path`."""

CgroupMode: TypeAlias = Literal["v2", "v1", "hybrid"]
"""Which cgroup hierarchies a host mounts: unified only, v1 controllers only, or both."""

DEFAULT_CGROUP_ROOT: Final = "/sys/fs/cgroup"
"""Where the host mounts cgroupfs; the DaemonSet mounts it at ``/host/sys/fs/cgroup``."""

V1_UNLIMITED_MEMORY_THRESHOLD: Final = 2**62
"""Memory limits at or above this many bytes mean "no limit" (see the module docstring)."""

# errnos that mean "this file is not there (any more)": a vanished cgroup or process, or
# a file this kernel does not support.
_ABSENT_ERRNOS: Final = frozenset({errno.ENOENT, errno.ESRCH, errno.ENODEV, errno.EOPNOTSUPP})
_USEC_PER_SECOND: Final = 1_000_000
_NSEC_PER_SECOND: Final = 1_000_000_000
_UNLIMITED: Final = "max"
# v1 controllers are mounted one per directory or co-mounted ("cpu,cpuacct", usually with
# "cpu" and "cpuacct" symlinks to it); these are the names to look for, in order.
_V1_CPUACCT_DIRS: Final = ("cpuacct", "cpu,cpuacct", "cpuacct,cpu")
_V1_CPU_DIRS: Final = ("cpu", "cpu,cpuacct", "cpuacct,cpu")
_V1_MEMORY_DIRS: Final = ("memory",)
_V1_PIDS_DIRS: Final = ("pids",)
_HYBRID_UNIFIED_DIR: Final = "unified"
_PRESSURE_LINE_KINDS: Final = frozenset({"some", "full"})


class CgroupRootError(KubepulseError):
    """No cgroup filesystem was found at the configured root."""


@dataclass(frozen=True, slots=True)
class PressureStats:
    """Pressure stall information (PSI) of one resource: cgroup v2 or ``/proc/pressure``.

    Totals are cumulative seconds, like a Prometheus counter: the time during which at
    least one task (``some``) or all non-idle tasks (``full``) were stalled on the resource.
    """

    some_total_seconds: float
    """Time at least one task was stalled waiting for the resource."""
    full_total_seconds: float | None
    """Time all non-idle tasks were stalled at once; ``None`` where the kernel has no
    ``full`` line (CPU pressure before Linux 5.13)."""


@dataclass(frozen=True, slots=True)
class CgroupStats:
    """What one cgroup uses and may use. A field is ``None`` when its file is absent."""

    cpu_usage_seconds: float | None = None
    """CPU time used by all tasks of the cgroup and its descendants, in seconds."""
    nr_periods: int | None = None
    """CFS enforcement periods that elapsed while the cgroup had runnable tasks."""
    nr_throttled: int | None = None
    """Periods in which the cgroup used up its quota and was throttled."""
    throttled_seconds: float | None = None
    """Total time the cgroup's tasks were throttled, in seconds."""
    memory_usage_bytes: int | None = None
    """Memory charged to the cgroup, page cache included, in bytes."""
    working_set_bytes: int | None = None
    """Usage minus inactive file pages, clamped at zero: what the kubelet evicts by."""
    rss_bytes: int | None = None
    """Anonymous memory (heap, stacks, anonymous mappings), in bytes."""
    cache_bytes: int | None = None
    """Page cache (file-backed memory), in bytes."""
    memory_limit_bytes: int | None = None
    """The hard memory limit in bytes; ``None`` when unlimited or the file is absent."""
    cpu_limit_cores: float | None = None
    """The CFS quota as cores (quota / period); ``None`` when unlimited or absent."""
    cpu_weight: int | None = None
    """cgroup v2 ``cpu.weight`` (1-10000, default 100); ``None`` on v1."""
    cpu_shares: int | None = None
    """cgroup v1 ``cpu.shares`` (2-262144, 1024 per requested core); ``None`` on v2."""
    oom_kills: int | None = None
    """Processes the OOM killer killed in the cgroup; ``None`` on v1 kernels before 4.13."""
    pids_current: int | None = None
    """Tasks (processes and threads) in the cgroup and its descendants."""
    cpu_pressure: PressureStats | None = None
    """CPU pressure; ``None`` on cgroup v1, kernels before 4.20, or with ``psi=0``."""
    memory_pressure: PressureStats | None = None
    """Memory pressure; ``None`` where PSI is unavailable (see ``cpu_pressure``)."""
    io_pressure: PressureStats | None = None
    """I/O pressure; ``None`` where PSI is unavailable (see ``cpu_pressure``)."""


# ---------------------------------------------------------------- pure parsers


def _lines(text: str) -> list[tuple[int, str]]:
    return [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def _int(word: str, source: str, line_number: int | None, line: str | None, what: str) -> int:
    try:
        return int(word)
    except ValueError:
        raise MalformedFileError(source, line_number, line, f"{what} is not an integer") from None


def parse_flat_keyed(text: str, *, source: str = "<text>") -> dict[str, int]:
    """Parse a flat keyed file: one ``key value`` pair of an integer per line.

    The format of ``cpu.stat``, ``memory.stat``, ``memory.events`` and v1's
    ``memory.oom_control``. Keys the caller does not know are kept, so newer kernels'
    additions do no harm.

    Raises:
        MalformedFileError: a line that is not two words, or a value that is no integer.
    """
    values: dict[str, int] = {}
    for line_number, line in _lines(text):
        words = line.split()
        if len(words) != 2:
            raise MalformedFileError(source, line_number, line, "expected 'key value'")
        key, value = words
        values[key] = _int(value, source, line_number, line, f"the value of {key!r}")
    return values


def parse_cpu_stat(text: str, *, source: str = "cpu.stat") -> dict[str, int]:
    """Parse ``cpu.stat``: v2 ``usage_usec``, ``throttled_usec``…; v1 ``throttled_time`` (ns)."""
    return parse_flat_keyed(text, source=source)


def parse_memory_stat(text: str, *, source: str = "memory.stat") -> dict[str, int]:
    """Parse ``memory.stat``: v2 ``anon``, ``file``, ``inactive_file``…; v1 ``total_*``."""
    return parse_flat_keyed(text, source=source)


def parse_single_int(text: str, *, source: str = "<text>") -> int:
    """Parse a file holding one integer (``memory.current``, ``pids.current``…).

    Raises:
        MalformedFileError: anything but one integer.
    """
    lines = _lines(text)
    if len(lines) != 1:
        raise MalformedFileError(source, None, None, "expected exactly one line")
    line_number, line = lines[0]
    return _int(line.strip(), source, line_number, line, "the value")


def parse_memory_limit(text: str, *, source: str = "memory.max") -> int | None:
    """Parse ``memory.max`` (v2) or ``memory.limit_in_bytes`` (v1) into bytes.

    Returns:
        The limit, or ``None`` for no limit: ``max``, or any value of at least
        :data:`V1_UNLIMITED_MEMORY_THRESHOLD` (v1's page-rounded ``LONG_MAX`` sentinel).

    Raises:
        MalformedFileError: neither ``max`` nor an integer.
    """
    if text.strip() == _UNLIMITED:
        return None
    limit = parse_single_int(text, source=source)
    return None if limit >= V1_UNLIMITED_MEMORY_THRESHOLD else limit


def parse_cpu_max(text: str, *, source: str = "cpu.max") -> float | None:
    """Parse cgroup v2 ``cpu.max`` (``$MAX $PERIOD``) into cores.

    ``50000 100000`` is 0.5 cores; ``max 100000`` is no limit (``None``).

    Raises:
        MalformedFileError: not two words, a quota that is neither ``max`` nor an
            integer, or a period that is not a positive integer.
    """
    lines = _lines(text)
    if len(lines) != 1 or len(lines[0][1].split()) != 2:
        raise MalformedFileError(source, None, None, "expected one line '$MAX $PERIOD'")
    line_number, line = lines[0]
    quota_word, period_word = line.split()
    period = _int(period_word, source, line_number, line, "the period")
    if period <= 0:
        raise MalformedFileError(source, line_number, line, "the period is not positive")
    if quota_word == _UNLIMITED:
        return None
    quota = _int(quota_word, source, line_number, line, "the quota")
    return quota / period


def parse_cfs_quota(
    quota_text: str,
    period_text: str,
    *,
    quota_source: str = "cpu.cfs_quota_us",
    period_source: str = "cpu.cfs_period_us",
) -> float | None:
    """Turn cgroup v1 ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` into cores.

    Returns:
        quota / period, or ``None`` when the quota is negative (v1 writes ``-1`` for no
        limit).

    Raises:
        MalformedFileError: a value that is no integer, or a period that is not positive.
    """
    quota = parse_single_int(quota_text, source=quota_source)
    if quota < 0:
        return None
    period = parse_single_int(period_text, source=period_source)
    if period <= 0:
        raise MalformedFileError(period_source, 1, period_text.strip(), "not positive")
    return quota / period


def parse_pressure(text: str, *, source: str = "<pressure>") -> PressureStats:
    """Parse a PSI file (``cpu.pressure``, ``/proc/pressure/memory``…).

    The format is one line per kind::

        some avg10=0.12 avg60=0.05 avg300=0.01 total=123456
        full avg10=0.00 avg60=0.00 avg300=0.00 total=7890

    where ``total`` is in microseconds. ``full`` is missing from CPU pressure before
    Linux 5.13 (and reads as zero at the system level since).

    Raises:
        MalformedFileError: a line that is not ``some``/``full``, a field that is not
            ``key=value``, a missing or non-integer ``total``, or no ``some`` line.
    """
    totals: dict[str, int] = {}
    for line_number, line in _lines(text):
        kind, *fields = line.split()
        if kind not in _PRESSURE_LINE_KINDS:
            raise MalformedFileError(source, line_number, line, "expected 'some' or 'full'")
        values: dict[str, str] = {}
        for word in fields:
            key, separator, value = word.partition("=")
            if not separator:
                raise MalformedFileError(source, line_number, line, f"{word!r} is not key=value")
            values[key] = value
        if "total" not in values:
            raise MalformedFileError(source, line_number, line, "no total=")
        totals[kind] = _int(values["total"], source, line_number, line, "total")
    if "some" not in totals:
        raise MalformedFileError(source, None, None, "no 'some' line")
    full = totals.get("full")
    return PressureStats(
        some_total_seconds=totals["some"] / _USEC_PER_SECOND,
        full_total_seconds=None if full is None else full / _USEC_PER_SECOND,
    )


# ---------------------------------------------------------------- thin I/O


def read_text_if_present(path: StrPath) -> str | None:
    """The text of a kernel file, or ``None`` when it is absent or vanished.

    ``None`` for the errnos of a vanished cgroup or process and of an unsupported file
    (see the module docstring). Other errors, such as ``EACCES`` from a missing mount
    permission, are raised: they need fixing, not skipping.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError as error:
        if error.errno in _ABSENT_ERRNOS:
            return None
        raise


def read_pressure_file(path: StrPath) -> PressureStats | None:
    """One PSI file parsed, or ``None`` when the kernel does not provide it."""
    text = read_text_if_present(path)
    return None if text is None else parse_pressure(text, source=os.fspath(path))


def _join(root: StrPath, relative_path: str) -> str:
    """``root`` joined with a cgroup path, refusing paths that climb out of the root."""
    segments = [segment for segment in relative_path.split("/") if segment not in ("", ".")]
    if ".." in segments:
        raise KubepulseValueError(
            f"cgroup path {relative_path!r} climbs out of its root with '..': it is "
            "relative to the reader's cgroup namespace. Find the container's cgroup by "
            "walking the cgroup root (or use the path a process shows on the host), not "
            "by the path /proc shows inside a cgroup namespace."
        )
    return os.path.join(os.fspath(root), *segments)


def detect_cgroup_mode(root: StrPath = DEFAULT_CGROUP_ROOT) -> CgroupMode:
    """Which cgroup hierarchies are mounted at ``root``.

    * ``v2``: ``root`` is the unified hierarchy (it has ``cgroup.controllers``);
    * ``hybrid``: v1 controllers, plus the unified hierarchy at ``root/unified``;
    * ``v1``: v1 controller directories only (``memory``, ``cpu,cpuacct``…).

    Raises:
        CgroupRootError: nothing that looks like cgroupfs at ``root``.
    """
    if os.path.isfile(os.path.join(root, "cgroup.controllers")):
        return "v2"
    controller_dirs = {*_V1_CPUACCT_DIRS, *_V1_CPU_DIRS, *_V1_MEMORY_DIRS}
    has_v1 = any(os.path.isdir(os.path.join(root, name)) for name in controller_dirs)
    if has_v1 and os.path.isdir(os.path.join(root, _HYBRID_UNIFIED_DIR)):
        return "hybrid"
    if has_v1:
        return "v1"
    raise CgroupRootError(
        f"no cgroup filesystem at {os.fspath(root)!r}: neither cgroup.controllers (cgroup "
        "v2) nor v1 controller directories (memory, cpu,cpuacct) are there. Mount the "
        "host's /sys/fs/cgroup there (hostPath, read-only) or set the cgroup root to "
        "where it is mounted."
    )


def _v1_dir(root: StrPath, names: tuple[str, ...], relative_path: str) -> str | None:
    """The cgroup's directory in the first mounted v1 controller among ``names``."""
    for name in names:
        controller_root = os.path.join(root, name)
        if os.path.isdir(controller_root):
            return _join(controller_root, relative_path)
    return None


def _read_int(directory: str | None, name: str) -> int | None:
    if directory is None:
        return None
    path = os.path.join(directory, name)
    text = read_text_if_present(path)
    return None if text is None else parse_single_int(text, source=path)


def _read_keyed(directory: str | None, name: str) -> dict[str, int] | None:
    if directory is None:
        return None
    path = os.path.join(directory, name)
    text = read_text_if_present(path)
    return None if text is None else parse_flat_keyed(text, source=path)


def _read_memory_limit(directory: str | None, name: str) -> int | None:
    if directory is None:
        return None
    path = os.path.join(directory, name)
    text = read_text_if_present(path)
    return None if text is None else parse_memory_limit(text, source=path)


def _seconds(value: int | None, per_second: int) -> float | None:
    return None if value is None else value / per_second


def _working_set(usage: int | None, memory_stat: dict[str, int] | None, key: str) -> int | None:
    if usage is None or memory_stat is None:
        return None
    inactive_file = memory_stat.get(key)
    if inactive_file is None:
        return usage
    return max(usage - inactive_file, 0)


def _get(values: dict[str, int] | None, key: str) -> int | None:
    return None if values is None else values.get(key)


def _read_pressures(
    directory: str | None,
) -> tuple[PressureStats | None, PressureStats | None, PressureStats | None]:
    if directory is None:
        return None, None, None
    return (
        read_pressure_file(os.path.join(directory, "cpu.pressure")),
        read_pressure_file(os.path.join(directory, "memory.pressure")),
        read_pressure_file(os.path.join(directory, "io.pressure")),
    )


def _read_v2(directory: str) -> CgroupStats:
    cpu_stat = _read_keyed(directory, "cpu.stat")
    memory_stat = _read_keyed(directory, "memory.stat")
    memory_events = _read_keyed(directory, "memory.events")
    usage = _read_int(directory, "memory.current")
    cpu_max_path = os.path.join(directory, "cpu.max")
    cpu_max_text = read_text_if_present(cpu_max_path)
    cpu_pressure, memory_pressure, io_pressure = _read_pressures(directory)
    return CgroupStats(
        cpu_usage_seconds=_seconds(_get(cpu_stat, "usage_usec"), _USEC_PER_SECOND),
        nr_periods=_get(cpu_stat, "nr_periods"),
        nr_throttled=_get(cpu_stat, "nr_throttled"),
        throttled_seconds=_seconds(_get(cpu_stat, "throttled_usec"), _USEC_PER_SECOND),
        memory_usage_bytes=usage,
        working_set_bytes=_working_set(usage, memory_stat, "inactive_file"),
        rss_bytes=_get(memory_stat, "anon"),
        cache_bytes=_get(memory_stat, "file"),
        memory_limit_bytes=_read_memory_limit(directory, "memory.max"),
        cpu_limit_cores=(
            None if cpu_max_text is None else parse_cpu_max(cpu_max_text, source=cpu_max_path)
        ),
        cpu_weight=_read_int(directory, "cpu.weight"),
        oom_kills=_get(memory_events, "oom_kill"),
        pids_current=_read_int(directory, "pids.current"),
        cpu_pressure=cpu_pressure,
        memory_pressure=memory_pressure,
        io_pressure=io_pressure,
    )


def _read_cfs_limit(cpu_dir: str | None) -> float | None:
    if cpu_dir is None:
        return None
    quota_path = os.path.join(cpu_dir, "cpu.cfs_quota_us")
    period_path = os.path.join(cpu_dir, "cpu.cfs_period_us")
    quota_text = read_text_if_present(quota_path)
    period_text = read_text_if_present(period_path)
    if quota_text is None or period_text is None:
        return None
    return parse_cfs_quota(
        quota_text, period_text, quota_source=quota_path, period_source=period_path
    )


def _read_v1(
    cpuacct_dir: str | None,
    cpu_dir: str | None,
    memory_dir: str | None,
    pids_dir: str | None,
    unified_dir: str | None,
) -> CgroupStats:
    cpu_stat = _read_keyed(cpu_dir, "cpu.stat")
    memory_stat = _read_keyed(memory_dir, "memory.stat")
    oom_control = _read_keyed(memory_dir, "memory.oom_control")
    usage = _read_int(memory_dir, "memory.usage_in_bytes")
    cpu_pressure, memory_pressure, io_pressure = _read_pressures(unified_dir)
    rss = _get(memory_stat, "total_rss")
    cache = _get(memory_stat, "total_cache")
    return CgroupStats(
        cpu_usage_seconds=_seconds(_read_int(cpuacct_dir, "cpuacct.usage"), _NSEC_PER_SECOND),
        nr_periods=_get(cpu_stat, "nr_periods"),
        nr_throttled=_get(cpu_stat, "nr_throttled"),
        throttled_seconds=_seconds(_get(cpu_stat, "throttled_time"), _NSEC_PER_SECOND),
        memory_usage_bytes=usage,
        working_set_bytes=_working_set(usage, memory_stat, "total_inactive_file"),
        # The total_ fields include descendants (what a pod-level cgroup needs); a leaf
        # without hierarchy accounting only has the plain ones.
        rss_bytes=rss if rss is not None else _get(memory_stat, "rss"),
        cache_bytes=cache if cache is not None else _get(memory_stat, "cache"),
        memory_limit_bytes=_read_memory_limit(memory_dir, "memory.limit_in_bytes"),
        cpu_limit_cores=_read_cfs_limit(cpu_dir),
        cpu_shares=_read_int(cpu_dir, "cpu.shares"),
        oom_kills=_get(oom_control, "oom_kill"),
        pids_current=_read_int(pids_dir, "pids.current"),
        cpu_pressure=cpu_pressure,
        memory_pressure=memory_pressure,
        io_pressure=io_pressure,
    )


def read_cgroup_stats(root: StrPath, relative_path: str, mode: CgroupMode) -> CgroupStats | None:
    """Read one cgroup's stats.

    Args:
        root: where cgroupfs is mounted (``/sys/fs/cgroup``, ``/host/sys/fs/cgroup``).
        relative_path: the cgroup's path below the root (below each controller on v1),
            e.g. ``/kubepods.slice/…/cri-containerd-<id>.scope``.
        mode: what :func:`detect_cgroup_mode` said about ``root``. On ``hybrid`` hosts
            the stats come from the v1 controllers and PSI from ``root/unified``.

    Returns:
        The stats, fields ``None`` where files are absent; ``None`` when the cgroup does
        not exist or vanished while it was read (its container exited).

    Raises:
        MalformedFileError: a file's content is not what the kernel writes.
        KubepulseValueError: ``relative_path`` contains ``..``.
    """
    # Joined (and so checked for "..") before anything is read, whatever the mode.
    v2_directory = _join(root, relative_path)
    if mode == "v2":
        if not os.path.isdir(v2_directory):
            return None
        stats = _read_v2(v2_directory)
        return stats if os.path.isdir(v2_directory) else None
    cpuacct_dir = _v1_dir(root, _V1_CPUACCT_DIRS, relative_path)
    cpu_dir = _v1_dir(root, _V1_CPU_DIRS, relative_path)
    memory_dir = _v1_dir(root, _V1_MEMORY_DIRS, relative_path)
    pids_dir = _v1_dir(root, _V1_PIDS_DIRS, relative_path)
    unified_dir = (
        _join(os.path.join(root, _HYBRID_UNIFIED_DIR), relative_path) if mode == "hybrid" else None
    )

    def exists() -> bool:
        return any(
            controller_dir is not None and os.path.isdir(controller_dir)
            for controller_dir in (cpuacct_dir, cpu_dir, memory_dir)
        )

    if not exists():
        return None
    stats = _read_v1(cpuacct_dir, cpu_dir, memory_dir, pids_dir, unified_dir)
    return stats if exists() else None

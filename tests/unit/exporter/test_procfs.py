"""procfs readers against the committed fake tree under tests/fixtures/proc."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from exporter.cgroup_path import (
    MalformedFileError,
    RuntimeHelper,
    classify_runtime_helper,
    identify_cgroup,
    parse_proc_cgroup,
)
from exporter.cgroupfs import PressureStats
from exporter.procfs import (
    MemInfo,
    NodePressure,
    ProcessInfo,
    ProcessScanCounters,
    ProcStat,
    iter_processes,
    parse_meminfo,
    parse_pid_stat,
    parse_proc_stat,
    parse_statm_resident_pages,
    parse_status_vmrss_bytes,
    read_meminfo,
    read_node_cpu,
    read_node_pressure,
)

PROC = Path(__file__).resolve().parents[2] / "fixtures" / "proc"
TICKS = 100
PAGE = 4096

STOREFRONT = "b46bd9c9-f018-48ec-97b9-722e1f463eae"
APP = "f09d4f5e2efb518df02a009eea6623150a1876770c23b86035e04375a7df7242"
METRICS = "6f60dc986b9489a7a2cb298a3a6610eaa0fbb07d469e6332d12e35ac24002ea5"
LEDGER_POD = "ae82e945-e595-46e3-aedf-bb9488cd9656"
LEDGER = "b42b8e9386c52cb4caa8865f53c3ea7d7b441940ebc1270905a7e61bc3fea3f4"
STOREFRONT_SLICE = (
    "/kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-podb46bd9c9_f018_48ec_97b9_722e1f463eae.slice"
)


def _process(
    pid: int,
    ppid: int,
    comm: str,
    threads: int,
    rss_bytes: int,
    cpu_seconds: float,
    start_time_seconds: float,
    cgroup: str,
    *,
    kernel: bool = False,
) -> ProcessInfo:
    return ProcessInfo(
        pid=pid,
        ppid=ppid,
        comm=comm,
        state="S",
        threads=threads,
        rss_bytes=rss_bytes,
        cpu_seconds=cpu_seconds,
        start_time_seconds=start_time_seconds,
        is_kernel_thread=kernel,
        cgroups=parse_proc_cgroup(f"0::{cgroup}\n"),
    )


EXPECTED_PROCESSES = [
    _process(1, 0, "systemd", 1, 3187 * PAGE, 43.97, 0.02, "/init.scope"),
    _process(2, 0, "kthreadd", 1, 0, 0.31, 0.02, "/", kernel=True),
    _process(
        812, 1, "containerd", 23, 17920 * PAGE, 1122.34, 5.12, "/system.slice/containerd.service"
    ),
    _process(
        1432, 1, "containerd-shim", 12, 3328 * PAGE, 7.27, 23.01, "/system.slice/containerd.service"
    ),
    _process(
        2051,
        1432,
        "nginx",
        5,
        24576 * PAGE,
        5111.1,
        23.98,
        f"{STOREFRONT_SLICE}/cri-containerd-{APP}.scope",
    ),
    _process(
        2077,
        1432,
        "x) S 1 1 (y z",
        2,
        1536 * PAGE,
        15.0,
        24.1,
        f"{STOREFRONT_SLICE}/cri-containerd-{METRICS}.scope",
    ),
    # No statm: VmRSS from status (40960 kB).
    _process(
        3120,
        1432,
        "python3",
        9,
        40960 * 1024,
        57.0,
        30.01,
        f"/kubepods.slice/kubepods-podae82e945_e595_46e3_aedf_bb9488cd9656.slice/"
        f"cri-containerd-{LEDGER}.scope",
    ),
]


def test_iter_processes_reads_every_process_and_skips_the_one_that_exited() -> None:
    counters = ProcessScanCounters()
    processes = list(iter_processes(PROC, clock_ticks=TICKS, page_size=PAGE, counters=counters))
    assert processes == EXPECTED_PROCESSES
    assert counters.vanished == 1, "pid 4242 exited between listing and reading"
    assert counters.malformed == []


def test_iter_processes_takes_a_string_root_and_default_system_values() -> None:
    processes = list(iter_processes(str(PROC)))
    ticks = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    assert [process.pid for process in processes] == [1, 2, 812, 1432, 2051, 2077, 3120]
    assert processes[0].cpu_seconds == (1523 + 2874) / ticks
    assert processes[0].rss_bytes == 3187 * page


@pytest.mark.parametrize(
    ("pid", "identity", "helper"),
    [
        pytest.param(1, None, None, id="init"),
        pytest.param(2, None, None, id="kernel-thread"),
        pytest.param(812, None, RuntimeHelper("containerd", "daemon"), id="containerd"),
        pytest.param(1432, None, RuntimeHelper("containerd", "shim"), id="shim"),
        pytest.param(2051, (STOREFRONT, APP), None, id="app-container"),
        pytest.param(2077, (STOREFRONT, METRICS), None, id="odd-comm-in-sidecar"),
        pytest.param(3120, (LEDGER_POD, LEDGER), None, id="guaranteed-pod"),
    ],
)
def test_processes_map_to_pods_and_runtime_overhead(
    pid: int, identity: tuple[str, str] | None, helper: RuntimeHelper | None
) -> None:
    process = next(
        process
        for process in iter_processes(PROC, clock_ticks=TICKS, page_size=PAGE)
        if process.pid == pid
    )
    found = identify_cgroup(process.cgroup_path)
    assert (None if found is None else (found.pod_uid, found.container_id)) == identity
    assert classify_runtime_helper(process.cgroup_path, process.comm) == helper


def _proc_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(PROC, tmp_path / "proc"))


@pytest.mark.parametrize(
    ("file_name", "content"),
    [
        pytest.param("stat", "2051 nginx S 1\n", id="stat-without-parentheses"),
        pytest.param("statm", "186408\n", id="statm-one-field"),
        pytest.param("cgroup", "garbage\n", id="cgroup-no-colons"),
    ],
)
def test_a_malformed_process_is_skipped_and_its_error_kept(
    tmp_path: Path, file_name: str, content: str
) -> None:
    root = _proc_copy(tmp_path)
    (root / "2051" / file_name).write_text(content)
    counters = ProcessScanCounters()
    pids = [
        process.pid
        for process in iter_processes(root, clock_ticks=TICKS, page_size=PAGE, counters=counters)
    ]
    assert pids == [1, 2, 812, 1432, 2077, 3120]
    assert len(counters.malformed) == 1
    assert counters.malformed[0].source == str(root / "2051" / file_name)
    assert counters.vanished == 1


@pytest.mark.parametrize("file_name", ["stat", "cgroup", "statm"])
def test_a_process_whose_files_vanish_is_counted(tmp_path: Path, file_name: str) -> None:
    root = _proc_copy(tmp_path)
    (root / "2051" / file_name).unlink()
    if file_name == "statm":
        (root / "2051" / "status").unlink()  # gone altogether, not a statm-less procfs
    counters = ProcessScanCounters()
    pids = [
        p.pid for p in iter_processes(root, clock_ticks=TICKS, page_size=PAGE, counters=counters)
    ]
    assert 2051 not in pids
    assert counters.vanished == 2


def test_a_missing_proc_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(iter_processes(tmp_path / "nowhere", clock_ticks=TICKS, page_size=PAGE))


STAT_TAIL = (
    "S 1432 1432 1432 0 -1 4194560 4123 0 12 0 1200 300 0 0 20 0 2 0 2410 763527168 1536 "
    "18446744073709551615 94315521187840 94315521840109 140730928411312 0 0 0 0 4096 17131 "
    "0 0 0 17 2 0 0 0 0 0 94315521900000 94315521950000 94315543478272 140730928416423 "
    "140730928416490 140730928416490 140730928418791 0\n"
)


@pytest.mark.parametrize(
    "comm",
    [
        pytest.param("nginx", id="plain"),
        pytest.param("x) S 1 1 (y z", id="fake-fields-inside"),
        pytest.param("a)", id="ends-with-parenthesis"),
        pytest.param("(sd-pam)", id="parenthesised"),
        pytest.param("kworker/0:1H", id="kernel-worker"),
        pytest.param("with  spaces ", id="spaces"),
        pytest.param("", id="empty"),
        pytest.param("line\nbreak", id="newline"),
    ],
)
def test_parse_pid_stat_finds_the_command_name(comm: str) -> None:
    assert parse_pid_stat(f"2077 ({comm}) {STAT_TAIL}") == ProcStat(
        pid=2077,
        comm=comm,
        state="S",
        ppid=1432,
        flags=4194560,
        utime_ticks=1200,
        stime_ticks=300,
        num_threads=2,
        start_time_ticks=2410,
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("garbage\n", "expected 'pid (comm) state", id="no-comm"),
        pytest.param("1 (init) S 0 1\n", "too few fields", id="short"),
        pytest.param(f"x (init) {STAT_TAIL}", "the pid is not an integer", id="pid"),
        pytest.param("1 (init) " + STAT_TAIL.replace(" 1200 ", " lots ", 1), "utime", id="utime"),
    ],
)
def test_parse_pid_stat_rejects(text: str, reason: str) -> None:
    with pytest.raises(MalformedFileError) as caught:
        parse_pid_stat(text, source="/host/proc/1/stat")
    assert reason in caught.value.reason
    assert caught.value.source == "/host/proc/1/stat"


@pytest.mark.parametrize(
    ("text", "pages"), [("186408 3187 796 53 0 62136 0\n", 3187), ("0 0 0 0 0 0 0\n", 0)]
)
def test_parse_statm(text: str, pages: int) -> None:
    assert parse_statm_resident_pages(text) == pages


@pytest.mark.parametrize("text", ["", "1\n", "1 x 3\n"])
def test_parse_statm_rejects(text: str) -> None:
    with pytest.raises(MalformedFileError):
        parse_statm_resident_pages(text)


@pytest.mark.parametrize(
    ("text", "rss_bytes"),
    [
        pytest.param("Name:\tnginx\nVmRSS:\t   98304 kB\nThreads:\t5\n", 98304 * 1024, id="rss"),
        pytest.param("Name:\tkthreadd\nThreads:\t1\n", 0, id="kernel-thread"),
    ],
)
def test_parse_status_vmrss(text: str, rss_bytes: int) -> None:
    assert parse_status_vmrss_bytes(text) == rss_bytes


@pytest.mark.parametrize("line", ["VmRSS:\t98304\n", "VmRSS:\tx kB\n", "VmRSS:\t1 MB\n"])
def test_parse_status_vmrss_rejects(line: str) -> None:
    with pytest.raises(MalformedFileError, match="line 2"):
        parse_status_vmrss_bytes("Name:\tx\n" + line)


def test_read_node_cpu() -> None:
    cpu = read_node_cpu(PROC, clock_ticks=TICKS)
    assert dict(cpu.seconds_by_mode) == {
        "user": 101321.53,
        "nice": 2906.96,
        "system": 30847.19,
        "idle": 468284.83,
        "iowait": 166.83,
        "irq": 0.0,
        "softirq": 251.95,
        "steal": 0.0,
        "guest": 1756.28,
        "guest_nice": 0.0,
    }
    assert cpu.cpu_count == 4


def test_parse_proc_stat_of_an_old_kernel_has_fewer_modes() -> None:
    cpu = parse_proc_stat("cpu  100 0 50 1000 5 1 2\ncpu0 100 0 50 1000 5 1 2\n", clock_ticks=100)
    assert dict(cpu.seconds_by_mode) == {
        "user": 1.0,
        "nice": 0.0,
        "system": 0.5,
        "idle": 10.0,
        "iowait": 0.05,
        "irq": 0.01,
        "softirq": 0.02,
    }
    assert cpu.cpu_count == 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("cpu0 1 2 3\nintr 5\n", "no aggregate 'cpu' line", id="no-aggregate"),
        pytest.param("cpu  1 x 3\n", "the nice time is not an integer", id="bad-number"),
    ],
)
def test_parse_proc_stat_rejects(text: str, reason: str) -> None:
    with pytest.raises(MalformedFileError, match=reason):
        parse_proc_stat(text, clock_ticks=100)


def test_read_meminfo() -> None:
    assert read_meminfo(PROC) == MemInfo(
        total_bytes=16318480 * 1024, free_bytes=1823456 * 1024, available_bytes=9876544 * 1024
    )


def test_meminfo_before_3_14_has_no_mem_available() -> None:
    meminfo = parse_meminfo("MemTotal:  1000 kB\nMemFree:  200 kB\nBuffers:  5 kB\n")
    assert meminfo == MemInfo(total_bytes=1024000, free_bytes=204800, available_bytes=None)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("MemFree:  200 kB\n", "no MemTotal", id="no-total"),
        pytest.param("MemTotal:  lots kB\n", "expected '<n> kB'", id="not-a-number"),
        pytest.param("MemTotal:  1000\n", "expected '<n> kB'", id="no-unit"),
    ],
)
def test_parse_meminfo_rejects(text: str, reason: str) -> None:
    with pytest.raises(MalformedFileError, match=reason):
        parse_meminfo(text)


def test_read_node_pressure() -> None:
    assert read_node_pressure(PROC) == NodePressure(
        cpu=PressureStats(123.456789, 0.0),
        memory=PressureStats(4.56789, 1.234567),
        io=PressureStats(98.765432, 87.654321),
    )


def test_node_pressure_is_none_on_kernels_without_psi(tmp_path: Path) -> None:
    root = _proc_copy(tmp_path)
    shutil.rmtree(root / "pressure")
    assert read_node_pressure(root) is None


def test_node_pressure_keeps_the_files_that_exist(tmp_path: Path) -> None:
    root = _proc_copy(tmp_path)
    (root / "pressure" / "io").unlink()
    pressure = read_node_pressure(root)
    assert pressure is not None
    assert pressure.io is None
    assert pressure.cpu == PressureStats(123.456789, 0.0)


def test_malformed_node_pressure_names_the_file(tmp_path: Path) -> None:
    root = _proc_copy(tmp_path)
    (root / "pressure" / "memory").write_text("some avg10=0.00\n")
    with pytest.raises(MalformedFileError) as caught:
        read_node_pressure(root)
    assert caught.value.source == str(root / "pressure" / "memory")

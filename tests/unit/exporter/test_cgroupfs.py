"""cgroupfs readers against the committed fake trees under tests/fixtures/cgroup."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter import cgroupfs
from exporter.cgroup_path import MalformedFileError
from exporter.cgroupfs import (
    CgroupMode,
    CgroupRootError,
    CgroupStats,
    PressureStats,
    detect_cgroup_mode,
    parse_cfs_quota,
    parse_cpu_max,
    parse_cpu_stat,
    parse_flat_keyed,
    parse_memory_limit,
    parse_memory_stat,
    parse_pressure,
    parse_single_int,
    read_cgroup_stats,
    read_text_if_present,
)
from kubepulse.errors import KubepulseValueError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cgroup"
V2 = FIXTURES / "v2-systemd-containerd"
V2_CRIO = FIXTURES / "v2-crio"
V1 = FIXTURES / "v1-cgroupfs-docker"
HYBRID = FIXTURES / "hybrid-systemd-docker"

STOREFRONT_POD = (
    "/kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-podb46bd9c9_f018_48ec_97b9_722e1f463eae.slice"
)
APP = (
    f"{STOREFRONT_POD}/"
    "cri-containerd-f09d4f5e2efb518df02a009eea6623150a1876770c23b86035e04375a7df7242.scope"
)
METRICS = (
    f"{STOREFRONT_POD}/"
    "cri-containerd-6f60dc986b9489a7a2cb298a3a6610eaa0fbb07d469e6332d12e35ac24002ea5.scope"
)
LEDGER = (
    "/kubepods.slice/kubepods-podae82e945_e595_46e3_aedf_bb9488cd9656.slice/"
    "cri-containerd-b42b8e9386c52cb4caa8865f53c3ea7d7b441940ebc1270905a7e61bc3fea3f4.scope"
)
CRIO_SCOPE = (
    "/kubepods.slice/kubepods-besteffort.slice/"
    "kubepods-besteffort-pod9d1c7e2a_5b48_4f0e_8a37_61c2d9f4b8e0.slice/"
    "crio-26230a97a4f1eb21ac3f8a4e23445fbe975ae5395777968227598440e00e3f5a.scope"
)
V1_POD = "/kubepods/burstable/podcf657ed7-1996-4c7f-b5d4-2836692061df"
V1_NGINX = f"{V1_POD}/c7d2471562dcdf0b504bdc71859d600a635ca2aff05adda48ff1133ed8088626"
V1_SIDECAR = f"{V1_POD}/720af5b2ba3dfc4c5f31004c57592683d95ffe6a7f9a5d8a9ac2b6b9cc12f919"
HYBRID_DOCKER = (
    "/kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-pod67d84575_e7f3_498e_86df_7f470964a3a4.slice/"
    "docker-ed406ed778d4dbf6f5994fe343ae7b2f33dc19b7151dce76b7367b1f02436846.scope"
)
ZERO_PRESSURE = PressureStats(0.0, 0.0)


@pytest.mark.parametrize(
    ("root", "mode"),
    [
        pytest.param(V2, "v2", id="v2"),
        pytest.param(V2_CRIO, "v2", id="v2-crio"),
        pytest.param(V1, "v1", id="v1"),
        pytest.param(HYBRID, "hybrid", id="hybrid"),
    ],
)
def test_detect_cgroup_mode(root: Path, mode: CgroupMode) -> None:
    assert detect_cgroup_mode(root) == mode
    assert detect_cgroup_mode(str(root)) == mode


def test_detect_cgroup_mode_without_cgroupfs_says_what_to_mount(tmp_path: Path) -> None:
    (tmp_path / "not-a-controller").mkdir()
    with pytest.raises(CgroupRootError, match=r"Mount the host's /sys/fs/cgroup"):
        detect_cgroup_mode(tmp_path)


@pytest.mark.parametrize(
    ("root", "path", "mode", "expected"),
    [
        pytest.param(
            V2,
            APP,
            "v2",
            CgroupStats(
                cpu_usage_seconds=8123.456789,
                nr_periods=81234,
                nr_throttled=1523,
                throttled_seconds=98.765432,
                memory_usage_bytes=398458880,
                working_set_bytes=398458880 - 50331648,
                rss_bytes=301989888,
                cache_bytes=83886080,
                memory_limit_bytes=536870912,
                cpu_limit_cores=0.5,
                cpu_weight=20,
                oom_kills=2,
                pids_current=14,
                cpu_pressure=PressureStats(45.678901, 23.456789),
                memory_pressure=PressureStats(1.234567, 0.234567),
                io_pressure=PressureStats(7.654321, 6.54321),
            ),
            id="v2-limited-oom-killed-container",
        ),
        pytest.param(
            V2,
            METRICS,
            "v2",
            CgroupStats(
                cpu_usage_seconds=1.5,
                nr_periods=0,
                nr_throttled=0,
                throttled_seconds=0.0,
                memory_usage_bytes=10485760,
                working_set_bytes=0,  # inactive_file exceeds usage: clamped, as cAdvisor does
                rss_bytes=2097152,
                cache_bytes=12582912,
                memory_limit_bytes=None,  # memory.max "max"
                cpu_limit_cores=None,  # cpu.max "max 100000"
                cpu_weight=4,
                oom_kills=0,
                pids_current=3,
                cpu_pressure=ZERO_PRESSURE,
                memory_pressure=ZERO_PRESSURE,
                io_pressure=ZERO_PRESSURE,
            ),
            id="v2-unlimited-container",
        ),
        pytest.param(
            V2,
            STOREFRONT_POD,
            "v2",
            CgroupStats(
                cpu_usage_seconds=9625.0,
                nr_periods=81234,
                nr_throttled=1523,
                throttled_seconds=98.765432,
                memory_usage_bytes=409944064,
                working_set_bytes=409944064 - 62914560,
                rss_bytes=304132096,
                cache_bytes=96468992,
                memory_limit_bytes=536870912,
                cpu_limit_cores=None,
                cpu_weight=24,
                oom_kills=2,
                pids_current=18,
                cpu_pressure=PressureStats(45.700246, 23.456789),
                memory_pressure=PressureStats(1.234567, 0.234567),
                io_pressure=PressureStats(7.654321, 6.54321),
            ),
            id="v2-pod-level",
        ),
        pytest.param(
            V2,
            LEDGER,
            "v2",
            CgroupStats(
                cpu_usage_seconds=345678.901234,
                nr_periods=912345,
                nr_throttled=0,
                throttled_seconds=0.0,
                memory_usage_bytes=1288490188,
                working_set_bytes=1288490188 - 134217728,
                rss_bytes=1073741824,
                cache_bytes=201326592,
                memory_limit_bytes=2147483648,
                cpu_limit_cores=2.0,
                cpu_weight=79,
                oom_kills=0,
                pids_current=61,
                cpu_pressure=PressureStats(1.2, 0.3),
                memory_pressure=ZERO_PRESSURE,
                io_pressure=PressureStats(0.098765, 0.04321),
            ),
            id="v2-guaranteed-container",
        ),
        pytest.param(
            V2_CRIO,
            CRIO_SCOPE,
            "v2",
            CgroupStats(
                cpu_usage_seconds=5300.0,
                nr_periods=0,
                nr_throttled=0,
                throttled_seconds=0.0,
                memory_usage_bytes=146800640,
                working_set_bytes=146800640 - 20971520,
                rss_bytes=102760448,
                cache_bytes=41943040,
                cpu_weight=1,
                oom_kills=1,
                pids_current=7,
                # psi=0: no *.pressure files, so no pressure at all.
            ),
            id="v2-crio-scope-without-psi",
        ),
        pytest.param(
            V2_CRIO,
            f"{CRIO_SCOPE}/container",
            "v2",
            CgroupStats(
                cpu_usage_seconds=5299.0,
                nr_periods=0,
                nr_throttled=0,
                throttled_seconds=0.0,
                memory_usage_bytes=146796544,
                working_set_bytes=146796544 - 20971520,
                rss_bytes=102756352,
                cache_bytes=41943040,
                cpu_weight=1,
                oom_kills=1,
                pids_current=7,
            ),
            id="v2-crio-container-subgroup",
        ),
        pytest.param(
            V1,
            V1_NGINX,
            "v1",
            CgroupStats(
                cpu_usage_seconds=61.23456789,
                nr_periods=0,
                nr_throttled=0,
                throttled_seconds=0.0,
                memory_usage_bytes=178257920,
                working_set_bytes=178257920 - 33554432,
                rss_bytes=104857600,
                cache_bytes=62914560,
                memory_limit_bytes=None,  # 9223372036854771712, v1's no-limit sentinel
                cpu_limit_cores=None,  # cfs_quota_us -1
                cpu_shares=256,
                oom_kills=1,
                pids_current=17,
            ),
            id="v1-unlimited-container",
        ),
        pytest.param(
            V1,
            V1_SIDECAR,
            "v1",
            CgroupStats(
                cpu_usage_seconds=8.888888899,
                nr_periods=120000,
                nr_throttled=4021,
                throttled_seconds=39.87654321,
                memory_usage_bytes=41943040,
                working_set_bytes=41943040 - 8388608,
                rss_bytes=20971520,
                cache_bytes=20971520,
                memory_limit_bytes=268435456,
                cpu_limit_cores=0.25,
                cpu_shares=102,
                oom_kills=0,
                pids_current=6,
            ),
            id="v1-limited-container",
        ),
        pytest.param(
            V1,
            V1_POD,
            "v1",
            CgroupStats(
                cpu_usage_seconds=70.123456789,
                nr_periods=120000,
                nr_throttled=4021,
                throttled_seconds=39.87654321,
                memory_usage_bytes=220200960,
                working_set_bytes=220200960 - 41943040,
                rss_bytes=125829120,
                cache_bytes=83886080,
                cpu_shares=358,
                oom_kills=1,
                pids_current=23,
            ),
            id="v1-pod-level",
        ),
        pytest.param(
            HYBRID,
            HYBRID_DOCKER,
            "hybrid",
            CgroupStats(
                cpu_usage_seconds=4.5,
                nr_periods=3000,
                nr_throttled=12,
                throttled_seconds=0.25,
                memory_usage_bytes=104857600,
                working_set_bytes=104857600 - 20971520,
                rss_bytes=41943040,
                cache_bytes=52428800,
                memory_limit_bytes=1073741824,
                cpu_limit_cores=1.0,
                cpu_shares=512,
                oom_kills=0,
                pids_current=4,
                cpu_pressure=PressureStats(2.5, 1.0),
                memory_pressure=ZERO_PRESSURE,
                io_pressure=PressureStats(0.75, 0.5),
            ),
            id="hybrid-v1-stats-unified-psi",
        ),
    ],
)
def test_read_cgroup_stats(root: Path, path: str, mode: CgroupMode, expected: CgroupStats) -> None:
    assert read_cgroup_stats(root, path, mode) == expected


def test_pure_v1_has_no_pressure_even_where_unified_exists() -> None:
    stats = read_cgroup_stats(HYBRID, HYBRID_DOCKER, "v1")
    assert stats is not None
    assert (stats.cpu_pressure, stats.memory_pressure, stats.io_pressure) == (None, None, None)


@pytest.mark.parametrize(
    ("root", "path", "mode"),
    [
        pytest.param(V2, f"{STOREFRONT_POD}/cri-containerd-{'0' * 64}.scope", "v2", id="v2"),
        pytest.param(V1, f"{V1_POD}/{'0' * 64}", "v1", id="v1"),
        pytest.param(HYBRID, "/kubepods.slice/gone.scope", "hybrid", id="hybrid"),
    ],
)
def test_a_cgroup_that_does_not_exist_reads_as_none(
    root: Path, path: str, mode: CgroupMode
) -> None:
    assert read_cgroup_stats(root, path, mode) is None


@pytest.mark.parametrize("mode", ["v2", "v1", "hybrid"])
def test_a_path_relative_to_a_cgroup_namespace_is_refused(mode: CgroupMode) -> None:
    with pytest.raises(KubepulseValueError, match=r"climbs out of its root"):
        read_cgroup_stats(V2, "/../../kubepods.slice", mode)


def _copy(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination)
    return destination


@pytest.mark.parametrize(
    ("missing", "cleared_fields"),
    [
        pytest.param("memory.stat", ("working_set_bytes", "rss_bytes", "cache_bytes"), id="stat"),
        pytest.param("memory.current", ("memory_usage_bytes", "working_set_bytes"), id="usage"),
        pytest.param(
            "cpu.stat",
            ("cpu_usage_seconds", "nr_periods", "nr_throttled", "throttled_seconds"),
            id="cpu",
        ),
        pytest.param("memory.events", ("oom_kills",), id="events"),
        pytest.param("cpu.max", ("cpu_limit_cores",), id="cpu-max"),
        pytest.param("memory.max", ("memory_limit_bytes",), id="memory-max"),
        pytest.param("io.pressure", ("io_pressure",), id="io-pressure"),
        pytest.param("pids.current", ("pids_current",), id="pids"),
    ],
)
def test_an_absent_file_clears_only_its_fields(
    tmp_path: Path, missing: str, cleared_fields: tuple[str, ...]
) -> None:
    root = _copy(V2, tmp_path / "cgroup")
    complete = read_cgroup_stats(root, APP, "v2")
    (root / APP.lstrip("/") / missing).unlink()
    partial = read_cgroup_stats(root, APP, "v2")
    assert complete is not None
    assert partial is not None
    for name in CgroupStats.__dataclass_fields__:
        if name in cleared_fields:
            assert getattr(partial, name) is None, name
        else:
            assert getattr(partial, name) == getattr(complete, name), name


def test_memory_stat_without_inactive_file_uses_the_usage(tmp_path: Path) -> None:
    root = _copy(V2, tmp_path / "cgroup")
    (root / APP.lstrip("/") / "memory.stat").write_text("anon 1\nfile 2\n")
    stats = read_cgroup_stats(root, APP, "v2")
    assert stats is not None
    assert stats.working_set_bytes == stats.memory_usage_bytes == 398458880


def test_cpu_stat_without_the_cpu_controller_has_no_throttling(tmp_path: Path) -> None:
    # Without "cpu" in the parent's cgroup.subtree_control, cpu.stat has usage only.
    root = _copy(V2, tmp_path / "cgroup")
    (root / APP.lstrip("/") / "cpu.stat").write_text(
        "usage_usec 2000000\nuser_usec 1500000\nsystem_usec 500000\n"
    )
    stats = read_cgroup_stats(root, APP, "v2")
    assert stats is not None
    assert stats.cpu_usage_seconds == 2.0
    assert (stats.nr_periods, stats.nr_throttled, stats.throttled_seconds) == (None, None, None)


def test_v1_oom_control_of_kernels_before_4_13_has_no_oom_kill(tmp_path: Path) -> None:
    root = _copy(V1, tmp_path / "cgroup")
    (root / "memory" / V1_NGINX.lstrip("/") / "memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\n"
    )
    stats = read_cgroup_stats(root, V1_NGINX, "v1")
    assert stats is not None
    assert stats.oom_kills is None


def test_v1_memory_stat_without_hierarchy_totals_uses_local_counters(tmp_path: Path) -> None:
    root = _copy(V1, tmp_path / "cgroup")
    (root / "memory" / V1_NGINX.lstrip("/") / "memory.stat").write_text(
        "cache 300\nrss 200\ninactive_file 100\n"
    )
    stats = read_cgroup_stats(root, V1_NGINX, "v1")
    assert stats is not None
    assert (stats.rss_bytes, stats.cache_bytes) == (200, 300)
    # Without total_inactive_file the usage is the working set, as in cAdvisor.
    assert stats.working_set_bytes == stats.memory_usage_bytes


def test_v1_with_cpu_and_cpuacct_mounted_apart(tmp_path: Path) -> None:
    root = _copy(V1, tmp_path / "cgroup")
    comounted = root / "cpu,cpuacct"
    shutil.copytree(comounted, root / "cpu")
    comounted.rename(root / "cpuacct")
    (root / "cpu" / V1_SIDECAR.lstrip("/") / "cpuacct.usage").write_text("1\n")
    stats = read_cgroup_stats(root, V1_SIDECAR, "v1")
    assert stats is not None
    assert stats.cpu_usage_seconds == 8.888888899, "cpuacct.usage comes from cpuacct/"
    assert stats.cpu_limit_cores == 0.25
    assert stats.cpu_shares == 102


def test_a_container_exiting_mid_read_reads_as_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy(V2, tmp_path / "cgroup")
    directory = root / APP.lstrip("/")
    read = cgroupfs.read_text_if_present

    def read_then_exit(path: cgroupfs.StrPath) -> str | None:
        text = read(path)
        if directory.exists() and os.fspath(path).endswith("memory.stat"):
            shutil.rmtree(directory)  # the container exits after memory.stat was read
        return text

    monkeypatch.setattr(cgroupfs, "read_text_if_present", read_then_exit)
    assert read_cgroup_stats(root, APP, "v2") is None


@pytest.mark.parametrize(
    ("error_number", "absent"),
    [
        pytest.param(errno.ENOENT, True, id="ENOENT-file-gone"),
        pytest.param(errno.ENODEV, True, id="ENODEV-cgroup-dead"),
        pytest.param(errno.ESRCH, True, id="ESRCH-process-gone"),
        pytest.param(errno.EOPNOTSUPP, True, id="EOPNOTSUPP-psi-disabled"),
        pytest.param(errno.EACCES, False, id="EACCES-raised"),
        pytest.param(errno.EIO, False, id="EIO-raised"),
    ],
)
def test_read_text_if_present_errnos(
    monkeypatch: pytest.MonkeyPatch, error_number: int, absent: bool
) -> None:
    def failing_open(*args: Any, **kwargs: Any) -> Any:
        raise OSError(error_number, os.strerror(error_number), args[0])

    monkeypatch.setattr(cgroupfs, "open", failing_open, raising=False)
    if absent:
        assert read_text_if_present("/sys/fs/cgroup/memory.current") is None
    else:
        with pytest.raises(OSError, match=os.strerror(error_number)):
            read_text_if_present("/sys/fs/cgroup/memory.current")


@pytest.mark.parametrize(
    ("file_name", "content", "line_number"),
    [
        pytest.param("cpu.stat", "usage_usec 12\nuser_usec twelve\n", 2, id="cpu-stat-value"),
        pytest.param("memory.stat", "anon 1\nfile\n", 2, id="memory-stat-one-word"),
        pytest.param("memory.events", "oom_kill 1 2\n", 1, id="events-three-words"),
        pytest.param("memory.current", "lots\n", 1, id="usage-not-a-number"),
        pytest.param("memory.current", "", None, id="usage-empty"),
        pytest.param("memory.max", "unlimited\n", 1, id="limit-word"),
        pytest.param("cpu.max", "50000\n", None, id="cpu-max-one-word"),
        pytest.param("cpu.max", "50000 0\n", 1, id="cpu-max-zero-period"),
        pytest.param("cpu.pressure", "some avg10=0.00 total=x\n", 1, id="psi-total"),
    ],
)
def test_malformed_files_raise_naming_file_and_line(
    tmp_path: Path, file_name: str, content: str, line_number: int | None
) -> None:
    root = _copy(V2, tmp_path / "cgroup")
    path = root / APP.lstrip("/") / file_name
    path.write_text(content)
    with pytest.raises(MalformedFileError) as caught:
        read_cgroup_stats(root, APP, "v2")
    assert caught.value.source == str(path)
    assert caught.value.line_number == line_number
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "cores"),
    [
        pytest.param("max 100000\n", None, id="max"),
        pytest.param("50000 100000\n", 0.5, id="half"),
        pytest.param("200000 100000", 2.0, id="two"),
        pytest.param("150000 100000\n", 1.5, id="one-and-a-half"),
        pytest.param("1000 1000\n", 1.0, id="short-period"),
        pytest.param("max 50000\n", None, id="max-short-period"),
    ],
)
def test_parse_cpu_max(text: str, cores: float | None) -> None:
    assert parse_cpu_max(text) == cores


@pytest.mark.parametrize(
    "text",
    ["", "max\n", "abc 100000\n", "50000 0\n", "50000 -1\n", "50000 100000 1\n", "1 2\n3 4\n"],
)
def test_parse_cpu_max_rejects(text: str) -> None:
    with pytest.raises(MalformedFileError, match=r"cpu\.max"):
        parse_cpu_max(text)


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        pytest.param("max\n", None, id="v2-max"),
        pytest.param("9223372036854771712\n", None, id="v1-sentinel-4k-pages"),
        pytest.param("9223372036854710272\n", None, id="v1-sentinel-64k-pages"),
        pytest.param(f"{2**62}\n", None, id="threshold"),
        pytest.param(f"{2**62 - 1}\n", 2**62 - 1, id="just-below-threshold"),
        pytest.param("536870912\n", 536870912, id="512Mi"),
        pytest.param("0\n", 0, id="zero"),
    ],
)
def test_parse_memory_limit(text: str, limit: int | None) -> None:
    assert parse_memory_limit(text) == limit


@pytest.mark.parametrize("text", ["", "MAX\n", "1.5G\n", "1\n2\n"])
def test_parse_memory_limit_rejects(text: str) -> None:
    with pytest.raises(MalformedFileError):
        parse_memory_limit(text)


@pytest.mark.parametrize(
    ("quota", "period", "cores"),
    [
        pytest.param("-1\n", "100000\n", None, id="unlimited"),
        pytest.param("50000\n", "100000\n", 0.5, id="half"),
        pytest.param("250000\n", "100000\n", 2.5, id="two-and-a-half"),
        pytest.param("-1\n", "0\n", None, id="unlimited-ignores-period"),
    ],
)
def test_parse_cfs_quota(quota: str, period: str, cores: float | None) -> None:
    assert parse_cfs_quota(quota, period) == cores


@pytest.mark.parametrize(
    ("quota", "period", "source"),
    [
        pytest.param("50000\n", "0\n", "cpu.cfs_period_us", id="zero-period"),
        pytest.param("x\n", "100000\n", "cpu.cfs_quota_us", id="bad-quota"),
        pytest.param("50000\n", "y\n", "cpu.cfs_period_us", id="bad-period"),
    ],
)
def test_parse_cfs_quota_rejects(quota: str, period: str, source: str) -> None:
    with pytest.raises(MalformedFileError) as caught:
        parse_cfs_quota(quota, period)
    assert caught.value.source == source


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "some avg10=1.25 avg60=0.80 avg300=0.35 total=45678901\n"
            "full avg10=0.90 avg60=0.50 avg300=0.20 total=23456789\n",
            PressureStats(45.678901, 23.456789),
            id="some-and-full",
        ),
        pytest.param(
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n",
            PressureStats(1.0, None),
            id="cpu-before-5.13-no-full",
        ),
        pytest.param(
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n",
            PressureStats(0.000007, 0.000005),
            id="any-order",
        ),
        pytest.param(
            "some total=3 avg10=0.00 future=1\n", PressureStats(0.000003, None), id="extra-keys"
        ),
    ],
)
def test_parse_pressure(text: str, expected: PressureStats) -> None:
    assert parse_pressure(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("", "no 'some' line", id="empty"),
        pytest.param("full avg10=0.00 total=5\n", "no 'some' line", id="full-only"),
        pytest.param("some avg10=0.00 avg60=0.00 avg300=0.00\n", "no total=", id="no-total"),
        pytest.param("weird total=1\n", "expected 'some' or 'full'", id="unknown-kind"),
        pytest.param("some total\n", "is not key=value", id="not-key-value"),
        pytest.param("some total=1.5\n", "total is not an integer", id="fractional-total"),
    ],
)
def test_parse_pressure_rejects(text: str, reason: str) -> None:
    with pytest.raises(MalformedFileError, match=reason):
        parse_pressure(text, source="/sys/fs/cgroup/cpu.pressure")


@pytest.mark.parametrize(
    ("parser", "text", "expected"),
    [
        pytest.param(
            parse_cpu_stat,
            "usage_usec 10\nnr_periods 2\nthrottled_usec 3\n",
            {"usage_usec": 10, "nr_periods": 2, "throttled_usec": 3},
            id="cpu-stat-v2",
        ),
        pytest.param(
            parse_cpu_stat,
            "nr_periods 5\nnr_throttled 1\nthrottled_time 999\nnr_bursts 0\nburst_time 0\n",
            {
                "nr_periods": 5,
                "nr_throttled": 1,
                "throttled_time": 999,
                "nr_bursts": 0,
                "burst_time": 0,
            },
            id="cpu-stat-v1",
        ),
        pytest.param(
            parse_memory_stat,
            "anon 4096\nfile 8192\n\ninactive_file 0\n",
            {"anon": 4096, "file": 8192, "inactive_file": 0},
            id="memory-stat-blank-line",
        ),
        pytest.param(
            parse_flat_keyed,
            "hierarchical_memory_limit 9223372036854771712\n",
            {"hierarchical_memory_limit": 9223372036854771712},
            id="huge-values-stay-exact",
        ),
        pytest.param(parse_flat_keyed, "", {}, id="empty"),
    ],
)
def test_flat_keyed_parsers(
    parser: Callable[[str], dict[str, int]], text: str, expected: dict[str, int]
) -> None:
    assert parser(text) == expected


@pytest.mark.parametrize("text", ["a 1 2\n", "a\n", "a b\n"])
def test_parse_flat_keyed_rejects(text: str) -> None:
    with pytest.raises(MalformedFileError, match="line 1"):
        parse_flat_keyed(text, source="memory.events")


@pytest.mark.parametrize(
    ("text", "value"), [("42\n", 42), ("  7  \n", 7), ("\n0\n", 0), ("-1\n", -1)]
)
def test_parse_single_int(text: str, value: int) -> None:
    assert parse_single_int(text) == value

"""One collection pass (scan_node) and the sampler's pass on the committed fake nodes.

Most tests read tests/fixtures/node-scan (a cgroup v2 tree and a /proc that agree; see its
README) with the pod objects of tests/fixtures/objects. The other layouts come from
tests/fixtures/cgroup. Tests that break or remove a file copy a tree to tmp_path first;
tests that need particular processes write a small /proc of their own.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest

from exporter.cgroup_path import RuntimeHelper
from exporter.cgroupfs import CgroupRootError, read_cgroup_stats
from exporter.metadata import ClusterView, LocalMetadata, MetadataMode
from exporter.podindex import PodIndex
from exporter.scan import (
    COLLECTOR_CGROUPS,
    COLLECTOR_NODE,
    COLLECTOR_PROCESSES,
    REASON_IO_ERROR,
    REASON_NOT_FOUND,
    REASON_PARSE_ERROR,
    REASON_VANISHED,
    ContainerKey,
    ContainerUsage,
    NodeScan,
    discover_cgroups,
    sample_containers,
    scan_node,
)
from kubepulse.model import Pod

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
NODE = FIXTURES / "node-scan"
NODE_CGROUP = NODE / "cgroup"
NODE_PROC = NODE / "proc"
CGROUP_TREES = FIXTURES / "cgroup"
V2_CRIO = CGROUP_TREES / "v2-crio"
V1 = CGROUP_TREES / "v1-cgroupfs-docker"
HYBRID = CGROUP_TREES / "hybrid-systemd-docker"
TICKS = 100
PAGE = 4096

POD_OBJECTS = (
    "pod-guaranteed",
    "pod-burstable-sidecars",
    "pod-static-mirror",
    "pod-oomkilled",
    "pod-besteffort",
)
LEDGER_UID = "ae82e945-e595-46e3-aedf-bb9488cd9656"
STOREFRONT_UID = "b46bd9c9-f018-48ec-97b9-722e1f463eae"
ETCD_HASH = "c1087c8a6d3a18291b3235a68ad19128"
ETCD_MIRROR_UID = "228b5681-c56a-410b-b9bf-6adbf21d3fbd"
CART_UID = "ea99f4b3-66cd-4ca9-bf3d-07850b8a8858"
DEBUG_UID = "4ab3c5a3-63f3-444f-82bb-a8b9f55b2f3f"
UNKNOWN_UID = "5e1f3c2a-7d4b-4c8e-9f01-23456789abcd"

APP = ContainerKey(
    STOREFRONT_UID, "f09d4f5e2efb518df02a009eea6623150a1876770c23b86035e04375a7df7242"
)
METRICS = ContainerKey(
    STOREFRONT_UID, "6f60dc986b9489a7a2cb298a3a6610eaa0fbb07d469e6332d12e35ac24002ea5"
)
STOREFRONT_SANDBOX = ContainerKey(
    STOREFRONT_UID, "ef0d1e66210d7e53301f85444a421ce949f7379138ee78ab79d445809ae5b335"
)
LEDGER = ContainerKey(
    LEDGER_UID, "b42b8e9386c52cb4caa8865f53c3ea7d7b441940ebc1270905a7e61bc3fea3f4"
)
LEDGER_SANDBOX = ContainerKey(
    LEDGER_UID, "5df5514276994b7b53886ec5b0cc65b0a7d3bde459a1068630df2362d7b3c641"
)
ETCD = ContainerKey(ETCD_HASH, "fabe7d1c89391892e0810b2ba1155d5af3fdb09833f507c18c03a2c8b426027f")
ETCD_SANDBOX = ContainerKey(
    ETCD_HASH, "3c0fa4ad5e0c0ee34e9b3cd1c6a1ad1ea8b2f3d1d7a4e5b6c7d8e9f0a1b2c3d4"
)
CART = ContainerKey(CART_UID, "8f8bcfd3699dd1fa57d59b92a032ece6b6084a0f5cdbdc04cf3d72e9a1823d51")
CART_SANDBOX = ContainerKey(
    CART_UID, "9a3d2c1b0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b"
)
DEBUG = ContainerKey(DEBUG_UID, "fd6457febe419dc5856fc9f11a17534ae163820053b07551be6c76ed1a0e71a0")
DEBUG_SANDBOX = ContainerKey(
    DEBUG_UID, "1e2d3c4b5a6978695a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"
)
WORKER = ContainerKey(UNKNOWN_UID, "7a" * 32)
WORKER_SANDBOX = ContainerKey(UNKNOWN_UID, "7b" * 32)

STOREFRONT_SLICE = (
    "/kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-podb46bd9c9_f018_48ec_97b9_722e1f463eae.slice"
)
APP_PATH = f"{STOREFRONT_SLICE}/cri-containerd-{APP.container_id}.scope"
CRIO_POD_UID = "9d1c7e2a-5b48-4f0e-8a37-61c2d9f4b8e0"
CRIO_POD_SLICE = (
    "/kubepods.slice/kubepods-besteffort.slice/"
    "kubepods-besteffort-pod9d1c7e2a_5b48_4f0e_8a37_61c2d9f4b8e0.slice"
)
CRIO_CONTAINER_ID = "26230a97a4f1eb21ac3f8a4e23445fbe975ae5395777968227598440e00e3f5a"
CRIO_SCOPE = f"{CRIO_POD_SLICE}/crio-{CRIO_CONTAINER_ID}.scope"
CRIO_CONMON_SCOPE = f"{CRIO_POD_SLICE}/crio-conmon-{CRIO_CONTAINER_ID}.scope"


# ---------------------------------------------------------------- helpers


def load_pod(name: str) -> Pod:
    return Pod.from_api(json.loads((FIXTURES / "objects" / f"{name}.json").read_text()))


def cluster_index(*names: str) -> PodIndex:
    pods = [load_pod(name) for name in (names or POD_OBJECTS)]
    return PodIndex(
        ClusterView(mode=MetadataMode.CLUSTER, pods={str(p.uid): p for p in pods}, synced=True)
    )


def local_index() -> PodIndex:
    return PodIndex(LocalMetadata().current())


def scan(
    *,
    cgroup_root: Path = NODE_CGROUP,
    proc_root: Path = NODE_PROC,
    index: PodIndex | None = None,
    kubelet_root: Path | None = None,
) -> NodeScan:
    return scan_node(
        proc_root=proc_root,
        cgroup_root=cgroup_root,
        mode=None,
        index=index if index is not None else cluster_index(),
        kubelet_root=kubelet_root,
        clock_ticks=TICKS,
        page_size=PAGE,
    )


def container(result: NodeScan, key: ContainerKey) -> ContainerUsage:
    found = [usage for usage in result.containers if usage.key == key]
    assert len(found) == 1, f"{key} reported {len(found)} times"
    return found[0]


def copy_tree(source: Path, destination: Path) -> Path:
    return Path(shutil.copytree(source, destination))


def write_process(
    proc_root: Path,
    pid: int,
    comm: str,
    cgroup_path: str,
    *,
    utime: int = 100,
    stime: int = 50,
    threads: int = 1,
    rss_pages: int = 256,
    start: int = 1000,
) -> None:
    """A minimal /proc/<pid> (stat, statm, cgroup) as the kernel writes it."""
    directory = proc_root / str(pid)
    directory.mkdir(parents=True)
    fields = ["S", "1", str(pid), str(pid), "0", "-1", "4194560", "0", "0", "0", "0"]
    fields += [str(utime), str(stime), "0", "0", "20", "0", str(threads), "0", str(start)]
    fields += ["1000000", str(rss_pages), "18446744073709551615"]
    (directory / "stat").write_text(f"{pid} ({comm}) {' '.join(fields)}\n")
    (directory / "statm").write_text(f"1000 {rss_pages} 10 1 0 100 0\n")
    (directory / "cgroup").write_text(f"0::{cgroup_path}\n")


def minimal_proc(root: Path, processes: Iterable[tuple[int, str, str]] = ()) -> Path:
    """A /proc with node files but no pressure directory, plus the given processes."""
    root.mkdir(parents=True)
    shutil.copy(NODE_PROC / "stat", root / "stat")
    shutil.copy(NODE_PROC / "meminfo", root / "meminfo")
    for pid, comm, cgroup_path in processes:
        write_process(root, pid, comm, cgroup_path)
    return root


def only_churn(result: NodeScan) -> bool:
    return all(reason == REASON_VANISHED for _, reason in result.errors)


# ---------------------------------------------------------------- pods and containers


def test_every_container_of_every_pod_is_found_and_named() -> None:
    result = scan()
    named = {
        (usage.pod.name if usage.pod else None, usage.name): usage.qos_class
        for usage in result.containers
    }
    assert named == {
        ("ledger-0", "ledger"): "Guaranteed",
        ("storefront-5f7b8c9d4-q7lmn", "app"): "Burstable",
        ("storefront-5f7b8c9d4-q7lmn", "metrics"): "Burstable",
        ("etcd-cp-1", "etcd"): "Burstable",
        ("cart-6c8d9f7b5-h4k2z", "cart"): "Burstable",
        ("debug-shell", "debug-shell"): "BestEffort",
        (None, None): "Burstable",  # the pod no object describes, reported by its IDs
    }
    assert container(result, WORKER).pod is None
    assert result.cgroup_mode == "v2"
    assert result.runtime == "containerd"
    assert only_churn(result), result.errors


def test_the_pod_level_cgroup_gives_pod_totals_and_the_sandbox_is_no_container() -> None:
    result = scan()
    storefront = next(pod for pod in result.pods if pod.pod_uid == STOREFRONT_UID)
    # The pod-level cgroup already holds app, metrics and the pause container.
    assert storefront.stats.cpu_usage_seconds == pytest.approx(8124.989289)
    assert storefront.processes == 4
    assert storefront.threads == 9
    assert STOREFRONT_SANDBOX in result.sandbox_containers
    reported = {usage.key for usage in result.containers if usage.key.pod_uid == STOREFRONT_UID}
    assert reported == {APP, METRICS}
    containers_cpu = sum(container(result, key).stats.cpu_usage_seconds or 0 for key in reported)
    sandbox_cpu = read_cgroup_stats(
        NODE_CGROUP,
        f"{STOREFRONT_SLICE}/cri-containerd-{STOREFRONT_SANDBOX.container_id}.scope",
        "v2",
    )
    assert sandbox_cpu is not None
    assert sandbox_cpu.cpu_usage_seconds is not None
    pod_cpu = storefront.stats.cpu_usage_seconds
    assert pod_cpu is not None
    # The pod-level cgroup already includes its containers and the sandbox: adding them to
    # it would count them twice, which is why the pod figure is the cgroup's alone.
    assert containers_cpu + sandbox_cpu.cpu_usage_seconds <= pod_cpu
    assert {pod.pod_uid for pod in result.pods} == {
        LEDGER_UID,
        STOREFRONT_UID,
        ETCD_HASH,
        CART_UID,
        DEBUG_UID,
        UNKNOWN_UID,
    }


def test_sandboxes_of_known_pods_match_no_container_status() -> None:
    result = scan()
    assert result.sandbox_containers == {
        LEDGER_SANDBOX,
        STOREFRONT_SANDBOX,
        ETCD_SANDBOX,
        CART_SANDBOX,
        DEBUG_SANDBOX,
        WORKER_SANDBOX,
    }


def test_in_local_mode_a_sandbox_is_recognised_by_its_pause_process() -> None:
    result = scan(index=local_index())
    assert {usage.key for usage in result.containers} == {
        LEDGER,
        APP,
        METRICS,
        ETCD,
        CART,
        CART_SANDBOX,  # its pause process is not visible, so nothing tells it apart
        DEBUG,
        WORKER,
    }
    assert result.sandbox_containers == {
        LEDGER_SANDBOX,
        STOREFRONT_SANDBOX,
        ETCD_SANDBOX,
        DEBUG_SANDBOX,
        WORKER_SANDBOX,
    }
    assert all(usage.name is None and usage.pod is None for usage in result.containers)


def test_a_static_pod_is_matched_through_its_mirror_annotation() -> None:
    etcd = container(scan(), ETCD)
    assert etcd.key.pod_uid == ETCD_HASH
    assert etcd.name == "etcd"
    assert etcd.pod is not None
    assert etcd.pod.uid == ETCD_MIRROR_UID


def test_processes_of_a_shared_process_namespace_map_by_their_own_cgroup() -> None:
    # nginx and metrics-agent are children of the pause process of another container.
    result = scan(index=local_index())
    assert APP in {usage.key for usage in result.containers}
    assert METRICS in {usage.key for usage in result.containers}
    assert STOREFRONT_SANDBOX in result.sandbox_containers
    assert {"nginx", "metrics-agent", "pause"}.isdisjoint(result.host_processes)


def test_containers_without_visible_processes_are_found_by_the_cgroup_walk() -> None:
    cart = container(scan(), CART)
    assert cart.name == "cart"
    assert cart.processes == 1, "from cgroup.procs, although /proc does not show pid 2400"
    assert cart.threads == 3


def test_a_process_seen_through_a_cgroup_namespace_is_still_a_pods() -> None:
    result = scan(index=local_index())
    assert "bash" not in result.host_processes
    assert DEBUG_SANDBOX in result.sandbox_containers


def test_processes_and_threads_come_from_the_cgroup_files() -> None:
    result = scan()
    app = container(result, APP)
    assert (app.processes, app.threads) == (2, 6)
    debug = container(result, DEBUG)
    assert debug.stats.pids_current is None
    assert debug.threads == 1, "no pids controller: the lines of cgroup.threads"
    ledger_pod = next(pod for pod in result.pods if pod.pod_uid == LEDGER_UID)
    assert (ledger_pod.processes, ledger_pod.threads) == (2, 10)


def test_container_stats_limits_swap_and_runtime() -> None:
    result = scan()
    app = container(result, APP)
    assert app.cgroup_path == APP_PATH
    assert app.stats.cpu_usage_seconds == pytest.approx(8123.456789)
    assert app.stats.memory_limit_bytes == 1024**3
    assert app.stats.cpu_limit_cores == 1.0
    assert app.stats.working_set_bytes == 398458880 - 50331648
    assert app.swap_bytes == 1024**2
    assert app.runtime == "containerd"
    assert app.status is not None
    assert app.status.name == "app"


# ---------------------------------------------------------------- pitfalls


def test_max_and_the_v1_sentinel_mean_no_limit() -> None:
    v2 = scan()
    etcd = container(v2, ETCD)
    assert (etcd.stats.memory_limit_bytes, etcd.stats.cpu_limit_cores) == (None, None)
    metrics = container(v2, METRICS)
    assert metrics.stats.memory_limit_bytes == 64 * 1024**2
    assert metrics.stats.cpu_limit_cores is None, "cpu.max is 'max 100000'"
    v1 = scan(cgroup_root=V1, index=local_index())
    nginx = container(
        v1,
        ContainerKey(
            "cf657ed7-1996-4c7f-b5d4-2836692061df",
            "c7d2471562dcdf0b504bdc71859d600a635ca2aff05adda48ff1133ed8088626",
        ),
    )
    # memory.limit_in_bytes holds 9223372036854771712 and cfs_quota_us -1.
    assert (nginx.stats.memory_limit_bytes, nginx.stats.cpu_limit_cores) == (None, None)
    sidecar = container(
        v1,
        ContainerKey(
            "cf657ed7-1996-4c7f-b5d4-2836692061df",
            "720af5b2ba3dfc4c5f31004c57592683d95ffe6a7f9a5d8a9ac2b6b9cc12f919",
        ),
    )
    assert sidecar.stats.memory_limit_bytes == 256 * 1024**2
    assert sidecar.stats.cpu_limit_cores == 0.25


def test_v2_oom_kills_come_from_memory_events() -> None:
    result = scan()
    assert container(result, APP).stats.oom_kills == 2
    assert container(result, CART).stats.oom_kills == 1
    assert container(result, LEDGER).stats.oom_kills == 0


def test_crio_conmon_is_runtime_overhead_and_never_a_container(tmp_path: Path) -> None:
    proc = minimal_proc(
        tmp_path / "proc",
        [
            (700, "crio", "/system.slice/crio.service"),
            (1200, "conmon", CRIO_CONMON_SCOPE),
            (1300, "sleep", f"{CRIO_SCOPE}/container"),
        ],
    )
    result = scan(cgroup_root=V2_CRIO, proc_root=proc, index=local_index())
    assert result.runtime == "cri-o"
    assert all("conmon" not in usage.cgroup_path for usage in result.containers)
    assert {usage.key.container_id for usage in result.containers} == {
        CRIO_CONTAINER_ID,
        "f1a68c843d704f806f91d0d9d6d44d61a364aff565130e2c7a51046a9ff57719",
    }
    assert result.runtime_overhead[RuntimeHelper("cri-o", "conmon")].processes == 1
    assert result.runtime_overhead[RuntimeHelper("cri-o", "daemon")].processes == 1
    assert result.host_processes == {}, "sleep runs in a container's nested subgroup"


def test_crio_nested_container_subgroup_is_read_at_its_scope(tmp_path: Path) -> None:
    tree = copy_tree(V2_CRIO, tmp_path / "cgroup")
    scope = tree / CRIO_SCOPE.lstrip("/")
    (scope / "cgroup.procs").write_text("")
    (scope / "container" / "cgroup.procs").write_text("1300\n1301\n")
    result = scan(cgroup_root=tree, proc_root=minimal_proc(tmp_path / "proc"))
    usage = container(result, ContainerKey(CRIO_POD_UID, CRIO_CONTAINER_ID))
    assert usage.cgroup_path == CRIO_SCOPE, "the scope, not its container subgroup"
    expected = read_cgroup_stats(tree, CRIO_SCOPE, "v2")
    assert usage.stats == expected
    assert usage.processes == 2, "processes of the nested subgroup count for the container"
    assert usage.runtime == "cri-o"
    tree_found = discover_cgroups(tree, "v2")
    crio = next(c for c in tree_found.containers() if c.key.container_id == CRIO_CONTAINER_ID)
    assert crio.member_paths == (CRIO_SCOPE, f"{CRIO_SCOPE}/container")


def test_a_process_that_exits_mid_scan_is_counted_and_skipped() -> None:
    result = scan()
    assert result.errors[(COLLECTOR_PROCESSES, REASON_VANISHED)] == 1, "pid 4242 left only stat"
    assert "curl" not in result.host_processes


def test_an_unreadable_process_file_is_counted_and_the_scan_goes_on(tmp_path: Path) -> None:
    proc = copy_tree(NODE_PROC, tmp_path / "proc")
    # A cgroup file that cannot be read (EISDIR here; EACCES under hidepid).
    (proc / "1" / "cgroup").unlink()
    (proc / "1" / "cgroup").mkdir()
    result = scan(proc_root=proc)
    assert result.errors[(COLLECTOR_PROCESSES, REASON_IO_ERROR)] == 1
    assert result.node_cpu is not None
    # The scan of /proc stopped at pid 1, so the pause process of the pod no object
    # describes was not seen and its sandbox is reported; known pods are unaffected.
    assert {usage.key for usage in result.containers} == {
        LEDGER,
        APP,
        METRICS,
        ETCD,
        CART,
        DEBUG,
        WORKER,
        WORKER_SANDBOX,
    }


def test_a_malformed_process_file_is_counted_and_skipped(tmp_path: Path) -> None:
    proc = copy_tree(NODE_PROC, tmp_path / "proc")
    (proc / "700" / "stat").write_text("700 kubelet S 1\n")
    result = scan(proc_root=proc)
    assert result.errors[(COLLECTOR_PROCESSES, REASON_PARSE_ERROR)] == 1
    assert "kubelet" not in result.host_processes
    assert "systemd" in result.host_processes


def test_psi_absent_is_none_and_no_error(tmp_path: Path) -> None:
    result = scan(cgroup_root=V2_CRIO, proc_root=minimal_proc(tmp_path / "proc"))
    assert result.pressure is None
    assert result.containers
    for usage in result.containers:
        assert usage.stats.cpu_pressure is None
        assert usage.stats.memory_pressure is None
        assert usage.stats.io_pressure is None
    assert only_churn(result), result.errors


def test_a_malformed_cgroup_file_is_counted_and_the_scan_goes_on(tmp_path: Path) -> None:
    tree = copy_tree(NODE_CGROUP, tmp_path / "cgroup")
    (tree / APP_PATH.lstrip("/") / "memory.stat").write_text("anon twelve\n")
    result = scan(cgroup_root=tree)
    assert result.errors[(COLLECTOR_CGROUPS, REASON_PARSE_ERROR)] == 1
    keys = {usage.key for usage in result.containers}
    assert APP not in keys
    assert {METRICS, LEDGER, ETCD, CART, DEBUG, WORKER} <= keys
    assert len(result.pods) == 6


def test_an_unreadable_cgroup_file_is_counted(tmp_path: Path) -> None:
    tree = copy_tree(NODE_CGROUP, tmp_path / "cgroup")
    procs = tree / APP_PATH.lstrip("/") / "cgroup.procs"
    procs.unlink()
    procs.mkdir()
    result = scan(cgroup_root=tree)
    assert result.errors[(COLLECTOR_CGROUPS, REASON_IO_ERROR)] >= 1
    app = container(result, APP)
    assert app.processes is None, "counts are dropped, the stats are kept"
    assert app.stats.cpu_usage_seconds is not None


def test_an_unusable_cgroup_root_still_scans_processes_and_the_node(tmp_path: Path) -> None:
    empty = tmp_path / "not-cgroupfs"
    empty.mkdir()
    result = scan(cgroup_root=empty)
    assert result.cgroup_mode is None
    assert result.cgroup_tree is None
    assert result.containers == ()
    assert result.pods == ()
    assert result.errors[(COLLECTOR_CGROUPS, REASON_NOT_FOUND)] == 1
    assert result.node_cpu is not None
    assert "kubelet" in result.host_processes


def test_unreadable_node_files_are_counted(tmp_path: Path) -> None:
    proc = minimal_proc(tmp_path / "proc")
    (proc / "stat").unlink()
    (proc / "meminfo").write_text("MemFree: 12 kB\n")
    result = scan(proc_root=proc)
    assert result.node_cpu is None
    assert result.memory is None
    assert result.errors[(COLLECTOR_NODE, REASON_NOT_FOUND)] == 1
    assert result.errors[(COLLECTOR_NODE, REASON_PARSE_ERROR)] == 1
    assert result.containers, "the cgroup part is still read"


# ---------------------------------------------------------------- processes and the node


def test_runtime_overhead_and_host_groups() -> None:
    result = scan()
    daemon = result.runtime_overhead[RuntimeHelper("containerd", "daemon")]
    assert daemon.processes == 2, "containerd and the runc it runs in containerd.service"
    assert daemon.cpu_seconds == pytest.approx((91234 + 21000 + 3 + 2) / TICKS)
    shim = result.runtime_overhead[RuntimeHelper("containerd", "shim")]
    assert (shim.processes, shim.threads) == (2, 23)
    assert shim.rss_bytes == (3328 + 3072) * PAGE
    assert set(result.host_processes) == {
        "systemd",
        "systemd-journal",
        "sshd",
        "kubelet",
        "chronyd",
    }, "no kernel threads, no pod processes, no runtime processes"
    sshd = result.host_processes["sshd"]
    assert sshd.processes == 2
    assert len(sshd.cpu_seconds_by_process) == 2


def test_node_files() -> None:
    result = scan()
    assert result.node_cpu is not None
    assert result.node_cpu.seconds_by_mode["user"] == pytest.approx(101321.53)
    assert result.memory is not None
    assert result.memory.total_bytes == 16318480 * 1024
    assert result.pressure is not None
    assert result.pressure.memory is not None
    assert result.ephemeral_storage is None
    assert set(result.stage_seconds) == {COLLECTOR_CGROUPS, COLLECTOR_PROCESSES, COLLECTOR_NODE}


def test_ephemeral_storage_is_read_from_the_kubelet_root(tmp_path: Path) -> None:
    stat = os.statvfs(tmp_path)
    result = scan(kubelet_root=tmp_path)
    storage = result.ephemeral_storage
    assert storage is not None
    assert storage.capacity_bytes == stat.f_blocks * stat.f_frsize
    assert 0 <= storage.available_bytes <= storage.capacity_bytes
    assert 0 <= storage.used_bytes <= storage.capacity_bytes
    assert scan(kubelet_root=tmp_path / "missing").ephemeral_storage is None


def test_the_runtime_comes_from_the_daemons_when_cgroups_cannot_tell(tmp_path: Path) -> None:
    proc = minimal_proc(
        tmp_path / "proc",
        [
            (800, "containerd", "/system.slice/containerd.service"),
            (900, "dockerd", "/system.slice/docker.service"),
        ],
    )
    result = scan(cgroup_root=V1, proc_root=proc, index=local_index())
    assert result.runtime == "docker", "cgroupfs-driver names say nothing; dockerd wins"
    assert {usage.runtime for usage in result.containers} == {"docker"}


@pytest.mark.parametrize(
    ("tree", "mode", "containers", "has_psi"),
    [
        pytest.param(CGROUP_TREES / "v2-systemd-containerd", "v2", 3, True, id="v2"),
        pytest.param(V2_CRIO, "v2", 2, False, id="v2-crio"),
        pytest.param(V1, "v1", 2, False, id="v1"),
        pytest.param(HYBRID, "hybrid", 1, True, id="hybrid"),
    ],
)
def test_every_layout_scans_cleanly(
    tree: Path, mode: str, containers: int, has_psi: bool, tmp_path: Path
) -> None:
    result = scan(
        cgroup_root=tree, proc_root=minimal_proc(tmp_path / "proc"), index=cluster_index()
    )
    assert result.cgroup_mode == mode
    assert len(result.containers) == containers
    assert only_churn(result), result.errors
    assert any(usage.stats.cpu_pressure is not None for usage in result.containers) == has_psi


# ---------------------------------------------------------------- the cgroup walk and the sampler


def test_discover_cgroups_finds_pods_and_containers_with_their_members() -> None:
    tree = discover_cgroups(NODE_CGROUP, "v2")
    assert len(tree.pods) == 6
    assert len(list(tree.containers())) == 13, "seven containers and six sandboxes"
    storefront = next(pod for pod in tree.pods if pod.identity.pod_uid == STOREFRONT_UID)
    assert storefront.member_paths[0] == STOREFRONT_SLICE
    assert len(storefront.member_paths) == 4
    assert tree.walk_errors == {}


def test_discover_cgroups_without_a_hierarchy_raises(tmp_path: Path) -> None:
    with pytest.raises(CgroupRootError, match="mount"):
        discover_cgroups(tmp_path, "v1")


def test_sample_containers_reads_cpu_and_working_set() -> None:
    tree = discover_cgroups(NODE_CGROUP, "v2")
    samples = sample_containers(tree, skip=frozenset({STOREFRONT_SANDBOX}))
    app = samples.samples[APP]
    assert app.cpu_usage_seconds == pytest.approx(8123.456789)
    assert app.working_set_bytes == 398458880 - 50331648
    assert samples.samples[METRICS].working_set_bytes == 0, "inactive_file equals usage"
    assert STOREFRONT_SANDBOX not in samples.samples
    assert len(samples.samples) == 12
    assert samples.vanished == frozenset()
    assert samples.errors == {}


def test_sample_containers_on_v1_matches_the_full_read() -> None:
    tree = discover_cgroups(V1, "v1")
    samples = sample_containers(tree)
    for cgroup in tree.containers():
        full = read_cgroup_stats(V1, cgroup.path, "v1")
        assert full is not None
        sample = samples.samples[cgroup.key]
        assert sample.cpu_usage_seconds == pytest.approx(full.cpu_usage_seconds)
        assert sample.working_set_bytes == full.working_set_bytes


def test_sample_containers_reports_vanished_and_malformed(tmp_path: Path) -> None:
    tree_root = copy_tree(NODE_CGROUP, tmp_path / "cgroup")
    tree = discover_cgroups(tree_root, "v2")
    shutil.rmtree(tree_root / APP_PATH.lstrip("/"))
    metrics_path = f"{STOREFRONT_SLICE}/cri-containerd-{METRICS.container_id}.scope"
    (tree_root / metrics_path.lstrip("/") / "memory.stat").write_text("inactive_file lots\n")
    samples = sample_containers(tree)
    assert samples.vanished == {APP}
    assert METRICS not in samples.samples
    assert samples.errors == {REASON_PARSE_ERROR: 1}

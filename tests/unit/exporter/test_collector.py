"""ExporterCollector's real exposition output on the committed fake nodes.

Every test registers the collector in its own CollectorRegistry, renders it with
prometheus_client's generate_latest and parses the text back with
text_string_to_metric_families, so what is checked is what Prometheus would scrape. The
sampler is driven by calling sample_once with explicit monotonic times; only the thread
test starts the real thread.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.collector import (
    COLLECTORS,
    ExporterCollector,
    HostProcessAccounting,
    ProcessCpuAccounting,
    SampledHistogram,
)
from exporter.metadata import ClusterView, LocalMetadata, MetadataMode, MetadataSource
from exporter.scan import ProcessGroupUsage, ProcessKey
from kubepulse import catalog
from kubepulse.errors import KubepulseValueError
from kubepulse.model import Node, Pod

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
NODE = FIXTURES / "node-scan"
CGROUP_TREES = FIXTURES / "cgroup"
NODE_NAME = "worker-1"

STOREFRONT = "storefront-5f7b8c9d4-q7lmn"
STOREFRONT_UID = "b46bd9c9-f018-48ec-97b9-722e1f463eae"
STOREFRONT_SLICE = (
    "kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-podb46bd9c9_f018_48ec_97b9_722e1f463eae.slice"
)
APP_ID = "f09d4f5e2efb518df02a009eea6623150a1876770c23b86035e04375a7df7242"
APP_DIR = f"{STOREFRONT_SLICE}/cri-containerd-{APP_ID}.scope"
SANDBOX_IDS = (
    "5df5514276994b7b53886ec5b0cc65b0a7d3bde459a1068630df2362d7b3c641",
    "ef0d1e66210d7e53301f85444a421ce949f7379138ee78ab79d445809ae5b335",
    "3c0fa4ad5e0c0ee34e9b3cd1c6a1ad1ea8b2f3d1d7a4e5b6c7d8e9f0a1b2c3d4",
    "1e2d3c4b5a6978695a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f",
    "7b" * 32,
)
ETCD_MIRROR_UID = "228b5681-c56a-410b-b9bf-6adbf21d3fbd"
UNKNOWN_UID = "5e1f3c2a-7d4b-4c8e-9f01-23456789abcd"
WORKER_ID = "7a" * 32
POD_OBJECTS = (
    "pod-guaranteed",
    "pod-burstable-sidecars",
    "pod-static-mirror",
    "pod-oomkilled",
    "pod-besteffort",
)

Labels = frozenset[tuple[str, str]]


# ---------------------------------------------------------------- helpers


def load_pod(name: str) -> Pod:
    return Pod.from_api(json.loads((FIXTURES / "objects" / f"{name}.json").read_text()))


def load_node() -> Node:
    return Node.from_api(json.loads((FIXTURES / "objects" / "node-worker.json").read_text()))


class StaticMetadata:
    """A metadata source whose view a test replaces at will; counts reads."""

    def __init__(self, view: ClusterView) -> None:
        self.view = view
        self.reads = 0

    def current(self) -> ClusterView:
        self.reads += 1
        return self.view


class FailingMetadata:
    def current(self) -> ClusterView:
        raise RuntimeError("the source broke")


def cluster_metadata(*names: str, errors: Mapping[str, int] | None = None) -> StaticMetadata:
    pods = [load_pod(name) for name in (names or POD_OBJECTS)]
    return StaticMetadata(
        ClusterView(
            mode=MetadataMode.CLUSTER,
            pods={str(pod.uid): pod for pod in pods},
            node=load_node(),
            synced=True,
            errors=dict(errors or {}),
        )
    )


def make_collector(
    metadata: MetadataSource | None = None,
    *,
    cgroup_root: Path = NODE / "cgroup",
    proc_root: Path = NODE / "proc",
    sample_interval_seconds: float = 1.0,
    top_host_processes: int = 10,
    max_series: int = 50_000,
) -> tuple[ExporterCollector, CollectorRegistry]:
    collector = ExporterCollector(
        node_name=NODE_NAME,
        metadata=metadata if metadata is not None else cluster_metadata(),
        proc_root=str(proc_root),
        cgroup_root=str(cgroup_root),
        sample_interval_seconds=sample_interval_seconds,
        top_host_processes=top_host_processes,
        max_series=max_series,
    )
    registry = CollectorRegistry()
    registry.register(collector)
    return collector, registry


class Exposition:
    """A parsed scrape: samples by name and label set."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        self.samples: dict[tuple[str, Labels], float] = {}
        for family in self.families.values():
            for sample in family.samples:
                key = (sample.name, frozenset(sample.labels.items()))
                assert key not in self.samples, f"duplicate series {key}"
                self.samples[key] = sample.value

    def series(self, name: str, **labels: str) -> dict[Labels, float]:
        """Samples of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return {
            sample_labels: value
            for (sample_name, sample_labels), value in self.samples.items()
            if sample_name == name and wanted <= sample_labels
        }

    def value(self, name: str, **labels: str) -> float:
        found = self.series(name, **labels)
        assert len(found) == 1, f"{name}{labels}: {len(found)} series"
        return next(iter(found.values()))

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(labels)[label] for labels in self.series(name)}


def scrape(registry: CollectorRegistry) -> Exposition:
    return Exposition(generate_latest(registry).decode())


def node_copy(tmp_path: Path) -> tuple[Path, Path]:
    cgroup = Path(shutil.copytree(NODE / "cgroup", tmp_path / "cgroup"))
    proc = Path(shutil.copytree(NODE / "proc", tmp_path / "proc"))
    return cgroup, proc


def set_cpu_usage(cgroup_dir: Path, usage_usec: int) -> None:
    cpu_stat = cgroup_dir / "cpu.stat"
    lines = cpu_stat.read_text().splitlines()
    lines[0] = f"usage_usec {usage_usec}"
    cpu_stat.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------- the protocol


def test_registering_does_not_collect_and_describe_is_empty() -> None:
    metadata = cluster_metadata()
    collector, _ = make_collector(metadata)
    assert collector.describe() == []
    assert metadata.reads == 0


def test_every_family_is_published_as_the_catalog_defines_it() -> None:
    collector, registry = make_collector()
    collector.sample_once(0.0)
    collector.sample_once(1.0)
    exposition = scrape(registry)
    published = set()
    for family in exposition.families.values():
        spec = catalog.get(family.name if family.type != "counter" else f"{family.name}_total")
        published.add(spec.name)
        assert family.type == spec.type.value
        assert family.documentation == spec.help
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == set(spec.labels), sample
            assert sample.labels["node"] == NODE_NAME
    # Everything the fixture node can fill is there; ephemeral storage needs a kubelet root.
    unfilled = {
        name for name in catalog.names() if name.startswith("kubepulse_node_ephemeral_storage_")
    }
    assert published == set(catalog.names()) - unfilled


def test_series_counts_add_up_to_the_exposition() -> None:
    collector, registry = make_collector()
    collector.sample_once(0.0)
    exposition = scrape(registry)
    counted = exposition.series("kubepulse_exporter_series")
    assert {dict(labels)["collector"] for labels in counted} == set(COLLECTORS)
    assert sum(counted.values()) == len(exposition.samples)


# ---------------------------------------------------------------- labels


def test_containers_of_known_pods_carry_names_and_the_pod_uid() -> None:
    _, registry = make_collector()
    exposition = scrape(registry)
    app = exposition.value(
        "kubepulse_container_cpu_usage_seconds_total",
        namespace="shop",
        pod=STOREFRONT,
        container="app",
        pod_uid=STOREFRONT_UID,
    )
    assert app == pytest.approx(8123.456789)
    info = exposition.series("kubepulse_container_info", container="app")
    assert set(next(iter(info))) >= {
        ("container_id", f"containerd://{APP_ID}"),
        ("image", "registry.example.com/shop/storefront:2.8.0"),
        ("runtime", "containerd"),
    }
    # A static pod is labelled with its mirror pod's UID, not the config hash.
    assert exposition.series(
        "kubepulse_container_memory_working_set_bytes",
        pod="etcd-cp-1",
        container="etcd",
        pod_uid=ETCD_MIRROR_UID,
    )
    assert exposition.label_values("kubepulse_container_info", "container") == {
        "ledger",
        "app",
        "metrics",
        "etcd",
        "cart",
        "debug-shell",
        WORKER_ID,
    }


def test_local_mode_labels_by_pod_uid_and_container_id() -> None:
    _, registry = make_collector(LocalMetadata())
    exposition = scrape(registry)
    worker = exposition.series("kubepulse_container_cpu_usage_seconds_total", container=WORKER_ID)
    assert set(next(iter(worker))) == {
        ("namespace", ""),
        ("pod", UNKNOWN_UID),
        ("container", WORKER_ID),
        ("node", NODE_NAME),
        ("pod_uid", UNKNOWN_UID),
    }
    assert exposition.value(
        "kubepulse_pod_qos_class_info", pod=UNKNOWN_UID, qos_class="Burstable"
    ) == (1.0)
    assert exposition.value("kubepulse_pod_qos_class_info", qos_class="Guaranteed") == 1.0
    for name in (
        "kubepulse_container_resource_requests",
        "kubepulse_pod_resource_requests",
        "kubepulse_container_restarts_total",
        "kubepulse_node_status_capacity",
        "kubepulse_node_pods",
    ):
        assert not exposition.series(name), f"{name} needs pod or Node objects"
    assert exposition.label_values("kubepulse_container_info", "namespace") == {""}


def test_the_pause_container_is_never_a_container_series() -> None:
    for metadata in (cluster_metadata(), LocalMetadata()):
        _, registry = make_collector(metadata)
        text = scrape(registry).text
        for sandbox_id in SANDBOX_IDS:
            assert sandbox_id not in text


def test_pod_series_are_read_from_the_pod_cgroup() -> None:
    _, registry = make_collector()
    exposition = scrape(registry)
    pod_cpu = exposition.value("kubepulse_pod_cpu_usage_seconds_total", pod=STOREFRONT)
    containers_cpu = sum(
        exposition.series("kubepulse_container_cpu_usage_seconds_total", pod=STOREFRONT).values()
    )
    assert pod_cpu == pytest.approx(8124.989289), "the pod cgroup's own figure"
    assert pod_cpu - containers_cpu == pytest.approx(0.0325), "pause and pod-level overhead"
    assert exposition.value("kubepulse_pod_processes", pod=STOREFRONT) == 4


# ---------------------------------------------------------------- values and pitfalls


def test_no_limit_is_an_absent_series() -> None:
    _, registry = make_collector()
    exposition = scrape(registry)
    limits = exposition.series("kubepulse_container_memory_limit_bytes")
    assert {dict(labels)["container"] for labels in limits} == {"ledger", "app", "metrics", "cart"}
    assert exposition.label_values("kubepulse_container_cpu_limit_cores", "container") == {
        "ledger",
        "app",
    }
    # Spec limits: absent where the spec sets none, and the pod's when any container lacks one.
    assert not exposition.series(
        "kubepulse_container_resource_limits", container="metrics", resource="cpu"
    )
    assert not exposition.series("kubepulse_pod_resource_limits", pod=STOREFRONT, resource="cpu")
    assert (
        exposition.value("kubepulse_pod_resource_limits_missing", pod=STOREFRONT, resource="cpu")
        == 1.0
    )


def test_the_v1_sentinel_is_no_limit(tmp_path: Path) -> None:
    _, registry = make_collector(LocalMetadata(), cgroup_root=CGROUP_TREES / "v1-cgroupfs-docker")
    exposition = scrape(registry)
    limits = exposition.series("kubepulse_container_memory_limit_bytes")
    assert list(limits.values()) == [256 * 1024**2], "only the sidecar has a memory limit"
    assert exposition.value("kubepulse_exporter_info", cgroup_version="1") == 1.0


def test_oom_kills_from_the_cgroup_and_from_the_pod_status() -> None:
    _, registry = make_collector()
    exposition = scrape(registry)
    assert exposition.value("kubepulse_container_oom_kills_total", container="app") == 2
    assert exposition.value("kubepulse_container_oom_kills_total", container="cart") == 1
    assert exposition.value("kubepulse_pod_oom_kills_total", pod=STOREFRONT) == 2
    assert (
        exposition.value(
            "kubepulse_container_last_terminated_reason", container="cart", reason="OOMKilled"
        )
        == 1.0
    )
    assert exposition.value("kubepulse_container_restarts_total", container="cart") == 4
    assert exposition.value(
        "kubepulse_container_last_terminated_timestamp_seconds", container="cart"
    ) == pytest.approx(1793529666.0)


def test_requests_limits_and_node_objects() -> None:
    _, registry = make_collector()
    exposition = scrape(registry)
    assert (
        exposition.value(
            "kubepulse_container_resource_requests",
            container="app",
            resource="cpu",
            unit="core",
        )
        == 0.5
    )
    assert exposition.value(
        "kubepulse_container_resource_requests", container="ledger", resource="memory", unit="byte"
    ) == (4 * 1024**3)
    assert exposition.value(
        "kubepulse_pod_resource_requests", pod="ledger-0", resource="cpu", unit="core"
    ) == (2.0)
    assert exposition.value("kubepulse_node_status_capacity", resource="pods", unit="integer") == (
        110.0
    )
    assert exposition.value(
        "kubepulse_node_status_allocatable", resource="cpu", unit="core"
    ) == pytest.approx(7.91)
    assert exposition.value("kubepulse_node_pods") == 5
    assert exposition.value("kubepulse_pod_qos_class_info", pod="ledger-0") == 1.0


def test_psi_absent_means_no_pressure_series_and_no_error(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    for name in ("stat", "meminfo"):
        shutil.copy(NODE / "proc" / name, proc / name)
    _, registry = make_collector(
        LocalMetadata(), cgroup_root=CGROUP_TREES / "v2-crio", proc_root=proc
    )
    exposition = scrape(registry)
    assert exposition.series("kubepulse_container_cpu_usage_seconds_total")
    assert not [name for name, _ in exposition.samples if "_pressure_" in name]
    assert not exposition.series("kubepulse_exporter_errors_total")


def test_a_malformed_cgroup_file_is_an_error_and_the_rest_is_published(tmp_path: Path) -> None:
    cgroup, proc = node_copy(tmp_path)
    (cgroup / APP_DIR / "cpu.stat").write_text("usage_usec lots\n")
    collector, registry = make_collector(cgroup_root=cgroup, proc_root=proc)
    exposition = scrape(registry)
    assert (
        exposition.value(
            "kubepulse_exporter_errors_total", collector="cgroups", reason="parse_error"
        )
        == 1
    )
    assert not exposition.series("kubepulse_container_cpu_usage_seconds_total", container="app")
    assert exposition.series("kubepulse_container_cpu_usage_seconds_total", container="metrics")
    assert not exposition.series(
        "kubepulse_exporter_last_success_timestamp_seconds", collector="cgroups"
    )
    assert exposition.series(
        "kubepulse_exporter_last_success_timestamp_seconds", collector="processes"
    ), "a process that vanished is churn, not a failure"
    assert collector.last_scan_ok(), "one bad file does not make the exporter unhealthy"


def test_a_scrape_survives_a_failing_metadata_source() -> None:
    _, registry = make_collector(FailingMetadata())
    exposition = scrape(registry)
    assert (
        exposition.value("kubepulse_exporter_errors_total", collector="pods", reason="internal")
        == 1
    )
    assert exposition.series("kubepulse_container_cpu_usage_seconds_total")


def test_the_metadata_sources_errors_are_published_under_pods() -> None:
    _, registry = make_collector(cluster_metadata(errors={"watch": 3, "gone": 1}))
    exposition = scrape(registry)
    assert (
        exposition.value("kubepulse_exporter_errors_total", collector="pods", reason="watch") == 3
    )
    assert exposition.value("kubepulse_exporter_errors_total", collector="pods", reason="gone") == 1
    # Cumulative counts from the source are published as they are, not added up again.
    assert exposition.value("kubepulse_exporter_errors_total", reason="watch") == 3


def test_an_unusable_cgroup_root_makes_the_exporter_unhealthy(tmp_path: Path) -> None:
    collector, registry = make_collector(LocalMetadata(), cgroup_root=tmp_path)
    assert not collector.last_scan_ok()
    exposition = scrape(registry)
    assert (
        exposition.value("kubepulse_exporter_errors_total", collector="cgroups", reason="not_found")
        == 1
    )
    assert exposition.series("kubepulse_node_cpu_seconds_total"), "the node is still reported"
    assert exposition.value("kubepulse_exporter_info", cgroup_version="") == 1.0
    healthy, _ = make_collector(LocalMetadata())
    assert healthy.last_scan_ok()


def test_ephemeral_storage_comes_from_the_kubelet_root_next_to_proc(tmp_path: Path) -> None:
    _, proc = node_copy(tmp_path)
    (tmp_path / "var" / "lib" / "kubelet").mkdir(parents=True)
    _, registry = make_collector(proc_root=proc)
    exposition = scrape(registry)
    capacity = exposition.value("kubepulse_node_ephemeral_storage_capacity_bytes")
    assert capacity > 0
    assert exposition.value("kubepulse_node_ephemeral_storage_used_bytes") <= capacity


# ---------------------------------------------------------------- processes


def test_host_processes_are_folded_to_the_top_n() -> None:
    _, registry = make_collector(top_host_processes=2)
    exposition = scrape(registry)
    assert exposition.label_values("kubepulse_host_processes", "group") == {
        "kubelet",
        "systemd",
        "other",
    }
    assert exposition.value("kubepulse_host_process_groups_folded") == 3
    assert exposition.value("kubepulse_host_processes", group="other") == 4
    assert exposition.value(
        "kubepulse_host_process_cpu_usage_seconds_total", group="kubelet"
    ) == pytest.approx(3300.0)
    assert exposition.value(
        "kubepulse_node_runtime_processes", runtime="containerd", component="shim"
    ) == (2)


def test_process_counters_accumulate_deltas_and_never_go_back(tmp_path: Path) -> None:
    _, proc = node_copy(tmp_path)
    _, registry = make_collector(proc_root=proc, top_host_processes=1)
    first = scrape(registry)
    kubelet_stat = proc / "700" / "stat"
    fields = kubelet_stat.read_text().split(" ")
    fields[13] = str(int(fields[13]) + 500)  # utime: 5 more seconds
    kubelet_stat.write_text(" ".join(fields))
    shutil.rmtree(proc / "1")  # systemd's CPU stays counted in "other"
    shutil.rmtree(proc / "812")  # containerd's CPU stays counted in the daemon's counter
    second = scrape(registry)
    name = "kubepulse_host_process_cpu_usage_seconds_total"
    assert second.value(name, group="kubelet") == pytest.approx(
        first.value(name, group="kubelet") + 5
    )
    assert second.value(name, group="other") == pytest.approx(first.value(name, group="other"))
    runtime = "kubepulse_node_runtime_cpu_usage_seconds_total"
    assert second.value(runtime, component="daemon") == pytest.approx(
        first.value(runtime, component="daemon")
    )
    assert second.value("kubepulse_node_runtime_processes", component="daemon") == 1


def test_a_group_leaving_the_top_n_keeps_every_counter_monotonic() -> None:
    accounting = HostProcessAccounting(top_n=1)

    def group(cpu_by_pid: dict[int, float]) -> ProcessGroupUsage:
        return ProcessGroupUsage(
            processes=len(cpu_by_pid),
            threads=len(cpu_by_pid),
            rss_bytes=0,
            cpu_seconds_by_process={ProcessKey(pid, 0.0): cpu for pid, cpu in cpu_by_pid.items()},
        )

    first = accounting.add_scan({"a": group({1: 10.0}), "b": group({2: 4.0})})
    assert first.groups["a"].cpu_seconds_total == 10.0
    assert first.groups["other"].cpu_seconds_total == 4.0
    # b overtakes a: b's new CPU now goes to b, a's to other; nothing decreases.
    second = accounting.add_scan({"a": group({1: 11.0}), "b": group({2: 20.0})})
    assert set(second.groups) == {"b", "other"}
    assert second.groups["b"].cpu_seconds_total == 16.0
    assert second.groups["other"].cpu_seconds_total == 5.0
    assert second.folded_groups == 1
    total = sum(g.cpu_seconds_total for g in second.groups.values()) + 10.0  # a's shown time
    assert total == pytest.approx(31.0), "published counters add up to all CPU, once"


def test_process_cpu_accounting_charges_new_processes_in_full() -> None:
    accounting: ProcessCpuAccounting[str] = ProcessCpuAccounting()
    usage = ProcessGroupUsage(1, 1, 0, {ProcessKey(7, 1.0): 3.0})
    assert accounting.add_scan({"g": usage}) == {"g": 3.0}
    assert accounting.add_scan({"g": replace(usage, cpu_seconds_by_process={})}) == {"g": 0.0}
    reused_pid = ProcessGroupUsage(1, 1, 0, {ProcessKey(7, 99.0): 0.5})
    assert accounting.add_scan({"g": reused_pid}) == {"g": 0.5}


# ---------------------------------------------------------------- the sampler


def test_the_sampler_observes_cores_and_working_set(tmp_path: Path) -> None:
    cgroup, proc = node_copy(tmp_path)
    collector, registry = make_collector(cgroup_root=cgroup, proc_root=proc)
    scrape(registry)  # the sampler reuses this collection's tree
    app_dir = cgroup / APP_DIR
    base = 8123456789
    collector.sample_once(100.0)
    set_cpu_usage(app_dir, base + 500_000)  # 0.5 s of CPU in 1 s
    collector.sample_once(101.0)
    set_cpu_usage(app_dir, base + 6_500_000)  # 6 s of CPU in 2 s: 3 cores
    (app_dir / "memory.current").write_text(f"{3 * 1024**3}\n")
    collector.sample_once(103.0)
    exposition = scrape(registry)
    cores = "kubepulse_container_sampled_cpu_usage_cores"
    assert exposition.value(f"{cores}_count", container="app") == 2
    assert exposition.value(f"{cores}_sum", container="app") == pytest.approx(3.5)
    assert exposition.value(f"{cores}_bucket", container="app", le="0.25") == 0
    assert exposition.value(f"{cores}_bucket", container="app", le="0.5") == 1
    assert exposition.value(f"{cores}_bucket", container="app", le="2.0") == 1
    assert exposition.value(f"{cores}_bucket", container="app", le="4.0") == 2
    assert exposition.value(f"{cores}_bucket", container="app", le="+Inf") == 2
    memory = "kubepulse_container_sampled_memory_working_set_bytes"
    assert exposition.value(f"{memory}_count", container="app") == 3
    assert exposition.value(f"{memory}_bucket", container="app", le="5.36870912e+08") == 2
    assert exposition.value(f"{memory}_bucket", container="app", le="4.294967296e+09") == 3
    # Sandboxes are neither sampled nor published.
    assert not exposition.series(f"{memory}_count", container=SANDBOX_IDS[1])


def test_a_deleted_pods_series_and_histograms_disappear(tmp_path: Path) -> None:
    cgroup, proc = node_copy(tmp_path)
    metadata = cluster_metadata()
    collector, registry = make_collector(metadata, cgroup_root=cgroup, proc_root=proc)
    scrape(registry)
    collector.sample_once(1.0)
    collector.sample_once(2.0)
    before = scrape(registry)
    assert before.series("kubepulse_container_sampled_cpu_usage_cores_count", pod=STOREFRONT)
    assert before.series("kubepulse_pod_cpu_usage_seconds_total", pod=STOREFRONT)

    shutil.rmtree(cgroup / STOREFRONT_SLICE)
    collector.sample_once(3.0)  # the sampler notices the cgroup is gone
    during = scrape(registry)
    assert not [labels for (_, labels) in during.samples if ("pod_uid", STOREFRONT_UID) in labels]
    # The pod object is still there until the API server deletes it.
    assert during.series("kubepulse_pod_qos_class_info", pod=STOREFRONT)

    pods = {uid: pod for uid, pod in metadata.view.pods.items() if uid != STOREFRONT_UID}
    metadata.view = replace(metadata.view, pods=pods)
    after = scrape(registry)
    assert STOREFRONT not in after.text
    assert after.series("kubepulse_pod_cpu_usage_seconds_total", pod="ledger-0")
    assert after.series("kubepulse_container_sampled_cpu_usage_cores_count", pod="ledger-0")


def test_the_sampler_finds_containers_started_between_scrapes(tmp_path: Path) -> None:
    cgroup, proc = node_copy(tmp_path)
    collector, registry = make_collector(LocalMetadata(), cgroup_root=cgroup, proc_root=proc)
    scrape(registry)
    new_id = "9f" * 32
    shutil.copytree(cgroup / APP_DIR, cgroup / STOREFRONT_SLICE / f"cri-containerd-{new_id}.scope")
    for step in range(12):
        collector.sample_once(float(step))
    exposition = scrape(registry)
    assert exposition.series(
        "kubepulse_container_sampled_memory_working_set_bytes_count", container=new_id
    )


def test_the_sampler_thread_starts_and_stops_promptly() -> None:
    collector, registry = make_collector(sample_interval_seconds=0.01)
    collector.start()
    collector.start()  # a second start does nothing
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        exposition = scrape(registry)
        if (
            exposition.series(
                "kubepulse_exporter_collection_duration_seconds_count", collector="sampler"
            )
            and exposition.value(
                "kubepulse_exporter_collection_duration_seconds_count", collector="sampler"
            )
            >= 3
        ):
            break
        time.sleep(0.01)
    else:
        pytest.fail("the sampler thread did not sample three times in 5 seconds")
    started = time.monotonic()
    collector.stop()
    assert time.monotonic() - started < 1
    assert not [thread for thread in threading.enumerate() if thread.name == "kubepulse-sampler"]
    collector.stop()  # stopping twice is harmless


# ---------------------------------------------------------------- cardinality


def test_max_series_drops_host_processes_first_and_counts_it() -> None:
    _, registry = make_collector()
    full = scrape(registry)
    limit = len(full.samples) - 1
    limited, registry = make_collector(max_series=limit)
    exposition = scrape(registry)
    assert len(exposition.samples) <= limit
    assert not [name for name, _ in exposition.samples if name.startswith("kubepulse_host_")]
    for name in (
        "kubepulse_node_cpu_seconds_total",
        "kubepulse_node_runtime_processes",
        "kubepulse_pod_cpu_usage_seconds_total",
        "kubepulse_container_cpu_usage_seconds_total",
        "kubepulse_container_memory_working_set_bytes",
        "kubepulse_container_resource_requests",
    ):
        assert exposition.series(name) == full.series(name), f"{name} is kept whole"
    assert (
        exposition.value(
            "kubepulse_exporter_errors_total", collector="processes", reason="series_limit"
        )
        == 4
    ), "one per dropped host-process family"
    assert sum(exposition.series("kubepulse_exporter_series").values()) == len(exposition.samples)
    assert limited.last_scan_ok()


def test_a_tiny_max_series_keeps_only_the_exporters_own_series() -> None:
    _, registry = make_collector(max_series=10)
    exposition = scrape(registry)
    assert {name for name, _ in exposition.samples} <= {
        sample for spec in catalog.by_scope(catalog.Scope.EXPORTER) for sample in spec.sample_names
    }
    assert exposition.series("kubepulse_exporter_errors_total", reason="series_limit")


# ---------------------------------------------------------------- settings and pieces


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"sample_interval_seconds": 0}, "sample_interval_seconds", id="interval"),
        pytest.param(
            {"sample_interval_seconds": float("nan")}, "sample_interval_seconds", id="nan"
        ),
        pytest.param({"top_host_processes": -1}, "top_host_processes", id="top-n"),
        pytest.param({"max_series": -5}, "max_series", id="max-series"),
    ],
)
def test_settings_out_of_range_are_rejected(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(KubepulseValueError, match=message):
        make_collector(LocalMetadata(), **settings)


def test_an_empty_node_name_is_rejected() -> None:
    with pytest.raises(KubepulseValueError, match="node_name"):
        ExporterCollector(node_name="", metadata=LocalMetadata())


def test_sampled_histogram_buckets_are_cumulative_with_le_semantics() -> None:
    histogram = SampledHistogram((1.0, 2.0))
    for value in (0.5, 1.0, 1.5, 7.0):
        histogram.observe(value)
    assert histogram.buckets() == [("1.0", 2.0), ("2.0", 3.0), ("+Inf", 4.0)]
    assert (histogram.count, histogram.sum) == (4, 10.0)

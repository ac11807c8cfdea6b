"""``kubectl top`` reads kubepulse's resource metrics API in place of metrics-server.

The chain under test: the synthetic exporter (:mod:`tests.cluster.synthetic_exporter`,
exporter-shaped pages for pods whose usage is known) and a small page of node CPU
counters -> the real ``kubepulse-adapter`` process scraping them every second, started
with ``--resource-metrics-api`` -> kube-apiserver's aggregation layer (the adapter
registered as ``v1beta1.metrics.k8s.io`` with its generated CA as ``caBundle``) -> the
real ``kubectl top``.

The node CPU page stands in for what the exporter's host collector publishes
(``kubepulse_node_cpu_seconds_total`` by mode), which the synthetic exporter does not
serve; it is the one thing here that is not the project's own code path. Kwok nodes are
real Node objects (``kubectl top nodes`` joins metrics with them); the pods need not
exist, since ``kubectl top pods`` lists what the metrics API answers.

``v1beta1.metrics.k8s.io`` may be metrics-server's in other modules
(``tests/e2e/test_hpa_metrics_server.py``): :func:`registered_adapter` owns the name for
this module and deletes it afterwards.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.adapter_service import RegisteredAdapter, registered_adapter
from tests.cluster.controlplane import ControlPlane
from tests.cluster.synthetic_exporter import (
    Steady,
    SyntheticContainer,
    SyntheticExporter,
    SyntheticNode,
    SyntheticPod,
)

pytestmark = pytest.mark.e2e

_MI = 2**20
_GI = 2**30
# Each pod: app at 50 % of 500m / 256Mi and sidecar at 50 % of 100m / 64Mi:
# 250m + 50m = 300m and 128Mi + 32Mi = 160Mi.
APP = SyntheticContainer("app", cpu_request=0.5, memory_request=256 * _MI, pattern=Steady())
SIDECAR = SyntheticContainer("sidecar", cpu_request=0.1, memory_request=64 * _MI, pattern=Steady())
POD_CPU_MILLICORES = 300
POD_MEMORY_MI = 160
# Node CPU by mode, in cores: busy is user + system = 750m (idle and iowait are not work).
NODE_MODES = {"user": 0.5, "system": 0.25, "idle": 6.75, "iowait": 0.5}
NODE_BUSY_MILLICORES = 750
RESERVED_MEMORY = 2 * _GI


class NodeCpuPage:
    """``kubepulse_node_cpu_seconds_total`` of ``nodes``, growing at :data:`NODE_MODES`."""

    def __init__(self, nodes: list[str]) -> None:
        self.nodes = nodes
        self.epoch_s = time.time() - 3600
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = page.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/metrics"

    def render(self) -> str:
        elapsed = time.time() - self.epoch_s
        lines = [
            "# HELP kubepulse_node_cpu_seconds_total CPU time by mode.",
            "# TYPE kubepulse_node_cpu_seconds_total counter",
        ]
        for node in self.nodes:
            for mode, cores in NODE_MODES.items():
                lines.append(
                    f'kubepulse_node_cpu_seconds_total{{node="{node}",mode="{mode}"}} '
                    f"{cores * elapsed:.6f}"
                )
        return "\n".join(lines) + "\n"

    def __enter__(self) -> NodeCpuPage:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class Scenario:
    def __init__(
        self, cluster: ControlPlane, adapter: RegisteredAdapter, namespace: str, nodes: list[str]
    ) -> None:
        self.cluster = cluster
        self.adapter = adapter
        self.namespace = namespace
        self.nodes = nodes


@pytest.fixture(scope="module")
def scenario(cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    suffix = uuid.uuid4().hex[:5]
    workdir: Path = tmp_path_factory.mktemp("resource-metrics")
    nodes = cluster.create_nodes(2, prefix=f"top-{suffix}", cpu="8", memory="32Gi")
    namespace = f"top-{suffix}"
    try:
        cluster.wait_for_nodes_ready(nodes)
        pods = [
            SyntheticPod(namespace, f"web-{index}", node, (APP, SIDECAR))
            for index, node in enumerate(nodes)
        ]
        synthetic_nodes = [
            SyntheticNode(node, reserved_memory_bytes=RESERVED_MEMORY) for node in nodes
        ]
        with (
            SyntheticExporter(pods, synthetic_nodes) as exporter,
            NodeCpuPage(nodes) as node_cpu,
            registered_adapter(
                cluster,
                workdir,
                static_targets=[f"{exporter.url}/metrics", node_cpu.url],
                resource_metrics=True,
            ) as adapter,
        ):
            yield Scenario(cluster, adapter, namespace, nodes)
    finally:
        cluster.delete_nodes(nodes)


def _millicores(text: str) -> int:
    return int(text.removesuffix("m")) if text.endswith("m") else int(text) * 1000


def _rows(output: str) -> dict[str, list[str]]:
    """``kubectl top`` output as name -> the other columns (the header dropped)."""
    rows = [re.split(r"\s+", line.strip()) for line in output.strip().splitlines()[1:]]
    return {row[0]: row[1:] for row in rows if row}


def _near(millicores: int, expected: int) -> bool:
    # A rate over scrapes of a clock-driven counter: a scrape's timestamp and the page's
    # clock reading differ by the scrape's latency, a fraction of a percent.
    return abs(millicores - expected) <= max(5, expected // 50)


def test_the_apiservice_is_the_adapters(scenario: Scenario) -> None:
    cluster = scenario.cluster
    apiservice = cluster.request(
        "GET", "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io"
    )
    assert apiservice["spec"]["service"]["namespace"] == scenario.adapter.namespace

    def discovery() -> Any:
        # The aggregator answers 503 for a moment after the APIService turns Available.
        done = cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1", check=False)
        return json.loads(done.stdout) if done.returncode == 0 else None

    resources = cluster.wait_until(
        discovery, timeout=60, interval=1, description="metrics.k8s.io discovery"
    )["resources"]
    assert {(r["name"], r["kind"]) for r in resources} == {
        ("nodes", "NodeMetrics"),
        ("pods", "PodMetrics"),
    }


def test_kubectl_top_pods_shows_the_synthetic_usage(scenario: Scenario) -> None:
    cluster = scenario.cluster

    def top() -> dict[str, list[str]] | None:
        done = cluster.kubectl("top", "pods", "-n", scenario.namespace, check=False)
        rows = _rows(done.stdout) if done.returncode == 0 else {}
        # Until the series span a few scrapes, a rate over two or three samples carries
        # the scrapes' timing jitter (seen: 283m for 300m); wait for it to settle.
        settled = all(_near(_millicores(row[0]), POD_CPU_MILLICORES) for row in rows.values())
        return rows if len(rows) == len(scenario.nodes) and settled else None

    rows = cluster.wait_until(top, timeout=90, interval=2, description="kubectl top pods")
    print(f"\nkubectl top pods -n {scenario.namespace}: {rows}")
    assert sorted(rows) == [f"web-{index}" for index in range(len(scenario.nodes))]
    for name, (cpu, memory) in rows.items():
        assert _near(_millicores(cpu), POD_CPU_MILLICORES), f"{name}: {cpu}"
        assert memory == f"{POD_MEMORY_MI}Mi", f"{name}: {memory}"
    containers = cluster.kubectl("top", "pods", "-n", scenario.namespace, "--containers").stdout
    lines = [re.split(r"\s+", line.strip()) for line in containers.strip().splitlines()[1:]]
    by_container = {(pod, container): (cpu, memory) for pod, container, cpu, memory in lines}
    app_cpu, app_memory = by_container[("web-0", "app")]
    assert _near(_millicores(app_cpu), 250)
    assert app_memory == "128Mi"
    sidecar_cpu, sidecar_memory = by_container[("web-0", "sidecar")]
    assert _near(_millicores(sidecar_cpu), 50)
    assert sidecar_memory == "32Mi"


def test_kubectl_top_nodes_shows_the_synthetic_usage(scenario: Scenario) -> None:
    cluster = scenario.cluster
    # The node's working set: total minus available, where the synthetic exporter's
    # available is total minus the reserved memory minus its pods' working sets.
    expected_memory_mi = RESERVED_MEMORY // _MI + POD_MEMORY_MI

    def top() -> dict[str, list[str]] | None:
        done = cluster.kubectl("top", "nodes", check=False)
        rows = _rows(done.stdout) if done.returncode == 0 else {}
        ours = {name: row for name, row in rows.items() if name in scenario.nodes}
        fresh = all(
            row and row[0].endswith("m") and _near(_millicores(row[0]), NODE_BUSY_MILLICORES)
            for row in ours.values()
        )
        return ours if len(ours) == len(scenario.nodes) and fresh else None

    rows = cluster.wait_until(top, timeout=90, interval=2, description="kubectl top nodes")
    print(f"\nkubectl top nodes: {rows}")
    for name, (cpu, cpu_percent, memory, memory_percent) in rows.items():
        assert _near(_millicores(cpu), NODE_BUSY_MILLICORES), f"{name}: {cpu}"
        assert memory == f"{expected_memory_mi}Mi", f"{name}: {memory}"
        # Percentages of the kwok Node's allocatable (8 cores, 32Gi).
        assert cpu_percent == "9%", f"{name}: {cpu_percent}"
        assert memory_percent == f"{expected_memory_mi * 100 // (32 * 1024)}%", memory_percent

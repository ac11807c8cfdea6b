"""The analyzers on the real control plane: ``kubectl pulse`` through the aggregator.

A cluster of kwok nodes and a few hundred pods is built with known shapes, and a
synthetic exporter (:mod:`tests.cluster.synthetic_exporter`) serves the exporter's
metrics for exactly those pods, with known usage. The real adapter scrapes it, watches
the cluster and is registered as ``v1alpha1.analysis.kubepulse.io``. Then the real
``kubectl`` runs ``kubectl pulse`` (the plugin found on ``PATH``) for each analysis, and
the answers are checked against what the scenario was built to show:

- ``hot`` node: four ``hog`` pods use 2 GiB of memory against a 64 MiB request, and the
  node's available memory is below the kubelet's 100 MiB threshold, so the eviction
  ranking must put the hogs first (usage above request, then priority, then how far
  above);
- ``batch``: pods without limits, and pods throttled 40 % of CFS periods at their
  CPU limit; its quota allows 105 pods and 100 exist;
- ``shop``: steady pods at half their requests, with a quota.

The chaos test evicts the pods the ranking puts first and deletes nodes while the
analyses keep being asked; nothing may fail but with a ``Status``, the adapter must stay
up, and the evicted pods must be the ones that were ranked first.

Nothing is mocked but the exporter's readings of cgroups: there are no containers on
kwok nodes, so the synthetic exporter stands in for the DaemonSet, with the exporter's
own metric names and labels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubepulse import K8sResourceMonitor
from kubepulse.errors import KubepulseValueError, UnknownObjectError
from tests.cluster.adapter_service import RegisteredAdapter, registered_adapter
from tests.cluster.controlplane import ControlPlane
from tests.cluster.synthetic_exporter import (
    NearLimit,
    NodePressure,
    Steady,
    SyntheticContainer,
    SyntheticExporter,
    SyntheticNode,
    SyntheticPod,
    Throttled,
)
from tests.e2e.conftest import missing_prerequisite
from tests.integration.prometheus_harness import (
    INSTALL_HINT,
    exporter_pages_config,
    find_prometheus,
    prometheus_with_config,
)

pytestmark = pytest.mark.e2e

_MI = 2**20
_GI = 2**30
GROUP_PATH = "/apis/analysis.kubepulse.io/v1alpha1"
SHOP_PODS = 240
BATCH_THROTTLED = 50
BATCH_UNLIMITED = 50
CALM_PODS = 20
HOGS = 4
# The rate window PrometheusHistory reads at its default 15 s resolution (2 x 15 s), plus
# a margin.
PROMETHEUS_LOOKBACK_S = 45.0


@dataclass(frozen=True)
class Scenario:
    cluster: ControlPlane
    adapter: RegisteredAdapter
    shop: str
    batch: str
    hot_node: str
    nodes: tuple[str, ...]
    hogs: tuple[str, ...]
    plugin_path: str
    prometheus_url: str
    prometheus_started_s: float


def _synthetic(
    namespace: str,
    names: list[str],
    nodes: list[str],
    *,
    cpu_request: float,
    memory_request: float,
    cpu_limit: float | None,
    memory_limit: float | None,
    pattern: Any,
) -> list[SyntheticPod]:
    container = SyntheticContainer(
        "main", cpu_request, memory_request, cpu_limit, memory_limit, pattern
    )
    return [
        SyntheticPod(namespace, name, nodes[index % len(nodes)], (container,))
        for index, name in enumerate(names)
    ]


def _quota(cluster: ControlPlane, namespace: str, hard: dict[str, str]) -> None:
    cluster.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/resourcequotas",
        body={
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "compute", "namespace": namespace},
            "spec": {"hard": hard},
        },
    )


@pytest.fixture(scope="module")
def scenario(cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    prometheus = find_prometheus()
    if prometheus is None:
        missing_prerequisite(INSTALL_HINT)
    suffix = uuid.uuid4().hex[:5]
    shop, batch = f"shop-{suffix}", f"batch-{suffix}"
    workdir = tmp_path_factory.mktemp("analysis")
    calm_nodes = cluster.create_nodes(11, prefix=f"calm-{suffix}", cpu="8", memory="32Gi")
    (hot_node,) = cluster.create_nodes(1, prefix=f"hot-{suffix}", cpu="8", memory="10Gi")
    nodes = (hot_node, *calm_nodes)
    try:
        cluster.wait_for_nodes_ready(nodes)
        for namespace in (shop, batch):
            cluster.ensure_namespace(namespace)
        # Quotas before pods: admission counts the pods against them from the start.
        _quota(cluster, shop, {"requests.cpu": "40", "requests.memory": "64Gi", "pods": "400"})
        _quota(cluster, batch, {"pods": "105"})
        shop_pods = cluster.create_pods(
            SHOP_PODS, namespace=shop, prefix="web", node_names=calm_nodes,
            cpu_request="100m", memory_request="128Mi",
            limits={"cpu": "200m", "memory": "256Mi"},
        )  # fmt: skip
        calm = cluster.create_pods(
            CALM_PODS, namespace=shop, prefix="calm", node_names=[hot_node],
            cpu_request="50m", memory_request="64Mi", limits={"cpu": "100m", "memory": "128Mi"},
        )  # fmt: skip
        hogs = cluster.create_pods(
            HOGS, namespace=shop, prefix="hog", node_names=[hot_node],
            cpu_request="50m", memory_request="64Mi", limits={"cpu": "1", "memory": "4Gi"},
        )  # fmt: skip
        throttled = cluster.create_pods(
            BATCH_THROTTLED, namespace=batch, prefix="crunch", node_names=calm_nodes,
            cpu_request="250m", memory_request="256Mi", limits={"cpu": "500m", "memory": "1Gi"},
        )  # fmt: skip
        unlimited = cluster.create_pods(
            BATCH_UNLIMITED, namespace=batch, prefix="loose", node_names=calm_nodes,
            cpu_request="100m", memory_request="128Mi",
        )  # fmt: skip
        cluster.wait_for_pods_running(shop, SHOP_PODS + CALM_PODS + HOGS, timeout=180)
        cluster.wait_for_pods_running(batch, BATCH_THROTTLED + BATCH_UNLIMITED, timeout=180)

        pods = [
            *_synthetic(shop, shop_pods, calm_nodes, cpu_request=0.1, memory_request=128 * _MI,
                        cpu_limit=0.2, memory_limit=256 * _MI, pattern=Steady(50, 50)),
            *_synthetic(shop, calm, [hot_node], cpu_request=0.05, memory_request=64 * _MI,
                        cpu_limit=0.1, memory_limit=128 * _MI, pattern=Steady(30, 30)),
            # 50 % of a 4 GiB limit: 2 GiB against a 64 MiB request.
            *_synthetic(shop, hogs, [hot_node], cpu_request=0.05, memory_request=64 * _MI,
                        cpu_limit=1.0, memory_limit=4 * _GI, pattern=NearLimit(20, 50)),
            *_synthetic(batch, throttled, calm_nodes, cpu_request=0.25, memory_request=256 * _MI,
                        cpu_limit=0.5, memory_limit=_GI, pattern=Throttled(100, 0.4, 50)),
            *_synthetic(batch, unlimited, calm_nodes, cpu_request=0.1, memory_request=128 * _MI,
                        cpu_limit=None, memory_limit=None, pattern=Steady(60, 60)),
        ]  # fmt: skip
        # The hot node: 10 GiB, of which the hogs' 8 GiB and the calm pods' working sets
        # leave 50 MiB once the system's reservation is taken out.
        used = HOGS * 2 * _GI + CALM_PODS * 0.3 * 64 * _MI
        synthetic_nodes = [
            SyntheticNode(
                hot_node,
                memory_bytes=10 * _GI,
                reserved_memory_bytes=10 * _GI - used - 50 * _MI,
                pressure=NodePressure(memory_some=0.35, memory_full=0.2),
            ),
            *(SyntheticNode(name) for name in calm_nodes),
        ]
        with (
            SyntheticExporter(pods, synthetic_nodes) as exporter,
            prometheus_with_config(
                prometheus, workdir, exporter_pages_config(exporter.url, nodes, 1)
            ) as prometheus_process,
            registered_adapter(
                cluster, workdir, static_targets=[f"{exporter.url}/metrics"]
            ) as adapter,
        ):
            plugin_dir = Path(sys.executable).parent
            scenario = Scenario(
                cluster, adapter, shop, batch, hot_node, nodes, tuple(hogs),
                f"{plugin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                prometheus_process.url, time.time(),
            )  # fmt: skip
            _wait_for_history(scenario)
            yield scenario
    finally:
        for namespace in (shop, batch):
            cluster.delete_namespace(namespace, wait=False)
        cluster.delete_nodes(nodes)


def _raw(scenario: Scenario, path: str) -> dict[str, Any]:
    answer = scenario.cluster.kubectl("get", "--raw", path)
    document: dict[str, Any] = json.loads(answer.stdout)
    return document


def _wait_for_history(scenario: Scenario) -> None:
    """Until the adapter has scraped the exporter long enough to rank the hot node's pods."""

    def ready() -> bool:
        answer = scenario.cluster.kubectl("get", "--raw", f"{GROUP_PATH}/nodepressure", check=False)
        if answer.returncode != 0:
            return False
        ranking = json.loads(answer.stdout).get("evictionRanking") or []
        measured = [entry for entry in ranking if entry.get("usageMeasured")]
        return len(measured) >= HOGS + CALM_PODS

    scenario.cluster.wait_until(
        ready, timeout=120, interval=2, description="the analysis API ranks measured pods"
    )


def pulse(scenario: Scenario, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``kubectl pulse ARGS`` with the cluster's own kubectl, which finds the plugin on PATH."""
    kubectl = scenario.cluster.tool("kubectl")
    environment = {**os.environ, "PATH": scenario.plugin_path}
    environment.pop("KUBECONFIG", None)
    result = subprocess.run(
        [str(kubectl), "pulse", *args, f"--kubeconfig={scenario.cluster.kubeconfig}"],
        capture_output=True,
        text=True,
        timeout=180,
        env=environment,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"kubectl pulse {' '.join(args)}: {result.stderr}"
    return result


def _pulse_json(scenario: Scenario, *args: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(pulse(scenario, *args, "-o", "json").stdout)
    return document


def test_the_analysis_group_is_registered_and_discoverable(scenario: Scenario) -> None:
    resources = _raw(scenario, GROUP_PATH)
    names = {resource["name"] for resource in resources["resources"]}
    assert {"limitbreaches", "nodepressure", "quotas", "recommendations", "reports"} <= names
    groups = _raw(scenario, "/apis")
    assert "analysis.kubepulse.io" in {group["name"] for group in groups["groups"]}


def test_pressure_ranks_the_hogs_first(scenario: Scenario) -> None:
    report = _pulse_json(scenario, "pressure")
    assert report["kind"] == "NodePressureReport"
    ranking = [entry for entry in report["evictionRanking"] if entry["namespace"] == scenario.shop]
    first = {entry["pod"] for entry in ranking[:HOGS]}
    assert first == set(scenario.hogs), ranking[: HOGS + 2]
    table = pulse(scenario, "pressure").stdout.splitlines()
    assert table[0].split()[0] == "NODE", table[:3]
    assert any(scenario.hot_node in line for line in table[1:])


def test_breaches_find_throttling_and_missing_limits(scenario: Scenario) -> None:
    report = _pulse_json(scenario, "breaches", "-n", scenario.batch, "--threshold-percent", "80")
    assert report["kind"] == "LimitBreachReport"
    throttled = {finding["pod"] for finding in report["throttling"]}
    assert len(throttled) == BATCH_THROTTLED, sorted(throttled)[:5]
    ratios = [finding["throttledRatio"] for finding in report["throttling"]]
    assert all(abs(ratio - 0.4) < 0.05 for ratio in ratios), ratios[:5]
    missing = {entry["pod"] for entry in report["missingSettings"]}
    assert len([pod for pod in missing if pod.startswith("loose-")]) == BATCH_UNLIMITED
    csv_lines = pulse(scenario, "breaches", "-n", scenario.batch, "-o", "csv").stdout.splitlines()
    assert len(csv_lines) > 1
    assert "," in csv_lines[0]
    # --top through kube-apiserver and the adapter: lists cut, counts kept, cut named.
    cut = _pulse_json(
        scenario, "breaches", "-n", scenario.batch, "--threshold-percent", "80", "--top", "5"
    )
    assert cut["settings"]["top"] == 5
    assert len(cut["throttling"]) == 5
    assert {finding["pod"] for finding in cut["throttling"]} <= throttled
    assert cut["truncated"]["throttling"] == len(report["throttling"])
    assert cut["summary"]["pods"] == report["summary"]["pods"]


def test_quota_alerts_on_the_nearly_full_namespace(scenario: Scenario) -> None:
    report = _pulse_json(scenario, "quota", "-A")
    assert report["kind"] == "QuotaReport"
    alerts = {(alert["ref"]["namespace"], alert["ref"]["resource"]) for alert in report["alerts"]}
    # batch: 100 pods of 105 is 95 %, at the critical threshold.
    assert (scenario.batch, "pods") in alerts, json.dumps(report["resources"])[:3000]


def test_recommend_gives_patches_for_the_shop(scenario: Scenario) -> None:
    report = _pulse_json(scenario, "recommend", "-n", scenario.shop, "--target", "cost")
    assert report["kind"] == "RecommendationReport"
    text = json.dumps(report)
    assert "web-" in text
    assert "patch" in text.lower()
    table = pulse(scenario, "recommend", "-n", scenario.shop).stdout
    assert "web-" in table or "web" in table


def test_report_counts_the_namespace_exactly(scenario: Scenario) -> None:
    report = _pulse_json(scenario, "report", "-n", scenario.shop)
    assert report["kind"] == "NamespaceReport"
    assert report["podCount"] == SHOP_PODS + CALM_PODS + HOGS
    cpu = next(item for item in report["resources"] if item["resource"] == "cpu")
    # 240 x 100m + 20 x 50m + 4 x 50m = 25.2 cores requested.
    assert float(cpu["requests"]) == pytest.approx(25.2)
    # Usage: 240 x 50m + 20 x 15m + 4 x 200m (20 % of a 1-core limit) = 13.1 cores.
    assert cpu["usage"] == pytest.approx(13.1, rel=0.1)
    local = _pulse_json(scenario, "report", "-n", scenario.shop, "--local")
    assert local["podCount"] == report["podCount"]
    local_cpu = next(item for item in local["resources"] if item["resource"] == "cpu")
    assert local_cpu["requests"] == cpu["requests"]
    # Without --prometheus-url history comes from metrics-server, which this cluster
    # does not run (kwok pods report no usage to it either): usage is missing, and the
    # answer says why.
    assert local_cpu["usage"] is None
    assert "metrics-server" in " ".join(local["metadata"]["warnings"]), local["metadata"]


def test_bad_input_is_refused_with_what_to_do(scenario: Scenario) -> None:
    unknown = pulse(scenario, "report", "-n", "no-such-namespace", check=False)
    assert unknown.returncode == 1
    assert "no-such-namespace" in unknown.stderr
    assert "not found" in unknown.stderr
    threshold = pulse(scenario, "breaches", "--threshold-percent", "150", check=False)
    assert threshold.returncode == 1
    assert "--threshold-percent must be between 1 and 100" in threshold.stderr
    target = pulse(scenario, "recommend", "--target", "cheapest", check=False)
    assert target.returncode == 1
    assert "balanced, performance, cost" in target.stderr


def test_the_library_facade_reads_prometheus_history(scenario: Scenario) -> None:
    """``K8sResourceMonitor`` with watches and Prometheus: the same answers as the adapter."""
    # A PromQL rate over a range longer than the data underestimates (Prometheus does not
    # extrapolate before a series' first sample): let the history cover the lookback.
    time.sleep(max(0.0, scenario.prometheus_started_s + PROMETHEUS_LOOKBACK_S - time.time()))
    monitor = K8sResourceMonitor(prometheus_url=scenario.prometheus_url)
    with monitor.connect(kubeconfig=scenario.cluster.kubeconfig, sync_timeout=60):

        def cpu_totals() -> Any:
            report = monitor.get_namespace_resources(scenario.shop, include_pods=False)
            assert report.pod_count == SHOP_PODS + CALM_PODS + HOGS
            cpu = next(item for item in report.resources if item.resource == "cpu")
            # Prometheus scrapes from the scenario's start; a rate needs two scrapes.
            return cpu if cpu.unmeasured_containers == 0 else None

        cpu = scenario.cluster.wait_until(
            cpu_totals, timeout=90, interval=3, description="Prometheus has every container"
        )
        assert float(cpu.requests) == pytest.approx(25.2)
        assert cpu.usage == pytest.approx(13.1, rel=0.1)
        pressure = monitor.analyze_node_pressure()
        first = {candidate.pod for candidate in pressure.eviction_ranking[:HOGS]}
        assert first == set(scenario.hogs)
        breaches = monitor.detect_limit_breaches(80, "1m", namespace=scenario.batch)
        assert len({finding.pod for finding in breaches.throttling}) == BATCH_THROTTLED
        cut = monitor.detect_limit_breaches(80, "1m", namespace=scenario.batch, top=3)
        assert (len(cut.throttling), cut.truncated["throttling"]) == (3, len(breaches.throttling))
        with pytest.raises(KubepulseValueError, match="top must be a whole number"):
            monitor.detect_limit_breaches(top=1.5)
        advice = monitor.get_resource_recommendations(scenario.shop, "cost")
        assert advice.workloads, advice.missing[:3]
        with pytest.raises(KubepulseValueError, match="balanced, performance, cost"):
            monitor.get_resource_recommendations(scenario.shop, "cheapest")
        with pytest.raises(UnknownObjectError, match="no-such-namespace"):
            monitor.get_namespace_resources("no-such-namespace")
    assert not monitor.warnings
    local = _pulse_json(
        scenario, "report", "-n", scenario.shop, "--local",
        "--prometheus-url", scenario.prometheus_url,
    )  # fmt: skip
    local_cpu = next(item for item in local["resources"] if item["resource"] == "cpu")
    assert local_cpu["usage"] == pytest.approx(13.1, rel=0.1)


def test_chaos_evictions_and_node_loss_while_analysing(scenario: Scenario) -> None:
    cluster = scenario.cluster
    ranking = _raw(scenario, f"{GROUP_PATH}/nodepressure")["evictionRanking"]
    victims = [entry["pod"] for entry in ranking if entry["namespace"] == scenario.shop][:HOGS]
    assert set(victims) == set(scenario.hogs)

    answers: list[int] = []
    failures: list[str] = []
    stop = threading.Event()
    paths = (
        f"{GROUP_PATH}/nodepressure",
        f"{GROUP_PATH}/namespaces/{scenario.shop}/reports",
        f"{GROUP_PATH}/limitbreaches",
        f"{GROUP_PATH}/fragmentation",
    )

    def ask() -> None:
        index = 0
        while not stop.is_set():
            path = paths[index % len(paths)]
            index += 1
            answer = cluster.kubectl("get", "--raw", path, check=False)
            if answer.returncode == 0:
                answers.append(200)
                json.loads(answer.stdout)
            elif "ServiceUnavailable" not in answer.stderr:
                failures.append(f"{path}: {answer.stderr.strip()}")

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    try:
        for pod in victims:
            cluster.request(
                "POST",
                f"/api/v1/namespaces/{scenario.shop}/pods/{pod}/eviction",
                body={
                    "apiVersion": "policy/v1",
                    "kind": "Eviction",
                    "metadata": {"name": pod, "namespace": scenario.shop},
                },
                ok=(200, 201),
                ok_on_retry=(404,),  # an earlier attempt evicted it
            )
        cluster.delete_nodes(scenario.nodes[-3:])
        time.sleep(5)
    finally:
        stop.set()
        asker.join(60)
    assert scenario.adapter.process.poll() is None, scenario.adapter.log_tail()
    assert not failures, failures[:5]
    assert len(answers) >= 4

    def victims_gone() -> bool:
        after = _raw(scenario, f"{GROUP_PATH}/nodepressure")["evictionRanking"]
        return not set(victims) & {entry["pod"] for entry in after}

    cluster.wait_until(victims_gone, timeout=60, interval=1, description="evicted pods gone")
    remaining = _raw(scenario, f"{GROUP_PATH}/nodepressure")
    deleted = set(scenario.nodes[-3:])
    assert not deleted & {node["node"] for node in remaining["nodes"]}

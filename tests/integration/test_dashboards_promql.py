"""Every dashboard panel's PromQL, run against a real Prometheus scraping kubepulse, has data.

The rig, all on 127.0.0.1 and all stopped at the end:

- the synthetic exporter (``tests/cluster/synthetic_exporter.py``): catalog-shaped pages
  for two nodes and the pods of namespaces ``shop`` and ``batch``. The ``web`` workload
  has a steady pod, a throttled pod and a pod whose memory climbs to its limit every
  few seconds and is OOM-killed there (so OOM-kill, restart and termination-reason
  panels have real, non-zero data); ``shop`` also has a container near its limit.
  Each node's page is its own scrape target, as one exporter per node would be;
- the real exporter process (``kubepulse-exporter serve``, as
  ``tests/integration/test_exporter_process.py`` runs it) reading a fake node tree
  (``bench.fake_node``): the series the synthetic exporter does not make (node CPU by
  mode, runtime overhead, the exporter's own collection timestamps);
- the adapter's real data path in this process (store, :class:`~adapter.scrape.Scraper`
  scraping both exporters plus one dead target, :class:`Checkpointer` every second,
  :class:`EmbeddedSource` and the FastAPI app with its own ``/metrics``), served by
  uvicorn over plain HTTP, with a thread sending it metrics API requests. Left out, because
  they need a control plane and play no part in what the dashboards show: the TLS and
  authentication layer (``/metrics`` is open in the real adapter too) and kube-apiserver's
  objects (an in-memory resolver holds the pods);
- Debian's Prometheus scraping all of them every second with ``honor_labels: true`` (the
  rules and dashboards assume the exporter's labels arrive unchanged) under the job names
  the rules expect, and loading ``charts/kubepulse/rules/kubepulse.rules.yaml``.

After a few scrapes, every panel target and every variable query of every generated
dashboard is sent to ``/api/v1/query`` with the template variables replaced by real
values (namespace ``shop``, two of its pods, workload ``web``, all three nodes, the
adapter's instance, ``$__rate_interval`` = 15s), and each must return at least one series
with a finite value. The OOM-kill panels must show a kill. The alert rules must load and
evaluate without errors.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn

from adapter.__main__ import own_metrics_registry
from adapter.app import create_app
from adapter.objects import InMemoryObjectResolver
from adapter.scrape import ScrapeMetrics, Scraper, ScrapeSettings, StaticTargets
from adapter.scrape.checkpointer import Checkpointer, CheckpointMetrics, CheckpointSettings
from adapter.sources.embedded import EmbeddedSource
from bench.fake_node import generate_fake_node
from kubepulse.store import TimeSeriesStore
from tests.cluster.controlplane import find_tool
from tests.cluster.synthetic_exporter import (
    MemoryClimb,
    NearLimit,
    Steady,
    SyntheticContainer,
    SyntheticExporter,
    SyntheticNode,
    SyntheticPod,
    Throttled,
)
from tests.integration.prometheus_harness import INSTALL_HINT, free_port, prometheus_with_config
from tests.integration.test_exporter_process import Exporter, in_ci, start_exporter

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "dashboards.py"
RULES = REPO / "charts" / "kubepulse" / "rules" / "kubepulse.rules.yaml"
NODES = ("node-a", "node-b")
FAKE_NODE = "fake-node"
RATE_INTERVAL = "15s"
SCRAPE_INTERVAL_S = 1
# Enough for a 15 s rate window to hold many samples, and for the climbing container
# (4 s to its limit) to have been OOM-killed a few times.
WARM_UP_S = 20.0
CLIMB_SECONDS = 4.0


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kubepulse_dashboards_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def pods() -> list[SyntheticPod]:
    def pod(namespace: str, name: str, node: str, container: SyntheticContainer) -> SyntheticPod:
        return SyntheticPod(namespace, name, node, (container,))

    climb = MemoryClimb(50.0, CLIMB_SECONDS, 20.0)
    return [
        pod("shop", "web-7d9f8c6b5d-x2x9q", "node-a", SyntheticContainer("app", pattern=Steady())),
        pod("shop", "web-7d9f8c6b5d-k8m2p", "node-b",
            SyntheticContainer("app", pattern=Throttled(100.0, 0.4))),
        pod("shop", "web-7d9f8c6b5d-q4w7z", "node-a", SyntheticContainer("app", pattern=climb)),
        pod("shop", "cache-0", "node-b",
            SyntheticContainer("redis", pattern=NearLimit(95.0, 95.0))),
        pod("batch", "report-28461-abcde", "node-b",
            SyntheticContainer("job", pattern=Steady(30.0, 40.0))),
    ]  # fmt: skip


def pod_objects(synthetic: list[SyntheticPod]) -> list[dict[str, Any]]:
    return [
        {
            "kind": "Pod",
            "metadata": {"name": one.name, "namespace": one.namespace, "uid": one.uid},
            "spec": {"nodeName": one.node},
            "status": {"phase": "Running"},
        }
        for one in synthetic
    ]


@dataclass
class Rig:
    prometheus_url: str
    adapter_instance: str


def prometheus_config(
    synthetic: SyntheticExporter, exporter: Exporter, adapter_port: int, rules: Path
) -> str:
    synthetic_host = synthetic.url.removeprefix("http://")
    node_targets = "".join(
        f"      - targets: ['{synthetic_host}']\n"
        f"        labels: {{__metrics_path__: /nodes/{node}/metrics}}\n"
        for node in NODES
    )
    return (
        "global:\n"
        f"  scrape_interval: {SCRAPE_INTERVAL_S}s\n"
        f"  scrape_timeout: {SCRAPE_INTERVAL_S}s\n"
        f"  evaluation_interval: {SCRAPE_INTERVAL_S}s\n"
        f"rule_files: ['{rules}']\n"
        "scrape_configs:\n"
        "  - job_name: kubepulse-exporter\n"
        "    honor_labels: true\n"
        "    static_configs:\n"
        f"{node_targets}"
        f"      - targets: ['127.0.0.1:{exporter.port}']\n"
        "  - job_name: kubepulse-adapter\n"
        "    honor_labels: true\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{adapter_port}']\n"
    )


@contextlib.contextmanager
def prometheus(binary: Path, workdir: Path, config: str) -> Iterator[str]:
    with prometheus_with_config(binary, workdir, config) as process:
        yield process.url


@contextlib.contextmanager
def adapter(targets: list[str], objects: list[dict[str, Any]], checkpoint: Path) -> Iterator[int]:
    """The adapter's data path and app on a free port (plain HTTP); its port."""
    registry = own_metrics_registry()
    lock = threading.Lock()
    checkpoint.parent.mkdir(parents=True, exist_ok=True)

    def empty_store() -> TimeSeriesStore:
        return TimeSeriesStore(resolution_ms=SCRAPE_INTERVAL_S * 1000)

    checkpointer = Checkpointer.open(
        checkpoint,
        lock=lock,
        factory=empty_store,
        settings=CheckpointSettings(interval_seconds=1.0),
        metrics=CheckpointMetrics(registry),
    )
    store = checkpointer.store
    scraper = Scraper(
        store,
        lock,
        StaticTargets(targets),
        ScrapeSettings(interval_seconds=SCRAPE_INTERVAL_S, timeout_seconds=0.8),
        metrics=ScrapeMetrics(registry),
    )
    app = create_app(
        source=EmbeddedSource(store, clock=lambda: int(time.time() * 1000), lock=lock),
        objects=InMemoryObjectResolver(objects),
        registry=registry,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="adapter-uvicorn", daemon=True)
    scraper.start()
    checkpointer.start()
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                pytest.fail("the adapter's uvicorn server did not start within 30 s")
            time.sleep(0.05)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        scraper.stop()
        checkpointer.stop(final_checkpoint=False)


@contextlib.contextmanager
def api_traffic(port: int) -> Iterator[None]:
    """Metrics API requests, as the HPA controller sends them, until the block ends."""
    done = threading.Event()
    base = f"http://127.0.0.1:{port}"
    paths = (
        "/apis/custom.metrics.k8s.io/v1beta2",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/"
        "kubepulse_container_memory_working_set_bytes",
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/shop/pods/*/no_such_metric",
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/no_such_metric",
    )

    def send() -> None:
        with httpx.Client(base_url=base, timeout=5.0) as client:
            while not done.wait(0.2):
                for path in paths:
                    with contextlib.suppress(httpx.HTTPError):
                        client.get(path)

    thread = threading.Thread(target=send, name="api-traffic", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    binary = find_tool("prometheus")
    if binary is None:
        if in_ci():
            pytest.fail(f"{INSTALL_HINT}\n(CI=true: a missing prerequisite fails the run)")
        pytest.skip(INSTALL_HINT)
    workdir = tmp_path_factory.mktemp("dashboards-promql")
    synthetic_pods = pods()
    fake = generate_fake_node(workdir / "node", pods=2, processes=60, seed=11)
    dead = f"http://127.0.0.1:{free_port()}/metrics"  # nothing listens: scrape failures
    with SyntheticExporter(synthetic_pods, [SyntheticNode(name) for name in NODES]) as synthetic:
        exporter = start_exporter(
            workdir / "exporter",
            "--mode", "local",
            "--node-name", FAKE_NODE,
            "--proc-root", str(fake.proc_root),
            "--cgroup-root", str(fake.cgroup_root),
        )  # fmt: skip
        try:
            targets = [*synthetic.targets(), f"{exporter.url}/metrics", dead]
            objects = pod_objects(synthetic_pods)
            with (
                adapter(targets, objects, workdir / "adapter" / "store.checkpoint") as port,
                api_traffic(port),
                prometheus(
                    binary, workdir, prometheus_config(synthetic, exporter, port, RULES)
                ) as url,
            ):
                wait_for_targets(url, expected=len(NODES) + 2)
                time.sleep(WARM_UP_S)
                yield Rig(url, f"127.0.0.1:{port}")
        finally:
            exporter.stop()


def wait_for_targets(url: str, expected: int) -> None:
    deadline = time.monotonic() + 30
    health: list[str] = []
    while time.monotonic() < deadline:
        active = httpx.get(f"{url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        health = [target["health"] for target in active]
        if len(health) == expected and all(state == "up" for state in health):
            return
        time.sleep(0.5)
    pytest.fail(f"Prometheus' targets did not all come up within 30 s: {health}")


def substitute(expr: str, rig: Rig) -> str:
    values = {
        "$__rate_interval": RATE_INTERVAL,
        "$namespace": "shop",
        # Two pods picked, as Grafana sends a multi-value variable: one of them OOM-killed.
        "$pod": "web-7d9f8c6b5d-q4w7z|cache-0",
        "$workload": "web",
        "$node": "|".join((*NODES, FAKE_NODE)),
        "$instance": rig.adapter_instance,
        "$target": "80",
    }
    for variable, value in values.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a variable was left unsubstituted: {expr}"
    return expr


def query(rig: Rig, expr: str) -> list[dict[str, Any]]:
    response = httpx.post(f"{rig.prometheus_url}/api/v1/query", data={"query": expr}, timeout=30)
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result if body["data"]["resultType"] == "vector" else [{"value": result}]


def test_every_panel_and_variable_query_returns_data(rig: Rig) -> None:
    # The check can fail: a misspelt metric, or a label value nothing has, gives nothing.
    assert query(rig, "kubepulse_container_cpu_usage_second_total") == []
    assert query(rig, 'kubepulse_container_info{namespace="no-such-namespace"}') == []
    generator = load_generator()
    empty: list[str] = []
    checked = 0
    for file, board in sorted(
        (name, json.loads(text)) for name, text in generator.generate().items()
    ):
        for where, expr in generator.queries(board):
            concrete = substitute(expr, rig)
            series = query(rig, concrete)
            values = [float(sample["value"][1]) for sample in series]
            checked += 1
            print(f"{file} {where}: {len(series)} series, e.g. {values[:1]}")
            if not any(math.isfinite(value) for value in values):
                empty.append(f"{file} {where}: {concrete!r} -> {values or 'no series'}")
                continue
            if "oom_kills" in expr:
                assert max(values) > 0, f"{file} {where}: no OOM kill seen in {concrete!r}"
    print(f"{checked} queries run, {checked - len(empty)} with data")
    assert not empty, "queries without data:\n" + "\n".join(empty)
    assert checked >= 60


def test_the_health_panels_show_a_healthy_rig(rig: Rig) -> None:
    """Data, and the right data: the rig's checkpoints succeed and its exporters are fresh."""
    instance = f'instance="{rig.adapter_instance}"'
    [age] = query(
        rig, f"time() - kubepulse_adapter_checkpoint_last_success_timestamp_seconds{{{instance}}}"
    )
    assert 0 <= float(age["value"][1]) < 10  # checkpoints every second
    [failures] = query(rig, f"kubepulse_adapter_checkpoint_failures_total{{{instance}}}")
    assert float(failures["value"][1]) == 0
    [exporter_age] = query(rig, "time() - min(kubepulse_exporter_last_success_timestamp_seconds)")
    assert 0 <= float(exporter_age["value"][1]) < 10
    down = query(rig, f'kubepulse_adapter_scrape_targets{{{instance}, health="down"}} > 0')
    assert [float(series["value"][1]) for series in down] == [1.0]  # the dead target


def test_the_alert_rules_load_and_evaluate_cleanly(rig: Rig) -> None:
    groups = httpx.get(f"{rig.prometheus_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]

    assert len(rules) >= 7
    for rule in rules:
        assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))
    # What the rig holds: a container at 95 % of its memory limit, one throttled in 40 % of
    # periods, one being OOM-killed, and a dead scrape target of the adapter. Those alerts
    # are pending (their `for` is longer than the rig has run); the others must not be.
    states = {rule["name"]: rule["state"] for rule in rules}
    assert states == {
        "KubepulseContainerNearMemoryLimit": "pending",
        "KubepulseContainerCPUThrottled": "pending",
        "KubepulseContainerOOMKilled": states["KubepulseContainerOOMKilled"],
        "KubepulseNodeMemoryPressure": "inactive",
        "KubepulseQuotaNearlyExhausted": "inactive",  # no kube-state-metrics here
        "KubepulseAdapterDown": "inactive",
        "KubepulseStaleMetrics": "pending",
    }
    assert states["KubepulseContainerOOMKilled"] in {"pending", "firing"}  # `for: 1m`
    [stale] = [rule for rule in rules if rule["name"] == "KubepulseStaleMetrics"]
    assert {alert["labels"]["signal"] for alert in stale["alerts"]} == {"adapter_targets_down"}

"""The scale rig: kwok nodes and pods, synthetic metrics for all of them, the real adapter.

The issue's scale is 1,000 nodes and 50,000 pods on one adapter. This module builds such
a cluster on the test control plane (:mod:`tests.cluster.controlplane`) at any size, serves
metrics whose values are *known* for every pod, runs the real adapter (``python -m
adapter serve``) against them with either source, and measures what an operator asks
about: the adapter's memory and CPU, how fresh its answers are, how fast ``pods/*``
questions are answered at 100, 1,000 and 5,000 pods per selector, how long the analyses
take, and how much 24 hours of history cost. ``bench/scale_rig.py`` is the command that
runs it at full scale and prints the figures; ``tests/e2e/test_scale_rig.py`` runs it at
CI size and checks the answers (never the timings).

The layout (:class:`RigLayout`):

- nodes ``rig-<i>`` (kwok), 16 cores and 32 GiB each;
- namespaces ``rig-<k>`` of ``tiers[-1]`` pods ``web-<i>`` (the last may hold fewer),
  pod ``i`` of namespace ``k`` on node ``(k x size + i) mod nodes``, labelled
  ``app=web`` and ``rig-tier=t<j>`` for the first tier ``j`` with ``i < tiers[j]``; so in
  ``rig-0`` the selector ``rig-tier in (t0,...,tj)`` (:meth:`RigLayout.selector`) covers
  exactly ``tiers[j]`` pods (100, 1,000 and 5,000 at full scale);
- every pod's container has the requests, limits and usage pattern of
  :func:`tests.cluster.synthetic_exporter.synthetic_cluster`'s pod of the same global
  index (a deterministic mix of steady, near-limit, throttled and climbing containers).

The metrics (:func:`rig_sources`): a few processes (``--shards``, this module's
``exporter`` command) each serve the exporter's per-node pages of a share of the nodes
(:class:`~tests.cluster.synthetic_exporter.SyntheticExporter`, ``/nodes/<node>/metrics``:
what one DaemonSet pod would publish), all counters starting at one shared epoch; and
``bench/app_pages.py`` serves application metrics (a request counter and a latency
histogram whose rate and p95 are known per pod) for the pods of ``rig-0``, the ones the
selectors read.

Freshness is measured by changing the working set of one known pod at a known instant
(``POST /gauges`` on the exporter shard that serves it) and polling the adapter until it
answers the new value.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import importlib.util
import json
import math
import os
import random
import signal
import ssl
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any
from urllib.parse import quote

import httpx
import psutil

from kubepulse.quantity import parse_quantity
from kubepulse.stats.summary import SeriesKind
from kubepulse.store import Series, TimeSeriesStore
from tests.cluster.controlplane import ControlPlane
from tests.cluster.synthetic_exporter import (
    SyntheticExporter,
    SyntheticNode,
    SyntheticPage,
    SyntheticPod,
    container_usage,
    synthetic_cluster,
)

__all__ = [
    "AdapterProcess",
    "ExporterShard",
    "Question",
    "RigLayout",
    "RigSources",
    "adapter_self_metrics",
    "analysis_times",
    "answers_ok",
    "check_answers",
    "create_objects",
    "expected_p95",
    "expected_rate",
    "freshness",
    "load",
    "load_app_pages",
    "main",
    "parse_series_key",
    "pod_manifest",
    "pod_values",
    "prometheus_config",
    "retention_memory",
    "rig_adapter",
    "rig_sources",
    "serve_shard",
    "steady_state",
    "synthetic_nodes",
    "synthetic_pods",
    "wait_for_answers",
]

REPO = Path(__file__).resolve().parents[2]
APP_PAGES = REPO / "bench" / "app_pages.py"
V2 = "/apis/custom.metrics.k8s.io/v1beta2"
ANALYSIS = "/apis/analysis.kubepulse.io/v1alpha1"
TIER_LABEL = "rig-tier"
NODE_CPU_CORES = 16.0
NODE_MEMORY_BYTES = 32 * 2**30
WORKING_SET = "kubepulse_container_memory_working_set_bytes"
CPU_SECONDS = "kubepulse_container_cpu_usage_seconds_total"
CLIENT_TIMEOUT_S = 60.0
# An analysis over 50,000 pods may take long; a timeout would hide how long.
ANALYSIS_TIMEOUT_S = 600.0
# How late after its slot a scrape may read a page on a busy machine (see check_answers).
SCRAPE_DELAY_ALLOWANCE_S = 1.0
Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    del message


# ---------------------------------------------------------------------- layout


@dataclass(frozen=True)
class RigLayout:
    """How many nodes and pods, and the selector tiers (pods per selector, ascending)."""

    nodes: int
    pods: int
    tiers: tuple[int, ...] = (100, 1000, 5000)

    def __post_init__(self) -> None:
        if self.nodes < 1 or not self.tiers or list(self.tiers) != sorted(set(self.tiers)):
            raise ValueError(
                f"need nodes >= 1 and strictly ascending tiers, got {self.nodes}, {self.tiers}"
            )
        if self.tiers[0] < 1 or self.pods < self.tiers[-1]:
            raise ValueError(
                f"{self.pods} pods cannot fill the largest selector tier ({self.tiers[-1]}): "
                "pass more pods or smaller tiers"
            )

    @property
    def namespace_size(self) -> int:
        return self.tiers[-1]

    @property
    def namespaces(self) -> list[str]:
        return [f"rig-{k}" for k in range(math.ceil(self.pods / self.namespace_size))]

    @property
    def node_names(self) -> list[str]:
        return [f"rig-{i}" for i in range(self.nodes)]

    @property
    def selector_namespace(self) -> str:
        """The namespace whose pods the selectors read and that serves application metrics."""
        return "rig-0"

    def pods_in(self, namespace_index: int) -> int:
        return min(self.namespace_size, self.pods - namespace_index * self.namespace_size)

    def node_of(self, namespace_index: int, pod_index: int) -> str:
        return f"rig-{(namespace_index * self.namespace_size + pod_index) % self.nodes}"

    def tier_of(self, pod_index: int) -> str:
        return f"t{next(j for j, size in enumerate(self.tiers) if pod_index < size)}"

    def selector(self, tier: int) -> str:
        """The label selector covering exactly ``tiers[tier]`` pods of the selector namespace."""
        return f"{TIER_LABEL} in ({','.join(f't{j}' for j in range(tier + 1))})"


def synthetic_nodes(layout: RigLayout) -> list[SyntheticNode]:
    """The nodes as the synthetic exporter describes them (capacity as the kwok nodes)."""
    _, template = synthetic_cluster(0, layout.nodes)
    return [
        dataclasses.replace(
            node, name=name, cpu_cores=NODE_CPU_CORES, memory_bytes=float(NODE_MEMORY_BYTES)
        )
        for node, name in zip(template, layout.node_names, strict=True)
    ]


def synthetic_pods(layout: RigLayout) -> list[SyntheticPod]:
    """Every pod, with its container's spec and usage pattern (see the module docstring)."""
    template, _ = synthetic_cluster(layout.pods, layout.nodes)
    pods: list[SyntheticPod] = []
    for k, namespace in enumerate(layout.namespaces):
        for i in range(layout.pods_in(k)):
            pods.append(
                dataclasses.replace(
                    template[k * layout.namespace_size + i],
                    namespace=namespace,
                    name=f"web-{i}",
                    node=layout.node_of(k, i),
                )
            )
    return pods


def _quantity(value: float, unit: str) -> str:
    if unit == "cpu":
        return f"{round(value * 1000)}m"
    return str(round(value))


def pod_manifest(layout: RigLayout, pod: SyntheticPod, pod_index: int) -> dict[str, Any]:
    """The kwok Pod for ``pod``: bound to its node, the container's requests and limits."""
    (container,) = pod.containers
    resources: dict[str, dict[str, str]] = {"requests": {}}
    if container.cpu_request is not None:
        resources["requests"]["cpu"] = _quantity(container.cpu_request, "cpu")
    if container.memory_request is not None:
        resources["requests"]["memory"] = _quantity(container.memory_request, "memory")
    limits: dict[str, str] = {}
    if container.cpu_limit is not None:
        limits["cpu"] = _quantity(container.cpu_limit, "cpu")
    if container.memory_limit is not None:
        limits["memory"] = _quantity(container.memory_limit, "memory")
    if limits:
        resources["limits"] = limits
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.name,
            "namespace": pod.namespace,
            "labels": {"app": "web", TIER_LABEL: layout.tier_of(pod_index)},
        },
        "spec": {
            "nodeName": pod.node,
            "containers": [
                {
                    "name": container.name,
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": resources,
                }
            ],
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
        },
    }


def _admin_client(cluster: ControlPlane) -> httpx.Client:
    pki = cluster.pki
    if pki is None:
        raise RuntimeError("the control plane has not been started: call cluster.start() first")
    context = ssl.create_default_context(cafile=str(cluster.ca_bundle))
    context.load_cert_chain(str(pki.admin.cert_path), str(pki.admin.key_path))
    return httpx.Client(base_url=cluster.api_url, verify=context, timeout=60.0)


def create_objects(
    cluster: ControlPlane,
    layout: RigLayout,
    *,
    workers: int = 24,
    progress: Progress = _quiet,
    running_timeout_s: float = 1800.0,
    require_running: bool = True,
    poll_s: float = 5.0,
) -> dict[str, float]:
    """Create the nodes, namespaces and pods and wait until every pod is Running.

    Pods are POSTed from ``workers`` threads, each with its own keep-alive connection
    (kube-apiserver has no bulk create; concurrency is what makes 50,000 pods take
    minutes, not an hour). Returns the seconds each phase took and how many pods were
    Running at the end of the wait. Pods not all Running after ``running_timeout_s``
    raise, unless ``require_running`` is false: the adapter answers for a Pending pod
    bound to its node as for a Running one (only finished pods are left out), so a
    bench may go on while kwok is still patching statuses, and says so.
    """
    timings: dict[str, float] = {}
    began = time.monotonic()
    cluster.create_nodes(
        layout.nodes,
        prefix="rig",
        cpu=str(int(NODE_CPU_CORES)),
        memory=f"{NODE_MEMORY_BYTES // 2**30}Gi",
        max_pods=max(110, math.ceil(layout.pods / layout.nodes) + 10),
        workers=workers,
    )
    cluster.wait_for_nodes_ready(layout.node_names, timeout=max(120.0, layout.nodes * 0.5))
    timings["nodes_seconds"] = round(time.monotonic() - began, 1)
    progress(f"{layout.nodes} nodes Ready in {timings['nodes_seconds']} s")
    for namespace in layout.namespaces:
        cluster.ensure_namespace(namespace)
    began = time.monotonic()
    pods = synthetic_pods(layout)
    indices: dict[str, int] = {}
    manifests = []
    for pod in pods:
        index = indices.get(pod.namespace, 0)
        indices[pod.namespace] = index + 1
        manifests.append(pod_manifest(layout, pod, index))
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()
    created = [0]

    def create(manifest: dict[str, Any]) -> None:
        http: httpx.Client | None = getattr(local, "client", None)
        if http is None:
            http = local.client = _admin_client(cluster)
            with lock:
                clients.append(http)
        namespace = manifest["metadata"]["namespace"]
        cluster.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/pods",
            body=manifest,
            ok=(201, 409),
            ok_on_retry=(),  # 409 is already fine: created now or before
            client=http,
        )
        with lock:
            created[0] += 1
            done = created[0]
        if done % 2000 == 0 or done == len(manifests):
            rate = done / max(1e-9, time.monotonic() - began)
            progress(f"  {done:,}/{len(manifests):,} pods created ({rate:.0f}/s)")

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(create, manifests))
    finally:
        for http in clients:
            http.close()
    timings["pods_created_seconds"] = round(time.monotonic() - began, 1)
    progress(f"{layout.pods:,} pods created in {timings['pods_created_seconds']} s")
    # Counted every few seconds, not every half second: each count lists every pod's
    # metadata, which at 50,000 pods competes with kwok's status patches for the cores.
    deadline = time.monotonic() + running_timeout_s
    running = 0
    while True:
        running = sum(
            cluster.count_pods(namespace, phase="Running") for namespace in layout.namespaces
        )
        if running >= layout.pods or time.monotonic() > deadline:
            break
        progress(f"  {running:,}/{layout.pods:,} pods Running")
        time.sleep(poll_s)
    timings["pods_running"] = running
    if running < layout.pods:
        message = (
            f"only {running:,} of {layout.pods:,} pods Running after {running_timeout_s:.0f} s "
            "(kwok patches their status one by one)"
        )
        if require_running:
            raise RuntimeError(f"{message}; give it more time or make the rig smaller")
        progress(f"{message}; going on: the adapter counts Pending pods bound to a node too")
        return timings
    timings["pods_running_seconds"] = round(time.monotonic() - began, 1)
    progress(f"{layout.pods:,} pods Running in {timings['pods_running_seconds']} s")
    return timings


# ---------------------------------------------------------------------- metric sources


def load_app_pages() -> ModuleType:
    """``bench/app_pages.py`` as a module (bench/ is no package): known rates and p95s."""
    name = "app_pages"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, APP_PAGES)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {APP_PAGES}; is the checkout complete?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def expected_rate(pod_index: int) -> float:
    return float(load_app_pages().rate_of(pod_index))


def expected_p95(pod_index: int) -> float:
    return float(load_app_pages().expected_quantile(0.95, pod_index))


@dataclass(frozen=True)
class ExporterShard:
    url: str
    nodes: tuple[str, ...]
    process: subprocess.Popen[bytes]

    def targets(self) -> list[str]:
        return [f"{self.url}/nodes/{node}/metrics" for node in self.nodes]


@dataclass(frozen=True)
class RigSources:
    """The running metric sources: exporter shards and the application pages."""

    layout: RigLayout
    epoch_s: float
    shards: tuple[ExporterShard, ...]
    app_url: str
    app_pages: tuple[str, ...]
    processes: tuple[subprocess.Popen[bytes], ...] = field(repr=False)

    def exporter_targets(self) -> list[str]:
        return [target for shard in self.shards for target in shard.targets()]

    def app_targets(self) -> list[str]:
        return [f"{self.app_url}{page}" for page in self.app_pages]

    def set_gauge(
        self, metric: str, labels: Mapping[str, str], value: float | None, node: str
    ) -> float:
        """Change a gauge on the shard that serves ``node``; the Unix time it took effect."""
        shard = next(shard for shard in self.shards if node in shard.nodes)
        answer = httpx.post(
            f"{shard.url}/gauges",
            json={"metric": metric, "labels": dict(labels), "value": value},
            timeout=10.0,
        )
        answer.raise_for_status()
        document = answer.json()
        if document["matched"] < 1:
            raise RuntimeError(f"no series of {metric} with {dict(labels)} on {shard.url}")
        return float(document["applied_at"])

    def cpu_seconds(self) -> float:
        return sum(_cpu_seconds(psutil.Process(process.pid)) for process in self.processes)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _first_json_line(process: subprocess.Popen[bytes], what: str, log: Path) -> Any:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"{what} exited before it served; its log ({log}):\n{tail}")
    return json.loads(line)


@contextlib.contextmanager
def rig_sources(
    layout: RigLayout, workdir: Path, *, shards: int = 4, epoch_s: float | None = None
) -> Iterator[RigSources]:
    """Start the exporter shards and the application pages; stop them on exit."""
    epoch = time.time() if epoch_s is None else epoch_s
    shards = max(1, min(shards, layout.nodes))
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []
    try:
        for shard in range(shards):
            log_path = workdir / f"exporter-{shard}.log"
            log = log_path.open("wb")
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable, "-m", "tests.cluster.scale", "exporter",
                        f"--nodes={layout.nodes}", f"--pods={layout.pods}",
                        f"--tiers={','.join(map(str, layout.tiers))}",
                        f"--shard={shard}", f"--shards={shards}", f"--epoch={epoch!r}",
                    ],
                    stdout=subprocess.PIPE, stderr=log, cwd=REPO,
                )
            )  # fmt: skip
        app_log_path = workdir / "app-pages.log"
        app_log = app_log_path.open("wb")
        logs.append(app_log)
        app = subprocess.Popen(
            [
                sys.executable, str(APP_PAGES),
                f"--namespace={layout.selector_namespace}={layout.namespace_size}",
                f"--epoch={epoch!r}",
            ],
            stdout=subprocess.PIPE, stderr=app_log, cwd=REPO,
        )  # fmt: skip
        processes.append(app)
        shard_list = []
        for shard, process in enumerate(processes[:-1]):
            served = _first_json_line(
                process, f"exporter shard {shard}", workdir / f"exporter-{shard}.log"
            )
            shard_list.append(ExporterShard(served["url"], tuple(served["nodes"]), process))
        pages = _first_json_line(app, "app pages", app_log_path)
        yield RigSources(
            layout, epoch, tuple(shard_list), pages["url"], tuple(pages["pages"]), tuple(processes)
        )
    finally:
        for process in processes:
            _stop(process)
            if process.stdout is not None:
                process.stdout.close()
        for log in logs:
            log.close()


def serve_shard(
    layout: RigLayout, shard: int, shards: int, epoch_s: float, port: int = 0
) -> SyntheticExporter:
    """The exporter of shard ``shard`` of ``shards``: every ``shards``-th node and its pods."""
    nodes = [node for index, node in enumerate(synthetic_nodes(layout)) if index % shards == shard]
    names = {node.name for node in nodes}
    pods = [pod for pod in synthetic_pods(layout) if pod.node in names]
    return SyntheticExporter(pods, nodes, port=port, epoch_s=epoch_s)


# ---------------------------------------------------------------------- adapters


@dataclass(frozen=True)
class AdapterProcess:
    """One ``python -m adapter serve`` process on loopback."""

    source: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    cert: tuple[str, str]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client(self, timeout_s: float = CLIENT_TIMEOUT_S) -> httpx.Client:
        # The adapter serves a self-signed certificate; verifying it costs the client only.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.load_cert_chain(*self.cert)
        return httpx.Client(base_url=self.url, verify=context, timeout=timeout_s)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"the {self.source} adapter exited with {self.process.returncode}:\n"
                f"{self.log_tail()}"
            )


def _free_port() -> int:
    import socket  # noqa: PLC0415 - only here

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def rig_adapter(
    cluster: ControlPlane,
    workdir: Path,
    *,
    source: str,
    scrape_interval_s: int,
    targets: Sequence[str] = (),
    prometheus_url: str = "",
) -> Iterator[AdapterProcess]:
    """The real adapter with the ``embedded`` (scraping ``targets``) or ``prometheus`` source.

    Authentication and authorization are on; the rig's requests carry the cluster admin's
    client certificate (``system:masters``), as ``bench/compare_adapters.py`` does. The
    analysis API is on (the default). It is not registered as an APIService: the rig asks
    it directly, so the aggregator's proxying is not in the figures.
    """
    pki = cluster.pki
    if pki is None:
        raise RuntimeError("the control plane has not been started: call cluster.start() first")
    port = _free_port()
    log_path = workdir / f"adapter-{source}.log"
    config: dict[str, Any] = {}
    arguments = [
        sys.executable, "-m", "adapter", "serve",
        f"--source={source}", f"--kubeconfig={cluster.kubeconfig}",
        "--bind-address=127.0.0.1", f"--secure-port={port}",
        f"--cert-dir={workdir / f'certs-{source}'}",
        "--checkpoint-path=", "--log-level=warning",
    ]  # fmt: skip
    if source == "embedded":
        config = {"sources": {"embedded": {"static_targets": list(targets)}}}
        arguments += [
            "--no-discovery",
            f"--scrape-interval={scrape_interval_s}s",
            f"--scrape-timeout={max(1, scrape_interval_s * 2 // 3)}s",
        ]
    elif source == "prometheus":
        arguments += [
            f"--prometheus-url={prometheus_url}",
            f"--prometheus-scrape-interval={scrape_interval_s}s",
            f"--prometheus-timeout={int(CLIENT_TIMEOUT_S)}s",
        ]
    else:
        raise ValueError(f"source must be embedded or prometheus, not {source!r}")
    config_path = workdir / f"adapter-{source}.json"
    config_path.write_text(json.dumps(config))
    arguments.insert(4, f"--config={config_path}")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KUBEPULSE_")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            arguments, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=environment
        )
    adapter = AdapterProcess(
        source, port, process, log_path, (str(pki.admin.cert_path), str(pki.admin.key_path))
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            adapter.check_alive()
            with contextlib.suppress(httpx.HTTPError), adapter.client() as http:
                if http.get("/readyz").status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the {source} adapter was not ready in 180 s:\n{adapter.log_tail()}"
                )
            time.sleep(0.5)
        yield adapter
    finally:
        _stop(process)


def prometheus_config(sources: RigSources, interval_s: int) -> str:
    """Debian's Prometheus scraping the same pages, labels honoured (as federation)."""

    def job(name: str, urls: Sequence[str]) -> str:
        entries = []
        for url in urls:
            rest = url.removeprefix("http://")
            host, _, path = rest.partition("/")
            entries.append(
                f"      - targets: ['{host}']\n        labels: {{__metrics_path__: /{path}}}"
            )
        return (
            f"  - job_name: {name}\n    honor_labels: true\n    static_configs:\n"
            + "\n".join(entries)
            + "\n"
        )

    return (
        "global:\n"
        f"  scrape_interval: {interval_s}s\n"
        f"  scrape_timeout: {max(1, interval_s * 2 // 3)}s\n"
        "scrape_configs:\n"
        + job("apps", sources.app_targets())
        + job("kubepulse-exporter", sources.exporter_targets())
    )


# ---------------------------------------------------------------------- questions


@dataclass(frozen=True)
class Question:
    """One HPA-like question: a metric and its statistic over a window."""

    name: str
    metric: str
    aggregation: str
    window: str

    def path(self, namespace: str, selector: str, pod: str = "*") -> str:
        metric_selector = quote(
            f"kubepulse.io/aggregation={self.aggregation},kubepulse.io/window={self.window}"
        )
        return (
            f"{V2}/namespaces/{namespace}/pods/{pod}/{self.metric}"
            f"?labelSelector={quote(selector)}&metricLabelSelector={metric_selector}"
        )


RATE = Question("rate_5m", "http_requests_total", "rate", "5m")
P95 = Question("p95_5m", "http_request_duration_seconds", "p95", "5m")
HPA_QUESTIONS = (RATE, P95)
MEMORY_LAST = Question("working_set_last", WORKING_SET, "last", "1m")
CPU_RATE = Question("cpu_rate_1m", CPU_SECONDS, "rate", "1m")


def pod_values(answer: Mapping[str, Any]) -> dict[str, float]:
    """``{pod: value}`` of a v1beta2 MetricValueList."""
    return {
        str(item["describedObject"]["name"]): float(parse_quantity(str(item["value"])))
        for item in answer.get("items", [])
    }


def _ask(http: httpx.Client, path: str) -> dict[str, Any]:
    response = http.get(path)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: HTTP {response.status_code}: {response.text[:300]}")
    document: dict[str, Any] = response.json()
    return document


def wait_for_answers(
    adapter: AdapterProcess, layout: RigLayout, timeout_s: float, progress: Progress = _quiet
) -> float:
    """Until the adapter answers both HPA questions and the usage ones for every tier pod.

    Returns the seconds it took.
    """
    began = time.monotonic()
    namespace = layout.selector_namespace
    largest = len(layout.tiers) - 1
    wanted = layout.tiers[-1]
    last = ""
    with adapter.client() as http:
        for question in (*HPA_QUESTIONS, MEMORY_LAST, CPU_RATE):
            while True:
                adapter.check_alive()
                try:
                    items = len(
                        _ask(http, question.path(namespace, layout.selector(largest)))["items"]
                    )
                    if items == wanted:
                        break
                    last = f"{items} of {wanted} items"
                except (httpx.HTTPError, RuntimeError) as exc:
                    last = str(exc)[:300]
                if time.monotonic() - began > timeout_s:
                    raise RuntimeError(
                        f"the {adapter.source} adapter did not answer {question.name} for "
                        f"{wanted} pods within {timeout_s:.0f} s; last: {last}\n"
                        f"{adapter.log_tail()}"
                    )
                time.sleep(1.0)
            progress(f"  {adapter.source}: {question.name} answers {wanted} pods")
    return round(time.monotonic() - began, 1)


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def check_answers(
    adapter: AdapterProcess,
    layout: RigLayout,
    *,
    epoch_s: float,
    data_seconds: float,
    scrape_interval_s: float,
    rates_need_full_window: bool,
    tolerance: float = 0.02,
) -> dict[str, Any]:
    """Each question once per tier, compared pod by pod with the values the rig serves.

    Rates are compared only with enough data behind them: PromQL's ``rate(x[5m])`` over
    less than the window extrapolates over the samples it has and reads low, so with
    ``rates_need_full_window`` (the Prometheus source) a rate is compared once the data
    covers its window plus two scrape intervals; the embedded store's rate of a linear
    counter is exact from a few samples on (three scrape intervals). A rate may also be
    off by the scrape's own delay: a sample is stamped with its scrape slot while the page
    is rendered a little later (up to :data:`SCRAPE_DELAY_ALLOWANCE_S` on a busy machine:
    a CI-sized run once read every rate of one page 4.6 % low over 21 s of data), which
    moves a rate over ``span`` seconds by up to that delay / ``span``; rates get that
    much more tolerance.
    """
    namespace = layout.selector_namespace
    pods = synthetic_pods(layout)[: layout.namespace_size]
    report: dict[str, Any] = {}
    with adapter.client() as http:
        for tier, size in enumerate(layout.tiers):
            selector = layout.selector(tier)
            entry: dict[str, Any] = {}
            for question in (*HPA_QUESTIONS, MEMORY_LAST, CPU_RATE):
                answered_at = time.time()
                values = pod_values(_ask(http, question.path(namespace, selector)))
                expected_names = {f"web-{i}" for i in range(size)}
                worst = 0.0
                wrong: list[str] = []
                window_s = 300.0 if question is RATE else 60.0
                needed = (
                    window_s + 2 * scrape_interval_s
                    if rates_need_full_window
                    else 3 * scrape_interval_s
                )
                compare = question.aggregation != "rate" or data_seconds >= needed
                allowed = tolerance
                if question.aggregation == "rate":
                    span = max(1.0, min(window_s, data_seconds))
                    allowed += SCRAPE_DELAY_ALLOWANCE_S / span
                for i in range(size):
                    name = f"web-{i}"
                    value = values.get(name)
                    if value is None or not compare:
                        continue
                    if question is RATE:
                        truth = expected_rate(i)
                    elif question is P95:
                        truth = expected_p95(i)
                    else:
                        usage = container_usage(pods[i].containers[0], epoch_s, answered_at)
                        if question is MEMORY_LAST:
                            truth = usage.working_set_bytes
                            if pods[i].containers[0].pattern.__class__.__name__ == "MemoryClimb":
                                continue  # moves between the scrape and the answer
                        else:
                            truth = usage.cpu_cores
                    error = _relative(value, truth)
                    worst = max(worst, error)
                    if error > allowed:
                        wrong.append(f"{name}: {value} != {truth}")
                entry[question.name] = {
                    "items": len(values),
                    "expected_items": size,
                    "same_pods": set(values) == expected_names,
                    "compared": compare,
                    "max_relative_error": round(worst, 6),
                    "tolerance": round(allowed, 4),
                    "wrong": len(wrong),
                    "wrong_sample": wrong[:3],
                }
            report[str(size)] = entry
    return report


def answers_ok(report: Mapping[str, Any]) -> bool:
    """Whether every answer of :func:`check_answers` had every pod and no wrong value."""
    return all(
        entry["same_pods"] and entry["wrong"] == 0
        for tier in report.values()
        for entry in tier.values()
    )


# ---------------------------------------------------------------------- measurements


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


def _percentile_ms(values: Sequence[float], q: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return round(ordered[index] * 1000, 2)


def adapter_self_metrics(adapter: AdapterProcess) -> dict[str, float]:
    """The adapter's own store and scrape figures from its ``/metrics`` (embedded source)."""
    wanted = {
        "kubepulse_adapter_store_series": "store_series",
        "kubepulse_adapter_store_bytes": "store_bytes_estimate",
        "kubepulse_adapter_scrape_samples_appended_total": "samples_appended_total",
        "kubepulse_adapter_scrapes_total": "scrapes_total",
    }
    found: dict[str, float] = {}
    with adapter.client() as http:
        response = http.get("/metrics")
    if response.status_code != 200:
        return found
    for line in response.text.splitlines():
        if line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in wanted:
            key = wanted[name]
            found[key] = found.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def steady_state(
    processes: Mapping[str, int], seconds: float, progress: Progress = _quiet
) -> dict[str, Any]:
    """RSS and CPU (share of one core) of each process over ``seconds`` with no queries."""
    watched = {name: psutil.Process(pid) for name, pid in processes.items()}
    before = {name: _cpu_seconds(process) for name, process in watched.items()}
    began = time.monotonic()
    max_rss: dict[str, int] = dict.fromkeys(watched, 0)
    while time.monotonic() - began < seconds:
        for name, process in watched.items():
            max_rss[name] = max(max_rss[name], process.memory_info().rss)
        time.sleep(0.5)
    wall = time.monotonic() - began
    result = {
        name: {
            "cpu_core_share": round((_cpu_seconds(process) - before[name]) / wall, 3),
            "rss_mib": round(process.memory_info().rss / 2**20, 1),
            "rss_mib_max": round(max_rss[name] / 2**20, 1),
        }
        for name, process in watched.items()
    }
    progress(f"  steady state over {wall:.0f} s: {json.dumps(result)}")
    return {"seconds": round(wall, 1), **result}


def freshness(
    adapter: AdapterProcess,
    sources: RigSources,
    *,
    changes: int,
    scrape_interval_s: float,
    seed: int = 8,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Seconds from a gauge change on the source to the adapter answering the new value.

    The working set of ``web-1`` in the selector namespace (a steady container) is set
    to a new value ``changes`` times, each at a random phase of the scrape interval
    (so the lags sample every phase, as an HPA's reads would); the adapter is asked
    every 20 ms (``last`` over 1 m) until it answers the new value. Restored at the end.
    """
    layout = sources.layout
    namespace = layout.selector_namespace
    pod = synthetic_pods(layout)[1]
    base = container_usage(pod.containers[0], sources.epoch_s, time.time()).working_set_bytes
    labels = {"namespace": namespace, "pod": pod.name}
    path = MEMORY_LAST.path(namespace, layout.selector(0), pod.name)
    rng = random.Random(seed)
    lags: list[float] = []
    timeout_s = 10 * scrape_interval_s + 30

    def answered(http: httpx.Client, value: float, applied: float) -> float:
        """Poll until the adapter answers ``value``; the Unix time it first did."""
        while True:
            adapter.check_alive()
            response = http.get(path)
            now = time.time()
            if response.status_code == 200:
                items = response.json().get("items", [])
                if items and _relative(float(parse_quantity(items[0]["value"])), value) < 1e-6:
                    return now
            if now > applied + timeout_s:
                raise RuntimeError(
                    f"the {adapter.source} adapter never answered {value} for "
                    f"{namespace}/{pod.name} within {timeout_s:.0f} s"
                )
            time.sleep(0.02)

    with adapter.client() as http:
        try:
            for change in range(1, changes + 1):
                time.sleep(rng.uniform(0.0, scrape_interval_s))
                value = float(round(base * (1 + 0.1 * change)))
                applied = sources.set_gauge(WORKING_SET, labels, value, pod.node)
                lags.append(answered(http, value, applied) - applied)
                progress(f"  change {change}: answered after {lags[-1]:.2f} s")
        finally:
            restored = sources.set_gauge(WORKING_SET, labels, None, pod.node)
        # Back to the pattern's value before anything else reads the pod.
        answered(http, base, restored)
    return {
        "changes": len(lags),
        "scrape_interval_s": scrape_interval_s,
        "lags_s": [round(lag, 3) for lag in lags],
        "median_s": round(statistics.median(lags), 3) if lags else None,
        "max_s": round(max(lags), 3) if lags else None,
    }


def load(
    adapter: AdapterProcess,
    layout: RigLayout,
    tier: int,
    *,
    concurrency: int,
    seconds: float,
) -> dict[str, Any]:
    """``concurrency`` clients alternate the HPA questions for ``seconds`` on one tier.

    A non-200 answer, or one without exactly one item per selected pod, is an error.
    Reported: latency p50, p99 and max, answers per second, errors, and the adapter's
    CPU seconds during the window and max RSS.
    """
    namespace = layout.selector_namespace
    size = layout.tiers[tier]
    selector = layout.selector(tier)
    paths = [question.path(namespace, selector) for question in HPA_QUESTIONS]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    process = psutil.Process(adapter.process.pid)
    warmed = threading.Barrier(concurrency + 1)
    go = threading.Barrier(concurrency + 1)
    deadline = [0.0]

    def worker(offset: int) -> None:
        mine: list[float] = []
        failed: list[str] = []
        with adapter.client() as http:
            for path in paths:  # untimed: TLS handshake, keep-alive
                with contextlib.suppress(httpx.HTTPError):
                    http.get(path)
            warmed.wait()
            go.wait()
            turn = offset
            while time.monotonic() < deadline[0]:
                path = paths[turn % len(paths)]
                turn += 1
                began = time.perf_counter()
                try:
                    response = http.get(path)
                    elapsed = time.perf_counter() - began
                    items = len(response.json().get("items", [])) if response.is_success else -1
                except (httpx.HTTPError, ValueError) as exc:
                    failed.append(repr(exc)[:200])
                    continue
                if response.status_code != 200 or items != size:
                    failed.append(f"HTTP {response.status_code}, {items} items")
                    continue
                mine.append(elapsed)
        with lock:
            latencies.extend(mine)
            errors.extend(failed)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    warmed.wait()
    cpu_before = _cpu_seconds(process)
    max_rss = process.memory_info().rss
    began = time.monotonic()
    deadline[0] = began + seconds
    go.wait()
    while any(thread.is_alive() for thread in threads):
        max_rss = max(max_rss, process.memory_info().rss)
        for thread in threads:
            thread.join(0.25)
    wall = time.monotonic() - began
    cpu = _cpu_seconds(process) - cpu_before
    return {
        "pods": size,
        "selector": selector,
        "requests": len(latencies),
        "errors": len(errors),
        "error_sample": sorted(set(errors))[:3],
        "p50_ms": _percentile_ms(latencies, 0.50),
        "p99_ms": _percentile_ms(latencies, 0.99),
        "max_ms": _percentile_ms(latencies, 1.0),
        "requests_per_second": round(len(latencies) / wall, 2),
        "adapter_cpu_core_share": round(cpu / wall, 3),
        "adapter_cpu_ms_per_request": round(cpu / len(latencies) * 1000, 2) if latencies else None,
        "adapter_rss_mib_max": round(max_rss / 2**20, 1),
    }


def analysis_times(adapter: AdapterProcess, layout: RigLayout, repeat: int) -> dict[str, Any]:
    """Wall time of the namespace report and the node-pressure analysis, asked ``repeat`` times.

    Checked: the report counts the namespace's pods, the pressure analysis covers every
    node. A failing check raises: a fast wrong answer is no figure.
    """
    namespace = layout.selector_namespace
    asks = {
        "namespace_report": f"{ANALYSIS}/namespaces/{namespace}/reports",
        "node_pressure": f"{ANALYSIS}/nodepressure",
    }
    result: dict[str, Any] = {}
    with adapter.client(ANALYSIS_TIMEOUT_S) as http:
        for name, path in asks.items():
            times: list[float] = []
            document: dict[str, Any] = {}
            for _ in range(repeat):
                began = time.perf_counter()
                document = _ask(http, path)
                times.append(time.perf_counter() - began)
            if name == "namespace_report":
                if document.get("podCount") != layout.namespace_size:
                    raise RuntimeError(
                        f"the report of {namespace} counts {document.get('podCount')} pods, "
                        f"not {layout.namespace_size}"
                    )
                check = {"podCount": document["podCount"]}
            else:
                nodes = {entry.get("node") for entry in document.get("nodes", [])}
                if not set(layout.node_names) <= nodes:
                    missing = sorted(set(layout.node_names) - nodes)[:5]
                    raise RuntimeError(f"node pressure misses nodes, e.g. {missing}")
                check = {
                    "nodes": len(nodes),
                    "eviction_candidates": len(document.get("evictionRanking") or []),
                }
            result[name] = {
                "repeat": repeat,
                "first_ms": round(times[0] * 1000, 1),
                "median_ms": round(statistics.median(times) * 1000, 1),
                "min_ms": round(min(times) * 1000, 1),
                "max_ms": round(max(times) * 1000, 1),
                "answer": check,
            }
    return result


# ---------------------------------------------------------------------- retention


def _resident_bytes() -> int:
    return int(psutil.Process().memory_info().rss)


def parse_series_key(key: str) -> tuple[str, dict[str, str]]:
    """``name{a="1",b="2"}`` (the synthetic exporter's spelling) as name and labels."""
    name, _, rest = key.partition("{")
    labels: dict[str, str] = {}
    rest = rest.removesuffix("}")
    while rest:
        label, _, rest = rest.partition('="')
        end = rest.index('"')
        while rest[end - 1] == "\\":
            end = rest.index('"', end + 1)
        labels[label] = rest[:end].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        rest = rest[end + 1 :].removeprefix(",")
    return name, labels


def retention_memory(
    layout: RigLayout,
    retention_pods: int,
    *,
    hours: float = 24.0,
    step_s: int = 15,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Ingest ``hours`` of the rig's own exporter pages for a sample of pods; bytes per sample.

    The sample: every pod of the first nodes, as many nodes as hold ``retention_pods``
    pods (with their node series). Their pages are rendered at every ``step_s`` of
    compressed time (the exporter's own rendering: the values a scrape would read), each
    line's value appended to a :class:`TimeSeriesStore` stamped with that step, as the
    scraper does. Reported: the store's estimate and the growth of this process' RSS,
    per sample held.
    """
    pods = synthetic_pods(layout)
    per_node = math.ceil(layout.pods / layout.nodes)
    node_count = max(1, min(layout.nodes, math.ceil(retention_pods / per_node)))
    chosen = synthetic_nodes(layout)[:node_count]
    names = {node.name for node in chosen}
    sample = [pod for pod in pods if pod.node in names]
    start_s = 1_700_000_000.0 - 1_700_000_000.0 % 3600
    page = SyntheticPage(sample, chosen, start_s)
    del pods
    steps = int(hours * 3600 / step_s)
    gc.collect()
    rss_before = _resident_bytes()
    store = TimeSeriesStore(resolution_ms=step_s * 1000)
    handles: dict[str, Series] = {}
    kinds: dict[str, SeriesKind] = {}
    rendered = appended = 0
    began = time.monotonic()
    for step in range(steps):
        now_s = start_s + step * step_s
        stamp = int(now_s * 1000)
        batch: list[tuple[Series, int, float]] = []
        for line in page.render(now_s).split("\n"):
            if not line:
                continue
            if line[0] == "#":
                if line.startswith("# TYPE "):
                    _, _, metric, kind = line.split(" ", 3)
                    kinds[metric] = SeriesKind.COUNTER if kind == "counter" else SeriesKind.GAUGE
                continue
            key, _, value = line.rpartition(" ")
            handle = handles.get(key)
            if handle is None:
                name, labels = parse_series_key(key)
                handle = handles[key] = store.series(
                    name, labels, kinds.get(name, SeriesKind.GAUGE)
                )
            batch.append((handle, stamp, float(value)))
        rendered += len(batch)
        appended += store.append_many(batch)
        if (step + 1) % (3600 // step_s) == 0:
            progress(
                f"  retention: hour {(step + 1) * step_s // 3600} of {hours:g}, "
                f"{store.sample_count:,} samples"
            )
    end_ms = int((start_s + steps * step_s) * 1000)
    store.compact(end_ms)
    gc.collect()
    held = store.sample_count
    growth = _resident_bytes() - rss_before
    estimate = store.memory_bytes()
    return {
        "pods": len(sample),
        "nodes": node_count,
        "sample": f"every pod on the first {node_count} nodes, and those nodes' series",
        "series": store.series_count,
        "hours": hours,
        "step_s": step_s,
        "samples_rendered": rendered,
        "samples_appended": appended,
        "samples_held": held,
        "ingest_seconds": round(time.monotonic() - began, 1),
        "store_estimate_bytes": estimate,
        "bytes_per_sample_estimate": round(estimate / held, 3) if held else None,
        "rss_growth_bytes": growth,
        "bytes_per_sample_rss_growth": round(growth / held, 3) if held else None,
    }


# ---------------------------------------------------------------------- the command


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.cluster.scale exporter ...``: serve one shard's node pages."""
    import argparse  # noqa: PLC0415 - the command only

    parser = argparse.ArgumentParser(prog="python -m tests.cluster.scale")
    commands = parser.add_subparsers(dest="command", required=True)
    exporter = commands.add_parser("exporter", help="serve one shard of the rig's node pages")
    exporter.add_argument("--nodes", type=int, required=True)
    exporter.add_argument("--pods", type=int, required=True)
    exporter.add_argument("--tiers", default="100,1000,5000")
    exporter.add_argument("--shard", type=int, default=0)
    exporter.add_argument("--shards", type=int, default=1)
    exporter.add_argument("--epoch", type=float, required=True)
    exporter.add_argument("--port", type=int, default=0)
    arguments = parser.parse_args(argv)
    layout = RigLayout(
        arguments.nodes, arguments.pods, tuple(int(t) for t in arguments.tiers.split(","))
    )
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with serve_shard(
        layout, arguments.shard, arguments.shards, arguments.epoch, arguments.port
    ) as served:
        print(json.dumps({"url": served.url, "nodes": list(served.page.nodes)}), flush=True)
        stopped.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

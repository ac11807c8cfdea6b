"""kubepulse-adapter (Prometheus and embedded sources) and prometheus-adapter, in one run.

The adapters answer the same two HPA questions for ``pods/*`` with a ``labelSelector``,
prometheus-adapter and kubepulse's Prometheus source from the same Debian Prometheus
holding the same data, kubepulse's default embedded source from its own scrapes of the
same application pages:

- per-pod request rate over 5 m: kubepulse ``http_requests_total`` with
  ``kubepulse.io/aggregation=rate, kubepulse.io/window=5m``; prometheus-adapter
  ``http_requests_per_second`` = ``sum(rate(http_requests_total{…}[5m])) by (pod)``;
- per-pod p95 latency over 5 m: kubepulse ``http_request_duration_seconds`` with
  ``aggregation=p95, window=5m``; prometheus-adapter ``http_request_duration_seconds_p95``
  = ``histogram_quantile(0.95, sum(rate(…_bucket{…}[5m])) by (le, pod))``
  (the rules: ``tests/cluster/prometheus-adapter/rules.yaml``).

The rig, all on loopback: the real control plane (``tests/cluster/controlplane.py``)
with kwok nodes and, per pod count N (``--pods``), a namespace ``cmp-N`` holding N kwok
pods ``web-<i>`` labelled ``app=web``; a synthetic exporter
(``tests/cluster/synthetic_exporter.py``) serving exporter-shaped pages for as many
pods (the series an installation's Prometheus also holds); application metrics for the
kwok pods from ``bench/app_pages.py`` (a request counter and a latency histogram per
pod, known rates and latency profile); Debian's Prometheus scraping both every
``--scrape-interval``; then both adapters pointed at it:

- ``python -m adapter serve --source=prometheus`` (kubepulse-adapter), and
- ``prometheus-adapter`` v0.12.0 (built by ``scripts/install-prometheus-adapter.sh``);
- unless ``--no-embedded``: ``python -m adapter serve --source=embedded`` (kubepulse's
  default source, reported as ``kubepulse-embedded``), with discovery off and every
  application page as a ``--static-target`` (exporter role: the pages' own
  ``namespace`` and ``pod`` labels are kept, as Prometheus' ``honor_labels``), scraped
  every ``--embedded-scrape-interval`` (default ``--scrape-interval``) into its own
  store, from a second page server with the same epoch (the same numbers, without
  queueing behind Prometheus' scrapes). It scrapes only the application
  pages, the series the two questions read (Prometheus also holds the exporter
  pages); its scraping runs in the adapter process all along, so its CPU figures
  include its ingest, and that ingest also runs while the other adapters are measured.

**Authentication and authorization are on in both and delegated to the control plane
the same way**: the client presents the cluster admin's client certificate (checked
against the client CA of ``kube-system/extension-apiserver-authentication``, no
TokenReview), and each adapter asks kube-apiserver a SubjectAccessReview, which both
cache (kubepulse ``--authorization-allow-cache-ttl`` default, prometheus-adapter the
generic apiserver's 10 s). Both list pods through kube-apiserver with the admin
kubeconfig; prometheus-adapter lists the selected pods on every request, through a
client-side throttle of 5 QPS (burst 10) by default, which would cap it at about 5
answers per second whatever it costs: the bench lifts it (``--client-qps`` and
``--client-burst`` = ``--prometheus-adapter-client-qps``, default 1000; pass 5 to
measure the default). kubepulse watches pods into a cache. Query timeouts: kubepulse's
``--prometheus-timeout`` is set to the client's 60 s (prometheus-adapter sets none).
TLS is not verified by the client (each adapter serves a self-signed certificate;
verification costs the client only).

**Load**, per adapter and pod count, one adapter at a time while both run:
``--concurrency`` client threads (keep-alive httpx clients) connect and ask each
question once (not measured), then alternate the two questions for ``--seconds``. A
non-200 answer or one without exactly N items counts as an error. Reported: p50, p99
and max latency, requests per second, errors, the adapter's CPU seconds during the
window (and per request) and RSS (max sampled every 0.25 s), and the CPU and RSS of
Prometheus and kube-apiserver during the window (what each adapter's requests cost
there, plus whatever else ran), the 1-minute load average before and after the window
(the machine may be shared); then the ratios kubepulse / prometheus-adapter per
kubepulse source.

**Agreement**: before the load, each kubepulse source's answers and prometheus-adapter's
to both questions are fetched back to back and compared pod by pod: equal within
``--tolerance`` (relative, default 1 %) or 0.0015 absolute (prometheus-adapter answers
in milli-units: "95m" is 0.095). The p95 is also compared with its known value
(:func:`app_pages.expected_quantile`: the buckets' ratios never change, so every window
has the same p95). The Prometheus readers' rates are compared with each other: until
Prometheus holds 5 m of samples, ``rate(x[5m])`` extrapolates over the samples it has,
so it is below the pods' true rate (both adapters send the same PromQL, so they agree
anyway); ``--warmup`` (default 330 s) waits for a full window so that the rates are the
true ones too. The embedded source's rate is the sampled increase over the sampled span,
the true rate as soon as it holds two scrapes. Every kubepulse rate is also compared with
the true one (:func:`app_pages.rate_of`).

Prints one JSON object on stdout; progress on stderr.

    python bench/compare_adapters.py                       # 100 and 1,000 pods
    python bench/compare_adapters.py --pods 100,1000,5000
    python bench/compare_adapters.py --quick               # 100 pods, short windows
    python bench/compare_adapters.py --no-embedded         # the two Prometheus readers only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

# Run from a checkout without installing: the repository root holds the packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import psutil
from app_pages import expected_quantile, rate_of

from tests.cluster.controlplane import (
    CONTROL_PLANE_TOOLS,
    ControlPlane,
    ControlPlaneOptions,
    MissingToolsError,
    find_tool,
    install_termination_handlers,
    missing_tools,
)
from tests.cluster.synthetic_exporter import synthetic_cluster
from tests.integration.prometheus_harness import free_port, prometheus_with_config

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "tests" / "cluster" / "prometheus-adapter" / "rules.yaml"
INSTALL_HINT = "build it with scripts/install-prometheus-adapter.sh (about ten minutes cold)"
CLIENT_TIMEOUT_S = 60.0
V2 = "/apis/custom.metrics.k8s.io/v1beta2"
SELECTOR = "labelSelector=" + quote("app=web")
KUBEPULSE_WINDOW = quote("kubepulse.io/window=5m")
KUBEPULSE = "kubepulse"
"""kubepulse-adapter with the Prometheus source (the report's historical key)."""
KUBEPULSE_EMBEDDED = "kubepulse-embedded"
"""kubepulse-adapter with its default embedded source."""
AGREEMENT_KEYS = {KUBEPULSE: "agreement", KUBEPULSE_EMBEDDED: "agreement_embedded"}
RATIO_KEYS = {
    KUBEPULSE: "ratio_kubepulse_over_prometheus_adapter",
    KUBEPULSE_EMBEDDED: "ratio_kubepulse_embedded_over_prometheus_adapter",
}


def log(message: str) -> None:
    print(f"[compare_adapters] {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ questions


@dataclass(frozen=True)
class Question:
    """One HPA question, as each adapter spells it."""

    name: str
    kubepulse_metric: str
    kubepulse_aggregation: str
    prometheus_adapter_metric: str

    def kubepulse_path(self, namespace: str) -> str:
        selector = quote(f"kubepulse.io/aggregation={self.kubepulse_aggregation}")
        return (
            f"{V2}/namespaces/{namespace}/pods/*/{self.kubepulse_metric}?{SELECTOR}"
            f"&metricLabelSelector={selector},{KUBEPULSE_WINDOW}"
        )

    def prometheus_adapter_path(self, namespace: str) -> str:
        return f"{V2}/namespaces/{namespace}/pods/*/{self.prometheus_adapter_metric}?{SELECTOR}"


QUESTIONS = (
    Question("rate_5m", "http_requests_total", "rate", "http_requests_per_second"),
    Question("p95_5m", "http_request_duration_seconds", "p95", "http_request_duration_seconds_p95"),
)

_SUFFIXES = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


def parse_quantity(text: str) -> float:
    """A Kubernetes quantity (``"1500m"``, ``"2.5"``, ``"3Ki"``, ``"1e3"``) as a float."""
    text = text.strip()
    for suffix in ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _SUFFIXES[suffix]
    if text and text[-1] in "numkMGTPE" and text[-2:-1].lower() != "e":
        return float(text[:-1]) * _SUFFIXES[text[-1]]
    return float(text)


def pod_values(answer: dict[str, Any]) -> dict[str, float]:
    """``{pod: value}`` of a v1beta2 MetricValueList."""
    return {
        str(item["describedObject"]["name"]): parse_quantity(str(item["value"]))
        for item in answer.get("items", [])
    }


# ------------------------------------------------------------------ processes


@dataclass
class Adapter:
    """One adapter process on loopback."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    path_of: Callable[[Question, str], str]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def _process(
    argv: Sequence[str], log_path: Path, *, stdout_pipe: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE if stdout_pipe else log_file,
        stderr=log_file,
        cwd=REPO,
    )
    try:
        yield process
    finally:
        _stop(process)
        log_file.close()


def _first_json_line(process: subprocess.Popen[bytes], what: str, log_path: Path) -> Any:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"{what} exited before it served; see {log_path}")
    return json.loads(line)


def kubepulse_source_args(
    prometheus_url: str | None, app_targets: Sequence[str], scrape_interval_s: int
) -> list[str]:
    """The source flags: the Prometheus source when ``prometheus_url`` is given, else the
    embedded source scraping ``app_targets`` (exporter role: the pages' labels are kept)."""
    if prometheus_url is not None:
        return [
            "--source=prometheus",
            f"--prometheus-url={prometheus_url}",
            f"--prometheus-scrape-interval={scrape_interval_s}s",
            # prometheus-adapter bounds its queries by nothing but the client's timeout
            # (60 s here); kubepulse's default 10 s would turn slow answers into 503s.
            f"--prometheus-timeout={int(CLIENT_TIMEOUT_S)}s",
        ]
    return [
        "--source=embedded",
        "--no-discovery",
        f"--scrape-interval={scrape_interval_s}s",
        # Shorter than the interval, as the adapter requires (its default is 10 s).
        f"--scrape-timeout={scrape_interval_s * 800}ms",
        *(f"--static-target={target}" for target in app_targets),
    ]


@contextlib.contextmanager
def kubepulse_adapter(
    name: str, workdir: Path, source_args: Sequence[str], kubeconfig: Path
) -> Iterator[Adapter]:
    port = free_port()
    log_path = workdir / f"{name}-adapter.log"
    argv = [
        sys.executable,
        "-m",
        "adapter",
        "serve",
        *source_args,
        f"--kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={workdir / f'{name}-certs'}",
        "--checkpoint-path=",
        "--no-analysis-api",
        "--log-level=warning",
    ]
    with _process(argv, log_path) as process:
        yield Adapter(
            name,
            port,
            process,
            log_path,
            lambda question, namespace: question.kubepulse_path(namespace),
        )


@contextlib.contextmanager
def prometheus_adapter(
    binary: Path, workdir: Path, prometheus_url: str, kubeconfig: Path, client_qps: int
) -> Iterator[Adapter]:
    port = free_port()
    log_path = workdir / "prometheus-adapter.log"
    argv = [
        str(binary),
        f"--prometheus-url={prometheus_url}",
        f"--config={RULES}",
        "--metrics-relist-interval=10s",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={workdir / 'prometheus-adapter-certs'}",
        f"--lister-kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        # It lists the selected pods from kube-apiserver on every request, through a
        # client throttled to 5 QPS (burst 10) by default: that, not the adapter, would
        # be measured. --prometheus-adapter-client-qps=5 measures the default.
        f"--client-qps={client_qps}",
        f"--client-burst={client_qps}",
        "--v=1",
    ]
    with _process(argv, log_path) as process:
        yield Adapter(
            "prometheus-adapter",
            port,
            process,
            log_path,
            lambda question, namespace: question.prometheus_adapter_path(namespace),
        )


def prometheus_config(
    app_url: str,
    app_pages: Sequence[str],
    exporter_url: str,
    nodes: Sequence[str],
    interval_s: int,
) -> str:
    """Scrape the app pages and the synthetic exporter's per-node pages, labels honoured."""
    app_host = app_url.removeprefix("http://")
    exporter_host = exporter_url.removeprefix("http://")
    apps = "\n".join(
        f"      - targets: ['{app_host}']\n        labels: {{__metrics_path__: '{path}'}}"
        for path in app_pages
    )
    exporters = "\n".join(
        f"      - targets: ['{exporter_host}']\n"
        f"        labels: {{__metrics_path__: '/nodes/{node}/metrics'}}"
        for node in nodes
    )
    return (
        "global:\n"
        f"  scrape_interval: {interval_s}s\n"
        f"  scrape_timeout: {interval_s}s\n"
        "scrape_configs:\n"
        "  - job_name: apps\n    honor_labels: true\n    static_configs:\n"
        f"{apps}\n"
        "  - job_name: kubepulse-exporter\n    honor_labels: true\n    static_configs:\n"
        f"{exporters}\n"
    )


def head_series(prometheus_url: str) -> int | None:
    """How many series Prometheus holds in its head block (None if it will not say)."""
    with contextlib.suppress(httpx.HTTPError, KeyError, ValueError, TypeError):
        answer = httpx.get(f"{prometheus_url}/api/v1/status/tsdb", timeout=30).json()
        return int(answer["data"]["headStats"]["numSeries"])
    return None


# ----------------------------------------------------------------------- load


def _client(cert: tuple[str, str]) -> httpx.Client:
    return httpx.Client(cert=cert, verify=False, timeout=CLIENT_TIMEOUT_S)  # see the docstring


def ask(client: httpx.Client, adapter: Adapter, question: Question, namespace: str) -> Any:
    response = client.get(adapter.url + adapter.path_of(question, namespace))
    if response.status_code != 200:
        raise RuntimeError(
            f"{adapter.name} {question.name}: HTTP {response.status_code}: {response.text[:300]}"
        )
    return response.json()


def wait_for_answers(
    adapters: Sequence[Adapter],
    cert: tuple[str, str],
    namespace: str,
    pods: int,
    timeout_s: float,
) -> None:
    """Until every adapter answers every question with ``pods`` items."""
    deadline = time.monotonic() + timeout_s
    last = ""
    with _client(cert) as client:
        for adapter in adapters:
            for question in QUESTIONS:
                while True:
                    if adapter.process.poll() is not None:
                        raise RuntimeError(
                            f"{adapter.name} exited with {adapter.process.returncode}:\n"
                            f"{adapter.log_tail()}"
                        )
                    try:
                        items = len(ask(client, adapter, question, namespace).get("items", []))
                        if items == pods:
                            break
                        last = f"{items} items of {pods}"
                    except (httpx.HTTPError, RuntimeError) as exc:
                        last = str(exc)
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{adapter.name} did not answer {question.name} for {pods} pods "
                            f"within {timeout_s:.0f} s; last: {last}\n{adapter.log_tail()}"
                        )
                    time.sleep(1.0)


def agreement(
    kubepulse: Adapter,
    upstream: Adapter,
    cert: tuple[str, str],
    namespace: str,
    tolerance: float,
) -> dict[str, Any]:
    """Both answers to both questions, back to back, compared pod by pod (and with truth)."""
    report: dict[str, Any] = {}
    with _client(cert) as client:
        for question in QUESTIONS:
            ours = pod_values(ask(client, kubepulse, question, namespace))
            theirs = pod_values(ask(client, upstream, question, namespace))
            pods = sorted(set(ours) | set(theirs))
            worst_relative = 0.0
            disagreeing: list[str] = []
            truth_worst = 0.0
            for pod in pods:
                a, b = ours.get(pod), theirs.get(pod)
                if a is None or b is None:
                    disagreeing.append(pod)
                    continue
                difference = abs(a - b)
                relative = difference / max(abs(a), abs(b), 1e-12)
                worst_relative = max(worst_relative, relative)
                if relative > tolerance and difference > 0.0015:
                    disagreeing.append(pod)
                if question.name == "p95_5m":
                    truth = expected_quantile(0.95, int(pod.rsplit("-", 1)[1]))
                    truth_worst = max(truth_worst, abs(a - truth) / truth)
            entry: dict[str, Any] = {
                "pods_compared": len(pods),
                "disagreeing": len(disagreeing),
                "disagreeing_sample": disagreeing[:5],
                "max_relative_difference": round(worst_relative, 6),
                "sample": {pod: [ours.get(pod), theirs.get(pod)] for pod in pods[:3]},
            }
            if question.name == "p95_5m":
                entry["kubepulse_max_relative_error_vs_expected"] = round(truth_worst, 6)
            else:
                entry["kubepulse_max_relative_error_vs_true_rate"] = round(
                    max(
                        (
                            abs(value - rate_of(int(pod.rsplit("-", 1)[1])))
                            / rate_of(int(pod.rsplit("-", 1)[1]))
                            for pod, value in ours.items()
                        ),
                        default=0.0,
                    ),
                    6,
                )
                entry["true_rates_sample"] = {
                    pod: rate_of(int(pod.rsplit("-", 1)[1])) for pod in pods[:3]
                }
            report[question.name] = entry
    return report


@dataclass
class _Sampler:
    """Max RSS of some processes, sampled in a thread."""

    processes: dict[str, psutil.Process]
    max_rss: dict[str, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            for name, process in self.processes.items():
                with contextlib.suppress(psutil.Error):
                    rss = process.memory_info().rss
                    self.max_rss[name] = max(self.max_rss.get(name, 0), rss)
            self.stop.wait(0.25)


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


def percentile_ms(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of seconds, in milliseconds; None without values."""
    ordered = sorted(values)
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index] * 1000, 2)


def load(
    adapter: Adapter,
    others: dict[str, int],
    cert: tuple[str, str],
    namespace: str,
    pods: int,
    concurrency: int,
    seconds: float,
) -> dict[str, Any]:
    """``concurrency`` threads alternate the questions for ``seconds``; latency, CPU, RSS."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    process = psutil.Process(adapter.process.pid)
    watched = {name: psutil.Process(pid) for name, pid in others.items()}
    sampler = _Sampler({"adapter": process, **watched})
    sampler_thread = threading.Thread(target=sampler.run, daemon=True)
    deadline = 0.0  # set by this thread between the two barriers
    warmed = threading.Barrier(concurrency + 1)  # every client has connected
    go = threading.Barrier(concurrency + 1)  # the measured window starts

    def worker(offset: int) -> None:
        mine: list[float] = []
        failed: list[str] = []
        with _client(cert) as client:
            # One untimed request per question: TLS handshake and keep-alive set up.
            for question in QUESTIONS:
                with contextlib.suppress(httpx.HTTPError):
                    client.get(adapter.url + adapter.path_of(question, namespace))
            warmed.wait()
            go.wait()
            turn = offset
            while time.monotonic() < deadline:
                question = QUESTIONS[turn % len(QUESTIONS)]
                turn += 1
                began = time.perf_counter()
                try:
                    response = client.get(adapter.url + adapter.path_of(question, namespace))
                    elapsed = time.perf_counter() - began
                    items = len(response.json().get("items", [])) if response.is_success else -1
                    if response.status_code != 200 or items != pods:
                        failed.append(
                            f"{question.name}: HTTP {response.status_code}, {items} items"
                        )
                        continue
                    mine.append(elapsed)
                except (httpx.HTTPError, ValueError) as exc:
                    failed.append(f"{question.name}: {exc!r}")
        with lock:
            latencies.extend(mine)
            errors.extend(failed)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    # The warm-up requests (one per client and question) are outside the window: at
    # thousands of pods they take seconds, and neither their time nor their CPU counts.
    warmed.wait()
    load_before = os.getloadavg()[0]
    cpu_before = _cpu_seconds(process)
    others_before = {name: _cpu_seconds(other) for name, other in watched.items()}
    sampler_thread.start()
    began = time.monotonic()
    deadline = began + seconds
    go.wait()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - began
    cpu = _cpu_seconds(process) - cpu_before
    others_cpu = {
        name: _cpu_seconds(other) - others_before[name] for name, other in watched.items()
    }
    sampler.stop.set()
    sampler_thread.join()
    requests = len(latencies)
    return {
        "requests": requests,
        "errors": len(errors),
        "error_sample": sorted(set(errors))[:3],
        "p50_ms": percentile_ms(latencies, 0.50),
        "p99_ms": percentile_ms(latencies, 0.99),
        "max_ms": percentile_ms(latencies, 1.0),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        "requests_per_second": round(requests / wall, 2),
        "cpu_seconds": round(cpu, 3),
        "cpu_ms_per_request": round(cpu / requests * 1000, 3) if requests else None,
        "rss_mib_max": round(sampler.max_rss.get("adapter", 0) / 2**20, 1),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        # What the adapter's requests cost elsewhere (also whatever else ran meanwhile).
        "others": {
            name: {
                "cpu_seconds": round(cpu_s, 3),
                "cpu_ms_per_request": round(cpu_s / requests * 1000, 3) if requests else None,
                "rss_mib_max": round(sampler.max_rss.get(name, 0) / 2**20, 1),
            }
            for name, cpu_s in others_cpu.items()
        },
    }


def _brief(report: dict[str, Any]) -> dict[str, Any]:
    """The agreement report without its samples, for the progress log."""
    return {
        question: {key: value for key, value in entry.items() if "sample" not in key}
        for question, entry in report.items()
    }


def ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float | None]:
    """kubepulse / prometheus-adapter for each comparable figure (< 1: kubepulse lower)."""
    out: dict[str, float | None] = {}
    for key in ("p50_ms", "p99_ms", "requests_per_second", "cpu_ms_per_request", "rss_mib_max"):
        a, b = ours.get(key), theirs.get(key)
        out[key] = (
            round(a / b, 3)
            if isinstance(a, float | int) and isinstance(b, float | int) and b
            else None
        )
    for name, figures in ours.get("others", {}).items():
        a = figures.get("cpu_ms_per_request")
        b = theirs.get("others", {}).get(name, {}).get("cpu_ms_per_request")
        out[f"{name}_cpu_ms_per_request"] = round(a / b, 3) if a is not None and b else None
    return out


# ----------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", default="100,1000", help="comma-separated pod counts")
    parser.add_argument("--nodes", type=int, default=20, help="kwok nodes (and exporter nodes)")
    parser.add_argument("--seconds", type=float, default=20.0, help="load per adapter and count")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--scrape-interval", type=int, default=5, help="Prometheus, seconds")
    parser.add_argument(
        "--warmup",
        type=float,
        default=330.0,
        help="seconds of scraped data before measuring (>= 300: full 5m window)",
    )
    parser.add_argument("--tolerance", type=float, default=0.01, help="relative, for agreement")
    parser.add_argument(
        "--quick", action="store_true", help="100 pods, 5 s of load, 40 s of warm-up"
    )
    parser.add_argument(
        "--prometheus-adapter-client-qps",
        type=int,
        default=1000,
        help="prometheus-adapter --client-qps/--client-burst (upstream default: 5, burst 10)",
    )
    parser.add_argument(
        "--embedded",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure kubepulse's embedded source scraping the app pages itself",
    )
    parser.add_argument(
        "--embedded-scrape-interval",
        type=int,
        default=None,
        help="the embedded source's scrape interval, seconds (default: --scrape-interval)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.pods, arguments.seconds, arguments.warmup = "100", 5.0, 40.0
        arguments.nodes = min(arguments.nodes, 5)
    arguments.pod_counts = [int(p) for p in str(arguments.pods).split(",") if p.strip()]
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_args(argv)
    missing = missing_tools([*CONTROL_PLANE_TOOLS, "prometheus", "prometheus-adapter"])
    if missing:
        hint = str(MissingToolsError(missing))
        if "prometheus-adapter" in missing:
            hint += f"; prometheus-adapter: {INSTALL_HINT}"
        log(hint)
        return 2
    prometheus_binary = find_tool("prometheus")
    upstream_binary = find_tool("prometheus-adapter")
    assert prometheus_binary is not None
    assert upstream_binary is not None
    install_termination_handlers()
    workdir = Path(tempfile.mkdtemp(prefix="kubepulse-compare-"))
    log(f"run directory {workdir}")
    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            key: getattr(arguments, key)
            for key in (
                "pod_counts",
                "nodes",
                "seconds",
                "concurrency",
                "scrape_interval",
                "warmup",
                "tolerance",
                "prometheus_adapter_client_qps",
                "embedded",
                "embedded_scrape_interval",
            )
        },
        "prometheus_adapter": {"version": "v0.12.0", "binary": str(upstream_binary)},
        "auth": "both: client certificate of the cluster admin + SubjectAccessReview "
        "delegated to kube-apiserver (cached); TLS not verified by the client",
        "counts": {},
    }
    started = time.monotonic()
    cluster = ControlPlane(ControlPlaneOptions(run_dir=workdir / "control-plane"))
    try:
        cluster.start()
        log(f"control plane up in {time.monotonic() - started:.1f} s")
        nodes = cluster.create_nodes(arguments.nodes, prefix="cmp")
        cluster.wait_for_nodes_ready(nodes, timeout=120)
        for count in arguments.pod_counts:
            namespace = f"cmp-{count}"
            cluster.ensure_namespace(namespace)
            began = time.monotonic()
            cluster.create_pods(
                count,
                namespace=namespace,
                prefix="web",
                labels={"app": "web"},
                node_names=nodes,
                workers=16,
            )
            cluster.wait_for_pods_running(namespace, count, timeout=600)
            log(f"{count} pods Running in {namespace} ({time.monotonic() - began:.1f} s)")
        result["counts"] = {str(count): {} for count in arguments.pod_counts}
        total = sum(arguments.pod_counts)
        pki = cluster.pki
        assert pki is not None
        cert = (str(pki.admin.cert_path), str(pki.admin.key_path))
        _, exporter_nodes = synthetic_cluster(total, arguments.nodes)
        namespace_args = [f"--namespace=cmp-{count}={count}" for count in arguments.pod_counts]
        with (
            _process(
                [sys.executable, str(REPO / "bench" / "app_pages.py"), *namespace_args],
                workdir / "app-pages.log",
                stdout_pipe=True,
            ) as pages_process,
            _process(
                [
                    sys.executable,
                    "-m",
                    "tests.cluster.synthetic_exporter",
                    f"--pods={total}",
                    f"--nodes={arguments.nodes}",
                    "--port=0",
                ],
                workdir / "synthetic-exporter.log",
                stdout_pipe=True,
            ) as exporter_process,
        ):
            pages = _first_json_line(pages_process, "app pages", workdir / "app-pages.log")
            exporter = _first_json_line(
                exporter_process, "synthetic exporter", workdir / "synthetic-exporter.log"
            )
            config = prometheus_config(
                pages["url"],
                pages["pages"],
                exporter["url"],
                [node.name for node in exporter_nodes],
                arguments.scrape_interval,
            )
            (workdir / "prometheus").mkdir()
            with prometheus_with_config(prometheus_binary, workdir / "prometheus", config) as prom:
                data_since = time.monotonic()
                log(
                    f"prometheus {prom.url} scraping {len(pages['pages'])} app pages and "
                    f"{len(exporter_nodes)} exporter pages every {arguments.scrape_interval} s"
                )
                # Let a few scrapes land before prometheus-adapter's first series discovery.
                time.sleep(3 * arguments.scrape_interval)
                with contextlib.ExitStack() as running:
                    ours = running.enter_context(
                        kubepulse_adapter(
                            KUBEPULSE,
                            workdir,
                            kubepulse_source_args(prom.url, (), arguments.scrape_interval),
                            cluster.kubeconfig,
                        )
                    )
                    theirs = running.enter_context(
                        prometheus_adapter(
                            upstream_binary,
                            workdir,
                            prom.url,
                            cluster.kubeconfig,
                            arguments.prometheus_adapter_client_qps,
                        )
                    )
                    kubepulses = [ours]
                    if arguments.embedded:
                        # Its own page server with the same epoch serves the same numbers,
                        # so that its scrapes and Prometheus' do not queue for one server.
                        own_pages_log = workdir / "app-pages-embedded.log"
                        own_pages = _first_json_line(
                            running.enter_context(
                                _process(
                                    [
                                        sys.executable,
                                        str(REPO / "bench" / "app_pages.py"),
                                        *namespace_args,
                                        f"--epoch={pages['epoch']!r}",
                                    ],
                                    own_pages_log,
                                    stdout_pipe=True,
                                )
                            ),
                            "app pages (embedded)",
                            own_pages_log,
                        )
                        app_targets = [own_pages["url"] + path for path in own_pages["pages"]]
                        kubepulses.append(
                            running.enter_context(
                                kubepulse_adapter(
                                    KUBEPULSE_EMBEDDED,
                                    workdir,
                                    kubepulse_source_args(
                                        None,
                                        app_targets,
                                        arguments.embedded_scrape_interval
                                        or arguments.scrape_interval,
                                    ),
                                    cluster.kubeconfig,
                                )
                            )
                        )
                    adapters = (ours, theirs, *kubepulses[1:])
                    watched = {"prometheus": prom.process.pid}
                    apiserver = cluster.components["kube-apiserver"].pid
                    if apiserver is not None:
                        watched["kube-apiserver"] = apiserver
                    for count in arguments.pod_counts:
                        wait_for_answers(adapters, cert, f"cmp-{count}", count, 180)
                    log("every adapter answers every question")
                    remaining = arguments.warmup - (time.monotonic() - data_since)
                    if remaining > 0:
                        log(f"waiting {remaining:.0f} s for {arguments.warmup:.0f} s of data")
                        time.sleep(remaining)
                    result["data_seconds_at_first_measure"] = round(
                        time.monotonic() - data_since, 1
                    )
                    result["prometheus_head_series"] = head_series(prom.url)
                    for count in arguments.pod_counts:
                        namespace = f"cmp-{count}"
                        entry: dict[str, Any] = result["counts"][str(count)]
                        for kubepulse in kubepulses:
                            key = AGREEMENT_KEYS[kubepulse.name]
                            entry[key] = agreement(
                                kubepulse, theirs, cert, namespace, arguments.tolerance
                            )
                            log(f"  {key}: {json.dumps(_brief(entry[key]))}")
                        for adapter in adapters:
                            log(
                                f"{count} pods: {adapter.name} under load "
                                f"({arguments.concurrency} clients, {arguments.seconds:.0f} s)"
                            )
                            entry[adapter.name] = load(
                                adapter,
                                watched,
                                cert,
                                namespace,
                                count,
                                arguments.concurrency,
                                arguments.seconds,
                            )
                            log(f"  {json.dumps(entry[adapter.name])}")
                        for kubepulse in kubepulses:
                            ratio = ratios(entry[kubepulse.name], entry[theirs.name])
                            entry[RATIO_KEYS[kubepulse.name]] = ratio
                            log(f"  {RATIO_KEYS[kubepulse.name]}: {json.dumps(ratio)}")
                    for adapter in adapters:
                        rss = psutil.Process(adapter.process.pid).memory_info().rss
                        result.setdefault("rss_mib_at_end", {})[adapter.name] = round(
                            rss / 2**20, 1
                        )
    finally:
        cluster.stop()
        if not arguments.keep:
            import shutil  # noqa: PLC0415

            shutil.rmtree(workdir, ignore_errors=True)
    result["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

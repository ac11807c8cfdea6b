"""Benchmark of the adapter's metrics API: latency, throughput and freshness.

Prints one JSON object on stdout (progress on stderr):

- **api**: for each pod count (``--pods``, default 100, 1,000, 5,000) a separate server
  process builds a store holding, per pod, the latency histogram of an instrumented app
  (14 ``le`` buckets plus ``+Inf``, ``_sum`` and ``_count``) and a request counter,
  sampled every 15 s over ``--history`` minutes ending now, and serves it with the
  adapter's own app (``create_app`` over ``EmbeddedSource``, an in-memory object
  resolver holding the pods, HTTPS through ``adapter.server.serve`` and the adapter's
  security stack with authentication off: the cost measured is the API's, not
  TokenReview's). The bench process then sends
  ``GET .../namespaces/bench/pods/*/http_request_duration_seconds?labelSelector=app=web``
  with ``kubepulse.io/aggregation=p95, kubepulse.io/window=5m`` from ``--concurrency``
  clients for ``--seconds`` each (httpx, keep-alive, TLS verified against the generated
  CA). Reported: the first (cold) request, p50, p99 and max latency, requests per second,
  errors (a wrong answer, one without one item per pod, counts as an error), and the
  server's CPU seconds and RSS.
- **in_process**: per pod count, the same p95 question (and a ``rate`` of the request
  counter) asked of ``EmbeddedSource.evaluate`` directly, without HTTP: the first
  (cold) call, which groups the series into pods and scans them; a call after *every*
  series got a new sample, which is what an HPA asking once per scrape interval costs
  (nothing can be reused but the grouping); and a call when nothing changed, what a
  second client asking the same question within the interval costs; and a call after
  another pod's series appeared in the namespace (pod churn: the grouping is made again,
  the remembered answers go with it). ``--repeats``
  calls each: median and max wall time, and median CPU time of the bench process (what a
  shared machine inflates less). The HTTP figures above sit between the two: the
  bench's data is static, so the embedded source recomputes only when the window
  slides past a sample (every 15 s).
- **freshness**: a real ``Scraper`` in the server process scrapes a loopback target whose
  gauge the bench changes at a known instant; the bench polls the API (``last`` over
  30 s) every 10 ms until the answer shows the new value. The lag is the scrape
  interval's phase (up to one interval), plus the scrape, plus the query. Reported per
  scrape interval (``--freshness-intervals``, default 1 s and 15 s).

    python bench/adapter_bench.py                 # the figures in docs/performance.md
    python bench/adapter_bench.py --quick         # about a minute
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# Run from a checkout without installing: the repository root holds the packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psutil

NAMESPACE = "bench"
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.15", "0.2", "0.3", "0.5",
           "0.75", "1.0", "2.5", "5.0", "+Inf")  # fmt: skip
STEP_MS = 15_000
V2 = "/apis/custom.metrics.k8s.io/v1beta2"
P95_PATH = (
    f"{V2}/namespaces/{NAMESPACE}/pods/*/http_request_duration_seconds"
    "?labelSelector=app%3Dweb"
    "&metricLabelSelector=kubepulse.io%2Faggregation%3Dp95,kubepulse.io%2Fwindow%3D5m"
)


def log(message: str) -> None:
    print(f"[adapter_bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pod_objects(pods: int) -> list[dict[str, Any]]:
    return [
        {
            "kind": "Pod",
            "metadata": {"name": f"web-{index}", "namespace": NAMESPACE, "labels": {"app": "web"}},
            "status": {"phase": "Running"},
        }
        for index in range(pods)
    ]


def filled_store(pods: int, history_minutes: int, now_ms: int) -> Any:
    """Every pod's histogram and counter, one sample per 15 s, values growing like a real app."""
    from kubepulse.stats import SeriesKind  # noqa: PLC0415 - imported in the server process
    from kubepulse.store import TimeSeriesStore  # noqa: PLC0415

    store = TimeSeriesStore()
    counter = SeriesKind.COUNTER
    steps = history_minutes * 60_000 // STEP_MS
    rng = random.Random(7)
    for index in range(pods):
        labels = {"namespace": NAMESPACE, "pod": f"web-{index}"}
        per_step = rng.uniform(50, 150)  # requests per 15 s
        shares = [*sorted(rng.random() for _ in BUCKETS[:-1]), 1.0]
        series = [
            (store.series("http_request_duration_seconds_bucket", {**labels, "le": le},
                              counter), share)
            for le, share in zip(BUCKETS, shares, strict=True)
        ]  # fmt: skip
        total = store.series("http_requests_total", labels, counter)
        for step in range(steps + 1):
            timestamp = now_ms - (steps - step) * STEP_MS
            served = per_step * step
            for handle, share in series:
                handle.append(timestamp, served * share)
            total.append(timestamp, served)
    return store


class Gauge(BaseHTTPRequestHandler):
    """A loopback target: ``bench_value`` is whatever the bench set last."""

    value = 0.0

    def do_GET(self) -> None:
        body = f"# TYPE bench_value gauge\nbench_value {Gauge.value}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def serve_process(
    port: int, cert_dir: str, pods: int, history_minutes: int, target: str | None,
    interval_s: float, ready: Any,
) -> None:  # fmt: skip
    """The server process: store (or scraper), app, HTTPS on 127.0.0.1:``port``."""
    import threading as threads  # noqa: PLC0415

    from adapter.app import create_app  # noqa: PLC0415
    from adapter.config import load_config  # noqa: PLC0415
    from adapter.logs import configure_logging  # noqa: PLC0415
    from adapter.objects import InMemoryObjectResolver  # noqa: PLC0415
    from adapter.scrape.scraper import Scraper, ScrapeSettings  # noqa: PLC0415
    from adapter.scrape.targets import StaticTargets  # noqa: PLC0415
    from adapter.security import AdapterSecurity  # noqa: PLC0415
    from adapter.server import serve  # noqa: PLC0415
    from adapter.sources.embedded import EmbeddedSource  # noqa: PLC0415
    from kubepulse.store import TimeSeriesStore  # noqa: PLC0415

    configure_logging("warning")
    lock = threads.Lock()
    now_ms = int(time.time() * 1000)
    scraper = None
    if target is None:
        store = filled_store(pods, history_minutes, now_ms)
        objects = pod_objects(pods)
    else:
        store = TimeSeriesStore(resolution_ms=round(interval_s * 1000))
        objects = pod_objects(1)
        settings = ScrapeSettings(interval_seconds=interval_s, timeout_seconds=interval_s * 0.8)
        scraper = Scraper(store, lock, StaticTargets([target]), settings)
        scraper.start()
    config = load_config([
        "--no-authentication", "--no-authorization", "--bind-address=127.0.0.1",
        f"--secure-port={port}", f"--cert-dir={cert_dir}", "--no-discovery",
        "--static-target=http://127.0.0.1:9/metrics", "--log-level=warning",
    ], {})  # fmt: skip

    async def main() -> None:
        security = await AdapterSecurity.create(config)
        app = create_app(
            source=EmbeddedSource(store, clock=lambda: int(time.time() * 1000), lock=lock),
            objects=InMemoryObjectResolver(objects),
        )
        ready.set()
        try:
            await serve(security.protect(app), config, ssl_context=security.ssl_context)
        finally:
            await security.aclose()

    asyncio.run(main())
    if scraper is not None:
        scraper.stop()


class Server:
    """One server process, stopped with SIGTERM like the adapter."""

    def __init__(self, pods: int, history_minutes: int, target: str | None = None,
                 interval_s: float = 15.0) -> None:  # fmt: skip
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="kubepulse-bench-")
        context = multiprocessing.get_context("spawn")
        ready = context.Event()
        started = time.perf_counter()
        self.process = context.Process(
            target=serve_process,
            args=(self.port, self._dir.name, pods, history_minutes, target, interval_s, ready),
            daemon=True,
        )
        self.process.start()
        if not ready.wait(600):
            self.close()
            raise SystemExit("the server process did not start within 10 minutes")
        self.ca = ssl.create_default_context(cafile=str(Path(self._dir.name) / "ca.crt"))
        self.base = f"https://127.0.0.1:{self.port}"
        with httpx.Client(verify=self.ca) as client:
            for _ in range(500):
                try:
                    if client.get(f"{self.base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.02)
        self.setup_seconds = time.perf_counter() - started
        self.ps = psutil.Process(self.process.pid or 0)

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def close(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(30)
        if self.process.is_alive():
            self.process.kill()
        self._dir.cleanup()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def load(server: Server, pods: int, concurrency: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                response = await client.get(P95_PATH)
                ok = response.status_code == 200 and len(response.json()["items"]) == pods
                reason = "" if ok else f"status {response.status_code} or wrong item count"
            except httpx.HTTPError as error:
                reason = type(error).__name__
            latencies.append(time.perf_counter() - started)
            if reason:
                errors[reason] = errors.get(reason, 0) + 1

    limits = httpx.Limits(max_connections=concurrency)
    cpu_before = server.cpu_seconds()
    wall = time.perf_counter()
    async with httpx.AsyncClient(
        base_url=server.base, verify=server.ca, limits=limits, timeout=120
    ) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    wall = time.perf_counter() - wall
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "requests_per_second": round(len(latencies) / wall, 2),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.5) * 1000, 1),
            "p99": round(percentile(latencies, 0.99) * 1000, 1),
            "max": round(max(latencies) * 1000, 1),
        },
        "server_cpu_seconds_per_request": round(
            (server.cpu_seconds() - cpu_before) / max(1, len(latencies)), 4
        ),
    }


def bench_api(
    pods: int, history_minutes: int, concurrencies: list[int], seconds: float
) -> dict[str, Any]:
    log(f"api: building and serving {pods} pods x {history_minutes} min of history ...")
    server = Server(pods, history_minutes)
    try:
        with httpx.Client(base_url=server.base, verify=server.ca, timeout=300) as client:
            started = time.perf_counter()
            first = client.get(P95_PATH)
            cold_ms = (time.perf_counter() - started) * 1000
        if first.status_code != 200 or len(first.json()["items"]) != pods:
            raise SystemExit(f"the first answer is wrong: {first.status_code} {first.text[:300]}")
        runs = []
        for concurrency in concurrencies:
            log(f"api: {pods} pods, {concurrency} concurrent clients for {seconds:g} s ...")
            runs.append(asyncio.run(load(server, pods, concurrency, seconds)))
        return {
            "pods": pods,
            "series": pods * (len(BUCKETS) + 1),
            "samples_per_series": history_minutes * 4 + 1,
            "server_setup_seconds": round(server.setup_seconds, 1),
            "cold_request_ms": round(cold_ms, 1),
            "runs": runs,
            "server_rss_mb": round(server.ps.memory_info().rss / 2**20, 1),
        }
    finally:
        server.close()


def bench_in_process(pods: int, history_minutes: int, repeats: int) -> dict[str, Any]:
    """One ``pods/*`` evaluation without HTTP: cold, all changed, none changed, a pod added."""
    from adapter.sources.embedded import EmbeddedSource  # noqa: PLC0415
    from kubepulse.metricquery import SeriesRequest, Statistic  # noqa: PLC0415
    from kubepulse.stats import SeriesKind, parse_aggregation  # noqa: PLC0415

    log(f"in-process: {pods} pods ...")
    now_ms = int(time.time() * 1000)
    store = filled_store(pods, history_minutes, now_ms)
    clock = [now_ms]
    source = EmbeddedSource(store, clock=lambda: clock[0], staleness_ms=120_000)
    names = frozenset(f"web-{index}" for index in range(pods))
    every_series = list(store)
    counter = SeriesKind.COUNTER
    figures: dict[str, Any] = {"pods": pods}
    for label, metric, aggregation in (
        ("p95", "http_request_duration_seconds", "p95"),
        ("rate", "http_requests_total", "rate"),
    ):
        request = SeriesRequest(
            metric=metric,
            statistic=Statistic(window_ms=300_000, aggregation=parse_aggregation(aggregation)),
            namespace=NAMESPACE,
            object_label="pod",
            object_names=names,
        )

        def timed(at_ms: int, request: SeriesRequest = request) -> tuple[float, float]:
            """Wall and CPU milliseconds of one call (CPU: the machine may be shared)."""
            started, cpu_started = time.perf_counter(), time.process_time()
            answer = source.evaluate(request, at_ms)
            cpu = (time.process_time() - cpu_started) * 1000
            elapsed = (time.perf_counter() - started) * 1000
            if len(answer) != pods:
                raise SystemExit(f"in-process: {len(answer)} answers for {pods} pods")
            return elapsed, cpu

        cold = timed(clock[0])
        changed: list[tuple[float, float]] = []
        unchanged: list[tuple[float, float]] = []
        for _ in range(repeats):
            clock[0] += STEP_MS  # a scrape interval later, every series got a sample
            store.append_many(
                (series, clock[0], (series.latest(clock[0], 10**9) or (0, 0.0))[1] + 7.0)
                for series in every_series
            )
            changed.append(timed(clock[0] + 1))
            unchanged.append(timed(clock[0] + 2))
        added: list[tuple[float, float]] = []
        for repeat in range(repeats):
            # A pod starts elsewhere in the namespace (outside the question's pods): its
            # series change the metric's series set, so the grouping is made again.
            labels = {"namespace": NAMESPACE, "pod": f"new-{label}-{repeat}"}
            for le in BUCKETS:
                bucket = store.series(
                    "http_request_duration_seconds_bucket", {**labels, "le": le}, counter
                )
                bucket.append(clock[0], 0.0)
            store.series("http_requests_total", labels, counter).append(clock[0], 0.0)
            added.append(timed(clock[0] + 3 + repeat))
        figures[label] = {
            "cold_ms": round(cold[0], 1),
            "cold_cpu_ms": round(cold[1], 1),
            "every_pod_changed_ms": _spread(changed),
            "nothing_changed_ms": _spread(unchanged),
            "another_pod_added_ms": _spread(added),
        }
    return figures


def _spread(calls: list[tuple[float, float]]) -> dict[str, float]:
    """Median and max wall time, and median CPU time, of ``(wall, cpu)`` milliseconds."""
    walls = [wall for wall, _ in calls]
    return {
        "median": round(statistics.median(walls), 1),
        "max": round(max(walls), 1),
        "cpu_median": round(statistics.median(cpu for _, cpu in calls), 1),
    }


def bench_freshness(interval_s: float, changes: int) -> dict[str, Any]:
    http = ThreadingHTTPServer(("127.0.0.1", 0), Gauge)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    target = f"http://127.0.0.1:{http.server_address[1]}/metrics;role=pod;namespace={NAMESPACE};pod=web-0"
    log(f"freshness: scrape interval {interval_s:g} s, {changes} changes ...")
    server = Server(1, 0, target=target, interval_s=interval_s)
    path = (
        f"{V2}/namespaces/{NAMESPACE}/pods/web-0/bench_value"
        "?metricLabelSelector=kubepulse.io%2Faggregation%3Dlast,kubepulse.io%2Fwindow%3D30s"
    )
    lags: list[float] = []
    rng = random.Random(3)
    try:
        with httpx.Client(base_url=server.base, verify=server.ca, timeout=30) as client:
            deadline = time.monotonic() + 4 * interval_s + 30
            while client.get(path).status_code != 200:  # the first scrape
                if time.monotonic() > deadline:
                    raise SystemExit("the API never answered for the scraped target")
                time.sleep(0.05)
            for change in range(1, changes + 1):
                time.sleep(rng.uniform(0, interval_s))  # a random phase of the schedule
                Gauge.value = float(change)
                changed = time.perf_counter()
                while True:
                    response = client.get(path)
                    if response.status_code == 200:
                        value = response.json()["items"][0]["value"]
                        if value == str(change):
                            break
                    time.sleep(0.01)
                lags.append(time.perf_counter() - changed)
    finally:
        server.close()
        http.shutdown()
    return {
        "scrape_interval_seconds": interval_s,
        "changes": len(lags),
        "lag_seconds": {
            "min": round(min(lags), 3),
            "median": round(statistics.median(lags), 3),
            "max": round(max(lags), 3),
            "mean": round(statistics.fmean(lags), 3),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", default="100,1000,5000", help="pod counts (default %(default)s)")
    parser.add_argument("--history", type=int, default=10, help="minutes of history (default 10)")
    parser.add_argument("--concurrency", default="1,8", help="concurrent clients (default 1,8)")
    parser.add_argument("--seconds", type=float, default=20, help="seconds per run (default 20)")
    parser.add_argument("--freshness-intervals", default="1,15",
                        help="scrape intervals in seconds (default 1,15)")  # fmt: skip
    parser.add_argument("--changes", type=int, default=10, help="changes per interval (default 10)")
    parser.add_argument("--repeats", type=int, default=10,
                        help="in-process calls per case (default 10)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a small run, about a minute")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.pods, arguments.seconds, arguments.history = "100", 3, 6
        arguments.freshness_intervals, arguments.changes = "1", 3
        arguments.repeats = 3
    pods = [int(value) for value in arguments.pods.split(",")]
    concurrencies = [int(value) for value in arguments.concurrency.split(",")]
    intervals = [float(value) for value in arguments.freshness_intervals.split(",")]
    if arguments.history < 6:
        parser.error("--history must be at least 6 minutes: the query's window is 5m")
    result = {
        "benchmark": "adapter_api",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "query": P95_PATH,
        "api": [bench_api(n, arguments.history, concurrencies, arguments.seconds) for n in pods],
        "in_process": [bench_in_process(n, arguments.history, arguments.repeats) for n in pods],
        "freshness": [
            bench_freshness(
                interval, arguments.changes if interval <= 5 else max(3, arguments.changes // 2)
            )
            for interval in intervals
        ],
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

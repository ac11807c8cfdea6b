"""Benchmark of the adapter's embedded data path: parsing, scrape + ingest, checkpoints.

Measures, and prints as one JSON object (progress goes to stderr):

- **parse**: throughput in samples per second on a realistic kubepulse exporter page of
  a 110-pod node (built from the metric catalog the exporter publishes from, written by
  prometheus_client as the exporter does): the scanner alone (what a scrape of known
  series costs), the full parse (names, labels, kinds: what a new series costs), and
  prometheus_client's own parser for comparison;
- **scrape**: ``targets`` loopback HTTP servers (in a separate process, so their CPU is
  not counted) each serving a gzip-compressed page of ``series`` series whose values
  change every scrape, scraped by the real :class:`~adapter.scrape.Scraper` into a
  :class:`~kubepulse.store.TimeSeriesStore`:

  - *burst*: every target at once (``scrape_once``), first the round that creates
    every series, then steady rounds; wall time, CPU seconds and samples per second
    per round, and how long the store lock was held (in all, and at most at once);
  - *loop*: the scraper's own schedule (targets spread over the interval) for a few
    intervals: CPU seconds per interval and the share of one core;
- **checkpoint**: the lock held while checkpointing a 1,000-series store with
  ``checkpoint_hours`` of history, and the store the scrape part built: hold count,
  longest and total hold, copy and write times, file size; and how long compaction
  and ``memory_bytes()`` (the ``store_bytes`` gauge) hold the lock.

    python bench/scrape_bench.py                  # 100 targets x 1,000 series, 24 h checkpoint
    python bench/scrape_bench.py --quick          # about ten seconds
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

# Run from a checkout without installing: the repository root holds the packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from adapter.scrape import Checkpointer, Scraper, ScrapeSettings, StaticTargets
from adapter.scrape.exposition import parse_exposition, scan_exposition
from kubepulse.catalog import CATALOG, MetricType, Scope
from kubepulse.stats.summary import SeriesKind
from kubepulse.store import TimeSeriesStore

SCRAPE_S = 15.0
PAGE_VARIANTS = 4


class GcPauses:
    """Pauses of the cyclic garbage collector, which stop every thread (lock or not)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))

    def take(self) -> dict[str, Any]:
        """The pauses since the last call, and forget them."""
        pauses, self.pauses = self.pauses, []
        oldest = [seconds for generation, seconds in pauses if generation == 2]
        return {
            "collections": len(pauses),
            "total_seconds": round(sum(seconds for _, seconds in pauses), 4),
            "max_seconds": round(max((seconds for _, seconds in pauses), default=0.0), 4),
            "generation_2_collections": len(oldest),
        }


GC = GcPauses()


def log(message: str) -> None:
    print(f"[scrape_bench] {message}", file=sys.stderr, flush=True)


def resident_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------- an exporter page


class _NodePage(Collector):
    """A kubepulse exporter's page for one node: every catalog family, realistic labels."""

    def __init__(self, pods: int, seed: int, value_seed: int = 0) -> None:
        generator = random.Random(seed)
        self.node = "ip-10-0-17-203.eu-west-1.compute.internal"
        namespaces = ["default", "kube-system", "monitoring", "payments", "search", "web"]
        self.pods = []
        for index in range(pods):
            namespace = generator.choice(namespaces)
            workload = f"{generator.choice(['api', 'web', 'worker', 'cache'])}-{index % 17}"
            pod = f"{workload}-{generator.getrandbits(32):08x}-{generator.getrandbits(20):05x}"
            containers = ["app"] + (["istio-proxy"] if generator.random() < 0.4 else [])
            containers += ["log-shipper"] if generator.random() < 0.1 else []
            self.pods.append(
                (namespace, pod, str(uuid.UUID(int=generator.getrandbits(128))), containers)
            )
        self.generator = random.Random(value_seed)

    def _labels(self, spec_labels: Sequence[str], values: dict[str, str]) -> list[str]:
        return [values.get(label, "x") for label in spec_labels]

    def collect(self) -> Iterator[Metric]:
        generator = self.generator
        for spec in CATALOG:
            if spec.type is MetricType.COUNTER:
                family: Metric = CounterMetricFamily(
                    spec.family_name, spec.help, labels=spec.labels
                )
            elif spec.type is MetricType.GAUGE:
                family = GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
            else:
                family = HistogramMetricFamily(spec.name, spec.help, labels=spec.labels)
            for values in self._objects(spec.scope, spec.labels):
                label_values = self._labels(spec.labels, values)
                if spec.type is MetricType.HISTOGRAM:
                    count = generator.randint(0, 900)
                    running = 0
                    buckets = []
                    for bound in spec.buckets:
                        running += generator.randint(0, max(1, (count - running) // 3))
                        buckets.append((repr(bound), running))
                    buckets.append(("+Inf", count))
                    family.add_metric(label_values, buckets, sum_value=generator.random() * count)  # type: ignore[attr-defined]
                else:
                    value = round(generator.random() * 10 ** generator.randint(0, 10), 6)
                    family.add_metric(label_values, value)  # type: ignore[attr-defined]
            yield family

    def _objects(self, scope: Scope, labels: Sequence[str]) -> Iterator[dict[str, str]]:
        node = {"node": self.node}
        if scope is Scope.CONTAINER:
            for namespace, pod, uid, containers in self.pods:
                for container in containers:
                    base = {
                        **node,
                        "namespace": namespace,
                        "pod": pod,
                        "pod_uid": uid,
                        "container": container,
                        "runtime": "containerd",
                        "container_id": "containerd://" + uid.replace("-", "") * 2,
                        "image": f"registry.example.com/{container}:1.{len(pod) % 9}.0",
                    }
                    yield from _with_resources(base, labels)
        elif scope is Scope.POD:
            for namespace, pod, uid, _ in self.pods:
                base = {
                    **node,
                    "namespace": namespace,
                    "pod": pod,
                    "pod_uid": uid,
                    "qos_class": "Burstable",
                }
                yield from _with_resources(base, labels)
        elif scope is Scope.NODE:
            if "mode" in labels:
                for mode in ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"):
                    yield {**node, "mode": mode}
            elif "component" in labels:
                for component in ("daemon", "shim"):
                    yield {**node, "runtime": "containerd", "component": component}
            else:
                yield from _with_resources(node, labels)
        elif scope is Scope.HOST_PROCESS:
            for group in ("kubelet", "containerd", "systemd", "sshd", "journald", "other"):
                yield {**node, "group": group}
        else:
            for collector in ("cgroups", "procfs", "pods", "node"):
                yield {
                    **node,
                    "collector": collector,
                    "reason": "parse_error",
                    "version": "0.1.0",
                    "cgroup_version": "2",
                    "runtime": "containerd",
                }


def _with_resources(base: dict[str, str], labels: Sequence[str]) -> Iterator[dict[str, str]]:
    if "resource" not in labels:
        yield base
        return
    for resource, unit in (("cpu", "core"), ("memory", "byte")):
        yield {**base, "resource": resource, "unit": unit, "reason": "OOMKilled"}


def exporter_page(pods: int, seed: int = 1, value_seed: int = 0) -> str:
    """The page of a node with ``pods`` pods; ``value_seed`` varies the values only."""
    registry = CollectorRegistry()
    registry.register(_NodePage(pods, seed, value_seed))
    return generate_latest(registry).decode()


def rate(samples: int, seconds: float) -> float:
    return round(samples / seconds) if seconds > 0 else 0.0


def best_of(repeats: int, work: Any) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return min(timings)


def bench_parse(pods: int, repeats: int) -> dict[str, Any]:
    page = exporter_page(pods)
    samples = len(scan_exposition(page).series)
    log(f"exporter page for {pods} pods: {len(page)} bytes, {samples} samples")
    scan = best_of(repeats, lambda: scan_exposition(page))
    full = best_of(repeats, lambda: parse_exposition(page))
    reference = best_of(
        max(1, repeats // 3),
        lambda: sum(len(family.samples) for family in text_string_to_metric_families(page)),
    )
    return {
        "page": {
            "pods": pods,
            "bytes": len(page),
            "gzip_bytes": len(gzip.compress(page.encode(), 6)),
            "samples": samples,
            "families": len(CATALOG),
        },
        "scan_samples_per_second": rate(samples, scan),
        "full_parse_samples_per_second": rate(samples, full),
        "prometheus_client_samples_per_second": rate(samples, reference),
        "scan_ms_per_page": round(scan * 1000, 2),
        "full_parse_ms_per_page": round(full * 1000, 2),
        "prometheus_client_ms_per_page": round(reference * 1000, 2),
    }


# ---------------------------------------------------------------------- loopback servers


def synthetic_pages(target: int, series: int, variants: int) -> list[bytes]:
    """gzip-compressed pages of ``series`` series, an application's usual mix."""
    generator = random.Random(target)
    pages = []
    base = [generator.random() * 1000 for _ in range(series)]
    for variant in range(variants):
        lines = ["# TYPE http_requests_total counter"]
        per_family = series // 4
        for index in range(per_family):
            lines.append(
                f'http_requests_total{{method="GET",route="/api/v1/items/{index}",code="200"}} '
                f"{base[index] + variant * 7}"
            )
        lines.append("# TYPE http_request_duration_seconds histogram")
        buckets = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
        routes = max(1, per_family // (len(buckets) + 3))
        written = 0
        for route in range(routes):
            for bound in (*buckets, "+Inf"):
                lines.append(
                    f'http_request_duration_seconds_bucket{{route="/r{route}",le="{bound}"}} '
                    f"{variant * 3 + route}"
                )
            lines.append(f'http_request_duration_seconds_sum{{route="/r{route}"}} {variant * 0.7}')
            lines.append(f'http_request_duration_seconds_count{{route="/r{route}"}} {variant * 3}')
            written += len(buckets) + 3
        lines.append("# TYPE work_queue_depth gauge")
        remaining = series - per_family - written
        for index in range(remaining):
            lines.append(
                f'work_queue_depth{{queue="q{index}",shard="{index % 8}"}} '
                f"{generator.randint(0, 500)}"
            )
        pages.append(gzip.compress(("\n".join(lines) + "\n").encode(), 6))
    return pages


def serve(targets: int, series: int, variants: int, exporter_pods: int) -> None:
    """The server process: print the ports, serve until stdin closes.

    With ``exporter_pods`` each target serves an exporter page of that many pods (two
    variants), otherwise a synthetic application page of ``series`` series.
    """

    async def main() -> None:
        ports = []
        servers = []
        for target in range(targets):
            if exporter_pods:
                pages = [
                    gzip.compress(exporter_page(exporter_pods, target, variant).encode(), 6)
                    for variant in range(2)
                ]
            else:
                pages = synthetic_pages(target, series, variants)
            served = [0]

            async def handle(
                reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter,
                pages: list[bytes] = pages,
                served: list[int] = served,
            ) -> None:
                try:
                    while True:
                        await reader.readuntil(b"\r\n\r\n")
                        body = pages[served[0] % len(pages)]
                        served[0] += 1
                        writer.write(
                            b"HTTP/1.1 200 OK\r\n"
                            b"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                            b"Content-Encoding: gzip\r\n"
                            + f"Content-Length: {len(body)}\r\n\r\n".encode()
                            + body
                        )
                        await writer.drain()
                except (asyncio.IncompleteReadError, ConnectionError):
                    pass
                finally:
                    writer.close()

            server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=64)
            servers.append(server)
            ports.append(server.sockets[0].getsockname()[1])
        print(json.dumps({"ports": ports}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        for server in servers:
            server.close()

    asyncio.run(main())


class FakeClock:
    def __init__(self) -> None:
        self.seconds = time.time()

    def __call__(self) -> float:
        return self.seconds


class LoopbackServers:
    """The server process (this file with ``--serve``) and the static targets it serves."""

    def __init__(self, targets: int, series: int, exporter_pods: int = 0) -> None:
        what = f"exporter pages of {exporter_pods} pods" if exporter_pods else f"{series} series"
        log(f"starting {targets} loopback servers of {what} each")
        self.process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                "--targets",
                str(targets),
                "--series",
                str(series),
                "--exporter-pods",
                str(exporter_pods),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ports = json.loads(self.process.stdout.readline())["ports"]
        role = "exporter" if exporter_pods else "pod;namespace=bench;node=n1"
        self.urls = [
            f"http://127.0.0.1:{port}/metrics;role={role}"
            + ("" if exporter_pods else f";pod=app-{index}")
            for index, port in enumerate(ports)
        ]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def burst_rounds(urls: Sequence[str], rounds: int) -> tuple[dict[str, Any], Scraper]:
    """Scrape every target at once, ``rounds`` times, 15 s of (fake) time apart."""
    store = TimeSeriesStore()
    clock = FakeClock()
    scraper = Scraper(
        store,
        threading.Lock(),
        StaticTargets(urls),
        ScrapeSettings(max_concurrent_scrapes=32),
        wall_clock=clock,
    )
    burst = []
    for round_number in range(rounds):
        hold_total = scraper.lock_hold_seconds_total
        scraper.lock_hold_seconds_max = 0.0
        GC.take()
        cpu = time.process_time()
        started = time.perf_counter()
        results = asyncio.run(scraper.scrape_once())
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        failed = [result for result in results if not result.up]
        assert not failed, failed[0].error
        appended = sum(result.appended for result in results)
        burst.append(
            {
                "round": "creates every series" if round_number == 0 else "steady",
                "wall_seconds": round(wall, 3),
                "cpu_seconds": round(cpu, 3),
                "samples_appended": appended,
                "samples_per_second_wall": rate(appended, wall),
                "lock_held_seconds_total": round(scraper.lock_hold_seconds_total - hold_total, 4),
                "lock_held_seconds_max": round(scraper.lock_hold_seconds_max, 5),
                "gc": GC.take(),
            }
        )
        log(f"burst round {round_number}: {burst[-1]}")
        clock.seconds += SCRAPE_S
    steady = burst[1:] or burst
    cpu_median = statistics.median(r["cpu_seconds"] for r in steady)
    cache_bytes = sum(
        sys.getsizeof(state.cache)
        + sum(sys.getsizeof(key) + sys.getsizeof(entry) for key, entry in state.cache.items())
        for state in scraper._active.values()  # measuring, not using
    )
    return {
        "targets": len(urls),
        "samples_per_round": burst[0]["samples_appended"],
        "rounds": burst,
        "steady_median": {
            "wall_seconds": round(statistics.median(r["wall_seconds"] for r in steady), 3),
            "cpu_seconds": round(cpu_median, 3),
            "lock_held_seconds_total": round(
                statistics.median(r["lock_held_seconds_total"] for r in steady), 4
            ),
            "lock_held_seconds_max": max(r["lock_held_seconds_max"] for r in steady),
            "cpu_share_of_a_15s_interval": round(cpu_median / SCRAPE_S, 4),
        },
        "store_series": store.series_count,
        "series_cache_bytes": cache_bytes,
        "series_cache_bytes_per_series": round(cache_bytes / max(1, store.series_count), 1),
    }, scraper


def scrape_loop(urls: Sequence[str], intervals: int, interval_s: float) -> dict[str, Any]:
    """The scraper's own schedule, at real time: CPU per interval once series exist."""
    log(f"scrape loop: {intervals} intervals of {interval_s} s")
    scraper = Scraper(
        TimeSeriesStore(resolution_ms=int(interval_s * 1000)),
        threading.Lock(),
        StaticTargets(urls),
        ScrapeSettings(
            interval_seconds=interval_s,
            timeout_seconds=interval_s * 0.6,
            max_concurrent_scrapes=32,
        ),
    )
    appended_metric = "kubepulse_adapter_scrape_samples_appended_total"
    with scraper:
        time.sleep(interval_s * 1.5)  # the first scrapes create the series
        appended = scraper.metrics.registry.get_sample_value(appended_metric) or 0.0
        GC.take()
        holds_before = scraper.lock_hold_seconds_total
        scraper.lock_hold_seconds_max = 0.0
        cpu = time.process_time()
        time.sleep(interval_s * intervals)
        cpu = time.process_time() - cpu
        gc_pauses = GC.take()
        holds = scraper.lock_hold_seconds_total - holds_before
        appended = (scraper.metrics.registry.get_sample_value(appended_metric) or 0.0) - appended
    return {
        "interval_seconds": interval_s,
        "intervals": intervals,
        "cpu_seconds_per_interval": round(cpu / intervals, 3),
        "cpu_share_of_one_core": round(cpu / (interval_s * intervals), 4),
        "samples_appended_per_interval": round(appended / intervals),
        "lock_held_seconds_per_interval": round(holds / intervals, 4),
        "lock_held_seconds_max": round(scraper.lock_hold_seconds_max, 5),
        "gc": gc_pauses,
        "targets_down_at_the_end": sum(1 for result in scraper.health() if not result.up),
    }


# ---------------------------------------------------------------------- checkpoints


def history_store(series: int, hours: float) -> TimeSeriesStore:
    """``series`` series (half counters, half gauges) with ``hours`` of 15 s samples."""
    store = TimeSeriesStore()
    generator = random.Random(3)
    handles = [
        store.series(
            "bench_metric",
            {"namespace": "bench", "pod": f"pod-{index}", "container": "app"},
            SeriesKind.COUNTER if index % 2 else SeriesKind.GAUGE,
        )
        for index in range(series)
    ]
    levels = [generator.random() * 1e6 for _ in range(series)]
    steps = int(hours * 3600 / SCRAPE_S)
    start_ms = int(time.time() * 1000) - steps * int(SCRAPE_S * 1000)
    for step in range(steps):
        timestamp_ms = start_ms + step * int(SCRAPE_S * 1000)
        for index in range(series):
            levels[index] += generator.random() * 100 if index % 2 else generator.gauss(0, 1000)
        store.append_many(
            (handle, timestamp_ms, round(levels[index], 3)) for index, handle in enumerate(handles)
        )
    return store


def checkpoint_figures(
    store: TimeSeriesStore, lock: threading.Lock, directory: Path
) -> dict[str, Any]:
    checkpointer = Checkpointer(store, lock, directory / "bench.ckpt")
    GC.take()
    report = checkpointer.checkpoint()
    gc_pauses = GC.take()
    _, compaction_hold = checkpointer.compact()
    started = time.perf_counter()
    with lock:
        memory = store.memory_bytes()
    memory_hold = time.perf_counter() - started
    return {
        "series": report.info.series_count,
        "samples": report.info.sample_count,
        "file_bytes": report.info.size_bytes,
        "lock_holds": report.lock.count,
        "lock_held_seconds_max": round(report.lock.max_seconds, 5),
        "lock_held_seconds_total": round(report.lock.total_seconds, 4),
        "copy_seconds": round(report.copy_seconds, 3),
        "write_seconds": round(report.write_seconds, 3),
        "gc_during_checkpoint": gc_pauses,
        "compaction_lock_held_seconds": round(compaction_hold, 4),
        "memory_bytes_lock_held_seconds": round(memory_hold, 4),
        "store_memory_bytes": memory,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=110, help="pods on the exporter page's node")
    parser.add_argument("--targets", type=int, default=100, help="loopback targets")
    parser.add_argument("--series", type=int, default=1000, help="series per target")
    parser.add_argument("--rounds", type=int, default=6, help="burst rounds (the first creates)")
    parser.add_argument("--loop-intervals", type=int, default=4)
    parser.add_argument("--loop-interval", type=float, default=5.0, help="seconds")
    parser.add_argument("--repeats", type=int, default=9, help="parse repetitions (best of)")
    parser.add_argument(
        "--checkpoint-hours", type=float, default=24.0, help="history of the 1,000-series store"
    )
    parser.add_argument("--quick", action="store_true", help="a run of about ten seconds")
    parser.add_argument(
        "--exporter-targets", type=int, default=5, help="loopback exporters of --pods pods"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--exporter-pods", type=int, default=0, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.serve:
        serve(arguments.targets, arguments.series, PAGE_VARIANTS, arguments.exporter_pods)
        return 0
    if arguments.quick:
        arguments.targets, arguments.rounds, arguments.repeats = 20, 3, 3
        arguments.exporter_targets = 2
        arguments.loop_intervals, arguments.loop_interval = 2, 1.0
        arguments.checkpoint_hours = 1.0
    started = time.perf_counter()
    rss_before = resident_bytes()
    parse = bench_parse(arguments.pods, arguments.repeats)
    log(f"parse: {parse}")
    servers = LoopbackServers(arguments.targets, arguments.series)
    try:
        application, scraper = burst_rounds(servers.urls, arguments.rounds)
        loop = scrape_loop(servers.urls, arguments.loop_intervals, arguments.loop_interval)
    finally:
        servers.close()
    exporters = LoopbackServers(arguments.exporter_targets, 0, exporter_pods=arguments.pods)
    try:
        exporter, _ = burst_rounds(exporters.urls, arguments.rounds)
    finally:
        exporters.close()
    with tempfile.TemporaryDirectory() as directory:
        log(f"building a 1,000-series store with {arguments.checkpoint_hours} h of history")
        history = history_store(1000, arguments.checkpoint_hours)
        checkpoint_1000 = checkpoint_figures(history, threading.Lock(), Path(directory))
        log(f"checkpoint of 1,000 series: {checkpoint_1000}")
        checkpoint_scraped = checkpoint_figures(scraper.store, threading.Lock(), Path(directory))
    result = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "command": " ".join(["python", "bench/scrape_bench.py", *(argv or sys.argv[1:])]),
        "parse": parse,
        "scrape": {
            "application_pages": {"series_per_target": arguments.series, **application},
            "application_pages_loop": loop,
            "exporter_pages": {"pods_per_page": arguments.pods, **exporter},
        },
        "checkpoint": {
            f"1000_series_{arguments.checkpoint_hours:g}h": checkpoint_1000,
            "the_scraped_store": checkpoint_scraped,
        },
        "rss_growth_bytes": resident_bytes() - rss_before,
        "run_seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

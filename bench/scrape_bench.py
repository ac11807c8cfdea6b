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

- **rig** (``--rig-pods``/``--rig-nodes``): the scale rig's page shape. The synthetic
  exporter of ``tests/cluster/synthetic_exporter.py`` (in its own process, so its CPU is
  not counted) serves one page per node at ``/nodes/<node>/metrics``, as the rig will;
  the real scraper scrapes every node page per round (``scrape_once``, rounds 15 s of
  fake time apart, so every round appends). Per steady round: CPU seconds (of this
  process: HTTP client, decoding, parsing, the series cache, the store), samples per
  second, and where the CPU went: decoding + scanning the pages
  (:func:`~adapter.scrape.exposition.scan_exposition`), the series cache lookups, and
  the store (series creation and ``append_many``, timed as the lock holds), the rest
  being HTTP and scheduling. ``--profile`` adds the top functions of a cProfile of one
  steady round.

    python bench/scrape_bench.py                  # 100 targets x 1,000 series, 24 h checkpoint
    python bench/scrape_bench.py --quick          # about ten seconds
    python bench/scrape_bench.py --rig-pods 50000 --rig-nodes 1000 --rig-only
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import gzip
import hashlib
import json
import os
import platform
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
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
from adapter.scrape import scraper as scraper_module
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
    burst: list[dict[str, Any]] = []
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


# ---------------------------------------------------------------------- the rig's pages

REPOSITORY = Path(__file__).resolve().parents[1]


class RigExporter:
    """The scale rig's synthetic exporter in a process of its own, and its node pages."""

    def __init__(self, pods: int, nodes: int, namespaces: int) -> None:
        log(f"starting the synthetic exporter: {pods} pods on {nodes} nodes")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.cluster.synthetic_exporter",
                "--pods",
                str(pods),
                "--nodes",
                str(nodes),
                "--namespaces",
                str(namespaces),
                "--port",
                "0",
            ],
            cwd=REPOSITORY,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert self.process.stdout is not None
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(
                    "the synthetic exporter exited before serving; run "
                    "'python -m tests.cluster.synthetic_exporter --pods 10 --nodes 2 --print' "
                    "from the repository root to see why"
                )
            self.url = json.loads(line)["url"]
            with urllib.request.urlopen(f"{self.url}/targets", timeout=30) as answer:
                self.pages: list[str] = json.load(answer)
        except BaseException:
            self.close()
            raise
        log(f"serving {len(self.pages)} node pages after {time.perf_counter() - started:.1f} s")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


class ThreadTimer:
    """Adds up the CPU time of this thread spent in one function of a module or class.

    The benchmark swaps the name for a timing wrapper while it measures (and puts it
    back after): the scraper looks such names up at call time, so nothing else changes.
    """

    def __init__(self, owner: Any, name: str) -> None:
        self.owner, self.name = owner, name
        self.original = getattr(owner, name)
        self.seconds = 0.0
        self.calls = 0

    def __enter__(self) -> ThreadTimer:
        original = self.original

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.thread_time() - started
                self.calls += 1

        setattr(self.owner, self.name, timed)
        return self

    def __exit__(self, *_exc_info: object) -> None:
        setattr(self.owner, self.name, self.original)

    def take(self) -> float:
        """The seconds since the last call, and start again from zero."""
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def _top_functions(profile: cProfile.Profile, count: int) -> list[dict[str, Any]]:
    statistics_ = pstats.Stats(profile)
    rows = []
    for (filename, line, function), (_, calls, tottime, cumtime, _) in statistics_.stats.items():  # type: ignore[attr-defined]
        where = filename.replace(str(REPOSITORY) + "/", "")
        if "site-packages/" in where:
            where = where.split("site-packages/", 1)[1]
        rows.append(
            {
                "function": f"{where}:{line}({function})",
                "calls": calls,
                "own_seconds": round(tottime, 4),
                "cumulative_seconds": round(cumtime, 4),
            }
        )
    rows.sort(key=lambda row: row["own_seconds"], reverse=True)
    return rows[:count]


class OffsetClock:
    """The wall clock plus an offset the benchmark moves forward (a burst round per 15 s)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def _run_for(scraper: Scraper, warm_seconds: float, seconds: float) -> tuple[float, float]:
    """Run the scraper's own loop in this thread; CPU and wall seconds after a warm-up."""
    task = asyncio.get_running_loop().create_task(scraper.run())
    try:
        await asyncio.sleep(warm_seconds)
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        # cancelled again until it ends: before 2026-11-23 a target loop that outlived
        # a cancellation (asyncio.wait_for can swallow one) kept Scraper.run waiting
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _split(cpu: float, timers: dict[str, ThreadTimer]) -> dict[str, float]:
    """Where ``cpu`` seconds went, from the timers (which start again from zero)."""
    parts = {name: timer.take() for name, timer in timers.items()}
    # decode_body runs in the scan's argument list, not inside scan_exposition
    parse = parts.pop("decode_and_scan") + parts.pop("decode_body")
    accounted = parse + sum(parts.values())
    return {
        "decode_and_scan": round(parse, 3),
        **{name: round(seconds, 3) for name, seconds in parts.items()},
        "http_and_scheduling": round(max(0.0, cpu - accounted), 3),
    }


def rig_rounds(
    pages: Sequence[str], rounds: int, intervals: int, concurrency: int, profile: bool
) -> dict[str, Any]:
    """Scrape every node page: ``rounds`` bursts (15 s of fake time apart), then the
    scraper's own schedule for ``intervals`` intervals of 15 s; split the CPU."""
    urls = [f"{page};role=exporter" for page in pages]
    store = TimeSeriesStore()
    clock = OffsetClock()
    scraper = Scraper(
        store,
        threading.Lock(),
        StaticTargets(urls),
        ScrapeSettings(max_concurrent_scrapes=concurrency),
        wall_clock=clock,
    )
    timers = {
        "decode_and_scan": ThreadTimer(scraper_module, "scan_exposition"),
        "decode_body": ThreadTimer(scraper_module, "decode_body"),
        "series_cache": ThreadTimer(scraper_module, "_cached_samples"),
        "new_series_parse": ThreadTimer(scraper_module, "_new_series"),
        "store": ThreadTimer(Scraper, "_store_page"),
    }
    measured: list[dict[str, Any]] = []
    profiled: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        for timer in timers.values():
            stack.enter_context(timer)
        for round_number in range(rounds):
            for timer in timers.values():
                timer.take()
            GC.take()
            cpu = time.process_time()
            started = time.perf_counter()
            results = asyncio.run(scraper.scrape_once())
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu
            failed = [result for result in results if not result.up]
            if len(failed) == len(results):
                raise RuntimeError(f"every scrape failed, the first: {failed[0].error}")
            appended = sum(result.appended for result in results)
            record = {
                "round": "creates every series" if round_number == 0 else "steady",
                "wall_seconds": round(wall, 3),
                "cpu_seconds": round(cpu, 3),
                # a loaded machine can starve the exporter's process: counted, not hidden
                "scrapes_failed": len(failed),
                **({"first_failure": failed[0].error} if failed else {}),
                "samples_appended": appended,
                "samples_per_cpu_second": rate(appended, cpu),
                "cpu_seconds_by_part": _split(cpu, timers),
                "lock_held_seconds_max": round(scraper.lock_hold_seconds_max, 5),
                "gc": GC.take(),
            }
            scraper.lock_hold_seconds_max = 0.0
            measured.append(record)
            log(f"rig round {round_number}: {record}")
            clock.offset += SCRAPE_S
        loop: dict[str, Any] = {}
        if intervals:
            log(f"the scraper's own schedule: a warm-up interval, then {intervals} of 15 s")
            appended_metric = "kubepulse_adapter_scrape_samples_appended_total"
            registry = scraper.metrics.registry
            profiler = cProfile.Profile() if profile else None
            warm = SCRAPE_S + 1.0
            appended_before = [0.0]

            async def measure() -> tuple[float, float]:
                # the timers and the appended counter start once the warm-up is over
                async def reset() -> None:
                    await asyncio.sleep(warm - 0.001)
                    for timer in timers.values():
                        timer.take()
                    appended_before[0] = registry.get_sample_value(appended_metric) or 0.0
                    GC.take()
                    if profiler is not None:
                        profiler.enable()

                resetting = asyncio.get_running_loop().create_task(reset())
                try:
                    return await _run_for(scraper, warm, SCRAPE_S * intervals)
                finally:
                    if profiler is not None:
                        profiler.disable()
                    await resetting

            cpu, wall = asyncio.run(measure())
            loop_appended = round(
                (registry.get_sample_value(appended_metric) or 0.0) - appended_before[0]
            )
            per_interval = cpu / intervals
            split = _split(cpu, timers)
            loop = {
                "intervals": intervals,
                "wall_seconds": round(wall, 1),
                "cpu_seconds_per_15s_interval": round(per_interval, 3),
                "cpu_share_of_one_core": round(cpu / wall, 4),
                "samples_appended_per_interval": round(loop_appended / intervals),
                "samples_per_cpu_second": rate(loop_appended, cpu),
                "cpu_seconds_per_interval_by_part": {
                    name: round(seconds / intervals, 3) for name, seconds in split.items()
                },
                "cpu_share_by_part": {
                    name: round(seconds / cpu, 3) if cpu else 0.0 for name, seconds in split.items()
                },
                "lock_held_seconds_max": round(scraper.lock_hold_seconds_max, 5),
                "gc": GC.take(),
                "targets_down_at_the_end": sum(1 for result in scraper.health() if not result.up),
            }
            log(f"rig loop: {loop}")
            if profiler is not None:
                profiled = _top_functions(profiler, 30)
    steady = measured[1:] or measured
    cpu_median = statistics.median(r["cpu_seconds"] for r in steady)
    appended_median = statistics.median(r["samples_appended"] for r in steady)
    parts_median = {
        name: round(statistics.median(r["cpu_seconds_by_part"][name] for r in steady), 3)
        for name in steady[0]["cpu_seconds_by_part"]
    }
    cache_bytes = sum(
        sys.getsizeof(state.cache)
        + sum(sys.getsizeof(key) + sys.getsizeof(entry) for key, entry in state.cache.items())
        for state in scraper._active.values()  # measuring, not using
    )
    with scraper._lock:  # measuring, not using
        store_bytes = store.memory_bytes()
    return {
        "targets": len(urls),
        "max_concurrent_scrapes": concurrency,
        "samples_per_round": measured[0]["samples_appended"],
        "rounds": measured,
        "steady_median": {
            "cpu_seconds_per_15s_interval": round(cpu_median, 3),
            "cpu_share_of_one_core": round(cpu_median / SCRAPE_S, 4),
            "samples_per_second_needed": round(appended_median / SCRAPE_S),
            "samples_per_cpu_second": rate(appended_median, cpu_median),
            "cpu_seconds_by_part": parts_median,
            "cpu_share_by_part": {
                name: round(seconds / cpu_median, 3) if cpu_median else 0.0
                for name, seconds in parts_median.items()
            },
        },
        "loop": loop,
        "store_series": store.series_count,
        "store_memory_bytes": store_bytes,
        "series_cache_bytes": cache_bytes,
        "series_cache_bytes_per_series": round(cache_bytes / max(1, store.series_count), 1),
        "profile_of_the_loop_top_own_time": profiled,
    }


def bench_rig(
    pods: int, nodes: int, rounds: int, intervals: int, concurrency: int, profile: bool
) -> dict[str, Any]:
    namespaces = max(1, min(100, pods // 500))
    exporter = RigExporter(pods, nodes, namespaces)
    try:
        figures = rig_rounds(exporter.pages, rounds, intervals, concurrency, profile)
    finally:
        exporter.close()
    return {"pods": pods, "nodes": nodes, "namespaces": namespaces, **figures}


# ---------------------------------------------------------------------- JSON encoding

ENCODE_NOW_MS = 1_790_000_000_000
ENCODE_PATH = (
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/bench/pods/*/http_request_duration_seconds"
)
ENCODE_PARAMS = {
    "labelSelector": "app=web",
    "metricLabelSelector": "kubepulse.io/aggregation=p95,kubepulse.io/window=5m",
}


class _FixedSource:
    """A metric source that answers at once with fixed values: only the API is measured."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values

    async def query(self, request: Any, now_ms: int) -> list[Any]:
        return self.values

    async def metrics(self) -> list[Any]:
        return []

    async def ready(self) -> bool:
        return True


def _cpu_ms(repeats: int, work: Any) -> float:
    """The median CPU milliseconds of ``work()``, over ``repeats`` runs."""
    timings = []
    for _ in range(repeats):
        started = time.process_time()
        work()
        timings.append(time.process_time() - started)
    return round(statistics.median(timings) * 1000, 2)


def bench_encode(pod_counts: Sequence[int], repeats: int) -> dict[str, Any]:
    """A ``pods/*`` answer of each size through the adapter's app, in this process.

    The app (``create_app``, the real routers and FastAPI's serialisation) answers over
    ``httpx.ASGITransport`` (no sockets, no TLS, no authentication) from a source that
    returns fixed values, so the CPU per request is the API's own: resolving the pods,
    building the items, serialising. Each part is also timed alone, and the serialisers
    FastAPI could use are compared on the same answer.
    """
    figures: dict[str, Any] = {}
    for pods in pod_counts:
        figures[f"{pods}_pods"] = _encode_answer(pods, repeats)
        log(f"encode {pods} pods: {figures[f'{pods}_pods']}")
    return figures


def _encode_answer(pods: int, repeats: int) -> dict[str, Any]:
    import httpx  # noqa: PLC0415 - only this part needs them
    from fastapi.encoders import jsonable_encoder  # noqa: PLC0415
    from pydantic import TypeAdapter  # noqa: PLC0415

    from adapter.api import custom_metrics  # noqa: PLC0415
    from adapter.app import create_app  # noqa: PLC0415
    from adapter.objects import PODS, InMemoryObjectResolver  # noqa: PLC0415
    from kubepulse.metricquery import ObjectValue  # noqa: PLC0415
    from kubepulse.selector import parse_selector  # noqa: PLC0415

    generator = random.Random(pods)
    values = [
        ObjectValue(f"web-{index}", ENCODE_NOW_MS - 3000, generator.random() * 10, 300_000)
        for index in range(pods)
    ]
    labels = {"app": "web"}
    resolver = InMemoryObjectResolver(
        {
            "kind": "Pod",
            "metadata": {"name": f"web-{index}", "namespace": "bench", "labels": labels},
            "status": {"phase": "Running"},
        }
        for index in range(pods)
    )
    app = create_app(source=_FixedSource(values), objects=resolver, clock=lambda: ENCODE_NOW_MS)

    async def requests() -> tuple[list[float], bytes]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            body = b""
            timings = []
            for _ in range(repeats + 1):
                started = time.process_time()
                answer = await client.get(ENCODE_PATH, params=ENCODE_PARAMS)
                timings.append(time.process_time() - started)
                if answer.status_code != 200 or len(answer.json()["items"]) != pods:
                    raise RuntimeError(f"unexpected answer: {answer.text[:300]}")
                body = answer.content
            return timings[1:], body  # the first request warms up

    timings, body = asyncio.run(requests())
    selector = parse_selector(ENCODE_PARAMS["labelSelector"])
    resolved = asyncio.run(resolver.resolve(PODS, "bench", None, selector))
    pairs = list(zip(resolved, values, strict=True))
    api_selector = {"matchLabels": {"kubepulse.io/aggregation": "p95"}}
    build: Any = getattr(custom_metrics, "metric_value_items", None)
    if build is None:  # before 2026-11-23: one metric_value_item() call per item
        build_one: Any = getattr(custom_metrics, "metric_value_item")  # noqa: B009

        def build(
            version: str, pairs: list[Any], metric: str, selector: Any
        ) -> list[dict[str, Any]]:
            return [
                build_one(version, resolved, metric, selector, value) for resolved, value in pairs
            ]

    answer = json.loads(body)
    serialiser = TypeAdapter(dict[str, Any])

    def json_dumps(document: Any) -> bytes:
        return json.dumps(
            document, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode()

    return {
        "answer_bytes": len(body),
        # the same digest before and after a change: the answer kept every byte
        "answer_sha256": hashlib.sha256(body).hexdigest(),
        "request_cpu_ms_median": round(statistics.median(timings) * 1000, 2),
        "parts_cpu_ms": {
            "resolve_pods": _cpu_ms(
                repeats, lambda: asyncio.run(resolver.resolve(PODS, "bench", None, selector))
            ),
            "build_items": _cpu_ms(repeats, lambda: build("v1beta2", pairs, "m", api_selector)),
            "serialise_fastapi_pydantic_dump_json": _cpu_ms(
                repeats, lambda: serialiser.dump_json(serialiser.validate_python(answer))
            ),
            "serialise_json_dumps": _cpu_ms(repeats, lambda: json_dumps(answer)),
            "serialise_jsonable_encoder_then_json_dumps": _cpu_ms(
                max(1, repeats // 3), lambda: json_dumps(jsonable_encoder(answer))
            ),
        },
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
    parser.add_argument(
        "--rig-pods", type=int, default=0, help="pods of the synthetic exporter (0: no rig part)"
    )
    parser.add_argument("--rig-nodes", type=int, default=100, help="its nodes, one page each")
    parser.add_argument(
        "--rig-rounds", type=int, default=4, help="burst rounds (the first creates the series)"
    )
    parser.add_argument(
        "--rig-intervals", type=int, default=2, help="15 s intervals of the scraper's own loop"
    )
    parser.add_argument(
        "--rig-concurrency", type=int, default=32, help="max_concurrent_scrapes for the rig"
    )
    parser.add_argument(
        "--rig-only", action="store_true", help="only the rig part (no parse, scrape, checkpoint)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the rig's loop (slows it down)"
    )
    parser.add_argument(
        "--encode",
        type=int,
        nargs="*",
        default=None,
        metavar="PODS",
        help="time pods/* answers of these sizes through the app (default 100 1000 5000)",
    )
    parser.add_argument("--encode-only", action="store_true", help="only the --encode part")
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
    machine = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
    }
    command = " ".join(["python", "bench/scrape_bench.py", *(argv or sys.argv[1:])])
    encode = None
    if arguments.encode is not None or arguments.encode_only:
        encode = bench_encode(arguments.encode or [100, 1000, 5000], 5 if arguments.quick else 15)
    if arguments.encode_only:
        machine["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
        print(json.dumps({"machine": machine, "command": command, "encode": encode}, indent=2))
        return 0
    rig = None
    if arguments.rig_pods:
        rig = bench_rig(
            arguments.rig_pods,
            arguments.rig_nodes,
            arguments.rig_rounds,
            arguments.rig_intervals,
            arguments.rig_concurrency,
            arguments.profile,
        )
    if arguments.rig_only:
        if rig is None:
            parser.error("--rig-only needs --rig-pods")
        machine["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
        print(
            json.dumps(
                {
                    "machine": machine,
                    "command": command,
                    "rig": rig,
                    **({"encode": encode} if encode is not None else {}),
                    "rss_growth_bytes": resident_bytes() - rss_before,
                    "run_seconds": round(time.perf_counter() - started, 1),
                },
                indent=2,
            )
        )
        return 0
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
    machine["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
    result = {
        "machine": machine,
        "command": command,
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
        **({"rig": rig} if rig is not None else {}),
        **({"encode": encode} if encode is not None else {}),
        "rss_growth_bytes": resident_bytes() - rss_before,
        "run_seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

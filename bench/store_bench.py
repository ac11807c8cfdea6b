"""Benchmark of the embedded time-series store: ingest, memory, queries, checkpoints.

Generates exporter-shaped data for ``pods`` pods with 8 series each, one sample per
15 s for ``hours`` hours, feeds it to a :class:`~kubepulse.store.TimeSeriesStore` one
scrape at a time, and measures:

- ingest rate (samples per second, wall clock and CPU time, inside ``append_many`` only:
  generating the data is not timed);
- memory per sample at the end: the store's own estimate (``memory_bytes()``, payload
  and Python object sizes) and the growth of the process' resident set size (RSS, read
  from /proc/self/statm) since just before the store was built;
- query latency: p95 of 1,000 series over a 5 minute and a 24 hour window, as an HPA
  asks it: a scrape arrives, the batch of 1,000 queries runs, and again, for two more
  hours of scrapes. The very first 24 h batch (no query memo yet) is reported as the
  cold case, the first hour (memos still being built) apart from the last (steady
  state);
- checkpoint save and load time and file size.

Prints one JSON object to stdout; progress goes to stderr. Full scale (5,000 pods, 24 h,
230 million samples) takes long in pure Python: run fewer pods and read the
``extrapolated_to_5000_pods`` section, which scales the measured figures linearly and
says so.

    python bench/store_bench.py --pods 500
    python bench/store_bench.py --quick
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Run from a checkout without installing: the repository root holds the packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubepulse.checkpoint import load_checkpoint, save_checkpoint
from kubepulse.stats.summary import SeriesKind
from kubepulse.store import Series, TimeSeriesStore

HOUR_MS = 3_600_000
SCRAPE_MS = 15_000
STEPS_PER_HOUR = HOUR_MS // SCRAPE_MS
PAGE_BYTES = 4096
FULL_SCALE_PODS = 5000
# Steps generated at once before they are ingested: bounds the generator's memory.
GENERATION_BLOCK_STEPS = 40


def log(message: str) -> None:
    print(f"[store_bench] {message}", file=sys.stderr, flush=True)


def resident_bytes() -> int:
    """The resident set size of this process, from /proc/self/statm."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------- data


@dataclass
class PodState:
    """The state behind one pod's 8 series (one container per pod)."""

    cpu_usage_us: int
    cpu_rate_cores: float
    throttled_periods: int
    throttle_probability: float
    working_set_pages: int
    rss_fraction: float
    cache_pages: int
    limit_bytes: float
    processes: int
    psi_stall_us: int
    psi_stall_mean_us: float


SERIES = (
    ("container_cpu_usage_seconds_total", SeriesKind.COUNTER),
    ("container_cpu_cfs_throttled_periods_total", SeriesKind.COUNTER),
    ("container_memory_working_set_bytes", SeriesKind.GAUGE),
    ("container_memory_rss_bytes", SeriesKind.GAUGE),
    ("container_memory_cache_bytes", SeriesKind.GAUGE),
    ("container_spec_memory_limit_bytes", SeriesKind.GAUGE),
    ("container_processes", SeriesKind.GAUGE),
    ("container_pressure_cpu_stalled_seconds_total", SeriesKind.COUNTER),
)


def new_pod(rng: random.Random) -> PodState:
    # Log-uniform sizes: most containers are small, a few are big, as in real clusters.
    working_set_pages = int(math.exp(rng.uniform(math.log(5_000), math.log(500_000))))
    return PodState(
        cpu_usage_us=rng.randint(0, 10**11),
        cpu_rate_cores=math.exp(rng.uniform(math.log(0.005), math.log(2.0))),
        throttled_periods=rng.randint(0, 10_000) if rng.random() < 0.2 else 0,
        throttle_probability=0.3 if rng.random() < 0.15 else 0.0,
        working_set_pages=working_set_pages,
        rss_fraction=rng.uniform(0.5, 0.9),
        cache_pages=int(working_set_pages * rng.uniform(0.1, 1.0)),
        limit_bytes=float(rng.choice((256, 512, 1024, 2048, 4096)) * 2**20),
        processes=rng.randint(1, 40),
        psi_stall_us=rng.randint(0, 10**9),
        psi_stall_mean_us=math.exp(rng.uniform(math.log(100), math.log(200_000))),
    )


def next_values(pod: PodState, rng: random.Random) -> tuple[float, ...]:
    """The 8 values of one scrape, shaped like what the exporter reads from cgroups."""
    # CPU: a multiplicative random walk of the rate, and per-scrape noise around it;
    # cgroup v2 reports usage_usec, published in seconds (microsecond resolution).
    pod.cpu_rate_cores = min(8.0, max(0.001, pod.cpu_rate_cores * math.exp(rng.gauss(0, 0.05))))
    pod.cpu_usage_us += int(pod.cpu_rate_cores * SCRAPE_MS * 1000 * rng.uniform(0.85, 1.15))
    if pod.throttle_probability and rng.random() < pod.throttle_probability:
        pod.throttled_periods += rng.randint(1, 30)
    # Memory moves by a few pages most scrapes, with an occasional step (a cache
    # filled, a batch loaded); values are whole 4 KiB pages.
    pod.working_set_pages = max(1_000, pod.working_set_pages + int(rng.gauss(0, 25)))
    if rng.random() < 0.002:
        pod.working_set_pages = max(1_000, int(pod.working_set_pages * rng.uniform(0.7, 1.4)))
    rss_pages = int(pod.working_set_pages * pod.rss_fraction) + rng.randint(-2, 2)
    if rng.random() < 0.2:
        pod.cache_pages = max(0, pod.cache_pages + int(rng.gauss(0, 50)))
    if rng.random() < 0.003:
        pod.processes = max(1, pod.processes + rng.choice((-1, 1)))
    if rng.random() < 0.5:
        pod.psi_stall_us += int(rng.expovariate(1.0 / pod.psi_stall_mean_us))
    return (
        pod.cpu_usage_us / 1e6,
        float(pod.throttled_periods),
        float(pod.working_set_pages * PAGE_BYTES),
        float(rss_pages * PAGE_BYTES),
        float(pod.cache_pages * PAGE_BYTES),
        pod.limit_bytes,
        float(pod.processes),
        pod.psi_stall_us / 1e6,
    )


@dataclass
class Cluster:
    """The pods, their series handles, and the scrape clock."""

    rng: random.Random
    pods: list[PodState]
    handles: list[list[Series]]
    scrape_offsets_ms: list[int]
    start_ms: int
    step: int = 0

    def scrape_timestamp(self, pod_index: int, step: int) -> int:
        # Like Prometheus, each target keeps its own phase and the scraper aligns its
        # timestamps to the interval; 1 scrape in 100 is late by a few ms to 0.2 s (a
        # slow target, a GC pause) and keeps that timestamp.
        late_ms = self.rng.randint(3, 200) if self.rng.random() < 0.01 else 0
        return self.start_ms + step * SCRAPE_MS + self.scrape_offsets_ms[pod_index] + late_ms

    def generate(self, steps: int) -> list[list[tuple[Series, int, float]]]:
        """The next ``steps`` scrapes of every pod, one batch per scrape time."""
        batches = []
        series_per_pod = len(self.handles[0])
        for step in range(self.step, self.step + steps):
            batch: list[tuple[Series, int, float]] = []
            for pod_index, pod in enumerate(self.pods):
                stamp = self.scrape_timestamp(pod_index, step)
                values = next_values(pod, self.rng)
                batch.extend(
                    zip(
                        self.handles[pod_index],
                        [stamp] * series_per_pod,
                        values[:series_per_pod],
                        strict=True,
                    )
                )
            batches.append(batch)
        self.step += steps
        return batches


def build_cluster(
    store: TimeSeriesStore, pods: int, series_per_pod: int, seed: int, start_ms: int
) -> Cluster:
    rng = random.Random(seed)
    states = []
    handles = []
    offsets = []
    for pod_index in range(pods):
        labels = {
            "namespace": f"team-{pod_index % 40}",
            "pod": f"web-{pod_index:05d}-7f9c8d",
            "pod_uid": f"{rng.getrandbits(128):032x}",
            "container": "app",
            "node": f"node-{pod_index % 100:03d}",
        }
        handles.append([store.series(name, labels, kind) for name, kind in SERIES[:series_per_pod]])
        states.append(new_pod(rng))
        offsets.append(rng.randrange(SCRAPE_MS))
    return Cluster(rng, states, handles, offsets, start_ms)


# ---------------------------------------------------------------------- measuring


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def ingest(
    store: TimeSeriesStore,
    cluster: Cluster,
    steps: int,
    on_step: Callable[[int], None] | None = None,
) -> tuple[int, float, float]:
    """Ingest ``steps`` scrapes; return (samples stored, wall seconds, CPU seconds)."""
    stored = 0
    wall = cpu = 0.0
    done = 0
    while done < steps:
        block = min(GENERATION_BLOCK_STEPS, steps - done)
        for batch in cluster.generate(block):
            wall_start = time.perf_counter()
            cpu_start = time.process_time()
            stored += store.append_many(batch)
            cpu += time.process_time() - cpu_start
            wall += time.perf_counter() - wall_start
            done += 1
            if on_step is not None:
                on_step(done)
    return stored, wall, cpu


def query_batch(series: list[Series], start_ms: int, end_ms: int) -> float:
    """Seconds to compute the p95 of every series over ``[start_ms, end_ms]``."""
    began = time.perf_counter()
    for handle in series:
        summary = handle.summary(start_ms, end_ms)
        if summary is not None:
            summary.sketch.quantile(0.95)
    return time.perf_counter() - began


def latency_figures(batch_seconds: list[float], series_count: int) -> dict[str, float]:
    return {
        "batches": len(batch_seconds),
        "batch_median_ms": round(statistics.median(batch_seconds) * 1000, 2),
        "batch_p99_ms": round(percentile(batch_seconds, 0.99) * 1000, 2),
        "batch_max_ms": round(max(batch_seconds) * 1000, 2),
        "per_series_median_us": round(statistics.median(batch_seconds) / series_count * 1e6, 1),
        "per_series_p99_us": round(percentile(batch_seconds, 0.99) / series_count * 1e6, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=500)
    parser.add_argument("--series-per-pod", type=int, default=8, choices=range(1, 9))
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--query-series", type=int, default=1000)
    parser.add_argument(
        "--query-batches", type=int, default=STEPS_PER_HOUR, help="query batches per hour"
    )
    parser.add_argument("--query-hours", type=int, default=2, choices=range(1, 25))
    parser.add_argument("--seed", type=int, default=20240506)
    parser.add_argument(
        "--checkpoint-dir", type=Path, default=None, help="default: a temporary directory"
    )
    parser.add_argument(
        "--quick", action="store_true", help="50 pods, 3 hours: a smoke run of every step"
    )
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.pods = 50
        arguments.hours = 3.0
        arguments.query_batches = 20
        arguments.query_hours = 1
    command = "python bench/store_bench.py " + " ".join(
        shlex.quote(argument) for argument in (sys.argv[1:] if argv is None else argv)
    )
    pods: int = arguments.pods
    steps = int(arguments.hours * STEPS_PER_HOUR)
    start_ms = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS

    gc.collect()
    rss_before = resident_bytes()
    store = TimeSeriesStore()
    cluster = build_cluster(store, pods, arguments.series_per_pod, arguments.seed, start_ms)
    log(f"{store.series_count} series; ingesting {steps} scrapes ({arguments.hours} h)")

    # The estimate is sampled through the last hour: heads fill up as the hour goes on,
    # so the figure at the very end (a full head) is the hour's highest.
    last_hour_estimates: list[float] = []

    def on_step(done: int) -> None:
        if done % STEPS_PER_HOUR == 0:
            log(f"  hour {done // STEPS_PER_HOUR}: {store.sample_count:,} samples")
        if steps - done < STEPS_PER_HOUR and (steps - done) % 40 == 0:
            last_hour_estimates.append(store.memory_bytes() / store.sample_count)

    stored, ingest_wall, ingest_cpu = ingest(store, cluster, steps, on_step)
    now_ms = start_ms + steps * SCRAPE_MS
    compaction = store.compact(now_ms)
    gc.collect()
    sample_count = store.sample_count
    rss_after = resident_bytes()
    payload_estimate = store.memory_bytes()
    chunk_payload = sum(len(chunk) for series in store for chunk in series.chunks)
    log(f"ingested {stored:,} samples in {ingest_wall:.1f} s; {sample_count:,} held")

    # Queries: the first half of the picked series are CPU counters, the rest working-set
    # gauges, from as many pods as needed.
    counters = [handles[0] for handles in cluster.handles]
    gauges = [handles[2] for handles in cluster.handles] if arguments.series_per_pod > 2 else []
    wanted = arguments.query_series
    picked = counters[: wanted // 2] + gauges[: wanted - min(wanted // 2, len(counters))]
    picked = picked[:wanted]
    windows = {"5m": 5 * 60_000, "24h": 24 * HOUR_MS}
    latest_ms = max(handle.last_timestamp_ms or 0 for handle in picked)
    cold_24h = query_batch(picked, latest_ms - windows["24h"] + 1, latest_ms)
    # An HPA asks after every scrape (its sync period is 15 s). The default 240 batches
    # an hour see every phase of the hourly chunk cycle: a short window right after a
    # chunk was sealed decodes it, a long one moves its start past a chunk boundary once
    # an hour. The first hour starts from the cold query; later hours are steady state.
    hourly: list[dict[str, list[float]]] = []
    for hour in range(arguments.query_hours):
        batches: dict[str, list[float]] = {name: [] for name in windows}
        for _ in range(arguments.query_batches):
            ingest(store, cluster, 1)
            latest_ms += SCRAPE_MS
            for name, window_ms in windows.items():
                batches[name].append(query_batch(picked, latest_ms - window_ms + 1, latest_ms))
        hourly.append(batches)
        log(f"query hour {hour + 1} done")

    directory = arguments.checkpoint_dir or Path(tempfile.mkdtemp(prefix="store-bench-"))
    checkpoint_path = directory / "store.kptsdb"
    info = save_checkpoint(store, checkpoint_path)
    load_started = time.perf_counter()
    restored = load_checkpoint(checkpoint_path)
    load_seconds = time.perf_counter() - load_started
    assert restored.sample_count == store.sample_count
    checkpoint_path.unlink()
    if arguments.checkpoint_dir is None:
        directory.rmdir()
    log(f"checkpoint: {info.size_bytes:,} bytes in {info.duration_seconds:.1f} s")

    ingest_rate = stored / ingest_wall
    measured: dict[str, object] = {
        "pods": pods,
        "series": store.series_count,
        "hours": arguments.hours,
        "samples_ingested": stored,
        "samples_held": sample_count,
        "samples_dropped_by_retention": compaction.dropped_samples,
        "ingest_samples_per_second_wall": round(ingest_rate),
        "ingest_samples_per_second_cpu": round(stored / ingest_cpu),
        "bytes_per_sample_estimate_at_end": round(payload_estimate / sample_count, 3),
        "bytes_per_sample_estimate_last_hour_min_mean_max": [
            round(min(last_hour_estimates), 3),
            round(statistics.mean(last_hour_estimates), 3),
            round(max(last_hour_estimates), 3),
        ]
        if last_hour_estimates
        else None,
        "bytes_per_sample_chunks_only": round(chunk_payload / sample_count, 3),
        "bytes_per_sample_rss_growth": round((rss_after - rss_before) / sample_count, 3),
        "rss_growth_bytes": rss_after - rss_before,
        "query_series": len(picked),
        "query_p95_24h_cold_batch_ms": round(cold_24h * 1000, 2),
        "query_p95_24h_cold_per_series_us": round(cold_24h / len(picked) * 1e6, 1),
        "query_p95_5m_first_hour": latency_figures(hourly[0]["5m"], len(picked)),
        "query_p95_24h_first_hour": latency_figures(hourly[0]["24h"], len(picked)),
        "checkpoint_bytes": info.size_bytes,
        "checkpoint_bytes_per_sample": round(info.size_bytes / sample_count, 3),
        "checkpoint_save_seconds": round(info.duration_seconds, 2),
        "checkpoint_load_seconds": round(load_seconds, 2),
    }
    if len(hourly) > 1:
        measured["query_p95_5m_steady_state"] = latency_figures(hourly[-1]["5m"], len(picked))
        measured["query_p95_24h_steady_state"] = latency_figures(hourly[-1]["24h"], len(picked))
    result: dict[str, object] = {
        "command": command,
        "machine": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
        },
        "measured": measured,
    }
    if pods != FULL_SCALE_PODS or arguments.hours != 24.0:
        full_samples = FULL_SCALE_PODS * arguments.series_per_pod * 24 * STEPS_PER_HOUR
        scale = full_samples / sample_count
        result["extrapolated_to_5000_pods"] = {
            "method": (
                "linear extrapolation of the measured figures to 5000 pods x "
                f"{arguments.series_per_pod} series x 24 h; NOT measured"
            ),
            "samples": full_samples,
            "ingest_seconds_for_24h_of_data": round(full_samples / ingest_rate),
            "store_estimate_bytes": round(payload_estimate * scale),
            "rss_growth_bytes": round((rss_after - rss_before) * scale),
            "checkpoint_bytes": round(info.size_bytes * scale),
            "checkpoint_save_seconds": round(info.duration_seconds * scale, 1),
            "checkpoint_load_seconds": round(load_seconds * scale, 1),
            "scrape_append_ms_per_15s_interval": round(
                full_samples / (24 * STEPS_PER_HOUR) / ingest_rate * 1000, 1
            ),
        }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

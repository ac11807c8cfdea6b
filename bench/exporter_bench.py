"""What one scrape of the exporter costs, next to Debian's node and process exporters.

Starts each exporter as its own process on a loopback port, scrapes it the way
Prometheus does (``Accept: application/openmetrics-text…``, ``Accept-Encoding: gzip``),
one scrape after another, and measures the exporter process from outside with psutil:

- **CPU seconds per scrape**: user + system time of the exporter process (all its
  threads) read just before and just after each scrape; median, mean and p95;
- **wall seconds per scrape**: from sending the request to the last byte, median and p95;
- **background CPU**: CPU seconds per second while nobody scrapes (kubepulse's sampler
  thread, Go's runtime), measured over a quiet period before the scrapes;
- **memory**: resident set after the scrapes and the peak (``VmHWM``);
- the size of one answer (gzip, and uncompressed) and its number of series.

Runs, one at a time so that they do not compete for CPU:

1. ``kubepulse_host``: the kubepulse exporter on this machine (``--mode local``);
2. ``kubepulse_simulated_node``: the same pointed at a generated node of ``--pods``
   pods and ``--processes`` processes (:mod:`bench.fake_node`: procfs and a cgroup v2
   tree in a temporary directory);
3. ``node_exporter_host``: Debian's ``prometheus-node-exporter`` with its default
   collectors, on this machine;
4. ``process_exporter_host``: Debian's ``prometheus-process-exporter`` grouping every
   process by command name (``name: "{{.Comm}}"``, as kubepulse groups host processes),
   with its defaults (``-gather-smaps`` and ``-threads`` on), and
   ``process_exporter_lean_host`` with both off, closer to what kubepulse reads.

Prints one JSON object; progress goes to stderr. A Debian exporter that is not installed
is reported as such (``apt-get install prometheus-node-exporter
prometheus-process-exporter``) and the other runs go on.

    python bench/exporter_bench.py                # 100 scrapes each, 110 pods, 1,000 processes
    python bench/exporter_bench.py --quick        # 15 scrapes each, about half a minute
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
# Run from a checkout without installing: the repository root holds the packages.
sys.path.insert(0, str(REPO_ROOT))

from prometheus_client.exposition import generate_latest  # noqa: E402
from prometheus_client.metrics_core import Metric  # noqa: E402
from prometheus_client.openmetrics.exposition import (  # noqa: E402
    generate_latest as generate_openmetrics,
)

from bench.fake_node import generate_fake_node  # noqa: E402
from exporter.collector import ExporterCollector  # noqa: E402
from exporter.metadata import LocalMetadata  # noqa: E402

PROMETHEUS_HEADERS = {
    "Accept": (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
        "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    ),
    "Accept-Encoding": "gzip",
    "User-Agent": "Prometheus/2.45.3",
}
PROCESS_EXPORTER_CONFIG = 'process_names:\n  - name: "{{.Comm}}"\n    cmdline:\n    - ".+"\n'
START_TIMEOUT_S = 30.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Target:
    """One exporter to measure: how to start it and where it serves."""

    name: str
    argv: list[str]
    port: int
    env: dict[str, str] | None = None


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _peak_rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _scrape(url: str) -> bytes:
    request = urllib.request.Request(url, headers=PROMETHEUS_HEADERS)
    with urllib.request.urlopen(request, timeout=60) as response:
        body: bytes = response.read()
        if response.headers.get("Content-Encoding") != "gzip":
            raise RuntimeError(f"{url} did not answer with gzip; the comparison needs it")
        return body


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"exited with status {process.returncode}: {log_path.read_text()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {START_TIMEOUT_S:.0f} s")


def measure(target: Target, *, scrapes: int, warmup: int, idle_seconds: float) -> dict[str, Any]:
    """Start ``target``, scrape it ``scrapes`` times, stop it; the figures of the run."""
    url = f"http://127.0.0.1:{target.port}/metrics"
    with tempfile.TemporaryDirectory(prefix=f"{target.name}-") as scratch:
        log_path = Path(scratch) / "log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                target.argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env={**os.environ, **(target.env or {})},
                cwd=scratch,
            )
        try:
            _wait_until_serving(url, process, log_path)
            watched = psutil.Process(process.pid)
            start_rss = int(watched.memory_info().rss)
            for _ in range(warmup):
                _scrape(url)
            idle_started, idle_cpu = time.perf_counter(), _cpu_seconds(watched)
            time.sleep(idle_seconds)
            idle_rate = (_cpu_seconds(watched) - idle_cpu) / (time.perf_counter() - idle_started)

            cpu_per_scrape: list[float] = []
            wall_per_scrape: list[float] = []
            body = b""
            cpu_at_start = _cpu_seconds(watched)
            for _ in range(scrapes):
                cpu_before = _cpu_seconds(watched)
                wall_before = time.perf_counter()
                body = _scrape(url)
                wall_per_scrape.append(time.perf_counter() - wall_before)
                cpu_per_scrape.append(_cpu_seconds(watched) - cpu_before)
            cpu_total = _cpu_seconds(watched) - cpu_at_start
            rss_after = int(watched.memory_info().rss)
            peak_rss = _peak_rss_bytes(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                exit_status: int | None = process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                exit_status = None
    text = gzip.decompress(body)
    series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
    return {
        "cpu_seconds_per_scrape": {
            # The kernel counts process CPU in clock ticks (10 ms): single scrapes are
            # quantised, the mean over all scrapes is not.
            "mean": cpu_total / scrapes,
            "median": statistics.median(cpu_per_scrape),
            "p95": _percentile(cpu_per_scrape, 0.95),
            "resolution": 1 / os.sysconf("SC_CLK_TCK"),
        },
        "wall_seconds_per_scrape": {
            "median": statistics.median(wall_per_scrape),
            "p95": _percentile(wall_per_scrape, 0.95),
        },
        "background_cpu_seconds_per_second": idle_rate,
        "rss_bytes_at_start": start_rss,
        "rss_bytes_after_scrapes": rss_after,
        "peak_rss_bytes": peak_rss,
        "response_bytes_gzip": len(body),
        "response_bytes": len(text),
        "series": series,
        "scrapes": scrapes,
        "exit_status_after_sigterm": exit_status,
    }


class _Families:
    """A collector that yields families collected earlier, to time encoding alone."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def breakdown(proc_root: Path, cgroup_root: Path, repeats: int) -> dict[str, Any]:
    """Where one scrape's CPU goes, timed inside this process (single-threaded).

    The collection, split into the stages the exporter times itself
    (``kubepulse_exporter_collection_duration_seconds``); then encoding the same
    families as Prometheus text and as OpenMetrics, and gzip of the OpenMetrics body.
    """
    collector = ExporterCollector(
        node_name="bench",
        metadata=LocalMetadata(),
        proc_root=str(proc_root),
        cgroup_root=str(cgroup_root),
    )
    list(collector.collect())
    # Two sampler steps, so that the sampled histograms are published as in a running
    # exporter (the first step only records a starting point for CPU).
    collector.sample_once(1.0)
    collector.sample_once(2.0)
    collect_seconds: list[float] = []
    families: list[Metric] = []
    for _ in range(repeats):
        started = time.process_time()
        families = list(collector.collect())
        collect_seconds.append(time.process_time() - started)
    fixed = _Families(families)

    def cpu(action: Any) -> tuple[float, Any]:
        started = time.process_time()
        for _ in range(repeats):
            result = action()
        return (time.process_time() - started) / repeats, result

    text_seconds, _ = cpu(lambda: generate_latest(fixed))  # type: ignore[arg-type]
    openmetrics_seconds, body = cpu(lambda: generate_openmetrics(fixed))  # type: ignore[arg-type]
    gzip_seconds, _ = cpu(lambda: gzip.compress(body))
    # prometheus_client compresses at level 9; what lower levels would cost and give.
    gzip_levels = {}
    for level in (1, 6):
        seconds, compressed = cpu(lambda level=level: gzip.compress(body, compresslevel=level))
        gzip_levels[str(level)] = {"cpu_seconds": seconds, "bytes": len(compressed)}
    gzip_levels["9"] = {"cpu_seconds": gzip_seconds, "bytes": len(gzip.compress(body))}
    stages: dict[str, float] = {}
    for family in families:
        if family.name != "kubepulse_exporter_collection_duration_seconds":
            continue
        sums = {s.labels["collector"]: s.value for s in family.samples if s.name.endswith("_sum")}
        counts = {
            s.labels["collector"]: s.value for s in family.samples if s.name.endswith("_count")
        }
        stages = {name: sums[name] / counts[name] for name in sums if counts.get(name)}
    return {
        "collect_cpu_seconds_median": statistics.median(collect_seconds),
        "collector_stage_seconds_mean": stages,
        "encode_text_cpu_seconds": text_seconds,
        "encode_openmetrics_cpu_seconds": openmetrics_seconds,
        "gzip_openmetrics_cpu_seconds": gzip_seconds,
        "gzip_levels": gzip_levels,
        "openmetrics_bytes": len(body),
        "series": sum(len(family.samples) for family in families),
        "sampled_histogram_series": sum(
            len(family.samples) for family in families if "_sampled_" in family.name
        ),
        "repeats": repeats,
    }


def _debian_version(package: str) -> str | None:
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except OSError:
        return None
    return result.stdout.strip() or None


def _machine() -> dict[str, Any]:
    cgroup_version = "v2" if Path("/sys/fs/cgroup/cgroup.controllers").is_file() else "v1"
    return {
        "cpus": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cgroup": cgroup_version,
        "processes": len(psutil.pids()),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=None, help="scrapes per run (100)")
    parser.add_argument("--quick", action="store_true", help="15 scrapes, short idle periods")
    parser.add_argument("--pods", type=int, default=110)
    parser.add_argument("--processes", type=int, default=1000)
    arguments = parser.parse_args(argv)
    scrapes = arguments.scrapes or (15 if arguments.quick else 100)
    idle_seconds = 2.0 if arguments.quick else 10.0
    warmup = 3

    python = sys.executable
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kubepulse-fake-node-") as node_dir:
        node = generate_fake_node(
            node_dir, pods=arguments.pods, processes=arguments.processes, seed=1
        )
        kubepulse = [python, "-m", "exporter", "serve", "--mode", "local", "--log-level", "warning"]
        targets = [
            (Target("kubepulse_host", [], 0), kubepulse),
            (
                Target("kubepulse_simulated_node", [], 0),
                [*kubepulse, "--proc-root", str(node.proc_root),
                 "--cgroup-root", str(node.cgroup_root)],
            ),
        ]  # fmt: skip
        for target, command in targets:
            target.port = free_port()
            target.argv = [*command, "--listen-address", f"127.0.0.1:{target.port}"]
            target.env = {"PYTHONPATH": str(REPO_ROOT)}
        node_exporter = shutil.which("prometheus-node-exporter")
        process_exporter = shutil.which("prometheus-process-exporter")
        config_path = Path(node_dir) / "process-exporter.yml"
        config_path.write_text(PROCESS_EXPORTER_CONFIG)
        debian: list[tuple[str, str | None, list[str]]] = [
            ("node_exporter_host", node_exporter, ["--web.listen-address=127.0.0.1:{port}"]),
            (
                "process_exporter_host",
                process_exporter,
                ["-web.listen-address", "127.0.0.1:{port}", "-config.path", str(config_path)],
            ),
            (
                "process_exporter_lean_host",
                process_exporter,
                ["-web.listen-address", "127.0.0.1:{port}", "-config.path", str(config_path),
                 "-gather-smaps=false", "-threads=false"],
            ),
        ]  # fmt: skip
        for name, binary, args in debian:
            if binary is None:
                package = "prometheus-" + name.split("_")[0] + "-exporter"
                runs[name] = {"error": f"{package} is not installed; apt-get install -y {package}"}
                continue
            port = free_port()
            targets.append((Target(name, [binary, *(a.format(port=port) for a in args)], port), []))
        for target, _ in targets:
            log(f"measuring {target.name} ({scrapes} scrapes)")
            try:
                runs[target.name] = measure(
                    target, scrapes=scrapes, warmup=warmup, idle_seconds=idle_seconds
                )
            except (OSError, RuntimeError) as error:
                runs[target.name] = {"error": str(error)}
        log("timing the simulated node's scrape in this process")
        runs["kubepulse_simulated_node_breakdown"] = breakdown(
            node.proc_root, node.cgroup_root, repeats=3 if arguments.quick else 10
        )
        simulated = node.summary()

    result = {
        "machine": _machine(),
        "command": " ".join(["python", "bench/exporter_bench.py", *(argv or sys.argv[1:])]),
        "scrape_headers": PROMETHEUS_HEADERS,
        "simulated_node": simulated,
        "versions": {
            "kubepulse_python": platform.python_version(),
            "prometheus-node-exporter": _debian_version("prometheus-node-exporter"),
            "prometheus-process-exporter": _debian_version("prometheus-process-exporter"),
        },
        "runs": runs,
    }
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A smaller local demo: the exporter and the core on this machine, no control plane.

It starts the real exporter (``python -m exporter serve --mode local``) on a loopback
port, scrapes it once a second (node CPU by mode, available memory, host process groups),
stores the samples in kubepulse's compressed time-series store, answers the
questions an HPA would ask through the adapter (window statistics, percentiles,
forecasts), checkpoints the store to disk and reads it back, and inspects the file with
``kubectl pulse checkpoint inspect`` (run in-process). Every figure printed is computed
from what was just measured.

    python scripts/demo_local.py [--seconds 30] [--keep DIR]
"""

from __future__ import annotations

import argparse
import math
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from kubepulse.checkpoint import load_checkpoint, save_checkpoint
from kubepulse.cli import main as kubectl_pulse
from kubepulse.duration import format_duration, parse_duration
from kubepulse.quantity import format_quantity
from kubepulse.selector import parse_selector
from kubepulse.stats import (
    InsufficientDataError,
    SeriesKind,
    evaluate,
    forecast_holt,
    forecast_linear,
    parse_aggregation,
)
from kubepulse.store import TimeSeriesStore

RESERVED_PREFIX = "kubepulse.io/"
EXAMPLE_SELECTOR = "kubepulse.io/window=30s,kubepulse.io/aggregation=p95,app=web,tier notin (batch)"
KEPT_METRICS = {
    "kubepulse_node_cpu_seconds_total",
    "kubepulse_node_memory_available_bytes",
    "kubepulse_host_process_cpu_usage_seconds_total",
}
SHOWN_LABELS = {"mode", "group"}
MIN_SHOWN_CORES = 0.005
PREVIEW_LINES = 15
STATISTICS = ("avg", "min", "max", "last", "p50", "p95", "p99")


def _gib(value: float) -> str:
    return f"{value / 2**30:.3f} GiB"


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_exporter() -> tuple[subprocess.Popen[bytes], str]:
    """Run the real exporter in local mode on a loopback port; wait until it is healthy."""
    address = f"127.0.0.1:{_free_loopback_port()}"
    command = [sys.executable, "-m", "exporter", "serve", "--mode", "local"]
    command += ["--listen-address", address, "--log-format", "text", "--log-level", "warning"]
    exporter = subprocess.Popen(command)  # noqa: S603 - our own module, fixed arguments
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if exporter.poll() is not None:
            raise SystemExit(f"the exporter exited with status {exporter.returncode}; see above")
        try:
            if httpx.get(f"http://{address}/healthz", timeout=1).status_code == 200:
                return exporter, f"http://{address}/metrics"
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    exporter.terminate()
    raise SystemExit(f"the exporter did not become healthy on {address} within 15 s")


def _series_labels(labels: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in labels.items() if name in SHOWN_LABELS}


def _sample(store: TimeSeriesStore, seconds: int, url: str) -> None:
    start = time.monotonic()
    for tick in range(1, seconds + 1):
        now_ms = int(time.time() * 1000)
        text = httpx.get(url, timeout=5).text
        batch = []
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name not in KEPT_METRICS:
                    continue
                kind = SeriesKind.COUNTER if family.type == "counter" else SeriesKind.GAUGE
                series = store.series(sample.name, _series_labels(sample.labels), kind)
                batch.append((series, now_ms, float(sample.value)))
        store.append_many(batch)
        print(
            f"  [{tick:>3}/{seconds}] scraped {len(text):,} bytes from the exporter, "
            f"stored {len(batch)} samples",
            file=sys.stderr,
        )
        time.sleep(max(0.0, start + tick - time.monotonic()))


def _statistics(store: TimeSeriesStore, window_ms: int) -> None:
    end_ms = int(time.time() * 1000)
    start_ms = end_ms - window_ms
    print(f"\nStatistics over the last {format_duration(window_ms)} (what an HPA would get):")
    for series in store:
        summary = store.summary(series, start_ms, end_ms)
        if series.kind is SeriesKind.COUNTER:
            rate = evaluate(parse_aggregation("rate"), summary)
            if rate is not None and rate >= MIN_SHOWN_CORES:
                print(f"  {series.name}{series.labels}: rate = {rate:.3f} cores")
            continue
        cells = []
        for name in STATISTICS:
            value = evaluate(parse_aggregation(name), summary)
            cells.append(f"{name}={'n/a' if value is None else _gib(value)}")
        print(f"  {series.name}: {' '.join(cells)}")
        last = evaluate(parse_aggregation("last"), summary)
        if last is not None:
            served = format_quantity(round(last))
            print(f"    'last' as the custom metrics API would serve it: {served}")


def _forecasts(store: TimeSeriesStore, horizon_ms: int) -> None:
    (memory,) = store.select("kubepulse_node_memory_available_bytes")
    timestamps, values = memory.samples(0, 2**62)
    print(f"\nForecast of available memory {format_duration(horizon_ms)} ahead:")
    for fit in (forecast_linear, forecast_holt):
        try:
            forecast = fit(timestamps, values, horizon_ms)
        except InsufficientDataError as error:
            print(f"  {fit.__name__}: {error}")
            continue
        interval = (
            "unbounded (too few samples)"
            if math.isinf(forecast.lower)
            else f"[{_gib(forecast.lower)}, {_gib(forecast.upper)}]"
        )
        print(
            f"  {forecast.model:>6}: {_gib(forecast.value)}, "
            f"{forecast.confidence:.0%} interval {interval}, fit RMSE "
            f"{forecast.fit_rmse:.0f} B over {forecast.sample_count} samples"
        )


def _selector_example() -> None:
    selector, options = parse_selector(EXAMPLE_SELECTOR).split_reserved(RESERVED_PREFIX)
    print(f"\nAn HPA metric selector {EXAMPLE_SELECTOR!r} splits into")
    print(f"  statistics options: {options}")
    print(f"  series filter:      {selector}")
    print(f"  matches {{app: web, tier: api}}: {selector.matches({'app': 'web', 'tier': 'api'})}")


def _checkpoint(store: TimeSeriesStore, directory: Path) -> Path:
    path = directory / "demo-store.ckpt"
    info = save_checkpoint(store, path)
    restored = load_checkpoint(path)
    if restored.sample_count != store.sample_count:
        raise SystemExit(
            f"checkpoint round trip lost samples: wrote {store.sample_count}, read "
            f"{restored.sample_count}; keep {path} and report it"
        )
    print(
        f"\nCheckpoint: {info.series_count} series, {info.sample_count} samples, "
        f"{info.size_bytes} bytes written in {info.duration_seconds * 1000:.1f} ms to {path}; "
        f"read back intact ({restored.sample_count} samples)."
    )
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30, help="how long to sample (>= 3)")
    parser.add_argument("--keep", type=Path, help="write the checkpoint here and keep it")
    arguments = parser.parse_args()
    if arguments.seconds < 3:
        parser.error("--seconds must be at least 3: forecasts need a few samples")

    store = TimeSeriesStore(
        retention_ms=parse_duration("1h"),
        resolution_ms=parse_duration("1s"),
        chunk_range_ms=parse_duration("10m"),
    )
    print(f"Starting the exporter and scraping it once a second for {arguments.seconds} s:")
    exporter, url = _start_exporter()
    try:
        _sample(store, arguments.seconds, url)
        print(f"\nLive metrics at {url} (node and exporter series, first lines):")
        lines = [
            line
            for line in httpx.get(url, timeout=5).text.splitlines()
            if line.startswith(("kubepulse_node_", "kubepulse_exporter_"))
        ]
        print("\n".join(f"  {line}" for line in lines[:PREVIEW_LINES]))
    finally:
        exporter.terminate()
        exporter.wait(timeout=10)
    _statistics(store, parse_duration(f"{arguments.seconds}s"))
    _forecasts(store, parse_duration("1m"))
    _selector_example()
    with tempfile.TemporaryDirectory(prefix="kubepulse-demo-") as scratch:
        directory = arguments.keep or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        path = _checkpoint(store, directory)
        print(f"\n$ kubectl pulse checkpoint inspect {path}")
        kubectl_pulse(["checkpoint", "inspect", str(path)])
    return 0


if __name__ == "__main__":
    sys.exit(main())

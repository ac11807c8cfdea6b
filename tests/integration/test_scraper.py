"""The real scraper against real HTTP servers on loopback, then a checkpoint and a restart.

Targets are prometheus_client's own ``start_http_server`` on 127.0.0.1 with live
counters, histograms and gauges (the test changes them between scrapes), one server that
only answers gzip-compressed OpenMetrics, a port that refuses connections and one that
accepts and never answers. The scraper runs its own thread and loop, as in the adapter.
"""

from __future__ import annotations

import gzip
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from adapter.scrape import Checkpointer, Scraper, ScrapeSettings, StaticTargets
from kubepulse.stats.summary import SeriesKind
from kubepulse.store import Series, TimeSeriesStore

pytestmark = pytest.mark.integration

INTERVAL_S = 1.0
LATENCY_BUCKETS = (0.05, 0.1, 0.5)


class App:
    """One instrumented 'pod': a registry served by prometheus_client on loopback."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests", "Requests.", ["code"], registry=self.registry)
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Latency.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue = Gauge("work_queue_depth", "Queue.", registry=self.registry)
        self.server, self.thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)

    @property
    def target(self) -> str:
        port = self.server.server_port
        return f"http://127.0.0.1:{port}/metrics;role=pod;namespace=shop;pod={self.name};node=n1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class OpenMetricsOnly(BaseHTTPRequestHandler):
    """Answers every GET with gzip-compressed OpenMetrics, whatever was asked for."""

    registry: CollectorRegistry

    def do_GET(self) -> None:
        body = gzip.compress(openmetrics_latest(self.registry))
        self.send_response(200)
        self.send_header("Content-Type", OPENMETRICS_TYPE)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def apps() -> Iterator[list[App]]:
    started = [App(f"web-{index}") for index in range(3)]
    yield started
    for app in started:
        app.close()


@pytest.fixture
def openmetrics_server() -> Iterator[tuple[str, Counter]]:
    registry = CollectorRegistry()
    jobs = Counter("jobs", "Jobs done.", registry=registry)
    handler = type("Handler", (OpenMetricsOnly,), {"registry": registry})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    yield f"http://127.0.0.1:{port}/metrics;role=pod;namespace=batch;pod=worker-0", jobs
    server.shutdown()
    server.server_close()


@pytest.fixture
def refusing_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there any more


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def find(store: TimeSeriesStore, lock: threading.Lock, name: str, **labels: str) -> Series:
    with lock:
        (series,) = store.select(name, **labels)
    return series


def values(series: Series, lock: threading.Lock) -> list[float]:
    with lock:
        return list(series.samples(0, 2**62)[1])


def test_scraping_real_servers_then_restarting_from_a_checkpoint(
    apps: list[App],
    openmetrics_server: tuple[str, Counter],
    refusing_port: int,
    silent_port: int,
    tmp_path: Path,
) -> None:
    openmetrics_target, jobs = openmetrics_server
    refusing = f"http://127.0.0.1:{refusing_port}/metrics;role=pod;namespace=x;pod=refuses"
    silent = f"http://127.0.0.1:{silent_port}/metrics;role=pod;namespace=x;pod=silent"
    source = StaticTargets([*(app.target for app in apps), openmetrics_target, refusing, silent])
    settings = ScrapeSettings(
        interval_seconds=INTERVAL_S, timeout_seconds=0.5, target_refresh_seconds=0.1
    )
    path = tmp_path / "store.ckpt"

    def new_store() -> TimeSeriesStore:
        return TimeSeriesStore(resolution_ms=int(INTERVAL_S * 1000))

    lock = threading.Lock()
    checkpointer = Checkpointer.open(path, lock=lock, factory=new_store)
    store = checkpointer.store
    scraper = Scraper(store, lock, source, settings)

    # The load: requests and latencies between scrapes, a queue that goes up and down.
    for index, app in enumerate(apps):
        app.requests.labels("200").inc(10 * (index + 1))
        app.latency.observe(0.07)
        app.queue.set(index)
    jobs.inc(3)
    with scraper:
        requests = {app.name: find_eventually(store, lock, app.name) for app in apps}
        for round_number in range(1, 4):
            wanted = round_number + 1
            for app in apps:
                app.requests.labels("200").inc(5)
                app.latency.observe(0.3)
                app.queue.set(round_number * 2)
            jobs.inc()
            wait_until(
                lambda wanted=wanted: all(
                    len(values(series, lock)) >= wanted for series in requests.values()
                ),
                timeout=5 * INTERVAL_S,
                what=f"{wanted} scrapes of every app",
            )
        # Let every target get another scrape in, so failures are counted twice.
        time.sleep(INTERVAL_S * 1.2)
    health = {result.target.pod: result for result in scraper.health()}

    # --- what was stored
    for index, app in enumerate(apps):
        counter = find(store, lock, "http_requests_total", pod=app.name, code="200")
        assert counter.kind is SeriesKind.COUNTER
        assert counter.labels == {"code": "200", "namespace": "shop", "pod": app.name, "node": "n1"}
        counts = values(counter, lock)
        assert counts == sorted(counts)  # a counter only goes up
        assert counts[0] == 10 * (index + 1)
        assert counts[-1] == 10 * (index + 1) + 15
        for bound, expected in (("0.05", 0), ("0.1", 1), ("0.5", 4), ("+Inf", 4)):
            bucket = find(
                store, lock, "http_request_duration_seconds_bucket", pod=app.name, le=bound
            )
            assert bucket.kind is SeriesKind.COUNTER
            assert values(bucket, lock)[-1] == expected
        total = find(store, lock, "http_request_duration_seconds_sum", pod=app.name)
        assert values(total, lock)[-1] == pytest.approx(0.07 + 3 * 0.3)
        queue = find(store, lock, "work_queue_depth", pod=app.name)
        assert queue.kind is SeriesKind.GAUGE
        assert values(queue, lock)[0] == index
        assert values(queue, lock)[-1] == 6
        with lock:
            created = store.select("http_requests_created")
        assert created == []  # prometheus_client's _created gauges are not stored
        # Timestamps sit on the target's slots: whole intervals apart.
        with lock:
            timestamps = list(counter.samples(0, 2**62)[0])
        gaps = {later - earlier for earlier, later in itertools.pairwise(timestamps)}
        assert all(gap % int(INTERVAL_S * 1000) == 0 for gap in gaps), gaps

    # OpenMetrics, gzip-compressed, read as such.
    jobs_series = find(store, lock, "jobs_total", pod="worker-0")
    assert values(jobs_series, lock)[-1] == 6
    assert health["worker-0"].up

    # --- the failures: counted, not fatal
    assert health["refuses"].failure_reason == "connection"
    assert health["silent"].failure_reason == "timeout"
    registry = scraper.metrics.registry
    failures = "kubepulse_adapter_scrape_failures_total"
    assert (registry.get_sample_value(failures, {"role": "pod", "reason": "connection"}) or 0) >= 2
    assert (registry.get_sample_value(failures, {"role": "pod", "reason": "timeout"}) or 0) >= 2
    assert (registry.get_sample_value("kubepulse_adapter_scrape_samples_appended_total") or 0) > 0
    assert (
        registry.get_sample_value(
            "kubepulse_adapter_scrape_targets", {"role": "pod", "health": "up"}
        )
        == 4
    )

    # --- checkpoint, restart, and scraping goes on into the restored history
    checkpointer.stop()
    history = {(series.name, series.label_pairs): values(series, lock) for series in store}
    restarted_lock = threading.Lock()
    restarted = Checkpointer.open(path, lock=restarted_lock, factory=new_store)
    assert restarted.restore_message is None
    restored_store = restarted.store
    assert {
        (series.name, series.label_pairs): values(series, restarted_lock)
        for series in restored_store
    } == history
    for app in apps:
        app.requests.labels("200").inc(100)
    second_scraper = Scraper(restored_store, restarted_lock, source, settings)
    with second_scraper:
        counter = find(restored_store, restarted_lock, "http_requests_total", pod=apps[0].name)
        before = len(history[(counter.name, counter.label_pairs)])
        wait_until(
            lambda: len(values(counter, restarted_lock)) > before,
            timeout=5 * INTERVAL_S,
            what="a scrape into the restored series",
        )
    counts = values(counter, restarted_lock)
    assert counts[:before] == history[(counter.name, counter.label_pairs)]
    assert counts[-1] == 10 + 15 + 100
    restarted.stop(final_checkpoint=False)


def find_eventually(store: TimeSeriesStore, lock: threading.Lock, pod: str) -> Series:
    """The request counter of ``pod``, once the first scrape has created it."""
    found: list[Series] = []

    def created() -> bool:
        with lock:
            found[:] = store.select("http_requests_total", pod=pod, code="200")
        return bool(found)

    wait_until(created, timeout=5 * INTERVAL_S, what=f"the first scrape of {pod}")
    return found[0]

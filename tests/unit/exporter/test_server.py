"""The exporter's HTTP server on loopback, with a small real collector of the tests' own.

The collector can be held inside a collection (``gate``), to show that a scrape in
progress holds up neither ``/healthz`` nor shutdown beyond its grace period.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.server import HealthStatus, MetricsServer, ServerError, create_app

# What Prometheus 2.x sends when scraping.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


class NodeCollector:
    """Two families; blocks inside collect() while ``gate`` is set and not yet opened."""

    def __init__(self) -> None:
        self.gate: threading.Event | None = None
        self.inside = threading.Event()
        self.fail = False
        self.collections = 0

    def collect(self) -> Iterator[Metric]:
        self.collections += 1
        if self.fail:
            raise RuntimeError("collector bug")
        if self.gate is not None:
            self.inside.set()
            self.gate.wait(10)
        gauge = GaugeMetricFamily("kubepulse_test_value", "A value.", labels=["node"])
        gauge.add_metric(["n1"], 42.5)
        yield gauge
        counter = CounterMetricFamily("kubepulse_test_events", "Events.", labels=["node"])
        counter.add_metric(["n1"], 7)
        yield counter


class Health:
    def __init__(self) -> None:
        self.status = HealthStatus(ok=True)

    def __call__(self) -> HealthStatus:
        return self.status


class Running:
    def __init__(self, server: MetricsServer, collector: NodeCollector, health: Health) -> None:
        self.server = server
        self.collector = collector
        self.health = health

    def request(
        self, path: str, *, method: str = "GET", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


@pytest.fixture
def running() -> Iterator[Running]:
    collector = NodeCollector()
    health = Health()
    # As the exporter builds it: its collector describes nothing.
    registry = CollectorRegistry(support_collectors_without_names=True)
    registry.register(collector)
    server = MetricsServer(create_app(registry, health), host="127.0.0.1", port=0)
    server.start()
    yield Running(server, collector, health)
    if collector.gate is not None:
        collector.gate.set()
    server.shutdown(grace_seconds=1)


def test_metrics_in_the_text_format_by_default(running: Running) -> None:
    status, headers, body = running.request("/metrics")

    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {family.name: family for family in parse_text(body.decode())}
    assert families["kubepulse_test_value"].samples[0].value == 42.5
    assert families["kubepulse_test_events"].type == "counter"


def test_openmetrics_when_prometheus_asks_for_it(running: Running) -> None:
    status, headers, body = running.request("/metrics", headers={"Accept": PROMETHEUS_ACCEPT})

    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("# EOF\n")
    families = {family.name: family for family in parse_openmetrics(text)}
    assert families["kubepulse_test_events"].samples[0].name == "kubepulse_test_events_total"


def test_gzip_when_accepted(running: Running) -> None:
    status, headers, body = running.request(
        "/metrics", headers={"Accept-Encoding": "deflate, gzip;q=1.0"}
    )
    _, _, plain = running.request("/metrics")

    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == plain


def test_a_few_families_by_name(running: Running) -> None:
    _, _, body = running.request("/metrics?name[]=kubepulse_test_value")

    assert [family.name for family in parse_text(body.decode())] == ["kubepulse_test_value"]


def test_healthz(running: Running) -> None:
    assert running.request("/healthz")[::2] == (200, b"ok\n")

    running.health.status = HealthStatus(ok=False, reason="the cgroup root is gone")
    status, headers, body = running.request("/healthz")

    assert status == 503
    assert body == b"unhealthy: the cgroup root is gone\n"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"


def test_head_healthz_has_no_body(running: Running) -> None:
    status, headers, body = running.request("/healthz", method="HEAD")

    assert (status, body) == (200, b"")
    assert headers["Content-Length"] == "3"


def test_index_unknown_paths_and_methods(running: Running) -> None:
    status, _, index = running.request("/")
    assert status == 200
    assert b"/metrics" in index
    assert b"/healthz" in index

    assert running.request("/metricsx")[0] == 404
    assert running.request("/healthz/")[0] == 404
    status, headers, _ = running.request("/healthz", method="POST")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert running.request("/metrics", method="DELETE")[0] == 405


def test_a_slow_scrape_holds_up_neither_healthz_nor_the_index(running: Running) -> None:
    running.collector.gate = threading.Event()
    results: list[int] = []
    scrape = threading.Thread(target=lambda: results.append(running.request("/metrics")[0]))
    scrape.start()
    assert running.collector.inside.wait(5)

    started = time.monotonic()
    health = running.request("/healthz")[0]
    index = running.request("/")[0]
    elapsed = time.monotonic() - started

    assert (health, index) == (200, 200)
    assert elapsed < 1.0
    assert results == []  # the scrape is still held
    running.collector.gate.set()
    scrape.join(5)
    assert results == [200]


def test_shutdown_lets_a_scrape_in_flight_finish(running: Running) -> None:
    running.collector.gate = threading.Event()
    results: list[int] = []
    scrape = threading.Thread(target=lambda: results.append(running.request("/metrics")[0]))
    scrape.start()
    assert running.collector.inside.wait(5)

    stopper = threading.Thread(target=running.server.shutdown, kwargs={"grace_seconds": 5})
    stopper.start()
    time.sleep(0.3)
    assert stopper.is_alive()  # waiting for the scrape
    running.collector.gate.set()
    stopper.join(5)
    scrape.join(5)

    assert not stopper.is_alive()
    assert results == [200]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", running.server.port), timeout=2)


def test_shutdown_gives_up_after_its_grace_period(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    running.collector.gate = threading.Event()
    scrape = threading.Thread(target=lambda: running.request("/metrics"), daemon=True)
    scrape.start()
    assert running.collector.inside.wait(5)

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="kubepulse.exporter.server"):
        running.server.shutdown(grace_seconds=0.3)

    assert time.monotonic() - started < 2.0
    assert "1 request(s) still in flight" in caplog.text
    running.collector.gate.set()


def test_a_failing_collection_is_a_500_and_a_log_line(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    running.collector.fail = True
    with caplog.at_level(logging.ERROR, logger="kubepulse.exporter.server"):
        status, _, body = running.request("/metrics")

    assert status == 500
    assert body == b"internal error; see the exporter's log\n"
    [record] = [r for r in caplog.records if r.name == "kubepulse.exporter.server"]
    assert record.getMessage() == "request failed"
    assert record.exc_info is not None
    # The server goes on serving.
    running.collector.fail = False
    assert running.request("/metrics")[0] == 200


def test_port_zero_picks_a_free_port_and_a_busy_port_is_a_clear_error(running: Running) -> None:
    assert running.server.port > 0
    assert running.server.address == f"127.0.0.1:{running.server.port}"

    with pytest.raises(ServerError, match=f"cannot listen on 127.0.0.1:{running.server.port}"):
        MetricsServer(
            create_app(CollectorRegistry(), Health()), host="127.0.0.1", port=running.server.port
        )


def test_an_unresolvable_host_is_a_clear_error() -> None:
    with pytest.raises(ServerError, match="does not resolve"):
        MetricsServer(
            create_app(CollectorRegistry(), Health()), host="no-such-host.invalid", port=0
        )


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        server = MetricsServer(create_app(CollectorRegistry(), Health()), host="::1", port=0)
    except ServerError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    server.start()
    try:
        connection = http.client.HTTPConnection("::1", server.port, timeout=5)
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
        connection.close()
        assert server.address == f"[::1]:{server.port}"
    finally:
        server.shutdown(grace_seconds=1)

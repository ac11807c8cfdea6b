"""The scraper against an in-memory HTTP transport: schema, failures, staleness, metrics.

The real network path (prometheus_client servers on loopback) is in
``tests/integration/test_scraper.py``; here every page comes from ``httpx.MockTransport``
and time from a clock the test moves.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import httpx
import pytest
from prometheus_client import CollectorRegistry

from adapter.scrape.scraper import (
    FAILURE_REASONS,
    ScrapeMetrics,
    Scraper,
    ScrapeResult,
    ScrapeSettings,
    storage_labels,
)
from adapter.scrape.targets import StaticTargets, Target, TargetRole
from kubepulse.errors import KubepulseValueError
from kubepulse.stats.summary import SeriesKind
from kubepulse.store import Series, TimeSeriesStore

START_S = 1_800_000_000.0  # a fixed wall clock, seconds
GRACE_S = 600.0

APP_PAGE = """\
# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="200",pod="from-the-app"} 10
# HELP http_requests_created Created.
# TYPE http_requests_created gauge
http_requests_created{code="200",pod="from-the-app"} 1.7e+09
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 1
latency_seconds_bucket{le="+Inf"} 3
latency_seconds_sum 0.9
latency_seconds_count 3
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.99"} 0.25
rpc_seconds_sum 4
rpc_seconds_count 20
# TYPE queue_depth gauge
queue_depth{queue=""} 4
untyped_thing{__reserved="x"} 2
"""

EXPORTER_PAGE = (
    (
        "# TYPE kubepulse_container_cpu_usage_seconds_total counter\n"
        'kubepulse_container_cpu_usage_seconds_total{namespace="shop",pod="cart-1",container="app",'
        'node="n1",pod_uid="u1"} 12.5\n'
    )
    + """\
# TYPE kubepulse_node_memory_available_bytes gauge
kubepulse_node_memory_available_bytes{node="n1"} 1.5e+09
"""
)

POD_TARGET = Target(
    url="http://10.0.0.7:8080/metrics",
    role=TargetRole.POD,
    namespace="shop",
    pod="cart-1",
    node="n1",
    pod_uid="u1",
)
EXPORTER_TARGET = Target(
    url="http://10.0.0.2:9847/metrics",
    role=TargetRole.EXPORTER,
    namespace="kubepulse",
    pod="kubepulse-exporter-abcde",
    node="n1",
    pod_uid="e1",
)


class Clock:
    """A wall clock the test moves."""

    def __init__(self, seconds: float = START_S) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return self.seconds

    @property
    def ms(self) -> int:
        return int(self.seconds * 1000)


class Targets:
    """A target source the test edits."""

    def __init__(self, *targets: Target) -> None:
        self.current = list(targets)

    def targets(self) -> tuple[Target, ...]:
        return tuple(self.current)


Handler = Callable[[httpx.Request], httpx.Response]


class Site:
    """Pages by URL, served through httpx.MockTransport; a handler may replace a page."""

    def __init__(self, pages: dict[str, str | Handler]) -> None:
        self.pages = pages
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        page = self.pages.get(str(request.url))
        if page is None:
            raise httpx.ConnectError("connection refused", request=request)
        if callable(page):
            return page(request)
        return httpx.Response(200, text=page, headers={"Content-Type": "text/plain"})

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


class RecordingLock:
    """A lock that counts how often it was taken (duck-typed as threading.Lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.acquisitions = 0

    def __enter__(self) -> bool:
        self._lock.acquire()
        self.acquisitions += 1
        return True

    def __exit__(self, *_exc_info: object) -> None:
        self._lock.release()


def make_scraper(
    site: Site,
    targets: Targets,
    clock: Clock,
    *,
    store: TimeSeriesStore | None = None,
    lock: Any = None,
    **settings: Any,
) -> Scraper:
    options: dict[str, Any] = {"series_grace_seconds": GRACE_S, **settings}
    return Scraper(
        store or TimeSeriesStore(),
        cast(threading.Lock, lock or threading.Lock()),
        targets,
        ScrapeSettings(**options),
        wall_clock=clock,
        transport=site.transport,
    )


def scrape(scraper: Scraper) -> tuple[ScrapeResult, ...]:
    return asyncio.run(scraper.scrape_once())


def stored(store: TimeSeriesStore) -> dict[tuple[str, tuple[tuple[str, str], ...]], Series]:
    return {(series.name, tuple(sorted(series.labels.items()))): series for series in store}


def metric(scraper: Scraper, name: str, **labels: str) -> float:
    value = scraper.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


# ---------------------------------------------------------------------------- labels


def test_exporter_series_keep_their_labels_and_get_an_instance() -> None:
    exposed = {"namespace": "shop", "pod": "cart-1", "container": "app", "node": "n1"}
    assert storage_labels(dict(exposed), EXPORTER_TARGET) == {
        **exposed,
        "instance": "10.0.0.2:9847",
    }
    assert storage_labels({"instance": "mine"}, EXPORTER_TARGET) == {
        "instance": "10.0.0.2:9847",
        "exported_instance": "mine",
    }


def test_pod_series_get_the_pods_identity() -> None:
    assert storage_labels({"code": "200"}, POD_TARGET) == {
        "code": "200",
        "namespace": "shop",
        "pod": "cart-1",
        "node": "n1",
    }
    conflicting = {"pod": "mine", "exported_pod": "taken", "namespace": "elsewhere"}
    assert storage_labels(conflicting, POD_TARGET) == {
        "pod": "cart-1",
        "exported_pod": "taken",  # as Prometheus: the exposed "pod" moves past it
        "exported_exported_pod": "mine",
        "namespace": "shop",
        "exported_namespace": "elsewhere",
        "node": "n1",
    }


def test_empty_and_reserved_labels_are_dropped() -> None:
    static = Target(url="http://127.0.0.1:1/metrics", role=TargetRole.POD, namespace="demo")
    assert storage_labels({"a": "", "__meta": "x", "b": "1"}, static) == {
        "b": "1",
        "namespace": "demo",
    }


# ---------------------------------------------------------------------------- one scrape


def test_a_scrape_stores_what_the_schema_says() -> None:
    clock = Clock()
    site = Site({POD_TARGET.url: APP_PAGE})
    scraper = make_scraper(site, Targets(POD_TARGET), clock)
    (result,) = scrape(scraper)
    assert result.up
    assert result.timestamp_ms == clock.ms
    assert (result.samples, result.new_series, result.malformed_lines) == (11, 11, 0)
    assert result.appended == 10  # the _created sample is not stored
    identity = (("namespace", "shop"), ("node", "n1"), ("pod", "cart-1"))

    def key(name: str, *labels: tuple[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
        return name, tuple(sorted((*identity, *labels)))

    series = stored(scraper.store)
    expected_kinds = {
        key("http_requests_total", ("code", "200"), ("exported_pod", "from-the-app")): (
            SeriesKind.COUNTER,
            10.0,
        ),
        key("latency_seconds_bucket", ("le", "0.1")): (SeriesKind.COUNTER, 1.0),
        key("latency_seconds_bucket", ("le", "+Inf")): (SeriesKind.COUNTER, 3.0),
        key("latency_seconds_sum"): (SeriesKind.COUNTER, 0.9),
        key("latency_seconds_count"): (SeriesKind.COUNTER, 3.0),
        key("rpc_seconds", ("quantile", "0.99")): (SeriesKind.GAUGE, 0.25),
        key("rpc_seconds_sum"): (SeriesKind.COUNTER, 4.0),
        key("rpc_seconds_count"): (SeriesKind.COUNTER, 20.0),
        key("queue_depth"): (SeriesKind.GAUGE, 4.0),
        key("untyped_thing"): (SeriesKind.GAUGE, 2.0),
    }
    assert set(series) == set(expected_kinds) | {key("latency_seconds_bucket", ("le", "0.1"))}
    for identity_key, (kind, value) in expected_kinds.items():
        assert series[identity_key].kind is kind
        assert series[identity_key].latest(clock.ms, 1) == (clock.ms, value)
    request = site.requests[0]
    assert request.headers["accept"].startswith("text/plain;version=0.0.4")
    assert request.headers["accept-encoding"] == "gzip"
    assert request.headers["x-prometheus-scrape-timeout-seconds"] == "10"


def test_exporter_series_name_the_containers_they_describe() -> None:
    clock = Clock()
    scraper = make_scraper(
        Site({EXPORTER_TARGET.url: EXPORTER_PAGE}), Targets(EXPORTER_TARGET), clock
    )
    scrape(scraper)
    labels = {series.name: series.labels for series in scraper.store}
    assert labels["kubepulse_container_cpu_usage_seconds_total"] == {
        "namespace": "shop",
        "pod": "cart-1",
        "container": "app",
        "node": "n1",
        "pod_uid": "u1",
        "instance": "10.0.0.2:9847",
    }
    assert labels["kubepulse_node_memory_available_bytes"] == {
        "node": "n1",
        "instance": "10.0.0.2:9847",
    }


def test_later_scrapes_reuse_the_series_and_hold_the_lock_once() -> None:
    clock = Clock()
    lock = RecordingLock()
    page = {"text": "# TYPE c counter\nc_total 1\n"}
    site = Site({POD_TARGET.url: lambda _request: httpx.Response(200, text=page["text"])})
    scraper = make_scraper(site, Targets(POD_TARGET), clock, lock=lock)
    scrape(scraper)
    assert lock.acquisitions == 2  # create the new series, then append the page
    clock.seconds += 15
    page["text"] = "# TYPE c counter\nc_total 2\n"
    (result,) = scrape(scraper)
    assert (result.new_series, result.appended) == (0, 1)
    assert lock.acquisitions == 3  # known series: one hold for the whole page
    (series,) = scraper.store
    assert list(series.samples(0, clock.ms)[1]) == [1.0, 2.0]
    assert scraper.lock_hold_seconds_max > 0
    assert metric(scraper, "kubepulse_adapter_scrape_lock_hold_seconds_count") == 3


def test_many_new_series_are_created_a_few_hundred_per_hold() -> None:
    lock = RecordingLock()
    page = "".join(f'g{{index="{index}"}} {index}\n' for index in range(600))
    scraper = make_scraper(Site({POD_TARGET.url: page}), Targets(POD_TARGET), Clock(), lock=lock)
    (result,) = scrape(scraper)
    assert (result.new_series, result.appended) == (600, 600)
    assert lock.acquisitions == 3 + 1  # 256 + 256 + 88 new series, then the page


def test_openmetrics_answers_are_read_as_openmetrics() -> None:
    page = '# TYPE c counter\nc_total 5 # {trace_id="x"} 1\nc_created 1.7e9\n# EOF\n'
    headers = {"Content-Type": "application/openmetrics-text; version=1.0.0; charset=utf-8"}
    site = Site({POD_TARGET.url: lambda _r: httpx.Response(200, text=page, headers=headers)})
    scraper = make_scraper(site, Targets(POD_TARGET), Clock())
    (result,) = scrape(scraper)
    assert (result.samples, result.appended, result.malformed_lines) == (2, 1, 0)
    (series,) = scraper.store
    assert (series.name, series.kind) == ("c_total", SeriesKind.COUNTER)


def test_gzip_pages_are_decompressed() -> None:
    body = gzip.compress(APP_PAGE.encode())
    headers = {"Content-Encoding": "gzip", "Content-Type": "text/plain"}
    site = Site({POD_TARGET.url: lambda _r: httpx.Response(200, content=body, headers=headers)})
    (result,) = scrape(make_scraper(site, Targets(POD_TARGET), Clock()))
    assert result.up
    assert result.appended == 10


def test_only_the_metrics_kept_are_stored() -> None:
    scraper = make_scraper(
        Site({POD_TARGET.url: APP_PAGE}),
        Targets(POD_TARGET),
        Clock(),
        keep_metrics="(http|latency|rpc)_.*",
        drop_metrics=".*_bucket|rpc_seconds",
    )
    (result,) = scrape(scraper)
    assert result.appended == 5
    assert names(scraper.store) == {
        "http_requests_total",
        "latency_seconds_sum",
        "latency_seconds_count",
        "rpc_seconds_sum",
        "rpc_seconds_count",
    }
    assert ScrapeSettings().keeps("anything")


def test_malformed_lines_are_counted_every_scrape() -> None:
    page = 'good 1\nbad{a="1" 2\nworse{a=1} 3\n'
    clock = Clock()
    scraper = make_scraper(Site({POD_TARGET.url: page}), Targets(POD_TARGET), clock)
    (first,) = scrape(scraper)
    clock.seconds += 15
    (second,) = scrape(scraper)
    assert first.malformed_lines == second.malformed_lines == 2
    assert (first.appended, second.appended) == (1, 1)
    assert metric(scraper, "kubepulse_adapter_scrape_malformed_lines_total") == 4


def test_a_series_keeps_its_kind() -> None:
    # Two pod targets of the same pod that disagree on the type of "x": the second is
    # refused, counted, and the first keeps its series.
    twin = Target(
        url="http://10.0.0.8:8080/metrics",
        role=TargetRole.POD,
        namespace="shop",
        pod="cart-1",
        node="n1",
        pod_uid="u1",
    )
    site = Site(
        {
            POD_TARGET.url: "# TYPE x counter\nx 1\n",
            twin.url: "# TYPE x gauge\nx 2\n",
        }
    )
    scraper = make_scraper(site, Targets(POD_TARGET, twin), Clock())
    results = {result.target.url: result for result in scrape(scraper)}
    assert results[POD_TARGET.url].appended == 1
    assert results[twin.url].appended == 0
    (series,) = scraper.store
    assert series.kind is SeriesKind.COUNTER
    assert (
        metric(scraper, "kubepulse_adapter_scrape_samples_rejected_total", reason="kind_conflict")
        == 1
    )


def test_store_refusals_are_counted_by_reason() -> None:
    clock = Clock()
    scraper = make_scraper(Site({POD_TARGET.url: "a +Inf\nb 1\nb 1\n"}), Targets(POD_TARGET), clock)
    (result,) = scrape(scraper)
    assert result.appended == 1
    rejected = "kubepulse_adapter_scrape_samples_rejected_total"
    assert metric(scraper, rejected, reason="infinite") == 1
    assert metric(scraper, rejected, reason="duplicate") == 1
    clock.seconds += 5  # sooner than the store's resolution allows: both "b" lines
    scrape(scraper)
    assert metric(scraper, rejected, reason="too_frequent") == 2


# ---------------------------------------------------------------------------- failures


def slow(_request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("read timed out")


def too_many_redirects(request: httpx.Request) -> httpx.Response:
    raise httpx.TooManyRedirects("round and round", request=request)


class _Hang(httpx.AsyncByteStream):
    async def __aiter__(self) -> Any:
        await asyncio.sleep(5)
        yield b"never"


def hangs(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, stream=_Hang())


@pytest.mark.parametrize(
    ("page", "reason", "message"),
    [
        (lambda _r: httpx.Response(503, text="no"), "http_status", "HTTP 503"),
        (
            lambda _r: httpx.Response(302, headers={"Location": "http://169.254.169.254/"}),
            "http_status",
            "redirects are not followed",
        ),
        (too_many_redirects, "error", "TooManyRedirects"),
        (None, "connection", "ConnectError"),
        (slow, "timeout", "ReadTimeout"),
        (hangs, "timeout", "no complete answer within 0.3 s"),
        (lambda _r: httpx.Response(200, text="a 1\n" * 300), "too_large", "over the limit"),
        (
            lambda _r: httpx.Response(200, content=b"a 1\n", headers={"Content-Length": "5000"}),
            "too_large",
            "5000 bytes",
        ),
        (
            lambda _r: httpx.Response(
                200,
                content=gzip.compress(b"a 1\n" * 100_000),  # 400 kB from 1 kB: a small bomb
                headers={"Content-Encoding": "gzip"},
            ),
            "too_large",
            "over the limit",
        ),
        (
            lambda _r: httpx.Response(
                200, content=b"not gzip at all", headers={"Content-Encoding": "gzip"}
            ),
            "decode",
            "cannot be decompressed",
        ),
        (lambda _r: httpx.Response(200, text="a 1\nb 2\nc 3\nd 4\n"), "sample_limit", "4 samples"),
    ],
)
def test_a_failed_scrape_is_counted_by_reason(
    page: Handler | None, reason: str, message: str
) -> None:
    pages: dict[str, str | Handler] = {} if page is None else {POD_TARGET.url: page}
    healthy = Target(url="http://10.0.0.9:8080/metrics", role=TargetRole.POD, namespace="ok")
    pages[healthy.url] = "fine 1\n"
    scraper = make_scraper(
        Site(pages),
        Targets(POD_TARGET, healthy),
        Clock(),
        timeout_seconds=0.3,
        interval_seconds=1,
        max_body_bytes=1000,
        sample_limit=3,
    )
    results = {result.target.url: result for result in scrape(scraper)}
    failed = results[POD_TARGET.url]
    assert not failed.up
    assert failed.failure_reason == reason
    assert failed.failure_reason in FAILURE_REASONS
    assert message in (failed.error or "")
    assert failed.appended == 0
    assert results[healthy.url].up  # one bad target does not stop the others
    assert (
        metric(scraper, "kubepulse_adapter_scrape_failures_total", role="pod", reason=reason) == 1
    )
    assert metric(scraper, "kubepulse_adapter_scrapes_total", role="pod") == 2
    assert [series.name for series in scraper.store] == ["fine"]


def test_health_reports_the_last_scrape_of_current_targets() -> None:
    site = Site({POD_TARGET.url: "a 1\n"})
    targets = Targets(POD_TARGET, EXPORTER_TARGET)
    scraper = make_scraper(site, targets, Clock())
    scrape(scraper)
    assert scraper.active_targets() == (POD_TARGET, EXPORTER_TARGET)
    health = {result.target: result.up for result in scraper.health()}
    assert health == {POD_TARGET: True, EXPORTER_TARGET: False}
    assert metric(scraper, "kubepulse_adapter_scrape_targets", role="pod", health="up") == 1
    assert metric(scraper, "kubepulse_adapter_scrape_targets", role="exporter", health="down") == 1
    targets.current = [POD_TARGET]
    scrape(scraper)
    assert [result.target for result in scraper.health()] == [POD_TARGET]


# ---------------------------------------------------------------------------- deletion


def names(store: TimeSeriesStore) -> set[str]:
    return {series.name for series in store}


def test_a_series_that_vanished_is_deleted_after_the_grace_period() -> None:
    clock = Clock()
    page = {"text": "a 1\nb 1\n"}
    site = Site({POD_TARGET.url: lambda _r: httpx.Response(200, text=page["text"])})
    scraper = make_scraper(site, Targets(POD_TARGET), clock)
    scrape(scraper)
    page["text"] = "a 2\n"
    for _ in range(int(GRACE_S // 15)):
        clock.seconds += 15
        scrape(scraper)
        assert scraper.housekeeping() == 0
    assert names(scraper.store) == {"a", "b"}
    clock.seconds += 15
    scrape(scraper)
    assert scraper.housekeeping() == 1
    assert names(scraper.store) == {"a"}
    assert metric(scraper, "kubepulse_adapter_store_deleted_series_total") == 1
    assert metric(scraper, "kubepulse_adapter_store_series") == 1
    # It comes back as a new series, with no trace of the old one.
    page["text"] = "a 3\nb 9\n"
    clock.seconds += 15
    scrape(scraper)
    b = next(series for series in scraper.store if series.name == "b")
    assert list(b.samples(0, clock.ms)[1]) == [9.0]


def test_a_target_that_went_away_loses_its_series_after_the_grace_period() -> None:
    clock = Clock()
    other = Target(url="http://10.0.0.9:8080/metrics", role=TargetRole.POD, namespace="other")
    site = Site({POD_TARGET.url: "a 1\n", other.url: "a 1\n"})
    targets = Targets(POD_TARGET, other)
    scraper = make_scraper(site, targets, clock)
    scrape(scraper)
    targets.current = [other]
    scrape(scraper)
    clock.seconds += GRACE_S - 1
    assert scraper.housekeeping() == 0
    clock.seconds += 2
    assert scraper.housekeeping() == 1
    assert [series.labels["namespace"] for series in scraper.store] == ["other"]


def test_a_target_back_within_the_grace_period_keeps_everything() -> None:
    clock = Clock()
    site = Site({POD_TARGET.url: "a 1\n"})
    targets = Targets(POD_TARGET)
    scraper = make_scraper(site, targets, clock)
    scrape(scraper)
    targets.current = []
    scrape(scraper)
    clock.seconds += GRACE_S / 2
    targets.current = [POD_TARGET]
    (result,) = scrape(scraper)
    assert result.new_series == 0  # its series cache came back with it
    clock.seconds += GRACE_S
    assert scraper.housekeeping() == 0
    assert names(scraper.store) == {"a"}


def test_a_recreated_pod_keeps_the_series_its_predecessor_wrote() -> None:
    # A StatefulSet pod comes back with the same name on the same node and a new IP and
    # UID: its series are the same series, which the old target's expiry must not delete.
    clock = Clock()
    successor = Target(
        url="http://10.0.0.99:8080/metrics",
        role=TargetRole.POD,
        namespace="shop",
        pod="cart-1",
        node="n1",
        pod_uid="u2",
    )
    site = Site({POD_TARGET.url: "a 1\n", successor.url: "a 2\n"})
    targets = Targets(POD_TARGET)
    scraper = make_scraper(site, targets, clock)
    scrape(scraper)
    targets.current = [successor]
    clock.seconds += 15
    scrape(scraper)
    clock.seconds += GRACE_S + 1
    scrape(scraper)
    assert scraper.housekeeping() == 0
    (series,) = scraper.store
    assert list(series.samples(0, clock.ms)[1]) == [1.0, 2.0, 2.0]


def test_restored_series_nobody_writes_are_deleted_once() -> None:
    clock = Clock()
    store = TimeSeriesStore()
    old_ms = clock.ms - 3_600_000
    store.append("a", {"namespace": "shop", "node": "n1", "pod": "cart-1"}, old_ms, 1.0)
    store.append("gone", {"namespace": "shop", "pod": "deleted-1"}, old_ms, 1.0)
    scraper = make_scraper(Site({POD_TARGET.url: "a 2\n"}), Targets(POD_TARGET), clock, store=store)
    scrape(scraper)
    assert scraper.housekeeping() == 0  # not before the grace period after start
    assert names(store) == {"a", "gone"}
    clock.seconds += GRACE_S
    scrape(scraper)
    assert scraper.housekeeping() == 1
    assert names(store) == {"a"}
    (series,) = store
    assert list(series.samples(0, clock.ms)[1]) == [1.0, 2.0, 2.0]


def test_housekeeping_measures_the_store() -> None:
    scraper = make_scraper(Site({POD_TARGET.url: APP_PAGE}), Targets(POD_TARGET), Clock())
    scrape(scraper)
    scraper.housekeeping()
    assert metric(scraper, "kubepulse_adapter_store_series") == 10
    assert metric(scraper, "kubepulse_adapter_store_bytes") == scraper.store.memory_bytes()


# ---------------------------------------------------------------------------- the loop


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_loop_scrapes_on_aligned_slots_until_stopped() -> None:
    site = Site({POD_TARGET.url: "a 1\n"})
    scraper = Scraper(
        TimeSeriesStore(resolution_ms=200),
        threading.Lock(),
        Targets(POD_TARGET),
        ScrapeSettings(interval_seconds=0.25, timeout_seconds=0.2, target_refresh_seconds=0.05),
        transport=site.transport,
    )
    with scraper:
        wait_for(lambda: sum(series.sample_count for series in scraper.store) >= 4)
        with pytest.raises(RuntimeError, match="already started"):
            scraper.start()
    requests = len(site.requests)
    time.sleep(0.5)
    assert len(site.requests) == requests  # stopped means stopped
    (series,) = scraper.store
    timestamps = list(series.samples(0, 2**62)[0])
    gaps = {later - earlier for earlier, later in itertools.pairwise(timestamps)}
    assert gaps <= {250, 500}  # slots, not "whenever the request went out"
    assert len({timestamp % 250 for timestamp in timestamps}) == 1


def test_run_in_the_callers_loop_follows_the_target_source() -> None:
    site = Site({POD_TARGET.url: "a 1\n", EXPORTER_TARGET.url: "b 1\n"})
    targets = Targets(POD_TARGET)
    scraper = Scraper(
        TimeSeriesStore(resolution_ms=100),
        threading.Lock(),
        targets,
        ScrapeSettings(interval_seconds=0.1, timeout_seconds=0.05, target_refresh_seconds=0.02),
        transport=site.transport,
    )

    async def scenario() -> None:
        runner = asyncio.get_running_loop().create_task(scraper.run())
        await asyncio.sleep(0.3)
        targets.current = [EXPORTER_TARGET]
        await asyncio.sleep(0.3)
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner

    asyncio.run(scenario())
    urls = [str(request.url) for request in site.requests]
    assert POD_TARGET.url in urls
    assert EXPORTER_TARGET.url in urls
    last_pod_request = max(i for i, url in enumerate(urls) if url == POD_TARGET.url)
    first_exporter_request = urls.index(EXPORTER_TARGET.url)
    assert last_pod_request < first_exporter_request + 2


def test_a_run_ends_even_when_a_scrape_swallowed_its_cancellation() -> None:
    """On Python before 3.12, asyncio.wait_for swallows a cancellation that arrives as
    the awaited fetch completes; that target's loop then sleeps on to its next slot (a
    shutdown hung for ever at the scale rig's 1,000 targets). Simulated here by a scrape
    that swallows the first cancellation it sees: the run must still end."""

    class SwallowsOneCancellation(Scraper):
        swallowed = 0

        async def _scrape(
            self, state: Any, client: httpx.AsyncClient, slot_ms: int | None
        ) -> ScrapeResult:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if self.swallowed:
                    raise
                self.swallowed += 1
            return ScrapeResult(
                target=state.target,
                timestamp_ms=0,
                duration_seconds=0.0,
                failure_reason="timeout",
                error="swallowed a cancellation",
            )

    scraper = SwallowsOneCancellation(
        TimeSeriesStore(resolution_ms=100),
        threading.Lock(),
        Targets(POD_TARGET),
        ScrapeSettings(interval_seconds=0.1, timeout_seconds=0.05, target_refresh_seconds=0.02),
        transport=Site({POD_TARGET.url: "a 1\n"}).transport,
    )

    async def scenario() -> None:
        runner = asyncio.get_running_loop().create_task(scraper.run())
        await asyncio.sleep(0.3)  # the target's loop is inside a scrape by now
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(runner), 5)

    asyncio.run(scenario())
    assert scraper.swallowed == 1


def test_a_broken_target_source_keeps_the_known_targets() -> None:
    class Broken:
        def __init__(self) -> None:
            self.calls = 0

        def targets(self) -> tuple[Target, ...]:
            self.calls += 1
            if self.calls > 1:
                raise RuntimeError("the API server is down")
            return (POD_TARGET,)

    scraper = make_scraper(Site({POD_TARGET.url: "a 1\n"}), Targets(), Clock())
    scraper = Scraper(
        scraper.store,
        threading.Lock(),
        Broken(),
        transport=Site({POD_TARGET.url: "a 1\n"}).transport,
    )
    scrape(scraper)
    (result,) = scrape(scraper)
    assert result.target == POD_TARGET


# ---------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"interval_seconds": 10, "timeout_seconds": 10}, "below the interval"),
        ({"timeout_seconds": 0}, "below the interval"),
        ({"max_concurrent_scrapes": 0}, "max_concurrent_scrapes"),
        ({"sample_limit": 0}, "sample_limit"),
        ({"series_grace_seconds": 0}, "series_grace_seconds"),
        ({"timestamp_tolerance_ms": -1}, "timestamp_tolerance_ms"),
        ({"keep_metrics": "(unclosed"}, "keep_metrics '\\(unclosed' is not a regular"),
        ({"drop_metrics": "*"}, "drop_metrics"),
    ],
)
def test_settings_are_checked(kwargs: dict[str, Any], complaint: str) -> None:
    with pytest.raises(KubepulseValueError, match=complaint):
        ScrapeSettings(**kwargs)


def test_metrics_go_to_the_registry_given() -> None:
    registry = CollectorRegistry()
    metrics = ScrapeMetrics(registry)
    assert metrics.registry is registry
    scraper = Scraper(
        TimeSeriesStore(),
        threading.Lock(),
        Targets(),
        metrics=metrics,
        transport=Site({}).transport,
    )
    assert scraper.metrics is metrics
    assert registry.get_sample_value("kubepulse_adapter_store_series") == 0


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leftovers = [t for t in set(threading.enumerate()) - before if t.name == "kubepulse-scraper"]
    for thread in leftovers:
        thread.join(2)
    assert not [thread for thread in leftovers if thread.is_alive()]


def test_static_targets_work_as_a_source() -> None:
    source = StaticTargets(["http://127.0.0.1:9/metrics"])
    scraper = Scraper(
        TimeSeriesStore(),
        threading.Lock(),
        source,
        transport=Site({"http://127.0.0.1:9/metrics": "up 1\n"}).transport,
    )
    (result,) = scrape(scraper)
    assert result.up
    (series,) = scraper.store
    assert series.labels == {"instance": "127.0.0.1:9"}


class _RecordingFinder:
    """A meta path finder that only records which modules the import system searched for."""

    def __init__(self) -> None:
        self.searched: list[str] = []

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        self.searched.append(name)


def test_httpcore_does_not_search_the_path_for_sniffio_on_every_request() -> None:
    """httpcore imports sniffio whenever it sets up a lock (several times per request);
    when sniffio is absent each of those imports searched sys.path again (half the CPU
    of a GET for the scale rig's pages). Importing the scraper (done at the top of this
    file) marks it absent, so no lock set-up searches; where sniffio is installed the
    import is a sys.modules hit and nothing is searched either."""
    from httpcore._synchronization import AsyncLock  # noqa: PLC0415

    async def set_up_locks() -> None:
        for _ in range(3):
            async with AsyncLock():
                pass

    finder = _RecordingFinder()
    sys.meta_path.insert(0, finder)
    try:
        asyncio.run(set_up_locks())
    finally:
        sys.meta_path.remove(finder)
    assert "sniffio" not in finder.searched

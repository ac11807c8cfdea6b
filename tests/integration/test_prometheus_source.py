"""PrometheusSource and EmbeddedSource agree on the same real app's metrics.

Two ``examples/instrumented_app.py serve`` processes are the pods ``shop/web-0`` and
``shop/web-1`` (one worker each, 50 ms of work per request). ``web-0`` is loaded at 21
requests/s, just above its capacity of 20/s, so its queue gauge and its latencies climb
steadily; ``web-1`` at 8/s, well below. Debian's ``/usr/bin/prometheus`` scrapes both
every second (target labels ``namespace``, ``pod``, ``node``), and so does the adapter's
real :class:`~adapter.scrape.Scraper` into an :class:`EmbeddedSource`. After 68 s both
sources are asked the same questions at the same instant: the request rate (counter),
the p95 latency (histogram) and the queue's average (gauge) over one minute per pod,
and the rate and p95 of the two pods merged, as for a Deployment.

**Tolerances, and why.** The two scrapers read the same counters and gauges, but at
different instants (each scrapes at its own phase of the second), so each window's
first and last samples differ by up to one second of traffic:

- rates: within 4 %. Over the 60 s window a pod serves 480 to 1,200 requests; shifting
  both ends of the window by up to a second changes the sampled increase by at most a
  second's worth of requests at each end (about 2 x 20 of 1,200 in the worst case,
  3.3 %), and the sampled span by as much, which largely cancels for steady traffic.
- p95: within 10 % (and within the bucket holding it). The bucket counts differ by the
  same second's worth of observations at each end, so the rank moves by up to 2 x 20 of
  1,200 observations; the percentile is interpolated linearly inside a bucket, so a rank
  shift of ~3 % of the observations moves it by a small part of the bucket's width
  (buckets are 0.05 to 2.5 s wide where web-0's latencies are).
- queue average: within 10 % plus 0.5 requests. web-0's queue grows by about one request
  per second, so samples taken up to one second apart differ by about one request on a
  mean of tens; the absolute half request covers web-1's queue, which is almost always
  empty and sampled at different instants.

Prometheus additionally extrapolates ``rate()`` and ``increase()`` to the window's
edges; with a sample every second across the whole window this changes nothing the
tolerances above have to absorb (see :mod:`adapter.sources.promql`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapter.scrape import Scraper, ScrapeSettings, StaticTargets
from adapter.sources.embedded import EmbeddedSource
from adapter.sources.prometheus import PrometheusSource
from kubepulse.metricquery import ObjectValue, SeriesRequest, parse_statistic
from kubepulse.store import TimeSeriesStore
from tests.integration.prometheus_harness import (
    INSTALL_HINT,
    app_process,
    find_prometheus,
    load_process,
    prometheus_process,
)

pytestmark = pytest.mark.integration

HISTORY_S = 68
LOADS = {"web-0": 21.0, "web-1": 8.0}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def pods(metric: str, merge: bool = False, **options: str) -> SeriesRequest:
    statistic = parse_statistic({f"kubepulse.io/{key}": value for key, value in options.items()})
    return SeriesRequest(
        metric,
        statistic,
        namespace="shop",
        object_label="pod",
        object_names=frozenset(LOADS),
        merge_objects=merge,
    )


QUESTIONS = {
    "rate": pods("http_requests_total", window="1m"),
    "p95": pods("http_request_duration_seconds", window="1m", aggregation="p95"),
    "queue": pods("work_queue_depth", window="1m", aggregation="avg"),
    "deployment_rate": pods("http_requests_total", merge=True, window="1m"),
    "deployment_p95": pods("http_request_duration_seconds", merge=True, window="1m"),
}
TOLERANCES = {  # (relative, absolute), justified in the module docstring
    "rate": (0.04, 0.0),
    "p95": (0.10, 0.0),
    "queue": (0.10, 0.5),
    "deployment_rate": (0.04, 0.0),
    "deployment_p95": (0.10, 0.0),
}


@pytest.fixture
def prometheus_binary() -> Path:
    binary = find_prometheus()
    if binary is None:
        if in_ci():
            pytest.fail(f"{INSTALL_HINT}\n(CI=true: a missing prerequisite fails the run)")
        pytest.skip(INSTALL_HINT)
    return binary


@contextlib.contextmanager
def embedded_scraping(targets: list[str]) -> Iterator[EmbeddedSource]:
    store = TimeSeriesStore(resolution_ms=1_000)
    lock = threading.Lock()
    settings = ScrapeSettings(interval_seconds=1.0, timeout_seconds=0.5, target_refresh_seconds=0.1)
    scraper = Scraper(store, lock, StaticTargets(targets), settings)
    source = EmbeddedSource(
        store, clock=lambda: int(time.time() * 1000), staleness_ms=10_000, lock=lock
    )
    with scraper:
        yield source


async def ask_both(
    prometheus: PrometheusSource, embedded: EmbeddedSource, now_ms: int
) -> dict[str, tuple[list[ObjectValue], list[ObjectValue]]]:
    answers = {}
    for name, request in QUESTIONS.items():
        answers[name] = (
            await prometheus.query(request, now_ms),
            await embedded.query(request, now_ms),
        )
    return answers


def test_prometheus_and_embedded_sources_agree(prometheus_binary: Path, tmp_path: Path) -> None:
    with (
        app_process("web-0", workers=1) as web0,
        app_process("web-1", workers=1) as web1,
        prometheus_process(prometheus_binary, tmp_path, [web0, web1]) as prometheus,
        embedded_scraping(
            [
                f"{app.metrics_url};role=pod;namespace=shop;pod={app.pod};node=n1"
                for app in (web0, web1)
            ]
        ) as embedded,
        load_process(web0.work_url, LOADS["web-0"], LOADS["web-0"], HISTORY_S + 10),
        load_process(web1.work_url, LOADS["web-1"], LOADS["web-1"], HISTORY_S + 10),
    ):
        time.sleep(HISTORY_S)
        now_ms = int(time.time() * 1000)
        source = PrometheusSource(
            prometheus.url, timeout_ms=5_000, staleness_ms=10_000, resolution_ms=1_000
        )

        async def ask() -> dict[str, tuple[list[ObjectValue], list[ObjectValue]]]:
            try:
                assert await source.ready()
                return await ask_both(source, embedded, now_ms)
            finally:
                await source.aclose()

        answers = asyncio.run(ask())

    report = []
    for name, (from_prometheus, from_embedded) in answers.items():
        promql = {value.name: value.value for value in from_prometheus}
        own = {value.name: value.value for value in from_embedded}
        report.append(f"{name}: prometheus {promql} embedded {own}")
    print("\n".join(report))
    for name, (from_prometheus, from_embedded) in answers.items():
        promql = {value.name: value.value for value in from_prometheus}
        own = {value.name: value.value for value in from_embedded}
        expected_objects = {""} if name.startswith("deployment") else set(LOADS)
        assert set(promql) == set(own) == expected_objects, name
        relative, absolute = TOLERANCES[name]
        for pod, value in own.items():
            assert promql[pod] == pytest.approx(value, rel=relative, abs=absolute), (
                f"{name} of {pod!r}: Prometheus {promql[pod]}, embedded {value}"
            )
    # The load is what the apps saw: web-0 at its capacity, web-1 at its load.
    rates = {value.name: value.value for value in answers["rate"][1]}
    assert rates["web-1"] == pytest.approx(LOADS["web-1"], rel=0.1)
    assert 12.0 < rates["web-0"] <= LOADS["web-0"] * 1.1

"""Two adapter replicas scraping the same real app give the same answers.

Each replica of the embedded source scrapes every target on its own. What makes their
answers agree is that a scrape is stamped with the start of its slot on the interval
grid, not with the moment it ran, so both replicas hold samples at the same timestamps;
their values differ only by what the app counted between the two scrapes of one slot.

Here the two replicas are two complete data paths in one test process (store, lock,
the real :class:`~adapter.scrape.Scraper`, :class:`EmbeddedSource` and the API app),
started at different moments within a slot, scraping one real
``examples/instrumented_app.py`` process under a steady load on loopback. The objects
come from an in-memory resolver: kube-apiserver plays no part in what is compared.

Checked: the stored timestamps of every series are identical in both replicas; the
request rate, the p95 latency and the queue depth over 30 s agree (rate and queue within
5 %, p95 within 10 %: at 40 requests/s a slot's two scrapes a few hundred ms apart differ
by a handful of requests out of ~1,200 in the window, and the p95 interpolates within
the same bucket).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from adapter.app import create_app
from adapter.objects import InMemoryObjectResolver
from adapter.scrape import Scraper, ScrapeSettings, StaticTargets
from adapter.sources.embedded import EmbeddedSource
from kubepulse.quantity import parse_quantity
from kubepulse.store import TimeSeriesStore
from tests.integration.prometheus_harness import app_process, load_process
from tests.unit.adapter.api.client import TestClient

pytestmark = pytest.mark.integration

NAMESPACE = "shop"
POD = "web-0"
INTERVAL_S = 1.0
V2 = f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{NAMESPACE}/pods/{POD}"


@dataclass
class Replica:
    store: TimeSeriesStore
    lock: threading.Lock
    scraper: Scraper
    client: TestClient


@pytest.fixture
def replicas() -> Iterator[tuple[Replica, Replica, list[int]]]:
    now = [0]  # both replicas answer as of the same instant, set by the test
    objects = [
        {
            "kind": "Pod",
            "metadata": {"name": POD, "namespace": NAMESPACE, "labels": {"app": "web"}},
            "status": {"phase": "Running"},
        }
    ]
    with app_process(POD, workers=4, service_time_s=0.02) as app:
        target = f"{app.metrics_url};role=pod;namespace={NAMESPACE};pod={POD}"
        made: list[Replica] = []
        try:
            for delay in (0.0, 0.37):  # the second replica starts later within a slot
                time.sleep(delay)
                store = TimeSeriesStore(resolution_ms=round(INTERVAL_S * 1000))
                lock = threading.Lock()
                settings = ScrapeSettings(interval_seconds=INTERVAL_S, timeout_seconds=0.8)
                scraper = Scraper(store, lock, StaticTargets([target]), settings)
                scraper.start()
                source = EmbeddedSource(store, clock=lambda: now[0], staleness_ms=30_000, lock=lock)
                api = create_app(
                    source=source, objects=InMemoryObjectResolver(objects), clock=lambda: now[0]
                )
                made.append(Replica(store, lock, scraper, TestClient(api)))
            with load_process(app.work_url, rate=40, to_rate=40, duration_s=120):
                yield made[0], made[1], now
        finally:
            for replica in made:
                replica.scraper.stop()


def value(replica: Replica, metric: str, statistic: str) -> float:
    response = replica.client.get(
        f"{V2}/{metric}",
        params={
            "metricLabelSelector": f"kubepulse.io/aggregation={statistic},kubepulse.io/window=30s"
        },
    )
    assert response.status_code == 200, response.text
    text: str = response.json()["items"][0]["value"]
    return float(parse_quantity(text))


def timestamps(replica: Replica) -> dict[Any, tuple[int, ...]]:
    with replica.lock:
        return {
            (series.name, tuple(sorted(series.labels.items()))): tuple(series.samples(0, 2**62)[0])
            for series in replica.store
            if series.name.startswith(("http_request", "work_queue"))
        }


def test_two_replicas_hold_the_same_timestamps_and_answer_alike(
    replicas: tuple[Replica, Replica, list[int]],
) -> None:
    first, second, now = replicas
    time.sleep(40)  # 30 s of window after the load settles, scraped every second
    # Ask both as of the last slot both have surely scraped.
    now[0] = (int(time.time()) - 2) * 1000
    a, b = timestamps(first), timestamps(second)
    assert a.keys() == b.keys()
    for key in a:
        shared = [t for t in a[key] if t <= now[0] and t >= now[0] - 30_000]
        assert shared == [t for t in b[key] if t <= now[0] and t >= now[0] - 30_000], key
        assert len(shared) >= 25, (key, shared)
    for metric, statistic, tolerance in (
        ("http_requests_total", "rate", 0.05),
        ("http_request_duration_seconds", "p95", 0.10),
        ("work_queue_depth", "avg", 0.05),
    ):
        one, two = value(first, metric, statistic), value(second, metric, statistic)
        print(f"{metric} {statistic}: replica 1 {one:.6g}, replica 2 {two:.6g}")
        assert abs(one - two) <= tolerance * max(abs(one), abs(two)) + 1e-3, (metric, one, two)

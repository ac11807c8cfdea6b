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

Checked: every series holds one sample per slot in both replicas, and the samples of
most slots carry the identical slot time in both (a scrape that starts more than
``timestamp_tolerance_ms`` late, as when the shared machine stalls this one test process
and so both replicas at once, is stamped with its actual start, as designed); the
request rate, the p95 latency and the queue depth over 30 s agree (rate and queue within
5 %, p95 within 10 %: at 40 requests/s a slot's two scrapes a few hundred ms apart differ
by a handful of requests out of ~1,200 in the window, and the p95 interpolates within
the same bucket).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
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


def phase_ms(series: dict[Any, tuple[int, ...]]) -> int:
    """The target's phase on the interval grid: where most of its samples fall."""
    interval_ms = round(INTERVAL_S * 1000)
    phases = Counter(t % interval_ms for stamps in series.values() for t in stamps)
    return phases.most_common(1)[0][0]


def in_window(stamps: tuple[int, ...], phase: int, now_ms: int) -> dict[int, int]:
    """The samples of the 30 s before ``now_ms``, by the slot each was scraped for."""
    interval_ms = round(INTERVAL_S * 1000)
    by_slot = {t - (t - phase) % interval_ms: t for t in stamps}
    return {slot: t for slot, t in by_slot.items() if now_ms - 30_000 <= slot <= now_ms}


def test_two_replicas_hold_the_same_timestamps_and_answer_alike(
    replicas: tuple[Replica, Replica, list[int]],
) -> None:
    first, second, now = replicas
    time.sleep(40)  # 30 s of window after the load settles, scraped every second
    # Ask both as of the last slot both have surely scraped.
    now[0] = (int(time.time()) - 2) * 1000
    a, b = timestamps(first), timestamps(second)
    assert a.keys() == b.keys()
    phase = phase_ms(a)
    on_slot = compared = 0
    for key in a:
        slots_a, slots_b = in_window(a[key], phase, now[0]), in_window(b[key], phase, now[0])
        assert slots_a.keys() == slots_b.keys(), (key, sorted(slots_a.keys() ^ slots_b.keys()))
        assert len(slots_a) >= 25, (key, slots_a)
        compared += len(slots_a)
        on_slot += sum(slots_a[slot] == slots_b[slot] == slot for slot in slots_a)
    print(f"{on_slot} of {compared} samples carry the identical slot time in both replicas")
    assert on_slot >= 0.8 * compared, (on_slot, compared)
    for metric, statistic, tolerance in (
        ("http_requests_total", "rate", 0.05),
        ("http_request_duration_seconds", "p95", 0.10),
        ("work_queue_depth", "avg", 0.05),
    ):
        one, two = value(first, metric, statistic), value(second, metric, statistic)
        print(f"{metric} {statistic}: replica 1 {one:.6g}, replica 2 {two:.6g}")
        assert abs(one - two) <= tolerance * max(abs(one), abs(two)) + 1e-3, (metric, one, two)

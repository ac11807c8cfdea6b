"""The embedded source's remembered groupings and answers never change what it answers.

:class:`EmbeddedSource` keeps, per request, the grouping of series into objects and each
object's last answer with the times it holds for. These tests query one long-lived
source while samples arrive, pods come and go, series turn stale and windows slide, and
compare every answer with a source built for that one query (nothing remembered) and
with a reference computed from the window summaries, the path the source used before
:meth:`~kubepulse.store.Series.increase` existed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping

import pytest

from adapter.sources.embedded import EmbeddedSource, histogram_quantile
from kubepulse.metricquery import ObjectValue, SeriesRequest, Statistic
from kubepulse.stats import SeriesKind, parse_aggregation
from kubepulse.store import Series, TimeSeriesStore

HOUR_MS = 3_600_000
STEP_MS = 15_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS + 40 * 60_000
BUCKETS = ("0.1", "0.5", "1", "+Inf")
STALENESS_MS = 60_000


class Cluster:
    """Pods exposing a latency histogram and a request counter, scraped every 15 s."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.store = TimeSeriesStore()
        self.pods: dict[str, list[tuple[Series, float]]] = {}
        self.levels: dict[Series, float] = {}

    def add_pod(self, name: str) -> None:
        labels = {"namespace": "ns", "pod": name}
        shares = [*sorted(self.rng.random() for _ in BUCKETS[:-1]), 1.0]
        counter = SeriesKind.COUNTER
        series = [
            (self.store.series("latency_seconds_bucket", {**labels, "le": le}, counter), share)
            for le, share in zip(BUCKETS, shares, strict=True)
        ]
        series.append((self.store.series("latency_seconds_sum", labels, counter), 0.3))
        series.append((self.store.series("requests_total", labels, counter), 1.0))
        self.pods[name] = series

    def delete_pod(self, name: str) -> None:
        self.store.delete_series(namespace="ns", pod=name)
        del self.pods[name]

    def scrape(self, timestamp_ms: int) -> None:
        for name, series in self.pods.items():
            if self.rng.random() < 0.1:
                continue  # a missed scrape
            reset = self.rng.random() < 0.02
            served = self.rng.uniform(0, 100) * self.rng.choice((1.0, 1e-3))
            for handle, share in series:
                level = 0.0 if reset else self.levels.get(handle, 0.0)
                value = math.nan if name.endswith("7") and self.rng.random() < 0.05 else level
                if value == value:
                    value = level + served * share
                    self.levels[handle] = value
                self.store.append_many([(handle, timestamp_ms, value)])


def request(metric: str, aggregation: str, window_ms: int, names: frozenset[str]) -> SeriesRequest:
    return SeriesRequest(
        metric=metric,
        statistic=Statistic(window_ms=window_ms, aggregation=parse_aggregation(aggregation)),
        namespace="ns",
        object_label="pod",
        object_names=names,
    )


def fresh_answer(store: TimeSeriesStore, query: SeriesRequest, now_ms: int) -> list[ObjectValue]:
    source = EmbeddedSource(store, clock=lambda: now_ms, staleness_ms=STALENESS_MS)
    return source.evaluate(query, now_ms)


def summary_p95(store: TimeSeriesStore, pod: str, start_ms: int, end_ms: int) -> float | None:
    """The p95 from window summaries' increases, as the source computed it before."""
    counts: dict[float, float] = {}
    for series in store.select("latency_seconds_bucket", namespace="ns", pod=pod):
        summary = series.summary(start_ms, end_ms)
        if summary is not None:
            bound = float(series.labels["le"])
            counts[bound] = counts.get(bound, 0.0) + summary.increase
    return histogram_quantile(0.95, counts)


def summary_rate(store: TimeSeriesStore, pod: str, start_ms: int, end_ms: int) -> float | None:
    total = None
    for series in store.select("requests_total", namespace="ns", pod=pod):
        summary = series.summary(start_ms, end_ms)
        if summary is not None and summary.last_ms > summary.first_ms:
            rate = summary.increase * 1000.0 / (summary.last_ms - summary.first_ms)
            total = rate if total is None else total + rate
    return total


@pytest.mark.parametrize("seed", range(3))
def test_remembered_answers_equal_fresh_ones_as_samples_and_pods_come_and_go(seed: int) -> None:
    rng = random.Random(seed)
    cluster = Cluster(rng)
    for index in range(12):
        cluster.add_pod(f"web-{index}")
    now_ms = START_MS
    source = EmbeddedSource(cluster.store, clock=lambda: now_ms, staleness_ms=STALENESS_MS)
    names = frozenset(f"web-{index}" for index in range(14))
    queries = [
        request("latency_seconds", "p95", 300_000, names),
        request("latency_seconds", "rate", 60_000, names),
        request("latency_seconds", "avg", 300_000, names),
        request("requests_total", "rate", 300_000, names),
        request("requests_total", "sum", 120_000, names),
    ]
    hits = 0
    for step in range(160):
        stamp = START_MS + step * STEP_MS
        if step == 40:
            cluster.add_pod("web-12")  # a new pod: the groupings must be made again
        if step == 80:
            cluster.delete_pod("web-3")
        if 100 <= step < 110:
            scraping = dict(cluster.pods)
            cluster.pods.pop("web-5", None)  # web-5 stops reporting and turns stale
            cluster.scrape(stamp)
            cluster.pods = scraping
        else:
            cluster.scrape(stamp)
        for offset in sorted(rng.sample(range(STEP_MS), 3)):
            now_ms = stamp + offset
            for query in rng.sample(queries, 3):
                got = source.evaluate(query, now_ms)
                assert got == fresh_answer(cluster.store, query, now_ms)
                hits += 1
    # Every pod's p95 and rate from the summaries: the answers before the fast path.
    window_start = now_ms - 300_000
    p95 = {value.name: value.value for value in source.evaluate(queries[0], now_ms)}
    rates = {value.name: value.value for value in source.evaluate(queries[3], now_ms)}
    assert p95
    assert rates
    for pod, value in p95.items():
        assert value == pytest.approx(summary_p95(cluster.store, pod, window_start, now_ms))
    for pod, value in rates.items():
        assert value == pytest.approx(summary_rate(cluster.store, pod, window_start, now_ms))
    assert hits == 160 * 9


def test_an_answer_is_reused_only_while_its_samples_stay_in_the_window() -> None:
    cluster = Cluster(random.Random(5))
    cluster.rng = random.Random(5)
    cluster.add_pod("web-0")
    for step in range(30):
        cluster.scrape(START_MS + step * STEP_MS)
    last_ms = START_MS + 29 * STEP_MS
    query = request("requests_total", "rate", 60_000, frozenset({"web-0"}))
    source = EmbeddedSource(cluster.store, clock=lambda: last_ms, staleness_ms=STALENESS_MS)
    for now_ms in range(last_ms, last_ms + STALENESS_MS + 2 * STEP_MS, 1_000):
        assert source.evaluate(query, now_ms) == fresh_answer(cluster.store, query, now_ms)
    # Stale by now: absent, although an answer was remembered.
    assert source.evaluate(query, last_ms + STALENESS_MS + 1) == []


def test_a_pod_elsewhere_keeps_the_grouping_a_pod_in_the_namespace_renews_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Grouping is redone only when the request's namespace gains or loses a series.

    ``TimeSeriesStore.select`` is wrapped to count how often the source groups series.
    """
    cluster = Cluster(random.Random(11))
    for pod in ("web-0", "web-1"):
        cluster.add_pod(pod)
    for step in range(10):
        cluster.scrape(START_MS + step * STEP_MS)
    selects: list[str] = []
    original = TimeSeriesStore.select

    def counting(
        self: TimeSeriesStore,
        name: str,
        *matcher: Callable[[Mapping[str, str]], bool],
        **equals: str,
    ) -> list[Series]:
        selects.append(name)
        return original(self, name, *matcher, **equals)

    monkeypatch.setattr(TimeSeriesStore, "select", counting)
    query = request("latency_seconds", "p95", 60_000, frozenset({"web-0", "web-1", "web-2"}))
    now_ms = START_MS + 9 * STEP_MS
    source = EmbeddedSource(cluster.store, clock=lambda: now_ms, staleness_ms=STALENESS_MS)
    assert [value.name for value in source.evaluate(query, now_ms)] == ["web-0", "web-1"]
    assert selects

    # The same metric and pod name in another namespace: not part of the question.
    other = {"namespace": "other", "pod": "web-2", "le": "+Inf"}
    cluster.store.series("latency_seconds_bucket", other, SeriesKind.COUNTER).append(now_ms, 1.0)
    grouped = len(selects)
    answer = source.evaluate(query, now_ms + 1)
    assert len(selects) == grouped
    assert answer == fresh_answer(cluster.store, query, now_ms + 1)

    cluster.add_pod("web-2")
    for step in range(10, 14):
        cluster.scrape(START_MS + step * STEP_MS)
    now_ms = START_MS + 13 * STEP_MS
    grouped = len(selects)
    answer = source.evaluate(query, now_ms)
    assert len(selects) > grouped
    assert [value.name for value in answer] == ["web-0", "web-1", "web-2"]
    assert answer == fresh_answer(cluster.store, query, now_ms)

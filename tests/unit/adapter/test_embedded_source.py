"""EmbeddedSource over a real TimeSeriesStore filled with known samples.

Every expected value is worked out by hand in the comments next to it: rates from the
counters' increases, percentiles by histogram_quantile's interpolation, forecasts from
ramps whose sliding averages and rates lie exactly on a line.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Iterable, Mapping

import pytest

from adapter.sources.base import MetricDescriptor, MetricNotFoundError, MetricScope, MetricSource
from adapter.sources.embedded import EmbeddedSource, histogram_quantile
from kubepulse.metricquery import (
    ForecastModel,
    MetricKind,
    ObjectValue,
    Prediction,
    SeriesRequest,
    Statistic,
    StatisticError,
    parse_statistic,
)
from kubepulse.selector import parse_selector
from kubepulse.stats import SeriesKind
from kubepulse.store import TimeSeriesStore

NOW = 1_700_000_000_000
STEP = 15_000
MINUTE = 60_000
COUNTER = SeriesKind.COUNTER
GAUGE = SeriesKind.GAUGE
SKETCH_ACCURACY = 0.01


def fill(
    store: TimeSeriesStore,
    name: str,
    labels: Mapping[str, str],
    values: Iterable[float],
    kind: SeriesKind = GAUGE,
    *,
    last_ms: int = NOW,
) -> None:
    """Samples every 15 s, the last one at ``last_ms``."""
    points = list(values)
    for index, value in enumerate(points):
        timestamp = last_ms - (len(points) - 1 - index) * STEP
        assert store.append(name, labels, timestamp, value, kind)


def fill_histogram(
    store: TimeSeriesStore,
    name: str,
    labels: Mapping[str, str],
    final_counts: Mapping[str, float],
    final_sum: float,
    *,
    samples: int = 5,
) -> None:
    """Buckets growing linearly from 0 to ``final_counts`` over ``samples`` samples."""
    steps = samples - 1
    for le, final in final_counts.items():
        values = [final * index / steps for index in range(samples)]
        fill(store, name + "_bucket", {**labels, "le": le}, values, COUNTER)
    fill(store, name + "_sum", labels, [final_sum * i / steps for i in range(samples)], COUNTER)
    fill(
        store,
        name + "_count",
        labels,
        [final_counts["+Inf"] * i / steps for i in range(samples)],
        COUNTER,
    )


def source_of(store: TimeSeriesStore, **options: object) -> EmbeddedSource:
    return EmbeddedSource(store, clock=lambda: NOW, **options)  # type: ignore[arg-type]


def pods(
    metric: str,
    statistic: Statistic | None = None,
    *,
    names: Iterable[str] | None = None,
    merge: bool = False,
    namespace: str | None = "shop",
    selector: str = "",
) -> SeriesRequest:
    return SeriesRequest(
        metric,
        statistic or Statistic(),
        namespace=namespace,
        series_selector=parse_selector(selector),
        object_label="pod",
        object_names=None if names is None else frozenset(names),
        merge_objects=merge,
    )


def values_of(answer: list[ObjectValue]) -> dict[str, float]:
    return {value.name: value.value for value in answer}


def stat(**options: str) -> Statistic:
    return parse_statistic({f"kubepulse.io/{key}": value for key, value in options.items()})


# ---------------------------------------------------------------------- counters and gauges


@pytest.fixture
def store() -> TimeSeriesStore:
    return TimeSeriesStore()


def test_a_pods_counter_rate_is_the_sum_over_its_containers(store: TimeSeriesStore) -> None:
    # Five samples 15 s apart span the 1 m window: c1 rises 120 (2/s), c2 60 (1/s).
    fill(
        store,
        "cpu_seconds_total",
        {"namespace": "shop", "pod": "a", "container": "c1"},
        [0, 30, 60, 90, 120],
        COUNTER,
    )
    fill(
        store,
        "cpu_seconds_total",
        {"namespace": "shop", "pod": "a", "container": "c2"},
        [0, 15, 30, 45, 60],
        COUNTER,
    )
    fill(
        store,
        "cpu_seconds_total",
        {"namespace": "shop", "pod": "b", "container": "c1"},
        [0, 6, 12, 18, 24],
        COUNTER,
    )
    answer = source_of(store).evaluate(pods("cpu_seconds_total"), NOW)
    assert answer == [
        ObjectValue("a", NOW, 3.0, MINUTE),
        ObjectValue("b", NOW, 0.4, MINUTE),
    ]


def test_a_counter_reset_counts_the_new_value_as_the_increase(store: TimeSeriesStore) -> None:
    # Increases 30, 10 (restarted from 0 to 10), 30, 30: 100 over 60 s.
    fill(
        store, "requests_total", {"namespace": "shop", "pod": "a"}, [100, 130, 10, 40, 70], COUNTER
    )
    (value,) = source_of(store).evaluate(pods("requests_total"), NOW)
    assert value.value == pytest.approx(100 / 60, rel=1e-12)


@pytest.mark.parametrize(
    ("aggregation", "expected", "tolerance"),
    [
        ("avg", 4.0, 0.0),  # (1 + 5 + 3 + 9 + 2) / 5
        ("min", 1.0, 0.0),
        ("max", 9.0, 0.0),
        ("last", 2.0, 0.0),
        ("sum", 20.0, 0.0),
        ("rate", (2 - 1) / 60, 1e-12),  # (last - first) per second
        ("p50", 3.0, SKETCH_ACCURACY),  # sorted 1 2 3 5 9, lower rank floor(0.5 * 4) = 2
        ("p90", 5.0, SKETCH_ACCURACY),  # floor(0.9 * 4) = 3
    ],
)
def test_gauge_statistics(
    store: TimeSeriesStore, aggregation: str, expected: float, tolerance: float
) -> None:
    fill(store, "queue_depth", {"namespace": "shop", "pod": "a"}, [1, 5, 3, 9, 2])
    (value,) = source_of(store).evaluate(pods("queue_depth", stat(aggregation=aggregation)), NOW)
    assert value.value == pytest.approx(expected, rel=tolerance, abs=1e-12)


def test_a_gauge_averages_by_default_and_a_counter_rates(store: TimeSeriesStore) -> None:
    fill(store, "queue_depth", {"namespace": "shop", "pod": "a"}, [1, 5, 3, 9, 2])
    fill(store, "requests_total", {"namespace": "shop", "pod": "a"}, [0, 3, 6, 9, 12], COUNTER)
    source = source_of(store)
    assert values_of(source.evaluate(pods("queue_depth"), NOW)) == {"a": 4.0}
    assert values_of(source.evaluate(pods("requests_total"), NOW)) == {"a": 0.2}


def test_the_window_decides_which_samples_count(store: TimeSeriesStore) -> None:
    # Nine samples over 2 m: the 1 m window sees the last five (avg 7), 2 m all (avg 5).
    fill(store, "queue_depth", {"namespace": "shop", "pod": "a"}, [1, 2, 3, 4, 5, 6, 7, 8, 9])
    source = source_of(store)
    assert values_of(source.evaluate(pods("queue_depth"), NOW)) == {"a": 7.0}
    assert values_of(source.evaluate(pods("queue_depth", stat(window="2m")), NOW)) == {"a": 5.0}


def test_selection_by_namespace_object_names_and_series_labels(store: TimeSeriesStore) -> None:
    for namespace, pod, code, value in [
        ("shop", "a", "200", 1.0),
        ("shop", "a", "500", 10.0),
        ("shop", "b", "200", 2.0),
        ("shop", "c", "200", 3.0),
        ("other", "a", "200", 100.0),
    ]:
        fill(store, "inflight", {"namespace": namespace, "pod": pod, "code": code}, [value] * 5)
    source = source_of(store)
    assert values_of(source.evaluate(pods("inflight"), NOW)) == {"a": 11.0, "b": 2.0, "c": 3.0}
    assert values_of(source.evaluate(pods("inflight", names=["a", "c"]), NOW)) == {
        "a": 11.0,
        "c": 3.0,
    }
    assert values_of(source.evaluate(pods("inflight", names=["a"], selector="code=200"), NOW)) == {
        "a": 1.0
    }
    assert values_of(source.evaluate(pods("inflight", names=["a", "b"], merge=True), NOW)) == {
        "": 13.0
    }
    assert values_of(source.evaluate(pods("inflight", namespace="other"), NOW)) == {"a": 100.0}
    assert source.evaluate(pods("inflight", names=[]), NOW) == []
    everything = SeriesRequest("inflight", Statistic())
    assert values_of(source.evaluate(everything, NOW)) == {"": 116.0}


def test_nodes_and_namespaces_are_found_by_their_label(store: TimeSeriesStore) -> None:
    fill(store, "node_load", {"node": "n1"}, [1.0] * 5)
    fill(store, "node_load", {"node": "n2"}, [2.0] * 5)
    fill(store, "pod_memory", {"namespace": "shop", "pod": "a", "node": "n1"}, [5.0] * 5)
    fill(store, "pod_memory", {"namespace": "shop", "pod": "b", "node": "n1"}, [7.0] * 5)
    source = source_of(store)
    by_node = SeriesRequest("node_load", Statistic(), object_label="node")
    assert values_of(source.evaluate(by_node, NOW)) == {"n1": 1.0, "n2": 2.0}
    per_namespace = SeriesRequest(
        "pod_memory", Statistic(), object_label="namespace", object_names=frozenset({"shop"})
    )
    assert values_of(source.evaluate(per_namespace, NOW)) == {"shop": 12.0}
    pods_per_node = SeriesRequest("pod_memory", Statistic(), object_label="node")
    assert values_of(source.evaluate(pods_per_node, NOW)) == {"n1": 12.0}


# ---------------------------------------------------------------------- staleness


def test_stale_objects_are_absent_not_zero(store: TimeSeriesStore) -> None:
    fill(store, "queue_depth", {"namespace": "shop", "pod": "fresh"}, [4.0] * 5)
    # Its samples lie in a 5 m window, but the newest is 61 s old.
    fill(
        store, "queue_depth", {"namespace": "shop", "pod": "stale"}, [4.0] * 5, last_ms=NOW - 61_000
    )
    # The target said the series is gone: Prometheus' staleness marker.
    fill(store, "queue_depth", {"namespace": "shop", "pod": "gone"}, [4.0, 4.0, 4.0, math.nan])
    source = source_of(store, staleness_ms=60_000)
    answer = source.evaluate(pods("queue_depth", stat(window="5m")), NOW)
    assert values_of(answer) == {"fresh": 4.0}
    assert source.staleness_ms == 60_000
    lenient = source_of(store, staleness_ms=120_000)
    assert values_of(lenient.evaluate(pods("queue_depth", stat(window="5m")), NOW)) == {
        "fresh": 4.0,
        "stale": 4.0,
    }


def test_the_timestamp_is_the_newest_fresh_sample(store: TimeSeriesStore) -> None:
    fill(
        store,
        "queue_depth",
        {"namespace": "shop", "pod": "a", "c": "1"},
        [1.0] * 5,
        last_ms=NOW - 20_000,
    )
    fill(
        store,
        "queue_depth",
        {"namespace": "shop", "pod": "a", "c": "2"},
        [1.0] * 5,
        last_ms=NOW - 5_000,
    )
    (value,) = source_of(store).evaluate(pods("queue_depth"), NOW)
    assert value.timestamp_ms == NOW - 5_000


def test_a_statistic_without_a_value_leaves_the_object_out(store: TimeSeriesStore) -> None:
    # One counter sample in the window has no interval to take a rate over.
    fill(store, "requests_total", {"namespace": "shop", "pod": "a"}, [5.0], COUNTER)
    fill(store, "requests_total", {"namespace": "shop", "pod": "b"}, [0, 15, 30, 45, 60], COUNTER)
    assert values_of(source_of(store).evaluate(pods("requests_total"), NOW)) == {"b": 1.0}


def test_an_unknown_metric_is_metric_not_found(store: TimeSeriesStore) -> None:
    fill(store, "queue_depth", {"namespace": "shop", "pod": "a"}, [1.0] * 5)
    with pytest.raises(MetricNotFoundError, match="'nope'") as caught:
        source_of(store).evaluate(pods("nope"), NOW)
    assert caught.value.metric == "nope"


# ---------------------------------------------------------------------- histograms

A_BUCKETS = {"0.1": 40.0, "0.25": 70.0, "0.5": 90.0, "+Inf": 100.0}
B_BUCKETS = {"0.1": 0.0, "0.25": 10.0, "0.5": 50.0, "+Inf": 100.0}


@pytest.fixture
def histograms(store: TimeSeriesStore) -> TimeSeriesStore:
    fill_histogram(store, "latency_seconds", {"namespace": "shop", "pod": "a"}, A_BUCKETS, 20.0)
    fill_histogram(store, "latency_seconds", {"namespace": "shop", "pod": "b"}, B_BUCKETS, 30.0)
    return store


@pytest.mark.parametrize(
    ("aggregation", "expected_a", "expected_b"),
    [
        # a: rank 50 in (0.1, 0.25] holding 30 from 40: 0.1 + 0.15 * 10 / 30.
        # b: rank 50 reaches the 0.5 bucket exactly: 0.25 + 0.25 * 40 / 40.
        ("p50", 0.15, 0.5),
        # a: rank 25 in the first bucket, interpolated from 0: 0.1 * 25 / 40.
        # b: rank 25 in (0.25, 0.5], 40 above 10: 0.25 + 0.25 * 15 / 40.
        ("p25", 0.0625, 0.25 + 0.25 * 15 / 40),
        # a: rank 90 ends the 0.5 bucket; b: rank 90 in (0.5, +Inf]: the highest finite bound.
        ("p90", 0.5, 0.5),
        ("p95", 0.5, 0.5),
        ("avg", 20.0 / 100, 30.0 / 100),  # _sum increase over the observations
        ("rate", 100 / 60, 100 / 60),  # observations per second
        ("sum", 20.0, 30.0),  # _sum increase
    ],
)
def test_histogram_statistics_per_pod(
    histograms: TimeSeriesStore, aggregation: str, expected_a: float, expected_b: float
) -> None:
    answer = source_of(histograms).evaluate(
        pods("latency_seconds", stat(aggregation=aggregation)), NOW
    )
    assert values_of(answer) == {
        "a": pytest.approx(expected_a, rel=1e-12),
        "b": pytest.approx(expected_b, rel=1e-12),
    }


def test_a_histogram_is_a_p95_by_default(histograms: TimeSeriesStore) -> None:
    # a: rank 95 in (0.5, +Inf]; b too: both give the highest finite bound.
    assert values_of(source_of(histograms).evaluate(pods("latency_seconds"), NOW)) == {
        "a": 0.5,
        "b": 0.5,
    }


def test_a_workloads_percentile_is_taken_over_all_its_pods_buckets(
    histograms: TimeSeriesStore,
) -> None:
    # Summed per le: 40, 80, 140, 200. Rank 100 lies in (0.25, 0.5], which holds 60 above
    # 80: 0.25 + 0.25 * 20 / 60. Not the mean of the pods' medians (0.325).
    request = pods("latency_seconds", stat(aggregation="p50"), names=["a", "b"], merge=True)
    (value,) = source_of(histograms).evaluate(request, NOW)
    assert value.name == ""
    assert value.value == pytest.approx(0.25 + 0.25 * 20 / 60, rel=1e-12)


@pytest.mark.parametrize("aggregation", ["min", "max", "last"])
def test_a_histogram_refuses_what_buckets_cannot_answer(
    histograms: TimeSeriesStore, aggregation: str
) -> None:
    with pytest.raises(StatisticError, match="histogram"):
        source_of(histograms).evaluate(pods("latency_seconds", stat(aggregation=aggregation)), NOW)


def test_a_histogram_selector_cannot_filter_buckets(histograms: TimeSeriesStore) -> None:
    with pytest.raises(StatisticError, match="'le'"):
        source_of(histograms).evaluate(pods("latency_seconds", selector="le=0.5"), NOW)


def test_a_histogram_without_observations_in_the_window_is_absent(store: TimeSeriesStore) -> None:
    for le in ("0.1", "+Inf"):
        fill(
            store,
            "latency_seconds_bucket",
            {"namespace": "shop", "pod": "idle", "le": le},
            [7.0] * 5,
            COUNTER,
        )
    assert source_of(store).evaluate(pods("latency_seconds"), NOW) == []


@pytest.mark.parametrize(
    ("quantile", "buckets", "expected"),
    [
        (0.5, {0.1: 40.0, 0.25: 70.0, 0.5: 90.0, math.inf: 100.0}, 0.15),
        (0.0, {1.0: 10.0, math.inf: 10.0}, 0.0),
        (1.0, {1.0: 10.0, 2.0: 20.0, math.inf: 20.0}, 2.0),
        (0.99, {1.0: 10.0, math.inf: 20.0}, 1.0),  # in +Inf: the highest finite bound
        (0.5, {-1.0: 5.0, 1.0: 10.0, math.inf: 10.0}, -1.0),  # first bound not positive
        (0.75, {1.0: 10.0, 2.0: 8.0, 4.0: 20.0, math.inf: 20.0}, 3.0),  # made monotonic
        (0.5, {1.0: 10.0, 2.0: 20.0}, None),  # no +Inf bucket
        (0.5, {math.inf: 10.0}, None),  # fewer than two buckets
        (0.5, {1.0: 0.0, math.inf: 0.0}, None),  # no observations
    ],
)
def test_histogram_quantile_follows_prometheus(
    quantile: float, buckets: dict[float, float], expected: float | None
) -> None:
    result = histogram_quantile(quantile, buckets)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------------- forecasts


def linear_gauge(store: TimeSeriesStore) -> None:
    # 10, 11, ... 30 every 15 s over the last 5 minutes: +1 per 15 s.
    fill(store, "queue_depth", {"namespace": "shop", "pod": "a"}, [10.0 + k for k in range(21)])


@pytest.mark.parametrize("model", [ForecastModel.LINEAR, ForecastModel.HOLT])
def test_a_forecast_extends_the_trend_to_now_plus_the_horizon(
    store: TimeSeriesStore, model: ForecastModel
) -> None:
    # Sliding averages of a line, stamped at their middle, lie on the line; two minutes
    # past the last sample (30) are eight more steps: 38.
    linear_gauge(store)
    statistic = Statistic(5 * MINUTE, prediction=Prediction(2 * MINUTE, model))
    (value,) = source_of(store).evaluate(pods("queue_depth", statistic), NOW)
    assert value.value == pytest.approx(38.0, rel=1e-9)
    assert value.window_ms == 5 * MINUTE
    plain = source_of(store).evaluate(pods("queue_depth", Statistic(5 * MINUTE)), NOW)
    assert plain[0].value == pytest.approx(20.0)  # the average of 10 ... 30


def test_a_falling_forecast_of_a_never_negative_quantity_stops_at_zero(
    store: TimeSeriesStore,
) -> None:
    # 30, 29, ... 10: the line reaches 10 - 8 = 2 in two minutes and -10 in five.
    fill(store, "queue_depth", {"namespace": "shop", "pod": "a"}, [30.0 - k for k in range(21)])
    near = Statistic(5 * MINUTE, prediction=Prediction(2 * MINUTE))
    far = Statistic(5 * MINUTE, prediction=Prediction(5 * MINUTE))
    assert source_of(store).evaluate(pods("queue_depth", near), NOW)[0].value == pytest.approx(2.0)
    assert source_of(store).evaluate(pods("queue_depth", far), NOW)[0].value == 0.0


def test_a_gauge_seen_negative_may_be_forecast_below_zero(store: TimeSeriesStore) -> None:
    fill(store, "balance", {"namespace": "shop", "pod": "a"}, [0.0 - k for k in range(21)])
    far = Statistic(5 * MINUTE, prediction=Prediction(5 * MINUTE))
    assert source_of(store).evaluate(pods("balance", far), NOW)[0].value == pytest.approx(-40.0)


def test_a_counters_rate_is_forecast(store: TimeSeriesStore) -> None:
    # Counter k² at step k: the rate over steps k1..k2 is (k1 + k2) / 15 per second, the
    # rate at their middle. One minute past step 20 is step 24: 2 * 24 / 15 = 3.2/s.
    fill(
        store,
        "requests_total",
        {"namespace": "shop", "pod": "a"},
        [float(k * k) for k in range(21)],
        COUNTER,
    )
    statistic = Statistic(5 * MINUTE, prediction=Prediction(MINUTE))
    (value,) = source_of(store).evaluate(pods("requests_total", statistic), NOW)
    assert value.value == pytest.approx(3.2, rel=1e-9)


def test_a_histogram_percentile_is_forecast_from_per_step_percentiles(
    store: TimeSeriesStore,
) -> None:
    # Buckets grow in fixed proportions, so every step's p50 is 0.15: so is the forecast.
    fill_histogram(
        store, "latency_seconds", {"namespace": "shop", "pod": "a"}, A_BUCKETS, 20.0, samples=21
    )
    p50 = stat(aggregation="p50").aggregation
    statistic = Statistic(5 * MINUTE, p50, Prediction(MINUTE, ForecastModel.HOLT))
    (value,) = source_of(store).evaluate(pods("latency_seconds", statistic), NOW)
    assert value.value == pytest.approx(0.15, rel=1e-9)


def test_a_forecast_without_enough_points_is_absent(store: TimeSeriesStore) -> None:
    # Two samples give one 30 s point at most: Holt needs three.
    fill(store, "queue_depth", {"namespace": "shop", "pod": "a"}, [1.0, 2.0])
    statistic = Statistic(MINUTE, prediction=Prediction(MINUTE, ForecastModel.HOLT))
    assert source_of(store).evaluate(pods("queue_depth", statistic), NOW) == []


# ---------------------------------------------------------------------- discovery


def test_metrics_lists_fresh_metrics_with_kind_and_scopes(
    histograms: TimeSeriesStore,
) -> None:
    fill(histograms, "node_load", {"node": "n1"}, [1.0] * 5)
    fill(histograms, "cluster_up", {}, [1.0] * 5)
    fill(
        histograms,
        "old_metric",
        {"namespace": "shop", "pod": "a"},
        [1.0] * 5,
        last_ms=NOW - 10 * MINUTE,
    )
    listed = asyncio.run(source_of(histograms).metrics())
    pod_scopes = frozenset({MetricScope.POD, MetricScope.NAMESPACE})
    assert listed == [
        MetricDescriptor("cluster_up", MetricKind.GAUGE, frozenset({MetricScope.EXTERNAL})),
        MetricDescriptor("latency_seconds", MetricKind.HISTOGRAM, pod_scopes),
        MetricDescriptor("latency_seconds_count", MetricKind.COUNTER, pod_scopes),
        MetricDescriptor("latency_seconds_sum", MetricKind.COUNTER, pod_scopes),
        MetricDescriptor("node_load", MetricKind.GAUGE, frozenset({MetricScope.NODE})),
    ]


def test_metrics_are_listed_again_after_the_cache_time(store: TimeSeriesStore) -> None:
    now = [NOW]
    source = EmbeddedSource(store, clock=lambda: now[0], discovery_ttl_ms=10_000)
    assert source.list_metrics() == []
    fill(store, "queue_depth", {"namespace": "shop", "pod": "a"}, [1.0] * 5)
    assert source.list_metrics() == []  # the cached answer
    now[0] += 10_000
    assert [metric.name for metric in source.list_metrics()] == ["queue_depth"]


# ---------------------------------------------------------------------- protocol and threads


def test_the_source_implements_the_protocol(store: TimeSeriesStore) -> None:
    fill(store, "queue_depth", {"namespace": "shop", "pod": "a"}, [1.0] * 5)
    source = source_of(store)
    assert isinstance(source, MetricSource)
    assert asyncio.run(source.query(pods("queue_depth"), NOW)) == [
        ObjectValue("a", NOW, 1.0, MINUTE)
    ]
    assert asyncio.run(source.ready()) is True
    flag = [False]
    gated = source_of(store, ready=lambda: flag[0])
    assert asyncio.run(gated.ready()) is False
    flag[0] = True
    assert asyncio.run(gated.ready()) is True


def test_a_query_waits_while_the_scraper_holds_the_lock(store: TimeSeriesStore) -> None:
    fill(store, "queue_depth", {"namespace": "shop", "pod": "a"}, [1.0] * 5)
    source = source_of(store)
    answers: list[list[ObjectValue]] = []
    with source.lock:
        worker = threading.Thread(
            target=lambda: answers.append(source.evaluate(pods("queue_depth"), NOW))
        )
        worker.start()
        worker.join(0.2)
        assert worker.is_alive(), "the query did not wait for the lock"
        assert answers == []
    worker.join(5)
    assert answers == [[ObjectValue("a", NOW, 1.0, MINUTE)]]


def test_a_shared_lock_is_used(store: TimeSeriesStore) -> None:
    shared = threading.Lock()
    assert source_of(store, lock=shared).lock is shared


def test_queries_and_a_writer_taking_the_lock_run_side_by_side(store: TimeSeriesStore) -> None:
    source = source_of(store, staleness_ms=10 * MINUTE)
    labels = [{"namespace": "shop", "pod": f"p{index}"} for index in range(50)]
    stop = threading.Event()
    errors: list[BaseException] = []

    start_ms = NOW - 6 * MINUTE

    def write() -> None:
        timestamp = NOW - 5 * MINUTE
        try:
            while not stop.is_set() and timestamp <= NOW:
                with source.lock:
                    for pod_labels in labels:
                        seconds = (timestamp - start_ms) / 1000
                        source.store.append(
                            "requests_total", pod_labels, timestamp, seconds, COUNTER
                        )
                    source.store.compact(timestamp)
                timestamp += STEP
                time.sleep(0)
        except BaseException as error:  # reported below
            errors.append(error)

    writer = threading.Thread(target=write)
    with source.lock:
        for pod_labels in labels:
            source.store.append("requests_total", pod_labels, start_ms, 0.0, COUNTER)
    writer.start()
    try:
        for _ in range(30):
            answer = source.evaluate(pods("requests_total", stat(window="10m")), NOW)
            # Every pod's counter rises 1 per second of its timestamps, whatever was written.
            assert all(value.value == pytest.approx(1.0, rel=1e-9) for value in answer)
            source.list_metrics()
    finally:
        stop.set()
        writer.join(10)
    assert not errors

"""PrometheusSource against recorded answers of a real Prometheus, replayed without a network.

``tests/fixtures/prometheus/recorded.json`` holds what Debian's Prometheus 2.42 answered
to the queries the source sent (``python -m tests.fixtures.prometheus.record`` records
it: two ``examples/instrumented_app.py`` pods at 20 and 10 requests/s, scraped every
second). An :class:`httpx.MockTransport` replays it: the network is what cannot be had
in a unit test, and the recording keeps the answers' shapes real. Failures a healthy
Prometheus does not produce on demand (5xx, timeouts, refused connections, non-JSON
bodies) are made up in the transport; the ``bad_data`` answer is a recorded one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from adapter.sources.base import MetricNotFoundError, MetricSource, SourceUnavailableError
from adapter.sources.embedded import histogram_quantile
from adapter.sources.prometheus import PrometheusSource
from adapter.sources.promql import NEWEST_PART, PART_LABEL, plan_query
from kubepulse.metricquery import MetricKind, SeriesRequest, parse_statistic
from kubepulse.selector import parse_selector
from tests.fixtures.prometheus.record import QUESTIONS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "prometheus"
RECORDED = json.loads((FIXTURES / "recorded.json").read_text())
STOPPED = json.loads((FIXTURES / "stopped.json").read_text())
NOW_MS: int = RECORDED["now_ms"]
URL = "http://prometheus.test:9090"
Handler = Callable[[httpx.Request], httpx.Response]


def parameters_of(request: httpx.Request) -> dict[str, str]:
    parameters = dict(parse_qsl(request.url.query.decode()))
    if request.method == "POST":
        parameters.update(parse_qsl(request.content.decode()))
    return parameters


class Replay:
    """Answers each request with the recorded exchange for its path and query."""

    def __init__(self, exchanges: list[dict[str, Any]]) -> None:
        self.answers = {
            (exchange["path"], exchange["parameters"].get("query", "")): exchange
            for exchange in exchanges
        }
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.overrides: dict[str, Handler] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        parameters = parameters_of(request)
        query = parameters.get("query", "")
        self.seen.append((request.method, request.url.path, parameters))
        override = self.overrides.get(request.url.path)
        if override is not None:
            return override(request)
        exchange = self.answers.get((request.url.path, query))
        if exchange is None:
            return httpx.Response(500, text=f"not recorded: {request.url.path} {query}")
        return httpx.Response(exchange["status"], json=exchange["body"])

    def queries(self) -> list[str]:
        return [parameters.get("query", "") for _, _, parameters in self.seen]


def source_with(handler: Handler, **options: Any) -> PrometheusSource:
    settings: dict[str, Any] = {"timeout_ms": 2_000, "staleness_ms": 10_000, "resolution_ms": 1_000}
    settings.update(options)
    return PrometheusSource(URL, transport=httpx.MockTransport(handler), **settings)


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


async def ask(source: PrometheusSource, request: SeriesRequest, now_ms: int = NOW_MS) -> Any:
    try:
        return {value.name: value.value for value in await source.query(request, now_ms)}
    finally:
        await source.aclose()


def recorded_result(query: str) -> list[dict[str, Any]]:
    for exchange in RECORDED["exchanges"]:
        if exchange["parameters"].get("query") == query:
            result: list[dict[str, Any]] = exchange["body"]["data"]["result"]
            return result
    raise AssertionError(f"not recorded: {query}")


def with_statistic(request: SeriesRequest, **changes: Any) -> SeriesRequest:
    return dataclasses.replace(request, **changes)


def recorded_part(request: SeriesRequest, kind: MetricKind, tag: str) -> list[dict[str, Any]]:
    """The rows of one part of the recorded answer to ``request``'s one query (30 s window)."""
    query = plan_query(request, kind, 30_000).request_query
    return [row for row in recorded_result(query) if row["metric"].get(PART_LABEL) == tag]


def data_queries(replay: Replay) -> list[str]:
    """The queries sent for data: neither metric names, metadata nor discovery."""
    return [
        parameters.get("query", "")
        for _, path, parameters in replay.seen
        if path in {"/api/v1/query", "/api/v1/query_range"}
    ]


# ---------------------------------------------------------------------- answers


def test_is_a_metric_source() -> None:
    source = source_with(Replay([]))
    assert isinstance(source, MetricSource)
    run(source.aclose())


@pytest.mark.parametrize("question", sorted(QUESTIONS))
def test_recorded_answers_replay(question: str) -> None:
    replay = Replay(RECORDED["exchanges"])
    answer = run(ask(source_with(replay), QUESTIONS[question]))
    assert answer == pytest.approx(RECORDED["answers"][question], rel=1e-12)
    # Every answer has both pods (merged for a Deployment): the load kept them busy and fresh.
    assert set(answer) == ({""} if QUESTIONS[question].merge_objects else {"web-0", "web-1"})


@pytest.mark.parametrize("question", sorted(QUESTIONS))
def test_every_answer_costs_prometheus_one_query(question: str) -> None:
    replay = Replay(RECORDED["exchanges"])
    run(ask(source_with(replay), QUESTIONS[question]))
    assert len(data_queries(replay)) == 1


def test_one_pods_percentile_is_prometheus_histogram_quantile() -> None:
    """Pushed down, per pod: equal to interpolating the same (pod, le) bucket increases here."""
    merged = with_statistic(QUESTIONS["p95"], merge_objects=True)
    buckets: dict[str, dict[float, float]] = {}
    for row in recorded_part(merged, MetricKind.HISTOGRAM, "0"):
        per_pod = buckets.setdefault(row["metric"]["pod"], {})
        per_pod[float(row["metric"]["le"])] = float(row["value"][1])
    expected = {pod: histogram_quantile(0.95, counts) for pod, counts in buckets.items()}
    replay = Replay(RECORDED["exchanges"])
    answer = run(ask(source_with(replay), QUESTIONS["p95"]))
    assert answer == pytest.approx(expected, rel=1e-9)
    assert data_queries(replay)[0].startswith("label_replace(histogram_quantile(0.95, ")


def test_one_pods_mean_is_computed_by_prometheus() -> None:
    merged = with_statistic(QUESTIONS["histogram_avg"], merge_objects=True)
    sums = recorded_part(merged, MetricKind.HISTOGRAM, "0")
    counts = {
        row["metric"]["pod"]: float(row["value"][1])
        for row in recorded_part(merged, MetricKind.HISTOGRAM, "1")
    }
    expected = {
        row["metric"]["pod"]: float(row["value"][1]) / counts[row["metric"]["pod"]] for row in sums
    }
    answer = run(ask(source_with(Replay(RECORDED["exchanges"])), QUESTIONS["histogram_avg"]))
    assert answer == pytest.approx(expected, rel=1e-9)


def test_rates_are_the_load_generators_rates() -> None:
    answer = run(ask(source_with(Replay(RECORDED["exchanges"])), QUESTIONS["rate"]))
    assert answer == pytest.approx({"web-0": 20.0, "web-1": 10.0}, rel=0.02)


def test_counter_sum_is_the_increase_of_the_raw_samples() -> None:
    """Not Prometheus' extrapolated increase(): the sampled increase, as the embedded source."""
    expected = {}
    for series in recorded_result('http_requests_total{namespace="shop"}[30s]'):
        values = [float(value) for _, value in series["values"]]
        expected[series["metric"]["pod"]] = values[-1] - values[0]  # no resets here
    answer = run(ask(source_with(Replay(RECORDED["exchanges"])), QUESTIONS["counter_sum"]))
    assert answer == pytest.approx(expected, rel=1e-12)


def test_deployment_merges_histogram_buckets_before_the_percentile() -> None:
    deployment = with_statistic(QUESTIONS["p95"], merge_objects=True)
    merged: dict[float, float] = {}
    for row in recorded_part(deployment, MetricKind.HISTOGRAM, "0"):
        bound = float(row["metric"]["le"])
        merged[bound] = merged.get(bound, 0.0) + float(row["value"][1])
    expected = histogram_quantile(0.95, merged)
    assert expected is not None
    replay = Replay(RECORDED["exchanges"])
    answer = run(ask(source_with(replay), deployment))
    assert answer == {"": pytest.approx(expected, rel=1e-12)}
    # The pods were not named in the query: grouped by pod, merged here.
    assert all("web-" not in query for query in replay.queries())


def test_deployment_merges_values_and_averages() -> None:
    replay = Replay(RECORDED["exchanges"])
    rates = RECORDED["answers"]["rate"]
    merged = run(ask(source_with(replay), with_statistic(QUESTIONS["rate"], merge_objects=True)))
    assert merged == {"": pytest.approx(rates["web-0"] + rates["web-1"], rel=1e-12)}
    average = with_statistic(QUESTIONS["histogram_avg"], merge_objects=True)
    sums = recorded_part(average, MetricKind.HISTOGRAM, "0")
    counts = recorded_part(average, MetricKind.HISTOGRAM, "1")
    expected = sum(float(row["value"][1]) for row in sums) / sum(
        float(row["value"][1]) for row in counts
    )
    assert run(ask(source_with(replay), average)) == {"": pytest.approx(expected, rel=1e-12)}


def test_only_the_requested_objects_are_answered() -> None:
    one = with_statistic(QUESTIONS["rate"], object_names=frozenset({"web-1"}))
    replay = Replay(RECORDED["exchanges"])
    replay.overrides["/api/v1/query"] = lambda request: httpx.Response(
        200,
        json=replay.answers[
            ("/api/v1/query", parameters_of(request)["query"].replace(', pod="web-1"', ""))
        ]["body"],
    )
    answer = run(ask(source_with(replay), one))
    assert answer == {"web-1": pytest.approx(RECORDED["answers"]["rate"]["web-1"])}
    assert all('pod="web-1"' in query for query in replay.queries() if "shop" in query)


# ---------------------------------------------------------------------- staleness


def test_objects_with_old_samples_are_absent_not_zero() -> None:
    replay = Replay(RECORDED["exchanges"])
    # The same answers read 20 s later: the newest samples are 20 s old, the limit 10 s.
    assert run(ask(source_with(replay), QUESTIONS["rate"], NOW_MS + 20_000)) == {}
    relaxed = source_with(Replay(RECORDED["exchanges"]), staleness_ms=30_000)
    assert set(run(ask(relaxed, QUESTIONS["rate"], NOW_MS + 20_000))) == {"web-0", "web-1"}


def test_raw_sample_statistics_read_freshness_from_the_samples() -> None:
    """No freshness part: each pod's newest sample in the window is its answer's timestamp."""
    newest = {
        series["metric"]["pod"]: max(round(float(stamp) * 1000) for stamp, _ in series["values"])
        for series in recorded_result('http_requests_total{namespace="shop"}[30s]')
    }

    async def query(now_ms: int) -> dict[str, int]:
        source = source_with(Replay(RECORDED["exchanges"]))
        try:
            answer = await source.query(QUESTIONS["counter_sum"], now_ms)
            return {value.name: value.timestamp_ms for value in answer}
        finally:
            await source.aclose()

    assert run(query(NOW_MS)) == newest
    # Read 20 s later, the newest samples are older than the 10 s limit.
    assert run(query(NOW_MS + 20_000)) == {}


def test_a_stopped_pod_is_absent() -> None:
    """After web-1 stopped, Prometheus marked its series stale: only web-0 is answered."""
    replay = Replay(RECORDED["exchanges"])
    replay.answers[("/api/v1/query", STOPPED["query"])] = {"status": 200, "body": STOPPED["body"]}
    answer = run(ask(source_with(replay), QUESTIONS["rate"], STOPPED["now_ms"]))
    assert set(answer) == {"web-0"}


def test_answer_timestamps_are_the_newest_samples() -> None:
    newest = {
        row["metric"]["pod"]: round(float(row["value"][1]) * 1000)
        for row in recorded_part(QUESTIONS["rate"], MetricKind.COUNTER, NEWEST_PART)
    }
    assert set(newest) == {"web-0", "web-1"}

    async def query() -> dict[str, int]:
        source = source_with(Replay(RECORDED["exchanges"]))
        try:
            return {v.name: v.timestamp_ms for v in await source.query(QUESTIONS["rate"], NOW_MS)}
        finally:
            await source.aclose()

    assert run(query()) == newest


# ---------------------------------------------------------------------- forecasts


def test_forecast_is_one_range_query_at_the_embedded_step() -> None:
    replay = Replay(RECORDED["exchanges"])
    answer = run(ask(source_with(replay), QUESTIONS["forecast_linear"]))
    # A steady load: the rates are flat and so is the forecast.
    assert answer == pytest.approx({"web-0": 20.0, "web-1": 10.0}, rel=0.02)
    ((_, _path, parameters),) = [seen for seen in replay.seen if seen[1].endswith("query_range")]
    # 30 s window at a 1 s resolution: step 1 s, lookback 2 s, points from now - 28 s.
    assert parameters["step"] == "1.000"
    assert parameters["end"] == f"{NOW_MS // 1000}.{NOW_MS % 1000:03d}"
    start_ms = NOW_MS - 28_000
    assert parameters["start"] == f"{start_ms // 1000}.{start_ms % 1000:03d}"
    rate = 'sum by (pod) (rate(http_requests_total{namespace="shop"}[2s]))'
    freshness = 'max by (pod) (timestamp(http_requests_total{namespace="shop"}))'
    assert parameters["query"] == (
        f'label_replace({rate}, "kubepulse_part", "0", "", "") or '
        f'label_replace({freshness}, "kubepulse_part", "newest", "", "")'
    )
    # The freshness is the range's last point: no other query was sent.
    assert len(data_queries(replay)) == 1


def ramp_handler(slope_per_s: float, lookback_ms: int, fresh_at_end: bool = True) -> Handler:
    """A range answer whose points lie on a line in time, stamped at their lookback's middle.

    The rate over [t - lookback, t] of a counter whose rate grows linearly is the rate at
    t - lookback / 2, so the forecast of the rate at now + h is the line at now + h. The
    freshness part has a sample at every step (but the last unless ``fresh_at_end``).
    """
    names = json.dumps({"status": "success", "data": ["http_requests_total"]})

    def handle(request: httpx.Request) -> httpx.Response:
        parameters = parameters_of(request)
        if request.url.path.endswith("/values"):
            return httpx.Response(200, content=names)
        if request.url.path.endswith("/metadata"):
            return httpx.Response(200, json={"status": "success", "data": {}})
        if request.url.path.endswith("query_range"):
            start = float(parameters["start"])
            end = float(parameters["end"])
            step = float(parameters["step"])
            points = []
            newest = []
            stamp = start
            while stamp <= end + 1e-9:
                middle = stamp - lookback_ms / 2000.0
                points.append([round(stamp, 3), repr(5.0 + slope_per_s * (middle - start))])
                newest.append([round(stamp, 3), repr(round(stamp, 3))])
                stamp += step
            if not fresh_at_end:
                newest = newest[:-1]
            result = [
                {"metric": {"pod": "web-0", "kubepulse_part": "0"}, "values": points},
                {"metric": {"pod": "web-0", "kubepulse_part": "newest"}, "values": newest},
            ]
            return httpx.Response(
                200, json={"status": "success", "data": {"resultType": "matrix", "result": result}}
            )
        return httpx.Response(500, text="the forecast sends one range query only")

    return handle


@pytest.mark.parametrize("model", ["linear", "holt"])
def test_forecast_follows_a_trend(model: str) -> None:
    statistic = parse_statistic(
        {"kubepulse.io/predict": "2m", "kubepulse.io/model": model, "kubepulse.io/window": "10m"}
    )
    request = SeriesRequest("http_requests_total", statistic, namespace="shop", object_label="pod")
    source = source_with(ramp_handler(0.01, 30_000), resolution_ms=15_000)
    answer = run(ask(source, request))
    # 10 m window at a 15 s resolution: step 15 s, lookback 30 s, points ending at
    # now - 570 s ... now. The handler's line is 5.0 at the first point's end, rising
    # 0.01 per second; the forecast is that line at now + 120 s.
    start_s = (NOW_MS - 570_000) / 1000.0
    target_s = NOW_MS / 1000.0 + 120.0
    expected = 5.0 + 0.01 * (target_s - start_s)
    assert answer == {"web-0": pytest.approx(expected, rel=1e-6)}


def test_a_forecast_of_an_object_gone_by_now_is_absent() -> None:
    """The freshness part's last point is the newest sample at now; without it, no answer."""
    statistic = parse_statistic({"kubepulse.io/predict": "2m", "kubepulse.io/window": "10m"})
    request = SeriesRequest("http_requests_total", statistic, namespace="shop", object_label="pod")
    # Its newest sample, one step before now, is within the staleness limit: only the
    # missing last point makes it absent.
    gone = ramp_handler(0.01, 30_000, fresh_at_end=False)
    assert run(ask(source_with(gone, resolution_ms=15_000, staleness_ms=60_000), request)) == {}
    fresh = ramp_handler(0.01, 30_000)
    assert set(
        run(ask(source_with(fresh, resolution_ms=15_000, staleness_ms=60_000), request))
    ) == {"web-0"}


def test_forecast_of_raw_sample_statistics_slides_over_the_window() -> None:
    """Counter ``sum`` over 2 s points from the window's raw samples (one instant query)."""
    replay = Replay(RECORDED["exchanges"])
    answer = run(ask(source_with(replay), QUESTIONS["forecast_sum"]))
    # One sample a second at 20 and 10 requests/s: each 2 s point holds 2 samples 1 s apart.
    assert answer == pytest.approx({"web-0": 20.0, "web-1": 10.0}, rel=0.05)
    assert not any(path.endswith("query_range") for _, path, _ in replay.seen)


# ---------------------------------------------------------------------- transport


def test_short_queries_go_by_get_and_long_ones_by_post() -> None:
    replay = Replay(RECORDED["exchanges"])
    run(ask(source_with(replay), QUESTIONS["rate"]))
    assert {method for method, _, _ in replay.seen} == {"GET"}
    long = Replay(RECORDED["exchanges"])
    answer = run(ask(source_with(long), QUESTIONS["long_selector"]))
    assert answer == pytest.approx(RECORDED["answers"]["long_selector"])
    # The rule is on the encoded parameters: '|' alone takes three bytes.
    posted = [parameters for method, _, parameters in long.seen if method == "POST"]
    assert len(posted) == 1
    assert all(len(urlencode(sent)) > 2_000 for sent in posted)
    assert all(len(urlencode(sent)) <= 2_000 for method, _, sent in long.seen if method == "GET")


def failing(response: Handler) -> Replay:
    replay = Replay(RECORDED["exchanges"])
    replay.overrides["/api/v1/query"] = response
    return replay


def raises(error: Exception) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        raise error

    return handle


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (lambda request: httpx.Response(503, text="Service Unavailable"), "HTTP 503"),
        (lambda request: httpx.Response(502, text="<html>bad gateway</html>"), "HTTP 502"),
        (lambda request: httpx.Response(200, text="not json"), "without a Prometheus API answer"),
        (
            lambda request: httpx.Response(
                422,
                json={"status": "error", "errorType": "execution", "error": "too many samples"},
            ),
            "HTTP 422 \\(execution: too many samples\\)",
        ),
        (
            lambda request: httpx.Response(
                503, json={"status": "error", "errorType": "timeout", "error": "query timed out"}
            ),
            "HTTP 503 \\(timeout",
        ),
        (raises(httpx.ConnectError("connection refused")), "cannot reach Prometheus"),
        (raises(httpx.ReadTimeout("timed out")), "did not answer within 2000 ms"),
        (
            lambda request: httpx.Response(
                200, json={"status": "success", "data": {"result": [{"metric": {}}]}}
            ),
            "answered without series",
        ),
    ],
)
def test_failures_are_source_unavailable(handler: Handler, message: str) -> None:
    with pytest.raises(SourceUnavailableError, match=message) as caught:
        run(ask(source_with(failing(handler)), QUESTIONS["rate"]))
    assert URL in str(caught.value)


def test_bad_data_is_logged_with_the_query(caplog: pytest.LogCaptureFixture) -> None:
    (recorded,) = [e for e in RECORDED["exchanges"] if e["status"] == 400]
    handler: Handler = lambda request: httpx.Response(recorded["status"], json=recorded["body"])  # noqa: E731
    with (
        caplog.at_level(logging.ERROR, logger="adapter.sources.prometheus"),
        pytest.raises(SourceUnavailableError, match="bad_data: invalid parameter") as caught,
    ):
        run(ask(source_with(failing(handler)), QUESTIONS["rate"]))
    assert "kubepulse bug" in str(caught.value)
    assert any("rate(http_requests_total" in record.getMessage() for record in caplog.records)


def test_unreachable_names_are_unavailable() -> None:
    source = source_with(raises(httpx.ConnectError("connection refused")))
    with pytest.raises(SourceUnavailableError, match=f"{URL}/api/v1/label/__name__/values"):
        run(ask(source, QUESTIONS["rate"]))


def test_a_metric_without_series_is_not_found_after_a_second_look() -> None:
    replay = Replay(RECORDED["exchanges"])
    request = with_statistic(QUESTIONS["rate"], metric="no_such_metric_total")
    with pytest.raises(MetricNotFoundError, match="no_such_metric_total") as caught:
        run(ask(source_with(replay), request))
    assert caught.value.metric == "no_such_metric_total"
    assert [path for _, path, _ in replay.seen] == ["/api/v1/label/__name__/values"]


def test_a_selector_that_matches_nothing_sends_no_query() -> None:
    replay = Replay(RECORDED["exchanges"])
    request = with_statistic(QUESTIONS["rate"], series_selector=parse_selector("tier="))
    assert run(ask(source_with(replay), request)) == {}
    assert not any(path == "/api/v1/query" for _, path, _ in replay.seen)


# ---------------------------------------------------------------------- discovery


def test_metrics_lists_kinds_and_scopes_and_is_cached() -> None:
    replay = Replay(RECORDED["exchanges"])

    async def twice() -> list[Any]:
        source = source_with(replay)
        try:
            first = await source.metrics()
            second = await source.metrics()
            assert first == second
            return first
        finally:
            await source.aclose()

    listed = {descriptor.name: descriptor for descriptor in run(twice())}
    assert listed["http_request_duration_seconds"].kind is MetricKind.HISTOGRAM
    assert listed["http_request_duration_seconds_count"].kind is MetricKind.COUNTER
    assert listed["http_requests_total"].kind is MetricKind.COUNTER
    assert listed["work_queue_depth"].kind is MetricKind.GAUGE
    assert "http_request_duration_seconds_bucket" not in listed
    assert "http_requests_created" not in listed  # the scraper does not store _created
    assert {scope.value for scope in listed["up"].scopes} == {"namespace", "pod", "node"}
    assert sum(1 for query in replay.queries() if query.startswith("group by")) == 1


def test_kinds_from_names_when_there_is_no_metadata() -> None:
    replay = Replay(RECORDED["exchanges"])
    replay.overrides["/api/v1/metadata"] = lambda request: httpx.Response(
        200, json={"status": "success", "data": {}}
    )
    listed = {d.name: d.kind for d in run(source_with(replay).metrics())}
    assert listed["http_request_duration_seconds"] is MetricKind.HISTOGRAM
    assert listed["http_requests_total"] is MetricKind.COUNTER
    assert listed["http_request_duration_seconds_count"] is MetricKind.GAUGE
    assert listed["http_requests_created"] is MetricKind.GAUGE
    # A query reads the counter's rate without metadata too.
    assert run(ask(source_with(replay), QUESTIONS["rate"])) == pytest.approx(
        RECORDED["answers"]["rate"]
    )


@pytest.mark.parametrize(
    ("handler", "ready"),
    [
        (lambda request: httpx.Response(200, text="Prometheus Server is Ready.\n"), True),
        (lambda request: httpx.Response(503, text="Service Unavailable"), False),
        (raises(httpx.ConnectError("connection refused")), False),
    ],
)
def test_ready(handler: Handler, ready: bool) -> None:
    async def check() -> bool:
        source = source_with(handler)
        try:
            return await source.ready()
        finally:
            await source.aclose()

    assert run(check()) is ready


def test_constructor_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        PrometheusSource("prometheus:9090", timeout_ms=1_000, staleness_ms=1_000)
    with pytest.raises(ValueError, match="must be positive"):
        PrometheusSource(URL, timeout_ms=0, staleness_ms=1_000)

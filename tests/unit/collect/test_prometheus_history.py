"""PrometheusHistory: the PromQL it builds, and how it reads (and refuses) answers.

The PromQL is pure text and checked as such. The HTTP side runs against an
:class:`httpx.MockTransport` playing Prometheus, because the failures checked here (an
error answer, a page that is not Prometheus, a long query) cannot be had from a real
Prometheus on demand; ``tests/integration/test_history_sources.py`` runs the real one.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx
import pytest

from kubepulse.analysis.inputs import ContainerRef, QuotaRef
from kubepulse.analysis.measures import measure
from kubepulse.collect.history import HistorySource
from kubepulse.collect.prometheus_history import (
    POST_THRESHOLD_BYTES,
    PrometheusHistory,
    PrometheusHistoryError,
    escape_regex,
    escape_string,
    row_queries,
)
from kubepulse.errors import KubepulseValueError

S = 1000


def queries(name: str, **options: object) -> list[str]:
    return [
        one.query
        for one in row_queries(measure(name), lookback_ms=60 * S, range_ms=3600 * S, **options)  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        (
            "cpu_cores",
            {"namespaces": ["shop"]},
            [
                "sum by (namespace, pod, container) "
                '(rate(kubepulse_container_cpu_usage_seconds_total{namespace="shop"}[1m]))'
            ],
        ),
        (
            "memory_working_set_bytes",
            {"namespaces": ["b", "a.b", "a"], "nodes": ["n1"]},
            [
                "sum by (namespace, pod, container) (max_over_time("
                'kubepulse_container_memory_working_set_bytes{namespace=~"a|a\\\\.b|b", '
                'node="n1"}[1m]))'
            ],
        ),
        (
            "cpu_throttled_ratio",
            {},
            [
                "sum by (namespace, pod, container) "
                "(rate(kubepulse_container_cpu_cfs_throttled_periods_total[1m]))",
                "sum by (namespace, pod, container) "
                "(rate(kubepulse_container_cpu_cfs_periods_total[1m]))",
            ],
        ),
        (
            "oom_kill_ms",
            {"namespaces": ["shop"]},
            [
                'kubepulse_container_oom_kills_total{namespace="shop"} and '
                '(changes(kubepulse_container_oom_kills_total{namespace="shop"}[1h5m] @ end()) > 0)'
            ],
        ),
        # Node figures ignore namespaces.
        (
            "memory_full",
            {"namespaces": ["shop"]},
            ["sum by (node) (rate(kubepulse_node_pressure_memory_stalled_seconds_total[1m]))"],
        ),
        # Quota: max (two kube-state-metrics replicas), exported_namespace kept, namespace
        # filtered after the answer, nodes ignored.
        (
            "quota_used",
            {"namespaces": ["shop"], "nodes": ["n1"]},
            [
                "max by (namespace, exported_namespace, resourcequota, resource) "
                '(last_over_time(kube_resourcequota{type="used"}[1m]))'
            ],
        ),
        ("cpu_cores", {"namespaces": []}, []),
        ("cpu_cores", {"nodes": []}, []),
        (
            "io_some",
            {"namespaces": []},
            ["sum by (node) (rate(kubepulse_node_pressure_io_waiting_seconds_total[1m]))"],
        ),
    ],
)
def test_row_queries(name: str, options: dict[str, object], expected: list[str]) -> None:
    assert queries(name, **options) == expected


def test_escaping() -> None:
    assert escape_string('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    assert escape_regex("web.1+(x)") == "web\\.1\\+\\(x\\)"


def answer(result: list[dict[str, object]]) -> httpx.Response:
    return httpx.Response(
        200, json={"status": "success", "data": {"resultType": "matrix", "result": result}}
    )


def test_fetch_builds_the_history_from_range_answers() -> None:
    """A fake Prometheus that answers CPU and OOM queries and nothing else."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        query = parse_qs(request.url.query.decode())["query"][0]
        labels = {"namespace": "shop", "pod": "web-0", "container": "app"}
        if "cpu_usage_seconds_total" in query:
            return answer(
                [{"metric": labels, "values": [[100, "0.5"], [160, "NaN"], [220, "0.25"]]}]
            )
        if "oom_kills_total" in query:
            values = [[100, "1"], [160, "2"], [220, "2"]]
            return answer([{"metric": {**labels, "node": "n1"}, "values": values}])
        if "kube_resourcequota" in query:
            quota = {"exported_namespace": "other", "namespace": "monitoring"}
            return answer(
                [
                    {
                        "metric": {**quota, "resourcequota": "q", "resource": "pods"},
                        "values": [[100, "3"]],
                    },
                    {
                        "metric": {"namespace": "shop", "resourcequota": "q", "resource": "pods"},
                        "values": [[100, "4"]],
                    },
                ]
            )
        return answer([])

    source: HistorySource
    with PrometheusHistory(
        "http://prometheus:9090/", transport=httpx.MockTransport(handler)
    ) as prometheus:
        source = prometheus
        history = source.fetch(100 * S, 220 * S, ["shop"])
    ref = ContainerRef("shop", "web-0", "app")
    assert list(history.cpu_cores[ref]) == [(100 * S, 0.5), (220 * S, 0.25)]
    assert history.oom_kill_ms == {ref: (160 * S,)}
    assert set(history.quota_used) == {QuotaRef("shop", "q", "pods")}
    assert history.memory_working_set_bytes == {}
    # 120 s at the default 15 s resolution: a point every scrape, each over two scrapes.
    first = parse_qs(seen[0].url.query.decode())
    assert (first["start"], first["end"], first["step"]) == (["100.000"], ["220.000"], ["15.000"])
    assert "[30s]" in first["query"][0]
    assert all(request.method == "GET" for request in seen)


def test_a_long_query_goes_by_post() -> None:
    methods: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        methods.append(request.method)
        if request.method == "POST":
            assert request.headers["content-type"] == "application/x-www-form-urlencoded"
            assert "query" in parse_qs(request.content.decode())
        return answer([])

    namespaces = [f"namespace-{index:04d}" for index in range(POST_THRESHOLD_BYTES // 10)]
    with PrometheusHistory("http://p:9090", transport=httpx.MockTransport(handler)) as prometheus:
        prometheus.fetch(0, 60 * S, namespaces)
    assert "POST" in methods
    assert "GET" in methods  # node rows carry no namespace list


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            httpx.Response(
                400, json={"status": "error", "errorType": "bad_data", "error": "parse error"}
            ),
            "refused the query",
        ),
        (
            httpx.Response(503, json={"status": "error", "errorType": "unavailable", "error": "x"}),
            "failed with HTTP 503",
        ),
        (httpx.Response(200, text="<html>grafana</html>"), "without /api/v1"),
        (httpx.Response(200, json={"status": "success", "data": {}}), "without a result list"),
        (
            httpx.Response(
                200, json={"status": "success", "data": {"result": [{"values": [[1]]}]}}
            ),
            "without series and samples",
        ),
    ],
)
def test_failures_say_what_to_do(response: httpx.Response, message: str) -> None:
    transport = httpx.MockTransport(lambda request: response)
    with (
        PrometheusHistory("http://p:9090", transport=transport) as prometheus,
        pytest.raises(PrometheusHistoryError, match=message),
    ):
        prometheus.fetch(0, 60 * S)


def test_a_timeout_says_to_raise_it_or_ask_for_less() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with (
        PrometheusHistory(
            "http://p:9090", timeout=2, transport=httpx.MockTransport(handler)
        ) as prometheus,
        pytest.raises(PrometheusHistoryError, match="within 2 s; raise --timeout"),
    ):
        prometheus.fetch(0, 60 * S)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(KubepulseValueError, match="check --prometheus-url"):
        PrometheusHistory("prometheus:9090")
    with pytest.raises(KubepulseValueError, match="positive"):
        PrometheusHistory("http://p:9090", timeout=0)
    body = json.dumps({"status": "success", "data": {"result": []}})
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text=body))
    with (
        PrometheusHistory("http://p:9090", transport=transport) as prometheus,
        pytest.raises(KubepulseValueError, match="choose a step"),
    ):
        prometheus.fetch(0, 3600 * S, step_ms=1)

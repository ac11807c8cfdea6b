"""The metrics API through HTTP: FastAPI's TestClient over a real EmbeddedSource.

Every response shape (discovery, v1beta1, v1beta2, external, each Status) is pinned by a
golden file (see ``golden.py`` for how to regenerate them); behaviour is checked by the
numbers, which are worked out by hand next to the samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from adapter.api.context import ApiContext, ApiSettings, ExternalMetric, get_context
from adapter.app import create_app
from adapter.config import AdapterConfig, ExternalMetricRule
from adapter.objects import InMemoryObjectResolver, ObjectsUnavailableError, ResourceType
from adapter.sources.base import MetricDescriptor, SourceUnavailableError
from adapter.sources.embedded import EmbeddedSource
from kubepulse.errors import KubepulseValueError
from kubepulse.metricquery import ObjectValue, SeriesRequest, parse_statistic
from kubepulse.selector import LabelSelector, parse_selector
from kubepulse.stats import SeriesKind
from kubepulse.store import TimeSeriesStore
from tests.unit.adapter.api.client import TestClient
from tests.unit.adapter.api.golden import assert_golden

NOW = 1_700_000_000_000  # 2023-11-14T22:13:20Z
STEP = 15_000
CUSTOM = "/apis/custom.metrics.k8s.io"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"


def fill(
    store: TimeSeriesStore,
    name: str,
    labels: dict[str, str],
    values: list[float],
    kind: SeriesKind = SeriesKind.GAUGE,
) -> None:
    for index, value in enumerate(values):
        store.append(name, labels, NOW - (len(values) - 1 - index) * STEP, value, kind)


def filled_store() -> TimeSeriesStore:
    store = TimeSeriesStore()
    counter = SeriesKind.COUNTER
    # Over the minute: web-1 serves 2/s (120 requests), web-2 0.5/s, db-0 1/s.
    fill(
        store,
        "http_requests_total",
        {"namespace": "shop", "pod": "web-1", "code": "200"},
        [0, 30, 60, 90, 120],
        counter,
    )
    fill(
        store,
        "http_requests_total",
        {"namespace": "shop", "pod": "web-2", "code": "200"},
        [0, 6, 12, 18, 24],
        counter,
    )
    fill(
        store,
        "http_requests_total",
        {"namespace": "shop", "pod": "web-2", "code": "500"},
        [0, 1.5, 3, 4.5, 6],
        counter,
    )
    fill(
        store,
        "http_requests_total",
        {"namespace": "shop", "pod": "db-0", "code": "200"},
        [0, 15, 30, 45, 60],
        counter,
    )
    # Queue depths: orders averages 4 on web-1 (max 9), 2 on web-2; billing 10 on web-1.
    fill(
        store,
        "queue_depth",
        {"namespace": "shop", "pod": "web-1", "queue": "orders"},
        [1, 5, 3, 9, 2],
    )
    fill(
        store,
        "queue_depth",
        {"namespace": "shop", "pod": "web-2", "queue": "orders"},
        [2, 2, 2, 2, 2],
    )
    fill(
        store,
        "queue_depth",
        {"namespace": "shop", "pod": "web-1", "queue": "billing"},
        [10, 10, 10, 10, 10],
    )
    # Latency buckets: web-1 40/70/90/100 of 100, web-2 0/10/50/100 of 100 in the minute.
    for pod, counts in {"web-1": (40, 70, 90, 100), "web-2": (0, 10, 50, 100)}.items():
        for le, final in zip(("0.1", "0.25", "0.5", "+Inf"), counts, strict=True):
            fill(
                store,
                "request_duration_seconds_bucket",
                {"namespace": "shop", "pod": pod, "le": le},
                [final * index / 4 for index in range(5)],
                counter,
            )
    fill(store, "node_memory_working_set_bytes", {"node": "n1"}, [2**30] * 5)
    fill(store, "node_memory_working_set_bytes", {"node": "n2"}, [3 * 2**30] * 5)
    # A pod whose exporter stopped two minutes ago: stale, so absent.
    for index in range(5):
        store.append(
            "queue_depth",
            {"namespace": "shop", "pod": "web-3", "queue": "orders"},
            NOW - 120_000 - (4 - index) * STEP,
            7.0,
        )
    return store


def cluster_objects() -> list[dict[str, Any]]:
    def pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
        return {
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "labels": labels},
            "status": {"phase": "Running"},
        }

    return [
        pod("web-1", {"app": "web"}),
        pod("web-2", {"app": "web"}),
        pod("web-3", {"app": "web"}),
        pod("db-0", {"app": "db"}),
        {
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}},
        },
        {
            "kind": "Deployment",
            "metadata": {"name": "idle", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "none"}}},
        },
        {
            "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "db"}}},
        },
        {"kind": "Namespace", "metadata": {"name": "shop"}},
        {"kind": "Namespace", "metadata": {"name": "empty"}},
        {"kind": "Node", "metadata": {"name": "n1", "labels": {"pool": "a"}}},
        {"kind": "Node", "metadata": {"name": "n2", "labels": {"pool": "b"}}},
    ]


SETTINGS = ApiSettings(
    external_metrics=(
        ExternalMetric(
            "orders_queue_depth",
            "queue_depth",
            parse_selector("queue=orders"),
            parse_statistic({"kubepulse.io/aggregation": "max"}),
        ),
        ExternalMetric("shop_requests", "http_requests_total", namespaced=True),
    ),
    max_selector_length=200,
)


@pytest.fixture
def client() -> Iterator[TestClient]:
    source = EmbeddedSource(filled_store(), clock=lambda: NOW, staleness_ms=60_000)
    app = create_app(
        source=source,
        objects=InMemoryObjectResolver(cluster_objects()),
        settings=SETTINGS,
        clock=lambda: NOW,
    )
    with TestClient(app) as test_client:
        yield test_client


def get(client: TestClient, path: str, **params: str) -> Any:
    return client.get(path, params=params)


def item_values(response: Any) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {item["describedObject"]["name"]: item["value"] for item in response.json()["items"]}


# ---------------------------------------------------------------------- discovery


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("discovery_apis", "/apis"),
        ("discovery_custom_group", f"{CUSTOM}"),
        ("discovery_custom_v1beta2", f"{CUSTOM}/v1beta2"),
        ("discovery_custom_v1beta1", f"{CUSTOM}/v1beta1"),
        ("discovery_external_group", "/apis/external.metrics.k8s.io"),
        ("discovery_external_v1beta1", EXTERNAL),
    ],
)
def test_discovery_documents(client: TestClient, name: str, path: str) -> None:
    assert_golden(name, client.get(path))


def test_discovery_lists_metrics_for_the_objects_their_labels_describe(
    client: TestClient,
) -> None:
    resources = {
        entry["name"]: entry for entry in client.get(f"{CUSTOM}/v1beta2").json()["resources"]
    }
    for resource in ("pods", "deployments.apps", "statefulsets.apps", "replicasets.apps"):
        assert resources[f"{resource}/queue_depth"]["namespaced"] is True
        assert f"{resource}/request_duration_seconds" in resources  # a histogram, by its name
    assert resources["namespaces/http_requests_total"]["namespaced"] is False
    assert resources["nodes/node_memory_working_set_bytes"]["namespaced"] is False
    assert "pods/node_memory_working_set_bytes" not in resources
    assert not any(name.endswith("_bucket") for name in resources)


def test_discovery_is_never_empty() -> None:
    empty = create_app(
        source=EmbeddedSource(TimeSeriesStore(), clock=lambda: NOW),
        objects=InMemoryObjectResolver(),
        clock=lambda: NOW,
    )
    with TestClient(empty) as client:
        custom = client.get(f"{CUSTOM}/v1beta2").json()["resources"]
        assert "pods/kubepulse_container_memory_working_set_bytes" in {r["name"] for r in custom}
        assert "nodes/kubepulse_node_memory_available_bytes" in {r["name"] for r in custom}
        assert_golden("discovery_external_placeholder", client.get(EXTERNAL))
        assert_golden(
            "status_404_external_placeholder",
            client.get(f"{EXTERNAL}/namespaces/shop/externalmetrics"),
        )


def test_discovery_lists_advertised_derived_names(client: TestClient) -> None:
    settings = ApiSettings(
        advertised_statistics=(
            parse_statistic({"kubepulse.io/aggregation": "p95", "kubepulse.io/window": "5m"}),
        )
    )
    app = create_app(
        source=EmbeddedSource(filled_store(), clock=lambda: NOW),
        objects=InMemoryObjectResolver(),
        settings=settings,
        clock=lambda: NOW,
    )
    with TestClient(app) as derived_client:
        names = {r["name"] for r in derived_client.get(f"{CUSTOM}/v1beta1").json()["resources"]}
    assert "pods/request_duration_seconds-p95-5m" in names
    assert "pods/request_duration_seconds" in names


class DownSource:
    """A source whose backend is down."""

    async def query(self, request: SeriesRequest, now_ms: int) -> list[ObjectValue]:
        raise SourceUnavailableError("Prometheus at http://127.0.0.1:9/ refused the connection")

    async def metrics(self) -> list[MetricDescriptor]:
        raise SourceUnavailableError("Prometheus at http://127.0.0.1:9/ refused the connection")

    async def ready(self) -> bool:
        return False


def test_discovery_stays_up_when_the_source_is_down() -> None:
    app = create_app(source=DownSource(), objects=InMemoryObjectResolver(), clock=lambda: NOW)
    with TestClient(app) as client:
        response = client.get(f"{CUSTOM}/v1beta2")
    assert response.status_code == 200
    assert response.json()["resources"]


# ---------------------------------------------------------------------- object metrics


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
def test_pods_by_selector(client: TestClient, version: str) -> None:
    response = get(
        client,
        f"{CUSTOM}/{version}/namespaces/shop/pods/*/http_requests_total",
        labelSelector="app=web",
    )
    assert_golden(f"{version}_pods", response)
    # web-1: 120 in 60 s; web-2: 24 + 6 in 60 s (its two codes summed); web-3 has no series.
    assert item_values(response) == {"web-1": "2", "web-2": "500m"}


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
def test_one_pod_with_a_metric_selector_and_statistic(client: TestClient, version: str) -> None:
    selector = "queue in (orders),kubepulse.io/aggregation=max,!canary"
    response = get(
        client,
        f"{CUSTOM}/{version}/namespaces/shop/pods/web-1/queue_depth",
        metricLabelSelector=selector,
    )
    assert_golden(f"{version}_pod_statistic", response)
    assert item_values(response) == {"web-1": "9"}


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
def test_a_deployment_aggregates_its_pods(client: TestClient, version: str) -> None:
    response = get(
        client,
        f"{CUSTOM}/{version}/namespaces/shop/deployments.apps/web/request_duration_seconds",
        metricLabelSelector="kubepulse.io/aggregation=p50",
    )
    assert_golden(f"{version}_deployment", response)
    # Buckets of both pods: 40, 80, 140, 200; rank 100 in (0.25, 0.5]: 0.25 + 0.25 * 20 / 60.
    assert item_values(response) == {"web": "333333334n"}


def test_workloads_by_selector_leave_out_those_without_data(client: TestClient) -> None:
    response = get(client, f"{CUSTOM}/v1beta2/namespaces/shop/deployments/*/http_requests_total")
    assert item_values(response) == {"web": "2500m"}  # idle has no pods
    response = get(
        client, f"{CUSTOM}/v1beta2/namespaces/shop/statefulsets.apps/db/http_requests_total"
    )
    assert item_values(response) == {"db": "1"}


def test_a_namespace_metric(client: TestClient) -> None:
    response = get(client, f"{CUSTOM}/v1beta2/namespaces/shop/metrics/http_requests_total")
    assert_golden("v1beta2_namespace", response)
    assert item_values(response) == {"shop": "3500m"}  # 2 + 0.5 + 1
    alias = get(client, f"{CUSTOM}/v1beta2/namespaces/shop/http_requests_total")
    assert item_values(alias) == {"shop": "3500m"}


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
def test_nodes_are_cluster_scoped(client: TestClient, version: str) -> None:
    response = get(
        client,
        f"{CUSTOM}/{version}/nodes/*/node_memory_working_set_bytes",
        labelSelector="pool in (a,b)",
    )
    assert_golden(f"{version}_nodes", response)
    assert item_values(response) == {"n1": "1073741824", "n2": "3221225472"}


def test_a_derived_name_chooses_the_statistic(client: TestClient) -> None:
    response = get(
        client, f"{CUSTOM}/v1beta2/namespaces/shop/pods/web-2/request_duration_seconds-p50-1m"
    )
    assert_golden("v1beta2_derived_name", response)
    assert item_values(response) == {"web-2": "500m"}  # rank 50 ends the 0.5 bucket
    forecast = get(
        client, f"{CUSTOM}/v1beta2/namespaces/shop/pods/web-2/queue_depth-avg-1m-predict-1m"
    )
    assert item_values(forecast) == {"web-2": "2"}  # flat stays flat


def test_stale_pods_are_left_out(client: TestClient) -> None:
    response = get(
        client,
        f"{CUSTOM}/v1beta2/namespaces/shop/pods/*/queue_depth",
        metricLabelSelector="queue=orders",
    )
    assert item_values(response) == {"web-1": "4", "web-2": "2"}


# ---------------------------------------------------------------------- external metrics


def test_an_external_metric(client: TestClient) -> None:
    response = get(client, f"{EXTERNAL}/namespaces/default/orders_queue_depth")
    assert_golden("external_value", response)
    # max of web-1's orders queue (9) plus web-2's (2); web-3 is stale.
    assert [item["value"] for item in response.json()["items"]] == ["11"]


def test_an_external_metric_takes_the_hpas_selector_and_statistic(client: TestClient) -> None:
    response = get(
        client,
        f"{EXTERNAL}/namespaces/default/orders_queue_depth",
        labelSelector="pod=web-1,kubepulse.io/aggregation=avg",
    )
    body = response.json()
    assert body["items"][0]["value"] == "4"
    assert body["items"][0]["metricLabels"] == {"pod": "web-1", "queue": "orders"}
    derived = get(client, f"{EXTERNAL}/namespaces/default/orders_queue_depth-min-1m")
    assert derived.json()["items"][0]["value"] == "3"  # 1 + 2


def test_a_namespaced_external_metric_reads_the_requests_namespace(client: TestClient) -> None:
    assert (
        get(client, f"{EXTERNAL}/namespaces/shop/shop_requests").json()["items"][0]["value"]
        == "3500m"
    )
    assert get(client, f"{EXTERNAL}/namespaces/other/shop_requests").status_code == 404


def test_external_metric_rules_from_the_configuration() -> None:
    rule = ExternalMetricRule(
        name="q",
        metric="queue_depth",
        selector="queue=orders,kubepulse.io/window=5m",
        statistic="p95",
        window_ms=120_000,
    )
    metric = ExternalMetric.from_rule(rule)
    assert metric.selector == parse_selector("queue=orders")
    assert metric.statistic == parse_statistic(
        {"kubepulse.io/aggregation": "p95", "kubepulse.io/window": "5m"}
    )
    settings = ApiSettings.from_config(AdapterConfig(external_metrics=(rule,)))
    assert settings.external_metrics == (metric,)
    assert settings.external_metric("q") == metric
    assert settings.external_metric("nope") is None
    with pytest.raises(KubepulseValueError, match="more than once"):
        ApiSettings(external_metrics=(metric, metric))
    with pytest.raises(KubepulseValueError, match="not a metric name"):
        ExternalMetric("x", "not-a-metric")


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("name", "path", "params"),
    [
        (
            "status_400_selector",
            f"{CUSTOM}/v1beta2/namespaces/shop/pods/*/queue_depth",
            {"labelSelector": "app in (web"},
        ),
        (
            "status_400_window",
            f"{CUSTOM}/v1beta2/namespaces/shop/pods/*/queue_depth",
            {"metricLabelSelector": "kubepulse.io/window=5s"},
        ),
        (
            "status_400_unknown_option",
            f"{CUSTOM}/v1beta2/namespaces/shop/pods/*/queue_depth",
            {"metricLabelSelector": "kubepulse.io/windows=5m"},
        ),
        ("status_400_namespace", f"{CUSTOM}/v1beta2/namespaces/Shop_1/pods/*/queue_depth", {}),
        (
            "status_400_derived_conflict",
            f"{CUSTOM}/v1beta2/namespaces/shop/pods/*/queue_depth-p95-5m",
            {"metricLabelSelector": "kubepulse.io/window=1m"},
        ),
        (
            "status_400_derived_name",
            f"{CUSTOM}/v1beta2/namespaces/shop/pods/*/queue_depth-p95-5x",
            {},
        ),
        (
            "status_400_histogram_max",
            f"{CUSTOM}/v1beta2/namespaces/shop/pods/*/request_duration_seconds",
            {"metricLabelSelector": "kubepulse.io/aggregation=max"},
        ),
        (
            "status_400_oversized",
            f"{CUSTOM}/v1beta2/namespaces/shop/pods/*/queue_depth",
            {"labelSelector": "app=" + "a" * 300},
        ),
        ("status_400_scope", f"{CUSTOM}/v1beta2/pods/web-1/queue_depth", {}),
        ("status_404_metric", f"{CUSTOM}/v1beta2/namespaces/shop/pods/*/nope", {}),
        ("status_404_resource", f"{CUSTOM}/v1beta2/namespaces/shop/services/web/queue_depth", {}),
        (
            "status_404_object",
            f"{CUSTOM}/v1beta2/namespaces/shop/deployments.apps/gone/queue_depth",
            {},
        ),
        ("status_404_no_data", f"{CUSTOM}/v1beta2/namespaces/shop/pods/web-3/queue_depth", {}),
        ("status_404_version", f"{CUSTOM}/v2/namespaces/shop/pods/*/queue_depth", {}),
        ("status_404_route", f"{CUSTOM}/v1beta2/namespaces/shop/pods/web-1/queue_depth/x", {}),
        ("status_404_external", f"{EXTERNAL}/namespaces/shop/unknown_metric", {}),
        (
            "status_404_external_no_data",
            f"{EXTERNAL}/namespaces/shop/orders_queue_depth",
            {"labelSelector": "pod=nobody"},
        ),
    ],
)
def test_errors_are_status_objects(
    client: TestClient, name: str, path: str, params: dict[str, str]
) -> None:
    response = client.get(path, params=params)
    assert_golden(name, response)
    body = response.json()
    assert body["kind"] == "Status"
    assert body["code"] == response.status_code
    assert response.status_code in {400, 404}


def test_a_write_is_method_not_allowed(client: TestClient) -> None:
    assert_golden("status_405", client.post(f"{CUSTOM}/v1beta2/namespaces/shop/pods/*/queue_depth"))


@pytest.mark.parametrize(
    "path",
    [
        f"{CUSTOM}/v1beta2/namespaces/..%2F..%2Fetc/pods/*/queue_depth",
        f"{CUSTOM}/v1beta2/namespaces/shop/pods/..%2Fsecret/queue_depth",
        f"{CUSTOM}/v1beta2/namespaces/shop/pods/web-1/..%2F..%2Fqueue_depth",
        f"{CUSTOM}/v1beta2/namespaces/shop/pods/{'a' * 300}/queue_depth",
        f"{CUSTOM}/v1beta2/namespaces/shop/pods/web-1/{'m' * 600}",
        f"{CUSTOM}/v1beta2/namespaces/shop/pods/web-1/queue%00depth",
        f"{CUSTOM}/v1beta2/nodes/n1/{quote('drop table')}",
        f"{EXTERNAL}/namespaces/shop/{'x' * 600}",
    ],
)
def test_traversal_and_oversized_input_are_refused(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in {400, 404}, response.text
    assert response.json()["kind"] == "Status"


def test_oversized_metric_selector_is_a_bad_request(client: TestClient) -> None:
    response = get(
        client,
        f"{CUSTOM}/v1beta2/namespaces/shop/pods/*/queue_depth",
        metricLabelSelector="x=" + "y" * 250,
    )
    assert response.status_code == 400
    assert "more than the 200 accepted" in response.json()["message"]


class BrokenSource(DownSource):
    """A source with a bug."""

    async def query(self, request: SeriesRequest, now_ms: int) -> list[ObjectValue]:
        raise RuntimeError("internal detail that must not leak")


class UnavailableObjects(InMemoryObjectResolver):
    async def resolve(
        self,
        resource: ResourceType,
        namespace: str | None,
        name: str | None,
        selector: LabelSelector,
    ) -> Any:
        raise ObjectsUnavailableError("the pod cache is not filled yet; retry in a moment")


@pytest.mark.parametrize(
    ("name", "source", "objects"),
    [
        ("status_503_source", DownSource(), InMemoryObjectResolver(cluster_objects())),
        ("status_503_objects", DownSource(), UnavailableObjects()),
        ("status_500", BrokenSource(), InMemoryObjectResolver(cluster_objects())),
    ],
)
def test_failures_behind_the_api_are_status_objects(
    client: TestClient, name: str, source: Any, objects: Any
) -> None:
    # The routes get their context through a dependency: swap it, patch nothing.
    client.app.dependency_overrides[get_context] = lambda: ApiContext(  # type: ignore[attr-defined]
        source=source, objects=objects, settings=SETTINGS, clock=lambda: NOW
    )
    response = client.get(f"{CUSTOM}/v1beta2/namespaces/shop/pods/*/queue_depth")
    assert_golden(name, response)
    assert "internal detail" not in response.text
    assert "Traceback" not in response.text


# ---------------------------------------------------------------------- health


def test_health_endpoints() -> None:
    app = create_app(source=DownSource(), objects=InMemoryObjectResolver(), clock=lambda: NOW)
    with TestClient(app) as client:
        assert client.get("/healthz").text == "ok"
        assert client.get("/livez").text == "ok"
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503
        assert "[-]source failed" in not_ready.text
        assert "[+]objects ok" in not_ready.text


def test_ready_when_source_and_objects_are(client: TestClient) -> None:
    assert client.get("/readyz").text == "ok"
    assert "readyz check passed" in client.get("/readyz", params={"verbose": ""}).text


def test_the_openapi_schema_describes_the_metric_paths(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert (
        "/apis/custom.metrics.k8s.io/{version}/namespaces/{namespace}/{resource}/{name}/{metric}"
        in paths
    )
    assert "/apis/external.metrics.k8s.io/{version}/namespaces/{namespace}/{metric}" in paths
    assert math.isfinite(len(paths))

"""The resource metrics API (``metrics.k8s.io/v1beta1``) through HTTP, over a real EmbeddedSource.

The store holds exporter-shaped series (:mod:`kubepulse.catalog` names and labels) whose
usage is worked out by hand next to the samples; every answer is checked by those
numbers, and its shape field by field against metrics-server's (``METRICS_SERVER_*``
below: bodies as metrics-server v0.7 serves them, with the fields of
``k8s.io/metrics/pkg/apis/metrics/v1beta1``). Nothing is mocked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapter.api.context import ApiSettings
from adapter.api.resource_metrics import go_duration, parse_field_selector
from adapter.api.status import BadRequestError
from adapter.app import create_app
from adapter.config import load_config
from adapter.objects import InMemoryObjectResolver
from adapter.sources.embedded import EmbeddedSource
from kubepulse.stats import SeriesKind
from kubepulse.store import TimeSeriesStore
from tests.unit.adapter.api.client import TestClient

NOW = 1_700_000_000_000  # 2023-11-14T22:13:20Z
STEP = 15_000
API = "/apis/metrics.k8s.io/v1beta1"
_MI = 2**20
_GI = 2**30
CPU = "kubepulse_container_cpu_usage_seconds_total"
MEMORY = "kubepulse_container_memory_working_set_bytes"

# What metrics-server answers (shapes; values are irrelevant to the comparison).
METRICS_SERVER_NODE: dict[str, Any] = {
    "kind": "NodeMetrics",
    "apiVersion": "metrics.k8s.io/v1beta1",
    "metadata": {"name": "kind-control-plane", "creationTimestamp": "2023-11-14T22:13:20Z"},
    "timestamp": "2023-11-14T22:13:11Z",
    "window": "20.05s",
    "usage": {"cpu": "146623433n", "memory": "1035668Ki"},
}
METRICS_SERVER_POD: dict[str, Any] = {
    "kind": "PodMetrics",
    "apiVersion": "metrics.k8s.io/v1beta1",
    "metadata": {
        "name": "coredns-5d78c9869d-6pqsk",
        "namespace": "kube-system",
        "creationTimestamp": "2023-11-14T22:13:20Z",
    },
    "timestamp": "2023-11-14T22:13:06Z",
    "window": "15.329s",
    "containers": [{"name": "coredns", "usage": {"cpu": "2092171n", "memory": "17264Ki"}}],
}
METRICS_SERVER_RESOURCES: dict[str, Any] = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": "metrics.k8s.io/v1beta1",
    "resources": [
        {
            "name": "nodes",
            "singularName": "",
            "namespaced": False,
            "kind": "NodeMetrics",
            "verbs": ["get", "list"],
        },
        {
            "name": "pods",
            "singularName": "",
            "namespaced": True,
            "kind": "PodMetrics",
            "verbs": ["get", "list"],
        },
    ],
}


def fill(
    store: TimeSeriesStore,
    name: str,
    labels: dict[str, str],
    per_step: float,
    start: float,
    kind: SeriesKind,
    *,
    end_ms: int = NOW,
) -> None:
    """Five samples ending at ``end_ms``: a counter growing ``per_step``, or a constant gauge."""
    for index in range(5):
        value = start + per_step * index if kind is SeriesKind.COUNTER else start
        store.append(name, labels, end_ms - (4 - index) * STEP, value, kind)


def container(
    store: TimeSeriesStore,
    namespace: str,
    pod: str,
    name: str,
    cores: float,
    memory_bytes: float | None,
    *,
    end_ms: int = NOW,
) -> None:
    labels = {"namespace": namespace, "pod": pod, "container": name, "node": "n1"}
    labels["pod_uid"] = f"uid-{pod}"
    fill(store, CPU, labels, cores * STEP / 1000, 100.0, SeriesKind.COUNTER, end_ms=end_ms)
    if memory_bytes is not None:
        fill(store, MEMORY, labels, 0, memory_bytes, SeriesKind.GAUGE, end_ms=end_ms)


def node(
    store: TimeSeriesStore,
    name: str,
    modes: dict[str, float],
    total_bytes: float,
    available_bytes: float,
    *,
    end_ms: int = NOW,
) -> None:
    for mode, cores in modes.items():
        labels = {"node": name, "mode": mode}
        fill(
            store,
            "kubepulse_node_cpu_seconds_total",
            labels,
            cores * STEP / 1000,
            5000.0,
            SeriesKind.COUNTER,
            end_ms=end_ms,
        )
    gauge = SeriesKind.GAUGE
    labels = {"node": name}
    fill(store, "kubepulse_node_memory_total_bytes", labels, 0, total_bytes, gauge, end_ms=end_ms)
    fill(
        store,
        "kubepulse_node_memory_available_bytes",
        labels,
        0,
        available_bytes,
        gauge,
        end_ms=end_ms,
    )


def filled_store() -> TimeSeriesStore:
    store = TimeSeriesStore()
    # shop/web-1: app 250m and 64Mi, sidecar 10m and 10Mi; the pause container and the
    # pod-level series (container "") are not containers and must not show.
    container(store, "shop", "web-1", "app", 0.25, 64 * _MI)
    container(store, "shop", "web-1", "sidecar", 0.01, 10 * _MI)
    container(store, "shop", "web-1", "POD", 0.001, 1 * _MI)
    container(store, "shop", "web-1", "", 0.3, 80 * _MI)
    # shop/web-2: 1.5 cores, 1.5Gi.
    container(store, "shop", "web-2", "app", 1.5, 1.5 * _GI)
    # shop/web-3: its exporter stopped three minutes ago: stale, so absent.
    container(store, "shop", "web-3", "app", 0.5, 100 * _MI, end_ms=NOW - 180_000)
    # shop/half-0: CPU but no memory: left out, as metrics-server leaves out pods
    # without every resource.
    container(store, "shop", "half-0", "app", 0.5, None)
    # data/db-0: 2 cores, 1Gi.
    container(store, "data", "db-0", "postgres", 2.0, 1 * _GI)
    # n1: busy 500m user + 250m system = 750m (idle, iowait and steal are not work);
    # working set 8Gi - 6Gi = 2Gi.
    node(
        store,
        "n1",
        {"user": 0.5, "system": 0.25, "idle": 1.0, "iowait": 0.5, "steal": 0.1},
        8 * _GI,
        6 * _GI,
    )
    # n2: 1 core busy; 4Gi - 3Gi = 1Gi.
    node(store, "n2", {"user": 1.0, "idle": 3.0}, 4 * _GI, 3 * _GI)
    # n3: stale.
    node(store, "n3", {"user": 1.0}, 4 * _GI, 1 * _GI, end_ms=NOW - 180_000)
    return store


def cluster_objects() -> list[dict[str, Any]]:
    def pod(namespace: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
        return {
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "status": {"phase": "Running"},
        }

    return [
        pod("shop", "web-1", {"app": "web"}),
        pod("shop", "web-2", {"app": "web", "tier": "canary"}),
        pod("shop", "web-3", {"app": "web"}),
        pod("data", "db-0", {"app": "db"}),
        {"kind": "Namespace", "metadata": {"name": "shop"}},
        {"kind": "Namespace", "metadata": {"name": "data"}},
        {"kind": "Node", "metadata": {"name": "n1", "labels": {"pool": "a"}}},
        {"kind": "Node", "metadata": {"name": "n2", "labels": {"pool": "b"}}},
    ]


SETTINGS = ApiSettings(resource_metrics=True, max_selector_length=200)


def make_app(settings: ApiSettings = SETTINGS, store: TimeSeriesStore | None = None) -> Any:
    return create_app(
        source=EmbeddedSource(store or filled_store(), clock=lambda: NOW, staleness_ms=60_000),
        objects=InMemoryObjectResolver(cluster_objects()),
        settings=settings,
        clock=lambda: NOW,
    )


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(make_app()) as test_client:
        yield test_client


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def assert_status(response: Any, code: int, reason: str) -> dict[str, Any]:
    assert response.status_code == code, response.text
    body: dict[str, Any] = response.json()
    assert body["kind"] == "Status"
    assert (body["code"], body["reason"], body["status"]) == (code, reason, "Failure")
    return body


def assert_same_shape(ours: Any, theirs: Any, where: str = "$") -> None:
    """Same fields, recursively, with values of the same JSON types (lists by first item)."""
    assert type(ours) is type(theirs), f"{where}: {type(ours).__name__} != {type(theirs).__name__}"
    if isinstance(theirs, dict):
        assert sorted(ours) == sorted(theirs), f"{where}: fields {sorted(ours)} != {sorted(theirs)}"
        for key in theirs:
            assert_same_shape(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, list) and theirs:
        assert ours, f"{where}: empty list"
        for index, item in enumerate(ours):
            assert_same_shape(item, theirs[0], f"{where}[{index}]")


def usages(body: dict[str, Any]) -> dict[str, dict[str, dict[str, str]]]:
    """``namespace/pod`` -> container -> usage, from a PodMetricsList."""
    return {
        f"{item['metadata']['namespace']}/{item['metadata']['name']}": {
            entry["name"]: entry["usage"] for entry in item["containers"]
        }
        for item in body["items"]
    }


# ---------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("milliseconds", "text"),
    [
        (0, "0s"),
        (500, "500ms"),
        (30_000, "30s"),
        (15_329, "15.329s"),
        (20_050, "20.05s"),
        (60_000, "1m0s"),
        (90_500, "1m30.5s"),
        (3_600_000, "1h0m0s"),
        (3_723_000, "1h2m3s"),
    ],
)
def test_windows_are_written_as_go_durations(milliseconds: int, text: str) -> None:
    assert go_duration(milliseconds) == text


def test_field_selectors_take_name_and_namespace() -> None:
    selector = parse_field_selector("metadata.namespace==shop, metadata.name!=web-1")
    assert selector.matches("web-2", "shop")
    assert not selector.matches("web-1", "shop")
    assert not selector.matches("web-2", "data")
    assert selector.namespace() == "shop"
    assert parse_field_selector("").matches("anything", None)
    with pytest.raises(BadRequestError, match=r"metadata\.name or metadata\.namespace"):
        parse_field_selector("spec.nodeName=n1")
    with pytest.raises(BadRequestError, match="field=value"):
        parse_field_selector("metadata.name")


# ---------------------------------------------------------------------- discovery


def test_discovery_lists_the_group_as_metrics_server_does(client: TestClient) -> None:
    resources = ok(client.get(API))
    assert resources == METRICS_SERVER_RESOURCES
    group = ok(client.get("/apis/metrics.k8s.io"))
    version = {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}
    assert group == {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": "metrics.k8s.io",
        "versions": [version],
        "preferredVersion": version,
    }
    names = [listed["name"] for listed in ok(client.get("/apis"))["groups"]]
    assert "metrics.k8s.io" in names


def test_disabled_by_default_nothing_is_served() -> None:
    with TestClient(make_app(ApiSettings())) as plain:
        names = [listed["name"] for listed in ok(plain.get("/apis"))["groups"]]
        assert "metrics.k8s.io" not in names
        assert_status(plain.get(API), 404, "NotFound")
        assert_status(plain.get(f"{API}/nodes"), 404, "NotFound")
        assert_status(plain.get(f"{API}/namespaces/shop/pods"), 404, "NotFound")


def test_the_setting_comes_from_the_flag() -> None:
    assert not ApiSettings.from_config(load_config([], environ={})).resource_metrics
    enabled = ApiSettings.from_config(load_config(["--resource-metrics-api"], environ={}))
    assert enabled.resource_metrics
    # The CPU rate's window: two scrape intervals (15 s by default), at least 30 s.
    assert enabled.resource_metrics_window_ms == 30_000
    slow = load_config(["--resource-metrics-api", "--scrape-interval", "1m"], environ={})
    assert ApiSettings.from_config(slow).resource_metrics_window_ms == 120_000


# ---------------------------------------------------------------------- nodes


def test_node_list_has_the_busy_cpu_and_working_set_of_fresh_nodes(client: TestClient) -> None:
    body = ok(client.get(f"{API}/nodes"))
    assert (body["kind"], body["apiVersion"], body["metadata"]) == (
        "NodeMetricsList",
        "metrics.k8s.io/v1beta1",
        {},
    )
    assert {item["metadata"]["name"]: item["usage"] for item in body["items"]} == {
        "n1": {"cpu": "750m", "memory": "2Gi"},
        "n2": {"cpu": "1", "memory": "1Gi"},
    }
    for item in body["items"]:
        assert_same_shape(
            item, {k: v for k, v in METRICS_SERVER_NODE.items() if k not in ("kind", "apiVersion")}
        )
        assert item["timestamp"] == "2023-11-14T22:13:20Z"
        assert item["window"] == "30s"


def test_one_node_has_metrics_servers_shape(client: TestClient) -> None:
    body = ok(client.get(f"{API}/nodes/n1"))
    assert_same_shape(body, METRICS_SERVER_NODE)
    assert body["usage"] == {"cpu": "750m", "memory": "2Gi"}
    assert body["metadata"]["creationTimestamp"] == "2023-11-14T22:13:20Z"


def test_stale_or_unknown_node_is_not_found(client: TestClient) -> None:
    for name in ("n3", "nope"):
        body = assert_status(client.get(f"{API}/nodes/{name}"), 404, "NotFound")
        assert body["details"] == {"name": name, "group": "metrics.k8s.io", "kind": "nodes"}


def test_nodes_are_selected_by_their_labels_and_fields(client: TestClient) -> None:
    by_pool = ok(client.get(f"{API}/nodes", params={"labelSelector": "pool=b"}))
    assert [item["metadata"]["name"] for item in by_pool["items"]] == ["n2"]
    nothing = ok(client.get(f"{API}/nodes", params={"labelSelector": "pool=z"}))
    assert nothing["items"] == []
    by_name = ok(client.get(f"{API}/nodes", params={"fieldSelector": "metadata.name=n1"}))
    assert [item["metadata"]["name"] for item in by_name["items"]] == ["n1"]


# ---------------------------------------------------------------------- pods


def test_pod_list_has_per_container_usage_of_fresh_pods(client: TestClient) -> None:
    body = ok(client.get(f"{API}/namespaces/shop/pods"))
    assert (body["kind"], body["apiVersion"]) == ("PodMetricsList", "metrics.k8s.io/v1beta1")
    assert usages(body) == {
        "shop/web-1": {
            "app": {"cpu": "250m", "memory": "64Mi"},
            "sidecar": {"cpu": "10m", "memory": "10Mi"},
        },
        "shop/web-2": {"app": {"cpu": "1500m", "memory": "1536Mi"}},
    }
    expected = {k: v for k, v in METRICS_SERVER_POD.items() if k not in ("kind", "apiVersion")}
    for item in body["items"]:
        assert_same_shape(item, expected)
        assert (item["timestamp"], item["window"]) == ("2023-11-14T22:13:20Z", "30s")


def test_all_pods_span_every_namespace(client: TestClient) -> None:
    body = ok(client.get(f"{API}/pods"))
    assert sorted(usages(body)) == ["data/db-0", "shop/web-1", "shop/web-2"]
    assert usages(body)["data/db-0"] == {"postgres": {"cpu": "2", "memory": "1Gi"}}


def test_one_pod_has_metrics_servers_shape(client: TestClient) -> None:
    body = ok(client.get(f"{API}/namespaces/data/pods/db-0"))
    assert_same_shape(body, METRICS_SERVER_POD)
    assert body["metadata"]["namespace"] == "data"
    assert body["containers"] == [{"name": "postgres", "usage": {"cpu": "2", "memory": "1Gi"}}]


@pytest.mark.parametrize("path", ["shop/pods/web-3", "shop/pods/half-0", "data/pods/web-1"])
def test_stale_incomplete_or_unknown_pod_is_not_found(client: TestClient, path: str) -> None:
    body = assert_status(client.get(f"{API}/namespaces/{path}"), 404, "NotFound")
    assert body["details"]["kind"] == "pods"
    assert "no fresh metrics" in body["message"]


def test_pods_are_selected_by_their_labels(client: TestClient) -> None:
    canary = ok(client.get(f"{API}/namespaces/shop/pods", params={"labelSelector": "tier=canary"}))
    assert sorted(usages(canary)) == ["shop/web-2"]
    web = ok(client.get(f"{API}/pods", params={"labelSelector": "app in (web,db)"}))
    assert sorted(usages(web)) == ["data/db-0", "shop/web-1", "shop/web-2"]
    none = ok(client.get(f"{API}/pods", params={"labelSelector": "app=none"}))
    assert none["items"] == []


def test_pods_are_selected_by_name_and_namespace_fields(client: TestClient) -> None:
    in_data = ok(client.get(f"{API}/pods", params={"fieldSelector": "metadata.namespace=data"}))
    assert sorted(usages(in_data)) == ["data/db-0"]
    not_web_1 = ok(
        client.get(f"{API}/namespaces/shop/pods", params={"fieldSelector": "metadata.name!=web-1"})
    )
    assert sorted(usages(not_web_1)) == ["shop/web-2"]
    assert ok(client.get(f"{API}/namespaces/empty/pods"))["items"] == []


def test_a_pod_name_longer_than_a_label_value_is_served() -> None:
    # Pod names are DNS subdomains (253 characters); label values stop at 63.
    name = "checkout-" + "a" * 50 + ".canary-" + "b" * 30
    assert len(name) > 63
    store = filled_store()
    container(store, "long", name, "app", 0.5, 32 * _MI)
    with TestClient(make_app(store=store)) as long_client:
        one = ok(long_client.get(f"{API}/namespaces/long/pods/{name}"))
        assert one["containers"] == [{"name": "app", "usage": {"cpu": "500m", "memory": "32Mi"}}]
        listed = ok(long_client.get(f"{API}/namespaces/long/pods"))
        assert usages(listed) == {f"long/{name}": {"app": {"cpu": "500m", "memory": "32Mi"}}}


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/pods", {"fieldSelector": "spec.nodeName=n1"}),
        ("/pods", {"labelSelector": "app in (web"}),
        ("/pods", {"labelSelector": "a=" + "b" * 300}),
        ("/namespaces/Shop/pods", {}),
        ("/namespaces/shop/pods/Web_1", {}),
        ("/nodes/n..1", {}),
        ("/pods", {"fieldSelector": "metadata.namespace=NOT_A_NAMESPACE"}),
    ],
)
def test_bad_requests_are_400_statuses(
    client: TestClient, path: str, params: dict[str, str]
) -> None:
    assert_status(client.get(API + path, params=params), 400, "BadRequest")

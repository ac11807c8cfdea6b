"""The analysis API (``analysis.kubepulse.io/v1alpha1``) through HTTP.

FastAPI's TestClient over the real :class:`~adapter.analysis.service.AnalysisService`,
with a recorded cluster (pods, a node, a quota built from API-shaped objects) standing
in for the informer and a fixed :class:`~kubepulse.analysis.inputs.UsageHistory` for the
history source: the informer and the stores have tests of their own, here it is the
routing, validation, discovery and error shapes that are checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest
from fastapi import FastAPI

from adapter.analysis.service import AnalysisService
from adapter.app import create_app
from adapter.objects import InMemoryObjectResolver
from adapter.sources.embedded import EmbeddedSource
from kubepulse.analysis.inputs import ClusterSnapshot, ContainerRef, TimeSeries, UsageHistory
from kubepulse.analysis.registry import ANALYSES
from kubepulse.errors import KubepulseError
from kubepulse.model import Namespace, Node, Pod, ResourceQuota
from kubepulse.store import TimeSeriesStore
from tests.unit.adapter.api.client import TestClient

NOW = 1_700_000_000_000
GROUP = "/apis/analysis.kubepulse.io/v1alpha1"
_MI = 2**20


def _pod(name: str, node: str, memory_request: str, *, owner: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": f"uid-{name}",
            "labels": {"app": owner, "pod-template-hash": "5d9f7"},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{owner}-5d9f7",
                 "uid": f"rs-{owner}", "controller": True}
            ],
            "creationTimestamp": "2023-11-14T20:00:00Z",
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {"name": "app", "image": "app:1",
                 "resources": {"requests": {"cpu": "100m", "memory": memory_request},
                               "limits": {"cpu": "200m", "memory": "256Mi"}}}
            ],
        },
        "status": {"phase": "Running", "qosClass": "Burstable",
                   "startTime": "2023-11-14T20:00:00Z"},
    }  # fmt: skip


def snapshot() -> ClusterSnapshot:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-a", "uid": "node-a"},
        "status": {
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "compute", "namespace": "shop", "uid": "q1"},
        "spec": {"hard": {"pods": "4"}},
        "status": {"hard": {"pods": "4"}, "used": {"pods": "2"}},
    }
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    return ClusterSnapshot(
        taken_at_ms=NOW,
        nodes=(Node.from_api(node),),
        pods=(
            Pod.from_api(_pod("web-5d9f7-a", "node-a", "128Mi")),
            Pod.from_api(_pod("web-5d9f7-b", "node-a", "128Mi")),
        ),
        namespaces=(Namespace.from_api(namespace),),
        quotas=(ResourceQuota.from_api(quota),),
    )


def _series(value: float, start_ms: int) -> TimeSeries:
    return TimeSeries.of((t, value) for t in range(start_ms, NOW + 1, 15_000))


class FixedHistory:
    """A history source that returns the same measurements for any range."""

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.calls: list[tuple[int, int, tuple[str, ...] | None]] = []

    def fetch(
        self, start_ms: int, end_ms: int, namespaces: Iterable[str] | None = None
    ) -> UsageHistory:
        self.calls.append((start_ms, end_ms, None if namespaces is None else tuple(namespaces)))
        if self.down:
            raise KubepulseError("Prometheus at http://127.0.0.1:1 did not answer")
        refs = [ContainerRef("shop", pod, "app") for pod in ("web-5d9f7-a", "web-5d9f7-b")]
        return UsageHistory(
            start_ms=start_ms,
            end_ms=end_ms,
            cpu_cores={ref: _series(0.19, start_ms) for ref in refs},
            memory_working_set_bytes={ref: _series(200 * _MI, start_ms) for ref in refs},
        )


class View:
    def __init__(self, *, synced: bool = True) -> None:
        self.is_synced = synced

    def synced(self) -> bool:
        return self.is_synced

    def snapshot(self) -> ClusterSnapshot:
        return snapshot()

    def autoscalers(self) -> tuple[Mapping[str, Any], ...]:
        return ()


def app_for(view: View, history: FixedHistory) -> FastAPI:
    return create_app(
        source=EmbeddedSource(TimeSeriesStore(), clock=lambda: NOW),
        objects=InMemoryObjectResolver(),
        clock=lambda: NOW,
        analysis=AnalysisService(view, history),
    )


def client_for(view: View, history: FixedHistory) -> TestClient:
    return TestClient(app_for(view, history))


@pytest.fixture
def history() -> FixedHistory:
    return FixedHistory()


@pytest.fixture
def client(history: FixedHistory) -> Iterator[TestClient]:
    with client_for(View(), history) as test_client:
        yield test_client


def _status(response: Any, code: int, reason: str, fragment: str) -> None:
    assert response.status_code == code, response.text
    body = response.json()
    assert (body["kind"], body["status"], body["code"], body["reason"]) == (
        "Status",
        "Failure",
        code,
        reason,
    )
    assert fragment in body["message"], body["message"]


def test_discovery_lists_every_analysis(client: TestClient) -> None:
    groups = client.get("/apis").json()["groups"]
    assert "analysis.kubepulse.io" in [group["name"] for group in groups]
    resources = client.get(GROUP).json()
    assert resources["kind"] == "APIResourceList"
    by_name = {resource["name"]: resource for resource in resources["resources"]}
    assert set(by_name) == {analysis.resource for analysis in ANALYSES}
    assert by_name["nodepressure"]["namespaced"] is False
    assert by_name["reports"]["namespaced"] is True
    assert by_name["hpametrics"]["verbs"] == ["get"]


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/limitbreaches", "LimitBreachReport"),
        ("/namespaces/shop/limitbreaches?thresholdPercent=80&timeWindow=10m", "LimitBreachReport"),
        ("/nodepressure?includeSchedulingHints=true", "NodePressureReport"),
        ("/fragmentation?shapeCpu=500m&shapeMemory=1Gi", "FragmentationReport"),
        ("/quotas", "QuotaReport"),
        ("/namespaces/shop/reports", "NamespaceReport"),
        ("/namespaces/shop/recommendations?target=cost", "RecommendationReport"),
        ("/namespaces/shop/hpametrics/web?metricType=cpu&aggregation=p95", "HpaMetricsReport"),
    ],
)
def test_each_analysis_answers_its_kind(client: TestClient, path: str, kind: str) -> None:
    response = client.get(GROUP + path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == kind
    assert body["apiVersion"] == "analysis.kubepulse.io/v1alpha1"
    assert body["metadata"]["snapshotTimestamp"] == "2023-11-14T22:13:20Z"
    assert "_" not in "".join(key for key in body if key != "metadata"), "camelCase fields"


def test_history_is_asked_for_the_window_and_namespace(
    client: TestClient, history: FixedHistory
) -> None:
    client.get(GROUP + "/namespaces/shop/limitbreaches?timeWindow=10m")
    assert history.calls[-1] == (NOW - 600_000, NOW, ("shop",))


@pytest.mark.parametrize(
    ("path", "code", "reason", "fragment"),
    [
        ("/limitbreaches?thresholdPercent=150", 400, "BadRequest",
         "thresholdPercent must be between 1 and 100"),
        ("/limitbreaches?timeWindow=2y", 400, "BadRequest", "timeWindow"),
        ("/limitbreaches?bogus=1", 400, "BadRequest", "has no parameter 'bogus'"),
        ("/namespaces/shop/recommendations?target=cheap", 400, "BadRequest",
         "balanced, performance, cost"),
        ("/namespaces/nowhere/reports", 404, "NotFound", "namespace 'nowhere' not found"),
        ("/namespaces/shop/hpametrics/nothing", 404, "NotFound", "nothing"),
        ("/nodepressure?node=node-z", 404, "NotFound", "node-z"),
        ("/unknownthings", 404, "NotFound", ""),
    ],
)  # fmt: skip
def test_bad_requests_get_status_objects(
    client: TestClient, path: str, code: int, reason: str, fragment: str
) -> None:
    _status(client.get(GROUP + path), code, reason, fragment)


def test_not_synced_or_history_down_is_503() -> None:
    with client_for(View(synced=False), FixedHistory()) as client:
        _status(client.get(GROUP + "/nodepressure"), 503, "ServiceUnavailable", "retry")
    with client_for(View(), FixedHistory(down=True)) as client:
        _status(
            client.get(GROUP + "/nodepressure"),
            503,
            "ServiceUnavailable",
            "cannot read usage history",
        )


def test_openapi_describes_the_parameters() -> None:
    document = app_for(View(), FixedHistory()).openapi()
    operation = document["paths"][f"{GROUP}/limitbreaches"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert parameters["thresholdPercent"]["schema"] == {
        "type": "number",
        "minimum": 1.0,
        "maximum": 100.0,
        "default": "90",
    }
    assert operation["x-kubepulse-kind"] == "LimitBreachReport"

"""The analysis API (``analysis.kubepulse.io/v1alpha1``) through HTTP.

FastAPI's TestClient over the real :class:`~adapter.analysis.service.AnalysisService`,
with a recorded cluster (pods, a node, a quota built from API-shaped objects) standing
in for the informer and a fixed :class:`~kubepulse.analysis.inputs.UsageHistory` for the
history source: the informer and the stores have tests of their own, here it is the
routing, validation, discovery and error shapes that are checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from adapter.analysis.service import AnalysisService
from adapter.app import create_app
from adapter.objects import InMemoryObjectResolver
from adapter.sources.embedded import EmbeddedSource
from kubepulse.analysis.registry import ANALYSES
from kubepulse.store import TimeSeriesStore
from tests.unit.adapter.api.client import TestClient
from tests.unit.analysis.small_cluster import NOW, FixedHistory
from tests.unit.analysis.small_cluster import SmallClusterView as View

GROUP = "/apis/analysis.kubepulse.io/v1alpha1"


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
        ("/limitbreaches?top=2.5", 400, "BadRequest", "top must be a whole number, got '2.5'"),
        ("/limitbreaches?top=0", 400, "BadRequest", "top must be between 1 and 100000, got 0"),
        ("/recommendations?top=many", 400, "BadRequest", "top must be a whole number"),
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
    forbidden = {"resourcequotas": "403 Forbidden: grant list on resourcequotas"}
    with client_for(View(synced=False, failing=forbidden), FixedHistory()) as client:
        _status(
            client.get(GROUP + "/nodepressure"),
            503,
            "ServiceUnavailable",
            "resourcequotas: 403 Forbidden: grant list on resourcequotas",
        )
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


def test_top_cuts_every_list_and_says_how_long_each_was(client: TestClient) -> None:
    full = client.get(GROUP + "/limitbreaches").json()
    cut = client.get(GROUP + "/limitbreaches?top=1").json()
    assert (full["settings"]["top"], cut["settings"]["top"]) == (None, 1)
    assert full["truncated"] == {}
    lists = [key for key, value in full.items() if isinstance(value, list)]
    assert "containerEfficiency" in lists
    for name in lists:
        assert cut[name] == full[name][:1], name
        if len(full[name]) > 1:
            assert cut["truncated"][name] == len(full[name]), name
        else:
            assert name not in cut["truncated"], name
    assert cut["truncated"], "the small cluster has lists longer than one item"
    assert cut["summary"] == full["summary"], "counts cover every item"


def test_top_reaches_the_recommendations(client: TestClient) -> None:
    """The small cluster has one workload: nothing to cut, but ``top`` is echoed.

    Which workloads are kept is tested in tests/unit/analysis/test_recommend.py.
    """
    full = client.get(GROUP + "/recommendations").json()
    cut = client.get(GROUP + "/recommendations?top=1").json()
    assert (full["top"], cut["top"]) == (None, 1)
    assert cut["workloads"] == full["workloads"]
    assert cut["truncated"] == {}


def test_top_cuts_the_eviction_ranking(client: TestClient) -> None:
    full = client.get(GROUP + "/nodepressure").json()
    cut = client.get(GROUP + "/nodepressure?top=1").json()
    assert (full["top"], cut["top"]) == (None, 1)
    assert len(full["evictionRanking"]) > 1, "the small cluster ranks more than one pod"
    assert cut["evictionRanking"] == full["evictionRanking"][:1]
    assert cut["truncated"] == {"evictionRanking": len(full["evictionRanking"])}
    assert cut["nodes"] == full["nodes"], "node figures cover every pod"


def test_openapi_says_top_is_a_whole_number() -> None:
    document = app_for(View(), FixedHistory()).openapi()
    for resource in ("limitbreaches", "recommendations", "nodepressure"):
        operation = document["paths"][f"{GROUP}/{resource}"]["get"]
        parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
        assert parameters["top"]["schema"] == {
            "type": "integer",
            "minimum": 1,
            "maximum": 100000,
        }

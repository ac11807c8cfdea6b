"""ClusterInformer against an in-memory kube-apiserver (``httpx.MockTransport``).

kube-apiserver is mocked so that watch events, 410s and errors arrive exactly when the
test says; tests/e2e/test_collect.py runs the informer against a real control plane.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

import kubepulse.collect.informer as informer_module
from kubepulse.collect.informer import ClusterInformer
from kubepulse.collect.lister import RESOURCE_KINDS
from tests.unit.collect.fakeapi import END, FakeAPIServer, connection, pod

PODS = "/api/v1/pods"
DEPLOYMENTS = "/apis/apps/v1/deployments"
HPAS = "/apis/autoscaling/v2/horizontalpodautoscalers"


def _eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not become true in time")
        time.sleep(0.01)


@pytest.fixture
def fake() -> FakeAPIServer:
    server = FakeAPIServer()
    for kind in RESOURCE_KINDS:
        server.collections[kind.collection_path()] = []
    server.collections[PODS] = [pod("a", version=5), pod("b", version=6)]
    server.collections["/api/v1/nodes"] = [{"metadata": {"name": "node-1", "uid": "n1"}}]
    return server


@pytest.fixture
def informer(fake: FakeAPIServer) -> Iterator[ClusterInformer]:
    informer = ClusterInformer(connection(), transport=fake.transport(), page_size=1)
    informer.start()
    try:
        yield informer
    finally:
        fake.stopped.set()
        informer.close()


def _pod_names(informer: ClusterInformer) -> list[str]:
    return [p.name for p in informer.snapshot().pods]


def test_it_lists_every_kind_then_watches_from_the_list_version(
    fake: FakeAPIServer, informer: ClusterInformer
) -> None:
    assert informer.wait_synced(5)
    assert informer.synced()
    snapshot = informer.snapshot()
    assert [p.name for p in snapshot.pods] == ["a", "b"]
    assert [n.name for n in snapshot.nodes] == ["node-1"]
    assert len(fake.list_requests(PODS)) == 2  # page_size=1: two pages
    _eventually(lambda: len(fake.watch_requests(PODS)) == 1)
    watch = fake.watch_requests(PODS)[0].url.params
    assert watch["resourceVersion"] == "100"
    assert watch["allowWatchBookmarks"] == "true"
    assert informer.problems() == {}


def test_events_keep_the_snapshot_current(fake: FakeAPIServer, informer: ClusterInformer) -> None:
    assert informer.wait_synced(5)
    first = informer.snapshot()
    assert informer.snapshot() is first  # nothing changed: the same copy
    fake.push(PODS, {"type": "ADDED", "object": pod("c", version=101)})
    _eventually(lambda: _pod_names(informer) == ["a", "b", "c"])
    fake.push(PODS, {"type": "DELETED", "object": pod("a", version=102)})
    _eventually(lambda: _pod_names(informer) == ["b", "c"])
    moved = pod("b", version=103)
    moved["spec"]["nodeName"] = "node-2"
    fake.push(PODS, {"type": "MODIFIED", "object": moved})
    _eventually(lambda: informer.snapshot().pods[0].node_name == "node-2")
    fake.push(PODS, {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "150"}}})
    _eventually(lambda: informer.resource_versions()["pods"] == "150")
    assert [p.name for p in first.pods] == ["a", "b"]  # an older snapshot never changes


def test_a_410_error_event_relists_and_drops_what_was_deleted_meanwhile(
    fake: FakeAPIServer, informer: ClusterInformer
) -> None:
    assert informer.wait_synced(5)
    _eventually(lambda: len(fake.watch_requests(PODS)) == 1)
    fake.collections[PODS] = [pod("b", version=6), pod("d", version=140)]
    fake.resource_version = 140
    fake.push(
        PODS, {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
    )
    _eventually(lambda: _pod_names(informer) == ["b", "d"])
    assert informer.list_counts()["pods"] == 2
    _eventually(lambda: len(fake.watch_requests(PODS)) == 2)
    assert fake.watch_requests(PODS)[1].url.params["resourceVersion"] == "140"


def test_a_410_answer_to_the_watch_request_relists(fake: FakeAPIServer) -> None:
    fake.gone_watches[PODS] = 1
    informer = ClusterInformer(connection(), transport=fake.transport())
    informer.start()
    try:
        assert informer.wait_synced(5)
        _eventually(lambda: informer.list_counts()["pods"] == 2)
        _eventually(lambda: len(fake.watch_requests(PODS)) == 2)
    finally:
        fake.stopped.set()
        informer.close()


def test_an_ended_watch_resumes_from_the_last_version(
    fake: FakeAPIServer, informer: ClusterInformer
) -> None:
    assert informer.wait_synced(5)
    fake.push(PODS, {"type": "ADDED", "object": pod("c", version=120)})
    fake.push(PODS, END)
    _eventually(lambda: len(fake.watch_requests(PODS)) == 2)
    assert fake.watch_requests(PODS)[1].url.params["resourceVersion"] == "120"
    assert informer.list_counts()["pods"] == 1


def test_autoscalers_stay_raw_and_workloads_are_typed(fake: FakeAPIServer) -> None:
    hpa = {
        "metadata": {"name": "web", "namespace": "shop", "uid": "h1", "resourceVersion": "3"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu"}}],
        },
    }
    deployment = {
        "metadata": {"name": "web", "namespace": "shop", "uid": "d1", "resourceVersion": "4"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "app"}, {"name": "proxy"}]}},
        },
    }
    fake.collections[HPAS] = [hpa]
    fake.collections[DEPLOYMENTS] = [deployment]
    informer = ClusterInformer(connection(), transport=fake.transport())
    informer.start()
    try:
        assert informer.wait_synced(5)
        (autoscaler,) = informer.autoscalers()
        assert autoscaler["spec"]["maxReplicas"] == 10
        (workload,) = informer.workloads()
        assert workload.key == "Deployment/shop/web"
        assert workload.replicas == 3
        assert workload.containers == ("app", "proxy")
        assert workload.selector == {"matchLabels": {"app": "web"}}
    finally:
        fake.stopped.set()
        informer.close()


def test_a_forbidden_kind_is_reported_and_keeps_it_unsynced(fake: FakeAPIServer) -> None:
    fake.forbidden.add("/api/v1/resourcequotas")
    informer = ClusterInformer(connection(), transport=fake.transport())
    informer.start()
    try:
        assert not informer.wait_synced(0.5)
        _eventually(lambda: "resourcequotas" in informer.problems())
        assert "list and watch on resourcequotas" in informer.problems()["resourcequotas"]
    finally:
        fake.stopped.set()
        informer.close()


def test_a_namespaced_informer_reads_namespaced_kinds_in_that_namespace(
    fake: FakeAPIServer,
) -> None:
    for kind in RESOURCE_KINDS:
        if kind.namespaced:
            fake.collections[kind.collection_path("shop")] = []
    informer = ClusterInformer(connection(), namespace="shop", transport=fake.transport())
    informer.start()
    try:
        assert informer.wait_synced(5)
        assert fake.list_requests("/api/v1/namespaces/shop/pods")
        assert fake.list_requests("/api/v1/nodes")
        assert not fake.list_requests(PODS)
    finally:
        fake.stopped.set()
        informer.close()


def test_a_closed_informer_cannot_start_again(fake: FakeAPIServer) -> None:
    informer = ClusterInformer(connection(), transport=fake.transport())
    informer.close()
    with pytest.raises(RuntimeError, match="closed"):
        informer.start()


def test_an_error_event_restarts_the_watch_with_backoff_from_the_same_version(
    fake: FakeAPIServer, informer: ClusterInformer
) -> None:
    assert informer.wait_synced(5)
    _eventually(lambda: len(fake.watch_requests(PODS)) == 1)
    fake.push(PODS, {"type": "ERROR", "object": {"kind": "Status", "code": 500, "message": "boom"}})
    _eventually(lambda: "boom" in informer.problems().get("pods", ""))
    _eventually(lambda: len(fake.watch_requests(PODS)) == 2)
    assert fake.watch_requests(PODS)[1].url.params["resourceVersion"] == "100"
    assert informer.list_counts()["pods"] == 1  # not a 410: no relist
    assert _pod_names(informer) == ["a", "b"]


@pytest.mark.parametrize("freeze", [True, False])
def test_the_first_sync_freezes_the_objects_once_per_process(
    monkeypatch: pytest.MonkeyPatch, freeze: bool
) -> None:
    """``gc.freeze`` is replaced by a counter: freezing the test process for real would
    keep it for the rest of the session."""
    calls: list[str] = []
    monkeypatch.setattr(informer_module, "_frozen_already", [])
    monkeypatch.setattr(informer_module.gc, "collect", lambda: calls.append("collect") or 0)
    monkeypatch.setattr(informer_module.gc, "freeze", lambda: calls.append("freeze"))
    for _ in range(2):
        server = FakeAPIServer()
        for kind in RESOURCE_KINDS:
            server.collections[kind.collection_path()] = []
        informer = ClusterInformer(
            connection(), transport=server.transport(), freeze_after_sync=freeze
        )
        informer.start()
        try:
            assert informer.wait_synced(5)
        finally:
            server.stopped.set()
            informer.close()
    assert calls == (["collect", "freeze"] if freeze else [])

"""collect_snapshot against an in-memory kube-apiserver (``httpx.MockTransport``).

kube-apiserver is mocked so that pages and unreadable objects are exactly as the test
says; tests/e2e/test_collect.py collects from a real control plane.
"""

from __future__ import annotations

import pytest

from kubepulse.collect.lister import RESOURCE_KINDS
from kubepulse.collect.snapshot import collect_snapshot
from kubepulse.collect.workloads import Workload
from kubepulse.kubeconnect import KubernetesAPIError
from kubepulse.model import ObjectError
from tests.unit.collect.fakeapi import FakeAPIServer, connection, pod


@pytest.fixture
def fake() -> FakeAPIServer:
    server = FakeAPIServer()
    for kind in RESOURCE_KINDS:
        server.collections[kind.collection_path()] = []
    return server


def test_it_collects_every_kind_and_reports_progress_per_page(fake: FakeAPIServer) -> None:
    fake.collections["/api/v1/pods"] = [pod(f"p{i}", "shop" if i % 2 else "web") for i in range(5)]
    fake.collections["/api/v1/nodes"] = [{"metadata": {"name": "node-1", "uid": "n1"}}]
    fake.collections["/api/v1/namespaces"] = [
        {"metadata": {"name": name, "uid": name}} for name in ("web", "shop")
    ]
    fake.collections["/apis/apps/v1/replicasets"] = [
        {
            "metadata": {
                "name": "web-1",
                "namespace": "web",
                "uid": "r1",
                "ownerReferences": [{"kind": "Deployment", "name": "web", "uid": "d1"}],
            },
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app"}]}}},
        }
    ]
    progress: list[tuple[str, int]] = []
    collected = collect_snapshot(
        connection(),
        progress=lambda kind, count: progress.append((kind, count)),
        page_size=2,
        transport=fake.transport(),
        clock=lambda: 1700000000.5,
    )
    snapshot = collected.snapshot
    assert snapshot.taken_at_ms == 1700000000500
    assert [(p.namespace, p.name) for p in snapshot.pods] == [
        ("shop", "p1"),
        ("shop", "p3"),
        ("web", "p0"),
        ("web", "p2"),
        ("web", "p4"),
    ]
    assert [n.name for n in snapshot.namespaces] == ["shop", "web"]
    assert [p for p in progress if p[0] == "pods"] == [("pods", 2), ("pods", 4), ("pods", 5)]
    assert {kind for kind, _ in progress} == {kind.resource for kind in RESOURCE_KINDS}
    (replica_set,) = collected.workloads
    assert replica_set.kind == "ReplicaSet"
    assert replica_set.owned_by("Deployment", "web")
    assert collected.rejected == ()
    assert collected.requests == len(fake.requests)


def test_namespaces_limit_the_namespaced_kinds_only(fake: FakeAPIServer) -> None:
    for namespace in ("a", "b"):
        for kind in RESOURCE_KINDS:
            if kind.namespaced:
                fake.collections[kind.collection_path(namespace)] = []
    fake.collections["/api/v1/namespaces/a/pods"] = [pod("x", "a")]
    fake.collections["/api/v1/namespaces/b/pods"] = [pod("y", "b"), pod("z", "b")]
    progress: list[tuple[str, int]] = []
    collected = collect_snapshot(
        connection(),
        namespaces=["a", "b"],
        progress=lambda kind, count: progress.append((kind, count)),
        transport=fake.transport(),
    )
    assert [p.name for p in collected.snapshot.pods] == ["x", "y", "z"]
    assert not fake.list_requests("/api/v1/pods")
    assert fake.list_requests("/api/v1/nodes")
    # counts add up across namespaces
    assert [p for p in progress if p[0] == "pods"] == [("pods", 1), ("pods", 3)]


def test_an_unreadable_object_is_skipped_and_named(fake: FakeAPIServer) -> None:
    broken = pod("broken")
    broken["spec"]["containers"] = [{"name": "app", "resources": {"limits": {"cpu": "lots"}}}]
    fake.collections["/api/v1/pods"] = [pod("fine"), broken]
    collected = collect_snapshot(connection(), transport=fake.transport())
    assert [p.name for p in collected.snapshot.pods] == ["fine"]
    (message,) = collected.rejected
    assert message.startswith("pods items[1]:")
    assert "limits.cpu" in message


def test_a_refused_list_is_raised(fake: FakeAPIServer) -> None:
    fake.forbidden.add("/api/v1/nodes")
    with pytest.raises(KubernetesAPIError, match="list and watch on nodes"):
        collect_snapshot(connection(), transport=fake.transport())


def test_a_workload_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ObjectError, match="expected one of Deployment"):
        Workload.from_api({"metadata": {"name": "x", "namespace": "y"}}, "DaemonSet")

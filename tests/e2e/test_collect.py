"""The collectors (kubepulse.collect) against the real control plane, with kwok pods.

What each test proves:

- a paged list with a small page size returns every one of a few hundred pods, in the
  number of pages the page size implies, and ``collect_snapshot`` parses them all and
  reports its progress per page;
- the informer sees creations and deletions through its watch, after one list;
- when the informer's resourceVersion has been compacted away in etcd while it was
  disconnected, it gets a real 410 on reconnecting, lists again and ends up exactly
  right (pods created and deleted meanwhile included). As in
  tests/e2e/test_exporter_podwatch.py, this needs a second kube-apiserver on the same
  etcd with ``--watch-cache=false``: the shared one's watch cache would serve the old
  resourceVersion instead of refusing it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from kubepulse.collect.informer import ClusterInformer
from kubepulse.collect.lister import ObjectLister
from kubepulse.collect.snapshot import collect_snapshot
from kubepulse.kubeconnect import KubernetesAPIError, load_cluster_connection
from tests.cluster.controlplane import ControlPlane, find_tool
from tests.e2e.conftest import missing_prerequisite
from tests.e2e.test_exporter_podwatch import (
    admin_kubeconfig,
    crash,
    etcdctl,
    free_port,
    start_uncached_apiserver,
)

pytestmark = pytest.mark.e2e

NodePool = Callable[[int], tuple[str, list[str]]]


def _eventually(condition: Callable[[], bool], *, timeout: float, description: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {description}")
        time.sleep(0.05)
    return time.monotonic() - start


def _pod_names(informer: ClusterInformer, namespace: str) -> set[str]:
    return {pod.name for pod in informer.snapshot().pods_in(namespace)}


def test_a_paged_list_returns_every_pod(
    cluster: ControlPlane,
    namespace: str,
    node_pool: NodePool,
    record_property: Callable[[str, object], None],
) -> None:
    _, nodes = node_pool(3)
    count, page_size = 300, 25
    cluster.create_pods(count, namespace=namespace, prefix="paged", node_names=nodes)
    connection = load_cluster_connection(cluster.kubeconfig)
    with ObjectLister(connection, page_size=page_size) as lister:
        result = lister.pods(namespace)
        on_first_node = lister.pods(namespace, field_selector=f"spec.nodeName={nodes[0]}")
    names = {item["metadata"]["name"] for item in result.items}
    assert names == {f"paged-{i}" for i in range(count)}
    assert result.pages == count // page_size  # the last page carries no continue token
    assert result.restarts == 0
    assert int(result.resource_version) > 0
    assert len(on_first_node.items) == count // 3

    progress: list[tuple[str, int]] = []
    started = time.monotonic()
    collected = collect_snapshot(
        connection,
        namespaces=[namespace],
        progress=lambda kind, so_far: progress.append((kind, so_far)),
        page_size=page_size,
    )
    seconds = time.monotonic() - started
    assert {pod.name for pod in collected.snapshot.pods} == names
    assert {node.name for node in collected.snapshot.nodes} >= set(nodes)
    assert namespace in {ns.name for ns in collected.snapshot.namespaces}
    assert collected.rejected == ()
    pod_progress = [so_far for kind, so_far in progress if kind == "pods"]
    assert pod_progress == list(range(page_size, count + 1, page_size))
    record_property("collect_snapshot_300_pods_s", round(seconds, 3))


def test_the_informer_sees_creations_and_deletions(
    cluster: ControlPlane, namespace: str, node_pool: NodePool
) -> None:
    _, nodes = node_pool(2)
    cluster.create_pods(40, namespace=namespace, prefix="before", node_names=nodes)
    connection = load_cluster_connection(cluster.kubeconfig)
    with ClusterInformer(connection, namespace=namespace, page_size=15) as informer:
        assert informer.wait_synced(60), informer.problems()
        assert _pod_names(informer, namespace) == {f"before-{i}" for i in range(40)}
        assert set(nodes) <= {node.name for node in informer.snapshot().nodes}

        cluster.create_pods(25, namespace=namespace, prefix="after", node_names=nodes)
        _eventually(
            lambda: len(_pod_names(informer, namespace)) == 65,
            timeout=60,
            description="the 25 new pods",
        )
        for i in range(10):
            cluster.request(
                "DELETE", f"/api/v1/namespaces/{namespace}/pods/before-{i}", ok=(200, 202)
            )
        _eventually(
            lambda: not {f"before-{i}" for i in range(10)} & _pod_names(informer, namespace),
            timeout=90,
            description="the 10 deleted pods to go",
        )
        assert len(_pod_names(informer, namespace)) == 55
        assert informer.list_counts()["pods"] == 1  # one list, then only the watch
        assert informer.problems() == {}


def test_a_compacted_resource_version_makes_the_informer_relist(
    cluster: ControlPlane,
    namespace: str,
    node_pool: NodePool,
    tmp_path: Path,
) -> None:
    if find_tool("etcdctl") is None:
        missing_prerequisite("etcdctl is missing: run scripts/install-test-tools.sh")
    _, (node,) = node_pool(1)
    cluster.create_pods(20, namespace=namespace, prefix="early", node_names=[node])
    port = free_port()
    log_path = cluster.logs_dir / f"kube-apiserver-uncached-{uuid.uuid4().hex[:6]}.log"
    server = start_uncached_apiserver(cluster, port, log_path)
    kubeconfig = admin_kubeconfig(
        cluster, tmp_path / "uncached.kubeconfig", f"https://127.0.0.1:{port}"
    )
    informer = ClusterInformer(load_cluster_connection(kubeconfig), namespace=namespace)
    informer.start()
    try:
        assert informer.wait_synced(60), informer.problems()
        assert len(_pod_names(informer, namespace)) == 20
        old_version = informer.resource_versions()["pods"]
        assert old_version is not None

        # The outage: the API server dies; the informer's watches fail and back off.
        crash(server)
        _eventually(
            lambda: "pods" in informer.problems(), timeout=60, description="the outage noticed"
        )
        # Meanwhile, through the session's API server: new pods, a deleted pod...
        cluster.create_pods(30, namespace=namespace, prefix="during", node_names=[node])
        cluster.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/early-0", ok=(200, 202))
        cluster.wait_until(
            lambda: (
                cluster.request(
                    "GET", f"/api/v1/namespaces/{namespace}/pods/early-0", ok=(200, 404)
                ).get("kind")
                == "Status"
            ),
            timeout=60,
            interval=0.2,
            description="early-0 deleted",
        )
        # ... and etcd compacts every revision up to now, the informer's included.
        status = json.loads(etcdctl(cluster, "endpoint", "status", "--write-out=json"))
        revision = int(status[0]["Status"]["header"]["revision"])
        assert int(old_version) < revision
        assert f"compacted revision {revision}" in etcdctl(cluster, "compact", str(revision))

        # The API server comes back on the same address; the informer recovers on its own.
        server = start_uncached_apiserver(cluster, port, log_path)
        _eventually(
            lambda: informer.list_counts()["pods"] >= 2 and not informer.problems(),
            timeout=120,
            description="the 410 and the relist",
        )
        expected = {f"early-{i}" for i in range(1, 20)} | {f"during-{i}" for i in range(30)}
        _eventually(
            lambda: _pod_names(informer, namespace) == expected,
            timeout=30,
            description="the relisted pods",
        )
        version = informer.resource_versions()["pods"]
        assert version is not None
        assert int(version) >= revision
        # and the watch goes on from there: a pod created now arrives by the watch.
        cluster.create_pods(1, namespace=namespace, prefix="late", node_names=[node])
        _eventually(
            lambda: "late-0" in _pod_names(informer, namespace),
            timeout=60,
            description="a pod created after the relist",
        )
    finally:
        informer.close()
        crash(server)


def test_a_context_that_does_not_exist_names_the_ones_that_do(cluster: ControlPlane) -> None:
    with pytest.raises(KubernetesAPIError, match="its contexts are"):
        load_cluster_connection(cluster.kubeconfig, "no-such-context")

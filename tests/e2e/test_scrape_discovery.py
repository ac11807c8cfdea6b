"""The adapter's scrape-target discovery against the real control plane.

`KubernetesTargetDiscovery` runs as in the adapter: its own client from the kubeconfig,
a cluster-wide list (in pages of two pods, so that continue tokens are followed) and
watch, and a second discovery limited to the test's namespace. What is proven:

- annotated kwok pods and an exporter-labelled pod become targets with the pod's IP,
  port, path, node and labels; pods that are not annotated, or ask for a port that is no
  number, do not (the latter is counted); nothing outside the namespace leaks into the
  namespaced discovery;
- a pod created later appears, a relabelled pod's target carries the new labels, and a
  deleted pod's target goes away, each through the watch; the delays are printed.

kwok's pod IPs (10.244.0.0/16) are not real, so nothing is scraped here: the scraper
itself is tested on loopback in tests/integration/test_scraper.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes.client
import kubernetes.config
import pytest

from adapter.scrape.targets import (
    DiscoverySettings,
    KubernetesTargetDiscovery,
    Target,
    TargetRole,
)
from tests.cluster.controlplane import ControlPlane

pytestmark = pytest.mark.e2e

NodePool = Callable[[int], tuple[str, list[str]]]
SCRAPE_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": "8080",
    "prometheus.io/path": "/stats",
}


@pytest.fixture
def api_client(cluster: ControlPlane) -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
    yield client
    client.close()


def in_namespace(discovery: KubernetesTargetDiscovery, namespace: str) -> dict[str, Target]:
    return {
        target.pod: target
        for target in discovery.targets()
        if target.namespace == namespace and target.pod is not None
    }


def pod_ips(cluster: ControlPlane, namespace: str) -> dict[str, str]:
    pods: Any = cluster.request("GET", f"/api/v1/namespaces/{namespace}/pods")
    return {item["metadata"]["name"]: item["status"].get("podIP", "") for item in pods["items"]}


def wait_for(cluster: ControlPlane, condition: Callable[[], bool], description: str) -> float:
    """Poll quickly (the watch is fast); the seconds it took."""
    started = time.monotonic()
    cluster.wait_until(
        lambda: condition() or None, timeout=60, description=description, interval=0.05
    )
    return time.monotonic() - started


def test_annotated_pods_become_targets_and_leave_with_their_pods(
    cluster: ControlPlane,
    namespace: str,
    node_pool: NodePool,
    api_client: kubernetes.client.ApiClient,
) -> None:
    _, nodes = node_pool(2)
    cluster.create_pods(
        3,
        namespace=namespace,
        prefix="web",
        labels={"app": "web", "tier": "frontend"},
        annotations=SCRAPE_ANNOTATIONS,
        node_names=nodes,
    )
    cluster.create_pods(1, namespace=namespace, prefix="plain", node_names=nodes)
    cluster.create_pods(
        1,
        namespace=namespace,
        prefix="bad",
        annotations={"prometheus.io/scrape": "true", "prometheus.io/port": "http"},
        node_names=nodes,
    )
    cluster.create_pods(
        1,
        namespace=namespace,
        prefix="kubepulse-exporter",
        labels={"app.kubernetes.io/name": "kubepulse-exporter"},
        node_names=nodes,
    )
    cluster.wait_for_pods_running(namespace, 6)

    cluster_wide = KubernetesTargetDiscovery(
        api_client, DiscoverySettings(page_size=2, watch_timeout_seconds=30)
    )
    namespaced = KubernetesTargetDiscovery(api_client, DiscoverySettings(namespaces=(namespace,)))
    with cluster_wide, namespaced:
        listed = wait_for(
            cluster,
            lambda: (
                cluster_wide.synced
                and namespaced.synced
                and len(in_namespace(cluster_wide, namespace)) == 4
                and len(in_namespace(namespaced, namespace)) == 4
            ),
            "both discoveries list the namespace's four targets",
        )
        ips = pod_ips(cluster, namespace)
        targets = in_namespace(cluster_wide, namespace)
        assert in_namespace(namespaced, namespace) == targets
        assert {target.namespace for target in namespaced.targets()} == {namespace}
        assert sorted(targets) == ["kubepulse-exporter-0", "web-0", "web-1", "web-2"]
        for index in range(3):
            web = targets[f"web-{index}"]
            assert web.role is TargetRole.POD
            assert web.url == f"http://{ips[web.pod or '']}:8080/stats"
            assert web.node == nodes[index % 2]
            assert dict(web.pod_labels) == {"app": "web", "tier": "frontend"}
            assert web.pod_uid
        exporter = targets["kubepulse-exporter-0"]
        assert exporter.role is TargetRole.EXPORTER
        assert exporter.url == f"http://{ips['kubepulse-exporter-0']}:9847/metrics"
        assert cluster_wide.errors.get("invalid_pod", 0) >= 1  # bad-0: port "http"
        assert namespaced.errors.get("invalid_pod") == 1

        # A pod created later arrives through the watch.
        cluster.create_pods(
            1,
            namespace=namespace,
            prefix="late",
            annotations=SCRAPE_ANNOTATIONS,
            node_names=nodes,
        )
        added = wait_for(
            cluster,
            lambda: (
                "late-0" in in_namespace(cluster_wide, namespace)
                and "late-0" in in_namespace(namespaced, namespace)
            ),
            "the late pod's target",
        )

        # New labels reach the target.
        cluster.kubectl("label", "pod", "-n", namespace, "web-1", "tier=backend", "--overwrite")
        relabelled = wait_for(
            cluster,
            lambda: (
                in_namespace(cluster_wide, namespace)["web-1"].pod_labels.get("tier") == "backend"
            ),
            "web-1's new label on its target",
        )

        # A deleted pod's target goes away.
        cluster.kubectl("delete", "pod", "-n", namespace, "web-0", "--wait=false")
        removed = wait_for(
            cluster,
            lambda: (
                "web-0" not in in_namespace(cluster_wide, namespace)
                and "web-0" not in in_namespace(namespaced, namespace)
            ),
            "web-0's target to go away",
        )
        assert sorted(in_namespace(namespaced, namespace)) == [
            "kubepulse-exporter-0",
            "late-0",
            "web-1",
            "web-2",
        ]
        assert cluster_wide.errors.get("list", 0) == 0
        assert cluster_wide.errors.get("watch", 0) == 0
    print(
        f"\ndiscovery: listed in {listed:.2f} s, a new pod seen in {added:.2f} s, a label "
        f"change in {relabelled:.2f} s, a deletion in {removed:.2f} s"
    )

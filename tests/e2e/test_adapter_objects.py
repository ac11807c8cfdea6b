"""The adapter's Kubernetes object resolver against the real control plane.

The resolver keeps its own pod cache from a list and watch of kube-apiserver and reads
workloads, nodes and namespaces with GETs; these tests check its answers against what
the real API holds: pods by label selector, a Deployment's pods (created by the real
ReplicaSet controller, scheduled by kube-scheduler onto kwok nodes), nodes by label, a
namespace, and that changes (a relabelled pod, a deleted pod) reach the cache.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import kubernetes.client
import pytest

from adapter.objects import (
    DEPLOYMENTS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    KubernetesObjectResolver,
    ObjectNotFoundError,
    ResolvedObject,
)
from adapter.security.kubeapi import load_cluster_connection
from kubepulse.selector import LabelSelector, parse_selector
from tests.cluster.controlplane import ControlPlane

pytestmark = pytest.mark.e2e

REPLICAS = 3
POOL_LABEL = "kubepulse.io/pool"


def deployment(name: str, pool: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"tier": "front"}},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {POOL_LABEL: pool},
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                },
            },
        },
    }


def api_pod_names(cluster: ControlPlane, namespace: str, selector: str) -> set[str]:
    core = kubernetes.client.CoreV1Api(cluster.api_client)
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return {str(pod.metadata.name) for pod in pods if pod.metadata is not None}


async def eventually(condition: Callable[[], Any], description: str, timeout: float = 60.0) -> Any:
    """Await ``condition()`` (a coroutine function) until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = await condition()
        if last:
            return last
        await asyncio.sleep(0.2)
    pytest.fail(f"timed out waiting for {description}; last answer {last!r}", pytrace=False)


def names(resolved: list[ResolvedObject]) -> set[str]:
    return {item.ref.name for item in resolved}


def test_the_resolver_follows_the_real_api(
    cluster: ControlPlane,
    namespace: str,
    node_pool: Callable[[int], tuple[str, list[str]]],
) -> None:
    pool, node_names = node_pool(2)
    cluster.create_pods(
        3, namespace=namespace, prefix="solo", labels={"app": "solo", "track": "stable"}
    )
    cluster.create_pods(1, namespace=namespace, prefix="other", labels={"app": "other"})
    cluster.kubectl(
        "create",
        f"--namespace={namespace}",
        "-f",
        "-",
        input_text=json.dumps(deployment("web", pool)),
    )
    connection = load_cluster_connection(cluster.kubeconfig)
    everything = LabelSelector()

    async def scenario() -> None:
        async with KubernetesObjectResolver(connection, cache_ttl_s=0.5) as resolver:
            await resolver.wait_until_synced(30)

            async def solo_pods() -> set[str]:
                resolved = await resolver.resolve(PODS, namespace, None, parse_selector("app=solo"))
                return names(resolved)

            assert await eventually(solo_pods, "the three solo pods") == {
                "solo-0",
                "solo-1",
                "solo-2",
            }
            assert await solo_pods() == api_pod_names(cluster, namespace, "app=solo")
            stable = await resolver.resolve(
                PODS, namespace, None, parse_selector("track=stable,app notin (other)")
            )
            assert names(stable) == {"solo-0", "solo-1", "solo-2"}
            (one,) = await resolver.resolve(PODS, namespace, "other-0", parse_selector("app=solo"))
            assert one.pods == frozenset({"other-0"})

            # The ReplicaSet controller creates the Deployment's pods; the resolver finds
            # them through the Deployment's spec.selector, as the HPA's scale target does.
            async def deployment_pods() -> frozenset[str] | None:
                (web,) = await resolver.resolve(DEPLOYMENTS, namespace, "web", everything)
                return web.pods if web.pods is not None and len(web.pods) == REPLICAS else None

            web_pods = await eventually(deployment_pods, f"{REPLICAS} pods of Deployment web")
            assert web_pods == api_pod_names(cluster, namespace, "app=web")
            listed = await resolver.resolve(
                DEPLOYMENTS, namespace, None, parse_selector("tier=front")
            )
            assert names(listed) == {"web"}
            (replica_set,) = await resolver.resolve(REPLICASETS, namespace, None, everything)
            assert replica_set.pods == web_pods

            nodes = await resolver.resolve(
                NODES, None, None, parse_selector(f"{POOL_LABEL}={pool}")
            )
            assert names(nodes) == set(node_names)
            (space,) = await resolver.resolve(NAMESPACES, None, namespace, everything)
            assert space.ref.name == namespace
            with pytest.raises(ObjectNotFoundError):
                await resolver.resolve(DEPLOYMENTS, namespace, "nope", everything)
            with pytest.raises(ObjectNotFoundError):
                await resolver.resolve(PODS, namespace, "nope", everything)

            # Changes arrive through the watch.
            await asyncio.to_thread(
                cluster.kubectl,
                "label",
                f"--namespace={namespace}",
                "pod",
                "solo-0",
                "app=moved",
                "--overwrite",
            )
            await asyncio.to_thread(
                cluster.request,
                "DELETE",
                f"/api/v1/namespaces/{namespace}/pods/solo-1",
                params={"gracePeriodSeconds": "0"},
                ok=(200, 202),
            )

            async def after_changes() -> bool:
                return await solo_pods() == {"solo-2"}

            await eventually(after_changes, "solo-0 relabelled and solo-1 deleted")
            moved = await resolver.resolve(PODS, namespace, None, parse_selector("app=moved"))
            assert names(moved) == {"solo-0"}

    asyncio.run(scenario())

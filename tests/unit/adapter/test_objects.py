"""Object resolution: the rules (in memory) and the Kubernetes resolver against a fake API.

The fake kube-apiserver sits behind ``httpx.MockTransport``: it pages pod lists, streams
watch events the test pushes, answers workload, node and namespace reads from tables,
and records every request. The real control plane is exercised by
``tests/e2e/test_adapter_objects.py``.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from adapter.objects import (
    DEPLOYMENTS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    STATEFULSETS,
    InMemoryObjectResolver,
    KubernetesObjectResolver,
    ObjectNotFoundError,
    ObjectRef,
    ObjectResolver,
    ObjectsUnavailableError,
    ResolvedObject,
    UnknownResourceError,
    parse_resource,
)
from adapter.security.kubeapi import ClusterConnection
from kubepulse.selector import LabelSelector, parse_selector

EVERYTHING = LabelSelector()


def pod(
    name: str, labels: dict[str, str], namespace: str = "shop", phase: str = "Running"
) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "resourceVersion": "1",
        },
        "status": {"phase": phase},
    }


def workload(
    kind: str,
    name: str,
    selector: dict[str, Any] | None,
    namespace: str = "shop",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec = {} if selector is None else {"selector": selector}
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": spec,
    }


def cluster_object(kind: str, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "labels": labels or {}}}


OBJECTS = [
    pod("web-1", {"app": "web", "track": "stable"}),
    pod("web-2", {"app": "web", "track": "canary"}),
    pod("web-old", {"app": "web"}, phase="Succeeded"),
    pod("db-0", {"app": "db"}),
    pod("web-1", {"app": "web"}, namespace="other"),
    workload("Deployment", "web", {"matchLabels": {"app": "web"}}, labels={"tier": "front"}),
    workload(
        "Deployment",
        "canary",
        {"matchExpressions": [{"key": "track", "operator": "In", "values": ["canary"]}]},
    ),
    workload("Deployment", "orphan", None),
    workload("StatefulSet", "db", {"matchLabels": {"app": "db"}}),
    workload("ReplicaSet", "web-5d8f", {"matchLabels": {"app": "web", "track": "stable"}}),
    cluster_object("Node", "n1", {"pool": "a"}),
    cluster_object("Node", "n2", {"pool": "b"}),
    cluster_object("Namespace", "shop", {"team": "x"}),
    cluster_object("Namespace", "other"),
    cluster_object("Service", "ignored"),
]


def names(resolved: list[ResolvedObject]) -> list[str]:
    return [item.ref.name for item in resolved]


# ---------------------------------------------------------------------- the rules


@pytest.fixture
def memory() -> InMemoryObjectResolver:
    return InMemoryObjectResolver(OBJECTS)


def test_parse_resource_knows_group_resources_and_bare_plurals() -> None:
    assert parse_resource("pods") is PODS
    assert parse_resource("deployments.apps") is DEPLOYMENTS
    assert parse_resource("deployments") is DEPLOYMENTS
    assert parse_resource("statefulsets.apps") is STATEFULSETS
    assert parse_resource("replicasets.apps") is REPLICASETS
    assert parse_resource("nodes") is NODES
    assert parse_resource("namespaces") is NAMESPACES
    assert DEPLOYMENTS.api_version == "apps/v1"
    assert PODS.api_version == "v1"
    assert DEPLOYMENTS.collection_path("shop") == "/apis/apps/v1/namespaces/shop/deployments"
    assert NODES.collection_path(None) == "/api/v1/nodes"
    for unknown in ("services", "Pods", "deployments.extensions", ""):
        with pytest.raises(UnknownResourceError, match=r"pods, deployments\.apps"):
            parse_resource(unknown)


@pytest.mark.parametrize(
    ("resource", "namespace", "name", "selector", "expected"),
    [
        (PODS, "shop", None, "", [("db-0", {"db-0"}), ("web-1", {"web-1"}), ("web-2", {"web-2"})]),
        (PODS, "shop", None, "app=web", [("web-1", {"web-1"}), ("web-2", {"web-2"})]),
        (PODS, "shop", None, "app=web,track!=canary", [("web-1", {"web-1"})]),
        (PODS, "shop", "db-0", "app=web", [("db-0", {"db-0"})]),  # a name ignores the selector
        (PODS, "other", None, "", [("web-1", {"web-1"})]),
        (PODS, "empty", None, "", []),
        (DEPLOYMENTS, "shop", "web", "", [("web", {"web-1", "web-2"})]),
        (DEPLOYMENTS, "shop", "canary", "", [("canary", {"web-2"})]),
        (DEPLOYMENTS, "shop", "orphan", "", [("orphan", set())]),
        (DEPLOYMENTS, "shop", None, "tier=front", [("web", {"web-1", "web-2"})]),
        (
            DEPLOYMENTS,
            "shop",
            None,
            "",
            [("canary", {"web-2"}), ("orphan", set()), ("web", {"web-1", "web-2"})],
        ),
        (STATEFULSETS, "shop", "db", "", [("db", {"db-0"})]),
        (REPLICASETS, "shop", "web-5d8f", "", [("web-5d8f", {"web-1"})]),
        (NODES, None, None, "pool=a", [("n1", None)]),
        (NODES, None, "n2", "", [("n2", None)]),
        (NAMESPACES, None, None, "", [("other", None), ("shop", None)]),
        (NAMESPACES, None, "shop", "", [("shop", None)]),
    ],
)
def test_resolution_rules(
    memory: InMemoryObjectResolver,
    resource: Any,
    namespace: str | None,
    name: str | None,
    selector: str,
    expected: list[tuple[str, set[str] | None]],
) -> None:
    resolved = asyncio.run(memory.resolve(resource, namespace, name, parse_selector(selector)))
    assert [(item.ref.name, item.pods) for item in resolved] == [
        (object_name, None if pods is None else frozenset(pods)) for object_name, pods in expected
    ]
    for item in resolved:
        assert item.ref.resource is resource
        assert item.ref.namespace == (namespace if resource.namespaced else None)


@pytest.mark.parametrize(
    ("resource", "namespace", "name"),
    [
        (PODS, "shop", "web-old"),  # finished pods are not considered
        (PODS, "shop", "nope"),
        (DEPLOYMENTS, "other", "web"),
        (NODES, None, "n9"),
        (NAMESPACES, None, "nope"),
    ],
)
def test_a_named_object_that_does_not_exist_is_not_found(
    memory: InMemoryObjectResolver, resource: Any, namespace: str | None, name: str
) -> None:
    with pytest.raises(ObjectNotFoundError, match=f'"{name}" not found'):
        asyncio.run(memory.resolve(resource, namespace, name, EVERYTHING))


def test_the_in_memory_resolver_implements_the_protocol(memory: InMemoryObjectResolver) -> None:
    assert isinstance(memory, ObjectResolver)
    assert asyncio.run(memory.ready())
    memory.replace([pod("solo", {})])
    assert names(asyncio.run(memory.resolve(PODS, "shop", None, EVERYTHING))) == ["solo"]


# ---------------------------------------------------------------------- a fake kube-apiserver


@dataclass
class FakeKubeAPI:
    """kube-apiserver as far as the resolver talks to it."""

    pods: list[dict[str, Any]] = field(default_factory=list)
    objects: dict[str, Any] = field(default_factory=dict)
    """path -> object or list answer (status 200), or an int status."""
    page_size_seen: list[str] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    events: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    list_version: int = 100
    watch_status: int = 200

    def count(self, path: str) -> int:
        return sum(1 for request in self.requests if request.url.path == path)

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.headers["authorization"] == "Bearer adapter-token"
        path = request.url.path
        params = request.url.params
        if path == "/api/v1/pods" and params.get("watch") == "true":
            assert params["fieldSelector"] == "status.phase!=Succeeded,status.phase!=Failed"
            assert params["allowWatchBookmarks"] == "true"
            assert "as=PartialObjectMetadata;" in request.headers["accept"]
            if self.watch_status != 200:
                return httpx.Response(self.watch_status, json={"kind": "Status"})
            return httpx.Response(200, content=self._stream())
        if path == "/api/v1/pods":
            return self._pod_page(request)
        answer = self.objects.get(path)
        if answer is None:
            return httpx.Response(404, json={"kind": "Status", "reason": "NotFound"})
        if isinstance(answer, int):
            return httpx.Response(answer, json={"kind": "Status", "message": "pods is forbidden"})
        if callable(answer):
            answer = answer(request)
        return httpx.Response(200, json=answer)

    def _pod_page(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        assert params["fieldSelector"] == "status.phase!=Succeeded,status.phase!=Failed"
        assert "as=PartialObjectMetadataList" in request.headers["accept"]
        limit = int(params["limit"])
        start = int(params.get("continue") or 0)
        page = self.pods[start : start + limit]
        rest = start + limit < len(self.pods)
        metadata = {"resourceVersion": str(self.list_version)}
        if rest:
            metadata["continue"] = str(start + limit)
        items = [{"kind": "PartialObjectMetadata", "metadata": item["metadata"]} for item in page]
        return httpx.Response(
            200, json={"kind": "PartialObjectMetadataList", "metadata": metadata, "items": items}
        )

    async def _stream(self) -> AsyncIterator[bytes]:
        while True:
            event = await self.events.get()
            if event is None:
                return
            yield (json.dumps(event) + "\n").encode()


def connection() -> ClusterConnection:
    return ClusterConnection(
        host="https://kube.test",
        ssl_context=ssl.create_default_context(),
        authorization=lambda: "Bearer adapter-token",
        description="a test",
    )


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


async def pod_names(
    resolver: KubernetesObjectResolver, namespace: str = "shop", selector: str = ""
) -> list[str]:
    return names(await resolver.resolve(PODS, namespace, None, parse_selector(selector)))


def metadata_event(
    kind: str, name: str, labels: dict[str, str], version: str, namespace: str = "shop"
) -> dict[str, Any]:
    return {
        "type": kind,
        "object": {
            "kind": "PartialObjectMetadata",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "resourceVersion": version,
            },
        },
    }


def test_the_pod_cache_lists_in_pages_then_follows_the_watch() -> None:
    async def scenario() -> None:
        fake = FakeKubeAPI(
            pods=[pod(f"web-{i}", {"app": "web"}) for i in range(5)] + [pod("db-0", {"app": "db"})]
        )
        resolver = KubernetesObjectResolver(
            connection(), page_size=2, transport=httpx.MockTransport(fake.handler)
        )
        with pytest.raises(ObjectsUnavailableError, match="not filled yet"):
            await resolver.resolve(PODS, "shop", None, EVERYTHING)
        async with resolver:
            await resolver.wait_until_synced(5)
            assert await resolver.ready()
            assert fake.count("/api/v1/pods") >= 3  # three pages of two
            assert await pod_names(resolver, selector="app=web") == [f"web-{i}" for i in range(5)]
            await eventually(lambda: any(r.url.params.get("watch") for r in fake.requests))
            watch = next(r for r in fake.requests if r.url.params.get("watch"))
            assert watch.url.params["resourceVersion"] == "100"

            await fake.events.put(metadata_event("ADDED", "web-9", {"app": "web"}, "101"))
            await fake.events.put(metadata_event("MODIFIED", "web-0", {"app": "other"}, "102"))
            await fake.events.put(metadata_event("DELETED", "web-1", {"app": "web"}, "103"))
            await fake.events.put(
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "110"}}}
            )
            await eventually(lambda: resolver.resource_version == "110")
            assert await pod_names(resolver, selector="app=web") == [
                "web-2",
                "web-3",
                "web-4",
                "web-9",
            ]

            # The version expired: the resolver lists again and sees the new world.
            fake.pods = [pod("fresh-0", {"app": "web"})]
            fake.list_version = 200
            await fake.events.put({"type": "ERROR", "object": {"kind": "Status", "code": 410}})
            await eventually(lambda: resolver.resource_version == "200")
            assert await pod_names(resolver) == ["fresh-0"]
            await fake.events.put(None)
        assert resolver._task is None

    asyncio.run(scenario())


def test_a_watch_refused_with_410_lists_again() -> None:
    async def scenario() -> None:
        fake = FakeKubeAPI(pods=[pod("a", {})], watch_status=410)
        async with KubernetesObjectResolver(
            connection(), transport=httpx.MockTransport(fake.handler)
        ) as resolver:
            await resolver.wait_until_synced(5)
            await eventually(lambda: fake.count("/api/v1/pods") >= 4)
            assert await pod_names(resolver) == ["a"]

    asyncio.run(scenario())


def test_workloads_nodes_and_namespaces_are_read_and_cached() -> None:
    clock = [0.0]

    async def scenario() -> None:
        fake = FakeKubeAPI(pods=[pod("web-1", {"app": "web"}), pod("db-0", {"app": "db"})])
        fake.objects["/apis/apps/v1/namespaces/shop/deployments/web"] = workload(
            "Deployment", "web", {"matchLabels": {"app": "web"}}
        )
        fake.objects["/apis/apps/v1/namespaces/shop/deployments"] = lambda request: {
            "items": [workload("Deployment", "web", {"matchLabels": {"app": "web"}})]
            if request.url.params.get("labelSelector") == "tier=front"
            else []
        }
        fake.objects["/apis/apps/v1/namespaces/shop/statefulsets/db"] = 403
        fake.objects["/api/v1/nodes"] = {"items": [{"metadata": {"name": "n1"}}]}
        fake.objects["/api/v1/namespaces/shop"] = {"metadata": {"name": "shop"}}
        resolver = KubernetesObjectResolver(
            connection(),
            cache_ttl_s=5,
            transport=httpx.MockTransport(fake.handler),
            monotonic=lambda: clock[0],
        )
        async with resolver:
            await resolver.wait_until_synced(5)
            web = await resolver.resolve(DEPLOYMENTS, "shop", "web", EVERYTHING)
            assert web == [
                ResolvedObject(ObjectRef(DEPLOYMENTS, "web", "shop"), frozenset({"web-1"}))
            ]
            await resolver.resolve(DEPLOYMENTS, "shop", "web", EVERYTHING)
            assert fake.count("/apis/apps/v1/namespaces/shop/deployments/web") == 1  # cached
            clock[0] += 5.0
            await resolver.resolve(DEPLOYMENTS, "shop", "web", EVERYTHING)
            assert fake.count("/apis/apps/v1/namespaces/shop/deployments/web") == 2

            listed = await resolver.resolve(DEPLOYMENTS, "shop", None, parse_selector("tier=front"))
            assert names(listed) == ["web"]
            assert (
                names(await resolver.resolve(DEPLOYMENTS, "shop", None, parse_selector("x=y")))
                == []
            )

            with pytest.raises(ObjectNotFoundError):
                await resolver.resolve(DEPLOYMENTS, "shop", "nope", EVERYTHING)
            with pytest.raises(ObjectsUnavailableError, match=r"403.*grant"):
                await resolver.resolve(STATEFULSETS, "shop", "db", EVERYTHING)

            assert names(await resolver.resolve(NODES, None, None, EVERYTHING)) == ["n1"]
            nodes_request = next(r for r in fake.requests if r.url.path == "/api/v1/nodes")
            assert "as=PartialObjectMetadataList" in nodes_request.headers["accept"]
            assert names(await resolver.resolve(NAMESPACES, None, "shop", EVERYTHING)) == ["shop"]
            ns_request = next(r for r in fake.requests if r.url.path == "/api/v1/namespaces/shop")
            assert "as=PartialObjectMetadata;" in ns_request.headers["accept"]
            await fake.events.put(None)

    asyncio.run(scenario())


def test_an_unreachable_api_server_is_unavailable_not_a_crash() -> None:
    async def scenario() -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        resolver = KubernetesObjectResolver(connection(), transport=httpx.MockTransport(refuse))
        async with resolver:
            with pytest.raises(ObjectsUnavailableError, match=r"within 0\.2 s"):
                await resolver.wait_until_synced(0.2)
            assert not await resolver.ready()

    asyncio.run(scenario())

"""ObjectLister against an in-memory kube-apiserver (``httpx.MockTransport``).

kube-apiserver is mocked because expired continue tokens and RBAC refusals cannot be
produced on demand by a real one in a unit test; the e2e tier
(tests/e2e/test_collect.py) lists a real control plane.
"""

from __future__ import annotations

import httpx
import pytest

from kubepulse.collect.lister import (
    HORIZONTAL_POD_AUTOSCALERS,
    NODES,
    PODS,
    ObjectLister,
    ResourceKind,
)
from kubepulse.kubeconnect import KubernetesAPIError
from tests.unit.collect.fakeapi import END, FakeAPIServer, connection, pod, status

PODS_PATH = "/api/v1/pods"


def _lister(fake: FakeAPIServer, page_size: int = 2) -> ObjectLister:
    return ObjectLister(connection(), page_size=page_size, transport=fake.transport())


def test_a_list_follows_continue_tokens_until_the_last_page() -> None:
    fake = FakeAPIServer()
    fake.collections[PODS_PATH] = [pod(f"p{i}") for i in range(5)]
    seen: list[int] = []
    with _lister(fake) as lister:
        result = lister.list(PODS, progress=seen.append)
    assert [item["metadata"]["name"] for item in result.items] == [f"p{i}" for i in range(5)]
    assert result.pages == 3
    assert result.restarts == 0
    assert result.resource_version == "100"
    assert seen == [2, 4, 5]
    requests = fake.list_requests(PODS_PATH)
    assert [r.url.params.get("continue") for r in requests] == [None, "2", "4"]
    assert all(r.url.params["limit"] == "2" for r in requests)
    assert requests[0].headers["Authorization"] == "Bearer test-token"


def test_an_expired_continue_token_restarts_the_list_from_the_first_page() -> None:
    fake = FakeAPIServer()
    fake.collections[PODS_PATH] = [pod(f"p{i}") for i in range(5)]
    fake.expire_continues = 1
    with _lister(fake) as lister:
        result = lister.list(PODS)
    assert len(result.items) == 5
    assert len({item["metadata"]["uid"] for item in result.items}) == 5
    assert result.restarts == 1
    # page 1, 410 on page 2, then pages 1, 2, 3 again
    assert [r.url.params.get("continue") for r in fake.list_requests(PODS_PATH)] == [
        None,
        "2",
        None,
        "2",
        "4",
    ]


def test_continue_tokens_that_keep_expiring_end_in_one_unpaged_list() -> None:
    fake = FakeAPIServer()
    fake.collections[PODS_PATH] = [pod(f"p{i}") for i in range(5)]
    fake.expire_continues = 100
    with _lister(fake) as lister:
        result = lister.list(PODS)
    assert len(result.items) == 5
    assert result.restarts == 3
    assert "limit" not in fake.list_requests(PODS_PATH)[-1].url.params


def test_a_namespace_and_a_field_selector_are_sent() -> None:
    fake = FakeAPIServer()
    fake.collections["/api/v1/namespaces/team-a/pods"] = [pod("web", "team-a")]
    with _lister(fake) as lister:
        result = lister.pods("team-a", field_selector="spec.nodeName=node-1")
    assert [item["metadata"]["name"] for item in result.items] == ["web"]
    assert fake.requests[0].url.params["fieldSelector"] == "spec.nodeName=node-1"


def test_a_403_names_the_verb_resource_and_group_to_grant() -> None:
    fake = FakeAPIServer()
    fake.forbidden.add("/apis/autoscaling/v2/horizontalpodautoscalers")
    with _lister(fake) as lister, pytest.raises(KubernetesAPIError) as caught:
        lister.list(HORIZONTAL_POD_AUTOSCALERS)
    message = str(caught.value)
    assert caught.value.status == 403
    assert "may not list horizontalpodautoscalers.autoscaling cluster-wide" in message
    assert 'list and watch on horizontalpodautoscalers in API group "autoscaling"' in message
    assert "docs/analysis/collection.md" in message


def test_a_403_in_a_namespace_says_so() -> None:
    fake = FakeAPIServer()
    fake.forbidden.add("/api/v1/namespaces/team-a/pods")
    with _lister(fake) as lister, pytest.raises(KubernetesAPIError, match="in namespace 'team-a'"):
        lister.pods("team-a")


def test_a_refused_connection_points_at_the_kubeconfig_server() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    lister = ObjectLister(connection(), transport=httpx.MockTransport(refuse))
    with lister, pytest.raises(KubernetesAPIError) as caught:
        lister.nodes()
    message = str(caught.value)
    assert "Connection refused" in message
    assert "check the server address in kubeconfig /tmp/test-kubeconfig" in message
    assert caught.value.status is None


def test_a_kind_the_server_does_not_serve_is_a_404_saying_which() -> None:
    fake = FakeAPIServer()
    with _lister(fake) as lister, pytest.raises(KubernetesAPIError) as caught:
        lister.list(HORIZONTAL_POD_AUTOSCALERS)
    assert caught.value.status == 404
    assert "does not serve autoscaling/v2 horizontalpodautoscalers" in str(caught.value)
    assert "1.23" in str(caught.value)


def test_get_returns_the_object_or_none_for_404() -> None:
    fake = FakeAPIServer()
    fake.objects["/api/v1/nodes/node-1"] = {"metadata": {"name": "node-1"}}
    with _lister(fake) as lister:
        assert lister.get("/api/v1/nodes/node-1") == {"metadata": {"name": "node-1"}}
        assert lister.get("/api/v1/nodes/node-2") is None


def test_other_errors_carry_the_status_message() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json=status(500, "InternalError", "etcdserver: leader changed"))

    lister = ObjectLister(connection(), transport=httpx.MockTransport(broken))
    with lister, pytest.raises(KubernetesAPIError, match="etcdserver: leader changed") as caught:
        lister.get("/api/v1/nodes/node-1")
    assert caught.value.status == 500
    assert caught.value.reason == "InternalError"


def test_a_watch_yields_lines_and_asks_for_bookmarks() -> None:
    fake = FakeAPIServer()
    fake.push(PODS_PATH, {"type": "ADDED", "object": pod("a")})
    fake.push(PODS_PATH, {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}})
    fake.push(PODS_PATH, END)
    with _lister(fake) as lister, lister.watch(PODS, "5", timeout_seconds=60) as lines:
        received = list(lines)
    assert len(received) == 2
    assert b'"ADDED"' in received[0]
    params = fake.watch_requests(PODS_PATH)[0].url.params
    assert params["watch"] == "1"
    assert params["allowWatchBookmarks"] == "true"
    assert params["resourceVersion"] == "5"
    assert params["timeoutSeconds"] == "60"


def test_a_watch_from_an_expired_version_is_a_410() -> None:
    fake = FakeAPIServer()
    fake.gone_watches[PODS_PATH] = 1
    with (
        _lister(fake) as lister,
        pytest.raises(KubernetesAPIError) as caught,
        lister.watch(PODS, "1"),
    ):
        pass
    assert caught.value.status == 410


def test_a_closed_lister_refuses_new_requests() -> None:
    fake = FakeAPIServer()
    lister = _lister(fake)
    lister.close()
    with pytest.raises(KubernetesAPIError, match="closed"):
        lister.nodes()


def test_paths_of_kinds() -> None:
    assert NODES.collection_path("ignored") == "/api/v1/nodes"
    assert PODS.collection_path("a b") == "/api/v1/namespaces/a%20b/pods"
    apps = ResourceKind("deployments", "Deployment", "apps", "v1", namespaced=True)
    assert apps.collection_path() == "/apis/apps/v1/deployments"
    assert apps.group_resource == "deployments.apps"


def test_a_timeout_says_what_to_do() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    lister = ObjectLister(connection(), timeout=3, transport=httpx.MockTransport(slow))
    with lister, pytest.raises(KubernetesAPIError, match="did not answer within 3 s"):
        lister.pods()

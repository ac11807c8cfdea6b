"""Authorization: attributes from paths as k8s.io/apiserver derives them, and cached reviews."""

from __future__ import annotations

import asyncio

import pytest

from adapter.security.authn import UserInfo
from adapter.security.authz import (
    RequestAttributes,
    SubjectAccessReviewAuthorizer,
    forbidden_message,
    request_attributes,
    subject_access_review_spec,
)
from adapter.security.kubeapi import KubernetesAPIError
from tests.unit.adapter.security.fakes import ACCESS_REVIEWS, FakeClock, FakeKube

CM = "custom.metrics.k8s.io"
EM = "external.metrics.k8s.io"


def resource(
    verb: str,
    path: str,
    group: str,
    version: str,
    resource_name: str,
    *,
    namespace: str = "",
    name: str = "",
    subresource: str = "",
) -> RequestAttributes:
    return RequestAttributes(
        verb=verb,
        path=path,
        is_resource_request=True,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource_name,
        subresource=subresource,
        name=name,
    )


PODS_STAR = f"/apis/{CM}/v1beta2/namespaces/shop/pods/*/http_requests_per_second"
DEPLOYMENT = f"/apis/{CM}/v1beta1/namespaces/shop/deployments.apps/web/p95_latency"
NODES = f"/apis/{CM}/v1beta2/nodes/node-1/cpu_usage"
NAMESPACE_METRIC = f"/apis/{CM}/v1beta2/namespaces/shop/metrics/queue_depth"
EXTERNAL = f"/apis/{EM}/v1beta1/namespaces/shop/orders_queue_depth"

ATTRIBUTE_TABLE = [
    # Discovery: non-resource requests on the path.
    ("GET", "/apis", "", RequestAttributes("get", "/apis")),
    ("GET", f"/apis/{CM}", "", RequestAttributes("get", f"/apis/{CM}")),
    ("GET", f"/apis/{CM}/v1beta2", "", RequestAttributes("get", f"/apis/{CM}/v1beta2")),
    ("GET", f"/apis/{EM}/v1beta1/", "", RequestAttributes("get", f"/apis/{EM}/v1beta1/")),
    ("GET", "/openapi/v2", "", RequestAttributes("get", "/openapi/v2")),
    ("GET", "/version", "", RequestAttributes("get", "/version")),
    ("HEAD", "/apis", "", RequestAttributes("head", "/apis")),
    # Objects: resource, name and the metric as subresource.
    (
        "GET",
        PODS_STAR,
        "labelSelector=app%3Dweb",
        resource(
            "get", PODS_STAR, CM, "v1beta2", "pods", namespace="shop", name="*",
            subresource="http_requests_per_second",
        ),
    ),
    (
        "GET",
        f"/apis/{CM}/v1beta2/namespaces/shop/pods/web-0/cpu",
        "",
        resource(
            "get", f"/apis/{CM}/v1beta2/namespaces/shop/pods/web-0/cpu", CM, "v1beta2", "pods",
            namespace="shop", name="web-0", subresource="cpu",
        ),
    ),
    (
        "GET",
        DEPLOYMENT,
        "",
        resource(
            "get", DEPLOYMENT, CM, "v1beta1", "deployments.apps", namespace="shop", name="web",
            subresource="p95_latency",
        ),
    ),
    (
        "GET",
        NODES,
        "",
        resource("get", NODES, CM, "v1beta2", "nodes", name="node-1", subresource="cpu_usage"),
    ),
    (
        "GET",
        NAMESPACE_METRIC,
        "",
        resource(
            "get", NAMESPACE_METRIC, CM, "v1beta2", "metrics", namespace="shop", name="queue_depth"
        ),
    ),
    # External metrics name no object: a list.
    (
        "GET",
        EXTERNAL,
        "labelSelector=queue%3Dorders",
        resource("list", EXTERNAL, EM, "v1beta1", "orders_queue_depth", namespace="shop"),
    ),
    (
        "GET",
        f"/apis/{EM}/v1beta1/namespaces/shop/q",
        "watch=true",
        resource("watch", f"/apis/{EM}/v1beta1/namespaces/shop/q", EM, "v1beta1", "q",
                 namespace="shop"),
    ),
    (
        "GET",
        f"/apis/{EM}/v1beta1/namespaces/shop/q",
        "watch=false",
        resource("list", f"/apis/{EM}/v1beta1/namespaces/shop/q", EM, "v1beta1", "q",
                 namespace="shop"),
    ),
    # A namespace itself, and namespace subresources.
    (
        "GET",
        f"/apis/{CM}/v1beta2/namespaces/shop",
        "",
        resource("get", f"/apis/{CM}/v1beta2/namespaces/shop", CM, "v1beta2", "namespaces",
                 namespace="shop", name="shop"),
    ),
    (
        "PUT",
        f"/apis/{CM}/v1beta2/namespaces/shop/status",
        "",
        resource("update", f"/apis/{CM}/v1beta2/namespaces/shop/status", CM, "v1beta2",
                 "namespaces", namespace="shop", name="shop", subresource="status"),
    ),
    # Other methods and the legacy core group.
    (
        "POST",
        f"/apis/{CM}/v1beta2/namespaces/shop/pods",
        "",
        resource("create", f"/apis/{CM}/v1beta2/namespaces/shop/pods", CM, "v1beta2", "pods",
                 namespace="shop"),
    ),
    (
        "DELETE",
        f"/apis/{CM}/v1beta2/namespaces/shop/pods",
        "",
        resource("deletecollection", f"/apis/{CM}/v1beta2/namespaces/shop/pods", CM, "v1beta2",
                 "pods", namespace="shop"),
    ),
    (
        "GET",
        "/api/v1/namespaces/shop/pods/p",
        "",
        resource("get", "/api/v1/namespaces/shop/pods/p", "", "v1", "pods", namespace="shop",
                 name="p"),
    ),
    (
        "GET",
        f"/apis/{CM}/v1beta2/watch/namespaces/shop/pods",
        "",
        resource("watch", f"/apis/{CM}/v1beta2/watch/namespaces/shop/pods", CM, "v1beta2",
                 "pods", namespace="shop"),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    ATTRIBUTE_TABLE,
    ids=[f"{row[0]} {row[1]}?{row[2]}" for row in ATTRIBUTE_TABLE],
)
def test_attributes_are_derived_from_the_path_as_kubernetes_does(
    method: str, path: str, query: str, expected: RequestAttributes
) -> None:
    assert request_attributes(method, path, query.encode()) == expected


ALICE = UserInfo(
    "alice", uid="u-1", groups=("team", "system:authenticated"), extra={"scopes": ("a", "b")}
)


def test_the_review_spec_carries_the_whole_identity_and_the_attributes() -> None:
    spec = subject_access_review_spec(ALICE, request_attributes("GET", PODS_STAR))
    assert spec == {
        "user": "alice",
        "uid": "u-1",
        "groups": ["team", "system:authenticated"],
        "extra": {"scopes": ["a", "b"]},
        "resourceAttributes": {
            "namespace": "shop",
            "verb": "get",
            "group": CM,
            "version": "v1beta2",
            "resource": "pods",
            "subresource": "http_requests_per_second",
            "name": "*",
        },
    }
    discovery = subject_access_review_spec(UserInfo("bob"), request_attributes("GET", "/apis"))
    assert discovery == {
        "user": "bob",
        "groups": [],
        "nonResourceAttributes": {"path": "/apis", "verb": "get"},
    }


def test_forbidden_messages_read_like_kube_apiservers() -> None:
    assert forbidden_message(ALICE, request_attributes("GET", PODS_STAR)) == (
        f'pods.{CM} "*" is forbidden: User "alice" cannot get resource '
        f'"pods/http_requests_per_second" in API group "{CM}" in the namespace "shop"'
    )
    assert forbidden_message(ALICE, request_attributes("GET", NODES), "no RBAC policy matched") == (
        f'nodes.{CM} "node-1" is forbidden: User "alice" cannot get resource "nodes/cpu_usage" '
        f'in API group "{CM}" at the cluster scope: no RBAC policy matched'
    )
    assert forbidden_message(ALICE, request_attributes("GET", EXTERNAL)) == (
        f'orders_queue_depth.{EM} is forbidden: User "alice" cannot list resource '
        f'"orders_queue_depth" in API group "{EM}" in the namespace "shop"'
    )
    assert forbidden_message(UserInfo("system:anonymous"), request_attributes("GET", "/apis")) == (
        'forbidden: User "system:anonymous" cannot get path "/apis"'
    )


def _authorizer(
    kube: FakeKube, clock: FakeClock, **kwargs: object
) -> SubjectAccessReviewAuthorizer:
    return SubjectAccessReviewAuthorizer(kube.api(), clock=clock, **kwargs)  # type: ignore[arg-type]


def test_allowed_answers_are_cached_ten_seconds_and_denied_ones_five() -> None:
    kube = FakeKube(decide=lambda spec: (spec["user"] == "alice", "RBAC: allowed by binding x"))
    clock = FakeClock()
    authorizer = _authorizer(kube, clock)
    pods = request_attributes("GET", PODS_STAR)

    async def ask(user: UserInfo) -> tuple[bool, bool]:
        result = await authorizer.authorize(user, pods)
        return result.allowed, result.cached

    assert asyncio.run(ask(ALICE)) == (True, False)
    assert asyncio.run(ask(UserInfo("mallory"))) == (False, False)
    clock.now += 4.9
    assert asyncio.run(ask(ALICE)) == (True, True)
    assert asyncio.run(ask(UserInfo("mallory"))) == (False, True)
    assert kube.calls(ACCESS_REVIEWS) == 2
    clock.now += 0.1  # 5 s: the denial is asked again, the allowance is not
    assert asyncio.run(ask(UserInfo("mallory"))) == (False, False)
    assert asyncio.run(ask(ALICE)) == (True, True)
    clock.now += 5  # 10 s
    assert asyncio.run(ask(ALICE)) == (True, False)
    assert kube.calls(ACCESS_REVIEWS) == 4


def test_different_attributes_or_identities_are_different_reviews() -> None:
    kube = FakeKube(decide=lambda _spec: (True, ""))
    authorizer = _authorizer(kube, FakeClock())

    async def scenario() -> None:
        await authorizer.authorize(ALICE, request_attributes("GET", PODS_STAR))
        await authorizer.authorize(ALICE, request_attributes("GET", DEPLOYMENT))
        await authorizer.authorize(
            UserInfo("alice", groups=("other",)), request_attributes("GET", PODS_STAR)
        )

    asyncio.run(scenario())
    assert kube.calls(ACCESS_REVIEWS) == 3


def test_the_cache_is_bounded() -> None:
    kube = FakeKube(decide=lambda _spec: (True, ""))
    authorizer = _authorizer(kube, FakeClock(), max_entries=2)

    async def scenario() -> None:
        for i in range(5):
            await authorizer.authorize(UserInfo(f"user-{i}"), request_attributes("GET", PODS_STAR))

    asyncio.run(scenario())
    assert len(authorizer.cache) == 2


def test_system_masters_need_no_review() -> None:
    kube = FakeKube()
    authorizer = _authorizer(kube, FakeClock())
    admin = UserInfo("kubepulse-admin", groups=("system:masters", "system:authenticated"))
    result = asyncio.run(authorizer.authorize(admin, request_attributes("GET", PODS_STAR)))
    assert result.allowed
    assert kube.calls(ACCESS_REVIEWS) == 0
    strict = _authorizer(kube, FakeClock(), always_allow_groups=())
    assert not asyncio.run(strict.authorize(admin, request_attributes("GET", PODS_STAR))).allowed


def test_a_review_that_cannot_be_made_raises_and_is_not_cached() -> None:
    kube = FakeKube(review_status=503, decide=lambda _spec: (True, ""))
    authorizer = _authorizer(kube, FakeClock())
    with pytest.raises(KubernetesAPIError, match="503"):
        asyncio.run(authorizer.authorize(ALICE, request_attributes("GET", PODS_STAR)))
    kube.review_status = 201
    assert asyncio.run(authorizer.authorize(ALICE, request_attributes("GET", PODS_STAR))).allowed


def test_an_explicit_denial_wins_over_an_allowance() -> None:
    kube = FakeKube()

    def handler_status(spec: object) -> tuple[bool, str]:
        return True, "allowed by one authorizer"

    kube.decide = handler_status
    original = kube.handler

    def both(request):  # type: ignore[no-untyped-def]
        response = original(request)
        if request.url.path == ACCESS_REVIEWS:
            body = response.json()
            body["status"]["denied"] = True
            return type(response)(201, json=body)
        return response

    kube.handler = both  # type: ignore[method-assign]
    authorizer = _authorizer(kube, FakeClock())
    assert not asyncio.run(
        authorizer.authorize(ALICE, request_attributes("GET", PODS_STAR))
    ).allowed

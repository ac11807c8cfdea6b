"""The middleware: open paths, Status objects for 401/403/503, and what the app gets to see.

Requests go through httpx's ASGI transport (no network). A small shim plays the server's
part and puts a client certificate into the scope, as PeerCertificateProtocol does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI, Request

from adapter.security.authn import (
    AuthenticationResult,
    DelegatingAuthenticator,
    TokenReviewAuthenticator,
    UserInfo,
    parse_authentication_configmap,
)
from adapter.security.authz import RequestAttributes, SubjectAccessReviewAuthorizer
from adapter.security.middleware import KubernetesAuthMiddleware, authenticated_user
from tests.unit.adapter.security.certs import NOW, make_ca, make_leaf
from tests.unit.adapter.security.fakes import ACCESS_REVIEWS, FakeClock, FakeKube
from tests.unit.adapter.security.test_authn import PROXY, PROXY_CA, configmap_data

PODS = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/rps"
SA = {"username": "system:serviceaccount:kube-system:hpa", "groups": ["system:serviceaccounts"]}


def echo_app() -> FastAPI:
    app = FastAPI()

    async def echo(request: Request) -> dict[str, Any]:
        user = authenticated_user(request)
        return {
            "user": user.name if user else None,
            "groups": list(user.groups) if user else [],
            "headers": sorted(request.headers.keys()),
        }

    for path in ("/healthz", "/livez/ping", "/metrics", "/apis", "/{rest:path}"):
        app.add_api_route(path, echo, methods=["GET"])
    return app


class WithClientCertificate:
    """Plays uvicorn + PeerCertificateProtocol: adds the TLS extension to the scope."""

    def __init__(self, app: Any, chain: Sequence[x509.Certificate]) -> None:
        self.app = app
        self.chain = chain

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            pems = [c.public_bytes(serialization.Encoding.PEM).decode() for c in self.chain]
            scope["extensions"] = {
                **scope.get("extensions", {}),
                "tls": {"client_cert_chain": pems},
            }
        await self.app(scope, receive, send)


def stack(kube: FakeKube, *, authorizer: bool = True) -> KubernetesAuthMiddleware:
    authenticator = DelegatingAuthenticator(
        None,
        token_authenticator=TokenReviewAuthenticator(kube.api(), clock=FakeClock()),
        config=parse_authentication_configmap(configmap_data()),
        now=lambda: NOW,
    )
    return KubernetesAuthMiddleware(
        echo_app(),
        authenticator,
        SubjectAccessReviewAuthorizer(kube.api(), clock=FakeClock()) if authorizer else None,
    )


def get(
    app: Any,
    path: str,
    request_headers: dict[str, str] | list[tuple[str, str]] | None = None,
    chain: Sequence[x509.Certificate] = (),
) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=WithClientCertificate(app, chain))
        async with httpx.AsyncClient(transport=transport, base_url="https://adapter") as client:
            return await client.get(path, headers=request_headers)

    return asyncio.run(send())


def allow_alice_and_sa(spec: Any) -> tuple[bool, str]:
    return spec["user"] in ("alice", SA["username"]), "RBAC"


@pytest.mark.parametrize("path", ["/healthz", "/livez/ping", "/metrics"])
def test_health_and_metrics_are_open(path: str) -> None:
    kube = FakeKube()
    response = get(stack(kube), path)
    assert response.status_code == 200
    assert response.json()["user"] is None
    assert kube.requests == []


def test_dot_segments_do_not_make_a_path_open() -> None:
    # Called with a raw scope: an HTTP client would normalise the path before sending it.
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/healthz/../apis/custom.metrics.k8s.io/v1beta2",
        "headers": [],
        "query_string": b"",
    }
    asyncio.run(stack(FakeKube())(scope, receive, send))
    assert sent[0]["status"] == 401


def test_no_credentials_is_a_401_status() -> None:
    response = get(stack(FakeKube()), PODS)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_spoofed_identity_headers_without_a_proxy_certificate_are_a_401() -> None:
    response = get(
        stack(FakeKube(decide=lambda _s: (True, ""))),
        PODS,
        {"X-Remote-User": "alice", "X-Remote-Group": "system:masters"},
    )
    assert response.status_code == 401


def test_the_front_proxy_user_is_authorized_and_reaches_the_app() -> None:
    kube = FakeKube(decide=allow_alice_and_sa)
    response = get(
        stack(kube),
        PODS,
        [("X-Remote-User", "alice"), ("X-Remote-Group", "team"), ("X-Request-Id", "r-1")],
        chain=(PROXY.certificate,),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"] == "alice"
    assert body["groups"] == ["team", "system:authenticated"]
    # The identity headers are gone; unrelated headers stay.
    assert "x-remote-user" not in body["headers"]
    assert "x-remote-group" not in body["headers"]
    assert "x-request-id" in body["headers"]
    spec = kube.requests[-1][2]["spec"]
    assert spec["user"] == "alice"
    assert spec["resourceAttributes"]["subresource"] == "rps"


def test_a_bearer_token_reaches_the_app_without_its_authorization_header() -> None:
    kube = FakeKube(tokens={"t": SA}, decide=allow_alice_and_sa)
    response = get(stack(kube), PODS, {"Authorization": "Bearer t", "X-Remote-User": "alice"})
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == SA["username"]  # the token, never the spoofed header
    assert "authorization" not in body["headers"]
    assert "x-remote-user" not in body["headers"]


def test_an_unauthorized_user_gets_a_403_naming_the_user_and_the_action() -> None:
    kube = FakeKube(decide=lambda _s: (False, "no RBAC policy matched"))
    response = get(stack(kube), PODS, {"X-Remote-User": "bob"}, chain=(PROXY.certificate,))
    assert response.status_code == 403
    status = response.json()
    assert status["reason"] == "Forbidden"
    assert status["code"] == 403
    assert status["message"] == (
        'pods.custom.metrics.k8s.io "*" is forbidden: User "bob" cannot get resource '
        '"pods/rps" in API group "custom.metrics.k8s.io" in the namespace "shop": '
        "no RBAC policy matched"
    )
    assert status["details"] == {"group": "custom.metrics.k8s.io", "kind": "pods", "name": "*"}


def test_discovery_is_authorized_as_a_non_resource_request() -> None:
    kube = FakeKube(decide=lambda spec: ("nonResourceAttributes" in spec, ""))
    response = get(stack(kube), "/apis", {"X-Remote-User": "bob"}, chain=(PROXY.certificate,))
    assert response.status_code == 200
    assert kube.requests[-1][2]["spec"]["nonResourceAttributes"] == {"path": "/apis", "verb": "get"}


def test_a_review_that_cannot_be_made_is_a_503_not_a_500() -> None:
    kube = FakeKube(tokens={"t": SA}, review_status=500)
    response = get(stack(kube), PODS, {"Authorization": "Bearer t"})
    assert response.status_code == 503
    assert response.json()["reason"] == "ServiceUnavailable"
    assert "TokenReview" in response.json()["message"]

    proxy_user = get(stack(kube), PODS, {"X-Remote-User": "a"}, chain=(PROXY.certificate,))
    assert proxy_user.status_code == 503
    assert "SubjectAccessReview" in proxy_user.json()["message"]


def test_without_an_authorizer_every_authenticated_caller_passes() -> None:
    kube = FakeKube()
    response = get(
        stack(kube, authorizer=False), PODS, {"X-Remote-User": "a"}, chain=(PROXY.certificate,)
    )
    assert response.status_code == 200
    assert kube.calls(ACCESS_REVIEWS) == 0


def test_without_an_authenticator_callers_are_anonymous_and_headers_still_stripped() -> None:
    app = KubernetesAuthMiddleware(echo_app(), None, None)
    response = get(app, PODS, {"X-Remote-User": "admin", "X-Remote-Extra-Scope": "all"})
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == "system:anonymous"
    assert not any(h.startswith("x-remote-") for h in body["headers"])


def test_a_stranger_proxy_certificate_is_a_401() -> None:
    stranger = make_leaf(make_ca("stranger"), "front-proxy-client")
    response = get(
        stack(FakeKube()), PODS, {"X-Remote-User": "alice"}, chain=(stranger.certificate,)
    )
    assert response.status_code == 401
    assert PROXY_CA.certificate != stranger.certificate


def test_lifespan_passes_through_and_websockets_are_refused() -> None:
    events: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        events.append(scope["type"])

    class Nobody:
        def is_identity_header(self, name: bytes) -> bool:
            return False

        async def authenticate(self, headers: Any, client_chain: Any) -> AuthenticationResult:
            return AuthenticationResult(UserInfo("u"))

    class Everyone:
        async def authorize(self, user: UserInfo, attributes: RequestAttributes) -> Any:
            raise AssertionError("not reached")

    middleware = KubernetesAuthMiddleware(inner, Nobody(), Everyone())
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(middleware({"type": "lifespan"}, receive, send))
    asyncio.run(middleware({"type": "websocket", "path": "/apis", "headers": []}, receive, send))
    assert events == ["lifespan"]
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_authenticated_user_reads_scopes_and_requests() -> None:
    user = UserInfo("u")
    assert authenticated_user({"state": {"kubepulse_user": user}}) is user
    assert authenticated_user({"state": {}}) is None
    assert authenticated_user({}) is None

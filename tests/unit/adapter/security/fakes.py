"""A table-driven fake of the three kube-apiserver calls the adapter's security makes.

It sits behind ``httpx.MockTransport``, so the real :class:`KubernetesAPI` client (request
building, error mapping) is exercised without a network.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from adapter.security.kubeapi import ClusterConnection, KubernetesAPI

CONFIGMAP_PATH = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"
TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


@dataclass
class FakeKube:
    """Answers from tables; records what it was asked."""

    configmap_data: dict[str, str] = field(default_factory=dict)
    configmap_status: int = 200
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    """token -> the TokenReview ``status.user``."""
    token_audiences: tuple[str, ...] = ("https://kubernetes.default.svc",)
    review_status: int = 201
    decide: Callable[[Mapping[str, Any]], tuple[bool, str]] = lambda _spec: (False, "")
    """SubjectAccessReview spec -> (allowed, reason)."""
    requests: list[tuple[str, str, Any]] = field(default_factory=list)

    def calls(self, path: str) -> int:
        return sum(1 for _, p, _ in self.requests if p == path)

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body))
        assert request.headers.get("authorization") == "Bearer adapter-token"
        path = request.url.path
        if request.method == "GET" and path == CONFIGMAP_PATH:
            if self.configmap_status != 200:
                return _status(self.configmap_status, "Forbidden", "configmaps is forbidden")
            return httpx.Response(200, json={"kind": "ConfigMap", "data": self.configmap_data})
        if request.method == "POST" and path == TOKEN_REVIEWS:
            if self.review_status >= 300:
                return _status(self.review_status, "InternalError", "etcd is down")
            user = self.tokens.get(body["spec"]["token"])
            status: dict[str, Any] = {"authenticated": user is not None}
            if user is not None:
                status["user"] = user
                status["audiences"] = list(self.token_audiences)
            else:
                status["error"] = "invalid bearer token"
            return httpx.Response(201, json={**body, "status": status})
        if request.method == "POST" and path == ACCESS_REVIEWS:
            if self.review_status >= 300:
                return _status(self.review_status, "InternalError", "etcd is down")
            allowed, reason = self.decide(body["spec"])
            return httpx.Response(
                201, json={**body, "status": {"allowed": allowed, "reason": reason}}
            )
        return _status(404, "NotFound", f"{request.method} {path} not faked")

    def api(self) -> KubernetesAPI:
        connection = ClusterConnection(
            host="https://127.0.0.1:6443",
            ssl_context=ssl.create_default_context(),
            authorization=lambda: "Bearer adapter-token",
            description="a test kubeconfig",
        )
        return KubernetesAPI(connection, transport=httpx.MockTransport(self.handler))


def _status(code: int, reason: str, message: str) -> httpx.Response:
    return httpx.Response(
        code,
        json={
            "kind": "Status",
            "status": "Failure",
            "reason": reason,
            "message": message,
            "code": code,
        },
    )


class FakeClock:
    """Monotonic seconds moved by hand."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now

"""Inputs an attacker or a broken client sends: each gets a 4xx Status, never a 500.

Requests go through the real app in-process. Paths are sent as raw ASGI scopes where an
HTTP client would normalise them (``..`` segments), so the app sees them as sent.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from adapter.app import create_app
from adapter.objects import InMemoryObjectResolver
from adapter.sources.embedded import EmbeddedSource
from tests.unit.adapter.api.test_api import NOW, SETTINGS, cluster_objects, filled_store

V2 = "/apis/custom.metrics.k8s.io/v1beta2"
PODS = f"{V2}/namespaces/shop/pods/*/queue_depth"


def app() -> Any:
    return create_app(
        source=EmbeddedSource(filled_store(), clock=lambda: NOW, staleness_ms=60_000),
        objects=InMemoryObjectResolver(cluster_objects()),
        settings=SETTINGS,
        clock=lambda: NOW,
    )


APP = app()


def send(raw_path: bytes, query: bytes = b"", method: str = "GET") -> tuple[int, Any]:
    """One request as a raw ASGI scope; the status and the decoded JSON body."""
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def collect(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"adapter")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 6443),
    }
    asyncio.run(APP(scope, receive, collect))
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, json.loads(body)


def assert_refused(status: int, body: Any, *codes: int) -> None:
    assert status in codes, body
    assert body["kind"] == "Status"
    assert body["code"] == status
    assert body["message"]


@pytest.mark.parametrize(
    "path",
    [
        f"{V2}/namespaces/shop/pods/../../../../etc/passwd",
        f"{V2}/namespaces/../pods/*/queue_depth",
        f"{V2}/namespaces/shop/pods/%2e%2e/queue_depth",
        f"{V2}/namespaces/shop/pods/%2e%2e%2fsecrets/queue_depth",
        f"{V2}/namespaces/shop/pods/%252e%252e/queue_depth",
        f"{V2}/namespaces/shop/pods/web-1%00/queue_depth",
        f"{V2}/namespaces/sh\x01op/pods/web-1/queue_depth",
        f"{V2}/namespaces/shop/pods/web-1/queue_depth%2F..%2F..",
        f"{V2}/namespaces/{'a' * 5000}/pods/*/queue_depth",
        f"{V2}/namespaces/shop/pods/*/{'m' * 5000}",
        f"{V2}/namespaces/shop/{'r' * 300}.apps/x/queue_depth",
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/..%2f..%2fsecrets",
    ],
)
def test_hostile_paths_are_refused_with_a_status(path: str) -> None:
    status, body = send(path.encode("latin-1"))
    assert_refused(status, body, 400, 404)


@pytest.mark.parametrize(
    "query",
    [
        b"metricLabelSelector=kubepulse.io%2Faggregation%3Dp100",
        b"metricLabelSelector=kubepulse.io%2Faggregation%3Dp0",
        b"metricLabelSelector=kubepulse.io%2Faggregation%3Dp-1",
        b"metricLabelSelector=kubepulse.io%2Faggregation%3Dp99.9999999999999999999",
        b"metricLabelSelector=kubepulse.io%2Fwindow%3D1s",
        b"metricLabelSelector=kubepulse.io%2Fwindow%3D0s",
        b"metricLabelSelector=kubepulse.io%2Fwindow%3D25h",
        b"metricLabelSelector=kubepulse.io%2Fwindow%3D1e9h",
        b"metricLabelSelector=kubepulse.io%2Fpredict%3D400d",
        b"metricLabelSelector=kubepulse.io%2Fpredict%3D2m,kubepulse.io%2Fmodel%3Doracle",
        b"metricLabelSelector=kubepulse.io%2Fnonsense%3D1",
        b"labelSelector=app%20in%20(",
        b"labelSelector=" + b"a%3Db," * 400,
        b"labelSelector=%ff%fe",
        b"metricLabelSelector=queue%3D%00",
    ],
)
def test_hostile_parameters_are_bad_requests(query: bytes) -> None:
    status, body = send(PODS.encode(), query)
    assert_refused(status, body, 400)


def test_a_repeated_parameter_is_answered_not_crashed_on() -> None:
    status, body = send(PODS.encode(), b"labelSelector=app%3Dweb&labelSelector=app%3Ddb")
    assert_refused(status, body, 400, 404)


def test_a_write_is_refused_as_the_read_only_api_it_is() -> None:
    status, body = send(PODS.encode(), method="DELETE")
    assert_refused(status, body, 405)


def test_unknown_parameters_are_ignored_like_kube_apiserver_does() -> None:
    status, body = send(PODS.encode(), b"labelSelector=app%3Dweb&watch=true&foo=bar")
    assert status == 200, body

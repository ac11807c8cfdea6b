"""The e2e harness' retries of requests that may have gone through (``ControlPlane``).

In CI a node creation under load once met a TLS "bad record mac" while reading
kube-apiserver's answer, and failed the test: a POST was never tried again, because it
may have gone through. ``create`` tries again and reads back the object that a 409
AlreadyExists on a later attempt says was created.

kube-apiserver is replaced by an ``httpx.MockTransport`` here: the fault is a broken TLS
stream, which a real apiserver on loopback cannot be made to produce on demand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.cluster.controlplane import APIError, ControlPlane, ControlPlaneOptions

NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
STATUS_409 = {"kind": "Status", "code": 409, "reason": "AlreadyExists"}
Answer = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ControlPlane:
    monkeypatch.setattr("tests.cluster.controlplane.time.sleep", lambda _seconds: None)
    return ControlPlane(ControlPlaneOptions(run_dir=tmp_path / "run", kube_bin_dir=tmp_path))


def server(answers: list[Answer | Exception]) -> tuple[httpx.Client, list[str]]:
    """A client whose requests get ``answers`` in turn; the requests seen, as text."""
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(request)

    return httpx.Client(transport=httpx.MockTransport(handle), base_url="https://k8s"), seen


def reply(status: int, body: object) -> Answer:
    return lambda _request: httpx.Response(status, content=json.dumps(body).encode())


def created(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, content=request.content)


def test_a_broken_answer_then_already_exists_reads_the_object_back(cluster: ControlPlane) -> None:
    stored = {**NODE, "metadata": {"name": "n1", "uid": "u-1"}}
    client, seen = server(
        [httpx.ReadError("bad record mac"), reply(409, STATUS_409), reply(200, stored)]
    )
    assert cluster.create("/api/v1/nodes", NODE, client=client) == stored
    assert seen == ["POST /api/v1/nodes", "POST /api/v1/nodes", "GET /api/v1/nodes/n1"]


def test_a_broken_answer_then_created_returns_the_creation(cluster: ControlPlane) -> None:
    client, seen = server([httpx.ReadError("bad record mac"), created])
    assert cluster.create("/api/v1/nodes", NODE, client=client) == NODE
    assert seen == ["POST /api/v1/nodes"] * 2


def test_already_exists_at_the_first_attempt_is_an_error(cluster: ControlPlane) -> None:
    client, seen = server([reply(409, STATUS_409)])
    with pytest.raises(APIError, match="409"):
        cluster.create("/api/v1/nodes", NODE, client=client)
    assert seen == ["POST /api/v1/nodes"]


def test_three_broken_answers_give_up(cluster: ControlPlane) -> None:
    client, seen = server([httpx.ReadError("bad record mac")] * 3)
    with pytest.raises(httpx.ReadError):
        cluster.create("/api/v1/nodes", NODE, client=client)
    assert len(seen) == 3


def test_a_plain_post_is_not_tried_again(cluster: ControlPlane) -> None:
    client, seen = server([httpx.ReadError("bad record mac")])
    with pytest.raises(httpx.ReadError):
        cluster.request("POST", "/api/v1/nodes", body=NODE, client=client)
    assert len(seen) == 1


def test_a_retried_eviction_accepts_the_pod_being_gone(cluster: ControlPlane) -> None:
    path = "/api/v1/namespaces/shop/pods/web-0/eviction"
    client, seen = server([httpx.ReadError("bad record mac"), reply(404, {"kind": "Status"})])
    cluster.request("POST", path, body={}, ok=(200, 201), ok_on_retry=(404,), client=client)
    assert seen == [f"POST {path}"] * 2
    client, _ = server([reply(404, {"kind": "Status"})])
    with pytest.raises(APIError, match="404"):
        cluster.request("POST", path, body={}, ok=(200, 201), ok_on_retry=(404,), client=client)

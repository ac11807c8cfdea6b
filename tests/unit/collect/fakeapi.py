"""A small in-memory kube-apiserver behind ``httpx.MockTransport``, for the collector tests.

It answers paged LISTs (``limit`` and ``continue``), GETs of single objects, and WATCHes
whose events the test pushes, and it can be told to expire continue tokens, refuse
paths with 403 or answer a watch with 410: the behaviours the collectors must handle
that a real control plane produces only under load or misconfiguration.
"""

from __future__ import annotations

import json
import queue
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from kubepulse.kubeconnect import ClusterConnection

HOST = "https://kube.test:6443"
END = object()
"""Pushed onto a watch: kube-apiserver ends that watch request."""


def connection() -> ClusterConnection:
    """Credentials for :data:`HOST` (never dialled: the transport is mocked)."""
    return ClusterConnection(
        host=HOST,
        ssl_context=ssl.create_default_context(),
        authorization=lambda: "Bearer test-token",
        description="kubeconfig /tmp/test-kubeconfig",
    )


def pod(
    name: str, namespace: str = "default", *, version: int = 1, uid: str | None = None
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or f"uid-{namespace}-{name}",
            "resourceVersion": str(version),
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": "app"}]},
        "status": {"phase": "Running"},
    }


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


class FakeAPIServer:
    """Collections by path; watches fed by the test through :meth:`push`."""

    def __init__(self) -> None:
        self.collections: dict[str, list[dict[str, Any]]] = {}
        self.objects: dict[str, dict[str, Any]] = {}
        self.resource_version = 100
        self.expire_continues = 0
        """How many of the next requests that carry a continue token get 410."""
        self.gone_watches: dict[str, int] = {}
        """Per path, how many of the next watch requests get 410."""
        self.forbidden: set[str] = set()
        self.requests: list[httpx.Request] = []
        self.watch_queues: dict[str, queue.Queue[object]] = {}
        self.watch_seconds = 5.0
        self.stopped = threading.Event()
        self._lock = threading.Lock()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def push(self, path: str, event: object) -> None:
        """Send ``event`` (a dict, or :data:`END`) on the watches of ``path``."""
        self._queue(path).put(event)

    def list_requests(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path and "watch" not in r.url.params]

    def watch_requests(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path and "watch" in r.url.params]

    def _queue(self, path: str) -> queue.Queue[object]:
        with self._lock:
            return self.watch_queues.setdefault(path, queue.Queue())

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
        path = request.url.path
        params = request.url.params
        if path in self.forbidden:
            user = "system:serviceaccount:default:viewer"
            return httpx.Response(
                403,
                json=status(403, "Forbidden", f'{path} is forbidden: User "{user}" cannot list'),
            )
        if "watch" in params:
            return self._watch(path)
        if path in self.objects:
            return httpx.Response(200, json=self.objects[path])
        if path not in self.collections:
            return httpx.Response(
                404,
                json=status(404, "NotFound", "the server could not find the requested resource"),
            )
        token = params.get("continue")
        if token and self.expire_continues > 0:
            self.expire_continues -= 1
            return httpx.Response(
                410, json=status(410, "Expired", "The provided continue parameter is too old")
            )
        items = self.collections[path]
        offset = int(token) if token else 0
        limit = int(params["limit"]) if "limit" in params else len(items) or 1
        page = items[offset : offset + limit]
        metadata: dict[str, Any] = {"resourceVersion": str(self.resource_version)}
        if offset + limit < len(items):
            metadata["continue"] = str(offset + limit)
        return httpx.Response(
            200, json={"kind": "List", "apiVersion": "v1", "metadata": metadata, "items": page}
        )

    def _watch(self, path: str) -> httpx.Response:
        if self.gone_watches.get(path, 0) > 0:
            self.gone_watches[path] -= 1
            return httpx.Response(
                410, json=status(410, "Expired", "too old resource version: 1 (50)")
            )
        events = self._queue(path)

        def stream() -> Iterator[bytes]:
            deadline = time.monotonic() + self.watch_seconds
            while time.monotonic() < deadline and not self.stopped.is_set():
                try:
                    event = events.get(timeout=0.02)
                except queue.Empty:
                    continue
                if event is END:
                    return
                assert isinstance(event, Mapping)
                yield json.dumps(event).encode() + b"\n"

        return httpx.Response(200, content=stream(), headers={"Content-Type": "application/json"})

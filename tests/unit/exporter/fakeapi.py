"""A tiny Kubernetes API server on loopback, for the exporter's one-shot API requests.

It answers ``GET /api/v1/pods`` (honouring a ``spec.nodeName`` field selector) and
``GET /api/v1/nodes/<name>`` from the objects it was given, records every request, and
can be told to fail. The real ``kubernetes`` client talks to it through a kubeconfig
that :meth:`FakeApiServer.write_kubeconfig` writes, so the request building, the
credentials and the answer decoding are the real ones.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

KUBECONFIG_TEMPLATE = """\
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {{server: "http://127.0.0.1:{port}"}}
users:
- name: exporter
  user: {{token: fake-token}}
contexts:
- name: fake
  context: {{cluster: fake, user: exporter}}
current-context: fake
"""


@dataclass
class FakeApiServer:
    """The server's state: its objects, what it was asked, and a forced failure."""

    pods: Sequence[Mapping[str, Any]] = ()
    nodes: Sequence[Mapping[str, Any]] = ()
    fail_with: int | None = None
    """Answer every request with this HTTP status instead."""
    requests: list[tuple[str, dict[str, list[str]], str | None]] = field(default_factory=list)
    """``(path, query, Authorization header)`` of every request, in order."""
    port: int = 0

    def write_kubeconfig(self, path: Path) -> Path:
        path.write_text(KUBECONFIG_TEMPLATE.format(port=self.port))
        return path

    def answer(self, path: str, query: Mapping[str, list[str]]) -> tuple[int, Any]:
        if self.fail_with is not None:
            return self.fail_with, _status(self.fail_with, "forced failure")
        if path == "/api/v1/pods":
            selector = query.get("fieldSelector", [""])[0]
            node = selector.removeprefix("spec.nodeName=") if selector else None
            items = [
                pod for pod in self.pods if node is None or pod["spec"].get("nodeName") == node
            ]
            return 200, {
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "100"},
                "items": items,
            }
        if path.startswith("/api/v1/nodes/"):
            name = path.rsplit("/", 1)[1]
            for node_object in self.nodes:
                if node_object["metadata"]["name"] == name:
                    return 200, node_object
            return 404, _status(404, f'nodes "{name}" not found', reason="NotFound")
        return 404, _status(404, "the server could not find the requested resource")


def _status(code: int, message: str, reason: str = "InternalError") -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@contextmanager
def fake_api_server(state: FakeApiServer) -> Iterator[FakeApiServer]:
    """Serve ``state`` on 127.0.0.1 (a free port, set in ``state.port``) while in use."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parsed.query)
            state.requests.append((parsed.path, query, self.headers.get("Authorization")))
            status, body = state.answer(parsed.path, query)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

"""The HTTPS server end to end, over a Unix socket: real TLS, real uvicorn, no network.

The client certificate travels through a real handshake into the scope
(PeerCertificateProtocol), the middleware authenticates it, and SIGTERM stops the
server only after the request in flight has been answered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from adapter.config import load_config
from adapter.security.authn import DelegatingAuthenticator, parse_authentication_configmap
from adapter.security.middleware import KubernetesAuthMiddleware, authenticated_user
from adapter.security.tls import (
    ServingCertificate,
    generate_self_signed_certificate,
    server_ssl_context,
    serving_dns_names,
)
from adapter.server import ServerError, build_server, listen_socket, serve
from tests.unit.adapter.security.certs import make_ca, make_leaf
from tests.unit.adapter.security.test_authn import PROXY, PROXY_CA, configmap_data

PODS = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/rps"


def app_with_tls_echo() -> FastAPI:
    app = FastAPI()

    @app.get("/{rest:path}")
    async def echo(request: Request, rest: str) -> dict[str, Any]:
        if rest == "slow":
            await asyncio.sleep(0.5)
        user = authenticated_user(request)
        tls = request.scope.get("extensions", {}).get("tls", {})
        return {
            "user": user.name if user else None,
            "client_cert_name": tls.get("client_cert_name"),
            "tls_version": tls.get("tls_version"),
        }

    return app


@pytest.fixture
def serving(tmp_path: Path) -> ServingCertificate:
    return generate_self_signed_certificate(
        tmp_path / "certs", dns_names=serving_dns_names("kubepulse-adapter", "kubepulse")
    )


def unix_listener(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(16)
    sock.setblocking(False)
    return sock


def client(
    path: Path, serving: ServingCertificate, pair: tuple[Path, Path] | None
) -> httpx.AsyncClient:
    assert serving.ca_file is not None
    context = ssl.create_default_context(cafile=str(serving.ca_file))
    if pair is not None:
        context.load_cert_chain(*map(str, pair))
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=str(path), verify=context),
        base_url="https://localhost",
    )


def protected(app: Any) -> KubernetesAuthMiddleware:
    authenticator = DelegatingAuthenticator(
        None,
        token_authenticator=None,
        config=parse_authentication_configmap(configmap_data()),
    )
    return KubernetesAuthMiddleware(app, authenticator, None)


def test_the_client_certificate_reaches_the_authenticator_through_a_real_handshake(
    tmp_path: Path, serving: ServingCertificate
) -> None:
    config = load_config([], {})
    context = server_ssl_context(serving, client_ca_pem=PROXY_CA.pem)
    socket_path = tmp_path / "adapter.sock"
    proxy_pair = PROXY.write(tmp_path, "proxy")
    stranger_ca = make_ca("someone-else")
    stranger_pair = make_leaf(stranger_ca, "front-proxy-client").write(tmp_path, "stranger")

    async def scenario() -> dict[str, Any]:
        server = build_server(protected(app_with_tls_echo()), config, ssl_context=context)
        task = asyncio.create_task(server.serve(sockets=[unix_listener(socket_path)]))
        while not server.started:
            await asyncio.sleep(0.01)
        results: dict[str, Any] = {}
        try:
            async with client(socket_path, serving, proxy_pair) as proxy:
                response = await proxy.get(PODS, headers={"X-Remote-User": "alice"})
                results["proxy"] = (response.status_code, response.json())
                # Same connection, second request: the certificate is still there.
                response = await proxy.get(PODS, headers={"X-Remote-User": "bob"})
                results["proxy-again"] = (response.status_code, response.json())
            async with client(socket_path, serving, None) as anonymous:
                response = await anonymous.get(PODS, headers={"X-Remote-User": "alice"})
                results["no-certificate"] = (response.status_code, response.json())
                response = await anonymous.get("/healthz")
                results["healthz"] = (response.status_code, response.json())
            async with client(socket_path, serving, stranger_pair) as stranger:
                try:
                    await stranger.get(PODS)
                    results["stranger"] = "answered"
                except httpx.HTTPError as exc:
                    results["stranger"] = type(exc).__name__
        finally:
            server.should_exit = True
            await task
        return results

    results = asyncio.run(scenario())
    status, body = results["proxy"]
    assert status == 200
    assert body == {
        "user": "alice",
        "client_cert_name": "CN=front-proxy-client",
        "tls_version": 0x0304,
    }
    assert results["proxy-again"][1]["user"] == "bob"
    assert results["no-certificate"] == (
        401,
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": "Unauthorized", "reason": "Unauthorized", "code": 401},
    )  # fmt: skip
    assert results["healthz"] == (
        200,
        {"user": None, "client_cert_name": None, "tls_version": 0x0304},
    )
    # A certificate from a CA nobody trusts does not get past the handshake.
    assert results["stranger"] in ("ConnectError", "ReadError", "RemoteProtocolError")


def test_sigterm_finishes_the_request_in_flight_then_serve_returns(
    tmp_path: Path, serving: ServingCertificate
) -> None:
    config = load_config(["--shutdown-timeout=5s"], {})
    context = server_ssl_context(serving)
    socket_path = tmp_path / "adapter.sock"
    app = KubernetesAuthMiddleware(app_with_tls_echo(), None, None)

    async def scenario() -> tuple[int, bool]:
        serving_task = asyncio.create_task(
            serve(app, config, ssl_context=context, sock=unix_listener(socket_path))
        )
        async with client(socket_path, serving, None) as http:
            for _ in range(200):
                try:
                    await http.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.01)
            slow = asyncio.create_task(http.get("/slow"))
            await asyncio.sleep(0.1)
            os.kill(os.getpid(), signal.SIGTERM)
            response = await slow
        await asyncio.wait_for(serving_task, timeout=10)
        return response.status_code, serving_task.done()

    previous = signal.getsignal(signal.SIGTERM)
    status, finished = asyncio.run(scenario())
    assert (status, finished) == (200, True)
    assert signal.getsignal(signal.SIGTERM) == previous  # handlers restored
    assert not socket_path.exists() or _refuses(socket_path)


def _refuses(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return True
    finally:
        probe.close()
    return False


def test_an_address_that_cannot_be_listened_on_is_a_clear_error() -> None:
    # 192.0.2.1 (TEST-NET-1) is never an address of this host: bind fails, nothing is sent.
    with pytest.raises(ServerError, match=r"cannot listen on 192\.0\.2\.1:6443: .*--secure-port"):
        listen_socket("192.0.2.1", 6443)


def test_a_listening_socket_says_tcp_so_asyncio_turns_nagle_off() -> None:
    # Without proto=IPPROTO_TCP asyncio skips TCP_NODELAY and every response waits ~40 ms
    # for the client's delayed ACK (measured: 44 ms per request instead of 1 ms).
    sock = listen_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert not sock.getblocking()
    finally:
        sock.close()


def test_setting_the_stop_event_ends_serve(tmp_path: Path, serving: ServingCertificate) -> None:
    config = load_config([], {})
    app = KubernetesAuthMiddleware(app_with_tls_echo(), None, None)
    socket_path = tmp_path / "adapter.sock"

    async def scenario() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(
            serve(
                app,
                config,
                ssl_context=server_ssl_context(serving),
                sock=unix_listener(socket_path),
                stop=stop,
            )
        )
        async with client(socket_path, serving, None) as http:
            for _ in range(200):
                try:
                    status = (await http.get("/healthz")).status_code
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        return status

    assert asyncio.run(scenario()) == 200

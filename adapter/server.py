"""The adapter's HTTPS server: uvicorn, run from Python with kubepulse's TLS and shutdown.

:func:`serve` is what the adapter's entry point calls once the app and its security are
built::

    config = load_config(argv)
    configure_logging(config.log.level, config.log.format)

    async def run() -> None:
        security = await AdapterSecurity.create(config)
        try:
            app = security.protect(create_app(...))
            await serve(app, config, ssl_context=security.ssl_context)
        finally:
            await security.aclose()

    asyncio.run(run())

What it adds to a plain ``uvicorn.run``:

- HTTPS with the given :class:`ssl.SSLContext` (client certificates requested), served
  by :class:`~adapter.security.tls.PeerCertificateProtocol`, so each request's scope
  carries the client's certificate for the authenticator;
- the listening socket is bound before uvicorn starts, so a busy port is a clear
  :class:`ServerError` rather than uvicorn exiting the process;
- an access log line per request (:class:`~adapter.logs.AccessLogMiddleware`) and
  uvicorn's own logs in the same structured format, no ``Server`` header, no proxy
  headers trusted (``X-Forwarded-For`` means nothing to an aggregated API server);
- SIGTERM and SIGINT stop accepting connections, let requests in flight finish within
  ``server.shutdown_timeout`` and make :func:`serve` return normally; a second SIGINT
  stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import socket
import ssl
import threading
from collections.abc import Generator
from types import FrameType
from typing import Any

import uvicorn

from adapter.config import AdapterConfig
from adapter.logs import AccessLogMiddleware
from adapter.security.middleware import ASGIApp
from adapter.security.tls import PeerCertificateProtocol
from kubepulse.errors import KubepulseError

__all__ = [
    "AdapterServer",
    "ServerError",
    "build_server",
    "listen_socket",
    "serve",
]

logger = logging.getLogger("kubepulse.adapter.server")

_HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ServerError(KubepulseError):
    """The server cannot start: the address is in use, or not an address of this host."""


class AdapterServer(uvicorn.Server):
    """uvicorn's server whose signal handling ends :meth:`serve` cleanly.

    uvicorn re-raises the signal it caught once it has shut down, which kills the
    process with that signal; the adapter's entry point should instead return and exit 0
    after a graceful SIGTERM. Signal handlers are only installed from the main thread.
    """

    received_signal: int | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Install SIGTERM/SIGINT handlers for the duration of :meth:`serve`."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
            return
        self.received_signal = sig
        self.should_exit = True
        logger.info(
            "stopping: finishing requests in flight",
            extra={"fields": {"signal": signal.Signals(sig).name}},
        )

    def bound_addresses(self) -> list[tuple[str, int]]:
        """Host and port of every listening socket (useful with port 0)."""
        addresses = []
        for server in getattr(self, "servers", []):
            for sock in server.sockets or ():
                name: Any = sock.getsockname()
                if isinstance(name, tuple):
                    addresses.append((str(name[0]), int(name[1])))
        return addresses


def listen_socket(address: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A TCP socket bound to ``address:port`` and listening (``::`` accepts IPv4 too).

    Raises:
        ServerError: the port is in use, or the address is not one of this host's.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    # proto must say TCP: asyncio turns Nagle's algorithm off (TCP_NODELAY) only for
    # sockets that do, and with it on every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and address == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((address, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ServerError(
            f"cannot listen on {address}:{port}: {exc.strerror or exc}; choose another "
            "--secure-port, or stop what uses it"
        ) from exc
    sock.setblocking(False)
    return sock


def build_server(
    app: ASGIApp, config: AdapterConfig, *, ssl_context: ssl.SSLContext
) -> AdapterServer:
    """A uvicorn server for ``app`` with the adapter's TLS, protocol and logging settings.

    ``app`` should already be protected (``AdapterSecurity.protect``); the access log is
    added here, outermost, so that it also records refused requests.
    """
    uvicorn_config = uvicorn.Config(
        AccessLogMiddleware(app),
        host=config.server.address,
        port=config.server.port,
        http=PeerCertificateProtocol,
        ws="none",
        lifespan="auto",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=math.ceil(config.server.shutdown_timeout_ms / 1000),
        ssl_context_factory=lambda _config, _default: ssl_context,
    )
    return AdapterServer(uvicorn_config)


async def serve(
    app: ASGIApp,
    config: AdapterConfig,
    *,
    ssl_context: ssl.SSLContext,
    sock: socket.socket | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve ``app`` over HTTPS until SIGTERM, SIGINT or ``stop``, then shut down gracefully.

    Listens on ``config.server`` (or on ``sock``, an already listening socket). ``stop``
    lets an embedding program (a test, the demo) end serving as SIGTERM would; signals
    are only handled when serving from the main thread. Returns once the server has
    stopped.

    Raises:
        ServerError: the address cannot be listened on.
    """
    listener = sock or listen_socket(config.server.address, config.server.port)
    server = build_server(app, config, ssl_context=ssl_context)
    name = listener.getsockname()
    where = {"address": name[0], "port": name[1]} if isinstance(name, tuple) else {"path": name}
    logger.info("serving HTTPS", extra={"fields": where})
    watcher = asyncio.create_task(_exit_when_set(stop, server)) if stop is not None else None
    try:
        await server.serve(sockets=[listener])
    finally:
        listener.close()
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    logger.info(
        "stopped",
        extra={
            "fields": {
                "signal": signal.Signals(server.received_signal).name
                if server.received_signal
                else None
            }
        },
    )


async def _exit_when_set(stop: asyncio.Event, server: AdapterServer) -> None:
    await stop.wait()
    server.should_exit = True

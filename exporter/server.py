"""The exporter's HTTP server: ``/metrics``, ``/healthz`` and a small index page.

It is the standard library's WSGI server with one thread per request, so a scrape that
takes a while never holds up ``/healthz`` or the index (two scrapes at once wait for each
other inside the collector, which runs one collection at a time). A connection idle for
60 s is dropped. ``/metrics`` is prometheus_client's own WSGI app
(:func:`prometheus_client.make_wsgi_app`), which does the content negotiation:

- Prometheus text format 0.0.4 by default;
- OpenMetrics 1.0 when the ``Accept`` header asks for ``application/openmetrics-text``
  (as Prometheus does), text format 1.0.0 for ``text/plain; version=1.0.0``;
- a gzip body when ``Accept-Encoding`` includes ``gzip``;
- ``?name[]=<family>`` to fetch a few families only (the registry must be created with
  ``support_collectors_without_names=True``: the exporter's collector describes nothing).

``/healthz`` answers ``200 ok`` while the health check passes and ``503`` with the
reason otherwise (a cgroup root that has been unreadable for several scans: restarting
with the right mount fixes it). ``/`` lists the endpoints; anything else is ``404``.

:meth:`MetricsServer.shutdown` stops accepting connections and lets requests in flight
finish for a grace period; the entry point calls it on SIGTERM and SIGINT. Requests are
logged at debug level (``kubepulse.exporter.http``); a request that fails inside the
server is logged with its traceback and answered ``500``.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import make_wsgi_app
from prometheus_client.registry import Collector

from exporter.config import format_listen_address
from kubepulse import __version__
from kubepulse.errors import KubepulseError

if TYPE_CHECKING:
    # wsgiref.types is new in Python 3.11; typeshed has the same types for 3.10.
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "HealthCheck",
    "HealthStatus",
    "MetricsServer",
    "ServerError",
    "create_app",
]

_LOGGER: Final = logging.getLogger("kubepulse.exporter.server")
_HTTP_LOGGER: Final = logging.getLogger("kubepulse.exporter.http")
_TEXT: Final = "text/plain; charset=utf-8"
_METRICS_PATH: Final = "/metrics"
_HEALTH_PATH: Final = "/healthz"
_READ_METHODS: Final = frozenset({"GET", "HEAD"})
_CONNECTION_TIMEOUT_SECONDS: Final = 60.0


class ServerError(KubepulseError):
    """The server cannot start: the address is in use or not an address of this host."""


@dataclass(frozen=True, slots=True)
class HealthStatus:
    """What ``/healthz`` answers."""

    ok: bool
    """True: ``200 ok``; False: ``503`` with :attr:`reason`."""
    reason: str = ""
    """Why the exporter is unhealthy, and what to do about it."""


HealthCheck = Callable[[], HealthStatus]
"""Called on every ``/healthz`` request; must return at once and never raise."""


def _plain(
    start_response: StartResponse,
    status: str,
    body: str,
    method: str,
    headers: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    payload = body.encode()
    start_response(
        status,
        [("Content-Type", _TEXT), ("Content-Length", str(len(payload))), *headers],
    )
    return [] if method == "HEAD" else [payload]


def create_app(registry: Collector, health: HealthCheck) -> WSGIApplication:
    """The exporter's WSGI app: ``/metrics`` from ``registry``, ``/healthz`` from ``health``."""
    metrics_app: WSGIApplication = make_wsgi_app(registry)
    index = (
        f"kubepulse exporter {__version__}\n\n"
        f"{_METRICS_PATH}  Prometheus metrics (text 0.0.4; OpenMetrics and gzip on request)\n"
        f"{_HEALTH_PATH}  200 while the node can be scanned, 503 with the reason otherwise\n"
    )

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == _METRICS_PATH:
            return metrics_app(environ, start_response)
        if path not in (_HEALTH_PATH, "/"):
            return _plain(start_response, "404 Not Found", f"{path} not found; see /\n", method)
        if method not in _READ_METHODS:
            return _plain(
                start_response,
                "405 Method Not Allowed",
                f"{method} is not allowed; use GET\n",
                method,
                [("Allow", "GET, HEAD")],
            )
        if path == "/":
            return _plain(start_response, "200 OK", index, method)
        status = health()
        if status.ok:
            return _plain(start_response, "200 OK", "ok\n", method)
        return _plain(
            start_response, "503 Service Unavailable", f"unhealthy: {status.reason}\n", method
        )

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            # Materialised here, so that an error while producing the body is caught too.
            return list(app(environ, start_response))
        except Exception:
            _LOGGER.exception("request failed", extra={"path": environ.get("PATH_INFO", "")})
            return _plain(
                start_response,
                "500 Internal Server Error",
                "internal error; see the exporter's log\n",
                environ.get("REQUEST_METHOD", "GET"),
            )

    return guarded


class _RequestHandler(WSGIRequestHandler):
    """wsgiref's handler, logging through :mod:`logging` instead of printing."""

    # A connection that sends nothing (or reads nothing) for this long is dropped, so
    # that idle or stalled clients cannot pile up threads.
    timeout = _CONNECTION_TIMEOUT_SECONDS

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """One debug line per request."""
        _HTTP_LOGGER.debug(
            "request",
            extra={
                "method": self.command,
                "path": self.path,
                "status": int(code) if str(code).isdigit() else str(code),
                "client": self.client_address[0],
            },
        )

    def log_message(self, format: str, *args: Any) -> None:
        """Protocol errors (malformed requests, timeouts) at debug level."""
        _HTTP_LOGGER.debug(format, *args)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    """A thread per request; counts requests in flight so that shutdown can wait for them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily) -> None:
        self.address_family = family
        self._in_flight = 0
        self._idle = threading.Condition()
        super().__init__(address, _RequestHandler, bind_and_activate=True)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the address (slow, and unused)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve one request, counted as in flight while it runs."""
        with self._idle:
            self._in_flight += 1
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> int:
        """Wait until no request is in flight, at most ``timeout`` seconds; returns the rest."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight and (remaining := deadline - time.monotonic()) > 0:
                self._idle.wait(remaining)
            return self._in_flight

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log what escaped a request's handler, rather than printing it on stderr."""
        _LOGGER.warning(
            "error while serving a request", exc_info=True, extra={"client": client_address[0]}
        )


def _address_family(host: str, port: int) -> socket.AddressFamily:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServerError(
            f"cannot listen on {format_listen_address(host, port)}: {host!r} does not "
            f"resolve ({exc.strerror}); give an IP address of this host, or 0.0.0.0"
        ) from exc
    return infos[0][0]


class MetricsServer:
    """The HTTP server, bound when created and serving from a thread once started.

    Args:
        app: the WSGI app, from :func:`create_app`.
        host: address to bind (``0.0.0.0``, ``::``, ``127.0.0.1``, a host name).
        port: TCP port; 0 picks a free one (see :attr:`port`).

    Raises:
        ServerError: the address is in use, not this host's, or not permitted.
    """

    def __init__(self, app: WSGIApplication, *, host: str, port: int) -> None:
        family = _address_family(host, port)
        try:
            self._server = _ThreadingServer((host, port), family)
        except OSError as exc:
            raise ServerError(
                f"cannot listen on {format_listen_address(host, port)}: {exc.strerror or exc}; "
                "choose another --listen-address, or stop what is using the port"
            ) from exc
        self._server.set_app(app)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """The bound address."""
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (the one chosen when 0 was asked for)."""
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        """``host:port`` of the bound socket."""
        return format_listen_address(self.host, self.port)

    def start(self) -> None:
        """Serve from a daemon thread until :meth:`shutdown`."""
        if self._thread is not None:
            raise RuntimeError("the metrics server was already started")
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name="kubepulse-http",
            daemon=True,
        )
        self._thread.start()

    def shutdown(self, grace_seconds: float = 5.0) -> None:
        """Stop accepting, let requests in flight finish within ``grace_seconds``, close."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        left = self._server.wait_idle(grace_seconds)
        if left:
            _LOGGER.warning(
                "%d request(s) still in flight after %.0f s; closing anyway", left, grace_seconds
            )
        self._server.server_close()

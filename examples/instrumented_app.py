"""A small instrumented service and its load generator, for the demo and the tests.

The service answers ``GET /work`` with a fixed service time on a bounded pool of workers,
so latency rises for real when load exceeds capacity: requests wait in a queue. It
publishes what application dashboards and HPAs use, with prometheus_client:

- ``http_requests_total{code}``: counter of answered requests;
- ``http_request_duration_seconds``: histogram of the full latency, queueing included;
- ``work_queue_depth``: gauge of requests waiting for a worker.

``POST /capacity?workers=N`` changes the pool size while running, so a test can give the
service one worker per replica an HPA asks for and close the loop.

    python examples/instrumented_app.py serve --listen 127.0.0.1:8080 --workers 2
    python examples/instrumented_app.py load --url http://127.0.0.1:8080/work \\
        --rate 5 --to-rate 40 --duration 120

Only loopback addresses are used by the project's tests and demo.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0)
MAX_WORKERS = 1000


class WorkerPool:
    """A resizable pool of workers: at most ``size`` requests are served at once."""

    def __init__(self, size: int) -> None:
        self._condition = threading.Condition()
        self._size = size
        self._busy = 0
        self.waiting = 0

    def resize(self, size: int) -> None:
        with self._condition:
            self._size = size
            self._condition.notify_all()

    def __enter__(self) -> None:
        with self._condition:
            self.waiting += 1
            while self._busy >= self._size:
                self._condition.wait()
            self.waiting -= 1
            self._busy += 1

    def __exit__(self, *_: object) -> None:
        with self._condition:
            self._busy -= 1
            self._condition.notify()


class Service:
    """The state behind the HTTP handler: the pool and the metrics."""

    def __init__(self, workers: int, service_seconds: float) -> None:
        self.registry = CollectorRegistry()
        self.pool = WorkerPool(workers)
        self.service_seconds = service_seconds
        self.requests = Counter(
            "http_requests", "Requests answered, by status code.", ["code"], registry=self.registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from accepting a request to answering it, queueing included.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        queue = Gauge("work_queue_depth", "Requests waiting for a worker.", registry=self.registry)
        queue.set_function(lambda: self.pool.waiting)

    def work(self) -> None:
        started = time.perf_counter()
        with self.pool:
            time.sleep(self.service_seconds)
        self.latency.observe(time.perf_counter() - started)
        self.requests.labels(code="200").inc()


def _handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Stay quiet: one line per request would drown the demo's output."""

        def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/work":
                service.work()
                self._reply(200, b"done\n")
            elif path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._reply(200, encoder(service.registry), content_type)
            elif path == "/healthz":
                self._reply(200, b"ok\n")
            else:
                self._reply(404, b"not found: try /work, /metrics or /healthz\n")

        def do_POST(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parts.query)
            if parts.path != "/capacity" or "workers" not in query:
                self._reply(400, b"use POST /capacity?workers=N\n")
                return
            try:
                workers = int(query["workers"][0])
            except ValueError:
                workers = 0
            if not 1 <= workers <= MAX_WORKERS:
                self._reply(400, f"workers must be 1..{MAX_WORKERS}\n".encode())
                return
            service.pool.resize(workers)
            self._reply(200, f"workers={workers}\n".encode())

    return Handler


def serve(listen: str, workers: int, service_seconds: float) -> None:
    host, _, port = listen.rpartition(":")
    service = Service(workers, service_seconds)
    server = ThreadingHTTPServer((host, int(port)), _handler(service))
    server.daemon_threads = True
    print(f"serving on http://{listen} with {workers} workers", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _request(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            response.read()
            return bool(response.status == 200)
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return False


def load(url: str, rate: float, to_rate: float, duration: float) -> None:
    """Open-loop arrivals whose rate ramps linearly from ``rate`` to ``to_rate`` per second."""
    if not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise SystemExit(f"refusing to load {url}: only loopback targets are allowed")
    started = time.monotonic()
    sent = 0
    failures: list[int] = []

    def count_failure(future: Future[bool]) -> None:
        if not future.result():
            failures.append(1)

    next_report = started + 5
    with ThreadPoolExecutor(max_workers=256) as executor:
        next_arrival = started
        while (now := time.monotonic()) < started + duration:
            current = rate + (to_rate - rate) * (now - started) / duration
            if now >= next_arrival:
                future = executor.submit(_request, url, 10.0)
                future.add_done_callback(count_failure)
                sent += 1
                next_arrival += 1.0 / max(current, 0.01)
            if now >= next_report:
                print(
                    f"load: {now - started:5.0f} s, {current:5.1f} req/s, sent {sent}, "
                    f"failed {len(failures)}",
                    file=sys.stderr,
                    flush=True,
                )
                next_report += 5
            time.sleep(max(0.0, min(next_arrival, next_report) - time.monotonic()))
    print(f"load: done, sent {sent} requests, {len(failures)} failed", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the instrumented service")
    serve_parser.add_argument("--listen", default="127.0.0.1:8080", help="host:port")
    serve_parser.add_argument("--workers", type=int, default=2)
    serve_parser.add_argument("--service-time", type=float, default=0.05, help="seconds")
    load_parser = commands.add_parser("load", help="send a ramp of requests")
    load_parser.add_argument("--url", required=True)
    load_parser.add_argument("--rate", type=float, default=5.0, help="requests/s at the start")
    load_parser.add_argument("--to-rate", type=float, help="requests/s at the end")
    load_parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    arguments = parser.parse_args(argv)
    if arguments.command == "serve":
        if not 1 <= arguments.workers <= MAX_WORKERS:
            parser.error(f"--workers must be 1..{MAX_WORKERS}")
        serve(arguments.listen, arguments.workers, arguments.service_time)
    else:
        to_rate = arguments.rate if arguments.to_rate is None else arguments.to_rate
        load(arguments.url, arguments.rate, to_rate, arguments.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())

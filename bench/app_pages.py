"""Application metrics for thousands of pods that do not run: a loopback page generator.

kwok pods run no process, so nothing serves their ``/metrics``. The side-by-side
benchmark (``bench/compare_adapters.py``) needs, per pod, what an instrumented web app
exposes: a request counter ``http_requests_total`` and a latency histogram
``http_request_duration_seconds`` (``_bucket`` with 14 ``le`` bounds plus ``+Inf``,
``_sum``, ``_count``). This module serves such series for many pods from one process,
on a few pages that carry their own ``namespace`` and ``pod`` labels (scraped with
``honor_labels: true``, like a federation endpoint): one page per ``--page-size`` pods
keeps Prometheus' target count, and this process' work, small.

Every figure is a deterministic function of the time since ``epoch_s``, so the expected
answers are known without asking either adapter:

- pod ``i`` serves ``rate_of(i)`` requests per second (counters grow linearly);
- a fixed share of its requests falls in each bucket (``shares_of(i)``), so the
  buckets' ratios never change and the p95 over any window is
  :func:`expected_quantile` (the same linear interpolation ``histogram_quantile``
  does), whatever the window holds.

    python bench/app_pages.py --namespace cmp-100=100 --namespace cmp-1000=1000

prints one JSON line (``{"url": ..., "pages": [...paths...]}``) when it serves and stops
on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
)
POD_PREFIX = "web"


def rate_of(index: int) -> float:
    """Requests per second pod ``index`` serves: 1 to 17, varied across pods."""
    return 1.0 + (index * 7) % 17


def shares_of(index: int) -> tuple[float, ...]:
    """Cumulative share of requests at or below each bound of :data:`BUCKETS`, then 1.0.

    A latency profile centred on a pod-dependent bucket (so p95 differs between pods),
    strictly increasing so no two bounds tie.
    """
    centre = 3 + index % 8  # bucket index around which most requests land
    weights = [math.exp(-((b - centre) ** 2) / 6.0) + 0.01 for b in range(len(BUCKETS) + 1)]
    total = sum(weights)
    cumulative: list[float] = []
    running = 0.0
    for weight in weights:
        running += weight
        cumulative.append(running / total)
    cumulative[-1] = 1.0
    return tuple(cumulative)


def expected_quantile(q: float, index: int) -> float:
    """``histogram_quantile(q, ...)`` of pod ``index``'s buckets over any window.

    Prometheus' interpolation: find the first bucket whose cumulative count reaches
    ``q`` x total and interpolate linearly inside it (from 0 for the first bucket);
    in the ``+Inf`` bucket the answer is the highest finite bound.
    """
    shares = shares_of(index)
    rank = q * shares[-1]
    lower_bound = 0.0
    lower_count = 0.0
    for bound, share in zip((*BUCKETS, math.inf), shares, strict=True):
        if share >= rank:
            if math.isinf(bound):
                return BUCKETS[-1]
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                share - lower_count
            )
        lower_bound, lower_count = bound, share
    return BUCKETS[-1]


def _mean_latency(index: int) -> float:
    """A plausible mean (for ``_sum``): the midpoint of each bucket, weighted."""
    shares = shares_of(index)
    mean = 0.0
    previous_bound, previous_share = 0.0, 0.0
    for bound, share in zip((*BUCKETS, BUCKETS[-1] * 2), shares, strict=True):
        mean += (share - previous_share) * (previous_bound + bound) / 2
        previous_bound, previous_share = bound, share
    return mean


@dataclass(frozen=True)
class _PodLines:
    """Pre-rendered ``name{labels} `` prefixes of one pod and the rate of each line."""

    prefixes: tuple[str, ...]
    rates: tuple[float, ...]


def _pod_lines(namespace: str, pod: str, index: int) -> _PodLines:
    base = f'namespace="{namespace}",pod="{pod}"'
    rate = rate_of(index)
    prefixes: list[str] = []
    rates: list[float] = []
    for bound, share in zip((*BUCKETS, math.inf), shares_of(index), strict=True):
        le = "+Inf" if math.isinf(bound) else repr(bound)
        prefixes.append(f'http_request_duration_seconds_bucket{{{base},le="{le}"}} ')
        rates.append(rate * share)
    prefixes.append(f"http_request_duration_seconds_sum{{{base}}} ")
    rates.append(rate * _mean_latency(index))
    prefixes.append(f"http_request_duration_seconds_count{{{base}}} ")
    rates.append(rate)
    prefixes.append(f'http_requests_total{{{base},code="200"}} ')
    rates.append(rate)
    return _PodLines(tuple(prefixes), tuple(rates))


HEADER = (
    "# HELP http_requests_total Requests served.\n"
    "# TYPE http_requests_total counter\n"
    "# HELP http_request_duration_seconds Request latency.\n"
    "# TYPE http_request_duration_seconds histogram\n"
)


class AppPages:
    """Pages of application metrics for ``{namespace: pod count}``; pods are ``web-<i>``."""

    def __init__(self, namespaces: dict[str, int], page_size: int, epoch_s: float) -> None:
        if page_size < 1:
            raise ValueError(f"page size must be >= 1, got {page_size}")
        self.epoch_s = epoch_s
        pods = [
            _pod_lines(namespace, f"{POD_PREFIX}-{index}", index)
            for namespace, count in namespaces.items()
            for index in range(count)
        ]
        self.pages = [pods[start : start + page_size] for start in range(0, len(pods), page_size)]

    def paths(self) -> list[str]:
        return [f"/pages/{number}/metrics" for number in range(len(self.pages))]

    def render(self, number: int, now_s: float) -> str:
        elapsed = max(0.0, now_s - self.epoch_s)
        out = [HEADER]
        for pod in self.pages[number]:
            for prefix, rate in zip(pod.prefixes, pod.rates, strict=True):
                out.append(f"{prefix}{rate * elapsed:.6f}\n")
        return "".join(out)


def serve(pages: AppPages, port: int) -> ThreadingHTTPServer:
    """Serve ``pages`` on 127.0.0.1:``port`` (0: a free port) in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = self.path.split("/")
            number = -1
            if len(parts) == 4 and parts[1] == "pages" and parts[3] == "metrics":
                try:
                    number = int(parts[2])
                except ValueError:
                    number = -1
            if not 0 <= number < len(pages.pages):
                self._send(404, b"no such page; see /pages/<n>/metrics\n")
                return
            self._send(200, pages.render(number, time.time()).encode())

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _namespace_arg(text: str) -> tuple[str, int]:
    name, _, count = text.partition("=")
    if not name or not count.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAMESPACE=PODS, got {text!r}")
    return name, int(count)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--namespace",
        type=_namespace_arg,
        action="append",
        required=True,
        help="NAMESPACE=PODS (repeat)",
    )
    parser.add_argument("--page-size", type=int, default=250)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--epoch", type=float, default=None, help="start of the counters (Unix s)")
    arguments = parser.parse_args(argv)
    epoch = time.time() if arguments.epoch is None else arguments.epoch
    pages = AppPages(dict(arguments.namespace), arguments.page_size, epoch)
    server = serve(pages, arguments.port)
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    print(
        json.dumps({"url": f"http://{host!s}:{port}", "pages": pages.paths(), "epoch": epoch}),
        flush=True,
    )
    stopped.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Real processes for the Prometheus source's tests: the example app and Debian's Prometheus.

Used by ``tests/integration/test_prometheus_source.py`` and by
``tests/fixtures/prometheus/record.py`` (which records the unit tests' answers). Every
process binds 127.0.0.1 on a free port, and every process started here is stopped by
the context manager that started it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.cluster.controlplane import find_tool

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "examples" / "instrumented_app.py"
INSTALL_HINT = (
    "prometheus not found in ~/.cache/kubepulse/tools/bin or PATH; install it with "
    "scripts/install-test-tools.sh (or apt-get install prometheus)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_for_http(url: str, timeout_s: float, what: str, process: subprocess.Popen[bytes]) -> None:
    """Poll ``url`` until it answers 200; raise with the process' output if it dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {timeout_s} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a process this module started, then kill it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass(frozen=True)
class AppProcess:
    """``examples/instrumented_app.py serve`` as one 'pod'."""

    pod: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def work_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/work"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"


@contextlib.contextmanager
def app_process(
    pod: str, *, workers: int = 2, service_time_s: float = 0.05
) -> Iterator[AppProcess]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(APP),
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--service-time",
            str(service_time_s),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        app = AppProcess(pod, port, process)
        wait_for_http(f"http://127.0.0.1:{port}/healthz", 15.0, f"app {pod}", process)
        yield app
    finally:
        stop(process)


@contextlib.contextmanager
def load_process(url: str, rate: float, to_rate: float, duration_s: float) -> Iterator[None]:
    """``instrumented_app.py load`` in the background for ``duration_s`` (stopped on exit)."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(APP),
            "load",
            "--url",
            url,
            "--rate",
            str(rate),
            "--to-rate",
            str(to_rate),
            "--duration",
            str(duration_s),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        stop(process)


@dataclass(frozen=True)
class PrometheusProcess:
    url: str
    process: subprocess.Popen[bytes]


def prometheus_config(apps: Sequence[AppProcess], namespace: str, scrape_interval_s: int) -> str:
    targets = "\n".join(
        f"      - targets: ['127.0.0.1:{app.port}']\n"
        f"        labels: {{namespace: {namespace}, pod: {app.pod}, node: n1}}"
        for app in apps
    )
    return (
        "global:\n"
        f"  scrape_interval: {scrape_interval_s}s\n"
        f"  scrape_timeout: {scrape_interval_s}s\n"
        "scrape_configs:\n"
        "  - job_name: apps\n"
        "    static_configs:\n"
        f"{targets}\n"
    )


def exporter_pages_config(exporter_url: str, nodes: Sequence[str], scrape_interval_s: int) -> str:
    """Scrape each node's page of a synthetic exporter, as one exporter per node."""
    host = exporter_url.removeprefix("http://")
    targets = "\n".join(
        f"      - targets: ['{host}']\n        labels: {{__metrics_path__: /nodes/{node}/metrics}}"
        for node in nodes
    )
    return (
        "global:\n"
        f"  scrape_interval: {scrape_interval_s}s\n"
        f"  scrape_timeout: {scrape_interval_s}s\n"
        "scrape_configs:\n"
        "  - job_name: kubepulse-exporter\n"
        "    honor_labels: true\n"
        "    static_configs:\n"
        f"{targets}\n"
    )


@contextlib.contextmanager
def prometheus_with_config(
    binary: Path, workdir: Path, config_text: str
) -> Iterator[PrometheusProcess]:
    """Debian's Prometheus on a free loopback port with ``config_text``, stopped on exit."""
    config = workdir / "prometheus.yml"
    config.write_text(config_text)
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            str(binary),
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/-/ready", 30.0, "prometheus", process)
        yield PrometheusProcess(url, process)
    finally:
        stop(process)
        log.close()


@contextlib.contextmanager
def prometheus_process(
    binary: Path,
    workdir: Path,
    apps: Sequence[AppProcess],
    *,
    namespace: str = "shop",
    scrape_interval_s: int = 1,
) -> Iterator[PrometheusProcess]:
    """Debian's Prometheus scraping ``apps`` with target labels namespace, pod, node."""
    config = prometheus_config(apps, namespace, scrape_interval_s)
    with prometheus_with_config(binary, workdir, config) as prometheus:
        yield prometheus


def find_prometheus() -> Path | None:
    return find_tool("prometheus")

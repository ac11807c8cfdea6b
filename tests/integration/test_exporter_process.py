"""The real exporter process on this machine: HTTP, formats, its own figures, signals, flags.

Each exporter is started as a separate process, the way the DaemonSet starts it
(``kubepulse-exporter serve``), on ``127.0.0.1`` with port 0; the port it got is read
from its ``serving`` log line, which these tests check too.

**Finding the exporter among the host processes.** Outside a pod the exporter is a host
process, and host processes are grouped by command name (``comm``). Started as ``python
-m exporter`` it would share the group ``python`` with pytest itself and anything else
called python. So the tests start it through a launcher script, a copy of what pip
writes for the ``kubepulse-exporter`` console script (``#!<this interpreter>``, import
``exporter.__main__``, call ``main``), named ``kp-itest-<random>``: the kernel names a
script's process after the script, so the exporter's group is its own, and the test
checks that it holds exactly one process, the exporter's PID. ``--top-host-processes``
is raised so that the group is published whatever else this machine runs (the default
top 10 ranks by CPU used, and a just-started exporter would be folded into ``other``).

**Tolerances.** The exporter reads its own ``/proc/<pid>/stat`` and ``statm`` during the
scrape; psutil reads the same files just before the request is sent and just after the
answer arrives. So:

- CPU: psutil-before - 0.005 s <= exporter <= psutil-after + 0.005 s. The counter is
  exact (the group's only process, shown since the first scan, so the per-scan deltas
  add up to its CPU time); the half tick only absorbs float rounding of tick counts.
- RSS: within the same bracket, widened by max(2 MiB, 5 %): the allocator maps and
  unmaps large buffers (file reads, the response body) inside a scrape, so resident
  memory at the moment of the scan can sit a little outside the two readings. A wrong
  unit (pages, KiB) or the wrong field (VmSize) is off by far more.
- node CPU by mode: the same bracket around psutil.cpu_times() (both from /proc/stat).
"""

from __future__ import annotations

import ctypes
import gzip
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.samples import Sample

from bench.fake_node import FakeNode, generate_fake_node
from tests.cluster.controlplane import find_tool

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
CPU_SLACK_S = 0.005
RSS_SLACK_BYTES = 2 * 1024 * 1024
RSS_SLACK_RATIO = 0.05
OPENMETRICS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
FAILURE_REASONS = {"permission_denied", "not_found", "parse_error", "io_error", "invalid_path"}
# Resolved in the parent: the child should not dlopen anything between fork and exec.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


def _die_with_the_test_runner() -> None:
    # Between fork and exec: a SIGKILLed pytest (a CI timeout) takes its exporters along.
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


# ---------------------------------------------------------------- the process


@dataclass
class Exporter:
    """A running exporter process and what it logged."""

    process: subprocess.Popen[bytes]
    log_path: Path
    comm: str
    port: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_lines(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def scrape(self) -> list[Sample]:
        status, _, body = self.get("/metrics")
        assert status == 200
        return [sample for family in parse_text(body.decode()) for sample in family.samples]

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def launcher(directory: Path) -> Path:
    """A ``kubepulse-exporter`` console script under a name of its own (module docstring)."""
    path = directory / f"kp-itest-{secrets.token_hex(3)}"
    path.write_text(
        f"#!{sys.executable}\nimport sys\nfrom exporter.__main__ import main\nsys.exit(main())\n"
    )
    path.chmod(0o755)
    return path


def start_exporter(directory: Path, *args: str, env: dict[str, str] | None = None) -> Exporter:
    directory.mkdir(parents=True, exist_ok=True)
    script = launcher(directory)
    log_path = directory / f"{script.name}.log"
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("KUBEPULSE_")},
        "PYTHONPATH": str(REPO_ROOT),
        **(env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(script), "serve", "--listen-address", "127.0.0.1:0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=environment,
            cwd=directory,
            start_new_session=True,
            preexec_fn=_die_with_the_test_runner,  # noqa: PLW1509 - only a prctl() call
        )
    exporter = Exporter(process=process, log_path=log_path, comm=script.name)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        serving = [line for line in _safe_log(exporter) if line.get("msg") == "serving"]
        if serving:
            exporter.port = int(serving[0]["listen_address"].rsplit(":", 1)[1])
            return exporter
        if process.poll() is not None:
            break
        time.sleep(0.05)
    if process.poll() is None:
        process.kill()
    process.wait()
    pytest.fail(
        f"the exporter did not start (exit status {process.returncode}); its log:\n"
        + log_path.read_text()
    )


def _safe_log(exporter: Exporter) -> list[dict[str, Any]]:
    try:
        return exporter.log_lines()
    except json.JSONDecodeError:  # a line being written
        return []


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    """The exporter on this machine, local mode, every host-process group shown."""
    started = start_exporter(
        tmp_path_factory.mktemp("exporter"),
        "--mode", "local",
        "--top-host-processes", "10000",
        "--node-name", "itest-node",
    )  # fmt: skip
    yield started
    started.stop()


def value(samples: list[Sample], name: str, **labels: str) -> float:
    matching = [
        sample.value
        for sample in samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(matching) == 1, f"{len(matching)} samples of {name}{labels}"
    return matching[0]


# ---------------------------------------------------------------- HTTP and formats


def test_healthz_and_unknown_paths(exporter: Exporter) -> None:
    assert exporter.get("/healthz")[::2] == (200, b"ok\n")
    assert exporter.get("/nope")[0] == 404


def test_metrics_pass_promtool(exporter: Exporter) -> None:
    promtool = find_tool("promtool")
    if promtool is None:
        message = (
            "promtool not found in ~/.cache/kubepulse/tools/bin or PATH; install it with "
            "scripts/install-test-tools.sh (or apt-get install prometheus)"
        )
        if in_ci():
            pytest.fail(f"{message}\n(CI=true: a missing prerequisite fails the run)")
        pytest.skip(message)
    status, headers, body = exporter.get("/metrics")

    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    checked = subprocess.run(
        [str(promtool), "check", "metrics"],
        input=body,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert body.count(b"\n# TYPE kubepulse_") >= 10


def test_openmetrics_and_gzip(exporter: Exporter) -> None:
    status, headers, body = exporter.get(
        "/metrics", {"Accept": OPENMETRICS_ACCEPT, "Accept-Encoding": "gzip"}
    )

    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    text = gzip.decompress(body).decode()
    assert text.endswith("# EOF\n")
    names = {family.name for family in parse_openmetrics(text)}
    assert "kubepulse_exporter_info" in names
    assert "kubepulse_host_process_cpu_usage_seconds" in names


def test_the_start_up_line_has_the_effective_settings(exporter: Exporter) -> None:
    lines = exporter.log_lines()
    for line in lines:
        assert list(line)[:4] == ["ts", "level", "logger", "msg"]
    [serving] = [line for line in lines if line["msg"] == "serving"]

    assert serving["pid"] == exporter.pid
    assert serving["listen_address"] == f"127.0.0.1:{exporter.port}"
    assert serving["metadata_mode"] == "local"
    assert serving["config"]["node_name"] == "itest-node"
    assert serving["config"]["top_host_processes"] == 10000
    assert serving["config"]["listen_address"] == "127.0.0.1:0"
    assert serving["origins"]["top_host_processes"] == "flag"
    assert serving["origins"]["sample_interval"] == "default"


# ---------------------------------------------------------------- its own figures


def test_the_exporter_finds_itself_with_psutil_s_cpu_and_rss(exporter: Exporter) -> None:
    own = psutil.Process(exporter.pid)
    assert own.name() == exporter.comm
    group = {"group": exporter.comm, "node": "itest-node"}
    for _ in range(3):
        # Let it burn some CPU between scrapes, so the counter has moved.
        for _ in range(5):
            exporter.get("/metrics")
        before_cpu, before_rss = sum(own.cpu_times()[:2]), own.memory_info().rss
        samples = exporter.scrape()
        after_cpu, after_rss = sum(own.cpu_times()[:2]), own.memory_info().rss

        assert value(samples, "kubepulse_host_processes", **group) == 1
        cpu = value(samples, "kubepulse_host_process_cpu_usage_seconds_total", **group)
        assert before_cpu - CPU_SLACK_S <= cpu <= after_cpu + CPU_SLACK_S
        rss = value(samples, "kubepulse_host_process_memory_rss_bytes", **group)
        slack = max(RSS_SLACK_BYTES, RSS_SLACK_RATIO * max(before_rss, after_rss))
        assert min(before_rss, after_rss) - slack <= rss <= max(before_rss, after_rss) + slack
    assert cpu > 0
    # prometheus_client's own process series describe the same process.
    assert value(samples, "process_cpu_seconds_total") >= cpu - CPU_SLACK_S


def test_this_machine_s_cgroups_and_proc_files_were_read(exporter: Exporter) -> None:
    before = psutil.cpu_times()
    samples = exporter.scrape()
    after = psutil.cpu_times()

    expected_version = "2" if Path("/sys/fs/cgroup/cgroup.controllers").is_file() else "1"
    info = [sample for sample in samples if sample.name == "kubepulse_exporter_info"]
    assert [sample.labels["cgroup_version"] for sample in info] == [expected_version]
    failures = [
        sample
        for sample in samples
        if sample.name == "kubepulse_exporter_errors_total"
        and sample.labels["reason"] in FAILURE_REASONS
    ]
    assert failures == []
    now = time.time()
    for collector in ("cgroups", "processes", "node", "exporter"):
        last = value(
            samples, "kubepulse_exporter_last_success_timestamp_seconds", collector=collector
        )
        assert now - 60 < last <= now + 1
    assert value(samples, "kubepulse_exporter_collection_duration_seconds_count",
                 collector="cgroups") >= 1  # fmt: skip
    assert value(samples, "kubepulse_node_memory_total_bytes") == psutil.virtual_memory().total
    for mode in ("user", "system", "idle"):
        node_cpu = value(samples, "kubepulse_node_cpu_seconds_total", mode=mode)
        assert getattr(before, mode) - CPU_SLACK_S <= node_cpu <= getattr(after, mode) + CPU_SLACK_S
    assert exporter.get("/healthz")[0] == 200


# ---------------------------------------------------------------- a simulated node


@pytest.fixture(scope="module")
def fake_node(tmp_path_factory: pytest.TempPathFactory) -> FakeNode:
    return generate_fake_node(tmp_path_factory.mktemp("node"), pods=6, processes=160, seed=7)


def test_a_simulated_node_end_to_end(fake_node: FakeNode, tmp_path: Path) -> None:
    node_exporter = start_exporter(
        tmp_path,
        "--mode", "local",
        "--node-name", "fake-1",
        "--proc-root", str(fake_node.proc_root),
        "--cgroup-root", str(fake_node.cgroup_root),
        "--top-host-processes", "5",
    )  # fmt: skip
    try:
        samples = node_exporter.scrape()
    finally:
        assert node_exporter.stop() == 0

    containers = {
        (sample.labels["pod_uid"], sample.labels["container_id"])
        for sample in samples
        if sample.name == "kubepulse_container_info"
    }
    assert containers == {
        (pod.uid, f"containerd://{container.container_id}")
        for pod in fake_node.pods
        for container in pod.app_containers
    }
    for pod in fake_node.pods:
        labels = {"pod_uid": pod.uid, "namespace": ""}
        expected_cpu = (sum(c.cpu_usec for c in pod.containers) + 1000) / 1e6
        assert value(samples, "kubepulse_pod_cpu_usage_seconds_total", **labels) == pytest.approx(
            expected_cpu
        )
        qos = value(samples, "kubepulse_pod_qos_class_info", pod=pod.uid, qos_class=pod.qos_class)
        assert qos == 1
        for container in pod.app_containers:
            working_set = value(
                samples,
                "kubepulse_container_memory_working_set_bytes",
                container=f"{container.container_id}",
            )
            assert working_set == container.memory_bytes - container.memory_bytes // 8
            processes = value(
                samples, "kubepulse_container_processes", container=container.container_id
            )
            assert processes == len(container.pids)
    shims = value(samples, "kubepulse_node_runtime_processes", component="shim")
    assert shims == len(fake_node.pods)
    groups = {s.labels["group"] for s in samples if s.name == "kubepulse_host_processes"}
    assert len(groups) == 6  # the top 5 and "other"
    assert "other" in groups
    host_total = sum(s.value for s in samples if s.name == "kubepulse_host_processes")
    assert host_total == sum(fake_node.host_processes.values())
    assert value(samples, "kubepulse_node_memory_total_bytes") == 65843200 * 1024


# ---------------------------------------------------------------- signals and flags


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_it_promptly_with_status_0(signum: int, tmp_path: Path) -> None:
    stopping = start_exporter(tmp_path, "--mode", "local")
    assert stopping.get("/healthz")[0] == 200

    started = time.monotonic()
    status = stopping.stop(signum)
    elapsed = time.monotonic() - started

    assert status == 0
    assert elapsed < 3.0
    messages = [line["msg"] for line in stopping.log_lines()]
    assert messages[-3:] == [f"received {signal.Signals(signum).name}", "stopping", "stopped"]


def test_auto_mode_without_a_cluster_says_so_and_serves(tmp_path: Path) -> None:
    environment = {"HOME": str(tmp_path), "KUBECONFIG": ""}
    environment.update({"KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": ""})
    auto = start_exporter(tmp_path, "--log-format", "json", env=environment)
    try:
        lines = auto.log_lines()
        assert auto.get("/healthz")[0] == 200
    finally:
        assert auto.stop() == 0

    [local] = [line for line in lines if line["msg"].startswith("running without a cluster")]
    assert local["reason"].startswith("--mode auto found no Kubernetes API credentials")
    [serving] = [line for line in lines if line["msg"] == "serving"]
    assert serving["metadata_mode"] == "local"


def run_module(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def test_a_bad_flag_exits_2_with_a_message() -> None:
    result = run_module("serve", "--sample-interval", "1", "--listen-address", "127.0.0.1:0")

    assert result.returncode == 2
    assert "--sample-interval / KUBEPULSE_SAMPLE_INTERVAL (from --sample-interval='1')" in (
        result.stderr
    )
    assert "give a duration from 100ms to 5m" in result.stderr


def test_a_bad_variable_and_an_unknown_flag_exit_2() -> None:
    bad_variable = run_module("--listen-address", "127.0.0.1:0", env={"KUBEPULSE_MODE": "remote"})
    unknown_flag = run_module("--no-such-flag")

    assert bad_variable.returncode == 2
    assert "--mode / KUBEPULSE_MODE (from KUBEPULSE_MODE='remote')" in bad_variable.stderr
    assert unknown_flag.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in unknown_flag.stderr


def test_version_and_which_through_python_dash_m() -> None:
    version = run_module("--version")
    which = run_module("which", str(os.getpid()), "-o", "json")

    assert version.returncode == 0
    assert version.stdout.startswith("kubepulse-exporter ")
    assert which.returncode == 0
    assert json.loads(which.stdout)["pid"] == os.getpid()

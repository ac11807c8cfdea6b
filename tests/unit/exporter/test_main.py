"""``kubepulse-exporter``'s entry point: exit statuses, and how ``--mode`` picks a source.

The metadata choice is checked against a small fake API server on loopback
(:mod:`tests.unit.exporter.fakeapi`) through the real Kubernetes client; the process
itself (serving, signals, logs) is exercised in ``tests/integration``.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from exporter.__main__ import choose_metadata, main
from exporter.config import ExporterConfig
from exporter.metadata import LocalMetadata, MetadataMode
from exporter.podwatch import ApiClientConfigError, NodePodWatcher
from kubepulse import __version__
from tests.unit.exporter.fakeapi import FakeApiServer, fake_api_server

NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1", "uid": "n-1"}}


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """serve() configures the root logger for the process; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    urllib3_level = logging.getLogger("urllib3").level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("urllib3").setLevel(urllib3_level)
    logging.captureWarnings(False)


@pytest.fixture
def no_cluster_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """No in-cluster variables, no KUBECONFIG, an empty home: no credentials anywhere."""
    for name in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return {}


def config(**settings: Any) -> ExporterConfig:
    return ExporterConfig(node_name="worker-1", **settings)


# ---------------------------------------------------------------- exit statuses


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0

    assert capsys.readouterr().out == f"kubepulse-exporter {__version__}\n"


def test_a_bad_value_exits_2_naming_the_flag_and_its_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--sample-interval", "1", "--mode", "local"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("kubepulse-exporter: invalid configuration (1 problem):")
    assert "--sample-interval / KUBEPULSE_SAMPLE_INTERVAL" in err
    assert "give a duration from 100ms to 5m" in err


def test_an_unknown_flag_exits_2_with_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-such-flag"]) == 2

    err = capsys.readouterr().err
    assert "unrecognized arguments: --no-such-flag" in err
    assert "usage: kubepulse-exporter serve" in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--help"]) == 0

    assert "KUBEPULSE_LISTEN_ADDRESS" in capsys.readouterr().out


def test_a_busy_port_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        status = main(
            ["--listen-address", f"127.0.0.1:{port}", "--mode", "local", "--log-format", "json"]
        )

    assert status == 1
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[-1]["level"] == "error"
    assert f"cannot listen on 127.0.0.1:{port}" in lines[-1]["msg"]


# ---------------------------------------------------------------- the metadata source


def test_local_mode_asks_nobody() -> None:
    def refuse(_kubeconfig: str | None) -> Any:
        raise AssertionError("no client in local mode")

    choice = choose_metadata(config(mode="local"), {}, load_client=refuse)

    assert choice.mode is MetadataMode.LOCAL
    assert isinstance(choice.source, LocalMetadata)
    assert choice.reason == "--mode local"


def test_auto_without_credentials_runs_locally_and_says_why(
    no_cluster_environment: dict[str, str],
) -> None:
    choice = choose_metadata(config(mode="auto"), no_cluster_environment)

    assert choice.mode is MetadataMode.LOCAL
    assert choice.reason.startswith("--mode auto found no Kubernetes API credentials")
    assert "KUBECONFIG is unset" in choice.reason


def test_cluster_without_credentials_is_an_error(no_cluster_environment: dict[str, str]) -> None:
    with pytest.raises(ApiClientConfigError, match="no Kubernetes API credentials"):
        choose_metadata(config(mode="cluster"), no_cluster_environment)


def test_auto_with_a_kubeconfig_whose_server_knows_the_node_watches(tmp_path: Path) -> None:
    state = FakeApiServer(nodes=[NODE])
    with fake_api_server(state):
        kubeconfig = state.write_kubeconfig(tmp_path / "kubeconfig")
        choice = choose_metadata(config(mode="auto", kubeconfig=str(kubeconfig)), {})
        choice.stop()

    assert choice.mode is MetadataMode.CLUSTER
    assert isinstance(choice.source, NodePodWatcher)
    assert choice.source.node_name == "worker-1"
    assert [path for path, _, _ in state.requests] == ["/api/v1/nodes/worker-1"]


def test_auto_with_a_server_that_does_not_know_the_node_runs_locally(tmp_path: Path) -> None:
    state = FakeApiServer(nodes=[{**NODE, "metadata": {"name": "other"}}])
    with fake_api_server(state):
        kubeconfig = state.write_kubeconfig(tmp_path / "kubeconfig")
        choice = choose_metadata(config(mode="auto", kubeconfig=str(kubeconfig)), {})

    assert choice.mode is MetadataMode.LOCAL
    assert f"127.0.0.1:{state.port} has no node named worker-1" in choice.reason
    assert "--node-name" in choice.reason


def test_auto_with_a_server_that_does_not_answer_runs_locally(tmp_path: Path) -> None:
    state = FakeApiServer()
    with fake_api_server(state):
        kubeconfig = state.write_kubeconfig(tmp_path / "kubeconfig")
    # The server is gone: its port refuses connections now.
    choice = choose_metadata(config(mode="auto", kubeconfig=str(kubeconfig)), {})

    assert choice.mode is MetadataMode.LOCAL
    assert "did not answer" in choice.reason


def test_auto_with_a_forbidden_node_read_runs_locally(tmp_path: Path) -> None:
    state = FakeApiServer(fail_with=403)
    with fake_api_server(state):
        kubeconfig = state.write_kubeconfig(tmp_path / "kubeconfig")
        choice = choose_metadata(config(mode="auto", kubeconfig=str(kubeconfig)), {})

    assert choice.mode is MetadataMode.LOCAL
    assert "answered HTTP 403 for node worker-1" in choice.reason


def test_cluster_mode_does_not_probe(tmp_path: Path) -> None:
    state = FakeApiServer(fail_with=500)
    with fake_api_server(state):
        kubeconfig = state.write_kubeconfig(tmp_path / "kubeconfig")
        choice = choose_metadata(config(mode="cluster", kubeconfig=str(kubeconfig)), {})
        choice.stop()

    assert choice.mode is MetadataMode.CLUSTER
    assert state.requests == []


def test_auto_inside_a_pod_trusts_the_service_account() -> None:
    def probe(_client: Any, _node: str) -> str | None:
        raise AssertionError("inside a pod the API server is not probed")

    choice = choose_metadata(
        config(mode="auto", api_qps=2.0),
        {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
        load_client=lambda _kubeconfig: kubernetes.client.ApiClient(),
        probe_node=probe,
    )
    choice.stop()

    assert choice.mode is MetadataMode.CLUSTER
    assert choice.reason == "--mode auto found the API server"

"""The ``kubepulse-adapter`` entry point: what a user sees when start-up cannot go on.

The process is run for real (``python -m adapter``); nothing it needs is reachable on
purpose, so no network traffic happens. Serving itself is shown by the e2e tier, where
the same entry point runs against a real kube-apiserver.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapter.__main__ import main

KUBECONFIG_OF_NOTHING = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: not-used}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def run_adapter(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KUBEPULSE_ADAPTER_", "KUBERNETES_"))
    }
    environment.update(HOME=str(home), KUBECONFIG=str(home / "no-such-kubeconfig"))
    return subprocess.run(
        [sys.executable, "-m", "adapter", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("kubepulse-adapter ")


def test_an_invalid_configuration_exits_2_listing_every_problem(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--secure-port=0", "--log-level=loud"]) == 2
    error = capsys.readouterr().err
    assert "invalid configuration (2 problems)" in error
    assert "server.port (from --secure-port): out of range (got 0)" in error
    assert "log.level (from --log-level)" in error


def test_missing_cluster_credentials_exit_1_saying_what_to_set(tmp_path: Path) -> None:
    finished = run_adapter(
        "serve",
        "--no-authentication",
        "--no-authorization",
        "--no-discovery",
        "--static-target=http://127.0.0.1:9/metrics",
        f"--cert-dir={tmp_path / 'certs'}",
        "--checkpoint-path=",
        "--bind-address=127.0.0.1",
        home=tmp_path,
    )
    assert finished.returncode == 1, finished.stderr
    assert "cannot load Kubernetes credentials" in finished.stderr
    assert "--kubeconfig" in finished.stderr


def test_an_unwritable_checkpoint_directory_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    # Credentials are loaded first; the checkpoint fails before anything is contacted.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG_OF_NOTHING)
    finished = run_adapter(
        f"--kubeconfig={kubeconfig}",
        "--no-authentication",
        "--no-authorization",
        "--no-discovery",
        "--static-target=http://127.0.0.1:9/metrics",
        f"--cert-dir={tmp_path / 'certs'}",
        f"--checkpoint-path={blocker / 'store.checkpoint'}",
        home=tmp_path,
    )
    assert finished.returncode == 1, finished.stderr
    assert f"cannot create the checkpoint directory {blocker}" in finished.stderr

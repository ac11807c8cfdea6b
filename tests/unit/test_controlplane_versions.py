"""How the e2e harness adapts to the Kubernetes release it runs (issue 8, compatibility).

Pure logic from ``tests/cluster/controlplane.py``: reading the minor from a binary's
``--version`` output, and spelling the controller list the way an older
kube-controller-manager accepts it (it refuses unknown names and exits).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.controlplane import (
    DEFAULT_CONTROLLERS,
    ControlPlane,
    ControlPlaneError,
    ControlPlaneOptions,
    MissingToolsError,
    controllers_for_minor,
    kube_minor_version,
)


@pytest.mark.parametrize(
    ("output", "minor"),
    [("Kubernetes v1.36.4\n", 36), ("Kubernetes v1.29.15", 29), ("Kubernetes v1.27.16-dirty", 27)],
)
def test_the_minor_comes_from_the_version_line(output: str, minor: int) -> None:
    assert kube_minor_version(output) == minor


def test_an_unreadable_version_says_how_to_get_a_good_binary() -> None:
    with pytest.raises(ControlPlaneError, match=r"install-old-kube\.sh"):
        kube_minor_version("exec format error")


def test_current_releases_keep_the_list_unchanged() -> None:
    assert controllers_for_minor(DEFAULT_CONTROLLERS, 36) == DEFAULT_CONTROLLERS
    assert controllers_for_minor(DEFAULT_CONTROLLERS, 29) == DEFAULT_CONTROLLERS


def test_1_28_has_no_separate_taint_eviction_controller() -> None:
    adapted = controllers_for_minor(DEFAULT_CONTROLLERS, 28)
    assert "taint-eviction-controller" not in adapted
    assert len(adapted) == len(DEFAULT_CONTROLLERS) - 1
    assert "horizontal-pod-autoscaler-controller" in adapted


def test_before_1_28_controllers_have_their_short_names() -> None:
    adapted = controllers_for_minor(DEFAULT_CONTROLLERS, 27)
    assert "horizontalpodautoscaling" in adapted
    assert "podgc" in adapted
    assert not any(name.endswith("-controller") for name in adapted)


def test_kube_binaries_come_from_the_alternative_dir(tmp_path: Path) -> None:
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        binary = tmp_path / name
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    cluster = ControlPlane(ControlPlaneOptions(run_dir=tmp_path / "run", kube_bin_dir=tmp_path))
    assert cluster.tool("kube-apiserver") == str(tmp_path / "kube-apiserver")
    assert "kube-scheduler" not in cluster.missing_tools()


def test_a_missing_alternative_binary_names_the_old_kube_script(tmp_path: Path) -> None:
    cluster = ControlPlane(ControlPlaneOptions(run_dir=tmp_path / "run", kube_bin_dir=tmp_path))
    with pytest.raises(MissingToolsError, match=r"install-old-kube\.sh"):
        cluster.tool("kube-apiserver")
    assert {"kube-apiserver", "kube-controller-manager", "kube-scheduler"} <= set(
        cluster.missing_tools()
    )

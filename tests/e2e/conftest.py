"""Fixtures for the e2e tier: one real control plane per test session.

``cluster`` is a :class:`tests.cluster.controlplane.ControlPlane`:

- ``cluster.kubeconfig``: admin kubeconfig path (``system:masters``);
- ``cluster.kubectl(*args)``: the project's kubectl against it;
- ``cluster.api_url``: ``https://127.0.0.1:<port>``;
- ``cluster.api_client``: a ``kubernetes.client.ApiClient``;
- ``cluster.create_nodes(n)``, ``cluster.create_pods(n, ...)``: concurrent bulk helpers.

When the binaries are missing, every test that uses it is skipped with the
install command, except in CI (``CI=true``), where the same message fails it:
CI must never pass by skipping the tier.

``KUBEPULSE_E2E_KUBE_BIN_DIR`` runs the tier against another Kubernetes
release: kube-apiserver, kube-controller-manager, kube-scheduler (and kubectl,
if present) come from that directory, e.g. the one
``scripts/install-old-kube.sh`` prints; etcd, kwok and metrics-server stay the
main tools'. Set but pointing at missing binaries, it is a missing prerequisite
like any other (a skip locally, a failure in CI), never a silent fallback.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.cluster.controlplane import (
    CONTROL_PLANE_TOOLS,
    METRICS_SERVER_TOOLS,
    ControlPlane,
    ControlPlaneError,
    ControlPlaneOptions,
    MissingPrerequisiteError,
    MissingToolsError,
    install_termination_handlers,
    missing_tools,
)

# Lines of each component's log that a failing test's report shows.
LOG_TAIL_LINES = 40
# Directory of another release's kube binaries to run the tier against.
KUBE_BIN_DIR_ENV = "KUBEPULSE_E2E_KUBE_BIN_DIR"


def kube_bin_dir() -> Path | None:
    """``$KUBEPULSE_E2E_KUBE_BIN_DIR`` as a path, or None when unset or empty."""
    value = os.environ.get(KUBE_BIN_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def in_ci() -> bool:
    """Whether this run is CI's, where a missing prerequisite is a failure."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing_prerequisite(message: str) -> NoReturn:
    """Skip locally, fail in CI, with the same message."""
    if in_ci():
        pytest.fail(
            f"{message}\n(CI=true: a missing e2e prerequisite fails the run)", pytrace=False
        )
    pytest.skip(message)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd, kube-apiserver, controller-manager, scheduler and kwok on loopback, for the session.

    The run directory (logs, kubeconfig, certificates) is under pytest's
    basetemp, which keeps the last three runs for inspection.
    """
    alt_bin_dir = kube_bin_dir()
    if alt_bin_dir is None:
        missing = missing_tools(CONTROL_PLANE_TOOLS)
        if missing:
            missing_prerequisite(str(MissingToolsError(missing)))
    install_termination_handlers()
    control_plane = ControlPlane(
        ControlPlaneOptions(
            run_dir=tmp_path_factory.mktemp("control-plane"), kube_bin_dir=alt_bin_dir
        )
    )
    if alt_bin_dir is not None:
        missing = control_plane.missing_tools()
        if missing:
            missing_prerequisite(str(MissingToolsError(missing, looked_in=alt_bin_dir)))
    # Failures are reported outside the except blocks so that the report shows
    # the component's log tail, not a chain of harness tracebacks.
    unmet: str | None = None
    broken: str | None = None
    try:
        control_plane.start()
    except MissingPrerequisiteError as exc:
        unmet = str(exc)
    except ControlPlaneError as exc:
        broken = str(exc)
    except BaseException:
        control_plane.stop()
        raise
    if unmet is not None or broken is not None:
        control_plane.stop()
        if unmet is not None:
            missing_prerequisite(unmet)
        pytest.fail(f"the e2e control plane did not come up: {broken}", pytrace=False)
    try:
        yield control_plane
    finally:
        control_plane.stop()
        leftovers = control_plane.leftover_processes()
        if leftovers:
            pytest.fail(f"processes survived stop(): {leftovers}", pytrace=False)


@pytest.fixture(scope="module")
def metrics_server(cluster: ControlPlane) -> Iterator[ControlPlane]:
    """metrics-server registered as ``v1beta1.metrics.k8s.io``, for one test module."""
    missing = missing_tools(METRICS_SERVER_TOOLS)
    if missing:
        missing_prerequisite(str(MissingToolsError(missing)))
    broken: str | None = None
    try:
        cluster.enable_metrics_server()
    except ControlPlaneError as exc:
        broken = str(exc)
    if broken is not None:
        pytest.fail(f"metrics-server did not come up: {broken}", pytrace=False)
    yield cluster
    cluster.disable_metrics_server()


@pytest.fixture
def namespace(cluster: ControlPlane) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    cluster.ensure_namespace(name)
    yield name
    cluster.delete_namespace(name, wait=False)


@pytest.fixture
def node_pool(cluster: ControlPlane) -> Iterator[Callable[[int], tuple[str, list[str]]]]:
    """Factory: ``node_pool(n)`` creates ``n`` Ready kwok nodes only this test uses.

    Returns ``(pool_label_value, node_names)``; the nodes carry
    ``kubepulse.io/pool=<value>`` for a nodeSelector, and are deleted afterwards.
    """
    created: list[str] = []

    def make(count: int) -> tuple[str, list[str]]:
        pool = f"pool-{uuid.uuid4().hex[:8]}"
        names = cluster.create_nodes(count, prefix=pool, labels={"kubepulse.io/pool": pool})
        created.extend(names)
        cluster.wait_for_nodes_ready(names)
        return pool, names

    yield make
    if created:
        cluster.delete_nodes(created)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach every component's log tail to the report of a failing e2e test."""
    report: pytest.TestReport = yield
    if report.failed and isinstance(item, pytest.Function):
        control_plane = item.funcargs.get("cluster")
        if isinstance(control_plane, ControlPlane):
            report.sections.append(
                (f"control plane logs ({call.when})", control_plane.diagnostics(LOG_TAIL_LINES))
            )
    return report

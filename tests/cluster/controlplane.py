"""A real Kubernetes control plane on loopback, started and stopped from Python.

Upstream binaries only (built by ``scripts/install-test-tools.sh``): etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, kwok for fake nodes
and pods, and metrics-server on demand. Every listener binds 127.0.0.1 on a
free port; every file lives in one run directory (certificates, kubeconfigs,
etcd data, one log per component).

    with ControlPlane() as cluster:
        cluster.create_nodes(3)
        cluster.kubectl("get", "nodes")

Every process runs in its own process group and is stopped with that group,
whatever happens: ``stop()`` in ``finally`` blocks, an ``atexit`` hook,
SIGTERM/SIGHUP turned into ``SystemExit`` (see
:func:`install_termination_handlers`), and on Linux ``PR_SET_PDEATHSIG`` so
that even a SIGKILLed Python takes its children along.
"""

from __future__ import annotations

import atexit
import base64
import concurrent.futures
import contextlib
import ctypes
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

import httpx
import yaml

if TYPE_CHECKING:
    # Imported for real in start(): `cryptography` is a test-only dependency,
    # and this module must import without it so that the e2e fixture can turn
    # its absence into a clear skip (or a CI failure) instead of a collection error.
    from tests.cluster.pki import ClusterPKI, KeyPair

__all__ = [
    "CONTROL_PLANE_TOOLS",
    "HPA_FAST_FLAGS",
    "KUBE_TOOLS",
    "KWOK_NODE_ANNOTATION",
    "KWOK_USAGE_CPU_ANNOTATION",
    "KWOK_USAGE_MEMORY_ANNOTATION",
    "METRICS_SERVER_TOOLS",
    "OTHER_TOOLS",
    "APIError",
    "ComponentError",
    "ControlPlane",
    "ControlPlaneError",
    "ControlPlaneOptions",
    "KubectlError",
    "ManagedProcess",
    "MissingPrerequisiteError",
    "MissingToolsError",
    "WaitTimeoutError",
    "controllers_for_minor",
    "find_tool",
    "install_termination_handlers",
    "kube_minor_version",
    "missing_tools",
    "tools_bin_dir",
]

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
KWOK_CONFIG_DIR = Path(__file__).resolve().parent / "kwok"
INSTALL_SCRIPT = "scripts/install-test-tools.sh"
OLD_KUBE_INSTALL_SCRIPT = "scripts/install-old-kube.sh"

CONTROL_PLANE_TOOLS: tuple[str, ...] = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
)
METRICS_SERVER_TOOLS: tuple[str, ...] = ("metrics-server",)
# Tools other tiers use; `python -m tests.cluster tools` reports them too.
OTHER_TOOLS: tuple[str, ...] = ("etcdctl", "helm", "prometheus", "promtool")
# Debian's packages put these on PATH; the install script links them into the
# tools directory too. Only these may come from PATH: an old kubectl or etcd on
# PATH (Debian's are 1.20 and 3.4) would half-work against a 1.36 apiserver.
PATH_FALLBACK_TOOLS = frozenset({"prometheus", "promtool"})

# Annotation kwok selects its nodes by (--manage-nodes-with-annotation-selector).
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
# Per-pod simulated usage, read by tests/cluster/kwok/resource-usage.yaml.
KWOK_USAGE_CPU_ANNOTATION = "kwok.x-k8s.io/usage-cpu"
KWOK_USAGE_MEMORY_ANNOTATION = "kwok.x-k8s.io/usage-memory"
# metrics-server (>= 0.7) scrapes this path instead of /metrics/resource.
RESOURCE_METRICS_PATH_ANNOTATION = "metrics.k8s.io/resource-metrics-path"

# The HPA settings that make scaling observable within a test's time budget.
# Defaults are a 15 s sync, a 5 min downscale window and a 5 min CPU
# initialisation period, which would make a scale-down test take minutes.
HPA_FAST_FLAGS: tuple[str, ...] = (
    "--horizontal-pod-autoscaler-sync-period=5s",
    "--horizontal-pod-autoscaler-downscale-stabilization=0s",
    "--horizontal-pod-autoscaler-cpu-initialization-period=10s",
    "--horizontal-pod-autoscaler-initial-readiness-delay=5s",
)

# Controllers the e2e tests rely on, by their 1.36 names. Deletion of a Node
# removes its pods through pod-garbage-collector-controller (orphaned pods,
# after a 40 s quarantine); node-lifecycle-controller and
# taint-eviction-controller evict from nodes that stop heartbeating.
LOGGER = logging.getLogger(__name__)

# Methods whose repetition changes nothing (this harness patches by server-side apply or
# merge patches, which give the same object when repeated).
_IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "DELETE", "PATCH", "PUT"})
_ATTEMPTS: Final = 3
"""Tries of a repeatable request to kube-apiserver (see ``ControlPlane.request``)."""

DEFAULT_CONTROLLERS: tuple[str, ...] = (
    "deployment-controller",
    "replicaset-controller",
    "daemonset-controller",
    "horizontal-pod-autoscaler-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "pod-garbage-collector-controller",
    "node-lifecycle-controller",
    "taint-eviction-controller",
    "job-controller",
    "resourcequota-controller",
)

# The binaries ControlPlaneOptions.kube_bin_dir may take from another Kubernetes
# release (scripts/install-old-kube.sh); etcd, kwok and metrics-server always
# come from the main tools directory. kubectl falls back to the main one.
KUBE_TOOLS: tuple[str, ...] = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
)
_KUBE_TOOLS_REQUIRED_IN_ALT_DIR = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")

# kube-controller-manager accepts the "-controller" names since 1.28; before
# that only the short ones. Names not listed here did not change.
_PRE_1_28_CONTROLLER_NAMES: dict[str, str] = {
    "deployment-controller": "deployment",
    "replicaset-controller": "replicaset",
    "daemonset-controller": "daemonset",
    "horizontal-pod-autoscaler-controller": "horizontalpodautoscaling",
    "serviceaccount-controller": "serviceaccount",
    "serviceaccount-token-controller": "serviceaccount-token",
    "root-ca-certificate-publisher-controller": "root-ca-cert-publisher",
    "garbage-collector-controller": "garbagecollector",
    "namespace-controller": "namespace",
    "pod-garbage-collector-controller": "podgc",
    "node-lifecycle-controller": "nodelifecycle",
    "job-controller": "job",
    "resourcequota-controller": "resourcequota",
}
# Added in 1.29 (split out of node-lifecycle-controller, which did the
# eviction itself before); older releases refuse the unknown name.
_CONTROLLERS_SINCE: dict[str, int] = {"taint-eviction-controller": 29}


# --------------------------------------------------------------------- errors


class ControlPlaneError(RuntimeError):
    """Base class of everything this module raises on purpose."""


class MissingPrerequisiteError(ControlPlaneError):
    """Something the control plane needs is not installed; the message says how to get it."""


class MissingToolsError(MissingPrerequisiteError):
    """Binaries the control plane needs are not installed."""

    def __init__(self, missing: Sequence[str], looked_in: Path | None = None) -> None:
        self.missing = tuple(missing)
        if looked_in is not None and set(self.missing) <= set(KUBE_TOOLS):
            super().__init__(
                f"missing Kubernetes binaries: {', '.join(self.missing)} (looked in "
                f"{looked_in}). Build that release with {OLD_KUBE_INSTALL_SCRIPT} "
                "(about ten minutes cold), or unset KUBEPULSE_E2E_KUBE_BIN_DIR to use "
                f"the ones from {INSTALL_SCRIPT}."
            )
            return
        super().__init__(
            f"missing test tools: {', '.join(self.missing)} (looked in {tools_bin_dir()}). "
            f"Run {INSTALL_SCRIPT} to build them (tens of minutes cold, seconds when cached); "
            "set KUBEPULSE_TOOLS_DIR if they live elsewhere."
        )


class ComponentError(ControlPlaneError):
    """A component did not come up, or died; the message ends with its log tail."""

    def __init__(self, component: str, reason: str, log_path: Path | None, log_tail: str) -> None:
        self.component = component
        self.reason = reason
        self.log_path = log_path
        self.log_tail = log_tail
        where = f" ({log_path})" if log_path else ""
        super().__init__(
            f"{component}: {reason}\n--- last lines of the {component} log{where} ---\n"
            f"{log_tail or '(empty log)'}"
        )


class APIError(ControlPlaneError):
    """kube-apiserver answered a request with an unexpected status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        self.status = status
        self.body = body
        message = body
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(body).get("message", body)
        super().__init__(f"{method} {path} -> HTTP {status}: {message}")


class KubectlError(ControlPlaneError):
    """kubectl exited non-zero."""

    def __init__(self, args: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(
            f"kubectl {' '.join(args)} exited {returncode}: {stderr.strip() or stdout.strip()}"
        )


class WaitTimeoutError(ControlPlaneError, TimeoutError):
    """A bounded wait for cluster state ran out."""


class _ProbeFailedError(Exception):
    """A readiness probe got an answer that says "not yet"; the message says why."""


# ---------------------------------------------------------------------- tools


def tools_bin_dir() -> Path:
    """Where scripts/install-test-tools.sh puts binaries (``$KUBEPULSE_TOOLS_DIR/bin``)."""
    root = os.environ.get("KUBEPULSE_TOOLS_DIR") or str(Path.home() / ".cache/kubepulse/tools")
    return Path(root).expanduser() / "bin"


def find_tool(name: str) -> Path | None:
    """The binary ``name`` from the tools directory (or PATH for Debian's tools), or None."""
    candidate = tools_bin_dir() / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    if name in PATH_FALLBACK_TOOLS:
        found = shutil.which(name)
        return Path(found) if found else None
    return None


def missing_tools(names: Iterable[str]) -> list[str]:
    """The subset of ``names`` that :func:`find_tool` cannot find."""
    return [name for name in names if find_tool(name) is None]


def _require_tool(name: str) -> str:
    path = find_tool(name)
    if path is None:
        raise MissingToolsError([name])
    return str(path)


def kube_minor_version(version_output: str) -> int:
    """The minor of ``kube-apiserver --version`` output ("Kubernetes v1.29.15" -> 29)."""
    for word in version_output.split():
        if word.startswith("v1."):
            minor = word[3:].split(".", 1)[0]
            if minor.isdigit():
                return int(minor)
    raise ControlPlaneError(
        f"cannot read a Kubernetes version from {version_output.strip()!r}: expected "
        "'Kubernetes v1.<minor>.<patch>'; rebuild the binaries with "
        "scripts/install-test-tools.sh or scripts/install-old-kube.sh"
    )


def controllers_for_minor(controllers: Sequence[str], minor: int) -> tuple[str, ...]:
    """``controllers`` (1.36 names) as kube-controller-manager 1.<minor> spells them.

    Controllers that release does not have are dropped (their work was done
    elsewhere then: taint eviction by node-lifecycle before 1.29).
    """
    adapted: list[str] = []
    for name in controllers:
        if minor < _CONTROLLERS_SINCE.get(name, 0):
            continue
        adapted.append(_PRE_1_28_CONTROLLER_NAMES.get(name, name) if minor < 28 else name)
    return tuple(adapted)


# ------------------------------------------------------------------ processes

_live_processes: dict[int, ManagedProcess] = {}
_live_lock = threading.Lock()


def _stop_all_live_processes() -> None:
    with _live_lock:
        processes = list(_live_processes.values())
    for process in processes:
        with contextlib.suppress(Exception):
            process.stop(timeout=5)


atexit.register(_stop_all_live_processes)


def install_termination_handlers() -> None:
    """Turn SIGTERM and SIGHUP into ``SystemExit`` so cleanup code runs.

    Python's default for SIGTERM is to die without running ``finally`` blocks
    or ``atexit`` hooks, which would leave etcd and kube-apiserver running.
    Only replaces handlers that are still the default, and only from the main
    thread (the only place Python allows it).
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def _exit(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _exit)


# Resolved once in the parent: the child, forked from a possibly
# multi-threaded process, should not dlopen anything before exec.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


def _set_parent_death_signal() -> None:
    # Runs in the child between fork and exec. PR_SET_PDEATHSIG makes the
    # kernel SIGKILL the child when the thread that forked it dies, which
    # covers the one case nothing in Python can: the test runner itself being
    # SIGKILLed (a CI timeout, the OOM killer).
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _process_group_members(pgid: int) -> list[int]:
    """PIDs whose process group is ``pgid`` (Linux /proc; empty elsewhere)."""
    members: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return members
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[-1].split()
        state = fields[0]
        if state != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


class ManagedProcess:
    """One long-running binary in its own process group, logging to a file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.process: subprocess.Popen[bytes] | None = None
        self.pgid: int | None = None

    def start(self) -> None:
        """Start the process; stdout and stderr go to :attr:`log_path`."""
        if self.process is not None:
            raise ControlPlaneError(f"{self.name} was already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"# {' '.join(self.argv)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                # Own session and process group: the group is what stop() kills,
                # and a Ctrl-C in the terminal does not hit the components first.
                start_new_session=True,
                # Only a prctl() call; see _set_parent_death_signal.
                preexec_fn=_set_parent_death_signal,  # noqa: PLW1509
            )
        self.pgid = self.process.pid
        with _live_lock:
            _live_processes[self.process.pid] = self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def returncode(self) -> int | None:
        """The exit code once the process ended, else None."""
        return self.process.poll() if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the whole process group, SIGKILL it after ``timeout`` seconds."""
        process, pgid = self.process, self.pgid
        if process is None or pgid is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                process.wait(timeout=10)
        # The leader is gone; anything it left in its group goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with _live_lock:
            _live_processes.pop(process.pid, None)

    def leftover_pids(self) -> list[int]:
        """Processes still alive in this component's process group."""
        return _process_group_members(self.pgid) if self.pgid is not None else []

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log, for error messages."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 256 * 1024))
                data = handle.read().decode("utf-8", errors="replace")
        except OSError as exc:
            return f"(cannot read {self.log_path}: {exc})"
        return "\n".join(data.splitlines()[-lines:])

    def error(self, reason: str, lines: int = 40) -> ComponentError:
        return ComponentError(self.name, reason, self.log_path, self.tail(lines))


def _allocate_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1.

    All sockets stay open until every port is picked, so the kernel cannot hand
    out the same port twice; a process elsewhere could still grab one before
    the component binds it, which start-up then reports as a bind error.
    """
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# -------------------------------------------------------------------- options


@dataclass
class ControlPlaneOptions:
    """How to start a control plane. Every field has a default that the e2e tier uses."""

    run_dir: Path | None = None
    """Directory for certificates, kubeconfigs, etcd data and logs. Default: a new
    temporary directory, removed by ``stop()`` unless ``keep_run_dir``."""
    keep_run_dir: bool = False
    """Keep ``run_dir`` after ``stop()`` (always kept when the caller passed ``run_dir``)."""
    service_cidr: str = "10.0.0.0/24"
    """``--service-cluster-ip-range``; its first address (10.0.0.1) is in the apiserver cert."""
    pod_cidr: str = "10.244.0.0/16"
    """kwok's ``--cidr`` for pod IPs: a /16 so 5,000 pods never exhaust it."""
    controllers: tuple[str, ...] = DEFAULT_CONTROLLERS
    """kube-controller-manager ``--controllers``."""
    controller_manager_flags: tuple[str, ...] = HPA_FAST_FLAGS
    """Extra kube-controller-manager flags (the fast HPA settings by default)."""
    client_qps: int = 1000
    """Client QPS for controller-manager and scheduler. Their defaults (20 and 50)
    make a 5,000-pod ReplicaSet or scheduling run take minutes."""
    start_timeout: float = 120.0
    """Seconds each component may take to become ready. kube-apiserver, the
    slowest, needs about 2 s on an idle 2-core machine; the margin absorbs a busy one."""
    metrics_server_resolution: str = "10s"
    """metrics-server ``--metric-resolution`` (its minimum): how often it scrapes kwok."""
    log_verbosity: int = 2
    """``-v`` for the Kubernetes components."""
    kube_bin_dir: Path | None = None
    """Take kube-apiserver, kube-controller-manager, kube-scheduler (and kubectl,
    when there) from this directory instead of the tools directory, e.g. an
    older release from ``scripts/install-old-kube.sh``. etcd, kwok and
    metrics-server still come from the tools directory. Flags and controller
    names follow the version the apiserver binary reports."""


@dataclass
class _Endpoints:
    etcd_client: int = 0
    etcd_peer: int = 0
    apiserver: int = 0
    controller_manager: int = 0
    scheduler: int = 0
    kwok: int = 0
    metrics_server: int = 0


@dataclass
class Timings:
    """Seconds each start-up phase took, for reports and docs/testing.md."""

    phases: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def measure(self, phase: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.phases[phase] = round(time.monotonic() - start, 3)


# --------------------------------------------------------------- control plane

# (apiVersion, kind) -> (URL prefix, plural, namespaced) for the objects this
# module applies itself. Tests apply anything else with kubectl.
_RESOURCES: dict[tuple[str, str], tuple[str, str, bool]] = {
    ("v1", "Namespace"): ("/api/v1", "namespaces", False),
    ("v1", "Service"): ("/api/v1", "services", True),
    ("v1", "Node"): ("/api/v1", "nodes", False),
    ("v1", "Pod"): ("/api/v1", "pods", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): (
        "/apis/rbac.authorization.k8s.io/v1",
        "clusterroles",
        False,
    ),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): (
        "/apis/rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        False,
    ),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): (
        "/apis/rbac.authorization.k8s.io/v1",
        "rolebindings",
        True,
    ),
    ("apiregistration.k8s.io/v1", "APIService"): (
        "/apis/apiregistration.k8s.io/v1",
        "apiservices",
        False,
    ),
}

FIELD_MANAGER = "kubepulse-e2e"


class ControlPlane:
    """A running (or startable) control plane; also the e2e fixture's handle.

    Attributes worth knowing: :attr:`kubeconfig` (admin, ``system:masters``),
    :attr:`api_url`, :attr:`run_dir`, :attr:`timings`. Methods:
    :meth:`kubectl`, :attr:`api_client` (``kubernetes.client.ApiClient``),
    :meth:`request`, :meth:`create_nodes`, :meth:`create_pods`,
    :meth:`enable_metrics_server`, :meth:`wait_until`.
    """

    def __init__(self, options: ControlPlaneOptions | None = None) -> None:
        self.options = options or ControlPlaneOptions()
        self._owns_run_dir = self.options.run_dir is None
        self.run_dir = (
            Path(tempfile.mkdtemp(prefix="kubepulse-cp-"))
            if self.options.run_dir is None
            else self.options.run_dir.resolve()
        )
        self.ports = _Endpoints()
        self.timings = Timings()
        self.components: dict[str, ManagedProcess] = {}
        # Stopped before the rest (disable_metrics_server); still checked for leftovers.
        self._retired_components: list[ManagedProcess] = []
        self.pki: ClusterPKI | None = None
        self._http: httpx.Client | None = None
        self._api_client: Any = None
        self._metrics_server_enabled = False
        self.kube_minor: int | None = None
        """Minor version of the kube-apiserver binary, read by :meth:`start`."""
        self._started = False
        self._stopped = False
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- paths

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (user ``kubepulse-admin``, group ``system:masters``)."""
        return self.run_dir / "kubeconfig"

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def ca_bundle(self) -> Path:
        """The serving CA: trust it to talk TLS to any component here."""
        return self._pki.serving_ca.cert_path

    @property
    def _pki(self) -> ClusterPKI:
        if self.pki is None:
            raise ControlPlaneError("the control plane has not been started")
        return self.pki

    def env(self) -> dict[str, str]:
        """Variables a shell needs to use this cluster with the project's tools."""
        dirs = [str(tools_bin_dir()), os.environ.get("PATH", "")]
        if self.options.kube_bin_dir is not None:
            dirs.insert(0, str(self.options.kube_bin_dir))
        return {"KUBECONFIG": str(self.kubeconfig), "PATH": os.pathsep.join(dirs)}

    def tool(self, name: str) -> str:
        """Path of binary ``name`` for this cluster: ``kube_bin_dir`` first for the kube tools.

        Raises :class:`MissingToolsError` when it is nowhere.
        """
        alt = self.options.kube_bin_dir
        if alt is not None and name in KUBE_TOOLS:
            candidate = alt.expanduser() / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
            if name in _KUBE_TOOLS_REQUIRED_IN_ALT_DIR:
                raise MissingToolsError([name], looked_in=alt)
        return _require_tool(name)

    def missing_tools(self) -> list[str]:
        """Control-plane binaries this cluster cannot find (``kube_bin_dir`` honoured)."""
        missing: list[str] = []
        for name in CONTROL_PLANE_TOOLS:
            try:
                self.tool(name)
            except MissingToolsError:
                missing.append(name)
        return missing

    def _read_kube_minor(self) -> int:
        argv = [self.tool("kube-apiserver"), "--version"]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except OSError as exc:
            raise ControlPlaneError(f"cannot run {argv[0]} --version: {exc}") from exc
        return kube_minor_version(result.stdout + result.stderr)

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> ControlPlane:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start etcd, kube-apiserver, controller-manager, scheduler and kwok; wait until ready.

        Raises :class:`MissingToolsError` before starting anything when a binary
        is missing, and :class:`ComponentError` (with the component's log tail)
        when one does not come up. The caller must call :meth:`stop` either way.
        """
        if self._started:
            raise ControlPlaneError("start() was already called")
        missing = self.missing_tools()
        if missing:
            raise MissingToolsError(missing, looked_in=self.options.kube_bin_dir)
        self.kube_minor = self._read_kube_minor()
        self._started = True
        opts = self.options
        begin = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (
            self.ports.etcd_client,
            self.ports.etcd_peer,
            self.ports.apiserver,
            self.ports.controller_manager,
            self.ports.scheduler,
            self.ports.kwok,
            self.ports.metrics_server,
        ) = _allocate_ports(7)

        with self.timings.measure("pki"):
            try:
                from tests.cluster.pki import generate_cluster_pki  # noqa: PLC0415 - see TYPE_CHECKING
            except ImportError as exc:
                raise MissingPrerequisiteError(
                    f"cannot generate certificates: {exc}. The e2e tier needs the test extras: "
                    'pip install -e ".[test]" (or pip install cryptography)'
                ) from exc
            self.pki = generate_cluster_pki(
                self.run_dir / "pki", service_ip=_first_host(opts.service_cidr)
            )
            self._write_kubeconfigs()
        self._http = self._new_http_client()

        with self.timings.measure("etcd"):
            etcd = self._start_etcd()
            self._wait_ready(etcd, self._etcd_healthy, "healthy")
        with self.timings.measure("kube-apiserver"):
            apiserver = self._start_apiserver()
            self._wait_ready(apiserver, lambda: self._healthz(self.api_url, "/readyz"), "ready")
        with self.timings.measure("bootstrap-rbac"):
            self._apply_kwok_rbac()
        with self.timings.measure("controllers"):
            controller_manager = self._start_controller_manager()
            scheduler = self._start_scheduler()
            kwok = self._start_kwok()
            loopback = "https://127.0.0.1"
            self._wait_ready(
                controller_manager,
                lambda: self._healthz(f"{loopback}:{self.ports.controller_manager}", "/healthz"),
                "healthy",
            )
            self._wait_ready(
                scheduler,
                lambda: self._healthz(f"{loopback}:{self.ports.scheduler}", "/healthz"),
                "healthy",
            )
            self._wait_ready(
                kwok, lambda: self._healthz(f"{loopback}:{self.ports.kwok}", "/healthz"), "healthy"
            )
        with self.timings.measure("default-serviceaccount"):
            # Pods cannot be created in a namespace before its default
            # ServiceAccount exists (ServiceAccount admission).
            self._wait_ready(
                controller_manager,
                lambda: self._exists("/api/v1/namespaces/default/serviceaccounts/default"),
                "creating the default ServiceAccount",
            )
        self.timings.phases["total"] = round(time.monotonic() - begin, 3)

    def stop(self) -> None:
        """Stop every component (newest first) and remove the run dir if we created it.

        Idempotent and safe to call after a failed or partial start.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if self._api_client is not None:
            with contextlib.suppress(Exception):
                self._api_client.close()
        if self._http is not None:
            self._http.close()
        for process in reversed(list(self.components.values())):
            process.stop()
        if self._owns_run_dir and not self.options.keep_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def leftover_processes(self) -> dict[str, list[int]]:
        """Components whose process group still has live members (should be empty after stop)."""
        leftovers: dict[str, list[int]] = {}
        for process in [*self._retired_components, *self.components.values()]:
            pids = process.leftover_pids()
            if pids:
                leftovers.setdefault(process.name, []).extend(pids)
        return leftovers

    def check_components(self) -> None:
        """Raise :class:`ComponentError` if any started component has exited."""
        for process in self.components.values():
            code = process.returncode()
            if code is not None:
                raise process.error(f"exited unexpectedly with code {code}")

    def diagnostics(self, lines: int = 40) -> str:
        """Log tails of every component, for a failing test's report."""
        sections = []
        for name, process in self.components.items():
            state = "running" if process.running() else f"exited {process.returncode()}"
            sections.append(
                f"--- {name} ({state}), last {lines} lines of {process.log_path} ---\n"
                f"{process.tail(lines)}"
            )
        return "\n".join(sections)

    # ----------------------------------------------------------- components

    def _spawn(
        self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> ManagedProcess:
        base_env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        if env:
            base_env.update(env)
        process = ManagedProcess(name, argv, self.logs_dir / f"{name}.log", env=base_env)
        self.components[name] = process
        process.start()
        return process

    def _start_etcd(self) -> ManagedProcess:
        client = f"http://127.0.0.1:{self.ports.etcd_client}"
        peer = f"http://127.0.0.1:{self.ports.etcd_peer}"
        return self._spawn(
            "etcd",
            [
                _require_tool("etcd"),
                "--name=kubepulse-e2e",
                f"--data-dir={self.run_dir / 'etcd-data'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=kubepulse-e2e={peer}",
                "--initial-cluster-state=new",
                # A throwaway store: fsync buys nothing and costs the apiserver
                # tens of milliseconds per write on a shared CI disk.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )

    def _start_apiserver(self) -> ManagedProcess:
        pki = self._pki
        return self._spawn(
            "kube-apiserver",
            [
                self.tool("kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.ports.etcd_client}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports.apiserver}",
                # With no routable interface the apiserver cannot guess an
                # address, and a loopback one fails Endpoints validation, so
                # nobody reconciles the kubernetes Service's endpoints.
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                f"--cert-dir={self.run_dir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.apiserver_serving.cert_path}",
                f"--tls-private-key-file={pki.apiserver_serving.key_path}",
                f"--client-ca-file={pki.client_ca.cert_path}",
                f"--service-cluster-ip-range={self.options.service_cidr}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.service_account_public_key}",
                f"--service-account-signing-key-file={pki.service_account_private_key}",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                # Aggregation layer: how kube-apiserver proves itself to
                # metrics-server and the kubepulse adapter, and what they trust.
                f"--requestheader-client-ca-file={pki.front_proxy_ca.cert_path}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki.front_proxy_client.cert_path}",
                f"--proxy-client-key-file={pki.front_proxy_client.key_path}",
                # Resolve APIService backends through their Service (an
                # ExternalName pointing at 127.0.0.1), not through Endpoints.
                "--enable-aggregator-routing=false",
                "--profiling=false",
                f"-v={self.options.log_verbosity}",
            ],
        )

    def _start_controller_manager(self) -> ManagedProcess:
        pki = self._pki
        kubeconfig = self._component_kubeconfig("controller-manager")
        qps = self.options.client_qps
        return self._spawn(
            "kube-controller-manager",
            [
                self.tool("kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports.controller_manager}",
                f"--tls-cert-file={pki.loopback_serving.cert_path}",
                f"--tls-private-key-file={pki.loopback_serving.key_path}",
                f"--cert-dir={self.run_dir / 'controller-manager-certs'}",
                "--leader-elect=false",
                # Each controller acts as its own ServiceAccount, as in kubeadm
                # clusters, so RBAC is exercised the way users run it (the HPA
                # controller reads metrics as kube-system:horizontal-pod-autoscaler).
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki.service_account_private_key}",
                f"--root-ca-file={pki.serving_ca.cert_path}",
                f"--controllers={','.join(self._controllers())}",
                f"--kube-api-qps={qps}",
                f"--kube-api-burst={qps * 2}",
                *self.options.controller_manager_flags,
                f"-v={self.options.log_verbosity}",
            ],
        )

    def _controllers(self) -> tuple[str, ...]:
        if self.kube_minor is None:
            return self.options.controllers
        return controllers_for_minor(self.options.controllers, self.kube_minor)

    def _start_scheduler(self) -> ManagedProcess:
        pki = self._pki
        kubeconfig = self._component_kubeconfig("scheduler")
        qps = self.options.client_qps
        config = self.run_dir / "scheduler.yaml"
        # QPS lives only in the config file for the scheduler (no flag).
        config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubescheduler.config.k8s.io/v1",
                    "kind": "KubeSchedulerConfiguration",
                    "clientConnection": {
                        "kubeconfig": str(kubeconfig),
                        "qps": qps,
                        "burst": qps * 2,
                    },
                    "leaderElection": {"leaderElect": False},
                }
            )
        )
        return self._spawn(
            "kube-scheduler",
            [
                self.tool("kube-scheduler"),
                f"--config={config}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports.scheduler}",
                f"--tls-cert-file={pki.loopback_serving.cert_path}",
                f"--tls-private-key-file={pki.loopback_serving.key_path}",
                f"--cert-dir={self.run_dir / 'scheduler-certs'}",
                f"-v={self.options.log_verbosity}",
            ],
        )

    def _start_kwok(self) -> ManagedProcess:
        pki = self._pki
        configs = [
            "kwok-configuration.yaml",
            "node-stages.yaml",
            "pod-stages.yaml",
            "resource-usage.yaml",
            "metrics-resource.yaml",
        ]
        home = self.run_dir / "kwok-home"
        home.mkdir(exist_ok=True)
        return self._spawn(
            "kwok",
            [
                _require_tool("kwok"),
                f"--kubeconfig={self._component_kubeconfig('kwok')}",
                *(f"--config={KWOK_CONFIG_DIR / name}" for name in configs),
                f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
                # Every fake node's InternalIP and kubelet port point at kwok's
                # own server, which serves /metrics/nodes/<node>/... over TLS.
                "--node-ip=127.0.0.1",
                f"--node-port={self.ports.kwok}",
                f"--server-address=127.0.0.1:{self.ports.kwok}",
                f"--tls-cert-file={pki.kwok_serving.cert_path}",
                f"--tls-private-key-file={pki.kwok_serving.key_path}",
                f"--cidr={self.options.pod_cidr}",
                "--node-lease-duration-seconds=40",
            ],
            # kwok also reads ~/.kwok/kwok.yaml when it exists; a private HOME
            # keeps a developer's own kwok setup out of the tests.
            env={"HOME": str(home)},
        )

    def enable_metrics_server(self, timeout: float = 120.0) -> None:
        """Start metrics-server and register it as ``v1beta1.metrics.k8s.io``; idempotent.

        The APIService reaches the local process through an ExternalName
        Service (``externalName: 127.0.0.1``) and carries the serving CA as its
        ``caBundle``. metrics-server scrapes kwok's per-node endpoint over TLS,
        verified against the same CA. Returns once the APIService is Available
        and ``/apis/metrics.k8s.io/v1beta1`` answers.
        """
        if self._metrics_server_enabled:
            return
        missing = missing_tools(METRICS_SERVER_TOOLS)
        if missing:
            raise MissingToolsError(missing)
        pki = self._pki
        with self.timings.measure("metrics-server"):
            self._apply_metrics_server_rbac()
            kubeconfig = self._component_kubeconfig("metrics-server")
            process = self._spawn(
                "metrics-server",
                [
                    _require_tool("metrics-server"),
                    f"--kubeconfig={kubeconfig}",
                    f"--authentication-kubeconfig={kubeconfig}",
                    f"--authorization-kubeconfig={kubeconfig}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={self.ports.metrics_server}",
                    f"--tls-cert-file={pki.metrics_server_serving.cert_path}",
                    f"--tls-private-key-file={pki.metrics_server_serving.key_path}",
                    f"--cert-dir={self.run_dir / 'metrics-server-certs'}",
                    "--kubelet-preferred-address-types=InternalIP",
                    "--kubelet-use-node-status-port",
                    f"--kubelet-certificate-authority={pki.serving_ca.cert_path}",
                    f"--metric-resolution={self.options.metrics_server_resolution}",
                    # Must stay below 90 % of the resolution (metrics-server validates it).
                    "--kubelet-request-timeout=5s",
                    f"-v={self.options.log_verbosity}",
                ],
            )
            # /readyz stays red until the first scrape stored metrics, which
            # needs nodes with pods; serving is all the APIService needs.
            self._wait_ready(
                process,
                lambda: self._healthz(f"https://127.0.0.1:{self.ports.metrics_server}", "/livez"),
                "serving",
                timeout=timeout,
            )
            self._register_metrics_apiservice()
            self._wait_ready(
                process, self._metrics_apiservice_available, "Available as an APIService", timeout
            )
        self._metrics_server_enabled = True

    def disable_metrics_server(self) -> None:
        """Unregister ``v1beta1.metrics.k8s.io`` and stop metrics-server; no-op when not enabled.

        Lets a test module leave the cluster as it found it: metrics-server
        scraping thousands of kwok pods every 10 s would slow later tests down.
        """
        if not self._metrics_server_enabled:
            return
        self.request(
            "DELETE",
            "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io",
            ok=(200, 202, 404),
        )
        self.request(
            "DELETE", "/api/v1/namespaces/kube-system/services/metrics-server", ok=(200, 202, 404)
        )
        process = self.components.pop("metrics-server")
        process.stop()
        self._retired_components.append(process)
        self._metrics_server_enabled = False

    # ------------------------------------------------------------ readiness

    def _wait_ready(
        self,
        process: ManagedProcess,
        probe: Callable[[], bool],
        what: str,
        timeout: float | None = None,
    ) -> None:
        limit = self.options.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        last_error = "no answer yet"
        while True:
            code = process.returncode()
            if code is not None:
                raise process.error(f"exited with code {code} before it was {what}")
            try:
                if probe():
                    return
                last_error = "probe answered not ready"
            except _ProbeFailedError as exc:
                last_error = str(exc)
            except (httpx.HTTPError, OSError, APIError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise process.error(f"not {what} after {limit:.0f} s (last probe: {last_error})")
            time.sleep(0.2)

    def _etcd_healthy(self) -> bool:
        response = httpx.get(f"http://127.0.0.1:{self.ports.etcd_client}/health", timeout=2)
        return response.status_code == 200 and '"true"' in response.text

    def _healthz(self, base_url: str, path: str) -> bool:
        response = self._http_client.get(f"{base_url}{path}", timeout=2)
        if response.status_code != 200:
            # The failing checks are in the body ("[-]etcd failed: ..."): keep
            # them for the error message if this never turns ready.
            failing = [line for line in response.text.splitlines() if line.startswith("[-]")]
            raise _ProbeFailedError(
                f"GET {path} -> {response.status_code} {'; '.join(failing) or response.text[:200]}"
            )
        return True

    def _exists(self, path: str) -> bool:
        response = self._http_client.get(path, timeout=5)
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            raise APIError("GET", path, response.status_code, response.text)
        return True

    def _metrics_apiservice_available(self) -> bool:
        service = self.request(
            "GET", "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io"
        )
        conditions = service.get("status", {}).get("conditions", [])
        available = any(c["type"] == "Available" and c["status"] == "True" for c in conditions)
        return available and self._exists("/apis/metrics.k8s.io/v1beta1")

    # -------------------------------------------------------- configuration

    def _write_kubeconfigs(self) -> None:
        pki = self._pki
        identities: dict[str, KeyPair] = {
            "admin": pki.admin,
            "controller-manager": pki.controller_manager,
            "scheduler": pki.scheduler,
            "kwok": pki.kwok_client,
            "metrics-server": pki.metrics_server_client,
        }
        for name, pair in identities.items():
            path = self.kubeconfig if name == "admin" else self._component_kubeconfig(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            user = "kubepulse-admin" if name == "admin" else name
            config = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "kubepulse-e2e",
                        "cluster": {
                            "server": self.api_url,
                            "certificate-authority": str(pki.serving_ca.cert_path),
                        },
                    }
                ],
                "users": [
                    {
                        "name": user,
                        "user": {
                            "client-certificate": str(pair.cert_path),
                            "client-key": str(pair.key_path),
                        },
                    }
                ],
                "contexts": [
                    {"name": "kubepulse-e2e", "context": {"cluster": "kubepulse-e2e", "user": user}}
                ],
                "current-context": "kubepulse-e2e",
                "preferences": {},
            }
            path.write_text(yaml.safe_dump(config, sort_keys=False))

    def _component_kubeconfig(self, name: str) -> Path:
        return self.run_dir / "kubeconfigs" / f"{name}.kubeconfig"

    def _apply_kwok_rbac(self) -> None:
        # What kwok touches: node and pod status, pods it deletes, node leases,
        # events. Equivalent to upstream's kwok-controller role minus kwok's CRDs,
        # which this harness configures from files instead.
        self.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "kubepulse-e2e:kwok"},
                "rules": [
                    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
                    {
                        "apiGroups": [""],
                        "resources": ["nodes/status", "pods/status"],
                        "verbs": ["patch", "update"],
                    },
                    {
                        "apiGroups": [""],
                        "resources": ["pods"],
                        "verbs": ["get", "list", "watch", "patch", "update", "delete"],
                    },
                    {
                        "apiGroups": ["coordination.k8s.io"],
                        "resources": ["leases"],
                        "verbs": ["get", "list", "watch", "create", "update", "patch"],
                    },
                    {
                        "apiGroups": ["", "events.k8s.io"],
                        "resources": ["events"],
                        "verbs": ["create", "patch", "update"],
                    },
                ],
            }
        )
        self.apply(
            _cluster_role_binding("kubepulse-e2e:kwok", "kubepulse-e2e:kwok", "kubepulse-e2e:kwok")
        )

    def _apply_metrics_server_rbac(self) -> None:
        user = "kubepulse-e2e:metrics-server"
        self.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "kubepulse-e2e:metrics-server"},
                "rules": [
                    {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                    {
                        "apiGroups": [""],
                        "resources": ["pods", "nodes"],
                        "verbs": ["get", "list", "watch"],
                    },
                ],
            }
        )
        self.apply(
            _cluster_role_binding(
                "kubepulse-e2e:metrics-server", "kubepulse-e2e:metrics-server", user
            )
        )
        # Delegated authn/authz, as every aggregated API server needs.
        self.apply(
            _cluster_role_binding(
                "kubepulse-e2e:metrics-server:auth-delegator", "system:auth-delegator", user
            )
        )
        self.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {
                    "name": "kubepulse-e2e:metrics-server:auth-reader",
                    "namespace": "kube-system",
                },
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "extension-apiserver-authentication-reader",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                ],
            }
        )

    def _register_metrics_apiservice(self) -> None:
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "metrics-server", "namespace": "kube-system"},
                # Endpoints may not point at loopback; an ExternalName Service
                # may name it, and the aggregator dials https://<name>:<port>.
                "spec": {"type": "ExternalName", "externalName": "127.0.0.1"},
            }
        )
        self.apply(
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": "v1beta1.metrics.k8s.io"},
                "spec": {
                    "group": "metrics.k8s.io",
                    "version": "v1beta1",
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                    "service": {
                        "name": "metrics-server",
                        "namespace": "kube-system",
                        "port": self.ports.metrics_server,
                    },
                    "caBundle": base64.b64encode(self._pki.serving_ca.pem()).decode(),
                },
            }
        )

    # ------------------------------------------------------------ API access

    def _ssl_context(self, client: KeyPair | None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self._pki.serving_ca.cert_path))
        if client is not None:
            context.load_cert_chain(str(client.cert_path), str(client.key_path))
        return context

    def _new_http_client(self, connections: int = 10) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url,
            verify=self._ssl_context(self._pki.admin),
            timeout=httpx.Timeout(30.0, connect=5.0),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    @property
    def _http_client(self) -> httpx.Client:
        if self._http is None:
            raise ControlPlaneError("the control plane has not been started")
        return self._http

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        ok: Sequence[int] = (200, 201),
        client: httpx.Client | None = None,
        ok_on_retry: Sequence[int] | None = None,
    ) -> Any:
        """One admin request to kube-apiserver; the decoded JSON answer.

        Idempotent requests are tried again after a broken connection: under load in CI
        kept-alive connections have met TLS "bad record mac" errors mid-answer, in
        cleanups, creations and evictions alike. A POST is tried again only when the
        caller gives ``ok_on_retry``: the statuses that, on a later attempt, mean the
        earlier one went through (409 for a creation, 404 for an eviction).

        Raises :class:`APIError` for any status outside ``ok`` (or ``ok_on_retry`` after
        the first attempt).
        """
        http = client or self._http_client
        repeatable = method in _IDEMPOTENT_METHODS or ok_on_retry is not None
        attempts = _ATTEMPTS if repeatable else 1
        accepted = tuple(ok)
        for attempt in range(1, attempts + 1):
            try:
                response = http.request(
                    method,
                    path,
                    params=params,
                    content=None if body is None else json.dumps(body).encode(),
                    headers={"Content-Type": content_type, "Accept": accept},
                )
                break
            except httpx.TransportError as error:
                if attempt == attempts:
                    raise
                LOGGER.warning("%s %s: %s; trying again", method, path, error)
                time.sleep(0.2 * attempt)
                accepted = (*ok, *(ok_on_retry or ()))
        if response.status_code not in accepted:
            raise APIError(method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def create(
        self, collection: str, body: Mapping[str, Any], *, client: httpx.Client | None = None
    ) -> Any:
        """POST the named object ``body`` to ``collection``; the object as created.

        Tried again after a broken connection (see :meth:`request`): a 409 AlreadyExists
        on a later attempt means the earlier one went through, and the object is read
        back. A 409 on the first attempt is still an :class:`APIError`.
        """
        answer = self.request(
            "POST", collection, body=body, ok=(201,), ok_on_retry=(409,), client=client
        )
        if isinstance(answer, dict) and answer.get("kind") == "Status":
            return self.request("GET", f"{collection}/{body['metadata']['name']}", client=client)
        return answer

    def apply(self, manifest: Mapping[str, Any]) -> Any:
        """Server-side apply one object of a kind listed in ``_RESOURCES``."""
        key = (manifest["apiVersion"], manifest["kind"])
        if key not in _RESOURCES:
            raise ControlPlaneError(f"apply() does not know {key}; use kubectl apply for it")
        prefix, plural, namespaced = _RESOURCES[key]
        metadata = manifest["metadata"]
        namespace = f"/namespaces/{metadata['namespace']}" if namespaced else ""
        path = f"{prefix}{namespace}/{plural}/{metadata['name']}"
        return self.request(
            "PATCH",
            path,
            body=manifest,
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            content_type="application/apply-patch+yaml",
        )

    @property
    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` authenticated as the admin (cached)."""
        if self._api_client is None:
            import kubernetes.client  # noqa: PLC0415 - keep the heavy import lazy

            pki = self._pki
            configuration = kubernetes.client.Configuration()
            configuration.host = self.api_url
            configuration.ssl_ca_cert = str(pki.serving_ca.cert_path)
            configuration.cert_file = str(pki.admin.cert_path)
            configuration.key_file = str(pki.admin.key_path)
            configuration.verify_ssl = True
            self._api_client = kubernetes.client.ApiClient(configuration)
        return self._api_client

    def kubectl(
        self,
        *args: str,
        input_text: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the project's kubectl against this cluster as the admin.

        Raises :class:`KubectlError` (with stderr) on a non-zero exit when ``check``.
        """
        argv = [self.tool("kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        result = subprocess.run(
            argv,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )
        if check and result.returncode != 0:
            raise KubectlError(args, result.returncode, result.stdout, result.stderr)
        return result

    # --------------------------------------------------------- bulk helpers

    def _run_concurrently(
        self, calls: Sequence[Callable[[httpx.Client], T]], workers: int
    ) -> list[T]:
        """Run ``calls`` on a thread pool, one HTTP client per worker thread."""
        local = threading.local()
        clients: list[httpx.Client] = []
        clients_lock = threading.Lock()

        def client() -> httpx.Client:
            existing: httpx.Client | None = getattr(local, "client", None)
            if existing is None:
                existing = self._new_http_client(connections=2)
                local.client = existing
                with clients_lock:
                    clients.append(existing)
            return existing

        def run(call: Callable[[httpx.Client], T]) -> T:
            return call(client())

        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                # map() re-raises the first failure in submission order.
                return list(pool.map(run, calls))
        finally:
            for http in clients:
                http.close()

    def ensure_namespace(self, name: str) -> None:
        """Create namespace ``name`` if needed and wait for its default ServiceAccount."""
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        self.wait_until(
            lambda: self._exists(f"/api/v1/namespaces/{name}/serviceaccounts/default"),
            timeout=60,
            description=f"default ServiceAccount in namespace {name}",
        )

    def delete_namespace(self, name: str, *, wait: bool = True, timeout: float = 180.0) -> None:
        """Delete a namespace (its pods go through kwok's delete stage); optionally wait."""
        self.request("DELETE", f"/api/v1/namespaces/{name}", ok=(200, 202, 404))
        if wait:
            self.wait_until(
                lambda: not self._exists(f"/api/v1/namespaces/{name}"),
                timeout=timeout,
                description=f"namespace {name} deleted",
            )

    def create_nodes(
        self,
        count: int,
        *,
        prefix: str = "kwok-node",
        start: int = 0,
        labels: Mapping[str, str] | None = None,
        cpu: str = "32",
        memory: str = "128Gi",
        max_pods: int = 110,
        taints: Sequence[Mapping[str, str]] = (),
        workers: int = 16,
    ) -> list[str]:
        """Create ``count`` kwok-managed Nodes ``<prefix>-<i>`` concurrently; return their names.

        Nodes carry the kwok annotation, the metrics-server path annotation and
        the usual well-known labels. They become Ready once kwok's
        node-initialize stage runs (see :meth:`wait_for_nodes_ready`).
        """
        names = [f"{prefix}-{i}" for i in range(start, start + count)]
        resources = {"cpu": cpu, "memory": memory, "pods": str(max_pods)}

        def create(name: str) -> Callable[[httpx.Client], str]:
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {
                        KWOK_NODE_ANNOTATION: "fake",
                        RESOURCE_METRICS_PATH_ANNOTATION: f"/metrics/nodes/{name}/metrics/resource",
                    },
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                        **(labels or {}),
                    },
                },
                "spec": {"taints": [dict(t) for t in taints]} if taints else {},
                "status": {"capacity": resources, "allocatable": resources},
            }

            def call(http: httpx.Client) -> str:
                self.create("/api/v1/nodes", node, client=http)
                return name

            return call

        return self._run_concurrently([create(name) for name in names], workers)

    def wait_for_nodes_ready(self, names: Sequence[str], timeout: float = 60.0) -> None:
        """Wait until every named Node reports Ready=True."""
        wanted = set(names)

        def ready() -> bool:
            nodes = self.request("GET", "/api/v1/nodes")["items"]
            ready_names = {
                n["metadata"]["name"]
                for n in nodes
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in n.get("status", {}).get("conditions", [])
                )
            }
            return wanted <= ready_names

        self.wait_until(ready, timeout=timeout, description=f"{len(wanted)} nodes Ready")

    def delete_nodes(self, names: Iterable[str], workers: int = 16) -> None:
        """Delete Nodes concurrently (absent ones are fine)."""

        def delete(name: str) -> Callable[[httpx.Client], None]:
            def call(http: httpx.Client) -> None:
                self.request("DELETE", f"/api/v1/nodes/{name}", ok=(200, 202, 404), client=http)

            return call

        self._run_concurrently([delete(name) for name in names], workers)

    def create_pods(
        self,
        count: int,
        *,
        namespace: str = "default",
        prefix: str = "kwok-pod",
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        node_names: Sequence[str] | None = None,
        node_selector: Mapping[str, str] | None = None,
        cpu_request: str = "10m",
        memory_request: str = "16Mi",
        limits: Mapping[str, str] | None = None,
        image: str = "registry.k8s.io/pause:3.10",
        workers: int = 16,
    ) -> list[str]:
        """Create ``count`` single-container Pods ``<prefix>-<i>`` concurrently.

        With ``node_names`` the pods are bound round-robin through
        ``spec.nodeName`` (no scheduler involved, the fastest way to fill
        nodes); without, kube-scheduler places them. The image is never pulled:
        kwok only pretends to run it. ``limits`` (``{"cpu": "500m"}``) are the container's
        limits; none by default.
        """
        names = [f"{prefix}-{i}" for i in range(count)]
        resources: dict[str, Any] = {"requests": {"cpu": cpu_request, "memory": memory_request}}
        if limits:
            resources["limits"] = dict(limits)

        def create(index: int, name: str) -> Callable[[httpx.Client], str]:
            spec: dict[str, Any] = {
                "containers": [
                    {
                        "name": "main",
                        "image": image,
                        "resources": resources,
                    }
                ],
                "automountServiceAccountToken": False,
                "terminationGracePeriodSeconds": 0,
            }
            if node_names:
                spec["nodeName"] = node_names[index % len(node_names)]
            if node_selector:
                spec["nodeSelector"] = dict(node_selector)
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": dict(labels or {"app": prefix}),
                    "annotations": dict(annotations or {}),
                },
                "spec": spec,
            }

            def call(http: httpx.Client) -> str:
                self.create(f"/api/v1/namespaces/{namespace}/pods", pod, client=http)
                return name

            return call

        return self._run_concurrently([create(i, name) for i, name in enumerate(names)], workers)

    def count_pods(self, namespace: str, *, label_selector: str = "", phase: str = "") -> int:
        """Number of pods matching; lists metadata only, so 5,000 pods stay cheap."""
        params = {"limit": "0"}
        if label_selector:
            params["labelSelector"] = label_selector
        if phase:
            params["fieldSelector"] = f"status.phase={phase}"
        answer = self.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods",
            params=params,
            accept="application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        )
        # PartialObjectMetadataList encodes an empty list as "items": null.
        return len(answer.get("items") or [])

    def wait_for_pods_running(
        self,
        namespace: str,
        count: int,
        *,
        label_selector: str = "",
        timeout: float = 120.0,
    ) -> float:
        """Wait until at least ``count`` matching pods are Running; the seconds it took."""
        start = time.monotonic()
        self.wait_until(
            lambda: (
                self.count_pods(namespace, label_selector=label_selector, phase="Running") >= count
            ),
            timeout=timeout,
            interval=0.5,
            description=f"{count} pods Running in {namespace} ({label_selector or 'all'})",
        )
        return time.monotonic() - start

    def wait_until(
        self,
        condition: Callable[[], T | None],
        *,
        timeout: float,
        description: str,
        interval: float = 1.0,
    ) -> T:
        """Poll ``condition`` until it returns something truthy; return that.

        Fails fast with the component's log if a component died meanwhile, and
        with :class:`WaitTimeoutError` naming ``description`` and the last
        answer (or error) after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            self.check_components()
            try:
                value = condition()
                if value:
                    return value
                last = value
            except (APIError, httpx.HTTPError) as exc:
                last = exc
            if time.monotonic() > deadline:
                raise WaitTimeoutError(
                    f"timed out after {timeout:.0f} s waiting for {description}; "
                    f"last result: {last!r}"
                )
            time.sleep(interval)


def _cluster_role_binding(name: str, role: str, user: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }


def _first_host(cidr: str) -> str:
    network = ipaddress.ip_network(cidr, strict=False)
    return str(next(network.hosts()))

"""``kubepulse-exporter which``: which pod, container or host group a process or cgroup is.

The answer is the one the exporter itself reaches on every scan, from the same
functions: :func:`~exporter.cgroup_path.identify_cgroup` for the pod UID, container ID,
runtime and QoS class, :func:`~exporter.cgroup_path.classify_runtime_helper` for the
container runtime's own processes. It tells where a process's usage shows up::

    $ kubepulse-exporter which 2051 --proc-root /host/proc
    process       2051 (nginx)
    belongs to    container
    pod UID       b46bd9c9-f018-48ec-97b9-722e1f463eae
    container ID  f09d4f5e2efb518df02a009eea6623150a1876770c23b86035e04375a7df7242
    runtime       containerd
    QoS class     Burstable
    cgroup        /kubepods.slice/…/cri-containerd-f09d4f5e….scope

A process outside every pod is a ``host process`` (counted in the
``kubepulse_host_process_*`` group named after its command, or in ``other`` outside the
top N), ``runtime overhead (containerd-shim)`` and the like for the runtime's shims,
monitors and daemons, or a ``kernel thread`` (not counted anywhere). A cgroup path, with
or without its mount prefix, is answered the same way without a process.

**Names.** A cgroup path knows UIDs and IDs, not names. With credentials for the API
server (``--kubeconfig``, ``KUBECONFIG``, or the pod's ServiceAccount when run inside the
exporter's pod) the command lists this node's pods once (one request, the same
``spec.nodeName`` field selector the exporter's watch uses and its RBAC allows) and adds
the namespace, pod and container names, and whether the container is the pod's sandbox.
``--no-api`` skips that; a failed lookup is reported and the rest is still answered.

Exit status: 0 answered, 1 the process does not exist (or could not be read), 2 usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final, Literal, NoReturn

from exporter.cgroup_path import (
    CgroupIdentity,
    MalformedFileError,
    RuntimeHelper,
    classify_runtime_helper,
    identify_cgroup,
    parse_proc_cgroup,
)
from exporter.cgroupfs import read_text_if_present
from exporter.config import (
    KUBECONFIG_ENV,
    NODE_NAME_ENV,
    PROC_ROOT_ENV,
    default_node_name,
    parse_node_name,
)
from exporter.metadata import ClusterView, MetadataMode
from exporter.podindex import PodIndex
from exporter.procfs import parse_pid_stat
from kubepulse.errors import KubepulseError
from kubepulse.model import ObjectError, Pod

__all__ = [
    "PodNames",
    "ProcessNotFoundError",
    "WhichAnswer",
    "WhichKind",
    "build_parser",
    "list_node_pods",
    "main",
    "name_pods",
    "parse_target",
    "which_cgroup",
    "which_process",
]

WhichKind = Literal["container", "pod", "runtime_overhead", "host", "kernel_thread"]
"""What a process or cgroup is, as far as the exporter's accounting goes."""

# Bit of /proc/<pid>/stat's flags field set on kernel threads (PF_KTHREAD in sched.h).
_PF_KTHREAD: Final = 0x00200000
_SANDBOX_COMMAND: Final = "pause"
_TEXT_KEY_WIDTH: Final = 14
_LOOKUP_TIMEOUT_SECONDS: Final = (5.0, 15.0)
_SERVICE_HOST_ENV: Final = "KUBERNETES_SERVICE_HOST"
# What each runtime helper is called in the answer, as an operator knows it.
_DAEMON_NAMES: Final[Mapping[str, str]] = {
    "containerd": "containerd",
    "cri-o": "crio",
    "docker": "dockerd",
}


class ProcessNotFoundError(KubepulseError):
    """The process does not exist under the proc root, or exited while it was read."""


@dataclass(frozen=True, slots=True)
class PodNames:
    """The names the API server gives a pod-level or container cgroup."""

    namespace: str
    pod: str
    container: str | None
    """The container's name; ``None`` for a pod-level cgroup and for the sandbox."""
    sandbox: bool
    """True when the container is the pod's pause (sandbox) container, or one the
    kubelet has replaced since: its usage is in the pod's totals only."""


@dataclass(frozen=True, slots=True)
class WhichAnswer:
    """Which pod, container or host group a process or cgroup belongs to."""

    target: str
    """What was asked about: ``pid 2051`` or the cgroup path as given."""
    kind: WhichKind
    cgroup_path: str
    """The cgroup path the answer is read from (for a process, from ``/proc/<pid>/cgroup``)."""
    pid: int | None = None
    comm: str | None = None
    """The process's command name (what host-process groups are named by)."""
    identity: CgroupIdentity | None = None
    """Pod UID, container ID, runtime and QoS class, for a pod's process or cgroup."""
    runtime_helper: RuntimeHelper | None = None
    """The runtime and component, for runtime overhead."""
    names: PodNames | None = None
    """Namespace, pod and container names, when looked up through the API server."""
    runtime: str | None = None
    """The container runtime; from the pod status when the cgroup path does not say."""
    lookup: str | None = None
    """Why names are missing when a lookup was attempted (or skipped for a reason)."""

    @property
    def description(self) -> str:
        """One phrase: ``container``, ``host process``, ``runtime overhead (conmon)``…"""
        if self.kind == "runtime_overhead" and self.runtime_helper is not None:
            return f"runtime overhead ({_helper_name(self.runtime_helper)})"
        if self.kind == "host":
            return "host process" if self.pid is not None else "host cgroup (not in a pod)"
        if self.kind == "kernel_thread":
            return "kernel thread (not counted by the exporter)"
        if self.kind == "container" and self.is_sandbox:
            return "container: the pod's sandbox (pause), counted in the pod's totals only"
        return "pod (pod-level cgroup)" if self.kind == "pod" else "container"

    @property
    def is_sandbox(self) -> bool:
        """True when the container is known to be the pod's sandbox."""
        if self.names is not None:
            return self.names.sandbox
        return self.kind == "container" and self.comm == _SANDBOX_COMMAND

    def to_dict(self) -> dict[str, Any]:
        """The answer as plain data (``-o json``); absent fields are ``null``."""
        identity, helper, names = self.identity, self.runtime_helper, self.names
        return {
            "target": self.target,
            "pid": self.pid,
            "comm": self.comm,
            "cgroup_path": self.cgroup_path,
            "kind": self.kind,
            "description": self.description,
            "pod_uid": identity.pod_uid if identity else None,
            "container_id": identity.container_id if identity else None,
            "runtime": self.runtime or (helper.runtime if helper else None),
            "qos_class": identity.qos_class if identity else None,
            "runtime_component": helper.component if helper else None,
            "host_process_group": self.comm if self.kind == "host" else None,
            "namespace": names.namespace if names else None,
            "pod": names.pod if names else None,
            "container": names.container if names else None,
            "sandbox": self.is_sandbox if self.kind == "container" else None,
            "lookup": self.lookup,
        }

    def to_text(self) -> str:
        """The answer as aligned ``key  value`` lines (``-o text``)."""
        rows: list[tuple[str, str]] = []
        if self.pid is not None:
            rows.append(("process", f"{self.pid} ({self.comm})"))
        else:
            rows.append(("cgroup path", self.target))
        rows.append(("belongs to", self.description))
        identity, helper, names = self.identity, self.runtime_helper, self.names
        if identity is not None:
            rows.append(("pod UID", identity.pod_uid))
            if identity.container_id is not None:
                rows.append(("container ID", identity.container_id))
            rows.append(("runtime", self.runtime or "unknown"))
            rows.append(("QoS class", identity.qos_class))
        if names is not None:
            rows.append(("namespace", names.namespace))
            rows.append(("pod", names.pod))
            if names.container is not None:
                rows.append(("container", names.container))
        if self.lookup is not None:
            rows.append(("names", self.lookup))
        if helper is not None:
            rows.append(("runtime", helper.runtime))
            rows.append(("component", helper.component))
        if self.kind == "host" and self.comm is not None:
            rows.append(
                (
                    "group",
                    f'{self.comm} (kubepulse_host_process_*{{group="{self.comm}"}}, '
                    'or "other" outside the top N)',
                )
            )
        if self.pid is not None:
            rows.append(("cgroup", self.cgroup_path))
        return "\n".join(f"{key:<{_TEXT_KEY_WIDTH}}{value}" for key, value in rows)


def _helper_name(helper: RuntimeHelper) -> str:
    if helper.component == "shim":
        return "containerd-shim"
    if helper.component == "conmon":
        return "conmon"
    return _DAEMON_NAMES.get(helper.runtime, helper.runtime)


def _answer_for_path(target: str, path: str, *, pid: int | None, comm: str) -> WhichAnswer:
    helper = classify_runtime_helper(path, comm)
    if helper is not None:
        return WhichAnswer(
            target=target,
            kind="runtime_overhead",
            cgroup_path=path,
            pid=pid,
            comm=comm or None,
            runtime_helper=helper,
        )
    identity = identify_cgroup(path)
    if identity is None:
        return WhichAnswer(target=target, kind="host", cgroup_path=path, pid=pid, comm=comm or None)
    return WhichAnswer(
        target=target,
        kind="pod" if identity.is_pod_level else "container",
        cgroup_path=path,
        pid=pid,
        comm=comm or None,
        identity=identity,
        runtime=None if identity.runtime == "unknown" else identity.runtime,
    )


def which_cgroup(path: str) -> WhichAnswer:
    """The answer for a cgroup path (``/kubepods.slice/…``, ``/sys/fs/cgroup/…`` too)."""
    return _answer_for_path(path, path, pid=None, comm="")


def which_process(pid: int, proc_root: str = "/proc") -> WhichAnswer:
    """The answer for a process, read from ``<proc_root>/<pid>/stat`` and ``cgroup``.

    Raises:
        ProcessNotFoundError: no such process under ``proc_root``, or it exited while
            it was read; the message says what to check.
        MalformedFileError: a file does not have the kernel's format.
        OSError: a file could not be read (permissions, ``hidepid``).
    """
    pid_dir = os.path.join(proc_root, str(pid))
    stat_path = os.path.join(pid_dir, "stat")
    stat_text = read_text_if_present(stat_path)
    if stat_text is None:
        namespace_hint = (
            "from inside a pod, run it in the exporter's pod, which shares the host's PIDs, "
            "with --proc-root /host/proc"
            if proc_root == "/proc"
            else "check that --proc-root is the host's procfs"
        )
        raise ProcessNotFoundError(
            f"no process {pid} under {proc_root}: it is not running, or it lives in "
            f"another PID namespace; {namespace_hint}"
        )
    stat = parse_pid_stat(stat_text, source=stat_path)
    if stat.flags & _PF_KTHREAD:
        return WhichAnswer(
            target=f"pid {pid}", kind="kernel_thread", cgroup_path="/", pid=pid, comm=stat.comm
        )
    cgroup_path = os.path.join(pid_dir, "cgroup")
    cgroup_text = read_text_if_present(cgroup_path)
    if cgroup_text is None:
        raise ProcessNotFoundError(f"process {pid} ({stat.comm}) exited while it was read")
    cgroups = parse_proc_cgroup(cgroup_text, source=cgroup_path)
    return _answer_for_path(f"pid {pid}", cgroups.path, pid=pid, comm=stat.comm)


def parse_target(text: str) -> int | str:
    """A PID (digits) or a cgroup path (anything with a ``/``).

    Raises:
        ValueError: neither; the message says what is accepted.
    """
    stripped = text.strip()
    if stripped.isdigit() and int(stripped) > 0:
        return int(stripped)
    if "/" in stripped:
        return stripped
    raise ValueError(
        f"{text!r} is neither a PID nor a cgroup path; give a process ID such as 2051, or "
        "a cgroup path such as /kubepods.slice/kubepods-pod<uid>.slice"
    )


# ------------------------------------------------------------------------ names


def name_pods(answer: WhichAnswer, pods: Iterable[Pod], *, node_name: str) -> WhichAnswer:
    """``answer`` with the namespace, pod and container names from ``node_name``'s pods.

    Pods are matched as the exporter matches them (:class:`~exporter.podindex.PodIndex`:
    by UID, and by config hash for static pods); containers by the IDs in the pod
    status. An answer for no pod is returned unchanged.
    """
    identity = answer.identity
    if identity is None:
        return answer
    view = ClusterView(
        mode=MetadataMode.CLUSTER,
        pods={pod.uid or pod.key: pod for pod in pods},
        synced=True,
    )
    index = PodIndex(view)
    pod = index.lookup(identity)
    if pod is None:
        return dataclasses.replace(
            answer,
            lookup=f"no pod with UID {identity.pod_uid} on node {node_name} (deleted, or on "
            "another node: check --node-name)",
        )
    if identity.container_id is None:
        names = PodNames(namespace=pod.namespace, pod=pod.name, container=None, sandbox=False)
        return dataclasses.replace(answer, names=names)
    status = index.container_status(pod, identity.container_id)
    names = PodNames(
        namespace=pod.namespace,
        pod=pod.name,
        container=None if status is None else status.name,
        sandbox=status is None,
    )
    runtime = answer.runtime or (status.runtime if status is not None else None)
    return dataclasses.replace(answer, names=names, runtime=runtime)


def list_node_pods(api_client: Any, node_name: str) -> tuple[Pod, ...]:
    """This node's pods, in one LIST request (``fieldSelector=spec.nodeName=<node>``).

    Raises:
        Exception: whatever the client raises for a failed request (the caller reports
            it); :class:`~kubepulse.model.ObjectError` for a malformed answer.
    """
    import kubernetes.client  # noqa: PLC0415 - see _default_load_client

    core = kubernetes.client.CoreV1Api(api_client)
    # With _preload_content=False the client returns the raw urllib3 response.
    response: Any = core.list_pod_for_all_namespaces(
        field_selector=f"spec.nodeName={node_name}",
        _preload_content=False,
        _request_timeout=_LOOKUP_TIMEOUT_SECONDS,
    )
    try:
        body = json.loads(response.data)
    finally:
        response.release_conn()
    if not isinstance(body, dict):
        raise ObjectError("the pod list is not a JSON object")
    return Pod.list_from_api(body)


# ------------------------------------------------------------------------ the command


class _UsageError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message}\n{self.format_usage()}".rstrip())


def build_parser() -> argparse.ArgumentParser:
    """The ``which`` command line."""
    parser = _Parser(
        prog="kubepulse-exporter which",
        allow_abbrev=False,
        description=(
            "Say which pod and container (pod UID, container ID, runtime, QoS class), "
            "runtime overhead or host-process group a process or cgroup belongs to, as "
            "the exporter accounts for it."
        ),
    )
    parser.add_argument("target", metavar="PID|CGROUP-PATH", help="a process ID or a cgroup path")
    parser.add_argument(
        "--proc-root",
        metavar="DIR",
        help=f"where the host's procfs is mounted (default /proc) [{PROC_ROOT_ENV}]",
    )
    parser.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="output format"
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help=f"look the names up through this kubeconfig's API server [{KUBECONFIG_ENV}]",
    )
    parser.add_argument(
        "--node-name",
        metavar="NAME",
        help=f"the node whose pods are listed (default: the host name) [{NODE_NAME_ENV}]",
    )
    parser.add_argument("--no-api", action="store_true", help="do not ask the API server for names")
    return parser


def _lookup_names(
    answer: WhichAnswer,
    arguments: argparse.Namespace,
    environ: Mapping[str, str],
    load_client: Callable[[str | None], Any],
) -> WhichAnswer:
    kubeconfig = arguments.kubeconfig or environ.get(KUBECONFIG_ENV) or None
    if arguments.no_api or (kubeconfig is None and not environ.get(_SERVICE_HOST_ENV)):
        return answer
    try:
        node_name = parse_node_name(
            arguments.node_name or environ.get(NODE_NAME_ENV) or default_node_name()
        )
    except ValueError as exc:
        return dataclasses.replace(answer, lookup=f"not looked up: --node-name {exc}")
    try:
        pods = list_node_pods(load_client(kubeconfig), node_name)
    except Exception as exc:  # every failure of an optional lookup is reported, not raised
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return dataclasses.replace(answer, lookup=f"not looked up: {detail}")
    return name_pods(answer, pods, node_name=node_name)


def _default_load_client(kubeconfig: str | None) -> Any:
    # Imported here: the Kubernetes client costs 0.3 s and 20 MiB, needed for names only.
    from exporter.podwatch import load_api_client  # noqa: PLC0415

    return load_api_client(kubeconfig)


def main(
    argv: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    load_client: Callable[[str | None], Any] = _default_load_client,
) -> int:
    """Run ``kubepulse-exporter which`` with ``argv`` (the arguments after ``which``).

    Returns:
        The exit status: 0 answered, 1 no such process or unreadable, 2 usage error.
    """
    env = os.environ if environ is None else environ
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        arguments = build_parser().parse_args(list(argv))
        target = parse_target(arguments.target)
    except _UsageError as exc:
        print(f"kubepulse-exporter which: {exc.message}", file=err)
        return 2
    except ValueError as exc:
        print(f"kubepulse-exporter which: {exc}", file=err)
        return 2
    proc_root = arguments.proc_root or env.get(PROC_ROOT_ENV) or "/proc"
    try:
        if isinstance(target, int):
            answer = which_process(target, proc_root)
        else:
            answer = which_cgroup(target)
    except (ProcessNotFoundError, MalformedFileError) as exc:
        print(f"kubepulse-exporter which: {exc}", file=err)
        return 1
    except OSError as exc:
        print(
            f"kubepulse-exporter which: cannot read process {target} under {proc_root}: "
            f"{exc.strerror or exc}; run as root, or without hidepid on {proc_root}",
            file=err,
        )
        return 1
    answer = _lookup_names(answer, arguments, env, load_client)
    if arguments.output == "json":
        print(json.dumps(answer.to_dict(), indent=2), file=out)
    else:
        print(answer.to_text(), file=out)
    return 0

"""Which pod and container a cgroup path belongs to, from the path alone.

The kubelet places every pod in a cgroup named after the pod's UID, under a QoS-class
parent, and the container runtime places each container in a child of it. The names
depend on the kubelet's cgroup driver and on the runtime:

============================  ==================================================================
driver / runtime              container cgroup (``<uid>`` is ``metadata.uid``)
============================  ==================================================================
cgroupfs, containerd/docker   ``/kubepods/burstable/pod<uid>/<id>``
cgroupfs, CRI-O               ``/kubepods/burstable/pod<uid>/crio-<id>``
systemd, containerd           ``/kubepods.slice/kubepods-burstable.slice/``
                              ``kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope``
systemd, CRI-O                ``…/kubepods-burstable-pod<uid_>.slice/crio-<id>.scope``
                              (and with crun, its ``crio-<id>.scope/container`` subgroup)
systemd, docker               ``…/kubepods-burstable-pod<uid_>.slice/docker-<id>.scope``
============================  ==================================================================

Guaranteed pods sit directly under ``kubepods`` (``/kubepods/pod<uid>``,
``kubepods-pod<uid_>.slice``); Burstable and BestEffort pods under their own parent. The
systemd driver spells the UID with underscores (``<uid_>``), because a dash in a slice
name means "child of"; it is turned back into the dashed ``metadata.uid`` here. The same
names appear under cgroup v1 controllers (``/sys/fs/cgroup/memory/kubepods/…``), under
the cgroup v2 unified root, and below a prefix when the cluster runs inside containers
(kind's ``/kubelet.slice/kubelet-kubepods.slice/…``, ``/docker/<id>/kubepods/…``), so the
pod is looked for anywhere in the path, first match from the root.

What a path cannot tell:

* **The runtime under the cgroupfs driver.** containerd and docker both name the
  container's cgroup with the bare ID; the identity says ``"unknown"`` and the caller
  takes the runtime from the scheme of the pod status' ``containerID``.
* **App containers from the pod sandbox.** The pause (sandbox) container's cgroup is named
  exactly like an app container's. The caller tells them apart by the container IDs in
  the pod status, which list app, init and sidecar containers but never the sandbox;
  a container ID not among them is the sandbox (or a container that has since been
  replaced). Counting it as well as the pod-level cgroup would count it twice.
* **Static pods' UIDs.** The kubelet names a static pod's cgroup after the manifest's
  config hash (32 hex digits), not after the mirror pod's ``metadata.uid``; match it with
  :attr:`kubepulse.model.Pod.cgroup_uid`.

The module also parses ``/proc/<pid>/cgroup`` (:func:`parse_proc_cgroup`) and recognises
container-runtime helper processes (:func:`classify_runtime_helper`), which a node's
runtime overhead is made of. Everything here is pure: strings in, values out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

from kubepulse.errors import KubepulseValueError
from kubepulse.model import QosClass

__all__ = [
    "CgroupIdentity",
    "ContainerRuntime",
    "MalformedFileError",
    "ProcCgroups",
    "RuntimeComponent",
    "RuntimeHelper",
    "classify_runtime_helper",
    "identify_cgroup",
    "parse_proc_cgroup",
    "stats_cgroup_path",
]

ContainerRuntime: TypeAlias = Literal["containerd", "cri-o", "docker", "unknown"]
"""The runtime that created a container, as spelled in a pod status' ``containerID`` scheme."""

RuntimeComponent: TypeAlias = Literal["shim", "conmon", "daemon"]
"""The part of a container runtime a helper process is."""


class MalformedFileError(KubepulseValueError):
    """A kernel file (``/proc``, cgroupfs) does not have the format the kernel writes.

    Raised by the pure parsers of the exporter and by the readers that call them; the
    collector counts it as a collection error. ``source`` names the file (or what the
    text came from), ``line_number`` is 1-based, ``None`` when the whole file is wrong.
    """

    def __init__(self, source: str, line_number: int | None, line: str | None, reason: str) -> None:
        self.source = source
        self.line_number = line_number
        self.line = line
        self.reason = reason
        where = source if line_number is None else f"{source}, line {line_number}"
        shown = "" if line is None else f" ({line!r})"
        super().__init__(
            f"{where}{shown}: {reason}. The exporter expects the format the Linux kernel "
            "writes; check that the configured proc or cgroup root really is the host's "
            "procfs or cgroupfs, and if it is, report this with the file's content."
        )


@dataclass(frozen=True, slots=True)
class CgroupIdentity:
    """The pod (and container) a cgroup belongs to.

    Two paths of one container (CRI-O's scope and its ``container`` subgroup, or any
    sub-cgroup a container made for itself) give equal identities, so identities can be
    used as keys to bring processes and cgroups together.
    """

    pod_uid: str
    """The pod's UID with dashes, as in ``metadata.uid``; a static pod's config hash."""
    container_id: str | None
    """The runtime's 64-hex container ID; ``None`` for the pod-level cgroup itself."""
    runtime: ContainerRuntime
    """Who made the container; ``"unknown"`` under the cgroupfs driver and at pod level."""
    qos_class: QosClass
    """The pod's QoS class, from the cgroup's parent (``kubepods`` alone is Guaranteed)."""
    is_pod_level: bool
    """True for the pod's own cgroup, which holds all its containers and the sandbox."""


@dataclass(frozen=True, slots=True)
class RuntimeHelper:
    """A process that is container-runtime overhead rather than a workload."""

    runtime: ContainerRuntime
    """The runtime the process serves."""
    component: RuntimeComponent
    """``shim`` (containerd-shim), ``conmon`` (CRI-O's monitor) or ``daemon``."""


@dataclass(frozen=True, slots=True)
class ProcCgroups:
    """The parsed content of ``/proc/<pid>/cgroup``.

    Paths are as the kernel prints them: relative to the *reader's* cgroup namespace.
    When the exporter runs in its own cgroup namespace (a container on a cgroup v2
    host), a process outside it shows as ``/../../kubepods-…``;
    :attr:`outside_reader_namespace` says so. :func:`identify_cgroup` copes with such
    paths, but they cannot be joined to a cgroup root to read files.
    """

    path: str
    """The path to identify the process by (see :func:`parse_proc_cgroup` for the choice)."""
    unified_path: str | None
    """The cgroup v2 path (the ``0::`` line), ``None`` on a pure cgroup v1 host."""
    controller_paths: Mapping[str, str] = field(hash=False)
    """cgroup v1 controller (``memory``, ``cpuacct``, ``name=systemd``…) to its path."""
    deleted: bool = False
    """The kernel marked the cgroup ``(deleted)``: the process outlived its cgroup."""

    @property
    def mode(self) -> Literal["v2", "v1", "hybrid"]:
        """Which cgroup hierarchies the process is in, as seen from its lines."""
        if not self.controller_paths:
            return "v2"
        return "v1" if self.unified_path is None else "hybrid"

    @property
    def outside_reader_namespace(self) -> bool:
        """True when :attr:`path` climbs out of the reader's cgroup namespace (``/..``)."""
        return self.path == "/.." or self.path.startswith("/../")


_QOS_BY_SEGMENT: Final[Mapping[str | None, QosClass]] = MappingProxyType(
    {None: "Guaranteed", "burstable": "Burstable", "besteffort": "BestEffort"}
)
# systemd driver: the pod's slice names its whole ancestry, so the QoS class is in it.
# Any prefix before "kubepods" is a cgroup root the kubelet was given (kind: "kubelet-").
_SYSTEMD_POD_SLICE: Final = re.compile(
    r"(?:.+-)?kubepods(?:-(?P<qos>burstable|besteffort))?-pod(?P<uid>[0-9A-Fa-f_]+)\.slice"
)
_CGROUPFS_POD: Final = re.compile(r"pod(?P<uid>[0-9A-Fa-f-]+)")
_CGROUPFS_KUBEPODS: Final = "kubepods"
_CGROUPFS_QOS_SEGMENTS: Final = frozenset({"burstable", "besteffort"})
# Every CRI runtime names containers by a sha256 in hex.
_SCOPE_CONTAINER: Final = re.compile(r"(?P<prefix>[a-z][a-z0-9-]*?)-(?P<id>[0-9a-f]{64})\.scope")
_CGROUPFS_CRIO_CONTAINER: Final = re.compile(r"crio-(?P<id>[0-9a-f]{64})")
_BARE_CONTAINER: Final = re.compile(r"[0-9a-f]{64}")
_CONMON: Final = re.compile(r"crio-conmon-[0-9a-f]{64}(?:\.scope)?")
_CONMON_PREFIX: Final = "crio-conmon"
_RUNTIME_BY_SCOPE_PREFIX: Final[Mapping[str, ContainerRuntime]] = MappingProxyType(
    {"cri-containerd": "containerd", "crio": "cri-o", "docker": "docker"}
)
_IGNORED_SEGMENTS: Final = frozenset({"", ".", ".."})


def _find_pod(segments: list[str]) -> tuple[str, QosClass, int] | None:
    """The pod UID, QoS class and index of the pod segment, first match from the root."""
    for index, segment in enumerate(segments):
        systemd = _SYSTEMD_POD_SLICE.fullmatch(segment)
        if systemd is not None:
            uid = systemd.group("uid").replace("_", "-")
            return uid, _QOS_BY_SEGMENT[systemd.group("qos")], index
        if segment != _CGROUPFS_KUBEPODS:
            continue
        # cgroupfs driver: kubepods[/burstable|/besteffort]/pod<uid>. A bare "pod…"
        # elsewhere is not enough evidence, so the parent chain is checked.
        qos_segment: str | None = None
        position = index + 1
        if position < len(segments) and segments[position] in _CGROUPFS_QOS_SEGMENTS:
            qos_segment = segments[position]
            position += 1
        if position < len(segments):
            cgroupfs = _CGROUPFS_POD.fullmatch(segments[position])
            if cgroupfs is not None:
                return cgroupfs.group("uid"), _QOS_BY_SEGMENT[qos_segment], position
    return None


def _container_of(segment: str) -> tuple[str, ContainerRuntime] | None:
    """The container ID and runtime named by a child of a pod cgroup, if it is one."""
    if _CONMON.fullmatch(segment):
        # CRI-O's per-container monitor: runtime overhead charged to the pod, never a
        # container of its own.
        return None
    scope = _SCOPE_CONTAINER.fullmatch(segment)
    if scope is not None:
        return scope.group("id"), _RUNTIME_BY_SCOPE_PREFIX.get(scope.group("prefix"), "unknown")
    crio = _CGROUPFS_CRIO_CONTAINER.fullmatch(segment)
    if crio is not None:
        return crio.group("id"), "cri-o"
    if _BARE_CONTAINER.fullmatch(segment):
        # containerd and docker look the same under the cgroupfs driver.
        return segment, "unknown"
    return None


def _match(path: str) -> tuple[CgroupIdentity, str] | None:
    """The identity of ``path`` and the prefix of ``path`` that names it."""
    parts = path.split("/")
    # Positions in `parts` of the segments that name something, so that the prefix can be
    # cut from the path exactly as it was written.
    positions = [index for index, part in enumerate(parts) if part not in _IGNORED_SEGMENTS]
    segments = [parts[index] for index in positions]
    found = _find_pod(segments)
    if found is None:
        return None
    uid, qos_class, pod_index = found
    if pod_index + 1 == len(segments):
        identity = CgroupIdentity(
            pod_uid=uid,
            container_id=None,
            runtime="unknown",
            qos_class=qos_class,
            is_pod_level=True,
        )
        return identity, "/".join(parts[: positions[pod_index] + 1])
    container = _container_of(segments[pod_index + 1])
    if container is None:
        # conmon scopes, and anything else the pod's cgroup holds that is no container.
        return None
    container_id, runtime = container
    # Deeper segments (CRI-O's "container" subgroup, cgroups a container made for its
    # own children) still belong to this container: the kernel charges them to it.
    identity = CgroupIdentity(
        pod_uid=uid,
        container_id=container_id,
        runtime=runtime,
        qos_class=qos_class,
        is_pod_level=False,
    )
    return identity, "/".join(parts[: positions[pod_index + 1] + 1])


def identify_cgroup(path: str) -> CgroupIdentity | None:
    """The pod, and the container if any, that a cgroup path belongs to.

    Args:
        path: a cgroup path in any of the layouts described in the module docstring, with
            or without a mount prefix (``/sys/fs/cgroup``, ``/sys/fs/cgroup/memory``) and
            possibly relative to a cgroup namespace (``/../../kubepods-…``).

    Returns:
        The identity, or ``None`` when the path is not inside a pod: host processes
        (``/system.slice/…``, ``/user.slice/…``, ``/init.scope``, ``/``), the QoS-level
        parents (``/kubepods/burstable``), CRI-O's ``crio-conmon-<id>`` scopes (runtime
        overhead: see :func:`classify_runtime_helper`) and unknown children of a pod
        cgroup. A sub-cgroup of a container (CRI-O's ``crio-<id>.scope/container``) gives
        the container's identity; :func:`stats_cgroup_path` says which cgroup to read.
    """
    matched = _match(path)
    return None if matched is None else matched[0]


def stats_cgroup_path(path: str) -> str | None:
    """The cgroup whose files account for the pod or container that ``path`` belongs to.

    That is ``path`` cut after the pod or container segment: a process in CRI-O's
    ``crio-<id>.scope/container`` subgroup is accounted for by ``crio-<id>.scope``, which
    contains the subgroup and carries the limits systemd applies to the scope. Prefixes,
    including namespace-relative ``..`` segments, are kept as they are. ``None`` when
    :func:`identify_cgroup` is ``None``.
    """
    matched = _match(path)
    return None if matched is None else matched[1]


# comm is the kernel's 15-character task name, so "containerd-shim-runc-v2" shows as
# "containerd-shim".
_HELPER_BY_COMM: Final[Mapping[str, RuntimeHelper]] = MappingProxyType(
    {
        "conmon": RuntimeHelper("cri-o", "conmon"),
        "crio": RuntimeHelper("cri-o", "daemon"),
        "containerd": RuntimeHelper("containerd", "daemon"),
        "dockerd": RuntimeHelper("docker", "daemon"),
        "cri-dockerd": RuntimeHelper("docker", "daemon"),
    }
)
_SHIM_COMM_PREFIX: Final = "containerd-shim"
# Whatever else runs in a runtime's own service cgroup (runc invocations, iptables
# calls, a daemon's helpers) is that runtime's overhead too.
_HELPER_BY_SERVICE: Final[Mapping[str, RuntimeHelper]] = MappingProxyType(
    {
        "containerd.service": RuntimeHelper("containerd", "daemon"),
        "crio.service": RuntimeHelper("cri-o", "daemon"),
        "docker.service": RuntimeHelper("docker", "daemon"),
        "cri-docker.service": RuntimeHelper("docker", "daemon"),
    }
)


def classify_runtime_helper(path: str, comm: str) -> RuntimeHelper | None:
    """Whether a process is container-runtime overhead, and of which runtime and part.

    Recognised, in this order:

    * a process in a ``crio-conmon-<id>`` cgroup (with ``.scope`` under systemd), wherever
      it sits: under the pod (``conmon_cgroup = "pod"``) or in ``system.slice``;
    * a process in a pod's container cgroup is a workload, whatever its name (a pod
      running its own containerd is not the node's runtime), so ``None``;
    * by command name: ``containerd-shim*`` (shim), ``conmon``, ``containerd``, ``crio``,
      ``dockerd``, ``cri-dockerd`` (daemons);
    * any other process in ``containerd.service``, ``crio.service``, ``docker.service``
      or ``cri-docker.service`` is that daemon's overhead.

    Args:
        path: the process's cgroup path (:attr:`ProcCgroups.path`).
        comm: the process's command name (``/proc/<pid>/stat``'s second field).

    Returns:
        The runtime and component, or ``None`` for host processes and workloads.
    """
    segments = [segment for segment in path.split("/") if segment not in _IGNORED_SEGMENTS]
    if segments and _CONMON.fullmatch(segments[-1]):
        return RuntimeHelper("cri-o", "conmon")
    if identify_cgroup(path) is not None:
        return None
    if comm.startswith(_SHIM_COMM_PREFIX):
        return RuntimeHelper("containerd", "shim")
    by_comm = _HELPER_BY_COMM.get(comm)
    if by_comm is not None:
        return by_comm
    if segments:
        return _HELPER_BY_SERVICE.get(segments[-1])
    return None


_DELETED_SUFFIX: Final = " (deleted)"
# Which v1 hierarchy names a process's place best: memory and CPU are what kubepulse
# reads, and the kubelet's pod hierarchy exists in every controller it manages.
_V1_PREFERENCE: Final = ("memory", "cpuacct", "cpu", "pids")
_NAMED_HIERARCHY_PREFIX: Final = "name="
_SYSTEMD_HIERARCHY: Final = "name=systemd"


def parse_proc_cgroup(text: str, *, source: str = "/proc/<pid>/cgroup") -> ProcCgroups:
    """Parse ``/proc/<pid>/cgroup``: ``hierarchy-ID:controller-list:cgroup-path`` lines.

    cgroup v2 has one line, ``0::/path``; cgroup v1 one line per hierarchy
    (``4:cpu,cpuacct:/path``, ``1:name=systemd:/path``); hybrid hosts have both.

    The path chosen to identify the process (:attr:`ProcCgroups.path`):

    * when the process is in any v1 hierarchy with resource controllers (v1 and hybrid
      hosts), the path in ``memory``, else ``cpuacct``, ``cpu``, ``pids``, else the first
      controller listed. On a hybrid host the resource controllers, and so the kubelet's
      pod hierarchy, are v1; the unified hierarchy has no controllers and, with the
      cgroupfs driver, need not contain the pod at all;
    * otherwise the unified (v2) path;
    * otherwise (only named v1 hierarchies) ``name=systemd``'s, else the first one's.

    A trailing `` (deleted)``, which the kernel adds when the process outlived its
    cgroup, is removed and reported in :attr:`ProcCgroups.deleted`.

    Raises:
        MalformedFileError: a line without two colons or with a non-numeric hierarchy ID,
            or no line at all.
    """
    unified_path: str | None = None
    controller_paths: dict[str, str] = {}
    named_paths: dict[str, str] = {}
    deleted = False
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        hierarchy_id, separator, rest = line.partition(":")
        controllers, separator_2, cgroup_path = rest.partition(":")
        if not separator or not separator_2:
            raise MalformedFileError(
                source, line_number, line, "expected hierarchy-ID:controller-list:cgroup-path"
            )
        if not hierarchy_id.isdigit():
            raise MalformedFileError(source, line_number, line, "the hierarchy ID is no number")
        if not cgroup_path.startswith("/"):
            raise MalformedFileError(source, line_number, line, "the cgroup path is not absolute")
        if cgroup_path.endswith(_DELETED_SUFFIX):
            cgroup_path = cgroup_path.removesuffix(_DELETED_SUFFIX)
            deleted = True
        if not controllers:
            unified_path = cgroup_path
            continue
        for controller in controllers.split(","):
            if controller.startswith(_NAMED_HIERARCHY_PREFIX):
                named_paths[controller] = cgroup_path
            else:
                controller_paths[controller] = cgroup_path
    all_v1 = MappingProxyType({**controller_paths, **named_paths})
    chosen: str | None
    if controller_paths:
        chosen = next(
            (controller_paths[name] for name in _V1_PREFERENCE if name in controller_paths),
            next(iter(controller_paths.values())),
        )
    elif unified_path is not None:
        chosen = unified_path
    else:
        chosen = named_paths.get(_SYSTEMD_HIERARCHY) or next(iter(named_paths.values()), None)
    if chosen is None:
        raise MalformedFileError(source, None, None, "no cgroup line at all")
    return ProcCgroups(
        path=chosen, unified_path=unified_path, controller_paths=all_v1, deleted=deleted
    )

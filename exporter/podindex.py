"""Which pod object and which container a cgroup belongs to, from one :class:`ClusterView`.

A cgroup path names a pod by UID and a container by the runtime's ID
(:func:`exporter.cgroup_path.identify_cgroup`); the pod object names them by namespace,
pod name and container name. :class:`PodIndex` joins the two:

* **Pods by cgroup UID.** The kubelet names a pod's cgroup after ``metadata.uid``, except
  for static pods, whose cgroup carries the manifest's config hash. The API server only
  knows a static pod through its mirror pod, which carries that hash in the
  ``kubernetes.io/config.mirror`` annotation (and ``kubernetes.io/config.hash``), so the
  index keys every pod by its UID and by those annotations.
* **Containers by ID.** Container statuses hold ``containerID`` as
  ``<runtime>://<id>``; :class:`kubepulse.model.ContainerStatus` keeps the ID without the
  scheme, which is what a cgroup path holds.
* **The sandbox.** The pause (sandbox) container has a cgroup like any app container but
  appears in no container status. Under a pod the index knows, a container ID that
  matches no status (app, init or sidecar) is the sandbox, or a container the kubelet has
  already replaced; either way its usage is inside the pod-level cgroup and must not be
  reported as a container of its own.

The module is pure: it takes a view and identities, and returns objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from exporter.cgroup_path import CgroupIdentity
from exporter.metadata import ClusterView, MetadataMode
from kubepulse.model import (
    ANNOTATION_CONFIG_HASH,
    ANNOTATION_CONFIG_MIRROR,
    ContainerStatus,
    Pod,
)

__all__ = ["ContainerMatch", "PodIndex"]


@dataclass(frozen=True, slots=True)
class ContainerMatch:
    """A container cgroup matched to its pod object."""

    pod: Pod
    """The pod that owns the cgroup."""
    status: ContainerStatus | None
    """The container's status; ``None`` for the sandbox (or a replaced container)."""

    @property
    def is_sandbox(self) -> bool:
        """True when the container is the pod's pause container (or no longer current)."""
        return self.status is None

    @property
    def name(self) -> str | None:
        """The container's name as in the pod spec; ``None`` for the sandbox."""
        return None if self.status is None else self.status.name


def _cgroup_uids(pod: Pod) -> set[str]:
    """Every UID a cgroup path may name the pod by, lower-cased."""
    candidates = {
        pod.uid,
        pod.cgroup_uid,
        pod.annotations.get(ANNOTATION_CONFIG_MIRROR),
        pod.annotations.get(ANNOTATION_CONFIG_HASH),
    }
    return {uid.lower() for uid in candidates if uid}


class PodIndex:
    """This node's pods, looked up by what cgroup paths name them by.

    Build one per collection from the :class:`ClusterView` the metadata source returned;
    the index is immutable and never goes back to the source.
    """

    __slots__ = ("_pods_by_cgroup_uid", "_statuses_by_pod_uid", "_view")

    def __init__(self, view: ClusterView) -> None:
        self._view = view
        pods_by_cgroup_uid: dict[str, Pod] = {}
        statuses_by_pod_uid: dict[str, Mapping[str, ContainerStatus]] = {}
        for pod in view.pods.values():
            for uid in _cgroup_uids(pod):
                # A UID is unique per cluster and a config hash per node, so a clash means
                # a stale object; the first one (by the view's order) is kept.
                pods_by_cgroup_uid.setdefault(uid, pod)
            statuses = {
                status.container_id.lower(): status
                for status in pod.container_statuses + pod.init_container_statuses
                if status.container_id
            }
            statuses_by_pod_uid[_pod_key(pod)] = MappingProxyType(statuses)
        self._pods_by_cgroup_uid = MappingProxyType(pods_by_cgroup_uid)
        self._statuses_by_pod_uid = MappingProxyType(statuses_by_pod_uid)

    @property
    def view(self) -> ClusterView:
        """The view the index was built from."""
        return self._view

    @property
    def has_cluster(self) -> bool:
        """True when a cluster backs the view (the pod watch), False in local mode."""
        return self._view.mode is MetadataMode.CLUSTER

    @property
    def pods(self) -> tuple[Pod, ...]:
        """Every pod of the view, in the view's order."""
        return tuple(self._view.pods.values())

    def pod_by_cgroup_uid(self, cgroup_uid: str) -> Pod | None:
        """The pod whose cgroup is named ``cgroup_uid`` (a UID or a static pod's hash)."""
        return self._pods_by_cgroup_uid.get(cgroup_uid.lower())

    def lookup(self, identity: CgroupIdentity) -> Pod | None:
        """The pod a pod-level or container cgroup belongs to, or ``None`` if unknown.

        ``None`` in local mode, before the watch has listed the pods, for a pod created
        since the last event, and for a static pod whose mirror pod does not exist yet.
        """
        return self.pod_by_cgroup_uid(identity.pod_uid)

    def container_status(self, pod: Pod, container_id: str) -> ContainerStatus | None:
        """The status (app, init or sidecar) whose ``containerID`` is ``container_id``."""
        return self._statuses_by_pod_uid.get(_pod_key(pod), {}).get(container_id.lower())

    def container_name(self, pod: Pod, container_id: str) -> str | None:
        """The name of the container ``container_id`` of ``pod``; ``None`` for the sandbox."""
        status = self.container_status(pod, container_id)
        return None if status is None else status.name

    def match_container(self, identity: CgroupIdentity) -> ContainerMatch | None:
        """The pod and status of a container cgroup; ``None`` when the pod is unknown.

        Raises:
            ValueError: ``identity`` is a pod-level cgroup, which names no container.
        """
        if identity.container_id is None:
            raise ValueError(
                f"the cgroup of pod {identity.pod_uid} is pod-level and names no container; "
                "use lookup() for pod-level cgroups"
            )
        pod = self.lookup(identity)
        if pod is None:
            return None
        return ContainerMatch(pod=pod, status=self.container_status(pod, identity.container_id))


def _pod_key(pod: Pod) -> str:
    # Pods reaching the exporter come from the API server and have a UID; the key falls
    # back to namespace/name for hand-built objects so that they still index.
    return pod.uid or pod.key

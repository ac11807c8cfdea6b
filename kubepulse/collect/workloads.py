"""The workloads (Deployments, ReplicaSets, StatefulSets) analyzers look pods up by.

:class:`~kubepulse.analysis.inputs.ClusterSnapshot` holds nodes, pods, namespaces and
quotas; recommendations and HPA simulations also need to know which workload a pod
belongs to, how many replicas it asks for and what its pod template's containers are
called. :class:`Workload` is that much of an ``apps/v1`` object, built from the JSON
kube-apiserver returns (``Workload.from_api``), small enough to keep thousands in memory.

HorizontalPodAutoscalers are kept as the raw ``autoscaling/v2`` dicts by the collectors;
:class:`kubepulse.model.HorizontalPodAutoscaler` parses one when typed access is wanted.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Final

from kubepulse.model import ObjectError

__all__ = ["WORKLOAD_KINDS", "Workload", "namespace_and_name"]

WORKLOAD_KINDS: Final = ("Deployment", "ReplicaSet", "StatefulSet")
"""The kinds :class:`Workload` describes."""


def namespace_and_name(obj: Mapping[str, Any]) -> tuple[str, str]:
    """``(namespace, name)`` of a raw object dict, to sort raw objects (HPAs) by."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return ("", "")
    return (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else MappingProxyType({})


def _frozen(value: object) -> Mapping[str, Any]:
    return MappingProxyType(dict(value)) if isinstance(value, Mapping) else MappingProxyType({})


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _container_names(pod_spec: Mapping[str, Any], key: str) -> tuple[str, ...]:
    containers = pod_spec.get(key)
    if not isinstance(containers, list):
        return ()
    return tuple(
        str(container["name"])
        for container in containers
        if isinstance(container, Mapping) and isinstance(container.get("name"), str)
    )


@dataclass(frozen=True, slots=True)
class Workload:
    """An ``apps/v1`` Deployment, ReplicaSet or StatefulSet, as far as analyzers need it."""

    KINDS: ClassVar[tuple[str, ...]] = WORKLOAD_KINDS

    kind: str
    """``Deployment``, ``ReplicaSet`` or ``StatefulSet``."""
    namespace: str
    """``metadata.namespace``."""
    name: str
    """``metadata.name``."""
    uid: str | None = None
    """``metadata.uid``."""
    selector: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    """``spec.selector`` as written (``matchLabels``, ``matchExpressions``); parse it with
    :meth:`kubepulse.selector.LabelSelector.from_api`."""
    replicas: int | None = None
    """``spec.replicas``: what is asked for (``None`` when unset: the API's default is 1)."""
    ready_replicas: int | None = None
    """``status.readyReplicas``."""
    containers: tuple[str, ...] = ()
    """The names of the pod template's containers, in order."""
    init_containers: tuple[str, ...] = ()
    """The names of the pod template's init containers, in order."""
    owners: tuple[tuple[str, str], ...] = ()
    """``(kind, name)`` of each owner: a ReplicaSet's Deployment."""
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    """``metadata.labels``."""

    @property
    def key(self) -> str:
        """``Deployment/default/web``: unique in a cluster."""
        return f"{self.kind}/{self.namespace}/{self.name}"

    def owned_by(self, kind: str, name: str) -> bool:
        """Whether ``kind``/``name`` (same namespace) owns this workload."""
        return (kind, name) in self.owners

    @classmethod
    def builder(cls, kind: str) -> Callable[[Mapping[str, Any]], Workload]:
        """``from_api`` for list items of ``kind`` (which carry no ``kind`` of their own)."""

        def build(obj: Mapping[str, Any]) -> Workload:
            return cls.from_api(obj, kind)

        return build

    @classmethod
    def from_api(cls, obj: Mapping[str, Any], kind: str | None = None) -> Workload:
        """Build from an ``apps/v1`` object as kube-apiserver returns it.

        List items carry no ``kind``; pass it as ``kind`` then.

        Raises:
            ObjectError: the kind is not a workload kind, or the name or namespace is
                missing.
        """
        if not isinstance(obj, Mapping):
            raise ObjectError(f"workload: expected a mapping, got {type(obj).__name__}")
        found = obj.get("kind") if kind is None else kind
        if found not in WORKLOAD_KINDS:
            raise ObjectError(
                f"workload: kind: expected one of {', '.join(WORKLOAD_KINDS)}, got {found!r}"
            )
        metadata = _mapping(obj.get("metadata"))
        name = metadata.get("name")
        namespace = metadata.get("namespace")
        if not isinstance(name, str) or not name:
            raise ObjectError(f"{str(found).lower()}: metadata.name: required, got nothing")
        if not isinstance(namespace, str) or not namespace:
            raise ObjectError(f"{str(found).lower()} {name}: metadata.namespace: required")
        spec = _mapping(obj.get("spec"))
        status = _mapping(obj.get("status"))
        pod_spec = _mapping(_mapping(spec.get("template")).get("spec"))
        raw_owners = metadata.get("ownerReferences")
        owners = tuple(
            (str(owner.get("kind")), str(owner.get("name")))
            for owner in (raw_owners if isinstance(raw_owners, list) else ())
            if isinstance(owner, Mapping)
        )
        uid = metadata.get("uid")
        labels = metadata.get("labels")
        return cls(
            kind=str(found),
            namespace=namespace,
            name=name,
            uid=uid if isinstance(uid, str) else None,
            selector=_frozen(spec.get("selector")),
            replicas=_int_or_none(spec.get("replicas")),
            ready_replicas=_int_or_none(status.get("readyReplicas")),
            containers=_container_names(pod_spec, "containers"),
            init_containers=_container_names(pod_spec, "initContainers"),
            owners=owners,
            labels=MappingProxyType(
                {str(key): str(value) for key, value in labels.items()}
                if isinstance(labels, Mapping)
                else {}
            ),
        )

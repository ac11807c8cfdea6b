"""One-shot collection of the cluster's objects, for ``kubectl pulse --local`` and scripts.

:func:`collect_snapshot` lists every kind the analyzers read once, in pages (see
:class:`~kubepulse.collect.lister.ObjectLister`), parses them with
:mod:`kubepulse.model` and returns a :class:`CollectedObjects`: the
:class:`~kubepulse.analysis.inputs.ClusterSnapshot`, the HorizontalPodAutoscalers as raw
``autoscaling/v2`` dicts and the workloads. A process that asks more than once should
keep a :class:`~kubepulse.collect.informer.ClusterInformer` instead, which lists once and
then only watches.

An object the model cannot read is skipped and named in
:attr:`CollectedObjects.rejected`, so one odd object does not hide a whole cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

import httpx

from kubepulse.analysis.inputs import ClusterSnapshot
from kubepulse.collect.lister import (
    DEPLOYMENTS,
    HORIZONTAL_POD_AUTOSCALERS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICA_SETS,
    RESOURCE_QUOTAS,
    STATEFUL_SETS,
    ObjectLister,
    ResourceKind,
)
from kubepulse.collect.workloads import Workload, namespace_and_name
from kubepulse.kubeconnect import ClusterConnection
from kubepulse.model import Namespace, Node, Pod, ResourceQuota

__all__ = ["CollectedObjects", "Progress", "collect_snapshot"]

Progress = Callable[[str, int], None]
"""Told ``(kind, objects so far)`` after every page: ``("pods", 1500)``."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class CollectedObjects:
    """What one collection found."""

    snapshot: ClusterSnapshot
    """Nodes, pods, namespaces and quotas."""
    autoscalers: tuple[Mapping[str, Any], ...]
    """HorizontalPodAutoscalers as ``autoscaling/v2`` dicts, by namespace and name; parse one
    with :meth:`kubepulse.model.HorizontalPodAutoscaler.from_api`."""
    workloads: tuple[Workload, ...]
    """Deployments, ReplicaSets and StatefulSets, by kind, namespace and name."""
    requests: int = 0
    """Requests sent to kube-apiserver (list pages)."""
    rejected: tuple[str, ...] = ()
    """Objects skipped because they cannot be read, one message each."""


def collect_snapshot(
    connection: ClusterConnection,
    *,
    namespaces: Iterable[str] | None = None,
    progress: Progress | None = None,
    page_size: int = 500,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> CollectedObjects:
    """List the analyzers' kinds once and parse them.

    Args:
        connection: where kube-apiserver is and the credentials to use.
        namespaces: read only these namespaces' pods, quotas, HPAs and workloads (one list
            per namespace and kind); ``None`` reads all. Nodes and namespaces are always
            read whole: analyzers need every node, and the caller needs every namespace's
            name to tell a user which ones exist.
        progress: told ``(kind, objects so far)`` after every page, so a CLI can show
            how a long collection goes.
        page_size: objects per list page.
        timeout: seconds for connecting and for each page.
        transport: an httpx transport to use instead of the network (tests).
        clock: wall-clock seconds, for the snapshot's ``taken_at_ms``.

    Raises:
        KubernetesAPIError: a list failed; the message says what to do (for a 403, the
            RBAC rule to grant).
    """
    scopes: tuple[str | None, ...] = (None,) if namespaces is None else tuple(namespaces)
    rejected: list[str] = []
    with ObjectLister(
        connection, page_size=page_size, timeout=timeout, transport=transport
    ) as lister:

        def read(kind: ResourceKind) -> list[Mapping[str, Any]]:
            items: list[Mapping[str, Any]] = []
            for scope in scopes if kind.namespaced else (None,):
                done = len(items)

                def report(count: int, done: int = done) -> None:
                    if progress is not None:
                        progress(kind.resource, done + count)

                items.extend(lister.list(kind, namespace=scope, progress=report).items)
            return items

        taken_at_ms = int(clock() * 1000)
        nodes = _build(read(NODES), Node.from_api, NODES, rejected)
        namespace_objects = _build(read(NAMESPACES), Namespace.from_api, NAMESPACES, rejected)
        pods = _build(read(PODS), Pod.from_api, PODS, rejected)
        quotas = _build(read(RESOURCE_QUOTAS), ResourceQuota.from_api, RESOURCE_QUOTAS, rejected)
        autoscalers = [MappingProxyType(dict(item)) for item in read(HORIZONTAL_POD_AUTOSCALERS)]
        workloads: list[Workload] = []
        for kind in (DEPLOYMENTS, REPLICA_SETS, STATEFUL_SETS):
            workloads.extend(_build(read(kind), Workload.builder(kind.kind), kind, rejected))
        requests = lister.requests
    snapshot = ClusterSnapshot(
        taken_at_ms=taken_at_ms,
        nodes=tuple(sorted(nodes, key=lambda node: node.name)),
        pods=tuple(sorted(pods, key=lambda pod: (pod.namespace, pod.name))),
        namespaces=tuple(sorted(namespace_objects, key=lambda namespace: namespace.name)),
        quotas=tuple(sorted(quotas, key=lambda quota: (quota.namespace, quota.name))),
    )
    return CollectedObjects(
        snapshot=snapshot,
        autoscalers=tuple(sorted(autoscalers, key=namespace_and_name)),
        workloads=tuple(sorted(workloads, key=lambda workload: workload.key)),
        requests=requests,
        rejected=tuple(rejected),
    )


def _build(
    items: list[Mapping[str, Any]],
    build: Callable[[Mapping[str, Any]], _T],
    kind: ResourceKind,
    rejected: list[str],
) -> list[_T]:
    built: list[_T] = []
    for index, item in enumerate(items):
        try:
            built.append(build(item))
        except ValueError as exc:
            rejected.append(f"{kind.resource} items[{index}]: {exc}")
    return built

"""A synthetic cluster for the analysis benchmarks: API-shaped objects and usage history.

:func:`synthetic_cluster` builds ``pods`` pods on ``nodes`` nodes, spread over
``namespaces`` namespaces with a ResourceQuota each, as the JSON kube-apiserver would
return (parsed with :mod:`kubepulse.model` like the real collection does), and a
:class:`~kubepulse.analysis.inputs.UsageHistory` with a CPU and memory series per
container, a throttling series, a few OOM kills, node pressure and available memory,
and quota usage over time. Everything is deterministic for a given seed, so two runs
measure the same work.

The shapes are varied on purpose (several workloads per namespace, three QoS classes,
priorities, some pods without limits, some over their requests, some Pending) so that
analyzers take their real branches rather than one fast path.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from kubepulse.analysis.inputs import (
    ClusterSnapshot,
    ContainerRef,
    QuotaRef,
    TimeSeries,
    UsageHistory,
)
from kubepulse.model import Namespace, Node, Pod, ResourceQuota

__all__ = ["SyntheticCluster", "synthetic_cluster"]

_MI = 2**20
_GI = 2**30


@dataclass(frozen=True)
class SyntheticCluster:
    """A generated cluster: its raw objects, the parsed snapshot and the history."""

    raw_nodes: list[dict[str, Any]]
    raw_pods: list[dict[str, Any]]
    raw_namespaces: list[dict[str, Any]]
    raw_quotas: list[dict[str, Any]]
    snapshot: ClusterSnapshot
    history: UsageHistory


def _timestamp(epoch_ms: int) -> str:
    import datetime  # noqa: PLC0415 - local: only object generation needs it

    moment = datetime.datetime.fromtimestamp(epoch_ms / 1000, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _node(index: int) -> dict[str, Any]:
    name = f"node-{index:04d}"
    big = index % 4 == 0
    cpu, memory = ("16", "64Gi") if big else ("8", "32Gi")
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "uid": f"uid-{name}", "labels": {"zone": f"z{index % 3}"}},
        "spec": {"unschedulable": index % 97 == 96},
        "status": {
            "capacity": {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {
                "cpu": f"{int(cpu) * 1000 - 500}m",
                "memory": f"{int(memory[:-2]) - 1}Gi",
                "pods": "110",
                "ephemeral-storage": "90Gi",
            },
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "MemoryPressure", "status": "True" if index % 50 == 7 else "False"},
                {"type": "DiskPressure", "status": "False"},
                {"type": "PIDPressure", "status": "False"},
            ],
        },
    }


def _container(name: str, rng: random.Random, qos: str) -> dict[str, Any]:
    cpu_m = rng.choice((50, 100, 250, 500, 1000))
    memory_mi = rng.choice((64, 128, 256, 512, 1024))
    resources: dict[str, Any] = {}
    if qos == "Guaranteed":
        amounts = {"cpu": f"{cpu_m}m", "memory": f"{memory_mi}Mi"}
        resources = {"requests": amounts, "limits": dict(amounts)}
    elif qos == "Burstable":
        resources = {
            "requests": {"cpu": f"{cpu_m}m", "memory": f"{memory_mi}Mi"},
            "limits": {"memory": f"{memory_mi * 2}Mi"} if rng.random() < 0.7 else {},
        }
    return {"name": name, "image": "registry.k8s.io/pause:3.9", "resources": resources}


def _pod(
    index: int, namespace: str, node: str | None, rng: random.Random, now_ms: int
) -> dict[str, Any]:
    workload = f"app-{index % 7}"
    qos = rng.choices(("Guaranteed", "Burstable", "BestEffort"), weights=(3, 6, 1))[0]
    containers = [_container("app", rng, qos)]
    if rng.random() < 0.3:
        containers.append(_container("sidecar", rng, qos))
    started = _timestamp(now_ms - rng.randint(600_000, 86_400_000))
    name = f"{workload}-{index:06d}"
    statuses = []
    for container in containers:
        status: dict[str, Any] = {
            "name": container["name"],
            "ready": node is not None,
            "restartCount": 0,
            "image": container["image"],
            "imageID": "",
            "state": {"running": {"startedAt": started}},
        }
        if rng.random() < 0.01:
            status["restartCount"] = 1
            status["lastState"] = {
                "terminated": {
                    "exitCode": 137,
                    "reason": "OOMKilled",
                    "startedAt": _timestamp(now_ms - 7_200_000),
                    "finishedAt": _timestamp(now_ms - 1_800_000),
                }
            }
        statuses.append(status)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "labels": {"app": workload, "pod-template-hash": "5d8f7c9b6"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{workload}-5d8f7c9b6",
                    "uid": f"rs-{namespace}-{workload}",
                    "controller": True,
                }
            ],
            "creationTimestamp": started,
        },
        "spec": {
            "nodeName": node,
            "priority": rng.choice((0, 0, 0, 1000, 100000)),
            "containers": containers,
        },
        "status": {
            "phase": "Running" if node else "Pending",
            "qosClass": qos,
            "startTime": started,
            "containerStatuses": statuses if node else [],
        },
    }


def _quota(namespace: str, pods_in_namespace: int) -> dict[str, Any]:
    hard = {"requests.cpu": str(pods_in_namespace), "pods": str(pods_in_namespace * 2)}
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "compute", "namespace": namespace, "uid": f"q-{namespace}"},
        "spec": {"hard": hard},
        "status": {
            "hard": hard,
            "used": {"requests.cpu": f"{pods_in_namespace * 400}m", "pods": str(pods_in_namespace)},
        },
    }


def _series(
    rng: random.Random, start_ms: int, step_ms: int, points: int, base: float, spread: float
) -> TimeSeries:
    values = []
    level = base
    for _ in range(points):
        level = max(0.0, level + rng.gauss(0, spread))
        values.append(level)
    return TimeSeries(tuple(start_ms + i * step_ms for i in range(points)), tuple(values))


def synthetic_cluster(
    *,
    pods: int,
    nodes: int,
    namespaces: int,
    history_points: int = 20,
    step_ms: int = 15_000,
    now_ms: int = 1_800_000_000_000,
    seed: int = 7,
) -> SyntheticCluster:
    """A deterministic cluster of ``pods`` pods on ``nodes`` nodes (see the module doc)."""
    rng = random.Random(seed)
    raw_nodes = [_node(index) for index in range(nodes)]
    namespace_names = [f"team-{index:03d}" for index in range(namespaces)]
    raw_namespaces = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "uid": f"ns-{name}"},
         "status": {"phase": "Active"}}
        for name in namespace_names
    ]  # fmt: skip
    raw_pods = []
    per_namespace = [0] * namespaces
    for index in range(pods):
        namespace_index = index % namespaces
        per_namespace[namespace_index] += 1
        pending = rng.random() < 0.005
        node = None if pending else raw_nodes[index % nodes]["metadata"]["name"]
        raw_pods.append(_pod(index, namespace_names[namespace_index], node, rng, now_ms))
    counts = zip(namespace_names, per_namespace, strict=True)
    raw_quotas = [_quota(name, max(1, count)) for name, count in counts]
    snapshot = ClusterSnapshot(
        taken_at_ms=now_ms,
        nodes=tuple(Node.from_api(raw) for raw in raw_nodes),
        pods=tuple(Pod.from_api(raw) for raw in raw_pods),
        namespaces=tuple(Namespace.from_api(raw) for raw in raw_namespaces),
        quotas=tuple(ResourceQuota.from_api(raw) for raw in raw_quotas),
    )
    start_ms = now_ms - (history_points - 1) * step_ms
    cpu: dict[ContainerRef, TimeSeries] = {}
    memory: dict[ContainerRef, TimeSeries] = {}
    throttled: dict[ContainerRef, TimeSeries] = {}
    oom: dict[ContainerRef, tuple[int, ...]] = {}
    for pod in snapshot.pods:
        if pod.node_name is None:
            continue
        requests = {c.name: c for c in pod.containers}
        for name, spec in requests.items():
            ref = ContainerRef(pod.namespace, pod.name, name)
            request_cpu = float(spec.requests.cpu_cores or 0.1)
            request_memory = float(spec.requests.memory_bytes or 128 * _MI)
            load = rng.choice((0.2, 0.5, 0.9, 1.3))
            cpu[ref] = _series(rng, start_ms, step_ms, history_points, request_cpu * load, 0.02)
            memory[ref] = _series(
                rng, start_ms, step_ms, history_points, request_memory * load, 2 * _MI
            )
            throttled[ref] = _series(rng, start_ms, step_ms, history_points, 0.05, 0.01)
            if rng.random() < 0.002:
                oom[ref] = (now_ms - 60_000,)
    node_pressure = {
        node.name: {
            "memory_some": _series(rng, start_ms, step_ms, history_points, 0.01, 0.002),
            "cpu_some": _series(rng, start_ms, step_ms, history_points, 0.05, 0.01),
        }
        for node in snapshot.nodes
    }
    available = {
        node.name: _series(rng, start_ms, step_ms, history_points, 8.0 * _GI, 0.1 * _GI)
        for node in snapshot.nodes
    }
    quota_used = {
        QuotaRef(quota.namespace, quota.name, "requests.cpu"): _series(
            rng, start_ms, step_ms, history_points, float(quota.used.get("requests.cpu", 0)), 0.01
        )
        for quota in snapshot.quotas
    }
    history = UsageHistory(
        start_ms=start_ms,
        end_ms=now_ms,
        cpu_cores=cpu,
        memory_working_set_bytes=memory,
        cpu_throttled_ratio=throttled,
        oom_kill_ms=oom,
        node_pressure=node_pressure,
        node_memory_available_bytes=available,
        quota_used=quota_used,
    )
    return SyntheticCluster(raw_nodes, raw_pods, raw_namespaces, raw_quotas, snapshot, history)

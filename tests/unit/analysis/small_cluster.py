"""A small recorded cluster for the analysis tests of the API and the CLI.

Two Burstable pods of Deployment ``web`` on one 4-core node in namespace ``shop``, with
a pods quota, and a history source that returns steady CPU (0.19 cores of a 0.2 limit)
and memory (200 MiB of a 256 MiB limit) for both containers over any range.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kubepulse.analysis.inputs import ClusterSnapshot, ContainerRef, TimeSeries, UsageHistory
from kubepulse.errors import KubepulseError
from kubepulse.model import Namespace, Node, Pod, ResourceQuota

NOW = 1_700_000_000_000
_MI = 2**20


def _pod(name: str, node: str, memory_request: str, *, owner: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": f"uid-{name}",
            "labels": {"app": owner, "pod-template-hash": "5d9f7"},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{owner}-5d9f7",
                 "uid": f"rs-{owner}", "controller": True}
            ],
            "creationTimestamp": "2023-11-14T20:00:00Z",
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {"name": "app", "image": "app:1",
                 "resources": {"requests": {"cpu": "100m", "memory": memory_request},
                               "limits": {"cpu": "200m", "memory": "256Mi"}}}
            ],
        },
        "status": {"phase": "Running", "qosClass": "Burstable",
                   "startTime": "2023-11-14T20:00:00Z"},
    }  # fmt: skip


def snapshot() -> ClusterSnapshot:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-a", "uid": "node-a"},
        "status": {
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "compute", "namespace": "shop", "uid": "q1"},
        "spec": {"hard": {"pods": "4"}},
        "status": {"hard": {"pods": "4"}, "used": {"pods": "2"}},
    }
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    return ClusterSnapshot(
        taken_at_ms=NOW,
        nodes=(Node.from_api(node),),
        pods=(
            Pod.from_api(_pod("web-5d9f7-a", "node-a", "128Mi")),
            Pod.from_api(_pod("web-5d9f7-b", "node-a", "128Mi")),
        ),
        namespaces=(Namespace.from_api(namespace),),
        quotas=(ResourceQuota.from_api(quota),),
    )


def _series(value: float, start_ms: int) -> TimeSeries:
    return TimeSeries.of((t, value) for t in range(start_ms, NOW + 1, 15_000))


class FixedHistory:
    """A history source that returns the same measurements for any range."""

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.calls: list[tuple[int, int, tuple[str, ...] | None]] = []

    def fetch(
        self, start_ms: int, end_ms: int, namespaces: Iterable[str] | None = None
    ) -> UsageHistory:
        self.calls.append((start_ms, end_ms, None if namespaces is None else tuple(namespaces)))
        if self.down:
            raise KubepulseError("Prometheus at http://127.0.0.1:1 did not answer")
        refs = [ContainerRef("shop", pod, "app") for pod in ("web-5d9f7-a", "web-5d9f7-b")]
        return UsageHistory(
            start_ms=start_ms,
            end_ms=end_ms,
            cpu_cores={ref: _series(0.19, start_ms) for ref in refs},
            memory_working_set_bytes={ref: _series(200 * _MI, start_ms) for ref in refs},
        )


class SmallClusterView:
    """The informer's part: the small cluster, synced or not, with failing kinds."""

    def __init__(self, *, synced: bool = True, failing: Mapping[str, str] | None = None) -> None:
        self.is_synced = synced
        self.failing = dict(failing or {})

    def synced(self) -> bool:
        return self.is_synced

    def snapshot(self) -> ClusterSnapshot:
        return snapshot()

    def autoscalers(self) -> tuple[Mapping[str, Any], ...]:
        return ()

    def problems(self) -> Mapping[str, str]:
        return self.failing

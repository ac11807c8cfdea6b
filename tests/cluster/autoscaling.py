"""What the autoscaling e2e test and the demo share: manifests and the closed loop.

Kwok pods are fake and do no work, so an ``examples/instrumented_app.py`` process on
loopback serves each Deployment's traffic in their place. :class:`CapacityFollower`
gives that process one worker per replica the Deployment has, so that when an HPA
scales, the latency the process measures really falls.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx

from tests.cluster.controlplane import ControlPlane

POOL_LABEL = "kubepulse.io/pool"


def deployment(name: str, pool: str) -> dict[str, Any]:
    """A one-replica Deployment of pause containers on the kwok nodes of ``pool``."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {POOL_LABEL: pool},
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                },
            },
        },
    }


def external_hpa(
    name: str,
    metric: str,
    selector: dict[str, str],
    target: str,
    *,
    max_replicas: int = 6,
    scale_down_window_s: int = 0,
) -> dict[str, Any]:
    """An autoscaling/v2 HPA of Deployment ``name`` on one External metric's value.

    ``selector`` goes to the adapter as the ``labelSelector``: series labels, and the
    reserved ``kubepulse.io/*`` keys that choose the statistic. Scale-down is stabilised
    over ``scale_down_window_s`` (``behavior.scaleDown.stabilizationWindowSeconds``); by
    default not at all, so that a test sees it promptly.
    """
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {"name": metric, "selector": {"matchLabels": selector}},
                        "target": {"type": "Value", "value": target},
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": scale_down_window_s}},
        },
    }


def replicas(cluster: ControlPlane, namespace: str, name: str) -> int:
    """The replicas Deployment ``name`` is scaled to."""
    scale = cluster.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale")
    return int(scale["spec"].get("replicas", 0))


class CapacityFollower:
    """Keeps an app process' worker count equal to a Deployment's replicas, once a second."""

    def __init__(self, cluster: ControlPlane, namespace: str, deployment_name: str, app_port: int):
        self._cluster = cluster
        self._namespace = namespace
        self._name = deployment_name
        self._port = app_port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="capacity-follower", daemon=True)

    def __enter__(self) -> CapacityFollower:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _follow(self) -> None:
        with httpx.Client(timeout=5) as http:
            while not self._stop.wait(1.0):
                try:
                    workers = max(1, replicas(self._cluster, self._namespace, self._name))
                    http.post(
                        f"http://127.0.0.1:{self._port}/capacity", params={"workers": workers}
                    )
                except Exception:
                    continue

"""A real HPA scales a real Deployment on CPU that kwok simulates and metrics-server serves.

The chain under test, all upstream:

    kwok (ClusterResourceUsage from pod annotations, kubelet-like
    /metrics/nodes/<node>/metrics/resource over TLS)
      -> metrics-server (scrapes each node's InternalIP 127.0.0.1 at the
         node-status port, verifies kwok's certificate)
      -> kube-apiserver aggregation layer (APIService v1beta1.metrics.k8s.io,
         real caBundle, ExternalName Service pointing at 127.0.0.1)
      -> HPA controller (autoscaling/v2, CPU utilization) -> Deployment.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import kubernetes.client
import pytest

from tests.cluster.controlplane import KWOK_USAGE_CPU_ANNOTATION, ControlPlane

pytestmark = pytest.mark.e2e

APP = "cpu-burner"
CPU_REQUEST_MILLICORES = 100
IDLE_CPU = "20m"  # 20 % of the request: below the 50 % target
BUSY_CPU = "400m"  # 400 %: the HPA wants 8 replicas, capped at MAX_REPLICAS
QUIET_CPU = "10m"  # 10 %: back to MIN_REPLICAS
MIN_REPLICAS, MAX_REPLICAS = 1, 4
TARGET_UTILIZATION = 50


def test_metrics_api_is_served_through_the_aggregation_layer(
    metrics_server: ControlPlane,
) -> None:
    cluster = metrics_server
    apiservice = cluster.request(
        "GET", "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io"
    )
    spec = apiservice["spec"]
    assert not spec.get("insecureSkipTLSVerify")
    assert base64.b64decode(spec["caBundle"]) == cluster.ca_bundle.read_bytes()
    assert spec["service"] == {
        "name": "metrics-server",
        "namespace": "kube-system",
        "port": cluster.ports.metrics_server,
    }
    conditions = {c["type"]: c["status"] for c in apiservice["status"]["conditions"]}
    assert conditions == {"Available": "True"}

    service = cluster.request("GET", "/api/v1/namespaces/kube-system/services/metrics-server")
    assert service["spec"]["type"] == "ExternalName"
    assert service["spec"]["externalName"] == "127.0.0.1"

    # Discovery through the aggregator reaches the local process.
    resources = cluster.request("GET", "/apis/metrics.k8s.io/v1beta1")["resources"]
    assert {"nodes", "pods"} <= {r["name"] for r in resources}


def cpu_burner(idle_cpu: str, pool: str) -> dict[str, Any]:
    labels = {"app": APP}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "labels": labels},
        "spec": {
            "replicas": MIN_REPLICAS,
            "selector": {"matchLabels": labels},
            "template": {
                # New replicas start idle; tests/cluster/kwok/resource-usage.yaml
                # turns this annotation into simulated CPU usage.
                "metadata": {
                    "labels": labels,
                    "annotations": {KWOK_USAGE_CPU_ANNOTATION: idle_cpu},
                },
                "spec": {
                    "nodeSelector": {"kubepulse.io/pool": pool},
                    "containers": [
                        {
                            "name": "burner",
                            "image": "registry.k8s.io/pause:3.10",
                            "resources": {
                                "requests": {
                                    "cpu": f"{CPU_REQUEST_MILLICORES}m",
                                    "memory": "64Mi",
                                }
                            },
                        }
                    ],
                },
            },
        },
    }


def cpu_hpa() -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": APP},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
            "minReplicas": MIN_REPLICAS,
            "maxReplicas": MAX_REPLICAS,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": TARGET_UTILIZATION,
                        },
                    },
                }
            ],
        },
    }


def set_simulated_cpu(cluster: ControlPlane, namespace: str, value: str) -> None:
    """Set the simulated CPU usage of every current pod of the Deployment."""
    cluster.kubectl(
        "annotate",
        "pods",
        f"--namespace={namespace}",
        f"--selector=app={APP}",
        f"{KWOK_USAGE_CPU_ANNOTATION}={value}",
        "--overwrite",
    )


@pytest.mark.timeout(600)
def test_hpa_scales_a_deployment_up_and_down_on_simulated_cpu(
    metrics_server: ControlPlane,
    namespace: str,
    node_pool: Callable[[int], tuple[str, list[str]]],
) -> None:
    cluster = metrics_server
    pool, _nodes = node_pool(2)
    apps = kubernetes.client.AppsV1Api(cluster.api_client)
    autoscaling = kubernetes.client.AutoscalingV2Api(cluster.api_client)
    manifests = {
        "kind": "List",
        "apiVersion": "v1",
        "items": [cpu_burner(IDLE_CPU, pool), cpu_hpa()],
    }
    cluster.kubectl(
        "create", f"--namespace={namespace}", "-f", "-", input_text=json.dumps(manifests)
    )

    def hpa_status() -> Any:
        return autoscaling.read_namespaced_horizontal_pod_autoscaler_status(APP, namespace).status

    def spec_replicas() -> int | None:
        spec = apps.read_namespaced_deployment_scale(APP, namespace).spec
        return spec.replicas if spec else None

    def ready_replicas() -> int | None:
        status = apps.read_namespaced_deployment_status(APP, namespace).status
        return status.ready_replicas if status else None

    def observed_utilization() -> int | None:
        for metric in hpa_status().current_metrics or []:
            if metric.type == "Resource" and metric.resource.name == "cpu":
                value = metric.resource.current.average_utilization
                return None if value is None else int(value)
        return None

    # 1. Idle: metrics flow end to end and the HPA holds at the minimum.
    def utilization_reported() -> int | None:
        # 0 % means metrics-server has not seen two scrapes of the pod yet.
        value = observed_utilization()
        return value if value else None

    idle = cluster.wait_until(
        utilization_reported,
        timeout=120,
        interval=2,
        description="the HPA reading CPU utilization from metrics.k8s.io",
    )
    assert idle < TARGET_UTILIZATION, f"idle utilization {idle}% should be below the target"
    assert spec_replicas() == MIN_REPLICAS

    # 2. Busy: utilization far above the target scales up to the maximum.
    set_simulated_cpu(cluster, namespace, BUSY_CPU)
    cluster.wait_until(
        lambda: spec_replicas() == MAX_REPLICAS,
        timeout=150,
        interval=2,
        description=f"the HPA scaling {APP} up to {MAX_REPLICAS} replicas",
    )
    busy = observed_utilization()
    assert busy is not None
    assert busy > TARGET_UTILIZATION, f"scaled up while utilization read {busy}%"
    assert hpa_status().desired_replicas == MAX_REPLICAS
    cluster.wait_until(
        lambda: ready_replicas() == MAX_REPLICAS,
        timeout=90,
        interval=2,
        description=f"{MAX_REPLICAS} ready replicas of {APP}",
    )

    # 3. Quiet: every replica, old and new, drops well below the target.
    set_simulated_cpu(cluster, namespace, QUIET_CPU)
    cluster.wait_until(
        lambda: spec_replicas() == MIN_REPLICAS,
        timeout=180,
        interval=2,
        description=f"the HPA scaling {APP} back down to {MIN_REPLICAS} replica",
    )
    quiet = observed_utilization()
    assert quiet is not None
    assert quiet < TARGET_UTILIZATION, f"scaled down while utilization read {quiet}%"
    assert hpa_status().desired_replicas == MIN_REPLICAS

"""HorizontalPodAutoscaler parsing: the fields the recommendation and HPA analyzers read."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kubepulse.model import HorizontalPodAutoscaler, ObjectError, ScalingPolicy


def _hpa(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 10,
            **spec,
        },
        "status": {"currentReplicas": 3, "desiredReplicas": 4},
    }


def test_full_hpa() -> None:
    hpa = HorizontalPodAutoscaler.from_api(
        _hpa(
            minReplicas=2,
            metrics=[
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                },
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "latency-p95-1m", "selector": {"matchLabels": {}}},
                        "target": {"type": "AverageValue", "averageValue": "250m"},
                    },
                },
                {
                    "type": "External",
                    "external": {
                        "metric": {"name": "queue_depth"},
                        "target": {"type": "Value", "value": "30"},
                    },
                },
            ],
            behavior={
                "scaleDown": {
                    "stabilizationWindowSeconds": 60,
                    "selectPolicy": "Min",
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}],
                }
            },
        )
    )
    assert (hpa.namespace, hpa.name, hpa.target_kind, hpa.target_name) == (
        "shop",
        "web",
        "Deployment",
        "web",
    )
    assert (hpa.min_replicas, hpa.max_replicas) == (2, 10)
    assert (hpa.current_replicas, hpa.desired_replicas) == (3, 4)
    cpu, latency, queue = hpa.metrics
    assert (cpu.source, cpu.name, cpu.target.average_utilization) == ("Resource", "cpu", 70)
    assert latency.target.average_value == Decimal("0.25")
    assert latency.selector == {"matchLabels": {}}
    assert (queue.source, queue.target.value) == ("External", Decimal(30))
    assert hpa.scale_up is None
    assert hpa.scale_down is not None
    assert hpa.scale_down.stabilization_window_seconds == 60
    assert hpa.scale_down.policies == (ScalingPolicy("Pods", 1, 30),)
    assert hpa.scales("Deployment", "web")
    assert not hpa.scales("StatefulSet", "web")


def test_defaults() -> None:
    hpa = HorizontalPodAutoscaler.from_api(_hpa())
    assert hpa.min_replicas == 1
    assert hpa.metrics == ()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"apiVersion": "autoscaling/v1"}, "read HPAs from /apis/autoscaling/v2"),
        ({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "w"}}}, "maxReplicas"),
        (
            {
                "spec": {
                    "scaleTargetRef": {"kind": "Deployment", "name": "w"},
                    "maxReplicas": 3,
                    "metrics": [{"type": "Bogus"}],
                }
            },
            "expected one of Resource",
        ),
    ],
)
def test_bad_objects_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ObjectError, match=message):
        HorizontalPodAutoscaler.from_api({**_hpa(), **change})

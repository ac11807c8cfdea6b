"""HPA metrics and the HPA replay: recorded objects and hand-made series in, results out.

The pods are the recorded ``default/web-6d4cf56db6-7xk9z`` (Deployment ``web``, one
``nginx`` container requesting 100m CPU) and renamed copies; HPAs are ``autoscaling/v2``
objects as the API returns them, parsed by ``HorizontalPodAutoscaler.from_api``. The
controller functions are checked one table row per case of the controller's code
(replica_calculator.go, horizontal.go), with the arithmetic in the comment. Nothing is
mocked.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from kubepulse.analysis.hpa import (
    DecisionReason,
    EventDirection,
    HpaController,
    HpaMetricsReport,
    HpaSource,
    HpaSpec,
    MetricType,
    ScalingBehavior,
    SelectPolicy,
    Tolerances,
    generate_hpa_metrics,
    hpa_spec_from_model,
    per_pod_total_replicas,
    plain_metric_replicas,
    resource_replicas,
    usage_ratio_replicas,
)
from kubepulse.analysis.inputs import ClusterSnapshot, ContainerRef, TimeSeries, UsageHistory
from kubepulse.analysis.serialize import to_json
from kubepulse.errors import KubepulseValueError, UnknownObjectError
from kubepulse.model import HorizontalPodAutoscaler, HpaMetric, MetricTarget, Pod, ScalingPolicy

OBJECTS = Path(__file__).parents[2] / "fixtures" / "objects"
T0 = 1_794_000_000_000  # 2026-11-06, after the recorded pods' creation (2026-11-01)
STEP_MS = 15_000
POD_A = "web-6d4cf56db6-7xk9z"
POD_B = "web-6d4cf56db6-b2c4d"
POD_C = "web-6d4cf56db6-q8wrt"


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((OBJECTS / name).read_text())
    return data


def web_pod(name: str, *, deployment: str = "web", template_hash: str = "6d4cf56db6") -> Pod:
    """The recorded web pod, renamed (and moved to another Deployment when asked)."""
    raw = copy.deepcopy(recorded("pod-replicaset.json"))
    raw["metadata"]["name"] = name
    raw["metadata"]["uid"] = f"uid-{name}"
    raw["metadata"]["labels"]["pod-template-hash"] = template_hash
    raw["metadata"]["ownerReferences"][0]["name"] = f"{deployment}-{template_hash}"
    return Pod.from_api(raw)


def hpa_object(
    *,
    name: str = "web",
    target: str = "web",
    min_replicas: int | None = None,
    max_replicas: int = 10,
    metrics: Sequence[Mapping[str, Any]] = (),
    behavior: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "maxReplicas": max_replicas,
        "metrics": list(metrics),
    }
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    if behavior is not None:
        spec["behavior"] = dict(behavior)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
        "status": {},
    }


def cpu_history(usage: Mapping[str, Callable[[int], float]], *, steps: int = 40) -> UsageHistory:
    """Samples every 15 s at ``T0 + 15 s * k``, ``k = 0..steps``, from ``usage[pod](k)``."""
    cpu = {
        ContainerRef("default", pod, "nginx"): TimeSeries.of(
            (T0 + STEP_MS * k, per_pod(k)) for k in range(steps + 1)
        )
        for pod, per_pod in usage.items()
    }
    return UsageHistory(start_ms=T0, end_ms=T0 + STEP_MS * steps, cpu_cores=cpu)


def snapshot(*pods: Pod) -> ClusterSnapshot:
    return ClusterSnapshot(taken_at_ms=T0 + 40 * STEP_MS, pods=pods)


def events_of(report_replay: Any) -> list[tuple[int, int, int, DecisionReason]]:
    """Events as ``(seconds after T0, from, to, reason)``."""
    return [
        ((event.timestamp_ms - T0) // 1000, event.from_replicas, event.to_replicas, event.reason)
        for event in report_replay.events
    ]


# ---------------------------------------------------------------------------- replica_calculator.go

REQUESTS_1000 = {"a": 1000, "b": 1000, "c": 1000}


@pytest.mark.parametrize(
    ("current", "target", "metrics", "missing", "expected"),
    [
        # 3 x 900m of 1000m: 2700 * 100 // 3000 = 90 %, 90 / 50 = 1.8, ceil(1.8 * 3) = 6.
        pytest.param(3, 50, {"a": 900, "b": 900, "c": 900}, (), (6, 90), id="scale-up"),
        # 540m each: 54 %, 54 / 50 = 1.08, within 1 +- 0.1: keep 3.
        pytest.param(3, 50, {"a": 540, "b": 540, "c": 540}, (), (3, 54), id="within-tolerance"),
        # Missing pod on a scale-down counts as max(100, 50) = 100 % of its request:
        # first 400 / 2000 = 20 % (ratio 0.4); then (400 + 1000) * 100 // 3000 = 46 %,
        # 46 / 50 = 0.92: within tolerance, keep 3.
        pytest.param(3, 50, {"a": 200, "b": 200}, ("c",), (3, 20), id="missing-down-within"),
        # 200 / 2000 = 10 % of target 80 (0.125); with c at 100 %: 1200 * 100 // 3000 = 40 %,
        # 40 / 80 = 0.5, ceil(0.5 * 3) = 2.
        pytest.param(3, 80, {"a": 100, "b": 100}, ("c",), (2, 10), id="missing-down"),
        # Scale-up: 2000 / 2000 = 100 % (ratio 2); c counts as 0: 2000 * 100 // 3000 = 66 %,
        # 66 / 50 = 1.32, ceil(1.32 * 3) = ceil(3.96) = 4.
        pytest.param(3, 50, {"a": 1000, "b": 1000}, ("c",), (4, 100), id="missing-up"),
        # 600 / 1000 = 60 % (ratio 1.2); b as 0: 600 * 100 // 2000 = 30 %, ratio 0.6: the
        # missing pod flips the direction, so nothing changes.
        pytest.param(2, 50, {"a": 600}, ("b",), (2, 60), id="missing-flips-direction"),
    ],
)
def test_resource_replicas(
    current: int,
    target: int,
    metrics: dict[str, int],
    missing: tuple[str, ...],
    expected: tuple[int, int],
) -> None:
    assert resource_replicas(current, target, metrics, REQUESTS_1000, missing) == expected


def test_resource_replicas_fails_without_metrics_or_requests() -> None:
    assert resource_replicas(2, 50, {}, REQUESTS_1000) is None
    # "missing request for cpu": a pod without a request makes the metric invalid.
    assert resource_replicas(2, 50, {"a": 500, "z": 500}, REQUESTS_1000) is None


def test_resource_replicas_truncates_utilization_to_whole_percent() -> None:
    # 3 x 366m of 1000m: 109800 // 3000 = 36 % (36.6 truncated). 36 / 33 = 1.09 is within
    # tolerance, while the unrounded 36.6 / 33 = 1.109 would scale to ceil(3.327) = 4.
    assert resource_replicas(3, 33, {"a": 366, "b": 366, "c": 366}, REQUESTS_1000) == (3, 36)


def test_tolerances_per_direction() -> None:
    # 1.15 is outside the default 10 % but inside a 20 % scale-up tolerance.
    metrics = {"a": 575, "b": 575}  # 1150 * 100 // 2000 = 57 %; 57 / 50 = 1.14
    assert resource_replicas(2, 50, metrics, REQUESTS_1000) == (3, 57)  # ceil(2.28)
    assert resource_replicas(2, 50, metrics, REQUESTS_1000, tolerance=Tolerances(0.1, 0.2)) == (
        2,
        57,
    )


@pytest.mark.parametrize(
    ("current", "target", "metrics", "missing", "expected"),
    [
        # (300 + 500) // 2 = 400 per pod, 400 / 200 = 2, ceil(2 * 2) = 4.
        pytest.param(2, 200, {"a": 300, "b": 500}, (), (4, 400), id="scale-up"),
        # 210 / 200 = 1.05: within.
        pytest.param(2, 200, {"a": 210, "b": 210}, (), (2, 210), id="within"),
        # 20 per pod (0.1); missing c counts as on target: (20 + 20 + 200) // 3 = 80,
        # 80 / 200 = 0.4, ceil(0.4 * 3) = ceil(1.2) = 2.
        pytest.param(3, 200, {"a": 20, "b": 20}, ("c",), (2, 20), id="missing-down"),
        # 600 per pod (3.0); missing c as 0: 1200 // 3 = 400, 2.0, ceil(6) = 6.
        pytest.param(3, 200, {"a": 600, "b": 600}, ("c",), (6, 600), id="missing-up"),
    ],
)
def test_plain_metric_replicas(
    current: int,
    target: int,
    metrics: dict[str, int],
    missing: tuple[str, ...],
    expected: tuple[int, int],
) -> None:
    assert plain_metric_replicas(current, target, metrics, missing) == expected


@pytest.mark.parametrize(
    ("current", "ratio", "ready", "expected"),
    [
        (4, 1.5, 4, 6),  # ceil(1.5 * 4)
        (4, 1.05, 4, 4),  # within tolerance
        (4, 0.5, 3, 2),  # ceil(0.5 * 3 ready pods) = ceil(1.5)
        (0, 2.3, 0, 3),  # from zero: ceil(2.3)
    ],
)
def test_usage_ratio_replicas(current: int, ratio: float, ready: int, expected: int) -> None:
    assert usage_ratio_replicas(current, ratio, ready) == expected


def test_per_pod_total_replicas() -> None:
    assert per_pod_total_replicas(3, 1000, 100) == 10  # 1000 / 300 = 3.3: ceil(1000 / 100)
    assert per_pod_total_replicas(10, 1050, 100) == 10  # 1050 / 1000 = 1.05: within
    with pytest.raises(KubepulseValueError, match="positive"):
        per_pod_total_replicas(3, 1000, 0)


# ---------------------------------------------------------------------------- horizontal.go


def behavior_spec(
    *,
    up: ScalingBehavior | None = None,
    down: ScalingBehavior | None = None,
    min_replicas: int = 1,
    max_replicas: int = 10,
) -> HpaSpec:
    default_up = ScalingBehavior(
        0, SelectPolicy.MAX, (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15))
    )
    default_down = ScalingBehavior(300, SelectPolicy.MAX, (ScalingPolicy("Percent", 100, 15),))
    return HpaSpec(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        metrics=(),
        scale_up=up or default_up,
        scale_down=down or default_down,
    )


def run(
    spec: HpaSpec, current: int, proposals: Sequence[int | None]
) -> list[tuple[int, int, DecisionReason]]:
    """Reconcile every 15 s from t = 0; ``(t seconds, replicas, reason)`` per step."""
    controller = HpaController(spec)
    out = []
    for index, proposal in enumerate(proposals):
        decision = controller.reconcile(index * STEP_MS, current, proposal)
        current = decision.replicas
        out.append((index * 15, current, decision.reason))
    return out


def test_scale_down_stabilization_takes_the_max_of_the_window() -> None:
    # Default scaleDown: 300 s window. t=0 recommends 5 (the current count), then 2.
    # Until t=285 the window (recommendations after now - 300 s) still holds t=0's 5; at
    # t=300 the cutoff is t=0 itself, which is not *after* it: the max is 2.
    steps = run(behavior_spec(), 5, [5] + [2] * 20)
    assert steps[0] == (0, 5, DecisionReason.WITHIN_TOLERANCE)
    assert steps[19] == (285, 5, DecisionReason.SCALE_DOWN_STABILIZED)
    assert steps[20] == (300, 2, DecisionReason.DESIRED_WITHIN_RANGE)


def test_scale_up_stabilization_takes_the_min_of_the_window() -> None:
    up = ScalingBehavior(
        60, SelectPolicy.MAX, (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15))
    )
    steps = run(behavior_spec(up=up), 3, [3, 8, 8, 8, 8, 8])
    # t=15..45: t=0's 3 is in the 60 s window: min(3, 8) = 3.
    assert steps[1] == (15, 3, DecisionReason.SCALE_UP_STABILIZED)
    # t=60: the window starts after t=0: min is 8; the policies allow max(3 + 4, 3 * 2) = 7.
    assert steps[4] == (60, 7, DecisionReason.SCALE_UP_LIMIT)
    # t=75: the +4 at t=60 is not after 75 - 15 = 60, so the period starts at 7: 8 fits.
    assert steps[5] == (75, 8, DecisionReason.DESIRED_WITHIN_RANGE)


def test_scale_up_pods_policy_over_its_period() -> None:
    up = ScalingBehavior(0, SelectPolicy.MAX, (ScalingPolicy("Pods", 2, 60),))
    steps = run(behavior_spec(up=up), 2, [10] * 13)
    # Every 60 s the period starts afresh: 2 -> 4 -> 6 -> 8 -> 10; in between the +2 of
    # the period is spent (start = current - 2, limit = start + 2 = current).
    changes = [(t, replicas) for t, replicas, _ in steps if t % 60 == 0]
    assert changes == [(0, 4), (60, 6), (120, 8), (180, 10)]
    assert steps[1] == (15, 4, DecisionReason.SCALE_UP_LIMIT)
    # At 10 the policy would allow 12 but maxReplicas is 10.
    assert steps[12] == (180, 10, DecisionReason.DESIRED_WITHIN_RANGE)


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        (SelectPolicy.MAX, 15),  # max(10 + 4, ceil(10 * 1.5)) = 15
        (SelectPolicy.MIN, 14),  # min(14, 15)
        (SelectPolicy.DISABLED, 10),  # no scaling up at all
    ],
)
def test_select_policy(select: SelectPolicy, expected: int) -> None:
    up = ScalingBehavior(
        0, select, (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 50, 15))
    )
    (step,) = run(behavior_spec(up=up, max_replicas=50), 10, [30])
    assert step[1] == expected
    assert step[2] is DecisionReason.SCALE_UP_LIMIT


def test_scale_down_percent_policy() -> None:
    down = ScalingBehavior(0, SelectPolicy.MAX, (ScalingPolicy("Percent", 50, 60),))
    steps = run(behavior_spec(down=down), 10, [1] * 9)
    # t=0: int(10 * 0.5) = 5. t=15..45: period start 5 + 5 = 10, limit 5 = current: hold.
    # t=60: the -5 at t=0 left the period: int(5 * 0.5) = 2. t=120: int(2 * 0.5) = 1.
    assert [(t, r) for t, r, _ in steps if t % 60 == 0] == [(0, 5), (60, 2), (120, 1)]
    assert steps[0][2] is DecisionReason.SCALE_DOWN_LIMIT
    assert steps[1] == (15, 5, DecisionReason.SCALE_DOWN_LIMIT)


def test_legacy_path_without_behavior() -> None:
    spec = HpaSpec(min_replicas=1, max_replicas=10, metrics=())
    # Scale-up limit max(2 * current, 4): 1 -> 4 -> 8 -> 10 (maxReplicas).
    assert run(spec, 1, [10, 10, 10]) == [
        (0, 4, DecisionReason.SCALE_UP_LIMIT),
        (15, 8, DecisionReason.SCALE_UP_LIMIT),
        (30, 10, DecisionReason.DESIRED_WITHIN_RANGE),
    ]
    # The legacy 5-minute window keeps a recommendation that is not *before* the
    # cutoff: t=0's 10 still counts at t=300 and is gone at t=315.
    steps = run(spec, 10, [10] + [2] * 21)
    assert steps[20] == (300, 10, DecisionReason.SCALE_DOWN_STABILIZED)
    assert steps[21] == (315, 2, DecisionReason.DESIRED_WITHIN_RANGE)


def test_invalid_metrics_hold_and_record_nothing() -> None:
    # All invalid: hold. Some invalid while the others would scale down: hold.
    assert HpaController.propose_for(5, [None, None]) is None
    assert HpaController.propose_for(5, [3, None]) is None
    assert HpaController.propose_for(5, [7, None]) == 7
    assert HpaController.propose_for(5, [7, 3]) == 7
    down = ScalingBehavior(30, SelectPolicy.MAX, (ScalingPolicy("Percent", 100, 15),))
    steps = run(behavior_spec(down=down), 6, [None, None, 2])
    # No recommendation was recorded while metrics were missing, so nothing holds 6 up.
    assert steps == [
        (0, 6, DecisionReason.INVALID_METRICS),
        (15, 6, DecisionReason.INVALID_METRICS),
        (30, 2, DecisionReason.DESIRED_WITHIN_RANGE),
    ]


def test_count_outside_min_max_is_corrected_first() -> None:
    spec = HpaSpec(min_replicas=2, max_replicas=4, metrics=())
    assert run(spec, 7, [7]) == [(0, 4, DecisionReason.TOO_MANY_REPLICAS)]
    assert run(spec, 1, [1]) == [(0, 2, DecisionReason.TOO_FEW_REPLICAS)]


# ---------------------------------------------------------------------------- spec defaults


def test_spec_from_hpa_applies_controller_defaults() -> None:
    raw = hpa_object(behavior={"scaleDown": {"stabilizationWindowSeconds": 60}}, max_replicas=5)
    spec = hpa_spec_from_model(HorizontalPodAutoscaler.from_api(raw))
    assert spec.min_replicas == 1
    assert spec.metrics == (
        HpaMetric("Resource", "cpu", MetricTarget("Utilization", average_utilization=80)),
    )
    assert spec.scale_up == ScalingBehavior(
        0, SelectPolicy.MAX, (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15))
    )
    assert spec.scale_down == ScalingBehavior(
        60, SelectPolicy.MAX, (ScalingPolicy("Percent", 100, 15),)
    )
    legacy = hpa_spec_from_model(HorizontalPodAutoscaler.from_api(hpa_object()))
    assert legacy.scale_up is None
    assert legacy.scale_down is None


def test_spec_rejects_what_the_api_rejects() -> None:
    with pytest.raises(KubepulseValueError, match="at least minReplicas"):
        HpaSpec(min_replicas=5, max_replicas=2, metrics=())
    bad = hpa_object(behavior={"scaleUp": {"selectPolicy": "Sometimes"}})
    with pytest.raises(KubepulseValueError, match="Max, Min or Disabled"):
        hpa_spec_from_model(HorizontalPodAutoscaler.from_api(bad))


# ---------------------------------------------------------------------------- generate_hpa_metrics


def step_drop(k: int) -> float:
    """0.1 cores up to step 20 (t = 300 s), then 0.02."""
    return 0.1 if k <= 20 else 0.02


def test_served_values_and_default_hpa_replay() -> None:
    report = generate_hpa_metrics(
        snapshot(web_pod(POD_A), web_pod(POD_B)),
        cpu_history({POD_A: step_drop, POD_B: step_drop}),
        namespace="default",
        deployment="web",
        aggregation="last",
    )
    assert report.hpa_source is HpaSource.DEFAULT
    assert report.pods == (POD_A, POD_B)
    # Steps every 15 s from T0 + 15 s to T0 + 600 s; "last" is the sample at the step.
    assert len(report.served) == 40
    first, last = report.served[0], report.served[-1]
    assert (first.value, first.total, first.pods_measured, first.pods_missing) == (0.1, 0.2, 2, 0)
    assert last.value == pytest.approx(0.02)
    assert report.latest_per_pod == {POD_A: 0.02, POD_B: 0.02}
    # Default HPA: 80 % CPU, min 1, max 10, legacy path. Step 1: 2 pods share 0.2 cores,
    # 100m each of 100m: 100 % / 80 % = 1.25, ceil(1.25 * 2) = 3. At 3 pods the 200m split
    # 67/67/66: 200 * 100 // 300 = 66 %, 0.825, ceil(2.475) = 3: stays.
    # From t=315 the load is 40m: 13 %, ceil(0.1625 * 3) = 1, but the 5-minute window
    # holds 3 until every recommendation of 3 (the last at t=300) is before the cutoff:
    # t=615, after the history, which is the predicted next event.
    assert events_of(report.replay) == [(15, 2, 3, DecisionReason.DESIRED_WITHIN_RANGE)]
    assert report.replay.steps[-1].reason is DecisionReason.SCALE_DOWN_STABILIZED
    assert report.replay.final_replicas == 3
    next_event = report.replay.next_event
    assert next_event is not None
    assert (next_event.timestamp_ms - T0, next_event.from_replicas, next_event.to_replicas) == (
        615_000,
        3,
        1,
    )
    assert next_event.direction is EventDirection.DOWN
    assert report.forecast_replay is None


def test_utilization_metric_is_percent_of_request() -> None:
    report = generate_hpa_metrics(
        snapshot(web_pod(POD_A), web_pod(POD_B)),
        cpu_history({POD_A: step_drop, POD_B: lambda k: 0.05}),
        namespace="default",
        deployment="web",
        metric_type="cpu-utilization",
        aggregation="last",
    )
    assert report.metric_type is MetricType.CPU_UTILIZATION
    assert report.unit == "percent"
    # Last step: (20m + 50m) / (100m + 100m) = 35 %; per pod 20 % and 50 %.
    assert report.served[-1].value == pytest.approx(35.0)
    assert report.latest_per_pod == pytest.approx({POD_A: 20.0, POD_B: 50.0})


def ramp(k: int) -> float:
    """60m + 2m per step: a steady climb."""
    return 0.06 + 0.002 * k


def test_forecasts_scale_up_earlier_than_measurements() -> None:
    report = generate_hpa_metrics(
        snapshot(web_pod(POD_A), web_pod(POD_B)),
        cpu_history({POD_A: ramp, POD_B: ramp}),
        namespace="default",
        deployment="web",
        aggregation="last",
        predict="1m",
    )
    # Measured: 2 pods at 60 + 2k m of 100m: (60 + 2k) % / 80 %; within tolerance up to
    # 88 % (k = 14); at k = 15, 90 %: 1.125, ceil(2.25) = 3.
    assert events_of(report.replay)[0] == (225, 2, 3, DecisionReason.DESIRED_WITHIN_RANGE)
    # On forecasts 1 m (4 steps) ahead of an exact line: (68 + 2k) %, over 88 % from
    # k = 11: 90 %, scale to 3 at t = 165 s, a minute earlier. Step 1 has one point, too
    # few for a line: the metric is missing and the controller holds.
    forecast = report.forecast_replay
    assert forecast is not None
    assert forecast.on_forecasts
    assert forecast.steps[0].reason is DecisionReason.INVALID_METRICS
    assert events_of(forecast)[0] == (165, 2, 3, DecisionReason.DESIRED_WITHIN_RANGE)
    # The served forecast of the per-pod value: 60m + 2m * (40 + 4) = 148m at the end.
    assert report.served[-1].predicted == pytest.approx(0.148)
    assert report.predict == "1m"


def test_missing_pod_is_missing_not_zero() -> None:
    # POD_C exists (in the snapshot) but never reported: missing at every step.
    report = generate_hpa_metrics(
        snapshot(web_pod(POD_A), web_pod(POD_B), web_pod(POD_C)),
        cpu_history({POD_A: lambda k: 0.02, POD_B: lambda k: 0.02}),
        namespace="default",
        deployment="web",
        aggregation="last",
    )
    assert {(item.pods_measured, item.pods_missing) for item in report.served} == {(2, 1)}
    assert report.latest_per_pod[POD_C] is None
    assert any("missing" in note for note in report.notes)
    # Load: 20m average x 3 pods = 60m. Step 1, 3 pods, ceil(3 / 3) = 1 missing: the two
    # measured carry 40m (20m each): 20 %; as a scale-down the missing one counts as
    # 100 %: 140 * 100 // 300 = 46 %, 0.575, ceil(1.725) = 2 (without the missing-pod
    # rule it would be ceil(0.25 * 3) = 1). At 2 pods: 30m measured, 30 %, with the
    # missing one at 100 %: 65 %, ceil(0.8125 * 2) = 2: stays.
    assert events_of(report.replay) == [(15, 3, 2, DecisionReason.DESIRED_WITHIN_RANGE)]
    assert report.replay.final_replicas == 2


def test_hpa_from_cluster_with_policies_and_unreplayed_metrics() -> None:
    hpa = hpa_object(
        min_replicas=2,
        max_replicas=5,
        metrics=[
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "AverageValue", "averageValue": "50m"},
                },
            },
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "http_requests_per_second"},
                    "target": {"type": "AverageValue", "averageValue": "10"},
                },
            },
        ],
        behavior={"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}},
    )
    other = hpa_object(name="api", target="api", max_replicas=3)
    report = generate_hpa_metrics(
        snapshot(web_pod(POD_A), web_pod(POD_B)),
        cpu_history({POD_A: lambda k: 0.1, POD_B: lambda k: 0.1}),
        namespace="default",
        deployment="web",
        autoscalers=[other, hpa],
    )
    assert report.hpa_source is HpaSource.HPA
    assert report.hpa.name == "web"
    assert report.unreplayed_metrics == ("Pods/http_requests_per_second",)
    # 200m over 2 pods: 100m / 50m = 2, ceil(4) = 4, but +1 pod per 60 s: 3 at t = 15.
    # At 3 pods: 67 + 67 + 66 = 200, 200 // 3 = 66m, 1.32, ceil(3.96) = 4; the +1 of t=15
    # leaves the period at t = 75: 4. At 4 pods 50m each: on target.
    assert events_of(report.replay) == [
        (15, 2, 3, DecisionReason.SCALE_UP_LIMIT),
        (75, 3, 4, DecisionReason.DESIRED_WITHIN_RANGE),
    ]
    assert report.replay.next_event is None  # steady at 4 for the next 30 minutes
    reading = report.replay.steps[-1].readings[0]
    assert (reading.metric, reading.current, reading.target, reading.proposal) == (
        "Resource/cpu",
        0.05,
        0.05,
        4,
    )


def test_pods_gone_by_the_snapshot_are_matched_by_name() -> None:
    gone = "web-7f8b9c6d5f-x2x4z"  # an older ReplicaSet's pod, only in history
    stranger = "webby-6d4cf56db6-abcde"  # another Deployment: not matched
    report = generate_hpa_metrics(
        snapshot(web_pod(POD_A)),
        cpu_history(
            {POD_A: lambda k: 0.05, gone: lambda k: 0.05, stranger: lambda k: 1.0}, steps=4
        ),
        namespace="default",
        deployment="web",
        aggregation="last",
    )
    assert report.pods == (POD_A, gone)
    assert report.served[-1].value == pytest.approx(0.05)


def test_report_serialises_to_json() -> None:
    report = generate_hpa_metrics(
        snapshot(web_pod(POD_A), web_pod(POD_B)),
        cpu_history({POD_A: ramp, POD_B: ramp}, steps=8),
        namespace="default",
        deployment="web",
        predict="30s",
        forecast_model="holt",
    )
    data = to_json(report, camel_case=True)
    assert data["hpaSource"] == "default"
    assert data["metricType"] == "cpu"
    assert data["replay"]["steps"][0]["reason"] in {reason.value for reason in DecisionReason}
    assert isinstance(report, HpaMetricsReport)
    json.dumps(data)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"namespace": "nowhere"}, UnknownObjectError, "known namespaces: default"),
        ({"deployment": "api"}, UnknownObjectError, "deployments with pods there: web"),
        ({"metric_type": "gpu"}, KubepulseValueError, "cpu, memory, cpu-utilization"),
        ({"aggregation": "median"}, KubepulseValueError, "p50"),
        ({"window": "10s"}, KubepulseValueError, "from 30s to 1d"),
        ({"predict": "soon"}, KubepulseValueError, "invalid duration"),
        ({"forecast_model": "arima"}, KubepulseValueError, "linear, holt"),
    ],
)
def test_bad_input_says_what_is_valid(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments: dict[str, Any] = {"namespace": "default", "deployment": "web", **kwargs}
    with pytest.raises(error, match=message):
        generate_hpa_metrics(
            snapshot(web_pod(POD_A)), cpu_history({POD_A: lambda k: 0.1}, steps=4), **arguments
        )


def test_evicted_pod_is_not_missing() -> None:
    # An evicted pod stays as a Failed object; after its last sample it no longer exists.
    evicted_raw = copy.deepcopy(recorded("pod-replicaset.json"))
    evicted_raw["metadata"]["name"] = POD_C
    evicted_raw["status"]["phase"] = "Failed"
    evicted_raw["status"]["reason"] = "Evicted"
    report = generate_hpa_metrics(
        snapshot(web_pod(POD_A), Pod.from_api(evicted_raw)),
        cpu_history({POD_A: lambda k: 0.05}, steps=4),
        namespace="default",
        deployment="web",
    )
    assert report.pods == (POD_A, POD_C)
    assert {item.pods_missing for item in report.served} == {0}
    assert report.replay.steps[0].observed_replicas == 1


def test_container_resource_memory_utilization_is_replayed() -> None:
    hpa = hpa_object(
        max_replicas=4,
        metrics=[
            {
                "type": "ContainerResource",
                "containerResource": {
                    "name": "memory",
                    "container": "nginx",
                    "target": {"type": "Utilization", "averageUtilization": 50},
                },
            }
        ],
    )
    mi = 2**20
    memory = {
        ContainerRef("default", pod, "nginx"): TimeSeries.of(
            (T0 + STEP_MS * k, 96.0 * mi) for k in range(5)
        )
        for pod in (POD_A, POD_B)
    }
    report = generate_hpa_metrics(
        snapshot(web_pod(POD_A), web_pod(POD_B)),
        UsageHistory(start_ms=T0, end_ms=T0 + 4 * STEP_MS, memory_working_set_bytes=memory),
        namespace="default",
        deployment="web",
        metric_type="memory-utilization",
        autoscalers=[hpa],
    )
    # 96Mi of a 128Mi request: 75 %. Served per pod and overall.
    assert report.served[-1].value == pytest.approx(75.0)
    # 75 / 50 = 1.5, ceil(1.5 * 2) = 3 (legacy limit max(4, 4) = 4 allows it); at 3 pods
    # the load 192Mi is 64Mi each, 50 %: on target.
    assert events_of(report.replay) == [(15, 2, 3, DecisionReason.DESIRED_WITHIN_RANGE)]
    assert report.replay.steps[-1].readings[0].metric == "ContainerResource/nginx/memory"
    assert report.replay.steps[-1].readings[0].current == 50.0


def test_only_unreplayable_metrics_hold_every_step() -> None:
    hpa = hpa_object(
        metrics=[
            {
                "type": "External",
                "external": {
                    "metric": {"name": "queue_depth"},
                    "target": {"type": "Value", "value": "30"},
                },
            }
        ]
    )
    report = generate_hpa_metrics(
        snapshot(web_pod(POD_A)),
        cpu_history({POD_A: lambda k: 0.5}, steps=4),
        namespace="default",
        deployment="web",
        autoscalers=[hpa, hpa_object(name="web-2")],
    )
    assert report.unreplayed_metrics == ("External/queue_depth",)
    assert {step.reason for step in report.replay.steps} == {DecisionReason.INVALID_METRICS}
    assert report.replay.events == ()
    assert any("AmbiguousSelector" in note for note in report.notes)


def test_history_shorter_than_a_sync_period() -> None:
    report = generate_hpa_metrics(
        snapshot(web_pod(POD_A)),
        UsageHistory(start_ms=T0, end_ms=T0 + 10_000),
        namespace="default",
        deployment="web",
    )
    assert report.served == ()
    assert report.replay.steps == ()
    assert report.replay.final_replicas is None
    assert report.replay.next_event is None


def test_behavior_tolerance_is_used_per_direction() -> None:
    raw = hpa_object(behavior={"scaleUp": {"tolerance": "0.2"}})
    spec = hpa_spec_from_model(HorizontalPodAutoscaler.from_api(raw))
    assert spec.scale_up is not None
    assert spec.scale_down is not None
    assert (spec.scale_up.tolerance, spec.scale_down.tolerance) == (0.2, 0.1)


def test_request_counts_sidecars_but_not_init_containers() -> None:
    # calculateRequests: app 500m + metrics 50m + the sidecars (restartable init
    # containers) log-shipper 100m and mesh-proxy 250m = 900m; the one-shot init
    # container migrate (1 CPU) is not counted.
    pod = Pod.from_api(recorded("pod-burstable-sidecars.json"))
    usage = {"app": 0.3, "metrics": 0.03, "log-shipper": 0.06, "mesh-proxy": 0.06}
    cpu = {
        ContainerRef("shop", pod.name, container): TimeSeries.of(
            (T0 + STEP_MS * k, cores) for k in range(5)
        )
        for container, cores in usage.items()
    }
    report = generate_hpa_metrics(
        ClusterSnapshot(taken_at_ms=T0 + 4 * STEP_MS, pods=(pod,)),
        UsageHistory(start_ms=T0, end_ms=T0 + 4 * STEP_MS, cpu_cores=cpu),
        namespace="shop",
        deployment="storefront",
        metric_type="cpu-utilization",
    )
    # The pod uses 0.3 + 0.03 + 0.06 + 0.06 = 0.45 cores of 0.9: 50 %.
    assert report.served[-1].value == pytest.approx(50.0)
    assert report.latest_per_pod == pytest.approx({pod.name: 50.0})


def test_pending_pod_is_not_missing() -> None:
    # groupPods: a Pending pod is unready, not missing: it does not count against a
    # scale-down as a missing pod would.
    pending_raw = copy.deepcopy(recorded("pod-replicaset.json"))
    pending_raw["metadata"]["name"] = POD_B
    pending_raw["status"] = {"phase": "Pending"}
    report = generate_hpa_metrics(
        snapshot(web_pod(POD_A), Pod.from_api(pending_raw)),
        cpu_history({POD_A: lambda k: 0.05}, steps=4),
        namespace="default",
        deployment="web",
    )
    assert {item.pods_missing for item in report.served} == {0}

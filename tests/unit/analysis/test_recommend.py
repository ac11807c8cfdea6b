"""The resource recommender: recorded objects and hand-made series in, hand-computed figures out.

Pods and nodes are the recorded API objects of ``tests/fixtures/objects`` (the ``web``
Deployment's nginx pod, the OOM-killed ``cart`` pod, the ``storefront`` pod with native
sidecars, node ``worker-1``), parsed with ``from_api``; variants are edited copies of the
recorded JSON. HPAs are ``autoscaling/v2`` objects written here as the API returns them.
Histories are built by hand so that every expected figure is worked out in the comment
next to it. Nothing is mocked.

VPA's exponential histogram (5 % growth) puts a value ``v`` in bucket
``floor(log(v * 0.05 / first + 1) / log(1.05))`` and a percentile is the *end* of its
bucket, ``first * (1.05^(i+1) - 1) / 0.05``; ``first`` is 0.001 core for CPU and 1e7 bytes
for memory. The bucket ends used below, worked out once:

- 0.1 core:  log(0.1*50 + 1)/log 1.05 = log 6/0.04879 = 36.7 -> bucket 36,
  end 0.02 * (1.05^37 - 1) = 0.02 * 5.081407 = 0.1016281
- 0.2 core:  log 11/0.04879 = 49.1 -> bucket 49, end 0.02 * (1.05^50 - 1) = 0.2093480
- 0.4 core:  log 21/0.04879 = 62.4 -> bucket 62, end 0.02 * (1.05^63 - 1) = 0.4124699
- 0.5 core:  log 26/0.04879 = 66.8 -> bucket 66, end 0.02 * (1.05^67 - 1) = 0.5056698
- 300 MiB = 314572800 B: log(314572800*0.05/1e7 + 1)/0.04879 = 19.9 -> bucket 19,
  end 2e8 * (1.05^20 - 1) = 2e8 * 1.6532977 = 330659541
- 400 MiB = 419430400 B: log(3.097152)/0.04879 = 23.2 -> bucket 23,
  end 2e8 * (1.05^24 - 1) = 2e8 * 2.2250999 = 445019989
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from kubepulse.analysis.inputs import ClusterSnapshot, ContainerRef, TimeSeries, UsageHistory
from kubepulse.analysis.recommend import (
    CPU_HISTOGRAM,
    Change,
    DecayingHistogram,
    RecommendationReport,
    Target,
    WorkloadRecommendation,
    oom_bump,
    recommend_resources,
    vpa_estimate,
)
from kubepulse.analysis.serialize import to_json
from kubepulse.errors import KubepulseValueError, UnknownObjectError
from kubepulse.model import Node, Pod, parse_rfc3339_ms

OBJECTS = Path(__file__).parents[2] / "fixtures" / "objects"
MINUTE_MS = 60_000
DAY_MS = 86_400_000
MI = 2**20
# The end of every history (and the snapshot's instant) unless said otherwise.
END = parse_rfc3339_ms("2026-11-05T00:00:00Z")

# Bucket ends from the module docstring.
CPU_END_0_2 = 0.2093480
CPU_END_0_4 = 0.4124699
CPU_END_0_5 = 0.5056698
MEMORY_END_300MI = 330_659_541
MEMORY_END_400MI = 445_019_989


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((OBJECTS / name).read_text())
    return data


def web_pod(name: str = "web-6d4cf56db6-7xk9z", **edits: Any) -> Pod:
    """The recorded nginx pod of Deployment ``web`` (cpu 100m, memory 128Mi/128Mi),
    renamed, with optional edits: ``cpu_request``, ``node``, ``started_at``."""
    raw = copy.deepcopy(recorded("pod-replicaset.json"))
    raw["metadata"]["name"] = name
    resources = raw["spec"]["containers"][0]["resources"]
    if "cpu_request" in edits:
        resources["requests"]["cpu"] = edits["cpu_request"]
    if "node" in edits:
        raw["spec"]["nodeName"] = edits["node"]
    if "started_at" in edits:
        raw["status"]["containerStatuses"][0]["state"] = {
            "running": {"startedAt": edits["started_at"]}
        }
    return Pod.from_api(raw)


def nginx(pod: Pod) -> ContainerRef:
    return ContainerRef(pod.namespace, pod.name, "nginx")


def history(
    cpu: Mapping[ContainerRef, Sequence[tuple[int, float]]] | None = None,
    memory: Mapping[ContainerRef, Sequence[tuple[int, float]]] | None = None,
    oom: Mapping[ContainerRef, tuple[int, ...]] | None = None,
    *,
    start: int = END - 2 * DAY_MS,
    end: int = END,
) -> UsageHistory:
    return UsageHistory(
        start_ms=start,
        end_ms=end,
        cpu_cores={ref: TimeSeries.of(points) for ref, points in (cpu or {}).items()},
        memory_working_set_bytes={
            ref: TimeSeries.of(points) for ref, points in (memory or {}).items()
        },
        oom_kill_ms=dict(oom or {}),
    )


def hpa(
    target: str = "web",
    *,
    metrics: list[dict[str, Any]] | None = None,
    max_replicas: int = 10,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "minReplicas": 1,
        "maxReplicas": max_replicas,
    }
    if metrics is not None:
        spec["metrics"] = metrics
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": target, "namespace": "default"},
        "spec": spec,
    }


def cpu_utilisation(percent: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": percent},
        },
    }


def only_workload(report: RecommendationReport) -> WorkloadRecommendation:
    assert len(report.workloads) == 1
    return report.workloads[0]


# ---------------------------------------------------------------------------- the VPA engine


# Twelve CPU samples of 0.1 core a day before the end, ten of 0.5 core at the end, one
# a minute; the container's request is 100m, so each weighs max(0.1, 0.1) = 0.1 before
# decay. Memory: a 400 MiB peak a day ago, a 300 MiB peak now.
WORKED_CPU = [(END - DAY_MS - (11 - k) * MINUTE_MS, 0.1) for k in range(12)] + [
    (END - (9 - k) * MINUTE_MS, 0.5) for k in range(10)
]
WORKED_MEMORY = [
    (END - DAY_MS - 5 * MINUTE_MS, 400 * MI),
    (END - DAY_MS - MINUTE_MS, 250 * MI),
    (END - 5 * MINUTE_MS, 300 * MI),
    (END - MINUTE_MS, 250 * MI),
]


def test_decaying_histogram_halves_weight_every_24_hours() -> None:
    # 0.1 core a day old weighs 2^-1 = 0.5, 0.5 core now weighs 1: total 1.5.
    histogram = DecayingHistogram(CPU_HISTOGRAM, END, DAY_MS)
    histogram.add(0.1, 1.0, END - DAY_MS)
    histogram.add(0.5, 1.0, END)
    # p30: threshold 0.45 <= 0.5 reached in 0.1's bucket -> its end 0.1016281.
    assert histogram.percentile(0.3) == pytest.approx(0.1016281, abs=1e-7)
    # p50: threshold 0.75 > 0.5, reached in 0.5's bucket -> 0.5056698. Without decay
    # (weights 1 and 1, threshold 1.0) it would be 0.1's bucket: the decay is what moves it.
    assert histogram.percentile(0.5) == pytest.approx(CPU_END_0_5, abs=1e-7)
    assert DecayingHistogram(CPU_HISTOGRAM, END, DAY_MS).percentile(0.9) == 0.0


def test_oom_bump_is_vpas_record_oom() -> None:
    # max(used + 100 MiB, used * 1.2): the fixed bump wins below 500 MiB, the ratio above.
    assert oom_bump(300 * MI) == 400 * MI  # max(400 MiB, 360 MiB)
    assert oom_bump(1000 * MI) == 1200 * MI  # max(1100 MiB, 1200 MiB)


def test_worked_vpa_example_end_to_end() -> None:
    """The VPA recommender's numbers for one container, worked out by hand.

    CPU: the old twelve weigh 12 * 0.1 * ~0.4985 = ~0.598, the new ten 10 * 0.1 * ~0.998
    = ~0.998 (ages of 0-11 minutes decay by 2^(-k/1440)); total ~1.597.
    - target p90: threshold ~1.437 is reached in 0.5's bucket -> 0.5056698 * 1.15 =
      0.5815203 -> rounded up to whole millicores: 582m.
    - confidence c = min(days spanned, samples / 1440) = min(1 day + 11 min, 22 / 1440)
      = 0.0152778; reported c / (1 + c) = 0.0152778 / 1.0152778 = 0.0150479.
    - lower bound p50: threshold ~0.798 > ~0.598, so 0.5's bucket -- only because of the
      decay: undecayed, the old 1.2 would pass the threshold 1.1 in 0.1's bucket.
      0.5815203 * (1 + 0.001 / 0.0152778)^-2 = 0.5815203 / 1.1351934 = 0.5122654.
    - upper bound p95: 0.5815203 * (1 + 1 / 0.0152778) = 0.5815203 * 66.454545 = 38.64467.
    Memory, one peak per 24 h interval: 400 MiB (a day ago, weight 2^-(1+5/1440) =
    ~0.4988) and 300 MiB (now, ~0.9976); total ~1.496.
    - target p90: threshold ~1.347 > 0.9976 -> 400 MiB's bucket: 445019989 * 1.15 =
      511772987 B -> rounded up to MiB: ceil(488.06) = 489 MiB = 512753664 B.
    - limit: max(request 489 MiB, highest working set 400 MiB * 1.15 = 460 MiB) = 489 MiB.
    - confidence: min(1 day + 4 min, 4 / 1440) = 0.0027778 -> 0.0027778 / 1.0027778
      = 0.0027701.
    """
    pod = web_pod()
    report = recommend_resources(
        ClusterSnapshot(END, pods=(pod,)),
        history(cpu={nginx(pod): WORKED_CPU}, memory={nginx(pod): WORKED_MEMORY}),
    )
    workload = only_workload(report)
    assert (workload.workload.kind, workload.workload.name) == ("Deployment", "web")
    (container,) = workload.containers
    cpu = container.cpu_request
    assert (cpu.current, cpu.recommended, cpu.change) == (0.1, 0.582, Change.INCREASE)
    assert cpu.lower_bound == pytest.approx(0.5122654, abs=1e-6)
    assert cpu.upper_bound == pytest.approx(38.64467, abs=1e-4)
    assert cpu.confidence == pytest.approx(0.0150479, abs=1e-6)
    memory = container.memory_request
    assert (memory.current, memory.recommended) == (128 * MI, 489 * MI)
    assert memory.confidence == pytest.approx(0.0027701, abs=1e-6)
    assert container.memory_limit.recommended == 489 * MI
    # No CPU limit today: none is recommended, and nothing is patched for it.
    assert (container.cpu_limit.recommended, container.cpu_limit.change) == (None, Change.UNCHANGED)
    assert container.hpa_aware is False
    assert workload.patch is not None
    assert to_json(workload.patch) == {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "resources": {
                                "requests": {"cpu": "582m", "memory": "489Mi"},
                                "limits": {"memory": "489Mi"},
                            },
                        }
                    ]
                }
            }
        }
    }
    assert workload.kubectl_patch == (
        "kubectl patch deployment web -n default --type=strategic -p "
        '\'{"spec":{"template":{"spec":{"containers":[{"name":"nginx",'
        '"resources":{"limits":{"memory":"489Mi"},"requests":{"cpu":"582m",'
        '"memory":"489Mi"}}}]}}}}\''
    )
    # Totals: one pod, 100m -> 582m and 128 MiB -> 489 MiB.
    assert workload.cpu_request_change_cores == pytest.approx(0.482)
    assert report.memory_requests_recommended_bytes == 489 * MI
    json.dumps(to_json(report))  # serialisable throughout


def test_vpa_estimate_matches_the_report() -> None:
    # The same CPU samples straight into the engine, request 0.1 core each.
    estimate = vpa_estimate(
        resource="cpu", samples=[(t, v, 0.1) for t, v in WORKED_CPU], reference_ms=END
    )
    assert estimate is not None
    assert estimate.target == pytest.approx(0.5815203, abs=1e-6)  # 0.5056698 * 1.15
    assert estimate.vpa_confidence == pytest.approx(22 / 1440)
    assert vpa_estimate(resource="cpu", samples=[], reference_ms=END) is None
    with pytest.raises(KubepulseValueError, match="'cpu' or 'memory'"):
        vpa_estimate(resource="disk", samples=[], reference_ms=END)


@pytest.mark.parametrize(
    ("target", "cpu", "memory"),
    [
        # balanced = VPA: p90 * 1.15 -> 0.5056698 * 1.15 = 0.58152 -> 582m; memory 489 MiB.
        ("balanced", 0.582, 489 * MI),
        # performance: p95 * 1.25; both still in the 0.5 / 400 MiB buckets:
        # 0.5056698 * 1.25 = 0.632087 -> 633m; 445019989 * 1.25 = 556274986 B -> 531 MiB.
        ("performance", 0.633, 531 * MI),
        # cost: p75 CPU * 1.05: threshold ~1.198 > ~0.598 -> 0.5 bucket: 0.530953 -> 531m;
        # p90 memory * 1.05 = 467270988 B -> ceil(445.62) = 446 MiB.
        ("cost", 0.531, 446 * MI),
    ],
)
def test_targets(target: str, cpu: float, memory: int) -> None:
    pod = web_pod()
    report = recommend_resources(
        ClusterSnapshot(END, pods=(pod,)),
        history(cpu={nginx(pod): WORKED_CPU}, memory={nginx(pod): WORKED_MEMORY}),
        target=target,
    )
    (container,) = only_workload(report).containers
    assert report.target is Target(target)
    assert container.cpu_request.recommended == cpu
    assert container.memory_request.recommended == memory


# ---------------------------------------------------------------------------- OOM kills


OOM_END = parse_rfc3339_ms("2026-11-01T11:00:00Z")
# cart's last run: started 10:39:52, OOM-killed 10:41:06 (recorded lastState).
OOM_KILL = parse_rfc3339_ms("2026-11-01T10:41:06Z")


@pytest.mark.parametrize(
    "history_kills",
    [
        pytest.param((), id="kill-from-recorded-termination-only"),
        pytest.param((OOM_KILL + 30_000,), id="history-instant-and-termination-are-one-kill"),
    ],
)
def test_oom_kill_bumps_memory(history_kills: tuple[int, ...]) -> None:
    """VPA's RecordOOM: used = max(request 128 MiB, the interval's peak so far 300 MiB);
    sample = max(300 + 100 MiB, 300 * 1.2 = 360 MiB) = 400 MiB, which becomes the only
    daily peak (it beats 300 MiB). p90 -> 400 MiB's bucket: 445019989 * 1.15 = 511772987
    -> 489 MiB. Limit: max(489 MiB, 300 MiB * 1.15 = 345 MiB, the bump 400 MiB) = 489 MiB.
    """
    pod = Pod.from_api(recorded("pod-oomkilled.json"))
    ref = ContainerRef("shop", pod.name, "cart")
    memory = [
        (parse_rfc3339_ms("2026-11-01T10:20:00Z"), 250 * MI),
        (parse_rfc3339_ms("2026-11-01T10:30:00Z"), 300 * MI),
    ]
    report = recommend_resources(
        ClusterSnapshot(OOM_END, pods=(pod,)),
        history(
            memory={ref: memory},
            oom={ref: history_kills} if history_kills else None,
            start=OOM_END - DAY_MS,
            end=OOM_END,
        ),
        namespace="shop",
    )
    workload = only_workload(report)
    (container,) = workload.containers
    assert container.oom_kills == 1
    assert container.memory_request.recommended == 489 * MI
    assert container.memory_limit.recommended == 489 * MI
    assert container.memory_limit.change is Change.INCREASE  # from 256 MiB
    assert "OOM bump" in container.memory_limit.basis
    # No CPU series at all: reported missing, never guessed.
    assert container.cpu_request.change is Change.UNKNOWN
    assert container.cpu_request.recommended is None
    assert [(m.container, m.figures) for m in report.missing] == [("cart", ("cpu",))]


# ---------------------------------------------------------------------------- HPA-aware


def hpa_pods() -> tuple[Pod, Pod]:
    return web_pod("web-6d4cf56db6-aaaaa"), web_pod("web-6d4cf56db6-bbbbb")


def steady_cpu(value: float) -> list[tuple[int, float]]:
    return [(END - k * MINUTE_MS, value) for k in range(60)]


@pytest.mark.parametrize(
    ("autoscalers", "expected_cpu", "hpa_aware"),
    [
        # No HPA: the VPA rule, per-replica p90 0.4124699 * 1.15 = 0.474340 -> 475m.
        # (Under an 80 % HPA that is 0.4 / 0.475 = 84 % utilisation: scale out, spiral.)
        pytest.param([], 0.475, False, id="no-hpa-vpa-rule"),
        # HPA at 80 %: 0.4124699 / 0.8 = 0.5155874 -> 516m (utilisation 0.4/0.516 = 78 %).
        pytest.param([hpa(metrics=[cpu_utilisation(80)])], 0.516, True, id="hpa-80"),
        # No metrics written: the API's default, 80 % CPU, same answer.
        pytest.param([hpa()], 0.516, True, id="hpa-default-metric"),
        # maxReplicas 1: the peak total (two pods * 0.4 = 0.8 core) must fit one replica
        # at 80 %: 0.8 / (0.8 * 1) = 1.0 core > 0.5155874 -> 1000m.
        pytest.param(
            [hpa(metrics=[cpu_utilisation(80)], max_replicas=1)], 1.0, True, id="max-replicas-floor"
        ),
        # An HPA on another Deployment changes nothing.
        pytest.param([hpa("api", metrics=[cpu_utilisation(50)])], 0.475, False, id="other-target"),
    ],
)
def test_hpa_aware_cpu(
    autoscalers: list[dict[str, Any]], expected_cpu: float, hpa_aware: bool
) -> None:
    pods = hpa_pods()
    report = recommend_resources(
        ClusterSnapshot(END, pods=pods),
        history(cpu={nginx(pod): steady_cpu(0.4) for pod in pods}),
        autoscalers=autoscalers,
    )
    workload = only_workload(report)
    (container,) = workload.containers
    assert container.cpu_request.recommended == expected_cpu
    assert container.hpa_aware is hpa_aware
    assert bool(workload.hpa) is hpa_aware
    if hpa_aware:
        (influence,) = workload.hpa
        assert (influence.hpa, influence.resource) == ("default/web", "cpu")
        assert influence.target_utilization_percent == 80
        assert influence.peak_total_usage == pytest.approx(0.8)
        assert "shrinking spiral" in influence.explanation
        assert "shrinking spiral" in container.cpu_request.basis


# ---------------------------------------------------------------------------- start-up


def test_startup_peaks_are_kept_out_of_the_request() -> None:
    """Started 60 minutes before the end; samples every 30 s. The first 5 minutes (10
    samples) run at 2.0 cores and 600 MiB, the other 110 at 0.2 core and 300 MiB.

    - steady CPU p90: 0.2's bucket end 0.2093480 * 1.15 = 0.2407502 -> 241m; mixed in,
      the 10 start-up samples (8 % of the weight) would have set the p95 upper bound.
    - steady memory p90: one daily peak 300 MiB -> 330659541 * 1.15 = 380258472 B ->
      ceil(362.64) = 363 MiB.
    - memory limit: max(363 MiB, highest working set 600 MiB * 1.15 = 690 MiB) = 690 MiB:
      the limit must hold the start-up peak, memory cannot be throttled.
    """
    start = END - 60 * MINUTE_MS
    pod = web_pod(started_at="2026-11-04T23:00:00Z")
    times = [start + k * 30_000 for k in range(120)]
    cpu = [(t, 2.0 if t < start + 5 * MINUTE_MS else 0.2) for t in times]
    memory = [(t, 600 * MI if t < start + 5 * MINUTE_MS else 300 * MI) for t in times]
    report = recommend_resources(
        ClusterSnapshot(END, pods=(pod,)),
        history(cpu={nginx(pod): cpu}, memory={nginx(pod): memory}),
    )
    (container,) = only_workload(report).containers
    assert container.startup.starts_observed == 1
    assert container.startup.cpu_peak_cores == 2.0
    assert container.startup.memory_peak_bytes == 600 * MI
    assert container.startup.confidence == 0.5  # 1 / (1 + 1)
    assert container.startup.steady_cpu_p90_cores == pytest.approx(CPU_END_0_2, abs=1e-7)
    assert container.cpu_request.recommended == 0.241
    assert container.cpu_request.upper_bound is not None
    assert container.memory_request.recommended == 363 * MI
    assert container.memory_limit.recommended == 690 * MI
    assert any("start-up CPU peak" in note for note in container.notes)


# ---------------------------------------------------------------------------- sidecars, patches


def test_sidecar_changes_go_to_init_containers_and_cpu_limits_keep_their_ratio() -> None:
    """storefront: app (cpu 500m, limit 1) at 0.2 core, mesh-proxy (native sidecar, cpu
    250m) at 0.5 core, one sample a minute for an hour.

    - app: 0.2093480 * 1.15 = 0.2407502 -> 241m; limit keeps today's ratio 1 / 0.5 = 2:
      482m.
    - mesh-proxy: 0.5056698 * 1.15 = 0.5815203 -> 582m, an increase from 250m, patched
      under initContainers (sidecars live there).
    - no memory series: every container's memory is reported missing; log-shipper and
      metrics have no series at all.
    """
    pod = Pod.from_api(recorded("pod-burstable-sidecars.json"))

    def ref(name: str) -> ContainerRef:
        return ContainerRef(pod.namespace, pod.name, name)

    report = recommend_resources(
        ClusterSnapshot(END, pods=(pod,)),
        history(cpu={ref("app"): steady_cpu(0.2), ref("mesh-proxy"): steady_cpu(0.5)}),
    )
    workload = only_workload(report)
    by_name = {item.container: item for item in workload.containers}
    # Running containers only: the classic init container "migrate" is not sized.
    assert set(by_name) == {"log-shipper", "mesh-proxy", "app", "metrics"}
    assert by_name["app"].cpu_request.recommended == 0.241
    assert by_name["app"].cpu_limit.recommended == 0.482
    assert by_name["mesh-proxy"].is_sidecar
    assert by_name["mesh-proxy"].cpu_request.recommended == 0.582
    assert by_name["log-shipper"].cpu_request.change is Change.UNKNOWN
    assert to_json(workload.patch) == {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "resources": {
                                "requests": {"cpu": "241m"},
                                "limits": {"cpu": "482m"},
                            },
                        }
                    ],
                    "initContainers": [
                        {"name": "mesh-proxy", "resources": {"requests": {"cpu": "582m"}}}
                    ],
                }
            }
        }
    }
    assert {(m.container, m.figures) for m in report.missing} == {
        ("log-shipper", ("cpu", "memory")),
        ("mesh-proxy", ("memory",)),
        ("app", ("memory",)),
        ("metrics", ("cpu", "memory")),
    }


# ---------------------------------------------------------------------------- what if


def test_what_if_repacks_with_the_recommended_requests() -> None:
    """Two untainted copies of worker-1 (7910m CPU); two web pods requesting 5 cores
    each, one per node (5 + 5 cannot share one). They use 0.4 core: recommended 475m
    each, so both fit on the first node and the second is freed."""
    node_raw = recorded("node-worker.json")
    nodes = []
    for name in ("worker-a", "worker-b"):
        raw = copy.deepcopy(node_raw)
        raw["metadata"]["name"] = name
        raw["metadata"].get("labels", {})["kubernetes.io/hostname"] = name
        raw["spec"].pop("taints", None)  # the recorded node is tainted; these take any pod
        nodes.append(Node.from_api(raw))
    pods = (
        web_pod("web-6d4cf56db6-aaaaa", cpu_request="5", node="worker-a"),
        web_pod("web-6d4cf56db6-bbbbb", cpu_request="5", node="worker-b"),
    )
    report = recommend_resources(
        ClusterSnapshot(END, nodes=tuple(nodes), pods=pods),
        history(cpu={nginx(pod): steady_cpu(0.4) for pod in pods}),
        what_if=True,
    )
    assert report.what_if is not None
    assert report.what_if.before.nodes_used == 2
    assert report.what_if.after.nodes_used == 1
    assert report.what_if.nodes_freed_change == 1
    assert report.what_if.pods_changed == 2
    # 7.91 cores - 2 * 0.475 = 6.96 cores left on worker-a; worker-b is empty.
    assert report.what_if.after.largest_schedulable_cpu == pytest.approx(7.91)
    assert only_workload(report).cpu_request_change_cores == pytest.approx(2 * (0.475 - 5))


# ---------------------------------------------------------------------------- top


def deployment_pod(deployment: str, cpu_request: str) -> Pod:
    """The recorded nginx pod, owned by a ReplicaSet of Deployment ``deployment``."""
    raw = copy.deepcopy(recorded("pod-replicaset.json"))
    raw["metadata"]["name"] = f"{deployment}-6d4cf56db6-7xk9z"
    raw["metadata"]["ownerReferences"][0]["name"] = f"{deployment}-6d4cf56db6"
    raw["spec"]["containers"][0]["resources"]["requests"]["cpu"] = cpu_request
    return Pod.from_api(raw)


def test_top_keeps_the_workloads_whose_requests_change_most_in_name_order() -> None:
    """Four Deployments using 0.1 core each, requesting 1, 4, 2 and 3 cores: the two
    that change most are the ones requesting 4 and 3 cores; memory is unmeasured, so
    every memory change is zero and CPU alone ranks them."""
    pods = tuple(
        deployment_pod(name, request)
        for name, request in (("alpha", "1"), ("bravo", "4"), ("charlie", "2"), ("delta", "3"))
    )
    snapshot = ClusterSnapshot(END, pods=pods)
    usage = history(cpu={nginx(pod): steady_cpu(0.1) for pod in pods})
    full = recommend_resources(snapshot, usage)
    cut = recommend_resources(snapshot, usage, top=2)
    assert [item.workload.name for item in full.workloads] == ["alpha", "bravo", "charlie", "delta"]
    assert [item.workload.name for item in cut.workloads] == ["bravo", "delta"]
    assert cut.workloads == (full.workloads[1], full.workloads[3])
    # Memory is unmeasured for all four, so ``missing`` has four entries and is cut too:
    # ``truncated`` names every list that had more than ``top`` items.
    assert len(full.missing) == 4
    assert cut.missing == full.missing[:2]
    assert (cut.top, dict(cut.truncated)) == (2, {"workloads": 4, "missing": 4})
    assert (full.top, dict(full.truncated)) == (None, {})
    # Totals cover every workload, listed or not.
    assert cut.cpu_requests_current_cores == full.cpu_requests_current_cores == 10.0
    assert recommend_resources(snapshot, usage, top=4).workloads == full.workloads


@pytest.mark.parametrize("top", [0, -1, 2.5, True, "3", 100_001])
def test_top_must_be_a_whole_number_from_one(top: Any) -> None:
    snapshot = ClusterSnapshot(END, pods=(web_pod(),))
    with pytest.raises(KubepulseValueError, match="top must be a whole number between 1 and"):
        recommend_resources(snapshot, history(), top=top)


# ---------------------------------------------------------------------------- bad input


def test_unknown_target_names_the_three() -> None:
    with pytest.raises(KubepulseValueError, match="balanced, performance, cost, got 'cheap'"):
        recommend_resources(ClusterSnapshot(END), history(), target="cheap")


def test_unknown_namespace_lists_the_known_ones() -> None:
    snapshot = ClusterSnapshot(END, pods=(web_pod(),))
    with pytest.raises(UnknownObjectError, match=r"'nope' not found.*default"):
        recommend_resources(snapshot, history(), namespace="nope")


def test_malformed_autoscaler_is_a_value_error() -> None:
    broken = hpa()
    del broken["spec"]["maxReplicas"]
    with pytest.raises(KubepulseValueError, match="maxReplicas"):
        recommend_resources(ClusterSnapshot(END), history(), autoscalers=[broken])


def test_no_history_recommends_nothing_and_says_so() -> None:
    pod = web_pod()
    report = recommend_resources(ClusterSnapshot(END, pods=(pod,)), history())
    workload = only_workload(report)
    (container,) = workload.containers
    assert container.cpu_request.change is Change.UNKNOWN
    assert container.memory_limit.change is Change.UNKNOWN
    assert workload.patch is None
    assert workload.patch_note == "nothing to change"
    assert [(m.container, m.figures) for m in report.missing] == [("nginx", ("cpu", "memory"))]


def owned_by(owner: dict[str, Any] | None, name: str = "solo") -> Pod:
    raw = copy.deepcopy(recorded("pod-replicaset.json"))
    raw["metadata"]["name"] = name
    raw["metadata"]["ownerReferences"] = [owner] if owner else []
    return Pod.from_api(raw)


@pytest.mark.parametrize(
    ("owner", "command_start", "note_part"),
    [
        # No owner: resized in place through the resize subresource.
        pytest.param(
            None,
            "kubectl patch pod solo -n default --subresource=resize --type=strategic -p ",
            "resized in place",
            id="bare-pod",
        ),
        # A Job's template is immutable: no patch, and the note says what to change.
        pytest.param(
            {"apiVersion": "batch/v1", "kind": "Job", "name": "nightly", "uid": "j1",
             "controller": True},
            None,
            "change the Job",
            id="job",
        ),
        # A StatefulSet is patched through its template.
        pytest.param(
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "s1",
             "controller": True},
            "kubectl patch statefulset db -n default --type=strategic -p ",
            "merge by name",
            id="statefulset",
        ),
    ],
)  # fmt: skip
def test_patch_per_owner_kind(
    owner: dict[str, Any] | None, command_start: str | None, note_part: str
) -> None:
    pod = owned_by(owner)
    other = Pod.from_api(recorded("pod-oomkilled.json"))  # namespace shop: filtered out
    report = recommend_resources(
        ClusterSnapshot(END, pods=(pod, other)),
        history(cpu={nginx(pod): WORKED_CPU}),
        namespace="default",
    )
    workload = only_workload(report)
    assert workload.patch_note is not None
    assert note_part in workload.patch_note
    if command_start is None:
        assert workload.patch is None
        assert workload.kubectl_patch is None
    else:
        assert workload.kubectl_patch is not None
        assert workload.kubectl_patch.startswith(command_start)
        # 582m as in the worked example; memory is unmeasured, so not in the patch.
        assert '"requests":{"cpu":"582m"}' in workload.kubectl_patch

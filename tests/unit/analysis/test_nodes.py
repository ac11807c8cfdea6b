"""Node pressure: recorded and API-shaped objects plus series in, hand-worked answers out.

Nodes and pods are parsed with ``Node.from_api`` / ``Pod.from_api`` (plus the recorded
``tests/fixtures/objects/node-worker.json``); history is built from plain series. Every
expected figure is worked out in a comment beside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import kubepulse.analysis.nodes as nodes_module
from kubepulse.analysis import ClusterSnapshot, ContainerRef, TimeSeries, UsageHistory, to_json
from kubepulse.analysis.nodes import (
    EvictionCandidate,
    HintKind,
    PressureLevel,
    SchedulingBlocker,
    analyze_node_pressure,
    rank_for_eviction,
)
from kubepulse.errors import KubepulseValueError
from kubepulse.model import Node, Pod

MI = 2**20
GI = 2**30
NOW = 1_800_000_000_000
START = NOW - 300_000
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "objects"


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    storage: str = "100Gi",
    pods: str = "110",
    conditions: Mapping[str, str] | None = None,
    unschedulable: bool = False,
) -> Node:
    statuses = {"Ready": "True", "MemoryPressure": "False", "DiskPressure": "False"}
    statuses.update(conditions or {})
    return Node.from_api(
        {
            "metadata": {"name": name},
            "spec": {"unschedulable": unschedulable},
            "status": {
                "capacity": {
                    "cpu": cpu,
                    "memory": memory,
                    "ephemeral-storage": storage,
                    "pods": pods,
                },
                # Allocatable: 100m CPU and 512Mi memory reserved, storage 90%.
                "allocatable": {
                    "cpu": f"{int(cpu) * 1000 - 100}m",
                    "memory": f"{int(memory.removesuffix('Gi')) * 1024 - 512}Mi",
                    "ephemeral-storage": f"{int(storage.removesuffix('Gi')) * 9 // 10}Gi",
                    "pods": pods,
                },
                "conditions": [
                    {"type": kind, "status": status} for kind, status in statuses.items()
                ],
            },
        }
    )


def pod(
    name: str,
    on: str | None,
    *,
    request: str | None = None,
    limit: str | None = None,
    cpu: str | None = None,
    priority: int | None = None,
    annotations: Mapping[str, str] | None = None,
    containers: Sequence[str] = ("app",),
) -> Pod:
    requests = {key: value for key, value in (("memory", request), ("cpu", cpu)) if value}
    limits = {"memory": limit} if limit else {}
    spec: dict[str, Any] = {
        "nodeName": on,
        "containers": [
            {"name": container, "resources": {"requests": requests, "limits": limits}}
            for container in containers[:1]
        ]
        + [{"name": container} for container in containers[1:]],
    }
    if priority is not None:
        spec["priority"] = priority
    return Pod.from_api(
        {
            "metadata": {
                "name": name,
                "namespace": "shop",
                "uid": f"uid-{name}",
                "annotations": dict(annotations or {}),
            },
            "spec": spec,
            "status": {"phase": "Running" if on else "Pending"},
        }
    )


def flat(value: float, points: int = 5) -> TimeSeries:
    """A series holding ``value`` every minute up to NOW."""
    return TimeSeries.of((NOW - 60_000 * i, value) for i in range(points))


def history(
    *,
    working_set: Mapping[tuple[str, str], float] = {},
    cpu: Mapping[tuple[str, str], float] = {},
    memory_available: Mapping[str, TimeSeries] = {},
    storage_available: Mapping[str, float] = {},
    psi: Mapping[str, Mapping[str, TimeSeries]] = {},
) -> UsageHistory:
    return UsageHistory(
        start_ms=START,
        end_ms=NOW,
        memory_working_set_bytes={
            ContainerRef("shop", pod_name, container): flat(value)
            for (pod_name, container), value in working_set.items()
        },
        cpu_cores={
            ContainerRef("shop", pod_name, container): flat(value)
            for (pod_name, container), value in cpu.items()
        },
        node_memory_available_bytes=memory_available,
        node_ephemeral_storage_available_bytes={
            name: flat(value) for name, value in storage_available.items()
        },
        node_pressure=psi,
    )


def snapshot(nodes: Sequence[Node], pods: Sequence[Pod] = ()) -> ClusterSnapshot:
    return ClusterSnapshot(taken_at_ms=NOW, nodes=tuple(nodes), pods=tuple(pods))


# ---------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"memory_available_threshold": "100MB"}, "memory_available_threshold must be a quantity"),
        ({"memory_available_threshold": "150%"}, r"from 0% up to 100%, got '150%'"),
        ({"memory_available_threshold": ""}, "such as '100Mi'"),
        ({"nodefs_available_percent": 100.0}, "up to \\(not including\\) 100, got 100.0"),
        ({"nodefs_available_percent": -1}, "got -1"),
        (
            {"node": "nope"},
            r"node 'nope' is not in the snapshot; known nodes: a, b, c, d, e and 1 more",
        ),
    ],
)
def test_bad_parameters_say_what_would_be_valid(kwargs: dict[str, Any], message: str) -> None:
    cluster = snapshot([node(name) for name in "fedcba"])
    with pytest.raises(KubepulseValueError, match=message):
        analyze_node_pressure(cluster, history(), **kwargs)


def test_a_percentage_memory_threshold_scales_with_capacity() -> None:
    report = analyze_node_pressure(
        snapshot([node("a", memory="8Gi")]),
        history(memory_available={"a": flat(1.0 * GI)}),
        memory_available_threshold="5%",
    )
    (figures,) = report.nodes
    # 5% of 8Gi = 409.6Mi; margin 1024Mi - 409.6Mi = 614.4Mi.
    assert figures.memory_threshold_bytes == pytest.approx(0.05 * 8 * GI)
    assert figures.memory_margin_bytes == pytest.approx(614.4 * MI)


# ---------------------------------------------------------------------------- per node


def test_capacity_allocatable_requested_and_used_per_resource() -> None:
    cluster = snapshot(
        [node("a", cpu="4", memory="8Gi", storage="100Gi")],
        [
            pod("web", "a", request="1Gi", cpu="500m"),
            pod("api", "a", request="512Mi", cpu="1500m", containers=("app", "proxy")),
        ],
    )
    usage = history(
        working_set={("web", "app"): 1.5 * GI, ("api", "app"): 256 * MI},
        cpu={("web", "app"): 0.25, ("api", "app"): 1.0, ("api", "proxy"): 0.5},
        storage_available={"a": 40.0 * GI},
    )
    (result,) = analyze_node_pressure(cluster, usage).nodes
    by_name = {figures.resource: figures for figures in result.resources}

    cpu = by_name["cpu"]
    # capacity 4, allocatable 3900m; requested 500m + 1500m = 2 (51.28%); used
    # 0.25 + 1.0 + 0.5 = 1.75 cores (44.87%), every container measured.
    assert (cpu.capacity, cpu.allocatable, cpu.requested, cpu.used) == (4.0, 3.9, 2.0, 1.75)
    assert cpu.requested_percent == pytest.approx(100 * 2 / 3.9)
    assert cpu.used_percent == pytest.approx(100 * 1.75 / 3.9)
    assert cpu.unmeasured_pods == 0

    memory = by_name["memory"]
    # allocatable 8Gi - 512Mi = 7680Mi; requested 1Gi + 512Mi = 1536Mi; used 1.5Gi +
    # 256Mi = 1792Mi, but api's proxy container has no series: 1 pod unmeasured.
    assert (memory.allocatable, memory.requested, memory.used) == (7680 * MI, 1536 * MI, 1792 * MI)
    assert memory.unmeasured_pods == 1

    storage = by_name["ephemeral-storage"]
    # used = capacity 100Gi - available 40Gi = 60Gi of allocatable 90Gi.
    assert (storage.capacity, storage.allocatable, storage.used) == (100 * GI, 90 * GI, 60 * GI)
    assert storage.used_percent == pytest.approx(100 * 60 / 90)

    pods = by_name["pods"]
    assert (pods.capacity, pods.allocatable, pods.requested, pods.used) == (110, 110, 2, 2)
    # nodefs.available = 40Gi / 100Gi = 40%.
    assert result.nodefs_available_percent == pytest.approx(40.0)


def test_unmeasured_nodes_are_unknown_and_the_gaps_are_listed() -> None:
    bare = Node.from_api(
        {
            "metadata": {"name": "bare"},
            "status": {"capacity": {"memory": "8Gi"}, "allocatable": {"memory": "8Gi"}},
        }
    )
    report = analyze_node_pressure(snapshot([bare], [pod("web", "bare", request="1Gi")]), history())
    (result,) = report.nodes
    assert result.level is PressureLevel.UNKNOWN
    assert result.memory_available_bytes is None
    assert {figures.resource: figures.used for figures in result.resources}["memory"] is None
    assert report.missing_data == (
        "bare: no allocatable cpu or memory",
        "bare: no memory.available series",
        "bare: no nodefs.available series",
        "bare: no PSI series",
    )


@pytest.mark.parametrize(
    ("conditions", "available_mi", "storage_gi", "psi_mean", "level", "reason"),
    [
        # 2048Mi available, threshold 100Mi, near margin max(100Mi, 5% of 8Gi = 409.6Mi).
        ({}, 2048, 50, 0.0, PressureLevel.OK, None),
        (
            {"MemoryPressure": "True"},
            2048,
            50,
            0.0,
            PressureLevel.UNDER_PRESSURE,
            "condition MemoryPressure is True",
        ),
        ({}, 80, 50, 0.0, PressureLevel.UNDER_PRESSURE, "memory.available 80Mi is below the 100Mi"),
        (
            {},
            300,
            50,
            0.0,
            PressureLevel.NEAR_PRESSURE,
            "is within 410Mi of the eviction threshold",
        ),
        # nodefs: 8Gi of 100Gi = 8% < 10%; 12Gi = 12% < 10% + 5 points.
        ({}, 2048, 8, 0.0, PressureLevel.UNDER_PRESSURE, "nodefs.available 8.0% is below the 10%"),
        (
            {},
            2048,
            12,
            0.0,
            PressureLevel.NEAR_PRESSURE,
            "nodefs.available 12.0% is within 5 points",
        ),
        # PSI memory some averaging 20% >= 10%.
        (
            {},
            2048,
            50,
            0.2,
            PressureLevel.NEAR_PRESSURE,
            "PSI memory_some averaged 20% of the window",
        ),
    ],
)
def test_pressure_levels(
    conditions: Mapping[str, str],
    available_mi: float,
    storage_gi: float,
    psi_mean: float,
    level: PressureLevel,
    reason: str | None,
) -> None:
    usage = history(
        memory_available={"a": flat(available_mi * MI)},
        storage_available={"a": storage_gi * GI},
        psi={"a": {"memory_some": flat(psi_mean)}},
    )
    (result,) = analyze_node_pressure(snapshot([node("a", conditions=conditions)]), usage).nodes
    assert result.level is level
    if reason is None:
        assert result.reasons == ()
    else:
        assert any(reason in text for text in result.reasons), result.reasons


def test_psi_figures_over_the_window() -> None:
    series = TimeSeries.of([(NOW - 120_000, 0.1), (NOW - 60_000, 0.4), (NOW, 0.1)])
    usage = history(psi={"a": {"io_full": series, "cpu_some": flat(0.0)}})
    (result,) = analyze_node_pressure(snapshot([node("a")]), usage).nodes
    cpu_some, io_full = result.psi
    assert (cpu_some.name, cpu_some.mean, cpu_some.samples) == ("cpu_some", 0.0, 5)
    # (0.1 + 0.4 + 0.1) / 3 = 0.2 mean, 0.4 peak, 0.1 latest; 0.2 >= 0.10 for io_full.
    assert (io_full.latest, io_full.peak) == (0.1, 0.4)
    assert io_full.mean == pytest.approx(0.2)
    assert result.level is PressureLevel.NEAR_PRESSURE


def test_falling_available_memory_gives_the_time_to_the_threshold() -> None:
    # 1000Mi, 900Mi, 800Mi one minute apart: -100Mi per 60 s. Fitted now: 800Mi, 700Mi
    # above the 100Mi threshold: 700 / (100 / 60) = 420 s, within the 30-minute horizon.
    falling = TimeSeries.of(
        [(NOW - 120_000, 1000.0 * MI), (NOW - 60_000, 900.0 * MI), (NOW, 800.0 * MI)]
    )
    usage = history(memory_available={"a": falling})
    cluster = snapshot([node("a")])
    (result,) = analyze_node_pressure(cluster, usage).nodes
    assert result.memory_threshold_eta_seconds == pytest.approx(420.0)
    assert result.level is PressureLevel.NEAR_PRESSURE
    assert "crossing in about 7 min" in result.reasons[-1]
    (quiet,) = analyze_node_pressure(cluster, usage, predict_evictions=False).nodes
    assert quiet.memory_threshold_eta_seconds is None
    assert quiet.level is PressureLevel.OK


def test_the_recorded_worker_with_disk_pressure() -> None:
    worker = Node.from_api(json.loads((FIXTURES / "node-worker.json").read_text()))
    report = analyze_node_pressure(snapshot([worker]), history())
    (result,) = report.nodes
    assert result.level is PressureLevel.UNDER_PRESSURE
    assert result.pressure_conditions == ("DiskPressure",)
    assert result.schedulable is False
    assert result.ready is True
    # capacity 32878880Ki, allocatable 31727904Ki.
    memory = result.resources[1]
    assert (memory.capacity, memory.allocatable) == (32878880 * 1024, 31727904 * 1024)


# ---------------------------------------------------------------------------- eviction


def ranking_cluster() -> tuple[ClusterSnapshot, dict[tuple[str, str], float]]:
    pods = [
        pod("a", "n", priority=0),  # BestEffort, uses 100Mi: exceeds by 100Mi
        pod("b", "n", request="200Mi", priority=0),  # uses 300Mi: exceeds by 100Mi
        pod("c", "n", request="200Mi", priority=1000),  # uses 500Mi: exceeds by 300Mi
        pod("d", "n", request="1Gi", limit="1Gi", cpu="1", priority=0),  # 512Mi: within
        pod("e", "n", request="100Mi", priority=0),  # not measured: unknown
        pod("f", "n", priority=0),  # BestEffort, not measured: exceeds a zero request
        pod("g", "n", annotations={"kubernetes.io/config.mirror": "abc"}),  # static
        pod("h", "n", request="64Mi", priority=2_000_001_000),  # system-node-critical
    ]
    pods[3] = Pod.from_api(
        {
            "metadata": {"name": "d", "namespace": "shop", "uid": "uid-d"},
            "spec": {
                "nodeName": "n",
                "priority": 0,
                "containers": [
                    {"name": "app", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
                ],
            },
            "status": {"phase": "Running"},
        }
    )
    usage = {
        ("a", "app"): 100.0 * MI,
        ("b", "app"): 300.0 * MI,
        ("c", "app"): 500.0 * MI,
        ("d", "app"): 512.0 * MI,
        ("g", "app"): 50.0 * MI,
        ("h", "app"): 50.0 * MI,
    }
    return snapshot([node("n")], pods), usage


def test_the_kubelet_memory_pressure_order_on_one_node() -> None:
    cluster, usage = ranking_cluster()
    report = analyze_node_pressure(
        cluster,
        history(working_set=usage, memory_available={"n": flat(100.0 * MI)}),
        memory_available_threshold="300Mi",
    )
    # Exceeding first: priority 0 before 1000. Among priority 0, a and b both exceed by
    # 100Mi (tie broken BestEffort before Burstable), f's use is unknown so it follows.
    # Then c (priority 1000). Then e (unknown whether above its request), then d (within).
    # g (static) and h (critical priority) are never evicted.
    assert [c.pod for c in report.eviction_ranking] == ["a", "b", "f", "c", "e", "d"]
    assert [c.node_rank for c in report.eviction_ranking] == [1, 2, 3, 4, 5, 6]
    first = report.eviction_ranking[0]
    assert (first.qos, first.exceeds_request, first.memory_above_request_bytes) == (
        "BestEffort",
        True,
        100 * MI,
    )
    e = report.eviction_ranking[4]
    assert (e.usage_measured, e.exceeds_request, e.memory_usage_bytes) == (False, None, None)
    # Available 100Mi, threshold 300Mi: 200Mi to reclaim. a frees 100Mi (100Mi left), b
    # frees 300Mi (done). So a and b are predicted, nobody after them.
    assert [c.predicted_eviction for c in report.eviction_ranking] == [True, True] + [False] * 4
    (result,) = report.nodes
    assert (result.evictable_pods, result.critical_pods) == (6, 2)
    assert "above its memory request: uses 100Mi of 0Mi requested" in first.reason


def test_rank_for_eviction_alone_marks_partial_use_as_a_lower_bound() -> None:
    two = pod("two", "n", request="100Mi", containers=("app", "sidecar"))
    # Only app is measured, at 150Mi: already above the 100Mi request, sidecar or not.
    (ranked,) = rank_for_eviction([two], {("shop", "two"): (150.0 * MI, False)})
    assert (ranked.exceeds_request, ranked.usage_measured) == (True, False)


def test_nodes_under_pressure_come_first_then_round_by_round() -> None:
    cluster = snapshot(
        [node("calm"), node("hot", conditions={"MemoryPressure": "True"}), node("warm")],
        [
            pod("calm-1", "calm"),
            pod("hot-1", "hot"),
            pod("hot-2", "hot", request="1Gi"),
            pod("warm-1", "warm"),
            pod("warm-2", "warm", request="1Gi"),
        ],
    )
    usage = history(
        memory_available={
            "calm": flat(4.0 * GI),
            "hot": flat(50.0 * MI),  # 50Mi below the 100Mi threshold
            "warm": flat(60.0 * MI),  # 40Mi below: a larger margin than hot's
        }
    )
    report = analyze_node_pressure(cluster, usage)
    # Both hot and warm are under pressure; round 1 takes each node's first pod, the more
    # pressed node (hot, margin -50Mi) first; then round 2; the calm node comes last.
    assert [(c.node, c.pod) for c in report.eviction_ranking] == [
        ("hot", "hot-1"),
        ("warm", "warm-1"),
        ("hot", "hot-2"),
        ("warm", "warm-2"),
        ("calm", "calm-1"),
    ]
    assert [c.rank for c in report.eviction_ranking] == [1, 2, 3, 4, 5]
    assert [n.node for n in report.nodes] == ["hot", "warm", "calm"]
    assert (report.nodes_under_pressure, report.nodes_near_pressure) == (2, 0)
    # Unmeasured pods free an unknown amount: every pod on a node still short is predicted.
    assert [c.predicted_eviction for c in report.eviction_ranking] == [
        True,
        True,
        True,
        True,
        False,
    ]


def interleaving_cluster() -> tuple[ClusterSnapshot, UsageHistory, list[Pod], dict[Any, float]]:
    """Six nodes with 0 to 4 pods each, at several pressure levels, some pods unmeasured."""
    sizes = {"n0": 3, "n1": 1, "n2": 4, "n3": 0, "n4": 2, "n5": 3}
    available = {"n0": 60.0, "n1": 20.0, "n2": 90.0, "n3": 10.0, "n4": 4096.0, "n5": 150.0}
    pods = [
        pod(f"{name}-{i}", name, request=f"{(i * 37) % 5 * 64}Mi", priority=(i % 2) * 100)
        for name, count in sizes.items()
        for i in range(count)
    ]
    working_set = {
        (item.name, "app"): float((index * 53) % 7 * 40 * MI)
        for index, item in enumerate(pods)
        if index % 4
    }
    usage = history(
        working_set=working_set,
        memory_available={name: flat(value * MI) for name, value in available.items()},
    )
    return snapshot([node(name) for name in sizes], pods), usage, pods, working_set


def test_the_cluster_ranking_is_the_sort_by_level_round_and_severity() -> None:
    """Nodes with different numbers of pods at the same level: the interleaving built
    round by round equals a sort of every pod by (node level, position on its node,
    node severity, node name), and each node's part is :func:`rank_for_eviction`'s."""
    cluster, usage_history, pods, working_set = interleaving_cluster()
    report = analyze_node_pressure(cluster, usage_history)
    ranking = report.eviction_ranking
    assert len(ranking) == len(pods)
    assert [c.rank for c in ranking] == list(range(1, len(pods) + 1))
    level = {"under_pressure": 0, "near_pressure": 1, "unknown": 2, "ok": 3}
    position = {item.node: index for index, item in enumerate(report.nodes)}
    keys = [(level[c.node_level.value], c.node_rank, position[c.node]) for c in ranking]
    assert keys == sorted(keys)
    assert len({c.node_level for c in ranking}) > 1, "more than one level is exercised"
    usage = {
        ("shop", item.name): (
            working_set.get((item.name, "app")),
            (item.name, "app") in working_set,
        )
        for item in pods
    }
    for name in (item.node for item in report.nodes):  # n3, without pods, too
        mine = [c.pod for c in ranking if c.node == name]
        expected = rank_for_eviction([item for item in pods if item.node_name == name], usage)
        assert mine == [ranked.pod.name for ranked in expected], name
        predicted = [c.predicted_eviction for c in ranking if c.node == name]
        assert predicted == sorted(predicted, reverse=True), "a prefix of each node's pods"


@pytest.mark.parametrize("top", [1, 2, 5, 7, 12, 13, 100])
def test_top_keeps_the_first_candidates_of_the_full_ranking(top: int) -> None:
    cluster, usage_history, pods, _ = interleaving_cluster()
    full = analyze_node_pressure(cluster, usage_history)
    cut = analyze_node_pressure(cluster, usage_history, top=top)
    assert len(full.eviction_ranking) == len(pods) == 13
    assert cut.eviction_ranking == full.eviction_ranking[:top]
    assert cut.nodes == full.nodes, "the per-node figures cover every pod"
    assert cut.top == top
    assert full.top is None
    assert full.truncated == {}
    assert cut.truncated == ({"evictionRanking": 13} if top < 13 else {})
    document = to_json(cut, camel_case=True)
    assert document["top"] == top
    assert len(document["evictionRanking"]) == min(top, 13)


@pytest.mark.parametrize("top", [0, -1, 2.5, True, "10", 100_001])
def test_a_bad_top_says_what_to_give(top: Any) -> None:
    cluster, usage_history, _, _ = interleaving_cluster()
    with pytest.raises(KubepulseValueError, match=r"top must be a whole number between 1"):
        analyze_node_pressure(cluster, usage_history, top=top)


def test_top_with_predictions_off_cuts_nothing() -> None:
    cluster, usage_history, _, _ = interleaving_cluster()
    report = analyze_node_pressure(cluster, usage_history, predict_evictions=False, top=1)
    assert report.eviction_ranking == ()
    assert report.truncated == {}


def test_memory_pressure_without_a_signal_predicts_one_eviction() -> None:
    cluster = snapshot(
        [node("hot", conditions={"MemoryPressure": "True"})],
        [pod("x", "hot"), pod("y", "hot")],
    )
    report = analyze_node_pressure(cluster, history())
    assert [c.predicted_eviction for c in report.eviction_ranking] == [True, False]


def test_narrowing_to_one_node_and_turning_predictions_off() -> None:
    cluster = snapshot([node("a"), node("b")], [pod("x", "a"), pod("y", "b")])
    narrowed = analyze_node_pressure(cluster, history(), node="b")
    assert [n.node for n in narrowed.nodes] == ["b"]
    assert [c.pod for c in narrowed.eviction_ranking] == ["y"]
    assert analyze_node_pressure(cluster, history(), predict_evictions=False).eviction_ranking == ()


# ---------------------------------------------------------------------------- scheduling


def test_pending_pods_and_what_blocks_them() -> None:
    cluster = snapshot(
        [
            # Allocatable 3900m / 7680Mi each.
            node("a"),
            node("b"),
            node("off", cpu="16", memory="64Gi", unschedulable=True),
        ],
        [
            pod("a-fill", "a", request="7Gi", cpu="500m"),  # a free: 3400m, 512Mi
            pod("b-fill", "b", request="1Gi", cpu="3500m"),  # b free: 400m, 6656Mi
            pod("fits", None, request="256Mi", cpu="100m"),
            pod("too-much-memory", None, request="10Gi", cpu="100m"),
            pod("fragmented", None, request="1Gi", cpu="1", priority=5),
            pod("too-much-cpu", None, request="64Mi", cpu="8"),
        ],
    )
    scheduling = analyze_node_pressure(cluster, history()).scheduling
    by_name = {p.pod: p for p in scheduling.pending_pods}
    assert scheduling.pending_pods[0].pod == "fragmented"  # highest priority
    # 256Mi/100m fits on both a and b.
    assert by_name["fits"].blockers == (SchedulingBlocker.NOT_BY_REQUESTS,)
    assert by_name["fits"].nodes_with_room == 2
    # 10Gi: the most memory free anywhere is b's 6656Mi. The cordoned node has room.
    assert by_name["too-much-memory"].blockers == (SchedulingBlocker.INSUFFICIENT_MEMORY,)
    assert by_name["too-much-memory"].fits_if_allowed == ("off",)
    # 1 core fits on a (3400m) and 1Gi on b (6656Mi), but no node has both.
    assert by_name["fragmented"].blockers == (SchedulingBlocker.FRAGMENTED,)
    assert by_name["too-much-cpu"].blockers == (SchedulingBlocker.INSUFFICIENT_CPU,)
    assert scheduling.nodes_cordoned == ("off",)
    assert scheduling.largest_schedulable_cpu == pytest.approx(3.4)
    assert scheduling.largest_schedulable_memory == 6656 * MI
    assert scheduling.blocked_by[SchedulingBlocker.INSUFFICIENT_MEMORY] == 1


def test_full_pod_slots_and_no_schedulable_node() -> None:
    full = snapshot([node("a", pods="1")], [pod("x", "a"), pod("waiting", None)])
    (waiting,) = analyze_node_pressure(full, history()).scheduling.pending_pods
    assert waiting.blockers == (SchedulingBlocker.TOO_MANY_PODS,)
    cordoned = snapshot([node("a", unschedulable=True)], [pod("waiting", None)])
    (waiting,) = analyze_node_pressure(cordoned, history()).scheduling.pending_pods
    assert waiting.blockers == (SchedulingBlocker.NO_SCHEDULABLE_NODE,)


def test_tolerated_taint_keys_reopen_tainted_nodes() -> None:
    kwok = Node.from_api(
        {
            "metadata": {"name": "kwok-0"},
            "spec": {
                "taints": [{"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}]
            },
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}},
        }
    )
    cluster = snapshot([kwok], [pod("waiting", None, request="1Gi")])
    (closed,) = analyze_node_pressure(cluster, history()).scheduling.pending_pods
    assert closed.blockers == (SchedulingBlocker.NO_SCHEDULABLE_NODE,)
    assert closed.fits_if_allowed == ("kwok-0",)
    report = analyze_node_pressure(cluster, history(), tolerated_taint_keys=("kwok.x-k8s.io/node",))
    (opened,) = report.scheduling.pending_pods
    assert (opened.blockers, opened.nodes_with_room) == ((SchedulingBlocker.NOT_BY_REQUESTS,), 1)
    assert report.nodes[0].schedulable is True
    assert report.fragmentation.nodes_considered == 1


def test_hints_only_when_asked() -> None:
    cluster = snapshot(
        [node("hot", conditions={"MemoryPressure": "True"}), node("roomy")],
        [
            pod("greedy", "hot", request="100Mi"),
            pod("waiting", None, request="10Gi"),
        ],
    )
    usage = history(working_set={("greedy", "app"): 2.0 * GI})
    assert analyze_node_pressure(cluster, usage).hints == ()
    hints = analyze_node_pressure(cluster, usage, include_scheduling_hints=True).hints
    kinds = {(hint.kind, hint.subject) for hint in hints}
    assert (HintKind.AVOID_NODE, "hot") in kinds
    # greedy uses 2048Mi against 100Mi requested: 1948Mi more than requested.
    raise_requests = next(hint for hint in hints if hint.kind is HintKind.RAISE_REQUESTS)
    assert "1948Mi more memory than they request" in raise_requests.message
    assert (HintKind.PREFER_NODE, "roomy") in kinds
    assert (HintKind.PREFER_NODE, "hot") not in kinds
    assert (HintKind.RESIZE_PENDING_POD, "shop/waiting") in kinds


def test_the_report_serialises_to_json() -> None:
    cluster, usage = ranking_cluster()
    report = analyze_node_pressure(
        cluster, history(working_set=usage, memory_available={"n": flat(2.0 * GI)})
    )
    document = json.loads(json.dumps(to_json(report, camel_case=True)))
    assert document["evictionRanking"][0]["pod"] == "a"
    assert document["nodes"][0]["level"] == "ok"
    assert document["thresholds"]["memoryAvailableBytes"] == 100 * MI


def test_the_fast_candidate_constructor_builds_what_the_dataclass_builds() -> None:
    values = (
        "shop", "web-1", "n", 3, 2, PressureLevel.NEAR_PRESSURE, "Burstable", 0,
        200.0 * MI, 300.0 * MI, 100.0 * MI, True, True, False, "why",
    )  # fmt: skip
    fast = nodes_module._new_candidate(*values)
    slow = EvictionCandidate(*values)
    assert fast == slow
    assert repr(fast) == repr(slow)
    assert hash(fast) == hash(slow)
    with pytest.raises(AttributeError):
        fast.rank = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="zip"):
        nodes_module._new_candidate(*values[:-1])

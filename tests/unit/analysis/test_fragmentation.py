"""Fragmentation and re-packing: tables of nodes and pods in, hand-computed room out.

Objects are API-shaped dicts parsed by ``Node.from_api`` / ``Pod.from_api``, plus the
recorded ``tests/fixtures/objects/node-worker.json``. Every expected figure is worked out
in a comment next to it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from kubepulse.analysis import ClusterSnapshot, to_json
from kubepulse.analysis.fragmentation import (
    PodRef,
    ShapeFit,
    StrandedResource,
    _FirstFit,
    analyze_fragmentation,
    free_room,
    repack,
)
from kubepulse.errors import KubepulseValueError
from kubepulse.model import Node, Pod

GI = 2**30
MI = 2**20
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "objects"


def node(
    name: str,
    cpu: str,
    memory: str,
    *,
    pods: str | None = "110",
    taints: Sequence[dict[str, str]] = (),
    unschedulable: bool = False,
) -> Node:
    allocatable = {"cpu": cpu, "memory": memory}
    if pods is not None:
        allocatable["pods"] = pods
    return Node.from_api(
        {
            "metadata": {"name": name},
            "spec": {"taints": list(taints), "unschedulable": unschedulable},
            "status": {"capacity": dict(allocatable), "allocatable": allocatable},
        }
    )


def pod(
    name: str,
    on: str | None,
    cpu: str | None = None,
    memory: str | None = None,
    *,
    owner: str | None = None,
    phase: str | None = None,
    namespace: str = "shop",
) -> Pod:
    requests = {key: value for key, value in (("cpu", cpu), ("memory", memory)) if value}
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"uid-{name}"}
    if owner is not None:
        metadata["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": owner, "name": "x", "uid": "u", "controller": True}
        ]
    return Pod.from_api(
        {
            "metadata": metadata,
            "spec": {
                "nodeName": on,
                "containers": [{"name": "app", "resources": {"requests": requests}}],
            },
            "status": {"phase": phase or ("Running" if on else "Pending")},
        }
    )


def snapshot(nodes: Sequence[Node], pods: Sequence[Pod] = ()) -> ClusterSnapshot:
    return ClusterSnapshot(taken_at_ms=1_800_000_000_000, nodes=tuple(nodes), pods=tuple(pods))


# ---------------------------------------------------------------------------- free room


def test_free_room_sums_requests_of_active_pods_only() -> None:
    cluster = snapshot(
        [node("a", "4", "8Gi")],
        [
            pod("web", "a", "1500m", "1Gi"),
            pod("api", "a", "500m", "512Mi"),
            pod("done", "a", "2", "2Gi", phase="Succeeded"),  # finished: holds nothing
        ],
    )
    (room,), missing = free_room(cluster)
    assert missing == ()
    # 1500m + 500m = 2 cores; 1Gi + 512Mi = 1.5Gi; two active pods.
    assert (room.requested_cpu, room.requested_memory, room.pods) == (2.0, 1.5 * GI, 2)
    # 4 - 2 = 2 cores, 8Gi - 1.5Gi = 6.5Gi, 110 - 2 = 108 slots.
    assert (room.free_cpu, room.free_memory, room.free_pods) == (2.0, 6.5 * GI, 108)


@pytest.mark.parametrize(
    ("taints", "unschedulable", "tolerated", "blocked_by"),
    [
        ((), False, (), ()),
        ((), True, (), ("cordoned",)),
        ([{"key": "gpu", "effect": "NoSchedule"}], False, (), ("taint gpu:NoSchedule",)),
        ([{"key": "gone", "effect": "NoExecute"}], False, (), ("taint gone:NoExecute",)),
        # A preference only: pods may still land there.
        ([{"key": "spot", "effect": "PreferNoSchedule"}], False, (), ()),
        # The caller says every pod tolerates it (kwok's fake-node taint).
        (
            [{"key": "kwok.x-k8s.io/node", "effect": "NoSchedule"}],
            False,
            ("kwok.x-k8s.io/node",),
            (),
        ),
    ],
)
def test_which_nodes_take_new_pods(
    taints: Sequence[dict[str, str]],
    unschedulable: bool,
    tolerated: tuple[str, ...],
    blocked_by: tuple[str, ...],
) -> None:
    cluster = snapshot([node("a", "4", "8Gi", taints=taints, unschedulable=unschedulable)])
    (room,), _ = free_room(cluster, tolerated_taint_keys=tolerated)
    assert room.blocked_by == blocked_by
    assert room.schedulable is (not blocked_by)


def test_the_recorded_worker_with_disk_pressure_taints_is_left_out_of_the_pool() -> None:
    worker = Node.from_api(json.loads((FIXTURES / "node-worker.json").read_text()))
    report = analyze_fragmentation(snapshot([worker, node("spare", "2", "4Gi")]))
    assert report.nodes_considered == 1
    assert report.nodes_excluded == {
        "worker-1": (
            "taint node.kubernetes.io/disk-pressure:NoSchedule",
            "taint dedicated:NoSchedule",
        )
    }


# ---------------------------------------------------------------------------- fragmentation


def test_largest_shape_stranded_resources_and_shape_counts() -> None:
    nodes = [
        node("a", "4", "8Gi"),
        node("b", "2", "16Gi"),
        node("c", "4", "8Gi"),
        node("d", "4", "8Gi", pods="2"),
        node("cordoned", "64", "256Gi", unschedulable=True),
        Node.from_api({"metadata": {"name": "blank"}}),  # reports no allocatable at all
    ]
    pods = [
        pod("a1", "a", "3", "2Gi"),  # a free: 1 core, 6Gi
        pod("b1", "b", "500m", "15Gi"),  # b free: 1.5 cores, 1Gi
        pod("c1", "c", "3900m", "1Gi"),  # c free: 0.1 core (2.5% < 5%: exhausted), 7Gi
        pod("d1", "d", "1", "1Gi"),
        pod("d2", "d", "1", "1Gi"),  # d: 2 of 2 pod slots used; 2 cores, 6Gi free
    ]
    report = analyze_fragmentation(snapshot(nodes, pods), shape_cpu="500m", shape_memory="1Gi")

    assert report.nodes_considered == 4
    assert report.nodes_excluded == {"cordoned": ("cordoned",)}
    assert report.nodes_missing_allocatable == ("blank",)
    # Free CPU: 1 + 1.5 + 0.1 + 2 = 4.6 cores; memory 6 + 1 + 7 + 6 = 20Gi.
    assert report.free_cpu_total == pytest.approx(4.6)
    assert report.free_memory_total == 20 * GI
    # d has no pod slot, so its 2 cores do not count: the most CPU is b's 1.5 cores, the
    # most memory is c's 7Gi.
    assert report.largest_schedulable_cpu == pytest.approx(1.5)
    assert report.largest_schedulable_memory == 7 * GI
    # Frontier: (1.5, 1Gi) from b, (1, 6Gi) from a, (0.1, 7Gi) from c.
    assert [(round(cpu, 9), memory) for cpu, memory in report.schedulable_shapes] == [
        (1.5, 1 * GI),
        (1.0, 6 * GI),
        (0.1, 7 * GI),
    ]
    # Stranded, largest share first: c's 7Gi of 8Gi (87.5%) behind exhausted CPU; d's
    # 6Gi of 8Gi (75%) and 2 of 4 cores (50%) behind exhausted pod slots.
    assert report.stranded == (
        StrandedResource("c", "memory", 7 * GI, "cpu"),
        StrandedResource("d", "memory", 6 * GI, "pods"),
        StrandedResource("d", "cpu", 2.0, "pods"),
    )
    assert report.stranded_memory_total == 13 * GI
    assert report.stranded_cpu_total == 2.0
    # 500m/1Gi pods: a min(1/0.5, 6/1) = 2 (cpu); b min(1.5/0.5, 1/1) = 1 (memory);
    # c min(0.1/0.5) = 0 (cpu); d 0 slots (pods). Total 3.
    assert report.shape_fits == (
        ShapeFit("a", 2, "cpu"),
        ShapeFit("b", 1, "memory"),
        ShapeFit("c", 0, "cpu"),
        ShapeFit("d", 0, "pods"),
    )
    assert report.shape_fits_total == 3
    assert (report.shape_cpu, report.shape_memory) == (0.5, 1 * GI)
    assert json.loads(json.dumps(to_json(report)))["shape_fits_total"] == 3


def test_a_shape_of_memory_only_is_limited_by_memory_and_slots() -> None:
    report = analyze_fragmentation(snapshot([node("a", "4", "8Gi", pods="3")]), shape_memory="2Gi")
    # 8Gi / 2Gi = 4, but only 3 pod slots.
    assert report.shape_fits == (ShapeFit("a", 3, "pods"),)
    assert report.shape_cpu == 0.0


def test_without_a_shape_no_counts_are_made() -> None:
    report = analyze_fragmentation(snapshot([node("a", "4", "8Gi")]))
    assert (report.shape_fits_total, report.shape_fits, report.shape_cpu) == (None, (), None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shape_cpu": "half"}, "shape_cpu: invalid quantity 'half'"),
        ({"shape_memory": "-1Gi"}, "shape_memory: .*cannot be negative"),
        ({"shape_cpu": "0", "shape_memory": "0"}, "the shape requests nothing"),
        ({"exhausted_percent": 150.0}, "exhausted_percent must be between 0 and 100, got 150"),
    ],
)
def test_bad_parameters_say_what_is_valid(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(KubepulseValueError, match=message):
        analyze_fragmentation(snapshot([node("a", "4", "8Gi")]), **kwargs)


# ---------------------------------------------------------------------------- repack


def test_shrunk_requests_free_a_node() -> None:
    cluster = snapshot(
        [node("n1", "4", "8Gi"), node("n2", "4", "8Gi")],
        [
            pod("big", "n1", "3", "6Gi"),
            pod("small", "n2", "1", "1Gi"),
            pod("agent", "n2", "500m", "256Mi", owner="DaemonSet"),
        ],
    )
    result = repack(cluster, {("shop", "big"): (2.0, 2.0 * GI)})
    # Movable pods by dominant share: big 2/4 = 0.5, small 1/4 = 0.25. Equal nodes go by
    # name, so n1 takes big (free 2 cores, 6Gi) and then small (free 1 core, 5Gi); n2
    # keeps only its DaemonSet pod and is freed.
    assert (result.nodes_used, result.nodes_used_before) == (1, 2)
    assert result.nodes_freed == ("n2",)
    # n2 after: 4 - 0.5 = 3.5 cores and 8Gi - 256Mi = 7936Mi free.
    assert result.largest_schedulable_cpu == pytest.approx(3.5)
    assert result.largest_schedulable_memory == 7936 * MI
    assert (result.pods_placed, result.pods_pinned, result.pods_changed) == (2, 1, 1)
    assert result.unplaced == ()


def test_decreasing_order_places_what_arrival_order_would_not() -> None:
    # Two 4-core nodes and pods of 1, 1, 3, 3 cores. In that order, first fit puts 1+1 on
    # n1 and 3 on n2, leaving the second 3 homeless. Decreasing: 3+1 and 3+1, all placed.
    cluster = snapshot(
        [node("n1", "4", "100Gi"), node("n2", "4", "100Gi")],
        [
            pod(name, None, cpu, "1Gi")
            for name, cpu in (("p1", "1"), ("p2", "1"), ("p3", "3"), ("p4", "3"))
        ],
    )
    result = repack(cluster, {})
    assert result.unplaced == ()
    assert (result.pods_placed, result.nodes_used, result.nodes_freed) == (4, 2, ())


def test_large_nodes_fill_first_so_small_ones_are_freed() -> None:
    cluster = snapshot(
        [node("a-small", "2", "4Gi"), node("b-large", "8", "32Gi")],
        [pod("web", "a-small", "1", "1Gi")],
    )
    result = repack(cluster, {})
    assert result.nodes_freed == ("a-small",)
    # b-large: 8 - 1 = 7 cores free; memory 32 - 1 = 31Gi.
    assert (result.largest_schedulable_cpu, result.largest_schedulable_memory) == (7.0, 31 * GI)
    assert result.schedulable_shapes == ((7.0, 31 * GI),)


def test_what_fits_nowhere_is_unplaced_and_pod_slots_count() -> None:
    cluster = snapshot(
        [node("n1", "4", "8Gi", pods="1")],
        [pod("huge", "n1", "1", "1Gi"), pod("second", None, "100m", "64Mi")],
    )
    result = repack(cluster, {("shop", "huge"): (5.0, 1.0 * GI)})
    # huge (5 cores) exceeds the node; second then takes the only slot.
    assert result.unplaced == (PodRef("shop", "huge"),)
    assert result.pods_placed == 1
    # No slot left anywhere: nothing more can be scheduled.
    assert (result.largest_schedulable_cpu, result.largest_schedulable_memory) == (0.0, 0.0)


def test_pods_on_nodes_outside_the_pool_stay_and_unknown_keys_are_reported() -> None:
    cluster = snapshot(
        [
            node("n1", "4", "8Gi"),
            node("gpu", "8", "32Gi", taints=[{"key": "gpu", "effect": "NoSchedule"}]),
        ],
        [pod("train", "gpu", "6", "20Gi"), pod("web", "n1", "1", "1Gi")],
    )
    result = repack(cluster, {("shop", "gone"): (1.0, 1.0)})
    assert result.pods_pinned == 1
    assert result.unknown_pods == (PodRef("shop", "gone"),)
    assert result.pods_changed == 0
    assert result.nodes_freed == ()


@pytest.mark.parametrize(
    "value",
    [(-1.0, 1.0), (1.0, float("nan")), (1.0,), ("a", 1.0)],
)
def test_bad_replacement_requests_are_refused(value: Any) -> None:
    with pytest.raises(KubepulseValueError, match=r"requests\[shop/web\]"):
        repack(snapshot([node("n1", "4", "8Gi")]), {("shop", "web"): value})


def test_first_fit_tree_answers_like_a_linear_scan() -> None:
    """The segment tree only prunes: it must pick the same node as scanning in order."""
    rng = random.Random(11)
    for _ in range(20):
        free = [
            (rng.uniform(0, 8), rng.uniform(0, 32), float(rng.randint(0, 3)))
            for _ in range(rng.randint(1, 40))
        ]
        scan = [list(item) for item in free]
        tree = _FirstFit(free)
        for _ in range(60):
            cpu, memory = rng.uniform(0, 4), rng.uniform(0, 16)
            expected = next(
                (
                    i
                    for i, (c, m, p) in enumerate(scan)
                    if c + 1e-9 >= cpu and m + 0.5 >= memory and p >= 1
                ),
                None,
            )
            assert tree.place(cpu, memory) == expected
            if expected is not None:
                scan[expected][0] -= cpu
                scan[expected][1] -= memory
                scan[expected][2] -= 1
        for scanned, leaf in zip(scan, tree.leaves(), strict=True):
            assert scanned == pytest.approx(list(leaf))


def test_a_cluster_without_nodes_has_no_room_and_places_nothing() -> None:
    waiting = pod("waiting", None, "1", "1Gi")
    report = analyze_fragmentation(snapshot([], [waiting]), shape_cpu="1")
    assert (report.nodes_considered, report.free_cpu_total, report.shape_fits_total) == (0, 0.0, 0)
    assert report.schedulable_shapes == ()
    result = repack(snapshot([], [waiting]), {})
    assert (result.unplaced, result.nodes_used, result.largest_schedulable_cpu) == (
        (PodRef("shop", "waiting"),),
        0,
        0.0,
    )

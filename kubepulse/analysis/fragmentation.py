"""Fragmentation: where requests leave room for another pod, and how to pack them tighter.

A cluster can have plenty of free CPU and memory in total and still be unable to place
one more pod, because the room is split over many nodes, or sits on nodes where the
*other* resource is used up. This module answers, from requests alone (what the
scheduler counts, never measured usage):

- the largest pod shape that still fits on some node (:func:`analyze_fragmentation`);
- stranded CPU or memory: free on a node where the other resource, or the pod slots,
  are exhausted, so nobody can use it;
- how many pods of a given shape fit, per node and cluster-wide;
- :func:`repack`: re-pack every movable pod with changed requests, first-fit
  decreasing, to show the nodes freed and the largest pod schedulable afterwards (the
  "what if applied" view of the recommendations).

Which nodes take new pods. A node is in the *pool* when it is not cordoned
(``spec.unschedulable``) and has no ``NoSchedule`` or ``NoExecute`` taint, except taints
whose key the caller lists in ``tolerated_taint_keys`` (for instance the
``kwok.x-k8s.io/node`` taint every kwok node carries and every kwok pod tolerates).
The snapshot's pods carry no tolerations or node selectors, so this is the view of a
pod that tolerates nothing and selects nothing; ``PreferNoSchedule`` is only a
preference and does not exclude a node. Only CPU, memory and the pod count are
considered: extended resources (GPUs), host ports, affinity and volume topology are not.

A node without allocatable CPU or memory cannot be reasoned about; it is listed as
missing data and left out of the pool, never treated as empty or full. A node without
allocatable ``pods`` has no known pod limit.

Units: CPU in cores, memory in bytes (floats, converted once from the exact quantities).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from kubepulse.analysis.inputs import ClusterSnapshot
from kubepulse.errors import KubepulseValueError
from kubepulse.model import CPU, MEMORY, PODS, Node, Pod
from kubepulse.quantity import QuantityError, cpu_cores, memory_bytes

__all__ = [
    "CPU_SLACK",
    "DEFAULT_EXHAUSTED_PERCENT",
    "MEMORY_SLACK",
    "FragmentationReport",
    "NodeRoom",
    "PodRef",
    "RepackResult",
    "RequestCache",
    "ShapeFit",
    "StrandedResource",
    "analyze_fragmentation",
    "free_room",
    "repack",
]

DEFAULT_EXHAUSTED_PERCENT: Final = 5.0
"""A resource counts as exhausted on a node when less than this share of its allocatable
amount is free (or no pod slot is left); what is free of the other resource is then
stranded."""

CPU_SLACK: Final = 1e-9
"""Cores of slack when asking whether a request fits: requests are converted from exact
quantities to floats, and sums of many drift by a few ulps."""
MEMORY_SLACK: Final = 0.5
"""Bytes of slack when asking whether a memory request fits (see :data:`CPU_SLACK`)."""
# Taint effects that keep a pod without the matching toleration off a node.
_BLOCKING_EFFECTS: Final = frozenset({"NoSchedule", "NoExecute"})
# Owners that tie a pod to its node: moving it elsewhere makes no sense.
_PINNING_OWNER_KINDS: Final = frozenset({"DaemonSet", "Node"})


@dataclass(frozen=True, slots=True, order=True)
class PodRef:
    """One pod by namespace and name."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class NodeRoom:
    """What the scheduler still has to hand out on one node, from requests.

    ``free_pods`` is ``None`` when the node reports no allocatable ``pods``.
    """

    node: str
    """The node's name."""
    schedulable: bool
    """Whether a pod that tolerates nothing may land here (see the module docstring)."""
    blocked_by: tuple[str, ...]
    """Why not: ``cordoned`` and ``taint <key>:<effect>`` entries; empty when schedulable."""
    allocatable_cpu: float
    """``status.allocatable.cpu``, cores."""
    allocatable_memory: float
    """``status.allocatable.memory``, bytes."""
    requested_cpu: float
    """Sum of the effective CPU requests of the active pods bound here, cores."""
    requested_memory: float
    """Sum of the effective memory requests of the active pods bound here, bytes."""
    pods: int
    """Active pods bound here."""
    allocatable_pods: int | None
    """``status.allocatable.pods``; ``None`` when absent."""

    @property
    def free_cpu(self) -> float:
        """Allocatable minus requested CPU, cores (negative when overcommitted)."""
        return self.allocatable_cpu - self.requested_cpu

    @property
    def free_memory(self) -> float:
        """Allocatable minus requested memory, bytes (negative when overcommitted)."""
        return self.allocatable_memory - self.requested_memory

    @property
    def free_pods(self) -> int | None:
        """Pod slots left; ``None`` when the node reports no pod limit."""
        if self.allocatable_pods is None:
            return None
        return self.allocatable_pods - self.pods


@dataclass(frozen=True, slots=True)
class StrandedResource:
    """Free CPU or memory on a node that no pod can use, because something else ran out."""

    node: str
    """The node."""
    resource: str
    """``cpu`` (cores) or ``memory`` (bytes): the resource left stranded."""
    amount: float
    """How much of it is free but unusable."""
    exhausted: str
    """What ran out: ``cpu``, ``memory`` or ``pods``."""


@dataclass(frozen=True, slots=True)
class ShapeFit:
    """How many pods of the requested shape fit on one node, and what limits it."""

    node: str
    """The node."""
    count: int
    """Pods of the shape that fit in the node's free room."""
    limited_by: str
    """The resource that runs out first: ``cpu``, ``memory`` or ``pods``."""


@dataclass(frozen=True, slots=True)
class FragmentationReport:
    """Free room in the cluster and how fragmented it is; see the module docstring."""

    nodes_considered: int
    """Nodes in the pool (schedulable, with allocatable CPU and memory)."""
    nodes_excluded: Mapping[str, tuple[str, ...]]
    """Nodes left out of the pool, with why (``cordoned``, ``taint …``)."""
    nodes_missing_allocatable: tuple[str, ...]
    """Nodes that report no allocatable CPU or memory: missing data, not analysed."""
    free_cpu_total: float
    """Free CPU summed over the pool, cores: what a perfectly divisible pod could use."""
    free_memory_total: float
    """Free memory summed over the pool, bytes."""
    largest_schedulable_cpu: float
    """The most CPU one new pod can request and still fit somewhere (with no memory
    request), cores; 0 when no node has a pod slot."""
    largest_schedulable_memory: float
    """The most memory one new pod can request and still fit somewhere (with no CPU
    request), bytes. Independent of :attr:`largest_schedulable_cpu`: the two maxima may
    sit on different nodes; :attr:`schedulable_shapes` gives the combinations."""
    schedulable_shapes: tuple[tuple[float, float], ...]
    """The largest ``(cpu cores, memory bytes)`` shapes that fit, one per node that is not
    dominated by another (the Pareto frontier), by decreasing CPU. Any pod at or below
    one of these fits."""
    stranded: tuple[StrandedResource, ...]
    """Free resources no pod can use, largest share of the node first."""
    stranded_cpu_total: float
    """Stranded CPU summed over the pool, cores."""
    stranded_memory_total: float
    """Stranded memory summed over the pool, bytes."""
    exhausted_percent: float
    """The threshold used for "exhausted" (see :data:`DEFAULT_EXHAUSTED_PERCENT`)."""
    shape_cpu: float | None
    """The CPU of the asked shape, cores; ``None`` when no shape was asked."""
    shape_memory: float | None
    """The memory of the asked shape, bytes; ``None`` when no shape was asked."""
    shape_fits_total: int | None
    """Pods of the asked shape that fit cluster-wide; ``None`` when no shape was asked."""
    shape_fits: tuple[ShapeFit, ...]
    """Per pool node, how many pods of the shape fit (nodes where some fit first, most
    first); empty when no shape was asked."""


@dataclass(frozen=True, slots=True)
class RepackResult:
    """The cluster re-packed with changed requests; see :func:`repack`."""

    nodes_used: int
    """Pool nodes that hold at least one movable pod after re-packing."""
    nodes_used_before: int
    """Pool nodes that hold at least one movable pod now, for comparison."""
    nodes_freed: tuple[str, ...]
    """Pool nodes left without movable pods (only DaemonSet and static pods), sorted: the
    nodes a cluster autoscaler could remove."""
    largest_schedulable_cpu: float
    """After re-packing: the most CPU one new pod can request and fit somewhere, cores."""
    largest_schedulable_memory: float
    """After re-packing: the most memory one new pod can request and fit somewhere,
    bytes (independent of the CPU figure; see :attr:`schedulable_shapes`)."""
    schedulable_shapes: tuple[tuple[float, float], ...]
    """After re-packing: the Pareto frontier of ``(cpu, memory)`` shapes that fit."""
    unplaced: tuple[PodRef, ...]
    """Movable pods that fit on no pool node with their (new) requests, sorted."""
    pods_placed: int
    """Movable pods placed on a pool node."""
    pods_pinned: int
    """Pods that stay where they are: DaemonSet and static pods, and pods on nodes outside
    the pool (their tolerations are unknown, so they are not moved)."""
    pods_changed: int
    """Pods whose requests the mapping replaced."""
    unknown_pods: tuple[PodRef, ...]
    """Keys of the mapping that name no active pod of the snapshot (deleted since?)."""
    nodes_missing_allocatable: tuple[str, ...]
    """Nodes that report no allocatable CPU or memory: left out of the packing."""


# ---------------------------------------------------------------------------- node room


def _float_amount(node: Node, resource: str) -> float | None:
    amount = node.allocatable.get(resource)
    return None if amount is None else float(amount)


def _blocked_by(node: Node, tolerated_taint_keys: Collection[str]) -> tuple[str, ...]:
    reasons: list[str] = []
    if node.unschedulable:
        reasons.append("cordoned")
    for taint in node.taints:
        if taint.effect in _BLOCKING_EFFECTS and taint.key not in tolerated_taint_keys:
            reasons.append(f"taint {taint.key}:{taint.effect}")
    return tuple(reasons)


class RequestCache:
    """Pods' effective requests as floats, and nodes' free room, shared within one call.

    The pods' figures are memoised on the pods themselves
    (:attr:`~kubepulse.model.Pod.request_amounts`, computed on first use), so they
    survive from one snapshot to the next for as long as the informer keeps the pod.
    :func:`free_room` keeps its answer here too, so that the node analysis and the
    fragmentation report it embeds walk the pods once between them.
    """

    __slots__ = ("_rooms",)

    def __init__(self) -> None:
        # Keyed by the snapshot's id() and the tolerated taints; the snapshot is kept in
        # the entry so that the id stays its own.
        self._rooms: dict[
            tuple[int, frozenset[str]],
            tuple[ClusterSnapshot, tuple[tuple[NodeRoom, ...], tuple[str, ...]]],
        ] = {}

    def of(self, pod: Pod) -> tuple[float, float, float]:
        """``(cpu cores, memory bytes, ephemeral-storage bytes)``, 0 where not requested."""
        return pod.request_amounts

    def cpu_memory(self, pod: Pod) -> tuple[float, float]:
        """``(cpu cores, memory bytes)`` requested."""
        cpu, memory, _ = pod.request_amounts
        return cpu, memory


def free_room(
    snapshot: ClusterSnapshot,
    *,
    tolerated_taint_keys: Collection[str] = (),
    cache: RequestCache | None = None,
) -> tuple[tuple[NodeRoom, ...], tuple[str, ...]]:
    """Each node's free room from requests, and the nodes missing allocatable CPU/memory.

    Returns ``(rooms, missing)``: a :class:`NodeRoom` for every node with allocatable
    CPU and memory, in snapshot order, and the names of the others. One pass over the
    active bound pods.
    """
    key = (id(snapshot), frozenset(tolerated_taint_keys))
    if cache is not None:
        known = cache._rooms.get(key)
        if known is not None and known[0] is snapshot:
            return known[1]
    rooms: list[NodeRoom] = []
    missing: list[str] = []
    for node in snapshot.nodes:
        allocatable_cpu = _float_amount(node, CPU)
        allocatable_memory = _float_amount(node, MEMORY)
        if allocatable_cpu is None or allocatable_memory is None:
            missing.append(node.name)
            continue
        requested_cpu = 0.0
        requested_memory = 0.0
        pods = snapshot.pods_on(node.name)
        for pod in pods:
            cpu, memory, _ = pod.request_amounts
            requested_cpu += cpu
            requested_memory += memory
        allocatable_pods = node.allocatable.get(PODS)
        blocked = _blocked_by(node, tolerated_taint_keys)
        rooms.append(
            NodeRoom(
                node=node.name,
                schedulable=not blocked,
                blocked_by=blocked,
                allocatable_cpu=allocatable_cpu,
                allocatable_memory=allocatable_memory,
                requested_cpu=requested_cpu,
                requested_memory=requested_memory,
                pods=len(pods),
                allocatable_pods=None if allocatable_pods is None else int(allocatable_pods),
            )
        )
    found = (tuple(rooms), tuple(missing))
    if cache is not None:
        cache._rooms[key] = (snapshot, found)
    return found


def _pareto(shapes: Iterable[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """The shapes no other shape dominates in both CPU and memory, by decreasing CPU."""
    frontier: list[tuple[float, float]] = []
    best_memory = -math.inf
    for cpu, memory in sorted(shapes, key=lambda shape: (-shape[0], -shape[1])):
        if memory > best_memory:
            frontier.append((cpu, memory))
            best_memory = memory
    return tuple(frontier)


def _shapes_that_fit(
    free: Iterable[tuple[float, float, float]],
) -> tuple[float, float, tuple[tuple[float, float], ...]]:
    """Largest CPU, largest memory and the frontier over ``(cpu, memory, pods)`` free."""
    candidates = [
        (max(cpu, 0.0), max(memory, 0.0))
        for cpu, memory, pods in free
        if pods >= 1 and cpu >= 0 and memory >= 0
    ]
    if not candidates:
        return 0.0, 0.0, ()
    return (
        max(cpu for cpu, _ in candidates),
        max(memory for _, memory in candidates),
        _pareto(candidates),
    )


# ---------------------------------------------------------------------------- fragmentation


def _parse_shape(shape_cpu: str | None, shape_memory: str | None) -> tuple[float, float] | None:
    if shape_cpu is None and shape_memory is None:
        return None
    try:
        cpu = 0.0 if shape_cpu is None else float(cpu_cores(shape_cpu))
    except QuantityError as exc:
        raise KubepulseValueError(f"shape_cpu: {exc}") from exc
    try:
        memory = 0.0 if shape_memory is None else float(memory_bytes(shape_memory))
    except QuantityError as exc:
        raise KubepulseValueError(f"shape_memory: {exc}") from exc
    if cpu <= 0 and memory <= 0:
        raise KubepulseValueError(
            f"the shape requests nothing (shape_cpu={shape_cpu!r}, shape_memory={shape_memory!r}); "
            "give a CPU or memory request above zero, such as shape_cpu='500m'"
        )
    return cpu, memory


def _fit_count(cpu: float, memory: float, room: NodeRoom) -> tuple[int, str]:
    """Pods of the shape that fit in the node's free room; the shape requests something."""
    limits: list[tuple[float, str]] = []
    if cpu > 0:
        limits.append((math.floor((max(room.free_cpu, 0.0) + CPU_SLACK) / cpu), CPU))
    if memory > 0:
        limits.append((math.floor((max(room.free_memory, 0.0) + MEMORY_SLACK) / memory), MEMORY))
    free_pods = room.free_pods
    if free_pods is not None:
        limits.append((max(free_pods, 0), PODS))
    count, limited_by = min(limits, key=lambda item: item[0])
    return int(count), limited_by


def analyze_fragmentation(
    snapshot: ClusterSnapshot,
    *,
    shape_cpu: str | None = None,
    shape_memory: str | None = None,
    exhausted_percent: float = DEFAULT_EXHAUSTED_PERCENT,
    tolerated_taint_keys: Collection[str] = (),
    cache: RequestCache | None = None,
) -> FragmentationReport:
    """How fragmented the free room of the cluster is; see the module docstring.

    Args:
        snapshot: the cluster's nodes and pods.
        shape_cpu: CPU request of a hypothetical pod as a quantity (``"500m"``); with
            ``shape_memory``, report how many such pods fit per node and cluster-wide.
            Either may be omitted (that resource is then not requested).
        shape_memory: memory request of the hypothetical pod (``"1Gi"``).
        exhausted_percent: below this share of allocatable free, a resource counts as
            exhausted on a node, stranding the other one. Between 0 and 100.
        tolerated_taint_keys: taint keys to ignore when deciding which nodes take pods.
        cache: requests already computed by the caller, to share across analyzers.

    Raises:
        KubepulseValueError: a shape is not a non-negative quantity, or
            ``exhausted_percent`` is out of range.
    """
    if not (0.0 <= exhausted_percent <= 100.0) or math.isnan(exhausted_percent):
        raise KubepulseValueError(
            f"exhausted_percent must be between 0 and 100, got {exhausted_percent}"
        )
    shape = _parse_shape(shape_cpu, shape_memory)
    rooms, missing = free_room(snapshot, tolerated_taint_keys=tolerated_taint_keys, cache=cache)
    pool = [room for room in rooms if room.schedulable]
    excluded = {room.node: room.blocked_by for room in rooms if not room.schedulable}

    largest_cpu, largest_memory, shapes = _shapes_that_fit(
        (
            room.free_cpu,
            room.free_memory,
            math.inf if room.free_pods is None else room.free_pods,
        )
        for room in pool
    )

    stranded: list[tuple[float, StrandedResource]] = []
    share = exhausted_percent / 100.0
    for room in pool:
        free_cpu = max(room.free_cpu, 0.0)
        free_memory = max(room.free_memory, 0.0)
        pods_out = room.free_pods is not None and room.free_pods <= 0
        cpu_out = free_cpu < share * room.allocatable_cpu or free_cpu <= CPU_SLACK
        memory_out = free_memory < share * room.allocatable_memory or free_memory <= MEMORY_SLACK
        if pods_out:
            for resource, amount, allocatable in (
                (CPU, free_cpu, room.allocatable_cpu),
                (MEMORY, free_memory, room.allocatable_memory),
            ):
                if amount > 0:
                    stranded.append(
                        (amount / allocatable, StrandedResource(room.node, resource, amount, PODS))
                    )
        elif cpu_out and not memory_out:
            stranded.append(
                (
                    free_memory / room.allocatable_memory,
                    StrandedResource(room.node, MEMORY, free_memory, CPU),
                )
            )
        elif memory_out and not cpu_out:
            stranded.append(
                (
                    free_cpu / room.allocatable_cpu,
                    StrandedResource(room.node, CPU, free_cpu, MEMORY),
                )
            )
    stranded.sort(key=lambda item: (-item[0], item[1].node, item[1].resource))

    shape_fits: list[ShapeFit] = []
    total: int | None = None
    if shape is not None:
        total = 0
        for room in pool:
            count, limited_by = _fit_count(shape[0], shape[1], room)
            shape_fits.append(ShapeFit(room.node, count, limited_by))
            total += count
        shape_fits.sort(key=lambda fit: (-fit.count, fit.node))

    return FragmentationReport(
        nodes_considered=len(pool),
        nodes_excluded=excluded,
        nodes_missing_allocatable=missing,
        free_cpu_total=math.fsum(max(room.free_cpu, 0.0) for room in pool),
        free_memory_total=math.fsum(max(room.free_memory, 0.0) for room in pool),
        largest_schedulable_cpu=largest_cpu,
        largest_schedulable_memory=largest_memory,
        schedulable_shapes=shapes,
        stranded=tuple(item for _, item in stranded),
        stranded_cpu_total=math.fsum(item.amount for _, item in stranded if item.resource == CPU),
        stranded_memory_total=math.fsum(
            item.amount for _, item in stranded if item.resource == MEMORY
        ),
        exhausted_percent=exhausted_percent,
        shape_cpu=None if shape is None else shape[0],
        shape_memory=None if shape is None else shape[1],
        shape_fits_total=total,
        shape_fits=tuple(shape_fits),
    )


# ---------------------------------------------------------------------------- repack


class _FirstFit:
    """First fit over nodes in a fixed order, without scanning every full node per pod.

    A segment tree keeps, per range of nodes, the largest free CPU, free memory and free
    pod slots found in it. A range whose maxima cannot hold the pod is skipped whole; the
    maxima of different resources may come from different nodes, so this only prunes,
    and every leaf is checked exactly. The answer is the first fitting node in order,
    exactly as a linear scan would give, in about ``log(nodes)`` steps for typical
    clusters instead of ``nodes``.
    """

    def __init__(self, free: list[tuple[float, float, float]]) -> None:
        self.count = len(free)
        size = 1
        while size < max(self.count, 1):
            size *= 2
        self.size = size
        self.cpu = [-math.inf] * (2 * size)
        self.memory = [-math.inf] * (2 * size)
        self.pods = [-math.inf] * (2 * size)
        for index, (cpu, memory, pods) in enumerate(free):
            self.cpu[size + index] = cpu
            self.memory[size + index] = memory
            self.pods[size + index] = pods
        for position in range(size - 1, 0, -1):
            self._pull(position)

    def _pull(self, position: int) -> None:
        left, right = 2 * position, 2 * position + 1
        self.cpu[position] = max(self.cpu[left], self.cpu[right])
        self.memory[position] = max(self.memory[left], self.memory[right])
        self.pods[position] = max(self.pods[left], self.pods[right])

    def _holds(self, position: int, cpu: float, memory: float) -> bool:
        return (
            self.cpu[position] + CPU_SLACK >= cpu
            and self.memory[position] + MEMORY_SLACK >= memory
            and self.pods[position] >= 1
        )

    def place(self, cpu: float, memory: float) -> int | None:
        """Take room for one pod on the first node that holds it; its index, or None."""
        if self.count == 0 or not self._holds(1, cpu, memory):
            return None
        # The hot loop of re-packing: locals and inlined checks, no method calls.
        free_cpu, free_memory, free_pods = self.cpu, self.memory, self.pods
        need_cpu, need_memory = cpu - CPU_SLACK, memory - MEMORY_SLACK
        size = self.size
        stack = [1]
        while stack:
            position = stack.pop()
            if (
                free_cpu[position] < need_cpu
                or free_memory[position] < need_memory
                or free_pods[position] < 1
            ):
                continue
            if position >= size:
                self._take(position, cpu, memory)
                return position - size
            stack.append(2 * position + 1)
            stack.append(2 * position)
        return None

    def _take(self, position: int, cpu: float, memory: float) -> None:
        free_cpu, free_memory, free_pods = self.cpu, self.memory, self.pods
        free_cpu[position] -= cpu
        free_memory[position] -= memory
        free_pods[position] -= 1
        position //= 2
        while position:
            left, right = 2 * position, 2 * position + 1
            best_cpu = max(free_cpu[left], free_cpu[right])
            best_memory = max(free_memory[left], free_memory[right])
            best_pods = max(free_pods[left], free_pods[right])
            if (
                best_cpu == free_cpu[position]
                and best_memory == free_memory[position]
                and best_pods == free_pods[position]
            ):
                # Unchanged here, so unchanged above: the maxima only ever shrink.
                return
            free_cpu[position] = best_cpu
            free_memory[position] = best_memory
            free_pods[position] = best_pods
            position //= 2

    def leaves(self) -> list[tuple[float, float, float]]:
        """The free room of every node, in order."""
        return [
            (self.cpu[self.size + i], self.memory[self.size + i], self.pods[self.size + i])
            for i in range(self.count)
        ]


def _is_pinned(pod: Pod) -> bool:
    owner = pod.controller_owner
    return pod.is_static or (owner is not None and owner.kind in _PINNING_OWNER_KINDS)


def _checked_request(ref: tuple[str, str], value: tuple[float, float]) -> tuple[float, float]:
    try:
        cpu, memory = (float(value[0]), float(value[1]))
    except (TypeError, ValueError, IndexError) as exc:
        raise KubepulseValueError(
            f"requests[{ref[0]}/{ref[1]}]: expected (cpu cores, memory bytes), got {value!r}"
        ) from exc
    if not (math.isfinite(cpu) and math.isfinite(memory)) or cpu < 0 or memory < 0:
        raise KubepulseValueError(
            f"requests[{ref[0]}/{ref[1]}]: cpu cores and memory bytes must be finite and "
            f"not negative, got ({cpu}, {memory})"
        )
    return cpu, memory


def repack(
    snapshot: ClusterSnapshot,
    requests: Mapping[tuple[str, str], tuple[float, float]],
    *,
    tolerated_taint_keys: Collection[str] = (),
) -> RepackResult:
    """Re-pack the cluster's pods with some requests replaced; first-fit decreasing.

    ``requests`` maps ``(namespace, pod)`` to ``(cpu cores, memory bytes)`` that replace
    that pod's effective CPU and memory requests; every other pod keeps its own. The
    other resources a pod requests are ignored (see the module docstring).

    The packing, a deterministic heuristic rather than the scheduler's scoring:

    1. Pinned pods stay where they are and take their room first: DaemonSet and static
       pods (tied to their node), and every pod bound to a node outside the pool
       (cordoned or tainted: its tolerations are unknown, so it is not moved).
    2. Movable pods are the other active pods, bound or pending (a pending pod gets a
       place if it now fits). They are sorted by decreasing size, the size being the
       larger of their CPU share and memory share of the largest pool node (the
       dominant share), ties broken by namespace and name.
    3. Pool nodes are ordered by decreasing allocatable CPU, then memory, then name, so
       that large nodes fill first and small ones are left empty.
    4. Each pod goes to the first node with room for its CPU, memory and a pod slot;
       one that fits nowhere is ``unplaced``.

    First-fit decreasing uses at most 11/9 of the optimal number of bins plus a small
    constant in one dimension (Dósa 2007), which makes ``nodes_freed`` a fair,
    slightly pessimistic estimate. It runs in ``O(pods log pods + pods log nodes)``
    on typical clusters.

    Raises:
        KubepulseValueError: a replacement is not two finite, non-negative numbers.
    """
    replaced = {ref: _checked_request(ref, value) for ref, value in requests.items()}
    cache = RequestCache()
    rooms, missing = free_room(snapshot, tolerated_taint_keys=tolerated_taint_keys, cache=cache)
    pool_rooms = [room for room in rooms if room.schedulable]
    pool_names = {room.node for room in pool_rooms}

    # Pinned room per pool node, and the movable pods with their (new) requests.
    pinned_cpu: dict[str, float] = dict.fromkeys(pool_names, 0.0)
    pinned_memory: dict[str, float] = dict.fromkeys(pool_names, 0.0)
    pinned_pods: dict[str, int] = dict.fromkeys(pool_names, 0)
    movable: list[tuple[float, float, str, str]] = []
    used_before: set[str] = set()
    pods_pinned = 0
    seen: set[tuple[str, str]] = set()
    for pod in snapshot.active_pods():
        ref = (pod.namespace, pod.name)
        seen.add(ref)
        new = replaced.get(ref)
        cpu, memory = new if new is not None else cache.cpu_memory(pod)
        node = pod.node_name
        if node is not None and node not in pool_names:
            # On a node outside the pool (or unknown / missing allocatable): stays put.
            pods_pinned += 1
            continue
        if node is None and pod.phase not in (None, "Pending"):
            continue
        if node is not None and _is_pinned(pod):
            pinned_cpu[node] += cpu
            pinned_memory[node] += memory
            pinned_pods[node] += 1
            pods_pinned += 1
            continue
        if node is not None:
            used_before.add(node)
        movable.append((cpu, memory, pod.namespace, pod.name))

    pool_rooms.sort(key=lambda room: (-room.allocatable_cpu, -room.allocatable_memory, room.node))
    largest_cpu = max((room.allocatable_cpu for room in pool_rooms), default=0.0) or 1.0
    largest_memory = max((room.allocatable_memory for room in pool_rooms), default=0.0) or 1.0
    movable.sort(
        key=lambda item: (
            -max(item[0] / largest_cpu, item[1] / largest_memory),
            -item[0],
            -item[1],
            item[2],
            item[3],
        )
    )
    fitter = _FirstFit(
        [
            (
                room.allocatable_cpu - pinned_cpu[room.node],
                room.allocatable_memory - pinned_memory[room.node],
                math.inf
                if room.allocatable_pods is None
                else float(room.allocatable_pods - pinned_pods[room.node]),
            )
            for room in pool_rooms
        ]
    )
    used_after: set[int] = set()
    unplaced: list[PodRef] = []
    for cpu, memory, namespace, name in movable:
        index = fitter.place(cpu, memory)
        if index is None:
            unplaced.append(PodRef(namespace, name))
        else:
            used_after.add(index)

    largest_free_cpu, largest_free_memory, shapes = _shapes_that_fit(fitter.leaves())
    return RepackResult(
        nodes_used=len(used_after),
        nodes_used_before=len(used_before),
        nodes_freed=tuple(
            sorted(room.node for index, room in enumerate(pool_rooms) if index not in used_after)
        ),
        largest_schedulable_cpu=largest_free_cpu,
        largest_schedulable_memory=largest_free_memory,
        schedulable_shapes=shapes,
        unplaced=tuple(sorted(unplaced)),
        pods_placed=len(movable) - len(unplaced),
        pods_pinned=pods_pinned,
        pods_changed=len(replaced.keys() & seen),
        unknown_pods=tuple(sorted(PodRef(*ref) for ref in replaced.keys() - seen)),
        nodes_missing_allocatable=missing,
    )

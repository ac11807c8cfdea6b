"""A synthetic kubepulse exporter: exporter-shaped ``/metrics`` for pods that do not exist.

Tests and the scale rig need the exporter's metrics (names, types, help texts and label
sets exactly as :mod:`kubepulse.catalog` defines them) for thousands of pods whose usage
is *known*: a test then checks that what the adapter or Prometheus computes from the
page is the usage it was given. :class:`SyntheticExporter` serves such a page on a
loopback port for a list of :class:`SyntheticPod` on :class:`SyntheticNode`, each
container following a deterministic :data:`Pattern`:

- :class:`Steady`: CPU and working set at a share of the container's requests;
- :class:`NearLimit`: CPU and working set at a share of the limits (above 100 % for
  "over the limit": the figures are what the page says, not what a kernel would allow);
- :class:`Throttled`: CPU at a share of the limit, a given share of CFS periods throttled;
- :class:`MemoryClimb`: the working set climbs linearly from a share of the memory
  limit to the limit, where the container is OOM-killed
  (``kubepulse_container_oom_kills_total`` and ``restarts_total`` go up by one,
  ``last_terminated_reason{reason="OOMKilled"}`` and its timestamp appear) and starts
  again from the bottom, every ``seconds_to_limit`` seconds.

Every figure is a function of the time elapsed since the exporter's ``epoch_s``, so two
scrapers reading it at different instants see one consistent set of counters:

- counters grow linearly: CPU seconds at the pattern's cores; CFS periods at 10 per
  second (the kernel's default 100 ms period) for a container with a CPU limit;
  throttled periods at the throttled share of those; throttled seconds at
  ``share x 0.1 s x limit cores`` per second (the time each throttled period held the
  container back, for a container that would use its whole limit); node pressure stall
  counters at each pressure share (``cpu_some`` is ``pressure_cpu_waiting``, ``*_full``
  the ``*_stalled`` counters, as the catalog says);
- gauges: requests and limits from the spec, the cgroup's limits
  (``cpu_limit_cores``, ``memory_limit_bytes``), the working set; per node its capacity,
  allocatable, ``memory_available_bytes`` = memory minus ``reserved_memory_bytes`` minus
  the working sets of its pods, and ephemeral storage capacity and available.

**Cheap at 50,000 pods.** The page is built once: every constant line (info, requests,
limits, steady working sets) is pre-rendered text, and every linearly growing counter
is a pre-rendered ``name{labels} `` prefix with its rate, so a scrape only formats one
float per counter line (and per line of a climbing container). Pages are served whole
at ``/metrics``, or per node at ``/nodes/<node>/metrics``, the size of one real
exporter's page, which is what a scraper of the scale rig should target (``/targets``
lists them as JSON).

**Changing a gauge at a known instant.** :meth:`SyntheticPage.set_gauge` (or a ``POST
/gauges`` with ``{"metric": ..., "labels": {...}, "value": ...}``) makes the matching
constant gauge series read another value from the next scrape on (``null``: back to the
pattern's value): the scale rig measures freshness, the time from such a change to the
adapter's answer, with it. The answer says when the change took effect (``applied_at``,
Unix seconds).

Run it by hand (from the repository root)::

    python -m tests.cluster.synthetic_exporter --pods 5000 --nodes 100 --port 9100
    python -m tests.cluster.synthetic_exporter --pods 10 --nodes 2 --print

It prints one JSON line (``{"url": ..., "pods": ..., "nodes": ...}``) when it serves,
and stops on Ctrl-C or SIGTERM. :func:`synthetic_cluster` makes the pods and nodes the
command uses: a deterministic mix of every pattern.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Final
from urllib.parse import unquote

from kubepulse.catalog import MetricSpec
from kubepulse.catalog import get as catalog_spec

__all__ = [
    "CFS_PERIODS_PER_SECOND",
    "ContainerUsage",
    "MemoryClimb",
    "NearLimit",
    "NodePressure",
    "Pattern",
    "Steady",
    "SyntheticContainer",
    "SyntheticExporter",
    "SyntheticNode",
    "SyntheticPage",
    "SyntheticPod",
    "Throttled",
    "main",
    "synthetic_cluster",
]

CFS_PERIODS_PER_SECOND: Final = 10.0
"""CFS enforcement periods per second: the kernel's default period is 100 ms."""
_CFS_PERIOD_S: Final = 1.0 / CFS_PERIODS_PER_SECOND
_MI: Final = 2**20
_GI: Final = 2**30


# ---------------------------------------------------------------------- patterns


@dataclass(frozen=True, slots=True)
class Steady:
    """CPU and working set at a constant share of the requests, in percent."""

    cpu_percent: float = 50.0
    memory_percent: float = 50.0


@dataclass(frozen=True, slots=True)
class NearLimit:
    """CPU and working set at a constant share of the limits, in percent (above 100: over)."""

    cpu_percent: float = 95.0
    memory_percent: float = 95.0


@dataclass(frozen=True, slots=True)
class Throttled:
    """CPU at ``cpu_percent`` of the limit with ``throttled_ratio`` of CFS periods throttled.

    The working set stays at ``memory_percent`` of the memory request.
    """

    cpu_percent: float = 100.0
    throttled_ratio: float = 0.4
    memory_percent: float = 50.0


@dataclass(frozen=True, slots=True)
class MemoryClimb:
    """The working set climbs from ``start_percent`` of the memory limit to the limit.

    It reaches the limit ``seconds_to_limit`` after each start, is OOM-killed there and
    starts again; CPU stays at ``cpu_percent`` of the request.
    """

    start_percent: float = 50.0
    seconds_to_limit: float = 600.0
    cpu_percent: float = 20.0


Pattern = Steady | NearLimit | Throttled | MemoryClimb
"""How a container uses its resources over time."""


@dataclass(frozen=True, slots=True)
class SyntheticContainer:
    """A container of a synthetic pod: its spec's requests and limits, and its pattern.

    CPU in cores, memory in bytes; ``None`` means not set.
    """

    name: str
    cpu_request: float | None = 0.25
    memory_request: float | None = 256 * _MI
    cpu_limit: float | None = 0.5
    memory_limit: float | None = 512 * _MI
    pattern: Pattern = field(default_factory=Steady)

    def __post_init__(self) -> None:
        needs: tuple[str, ...] = ()
        if isinstance(self.pattern, Steady):
            needs = ("cpu_request", "memory_request")
        elif isinstance(self.pattern, NearLimit):
            needs = ("cpu_limit", "memory_limit")
        elif isinstance(self.pattern, Throttled):
            needs = ("cpu_limit", "memory_request")
        else:
            needs = ("cpu_request", "memory_limit")
            if self.pattern.seconds_to_limit <= 0 or not 0 <= self.pattern.start_percent < 100:
                raise ValueError(
                    f"container {self.name}: a memory climb needs seconds_to_limit > 0 and "
                    f"0 <= start_percent < 100, got {self.pattern}"
                )
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(
                f"container {self.name}: the {type(self.pattern).__name__} pattern is a share "
                f"of {', '.join(missing)}, which it does not set"
            )


@dataclass(frozen=True, slots=True)
class SyntheticPod:
    """A pod bound to ``node``; its UID is derived from namespace and name."""

    namespace: str
    name: str
    node: str
    containers: tuple[SyntheticContainer, ...]

    @property
    def uid(self) -> str:
        """A stable UID, as the pod's ``metadata.uid``."""
        return str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"kubepulse-synthetic/{self.namespace}/{self.name}")
        )


@dataclass(frozen=True, slots=True)
class NodePressure:
    """The share of time stalled on each resource, ``[0, 1]`` (``some`` and ``full`` lines)."""

    cpu_some: float = 0.05
    memory_some: float = 0.02
    memory_full: float = 0.01
    io_some: float = 0.03
    io_full: float = 0.01


@dataclass(frozen=True, slots=True)
class SyntheticNode:
    """A node: capacity, what the system keeps, ephemeral storage and pressure stall."""

    name: str
    cpu_cores: float = 8.0
    memory_bytes: float = 32 * _GI
    reserved_memory_bytes: float = 2 * _GI
    pods: int = 110
    ephemeral_storage_bytes: float = 100 * _GI
    ephemeral_storage_available_bytes: float = 60 * _GI
    pressure: NodePressure = field(default_factory=NodePressure)


@dataclass(frozen=True, slots=True)
class ContainerUsage:
    """What a container's series say at one instant (for tests' expectations)."""

    cpu_cores: float
    cpu_seconds: float
    working_set_bytes: float
    cfs_periods: float | None
    throttled_periods: float | None
    oom_kills: int
    last_oom_kill_s: float | None


def _usage_rates(container: SyntheticContainer) -> tuple[float, float]:
    """The pattern's CPU in cores and its throttled share of CFS periods."""
    pattern = container.pattern
    if isinstance(pattern, Steady):
        assert container.cpu_request is not None
        return container.cpu_request * pattern.cpu_percent / 100, 0.0
    if isinstance(pattern, NearLimit):
        assert container.cpu_limit is not None
        return container.cpu_limit * pattern.cpu_percent / 100, 0.0
    if isinstance(pattern, Throttled):
        assert container.cpu_limit is not None
        return container.cpu_limit * pattern.cpu_percent / 100, pattern.throttled_ratio
    assert container.cpu_request is not None
    return container.cpu_request * pattern.cpu_percent / 100, 0.0


def _steady_working_set(container: SyntheticContainer) -> float | None:
    """The constant working set, ``None`` for a climbing one."""
    pattern = container.pattern
    if isinstance(pattern, Steady | Throttled):
        assert container.memory_request is not None
        return container.memory_request * pattern.memory_percent / 100
    if isinstance(pattern, NearLimit):
        assert container.memory_limit is not None
        return container.memory_limit * pattern.memory_percent / 100
    return None


def _climb(container: SyntheticContainer, elapsed_s: float) -> tuple[float, int]:
    """A climbing container's working set and completed OOM kills ``elapsed_s`` after epoch."""
    pattern = container.pattern
    assert isinstance(pattern, MemoryClimb)
    assert container.memory_limit is not None
    kills, into = divmod(max(0.0, elapsed_s), pattern.seconds_to_limit)
    bottom = container.memory_limit * pattern.start_percent / 100
    slope = (container.memory_limit - bottom) / pattern.seconds_to_limit
    return bottom + slope * into, int(kills)


def container_usage(container: SyntheticContainer, epoch_s: float, now_s: float) -> ContainerUsage:
    """What ``container``'s series say at ``now_s`` for an exporter started at ``epoch_s``."""
    elapsed = max(0.0, now_s - epoch_s)
    cores, throttled = _usage_rates(container)
    working_set = _steady_working_set(container)
    kills, last_kill = 0, None
    if working_set is None:
        working_set, kills = _climb(container, elapsed)
        if kills:
            assert isinstance(container.pattern, MemoryClimb)
            last_kill = epoch_s + kills * container.pattern.seconds_to_limit
    limited = container.cpu_limit is not None
    return ContainerUsage(
        cpu_cores=cores,
        cpu_seconds=cores * elapsed,
        working_set_bytes=working_set,
        cfs_periods=CFS_PERIODS_PER_SECOND * elapsed if limited else None,
        throttled_periods=throttled * CFS_PERIODS_PER_SECOND * elapsed if limited else None,
        oom_kills=kills,
        last_oom_kill_s=last_kill,
    )


# ---------------------------------------------------------------------- rendering


def _escape_label(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


@dataclass(frozen=True, slots=True)
class _Labels:
    """A label set rendered once (``a="1",b="2"``), with its names in order."""

    names: tuple[str, ...]
    text: str

    @classmethod
    def of(cls, **labels: str) -> _Labels:
        rendered = ",".join(f'{name}="{_escape_label(value)}"' for name, value in labels.items())
        return cls(tuple(labels), rendered)

    def plus(self, **labels: str) -> _Labels:
        extra = _Labels.of(**labels)
        return _Labels((*self.names, *extra.names), f"{self.text},{extra.text}")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _float(value: float) -> str:
    """A sample value as the text format writes it (``+Inf``, ``NaN``, ``1.5e+09``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


Dynamic = Callable[[float], float | None]
"""A series whose value is computed at each scrape from the elapsed seconds (None: absent)."""


@dataclass
class _NodeBlock:
    """One family's series of one node: constant text, linear counters, computed lines."""

    static: list[str] = field(default_factory=list)
    linear_prefixes: list[str] = field(default_factory=list)
    linear_rates: list[float] = field(default_factory=list)
    dynamic: list[tuple[str, Dynamic]] = field(default_factory=list)
    static_text: str = ""
    overrides: dict[str, float] = field(default_factory=dict)
    """Constant lines (by their ``name{labels} `` prefix) that read another value."""

    def freeze(self) -> None:
        self.static_text = "".join(self.static)
        self.static = []

    def render(self, elapsed_s: float, out: list[str]) -> None:
        if self.static_text:
            overrides = self.overrides  # replaced whole by set_gauge: read it once
            out.append(_overridden(self.static_text, overrides) if overrides else self.static_text)
        if self.linear_prefixes:
            out.append(
                "".join(
                    [
                        f"{prefix}{rate * elapsed_s!r}\n"
                        for prefix, rate in zip(
                            self.linear_prefixes, self.linear_rates, strict=True
                        )
                    ]
                )
            )
        for prefix, compute in self.dynamic:
            value = compute(elapsed_s)
            if value is not None:
                out.append(f"{prefix}{_float(value)}\n")


def _overridden(text: str, overrides: dict[str, float]) -> str:
    """``text`` with the value of each line starting with a prefix of ``overrides`` replaced."""
    for prefix, value in overrides.items():
        if text.startswith(prefix):
            start = 0
        else:
            start = text.find("\n" + prefix) + 1
            if start == 0:
                continue
        end = text.find("\n", start)
        text = f"{text[: start + len(prefix)]}{_float(value)}{text[end:]}"
    return text


class _Family:
    """One metric family of the page, with the series of every node."""

    def __init__(self, spec: MetricSpec) -> None:
        self.spec = spec
        self.header = (
            f"# HELP {spec.name} {_escape_help(spec.help)}\n# TYPE {spec.name} {spec.type.value}\n"
        )
        self.blocks: dict[str, _NodeBlock] = {}

    def _prefix(self, node: str, labels: _Labels) -> tuple[_NodeBlock, str]:
        if labels.names != self.spec.labels:
            raise ValueError(f"{self.spec.name} has labels {self.spec.labels}, not {labels.names}")
        block = self.blocks.get(node)
        if block is None:
            block = self.blocks[node] = _NodeBlock()
        return block, f"{self.spec.name}{{{labels.text}}} "

    def constant(self, node: str, labels: _Labels, value: float) -> None:
        block, prefix = self._prefix(node, labels)
        block.static.append(f"{prefix}{_float(value)}\n")

    def linear(self, node: str, labels: _Labels, rate: float) -> None:
        block, prefix = self._prefix(node, labels)
        block.linear_prefixes.append(prefix)
        block.linear_rates.append(float(rate))

    def computed(self, node: str, labels: _Labels, compute: Dynamic) -> None:
        block, prefix = self._prefix(node, labels)
        block.dynamic.append((prefix, compute))


class SyntheticPage:
    """The exposition text of every pod and node, built once, rendered per scrape.

    Args:
        pods: the pods (their nodes must be among ``nodes``).
        nodes: the nodes.
        epoch_s: the Unix time counters start from (all counters are zero then).

    Raises:
        ValueError: a pod is on an unknown node, or two pods share a namespace and name.
    """

    def __init__(
        self, pods: Sequence[SyntheticPod], nodes: Sequence[SyntheticNode], epoch_s: float
    ) -> None:
        self.epoch_s = epoch_s
        self.pods = tuple(pods)
        self.nodes = {node.name: node for node in nodes}
        self._families: dict[str, _Family] = {}
        seen: set[tuple[str, str]] = set()
        for pod in self.pods:
            if pod.node not in self.nodes:
                raise ValueError(f"pod {pod.namespace}/{pod.name} is on unknown node {pod.node!r}")
            if (pod.namespace, pod.name) in seen:
                raise ValueError(f"pod {pod.namespace}/{pod.name} is given twice")
            seen.add((pod.namespace, pod.name))
        for name in (
            "kubepulse_container_info",
            "kubepulse_container_cpu_usage_seconds_total",
            "kubepulse_container_cpu_cfs_periods_total",
            "kubepulse_container_cpu_cfs_throttled_periods_total",
            "kubepulse_container_cpu_cfs_throttled_seconds_total",
            "kubepulse_container_cpu_limit_cores",
            "kubepulse_container_memory_working_set_bytes",
            "kubepulse_container_memory_limit_bytes",
            "kubepulse_container_oom_kills_total",
            "kubepulse_container_resource_requests",
            "kubepulse_container_resource_limits",
            "kubepulse_container_restarts_total",
            "kubepulse_container_last_terminated_reason",
            "kubepulse_container_last_terminated_timestamp_seconds",
            "kubepulse_node_memory_total_bytes",
            "kubepulse_node_memory_available_bytes",
            "kubepulse_node_pressure_cpu_waiting_seconds_total",
            "kubepulse_node_pressure_memory_waiting_seconds_total",
            "kubepulse_node_pressure_memory_stalled_seconds_total",
            "kubepulse_node_pressure_io_waiting_seconds_total",
            "kubepulse_node_pressure_io_stalled_seconds_total",
            "kubepulse_node_status_capacity",
            "kubepulse_node_status_allocatable",
            "kubepulse_node_pods",
            "kubepulse_node_ephemeral_storage_capacity_bytes",
            "kubepulse_node_ephemeral_storage_available_bytes",
        ):
            self._families[name] = _Family(catalog_spec(name))
        climbing: dict[str, list[SyntheticContainer]] = {}
        steady_memory: dict[str, float] = dict.fromkeys(self.nodes, 0.0)
        pod_counts: dict[str, int] = dict.fromkeys(self.nodes, 0)
        for pod in self.pods:
            pod_counts[pod.node] += 1
            uid = pod.uid
            for container in pod.containers:
                working_set = self._add_container(pod, uid, container)
                if working_set is None:
                    climbing.setdefault(pod.node, []).append(container)
                else:
                    steady_memory[pod.node] += working_set
        for node in self.nodes.values():
            self._add_node(
                node, steady_memory[node.name], climbing.get(node.name, []), pod_counts[node.name]
            )
        for family in self._families.values():
            for block in family.blocks.values():
                block.freeze()

    def _family(self, name: str) -> _Family:
        return self._families[name]

    def _add_container(
        self, pod: SyntheticPod, uid: str, container: SyntheticContainer
    ) -> float | None:
        node = pod.node
        spec_labels = _Labels.of(
            namespace=pod.namespace, pod=pod.name, container=container.name, node=node
        )
        cgroup = spec_labels.plus(pod_uid=uid)
        family = self._family
        container_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{uid}/{container.name}").hex
        family("kubepulse_container_info").constant(
            node,
            cgroup.plus(
                container_id=f"containerd://{container_id}{container_id}",
                image="registry.example/synthetic:1",
                runtime="containerd",
            ),
            1.0,
        )
        cores, throttled = _usage_rates(container)
        family("kubepulse_container_cpu_usage_seconds_total").linear(node, cgroup, cores)
        if container.cpu_limit is not None:
            family("kubepulse_container_cpu_cfs_periods_total").linear(
                node, cgroup, CFS_PERIODS_PER_SECOND
            )
            family("kubepulse_container_cpu_cfs_throttled_periods_total").linear(
                node, cgroup, throttled * CFS_PERIODS_PER_SECOND
            )
            family("kubepulse_container_cpu_cfs_throttled_seconds_total").linear(
                node,
                cgroup,
                throttled * CFS_PERIODS_PER_SECOND * _CFS_PERIOD_S * container.cpu_limit,
            )
            family("kubepulse_container_cpu_limit_cores").constant(
                node, cgroup, container.cpu_limit
            )
        if container.memory_limit is not None:
            family("kubepulse_container_memory_limit_bytes").constant(
                node, cgroup, container.memory_limit
            )
        for resource, unit, request, limit in (
            ("cpu", "core", container.cpu_request, container.cpu_limit),
            ("memory", "byte", container.memory_request, container.memory_limit),
        ):
            labels = spec_labels.plus(resource=resource, unit=unit)
            if request is not None:
                family("kubepulse_container_resource_requests").constant(node, labels, request)
            if limit is not None:
                family("kubepulse_container_resource_limits").constant(node, labels, limit)
        working_set = _steady_working_set(container)
        if working_set is not None:
            family("kubepulse_container_memory_working_set_bytes").constant(
                node, cgroup, working_set
            )
            family("kubepulse_container_oom_kills_total").constant(node, cgroup, 0.0)
            family("kubepulse_container_restarts_total").constant(node, spec_labels, 0.0)
            return working_set
        pattern = container.pattern
        assert isinstance(pattern, MemoryClimb)
        period = pattern.seconds_to_limit

        def memory(elapsed: float) -> float:
            return _climb(container, elapsed)[0]

        def kills(elapsed: float) -> float:
            return float(_climb(container, elapsed)[1])

        def terminated(elapsed: float) -> float | None:
            return 1.0 if _climb(container, elapsed)[1] else None

        def terminated_at(elapsed: float) -> float | None:
            count = _climb(container, elapsed)[1]
            return self.epoch_s + count * period if count else None

        family("kubepulse_container_memory_working_set_bytes").computed(node, cgroup, memory)
        family("kubepulse_container_oom_kills_total").computed(node, cgroup, kills)
        family("kubepulse_container_restarts_total").computed(node, spec_labels, kills)
        family("kubepulse_container_last_terminated_reason").computed(
            node, spec_labels.plus(reason="OOMKilled"), terminated
        )
        family("kubepulse_container_last_terminated_timestamp_seconds").computed(
            node, spec_labels, terminated_at
        )
        return None

    def _add_node(
        self,
        node: SyntheticNode,
        steady_memory: float,
        climbing: list[SyntheticContainer],
        pod_count: int,
    ) -> None:
        name = node.name
        labels = _Labels.of(node=name)
        family = self._family
        family("kubepulse_node_memory_total_bytes").constant(name, labels, node.memory_bytes)
        base = node.memory_bytes - node.reserved_memory_bytes - steady_memory
        if climbing:

            def available(elapsed: float) -> float:
                return max(0.0, base - sum(_climb(one, elapsed)[0] for one in climbing))

            family("kubepulse_node_memory_available_bytes").computed(name, labels, available)
        else:
            family("kubepulse_node_memory_available_bytes").constant(name, labels, max(0.0, base))
        pressure = node.pressure
        for metric, share in (
            ("kubepulse_node_pressure_cpu_waiting_seconds_total", pressure.cpu_some),
            ("kubepulse_node_pressure_memory_waiting_seconds_total", pressure.memory_some),
            ("kubepulse_node_pressure_memory_stalled_seconds_total", pressure.memory_full),
            ("kubepulse_node_pressure_io_waiting_seconds_total", pressure.io_some),
            ("kubepulse_node_pressure_io_stalled_seconds_total", pressure.io_full),
        ):
            family(metric).linear(name, labels, share)
        for resource, unit, amount in (
            ("cpu", "core", node.cpu_cores),
            ("memory", "byte", node.memory_bytes),
            ("pods", "integer", float(node.pods)),
            ("ephemeral_storage", "byte", node.ephemeral_storage_bytes),
        ):
            resource_labels = labels.plus(resource=resource, unit=unit)
            family("kubepulse_node_status_capacity").constant(name, resource_labels, amount)
            allocatable = amount - node.reserved_memory_bytes if resource == "memory" else amount
            family("kubepulse_node_status_allocatable").constant(name, resource_labels, allocatable)
        family("kubepulse_node_pods").constant(name, labels, float(pod_count))
        family("kubepulse_node_ephemeral_storage_capacity_bytes").constant(
            name, labels, node.ephemeral_storage_bytes
        )
        family("kubepulse_node_ephemeral_storage_available_bytes").constant(
            name, labels, node.ephemeral_storage_available_bytes
        )

    def set_gauge(self, metric: str, labels: Mapping[str, str], value: float | None) -> int:
        """Serve ``value`` for the constant series of gauge ``metric`` that carry ``labels``.

        Every such series (``labels`` may be a subset of its labels, e.g. namespace and
        pod) reads ``value`` from the next render on; ``None`` restores the pattern's
        value. Returns how many series matched.

        Raises:
            ValueError: ``metric`` is not a gauge of the page.
        """
        family = self._families.get(metric)
        if family is None or family.spec.type.value != "gauge":
            gauges = sorted(
                name for name, one in self._families.items() if one.spec.type.value == "gauge"
            )
            raise ValueError(f"{metric!r} is not a gauge of the page; one of {', '.join(gauges)}")
        wanted = [f'{name}="{_escape_label(text)}"' for name, text in labels.items()]
        head = f"{metric}{{"
        matched = 0
        for block in family.blocks.values():
            overrides = dict(block.overrides)
            for line in block.static_text.splitlines():
                if not line.startswith(head):
                    continue
                prefix = line[: line.rindex(" ") + 1]
                label_text = prefix[len(head) : -2]
                if all(pair in label_text.split(",") for pair in wanted):
                    matched += 1
                    if value is None:
                        overrides.pop(prefix, None)
                    else:
                        overrides[prefix] = float(value)
            block.overrides = overrides
        return matched

    def render(self, now_s: float, node: str | None = None) -> str:
        """The page at ``now_s``: every node's series, or ``node``'s only.

        Raises:
            KeyError: ``node`` is not one of the nodes.
        """
        if node is not None and node not in self.nodes:
            raise KeyError(node)
        elapsed = max(0.0, now_s - self.epoch_s)
        out: list[str] = []
        for family in self._families.values():
            if node is None:
                blocks = list(family.blocks.values())
            else:
                blocks = [family.blocks[node]] if node in family.blocks else []
            if not blocks:
                continue
            out.append(family.header)
            for block in blocks:
                block.render(elapsed, out)
        return "".join(out)


# ---------------------------------------------------------------------- serving


class SyntheticExporter:
    """Serves a :class:`SyntheticPage` on ``host:port`` in a daemon thread.

    Use as a context manager (the server stops on exit). ``port=0`` picks a free port;
    :attr:`url` is the base URL. ``clock`` returns the Unix time a scrape sees.
    """

    def __init__(
        self,
        pods: Sequence[SyntheticPod],
        nodes: Sequence[SyntheticNode],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        epoch_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.page = SyntheticPage(pods, nodes, clock() if epoch_s is None else epoch_s)
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._send(200, "text/plain", b"ok\n")
                elif path == "/targets":
                    body = json.dumps(exporter.targets()).encode()
                    self._send(200, "application/json", body)
                elif path == "/metrics":
                    self._send_page(None)
                elif path.startswith("/nodes/") and path.endswith("/metrics"):
                    self._send_page(unquote(path[len("/nodes/") : -len("/metrics")]))
                else:
                    self._send(
                        404, "text/plain", b"try /metrics, /nodes/<node>/metrics or /targets\n"
                    )

            def do_POST(self) -> None:
                if self.path.split("?", 1)[0] != "/gauges":
                    self._send(404, "text/plain", b"POST /gauges only\n")
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    change = json.loads(self.rfile.read(length))
                    value = change.get("value")
                    matched = exporter.page.set_gauge(
                        str(change["metric"]),
                        {str(k): str(v) for k, v in dict(change.get("labels") or {}).items()},
                        None if value is None else float(value),
                    )
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    message = f'bad change ({exc}); send {{"metric": NAME, "labels": {{...}}, '
                    self._send(400, "text/plain", (message + '"value": NUMBER}\n').encode())
                    return
                applied = {"matched": matched, "applied_at": time.time()}
                self._send(200, "application/json", json.dumps(applied).encode())

            def _send_page(self, node: str | None) -> None:
                try:
                    text = exporter.page.render(exporter.clock(), node)
                except KeyError:
                    self._send(404, "text/plain", f"no node {node!r}\n".encode())
                    return
                self._send(200, "text/plain; version=0.0.4; charset=utf-8", text.encode())

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="synthetic-exporter", daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def targets(self) -> list[str]:
        """The per-node ``/metrics`` URLs, one per node."""
        return [f"{self.url}/nodes/{name}/metrics" for name in self.page.nodes]

    def start(self) -> SyntheticExporter:
        """Start serving in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> SyntheticExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------- a cluster


def synthetic_cluster(
    pods: int, nodes: int, namespaces: int = 10, *, climb_seconds: float = 600.0
) -> tuple[list[SyntheticPod], list[SyntheticNode]]:
    """``pods`` one-container pods spread round-robin over ``nodes`` and ``namespaces``.

    Patterns cycle deterministically over every 20 pods: 14 :class:`Steady` (10 % to
    90 % of requests), 2 :class:`NearLimit` (95 % and 105 %), 2 :class:`Throttled`
    (20 % and 60 % of periods), 1 :class:`MemoryClimb` (``climb_seconds`` to the limit)
    and 1 container without limits (steady at 30 %). Node pressure grows with the
    node's index so nodes are told apart.
    """
    if pods < 0 or nodes < 1 or namespaces < 1:
        raise ValueError(
            f"need pods >= 0, nodes >= 1, namespaces >= 1; got {pods}, {nodes}, {namespaces}"
        )
    node_list = [
        SyntheticNode(
            name=f"node-{index:04d}",
            pressure=NodePressure(
                cpu_some=0.01 * (index % 10 + 1),
                memory_some=0.005 * (index % 8 + 1),
                memory_full=0.002 * (index % 8 + 1),
                io_some=0.004 * (index % 6 + 1),
                io_full=0.001 * (index % 6 + 1),
            ),
        )
        for index in range(nodes)
    ]
    pod_list: list[SyntheticPod] = []
    for index in range(pods):
        slot = index % 20
        container: SyntheticContainer
        if slot < 14:
            percent = 10.0 + slot * 80.0 / 13
            container = SyntheticContainer("app", pattern=Steady(percent, percent))
        elif slot < 16:
            percent = 95.0 if slot == 14 else 105.0
            container = SyntheticContainer("app", pattern=NearLimit(percent, percent))
        elif slot < 18:
            ratio = 0.2 if slot == 16 else 0.6
            container = SyntheticContainer("app", pattern=Throttled(100.0, ratio))
        elif slot == 18:
            container = SyntheticContainer("app", pattern=MemoryClimb(50.0, climb_seconds, 20.0))
        else:
            container = SyntheticContainer(
                "app", cpu_limit=None, memory_limit=None, pattern=Steady(30.0, 30.0)
            )
        pod_list.append(
            SyntheticPod(
                namespace=f"team-{index % namespaces:02d}",
                name=f"pod-{index:06d}",
                node=node_list[index % nodes].name,
                containers=(container,),
            )
        )
    return pod_list, node_list


# ---------------------------------------------------------------------- the command


def main(argv: Sequence[str] | None = None) -> int:
    """Serve (or print) a synthetic cluster's exporter page; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.cluster.synthetic_exporter", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--namespaces", type=int, default=4)
    parser.add_argument("--climb-seconds", type=float, default=600.0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--print", action="store_true", help="print one page and exit")
    arguments = parser.parse_args(argv)
    pods, nodes = synthetic_cluster(
        arguments.pods, arguments.nodes, arguments.namespaces, climb_seconds=arguments.climb_seconds
    )
    if arguments.print:
        page = SyntheticPage(pods, nodes, time.time())
        sys.stdout.write(page.render(time.time()))
        return 0
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    with SyntheticExporter(pods, nodes, host=arguments.host, port=arguments.port) as exporter:
        print(json.dumps({"url": exporter.url, "pods": len(pods), "nodes": len(nodes)}), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The resource metrics API, ``metrics.k8s.io/v1beta1``, as metrics-server serves it.

With ``resource_metrics.enabled`` (``--resource-metrics-api``) the adapter can stand in
for metrics-server: ``kubectl top`` and HPAs with ``Resource`` metrics (cpu, memory) read
these routes through the ``v1beta1.metrics.k8s.io`` APIService::

    GET /apis/metrics.k8s.io/v1beta1/nodes[?labelSelector=...]
    GET /apis/metrics.k8s.io/v1beta1/nodes/<name>
    GET /apis/metrics.k8s.io/v1beta1/pods[?labelSelector=...&fieldSelector=...]
    GET /apis/metrics.k8s.io/v1beta1/namespaces/<ns>/pods[?labelSelector=...]
    GET /apis/metrics.k8s.io/v1beta1/namespaces/<ns>/pods/<name>

The bodies are those of ``k8s.io/metrics/pkg/apis/metrics/v1beta1``: ``NodeMetricsList``
and ``PodMetricsList`` whose items carry ``metadata`` (name, namespace for pods,
``creationTimestamp``), ``timestamp`` (the newest sample used), ``window`` (a Go
duration string such as ``30s``) and ``usage`` (``cpu`` and ``memory`` quantities:
``NodeMetrics.usage``, per container in ``PodMetrics.containers[].usage``). A single
object is the same item with ``kind`` and ``apiVersion``.

Where the numbers come from (the exporter's catalog, :mod:`kubepulse.catalog`):

- pod containers: ``cpu`` is the per-second rate of
  ``kubepulse_container_cpu_usage_seconds_total`` over the window, ``memory`` the last
  ``kubepulse_container_memory_working_set_bytes``, per ``container`` label (the pause
  container, ``POD``, and pod-level series without a container name are left out, as the
  kubelet's summary API leaves them out of metrics-server's answer);
- nodes: ``cpu`` is the rate of the *busy* modes of ``kubepulse_node_cpu_seconds_total``
  (every mode but ``idle``, ``iowait`` and ``steal``: time the node's CPUs did work, as
  the root cgroup's usage metrics-server reads), ``memory`` the node's working set,
  ``kubepulse_node_memory_total_bytes`` minus ``kubepulse_node_memory_available_bytes``.

The window is two scrape intervals, at least 30 s (:attr:`ApiSettings.resource_metrics_window_ms`),
so that a rate always has two samples. As metrics-server does, an object without fresh
values of both resources is left out of lists and answers 404 by name, so an HPA holds
instead of scaling on stale data. ``labelSelector`` selects pods and nodes by *their*
labels (through the adapter's object resolver); ``fieldSelector`` takes
``metadata.name`` and ``metadata.namespace`` (``=``, ``==``, ``!=``); anything else is a
400 ``Status``.

A series request groups by one label, so per-container values take one CPU and one
memory query per container *name* of a namespace, grouped by pod (plus one to list the
names): a Deployment's hundred replicas cost as much as one pod. The embedded source
answers them from memory, the Prometheus source with one PromQL request each.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, FastAPI, Query

from adapter.api.common import (
    check_namespace,
    check_object_name,
    check_selector_text,
    rfc3339,
)
from adapter.api.context import ApiContext, get_context
from adapter.api.status import BadRequestError, NotFoundError, StatusRoute
from adapter.objects import NODES, PODS
from adapter.sources.base import MetricNotFoundError
from kubepulse.metricquery import (
    NAMESPACE_LABEL,
    NODE_LABEL,
    POD_LABEL,
    ObjectValue,
    SeriesRequest,
    Statistic,
)
from kubepulse.quantity import format_quantity
from kubepulse.selector import (
    LabelSelector,
    Operator,
    Requirement,
    SelectorError,
    parse_selector,
)
from kubepulse.stats.aggregate import Aggregation, AggregationKind

__all__ = [
    "CONTAINER_CPU_METRIC",
    "CONTAINER_MEMORY_METRIC",
    "NODE_CPU_IDLE_MODES",
    "NODE_CPU_METRIC",
    "NODE_MEMORY_AVAILABLE_METRIC",
    "NODE_MEMORY_TOTAL_METRIC",
    "RESOURCE_METRICS_GROUP",
    "RESOURCE_METRICS_VERSION",
    "FieldSelector",
    "describe_resource_metrics",
    "go_duration",
    "install_resource_metrics",
    "parse_field_selector",
    "resource_metrics_api_group",
    "resource_metrics_resources",
    "router",
]

RESOURCE_METRICS_GROUP: Final = "metrics.k8s.io"
RESOURCE_METRICS_VERSION: Final = "v1beta1"
_GROUP_VERSION: Final = f"{RESOURCE_METRICS_GROUP}/{RESOURCE_METRICS_VERSION}"
_PREFIX: Final = f"/apis/{_GROUP_VERSION}"

CONTAINER_CPU_METRIC: Final = "kubepulse_container_cpu_usage_seconds_total"
CONTAINER_MEMORY_METRIC: Final = "kubepulse_container_memory_working_set_bytes"
NODE_CPU_METRIC: Final = "kubepulse_node_cpu_seconds_total"
NODE_MEMORY_TOTAL_METRIC: Final = "kubepulse_node_memory_total_bytes"
NODE_MEMORY_AVAILABLE_METRIC: Final = "kubepulse_node_memory_available_bytes"
NODE_CPU_IDLE_MODES: Final = frozenset({"idle", "iowait", "steal"})
"""Modes of ``kubepulse_node_cpu_seconds_total`` that are not work done by the node."""

_CONTAINER_LABEL: Final = "container"
_MODE_LABEL: Final = "mode"
_NOT_CONTAINERS: Final = frozenset({"", "POD"})
"""``container`` values that are not a pod's containers: the pod cgroup, the pause container."""
_FIELDS: Final = ("metadata.name", "metadata.namespace")

_RATE: Final = Aggregation(AggregationKind.RATE)
_LAST: Final = Aggregation(AggregationKind.LAST)

router = APIRouter(route_class=StatusRoute, tags=["resource metrics"])
Context = Annotated[ApiContext, Depends(get_context)]
LabelSelectorParameter = Annotated[
    str,
    Query(alias="labelSelector", description="Which objects, by their labels."),
]
FieldSelectorParameter = Annotated[
    str,
    Query(
        alias="fieldSelector",
        description="Which objects, by metadata.name and metadata.namespace (=, ==, !=).",
    ),
]


def resource_metrics_api_group() -> dict[str, Any]:
    """The ``APIGroup`` body of ``metrics.k8s.io`` (without ``kind``/``apiVersion``)."""
    version = {"groupVersion": _GROUP_VERSION, "version": RESOURCE_METRICS_VERSION}
    return {"name": RESOURCE_METRICS_GROUP, "versions": [version], "preferredVersion": version}


def resource_metrics_resources() -> list[dict[str, Any]]:
    """The ``APIResourceList`` entries of ``metrics.k8s.io/v1beta1``, as metrics-server's."""
    return [
        {
            "name": "nodes",
            "singularName": "",
            "namespaced": False,
            "kind": "NodeMetrics",
            "verbs": ["get", "list"],
        },
        {
            "name": "pods",
            "singularName": "",
            "namespaced": True,
            "kind": "PodMetrics",
            "verbs": ["get", "list"],
        },
    ]


def go_duration(milliseconds: int) -> str:
    """``milliseconds`` as Go's ``time.Duration.String()`` writes it (``metav1.Duration``).

    ``30000`` is ``30s``, ``60000`` is ``1m0s``, ``90500`` is ``1m30.5s``, ``0`` is ``0s``.
    """
    if milliseconds == 0:
        return "0s"
    sign = "-" if milliseconds < 0 else ""
    remaining = abs(milliseconds)
    if remaining < 1000:
        return f"{sign}{remaining}ms"
    hours, remaining = divmod(remaining, 3_600_000)
    minutes, remaining = divmod(remaining, 60_000)
    seconds, millis = divmod(remaining, 1000)
    text = f"{seconds}.{millis:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


@dataclass(frozen=True)
class FieldSelector:
    """The ``fieldSelector`` of a pod or node list: what name and namespace must be."""

    requirements: tuple[tuple[str, bool, str], ...] = ()
    """``(field, equal, value)``: ``field`` is ``metadata.name`` or ``metadata.namespace``;
    ``equal`` false for ``!=``."""

    def matches(self, name: str, namespace: str | None) -> bool:
        """Whether an object called ``name`` in ``namespace`` is selected."""
        fields = {"metadata.name": name, "metadata.namespace": namespace or ""}
        return all((fields[field] == value) is equal for field, equal, value in self.requirements)

    def namespace(self) -> str | None:
        """The one namespace an ``=`` requirement restricts the selection to, if any."""
        for field, equal, value in self.requirements:
            if field == "metadata.namespace" and equal:
                return value
        return None


def parse_field_selector(text: str) -> FieldSelector:
    """``fieldSelector`` as kube-apiserver reads it, for the fields metrics objects have.

    Raises:
        BadRequestError: a requirement is malformed or names another field.
    """
    requirements = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        if "!=" in part:
            field, _, value = part.partition("!=")
            equal = False
        elif "==" in part:
            field, _, value = part.partition("==")
            equal = True
        elif "=" in part:
            field, _, value = part.partition("=")
            equal = True
        else:
            raise BadRequestError(
                f"invalid fieldSelector requirement {part!r}: write field=value, field==value "
                "or field!=value"
            )
        field, value = field.strip(), value.strip()
        if field not in _FIELDS:
            raise BadRequestError(
                f"fieldSelector field {field!r} is not supported for metrics objects; use "
                f"{' or '.join(_FIELDS)}"
            )
        requirements.append((field, equal, value))
    return FieldSelector(tuple(requirements))


# ---------------------------------------------------------------------- queries


def _cpu_statistic(context: ApiContext) -> Statistic:
    return Statistic(window_ms=context.settings.resource_metrics_window_ms, aggregation=_RATE)


def _memory_statistic(context: ApiContext) -> Statistic:
    return Statistic(window_ms=context.settings.resource_metrics_window_ms, aggregation=_LAST)


async def _query(context: ApiContext, request: SeriesRequest, now_ms: int) -> list[ObjectValue]:
    """The source's answer; a metric without any series is no data, not an error."""
    try:
        return await context.source.query(request, now_ms)
    except MetricNotFoundError:
        return []


def _by_name(values: Iterable[ObjectValue]) -> dict[str, ObjectValue]:
    return {value.name: value for value in values}


@dataclass(frozen=True)
class _Usage:
    """One object's (or container's) usage: cores, bytes, when and over what window."""

    cpu_cores: float
    memory_bytes: float
    timestamp_ms: int
    window_ms: int

    def usage(self) -> dict[str, str]:
        return {
            "cpu": format_quantity(max(0.0, self.cpu_cores)),
            "memory": format_quantity(float(math.floor(max(0.0, self.memory_bytes))), binary=True),
        }


def _join(cpu: Mapping[str, ObjectValue], memory: Mapping[str, ObjectValue]) -> dict[str, _Usage]:
    """The objects with both a CPU and a memory value, as metrics-server requires."""
    joined = {}
    for name in sorted(cpu.keys() & memory.keys()):
        joined[name] = _Usage(
            cpu[name].value,
            memory[name].value,
            max(cpu[name].timestamp_ms, memory[name].timestamp_ms),
            cpu[name].window_ms,
        )
    return joined


async def _node_usage(
    context: ApiContext, names: frozenset[str] | None, now_ms: int
) -> dict[str, _Usage]:
    busy = LabelSelector((Requirement(_MODE_LABEL, Operator.NOT_IN, NODE_CPU_IDLE_MODES),))
    cpu = await _query(
        context,
        SeriesRequest(
            NODE_CPU_METRIC,
            _cpu_statistic(context),
            series_selector=busy,
            object_label=NODE_LABEL,
            object_names=names,
        ),
        now_ms,
    )
    memory: dict[str, list[ObjectValue]] = {}
    for metric in (NODE_MEMORY_TOTAL_METRIC, NODE_MEMORY_AVAILABLE_METRIC):
        request = SeriesRequest(
            metric, _memory_statistic(context), object_label=NODE_LABEL, object_names=names
        )
        memory[metric] = await _query(context, request, now_ms)
    total = _by_name(memory[NODE_MEMORY_TOTAL_METRIC])
    available = _by_name(memory[NODE_MEMORY_AVAILABLE_METRIC])
    working_set = {
        name: ObjectValue(
            name,
            max(total[name].timestamp_ms, available[name].timestamp_ms),
            max(0.0, total[name].value - available[name].value),
            total[name].window_ms,
        )
        for name in total.keys() & available.keys()
    }
    return _join(_by_name(cpu), working_set)


async def _container_names(context: ApiContext, namespace: str, now_ms: int) -> list[str]:
    """The names of the containers of ``namespace`` with a fresh working set, in any pod."""
    request = SeriesRequest(
        CONTAINER_MEMORY_METRIC,
        _memory_statistic(context),
        namespace=namespace,
        object_label=_CONTAINER_LABEL,
    )
    found = await _query(context, request, now_ms)
    return sorted(value.name for value in found if value.name not in _NOT_CONTAINERS)


async def _pod_usage(
    context: ApiContext, namespace: str, pods: frozenset[str] | None, now_ms: int
) -> dict[str, dict[str, _Usage]]:
    """Pod -> container -> usage in ``namespace`` (only ``pods`` when given), fresh ones.

    One pair of queries per container *name*, grouped by pod: a pod's name may be longer
    than a label value may be (253 against 63 characters), a container's never is.
    """
    usage: dict[str, dict[str, _Usage]] = {}
    for container in await _container_names(context, namespace, now_ms):
        try:
            only = LabelSelector(
                (Requirement(_CONTAINER_LABEL, Operator.EQUALS, frozenset({container})),)
            )
        except SelectorError:
            continue  # not a Kubernetes container name: not a container of a pod
        values = []
        for metric, statistic in (
            (CONTAINER_CPU_METRIC, _cpu_statistic(context)),
            (CONTAINER_MEMORY_METRIC, _memory_statistic(context)),
        ):
            request = SeriesRequest(
                metric,
                statistic,
                namespace=namespace,
                series_selector=only,
                object_label=POD_LABEL,
                object_names=pods,
            )
            values.append(_by_name(await _query(context, request, now_ms)))
        for pod, joined in _join(values[0], values[1]).items():
            usage.setdefault(pod, {})[container] = joined
    return dict(sorted(usage.items()))


async def _namespaces_with_data(context: ApiContext, now_ms: int) -> list[str]:
    """The namespaces whose containers have fresh values."""
    request = SeriesRequest(
        CONTAINER_MEMORY_METRIC, _memory_statistic(context), object_label=NAMESPACE_LABEL
    )
    return sorted(value.name for value in await _query(context, request, now_ms) if value.name)


# ---------------------------------------------------------------------- documents


def _node_item(name: str, usage: _Usage, now_ms: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": rfc3339(now_ms)},
        "timestamp": rfc3339(usage.timestamp_ms),
        "window": go_duration(usage.window_ms),
        "usage": usage.usage(),
    }


def _pod_item(
    namespace: str, name: str, containers: Mapping[str, _Usage], now_ms: int
) -> dict[str, Any]:
    newest = max(usage.timestamp_ms for usage in containers.values())
    window = max(usage.window_ms for usage in containers.values())
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": rfc3339(now_ms),
        },
        "timestamp": rfc3339(newest),
        "window": go_duration(window),
        "containers": [
            {"name": container, "usage": usage.usage()}
            for container, usage in sorted(containers.items())
        ],
    }


def _single(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": _GROUP_VERSION, **item}


def _list(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": _GROUP_VERSION, "metadata": {}, "items": items}


def _not_found(resource: str, name: str) -> NotFoundError:
    return NotFoundError(
        f"{resource} {name!r} has no fresh metrics: it does not exist, or its exporter has "
        "not been scraped within the staleness limit (check the adapter's scrape targets)",
        details={"name": name, "group": RESOURCE_METRICS_GROUP, "kind": resource},
    )


def _label_selector(context: ApiContext, text: str) -> LabelSelector:
    return parse_selector(
        check_selector_text(text, "labelSelector", context.settings.max_selector_length)
    )


def _field_selector(context: ApiContext, text: str) -> FieldSelector:
    return parse_field_selector(
        check_selector_text(text, "fieldSelector", context.settings.max_selector_length)
    )


# ---------------------------------------------------------------------- OpenAPI

_USAGE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["cpu", "memory"],
    "properties": {
        "cpu": {"type": "string", "description": "cores, a Kubernetes quantity (250m)"},
        "memory": {"type": "string", "description": "bytes, a Kubernetes quantity (512Mi)"},
    },
}
_RESOURCE_METRICS_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "description": "NodeMetrics, PodMetrics or their lists (k8s.io/metrics v1beta1).",
    "required": ["kind", "apiVersion"],
    "properties": {
        "kind": {
            "type": "string",
            "enum": ["NodeMetrics", "NodeMetricsList", "PodMetrics", "PodMetricsList"],
        },
        "apiVersion": {"type": "string", "enum": [_GROUP_VERSION]},
        "metadata": {"type": "object"},
        "timestamp": {"type": "string"},
        "window": {"type": "string"},
        "usage": _USAGE_SCHEMA,
        "containers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "usage"],
                "properties": {"name": {"type": "string"}, "usage": _USAGE_SCHEMA},
            },
        },
        "items": {"type": "array", "items": {"type": "object"}},
    },
}


def describe_resource_metrics(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the real success shape of this group's operations; in place.

    Runs after :func:`adapter.api.openapi.describe_responses`, which gives every
    operation its ``Status`` failures; only the ``200`` answer is replaced here.
    """
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["ResourceMetrics"] = _RESOURCE_METRICS_SCHEMA
    for path, operations in document.get("paths", {}).items():
        if not path.startswith(f"{_PREFIX}/"):
            continue
        for operation in operations.values():
            operation.setdefault("responses", {})["200"] = {
                "description": "the answer",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ResourceMetrics"}}
                },
            }
    return document


def install_resource_metrics(app: FastAPI) -> None:
    """Serve this group's routes in ``app``, and describe them in ``app.openapi()``.

    Call it after :func:`adapter.api.openapi.install_openapi`.
    """
    app.include_router(router)
    described = app.openapi

    def openapi() -> dict[str, Any]:
        return describe_resource_metrics(described())

    app.openapi = openapi  # type: ignore[method-assign]


# ---------------------------------------------------------------------- routes


@router.get(f"{_PREFIX}/nodes", summary="Usage of every node (NodeMetricsList)")
async def list_nodes(
    *,
    context: Context,
    label_selector: LabelSelectorParameter = "",
    field_selector: FieldSelectorParameter = "",
) -> dict[str, Any]:
    """CPU and memory usage of the nodes with fresh data, those matching the selectors."""
    selector = _label_selector(context, label_selector)
    fields = _field_selector(context, field_selector)
    now_ms = context.clock()
    names: frozenset[str] | None = None
    if not selector.is_empty:
        resolved = await context.objects.resolve(NODES, None, None, selector)
        names = frozenset(node.ref.name for node in resolved)
    usage = await _node_usage(context, names, now_ms) if names != frozenset() else {}
    items = [
        _node_item(name, node, now_ms) for name, node in usage.items() if fields.matches(name, None)
    ]
    return _list("NodeMetricsList", items)


@router.get(f"{_PREFIX}/nodes/{{name}}", summary="Usage of one node (NodeMetrics)")
async def get_node(*, name: str, context: Context) -> dict[str, Any]:
    """CPU and memory usage of the node ``name``; 404 without fresh data."""
    checked = check_object_name(name, "node")
    if checked is None:
        raise BadRequestError("give a node name, or list /nodes for every node")
    now_ms = context.clock()
    usage = await _node_usage(context, frozenset({checked}), now_ms)
    if checked not in usage:
        raise _not_found("nodes", checked)
    return _single("NodeMetrics", _node_item(checked, usage[checked], now_ms))


async def _pod_list(
    context: Context, namespace: str | None, label_selector: str, field_selector: str
) -> dict[str, Any]:
    selector = _label_selector(context, label_selector)
    fields = _field_selector(context, field_selector)
    now_ms = context.clock()
    if namespace is None:
        namespace = fields.namespace()
        if namespace is not None:
            check_namespace(namespace)
    namespaces = [namespace] if namespace else await _namespaces_with_data(context, now_ms)
    items = []
    for scope in namespaces:
        names: frozenset[str] | None = None
        if not selector.is_empty:
            resolved = await context.objects.resolve(PODS, scope, None, selector)
            names = frozenset(pod.ref.name for pod in resolved)
            if not names:
                continue
        for pod, containers in (await _pod_usage(context, scope, names, now_ms)).items():
            if fields.matches(pod, scope):
                items.append(_pod_item(scope, pod, containers, now_ms))
    return _list("PodMetricsList", items)


@router.get(f"{_PREFIX}/pods", summary="Usage of every pod (PodMetricsList)")
async def list_all_pods(
    *,
    context: Context,
    label_selector: LabelSelectorParameter = "",
    field_selector: FieldSelectorParameter = "",
) -> dict[str, Any]:
    """Per-container usage of the pods with fresh data in every namespace."""
    return await _pod_list(context, None, label_selector, field_selector)


@router.get(
    f"{_PREFIX}/namespaces/{{namespace}}/pods",
    summary="Usage of the pods of a namespace (PodMetricsList)",
)
async def list_pods(
    *,
    namespace: str,
    context: Context,
    label_selector: LabelSelectorParameter = "",
    field_selector: FieldSelectorParameter = "",
) -> dict[str, Any]:
    """Per-container usage of the pods with fresh data in ``namespace``."""
    check_namespace(namespace)
    return await _pod_list(context, namespace, label_selector, field_selector)


@router.get(
    f"{_PREFIX}/namespaces/{{namespace}}/pods/{{name}}",
    summary="Usage of one pod (PodMetrics)",
)
async def get_pod(*, namespace: str, name: str, context: Context) -> dict[str, Any]:
    """Per-container usage of the pod ``name``; 404 without fresh data."""
    check_namespace(namespace)
    checked = check_object_name(name, "pod")
    if checked is None:
        raise BadRequestError(f"give a pod name, or list /namespaces/{namespace}/pods")
    now_ms = context.clock()
    containers = (await _pod_usage(context, namespace, frozenset({checked}), now_ms)).get(checked)
    if not containers:
        raise _not_found("pods", checked)
    return _single("PodMetrics", _pod_item(namespace, checked, containers, now_ms))

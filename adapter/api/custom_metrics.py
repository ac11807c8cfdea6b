"""``custom.metrics.k8s.io`` (v1beta2 and v1beta1): metrics of Kubernetes objects.

Paths, as kube-apiserver forwards them (DESIGN.md, Contract 2)::

    /apis/custom.metrics.k8s.io/<v>/namespaces/<ns>/<resource>/<name|*>/<metric>
    /apis/custom.metrics.k8s.io/<v>/<resource>/<name|*>/<metric>      (nodes, namespaces)
    /apis/custom.metrics.k8s.io/<v>/namespaces/<ns>/metrics/<metric>  (the namespace itself)

with the query parameters ``labelSelector`` (which objects, with ``*``) and
``metricLabelSelector`` (which series, plus the reserved ``kubepulse.io/*`` keys that
choose the statistic). The answer is a ``MetricValueList``, one item per object with a
fresh value, sorted by name:

- pods: the ``sum by (pod)`` of their series' statistic;
- Deployments, StatefulSets, ReplicaSets: one value over all the pods their
  ``spec.selector`` matches (rates and levels add up; histogram percentiles are taken
  over the buckets of every pod together);
- nodes and namespaces: over the series labelled with their name.

Items differ by version: v1beta1 has ``metricName``, ``window`` and a ``selector``
(``null`` when none); v1beta2 has ``metric: {name, selector}`` and ``windowSeconds``.
Both carry ``describedObject``, ``timestamp`` (RFC 3339, when the newest sample used was
taken) and ``value`` (a canonical Quantity: ``500m``). No fresh value for any object is
a 404, as is an unknown metric, resource or object.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query

from adapter.api.common import (
    CUSTOM_GROUP,
    CUSTOM_VERSIONS,
    check_namespace,
    check_object_name,
    metric_request,
    object_selector,
    rfc3339,
    selector_to_api,
)
from adapter.api.context import ApiContext, get_context
from adapter.api.status import BadRequestError, NotFoundError, StatusRoute
from adapter.objects import NAMESPACES, NODES, PODS, ResolvedObject, parse_resource
from kubepulse.metricquery import (
    NAMESPACE_LABEL,
    NODE_LABEL,
    POD_LABEL,
    ObjectValue,
    ParsedMetric,
    SeriesRequest,
)
from kubepulse.quantity import format_quantity
from kubepulse.selector import parse_selector

__all__ = ["metric_value_items", "router"]

_PREFIX: Final = f"/apis/{CUSTOM_GROUP}/{{version}}"

router = APIRouter(route_class=StatusRoute, tags=["custom metrics"])
Context = Annotated[ApiContext, Depends(get_context)]
LabelSelectorParameter = Annotated[
    str,
    Query(
        alias="labelSelector",
        description="Which objects, with the name '*': a Kubernetes label selector.",
    ),
]
MetricSelectorParameter = Annotated[
    str,
    Query(
        alias="metricLabelSelector",
        description=(
            "Which series: a label selector; kubepulse.io/window, kubepulse.io/aggregation, "
            "kubepulse.io/predict and kubepulse.io/model choose the statistic."
        ),
    ),
]


def metric_value_items(
    version: str,
    values: list[tuple[ResolvedObject, ObjectValue]],
    metric_name: str,
    selector: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """The ``MetricValue`` items of ``values`` in the shape of ``version``; ``selector`` is
    the metric selector in API form (:func:`~adapter.api.common.selector_to_api`).

    A ``pods/*`` answer has thousands of items (5,000 at the scale the benchmarks aim at),
    so what every item shares is built once: the metric identifier (v1beta2; one dict
    referenced by every item, serialised each time), and the kind and API version of
    the described objects; keys keep the order clients have always seen.
    """
    items: list[dict[str, Any]] = []
    add = items.append
    if version == "v1beta1":
        for resolved, value in values:
            add(
                {
                    "describedObject": _described(resolved),
                    "metricName": metric_name,
                    "timestamp": rfc3339(value.timestamp_ms),
                    "window": value.window_ms // 1000,
                    "value": format_quantity(value.value),
                    "selector": selector,
                }
            )
        return items
    identifier: dict[str, Any] = {"name": metric_name}
    if selector is not None:
        identifier["selector"] = selector
    for resolved, value in values:
        add(
            {
                "describedObject": _described(resolved),
                "metric": identifier,
                "timestamp": rfc3339(value.timestamp_ms),
                "windowSeconds": value.window_ms // 1000,
                "value": format_quantity(value.value),
            }
        )
    return items


def _described(resolved: ResolvedObject) -> dict[str, str]:
    """The ``describedObject`` of an item: kind, namespace (when namespaced), name,
    apiVersion, in that order."""
    ref = resolved.ref
    resource = ref.resource
    if ref.namespace is None:
        return {"kind": resource.kind, "name": ref.name, "apiVersion": resource.api_version}
    return {
        "kind": resource.kind,
        "namespace": ref.namespace,
        "name": ref.name,
        "apiVersion": resource.api_version,
    }


def _check_version(version: str) -> str:
    if version not in CUSTOM_VERSIONS:
        raise NotFoundError(
            f"the API version {CUSTOM_GROUP}/{version} is not served; use "
            f"{' or '.join(CUSTOM_VERSIONS)}"
        )
    return version


async def _values(
    context: ApiContext, objects: list[ResolvedObject], parsed: ParsedMetric, now_ms: int
) -> list[tuple[ResolvedObject, ObjectValue]]:
    """The value of each object that has one."""
    if not objects:
        return []
    resource = objects[0].ref.resource

    def request(**grouping: Any) -> SeriesRequest:
        return SeriesRequest(
            metric=parsed.name,
            statistic=parsed.statistic,
            series_selector=parsed.series_selector,
            **grouping,
        )

    if resource.workload:

        async def workload_value(resolved: ResolvedObject) -> list[ObjectValue]:
            if not resolved.pods:
                return []
            return await context.source.query(
                request(
                    namespace=resolved.ref.namespace,
                    object_label=POD_LABEL,
                    object_names=resolved.pods,
                    merge_objects=True,
                ),
                now_ms,
            )

        answers = await asyncio.gather(*(workload_value(resolved) for resolved in objects))
        return [
            (resolved, answer[0])
            for resolved, answer in zip(objects, answers, strict=True)
            if answer
        ]
    by_name = {resolved.ref.name: resolved for resolved in objects}
    if resource is PODS:
        grouping: dict[str, Any] = {
            "namespace": objects[0].ref.namespace,
            "object_label": POD_LABEL,
        }
    elif resource is NODES:
        grouping = {"object_label": NODE_LABEL}
    else:
        grouping = {"object_label": NAMESPACE_LABEL}
    values = await context.source.query(
        request(object_names=frozenset(by_name), **grouping), now_ms
    )
    return [(by_name[value.name], value) for value in values if value.name in by_name]


async def _answer(
    context: ApiContext,
    *,
    version: str,
    namespace: str | None,
    resource_name: str,
    object_name: str,
    metric: str,
    label_selector: str,
    metric_selector: str,
) -> dict[str, Any]:
    _check_version(version)
    resource = parse_resource(resource_name)
    if namespace is not None:
        check_namespace(namespace)
    if resource.namespaced and namespace is None:
        raise BadRequestError(
            f"{resource.group_resource} are namespaced: ask "
            f"/apis/{CUSTOM_GROUP}/{version}/namespaces/<namespace>/{resource.group_resource}/"
            f"{object_name}/{metric}"
        )
    if not resource.namespaced and namespace is not None:
        raise BadRequestError(
            f"{resource.group_resource} are cluster-scoped: ask "
            f"/apis/{CUSTOM_GROUP}/{version}/{resource.group_resource}/{object_name}/{metric}"
        )
    name = check_object_name(object_name, resource.kind)
    max_length = context.settings.max_selector_length
    parsed = metric_request(metric, metric_selector, "metricLabelSelector", max_length)
    selector = object_selector(label_selector, max_length)
    now_ms = context.clock()
    objects = await context.objects.resolve(resource, namespace, name, selector)
    values = await _values(context, objects, parsed, now_ms)
    if not values:
        raise NotFoundError(
            _no_data_message(resource.group_resource, name, namespace, parsed),
            details={"name": metric, "group": CUSTOM_GROUP, "kind": resource.group_resource},
        )
    selector_api = selector_to_api(parse_selector(metric_selector))
    return {
        "kind": "MetricValueList",
        "apiVersion": f"{CUSTOM_GROUP}/{version}",
        "metadata": {},
        "items": metric_value_items(version, values, metric, selector_api),
    }


def _no_data_message(
    resource: str, name: str | None, namespace: str | None, parsed: ParsedMetric
) -> str:
    which = f"{resource} {name!r}" if name is not None else f"any of the {resource} selected"
    where = f" in namespace {namespace!r}" if namespace is not None else ""
    return (
        f"no fresh value of the metric {parsed.name!r} ({parsed.statistic.describe()}) for "
        f"{which}{where}: its series are missing, stale, or too short for the statistic; "
        "check that the targets are scraped, or widen kubepulse.io/window"
    )


@router.get(
    _PREFIX + "/namespaces/{namespace}/metrics/{metric}",
    summary="A metric of a namespace",
)
async def namespace_metric(
    *,
    version: str,
    namespace: str,
    metric: str,
    context: Context,
    label_selector: LabelSelectorParameter = "",
    metric_selector: MetricSelectorParameter = "",
) -> dict[str, Any]:
    """The metric over the series labelled with the namespace."""
    return await _answer(
        context,
        version=version,
        namespace=None,
        resource_name=NAMESPACES.group_resource,
        object_name=check_namespace(namespace),
        metric=metric,
        label_selector=label_selector,
        metric_selector=metric_selector,
    )


@router.get(
    _PREFIX + "/namespaces/{namespace}/{resource}/{name}/{metric}",
    summary="A metric of namespaced objects (pods, deployments.apps...)",
)
async def namespaced_object_metric(
    *,
    version: str,
    namespace: str,
    resource: str,
    name: str,
    metric: str,
    context: Context,
    label_selector: LabelSelectorParameter = "",
    metric_selector: MetricSelectorParameter = "",
) -> dict[str, Any]:
    """The metric of one object, or of every object matching ``labelSelector`` (``*``)."""
    return await _answer(
        context,
        version=version,
        namespace=namespace,
        resource_name=resource,
        object_name=name,
        metric=metric,
        label_selector=label_selector,
        metric_selector=metric_selector,
    )


@router.get(
    _PREFIX + "/{resource}/{name}/{metric}",
    summary="A metric of cluster-scoped objects (nodes, namespaces)",
)
async def cluster_object_metric(
    *,
    version: str,
    resource: str,
    name: str,
    metric: str,
    context: Context,
    label_selector: LabelSelectorParameter = "",
    metric_selector: MetricSelectorParameter = "",
) -> dict[str, Any]:
    """The metric of one node or namespace, or of every one matching ``labelSelector``."""
    return await _answer(
        context,
        version=version,
        namespace=None,
        resource_name=resource,
        object_name=name,
        metric=metric,
        label_selector=label_selector,
        metric_selector=metric_selector,
    )

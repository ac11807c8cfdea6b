"""API discovery: ``/apis``, ``/apis/<group>`` and ``/apis/<group>/<version>``.

kube-apiserver's aggregator and every client (``kubectl``, the garbage collector, the
namespace controller) read these documents. They follow what kube-apiserver serves:

- ``/apis``: an ``APIGroupList`` of ``custom.metrics.k8s.io`` (v1beta2 preferred, then
  v1beta1) and ``external.metrics.k8s.io`` (v1beta1), plus ``metrics.k8s.io`` (v1beta1,
  :mod:`~adapter.api.resource_metrics`) when the resource metrics API is enabled;
- ``/apis/<group>``: that group's ``APIGroup``;
- ``/apis/<group>/<version>``: an ``APIResourceList`` with one entry per metric and
  resource, such as ``{"name": "pods/http_requests", "singularName": "", "namespaced":
  true, "kind": "MetricValueList", "verbs": ["get"]}``.

The custom metrics list is built from what the source holds now
(:meth:`~adapter.sources.base.MetricSource.metrics`), so it follows metrics as they
appear and disappear: a metric whose series carry ``namespace`` and ``pod`` is listed
for ``pods`` and the workloads (``deployments.apps``, ``statefulsets.apps``,
``replicasets.apps``), one with ``namespace`` for ``namespaces``, one with ``node`` for
``nodes``, plus the derived names of the configured advertised statistics.

A resource list is **never empty**: client-go treats an empty one as a failed group
and kubectl and the controllers then complain about the whole API. When the source has
nothing fresh yet (a fresh start, the source down), the exporter's catalog is listed,
which is what the adapter will serve once exporters are scraped; when no external
metric is configured, a placeholder ``externalmetrics`` entry is listed (as KEDA does),
which answers 404 with advice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends

from adapter.api.analysis import analysis_api_group, analysis_resources
from adapter.api.common import CUSTOM_GROUP, CUSTOM_VERSIONS, EXTERNAL_GROUP, EXTERNAL_VERSIONS
from adapter.api.context import ApiContext, get_context
from adapter.api.resource_metrics import (
    RESOURCE_METRICS_GROUP,
    RESOURCE_METRICS_VERSION,
    resource_metrics_api_group,
    resource_metrics_resources,
)
from adapter.api.status import NotFoundError, StatusRoute
from adapter.objects import DEPLOYMENTS, NAMESPACES, NODES, PODS, REPLICASETS, STATEFULSETS
from adapter.sources.base import (
    MetricDescriptor,
    MetricScope,
    SourceUnavailableError,
    scopes_from_labels,
)
from kubepulse import catalog
from kubepulse.analysis.resources import GROUP as ANALYSIS_GROUP
from kubepulse.analysis.resources import VERSION as ANALYSIS_VERSION
from kubepulse.metricquery import MetricKind, format_derived_name

__all__ = [
    "EXTERNAL_PLACEHOLDER",
    "catalog_metrics",
    "custom_resources",
    "external_resources",
    "router",
]

logger = logging.getLogger("adapter.api")

EXTERNAL_PLACEHOLDER: Final = "externalmetrics"
"""Listed when no external metric is configured, so the list is never empty."""

_POD_RESOURCES: Final = (PODS, DEPLOYMENTS, STATEFULSETS, REPLICASETS)
_KINDS: Final = {
    catalog.MetricType.GAUGE: MetricKind.GAUGE,
    catalog.MetricType.COUNTER: MetricKind.COUNTER,
    catalog.MetricType.HISTOGRAM: MetricKind.HISTOGRAM,
}

router = APIRouter(route_class=StatusRoute, tags=["discovery"])
Context = Annotated[ApiContext, Depends(get_context)]


def _group_version(group: str, version: str) -> dict[str, str]:
    return {"groupVersion": f"{group}/{version}", "version": version}


def _api_group(group: str, versions: Iterable[str]) -> dict[str, Any]:
    listed = [_group_version(group, version) for version in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


def catalog_metrics() -> list[MetricDescriptor]:
    """The exporter's metrics with the objects their labels describe (the fallback list)."""
    descriptors = []
    for spec in catalog.CATALOG:
        scopes = scopes_from_labels(frozenset(spec.labels))
        if scopes != {MetricScope.EXTERNAL}:
            descriptors.append(MetricDescriptor(spec.name, _KINDS[spec.type], scopes))
    return descriptors


def custom_resources(
    metrics: Iterable[MetricDescriptor], context: ApiContext
) -> list[dict[str, Any]]:
    """The ``APIResourceList`` entries of ``metrics``, sorted by name, without duplicates."""
    entries: dict[str, bool] = {}
    statistics = context.settings.advertised_statistics
    for metric in metrics:
        names = [metric.name]
        names += [format_derived_name(metric.name, statistic) for statistic in statistics]
        for name in names:
            if MetricScope.POD in metric.scopes:
                for resource in _POD_RESOURCES:
                    entries[f"{resource.group_resource}/{name}"] = True
            if MetricScope.NAMESPACE in metric.scopes:
                entries[f"{NAMESPACES.group_resource}/{name}"] = False
            if MetricScope.NODE in metric.scopes:
                entries[f"{NODES.group_resource}/{name}"] = False
    return [
        {
            "name": name,
            "singularName": "",
            "namespaced": namespaced,
            "kind": "MetricValueList",
            "verbs": ["get"],
        }
        for name, namespaced in sorted(entries.items())
    ]


def external_resources(context: ApiContext) -> list[dict[str, Any]]:
    """The ``APIResourceList`` entries of the configured external metrics."""
    names = sorted(metric.name for metric in context.settings.external_metrics)
    return [
        {
            "name": name,
            "singularName": "",
            "namespaced": True,
            "kind": "ExternalMetricValueList",
            "verbs": ["get"],
        }
        for name in names or [EXTERNAL_PLACEHOLDER]
    ]


async def _served_metrics(context: ApiContext) -> list[MetricDescriptor]:
    try:
        metrics = await context.source.metrics()
    except SourceUnavailableError as error:
        # Discovery stays up: a 503 here would mark the whole APIService unavailable.
        logger.warning("listing the catalog: the source cannot list metrics: %s", error)
        metrics = []
    listed = [metric for metric in metrics if metric.scopes - {MetricScope.EXTERNAL}]
    return listed or catalog_metrics()


@router.get("/apis", summary="The API groups served (APIGroupList)")
async def api_groups(context: Context) -> dict[str, Any]:
    """Both metrics groups and, when enabled, the analysis group, with their versions."""
    groups = [
        _api_group(CUSTOM_GROUP, CUSTOM_VERSIONS),
        _api_group(EXTERNAL_GROUP, EXTERNAL_VERSIONS),
    ]
    if context.analysis is not None:
        groups.append(analysis_api_group())
    if context.settings.resource_metrics:
        groups.append(resource_metrics_api_group())
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


@router.get("/apis/{group}", summary="One API group (APIGroup)")
async def api_group(group: str, context: Context) -> dict[str, Any]:
    """The versions of ``group``."""
    if group == ANALYSIS_GROUP and context.analysis is not None:
        return {"kind": "APIGroup", "apiVersion": "v1", **analysis_api_group()}
    if group == RESOURCE_METRICS_GROUP and context.settings.resource_metrics:
        return {"kind": "APIGroup", "apiVersion": "v1", **resource_metrics_api_group()}
    versions = {CUSTOM_GROUP: CUSTOM_VERSIONS, EXTERNAL_GROUP: EXTERNAL_VERSIONS}.get(group)
    if versions is None:
        raise NotFoundError(f"the API group {group!r} is not served here")
    return {"kind": "APIGroup", "apiVersion": "v1", **_api_group(group, versions)}


@router.get("/apis/{group}/{version}", summary="The metrics of a group version (APIResourceList)")
async def api_resources(group: str, version: str, context: Context) -> dict[str, Any]:
    """Every metric of the group version; never an empty list."""
    if group == CUSTOM_GROUP and version in CUSTOM_VERSIONS:
        resources = custom_resources(await _served_metrics(context), context)
    elif group == EXTERNAL_GROUP and version in EXTERNAL_VERSIONS:
        resources = external_resources(context)
    elif group == ANALYSIS_GROUP and version == ANALYSIS_VERSION and context.analysis is not None:
        resources = analysis_resources()
    elif (
        group == RESOURCE_METRICS_GROUP
        and version == RESOURCE_METRICS_VERSION
        and context.settings.resource_metrics
    ):
        resources = resource_metrics_resources()
    else:
        raise NotFoundError(f"the API group version {group}/{version} is not served here")
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}",
        "resources": resources,
    }

"""``external.metrics.k8s.io`` (v1beta1): named queries from the adapter's configuration.

::

    /apis/external.metrics.k8s.io/v1beta1/namespaces/<ns>/<metric>?labelSelector=...

``<metric>`` is the name of a configured :class:`~adapter.api.context.ExternalMetric`,
or such a name with a derived-name suffix (``orders_queue_depth-max-2m``). The HPA's
``labelSelector`` (its external metric's ``selector``) is matched against series labels
on top of the configured selector; its reserved ``kubepulse.io/*`` keys choose another
statistic than the configured one. The series are combined into one value (``sum`` of the
per-series statistic; one percentile over all buckets of a histogram), answered as an
``ExternalMetricValueList`` with one item::

    {"metricName": "...", "metricLabels": {...}, "timestamp": "...", "window": 60,
     "value": "12"}

``metricLabels`` holds the labels every selected series shares by construction: the
selector's equality requirements. An unknown name or no fresh data is a 404.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query

from adapter.api.common import (
    EXTERNAL_GROUP,
    MAX_METRIC_NAME_LENGTH,
    check_namespace,
    check_selector_text,
    rfc3339,
)
from adapter.api.context import ApiContext, ExternalMetric, get_context
from adapter.api.discovery import EXTERNAL_PLACEHOLDER
from adapter.api.status import BadRequestError, NotFoundError, StatusRoute
from kubepulse.metricquery import (
    RESERVED_PREFIX,
    SeriesRequest,
    StatisticError,
    parse_statistic,
    split_derived_name,
)
from kubepulse.quantity import format_quantity
from kubepulse.selector import LabelSelector, Operator, parse_selector

__all__ = ["external_metric_value_list", "router"]

_VERSION: Final = "v1beta1"

router = APIRouter(route_class=StatusRoute, tags=["external metrics"])
Context = Annotated[ApiContext, Depends(get_context)]
SelectorParameter = Annotated[
    str,
    Query(
        alias="labelSelector",
        description=(
            "Which series, on top of the configured selector; kubepulse.io/window, "
            "kubepulse.io/aggregation, kubepulse.io/predict and kubepulse.io/model choose "
            "the statistic."
        ),
    ),
]


def _find(context: ApiContext, requested: str) -> tuple[ExternalMetric, str | None]:
    """The configured metric ``requested`` names, and its derived suffix if any."""
    exact = context.settings.external_metric(requested)
    if exact is not None:
        return exact, None
    base, _, suffix = requested.partition("-")
    configured = context.settings.external_metric(base)
    if suffix and configured is not None and configured.derivable:
        return configured, suffix
    names = sorted(metric.name for metric in context.settings.external_metrics)
    if requested == EXTERNAL_PLACEHOLDER and not names:
        advice = "no external metrics are configured; add external_metrics to the configuration"
    else:
        advice = f"the external metrics configured are {', '.join(names) or 'none'}"
    raise NotFoundError(
        f"the external metric {requested!r} is not configured; {advice}",
        details={"name": requested, "group": EXTERNAL_GROUP, "kind": "externalmetrics"},
    )


def external_metric_value_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """An ``ExternalMetricValueList`` of ``items``."""
    return {
        "kind": "ExternalMetricValueList",
        "apiVersion": f"{EXTERNAL_GROUP}/{_VERSION}",
        "metadata": {},
        "items": items,
    }


def _shared_labels(selector: LabelSelector) -> dict[str, str]:
    """The labels every series matching ``selector`` has: its single-value equalities."""
    labels: dict[str, str] = {}
    for requirement in selector.requirements:
        single = requirement.operator in {Operator.EQUALS, Operator.IN}
        if single and len(requirement.values) == 1:
            (labels[requirement.key],) = requirement.values
    return labels


@router.get(
    f"/apis/{EXTERNAL_GROUP}/{{version}}/namespaces/{{namespace}}/{{metric}}",
    summary="An external metric",
)
async def external_metric(
    *,
    version: str,
    namespace: str,
    metric: str,
    context: Context,
    label_selector: SelectorParameter = "",
) -> dict[str, Any]:
    """The configured query ``metric``, over the series matching ``labelSelector``."""
    if version != _VERSION:
        raise NotFoundError(f"the API version {EXTERNAL_GROUP}/{version} is not served")
    check_namespace(namespace)
    if len(metric) > MAX_METRIC_NAME_LENGTH:
        raise BadRequestError(
            f"the metric name is {len(metric)} characters long, more than the "
            f"{MAX_METRIC_NAME_LENGTH} accepted"
        )
    check_selector_text(label_selector, "labelSelector", context.settings.max_selector_length)
    configured, suffix = _find(context, metric)
    requested_selector, options = parse_selector(label_selector).split_reserved(RESERVED_PREFIX)
    statistic = configured.statistic
    if suffix is not None:
        if options:
            raise StatisticError(
                f"the metric name {metric!r} already chooses the statistic; drop "
                f"{', '.join(sorted(options))} from the labelSelector or ask for "
                f"{configured.name!r}"
            )
        _, derived = split_derived_name(f"{configured.metric}-{suffix}")
        assert derived is not None
        statistic = derived
    else:
        statistic = parse_statistic(options, defaults=statistic)
    selector = LabelSelector(configured.selector.requirements + requested_selector.requirements)
    request = SeriesRequest(
        metric=configured.metric,
        statistic=statistic,
        namespace=namespace if configured.namespaced else None,
        series_selector=selector,
    )
    values = await context.source.query(request, context.clock())
    if not values:
        raise NotFoundError(
            f"no fresh value of the external metric {metric!r} ({statistic.describe()} of "
            f"{configured.metric!r}): no series match, or they are stale or too short for "
            "the statistic",
            details={"name": metric, "group": EXTERNAL_GROUP, "kind": "externalmetrics"},
        )
    items = [
        {
            "metricName": metric,
            "metricLabels": _shared_labels(selector),
            "timestamp": rfc3339(value.timestamp_ms),
            "window": value.window_ms // 1000,
            "value": format_quantity(value.value),
        }
        for value in values
    ]
    return external_metric_value_list(items)

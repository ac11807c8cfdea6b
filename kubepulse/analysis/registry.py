"""Every analysis the API serves and ``kubectl pulse`` runs: :data:`ANALYSES`.

One row per analyzer joins the pure function (in its own module) to its resource name,
its parameters and the history it needs (:class:`~kubepulse.analysis.resources.Analysis`).
The adapter routes, the CLI's flags and the facade's :meth:`analysis_document` all read
this table, so adding an analyzer here is all it takes to serve it three ways.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from kubepulse.analysis.fragmentation import FragmentationReport, analyze_fragmentation
from kubepulse.analysis.hpa import HpaMetricsReport, generate_hpa_metrics
from kubepulse.analysis.limits import LimitBreachReport, detect_limit_breaches
from kubepulse.analysis.listing import MAXIMUM_TOP
from kubepulse.analysis.nodes import NodePressureReport, analyze_node_pressure
from kubepulse.analysis.quota import NamespaceReport, QuotaReport, analyze_quotas, namespace_report
from kubepulse.analysis.recommend import RecommendationReport, recommend_resources
from kubepulse.analysis.resources import (
    Analysis,
    AnalysisInputs,
    AnalysisRequest,
    Param,
    ParamKind,
    Scope,
)
from kubepulse.duration import format_duration
from kubepulse.errors import KubepulseValueError

__all__ = ["ANALYSES", "find_analysis"]

_MINUTE_MS: Final = 60_000
_HOUR_MS: Final = 60 * _MINUTE_MS
_DAY_MS: Final = 24 * _HOUR_MS


def _window(name: str, default: str | None, help_text: str, low_ms: int, high_ms: int) -> Param:
    return Param(name, ParamKind.DURATION, default, help_text, minimum=low_ms, maximum=high_ms)


def _percent(name: str, default: str, help_text: str, low: float = 0.0) -> Param:
    return Param(name, ParamKind.NUMBER, default, help_text, minimum=low, maximum=100.0)


def _flag(name: str, default: str, help_text: str) -> Param:
    return Param(name, ParamKind.BOOLEAN, default, help_text)


def _top(help_text: str) -> Param:
    """The ``top`` option of the analyses whose lists grow with the containers.

    One definition, so that the API's ``?top=``, the CLI's ``--top`` and the facade's
    ``top=`` read and reject a count the same way (:mod:`kubepulse.analysis.listing`).
    """
    return Param(
        "top", ParamKind.NUMBER, None, help_text, minimum=1, maximum=MAXIMUM_TOP, integer=True
    )


def _top_count(params: Mapping[str, Any]) -> int | None:
    value = params["top"]
    return None if value is None else int(value)


def _fixed(history_ms: int) -> Any:
    return lambda _params: history_ms


def _from(param: str) -> Any:
    return lambda params: int(params[param])


def _duration(params: Mapping[str, Any], name: str) -> str | None:
    value = params[name]
    return None if value is None else format_duration(int(value))


def _name(request: AnalysisRequest, what: str) -> str:
    if not request.name:
        raise KubepulseValueError(f"name the {what} to analyse")
    return request.name


def _namespace(request: AnalysisRequest, what: str) -> str:
    if not request.namespace:
        raise KubepulseValueError(f"{what} needs a namespace; give one")
    return request.namespace


def _breaches(inputs: AnalysisInputs, request: AnalysisRequest) -> LimitBreachReport:
    return detect_limit_breaches(
        inputs.snapshot,
        inputs.history,
        threshold_percent=request.params["thresholdPercent"],
        time_window=_duration(request.params, "timeWindow") or "5m",
        namespace=request.namespace,
        top=_top_count(request.params),
    )


def _pressure(inputs: AnalysisInputs, request: AnalysisRequest) -> NodePressureReport:
    params = request.params
    return analyze_node_pressure(
        inputs.snapshot,
        inputs.history,
        include_scheduling_hints=params["includeSchedulingHints"],
        predict_evictions=params["predictEvictions"],
        node=params["node"],
        memory_available_threshold=params["memoryAvailableThreshold"],
        nodefs_available_percent=params["nodefsAvailablePercent"],
        top=_top_count(params),
    )


def _fragmentation(inputs: AnalysisInputs, request: AnalysisRequest) -> FragmentationReport:
    return analyze_fragmentation(
        inputs.snapshot,
        shape_cpu=request.params["shapeCpu"],
        shape_memory=request.params["shapeMemory"],
    )


def _quotas(inputs: AnalysisInputs, request: AnalysisRequest) -> QuotaReport:
    params = request.params
    return analyze_quotas(
        inputs.snapshot,
        inputs.history,
        namespace=request.namespace,
        warning_percent=params["warningPercent"],
        critical_percent=params["criticalPercent"],
        unused_percent=params["unusedPercent"],
        forecast_alert_days=params["forecastAlertDays"],
        confidence=params["confidence"] / 100,
        window=_duration(params, "window"),
    )


def _report(inputs: AnalysisInputs, request: AnalysisRequest) -> NamespaceReport:
    params = request.params
    return namespace_report(
        inputs.snapshot,
        inputs.history,
        _namespace(request, "a namespace report"),
        include_pods=params["includePods"],
        include_quota=params["includeQuota"],
        top=int(params["top"]),
    )


def _recommend(inputs: AnalysisInputs, request: AnalysisRequest) -> RecommendationReport:
    return recommend_resources(
        inputs.snapshot,
        inputs.history,
        namespace=request.namespace,
        target=request.params["target"],
        autoscalers=inputs.autoscalers,
        what_if=request.params["whatIf"],
        top=_top_count(request.params),
    )


def _hpa(inputs: AnalysisInputs, request: AnalysisRequest) -> HpaMetricsReport:
    params = request.params
    return generate_hpa_metrics(
        inputs.snapshot,
        inputs.history,
        namespace=_namespace(request, "hpa metrics"),
        deployment=_name(request, "Deployment"),
        metric_type=params["metricType"],
        aggregation=params["aggregation"],
        autoscalers=inputs.autoscalers,
        window=_duration(params, "window") or "1m",
        predict=_duration(params, "predict"),
    )


ANALYSES: Final[tuple[Analysis, ...]] = (
    Analysis(
        resource="limitbreaches",
        kind="LimitBreachReport",
        scope=Scope.BOTH,
        command="breaches",
        summary="containers near or over their limits and requests, throttling, OOM kills, "
        "missing limits and efficiency",
        params=(
            _percent("thresholdPercent", "90", "report usage at or above this percentage", 1),
            _window("timeWindow", "5m", "the window usage is measured over", 30_000, _DAY_MS),
            _top("list only the N worst items of each list (the summary still counts all)"),
        ),
        history_ms=_from("timeWindow"),
        run=_breaches,
        result_type=LimitBreachReport,
    ),
    Analysis(
        resource="nodepressure",
        kind="NodePressureReport",
        scope=Scope.CLUSTER,
        command="pressure",
        summary="node pressure, capacity against requests and usage, and pods at risk of "
        "eviction, ranked as the kubelet ranks them",
        params=(
            _flag("includeSchedulingHints", "false", "suggest where pending pods could go"),
            _flag("predictEvictions", "true", "rank the pods the kubelet would evict first"),
            Param("node", ParamKind.TEXT, None, "only this node"),
            Param(
                "memoryAvailableThreshold",
                ParamKind.TEXT,
                "100Mi",
                "the kubelet's hard eviction threshold memory.available",
            ),
            _percent(
                "nodefsAvailablePercent", "10", "the kubelet's threshold nodefs.available, in %"
            ),
            _top("list only the N pods most at risk of eviction (node figures cover all)"),
        ),
        history_ms=_fixed(5 * _MINUTE_MS),
        run=_pressure,
        result_type=NodePressureReport,
    ),
    Analysis(
        resource="fragmentation",
        kind="FragmentationReport",
        scope=Scope.CLUSTER,
        command="fragmentation",
        summary="the largest pod that still fits, stranded CPU and memory, and how many pods "
        "of a shape fit",
        params=(
            Param("shapeCpu", ParamKind.TEXT, None, "CPU request of the pod shape, e.g. 500m"),
            Param("shapeMemory", ParamKind.TEXT, None, "memory request of the shape, e.g. 1Gi"),
        ),
        history_ms=_fixed(_MINUTE_MS),
        run=_fragmentation,
        result_type=FragmentationReport,
    ),
    Analysis(
        resource="quotas",
        kind="QuotaReport",
        scope=Scope.BOTH,
        command="quota",
        summary="ResourceQuota use, trend, days until exhaustion, alerts and unused quota",
        params=(
            _percent("warningPercent", "80", "warn at this percentage of hard", 1),
            _percent("criticalPercent", "95", "critical at this percentage of hard", 1),
            _percent("unusedPercent", "10", "list quotas whose peak stayed at or below this"),
            Param(
                "forecastAlertDays",
                ParamKind.NUMBER,
                "7",
                "alert when the forecast reaches hard within this many days (0: never)",
                minimum=0,
                maximum=3650,
            ),
            Param(
                "confidence",
                ParamKind.NUMBER,
                "95",
                "the forecast interval's coverage, in %",
                minimum=50,
                maximum=99.9,
            ),
            _window("window", "24h", "how much quota history to fit", _HOUR_MS, 90 * _DAY_MS),
        ),
        history_ms=_from("window"),
        run=_quotas,
        result_type=QuotaReport,
    ),
    Analysis(
        resource="reports",
        kind="NamespaceReport",
        scope=Scope.NAMESPACED,
        command="report",
        summary="a namespace's usage, requests, limits, quota and top consumers",
        params=(
            _flag("includePods", "true", "list every pod"),
            _flag("includeQuota", "true", "analyse the namespace's ResourceQuotas"),
            Param(
                "top",
                ParamKind.NUMBER,
                "5",
                "how many top consumers to rank",
                minimum=0,
                maximum=1000,
            ),
            _window("window", "1h", "the window usage is averaged over", _MINUTE_MS, _DAY_MS),
        ),
        history_ms=_from("window"),
        run=_report,
        result_type=NamespaceReport,
    ),
    Analysis(
        resource="recommendations",
        kind="RecommendationReport",
        scope=Scope.BOTH,
        command="recommend",
        summary="requests and limits per container from measured usage, as ready patches",
        params=(
            Param(
                "target",
                ParamKind.CHOICE,
                "balanced",
                "what to optimise for",
                choices=("balanced", "performance", "cost"),
            ),
            _flag("whatIf", "false", "re-pack the pods with the recommendations applied"),
            _window(
                "window", "24h", "how much usage history to learn from", _HOUR_MS, 14 * _DAY_MS
            ),
            _top("list only the N workloads whose requests change most (totals cover all)"),
        ),
        history_ms=_from("window"),
        run=_recommend,
        result_type=RecommendationReport,
    ),
    Analysis(
        resource="hpametrics",
        kind="HpaMetricsReport",
        scope=Scope.NAMESPACED,
        command="hpa",
        named=True,
        summary="the metric values an HPA would see for a Deployment, and a replay of the "
        "HPA over history with predicted scaling events",
        params=(
            Param(
                "metricType",
                ParamKind.CHOICE,
                "cpu",
                "the metric",
                choices=("cpu", "memory", "cpu-utilization", "memory-utilization"),
            ),
            Param("aggregation", ParamKind.TEXT, "avg", "avg, min, max, sum, last, rate or pNN"),
            _window("window", "1m", "the window each value is computed over", 30_000, _DAY_MS),
            _window("predict", None, "also replay on forecasts this far ahead", 30_000, _HOUR_MS),
            _window("history", "1h", "how much history to replay", 5 * _MINUTE_MS, _DAY_MS),
        ),
        history_ms=_from("history"),
        run=_hpa,
        result_type=HpaMetricsReport,
    ),
)
"""Every analysis, in the order discovery lists them."""


def find_analysis(resource: str) -> Analysis:
    """The analysis served as ``resource``.

    Raises:
        KubepulseValueError: no analysis has that name; the message lists them.
    """
    for analysis in ANALYSES:
        if analysis.resource == resource:
            return analysis
    raise KubepulseValueError(
        f"no analysis is called {resource!r}; the analyses are "
        f"{', '.join(a.resource for a in ANALYSES)}"
    )

"""The library's public surface is pinned: changing an ``__all__`` must be deliberate.

A name added to or removed from a module's ``__all__`` fails this test until the list
below is updated in the same change, so API changes show up in review. The test also
checks that every exported name exists and that no module exports a private name.
"""

from __future__ import annotations

import importlib

import pytest

PUBLIC_SURFACE: dict[str, set[str]] = {
    "kubepulse.promql": {
        "AnswerKind",
        "PrometheusAnswerError",
        "answer_data",
        "escape_regex",
        "escape_string",
    },
    "kubepulse": {
        "K8sResourceMonitor",
    },
    "kubepulse.monitor": {
        "K8sResourceMonitor",
        "ProgressReporter",
    },
    "kubepulse.analysis": {
        "ClusterSnapshot",
        "ContainerRef",
        "FragmentationReport",
        "HpaMetricsReport",
        "LimitBreachReport",
        "NamespaceReport",
        "NodePressureReport",
        "QuotaRef",
        "QuotaReport",
        "RecommendationReport",
        "RepackResult",
        "TimeSeries",
        "UsageHistory",
        "analyze_fragmentation",
        "analyze_node_pressure",
        "analyze_quotas",
        "detect_limit_breaches",
        "generate_hpa_metrics",
        "namespace_report",
        "recommend_resources",
        "repack",
        "to_json",
    },
    "kubepulse.analysis.registry": {
        "ANALYSES",
        "find_analysis",
    },
    "kubepulse.watchloop": {
        "ExponentialBackoff",
        "TokenBucket",
        "iter_lines",
    },
    "kubepulse.quantity": {
        "QuantityError",
        "QuantityLike",
        "cpu_cores",
        "format_quantity",
        "memory_bytes",
        "parse_quantity",
        "to_milli",
    },
    "kubepulse.selector": {
        "LabelSelector",
        "Operator",
        "Requirement",
        "SelectorError",
        "parse_selector",
    },
    "kubepulse.duration": {
        "DurationError",
        "format_duration",
        "parse_duration",
        "parse_window",
    },
    "kubepulse.model": {
        "ANNOTATION_CONFIG_HASH",
        "ANNOTATION_CONFIG_MIRROR",
        "ANNOTATION_CONFIG_SOURCE",
        "CPU",
        "ContainerSpec",
        "ContainerState",
        "ContainerStateKind",
        "ContainerStatus",
        "EPHEMERAL_STORAGE",
        "HorizontalPodAutoscaler",
        "HpaMetric",
        "KubeObject",
        "MEMORY",
        "MetricTarget",
        "Namespace",
        "Node",
        "NodeCondition",
        "ObjectError",
        "OwnerReference",
        "PODS",
        "Pod",
        "QosClass",
        "ResourceList",
        "ResourceQuota",
        "ScalingPolicy",
        "ScalingRules",
        "Taint",
        "Termination",
        "compute_qos_class",
        "parse_list",
        "parse_object",
        "parse_rfc3339_ms",
    },
    "kubepulse.catalog": {
        "CATALOG",
        "GENERATED_BEGIN_MARKER",
        "GENERATED_END_MARKER",
        "HOST_PROCESS_OTHER_GROUP",
        "HOST_PROCESS_TOP_N_DEFAULT",
        "LABEL_DESCRIPTIONS",
        "METRIC_PREFIX",
        "MetricSpec",
        "MetricType",
        "Scope",
        "Source",
        "UNITS",
        "UnknownMetricError",
        "by_scope",
        "get",
        "main",
        "names",
        "render_markdown",
        "validate_catalog",
    },
    "kubepulse.stats": {
        "Aggregation",
        "AggregationKind",
        "DDSketch",
        "Forecast",
        "InsufficientDataError",
        "MAX_HOLT_GRID_POINTS",
        "MIN_RELATIVE_ACCURACY",
        "SeriesKind",
        "WindowSummary",
        "evaluate",
        "exact_evaluate",
        "forecast_holt",
        "forecast_linear",
        "parse_aggregation",
        "student_t_quantile",
    },
    "kubepulse.store": {
        "AppendOutcome",
        "CompactionResult",
        "LabelMatcher",
        "METRIC_NAME_LABEL",
        "SNAPSHOT_FORMAT_VERSION",
        "SNAPSHOT_MAGIC",
        "Series",
        "SeriesHandle",
        "SeriesSettings",
        "TimeSeriesStore",
        "decode_chunk",
        "dump_store",
        "encode_chunk",
        "load_store",
    },
    "kubepulse.checkpoint": {
        "CheckpointInfo",
        "load_checkpoint",
        "restore_or_empty",
        "save_checkpoint",
    },
    "kubepulse.errors": {
        "CheckpointError",
        "KubepulseError",
        "KubepulseValueError",
        "UnknownObjectError",
    },
    "kubepulse.cli": {
        "main",
    },
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC_SURFACE))
def test_all_is_exactly_the_pinned_surface(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = set(module.__all__)
    assert exported == PUBLIC_SURFACE[module_name], (
        f"{module_name}.__all__ changed: added {sorted(exported - PUBLIC_SURFACE[module_name])}, "
        f"removed {sorted(PUBLIC_SURFACE[module_name] - exported)}; update PUBLIC_SURFACE "
        "if the change is intended"
    )


@pytest.mark.parametrize("module_name", sorted(PUBLIC_SURFACE))
def test_every_exported_name_exists_and_is_public(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        assert not name.startswith("_"), f"{module_name} exports the private name {name}"
        assert hasattr(module, name), f"{module_name}.__all__ lists {name}, which is not defined"

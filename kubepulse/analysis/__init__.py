"""Analyzers: pure answers to the questions platform engineers ask every day.

Each analyzer is a function of a :class:`~kubepulse.analysis.inputs.ClusterSnapshot`,
a :class:`~kubepulse.analysis.inputs.UsageHistory` and its parameters, returning typed,
JSON-serialisable dataclasses (:func:`to_json`). Collection (I/O) lives elsewhere:
:class:`kubepulse.K8sResourceMonitor` collects and calls them, and so do the adapter's
``analysis.kubepulse.io`` endpoints and ``kubectl pulse``, all through
:data:`~kubepulse.analysis.registry.ANALYSES`.

- :func:`detect_limit_breaches` (:mod:`~kubepulse.analysis.limits`);
- :func:`analyze_node_pressure` (:mod:`~kubepulse.analysis.nodes`);
- :func:`analyze_fragmentation` and :func:`repack` (:mod:`~kubepulse.analysis.fragmentation`);
- :func:`analyze_quotas` and :func:`namespace_report` (:mod:`~kubepulse.analysis.quota`);
- :func:`recommend_resources` (:mod:`~kubepulse.analysis.recommend`);
- :func:`generate_hpa_metrics` (:mod:`~kubepulse.analysis.hpa`).
"""

from __future__ import annotations

from kubepulse.analysis.fragmentation import (
    FragmentationReport,
    RepackResult,
    analyze_fragmentation,
    repack,
)
from kubepulse.analysis.hpa import HpaMetricsReport, generate_hpa_metrics
from kubepulse.analysis.inputs import (
    ClusterSnapshot,
    ContainerRef,
    QuotaRef,
    TimeSeries,
    UsageHistory,
)
from kubepulse.analysis.limits import LimitBreachReport, detect_limit_breaches
from kubepulse.analysis.nodes import NodePressureReport, analyze_node_pressure
from kubepulse.analysis.quota import (
    NamespaceReport,
    QuotaReport,
    analyze_quotas,
    namespace_report,
)
from kubepulse.analysis.recommend import RecommendationReport, recommend_resources
from kubepulse.analysis.serialize import to_json

__all__ = [
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
]

"""What the API's routes work with: the source, the object resolver, settings and a clock.

:func:`adapter.app.create_app` puts one :class:`ApiContext` in the application's state;
routes receive it through the :func:`get_context` dependency, so tests can swap it with
``app.dependency_overrides[get_context]`` instead of patching anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from adapter.analysis.backend import AnalysisBackend
from adapter.config import AdapterConfig, ExternalMetricRule
from adapter.objects import ObjectResolver
from adapter.sources.base import MetricSource
from kubepulse.errors import KubepulseValueError
from kubepulse.metricquery import (
    DERIVED_SEPARATOR,
    MAX_WINDOW_MS,
    MIN_WINDOW_MS,
    Statistic,
    is_metric_name,
    parse_metric_selector,
    split_derived_name,
)
from kubepulse.selector import LabelSelector
from kubepulse.stats.aggregate import parse_aggregation

__all__ = [
    "ApiContext",
    "ApiSettings",
    "ExternalMetric",
    "get_context",
    "wall_clock_ms",
]

DEFAULT_MAX_SELECTOR_LENGTH = 4096


def wall_clock_ms() -> int:
    """The current time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class ExternalMetric:
    """One metric served under ``external.metrics.k8s.io``: a named query.

    The value is the statistic over every series of ``metric`` that matches
    ``selector`` and the HPA's own ``labelSelector`` (and the request's namespace when
    ``namespaced``), combined as one object: ``sum`` over series of the per-series
    statistic, or one percentile over all their buckets for a histogram.

    Raises:
        KubepulseValueError: ``name`` is empty, too long or contains ``/``, or
            ``metric`` is not a metric name.
    """

    name: str
    """The name HPAs ask for (``external.metric.name``)."""
    metric: str
    """The metric whose series are read (a histogram's base name)."""
    selector: LabelSelector = field(default_factory=LabelSelector)
    """What series labels must match, before the HPA's ``labelSelector``."""
    statistic: Statistic = field(default_factory=Statistic)
    """The statistic served unless the request chooses another (reserved keys in its
    ``labelSelector``, or a derived name)."""
    namespaced: bool = False
    """Only series whose ``namespace`` label is the request's namespace."""

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or len(self.name) > 253 or self.name in {".", ".."}:
            raise KubepulseValueError(
                f"external metric name {self.name!r} must be 1 to 253 characters without '/'"
            )
        if not is_metric_name(self.metric):
            raise KubepulseValueError(
                f"external metric {self.name!r}: {self.metric!r} is not a metric name"
            )

    @classmethod
    def from_rule(cls, rule: ExternalMetricRule) -> ExternalMetric:
        """The external metric a configuration rule describes.

        The rule's ``statistic`` and ``window_ms`` are the defaults; reserved
        ``kubepulse.io/*`` keys in its ``selector`` override them.

        Raises:
            KubepulseValueError: the rule's selector or statistic is invalid.
        """
        defaults = Statistic(
            window_ms=rule.window_ms, aggregation=parse_aggregation(rule.statistic)
        )
        selector, statistic = parse_metric_selector(rule.selector, defaults=defaults)
        return cls(rule.name, rule.metric, selector, statistic, namespaced=rule.namespaced)

    @property
    def derivable(self) -> bool:
        """Whether derived names (``<name>-p95-5m``) can refer to this metric."""
        return DERIVED_SEPARATOR not in self.name


@dataclass(frozen=True)
class ApiSettings:
    """How the metrics API behaves."""

    external_metrics: tuple[ExternalMetric, ...] = ()
    """The metrics served under ``external.metrics.k8s.io``."""
    advertised_statistics: tuple[Statistic, ...] = ()
    """Statistics whose derived names discovery also lists for every metric (for tools
    that pick metric names from discovery), e.g. ``p95`` over 5 m. Any derived name is
    served whether listed or not."""
    max_selector_length: int = DEFAULT_MAX_SELECTOR_LENGTH
    """Longest ``labelSelector`` or ``metricLabelSelector`` accepted, in characters."""
    resource_metrics: bool = False
    """Serve the resource metrics API, ``metrics.k8s.io`` (``kubectl top``)."""
    resource_metrics_window_ms: int = MIN_WINDOW_MS
    """The window of the resource metrics API's CPU rate: two scrape intervals, at least
    30 s (the shortest window a statistic takes)."""

    def __post_init__(self) -> None:
        names = [metric.name for metric in self.external_metrics]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise KubepulseValueError(
                f"external metrics {duplicates} are defined more than once; give each a unique name"
            )
        if self.max_selector_length < 1:
            raise KubepulseValueError("max_selector_length must be positive")
        if not MIN_WINDOW_MS <= self.resource_metrics_window_ms <= MAX_WINDOW_MS:
            raise KubepulseValueError(
                f"resource_metrics_window_ms must be from {MIN_WINDOW_MS} to {MAX_WINDOW_MS}, "
                f"got {self.resource_metrics_window_ms}"
            )

    @classmethod
    def from_config(cls, config: AdapterConfig) -> ApiSettings:
        """The API settings of the adapter's configuration.

        Raises:
            KubepulseValueError: an external metric rule is invalid.
        """
        sources = config.source
        scrape_ms = (
            sources.prometheus.scrape_interval_ms
            if sources.kind == "prometheus"
            else sources.embedded.scrape_interval_ms
        )
        advertised = []
        for suffix in config.advertised_statistics:
            _, statistic = split_derived_name(f"metric{DERIVED_SEPARATOR}{suffix}")
            if statistic is not None:
                advertised.append(statistic)
        return cls(
            external_metrics=tuple(
                ExternalMetric.from_rule(rule) for rule in config.external_metrics
            ),
            advertised_statistics=tuple(advertised),
            resource_metrics=config.resource_metrics.enabled,
            resource_metrics_window_ms=min(MAX_WINDOW_MS, max(MIN_WINDOW_MS, 2 * scrape_ms)),
        )

    def external_metric(self, name: str) -> ExternalMetric | None:
        """The external metric called ``name``, if configured."""
        return next((metric for metric in self.external_metrics if metric.name == name), None)


@dataclass(frozen=True)
class ApiContext:
    """Everything a route needs."""

    source: MetricSource
    objects: ObjectResolver
    settings: ApiSettings
    clock: Callable[[], int]
    """The current time in epoch milliseconds."""
    analysis: AnalysisBackend | None = None
    """Serves ``analysis.kubepulse.io``; ``None`` when the analysis API is disabled."""


def get_context(request: Request) -> ApiContext:
    """The application's :class:`ApiContext` (a FastAPI dependency)."""
    context = request.app.state.kubepulse_context
    assert isinstance(context, ApiContext)
    return context

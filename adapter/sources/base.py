"""The one protocol every metric source implements (DESIGN.md, Contract 3).

The API layer turns each HTTP request into a :class:`~kubepulse.metricquery.SeriesRequest`
(which metric, which series, which statistic, grouped by which object) and asks a
:class:`MetricSource` for the answer. Two sources implement it:

- :class:`adapter.sources.embedded.EmbeddedSource`: the adapter's own time-series store,
  filled by its scraper;
- the Prometheus source (``adapter.sources.prometheus``): PromQL against Prometheus or
  anything that speaks it.

What a source promises:

- :meth:`MetricSource.query` answers one value per object, computed as the docstring of
  :class:`~kubepulse.metricquery.SeriesRequest` describes (``sum by (object)`` of the
  per-series statistic; histogram percentiles from bucket increases summed per ``le``).
  An object whose newest sample is older than the source's staleness limit, or that has
  no value over the window (a counter with one sample, a histogram without
  observations, a forecast without enough points), is *absent*: never zero, so the HPA
  holds instead of scaling on stale data. Values are finite.
- It raises :class:`MetricNotFoundError` when the metric has no series at all (the API
  answers 404), :class:`SourceUnavailableError` when its backend cannot be reached or
  fails (503), and :class:`~kubepulse.errors.KubepulseValueError` when the request
  cannot be answered as asked, such as the ``max`` of a histogram (400). Nothing else:
  a backend's own exception types never leak.
- :meth:`MetricSource.metrics` lists what can be served now, for discovery.
- Calls may come concurrently from many requests; a source serialises what it must.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from kubepulse.errors import KubepulseError
from kubepulse.metricquery import (
    NAMESPACE_LABEL,
    NODE_LABEL,
    POD_LABEL,
    MetricKind,
    ObjectValue,
    SeriesRequest,
)

__all__ = [
    "MetricDescriptor",
    "MetricNotFoundError",
    "MetricScope",
    "MetricSource",
    "SourceError",
    "SourceUnavailableError",
    "scopes_from_labels",
    "served_forecast",
]


class SourceError(KubepulseError):
    """Base class of the errors a metric source raises on purpose."""


class SourceUnavailableError(SourceError):
    """The source's backend is down, unreachable or failing; the API answers 503.

    The message says what failed in words a cluster operator can act on (which URL, what
    status), without the backend's internals.
    """


class MetricNotFoundError(SourceError):
    """The source has no series of the metric at all; the API answers 404.

    Attributes:
        metric: the base metric name asked for.
    """

    def __init__(self, metric: str, message: str | None = None) -> None:
        self.metric = metric
        super().__init__(message or f"no series of the metric {metric!r} are known")


class MetricScope(enum.Enum):
    """Which objects a metric's series describe, from the labels they carry."""

    POD = "pod"
    """Series carry ``namespace`` and ``pod``: served for pods and, over their pods, for
    Deployments, StatefulSets and ReplicaSets."""
    NODE = "node"
    """Series carry ``node``."""
    NAMESPACE = "namespace"
    """Series carry ``namespace``: served for Namespace objects."""
    EXTERNAL = "external"
    """Series carry none of those labels: only an external metric rule can serve them."""


def scopes_from_labels(labels: Mapping[str, str] | frozenset[str]) -> frozenset[MetricScope]:
    """Which objects a series with these labels (or label names) describes."""
    scopes: set[MetricScope] = set()
    if NAMESPACE_LABEL in labels:
        scopes.add(MetricScope.NAMESPACE)
        if POD_LABEL in labels:
            scopes.add(MetricScope.POD)
    if NODE_LABEL in labels:
        scopes.add(MetricScope.NODE)
    return frozenset(scopes) if scopes else frozenset({MetricScope.EXTERNAL})


def served_forecast(forecast: float, observed: Sequence[float]) -> float:
    """The forecast a source serves, given the points it was fitted to.

    A quantity never negative over the window (a rate, a latency, a queue depth) is not
    served below zero: a falling trend extrapolated past zero is not a value the metric
    can take, and an HPA would read it as one. Both sources apply this rule.
    """
    if forecast < 0 and observed and min(observed) >= 0:
        return 0.0
    return forecast


@dataclass(frozen=True)
class MetricDescriptor:
    """One metric a source can serve, for discovery."""

    name: str
    """The base name (a histogram's name without ``_bucket``)."""
    kind: MetricKind
    """Gauge, counter or histogram: decides the natural aggregation."""
    scopes: frozenset[MetricScope]
    """Which objects it is served for."""


@runtime_checkable
class MetricSource(Protocol):
    """Where the adapter gets numbers from. All methods are coroutines."""

    async def query(self, request: SeriesRequest, now_ms: int) -> list[ObjectValue]:
        """The statistic of ``request`` at ``now_ms``, one value per object, stale ones absent.

        Raises:
            MetricNotFoundError: no series of ``request.metric`` exist.
            SourceUnavailableError: the backend cannot answer now.
            KubepulseValueError: the statistic cannot be computed for this metric.
        """
        ...

    async def metrics(self) -> list[MetricDescriptor]:
        """Every metric with fresh data, for the discovery documents.

        Raises:
            SourceUnavailableError: the backend cannot answer now.
        """
        ...

    async def ready(self) -> bool:
        """Whether the source can answer queries (``/readyz``)."""
        ...

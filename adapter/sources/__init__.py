"""Metric sources: where the adapter's numbers come from (DESIGN.md, Contract 3).

:mod:`~adapter.sources.base` holds the :class:`MetricSource` protocol and its errors;
:mod:`~adapter.sources.embedded` is the default source over the adapter's own store.
"""

from __future__ import annotations

from adapter.sources.base import (
    MetricDescriptor,
    MetricNotFoundError,
    MetricScope,
    MetricSource,
    SourceError,
    SourceUnavailableError,
    scopes_from_labels,
)

__all__ = [
    "MetricDescriptor",
    "MetricNotFoundError",
    "MetricScope",
    "MetricSource",
    "SourceError",
    "SourceUnavailableError",
    "scopes_from_labels",
]

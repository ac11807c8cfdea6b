"""Where usage history comes from: the protocol every history source follows.

Sources: :class:`~kubepulse.collect.prometheus_history.PrometheusHistory` (the
exporter's metrics in Prometheus), :class:`~kubepulse.collect.metrics_server.MetricsServerHistory`
(sampled CPU and memory only) and, inside the adapter, its own store. Each returns a
:class:`~kubepulse.analysis.inputs.UsageHistory` in which what it did not measure is
absent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from kubepulse.analysis.inputs import UsageHistory

__all__ = ["HistorySource"]


class HistorySource(Protocol):
    """Reads measured usage over a time range."""

    def fetch(
        self, start_ms: int, end_ms: int, namespaces: Iterable[str] | None = None
    ) -> UsageHistory:
        """Usage over ``[start_ms, end_ms]``, for ``namespaces`` (``None``: every one).

        Raises:
            KubepulseError: the source cannot answer; the message says what to check.
        """
        ...

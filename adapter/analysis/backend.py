"""What the analysis API needs from the adapter: inputs collected, analyses computed.

:mod:`adapter.api.analysis` routes and validates; an :class:`AnalysisBackend` collects
the snapshot and history (:class:`adapter.analysis.service.AnalysisService` does it from
the adapter's informer and metric source) and runs the analysis off the event loop.
"""

from __future__ import annotations

from typing import Any, Protocol

from kubepulse.analysis.resources import Analysis, AnalysisInputs, AnalysisRequest
from kubepulse.errors import KubepulseError

__all__ = ["AnalysisBackend", "AnalysisUnavailableError"]


class AnalysisUnavailableError(KubepulseError):
    """The backend cannot collect inputs now (not synced, history source down)."""


class AnalysisBackend(Protocol):
    """Collects what an analysis needs.

    The adapter's is :class:`~adapter.analysis.service.AnalysisService`.
    """

    def ready(self) -> bool:
        """Whether the view of the cluster is synced."""
        ...

    def not_ready_reason(self) -> str:
        """Why :meth:`ready` is false, for the 503's message."""
        ...

    async def inputs(self, history_ms: int, namespace: str | None, clock_ms: int) -> AnalysisInputs:
        """The snapshot, ``history_ms`` of history ending at ``clock_ms``, and the HPAs.

        Raises:
            AnalysisUnavailableError: inputs cannot be collected now; the message says why.
        """
        ...

    async def compute(
        self, analysis: Analysis, inputs: AnalysisInputs, request: AnalysisRequest
    ) -> Any:
        """Run ``analysis`` (off the event loop)."""
        ...

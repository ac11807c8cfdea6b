"""The adapter's analysis backend: its informer's snapshot and its source's history.

The adapter keeps a watched view of the cluster's objects (nodes, pods, namespaces,
quotas, HPAs) and reads usage history from the same place its metrics come from: the
embedded store, or Prometheus. :class:`AnalysisService` joins the two for each request
of :mod:`adapter.api.analysis` and runs the analysis in a worker thread, so that the
event loop keeps answering HPAs while a large report is computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from adapter.analysis.backend import AnalysisUnavailableError
from kubepulse.analysis.inputs import ClusterSnapshot
from kubepulse.analysis.resources import Analysis, AnalysisInputs, AnalysisRequest
from kubepulse.collect.history import HistorySource
from kubepulse.errors import KubepulseError, KubepulseValueError

__all__ = ["AnalysisService", "ClusterView"]


class ClusterView(Protocol):
    """A watched, current view of the cluster.

    :class:`kubepulse.collect.informer.ClusterInformer` is one.
    """

    def synced(self) -> bool:
        """Whether every kind has been listed once."""
        ...

    def snapshot(self) -> ClusterSnapshot:
        """The objects as of now."""
        ...

    def autoscalers(self) -> tuple[Mapping[str, Any], ...]:
        """The HorizontalPodAutoscalers, as kube-apiserver returns them."""
        ...

    def problems(self) -> Mapping[str, str]:
        """The last error of each kind that cannot be listed or watched now."""
        ...


class AnalysisService:
    """Collects inputs for, and computes, the analysis API's answers.

    Args:
        view: the cluster's objects.
        history: where usage history is read.
    """

    def __init__(self, view: ClusterView, history: HistorySource) -> None:
        self._view = view
        self._history = history

    def ready(self) -> bool:
        """Whether the view of the cluster is synced."""
        return self._view.synced()

    def not_ready_reason(self) -> str:
        """Why :meth:`ready` is false, with the failing kinds' errors."""
        problems = "; ".join(f"{kind}: {error}" for kind, error in self._view.problems().items())
        if problems:
            return f"the adapter cannot list the cluster's objects ({problems})"
        return "the adapter is still listing the cluster's objects; retry in a few seconds"

    async def inputs(self, history_ms: int, namespace: str | None, clock_ms: int) -> AnalysisInputs:
        """The snapshot, the last ``history_ms`` of history and the HPAs."""
        snapshot = self._view.snapshot()
        namespaces = None if namespace is None else (namespace,)
        try:
            history = await run_in_threadpool(
                self._history.fetch, clock_ms - history_ms, clock_ms, namespaces
            )
        except KubepulseValueError:
            raise
        except KubepulseError as error:
            raise AnalysisUnavailableError(f"cannot read usage history: {error}") from error
        return AnalysisInputs(snapshot, history, self._view.autoscalers())

    async def compute(
        self, analysis: Analysis, inputs: AnalysisInputs, request: AnalysisRequest
    ) -> Any:
        """``analysis`` over ``inputs``, in a worker thread."""
        return await run_in_threadpool(analysis.run, inputs, request)

"""Usage history from metrics-server, for clusters without the exporter or Prometheus.

metrics-server (``metrics.k8s.io/v1beta1``) holds one figure per pod container and per
node: the CPU rate and memory working set over its last window. It keeps no history, so
:class:`MetricsServerHistory` builds one by sampling: every :meth:`fetch` takes a
sample, and :meth:`sample` may be called on a schedule (the facade does, in a thread)
to accumulate up to ``retention_ms``. What metrics-server does not measure (throttling,
OOM kills, pressure stall, available memory and storage, quota history) stays absent
in the :class:`~kubepulse.analysis.inputs.UsageHistory`, so analyzers report it as
missing rather than as zero.

When metrics-server is not installed kube-apiserver answers 404 (or 503 when its
APIService is registered but unavailable); both raise :class:`MetricsServerUnavailableError`
with what to do.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from kubepulse.analysis.inputs import ContainerRef, TimeSeries, UsageHistory
from kubepulse.errors import KubepulseError
from kubepulse.model import parse_rfc3339_ms
from kubepulse.quantity import cpu_cores, memory_bytes

__all__ = [
    "JsonGetter",
    "MetricsServerHistory",
    "MetricsServerUnavailableError",
]

POD_METRICS_PATH: Final = "/apis/metrics.k8s.io/v1beta1/pods"

_DEFAULT_RETENTION_MS: Final = 3_600_000


class MetricsServerUnavailableError(KubepulseError):
    """metrics-server did not answer: not installed, or its APIService is unavailable."""


class JsonGetter(Protocol):
    """GET a kube-apiserver path and return the decoded object (``None`` on 404)."""

    def __call__(self, path: str) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class _Sample:
    timestamp_ms: int
    cpu_cores: Mapping[ContainerRef, float]
    memory_bytes: Mapping[ContainerRef, float]


class MetricsServerHistory:
    """A history of pod containers' CPU and memory, sampled from metrics-server.

    Args:
        get: GETs a kube-apiserver path (``ObjectLister.get`` or any callable alike);
            it may raise :class:`~kubepulse.errors.KubepulseError` for failed calls.
        clock: the current time in epoch milliseconds, used when metrics-server omits
            a sample's timestamp.
        retention_ms: how much sampled history to keep.
    """

    def __init__(
        self,
        get: JsonGetter,
        *,
        clock: Callable[[], int],
        retention_ms: int = _DEFAULT_RETENTION_MS,
    ) -> None:
        self._get = get
        self._clock = clock
        self._retention_ms = retention_ms
        self._samples: deque[_Sample] = deque()
        self._lock = threading.Lock()

    def sample(self) -> int:
        """Read metrics-server once and keep the figures; returns the containers read.

        Raises:
            MetricsServerUnavailableError: metrics-server is not installed or not
                answering; the message says how to check it.
        """
        try:
            answer = self._get(POD_METRICS_PATH)
        except KubepulseError as exc:
            raise MetricsServerUnavailableError(
                f"metrics-server did not answer ({exc}); check it with `kubectl get "
                "apiservice v1beta1.metrics.k8s.io`, or give kubepulse a Prometheus URL"
            ) from exc
        if answer is None:
            raise MetricsServerUnavailableError(
                "metrics-server is not installed (metrics.k8s.io answered 404); install it, "
                "or give kubepulse a Prometheus URL or the adapter for usage history"
            )
        sample = _parse_pod_metrics(answer.get("items") or (), default_ms=self._clock())
        with self._lock:
            self._samples.append(sample)
            horizon = sample.timestamp_ms - self._retention_ms
            while self._samples and self._samples[0].timestamp_ms < horizon:
                self._samples.popleft()
        return len(sample.cpu_cores)

    def fetch(
        self, start_ms: int, end_ms: int, namespaces: Iterable[str] | None = None
    ) -> UsageHistory:
        """Sample once, then return every kept sample in ``[start_ms, end_ms]``.

        A sample is stamped with the end of metrics-server's own window; one taken
        before ``start_ms`` is left out even if it is the only one, so a short window
        may hold a single point: analyzers see how little was measured.
        """
        self.sample()
        wanted = None if namespaces is None else frozenset(namespaces)
        cpu: dict[ContainerRef, list[tuple[int, float]]] = {}
        memory: dict[ContainerRef, list[tuple[int, float]]] = {}
        with self._lock:
            samples = tuple(self._samples)
        for sample in samples:
            if not start_ms <= sample.timestamp_ms <= end_ms:
                continue
            for figures, into in ((sample.cpu_cores, cpu), (sample.memory_bytes, memory)):
                for ref, value in figures.items():
                    if wanted is None or ref.namespace in wanted:
                        into.setdefault(ref, []).append((sample.timestamp_ms, value))
        return UsageHistory(
            start_ms=start_ms,
            end_ms=end_ms,
            cpu_cores={ref: TimeSeries.of(points) for ref, points in cpu.items()},
            memory_working_set_bytes={ref: TimeSeries.of(points) for ref, points in memory.items()},
        )


def _parse_pod_metrics(items: Iterable[Any], *, default_ms: int) -> _Sample:
    cpu: dict[ContainerRef, float] = {}
    memory: dict[ContainerRef, float] = {}
    newest = 0
    for item in items:
        metadata = item.get("metadata") or {}
        namespace, pod = metadata.get("namespace"), metadata.get("name")
        if not namespace or not pod:
            continue
        stamp = item.get("timestamp")
        if stamp:
            newest = max(newest, parse_rfc3339_ms(stamp))
        for container in item.get("containers") or ():
            ref = ContainerRef(namespace, pod, container.get("name", ""))
            usage = container.get("usage") or {}
            if "cpu" in usage:
                cpu[ref] = float(cpu_cores(usage["cpu"]))
            if "memory" in usage:
                memory[ref] = float(memory_bytes(usage["memory"]))
    return _Sample(newest or default_ms, cpu, memory)

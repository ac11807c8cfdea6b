"""``K8sResourceMonitor``: the analyzers as a library, against a live cluster.

::

    from kubepulse import K8sResourceMonitor

    with K8sResourceMonitor(prometheus_url="http://prometheus:9090").connect(
        kubeconfig="~/.kube/config", context="prod"
    ) as monitor:
        report = monitor.detect_limit_breaches(threshold_percent=90, time_window="5m")
        for breach in report.breaches:
            ...

The monitor joins the two inputs every analyzer takes:

- the cluster's objects, collected with paged lists and then kept current with watches
  (:class:`~kubepulse.collect.informer.ClusterInformer`), so repeated questions cost the
  API server nothing more; ``connect(watch=False)`` lists once per question instead,
  which is what a one-shot command wants;
- usage history, from Prometheus when ``prometheus_url`` is given (the exporter's
  metrics, see ``docs/analysis/history.md``), otherwise sampled from metrics-server,
  which knows only CPU and memory now. Whatever the source does not have is absent
  from the results' ``missing_data``, never guessed; a source that cannot be reached
  leaves the history empty and says so in :attr:`K8sResourceMonitor.warnings`.

Every method validates its arguments the way the analysis API and ``kubectl pulse`` do,
through the same table (:data:`kubepulse.analysis.registry.ANALYSES`), so an error reads
the same everywhere and names what is valid. Results are the analyzers' frozen
dataclasses; :func:`kubepulse.analysis.to_json` turns any of them into JSON.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol

from kubepulse.analysis.fragmentation import FragmentationReport
from kubepulse.analysis.hpa import HpaMetricsReport
from kubepulse.analysis.inputs import UsageHistory
from kubepulse.analysis.limits import LimitBreachReport
from kubepulse.analysis.nodes import NodePressureReport
from kubepulse.analysis.quota import NamespaceReport, QuotaReport
from kubepulse.analysis.recommend import RecommendationReport
from kubepulse.analysis.registry import find_analysis
from kubepulse.analysis.resources import (
    Analysis,
    AnalysisInputs,
    AnalysisRequest,
    parse_params,
    result_document,
)
from kubepulse.collect.history import HistorySource
from kubepulse.collect.informer import ClusterInformer
from kubepulse.collect.lister import ObjectLister
from kubepulse.collect.metrics_server import MetricsServerHistory
from kubepulse.collect.prometheus_history import PrometheusHistory
from kubepulse.collect.snapshot import collect_snapshot
from kubepulse.errors import KubepulseError, KubepulseValueError, UnknownObjectError
from kubepulse.kubeconnect import ClusterConnection, current_namespace, load_cluster_connection

__all__ = ["K8sResourceMonitor", "ProgressReporter"]

logger = logging.getLogger(__name__)

_DEFAULT_SYNC_TIMEOUT_S: Final = 120.0


class ProgressReporter(Protocol):
    """Where long collections report how far they got (``kubectl pulse`` draws a line)."""

    def update(self, what: str, count: int) -> None:
        """``count`` objects of ``what`` collected so far."""
        ...

    def step(self, message: str) -> None:
        """A new phase started."""
        ...


class _Silent:
    def update(self, what: str, count: int) -> None:
        """Nothing to report to."""

    def step(self, message: str) -> None:
        """Nothing to report to."""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class K8sResourceMonitor:
    """Answers the analyzers' questions about one cluster.

    Args:
        prometheus_url: read usage history from this Prometheus (which scrapes the
            kubepulse exporter); without it, history is sampled from metrics-server.
        history: any other :class:`~kubepulse.collect.history.HistorySource` (the
            adapter passes its embedded store); overrides ``prometheus_url``.
        request_timeout: seconds to wait for kube-apiserver and Prometheus.
        clock: the current time in seconds since the epoch.
    """

    def __init__(
        self,
        *,
        prometheus_url: str | None = None,
        history: HistorySource | None = None,
        request_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if request_timeout <= 0:
            raise KubepulseValueError(
                f"request_timeout must be a positive number of seconds, got {request_timeout}"
            )
        self._prometheus_url = prometheus_url
        self._history = history
        self._timeout = request_timeout
        self._clock = clock
        self._connection: ClusterConnection | None = None
        self._lister: ObjectLister | None = None
        self._informer: ClusterInformer | None = None
        self._default_namespace = "default"
        self._warnings: list[str] = []
        self._lock = threading.Lock()
        if prometheus_url is not None and history is None:
            self._history = PrometheusHistory(prometheus_url, timeout=request_timeout)

    # ------------------------------------------------------------------ connection

    def connect(
        self,
        kubeconfig: str | Path | None = None,
        context: str | None = None,
        *,
        watch: bool = True,
        sync_timeout: float = _DEFAULT_SYNC_TIMEOUT_S,
        progress: ProgressReporter | None = None,
    ) -> K8sResourceMonitor:
        """Connect to the cluster; returns the monitor, so ``with ....connect() as m``.

        Args:
            kubeconfig: the kubeconfig file; ``None`` uses in-cluster credentials in a pod,
                else ``$KUBECONFIG`` or ``~/.kube/config``.
            context: the kubeconfig context (default: its current context).
            watch: list every kind once and keep it current with watches (for repeated
                questions); ``False`` lists afresh for each question.
            sync_timeout: with ``watch``, how long to wait for the first full listing.
            progress: told how the first listing goes.

        Raises:
            KubepulseError: the credentials cannot be loaded, the context does not exist
                (the message lists the ones that do), or the first listing failed.
        """
        path = None if kubeconfig is None else Path(kubeconfig).expanduser()
        self.close()
        connection = load_cluster_connection(path, context)
        self._connection = connection
        self._lister = ObjectLister(connection, timeout=self._timeout)
        self._default_namespace = current_namespace(path, context)
        if self._history is None:
            self._history = MetricsServerHistory(
                self._lister.get, clock=lambda: int(self._clock() * 1000)
            )
        if watch:
            reporter = progress or _Silent()
            reporter.step("listing the cluster's objects ...")
            informer = ClusterInformer(connection, timeout=self._timeout)
            informer.start()
            self._informer = informer
            if not informer.wait_synced(sync_timeout):
                problems = "; ".join(
                    f"{kind}: {problem}" for kind, problem in informer.problems().items()
                )
                self.close()
                raise KubepulseError(
                    f"the cluster's objects were not all listed within {sync_timeout:g} s"
                    + (f" ({problems})" if problems else "")
                    + "; check that kube-apiserver answers (`kubectl get --raw /readyz`) and "
                    "that your credentials may list and watch nodes, pods, namespaces, "
                    "resourcequotas, horizontalpodautoscalers, deployments, replicasets and "
                    "statefulsets"
                )
        return self

    def close(self) -> None:
        """Stop watching and release connections. The monitor may connect again."""
        if self._informer is not None:
            self._informer.close()
            self._informer = None
        if self._lister is not None:
            self._lister.close()
            self._lister = None
        self._connection = None

    def __enter__(self) -> K8sResourceMonitor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
        if isinstance(self._history, PrometheusHistory):
            self._history.close()

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the last question could not use (a history source that did not answer)."""
        with self._lock:
            return tuple(self._warnings)

    @property
    def default_namespace(self) -> str:
        """The kubeconfig context's namespace (``default`` when it sets none)."""
        return self._default_namespace

    # ------------------------------------------------------------------ questions

    def get_namespace_resources(
        self,
        namespace: str | None = None,
        include_pods: bool = True,
        include_quota: bool = True,
        *,
        top: int = 5,
        window: str = "1h",
    ) -> NamespaceReport:
        """Usage, requests, limits, quota and top consumers of one namespace.

        ``namespace`` defaults to the kubeconfig context's. See
        :func:`kubepulse.analysis.quota.namespace_report`.
        """
        result: NamespaceReport = self._answer(
            "reports",
            namespace=namespace or self._default_namespace,
            includePods=include_pods,
            includeQuota=include_quota,
            top=top,
            window=window,
        )
        return result

    def detect_limit_breaches(
        self,
        threshold_percent: float = 90,
        time_window: str = "5m",
        *,
        namespace: str | None = None,
        top: int | None = None,
    ) -> LimitBreachReport:
        """Containers and pods near or over their limits and requests, over ``time_window``.

        ``top`` keeps only the worst ``top`` items of each list (at 50,000 pods the full
        report is some 110 MB of JSON). See
        :func:`kubepulse.analysis.limits.detect_limit_breaches`.
        """
        result: LimitBreachReport = self._answer(
            "limitbreaches",
            namespace=namespace,
            thresholdPercent=threshold_percent,
            timeWindow=time_window,
            top=top,
        )
        return result

    def analyze_node_pressure(
        self,
        include_scheduling_hints: bool = False,
        predict_evictions: bool = True,
        *,
        node: str | None = None,
        top: int | None = None,
    ) -> NodePressureReport:
        """Node pressure, capacity against requests and usage, and eviction risk per pod.

        ``top`` lists only the ``top`` pods most at risk of eviction (at 50,000 pods the
        full ranking costs nearly half of the analysis' time and is some 20 MB of JSON).
        See :func:`kubepulse.analysis.nodes.analyze_node_pressure`.
        """
        result: NodePressureReport = self._answer(
            "nodepressure",
            includeSchedulingHints=include_scheduling_hints,
            predictEvictions=predict_evictions,
            node=node,
            top=top,
        )
        return result

    def analyze_fragmentation(
        self, shape_cpu: str | None = None, shape_memory: str | None = None
    ) -> FragmentationReport:
        """The largest pod that fits, stranded resources, and how many pods of a shape fit.

        See :func:`kubepulse.analysis.fragmentation.analyze_fragmentation`.
        """
        result: FragmentationReport = self._answer(
            "fragmentation", shapeCpu=shape_cpu, shapeMemory=shape_memory
        )
        return result

    def analyze_quotas(self, namespace: str | None = None, *, window: str = "24h") -> QuotaReport:
        """ResourceQuota use, trend, exhaustion forecast, alerts and unused quota.

        See :func:`kubepulse.analysis.quota.analyze_quotas`.
        """
        result: QuotaReport = self._answer("quotas", namespace=namespace, window=window)
        return result

    def generate_hpa_metrics(
        self,
        deployment: str,
        metric_type: str = "cpu",
        aggregation: str = "avg",
        *,
        namespace: str | None = None,
        window: str = "1m",
        predict: str | None = None,
        history: str = "1h",
    ) -> HpaMetricsReport:
        """The values an HPA on ``deployment`` would see, and a replay of the HPA.

        ``deployment`` is a name in ``namespace`` (default: the context's namespace) or
        ``namespace/name``. See :func:`kubepulse.analysis.hpa.generate_hpa_metrics`.
        """
        if "/" in deployment:
            namespace, _, deployment = deployment.partition("/")
        result: HpaMetricsReport = self._answer(
            "hpametrics",
            namespace=namespace or self._default_namespace,
            name=deployment,
            metricType=metric_type,
            aggregation=aggregation,
            window=window,
            predict=predict,
            history=history,
        )
        return result

    def get_resource_recommendations(
        self,
        namespace: str | None = None,
        optimization_target: str = "balanced",
        *,
        what_if: bool = False,
        window: str = "24h",
        top: int | None = None,
    ) -> RecommendationReport:
        """Requests and limits per container, for ``balanced``, ``performance`` or ``cost``.

        ``top`` lists only the ``top`` workloads whose requests change most. See
        :func:`kubepulse.analysis.recommend.recommend_resources`.
        """
        result: RecommendationReport = self._answer(
            "recommendations",
            namespace=namespace,
            target=optimization_target,
            whatIf=what_if,
            window=window,
            top=top,
        )
        return result

    def analysis_document(
        self,
        analysis: Analysis,
        *,
        namespace: str | None,
        name: str | None,
        params: Mapping[str, Any],
        progress: ProgressReporter | None = None,
    ) -> dict[str, Any]:
        """The analysis API's object for one request (what ``kubectl pulse --local`` prints).

        ``params`` are already parsed (:func:`~kubepulse.analysis.resources.parse_params`).
        """
        clock_ms = int(self._clock() * 1000)
        inputs = self._inputs(analysis.history_ms(params), namespace, clock_ms, progress)
        reporter = progress or _Silent()
        reporter.step(f"analysing {len(inputs.snapshot.pods)} pods ...")
        result = analysis.run(inputs, AnalysisRequest(namespace, name, params))
        document = result_document(analysis, result, inputs, clock_ms)
        if self._warnings:
            document["metadata"]["warnings"] = list(self._warnings)
        return document

    # ------------------------------------------------------------------ plumbing

    def _answer(
        self, resource: str, namespace: str | None = None, name: str | None = None, **given: Any
    ) -> Any:
        analysis = find_analysis(resource)
        raw = {key: text for key, value in given.items() if (text := _text(value)) is not None}
        params = parse_params(analysis, raw)
        clock_ms = int(self._clock() * 1000)
        inputs = self._inputs(analysis.history_ms(params), namespace, clock_ms, None)
        return analysis.run(inputs, AnalysisRequest(namespace, name, params))

    def _inputs(
        self,
        history_ms: int,
        namespace: str | None,
        clock_ms: int,
        progress: ProgressReporter | None,
    ) -> AnalysisInputs:
        if self._connection is None or self._lister is None:
            raise KubepulseError("the monitor is not connected; call connect() first")
        reporter = progress or _Silent()
        namespaces = None if namespace is None else (namespace,)
        if self._informer is not None:
            snapshot = self._informer.snapshot()
            autoscalers = self._informer.autoscalers()
        else:
            collected = collect_snapshot(
                self._connection, namespaces=namespaces, progress=reporter.update
            )
            snapshot = collected.snapshot
            autoscalers = collected.autoscalers
        if namespace is not None and namespace not in snapshot.namespace_names():
            known = ", ".join(snapshot.namespace_names()[:20])
            raise UnknownObjectError(
                f"namespace {namespace!r} not found; the namespaces are: {known}"
            )
        reporter.step("reading usage history ...")
        history = self._read_history(clock_ms - history_ms, clock_ms, namespaces)
        return AnalysisInputs(snapshot, history, tuple(autoscalers))

    def _read_history(
        self, start_ms: int, end_ms: int, namespaces: Iterable[str] | None
    ) -> UsageHistory:
        assert self._history is not None  # set by __init__ or connect()
        try:
            history = self._history.fetch(start_ms, end_ms, namespaces)
        except KubepulseValueError:
            raise
        except KubepulseError as error:
            warning = f"no usage history: {error}"
            logger.warning("%s", warning)
            with self._lock:
                self._warnings = [warning]
            return UsageHistory(start_ms=start_ms, end_ms=end_ms)
        with self._lock:
            self._warnings = []
        return history

"""``kubepulse-adapter``: the custom and external metrics API server.

    kubepulse-adapter [serve] [--config FILE] [flags]    # serve (the default)
    kubepulse-adapter --help                             # every flag, variable, default
    kubepulse-adapter version

Start-up, in order, each step failing with a message that says what to fix:

1. the configuration (:func:`adapter.config.load_config`: flags > environment > file >
   defaults), then structured logging;
2. the metric source: the embedded one restores its store from the checkpoint, starts
   pod discovery (exporters and annotated pods) and the static targets, the scraper and
   the checkpointer; the Prometheus one only needs its URL;
3. the object resolver (a pod list and watch on kube-apiserver), the analysis API's
   informer (lists and watches of nodes, pods, namespaces, quotas, HPAs and workloads;
   ``--no-analysis-api`` leaves it out) and the security stack (serving certificate,
   delegated authentication and authorization);
4. HTTPS until SIGTERM or SIGINT; then in-flight requests finish, the scraper and
   discovery stop and a last checkpoint is written.

Exit status: 0 after a clean stop, 1 when the adapter cannot start or fails, 2 for an
invalid configuration (every bad setting is listed).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from adapter.analysis.service import AnalysisService
from adapter.analysis.store_history import StoreHistory
from adapter.api.context import ApiSettings, wall_clock_ms
from adapter.app import create_app
from adapter.config import AdapterConfig, ConfigError, load_config
from adapter.logs import configure_logging
from adapter.objects import KubernetesObjectResolver
from adapter.scrape.checkpointer import Checkpointer, CheckpointMetrics, CheckpointSettings
from adapter.scrape.scraper import ScrapeMetrics, Scraper, ScrapeSettings
from adapter.scrape.targets import (
    DiscoverySettings,
    KubernetesTargetDiscovery,
    MergedTargets,
    StaticTargets,
    TargetSource,
)
from adapter.security import AdapterSecurity
from adapter.security.kubeapi import (
    ClusterConnection,
    load_client_configuration,
    load_cluster_connection,
)
from adapter.server import serve
from adapter.sources.base import MetricSource
from adapter.sources.embedded import EmbeddedSource
from adapter.sources.prometheus import PrometheusSource
from kubepulse import __version__
from kubepulse.collect.history import HistorySource
from kubepulse.collect.informer import ClusterInformer
from kubepulse.collect.prometheus_history import PrometheusHistory
from kubepulse.errors import KubepulseError
from kubepulse.store import TimeSeriesStore

__all__ = ["main"]

LOGGER = logging.getLogger("kubepulse.adapter")
# The first pod list may take a while on a big cluster; the API answers 503 until then
# (``/readyz`` says so), so this only bounds how long start-up waits before serving.
_OBJECTS_SYNC_WAIT_S = 30.0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the adapter; the exit status (see the module docstring)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments in (["--version"], ["version"]):
        print(f"kubepulse-adapter {__version__}")
        return 0
    if arguments[:1] == ["serve"]:
        arguments = arguments[1:]
    try:
        config = load_config(arguments)
    except ConfigError as error:
        print(f"kubepulse-adapter: {error}", file=sys.stderr)
        return 2
    configure_logging(config.log.level, config.log.format)
    for warning in config.warnings:
        LOGGER.warning("%s", warning)
    LOGGER.info(
        "starting kubepulse-adapter %s",
        __version__,
        extra={"fields": {"config": config.describe()}},
    )
    try:
        asyncio.run(run(config))
    except KubepulseError as error:
        LOGGER.error("cannot serve: %s", error)
        return 1
    LOGGER.info("stopped")
    return 0


async def run(config: AdapterConfig) -> None:
    """Serve until SIGTERM or SIGINT (see the module docstring).

    Raises:
        KubepulseError: a part cannot start; the message says what to fix.
    """
    registry = own_metrics_registry()
    security = await AdapterSecurity.create(config)
    try:
        connection = load_cluster_connection(config.kubeconfig)
        async with (
            open_source(config, registry) as source,
            KubernetesObjectResolver(
                connection, request_timeout_s=config.kube_api_timeout_ms / 1000
            ) as objects,
            open_analysis(config, connection, source) as analysis,
        ):
            with contextlib.suppress(KubepulseError):  # /readyz reports it meanwhile
                await objects.wait_until_synced(_OBJECTS_SYNC_WAIT_S)
            app = create_app(
                source=source,
                objects=objects,
                settings=ApiSettings.from_config(config),
                registry=registry,
                analysis=analysis,
            )
            await serve(security.protect(app), config, ssl_context=security.ssl_context)
    finally:
        await security.aclose()


@contextlib.asynccontextmanager
async def open_analysis(
    config: AdapterConfig, connection: ClusterConnection, source: MetricSource
) -> AsyncIterator[AnalysisService | None]:
    """The analysis API's backend (``None`` when disabled): an informer, and history
    from the same place the metrics come from (the embedded store, or Prometheus)."""
    if not config.analysis.enabled:
        yield None
        return
    history: HistorySource
    prometheus: PrometheusHistory | None = None
    if isinstance(source, EmbeddedSource):
        history = StoreHistory(source.store, source.lock)
    else:
        settings = config.source.prometheus
        if settings.url is None:  # load_config already refuses this
            raise KubepulseError("source 'prometheus' needs sources.prometheus.url")
        prometheus = PrometheusHistory(
            settings.url,
            timeout=settings.timeout_ms / 1000,
            resolution_ms=settings.scrape_interval_ms,
        )
        history = prometheus
    informer = ClusterInformer(connection, timeout=config.kube_api_timeout_ms / 1000)
    informer.start()
    try:
        yield AnalysisService(informer, history)
    finally:
        await asyncio.to_thread(informer.close)
        if prometheus is not None:
            prometheus.close()


def own_metrics_registry() -> CollectorRegistry:
    """A registry with the process, platform and garbage-collector collectors."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


@contextlib.asynccontextmanager
async def open_source(
    config: AdapterConfig, registry: CollectorRegistry
) -> AsyncIterator[MetricSource]:
    """The configured metric source, started, and stopped on exit."""
    if config.source.kind == "prometheus":
        settings = config.source.prometheus
        if settings.url is None:  # load_config already refuses this
            raise KubepulseError("source 'prometheus' needs sources.prometheus.url")
        prometheus = PrometheusSource(
            settings.url,
            timeout_ms=settings.timeout_ms,
            staleness_ms=config.staleness_ms,
            resolution_ms=settings.scrape_interval_ms,
        )
        try:
            yield prometheus
        finally:
            await prometheus.aclose()
        return
    async with _embedded_source(config, registry) as embedded:
        yield embedded


@contextlib.asynccontextmanager
async def _embedded_source(
    config: AdapterConfig, registry: CollectorRegistry
) -> AsyncIterator[EmbeddedSource]:
    settings = config.source.embedded
    lock = threading.Lock()

    def empty_store() -> TimeSeriesStore:
        return TimeSeriesStore(
            retention_ms=settings.retention_ms, resolution_ms=settings.scrape_interval_ms
        )

    checkpointer: Checkpointer | None = None
    if settings.checkpoint_path is None:
        store = empty_store()
    else:
        _prepare_directory(settings.checkpoint_path)
        checkpointer = await asyncio.to_thread(
            Checkpointer.open,
            settings.checkpoint_path,
            lock=lock,
            factory=empty_store,
            settings=CheckpointSettings(interval_seconds=settings.checkpoint_interval_ms / 1000),
            metrics=CheckpointMetrics(registry),
        )
        store = checkpointer.store
        # A restored store is millions of long-lived objects; keeping them out of the
        # cyclic collector's generations saves a full walk of them on every collection.
        gc.freeze()

    sources: list[TargetSource] = []
    if settings.static_targets:
        sources.append(StaticTargets(settings.static_targets))
    discovery: KubernetesTargetDiscovery | None = None
    if settings.discovery:
        import kubernetes.client  # noqa: PLC0415 - only discovery needs the client library

        client_configuration, _ = load_client_configuration(config.kubeconfig)
        discovery = KubernetesTargetDiscovery(
            kubernetes.client.ApiClient(client_configuration),
            DiscoverySettings(
                exporter_selector=settings.exporter_selector,
                annotated_pods=settings.annotated_pods,
                namespaces=settings.namespaces,
            ),
        )
        discovery.start()
        sources.append(discovery)
    scraper = Scraper(
        store,
        lock,
        MergedTargets(sources),
        ScrapeSettings(
            interval_seconds=settings.scrape_interval_ms / 1000,
            timeout_seconds=settings.scrape_timeout_ms / 1000,
            max_concurrent_scrapes=settings.scrape_concurrency,
            keep_metrics=settings.keep_metrics,
            drop_metrics=settings.drop_metrics,
        ),
        metrics=ScrapeMetrics(registry),
    )
    scraper.start()
    if checkpointer is not None:
        checkpointer.start()
    watched = discovery
    source = EmbeddedSource(
        store,
        clock=wall_clock_ms,
        staleness_ms=config.staleness_ms,
        lock=lock,
        ready=(lambda: watched.synced) if watched is not None else None,
    )
    try:
        yield source
    finally:
        await asyncio.to_thread(scraper.stop)
        if discovery is not None:
            await asyncio.to_thread(discovery.stop)
        if checkpointer is not None:
            LOGGER.info("writing the last checkpoint to %s", settings.checkpoint_path)
            await asyncio.to_thread(checkpointer.stop)


def _prepare_directory(checkpoint_path: Path) -> None:
    try:
        checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise KubepulseError(
            f"cannot create the checkpoint directory {checkpoint_path.parent}: "
            f"{error.strerror or error}; mount a writable volume there, set "
            "--checkpoint-path to a writable place, or --checkpoint-path='' to keep none"
        ) from error


if __name__ == "__main__":
    sys.exit(main())

"""``kubepulse-exporter``: serve this node's metrics, or say which pod a process belongs to.

::

    kubepulse-exporter [serve] [--listen-address 0.0.0.0:9847] [--mode auto|cluster|local] ...
    kubepulse-exporter which PID|CGROUP-PATH [--proc-root /host/proc] [-o text|json]
    kubepulse-exporter --version

``serve`` (the default) wires the parts and does nothing else:

1. settings from flags and environment (:mod:`exporter.config`); a bad value ends the
   command with status 2 and a message naming the flag, the variable and what is accepted;
2. logging (:mod:`exporter.logs`), JSON lines on stderr by default;
3. the pod metadata source: :class:`~exporter.metadata.LocalMetadata` without a cluster,
   or :class:`~exporter.podwatch.NodePodWatcher` watching this node's pods. ``--mode
   auto`` picks the watch inside a pod (the ServiceAccount), or with a kubeconfig whose
   API server answers for this node within 5 s; otherwise it runs locally and logs why;
4. :class:`~exporter.collector.ExporterCollector` in a fresh ``CollectorRegistry``,
   beside prometheus_client's ``ProcessCollector`` (``process_cpu_seconds_total``,
   ``process_resident_memory_bytes``…: the exporter's own cost, under the names every
   Prometheus exporter uses for it);
5. the HTTP server (:mod:`exporter.server`), then one ``serving`` log line with the
   effective settings and where each came from.

SIGTERM or SIGINT stops the server (requests in flight get 5 s), the sampler and the pod
watch, and the command exits 0. A server that cannot bind, or ``--mode cluster`` without
credentials, exits 1.

The Kubernetes client is imported only when the pod watch is used: it costs about 0.3 s
of start-up and 20 MiB of memory that a local exporter does not need.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any, Final

from prometheus_client import CollectorRegistry, ProcessCollector

from exporter import which
from exporter.collector import ExporterCollector
from exporter.config import ConfigError, ExporterConfig, UsageError, parse_config
from exporter.logs import configure_logging
from exporter.metadata import LocalMetadata, MetadataMode, MetadataSource
from exporter.server import HealthStatus, MetricsServer, ServerError, create_app
from kubepulse import __version__

__all__ = ["MetadataChoice", "choose_metadata", "main", "serve"]

_LOGGER: Final = logging.getLogger("kubepulse.exporter")
_SHUTDOWN_GRACE_SECONDS: Final = 5.0
_PROBE_TIMEOUT_SECONDS: Final = (3.0, 5.0)
_HTTP_NOT_FOUND: Final = 404
_SERVICE_HOST_ENV: Final = "KUBERNETES_SERVICE_HOST"
_SERVICE_PORT_ENV: Final = "KUBERNETES_SERVICE_PORT"
_HANDLED_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)


@dataclass
class MetadataChoice:
    """The metadata source ``serve`` uses, and why."""

    source: MetadataSource
    mode: MetadataMode
    reason: str
    """Why this mode: the flag, or what ``--mode auto`` found."""
    start: Callable[[], None] = lambda: None
    stop: Callable[[], None] = lambda: None


def _local(reason: str) -> MetadataChoice:
    return MetadataChoice(source=LocalMetadata(), mode=MetadataMode.LOCAL, reason=reason)


def _probe_node(api_client: Any, node_name: str) -> str | None:
    """``None`` when the API server answers for ``node_name``; else what went wrong."""
    import kubernetes.client  # noqa: PLC0415 - see the module docstring

    host = getattr(api_client.configuration, "host", "the API server")
    try:
        # With _preload_content=False the client returns the raw urllib3 response.
        response: Any = kubernetes.client.CoreV1Api(api_client).read_node(
            node_name, _preload_content=False, _request_timeout=_PROBE_TIMEOUT_SECONDS
        )
        response.release_conn()
    except kubernetes.client.exceptions.ApiException as exc:
        if exc.status == _HTTP_NOT_FOUND:
            return (
                f"the API server at {host} has no node named {node_name} (set --node-name "
                "to this node's name as in `kubectl get nodes`)"
            )
        return f"the API server at {host} answered HTTP {exc.status} for node {node_name}"
    except Exception as exc:  # any transport failure means "not usable now"
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"the API server at {host} did not answer ({detail})"
    return None


def choose_metadata(
    config: ExporterConfig,
    environ: Mapping[str, str],
    *,
    load_client: Callable[[str | None], Any] | None = None,
    probe_node: Callable[[Any, str], str | None] = _probe_node,
) -> MetadataChoice:
    """The metadata source for ``config.mode``; see the module docstring for ``auto``.

    Args:
        config: the settings.
        environ: the environment, to tell whether the exporter runs in a pod.
        load_client: builds the API client from a kubeconfig path or ``None``
            (default :func:`exporter.podwatch.load_api_client`).
        probe_node: asks the API server for this node; ``None`` when it answers.

    Raises:
        ApiClientConfigError: ``--mode cluster`` and no usable credentials.
    """
    if config.mode == "local":
        return _local("--mode local")
    from exporter.podwatch import (  # noqa: PLC0415 - see the module docstring
        ApiClientConfigError,
        NodePodWatcher,
        load_api_client,
    )

    load = load_client if load_client is not None else load_api_client
    in_pod = bool(environ.get(_SERVICE_HOST_ENV) and environ.get(_SERVICE_PORT_ENV))
    try:
        api_client = load(config.kubeconfig)
    except ApiClientConfigError as exc:
        if config.mode == "cluster":
            raise
        return _local(f"--mode auto found no Kubernetes API credentials: {exc}")
    if config.mode == "auto" and (config.kubeconfig is not None or not in_pod):
        # In a pod the ServiceAccount is the intended source: an API server that is down
        # at start is waited for by the watch, not a reason to run blind. A kubeconfig on
        # a workstation may point at any cluster, so it is asked about this node first.
        problem = probe_node(api_client, config.node_name)
        if problem is not None:
            api_client.close()
            return _local(f"--mode auto: {problem}")
    watcher = NodePodWatcher(
        node_name=config.node_name,
        api_client=api_client,
        max_requests_per_second=config.api_qps,
    )

    def stop() -> None:
        watcher.stop()
        api_client.close()

    reason = "--mode cluster" if config.mode == "cluster" else "--mode auto found the API server"
    return MetadataChoice(
        source=watcher,
        mode=MetadataMode.CLUSTER,
        reason=reason,
        start=watcher.start,
        stop=stop,
    )


def _health(collector: ExporterCollector, cgroup_root: str) -> Callable[[], HealthStatus]:
    def check() -> HealthStatus:
        if collector.last_scan_ok():
            return HealthStatus(ok=True)
        return HealthStatus(
            ok=False,
            reason=(
                f"the cgroup root {cgroup_root} could not be read in the last scans; mount "
                "the host's /sys/fs/cgroup there (read-only) or fix --cgroup-root (see "
                'kubepulse_exporter_errors_total{collector="cgroups"} and the log)'
            ),
        )

    return check


def serve(argv: list[str], environ: Mapping[str, str]) -> int:
    """Run the exporter until SIGTERM or SIGINT; returns the exit status."""
    try:
        config = parse_config(argv, environ)
    except (UsageError, ConfigError) as exc:
        print(f"kubepulse-exporter: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    configure_logging(config.log_level, config.log_format)
    for warning in config.warnings:
        _LOGGER.warning(warning)

    try:
        metadata = choose_metadata(config, environ)
    except Exception as exc:  # ApiClientConfigError; kubernetes is imported lazily
        _LOGGER.error("cannot start in cluster mode: %s", exc)
        return 1
    if metadata.mode is MetadataMode.LOCAL and config.mode == "auto":
        _LOGGER.info(
            "running without a cluster: pods are reported by UID and container ID only",
            extra={"reason": metadata.reason},
        )

    collector = ExporterCollector(
        node_name=config.node_name,
        metadata=metadata.source,
        proc_root=config.proc_root,
        cgroup_root=config.cgroup_root,
        sample_interval_seconds=config.sample_interval_seconds,
        top_host_processes=config.top_host_processes,
        max_series=config.max_series,
    )
    # The collector describes nothing (registering must not scan the node), so the
    # registry must be told to include it when /metrics?name[]=... restricts the output.
    registry = CollectorRegistry(support_collectors_without_names=True)
    registry.register(collector)
    ProcessCollector(registry=registry)
    try:
        server = MetricsServer(
            create_app(registry, _health(collector, config.cgroup_root)),
            host=config.listen_host,
            port=config.listen_port,
        )
    except ServerError as exc:
        _LOGGER.error("%s", exc)
        metadata.stop()
        return 1

    stopping = threading.Event()
    received: list[int] = []
    previous_handlers = _install_signal_handlers(stopping, received)
    try:
        metadata.start()
        collector.start()
        server.start()
        _LOGGER.info(
            "serving",
            extra={
                "version": __version__,
                "pid": os.getpid(),
                "listen_address": server.address,
                "metadata_mode": metadata.mode.value,
                "metadata_reason": metadata.reason,
                "config": config.describe(),
                "origins": dict(config.origins),
            },
        )
        while not stopping.wait(1.0):
            pass
        # Logged here rather than in the handler, which may interrupt a log call.
        _LOGGER.info("received %s", signal.Signals(received[0]).name)
        _LOGGER.info("stopping")
        server.shutdown(_SHUTDOWN_GRACE_SECONDS)
        collector.stop()
        metadata.stop()
    finally:
        _restore_signal_handlers(previous_handlers)
    _LOGGER.info("stopped")
    return 0


def _install_signal_handlers(stopping: threading.Event, received: list[int]) -> dict[int, Any]:
    """SIGTERM and SIGINT go to ``received`` and set ``stopping``; main thread only."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        stopping.set()

    return {signum: signal.signal(signum, on_signal) for signum in _HANDLED_SIGNALS}


def _restore_signal_handlers(previous: Mapping[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    """The ``kubepulse-exporter`` command; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] in (["--version"], ["version"]):
        print(f"kubepulse-exporter {__version__}")
        return 0
    if arguments[:1] == ["which"]:
        return which.main(arguments[1:])
    if arguments[:1] == ["serve"]:
        arguments = arguments[1:]
    return serve(arguments, os.environ)


if __name__ == "__main__":
    sys.exit(main())

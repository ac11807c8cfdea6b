"""The scale rig: 1,000 kwok nodes, 50,000 pods and one adapter, measured with both sources.

Builds the rig of :mod:`tests.cluster.scale` on the real control plane (etcd,
kube-apiserver, kube-controller-manager, kube-scheduler and kwok from
``scripts/install-test-tools.sh``): ``--nodes`` kwok nodes, ``--pods`` pods in namespaces
of ``max(--tiers)`` pods, the selectors of ``rig-0`` covering each tier (100, 1,000 and
5,000 pods by default); ``--shards`` synthetic exporter processes serving every node's
exporter page on loopback and ``bench/app_pages.py`` serving application metrics
(request counter, latency histogram) for the pods of ``rig-0``. Then, for each source
(``--sources``):

- **embedded**: ``python -m adapter serve --source=embedded`` scraping every node page
  and app page every ``--scrape-interval`` (static targets, discovery off);
- **prometheus**: Debian's Prometheus scraping the same pages every
  ``--scrape-interval``, and ``python -m adapter serve --source=prometheus`` on it.

One source at a time (the other's processes are stopped), the rig measures:

- ``ready_seconds``: from the adapter's start until it answers every question for the
  largest tier;
- ``steady_state``: RSS and CPU (share of one core) of the adapter (and Prometheus) over
  ``--steady-seconds`` with no queries; ``store``: the embedded store's series, estimated
  bytes and samples appended (its ``/metrics``), or Prometheus' head series;
- ``freshness``: ``--freshness-changes`` changes of one pod's working set on its exporter
  page at known instants (random phases of the scrape interval); the seconds until the
  adapter answers the new value (polled every 20 ms);
- ``answers``: per tier, the rate and p95 over 5 m of the app metrics, the working set
  (last) and CPU rate of the exporter's series, compared pod by pod with the values the
  rig serves (2 % tolerance; the Prometheus rate only after ``--prometheus-warmup``
  seconds of data);
- ``load``: per tier, ``--concurrency`` HPA-like clients alternating the rate and p95
  questions for ``--seconds``: p50, p99, max latency, answers per second, errors (a
  wrong item count is an error), adapter CPU;
- ``analysis``: the namespace report of ``rig-0`` and the node-pressure analysis over
  all nodes through the adapter's analysis API, ``--analysis-repeat`` times each.

Then, with the cluster stopped, in a child process (its RSS is its own):
``retention``: 24 h of the rig's own exporter pages for ``--retention-pods`` pods
(every pod on as many nodes as hold them, with the nodes' series), rendered at every
15 s of compressed time and appended to a ``kubepulse.store.TimeSeriesStore``: bytes per
sample held, the store's estimate and the RSS growth.

Prints one JSON object on stdout; progress on stderr. Requests go straight to the
adapter's port with the cluster admin's client certificate (no aggregator in the path).

    python bench/scale_rig.py                                    # the issue's scale
    python bench/scale_rig.py --nodes 100 --pods 5000            # smaller
    python bench/scale_rig.py --quick                            # a smoke run, minutes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Run from a checkout without installing: the repository root holds the packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psutil

from tests.cluster.controlplane import (
    CONTROL_PLANE_TOOLS,
    DEFAULT_CONTROLLERS,
    ControlPlane,
    ControlPlaneOptions,
    find_tool,
    install_termination_handlers,
    missing_tools,
)
from tests.cluster.scale import (
    AdapterProcess,
    RigLayout,
    RigSources,
    adapter_self_metrics,
    analysis_times,
    answers_ok,
    check_answers,
    create_objects,
    freshness,
    load,
    prometheus_config,
    retention_memory,
    rig_adapter,
    rig_sources,
    steady_state,
    wait_for_answers,
)
from tests.integration.prometheus_harness import INSTALL_HINT, prometheus_with_config

REPO = Path(__file__).resolve().parents[1]
# Without the node lifecycle: with 1,000 kwok nodes on 2 busy cores kwok's heartbeats
# fall behind, and that controller would mark every pod of a late node not ready (one
# more write per pod) and, after 5 minutes, have its pods evicted mid-measurement.
RIG_CONTROLLERS = tuple(
    name
    for name in DEFAULT_CONTROLLERS
    if name not in {"node-lifecycle-controller", "taint-eviction-controller"}
)


def log(message: str) -> None:
    print(f"[scale_rig] {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def head_series(prometheus_url: str) -> int | None:
    """Series in Prometheus' head block (None if it will not say)."""
    try:
        answer = httpx.get(f"{prometheus_url}/api/v1/status/tsdb", timeout=30).json()
        return int(answer["data"]["headStats"]["numSeries"])
    except (httpx.HTTPError, KeyError, ValueError, TypeError):
        return None


def _step(figures: dict[str, Any], name: str, action: Callable[[], Any]) -> bool:
    """``figures[name] = action()``; a failure is recorded under ``errors`` instead.

    One slow or failed measurement (say a Prometheus-source query past its timeout at
    5,000 pods) must not lose every other figure of a 40-minute run.
    """
    try:
        figures[name] = action()
    except (RuntimeError, httpx.HTTPError, ValueError, KeyError) as exc:
        figures.setdefault("errors", {})[name] = f"{type(exc).__name__}: {str(exc)[:1500]}"
        log(f"{name} failed: {type(exc).__name__}: {str(exc)[:300]}")
        return False
    return True


def measure(
    adapter: AdapterProcess,
    sources: RigSources,
    arguments: argparse.Namespace,
    *,
    watched: dict[str, int],
    data_since: float,
    warmup_s: float,
) -> dict[str, Any]:
    """Every figure of one adapter (see the module docstring), in order."""
    layout = sources.layout
    figures: dict[str, Any] = {"load_average_at_start": load_average()}
    began = time.monotonic()
    if not _step(
        figures,
        "ready_seconds",
        lambda: wait_for_answers(adapter, layout, arguments.ready_timeout, log),
    ):
        return figures
    log(f"{adapter.source}: answers every question after {time.monotonic() - began:.0f} s")
    figures["steady_state"] = steady_state(
        {"adapter": adapter.process.pid, **watched}, arguments.steady_seconds, log
    )
    if adapter.source == "embedded":
        _step(figures, "store", lambda: adapter_self_metrics(adapter))
        log(f"embedded store: {json.dumps(figures.get('store'))}")
    log(f"{adapter.source}: freshness, {arguments.freshness_changes} changes")
    _step(
        figures,
        "freshness",
        lambda: freshness(
            adapter,
            sources,
            changes=arguments.freshness_changes,
            scrape_interval_s=arguments.scrape_interval,
            progress=log,
        ),
    )
    waited = warmup_s - (time.monotonic() - data_since)
    if waited > 0:
        log(f"{adapter.source}: waiting {waited:.0f} s for {warmup_s:.0f} s of data")
        time.sleep(waited)
    figures["data_seconds_at_check"] = round(time.monotonic() - data_since, 1)
    if _step(
        figures,
        "answers",
        lambda: check_answers(
            adapter,
            layout,
            epoch_s=sources.epoch_s,
            data_seconds=time.monotonic() - data_since,
            scrape_interval_s=arguments.scrape_interval,
            rates_need_full_window=adapter.source == "prometheus",
        ),
    ):
        figures["answers_ok"] = answers_ok(figures["answers"])
        log(f"{adapter.source}: answers right: {figures['answers_ok']}")
    figures["load"] = {}
    for tier, size in enumerate(layout.tiers):
        log(
            f"{adapter.source}: {size} pods, {arguments.concurrency} clients, {arguments.seconds} s"
        )
        figures["load"][str(size)] = result = load(
            adapter, layout, tier, concurrency=arguments.concurrency, seconds=arguments.seconds
        )
        log(f"  {json.dumps(result)}")
    log(f"{adapter.source}: analyses, {arguments.analysis_repeat} times each")
    if _step(
        figures, "analysis", lambda: analysis_times(adapter, layout, arguments.analysis_repeat)
    ):
        log(f"  {json.dumps(figures['analysis'])}")
    if adapter.source == "embedded":
        # The adapter updates its store gauges every minute (housekeeping): read again.
        _step(figures, "store_at_end", lambda: adapter_self_metrics(adapter))
    rss = psutil.Process(adapter.process.pid).memory_info().rss
    figures["adapter_rss_mib_at_end"] = round(rss / 2**20, 1)
    figures["load_average_at_end"] = load_average()
    # On stderr too: a run stopped later still leaves this source's figures in its log.
    log(f"{adapter.source} figures: {json.dumps(figures)}")
    return figures


def run_embedded(
    cluster: ControlPlane, sources: RigSources, workdir: Path, arguments: argparse.Namespace
) -> dict[str, Any]:
    targets = sources.exporter_targets() + sources.app_targets()
    log(f"embedded: adapter scraping {len(targets)} pages every {arguments.scrape_interval} s")
    data_since = time.monotonic()
    with rig_adapter(
        cluster,
        workdir,
        source="embedded",
        scrape_interval_s=arguments.scrape_interval,
        targets=targets,
    ) as adapter:
        return measure(
            adapter,
            sources,
            arguments,
            watched={},
            data_since=data_since,
            warmup_s=3 * arguments.scrape_interval + 1,
        )


def run_prometheus(
    cluster: ControlPlane, sources: RigSources, workdir: Path, arguments: argparse.Namespace
) -> dict[str, Any]:
    binary = find_tool("prometheus")
    if binary is None:
        raise RuntimeError(INSTALL_HINT)
    (workdir / "prometheus").mkdir(exist_ok=True)
    config = prometheus_config(sources, arguments.scrape_interval)
    with prometheus_with_config(binary, workdir / "prometheus", config) as prometheus:
        data_since = time.monotonic()
        log(
            f"prometheus {prometheus.url} scraping {len(sources.exporter_targets())} node pages "
            f"and {len(sources.app_targets())} app pages every {arguments.scrape_interval} s"
        )
        with rig_adapter(
            cluster,
            workdir,
            source="prometheus",
            scrape_interval_s=arguments.scrape_interval,
            prometheus_url=prometheus.url,
        ) as adapter:
            figures = measure(
                adapter,
                sources,
                arguments,
                watched={"prometheus": prometheus.process.pid},
                data_since=data_since,
                warmup_s=arguments.prometheus_warmup,
            )
        figures["prometheus_head_series"] = head_series(prometheus.url)
        return figures


def retention_child(arguments: argparse.Namespace) -> dict[str, Any]:
    """The retention figures from a fresh process (``--retention-only``): its RSS is its own."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--retention-only",
        f"--nodes={arguments.nodes}",
        f"--pods={arguments.pods}",
        f"--tiers={arguments.tiers}",
        f"--retention-pods={arguments.retention_pods}",
        f"--retention-hours={arguments.retention_hours}",
    ]
    done = subprocess.run(command, stdout=subprocess.PIPE, check=True, cwd=REPO)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--tiers", default="100,1000,5000", help="pods per selector, ascending")
    parser.add_argument("--shards", type=int, default=4, help="synthetic exporter processes")
    parser.add_argument("--sources", default="embedded,prometheus")
    parser.add_argument("--scrape-interval", type=int, default=15, help="seconds, both sources")
    parser.add_argument("--seconds", type=float, default=30.0, help="load per tier and source")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--steady-seconds", type=float, default=60.0)
    parser.add_argument("--freshness-changes", type=int, default=5)
    parser.add_argument("--analysis-repeat", type=int, default=3)
    parser.add_argument(
        "--prometheus-warmup",
        type=float,
        default=330.0,
        help="seconds of Prometheus data before its rates are compared (>= 300 for 5m)",
    )
    parser.add_argument("--ready-timeout", type=float, default=900.0)
    parser.add_argument("--workers", type=int, default=24, help="threads creating pods")
    parser.add_argument(
        "--running-timeout",
        type=float,
        default=600.0,
        help="seconds to wait for kwok to mark every pod Running before measuring anyway",
    )
    parser.add_argument("--retention-pods", type=int, default=500)
    parser.add_argument("--retention-hours", type=float, default=24.0)
    parser.add_argument("--no-retention", action="store_true")
    parser.add_argument("--retention-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="20 nodes, 400 pods, tiers 10/100/400, short windows: a smoke run",
    )
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.nodes, arguments.pods, arguments.tiers = 20, 400, "10,100,400"
        arguments.seconds, arguments.steady_seconds = 5.0, 10.0
        arguments.freshness_changes, arguments.analysis_repeat = 2, 2
        arguments.scrape_interval, arguments.prometheus_warmup = 5, 40.0
        arguments.retention_pods, arguments.retention_hours = 40, 2.0
    try:
        tiers = tuple(int(tier) for tier in arguments.tiers.split(","))
    except ValueError:
        parser.error(
            "--tiers wants pod counts separated by commas, like 100,1000,5000;"
            f" got {arguments.tiers!r}"
        )
    try:
        arguments.layout = RigLayout(arguments.nodes, arguments.pods, tiers)
    except ValueError as error:
        parser.error(str(error))
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_args(argv)
    layout: RigLayout = arguments.layout
    if arguments.retention_only:
        print(
            json.dumps(
                retention_memory(
                    layout, arguments.retention_pods, hours=arguments.retention_hours, progress=log
                )
            )
        )
        return 0
    wanted_sources = [name.strip() for name in arguments.sources.split(",") if name.strip()]
    tools = [*CONTROL_PLANE_TOOLS, *(["prometheus"] if "prometheus" in wanted_sources else [])]
    missing = missing_tools(tools)
    if missing:
        log(f"missing tools: {', '.join(missing)}; build them with scripts/install-test-tools.sh")
        return 2
    install_termination_handlers()
    command = "python bench/scale_rig.py " + " ".join(
        shlex.quote(argument) for argument in (sys.argv[1:] if argv is None else argv)
    )
    memory = psutil.virtual_memory()
    result: dict[str, Any] = {
        "command": command,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(memory.total / 2**30, 1),
            "available_gib_at_start": round(memory.available / 2**30, 1),
            "load_average_at_start": load_average(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "layout": {
            "nodes": layout.nodes,
            "pods": layout.pods,
            "namespaces": len(layout.namespaces),
            "tiers": list(layout.tiers),
            "selector_namespace": layout.selector_namespace,
            "exporter_shards": arguments.shards,
            "scrape_interval_s": arguments.scrape_interval,
        },
        "sources": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="kubepulse-scale-rig-"))
    log(f"run directory {workdir}")
    started = time.monotonic()
    cluster = ControlPlane(
        ControlPlaneOptions(run_dir=workdir / "control-plane", controllers=RIG_CONTROLLERS)
    )
    try:
        cluster.start()
        log(f"control plane up in {time.monotonic() - started:.1f} s")
        result["setup"] = create_objects(
            cluster,
            layout,
            workers=arguments.workers,
            progress=log,
            running_timeout_s=arguments.running_timeout,
            require_running=False,
        )
        with rig_sources(layout, workdir, shards=arguments.shards) as sources:
            log(
                f"{len(sources.shards)} exporter shards, {len(sources.app_pages)} app pages "
                f"({layout.namespace_size} pods of {layout.selector_namespace})"
            )
            for name in wanted_sources:
                run = {"embedded": run_embedded, "prometheus": run_prometheus}[name]
                result["sources"][name] = run(cluster, sources, workdir, arguments)
                # kwok may still be marking pods Running (see create_objects): say how far.
                result["sources"][name]["pods_running_after"] = sum(
                    cluster.count_pods(namespace, phase="Running")
                    for namespace in layout.namespaces
                )
    finally:
        cluster.stop()
        if not arguments.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if not arguments.no_retention:
        log(
            f"retention: {arguments.retention_hours} h of {arguments.retention_pods} pods' pages "
            "into a TimeSeriesStore (child process)"
        )
        result["retention"] = retention_child(arguments)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["load_average_at_end"] = load_average()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

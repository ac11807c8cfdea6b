"""Benchmark of the analysis API's input collection from the embedded store, in process.

The scale rig (``bench/scale_rig.py``) measures the analysis API through kube-apiserver
at 50,000 pods; the analyzers alone are measured by ``bench/analysis_bench.py``. The gap
between the two is collecting the inputs: :class:`adapter.analysis.store_history.StoreHistory`
reading every series of every :data:`~kubepulse.analysis.measures.MEASURES` row from the
store, and encoding the answer. This bench reproduces that part without a control plane:

1. a deterministic cluster of ``--pods`` pods on ``--nodes`` nodes
   (:mod:`synthetic_cluster`, ``--namespaces`` namespaces, default one per 5,000 pods);
2. a :class:`~kubepulse.store.TimeSeriesStore` holding what the adapter's scraper writes
   for it (schema of :mod:`adapter.scrape.scraper`: exporter series labelled
   ``namespace, pod, container, node, pod_uid`` plus the target's ``instance``): per
   running container CPU, working set, throttled and total CFS periods and OOM kills;
   per node the five pressure counters and the two available gauges. 80 minutes of
   scrapes at 15 s: an hour in one sealed chunk (built with
   :func:`~kubepulse.store.encode_chunk` from a few templates, so filling 50,000 pods
   takes a minute, not an hour) and the 20 newest minutes in the head, as the scraper
   leaves them. The ending instant is 20 minutes past an hour;
3. timed, ``--repeat`` times each (median, min, max of wall time, median CPU time):

   - ``fetch_namespace_1h``: ``StoreHistory.fetch`` of the largest namespace over the
     namespace report's default window (``reports``: 1 h);
   - ``fetch_all_5m``: ``StoreHistory.fetch`` of every namespace over the node pressure
     analysis' window (``nodepressure``: 5 m);
   - ``namespace_report``/``node_pressure``: the whole in-process answer, as
     :mod:`adapter.api.analysis` makes it: fetch, the analyzer
     (:attr:`~kubepulse.analysis.resources.Analysis.run` with default parameters), then
     :func:`~kubepulse.analysis.resources.result_document` and the ``JSONResponse``
     encoding; each phase is reported apart (``phases_ms``, medians);

4. with ``--profile``, a cProfile of one ``fetch_all_5m`` and one ``fetch_namespace_1h``
   (top functions by cumulative and by own time, on stderr).

``history_sha256`` and ``answer_sha256`` digest the histories and the encoded answers, so
that two runs (before and after a change of the collection code) show they computed the
same thing. Prints one JSON object to stdout; progress goes to stderr.

    python bench/analysis_api_bench.py --quick
    python bench/analysis_api_bench.py --pods 5000 --nodes 100
    python bench/analysis_api_bench.py --pods 50000 --nodes 1000 --repeat 3 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import json
import os
import platform
import pstats
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run from a checkout without installing: the repository root holds the packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from starlette.responses import JSONResponse
from synthetic_cluster import synthetic_cluster

from adapter.analysis.store_history import StoreHistory
from kubepulse.analysis.inputs import MEASUREMENT_FIELDS, ClusterSnapshot, UsageHistory
from kubepulse.analysis.registry import find_analysis
from kubepulse.analysis.resources import (
    AnalysisInputs,
    AnalysisRequest,
    parse_params,
    result_document,
)
from kubepulse.stats import SeriesKind
from kubepulse.store import TimeSeriesStore, encode_chunk

_SCRAPE_MS = 15_000
_HOUR_MS = 3_600_000
_NOW_MS = 1_800_000_000_000 - 1_800_000_000_000 % _HOUR_MS + 20 * 60_000
_TEMPLATES = 32
_CONTAINER_METRICS = (
    ("kubepulse_container_cpu_usage_seconds_total", SeriesKind.COUNTER, 0.3),
    ("kubepulse_container_memory_working_set_bytes", SeriesKind.GAUGE, 200e6),
    ("kubepulse_container_cpu_cfs_throttled_periods_total", SeriesKind.COUNTER, 3.0),
    ("kubepulse_container_cpu_cfs_periods_total", SeriesKind.COUNTER, 150.0),
    ("kubepulse_container_oom_kills_total", SeriesKind.COUNTER, 0.0),
)
_NODE_METRICS = (
    *(
        (f"kubepulse_node_pressure_{resource}_{line}_seconds_total", SeriesKind.COUNTER, 0.02)
        for resource, line in (
            ("cpu", "waiting"),
            ("memory", "waiting"),
            ("memory", "stalled"),
            ("io", "waiting"),
            ("io", "stalled"),
        )
    ),
    ("kubepulse_node_memory_available_bytes", SeriesKind.GAUGE, 8e9),
    ("kubepulse_node_ephemeral_storage_available_bytes", SeriesKind.GAUGE, 50e9),
)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _samples(rng: random.Random, kind: SeriesKind, level: float, stamps: list[int]) -> list[float]:
    """Counter values that rise by about ``level`` a second, or a gauge around ``level``."""
    values: list[float] = []
    if kind is SeriesKind.COUNTER:
        total = rng.uniform(0, 1000 * max(level, 1.0))
        for _ in stamps:
            total += max(0.0, rng.gauss(level, level / 4 + 1e-9)) * _SCRAPE_MS / 1000
            values.append(round(total, 3))
        return values
    current = level
    for _ in stamps:
        current = max(0.0, current + rng.gauss(0, level / 50))
        values.append(float(round(current)))
    return values


class _Template:
    """One sealed chunk and the head values that follow it, shared by many series."""

    def __init__(self, rng: random.Random, kind: SeriesKind, level: float) -> None:
        first_ms = _NOW_MS - 80 * 60_000
        stamps = list(range(first_ms, _NOW_MS + 1, _SCRAPE_MS))
        boundary = _NOW_MS - _NOW_MS % _HOUR_MS
        sealed = [stamp for stamp in stamps if stamp < boundary]
        self.head_ms = [stamp for stamp in stamps if stamp >= boundary]
        values = _samples(rng, kind, level, stamps)
        self.chunk = encode_chunk(kind, sealed, values[: len(sealed)])
        self.head_values = values[len(sealed) :]


def fill_store(snapshot: ClusterSnapshot, seed: int = 11) -> TimeSeriesStore:
    """The store the scraper would hold for ``snapshot``'s running pods and nodes."""
    rng = random.Random(seed)
    templates = {
        name: [_Template(rng, kind, level) for _ in range(_TEMPLATES)]
        for name, kind, level in (*_CONTAINER_METRICS, *_NODE_METRICS)
    }
    kinds = {name: kind for name, kind, _ in (*_CONTAINER_METRICS, *_NODE_METRICS)}
    store = TimeSeriesStore(resolution_ms=_SCRAPE_MS)

    def restore(name: str, labels: dict[str, str], index: int) -> None:
        template = templates[name][index % _TEMPLATES]
        store.restore_series(
            name,
            labels,
            kinds[name],
            chunks=(template.chunk,),
            head_timestamps_ms=template.head_ms,
            head_values=template.head_values,
        )

    index = 0
    for pod in snapshot.pods:
        if pod.node_name is None:
            continue
        for container in pod.containers:
            labels = {
                "namespace": pod.namespace,
                "pod": pod.name,
                "container": container.name,
                "node": pod.node_name,
                "pod_uid": f"uid-{pod.namespace}-{pod.name}",
                "instance": f"{pod.node_name}:9100",
            }
            for name, _kind, _level in _CONTAINER_METRICS:
                index += 1
                restore(name, labels, index)
    for node in snapshot.nodes:
        for name, _kind, _level in _NODE_METRICS:
            index += 1
            restore(name, {"node": node.name, "instance": f"{node.name}:9100"}, index)
    return store


def _history_digest(history: UsageHistory) -> str:
    """A digest of every figure of ``history``, independent of dict order."""
    digest = hashlib.sha256()
    for field in MEASUREMENT_FIELDS:
        figures = getattr(history, field)
        for key in sorted(figures, key=repr):
            digest.update(repr((field, key, figures[key])).encode())
    return digest.hexdigest()


def _time(run: Callable[[], Any], repeat: int) -> dict[str, Any]:
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {
        "wall_ms_median": round(statistics.median(walls) * 1000, 1),
        "wall_ms_min": round(min(walls) * 1000, 1),
        "wall_ms_max": round(max(walls) * 1000, 1),
        "cpu_ms_median": round(statistics.median(cpus) * 1000, 1),
        "runs": repeat,
    }


def _answer(
    resource: str,
    snapshot: ClusterSnapshot,
    source: StoreHistory,
    namespace: str | None,
    repeat: int,
) -> dict[str, Any]:
    """The API's answer made ``repeat`` times: phases timed apart, digest of the body."""
    analysis = find_analysis(resource)
    params = parse_params(analysis, {})
    history_ms = analysis.history_ms(params)
    phases: dict[str, list[float]] = {"fetch": [], "analyze": [], "encode": [], "total": []}
    body = b""
    history_digest = ""
    for _ in range(repeat):
        started = time.perf_counter()
        history = source.fetch(
            _NOW_MS - history_ms, _NOW_MS, None if namespace is None else (namespace,)
        )
        fetched = time.perf_counter()
        inputs = AnalysisInputs(snapshot, history, ())
        result = analysis.run(inputs, AnalysisRequest(namespace=namespace, params=params))
        analysed = time.perf_counter()
        body = bytes(JSONResponse(result_document(analysis, result, inputs, _NOW_MS)).body)
        encoded = time.perf_counter()
        phases["fetch"].append(fetched - started)
        phases["analyze"].append(analysed - fetched)
        phases["encode"].append(encoded - analysed)
        phases["total"].append(encoded - started)
        history_digest = _history_digest(history)
        del history, inputs, result
    return {
        "resource": resource,
        "namespace": namespace,
        "history_ms": history_ms,
        "phases_ms": {
            name: round(statistics.median(values) * 1000, 1) for name, values in phases.items()
        },
        "total_ms_min": round(min(phases["total"]) * 1000, 1),
        "total_ms_max": round(max(phases["total"]) * 1000, 1),
        "runs": repeat,
        "answer_bytes": len(body),
        "answer_sha256": hashlib.sha256(body).hexdigest(),
        "history_sha256": history_digest,
    }


def _profile(run: Callable[[], Any], label: str, lines: int = 25) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    for order in ("cumulative", "tottime"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(lines)
        _progress(f"--- profile of {label}, by {order} ---\n{text.getvalue()}")


def _at_least_one(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"wants a whole number of at least 1, got {text!r}")
    return number


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=_at_least_one, default=50_000)
    parser.add_argument("--nodes", type=_at_least_one, default=1_000)
    parser.add_argument(
        "--namespaces", type=_at_least_one, default=None, help="default: one per 5,000 pods"
    )
    parser.add_argument("--repeat", type=_at_least_one, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile the fetches")
    parser.add_argument(
        "--quick", action="store_true", help="2,000 pods on 40 nodes, one run (a smoke test)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.pods, args.nodes, args.repeat = 2_000, 40, 1
    namespaces = args.namespaces or max(1, args.pods // 5_000)
    load_before = os.getloadavg()

    _progress(f"generating {args.pods} pods on {args.nodes} nodes in {namespaces} namespaces")
    started = time.perf_counter()
    cluster = synthetic_cluster(
        pods=args.pods, nodes=args.nodes, namespaces=namespaces, history_points=2
    )
    snapshot = cluster.snapshot
    del cluster
    store = fill_store(snapshot)
    generated_s = time.perf_counter() - started
    gc.collect()
    gc.freeze()  # as the adapter's informer does after its first listing
    counts: dict[str, int] = {}
    for pod in snapshot.pods:
        counts[pod.namespace] = counts.get(pod.namespace, 0) + 1
    namespace = max(sorted(counts), key=lambda name: counts[name])
    _progress(
        f"  {store.series_count} series, {store.sample_count} samples in "
        f"{generated_s:.1f} s; largest namespace {namespace} ({counts[namespace]} pods)"
    )
    source = StoreHistory(store, threading.Lock())
    window_1h = find_analysis("reports").history_ms(parse_params(find_analysis("reports"), {}))
    window_5m = find_analysis("nodepressure").history_ms(
        parse_params(find_analysis("nodepressure"), {})
    )
    fetches: dict[str, Callable[[], Any]] = {
        "fetch_namespace_1h": lambda: source.fetch(_NOW_MS - window_1h, _NOW_MS, (namespace,)),
        "fetch_all_5m": lambda: source.fetch(_NOW_MS - window_5m, _NOW_MS, None),
    }
    timings: dict[str, Any] = {}
    for name, run in fetches.items():
        _progress(f"  {name} x{args.repeat} ...")
        timings[name] = _time(run, args.repeat)
    _progress(f"  namespace_report x{args.repeat} ...")
    timings["namespace_report"] = _answer("reports", snapshot, source, namespace, args.repeat)
    _progress(f"  node_pressure x{args.repeat} ...")
    timings["node_pressure"] = _answer("nodepressure", snapshot, source, None, args.repeat)
    if args.profile:
        for name, run in fetches.items():
            _profile(run, name)
    result = {
        "benchmark": "analysis_api_inputs",
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "pods": args.pods,
        "nodes": args.nodes,
        "namespaces": namespaces,
        "report_namespace": namespace,
        "report_namespace_pods": counts[namespace],
        "series": store.series_count,
        "samples": store.sample_count,
        "scrape_interval_ms": _SCRAPE_MS,
        "generation_s": round(generated_s, 1),
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "timings": timings,
    }
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

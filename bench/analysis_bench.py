"""Benchmark of the analyzers: namespace report and node pressure at two cluster sizes.

For each scale (default: 5,000 pods on 100 nodes, and 50,000 pods on 1,000 nodes) a
deterministic synthetic cluster is generated (:mod:`synthetic_cluster`: API-shaped
objects parsed with :mod:`kubepulse.model`, and a usage history with a CPU, memory and
throttling series per container, node pressure and quota usage), then each analysis is
run ``--repeat`` times on it and timed with ``time.perf_counter`` (wall) and
``time.process_time`` (CPU):

- ``namespace_report``: one namespace's report (usage, requests, limits, quota, top
  consumers), for the largest namespace, with pods listed;
- ``namespace_report_all``: the report for every namespace in turn (the sum), which is
  what a dashboard listing all namespaces costs;
- ``node_pressure``: every node, with eviction ranking and scheduling hints;
- ``limit_breaches``, ``fragmentation``, ``quotas``, ``recommendations``: the other
  cluster-wide analyzers, for context;
- ``hpa_metrics``: the served values and the HPA replay (with a 1 m forecast) for one
  Deployment of the largest namespace.

Generating the cluster is not timed. The figures are the analysis alone, as the adapter
computes it from its in-memory view; collection from kube-apiserver is measured by the
e2e tier. Prints one JSON object to stdout; progress goes to stderr.

- ``limit_breaches_top100``, ``recommendations_top100``, ``node_pressure_top100``: the
  same with ``top=100``, the size an API client would ask for at 50,000 pods.

For limit breaches, recommendations and node pressure, with and without ``top``,
``json_bytes`` is the size of the answer as the API serialises it (``to_json(...,
camel_case=True)``, compact ``json.dumps``), measured once outside the timed runs.

After generating the cluster, the objects are frozen out of the garbage collector's
reach (``gc.collect(); gc.freeze()``), as :class:`kubepulse.collect.informer.ClusterInformer`
does after its first listing in the adapter and the library facade; ``--no-gc-freeze``
measures without. Each analysis also reports the collections that ran while it was timed
(count and milliseconds per generation, over all its runs), since a full collection
of the 50,000-pod heap costs more than most analyses.

    python bench/analysis_bench.py
    python bench/analysis_bench.py --scales 5000:100 --repeat 5
    python bench/analysis_bench.py --scales 50000:1000 --no-gc-freeze
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run from a checkout without installing: the repository root holds the packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_cluster import SyntheticCluster, synthetic_cluster

from kubepulse.analysis.fragmentation import analyze_fragmentation
from kubepulse.analysis.hpa import generate_hpa_metrics
from kubepulse.analysis.limits import detect_limit_breaches
from kubepulse.analysis.nodes import analyze_node_pressure
from kubepulse.analysis.quota import analyze_quotas, namespace_report
from kubepulse.analysis.recommend import recommend_resources
from kubepulse.analysis.serialize import to_json


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Collections:
    """Garbage collections while timing: count and seconds per generation."""

    def __init__(self) -> None:
        self.started: dict[int, float] = {}
        self.totals: dict[int, list[float]] = {}

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        generation = info["generation"]
        if phase == "start":
            self.started[generation] = time.perf_counter()
            return
        total = self.totals.setdefault(generation, [0, 0.0])
        total[0] += 1
        total[1] += time.perf_counter() - self.started.pop(generation, time.perf_counter())

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            f"gen{generation}": {"count": int(count), "ms": round(seconds * 1000, 1)}
            for generation, (count, seconds) in sorted(self.totals.items())
        }


def _time(run: Callable[[], Any], repeat: int) -> dict[str, Any]:
    walls, cpus = [], []
    collections = _Collections()
    gc.callbacks.append(collections)
    try:
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    finally:
        gc.callbacks.remove(collections)
    return {
        "wall_ms_median": round(statistics.median(walls) * 1000, 1),
        "wall_ms_min": round(min(walls) * 1000, 1),
        "wall_ms_max": round(max(walls) * 1000, 1),
        "cpu_ms_median": round(statistics.median(cpus) * 1000, 1),
        "runs": repeat,
        "gc_collections": collections.summary(),
    }


def _largest_namespace(cluster: SyntheticCluster) -> tuple[str, int]:
    counts: dict[str, int] = {}
    for pod in cluster.snapshot.pods:
        counts[pod.namespace] = counts.get(pod.namespace, 0) + 1
    name = max(counts, key=lambda key: counts[key])
    return name, counts[name]


def _scale(pods: int, nodes: int, repeat: int, history_points: int, freeze: bool) -> dict[str, Any]:
    namespaces = max(1, pods // 500)
    _progress(f"generating {pods} pods on {nodes} nodes in {namespaces} namespaces ...")
    started = time.perf_counter()
    cluster = synthetic_cluster(
        pods=pods, nodes=nodes, namespaces=namespaces, history_points=history_points
    )
    generated_s = time.perf_counter() - started
    gc.unfreeze()  # the previous scale's objects, if any, are collectable again
    gc.collect()
    if freeze:
        gc.freeze()
    snapshot, history = cluster.snapshot, cluster.history
    namespace, namespace_pods = _largest_namespace(cluster)
    analyses: dict[str, Callable[[], Any]] = {
        "namespace_report": lambda: namespace_report(snapshot, history, namespace),
        "namespace_report_all": lambda: [
            namespace_report(snapshot, history, name, include_pods=False)
            for name in snapshot.namespace_names()
        ],
        "node_pressure": lambda: analyze_node_pressure(
            snapshot, history, include_scheduling_hints=True, predict_evictions=True
        ),
        "node_pressure_top100": lambda: analyze_node_pressure(
            snapshot, history, include_scheduling_hints=True, predict_evictions=True, top=100
        ),
        "limit_breaches": lambda: detect_limit_breaches(snapshot, history),
        "limit_breaches_top100": lambda: detect_limit_breaches(snapshot, history, top=100),
        "fragmentation": lambda: analyze_fragmentation(
            snapshot, shape_cpu="500m", shape_memory="1Gi"
        ),
        "quotas": lambda: analyze_quotas(snapshot, history),
        "recommendations": lambda: recommend_resources(snapshot, history),
        "recommendations_top100": lambda: recommend_resources(snapshot, history, top=100),
        "hpa_metrics": lambda: generate_hpa_metrics(
            snapshot, history, namespace=namespace, deployment="app-0", predict="1m"
        ),
    }
    timings = {}
    load_before = os.getloadavg()
    for name, run in analyses.items():
        _progress(f"  {name} x{repeat} ...")
        timings[name] = _time(run, repeat)
        if name.startswith(("limit_breaches", "recommendations", "node_pressure")):
            encoded = json.dumps(to_json(run(), camel_case=True), separators=(",", ":"))
            timings[name]["json_bytes"] = len(encoded.encode())
            del encoded
    return {
        "pods": pods,
        "nodes": nodes,
        "namespaces": namespaces,
        "containers_with_history": len(history.cpu_cores),
        "history_points_per_series": history_points,
        "report_namespace": namespace,
        "report_namespace_pods": namespace_pods,
        "generation_s": round(generated_s, 1),
        "gc_frozen_objects": gc.get_freeze_count(),
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "analyses": timings,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scales",
        default="5000:100,50000:1000",
        help="comma-separated PODS:NODES pairs (default 5000:100,50000:1000)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per analysis (default 3)")
    parser.add_argument(
        "--history-points",
        type=int,
        default=21,
        help="samples per series, one per 15 s (default 21: the last 5 minutes)",
    )
    parser.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="leave the generated objects to the garbage collector (the adapter freezes them)",
    )
    arguments = parser.parse_args(argv)
    scales = []
    for pair in arguments.scales.split(","):
        pods, _, nodes = pair.partition(":")
        if not (pods.isdigit() and nodes.isdigit()) or int(pods) < 1 or int(nodes) < 1:
            parser.error(f"--scales takes PODS:NODES pairs such as 5000:100, got {pair!r}")
        scales.append((int(pods), int(nodes)))
    if arguments.repeat < 1 or arguments.history_points < 2:
        parser.error("--repeat must be at least 1 and --history-points at least 2")
    results = [
        _scale(pods, nodes, arguments.repeat, arguments.history_points, arguments.gc_freeze)
        for pods, nodes in scales
    ]
    print(
        json.dumps(
            {
                "benchmark": "analysis",
                "command": "python bench/analysis_bench.py " + " ".join(argv or sys.argv[1:]),
                "gc_freeze": arguments.gc_freeze,
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "scales": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

""":func:`store_history` gives what transforming each series on its own gives.

:func:`store_history` copies samples in batches under the lock, decodes sealed chunks
outside it and transforms through :class:`~kubepulse.analysis.measures.GridReader`; all
of that is for speed. ``reference_history`` below is the plain definition (each series'
:meth:`~kubepulse.store.Series.samples`, then :func:`rate_points`, :func:`gauge_points`,
:func:`grid_samples` and :func:`increment_instants`, added with
:meth:`HistoryAssembler.add_points`): on random stores (sealed chunks and heads, two
cgroups of one container, staleness markers, counter restarts, series gone before the
window, quota series renamed by the scrape) the two must be equal, key order included.
"""

from __future__ import annotations

import math
import random
import threading

import pytest

from adapter.analysis.store_history import LOCKED_BATCH, StoreHistory, store_history
from kubepulse.analysis.inputs import MEASUREMENT_FIELDS, UsageHistory
from kubepulse.analysis.measures import (
    INSTANT_LOOKBACK_MS,
    MEASURES,
    HistoryAssembler,
    Selection,
    Transform,
    evaluation_grid,
    gauge_points,
    grid_samples,
    increment_instants,
    key_of,
    lookback_for,
    rate_points,
)
from kubepulse.stats import SeriesKind
from kubepulse.store import TimeSeriesStore

S = 15_000
T0 = 1_700_000_000_000


def reference_history(
    store: TimeSeriesStore,
    start_ms: int,
    end_ms: int,
    step_ms: int,
    namespaces: tuple[str, ...] | None,
    nodes: tuple[str, ...] | None,
) -> UsageHistory:
    """The history by definition: one series at a time, transformed point by point."""
    grid = evaluation_grid(start_ms, end_ms, step_ms)
    lookback_ms = lookback_for(step_ms, store.resolution_ms)
    wanted = None if namespaces is None else frozenset(namespaces)
    assembler = HistoryAssembler(start_ms, end_ms)
    for row in MEASURES:
        reach_ms = INSTANT_LOOKBACK_MS if row.transform is Transform.INCREMENTS else lookback_ms
        for part, metric in enumerate(row.metrics):
            node_set = None if nodes is None or row.selection is Selection.QUOTAS else set(nodes)
            selected = []
            if row.selection is Selection.CONTAINERS and namespaces is not None:
                for namespace in sorted(set(namespaces)):
                    selected += store.select(metric, **dict(row.matchers), namespace=namespace)
            else:
                selected = store.select(metric, **dict(row.matchers))
            for series in selected:
                if node_set is not None and series.labels.get("node") not in node_set:
                    continue
                key = key_of(row, series.labels, wanted)
                if key is None:
                    continue
                timestamps, values = series.samples(grid[0] - reach_ms, grid[-1])
                samples = list(zip(timestamps, values, strict=True))
                if row.transform is Transform.INCREMENTS:
                    instants = increment_instants(grid_samples(samples, grid))
                    assembler.add_instants(row, key, instants)
                elif row.transform is Transform.GAUGE:
                    assert row.reduce is not None
                    points = gauge_points(samples, grid, lookback_ms, row.reduce)
                    assembler.add_points(row, key, points, part)
                else:
                    points = rate_points(samples, grid, lookback_ms)
                    assembler.add_points(row, key, points, part)
    return assembler.history()


def random_store(seed: int) -> TimeSeriesStore:
    """Exporter-shaped series over two hours, sealed every 20 minutes."""
    rng = random.Random(seed)
    store = TimeSeriesStore(resolution_ms=S, chunk_range_ms=1_200_000, retention_ms=86_400_000)
    containers = [
        (f"ns-{rng.randint(0, 2)}", f"pod-{i}", rng.choice(("app", "side")), f"node-{i % 3}")
        for i in range(8)
    ]
    series: list[tuple[str, dict[str, str], SeriesKind, bool]] = []
    for namespace, pod, container, node in containers:
        for uid in ("a", "b") if rng.random() < 0.3 else ("a",):  # two cgroups at once
            labels = {"namespace": namespace, "pod": pod, "container": container,
                      "node": node, "pod_uid": f"{pod}-{uid}"}  # fmt: skip
            for row in MEASURES:
                if row.selection is Selection.CONTAINERS:
                    for metric in row.metrics:
                        counter = row.transform is not Transform.GAUGE
                        kind = SeriesKind.COUNTER if counter else SeriesKind.GAUGE
                        series.append((metric, labels, kind, counter))
    for index in range(3):
        for row in MEASURES:
            if row.selection is Selection.NODES:
                counter = row.transform is not Transform.GAUGE
                series.append(
                    (row.metrics[0], {"node": f"node-{index}"}, SeriesKind.GAUGE, counter)
                )
    for namespace in ("ns-0", "ns-1"):
        labels = {"namespace": "kube-system", "exported_namespace": namespace, "type": "used",
                  "resourcequota": "q", "resource": "cpu", "pod": "ksm-0"}  # fmt: skip
        series.append(("kube_resourcequota", labels, SeriesKind.GAUGE, False))
    for name, labels, kind, counter in series:
        stamp = T0 + rng.randint(0, 40) * S
        stop = T0 + rng.choice((40, 200, 480, 480, 480)) * S  # some end before the window
        level = rng.uniform(0, 10)
        while stamp <= stop:
            if counter:
                level = 0.0 if rng.random() < 0.02 else level + rng.choice((0.0, rng.random()))
            else:
                level = rng.uniform(0, 10)
            value = math.nan if rng.random() < 0.01 else level
            store.append(name, labels, stamp, value, kind)
            stamp += rng.choice((S, S, S, S + rng.randint(-2000, 2000), 5 * S))
    return store


@pytest.mark.parametrize("seed", range(12))
def test_the_history_equals_the_one_by_definition(seed: int) -> None:
    store = random_store(seed)
    assert any(series.chunks for series in store)  # sealed chunks are read too
    rng = random.Random(seed)
    end = T0 + 480 * S
    for start, step in ((end - 3_600_000, S), (end - 300_000, S), (T0, 60_000)):
        namespaces = rng.choice((None, ("ns-0",), ("ns-1", "ns-2")))
        nodes = rng.choice((None, None, ("node-1",)))
        fast = store_history(
            store, start, end, step, lock=threading.Lock(), namespaces=namespaces, nodes=nodes
        )
        expected = reference_history(store, start, end, step, namespaces, nodes)
        assert fast == expected
        assert expected.cpu_cores or expected.node_pressure  # something was compared
        for field in MEASUREMENT_FIELDS:
            assert list(getattr(fast, field)) == list(getattr(expected, field))  # key order


def test_many_series_are_read_in_locked_batches() -> None:
    """More series than one batch: every one is read, and the lock is free afterwards."""
    store = TimeSeriesStore(resolution_ms=S)
    count = LOCKED_BATCH * 2 + 3
    for index in range(count):
        labels = {"namespace": "ns", "pod": f"p-{index}", "container": "c", "node": "n",
                  "pod_uid": str(index)}  # fmt: skip
        for step in range(5):
            store.append("kubepulse_container_memory_working_set_bytes", labels,
                         T0 + step * S, float(index), SeriesKind.GAUGE)  # fmt: skip
    lock = threading.Lock()
    history = StoreHistory(store, lock).fetch(T0, T0 + 4 * S)
    assert len(history.memory_working_set_bytes) == count
    assert not lock.locked()
    assert history == reference_history(store, T0, T0 + 4 * S, S, None, None)

"""Usage history from the adapter's embedded store, by the same table as from Prometheus.

:func:`store_history` (and :class:`StoreHistory`, the same as a
:class:`~kubepulse.collect.history.HistorySource` for the analysis service) reads the
raw samples the scraper wrote
(:class:`~kubepulse.store.TimeSeriesStore`, schema in :mod:`adapter.scrape.scraper`)
and applies the transforms of :mod:`kubepulse.analysis.measures` row by row of
:data:`~kubepulse.analysis.measures.MEASURES`: the same grid, the same window per grid
point (``max(step, 2 * resolution)``, the store's resolution being its scrape
interval), the same keys and the same ``sum by (key)``. So a history built here and one
built by :class:`kubepulse.collect.prometheus_history.PrometheusHistory` from a
Prometheus scraping the same exporters agree, up to what the two scrapers saw at their
different instants and Prometheus' extrapolation of ``rate()`` to the window's edges
(``tests/integration/test_history_sources.py`` measures it).

Series are selected through the store's postings index: by metric name and, for
container rows, by each requested namespace; nodes are matched on the ``node`` label.
Quota usage (``kube_resourcequota{type="used"}``) is there only when kube-state-metrics
is scraped as an annotated pod; the scraper then keeps the quota's namespace as
``exported_namespace``, which :func:`~kubepulse.analysis.measures.key_of` prefers.

**Locking.** The store is not thread-safe; pass the lock the scraper holds
(:attr:`adapter.sources.embedded.EmbeddedSource.lock`). It is taken for each selection
and for each series' samples, never for the computation, so scrapes go on while a long
history is built.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence

from kubepulse.analysis.inputs import UsageHistory
from kubepulse.analysis.measures import (
    DEFAULT_GRID_POINTS,
    INSTANT_LOOKBACK_MS,
    MEASURES,
    HistoryAssembler,
    Measure,
    Selection,
    Transform,
    choose_step,
    evaluation_grid,
    gauge_points,
    grid_samples,
    increment_instants,
    key_of,
    lookback_for,
    rate_points,
)
from kubepulse.store import Series, TimeSeriesStore

__all__ = ["StoreHistory", "store_history"]


def _selected(
    store: TimeSeriesStore,
    lock: threading.Lock | contextlib.nullcontext[None],
    row: Measure,
    metric: str,
    *,
    namespaces: Sequence[str] | None,
    nodes: Sequence[str] | None,
) -> list[Series]:
    """The series of ``metric`` that ``row`` reads, narrowed by namespaces and nodes."""
    wanted_nodes = None
    if nodes is not None and row.selection is not Selection.QUOTAS:
        wanted_nodes = frozenset(nodes)
    fixed = dict(row.matchers)

    def matches(labels: Mapping[str, str]) -> bool:
        return wanted_nodes is None or labels.get("node") in wanted_nodes

    selected: list[Series] = []
    with lock:
        if row.selection is Selection.CONTAINERS and namespaces is not None:
            for namespace in sorted(set(namespaces)):
                selected.extend(store.select(metric, matches, **fixed, namespace=namespace))
        else:
            selected.extend(store.select(metric, matches, **fixed))
    return selected


def _samples(
    series: Series, lock: threading.Lock | contextlib.nullcontext[None], start_ms: int, end_ms: int
) -> Iterator[tuple[int, float]]:
    with lock:
        timestamps, values = series.samples(start_ms, end_ms)
    return zip(timestamps, values, strict=True)


def store_history(
    store: TimeSeriesStore,
    start_ms: int,
    end_ms: int,
    step_ms: int,
    *,
    lock: threading.Lock | None = None,
    namespaces: Sequence[str] | None = None,
    nodes: Sequence[str] | None = None,
) -> UsageHistory:
    """The history over ``[start_ms, end_ms]``, one point every ``step_ms``, from ``store``.

    ``namespaces`` narrows container figures and quota usage, ``nodes`` container and
    node figures; ``None`` keeps everything. ``lock`` is the lock the scraper holds
    around store calls (none when nothing else uses the store).

    Raises:
        KubepulseValueError: the range or step is unusable (too many points).
    """
    grid = evaluation_grid(start_ms, end_ms, step_ms)
    lookback_ms = lookback_for(step_ms, store.resolution_ms)
    guard: threading.Lock | contextlib.nullcontext[None] = (
        lock if lock is not None else contextlib.nullcontext()
    )
    wanted_namespaces = None if namespaces is None else frozenset(namespaces)
    assembler = HistoryAssembler(start_ms, end_ms)
    for row in MEASURES:
        reach_ms = INSTANT_LOOKBACK_MS if row.transform is Transform.INCREMENTS else lookback_ms
        for part, metric in enumerate(row.metrics):
            for series in _selected(store, guard, row, metric, namespaces=namespaces, nodes=nodes):
                key = key_of(row, series.labels, wanted_namespaces)
                if key is None:
                    continue
                samples = _samples(series, guard, grid[0] - reach_ms, grid[-1])
                if row.transform is Transform.INCREMENTS:
                    counter = grid_samples(samples, grid)
                    assembler.add_instants(row, key, increment_instants(counter))
                elif row.transform is Transform.GAUGE:
                    assert row.reduce is not None  # a gauge row always has its reduce
                    points = gauge_points(samples, grid, lookback_ms, row.reduce)
                    assembler.add_points(row, key, points, part)
                else:
                    assembler.add_points(row, key, rate_points(samples, grid, lookback_ms), part)
    return assembler.history()


class StoreHistory:
    """The embedded store as a :class:`~kubepulse.collect.history.HistorySource`.

    Args:
        store: the store the adapter's scraper fills.
        lock: the lock the scraper holds around store calls
            (:attr:`adapter.sources.embedded.EmbeddedSource.lock`).
        points: how many grid points a history has at most; the step is the smallest
            multiple of the store's resolution that keeps within it
            (:func:`~kubepulse.analysis.measures.choose_step`).
    """

    def __init__(
        self,
        store: TimeSeriesStore,
        lock: threading.Lock | None = None,
        *,
        points: int = DEFAULT_GRID_POINTS,
    ) -> None:
        self._store = store
        self._lock = lock
        self._points = points

    def fetch(
        self,
        start_ms: int,
        end_ms: int,
        namespaces: Iterable[str] | None = None,
        *,
        step_ms: int | None = None,
        nodes: Iterable[str] | None = None,
    ) -> UsageHistory:
        """The history over ``[start_ms, end_ms]`` for ``namespaces`` (``None``: all).

        Raises:
            KubepulseValueError: the range or step is unusable.
        """
        if step_ms is None:
            step_ms = choose_step(start_ms, end_ms, self._store.resolution_ms, self._points)
        return store_history(
            self._store,
            start_ms,
            end_ms,
            step_ms,
            lock=self._lock,
            namespaces=None if namespaces is None else tuple(namespaces),
            nodes=None if nodes is None else tuple(nodes),
        )

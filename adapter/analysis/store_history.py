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
and once per batch of :data:`LOCKED_BATCH` series, only to copy what the window needs:
the window's samples when it lies within the newest chunk range (the head), else the
head's samples and the sealed chunks' bytes. Chunks are decoded and everything is
transformed outside it, so scrapes go on while a long history is built.

**Cost.** At 50,000 pods a history reads hundreds of thousands of series on one grid,
so the transforms go through :class:`~kubepulse.analysis.measures.GridReader` (the
windows of each grid point found once per distinct scrape timestamps, whole-list
arithmetic instead of a loop per point) and the figures of keys that one series makes
are kept as they come (:meth:`~kubepulse.analysis.measures.HistoryAssembler.add_grid_points`).
The result is the same as transforming each series with
:func:`~kubepulse.analysis.measures.rate_points` and friends
(``tests/unit/adapter/test_store_history_fast.py`` compares the two).
``bench/analysis_api_bench.py`` measures it.
"""

from __future__ import annotations

import contextlib
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final, NamedTuple

from kubepulse.analysis.inputs import UsageHistory
from kubepulse.analysis.measures import (
    DEFAULT_GRID_POINTS,
    INSTANT_LOOKBACK_MS,
    MEASURES,
    GridReader,
    HistoryAssembler,
    Measure,
    Selection,
    Transform,
    choose_step,
    evaluation_grid,
    key_of,
    lookback_for,
)
from kubepulse.store import Series, TimeSeriesStore, decode_chunk
from kubepulse.store.chunk import chunk_time_range

__all__ = ["LOCKED_BATCH", "StoreHistory", "store_history"]

LOCKED_BATCH: Final = 256
"""How many series' samples are copied per hold of the scraper's lock: enough to make
taking it cheap, few enough that a scrape waits a few milliseconds at most."""


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


class _Copied(NamedTuple):
    """What one series holds for a window, copied under the lock, decoded outside it."""

    chunks: tuple[bytes, ...]
    head_timestamps: array[int]
    head_values: array[float]


def _copy(series: Series, start_ms: int, end_ms: int, chunk_range_ms: int) -> _Copied:
    """The head, and the sealed chunks too when the window starts before the head.

    Under the lock: copies only (the head's arrays, the chunks' bytes), no decoding.
    A window within the newest chunk range, where the head is (the usual 5 m window of
    node pressure), takes only its samples: :meth:`Series.samples` then decodes nothing
    unless a checkpoint or compaction sealed that range early.
    """
    last_ms = series.last_timestamp_ms
    if last_ms is None or last_ms < start_ms:
        return _Copied((), array("q"), array("d"))  # nothing recent: a pod gone before
    if start_ms >= last_ms - last_ms % chunk_range_ms:
        timestamps, values = series.samples(start_ms, end_ms)
        return _Copied((), timestamps, values)
    head_timestamps, head_values = series.head
    if head_timestamps and head_timestamps[0] <= start_ms:
        return _Copied((), head_timestamps, head_values)
    return _Copied(series.chunks, head_timestamps, head_values)


def _decoded(copied: _Copied, start_ms: int, end_ms: int) -> tuple[array[int], array[float]]:
    """The samples with ``start_ms <= timestamp <= end_ms``, as :meth:`Series.samples`."""
    timestamps: array[int] = array("q")
    values: array[float] = array("d")
    if start_ms > end_ms:
        return timestamps, values
    for chunk in copied.chunks:
        first_ms, last_ms = chunk_time_range(chunk)
        if last_ms < start_ms or first_ms > end_ms:
            continue
        chunk_timestamps, chunk_values = decode_chunk(chunk)
        begin = bisect_left(chunk_timestamps, start_ms)
        end = bisect_right(chunk_timestamps, end_ms)
        timestamps.extend(chunk_timestamps[begin:end])
        values.extend(chunk_values[begin:end])
    head_timestamps = copied.head_timestamps
    begin = bisect_left(head_timestamps, start_ms)
    end = bisect_right(head_timestamps, end_ms)
    if not timestamps:
        if begin == 0 and end == len(head_timestamps):
            return head_timestamps, copied.head_values  # copies already: no need for more
        return head_timestamps[begin:end], copied.head_values[begin:end]
    timestamps.extend(head_timestamps[begin:end])
    values.extend(copied.head_values[begin:end])
    return timestamps, values


def _batches(
    series: Sequence[Series],
    lock: threading.Lock | contextlib.nullcontext[None],
    start_ms: int,
    end_ms: int,
    chunk_range_ms: int,
) -> Iterator[tuple[array[int], array[float]]]:
    """The samples of each series in the window, in order; the lock held once per batch."""
    for first in range(0, len(series), LOCKED_BATCH):
        batch = series[first : first + LOCKED_BATCH]
        with lock:
            copies = [_copy(one, start_ms, end_ms, chunk_range_ms) for one in batch]
        for copied in copies:
            yield _decoded(copied, start_ms, end_ms)


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
    reader = GridReader(grid, lookback_ms)
    for row in MEASURES:
        reach_ms = INSTANT_LOOKBACK_MS if row.transform is Transform.INCREMENTS else lookback_ms
        for part, metric in enumerate(row.metrics):
            keyed: list[tuple[str, ...]] = []
            selected: list[Series] = []
            for series in _selected(store, guard, row, metric, namespaces=namespaces, nodes=nodes):
                key = key_of(row, series.labels, wanted_namespaces)
                if key is not None:
                    keyed.append(key)
                    selected.append(series)
            chunk_range_ms = store.settings.chunk_range_ms
            samples = _batches(selected, guard, grid[0] - reach_ms, grid[-1], chunk_range_ms)
            for key, (timestamps, values) in zip(keyed, samples, strict=True):
                if row.transform is Transform.INCREMENTS:
                    assembler.add_instants(row, key, reader.increment_instants(timestamps, values))
                elif row.transform is Transform.GAUGE:
                    assert row.reduce is not None  # a gauge row always has its reduce
                    points = reader.gauge(timestamps, values, row.reduce)
                    assembler.add_grid_points(row, key, points, part)
                else:
                    assembler.add_grid_points(row, key, reader.rate(timestamps, values), part)
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

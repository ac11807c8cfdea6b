"""Keep the embedded store across restarts: restore at start, checkpoint on a schedule.

:meth:`Checkpointer.open` is what the adapter calls at start-up: the history saved at
``path`` (:func:`kubepulse.checkpoint.restore_or_empty`), or an empty store and a log
line saying why (no file yet; a corrupt file, which is moved aside; an unreadable one).
Then :meth:`Checkpointer.start` runs a daemon thread that:

- compacts the store every ``compaction_interval_seconds`` (``store.compact(now)``:
  retention, sealing heads of series that stopped, dropping idle query memos), under
  the lock: it walks every series, so it is the longest hold of the lock there is;
- writes a checkpoint every ``interval_seconds`` (default 5 minutes), and one more on
  :meth:`Checkpointer.stop`.

A checkpoint must not stop queries and scrapes while a few hundred megabytes go to
disk, so it is taken in three steps (:func:`snapshot_store`):

1. under the lock, the list of series (a list of references);
2. batch by batch (at most ``batch_series`` series and ``batch_bytes`` of chunks per
   hold), under the lock, each series' sealed chunks (``bytes``, copied) and a copy of
   its head: from 6 µs for a young series to 70 µs for one with a day of history (about
   20 KiB). Between batches the scraper and the query side get the lock;
3. without the lock, a copy of the store is rebuilt from those pieces
   (:meth:`~kubepulse.store.tsdb.TimeSeriesStore.restore_series`) and written with
   :func:`~kubepulse.checkpoint.save_checkpoint` (atomic, fsynced).

Each series is copied consistently; different series may be a scrape apart, which is
what a restart loses anyway. The copy costs memory while it is written (about the size
of the checkpoint file). :class:`CheckpointReport` says how long the lock was held, in
all and at most, and ``bench/scrape_bench.py`` prints it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge

from kubepulse.checkpoint import CheckpointInfo, restore_or_empty, save_checkpoint
from kubepulse.errors import CheckpointError, KubepulseValueError
from kubepulse.store import CompactionResult, TimeSeriesStore

__all__ = [
    "CheckpointMetrics",
    "CheckpointReport",
    "CheckpointSettings",
    "Checkpointer",
    "LockHolds",
    "snapshot_store",
]

LOGGER: Final = logging.getLogger("kubepulse.adapter.scrape.checkpointer")


@dataclass(frozen=True, slots=True)
class CheckpointSettings:
    """When to checkpoint and compact, and how long one lock hold may grow.

    Attributes:
        interval_seconds: time between checkpoints (default 300); one more is written
            on stop.
        compaction_interval_seconds: time between compactions (default 1800: the store
            wants one about every chunk range, an hour).
        batch_series: most series copied per hold of the lock while checkpointing
            (default 256).
        batch_bytes: most bytes of sealed chunks copied per hold (default 1 MiB); with
            ``batch_series``, a hold lasts a few milliseconds (``bench/scrape_bench.py``).
    """

    interval_seconds: float = 300.0
    compaction_interval_seconds: float = 1800.0
    batch_series: int = 256
    batch_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        if not (self.interval_seconds > 0 and self.compaction_interval_seconds > 0):
            raise KubepulseValueError(
                f"checkpoint interval ({self.interval_seconds!r} s) and compaction interval "
                f"({self.compaction_interval_seconds!r} s) must be positive"
            )
        if self.batch_series < 1 or self.batch_bytes < 1:
            raise KubepulseValueError(
                f"batch_series ({self.batch_series}) and batch_bytes ({self.batch_bytes}) "
                "must be at least 1"
            )


@dataclass(frozen=True, slots=True)
class LockHolds:
    """How a piece of work held the store lock.

    Attributes:
        count: how many times it took the lock.
        total_seconds: the holds added up.
        max_seconds: the longest single hold: what a query may have waited.
    """

    count: int = 0
    total_seconds: float = 0.0
    max_seconds: float = 0.0

    def plus(self, seconds: float) -> LockHolds:
        """These holds and one more of ``seconds``."""
        return LockHolds(
            self.count + 1, self.total_seconds + seconds, max(self.max_seconds, seconds)
        )


@dataclass(frozen=True, slots=True)
class CheckpointReport:
    """What one checkpoint did.

    Attributes:
        info: the file written (:class:`kubepulse.checkpoint.CheckpointInfo`).
        lock: how the copy held the lock.
        copy_seconds: copying series under the lock and rebuilding them outside it.
        write_seconds: writing the file, fsyncs included (no lock held).
    """

    info: CheckpointInfo
    lock: LockHolds
    copy_seconds: float
    write_seconds: float


class CheckpointMetrics:
    """The checkpointer's own metrics, registered in ``registry`` (its own by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        registry = self.registry
        self.duration = Gauge(
            "kubepulse_adapter_checkpoint_duration_seconds",
            "Time the last checkpoint took, copy and write.",
            registry=registry,
        )
        self.size = Gauge(
            "kubepulse_adapter_checkpoint_size_bytes",
            "Size of the last checkpoint file.",
            registry=registry,
        )
        self.lock_hold = Gauge(
            "kubepulse_adapter_checkpoint_lock_hold_max_seconds",
            "Longest single hold of the store lock during the last checkpoint.",
            registry=registry,
        )
        self.last_success = Gauge(
            "kubepulse_adapter_checkpoint_last_success_timestamp_seconds",
            "When the last checkpoint was written, in Unix seconds.",
            registry=registry,
        )
        self.failures = Counter(
            "kubepulse_adapter_checkpoint_failures",
            "Checkpoints that could not be written.",
            registry=registry,
        )
        self.compaction_duration = Gauge(
            "kubepulse_adapter_compaction_duration_seconds",
            "Time the last compaction held the store lock.",
            registry=registry,
        )


def snapshot_store(
    store: TimeSeriesStore,
    lock: threading.Lock,
    *,
    batch_series: int = 256,
    batch_bytes: int = 1 << 20,
) -> tuple[TimeSeriesStore, LockHolds]:
    """A copy of ``store`` taken a batch of series at a time; see the module docstring.

    A batch ends after ``batch_series`` series or once ``batch_bytes`` of sealed chunks
    were copied, whichever comes first (a series with 24 hours of history has about
    20 KiB of chunks, so the bytes bound the holds of a full store). Returns the copy
    (same settings, the same series and samples; empty series are left out) and how
    the lock was held.
    """
    holds = LockHolds()
    started = time.perf_counter()
    with lock:
        every_series = list(store)
    holds = holds.plus(time.perf_counter() - started)
    copy = TimeSeriesStore.like(store)
    position = 0
    while position < len(every_series):
        end = min(len(every_series), position + batch_series)
        copied_bytes = 0
        held = time.perf_counter()
        with lock:
            # Only what changes is read under the lock, making as few objects as can
            # be (allocations invite the garbage collector into the hold). Name, labels
            # and kind of a series never change.
            captured = []
            while position < end and copied_bytes < batch_bytes:
                series = every_series[position]
                position += 1
                if series.deleted or series.is_empty:
                    continue
                chunks = series.chunks
                copied_bytes += sum(map(len, chunks))
                captured.append((series, chunks, series.head))
        holds = holds.plus(time.perf_counter() - held)
        for series, chunks, (head_timestamps, head_values) in captured:
            copy.restore_series(
                series.name,
                series.labels,
                series.kind,
                chunks=chunks,
                head_timestamps_ms=head_timestamps,
                head_values=head_values,
            )
    return copy, holds


class Checkpointer:
    """Restores, checkpoints and compacts one store; see the module docstring.

    Args:
        store: the store the scraper writes and the query side reads.
        lock: the lock both of them hold while they use ``store``.
        path: the checkpoint file; its directory must exist and be writable.
        settings: intervals and batch size.
        metrics: where to count; by default :class:`CheckpointMetrics` with its own
            registry.
        wall_clock: seconds since the epoch (compaction's ``now``; injected by tests).
    """

    def __init__(
        self,
        store: TimeSeriesStore,
        lock: threading.Lock,
        path: str | os.PathLike[str],
        settings: CheckpointSettings | None = None,
        *,
        metrics: CheckpointMetrics | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.path = Path(path)
        self.settings = settings or CheckpointSettings()
        self.metrics = metrics or CheckpointMetrics()
        self.restore_message: str | None = None
        """Why the store started empty although a checkpoint file was there, if so."""
        self.last_report: CheckpointReport | None = None
        """The last checkpoint written."""
        self._lock = lock
        self._wall_clock = wall_clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = threading.Lock()  # one checkpoint or compaction at a time

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        lock: threading.Lock,
        factory: Callable[[], TimeSeriesStore],
        settings: CheckpointSettings | None = None,
        metrics: CheckpointMetrics | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> Checkpointer:
        """Restore the store saved at ``path`` (or start empty) and return its checkpointer.

        ``factory`` builds an empty store with the current configuration; a restored
        store takes its settings. Why the store is empty is logged (a warning when a
        checkpoint existed but could not be used) and kept in :attr:`restore_message`.
        """
        started = time.monotonic()
        store, message = restore_or_empty(path, factory=factory, wall_clock=wall_clock)
        checkpointer = cls(store, lock, path, settings, metrics=metrics, wall_clock=wall_clock)
        checkpointer.restore_message = message
        if message is not None:
            LOGGER.warning("%s", message)
        elif store.series_count == 0:
            LOGGER.info("no checkpoint at %s yet; starting with an empty store", path)
        else:
            LOGGER.info(
                "restored %d series (%d samples) from %s in %.1f s",
                store.series_count,
                store.sample_count,
                path,
                time.monotonic() - started,
            )
        return checkpointer

    # ------------------------------------------------------------------ work

    def checkpoint(self) -> CheckpointReport:
        """Write a checkpoint now (see the module docstring).

        Raises:
            CheckpointError: the file cannot be written; the previous one is unchanged.
        """
        with self._busy:
            started = time.perf_counter()
            copy, holds = snapshot_store(
                self.store,
                self._lock,
                batch_series=self.settings.batch_series,
                batch_bytes=self.settings.batch_bytes,
            )
            copied = time.perf_counter()
            try:
                info = save_checkpoint(copy, self.path)
            except CheckpointError:
                self.metrics.failures.inc()
                raise
            report = CheckpointReport(
                info=info,
                lock=holds,
                copy_seconds=copied - started,
                write_seconds=time.perf_counter() - copied,
            )
        self.last_report = report
        metrics = self.metrics
        metrics.duration.set(report.copy_seconds + report.write_seconds)
        metrics.size.set(info.size_bytes)
        metrics.lock_hold.set(holds.max_seconds)
        metrics.last_success.set(self._wall_clock())
        LOGGER.info(
            "checkpoint %s: %d series, %d samples, %d bytes; copy %.2f s (lock held %d "
            "times, at most %.1f ms), write %.2f s",
            self.path,
            info.series_count,
            info.sample_count,
            info.size_bytes,
            report.copy_seconds,
            holds.count,
            holds.max_seconds * 1000,
            report.write_seconds,
        )
        return report

    def compact(self) -> tuple[CompactionResult, float]:
        """Compact the store now, under the lock; return the result and the hold in seconds."""
        with self._busy:
            now_ms = int(self._wall_clock() * 1000)
            started = time.perf_counter()
            with self._lock:
                result = self.store.compact(now_ms)
            held = time.perf_counter() - started
        self.metrics.compaction_duration.set(held)
        LOGGER.info(
            "compaction: %d heads sealed, %d samples past retention dropped, %d empty "
            "series removed; lock held %.1f ms",
            result.sealed_heads,
            result.dropped_samples,
            result.removed_series,
            held * 1000,
        )
        return result, held

    # ------------------------------------------------------------------ schedule

    def start(self) -> None:
        """Compact and checkpoint on schedule in a daemon thread.

        Raises:
            RuntimeError: already started; make a new checkpointer instead.
        """
        if self._thread is not None:
            raise RuntimeError("the checkpointer was already started; create a new one")
        self._thread = threading.Thread(
            target=self._run, name="kubepulse-checkpointer", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 60.0, *, final_checkpoint: bool = True) -> None:
        """Stop the schedule and, by default, write a last checkpoint.

        A failed last checkpoint is logged, not raised: stopping goes on.
        """
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if final_checkpoint:
            try:
                self.checkpoint()
            except CheckpointError as error:
                LOGGER.error("the last checkpoint before stopping failed: %s", error)

    def _run(self) -> None:
        settings = self.settings
        now = time.monotonic()
        next_checkpoint = now + settings.interval_seconds
        next_compaction = now + settings.compaction_interval_seconds
        while not self._stopping.wait(max(0.0, min(next_checkpoint, next_compaction) - now)):
            now = time.monotonic()
            try:
                if now >= next_compaction:
                    next_compaction = now + settings.compaction_interval_seconds
                    self.compact()
                if now >= next_checkpoint:
                    next_checkpoint = now + settings.interval_seconds
                    self.checkpoint()
            except CheckpointError as error:
                LOGGER.error("checkpoint failed: %s; retrying at the next interval", error)
            except Exception:  # the thread must outlive any bug
                LOGGER.exception("checkpoint or compaction failed unexpectedly")
            now = time.monotonic()

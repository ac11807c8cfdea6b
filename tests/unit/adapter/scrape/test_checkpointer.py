"""The checkpointer: restore at start, batched snapshots, writes without the lock, schedule."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest

from adapter.scrape.checkpointer import (
    Checkpointer,
    CheckpointSettings,
    LockHolds,
    snapshot_store,
)
from kubepulse.errors import CheckpointError, KubepulseValueError
from kubepulse.stats.summary import SeriesKind
from kubepulse.store import TimeSeriesStore, dump_store

HOUR_MS = 3_600_000
START_MS = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS  # on an hour boundary


def filled_store(series_count: int, *, hours: int = 2) -> TimeSeriesStore:
    """Counters and gauges with sealed chunks (earlier hours) and a head (the last)."""
    store = TimeSeriesStore()
    handles = [
        store.series(
            f"metric_{index % 7}",
            {"pod": f"pod-{index}", "namespace": "shop"},
            SeriesKind.COUNTER if index % 2 else SeriesKind.GAUGE,
        )
        for index in range(series_count)
    ]
    for step in range(hours * 240 - 100):
        timestamp_ms = START_MS + step * 15_000
        store.append_many(
            (series, timestamp_ms, float(step * (index % 5 + 1)))
            for index, series in enumerate(handles)
        )
    return store


def snapshot_bytes(store: TimeSeriesStore) -> bytes:
    return b"".join(dump_store(store))


class WatchingLock:
    """A lock that records, at every acquire and release, whether the checkpoint's
    temporary file or the checkpoint itself existed (duck-typed as threading.Lock)."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._files = (path, path.with_name(f".{path.name}.tmp"))
        self.observations: list[tuple[bool, bool]] = []

    def _observe(self) -> None:
        self.observations.append((self._files[0].exists(), self._files[1].exists()))

    def __enter__(self) -> bool:
        self._lock.acquire()
        self._observe()
        return True

    def __exit__(self, *_exc_info: object) -> None:
        self._observe()
        self._lock.release()


def as_lock(lock: Any) -> threading.Lock:
    return cast(threading.Lock, lock)


# ---------------------------------------------------------------------------- restore


def test_a_first_start_is_empty_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kubepulse.adapter.scrape.checkpointer")
    checkpointer = Checkpointer.open(
        tmp_path / "store.ckpt", lock=threading.Lock(), factory=TimeSeriesStore
    )
    assert checkpointer.store.series_count == 0
    assert checkpointer.restore_message is None
    assert "no checkpoint at" in caplog.text


def test_a_corrupt_checkpoint_is_moved_aside_and_the_reason_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "store.ckpt"
    path.write_bytes(b"KPTSDB\x01\x00 this is not a checkpoint")
    checkpointer = Checkpointer.open(path, lock=threading.Lock(), factory=TimeSeriesStore)
    assert checkpointer.store.series_count == 0
    assert checkpointer.restore_message is not None
    assert "moved aside" in checkpointer.restore_message
    assert any(record.levelno == logging.WARNING for record in caplog.records)
    assert not path.exists()
    assert len(list(tmp_path.glob("store.ckpt.corrupt-*"))) == 1


def test_a_checkpoint_restores_the_whole_history(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kubepulse.adapter.scrape.checkpointer")
    path = tmp_path / "store.ckpt"
    store = filled_store(50)
    report = Checkpointer(store, threading.Lock(), path).checkpoint()
    assert report.info.series_count == 50
    assert report.info.sample_count == store.sample_count
    restored = Checkpointer.open(path, lock=threading.Lock(), factory=TimeSeriesStore).store
    assert snapshot_bytes(restored) == snapshot_bytes(store)
    assert "restored 50 series" in caplog.text
    original = {(s.name, s.label_pairs): s for s in store}
    for series in restored:
        twin = original[(series.name, series.label_pairs)]
        assert series.kind is twin.kind
        assert series.samples(0, 2**62) == twin.samples(0, 2**62)


# ---------------------------------------------------------------------------- snapshot


def test_a_snapshot_is_an_exact_copy_taken_in_batches() -> None:
    store = filled_store(1000, hours=1)
    empty = store.series("never_written", {"pod": "x"})
    doomed = store.series("deleted", {"pod": "y"})
    store.append_many([(doomed, START_MS, 1.0)])
    store.delete_series(pod="y")
    copy, holds = snapshot_store(store, as_lock(threading.Lock()), batch_series=256)
    assert holds.count == 1 + 4  # the list of series, then four batches of 256
    assert holds.max_seconds <= holds.total_seconds
    assert copy.series_count == 1000  # without the empty series
    store.delete_series(lambda labels: labels == empty.labels, __name__="never_written")
    assert snapshot_bytes(copy) == snapshot_bytes(store)


def test_a_batch_also_ends_after_enough_bytes() -> None:
    store = filled_store(100, hours=3)  # two sealed chunks per series
    chunk_bytes = sum(len(chunk) for series in store for chunk in series.chunks)
    batch_bytes = chunk_bytes // 10
    copy, holds = snapshot_store(
        store, as_lock(threading.Lock()), batch_series=256, batch_bytes=batch_bytes
    )
    assert 1 + 10 <= holds.count <= 1 + 12  # not 1 + 1: the bytes ended the batches
    assert snapshot_bytes(copy) == snapshot_bytes(store)


def test_lock_holds_add_up() -> None:
    holds = LockHolds().plus(0.002).plus(0.005).plus(0.001)
    assert (holds.count, holds.max_seconds) == (3, 0.005)
    assert holds.total_seconds == pytest.approx(0.008)


def test_the_file_is_written_with_the_lock_free(tmp_path: Path) -> None:
    path = tmp_path / "store.ckpt"
    lock = WatchingLock(path)
    report = Checkpointer(
        filled_store(600), as_lock(lock), path, CheckpointSettings(batch_series=100)
    ).checkpoint()
    assert report.lock.count == 1 + 6
    assert len(lock.observations) == 2 * report.lock.count
    # Every hold began and ended before the temporary file was created: none of them
    # overlapped the write, which holds no lock at all.
    assert set(lock.observations) == {(False, False)}
    assert path.exists()
    assert report.write_seconds > 0


def test_a_snapshot_lets_others_take_the_lock_between_batches(tmp_path: Path) -> None:
    lock = threading.Lock()
    store = filled_store(2000, hours=1)
    checkpointer = Checkpointer(store, lock, tmp_path / "c", CheckpointSettings(batch_series=50))
    acquired_while_copying = 0
    done = threading.Event()

    def checkpoint() -> None:
        try:
            checkpointer.checkpoint()
        finally:
            done.set()

    thread = threading.Thread(target=checkpoint)
    thread.start()
    while not done.is_set():
        with lock:
            acquired_while_copying += 1
        time.sleep(0)
    thread.join()
    assert acquired_while_copying > 1
    report = checkpointer.last_report
    assert report is not None
    assert report.lock.count == 1 + 40


def test_a_failed_checkpoint_is_counted_and_raised(tmp_path: Path) -> None:
    checkpointer = Checkpointer(filled_store(3), threading.Lock(), tmp_path / "missing" / "c")
    with pytest.raises(CheckpointError, match="check that"):
        checkpointer.checkpoint()
    registry = checkpointer.metrics.registry
    assert registry.get_sample_value("kubepulse_adapter_checkpoint_failures_total") == 1


def test_checkpoint_metrics(tmp_path: Path) -> None:
    checkpointer = Checkpointer(filled_store(3), threading.Lock(), tmp_path / "c")
    report = checkpointer.checkpoint()
    registry = checkpointer.metrics.registry
    assert registry.get_sample_value("kubepulse_adapter_checkpoint_size_bytes") == (
        report.info.size_bytes
    )
    assert registry.get_sample_value(
        "kubepulse_adapter_checkpoint_lock_hold_max_seconds"
    ) == pytest.approx(report.lock.max_seconds)
    last_success = registry.get_sample_value(
        "kubepulse_adapter_checkpoint_last_success_timestamp_seconds"
    )
    assert last_success is not None
    assert abs(last_success - time.time()) < 60


# ---------------------------------------------------------------------------- compaction


def test_compaction_applies_the_retention(tmp_path: Path) -> None:
    store = filled_store(10, hours=3)
    samples = store.sample_count
    now_s = (START_MS + 25 * HOUR_MS + HOUR_MS // 2) / 1000  # only the first hour is too old
    checkpointer = Checkpointer(store, threading.Lock(), tmp_path / "c", wall_clock=lambda: now_s)
    result, held = checkpointer.compact()
    assert result.dropped_samples == 10 * 240
    assert result.sealed_heads == 10
    assert store.sample_count == samples - 10 * 240
    registry = checkpointer.metrics.registry
    assert registry.get_sample_value("kubepulse_adapter_compaction_duration_seconds") == held


# ---------------------------------------------------------------------------- schedule


def test_the_schedule_and_the_last_checkpoint_on_stop(tmp_path: Path) -> None:
    path = tmp_path / "store.ckpt"
    store = filled_store(5, hours=1)
    checkpointer = Checkpointer(
        store,
        threading.Lock(),
        path,
        CheckpointSettings(interval_seconds=0.05, compaction_interval_seconds=0.05),
    )
    checkpointer.start()
    with pytest.raises(RuntimeError, match="already started"):
        checkpointer.start()
    deadline = time.monotonic() + 10
    while checkpointer.last_report is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    registry = checkpointer.metrics.registry
    while registry.get_sample_value("kubepulse_adapter_compaction_duration_seconds") == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    store.append("late", {"pod": "z"}, START_MS + HOUR_MS, 1.0)
    checkpointer.stop()
    restored = Checkpointer.open(path, lock=threading.Lock(), factory=TimeSeriesStore).store
    assert "late" in restored.label_values("__name__")


def test_a_failed_last_checkpoint_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpointer = Checkpointer(filled_store(2), threading.Lock(), tmp_path / "no" / "c")
    checkpointer.stop()
    assert "the last checkpoint before stopping failed" in caplog.text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interval_seconds": 0},
        {"compaction_interval_seconds": -1},
        {"batch_series": 0},
        {"batch_bytes": 0},
    ],
)
def test_settings_are_checked(kwargs: dict[str, Any]) -> None:
    with pytest.raises(KubepulseValueError):
        CheckpointSettings(**kwargs)

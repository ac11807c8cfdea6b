"""Checkpoint files: atomic saves, faithful loads, and damaged files moved aside, never loaded."""

from __future__ import annotations

import calendar
import random
from pathlib import Path

import pytest

from kubepulse.checkpoint import (
    CheckpointInfo,
    load_checkpoint,
    restore_or_empty,
    save_checkpoint,
)
from kubepulse.errors import CheckpointError
from kubepulse.stats.summary import SeriesKind
from kubepulse.store import TimeSeriesStore

HOUR_MS = 3_600_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS
# 2024-05-06 07:08:09 UTC, for the name of a moved-aside file.
FIXED_WALL_CLOCK = float(calendar.timegm((2024, 5, 6, 7, 8, 9, 0, 0, 0)))


def build_store(seed: int = 1) -> TimeSeriesStore:
    rng = random.Random(seed)
    store = TimeSeriesStore()
    handles = [store.series("cpu", {"pod": f"pod-{pod}"}, SeriesKind.COUNTER) for pod in range(5)]
    usage = [0.0] * len(handles)
    for step in range(300):
        batch = []
        for index, series in enumerate(handles):
            usage[index] += round(rng.uniform(0, 15), 6)
            batch.append((series, START_MS + step * 15_000, usage[index]))
        store.append_many(batch)
    return store


def samples_of(store: TimeSeriesStore) -> dict[tuple[str, ...], tuple[list[int], list[float]]]:
    contents = {}
    for series in store:
        timestamps, values = series.samples(0, 2**62)
        contents[series.label_pairs] = (list(timestamps), list(values))
    return contents


def test_save_then_load_gives_back_the_same_samples(tmp_path: Path) -> None:
    store = build_store()
    path = tmp_path / "store.kptsdb"
    info = save_checkpoint(store, path)
    assert isinstance(info, CheckpointInfo)
    assert info.path == path
    assert info.size_bytes == path.stat().st_size
    assert (info.series_count, info.sample_count) == (5, 1500)
    assert info.duration_seconds >= 0.0
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["store.kptsdb"]
    loaded = load_checkpoint(path)
    assert samples_of(loaded) == samples_of(store)


def test_a_save_replaces_the_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "store.kptsdb"
    save_checkpoint(build_store(seed=1), path)
    newer = build_store(seed=2)
    save_checkpoint(newer, path)
    assert samples_of(load_checkpoint(path)) == samples_of(newer)


def test_a_failed_save_leaves_the_previous_checkpoint_alone(tmp_path: Path) -> None:
    path = tmp_path / "store.kptsdb"
    first = build_store(seed=1)
    save_checkpoint(first, path)
    before = path.read_bytes()
    (tmp_path / ".store.kptsdb.tmp").mkdir()  # the temporary file cannot be created
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint .*store\.kptsdb"):
        save_checkpoint(build_store(seed=2), path)
    assert path.read_bytes() == before
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        save_checkpoint(first, tmp_path / "missing-directory" / "store.kptsdb")


@pytest.mark.parametrize("keep_fraction", [0.0, 0.01, 0.5, 0.99])
def test_a_torn_file_is_reported_with_its_path_and_offset(
    tmp_path: Path, keep_fraction: float
) -> None:
    path = tmp_path / "store.kptsdb"
    save_checkpoint(build_store(), path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    with pytest.raises(CheckpointError, match=rf"checkpoint {path}: corrupt checkpoint: .*byte"):
        load_checkpoint(path)


def test_a_flipped_byte_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "store.kptsdb"
    save_checkpoint(build_store(), path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="CRC mismatch"):
        load_checkpoint(path)


def test_loading_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "absent.kptsdb")


def test_restore_without_a_file_starts_empty_quietly(tmp_path: Path) -> None:
    store, problem = restore_or_empty(tmp_path / "store.kptsdb", factory=TimeSeriesStore)
    assert problem is None
    assert store.series_count == 0


def test_restore_keeps_history_with_the_current_settings(tmp_path: Path) -> None:
    path = tmp_path / "store.kptsdb"
    original = build_store()
    save_checkpoint(original, path)
    store, problem = restore_or_empty(
        path, factory=lambda: TimeSeriesStore(retention_ms=48 * HOUR_MS)
    )
    assert problem is None
    assert store.retention_ms == 48 * HOUR_MS
    assert samples_of(store) == samples_of(original)


def test_restore_moves_a_corrupt_file_aside_and_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "store.kptsdb"
    save_checkpoint(build_store(), path)
    torn = path.read_bytes()[:1000]
    path.write_bytes(torn)
    store, problem = restore_or_empty(
        path, factory=TimeSeriesStore, wall_clock=lambda: FIXED_WALL_CLOCK
    )
    aside = tmp_path / "store.kptsdb.corrupt-20240506T070809Z"
    assert store.series_count == 0
    assert problem is not None
    assert str(path) in problem
    assert "byte" in problem
    assert f"moved aside to {aside}" in problem
    assert "starts with an empty store" in problem
    assert not path.exists()
    assert aside.read_bytes() == torn  # kept for inspection, never deleted

    # A second corrupt file in the same second gets its own name.
    path.write_bytes(b"KPTSDB\x07\x00")
    _, second_problem = restore_or_empty(
        path, factory=TimeSeriesStore, wall_clock=lambda: FIXED_WALL_CLOCK
    )
    assert second_problem is not None
    assert "format version 7" in second_problem
    assert (tmp_path / "store.kptsdb.corrupt-20240506T070809Z-1").read_bytes() == b"KPTSDB\x07\x00"
    assert aside.read_bytes() == torn


def test_restore_with_another_relative_accuracy_moves_the_file_aside(tmp_path: Path) -> None:
    path = tmp_path / "store.kptsdb"
    save_checkpoint(build_store(), path)
    store, problem = restore_or_empty(
        path,
        factory=lambda: TimeSeriesStore(relative_accuracy=0.05),
        wall_clock=lambda: FIXED_WALL_CLOCK,
    )
    assert store.series_count == 0
    assert problem is not None
    assert "relative accuracy" in problem
    assert (tmp_path / "store.kptsdb.corrupt-20240506T070809Z").exists()

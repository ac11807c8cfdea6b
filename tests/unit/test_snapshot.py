"""The checkpoint byte format: exact round trips, and no damaged snapshot ever loads."""

from __future__ import annotations

import math
import random
import struct
import zlib

import pytest

from kubepulse.errors import CheckpointError
from kubepulse.stats.summary import SeriesKind
from kubepulse.store import (
    SNAPSHOT_MAGIC,
    TimeSeriesStore,
    dump_store,
    load_store,
)

HOUR_MS = 3_600_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS


def build_store(seed: int, pods: int, hours: float) -> TimeSeriesStore:
    rng = random.Random(seed)
    store = TimeSeriesStore(retention_ms=30 * HOUR_MS, relative_accuracy=0.02)
    handles = []
    for pod in range(pods):
        labels = {"namespace": "ns", "pod": f"pod-{pod}", "container": "app ünïcode"}
        handles.append((store.series("cpu", labels, SeriesKind.COUNTER), rng.uniform(0, 1e4)))
        handles.append((store.series("memory", labels, SeriesKind.GAUGE), rng.uniform(1e6, 1e9)))
    steps = int(hours * HOUR_MS / 15_000)
    for step in range(steps):
        stamp = START_MS + step * 15_000 + rng.randint(0, 50)
        batch = []
        for index, (series, previous_level) in enumerate(handles):
            if series.kind is SeriesKind.COUNTER:
                level = previous_level + round(rng.uniform(0, 20), 6)
            else:
                level = float(round(previous_level + rng.gauss(0, 1e5)))
            handles[index] = (series, level)
            value = math.nan if rng.random() < 0.001 else level
            batch.append((series, stamp, value))
        store.append_many(batch)
    return store


def snapshot_bytes(store: TimeSeriesStore) -> bytes:
    return b"".join(dump_store(store))


def assert_same_contents(loaded: TimeSeriesStore, original: TimeSeriesStore) -> None:
    assert loaded.series_count == original.series_count
    assert loaded.sample_count == original.sample_count
    for series in original:
        (copy,) = loaded.select(series.name, **series.labels)
        assert copy.kind is series.kind
        expected_timestamps, expected_values = series.samples(0, 2**62)
        got_timestamps, got_values = copy.samples(0, 2**62)
        assert got_timestamps == expected_timestamps
        assert [struct.pack("<d", value) for value in got_values] == [
            struct.pack("<d", value) for value in expected_values
        ]
        assert copy.chunks == series.chunks
        assert copy.last_timestamp_ms == series.last_timestamp_ms
        expected_summary = series.summary(0, 2**62)
        got_summary = copy.summary(0, 2**62)
        assert expected_summary is not None
        assert got_summary is not None
        assert got_summary.to_bytes() == expected_summary.to_bytes()


def test_round_trip_keeps_every_sample_and_setting() -> None:
    original = build_store(seed=1, pods=6, hours=3.5)
    loaded = load_store(dump_store(original))
    assert_same_contents(loaded, original)
    assert loaded.retention_ms == original.retention_ms
    assert loaded.settings == original.settings
    # The restored heads accept the next scrape where the originals would.
    for series in original:
        (copy,) = loaded.select(series.name, **series.labels)
        last = series.last_timestamp_ms
        assert last is not None
        assert loaded.append(series.name, series.labels, last + 15_000, 1.0, series.kind)
        assert not loaded.append(series.name, series.labels, last, 1.0, series.kind)
        assert copy.latest(last + 15_000, 60_000) == (last + 15_000, 1.0)


def test_pieces_can_be_cut_anywhere() -> None:
    data = snapshot_bytes(build_store(seed=2, pods=2, hours=1.2))
    rng = random.Random(2)
    pieces = []
    position = 0
    while position < len(data):
        size = rng.randint(1, 97)
        pieces.append(data[position : position + size])
        position += size
    assert_same_contents(load_store(pieces), load_store([data]))


def test_an_empty_store_and_a_sealed_only_store_round_trip() -> None:
    empty = TimeSeriesStore()
    assert load_store(dump_store(empty)).series_count == 0
    sealed = build_store(seed=3, pods=2, hours=2)
    sealed.compact(START_MS + 3 * HOUR_MS)  # seals every head
    assert all(not series.head[0] for series in sealed)
    assert_same_contents(load_store(dump_store(sealed)), sealed)


def test_settings_from_another_store_apply_when_loading() -> None:
    original = build_store(seed=4, pods=2, hours=1)
    configured = TimeSeriesStore(
        retention_ms=48 * HOUR_MS, resolution_ms=30_000, relative_accuracy=0.02
    )
    loaded = load_store(dump_store(original), settings_from=configured)
    assert loaded is not configured
    assert configured.series_count == 0
    assert loaded.retention_ms == 48 * HOUR_MS
    assert loaded.settings == configured.settings
    assert_same_contents(loaded, original)
    with pytest.raises(CheckpointError, match=r"relative accuracy 0\.02"):
        load_store(dump_store(original), settings_from=TimeSeriesStore(relative_accuracy=0.01))


@pytest.fixture(scope="module")
def small_snapshot() -> bytes:
    return snapshot_bytes(build_store(seed=5, pods=2, hours=1.1))


def test_every_truncation_is_refused(small_snapshot: bytes) -> None:
    for length in range(len(small_snapshot)):
        with pytest.raises(CheckpointError, match="corrupt checkpoint"):
            load_store([small_snapshot[:length]])


def test_every_flipped_byte_is_refused(small_snapshot: bytes) -> None:
    rng = random.Random(6)
    for position in range(len(small_snapshot)):
        flipped = bytearray(small_snapshot)
        flipped[position] ^= 1 << rng.randrange(8)
        with pytest.raises(CheckpointError):
            load_store([bytes(flipped)])


def test_errors_name_the_record_and_offset(small_snapshot: bytes) -> None:
    settings_record_end = len(SNAPSHOT_MAGIC) + 2 + 4 + 1 + 40 + 4
    damaged = bytearray(small_snapshot)
    damaged[settings_record_end + 20] ^= 0xFF  # inside the first series record
    with pytest.raises(CheckpointError, match=f"record 1 at byte {settings_record_end}: CRC"):
        load_store([bytes(damaged)])
    with pytest.raises(CheckpointError, match="the file ends inside"):
        load_store([small_snapshot[:-3]])


def test_an_unknown_version_or_magic_is_refused(small_snapshot: bytes) -> None:
    newer = small_snapshot[:6] + struct.pack("<H", 2) + small_snapshot[8:]
    with pytest.raises(CheckpointError, match="format version 2 is not supported"):
        load_store([newer])
    with pytest.raises(CheckpointError, match="does not start with"):
        load_store([b"NOTPDB" + small_snapshot[6:]])


def test_bytes_after_the_trailer_are_refused(small_snapshot: bytes) -> None:
    with pytest.raises(CheckpointError, match="after the trailer"):
        load_store([small_snapshot + b"\x00"])


def split_records(data: bytes) -> tuple[bytes, list[bytes]]:
    """The file header and each record (prefix, body and CRC), trailer included."""
    header_length = len(SNAPSHOT_MAGIC) + 2
    records = []
    position = header_length
    while position < len(data):
        (length,) = struct.unpack_from("<I", data, position)
        records.append(data[position : position + 4 + length + 4])
        position += 4 + length + 4
    return data[:header_length], records


def with_valid_trailer(header: bytes, records: list[bytes]) -> bytes:
    """Reassemble records and recompute the trailer, as a buggy or hostile writer could."""
    body = header + b"".join(records)
    payload = bytes((3,)) + struct.pack("<QI", len(records), zlib.crc32(body))
    return body + struct.pack("<I", len(payload)) + payload + struct.pack("<I", zlib.crc32(payload))


def test_consistent_crcs_do_not_let_inconsistent_contents_through(small_snapshot: bytes) -> None:
    header, records = split_records(small_snapshot)
    settings, *series_records, _trailer = records
    assert len(series_records) == 4
    # Sanity: reassembling the same records loads.
    assert load_store([with_valid_trailer(header, records[:-1])]).series_count == 4
    duplicated = with_valid_trailer(header, [settings, *series_records, series_records[0]])
    with pytest.raises(CheckpointError, match="restored twice"):
        load_store([duplicated])
    with pytest.raises(CheckpointError, match="before the settings"):
        load_store([with_valid_trailer(header, series_records)])
    with pytest.raises(CheckpointError, match="second settings"):
        load_store([with_valid_trailer(header, [settings, settings])])
    dropped_trailer_count = with_valid_trailer(header, records[:-2])
    assert load_store([dropped_trailer_count]).series_count == 3
    # A record missing while the old trailer stays: counted and CRC'd, so refused.
    with pytest.raises(CheckpointError, match="trailer"):
        load_store([header + b"".join([settings, *series_records[1:], records[-1]])])

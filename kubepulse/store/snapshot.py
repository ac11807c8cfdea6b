"""The checkpoint byte format of a :class:`~kubepulse.store.tsdb.TimeSeriesStore`.

:func:`dump_store` turns a store into a stream of byte pieces and :func:`load_store` turns
such a stream back into a store; :mod:`kubepulse.checkpoint` writes and reads the pieces
to and from a file. Layout (version 1, little-endian)::

    magic      b"KPTSDB"
    version    u16
    record*    u32 length of (type + payload) | u8 type | payload | u32 CRC-32 of (type + payload)

Records, in this order:

- ``SETTINGS`` (exactly one, first): retention, resolution, minimum interval and chunk
  range in milliseconds (i64 each) and the sketches' relative accuracy (f64).
- ``SERIES`` (one per series): kind (u8), metric name, label count (u32) and the label
  names and values (each a u32 length and UTF-8), chunk count (u32) and each sealed
  chunk (u32 length and the chunk's bytes, as :mod:`~kubepulse.store.chunk` encoded
  them), then the head encoded as one chunk without summary (u32 length, 0 for an
  empty head).
- ``TRAILER`` (exactly one, last): the number of records before it (u64) and the CRC-32
  of every byte before it (u32), so a file cut exactly between two records is caught.

:func:`load_store` never returns a partial store: every length, CRC, count and field is
checked, and any problem raises :class:`~kubepulse.errors.CheckpointError` naming the
record and the byte offset where it was found.

This module is pure: it works on bytes, not files.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Iterable, Iterator

from kubepulse.errors import CheckpointError, KubepulseValueError
from kubepulse.stats.summary import SeriesKind
from kubepulse.store.chunk import decode_chunk, encode_chunk
from kubepulse.store.tsdb import TimeSeriesStore

__all__ = [
    "SNAPSHOT_FORMAT_VERSION",
    "SNAPSHOT_MAGIC",
    "dump_store",
    "load_store",
]

SNAPSHOT_MAGIC = b"KPTSDB"
SNAPSHOT_FORMAT_VERSION = 1

_VERSION = struct.Struct("<H")
_RECORD_PREFIX = struct.Struct("<IB")  # length of type + payload, type
_CRC = struct.Struct("<I")
_U32 = struct.Struct("<I")
_SETTINGS = struct.Struct("<qqqqd")
_TRAILER = struct.Struct("<QI")
# A record is one series: 25 hourly chunks of a few KiB. Anything near this limit is a
# corrupt length field, and refusing it keeps a flipped bit from allocating gigabytes.
_MAX_RECORD_BYTES = 1 << 28
_KIND_CODES = {SeriesKind.GAUGE: 0, SeriesKind.COUNTER: 1}
_KINDS_BY_CODE = {code: kind for kind, code in _KIND_CODES.items()}
_WHAT_TO_DO = (
    "the checkpoint cannot be used; start with an empty store (restore_or_empty() in "
    "kubepulse.checkpoint moves the file aside and does that)"
)


class _RecordType(enum.IntEnum):
    SETTINGS = 1
    SERIES = 2
    TRAILER = 3


def _record(record_type: _RecordType, payload: bytes) -> bytes:
    body = bytes((record_type,)) + payload
    return _U32.pack(len(body)) + body + _CRC.pack(zlib.crc32(body))


def _put_bytes(out: bytearray, data: bytes) -> None:
    out += _U32.pack(len(data))
    out += data


def _put_text(out: bytearray, text: str) -> None:
    _put_bytes(out, text.encode("utf-8"))


def dump_store(store: TimeSeriesStore) -> Iterator[bytes]:
    """The snapshot of ``store`` as byte pieces, to be written one after the other.

    The store must not change while the pieces are consumed (it is not thread-safe).
    Each series is one piece, so writing holds only one series' bytes at a time besides
    the store itself.
    """
    running_crc = 0
    record_count = 0
    settings = store.settings
    header = SNAPSHOT_MAGIC + _VERSION.pack(SNAPSHOT_FORMAT_VERSION)
    settings_record = _record(
        _RecordType.SETTINGS,
        _SETTINGS.pack(
            store.retention_ms,
            store.resolution_ms,
            settings.min_interval_ms,
            settings.chunk_range_ms,
            settings.relative_accuracy,
        ),
    )
    for piece in (header, settings_record):
        running_crc = zlib.crc32(piece, running_crc)
        yield piece
    record_count += 1
    for series in store:
        payload = bytearray((_KIND_CODES[series.kind],))
        _put_text(payload, series.name)
        label_pairs = series.label_pairs
        payload += _U32.pack(len(label_pairs) // 2)
        for text in label_pairs:
            _put_text(payload, text)
        chunks = series.chunks
        payload += _U32.pack(len(chunks))
        for chunk in chunks:
            _put_bytes(payload, chunk)
        head_timestamps, head_values = series.head
        head = (
            encode_chunk(series.kind, head_timestamps, head_values, summarize=False)
            if head_timestamps
            else b""
        )
        _put_bytes(payload, head)
        record = _record(_RecordType.SERIES, bytes(payload))
        running_crc = zlib.crc32(record, running_crc)
        record_count += 1
        yield record
    yield _record(_RecordType.TRAILER, _TRAILER.pack(record_count, running_crc))


class _Stream:
    """Reads exact byte counts from an iterable of pieces, tracking the absolute offset."""

    __slots__ = ("_buffer", "_pieces", "_position", "crc", "offset")

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces = iter(pieces)
        self._buffer = bytearray()
        self._position = 0
        self.offset = 0  # absolute offset of the next byte to read
        self.crc = 0  # CRC-32 of every byte read so far

    def _fill(self, size: int) -> bool:
        while len(self._buffer) - self._position < size:
            piece = next(self._pieces, None)
            if piece is None:
                return False
            if self._position:
                # Drop what was consumed before growing, so the buffer stays small.
                del self._buffer[: self._position]
                self._position = 0
            self._buffer += piece
        return True

    def read(self, size: int, what: str) -> bytes:
        if not self._fill(size):
            available = len(self._buffer) - self._position
            raise _corrupt(
                f"the file ends inside {what}: {size} bytes needed at byte {self.offset}, "
                f"{available} left (a torn write)"
            )
        data = bytes(self._buffer[self._position : self._position + size])
        self._position += size
        self.offset += size
        self.crc = zlib.crc32(data, self.crc)
        return data

    def at_end(self) -> bool:
        return not self._fill(1)


class _Payload:
    """A cursor over one record's payload that reports problems with the record's place."""

    __slots__ = ("_data", "_position", "_where")

    def __init__(self, data: bytes, where: str) -> None:
        self._data = data
        self._position = 0
        self._where = where

    def fail(self, problem: str) -> CheckpointError:
        return _corrupt(f"{self._where}: {problem}")

    def take(self, size: int) -> bytes:
        end = self._position + size
        if end > len(self._data):
            raise self.fail(f"a field runs past the end of the record (byte {self._position})")
        data = self._data[self._position : end]
        self._position = end
        return data

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        value: int = _U32.unpack(self.take(4))[0]
        return value

    def blob(self) -> bytes:
        return self.take(self.u32())

    def text(self) -> str:
        raw = self.blob()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise self.fail(f"a name is not UTF-8 ({error})") from error

    def finish(self) -> None:
        if self._position != len(self._data):
            raise self.fail(f"{len(self._data) - self._position} unexpected bytes at its end")


def _corrupt(problem: str) -> CheckpointError:
    return CheckpointError(f"corrupt checkpoint: {problem}; {_WHAT_TO_DO}")


def load_store(
    pieces: Iterable[bytes], *, settings_from: TimeSeriesStore | None = None
) -> TimeSeriesStore:
    """Rebuild the store that :func:`dump_store` wrote as ``pieces``.

    Args:
        pieces: the snapshot's bytes in order, cut anywhere (e.g. file blocks).
        settings_from: a store whose settings (retention, resolution, minimum interval,
            chunk range) the loaded store gets instead of the snapshot's, so that a
            restart with a new configuration keeps its history. Its relative accuracy
            must match the snapshot's: stored sketches only merge with sketches of the
            same accuracy. Its contents are not touched.

    Raises:
        CheckpointError: wrong magic, unknown version, truncation, a CRC mismatch, a
            record out of place, an inconsistent field, trailing bytes, or
            ``settings_from`` has another relative accuracy. The message names the
            record and byte offset. A store is returned only when everything checked.
    """
    stream = _Stream(pieces)
    magic = stream.read(len(SNAPSHOT_MAGIC), "the magic bytes")
    if magic != SNAPSHOT_MAGIC:
        raise _corrupt(f"it does not start with {SNAPSHOT_MAGIC!r} (found {magic!r})")
    (version,) = _VERSION.unpack(stream.read(_VERSION.size, "the format version"))
    if version != SNAPSHOT_FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint format version {version} is not supported: this kubepulse reads "
            f"version {SNAPSHOT_FORMAT_VERSION} (was it written by a newer release?); "
            f"{_WHAT_TO_DO}"
        )
    store: TimeSeriesStore | None = None
    record_index = 0
    while True:
        record_offset = stream.offset
        crc_before_record = stream.crc
        where = f"record {record_index} at byte {record_offset}"
        length, record_type = _RECORD_PREFIX.unpack(
            stream.read(_RECORD_PREFIX.size, f"the header of {where}")
        )
        if not 1 <= length <= _MAX_RECORD_BYTES:
            raise _corrupt(f"{where}: impossible record length {length}")
        payload = stream.read(length - 1, f"{where} ({length} bytes)")
        (stored_crc,) = _CRC.unpack(stream.read(_CRC.size, f"the CRC of {where}"))
        if zlib.crc32(payload, zlib.crc32(bytes((record_type,)))) != stored_crc:
            raise _corrupt(f"{where}: CRC mismatch (the bytes changed after they were written)")
        if record_type == _RecordType.TRAILER:
            _check_trailer(_Payload(payload, where), record_index, crc_before_record)
            if store is None:
                raise _corrupt(f"{where}: a trailer before the settings record")
            if not stream.at_end():
                raise _corrupt(f"unexpected bytes after the trailer at byte {stream.offset}")
            return store
        if record_type == _RecordType.SETTINGS:
            if store is not None:
                raise _corrupt(f"{where}: a second settings record")
            store = _store_from_settings(_Payload(payload, where), settings_from)
        elif record_type == _RecordType.SERIES:
            if store is None:
                raise _corrupt(f"{where}: a series before the settings record")
            _load_series(store, _Payload(payload, where))
        else:
            raise _corrupt(f"{where}: unknown record type {record_type}")
        record_index += 1


def _check_trailer(payload: _Payload, record_index: int, crc_before: int) -> None:
    record_count, stored_crc = _TRAILER.unpack(payload.take(_TRAILER.size))
    payload.finish()
    if record_count != record_index:
        raise payload.fail(
            f"the trailer counts {record_count} records, the file has {record_index}"
        )
    if stored_crc != crc_before:
        raise payload.fail("the CRC of the whole file does not match the trailer's")


def _store_from_settings(
    payload: _Payload, settings_from: TimeSeriesStore | None
) -> TimeSeriesStore:
    retention_ms, resolution_ms, min_interval_ms, chunk_range_ms, relative_accuracy = (
        _SETTINGS.unpack(payload.take(_SETTINGS.size))
    )
    payload.finish()
    if settings_from is not None:
        configured_accuracy = settings_from.settings.relative_accuracy
        if configured_accuracy != relative_accuracy:
            raise CheckpointError(
                f"the checkpoint's percentile sketches have relative accuracy "
                f"{relative_accuracy!r} but the store is configured with "
                f"{configured_accuracy!r}, and sketches of different accuracies do not "
                f"merge; configure {relative_accuracy!r} again to keep the history, or: "
                f"{_WHAT_TO_DO}"
            )
        return TimeSeriesStore.like(settings_from)
    try:
        return TimeSeriesStore(
            retention_ms=retention_ms,
            resolution_ms=resolution_ms,
            min_interval_ms=min_interval_ms,
            chunk_range_ms=chunk_range_ms,
            relative_accuracy=relative_accuracy,
        )
    except KubepulseValueError as error:
        raise payload.fail(f"invalid settings ({error})") from error


def _load_series(store: TimeSeriesStore, payload: _Payload) -> None:
    kind = _KINDS_BY_CODE.get(payload.u8())
    if kind is None:
        raise payload.fail("unknown series kind")
    name = payload.text()
    label_count = payload.u32()
    labels: dict[str, str] = {}
    for _ in range(label_count):
        label = payload.text()
        labels[label] = payload.text()
    if len(labels) != label_count:
        raise payload.fail("a label name appears twice")
    chunks = [payload.blob() for _ in range(payload.u32())]
    head = payload.blob()
    payload.finish()
    try:
        head_timestamps, head_values = decode_chunk(head) if head else ((), ())
        store.restore_series(
            name,
            labels,
            kind,
            chunks=chunks,
            head_timestamps_ms=head_timestamps,
            head_values=head_values,
        )
    except KubepulseValueError as error:
        raise payload.fail(f"series {name!r} cannot be restored ({error})") from error

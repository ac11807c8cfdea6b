"""Compressed, immutable chunks of the samples of one series.

A sealed chunk is one ``bytes`` object, so that the store keeps one small Python object
per series per hour instead of one per sample:

``header | deflate(timestamp stream + value stream) | deflate(summary)``

- The **header** (:data:`CHUNK_HEADER`, 21 bytes, little-endian) holds the format version,
  the value codec, the decimal exponent of scaled values, the sample count, the first
  timestamp, the span to the last timestamp and the length of the summary. Time-range
  checks read only the header.
- **Timestamps** are stored as delta-of-delta integers relative to the first timestamp:
  samples scraped at a regular interval become runs of zeros (Gorilla paper, Pelkonen et
  al., VLDB 2015; Prometheus' XOR chunks do the same with bit packing).
- **Values** use one of three codecs, chosen per chunk:

  - ``SCALED_DELTA`` / ``SCALED_DELTA2``: every value times ``10**exponent`` is an exact
    integer (cgroup counters of microseconds or bytes, a CPU counter in seconds with
    microsecond resolution), checked by decoding each value back bit for bit. The
    integers are stored as first (gauges) or second (counters) differences, divided by
    their greatest common divisor (working-set bytes move in 4 KiB pages, so the GCD
    removes twelve bits per sample).
  - ``FLOAT_XOR``: any other float (NaN, infinities, -0.0, values with many digits) as
    its IEEE-754 bit pattern XOR the previous one, as in Gorilla. Lossless for every
    bit pattern, NaN payloads included.

  Integer streams are zigzag-encoded (small negative numbers get small codes), every
  stream is byte-shuffled (all least significant bytes first, then the next byte, ...)
  and the two streams are compressed together with raw deflate. Shuffling turns the
  high-order bytes, almost always zero, into long runs that deflate removes, while
  slicing keeps the work in C (``bytes[i::8]``).
- The **summary** is :meth:`WindowSummary.to_bytes` of the chunk's samples, deflated on
  its own (default strategy: it has few runs; this saves about a quarter of its bytes,
  and keeping it apart from the samples lets a query read it without inflating them).
  It is empty when every value is NaN, or when the chunk was encoded with
  ``summarize=False``. A query over a long window merges the summaries of the chunks it
  covers fully and decodes only the chunks at its edges.

Encoding is lossless: :func:`decode_chunk` returns exactly the timestamps and the value
bit patterns given to :func:`encode_chunk`.

This module is pure: it takes samples and returns bytes, and back.
"""

from __future__ import annotations

import enum
import math
import struct
import sys
import zlib
from array import array
from collections.abc import Iterator, Sequence
from itertools import accumulate, islice, repeat
from operator import add, floordiv, lt, mul, sub, truediv, xor
from typing import NamedTuple

from kubepulse.errors import KubepulseValueError
from kubepulse.stats.summary import SeriesKind, WindowSummary

__all__ = [
    "CHUNK_FORMAT_VERSION",
    "CHUNK_HEADER",
    "MAX_CHUNK_SAMPLES",
    "ChunkHeader",
    "ValueCodec",
    "chunk_last_ms",
    "chunk_sample_count",
    "chunk_summary",
    "chunk_time_range",
    "decode_chunk",
    "encode_chunk",
    "read_chunk_header",
]

CHUNK_FORMAT_VERSION = 1
# version, value codec, decimal exponent, sample count, first timestamp (ms),
# span to the last timestamp (ms), length of the deflated summary (bytes).
CHUNK_HEADER = struct.Struct("<BBBHqII")
MAX_CHUNK_SAMPLES = 0xFFFF
# The count, first timestamp and span, read straight out of the header by the hot paths.
_COUNT_AND_RANGE = struct.Struct("<HqI")
_COUNT_OFFSET = 3
_MAX_SPAN_MS = 0xFFFFFFFF
# Values times 10**exponent up to 10**9 are tried: nanosecond counters in seconds are
# the finest resolution the kernel reports.
_MAX_DECIMAL_EXPONENT = 9
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1
# Raw deflate (no zlib header or Adler-32: the checkpoint format has its own CRC) with the
# run-length strategy: after shuffling, the redundancy is runs of equal bytes inside a
# plane, and Z_RLE finds exactly those. On exporter-shaped data it compressed 1 % smaller
# than the default strategy at level 9, and about 2.5 times faster (some inputs made
# level 9's lazy match search take a millisecond per chunk).
_DEFLATE_LEVEL = 9
_DEFLATE_WINDOW_BITS = -12
_DEFLATE_MEMORY_LEVEL = 8
_WORD = 8  # every stream is made of 64-bit words
_BIG_ENDIAN_HOST = sys.byteorder == "big"


class ValueCodec(enum.IntEnum):
    """How a chunk stores its values (the header's codec byte)."""

    FLOAT_XOR = 0
    """IEEE-754 bit patterns XOR the previous one: any float, bit for bit."""
    SCALED_DELTA = 1
    """Exact integers ``value * 10**exponent`` as first differences (suits gauges)."""
    SCALED_DELTA2 = 2
    """Exact integers ``value * 10**exponent`` as second differences (suits counters)."""


_KNOWN_CODECS = frozenset(ValueCodec)


class ChunkHeader(NamedTuple):
    """What a chunk's header says, readable without decompressing the samples."""

    version: int
    codec: ValueCodec
    decimal_exponent: int
    sample_count: int
    first_ms: int
    last_ms: int
    summary_length: int


# ---------------------------------------------------------------------- integer streams


def _shuffle(words: array[int]) -> bytes:
    """The bytes of ``words`` grouped by significance: every byte 0, then every byte 1..."""
    if _BIG_ENDIAN_HOST:  # pragma: no cover - the format is little-endian everywhere
        words = array("Q", words)
        words.byteswap()
    raw = words.tobytes()
    return b"".join([raw[plane::_WORD] for plane in range(_WORD)])


def _unshuffle(data: bytes, start: int, word_count: int) -> array[int]:
    """Inverse of :func:`_shuffle` for ``word_count`` words stored at ``data[start:]``."""
    interleaved = bytearray(word_count * _WORD)
    for plane in range(_WORD):
        offset = start + plane * word_count
        interleaved[plane::_WORD] = data[offset : offset + word_count]
    words = array("Q")
    words.frombytes(interleaved)
    if _BIG_ENDIAN_HOST:  # pragma: no cover
        words.byteswap()
    return words


def _zigzag(number: int) -> int:
    """Map an int64 to a uint64 so that small magnitudes of either sign get small codes."""
    return (number << 1) ^ (number >> 63)


def _unzigzag(code: int) -> int:
    return (code >> 1) ^ -(code & 1)


def _differences(numbers: Sequence[int]) -> list[int]:
    """``[x0, x1 - x0, x2 - x1, ...]``."""
    if not numbers:
        return []
    return [numbers[0], *map(sub, islice(numbers, 1, None), numbers)]


def _difference_levels(numbers: Sequence[int], order: int) -> list[list[int]]:
    """``numbers`` and their differences up to ``order``, as stored by :func:`_integer_stream`.

    Level ``k`` keeps its first ``k`` entries from level ``k - 1`` (``x0``, then ``d1``)
    and replaces the rest by their differences: ``[x0, d1, d2 - d1, ...]`` for level 2.
    """
    levels = [list(numbers)]
    for level in range(order):
        previous = levels[-1]
        levels.append(previous[:level] + _differences(previous[level:]))
    return levels


def _integer_stream(differences: list[int], order: int) -> array[int] | None:
    """The ``len(differences) + 2`` words that store one level of :func:`_difference_levels`.

    Layout: ``[divisor, minimum, x0, (d1 when order is 2)]`` as zigzag codes, then
    ``(difference - minimum) // divisor`` for every remaining ``order``-th difference: a
    frame of reference (subtracting the minimum makes every word non-negative in one
    C-level pass; zigzag would take three and compresses only about 1 % better on
    exporter data) and the greatest common divisor of the differences (4 KiB pages,
    whole seconds). ``None`` when a word does not fit in 64 bits (huge values far
    apart): the caller stores floats instead.
    """
    head, rest = differences[:order], differences[order:]
    minimum = min(rest) if rest else 0
    if minimum:
        rest = list(map(sub, rest, repeat(minimum)))
    divisor = math.gcd(*rest) if rest else 0
    if divisor > 1:
        rest = list(map(floordiv, rest, repeat(divisor)))  # exact: a common divisor
    leading = [divisor, minimum, *head]
    if min(leading) < _INT64_MIN or max(leading) > _INT64_MAX:
        return None
    if rest and max(rest) > _UINT64_MAX:
        return None
    words = array("Q", map(_zigzag, leading))
    words.extend(rest)
    return words


def _timestamp_stream(offsets: list[int]) -> array[int]:
    """The words of the timestamp offsets from the first sample, as second differences.

    Samples scraped at an exactly regular interval (the common case) skip the general
    path: their second differences are all zero.
    """
    count = len(offsets)
    if count > 2:
        step = offsets[1]
        if offsets[-1] == step * (count - 1) and offsets == list(range(0, offsets[-1] + 1, step)):
            words = array("Q", bytes(_WORD * (count + 2)))
            words[3] = _zigzag(step)  # [divisor 0, minimum 0, x0 0, d1 step, 0, 0, ...]
            return words
    words_or_none = _integer_stream(_difference_levels(offsets, 2)[2], 2)
    assert words_or_none is not None  # offsets within a chunk span fit in 32 bits
    return words_or_none


def _integers_from_stream(words: array[int], order: int, offset: int = 0) -> list[int]:
    """Inverse of :func:`_integer_stream`, with ``offset`` added to every number.

    The running sums are chained iterators, so the whole decode is a few C-level
    passes and one final list.
    """
    divisor, minimum, *head = map(_unzigzag, words[: 2 + order])
    if not head:  # an empty stream
        return []
    rest: Iterator[int] = islice(words, 2 + order, None)
    if divisor > 1:
        rest = map(mul, rest, repeat(divisor))
    if minimum:
        rest = map(add, rest, repeat(minimum))
    if order == 2 and len(head) == 2:
        # d_k = d_1 + dd_2 + ... + dd_k, then x_k = x_0 + d_1 + ... + d_k.
        rest = accumulate(rest, initial=head[1])
    return list(accumulate(rest, initial=head[0] + offset))


def _timestamps_from_stream(words: array[int], first_ms: int) -> array[int]:
    """Inverse of :func:`_timestamp_stream`, plus ``first_ms``."""
    count = len(words) - 2
    if count > 2 and words.count(0) == len(words) - 1 and words[3]:
        # [0, 0, 0, step, 0, 0, ...]: an exactly regular interval, as most chunks are.
        step = _unzigzag(words[3])
        return array("q", range(first_ms, first_ms + step * count, step))
    return array("q", _integers_from_stream(words, 2, first_ms))


def _stream_cost(words: array[int]) -> int:
    """A cheap proxy of a stream's compressed size: the total significant bits."""
    return sum(map(int.bit_length, words))


# ---------------------------------------------------------------------- values


def _exact_integers(values: Sequence[float]) -> tuple[int, list[int]] | None:
    """``(e, [n...])`` with the smallest ``e`` such that every value is exactly ``n / 10**e``.

    ``None`` when there is no such exponent up to :data:`_MAX_DECIMAL_EXPONENT`, or when
    a value is NaN, infinite or -0.0 (which integers cannot carry). A round trip
    decides, through the very expression :func:`decode_chunk` uses, so the stored
    integers give back the same floats bit for bit.
    """
    if not all(map(math.isfinite, values)):
        return None
    if 0.0 in values and any(math.copysign(1.0, value) < 0.0 for value in values if value == 0.0):
        return None
    # A few values rule most exponents out cheaply before the full check.
    probe = values[:: max(1, len(values) // 16)]
    expected = list(values)
    for exponent in range(_MAX_DECIMAL_EXPONENT + 1):
        try:
            if _unscaled(_scaled(probe, exponent), exponent).tolist() != list(probe):
                continue
            numbers = _scaled(values, exponent)
        except OverflowError:  # a value near the float maximum times 10**exponent
            return None
        # list.__eq__ compares with ==, exact for finite values without -0.0.
        if _unscaled(numbers, exponent).tolist() == expected:
            return exponent, numbers
    return None


def _scaled(values: Sequence[float], exponent: int) -> list[int]:
    return list(map(round, map(mul, values, repeat(float(10**exponent)))))


def _unscaled(numbers: list[int], exponent: int) -> array[float]:
    if exponent == 0:
        return array("d", numbers)
    # int / int is correctly rounded in Python, so this is the float nearest n / 10**e.
    return array("d", map(truediv, numbers, repeat(10**exponent)))


def _float_stream(values: Sequence[float]) -> array[int]:
    # Reinterpret the float64s as uint64 bit patterns (same host byte order both ways).
    bits = array("Q", array("d", values).tobytes())
    words = array("Q", bits[:1])
    words.extend(map(xor, islice(bits, 1, None), bits))
    return words


def _floats_from_stream(words: array[int]) -> array[float]:
    bits = array("Q", accumulate(words, xor))
    values = array("d")
    values.frombytes(bits.tobytes())
    return values


def _encode_values(values: Sequence[float]) -> tuple[ValueCodec, int, array[int]]:
    """Pick a codec for ``values`` and return it, the decimal exponent and the words."""
    exact = _exact_integers(values)
    if exact is not None:
        exponent, numbers = exact
        candidates: list[tuple[int, ValueCodec, array[int]]] = []
        # Counters grow at a roughly steady rate (second differences are small), gauges
        # wander around a level (first differences are small); try both, keep the
        # cheaper.
        levels = _difference_levels(numbers, 2)
        for order, codec in ((1, ValueCodec.SCALED_DELTA), (2, ValueCodec.SCALED_DELTA2)):
            words = _integer_stream(levels[order], order)
            if words is not None:
                candidates.append((_stream_cost(words), codec, words))
        if candidates:
            _, codec, words = min(candidates, key=lambda candidate: candidate[0])
            return codec, exponent, words
    return ValueCodec.FLOAT_XOR, 0, _float_stream(values)


# ---------------------------------------------------------------------- chunks


def encode_chunk(
    kind: SeriesKind,
    timestamps_ms: Sequence[int],
    values: Sequence[float],
    *,
    relative_accuracy: float = 0.01,
    summarize: bool = True,
) -> bytes:
    """Encode samples of one series into a sealed chunk.

    Args:
        kind: gauge or counter: what the summary's statistics are over.
        timestamps_ms: strictly increasing timestamps, milliseconds since the epoch.
        values: one float per timestamp; any float, NaN included.
        relative_accuracy: of the summary's quantile sketch.
        summarize: whether to store a :class:`WindowSummary` (checkpoints of a series'
            head skip it: the head is summarised again once it is sealed).

    Raises:
        KubepulseValueError: no samples, lengths differ, more than
            :data:`MAX_CHUNK_SAMPLES` samples, timestamps not strictly increasing or
            spanning more than 2**32 - 1 ms, or a summary cannot be built (an infinite
            value; the store rejects those before they get here).
    """
    count = len(timestamps_ms)
    if count != len(values):
        raise KubepulseValueError(
            f"got {count} timestamps but {len(values)} values; pass one timestamp per value"
        )
    if not count:
        raise KubepulseValueError("cannot encode an empty chunk; pass at least one sample")
    if count > MAX_CHUNK_SAMPLES:
        raise KubepulseValueError(
            f"a chunk holds at most {MAX_CHUNK_SAMPLES} samples, got {count}; use a shorter "
            "chunk range or a longer minimum sample interval"
        )
    if not all(map(lt, timestamps_ms, islice(timestamps_ms, 1, None))):
        raise KubepulseValueError(
            "chunk timestamps must be strictly increasing; sort samples and drop duplicates"
        )
    first_ms = timestamps_ms[0]
    span_ms = timestamps_ms[-1] - first_ms
    if span_ms > _MAX_SPAN_MS:
        raise KubepulseValueError(
            f"a chunk spans at most {_MAX_SPAN_MS} ms, got {span_ms} ms; use a shorter chunk range"
        )
    offsets = list(map(sub, timestamps_ms, repeat(first_ms)))
    timestamp_words = _timestamp_stream(offsets)
    codec, exponent, value_codes = _encode_values(values)
    compressor = zlib.compressobj(
        _DEFLATE_LEVEL, zlib.DEFLATED, _DEFLATE_WINDOW_BITS, _DEFLATE_MEMORY_LEVEL, zlib.Z_RLE
    )
    body = compressor.compress(_shuffle(timestamp_words))
    body += compressor.compress(_shuffle(value_codes))
    body += compressor.flush()
    summary = b""
    if summarize:
        window = WindowSummary.from_samples(
            kind, timestamps_ms, values, relative_accuracy=relative_accuracy
        )
        if window is not None:
            summary = _deflate_summary(window.to_bytes())
    header = CHUNK_HEADER.pack(
        CHUNK_FORMAT_VERSION, codec, exponent, count, first_ms, span_ms, len(summary)
    )
    return header + body + summary


def read_chunk_header(chunk: bytes) -> ChunkHeader:
    """Parse and check a chunk's header without decompressing anything.

    Raises:
        KubepulseValueError: the bytes are shorter than a header, or the header has an
            unknown version or codec, an exponent out of range, no samples, a span
            that one sample cannot have, or a summary longer than the chunk.
    """
    if len(chunk) < CHUNK_HEADER.size:
        raise _corrupt(f"{len(chunk)} bytes is shorter than the {CHUNK_HEADER.size}-byte header")
    version, codec, exponent, count, first_ms, span_ms, summary_length = CHUNK_HEADER.unpack_from(
        chunk
    )
    if version != CHUNK_FORMAT_VERSION:
        raise _corrupt(f"format version {version} is not {CHUNK_FORMAT_VERSION}, the only known")
    if codec not in _KNOWN_CODECS:
        raise _corrupt(f"unknown value codec {codec}")
    if exponent > _MAX_DECIMAL_EXPONENT or (codec == ValueCodec.FLOAT_XOR and exponent):
        raise _corrupt(f"decimal exponent {exponent} is invalid for codec {codec}")
    if not count or (count == 1) != (span_ms == 0) or span_ms < count - 1:
        raise _corrupt(f"{count} samples cannot span {span_ms} ms")
    if CHUNK_HEADER.size + summary_length > len(chunk):
        raise _corrupt(f"a {summary_length}-byte summary does not fit in {len(chunk)} bytes")
    return ChunkHeader(
        version, ValueCodec(codec), exponent, count, first_ms, first_ms + span_ms, summary_length
    )


def chunk_time_range(chunk: bytes, offset: int = 0) -> tuple[int, int]:
    """The first and last timestamp of the chunk at ``chunk[offset:]``.

    Reads the header only, without checking it: for chunks :func:`read_chunk_header`
    accepted before. ``offset`` lets a series keep its chunks back to back in one
    ``bytes`` object.
    """
    _, first_ms, span_ms = _COUNT_AND_RANGE.unpack_from(chunk, offset + _COUNT_OFFSET)
    return first_ms, first_ms + span_ms


def chunk_last_ms(chunk: bytes, offset: int = 0) -> int:
    """The last timestamp of the chunk at ``chunk[offset:]`` (see :func:`chunk_time_range`)."""
    _, first_ms, span_ms = _COUNT_AND_RANGE.unpack_from(chunk, offset + _COUNT_OFFSET)
    return int(first_ms + span_ms)


def chunk_sample_count(chunk: bytes, offset: int = 0) -> int:
    """How many samples the chunk at ``chunk[offset:]`` holds (see :func:`chunk_time_range`)."""
    return int(_COUNT_AND_RANGE.unpack_from(chunk, offset + _COUNT_OFFSET)[0])


def decode_chunk(chunk: bytes) -> tuple[array[int], array[float]]:
    """The timestamps (``array('q')``) and values (``array('d')``) stored in ``chunk``.

    Raises:
        KubepulseValueError: the chunk is corrupt (bad header, deflate stream or length).
    """
    header = read_chunk_header(chunk)
    count = header.sample_count
    body_end = len(chunk) - header.summary_length
    try:
        raw = zlib.decompress(chunk[CHUNK_HEADER.size : body_end], _DEFLATE_WINDOW_BITS)
    except zlib.error as error:
        raise _corrupt(f"the compressed samples do not inflate ({error})") from error
    timestamp_words = count + 2
    value_words = count if header.codec is ValueCodec.FLOAT_XOR else count + 2
    if len(raw) != (timestamp_words + value_words) * _WORD:
        raise _corrupt(
            f"{len(raw)} bytes of samples, expected {(timestamp_words + value_words) * _WORD}"
        )
    timestamps = _timestamps_from_stream(_unshuffle(raw, 0, timestamp_words), header.first_ms)
    value_stream = _unshuffle(raw, timestamp_words * _WORD, value_words)
    if header.codec is ValueCodec.FLOAT_XOR:
        values = _floats_from_stream(value_stream)
    else:
        order = 2 if header.codec is ValueCodec.SCALED_DELTA2 else 1
        values = _unscaled(_integers_from_stream(value_stream, order), header.decimal_exponent)
    if timestamps[-1] != header.last_ms:
        raise _corrupt("the decoded timestamps do not end where the header says")
    return timestamps, values


def chunk_summary(chunk: bytes) -> WindowSummary | None:
    """The summary stored in ``chunk``; ``None`` if it has none (all NaN, or not summarised).

    Raises:
        KubepulseValueError: the chunk or its summary is corrupt.
    """
    header = read_chunk_header(chunk)
    if not header.summary_length:
        return None
    compressed = chunk[len(chunk) - header.summary_length :]
    try:
        summary_bytes = zlib.decompress(compressed, _DEFLATE_WINDOW_BITS)
    except zlib.error as error:
        raise _corrupt(f"the compressed summary does not inflate ({error})") from error
    return WindowSummary.from_bytes(summary_bytes)


def _deflate_summary(summary_bytes: bytes) -> bytes:
    compressor = zlib.compressobj(_DEFLATE_LEVEL, zlib.DEFLATED, _DEFLATE_WINDOW_BITS)
    return compressor.compress(summary_bytes) + compressor.flush()


def _corrupt(problem: str) -> KubepulseValueError:
    return KubepulseValueError(
        f"corrupt chunk: {problem}; chunks come from encode_chunk() of this kubepulse "
        "version, so a damaged one means a damaged checkpoint: discard it"
    )

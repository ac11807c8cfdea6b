"""A mergeable quantile sketch with a relative-error guarantee (DDSketch).

A :class:`DDSketch` counts values in logarithmic buckets: with
``gamma = (1 + alpha) / (1 - alpha)``, bucket ``i`` holds the magnitudes in
``(gamma^(i-1), gamma^i]`` and answers for them with ``2 * gamma^i / (gamma + 1)``, which
is within relative error ``alpha`` of every value in the bucket (Masson, Rim and Lee,
"DDSketch: a fast and fully-mergeable quantile sketch with relative-error guarantees",
VLDB 2019). Merging two sketches adds their bucket counts, so a sketch of a day is
exactly the merge of the sketches of its hours.

Storage. Positive and negative values each have a store: one Python ``int`` holding
fixed-width lanes, lane ``k`` counting bucket ``offset + k``. Merging stores is then a
shift and an add of two integers, done in C, several times faster than adding dicts
or lists element by element in Python; that matters because the adapter merges 24
hourly sketches per series for thousands of series per query. Lanes are 32 bits wide
while the sketch holds fewer than 2**32 values (no lane can overflow then) and are
widened to 64 bits once it holds more; the width is a function of the count alone.
Memory grows with the logarithmic range of the values, ``ln(max / min) / ln(gamma)``
lanes, about 115 lanes (460 bytes) per decade at ``alpha = 0.01``. The serialized form
(:meth:`DDSketch.to_bytes`) keeps only the non-empty buckets, usually two bytes each.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import accumulate, repeat
from operator import lshift, mul

from kubepulse.errors import KubepulseValueError

__all__ = [
    "MIN_RELATIVE_ACCURACY",
    "DDSketch",
]

MIN_RELATIVE_ACCURACY = 1e-4
"""The smallest accepted relative accuracy.

Buckets per decade grow as ``1.15 / alpha``: below 0.01% a sketch of an hour of samples
takes more memory than the samples themselves, and as ``alpha`` nears the float epsilon
the bucket width ``ln(gamma)`` rounds to zero.
"""

# Values whose magnitude is below the smallest normal float go to the zero bucket: below
# it floats lose precision, so no relative-error bound could be kept for them anyway.
_ZERO_THRESHOLD = sys.float_info.min

# Bucket k of a store lives at bit ``k << lane_shift``: 5 for 32-bit lanes, 6 for 64-bit.
_NARROW_LANE_SHIFT = 5
_WIDE_LANE_SHIFT = 6
_NARROW_COUNT_LIMIT = 1 << 32  # below it no 32-bit lane can overflow
_COUNT_LIMIT = 1 << 64  # the most a 64-bit lane, and so a sketch, can count
_LANE_TYPECODES = {_NARROW_LANE_SHIFT: "I", _WIDE_LANE_SHIFT: "Q"}
_BYTE_ORDER = sys.byteorder

_POSITIVE = 0  # index of the positive store in the per-store lists
_NEGATIVE = 1

_FORMAT_VERSION = 1
_HEADER = struct.Struct("<Bd")
_STATS = struct.Struct("<ddd")

if array("I").itemsize != 4 or array("Q").itemsize != 8:  # pragma: no cover
    raise ImportError("kubepulse.stats.sketch needs 4-byte 'I' and 8-byte 'Q' array types")


def _lane_shift_for(count: int) -> int:
    """The lane width (as a bit shift) of a sketch holding ``count`` values."""
    return _NARROW_LANE_SHIFT if count < _NARROW_COUNT_LIMIT else _WIDE_LANE_SHIFT


def _unpack_lanes(packed: int, lane_shift: int) -> array[int]:
    """The bucket counts held in ``packed``, lowest bucket first."""
    lane_bits = 1 << lane_shift
    lane_count = (packed.bit_length() + lane_bits - 1) >> lane_shift
    return array(
        _LANE_TYPECODES[lane_shift], packed.to_bytes(lane_count * lane_bits // 8, _BYTE_ORDER)
    )


def _widen(packed: int) -> int:
    """Repack 32-bit lanes as 64-bit lanes."""
    wide = array("Q", _unpack_lanes(packed, _NARROW_LANE_SHIFT))
    return int.from_bytes(wide.tobytes(), _BYTE_ORDER)


def _pack_counts(counts: Counter[int], lane_shift: int) -> tuple[int, int]:
    """Pack ``{bucket index: count}`` into ``(lowest index, packed lanes)``."""
    lowest = min(counts)
    lanes = array(_LANE_TYPECODES[lane_shift], [0]) * (max(counts) - lowest + 1)
    for index, count in counts.items():
        lanes[index - lowest] = count
    return lowest, int.from_bytes(lanes.tobytes(), _BYTE_ORDER)


def _sum_stores(offsets: list[int], packs: list[int], lane_shift: int) -> tuple[int, int]:
    """Add packed stores whose lowest buckets are ``offsets``: ``(lowest index, sum)``."""
    lowest = min(offsets)
    # Lane k of a store starting at bucket ``offset`` moves to lane ``offset - lowest + k``.
    shifts = [(offset - lowest) << lane_shift for offset in offsets]
    return lowest, sum(map(lshift, packs, shifts))


def _checked_sum(values: Sequence[float]) -> float:
    """The correctly rounded sum of finite ``values``; an infinity if it overflows a float."""
    try:
        return math.fsum(values)
    except OverflowError:
        # fsum refuses an intermediate overflow; the plain sum says which infinity it is.
        return sum(values)


def _write_varint(out: bytearray, value: int) -> None:
    """Append ``value`` (>= 0) as an unsigned LEB128 varint."""
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _write_signed_varint(out: bytearray, value: int) -> None:
    """Append ``value`` as a zigzag varint: 0, -1, 1, -2, ... become 0, 1, 2, 3, ..."""
    _write_varint(out, value << 1 if value >= 0 else ((-value) << 1) - 1)


class _Reader:
    """A cursor over serialized bytes; every problem becomes a :class:`KubepulseValueError`."""

    __slots__ = ("data", "position", "what")

    def __init__(self, data: bytes, what: str, position: int = 0) -> None:
        self.data = data
        self.position = position
        self.what = what

    def corrupt(self, problem: str) -> KubepulseValueError:
        """An error saying the bytes are damaged, where, and what to do."""
        return KubepulseValueError(
            f"corrupt {self.what} bytes: {problem} (at byte {self.position} of "
            f"{len(self.data)}); pass bytes produced by to_bytes() of this kubepulse "
            "version, or discard the damaged checkpoint"
        )

    def varint(self) -> int:
        """Read an unsigned LEB128 varint."""
        data = self.data
        position = self.position
        result = 0
        shift = 0
        while True:
            if position >= len(data):
                raise self.corrupt("truncated varint")
            byte = data[position]
            position += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.position = position
                return result
            shift += 7
            if shift > 63:  # 10 bytes hold any 64-bit number; a longer varint is garbage
                raise self.corrupt("varint longer than 10 bytes")

    def signed_varint(self) -> int:
        """Read a zigzag varint."""
        zigzag = self.varint()
        return (zigzag >> 1) ^ -(zigzag & 1)

    def unpack(self, layout: struct.Struct) -> tuple[float, ...]:
        """Read a fixed-size struct."""
        end = self.position + layout.size
        if end > len(self.data):
            raise self.corrupt(f"truncated: {layout.size} bytes needed")
        values = layout.unpack_from(self.data, self.position)
        self.position = end
        return tuple(values)


class DDSketch:
    """A mergeable sketch of a distribution of floats answering quantiles within relative error.

    Guarantee: for ``n`` added values, ``quantile(q)`` is within relative error
    ``relative_accuracy`` (``alpha``; up to floating-point rounding, about 1e-15) of the
    lower-rank quantile ``sorted(values)[floor(q * (n - 1))]``, and it is clamped into
    ``[min, max]``, so ``q = 0`` and ``q = 1`` return the exact minimum and maximum.
    Values whose magnitude is below the smallest normal float (about 2.2e-308) are
    counted as zero. The guarantee survives any sequence of merges.

    Count, sum, minimum and maximum are tracked exactly besides the buckets (the sum is
    exact up to floating-point rounding).

    Args:
        relative_accuracy: the relative error bound ``alpha``, from
            :data:`MIN_RELATIVE_ACCURACY` (0.0001) up to but excluding 1. Smaller is more
            accurate and uses more buckets (about ``1.15 / alpha`` per decade of values).
    """

    __slots__ = (
        "_count",
        "_cumulative",
        "_inverse_log_gamma",
        "_lane_shift",
        "_log_gamma",
        "_max",
        "_min",
        "_offsets",
        "_packs",
        "_relative_accuracy",
        "_representative_log_factor",
        "_store_counts",
        "_sum",
        "_zero_count",
    )

    def __init__(self, relative_accuracy: float = 0.01) -> None:
        if not MIN_RELATIVE_ACCURACY <= relative_accuracy < 1.0:  # also rejects NaN
            raise KubepulseValueError(
                f"relative_accuracy must be at least {MIN_RELATIVE_ACCURACY} and below 1, got "
                f"{relative_accuracy!r}; use e.g. 0.01 for percentiles within 1% of the exact "
                "value"
            )
        gamma = (1.0 + relative_accuracy) / (1.0 - relative_accuracy)
        self._relative_accuracy = float(relative_accuracy)
        self._log_gamma = math.log(gamma)
        self._inverse_log_gamma = 1.0 / self._log_gamma
        # The representative 2 * gamma^i / (gamma + 1) is computed in log space,
        # exp(i * ln(gamma) + ln(2 / (gamma + 1))), so that it does not overflow early.
        self._representative_log_factor = math.log(2.0 / (gamma + 1.0))
        self._count = 0
        self._zero_count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf
        self._lane_shift = _NARROW_LANE_SHIFT
        # Per store (_POSITIVE, _NEGATIVE): lowest bucket index, packed lanes (0 when
        # empty), how many values, and the cumulative counts quantile() last built.
        self._offsets = [0, 0]
        self._packs = [0, 0]
        self._store_counts = [0, 0]
        self._cumulative: list[list[int] | None] = [None, None]

    @classmethod
    def from_values(cls, values: Iterable[float], relative_accuracy: float = 0.01) -> DDSketch:
        """A sketch of ``values`` (NaN skipped), built in one pass.

        Raises:
            KubepulseValueError: a value is infinite, or ``relative_accuracy`` is invalid.
        """
        sketch = cls(relative_accuracy)
        sketch.extend(values)
        return sketch

    # ------------------------------------------------------------------ adding

    def _bucket_index(self, magnitude: float) -> int:
        return math.ceil(math.log(magnitude) * self._inverse_log_gamma)

    def _reserve(self, added: int) -> None:
        """Account for ``added`` more values before they go in, widening lanes if needed."""
        count = self._count + added
        if count >= _COUNT_LIMIT:
            raise KubepulseValueError(
                "a DDSketch holds fewer than 2**64 values; split the data into several sketches"
            )
        if count >= _NARROW_COUNT_LIMIT and self._lane_shift == _NARROW_LANE_SHIFT:
            self._packs = [_widen(packed) for packed in self._packs]
            self._lane_shift = _WIDE_LANE_SHIFT
        self._count = count

    def _add_to_store(self, store: int, offset: int, packed: int, values: int) -> None:
        """Add ``packed`` lanes, lowest at bucket ``offset``, holding ``values`` values to a store.

        The lanes must already have this sketch's width (call :meth:`_reserve` first).
        """
        own = self._packs[store]
        own_offset = self._offsets[store]
        if not own:
            self._offsets[store] = offset
            self._packs[store] = packed
        elif offset >= own_offset:
            self._packs[store] = own + (packed << ((offset - own_offset) << self._lane_shift))
        else:
            self._packs[store] = (own << ((own_offset - offset) << self._lane_shift)) + packed
            self._offsets[store] = offset
        self._store_counts[store] += values
        self._cumulative[store] = None

    def add(self, value: float, count: int = 1) -> None:
        """Count ``value`` ``count`` times.

        NaN is ignored (it is Prometheus' staleness marker and has no rank); a ``count``
        of 0 adds nothing.

        Raises:
            KubepulseValueError: ``value`` is infinite (no bucket can hold it within a
                relative error: drop or clamp such samples first), or ``count`` is negative.
        """
        if count == 0 or math.isnan(value):
            return
        if count < 0:
            raise KubepulseValueError(
                f"count must be a non-negative integer, got {count!r}; pass how many times "
                "the value was observed"
            )
        if math.isinf(value):
            raise KubepulseValueError(
                f"cannot add {value!r} to a DDSketch: only finite values have a bucket; "
                "drop or clamp infinite samples before adding them"
            )
        self._reserve(count)
        self._sum += value * count
        self._min = min(self._min, value)
        self._max = max(self._max, value)
        if value >= _ZERO_THRESHOLD:
            self._add_to_store(_POSITIVE, self._bucket_index(value), count, count)
        elif value <= -_ZERO_THRESHOLD:
            self._add_to_store(_NEGATIVE, self._bucket_index(-value), count, count)
        else:
            self._zero_count += count

    def extend(self, values: Iterable[float]) -> None:
        """Add every value of ``values`` once (NaN skipped); faster than repeated :meth:`add`.

        Raises:
            KubepulseValueError: a value is infinite; nothing is added then.
        """
        finite: Sequence[float] = values if isinstance(values, (list, tuple)) else list(values)
        if any(map(math.isnan, finite)):
            finite = [value for value in finite if not math.isnan(value)]
        if finite:
            self._add_finite(finite, min(finite), max(finite), _checked_sum(finite))

    def _add_finite(
        self, values: Sequence[float], smallest: float, largest: float, total: float
    ) -> None:
        """Bulk add of non-NaN ``values`` whose min, max and sum the caller computed.

        Bucket indices are computed with chained ``map`` calls and counted with
        ``Counter``, which keeps the per-value work in C: this is the hot path of
        building a window summary per series per scrape.
        """
        if math.isinf(smallest) or math.isinf(largest):
            raise KubepulseValueError(
                "cannot add an infinite value to a DDSketch: only finite values have a "
                "bucket; drop or clamp infinite samples before adding them"
            )
        added = len(values)
        self._reserve(added)
        if smallest >= _ZERO_THRESHOLD:
            stores: tuple[tuple[int, Sequence[float]], ...] = ((_POSITIVE, values),)
            stored = added
        else:
            positives = [value for value in values if value >= _ZERO_THRESHOLD]
            negatives = [-value for value in values if value <= -_ZERO_THRESHOLD]
            stores = ((_POSITIVE, positives), (_NEGATIVE, negatives))
            stored = len(positives) + len(negatives)
        log = math.log
        ceil = math.ceil
        inverse_log_gamma = self._inverse_log_gamma
        for store, magnitudes in stores:
            if magnitudes:
                counts = Counter(
                    map(ceil, map(mul, map(log, magnitudes), repeat(inverse_log_gamma)))
                )
                offset, packed = _pack_counts(counts, self._lane_shift)
                self._add_to_store(store, offset, packed, len(magnitudes))
        self._zero_count += added - stored
        self._sum += total
        self._min = min(self._min, smallest)
        self._max = max(self._max, largest)

    def merge(self, other: DDSketch) -> None:
        """Add every value counted by ``other`` to this sketch, in place.

        Raises:
            KubepulseValueError: the sketches use different relative accuracies (their
                buckets do not line up; build both with the same accuracy).
        """
        self.merge_many((other,))

    def merge_many(self, others: Iterable[DDSketch]) -> None:
        """Add every value counted by each of ``others`` to this sketch, in place.

        Same result as calling :meth:`merge` for each (the sum is added in the same
        order), but faster: the stores are aligned once and summed as integers in one go.

        Raises:
            KubepulseValueError: a sketch uses a different relative accuracy (build all
                with the same accuracy); this sketch is then left unchanged.
        """
        relative_accuracy = self._relative_accuracy
        sources: list[DDSketch] = []
        for other in others:
            if other._relative_accuracy != relative_accuracy:
                raise KubepulseValueError(
                    "cannot merge DDSketches with different relative accuracies "
                    f"({relative_accuracy!r} and {other._relative_accuracy!r}): their "
                    "buckets do not line up; build both with the same relative_accuracy"
                )
            if other._count:
                sources.append(other)
        if not sources:
            return
        total = self._sum
        for other in sources:  # in order, so that the sum rounds as sequential merges do
            total += other._sum
        self._reserve(sum([other._count for other in sources]))  # may widen own lanes
        lane_shift = self._lane_shift
        for store in (_POSITIVE, _NEGATIVE):
            holders = [other for other in sources if other._packs[store]]
            if not holders:
                continue
            offsets = [other._offsets[store] for other in holders]
            packs = [
                other._packs[store]
                if other._lane_shift == lane_shift
                else _widen(other._packs[store])
                for other in holders
            ]
            if self._packs[store]:
                offsets.append(self._offsets[store])
                packs.append(self._packs[store])
            self._offsets[store], self._packs[store] = _sum_stores(offsets, packs, lane_shift)
            self._store_counts[store] += sum([other._store_counts[store] for other in holders])
            self._cumulative[store] = None
        self._zero_count += sum([other._zero_count for other in sources])
        self._sum = total
        self._min = min(self._min, *[other._min for other in sources])
        self._max = max(self._max, *[other._max for other in sources])

    def copy(self) -> DDSketch:
        """An independent sketch with the same contents."""
        clone = DDSketch.__new__(DDSketch)
        clone._relative_accuracy = self._relative_accuracy
        clone._log_gamma = self._log_gamma
        clone._inverse_log_gamma = self._inverse_log_gamma
        clone._representative_log_factor = self._representative_log_factor
        clone._count = self._count
        clone._zero_count = self._zero_count
        clone._sum = self._sum
        clone._min = self._min
        clone._max = self._max
        clone._lane_shift = self._lane_shift
        # The packed stores are immutable ints and cumulative lists are replaced, never
        # changed in place, so only the per-store lists themselves need copying.
        clone._offsets = list(self._offsets)
        clone._packs = list(self._packs)
        clone._store_counts = list(self._store_counts)
        clone._cumulative = list(self._cumulative)
        return clone

    # ------------------------------------------------------------------ reading

    @property
    def relative_accuracy(self) -> float:
        """The relative error bound ``alpha`` of :meth:`quantile`."""
        return self._relative_accuracy

    @property
    def count(self) -> int:
        """How many values were added (NaN not included)."""
        return self._count

    @property
    def sum(self) -> float:
        """The sum of the added values (0.0 when empty)."""
        return self._sum

    @property
    def min(self) -> float:
        """The exact smallest added value; NaN when the sketch is empty."""
        return self._min if self._count else math.nan

    @property
    def max(self) -> float:
        """The exact largest added value; NaN when the sketch is empty."""
        return self._max if self._count else math.nan

    @property
    def is_empty(self) -> bool:
        """Whether no value was added."""
        return not self._count

    def _representative(self, index: int) -> float:
        try:
            return math.exp(index * self._log_gamma + self._representative_log_factor)
        except OverflowError:
            # Only next to the largest float; the clamp to [min, max] then returns max.
            return math.inf

    def _cumulative_counts(self, store: int) -> list[int]:
        """Running totals of a store's lanes, from the lowest magnitude up; cached."""
        cumulative = self._cumulative[store]
        if cumulative is None:
            lanes = _unpack_lanes(self._packs[store], self._lane_shift)
            cumulative = list(accumulate(lanes))
            self._cumulative[store] = cumulative
        return cumulative

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile of the added values, or ``None`` when the sketch is empty.

        The answer is within relative error :attr:`relative_accuracy` of the exact
        lower-rank quantile ``sorted(values)[floor(q * (count - 1))]`` and lies in
        ``[min, max]``; ``q = 0`` and ``q = 1`` give the exact minimum and maximum.

        Raises:
            KubepulseValueError: ``q`` is not between 0 and 1 (write p99 as 0.99).
        """
        if not 0.0 <= q <= 1.0:
            raise KubepulseValueError(
                f"quantile must be between 0 and 1 inclusive, got {q!r}; "
                "write the 99th percentile as 0.99"
            )
        count = self._count
        if not count:
            return None
        rank = math.floor(q * (count - 1))
        if rank == 0:
            return self._min
        if rank == count - 1:
            return self._max
        negative_count = self._store_counts[_NEGATIVE]
        if rank < negative_count:
            # Values in ascending order start with the largest negative magnitudes, so
            # the rank counts down from the top of the negative store.
            cumulative = self._cumulative_counts(_NEGATIVE)
            lane = bisect_right(cumulative, negative_count - 1 - rank)
            value = -self._representative(self._offsets[_NEGATIVE] + lane)
        elif rank < negative_count + self._zero_count:
            value = 0.0
        else:
            cumulative = self._cumulative_counts(_POSITIVE)
            lane = bisect_right(cumulative, rank - negative_count - self._zero_count)
            value = self._representative(self._offsets[_POSITIVE] + lane)
        return min(max(value, self._min), self._max)

    def bucket_count(self) -> int:
        """How many buckets are non-empty, the zero bucket included (drives the byte size)."""
        buckets = 1 if self._zero_count else 0
        for packed in self._packs:
            if packed:
                lanes = _unpack_lanes(packed, self._lane_shift)
                buckets += len(lanes) - lanes.count(0)
        return buckets

    # ------------------------------------------------------------------ equality

    def _state(self) -> tuple[object, ...]:
        # An empty store's offset is meaningless, so it does not take part.
        offsets = [
            offset if packed else 0
            for offset, packed in zip(self._offsets, self._packs, strict=True)
        ]
        return (
            self._relative_accuracy,
            self._count,
            self._zero_count,
            self._sum,
            self._min,
            self._max,
            self._packs,
            offsets,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DDSketch):
            return NotImplemented
        return self._state() == other._state()

    __hash__ = None  # type: ignore[assignment]  # mutable, so not hashable

    def __repr__(self) -> str:
        return (
            f"DDSketch(relative_accuracy={self._relative_accuracy!r}, count={self._count}, "
            f"min={self.min!r}, max={self.max!r})"
        )

    # ------------------------------------------------------------------ bytes

    def to_bytes(self) -> bytes:
        """A compact binary form, read back by :meth:`from_bytes`.

        Layout (version 1, little-endian): a version byte and ``alpha`` as float64; the
        count as a varint; when not empty, sum, min and max as float64, then the positive
        and the negative store, each as the number of non-empty buckets (varint) followed,
        for the first bucket, by its index (zigzag varint) and count, and for each further
        bucket by the index delta from the previous one and the count (varints). The zero
        bucket holds the count minus the stores' totals. A bucket usually costs 2 bytes.
        """
        out = bytearray(_HEADER.pack(_FORMAT_VERSION, self._relative_accuracy))
        _write_varint(out, self._count)
        if not self._count:
            return bytes(out)
        out += _STATS.pack(self._sum, self._min, self._max)
        for store in (_POSITIVE, _NEGATIVE):
            packed = self._packs[store]
            if not packed:
                out.append(0)
                continue
            lanes = _unpack_lanes(packed, self._lane_shift)
            _write_varint(out, len(lanes) - lanes.count(0))
            previous = -1
            for lane, lane_count in enumerate(lanes):
                if not lane_count:
                    continue
                if previous < 0:
                    _write_signed_varint(out, self._offsets[store] + lane)
                else:
                    _write_varint(out, lane - previous)
                _write_varint(out, lane_count)
                previous = lane
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> DDSketch:
        """Rebuild a sketch written by :meth:`to_bytes`.

        Raises:
            KubepulseValueError: the bytes are truncated, have trailing bytes, an unknown
                version, or contents that no real sketch can have.
        """
        reader = _Reader(bytes(data), "DDSketch")
        sketch = cls._read(reader)
        if reader.position != len(reader.data):
            raise reader.corrupt(f"{len(reader.data) - reader.position} unexpected trailing bytes")
        return sketch

    @classmethod
    def _read(cls, reader: _Reader) -> DDSketch:
        """Read one sketch at ``reader``'s position, leaving the reader after it."""
        version, relative_accuracy = reader.unpack(_HEADER)
        if version != _FORMAT_VERSION:
            raise reader.corrupt(
                f"format version {int(version)} is not {_FORMAT_VERSION}, the only one known"
            )
        if not MIN_RELATIVE_ACCURACY <= relative_accuracy < 1.0:
            raise reader.corrupt(
                f"relative accuracy {relative_accuracy!r} is outside [{MIN_RELATIVE_ACCURACY}, 1)"
            )
        sketch = cls(relative_accuracy)
        count = reader.varint()
        if count >= _COUNT_LIMIT:
            raise reader.corrupt(f"count {count} is 2**64 or more")
        if not count:
            return sketch
        total, smallest, largest = reader.unpack(_STATS)
        if not (math.isfinite(smallest) and math.isfinite(largest) and smallest <= largest):
            raise reader.corrupt(f"min {smallest!r} and max {largest!r} are not a finite range")
        positive_counts = sketch._read_store(reader, smallest, largest)
        negative_counts = sketch._read_store(reader, -largest, -smallest)
        stored = [sum(positive_counts.values()), sum(negative_counts.values())]
        if sum(stored) > count:
            raise reader.corrupt(f"the buckets hold more values than the count {count}")
        sketch._count = count
        sketch._lane_shift = _lane_shift_for(count)
        for store, counts in ((_POSITIVE, positive_counts), (_NEGATIVE, negative_counts)):
            if counts:
                sketch._offsets[store], sketch._packs[store] = _pack_counts(
                    counts, sketch._lane_shift
                )
        sketch._store_counts = stored
        sketch._zero_count = count - sum(stored)
        sketch._sum = total
        sketch._min = smallest
        sketch._max = largest
        return sketch

    def _read_store(self, reader: _Reader, smallest: float, largest: float) -> Counter[int]:
        """Read one store whose values, as magnitudes, lie in ``[smallest, largest]``.

        Each bucket index must be one a magnitude in that range maps to: this catches
        corruption and keeps a corrupt delta from allocating a huge integer.
        """
        counts: Counter[int] = Counter()
        bucket_number = reader.varint()
        if not bucket_number:
            return counts
        if largest < _ZERO_THRESHOLD:
            raise reader.corrupt("buckets of a sign that no value between min and max has")
        lowest_index = self._bucket_index(max(smallest, _ZERO_THRESHOLD))
        highest_index = self._bucket_index(largest)
        if bucket_number > highest_index - lowest_index + 1:
            raise reader.corrupt(f"{bucket_number} buckets cannot fit between min and max")
        index = reader.signed_varint()
        for position in range(bucket_number):
            if position:
                delta = reader.varint()
                if delta < 1:
                    raise reader.corrupt("bucket indices are not increasing")
                index += delta
            if not lowest_index <= index <= highest_index:
                raise reader.corrupt(
                    f"bucket index {index} is outside [{lowest_index}, {highest_index}], "
                    "the buckets of values between min and max"
                )
            bucket_count = reader.varint()
            if not bucket_count:
                raise reader.corrupt("empty bucket written out")
            counts[index] = bucket_count
        return counts

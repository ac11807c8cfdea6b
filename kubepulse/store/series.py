"""One time series: a raw head of recent samples and compressed hourly chunks behind it.

Samples arrive in time order. They collect in the *head*, two flat arrays (timestamps and
values), until a sample falls past the end of the head's chunk window (one
``chunk_range_ms``, an hour by default, aligned to multiples of it since the epoch); the
head is then *sealed* into an immutable :mod:`~kubepulse.store.chunk` that also carries
the :class:`~kubepulse.stats.summary.WindowSummary` of its samples. Aligned windows mean
every series seals at the same boundaries, a chunk never straddles two hours, and a
query over a long window merges one summary per hour it covers fully and decodes only
the chunks at its two edges.

What is accepted (:class:`AppendOutcome`), following Prometheus where it has a rule:

- a timestamp older than the series' newest sample is rejected (out of order);
- the same timestamp again is ignored when the value is the same (a retried scrape) and
  rejected when it differs (Prometheus' "duplicate sample for timestamp");
- a sample less than ``min_interval_ms`` after the newest one is dropped. The store keeps
  at most one sample per ``min_interval_ms`` (by default 80 % of the 15 s resolution,
  which leaves room for scrape jitter), first write wins, so scraping faster than the
  resolution cannot grow memory: a series holds at most ``retention / min_interval``
  samples. Dropping the later sample keeps counters exact (their rate over the longer
  interval is the same increase) and bounds gauges to the resolution the store
  promises; spikes shorter than that are the exporter histograms' job;
- infinite values are rejected: no quantile sketch can place them. NaN is kept: it is
  Prometheus' staleness marker, and summaries skip it.

This module is pure.
"""

from __future__ import annotations

import enum
import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise, repeat
from math import isnan
from operator import add, attrgetter, sub
from typing import NamedTuple

from kubepulse.errors import KubepulseValueError
from kubepulse.stats.summary import SeriesKind, WindowSummary
from kubepulse.store.chunk import (
    MAX_CHUNK_SAMPLES,
    chunk_last_ms,
    chunk_sample_count,
    chunk_summary,
    chunk_time_range,
    decode_chunk,
    encode_chunk,
    read_chunk_header,
)

__all__ = [
    "AppendOutcome",
    "Series",
    "SeriesSettings",
    "WindowIncrease",
    "fresh_range",
    "label_pairs_from",
    "last_timestamps",
]

# Before the first sample: older than any timestamp, so nothing is out of order and the
# minimum-interval check passes.
_NO_SAMPLE_MS = -(1 << 62)
_INFINITIES = (math.inf, -math.inf)
# Head timestamps are 32-bit signed offsets from the start of the chunk window.
_MAX_CHUNK_RANGE_MS = (1 << 31) - 1


class AppendOutcome(enum.IntEnum):
    """What :meth:`Series.append` did with a sample."""

    APPENDED = 0
    """Stored."""
    OUT_OF_ORDER = 1
    """Older than the series' newest sample: rejected."""
    DUPLICATE = 2
    """Same timestamp and value as the newest sample: ignored (a retried scrape)."""
    CONFLICTING_DUPLICATE = 3
    """Same timestamp as the newest sample with a different value: rejected."""
    TOO_FREQUENT = 4
    """Less than ``min_interval_ms`` after the newest sample: dropped (downsampling)."""
    INFINITE = 5
    """An infinite value: rejected."""


@dataclass(frozen=True, slots=True)
class SeriesSettings:
    """How every series of one store keeps its samples (shared, one object per store).

    Attributes:
        chunk_range_ms: width of the aligned window one chunk covers, in milliseconds
            (default one hour): the granularity of summaries and of retention.
        min_interval_ms: a sample closer than this to the series' newest sample is
            dropped; bounds memory to one sample per interval.
        relative_accuracy: relative error of the quantile sketches in chunk summaries.
    """

    chunk_range_ms: int = 3_600_000
    min_interval_ms: int = 12_000
    relative_accuracy: float = 0.01

    def __post_init__(self) -> None:
        if self.chunk_range_ms <= 0 or self.min_interval_ms <= 0:
            raise KubepulseValueError(
                f"chunk_range_ms ({self.chunk_range_ms}) and min_interval_ms "
                f"({self.min_interval_ms}) must be positive milliseconds"
            )
        if self.chunk_range_ms // self.min_interval_ms >= MAX_CHUNK_SAMPLES:
            raise KubepulseValueError(
                f"a chunk range of {self.chunk_range_ms} ms at one sample per "
                f"{self.min_interval_ms} ms exceeds {MAX_CHUNK_SAMPLES} samples per chunk; "
                "use a shorter chunk range or a longer minimum interval"
            )
        if self.chunk_range_ms > _MAX_CHUNK_RANGE_MS:
            raise KubepulseValueError(
                f"chunk_range_ms must be below 2**31 ms (24 days), got {self.chunk_range_ms}; "
                "use a chunk range of an hour or so"
            )
        if not 0.0 < self.relative_accuracy < 1.0:
            raise KubepulseValueError(
                f"relative_accuracy must be strictly between 0 and 1, got "
                f"{self.relative_accuracy!r}; use e.g. 0.01 for percentiles within 1 %"
            )


class _PackedChunks:
    """A series' sealed chunks back to back in one ``bytes`` object, oldest first.

    One object per series instead of one per chunk: a ``bytes`` object costs 33 bytes
    of header plus a list slot, which at one chunk per hour is about 0.17 bytes per
    sample, a tenth of what the samples themselves take. Sealing a chunk copies the
    series' sealed bytes once an hour (about 10 KiB), which is cheap.
    """

    __slots__ = ("_data", "_ends")

    def __init__(self) -> None:
        self._data = b""
        self._ends = array("I")  # end offset of each chunk in _data

    def __len__(self) -> int:
        return len(self._ends)

    def offset(self, index: int) -> int:
        """Where chunk ``index`` (non-negative) starts in the packed bytes."""
        return self._ends[index - 1] if index else 0

    def chunk(self, index: int) -> bytes:
        """Chunk ``index`` (negative counts from the end) as its own ``bytes``."""
        if index < 0:
            index += len(self._ends)
        return self._data[self.offset(index) : self._ends[index]]

    def __iter__(self) -> Iterator[bytes]:
        return map(self.chunk, range(len(self._ends)))

    def first_ms(self, index: int) -> int:
        return chunk_time_range(self._data, self.offset(index))[0]

    def last_ms(self, index: int) -> int:
        return chunk_last_ms(self._data, self.offset(index))

    def sample_count(self, index: int) -> int:
        return chunk_sample_count(self._data, self.offset(index))

    def append(self, chunk: bytes) -> None:
        self._data += chunk
        self._ends.append(len(self._data))

    def replace(self, chunks: Sequence[bytes]) -> None:
        self._data = b"".join(chunks)
        self._ends = array("I", accumulate(map(len, chunks)))

    def drop_first(self, count: int) -> None:
        """Forget the ``count`` oldest chunks."""
        if not count:
            return
        cut = self._ends[count - 1]
        self._data = self._data[cut:]
        self._ends = array("I", map(sub, self._ends[count:], repeat(cut)))

    def bisect_last_ms(self, timestamp_ms: int, low: int = 0, *, right: bool = False) -> int:
        """The first chunk from ``low`` ending at or after (``right``: after) ``timestamp_ms``."""
        search = bisect_right if right else bisect_left
        return search(range(len(self._ends)), timestamp_ms, low, key=self.last_ms)

    def bisect_first_ms(self, timestamp_ms: int, low: int = 0) -> int:
        """The first chunk from ``low`` starting after ``timestamp_ms``."""
        return bisect_right(range(len(self._ends)), timestamp_ms, low, key=self.first_ms)

    def memory_bytes(self, sizeof: Callable[[object], int]) -> int:
        return sizeof(self) + sizeof(self._data) + sizeof(self._ends)


class _MergedChunks(NamedTuple):
    """The merged summary of a run of fully covered chunks, kept from the last query.

    Chunks are immutable and only ever appended, so the first chunk's first timestamp
    and the last chunk's last timestamp identify the run.
    """

    first_ms: int
    last_ms: int
    summary: WindowSummary | None  # None when every sample in the run is NaN


class _HeadSummary(NamedTuple):
    """The summary of the first ``sample_count`` head samples, kept from the last query.

    The head only grows until it is sealed (which forgets this), so the next query
    summarises just the samples appended since and merges.
    """

    sample_count: int
    summary: WindowSummary | None


class _DecodedChunk:
    """A chunk's decoded samples, kept from the last query that cut it at its start.

    A sliding window (an HPA asking every 15 s) cuts the same chunk for an hour: keeping
    its samples (about 4 KiB) saves decompressing it on every query. Chunks of a series
    never change and have distinct first timestamps, which therefore identify them.
    ``irregular`` is filled by the first :meth:`Series.increase` that needs it (see
    :func:`_irregular_pairs`).
    """

    __slots__ = ("first_ms", "irregular", "timestamps", "values")

    def __init__(self, first_ms: int, timestamps: array[int], values: array[float]) -> None:
        self.first_ms = first_ms
        self.timestamps = timestamps
        self.values = values
        self.irregular: list[int] | None = None


class WindowIncrease(NamedTuple):
    """What a series did over a window, without the sketch: see :meth:`Series.increase`.

    The same numbers as the fields of the :class:`WindowSummary` of the window's samples
    that carry these names.
    """

    increase: float
    """Counter: the reset-adjusted increase; gauge: last value minus first value."""
    first_ms: int
    """Timestamp of the window's first non-NaN sample."""
    last_ms: int
    """Timestamp of the window's last non-NaN sample."""
    sample_count: int
    """How many non-NaN samples the window holds (at least one)."""


class Series:
    """The samples of one series: sealed chunks in time order, then the head.

    Identity is the object: the store hands out :class:`Series` objects as handles, and
    two series are equal only if they are the same object.

    Attributes:
        name: the metric name.
        label_pairs: the labels as a flat, sorted tuple ``(name1, value1, name2, ...)``
            (one tuple instead of a dict per series saves memory at 40,000 series).
        kind: gauge or counter.
        deleted: set by the store when it deletes the series; appends are then refused.
    """

    __slots__ = (
        "_chunks",
        "_edge_chunks",
        "_head_end_ms",
        "_head_irregular",
        "_head_offsets",
        "_head_start_ms",
        "_head_summary",
        "_head_values",
        "_last_ms",
        "_last_value",
        "_merged_chunks",
        "_next_run",
        "_queried",
        "_sealed_count",
        "_sealed_last_ms",
        "_settings",
        "deleted",
        "kind",
        "label_pairs",
        "name",
    )

    def __init__(
        self,
        name: str,
        label_pairs: tuple[str, ...],
        kind: SeriesKind,
        settings: SeriesSettings,
    ) -> None:
        self.name = name
        self.label_pairs = label_pairs
        self.kind = kind
        self.deleted = False
        self._settings = settings
        self._chunks = _PackedChunks()
        self._sealed_count = 0  # samples in the chunks, kept so counting is O(1)
        self._sealed_last_ms = _NO_SAMPLE_MS  # the last chunk's last timestamp
        # The head keeps timestamps as 32-bit offsets from the start of its chunk
        # window: 4 bytes a sample instead of 8, on the part of memory that is raw.
        self._head_offsets = array("i")
        self._head_values = array("d")
        self._head_start_ms = _NO_SAMPLE_MS
        self._head_end_ms = _NO_SAMPLE_MS
        self._last_ms = _NO_SAMPLE_MS
        self._last_value = math.nan
        # Query memos (see summary()); dropped by forget_idle_memos() when unused.
        self._merged_chunks: _MergedChunks | None = None
        self._next_run: _MergedChunks | None = None
        self._head_summary: _HeadSummary | None = None
        # (head samples scanned, irregular pairs among them): see increase().
        self._head_irregular: tuple[int, list[int]] | None = None
        self._edge_chunks: tuple[_DecodedChunk, ...] = ()
        self._queried = False

    # ------------------------------------------------------------------ identity

    @property
    def labels(self) -> dict[str, str]:
        """The labels as a new dict (the metric name is not among them)."""
        pairs = self.label_pairs
        return dict(zip(pairs[::2], pairs[1::2], strict=True))

    def __repr__(self) -> str:
        labels = ", ".join(f"{key}={value!r}" for key, value in self.labels.items())
        return f"Series({self.name}{{{labels}}}, {self.kind.value})"

    # ------------------------------------------------------------------ writing

    def append(self, timestamp_ms: int, value: float) -> AppendOutcome:
        """Add one sample; see the module docstring for what is accepted.

        The caller checks :attr:`deleted`; this method does not, to stay cheap. The
        store's :meth:`~kubepulse.store.tsdb.TimeSeriesStore.append_many` does both and
        counts the outcomes.
        """
        last_ms = self._last_ms
        if timestamp_ms <= last_ms:
            if timestamp_ms < last_ms:
                return AppendOutcome.OUT_OF_ORDER
            last_value = self._last_value
            if value == last_value or (math.isnan(value) and math.isnan(last_value)):
                return AppendOutcome.DUPLICATE
            return AppendOutcome.CONFLICTING_DUPLICATE
        if timestamp_ms - last_ms < self._settings.min_interval_ms:
            return AppendOutcome.TOO_FREQUENT
        if value in _INFINITIES:
            return AppendOutcome.INFINITE
        if timestamp_ms >= self._head_end_ms:
            self._start_head(timestamp_ms)
        self._head_offsets.append(timestamp_ms - self._head_start_ms)
        self._head_values.append(value)
        self._last_ms = timestamp_ms
        self._last_value = value
        return AppendOutcome.APPENDED

    def _start_head(self, timestamp_ms: int) -> None:
        """Seal the head and open the aligned chunk window that holds ``timestamp_ms``."""
        self.seal_head()
        chunk_range_ms = self._settings.chunk_range_ms
        self._head_start_ms = timestamp_ms - timestamp_ms % chunk_range_ms
        self._head_end_ms = self._head_start_ms + chunk_range_ms

    def seal_head(self) -> bool:
        """Compress the head into a chunk (with its summary); ``False`` if it was empty.

        A later sample in the same chunk window starts a new head there; chunks stay in
        time order and never overlap.
        """
        if not self._head_offsets:
            return False
        self._sealed_count += len(self._head_offsets)
        self._sealed_last_ms = self._head_start_ms + self._head_offsets[-1]
        self._chunks.append(
            encode_chunk(
                self.kind,
                self._head_timestamps(),
                self._head_values,
                relative_accuracy=self._settings.relative_accuracy,
            )
        )
        # New arrays rather than clearing: a cleared array keeps its allocation.
        self._head_offsets = array("i")
        self._head_values = array("d")
        self._head_summary = None
        self._head_irregular = None
        return True

    def _head_timestamps(self, begin: int = 0, end: int | None = None) -> list[int]:
        """The head's timestamps ``[begin:end]`` in milliseconds since the epoch."""
        # A list: building an array from an iterator is about twice as slow.
        return list(map(add, self._head_offsets[begin:end], repeat(self._head_start_ms)))

    def _head_range(self, start_ms: int, end_ms: int) -> tuple[int, int]:
        """The index range of head samples within ``[start_ms, end_ms]``."""
        head_start_ms = self._head_start_ms
        return _clip(self._head_offsets, start_ms - head_start_ms, end_ms - head_start_ms)

    def restore(
        self,
        chunks: Sequence[bytes],
        head_timestamps_ms: Sequence[int],
        head_values: Sequence[float],
    ) -> None:
        """Fill an empty series with sealed chunks and head samples (loading a snapshot).

        Everything is checked before anything changes: chunk headers, chunks in time
        order, head samples strictly after the chunks and in order, no infinite value.
        Chunks are kept as they are (their summaries are not recomputed). Head samples
        are not subject to ``min_interval_ms``: they were accepted when they arrived.

        Raises:
            KubepulseValueError: the series is not empty, or the data breaks a rule above.
        """
        if not self.is_empty or self._last_ms != _NO_SAMPLE_MS:
            raise KubepulseValueError(
                f"{self!r} already holds samples; restore into a new series only"
            )
        if len(head_timestamps_ms) != len(head_values):
            raise KubepulseValueError(
                f"{len(head_timestamps_ms)} head timestamps but {len(head_values)} values for "
                f"{self!r}; pass one timestamp per value"
            )
        last_ms = _NO_SAMPLE_MS
        for chunk in chunks:
            header = read_chunk_header(chunk)
            if header.first_ms <= last_ms:
                raise KubepulseValueError(
                    f"a chunk of {self!r} starting at {header.first_ms} ms does not follow the "
                    f"previous one ending at {last_ms} ms; chunks must be in time order"
                )
            last_ms = header.last_ms
        for timestamp_ms, value in zip(head_timestamps_ms, head_values, strict=True):
            if timestamp_ms <= last_ms or value in _INFINITIES:
                raise KubepulseValueError(
                    f"head sample ({timestamp_ms} ms, {value!r}) of {self!r} is infinite or "
                    f"does not follow {last_ms} ms; head samples must be finite and in order"
                )
            last_ms = timestamp_ms
        self._chunks.replace(chunks)
        self._sealed_count = sum(map(chunk_sample_count, chunks))
        self._sealed_last_ms = chunk_last_ms(chunks[-1]) if chunks else _NO_SAMPLE_MS
        if chunks:
            self._last_ms = chunk_last_ms(chunks[-1])
            self._start_head(self._last_ms)  # the head is empty: nothing to seal
            self._last_value = decode_chunk(chunks[-1])[1][-1]
        for timestamp_ms, value in zip(head_timestamps_ms, head_values, strict=True):
            if timestamp_ms >= self._head_end_ms:
                self._start_head(timestamp_ms)
            self._head_offsets.append(timestamp_ms - self._head_start_ms)
            self._head_values.append(value)
            self._last_ms = timestamp_ms
            self._last_value = value

    def seal_if_window_ended(self, now_ms: int) -> bool:
        """Seal the head when ``now_ms`` is past its chunk window; ``True`` if it sealed.

        Keeps a series that stopped receiving samples from holding raw samples forever.
        """
        if self._head_offsets and now_ms >= self._head_end_ms:
            return self.seal_head()
        return False

    def drop_before(self, cutoff_ms: int) -> int:
        """Drop the chunks whose samples are all older than ``cutoff_ms``; return how many samples.

        Retention works on whole chunks: a chunk with a sample at or after the cutoff is
        kept entirely (queries clip to their window anyway), so up to one chunk range more
        than the retention is held. A head entirely older than the cutoff is dropped too.
        """
        chunks = self._chunks
        keep_from = chunks.bisect_last_ms(cutoff_ms)
        dropped = sum(map(chunks.sample_count, range(keep_from)))
        self._sealed_count -= dropped
        chunks.drop_first(keep_from)
        if self._head_offsets and self._last_ms < cutoff_ms:
            dropped += len(self._head_offsets)
            self._head_offsets = array("i")
            self._head_values = array("d")
            self._head_summary = None
            self._head_irregular = None
        if not chunks:
            self._sealed_last_ms = _NO_SAMPLE_MS
            self._merged_chunks = None
            self._next_run = None
        if keep_from:
            self._edge_chunks = ()
        return dropped

    # ------------------------------------------------------------------ reading

    @property
    def sample_count(self) -> int:
        """How many samples the series holds, sealed and in the head."""
        return self._sealed_count + len(self._head_offsets)

    @property
    def is_empty(self) -> bool:
        """Whether the series holds no sample (never had one, or retention dropped all)."""
        # Every chunk holds a sample, so no sealed sample means no chunk.
        return not self._sealed_count and not self._head_offsets

    @property
    def chunks(self) -> tuple[bytes, ...]:
        """The sealed chunks, oldest first (for snapshots and measurements)."""
        return tuple(self._chunks)

    @property
    def head(self) -> tuple[array[int], array[float]]:
        """Copies of the head's timestamps and values (not yet sealed)."""
        return array("q", self._head_timestamps()), array("d", self._head_values)

    @property
    def first_timestamp_ms(self) -> int | None:
        """Timestamp of the oldest sample held, ``None`` when empty."""
        if len(self._chunks):
            return self._chunks.first_ms(0)
        if self._head_offsets:
            return self._head_start_ms + self._head_offsets[0]
        return None

    @property
    def last_timestamp_ms(self) -> int | None:
        """Timestamp of the newest sample ever appended, ``None`` before the first."""
        return None if self._last_ms == _NO_SAMPLE_MS else self._last_ms

    def latest(self, now_ms: int, max_age_ms: int) -> tuple[int, float] | None:
        """The newest sample if it is fresh, else ``None``.

        ``None`` when the series holds no sample, when the newest sample is older than
        ``max_age_ms`` at ``now_ms``, or when it is NaN (Prometheus' staleness marker: the
        target said the series is gone). Stale data is absent, not zero, so an HPA holds
        instead of scaling on it.
        """
        if self.is_empty or now_ms - self._last_ms > max_age_ms:
            return None
        value = self._last_value
        if math.isnan(value):
            return None
        return self._last_ms, value

    def samples(self, start_ms: int, end_ms: int) -> tuple[array[int], array[float]]:
        """The samples with ``start_ms <= timestamp <= end_ms``, oldest first, decoded."""
        timestamps = array("q")
        values = array("d")
        if start_ms > end_ms:
            return timestamps, values
        chunks = self._chunks
        for index in range(chunks.bisect_last_ms(start_ms), len(chunks)):
            if chunks.first_ms(index) > end_ms:
                break
            chunk_timestamps, chunk_values = decode_chunk(chunks.chunk(index))
            begin, end = _clip(chunk_timestamps, start_ms, end_ms)
            timestamps.extend(chunk_timestamps[begin:end])
            values.extend(chunk_values[begin:end])
        begin, end = self._head_range(start_ms, end_ms)
        timestamps.extend(self._head_timestamps(begin, end))
        values.extend(self._head_values[begin:end])
        return timestamps, values

    def summary(self, start_ms: int, end_ms: int) -> WindowSummary | None:
        """The summary of the samples with ``start_ms <= timestamp <= end_ms``.

        Chunks entirely inside the window contribute their stored summary; only chunks
        cut by the window's edges and the head are summarised from samples. The result
        equals :meth:`WindowSummary.from_samples` over :meth:`samples` of the same window,
        up to floating-point rounding of sums (and the sketch's relative accuracy for
        quantiles). ``None`` when the window holds no non-NaN sample.

        Memos serve a window that slides forward (an HPA asking every 15 s): the merged
        summary of the fully covered chunks (and of the same run without its first
        chunk, for when the start moves on), the summary of the head (extended by the
        samples appended since) and the decoded chunks cut by windows' starts. The
        next query merges them with what changed instead of decoding every hourly
        summary again. :meth:`forget_idle_memos` drops them for series no longer queried.
        """
        if start_ms > end_ms:
            return None
        kind = self.kind
        relative_accuracy = self._settings.relative_accuracy
        chunks = self._chunks
        window = (start_ms, end_ms)
        parts: list[WindowSummary | None] = []
        index = chunks.bisect_last_ms(start_ms)
        chunk_count = len(chunks)
        # A chunk cut by the window's start (and perhaps by its end too).
        if index < chunk_count and chunks.first_ms(index) < start_ms:
            edge = self._decoded_edge(index)
            parts.append(_summarise(kind, edge.timestamps, edge.values, window, relative_accuracy))
            index += 1
        # The run of chunks entirely inside the window.
        run_end = chunks.bisect_last_ms(end_ms, index, right=True)
        if run_end - index == 1:
            parts.append(chunk_summary(chunks.chunk(index)))
        elif run_end - index > 1:
            parts.append(self._merged_run(index, run_end))
        # A chunk cut by the window's end.
        if run_end < chunk_count and chunks.first_ms(run_end) <= end_ms:
            timestamps, values = decode_chunk(chunks.chunk(run_end))
            parts.append(_summarise(kind, timestamps, values, window, relative_accuracy))
        parts.append(self._head_part(start_ms, end_ms))
        self._queried = True
        return WindowSummary.merge_all(part for part in parts if part is not None)

    def increase(self, start_ms: int, end_ms: int) -> WindowIncrease | None:
        """The increase over ``start_ms <= timestamp <= end_ms``, without building a summary.

        The same numbers as the ``increase``, ``first_ms``, ``last_ms`` and ``count`` of
        the :class:`WindowSummary` of the window's samples (:meth:`WindowSummary.from_samples`
        over :meth:`samples`), bit for bit: NaN samples skipped, a counter's drop counted
        as a reset from zero, the increases added with :func:`math.fsum`. ``None`` when the
        window holds no non-NaN sample. Histogram percentiles, ``rate`` and a counter's
        ``avg`` and ``sum`` need nothing else, and this costs a fraction of
        :meth:`summary`: no per-interval rates, no sketch.

        The fast case needs only the window's first and last samples: when every pair of
        consecutive samples in the window is *regular* (no NaN, and for a counter
        ``0 <= previous <= value <= 2 * previous`` or ``previous == 0``, so that no reset
        happened and, by Sterbenz' lemma, every difference is exact), the differences
        add up exactly to ``last - first``, which is what ``fsum`` returns. Which pairs
        are irregular is scanned once per sample and remembered (for the head, extended
        by the samples appended since; for a decoded edge chunk, once). A window with an
        irregular pair is summed from its samples. Windows overlapping up to two sealed
        chunks decode them (remembered like :meth:`summary`'s edge chunks); a window over
        more (longer than a chunk range) is answered by :meth:`summary`.
        """
        if start_ms > end_ms:
            return None
        self._queried = True
        kind = self.kind
        head_start_ms = self._head_start_ms
        offsets = self._head_offsets
        head_begin = bisect_left(offsets, start_ms - head_start_ms)
        head_end = bisect_right(offsets, end_ms - head_start_ms)
        head_values = self._head_values
        if self._sealed_last_ms < start_ms:
            # Only the head (what a short window ending now nearly always reads).
            if head_begin >= head_end:
                return None
            remembered = self._head_irregular
            count = len(offsets)
            if remembered is not None and remembered[0] == count:
                irregular = remembered[1]  # nothing appended since the last scan
            elif remembered is not None and remembered[0] == count - 1 > 0:
                # One sample since the last scan, as between two scrapes: the pair
                # check of _irregular_pairs inlined (this runs for every series).
                irregular = remembered[1]
                previous, value = head_values[count - 2], head_values[count - 1]
                if kind is SeriesKind.COUNTER:
                    if not (
                        0.0 <= previous <= value
                        and (value <= previous + previous or previous == 0.0)
                    ):
                        irregular.append(count - 1)
                elif isnan(previous) or isnan(value):
                    irregular.append(count - 1)
                self._head_irregular = (count, irregular)
            else:
                irregular = self._head_irregular_pairs()
            if (not irregular and not isnan(head_values[head_begin])) or _is_regular(
                head_values, irregular, head_begin, head_end
            ):
                return WindowIncrease(
                    head_values[head_end - 1] - head_values[head_begin],
                    head_start_ms + offsets[head_begin],
                    head_start_ms + offsets[head_end - 1],
                    head_end - head_begin,
                )
            return _reference_increase(
                kind, self._head_timestamps(head_begin, head_end), head_values[head_begin:head_end]
            )
        # Sealed chunks overlap the window: at most two are decoded (and remembered).
        chunks = self._chunks
        index = chunks.bisect_last_ms(start_ms)
        overlapping = chunks.bisect_first_ms(end_ms, index) - index
        if overlapping > 2:
            return _increase_of(self.summary(start_ms, end_ms))
        parts: list[tuple[array[float], list[int], int, int, array[int] | None]] = []
        for chunk_index in range(index, index + overlapping):
            edge = self._decoded_edge(chunk_index)
            begin, end = _clip(edge.timestamps, start_ms, end_ms)
            if begin < end:
                if edge.irregular is None:
                    edge.irregular = _irregular_pairs(kind, edge.values, 0, len(edge.values))
                parts.append((edge.values, edge.irregular, begin, end, edge.timestamps))
        if head_begin < head_end:
            parts.append((head_values, self._head_irregular_pairs(), head_begin, head_end, None))
        if not parts:
            return None
        regular = all(_is_regular(*part[:4]) for part in parts) and all(
            _is_regular_pair(kind, earlier[0][earlier[3] - 1], later[0][later[2]])
            for earlier, later in pairwise(parts)
        )
        timestamps: list[int] = []
        values: list[float] = []
        for part_values, _, begin, end, part_timestamps in parts:
            if part_timestamps is None:
                timestamps.extend(self._head_timestamps(begin, end))
            else:
                timestamps.extend(part_timestamps[begin:end])
            values.extend(part_values[begin:end])
        if regular:
            return WindowIncrease(
                values[-1] - values[0], timestamps[0], timestamps[-1], len(values)
            )
        return _reference_increase(kind, timestamps, values)

    def _head_irregular_pairs(self) -> list[int]:
        """The head's irregular pairs (see :func:`_irregular_pairs`); scans only new samples."""
        count = len(self._head_offsets)
        remembered = self._head_irregular
        scanned, irregular = (0, []) if remembered is None else remembered
        if scanned == count - 1 and scanned:  # one sample since the last scan, as usual
            values = self._head_values
            if not _is_regular_pair(self.kind, values[scanned - 1], values[scanned]):
                irregular.append(scanned)
            self._head_irregular = (count, irregular)
        elif scanned < count:
            irregular.extend(_irregular_pairs(self.kind, self._head_values, scanned, count))
            self._head_irregular = (count, irregular)
        return irregular

    def _decoded_edge(self, index: int) -> _DecodedChunk:
        """Chunk ``index`` decoded, from the memo of the last two edge chunks if there."""
        first_ms = self._chunks.first_ms(index)
        remembered = self._edge_chunks
        for edge in remembered:
            if edge.first_ms == first_ms:
                break
        else:
            edge = _DecodedChunk(first_ms, *decode_chunk(self._chunks.chunk(index)))
        # Two slots, most recent first: two windows on one series (a short one cutting
        # the chunk sealed last, a day-long one cutting the oldest) each keep theirs.
        self._edge_chunks = (edge, *(other for other in remembered[:2] if other is not edge))[:2]
        return edge

    def _head_part(self, start_ms: int, end_ms: int) -> WindowSummary | None:
        """The summary of the head samples in the window, reusing the last query's."""
        begin, end = self._head_range(start_ms, end_ms)
        if begin >= end:
            return None
        kind = self.kind
        relative_accuracy = self._settings.relative_accuracy
        if begin or end < len(self._head_offsets):
            # The window cuts the head: a short window, cheap to summarise directly.
            return WindowSummary.from_samples(
                kind,
                self._head_timestamps(begin, end),
                self._head_values[begin:end],
                relative_accuracy=relative_accuracy,
            )
        remembered = self._head_summary
        if remembered is not None and remembered.sample_count <= end:
            if remembered.sample_count == end:
                return remembered.summary
            newer = WindowSummary.from_samples(
                kind,
                self._head_timestamps(remembered.sample_count, end),
                self._head_values[remembered.sample_count : end],
                relative_accuracy=relative_accuracy,
            )
            if remembered.summary is None:
                summary = newer
            elif newer is None:
                summary = remembered.summary
            else:
                summary = remembered.summary.merge(newer)
        else:
            summary = WindowSummary.from_samples(
                kind,
                self._head_timestamps(),
                self._head_values,
                relative_accuracy=relative_accuracy,
            )
        self._head_summary = _HeadSummary(end, summary)
        return summary

    def forget_idle_memos(self) -> bool:
        """Drop the query memos unless a query used them since the last call; ``True`` if dropped.

        The store calls this at every compaction, so memos (a decoded summary or two,
        about a kilobyte) are kept only for the series that are being queried.
        """
        queried = self._queried
        self._queried = False
        memos = (self._merged_chunks, self._next_run, self._head_summary, self._head_irregular)
        if queried or (memos == (None,) * len(memos) and not self._edge_chunks):
            return False
        self._merged_chunks = None
        self._next_run = None
        self._head_summary = None
        self._head_irregular = None
        self._edge_chunks = ()
        return True

    def _merged_run(self, begin: int, end: int) -> WindowSummary | None:
        """The merged summary of ``chunks[begin:end]``, reusing what earlier queries merged.

        Two memos: the run the last query used, which a sliding window extends by the
        chunks sealed since; and the same run without its first chunk, which every query
        extends by one chunk summary. When the window's start passes a chunk boundary
        (once a chunk range), the second memo is ready and the query does not decode
        every summary again.
        """
        chunks = self._chunks
        run_first_ms = chunks.first_ms(begin)
        run_last_ms = chunks.last_ms(end - 1)
        merged = self._extended(self._merged_chunks, begin, end, run_first_ms)
        if merged is None:
            merged = self._extended(self._next_run, begin, end, run_first_ms)
        if merged is None:
            merged = _MergedChunks(
                run_first_ms,
                run_last_ms,
                WindowSummary.merge_all(_stored_summaries(chunks, begin, end)),
            )
        self._merged_chunks = merged
        self._prepare_next_run(begin, end)
        return merged.summary

    def _extended(
        self, memo: _MergedChunks | None, begin: int, end: int, run_first_ms: int
    ) -> _MergedChunks | None:
        """``memo`` grown to cover ``chunks[begin:end]``, or ``None`` if it does not fit."""
        chunks = self._chunks
        run_last_ms = chunks.last_ms(end - 1)
        if memo is None or memo.first_ms != run_first_ms or memo.last_ms > run_last_ms:
            return None
        if memo.last_ms == run_last_ms:
            return memo
        known_end = chunks.bisect_last_ms(memo.last_ms, begin, right=True)
        parts = _stored_summaries(chunks, known_end, end)
        if memo.summary is not None:
            parts.insert(0, memo.summary)
        return _MergedChunks(run_first_ms, run_last_ms, WindowSummary.merge_all(parts))

    def _prepare_next_run(self, begin: int, end: int) -> None:
        """Grow the memo of ``chunks[begin + 1 : end]`` by one chunk (see :meth:`_merged_run`)."""
        chunks = self._chunks
        if end - begin < 2:
            self._next_run = None
            return
        next_first_ms = chunks.first_ms(begin + 1)
        memo = self._next_run
        if memo is None or memo.first_ms != next_first_ms:
            self._next_run = _MergedChunks(
                next_first_ms, chunks.last_ms(begin + 1), chunk_summary(chunks.chunk(begin + 1))
            )
            return
        following = chunks.bisect_last_ms(memo.last_ms, begin + 1, right=True)
        if following < end:
            self._next_run = self._extended(memo, begin + 1, following + 1, next_first_ms)

    def memory_bytes(self, sizeof: Callable[[object], int]) -> int:
        """An estimate of the bytes this series holds: chunks, head, object, labels, memos.

        ``sizeof`` is :func:`sys.getsizeof`, passed in to keep this module free of
        anything but computation. Interned label strings are shared between series and
        not counted here. Of the query memos only the decoded edge chunks are counted; the
        three summaries (about a kilobyte each) are not.
        """
        total = (
            sizeof(self)
            + sizeof(self.label_pairs)
            + self._chunks.memory_bytes(sizeof)
            + sizeof(self._head_offsets)
            + sizeof(self._head_values)
            + sizeof(self._last_value)
        )
        for edge in self._edge_chunks:
            total += sizeof(edge.timestamps) + sizeof(edge.values)
        return total


def _stored_summaries(chunks: _PackedChunks, begin: int, end: int) -> list[WindowSummary]:
    """The summaries stored in chunks ``begin`` to ``end - 1`` (a chunk of NaN has none)."""
    summaries = map(chunk_summary, map(chunks.chunk, range(begin, end)))
    return [summary for summary in summaries if summary is not None]


def _irregular_pairs(kind: SeriesKind, values: array[float], begin: int, end: int) -> list[int]:
    """The ``i`` in ``[max(begin, 1), end)`` whose pair ``values[i - 1], values[i]`` is irregular.

    A pair is regular when its difference adds to the others exactly as
    :meth:`WindowSummary.from_samples` would add it: neither value is NaN and, for a
    counter, ``0 <= previous <= value`` (no reset) with ``value <= 2 * previous`` or
    ``previous == 0`` (Sterbenz' lemma: then ``value - previous`` is exact).
    """
    low = max(begin, 1)
    if kind is SeriesKind.COUNTER:
        return [
            index
            for index, previous, value in zip(
                range(low, end), values[low - 1 : end - 1], values[low:end], strict=True
            )
            if not (0.0 <= previous <= value and (value <= previous + previous or previous == 0.0))
        ]
    return [
        index
        for index, previous, value in zip(
            range(low, end), values[low - 1 : end - 1], values[low:end], strict=True
        )
        if isnan(previous) or isnan(value)
    ]


def _is_regular_pair(kind: SeriesKind, previous: float, value: float) -> bool:
    """Whether one pair is regular (see :func:`_irregular_pairs`)."""
    if kind is SeriesKind.COUNTER:
        return 0.0 <= previous <= value and (value <= previous + previous or previous == 0.0)
    return not (isnan(previous) or isnan(value))


def _is_regular(values: array[float], irregular: list[int], begin: int, end: int) -> bool:
    """Whether ``values[begin:end]`` (not empty) has no NaN start and no irregular pair."""
    if isnan(values[begin]):
        return False
    if irregular and irregular[-1] > begin:
        position = bisect_right(irregular, begin)
        return position == len(irregular) or irregular[position] >= end
    return True


def _reference_increase(
    kind: SeriesKind, timestamps: Sequence[int], values: Sequence[float]
) -> WindowIncrease | None:
    """The increase of the samples as :meth:`WindowSummary.from_samples` computes it."""
    kept = [
        (stamp, value) for stamp, value in zip(timestamps, values, strict=True) if not isnan(value)
    ]
    if not kept:
        return None
    first_ms, first_value = kept[0]
    last_ms, last_value = kept[-1]
    if kind is SeriesKind.COUNTER:
        increase = math.fsum(
            value - previous if value >= previous else value
            for (_, previous), (_, value) in pairwise(kept)
        )
    else:
        increase = last_value - first_value
    return WindowIncrease(increase, first_ms, last_ms, len(kept))


def _increase_of(summary: WindowSummary | None) -> WindowIncrease | None:
    if summary is None:
        return None
    return WindowIncrease(summary.increase, summary.first_ms, summary.last_ms, summary.count)


def _clip(timestamps: array[int], start_ms: int, end_ms: int) -> tuple[int, int]:
    """The index range of ``timestamps`` (sorted) within ``[start_ms, end_ms]``."""
    return bisect_left(timestamps, start_ms), bisect_right(timestamps, end_ms)


def _summarise(
    kind: SeriesKind,
    timestamps: array[int],
    values: array[float],
    window: tuple[int, int],
    relative_accuracy: float,
) -> WindowSummary | None:
    """Summarise the samples within ``window`` (both ends included) from the samples."""
    begin, end = _clip(timestamps, *window)
    if begin >= end:
        return None
    return WindowSummary.from_samples(
        kind, timestamps[begin:end], values[begin:end], relative_accuracy=relative_accuracy
    )


def fresh_range(series: Iterable[Series], now_ms: int, max_age_ms: int) -> tuple[int, int] | None:
    """The oldest and newest timestamp of the fresh samples :meth:`Series.latest` gives.

    ``None`` when no series has one. The same rule as :meth:`Series.latest`, in one loop
    over the series instead of a call each: queries ask it for every object.
    """
    oldest_ms: int | None = None
    newest_ms = _NO_SAMPLE_MS
    for one in series:
        last_ms = one._last_ms
        if now_ms - last_ms > max_age_ms or isnan(one._last_value):
            continue
        if not one._sealed_count and not one._head_offsets:  # emptied by the retention
            continue
        if oldest_ms is None or last_ms < oldest_ms:
            oldest_ms = last_ms
        newest_ms = max(newest_ms, last_ms)
    return None if oldest_ms is None else (oldest_ms, newest_ms)


def last_timestamps(series: Iterable[Series]) -> list[int]:
    """The newest timestamp ever appended to each series (a large negative number before the first).

    A series' newest timestamp only grows, by at least one with every sample stored, so
    the sum over some series changes whenever any of them gets a sample: callers that
    remember answers compare it. One C-level pass, for the hot path of every query.
    """
    return list(map(_LAST_MS, series))


_LAST_MS = attrgetter("_last_ms")


def label_pairs_from(labels: Mapping[str, str]) -> tuple[str, ...]:
    """The flat, sorted ``(name1, value1, ...)`` tuple a :class:`Series` keeps."""
    return tuple(item for pair in sorted(labels.items()) for item in pair)

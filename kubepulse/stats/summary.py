"""Mergeable summaries of one series over a time window.

A :class:`WindowSummary` condenses the samples of one series between two timestamps into
a few numbers and a :class:`~kubepulse.stats.sketch.DDSketch`, so the store can keep one
summary per series per hour and answer any window by merging them in time order
(:meth:`WindowSummary.merge_all`) instead of rereading raw samples.

What is summarised depends on the kind of series:

- ``GAUGE``: the sample values themselves.
- ``COUNTER``: per-interval rates, one per pair of consecutive samples, in units per
  second: ``delta * 1000 / interval_ms``, where ``delta`` is ``value - previous`` or,
  when the counter went down (a restart reset it), the new value itself, as Prometheus'
  ``rate()`` assumes the counter restarted from zero.

Merging keeps counters exact across boundaries: the interval from the last sample of
the earlier summary to the first sample of the later one is counted like any other.
Summaries built by :meth:`WindowSummary.from_samples` and merged with
:meth:`WindowSummary.merge` give the same numbers as one summary of all the samples, up
to floating-point rounding (percentiles within the sketch's relative accuracy).
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice, repeat
from operator import lt, mul, sub, truediv

from kubepulse.errors import KubepulseValueError

# Private helpers are shared: a summary's bytes embed the sketch's format and its reader.
from kubepulse.stats.sketch import (
    DDSketch,
    _checked_sum,
    _Reader,
    _write_signed_varint,
    _write_varint,
)

__all__ = [
    "SeriesKind",
    "WindowSummary",
]

_FORMAT_VERSION = 1
_HEADER = struct.Struct("<BB")
_GAUGE_VALUES = struct.Struct("<ddd")  # first_value, last_value, last_rate
_COUNTER_VALUES = struct.Struct("<dddd")  # first_value, last_value, last_rate, increase


class SeriesKind(enum.Enum):
    """How a series' values are to be read: levels (gauge) or a running total (counter)."""

    GAUGE = "gauge"
    COUNTER = "counter"


_INFINITE_SAMPLE = (
    "samples must be finite or NaN; drop infinite samples (or clamp them) before summarising"
)

_KIND_CODES = {SeriesKind.GAUGE: 0, SeriesKind.COUNTER: 1}
_KINDS_BY_CODE = {code: kind for kind, code in _KIND_CODES.items()}


def _per_second(change: float, interval_ms: int) -> float:
    """``change`` over ``interval_ms`` milliseconds, per second.

    Every per-second figure in ``kubepulse.stats`` goes through this exact expression,
    so summaries and the exact reference computations round identically.
    """
    return change * 1000.0 / interval_ms


def _counter_increase(previous: float, value: float) -> float:
    """The increase of a counter from ``previous`` to ``value``, treating a drop as a reset."""
    return value - previous if value >= previous else value


@dataclass(slots=True)
class WindowSummary:
    """What one series did over a window of samples, mergeable with adjacent windows.

    Build one with :meth:`from_samples`; combine them with :meth:`merge` or
    :meth:`merge_all`. The fields are consistent with each other when built that way;
    :meth:`to_bytes` relies on it (it stores ``count``, ``minimum``, ``maximum`` and
    ``total`` through the sketch).

    Attributes:
        kind: gauge or counter; decides what the statistics below are over.
        count: how many samples (NaN samples are not counted).
        first_ms: timestamp of the first sample, milliseconds since the epoch.
        last_ms: timestamp of the last sample (equal to ``first_ms`` for one sample).
        first_value: value of the first sample.
        last_value: value of the last sample.
        minimum: gauge: the smallest value; counter: the smallest per-interval rate, NaN
            when there is only one sample (no interval).
        maximum: like ``minimum``, the largest.
        total: gauge: the sum of the values; counter: the sum of the per-interval rates
            (0.0 with one sample).
        increase: counter: the reset-adjusted increase from the first to the last sample;
            gauge: ``last_value - first_value``.
        last_rate: per-second change over the last interval (counter: reset-aware); NaN
            when there is only one sample.
        sketch: gauge: the values; counter: the per-interval rates.
    """

    kind: SeriesKind
    count: int
    first_ms: int
    last_ms: int
    first_value: float
    last_value: float
    minimum: float
    maximum: float
    total: float
    increase: float
    last_rate: float
    sketch: DDSketch

    @property
    def interval_count(self) -> int:
        """How many intervals between consecutive samples: ``count - 1``.

        For a counter this is how many rates ``minimum``, ``maximum``, ``total`` and the
        sketch are over; zero means they are NaN, NaN, 0.0 and empty.
        """
        return self.count - 1

    @property
    def span_ms(self) -> int:
        """Milliseconds from the first to the last sample (0 for one sample)."""
        return self.last_ms - self.first_ms

    # ------------------------------------------------------------------ building

    @classmethod
    def from_samples(
        cls,
        kind: SeriesKind,
        timestamps_ms: Sequence[int],
        values: Sequence[float],
        *,
        relative_accuracy: float = 0.01,
    ) -> WindowSummary | None:
        """Summarise samples of one series; ``None`` when there is no non-NaN sample.

        NaN samples (Prometheus staleness markers, failed reads) are skipped: a counter's
        interval then spans from the sample before to the sample after.

        Raises:
            KubepulseValueError: the sequences differ in length, timestamps are not
                strictly increasing, a value is infinite, or ``relative_accuracy`` is
                invalid (see :class:`~kubepulse.stats.sketch.DDSketch`).
        """
        sketch = DDSketch(relative_accuracy)  # validates relative_accuracy even for no samples
        sample_count = len(values)
        if len(timestamps_ms) != sample_count:
            raise KubepulseValueError(
                f"got {len(timestamps_ms)} timestamps but {sample_count} values; pass one "
                "timestamp per value"
            )
        if not all(map(lt, timestamps_ms, islice(timestamps_ms, 1, None))):
            raise KubepulseValueError(
                "timestamps must be strictly increasing; sort the samples by time and drop "
                "duplicate timestamps before summarising"
            )
        if any(map(math.isnan, values)):
            kept = [
                (stamp, value)
                for stamp, value in zip(timestamps_ms, values, strict=True)
                if not math.isnan(value)
            ]
            if not kept:
                return None
            timestamps_ms = [stamp for stamp, _ in kept]
            values = [value for _, value in kept]
            sample_count = len(values)
        elif not sample_count:
            return None

        first_value = values[0]
        last_value = values[-1]
        if kind is SeriesKind.GAUGE:
            minimum = min(values)
            maximum = max(values)
            if math.isinf(minimum) or math.isinf(maximum):
                raise KubepulseValueError(_INFINITE_SAMPLE)
            total = _checked_sum(values)
            sketch._add_finite(values, minimum, maximum, total)
            increase = last_value - first_value
            last_rate = (
                _per_second(last_value - values[-2], timestamps_ms[-1] - timestamps_ms[-2])
                if sample_count > 1
                else math.nan
            )
        elif kind is SeriesKind.COUNTER:
            if not all(map(math.isfinite, values)):
                raise KubepulseValueError(_INFINITE_SAMPLE)
            increases = list(map(sub, islice(values, 1, None), values))
            if increases and min(increases) < 0.0:
                increases = list(map(_counter_increase, values, islice(values, 1, None)))
            intervals_ms = map(sub, islice(timestamps_ms, 1, None), timestamps_ms)
            rates = list(map(truediv, map(mul, increases, repeat(1000.0)), intervals_ms))
            increase = math.fsum(increases)
            if rates:
                minimum = min(rates)
                maximum = max(rates)
                total = _checked_sum(rates)
                sketch._add_finite(rates, minimum, maximum, total)
                last_rate = rates[-1]
            else:
                minimum = maximum = last_rate = math.nan
                total = 0.0
        else:
            raise KubepulseValueError(
                f"unknown series kind {kind!r}; use SeriesKind.GAUGE or SeriesKind.COUNTER"
            )
        return cls(
            kind=kind,
            count=sample_count,
            first_ms=timestamps_ms[0],
            last_ms=timestamps_ms[-1],
            first_value=first_value,
            last_value=last_value,
            minimum=minimum,
            maximum=maximum,
            total=total,
            increase=increase,
            last_rate=last_rate,
            sketch=sketch,
        )

    # ------------------------------------------------------------------ merging

    def merge(self, later: WindowSummary) -> WindowSummary:
        """A new summary covering this window and then ``later``; neither is changed.

        Raises:
            KubepulseValueError: ``later`` does not start after this summary ends (merge
                in time order), the kinds differ, or the sketches' accuracies differ.
        """
        merged = self.merge_all((self, later))
        assert merged is not None  # two parts in, one summary out
        return merged

    @staticmethod
    def merge_all(parts: Iterable[WindowSummary]) -> WindowSummary | None:
        """Merge summaries given in time order into one; ``None`` when ``parts`` is empty.

        The inputs are not changed. Each part must start after the previous one ends.

        Raises:
            KubepulseValueError: parts out of time order or overlapping, of different
                kinds, or with sketches of different relative accuracies.
        """
        iterator = iter(parts)
        first = next(iterator, None)
        if first is None:
            return None
        kind = first.kind
        is_counter = kind is SeriesKind.COUNTER
        count = first.count
        last_ms = first.last_ms
        last_value = first.last_value
        increase = first.increase
        last_rate = first.last_rate
        later_sketches: list[DDSketch] = []
        boundary_rates: list[float] = []
        for part in iterator:
            if part.kind is not kind:
                raise KubepulseValueError(
                    f"cannot merge a {part.kind.value} summary into a {kind.value} summary; "
                    "merge only summaries of the same series"
                )
            gap_ms = part.first_ms - last_ms
            if gap_ms <= 0:
                raise KubepulseValueError(
                    f"cannot merge a summary starting at {part.first_ms} ms after one ending "
                    f"at {last_ms} ms: parts must be in time order and must not overlap"
                )
            if is_counter:
                # The interval across the boundary is a sample interval like any other.
                boundary_increase = _counter_increase(last_value, part.first_value)
                boundary_rate = _per_second(boundary_increase, gap_ms)
                boundary_rates.append(boundary_rate)
                increase = increase + boundary_increase + part.increase
            else:
                boundary_rate = _per_second(part.first_value - last_value, gap_ms)
            later_sketches.append(part.sketch)
            last_rate = part.last_rate if part.count > 1 else boundary_rate
            count += part.count
            last_ms = part.last_ms
            last_value = part.last_value
        sketch = first.sketch.copy()
        # One bulk merge: aligning and adding the bucket stores once is much cheaper than
        # merging part by part, and merge_all is the hot path of every query.
        sketch.merge_many(later_sketches)
        if boundary_rates:
            sketch.extend(boundary_rates)
        if not is_counter:
            increase = last_value - first.first_value
        # minimum, maximum and total are exactly what the sketch tracks (NaN, NaN and
        # 0.0 for a counter without intervals), which keeps to_bytes() lossless.
        return WindowSummary(
            kind=kind,
            count=count,
            first_ms=first.first_ms,
            last_ms=last_ms,
            first_value=first.first_value,
            last_value=last_value,
            minimum=sketch.min,
            maximum=sketch.max,
            total=sketch.sum,
            increase=increase,
            last_rate=last_rate,
            sketch=sketch,
        )

    # ------------------------------------------------------------------ bytes

    def to_bytes(self) -> bytes:
        """A compact binary form, read back by :meth:`from_bytes`.

        Layout (version 1): version and kind bytes; ``first_ms`` (zigzag varint) and the
        span in milliseconds (varint); first value, last value and last rate as float64,
        plus the increase for counters (a gauge's is ``last - first``); then the sketch's
        own bytes, from which count, minimum, maximum and total are recovered.
        """
        out = bytearray(_HEADER.pack(_FORMAT_VERSION, _KIND_CODES[self.kind]))
        _write_signed_varint(out, self.first_ms)
        _write_varint(out, self.last_ms - self.first_ms)
        if self.kind is SeriesKind.COUNTER:
            out += _COUNTER_VALUES.pack(
                self.first_value, self.last_value, self.last_rate, self.increase
            )
        else:
            out += _GAUGE_VALUES.pack(self.first_value, self.last_value, self.last_rate)
        out += self.sketch.to_bytes()
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> WindowSummary:
        """Rebuild a summary written by :meth:`to_bytes`.

        Raises:
            KubepulseValueError: the bytes are truncated, have trailing garbage, an
                unknown version or kind, or fields that contradict each other.
        """
        reader = _Reader(bytes(data), "WindowSummary")
        version, kind_code = reader.unpack(_HEADER)
        if version != _FORMAT_VERSION:
            raise reader.corrupt(
                f"format version {int(version)} is not {_FORMAT_VERSION}, the only one known"
            )
        kind = _KINDS_BY_CODE.get(int(kind_code))
        if kind is None:
            raise reader.corrupt(f"unknown series kind code {int(kind_code)}")
        first_ms = reader.signed_varint()
        last_ms = first_ms + reader.varint()
        if kind is SeriesKind.COUNTER:
            first_value, last_value, last_rate, increase = reader.unpack(_COUNTER_VALUES)
        else:
            first_value, last_value, last_rate = reader.unpack(_GAUGE_VALUES)
            increase = last_value - first_value
        sketch = DDSketch._read(reader)
        if reader.position != len(reader.data):
            raise reader.corrupt(f"{len(reader.data) - reader.position} unexpected trailing bytes")
        count = sketch.count + 1 if kind is SeriesKind.COUNTER else sketch.count
        if count < 1:
            raise reader.corrupt("a summary of no sample")
        if (count == 1) != (first_ms == last_ms):
            raise reader.corrupt(f"{count} samples cannot span {last_ms - first_ms} ms")
        return cls(
            kind=kind,
            count=count,
            first_ms=first_ms,
            last_ms=last_ms,
            first_value=first_value,
            last_value=last_value,
            minimum=sketch.min,
            maximum=sketch.max,
            total=sketch.sum,
            increase=increase,
            last_rate=last_rate,
            sketch=sketch,
        )

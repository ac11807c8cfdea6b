"""The embedded time-series store: every series the adapter scrapes, 24 hours deep.

:class:`TimeSeriesStore` keeps :class:`~kubepulse.store.series.Series` by metric name and
labels, with an inverted index (*postings*: for each label name and value, the set of
series that carry it, as in Prometheus' TSDB) so that selecting the hundred pods of one
namespace out of fifty thousand intersects two sets instead of scanning every series.

Time is always passed in (``now_ms``); the store never reads a clock. Memory stays
bounded because:

- each series keeps at most one sample per ``min_interval_ms`` (see
  :mod:`kubepulse.store.series`),
- :meth:`TimeSeriesStore.compact` drops chunks older than the retention, seals heads
  whose chunk window has ended and removes series left empty,
- :meth:`TimeSeriesStore.delete_series` removes the series of a pod that went away.

Not thread-safe: the adapter serialises access (one scrape loop, queries in between).

This module is pure.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from kubepulse.errors import KubepulseValueError
from kubepulse.stats.summary import SeriesKind, WindowSummary
from kubepulse.store.series import AppendOutcome, Series, SeriesSettings, label_pairs_from

__all__ = [
    "METRIC_NAME_LABEL",
    "CompactionResult",
    "LabelMatcher",
    "SeriesHandle",
    "TimeSeriesStore",
]

METRIC_NAME_LABEL = "__name__"
"""The label under which the postings index keeps metric names, as in Prometheus."""

SeriesHandle = Series
"""What :meth:`TimeSeriesStore.select` returns: a series, read through the store."""

LabelMatcher = Callable[[Mapping[str, str]], bool]
"""A predicate over a series' labels (the metric name is not among them)."""

_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS
_APPENDED = AppendOutcome.APPENDED
# The label name_generation() splits by: kubepulse.metricquery.NAMESPACE_LABEL (the
# store sits below the query layer and does not import it).
_NAMESPACE_LABEL = "namespace"


@dataclass(frozen=True, slots=True)
class CompactionResult:
    """What one :meth:`TimeSeriesStore.compact` did.

    Attributes:
        sealed_heads: heads compressed into chunks because their window ended.
        dropped_samples: samples older than the retention that were dropped.
        removed_series: series removed because no sample was left in them.
    """

    sealed_heads: int
    dropped_samples: int
    removed_series: int


class TimeSeriesStore:
    """Series of samples by metric name and labels, compressed, with a retention.

    Args:
        retention_ms: how much history to keep, in milliseconds (default 24 hours). Data
            is dropped a whole chunk at a time, so up to ``chunk_range_ms`` more is held.
        resolution_ms: the scrape interval the store is sized for (default 15 s).
        min_interval_ms: a sample closer than this to a series' newest sample is
            dropped (default: 80 % of ``resolution_ms``, which leaves room for scrape
            jitter while keeping at most one sample per resolution step).
        chunk_range_ms: the aligned window one compressed chunk (and one summary)
            covers (default one hour: 240 samples at 15 s).
        relative_accuracy: relative error of percentiles (default 0.01: within 1 %).

    Raises:
        KubepulseValueError: a setting is not positive, or the chunk range holds more
            samples than a chunk can, or the retention is shorter than a chunk range.
    """

    __slots__ = (
        "_changed_at",
        "_changed_in",
        "_changes",
        "_outcome_counts",
        "_postings",
        "_series",
        "resolution_ms",
        "retention_ms",
        "settings",
    )

    def __init__(
        self,
        *,
        retention_ms: int = _DAY_MS,
        resolution_ms: int = 15_000,
        min_interval_ms: int | None = None,
        chunk_range_ms: int = _HOUR_MS,
        relative_accuracy: float = 0.01,
    ) -> None:
        if resolution_ms <= 0:
            raise KubepulseValueError(
                f"resolution_ms must be positive, got {resolution_ms}; use the scrape "
                "interval in milliseconds, e.g. 15000"
            )
        if retention_ms < chunk_range_ms:
            raise KubepulseValueError(
                f"retention_ms ({retention_ms}) is shorter than one chunk range "
                f"({chunk_range_ms} ms); keep at least one chunk range of history"
            )
        self.retention_ms = retention_ms
        self.resolution_ms = resolution_ms
        self.settings = SeriesSettings(
            chunk_range_ms=chunk_range_ms,
            min_interval_ms=resolution_ms * 4 // 5 if min_interval_ms is None else min_interval_ms,
            relative_accuracy=relative_accuracy,
        )
        self._series: dict[tuple[str, tuple[str, ...]], Series] = {}
        self._postings: dict[str, dict[str, set[Series]]] = {}
        self._outcome_counts = [0] * len(AppendOutcome)
        # Series added or removed so far, and that count when each metric name last had
        # one added or removed, overall and per namespace: what name_generation() reports.
        self._changes = 0
        self._changed_at: dict[str, int] = {}
        self._changed_in: dict[tuple[str, str], int] = {}

    @classmethod
    def like(cls, other: TimeSeriesStore) -> TimeSeriesStore:
        """An empty store with the same settings as ``other``."""
        return cls(
            retention_ms=other.retention_ms,
            resolution_ms=other.resolution_ms,
            min_interval_ms=other.settings.min_interval_ms,
            chunk_range_ms=other.settings.chunk_range_ms,
            relative_accuracy=other.settings.relative_accuracy,
        )

    # ------------------------------------------------------------------ series

    def series(
        self, name: str, labels: Mapping[str, str], kind: SeriesKind = SeriesKind.GAUGE
    ) -> Series:
        """The series ``name{labels}``, created empty if it does not exist yet.

        A scraper keeps the returned handle per exposition line and passes it to
        :meth:`append_many`, which skips this lookup on every later scrape.

        Raises:
            KubepulseValueError: the series exists with another kind (a target changed
                a metric's type: rename the metric, or delete the old series first).
        """
        label_pairs = label_pairs_from(labels)
        key = (name, label_pairs)
        existing = self._series.get(key)
        if existing is not None:
            if existing.kind is not kind:
                raise KubepulseValueError(
                    f"series {existing!r} is a {existing.kind.value}, not a {kind.value}; "
                    "a metric keeps its type: rename it, or delete the old series first"
                )
            return existing
        interned = tuple(map(sys.intern, label_pairs))
        created = Series(sys.intern(name), interned, kind, self.settings)
        self._series[(created.name, interned)] = created
        self._index(created)
        return created

    def _note_change(self, series: Series) -> None:
        """Count ``series`` coming or going, for :meth:`name_generation`."""
        self._changes += 1
        changes = self._changes
        self._changed_at[series.name] = changes
        pairs = series.label_pairs
        for index in range(0, len(pairs), 2):
            if pairs[index] == _NAMESPACE_LABEL:
                self._changed_in[(series.name, pairs[index + 1])] = changes
                break

    def _index(self, series: Series) -> None:
        self._note_change(series)
        postings = self._postings
        for label, value in _index_entries(series):
            postings.setdefault(label, {}).setdefault(value, set()).add(series)

    def _unindex(self, series: Series) -> None:
        self._note_change(series)
        postings = self._postings
        for label, value in _index_entries(series):
            by_value = postings[label]
            members = by_value[value]
            members.discard(series)
            if not members:
                del by_value[value]
                if not by_value:
                    del postings[label]

    def restore_series(
        self,
        name: str,
        labels: Mapping[str, str],
        kind: SeriesKind,
        *,
        chunks: Sequence[bytes],
        head_timestamps_ms: Sequence[int],
        head_values: Sequence[float],
    ) -> Series:
        """Recreate a series from sealed chunks and head samples (loading a snapshot).

        See :meth:`Series.restore` for what is checked. Nothing is added when a check
        fails.

        Raises:
            KubepulseValueError: the series already exists, or the data is inconsistent.
        """
        label_pairs = tuple(map(sys.intern, label_pairs_from(labels)))
        if (name, label_pairs) in self._series:
            raise KubepulseValueError(
                f"series {name}{dict(labels)!r} is restored twice; a snapshot holds each "
                "series once"
            )
        series = Series(sys.intern(name), label_pairs, kind, self.settings)
        series.restore(chunks, head_timestamps_ms, head_values)
        self._series[(series.name, label_pairs)] = series
        self._index(series)
        return series

    # ------------------------------------------------------------------ writing

    def append(
        self,
        name: str,
        labels: Mapping[str, str],
        timestamp_ms: int,
        value: float,
        kind: SeriesKind = SeriesKind.GAUGE,
    ) -> bool:
        """Add one sample to ``name{labels}``, creating the series; ``True`` if stored.

        ``False`` when the sample is refused or dropped (see :attr:`outcome_counts`).
        For a whole scrape, :meth:`series` and :meth:`append_many` are faster.

        Raises:
            KubepulseValueError: the series exists with another kind.
        """
        series = self.series(name, labels, kind)
        outcome = series.append(timestamp_ms, value)
        self._outcome_counts[outcome] += 1
        return outcome is _APPENDED

    def append_many(self, samples: Iterable[tuple[Series, int, float]]) -> int:
        """Add ``(series, timestamp_ms, value)`` samples; return how many were stored.

        Samples for a deleted series are refused and not counted. Refused and dropped
        samples are counted in :attr:`outcome_counts`.
        """
        stored = 0
        outcome_counts = self._outcome_counts
        for series, timestamp_ms, value in samples:
            if series.deleted:
                continue
            outcome = series.append(timestamp_ms, value)
            if outcome is _APPENDED:
                stored += 1
            else:
                outcome_counts[outcome] += 1
        outcome_counts[_APPENDED] += stored
        return stored

    # ------------------------------------------------------------------ selecting

    def select(
        self, name: str, matcher: LabelMatcher | None = None, /, **equals: str
    ) -> list[Series]:
        """The series of metric ``name`` whose labels equal ``equals`` and satisfy ``matcher``.

        Equality filters go through the postings index (an intersection of sets, smallest
        first); ``matcher`` then sees only the series left. Sorted by labels.
        """
        candidates = self._candidates({METRIC_NAME_LABEL: name, **equals})
        if matcher is not None:
            candidates = [series for series in candidates if matcher(series.labels)]
        return sorted(candidates, key=_label_order)

    def _candidates(self, equals: Mapping[str, str]) -> list[Series]:
        postings = self._postings
        member_sets: list[set[Series]] = []
        for label, value in equals.items():
            members = postings.get(label, {}).get(value)
            if not members:
                return []
            member_sets.append(members)
        if not member_sets:
            return list(self._series.values())
        member_sets.sort(key=len)
        smallest, *others = member_sets
        if not others:
            return list(smallest)
        return list(smallest.intersection(*others))

    def name_generation(self, name: str, namespace: str | None = None) -> int:
        """A number that changes whenever a series of metric ``name`` is added or removed.

        With ``namespace``, only series whose ``namespace`` label is ``namespace`` count:
        a pod starting in another namespace leaves it alone. Callers that cache what
        :meth:`select` returned for ``name`` (the adapter's embedded source does, per
        request) compare it to know when to select again: appends never change it, new
        pods and deleted series do. 0 for a name (in that namespace) never seen.
        """
        if namespace is None:
            return self._changed_at.get(name, 0)
        return self._changed_in.get((name, namespace), 0)

    def __iter__(self) -> Iterator[Series]:
        """Every series, in no particular order."""
        return iter(list(self._series.values()))

    def label_values(self, label: str) -> list[str]:
        """Every value ``label`` has on some series, sorted (``__name__`` lists metric names)."""
        return sorted(self._postings.get(label, {}))

    # ------------------------------------------------------------------ reading

    def summary(self, series: Series, start_ms: int, end_ms: int) -> WindowSummary | None:
        """The summary of ``series`` over ``[start_ms, end_ms]``; see :meth:`Series.summary`."""
        return series.summary(start_ms, end_ms)

    def latest(self, series: Series, now_ms: int, max_age_ms: int) -> tuple[int, float] | None:
        """The newest sample of ``series`` if fresh; see :meth:`Series.latest`."""
        return series.latest(now_ms, max_age_ms)

    # ------------------------------------------------------------------ deleting

    def delete_series(self, matcher: LabelMatcher | None = None, /, **equals: str) -> int:
        """Delete every series whose labels equal ``equals`` and satisfy ``matcher``.

        Typically called when a pod goes away: ``delete_series(pod_uid=uid)``, or
        ``delete_series(namespace=namespace, pod=name)``. ``__name__`` may be given
        through ``equals`` to limit the deletion to one metric. Handles to deleted
        series refuse further appends. Returns how many series were deleted.

        Raises:
            KubepulseValueError: neither ``equals`` nor ``matcher`` is given (that
                would delete every series; build a new store instead).
        """
        if matcher is None and not equals:
            raise KubepulseValueError(
                "delete_series() without a label or a matcher would delete every series; "
                "pass e.g. pod_uid=..., or build a new TimeSeriesStore"
            )
        doomed = self._candidates(equals)
        if matcher is not None:
            doomed = [series for series in doomed if matcher(series.labels)]
        for series in doomed:
            self._remove(series)
        return len(doomed)

    def _remove(self, series: Series) -> None:
        del self._series[(series.name, series.label_pairs)]
        self._unindex(series)
        series.deleted = True

    # ------------------------------------------------------------------ housekeeping

    def compact(self, now_ms: int) -> CompactionResult:
        """Apply the retention at ``now_ms``, seal finished heads, remove empty series.

        It also drops the query memos of series not queried since the previous
        compaction. Call it about once a chunk range (it walks every series); queries
        and appends stay correct without it, memory does not.
        """
        cutoff_ms = now_ms - self.retention_ms
        sealed = dropped = 0
        empty: list[Series] = []
        for series in self._series.values():
            series.forget_idle_memos()
            if series.seal_if_window_ended(now_ms):
                sealed += 1
            dropped += series.drop_before(cutoff_ms)
            if series.is_empty:
                empty.append(series)
        for series in empty:
            self._remove(series)
        return CompactionResult(sealed, dropped, len(empty))

    # ------------------------------------------------------------------ measuring

    @property
    def series_count(self) -> int:
        """How many series the store holds."""
        return len(self._series)

    @property
    def sample_count(self) -> int:
        """How many samples the store holds, sealed and in heads (sums over the series)."""
        return sum(series.sample_count for series in self._series.values())

    @property
    def outcome_counts(self) -> dict[AppendOutcome, int]:
        """How many samples met each :class:`AppendOutcome` since the store was made.

        Counts the samples given to :meth:`append` and :meth:`append_many`, not those
        appended on a :class:`Series` directly.
        """
        return {outcome: self._outcome_counts[outcome] for outcome in AppendOutcome}

    def time_range(self) -> tuple[int, int] | None:
        """The oldest and newest timestamp held, ``None`` when empty (walks every series)."""
        oldest: int | None = None
        newest: int | None = None
        for series in self._series.values():
            first_ms = series.first_timestamp_ms
            last_ms = series.last_timestamp_ms
            if first_ms is None or last_ms is None:
                continue
            oldest = first_ms if oldest is None else min(oldest, first_ms)
            newest = last_ms if newest is None else max(newest, last_ms)
        return None if oldest is None or newest is None else (oldest, newest)

    def memory_bytes(self) -> int:
        """An estimate of the bytes the store holds, from :func:`sys.getsizeof`.

        It adds up every chunk, head array, series object and label tuple, the series
        dict and its key tuples, and the postings dicts and sets. It is an estimate:
        ``getsizeof`` does not see allocator overhead or fragmentation, strings shared
        between series (label names and values are interned) are not counted, and
        neither are objects the store shares with its caller. It walks every chunk, so
        it takes a moment on a full store.
        """
        sizeof = sys.getsizeof
        total = sizeof(self._series) + sizeof(self._postings)
        for (_, label_pairs), series in self._series.items():
            total += series.memory_bytes(sizeof) + sizeof((None, label_pairs))
        for by_value in self._postings.values():
            total += sizeof(by_value) + sum(map(sizeof, by_value.values()))
        return total


def _label_order(series: Series) -> tuple[str, tuple[str, ...]]:
    return series.name, series.label_pairs


def _index_entries(series: Series) -> list[tuple[str, str]]:
    """The (label, value) postings entries of ``series``, its metric name included."""
    pairs = series.label_pairs
    return [(METRIC_NAME_LABEL, series.name), *zip(pairs[::2], pairs[1::2], strict=True)]

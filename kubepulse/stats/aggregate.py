"""The statistics the adapter serves over a window, chosen by name (``avg`` ... ``p99``).

:func:`parse_aggregation` reads the name a user writes (the ``kubepulse.io/aggregation``
selector key), :func:`evaluate` answers it from a
:class:`~kubepulse.stats.summary.WindowSummary`, and :func:`exact_evaluate` computes the
same number from raw samples without sketches: the reference the summaries are tested
against, and a way to answer when raw samples are at hand anyway.

What each statistic means:

============  ==========================================  ===================================
name          gauge                                       counter
============  ==========================================  ===================================
``avg``       mean of the values                          increase per second over the span
``min``       smallest value                              smallest per-interval rate
``max``       largest value                               largest per-interval rate
``sum``       sum of the values                           reset-adjusted increase
``last``      last value                                  rate over the last interval
``rate``      (last - first) per second over the span     increase per second over the span
``pNN``       NN-th percentile of the values              NN-th percentile of interval rates
============  ==========================================  ===================================

Percentiles are lower-rank: ``sorted(x)[floor(q * (n - 1))]`` with ``q = NN / 100``
exactly (from summaries, within the sketch's relative accuracy). Counter rates are
reset-aware (a drop means the counter restarted from zero, as in Prometheus). A window
that cannot answer gives ``None``: ``rate`` and a counter's ``avg`` and ``sum`` need two
samples, a counter's ``min``, ``max``, ``last`` and percentiles need one interval.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from kubepulse.errors import KubepulseValueError
from kubepulse.stats.samples import usable_samples

# _per_second is the summaries' own per-second expression: both paths round identically.
from kubepulse.stats.summary import SeriesKind, WindowSummary, _per_second

__all__ = [
    "Aggregation",
    "AggregationKind",
    "evaluate",
    "evaluate_increase",
    "exact_evaluate",
    "needs_increase_only",
    "parse_aggregation",
]


class AggregationKind(enum.Enum):
    """Which statistic; percentiles carry their level in :attr:`Aggregation.percentile`."""

    AVG = "avg"
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    LAST = "last"
    RATE = "rate"
    PERCENTILE = "percentile"


_NAMED_KINDS = {
    kind.value: kind for kind in AggregationKind if kind is not AggregationKind.PERCENTILE
}
# One or two integer digits and up to three decimals: p5, p50, p99.9, p99.999.
_PERCENTILE_PATTERN = re.compile(r"p(\d{1,2}(?:\.\d{1,3})?)")
_ACCEPTED_FORMS = (
    "accepted: avg, min, max, sum, last, rate, or a percentile pNN or pNN.N with "
    "0 < NN < 100 (for example p50, p90, p95, p99, p99.9)"
)


@dataclass(frozen=True, slots=True)
class Aggregation:
    """A statistic to compute over a window.

    Attributes:
        kind: which statistic.
        percentile: for ``PERCENTILE`` only, the level strictly between 0 and 100
            (99.9 for p99.9); ``None`` otherwise.
    """

    kind: AggregationKind
    percentile: float | None = None

    def __post_init__(self) -> None:
        if self.kind is AggregationKind.PERCENTILE:
            if self.percentile is None or not 0.0 < self.percentile < 100.0:
                raise KubepulseValueError(
                    f"a percentile aggregation needs a level strictly between 0 and 100, got "
                    f"{self.percentile!r}; write the 99th percentile as 99"
                )
        elif self.percentile is not None:
            raise KubepulseValueError(
                f"only percentile aggregations take a level, {self.kind.value!r} got "
                f"{self.percentile!r}; leave percentile unset"
            )

    @property
    def quantile(self) -> float | None:
        """The percentile as a quantile in (0, 1) (0.99 for p99); ``None`` for the others."""
        return None if self.percentile is None else self.percentile / 100.0

    @property
    def name(self) -> str:
        """The canonical name, as :func:`parse_aggregation` reads it: ``avg``, ``p99.9``."""
        if self.percentile is None:
            return self.kind.value
        return f"p{self.percentile:g}"

    def __str__(self) -> str:
        return self.name


def parse_aggregation(text: str) -> Aggregation:
    """Read an aggregation name: ``avg min max sum last rate`` or ``pNN`` / ``pNN.N``.

    Case and surrounding spaces are ignored. Percentiles take one or two integer digits
    and up to three decimals, strictly between 0 and 100 (``p0`` and ``p100`` are ``min``
    and ``max``).

    Raises:
        KubepulseValueError: the name is none of these; the message lists the accepted forms.
    """
    name = text.strip().lower()
    named = _NAMED_KINDS.get(name)
    if named is not None:
        return Aggregation(named)
    match = _PERCENTILE_PATTERN.fullmatch(name)
    if match is None:
        raise KubepulseValueError(f"unknown aggregation {text!r}; {_ACCEPTED_FORMS}")
    percentile = float(match.group(1))
    if not 0.0 < percentile < 100.0:
        raise KubepulseValueError(
            f"percentile {text!r} is out of range; {_ACCEPTED_FORMS}, use min or max for "
            "the extremes"
        )
    return Aggregation(AggregationKind.PERCENTILE, percentile)


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def evaluate(aggregation: Aggregation, summary: WindowSummary | None) -> float | None:
    """Answer ``aggregation`` from a window summary; ``None`` when the window cannot.

    ``summary`` may be ``None`` (no sample in the window), which gives ``None``.
    See the module docstring for what each statistic means per series kind.
    """
    if summary is None:
        return None
    kind = aggregation.kind
    is_counter = summary.kind is SeriesKind.COUNTER
    span_ms = summary.last_ms - summary.first_ms
    if kind is AggregationKind.AVG:
        if not is_counter:
            return summary.total / summary.count
        return _per_second(summary.increase, span_ms) if span_ms else None
    if kind is AggregationKind.RATE:
        return _per_second(summary.increase, span_ms) if span_ms else None
    if kind is AggregationKind.MIN:
        return _number(summary.minimum)
    if kind is AggregationKind.MAX:
        return _number(summary.maximum)
    if kind is AggregationKind.SUM:
        if not is_counter:
            return summary.total
        return summary.increase if summary.count > 1 else None
    if kind is AggregationKind.LAST:
        return _number(summary.last_rate) if is_counter else summary.last_value
    quantile = aggregation.quantile
    assert quantile is not None  # a PERCENTILE aggregation always has its level
    return summary.sketch.quantile(quantile)


def needs_increase_only(aggregation: Aggregation, kind: SeriesKind) -> bool:
    """Whether :func:`evaluate` of ``aggregation`` over a ``kind`` series reads only the
    summary's ``increase``, ``first_ms``, ``last_ms`` and ``count``.

    True for ``rate`` and a counter's ``avg`` and ``sum``: the store answers those from
    :meth:`~kubepulse.store.Series.increase`, without a sketch, with
    :func:`evaluate_increase`.
    """
    return aggregation.kind is AggregationKind.RATE or (
        kind is SeriesKind.COUNTER and aggregation.kind in _INCREASE_KINDS
    )


_INCREASE_KINDS = frozenset({AggregationKind.AVG, AggregationKind.SUM})


def evaluate_increase(
    aggregation: Aggregation, increase: float, first_ms: int, last_ms: int, count: int
) -> float | None:
    """:func:`evaluate` for an aggregation :func:`needs_increase_only` accepts, from those four.

    The same expressions as :func:`evaluate`, so both round identically: ``rate`` and a
    counter's ``avg`` are the increase per second over the span (``None`` for one
    sample), a counter's ``sum`` the increase (``None`` for one sample).
    """
    span_ms = last_ms - first_ms
    if aggregation.kind is AggregationKind.SUM:
        return increase if count > 1 else None
    return _per_second(increase, span_ms) if span_ms else None


def exact_evaluate(
    aggregation: Aggregation,
    kind: SeriesKind,
    timestamps_ms: Sequence[int],
    values: Sequence[float],
) -> float | None:
    """Answer ``aggregation`` exactly from raw samples, without sketches.

    The same definitions as :func:`evaluate` (NaN samples skipped, counter resets
    handled), with exact lower-rank percentiles and correctly rounded sums. It sorts,
    so it costs ``O(n log n)``; prefer summaries for long windows served repeatedly.

    Raises:
        KubepulseValueError: the sequences differ in length, timestamps are not strictly
            increasing, or a value is infinite.
    """
    samples = usable_samples(timestamps_ms, values)
    if not samples:
        return None
    first_ms, first_value = samples[0]
    last_ms, last_value = samples[-1]
    span_ms = last_ms - first_ms
    observed: list[float]  # what min, max and percentiles are over
    if kind is SeriesKind.COUNTER:
        increases = [
            value - previous if value >= previous else value
            for (_, previous), (_, value) in pairwise(samples)
        ]
        observed = [
            _per_second(increase, stamp - previous_stamp)
            for increase, ((previous_stamp, _), (stamp, _)) in zip(
                increases, pairwise(samples), strict=True
            )
        ]
        increase = math.fsum(increases)
    else:
        observed = [value for _, value in samples]
        increase = last_value - first_value

    aggregation_kind = aggregation.kind
    if aggregation_kind is AggregationKind.AVG and kind is SeriesKind.GAUGE:
        return math.fsum(observed) / len(observed)
    if aggregation_kind in (AggregationKind.AVG, AggregationKind.RATE):
        return _per_second(increase, span_ms) if span_ms else None
    if aggregation_kind is AggregationKind.SUM:
        if kind is SeriesKind.GAUGE:
            return math.fsum(observed)
        return increase if span_ms else None
    if aggregation_kind is AggregationKind.LAST and kind is SeriesKind.GAUGE:
        return last_value
    if not observed:  # a counter with one sample has no interval
        return None
    if aggregation_kind is AggregationKind.MIN:
        return min(observed)
    if aggregation_kind is AggregationKind.MAX:
        return max(observed)
    if aggregation_kind is AggregationKind.LAST:
        return observed[-1]
    quantile = aggregation.quantile
    assert quantile is not None  # a PERCENTILE aggregation always has its level
    return sorted(observed)[math.floor(quantile * (len(observed) - 1))]

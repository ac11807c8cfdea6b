"""Raw samples as the statistics take them: checked, with NaN gaps dropped."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

from kubepulse.errors import KubepulseValueError

__all__ = ["usable_samples"]


def usable_samples(
    timestamps_ms: Sequence[int], values: Sequence[float]
) -> list[tuple[int, float]]:
    """The ``(timestamp, value)`` pairs with NaN values dropped, after checking them.

    Raises:
        KubepulseValueError: the sequences differ in length, timestamps are not strictly
            increasing, or a value is infinite.
    """
    if len(timestamps_ms) != len(values):
        raise KubepulseValueError(
            f"got {len(timestamps_ms)} timestamps but {len(values)} values; pass one "
            "timestamp per value"
        )
    if any(later <= earlier for earlier, later in pairwise(timestamps_ms)):
        raise KubepulseValueError(
            "timestamps must be strictly increasing; sort the samples by time and drop "
            "duplicate timestamps first"
        )
    kept = [
        (stamp, value)
        for stamp, value in zip(timestamps_ms, values, strict=True)
        if not math.isnan(value)
    ]
    if any(math.isinf(value) for _, value in kept):
        raise KubepulseValueError(
            "samples must be finite or NaN; drop infinite samples (or clamp them) first"
        )
    return kept

"""Statistics over samples: sketches, window summaries, aggregations and forecasts.

- :mod:`kubepulse.stats.sketch`: :class:`DDSketch`, a mergeable quantile sketch with a
  relative-error guarantee.
- :mod:`kubepulse.stats.summary`: :class:`WindowSummary`, what a series did over a
  window, mergeable in time order (gauges and reset-aware counters).
- :mod:`kubepulse.stats.aggregate`: ``avg min max sum last rate pNN`` by name, from
  summaries (:func:`evaluate`) or exactly from raw samples (:func:`exact_evaluate`).
- :mod:`kubepulse.stats.forecast`: least-squares and Holt forecasts with prediction
  intervals.

Pure: these modules take samples and return numbers; they read no clock, file or network.
"""

from __future__ import annotations

from kubepulse.stats.aggregate import (
    Aggregation,
    AggregationKind,
    evaluate,
    exact_evaluate,
    parse_aggregation,
)
from kubepulse.stats.forecast import (
    MAX_HOLT_GRID_POINTS,
    Forecast,
    InsufficientDataError,
    forecast_holt,
    forecast_linear,
    student_t_quantile,
)
from kubepulse.stats.sketch import MIN_RELATIVE_ACCURACY, DDSketch
from kubepulse.stats.summary import SeriesKind, WindowSummary

__all__ = [
    "MAX_HOLT_GRID_POINTS",
    "MIN_RELATIVE_ACCURACY",
    "Aggregation",
    "AggregationKind",
    "DDSketch",
    "Forecast",
    "InsufficientDataError",
    "SeriesKind",
    "WindowSummary",
    "evaluate",
    "exact_evaluate",
    "forecast_holt",
    "forecast_linear",
    "parse_aggregation",
    "student_t_quantile",
]

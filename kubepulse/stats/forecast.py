"""Trend forecasts with prediction intervals: least-squares lines and Holt's linear method.

Both models take raw samples (integer millisecond timestamps, float values; NaN samples
are dropped) and a horizon, and return a :class:`Forecast` for ``last timestamp +
horizon``: a point value, a prediction interval for the value that will be observed
then, and how well the model fitted the past (``fit_rmse``).

- :func:`forecast_linear`: ordinary least squares on (time, value), with the classical
  Student-t prediction interval. Good for steady growth (memory leaks, disk fill).
- :func:`forecast_holt`: Holt's linear (double exponential) smoothing on a regular grid,
  with the ETS(A,A,N) prediction interval. It follows changes of trend, weighting recent
  samples more.

The Student-t quantile is computed here (:func:`student_t_quantile`) from the
regularized incomplete beta function, as the standard library has none.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from types import MappingProxyType

from kubepulse.errors import KubepulseValueError
from kubepulse.stats.samples import usable_samples

__all__ = [
    "MAX_HOLT_GRID_POINTS",
    "Forecast",
    "InsufficientDataError",
    "forecast_holt",
    "forecast_linear",
    "student_t_quantile",
]

MAX_HOLT_GRID_POINTS = 2000
"""The most points :func:`forecast_holt` resamples onto; the step widens to stay below.

Fitting costs about 130 passes over the grid, so this bounds the time of a fit (tens of
milliseconds) whatever the spacing of the input.
"""

_LINEAR_MINIMUM_SAMPLES = 2
_HOLT_MINIMUM_SAMPLES = 3

# Holt's fitted smoothing parameters stay inside these bounds: at 0 a component never
# updates and at 1 it forgets everything, both degenerate for forecasting.
_FIT_LOWER_BOUND = 0.01
_FIT_UPPER_BOUND = 0.99
_COARSE_GRID = tuple(i / 10 for i in range(1, 10))  # 0.1 ... 0.9
_REFINE_FIRST_STEP = 0.05
_REFINE_LAST_STEP = 0.001


class InsufficientDataError(KubepulseValueError):
    """Too few usable (non-NaN) samples to fit a model.

    Attributes:
        model: ``"linear"`` or ``"holt"``.
        given: how many usable samples there were.
        needed: how many the model needs at least.
    """

    def __init__(self, model: str, given: int, needed: int) -> None:
        self.model = model
        self.given = given
        self.needed = needed
        noun = "sample" if given == 1 else "samples"
        super().__init__(
            f"the {model} forecast needs at least {needed} usable samples, given {given} "
            f"usable {noun} (NaN samples are dropped); widen the window or wait for more "
            "samples"
        )


@dataclass(frozen=True)
class Forecast:
    """A forecast of a series' value at ``target_ms``.

    Attributes:
        model: ``"linear"`` or ``"holt"``.
        value: the point forecast at ``target_ms``.
        lower: lower end of the prediction interval for the value observed at the target.
        upper: upper end; ``lower`` and ``upper`` are infinite when the fit leaves no
            degree of freedom to estimate the error (a line through two samples).
        confidence: the interval's coverage probability, e.g. 0.95.
        fit_rmse: root mean squared error of the fit on the samples: in-sample residuals
            for the line, one-step-ahead errors on the resampled grid for Holt.
        horizon_ms: how far past the last usable sample the target is.
        target_ms: the timestamp forecast, last usable sample + ``horizon_ms``.
        sample_count: how many usable (non-NaN) samples the model was fitted on.
        parameters: the fitted model. Linear: ``slope`` (per second), ``intercept``
            (fitted value at ``origin_ms``), ``origin_ms`` (first usable sample),
            ``residual_stddev``, ``t_quantile``. Holt: ``alpha``, ``beta`` (the
            trend smoothing ``beta*``), ``level`` and ``trend`` (per step) at the last
            grid point, ``trend_per_second``, ``step_ms``, ``grid_points``,
            ``horizon_steps`` (used for the interval), ``z_quantile``.
    """

    model: str
    value: float
    lower: float
    upper: float
    confidence: float
    fit_rmse: float
    horizon_ms: int
    target_ms: int
    sample_count: int
    parameters: Mapping[str, float]


# ---------------------------------------------------------------------- Student t


def _regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """``I_x(a, b)``, the regularized incomplete beta function, for ``0 <= x <= 1``.

    Uses the continued fraction ``I_x(a, b) = x^a (1-x)^b / (a B(a, b)) / (1 + d1 / (1 +
    d2 / (1 + ...)))`` with ``d_{2m+1} = -(a+m)(a+b+m) x / ((a+2m)(a+2m+1))`` and
    ``d_{2m} = m (b-m) x / ((a+2m-1)(a+2m))`` (DLMF 8.17.22), which converges fast for
    ``x < (a + 1) / (a + b + 2)``; above that, the symmetry
    ``I_x(a, b) = 1 - I_{1-x}(b, a)`` brings ``x`` back under the threshold. The fraction
    is evaluated with the modified Lentz method.
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _regularized_incomplete_beta(1.0 - x, b, a)
    log_prefix = (
        a * math.log(x) + b * math.log1p(-x) + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    )
    tiny = 1e-300  # stands in for a zero denominator, as Lentz's method prescribes
    # Lentz for f = 1 + d1 / (1 + d2 / (1 + ...)): every partial denominator is 1.
    fraction = 1.0
    ratio_c = 1.0
    ratio_d = 0.0
    for term_number in range(1, 20_000):
        m = term_number // 2
        if term_number % 2:
            coefficient = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0))
        else:
            coefficient = m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m))
        ratio_d = 1.0 + coefficient * ratio_d
        ratio_d = 1.0 / (ratio_d if abs(ratio_d) > tiny else tiny)
        ratio_c = 1.0 + coefficient / ratio_c
        if abs(ratio_c) < tiny:
            ratio_c = tiny
        change = ratio_c * ratio_d
        fraction *= change
        if abs(change - 1.0) < 1e-15:
            break
    return math.exp(log_prefix) / (a * fraction)


def _student_t_upper_tail(t: float, degrees_of_freedom: float) -> float:
    """``P(T > t)`` for ``t >= 0``: half of ``I_{v / (v + t^2)}(v / 2, 1 / 2)``."""
    x = degrees_of_freedom / (degrees_of_freedom + t * t)
    return 0.5 * _regularized_incomplete_beta(x, degrees_of_freedom / 2.0, 0.5)


def _student_t_density(t: float, degrees_of_freedom: float) -> float:
    v = degrees_of_freedom
    log_density = (
        math.lgamma((v + 1.0) / 2.0)
        - math.lgamma(v / 2.0)
        - 0.5 * math.log(v * math.pi)
        - (v + 1.0) / 2.0 * math.log1p(t * t / v)
    )
    return math.exp(log_density)


@lru_cache(maxsize=256)
def student_t_quantile(probability: float, degrees_of_freedom: float) -> float:
    """The ``probability`` quantile of Student's t distribution with the given degrees of freedom.

    For example ``student_t_quantile(0.975, 10)`` is 2.2281..., the multiplier of a
    two-sided 95% interval. Infinite degrees of freedom give the normal quantile.
    Accurate to about 1e-12 relative: Newton's method on the upper tail, kept inside a
    bisection bracket.

    Raises:
        KubepulseValueError: ``probability`` is not strictly between 0 and 1, or the
            degrees of freedom are not positive.
    """
    if not 0.0 < probability < 1.0:
        raise KubepulseValueError(
            f"probability must be strictly between 0 and 1, got {probability!r}; a 95% "
            "two-sided interval uses 0.975"
        )
    if not degrees_of_freedom > 0.0:
        raise KubepulseValueError(
            f"degrees of freedom must be positive, got {degrees_of_freedom!r}; a fit of n "
            "samples with k parameters has n - k"
        )
    if math.isinf(degrees_of_freedom):
        return statistics.NormalDist().inv_cdf(probability)
    if probability < 0.5:
        return -student_t_quantile(1.0 - probability, degrees_of_freedom)
    if probability == 0.5:
        return 0.0
    target_tail = 1.0 - probability
    # Bracket the root of tail(t) - target_tail, which decreases in t.
    low = 0.0
    high = max(1.0, 2.0 * statistics.NormalDist().inv_cdf(probability))
    while _student_t_upper_tail(high, degrees_of_freedom) > target_tail:
        low = high
        high *= 2.0
    t = 0.5 * (low + high)
    for _ in range(200):
        excess = _student_t_upper_tail(t, degrees_of_freedom) - target_tail
        if excess > 0.0:
            low = t
        else:
            high = t
        # Newton: the tail's derivative is minus the density.
        candidate = t + excess / _student_t_density(t, degrees_of_freedom)
        if not low < candidate < high:
            candidate = 0.5 * (low + high)
        if abs(candidate - t) <= 1e-13 * max(1.0, t):
            return candidate
        t = candidate
    return t


# ---------------------------------------------------------------------- shared checks


def _usable_samples(
    model: str,
    timestamps_ms: Sequence[int],
    values: Sequence[float],
    *,
    horizon_ms: int,
    confidence: float,
    minimum_samples: int,
) -> tuple[list[int], list[float]]:
    """Validate the arguments; return the samples with NaN values dropped."""
    if horizon_ms < 0:
        raise KubepulseValueError(
            f"horizon must be zero or more milliseconds, got {horizon_ms}; forecasts look "
            "ahead of the last sample"
        )
    if not 0.0 < confidence < 1.0:
        raise KubepulseValueError(
            f"confidence must be strictly between 0 and 1, got {confidence!r}; use 0.95 "
            "for a 95% prediction interval"
        )
    kept = usable_samples(timestamps_ms, values)
    if len(kept) < minimum_samples:
        raise InsufficientDataError(model, len(kept), minimum_samples)
    return [stamp for stamp, _ in kept], [value for _, value in kept]


# ---------------------------------------------------------------------- linear


def forecast_linear(
    timestamps_ms: Sequence[int],
    values: Sequence[float],
    horizon_ms: int,
    *,
    confidence: float = 0.95,
) -> Forecast:
    """Fit a least-squares line and forecast it ``horizon_ms`` past the last sample.

    Time is measured in seconds from the first usable sample and centred on its mean
    before fitting, so millisecond epoch timestamps lose no precision. The interval is
    the classical prediction interval for a new observation,
    ``value ± t(1 - (1 - confidence) / 2, n - 2) · s · sqrt(1 + 1/n + (x0 - mean x)² / Sxx)``
    with ``s² = SSE / (n - 2)``. With exactly two samples the line fits perfectly and
    leaves nothing to estimate ``s`` from: the interval is then infinite.

    Raises:
        InsufficientDataError: fewer than 2 usable (non-NaN) samples.
        KubepulseValueError: mismatched lengths, timestamps not strictly increasing,
            infinite values, a negative horizon or a confidence outside (0, 1).
    """
    stamps, points = _usable_samples(
        "linear",
        timestamps_ms,
        values,
        horizon_ms=horizon_ms,
        confidence=confidence,
        minimum_samples=_LINEAR_MINIMUM_SAMPLES,
    )
    count = len(points)
    origin_ms = stamps[0]
    seconds = [(stamp - origin_ms) / 1000.0 for stamp in stamps]
    mean_seconds = math.fsum(seconds) / count
    mean_value = math.fsum(points) / count
    centred = [second - mean_seconds for second in seconds]
    spread = math.fsum(c * c for c in centred)  # Sxx > 0: timestamps are distinct
    slope = math.fsum(c * (v - mean_value) for c, v in zip(centred, points, strict=True)) / spread
    residuals = [value - (mean_value + slope * c) for c, value in zip(centred, points, strict=True)]
    squared_error = math.fsum(r * r for r in residuals)
    target_ms = stamps[-1] + horizon_ms
    target_offset = (target_ms - origin_ms) / 1000.0 - mean_seconds
    value = mean_value + slope * target_offset
    degrees_of_freedom = count - 2
    if degrees_of_freedom > 0:
        residual_stddev = math.sqrt(squared_error / degrees_of_freedom)
        t_quantile = student_t_quantile(0.5 + confidence / 2.0, degrees_of_freedom)
        half_width = (
            t_quantile
            * residual_stddev
            * math.sqrt(1.0 + 1.0 / count + target_offset * target_offset / spread)
        )
        lower, upper = value - half_width, value + half_width
    else:
        residual_stddev = t_quantile = math.nan
        lower, upper = -math.inf, math.inf
    return Forecast(
        model="linear",
        value=value,
        lower=lower,
        upper=upper,
        confidence=confidence,
        fit_rmse=math.sqrt(squared_error / count),
        horizon_ms=horizon_ms,
        target_ms=target_ms,
        sample_count=count,
        parameters=MappingProxyType(
            {
                "slope": slope,
                "intercept": mean_value - slope * mean_seconds,
                "origin_ms": float(origin_ms),
                "residual_stddev": residual_stddev,
                "t_quantile": t_quantile,
            }
        ),
    )


# ---------------------------------------------------------------------- Holt


def _resample(stamps: list[int], points: list[float]) -> tuple[list[float], int]:
    """Values on a regular grid ending at the last sample, and the grid step in ms.

    The step is the median spacing of the samples (rounded down to whole ms), widened
    if the grid would exceed :data:`MAX_HOLT_GRID_POINTS`. Grid points go back from the
    last sample, so the newest value is used as is; between samples, including across
    gaps, values are interpolated linearly.
    """
    span_ms = stamps[-1] - stamps[0]
    spacings = [later - earlier for earlier, later in pairwise(stamps)]
    step_ms = max(1, math.floor(statistics.median(spacings)))
    if span_ms // step_ms + 1 > MAX_HOLT_GRID_POINTS:
        step_ms = -(-span_ms // (MAX_HOLT_GRID_POINTS - 1))
    grid_size = span_ms // step_ms + 1
    first_grid_ms = stamps[-1] - (grid_size - 1) * step_ms
    resampled = []
    right = 1  # stamps[right - 1] <= grid time <= stamps[right]
    for position in range(grid_size):
        grid_ms = first_grid_ms + position * step_ms
        while stamps[right] < grid_ms:
            right += 1
        left_ms, right_ms = stamps[right - 1], stamps[right]
        weight = (grid_ms - left_ms) / (right_ms - left_ms)
        resampled.append(points[right - 1] + weight * (points[right] - points[right - 1]))
    return resampled, step_ms


def _holt_pass(grid: Sequence[float], alpha: float, beta: float) -> tuple[float, float, float]:
    """Run Holt's recursions; return the final level, trend and one-step squared error sum.

    Component form (Hyndman & Athanasopoulos, FPP3 section 8.2), with the level started
    at the second value and the trend at the first difference, so one-step errors start
    at the third value:
    ``level_t = alpha y_t + (1 - alpha)(level_{t-1} + trend_{t-1})``,
    ``trend_t = beta (level_t - level_{t-1}) + (1 - beta) trend_{t-1}``.
    """
    level = grid[1]
    trend = grid[1] - grid[0]
    squared_error = 0.0
    keep_level = 1.0 - alpha
    keep_trend = 1.0 - beta
    for observed in grid[2:]:
        predicted = level + trend
        error = observed - predicted
        squared_error += error * error
        new_level = alpha * observed + keep_level * predicted
        trend = beta * (new_level - level) + keep_trend * trend
        level = new_level
    return level, trend, squared_error


def _clamp_fitted(value: float) -> float:
    return min(max(value, _FIT_LOWER_BOUND), _FIT_UPPER_BOUND)


def _fit_smoothing(
    grid: Sequence[float], alpha: float | None, beta: float | None
) -> tuple[float, float]:
    """The (alpha, beta) minimising the one-step squared error; given values stay fixed.

    A coarse search over 0.1, 0.2, ..., 0.9 for each free parameter, then a pattern
    search from the best point: try moving each free parameter up and down by a step,
    take any improvement, halve the step when none helps, from 0.05 down to 0.001.
    Fitted values stay within [0.01, 0.99]. Ties keep the earlier (smaller) candidate.
    """
    alphas = _COARSE_GRID if alpha is None else (alpha,)
    betas = _COARSE_GRID if beta is None else (beta,)
    best_error = math.inf
    best_alpha, best_beta = alphas[0], betas[0]
    for candidate_alpha in alphas:
        for candidate_beta in betas:
            error = _holt_pass(grid, candidate_alpha, candidate_beta)[2]
            if error < best_error:
                best_error, best_alpha, best_beta = error, candidate_alpha, candidate_beta
    moves = [(1, 0), (-1, 0)] if alpha is None else []
    if beta is None:
        moves += [(0, 1), (0, -1)]
    step = _REFINE_FIRST_STEP
    while moves and step >= _REFINE_LAST_STEP:
        improved = False
        for alpha_move, beta_move in moves:
            candidate_alpha = min(
                max(best_alpha + alpha_move * step, _FIT_LOWER_BOUND), _FIT_UPPER_BOUND
            )
            candidate_beta = min(
                max(best_beta + beta_move * step, _FIT_LOWER_BOUND), _FIT_UPPER_BOUND
            )
            error = _holt_pass(grid, candidate_alpha, candidate_beta)[2]
            if error < best_error:
                best_error, best_alpha, best_beta = error, candidate_alpha, candidate_beta
                improved = True
        if not improved:
            step /= 2.0
    return best_alpha, best_beta


def _check_smoothing(name: str, value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise KubepulseValueError(
            f"{name} must be between 0 and 1, got {value!r}; leave it unset to fit it to the data"
        )


def forecast_holt(
    timestamps_ms: Sequence[int],
    values: Sequence[float],
    horizon_ms: int,
    *,
    alpha: float | None = None,
    beta: float | None = None,
    confidence: float = 0.95,
) -> Forecast:
    """Forecast with Holt's linear (double exponential) smoothing.

    The samples are first resampled onto a regular grid: the step is the median spacing
    (whole milliseconds, widened to keep at most :data:`MAX_HOLT_GRID_POINTS` points),
    the grid ends exactly at the last sample, and values between samples, gaps
    included, are linearly interpolated. ``alpha`` (level) and ``beta`` (trend, the
    ``beta*`` of Hyndman & Athanasopoulos) are fitted when not given by minimising the
    in-sample one-step-ahead squared error (coarse grid, then pattern search; see
    ``_fit_smoothing``).

    The point forecast follows the fitted trend to the exact target,
    ``level + trend * horizon_ms / step_ms``. The interval uses the ETS(A,A,N) forecast
    variance at ``h = ceil(horizon_ms / step_ms)`` steps (at least 1, so a zero horizon
    gets the next observation's interval), with normal quantiles as in Hyndman's ETS
    intervals and the residual variance taken as the mean squared one-step error.

    Raises:
        InsufficientDataError: fewer than 3 usable (non-NaN) samples.
        KubepulseValueError: mismatched lengths, timestamps not strictly increasing,
            infinite values, a negative horizon, a confidence outside (0, 1), or
            ``alpha`` / ``beta`` outside [0, 1].
    """
    _check_smoothing("alpha", alpha)
    _check_smoothing("beta", beta)
    stamps, points = _usable_samples(
        "holt",
        timestamps_ms,
        values,
        horizon_ms=horizon_ms,
        confidence=confidence,
        minimum_samples=_HOLT_MINIMUM_SAMPLES,
    )
    grid, step_ms = _resample(stamps, points)
    fitted_alpha, fitted_beta = _fit_smoothing(grid, alpha, beta)
    level, trend, squared_error = _holt_pass(grid, fitted_alpha, fitted_beta)
    residual_variance = squared_error / (len(grid) - 2)  # one error per grid point after two
    steps_exact = horizon_ms / step_ms
    value = level + trend * steps_exact
    steps = max(1, math.ceil(steps_exact))
    # Forecast variance of ETS(A,A,N), the model behind Holt's method (Hyndman &
    # Athanasopoulos, "Forecasting: Principles and Practice", 3rd ed., section 8.7,
    # Table 8.8): sigma_h^2 = sigma^2 [1 + (h - 1)(a^2 + a b h + b^2 h (2h - 1) / 6)],
    # where b is the state-space trend gain, alpha * beta* in the component form used
    # here (FPP3 section 8.5). It equals sigma^2 [1 + sum_{j=1}^{h-1} (a + b j)^2].
    trend_gain = fitted_alpha * fitted_beta
    variance_factor = 1.0 + (steps - 1) * (
        fitted_alpha**2
        + fitted_alpha * trend_gain * steps
        + trend_gain**2 * steps * (2 * steps - 1) / 6.0
    )
    z_quantile = statistics.NormalDist().inv_cdf(0.5 + confidence / 2.0)
    half_width = z_quantile * math.sqrt(residual_variance * variance_factor)
    return Forecast(
        model="holt",
        value=value,
        lower=value - half_width,
        upper=value + half_width,
        confidence=confidence,
        fit_rmse=math.sqrt(residual_variance),
        horizon_ms=horizon_ms,
        target_ms=stamps[-1] + horizon_ms,
        sample_count=len(points),
        parameters=MappingProxyType(
            {
                "alpha": fitted_alpha,
                "beta": fitted_beta,
                "level": level,
                "trend": trend,
                "trend_per_second": trend * 1000.0 / step_ms,
                "step_ms": float(step_ms),
                "grid_points": float(len(grid)),
                "horizon_steps": float(steps),
                "z_quantile": z_quantile,
            }
        ),
    )

"""Forecasts: Student-t quantiles, least-squares lines, Holt's method and their intervals."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from kubepulse.errors import KubepulseValueError
from kubepulse.stats.forecast import (
    MAX_HOLT_GRID_POINTS,
    InsufficientDataError,
    forecast_holt,
    forecast_linear,
    student_t_quantile,
)

START_MS = 1_700_000_000_000

# ---------------------------------------------------------------------- Student t


@pytest.mark.parametrize(
    ("probability", "degrees_of_freedom", "table_value"),
    [
        (0.975, 1, 12.706),
        (0.975, 2, 4.303),
        (0.975, 5, 2.571),
        (0.975, 10, 2.228),
        (0.975, 30, 2.042),
        (0.95, 5, 2.015),
        (0.995, 2, 9.925),
        (0.9, 20, 1.325),
        (0.999, 3, 10.215),
        (0.6, 4, 0.271),
    ],
)
def test_student_t_quantile_matches_printed_tables(
    probability: float, degrees_of_freedom: int, table_value: float
) -> None:
    # Tables print three decimals.
    assert student_t_quantile(probability, degrees_of_freedom) == pytest.approx(
        table_value, abs=5e-4
    )


@pytest.mark.parametrize("probability", [0.5001, 0.6, 0.75, 0.9, 0.975, 0.999, 0.999999])
def test_student_t_quantile_matches_closed_forms_for_one_and_two_degrees(
    probability: float,
) -> None:
    # df = 1 is the Cauchy distribution; df = 2 has t = (2p - 1) / sqrt(2 p (1 - p)).
    cauchy = math.tan(math.pi * (probability - 0.5))
    two = (2 * probability - 1) / math.sqrt(2 * probability * (1 - probability))
    assert student_t_quantile(probability, 1) == pytest.approx(cauchy, rel=1e-10)
    assert student_t_quantile(probability, 2) == pytest.approx(two, rel=1e-10)
    # Symmetry.
    assert student_t_quantile(1 - probability, 7) == pytest.approx(
        -student_t_quantile(probability, 7), rel=1e-12
    )


def test_student_t_quantile_tends_to_the_normal() -> None:
    normal = statistics.NormalDist().inv_cdf(0.975)
    assert normal == pytest.approx(1.959964, abs=1e-6)
    assert student_t_quantile(0.975, math.inf) == normal
    assert student_t_quantile(0.975, 1e7) == pytest.approx(normal, rel=1e-6)
    assert student_t_quantile(0.5, 3) == 0.0
    # Quantiles fall towards the normal as the degrees of freedom grow.
    sequence = [student_t_quantile(0.975, df) for df in (1, 2, 5, 30, 1000)]
    assert sequence == sorted(sequence, reverse=True)
    assert sequence[-1] > normal


@pytest.mark.parametrize(
    ("probability", "degrees_of_freedom", "message"),
    [
        (0.0, 3, "probability"),
        (1.0, 3, "probability"),
        (math.nan, 3, "probability"),
        (0.9, 0, "degrees of freedom"),
        (0.9, -2, "degrees of freedom"),
    ],
)
def test_student_t_quantile_rejects_bad_arguments(
    probability: float, degrees_of_freedom: float, message: str
) -> None:
    with pytest.raises(KubepulseValueError, match=message):
        student_t_quantile(probability, degrees_of_freedom)


# ---------------------------------------------------------------------- linear


def reference_least_squares(seconds: list[float], values: list[float]) -> tuple[float, float]:
    """Slope and intercept from the textbook normal equations, without centring."""
    n = len(seconds)
    sum_x = math.fsum(seconds)
    sum_y = math.fsum(values)
    sum_xx = math.fsum(x * x for x in seconds)
    sum_xy = math.fsum(x * y for x, y in zip(seconds, values, strict=True))
    slope = (n * sum_xy - sum_x * sum_y) / (n * sum_xx - sum_x * sum_x)
    return slope, (sum_y - slope * sum_x) / n


@pytest.mark.parametrize(
    ("slope", "intercept", "spacing_ms"),
    [(0.01, 3.0, 15_000), (-2.5, 1e6, 1_000), (0.0, 42.0, 60_000), (1e-6, -7.0, 30_000)],
)
def test_linear_recovers_an_exact_line(slope: float, intercept: float, spacing_ms: int) -> None:
    timestamps = [START_MS + spacing_ms * i for i in range(50)]
    values = [intercept + slope * (t - START_MS) / 1000 for t in timestamps]
    horizon_ms = 300_000
    forecast = forecast_linear(timestamps, values, horizon_ms)

    expected = intercept + slope * (timestamps[-1] + horizon_ms - START_MS) / 1000
    scale = max(abs(intercept), abs(expected), 1.0)
    assert forecast.model == "linear"
    assert forecast.parameters["slope"] == pytest.approx(slope, rel=1e-9, abs=1e-12)
    assert forecast.parameters["intercept"] == pytest.approx(intercept, rel=1e-9)
    assert forecast.parameters["origin_ms"] == START_MS
    assert forecast.value == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert forecast.upper - forecast.lower <= 1e-9 * scale  # no error to widen it
    assert forecast.lower <= forecast.value <= forecast.upper
    assert forecast.fit_rmse <= 1e-10 * scale
    assert forecast.target_ms == timestamps[-1] + horizon_ms
    assert (forecast.horizon_ms, forecast.sample_count, forecast.confidence) == (
        horizon_ms,
        50,
        0.95,
    )


def test_linear_interval_matches_the_textbook_formula() -> None:
    rng = random.Random(12)
    seconds = [float(15 * i) for i in range(12)]  # 12 samples: 10 degrees of freedom
    values = [5.0 + 0.2 * x + rng.gauss(0.0, 1.5) for x in seconds]
    timestamps = [START_MS + int(1000 * x) for x in seconds]
    forecast = forecast_linear(timestamps, values, 60_000, confidence=0.95)

    slope, intercept = reference_least_squares(seconds, values)
    x0 = seconds[-1] + 60.0
    mean_x = statistics.fmean(seconds)
    residuals = [y - (intercept + slope * x) for x, y in zip(seconds, values, strict=True)]
    s = math.sqrt(math.fsum(r * r for r in residuals) / 10)
    sxx = math.fsum((x - mean_x) ** 2 for x in seconds)
    half_width = 2.228138852 * s * math.sqrt(1 + 1 / 12 + (x0 - mean_x) ** 2 / sxx)
    value = intercept + slope * x0

    assert forecast.parameters["slope"] == pytest.approx(slope, rel=1e-9)
    assert forecast.parameters["intercept"] == pytest.approx(intercept, rel=1e-9)
    assert forecast.value == pytest.approx(value, rel=1e-9)
    assert forecast.lower == pytest.approx(value - half_width, rel=1e-8)
    assert forecast.upper == pytest.approx(value + half_width, rel=1e-8)
    assert forecast.fit_rmse == pytest.approx(
        math.sqrt(math.fsum(r * r for r in residuals) / 12), rel=1e-9
    )


def test_linear_interval_covers_new_observations_at_the_stated_rate() -> None:
    rng = random.Random(2024)
    trials = 200
    covered = 0
    for _ in range(trials):
        slope = rng.uniform(-1.0, 1.0)
        intercept = rng.uniform(-100.0, 100.0)
        noise = rng.uniform(0.1, 5.0)
        count = rng.randint(8, 60)
        timestamps = sorted(rng.sample(range(START_MS, START_MS + 3_600_000, 1000), count))
        values = [
            intercept + slope * (t - START_MS) / 1000 + rng.gauss(0.0, noise) for t in timestamps
        ]
        forecast = forecast_linear(timestamps, values, 600_000)
        observed = intercept + slope * (forecast.target_ms - START_MS) / 1000
        observed += rng.gauss(0.0, noise)
        covered += forecast.lower <= observed <= forecast.upper
    # 95% intervals: about 190 of 200; 180 to 199 is over three standard deviations wide.
    assert 0.90 * trials <= covered < trials


def test_linear_with_two_samples_has_an_unbounded_interval() -> None:
    forecast = forecast_linear([START_MS, START_MS + 10_000], [1.0, 2.0], 10_000)
    assert forecast.value == pytest.approx(3.0)
    assert forecast.lower == -math.inf
    assert forecast.upper == math.inf
    assert forecast.fit_rmse == 0.0
    assert math.isnan(forecast.parameters["residual_stddev"])


def test_linear_drops_nan_samples() -> None:
    timestamps = [START_MS + 1000 * i for i in range(6)]
    values = [0.0, math.nan, 2.0, 3.0, math.nan, 5.0]
    forecast = forecast_linear(timestamps, values, 0)
    assert forecast.sample_count == 4
    assert forecast.parameters["slope"] == pytest.approx(1.0)
    assert forecast.value == pytest.approx(5.0)
    assert forecast.target_ms == timestamps[-1]


# ---------------------------------------------------------------------- Holt


def reference_holt(values: list[float], alpha: float, beta: float) -> tuple[float, float, float]:
    """Holt's recursions written out plainly: final level, trend and one-step SSE."""
    level = values[1]
    trend = values[1] - values[0]
    sse = 0.0
    for t in range(2, len(values)):
        forecast = level + trend
        sse += (values[t] - forecast) ** 2
        previous_level = level
        level = alpha * values[t] + (1 - alpha) * (level + trend)
        trend = beta * (level - previous_level) + (1 - beta) * trend
    return level, trend, sse


def test_holt_with_given_parameters_matches_the_hand_recursion() -> None:
    values = [10.0, 12.0, 13.5, 13.0, 15.5, 17.0, 16.0, 18.5]
    timestamps = [START_MS + 30_000 * i for i in range(len(values))]
    alpha, beta = 0.6, 0.3
    horizon_ms = 90_000  # three steps
    forecast = forecast_holt(timestamps, values, horizon_ms, alpha=alpha, beta=beta)

    level, trend, sse = reference_holt(values, alpha, beta)
    sigma2 = sse / (len(values) - 2)
    # The variance as the sum it comes from: 1 + sum over j < h of (alpha + alpha beta j)^2.
    h = 3
    factor = 1 + sum((alpha + alpha * beta * j) ** 2 for j in range(1, h))
    half_width = statistics.NormalDist().inv_cdf(0.975) * math.sqrt(sigma2 * factor)

    assert forecast.model == "holt"
    assert forecast.parameters["alpha"] == alpha
    assert forecast.parameters["beta"] == beta
    assert forecast.parameters["level"] == pytest.approx(level, rel=1e-12)
    assert forecast.parameters["trend"] == pytest.approx(trend, rel=1e-12)
    assert forecast.parameters["step_ms"] == 30_000
    assert forecast.parameters["horizon_steps"] == 3
    assert forecast.value == pytest.approx(level + 3 * trend, rel=1e-12)
    assert forecast.fit_rmse == pytest.approx(math.sqrt(sigma2), rel=1e-12)
    assert forecast.lower == pytest.approx(forecast.value - half_width, rel=1e-12)
    assert forecast.upper == pytest.approx(forecast.value + half_width, rel=1e-12)


@pytest.mark.parametrize("horizon_ms", [0, 1, 29_999, 30_000, 45_000, 3_600_000])
def test_holt_interval_grows_with_whole_steps(horizon_ms: int) -> None:
    values = [1.0, 2.5, 2.0, 4.0, 4.5, 6.5, 6.0]
    timestamps = [START_MS + 30_000 * i for i in range(len(values))]
    alpha, beta = 0.5, 0.2
    forecast = forecast_holt(timestamps, values, horizon_ms, alpha=alpha, beta=beta)
    level, trend, sse = reference_holt(values, alpha, beta)
    steps = max(1, math.ceil(horizon_ms / 30_000))
    factor = 1 + sum((alpha + alpha * beta * j) ** 2 for j in range(1, steps))
    half_width = 1.959963984540054 * math.sqrt(sse / (len(values) - 2) * factor)
    # The point follows the trend to the exact target; the interval rounds steps up.
    assert forecast.value == pytest.approx(level + trend * horizon_ms / 30_000, rel=1e-12)
    assert forecast.upper - forecast.value == pytest.approx(half_width, rel=1e-12)
    assert forecast.parameters["horizon_steps"] == steps


@pytest.mark.parametrize("spacing_ms", [15_000, 60_000])
def test_holt_on_a_pure_trend_forecasts_the_line(spacing_ms: int) -> None:
    timestamps = [START_MS + spacing_ms * i for i in range(120)]
    values = [250.0 + 0.5 * (t - START_MS) / 1000 for t in timestamps]
    horizon_ms = 600_000
    forecast = forecast_holt(timestamps, values, horizon_ms)
    expected = 250.0 + 0.5 * (timestamps[-1] + horizon_ms - START_MS) / 1000
    assert forecast.value == pytest.approx(expected, rel=1e-9)
    assert forecast.parameters["trend_per_second"] == pytest.approx(0.5, rel=1e-9)
    assert forecast.upper - forecast.lower <= 1e-9 * expected
    assert forecast.fit_rmse <= 1e-9 * expected


def test_holt_fit_finds_a_minimum_no_worse_than_the_coarse_grid() -> None:
    rng = random.Random(77)
    values = []
    trend = 0.3
    level = 50.0
    for _ in range(200):
        trend += rng.gauss(0.0, 0.05)  # a drifting trend: what Holt is for
        level += trend + rng.gauss(0.0, 1.0)
        values.append(level)
    timestamps = [START_MS + 15_000 * i for i in range(len(values))]
    forecast = forecast_holt(timestamps, values, 300_000)

    alpha = forecast.parameters["alpha"]
    beta = forecast.parameters["beta"]
    assert 0.01 <= alpha <= 0.99
    assert 0.01 <= beta <= 0.99
    fitted_sse = reference_holt(values, alpha, beta)[2]
    assert forecast.fit_rmse == pytest.approx(math.sqrt(fitted_sse / 198), rel=1e-12)
    grid = [i / 20 for i in range(1, 20)]
    best_on_grid = min(reference_holt(values, a, b)[2] for a in grid for b in grid)
    assert fitted_sse <= best_on_grid * (1 + 1e-9)
    # Fixing one parameter fits only the other.
    half_fixed = forecast_holt(timestamps, values, 300_000, alpha=0.5)
    assert half_fixed.parameters["alpha"] == 0.5
    assert reference_holt(values, 0.5, half_fixed.parameters["beta"])[2] <= min(
        reference_holt(values, 0.5, b)[2] for b in grid
    ) * (1 + 1e-9)
    given_extremes = forecast_holt(timestamps, values, 300_000, alpha=1.0, beta=0.0)
    assert (given_extremes.parameters["alpha"], given_extremes.parameters["beta"]) == (1.0, 0.0)


def test_holt_resamples_irregular_samples_with_gaps_onto_the_median_step() -> None:
    rng = random.Random(5)
    # 10 s spacing with jitter, and two long outages; the series is a line, so linear
    # interpolation across the gaps is exact and Holt must still forecast the line.
    timestamps = [START_MS]
    for i in range(1, 80):
        gap = 600_000 if i in (20, 50) else 10_000
        timestamps.append(timestamps[-1] + gap + rng.randint(-300, 300))
    values = [-4.0 + 0.02 * (t - START_MS) / 1000 for t in timestamps]
    forecast = forecast_holt(timestamps, values, 120_000, alpha=0.4, beta=0.2)

    spacings = [b - a for a, b in itertools.pairwise(timestamps)]
    step_ms = math.floor(statistics.median(spacings))
    assert forecast.parameters["step_ms"] == step_ms
    span = timestamps[-1] - timestamps[0]
    assert forecast.parameters["grid_points"] == span // step_ms + 1
    expected = -4.0 + 0.02 * (timestamps[-1] + 120_000 - START_MS) / 1000
    assert forecast.value == pytest.approx(expected, rel=1e-9)
    assert forecast.sample_count == 80


def test_holt_grid_is_bounded() -> None:
    # Two samples a millisecond apart, then one a day later: the median step would
    # make 86 million points.
    timestamps = [START_MS, START_MS + 1, START_MS + 2, START_MS + 86_400_000]
    values = [1.0, 1.0, 1.0, 2.0]
    forecast = forecast_holt(timestamps, values, 60_000, alpha=0.5, beta=0.5)
    assert forecast.parameters["grid_points"] <= MAX_HOLT_GRID_POINTS
    assert math.isfinite(forecast.value)


# ---------------------------------------------------------------------- shared errors


@pytest.mark.parametrize(
    ("values", "given"),
    [([], 0), ([1.0], 1), ([math.nan, 2.0, math.nan], 1), ([1.0, 2.0], 2)],
)
def test_too_few_usable_samples(values: list[float], given: int) -> None:
    timestamps = [START_MS + 1000 * i for i in range(len(values))]
    for forecaster, needed in ((forecast_linear, 2), (forecast_holt, 3)):
        if given >= needed:
            continue
        with pytest.raises(InsufficientDataError) as caught:
            forecaster(timestamps, values, 1000)
        error = caught.value
        assert (error.given, error.needed) == (given, needed)
        assert f"at least {needed} usable samples, given {given}" in str(error)
        assert isinstance(error, KubepulseValueError)


@pytest.mark.parametrize(
    ("timestamps", "values", "horizon_ms", "options", "message"),
    [
        ([START_MS, START_MS + 1, START_MS + 2], [1.0, 2.0, 3.0], -1, {}, "horizon"),
        (
            [START_MS, START_MS + 1, START_MS + 2],
            [1.0, 2.0, 3.0],
            5,
            {"confidence": 1.0},
            "confidence",
        ),
        (
            [START_MS, START_MS + 1, START_MS + 2],
            [1.0, 2.0, 3.0],
            5,
            {"confidence": 0.0},
            "confidence",
        ),
        ([START_MS, START_MS, START_MS + 2], [1.0, 2.0, 3.0], 5, {}, "strictly increasing"),
        ([START_MS, START_MS + 1], [1.0, 2.0, 3.0], 5, {}, "2 timestamps but 3 values"),
        ([START_MS, START_MS + 1, START_MS + 2], [1.0, math.inf, 3.0], 5, {}, "finite"),
    ],
)
def test_bad_arguments_are_rejected_by_both_models(
    timestamps: list[int],
    values: list[float],
    horizon_ms: int,
    options: dict[str, float],
    message: str,
) -> None:
    with pytest.raises(KubepulseValueError, match=message):
        forecast_linear(timestamps, values, horizon_ms, **options)
    with pytest.raises(KubepulseValueError, match=message):
        forecast_holt(timestamps, values, horizon_ms, **options)


@pytest.mark.parametrize(("name", "value"), [("alpha", 1.5), ("beta", -0.1), ("alpha", math.nan)])
def test_holt_rejects_smoothing_outside_zero_one(name: str, value: float) -> None:
    timestamps = [START_MS + 1000 * i for i in range(5)]
    with pytest.raises(KubepulseValueError, match=f"{name} must be between 0 and 1"):
        forecast_holt(timestamps, [1.0] * 5, 1000, **{name: value})

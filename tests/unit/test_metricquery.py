"""The query vocabulary: statistics from selector options and derived names, source requests."""

from __future__ import annotations

import math

import pytest

from kubepulse.errors import KubepulseValueError
from kubepulse.metricquery import (
    DEFAULT_WINDOW_MS,
    OPTION_KEYS,
    DerivedNameError,
    ForecastModel,
    MetricKind,
    ObjectValue,
    ParsedMetric,
    Prediction,
    SeriesRequest,
    Statistic,
    StatisticError,
    format_derived_name,
    is_metric_name,
    natural_aggregation,
    parse_metric_request,
    parse_metric_selector,
    parse_statistic,
    resolve_aggregation,
    split_derived_name,
)
from kubepulse.selector import LabelSelector, SelectorError, parse_selector
from kubepulse.stats.aggregate import Aggregation, AggregationKind

AVG = Aggregation(AggregationKind.AVG)
MAX = Aggregation(AggregationKind.MAX)
RATE = Aggregation(AggregationKind.RATE)
P95 = Aggregation(AggregationKind.PERCENTILE, 95.0)
P99_9 = Aggregation(AggregationKind.PERCENTILE, 99.9)
MINUTE = 60_000

# ---------------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, Statistic()),
        ({"kubepulse.io/window": "5m"}, Statistic(5 * MINUTE)),
        ({"kubepulse.io/window": "30s"}, Statistic(30_000)),
        ({"kubepulse.io/window": "24h"}, Statistic(1440 * MINUTE)),
        ({"kubepulse.io/window": "1h30m"}, Statistic(90 * MINUTE)),
        ({"kubepulse.io/aggregation": "p95"}, Statistic(aggregation=P95)),
        ({"kubepulse.io/aggregation": "P99.9"}, Statistic(aggregation=P99_9)),
        ({"kubepulse.io/aggregation": "rate"}, Statistic(aggregation=RATE)),
        (
            {"kubepulse.io/predict": "2m"},
            Statistic(prediction=Prediction(2 * MINUTE, ForecastModel.LINEAR)),
        ),
        (
            {"kubepulse.io/predict": "2m", "kubepulse.io/model": "holt"},
            Statistic(prediction=Prediction(2 * MINUTE, ForecastModel.HOLT)),
        ),
        (
            {
                "kubepulse.io/window": "10m",
                "kubepulse.io/aggregation": "max",
                "kubepulse.io/predict": "1h",
                "kubepulse.io/model": "Linear",
            },
            Statistic(10 * MINUTE, MAX, Prediction(60 * MINUTE)),
        ),
    ],
)
def test_parse_statistic_reads_the_reserved_keys(
    options: dict[str, str], expected: Statistic
) -> None:
    assert parse_statistic(options) == expected


@pytest.mark.parametrize(
    ("options", "message_parts"),
    [
        ({"kubepulse.io/windw": "5m"}, ["'kubepulse.io/windw'", *OPTION_KEYS]),
        ({"kubepulse.io/window": "29s"}, ["kubepulse.io/window", "from 30s to 1d"]),
        ({"kubepulse.io/window": "25h"}, ["kubepulse.io/window", "from 30s to 1d"]),
        ({"kubepulse.io/window": "5"}, ["kubepulse.io/window", "has no unit"]),
        ({"kubepulse.io/window": "1.5m"}, ["kubepulse.io/window", "fractions"]),
        ({"kubepulse.io/aggregation": "median"}, ["kubepulse.io/aggregation", "p99"]),
        ({"kubepulse.io/aggregation": "p0"}, ["kubepulse.io/aggregation", "out of range"]),
        ({"kubepulse.io/predict": "0"}, ["kubepulse.io/predict", "from 1s to 1h"]),
        ({"kubepulse.io/predict": "2h"}, ["kubepulse.io/predict", "from 1s to 1h"]),
        (
            {"kubepulse.io/predict": "1m", "kubepulse.io/model": "arima"},
            ["'arima'", "linear or holt"],
        ),
        ({"kubepulse.io/model": "holt"}, ["kubepulse.io/predict=<horizon>"]),
    ],
)
def test_parse_statistic_refuses_absurd_values_saying_what_is_valid(
    options: dict[str, str], message_parts: list[str]
) -> None:
    with pytest.raises(StatisticError) as caught:
        parse_statistic(options)
    assert isinstance(caught.value, KubepulseValueError)
    assert isinstance(caught.value, ValueError)
    for part in message_parts:
        assert part in str(caught.value)


def test_parse_statistic_keeps_the_defaults_it_is_given_for_keys_not_set() -> None:
    defaults = Statistic(10 * MINUTE, MAX, Prediction(MINUTE, ForecastModel.HOLT))
    assert parse_statistic({}, defaults=defaults) == defaults
    assert parse_statistic({"kubepulse.io/aggregation": "p95"}, defaults=defaults) == Statistic(
        10 * MINUTE, P95, Prediction(MINUTE, ForecastModel.HOLT)
    )
    # A new horizon keeps the model the defaults chose; a model alone keeps the horizon.
    assert parse_statistic({"kubepulse.io/predict": "5m"}, defaults=defaults).prediction == (
        Prediction(5 * MINUTE, ForecastModel.HOLT)
    )
    assert parse_statistic({"kubepulse.io/model": "linear"}, defaults=defaults).prediction == (
        Prediction(MINUTE, ForecastModel.LINEAR)
    )


@pytest.mark.parametrize(
    "statistic",
    [
        Statistic(),
        Statistic(5 * MINUTE, P95),
        Statistic(30_000, RATE, Prediction(90_000, ForecastModel.HOLT)),
        Statistic(aggregation=P99_9, prediction=Prediction(1_000)),
    ],
)
def test_options_read_back_to_the_same_statistic(statistic: Statistic) -> None:
    assert parse_statistic(statistic.options()) == statistic


def test_statistic_and_prediction_check_their_ranges() -> None:
    with pytest.raises(StatisticError, match="from 30s to 1d"):
        Statistic(window_ms=1_000)
    with pytest.raises(StatisticError, match="from 1s to 1h"):
        Prediction(horizon_ms=0)
    assert Statistic(90_500).window_seconds == 90


def test_describe_says_the_statistic_in_words() -> None:
    assert Statistic().describe() == "natural statistic over 1m"
    assert (
        Statistic(5 * MINUTE, P95, Prediction(2 * MINUTE, ForecastModel.HOLT)).describe()
        == "p95 over 5m, forecast 2m ahead (holt)"
    )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [(MetricKind.GAUGE, AVG), (MetricKind.COUNTER, RATE), (MetricKind.HISTOGRAM, P95)],
)
def test_natural_aggregation_by_kind(kind: MetricKind, expected: Aggregation) -> None:
    assert natural_aggregation(kind) == expected
    assert resolve_aggregation(Statistic(), kind, "m") == expected
    assert resolve_aggregation(Statistic(aggregation=MAX), MetricKind.GAUGE, "m") == MAX


@pytest.mark.parametrize("name", ["min", "max", "last"])
def test_a_histogram_refuses_what_its_buckets_cannot_answer(name: str) -> None:
    statistic = parse_statistic({"kubepulse.io/aggregation": name})
    with pytest.raises(StatisticError, match=r"histogram.*pNN.*avg.*rate.*sum"):
        resolve_aggregation(statistic, MetricKind.HISTOGRAM, "latency_seconds")


@pytest.mark.parametrize("name", ["p50", "avg", "rate", "sum"])
def test_a_histogram_answers_percentiles_avg_rate_and_sum(name: str) -> None:
    statistic = parse_statistic({"kubepulse.io/aggregation": name})
    assert resolve_aggregation(statistic, MetricKind.HISTOGRAM, "m") == statistic.aggregation


# ---------------------------------------------------------------------- metric selectors


def test_parse_metric_selector_separates_series_filters_from_options() -> None:
    selector, statistic = parse_metric_selector(
        "code=200, kubepulse.io/window=5m, kubepulse.io/aggregation in (p95), !canary"
    )
    assert selector == parse_selector("code=200,!canary")
    assert statistic == Statistic(5 * MINUTE, P95)


def test_parse_metric_selector_of_nothing_is_everything_and_the_default() -> None:
    assert parse_metric_selector("") == (LabelSelector(), Statistic())


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("kubepulse.io/window!=5m", SelectorError),
        ("kubepulse.io/aggregation in (p95,p99)", SelectorError),
        ("kubepulse.io/window=5m,kubepulse.io/window=1m", SelectorError),
        ("kubepulse.io/horizon=5m", StatisticError),
        ("app=(", SelectorError),
    ],
)
def test_parse_metric_selector_refuses(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_metric_selector(text)


# ---------------------------------------------------------------------- derived names


@pytest.mark.parametrize(
    ("name", "base", "statistic"),
    [
        ("http_requests_total", "http_requests_total", None),
        ("job:http_requests:rate5m", "job:http_requests:rate5m", None),
        ("latency_seconds-p95-5m", "latency_seconds", Statistic(5 * MINUTE, P95)),
        ("latency_seconds-p99.9-1h", "latency_seconds", Statistic(60 * MINUTE, P99_9)),
        ("latency_seconds-p95", "latency_seconds", Statistic(aggregation=P95)),
        ("queue_depth-2m", "queue_depth", Statistic(2 * MINUTE)),
        ("q:depth-avg-1m30s", "q:depth", Statistic(90_000, AVG)),
        (
            "queue_depth-avg-1m-predict-2m-holt",
            "queue_depth",
            Statistic(MINUTE, AVG, Prediction(2 * MINUTE, ForecastModel.HOLT)),
        ),
        (
            "queue_depth-max-5m-predict-30s",
            "queue_depth",
            Statistic(5 * MINUTE, MAX, Prediction(30_000, ForecastModel.LINEAR)),
        ),
        (
            "queue_depth-predict-2m-linear",
            "queue_depth",
            Statistic(prediction=Prediction(2 * MINUTE)),
        ),
        (
            "requests_total-rate-predict-1m",
            "requests_total",
            Statistic(MINUTE, RATE, Prediction(MINUTE)),
        ),
    ],
)
def test_split_derived_name(name: str, base: str, statistic: Statistic | None) -> None:
    assert split_derived_name(name) == (base, statistic)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("-p95-5m", "no metric name"),
        ("latency-", "empty part"),
        ("latency--p95", "empty part"),
        ("latency-median-5m", "'median' is not an aggregation"),
        ("latency-P95-5m", "must be lower case"),
        ("latency-p95-5", "has no unit"),
        ("latency-p95-10s", "shorter than the minimum 30s"),
        ("latency-p95-2d", "longer than the maximum 1d"),
        ("latency-5m-p95", "unexpected 'p95'"),
        ("latency-p95-5m-predict", "followed by a horizon"),
        ("latency-p95-5m-predict-2h", "longer than the maximum 1h"),
        ("latency-p95-5m-predict-2m-arima", "unknown forecast model 'arima'"),
        ("latency-p95-5m-predict-2m-holt-x", "unexpected 'x'"),
        ("my-service-requests", "'service' is not an aggregation"),
    ],
)
def test_split_derived_name_refuses_a_malformed_suffix_showing_the_grammar(
    name: str, problem: str
) -> None:
    with pytest.raises(DerivedNameError) as caught:
        split_derived_name(name)
    message = str(caught.value)
    assert problem in message
    assert "[aggregation-]window[-predict-horizon[-model]]" in message


@pytest.mark.parametrize(
    ("statistic", "name"),
    [
        (Statistic(), "m-1m"),
        (Statistic(5 * MINUTE, P95), "m-p95-5m"),
        (Statistic(90_000, P99_9), "m-p99.9-1m30s"),
        (
            Statistic(MINUTE, AVG, Prediction(2 * MINUTE, ForecastModel.HOLT)),
            "m-avg-1m-predict-2m-holt",
        ),
        (Statistic(prediction=Prediction(30_000)), "m-1m-predict-30s-linear"),
    ],
)
def test_format_derived_name_is_canonical_and_reads_back(statistic: Statistic, name: str) -> None:
    assert format_derived_name("m", statistic) == name
    assert split_derived_name(name) == ("m", statistic)


@pytest.mark.parametrize("base", ["", "has-dash"])
def test_format_derived_name_refuses_a_base_that_would_not_read_back(base: str) -> None:
    with pytest.raises(DerivedNameError):
        format_derived_name(base, Statistic())


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("http_requests_total", True),
        ("job:rate:5m", True),
        ("_private", True),
        ("9lives", False),
        ("has-dash", False),
        ("has.dot", False),
        ("", False),
    ],
)
def test_is_metric_name(name: str, valid: bool) -> None:
    assert is_metric_name(name) is valid


def test_parse_metric_request_takes_the_statistic_from_the_name_or_the_selector() -> None:
    assert parse_metric_request("latency-p95-5m", "code=200") == ParsedMetric(
        "latency", parse_selector("code=200"), Statistic(5 * MINUTE, P95)
    )
    assert parse_metric_request("latency", "code=200,kubepulse.io/aggregation=p95") == (
        ParsedMetric("latency", parse_selector("code=200"), Statistic(aggregation=P95))
    )
    defaults = Statistic(aggregation=MAX)
    assert parse_metric_request("latency", "", defaults=defaults).statistic == defaults


def test_parse_metric_request_refuses_the_statistic_given_twice() -> None:
    with pytest.raises(StatisticError, match=r"already chooses.*kubepulse.io/window"):
        parse_metric_request("latency-p95-5m", "kubepulse.io/window=1m")


# ---------------------------------------------------------------------- source requests


def test_series_request_groups_by_the_object_label() -> None:
    per_pod = SeriesRequest(
        "m", Statistic(), object_label="pod", object_names=frozenset({"a", "b"})
    )
    assert per_pod.object_of({"pod": "a"}) == "a"
    assert per_pod.object_of({"pod": "c"}) is None
    assert per_pod.object_of({"node": "a"}) is None
    merged = SeriesRequest(
        "m", Statistic(), object_label="pod", object_names=frozenset({"a"}), merge_objects=True
    )
    assert merged.object_of({"pod": "a"}) == ""
    every_pod = SeriesRequest("m", Statistic(), object_label="pod")
    assert every_pod.object_of({"pod": "z"}) == "z"
    single = SeriesRequest("m", Statistic())
    assert single.object_of({}) == ""


@pytest.mark.parametrize(
    "arguments",
    [
        {"metric": "has-dash"},
        {"metric": ""},
        {"metric": "m", "object_names": frozenset({"a"})},
        {"metric": "m", "merge_objects": True},
    ],
)
def test_series_request_refuses_inconsistent_requests(arguments: dict[str, object]) -> None:
    with pytest.raises(KubepulseValueError):
        SeriesRequest(statistic=Statistic(), **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_object_value_must_be_finite(value: float) -> None:
    with pytest.raises(KubepulseValueError, match="finite"):
        ObjectValue("pod", 0, value, DEFAULT_WINDOW_MS)

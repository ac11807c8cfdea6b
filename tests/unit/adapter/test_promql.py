"""The PromQL text built for every statistic, selector operator and grouping (pure)."""

from __future__ import annotations

import dataclasses

import pytest

from adapter.sources.promql import (
    NEWEST_PART,
    PART_LABEL,
    PlanMode,
    combined_query,
    discovery_query,
    escape_regex,
    escape_string,
    freshness_query,
    label_matchers,
    plan_query,
    promql_duration,
    series_selector,
)
from kubepulse.errors import KubepulseValueError
from kubepulse.metricquery import (
    MetricKind,
    SeriesRequest,
    Statistic,
    StatisticError,
    parse_statistic,
)
from kubepulse.selector import LabelSelector, Operator, Requirement, parse_selector
from kubepulse.stats import SeriesKind

GAUGE, COUNTER, HISTOGRAM = MetricKind.GAUGE, MetricKind.COUNTER, MetricKind.HISTOGRAM


def request(
    metric: str = "x",
    *,
    selector: str = "",
    namespace: str | None = "shop",
    object_label: str | None = "pod",
    names: set[str] | None = None,
    merge: bool = False,
    **options: str,
) -> SeriesRequest:
    statistic = parse_statistic({f"kubepulse.io/{key}": value for key, value in options.items()})
    return SeriesRequest(
        metric,
        statistic,
        namespace=namespace,
        series_selector=parse_selector(selector),
        object_label=object_label,
        object_names=None if names is None else frozenset(names),
        merge_objects=merge,
    )


@pytest.mark.parametrize(
    ("selector", "matchers"),
    [
        ("", []),
        ("code=200", ['code="200"']),
        ("code==200", ['code="200"']),
        ("code!=500", ['code!="500"']),
        ("code in (200,201)", ['code=~"200|201"']),
        ("code notin (500,503)", ['code!~"500|503"']),
        ("code in (200)", ['code="200"']),
        ("code notin (500)", ['code!="500"']),
        ("path in (a.b,c)", ['path=~"a\\\\.b|c"']),
        ("canary", ['canary=~".+"']),
        ("!canary", ['canary=""']),
        ("a=1,b!=2", ['a="1"', 'b!="2"']),
        # Prometheus has no empty-valued labels: "present and empty" matches nothing,
        # "absent or not empty" everything, and "" drops out of value sets.
        ("tier!=", []),
        ("tier notin (,a)", ['tier!="a"']),
        ("tier in (,a)", ['tier="a"']),
        # Keys that cannot be Prometheus label names are never present.
        ("app.kubernetes.io/name!=web", []),
        ("!example.com/team", []),
    ],
)
def test_selector_operators(selector: str, matchers: list[str]) -> None:
    assert label_matchers(parse_selector(selector)) == matchers


@pytest.mark.parametrize(
    "selector", ["tier=", "tier in (,)", "app.kubernetes.io/name=web", "example.com/team"]
)
def test_selectors_that_match_nothing_in_prometheus(selector: str) -> None:
    assert label_matchers(parse_selector(selector)) is None
    plan = plan_query(request(selector=selector), GAUGE, 60_000)
    assert plan.matches_nothing
    assert plan.queries == ()
    assert freshness_query(request(selector=selector), GAUGE) is None


def test_values_are_escaped_for_promql_strings_and_regexes() -> None:
    assert escape_string('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert escape_regex("a.b+c|d(e)") == "a\\.b\\+c\\|d\\(e\\)"
    # A requirement built directly (values Kubernetes allows) still comes out quoted.
    selector = LabelSelector((Requirement("v", Operator.IN, frozenset({"1.0", "2.0"})),))
    assert label_matchers(selector) == ['v=~"1\\\\.0|2\\\\.0"']
    odd_namespace = request(namespace='we"ird')
    assert series_selector("x", odd_namespace) == 'x{namespace="we\\"ird"}'


def test_one_object_is_an_equality_and_many_are_never_a_regex() -> None:
    one = request(names={"web-0"})
    assert series_selector("x", one) == 'x{namespace="shop", pod="web-0"}'
    many = request(names={f"web-{n}" for n in range(50)})
    assert series_selector("x", many) == 'x{namespace="shop"}'
    assert "web-" not in plan_query(many, COUNTER, 60_000).queries[0]
    assert series_selector("x", request(namespace=None)) == "x{}"


@pytest.mark.parametrize(
    ("kind", "aggregation", "mode", "query"),
    [
        (GAUGE, "avg", PlanMode.VALUES, 'sum by (pod) (avg_over_time(x{namespace="shop"}[1m]))'),
        (GAUGE, "min", PlanMode.VALUES, 'sum by (pod) (min_over_time(x{namespace="shop"}[1m]))'),
        (GAUGE, "max", PlanMode.VALUES, 'sum by (pod) (max_over_time(x{namespace="shop"}[1m]))'),
        (GAUGE, "sum", PlanMode.VALUES, 'sum by (pod) (sum_over_time(x{namespace="shop"}[1m]))'),
        (
            GAUGE,
            "last",
            PlanMode.VALUES,
            'sum by (pod) (last_over_time(x{namespace="shop"}[1m]))',
        ),
        (GAUGE, "rate", PlanMode.VALUES, 'sum by (pod) (delta(x{namespace="shop"}[1m]) / 60)'),
        (GAUGE, "p95", PlanMode.SAMPLES, 'x{namespace="shop"}[1m]'),
        (COUNTER, "avg", PlanMode.VALUES, 'sum by (pod) (rate(x{namespace="shop"}[1m]))'),
        (COUNTER, "rate", PlanMode.VALUES, 'sum by (pod) (rate(x{namespace="shop"}[1m]))'),
        (COUNTER, "last", PlanMode.VALUES, 'sum by (pod) (irate(x{namespace="shop"}[1m]))'),
        (COUNTER, "min", PlanMode.SAMPLES, 'x{namespace="shop"}[1m]'),
        (COUNTER, "max", PlanMode.SAMPLES, 'x{namespace="shop"}[1m]'),
        (COUNTER, "sum", PlanMode.SAMPLES, 'x{namespace="shop"}[1m]'),
        (COUNTER, "p99", PlanMode.SAMPLES, 'x{namespace="shop"}[1m]'),
        (
            HISTOGRAM,
            "p95",
            PlanMode.VALUES,
            'histogram_quantile(0.95, sum by (pod, le) (increase(x_bucket{namespace="shop"}[1m])))',
        ),
        (
            HISTOGRAM,
            "p50",
            PlanMode.VALUES,
            'histogram_quantile(0.5, sum by (pod, le) (increase(x_bucket{namespace="shop"}[1m])))',
        ),
        (
            HISTOGRAM,
            "avg",
            PlanMode.VALUES,
            'sum by (pod) (increase(x_sum{namespace="shop"}[1m])) / '
            'sum by (pod) (increase(x_bucket{namespace="shop", le="+Inf"}[1m]))',
        ),
        (
            HISTOGRAM,
            "rate",
            PlanMode.VALUES,
            'sum by (pod) (rate(x_bucket{namespace="shop", le="+Inf"}[1m]))',
        ),
        (HISTOGRAM, "sum", PlanMode.SAMPLES, 'x_sum{namespace="shop"}[1m]'),
    ],
)
def test_query_per_statistic(
    kind: MetricKind, aggregation: str, mode: PlanMode, query: str
) -> None:
    plan = plan_query(request(aggregation=aggregation), kind, 60_000)
    assert plan.mode is mode
    assert plan.queries == (query,)
    assert plan.aggregation.name == aggregation
    expected_kind = SeriesKind.GAUGE if kind is GAUGE else SeriesKind.COUNTER
    assert plan.series_kind is expected_kind


def test_merged_histograms_are_read_by_pod_and_merged_by_the_source() -> None:
    """A Deployment's pods are kept client-side, so Prometheus cannot merge them."""
    merged = request(names={"web-0", "web-1"}, merge=True, aggregation="p95")
    plan = plan_query(merged, HISTOGRAM, 300_000)
    assert plan.mode is PlanMode.BUCKETS
    assert plan.queries == ('sum by (pod, le) (increase(x_bucket{namespace="shop"}[5m]))',)
    average = plan_query(dataclasses.replace(merged, statistic=avg_statistic()), HISTOGRAM, 300_000)
    assert average.mode is PlanMode.RATIO
    assert average.queries == (
        'sum by (pod) (increase(x_sum{namespace="shop"}[5m]))',
        'sum by (pod) (increase(x_bucket{namespace="shop", le="+Inf"}[5m]))',
    )


def avg_statistic() -> Statistic:
    return parse_statistic({"kubepulse.io/aggregation": "avg"})


def test_natural_statistics() -> None:
    assert plan_query(request(), COUNTER, 60_000).queries[0].startswith("sum by (pod) (rate(")
    assert "avg_over_time(" in plan_query(request(), GAUGE, 60_000).queries[0]
    histogram = plan_query(request(), HISTOGRAM, 60_000)
    assert histogram.mode is PlanMode.VALUES
    assert histogram.queries[0].startswith("histogram_quantile(0.95, ")
    assert histogram.aggregation.name == "p95"


def test_one_query_carries_the_value_and_the_freshness() -> None:
    plan = plan_query(request(aggregation="rate"), COUNTER, 60_000)
    assert plan.freshness == 'max by (pod) (timestamp(x{namespace="shop"}))'
    assert plan.request_query == (
        'label_replace(sum by (pod) (rate(x{namespace="shop"}[1m])), "kubepulse_part", "0", "", "")'
        ' or label_replace(max by (pod) (timestamp(x{namespace="shop"})), "kubepulse_part", '
        '"newest", "", "")'
    )
    histogram = plan_query(request(aggregation="p99"), HISTOGRAM, 60_000)
    assert histogram.request_query == (
        "label_replace(histogram_quantile(0.99, sum by (pod, le) "
        '(increase(x_bucket{namespace="shop"}[1m]))), "kubepulse_part", "0", "", "") or '
        'label_replace(max by (pod) (timestamp(x_bucket{namespace="shop", le="+Inf"})), '
        '"kubepulse_part", "newest", "", "")'
    )


def test_a_merged_ratio_sends_both_parts_and_the_freshness_in_one_query() -> None:
    merged = request(names={"web-0", "web-1"}, merge=True, aggregation="avg")
    plan = plan_query(merged, HISTOGRAM, 60_000)
    numerator, denominator = plan.queries
    assert plan.freshness is not None
    assert plan.request_query == combined_query(plan.queries, plan.freshness)
    assert plan.request_query.count(" or ") == 2
    for tag, part in (("0", numerator), ("1", denominator), (NEWEST_PART, plan.freshness)):
        assert f'label_replace({part}, "{PART_LABEL}", "{tag}", "", "")' in plan.request_query


def test_raw_sample_plans_send_the_selector_alone() -> None:
    """The samples carry each series' newest timestamp: no freshness part."""
    plan = plan_query(request(aggregation="p90"), GAUGE, 60_000)
    assert plan.mode is PlanMode.SAMPLES
    assert plan.freshness is None
    assert plan.request_query == 'x{namespace="shop"}[1m]'


def test_a_plan_that_matches_nothing_has_no_query_to_send() -> None:
    plan = plan_query(request(selector="tier="), COUNTER, 60_000)
    assert plan.matches_nothing
    with pytest.raises(KubepulseValueError, match="no query to send"):
        _ = plan.request_query
    with pytest.raises(KubepulseValueError, match="at least one part"):
        combined_query(())


@pytest.mark.parametrize(
    ("object_label", "values", "buckets"),
    [
        ("pod", "sum by (pod) (", "sum by (pod, le) ("),
        ("node", "sum by (node) (", "sum by (node, le) ("),
        (None, "sum (", "sum by (le) ("),
    ],
)
def test_grouping(object_label: str | None, values: str, buckets: str) -> None:
    wanted = request(object_label=object_label)
    assert plan_query(wanted, COUNTER, 60_000).queries[0].startswith(values)
    quantile = plan_query(wanted, HISTOGRAM, 60_000).queries[0]
    assert quantile.startswith(f"histogram_quantile(0.95, {buckets}")
    merged = request(names={"a", "b"}, merge=True)
    assert plan_query(merged, COUNTER, 60_000).queries[0].startswith("sum by (pod) (")
    assert plan_query(merged, HISTOGRAM, 60_000).queries[0].startswith("sum by (pod, le) (")
    grouping = "max" if object_label is None else f"max by ({object_label})"
    # A histogram's freshness reads its +Inf buckets: one series per histogram.
    assert freshness_query(wanted, HISTOGRAM) == (
        f'{grouping} (timestamp(x_bucket{{namespace="shop", le="+Inf"}}))'
    )
    assert freshness_query(wanted, COUNTER) == f'{grouping} (timestamp(x{{namespace="shop"}}))'


def test_histograms_refuse_what_buckets_cannot_answer() -> None:
    with pytest.raises(StatisticError, match="histogram"):
        plan_query(request(aggregation="max"), HISTOGRAM, 60_000)
    with pytest.raises(StatisticError, match="'le'"):
        plan_query(request(selector="le=0.5"), HISTOGRAM, 60_000)


def test_durations_and_selector_order() -> None:
    assert promql_duration(90_000) == "1m30s"
    assert promql_duration(1_500) == "1s500ms"
    plan = plan_query(request(selector="b=2,a=1", aggregation="rate"), GAUGE, 90_000)
    assert plan.queries == ('sum by (pod) (delta(x{namespace="shop", a="1", b="2"}[1m30s]) / 90)',)


def test_discovery_tags_object_labels() -> None:
    query = discovery_query()
    assert query.startswith(
        "group by (__name__, kubepulse_has_namespace, kubepulse_has_pod, kubepulse_has_node, "
        "kubepulse_has_le) (label_replace("
    )
    assert 'label_replace({__name__=~".+"}, "kubepulse_has_namespace", "1", "namespace", ".+")' in (
        query
    )

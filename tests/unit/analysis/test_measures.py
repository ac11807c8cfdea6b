"""The history table and its pure transforms, against figures computed by hand.

Every expected value below is worked out in the comment next to it from the samples in
the same row: no figure is taken from the code under test.
"""

from __future__ import annotations

import dataclasses
import math
import random

import pytest

from kubepulse.analysis.inputs import ContainerRef, QuotaRef, UsageHistory
from kubepulse.analysis.measures import (
    CONTAINER_KEY,
    DEFAULT_GRID_POINTS,
    MAX_GRID_POINTS,
    MEASURES,
    NODE_KEY,
    HistoryAssembler,
    Measure,
    Reduce,
    Selection,
    Transform,
    choose_step,
    evaluation_grid,
    gauge_points,
    grid_samples,
    increment_instants,
    key_of,
    lookback_for,
    measure,
    rate_points,
    ratio_points,
    sum_points,
)
from kubepulse.catalog import MetricType
from kubepulse.catalog import get as catalog_spec
from kubepulse.errors import KubepulseValueError
from kubepulse.stats import Aggregation, AggregationKind, SeriesKind, exact_evaluate

S = 1000  # one second in milliseconds
NAN = math.nan

# ------------------------------------------------------------------ the table


def test_every_history_field_has_exactly_its_rows() -> None:
    fields = {
        field.name
        for field in dataclasses.fields(UsageHistory)
        if not field.name.startswith("_")  # memos, not measurements
    } - {"start_ms", "end_ms"}
    assert {row.field for row in MEASURES} == fields
    pressure = sorted(row.name for row in MEASURES if row.field == "node_pressure")
    assert pressure == ["cpu_some", "io_full", "io_some", "memory_full", "memory_some"]
    assert len({row.name for row in MEASURES}) == len(MEASURES)


@pytest.mark.parametrize(
    ("name", "metrics", "transform", "key"),
    [
        (
            "cpu_cores",
            ("kubepulse_container_cpu_usage_seconds_total",),
            Transform.RATE,
            CONTAINER_KEY,
        ),
        (
            "memory_working_set_bytes",
            ("kubepulse_container_memory_working_set_bytes",),
            Transform.GAUGE,
            CONTAINER_KEY,
        ),
        (
            "cpu_throttled_ratio",
            (
                "kubepulse_container_cpu_cfs_throttled_periods_total",
                "kubepulse_container_cpu_cfs_periods_total",
            ),
            Transform.RATIO_OF_RATES,
            CONTAINER_KEY,
        ),
        (
            "oom_kill_ms",
            ("kubepulse_container_oom_kills_total",),
            Transform.INCREMENTS,
            CONTAINER_KEY,
        ),
        (
            "cpu_some",
            ("kubepulse_node_pressure_cpu_waiting_seconds_total",),
            Transform.RATE,
            NODE_KEY,
        ),
        (
            "memory_some",
            ("kubepulse_node_pressure_memory_waiting_seconds_total",),
            Transform.RATE,
            NODE_KEY,
        ),
        (
            "memory_full",
            ("kubepulse_node_pressure_memory_stalled_seconds_total",),
            Transform.RATE,
            NODE_KEY,
        ),
        (
            "io_some",
            ("kubepulse_node_pressure_io_waiting_seconds_total",),
            Transform.RATE,
            NODE_KEY,
        ),
        (
            "io_full",
            ("kubepulse_node_pressure_io_stalled_seconds_total",),
            Transform.RATE,
            NODE_KEY,
        ),
        (
            "node_memory_available_bytes",
            ("kubepulse_node_memory_available_bytes",),
            Transform.GAUGE,
            NODE_KEY,
        ),
        (
            "node_ephemeral_storage_available_bytes",
            ("kubepulse_node_ephemeral_storage_available_bytes",),
            Transform.GAUGE,
            NODE_KEY,
        ),
        (
            "quota_used",
            ("kube_resourcequota",),
            Transform.GAUGE,
            ("namespace", "resourcequota", "resource"),
        ),
    ],
)
def test_each_row_reads_the_catalog_metric_it_should(
    name: str, metrics: tuple[str, ...], transform: Transform, key: tuple[str, ...]
) -> None:
    row = measure(name)
    assert (row.metrics, row.transform, row.key) == (metrics, transform, key)


def test_some_is_the_waiting_line_and_full_the_stalled_line_as_the_catalog_says() -> None:
    for row in MEASURES:
        if row.field != "node_pressure":
            continue
        help_text = catalog_spec(row.metrics[0]).help
        line = "some" if row.name.endswith("_some") else "full"
        assert f"the {line} line" in help_text, (row.name, help_text)
        assert row.clamp_unit


def test_exporter_rows_match_catalog_types_and_quota_reads_used() -> None:
    for row in MEASURES:
        if row.source != "exporter":
            continue
        for metric in row.metrics:
            counter = catalog_spec(metric).type is MetricType.COUNTER
            assert counter == (row.transform is not Transform.GAUGE), metric
    quota = measure("quota_used")
    assert (quota.matchers, quota.combine_max, quota.reduce) == (
        (("type", "used"),),
        True,
        Reduce.LAST,
    )
    assert measure("memory_working_set_bytes").reduce is Reduce.MAX
    assert measure("node_memory_available_bytes").reduce is Reduce.MIN


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"metrics": ("kubepulse_container_memory_working_set_bytes",)}, "is a gauge"),
        ({"metrics": ("a", "b")}, "reads 1 metric"),
        ({"key": ("namespace", "deployment")}, "no label 'deployment'"),
        ({"reduce": Reduce.MAX}, "a reduce goes with a gauge"),
        ({"metrics": ("kubepulse_no_such_metric_total",)}, "no_such"),
    ],
)
def test_a_malformed_row_is_refused(changes: dict[str, object], message: str) -> None:
    base = measure("cpu_cores")
    with pytest.raises(KubepulseValueError, match=message):
        dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_an_unknown_measure_lists_the_known_ones() -> None:
    with pytest.raises(KubepulseValueError, match="known: cpu_cores, memory_working_set_bytes"):
        measure("cpu")


# ------------------------------------------------------------------ keys and the grid


@pytest.mark.parametrize(
    ("name", "labels", "key"),
    [
        (
            "cpu_cores",
            {"namespace": "a", "pod": "p", "container": "c", "node": "n"},
            ("a", "p", "c"),
        ),
        ("cpu_cores", {"namespace": "a", "pod": "p", "node": "n"}, None),
        ("cpu_cores", {"namespace": "a", "pod": "p", "container": ""}, None),
        ("io_full", {"node": "n1", "instance": "x"}, ("n1",)),
        # kube-state-metrics scraped as a pod: its own namespace is the target's, the
        # quota's is kept as exported_namespace, which wins.
        (
            "quota_used",
            {
                "namespace": "monitoring",
                "exported_namespace": "shop",
                "resourcequota": "q",
                "resource": "pods",
            },
            ("shop", "q", "pods"),
        ),
        (
            "quota_used",
            {"namespace": "shop", "resourcequota": "q", "resource": "pods"},
            ("shop", "q", "pods"),
        ),
        # exported_namespace means nothing for container series.
        (
            "cpu_cores",
            {"namespace": "a", "exported_namespace": "b", "pod": "p", "container": "c"},
            ("a", "p", "c"),
        ),
    ],
)
def test_key_of(name: str, labels: dict[str, str], key: tuple[str, ...] | None) -> None:
    assert key_of(measure(name), labels) == key


@pytest.mark.parametrize(
    ("start", "end", "step", "grid"),
    [
        (0, 60 * S, 15 * S, (0, 15 * S, 30 * S, 45 * S, 60 * S)),
        (0, 59 * S, 15 * S, (0, 15 * S, 30 * S, 45 * S)),  # end is not on the grid
        (7, 7, 15 * S, (7,)),
    ],
)
def test_evaluation_grid(start: int, end: int, step: int, grid: tuple[int, ...]) -> None:
    assert evaluation_grid(start, end, step) == grid


def test_evaluation_grid_refuses_too_many_points_and_says_which_step_fits() -> None:
    # 11,000 points of 1 ms span 10,999 ms; one more millisecond needs 11,001 points.
    assert len(evaluation_grid(0, MAX_GRID_POINTS - 1, 1)) == MAX_GRID_POINTS
    with pytest.raises(KubepulseValueError, match="choose a step of at least 2 ms"):
        evaluation_grid(0, MAX_GRID_POINTS, 1)
    with pytest.raises(KubepulseValueError, match="positive"):
        evaluation_grid(0, 10, 0)
    with pytest.raises(KubepulseValueError, match="before it starts"):
        evaluation_grid(10, 0, 1)


HOUR = 3600 * S


@pytest.mark.parametrize(
    ("window", "resolution", "step"),
    [
        (24 * HOUR, 15 * S, 60 * S),  # 86,400 s / 1,440 intervals = 60 s, four scrapes
        (6 * HOUR, 15 * S, 15 * S),  # 21,600 s / 1,440 = 15 s exactly
        (6 * HOUR + 1, 15 * S, 30 * S),  # just over: the next multiple of the scrape
        (HOUR, 15 * S, 15 * S),  # never below one scrape interval
        (0, 15 * S, 15 * S),
        (24 * HOUR, 7 * S, 63 * S),  # 60 s rounded up to whole 7 s scrapes: 9 x 7
    ],
)
def test_choose_step(window: int, resolution: int, step: int) -> None:
    chosen = choose_step(1_700_000_000_000, 1_700_000_000_000 + window, resolution)
    assert chosen == step
    assert len(evaluation_grid(0, window, chosen)) <= DEFAULT_GRID_POINTS


def test_choose_step_keeps_below_the_hard_limit_and_checks_its_input() -> None:
    # 36e6 ms / 10,999 intervals = 3273.02 ms, rounded up.
    assert choose_step(0, 10 * HOUR, 1, MAX_GRID_POINTS) == 3274
    with pytest.raises(KubepulseValueError, match="2 to 11000 points"):
        choose_step(0, HOUR, 15 * S, MAX_GRID_POINTS + 1)
    with pytest.raises(KubepulseValueError, match="positive"):
        choose_step(0, HOUR, 0)
    with pytest.raises(KubepulseValueError, match="before it starts"):
        choose_step(HOUR, 0, 15 * S)


@pytest.mark.parametrize(
    ("step", "resolution", "lookback"),
    [(60 * S, 15 * S, 60 * S), (15 * S, 15 * S, 30 * S), (10 * S, 15 * S, 30 * S)],
)
def test_lookback_for(step: int, resolution: int, lookback: int) -> None:
    assert lookback_for(step, resolution) == lookback


# ------------------------------------------------------------------ transforms

COUNTER_STEADY = [(0, 0.0), (15 * S, 15.0), (30 * S, 30.0), (45 * S, 45.0), (60 * S, 60.0)]
# Restarted between 30 s and 45 s: increases 15, 5 (the drop counts as starting at
# zero), 15 -> 35 over 45 s.
COUNTER_RESET = [(0, 10.0), (15 * S, 25.0), (30 * S, 5.0), (45 * S, 20.0)]


@pytest.mark.parametrize(
    ("samples", "grid", "lookback", "expected"),
    [
        # One core: 15 s of CPU per 15 s, in every window of two or three samples.
        (COUNTER_STEADY, (30 * S, 60 * S), 30 * S, [(30 * S, 1.0), (60 * S, 1.0)]),
        # At 0 the window [-30 s, 0] holds one sample: no rate there.
        (COUNTER_STEADY, (0, 15 * S), 30 * S, [(15 * S, 1.0)]),
        (COUNTER_RESET, (45 * S,), 45 * S, [(45 * S, 35 / 45)]),
        # The window [15 s, 45 s]: 25 -> 5 (reset, +5) -> 20 (+15): 20 over 30 s.
        (COUNTER_RESET, (45 * S,), 30 * S, [(45 * S, 20 / 30)]),
        # A NaN (staleness marker) is skipped: 0 -> 30 over 30 s.
        ([(0, 0.0), (15 * S, NAN), (30 * S, 30.0)], (30 * S,), 30 * S, [(30 * S, 1.0)]),
        # Only a NaN and one value in the window: no rate.
        ([(0, NAN), (15 * S, 3.0)], (15 * S,), 30 * S, []),
        ([], (15 * S,), 30 * S, []),
    ],
)
def test_rate_points(
    samples: list[tuple[int, float]],
    grid: tuple[int, ...],
    lookback: int,
    expected: list[tuple[int, float]],
) -> None:
    points = rate_points(samples, grid, lookback)
    assert [stamp for stamp, _ in points] == [stamp for stamp, _ in expected]
    assert [value for _, value in points] == pytest.approx([value for _, value in expected])


GAUGE = [(0, 5.0), (10 * S, 9.0), (20 * S, 2.0), (30 * S, NAN), (40 * S, 4.0)]


@pytest.mark.parametrize(
    ("reduce", "grid", "expected"),
    [
        # Windows of 20 s: [0, 20] holds 5, 9, 2; [20, 40] holds 2, NaN, 4; [40, 60] 4.
        (Reduce.MAX, (20 * S, 40 * S, 60 * S), [(20 * S, 9.0), (40 * S, 4.0), (60 * S, 4.0)]),
        (Reduce.MIN, (20 * S, 40 * S, 60 * S), [(20 * S, 2.0), (40 * S, 2.0), (60 * S, 4.0)]),
        (Reduce.LAST, (20 * S, 40 * S, 60 * S), [(20 * S, 2.0), (40 * S, 4.0), (60 * S, 4.0)]),
        # [61 s, 81 s] is empty.
        (Reduce.MAX, (81 * S,), []),
    ],
)
def test_gauge_points(
    reduce: Reduce, grid: tuple[int, ...], expected: list[tuple[int, float]]
) -> None:
    assert gauge_points(GAUGE, grid, 20 * S, reduce) == expected


def test_reduce_names_its_promql_function() -> None:
    assert [r.promql_function for r in Reduce] == [
        "max_over_time",
        "min_over_time",
        "last_over_time",
    ]


@pytest.mark.parametrize(
    ("samples", "grid", "lookback", "expected"),
    [
        # Newest sample at or before each point.
        (
            [(0, 1.0), (10 * S, 2.0)],
            (5 * S, 10 * S, 12 * S),
            300 * S,
            [(5 * S, 1.0), (10 * S, 2.0), (12 * S, 2.0)],
        ),
        # Older than the lookback: nothing, as PromQL.
        ([(0, 1.0)], (301 * S,), 300 * S, []),
        # A staleness marker hides the older value.
        ([(0, 1.0), (10 * S, NAN)], (12 * S,), 300 * S, []),
        # Before the first sample: nothing.
        ([(10 * S, 1.0)], (5 * S,), 300 * S, []),
    ],
)
def test_grid_samples(
    samples: list[tuple[int, float]],
    grid: tuple[int, ...],
    lookback: int,
    expected: list[tuple[int, float]],
) -> None:
    assert grid_samples(samples, grid, lookback) == expected


@pytest.mark.parametrize(
    ("samples", "instants"),
    [
        # +1 at 10, nothing at 20, +2 at 30, a drop to 0 (restart, no kill) at 40, +1 at 50.
        (
            [(0, 0.0), (10, 1.0), (20, 1.0), (30, 3.0), (40, 0.0), (50, 1.0)],
            [10, 30, 30, 50],
        ),
        # A drop to 1 is a restart that counted one kill already.
        ([(0, 3.0), (10, 1.0)], [10]),
        # The first sample has nothing before it, whatever its value.
        ([(0, 5.0)], []),
        # NaN is skipped: 1 -> 2 across it is one kill at 20.
        ([(0, 1.0), (10, NAN), (20, 2.0)], [20]),
        ([], []),
    ],
)
def test_increment_instants(samples: list[tuple[int, float]], instants: list[int]) -> None:
    assert increment_instants(samples) == instants


def test_sum_points_adds_at_equal_timestamps() -> None:
    assert sum_points([[(1, 1.0), (2, 2.0)], [(2, 0.5), (3, 3.0)]]) == [
        (1, 1.0),
        (2, 2.5),
        (3, 3.0),
    ]


def test_ratio_points_divides_where_both_exist_and_the_denominator_is_positive() -> None:
    numerator = [(1, 1.0), (2, 2.0), (3, 3.0), (4, NAN)]
    denominator = [(1, 4.0), (2, 0.0), (4, 1.0), (5, 2.0)]
    # 1 / 4 at 1; 2 / 0 at 2 skipped; no denominator at 3; NaN at 4.
    assert ratio_points(numerator, denominator) == [(1, 0.25)]


# ------------------------------------------------------------------ assembly

REF = ("shop", "web-0", "app")


def test_assembler_sums_a_key_divides_ratios_clamps_and_keeps_the_range() -> None:
    assembler = HistoryAssembler(10, 40)
    cpu = measure("cpu_cores")
    # Two cgroups of the same container (a replaced pod) on two nodes: added up.
    assembler.add_points(cpu, REF, [(10, 0.5), (20, 0.5), (50, 9.0)])
    assembler.add_points(cpu, REF, [(20, 0.25), (30, NAN)])
    throttled = measure("cpu_throttled_ratio")
    assembler.add_points(throttled, REF, [(10, 2.0), (20, 5.0), (30, 1.0)], part=0)
    assembler.add_points(throttled, REF, [(10, 8.0), (20, 4.0), (30, 0.0)], part=1)
    assembler.add_points(measure("io_some"), ("n1",), [(10, 1.02), (20, -0.01), (30, 0.5)])
    assembler.add_points(measure("node_memory_available_bytes"), ("n1",), [(10, 5e9)])
    quota = measure("quota_used")
    # The same quota from two kube-state-metrics replicas: the larger, not the sum.
    assembler.add_points(quota, ("shop", "q", "pods"), [(10, 4.0), (20, 5.0)])
    assembler.add_points(quota, ("shop", "q", "pods"), [(10, 4.0), (20, 6.0)])
    oom = measure("oom_kill_ms")
    assembler.add_instants(oom, REF, [30, 5])
    assembler.add_instants(oom, REF, [20])
    history = assembler.history()

    ref = ContainerRef(*REF)
    assert (history.start_ms, history.end_ms) == (10, 40)
    # 0.5 at 10; 0.5 + 0.25 at 20; NaN skipped; 50 is after the end.
    assert list(history.cpu_cores[ref]) == [(10, 0.5), (20, 0.75)]
    # 2/8 at 10; 5/4 clamped to 1 at 20; 1/0 dropped at 30.
    assert list(history.cpu_throttled_ratio[ref]) == [(10, 0.25), (20, 1.0)]
    assert list(history.node_pressure["n1"]["io_some"]) == [(10, 1.0), (20, 0.0), (30, 0.5)]
    assert list(history.node_memory_available_bytes["n1"]) == [(10, 5e9)]
    assert list(history.quota_used[QuotaRef("shop", "q", "pods")]) == [(10, 4.0), (20, 6.0)]
    # 5 is before the start.
    assert history.oom_kill_ms[ref] == (20, 30)
    # Nothing measured: absent, not empty or zero.
    assert history.memory_working_set_bytes == {}
    assert history.node_ephemeral_storage_available_bytes == {}
    assert set(history.node_pressure["n1"]) == {"io_some"}


def test_assembler_leaves_out_a_key_with_nothing_inside_the_range() -> None:
    assembler = HistoryAssembler(100, 200)
    assembler.add_points(measure("cpu_cores"), REF, [(50, 1.0)])
    assembler.add_instants(measure("oom_kill_ms"), REF, [250])
    history = assembler.history()
    assert history.cpu_cores == {}
    assert history.oom_kill_ms == {}


def test_assembler_refuses_the_wrong_kind_of_input() -> None:
    assembler = HistoryAssembler(0, 1)
    with pytest.raises(KubepulseValueError, match="use add_instants"):
        assembler.add_points(measure("oom_kill_ms"), REF, [])
    with pytest.raises(KubepulseValueError, match="use add_points"):
        assembler.add_instants(measure("cpu_cores"), REF, [])
    with pytest.raises(KubepulseValueError, match="no part 1"):
        assembler.add_points(measure("cpu_cores"), REF, [], part=1)
    with pytest.raises(KubepulseValueError, match="before it starts"):
        HistoryAssembler(1, 0)


def test_selections_are_what_the_labels_allow() -> None:
    for row in MEASURES:
        expected = {
            CONTAINER_KEY: Selection.CONTAINERS,
            NODE_KEY: Selection.NODES,
        }.get(row.key, Selection.QUOTAS)
        assert row.selection is expected, row.name
        assert isinstance(row, Measure)


def test_the_fast_transforms_equal_the_stats_definitions_on_every_window() -> None:
    """``rate_points`` and ``gauge_points`` use running sums; ``exact_evaluate`` is the
    definition. Pseudo-random counters with restarts and NaN gaps, on grids finer and
    coarser than the samples."""
    generator = random.Random(6)
    for _ in range(40):
        stamps = sorted(generator.sample(range(0, 600 * S, 250), generator.randint(0, 60)))
        counter: list[tuple[int, float]] = []
        gauge: list[tuple[int, float]] = []
        total = generator.uniform(0, 1e6)
        for stamp in stamps:
            total = (
                generator.uniform(0, 50)
                if generator.random() < 0.1
                else total + generator.uniform(0, 30)
            )
            counter.append((stamp, NAN if generator.random() < 0.05 else total))
            gauge.append((stamp, NAN if generator.random() < 0.05 else generator.uniform(-5, 5)))
        step = generator.choice((7 * S, 15 * S, 60 * S))
        lookback = generator.choice((step, 2 * step, 45 * S))
        grid = evaluation_grid(0, 620 * S, step)
        usable = [(t, v) for t, v in counter if not math.isnan(v)]
        expected_rates = []
        for point in grid:
            window = [(t, v) for t, v in usable if point - lookback <= t <= point]
            value = exact_evaluate(
                Aggregation(AggregationKind.RATE),
                SeriesKind.COUNTER,
                [t for t, _ in window],
                [v for _, v in window],
            )
            if value is not None:
                expected_rates.append((point, value))
        rates = rate_points(counter, grid, lookback)
        assert [t for t, _ in rates] == [t for t, _ in expected_rates]
        assert [v for _, v in rates] == pytest.approx([v for _, v in expected_rates], rel=1e-9)
        for reduce in Reduce:
            expected = []
            for point in grid:
                window = [(t, v) for t, v in gauge if point - lookback <= t <= point]
                value = exact_evaluate(
                    reduce.aggregation,
                    SeriesKind.GAUGE,
                    [t for t, _ in window],
                    [v for _, v in window],
                )
                if value is not None:
                    expected.append((point, value))
            assert gauge_points(gauge, grid, lookback, reduce) == expected

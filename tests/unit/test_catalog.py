"""The metric catalog: its rules, its lookups, its coverage of Contract 1, and its docs.

``docs/metrics.md`` is checked against the catalog the way kube-state-metrics'
``make doccheck`` checks its docs: every difference is named (missing on one side, type,
unit, labels or help text differing, listed under the wrong scope), and the generated
block must be exactly what ``python -m kubepulse.catalog --markdown`` prints.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from kubepulse import catalog
from kubepulse.catalog import (
    CATALOG,
    GENERATED_BEGIN_MARKER,
    GENERATED_END_MARKER,
    HOST_PROCESS_TOP_N_DEFAULT,
    LABEL_DESCRIPTIONS,
    MetricSpec,
    MetricType,
    Scope,
    Source,
    UnknownMetricError,
    by_scope,
    get,
    names,
    render_markdown,
    validate_catalog,
)
from kubepulse.errors import KubepulseValueError

DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
REGENERATE_HINT = (
    "docs/metrics.md and kubepulse/catalog.py disagree: change the catalog, then run "
    "`python -m kubepulse.catalog --markdown` and paste its output over the generated block."
)

COUNTER = MetricType.COUNTER
GAUGE = MetricType.GAUGE
HISTOGRAM = MetricType.HISTOGRAM

# ------------------------------------------------------------------ Contract 1 coverage

# Every item of "Contract 1: what the exporter publishes" in DESIGN.md, with the metric
# that covers it, its type and the labels it must carry beyond the scope's own.
CONTRACT_1: list[tuple[str, str, MetricType, tuple[str, ...]]] = [
    ("container: CPU usage seconds", "kubepulse_container_cpu_usage_seconds_total", COUNTER, ()),
    (
        "container: throttled periods",
        "kubepulse_container_cpu_cfs_throttled_periods_total",
        COUNTER,
        (),
    ),
    (
        "container: elapsed periods (throttling ratio denominator)",
        "kubepulse_container_cpu_cfs_periods_total",
        COUNTER,
        (),
    ),
    (
        "container: throttled seconds",
        "kubepulse_container_cpu_cfs_throttled_seconds_total",
        COUNTER,
        (),
    ),
    (
        "container: memory working set (usage - inactive_file)",
        "kubepulse_container_memory_working_set_bytes",
        GAUGE,
        (),
    ),
    ("container: memory usage", "kubepulse_container_memory_usage_bytes", GAUGE, ()),
    ("container: RSS", "kubepulse_container_memory_rss_bytes", GAUGE, ()),
    ("container: cache", "kubepulse_container_memory_cache_bytes", GAUGE, ()),
    ("container: swap", "kubepulse_container_memory_swap_bytes", GAUGE, ()),
    (
        "container: memory limit read from the cgroup",
        "kubepulse_container_memory_limit_bytes",
        GAUGE,
        (),
    ),
    ("container: CPU limit read from the cgroup", "kubepulse_container_cpu_limit_cores", GAUGE, ()),
    (
        "container: requests from the pod spec",
        "kubepulse_container_resource_requests",
        GAUGE,
        ("resource", "unit"),
    ),
    (
        "container: limits from the pod spec",
        "kubepulse_container_resource_limits",
        GAUGE,
        ("resource", "unit"),
    ),
    ("container: OOM kills", "kubepulse_container_oom_kills_total", COUNTER, ()),
    (
        "container: last termination reason (OOMKilled)",
        "kubepulse_container_last_terminated_reason",
        GAUGE,
        ("reason",),
    ),
    (
        "container: last termination time",
        "kubepulse_container_last_terminated_timestamp_seconds",
        GAUGE,
        (),
    ),
    ("container: restarts", "kubepulse_container_restarts_total", COUNTER, ()),
    ("container: processes", "kubepulse_container_processes", GAUGE, ()),
    ("container: threads", "kubepulse_container_threads", GAUGE, ()),
    (
        "container: PSI cpu some",
        "kubepulse_container_pressure_cpu_waiting_seconds_total",
        COUNTER,
        (),
    ),
    (
        "container: PSI cpu full",
        "kubepulse_container_pressure_cpu_stalled_seconds_total",
        COUNTER,
        (),
    ),
    (
        "container: PSI memory some",
        "kubepulse_container_pressure_memory_waiting_seconds_total",
        COUNTER,
        (),
    ),
    (
        "container: PSI memory full",
        "kubepulse_container_pressure_memory_stalled_seconds_total",
        COUNTER,
        (),
    ),
    (
        "container: PSI io some",
        "kubepulse_container_pressure_io_waiting_seconds_total",
        COUNTER,
        (),
    ),
    (
        "container: PSI io full",
        "kubepulse_container_pressure_io_stalled_seconds_total",
        COUNTER,
        (),
    ),
    (
        "container: histogram of sampled CPU usage",
        "kubepulse_container_sampled_cpu_usage_cores",
        HISTOGRAM,
        (),
    ),
    (
        "container: histogram of sampled working set",
        "kubepulse_container_sampled_memory_working_set_bytes",
        HISTOGRAM,
        (),
    ),
    (
        "container: info for joins",
        "kubepulse_container_info",
        GAUGE,
        ("container_id", "image", "runtime"),
    ),
    ("pod: CPU usage rolled up", "kubepulse_pod_cpu_usage_seconds_total", COUNTER, ()),
    ("pod: working set rolled up", "kubepulse_pod_memory_working_set_bytes", GAUGE, ()),
    ("pod: memory usage rolled up", "kubepulse_pod_memory_usage_bytes", GAUGE, ()),
    ("pod: RSS rolled up", "kubepulse_pod_memory_rss_bytes", GAUGE, ()),
    ("pod: cache rolled up", "kubepulse_pod_memory_cache_bytes", GAUGE, ()),
    ("pod: OOM kills rolled up", "kubepulse_pod_oom_kills_total", COUNTER, ()),
    ("pod: processes rolled up", "kubepulse_pod_processes", GAUGE, ()),
    ("pod: threads rolled up", "kubepulse_pod_threads", GAUGE, ()),
    ("pod: PSI rolled up", "kubepulse_pod_pressure_memory_stalled_seconds_total", COUNTER, ()),
    ("pod: QoS class", "kubepulse_pod_qos_class_info", GAUGE, ("qos_class",)),
    ("pod: limits missing", "kubepulse_pod_resource_limits_missing", GAUGE, ("resource",)),
    ("pod: requests missing", "kubepulse_pod_resource_requests_missing", GAUGE, ("resource",)),
    (
        "pod: effective requests",
        "kubepulse_pod_resource_requests",
        GAUGE,
        ("resource", "unit"),
    ),
    ("pod: effective limits", "kubepulse_pod_resource_limits", GAUGE, ("resource", "unit")),
    ("node: CPU", "kubepulse_node_cpu_seconds_total", COUNTER, ("mode",)),
    ("node: memory available", "kubepulse_node_memory_available_bytes", GAUGE, ()),
    ("node: memory total", "kubepulse_node_memory_total_bytes", GAUGE, ()),
    ("node: PSI cpu", "kubepulse_node_pressure_cpu_waiting_seconds_total", COUNTER, ()),
    ("node: PSI memory some", "kubepulse_node_pressure_memory_waiting_seconds_total", COUNTER, ()),
    ("node: PSI memory full", "kubepulse_node_pressure_memory_stalled_seconds_total", COUNTER, ()),
    ("node: PSI io some", "kubepulse_node_pressure_io_waiting_seconds_total", COUNTER, ()),
    ("node: PSI io full", "kubepulse_node_pressure_io_stalled_seconds_total", COUNTER, ()),
    ("node: capacity", "kubepulse_node_status_capacity", GAUGE, ("resource", "unit")),
    ("node: allocatable", "kubepulse_node_status_allocatable", GAUGE, ("resource", "unit")),
    (
        "node: ephemeral storage capacity",
        "kubepulse_node_ephemeral_storage_capacity_bytes",
        GAUGE,
        (),
    ),
    ("node: ephemeral storage used", "kubepulse_node_ephemeral_storage_used_bytes", GAUGE, ()),
    (
        "node: ephemeral storage available",
        "kubepulse_node_ephemeral_storage_available_bytes",
        GAUGE,
        (),
    ),
    (
        "node: runtime overhead CPU",
        "kubepulse_node_runtime_cpu_usage_seconds_total",
        COUNTER,
        ("runtime", "component"),
    ),
    (
        "node: runtime overhead memory",
        "kubepulse_node_runtime_memory_rss_bytes",
        GAUGE,
        ("runtime", "component"),
    ),
    (
        "node: runtime processes",
        "kubepulse_node_runtime_processes",
        GAUGE,
        ("runtime", "component"),
    ),
    ("node: pods", "kubepulse_node_pods", GAUGE, ()),
    (
        "host processes: CPU by group",
        "kubepulse_host_process_cpu_usage_seconds_total",
        COUNTER,
        ("group",),
    ),
    (
        "host processes: memory by group",
        "kubepulse_host_process_memory_rss_bytes",
        GAUGE,
        ("group",),
    ),
    ("host processes: count by group", "kubepulse_host_processes", GAUGE, ("group",)),
    ("host processes: folded groups", "kubepulse_host_process_groups_folded", GAUGE, ()),
    (
        "exporter: collection duration",
        "kubepulse_exporter_collection_duration_seconds",
        HISTOGRAM,
        ("collector",),
    ),
    ("exporter: errors", "kubepulse_exporter_errors_total", COUNTER, ("collector", "reason")),
    ("exporter: series count", "kubepulse_exporter_series", GAUGE, ("collector",)),
    (
        "exporter: last successful collection",
        "kubepulse_exporter_last_success_timestamp_seconds",
        GAUGE,
        ("collector",),
    ),
    (
        "exporter: info",
        "kubepulse_exporter_info",
        GAUGE,
        ("version", "cgroup_version", "runtime"),
    ),
]


@pytest.mark.parametrize(
    ("item", "name", "metric_type", "extra_labels"),
    CONTRACT_1,
    ids=[item for item, *_ in CONTRACT_1],
)
def test_every_contract_1_item_has_a_metric(
    item: str, name: str, metric_type: MetricType, extra_labels: tuple[str, ...]
) -> None:
    spec = get(name)
    assert spec.type is metric_type, f"{item}: {name} is a {spec.type.value}"
    missing = [label for label in extra_labels if label not in spec.labels]
    assert not missing, f"{item}: {name} lacks labels {missing}"
    assert spec.labels[: len(spec.scope.identity_labels)] == spec.scope.identity_labels


def test_contract_1_table_has_no_duplicates_and_every_scope_is_covered() -> None:
    covered = [name for _, name, _, _ in CONTRACT_1]
    assert len(covered) == len(set(covered))
    assert {get(name).scope for name in covered} == set(Scope)


# ------------------------------------------------------------------ catalog-wide rules


def test_names_are_unique_and_in_catalog_order() -> None:
    assert names() == tuple(spec.name for spec in CATALOG)
    assert len(set(names())) == len(CATALOG)


def test_by_scope_partitions_the_catalog() -> None:
    regrouped = [spec for scope in Scope for spec in by_scope(scope)]
    assert sorted(spec.name for spec in regrouped) == sorted(names())
    for scope in Scope:
        assert by_scope(scope), f"no metric for scope {scope}"
        assert all(spec.scope is scope for spec in by_scope(scope))


def test_cgroup_series_of_containers_and_pods_carry_pod_uid_and_spec_series_do_not() -> None:
    for spec in (*by_scope(Scope.CONTAINER), *by_scope(Scope.POD)):
        has_uid = "pod_uid" in spec.labels
        assert has_uid == (spec.source is Source.CGROUP), spec.name
    for scope in (Scope.NODE, Scope.HOST_PROCESS, Scope.EXPORTER):
        assert all("pod_uid" not in spec.labels for spec in by_scope(scope))


def test_container_and_pod_pressure_is_cgroup_v2_only_and_node_pressure_is_not() -> None:
    for spec in CATALOG:
        is_pressure = "_pressure_" in spec.name
        if spec.scope in (Scope.CONTAINER, Scope.POD):
            assert spec.cgroup_v2_only == is_pressure, spec.name
        else:
            assert not spec.cgroup_v2_only, spec.name
    assert "kubepulse_node_pressure_cpu_stalled_seconds_total" not in names()


def test_every_counter_ends_in_total_and_its_family_name_does_not() -> None:
    for spec in CATALOG:
        if spec.type is COUNTER:
            assert spec.name.endswith("_total")
            assert spec.family_name == spec.name.removesuffix("_total")
        else:
            assert spec.family_name == spec.name


def test_histogram_sample_names_and_buckets() -> None:
    cpu = get("kubepulse_container_sampled_cpu_usage_cores")
    memory = get("kubepulse_container_sampled_memory_working_set_bytes")
    assert cpu.sample_names == (
        "kubepulse_container_sampled_cpu_usage_cores_bucket",
        "kubepulse_container_sampled_cpu_usage_cores_count",
        "kubepulse_container_sampled_cpu_usage_cores_sum",
    )
    assert (cpu.buckets[0], cpu.buckets[-1]) == (0.01, 64.0)
    assert (memory.buckets[0], memory.buckets[-1]) == (2.0**20, 2.0**36)
    for earlier, later in zip(memory.buckets, memory.buckets[1:], strict=False):
        assert later == 2 * earlier
    assert get("kubepulse_container_info").sample_names == ("kubepulse_container_info",)


def test_every_label_used_is_described_and_every_description_is_used() -> None:
    used = {label for spec in CATALOG for label in spec.labels}
    assert used == set(LABEL_DESCRIPTIONS)


def test_help_of_cgroup_metrics_names_the_cgroup_or_the_metric_it_derives_from() -> None:
    for spec in CATALOG:
        if spec.source is Source.CGROUP:
            assert "cgroup" in spec.help or "kubepulse_container_" in spec.help, spec.name


# ------------------------------------------------------------------ spec validation


def _valid_spec(**overrides: Any) -> MetricSpec:
    fields: dict[str, Any] = {
        "name": "kubepulse_container_example_bytes",
        "type": GAUGE,
        "unit": "bytes",
        "labels": ("namespace", "pod", "container", "node", "pod_uid"),
        "help": "Example figure of the container, from memory.example (cgroup v2).",
        "scope": Scope.CONTAINER,
        "source": Source.CGROUP,
    }
    fields.update(overrides)
    return MetricSpec(**fields)


_CONTAINER_CGROUP = ("namespace", "pod", "container", "node", "pod_uid")
_CONTAINER_SPEC = ("namespace", "pod", "container", "node")


def test_the_valid_spec_used_below_is_valid() -> None:
    spec = _valid_spec()
    assert spec.family_name == "kubepulse_container_example_bytes"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"name": "container_example_bytes"}, "'kubepulse_' followed", id="no-prefix"),
        pytest.param({"name": "kubepulse_container_Example_bytes"}, "lower-case", id="upper"),
        pytest.param(
            {"name": "kubepulse_container__example_bytes"}, "single underscores", id="double-us"
        ),
        pytest.param(
            {"name": "kubepulse_pod_example_bytes"},
            "starts with 'kubepulse_container_'",
            id="scope-prefix",
        ),
        pytest.param(
            {"type": COUNTER},
            "a counter's name ends with '_total'",
            id="counter-without-total",
        ),
        pytest.param(
            {"name": "kubepulse_container_example_bytes_total"},
            "only counters end with '_total'",
            id="gauge-with-total",
        ),
        pytest.param({"unit": "seconds"}, "has '_seconds' at the end", id="unit-not-in-name"),
        pytest.param(
            {"type": COUNTER, "unit": "seconds", "name": "kubepulse_container_example_total"},
            "has '_seconds' before '_total'",
            id="counter-unit-not-in-name",
        ),
        pytest.param({"unit": ""}, "ends in '_bytes' but the unit is empty", id="unit-missing"),
        pytest.param(
            {"unit": "kilobytes", "name": "kubepulse_container_example_kilobytes"},
            "is not one of",
            id="unknown-unit",
        ),
        pytest.param(
            {"name": "kubepulse_container_example_count", "unit": ""},
            "suffix the exposition format adds",
            id="reserved-suffix",
        ),
        pytest.param(
            {"name": "kubepulse_container_example_info_total", "unit": "", "type": COUNTER},
            "'_info' metric is a gauge",
            id="info-counter",
        ),
        pytest.param(
            {"labels": (*_CONTAINER_CGROUP, "__meta")}, "'__' are reserved", id="label-dunder"
        ),
        pytest.param(
            {"labels": (*_CONTAINER_CGROUP, "Bad-Label")},
            "not a lower-case Prometheus label",
            id="label-invalid",
        ),
        pytest.param(
            {"labels": (*_CONTAINER_CGROUP, "le")}, "reserved by Prometheus", id="label-le"
        ),
        pytest.param(
            {"labels": (*_CONTAINER_CGROUP, "instance")},
            "reserved by Prometheus",
            id="label-instance",
        ),
        pytest.param(
            {"labels": (*_CONTAINER_CGROUP, "image", "image")}, "listed twice", id="label-twice"
        ),
        pytest.param(
            {"labels": _CONTAINER_SPEC}, "first, in that order", id="cgroup-without-pod-uid"
        ),
        pytest.param(
            {"labels": ("pod", "namespace", "container", "node", "pod_uid")},
            "first, in that order",
            id="identity-order",
        ),
        pytest.param(
            {"source": Source.KUBERNETES_API},
            "pod_uid only goes on cgroup-derived",
            id="spec-with-pod-uid",
        ),
        pytest.param({"source": Source.HOST}, "come from", id="container-from-host"),
        pytest.param(
            {
                "name": "kubepulse_node_example_bytes",
                "scope": Scope.NODE,
                "source": Source.HOST,
                "labels": ("node", "pod"),
            },
            "identifies objects of another scope",
            id="node-with-pod-label",
        ),
        pytest.param({"help": "example figure."}, "capital letter", id="help-lowercase"),
        pytest.param({"help": "Example figure"}, "full stop", id="help-no-stop"),
        pytest.param(
            {"help": "Example figure. Read from memory.example."},
            "one sentence",
            id="two-sentences",
        ),
        pytest.param({"help": "Example | figure."}, "one line", id="help-pipe"),
        pytest.param({"help": "Example\nfigure."}, "one line", id="help-newline"),
        pytest.param({"cgroup_v2_only": True}, "says 'cgroup v2 only'", id="v2-only-help-silent"),
        pytest.param(
            {
                "labels": _CONTAINER_SPEC,
                "source": Source.KUBERNETES_API,
                "cgroup_v2_only": True,
                "help": "Example figure, from the pod spec (cgroup v2 only).",
            },
            "only cgroup metrics can be cgroup v2 only",
            id="v2-only-not-cgroup",
        ),
        pytest.param({"buckets": (1.0, 2.0)}, "only histograms have buckets", id="gauge-buckets"),
        pytest.param({"type": HISTOGRAM}, "at least one bucket", id="histogram-no-buckets"),
        pytest.param(
            {"type": HISTOGRAM, "buckets": (1.0, 4.0, 2.0)},
            "2.0 follows 4.0",
            id="unsorted",
        ),
        pytest.param(
            {"type": HISTOGRAM, "buckets": (1.0, 2.0, 2.0)},
            "2.0 follows 2.0",
            id="duplicate-bound",
        ),
        pytest.param({"type": HISTOGRAM, "buckets": (1.0, math.inf)}, "finite", id="explicit-inf"),
        pytest.param({"type": HISTOGRAM, "buckets": (math.nan,)}, "finite", id="nan-bound"),
    ],
)
def test_an_invalid_spec_is_refused_with_a_reason(overrides: dict[str, Any], message: str) -> None:
    name = overrides.get("name", "kubepulse_container_example_bytes")
    with pytest.raises(KubepulseValueError, match=re.escape(message)) as raised:
        _valid_spec(**overrides)
    assert str(raised.value).startswith(f"metric {name!r}: ")


# ------------------------------------------------------------------ catalog validation


def test_the_catalog_is_valid() -> None:
    validate_catalog(CATALOG)


def test_a_name_defined_twice_is_refused() -> None:
    spec = _valid_spec()
    with pytest.raises(KubepulseValueError, match="is defined twice"):
        validate_catalog([spec, spec])


def test_a_counter_and_a_gauge_sharing_a_family_name_are_refused() -> None:
    counter = _valid_spec(name="kubepulse_container_example_total", type=COUNTER, unit="")
    gauge = _valid_spec(name="kubepulse_container_example", unit="")
    with pytest.raises(KubepulseValueError, match="both would be family"):
        validate_catalog([counter, gauge])
    with pytest.raises(KubepulseValueError, match="both would be family"):
        validate_catalog([gauge, counter])


def test_an_undescribed_label_is_refused() -> None:
    spec = _valid_spec(labels=(*_CONTAINER_CGROUP, "flavour"))
    with pytest.raises(KubepulseValueError, match="'flavour' is not described"):
        validate_catalog([spec])
    validate_catalog([spec], {**LABEL_DESCRIPTIONS, "flavour": "A flavour."})


# ------------------------------------------------------------------ lookups


def test_get_returns_the_spec() -> None:
    spec = get("kubepulse_container_memory_working_set_bytes")
    assert spec.type is GAUGE
    assert spec.unit == "bytes"
    assert spec.scope is Scope.CONTAINER


@pytest.mark.parametrize(
    ("looked_up", "suggested"),
    [
        ("container_cpu_usage_seconds_total", "kubepulse_container_cpu_usage_seconds_total"),
        ("kubepulse_container_cpu_usage_seconds", "kubepulse_container_cpu_usage_seconds_total"),
        ("container_oom_kills", "kubepulse_container_oom_kills_total"),
        (
            "kubepulse_container_memory_workingset_bytes",
            "kubepulse_container_memory_working_set_bytes",
        ),
        ("kubepulse_node_memory_availabe_bytes", "kubepulse_node_memory_available_bytes"),
    ],
)
def test_get_suggests_the_closest_name(looked_up: str, suggested: str) -> None:
    with pytest.raises(UnknownMetricError) as raised:
        get(looked_up)
    error = raised.value
    assert error.name == looked_up
    assert error.suggestions[0] == suggested
    assert f"did you mean {suggested!r}" in str(error)


def test_an_unknown_name_is_a_key_error_and_a_value_error_with_a_readable_message() -> None:
    with pytest.raises(KeyError) as raised:
        get("completely_unrelated")
    error = raised.value
    assert isinstance(error, UnknownMetricError)
    assert isinstance(error, KubepulseValueError)
    assert isinstance(error, ValueError)
    assert error.suggestions == ()
    message = str(error)
    assert message.startswith("unknown metric 'completely_unrelated': no metric")
    assert "python -m kubepulse.catalog --names" in message


# ------------------------------------------------------------------ command line


def test_main_prints_the_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert catalog.main(["--markdown"]) == 0
    assert capsys.readouterr().out == render_markdown()


def test_main_prints_the_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert catalog.main(["--names"]) == 0
    assert capsys.readouterr().out.splitlines() == list(names())


def test_main_needs_an_output_choice(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        catalog.main([])
    assert raised.value.code == 2
    assert "--markdown" in capsys.readouterr().err


# ------------------------------------------------------------------ docs agreement


@dataclasses.dataclass(frozen=True)
class DocumentedMetric:
    """One row of a metric table in docs/metrics.md, and the heading it sits under."""

    name: str
    type: str
    unit: str
    labels: tuple[str, ...]
    description: str
    heading: str


_EMPTY_CELL = "—"


def _generated_block(docs_text: str) -> str | None:
    begin = docs_text.find(GENERATED_BEGIN_MARKER)
    end = docs_text.find(GENERATED_END_MARKER)
    if begin < 0 or end < begin:
        return None
    return docs_text[begin : end + len(GENERATED_END_MARKER)] + "\n"


def _parse_metric_rows(block: str) -> tuple[list[DocumentedMetric], list[str]]:
    rows: list[DocumentedMetric] = []
    problems: list[str] = []
    heading = ""
    for line_number, line in enumerate(block.splitlines(), start=1):
        if line.startswith("### "):
            heading = line.removeprefix("### ").strip()
            continue
        if not line.startswith("| `kubepulse_"):
            continue
        cells = [
            cell.strip() for cell in line.strip().removeprefix("|").removesuffix("|").split("|")
        ]
        if len(cells) == 2:  # the histogram bucket table
            continue
        if len(cells) != 5:
            problems.append(
                f"generated block line {line_number}: expected 5 cells "
                f"(name | type | unit | labels | description), found {len(cells)}: {line}"
            )
            continue
        name, metric_type, unit, labels, description = cells
        rows.append(
            DocumentedMetric(
                name=name.strip("`"),
                type=metric_type,
                unit="" if unit == _EMPTY_CELL else unit,
                labels=()
                if labels == _EMPTY_CELL
                else tuple(label.strip().strip("`") for label in labels.split(",")),
                description=description,
                heading=heading,
            )
        )
    return rows, problems


def docs_disagreements(docs_text: str, specs: Sequence[MetricSpec]) -> list[str]:
    """Every difference between the docs' metric tables and ``specs``, one line each."""
    block = _generated_block(docs_text)
    if block is None:
        return [
            f"no generated block: the markers {GENERATED_BEGIN_MARKER!r} and "
            f"{GENERATED_END_MARKER!r} are missing or out of order"
        ]
    rows, problems = _parse_metric_rows(block)
    documented: dict[str, DocumentedMetric] = {}
    for documented_row in rows:
        if documented_row.name in documented:
            problems.append(f"documented twice: {documented_row.name}")
        documented[documented_row.name] = documented_row
    defined = {spec.name: spec for spec in specs}
    for spec in specs:
        row = documented.get(spec.name)
        if row is None:
            problems.append(f"missing in docs: {spec.name} ({spec.scope.value} scope)")
            continue
        if row.heading != spec.scope.title:
            problems.append(
                f"{spec.name}: listed under {row.heading!r} in the docs but its scope is "
                f"{spec.scope.value} ({spec.scope.title!r})"
            )
        if row.type != spec.type.value:
            problems.append(
                f"{spec.name}: type differs: docs say {row.type}, catalog says {spec.type.value}"
            )
        if row.unit != spec.unit:
            problems.append(
                f"{spec.name}: unit differs: docs say {row.unit!r}, catalog says {spec.unit!r}"
            )
        if row.labels != spec.labels:
            problems.append(
                f"{spec.name}: labels differ: docs say {list(row.labels)}, "
                f"catalog says {list(spec.labels)}"
            )
        if row.description != spec.help:
            problems.append(
                f"{spec.name}: help text differs:\n  docs:    {row.description}\n"
                f"  catalog: {spec.help}"
            )
    problems.extend(
        f"missing in catalog: {row.name} (documented under {row.heading!r})"
        for row in rows
        if row.name not in defined
    )
    return problems


@pytest.fixture(scope="module")
def docs_text() -> str:
    return DOCS_PATH.read_text(encoding="utf-8")


def test_docs_tables_agree_with_the_catalog(docs_text: str) -> None:
    problems = docs_disagreements(docs_text, CATALOG)
    assert not problems, REGENERATE_HINT + "\n" + "\n".join(problems)


def test_docs_generated_block_is_exactly_what_the_catalog_renders(docs_text: str) -> None:
    # Catches what the table check does not look at: labels, scope text, bucket bounds.
    assert _generated_block(docs_text) == render_markdown(), REGENERATE_HINT


def _get_or_none(name: str) -> MetricSpec | None:
    try:
        return get(name)
    except UnknownMetricError:
        return None


def test_docs_name_only_metrics_that_exist(docs_text: str) -> None:
    # Prose and example queries mention metrics too; a typo there is a broken query.
    histogram_suffixes = ("_bucket", "_count", "_sum")
    unknown: list[str] = []
    for mention in sorted(set(re.findall(r"kubepulse_[a-z0-9_]*", docs_text))):
        if mention.endswith("_"):  # a prefix, as in `kubepulse_container_sampled_*`
            if not any(name.startswith(mention) for name in names()):
                unknown.append(mention + "*")
            continue
        base = mention
        for suffix in histogram_suffixes:
            candidate = mention.removesuffix(suffix)
            if candidate != mention and _get_or_none(candidate) is not None:
                base = candidate
        if _get_or_none(base) is None:
            unknown.append(mention)
    assert not unknown, f"docs/metrics.md mentions metrics the catalog lacks: {unknown}"


def test_docs_state_the_host_process_top_n_default(docs_text: str) -> None:
    assert f"N = {HOST_PROCESS_TOP_N_DEFAULT} by default" in docs_text


def _drop_row(name: str) -> Callable[[str], str]:
    def mutate(text: str) -> str:
        return "\n".join(line for line in text.splitlines() if not line.startswith(f"| `{name}` |"))

    return mutate


def _replace(old: str, new: str) -> Callable[[str], str]:
    def mutate(text: str) -> str:
        assert old in text, f"the mutation needs {old!r} in the docs"
        return text.replace(old, new, 1)

    return mutate


def _add_row(row: str) -> Callable[[str], str]:
    return _replace("\n### Node metrics", f"\n{row}\n\n### Node metrics")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            _drop_row("kubepulse_container_oom_kills_total"),
            "missing in docs: kubepulse_container_oom_kills_total (container scope)",
            id="row-removed",
        ),
        pytest.param(
            _add_row("| `kubepulse_pod_imaginary` | gauge | — | `node` | Imaginary. |"),
            "missing in catalog: kubepulse_pod_imaginary (documented under 'Pod metrics')",
            id="row-added",
        ),
        pytest.param(
            _replace("| `kubepulse_node_pods` | gauge |", "| `kubepulse_node_pods` | counter |"),
            "kubepulse_node_pods: type differs: docs say counter, catalog says gauge",
            id="type-changed",
        ),
        pytest.param(
            _replace(
                "| `kubepulse_node_memory_total_bytes` | gauge | bytes |",
                "| `kubepulse_node_memory_total_bytes` | gauge | — |",
            ),
            "kubepulse_node_memory_total_bytes: unit differs",
            id="unit-changed",
        ),
        pytest.param(
            _replace(
                "| `kubepulse_node_pods` | gauge | — | `node` |",
                "| `kubepulse_node_pods` | gauge | — | `node`, `phase` |",
            ),
            "kubepulse_node_pods: labels differ: docs say ['node', 'phase'], catalog says ['node']",
            id="labels-changed",
        ),
        pytest.param(
            _replace("Physical memory of the node", "All the memory of the node"),
            "kubepulse_node_memory_total_bytes: help text differs",
            id="help-changed",
        ),
        pytest.param(
            _replace("### Host process metrics", "### Host metrics"),
            "kubepulse_host_processes: listed under 'Host metrics' in the docs",
            id="heading-renamed",
        ),
        pytest.param(
            _replace(GENERATED_END_MARKER, "<!-- the end -->"),
            "no generated block",
            id="marker-lost",
        ),
    ],
)
def test_the_docs_check_names_each_kind_of_disagreement(
    docs_text: str, mutate: Callable[[str], str], expected: str
) -> None:
    problems = docs_disagreements(mutate(docs_text), CATALOG)
    assert any(expected in problem for problem in problems), problems


def test_the_docs_check_reports_a_metric_added_to_the_catalog_only(docs_text: str) -> None:
    extra = _valid_spec()
    problems = docs_disagreements(docs_text, (*CATALOG, extra))
    assert problems == [f"missing in docs: {extra.name} (container scope)"]

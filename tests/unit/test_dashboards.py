"""The Grafana dashboards: generated equals committed, and every query names real metrics.

``scripts/dashboards.py`` is loaded from its file (``scripts/`` is not a package) and run
in-process. Checked here, without Grafana or Prometheus:

- the committed ``charts/kubepulse/dashboards/*.json`` are exactly what it generates, and
  ``--check`` fails, naming the file, when one differs or is extra;
- the Grafana model is sound: stable, unique uids, the current ``schemaVersion``, unique
  panel ids, panels inside the 24-column grid without overlapping, every target on the
  ``$datasource`` variable, every variable an expression uses defined;
- every expression (panel targets and variable queries) has balanced brackets and
  quotes, uses only known PromQL functions, and only metric names that the catalog or
  the adapter's own ``/metrics`` defines (see ``tests/unit/promql_names.py``).

Whether each query returns data from real series is the integration tier's job
(``tests/integration/test_dashboards_promql.py``).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.unit.promql_names import (
    FUNCTIONS,
    allowed_metric_names,
    balance_problem,
    names_used,
)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "dashboards.py"
COMMITTED = REPO / "charts" / "kubepulse" / "dashboards"
EXPECTED_UIDS = {
    "cluster-overview.json": "kubepulse-cluster",
    "namespace.json": "kubepulse-namespace",
    "workload.json": "kubepulse-workload",
    "node-pressure.json": "kubepulse-node",
    "adapter.json": "kubepulse-adapter",
}
GRAFANA_BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range", "__range_s"}
_VARIABLE_REFERENCE = re.compile(r"\$\{?(\w+)\}?")


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kubepulse_dashboards_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_generator()


@pytest.fixture(scope="module")
def dashboards(generator: ModuleType) -> dict[str, dict[str, Any]]:
    return {name: json.loads(text) for name, text in generator.generate().items()}


def test_generated_equals_committed(generator: ModuleType) -> None:
    generated = generator.generate()
    committed = {path.name: path.read_text() for path in sorted(COMMITTED.glob("*.json"))}

    assert sorted(generated) == sorted(committed), "run: python scripts/dashboards.py"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} is stale; run: python scripts/dashboards.py"
    assert generator.main(["--check"]) == 0


def test_check_names_the_files_that_differ(
    generator: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert generator.main(["--output-dir", str(tmp_path)]) == 0
    assert generator.main(["--check", "--output-dir", str(tmp_path)]) == 0
    (tmp_path / "workload.json").write_text("{}\n")
    (tmp_path / "hand-made.json").write_text("{}\n")
    capsys.readouterr()

    assert generator.main(["--check", "--output-dir", str(tmp_path)]) == 1
    message = capsys.readouterr().err
    assert str(tmp_path / "workload.json") in message
    assert str(tmp_path / "hand-made.json") in message
    assert "namespace.json" not in message
    assert "python scripts/dashboards.py" in message


def test_uids_titles_and_schema(
    dashboards: dict[str, dict[str, Any]], generator: ModuleType
) -> None:
    assert {name: board["uid"] for name, board in dashboards.items()} == EXPECTED_UIDS
    assert len({board["title"] for board in dashboards.values()}) == len(dashboards)
    for board in dashboards.values():
        assert board["schemaVersion"] == generator.SCHEMA_VERSION >= 39
        assert board["id"] is None  # Grafana assigns it; a fixed id clashes on import
        assert "kubepulse" in board["tags"]


def test_every_dashboard_has_a_datasource_variable_used_by_every_target(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    for name, board in dashboards.items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", name
        assert variables["datasource"]["query"] == "prometheus", name
        for panel in board["panels"]:
            for target in panel.get("targets", ()):
                assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for variable in variables.values():
            if variable["type"] == "query":
                assert variable["datasource"]["uid"] == "${datasource}", (name, variable["name"])


def test_the_dashboards_offer_the_variables_their_users_expect(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    def names(file: str) -> list[str]:
        return [v["name"] for v in dashboards[file]["templating"]["list"]]

    assert names("namespace.json") == ["datasource", "namespace", "pod"]
    assert names("workload.json")[:3] == ["datasource", "namespace", "workload"]
    assert names("node-pressure.json") == ["datasource", "node"]
    assert names("adapter.json") == ["datasource", "instance"]


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("web-7d9f8c6b5d-x2x9q", "web"),  # Deployment: ReplicaSet hash, pod suffix
        ("api-server-5c4f9b8d7-abcde", "api-server"),
        ("cache-0", "cache"),  # StatefulSet ordinal
        ("node-agent-x7k2p", "node-agent"),  # DaemonSet
    ],
)
def test_the_workload_variable_turns_pod_names_into_workload_names(
    dashboards: dict[str, dict[str, Any]], pod: str, workload: str
) -> None:
    [variable] = [
        v for v in dashboards["workload.json"]["templating"]["list"] if v["name"] == "workload"
    ]
    # Grafana applies a JavaScript regex and keeps the first group; this one is also valid
    # Python, with the same meaning.
    pattern = re.compile(variable["regex"].strip("/"))
    match = pattern.fullmatch(pod)

    assert match is not None
    assert match.group(1) == workload
    assert re.fullmatch(f"{workload}-.+", pod)  # what the panels select with pod=~"$workload-.+"


def test_panels_fit_the_grid_and_do_not_overlap(dashboards: dict[str, dict[str, Any]]) -> None:
    for name, board in dashboards.items():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), name
        taken: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert 0 <= grid["x"] < grid["x"] + grid["w"] <= 24, (name, panel["title"])
            cells = {
                (grid["x"] + dx, grid["y"] + dy)
                for dx in range(grid["w"])
                for dy in range(grid["h"])
            }
            assert not cells & taken, f"{name}: panel {panel['title']!r} overlaps another"
            taken |= cells
        kinds = {panel["type"] for panel in board["panels"]}
        assert kinds <= {"row", "timeseries", "stat", "table"}, name


def test_every_variable_an_expression_uses_is_defined(
    dashboards: dict[str, dict[str, Any]], generator: ModuleType
) -> None:
    for name, board in dashboards.items():
        defined = {v["name"] for v in board["templating"]["list"]}
        for where, expr in generator.queries(board):
            used = set(_VARIABLE_REFERENCE.findall(expr))
            assert used <= defined | GRAFANA_BUILTIN_VARIABLES, (name, where, used - defined)


def test_every_expression_parses_and_uses_only_catalog_or_adapter_metrics(
    dashboards: dict[str, dict[str, Any]], generator: ModuleType
) -> None:
    allowed = allowed_metric_names()
    seen: set[str] = set()
    count = 0
    for name, board in dashboards.items():
        for where, expr in generator.queries(board):
            count += 1
            assert balance_problem(expr) is None, (name, where, balance_problem(expr), expr)
            metrics, functions = names_used(expr)
            if not metrics:  # only a constant line, such as the HPA target
                assert expr.startswith("vector("), f"{name} {where} queries no metric: {expr}"
            assert metrics <= allowed, f"{name} {where}: unknown {sorted(metrics - allowed)}"
            assert functions <= FUNCTIONS, f"{name} {where}: unknown {functions - FUNCTIONS}"
            seen |= metrics
    assert count >= 60
    # The dashboards cover both sides: the exporter's catalog and the adapter's own health.
    assert any(metric.startswith("kubepulse_adapter_") for metric in seen)
    assert any(metric.startswith("kubepulse_node_pressure_") for metric in seen)


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("sum(rate(kubepulse_container_cpu_usage_seconds_total[5m])", "never closed"),
        ('kubepulse_node_pods{node="a"}}', "closes nothing"),
        ('kubepulse_node_pods{node="a}', "unterminated"),
    ],
)
def test_the_bracket_check_can_fail(expr: str, problem: str) -> None:
    found = balance_problem(expr)
    assert found is not None
    assert problem in found


def test_the_name_check_catches_a_misspelt_metric() -> None:
    metrics, functions = names_used(
        'sum by (namespace, le) (rate(kubepulse_container_cpu_usage_second_total{pod=~"$pod"}'
        "[$__rate_interval])) / on (namespace) group_left kubepulse_node_pods > bool 1e3"
    )
    assert metrics == {"kubepulse_container_cpu_usage_second_total", "kubepulse_node_pods"}
    assert functions == {"sum", "rate"}
    assert "kubepulse_container_cpu_usage_second_total" not in allowed_metric_names()
    assert "kubepulse_container_cpu_usage_seconds_total" in allowed_metric_names()
    assert "kubepulse_adapter_api_requests_total" in allowed_metric_names()

"""The alert rules: promtool accepts them, their unit tests pass, and every alert has tests.

``charts/kubepulse/rules/kubepulse.rules.yaml`` is checked with Debian's ``promtool``
(found like the integration tier finds ``prometheus``: the tool cache, then PATH):
``promtool check rules`` and ``promtool test rules tests/promtool/kubepulse.rules.test.yaml``.
Without promtool these two tests skip locally and fail under ``CI=true``.

Read from the YAML, without promtool: every alert has a ``for``, a ``severity`` label,
``summary``, ``description`` and a ``runbook_url`` whose anchor is a heading of
``docs/operations.md``; every alert has at least one promtool case where it fires and
one where it does not; and the expressions use only catalog or adapter metrics, ``up``,
and kube-state-metrics' ``kube_resourcequota`` (the one documented dependency).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.controlplane import find_tool
from tests.unit.promql_names import FUNCTIONS, allowed_metric_names, balance_problem, names_used

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "charts" / "kubepulse" / "rules" / "kubepulse.rules.yaml"
RULE_TESTS = REPO / "tests" / "promtool" / "kubepulse.rules.test.yaml"
OPERATIONS = REPO / "docs" / "operations.md"
SEVERITIES = {"critical", "warning", "info"}
EXTERNAL_METRICS = {"kube_resourcequota"}  # kube-state-metrics; see the rules file's header
INSTALL_HINT = (
    "promtool not found in ~/.cache/kubepulse/tools/bin or PATH; install it with "
    "scripts/install-test-tools.sh (or apt-get install prometheus)"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def promtool() -> Path:
    """promtool, or skip (fail under CI=true) saying how to install it."""
    found = find_tool("promtool")
    if found is None:
        if in_ci():
            pytest.fail(f"{INSTALL_HINT}\n(CI=true: a missing prerequisite fails the run)")
        pytest.skip(INSTALL_HINT)
    return found


def run_promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool()), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )


def alerts() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped."""
    anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return anchor.replace(" ", "-")


def test_promtool_check_rules() -> None:
    checked = run_promtool("check", "rules", str(RULES))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in checked.stdout


def test_promtool_test_rules() -> None:
    tested = run_promtool("test", "rules", str(RULE_TESTS))

    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_rule_tests_use_the_rules_file() -> None:
    document = yaml.safe_load(RULE_TESTS.read_text())
    files = [(RULE_TESTS.parent / path).resolve() for path in document["rule_files"]]

    assert files == [RULES.resolve()]


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    document = yaml.safe_load(RULE_TESTS.read_text())
    firing: Counter[str] = Counter()
    quiet: Counter[str] = Counter()
    for case in document["tests"]:
        for check in case.get("alert_rule_test", ()):
            (firing if check.get("exp_alerts") else quiet)[check["alertname"]] += 1
    names = {alert["alert"] for alert in alerts()}

    assert len(names) >= 7
    for name in sorted(names):
        assert firing[name] >= 1, f"{name} has no promtool case where it fires"
        assert quiet[name] >= 1, f"{name} has no promtool case where it stays quiet"
    assert set(firing) | set(quiet) <= names, "tests for alerts that do not exist"


def test_every_alert_has_for_severity_and_annotations() -> None:
    for alert in alerts():
        name = alert["alert"]
        assert re.fullmatch(r"Kubepulse[A-Z]\w+", name), name
        assert re.fullmatch(r"\d+[smh]", alert.get("for", "")), f"{name}: needs a for"
        assert alert["labels"]["severity"] in SEVERITIES, name
        annotations = alert["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert annotations["summary"].endswith("."), name
        assert annotations["runbook_url"] == f"docs/operations.md#{name.lower()}", name


def test_every_runbook_url_points_at_a_section_of_the_operations_guide() -> None:
    headings = {
        github_anchor(line.lstrip("#"))
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("#")
    }
    for alert in alerts():
        anchor = alert["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in headings, f"docs/operations.md has no heading for #{anchor}"


def test_every_expression_uses_known_metrics() -> None:
    allowed = allowed_metric_names() | EXTERNAL_METRICS
    for alert in alerts():
        expr = alert["expr"]
        assert balance_problem(expr) is None, (alert["alert"], balance_problem(expr))
        metrics, functions = names_used(expr)
        assert metrics, alert["alert"]
        assert metrics <= allowed, f"{alert['alert']}: unknown {sorted(metrics - allowed)}"
        assert functions <= FUNCTIONS, alert["alert"]

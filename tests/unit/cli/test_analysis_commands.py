"""``kubectl pulse`` analysis commands: flags from the registry, tables from the documents.

Bad flags are refused before anything is dialled, so these tests need no cluster; the
tables are rendered from real analysis results of a small recorded cluster, turned into
the API's documents exactly as the adapter and ``--local`` make them. Asking the
adapter through kube-apiserver is covered by the e2e tier (tests/e2e/test_analysis.py).
"""

from __future__ import annotations

import csv
import io

import pytest

from kubepulse.analysis.registry import ANALYSES
from kubepulse.analysis.resources import (
    AnalysisInputs,
    AnalysisRequest,
    Scope,
    parse_params,
    result_document,
)
from kubepulse.cli import main
from kubepulse.cli.analyses import truncation_note
from kubepulse.cli.output import write_rows
from kubepulse.cli.tables import resources_with_tables, table_for
from tests.unit.analysis.small_cluster import NOW, FixedHistory, snapshot


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def test_every_analysis_has_a_command_and_a_table() -> None:
    assert set(resources_with_tables()) == {analysis.resource for analysis in ANALYSES}
    for analysis in ANALYSES:
        with pytest.raises(SystemExit) as raised:
            run(analysis.command, "--help")
        assert raised.value.code == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("breaches", "--threshold-percent", "150"),
         "--threshold-percent must be between 1 and 100, got 150"),
        (("breaches", "--time-window", "soon"), "--time-window"),
        (("recommend", "--target", "cheapest"),
         "--target must be one of balanced, performance, cost"),
        (("quota", "--window", "1s"), "--window must be between 1h and 90d"),
        (("breaches", "-n", "shop", "-A"), "give either -n NAMESPACE or -A, not both"),
        (("breaches", "--top", "2.5"), "--top must be a whole number, got '2.5'"),
        (("recommend", "--top", "0"), "--top must be between 1 and 100000, got 0"),
        (("pressure", "--top", "-3"), "--top must be between 1 and 100000, got -3"),
        (("pressure", "--prometheus-url", "http://127.0.0.1:9"),
         "--prometheus-url needs --local"),
    ],
)  # fmt: skip
def test_bad_flags_fail_before_any_connection(argv: tuple[str, ...], message: str) -> None:
    status, out, err = run(*argv)
    assert status == 1
    assert out == ""
    assert message in err, err


def _document(resource: str, **given: str) -> dict[str, object]:
    analysis = next(item for item in ANALYSES if item.resource == resource)
    params = parse_params(analysis, given)
    namespace = None if analysis.scope is Scope.CLUSTER else "shop"
    name = "web" if analysis.named else None
    inputs = AnalysisInputs(snapshot(), FixedHistory().fetch(NOW - 3_600_000, NOW), ())
    result = analysis.run(inputs, AnalysisRequest(namespace, name, params))
    return result_document(analysis, result, inputs, NOW)


@pytest.mark.parametrize("resource", [analysis.resource for analysis in ANALYSES])
def test_tables_render_the_documents(resource: str) -> None:
    table = table_for(resource)
    rows = table.rows(_document(resource))
    printed = io.StringIO()
    write_rows(rows, table.columns, "table", printed, empty_message=table.empty_message)
    lines = printed.getvalue().splitlines()
    if rows:
        assert lines[0].split() == " ".join(c.header for c in table.columns).split()
        assert len(lines) == len(rows) + 1
    else:
        assert lines == [table.empty_message]
    as_csv = io.StringIO()
    write_rows(rows, table.columns, "csv", as_csv)
    parsed = list(csv.reader(io.StringIO(as_csv.getvalue())))
    assert parsed[0] == [column.header for column in table.columns]
    assert len(parsed) == len(rows) + 1


def test_the_breach_table_shows_the_near_limit_containers() -> None:
    # Both containers use 0.19 of a 0.2-core limit (95 %) and 200Mi of 256Mi (78 %).
    table = table_for("limitbreaches")
    rows = table.rows(_document("limitbreaches"))
    cpu_limit = [row for row in rows if row["finding"].startswith("cpu limit")]
    assert sorted(row["pod"] for row in cpu_limit) == ["web-5d9f7-a", "web-5d9f7-b"]
    assert all(row["detail"].startswith("95% (190m of 200m)") for row in cpu_limit)


def test_the_report_table_totals_the_namespace() -> None:
    rows = table_for("reports").rows(_document("reports"))
    cpu = next(row for row in rows if row["section"] == "total" and row["name"] == "cpu")
    # 2 x 100m requested, 2 x 200m limits, 2 x 190m used.
    assert (cpu["requests"], cpu["limits"], cpu["usage"]) == ("200m", "400m", "380m")


def test_top_shortens_the_breach_table_and_says_what_was_cut() -> None:
    table = table_for("limitbreaches")
    full = _document("limitbreaches")
    cut = _document("limitbreaches", top="1")
    assert len(table.rows(cut)) < len(table.rows(full))
    assert truncation_note(full) is None
    note = truncation_note(cut)
    assert note is not None
    assert note.startswith("note: --top listed only the first items of ")
    for name, count in cut["truncated"].items():  # type: ignore[attr-defined]
        assert f"{name} ({count:,} items)" in note
    assert note.endswith("leave out --top to list them all")

"""``kubectl pulse`` output: tables, CSV, JSON, YAML and progress, on recorded rows."""

from __future__ import annotations

import csv
import io
import json

import pytest
import yaml

from kubepulse.cli.output import Column, Progress, field, write_document, write_rows

ROWS = [
    {"pod": {"namespace": "shop", "name": "web-0"}, "usage": 0.912, "note": "over, by far"},
    {"pod": {"namespace": "shop", "name": "db-0"}, "usage": None, "note": ""},
]
COLUMNS = [
    Column("NAMESPACE", field("pod", "namespace")),
    Column("POD", field("pod", "name")),
    Column("USAGE", field("usage"), lambda value: f"{value:.0%}"),
    Column("NOTE", field("note")),
]


def _written(write: object, *args: object) -> str:
    out = io.StringIO()
    write(*args, out)  # type: ignore[operator]
    return out.getvalue()


def test_table_aligns_columns_and_prints_none_for_absent_values() -> None:
    assert _written(write_rows, ROWS, COLUMNS, "table") == (
        "NAMESPACE   POD     USAGE    NOTE\n"
        "shop        web-0   91%      over, by far\n"
        "shop        db-0    <none>   <none>\n"
    )


def test_csv_has_the_same_cells_with_quoting() -> None:
    text = _written(write_rows, ROWS, COLUMNS, "csv")
    assert list(csv.reader(io.StringIO(text))) == [
        ["NAMESPACE", "POD", "USAGE", "NOTE"],
        ["shop", "web-0", "91%", "over, by far"],
        ["shop", "db-0", "<none>", "<none>"],
    ]


def test_empty_results_say_so_in_a_table_and_keep_the_csv_header() -> None:
    assert _written(write_rows, [], COLUMNS, "table") == "No resources found.\n"
    assert _written(write_rows, [], COLUMNS, "csv") == "NAMESPACE,POD,USAGE,NOTE\n"


@pytest.mark.parametrize(("output", "parse"), [("json", json.loads), ("yaml", yaml.safe_load)])
def test_documents_round_trip(output: str, parse: object) -> None:
    document = {"kind": "LimitBreachReport", "items": ROWS}
    assert parse(_written(write_document, document, output)) == document  # type: ignore[operator]


def test_a_field_path_through_missing_or_wrong_types_reads_none() -> None:
    assert field("pod", "uid")(ROWS[0]) is None
    assert field("usage", "x")(ROWS[0]) is None
    assert field("list", 3)({"list": [1]}) is None
    assert field("list", 0)({"list": [7]}) == 7


def test_progress_draws_on_one_line_and_clears_it() -> None:
    stream = io.StringIO()
    progress = Progress(stream, enabled=True, interval=0.0)
    progress.update("pods", 500)
    progress.step("analysing")
    progress.done()
    assert stream.getvalue() == ("\rcollecting pods: 500\ranalysing           \r" + " " * 20 + "\r")


def test_disabled_progress_writes_nothing() -> None:
    stream = io.StringIO()
    progress = Progress(stream, enabled=False)
    progress.update("pods", 1)
    progress.step("analysing")
    progress.done()
    assert stream.getvalue() == ""

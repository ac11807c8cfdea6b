"""``kubectl pulse``: the commands that exist so far, run in-process."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kubepulse import __version__
from kubepulse.checkpoint import save_checkpoint
from kubepulse.cli import main
from kubepulse.stats import SeriesKind
from kubepulse.store import TimeSeriesStore

START_MS = 1_700_000_000_000


def _store_with_history() -> TimeSeriesStore:
    store = TimeSeriesStore(resolution_ms=15_000)
    for pod in ("web-1", "web-2"):
        series = store.series("cpu_usage", {"pod": pod}, SeriesKind.COUNTER)
        for step in range(40):
            series.append(START_MS + step * 15_000, float(step))
    store.series("memory", {"pod": "web-1"}).append(START_MS, 1.0)
    return store


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


def test_version_prints_the_package_version() -> None:
    assert _run("version") == (0, f"kubepulse {__version__}\n")


def test_checkpoint_inspect_reports_what_the_file_holds(tmp_path: Path) -> None:
    path = tmp_path / "store.ckpt"
    save_checkpoint(_store_with_history(), path)

    status, text = _run("checkpoint", "inspect", str(path), "-o", "json")

    assert status == 0
    report = json.loads(text)
    assert report["series"] == 3
    assert report["samples"] == 81
    assert report["metrics"] == {"cpu_usage": 2, "memory": 1}
    assert report["oldest"] == "2023-11-14T22:13:20Z"
    assert report["newest"] == "2023-11-14T22:23:05Z"
    assert report["sizeBytes"] == path.stat().st_size


def test_checkpoint_inspect_table_lists_metrics_by_series_count(tmp_path: Path) -> None:
    path = tmp_path / "store.ckpt"
    save_checkpoint(_store_with_history(), path)

    status, text = _run("checkpoint", "inspect", str(path))

    assert status == 0
    lines = text.splitlines()
    assert lines[2] == "SERIES      3"
    metric_rows = lines[lines.index("METRIC     SERIES") + 1 :]
    assert metric_rows == ["cpu_usage  2", "memory     1"]


def test_a_corrupt_checkpoint_is_an_error_that_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "store.ckpt"
    path.write_bytes(b"not a checkpoint")

    status, text = _run("checkpoint", "inspect", str(path))

    assert (status, text) == (1, "")
    assert str(path) in capsys.readouterr().err


def test_a_missing_checkpoint_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _ = _run("checkpoint", "inspect", str(tmp_path / "absent.ckpt"))

    assert status == 1
    assert "cannot read checkpoint" in capsys.readouterr().err


def test_unknown_commands_are_usage_errors() -> None:
    with pytest.raises(SystemExit) as exit_info:
        _run("frobnicate")
    assert exit_info.value.code == 2

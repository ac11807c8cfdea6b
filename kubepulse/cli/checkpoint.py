"""``kubectl pulse checkpoint inspect PATH``: what an adapter checkpoint file holds.

Series, samples, time range and metrics, read without starting an adapter, for an
operator who wonders what a restart will restore.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from kubepulse.checkpoint import load_checkpoint
from kubepulse.store import TimeSeriesStore

__all__ = ["add_checkpoint_commands"]

_TOP_METRICS = 20


def _utc(timestamp_ms: int) -> str:
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _checkpoint_report(path: Path, store: TimeSeriesStore) -> dict[str, object]:
    time_range = store.time_range()
    per_metric = Counter(series.name for series in store)
    return {
        "path": str(path),
        "sizeBytes": path.stat().st_size,
        "series": store.series_count,
        "samples": store.sample_count,
        "oldest": None if time_range is None else _utc(time_range[0]),
        "newest": None if time_range is None else _utc(time_range[1]),
        "resolutionSeconds": store.resolution_ms / 1000,
        "retentionSeconds": store.retention_ms / 1000,
        "metrics": dict(sorted(per_metric.items(), key=lambda item: (-item[1], item[0]))),
    }


def _print_checkpoint_table(report: dict[str, object], out: TextIO) -> None:
    rows = [
        ("PATH", report["path"]),
        ("SIZE", f"{report['sizeBytes']} bytes"),
        ("SERIES", report["series"]),
        ("SAMPLES", report["samples"]),
        ("OLDEST", report["oldest"] or "-"),
        ("NEWEST", report["newest"] or "-"),
        ("RESOLUTION", f"{report['resolutionSeconds']:g}s"),
        ("RETENTION", f"{report['retentionSeconds']:g}s"),
    ]
    for key, value in rows:
        out.write(f"{key:<12}{value}\n")
    metrics = report["metrics"]
    assert isinstance(metrics, dict)
    if not metrics:
        return
    width = max(len(name) for name in metrics)
    out.write(f"\n{'METRIC':<{width}}  SERIES\n")
    for index, (name, count) in enumerate(metrics.items()):
        if index == _TOP_METRICS:
            out.write(f"... and {len(metrics) - _TOP_METRICS} more metrics (use -o json)\n")
            break
        out.write(f"{name:<{width}}  {count}\n")


def _inspect(arguments: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    path = Path(arguments.path)
    store = load_checkpoint(path)
    report = _checkpoint_report(path, store)
    if arguments.output == "json":
        json.dump(report, out, indent=2)
        out.write("\n")
    else:
        _print_checkpoint_table(report, out)
    return 0


def add_checkpoint_commands(commands: Any) -> None:
    """Add ``checkpoint inspect`` to the ``kubectl pulse`` subcommands ``commands``."""
    checkpoint = commands.add_parser("checkpoint", help="work with adapter checkpoint files")
    checkpoint_commands = checkpoint.add_subparsers(
        dest="checkpoint_command", metavar="COMMAND", required=True
    )
    inspect = checkpoint_commands.add_parser(
        "inspect", help="show what a checkpoint file holds, without starting an adapter"
    )
    inspect.add_argument("path", help="the checkpoint file, e.g. /var/lib/kubepulse/store.ckpt")
    inspect.add_argument("-o", "--output", choices=("table", "json"), default="table")
    inspect.set_defaults(run=_inspect)

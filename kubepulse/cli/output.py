"""How ``kubectl pulse`` prints results: table, json, yaml or csv, and progress.

Every command produces the same two things, whatever answered it (the adapter's
analysis API through kube-apiserver, or the library in-process):

- a *document*: the whole result as plain JSON data, printed as is by ``-o json`` and
  ``-o yaml``;
- *rows*: the lines of the table, one JSON object per line, chosen by the command.
  ``-o table`` prints the command's columns aligned, as ``kubectl get`` does, with
  ``<none>`` for absent values; ``-o csv`` prints the same columns (RFC 4180 quoting)
  so that spreadsheets and ``awk`` get exactly what the table shows.

Progress goes to standard error, and only when it is a terminal or the user asked for
it, so that ``-o json | jq`` stays clean.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TextIO

import yaml

__all__ = [
    "OUTPUT_FORMATS",
    "Column",
    "Progress",
    "field",
    "write_document",
    "write_rows",
]

OUTPUT_FORMATS: Final = ("table", "json", "yaml", "csv")

_ABSENT: Final = "<none>"


@dataclass(frozen=True)
class Column:
    """One column of a table: its header and how to read a cell from a row.

    Attributes:
        header: upper-case title, as kubectl prints it.
        value: the cell's value from one row object; ``None`` prints ``<none>``.
        show: how to print a present value (numbers, percentages, quantities).
    """

    header: str
    value: Callable[[Mapping[str, Any]], Any]
    show: Callable[[Any], str] = str

    def cell(self, row: Mapping[str, Any]) -> str:
        """The printed cell for ``row``."""
        value = self.value(row)
        if value is None or value == "":
            return _ABSENT
        return self.show(value)


def field(*path: str | int) -> Callable[[Mapping[str, Any]], Any]:
    """A reader of the value at ``path`` in a row (``None`` when any step is missing)."""

    def read(row: Mapping[str, Any]) -> Any:
        value: Any = row
        for step in path:
            if isinstance(step, int):
                if not isinstance(value, list) or step >= len(value):
                    return None
            elif not isinstance(value, Mapping) or step not in value:
                return None
            value = value[step]
        return value

    return read


def write_document(document: Any, output: str, out: TextIO) -> None:
    """Print the whole result as JSON (``json``) or YAML (``yaml``)."""
    if output == "json":
        json.dump(document, out, indent=2, sort_keys=False)
        out.write("\n")
    elif output == "yaml":
        yaml.safe_dump(document, out, sort_keys=False, default_flow_style=False)
    else:
        raise ValueError(f"write_document prints json or yaml, not {output!r}")


def write_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    output: str,
    out: TextIO,
    *,
    empty_message: str = "No resources found.",
) -> None:
    """Print ``rows`` as an aligned table (``table``) or as CSV (``csv``).

    An empty table prints ``empty_message`` instead, as ``kubectl get`` does; an empty
    CSV prints its header only, so that scripts still see the columns.
    """
    cells = [[column.cell(row) for column in columns] for row in rows]
    headers = [column.header for column in columns]
    if output == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(cells)
        return
    if output != "table":
        raise ValueError(f"write_rows prints table or csv, not {output!r}")
    if not cells:
        out.write(f"{empty_message}\n")
        return
    widths = [max(len(text) for text in column) for column in zip(headers, *cells, strict=False)]
    for line in (headers, *cells):
        padded = [text.ljust(width) for text, width in zip(line[:-1], widths, strict=False)]
        out.write("   ".join([*padded, line[-1]]).rstrip() + "\n")


class Progress:
    """Progress of a long collection, on one rewritten line of standard error.

    ``Progress(stream, enabled=stream.isatty())``: when disabled every call does nothing.
    Updates are drawn at most every ``interval`` seconds; :meth:`done` ends the line.
    """

    def __init__(self, stream: TextIO, *, enabled: bool, interval: float = 0.2) -> None:
        self._stream = stream
        self._enabled = enabled
        self._interval = interval
        self._last_draw = 0.0
        self._width = 0

    def update(self, what: str, count: int) -> None:
        """``count`` objects of ``what`` collected so far."""
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < self._interval:
            return
        self._last_draw = now
        self._draw(f"collecting {what}: {count}")

    def step(self, message: str) -> None:
        """A new phase started (``analysing``)."""
        if self._enabled:
            self._draw(message)

    def done(self) -> None:
        """Clear the progress line."""
        if self._enabled and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0

    def _draw(self, text: str) -> None:
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = max(self._width, len(text))

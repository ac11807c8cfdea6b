"""Prometheus text exposition (format 0.0.4) and OpenMetrics 1.0: fast, tolerant parsing.

A scrape body is read in two steps, so that the scraper pays for labels only once per
series and not on every scrape:

1. :func:`scan_exposition` splits the body into lines and returns, for every sample line,
   the raw *series text* (the metric name and the label block exactly as written, e.g.
   ``http_requests_total{code="200"}``) and the value, plus every ``# TYPE`` it saw.
   This is all string slicing done in C: about a microsecond a line.
2. :func:`parse_series` turns a series text into its name and labels (unescaping
   values), and :func:`sample_kind` tells what the sample is from its name and the
   declared types. The scraper calls them only for series texts it has not seen before
   (Prometheus' scrape cache does the same); :func:`parse_exposition` calls them for
   every line and returns complete :class:`Sample` objects.

``prometheus_client.parser`` was measured first: about 20,000 samples a second on an
exporter page, so a 5,000-pod cluster (some 45 nodes of 110 pods, ~13,000 samples a
page every 15 s) would need two CPU cores for parsing alone. ``bench/scrape_bench.py``
prints this parser's figure, and ``tests/unit/adapter/scrape/test_exposition.py``
proves that both agree (names, labels, values, kinds) on a corpus of pages written by
prometheus_client in both formats, histograms, summaries, escapes and NaN included.

What is read:

- sample lines ``name{label="value",...} value [timestamp]`` in both formats, with
  OpenMetrics exemplars (``# {...} value [timestamp]`` after the sample) ignored;
- label values with the escapes ``\\\\``, ``\\"`` and ``\\n`` (any other backslash is kept
  as written, as prometheus_client does); ``}``, ``,`` and spaces inside values;
- values ``NaN``, ``+Inf``, ``-Inf`` and any float; timestamps in milliseconds (0.0.4)
  or seconds (OpenMetrics), both returned in milliseconds;
- ``# TYPE`` lines, which decide each sample's :class:`SampleKind` (histogram buckets,
  sums and counts, summary quantiles, ``_created`` series...); ``# HELP``, ``# UNIT`` and
  other comments are skipped; ``# EOF`` ends an OpenMetrics body.

Nothing raises on bad input: a line that cannot be read is skipped and counted in
``malformed_lines``, with the first few reasons (and line numbers) kept in ``problems``,
and the rest of the page is still read. Prometheus rejects a whole scrape for one bad
line; here one bad line from one application must not blank out its other series. The
only refusal is a body over the size limit (:class:`BodyTooLargeError`), checked before
any parsing.

This module is pure: strings in, data out.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from kubepulse.errors import KubepulseValueError
from kubepulse.stats.summary import SeriesKind

__all__ = [
    "ACCEPT_HEADER",
    "DEFAULT_MAX_BODY_BYTES",
    "BodyTooLargeError",
    "ExpositionFormat",
    "MalformedSeriesError",
    "ParsedExposition",
    "Sample",
    "SampleKind",
    "ScannedExposition",
    "check_body_size",
    "decode_body",
    "format_from_content_type",
    "parse_exposition",
    "parse_series",
    "sample_kind",
    "scan_exposition",
]

DEFAULT_MAX_BODY_BYTES: Final = 32 * 1024 * 1024
"""Largest body read by default, after decompression: 32 MiB.

A 110-pod node's exporter page is about 3 MiB (``bench/scrape_bench.py``); an
application page of more than 32 MiB is a cardinality accident that must not take the
adapter's memory with it.
"""

ACCEPT_HEADER: Final = (
    "text/plain;version=0.0.4;q=1.0,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"
)
"""What the scraper asks for: the plain text format first (smaller than OpenMetrics,
which adds a ``_created`` sample per counter and histogram), OpenMetrics when that is all
a target serves."""

# How many problem descriptions a parse keeps; the count goes on, the text stops.
_MAX_PROBLEMS: Final = 10
_NAME_PATTERN: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# One label: optional blanks, a name, '=', a quoted value with escapes, optional blanks,
# then a comma (a trailing one is allowed) or the end of the block.
_LABEL_PATTERN: Final = re.compile(
    r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*(?:,[ \t]*|$)',
    re.DOTALL,
)
_LABEL_NAME_PATTERN: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Label names already checked, so that the common ones cost a set lookup; bounded, since
# a hostile target could send endless distinct names.
_KNOWN_LABEL_NAMES: set[str] = set()
_MAX_KNOWN_LABEL_NAMES: Final = 4096
_ESCAPE_PATTERN: Final = re.compile(r'\\[\\n"]')
_ESCAPES: Final[Mapping[str, str]] = MappingProxyType({"\\\\": "\\", "\\n": "\n", '\\"': '"'})
_TYPE_PREFIX: Final = "# TYPE "
_KNOWN_TYPES: Final = frozenset(
    {"counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset"}
    | {"untyped", "unknown"}
)
_EMPTY_LABELS: Final[Mapping[str, str]] = MappingProxyType({})


class BodyTooLargeError(KubepulseValueError):
    """A scrape body is over the size limit; nothing of it was parsed."""


class MalformedSeriesError(KubepulseValueError):
    """A series text (metric name and label block) cannot be read."""


class ExpositionFormat(enum.Enum):
    """The two text formats a target may answer in; the value is the media type."""

    PROMETHEUS_TEXT = "text/plain"
    """Prometheus text format 0.0.4: timestamps in milliseconds, no ``# EOF``."""
    OPENMETRICS = "application/openmetrics-text"
    """OpenMetrics 1.0: timestamps in seconds, exemplars, ends with ``# EOF``."""


def format_from_content_type(content_type: str | None) -> ExpositionFormat:
    """The format a ``Content-Type`` header announces (plain text when absent or unknown)."""
    if content_type and content_type.split(";", 1)[0].strip().lower() == (
        ExpositionFormat.OPENMETRICS.value
    ):
        return ExpositionFormat.OPENMETRICS
    return ExpositionFormat.PROMETHEUS_TEXT


class SampleKind(enum.Enum):
    """What one sample line is, from its family's ``# TYPE`` and its name's suffix."""

    COUNTER = "counter"
    """A counter's value (``foo_total``, or ``foo`` declared a counter in 0.0.4)."""
    GAUGE = "gauge"
    """A gauge's value."""
    UNTYPED = "untyped"
    """No ``# TYPE`` applies (or ``untyped``/``unknown``): stored as a gauge."""
    HISTOGRAM_BUCKET = "histogram_bucket"
    """``foo_bucket{le="..."}``: cumulative count of observations up to ``le``."""
    HISTOGRAM_SUM = "histogram_sum"
    """``foo_sum`` of a histogram."""
    HISTOGRAM_COUNT = "histogram_count"
    """``foo_count`` of a histogram."""
    SUMMARY_QUANTILE = "summary_quantile"
    """``foo{quantile="..."}``: a quantile the target computed."""
    SUMMARY_SUM = "summary_sum"
    """``foo_sum`` of a summary."""
    SUMMARY_COUNT = "summary_count"
    """``foo_count`` of a summary."""
    GAUGE_HISTOGRAM = "gaugehistogram"
    """``_bucket``, ``_gsum`` or ``_gcount`` of an OpenMetrics gauge histogram."""
    INFO = "info"
    """``foo_info`` of an OpenMetrics info family (value 1)."""
    STATESET = "stateset"
    """A state of an OpenMetrics state set (1 for the current state, else 0)."""
    CREATED = "created"
    """``foo_created``: when a counter, histogram or summary was created (Unix seconds).

    In OpenMetrics it belongs to its family; in 0.0.4 prometheus_client publishes it as a
    separate gauge family, which is recognised by its name and the family it follows.
    """

    @property
    def series_kind(self) -> SeriesKind | None:
        """How the store keeps such samples; ``None`` for ``_created``, which is not stored.

        Counters, and histograms' and summaries' cumulative ``_bucket``, ``_sum`` and
        ``_count``, are counters (read with rate-like statistics, reset-aware); the rest
        are gauges.
        """
        return _SERIES_KINDS[self]


_SERIES_KINDS: Final[Mapping[SampleKind, SeriesKind | None]] = MappingProxyType(
    {
        SampleKind.COUNTER: SeriesKind.COUNTER,
        SampleKind.GAUGE: SeriesKind.GAUGE,
        SampleKind.UNTYPED: SeriesKind.GAUGE,
        SampleKind.HISTOGRAM_BUCKET: SeriesKind.COUNTER,
        SampleKind.HISTOGRAM_SUM: SeriesKind.COUNTER,
        SampleKind.HISTOGRAM_COUNT: SeriesKind.COUNTER,
        SampleKind.SUMMARY_QUANTILE: SeriesKind.GAUGE,
        SampleKind.SUMMARY_SUM: SeriesKind.COUNTER,
        SampleKind.SUMMARY_COUNT: SeriesKind.COUNTER,
        SampleKind.GAUGE_HISTOGRAM: SeriesKind.GAUGE,
        SampleKind.INFO: SeriesKind.GAUGE,
        SampleKind.STATESET: SeriesKind.GAUGE,
        SampleKind.CREATED: None,
    }
)

# The kind of a sample whose name is exactly a family declared with this type.
_EXACT_KINDS: Final[Mapping[str, SampleKind]] = MappingProxyType(
    {
        "counter": SampleKind.COUNTER,
        "gauge": SampleKind.GAUGE,
        "summary": SampleKind.SUMMARY_QUANTILE,
        "stateset": SampleKind.STATESET,
        "info": SampleKind.INFO,
        "untyped": SampleKind.UNTYPED,
        "unknown": SampleKind.UNTYPED,
    }
)
# The kind of a sample named <family><suffix>, by the family's declared type.
_SUFFIX_KINDS: Final[Mapping[str, Mapping[str, SampleKind]]] = MappingProxyType(
    {
        "counter": {"_total": SampleKind.COUNTER, "_created": SampleKind.CREATED},
        "histogram": {
            "_bucket": SampleKind.HISTOGRAM_BUCKET,
            "_sum": SampleKind.HISTOGRAM_SUM,
            "_count": SampleKind.HISTOGRAM_COUNT,
            "_created": SampleKind.CREATED,
        },
        "summary": {
            "_sum": SampleKind.SUMMARY_SUM,
            "_count": SampleKind.SUMMARY_COUNT,
            "_created": SampleKind.CREATED,
        },
        "gaugehistogram": {
            "_bucket": SampleKind.GAUGE_HISTOGRAM,
            "_gsum": SampleKind.GAUGE_HISTOGRAM,
            "_gcount": SampleKind.GAUGE_HISTOGRAM,
        },
        "info": {"_info": SampleKind.INFO},
    }
)
_SUFFIXES: Final = ("_total", "_bucket", "_sum", "_count", "_created", "_gsum", "_gcount", "_info")
_CREATED_SUFFIX: Final = "_created"
_CREATED_PARENTS: Final = frozenset({"counter", "histogram", "summary"})


def sample_kind(name: str, types: Mapping[str, str]) -> SampleKind:
    """What a sample named ``name`` is, given the page's ``# TYPE`` declarations.

    ``types`` maps declared family names to their type word (as
    :attr:`ScannedExposition.types` holds them). The rules cover both formats:
    OpenMetrics declares ``foo`` and writes ``foo_total``; prometheus_client's 0.0.4
    output declares ``foo_total`` itself and adds a ``foo_created`` gauge family, which
    is :attr:`SampleKind.CREATED` when ``foo`` (or ``foo_total``) is a declared counter,
    histogram or summary.
    """
    declared = types.get(name)
    if declared is not None:
        if declared == "gauge" and name.endswith(_CREATED_SUFFIX) and _is_created_of(name, types):
            return SampleKind.CREATED
        exact = _EXACT_KINDS.get(declared)
        if exact is not None:
            return exact
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            family_type = types.get(name[: -len(suffix)])
            if family_type is not None:
                kind = _SUFFIX_KINDS.get(family_type, {}).get(suffix)
                if kind is not None:
                    return kind
    return SampleKind.UNTYPED


def _is_created_of(name: str, types: Mapping[str, str]) -> bool:
    base = name[: -len(_CREATED_SUFFIX)]
    return types.get(base) in _CREATED_PARENTS or types.get(f"{base}_total") == "counter"


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample of a page.

    Attributes:
        name: the sample's metric name as written (``foo_total``, ``foo_bucket``...).
        labels: its labels, values unescaped, in the order written.
        value: the value; NaN and infinities included.
        kind: what the sample is (see :class:`SampleKind`).
        timestamp_ms: the timestamp the target wrote, in milliseconds, if any.
    """

    name: str
    labels: Mapping[str, str]
    value: float
    kind: SampleKind
    timestamp_ms: int | None = None


@dataclass(slots=True)
class ScannedExposition:
    """The sample lines of a page, not yet split into names and labels.

    ``series[i]`` is the series text of the i-th sample line (name and label block as
    written) and ``values[i]`` its value; the lists are the scanner's own and may be
    consumed by the caller.

    Attributes:
        series: series texts, one per sample line read.
        values: the values, parallel to ``series``.
        timestamps_ms: index into ``series`` → timestamp in milliseconds, for the lines
            that carry one (rare: exporters leave the time to the scraper).
        types: family name → declared type word, from every ``# TYPE`` line.
        malformed_lines: lines that could not be read and were skipped.
        problems: the first few of those, as ``line N: what is wrong``.
        saw_eof: an OpenMetrics ``# EOF`` line ended the body.
    """

    series: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    timestamps_ms: dict[int, int] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    malformed_lines: int = 0
    problems: list[str] = field(default_factory=list)
    saw_eof: bool = False

    def problem(self, line_number: int, description: str) -> None:
        """Count a skipped line and keep its description while there are few."""
        self.malformed_lines += 1
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(f"line {line_number}: {description}")


@dataclass(frozen=True, slots=True)
class ParsedExposition:
    """A whole page, parsed: every sample read, and what was skipped.

    Attributes:
        samples: the samples, in page order.
        types: family name → declared type word.
        malformed_lines: lines skipped because they could not be read.
        problems: the first few reasons, ``line N: what is wrong``.
        saw_eof: an OpenMetrics ``# EOF`` line ended the body.
    """

    samples: tuple[Sample, ...]
    types: Mapping[str, str]
    malformed_lines: int
    problems: tuple[str, ...]
    saw_eof: bool


def check_body_size(size_bytes: int, max_bytes: int) -> None:
    """Refuse a body of ``size_bytes`` when it exceeds ``max_bytes``.

    Raises:
        BodyTooLargeError: the body is too large; the message gives both sizes.
    """
    if size_bytes > max_bytes:
        raise BodyTooLargeError(
            f"the exposition body is {size_bytes} bytes, over the limit of {max_bytes}; "
            "reduce the target's series (cardinality) or raise the scraper's "
            "max_body_bytes"
        )


def decode_body(body: bytes) -> str:
    """The text of a body: UTF-8, with undecodable bytes replaced rather than refused.

    A stray byte then spoils at most the label value it sits in instead of the page.
    """
    return body.decode("utf-8", errors="replace")


def scan_exposition(
    text: str, exposition_format: ExpositionFormat = ExpositionFormat.PROMETHEUS_TEXT
) -> ScannedExposition:
    """Split a page into series texts and values; see the module docstring.

    A line is skipped and counted as malformed when its label block is not closed, it
    has no value, the value or timestamp is not a number, or a ``# TYPE`` line names
    an unknown type. The series text itself is checked later, by :func:`parse_series`.
    A missing ``# EOF`` in an OpenMetrics body counts as one malformed line (the body
    may have been cut short), but what was read is kept.
    """
    scanned = ScannedExposition()
    series = scanned.series
    values = scanned.values
    add_series = series.append
    add_value = values.append
    openmetrics = exposition_format is ExpositionFormat.OPENMETRICS
    line_number = 0
    for line_number, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        if line[0] == "#":
            if _read_comment(line, line_number, openmetrics, scanned):
                break
            continue
        # The common line, `name{labels} value`, in two C calls: split at the last blank.
        # When what precedes it ends the label block and what follows is a number, this
        # is exactly what the general path (_scan_line) finds: its last '}' is that one,
        # and a single number follows it. Anything else (a timestamp, no labels, tabs
        # between the fields, an exemplar) takes the general path. A third less time per
        # line on the scale rig's pages (bench/scrape_bench.py).
        head, _, tail = line.rpartition(" ")
        if head[-1:] == "}" and not (openmetrics and " # " in line):
            try:
                value = float(tail)
            except ValueError:
                pass
            else:
                add_series(head)
                add_value(value)
                continue
        read = _scan_line(line, line_number, len(series), openmetrics, scanned)
        if read is not None:
            add_series(read[0])
            add_value(read[1])
    if openmetrics and not scanned.saw_eof:
        scanned.problem(line_number + 1, "the OpenMetrics body does not end with '# EOF'")
    return scanned


def _scan_line(
    line: str, line_number: int, index: int, openmetrics: bool, scanned: ScannedExposition
) -> tuple[str, float] | None:
    """The series text and value of a sample line the fast path did not take; ``None``
    (and a problem counted) when it cannot be read. ``index`` is its sample's index."""
    # The series text ends at the last '}' of the line: values and timestamps never
    # contain one. A '}' inside a quoted label value can fool this only on a line
    # that is malformed anyway, and parse_series() refuses such a series text.
    # Exemplars (OpenMetrics) contain braces of their own: those lines take the
    # careful path.
    end = line.rfind("}")
    if end != -1 and openmetrics and " # " in line:
        end = _series_end_before_exemplar(line)
        if end == -2:
            scanned.problem(line_number, "the label block is not closed with '}'")
            return None
    if end == -1:
        parts = line.split(None, 1)
        if len(parts) != 2:
            if parts:
                scanned.problem(line_number, f"no value after {parts[0][:80]!r}")
            return None
        key, rest = parts
        if "{" in key:
            scanned.problem(line_number, "the label block is not closed with '}'")
            return None
    else:
        key = line[: end + 1]
        rest = line[end + 1 :]
    tokens = rest.split()
    if not tokens:
        scanned.problem(line_number, f"no value after {key[:80]!r}")
        return None
    try:
        value = float(tokens[0])
    except ValueError:
        scanned.problem(line_number, f"value {tokens[0][:40]!r} is not a number")
        return None
    if len(tokens) > 1 and not _read_tail(tokens, index, openmetrics, scanned):
        scanned.problem(
            line_number,
            f"unexpected {' '.join(tokens[1:])[:60]!r} after the value (expected an "
            "optional timestamp" + (" and exemplar)" if openmetrics else ")"),
        )
        return None
    return key, value


def _read_comment(
    line: str, line_number: int, openmetrics: bool, scanned: ScannedExposition
) -> bool:
    """Read a ``#`` line; True when it is the OpenMetrics ``# EOF`` that ends the body."""
    if line.startswith(_TYPE_PREFIX):
        _read_type(line, line_number, scanned)
    elif openmetrics and line.rstrip() == "# EOF":
        scanned.saw_eof = True
        return True
    return False


def _read_type(line: str, line_number: int, scanned: ScannedExposition) -> None:
    parts = line[len(_TYPE_PREFIX) :].split()
    if len(parts) != 2 or parts[1] not in _KNOWN_TYPES:
        scanned.problem(
            line_number,
            f"{line[:100]!r} is not '# TYPE <name> <type>' with a type among "
            f"{', '.join(sorted(_KNOWN_TYPES))}",
        )
        return
    scanned.types[parts[0]] = parts[1]


def _read_tail(
    tokens: list[str], index: int, openmetrics: bool, scanned: ScannedExposition
) -> bool:
    """Read what follows a value (timestamp, exemplar); False when it is not valid."""
    position = 1
    if tokens[1] != "#":
        try:
            timestamp = float(tokens[1])
        except ValueError:
            return False
        if not math.isfinite(timestamp):
            return False
        scanned.timestamps_ms[index] = round(timestamp * 1000) if openmetrics else int(timestamp)
        position = 2
    if position == len(tokens):
        return True
    # Only OpenMetrics has exemplars: "# {labels} value [timestamp]", ignored here.
    return openmetrics and tokens[position] == "#"


def _series_end_before_exemplar(line: str) -> int:
    """Where the series text of a line with an exemplar ends: the index of its ``}``,
    -1 when the series has no label block, -2 when its label block is not closed."""
    brace = line.find("{")
    if brace == -1 or line.find(" ") < brace:
        return -1
    end = _label_block_end(line, brace)
    return -2 if end == -1 else end


def _label_block_end(line: str, brace: int) -> int:
    """Index of the ``}`` closing the label block opened at ``brace``; -1 if none.

    A ``}`` is the end when the quotes before it are balanced. Without backslashes that
    is a count, done in C; with escapes the block is walked character by character.
    """
    end = line.find("}", brace)
    while end != -1:
        block = line[brace:end]
        if "\\" in block:
            return _label_block_end_escaped(line, brace)
        if not block.count('"') % 2:
            return end
        end = line.find("}", end + 1)
    return -1


def _label_block_end_escaped(line: str, brace: int) -> int:
    in_quotes = False
    escaped = False
    for index in range(brace + 1, len(line)):
        character = line[index]
        if escaped:
            escaped = False
        elif character == "\\":
            escaped = in_quotes
        elif character == '"':
            in_quotes = not in_quotes
        elif character == "}" and not in_quotes:
            return index
    return -1


def _unescape(match: re.Match[str]) -> str:
    return _ESCAPES[match.group(0)]


def parse_series(series_text: str) -> tuple[str, dict[str, str]]:
    """The metric name and labels of a series text such as ``foo{a="1",b="x\\"y"}``.

    Raises:
        MalformedSeriesError: the name is not a Prometheus metric name, a label is not
            ``name="value"``, or a label name repeats; the message says which.
    """
    brace = series_text.find("{")
    name = series_text if brace == -1 else series_text[:brace].rstrip(" \t")
    if not _NAME_PATTERN.fullmatch(name):
        raise MalformedSeriesError(
            f"{name[:80]!r} is not a metric name (letters, digits, '_' and ':', not "
            "starting with a digit)"
        )
    if brace == -1:
        return name, {}
    end = len(series_text) - 1
    if series_text[end] != "}":
        raise MalformedSeriesError(f"the label block of {series_text[:80]!r} is not closed")
    block = series_text[brace + 1 : end]
    labels = _split_plain_labels(block) if "\\" not in block else None
    if labels is None:
        labels = _split_labels(block, series_text)
    return name, labels


def _split_plain_labels(block: str) -> dict[str, str] | None:
    """Labels of a block without backslashes, split in C; None to take the careful path.

    Without backslashes no value contains a quote, so ``",`` only ever ends a value and
    the first ``="`` of a pair always follows its name. Anything unusual (blanks around
    ``=``, a missing quote, a repeated name) returns None and the regular expression
    path below reports it precisely.
    """
    body = block.rstrip(" \t")
    if body.endswith(","):
        body = body[:-1].rstrip(" \t")
    if not body:
        return {}
    if not body.endswith('"'):
        return None
    labels: dict[str, str] = {}
    known = _KNOWN_LABEL_NAMES
    for pair in body[:-1].split('",'):
        label, separator, value = pair.partition('="')
        if label not in known:
            label = label.lstrip(" \t")
            if not _LABEL_NAME_PATTERN.fullmatch(label):
                return None
            if len(known) < _MAX_KNOWN_LABEL_NAMES:
                known.add(label)
        if not separator or label in labels or '"' in value:
            return None
        labels[label] = value
    return labels


def _split_labels(block: str, series_text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    end = len(block)
    if not block.strip(" \t"):
        return labels
    while position < end:
        match = _LABEL_PATTERN.match(block, position)
        if match is None:
            raise MalformedSeriesError(
                f"cannot read the labels of {series_text[:120]!r} from {block[position:][:40]!r}: "
                'expected name="value" pairs separated by commas'
            )
        label, value = match.group(1, 2)
        if label in labels:
            raise MalformedSeriesError(f"label {label!r} repeats in {series_text[:120]!r}")
        labels[label] = _ESCAPE_PATTERN.sub(_unescape, value) if "\\" in value else value
        position = match.end()
    return labels


def parse_exposition(
    body: str | bytes,
    exposition_format: ExpositionFormat = ExpositionFormat.PROMETHEUS_TEXT,
    *,
    max_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> ParsedExposition:
    """Every sample of a page, with its labels and kind.

    Args:
        body: the page, as bytes off the wire (decoded as UTF-8) or text.
        exposition_format: which format the target answered in
            (:func:`format_from_content_type`).
        max_bytes: the size limit (bytes for ``bytes``, characters for ``str``).

    Raises:
        BodyTooLargeError: the body exceeds ``max_bytes``; nothing is parsed.
    """
    check_body_size(len(body), max_bytes)
    text = decode_body(body) if isinstance(body, bytes) else body
    scanned = scan_exposition(text, exposition_format)
    types = scanned.types
    timestamps = scanned.timestamps_ms
    samples: list[Sample] = []
    malformed = scanned.malformed_lines
    problems = list(scanned.problems)
    kinds: dict[str, SampleKind] = {}
    for index, (series_text, value) in enumerate(zip(scanned.series, scanned.values, strict=True)):
        try:
            name, labels = parse_series(series_text)
        except MalformedSeriesError as error:
            malformed += 1
            if len(problems) < _MAX_PROBLEMS:
                problems.append(f"sample {index + 1}: {error}")
            continue
        kind = kinds.get(name)
        if kind is None:
            kind = kinds[name] = sample_kind(name, types)
        samples.append(Sample(name, labels or _EMPTY_LABELS, value, kind, timestamps.get(index)))
    return ParsedExposition(
        samples=tuple(samples),
        types=MappingProxyType(dict(types)),
        malformed_lines=malformed,
        problems=tuple(problems),
        saw_eof=scanned.saw_eof,
    )

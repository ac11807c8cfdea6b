"""Just enough PromQL reading to check dashboards and alert rules against the metric catalog.

Not a parser: it checks that brackets and quotes balance, and pulls out the metric names
and function names an expression uses, by removing what cannot be a metric name (string
literals, label matchers, ranges, grouping clauses, numbers, Grafana variables). That is
what a typo'd or renamed metric breaks; the integration tier
(``tests/integration/test_dashboards_promql.py``) and ``promtool check rules`` parse the
expressions for real.

The allowed names are computed, not listed: every sample name of every
:data:`kubepulse.catalog.CATALOG` family, and every sample name the adapter serves on its
own ``/metrics`` (its process collectors, the scraper's, the checkpointer's and the
API's request metrics, registered into a fresh registry exactly as the adapter wires
them).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Final

from prometheus_client import CollectorRegistry

from adapter.__main__ import own_metrics_registry
from adapter.app import create_app
from adapter.objects import InMemoryObjectResolver
from adapter.scrape import ScrapeMetrics
from adapter.scrape.checkpointer import CheckpointMetrics
from adapter.sources.embedded import EmbeddedSource
from kubepulse.catalog import CATALOG
from kubepulse.store import TimeSeriesStore

FUNCTIONS: Final = frozenset(
    {
        # aggregation operators
        "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk",
        "quantile", "count_values", "group",
        # functions
        "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max",
        "clamp_min", "delta", "deriv", "exp", "floor", "histogram_quantile", "holt_winters",
        "idelta", "increase", "irate", "label_replace", "label_join", "ln", "log2", "log10",
        "predict_linear", "rate", "resets", "round", "scalar", "sort", "sort_desc", "sqrt",
        "time", "timestamp", "vector", "avg_over_time", "min_over_time", "max_over_time",
        "sum_over_time", "count_over_time", "quantile_over_time", "last_over_time",
        "stddev_over_time", "stdvar_over_time", "label_values",
    }
)  # fmt: skip
"""PromQL functions and aggregations (plus Grafana's ``label_values``) as of Prometheus 2.42."""
KEYWORDS: Final = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
     "group_left", "group_right", "inf", "nan"}
)  # fmt: skip

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_PAIRS: Final = {")": "(", "]": "[", "}": "{"}


def balance_problem(expr: str) -> str | None:
    """What is unbalanced in ``expr`` (brackets or quotes), or None when it all closes."""
    if _STRING.sub("", expr).count('"') or _STRING.sub("", expr).count("'"):
        return "an unterminated string literal"
    stack: list[tuple[str, int]] = []
    for position, char in enumerate(_STRING.sub('""', expr)):
        if char in "([{":
            stack.append((char, position))
        elif char in _PAIRS:
            if not stack or stack[-1][0] != _PAIRS[char]:
                return f"{char!r} at {position} closes nothing open"
            stack.pop()
    if stack:
        return f"{stack[-1][0]!r} at {stack[-1][1]} is never closed"
    return None


def names_used(expr: str) -> tuple[set[str], set[str]]:
    """The metric names and the function names ``expr`` uses."""
    text = _STRING.sub('""', expr)
    text = _VARIABLE.sub(" ", text)
    previous = None
    while previous != text:  # nested matchers and ranges cannot occur, groupings can
        previous = text
        text = _MATCHERS.sub(" ", text)
        text = _RANGE.sub(" ", text)
        text = _GROUPING.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    metrics: set[str] = set()
    functions: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        if word.lower() in KEYWORDS:
            continue
        if text[match.end() :].lstrip().startswith("("):
            functions.add(word)
        else:
            metrics.add(word)
    return metrics, functions


def _sample_names(registry: CollectorRegistry) -> set[str]:
    names: set[str] = set()
    for family in registry.collect():
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_count", "_sum", "_created"),
            "summary": ("", "_count", "_sum", "_created"),
        }.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


@cache
def adapter_metric_names() -> frozenset[str]:
    """Every sample name the adapter's own ``/metrics`` can serve."""
    registry = own_metrics_registry()
    ScrapeMetrics(registry)
    CheckpointMetrics(registry)
    create_app(
        source=EmbeddedSource(TimeSeriesStore(), clock=lambda: 0),
        objects=InMemoryObjectResolver([]),
        registry=registry,
    )
    return frozenset(_sample_names(registry))


@cache
def catalog_metric_names() -> frozenset[str]:
    """Every sample name the exporter publishes, from the catalog."""
    return frozenset(name for spec in CATALOG for name in spec.sample_names)


def allowed_metric_names() -> frozenset[str]:
    """Catalog, adapter and ``up``: what a kubepulse dashboard may query."""
    return catalog_metric_names() | adapter_metric_names() | {"up"}

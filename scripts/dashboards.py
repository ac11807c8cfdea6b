"""Generate kubepulse's Grafana dashboards from code: ``charts/kubepulse/dashboards/*.json``.

Hand-edited dashboard JSON drifts: a panel copied between dashboards keeps an old metric
name, a grid position overlaps, a uid changes on every export and breaks links. So the
five dashboards are described here as data (a few helper functions build panels,
targets, template variables and the grid) and written as JSON. The committed copies are
what the Helm chart ships as ConfigMaps for Grafana's dashboard sidecar; a test
(``tests/unit/test_dashboards.py``) fails when they differ from what this script writes,
and every expression is checked against the metric catalog and run against a real
Prometheus (``tests/integration/test_dashboards_promql.py``).

Every query uses only metrics the kubepulse exporter publishes (``kubepulse.catalog``),
metrics the adapter serves on its own ``/metrics``, and ``up``. In particular nothing
here needs kube-state-metrics: the workload dashboard shows usage against requests (the
quantity an HPA's ``Utilization`` target is a share of) next to a ``predict_linear``
forecast, because the adapter's own forecasts are answers to API requests, not
Prometheus series. ``docs/dashboards.md`` describes each dashboard.

Usage (from the repository root; standard library only)::

    python scripts/dashboards.py            # (re)write the JSON files
    python scripts/dashboards.py --check    # exit 1 naming the files that differ
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parents[1]
OUTPUT_DIR: Final = REPO / "charts" / "kubepulse" / "dashboards"
SCHEMA_VERSION: Final = 41
"""Grafana's dashboard schema version as of Grafana 12; older Grafana migrates on load."""
GRID_WIDTH: Final = 24
DATASOURCE: Final[Mapping[str, str]] = {"type": "prometheus", "uid": "${datasource}"}
RATE: Final = "$__rate_interval"
TAGS: Final = ("kubepulse",)

Json = dict[str, Any]

_LABEL_VALUES: Final = re.compile(r"label_values\((?P<selector>.+),\s*(?P<label>\w+)\)")

# Selectors shared by the panels, so that one dashboard's variables mean one thing.
NS: Final = 'namespace="$namespace", pod=~"$pod"'
WORKLOAD_PODS: Final = 'namespace="$namespace", pod=~"$workload-.+"'
NODES: Final = 'node=~"$node"'
ADAPTER: Final = 'instance=~"$instance"'


# ---------------------------------------------------------------------- building blocks


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel; ``legend`` is Grafana's legend format."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """A panel before layout: what it shows and how wide it is (of 24 grid columns)."""

    title: str
    kind: str
    queries: tuple[Query, ...]
    description: str
    unit: str = "short"
    width: int = 12
    height: int = 8
    stack: bool = False
    thresholds: tuple[tuple[float, str], ...] = ()
    max_value: float | None = None


@dataclass(frozen=True)
class Row:
    """A collapsible row heading and the panels under it."""

    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Variable:
    """A template variable: a data source picker, a label query or a fixed list."""

    name: str
    label: str
    kind: str
    query: str = ""
    regex: str = ""
    multi: bool = False
    include_all: bool = False
    options: tuple[str, ...] = ()
    default: str = ""


@dataclass(frozen=True)
class Dashboard:
    """A whole dashboard: a stable uid (links and the sidecar key on it) and its rows."""

    uid: str
    title: str
    description: str
    variables: tuple[Variable, ...]
    rows: tuple[Row, ...]


def timeseries(title: str, description: str, *queries: Query, **options: Any) -> Panel:
    """A time series panel (Grafana's default graph)."""
    return Panel(title, "timeseries", queries, description, **options)


def stat(title: str, description: str, query: Query, **options: Any) -> Panel:
    """A single-value panel showing the last value of one query."""
    options.setdefault("width", 4)
    options.setdefault("height", 4)
    return Panel(title, "stat", (query,), description, **options)


def table(title: str, description: str, query: Query, **options: Any) -> Panel:
    """An instant-query table, one row per series (for top-N lists)."""
    return Panel(title, "table", (query,), description, **options)


def datasource_variable() -> Variable:
    return Variable("datasource", "Data source", "datasource", query="prometheus")


def label_variable(
    name: str, label: str, query: str, *, regex: str = "", multi: bool = False
) -> Variable:
    """A variable filled from ``label_values(...)``; multi-value ones offer "All".

    "All" is sent as ``.+`` rather than every value joined: a shorter query, and one that
    still matches series of pods that appeared after the list was loaded.
    """
    return Variable(name, label, "query", query=query, regex=regex, multi=multi, include_all=multi)


# ---------------------------------------------------------------------- JSON rendering


def _target(query: Query, ref_id: str, instant: bool) -> Json:
    target: Json = {
        "datasource": dict(DATASOURCE),
        "editorMode": "code",
        "expr": query.expr,
        "legendFormat": query.legend or "__auto",
        "refId": ref_id,
    }
    if instant:
        target.update({"format": "table", "instant": True, "range": False})
    else:
        target.update({"instant": False, "range": True})
    return target


def _thresholds(panel: Panel) -> Json:
    steps: list[Json] = [{"color": "green", "value": None}]
    steps += [{"color": color, "value": value} for value, color in panel.thresholds]
    return {"mode": "absolute", "steps": steps}


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> Json:
    instant = panel.kind == "table"
    defaults: Json = {"unit": panel.unit, "thresholds": _thresholds(panel)}
    if panel.max_value is not None:
        defaults["max"] = panel.max_value
        defaults["min"] = 0
    options: Json
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "fillOpacity": 10 if panel.stack else 0,
            "lineWidth": 1,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"group": "A", "mode": "normal" if panel.stack else "none"},
            "thresholdsStyle": {"mode": "line" if panel.thresholds else "off"},
        }
        options = {
            "legend": {
                "calcs": ["lastNotNull", "max"],
                "displayMode": "table",
                "placement": "right",
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif panel.kind == "stat":
        options = {
            "colorMode": "value",
            "graphMode": "area",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "auto",
        }
    else:
        options = {"showHeader": True, "sortBy": [{"desc": True, "displayName": "Value"}]}
    result: Json = {
        "datasource": dict(DATASOURCE),
        "description": panel.description,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "id": panel_id,
        "options": options,
        "targets": [
            _target(query, chr(ord("A") + index), instant)
            for index, query in enumerate(panel.queries)
        ],
        "title": panel.title,
        "type": panel.kind,
    }
    if instant:
        result["transformations"] = [
            {"id": "organize", "options": {"excludeByName": {"Time": True}}}
        ]
    return result


def _variable_json(variable: Variable) -> Json:
    base: Json = {"hide": 0, "label": variable.label, "name": variable.name, "skipUrlSync": False}
    if variable.kind == "datasource":
        return {
            **base,
            "current": {},
            "includeAll": False,
            "multi": False,
            "options": [],
            "query": variable.query,
            "refresh": 1,
            "regex": "",
            "type": "datasource",
        }
    if variable.kind == "custom":
        default = variable.default or variable.options[0]
        return {
            **base,
            "current": {"selected": True, "text": default, "value": default},
            "includeAll": False,
            "multi": False,
            "options": [
                {"selected": option == default, "text": option, "value": option}
                for option in variable.options
            ],
            "query": ",".join(variable.options),
            "type": "custom",
        }
    return {
        **base,
        "current": {},
        "datasource": dict(DATASOURCE),
        "definition": variable.query,
        **({"allValue": ".+"} if variable.include_all else {}),
        "includeAll": variable.include_all,
        "multi": variable.multi,
        "options": [],
        "query": {"qryType": 1, "query": variable.query, "refId": "PrometheusVariableQueryEditor"},
        "refresh": 2,  # on time range change: pods come and go
        "regex": variable.regex,
        "sort": 1,
        "type": "query",
    }


def render(dashboard: Dashboard) -> Json:
    """The Grafana JSON model of ``dashboard``: rows laid out top to bottom, left to right."""
    panels: list[Json] = []
    next_id = 1
    y = 0
    for row in dashboard.rows:
        panels.append(
            {
                "collapsed": False,
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                "id": next_id,
                "panels": [],
                "title": row.title,
                "type": "row",
            }
        )
        next_id += 1
        y += 1
        x = 0
        line_height = 0
        for panel in row.panels:
            if x + panel.width > GRID_WIDTH:
                y += line_height
                x, line_height = 0, 0
            panels.append(_panel_json(panel, next_id, x, y))
            next_id += 1
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": dashboard.description,
        "editable": False,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
                "tags": list(TAGS),
                "title": "kubepulse",
                "type": "dashboards",
            }
        ],
        "panels": panels,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": list(TAGS),
        "templating": {"list": [_variable_json(variable) for variable in dashboard.variables]},
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": dashboard.title,
        "uid": dashboard.uid,
        "version": 1,
    }


def queries(rendered: Json) -> Iterator[tuple[str, str]]:
    """Every PromQL expression of a rendered dashboard: ``(where, expr)`` pairs.

    ``where`` names the panel (or the variable) for error messages; variable queries are
    yielded too, as the series selector inside ``label_values(<selector>, <label>)``.
    """
    for panel in rendered["panels"]:
        for target in panel.get("targets", ()):
            yield f"panel {panel['title']!r} target {target['refId']}", target["expr"]
    for variable in rendered["templating"]["list"]:
        if variable["type"] == "query":
            match = _LABEL_VALUES.fullmatch(variable["definition"])
            if match is None:
                raise ValueError(
                    f"variable {variable['name']!r}: expected label_values(<selector>, <label>), "
                    f"got {variable['definition']!r}"
                )
            yield f"variable {variable['name']!r}", match.group("selector")


# ---------------------------------------------------------------------- the dashboards


def _cpu_rate(selector: str, by: str) -> str:
    return (
        f"sum by ({by}) (rate(kubepulse_container_cpu_usage_seconds_total{{{selector}}}[{RATE}]))"
    )


def _throttled_share(selector: str, by: str) -> str:
    return (
        f"sum by ({by}) (rate(kubepulse_container_cpu_cfs_throttled_periods_total{{{selector}}}"
        f"[{RATE}]))\n/\nsum by ({by}) (rate(kubepulse_container_cpu_cfs_periods_total"
        f"{{{selector}}}[{RATE}]))"
    )


def cluster_overview() -> Dashboard:
    allocatable = "sum(kubepulse_node_status_allocatable{{resource={resource!r}}})"
    cpu_alloc = allocatable.format(resource="cpu").replace("'", '"')
    memory_alloc = allocatable.format(resource="memory").replace("'", '"')
    return Dashboard(
        uid="kubepulse-cluster",
        title="kubepulse / Cluster overview",
        description="Usage, requests and trouble across every node the exporter runs on.",
        variables=(datasource_variable(),),
        rows=(
            Row(
                "Capacity",
                (
                    stat(
                        "Nodes reporting",
                        "Nodes whose exporter is scraped (one kubepulse_node_memory_total_bytes "
                        "series per node).",
                        Query("count(kubepulse_node_memory_total_bytes)"),
                    ),
                    stat(
                        "Pods",
                        "Pods with at least one running container on those nodes.",
                        Query("count(count by (namespace, pod) (kubepulse_container_info))"),
                    ),
                    stat(
                        "CPU used / allocatable",
                        "Containers' CPU use as a share of the nodes' allocatable CPU.",
                        Query(
                            "sum(rate(kubepulse_container_cpu_usage_seconds_total"
                            f"[{RATE}]))\n/\n{cpu_alloc}"
                        ),
                        unit="percentunit",
                        thresholds=((0.7, "orange"), (0.9, "red")),
                    ),
                    stat(
                        "CPU requested / allocatable",
                        "Containers' CPU requests as a share of allocatable CPU: what the "
                        "scheduler sees as taken.",
                        Query(
                            'sum(kubepulse_container_resource_requests{resource="cpu"})\n/\n'
                            + cpu_alloc
                        ),
                        unit="percentunit",
                        thresholds=((0.8, "orange"), (0.95, "red")),
                    ),
                    stat(
                        "Memory used / allocatable",
                        "Containers' working set as a share of the nodes' allocatable memory.",
                        Query(
                            f"sum(kubepulse_container_memory_working_set_bytes)\n/\n{memory_alloc}"
                        ),
                        unit="percentunit",
                        thresholds=((0.7, "orange"), (0.9, "red")),
                    ),
                    stat(
                        "Memory requested / allocatable",
                        "Containers' memory requests as a share of allocatable memory.",
                        Query(
                            'sum(kubepulse_container_resource_requests{resource="memory"})\n/\n'
                            + memory_alloc
                        ),
                        unit="percentunit",
                        thresholds=((0.8, "orange"), (0.95, "red")),
                    ),
                ),
            ),
            Row(
                "Usage by namespace",
                (
                    timeseries(
                        "CPU by namespace",
                        "CPU used by the containers of each namespace, in cores.",
                        Query(_cpu_rate("", "namespace"), "{{namespace}}"),
                        stack=True,
                    ),
                    timeseries(
                        "Memory working set by namespace",
                        "Working set (usage minus inactive file cache) of each namespace's "
                        "containers: what the kernel's OOM killer and the kubelet's eviction "
                        "compare with limits.",
                        Query(
                            "sum by (namespace) (kubepulse_container_memory_working_set_bytes)",
                            "{{namespace}}",
                        ),
                        unit="bytes",
                        stack=True,
                    ),
                ),
            ),
            Row(
                "Trouble",
                (
                    table(
                        "Containers closest to their memory limit",
                        "The ten containers with the highest working set / memory limit. Above "
                        "100 % the next allocation that cannot reclaim cache is OOM-killed.",
                        Query(
                            "topk(10, max by (namespace, pod, container) ("
                            "kubepulse_container_memory_working_set_bytes\n/\n"
                            "kubepulse_container_memory_limit_bytes > 0))"
                        ),
                        unit="percentunit",
                        thresholds=((0.8, "orange"), (0.9, "red")),
                    ),
                    table(
                        "Most throttled containers",
                        "The ten containers with the highest share of CFS periods throttled: "
                        "their CPU limit holds them back.",
                        Query(
                            "topk(10, " + _throttled_share("", "namespace, pod, container") + ")"
                        ),
                        unit="percentunit",
                        thresholds=((0.1, "orange"), (0.25, "red")),
                    ),
                    timeseries(
                        "OOM kills by namespace",
                        "Containers killed by the kernel's OOM killer, per namespace, in each "
                        "rate interval.",
                        Query(
                            "sum by (namespace) (increase(kubepulse_container_oom_kills_total"
                            f"[{RATE}]))",
                            "{{namespace}}",
                        ),
                    ),
                    timeseries(
                        "Node memory pressure (PSI some)",
                        "Share of time at least one task on the node waited for memory "
                        "(pressure stall information, /proc/pressure/memory 'some').",
                        Query(
                            f"rate(kubepulse_node_pressure_memory_waiting_seconds_total[{RATE}])",
                            "{{node}}",
                        ),
                        unit="percentunit",
                        thresholds=((0.1, "orange"), (0.25, "red")),
                    ),
                ),
            ),
        ),
    )


def namespace_dashboard() -> Dashboard:
    return Dashboard(
        uid="kubepulse-namespace",
        title="kubepulse / Namespace",
        description="One namespace: its pods' usage against requests and limits, and trouble.",
        variables=(
            datasource_variable(),
            label_variable(
                "namespace", "Namespace", "label_values(kubepulse_container_info, namespace)"
            ),
            label_variable(
                "pod",
                "Pod",
                'label_values(kubepulse_container_info{namespace="$namespace"}, pod)',
                multi=True,
            ),
        ),
        rows=(
            Row(
                "Usage against requests",
                (
                    timeseries(
                        "CPU by pod",
                        "CPU used by each pod's containers, and the selected pods' total "
                        "requests and limits.",
                        Query(_cpu_rate(NS, "pod"), "{{pod}}"),
                        Query(
                            f'sum(kubepulse_container_resource_requests{{{NS}, resource="cpu"}})',
                            "requests",
                        ),
                        Query(
                            f'sum(kubepulse_container_resource_limits{{{NS}, resource="cpu"}})',
                            "limits",
                        ),
                    ),
                    timeseries(
                        "Memory working set by pod",
                        "Working set of each pod's containers, and the selected pods' total "
                        "memory requests and limits.",
                        Query(
                            f"sum by (pod) (kubepulse_container_memory_working_set_bytes{{{NS}}})",
                            "{{pod}}",
                        ),
                        Query(
                            "sum(kubepulse_container_resource_requests"
                            f'{{{NS}, resource="memory"}})',
                            "requests",
                        ),
                        Query(
                            f'sum(kubepulse_container_resource_limits{{{NS}, resource="memory"}})',
                            "limits",
                        ),
                        unit="bytes",
                    ),
                    table(
                        "CPU used / requested by container",
                        "Average CPU use over the last hour against the request: well below "
                        "100 % means the request (and the node capacity it reserves) is too big.",
                        Query(
                            "sum by (pod, container) (rate("
                            f"kubepulse_container_cpu_usage_seconds_total{{{NS}}}[1h]))\n/\n"
                            "sum by (pod, container) (kubepulse_container_resource_requests"
                            f'{{{NS}, resource="cpu"}})'
                        ),
                        unit="percentunit",
                    ),
                    table(
                        "Memory used / requested by container",
                        "Working set against the memory request, now.",
                        Query(
                            "sum by (pod, container) (kubepulse_container_memory_working_set_bytes"
                            f"{{{NS}}})\n/\n"
                            "sum by (pod, container) (kubepulse_container_resource_requests"
                            f'{{{NS}, resource="memory"}})'
                        ),
                        unit="percentunit",
                    ),
                ),
            ),
            Row(
                "Limits",
                (
                    timeseries(
                        "Memory working set / limit",
                        "Each container's working set as a share of its memory limit (the "
                        "cgroup's); the OOM killer acts at 100 %.",
                        Query(
                            f"kubepulse_container_memory_working_set_bytes{{{NS}}}\n/\n"
                            f"kubepulse_container_memory_limit_bytes{{{NS}}} > 0",
                            "{{pod}}/{{container}}",
                        ),
                        unit="percentunit",
                        thresholds=((0.9, "red"),),
                    ),
                    timeseries(
                        "CPU throttled periods",
                        "Share of CFS periods in which each container was throttled.",
                        Query(_throttled_share(NS, "pod, container"), "{{pod}}/{{container}}"),
                        unit="percentunit",
                        thresholds=((0.25, "red"),),
                    ),
                    timeseries(
                        "OOM kills",
                        "OOM kills per container in each rate interval.",
                        Query(
                            "sum by (pod, container) (increase(kubepulse_container_oom_kills_total"
                            f"{{{NS}}}[{RATE}]))",
                            "{{pod}}/{{container}}",
                        ),
                    ),
                    timeseries(
                        "Container restarts",
                        "Restarts per container in each rate interval, whatever the reason.",
                        Query(
                            "sum by (pod, container) (increase(kubepulse_container_restarts_total"
                            f"{{{NS}}}[{RATE}]))",
                            "{{pod}}/{{container}}",
                        ),
                    ),
                ),
            ),
        ),
    )


def workload_dashboard() -> Dashboard:
    usage = _cpu_rate(WORKLOAD_PODS, "namespace")
    cpu_requests = (
        "sum by (namespace) (kubepulse_container_resource_requests"
        f'{{{WORKLOAD_PODS}, resource="cpu"}})'
    )
    return Dashboard(
        uid="kubepulse-workload",
        title="kubepulse / Workload",
        description=(
            "The pods of one workload (a Deployment's or StatefulSet's pods, picked by name "
            "prefix): usage against requests as an HPA Utilization target sees it, a linear "
            "forecast, and each pod's limits."
        ),
        variables=(
            datasource_variable(),
            label_variable(
                "namespace", "Namespace", "label_values(kubepulse_container_info, namespace)"
            ),
            label_variable(
                "workload",
                "Workload",
                'label_values(kubepulse_container_info{namespace="$namespace"}, pod)',
                # web-7d9f8c6b5d-x2x9q -> web; db-0 -> db: Deployment and StatefulSet pods.
                regex="/^(.+?)(?:-[a-z0-9]{6,10})?-[a-z0-9]{1,5}$/",
            ),
            Variable(
                "target",
                "HPA CPU target %",
                "custom",
                options=("50", "60", "70", "80", "90", "100"),
                default="80",
            ),
        ),
        rows=(
            Row(
                "Autoscaling",
                (
                    stat(
                        "Pods",
                        "Pods of the workload with a running container.",
                        Query(
                            f"count(count by (pod) (kubepulse_container_info{{{WORKLOAD_PODS}}}))"
                        ),
                    ),
                    stat(
                        "CPU utilization",
                        "CPU used / CPU requested over the workload's pods: the figure an HPA "
                        "with a Resource Utilization target compares with its target.",
                        Query(f"{usage}\n/\n{cpu_requests}"),
                        unit="percentunit",
                        width=5,
                    ),
                    stat(
                        "Replicas for the target",
                        "ceil(pods x utilization / target): how many pods an HPA with this "
                        "target would want now (before its tolerance and stabilization).",
                        Query(
                            "ceil(count(count by (pod) "
                            f"(kubepulse_container_info{{{WORKLOAD_PODS}}}))\n* "
                            f"sum({usage})\n/ sum({cpu_requests})\n/ ($target / 100))"
                        ),
                        width=5,
                    ),
                    stat(
                        "Memory working set",
                        "Working set of all the workload's containers.",
                        Query(
                            f"sum(kubepulse_container_memory_working_set_bytes{{{WORKLOAD_PODS}}})"
                        ),
                        unit="bytes",
                        width=6,
                    ),
                    timeseries(
                        "CPU utilization: now, forecast and HPA target",
                        "Utilization (used / requested) now; the same ratio extrapolated 10 "
                        "minutes ahead by predict_linear over the last 30 minutes (the "
                        "adapter's own kubepulse.io/predict forecasts are API answers, not "
                        "Prometheus series, so this panel recomputes a linear one); and the "
                        "target chosen above.",
                        Query(f"{usage}\n/\n{cpu_requests}", "current"),
                        Query(
                            f"predict_linear(({usage}\n/\n{cpu_requests})[30m:], 600)",
                            "forecast +10m",
                        ),
                        Query("vector($target / 100)", "target"),
                        unit="percentunit",
                        width=24,
                    ),
                ),
            ),
            Row(
                "Pods",
                (
                    timeseries(
                        "CPU by pod",
                        "CPU used by each pod, with its requests and limits.",
                        Query(_cpu_rate(WORKLOAD_PODS, "pod"), "{{pod}}"),
                        Query(
                            "sum by (pod) (kubepulse_container_resource_requests"
                            f'{{{WORKLOAD_PODS}, resource="cpu"}})',
                            "{{pod}} request",
                        ),
                        Query(
                            "sum by (pod) (kubepulse_container_resource_limits"
                            f'{{{WORKLOAD_PODS}, resource="cpu"}})',
                            "{{pod}} limit",
                        ),
                    ),
                    timeseries(
                        "Memory by pod, with a forecast",
                        "Working set of each pod, its memory limit, and the working set "
                        "extrapolated 10 minutes ahead from the last 15 minutes: a climbing "
                        "forecast crossing the limit is an OOM kill coming.",
                        Query(
                            "sum by (pod) (kubepulse_container_memory_working_set_bytes"
                            f"{{{WORKLOAD_PODS}}})",
                            "{{pod}}",
                        ),
                        Query(
                            "sum by (pod) (kubepulse_container_resource_limits"
                            f'{{{WORKLOAD_PODS}, resource="memory"}})',
                            "{{pod}} limit",
                        ),
                        Query(
                            "clamp_min(sum by (pod) (predict_linear("
                            f"kubepulse_container_memory_working_set_bytes{{{WORKLOAD_PODS}}}"
                            "[15m], 600)), 0)",
                            "{{pod}} forecast +10m",
                        ),
                        unit="bytes",
                    ),
                    timeseries(
                        "CPU throttled periods",
                        "Share of CFS periods in which each container was throttled.",
                        Query(
                            _throttled_share(WORKLOAD_PODS, "pod, container"),
                            "{{pod}}/{{container}}",
                        ),
                        unit="percentunit",
                    ),
                    timeseries(
                        "OOM kills and restarts",
                        "OOM kills and restarts of the workload's containers in each rate "
                        "interval.",
                        Query(
                            "sum by (pod) (increase(kubepulse_container_oom_kills_total"
                            f"{{{WORKLOAD_PODS}}}[{RATE}]))",
                            "{{pod}} OOM kills",
                        ),
                        Query(
                            "sum by (pod) (increase(kubepulse_container_restarts_total"
                            f"{{{WORKLOAD_PODS}}}[{RATE}]))",
                            "{{pod}} restarts",
                        ),
                    ),
                ),
            ),
        ),
    )


def node_dashboard() -> Dashboard:
    def pressure(resource: str, kind: str) -> Query:
        line = "some" if kind == "waiting" else "full"
        return Query(
            f"rate(kubepulse_node_pressure_{resource}_{kind}_seconds_total{{{NODES}}}[{RATE}])",
            f"{{{{node}}}} {line}",
        )

    return Dashboard(
        uid="kubepulse-node",
        title="kubepulse / Node pressure",
        description=(
            "Pressure stall information, memory available, OOM kills and terminations, "
            "storage and the container runtime's overhead, per node."
        ),
        variables=(
            datasource_variable(),
            label_variable(
                "node", "Node", "label_values(kubepulse_node_memory_total_bytes, node)", multi=True
            ),
        ),
        rows=(
            Row(
                "Pressure stall information (PSI)",
                (
                    timeseries(
                        "CPU pressure",
                        "Share of time some runnable task waited for a CPU (/proc/pressure/cpu).",
                        pressure("cpu", "waiting"),
                        unit="percentunit",
                        width=8,
                    ),
                    timeseries(
                        "Memory pressure",
                        "Share of time some task (some) or every task (full) stalled on "
                        "memory: reclaim, swap-in, refaults. Sustained 'full' means thrashing.",
                        pressure("memory", "waiting"),
                        pressure("memory", "stalled"),
                        unit="percentunit",
                        width=8,
                    ),
                    timeseries(
                        "I/O pressure",
                        "Share of time some or every task stalled on block I/O.",
                        pressure("io", "waiting"),
                        pressure("io", "stalled"),
                        unit="percentunit",
                        width=8,
                    ),
                ),
            ),
            Row(
                "Memory",
                (
                    timeseries(
                        "Memory available",
                        "MemAvailable: what can be allocated without swapping, including "
                        "reclaimable cache. The kubelet evicts pods at its "
                        "memory.available threshold (100Mi by default).",
                        Query(f"kubepulse_node_memory_available_bytes{{{NODES}}}", "{{node}}"),
                        unit="bytes",
                    ),
                    timeseries(
                        "Memory available / total",
                        "MemAvailable as a share of MemTotal.",
                        Query(
                            f"kubepulse_node_memory_available_bytes{{{NODES}}}\n/\n"
                            f"kubepulse_node_memory_total_bytes{{{NODES}}}",
                            "{{node}}",
                        ),
                        unit="percentunit",
                        thresholds=((0.1, "orange"), (0.05, "red")),
                        max_value=1.0,
                    ),
                    timeseries(
                        "OOM kills",
                        "Containers killed by the OOM killer on each node, per rate interval.",
                        Query(
                            "sum by (node) (increase(kubepulse_container_oom_kills_total"
                            f"{{{NODES}}}[{RATE}]))",
                            "{{node}}",
                        ),
                    ),
                    timeseries(
                        "Last container terminations by reason",
                        "Containers on each node whose last termination had this reason "
                        "(OOMKilled, Error, ...). Pod evictions are not in the kubepulse "
                        "catalog: the containers of an evicted pod show up here with the "
                        "reason the runtime gave them.",
                        Query(
                            "sum by (node, reason) (kubepulse_container_last_terminated_reason"
                            f"{{{NODES}}})",
                            "{{node}} {{reason}}",
                        ),
                    ),
                ),
            ),
            Row(
                "CPU, storage and runtime",
                (
                    timeseries(
                        "CPU busy by mode",
                        "Node CPU time by mode from /proc/stat, idle left out, in cores.",
                        Query(
                            "sum by (node, mode) (rate(kubepulse_node_cpu_seconds_total"
                            f'{{{NODES}, mode!="idle"}}[{RATE}]))',
                            "{{node}} {{mode}}",
                        ),
                        stack=True,
                        width=8,
                    ),
                    timeseries(
                        "Ephemeral storage used",
                        "Used share of the filesystem holding the kubelet's root directory; "
                        "the kubelet evicts at nodefs.available < 10 % by default.",
                        Query(
                            "1 - kubepulse_node_ephemeral_storage_available_bytes"
                            f"{{{NODES}}}\n/\nkubepulse_node_ephemeral_storage_capacity_bytes"
                            f"{{{NODES}}}",
                            "{{node}}",
                        ),
                        unit="percentunit",
                        thresholds=((0.85, "orange"), (0.9, "red")),
                        width=8,
                    ),
                    timeseries(
                        "Container runtime memory",
                        "Resident memory of the runtime's own processes (daemon, shims, "
                        "conmon): overhead no pod request accounts for.",
                        Query(
                            "sum by (node, runtime, component) "
                            f"(kubepulse_node_runtime_memory_rss_bytes{{{NODES}}})",
                            "{{node}} {{runtime}} {{component}}",
                        ),
                        unit="bytes",
                        width=8,
                    ),
                ),
            ),
        ),
    )


def adapter_dashboard() -> Dashboard:
    requests = "kubepulse_adapter_api_requests_total"
    return Dashboard(
        uid="kubepulse-adapter",
        title="kubepulse / Adapter health",
        description=(
            "The kubepulse adapter itself: metrics API traffic, the embedded scraper, the "
            "freshness of exporter data and checkpoints."
        ),
        variables=(
            datasource_variable(),
            label_variable(
                "instance",
                "Adapter instance",
                "label_values(kubepulse_adapter_store_series, instance)",
                multi=True,
            ),
        ),
        rows=(
            Row(
                "Metrics API",
                (
                    timeseries(
                        "Requests by API group and code",
                        "Requests answered per second by API group (custom.metrics.k8s.io, "
                        "external.metrics.k8s.io, discovery) and HTTP status code. The adapter "
                        "serves only GET, so there is no verb label.",
                        Query(
                            f"sum by (group, code) (rate({requests}{{{ADAPTER}}}[{RATE}]))",
                            "{{group}} {{code}}",
                        ),
                        unit="reqps",
                        stack=True,
                        width=8,
                    ),
                    timeseries(
                        "Server errors",
                        "Share of requests answered with a 5xx code (503: the source is down).",
                        Query(
                            f'(sum(rate({requests}{{{ADAPTER}, code=~"5.."}}[{RATE}])) '
                            "or vector(0))\n/\n"
                            f"sum(rate({requests}{{{ADAPTER}}}[{RATE}]))",
                            "5xx share",
                        ),
                        unit="percentunit",
                        thresholds=((0.01, "orange"), (0.05, "red")),
                        width=8,
                    ),
                    timeseries(
                        "Request latency",
                        "50th, 95th and 99th percentiles of the time to answer, by API group.",
                        *(
                            Query(
                                f"histogram_quantile({quantile}, sum by (group, le) (rate("
                                "kubepulse_adapter_api_request_duration_seconds_bucket"
                                f"{{{ADAPTER}}}[{RATE}])))",
                                f"{{{{group}}}} p{round(quantile * 100)}",
                            )
                            for quantile in (0.5, 0.95, 0.99)
                        ),
                        unit="s",
                        width=8,
                    ),
                ),
            ),
            Row(
                "Embedded scraper",
                (
                    timeseries(
                        "Scrapes and failures",
                        "Scrapes attempted per second by target role, and failures by role "
                        "and reason.",
                        Query(
                            "sum by (role) (rate(kubepulse_adapter_scrapes_total"
                            f"{{{ADAPTER}}}[{RATE}]))",
                            "{{role}} scrapes",
                        ),
                        Query(
                            "sum by (role, reason) (rate(kubepulse_adapter_scrape_failures_total"
                            f"{{{ADAPTER}}}[{RATE}]))",
                            "{{role}} failed: {{reason}}",
                        ),
                        unit="ops",
                        width=8,
                    ),
                    timeseries(
                        "Targets by health",
                        "Targets by role and the health of their last scrape; 'down' "
                        "targets' data goes stale and the API answers 404 for them.",
                        Query(
                            "sum by (role, health) (kubepulse_adapter_scrape_targets"
                            f"{{{ADAPTER}}})",
                            "{{role}} {{health}}",
                        ),
                        width=8,
                    ),
                    timeseries(
                        "Scrape duration p95",
                        "95th percentile of the time from request to ingested page, by role.",
                        Query(
                            "histogram_quantile(0.95, sum by (role, le) (rate("
                            f"kubepulse_adapter_scrape_duration_seconds_bucket{{{ADAPTER}}}"
                            f"[{RATE}])))",
                            "{{role}}",
                        ),
                        unit="s",
                        width=8,
                    ),
                    timeseries(
                        "Samples stored",
                        "Samples appended to the adapter's store per second.",
                        Query(
                            "sum by (instance) (rate("
                            f"kubepulse_adapter_scrape_samples_appended_total{{{ADAPTER}}}[{RATE}]))",
                            "{{instance}}",
                        ),
                        unit="ops",
                        width=8,
                    ),
                    timeseries(
                        "Store series and memory",
                        "Series held and the store's estimated memory.",
                        Query(
                            f"kubepulse_adapter_store_series{{{ADAPTER}}}", "{{instance}} series"
                        ),
                        Query(f"kubepulse_adapter_store_bytes{{{ADAPTER}}}", "{{instance}} bytes"),
                        width=8,
                    ),
                    timeseries(
                        "Exporter data age",
                        "Seconds since each exporter's oldest collector last succeeded: the "
                        "age of the freshest data that node can give.",
                        Query(
                            "time() - min by (node) "
                            "(kubepulse_exporter_last_success_timestamp_seconds)",
                            "{{node}}",
                        ),
                        unit="s",
                        thresholds=((60, "orange"), (180, "red")),
                        width=8,
                    ),
                ),
            ),
            Row(
                "Checkpoints",
                (
                    stat(
                        "Checkpoint age",
                        "Seconds since the last checkpoint of the store was written; a "
                        "restart loses at most this much history.",
                        Query(
                            "time() - max by (instance) "
                            f"(kubepulse_adapter_checkpoint_last_success_timestamp_seconds{{{ADAPTER}}})"
                        ),
                        unit="s",
                        thresholds=((600, "orange"), (1800, "red")),
                        width=6,
                    ),
                    stat(
                        "Checkpoint failures (1h)",
                        "Checkpoints that could not be written in the last hour.",
                        Query(
                            "sum(increase(kubepulse_adapter_checkpoint_failures_total"
                            f"{{{ADAPTER}}}[1h]))"
                        ),
                        thresholds=((1, "red"),),
                        width=6,
                    ),
                    timeseries(
                        "Checkpoint size",
                        "Size of the last checkpoint file on disk.",
                        Query(
                            f"kubepulse_adapter_checkpoint_size_bytes{{{ADAPTER}}}",
                            "{{instance}} size",
                        ),
                        unit="bytes",
                        width=6,
                    ),
                    timeseries(
                        "Checkpoint duration",
                        "Time the last checkpoint took, and its longest hold of the store lock "
                        "(scrapes wait for that long).",
                        Query(
                            f"kubepulse_adapter_checkpoint_duration_seconds{{{ADAPTER}}}",
                            "{{instance}} total",
                        ),
                        Query(
                            f"kubepulse_adapter_checkpoint_lock_hold_max_seconds{{{ADAPTER}}}",
                            "{{instance}} longest lock hold",
                        ),
                        unit="s",
                        width=6,
                    ),
                ),
            ),
        ),
    )


DASHBOARDS: Final = {
    "cluster-overview": cluster_overview,
    "namespace": namespace_dashboard,
    "workload": workload_dashboard,
    "node-pressure": node_dashboard,
    "adapter": adapter_dashboard,
}
"""File name (without ``.json``) to the function that describes the dashboard."""


def generate() -> dict[str, str]:
    """Every dashboard's file name to its JSON text, exactly as committed."""
    return {
        f"{name}.json": json.dumps(render(describe()), indent=2, sort_keys=True) + "\n"
        for name, describe in DASHBOARDS.items()
    }


def differing(directory: Path, generated: Mapping[str, str]) -> list[str]:
    """File names under ``directory`` that are missing, stale or not generated here."""
    stale = [
        name
        for name, text in generated.items()
        if not (directory / name).is_file() or (directory / name).read_text() != text
    ]
    extra = (
        sorted(path.name for path in directory.glob("*.json") if path.name not in generated)
        if directory.is_dir()
        else []
    )
    return sorted(stale) + extra


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 naming the files that differ from what would be written",
    )
    parser.add_argument(
        "--output-dir", type=Path, default=OUTPUT_DIR, help="where the JSON files go"
    )
    arguments = parser.parse_args(argv)
    generated = generate()
    directory: Path = arguments.output_dir
    if arguments.check:
        stale = differing(directory, generated)
        if stale:
            print(
                "dashboards differ from what scripts/dashboards.py generates: "
                + ", ".join(str(directory / name) for name in stale)
                + "\nrun `python scripts/dashboards.py` and commit the result "
                "(and delete JSON files it does not generate)",
                file=sys.stderr,
            )
            return 1
        print(f"{len(generated)} dashboards up to date in {directory}")
        return 0
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in generated.items():
        (directory / name).write_text(text)
    print(f"wrote {len(generated)} dashboards to {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

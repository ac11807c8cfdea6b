"""The table each ``kubectl pulse`` command prints: its rows and columns.

A command's table is read from the analysis API's document (camelCase fields, the same
whether the adapter answered or ``--local`` computed it), so ``-o table`` and ``-o csv``
show exactly what ``-o json`` holds, selected and formatted:

- ``breaches``: one row per finding (over a threshold, throttled, OOM-killed, without
  limits or requests), worst first;
- ``pressure``: one row per node, most pressed first, then the pods the kubelet would
  evict first (``-o json`` has the whole ranking);
- ``fragmentation``: the largest pod shapes that fit, stranded CPU or memory per node,
  and how many pods of ``--shape-cpu``/``--shape-memory`` fit on each node;
- ``quota``: one row per quota resource;
- ``report``: one row per resource of the namespace, then the top consumers;
- ``recommend``: one row per container, current and recommended requests and limits;
- ``hpa``: one row per replay step where the replicas changed, with and without
  forecasts.

Numbers are printed the way ``kubectl top`` prints them: CPU in millicores (``250m``),
memory in MiB or GiB, ratios as percentages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from kubepulse.cli.output import Column, field

__all__ = ["Table", "table_for"]

_MI: Final = 2**20
_GI: Final = 2**30

Rows = Callable[[Mapping[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Table:
    """How one command's document becomes rows and columns."""

    rows: Rows
    columns: tuple[Column, ...]
    empty_message: str = "No resources found."


def cpu(value: Any) -> str:
    """Cores as ``kubectl top`` prints them: ``250m``, ``1500m``."""
    return f"{round(float(value) * 1000):d}m"


def memory(value: Any) -> str:
    """Bytes as ``512Mi`` or ``3.5Gi``."""
    amount = float(value)
    if abs(amount) >= _GI:
        return f"{amount / _GI:.1f}Gi"
    return f"{amount / _MI:.0f}Mi"


def percent(value: Any) -> str:
    """A percentage already in percent: ``87%``."""
    return f"{float(value):.0f}%"


def ratio(value: Any) -> str:
    """A ratio in ``[0, 1]`` as a percentage: ``0.42`` is ``42%``."""
    return f"{float(value) * 100:.0f}%"


def number(value: Any) -> str:
    """A number with at most two decimals."""
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


def amount(resource: str) -> Callable[[Any], str]:
    """The printer for an amount of ``resource``."""
    if resource in ("cpu", "requests.cpu", "limits.cpu"):
        return cpu
    if "memory" in resource or "storage" in resource:
        return memory
    return number


def _quantity(row: Mapping[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    return amount(str(row.get("resource", "")))(value)


def _time(epoch_ms: Any) -> str:
    moment = datetime.fromtimestamp(int(epoch_ms) / 1000, tz=timezone.utc)
    return moment.strftime("%H:%M:%S")


def _items(document: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = document.get(key)
    return list(value) if isinstance(value, list) else []


# ---------------------------------------------------------------- breaches


def _breach_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for item in _items(document, "breaches"):
        resource = item["resource"]
        printed = amount(resource)
        rows.append(
            {
                **item,
                "finding": f"{resource} {item['bound']}{' exceeded' if item.get('over') else ''}",
                "detail": f"{item['percent']:.0f}% ({printed(item['usage'])} of "
                f"{printed(item['boundValue'])})",
            }
        )
    for item in _items(document, "throttling"):
        rows.append(
            {
                **item,
                "finding": "cpu throttled",
                "detail": f"{item['throttledRatio'] * 100:.0f}% of periods throttled",
            }
        )
    for item in _items(document, "oomKills"):
        rows.append({**item, "finding": "OOMKilled", "detail": str(item.get("cause", ""))})
    for item in _items(document, "missingSettings"):
        lacking = []
        if item.get("containersWithoutLimits"):
            lacking.append("limits (" + ", ".join(item["containersWithoutLimits"]) + ")")
        if item.get("containersWithoutRequests"):
            lacking.append("requests (" + ", ".join(item["containersWithoutRequests"]) + ")")
        rows.append(
            {
                **item,
                "container": None,
                "finding": f"no {' or '.join(part.split(' ')[0] for part in lacking)}",
                "detail": "; ".join(lacking) + f"; QoS {item.get('qosClass')}",
            }
        )
    return rows


_BREACHES: Final = Table(
    rows=_breach_rows,
    columns=(
        Column("SEVERITY", field("severity")),
        Column("NAMESPACE", field("namespace")),
        Column("POD", field("pod")),
        Column("CONTAINER", field("container")),
        Column("FINDING", field("finding")),
        Column("DETAIL", field("detail")),
    ),
    empty_message="No breaches found.",
)

# ---------------------------------------------------------------- pressure


def _resource(node: Mapping[str, Any], name: str, key: str) -> Any:
    for figures in node.get("resources") or ():
        if figures.get("resource") == name:
            return figures.get(key)
    return None


def _psi(node: Mapping[str, Any], name: str) -> Any:
    for figure in node.get("psi") or ():
        if figure.get("name") == name:
            return figure.get("mean")
    return None


def _pressure_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    at_risk: dict[str, int] = {}
    for candidate in _items(document, "evictionRanking"):
        if candidate.get("predictedEviction"):
            at_risk[candidate["node"]] = at_risk.get(candidate["node"], 0) + 1
    rows = []
    for node in _items(document, "nodes"):
        rows.append(
            {
                "node": node["node"],
                "level": node.get("level"),
                "conditions": ",".join(node.get("pressureConditions") or ()) or None,
                "cpuRequested": _resource(node, "cpu", "requestedPercent"),
                "memoryRequested": _resource(node, "memory", "requestedPercent"),
                "memoryUsed": _resource(node, "memory", "usedPercent"),
                "memoryAvailable": node.get("memoryAvailableBytes"),
                "memorySome": _psi(node, "memory_some"),
                "atRisk": at_risk.get(node["node"], 0),
                "reasons": "; ".join(node.get("reasons") or ()) or None,
            }
        )
    return rows


_PRESSURE: Final = Table(
    rows=_pressure_rows,
    columns=(
        Column("NODE", field("node")),
        Column("PRESSURE", field("level")),
        Column("CONDITIONS", field("conditions")),
        Column("CPU REQ", field("cpuRequested"), percent),
        Column("MEM REQ", field("memoryRequested"), percent),
        Column("MEM USED", field("memoryUsed"), percent),
        Column("MEM AVAILABLE", field("memoryAvailable"), memory),
        Column("MEM PSI", field("memorySome"), ratio),
        Column("PODS AT RISK", field("atRisk")),
        Column("WHY", field("reasons")),
    ),
    empty_message="No nodes found.",
)

# ---------------------------------------------------------------- fragmentation


def _fragmentation_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"what": "largest pod that fits", "cpu": cpu_cores, "memory": memory_bytes}
        for cpu_cores, memory_bytes in document.get("schedulableShapes") or ()
    ]
    for item in _items(document, "stranded"):
        resource = "cpu" if item["resource"] == "cpu" else "memory"
        rows.append(
            {"what": f"stranded ({item['exhausted']} exhausted)", "node": item["node"],
             resource: item["amount"]}
        )  # fmt: skip
    for fit in _items(document, "shapeFits"):
        rows.append(
            {"what": "pods of the shape that fit", "node": fit["node"], "pods": fit["count"]}
        )
    return rows


_FRAGMENTATION: Final = Table(
    rows=_fragmentation_rows,
    columns=(
        Column("WHAT", field("what")),
        Column("NODE", field("node")),
        Column("CPU", field("cpu"), cpu),
        Column("MEMORY", field("memory"), memory),
        Column("PODS", field("pods")),
    ),
    empty_message="No node has room for a pod.",
)

# ---------------------------------------------------------------- quota


def _quota_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for item in _items(document, "resources"):
        ref = item.get("ref") or {}
        forecast = item.get("forecast") or {}
        flat = {**item, **ref}
        rows.append(
            {
                **flat,
                "usedText": _quantity(flat, "used"),
                "hardText": _quantity(flat, "hard"),
                "daysLeft": forecast.get("daysUntil"),
            }
        )
    return rows


_QUOTA: Final = Table(
    rows=_quota_rows,
    columns=(
        Column("NAMESPACE", field("namespace")),
        Column("QUOTA", field("quota")),
        Column("RESOURCE", field("resource")),
        Column("USED", field("usedText")),
        Column("HARD", field("hardText")),
        Column("USE", field("utilisationPercent"), percent),
        Column("STATUS", field("status")),
        Column("DAYS LEFT", field("daysLeft"), number),
    ),
    empty_message="No ResourceQuotas found.",
)

# ---------------------------------------------------------------- report


def _report_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for item in _items(document, "resources"):
        printed = amount(item["resource"])
        rows.append(
            {
                "section": "total",
                "name": item["resource"],
                "requests": printed(item["requests"]),
                "limits": printed(item["limits"]),
                "usage": None if item.get("usage") is None else printed(item["usage"]),
                "usageToRequests": item.get("usageToRequests"),
            }
        )
    for consumer in _items(document, "topConsumers"):
        printed = amount(consumer["resource"])
        rows.append(
            {
                "section": f"top {consumer['resource']} {consumer['basis']} #{consumer['rank']}",
                "name": consumer["pod"],
                "usage": printed(consumer["amount"]),
                "usageToRequests": None,
            }
        )
    return rows


_REPORT: Final = Table(
    rows=_report_rows,
    columns=(
        Column("SECTION", field("section")),
        Column("NAME", field("name")),
        Column("REQUESTS", field("requests")),
        Column("LIMITS", field("limits")),
        Column("USAGE", field("usage")),
        Column("USAGE/REQUESTS", field("usageToRequests"), ratio),
    ),
    empty_message="The namespace has no pods.",
)

# ---------------------------------------------------------------- recommend


def _change(figure: Mapping[str, Any] | None, printer: Callable[[Any], str]) -> str | None:
    if not figure or figure.get("recommended") is None:
        return None
    current = figure.get("current")
    before = "none" if current is None else printer(current)
    return f"{before} -> {printer(figure['recommended'])}"


def _recommend_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for workload in _items(document, "workloads"):
        ref = workload.get("workload") or {}
        for container in workload.get("containers") or ():
            figures = [
                container.get(key)
                for key in ("cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit")
            ]
            confidences = [figure["confidence"] for figure in figures if figure]
            rows.append(
                {
                    "namespace": ref.get("namespace"),
                    "workload": f"{ref.get('kind', '').lower()}/{ref.get('name')}",
                    "container": container.get("container"),
                    "cpuRequest": _change(container.get("cpuRequest"), cpu),
                    "cpuLimit": _change(container.get("cpuLimit"), cpu),
                    "memoryRequest": _change(container.get("memoryRequest"), memory),
                    "memoryLimit": _change(container.get("memoryLimit"), memory),
                    "confidence": min(confidences) if confidences else None,
                    "hpaAware": "yes" if container.get("hpaAware") else None,
                }
            )
    return rows


_RECOMMEND: Final = Table(
    rows=_recommend_rows,
    columns=(
        Column("NAMESPACE", field("namespace")),
        Column("WORKLOAD", field("workload")),
        Column("CONTAINER", field("container")),
        Column("CPU REQUEST", field("cpuRequest")),
        Column("CPU LIMIT", field("cpuLimit")),
        Column("MEMORY REQUEST", field("memoryRequest")),
        Column("MEMORY LIMIT", field("memoryLimit")),
        Column("CONFIDENCE", field("confidence"), ratio),
        Column("HPA-AWARE", field("hpaAware")),
    ),
    empty_message="No workloads with usage history found.",
)

# ---------------------------------------------------------------- hpa


def _replay_rows(replay: Mapping[str, Any] | None, basis: str) -> Iterable[dict[str, Any]]:
    if not replay:
        return ()
    return (
        {
            "basis": basis,
            "time": _time(event["timestampMs"]),
            "from": event["fromReplicas"],
            "to": event["toReplicas"],
            "reason": event.get("reason"),
        }
        for event in replay.get("events") or ()
    )


def _hpa_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = [*_replay_rows(document.get("replay"), "observed")]
    rows.extend(_replay_rows(document.get("forecastReplay"), "forecast"))
    return sorted(rows, key=lambda row: (row["time"], row["basis"]))


_HPA: Final = Table(
    rows=_hpa_rows,
    columns=(
        Column("TIME", field("time")),
        Column("ON", field("basis")),
        Column("FROM", field("from")),
        Column("TO", field("to")),
        Column("REASON", field("reason")),
    ),
    empty_message="No scaling events in the replayed history.",
)

_TABLES: Final[Mapping[str, Table]] = {
    "limitbreaches": _BREACHES,
    "nodepressure": _PRESSURE,
    "fragmentation": _FRAGMENTATION,
    "quotas": _QUOTA,
    "reports": _REPORT,
    "recommendations": _RECOMMEND,
    "hpametrics": _HPA,
}


def table_for(resource: str) -> Table:
    """The table of the analysis served as ``resource``.

    Raises:
        KeyError: no table is defined for it (a new analysis needs one here).
    """
    return _TABLES[resource]


def resources_with_tables() -> Sequence[str]:
    """Every resource that has a table (a test checks it covers every analysis)."""
    return tuple(_TABLES)

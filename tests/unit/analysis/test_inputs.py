"""The analyzers' inputs: time series rules and the snapshot's lookups."""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass
from decimal import Decimal

import pytest

from kubepulse.analysis import ClusterSnapshot, ContainerRef, TimeSeries, UsageHistory, to_json
from kubepulse.errors import KubepulseValueError, UnknownObjectError
from kubepulse.model import Namespace, Node, Pod


def pod(name: str, node: str | None, phase: str = "Running", namespace: str = "shop") -> Pod:
    return Pod.from_api(
        {
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
            "spec": {"nodeName": node, "containers": [{"name": "app"}]},
            "status": {"phase": phase},
        }
    )


def test_of_sorts_keeps_the_last_duplicate_and_drops_non_finite_values() -> None:
    series = TimeSeries.of([(3000, 3.0), (1000, 1.0), (2000, math.nan), (1000, 1.5)])
    assert list(series) == [(1000, 1.5), (3000, 3.0)]
    assert (series.first_ms, series.last_ms, series.last()) == (1000, 3000, 3.0)
    assert list(series.between(1001, 3000)) == [(3000, 3.0)]
    assert TimeSeries().last() is None


def test_between_is_the_series_itself_when_the_window_covers_it() -> None:
    series = TimeSeries.of([(1000, 1.0), (2000, 2.0), (3000, 3.0)])
    assert series.between(0, 5000) is series
    assert series.between(1000, 3000) is series
    window = series.between(1500, 3000)
    assert window == TimeSeries((2000, 3000), (2.0, 3.0))
    assert series.between(4000, 5000) == TimeSeries()


def test_in_namespace_keeps_the_namespaces_series_in_order() -> None:
    refs = [
        ContainerRef("shop", "b", "app"),
        ContainerRef("batch", "x", "app"),
        ContainerRef("shop", "a", "app"),
        ContainerRef("shop", "a", "proxy"),
    ]
    history = UsageHistory(
        start_ms=0,
        end_ms=1000,
        cpu_cores={ref: TimeSeries((500,), (float(i),)) for i, ref in enumerate(refs)},
    )
    shop = history.in_namespace("cpu_cores", "shop")
    assert list(shop) == [refs[0], refs[2], refs[3]]
    assert shop[refs[3]].last() == 3.0
    assert list(history.in_namespace("cpu_cores", "batch")) == [refs[1]]
    assert dict(history.in_namespace("cpu_cores", "nowhere")) == {}
    assert dict(history.in_namespace("memory_working_set_bytes", "shop")) == {}
    assert history.in_namespace("cpu_cores", "shop") is shop, "grouped once per history"


def test_a_series_out_of_order_or_ragged_is_refused() -> None:
    with pytest.raises(KubepulseValueError, match="increase strictly"):
        TimeSeries((2, 1), (0.0, 0.0))
    with pytest.raises(KubepulseValueError, match="one value per timestamp"):
        TimeSeries((1,), ())


def test_the_snapshot_indexes_active_pods_by_node() -> None:
    nodes = (Node.from_api({"metadata": {"name": "n1"}}),)
    pods = (
        pod("a", "n1"),
        pod("b", "n1", phase="Succeeded"),
        pod("c", None, phase="Pending"),
        pod("d", "n1", namespace="ops"),
    )
    snapshot = ClusterSnapshot(taken_at_ms=0, nodes=nodes, pods=pods)
    assert [p.name for p in snapshot.pods_on("n1")] == ["a", "d"]
    assert snapshot.pods_on("n2") == ()
    assert snapshot.node("n1") is nodes[0]
    assert [p.name for p in snapshot.pods_in("shop")] == ["a", "b", "c"]
    assert snapshot.namespace_names() == ("ops", "shop")


def test_history_is_frozen_and_lists_a_pods_measured_containers() -> None:
    web = ContainerRef("shop", "web-0", "app")
    sidecar = ContainerRef("shop", "web-0", "proxy")
    cpu = {web: TimeSeries.of([(0, 0.5)])}
    history = UsageHistory(
        start_ms=0,
        end_ms=60_000,
        cpu_cores=cpu,
        memory_working_set_bytes={sidecar: TimeSeries.of([(0, 1e6)])},
    )
    cpu.clear()
    assert web in history.cpu_cores
    assert history.containers_of("shop", "web-0") == (web, sidecar)
    assert history.window_ms == 60_000
    with pytest.raises(KubepulseValueError, match="ends"):
        UsageHistory(start_ms=10, end_ms=0)


def test_results_serialise_to_plain_json() -> None:
    class Level(enum.Enum):
        HIGH = "high"

    @dataclass(frozen=True)
    class Finding:
        where: ContainerRef
        level: Level
        used: Decimal
        ratio: float
        by_container: dict[ContainerRef, float]
        _private: int = 0

    ref = ContainerRef("shop", "web-0", "app")
    data = to_json(Finding(ref, Level.HIGH, Decimal("0.25"), math.inf, {ref: 1.0}))
    assert data == {
        "where": {"namespace": "shop", "pod": "web-0", "container": "app"},
        "level": "high",
        "used": 0.25,
        "ratio": None,
        "by_container": {"shop/web-0/app": 1.0},
    }
    json.dumps(data, allow_nan=False)
    camel = to_json(Finding(ref, Level.HIGH, Decimal("0.25"), 0.5, {ref: 1.0}), camel_case=True)
    assert list(camel) == ["where", "level", "used", "ratio", "byContainer"]
    assert camel["byContainer"] == {"shop/web-0/app": 1.0}, "mapping keys are data, kept"
    with pytest.raises(TypeError, match="object has no JSON form"):
        to_json(object())


def test_require_namespace_suggests_and_lists() -> None:
    names = [f"team-{index:02d}" for index in range(12)]
    snapshot = ClusterSnapshot(
        taken_at_ms=0,
        namespaces=tuple(Namespace(name=name) for name in names),
    )
    snapshot.require_namespace("team-03")
    with pytest.raises(UnknownObjectError) as raised:
        snapshot.require_namespace("team-3")
    message = str(raised.value)
    assert message.startswith("namespace 'team-3' not found (did you mean ")
    assert message.endswith("team-09 and 2 more")
    with pytest.raises(UnknownObjectError, match="has no namespaces, pods or quotas"):
        ClusterSnapshot(taken_at_ms=0).require_namespace("x")
    with pytest.raises(KubepulseValueError, match="non-empty string"):
        snapshot.require_namespace("")

"""The JSON pieces of the API's answers: timestamps and items.

The items of a ``MetricValueList`` are pinned key by key (order included), as the golden
files in ``test_api.py`` pin whole answers. The quantities in them are
:func:`kubepulse.quantity.format_quantity`'s, whose float short cut is held to its
Decimal pipeline in ``tests/unit/test_quantity.py``.
"""

from __future__ import annotations

from adapter.api.common import rfc3339
from adapter.api.custom_metrics import metric_value_items
from adapter.objects import NODES, PODS, ObjectRef, ResolvedObject
from kubepulse.metricquery import ObjectValue


def test_rfc3339_whole_seconds_in_utc() -> None:
    assert rfc3339(1_700_000_000_999) == "2023-11-14T22:13:20Z"
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    # the cache is keyed by the second: the next second is not the previous answer
    assert rfc3339(1_700_000_001_000) == "2023-11-14T22:13:21Z"


def _pod(name: str) -> ResolvedObject:
    return ResolvedObject(ObjectRef(PODS, name, "shop"), frozenset({name}))


VALUES = [
    (_pod("web-0"), ObjectValue("web-0", 1_700_000_000_000, 0.5, 300_000)),
    (_pod("web-1"), ObjectValue("web-1", 1_700_000_015_000, 12.0, 300_000)),
]
SELECTOR = {"matchLabels": {"kubepulse.io/aggregation": "p95"}}


def test_v1beta2_items_key_by_key() -> None:
    items = metric_value_items("v1beta2", VALUES, "latency", SELECTOR)
    assert [list(item) for item in items] == [
        ["describedObject", "metric", "timestamp", "windowSeconds", "value"]
    ] * 2
    assert items[1] == {
        "describedObject": {
            "kind": "Pod",
            "namespace": "shop",
            "name": "web-1",
            "apiVersion": "v1",
        },
        "metric": {"name": "latency", "selector": SELECTOR},
        "timestamp": "2023-11-14T22:13:35Z",
        "windowSeconds": 300,
        "value": "12",
    }
    assert list(items[0]["describedObject"]) == ["kind", "namespace", "name", "apiVersion"]
    assert items[0]["value"] == "500m"


def test_v1beta2_items_without_a_selector_name_the_metric_only() -> None:
    (item, _) = metric_value_items("v1beta2", VALUES, "latency", None)
    assert item["metric"] == {"name": "latency"}


def test_v1beta1_items_key_by_key() -> None:
    items = metric_value_items("v1beta1", VALUES[:1], "latency", None)
    assert items == [
        {
            "describedObject": {
                "kind": "Pod",
                "namespace": "shop",
                "name": "web-0",
                "apiVersion": "v1",
            },
            "metricName": "latency",
            "timestamp": "2023-11-14T22:13:20Z",
            "window": 300,
            "value": "500m",
            "selector": None,
        }
    ]
    assert list(items[0]) == [
        "describedObject",
        "metricName",
        "timestamp",
        "window",
        "value",
        "selector",
    ]


def test_cluster_scoped_objects_have_no_namespace() -> None:
    node = ResolvedObject(ObjectRef(NODES, "node-1"))
    (item,) = metric_value_items(
        "v1beta2", [(node, ObjectValue("node-1", 1_700_000_000_000, 2.0, 60_000))], "load", None
    )
    assert list(item["describedObject"]) == ["kind", "name", "apiVersion"]
    assert item["describedObject"]["kind"] == "Node"

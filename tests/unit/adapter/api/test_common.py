"""The JSON pieces of the API's answers: the quantity short cut, timestamps, items.

:func:`kubepulse.quantity.format_quantity` computes floats without its Decimal pipeline
(it is on the hot path of a 5,000-pod answer, through :func:`adapter.api.common.quantity`);
here that short cut is held to give exactly the Decimal pipeline's string (reached by
passing the float's shortest repr as a ``Decimal``, the number the float path reads), on
the boundaries of the rounding to nanos and the SI suffixes, and on hundreds of thousands
of random floats of every magnitude. The items of a ``MetricValueList`` are pinned key by
key (order included), as the golden files in ``test_api.py`` pin whole answers.
"""

from __future__ import annotations

import math
import random
import sys
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.api.common import quantity, rfc3339
from adapter.api.custom_metrics import metric_value_items
from adapter.objects import NODES, PODS, ObjectRef, ResolvedObject
from kubepulse.metricquery import ObjectValue
from kubepulse.quantity import QuantityError, format_quantity


def decimal_path(value: float) -> str:
    """``format_quantity`` of ``value`` by the Decimal pipeline, not the float short cut."""
    return format_quantity(Decimal(repr(value)))


BOUNDARIES = [
    0.0,
    -0.0,
    1e-9,
    -1e-9,
    1e-10,  # below a nano: rounds away from zero to 1n
    -1e-10,
    5e-324,  # the smallest float
    -5e-324,
    1.0000000001e-9,
    2.5e-9,
    0.9999999999,  # carries into the next digit when rounded up to nanos
    999.9999999995,
    0.1 + 0.2,
    0.5,
    1.5,
    1.0,
    10.0,
    999.0,
    1000.0,
    1500.0,
    1e6,
    123456789.123456789,
    2.0**53,
    1e15 + 0.5,
    1e16,
    9.99e16,
    99999999999999990.0,  # just below the short cut's limit
    1e17,  # the general path from here on
    1e18,
    1e21,
    -1e21,
    sys.float_info.max,
]


@pytest.mark.parametrize("value", BOUNDARIES, ids=repr)
def test_quantity_is_format_quantity_on_the_boundaries(value: float) -> None:
    assert quantity(value) == decimal_path(value)


def test_quantity_is_format_quantity_on_random_floats_of_every_magnitude() -> None:
    generator = random.Random(20261123)
    mismatches = []
    for _ in range(100_000):
        magnitude = 10.0 ** generator.randint(-15, 18)
        value = generator.random() * magnitude * (1 if generator.random() < 0.8 else -1)
        for candidate in (value, round(value, generator.randint(0, 12)), float(int(value))):
            if quantity(candidate) != decimal_path(candidate):
                mismatches.append(candidate)
    assert not mismatches[:5]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_quantity_is_format_quantity_on_any_finite_float(value: float) -> None:
    assert quantity(value) == decimal_path(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_quantity_refuses_what_format_quantity_refuses(value: float) -> None:
    with pytest.raises(QuantityError):
        quantity(value)


def test_quantity_of_an_int_takes_the_general_path() -> None:
    assert quantity(1500) == format_quantity(1500) == "1500"


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

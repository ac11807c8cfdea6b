"""ObjectIndex: watch events applied to an index of parsed objects, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from kubepulse.collect.index import ObjectIndex, WatchOutcome, numeric_resource_version
from kubepulse.errors import KubepulseValueError
from kubepulse.model import Pod
from tests.unit.collect.fakeapi import pod


def _index(*pods: dict[str, Any], version: str = "10") -> ObjectIndex[Pod]:
    index: ObjectIndex[Pod] = ObjectIndex("pods", Pod.from_api)
    index.replace(list(pods), version)
    return index


def _names(index: ObjectIndex[Pod]) -> list[str]:
    return sorted(p.name for p in index.items.values())


def test_replace_installs_a_list_and_its_version() -> None:
    index = _index(pod("a", version=3), pod("b", version=4))
    assert index.synced
    assert not index.needs_relist
    assert index.resource_version == "10"
    assert _names(index) == ["a", "b"]


def test_replace_skips_unreadable_items_and_says_why() -> None:
    index: ObjectIndex[Pod] = ObjectIndex("pods", Pod.from_api)
    no_uid = pod("x")
    del no_uid["metadata"]["uid"]
    bad = pod("y")
    bad["spec"]["containers"] = "nope"
    rejected = index.replace([pod("a"), no_uid, bad, 7], "10")
    assert _names(index) == ["a"]
    assert len(rejected) == 3
    assert "items[1]: metadata.uid is missing" in rejected[0]
    assert "items[2]" in rejected[1]
    assert "items[3]: not a JSON object" in rejected[2]


def test_a_list_without_a_resource_version_is_refused() -> None:
    index: ObjectIndex[Pod] = ObjectIndex("pods", Pod.from_api)
    with pytest.raises(KubepulseValueError, match="resourceVersion"):
        index.replace([pod("a")], "")
    assert not index.synced


@pytest.mark.parametrize(
    ("event", "outcome", "names", "version"),
    [
        (
            {"type": "ADDED", "object": pod("c", version=11)},
            WatchOutcome.CHANGED,
            ["a", "b", "c"],
            "11",
        ),
        (
            {"type": "MODIFIED", "object": pod("a", version=12)},
            WatchOutcome.CHANGED,
            ["a", "b"],
            "12",
        ),
        ({"type": "DELETED", "object": pod("b", version=13)}, WatchOutcome.CHANGED, ["a"], "13"),
        (
            {"type": "DELETED", "object": pod("zz", version=13)},
            WatchOutcome.VERSION,
            ["a", "b"],
            "13",
        ),
        (
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}},
            WatchOutcome.VERSION,
            ["a", "b"],
            "20",
        ),
        # no newer than what the index holds for that pod: a duplicate
        (
            {"type": "MODIFIED", "object": pod("a", version=3)},
            WatchOutcome.IGNORED,
            ["a", "b"],
            "10",
        ),
        ({"type": "SURPRISE", "object": pod("c")}, WatchOutcome.INVALID_EVENT, ["a", "b"], "10"),
        ({"type": "ADDED"}, WatchOutcome.INVALID_EVENT, ["a", "b"], "10"),
        (
            {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}},
            WatchOutcome.EXPIRED,
            ["a", "b"],
            "10",
        ),
        (
            {"type": "ERROR", "object": {"kind": "Status", "code": 500, "message": "boom"}},
            WatchOutcome.ERROR,
            ["a", "b"],
            "10",
        ),
    ],
)
def test_events(
    event: dict[str, Any], outcome: WatchOutcome, names: list[str], version: str
) -> None:
    index = _index(pod("a", version=5), pod("b", version=6))
    assert index.apply(event) is outcome
    assert _names(index) == names
    assert index.resource_version == version


def test_an_expired_version_keeps_the_objects_until_the_relist() -> None:
    index = _index(pod("a"))
    before = index.items
    assert index.apply_line(b'{"type":"ERROR","object":{"code":410,"message":"too old"}}') is (
        WatchOutcome.EXPIRED
    )
    assert index.needs_relist
    assert WatchOutcome.EXPIRED.ends_watch
    assert index.items == before
    index.replace([pod("b")], "50")
    assert _names(index) == ["b"]
    assert not index.needs_relist


def test_a_late_event_cannot_resurrect_a_deleted_object() -> None:
    index = _index(pod("a", version=5))
    assert index.apply({"type": "DELETED", "object": pod("a", version=8)}) is WatchOutcome.CHANGED
    assert index.apply({"type": "MODIFIED", "object": pod("a", version=7)}) is WatchOutcome.IGNORED
    assert _names(index) == []


def test_the_version_never_moves_back() -> None:
    index = _index(pod("a", version=5), version="30")
    index.apply({"type": "ADDED", "object": pod("b", version=20)})
    assert index.resource_version == "30"
    assert _names(index) == ["a", "b"]


def test_items_is_an_immutable_copy_renewed_on_change() -> None:
    index = _index(pod("a"))
    first = index.items
    generation = index.generation
    assert index.items is first
    index.apply({"type": "ADDED", "object": pod("b", version=11)})
    assert index.generation == generation + 1
    assert len(first) == 1
    assert len(index.items) == 2


def test_a_line_that_is_not_json_is_invalid() -> None:
    index = _index(pod("a"))
    assert index.apply_line(b"{nope") is WatchOutcome.INVALID_EVENT
    assert index.last_problem is not None
    assert "not JSON" in index.last_problem


def test_numeric_resource_version() -> None:
    assert numeric_resource_version("123") == 123
    assert numeric_resource_version("abc") is None
    assert numeric_resource_version(None) is None

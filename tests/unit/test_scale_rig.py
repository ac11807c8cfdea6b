"""The pure parts of the scale rig (tests/cluster/scale.py) and the exporter's gauge hook.

The rig's figures are checked against what it believes it serves: which pods a tier's
selector covers, the kwok Pod that matches each synthetic container, how a page line is
read back, and the synthetic exporter's ``set_gauge`` that the freshness measurement
relies on. A mistake in any of them would pass wrong answers or fail right ones, so they
are pinned here without any process.
"""

from __future__ import annotations

import time

import pytest

from bench.scale_rig import parse_args
from kubepulse.selector import parse_selector
from tests.cluster.scale import RigLayout, parse_series_key, pod_manifest, synthetic_pods
from tests.cluster.synthetic_exporter import SyntheticPage, synthetic_cluster

LAYOUT = RigLayout(nodes=7, pods=950, tiers=(10, 100, 400))


def test_layout_namespaces_hold_the_largest_tier_and_the_rest() -> None:
    assert LAYOUT.namespaces == ["rig-0", "rig-1", "rig-2"]
    assert [LAYOUT.pods_in(k) for k in range(3)] == [400, 400, 150]
    pods = synthetic_pods(LAYOUT)
    assert len(pods) == 950
    assert len({(pod.namespace, pod.name) for pod in pods}) == 950
    assert {pod.node for pod in pods} == set(LAYOUT.node_names)


@pytest.mark.parametrize(("tier", "size"), [(0, 10), (1, 100), (2, 400)])
def test_each_selector_covers_exactly_its_tier(tier: int, size: int) -> None:
    selector = parse_selector(LAYOUT.selector(tier))
    pods = [pod for pod in synthetic_pods(LAYOUT) if pod.namespace == LAYOUT.selector_namespace]
    chosen = [
        pod.name
        for index, pod in enumerate(pods)
        if selector.matches(pod_manifest(LAYOUT, pod, index)["metadata"]["labels"])
    ]
    assert chosen == [f"web-{i}" for i in range(size)]


def test_pod_manifest_carries_the_containers_requests_and_limits() -> None:
    pods = synthetic_pods(LAYOUT)
    limited = pod_manifest(LAYOUT, pods[0], 0)
    resources = limited["spec"]["containers"][0]["resources"]
    assert resources == {
        "requests": {"cpu": "250m", "memory": str(256 * 2**20)},
        "limits": {"cpu": "500m", "memory": str(512 * 2**20)},
    }
    assert limited["spec"]["nodeName"] == pods[0].node
    # Every 20th pod (slot 19) has no limits, as in synthetic_cluster.
    unlimited = pod_manifest(LAYOUT, pods[19], 19)
    assert "limits" not in unlimited["spec"]["containers"][0]["resources"]


def test_layout_refuses_tiers_it_cannot_fill() -> None:
    with pytest.raises(ValueError, match="largest selector tier"):
        RigLayout(nodes=2, pods=50, tiers=(10, 100))
    with pytest.raises(ValueError, match="ascending"):
        RigLayout(nodes=2, pods=500, tiers=(100, 10))


def test_series_text_is_read_back_with_escapes() -> None:
    name, labels = parse_series_key('m{a="1",b="x\\"y",c="p\\\\q"}')
    assert name == "m"
    assert labels == {"a": "1", "b": 'x"y', "c": "p\\q"}
    assert parse_series_key("up") == ("up", {})


def test_set_gauge_changes_one_pods_line_and_restores_it() -> None:
    pods, nodes = synthetic_cluster(40, 2)
    now = time.time()
    page = SyntheticPage(pods, nodes, now)
    pod = pods[2]
    metric = "kubepulse_container_memory_working_set_bytes"

    def line(text: str) -> str:
        (found,) = [
            one
            for one in text.splitlines()
            if one.startswith(metric + "{") and f'pod="{pod.name}"' in one
        ]
        return found

    before = page.render(now, pod.node)
    matched = page.set_gauge(metric, {"namespace": pod.namespace, "pod": pod.name}, 12345.0)
    assert matched == 1
    changed = page.render(now, pod.node)
    assert line(changed).endswith(" 12345.0")
    assert len(changed.splitlines()) == len(before.splitlines())
    # Only that line differs.
    assert [
        a for a, b in zip(before.splitlines(), changed.splitlines(), strict=True) if a != b
    ] == [line(before)]
    assert page.set_gauge(metric, {"pod": pod.name}, None) == 1
    assert page.render(now, pod.node) == before


def test_set_gauge_refuses_counters_and_unknown_names() -> None:
    pods, nodes = synthetic_cluster(4, 1)
    page = SyntheticPage(pods, nodes, time.time())
    with pytest.raises(ValueError, match="not a gauge"):
        page.set_gauge("kubepulse_container_cpu_usage_seconds_total", {}, 1.0)
    with pytest.raises(ValueError, match="not a gauge"):
        page.set_gauge("no_such_metric", {}, 1.0)
    assert page.set_gauge("kubepulse_container_memory_working_set_bytes", {"pod": "nope"}, 1) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--pods", "100", "--tiers", "100,1000"],
            "cannot fill the largest selector tier",
        ),
        (["--tiers", "a,b"], "--tiers wants pod counts separated by commas"),
    ],
)
def test_the_bench_refuses_a_rig_it_cannot_build_before_starting_anything(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err

"""The limit-breach and efficiency analyzer: recorded objects and series in, findings out.

Pods and nodes are the API server's JSON (``tests/fixtures/objects/``, or small
API-shaped dicts built here) parsed by :mod:`kubepulse.model`; series are written out
sample by sample. Every expected figure is worked out by hand in a comment next to it.
Nothing is mocked: the analyzer is pure.
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from kubepulse.analysis import ClusterSnapshot, ContainerRef, TimeSeries, UsageHistory, to_json
from kubepulse.analysis.limits import (
    Bound,
    EfficiencyFigure,
    LimitBreachReport,
    OomCause,
    OomSource,
    Severity,
    WorkloadRef,
    detect_limit_breaches,
    resolve_workload,
)
from kubepulse.errors import KubepulseValueError
from kubepulse.model import Node, Pod, parse_rfc3339_ms
from kubepulse.stats import SeriesKind, exact_evaluate, parse_aggregation

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "objects"
MI = 2**20
END = 1_800_000_000_000
"""The history's end; the default 5m window is [END - 300 s, END]."""
BEFORE_WINDOW = END - 400_000
IN_WINDOW = (END - 240_000, END - 120_000, END)


def close(value: float | None) -> float | None:
    """``value`` rounded to 9 decimals, to compare floats with hand-computed figures."""
    return None if value is None else round(value, 9)


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def fixture_pod(name: str) -> Pod:
    return Pod.from_api(fixture(name))


def container(
    name: str,
    requests: Mapping[str, str] | None = None,
    limits: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = dict(requests)
    if limits:
        resources["limits"] = dict(limits)
    return {"name": name, "image": "registry.example.com/app:1", "resources": resources}


def pod(
    name: str,
    containers: Sequence[dict[str, Any]],
    *,
    namespace: str = "shop",
    node: str | None = "worker-1",
    phase: str = "Running",
) -> Pod:
    return Pod.from_api(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
            "spec": {"nodeName": node, "containers": list(containers)},
            "status": {"phase": phase},
        }
    )


def series(points: Mapping[int, float]) -> TimeSeries:
    return TimeSeries.of(points.items())


def history(
    *,
    start_ms: int = END - 900_000,
    end_ms: int = END,
    cpu: Mapping[ContainerRef, TimeSeries] | None = None,
    memory: Mapping[ContainerRef, TimeSeries] | None = None,
    throttled: Mapping[ContainerRef, TimeSeries] | None = None,
    oom: Mapping[ContainerRef, tuple[int, ...]] | None = None,
    node_pressure: Mapping[str, Mapping[str, TimeSeries]] | None = None,
    available: Mapping[str, TimeSeries] | None = None,
) -> UsageHistory:
    return UsageHistory(
        start_ms=start_ms,
        end_ms=end_ms,
        cpu_cores=cpu or {},
        memory_working_set_bytes=memory or {},
        cpu_throttled_ratio=throttled or {},
        oom_kill_ms=oom or {},
        node_pressure=node_pressure or {},
        node_memory_available_bytes=available or {},
    )


def snapshot(*pods: Pod, nodes: Sequence[Node] = ()) -> ClusterSnapshot:
    return ClusterSnapshot(taken_at_ms=END, pods=pods, nodes=tuple(nodes))


# ---------------------------------------------------------------------------- breaches

APP = ContainerRef("shop", "api", "app")
API_POD = pod(
    "api",
    [
        container(
            "app",
            requests={"cpu": "250m", "memory": "128Mi"},
            limits={"cpu": "500m", "memory": "256Mi"},
        )
    ],
)
# Outside the window a spike that must not count: 300Mi and 0.9 cores.
MEMORY_MI = {BEFORE_WINDOW: 300, IN_WINDOW[0]: 200, IN_WINDOW[1]: 240, IN_WINDOW[2]: 250}
CPU_CORES = {BEFORE_WINDOW: 0.9, IN_WINDOW[0]: 0.1, IN_WINDOW[1]: 0.2, IN_WINDOW[2]: 0.3}

W, INFO, C = Severity.WARNING, Severity.INFO, Severity.CRITICAL
MEM, CPU = "memory", "cpu"
LIMIT, REQUEST = Bound.LIMIT, Bound.REQUEST


@pytest.mark.parametrize(
    ("statistic", "threshold", "last_memory_mi", "expected"),
    [
        pytest.param(
            "max",
            90,
            250,
            # max memory 250Mi: 250/128 = 195.3125 % of the request (over: warning) and
            # 250/256 = 97.65625 % of the limit (near: warning); max CPU 0.3 cores:
            # 0.3/0.25 = 120 % of the request (over: info), 0.3/0.5 = 60 % of the limit
            # (below 90: not reported). The 300Mi and 0.9 before the window do not count.
            [
                (MEM, REQUEST, 195.3125, W, True),
                (MEM, LIMIT, 97.65625, W, False),
                (CPU, REQUEST, 120.0, INFO, True),
            ],
            id="max",
        ),
        pytest.param(
            "avg",
            90,
            250,
            # mean memory (200 + 240 + 250) / 3 = 230Mi: 230/256 = 89.84375 % of the limit
            # (below 90), 230/128 = 179.6875 % of the request; mean CPU 0.2: 80 % of the
            # request, 40 % of the limit: neither reported.
            [(MEM, REQUEST, 179.6875, W, True)],
            id="avg",
        ),
        pytest.param(
            "p50",
            90,
            250,
            # lower-rank median of three samples is the 2nd: 240Mi -> 240/128 = 187.5 %,
            # 240/256 = 93.75 %; CPU 0.2 -> 80 % of the request, not reported.
            [(MEM, REQUEST, 187.5, W, True), (MEM, LIMIT, 93.75, W, False)],
            id="p50",
        ),
        pytest.param(
            "max",
            50,
            250,
            # as "max", and at threshold 50 the CPU limit's 0.3/0.5 = 60 % is reported too.
            [
                (MEM, REQUEST, 195.3125, W, True),
                (MEM, LIMIT, 97.65625, W, False),
                (CPU, LIMIT, 60.0, W, False),
                (CPU, REQUEST, 120.0, INFO, True),
            ],
            id="max-threshold-50",
        ),
        pytest.param(
            "last",
            90,
            272,
            # last memory 272Mi: 272/256 = 106.25 % of the limit (over: critical, first),
            # 272/128 = 212.5 % of the request; last CPU 0.3: 120 % of the request.
            [
                (MEM, LIMIT, 106.25, C, True),
                (MEM, REQUEST, 212.5, W, True),
                (CPU, REQUEST, 120.0, INFO, True),
            ],
            id="last-over-limit",
        ),
    ],
)
def test_breaches_reduce_the_window_by_the_statistic_and_sort_worst_first(
    statistic: str,
    threshold: float,
    last_memory_mi: int,
    expected: list[tuple[str, Bound, float, Severity, bool]],
) -> None:
    memory = {**MEMORY_MI, IN_WINDOW[2]: last_memory_mi}
    report = detect_limit_breaches(
        snapshot(API_POD),
        history(
            cpu={APP: series(CPU_CORES)},
            memory={APP: series({t: v * MI for t, v in memory.items()})},
        ),
        threshold_percent=threshold,
        statistic=statistic,
    )
    found = [
        (item.resource, item.bound, close(item.percent), item.severity, item.over)
        for item in report.breaches
    ]
    assert found == [
        (resource, bound, close(percent), severity, over)
        for resource, bound, percent, severity, over in expected
    ]
    assert all(item.container == "app" and item.samples == 3 for item in report.breaches)
    assert report.settings.statistic == statistic
    assert report.settings.window_start_ms == END - 300_000


@pytest.mark.parametrize("statistic", ["avg", "max", "last", "p50", "p95", "p99.9"])
def test_statistics_are_those_of_kubepulse_stats(statistic: str) -> None:
    rng = random.Random(3)
    timestamps = [END - 290_000 + 5_000 * index for index in range(59)]
    values = [rng.uniform(0.0, 2.0) for _ in timestamps]
    tiny = pod("tiny", [container("app", requests={"cpu": "1m"})])
    report = detect_limit_breaches(
        snapshot(tiny),
        history(
            cpu={
                ContainerRef("shop", "tiny", "app"): series(
                    dict(zip(timestamps, values, strict=True))
                )
            }
        ),
        statistic=statistic,
    )
    # A 1m request makes any usage a breach, so the statistic can be read off it.
    (breach,) = report.breaches
    assert breach.usage == exact_evaluate(
        parse_aggregation(statistic), SeriesKind.GAUGE, timestamps, values
    )


def test_pod_level_breach_sums_the_running_containers_and_their_limits() -> None:
    storefront = fixture_pod("pod-burstable-sidecars.json")
    ns, name = storefront.namespace, storefront.name
    # The running containers: sidecars log-shipper and mesh-proxy, app containers app and
    # metrics (the init container migrate has exited and is left out).
    memory_mi = {"log-shipper": (50, 100), "mesh-proxy": (50, 200), "app": (500, 1000)}
    memory_mi["metrics"] = (20, 40)
    memory = {
        ContainerRef(ns, name, key): series({IN_WINDOW[1]: early * MI, IN_WINDOW[2]: late * MI})
        for key, (early, late) in memory_mi.items()
    }
    report = detect_limit_breaches(snapshot(storefront), history(memory=memory))
    pod_level = [
        (item.bound, item.usage, item.bound_value, close(item.percent), item.severity)
        for item in report.breaches
        if item.container is None
    ]
    # Summed per instant: 620Mi then 1340Mi; max 1340Mi.
    # Limit: 128 + 256 + 1024 + 64 = 1472Mi -> 1340/1472 = 91.0326... % (near: warning).
    # Request: 64 + 128 + 512 + 32 = 736Mi -> 1340/736 = 182.0652... % (over: warning).
    assert pod_level == [
        (REQUEST, 1340 * MI, 736 * MI, close(1340 / 736 * 100), W),
        (LIMIT, 1340 * MI, 1472 * MI, close(1340 / 1472 * 100), W),
    ]
    # No CPU series at all: CPU is missing for every running container, and throttling
    # for the two with a CPU limit (log-shipper 200m, app 1); no CPU figure is invented.
    missing = {item.container: item.figures for item in report.missing_data}
    assert missing == {
        "log-shipper": ("cpu", "cpu_throttling"),
        "mesh-proxy": ("cpu",),
        "app": ("cpu", "cpu_throttling"),
        "metrics": ("cpu",),
    }
    assert not any(item.resource == "cpu" for item in report.breaches)


def test_a_pod_level_figure_needs_every_running_container_measured() -> None:
    storefront = fixture_pod("pod-burstable-sidecars.json")
    memory = {ContainerRef(storefront.namespace, storefront.name, "app"): series({END: 1000 * MI})}
    report = detect_limit_breaches(snapshot(storefront), history(memory=memory))
    # Only app is measured: 1000/1024 = 97.65625 % of its limit, 1000/512 = 195.3125 % of
    # its request. A pod sum of one container of four would understate the pod: none.
    assert [(item.container, item.bound, close(item.percent)) for item in report.breaches] == [
        ("app", REQUEST, close(195.3125)),
        ("app", LIMIT, close(97.65625)),
    ]


# ---------------------------------------------------------------------------- throttling


@pytest.mark.parametrize(
    ("statistic", "ratios", "expected"),
    [
        # max of 0.3, 0.2, 0.4 is 0.4 >= 0.25: critical; the mean is 0.9 / 3 = 0.3.
        ("max", (0.3, 0.2, 0.4), (0.4, 0.3, C)),
        # the mean 0.3 is still >= 0.25.
        ("avg", (0.3, 0.2, 0.4), (0.3, 0.3, C)),
        # 0.15 is >= 0.10 but < 0.25: warning; mean (0.1 + 0.12 + 0.15) / 3 = 0.1233...
        ("max", (0.1, 0.12, 0.15), (0.15, 0.37 / 3, W)),
        # 0.05 is below the 0.10 that makes throttling worth reporting.
        ("max", (0.01, 0.02, 0.05), None),
    ],
)
def test_throttling_ratio(
    statistic: str, ratios: tuple[float, ...], expected: tuple[float, float, Severity] | None
) -> None:
    report = detect_limit_breaches(
        snapshot(API_POD),
        history(
            throttled={APP: series(dict(zip(IN_WINDOW, ratios, strict=True)))},
            cpu={APP: series({END: 0.45})},
        ),
        statistic=statistic,
    )
    if expected is None:
        assert report.throttling == ()
        return
    (finding,) = report.throttling
    ratio, average, severity = expected
    assert (close(finding.throttled_ratio), close(finding.average_ratio), finding.severity) == (
        close(ratio),
        close(average),
        severity,
    )
    assert (finding.cpu_limit_cores, finding.cpu_usage_cores) == (0.5, 0.45)


def test_throttling_is_not_expected_of_a_container_without_a_cpu_limit() -> None:
    no_cpu_limit = pod("free", [container("app", requests={"cpu": "1"})])
    ref = ContainerRef("shop", "free", "app")
    report = detect_limit_breaches(
        snapshot(no_cpu_limit),
        history(cpu={ref: series({END: 0.5})}, memory={ref: series({END: 10 * MI})}),
    )
    assert report.missing_data == ()


# ---------------------------------------------------------------------------- OOM kills

CART = fixture_pod("pod-oomkilled.json")
CART_REF = ContainerRef("shop", CART.name, "cart")
KILL = parse_rfc3339_ms("2026-11-01T10:41:06Z")
"""lastState.terminated.finishedAt of the recorded pod's cart container."""


def worker_2(memory_pressure: str, transition: str) -> Node:
    return Node.from_api(
        {
            "kind": "Node",
            "metadata": {"name": "worker-2"},
            "status": {
                "conditions": [
                    {
                        "type": "MemoryPressure",
                        "status": memory_pressure,
                        "lastTransitionTime": transition,
                    }
                ]
            },
        }
    )


OOM_CASES = [
    pytest.param(
        {
            "history_kill": KILL - 6_000,
            "working_set_mi": 250,
            "node": worker_2("False", "2026-10-20T08:00:00Z"),
            "stall": None,
        },
        # The counter's instant (6 s earlier, within 120 s) and the kubelet's record are
        # one kill, timed by the kubelet. 250/256 = 97.65625 % >= 90: the limit. The
        # condition was False since October, before the kill: no node pressure.
        (OomSource.BOTH, OomCause.CONTAINER_LIMIT, 97.65625, False, False, None),
        id="working-set-at-limit",
    ),
    pytest.param(
        {
            "history_kill": None,
            "working_set_mi": 64,
            "node": worker_2("True", "2026-11-01T10:31:06Z"),
            "stall": 0.2,
        },
        # 64/256 = 25 % of the limit, and MemoryPressure had been True for 10 minutes
        # (plus a 0.2 full stall >= 0.05): the node ran out, not the container.
        (OomSource.CONTAINER_STATUS, OomCause.NODE_MEMORY_PRESSURE, 25.0, True, True, 0.2),
        id="node-pressure",
    ),
    pytest.param(
        {
            "history_kill": None,
            "working_set_mi": 64,
            "node": worker_2("True", "2026-11-01T10:41:16Z"),
            "stall": 0.01,
        },
        # The condition turned True 10 s after the kill: its state at the kill is unknown.
        # The only evidence, a 0.01 stall, is below 0.05: no pressure, and 25 % of the
        # limit does not explain the kill either.
        (OomSource.CONTAINER_STATUS, OomCause.UNDETERMINED, 25.0, None, False, 0.01),
        id="condition-changed-after-kill",
    ),
    pytest.param(
        {"history_kill": None, "working_set_mi": None, "node": None, "stall": None},
        # Nothing measured and no node: every figure is missing, none is guessed.
        (OomSource.CONTAINER_STATUS, OomCause.UNDETERMINED, None, None, None, None),
        id="no-data",
    ),
]


@pytest.mark.parametrize(("inputs", "expected"), OOM_CASES)
def test_oom_kills_are_correlated_with_the_limit_and_node_pressure(
    inputs: dict[str, Any],
    expected: tuple[OomSource, OomCause, float | None, bool | None, bool | None, float | None],
) -> None:
    history_kill = inputs["history_kill"]
    working_set = inputs["working_set_mi"]
    stall = inputs["stall"]
    # The working set just before the kill: the max over [KILL - 5m, KILL]; the 900Mi
    # sample 10 minutes earlier and the 10Mi one after the kill are outside it.
    memory = (
        {}
        if working_set is None
        else {
            CART_REF: series(
                {KILL - 600_000: 900 * MI, KILL - 30_000: working_set * MI, KILL + 30_000: 10 * MI}
            )
        }
    )
    report = detect_limit_breaches(
        snapshot(CART, nodes=() if inputs["node"] is None else (inputs["node"],)),
        history(
            start_ms=KILL - 900_000,
            end_ms=KILL + 60_000,
            memory=memory,
            oom={} if history_kill is None else {CART_REF: (history_kill,)},
            node_pressure=(
                {} if stall is None else {"worker-2": {"memory_full": series({KILL: stall})}}
            ),
        ),
    )
    (kill,) = report.oom_kills
    source, cause, percent, condition, under_pressure, full_stall = expected
    assert (kill.killed_at_ms, kill.in_window, kill.severity) == (KILL, True, C)
    assert (kill.source, kill.cause) == (source, cause)
    assert close(kill.working_set_percent_of_limit) == (None if percent is None else close(percent))
    assert kill.node_memory_pressure_condition is condition
    assert kill.node_under_memory_pressure is under_pressure
    assert kill.node_memory_full_stall == full_stall
    assert (kill.memory_limit_bytes, kill.restart_count, kill.node) == (256 * MI, 4, "worker-2")
    assert report.summary.oom_kills_in_window == 1


def test_history_kills_outside_the_window_are_dropped_and_deleted_pods_kept() -> None:
    gone = ContainerRef("shop", "deleted-pod", "app")
    old_record = KILL - 3_600_000
    report = detect_limit_breaches(
        snapshot(CART),
        history(
            start_ms=old_record - 600_000,
            end_ms=KILL + 60_000,
            oom={gone: (KILL - 20_000, KILL - 900_000), CART_REF: (KILL - 30_000,)},
        ),
        time_window="10m",
    )
    found = [(k.pod, k.container, k.killed_at_ms, k.source, k.severity) for k in report.oom_kills]
    # The deleted pod's kill 20 s before KILL is in the 10m window (the one 15 min before
    # is not); it has no pod, so no node or limit. The cart kill 30 s before the recorded
    # one matches it (within 120 s): one kill, from both sources. Newest first.
    assert found == [
        (CART.name, "cart", KILL, OomSource.BOTH, C),
        ("deleted-pod", "app", KILL - 20_000, OomSource.HISTORY, C),
    ]
    assert report.oom_kills[1].node is None
    assert report.oom_kills[1].memory_limit_bytes is None


def test_a_recorded_kill_older_than_the_window_is_kept_as_a_warning() -> None:
    report = detect_limit_breaches(
        snapshot(CART), history(start_ms=KILL, end_ms=KILL + 3_600_000), time_window="5m"
    )
    (kill,) = report.oom_kills
    assert (kill.in_window, kill.severity, kill.source) == (
        False,
        W,
        OomSource.CONTAINER_STATUS,
    )
    assert report.summary.oom_kills_in_window == 0


def test_a_failed_job_pod_killed_by_the_oom_killer_is_reported() -> None:
    failed = Pod.from_api(
        {
            "metadata": {"name": "backup-29345-x7k2p", "namespace": "ops"},
            "spec": {
                "nodeName": "worker-1",
                "restartPolicy": "Never",
                "containers": [container("backup", limits={"memory": "512Mi"})],
            },
            "status": {
                "phase": "Failed",
                "containerStatuses": [
                    {
                        "name": "backup",
                        "ready": False,
                        "restartCount": 0,
                        "state": {
                            "terminated": {
                                "exitCode": 137,
                                "reason": "OOMKilled",
                                "finishedAt": "2026-11-01T10:41:06Z",
                            }
                        },
                    }
                ],
            },
        }
    )
    ref = ContainerRef("ops", failed.name, "backup")
    report = detect_limit_breaches(
        snapshot(failed),
        history(
            start_ms=KILL - 600_000,
            end_ms=KILL + 60_000,
            memory={ref: series({KILL - 15_000: 510 * MI})},
        ),
    )
    # Restart policy Never: the pod ended Failed, so it holds no resources and has no
    # breach or missing data, but its kill counts: 510/512 = 99.609375 % of the limit.
    (kill,) = report.oom_kills
    assert (kill.pod, kill.cause, close(kill.working_set_percent_of_limit)) == (
        failed.name,
        OomCause.CONTAINER_LIMIT,
        close(99.609375),
    )
    assert (report.breaches, report.missing_data, report.summary.pods) == ((), (), 0)


# ---------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # No resources at all: both limits and both requests missing, BestEffort.
        (
            "pod-besteffort.json",
            (
                W,
                "BestEffort",
                {"cpu": ("debug-shell",), "memory": ("debug-shell",)},
                {"cpu": ("debug-shell",), "memory": ("debug-shell",)},
            ),
        ),
        # nginx limits memory only: a missing CPU limit alone is informational.
        ("pod-replicaset.json", (INFO, "Burstable", {"cpu": ("nginx",)}, {})),
        # mesh-proxy and metrics have no CPU limit; every container limits memory.
        (
            "pod-burstable-sidecars.json",
            (INFO, "Burstable", {"cpu": ("mesh-proxy", "metrics")}, {}),
        ),
        # etcd requests but limits nothing: no memory limit is a warning.
        (
            "pod-static-mirror.json",
            (W, "Burstable", {"cpu": ("etcd",), "memory": ("etcd",)}, {}),
        ),
        ("pod-guaranteed.json", None),
    ],
)
def test_pods_without_limits_or_requests(
    name: str,
    expected: tuple[Severity, str, dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]] | None,
) -> None:
    report = detect_limit_breaches(snapshot(fixture_pod(name)), history())
    if expected is None:
        assert report.missing_settings == ()
        return
    (finding,) = report.missing_settings
    # The analyzer's one-pass reading agrees with the model's per-resource answers.
    recorded = fixture_pod(name)
    for resource in ("cpu", "memory"):
        assert finding.containers_without_limits.get(
            resource, ()
        ) == recorded.containers_missing_limits((resource,))
        assert finding.containers_without_requests.get(
            resource, ()
        ) == recorded.containers_missing_requests((resource,))
    assert (
        finding.severity,
        finding.qos_class,
        dict(finding.containers_without_limits),
        dict(finding.containers_without_requests),
    ) == expected


# ---------------------------------------------------------------------------- efficiency


def _web_copy(name: str) -> Pod:
    raw = copy.deepcopy(fixture("pod-replicaset.json"))
    raw["metadata"]["name"] = name
    return Pod.from_api(raw)


def _figure(figures: Sequence[EfficiencyFigure], key: str, resource: str) -> EfficiencyFigure:
    return next(item for item in figures if item.key == key and item.resource == resource)


def test_efficiency_per_container_pod_workload_and_namespace() -> None:
    web_1 = fixture_pod("pod-replicaset.json")  # nginx requests 100m CPU, 128Mi memory
    web_2 = _web_copy("web-6d4cf56db6-abcde")
    shell = fixture_pod("pod-besteffort.json")  # no requests at all
    ref_1 = ContainerRef("default", web_1.name, "nginx")
    ref_2 = ContainerRef("default", web_2.name, "nginx")
    ref_shell = ContainerRef("default", shell.name, "debug-shell")
    window = IN_WINDOW[1:]
    report = detect_limit_breaches(
        snapshot(web_1, web_2, shell),
        history(
            cpu={
                ref_1: series(dict(zip(window, (0.05, 0.15), strict=True))),
                ref_2: series(dict(zip(window, (0.02, 0.04), strict=True))),
                ref_shell: series(dict(zip(window, (0.05, 0.05), strict=True))),
            },
            # web-2 and the shell have no memory series: unmeasured, not idle.
            memory={ref_1: series(dict(zip(window, (64 * MI, 64 * MI), strict=True)))},
        ),
    )
    # Containers: web-1 CPU mean (0.05 + 0.15) / 2 = 0.1 of 0.1 requested = 100 %;
    # web-2 CPU mean 0.03 of 0.1 = 30 %; web-1 memory 64Mi of 128Mi = 50 %.
    containers = [
        (item.key, item.resource, close(item.efficiency_percent))
        for item in report.container_efficiency[:3]
    ]
    assert containers == [
        (str(ref_2), "cpu", close(30.0)),
        (str(ref_1), "memory", close(50.0)),
        (str(ref_1), "cpu", close(100.0)),
    ]
    # The workload: both web pods belong to Deployment web (ReplicaSet web-6d4cf56db6
    # with pod-template-hash 6d4cf56db6). CPU used 0.1 + 0.03 = 0.13 of 0.2 = 65 %, peak
    # 0.15 + 0.04 = 0.19, idle 0.07. Memory: only web-1 is measured, 64Mi of 128Mi = 50 %,
    # and web-2 is counted as unmeasured rather than as idle.
    web_cpu = _figure(report.workload_efficiency, "default/Deployment/web", "cpu")
    assert (
        close(web_cpu.used),
        close(web_cpu.peak),
        close(web_cpu.requested),
        close(web_cpu.idle),
    ) == (
        close(0.13),
        close(0.19),
        close(0.2),
        close(0.07),
    )
    assert (close(web_cpu.efficiency_percent), web_cpu.containers) == (close(65.0), 2)
    web_memory = _figure(report.workload_efficiency, "default/Deployment/web", "memory")
    assert (web_memory.efficiency_percent, web_memory.unmeasured_containers) == (50.0, 1)
    # The namespace adds the shell: its 0.05 cores request nothing, so they are shown
    # as unrequested usage and kept out of the ratio (still 65 %).
    namespace_cpu = _figure(report.namespace_efficiency, "default", "cpu")
    assert (
        close(namespace_cpu.efficiency_percent),
        close(namespace_cpu.unrequested_used),
        namespace_cpu.unrequested_containers,
    ) == (close(65.0), close(0.05), 1)
    namespace_memory = _figure(report.namespace_efficiency, "default", "memory")
    assert (namespace_memory.used, namespace_memory.unmeasured_containers) == (64 * MI, 2)
    # Pod level: web-2 alone, 0.03 of 0.1.
    web_2_cpu = _figure(report.pod_efficiency, f"default/{web_2.name}", "cpu")
    assert close(web_2_cpu.efficiency_percent) == close(30.0)
    assert [(item.pod, item.figures) for item in report.missing_data] == [
        (shell.name, ("memory",)),
        (web_2.name, ("memory",)),
    ]


def test_pending_pods_are_not_missing_data() -> None:
    pending = pod("waiting", [container("app", requests={"cpu": "1"})], node=None, phase="Pending")
    report = detect_limit_breaches(snapshot(pending), history())
    assert report.missing_data == ()
    assert report.container_efficiency == ()


# ---------------------------------------------------------------------------- workloads


def _owned(kind: str, name: str, labels: Mapping[str, str] | None = None) -> Pod:
    return Pod.from_api(
        {
            "metadata": {
                "name": "p",
                "namespace": "ns",
                "labels": dict(labels or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": kind,
                        "name": name,
                        "uid": "u",
                        "controller": True,
                    }
                ],
            },
            "spec": {"containers": [{"name": "c"}]},
        }
    )


@pytest.mark.parametrize(
    ("pod_under_test", "expected"),
    [
        (
            _owned("ReplicaSet", "web-6d4cf56db6", {"pod-template-hash": "6d4cf56db6"}),
            WorkloadRef("ns", "Deployment", "web", inferred=True),
        ),
        # The label names another hash: the ReplicaSet is not taken for a Deployment's.
        (
            _owned("ReplicaSet", "web-6d4cf56db6", {"pod-template-hash": "7f8"}),
            WorkloadRef("ns", "ReplicaSet", "web-6d4cf56db6"),
        ),
        # No label: a suffix in the hash alphabet (no vowels, no 0/1/3) is accepted ...
        (
            _owned("ReplicaSet", "my-app-5d8f7c9b6"),
            WorkloadRef("ns", "Deployment", "my-app", inferred=True),
        ),
        # ... a word is not.
        (_owned("ReplicaSet", "my-standalone"), WorkloadRef("ns", "ReplicaSet", "my-standalone")),
        (_owned("StatefulSet", "ledger"), WorkloadRef("ns", "StatefulSet", "ledger")),
        (fixture_pod("pod-static-mirror.json"), WorkloadRef("kube-system", "Node", "cp-1")),
        (pod("bare", [container("c")]), WorkloadRef("shop", "Pod", "bare")),
    ],
)
def test_resolve_workload(pod_under_test: Pod, expected: WorkloadRef) -> None:
    assert resolve_workload(pod_under_test) == expected


# ---------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"threshold_percent": 150}, "threshold_percent must be between 1 and 100, got 150"),
        ({"threshold_percent": 0}, "between 1 and 100, got 0"),
        ({"threshold_percent": float("nan")}, "between 1 and 100, got nan"),
        ({"threshold_percent": True}, "between 1 and 100, got True"),
        ({"time_window": "5x"}, "invalid duration '5x'"),
        ({"time_window": "0"}, "time_window must be longer than zero"),
        ({"time_window": "1h"}, "longer than the history, which covers 15m"),
        ({"statistic": "min"}, "does not describe a level of usage; use avg, max"),
        ({"statistic": "median"}, "unknown statistic 'median'; use avg, max, last"),
        ({"namespace": "shp"}, "namespace 'shp' not found (did you mean 'shop'?)"),
        ({"namespace": ""}, "namespace must be a non-empty string"),
    ],
)
def test_bad_parameters_say_what_would_be_valid(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(KubepulseValueError, match=re.escape(message)):
        detect_limit_breaches(snapshot(API_POD), history(), **arguments)


def test_namespace_narrows_everything() -> None:
    other = pod("api", [container("app", limits={"memory": "100Mi"})], namespace="ops")
    ops_ref = ContainerRef("ops", "api", "app")
    usage = history(
        memory={APP: series({END: 255 * MI}), ops_ref: series({END: 99 * MI})},
        oom={ops_ref: (END - 1000,)},
    )
    everything = detect_limit_breaches(snapshot(API_POD, other), usage)
    only_ops = detect_limit_breaches(snapshot(API_POD, other), usage, namespace="ops")
    assert {item.namespace for item in everything.breaches} == {"shop", "ops"}
    # ops/api: 99/100 = 99 % of its memory limit (near: warning) and of its request,
    # which the API server defaulted from the limit (near a request: info); its OOM kill.
    assert [(item.namespace, item.bound, close(item.percent)) for item in only_ops.breaches] == [
        ("ops", LIMIT, close(99.0)),
        ("ops", REQUEST, close(99.0)),
    ]
    assert [kill.namespace for kill in only_ops.oom_kills] == ["ops"]
    assert {item.namespace for item in only_ops.namespace_efficiency} <= {"ops"}
    assert (only_ops.summary.pods, only_ops.settings.namespace) == (1, "ops")


# ---------------------------------------------------------------------------- JSON


def test_the_report_serialises_to_json_with_enum_values() -> None:
    report = detect_limit_breaches(
        snapshot(API_POD, CART),
        history(
            start_ms=KILL - 600_000,
            end_ms=KILL + 60_000,
            memory={APP: series({KILL: 250 * MI})},
        ),
    )
    assert isinstance(report, LimitBreachReport)
    data = to_json(report, camel_case=True)
    json.dumps(data)  # plain JSON all the way down
    assert data["settings"]["thresholdPercent"] == 90.0
    assert data["breaches"][0]["severity"] == "warning"
    assert data["breaches"][0]["bound"] in ("limit", "request")
    assert data["oomKills"][0]["source"] == "container_status"
    assert data["summary"]["breachesBySeverity"] == {"critical": 0, "warning": 2, "info": 0}

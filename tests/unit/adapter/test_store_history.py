"""The history built from the adapter's store, on a small recorded store, by hand.

The store is filled as the scraper fills it (exporter labels plus ``instance``; a
kube-state-metrics pod target whose quota namespace became ``exported_namespace``),
one sample every 15 s for two minutes, and read on a 30 s grid, so that every grid
point's window ``[t - 30 s, t]`` holds the samples ``i``, ``i + 1`` and ``i + 2``. Each
expected figure is worked out in the comment next to it.
"""

from __future__ import annotations

import math
import threading

import pytest

from adapter.analysis.store_history import StoreHistory, store_history
from kubepulse.analysis.inputs import ContainerRef, QuotaRef, TimeSeries
from kubepulse.collect.history import HistorySource
from kubepulse.errors import KubepulseValueError
from kubepulse.stats import SeriesKind
from kubepulse.store import TimeSeriesStore

S = 1000
T0 = 1_700_000_040_000
SAMPLES = 9  # i = 0 .. 8, at T0 + 15 s * i
END = T0 + 120 * S
GB = 1e9

WEB = ContainerRef("shop", "web-0", "app")
JOB = ContainerRef("batch", "job-0", "main")


def container(ref: ContainerRef, node: str, uid: str) -> dict[str, str]:
    return {
        "namespace": ref.namespace,
        "pod": ref.pod,
        "container": ref.container,
        "node": node,
        "pod_uid": uid,
        "instance": f"10.0.0.{node[-1]}:9100",
    }


def record(
    store: TimeSeriesStore,
    name: str,
    labels: dict[str, str],
    values: list[float | None],
    kind: SeriesKind,
) -> None:
    for index, value in enumerate(values):
        if value is not None:
            store.append(name, labels, T0 + 15 * S * index, value, kind)


def counter(per_sample: float, first: int = 0) -> list[float | None]:
    """A counter that grows by ``per_sample`` every 15 s from sample ``first`` on."""
    return [None if i < first else per_sample * (i - first) for i in range(SAMPLES)]


@pytest.fixture
def store() -> TimeSeriesStore:
    recorded = TimeSeriesStore(resolution_ms=15 * S)
    c, g = SeriesKind.COUNTER, SeriesKind.GAUGE
    web_n1 = container(WEB, "n1", "u1")
    # 0.5 cores: 7.5 s of CPU every 15 s.
    record(recorded, "kubepulse_container_cpu_usage_seconds_total", web_n1, counter(7.5), c)
    # The same container's second cgroup (a replaced pod on n2) from sample 4: 0.25 cores.
    web_n2 = container(WEB, "n2", "u2")
    record(recorded, "kubepulse_container_cpu_usage_seconds_total", web_n2, counter(3.75, 4), c)
    memory = [100.0, 300.0, 200.0, 200.0, 500.0, 100.0, 100.0, math.nan, 400.0]
    record(recorded, "kubepulse_container_memory_working_set_bytes", web_n1, list(memory), g)
    # 25 of every 100 periods throttled.
    record(recorded, "kubepulse_container_cpu_cfs_throttled_periods_total", web_n1, counter(25), c)
    record(recorded, "kubepulse_container_cpu_cfs_periods_total", web_n1, counter(100), c)
    oom = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]  # one kill between 60 s and 75 s
    record(recorded, "kubepulse_container_oom_kills_total", web_n1, list(oom), c)
    job = container(JOB, "n1", "u3")
    record(recorded, "kubepulse_container_cpu_usage_seconds_total", job, counter(15), c)
    node_n1 = {"node": "n1", "instance": "10.0.0.1:9100"}
    # 3 s of 15 stalled: 0.2. Memory "full" grows 16 s per 15 s: 1.07, clamped to 1.
    record(recorded, "kubepulse_node_pressure_cpu_waiting_seconds_total", node_n1, counter(3), c)
    record(
        recorded, "kubepulse_node_pressure_memory_stalled_seconds_total", node_n1, counter(16), c
    )
    available = [9 * GB, 8 * GB, 7 * GB, 8 * GB, 9 * GB, 9 * GB, 9 * GB, 9 * GB, 9 * GB]
    record(recorded, "kubepulse_node_memory_available_bytes", node_n1, list(available), g)
    node_n2 = {"node": "n2", "instance": "10.0.0.2:9100"}
    record(recorded, "kubepulse_node_pressure_cpu_waiting_seconds_total", node_n2, counter(1.5), c)
    ksm = {"namespace": "monitoring", "pod": "ksm-0", "node": "n1"}
    quota = {**ksm, "exported_namespace": "shop", "resourcequota": "q", "resource": "pods"}
    used = [3.0, 3.0, 3.0, 3.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    record(recorded, "kube_resourcequota", {**quota, "type": "used"}, list(used), g)
    record(recorded, "kube_resourcequota", {**quota, "type": "hard"}, [10.0] * SAMPLES, g)
    other = {**quota, "exported_namespace": "batch", "type": "used"}
    record(recorded, "kube_resourcequota", other, [1.0] * SAMPLES, g)
    return recorded


def at(*points: tuple[int, float]) -> list[tuple[int, float]]:
    """Points given as (seconds after T0, value)."""
    return [(T0 + seconds * S, value) for seconds, value in points]


def test_every_figure_from_a_recorded_store(store: TimeSeriesStore) -> None:
    history = store_history(store, T0, END, 30 * S, lock=threading.Lock())

    # At T0 the window [T0 - 30 s, T0] holds one sample: no rate. From 90 s on, the n2
    # cgroup has three samples in the window too: 0.5 + 0.25.
    assert list(history.cpu_cores[WEB]) == at((30, 0.5), (60, 0.5), (90, 0.75), (120, 0.75))
    assert list(history.cpu_cores[JOB]) == at((30, 1.0), (60, 1.0), (90, 1.0), (120, 1.0))
    # The largest sample of each window; the NaN at 105 s is skipped.
    assert list(history.memory_working_set_bytes[WEB]) == at(
        (0, 100.0), (30, 300.0), (60, 500.0), (90, 500.0), (120, 400.0)
    )
    assert list(history.cpu_throttled_ratio[WEB]) == at(
        (30, 0.25), (60, 0.25), (90, 0.25), (120, 0.25)
    )
    # Read at the grid: 0 at 60 s, 1 at 90 s, so one kill stamped 90 s.
    assert history.oom_kill_ms == {WEB: (T0 + 90 * S,)}
    assert list(history.node_pressure["n1"]["cpu_some"]) == at(
        (30, 0.2), (60, 0.2), (90, 0.2), (120, 0.2)
    )
    assert list(history.node_pressure["n1"]["memory_full"]) == at(
        (30, 1.0), (60, 1.0), (90, 1.0), (120, 1.0)
    )
    assert list(history.node_pressure["n2"]["cpu_some"]) == at(
        (30, 0.1), (60, 0.1), (90, 0.1), (120, 0.1)
    )
    # Not recorded: absent, not zero.
    assert set(history.node_pressure["n1"]) == {"cpu_some", "memory_full"}
    assert history.node_ephemeral_storage_available_bytes == {}
    # The smallest sample of each window.
    assert list(history.node_memory_available_bytes["n1"]) == at(
        (0, 9 * GB), (30, 7 * GB), (60, 7 * GB), (90, 9 * GB), (120, 9 * GB)
    )
    # type="hard" is not usage; the quota's namespace is exported_namespace.
    assert set(history.quota_used) == {
        QuotaRef("shop", "q", "pods"),
        QuotaRef("batch", "q", "pods"),
    }
    assert list(history.quota_used[QuotaRef("shop", "q", "pods")]) == at(
        (0, 3.0), (30, 3.0), (60, 4.0), (90, 4.0), (120, 4.0)
    )


def test_namespaces_and_nodes_narrow_the_history(store: TimeSeriesStore) -> None:
    history = store_history(store, T0, END, 30 * S, namespaces=["shop"], nodes=["n1"])
    # n2's cgroup of web-0 is left out, and batch's container and quota.
    assert list(history.cpu_cores[WEB]) == at((30, 0.5), (60, 0.5), (90, 0.5), (120, 0.5))
    assert set(history.cpu_cores) == {WEB}
    assert set(history.quota_used) == {QuotaRef("shop", "q", "pods")}
    assert set(history.node_pressure) == {"n1"}
    # Nodes still apply to node figures when no namespace is asked for, and an empty
    # list of namespaces asks for nothing of theirs.
    nothing = store_history(store, T0, END, 30 * S, namespaces=[])
    assert nothing.cpu_cores == {}
    assert nothing.quota_used == {}
    assert set(nothing.node_pressure) == {"n1", "n2"}


def test_the_history_source_chooses_a_step_of_one_scrape_for_a_short_window(
    store: TimeSeriesStore,
) -> None:
    source: HistorySource = StoreHistory(store, threading.Lock())
    history = source.fetch(T0, END, ("shop",))
    # Two minutes at 15 s: a point every scrape. The window is two scrapes (30 s).
    assert history == store_history(store, T0, END, 15 * S, namespaces=["shop"])
    assert history.cpu_cores[WEB].timestamps_ms == tuple(T0 + 15 * S * i for i in range(1, 9))


def test_a_history_outside_the_recorded_range_is_empty_and_bad_ranges_are_refused(
    store: TimeSeriesStore,
) -> None:
    later = store_history(store, END + 3600 * S, END + 7200 * S, 60 * S)
    assert later.cpu_cores == {}
    assert later.oom_kill_ms == {}
    assert later.cpu_cores.get(WEB, TimeSeries()) == TimeSeries()
    with pytest.raises(KubepulseValueError, match="before it starts"):
        StoreHistory(store).fetch(END, T0)
    with pytest.raises(KubepulseValueError, match="choose a step"):
        store_history(store, T0, END, 1)

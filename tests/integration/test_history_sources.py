"""Prometheus and the adapter's store give the same usage history of the same exporter.

:mod:`tests.cluster.synthetic_exporter` serves exporter-shaped pages for two nodes on
loopback: ``n1`` runs ``shop/web-0`` (an app steady at 40 % of its CPU request and 60 %
of its memory request, plus a sidecar without limits) and ``shop/web-1`` (95 % of its
CPU limit, 105 % of its memory limit); ``n2`` runs ``shop/batch-0`` (throttled in 30 % of
its CFS periods) and ``shop/leaky-0`` (its working set climbs from half its memory
limit to the limit in 10 s, is OOM-killed there, and climbs again); ``other/noise-0``
is there to be filtered out. Debian's ``/usr/bin/prometheus`` scrapes each node's page
every second, and so does the adapter's real :class:`~adapter.scrape.Scraper` into a
:class:`~kubepulse.store.TimeSeriesStore`. After about 50 s,
:class:`~kubepulse.collect.prometheus_history.PrometheusHistory` and
:class:`~adapter.analysis.store_history.StoreHistory` build the history of namespace
``shop`` over the same 30 s on a 5 s grid, and both are compared with each other and
with the usage the exporter was told to show.

**Tolerances, and why.** Counters grow exactly linearly with time, and each scraper
stamps a sample with its scrape's start while the page is rendered a little later; the
adapter's scraper also snaps its stamp to its slot when within 50 ms. Over a 5 s window
those offsets move a rate by at most ``2 x 50 ms / 5 s`` = 2 %, and Prometheus'
extrapolation of ``rate()`` to the window's edges is exact for a linear counter; so:

- CPU cores and pressure-stall shares: within 4 % of the truth and of each other (plus
  0.001 absolute for the smallest shares);
- throttled ratio: numerator and denominator share their samples, so within 0.005;
- working set (max over each window) and node available memory (min): exact for constant
  gauges; for the climbing container the two scrapers sample up to 1 s apart (more when
  a scrape is late on a loaded machine), so within 2 s of its climb (2 x 25.6 MiB);
- OOM kills: the exporter's epoch is placed so that every kill falls 2.5 s away from
  the nearest grid point, further than the 1 s between scrapes, so both see each kill at
  the same grid point, and the instants are equal;
- quota usage: there is no kube-state-metrics, so both leave it absent.

``promtool check metrics`` checks the page itself, and its families, types and label
sets are compared with :mod:`kubepulse.catalog`.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapter.analysis.store_history import StoreHistory
from adapter.scrape import Scraper, ScrapeSettings, StaticTargets
from kubepulse.analysis.inputs import ContainerRef, TimeSeries, UsageHistory
from kubepulse.catalog import get as catalog_spec
from kubepulse.collect.history import HistorySource
from kubepulse.collect.prometheus_history import PrometheusHistory, PrometheusHistoryError
from kubepulse.store import TimeSeriesStore
from tests.cluster.controlplane import find_tool
from tests.cluster.synthetic_exporter import (
    MemoryClimb,
    NearLimit,
    NodePressure,
    Steady,
    SyntheticContainer,
    SyntheticExporter,
    SyntheticNode,
    SyntheticPage,
    SyntheticPod,
    Throttled,
    container_usage,
    synthetic_cluster,
)
from tests.integration.prometheus_harness import (
    INSTALL_HINT,
    exporter_pages_config,
    find_prometheus,
    free_port,
    prometheus_with_config,
)

pytestmark = pytest.mark.integration

S = 1000
MI = 2**20
GI = 2**30
STEP_MS = 5 * S
CLIMB_S = 10.0
RUN_S = 50.0
HISTORY_MS = 30 * S
RATE_TOLERANCE = (0.04, 0.001)  # relative, absolute; see the module docstring
CLIMB_SLOPE = 256 * MI / CLIMB_S  # from 50 % of a 512 MiB limit to the limit in 10 s
GAUGE_TOLERANCE = 2.0 * CLIMB_SLOPE

APP = SyntheticContainer("app", 0.5, 256 * MI, 1.0, 512 * MI, Steady(40.0, 60.0))
SIDECAR = SyntheticContainer("proxy", 0.1, 64 * MI, None, None, Steady(30.0, 50.0))
HOT = SyntheticContainer("app", 0.5, 256 * MI, 1.0, 512 * MI, NearLimit(95.0, 105.0))
BATCH = SyntheticContainer("worker", 1.0, 256 * MI, 2.0, 512 * MI, Throttled(100.0, 0.3))
LEAKY = SyntheticContainer("app", 0.2, 256 * MI, 0.5, 512 * MI, MemoryClimb(50.0, CLIMB_S, 50.0))
PODS = (
    SyntheticPod("shop", "web-0", "n1", (APP, SIDECAR)),
    SyntheticPod("shop", "web-1", "n1", (HOT,)),
    SyntheticPod("shop", "batch-0", "n2", (BATCH,)),
    SyntheticPod("shop", "leaky-0", "n2", (LEAKY,)),
    SyntheticPod("other", "noise-0", "n2", (APP,)),
)
NODES = (
    SyntheticNode("n1", pressure=NodePressure(0.10, 0.05, 0.02, 0.2, 0.1)),
    SyntheticNode("n2", pressure=NodePressure(0.30, 0.15, 0.06, 0.04, 0.01)),
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(tool: Path | None, hint: str) -> Path:
    if tool is None:
        if in_ci():
            pytest.fail(f"CI=true and {hint}")
        pytest.skip(hint)
    return tool


# ------------------------------------------------------------------ the page itself


def test_the_page_passes_promtool_and_matches_the_catalog() -> None:
    promtool = require(
        find_tool("promtool"),
        "promtool not found in PATH; install it with apt-get install prometheus",
    )
    pods, nodes = synthetic_cluster(40, 3)
    page = SyntheticPage([*pods, *PODS], [*nodes, *NODES], epoch_s=1_700_000_000.0)
    text = page.render(1_700_000_000.0 + 3 * CLIMB_S + 1)
    checked = subprocess.run(
        [str(promtool), "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout + checked.stderr == b""

    families = list(text_string_to_metric_families(text))
    assert families
    for family in families:
        spec = catalog_spec(family.name if family.type != "counter" else family.name + "_total")
        assert family.type == spec.type.value
        for sample in family.samples:
            assert tuple(sample.labels) == spec.labels, sample
    # The one node's page holds that node's series only.
    assert 'node="n1"' not in page.render(1_700_000_100.0, "n2")


def test_the_page_shows_the_usage_it_was_given() -> None:
    epoch = 1_700_000_000.0
    now = epoch + 2.5 * CLIMB_S  # two kills done, half-way up the third climb
    page = SyntheticPage(PODS, NODES, epoch_s=epoch)
    values = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page.render(now))
        for sample in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return values[(name, tuple(sorted(labels.items())))]

    leaky = {"namespace": "shop", "pod": "leaky-0", "container": "app", "node": "n2"}
    uid = PODS[3].uid
    # 25 s at 0.1 cores (50 % of 0.2); 2 kills; 256 MiB + half of the 256 MiB climb.
    assert value("kubepulse_container_cpu_usage_seconds_total", **leaky, pod_uid=uid) == (
        pytest.approx(2.5)
    )
    assert value("kubepulse_container_oom_kills_total", **leaky, pod_uid=uid) == 2
    assert value("kubepulse_container_restarts_total", **leaky) == 2
    assert value("kubepulse_container_last_terminated_reason", **leaky, reason="OOMKilled") == 1
    assert value("kubepulse_container_last_terminated_timestamp_seconds", **leaky) == epoch + 20
    assert value("kubepulse_container_memory_working_set_bytes", **leaky, pod_uid=uid) == (
        pytest.approx(384 * MI)
    )
    batch = {"namespace": "shop", "pod": "batch-0", "container": "worker", "node": "n2"}
    # 25 s at 10 periods/s, 30 % of them throttled; CPU at its 2-core limit.
    periods = value("kubepulse_container_cpu_cfs_periods_total", **batch, pod_uid=PODS[2].uid)
    throttled = value(
        "kubepulse_container_cpu_cfs_throttled_periods_total", **batch, pod_uid=PODS[2].uid
    )
    assert periods == pytest.approx(250.0)
    assert throttled == pytest.approx(75.0)
    # n1: 32 GiB - 2 GiB reserved - (153.6 + 32 + 537.6 MiB) of steady working sets.
    assert value("kubepulse_node_memory_available_bytes", node="n1") == pytest.approx(
        30 * GI - (0.6 * 256 + 0.5 * 64 + 1.05 * 512) * MI
    )
    assert value("kubepulse_node_pressure_io_stalled_seconds_total", node="n1") == pytest.approx(
        2.5
    )
    usage = container_usage(LEAKY, epoch, now)
    assert (usage.oom_kills, usage.last_oom_kill_s) == (2, epoch + 20)
    # The pattern checks its spec: a steady share of a request that is not set.
    with pytest.raises(ValueError, match="share of cpu_request"):
        SyntheticContainer("x", cpu_request=None, pattern=Steady())


# ------------------------------------------------------------------ both sources


@contextlib.contextmanager
def prometheus_scraping(binary: Path, workdir: Path, exporter_url: str) -> Iterator[str]:
    """Debian's Prometheus scraping each synthetic node's page every second."""
    config = exporter_pages_config(exporter_url, [node.name for node in NODES], 1)
    with prometheus_with_config(binary, workdir, config) as prometheus:
        yield prometheus.url


def assert_close(
    name: str,
    left: TimeSeries,
    right: TimeSeries,
    relative: float,
    absolute: float,
    truth: float | None = None,
) -> None:
    """Two series with the same timestamps and values within tolerance (and of ``truth``)."""
    assert left.timestamps_ms == right.timestamps_ms, name
    for (stamp, one), (_, other) in zip(left, right, strict=True):
        assert other == pytest.approx(one, rel=relative, abs=absolute), (name, stamp)
        if truth is not None:
            assert one == pytest.approx(truth, rel=relative, abs=absolute), (name, stamp)
            assert other == pytest.approx(truth, rel=relative, abs=absolute), (name, stamp)


def compare(from_prometheus: UsageHistory, from_store: UsageHistory, epoch: float) -> None:
    relative, absolute = RATE_TOLERANCE
    grid_points = HISTORY_MS // STEP_MS + 1
    shop = {
        ContainerRef("shop", pod.name, container.name): container
        for pod in PODS
        if pod.namespace == "shop"
        for container in pod.containers
    }
    assert set(from_prometheus.cpu_cores) == set(from_store.cpu_cores) == set(shop)
    for ref, container in shop.items():
        cores = container_usage(container, epoch, epoch).cpu_cores
        assert len(from_store.cpu_cores[ref]) == grid_points, ref
        assert_close(
            f"cpu {ref}",
            from_prometheus.cpu_cores[ref],
            from_store.cpu_cores[ref],
            relative,
            absolute,
            cores,
        )
        steady = not isinstance(container.pattern, MemoryClimb)
        assert_close(
            f"memory {ref}",
            from_prometheus.memory_working_set_bytes[ref],
            from_store.memory_working_set_bytes[ref],
            0.0,
            0.5 if steady else GAUGE_TOLERANCE,
            container_usage(container, epoch, epoch).working_set_bytes if steady else None,
        )
    limited = {ref for ref, container in shop.items() if container.cpu_limit is not None}
    assert set(from_prometheus.cpu_throttled_ratio) == set(from_store.cpu_throttled_ratio)
    assert set(from_store.cpu_throttled_ratio) == limited
    for ref in limited:
        truth = 0.3 if ref.pod == "batch-0" else 0.0
        assert_close(
            f"throttled {ref}",
            from_prometheus.cpu_throttled_ratio[ref],
            from_store.cpu_throttled_ratio[ref],
            0.0,
            0.005,
            truth,
        )
    leaky = ContainerRef("shop", "leaky-0", "app")
    assert set(from_prometheus.oom_kill_ms) == set(from_store.oom_kill_ms) == {leaky}
    assert from_prometheus.oom_kill_ms[leaky] == from_store.oom_kill_ms[leaky]
    for node in NODES:
        pressure = node.pressure
        shares = {
            "cpu_some": pressure.cpu_some,
            "memory_some": pressure.memory_some,
            "memory_full": pressure.memory_full,
            "io_some": pressure.io_some,
            "io_full": pressure.io_full,
        }
        assert set(from_prometheus.node_pressure[node.name]) == set(shares)
        for name, share in shares.items():
            assert_close(
                f"{name} {node.name}",
                from_prometheus.node_pressure[node.name][name],
                from_store.node_pressure[node.name][name],
                relative,
                absolute,
                share,
            )
        assert_close(
            f"available {node.name}",
            from_prometheus.node_memory_available_bytes[node.name],
            from_store.node_memory_available_bytes[node.name],
            0.0,
            GAUGE_TOLERANCE,
        )
        assert_close(
            f"storage {node.name}",
            from_prometheus.node_ephemeral_storage_available_bytes[node.name],
            from_store.node_ephemeral_storage_available_bytes[node.name],
            0.0,
            0.5,
            node.ephemeral_storage_available_bytes,
        )
    assert from_prometheus.quota_used == from_store.quota_used == {}


def test_prometheus_and_the_store_agree_on_the_same_exporter(tmp_path: Path) -> None:
    binary = require(find_prometheus(), INSTALL_HINT)
    # Counters started an hour ago, so that Prometheus never extrapolates a rate down to
    # a counter's zero; kills at epoch + 10 s * k.
    epoch = math.floor(time.time()) - 3600.0
    store = TimeSeriesStore(resolution_ms=S)
    lock = threading.Lock()
    with SyntheticExporter(PODS, NODES, epoch_s=epoch) as exporter:
        targets = StaticTargets([f"{url};role=exporter" for url in exporter.targets()])
        settings = ScrapeSettings(
            interval_seconds=1.0, timeout_seconds=0.8, target_refresh_seconds=0.1
        )
        with (
            prometheus_scraping(binary, tmp_path, exporter.url) as prometheus_url,
            Scraper(store, lock, targets, settings),
        ):
            began_ms = int(time.time() * 1000)
            time.sleep(RUN_S)
            # The newest grid point 2 s ago, so both scrapers have written it; the start
            # moved back (by up to 10 s) to epoch + 10 s * k + 2.5 s, so that every kill
            # falls half-way between two grid points.
            newest_ms = int(time.time() * 1000) - 2 * S
            offset = (newest_ms - HISTORY_MS - round(epoch * 1000) - 2500) % (10 * S)
            start_ms = newest_ms - HISTORY_MS - offset
            end_ms = start_ms + HISTORY_MS
            # Two seconds for both scrapers' first scrape, then one lookback of samples.
            assert start_ms - STEP_MS >= began_ms + 2 * S, "raise RUN_S"
            with PrometheusHistory(prometheus_url, timeout=30.0, resolution_ms=S) as prometheus:
                source: HistorySource = prometheus
                from_prometheus = source.fetch(start_ms, end_ms, ["shop"])
                assert from_prometheus.cpu_cores  # the default step is one scrape: 1 s
                from_prometheus = prometheus.fetch(start_ms, end_ms, ["shop"], step_ms=STEP_MS)
            from_store = StoreHistory(store, lock).fetch(
                start_ms, end_ms, ["shop"], step_ms=STEP_MS
            )
    compare(from_prometheus, from_store, epoch)
    # Kills at start + 7.5 s, 17.5 s and 27.5 s, seen at the next grid point.
    leaky = ContainerRef("shop", "leaky-0", "app")
    assert from_store.oom_kill_ms[leaky] == (start_ms + 10 * S, start_ms + 20 * S, end_ms)


def test_an_unreachable_prometheus_says_to_check_the_url() -> None:
    port = free_port()
    with (
        PrometheusHistory(f"http://127.0.0.1:{port}", timeout=5.0) as prometheus,
        pytest.raises(PrometheusHistoryError, match="check --prometheus-url"),
    ):
        prometheus.fetch(0, 60 * S)

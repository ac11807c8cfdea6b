"""The scale rig at CI size: its answers are right with both sources (timings never checked).

``bench/scale_rig.py`` measures the adapter at 1,000 nodes and 50,000 pods; its figures
are only worth something if what it measures are right answers. This test builds the
same rig (:mod:`tests.cluster.scale`) at CI size on the session's control plane: 20
kwok nodes, 400 pods in one namespace, selectors of 10, 100 and 400 pods, two exporter
shards and the application pages; then runs the real adapter with the embedded source,
and Debian's Prometheus with a second adapter on the Prometheus source, and checks:

- every ``pods/*`` answer (rate and p95 over 5 m of the application metrics, working
  set and CPU rate of the exporter's series) has one item per selected pod, with the
  value the rig serves for that pod (2 %; rates of the Prometheus source only once its
  data covers their window, which the test does not wait for at 5 m);
- the HPA-like load gets no error (every answer has every pod);
- freshness is measured: each change of the gauge is answered, in finite time;
- the namespace report counts the namespace's pods and the node-pressure analysis
  covers every rig node;
- the retention measurement of the rig's own pages stores every sample it ingests.

Nothing is mocked but the workloads: kwok pods run no process, so the synthetic exporter
stands in for the exporter DaemonSet and ``bench/app_pages.py`` for the pods' own
``/metrics``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.controlplane import ControlPlane, find_tool
from tests.cluster.scale import (
    RigLayout,
    RigSources,
    analysis_times,
    answers_ok,
    check_answers,
    create_objects,
    freshness,
    load,
    prometheus_config,
    retention_memory,
    rig_adapter,
    rig_sources,
    wait_for_answers,
)
from tests.e2e.conftest import missing_prerequisite
from tests.integration.prometheus_harness import INSTALL_HINT, prometheus_with_config

pytestmark = pytest.mark.e2e

LAYOUT = RigLayout(nodes=20, pods=400, tiers=(10, 100, 400))
SCRAPE_INTERVAL_S = 2
MIN_DATA_S = 30.0


@pytest.fixture(scope="module")
def rig(cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RigSources]:
    workdir = tmp_path_factory.mktemp("scale-rig")
    try:
        create_objects(cluster, LAYOUT, workers=16, running_timeout_s=300)
        with rig_sources(LAYOUT, workdir, shards=2) as sources:
            yield sources
    finally:
        for namespace in LAYOUT.namespaces:
            cluster.delete_namespace(namespace, wait=False)
        cluster.delete_nodes(LAYOUT.node_names)


def _assert_answers(report: dict[str, dict[str, dict[str, object]]]) -> None:
    assert set(report) == {str(size) for size in LAYOUT.tiers}
    for size, questions in report.items():
        for name, entry in questions.items():
            assert entry["items"] == int(size), (size, name, entry)
            assert entry["same_pods"], (size, name, entry)
            assert entry["wrong"] == 0, (size, name, entry["wrong_sample"], entry["tolerance"])
    assert answers_ok(report)


def _check_source(
    cluster: ControlPlane, rig: RigSources, workdir: Path, source: str, prometheus_url: str = ""
) -> None:
    data_since = time.monotonic()
    with rig_adapter(
        cluster,
        workdir,
        source=source,
        scrape_interval_s=SCRAPE_INTERVAL_S,
        targets=rig.exporter_targets() + rig.app_targets(),
        prometheus_url=prometheus_url,
    ) as adapter:
        wait_for_answers(adapter, LAYOUT, timeout_s=120)
        fresh = freshness(adapter, rig, changes=2, scrape_interval_s=SCRAPE_INTERVAL_S)
        assert fresh["changes"] == 2
        assert all(math.isfinite(lag) and lag > 0 for lag in fresh["lags_s"]), fresh
        # Rates over a few seconds of data are moved by one late scrape; 30 s keep it small.
        time.sleep(max(0.0, MIN_DATA_S - (time.monotonic() - data_since)))
        report = check_answers(
            adapter,
            LAYOUT,
            epoch_s=rig.epoch_s,
            data_seconds=time.monotonic() - data_since,
            scrape_interval_s=SCRAPE_INTERVAL_S,
            rates_need_full_window=source == "prometheus",
        )
        _assert_answers(report)
        if source == "embedded":
            # Every rate was compared (the embedded store's rate is exact early).
            assert all(entry["compared"] for tier in report.values() for entry in tier.values())
        else:
            assert all(tier["p95_5m"]["compared"] for tier in report.values())
        for tier, size in enumerate(LAYOUT.tiers):
            result = load(adapter, LAYOUT, tier, concurrency=2, seconds=2.0)
            assert result["errors"] == 0, result
            assert result["requests"] > 0, result
            assert result["pods"] == size
        analysis = analysis_times(adapter, LAYOUT, repeat=1)
        assert analysis["namespace_report"]["answer"]["podCount"] == LAYOUT.namespace_size
        assert analysis["node_pressure"]["answer"]["nodes"] >= LAYOUT.nodes
        assert adapter.process.poll() is None, adapter.log_tail()


def test_embedded_source_answers_the_rig_right(
    cluster: ControlPlane, rig: RigSources, tmp_path: Path
) -> None:
    _check_source(cluster, rig, tmp_path, "embedded")


def test_prometheus_source_answers_the_rig_right(
    cluster: ControlPlane, rig: RigSources, tmp_path: Path
) -> None:
    binary = find_tool("prometheus")
    if binary is None:
        missing_prerequisite(INSTALL_HINT)
    (tmp_path / "prometheus").mkdir()
    config = prometheus_config(rig, SCRAPE_INTERVAL_S)
    with prometheus_with_config(binary, tmp_path / "prometheus", config) as prometheus:
        _check_source(cluster, rig, tmp_path, "prometheus", prometheus.url)


def test_retention_keeps_every_sample_of_the_rig_pages() -> None:
    result = retention_memory(LAYOUT, 40, hours=1.0)
    # 2 nodes of 20 pods: every line of their pages, every 15 s for an hour, all kept.
    assert result["pods"] == 40
    assert result["nodes"] == 2
    assert result["samples_rendered"] >= result["series"] * 200
    assert result["samples_held"] == result["samples_appended"] == result["samples_rendered"]
    assert result["bytes_per_sample_estimate"] > 0

"""``K8sResourceMonitor``'s ``top``: the facade passes it through the registry like the API.

kube-apiserver cannot be had in the unit tier, so the monitor's connection, lister and
informer are replaced (on the ``kubepulse.monitor`` module) by stand-ins that serve the
small recorded cluster of tests/unit/analysis/small_cluster.py; the analyses, the
parameter parsing and the history plumbing are the real ones. The facade against a real
control plane is covered by tests/e2e/test_analysis.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import kubepulse.monitor as monitor_module
from kubepulse import K8sResourceMonitor
from kubepulse.errors import KubepulseValueError
from tests.unit.analysis.small_cluster import NOW, FixedHistory, SmallClusterView


class _Informer(SmallClusterView):
    """The small cluster in place of the watches: synced at once, nothing to stop."""

    def __init__(self, *_: Any, **__: Any) -> None:
        super().__init__()

    def start(self) -> None:
        pass

    def wait_synced(self, timeout: float) -> bool:
        return True

    def close(self) -> None:
        pass


class _Lister:
    """Lists nothing: with watches, the monitor reads the informer's view."""

    def __init__(self, *_: Any, **__: Any) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def monitor(monkeypatch: pytest.MonkeyPatch) -> Iterator[K8sResourceMonitor]:
    monkeypatch.setattr(monitor_module, "load_cluster_connection", lambda *_: object())
    monkeypatch.setattr(monitor_module, "current_namespace", lambda *_: "shop")
    monkeypatch.setattr(monitor_module, "ObjectLister", _Lister)
    monkeypatch.setattr(monitor_module, "ClusterInformer", _Informer)
    facade = K8sResourceMonitor(history=FixedHistory(), clock=lambda: NOW / 1000)
    with facade.connect():
        yield facade


def test_top_cuts_the_limit_breach_lists(monitor: K8sResourceMonitor) -> None:
    full = monitor.detect_limit_breaches()
    cut = monitor.detect_limit_breaches(top=1)
    assert (full.settings.top, cut.settings.top) == (None, 1)
    assert dict(full.truncated) == {}
    assert len(full.container_efficiency) > 1, "the small cluster has two containers"
    assert cut.container_efficiency == full.container_efficiency[:1]
    assert cut.truncated["containerEfficiency"] == len(full.container_efficiency)
    assert cut.summary == full.summary


def test_top_reaches_the_recommendations(monitor: K8sResourceMonitor) -> None:
    full = monitor.get_resource_recommendations("shop")
    cut = monitor.get_resource_recommendations("shop", top=1)
    assert (full.top, cut.top) == (None, 1)
    assert cut.workloads == full.workloads[:1]


def test_top_reaches_the_eviction_ranking(monitor: K8sResourceMonitor) -> None:
    full = monitor.analyze_node_pressure()
    cut = monitor.analyze_node_pressure(top=1)
    assert (full.top, cut.top) == (None, 1)
    assert cut.eviction_ranking == full.eviction_ranking[:1]


@pytest.mark.parametrize(
    ("top", "message"),
    [
        (0, "top must be between 1 and 100000, got 0"),
        (2.5, "top must be a whole number, got '2.5'"),
        (True, "top must be a whole number, got 'true'"),
    ],
)
def test_a_bad_top_is_refused(monitor: K8sResourceMonitor, top: Any, message: str) -> None:
    with pytest.raises(KubepulseValueError, match=message):
        monitor.detect_limit_breaches(top=top)

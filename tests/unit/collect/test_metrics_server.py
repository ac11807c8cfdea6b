"""Usage history sampled from metrics-server, against recorded ``PodMetricsList`` objects.

No network: the GET is a function returning recorded answers, because these tests are
about parsing and accumulation (the e2e tier reads a real metrics-server).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from kubepulse.analysis import ContainerRef
from kubepulse.collect.metrics_server import (
    POD_METRICS_PATH,
    MetricsServerHistory,
    MetricsServerUnavailableError,
)
from kubepulse.errors import KubepulseError


def _pod_metrics(stamp: str, cpu: str, memory: str) -> dict[str, Any]:
    return {
        "kind": "PodMetricsList",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "items": [
            {
                "metadata": {"name": "web-0", "namespace": "shop"},
                "timestamp": stamp,
                "window": "15s",
                "containers": [
                    {"name": "app", "usage": {"cpu": cpu, "memory": memory}},
                    {"name": "sidecar", "usage": {"cpu": "1m"}},
                ],
            },
            {
                "metadata": {"name": "job-0", "namespace": "batch"},
                "timestamp": stamp,
                "containers": [{"name": "main", "usage": {"cpu": "2", "memory": "1Gi"}}],
            },
        ],
    }


class Recorded:
    def __init__(self, *answers: Mapping[str, Any] | None) -> None:
        self.answers = list(answers)
        self.paths: list[str] = []

    def __call__(self, path: str) -> Mapping[str, Any] | None:
        self.paths.append(path)
        return self.answers.pop(0)


T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def test_samples_accumulate_into_series_per_container() -> None:
    get = Recorded(
        _pod_metrics("2023-11-14T22:13:20Z", "250m", "128Mi"),
        _pod_metrics("2023-11-14T22:13:35Z", "500m", "256Mi"),
    )
    history = MetricsServerHistory(get, clock=lambda: 0)
    assert history.sample() == 3
    usage = history.fetch(T0, T0 + 60_000)
    app = ContainerRef("shop", "web-0", "app")
    assert get.paths == [POD_METRICS_PATH, POD_METRICS_PATH]
    assert usage.cpu_cores[app].values == (0.25, 0.5)
    assert usage.cpu_cores[app].timestamps_ms == (T0, T0 + 15_000)
    assert usage.memory_working_set_bytes[app].values == (128 * 2**20, 256 * 2**20)
    sidecar = ContainerRef("shop", "web-0", "sidecar")
    assert sidecar in usage.cpu_cores
    assert sidecar not in usage.memory_working_set_bytes, "unmeasured stays absent"
    assert not usage.cpu_throttled_ratio
    assert not usage.oom_kill_ms
    assert not usage.node_pressure


def test_namespaces_and_the_window_filter_samples() -> None:
    get = Recorded(
        _pod_metrics("2023-11-14T22:13:20Z", "250m", "1Mi"),
        _pod_metrics("2023-11-14T22:14:20Z", "300m", "1Mi"),
    )
    history = MetricsServerHistory(get, clock=lambda: 0)
    history.sample()
    usage = history.fetch(T0 + 30_000, T0 + 60_000, namespaces=["shop"])
    assert {ref.namespace for ref in usage.cpu_cores} == {"shop"}
    assert usage.cpu_cores[ContainerRef("shop", "web-0", "app")].values == (0.3,)


def test_old_samples_are_dropped_after_retention() -> None:
    get = Recorded(
        _pod_metrics("2023-11-14T22:13:20Z", "1", "1Mi"),
        _pod_metrics("2023-11-14T22:23:20Z", "2", "1Mi"),
    )
    history = MetricsServerHistory(get, clock=lambda: 0, retention_ms=300_000)
    history.sample()
    usage = history.fetch(0, T0 + 3_600_000)
    assert usage.cpu_cores[ContainerRef("shop", "web-0", "app")].values == (2.0,)


def test_missing_metrics_server_says_what_to_do() -> None:
    history = MetricsServerHistory(Recorded(None), clock=lambda: 0)
    with pytest.raises(MetricsServerUnavailableError, match=r"not installed.*install it"):
        history.sample()


def test_a_failing_call_is_reported_as_metrics_server_unavailable() -> None:
    def refuse(path: str) -> Mapping[str, Any] | None:
        raise KubepulseError("GET /apis/metrics.k8s.io/v1beta1/pods: answered 503")

    history = MetricsServerHistory(refuse, clock=lambda: 0)
    with pytest.raises(MetricsServerUnavailableError, match=r"503.*apiservice v1beta1"):
        history.fetch(0, 1)

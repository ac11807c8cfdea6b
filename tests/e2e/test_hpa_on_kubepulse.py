"""Real HPAs scale real Deployments on kubepulse's statistics, through the aggregator.

The chain under test: ``examples/instrumented_app.py`` processes on loopback (the load
the test drives is real, and so is the latency it causes) -> the real
``kubepulse-adapter`` process scraping them every second -> kube-apiserver's aggregation
layer (three APIServices with the adapter's generated CA as ``caBundle``) -> the real
HPA controller (sync every 5 s) -> Deployments of kwok pods.

Kwok pods are fake and their IPs are not loopback, so the app processes carry the load
in their place, and the metric reaches the HPA as an *External* metric: a rule in the
adapter's configuration reads the app's series (labelled by the static target's
``namespace`` and ``pod``). A "capacity follower" gives the app one worker per replica
the Deployment has, so when the HPA scales, latency really falls: the loop is closed.

Shown:

- the APIServices are ``Available=True``; ``kubectl get --raw`` lists and reads metrics
  through the aggregator in v1beta2, v1beta1 and external; a request to the adapter
  without credentials is refused with a 401 Status, while ``/healthz`` is open;
- an HPA on the p95 of request latency over 1 m scales up under overload and back down
  when the load falls;
- on a rising request-rate ramp, an HPA using ``kubepulse.io/predict`` starts scaling
  earlier than the same HPA without it; both times are printed and recorded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.cluster.adapter_service import RegisteredAdapter, registered_adapter
from tests.cluster.autoscaling import (
    POOL_LABEL,
    CapacityFollower,
    deployment,
    external_hpa,
    replicas,
)
from tests.cluster.controlplane import ControlPlane
from tests.integration.prometheus_harness import AppProcess, app_process, load_process

pytestmark = pytest.mark.e2e

SERVICE_TIME_S = 0.1  # one worker serves 10 requests/s
# An unloaded request takes 0.1 s, whose p95 interpolates to about 0.15 s within the
# (0.1, 0.15] bucket. A Value target scales to ceil(replicas x value / target), so the
# way back to one replica needs value / target below 1/2: 0.15 / 0.4 = 0.37.
LATENCY_TARGET = "400m"


class Scenario:
    """The apps, the adapter and the namespace the HPAs live in."""

    def __init__(self, cluster: ControlPlane, namespace: str, adapter: RegisteredAdapter,
                 apps: dict[str, AppProcess]) -> None:  # fmt: skip
        self.cluster = cluster
        self.namespace = namespace
        self.adapter = adapter
        self.apps = apps

    def replicas(self, name: str) -> int:
        return replicas(self.cluster, self.namespace, name)

    def external_value(self, metric: str, selector: str) -> Any:
        return self.cluster.request(
            "GET",
            f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{self.namespace}/{metric}",
            params={"labelSelector": selector},
            ok=(200, 404),
        )

    def diagnostics(self, name: str) -> str:
        hpa = self.cluster.kubectl(
            "get", "hpa", name, f"--namespace={self.namespace}", "-o", "yaml", check=False
        ).stdout
        events = self.cluster.kubectl(
            "get", "events", f"--namespace={self.namespace}", check=False
        ).stdout
        return f"HPA:\n{hpa}\nevents:\n{events}\nadapter log:\n{self.adapter.log_tail()}"


@pytest.fixture(scope="module")
def scenario(cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    workdir = tmp_path_factory.mktemp("hpa-on-kubepulse")
    namespace = f"e2e-hpa-{time.strftime('%H%M%S')}"
    cluster.ensure_namespace(namespace)
    pool = f"pool-{namespace}"
    nodes = cluster.create_nodes(2, prefix=pool, labels={POOL_LABEL: pool})
    cluster.wait_for_nodes_ready(nodes)
    rules = [
        {"name": "web_latency", "metric": "http_request_duration_seconds",
         "selector": "pod=web", "statistic": "p95", "window": "1m", "namespaced": True},
        {"name": "ramp_rate", "metric": "http_requests_total",
         "selector": "pod=ramp", "statistic": "rate", "window": "1m", "namespaced": True},
    ]  # fmt: skip
    try:
        with (
            app_process("web", workers=1, service_time_s=SERVICE_TIME_S) as web,
            app_process("ramp", workers=8, service_time_s=0.01) as ramp,
        ):
            targets = [
                f"{app.metrics_url};role=pod;namespace={namespace};pod={app.pod}"
                for app in (web, ramp)
            ]
            with registered_adapter(
                cluster, workdir, static_targets=targets, external_metrics=rules
            ) as adapter:
                yield Scenario(cluster, namespace, adapter, {"web": web, "ramp": ramp})
    finally:
        cluster.delete_namespace(namespace, wait=False)
        cluster.delete_nodes(nodes)


@pytest.fixture
def capacity_follower(scenario: Scenario) -> Iterator[None]:
    """Keep the web app's worker count equal to the web Deployment's replicas."""
    app = scenario.apps["web"]
    with CapacityFollower(scenario.cluster, scenario.namespace, "web", app.port):
        yield


def test_registered_readable_through_the_aggregator_and_closed_to_strangers(
    scenario: Scenario,
) -> None:
    cluster, namespace = scenario.cluster, scenario.namespace
    for name in ("v1beta2.custom.metrics.k8s.io", "v1beta1.custom.metrics.k8s.io",
                 "v1beta1.external.metrics.k8s.io"):  # fmt: skip
        spec = cluster.request("GET", f"/apis/apiregistration.k8s.io/v1/apiservices/{name}")
        assert not spec["spec"].get("insecureSkipTLSVerify")
        assert spec["spec"]["caBundle"]
    with load_process(scenario.apps["web"].work_url, rate=4, to_rate=4, duration_s=60):

        def listed() -> Any:
            raw = cluster.kubectl("get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2").stdout
            names = {entry["name"] for entry in json.loads(raw)["resources"]}
            return names if "namespaces/http_requests_total" in names else None

        names = cluster.wait_until(listed, timeout=60, interval=1, description="metrics listed")
        assert "namespaces/http_request_duration_seconds" in names
        for version in ("v1beta2", "v1beta1"):
            path = (
                f"/apis/custom.metrics.k8s.io/{version}/namespaces/{namespace}/metrics/"
                "http_requests_total"
            )
            body = cluster.wait_until(
                lambda path=path: _raw_or_none(cluster, path),
                timeout=60,
                interval=1,
                description=f"{version} namespace metric through the aggregator",
            )
            assert body["kind"] == "MetricValueList"
            assert body["items"][0]["describedObject"]["name"] == namespace
        external = cluster.wait_until(
            lambda: _raw_or_none(
                cluster,
                f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/web_latency",
            ),
            timeout=60,
            interval=1,
            description="external metric through the aggregator",
        )
        assert external["kind"] == "ExternalMetricValueList"
        assert external["items"][0]["metricName"] == "web_latency"
    with scenario.adapter.client() as stranger:
        refused = stranger.get(
            f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace}/metrics/x"
        )
        assert refused.status_code == 401
        assert refused.json()["kind"] == "Status"
        assert stranger.get("/healthz").status_code == 200


def _raw_or_none(cluster: ControlPlane, path: str) -> Any:
    answer = cluster.kubectl("get", "--raw", path, check=False)
    return json.loads(answer.stdout) if answer.returncode == 0 else None


def _wait_for(scenario: Scenario, name: str, condition: Callable[[int], bool],
              timeout: float, what: str) -> float:  # fmt: skip
    """Seconds until ``condition(replicas)`` holds; fails with the HPA's story if never."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if condition(scenario.replicas(name)):
            return time.monotonic() - started
        time.sleep(1)
    pytest.fail(f"{what} did not happen within {timeout:.0f} s\n{scenario.diagnostics(name)}")


@pytest.mark.timeout(600)
@pytest.mark.usefixtures("capacity_follower")
def test_an_hpa_scales_up_and_down_on_p95_latency(
    scenario: Scenario, record_property: Callable[[str, object], None]
) -> None:
    cluster, namespace = scenario.cluster, scenario.namespace
    pool = f"pool-{namespace}"
    manifests = {
        "kind": "List",
        "apiVersion": "v1",
        "items": [
            deployment("web", pool),
            external_hpa("web", "web_latency", {"pod": "web"}, LATENCY_TARGET),
        ],
    }
    cluster.kubectl(
        "create", f"--namespace={namespace}", "-f", "-", input_text=json.dumps(manifests)
    )
    url = scenario.apps["web"].work_url
    # 25 requests/s on one worker of 10/s: a queue builds and the p95 climbs.
    with load_process(url, rate=25, to_rate=25, duration_s=240):
        up = _wait_for(scenario, "web", lambda replicas: replicas >= 2, 180, "scaling up")
        peak = scenario.replicas("web")
        time.sleep(20)
        peak = max(peak, scenario.replicas("web"))
    print(f"\np95 HPA: scaled up after {up:.0f} s of overload, to {peak} replicas")
    record_property("p95_scale_up_seconds", round(up, 1))
    # A light load the replicas serve at once: the p95 falls to about 0.15 s.
    with load_process(url, rate=3, to_rate=3, duration_s=300):
        down = _wait_for(scenario, "web", lambda replicas: replicas == 1, 280, "scaling down")
    print(f"p95 HPA: back to 1 replica {down:.0f} s after the load fell")
    record_property("p95_scale_down_seconds", round(down, 1))


@pytest.mark.timeout(600)
def test_a_forecasting_hpa_scales_earlier_on_a_rising_ramp(
    scenario: Scenario, record_property: Callable[[str, object], None]
) -> None:
    cluster, namespace = scenario.cluster, scenario.namespace
    pool = f"pool-{namespace}"
    # The request rate rises linearly with the offered load, which is what a linear
    # forecast extrapolates; a latency knee would not be.
    manifests = {
        "kind": "List",
        "apiVersion": "v1",
        "items": [
            deployment("plain", pool),
            deployment("predict", pool),
            external_hpa("plain", "ramp_rate", {"pod": "ramp"}, "20"),
            external_hpa(
                "predict",
                "ramp_rate",
                {"pod": "ramp", "kubepulse.io/predict": "1m", "kubepulse.io/model": "linear"},
                "20",
            ),
        ],
    }
    url = scenario.apps["ramp"].work_url
    with load_process(url, rate=2, to_rate=2, duration_s=45):
        # A steady minute first, so that both HPAs start from a flat history.
        cluster.kubectl(
            "create", f"--namespace={namespace}", "-f", "-", input_text=json.dumps(manifests)
        )
        time.sleep(40)
    assert scenario.replicas("plain") == 1, scenario.diagnostics("plain")
    assert scenario.replicas("predict") == 1, scenario.diagnostics("predict")
    times: dict[str, float] = {}
    started = time.monotonic()
    with load_process(url, rate=2, to_rate=40, duration_s=150):
        while len(times) < 2 and time.monotonic() - started < 240:
            for name in ("plain", "predict"):
                if name not in times and scenario.replicas(name) > 1:
                    times[name] = time.monotonic() - started
            time.sleep(1)
    for name in ("plain", "predict"):
        if name not in times:
            pytest.fail(f"{name} never scaled up on the ramp\n{scenario.diagnostics(name)}")
    print(f"\nramp 2 -> 40 req/s over 150 s, target 20 req/s: predict scaled at "
          f"{times['predict']:.0f} s, plain at {times['plain']:.0f} s")  # fmt: skip
    record_property("ramp_predict_scale_up_seconds", round(times["predict"], 1))
    record_property("ramp_plain_scale_up_seconds", round(times["plain"], 1))
    # Three HPA sync periods: more than the controller's own jitter.
    assert times["predict"] + 15 <= times["plain"], times

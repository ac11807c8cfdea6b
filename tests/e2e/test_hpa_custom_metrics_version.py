"""The HPA controller reads custom metrics in whichever version the cluster prefers.

kube-controller-manager's custom-metrics client asks discovery which version of
``custom.metrics.k8s.io`` the cluster prefers and speaks that one (v1beta2 and
v1beta1 both supported; its discovery cache is invalidated every HPA sync period).
The adapter serves both, and the aggregator prefers the APIService with the higher
``versionPriority``: v1beta2 (200 over 100) as installed. An older cluster, or an
installation that registers v1beta1 above v1beta2, makes the HPA use v1beta1; issue 8
asks that this path keeps working. Run against an older release with
``KUBEPULSE_E2E_KUBE_BIN_DIR`` (see ``scripts/install-old-kube.sh``).

Each case registers the real adapter, sets the priorities so that discovery prefers the
version under test, and creates an HPA on an ``Object`` metric of the Namespace
(``http_requests_total`` of a real ``examples/instrumented_app.py`` process under a
steady load). The HPA controller fetches it as
``/apis/custom.metrics.k8s.io/<version>/namespaces/<ns>/metrics/http_requests_total``,
and the adapter's access log records the path and the caller: the test passes when the
HPA's own ServiceAccount asked with the preferred version and the HPA reports the value
in its status. Nothing is mocked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.cluster.adapter_service import RegisteredAdapter, registered_adapter
from tests.cluster.autoscaling import deployment
from tests.cluster.controlplane import ControlPlane
from tests.integration.prometheus_harness import app_process, load_process

pytestmark = pytest.mark.e2e

GROUP = "custom.metrics.k8s.io"
VERSIONS = ("v1beta2", "v1beta1")
METRIC = "http_requests_total"
# kube-controller-manager runs with --use-service-account-credentials.
HPA_USER = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"


def object_hpa(name: str, namespace: str) -> dict[str, Any]:
    """An HPA of Deployment ``name`` on the Namespace's ``http_requests_total``.

    The target is far above the load, so the HPA keeps one replica: the test is
    about which API version the controller reads, not about scaling.
    """
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Object",
                    "object": {
                        "describedObject": {
                            "apiVersion": "v1",
                            "kind": "Namespace",
                            "name": namespace,
                        },
                        "metric": {"name": METRIC},
                        "target": {"type": "Value", "value": "1000000"},
                    },
                }
            ],
        },
    }


def hpa_requests(adapter: RegisteredAdapter) -> list[dict[str, Any]]:
    """The access-log entries of requests the HPA controller made to the adapter."""
    entries = []
    text = adapter.log_file.read_text(errors="replace") if adapter.log_file.exists() else ""
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(entry, dict)
            and entry.get("msg") == "request"
            and entry.get("user") == HPA_USER
        ):
            entries.append(entry)
    return entries


def preferred_version(cluster: ControlPlane) -> str | None:
    group = cluster.request("GET", f"/apis/{GROUP}", ok=(200, 404, 503))
    if not isinstance(group, dict):
        return None
    preferred = group.get("preferredVersion") or {}
    return str(preferred.get("version")) if preferred.get("version") else None


@pytest.mark.timeout(300)
@pytest.mark.parametrize("version", VERSIONS)
def test_the_hpa_reads_custom_metrics_in_the_preferred_version(
    cluster: ControlPlane,
    namespace: str,
    node_pool: Callable[[int], tuple[str, list[str]]],
    tmp_path_factory: pytest.TempPathFactory,
    record_property: Callable[[str, object], None],
    version: str,
) -> None:
    pool, _ = node_pool(1)
    workdir = tmp_path_factory.mktemp(f"hpa-{version}")
    with (
        app_process("web", workers=4, service_time_s=0.01) as app,
        load_process(app.work_url, rate=5, to_rate=5, duration_s=240),
    ):
        target = f"{app.metrics_url};role=pod;namespace={namespace};pod={app.pod}"
        with registered_adapter(cluster, workdir, static_targets=[target]) as adapter:
            other = next(v for v in VERSIONS if v != version)
            # The aggregator prefers the higher versionPriority; the other stays served.
            for name, priority in ((version, 300), (other, 50)):
                cluster.kubectl(
                    "patch", "apiservice", f"{name}.{GROUP}", "--type=merge",
                    "-p", json.dumps({"spec": {"versionPriority": priority}}),
                )  # fmt: skip
            cluster.wait_until(
                lambda: preferred_version(cluster) == version,
                timeout=60,
                interval=0.5,
                description=f"discovery preferring {GROUP}/{version}",
            )
            path = f"/apis/{GROUP}/{version}/namespaces/{namespace}/metrics/{METRIC}"
            cluster.wait_until(
                lambda: cluster.request("GET", path, ok=(200, 404)).get("items"),
                timeout=60,
                interval=1,
                description=f"{path} answering through the aggregator",
            )
            # The controller's discovery cache lives one sync period (5 s): let a
            # preference from an earlier case expire before the HPA exists.
            time.sleep(6)
            cluster.kubectl(
                "create", f"--namespace={namespace}", "-f", "-",
                input_text=json.dumps(deployment("web", pool)),
            )  # fmt: skip
            started = time.monotonic()
            cluster.kubectl(
                "create", f"--namespace={namespace}", "-f", "-",
                input_text=json.dumps(object_hpa("web", namespace)),
            )  # fmt: skip

            def hpa_read_it() -> list[dict[str, Any]] | None:
                hpa = cluster.request(
                    "GET",
                    f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/web",
                )
                current = hpa.get("status", {}).get("currentMetrics") or []
                seen = [entry for entry in hpa_requests(adapter) if entry.get("status") == 200]
                return seen if current and seen else None

            seen = cluster.wait_until(
                hpa_read_it,
                timeout=120,
                interval=1,
                description=f"the HPA reading {METRIC} (adapter log: {adapter.log_file})",
            )
            elapsed = time.monotonic() - started
    paths = sorted({str(entry.get("path")) for entry in seen})
    print(f"\n{version} preferred: HPA requests {paths} after {elapsed:.1f} s")
    record_property(f"hpa_custom_metrics_paths_{version}", ",".join(paths))
    assert path in paths, f"the HPA never asked {path}; it asked {paths}"
    assert all(p.startswith(f"/apis/{GROUP}/{version}/") for p in paths), (
        f"with {version} preferred the HPA also used another version: {paths}"
    )

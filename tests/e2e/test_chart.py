"""The Helm chart ``charts/kubepulse`` against the real control plane.

Two things are shown:

1. Every object of every ``ci/*-values.yaml`` scenario (rendered with
   ``monitoring.coreos.com/v1`` available) passes kube-apiserver's server-side dry-run
   (``kubectl apply --dry-run=server``): schemas, defaulting, validation and admission
   of the real API. ServiceMonitor, PodMonitor, PrometheusRule, Certificate and Issuer
   are custom kinds, so minimal CRDs for them (``x-kubernetes-preserve-unknown-fields``:
   the API accepts any body, only kind and group are checked) are created first and
   deleted afterwards; their bodies are not validated against the real operators'
   schemas.

2. ``helm install`` of the chart succeeds, with its pods Running on kwok nodes, its
   APIServices ``Available``, and the queue-depth HPA of ``examples/hpa/`` getting its
   metric. There is no container runtime, so the adapter runs as a process on loopback
   in the pods' place: the test value ``adapter.service.externalName=127.0.0.1`` makes
   the chart's Service an ExternalName and ``adapter.service.port`` the process's port.
   The process is started with the arguments of the installed Deployment (only the
   paths, the port and the metric source swapped: files on this machine instead of
   volumes, a static target instead of discovered pods), the chart's ConfigMap as its
   ``--config``, the chart's generated serving certificate from its Secret, and a
   token of the chart's ServiceAccount, so the chart's RBAC, certificate and
   APIServices are what make the HPA work. The metric comes from a small Prometheus
   text page on loopback standing in for the worker pods' ``/metrics`` (kwok pods
   serve nothing).

   The control plane's kube-controller-manager runs the DaemonSet controller, so the
   exporter pods are made, and checked Running on the test's own kwok nodes.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import signal
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.cluster.adapter_service import (
    _free_port,
    apiservice_available,
    service_account_token,
    token_kubeconfig,
)
from tests.cluster.autoscaling import POOL_LABEL, deployment
from tests.cluster.controlplane import ControlPlane, find_tool
from tests.e2e.conftest import missing_prerequisite

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kubepulse"
SCENARIOS = sorted(path.name.removesuffix("-values.yaml") for path in (CHART / "ci").glob("*.yaml"))
EXAMPLE_HPA = REPO / "examples" / "hpa" / "queue-depth.yaml"
QUEUE_DEPTH = 20  # below the example's target of 30, so the HPA holds one replica

# (group, kind, plural) of the custom kinds the chart renders.
CUSTOM_KINDS = (
    ("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
    ("monitoring.coreos.com", "PodMonitor", "podmonitors"),
    ("monitoring.coreos.com", "PrometheusRule", "prometheusrules"),
    ("cert-manager.io", "Certificate", "certificates"),
    ("cert-manager.io", "Issuer", "issuers"),
)


def helm_binary() -> Path:
    helm = find_tool("helm")
    if helm is None:
        missing_prerequisite("helm is not installed: run scripts/install-test-tools.sh")
    return helm


def helm(cluster: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(helm_binary()), f"--kubeconfig={cluster.kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"helm {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return done


def minimal_crd(group: str, kind: str, plural: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


@contextlib.contextmanager
def custom_kinds(cluster: ControlPlane) -> Iterator[None]:
    """The minimal CRDs of the module docstring, Established, deleted on exit."""
    crds = [minimal_crd(*kind) for kind in CUSTOM_KINDS]
    names = [crd["metadata"]["name"] for crd in crds]
    # One JSON object per line: kubectl before 1.30 cannot read "---" between JSON documents.
    text = "\n".join(json.dumps(crd) for crd in crds)
    try:
        cluster.kubectl("apply", "-f", "-", input_text=text)
        cluster.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in names)
        )
        yield
    finally:
        crd_names = [f"crd/{name}" for name in names]
        cluster.kubectl("delete", "--ignore-not-found", "--wait=false", *crd_names, check=False)


def test_every_scenario_passes_server_side_dry_run(cluster: ControlPlane) -> None:
    namespace = f"kp-dry-{uuid.uuid4().hex[:6]}"
    cluster.ensure_namespace(namespace)
    created: list[str] = []
    try:
        with custom_kinds(cluster):
            for scenario in SCENARIOS:
                rendered = helm(
                    cluster,
                    "template",
                    "pulse",
                    str(CHART),
                    f"--namespace={namespace}",
                    f"--values={CHART / 'ci' / f'{scenario}-values.yaml'}",
                    "--api-versions=monitoring.coreos.com/v1",
                ).stdout
                documents = [doc for doc in yaml.safe_load_all(rendered) if doc]
                kinds = {doc["kind"] for doc in documents}
                # Namespaces a scenario names besides the release's (the dashboards'
                # grafana.namespace) must exist for the dry run; kube-system does.
                for other in {doc["metadata"].get("namespace") for doc in documents} - {
                    None,
                    namespace,
                    "kube-system",
                    *created,
                }:
                    answer = cluster.request("GET", f"/api/v1/namespaces/{other}", ok=(200, 404))
                    if answer.get("kind") != "Namespace":
                        cluster.ensure_namespace(other)
                        created.append(other)
                done = cluster.kubectl(
                    "apply", "--dry-run=server", "-f", "-", input_text=rendered, check=False
                )
                assert done.returncode == 0, f"{scenario}: {done.stderr}"
                applied = done.stdout.count("(server dry run)")
                assert applied == len(documents), f"{scenario}: {done.stdout}"
                assert {"APIService", "DaemonSet"} <= kinds or scenario == "exporter-only"
    finally:
        for name in (namespace, *created):
            cluster.delete_namespace(name, wait=False)


class _QueueDepthPage(http.server.BaseHTTPRequestHandler):
    """``/metrics`` of a worker pod: one gauge, work_queue_depth."""

    def do_GET(self) -> None:
        body = (
            "# HELP work_queue_depth Requests waiting in the work queue.\n"
            "# TYPE work_queue_depth gauge\n"
            f"work_queue_depth {QUEUE_DEPTH}\n"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.contextmanager
def queue_depth_page() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QueueDepthPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def adapter_arguments(
    deployment_manifest: dict[str, Any], local: dict[str, str], extra: list[str]
) -> list[str]:
    """The installed Deployment's adapter arguments, the flags in ``local`` replaced."""
    containers = deployment_manifest["spec"]["template"]["spec"]["containers"]
    args: list[str] = containers[0]["args"]
    assert containers[0]["command"] == ["kubepulse-adapter"]
    result = []
    for arg in args:
        flag = arg.partition("=")[0]
        result.append(f"{flag}={local[flag]}" if flag in local else arg)
    return [*result, *extra]


@contextlib.contextmanager
def adapter_process(arguments: list[str], log_file: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "adapter", *arguments], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def wait_for_running(
    cluster: ControlPlane, namespace: str, selector: str, count: int, description: str
) -> None:
    """Wait for ``count`` Running pods; on a timeout, show the pods and the events."""
    try:
        cluster.wait_until(
            lambda: pods_running(cluster, namespace, selector, count),
            timeout=90,
            description=description,
        )
    except Exception as exc:
        pods = cluster.kubectl("get", "pods", "-o", "wide", f"--namespace={namespace}",
                               check=False).stdout  # fmt: skip
        events = cluster.kubectl("get", "events", f"--namespace={namespace}", check=False).stdout
        raise AssertionError(f"{exc}\npods:\n{pods}\nevents:\n{events}") from None


def pods_running(cluster: ControlPlane, namespace: str, selector: str, count: int) -> bool:
    pods = cluster.request(
        "GET", f"/api/v1/namespaces/{namespace}/pods", params={"labelSelector": selector}
    )["items"]
    running = [pod for pod in pods if pod.get("status", {}).get("phase") == "Running"]
    return len(running) == count


def test_helm_install_serves_an_example_hpa(
    cluster: ControlPlane,
    node_pool: Callable[[int], tuple[str, list[str]]],
    tmp_path: Path,
) -> None:
    pool, nodes = node_pool(2)
    namespace = f"kp-chart-{uuid.uuid4().hex[:6]}"
    workloads = f"kp-work-{uuid.uuid4().hex[:6]}"
    release = "pulse"
    port = _free_port()
    values = tmp_path / "e2e-values.yaml"
    values.write_text(
        json.dumps(
            {
                # TEST ONLY: the Service points at the adapter process on loopback.
                "adapter": {
                    "service": {"externalName": "127.0.0.1", "port": port},
                    "nodeSelector": {POOL_LABEL: pool},
                },
                "exporter": {"nodeSelector": {POOL_LABEL: pool}},
            }
        )
    )
    cluster.ensure_namespace(workloads)
    installed = False
    stack = contextlib.ExitStack()
    try:
        helm(cluster, "install", release, str(CHART), f"--namespace={namespace}",
             "--create-namespace", f"--values={values}")  # fmt: skip
        installed = True
        instance = f"app.kubernetes.io/instance={release}"
        # Pods of both roles Running on the kwok nodes.
        wait_for_running(
            cluster,
            namespace,
            f"{instance},app.kubernetes.io/component=exporter",
            len(nodes),
            "one Running exporter pod per kwok node",
        )
        wait_for_running(
            cluster,
            namespace,
            f"{instance},app.kubernetes.io/component=adapter",
            2,
            "two Running adapter pods",
        )
        adapter_pods = cluster.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods",
            params={"labelSelector": f"{instance},app.kubernetes.io/component=adapter"},
        )["items"]
        # Preferred anti-affinity: with two nodes free, the replicas land apart.
        assert len({pod["spec"]["nodeName"] for pod in adapter_pods}) == 2

        # The worker Deployment of the example HPA, on the pool.
        worker = deployment("worker", pool)
        cluster.kubectl("apply", f"--namespace={workloads}", "-f", "-",
                        input_text=json.dumps(worker))  # fmt: skip
        wait_for_running(cluster, workloads, "app=worker", 1, "the worker pod Running")
        worker_pod = cluster.request(
            "GET", f"/api/v1/namespaces/{workloads}/pods", params={"labelSelector": "app=worker"}
        )["items"][0]["metadata"]["name"]

        # The installed objects the adapter process takes the pods' place with.
        fullname = f"{release}-kubepulse-adapter"
        installed_deployment = cluster.request(
            "GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/{fullname}"
        )
        config_map = cluster.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{fullname}")
        secret = cluster.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{fullname}-tls")
        (tmp_path / "adapter.yaml").write_text(config_map["data"]["adapter.yaml"])
        for key in ("tls.crt", "tls.key", "ca.crt"):
            (tmp_path / key).write_bytes(base64.b64decode(secret["data"][key]))
        (tmp_path / "tls.key").chmod(0o600)
        token = service_account_token(cluster, namespace, fullname)
        kubeconfig = token_kubeconfig(cluster, token, tmp_path / "kubeconfig")

        with queue_depth_page() as page:
            arguments = adapter_arguments(
                installed_deployment,
                {
                    "--config": str(tmp_path / "adapter.yaml"),
                    "--bind-address": "127.0.0.1",
                    "--secure-port": str(port),
                    "--cert-dir": str(tmp_path / "certs"),
                    "--tls-cert-file": str(tmp_path / "tls.crt"),
                    "--tls-private-key-file": str(tmp_path / "tls.key"),
                    "--checkpoint-path": "",
                    "--scrape-interval": "1s",
                    "--scrape-timeout": "800ms",
                },
                [
                    f"--kubeconfig={kubeconfig}",
                    "--no-discovery",
                    f"--static-target={page};role=pod;namespace={workloads};pod={worker_pod}",
                ],
            )
            log_file = tmp_path / "adapter.log"
            with adapter_process(arguments, log_file) as process:

                def log_tail() -> str:
                    return "\n".join(log_file.read_text(errors="replace").splitlines()[-30:])

                def ready() -> bool:
                    if process.poll() is not None:
                        raise AssertionError(f"the adapter exited:\n{log_tail()}")
                    try:
                        # The certificate names the Service, not 127.0.0.1: check the
                        # chain only (the aggregator checks the name).
                        trust = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
                        trust.check_hostname = False
                        with httpx.Client(verify=trust, timeout=5) as client:
                            return client.get(f"https://127.0.0.1:{port}/readyz").status_code == 200
                    except httpx.HTTPError:
                        return False

                try:
                    cluster.wait_until(
                        ready, timeout=60, interval=0.3, description="adapter /readyz"
                    )
                except Exception as exc:
                    raise AssertionError(f"{exc}\nadapter log:\n{log_tail()}") from None
                apiservices = [
                    item["metadata"]["name"]
                    for item in cluster.request(
                        "GET",
                        "/apis/apiregistration.k8s.io/v1/apiservices",
                        params={"labelSelector": instance},
                    )["items"]
                ]
                assert len(apiservices) == 4, apiservices
                for apiservice in apiservices:
                    cluster.wait_until(
                        functools.partial(apiservice_available, cluster, apiservice),
                        timeout=90,
                        interval=0.5,
                        description=f"APIService {apiservice} Available",
                    )

                # An upgrade keeps the generated certificate and caBundle (lookup).
                def bundles() -> set[str]:
                    return {
                        cluster.request(
                            "GET", f"/apis/apiregistration.k8s.io/v1/apiservices/{apiservice}"
                        )["spec"]["caBundle"]
                        for apiservice in apiservices
                    }

                assert bundles() == {secret["data"]["ca.crt"]}
                helm(cluster, "upgrade", release, str(CHART), f"--namespace={namespace}",
                     "--reuse-values")  # fmt: skip
                assert bundles() == {secret["data"]["ca.crt"]}
                upgraded = cluster.request(
                    "GET", f"/api/v1/namespaces/{namespace}/secrets/{fullname}-tls"
                )
                assert upgraded["data"] == secret["data"]
                discovery = json.loads(
                    cluster.kubectl("get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2").stdout
                )
                assert discovery["groupVersion"] == "custom.metrics.k8s.io/v1beta2"

                # The NOTES' analysis check answers through the aggregator too.
                cluster.wait_until(
                    lambda: (
                        cluster.request(
                            "GET",
                            "/apis/analysis.kubepulse.io/v1alpha1/nodepressure",
                            ok=(200, 503),
                        ).get("kind")
                        != "Status"
                    ),
                    timeout=60,
                    description="analysis.kubepulse.io nodepressure answers",
                )

                # The example HPA from the docs, unchanged.
                hpa = yaml.safe_load(EXAMPLE_HPA.read_text())
                name = hpa["metadata"]["name"]
                cluster.kubectl("apply", f"--namespace={workloads}", "-f", str(EXAMPLE_HPA))

                def current_value() -> str | None:
                    status = cluster.request(
                        "GET",
                        f"/apis/autoscaling/v2/namespaces/{workloads}/horizontalpodautoscalers/{name}",
                    ).get("status", {})
                    active = any(
                        condition["type"] == "ScalingActive" and condition["status"] == "True"
                        for condition in status.get("conditions", [])
                    )
                    for metric in status.get("currentMetrics") or []:
                        value = metric.get("pods", {}).get("current", {}).get("averageValue")
                        if active and value is not None:
                            return str(value)
                    return None

                try:
                    value = cluster.wait_until(
                        current_value, timeout=90, description=f"HPA {name} gets its metric"
                    )
                except Exception:
                    described = cluster.kubectl(
                        "describe", "hpa", name, f"--namespace={workloads}", check=False
                    ).stdout
                    raise AssertionError(f"{described}\nadapter log:\n{log_tail()}") from None
                assert value == str(QUEUE_DEPTH)
                shown = cluster.kubectl("get", "hpa", name, f"--namespace={workloads}").stdout
                assert f"{QUEUE_DEPTH}/30" in shown, shown
    finally:
        if installed:
            subprocess.run(
                [str(helm_binary()), f"--kubeconfig={cluster.kubeconfig}", "uninstall", release,
                 f"--namespace={namespace}", "--wait=hookOnly", "--timeout=60s"],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
        stack.close()
        cluster.delete_namespace(namespace, wait=False)
        cluster.delete_namespace(workloads, wait=False)

"""The real ``kubepulse-adapter`` process, registered with the test control plane.

:func:`registered_adapter` does what an installation does, on loopback:

1. a namespace and the adapter's ServiceAccount, with the RBAC ``docs/security.md``
   lists: ``system:auth-delegator``, the ``extension-apiserver-authentication-reader``
   Role in ``kube-system``, and listing and watching pods, workloads, nodes, namespaces,
   resourcequotas and HPAs (the analysis API's view); plus the ClusterRole that lets the
   HPA controller read custom and external metrics;
2. the adapter process (``python -m adapter serve``) as that ServiceAccount (a
   TokenRequest token in a kubeconfig), authentication and authorization on, a
   generated serving certificate for the Service's names, scraping static targets;
3. an ``ExternalName`` Service pointing at 127.0.0.1 (kube-apiserver dials the
   adapter's loopback port) and the four APIServices (custom v1beta2 and v1beta1,
   external, analysis.kubepulse.io) with the generated CA as their
   ``caBundle``, waited for until ``Available=True``; with ``resource_metrics`` also
   ``v1beta1.metrics.k8s.io`` (the adapter started with ``--resource-metrics-api``).
   That name may be metrics-server's (``ControlPlane.enable_metrics_server``): the
   adapter owns it while registered (any existing registration is deleted first) and
   deletes it on exit; metrics-server's is not restored.

Everything is removed on exit and the process is stopped with SIGTERM, as kubelet would.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.cluster.controlplane import ControlPlane

SERVICE = "kubepulse-adapter"
APISERVICES = (
    ("custom.metrics.k8s.io", "v1beta2", 200),
    ("custom.metrics.k8s.io", "v1beta1", 100),
    ("external.metrics.k8s.io", "v1beta1", 100),
    ("analysis.kubepulse.io", "v1alpha1", 100),
)
RESOURCE_METRICS_APISERVICE = ("metrics.k8s.io", "v1beta1", 100)
RBAC = "/apis/rbac.authorization.k8s.io/v1"


@dataclass(frozen=True)
class RegisteredAdapter:
    """A running, registered adapter."""

    namespace: str
    port: int
    ca_file: Path
    log_file: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        """A client that trusts the adapter's certificate and sends no credentials."""
        return httpx.Client(
            base_url=self.url,
            verify=ssl.create_default_context(cafile=str(self.ca_file)),
            timeout=30,
        )

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def service_account_token(cluster: ControlPlane, namespace: str, name: str) -> str:
    """A one-hour TokenRequest token of ServiceAccount ``name``, created if missing."""
    cluster.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        body={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        ok=(201, 409),
        ok_on_retry=(),  # 409 is already fine: created now or before
    )
    answer = cluster.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
        ok=(200, 201),
    )
    return str(answer["status"]["token"])


def token_kubeconfig(cluster: ControlPlane, token: str, path: Path) -> Path:
    """Write a kubeconfig for ``cluster`` that authenticates with ``token``."""
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "e2e",
                        "cluster": {
                            "server": cluster.api_url,
                            "certificate-authority": str(cluster.ca_bundle),
                        },
                    }
                ],
                "users": [{"name": "adapter", "user": {"token": token}}],
                "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "adapter"}}],
                "current-context": "e2e",
            }
        )
    )
    return path


def _binding(kind: str, name: str, role_kind: str, role: str, subjects: list[dict[str, str]],
             namespace: str | None = None) -> dict[str, Any]:  # fmt: skip
    metadata: dict[str, str] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": subjects,
    }


def _rbac(namespace: str, prefix: str) -> list[tuple[dict[str, Any], str]]:
    """Every RBAC object, with the path that deletes it."""
    adapter = [{"kind": "ServiceAccount", "name": "kubepulse-adapter", "namespace": namespace}]
    hpa = [
        {"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler", "namespace": "kube-system"}
    ]
    reader = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": f"{prefix}:objects"},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["pods", "nodes", "namespaces", "resourcequotas"],
                "verbs": ["get", "list", "watch"],
            },
            {
                "apiGroups": ["apps"],
                "resources": ["deployments", "statefulsets", "replicasets"],
                "verbs": ["get", "list", "watch"],
            },
            {
                "apiGroups": ["autoscaling"],
                "resources": ["horizontalpodautoscalers"],
                "verbs": ["get", "list", "watch"],
            },
        ],
    }
    metrics = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": f"{prefix}:metrics-reader"},
        "rules": [
            {
                "apiGroups": ["custom.metrics.k8s.io", "external.metrics.k8s.io"],
                "resources": ["*"],
                "verbs": ["get", "list", "watch"],
            }
        ],
    }
    return [
        (reader, f"{RBAC}/clusterroles/{prefix}:objects"),
        (metrics, f"{RBAC}/clusterroles/{prefix}:metrics-reader"),
        (
            _binding(
                "ClusterRoleBinding",
                f"{prefix}:objects",
                "ClusterRole",
                f"{prefix}:objects",
                adapter,
            ),
            f"{RBAC}/clusterrolebindings/{prefix}:objects",
        ),
        (
            _binding(
                "ClusterRoleBinding",
                f"{prefix}:auth-delegator",
                "ClusterRole",
                "system:auth-delegator",
                adapter,
            ),
            f"{RBAC}/clusterrolebindings/{prefix}:auth-delegator",
        ),
        (
            _binding(
                "RoleBinding",
                f"{prefix}:auth-reader",
                "Role",
                "extension-apiserver-authentication-reader",
                adapter,
                "kube-system",
            ),
            f"{RBAC}/namespaces/kube-system/rolebindings/{prefix}:auth-reader",
        ),
        (
            _binding(
                "ClusterRoleBinding",
                f"{prefix}:hpa-metrics",
                "ClusterRole",
                f"{prefix}:metrics-reader",
                hpa,
            ),
            f"{RBAC}/clusterrolebindings/{prefix}:hpa-metrics",
        ),
    ]


def apiservice_available(cluster: ControlPlane, name: str) -> bool:
    status = cluster.request("GET", f"/apis/apiregistration.k8s.io/v1/apiservices/{name}")
    return any(
        condition["type"] == "Available" and condition["status"] == "True"
        for condition in status.get("status", {}).get("conditions", [])
    )


@contextlib.contextmanager
def registered_adapter(
    cluster: ControlPlane,
    workdir: Path,
    *,
    static_targets: Sequence[str],
    external_metrics: Sequence[dict[str, Any]] = (),
    extra_args: Sequence[str] = (),
    resource_metrics: bool = False,
) -> Iterator[RegisteredAdapter]:
    """Run and register the adapter (see the module docstring); everything undone on exit."""
    namespace = f"kubepulse-{uuid.uuid4().hex[:6]}"
    prefix = f"kubepulse-e2e:{namespace}"
    cluster.ensure_namespace(namespace)
    cleanup: list[str] = []
    process: subprocess.Popen[bytes] | None = None
    log_file = workdir / "adapter.log"
    apiservices = (*APISERVICES, RESOURCE_METRICS_APISERVICE) if resource_metrics else APISERVICES
    try:
        token = service_account_token(cluster, namespace, "kubepulse-adapter")
        for manifest, path in _rbac(namespace, prefix):
            cluster.apply(manifest)
            cleanup.append(path)
        config_file = workdir / "adapter.yaml"
        config_file.write_text(json.dumps({"external_metrics": list(external_metrics)}))
        port = _free_port()
        arguments = [
            sys.executable, "-m", "adapter", "serve",
            f"--config={config_file}",
            f"--kubeconfig={token_kubeconfig(cluster, token, workdir / 'kubeconfig')}",
            "--bind-address=127.0.0.1", f"--secure-port={port}",
            f"--cert-dir={workdir / 'certs'}", f"--service-name={SERVICE}",
            f"--service-namespace={namespace}", "--checkpoint-path=",
            "--no-discovery", "--scrape-interval=1s", "--scrape-timeout=800ms",
            "--staleness=30s",
            *(f"--static-target={target}" for target in static_targets),
            *(["--resource-metrics-api"] if resource_metrics else []),
            *extra_args,
        ]  # fmt: skip
        environment = {k: v for k, v in os.environ.items() if not k.startswith("KUBEPULSE_")}
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                arguments, stdout=log, stderr=subprocess.STDOUT, env=environment
            )
        handle = RegisteredAdapter(namespace, port, workdir / "certs" / "ca.crt", log_file, process)

        def healthy() -> bool:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"the adapter exited:\n{handle.log_tail()}")
            try:
                with handle.client() as http:
                    return http.get("/readyz").status_code == 200
            except (httpx.HTTPError, OSError):
                return False

        cluster.wait_until(healthy, timeout=60, interval=0.2, description="adapter /readyz")
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": SERVICE, "namespace": namespace},
                "spec": {"type": "ExternalName", "externalName": "127.0.0.1"},
            }
        )
        ca_bundle = base64.b64encode(handle.ca_file.read_bytes()).decode()
        for group, version, priority in apiservices:
            name = f"{version}.{group}"
            if (group, version, priority) == RESOURCE_METRICS_APISERVICE:
                # Own the name: no field of another registration (metrics-server's) stays.
                cluster.request(
                    "DELETE",
                    f"/apis/apiregistration.k8s.io/v1/apiservices/{name}",
                    ok=(200, 202, 404),
                )
            cleanup.append(f"/apis/apiregistration.k8s.io/v1/apiservices/{name}")
            cluster.apply(
                {
                    "apiVersion": "apiregistration.k8s.io/v1",
                    "kind": "APIService",
                    "metadata": {"name": name},
                    "spec": {
                        "group": group,
                        "version": version,
                        "groupPriorityMinimum": 100,
                        "versionPriority": priority,
                        "service": {"name": SERVICE, "namespace": namespace, "port": port},
                        "caBundle": ca_bundle,
                    },
                }
            )
        for group, version, _ in apiservices:
            name = f"{version}.{group}"
            cluster.wait_until(
                functools.partial(apiservice_available, cluster, name),
                timeout=90,
                interval=0.5,
                description=f"APIService {name} Available",
            )
        yield handle
    finally:
        for path in reversed(cleanup):
            cluster.request("DELETE", path, ok=(200, 202, 404))
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        cluster.delete_namespace(namespace, wait=False)

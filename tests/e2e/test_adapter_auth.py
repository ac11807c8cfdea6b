"""The adapter's security against a real kube-apiserver: every credential an aggregated API
server meets, and the aggregator itself.

One adapter runs for the module, in-process on 127.0.0.1, built the way the entry point
builds it (``load_config`` -> ``AdapterSecurity.create`` -> ``protect`` -> ``serve``) and
protecting a small probe app. It talks to kube-apiserver as its own ServiceAccount with
only the RBAC ``docs/security.md`` lists (``system:auth-delegator`` and the
``extension-apiserver-authentication-reader`` Role), so the tests also prove that RBAC is
enough. Its serving certificate is self-signed at start, for the names the aggregator
dials.

What is shown:

- the aggregator's front-proxy client certificate (the one the harness generated) with
  ``X-Remote-User`` is authenticated as that user and authorized by a real
  SubjectAccessReview against RBAC this module creates;
- a real ServiceAccount token (TokenRequest API) passes a real TokenReview;
- no credentials is 401, a user without RBAC is 403 naming the user and the action;
- identity headers without the proxy certificate are ignored, and never reach the app;
- certificates the ConfigMap does not vouch for: another CA fails the handshake, a
  front-proxy-CA certificate with a name not allowed is 401, a cluster client certificate
  is its own identity;
- through the real aggregation layer: an APIService (ExternalName trick, real
  ``caBundle``) becomes Available, and ``kubectl get --raw --as=<user>`` reaches the
  adapter as that user, whom the adapter authorizes with its own SubjectAccessReview.
  (kube-apiserver authorizes the request too before proxying it, so there a user without
  RBAC is stopped by kube-apiserver; the direct tests above show the adapter stops them.)
"""

from __future__ import annotations

import asyncio
import base64
import json
import queue
import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from adapter.config import load_config
from adapter.security import AdapterSecurity, authenticated_user
from adapter.server import listen_socket, serve
from tests.cluster.adapter_service import service_account_token, token_kubeconfig
from tests.cluster.controlplane import ControlPlane, KubectlError

pytestmark = pytest.mark.e2e

GROUP = "custom.metrics.k8s.io"
# A group of the probe's own for the aggregator part, so that no other test's
# custom.metrics.k8s.io APIService is disturbed.
PROBE_GROUP = "authprobe.kubepulse.io"
PROBE_VERSION = "v1alpha1"
METRIC = "http_requests_per_second"
SERVICE = "authprobe"


def probe_app() -> FastAPI:
    """Answers every path with who asked and which headers reached it."""
    app = FastAPI()

    @app.get(f"/apis/{PROBE_GROUP}/{PROBE_VERSION}")
    async def discovery() -> dict[str, Any]:
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{PROBE_GROUP}/{PROBE_VERSION}",
            "resources": [
                {
                    "name": f"pods/{METRIC}",
                    "singularName": "",
                    "namespaced": True,
                    "kind": "MetricValueList",
                    "verbs": ["get"],
                }
            ],
        }

    @app.get("/{rest:path}")
    async def echo(request: Request, rest: str) -> dict[str, Any]:
        user = authenticated_user(request)
        return {
            "path": f"/{rest}",
            "user": user.name if user else None,
            "groups": list(user.groups) if user else [],
            "headers": sorted(request.headers.keys()),
        }

    return app


@dataclass
class RunningAdapter:
    port: int
    namespace: str
    ca_file: Path
    hpa_token: str
    hpa_user: str
    security: AdapterSecurity

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client(self, cert: tuple[Path, Path] | None = None) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if cert is not None:
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        return httpx.Client(base_url=self.url, verify=context, timeout=15)

    def metric_path(self, metric: str = METRIC, group: str = GROUP) -> str:
        return f"/apis/{group}/v1beta2/namespaces/{self.namespace}/pods/*/{metric}"


def _subject_service_account(namespace: str, name: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def _subject_user(name: str) -> dict[str, str]:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}


@pytest.fixture(scope="module")
def adapter(
    cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningAdapter]:
    """The adapter's security serving the probe app, as its own ServiceAccount."""
    namespace = f"e2e-auth-{uuid.uuid4().hex[:8]}"
    prefix = f"kubepulse-e2e:{namespace}"
    workdir = tmp_path_factory.mktemp("adapter-auth")
    cluster.ensure_namespace(namespace)
    cleanup: list[str] = []
    stop_loop: asyncio.AbstractEventLoop | None = None
    stop_event: asyncio.Event | None = None
    thread: threading.Thread | None = None
    try:
        # The adapter's identity and the RBAC docs/security.md lists for it.
        adapter_token = service_account_token(cluster, namespace, "kubepulse-adapter")
        adapter_sa = _subject_service_account(namespace, "kubepulse-adapter")
        cluster.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": f"{prefix}:auth-delegator"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "system:auth-delegator",
                },
                "subjects": [adapter_sa],
            }
        )
        cleanup.append(
            f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{prefix}:auth-delegator"
        )
        cluster.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{prefix}:auth-reader", "namespace": "kube-system"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "extension-apiserver-authentication-reader",
                },
                "subjects": [adapter_sa],
            }
        )
        cleanup.append(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings/"
            f"{prefix}:auth-reader"
        )

        # Who may read one metric: alice (a user the aggregator names) and the
        # hpa-client ServiceAccount. Nobody else, and not other metrics.
        hpa_token = service_account_token(cluster, namespace, "hpa-client")
        cluster.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": f"{prefix}:metric-reader"},
                "rules": [
                    {
                        "apiGroups": [GROUP, PROBE_GROUP],
                        "resources": [f"pods/{METRIC}"],
                        "verbs": ["get"],
                    }
                ],
            }
        )
        cleanup.append(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{prefix}:metric-reader")
        cluster.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": f"{prefix}:metric-reader"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": f"{prefix}:metric-reader",
                },
                "subjects": [
                    _subject_user("alice"),
                    _subject_service_account(namespace, "hpa-client"),
                ],
            }
        )
        cleanup.append(
            f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{prefix}:metric-reader"
        )

        config = load_config(
            [
                f"--kubeconfig={token_kubeconfig(cluster, adapter_token, workdir / 'kubeconfig')}",
                "--bind-address=127.0.0.1",
                f"--cert-dir={workdir / 'certs'}",
                f"--service-name={SERVICE}",
                f"--service-namespace={namespace}",
                "--log-level=debug",
            ],
            {},
        )
        listener = listen_socket("127.0.0.1", 0)
        port = int(listener.getsockname()[1])
        started: queue.Queue[BaseException | AdapterSecurity] = queue.Queue()

        async def run() -> None:
            nonlocal stop_loop, stop_event
            stop_loop, stop_event = asyncio.get_running_loop(), asyncio.Event()
            try:
                security = await AdapterSecurity.create(config)
            except BaseException as exc:
                started.put(exc)
                raise
            started.put(security)
            try:
                app = security.protect(probe_app())
                await serve(
                    app, config, ssl_context=security.ssl_context, sock=listener, stop=stop_event
                )
            finally:
                await security.aclose()

        thread = threading.Thread(target=lambda: asyncio.run(run()), daemon=True)
        thread.start()
        outcome = started.get(timeout=60)
        if isinstance(outcome, BaseException):
            raise outcome
        handle = RunningAdapter(
            port=port,
            namespace=namespace,
            ca_file=workdir / "certs" / "ca.crt",
            hpa_token=hpa_token,
            hpa_user=f"system:serviceaccount:{namespace}:hpa-client",
            security=outcome,
        )
        with handle.client() as http:
            cluster.wait_until(
                lambda: http.get("/healthz").status_code == 200,
                timeout=30,
                interval=0.1,
                description="the adapter answering /healthz",
            )
        yield handle
    finally:
        if stop_loop is not None and stop_event is not None:
            stop_loop.call_soon_threadsafe(stop_event.set)
        if thread is not None:
            thread.join(timeout=30)
        for path in reversed(cleanup):
            cluster.request("DELETE", path, ok=(200, 202, 404))
        cluster.delete_namespace(namespace, wait=False)


def front_proxy(cluster: ControlPlane) -> tuple[Path, Path]:
    assert cluster.pki is not None
    pair = cluster.pki.front_proxy_client
    return pair.cert_path, pair.key_path


def test_health_is_open_and_no_credentials_is_a_401_status(adapter: RunningAdapter) -> None:
    with adapter.client() as http:
        assert http.get("/healthz").status_code == 200
        response = http.get(adapter.metric_path())
    assert response.status_code == 401
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_the_front_proxy_user_is_authorized_by_a_real_subject_access_review(
    cluster: ControlPlane, adapter: RunningAdapter
) -> None:
    with adapter.client(front_proxy(cluster)) as http:
        response = http.get(
            adapter.metric_path(),
            headers={"X-Remote-User": "alice", "X-Remote-Group": "system:authenticated"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["user"] == "alice"
        assert body["groups"] == ["system:authenticated"]
        assert not [h for h in body["headers"] if h.startswith("x-remote-")]

        # RBAC grants one metric (a subresource), not the others.
        other = http.get(
            adapter.metric_path("memory_bytes"),
            headers={"X-Remote-User": "alice", "X-Remote-Group": "system:authenticated"},
        )
    assert other.status_code == 403
    assert other.json()["message"] == (
        f'pods.{GROUP} "*" is forbidden: User "alice" cannot get resource '
        f'"pods/memory_bytes" in API group "{GROUP}" in the namespace "{adapter.namespace}"'
    )


def test_a_user_without_rbac_is_a_403_naming_user_and_action(
    cluster: ControlPlane, adapter: RunningAdapter
) -> None:
    with adapter.client(front_proxy(cluster)) as http:
        response = http.get(adapter.metric_path(), headers={"X-Remote-User": "bob"})
    assert response.status_code == 403
    status = response.json()
    assert status["reason"] == "Forbidden"
    assert status["details"] == {"group": GROUP, "kind": "pods", "name": "*"}
    assert status["message"].startswith(
        f'pods.{GROUP} "*" is forbidden: User "bob" cannot get resource "pods/{METRIC}" in API '
        f'group "{GROUP}" in the namespace "{adapter.namespace}"'
    )


def test_a_real_serviceaccount_token_passes_tokenreview(adapter: RunningAdapter) -> None:
    with adapter.client() as http:
        response = http.get(
            adapter.metric_path(), headers={"Authorization": f"Bearer {adapter.hpa_token}"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["user"] == adapter.hpa_user
        assert "system:serviceaccounts" in body["groups"]
        assert "authorization" not in body["headers"]

        forged = http.get(adapter.metric_path(), headers={"Authorization": "Bearer not.a.token"})
    assert forged.status_code == 401


def test_identity_headers_without_the_proxy_certificate_are_ignored(
    adapter: RunningAdapter,
) -> None:
    spoofed = {"X-Remote-User": "alice", "X-Remote-Group": "system:masters"}
    with adapter.client() as http:
        assert http.get(adapter.metric_path(), headers=spoofed).status_code == 401
        with_token = http.get(
            adapter.metric_path(),
            headers={**spoofed, "Authorization": f"Bearer {adapter.hpa_token}"},
        )
    assert with_token.status_code == 200
    body = with_token.json()
    assert body["user"] == adapter.hpa_user  # the token's user, not the header's
    assert "system:masters" not in body["groups"]
    assert "x-remote-user" not in body["headers"]


def test_certificates_the_configmap_does_not_vouch_for(
    cluster: ControlPlane, adapter: RunningAdapter, tmp_path: Path
) -> None:
    from tests.cluster.pki import new_certificate_authority  # noqa: PLC0415 - needs cryptography

    assert cluster.pki is not None
    # Another CA: the handshake itself fails.
    stranger_ca = new_certificate_authority(tmp_path, "stranger-ca", "stranger")
    stranger = stranger_ca.issue(tmp_path, "stranger", "front-proxy-client", client=True)
    with (
        adapter.client((stranger.cert_path, stranger.key_path)) as http,
        pytest.raises(httpx.TransportError),
    ):
        http.get(adapter.metric_path(), headers={"X-Remote-User": "alice"})

    # The front-proxy CA, but a name requestheader-allowed-names does not list.
    impostor = cluster.pki.front_proxy_ca.issue(
        tmp_path, "impostor", "not-the-aggregator", client=True
    )
    with adapter.client((impostor.cert_path, impostor.key_path)) as http:
        response = http.get(adapter.metric_path(), headers={"X-Remote-User": "alice"})
    assert response.status_code == 401

    # A certificate from the cluster's client CA is its own identity (kubepulse-admin,
    # system:masters), whatever the headers claim.
    admin = cluster.pki.admin
    with adapter.client((admin.cert_path, admin.key_path)) as http:
        response = http.get(adapter.metric_path(), headers={"X-Remote-User": "mallory"})
    assert response.status_code == 200
    assert response.json()["user"] == "kubepulse-admin"


def test_through_the_aggregator_with_a_real_ca_bundle(
    cluster: ControlPlane, adapter: RunningAdapter
) -> None:
    apiservice = f"{PROBE_VERSION}.{PROBE_GROUP}"
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": adapter.namespace},
            "spec": {"type": "ExternalName", "externalName": "127.0.0.1"},
        }
    )
    cluster.apply(
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": apiservice},
            "spec": {
                "group": PROBE_GROUP,
                "version": PROBE_VERSION,
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                "service": {"name": SERVICE, "namespace": adapter.namespace, "port": adapter.port},
                "caBundle": base64.b64encode(adapter.ca_file.read_bytes()).decode(),
            },
        }
    )
    try:

        def available() -> bool:
            status = cluster.request(
                "GET", f"/apis/apiregistration.k8s.io/v1/apiservices/{apiservice}"
            ).get("status", {})
            return any(
                c["type"] == "Available" and c["status"] == "True"
                for c in status.get("conditions", [])
            )

        cluster.wait_until(
            available, timeout=60, interval=0.5, description=f"{apiservice} Available"
        )
        path = adapter.metric_path(group=PROBE_GROUP).replace("v1beta2", PROBE_VERSION)

        def as_user(user: str) -> Any:
            return cluster.kubectl("get", "--raw", path, f"--as={user}")

        allowed = cluster.wait_until(
            lambda: _try_kubectl(lambda: as_user("alice")),
            timeout=30,
            interval=0.5,
            description="the aggregator proxying alice's request",
        )
        body = json.loads(allowed.stdout)
        assert body["user"] == "alice"
        assert "system:authenticated" in body["groups"]
        assert not [h for h in body["headers"] if h.startswith("x-remote-")]
        # The adapter asked kube-apiserver about alice in the probe group itself.
        assert adapter.security.authorizer is not None
        reviews = [json.loads(key) for key in adapter.security.authorizer.cache.live_keys()]
        assert any(
            review["user"] == "alice"
            and review.get("resourceAttributes", {}).get("group") == PROBE_GROUP
            for review in reviews
        ), reviews

        with pytest.raises(KubectlError) as refused:
            as_user("bob")
        assert f'User "bob" cannot get resource "pods/{METRIC}" in API group "{PROBE_GROUP}"' in (
            refused.value.stderr
        )
    finally:
        cluster.request(
            "DELETE", f"/apis/apiregistration.k8s.io/v1/apiservices/{apiservice}", ok=(200, 404)
        )
        cluster.request(
            "DELETE",
            f"/api/v1/namespaces/{adapter.namespace}/services/{SERVICE}",
            ok=(200, 202, 404),
        )


def _try_kubectl(call: Any) -> Any:
    try:
        return call()
    except KubectlError:
        return None

"""The exporter's pod watch against the real control plane.

`NodePodWatcher` runs as it does in the DaemonSet: its own client from a kubeconfig
(`load_api_client`), a least-privilege identity where it matters, no test hooks. What
each test proves:

- only its own node's pods arrive (the field selector is applied by kube-apiserver),
  with the Node's capacity and allocatable; creations, label changes and deletions
  follow within milliseconds; the figures are printed and recorded;
- a watch resumed after an outage from a resourceVersion that etcd compacted meanwhile
  gets a real 410 and relists. The shared kube-apiserver cannot show this: its watch
  cache was filled when etcd was at revision 1, so it still serves a watch from any
  older resourceVersion (checked). The test therefore runs a second kube-apiserver on
  the same etcd with ``--watch-cache=false``, so that a watch goes to etcd, kills it
  (the outage), changes pods and compacts etcd meanwhile, starts it again, and the
  watcher reconnects with its old resourceVersion on its own;
- an API server that refuses connections, or accepts and never answers, never blocks
  ``current()`` and never kills the watcher's threads; failures are counted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import ssl
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.metadata import ClusterView, MetadataMode
from exporter.podwatch import ERROR_GONE, NodePodWatcher, load_api_client
from kubepulse.quantity import parse_quantity
from tests.cluster.controlplane import ControlPlane, ManagedProcess, find_tool
from tests.e2e.conftest import missing_prerequisite

pytestmark = pytest.mark.e2e

LOGGER_NAME = "kubepulse.exporter.podwatch"

NodePool = Callable[[int], tuple[str, list[str]]]


# ---------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_kubeconfig(path: Path, server: str, user: dict[str, str], ca: Path | None) -> str:
    """A one-context kubeconfig (JSON is YAML) for ``load_api_client``."""
    cluster: dict[str, Any] = {"server": server}
    if ca is None:
        cluster["insecure-skip-tls-verify"] = True
    else:
        cluster["certificate-authority"] = str(ca)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": cluster}],
        "users": [{"name": "podwatch", "user": user}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "podwatch"}}],
        "current-context": "e2e",
    }
    path.write_text(json.dumps(config))
    return str(path)


def admin_kubeconfig(cluster: ControlPlane, path: Path, server: str) -> str:
    assert cluster.pki is not None
    admin = cluster.pki.admin
    user = {"client-certificate": str(admin.cert_path), "client-key": str(admin.key_path)}
    return write_kubeconfig(path, server, user, cluster.ca_bundle)


def wait_for_view(
    watcher: NodePodWatcher,
    condition: Callable[[ClusterView], bool],
    *,
    timeout: float,
    description: str,
) -> float:
    """Poll ``current()`` every millisecond; the seconds until ``condition`` held."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        view = watcher.current()
        if condition(view):
            return time.monotonic() - start
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {description}; last view: "
                f"synced={view.synced}, resourceVersion={view.resource_version}, "
                f"{len(view.pods)} pods, node={view.node is not None}, errors={dict(view.errors)}"
            )
        time.sleep(0.001)


def names(view: ClusterView) -> set[str]:
    return {pod.name for pod in view.pods.values()}


def has_pod(name: str) -> Callable[[ClusterView], bool]:
    return lambda view: name in names(view)


def alive(watcher: NodePodWatcher) -> bool:
    """Whether a thread is alive (a call, so that type narrowing does not stick)."""
    return watcher.running


def watcher_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == LOGGER_NAME]


def wait_for_log(caplog: pytest.LogCaptureFixture, pattern: str, timeout: float = 10) -> list[str]:
    """Wait until a watcher log line matches ``pattern``; the watcher's lines so far."""
    deadline = time.monotonic() + timeout
    while True:
        log = watcher_log(caplog)
        if any(re.search(pattern, line) for line in log):
            return log
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line matched {pattern!r} in {timeout:.0f} s: {log}")
        time.sleep(0.01)


def pods_on(cluster: ControlPlane, node: str) -> list[dict[str, Any]]:
    answer = cluster.request(
        "GET", "/api/v1/pods", params={"fieldSelector": f"spec.nodeName={node}"}
    )
    items: list[dict[str, Any]] = answer["items"]
    return items


def pod_manifest(name: str, node: str) -> dict[str, Any]:
    """A one-container pod bound to ``node`` (no scheduler), as create_pods makes them."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "late"}},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "main",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
        },
    }


def pod_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{name}"


def report(
    record_property: Callable[[str, object], None], name: str, figures: dict[str, Any]
) -> None:
    for key, value in figures.items():
        record_property(key, value)
    print(json.dumps({name: figures}))


@pytest.fixture
def podwatch_identity(cluster: ControlPlane, namespace: str, tmp_path: Path) -> Iterator[str]:
    """A kubeconfig for a ServiceAccount that may only do what the exporter does:
    get, list and watch pods; get nodes. Cluster-wide, as RBAC cannot narrow a list to
    one node; the field selector does that."""
    role = f"kubepulse-podwatch-{namespace}"
    cluster.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        body={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "podwatch"}},
    )
    cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
            ],
        }
    )
    cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"kind": "ServiceAccount", "name": "podwatch", "namespace": namespace}],
        }
    )
    token_request = cluster.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/podwatch/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    token = token_request["status"]["token"]
    try:
        yield write_kubeconfig(
            tmp_path / "podwatch.kubeconfig", cluster.api_url, {"token": token}, cluster.ca_bundle
        )
    finally:
        rbac = "/apis/rbac.authorization.k8s.io/v1"
        cluster.request("DELETE", f"{rbac}/clusterrolebindings/{role}", ok=(200, 202, 404))
        cluster.request("DELETE", f"{rbac}/clusterroles/{role}", ok=(200, 202, 404))


# ---------------------------------------------------------------------------- the watch


def test_the_watcher_follows_its_own_nodes_pods_and_node(
    cluster: ControlPlane,
    namespace: str,
    node_pool: NodePool,
    podwatch_identity: str,
    record_property: Callable[[str, object], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    _, (mine, other) = node_pool(2)
    # Round-robin: web-0, web-2, web-4 on mine; web-1, web-3, web-5 on the other node.
    cluster.create_pods(6, namespace=namespace, prefix="web", node_names=[mine, other])
    expected = {pod["metadata"]["uid"]: pod for pod in pods_on(cluster, mine)}
    assert len(expected) == 3

    watcher = NodePodWatcher(node_name=mine, api_client=load_api_client(podwatch_identity))
    start = time.monotonic()
    watcher.start()
    try:
        synced_s = wait_for_view(watcher, lambda v: v.synced, timeout=30, description="synced")
        view = watcher.current()
        assert view.mode is MetadataMode.CLUSTER
        assert set(view.pods) == set(expected)
        assert names(view) == {"web-0", "web-2", "web-4"}
        assert {pod.node_name for pod in view.pods.values()} == {mine}
        web0 = next(pod for pod in view.pods.values() if pod.name == "web-0")
        assert web0.namespace == namespace
        assert web0.effective_requests.cpu_cores == parse_quantity("10m")
        assert web0.qos_class == "Burstable"

        wait_for_view(watcher, lambda v: v.node is not None, timeout=30, description="Node")
        node = watcher.current().node
        assert node is not None
        assert node.name == mine
        api_node = cluster.request("GET", f"/api/v1/nodes/{mine}")
        for field_name in ("capacity", "allocatable"):
            from_api = {
                name: parse_quantity(amount)
                for name, amount in api_node["status"][field_name].items()
            }
            assert dict(getattr(node, field_name)) == from_api
        assert node.capacity.cpu_cores == 32
        assert node.allocatable.memory_bytes == 128 * 1024**3
        initial_sync_s = time.monotonic() - start
        # "synced" is logged once the watch is open, which may be a moment after the
        # view is synced.
        startup_log = wait_for_log(caplog, r"synced 3 pods at resourceVersion \d+")
        assert f"pod watch on node {mine}: listing pods" in startup_log
        assert any("read the Node (capacity cpu=32, memory=128Gi" in line for line in startup_log)
        assert len(startup_log) == 3, startup_log
        caplog.clear()

        # A pod on the other node first, then five on mine, one at a time: each of mine
        # must appear, and the other node's never, although it was created earlier.
        cluster.create_pods(1, namespace=namespace, prefix="elsewhere", node_names=[other])
        appear_s = []
        for index in range(5):
            manifest = pod_manifest(f"late{index}-0", mine)
            created = time.monotonic()
            cluster.request("POST", f"/api/v1/namespaces/{namespace}/pods", body=manifest)
            wait_for_view(
                watcher, has_pod(f"late{index}-0"), timeout=10, description=f"late{index}-0"
            )
            # From before the POST: the event often arrives before the POST's answer.
            appear_s.append(time.monotonic() - created)
        assert "elsewhere-0" not in names(watcher.current())
        assert {p.node_name for p in watcher.current().pods.values()} == {mine}

        # A label change is a MODIFIED event.
        changed = time.monotonic()
        cluster.request(
            "PATCH",
            pod_path(namespace, "web-0"),
            body={"metadata": {"labels": {"tier": "frontend"}}},
            content_type="application/merge-patch+json",
        )
        wait_for_view(
            watcher,
            lambda v: any(
                p.name == "web-0" and p.labels.get("tier") == "frontend" for p in v.pods.values()
            ),
            timeout=10,
            description="the new label on web-0",
        )
        label_s = time.monotonic() - changed

        # A deleted pod goes: kwok plays the kubelet and finishes the deletion.
        deleted = time.monotonic()
        cluster.request("DELETE", pod_path(namespace, "web-2"), ok=(200, 202))
        wait_for_view(
            watcher, lambda v: "web-2" not in names(v), timeout=30, description="web-2 gone"
        )
        delete_s = time.monotonic() - deleted

        final = watcher.current()
        assert names(final) == {"web-0", "web-4"} | {f"late{i}-0" for i in range(5)}
        assert final.synced
        assert final.errors == {}, "a healthy cluster must not produce errors"
        assert watcher.running
        # Logs tell state changes, not events: eleven events, no line.
        assert watcher_log(caplog) == []
    finally:
        watcher.stop()
    assert not alive(watcher)

    report(
        record_property,
        "podwatch_follow",
        {
            "synced_s": round(synced_s, 4),
            "synced_with_node_s": round(initial_sync_s, 4),
            "pod_created_to_current_median_ms": round(statistics.median(appear_s) * 1000, 1),
            "pod_created_to_current_max_ms": round(max(appear_s) * 1000, 1),
            "label_change_to_current_ms": round(label_s * 1000, 1),
            "delete_to_gone_ms": round(delete_s * 1000, 1),
        },
    )


# ---------------------------------------------------------------------------- 410 Gone


def start_uncached_apiserver(cluster: ControlPlane, port: int, log_path: Path) -> ManagedProcess:
    """A second kube-apiserver on the session's etcd, without a watch cache.

    Flags as in the harness's own apiserver, minus the aggregation layer, plus
    ``--watch-cache=false``: every watch is served by etcd, which refuses a compacted
    revision with 410.
    """
    binary = cluster.tool("kube-apiserver")
    assert cluster.pki is not None
    pki = cluster.pki
    process = ManagedProcess(
        "kube-apiserver-uncached",
        [
            str(binary),
            f"--etcd-servers=http://127.0.0.1:{cluster.ports.etcd_client}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            f"--cert-dir={log_path.parent / 'uncached-apiserver-certs'}",
            f"--tls-cert-file={pki.apiserver_serving.cert_path}",
            f"--tls-private-key-file={pki.apiserver_serving.key_path}",
            f"--client-ca-file={pki.client_ca.cert_path}",
            f"--service-cluster-ip-range={cluster.options.service_cidr}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.service_account_public_key}",
            f"--service-account-signing-key-file={pki.service_account_private_key}",
            "--authorization-mode=Node,RBAC",
            "--watch-cache=false",
            "--profiling=false",
            "-v=1",
        ],
        log_path,
        env={k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
    )
    process.start()
    context = ssl.create_default_context(cafile=str(pki.serving_ca.cert_path))
    context.load_cert_chain(str(pki.admin.cert_path), str(pki.admin.key_path))
    deadline = time.monotonic() + 60
    with httpx.Client(verify=context, timeout=2) as http:
        while True:
            if not process.running():
                raise AssertionError(f"the uncached kube-apiserver exited:\n{process.tail()}")
            try:
                if http.get(f"https://127.0.0.1:{port}/readyz").status_code == 200:
                    return process
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                process.stop()
                raise AssertionError(
                    f"the uncached kube-apiserver never got ready:\n{process.tail()}"
                )
            time.sleep(0.1)


def crash(process: ManagedProcess) -> None:
    """SIGKILL, as a crash or a lost machine would: no graceful end of open watches."""
    if process.pgid is not None:
        os.killpg(process.pgid, signal.SIGKILL)
    process.stop()


def etcdctl(cluster: ControlPlane, *args: str) -> str:
    import subprocess  # noqa: PLC0415 - only this test runs etcdctl

    binary = find_tool("etcdctl")
    assert binary is not None
    result = subprocess.run(
        [str(binary), f"--endpoints=http://127.0.0.1:{cluster.ports.etcd_client}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stdout + result.stderr


def test_a_watch_resumed_from_a_compacted_resource_version_gets_410_and_relists(
    cluster: ControlPlane,
    namespace: str,
    node_pool: NodePool,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    if find_tool("etcdctl") is None:
        missing_prerequisite("etcdctl is missing: run scripts/install-test-tools.sh")
    _, (node,) = node_pool(1)
    before, during = 20, 100
    cluster.create_pods(before, namespace=namespace, prefix="early", node_names=[node])

    port = free_port()
    log_path = cluster.logs_dir / f"kube-apiserver-uncached-{uuid.uuid4().hex[:6]}.log"
    server = start_uncached_apiserver(cluster, port, log_path)
    kubeconfig = admin_kubeconfig(
        cluster, tmp_path / "uncached.kubeconfig", f"https://127.0.0.1:{port}"
    )
    watcher = NodePodWatcher(node_name=node, api_client=load_api_client(kubeconfig))
    watcher.start()
    try:
        wait_for_view(
            watcher, lambda v: len(v.pods) == before, timeout=30, description=f"{before} pods"
        )
        old_version = watcher.current().resource_version
        assert old_version is not None

        # The outage: the API server dies; the watcher fails over and over, backing off.
        crash(server)
        wait_for_view(
            watcher,
            lambda v: v.errors.get("watch", 0) >= 1,
            timeout=30,
            description="the watcher noticing the outage",
        )

        # Meanwhile, through the session's API server: new pods, a deleted pod...
        cluster.create_pods(during, namespace=namespace, prefix="during", node_names=[node])
        cluster.request("DELETE", pod_path(namespace, "early-0"), ok=(200, 202))
        cluster.wait_until(
            lambda: "early-0" not in {p["metadata"]["name"] for p in pods_on(cluster, node)},
            timeout=30,
            interval=0.2,
            description="early-0 deleted",
        )
        # ... and etcd compacts away every revision up to now, the watcher's included.
        status = json.loads(etcdctl(cluster, "endpoint", "status", "--write-out=json"))
        revision = int(status[0]["Status"]["header"]["revision"])
        assert int(old_version) < revision
        assert f"compacted revision {revision}" in etcdctl(cluster, "compact", str(revision))
        assert "required revision has been compacted" in etcdctl(
            cluster, "get", "/registry/pods", "--prefix", "--keys-only", f"--rev={old_version}"
        )

        # The API server comes back on the same address; the watcher resumes on its own.
        caplog.clear()
        restarting = time.monotonic()
        server = start_uncached_apiserver(cluster, port, log_path)
        server_ready_s = time.monotonic() - restarting
        wait_for_view(
            watcher,
            lambda v: v.errors.get(ERROR_GONE, 0) >= 1 and v.resource_version != old_version,
            timeout=60,
            description="410 Gone and the relist",
        )
        relisted_s = time.monotonic() - restarting

        view = watcher.current()
        from_api = pods_on(cluster, node)
        assert len(from_api) == before - 1 + during
        assert set(view.pods) == {pod["metadata"]["uid"] for pod in from_api}
        assert "early-0" not in names(view)
        assert view.resource_version is not None
        assert int(view.resource_version) >= revision
        assert view.errors[ERROR_GONE] == 1
        assert view.synced
        assert watcher.running

        # What an operator reads: recovery, the expiry, the relist and what it cost.
        log = wait_for_log(caplog, r"synced \d+ pods .* watching")
        expired = f"resourceVersion {old_version} expired (410 Expired: "
        assert any(expired in line and "listing pods again" in line for line in log), log
        synced = [
            m
            for line in log
            if (m := re.search(r"synced (\d+) pods .* took (\d+) ms, of which (\d+) ms", line))
        ]
        assert synced, log
        assert int(synced[-1].group(1)) == before - 1 + during
        relist_ms, building_ms = int(synced[-1].group(2)), int(synced[-1].group(3))
    finally:
        watcher.stop()
        server.stop()

    report(
        record_property,
        "podwatch_410",
        {
            "pods_relisted": len(view.pods),
            "relist_ms": relist_ms,
            "relist_building_pods_ms": building_ms,
            "server_restart_ready_s": round(server_ready_s, 3),
            "server_restart_to_relisted_s": round(relisted_s, 3),
            "errors": dict(view.errors),
        },
    )


# ---------------------------------------------------------------------------- dead servers


def assert_current_stays_prompt(watcher: NodePodWatcher, seconds: float) -> float:
    """Call ``current()`` in a loop for ``seconds``; the slowest call, in seconds."""
    slowest = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        view = watcher.current()
        slowest = max(slowest, time.perf_counter() - started)
        assert view.mode is MetadataMode.CLUSTER
        assert not view.synced
        assert view.pods == {}
        time.sleep(0.001)
    return slowest


def test_an_api_server_that_refuses_connections_never_blocks_current(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    port = free_port()  # closed again: nothing listens there
    kubeconfig = write_kubeconfig(
        tmp_path / "nowhere.kubeconfig", f"https://127.0.0.1:{port}", {"token": "t"}, None
    )
    watcher = NodePodWatcher(node_name="node-a", api_client=load_api_client(kubeconfig))
    watcher.start()
    try:
        slowest = assert_current_stays_prompt(watcher, 3.0)
        errors = watcher.current().errors
        # Backoff from 0.5 s: a few attempts in 3 s, not hundreds.
        assert 2 <= errors.get("list", 0) <= 10
        assert 1 <= errors.get("node", 0) <= 10
        assert watcher.running
    finally:
        stopping = time.monotonic()
        watcher.stop()
        stop_s = time.monotonic() - stopping
    assert not alive(watcher)
    assert stop_s < 1.0
    assert slowest < 0.05
    report(
        record_property,
        "podwatch_refused",
        {
            "current_slowest_us": round(slowest * 1e6, 1),
            "errors": dict(errors),
            "stop_ms": round(stop_s * 1000, 1),
        },
    )


class SilentServer:
    """Accepts TCP connections on loopback, reads, and never answers."""

    def __init__(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port: int = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone would not.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for connection in self.connections:
            connection.close()
        self.thread.join(5)


def test_an_api_server_that_never_answers_times_out_without_blocking_current(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    server = SilentServer()
    kubeconfig = write_kubeconfig(
        tmp_path / "silent.kubeconfig", f"http://127.0.0.1:{server.port}", {"token": "t"}, None
    )
    watcher = NodePodWatcher(
        node_name="node-a",
        api_client=load_api_client(kubeconfig),
        request_timeout_seconds=1.0,
    )
    watcher.start()
    try:
        # The first list and Node read hang until their 1 s read timeout.
        slowest = assert_current_stays_prompt(watcher, 0.8)
        assert watcher.current().errors == {}
        first_failure_s = 0.8 + wait_for_view(
            watcher,
            lambda v: v.errors.get("list", 0) >= 1 and v.errors.get("node", 0) >= 1,
            timeout=10,
            description="read timeouts counted",
        )
        assert watcher.running
    finally:
        stopping = time.monotonic()
        watcher.stop(timeout=5.0)
        stop_s = time.monotonic() - stopping
        server.close()
    assert not alive(watcher)
    # A request in flight cannot be interrupted, but it ends within its timeout.
    assert stop_s < 2.0
    assert slowest < 0.05
    assert 0.9 <= first_failure_s < 3.0
    report(
        record_property,
        "podwatch_silent",
        {
            "current_slowest_us": round(slowest * 1e6, 1),
            "first_timeout_counted_s": round(first_failure_s, 3),
            "stop_ms": round(stop_s * 1000, 1),
        },
    )

"""The install-without-Helm manifests, their certificate bootstrap and the example HPAs,
against the real control plane.

- Every manifest of ``apiservice/`` passes a server-side dry-run (kube-apiserver's own
  validation, admission and defaulting, nothing stored). The namespaced objects are
  dry-run in a namespace of the test's (``namespace: kubepulse`` rewritten) because a
  dry-run does not create the ``kubepulse`` namespace it would need.
- ``apiservice/bootstrap-tls.sh`` runs in its openssl path (the control plane has no
  cert-manager CRDs) against a namespace the test creates and APIServices of a group of
  the test's own, so that no other test's ``custom.metrics.k8s.io`` registration is
  disturbed; the Secret and the caBundle it writes must verify each other with openssl,
  for the names kube-apiserver dials. A second run keeps the still-valid pair.
- Every autoscaling/v2 example of ``examples/hpa/`` passes a server-side dry-run.
  (The v2beta2 variants are for clusters older than this one, which no longer serves
  that version; ``tests/unit/test_apiservice_manifests.py`` checks they say the same.)
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.controlplane import ControlPlane

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
APISERVICE_DIR = ROOT / "apiservice"
BOOTSTRAP = APISERVICE_DIR / "bootstrap-tls.sh"
HPA_DIR = ROOT / "examples" / "hpa"
MANIFEST_NAMESPACE = "kubepulse"
SERVICE = "kubepulse-adapter"
SECRET = "kubepulse-adapter-tls"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _in_namespace(document: dict[str, Any], namespace: str) -> dict[str, Any]:
    """``document`` with every reference to the manifests' namespace moved to ``namespace``."""
    text = yaml.safe_dump(document)
    moved = yaml.safe_load(text)
    metadata = moved["metadata"]
    if metadata.get("namespace") == MANIFEST_NAMESPACE:
        metadata["namespace"] = namespace
    for subject in moved.get("subjects", []):
        if subject.get("namespace") == MANIFEST_NAMESPACE:
            subject["namespace"] = namespace
    service = moved.get("spec", {}).get("service")
    if isinstance(service, dict) and service.get("namespace") == MANIFEST_NAMESPACE:
        service["namespace"] = namespace
    return moved  # type: ignore[no-any-return]


def _dry_run(cluster: ControlPlane, documents: list[dict[str, Any]], *args: str) -> str:
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-o", "name", *args, "-f", "-",
        input_text=yaml.safe_dump_all(documents), check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"server-side dry-run refused:\n{result.stderr}"
    return result.stdout


@pytest.mark.parametrize(
    "manifest", sorted(APISERVICE_DIR.glob("*.yaml")), ids=lambda path: path.name
)
def test_apiservice_manifest_passes_server_side_dry_run(
    cluster: ControlPlane, namespace: str, manifest: Path
) -> None:
    documents = [_in_namespace(doc, namespace) for doc in _documents(manifest)]
    if manifest.name != "00-namespace.yaml":
        # The namespace manifest is dry-run as written; everything else in the test's.
        assert all(doc["kind"] != "Namespace" for doc in documents)
    out = _dry_run(cluster, documents)
    assert len(out.split()) == len(documents), out


@pytest.mark.parametrize("example", sorted(HPA_DIR.glob("*.yaml")), ids=lambda path: path.name)
def test_v2_hpa_example_passes_server_side_dry_run(
    cluster: ControlPlane, namespace: str, example: Path
) -> None:
    documents = _documents(example)
    assert [doc["apiVersion"] for doc in documents] == ["autoscaling/v2"]
    out = _dry_run(cluster, documents, "-n", namespace)
    assert out.strip() == f"horizontalpodautoscaler.autoscaling/{documents[0]['metadata']['name']}"


@pytest.fixture
def probe_apiservices(cluster: ControlPlane, namespace: str) -> Iterator[list[str]]:
    """Two APIServices shaped like the manifests' but of a group of this test's own."""
    group = f"tls-{uuid.uuid4().hex[:8]}.e2e.kubepulse.io"
    template = _documents(APISERVICE_DIR / "05-apiservices.yaml")[0]
    names = []
    for version in ("v1alpha1", "v1beta1"):
        apiservice = _in_namespace(template, namespace)
        apiservice["metadata"]["name"] = f"{version}.{group}"
        apiservice["spec"].update(group=group, version=version)
        cluster.apply(apiservice)
        names.append(apiservice["metadata"]["name"])
    try:
        yield names
    finally:
        for name in names:
            cluster.request(
                "DELETE", f"/apis/apiregistration.k8s.io/v1/apiservices/{name}", ok=(200, 404)
            )


def _apiservice(cluster: ControlPlane, name: str) -> dict[str, Any]:
    answer: dict[str, Any] = cluster.request(
        "GET", f"/apis/apiregistration.k8s.io/v1/apiservices/{name}"
    )
    return answer


def _bootstrap(cluster: ControlPlane, namespace: str, apiservices: list[str]) -> str:
    kubectl = cluster.tool("kubectl")
    environment = {
        **{k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
        **cluster.env(),
        "KUBECTL": str(kubectl),
        "NAMESPACE": namespace,
        "APISERVICES": " ".join(apiservices),
    }
    result = subprocess.run(
        ["sh", str(BOOTSTRAP)],
        env=environment,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"bootstrap-tls.sh failed:\n{result.stderr}"
    return result.stderr


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", *args], check=False, capture_output=True, text=True, timeout=30
    )


def test_bootstrap_without_cert_manager_writes_matching_secret_and_ca_bundle(
    cluster: ControlPlane, namespace: str, probe_apiservices: list[str], tmp_path: Path
) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed; bootstrap-tls.sh and this test need it")
    log = _bootstrap(cluster, namespace, probe_apiservices)
    assert "wrote Secret" in log, log

    secret = cluster.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{SECRET}")
    assert secret["type"] == "kubernetes.io/tls"
    for key in ("ca.crt", "tls.crt", "tls.key"):
        (tmp_path / key).write_bytes(base64.b64decode(secret["data"][key]))
    bundles = {
        name: base64.b64decode(_apiservice(cluster, name)["spec"]["caBundle"])
        for name in probe_apiservices
    }
    assert set(bundles.values()) == {(tmp_path / "ca.crt").read_bytes()}
    (tmp_path / "bundle.crt").write_bytes(bundles[probe_apiservices[0]])

    # The certificate chains to the caBundle, for the name the aggregator verifies.
    verified = _openssl(
        "verify", "-CAfile", str(tmp_path / "bundle.crt"), "-purpose", "sslserver",
        "-verify_hostname", f"{SERVICE}.{namespace}.svc", str(tmp_path / "tls.crt"),
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # ... and not for another Service's name.
    wrong = _openssl(
        "verify", "-CAfile", str(tmp_path / "bundle.crt"),
        "-verify_hostname", f"other.{namespace}.svc", str(tmp_path / "tls.crt"),
    )  # fmt: skip
    assert wrong.returncode != 0
    # The key is the certificate's.
    certificate_key = _openssl("x509", "-noout", "-pubkey", "-in", str(tmp_path / "tls.crt"))
    private_key = _openssl("pkey", "-pubout", "-in", str(tmp_path / "tls.key"))
    assert certificate_key.returncode == 0, certificate_key.stderr
    assert private_key.returncode == 0, private_key.stderr
    assert certificate_key.stdout == private_key.stdout

    # Run again: the valid pair is kept and the bundle stays.
    again = _bootstrap(cluster, namespace, probe_apiservices)
    assert "keeping Secret" in again, again
    kept = cluster.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{SECRET}")
    assert kept["data"] == secret["data"]


def test_bootstrap_names_missing_apiservices(cluster: ControlPlane, namespace: str) -> None:
    kubectl = cluster.tool("kubectl")
    environment = {
        **{k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
        **cluster.env(),
        "KUBECTL": str(kubectl),
        "NAMESPACE": namespace,
        "APISERVICES": "v1alpha1.absent.e2e.kubepulse.io",
    }
    result = subprocess.run(
        ["sh", str(BOOTSTRAP)],
        env=environment,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "v1alpha1.absent.e2e.kubepulse.io not found" in result.stderr
    assert "05-apiservices.yaml" in result.stderr

"""kubepulse.kubeconnect: credentials from a kubeconfig's contexts and in-cluster.

Real kubeconfig files are written to tmp_path; nothing is mocked. The in-cluster case
reads a ServiceAccount namespace file written to tmp_path too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adapter.security import kubeapi
from kubepulse import kubeconnect
from kubepulse.kubeconnect import (
    KubernetesAPIError,
    current_namespace,
    load_cluster_connection,
)


def _kubeconfig(tmp_path: Path) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "dev",
        "clusters": [
            {"name": "dev", "cluster": {"server": "https://127.0.0.1:6443"}},
            {"name": "prod", "cluster": {"server": "https://10.0.0.1:443/"}},
        ],
        "users": [{"name": "me", "user": {"token": "secret-token"}}],
        "contexts": [
            {"name": "dev", "context": {"cluster": "dev", "user": "me"}},
            {"name": "prod", "context": {"cluster": "prod", "user": "me", "namespace": "shop"}},
        ],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_the_current_context_is_used_by_default(tmp_path: Path) -> None:
    connection = load_cluster_connection(_kubeconfig(tmp_path), environ={})
    assert connection.host == "https://127.0.0.1:6443"
    assert connection.authorization() == "Bearer secret-token"
    assert "kubeconfig" in connection.description


def test_a_named_context_is_used(tmp_path: Path) -> None:
    connection = load_cluster_connection(str(_kubeconfig(tmp_path)), "prod", environ={})
    assert connection.host == "https://10.0.0.1:443"
    assert "context 'prod'" in connection.description


def test_an_unknown_context_names_the_ones_there_are(tmp_path: Path) -> None:
    with pytest.raises(KubernetesAPIError) as caught:
        load_cluster_connection(_kubeconfig(tmp_path), "staging", environ={})
    message = str(caught.value)
    assert "'staging' is not in kubeconfig" in message
    assert "'dev', 'prod'" in message


def test_context_without_kubeconfig_uses_kubeconfig_env_even_in_a_pod(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path)
    environ = {"KUBECONFIG": str(path), "KUBERNETES_SERVICE_HOST": "10.96.0.1"}
    connection = load_cluster_connection(None, "prod", environ=environ)
    assert connection.host == "https://10.0.0.1:443"


def test_a_missing_kubeconfig_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(KubernetesAPIError, match="missing-config"):
        load_cluster_connection(tmp_path / "missing-config", environ={})


def test_in_cluster_without_a_token_says_so(tmp_path: Path) -> None:
    with pytest.raises(KubernetesAPIError, match="ServiceAccount"):
        load_cluster_connection(environ={"KUBERNETES_SERVICE_HOST": "10.96.0.1"})


def test_current_namespace_of_contexts(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path)
    assert current_namespace(path, environ={}) == "default"
    assert current_namespace(path, "prod", environ={}) == "shop"
    with pytest.raises(KubernetesAPIError, match="'dev', 'prod'"):
        current_namespace(path, "nope", environ={})


def test_current_namespace_in_a_pod_reads_the_service_account(tmp_path: Path) -> None:
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text("monitoring\n", encoding="utf-8")
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}
    assert (
        current_namespace(environ=environ, service_account_namespace=namespace_file) == "monitoring"
    )
    with pytest.raises(KubernetesAPIError, match="cannot read the pod's namespace"):
        current_namespace(environ=environ, service_account_namespace=tmp_path / "absent")


def test_the_adapter_still_exports_the_moved_names() -> None:
    assert kubeapi.ClusterConnection is kubeconnect.ClusterConnection
    assert kubeapi.KubernetesAPIError is kubeconnect.KubernetesAPIError
    assert kubeapi.load_cluster_connection is kubeconnect.load_cluster_connection
    assert kubeapi.load_client_configuration is kubeconnect.load_client_configuration

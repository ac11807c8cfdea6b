"""The Helm chart ``charts/kubepulse``, rendered by the real ``helm`` and read back.

``helm lint --strict`` must pass, and ``helm template`` renders every ``ci/*-values.yaml``
scenario (with and without ``monitoring.coreos.com/v1`` among the API versions, so the
prometheus-operator objects appear only when that API exists). The rendered objects are
parsed and checked against what the chart promises and what the programs accept:

- every object carries the ``app.kubernetes.io/*`` and ``helm.sh/chart`` labels;
- the exporter runs non-root with a read-only root filesystem, no privilege escalation,
  every capability dropped, RuntimeDefault seccomp, host ``/proc`` and
  ``/sys/fs/cgroup`` mounted read-only where its ``--proc-root``/``--cgroup-root`` say;
- the arguments the chart passes are real flags, and valid values: the adapter's are
  loaded by :func:`adapter.config.load_config` (with the chart's ConfigMap as its
  ``--config`` file), the exporter's by :func:`exporter.config.parse_config` (with the
  mount points swapped for this machine's ``/proc`` and ``/sys/fs/cgroup``, which it
  checks exist);
- the APIServices per scenario and their ``caBundle`` (the generated CA that signed the
  serving certificate, the user's CA, or cert-manager's injection annotation);
- the PodDisruptionBudget, the anti-affinity, and the RBAC subjects.

Without ``helm`` the tests skip locally and fail under ``CI=true``, like the e2e tier.
Nothing is mocked: ``helm`` is the real binary and renders offline.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from adapter.config import build_parser as adapter_parser
from adapter.config import load_config
from exporter.config import build_parser as exporter_parser
from exporter.config import parse_config
from tests.cluster.controlplane import find_tool

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kubepulse"
SCENARIOS = sorted(path.name.removesuffix("-values.yaml") for path in (CHART / "ci").glob("*.yaml"))
RELEASE = "pulse"
NAMESPACE = "monitoring-kp"
MONITORING_API = "monitoring.coreos.com/v1"
APISERVICES = {
    "v1beta2.custom.metrics.k8s.io",
    "v1beta1.custom.metrics.k8s.io",
    "v1beta1.external.metrics.k8s.io",
    "v1alpha1.analysis.kubepulse.io",
}
REQUIRED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)

Manifest = dict[str, Any]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def helm_binary() -> Path:
    """The project's helm; skip locally (fail in CI) when it is not installed."""
    helm = find_tool("helm")
    if helm is None:
        message = "helm is not installed: run scripts/install-test-tools.sh (docs/testing.md)"
        if in_ci():
            pytest.fail(f"{message}\n(CI=true: a missing prerequisite fails the run)")
        pytest.skip(message)
    return helm


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm_binary()), *args], capture_output=True, text=True, timeout=120, check=False
    )


def render(
    scenario: str | None = None, *, monitoring: bool = False, extra: Sequence[str] = ()
) -> list[Manifest]:
    """``helm template`` of the chart with ``ci/<scenario>-values.yaml``, parsed."""
    args = ["template", RELEASE, str(CHART), f"--namespace={NAMESPACE}"]
    if scenario is not None:
        args.append(f"--values={CHART / 'ci' / f'{scenario}-values.yaml'}")
    if monitoring:
        args.append(f"--api-versions={MONITORING_API}")
    done = helm(*args, *extra)
    assert done.returncode == 0, f"helm template failed:\n{done.stderr}"
    return [document for document in yaml.safe_load_all(done.stdout) if document]


_cache: dict[tuple[str, bool], list[Manifest]] = {}


def rendered(scenario: str, monitoring: bool = False) -> list[Manifest]:
    key = (scenario, monitoring)
    if key not in _cache:
        _cache[key] = render(scenario, monitoring=monitoring)
    return _cache[key]


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [manifest for manifest in manifests if manifest["kind"] == kind]


def one(manifests: list[Manifest], kind: str) -> Manifest:
    found = of_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {[m['metadata']['name'] for m in found]}"
    return found[0]


def container(workload: Manifest) -> Manifest:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: Manifest = containers[0]
    return result


def pod_spec(workload: Manifest) -> Manifest:
    result: Manifest = workload["spec"]["template"]["spec"]
    return result


def flag_value(args: Sequence[str], flag: str) -> str:
    values = [arg.partition("=")[2] for arg in args if arg.partition("=")[0] == flag]
    assert len(values) == 1, f"{flag} given {len(values)} times in {args}"
    return values[0]


def parser_flags(parser: Any) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


# ------------------------------------------------------------------------- lint


def test_helm_lint_strict() -> None:
    done = helm("lint", "--strict", str(CHART))
    assert done.returncode == 0, done.stdout + done.stderr
    for scenario in SCENARIOS:
        values = CHART / "ci" / f"{scenario}-values.yaml"
        done = helm("lint", "--strict", str(CHART), f"--values={values}")
        assert done.returncode == 0, f"{scenario}:\n{done.stdout}{done.stderr}"


def test_the_scenarios_the_issue_asks_for_exist() -> None:
    assert {
        "default",
        "prometheus-source",
        "cert-manager",
        "user-tls-secret",
        "monitoring-off",
        "monitoring-on",
        "exporter-only",
        "analysis-off",
    } <= set(SCENARIOS)


def test_the_schema_refuses_a_misspelt_key() -> None:
    for misspelt in ("exporter.prot=1", "adapter.replica=3", "monitorng.podMonitor=true"):
        done = helm("template", RELEASE, str(CHART), "--set", misspelt)
        assert done.returncode != 0, f"{misspelt} was accepted"
        assert "additional properties" in done.stderr, done.stderr


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "kubepulse"
    assert chart["version"] == "0.1.0"
    assert chart["appVersion"] == "0.1.0"


# -------------------------------------------------------------- every scenario


@pytest.mark.parametrize("monitoring", [False, True], ids=["plain", "monitoring-api"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_object_carries_the_labels(scenario: str, monitoring: bool) -> None:
    manifests = rendered(scenario, monitoring)
    assert manifests
    for manifest in manifests:
        labels = manifest["metadata"].get("labels", {})
        missing = [label for label in REQUIRED_LABELS if label not in labels]
        assert not missing, f"{manifest['kind']}/{manifest['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/part-of"] == "kubepulse"
        namespaced = manifest["kind"] not in {
            "ClusterRole",
            "ClusterRoleBinding",
            "APIService",
        }
        if namespaced and manifest["kind"] != "RoleBinding" and manifest["kind"] != "ConfigMap":
            assert manifest["metadata"]["namespace"] == NAMESPACE


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_monitoring_objects_only_with_the_operator_api(scenario: str) -> None:
    kinds = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    assert not [m for m in rendered(scenario) if m["kind"] in kinds]
    with_api = [m for m in rendered(scenario, True) if m["kind"] in kinds]
    if scenario == "monitoring-off":
        assert not with_api
    else:
        assert any(m["kind"] == "PrometheusRule" for m in with_api)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_exporter_daemonset_has_minimal_privileges(scenario: str) -> None:
    daemonset = one(rendered(scenario), "DaemonSet")
    spec = pod_spec(daemonset)
    main = container(daemonset)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec.get("hostPID", False) is False
    assert spec.get("hostNetwork", False) is False
    security = main["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security.get("privileged", False) is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["capabilities"].get("add", []) == []
    # Every taint tolerated, so every node runs an agent.
    assert {"operator": "Exists"} in spec["tolerations"]
    # The host paths, read-only, where the flags say.
    args = main["args"]
    assert args[0] == "serve"
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    mounts = {mount["mountPath"]: mount for mount in main["volumeMounts"]}
    host_paths = {}
    for mount in main["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "hostPath" in volume:
            assert mount.get("readOnly") is True, f"{mount} is writable"
            host_paths[volume["hostPath"]["path"]] = mount["mountPath"]
    assert host_paths == {
        "/proc": flag_value(args, "--proc-root"),
        "/sys/fs/cgroup": flag_value(args, "--cgroup-root"),
    }
    assert all(mounts[path].get("readOnly") for path in host_paths.values())
    # NODE_NAME from the downward API.
    node_name = {entry["name"]: entry for entry in main["env"]}["NODE_NAME"]
    assert node_name["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    # Probes on /healthz of the metrics port.
    for probe in ("livenessProbe", "readinessProbe"):
        assert main[probe]["httpGet"]["path"] == "/healthz"
        assert main[probe]["httpGet"]["port"] == "metrics"
    assert main["resources"]["requests"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_exporter_args_are_real_valid_flags(scenario: str) -> None:
    main = container(one(rendered(scenario), "DaemonSet"))
    assert main["command"] == ["kubepulse-exporter"]
    args = main["args"][1:]
    known = parser_flags(exporter_parser())
    for arg in args:
        assert arg.partition("=")[0] in known, f"{arg}: not a kubepulse-exporter serve flag"
    # The roots are checked to exist: point them at this machine's, keep the rest.
    here = [
        {"--proc-root": "--proc-root=/proc", "--cgroup-root": "--cgroup-root=/sys/fs/cgroup"}.get(
            arg.partition("=")[0], arg
        )
        for arg in args
    ]
    config = parse_config(here, {"NODE_NAME": "node-1"})
    assert config.node_name == "node-1"
    port = main["ports"][0]["containerPort"]
    assert flag_value(args, "--listen-address") == f"0.0.0.0:{port}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_exporter_rbac_is_pods_read_only(scenario: str) -> None:
    manifests = rendered(scenario)
    exporter = [
        m for m in manifests if m["metadata"]["labels"]["app.kubernetes.io/component"] == "exporter"
    ]
    roles = of_kind(exporter, "ClusterRole")
    assert len(roles) == 1
    assert roles[0]["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]
    binding = one(exporter, "ClusterRoleBinding")
    account = one(exporter, "ServiceAccount")["metadata"]["name"]
    assert binding["roleRef"]["name"] == roles[0]["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
    ]
    assert pod_spec(one(manifests, "DaemonSet"))["serviceAccountName"] == account
    service = list(of_kind(exporter, "Service"))
    assert len(service) == 1
    assert service[0]["spec"]["clusterIP"] == "None"


def adapter_objects(scenario: str, monitoring: bool = False) -> list[Manifest]:
    return [
        manifest
        for manifest in rendered(scenario, monitoring)
        if manifest["metadata"]["labels"]["app.kubernetes.io/component"] == "adapter"
    ]


ADAPTER_SCENARIOS = [scenario for scenario in SCENARIOS if scenario != "exporter-only"]


def test_exporter_only_has_no_adapter() -> None:
    assert adapter_objects("exporter-only", True) == []
    assert not of_kind(rendered("exporter-only"), "APIService")


@pytest.mark.parametrize("scenario", ADAPTER_SCENARIOS)
def test_adapter_deployment(scenario: str) -> None:
    objects = adapter_objects(scenario)
    deployment = one(objects, "Deployment")
    spec = pod_spec(deployment)
    main = container(deployment)
    assert deployment["spec"]["replicas"] == 2
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/component"] == "adapter"
    # Preferred anti-affinity by hostname over the adapter's own pods.
    terms = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert terms[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert terms[0]["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
    # PodDisruptionBudget minAvailable 1 over the same pods.
    budget = one(objects, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == selector
    # Probes on HTTPS.
    assert main["livenessProbe"]["httpGet"] == {
        "path": "/livez",
        "port": "https",
        "scheme": "HTTPS",
    }
    assert main["readinessProbe"]["httpGet"] == {
        "path": "/readyz",
        "port": "https",
        "scheme": "HTTPS",
    }
    assert main["ports"] == [{"name": "https", "containerPort": 6443, "protocol": "TCP"}]
    # Non-root, read-only root, writable emptyDirs only where it writes.
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = main["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    writable = {
        mount["mountPath"]: volumes[mount["name"]]
        for mount in main["volumeMounts"]
        if not mount.get("readOnly")
    }
    assert all("emptyDir" in volume for volume in writable.values()), writable
    args = main["args"][1:]
    assert flag_value(args, "--cert-dir") in writable
    assert main["resources"]["requests"]
    assert main["resources"]["limits"]
    # The serving certificate comes from the Secret the APIServices trust.
    assert volumes["tls"]["secret"]["secretName"]
    tls_mount = next(m for m in main["volumeMounts"] if m["name"] == "tls")["mountPath"]
    assert flag_value(args, "--tls-cert-file") == f"{tls_mount}/tls.crt"
    assert flag_value(args, "--tls-private-key-file") == f"{tls_mount}/tls.key"


@pytest.mark.parametrize("scenario", ADAPTER_SCENARIOS)
def test_adapter_args_are_real_valid_flags(scenario: str, tmp_path: Path) -> None:
    objects = adapter_objects(scenario)
    main = container(one(objects, "Deployment"))
    assert main["command"] == ["kubepulse-adapter"]
    assert main["args"][0] == "serve"
    args = main["args"][1:]
    known = parser_flags(adapter_parser())
    for arg in args:
        assert arg.partition("=")[0] in known, f"{arg}: not a kubepulse-adapter flag"
    # The --config file is the chart's ConfigMap: load both as the adapter would.
    config_map = one(objects, "ConfigMap")
    config_mount = next(m for m in main["volumeMounts"] if m["name"] == "config")["mountPath"]
    config_flag = flag_value(args, "--config")
    assert config_flag.startswith(config_mount + "/")
    key = config_flag.removeprefix(config_mount + "/")
    config_file = tmp_path / key
    config_file.write_text(config_map["data"][key])
    # The certificate files are checked to exist: stand-ins where the Secret is mounted.
    (tmp_path / "tls.crt").write_text("")
    (tmp_path / "tls.key").write_text("")
    swapped = {
        "--config": f"--config={config_file}",
        "--tls-cert-file": f"--tls-cert-file={tmp_path / 'tls.crt'}",
        "--tls-private-key-file": f"--tls-private-key-file={tmp_path / 'tls.key'}",
    }
    here = [swapped.get(arg.partition("=")[0], arg) for arg in args]
    config = load_config(here, {})
    assert config.tls.service_name == one(objects, "Service")["metadata"]["name"]
    assert config.tls.service_namespace == NAMESPACE
    assert config.server.port == 6443
    assert config.analysis.enabled is (scenario != "analysis-off")
    assert config.resource_metrics.enabled is (scenario == "resource-metrics")
    if scenario == "prometheus-source":
        assert config.source.kind == "prometheus"
        assert [rule.name for rule in config.external_metrics] == ["orders_queue_depth"]
    else:
        assert config.source.kind == "embedded"
        # The exporter pods the adapter discovers are this release's DaemonSet's.
        selector = flag_value(args, "--exporter-selector")
        pod_labels = rendered(scenario)
        daemonset = one(pod_labels, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
        for requirement in selector.split(","):
            name, _, value = requirement.partition("=")
            assert daemonset[name] == value


def ca_bundle_signs(ca_b64: str, cert_b64: str, dns_name: str) -> None:
    ca = x509.load_pem_x509_certificate(base64.b64decode(ca_b64))
    cert = x509.load_pem_x509_certificate(base64.b64decode(cert_b64))
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert dns_name in names.get_values_for_type(x509.DNSName)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage


@pytest.mark.parametrize("scenario", ADAPTER_SCENARIOS)
def test_apiservices_and_their_ca(scenario: str) -> None:
    objects = adapter_objects(scenario)
    service = one(objects, "Service")
    apiservices = {m["metadata"]["name"]: m for m in of_kind(objects, "APIService")}
    expected = set(APISERVICES)
    if scenario == "analysis-off":
        expected.discard("v1alpha1.analysis.kubepulse.io")
    if scenario == "resource-metrics":
        expected.add("v1beta1.metrics.k8s.io")
    assert set(apiservices) == expected
    assert service["spec"]["ports"][0]["port"] == 443
    assert service["spec"]["ports"][0]["targetPort"] == "https"
    for name, apiservice in apiservices.items():
        spec = apiservice["spec"]
        assert name == f"{spec['version']}.{spec['group']}"
        assert spec["service"] == {
            "name": service["metadata"]["name"],
            "namespace": NAMESPACE,
            "port": 443,
        }
        assert "insecureSkipTLSVerify" not in spec
    bundles = {apiservice["spec"].get("caBundle") for apiservice in apiservices.values()}
    annotations = [
        apiservice["metadata"].get("annotations", {}) for apiservice in apiservices.values()
    ]
    dns_name = f"{service['metadata']['name']}.{NAMESPACE}.svc"
    deployment = one(objects, "Deployment")
    secret_name = next(
        volume["secret"]["secretName"]
        for volume in pod_spec(deployment)["volumes"]
        if volume["name"] == "tls"
    )
    if scenario == "cert-manager":
        assert bundles == {None}
        certificate = one(objects, "Certificate")
        assert certificate["spec"]["secretName"] == secret_name
        assert dns_name in certificate["spec"]["dnsNames"]
        for annotation in annotations:
            assert annotation == {
                "cert-manager.io/inject-ca-from": f"{NAMESPACE}/{certificate['metadata']['name']}"
            }
        assert one(objects, "Issuer")["spec"] == {"selfSigned": {}}
        assert not of_kind(objects, "Secret")
    elif scenario == "user-tls-secret":
        values = yaml.safe_load((CHART / "ci" / "user-tls-secret-values.yaml").read_text())
        assert secret_name == values["tls"]["existingSecret"]
        assert bundles == {base64.b64encode(values["tls"]["caBundle"].encode()).decode()}
        assert not of_kind(objects, "Secret")
        assert not of_kind(objects, "Certificate")
    else:
        secret = one(objects, "Secret")
        assert secret["metadata"]["name"] == secret_name
        assert secret["type"] == "kubernetes.io/tls"
        assert bundles == {secret["data"]["ca.crt"]}
        ca_bundle_signs(secret["data"]["ca.crt"], secret["data"]["tls.crt"], dns_name)
        assert all(annotation == {} for annotation in annotations)


def test_user_secret_without_ca_is_refused_with_advice() -> None:
    done = helm("template", RELEASE, str(CHART), "--set", "tls.existingSecret=mine")
    assert done.returncode != 0
    assert "set tls.caBundle" in done.stderr


def test_checkpoint_claim_needs_one_replica() -> None:
    done = helm("template", RELEASE, str(CHART), "--set", "adapter.checkpoint.existingClaim=c")
    assert done.returncode != 0
    assert "one writer" in done.stderr
    manifests = render(
        extra=["--set", "adapter.checkpoint.existingClaim=c", "--set", "adapter.replicas=1"]
    )
    volumes = pod_spec(one(manifests, "Deployment"))["volumes"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "c"}} in volumes


def test_test_only_external_name() -> None:
    manifests = render(
        extra=[
            "--set",
            "adapter.service.externalName=127.0.0.1",
            "--set",
            "adapter.service.port=18443",
        ]
    )
    service = next(
        m
        for m in of_kind(manifests, "Service")
        if m["metadata"]["labels"]["app.kubernetes.io/component"] == "adapter"
    )
    assert service["spec"]["type"] == "ExternalName"
    assert service["spec"]["externalName"] == "127.0.0.1"
    assert "selector" not in service["spec"]
    for apiservice in of_kind(manifests, "APIService"):
        assert apiservice["spec"]["service"]["port"] == 18443
    default = next(
        m
        for m in of_kind(rendered("default"), "Service")
        if m["metadata"]["labels"]["app.kubernetes.io/component"] == "adapter"
    )
    assert default["spec"]["type"] == "ClusterIP"


@pytest.mark.parametrize("scenario", ADAPTER_SCENARIOS)
def test_adapter_rbac_subjects(scenario: str) -> None:
    objects = adapter_objects(scenario)
    account = one(objects, "ServiceAccount")["metadata"]["name"]
    assert pod_spec(one(objects, "Deployment"))["serviceAccountName"] == account
    adapter_subject = [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]
    bindings = {
        m["roleRef"]["name"]: m
        for m in of_kind(objects, "ClusterRoleBinding") + of_kind(objects, "RoleBinding")
    }
    roles = {m["metadata"]["name"]: m for m in of_kind(objects, "ClusterRole")}
    delegator = bindings["system:auth-delegator"]
    assert delegator["kind"] == "ClusterRoleBinding"
    assert delegator["subjects"] == adapter_subject
    reader = bindings["extension-apiserver-authentication-reader"]
    assert reader["kind"] == "RoleBinding"
    assert reader["metadata"]["namespace"] == "kube-system"
    assert reader["roleRef"]["kind"] == "Role"
    assert reader["subjects"] == adapter_subject
    # list/watch on what the adapter reads (docs/security.md).
    objects_role = next(role for name, role in roles.items() if name.endswith(":read-objects"))
    granted = {
        (group, resource)
        for rule in objects_role["rules"]
        if {"list", "watch"} <= set(rule["verbs"])
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert {
        ("", "pods"),
        ("", "nodes"),
        ("", "namespaces"),
        ("", "resourcequotas"),
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("apps", "replicasets"),
        ("autoscaling", "horizontalpodautoscalers"),
    } <= granted
    assert bindings[objects_role["metadata"]["name"]]["subjects"] == adapter_subject
    # The HPA controller reads custom and external metrics.
    metrics_role = next(role for name, role in roles.items() if name.endswith(":metrics-reader"))
    assert set(metrics_role["rules"][0]["apiGroups"]) == {
        "custom.metrics.k8s.io",
        "external.metrics.k8s.io",
    }
    assert bindings[metrics_role["metadata"]["name"]]["subjects"] == [
        {"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler", "namespace": "kube-system"}
    ]
    # Reading analyses: aggregated into view/edit/admin, only when the API is served.
    analysis = [role for name, role in roles.items() if name.endswith(":analysis-reader")]
    if scenario == "analysis-off":
        assert analysis == []
    else:
        assert analysis[0]["rules"] == [
            {"apiGroups": ["analysis.kubepulse.io"], "resources": ["*"], "verbs": ["get", "list"]}
        ]
        assert (
            analysis[0]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"]
            == "true"
        )


@pytest.mark.parametrize("scenario", ADAPTER_SCENARIOS)
def test_resource_metrics_api_only_when_asked(scenario: str) -> None:
    """metrics.k8s.io is metrics-server's by default: registered, served and readable only
    with apiServices.resourceMetricsV1beta1 (the resource-metrics scenario)."""
    objects = adapter_objects(scenario)
    wanted = scenario == "resource-metrics"
    apiservices = {m["metadata"]["name"]: m for m in of_kind(objects, "APIService")}
    args = container(one(objects, "Deployment"))["args"]
    readers = [
        role
        for role in of_kind(objects, "ClusterRole")
        if role["metadata"]["name"].endswith(":aggregated-metrics-reader")
    ]
    assert ("v1beta1.metrics.k8s.io" in apiservices) is wanted
    assert ("--resource-metrics-api" in args) is wanted
    assert len(readers) == (1 if wanted else 0)
    if not wanted:
        return
    spec = apiservices["v1beta1.metrics.k8s.io"]["spec"]
    assert (spec["group"], spec["version"], spec["versionPriority"]) == (
        "metrics.k8s.io",
        "v1beta1",
        100,
    )
    # As metrics-server's system:aggregated-metrics-reader: whoever can view a namespace
    # can `kubectl top` its pods.
    assert readers[0]["rules"] == [
        {
            "apiGroups": ["metrics.k8s.io"],
            "resources": ["pods", "nodes"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    labels = readers[0]["metadata"]["labels"]
    for role in ("view", "edit", "admin"):
        assert labels[f"rbac.authorization.k8s.io/aggregate-to-{role}"] == "true"


def test_monitors_job_names_and_honor_labels() -> None:
    for scenario, exporter_kind in (("default", "ServiceMonitor"), ("monitoring-on", "PodMonitor")):
        manifests = rendered(scenario, True)
        jobs: dict[str, Manifest] = {}
        for monitor in of_kind(manifests, "ServiceMonitor") + of_kind(manifests, "PodMonitor"):
            endpoints = monitor["spec"].get("endpoints") or monitor["spec"]["podMetricsEndpoints"]
            for endpoint in endpoints:
                assert endpoint["honorLabels"] is True
                job = [r for r in endpoint["relabelings"] if r.get("targetLabel") == "job"]
                jobs[job[0]["replacement"]] = monitor
        assert set(jobs) == {"kubepulse-exporter", "kubepulse-adapter"}
        assert jobs["kubepulse-exporter"]["kind"] == exporter_kind
        assert jobs["kubepulse-adapter"]["kind"] == "ServiceMonitor"
        if scenario == "monitoring-on":
            for monitor in jobs.values():
                assert monitor["metadata"]["labels"]["release"] == "prom"


def test_prometheus_rule_wraps_the_rules_file() -> None:
    rule = one(rendered("default", True), "PrometheusRule")
    source = yaml.safe_load((CHART / "rules" / "kubepulse.rules.yaml").read_text())
    assert rule["spec"] == source


def test_dashboards_are_configmaps_for_the_sidecar() -> None:
    files = sorted((CHART / "dashboards").glob("*.json"))
    assert files
    maps = [
        m
        for m in of_kind(rendered("default"), "ConfigMap")
        if "grafana_dashboard" in m["metadata"]["labels"]
    ]
    assert len(maps) == len(files)
    by_key = {key: json.loads(text) for m in maps for key, text in m["data"].items()}
    for path in files:
        assert by_key[path.name] == json.loads(path.read_text())
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    moved = [
        m
        for m in of_kind(rendered("monitoring-on"), "ConfigMap")
        if "grafana_dashboard" in m["metadata"]["labels"]
    ]
    assert {m["metadata"]["namespace"] for m in moved} == {"monitoring"}
    assert not [
        m
        for m in of_kind(rendered("monitoring-off"), "ConfigMap")
        if "grafana_dashboard" in m["metadata"]["labels"]
    ]


def test_network_policies() -> None:
    assert not of_kind(rendered("default"), "NetworkPolicy")
    policies = {
        p["metadata"]["labels"]["app.kubernetes.io/component"]: p
        for p in of_kind(rendered("monitoring-on"), "NetworkPolicy")
    }
    assert policies["adapter"]["spec"]["ingress"] == [
        {"ports": [{"port": 6443, "protocol": "TCP"}]}
    ]
    assert policies["exporter"]["spec"]["ingress"] == [
        {"ports": [{"port": 9847, "protocol": "TCP"}]}
    ]
    for component, policy in policies.items():
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert (
            policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == component
        )


def test_notes_tell_how_to_check_the_install() -> None:
    done = helm("install", RELEASE, str(CHART), "--dry-run=client", f"--namespace={NAMESPACE}")
    assert done.returncode == 0, done.stderr
    notes = done.stdout.partition("NOTES:")[2]
    for command in (
        "kubectl get apiservices",
        "kubectl get --raw /apis/custom.metrics.k8s.io/v1beta2",
        "kubectl pulse pressure",
    ):
        assert command in notes, notes


def _leaf_keys(values: Any, prefix: str = "") -> set[str]:
    """Dotted keys of ``values``; a non-empty mapping is walked, anything else is a leaf."""
    if isinstance(values, dict) and values:
        keys: set[str] = set()
        for key, value in values.items():
            keys |= _leaf_keys(value, f"{prefix}{key}.")
        return keys
    return {prefix.removesuffix(".")}


def test_readme_documents_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Za-z0-9_.]+)` \|", readme, flags=re.MULTILINE))
    leaves = _leaf_keys(values)
    # A documented key may be a mapping documented as a whole (resources, probes...).
    undocumented = {
        key
        for key in leaves
        if not any(key == doc or key.startswith(doc + ".") for doc in documented)
    }
    assert not undocumented, f"values missing from the README's table: {sorted(undocumented)}"
    assert documented <= {
        prefix
        for key in leaves
        for prefix in (".".join(key.split(".")[:n]) for n in range(1, key.count(".") + 2))
    }, "the README documents keys values.yaml does not have"


def test_exporter_as_root_is_explicit() -> None:
    daemonset = one(render(extra=["--set", "exporter.runAsUser=0"]), "DaemonSet")
    context = pod_spec(daemonset)["securityContext"]
    assert context["runAsUser"] == 0
    assert context["runAsNonRoot"] is False
    assert container(daemonset)["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_disabled_alerts_are_left_out_and_typos_refused() -> None:
    monitoring = f"--api-versions={MONITORING_API}"
    rule = one(
        render(
            extra=[
                monitoring,
                "--set-json",
                'monitoring.disabledAlerts=["KubepulseQuotaNearlyExhausted"]',
            ]
        ),
        "PrometheusRule",
    )
    alerts = [r.get("alert") for group in rule["spec"]["groups"] for r in group["rules"]]
    source = yaml.safe_load((CHART / "rules" / "kubepulse.rules.yaml").read_text())
    every = [r.get("alert") for group in source["groups"] for r in group["rules"]]
    assert "KubepulseQuotaNearlyExhausted" in every
    assert alerts == [alert for alert in every if alert != "KubepulseQuotaNearlyExhausted"]
    done = helm(
        "template",
        RELEASE,
        str(CHART),
        monitoring,
        "--set-json",
        'monitoring.disabledAlerts=["Nope"]',
    )
    assert done.returncode != 0
    assert "Nope is not an alert" in done.stderr

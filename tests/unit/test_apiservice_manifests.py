"""The install-without-Helm manifests (``apiservice/``) and the example HPAs
(``examples/hpa/``) agree with the code they deploy and configure.

- Every manifest parses, and every object is labelled and named as the others expect.
- The Deployment's arguments are real adapter flags (``adapter.config.build_parser``)
  with values the adapter's own validation accepts, and name the Service, the Secret and
  the port the other manifests use.
- The RBAC grants at least what the e2e harness (``tests/cluster/adapter_service.py``,
  whose adapter the e2e tier proves works) grants: the same ClusterRole rules to the
  same subjects, and the same bindings to Kubernetes' own roles.
- The APIServices are exactly the group versions the adapter's discovery serves, with
  the preferred version first.
- ``bootstrap-tls.sh`` is valid POSIX sh and its defaults name these manifests' objects.
- Every metric an example HPA asks for parses with the adapter's vocabulary
  (``kubepulse.metricquery``), the v2beta2 variants say what the v2 ones say, and the
  docs reference each example.

The server-side dry-runs and the bootstrap against a real kube-apiserver are in
``tests/e2e/test_apiservice_manifests.py``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapter.api.common import CUSTOM_GROUP, CUSTOM_VERSIONS, EXTERNAL_GROUP, EXTERNAL_VERSIONS
from adapter.config import build_parser, load_config
from kubepulse.analysis.resources import GROUP as ANALYSIS_GROUP
from kubepulse.analysis.resources import VERSION as ANALYSIS_VERSION
from kubepulse.metricquery import is_metric_name, parse_metric_request
from tests.cluster.adapter_service import APISERVICES as HARNESS_APISERVICES
from tests.cluster.adapter_service import _rbac

ROOT = Path(__file__).resolve().parents[2]
APISERVICE_DIR = ROOT / "apiservice"
HPA_DIR = ROOT / "examples" / "hpa"
NAMESPACE = "kubepulse"
SERVICE = "kubepulse-adapter"
SECRET = "kubepulse-adapter-tls"
ADAPTER_ACCOUNT = ("ServiceAccount", "kubepulse-adapter")
HPA_ACCOUNT = ("ServiceAccount", "horizontal-pod-autoscaler", "kube-system")

Grant = tuple[tuple[str, ...], str, str, str]


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _manifests() -> list[dict[str, Any]]:
    return [doc for path in sorted(APISERVICE_DIR.glob("*.yaml")) for doc in _documents(path)]


def _only(kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in _manifests() if doc["kind"] == kind]
    return found


def _subject(subject: dict[str, str]) -> tuple[str, ...]:
    # The harness puts the adapter's ServiceAccount in a random namespace of its own.
    if (subject["kind"], subject["name"]) == ADAPTER_ACCOUNT:
        return ADAPTER_ACCOUNT
    return (subject["kind"], subject["name"], subject.get("namespace", ""))


def _grants(objects: Iterable[dict[str, Any]]) -> set[Grant]:
    """(subject, apiGroup, resource, verb) granted through the ClusterRoles in ``objects``."""
    roles = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "ClusterRole"}
    grants: set[Grant] = set()
    for binding in objects:
        if binding["kind"] != "ClusterRoleBinding" or binding["roleRef"]["name"] not in roles:
            continue
        for rule in roles[binding["roleRef"]["name"]]["rules"]:
            for subject in binding["subjects"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            grants.add((_subject(subject), group, resource, verb))
    return grants


def _builtin_bindings(objects: Iterable[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """Bindings to roles the manifests do not define (Kubernetes' own)."""
    defined = {obj["metadata"]["name"] for obj in objects if obj["kind"] in ("ClusterRole", "Role")}
    return {
        (
            obj["kind"],
            obj["metadata"].get("namespace", ""),
            obj["roleRef"]["kind"],
            obj["roleRef"]["name"],
            _subject(subject),
        )
        for obj in objects
        if obj["kind"] in ("ClusterRoleBinding", "RoleBinding")
        and obj["roleRef"]["name"] not in defined
        for subject in obj["subjects"]
    }


# ---------------------------------------------------------------- the manifests


def test_every_manifest_parses_and_is_labelled() -> None:
    manifests = _manifests()
    kinds = sorted(doc["kind"] for doc in manifests)
    assert kinds == sorted(
        ["Namespace", "ServiceAccount", "Service", "Deployment"]
        + ["APIService"] * 4
        + ["ClusterRole"] * 2
        + ["ClusterRoleBinding"] * 3
        + ["RoleBinding"]
    )
    for doc in manifests:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kubepulse", doc
        if doc["kind"] in ("ServiceAccount", "Service", "Deployment"):
            assert doc["metadata"]["namespace"] == NAMESPACE
    assert _only("Namespace")["metadata"]["name"] == NAMESPACE


def test_deployment_uses_only_real_adapter_flags() -> None:
    container = _only("Deployment")["spec"]["template"]["spec"]["containers"][0]
    arguments = list(container["args"])
    assert arguments[0] == "serve"
    known = set(build_parser()._option_string_actions)
    flags = [argument.split("=", 1)[0] for argument in arguments[1:]]
    assert flags
    assert all(flag.startswith("--") for flag in flags)
    assert not set(flags) - known, f"not adapter flags: {sorted(set(flags) - known)}"
    # The values pass the adapter's own validation (the TLS files exist only in the pod).
    without_files = [a for a in arguments[1:] if not a.startswith(("--tls-cert", "--tls-priv"))]
    config = load_config(without_files, environ={})
    assert config.tls.service_name == SERVICE
    assert config.tls.service_namespace == NAMESPACE
    assert config.server.port == container["ports"][0]["containerPort"] == 6443


def test_deployment_service_and_secret_fit_together() -> None:
    deployment, service = _only("Deployment"), _only("Service")
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert set(service["spec"]["selector"].items()) <= set(pod["metadata"]["labels"].items())
    (port,) = service["spec"]["ports"]
    assert port["port"] == 443
    container = pod["spec"]["containers"][0]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    assert pod["spec"]["serviceAccountName"] == _only("ServiceAccount")["metadata"]["name"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    secrets = {
        v["name"]: v["secret"]["secretName"] for v in pod["spec"]["volumes"] if "secret" in v
    }
    assert secrets == {"tls": SECRET}
    arguments = dict(a.split("=", 1) for a in container["args"][1:])
    assert arguments["--tls-cert-file"] == f"{mounts['tls']}/tls.crt"
    assert arguments["--tls-private-key-file"] == f"{mounts['tls']}/tls.key"
    checkpoint_dir = str(Path(arguments["--checkpoint-path"]).parent)
    assert mounts["checkpoint"] == checkpoint_dir
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False


def test_rbac_grants_what_the_e2e_harness_grants() -> None:
    harness = [manifest for manifest, _ in _rbac("e2e", "e2e-prefix")]
    ours = _manifests()
    missing = _grants(harness) - _grants(ours)
    assert not missing, f"the manifests do not grant: {sorted(missing)}"
    assert _builtin_bindings(harness) <= _builtin_bindings(ours)
    # Spelled out, the two every aggregated API server needs and the HPA controller's.
    builtin = _builtin_bindings(ours)
    assert (
        "ClusterRoleBinding", "", "ClusterRole", "system:auth-delegator", ADAPTER_ACCOUNT
    ) in builtin  # fmt: skip
    assert (
        "RoleBinding", "kube-system", "Role", "extension-apiserver-authentication-reader",
        ADAPTER_ACCOUNT,
    ) in builtin  # fmt: skip
    for group in (CUSTOM_GROUP, EXTERNAL_GROUP):
        assert (HPA_ACCOUNT, group, "*", "get") in _grants(ours)


def test_rbac_subjects_are_the_manifests_service_account() -> None:
    account = _only("ServiceAccount")["metadata"]
    for doc in _manifests():
        for subject in doc.get("subjects", []):
            if subject["name"] == account["name"]:
                assert subject["namespace"] == account["namespace"]


def test_apiservices_are_the_group_versions_the_adapter_serves() -> None:
    apiservices = [doc for doc in _manifests() if doc["kind"] == "APIService"]
    served = {
        (CUSTOM_GROUP, version) for version in CUSTOM_VERSIONS
    } | {(EXTERNAL_GROUP, version) for version in EXTERNAL_VERSIONS} | {
        (ANALYSIS_GROUP, ANALYSIS_VERSION)
    }  # fmt: skip
    registered = {(a["spec"]["group"], a["spec"]["version"]) for a in apiservices}
    assert registered == served
    for apiservice in apiservices:
        spec = apiservice["spec"]
        assert apiservice["metadata"]["name"] == f"{spec['version']}.{spec['group']}"
        assert spec["service"] == {"name": SERVICE, "namespace": NAMESPACE, "port": 443}
        assert "insecureSkipTLSVerify" not in spec
        assert spec["caBundle"] == ""  # the bootstrap's to fill
    priority = {(a["spec"]["group"], a["spec"]["version"]): a["spec"] for a in apiservices}
    custom = [priority[(CUSTOM_GROUP, version)]["versionPriority"] for version in CUSTOM_VERSIONS]
    assert custom == sorted(custom, reverse=True), "the adapter's preferred version must win"
    assert {
        (group, version, spec["versionPriority"]) for (group, version), spec in priority.items()
    } == set(HARNESS_APISERVICES)


# ---------------------------------------------------------------- bootstrap-tls.sh


def _script_default(name: str) -> str:
    text = (APISERVICE_DIR / "bootstrap-tls.sh").read_text()
    match = re.search(rf"^{name}=\$\{{{name}:-(.*)\}}$", text, re.MULTILINE)
    assert match, f"bootstrap-tls.sh sets no default for {name}"
    return match.group(1)


def test_bootstrap_script_is_posix_sh_with_matching_defaults() -> None:
    shell = shutil.which("dash") or shutil.which("sh")
    assert shell is not None
    checked = subprocess.run(
        [shell, "-n", str(APISERVICE_DIR / "bootstrap-tls.sh")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    assert _script_default("NAMESPACE") == NAMESPACE
    assert _script_default("SERVICE") == SERVICE
    assert _script_default("SECRET") == SECRET
    names = {doc["metadata"]["name"] for doc in _manifests() if doc["kind"] == "APIService"}
    assert set(_script_default("APISERVICES").split()) == names


def test_bootstrap_script_refuses_bad_usage() -> None:
    result = subprocess.run(
        ["sh", str(APISERVICE_DIR / "bootstrap-tls.sh"), "--namespace"],
        check=False,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "environment variables" in result.stderr


# ---------------------------------------------------------------- example HPAs


def _examples(version_dir: Path) -> dict[str, dict[str, Any]]:
    return {path.name: _documents(path)[0] for path in sorted(version_dir.glob("*.yaml"))}


def _selector_text(selector: dict[str, Any] | None) -> str:
    """A LabelSelector as the HPA controller sends it (``metricLabelSelector``)."""
    if not selector:
        return ""
    parts = [f"{key}={value}" for key, value in selector.get("matchLabels", {}).items()]
    for expression in selector.get("matchExpressions", []):
        operator = expression["operator"]
        if operator in ("In", "NotIn"):
            values = ",".join(expression["values"])
            parts.append(f"{expression['key']} {operator.lower()} ({values})")
        elif operator == "Exists":
            parts.append(expression["key"])
        else:
            parts.append(f"!{expression['key']}")
    return ",".join(parts)


def _metrics(hpa: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for metric in hpa["spec"]["metrics"]:
        source = metric[metric["type"].lower()]
        found.append((source["metric"]["name"], _selector_text(source["metric"].get("selector"))))
    return found


V2_EXAMPLES = _examples(HPA_DIR)


def test_examples_cover_every_case() -> None:
    assert set(V2_EXAMPLES) == {
        "latency-p95.yaml",
        "requests-per-second.yaml",
        "queue-depth.yaml",
        "forecast.yaml",
        "external.yaml",
    }
    types = {metric["type"] for hpa in V2_EXAMPLES.values() for metric in hpa["spec"]["metrics"]}
    assert types == {"Pods", "Object", "External"}
    assert all(hpa["apiVersion"] == "autoscaling/v2" for hpa in V2_EXAMPLES.values())


@pytest.mark.parametrize("name", sorted(V2_EXAMPLES))
def test_example_metrics_parse_with_the_adapters_vocabulary(name: str) -> None:
    for metric_name, selector in _metrics(V2_EXAMPLES[name]):
        parsed = parse_metric_request(metric_name, selector)
        assert is_metric_name(parsed.name), parsed.name


def test_examples_ask_for_the_statistics_their_docs_promise() -> None:
    def statistic(name: str) -> str:
        ((metric, selector),) = _metrics(V2_EXAMPLES[name])
        return parse_metric_request(metric, selector).statistic.describe()

    assert "p95" in statistic("latency-p95.yaml")
    assert "rate" in statistic("requests-per-second.yaml")
    assert "max" in statistic("queue-depth.yaml")
    assert "holt" in statistic("forecast.yaml")


def test_v2beta2_variants_say_what_the_v2_examples_say() -> None:
    old = _examples(HPA_DIR / "v2beta2")
    assert set(old) == set(V2_EXAMPLES)
    for name, hpa in old.items():
        assert hpa["apiVersion"] == "autoscaling/v2beta2"
        assert {**hpa, "apiVersion": "autoscaling/v2"} == V2_EXAMPLES[name], name


def test_docs_reference_every_example() -> None:
    recipes = (ROOT / "docs" / "hpa-recipes.md").read_text()
    for path in sorted(HPA_DIR.rglob("*.yaml")):
        relative = path.relative_to(ROOT).as_posix()
        assert relative in recipes, f"docs/hpa-recipes.md does not mention {relative}"


# ---------------------------------------------------------------- the cert-manager path

_FAKE_KUBECTL = """#!/bin/sh
# Records every call; answers as a cluster with cert-manager's CRDs and the APIServices.
printf '%s\\n' "$*" >> "$CALLS"
case "$1" in
    apply) cat >> "$APPLIED"; printf -- '---\\n' >> "$APPLIED" ;;
esac
exit 0
"""


def test_bootstrap_with_cert_manager_issues_a_certificate_and_annotates(tmp_path: Path) -> None:
    """The cert-manager way, against a recording stand-in for kubectl: cert-manager (its
    controller and cainjector) cannot run here, and the e2e tier has no cert-manager."""
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(_FAKE_KUBECTL)
    kubectl.chmod(0o755)
    calls, applied = tmp_path / "calls", tmp_path / "applied.yaml"
    result = subprocess.run(
        ["sh", str(APISERVICE_DIR / "bootstrap-tls.sh")],
        check=False,
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "KUBECTL": str(kubectl),
            "CALLS": str(calls),
            "APPLIED": str(applied),
            "NAMESPACE": "metrics",
        },
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "cert-manager found" in result.stderr
    objects = {(doc["kind"], doc["metadata"]["name"]): doc for doc in _documents(applied)}
    assert set(objects) == {
        ("Issuer", "kubepulse-adapter-selfsigned"),
        ("Certificate", "kubepulse-adapter-ca"),
        ("Issuer", "kubepulse-adapter-ca"),
        ("Certificate", SECRET),
    }
    assert all(doc["metadata"]["namespace"] == "metrics" for doc in objects.values())
    ca = objects[("Certificate", "kubepulse-adapter-ca")]["spec"]
    assert ca["isCA"] is True
    assert (
        objects[("Issuer", "kubepulse-adapter-ca")]["spec"]["ca"]["secretName"] == ca["secretName"]
    )
    serving = objects[("Certificate", SECRET)]["spec"]
    assert serving["secretName"] == SECRET
    assert serving["issuerRef"] == {"name": "kubepulse-adapter-ca", "kind": "Issuer"}
    assert "kubepulse-adapter.metrics.svc" in serving["dnsNames"]
    assert (serving["duration"], serving["renewBefore"]) == ("8760h", "720h")
    annotated = [
        line.split() for line in calls.read_text().splitlines() if line.startswith("annotate ")
    ]
    names = {doc["metadata"]["name"] for doc in _manifests() if doc["kind"] == "APIService"}
    assert {words[3] for words in annotated} == names
    assert all(
        words[4] == f"cert-manager.io/inject-ca-from=metrics/{SECRET}" for words in annotated
    )
    assert "patch" not in calls.read_text()  # cainjector fills the bundles, not the script


def test_the_optional_resource_metrics_apiservice_points_at_the_adapter() -> None:
    documents = _documents(APISERVICE_DIR / "optional" / "resource-metrics.yaml")
    apiservice = next(doc for doc in documents if doc["kind"] == "APIService")
    assert apiservice["metadata"]["name"] == "v1beta1.metrics.k8s.io"
    assert (apiservice["spec"]["group"], apiservice["spec"]["version"]) == (
        "metrics.k8s.io",
        "v1beta1",
    )
    service = _only("Service")
    assert apiservice["spec"]["service"] == {
        "name": service["metadata"]["name"],
        "namespace": service["metadata"]["namespace"],
        "port": 443,
    }
    assert load_config(["--resource-metrics-api"], environ={}).resource_metrics.enabled

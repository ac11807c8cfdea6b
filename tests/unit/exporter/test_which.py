"""``kubepulse-exporter which``: processes and cgroup paths to pods, runtime overhead or host.

Processes come from the committed fake procfs trees (``tests/fixtures/proc`` and the
whole node in ``tests/fixtures/node-scan``); names come from the pod objects in
``tests/fixtures/objects`` served by a small fake API server on loopback, read through
the real Kubernetes client and a real kubeconfig.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from exporter.__main__ import main as exporter_main
from exporter.which import (
    ProcessNotFoundError,
    main,
    name_pods,
    parse_target,
    which_cgroup,
    which_process,
)
from kubepulse.model import Pod
from tests.unit.exporter.fakeapi import FakeApiServer, fake_api_server

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PROC = str(FIXTURES / "proc")
NODE_PROC = str(FIXTURES / "node-scan" / "proc")
OBJECTS = FIXTURES / "objects"

STOREFRONT_UID = "b46bd9c9-f018-48ec-97b9-722e1f463eae"
STOREFRONT_APP = "f09d4f5e2efb518df02a009eea6623150a1876770c23b86035e04375a7df7242"
STOREFRONT_SANDBOX = "ef0d1e66210d7e53301f85444a421ce949f7379138ee78ab79d445809ae5b335"
STOREFRONT_SLICE = (
    "/kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-podb46bd9c9_f018_48ec_97b9_722e1f463eae.slice"
)
ETCD_HASH = "c1087c8a6d3a18291b3235a68ad19128"


def pod_object(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((OBJECTS / f"pod-{name}.json").read_text())
    return loaded


def run(argv: list[str], environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    status = main(argv, environ=environ or {}, stdout=stdout, stderr=stderr)
    return status, stdout.getvalue(), stderr.getvalue()


# ---------------------------------------------------------------- processes


def test_a_container_process() -> None:
    answer = which_process(2051, PROC)

    assert answer.kind == "container"
    assert answer.description == "container"
    assert (answer.pid, answer.comm) == (2051, "nginx")
    assert answer.identity is not None
    assert answer.identity.pod_uid == STOREFRONT_UID
    assert answer.identity.container_id == STOREFRONT_APP
    assert answer.identity.qos_class == "Burstable"
    assert answer.runtime == "containerd"
    assert answer.cgroup_path == f"{STOREFRONT_SLICE}/cri-containerd-{STOREFRONT_APP}.scope"


def test_a_guaranteed_pod_s_process() -> None:
    answer = which_process(3120, PROC)

    assert answer.identity is not None
    assert answer.identity.qos_class == "Guaranteed"
    assert answer.identity.pod_uid == "ae82e945-e595-46e3-aedf-bb9488cd9656"


def test_a_host_process_names_its_group() -> None:
    answer = which_process(1, PROC)

    assert answer.kind == "host"
    assert answer.description == "host process"
    assert answer.identity is None
    assert answer.to_dict()["host_process_group"] == "systemd"
    assert 'group="systemd"' in answer.to_text()


@pytest.mark.parametrize(
    ("pid", "description", "runtime", "component"),
    [
        (1432, "runtime overhead (containerd-shim)", "containerd", "shim"),
        (812, "runtime overhead (containerd)", "containerd", "daemon"),
    ],
)
def test_runtime_overhead(pid: int, description: str, runtime: str, component: str) -> None:
    answer = which_process(pid, PROC)

    assert answer.kind == "runtime_overhead"
    assert answer.description == description
    data = answer.to_dict()
    assert (data["runtime"], data["runtime_component"]) == (runtime, component)
    assert data["pod_uid"] is None


def test_a_kernel_thread() -> None:
    answer = which_process(2, PROC)

    assert answer.kind == "kernel_thread"
    assert answer.comm == "kthreadd"
    assert "not counted" in answer.description


def test_a_sandbox_is_recognised_by_its_pause_process() -> None:
    answer = which_process(2040, NODE_PROC)

    assert answer.kind == "container"
    assert answer.is_sandbox
    assert answer.description.startswith("container: the pod's sandbox")
    assert answer.identity is not None
    assert answer.identity.container_id == STOREFRONT_SANDBOX


def test_a_path_relative_to_a_cgroup_namespace_still_names_the_pod() -> None:
    answer = which_process(2300, NODE_PROC)

    assert answer.identity is not None
    assert answer.identity.pod_uid == "4ab3c5a3-63f3-444f-82bb-a8b9f55b2f3f"
    assert answer.identity.qos_class == "BestEffort"


def test_a_missing_process_says_where_it_looked() -> None:
    with pytest.raises(ProcessNotFoundError) as caught:
        which_process(999_999, PROC)

    message = str(caught.value)
    assert f"no process 999999 under {PROC}" in message
    assert "--proc-root" in message


def test_a_process_that_exits_while_read() -> None:
    # 4242 has only stat and comm left.
    with pytest.raises(ProcessNotFoundError, match=r"process 4242 \(curl\) exited"):
        which_process(4242, PROC)


# ---------------------------------------------------------------- cgroup paths


@pytest.mark.parametrize(
    ("path", "kind", "container_id", "qos"),
    [
        (f"{STOREFRONT_SLICE}/cri-containerd-{STOREFRONT_APP}.scope", "container",
         STOREFRONT_APP, "Burstable"),
        (f"/sys/fs/cgroup{STOREFRONT_SLICE}/cri-containerd-{STOREFRONT_APP}.scope",
         "container", STOREFRONT_APP, "Burstable"),
        (STOREFRONT_SLICE, "pod", None, "Burstable"),
        (f"/sys/fs/cgroup/memory/kubepods/besteffort/pod{STOREFRONT_UID}/{STOREFRONT_APP}",
         "container", STOREFRONT_APP, "BestEffort"),
        (f"/kubepods/pod{STOREFRONT_UID}", "pod", None, "Guaranteed"),
    ],
)  # fmt: skip
def test_pod_cgroup_paths(path: str, kind: str, container_id: str | None, qos: str) -> None:
    answer = which_cgroup(path)

    assert answer.kind == kind
    assert answer.pid is None
    assert answer.identity is not None
    assert answer.identity.pod_uid == STOREFRONT_UID
    assert answer.identity.container_id == container_id
    assert answer.identity.qos_class == qos


def test_a_cgroupfs_container_path_does_not_tell_its_runtime() -> None:
    answer = which_cgroup(f"/kubepods/burstable/pod{STOREFRONT_UID}/{STOREFRONT_APP}")

    assert answer.runtime is None
    assert "runtime       unknown" in answer.to_text()


def test_a_conmon_scope_is_runtime_overhead_not_a_container() -> None:
    container = "26230a97a4f1eb21ac3f8a4e23445fbe975ae5395777968227598440e00e3f5a"
    answer = which_cgroup(f"{STOREFRONT_SLICE}/crio-conmon-{container}.scope")

    assert answer.kind == "runtime_overhead"
    assert answer.description == "runtime overhead (conmon)"


@pytest.mark.parametrize(
    ("path", "kind", "description"),
    [
        ("/system.slice/ssh.service", "host", "host cgroup (not in a pod)"),
        ("/system.slice/crio.service", "runtime_overhead", "runtime overhead (crio)"),
        ("/kubepods.slice/kubepods-burstable.slice", "host", "host cgroup (not in a pod)"),
    ],
)
def test_other_cgroup_paths(path: str, kind: str, description: str) -> None:
    answer = which_cgroup(path)

    assert (answer.kind, answer.description) == (kind, description)


@pytest.mark.parametrize(("text", "target"), [("2051", 2051), (" /x/y ", "/x/y")])
def test_targets(text: str, target: int | str) -> None:
    assert parse_target(text) == target


@pytest.mark.parametrize("text", ["0", "-5", "nginx", ""])
def test_targets_that_are_neither_pid_nor_path(text: str) -> None:
    with pytest.raises(ValueError, match="neither a PID nor a cgroup path"):
        parse_target(text)


# ---------------------------------------------------------------- names


def test_names_of_an_app_container() -> None:
    pods = [Pod.from_api(pod_object("burstable-sidecars")), Pod.from_api(pod_object("guaranteed"))]

    answer = name_pods(which_process(2051, PROC), pods, node_name="worker-2")

    assert answer.names is not None
    assert (answer.names.namespace, answer.names.pod, answer.names.container) == (
        "shop",
        "storefront-5f7b8c9d4-q7lmn",
        "app",
    )
    assert not answer.is_sandbox
    assert answer.lookup is None


def test_a_container_id_no_status_lists_is_the_sandbox() -> None:
    pods = [Pod.from_api(pod_object("burstable-sidecars"))]
    path = f"{STOREFRONT_SLICE}/cri-containerd-{STOREFRONT_SANDBOX}.scope"

    answer = name_pods(which_cgroup(path), pods, node_name="worker-2")

    assert answer.names is not None
    assert answer.names.container is None
    assert answer.is_sandbox
    assert answer.to_dict()["sandbox"] is True


def test_a_static_pod_is_found_by_its_config_hash() -> None:
    pods = [Pod.from_api(pod_object("static-mirror"))]
    path = f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{ETCD_HASH}.slice"

    answer = name_pods(which_cgroup(path), pods, node_name="cp-1")

    assert answer.names is not None
    assert (answer.names.namespace, answer.names.pod) == ("kube-system", "etcd-cp-1")


def test_an_unknown_pod_says_so() -> None:
    answer = name_pods(which_process(2051, PROC), [], node_name="worker-9")

    assert answer.names is None
    assert answer.lookup is not None
    assert f"no pod with UID {STOREFRONT_UID} on node worker-9" in answer.lookup


def test_a_host_answer_needs_no_names() -> None:
    answer = which_process(1, PROC)

    assert name_pods(answer, [], node_name="n") is answer


# ---------------------------------------------------------------- the command


def test_text_output() -> None:
    status, out, err = run(["2051", "--proc-root", PROC])

    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "process       2051 (nginx)"
    assert "belongs to    container" in lines
    assert f"pod UID       {STOREFRONT_UID}" in lines
    assert f"container ID  {STOREFRONT_APP}" in lines
    assert "runtime       containerd" in lines
    assert "QoS class     Burstable" in lines


def test_json_output_and_the_proc_root_variable() -> None:
    status, out, _ = run(["1432", "-o", "json"], {"KUBEPULSE_PROC_ROOT": PROC})

    assert status == 0
    data = json.loads(out)
    assert data["kind"] == "runtime_overhead"
    assert data["description"] == "runtime overhead (containerd-shim)"
    assert data["pid"] == 1432
    assert data["namespace"] is None


def test_a_missing_process_exits_1_with_a_clear_message() -> None:
    status, out, err = run(["999999", "--proc-root", PROC])

    assert (status, out) == (1, "")
    assert err.startswith("kubepulse-exporter which: no process 999999 under ")


@pytest.mark.parametrize("argv", [["nginx"], [], ["1", "-o", "yaml"], ["1", "--proc"]])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    status, out, err = run(argv)

    assert (status, out) == (2, "")
    assert err.startswith("kubepulse-exporter which: ")


def test_this_process_on_this_machine() -> None:
    # The real /proc: whatever this test runs in, the answer is one of the kinds.
    status, out, _ = run([str(__import__("os").getpid()), "-o", "json"])

    assert status == 0
    data = json.loads(out)
    assert data["comm"] == Path(f"/proc/{data['pid']}/comm").read_text().strip()
    assert data["kind"] in {"host", "container", "pod", "runtime_overhead"}


def test_names_through_the_api_server(tmp_path: Path) -> None:
    state = FakeApiServer(
        pods=[pod_object("burstable-sidecars"), pod_object("guaranteed"), pod_object("pending")]
    )
    with fake_api_server(state):
        kubeconfig = state.write_kubeconfig(tmp_path / "kubeconfig")
        status, out, err = run(
            ["2051", "--proc-root", PROC, "--kubeconfig", str(kubeconfig), "-o", "json"],
            {"NODE_NAME": "worker-2"},
        )

    assert (status, err) == (0, "")
    data = json.loads(out)
    assert (data["namespace"], data["pod"], data["container"]) == (
        "shop",
        "storefront-5f7b8c9d4-q7lmn",
        "app",
    )
    assert data["sandbox"] is False
    # One request, for this node's pods only, with the kubeconfig's credentials.
    [(path, query, authorization)] = state.requests
    assert path == "/api/v1/pods"
    assert query["fieldSelector"] == ["spec.nodeName=worker-2"]
    assert authorization == "Bearer fake-token"


def test_kubeconfig_from_the_environment_and_text_names(tmp_path: Path) -> None:
    state = FakeApiServer(pods=[pod_object("burstable-sidecars")])
    with fake_api_server(state):
        kubeconfig = state.write_kubeconfig(tmp_path / "kubeconfig")
        status, out, _ = run(
            ["2051", "--proc-root", PROC, "--node-name", "worker-2"],
            {"KUBECONFIG": str(kubeconfig)},
        )

    assert status == 0
    assert "namespace     shop" in out.splitlines()
    assert "container     app" in out.splitlines()


def test_a_failed_lookup_is_reported_and_the_rest_answered(tmp_path: Path) -> None:
    state = FakeApiServer(fail_with=403)
    with fake_api_server(state):
        kubeconfig = state.write_kubeconfig(tmp_path / "kubeconfig")
        status, out, _ = run(
            ["2051", "--proc-root", PROC, "--kubeconfig", str(kubeconfig), "-o", "json"],
            {"NODE_NAME": "worker-2"},
        )

    assert status == 0
    data = json.loads(out)
    assert data["pod_uid"] == STOREFRONT_UID
    assert data["namespace"] is None
    assert data["lookup"].startswith("not looked up: (403)")


def test_no_api_and_no_credentials_mean_no_request(tmp_path: Path) -> None:
    state = FakeApiServer(pods=[pod_object("burstable-sidecars")])
    with fake_api_server(state):
        kubeconfig = state.write_kubeconfig(tmp_path / "kubeconfig")
        run(["2051", "--proc-root", PROC, "--kubeconfig", str(kubeconfig), "--no-api"])
        # No --kubeconfig, no KUBECONFIG, not in a pod: nothing to ask.
        status, out, _ = run(["2051", "--proc-root", PROC])

    assert state.requests == []
    assert status == 0
    assert "namespace" not in out


def test_the_process_entry_point_runs_which(capsys: pytest.CaptureFixture[str]) -> None:
    status = exporter_main(["which", "1", "--proc-root", PROC])

    assert status == 0
    assert "belongs to    host process" in capsys.readouterr().out.splitlines()

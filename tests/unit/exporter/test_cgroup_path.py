"""identify_cgroup, stats_cgroup_path, classify_runtime_helper and parse_proc_cgroup."""

from __future__ import annotations

import pytest

import exporter
from exporter.cgroup_path import (
    CgroupIdentity,
    ContainerRuntime,
    MalformedFileError,
    ProcCgroups,
    RuntimeHelper,
    classify_runtime_helper,
    identify_cgroup,
    parse_proc_cgroup,
    stats_cgroup_path,
)
from kubepulse.errors import KubepulseValueError
from kubepulse.model import QosClass

# The storefront pod and its app container of tests/fixtures/objects/pod-burstable-sidecars.json.
UID = "b46bd9c9-f018-48ec-97b9-722e1f463eae"
UID_ = UID.replace("-", "_")
CID = "f09d4f5e2efb518df02a009eea6623150a1876770c23b86035e04375a7df7242"
# A second pod and container, for nested layouts.
UID2 = "ae82e945-e595-46e3-aedf-bb9488cd9656"
CID2 = "b42b8e9386c52cb4caa8865f53c3ea7d7b441940ebc1270905a7e61bc3fea3f4"
# The static etcd pod of pod-static-mirror.json: its cgroup is named after the config hash.
STATIC_HASH = "c1087c8a6d3a18291b3235a68ad19128"
ETCD = "fabe7d1c89391892e0810b2ba1155d5af3fdb09833f507c18c03a2c8b426027f"
KIND_NODE = "4c9e2f0a7b3d1e5f6a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f"

BURSTABLE_SLICE = f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice"
BESTEFFORT_SLICE = f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice"
GUARANTEED_SLICE = f"/kubepods.slice/kubepods-pod{UID_}.slice"


def container(
    runtime: ContainerRuntime = "unknown",
    qos: QosClass = "Burstable",
    uid: str = UID,
    cid: str = CID,
) -> CgroupIdentity:
    return CgroupIdentity(
        pod_uid=uid,
        container_id=cid,
        runtime=runtime,
        qos_class=qos,
        is_pod_level=False,
    )


def pod(qos: QosClass = "Burstable", uid: str = UID) -> CgroupIdentity:
    return CgroupIdentity(
        pod_uid=uid,
        container_id=None,
        runtime="unknown",
        qos_class=qos,
        is_pod_level=True,
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # cgroupfs driver (cgroup v1 or v2): bare IDs, runtime unknown (containerd or docker).
        pytest.param(f"/kubepods/burstable/pod{UID}/{CID}", container(), id="cgroupfs-burstable"),
        pytest.param(
            f"/kubepods/besteffort/pod{UID}/{CID}",
            container(qos="BestEffort"),
            id="cgroupfs-besteffort",
        ),
        pytest.param(
            f"/kubepods/pod{UID}/{CID}", container(qos="Guaranteed"), id="cgroupfs-guaranteed"
        ),
        pytest.param(f"/kubepods/burstable/pod{UID}", pod(), id="cgroupfs-pod-level"),
        pytest.param(
            f"/kubepods/pod{UID}", pod(qos="Guaranteed"), id="cgroupfs-guaranteed-pod-level"
        ),
        pytest.param(
            f"/sys/fs/cgroup/memory/kubepods/burstable/pod{UID}/{CID}",
            container(),
            id="v1-memory-mount-prefix",
        ),
        pytest.param(
            f"/sys/fs/cgroup/cpu,cpuacct/kubepods/pod{UID}/{CID}",
            container(qos="Guaranteed"),
            id="v1-cpu-cpuacct-mount-prefix",
        ),
        pytest.param(
            f"/kubepods/burstable/pod{UID}/{CID}/", container(), id="cgroupfs-trailing-slash"
        ),
        pytest.param(
            f"/kubepods/burstable/pod{UID}/crio-{CID}",
            container("cri-o"),
            id="cgroupfs-crio",
        ),
        # systemd driver: the runtime is in the scope name, the UID uses underscores.
        pytest.param(
            f"{BURSTABLE_SLICE}/cri-containerd-{CID}.scope",
            container("containerd"),
            id="systemd-containerd-burstable",
        ),
        pytest.param(
            f"{BESTEFFORT_SLICE}/cri-containerd-{CID}.scope",
            container("containerd", "BestEffort"),
            id="systemd-containerd-besteffort",
        ),
        pytest.param(
            f"{GUARANTEED_SLICE}/cri-containerd-{CID}.scope",
            container("containerd", "Guaranteed"),
            id="systemd-containerd-guaranteed",
        ),
        pytest.param(BURSTABLE_SLICE, pod(), id="systemd-pod-level"),
        pytest.param(BESTEFFORT_SLICE, pod("BestEffort"), id="systemd-besteffort-pod-level"),
        pytest.param(GUARANTEED_SLICE, pod("Guaranteed"), id="systemd-guaranteed-pod-level"),
        pytest.param(
            f"/sys/fs/cgroup{BURSTABLE_SLICE}/cri-containerd-{CID}.scope",
            container("containerd"),
            id="v2-unified-mount-prefix",
        ),
        pytest.param(f"{BURSTABLE_SLICE}/crio-{CID}.scope", container("cri-o"), id="systemd-crio"),
        pytest.param(
            f"{BURSTABLE_SLICE}/crio-{CID}.scope/container",
            container("cri-o"),
            id="crio-nested-container-subgroup",
        ),
        pytest.param(
            f"{BURSTABLE_SLICE}/docker-{CID}.scope", container("docker"), id="systemd-docker"
        ),
        pytest.param(
            f"{GUARANTEED_SLICE}/isulad-{CID}.scope",
            container("unknown", "Guaranteed"),
            id="systemd-unknown-runtime-prefix",
        ),
        # Clusters in containers: kind's cgroup root, docker-in-docker nodes, custom roots.
        pytest.param(
            "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
            f"kubelet-kubepods-besteffort-pod{UID_}.slice/cri-containerd-{CID}.scope",
            container("containerd", "BestEffort"),
            id="kind-systemd-besteffort",
        ),
        pytest.param(
            "/kubelet.slice/kubelet-kubepods.slice/"
            f"kubelet-kubepods-pod{UID_}.slice/cri-containerd-{CID}.scope",
            container("containerd", "Guaranteed"),
            id="kind-systemd-guaranteed",
        ),
        pytest.param(
            f"/docker/{KIND_NODE}/kubepods/burstable/pod{UID}/{CID}",
            container(),
            id="docker-in-docker-v1",
        ),
        pytest.param(
            f"/kubelet/kubepods/besteffort/pod{UID}/{CID}",
            container(qos="BestEffort"),
            id="cgroupfs-custom-cgroup-root",
        ),
        pytest.param(
            f"/../../kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/"
            f"cri-containerd-{CID}.scope",
            container("containerd"),
            id="relative-to-cgroup-namespace",
        ),
        # Static pods: the UID is the kubelet's 32-hex config hash.
        pytest.param(
            f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{STATIC_HASH}.slice/"
            f"cri-containerd-{ETCD}.scope",
            container("containerd", uid=STATIC_HASH, cid=ETCD),
            id="static-pod-systemd",
        ),
        pytest.param(
            f"/kubepods/burstable/pod{STATIC_HASH}/{ETCD}",
            container(uid=STATIC_HASH, cid=ETCD),
            id="static-pod-cgroupfs",
        ),
        # A container's own sub-cgroups (a kubelet inside a pod) belong to that container.
        pytest.param(
            f"/kubepods/burstable/pod{UID}/{CID}/kubepods/pod{UID2}/{CID2}",
            container(),
            id="nested-cluster-inside-a-pod",
        ),
        # Not in a pod.
        pytest.param("/", None, id="root"),
        pytest.param("", None, id="empty"),
        pytest.param("/init.scope", None, id="init-scope"),
        pytest.param("/system.slice/containerd.service", None, id="system-slice"),
        pytest.param("/user.slice/user-1000.slice/session-3.scope", None, id="user-slice"),
        pytest.param("/kubepods.slice", None, id="kubepods-slice-only"),
        pytest.param("/kubepods.slice/kubepods-burstable.slice", None, id="qos-slice-only"),
        pytest.param("/kubepods/burstable", None, id="qos-dir-only"),
        pytest.param(f"/system.slice/docker-{CID}.scope", None, id="docker-outside-kubernetes"),
        pytest.param(f"/system.slice/pod{UID}/{CID}", None, id="pod-dir-without-kubepods"),
        pytest.param(
            f"/kubepods.slice/notkubepods-pod{UID_}.slice", None, id="kubepods-not-a-word"
        ),
        pytest.param(
            f"{BURSTABLE_SLICE}/crio-conmon-{CID}.scope", None, id="crio-conmon-not-a-container"
        ),
        pytest.param(
            f"/kubepods/burstable/pod{UID}/crio-conmon-{CID}", None, id="cgroupfs-crio-conmon"
        ),
        pytest.param(f"/kubepods/burstable/pod{UID}/{CID[:12]}", None, id="short-container-id"),
        pytest.param(f"{BURSTABLE_SLICE}/something-else", None, id="unknown-child-of-pod"),
    ],
)
def test_identify_cgroup(path: str, expected: CgroupIdentity | None) -> None:
    assert identify_cgroup(path) == expected


def test_crio_scope_and_its_container_subgroup_are_one_identity() -> None:
    scope = identify_cgroup(f"{BURSTABLE_SLICE}/crio-{CID}.scope")
    subgroup = identify_cgroup(f"{BURSTABLE_SLICE}/crio-{CID}.scope/container")
    assert scope is not None
    assert scope == subgroup
    assert len({scope, subgroup}) == 1, "identities are usable as dict keys"


def test_the_identity_is_frozen() -> None:
    identity = container()
    with pytest.raises(AttributeError):
        identity.pod_uid = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(
            f"{BURSTABLE_SLICE}/crio-{CID}.scope/container",
            f"{BURSTABLE_SLICE}/crio-{CID}.scope",
            id="crio-subgroup-to-scope",
        ),
        pytest.param(
            f"/kubepods/burstable/pod{UID}/{CID}/kubepods/pod{UID2}/{CID2}",
            f"/kubepods/burstable/pod{UID}/{CID}",
            id="container-sub-cgroups-to-container",
        ),
        pytest.param(
            f"/kubepods/burstable/pod{UID}/{CID}/",
            f"/kubepods/burstable/pod{UID}/{CID}",
            id="trailing-slash",
        ),
        pytest.param(BURSTABLE_SLICE, BURSTABLE_SLICE, id="pod-level-unchanged"),
        pytest.param(
            f"/sys/fs/cgroup/memory/kubepods/pod{UID}/{CID}",
            f"/sys/fs/cgroup/memory/kubepods/pod{UID}/{CID}",
            id="prefix-kept",
        ),
        pytest.param(
            f"/../../kubepods-pod{UID_}.slice/docker-{CID}.scope/sub",
            f"/../../kubepods-pod{UID_}.slice/docker-{CID}.scope",
            id="namespace-relative-prefix-kept",
        ),
        pytest.param("/system.slice/containerd.service", None, id="host"),
        pytest.param(f"{BURSTABLE_SLICE}/crio-conmon-{CID}.scope", None, id="conmon"),
    ],
)
def test_stats_cgroup_path(path: str, expected: str | None) -> None:
    assert stats_cgroup_path(path) == expected


CONMON = RuntimeHelper("cri-o", "conmon")
SHIM = RuntimeHelper("containerd", "shim")
CONTAINERD = RuntimeHelper("containerd", "daemon")
CRIO = RuntimeHelper("cri-o", "daemon")
DOCKER = RuntimeHelper("docker", "daemon")


@pytest.mark.parametrize(
    ("path", "comm", "expected"),
    [
        pytest.param(
            f"{BURSTABLE_SLICE}/crio-conmon-{CID}.scope", "conmon", CONMON, id="conmon-pod"
        ),
        pytest.param(
            f"/system.slice/crio-conmon-{CID}.scope", "conmon", CONMON, id="conmon-system"
        ),
        pytest.param(
            f"/kubepods/burstable/pod{UID}/crio-conmon-{CID}",
            "conmon",
            CONMON,
            id="conmon-cgroupfs",
        ),
        pytest.param("/system.slice/crio.service", "conmon", CONMON, id="conmon-by-name"),
        pytest.param("/system.slice/containerd.service", "containerd-shim", SHIM, id="shim"),
        pytest.param("/", "containerd-shim", SHIM, id="shim-v1-root"),
        pytest.param("/system.slice/containerd.service", "containerd", CONTAINERD, id="containerd"),
        pytest.param("/system.slice/crio.service", "crio", CRIO, id="crio"),
        pytest.param("/system.slice/docker.service", "dockerd", DOCKER, id="dockerd"),
        pytest.param("/system.slice/cri-docker.service", "cri-dockerd", DOCKER, id="cri-dockerd"),
        pytest.param("/system.slice/containerd.service", "runc", CONTAINERD, id="runc-in-service"),
        pytest.param("/system.slice/crio.service", "iptables", CRIO, id="helper-in-crio-service"),
        pytest.param(
            f"/kubepods/burstable/pod{UID}/{CID}", "containerd", None, id="containerd-in-a-pod"
        ),
        pytest.param(
            f"{BURSTABLE_SLICE}/cri-containerd-{CID}.scope", "dockerd", None, id="dind-pod"
        ),
        pytest.param("/system.slice/kubelet.service", "kubelet", None, id="kubelet"),
        pytest.param("/system.slice/sshd.service", "sshd", None, id="sshd"),
        pytest.param("/init.scope", "systemd", None, id="init"),
        pytest.param("/user.slice/user-1000.slice/session-3.scope", "bash", None, id="user"),
        pytest.param("/", "kworker/0:1", None, id="kernel-thread"),
    ],
)
def test_classify_runtime_helper(path: str, comm: str, expected: RuntimeHelper | None) -> None:
    assert classify_runtime_helper(path, comm) == expected


V1_LINES = f"""\
12:pids:/kubepods/burstable/pod{UID}/{CID}
11:hugetlb:/kubepods/burstable/pod{UID}/{CID}
10:net_cls,net_prio:/kubepods/burstable/pod{UID}/{CID}
9:cpuset:/kubepods/burstable/pod{UID}/{CID}
8:perf_event:/kubepods/burstable/pod{UID}/{CID}
7:devices:/kubepods/burstable/pod{UID}/{CID}
6:freezer:/kubepods/burstable/pod{UID}/{CID}
5:blkio:/kubepods/burstable/pod{UID}/{CID}
4:cpu,cpuacct:/kubepods/burstable/pod{UID}/{CID}
3:memory:/kubepods/burstable/pod{UID}/{CID}
2:rdma:/
1:name=systemd:/kubepods/burstable/pod{UID}/{CID}
"""
V1_PATH = f"/kubepods/burstable/pod{UID}/{CID}"
SYSTEMD_PATH = f"{BURSTABLE_SLICE}/cri-containerd-{CID}.scope"


@pytest.mark.parametrize(
    ("text", "path", "unified_path", "mode"),
    [
        pytest.param(f"0::{SYSTEMD_PATH}\n", SYSTEMD_PATH, SYSTEMD_PATH, "v2", id="v2"),
        pytest.param("0::/\n", "/", "/", "v2", id="v2-kernel-thread"),
        pytest.param(V1_LINES, V1_PATH, None, "v1", id="v1-memory-preferred"),
        pytest.param(
            "4:cpu,cpuacct:/a\n3:pids:/b\n1:name=systemd:/c\n",
            "/a",
            None,
            "v1",
            id="v1-without-memory-cpuacct",
        ),
        pytest.param("5:pids:/b\n4:cpu:/a\n", "/a", None, "v1", id="v1-separate-cpu-mount"),
        pytest.param("6:devices:/d\n", "/d", None, "v1", id="v1-first-controller-fallback"),
        pytest.param(
            V1_LINES.replace(V1_PATH, SYSTEMD_PATH) + f"0::{SYSTEMD_PATH}\n",
            SYSTEMD_PATH,
            SYSTEMD_PATH,
            "hybrid",
            id="hybrid-systemd-driver",
        ),
        pytest.param(
            V1_LINES + "0::/system.slice/containerd.service\n",
            V1_PATH,
            "/system.slice/containerd.service",
            "hybrid",
            id="hybrid-cgroupfs-driver-prefers-memory",
        ),
        pytest.param(
            "1:name=systemd:/a\n0::/b\n", "/b", "/b", "hybrid", id="named-only-prefers-unified"
        ),
        pytest.param("1:name=systemd:/a\n", "/a", None, "v1", id="named-only"),
        pytest.param("0::/a:b\n", "/a:b", "/a:b", "v2", id="colon-in-path"),
        pytest.param(
            f"\n0::{SYSTEMD_PATH}\n\n", SYSTEMD_PATH, SYSTEMD_PATH, "v2", id="blank-lines"
        ),
    ],
)
def test_parse_proc_cgroup(text: str, path: str, unified_path: str | None, mode: str) -> None:
    parsed = parse_proc_cgroup(text)
    assert (parsed.path, parsed.unified_path, parsed.mode) == (path, unified_path, mode)
    assert not parsed.deleted
    assert identify_cgroup(parsed.path) == identify_cgroup(path)


def test_parse_proc_cgroup_lists_every_v1_controller() -> None:
    parsed = parse_proc_cgroup(V1_LINES)
    assert parsed.controller_paths["cpuacct"] == V1_PATH
    assert parsed.controller_paths["cpu"] == V1_PATH
    assert parsed.controller_paths["net_prio"] == V1_PATH
    assert parsed.controller_paths["name=systemd"] == V1_PATH
    assert parsed.controller_paths["rdma"] == "/"
    assert len(parsed.controller_paths) == 14


@pytest.mark.parametrize(
    ("text", "path", "deleted", "outside"),
    [
        pytest.param(
            "0::/system.slice/cron.service (deleted)\n",
            "/system.slice/cron.service",
            True,
            False,
            id="deleted",
        ),
        pytest.param(
            f"0::/../../kubepods-pod{UID_}.slice/cri-containerd-{CID}.scope\n",
            f"/../../kubepods-pod{UID_}.slice/cri-containerd-{CID}.scope",
            False,
            True,
            id="outside-namespace",
        ),
        pytest.param("0::/..\n", "/..", False, True, id="parent-of-namespace-root"),
        pytest.param("0::/..hidden\n", "/..hidden", False, False, id="dots-in-a-name"),
    ],
)
def test_parse_proc_cgroup_flags(text: str, path: str, deleted: bool, outside: bool) -> None:
    parsed = parse_proc_cgroup(text)
    assert parsed == ProcCgroups(path=path, unified_path=path, controller_paths={}, deleted=deleted)
    assert parsed.outside_reader_namespace is outside


@pytest.mark.parametrize(
    ("text", "line_number", "reason"),
    [
        pytest.param("", None, "no cgroup line", id="empty"),
        pytest.param("garbage\n", 1, "hierarchy-ID:controller-list:cgroup-path", id="no-colons"),
        pytest.param("0:memory\n", 1, "hierarchy-ID:controller-list:cgroup-path", id="one-colon"),
        pytest.param("0::/a\nx::/b\n", 2, "hierarchy ID is no number", id="bad-id"),
        pytest.param("0::relative\n", 1, "not absolute", id="relative-path"),
    ],
)
def test_parse_proc_cgroup_rejects_malformed(
    text: str, line_number: int | None, reason: str
) -> None:
    with pytest.raises(MalformedFileError) as caught:
        parse_proc_cgroup(text, source="/host/proc/42/cgroup")
    assert caught.value.line_number == line_number
    assert reason in caught.value.reason
    assert "/host/proc/42/cgroup" in str(caught.value)
    assert isinstance(caught.value, KubepulseValueError)
    assert isinstance(caught.value, ValueError)


def test_the_package_exports_a_pinned_surface() -> None:
    assert sorted(exporter.__all__) == [
        "CgroupIdentity",
        "MalformedFileError",
        "RuntimeHelper",
        "classify_runtime_helper",
        "identify_cgroup",
    ]
    assert exporter.identify_cgroup is identify_cgroup
    assert exporter.CgroupIdentity is CgroupIdentity

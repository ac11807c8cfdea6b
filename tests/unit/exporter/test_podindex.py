"""PodIndex joins cgroup identities to the recorded pod objects under tests/fixtures/objects."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from exporter.cgroup_path import CgroupIdentity, identify_cgroup
from exporter.metadata import ClusterView, LocalMetadata, MetadataMode
from exporter.podindex import PodIndex
from kubepulse.model import Pod

OBJECTS = Path(__file__).resolve().parents[2] / "fixtures" / "objects"

STOREFRONT_UID = "b46bd9c9-f018-48ec-97b9-722e1f463eae"
STOREFRONT_SLICE = (
    "/kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-podb46bd9c9_f018_48ec_97b9_722e1f463eae.slice"
)
APP_ID = "f09d4f5e2efb518df02a009eea6623150a1876770c23b86035e04375a7df7242"
STOREFRONT_SANDBOX_ID = "ef0d1e66210d7e53301f85444a421ce949f7379138ee78ab79d445809ae5b335"
ETCD_CONFIG_HASH = "c1087c8a6d3a18291b3235a68ad19128"
ETCD_MIRROR_UID = "228b5681-c56a-410b-b9bf-6adbf21d3fbd"
ETCD_ID = "fabe7d1c89391892e0810b2ba1155d5af3fdb09833f507c18c03a2c8b426027f"
ETCD_SLICE = (
    f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{ETCD_CONFIG_HASH}.slice"
)


def raw_object(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((OBJECTS / f"{name}.json").read_text())
    return loaded


def pod(name: str) -> Pod:
    return Pod.from_api(raw_object(name))


def cluster_view(*pods: Pod) -> ClusterView:
    return ClusterView(
        mode=MetadataMode.CLUSTER, pods={str(item.uid): item for item in pods}, synced=True
    )


def identity(path: str) -> CgroupIdentity:
    found = identify_cgroup(path)
    assert found is not None, path
    return found


def test_a_pod_is_found_by_the_uid_in_its_cgroup_path() -> None:
    index = PodIndex(cluster_view(pod("pod-burstable-sidecars"), pod("pod-guaranteed")))
    found = index.lookup(identity(STOREFRONT_SLICE))
    assert found is not None
    assert found.key == "shop/storefront-5f7b8c9d4-q7lmn"
    assert index.has_cluster


def test_a_container_is_named_by_the_id_in_its_status() -> None:
    index = PodIndex(cluster_view(pod("pod-burstable-sidecars")))
    match = index.match_container(identity(f"{STOREFRONT_SLICE}/cri-containerd-{APP_ID}.scope"))
    assert match is not None
    assert not match.is_sandbox
    assert match.name == "app"
    assert match.status is not None
    assert match.status.runtime == "containerd"
    assert index.container_name(match.pod, APP_ID) == "app"


def test_the_sandbox_matches_no_status_and_is_told_apart() -> None:
    index = PodIndex(cluster_view(pod("pod-burstable-sidecars")))
    match = index.match_container(
        identity(f"{STOREFRONT_SLICE}/cri-containerd-{STOREFRONT_SANDBOX_ID}.scope")
    )
    assert match is not None, "the pod is known, so the container is matched to it"
    assert match.is_sandbox
    assert match.name is None
    assert index.container_name(match.pod, STOREFRONT_SANDBOX_ID) is None


def test_a_static_pod_is_found_through_its_mirror_annotation() -> None:
    etcd = pod("pod-static-mirror")
    index = PodIndex(cluster_view(etcd))
    cgroup = identity(f"{ETCD_SLICE}/cri-containerd-{ETCD_ID}.scope")
    assert cgroup.pod_uid == ETCD_CONFIG_HASH, "the kubelet names the cgroup by the hash"
    match = index.match_container(cgroup)
    assert match is not None
    assert match.pod.uid == ETCD_MIRROR_UID
    assert match.name == "etcd"
    assert index.pod_by_cgroup_uid(ETCD_MIRROR_UID) is etcd


@pytest.mark.parametrize(
    "kept_annotation",
    ["kubernetes.io/config.mirror", "kubernetes.io/config.hash"],
)
def test_either_static_pod_annotation_is_enough(kept_annotation: str) -> None:
    raw = copy.deepcopy(raw_object("pod-static-mirror"))
    annotations = raw["metadata"]["annotations"]
    for key in ("kubernetes.io/config.mirror", "kubernetes.io/config.hash"):
        if key != kept_annotation:
            del annotations[key]
    index = PodIndex(cluster_view(Pod.from_api(raw)))
    found = index.lookup(identity(ETCD_SLICE))
    assert found is not None
    assert found.name == "etcd-cp-1"


def test_a_static_pod_without_its_mirror_yet_is_unknown() -> None:
    index = PodIndex(cluster_view(pod("pod-burstable-sidecars")))
    assert index.lookup(identity(ETCD_SLICE)) is None
    assert index.match_container(identity(f"{ETCD_SLICE}/cri-containerd-{ETCD_ID}.scope")) is None


def test_lookups_ignore_the_case_of_ids() -> None:
    index = PodIndex(cluster_view(pod("pod-burstable-sidecars")))
    found = index.pod_by_cgroup_uid(STOREFRONT_UID.upper())
    assert found is not None
    assert index.container_name(found, APP_ID.upper()) == "app"


def test_init_and_sidecar_containers_are_named_too() -> None:
    storefront = pod("pod-burstable-sidecars")
    sidecars = [status for status in storefront.init_container_statuses if status.container_id]
    assert sidecars, "the fixture has init container statuses with IDs"
    index = PodIndex(cluster_view(storefront))
    for status in sidecars:
        assert status.container_id is not None
        assert index.container_name(storefront, status.container_id) == status.name


def test_local_mode_knows_no_pod() -> None:
    index = PodIndex(LocalMetadata().current())
    assert not index.has_cluster
    assert index.pods == ()
    assert index.lookup(identity(STOREFRONT_SLICE)) is None
    assert (
        index.match_container(identity(f"{STOREFRONT_SLICE}/cri-containerd-{APP_ID}.scope")) is None
    )


def test_a_pod_level_identity_names_no_container() -> None:
    index = PodIndex(cluster_view(pod("pod-burstable-sidecars")))
    with pytest.raises(ValueError, match="pod-level"):
        index.match_container(identity(STOREFRONT_SLICE))

"""kubepulse.model: objects built from recorded API server JSON and from tables.

The fixtures under tests/fixtures/objects/ are API server output (``kubectl get -o json``).
Expected numbers are worked out by hand in comments, never by calling the code under test.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kubepulse.errors import KubepulseError, KubepulseValueError
from kubepulse.model import (
    ContainerSpec,
    ContainerState,
    Namespace,
    Node,
    ObjectError,
    OwnerReference,
    Pod,
    ResourceList,
    ResourceQuota,
    Taint,
    Termination,
    compute_qos_class,
    parse_list,
    parse_object,
    parse_rfc3339_ms,
)
from kubepulse.quantity import QuantityError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "objects"

KI = 1024
MI = 1024**2
GI = 1024**3
# 2026-11-01T10:00:00Z: 2026-01-01 is 1_767_225_600 s; Jan..Oct of a common year are
# 304 days (26_265_600 s); ten hours are 36_000 s.
NOV_1_10AM_MS = (1_767_225_600 + 26_265_600 + 36_000) * 1000

POD_FIXTURES = [
    "pod-guaranteed.json",
    "pod-burstable-sidecars.json",
    "pod-besteffort.json",
    "pod-oomkilled.json",
    "pod-static-mirror.json",
    "pod-replicaset.json",
    "pod-pending.json",
]


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def pod_dict(
    containers: list[dict[str, Any]],
    *,
    init_containers: list[dict[str, Any]] | None = None,
    spec_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A minimal pod as the API server would return it, without status.qosClass."""
    spec: dict[str, Any] = {"containers": containers}
    if init_containers is not None:
        spec["initContainers"] = init_containers
    spec.update(spec_extra or {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "8f1c7c1e-0000-4000-8000-000000000001",
        },
        "spec": spec,
        "status": {"phase": "Running"},
    }


def box(
    name: str,
    requests: dict[str, str] | None = None,
    limits: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A container dict with the given resources."""
    resources: dict[str, Any] = {}
    if requests is not None:
        resources["requests"] = requests
    if limits is not None:
        resources["limits"] = limits
    return {"name": name, "image": "example/app:1", "resources": resources, **extra}


def sidecar(
    name: str, requests: dict[str, str] | None = None, limits: dict[str, str] | None = None
) -> dict[str, Any]:
    return box(name, requests, limits, restartPolicy="Always")


# ---------------------------------------------------------------------------- ResourceList


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"cpu": "500m", "memory": "1Gi"}, {"cpu": Decimal("0.5"), "memory": Decimal(GI)}),
        (
            {"cpu": "7910m", "memory": "31727904Ki"},
            {"cpu": Decimal("7.91"), "memory": Decimal(31727904 * KI)},
        ),
        (
            {"pods": "110", "count/deployments.apps": "10"},
            {"pods": Decimal(110), "count/deployments.apps": Decimal(10)},
        ),
        (
            {"nvidia.com/gpu": 2, "hugepages-2Mi": "0"},
            {"nvidia.com/gpu": Decimal(2), "hugepages-2Mi": Decimal(0)},
        ),
        (None, {}),
        ({}, {}),
    ],
)
def test_resource_list_from_api_parses_exact_amounts(
    raw: dict[str, Any] | None, expected: dict[str, Decimal]
) -> None:
    assert dict(ResourceList.from_api(raw)) == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        # Shared resources add up; a resource in one list only keeps its amount.
        (
            {"cpu": "250m", "memory": "64Mi"},
            {"cpu": "1", "nvidia.com/gpu": "1"},
            {"cpu": Decimal("1.25"), "memory": Decimal(64 * MI), "nvidia.com/gpu": Decimal(1)},
        ),
        ({}, {"memory": "1Gi"}, {"memory": Decimal(GI)}),
        ({"cpu": "1n"}, {"cpu": "999999999n"}, {"cpu": Decimal(1)}),
    ],
)
def test_resource_list_addition_is_exact_and_a_union(
    left: dict[str, str], right: dict[str, str], expected: dict[str, Decimal]
) -> None:
    assert ResourceList.from_api(left) + ResourceList.from_api(right) == expected


def test_resource_list_addition_does_not_round_huge_sums() -> None:
    # 1Ei is 1_152_921_504_606_846_976 bytes; adding 1n needs 28 significant digits,
    # one more than would survive a sloppy context.
    total = ResourceList.from_api({"memory": "1Ei"}) + ResourceList.from_api({"memory": "1n"})
    assert total["memory"] == Decimal("1152921504606846976.000000001")


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (
            {"cpu": "2", "memory": "1Gi"},
            {"cpu": "500m", "memory": "2Gi"},
            {"cpu": Decimal(2), "memory": Decimal(2 * GI)},
        ),
        ({"cpu": "1"}, {"memory": "64Mi"}, {"cpu": Decimal(1), "memory": Decimal(64 * MI)}),
    ],
)
def test_resource_list_max_per_resource(
    left: dict[str, str], right: dict[str, str], expected: dict[str, Decimal]
) -> None:
    assert ResourceList.from_api(left).max_per_resource(ResourceList.from_api(right)) == expected


@pytest.mark.parametrize(
    ("raw", "cpu_cores", "memory_bytes"),
    [
        ({"cpu": "1500m", "memory": "128974848"}, Decimal("1.5"), Decimal(128974848)),
        ({"memory": "129e6"}, None, Decimal(129_000_000)),
        ({}, None, None),
    ],
)
def test_resource_list_cpu_and_memory_accessors(
    raw: dict[str, str], cpu_cores: Decimal | None, memory_bytes: Decimal | None
) -> None:
    resources = ResourceList.from_api(raw)
    assert resources.cpu_cores == cpu_cores
    assert resources.memory_bytes == memory_bytes
    assert resources.get("ephemeral-storage") is None


def test_resource_list_is_immutable_hashable_and_equal_to_plain_mappings() -> None:
    resources = ResourceList.from_api({"cpu": "500m"})
    with pytest.raises(AttributeError, match="immutable"):
        resources._amounts = {}
    assert resources == {"cpu": Decimal("0.5")}
    assert resources != {"cpu": Decimal("0.5"), "memory": Decimal(1)}
    assert hash(resources) == hash(ResourceList({"cpu": Decimal("0.5")}))
    assert len({resources, ResourceList({"cpu": Decimal("0.50")})}) == 1


@pytest.mark.parametrize("bad_amount", [0.5, "500m", None])
def test_resource_list_constructor_rejects_unparsed_amounts(bad_amount: object) -> None:
    with pytest.raises(
        KubepulseValueError,
        match=r"not a finite Decimal; parse quantity strings with ResourceList\.from_api",
    ):
        ResourceList({"cpu": bad_amount})  # type: ignore[arg-type]


def test_bad_quantity_error_names_the_object_and_the_field_path() -> None:
    obj = pod_dict([box("app", limits={"cpu": "1"}), box("sidecar", limits={"memory": "1GB"})])
    with pytest.raises(ObjectError) as caught:
        Pod.from_api(obj)
    message = str(caught.value)
    assert message.startswith(
        "pod default/web: spec.containers[1].resources.limits.memory: invalid quantity '1GB'"
    )
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, KubepulseError)
    assert isinstance(caught.value.__cause__, QuantityError)


# ---------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        ("2026-11-01T10:00:00Z", NOV_1_10AM_MS),
        # Fractions of any length are truncated to the millisecond.
        ("2026-11-01T10:00:00.123456789Z", NOV_1_10AM_MS + 123),
        ("2026-11-01T10:00:00.5Z", NOV_1_10AM_MS + 500),
        ("2026-11-01T10:00:00.0009Z", NOV_1_10AM_MS),
        # 12:00 at +02:00 is 10:00 UTC; 04:30 at -05:30 is 10:00 UTC.
        ("2026-11-01T12:00:00+02:00", NOV_1_10AM_MS),
        ("2026-11-01T04:30:00-05:30", NOV_1_10AM_MS),
        ("2026-11-01t10:00:00z", NOV_1_10AM_MS),
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59.5Z", -500),
    ],
)
def test_parse_rfc3339_ms(text: str, expected_ms: int) -> None:
    assert parse_rfc3339_ms(text) == expected_ms


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("2026-11-01T10:00:00", "is not RFC 3339"),
        ("2026-11-01 10:00:00Z", "is not RFC 3339"),
        ("yesterday", "is not RFC 3339"),
        ("", "is not RFC 3339"),
        ("2026-13-01T10:00:00Z", "names no real date"),
        ("2026-02-29T10:00:00Z", "names no real date"),
        ("2026-11-01T10:00:00+24:00", "names no real date"),
        ("2026-11-01T10:00:00+02:75", "names no real date"),
    ],
)
def test_parse_rfc3339_ms_rejects_what_is_not_a_timestamp(text: str, complaint: str) -> None:
    with pytest.raises(KubepulseValueError, match=complaint):
        parse_rfc3339_ms(text)


# ---------------------------------------------------------------------------- recorded pods


def test_guaranteed_pod_from_fixture() -> None:
    pod = Pod.from_api(load("pod-guaranteed.json"))
    assert (pod.namespace, pod.name, pod.key) == ("payments", "ledger-0", "payments/ledger-0")
    assert pod.uid == "ae82e945-e595-46e3-aedf-bb9488cd9656"
    assert (pod.node_name, pod.phase, pod.qos_class) == ("worker-1", "Running", "Guaranteed")
    assert (pod.priority, pod.priority_class_name) == (100000, "business-critical")
    # created 09:58:00Z, started 09:58:01Z
    assert pod.creation_ms == NOV_1_10AM_MS - 120_000
    assert pod.start_ms == NOV_1_10AM_MS - 119_000
    assert pod.controller_owner is not None
    assert (pod.controller_owner.kind, pod.controller_owner.name) == ("StatefulSet", "ledger")
    # App: 2 CPU / 4Gi. The init container (500m / 256Mi) runs alone first, so the pod
    # needs max(2, 0.5) CPU and max(4Gi, 256Mi) memory.
    assert pod.effective_requests == {"cpu": Decimal(2), "memory": Decimal(4 * GI)}
    assert pod.effective_limits == {"cpu": Decimal(2), "memory": Decimal(4 * GI)}
    assert not pod.has_missing_limits
    assert not pod.has_missing_requests
    init_status = pod.status_of("init-schema")
    assert init_status is not None
    assert init_status.is_init
    assert init_status.state.kind == "terminated"
    assert init_status.state.termination == Termination(
        reason="Completed",
        exit_code=0,
        finished_at_ms=NOV_1_10AM_MS - 112_000,  # 09:58:08Z
        started_at_ms=NOV_1_10AM_MS - 117_000,  # 09:58:03Z
    )


def test_burstable_pod_with_native_sidecars_from_fixture() -> None:
    pod = Pod.from_api(load("pod-burstable-sidecars.json"))
    assert pod.qos_class == "Burstable"
    assert [(c.name, c.is_init, c.is_sidecar) for c in pod.init_containers] == [
        ("log-shipper", True, True),
        ("migrate", True, False),
        ("mesh-proxy", True, True),
    ]
    assert [(c.name, c.is_init, c.is_sidecar) for c in pod.containers] == [
        ("app", False, False),
        ("metrics", False, False),
    ]
    assert [c.name for c in pod.all_containers] == [
        "log-shipper",
        "migrate",
        "mesh-proxy",
        "app",
        "metrics",
    ]
    # What runs once the pod runs: the sidecars and app containers, not `migrate`.
    assert pod.running_container_names == ("log-shipper", "mesh-proxy", "app", "metrics")
    assert pod.request_amounts == (1.1, 736.0 * MI, 0.0)
    assert dataclasses.replace(pod, init_containers=()).running_container_names == (
        "app",
        "metrics",
    ), "a changed copy does not keep the memo"
    # Requests, CPU / memory:
    #   steady state = app 500m/512Mi + metrics 50m/32Mi + sidecars (100m/64Mi + 250m/128Mi)
    #                = 900m / 736Mi
    #   while init `migrate` runs: 1/256Mi + log-shipper started before it 100m/64Mi
    #                = 1100m / 320Mi      (mesh-proxy starts after it and does not count)
    #   pod = max per resource = 1.1 CPU / 736Mi
    assert pod.effective_requests == {"cpu": Decimal("1.1"), "memory": Decimal(736 * MI)}
    # Limits: steady state = app 1/1Gi + metrics -/64Mi + log-shipper 200m/128Mi
    #                        + mesh-proxy -/256Mi = 1.2 / 1472Mi
    #         during migrate = 2/512Mi + log-shipper 200m/128Mi = 2.2 / 640Mi
    assert pod.effective_limits == {"cpu": Decimal("2.2"), "memory": Decimal(1472 * MI)}
    # mesh-proxy and metrics have no CPU limit.
    assert pod.containers_missing_limits() == ("mesh-proxy", "metrics")
    assert pod.containers_missing_limits(["memory"]) == ()
    assert pod.has_missing_limits
    assert not pod.has_missing_requests
    assert pod.annotations["prometheus.io/port"] == "9102"
    assert pod.restart_count == 0


def test_best_effort_pod_from_fixture() -> None:
    pod = Pod.from_api(load("pod-besteffort.json"))
    assert pod.qos_class == "BestEffort"
    assert pod.effective_requests == {}
    assert pod.effective_limits == {}
    assert pod.containers_missing_requests() == ("debug-shell",)
    assert pod.has_missing_limits
    assert pod.owner_references == ()
    assert pod.controller_owner is None


def test_oom_killed_pod_from_fixture() -> None:
    pod = Pod.from_api(load("pod-oomkilled.json"))
    status = pod.status_of("cart")
    assert status is not None
    assert (status.ready, status.restart_count, status.runtime) == (False, 4, "containerd")
    assert status.container_id is not None
    assert len(status.container_id) == 64
    assert status.state == ContainerState(kind="waiting", reason="CrashLoopBackOff")
    assert status.last_termination == Termination(
        reason="OOMKilled",
        exit_code=137,
        finished_at_ms=NOV_1_10AM_MS + 2_466_000,  # 10:41:06Z
        started_at_ms=NOV_1_10AM_MS + 2_392_000,  # 10:39:52Z
    )
    assert status.last_termination.is_oom_kill
    assert status.was_oom_killed
    assert pod.restart_count == 4
    assert pod.status_of("no-such-container") is None


def test_static_mirror_pod_from_fixture() -> None:
    obj = load("pod-static-mirror.json")
    config_hash = obj["metadata"]["annotations"]["kubernetes.io/config.hash"]
    pod = Pod.from_api(obj)
    assert pod.is_static
    assert pod.is_static, "memoised: the same answer again"
    assert not dataclasses.replace(pod, annotations={}).is_static
    assert pod.mirror_of == config_hash
    # The kubelet names the pod cgroup after the config hash, not the mirror pod's uid.
    assert pod.cgroup_uid == config_hash
    assert pod.cgroup_uid != pod.uid
    assert pod.controller_owner == OwnerReference(
        kind="Node",
        name="cp-1",
        uid=obj["metadata"]["ownerReferences"][0]["uid"],
        controller=True,
        api_version="v1",
    )
    assert (pod.priority, pod.priority_class_name) == (2000001000, "system-node-critical")
    assert pod.qos_class == "Burstable"


def test_replicaset_owned_pod_from_fixture() -> None:
    obj = load("pod-replicaset.json")
    pod = Pod.from_api(obj)
    assert pod.controller_owner == OwnerReference(
        kind="ReplicaSet",
        name="web-6d4cf56db6",
        uid=obj["metadata"]["ownerReferences"][0]["uid"],
        controller=True,
        api_version="apps/v1",
    )
    assert pod.labels == {"app": "web", "pod-template-hash": "6d4cf56db6"}
    assert not pod.is_static
    assert pod.mirror_of is None
    assert pod.cgroup_uid == pod.uid
    assert pod.effective_requests == {"cpu": Decimal("0.1"), "memory": Decimal(128 * MI)}
    assert pod.containers_missing_limits() == ("nginx",)  # no CPU limit
    assert pod.containers_missing_limits(["memory"]) == ()


def test_pending_pod_from_fixture() -> None:
    pod = Pod.from_api(load("pod-pending.json"))
    assert (pod.phase, pod.node_name, pod.start_ms) == ("Pending", None, None)
    assert pod.container_statuses == ()
    assert pod.status_of("report") is None
    assert pod.controller_owner is not None
    assert pod.controller_owner.kind == "Job"
    assert pod.effective_requests == {"cpu": Decimal(2), "memory": Decimal(48 * GI)}


@pytest.mark.parametrize("fixture", POD_FIXTURES)
def test_computed_qos_class_matches_what_the_api_server_recorded(fixture: str) -> None:
    obj = load(fixture)
    recorded = obj["status"].pop("qosClass")
    assert Pod.from_api(obj).qos_class == recorded


@pytest.mark.parametrize("fixture", POD_FIXTURES)
def test_pods_are_frozen_hashable_values(fixture: str) -> None:
    first, second = Pod.from_api(load(fixture)), Pod.from_api(load(fixture))
    assert first == second
    assert hash(first) == hash(second)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.name = "other"  # type: ignore[misc]


# ---------------------------------------------------------------------------- QoS rules

GUARANTEED_RESOURCES = {"cpu": "500m", "memory": "256Mi"}


@pytest.mark.parametrize(
    ("containers", "init_containers", "spec_extra", "expected"),
    [
        pytest.param(
            [box("a", GUARANTEED_RESOURCES, GUARANTEED_RESOURCES)],
            None,
            None,
            "Guaranteed",
            id="requests-equal-limits",
        ),
        pytest.param(
            [box("a", None, GUARANTEED_RESOURCES)],
            None,
            None,
            "Guaranteed",
            id="requests-default-to-limits",
        ),
        pytest.param(
            [box("a", {"memory": "256Mi"}, GUARANTEED_RESOURCES)],
            None,
            None,
            "Guaranteed",
            id="cpu-request-defaults-to-limit",
        ),
        pytest.param(
            [box("a", {"cpu": "250m", "memory": "256Mi"}, GUARANTEED_RESOURCES)],
            None,
            None,
            "Burstable",
            id="cpu-request-below-limit",
        ),
        pytest.param([box("a")], None, None, "BestEffort", id="no-resources"),
        pytest.param(
            [{"name": "a", "image": "x"}], None, None, "BestEffort", id="no-resources-key"
        ),
        pytest.param(
            [box("a", {"ephemeral-storage": "1Gi"}, {"ephemeral-storage": "2Gi"})],
            None,
            None,
            "BestEffort",
            id="ephemeral-storage-ignored",
        ),
        pytest.param(
            [box("a", None, {"nvidia.com/gpu": "1"})],
            None,
            None,
            "BestEffort",
            id="extended-resource-ignored",
        ),
        pytest.param(
            [
                box(
                    "a",
                    {**GUARANTEED_RESOURCES, "hugepages-2Mi": "64Mi"},
                    {**GUARANTEED_RESOURCES, "hugepages-2Mi": "64Mi", "ephemeral-storage": "1Gi"},
                )
            ],
            None,
            None,
            "Guaranteed",
            id="hugepages-and-storage-ignored",
        ),
        pytest.param(
            [box("a", {"cpu": "0", "memory": "0"})],
            None,
            None,
            "BestEffort",
            id="zero-requests-ignored",
        ),
        pytest.param([box("a", {"cpu": "100m"})], None, None, "Burstable", id="cpu-request-only"),
        pytest.param(
            [box("a", None, {"memory": "256Mi"})], None, None, "Burstable", id="memory-limit-only"
        ),
        pytest.param(
            [box("a", GUARANTEED_RESOURCES, GUARANTEED_RESOURCES), box("b")],
            None,
            None,
            "Burstable",
            id="one-container-best-effort",
        ),
        pytest.param(
            [box("a", None, GUARANTEED_RESOURCES), box("b", None, {"cpu": "1", "memory": "1Gi"})],
            None,
            None,
            "Guaranteed",
            id="two-guaranteed-containers",
        ),
        pytest.param(
            [box("a", None, GUARANTEED_RESOURCES)],
            [box("init")],
            None,
            "Burstable",
            id="init-without-limits",
        ),
        pytest.param(
            [box("a", None, GUARANTEED_RESOURCES)],
            [box("init", None, {"cpu": "2", "memory": "1Gi"})],
            None,
            "Guaranteed",
            id="init-guaranteed",
        ),
        pytest.param(
            [box("a", None, GUARANTEED_RESOURCES)],
            [sidecar("proxy", {"cpu": "100m"})],
            None,
            "Burstable",
            id="sidecar-burstable",
        ),
        pytest.param(
            [box("a")],
            None,
            {"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
            "Guaranteed",
            id="pod-level-limits",
        ),
        pytest.param(
            [box("a", None, GUARANTEED_RESOURCES)],
            None,
            {"resources": {"requests": {"cpu": "1"}}},
            "Burstable",
            id="pod-level-requests-decide",
        ),
    ],
)
def test_qos_class_computed_by_the_kubelet_rule(
    containers: list[dict[str, Any]],
    init_containers: list[dict[str, Any]] | None,
    spec_extra: dict[str, Any] | None,
    expected: str,
) -> None:
    pod = Pod.from_api(pod_dict(containers, init_containers=init_containers, spec_extra=spec_extra))
    assert pod.qos_class == expected


def test_compute_qos_class_of_no_containers_is_best_effort() -> None:
    assert compute_qos_class([]) == "BestEffort"


def test_compute_qos_class_takes_requests_as_given() -> None:
    # Built directly, a container's requests are not defaulted from its limits: the
    # kubelet would see only limits, and only API defaulting makes such a pod Guaranteed.
    bare = ContainerSpec(
        name="a",
        image=None,
        requests=ResourceList(),
        limits=ResourceList({"cpu": Decimal(1), "memory": Decimal(GI)}),
    )
    assert compute_qos_class([bare]) == "Burstable"
    defaulted = ContainerSpec.from_api(box("a", None, {"cpu": "1", "memory": "1Gi"}))
    assert defaulted.requests == {"cpu": Decimal(1), "memory": Decimal(GI)}
    assert compute_qos_class([defaulted]) == "Guaranteed"


def test_reported_qos_class_wins_over_the_computed_one() -> None:
    obj = pod_dict([box("a")])
    obj["status"]["qosClass"] = "Burstable"  # what the API server said, even if odd
    assert Pod.from_api(obj).qos_class == "Burstable"


# ---------------------------------------------------------------------------- effective resources


@pytest.mark.parametrize(
    ("containers", "init_containers", "spec_extra", "expected"),
    [
        # The classic init container needs more than the app: 2 CPU / 1Gi.
        pytest.param(
            [box("app", {"cpu": "500m", "memory": "256Mi"})],
            [box("init", {"cpu": "2", "memory": "1Gi"})],
            None,
            {"cpu": Decimal(2), "memory": Decimal(GI)},
            id="init-dominates",
        ),
        # Sidecar 100m starts before init 1: init phase 1.1 > steady 500m + 100m = 600m.
        pytest.param(
            [box("app", {"cpu": "500m"})],
            [sidecar("proxy", {"cpu": "100m"}), box("init", {"cpu": "1"})],
            None,
            {"cpu": Decimal("1.1")},
            id="sidecar-before-init-adds-to-it",
        ),
        # Sidecar starts after init: init phase 1 > steady 600m; the sidecar does not add.
        pytest.param(
            [box("app", {"cpu": "500m"})],
            [box("init", {"cpu": "1"}), sidecar("proxy", {"cpu": "100m"})],
            None,
            {"cpu": Decimal(1)},
            id="sidecar-after-init-does-not",
        ),
        # Two app containers and a sidecar all run together: 3 x 300m = 900m.
        pytest.param(
            [box("a", {"cpu": "300m"}), box("b", {"cpu": "300m"})],
            [sidecar("proxy", {"cpu": "300m"})],
            None,
            {"cpu": Decimal("0.9")},
            id="sidecar-adds-to-steady-state",
        ),
        # Overhead is added on top: 250m + 250m, 64Mi + 120Mi.
        pytest.param(
            [box("app", {"cpu": "250m", "memory": "64Mi"})],
            None,
            {"overhead": {"cpu": "250m", "memory": "120Mi"}},
            {"cpu": Decimal("0.5"), "memory": Decimal(184 * MI)},
            id="overhead",
        ),
        # An extended resource limit defaults its request.
        pytest.param(
            [box("app", None, {"nvidia.com/gpu": "1"})],
            None,
            None,
            {"nvidia.com/gpu": Decimal(1)},
            id="extended-resource",
        ),
        # Pod-level CPU request replaces the containers' 100m + 200m; memory stays summed.
        pytest.param(
            [
                box("a", {"cpu": "100m", "memory": "64Mi"}),
                box("b", {"cpu": "200m", "memory": "64Mi"}),
            ],
            None,
            {"resources": {"requests": {"cpu": "1"}}},
            {"cpu": Decimal(1), "memory": Decimal(128 * MI)},
            id="pod-level-requests",
        ),
    ],
)
def test_effective_requests_follow_the_scheduler(
    containers: list[dict[str, Any]],
    init_containers: list[dict[str, Any]] | None,
    spec_extra: dict[str, Any] | None,
    expected: dict[str, Decimal],
) -> None:
    pod = Pod.from_api(pod_dict(containers, init_containers=init_containers, spec_extra=spec_extra))
    assert pod.effective_requests == expected


@pytest.mark.parametrize(
    ("containers", "spec_extra", "expected"),
    [
        # Overhead only lands on resources that have a limit: memory 128Mi + 120Mi; no CPU.
        pytest.param(
            [box("app", {"cpu": "100m"}, {"memory": "128Mi"})],
            {"overhead": {"cpu": "250m", "memory": "120Mi"}},
            {"memory": Decimal(248 * MI)},
            id="overhead-only-on-limited-resources",
        ),
        # A container without a CPU limit adds nothing to the sum.
        pytest.param(
            [box("a", None, {"cpu": "1"}), box("b", {"cpu": "1"})],
            None,
            {"cpu": Decimal(1)},
            id="missing-limit-adds-nothing",
        ),
        pytest.param(
            [box("a", None, {"cpu": "1", "memory": "1Gi"})],
            {"resources": {"limits": {"memory": "2Gi"}}},
            {"cpu": Decimal(1), "memory": Decimal(2 * GI)},
            id="pod-level-limit",
        ),
    ],
)
def test_effective_limits(
    containers: list[dict[str, Any]],
    spec_extra: dict[str, Any] | None,
    expected: dict[str, Decimal],
) -> None:
    assert Pod.from_api(pod_dict(containers, spec_extra=spec_extra)).effective_limits == expected


def test_pod_level_limit_covers_containers_without_one() -> None:
    obj = pod_dict(
        [box("a", {"cpu": "100m", "memory": "64Mi"})],
        spec_extra={"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
    )
    pod = Pod.from_api(obj)
    assert not pod.has_missing_limits
    assert pod.containers_missing_limits() == ()


# ---------------------------------------------------------------- nodes, namespaces, quotas


def test_node_from_fixture() -> None:
    node = Node.from_api(load("node-worker.json"))
    assert node.name == "worker-1"
    assert node.labels["node.kubernetes.io/instance-type"] == "m6i.2xlarge"
    assert node.capacity.cpu_cores == Decimal(8)
    assert node.capacity.memory_bytes == Decimal(32878880 * KI)
    assert node.allocatable == {
        "cpu": Decimal("7.91"),
        "ephemeral-storage": Decimal(93478772582),
        "hugepages-1Gi": Decimal(0),
        "hugepages-2Mi": Decimal(0),
        "memory": Decimal(31727904 * KI),
        "pods": Decimal(110),
    }
    assert [c.type for c in node.conditions] == [
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "Ready",
    ]
    assert node.is_ready
    assert [c.type for c in node.pressure_conditions] == ["DiskPressure"]
    disk = node.condition("DiskPressure")
    assert disk is not None
    assert (disk.status, disk.reason) == ("True", "KubeletHasDiskPressure")
    assert disk.last_transition_ms == NOV_1_10AM_MS + 6_750_000  # 11:52:30Z
    assert node.condition("NetworkUnavailable") is None
    assert node.taints == (
        Taint(
            key="node.kubernetes.io/disk-pressure",
            effect="NoSchedule",
            time_added_ms=NOV_1_10AM_MS + 6_760_000,
        ),
        Taint(key="dedicated", effect="NoSchedule", value="payments"),
    )
    assert not node.unschedulable


@pytest.mark.parametrize(
    ("conditions", "unschedulable", "is_ready", "pressure"),
    [
        ([{"type": "Ready", "status": "Unknown"}], None, False, []),
        ([], True, False, []),
        (
            [
                {"type": "Ready", "status": "True"},
                {"type": "MemoryPressure", "status": "True"},
                {"type": "PIDPressure", "status": "True"},
                {"type": "DiskPressure", "status": "Unknown"},
                {"type": "NetworkUnavailable", "status": "True"},
            ],
            False,
            True,
            ["MemoryPressure", "PIDPressure"],
        ),
    ],
)
def test_node_readiness_and_pressure(
    conditions: list[dict[str, str]],
    unschedulable: bool | None,
    is_ready: bool,
    pressure: list[str],
) -> None:
    spec = {} if unschedulable is None else {"unschedulable": unschedulable}
    node = Node.from_api(
        {
            "kind": "Node",
            "metadata": {"name": "n"},
            "spec": spec,
            "status": {"conditions": conditions},
        }
    )
    assert node.is_ready is is_ready
    assert [c.type for c in node.pressure_conditions] == pressure
    assert node.unschedulable is bool(unschedulable)


def test_namespace_from_fixture() -> None:
    namespace = Namespace.from_api(load("namespace.json"))
    assert (namespace.name, namespace.phase) == ("shop", "Active")
    assert namespace.labels == {"kubernetes.io/metadata.name": "shop", "team": "storefront"}
    assert not namespace.is_terminating


def test_resource_quota_from_fixture() -> None:
    quota = ResourceQuota.from_api(load("resourcequota.json"))
    assert (quota.namespace, quota.name) == ("shop", "compute")
    assert quota.hard["limits.memory"] == Decimal(40 * GI)
    assert quota.used["requests.cpu"] == Decimal("3.75")
    assert (
        quota.creation_ms == NOV_1_10AM_MS - 12 * 86_400_000 - 3_468_000
    )  # 12 days and 57m48s before
    # 20Gi - 3232Mi = (20480 - 3232) Mi = 17248Mi
    assert quota.remaining("requests.memory") == Decimal(17248 * MI)


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("requests.cpu", Decimal("0.375")),  # 3750m / 10
        ("cpu", Decimal("0.375")),  # same quota entry as requests.cpu
        ("limits.memory", Decimal("0.1078125")),  # 4416Mi / 40960Mi
        ("memory", Decimal("0.1578125")),  # 3232Mi / 20480Mi
        ("pods", Decimal("0.14")),  # 7 / 50
        ("count/deployments.apps", Decimal("0.3")),  # 3 / 10
        ("services", None),  # not limited by this quota
    ],
)
def test_resource_quota_utilisation(resource: str, expected: Decimal | None) -> None:
    assert ResourceQuota.from_api(load("resourcequota.json")).utilisation(resource) == expected


def test_resource_quota_before_the_controller_synced_it() -> None:
    obj = load("resourcequota.json")
    del obj["status"]
    obj["spec"]["hard"]["services"] = "0"
    obj["spec"]["scopes"] = ["NotTerminating"]
    quota = ResourceQuota.from_api(obj)
    assert quota.hard["services"] == Decimal(0)  # taken from spec.hard
    assert quota.used == {}
    assert quota.utilisation("requests.cpu") is None  # not counted yet, not zero
    assert quota.remaining("requests.cpu") is None
    assert quota.scopes == ("NotTerminating",)


def test_resource_quota_with_zero_hard_limit_has_no_ratio() -> None:
    quota = ResourceQuota(
        namespace="ns",
        name="q",
        hard=ResourceList({"pods": Decimal(0)}),
        used=ResourceList({"pods": Decimal(0)}),
    )
    assert quota.utilisation("pods") is None
    assert quota.remaining("pods") == Decimal(0)


# ---------------------------------------------------------------------------- bad input


def _without(obj: dict[str, Any], *path: str | int) -> dict[str, Any]:
    copied = copy.deepcopy(obj)
    target: Any = copied
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return copied


def _with(obj: dict[str, Any], value: Any, *path: str | int) -> dict[str, Any]:
    copied = copy.deepcopy(obj)
    target: Any = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copied


WEB = pod_dict([box("app", {"cpu": "100m"})])


@pytest.mark.parametrize(
    ("build", "obj", "message"),
    [
        pytest.param(
            Pod.from_api,
            _without(WEB, "metadata", "name"),
            r"^pod in namespace default: metadata\.name: is missing",
            id="pod-name",
        ),
        pytest.param(
            Pod.from_api,
            _without(WEB, "metadata", "namespace"),
            r"^pod web: metadata\.namespace: is missing.*set metadata\.namespace",
            id="pod-namespace",
        ),
        pytest.param(
            Pod.from_api,
            _without(WEB, "spec", "containers", 0, "name"),
            r"^pod default/web: spec\.containers\[0\]\.name: is missing",
            id="container-name",
        ),
        pytest.param(
            Pod.from_api,
            _with(WEB, {"containers": "app"}, "spec"),
            r"^pod default/web: spec\.containers: expected an array, got string 'app'",
            id="containers-not-array",
        ),
        pytest.param(
            Pod.from_api,
            _with(WEB, {"replicas": 3}, "metadata", "labels"),
            r"metadata\.labels\.replicas: expected a string, got number 3",
            id="label-not-string",
        ),
        pytest.param(
            Pod.from_api,
            _with(WEB, "yesterday", "metadata", "creationTimestamp"),
            r"^pod default/web: metadata\.creationTimestamp: timestamp 'yesterday' is not RFC 3339",
            id="bad-timestamp",
        ),
        pytest.param(
            Pod.from_api,
            _with(WEB, "Gold", "status", "qosClass"),
            r"status\.qosClass: 'Gold' is not one of Guaranteed, Burstable, BestEffort",
            id="bad-qos-class",
        ),
        pytest.param(
            Pod.from_api,
            _with(WEB, "high", "spec", "priority"),
            r"spec\.priority: expected an integer, got string 'high'",
            id="priority-not-int",
        ),
        pytest.param(
            Pod.from_api,
            _with(
                WEB,
                [{"kind": "ReplicaSet", "name": "rs", "apiVersion": "apps/v1"}],
                "metadata",
                "ownerReferences",
            ),
            r"metadata\.ownerReferences\[0\]\.uid: is missing",
            id="owner-uid",
        ),
        pytest.param(
            Pod.from_api,
            _with(WEB, [{"name": "app", "containerID": "abc123"}], "status", "containerStatuses"),
            r"status\.containerStatuses\[0\]\.containerID: 'abc123' is not '<runtime>://<id>'",
            id="container-id",
        ),
        pytest.param(
            Pod.from_api,
            _with(
                WEB,
                [{"name": "app", "lastState": {"terminated": {"reason": "OOMKilled"}}}],
                "status",
                "containerStatuses",
            ),
            r"status\.containerStatuses\[0\]\.lastState\.terminated\.exitCode: is missing",
            id="exit-code",
        ),
        pytest.param(
            Pod.from_api,
            load("node-worker.json"),
            r"^Pod: kind: expected 'Pod', got string 'Node'; use parse_object\(\)",
            id="wrong-kind",
        ),
        pytest.param(
            Pod.from_api,
            ["not", "a", "pod"],
            r"^Pod: expected the object as a mapping",
            id="not-a-mapping",
        ),
        pytest.param(
            Node.from_api,
            _without(load("node-worker.json"), "metadata", "name"),
            r"^node: metadata\.name: is missing",
            id="node-name",
        ),
        pytest.param(
            Node.from_api,
            _with(load("node-worker.json"), [{"type": "Ready"}], "status", "conditions"),
            r"^node worker-1: status\.conditions\[0\]\.status: is missing",
            id="condition-status",
        ),
        pytest.param(
            Node.from_api,
            _with(load("node-worker.json"), {"cpu": "eight"}, "status", "capacity"),
            r"^node worker-1: status\.capacity\.cpu: invalid quantity 'eight'",
            id="node-capacity",
        ),
        pytest.param(
            Node.from_api,
            _with(load("node-worker.json"), [{"key": "dedicated"}], "spec", "taints"),
            r"spec\.taints\[0\]\.effect: is missing",
            id="taint-effect",
        ),
        pytest.param(
            Namespace.from_api,
            _without(load("namespace.json"), "metadata", "name"),
            r"^namespace: metadata\.name: is missing",
            id="namespace-name",
        ),
        pytest.param(
            ResourceQuota.from_api,
            _without(load("resourcequota.json"), "metadata", "namespace"),
            r"^resourcequota compute: metadata\.namespace: is missing",
            id="quota-namespace",
        ),
        pytest.param(
            ResourceQuota.from_api,
            _with(load("resourcequota.json"), {"pods": "lots"}, "status", "used"),
            r"^resourcequota shop/compute: status\.used\.pods: invalid quantity 'lots'",
            id="quota-used",
        ),
    ],
)
def test_bad_objects_raise_object_error_naming_object_and_field(
    build: Any, obj: Any, message: str
) -> None:
    with pytest.raises(ObjectError, match=message) as caught:
        build(obj)
    assert isinstance(caught.value, KubepulseValueError)


def test_optional_fields_may_be_absent() -> None:
    pod = Pod.from_api({"metadata": {"name": "bare", "namespace": "default"}})
    assert (pod.uid, pod.node_name, pod.phase, pod.creation_ms, pod.priority) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert pod.containers == ()
    assert pod.qos_class == "BestEffort"
    assert pod.labels == {}
    status = Pod.from_api(
        _with(WEB, [{"name": "app", "state": {}, "containerID": ""}], "status", "containerStatuses")
    ).status_of("app")
    assert status is not None
    assert (status.state.kind, status.container_id, status.runtime, status.restart_count) == (
        "unknown",
        None,
        None,
        0,
    )


# ---------------------------------------------------------------------------- dispatch and lists


@pytest.mark.parametrize(
    ("fixture", "expected_type"),
    [
        ("pod-guaranteed.json", Pod),
        ("node-worker.json", Node),
        ("namespace.json", Namespace),
        ("resourcequota.json", ResourceQuota),
    ],
)
def test_parse_object_dispatches_on_kind(fixture: str, expected_type: type) -> None:
    assert type(parse_object(load(fixture))) is expected_type


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {"kind": "Deployment", "metadata": {"name": "web"}},
            r"kind: string 'Deployment' is not one of Pod, Node, Namespace, ResourceQuota",
        ),
        ({"metadata": {"name": "web"}}, r"kind: null is not one of"),
        ("Pod", r"expected a mapping"),
    ],
)
def test_parse_object_rejects_unknown_kinds(obj: Any, message: str) -> None:
    with pytest.raises(ObjectError, match=message):
        parse_object(obj)


def _api_list(kind: str, *fixtures: str) -> dict[str, Any]:
    """A list as the API server returns it: items carry neither kind nor apiVersion."""
    items = []
    for fixture in fixtures:
        item = load(fixture)
        del item["kind"], item["apiVersion"]
        items.append(item)
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"resourceVersion": "209500"},
        "items": items,
    }


def test_pod_list_from_the_api_server() -> None:
    pods = parse_list(_api_list("PodList", "pod-guaranteed.json", "pod-besteffort.json"))
    assert [(type(p).__name__, p.name) for p in pods] == [
        ("Pod", "ledger-0"),
        ("Pod", "debug-shell"),
    ]
    assert (
        Pod.list_from_api(_api_list("PodList", "pod-pending.json"))[0].name
        == "report-29873520-5xq8w"
    )


def test_kubectl_generic_list_with_mixed_kinds() -> None:
    mixed = {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": [load("namespace.json"), load("resourcequota.json"), load("node-worker.json")],
    }
    assert [type(item) for item in parse_list(mixed)] == [Namespace, ResourceQuota, Node]


@pytest.mark.parametrize(
    ("builder", "kind"),
    [
        (Node.list_from_api, "NodeList"),
        (Namespace.list_from_api, "NamespaceList"),
        (ResourceQuota.list_from_api, "ResourceQuotaList"),
    ],
)
def test_empty_lists_have_null_items(builder: Any, kind: str) -> None:
    # Go encodes an empty list's nil slice as null.
    assert builder({"apiVersion": "v1", "kind": kind, "metadata": {}, "items": None}) == ()


@pytest.mark.parametrize(
    ("build", "obj", "message"),
    [
        pytest.param(
            parse_list,
            _with(
                _api_list("PodList", "pod-guaranteed.json", "pod-replicaset.json"),
                {},
                "items",
                1,
                "metadata",
            ),
            r"^PodList items\[1\]: pod: metadata\.namespace: is missing",
            id="bad-item",
        ),
        pytest.param(
            Pod.list_from_api,
            _api_list("NodeList", "node-worker.json"),
            r"^PodList: kind: expected 'PodList' or 'List', got string 'NodeList'",
            id="wrong-list-kind",
        ),
        pytest.param(
            parse_list,
            _api_list("DeploymentList"),
            r"kind: string 'DeploymentList' is not one of PodList",
            id="unknown-list-kind",
        ),
        pytest.param(
            parse_list,
            {"kind": "List", "items": [{"metadata": {"name": "x"}}]},
            r"^List items\[0\]: object: kind: null",
            id="generic-list-item-without-kind",
        ),
    ],
)
def test_list_errors_name_the_item(build: Any, obj: Any, message: str) -> None:
    with pytest.raises(ObjectError, match=message):
        build(obj)


def test_effective_amounts_are_computed_once_and_stay_out_of_equality() -> None:
    first = Pod.from_api(load("pod-burstable-sidecars.json"))
    second = Pod.from_api(load("pod-burstable-sidecars.json"))
    requests = first.effective_requests
    assert first.effective_requests is requests, "the second read is the memo"
    assert first.effective_limits is first.effective_limits
    assert first == second, "a filled memo does not make two equal pods differ"
    assert second.effective_requests == requests

"""Server-side printing: the Tables `kubectl get` renders, checked against kube-apiserver 1.33.

Expected cells are what the real printers (k8s.io/kubernetes pkg/printers/internalversion) and
apiextensions-apiserver's table convertor produce for the same objects.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meshcanary.sandbox.apiserver.registry import BUILTINS, PrinterColumn, ResourceType
from meshcanary.sandbox.apiserver.tables import build_table, column_definitions

NOW = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    """An RFC 3339 timestamp `delta` before NOW."""
    moment = NOW - timedelta(**delta)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{moment.microsecond:06d}Z" if moment.microsecond else "Z")


def builtin(plural: str) -> ResourceType:
    return next(rt for rt in BUILTINS if rt.plural == plural)


def cells(plural: str, obj: dict[str, Any]) -> list[Any]:
    table = build_table(builtin(plural), [obj], now=NOW)
    return list(table["rows"][0]["cells"])


def header(rt: ResourceType) -> str:
    """The column names, comma-separated; a "*" marks those only `-o wide` shows (priority > 0)."""
    return ", ".join(c["name"] + "*" * (c["priority"] > 0) for c in column_definitions(rt))


def meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": ago(hours=2), **extra}


def template(*containers: tuple[str, str], **spec: Any) -> dict[str, Any]:
    listed = [{"name": name, "image": image} for name, image in containers]
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": listed, **spec}}


# --- the envelope -----------------------------------------------------------------------------


def test_table_envelope_and_metadata() -> None:
    table = build_table(
        builtin("namespaces"),
        [{"metadata": meta("default")}],
        now=NOW,
        resource_version="42",
        continue_token="abc",
    )
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42", "continue": "abc"}
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert table["rows"] == [
        {
            "cells": ["default", "Active", "120m"],
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta("default"),
            },
        }
    ]


def test_empty_list_and_omitted_definitions() -> None:
    table = build_table(builtin("pods"), [], now=NOW, with_definitions=False)
    assert table == {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": ""},
        "rows": [],
    }


@pytest.mark.parametrize("include", ["None", "Metadata", "Object"])
def test_include_object(include: str) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": meta("prod"), "spec": {}}
    row = build_table(builtin("namespaces"), [ns], now=NOW, include_object=include)["rows"][0]
    expected = {
        "None": None,
        "Metadata": {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": ns["metadata"],
        },
        "Object": ns,
    }[include]
    assert row.get("object") == expected
    assert ("object" in row) == (include != "None")


def test_unknown_include_object_is_rejected() -> None:
    with pytest.raises(ValueError, match="includeObject"):
        build_table(builtin("pods"), [], now=NOW, include_object="Everything")


def test_column_definitions_have_the_table_column_shape() -> None:
    for rt in BUILTINS:
        definitions = column_definitions(rt)
        assert definitions, rt.plural
        for definition in definitions:
            assert set(definition) == {"name", "type", "format", "description", "priority"}
            assert definition["description"], (rt.plural, definition["name"])
        first = definitions[0]
        if rt.plural == "events":
            assert first["name"] == "Last Seen"
        else:
            assert (first["name"], first["format"]) == ("Name", "name"), rt.plural


def test_column_definitions_are_fresh_copies() -> None:
    column_definitions(builtin("pods"))[0]["name"] = "Mutated"
    assert column_definitions(builtin("pods"))[0]["name"] == "Name"


def test_descriptions_are_the_api_swagger_docs() -> None:
    name, age = column_definitions(builtin("namespaces"))[0::2]
    assert name["description"].startswith("Name must be unique within a namespace.")
    assert age["description"].startswith("CreationTimestamp is a timestamp representing")
    node_version = column_definitions(builtin("nodes"))[4]
    assert node_version["description"] == "Kubelet Version reported by the node."


# --- duration.HumanDuration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=-1), "0s"),
        (timedelta(seconds=-1.5), "0s"),
        (timedelta(seconds=-2), "<invalid>"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=119), "119s"),
        (timedelta(minutes=2), "2m"),
        (timedelta(minutes=5, seconds=10), "5m10s"),
        (timedelta(minutes=9, seconds=59), "9m59s"),
        (timedelta(minutes=10, seconds=30), "10m"),
        (timedelta(minutes=179), "179m"),
        (timedelta(hours=3), "3h"),
        (timedelta(hours=3, minutes=5), "3h5m"),
        (timedelta(hours=7, minutes=59), "7h59m"),
        (timedelta(hours=8, minutes=30), "8h"),
        (timedelta(hours=47, minutes=59), "47h"),
        (timedelta(hours=48), "2d"),
        (timedelta(days=2, hours=3), "2d3h"),
        (timedelta(days=7, hours=23), "7d23h"),
        (timedelta(days=8, hours=5), "8d"),
        (timedelta(days=729), "729d"),
        (timedelta(days=730), "2y"),
        (timedelta(days=731), "2y1d"),
        (timedelta(days=365 * 8), "8y"),
        (timedelta(days=3000), "8y"),
    ],
)
def test_ages_are_human_durations(delta: timedelta, expected: str) -> None:
    ns = {"metadata": {"name": "a", "creationTimestamp": ago(seconds=delta.total_seconds())}}
    assert cells("namespaces", ns)[2] == expected


def test_age_without_a_creation_timestamp_is_unknown() -> None:
    assert cells("namespaces", {"metadata": {"name": "a"}})[2] == "<unknown>"


def test_now_without_a_timezone_is_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    table = build_table(builtin("namespaces"), [{"metadata": meta("a")}], now=naive)
    assert table["rows"][0]["cells"][2] == "120m"


# --- pods -------------------------------------------------------------------------------------


def running(name: str, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "ready": True,
        "started": True,
        "restartCount": restarts,
        "state": {"running": {"startedAt": ago(hours=1)}},
        **extra,
    }


def waiting(name: str, reason: str, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    state = {"waiting": {"reason": reason}}
    return {"name": name, "ready": False, "restartCount": restarts, "state": state, **extra}


def terminated(name: str, code: int, reason: str = "", **extra: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"terminated": {"exitCode": code}}
    if reason:
        state["terminated"]["reason"] = reason
    return {"name": name, "ready": False, "restartCount": 0, "state": state, **extra}


def pod(
    statuses: list[dict[str, Any]],
    *,
    phase: str = "Running",
    init: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    **metadata: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeName": "worker-1",
        "containers": [{"name": s["name"], "image": "img"} for s in statuses],
    }
    if init is not None:
        spec["initContainers"] = init
    status: dict[str, Any] = {
        "phase": phase,
        "podIP": "10.244.1.7",
        "conditions": conditions or [],
        "containerStatuses": statuses,
    }
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    return {"metadata": meta("web-0", **metadata), "spec": spec, "status": status}


def test_pod_columns() -> None:
    assert header(builtin("pods")) == (
        "Name, Ready, Status, Restarts, Age, IP*, Node*, Nominated Node*, Readiness Gates*"
    )


def test_pod_in_crash_loop_back_off_with_restarts() -> None:
    last_crash = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(minutes=5)}}
    crashing = waiting("app", "CrashLoopBackOff", restarts=5, lastState=last_crash)
    obj = pod([crashing, running("istio-proxy")])
    assert cells("pods", obj) == [
        "web-0",
        "1/2",
        "CrashLoopBackOff",
        "5 (5m ago)",
        "120m",
        "10.244.1.7",
        "worker-1",
        "<none>",
        "<none>",
    ]


def test_restarts_without_a_termination_time_have_no_suffix() -> None:
    assert cells("pods", pod([running("app", restarts=3)]))[1:4] == ["1/1", "Running", "3"]


def test_terminating_pod() -> None:
    obj = pod([running("app")], deletionTimestamp=ago(seconds=10))
    assert cells("pods", obj)[1:4] == ["1/1", "Terminating", "0"]


def test_deleted_pod_on_a_lost_node_is_unknown() -> None:
    obj = pod([running("app")], deletionTimestamp=ago(seconds=10))
    obj["status"]["reason"] = "NodeLost"
    assert cells("pods", obj)[2] == "Unknown"


def test_pod_waiting_on_its_second_init_container() -> None:
    obj = pod(
        [waiting("app", "PodInitializing")],
        phase="Pending",
        init=[{"name": "migrate", "image": "img"}, {"name": "warm-cache", "image": "img"}],
        init_statuses=[terminated("migrate", 0, "Completed"), running("warm-cache")],
        conditions=[{"type": "Initialized", "status": "False"}],
    )
    assert cells("pods", obj)[1:4] == ["0/1", "Init:1/2", "0"]


@pytest.mark.parametrize(
    ("init_status", "expected"),
    [
        (waiting("migrate", "CrashLoopBackOff", restarts=2), "Init:CrashLoopBackOff"),
        (terminated("migrate", 1, "Error"), "Init:Error"),
        (terminated("migrate", 2), "Init:ExitCode:2"),
        (
            {"name": "migrate", "state": {"terminated": {"exitCode": 137, "signal": 9}}},
            "Init:Signal:9",
        ),
        (waiting("migrate", "PodInitializing"), "Init:0/1"),
    ],
)
def test_init_container_failures(init_status: dict[str, Any], expected: str) -> None:
    obj = pod(
        [waiting("app", "PodInitializing")],
        phase="Pending",
        init=[{"name": "migrate", "image": "img"}],
        init_statuses=[init_status],
    )
    assert cells("pods", obj)[2] == expected


def test_pod_initializing_after_its_init_containers() -> None:
    obj = pod(
        [waiting("app", "PodInitializing")],
        phase="Pending",
        init=[{"name": "migrate", "image": "img"}],
        init_statuses=[terminated("migrate", 0, "Completed")],
        conditions=[{"type": "Initialized", "status": "True"}],
    )
    assert cells("pods", obj)[1:4] == ["0/1", "PodInitializing", "0"]


def test_sidecar_init_containers_count_as_containers() -> None:
    sidecar = {"name": "proxy", "image": "envoy", "restartPolicy": "Always"}
    obj = pod(
        [running("app")],
        init=[sidecar],
        init_statuses=[running("proxy", restarts=1)],
        conditions=[{"type": "Initialized", "status": "True"}],
    )
    assert cells("pods", obj)[1:4] == ["2/2", "Running", "1"]


def test_completed_pod_has_a_completed_row_condition() -> None:
    obj = pod([terminated("job", 0, "Completed")], phase="Succeeded")
    row = build_table(builtin("pods"), [obj], now=NOW)["rows"][0]
    assert row["cells"][1:4] == ["0/1", "Completed", "0"]
    assert row["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]


def test_running_pod_has_no_row_conditions() -> None:
    row = build_table(builtin("pods"), [pod([running("app")])], now=NOW)["rows"][0]
    assert "conditions" not in row


@pytest.mark.parametrize(("ready", "expected"), [("True", "Running"), ("False", "NotReady")])
def test_completed_container_beside_a_running_one(ready: str, expected: str) -> None:
    obj = pod(
        [terminated("setup", 0, "Completed"), running("app")],
        conditions=[{"type": "Ready", "status": ready}],
    )
    assert cells("pods", obj)[1:3] == ["1/2", expected]


@pytest.mark.parametrize(
    ("state", "expected"),
    [({"exitCode": 137, "signal": 9}, "Signal:9"), ({"exitCode": 3}, "ExitCode:3")],
)
def test_container_terminated_without_a_reason(state: dict[str, Any], expected: str) -> None:
    status = {"name": "app", "restartCount": 0, "state": {"terminated": state}}
    assert cells("pods", pod([status], phase="Failed"))[2] == expected


def test_scheduling_gated_pod() -> None:
    obj = pod([], phase="Pending")
    obj["spec"]["containers"] = [{"name": "app", "image": "img"}]
    obj["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}
    ]
    del obj["status"]["podIP"], obj["spec"]["nodeName"]
    assert cells("pods", obj)[1:] == ["0/1", "SchedulingGated", "0", "120m"] + ["<none>"] * 4


def test_pod_wide_columns_readiness_gates_and_nominated_node() -> None:
    obj = pod([running("app")], conditions=[{"type": "example.com/lb", "status": "True"}])
    obj["spec"]["readinessGates"] = [
        {"conditionType": "example.com/lb"},
        {"conditionType": "example.com/dns"},
    ]
    obj["status"]["nominatedNodeName"] = "worker-2"
    del obj["status"]["podIP"]
    obj["status"]["podIPs"] = [{"ip": "fd00::7"}, {"ip": "10.244.1.8"}]
    assert cells("pods", obj)[5:] == ["fd00::7", "worker-1", "worker-2", "1/2"]


# --- services and endpoints -------------------------------------------------------------------


def service(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": meta("web"), "spec": spec, "status": status or {}}


HTTP = {"name": "http", "port": 80, "protocol": "TCP", "nodePort": 31380}
HTTPS = {"name": "https", "port": 443, "nodePort": 30443}  # protocol defaults to TCP


def test_service_columns() -> None:
    assert header(builtin("services")) == (
        "Name, Type, Cluster-IP, External-IP, Port(s), Age, Selector*"
    )


def test_cluster_ip_service() -> None:
    spec = {
        "clusterIP": "10.96.0.10",
        "clusterIPs": ["10.96.0.10"],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
        "selector": {"k8s-app": "kube-dns", "app": "dns"},
    }
    assert cells("services", service(spec)) == [
        "web",
        "ClusterIP",
        "10.96.0.10",
        "<none>",
        "53/UDP,53/TCP",
        "120m",
        "app=dns,k8s-app=kube-dns",
    ]


def test_load_balancer_without_ingress_is_pending() -> None:
    spec = {"type": "LoadBalancer", "clusterIP": "10.96.4.2", "ports": [HTTP, HTTPS]}
    assert cells("services", service(spec))[1:5] == [
        "LoadBalancer",
        "10.96.4.2",
        "<pending>",
        "80:31380/TCP,443:30443/TCP",
    ]


def test_load_balancer_with_ingress() -> None:
    spec = {"type": "LoadBalancer", "clusterIP": "10.96.4.2", "ports": [HTTP]}
    ingress = [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.10"}]
    status = {"loadBalancer": {"ingress": ingress}}
    assert cells("services", service(spec, status))[3] == (
        "203.0.113.10,203.0.113.9,lb.example.com"
    )
    spec["externalIPs"] = ["198.51.100.1"]
    assert cells("services", service(spec, status))[3] == (
        "203.0.113.10,203.0.113.9,lb.example.com,198.51.100.1"
    )


def test_other_service_types() -> None:
    external_name = {"type": "ExternalName", "externalName": "db.example.com"}
    assert cells("services", service(external_name))[1:5] == [
        "ExternalName",
        "<none>",
        "db.example.com",
        "<none>",
    ]
    headless = {"clusterIP": "None", "clusterIPs": ["None"], "externalIPs": ["192.0.2.1"]}
    assert cells("services", service(headless))[1:5] == ["ClusterIP", "None", "192.0.2.1", "<none>"]
    node_port = {"type": "NodePort", "clusterIPs": ["10.96.0.5"], "ports": [HTTP]}
    assert cells("services", service(node_port))[1:5] == [
        "NodePort",
        "10.96.0.5",
        "<none>",
        "80:31380/TCP",
    ]


def subset(*ips: str, ports: tuple[int, ...] = ()) -> dict[str, Any]:
    addresses = [{"ip": ip} for ip in ips]
    return {"addresses": addresses, "ports": [{"port": port} for port in ports]}


FIVE_IPS = tuple(f"10.0.0.{i}" for i in range(1, 6))


@pytest.mark.parametrize(
    ("subsets", "expected"),
    [
        ([], "<none>"),
        ([subset("10.0.0.1", "10.0.0.2", ports=(80,))], "10.0.0.1:80,10.0.0.2:80"),
        (
            [subset(*FIVE_IPS, ports=(8080,))],
            "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 2 more...",
        ),
        (
            [subset("10.0.0.1", "10.0.0.2", ports=(80, 443))],
            "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...",
        ),
        ([subset("10.0.0.1"), subset("10.0.0.2")], "10.0.0.1,10.0.0.2"),  # headless: no ports
        ([subset("fd00::1", ports=(80,))], "[fd00::1]:80"),
        ([{"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}], ""),
    ],
)
def test_endpoints(subsets: list[dict[str, Any]], expected: str) -> None:
    obj = {"metadata": meta("web"), "subsets": subsets}
    assert cells("endpoints", obj) == ["web", expected, "120m"]


# --- nodes ------------------------------------------------------------------------------------


def node(labels: dict[str, str], conditions: list[dict[str, str]], **spec: Any) -> dict[str, Any]:
    info = {
        "kubeletVersion": "v1.33.1",
        "osImage": "Debian GNU/Linux 12 (bookworm)",
        "kernelVersion": "6.8.0-45-generic",
        "containerRuntimeVersion": "containerd://1.7.22",
    }
    addresses = [
        {"type": "Hostname", "address": "cp-1"},
        {"type": "InternalIP", "address": "172.18.0.2"},
    ]
    status = {"conditions": conditions, "nodeInfo": info, "addresses": addresses}
    metadata = {"name": "cp-1", "labels": labels, "creationTimestamp": ago(days=9)}
    return {"metadata": metadata, "spec": spec, "status": status}


READY = [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}]


def test_node_columns() -> None:
    assert header(builtin("nodes")) == (
        "Name, Status, Roles, Age, Version, "
        "Internal-IP*, External-IP*, OS-Image*, Kernel-Version*, Container-Runtime*"
    )


def test_cordoned_control_plane_node_with_roles() -> None:
    labels = {
        "kubernetes.io/hostname": "cp-1",
        "node-role.kubernetes.io/control-plane": "",
        "node-role.kubernetes.io/etcd": "true",
    }
    assert cells("nodes", node(labels, READY, unschedulable=True)) == [
        "cp-1",
        "Ready,SchedulingDisabled",
        "control-plane,etcd",
        "9d",
        "v1.33.1",
        "172.18.0.2",
        "<none>",
        "Debian GNU/Linux 12 (bookworm)",
        "6.8.0-45-generic",
        "containerd://1.7.22",
    ]


@pytest.mark.parametrize(
    ("labels", "conditions", "expected"),
    [
        ({}, [{"type": "Ready", "status": "False"}], ["NotReady", "<none>"]),
        ({}, [{"type": "Ready", "status": "Unknown"}], ["NotReady", "<none>"]),
        ({"kubernetes.io/role": "worker"}, [], ["Unknown", "worker"]),
        ({"node-role.kubernetes.io/": ""}, READY, ["Ready", "<none>"]),
    ],
)
def test_node_status_and_roles(
    labels: dict[str, str], conditions: list[dict[str, str]], expected: list[str]
) -> None:
    assert cells("nodes", node(labels, conditions))[1:3] == expected


def test_node_without_system_info() -> None:
    obj = {"metadata": {"name": "bare", "creationTimestamp": ago(minutes=1)}, "status": {}}
    assert (
        cells("nodes", obj)[1:]
        == ["Unknown", "<none>", "60s", "", "<none>", "<none>"] + ["<unknown>"] * 3
    )


# --- apps -------------------------------------------------------------------------------------


def test_deployment_mid_rollout() -> None:
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "edge"]}],
    }
    spec = {
        "replicas": 3,
        "selector": selector,
        "template": template(("web", "nginx:1.27"), ("istio-proxy", "istio/proxyv2:1.24.1")),
    }
    status = {"replicas": 4, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2}
    obj = {"metadata": meta("web"), "spec": spec, "status": status}
    assert header(builtin("deployments")) == (
        "Name, Ready, Up-to-date, Available, Age, Containers*, Images*, Selector*"
    )
    assert cells("deployments", obj) == [
        "web",
        "2/3",
        1,
        2,
        "120m",
        "web,istio-proxy",
        "nginx:1.27,istio/proxyv2:1.24.1",
        "app=web,tier in (edge,web)",
    ]


def test_new_deployment_defaults_to_one_replica() -> None:
    obj = {"metadata": meta("api"), "spec": {"selector": {}, "template": template()}}
    assert cells("deployments", obj) == ["api", "0/1", 0, 0, "120m", "", "", ""]


def test_replicaset() -> None:
    selector = {"matchLabels": {"pod-template-hash": "5d9c7b", "app": "web"}}
    spec = {"replicas": 3, "selector": selector, "template": template(("web", "nginx"))}
    obj = {
        "metadata": meta("web-5d9c7b"),
        "spec": spec,
        "status": {"replicas": 3, "readyReplicas": 2},
    }
    assert header(builtin("replicasets")) == (
        "Name, Desired, Current, Ready, Age, Containers*, Images*, Selector*"
    )
    assert cells("replicasets", obj) == [
        "web-5d9c7b",
        3,
        3,
        2,
        "120m",
        "web",
        "nginx",
        "app=web,pod-template-hash=5d9c7b",
    ]


def test_statefulset() -> None:
    spec = {"replicas": 3, "template": template(("redis", "redis:7"))}
    obj = {"metadata": meta("redis"), "spec": spec, "status": {"readyReplicas": 2}}
    assert header(builtin("statefulsets")) == "Name, Ready, Age, Containers*, Images*"
    assert cells("statefulsets", obj) == ["redis", "2/3", "120m", "redis", "redis:7"]


def test_daemonset() -> None:
    spec = {
        "selector": {"matchLabels": {"app": "fluentd"}},
        "template": template(("fluentd", "fluentd:v1"), nodeSelector={"kubernetes.io/os": "linux"}),
    }
    status = {
        "desiredNumberScheduled": 3,
        "currentNumberScheduled": 3,
        "numberReady": 2,
        "updatedNumberScheduled": 1,
        "numberAvailable": 2,
    }
    obj = {"metadata": meta("fluentd"), "spec": spec, "status": status}
    assert header(builtin("daemonsets")) == (
        "Name, Desired, Current, Ready, Up-to-date, Available, Node Selector, Age, "
        "Containers*, Images*, Selector*"
    )
    assert cells("daemonsets", obj) == [
        "fluentd",
        3,
        3,
        2,
        1,
        2,
        "kubernetes.io/os=linux",
        "120m",
        "fluentd",
        "fluentd:v1",
        "app=fluentd",
    ]


@pytest.mark.parametrize(
    ("owners", "expected"),
    [
        (
            [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd", "controller": True}],
            "daemonset.apps/fluentd",
        ),
        ([{"apiVersion": "v1", "kind": "Pod", "name": "p", "controller": True}], "pod/p"),
        ([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"}], "<none>"),
        ([], "<none>"),
    ],
)
def test_controllerrevision(owners: list[dict[str, Any]], expected: str) -> None:
    obj = {"metadata": meta("fluentd-7b9f", ownerReferences=owners), "revision": 3}
    assert header(builtin("controllerrevisions")) == "Name, Controller, Revision, Age"
    assert cells("controllerrevisions", obj) == ["fluentd-7b9f", expected, 3, "120m"]


# --- batch ------------------------------------------------------------------------------------


def job(spec: dict[str, Any], status: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    spec = {
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "c0ffee"}},
        "template": template(("pi", "perl:5.34")),
        **spec,
    }
    return {"metadata": meta("pi", **metadata), "spec": spec, "status": status}


def condition(kind: str, status: str = "True") -> dict[str, str]:
    return {"type": kind, "status": status}


def test_job_columns() -> None:
    assert header(builtin("jobs")) == (
        "Name, Status, Completions, Duration, Age, Containers*, Images*, Selector*"
    )


def test_completed_job() -> None:
    status = {
        "succeeded": 1,
        "startTime": ago(minutes=10),
        "completionTime": ago(minutes=9, seconds=15),
        "conditions": [condition("SuccessCriteriaMet"), condition("Complete")],
    }
    assert cells("jobs", job({"completions": 1, "parallelism": 1}, status)) == [
        "pi",
        "Complete",
        "1/1",
        "45s",
        "120m",
        "pi",
        "perl:5.34",
        "batch.kubernetes.io/controller-uid=c0ffee",
    ]


@pytest.mark.parametrize(
    ("spec", "status", "metadata", "expected"),
    [
        (
            {},
            {"startTime": ago(minutes=3, seconds=10), "active": 1},
            {},
            ["Running", "0/1", "3m10s"],
        ),
        ({"completions": 5}, {"succeeded": 2}, {}, ["Running", "2/5", ""]),
        ({"parallelism": 3}, {"succeeded": 1}, {}, ["Running", "1/1 of 3", ""]),
        ({"parallelism": 1}, {}, {}, ["Running", "0/1", ""]),
        ({}, {"conditions": [condition("Failed")]}, {}, ["Failed", "0/1", ""]),
        ({}, {"conditions": [condition("Suspended")]}, {}, ["Suspended", "0/1", ""]),
        ({}, {"conditions": [condition("Suspended", "False")]}, {}, ["Running", "0/1", ""]),
        ({}, {"conditions": [condition("FailureTarget")]}, {}, ["FailureTarget", "0/1", ""]),
        ({}, {}, {"deletionTimestamp": ago(seconds=1)}, ["Terminating", "0/1", ""]),
    ],
)
def test_job_status_completions_and_duration(
    spec: dict[str, Any], status: dict[str, Any], metadata: dict[str, Any], expected: list[str]
) -> None:
    assert cells("jobs", job(spec, status, **metadata))[1:4] == expected


def test_cronjob() -> None:
    job_template = {"spec": {"template": template(("report", "busybox"))}}
    spec: dict[str, Any] = {"schedule": "*/5 * * * *", "jobTemplate": job_template}
    status = {"active": [{"name": "report-29001"}], "lastScheduleTime": ago(minutes=2)}
    obj = {"metadata": meta("report"), "spec": spec, "status": status}
    assert header(builtin("cronjobs")) == (
        "Name, Schedule, Timezone, Suspend, Active, Last Schedule, Age, "
        "Containers*, Images*, Selector*"
    )
    assert cells("cronjobs", obj) == [
        "report",
        "*/5 * * * *",
        "<none>",
        "False",
        1,
        "2m",
        "120m",
        "report",
        "busybox",
        "<none>",
    ]
    spec.update(suspend=True, timeZone="Europe/Paris")
    assert cells("cronjobs", {"metadata": meta("report"), "spec": spec})[2:6] == [
        "Europe/Paris",
        "True",
        0,
        "<none>",
    ]


# --- the rest of core/v1 ----------------------------------------------------------------------


def test_namespaces() -> None:
    terminating = {"metadata": meta("old"), "status": {"phase": "Terminating"}}
    assert cells("namespaces", terminating) == ["old", "Terminating", "120m"]


def test_configmaps_secrets_and_serviceaccounts() -> None:
    cm = {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert cells("configmaps", cm) == ["cfg", 3, "120m"]
    assert cells("configmaps", {"metadata": meta("empty")}) == ["empty", 0, "120m"]
    tls = {
        "metadata": meta("tls"),
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "", "tls.key": ""},
    }
    assert cells("secrets", tls) == ["tls", "kubernetes.io/tls", 2, "120m"]
    assert cells("secrets", {"metadata": meta("plain")}) == ["plain", "Opaque", 0, "120m"]
    sa = {"metadata": meta("builder"), "secrets": [{"name": "builder-token"}]}
    assert cells("serviceaccounts", sa) == ["builder", 1, "120m"]
    assert header(builtin("secrets")) == "Name, Type, Data, Age"


def test_event_columns() -> None:
    assert header(builtin("events")) == (
        "Last Seen, Type, Reason, Object, Subobject*, Source*, Message, First Seen*, Count*, Name*"
    )
    assert column_definitions(builtin("events"))[-1]["format"] == "name"


def test_core_event() -> None:
    event = {
        "metadata": meta("web-0.17f1a2b3c4d5"),
        "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{app}"},
        "reason": "BackOff",
        "message": "Back-off restarting failed container app in pod web-0\n",
        "source": {"component": "kubelet", "host": "worker-1"},
        "firstTimestamp": ago(minutes=10),
        "lastTimestamp": ago(seconds=30),
        "count": 12,
        "type": "Warning",
    }
    assert cells("events", event) == [
        "30s",
        "Warning",
        "BackOff",
        "pod/web-0",
        "spec.containers{app}",
        "kubelet, worker-1",
        "Back-off restarting failed container app in pod web-0",
        "10m",
        12,
        "web-0.17f1a2b3c4d5",
    ]


def test_events_api_event_with_a_series() -> None:
    event = {
        "metadata": meta("web-0.1"),
        "involvedObject": {"kind": "Pod", "name": "web-0"},
        "reason": "FailedScheduling",
        "message": "0/3 nodes are available",
        "eventTime": ago(seconds=90),
        "series": {"count": 3, "lastObservedTime": ago(seconds=20)},
        "reportingComponent": "default-scheduler",
        "type": "Warning",
    }
    row = cells("events", event)
    assert row[0] == "20s"
    assert row[5:9] == ["default-scheduler", "0/3 nodes are available", "90s", 3]


def test_singleton_event_without_timestamps() -> None:
    event = {"metadata": meta("ns.1"), "involvedObject": {"kind": "Namespace"}, "type": "Normal"}
    row = cells("events", event)
    assert (row[0], row[3], row[7], row[8]) == ("<unknown>", "namespace", "<unknown>", 1)


# --- other groups -----------------------------------------------------------------------------


def test_leases() -> None:
    lease = {"metadata": meta("kube-scheduler"), "spec": {"holderIdentity": "cp-1_4f1c"}}
    assert cells("leases", lease) == ["kube-scheduler", "cp-1_4f1c", "120m"]
    assert cells("leases", {"metadata": meta("free"), "spec": {}}) == ["free", "", "120m"]


def test_poddisruptionbudgets() -> None:
    pdb = {
        "metadata": meta("web"),
        "spec": {"minAvailable": 2},
        "status": {"disruptionsAllowed": 1},
    }
    assert header(builtin("poddisruptionbudgets")) == (
        "Name, Min Available, Max Unavailable, Allowed Disruptions, Age"
    )
    assert cells("poddisruptionbudgets", pdb) == ["web", "2", "N/A", 1, "120m"]
    pdb = {"metadata": meta("db"), "spec": {"maxUnavailable": "25%"}}
    assert cells("poddisruptionbudgets", pdb) == ["db", "N/A", "25%", 0, "120m"]


def cpu(utilization: int) -> dict[str, Any]:
    target = {"type": "Utilization", "averageUtilization": utilization}
    return {"type": "Resource", "resource": {"name": "cpu", "target": target}}


def test_horizontalpodautoscaler() -> None:
    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "maxReplicas": 10,
        "metrics": [cpu(50)],
    }
    current = {
        "type": "Resource",
        "resource": {"name": "cpu", "current": {"averageUtilization": 30}},
    }
    status = {"currentReplicas": 3, "currentMetrics": [current]}
    hpa = {"metadata": meta("web"), "spec": spec, "status": status}
    assert header(builtin("horizontalpodautoscalers")) == (
        "Name, Reference, Targets, MinPods, MaxPods, Replicas, Age"
    )
    assert cells("horizontalpodautoscalers", hpa) == [
        "web",
        "Deployment/web",
        "cpu: 30%/50%",
        "1",
        10,
        3,
        "120m",
    ]


@pytest.mark.parametrize(
    ("metrics", "current", "expected"),
    [
        ([], [], "<none>"),
        ([cpu(80)], [], "cpu: <unknown>/80%"),
        (
            [
                {
                    "type": "Resource",
                    "resource": {"name": "memory", "target": {"averageValue": "100Mi"}},
                }
            ],
            [{"type": "Resource", "resource": {"current": {"averageValue": "80Mi"}}}],
            "memory: 80Mi/100Mi",
        ),
        (
            [{"type": "Pods", "pods": {"target": {"averageValue": "1k"}}}],
            [{"type": "Pods", "pods": {"current": {"averageValue": "500"}}}],
            "500/1k",
        ),
        (
            [{"type": "External", "external": {"target": {"averageValue": "30"}}}],
            [],
            "<unknown>/30 (avg)",
        ),
        (
            [{"type": "Object", "object": {"target": {"value": "2"}}}],
            [{"type": "Object", "object": {"current": {"value": "1"}}}],
            "1/2",
        ),
        ([cpu(50), cpu(60), cpu(70)], [], "cpu: <unknown>/50%, cpu: <unknown>/60% + 1 more..."),
        ([{"type": "Bogus"}], [], "<unknown type>"),
    ],
)
def test_horizontalpodautoscaler_targets(
    metrics: list[dict[str, Any]], current: list[dict[str, Any]], expected: str
) -> None:
    spec = {
        "scaleTargetRef": {"kind": "Deployment", "name": "web"},
        "minReplicas": 2,
        "metrics": metrics,
    }
    hpa = {"metadata": meta("web"), "spec": spec, "status": {"currentMetrics": current}}
    assert cells("horizontalpodautoscalers", hpa)[2:4] == [expected, "2"]


@pytest.mark.parametrize(
    "plural", ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]
)
def test_webhook_configurations(plural: str) -> None:
    config = {
        "metadata": meta("istio-sidecar-injector"),
        "webhooks": [{"name": "a"}, {"name": "b"}],
    }
    assert header(builtin(plural)) == "Name, Webhooks, Age"
    assert cells(plural, config) == ["istio-sidecar-injector", 2, "120m"]


@pytest.mark.parametrize("plural", ["customresourcedefinitions", "roles", "clusterroles"])
def test_resources_without_a_printer_show_created_at(plural: str) -> None:
    definitions = column_definitions(builtin(plural))
    assert [(c["name"], c["type"]) for c in definitions] == [
        ("Name", "string"),
        ("Created At", "date"),
    ]
    for created in ("2026-11-26T14:37:44Z", "2026-11-26T16:37:44+02:00"):
        obj = {"metadata": {"name": "x", "creationTimestamp": created}}
        assert cells(plural, obj) == ["x", "2026-11-26T14:37:44Z"]
    assert cells(plural, {"metadata": {"name": "x"}}) == ["x", "0001-01-01T00:00:00Z"]


@pytest.mark.parametrize("plural", ["rolebindings", "clusterrolebindings"])
def test_role_bindings(plural: str) -> None:
    binding = {
        "metadata": meta("view-all"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [
            {"kind": "User", "name": "alice"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"},
            {"kind": "User", "name": "bob"},
        ],
    }
    assert header(builtin(plural)) == "Name, Role, Age, Users*, Groups*, ServiceAccounts*"
    assert cells(plural, binding) == [
        "view-all",
        "ClusterRole/view",
        "120m",
        "alice, bob",
        "devs",
        "kube-system/default",
    ]
    noun = "roleBinding" if plural == "rolebindings" else "clusterRoleBinding"
    assert column_definitions(builtin(plural))[3]["description"] == f"Users in the {noun}"


def test_other_builtin_resources_show_name_and_age() -> None:
    ingresses = ResourceType(
        group="networking.k8s.io",
        version="v1",
        plural="ingresses",
        singular="ingress",
        kind="Ingress",
        namespaced=True,
    )
    assert header(ingresses) == "Name, Age"
    row = build_table(ingresses, [{"metadata": meta("web")}], now=NOW)["rows"][0]
    assert row["cells"] == ["web", "120m"]


# --- custom resources -------------------------------------------------------------------------


def custom(*printer_columns: PrinterColumn) -> ResourceType:
    return ResourceType(
        group="canary.meshcanary.io",
        version="v1",
        plural="rollouts",
        singular="rollout",
        kind="Rollout",
        namespaced=True,
        printer_columns=printer_columns,
        crd_name="rollouts.canary.meshcanary.io",
    )


ROLLOUT_COLUMNS = (
    PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
    PrinterColumn("Replicas", "integer", ".spec.replicas", description="Desired replicas"),
    PrinterColumn("Weight", "number", ".spec.weight", priority=1),
    PrinterColumn("Paused", "boolean", ".spec.paused"),
    PrinterColumn("Revision", "string", ".spec.revision", priority=2),
    PrinterColumn("Started", "date", ".status.startedAt"),
    PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
)

ROLLOUT: dict[str, Any] = {
    "apiVersion": "canary.meshcanary.io/v1",
    "kind": "Rollout",
    "metadata": meta("istiod-canary", labels={"app.kubernetes.io/name": "istiod"}),
    "spec": {
        "replicas": 3,
        "weight": 25,
        "paused": False,
        "revision": "1-24-1",
        "hosts": ["a.example.com", "b.example.com"],
        "match": {"port": 8080, "headers": {"x-canary": "<yes> & on"}},
    },
    "status": {
        "conditions": [
            {"type": "Progressing", "status": "True"},
            {"type": "Ready", "status": "False"},
        ],
        "startedAt": ago(minutes=5, seconds=10),
    },
}


def test_custom_resource_printer_columns() -> None:
    rt = custom(*ROLLOUT_COLUMNS)
    definitions = column_definitions(rt)
    assert [(c["name"], c["type"], c["priority"]) for c in definitions] == [
        ("Name", "string", 0),
        ("Ready", "string", 0),
        ("Replicas", "integer", 0),
        ("Weight", "number", 1),
        ("Paused", "boolean", 0),
        ("Revision", "string", 2),
        ("Started", "date", 0),
        ("Age", "date", 0),
    ]
    assert definitions[0]["format"] == "name"
    assert definitions[1]["description"] == (
        "Custom resource definition column (in JSONPath format): "
        '.status.conditions[?(@.type=="Ready")].status'
    )
    assert definitions[2]["description"] == "Desired replicas"
    row = build_table(rt, [ROLLOUT], now=NOW)["rows"][0]
    assert row["cells"] == ["istiod-canary", "False", 3, 25.0, False, "1-24-1", "5m10s", "120m"]
    assert isinstance(row["cells"][3], float)


def test_custom_resource_missing_values_are_empty() -> None:
    rt = custom(*ROLLOUT_COLUMNS)
    bare = {"metadata": {"name": "fresh"}, "spec": {"replicas": None}}
    assert build_table(rt, [bare], now=NOW)["rows"][0]["cells"] == ["fresh"] + [None] * 7


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (PrinterColumn("Hosts", "string", ".spec.hosts"), '["a.example.com","b.example.com"]'),
        (PrinterColumn("Host", "string", ".spec.hosts[1]"), "b.example.com"),
        (PrinterColumn("Host", "string", ".spec.hosts[*]"), "a.example.com"),
        (PrinterColumn("Host", "string", ".spec.hosts[-1]"), "b.example.com"),
        (PrinterColumn("Host", "string", ".spec.hosts[7]"), None),
        (
            PrinterColumn("Match", "string", ".spec.match"),
            '{"headers":{"x-canary":"\\u003cyes\\u003e \\u0026 on"},"port":8080}',
        ),
        (PrinterColumn("Port", "string", ".spec.match.port"), "8080"),
        (PrinterColumn("Paused", "string", ".spec.paused"), "false"),
        (PrinterColumn("App", "string", ".metadata.labels.app\\.kubernetes\\.io/name"), "istiod"),
        (PrinterColumn("App", "string", ".metadata.labels['app.kubernetes.io/name']"), "istiod"),
        (PrinterColumn("Types", "string", ".status.conditions[?(@.status!='True')].type"), "Ready"),
        (PrinterColumn("Replicas", "integer", ".spec.revision"), None),
        (PrinterColumn("Weight", "integer", ".spec.ratio"), 2),
        (PrinterColumn("Paused", "boolean", ".spec.revision"), None),
        (PrinterColumn("Revision", "date", ".spec.revision"), "<invalid>"),
        (PrinterColumn("Started", "date", ".spec.replicas"), None),
        (PrinterColumn("Started", "date", ".spec.empty"), "<unknown>"),
        (PrinterColumn("Odd", "color", ".spec.replicas"), None),
        (PrinterColumn("Bad", "string", ".spec[?("), None),
    ],
)
def test_custom_resource_cells(column: PrinterColumn, expected: Any) -> None:
    obj = {**ROLLOUT, "spec": {**ROLLOUT["spec"], "ratio": 2.7, "empty": ""}}
    assert build_table(custom(column), [obj], now=NOW)["rows"][0]["cells"][1] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.5, "0.5"),
        (3.0, "3"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1.5e-5, "1.5e-05"),
        (-2.25, "-2.25"),
    ],
)
def test_custom_resource_floats_print_as_go_does(value: float, expected: str) -> None:
    obj = {"metadata": {"name": "x"}, "spec": {"weight": value}}
    rt = custom(PrinterColumn("Weight", "string", ".spec.weight"))
    assert build_table(rt, [obj], now=NOW)["rows"][0]["cells"][1] == expected


def test_custom_resource_without_printer_columns_shows_age() -> None:
    rt = custom()
    definitions = column_definitions(rt)
    assert [(c["name"], c["type"]) for c in definitions] == [("Name", "string"), ("Age", "date")]
    assert definitions[1]["description"].startswith("CreationTimestamp is a timestamp")
    assert build_table(rt, [ROLLOUT], now=NOW)["rows"][0]["cells"] == ["istiod-canary", "120m"]

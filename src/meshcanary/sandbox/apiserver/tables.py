"""Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` shows verbatim.

kubectl 1.33 does not format resources itself. It asks for
`application/json;as=Table;v=v1;g=meta.k8s.io` and prints exactly the columns and cells the server
returns, hiding columns of priority > 0 unless `-o wide`. For the sandbox to look like a cluster,
this module reproduces kube-apiserver 1.33's printers (k8s.io/kubernetes
pkg/printers/internalversion/printers.go) cell for cell: the same column names, types and
descriptions, the same "1/2", "CrashLoopBackOff", "3 (5m ago)", "<none>" and "<pending>", and ages
from apimachinery's `duration.HumanDuration`. Resources with no printer there (CRDs, roles) get the
generic convertor's Name and Created At. Custom resources get what apiextensions-apiserver prints:
Name, then the CRD version's `additionalPrinterColumns` evaluated as JSONPath, or Name and Age when
it declares none.

Like the real server, every row carries the wide cells too: kubectl drops them itself. The real
printers see objects after API defaulting; the sandbox may store objects as they were sent, so the
few defaults that change a cell (replicas 1, Service type ClusterIP, port protocol TCP, ...) are
applied here when a field is absent.

Everything here is pure: objects in, JSON-ready dicts out. Rows reference the objects (or their
metadata) rather than copying them, so serialise a table before mutating what it was built from.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from jsonpath_ng.ext.parser import parse as parse_jsonpath

from meshcanary.sandbox.apiserver.registry import PrinterColumn, ResourceType

__all__ = ["build_table", "column_definitions"]

Obj = Mapping[str, Any]
CellsFn = Callable[[Obj, datetime], list[Any]]
RowConditionsFn = Callable[[Obj], list[dict[str, str]]]
JsonPathFinder = Callable[[Obj], list[Any]]

_META_V1 = "meta.k8s.io/v1"
_INCLUDE_OBJECT = ("None", "Metadata", "Object")
_EMPTY: Mapping[str, Any] = {}


# --- the public API ---------------------------------------------------------------------------


def build_table(
    rt: ResourceType,
    objects: Sequence[dict[str, Any]],
    *,
    now: datetime,
    include_object: str = "Metadata",
    resource_version: str = "",
    continue_token: str = "",
    with_definitions: bool = True,
) -> dict[str, Any]:
    """The Table a real kube-apiserver answers for `objects` of type `rt` at time `now`.

    `include_object` is the request's `includeObject` ("None", "Metadata" or "Object"); with
    `with_definitions=False` (watch events after the first) the column definitions are left out.
    """
    if include_object not in _INCLUDE_OBJECT:
        raise ValueError(f"includeObject must be one of {', '.join(_INCLUDE_OBJECT)}")
    printer = _printer_for(rt)
    now = _as_utc(now)
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    table: dict[str, Any] = {"kind": "Table", "apiVersion": _META_V1, "metadata": metadata}
    if with_definitions:
        table["columnDefinitions"] = [dict(column) for column in printer.columns]
    table["rows"] = [printer.row(obj, now, include_object) for obj in objects]
    return table


def column_definitions(rt: ResourceType) -> list[dict[str, Any]]:
    """The columns (`{name, type, format, description, priority}`) a Table of `rt` has."""
    return [dict(column) for column in _printer_for(rt).columns]


# --- printers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Printer:
    """The column definitions of one resource type and how to compute a row's cells."""

    columns: tuple[dict[str, Any], ...]
    cells: CellsFn
    row_conditions: RowConditionsFn | None = None

    def row(self, obj: Obj, now: datetime, include_object: str) -> dict[str, Any]:
        row: dict[str, Any] = {"cells": self.cells(obj, now)}
        if self.row_conditions is not None and (conditions := self.row_conditions(obj)):
            row["conditions"] = conditions
        if include_object == "Metadata":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": _META_V1,
                "metadata": obj.get("metadata") or {},
            }
        elif include_object == "Object":
            row["object"] = obj
        return row


def _definition(name: str, kind: str, fmt: str, description: str, priority: int) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "format": fmt,
        "description": description,
        "priority": priority,
    }


class _Column(NamedTuple):
    """A column of a built-in printer; `swagger` names its description in `_DOCS`."""

    name: str
    kind: str = "string"
    text: str = ""
    swagger: str = ""
    priority: int = 0
    fmt: str = ""

    def definition(self) -> dict[str, Any]:
        description = _DOCS[self.swagger] if self.swagger else self.text
        return _definition(self.name, self.kind, self.fmt, description, self.priority)


_BUILTIN: dict[tuple[str, str], tuple[tuple[_Column, ...], CellsFn]] = {}
_ROW_CONDITIONS: dict[tuple[str, str], RowConditionsFn] = {}


def _prints(group: str, *plurals: str, columns: Iterable[_Column]) -> Callable[[CellsFn], CellsFn]:
    """Register the decorated cells function as the printer of `group`'s `plurals`."""
    frozen = tuple(columns)

    def register(cells: CellsFn) -> CellsFn:
        for plural in plurals:
            _BUILTIN[(group, plural)] = (frozen, cells)
        return cells

    return register


def _printer_for(rt: ResourceType) -> _Printer:
    if rt.is_custom:
        return _custom_printer(rt.printer_columns)
    return _builtin_printer(rt.group, rt.plural)


@functools.cache
def _builtin_printer(group: str, plural: str) -> _Printer:
    columns, cells = _BUILTIN.get((group, plural), ((_NAME, _AGE), _name_age))
    definitions = tuple(column.definition() for column in columns)
    return _Printer(definitions, cells, _ROW_CONDITIONS.get((group, plural)))


_NAME = _Column("Name", swagger="ObjectMeta.name", fmt="name")
_AGE = _Column("Age", swagger="ObjectMeta.creationTimestamp")
_CONTAINERS = _Column("Containers", text="Names of each container in the template.", priority=1)
_IMAGES = _Column("Images", text="Images referenced by each container in the template.", priority=1)
_READY_PODS = _Column("Ready", text="Number of the pod with ready state")
_CREATED_AT = _Column("Created At", "date", swagger="ObjectMeta.creationTimestamp")


def _name_age(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _age(obj, now)]


@_prints("apiextensions.k8s.io", "customresourcedefinitions", columns=(_NAME, _CREATED_AT))
@_prints("rbac.authorization.k8s.io", "roles", "clusterroles", columns=(_NAME, _CREATED_AT))
def _name_created_at(obj: Obj, now: datetime) -> list[Any]:
    """The generic convertor (rest.NewDefaultTableConvertor): name and RFC 3339 creation time."""
    created = _parse_time(_meta(obj).get("creationTimestamp"))
    if created is None:
        return [_name(obj), "0001-01-01T00:00:00Z"]
    return [_name(obj), created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")]


# --- core/v1 ----------------------------------------------------------------------------------

_NAMESPACE_COLUMNS = (_NAME, _Column("Status", text="The status of the namespace"), _AGE)


@_prints("", "namespaces", columns=_NAMESPACE_COLUMNS)
def _namespace(ns: Obj, now: datetime) -> list[Any]:
    return [_name(ns), _map(ns.get("status")).get("phase") or "Active", _age(ns, now)]


_POD_COLUMNS = (
    _NAME,
    _Column("Ready", text="The aggregate readiness state of this pod for accepting traffic."),
    _Column("Status", text="The aggregate status of the containers in this pod."),
    _Column(
        "Restarts",
        text="The number of times the containers in this pod have been restarted and when the "
        "last container in this pod has restarted.",
    ),
    _AGE,
    _Column("IP", swagger="PodStatus.podIP", priority=1),
    _Column("Node", swagger="PodSpec.nodeName", priority=1),
    _Column("Nominated Node", swagger="PodStatus.nominatedNodeName", priority=1),
    _Column("Readiness Gates", swagger="PodSpec.readinessGates", priority=1),
)


@dataclass
class _PodTally:
    """What printPod accumulates over a pod's container statuses."""

    reason: str
    total: int
    ready: int = 0
    restarts: int = 0
    last_restart: datetime | None = None


@_prints("", "pods", columns=_POD_COLUMNS)
def _pod(pod: Obj, now: datetime) -> list[Any]:
    meta, spec, status = _meta(pod), _map(pod.get("spec")), _map(pod.get("status"))
    conditions = _list(status.get("conditions"))
    tally = _pod_tally(spec, status, conditions)
    restarts = str(tally.restarts)
    if tally.restarts and tally.last_restart is not None:
        restarts = f"{tally.restarts} ({_human_duration(now - tally.last_restart)} ago)"
    return [
        meta.get("name", ""),
        f"{tally.ready}/{tally.total}",
        _pod_deletion_reason(meta, status, tally.reason),
        restarts,
        _since(meta.get("creationTimestamp"), now),
        *_pod_wide(spec, status, conditions),
    ]


def _pod_tally(spec: Obj, status: Obj, conditions: list[Any]) -> _PodTally:
    init_specs = _list(spec.get("initContainers"))
    sidecars = [c.get("name") for c in init_specs if c.get("restartPolicy") == "Always"]
    total = len(_list(spec.get("containers"))) + len(sidecars)
    tally = _PodTally(reason=status.get("reason") or status.get("phase") or "", total=total)
    if any((c.get("type"), c.get("reason")) == _SCHEDULING_GATED for c in conditions):
        tally.reason = "SchedulingGated"
    initializing, sidecar_restarts, sidecar_last = _tally_init_containers(
        tally, _list(status.get("initContainerStatuses")), set(sidecars), len(init_specs)
    )
    if not initializing or _first_condition_true(conditions, "Initialized"):
        tally.restarts, tally.last_restart = sidecar_restarts, sidecar_last
        _tally_containers(tally, _list(status.get("containerStatuses")), conditions)
    return tally


_SCHEDULING_GATED = ("PodScheduled", "SchedulingGated")


def _tally_init_containers(
    tally: _PodTally, statuses: list[Any], sidecars: set[Any], init_count: int
) -> tuple[bool, int, datetime | None]:
    """Count init containers up to the first one still initialising (and then return True)."""
    sidecar_restarts, sidecar_last = 0, None
    for index, container in enumerate(statuses):
        count = _int(container.get("restartCount"))
        tally.restarts += count
        tally.last_restart = _later_restart(tally.last_restart, container)
        is_sidecar = container.get("name") in sidecars
        if is_sidecar:
            sidecar_restarts += count
            sidecar_last = _later_restart(sidecar_last, container)
        state = _map(container.get("state"))
        terminated = state.get("terminated")
        if isinstance(terminated, dict) and _int(terminated.get("exitCode")) == 0:
            continue
        if is_sidecar and container.get("started") is True:
            tally.ready += 1 if container.get("ready") else 0
            continue
        tally.reason = _init_reason(index, init_count, terminated, state.get("waiting"))
        return True, sidecar_restarts, sidecar_last
    return False, sidecar_restarts, sidecar_last


def _init_reason(index: int, init_count: int, terminated: Any, waiting: Any) -> str:
    if isinstance(terminated, dict):
        if terminated.get("reason"):
            return f"Init:{terminated['reason']}"
        return f"Init:{_exit_reason(terminated)}"
    if isinstance(waiting, dict) and waiting.get("reason") not in (None, "", "PodInitializing"):
        return f"Init:{waiting['reason']}"
    return f"Init:{index}/{init_count}"


def _tally_containers(tally: _PodTally, statuses: list[Any], conditions: list[Any]) -> None:
    has_running = False
    for container in reversed(statuses):
        tally.restarts += _int(container.get("restartCount"))
        tally.last_restart = _later_restart(tally.last_restart, container)
        state = _map(container.get("state"))
        waiting, terminated = state.get("waiting"), state.get("terminated")
        if isinstance(waiting, dict) and waiting.get("reason"):
            tally.reason = waiting["reason"]
        elif isinstance(terminated, dict):
            tally.reason = terminated.get("reason") or _exit_reason(terminated)
        elif container.get("ready") and isinstance(state.get("running"), dict):
            has_running = True
            tally.ready += 1
    if tally.reason == "Completed" and has_running:
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        tally.reason = "Running" if ready else "NotReady"


def _exit_reason(terminated: Obj) -> str:
    if signal := _int(terminated.get("signal")):
        return f"Signal:{signal}"
    return f"ExitCode:{_int(terminated.get('exitCode'))}"


def _later_restart(current: datetime | None, container: Obj) -> datetime | None:
    """The later of `current` and when the container last terminated."""
    if not container.get("lastState"):
        return current
    terminated = _map(_map(container["lastState"]).get("terminated"))
    finished = _parse_time(terminated.get("finishedAt"))
    return finished if finished and (current is None or finished > current) else current


def _pod_deletion_reason(meta: Obj, status: Obj, reason: str) -> str:
    if meta.get("deletionTimestamp") is None:
        return reason
    if status.get("reason") == "NodeLost":
        return "Unknown"
    return reason if status.get("phase") in ("Succeeded", "Failed") else "Terminating"


def _pod_wide(spec: Obj, status: Obj, conditions: list[Any]) -> list[str]:
    pod_ips = _list(status.get("podIPs"))
    ip = status.get("podIP") or (_map(pod_ips[0]).get("ip") if pod_ips else "")
    gates = _list(spec.get("readinessGates"))
    readiness = "<none>"
    if gates:
        first_status = {c.get("type"): c.get("status") for c in reversed(conditions)}
        passed = sum(1 for gate in gates if first_status.get(gate.get("conditionType")) == "True")
        readiness = f"{passed}/{len(gates)}"
    return [
        ip or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        readiness,
    ]


def _pod_row_conditions(pod: Obj) -> list[dict[str, str]]:
    """Succeeded and Failed pods carry a Completed row condition."""
    phase = _map(pod.get("status")).get("phase")
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return []
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


_ROW_CONDITIONS[("", "pods")] = _pod_row_conditions

_SERVICE_COLUMNS = (
    _NAME,
    _Column("Type", swagger="ServiceSpec.type"),
    _Column("Cluster-IP", swagger="ServiceSpec.clusterIP"),
    _Column("External-IP", swagger="ServiceSpec.externalIPs"),
    _Column("Port(s)", swagger="ServiceSpec.ports"),
    _AGE,
    _Column("Selector", swagger="ServiceSpec.selector", priority=1),
)


@_prints("", "services", columns=_SERVICE_COLUMNS)
def _service(svc: Obj, now: datetime) -> list[Any]:
    spec = _map(svc.get("spec"))
    svc_type = spec.get("type") or "ClusterIP"
    cluster_ips = _list(spec.get("clusterIPs"))
    cluster_ip = spec.get("clusterIP") or (cluster_ips[0] if cluster_ips else "") or "<none>"
    return [
        _name(svc),
        svc_type,
        cluster_ip,
        _service_external_ip(svc_type, spec, _map(svc.get("status"))),
        _service_ports(_list(spec.get("ports"))) or "<none>",
        _age(svc, now),
        _format_labels(spec.get("selector")),
    ]


def _service_external_ip(svc_type: str, spec: Obj, status: Obj) -> str:
    external = [str(ip) for ip in _list(spec.get("externalIPs"))]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if svc_type == "LoadBalancer":
        ingress = _list(_map(status.get("loadBalancer")).get("ingress"))
        addresses = sorted({str(i.get("ip") or i.get("hostname") or "") for i in ingress} - {""})
        if external:
            return ",".join([*addresses, *external])
        return ",".join(addresses) or "<pending>"
    if svc_type == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def _service_ports(ports: list[Any]) -> str:
    pieces = []
    for port in ports:
        node_port = _int(port.get("nodePort"))
        middle = f":{node_port}" if node_port > 0 else ""
        pieces.append(f"{_int(port.get('port'))}{middle}/{port.get('protocol') or 'TCP'}")
    return ",".join(pieces)


@_prints("", "endpoints", columns=(_NAME, _Column("Endpoints", swagger="Endpoints.subsets"), _AGE))
def _endpoints(ep: Obj, now: datetime) -> list[Any]:
    return [_name(ep), _format_endpoints(_list(ep.get("subsets"))), _age(ep, now)]


def _format_endpoints(subsets: list[Any], limit: int = 3) -> str:
    """formatEndpoints: the first three "ip:port"s, then " + N more..."."""
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    for subset in subsets:
        ips = [str(a.get("ip", "")) for a in _list(subset.get("addresses"))]
        for port in _list(subset.get("ports")) or [None]:  # a headless Service has no ports
            count += len(ips)
            for ip in ips[: max(0, limit - len(shown))]:
                shown.append(ip if port is None else _join_host_port(ip, _int(port.get("port"))))
    text = ",".join(shown)
    return f"{text} + {count - limit} more..." if count > limit else text


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


_NODE_COLUMNS = (
    _NAME,
    _Column("Status", text="The status of the node"),
    _Column("Roles", text="The roles of the node"),
    _AGE,
    _Column("Version", swagger="NodeSystemInfo.kubeletVersion"),
    _Column("Internal-IP", swagger="NodeStatus.addresses", priority=1),
    _Column("External-IP", swagger="NodeStatus.addresses", priority=1),
    _Column("OS-Image", swagger="NodeSystemInfo.osImage", priority=1),
    _Column("Kernel-Version", swagger="NodeSystemInfo.kernelVersion", priority=1),
    _Column("Container-Runtime", swagger="NodeSystemInfo.containerRuntimeVersion", priority=1),
)


@_prints("", "nodes", columns=_NODE_COLUMNS)
def _node(node: Obj, now: datetime) -> list[Any]:
    status = _map(node.get("status"))
    info = _map(status.get("nodeInfo"))
    return [
        _name(node),
        _node_status(node, _list(status.get("conditions"))),
        _node_roles(_map(_meta(node).get("labels"))),
        _age(node, now),
        info.get("kubeletVersion", ""),
        _node_address(status, "InternalIP"),
        _node_address(status, "ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _node_status(node: Obj, conditions: list[Any]) -> str:
    ready = [c for c in conditions if c.get("type") == "Ready"]
    parts = ["Ready" if ready[-1].get("status") == "True" else "NotReady"] if ready else ["Unknown"]
    if _map(node.get("spec")).get("unschedulable"):
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def _node_roles(labels: Obj) -> str:
    """findNodeRoles: node-role.kubernetes.io/<role> keys and the kubernetes.io/role value."""
    prefix = "node-role.kubernetes.io/"
    roles = {key[len(prefix) :] for key in labels if key.startswith(prefix) and key != prefix}
    if labels.get("kubernetes.io/role"):
        roles.add(str(labels["kubernetes.io/role"]))
    return ",".join(sorted(roles)) or "<none>"


def _node_address(status: Obj, kind: str) -> str:
    for address in _list(status.get("addresses")):
        if address.get("type") == kind:
            return str(address.get("address", ""))
    return "<none>"


_EVENT_COLUMNS = (
    _Column("Last Seen", swagger="Event.lastTimestamp"),
    _Column("Type", swagger="Event.type"),
    _Column("Reason", swagger="Event.reason"),
    _Column("Object", swagger="Event.involvedObject"),
    _Column("Subobject", swagger="ObjectReference.fieldPath", priority=1),
    _Column("Source", swagger="Event.source", priority=1),
    _Column("Message", swagger="Event.message"),
    _Column("First Seen", swagger="Event.firstTimestamp", priority=1),
    _Column("Count", swagger="Event.count", priority=1),
    _Column("Name", swagger="ObjectMeta.name", priority=1, fmt="name"),
)


@_prints("", "events", columns=_EVENT_COLUMNS)
def _event(ev: Obj, now: datetime) -> list[Any]:
    first_seen = _parse_time(ev.get("firstTimestamp")) or _parse_time(ev.get("eventTime"))
    first = "<unknown>" if first_seen is None else _human_duration(now - first_seen)
    last_seen = _parse_time(ev.get("lastTimestamp"))
    last = first if last_seen is None else _human_duration(now - last_seen)
    count = _int(ev.get("count")) or 1  # singleton events of the events.k8s.io API have none
    if isinstance(series := ev.get("series"), dict):
        last, count = _since(series.get("lastObservedTime"), now), _int(series.get("count"))
    involved = _map(ev.get("involvedObject"))
    kind, name = str(involved.get("kind", "")).lower(), involved.get("name")
    return [
        last,
        ev.get("type", ""),
        ev.get("reason", ""),
        f"{kind}/{name}" if name else kind,
        involved.get("fieldPath", ""),
        _event_source(ev),
        str(ev.get("message", "")).strip(),
        first,
        count,
        _name(ev),
    ]


def _event_source(ev: Obj) -> str:
    source = _map(ev.get("source"))
    component = source.get("component") or ev.get("reportingComponent") or ""
    instance = source.get("host") or ev.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else str(component)


@_prints("", "configmaps", columns=(_NAME, _Column("Data", swagger="ConfigMap.data"), _AGE))
def _configmap(cm: Obj, now: datetime) -> list[Any]:
    size = len(_map(cm.get("data"))) + len(_map(cm.get("binaryData")))
    return [_name(cm), size, _age(cm, now)]


_SECRET_COLUMNS = (
    _NAME,
    _Column("Type", swagger="Secret.type"),
    _Column("Data", swagger="Secret.data"),
    _AGE,
)


@_prints("", "secrets", columns=_SECRET_COLUMNS)
def _secret(secret: Obj, now: datetime) -> list[Any]:
    kind = secret.get("type") or "Opaque"  # core/v1 defaulting
    return [_name(secret), kind, len(_map(secret.get("data"))), _age(secret, now)]


_SERVICEACCOUNT_COLUMNS = (_NAME, _Column("Secrets", swagger="ServiceAccount.secrets"), _AGE)


@_prints("", "serviceaccounts", columns=_SERVICEACCOUNT_COLUMNS)
def _serviceaccount(sa: Obj, now: datetime) -> list[Any]:
    return [_name(sa), len(_list(sa.get("secrets"))), _age(sa, now)]


# --- apps/v1 ----------------------------------------------------------------------------------

_DEPLOYMENT_COLUMNS = (
    _NAME,
    _READY_PODS,
    _Column("Up-to-date", swagger="DeploymentStatus.updatedReplicas"),
    _Column("Available", swagger="DeploymentStatus.availableReplicas"),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _Column("Selector", swagger="DeploymentSpec.selector", priority=1),
)


@_prints("apps", "deployments", columns=_DEPLOYMENT_COLUMNS)
def _deployment(deploy: Obj, now: datetime) -> list[Any]:
    spec, status = _map(deploy.get("spec")), _map(deploy.get("status"))
    selector = _selector_string(spec.get("selector"))
    return [
        _name(deploy),
        f"{_int(status.get('readyReplicas'))}/{_replicas(spec)}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        _age(deploy, now),
        *_containers(spec.get("template")),
        "<invalid>" if selector is None else selector,
    ]


_REPLICASET_COLUMNS = (
    _NAME,
    _Column("Desired", "integer", swagger="ReplicaSetSpec.replicas"),
    _Column("Current", "integer", swagger="ReplicaSetStatus.replicas"),
    _Column("Ready", "integer", swagger="ReplicaSetStatus.readyReplicas"),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _Column("Selector", swagger="ReplicaSetSpec.selector", priority=1),
)


@_prints("apps", "replicasets", columns=_REPLICASET_COLUMNS)
def _replicaset(rs: Obj, now: datetime) -> list[Any]:
    spec, status = _map(rs.get("spec")), _map(rs.get("status"))
    return [
        _name(rs),
        _replicas(spec),
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        _age(rs, now),
        *_containers(spec.get("template")),
        _format_label_selector(spec.get("selector")),
    ]


@_prints("apps", "statefulsets", columns=(_NAME, _READY_PODS, _AGE, _CONTAINERS, _IMAGES))
def _statefulset(sts: Obj, now: datetime) -> list[Any]:
    spec, status = _map(sts.get("spec")), _map(sts.get("status"))
    ready = f"{_int(status.get('readyReplicas'))}/{_replicas(spec)}"
    return [_name(sts), ready, _age(sts, now), *_containers(spec.get("template"))]


_DAEMONSET_COLUMNS = (
    _NAME,
    _Column("Desired", "integer", swagger="DaemonSetStatus.desiredNumberScheduled"),
    _Column("Current", "integer", swagger="DaemonSetStatus.currentNumberScheduled"),
    _Column("Ready", "integer", swagger="DaemonSetStatus.numberReady"),
    _Column("Up-to-date", "integer", swagger="DaemonSetStatus.updatedNumberScheduled"),
    _Column("Available", "integer", swagger="DaemonSetStatus.numberAvailable"),
    _Column("Node Selector", swagger="PodSpec.nodeSelector"),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _Column("Selector", swagger="DaemonSetSpec.selector", priority=1),
)
_DAEMONSET_COUNTS = (
    "desiredNumberScheduled",
    "currentNumberScheduled",
    "numberReady",
    "updatedNumberScheduled",
    "numberAvailable",
)


@_prints("apps", "daemonsets", columns=_DAEMONSET_COLUMNS)
def _daemonset(ds: Obj, now: datetime) -> list[Any]:
    spec, status = _map(ds.get("spec")), _map(ds.get("status"))
    template = spec.get("template")
    return [
        _name(ds),
        *(_int(status.get(field)) for field in _DAEMONSET_COUNTS),
        _format_labels(_map(_map(template).get("spec")).get("nodeSelector")),
        _age(ds, now),
        *_containers(template),
        _format_label_selector(spec.get("selector")),
    ]


_CONTROLLERREVISION_COLUMNS = (
    _NAME,
    _Column("Controller", text="Controller of the object"),
    _Column("Revision", swagger="ControllerRevision.revision"),
    _AGE,
)


@_prints("apps", "controllerrevisions", columns=_CONTROLLERREVISION_COLUMNS)
def _controllerrevision(cr: Obj, now: datetime) -> list[Any]:
    owners = _list(_meta(cr).get("ownerReferences"))
    controller = next((o for o in owners if o.get("controller") is True), None)
    return [_name(cr), _controller_name(controller), _int(cr.get("revision")), _age(cr, now)]


def _controller_name(owner: Obj | None) -> str:
    """formatResourceName: "<kind>.<group>/<name>" in lower case, "<none>" without a controller."""
    if owner is None:
        return "<none>"
    group = str(owner.get("apiVersion", "")).rpartition("/")[0]
    kind = str(owner.get("kind", ""))
    group_kind = f"{kind}.{group}" if group else kind
    name = str(owner.get("name", ""))
    return f"{group_kind.lower()}/{name}" if group_kind else name


# --- batch/v1 ---------------------------------------------------------------------------------

_JOB_COLUMNS = (
    _NAME,
    _Column("Status", text="Status of the job."),
    _Column("Completions", swagger="JobStatus.succeeded"),
    _Column("Duration", text="Time required to complete the job."),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _Column("Selector", swagger="JobSpec.selector", priority=1),
)


@_prints("batch", "jobs", columns=_JOB_COLUMNS)
def _job(job: Obj, now: datetime) -> list[Any]:
    spec, status = _map(job.get("spec")), _map(job.get("status"))
    return [
        _name(job),
        _job_status(job, _list(status.get("conditions"))),
        _job_completions(spec, _int(status.get("succeeded"))),
        _job_duration(status, now),
        _age(job, now),
        *_containers(spec.get("template")),
        _format_label_selector(spec.get("selector")),
    ]


def _job_status(job: Obj, conditions: list[Any]) -> str:
    for condition in ("Complete", "Failed"):
        if _first_condition_true(conditions, condition):
            return condition
    if _meta(job).get("deletionTimestamp") is not None:
        return "Terminating"
    for condition in ("Suspended", "FailureTarget"):
        if _first_condition_true(conditions, condition):
            return condition
    return "Running"


def _job_completions(spec: Obj, succeeded: int) -> str:
    completions, parallelism = spec.get("completions"), spec.get("parallelism")
    if completions is None and parallelism is None:
        completions = 1  # batch/v1 defaulting
    if completions is not None:
        return f"{succeeded}/{_int(completions)}"
    parallelism = _int(parallelism)
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _job_duration(status: Obj, now: datetime) -> str:
    started = _parse_time(status.get("startTime"))
    if started is None:
        return ""
    completed = _parse_time(status.get("completionTime"))
    return _human_duration((completed or now) - started)


_CRONJOB_COLUMNS = (
    _NAME,
    _Column("Schedule", swagger="CronJobSpec.schedule"),
    _Column("Timezone", swagger="CronJobSpec.timeZone"),
    _Column("Suspend", "boolean", swagger="CronJobSpec.suspend"),
    _Column("Active", "integer", swagger="CronJobStatus.active"),
    _Column("Last Schedule", swagger="CronJobStatus.lastScheduleTime"),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _Column("Selector", swagger="JobSpec.selector", priority=1),
)


@_prints("batch", "cronjobs", columns=_CRONJOB_COLUMNS)
def _cronjob(cj: Obj, now: datetime) -> list[Any]:
    spec, status = _map(cj.get("spec")), _map(cj.get("status"))
    job_spec = _map(_map(spec.get("jobTemplate")).get("spec"))
    suspend = spec.get("suspend")
    last = status.get("lastScheduleTime")
    return [
        _name(cj),
        spec.get("schedule", ""),
        spec.get("timeZone") or "<none>",
        "True" if suspend is True else "False",  # batch/v1 defaults suspend to false
        len(_list(status.get("active"))),
        "<none>" if last is None else _since(last, now),
        _age(cj, now),
        *_containers(job_spec.get("template")),
        _format_label_selector(job_spec.get("selector")),
    ]


# --- other groups -----------------------------------------------------------------------------

_LEASE_COLUMNS = (_NAME, _Column("Holder", swagger="LeaseSpec.holderIdentity"), _AGE)


@_prints("coordination.k8s.io", "leases", columns=_LEASE_COLUMNS)
def _lease(lease: Obj, now: datetime) -> list[Any]:
    holder = _map(lease.get("spec")).get("holderIdentity") or ""
    return [_name(lease), holder, _age(lease, now)]


_PDB_COLUMNS = (
    _NAME,
    _Column("Min Available", text="The minimum number of pods that must be available."),
    _Column("Max Unavailable", text="The maximum number of pods that may be unavailable."),
    _Column(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    _AGE,
)


@_prints("policy", "poddisruptionbudgets", columns=_PDB_COLUMNS)
def _pdb(pdb: Obj, now: datetime) -> list[Any]:
    spec = _map(pdb.get("spec"))
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    return [
        _name(pdb),
        "N/A" if min_available is None else str(min_available),
        "N/A" if max_unavailable is None else str(max_unavailable),
        _int(_map(pdb.get("status")).get("disruptionsAllowed")),
        _age(pdb, now),
    ]


_HPA_COLUMNS = (
    _NAME,
    _Column("Reference", swagger="HorizontalPodAutoscalerSpec.scaleTargetRef"),
    _Column("Targets", swagger="HorizontalPodAutoscalerSpec.metrics"),
    _Column("MinPods", swagger="HorizontalPodAutoscalerSpec.minReplicas"),
    _Column("MaxPods", swagger="HorizontalPodAutoscalerSpec.maxReplicas"),
    _Column("Replicas", swagger="HorizontalPodAutoscalerStatus.currentReplicas"),
    _AGE,
)


@_prints("autoscaling", "horizontalpodautoscalers", columns=_HPA_COLUMNS)
def _hpa(hpa: Obj, now: datetime) -> list[Any]:
    spec, status = _map(hpa.get("spec")), _map(hpa.get("status"))
    target = _map(spec.get("scaleTargetRef"))
    min_replicas = spec.get("minReplicas")
    return [
        _name(hpa),
        f"{target.get('kind', '')}/{target.get('name', '')}",
        _hpa_targets(_list(spec.get("metrics")), _list(status.get("currentMetrics"))),
        "1" if min_replicas is None else str(_int(min_replicas)),  # autoscaling/v2 defaulting
        _int(spec.get("maxReplicas")),
        _int(status.get("currentReplicas")),
        _age(hpa, now),
    ]


_HPA_SOURCES = {
    "External": "external",
    "Object": "object",
    "Pods": "pods",
    "Resource": "resource",
    "ContainerResource": "containerResource",
}


def _hpa_targets(specs: list[Any], statuses: list[Any], limit: int = 2) -> str:
    """formatHPAMetrics: "cpu: 30%/50%, ..." for the first two metrics, then " + N more..."."""
    if not specs:
        return "<none>"
    shown = []
    for index, spec in enumerate(specs):
        source = _HPA_SOURCES.get(spec.get("type"))
        if source is None:
            shown.append("<unknown type>")
            continue
        status = _map(statuses[index]) if index < len(statuses) else _EMPTY
        reading = status.get(source)
        current = _map(reading.get("current")) if isinstance(reading, dict) else None
        shown.append(_hpa_metric(source, _map(spec.get(source)), current))
    text = ", ".join(shown[:limit])
    return f"{text} + {len(shown) - limit} more..." if len(shown) > limit else text


def _hpa_metric(source: str, spec: Obj, current: Obj | None) -> str:
    """One metric as "current/target"; `current` is None when the status has no reading."""
    target = _map(spec.get("target"))
    average = target.get("averageValue")
    if source == "pods":
        return f"{_reading(current, 'averageValue')}/{_quantity(average)}"
    if source in ("external", "object"):
        if average is None:
            return f"{_reading(current, 'value')}/{_quantity(target.get('value'))}"
        value = None if current is None else current.get("averageValue")
        return f"{'<unknown>' if value is None else _quantity(value)}/{_quantity(average)} (avg)"
    name = spec.get("name", "")
    if average is not None:
        return f"{name}: {_reading(current, 'averageValue')}/{_quantity(average)}"
    utilization = None if current is None else current.get("averageUtilization")
    value = "<unknown>" if utilization is None else f"{_int(utilization)}%"
    goal = target.get("averageUtilization")
    return f"{name}: {value}/{'<auto>' if goal is None else f'{_int(goal)}%'}"


def _reading(current: Obj | None, field: str) -> str:
    return "<unknown>" if current is None else _quantity(current.get(field))


_WEBHOOKS = _Column(
    "Webhooks",
    "integer",
    "Webhooks indicates the number of webhooks registered in this configuration",
)


@_prints(
    "admissionregistration.k8s.io",
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
    columns=(_NAME, _WEBHOOKS, _AGE),
)
def _webhooks(config: Obj, now: datetime) -> list[Any]:
    return [_name(config), len(_list(config.get("webhooks"))), _age(config, now)]


def _binding_columns(kind: str) -> tuple[_Column, ...]:
    noun = kind[0].lower() + kind[1:]
    return (
        _NAME,
        _Column("Role", swagger=f"{kind}.roleRef"),
        _AGE,
        _Column("Users", text=f"Users in the {noun}", priority=1),
        _Column("Groups", text=f"Groups in the {noun}", priority=1),
        _Column("ServiceAccounts", text=f"ServiceAccounts in the {noun}", priority=1),
    )


_RBAC = "rbac.authorization.k8s.io"


@_prints(_RBAC, "rolebindings", columns=_binding_columns("RoleBinding"))
@_prints(_RBAC, "clusterrolebindings", columns=_binding_columns("ClusterRoleBinding"))
def _binding(binding: Obj, now: datetime) -> list[Any]:
    ref = _map(binding.get("roleRef"))
    subjects: dict[Any, list[str]] = {"User": [], "Group": [], "ServiceAccount": []}
    for subject in _list(binding.get("subjects")):
        kind, name = subject.get("kind"), str(subject.get("name", ""))
        if kind == "ServiceAccount":
            name = f"{subject.get('namespace', '')}/{name}"
        subjects.get(kind, []).append(name)
    return [
        _name(binding),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        _age(binding, now),
        *(", ".join(subjects[kind]) for kind in ("User", "Group", "ServiceAccount")),
    ]


# --- the sandbox's own Fault (sandbox/faults.py) ----------------------------------------------

_FAULT_COLUMNS = (
    _NAME,
    _Column("Type", text="pod (applied by the simulated kubelet) or api (by the API server)"),
    _Column("Effect", text="What the fault does"),
    _Column("Detail", text="Status code, latency, delay and fraction of requests hit"),
    _Column("Scope", text="What the fault applies to (<all>: everything)"),
    _AGE,
)
_FAULT_DETAIL = {"code": "{}", "latencyMs": "{}ms", "afterSeconds": "after {}s"}
_FAULT_SCOPE = (
    "proxyVersion",
    "namespaceSelector",
    "podSelector",
    "verbs",
    "resources",
    "namespaces",
)


@_prints("sandbox.meshcanary.io", "faults", columns=_FAULT_COLUMNS)
def _fault(fault: Obj, now: datetime) -> list[Any]:
    spec = _map(fault.get("spec"))
    kind = "pod" if "pod" in spec else "api"
    body = _map(spec.get(kind))
    detail = [fmt.format(body[key]) for key, fmt in _FAULT_DETAIL.items() if key in body]
    if "startDelaySeconds" in body:
        detail.append(f"{body['startDelaySeconds']}s")
    if body.get("fraction", 1) != 1:
        detail.append(f"{float(body['fraction']) * 100:g}%")
    scope = []
    for key in _FAULT_SCOPE:
        value = body.get(key)
        if isinstance(value, list):
            scope.append(f"{key}={','.join(map(str, value))}")
        elif key.endswith("Selector") and value is not None:
            scope.append(f"{key}={_format_label_selector(value)}")
        elif value is not None:
            scope.append(f"{key}={value}")
    cells = [kind, str(body.get("effect", "")), ", ".join(detail), " ".join(scope) or "<all>"]
    return [_name(fault), *cells, _age(fault, now)]


# --- custom resources -------------------------------------------------------------------------

_CR_AGE = PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp")


@functools.lru_cache(maxsize=512)
def _custom_printer(columns: tuple[PrinterColumn, ...]) -> _Printer:
    """apiextensions-apiserver's convertor: Name, then each printer column (by default Age)."""
    if columns:
        definitions = (_NAME.definition(), *(_custom_definition(c) for c in columns))
    else:
        columns = (_CR_AGE,)
        age = _Column("Age", "date", swagger="ObjectMeta.creationTimestamp")
        definitions = (_NAME.definition(), age.definition())
    evaluators = tuple(_custom_evaluator(column) for column in columns)

    def cells(obj: Obj, now: datetime) -> list[Any]:
        return [_name(obj), *(evaluate(obj, now) for evaluate in evaluators)]

    return _Printer(definitions, cells)


def _custom_definition(column: PrinterColumn) -> dict[str, Any]:
    description = column.description or (
        f"Custom resource definition column (in JSONPath format): {column.json_path}"
    )
    return _definition(column.name, column.type, column.format, description, column.priority)


def _custom_evaluator(column: PrinterColumn) -> Callable[[Obj, datetime], Any]:
    find = _compile_json_path(column.json_path)
    kind = column.type

    def evaluate(obj: Obj, now: datetime) -> Any:
        found = find(obj)
        return _custom_cell(kind, found[0], now) if found else None

    return evaluate


def _custom_cell(kind: str, value: Any, now: datetime) -> Any:
    """cellForJSONValue, and the jsonpath text printing that "string" columns get instead."""
    if value is None:
        return None
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return _go_text(value)
    if kind == "integer" and is_number:
        return int(value)
    if kind == "number" and is_number:
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "date" and isinstance(value, str):
        return _date_cell(value, now)
    return None


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def _date_cell(value: str, now: datetime) -> str:
    """A "date" cell: the age of an RFC 3339 timestamp (as metav1.Time parses a query value)."""
    if value in ("", "null"):
        return "<unknown>"
    try:
        moment = _as_utc(datetime.fromisoformat(value)) if _RFC3339.fullmatch(value) else None
    except ValueError:
        moment = None
    if moment is None:
        return "<invalid>"
    return "<unknown>" if moment == _ZERO_TIME else _human_duration(now - moment)


_STEP = re.compile(
    r"\.(?P<field>(?:[\w\-/:]|\\\.)+)"
    r"|\[(?P<index>\d+)\]"
    r"|\[(?P<quote>['\"])(?P<key>[^'\"\\]*)(?P=quote)\]"
    r"|\[(?P<every>\*)\]"
    r"|\[\?\(@\.(?P<test>[\w\-/]+)\s*==\s*(?P<q>['\"])(?P<literal>[^'\"\\]*)(?P=q)\)\]"
)
_ESCAPED_SEGMENT = re.compile(r"\.((?:[^.\[\\]|\\\.)*\\\.(?:[^.\[\\]|\\\.)*)")


class _Filter(NamedTuple):
    """`[?(@.key=="value")]`, or `[*]` when `key` is None: which items of a list to keep."""

    key: str | None
    value: str | None

    def keeps(self, item: Any) -> bool:
        return self.key is None or (isinstance(item, dict) and item.get(self.key) == self.value)


_Step = str | int | _Filter


@functools.lru_cache(maxsize=1024)
def _compile_json_path(path: str) -> JsonPathFinder:
    """A CRD column's JSONPath (`.spec.foo`, `.items[0]`, filters ...) as a finder of its matches.

    Fields, indexes, `[*]` and equality filters are walked directly, as they are in nearly every
    CRD; anything fancier goes to jsonpath_ng. A path that does not parse matches nothing, so its
    cells stay empty.
    """
    steps = _direct_steps(path)
    if steps is not None:
        return functools.partial(_walk, steps)
    expression = path if path.startswith("$") else "$" + path
    expression = _ESCAPED_SEGMENT.sub(
        lambda match: "['" + match.group(1).replace("\\.", ".") + "']", expression
    )
    try:
        compiled = parse_jsonpath(expression)
    except Exception:  # jsonpath_ng raises assorted error types for malformed paths
        return lambda obj: []
    return lambda obj: [match.value for match in compiled.find(obj)]


def _direct_steps(path: str) -> tuple[_Step, ...] | None:
    """`.a.b[0]['c.d']` as ("a", "b", 0, "c.d"); None for anything `_walk` cannot follow."""
    steps: list[_Step] = []
    position = 0
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            return None
        if match["field"] is not None:
            steps.append(match["field"].replace("\\.", "."))
        elif match["index"] is not None:
            steps.append(int(match["index"]))
        elif match["key"] is not None:
            steps.append(match["key"])
        else:
            steps.append(_Filter(match["test"], match["literal"]))
        position = match.end()
    return tuple(steps) if steps else None


def _walk(steps: tuple[_Step, ...], obj: Obj) -> list[Any]:
    """Every value `steps` lead to from `obj`, in document order (client-go's order too)."""
    values: list[Any] = [obj]
    for step in steps:
        found: list[Any] = []
        for value in values:
            if isinstance(step, str):
                if isinstance(value, dict) and step in value:
                    found.append(value[step])
            elif isinstance(step, int):
                if isinstance(value, list) and step < len(value):
                    found.append(value[step])
            elif isinstance(value, list):
                found.extend(item for item in value if step.keeps(item))
        if not found:
            return []
        values = found
    return values


# --- formatting helpers -----------------------------------------------------------------------

_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp, or None when unset, zero or unparseable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = _as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None
    return None if parsed == _ZERO_TIME else parsed


def _since(value: Any, now: datetime) -> str:
    """translateTimestampSince: how long ago `value` was, "<unknown>" when unset."""
    moment = _parse_time(value)
    return "<unknown>" if moment is None else _human_duration(now - moment)


def _age(obj: Obj, now: datetime) -> str:
    return _since(_meta(obj).get("creationTimestamp"), now)


def _human_duration(delta: timedelta) -> str:
    """apimachinery's duration.HumanDuration: ~2-3 significant figures, e.g. "5m10s", "2d3h"."""
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    seconds = micros // 1_000_000 if micros >= 0 else -(-micros // 1_000_000)  # Go truncates
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86_400
    if minutes < 10:
        return _two_units(minutes, "m", seconds % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _two_units(days, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        return _two_units(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _two_units(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    return f"{major}{major_unit}{minor}{minor_unit}" if minor else f"{major}{major_unit}"


def _format_labels(labels: Any) -> str:
    """labels.FormatLabels: sorted "k=v" pairs, "<none>" when empty."""
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(sorted(f"{key}={value}" for key, value in labels.items()))


def _selector_string(selector: Any) -> str | None:
    """metav1.LabelSelectorAsSelector(selector).String(); None when the selector is invalid."""
    if not isinstance(selector, dict):
        return ""
    labels = _map(selector.get("matchLabels"))
    requirements = [(str(key), f"{key}={value}") for key, value in labels.items()]
    for expression in _list(selector.get("matchExpressions")):
        requirement = _requirement(_map(expression))
        if requirement is None:
            return None
        requirements.append(requirement)
    requirements.sort(key=lambda requirement: requirement[0])
    return ",".join(text for _, text in requirements)


def _requirement(expression: Obj) -> tuple[str, str] | None:
    key, operator = str(expression.get("key", "")), expression.get("operator")
    values = sorted(str(value) for value in _list(expression.get("values")))
    if operator in ("In", "NotIn") and values:
        return key, f"{key} {operator.lower()} ({','.join(values)})"
    if operator == "Exists" and not values:
        return key, key
    if operator == "DoesNotExist" and not values:
        return key, f"!{key}"
    return None


def _format_label_selector(selector: Any) -> str:
    """metav1.FormatLabelSelector: "<none>" for an empty selector, "<error>" for a bad one."""
    text = _selector_string(selector)
    return "<error>" if text is None else text or "<none>"


def _containers(template: Any) -> list[str]:
    """layoutContainerCells: the template's container names and images, comma-joined."""
    containers = _list(_map(_map(template).get("spec")).get("containers"))
    names = ",".join(str(c.get("name", "")) for c in containers)
    images = ",".join(str(c.get("image", "")) for c in containers)
    return [names, images]


def _replicas(spec: Obj) -> int:
    replicas = spec.get("replicas")
    return 1 if replicas is None else _int(replicas)  # apps/v1 defaulting


def _first_condition_true(conditions: list[Any], kind: str) -> bool:
    for condition in conditions:
        if condition.get("type") == kind:
            return bool(condition.get("status") == "True")
    return False


def _quantity(value: Any) -> str:
    """A resource.Quantity as its String(); "<nil>" for an absent one, as Go prints it."""
    return "<nil>" if value is None else _go_text(value)


def _go_text(value: Any) -> str:
    """How client-go's jsonpath prints a JSON value: strings raw, collections as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    text = json.dumps(
        _integral_floats(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    for char, escaped in _GO_JSON_ESCAPES:
        text = text.replace(char, escaped)
    return text


_GO_JSON_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def _integral_floats(value: Any) -> Any:
    """Whole floats as ints, the way Go's encoding/json writes a float64 such as 3.0 ("3")."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats(item) for item in value]
    return value


def _go_float(value: float) -> str:
    """fmt.Sprint(float64), i.e. shortest %g: %e form when the exponent is < -4 or >= 6."""
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + int(exponent)  # digits before the decimal point
    prefix = "-" if sign else ""
    if not -4 <= point - 1 < 6:
        fraction = f".{digits[1:]}" if len(digits) > 1 else ""
        return f"{prefix}{digits[0]}{fraction}e{'-' if point < 1 else '+'}{abs(point - 1):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def _meta(obj: Obj) -> Obj:
    return _map(obj.get("metadata"))


def _name(obj: Obj) -> Any:
    return _meta(obj).get("name", "")


def _map(value: Any) -> Obj:
    return value if isinstance(value, dict) else _EMPTY


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, int):  # bool
        return int(value)
    return int(value) if isinstance(value, float) and math.isfinite(value) else 0


# Column descriptions, verbatim from the 1.33 API types' swagger docs (k8s.io/api and
# k8s.io/apimachinery `types_swagger_doc_generated.go`), keyed "<Go type>.<JSON field>".
_DOCS: dict[str, str] = {
    "ObjectMeta.name": (
        "Name must be unique within a namespace. Is required when creating resources, "
        "although some resources may allow a client to request the generation of an "
        "appropriate name automatically. Name is primarily intended for creation "
        "idempotence and configuration definition. Cannot be updated. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
    ),
    "ObjectMeta.creationTimestamp": (
        "CreationTimestamp is a timestamp representing the server time when this object "
        "was created. It is not guaranteed to be set in happens-before order across "
        "separate operations. Clients may not set this value. It is represented in RFC3339 "
        "form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More "
        "info: https://git.k8s.io/community/contributors/devel/sig-architec"
        "ture/api-conventions.md#metadata"
    ),
    "PodStatus.podIP": (
        "podIP address allocated to the pod. Routable at least within the cluster. Empty "
        "if not yet allocated."
    ),
    "PodStatus.nominatedNodeName": (
        "nominatedNodeName is set only when this pod preempts other pods on the node, but "
        "it cannot be scheduled right away as preemption victims receive their graceful "
        "termination periods. This field does not guarantee that the pod will be scheduled "
        "on this node. Scheduler may decide to place the pod elsewhere if other nodes "
        "become available sooner. Scheduler may also decide to give the resources on this "
        "node to a higher priority pod that is created after preemption. As a result, this "
        "field may be different than PodSpec.nodeName when the pod is scheduled."
    ),
    "PodSpec.nodeName": (
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a "
        "candidate for scheduling by the scheduler defined in schedulerName. Once this "
        "field is set, the kubelet for this node becomes responsible for the lifecycle of "
        "this pod. This field should not be used to express a desire for the pod to be "
        "scheduled on a specific node. "
        "https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename"
    ),
    "PodSpec.readinessGates": (
        "If specified, all readiness gates will be evaluated for pod readiness. A pod is "
        "ready when all its containers are ready AND all conditions specified in the "
        'readiness gates have status equal to "True" More info: '
        "https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates"
    ),
    "PodSpec.nodeSelector": (
        "NodeSelector is a selector which must be true for the pod to fit on a node. "
        "Selector which must match a node's labels for the pod to be scheduled on that "
        "node. More info: "
        "https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"
    ),
    "ServiceSpec.type": (
        "type determines how the Service is exposed. Defaults to ClusterIP. Valid options "
        'are ExternalName, ClusterIP, NodePort, and LoadBalancer. "ClusterIP" allocates '
        "a cluster-internal IP address for load-balancing to endpoints. Endpoints are "
        "determined by the selector or if that is not specified, by manual construction of "
        'an Endpoints object or EndpointSlice objects. If clusterIP is "None", no '
        "virtual IP is allocated and the endpoints are published as a set of endpoints "
        'rather than a virtual IP. "NodePort" builds on ClusterIP and allocates a port '
        "on every node which routes to the same endpoints as the clusterIP. "
        '"LoadBalancer" builds on NodePort and creates an external load-balancer (if '
        "supported in the current cloud) which routes to the same endpoints as the "
        'clusterIP. "ExternalName" aliases this service to the specified externalName. '
        "Several other fields do not apply to ExternalName services. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/serv"
        "ice/#publishing-services-service-types"
    ),
    "ServiceSpec.clusterIP": (
        "clusterIP is the IP address of the service and is usually assigned randomly. If "
        "an address is specified manually, is in-range (as per system configuration), and "
        "is not in use, it will be allocated to the service; otherwise creation of the "
        "service will fail. This field may not be changed through updates unless the type "
        "field is also being changed to ExternalName (which requires this field to be "
        "blank) or the type field is being changed from ExternalName (in which case this "
        "field may optionally be specified, as describe above).  Valid values are "
        '"None", empty string (""), or a valid IP address. Setting this to "None" '
        'makes a "headless service" (no virtual IP), which is useful when direct '
        "endpoint connections are preferred and proxying is not required.  Only applies to "
        "types ClusterIP, NodePort, and LoadBalancer. If this field is specified when "
        "creating a Service of type ExternalName, creation will fail. This field will be "
        "wiped when updating a Service to type ExternalName. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/serv"
        "ice/#virtual-ips-and-service-proxies"
    ),
    "ServiceSpec.externalIPs": (
        "externalIPs is a list of IP addresses for which nodes in the cluster will also "
        "accept traffic for this service.  These IPs are not managed by Kubernetes.  The "
        "user is responsible for ensuring that traffic arrives at a node with this IP.  A "
        "common example is external load-balancers that are not part of the Kubernetes "
        "system."
    ),
    "ServiceSpec.ports": (
        "The list of ports that are exposed by this service. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/serv"
        "ice/#virtual-ips-and-service-proxies"
    ),
    "ServiceSpec.selector": (
        "Route service traffic to pods with label keys and values matching this selector. "
        "If empty or not present, the service is assumed to have an external process "
        "managing its endpoints, which Kubernetes will not modify. Only applies to types "
        "ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More "
        "info: https://kubernetes.io/docs/concepts/services-networking/service/"
    ),
    "Endpoints.subsets": (
        "The set of all endpoints is the union of all subsets. Addresses are placed into "
        "subsets according to the IPs they share. A single address with multiple ports, "
        "some of which are ready and some of which are not (because they come from "
        "different containers) will result in the address being displayed in different "
        "subsets for the different ports. No address will appear in both Addresses and "
        "NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a "
        "service."
    ),
    "NodeSystemInfo.kubeletVersion": "Kubelet Version reported by the node.",
    "NodeSystemInfo.osImage": (
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."
    ),
    "NodeSystemInfo.kernelVersion": (
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."
    ),
    "NodeSystemInfo.containerRuntimeVersion": (
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. "
        "containerd://1.4.2)."
    ),
    "NodeStatus.addresses": (
        "List of addresses reachable to the node. Queried from cloud provider, if "
        "available. More info: "
        "https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field "
        "is declared as mergeable, but the merge key is not sufficiently unique, which can "
        "cause data corruption when it is merged. Callers should instead use a "
        "full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers "
        "should assume that addresses can change during the lifetime of a Node. However, "
        "there are some exceptions where this may not be possible, such as Pods that "
        "inherit a Node's address in its own status or consumers of the downward API "
        "(status.hostIP)."
    ),
    "Event.lastTimestamp": (
        "The time at which the most recent occurrence of this event was recorded."
    ),
    "Event.type": "Type of this event (Normal, Warning), new types could be added in the future",
    "Event.reason": (
        "This should be a short, machine understandable string that gives the reason for "
        "the transition into the object's current status."
    ),
    "Event.involvedObject": "The object that this event is about.",
    "Event.source": (
        "The component reporting this event. Should be a short machine understandable string."
    ),
    "Event.message": "A human-readable description of the status of this operation.",
    "Event.firstTimestamp": (
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"
    ),
    "Event.count": "The number of times this event has occurred.",
    "ObjectReference.fieldPath": (
        "If referring to a piece of an object instead of an entire object, this string "
        "should contain a valid JSON/Go field access statement, such as "
        "desiredState.manifest.containers[2]. For example, if the object reference is to a "
        "container within a pod, this would take on a value like: "
        '"spec.containers{name}" (where "name" refers to the name of the container '
        "that triggered the event) or if no container name is specified "
        '"spec.containers[2]" (container with index 2 in this pod). This syntax is '
        "chosen only to have some well-defined way of referencing a part of an object."
    ),
    "Secret.type": (
        "Used to facilitate programmatic handling of secret data. More info: "
        "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"
    ),
    "Secret.data": (
        "Data contains the secret data. Each key must consist of alphanumeric characters, "
        "'-', '_' or '.'. The serialized form of the secret data is a base64 encoded "
        "string, representing the arbitrary (possibly non-string) data value here. "
        "Described in https://tools.ietf.org/html/rfc4648#section-4"
    ),
    "ServiceAccount.secrets": (
        "Secrets is a list of the secrets in the same namespace that pods running using "
        "this ServiceAccount are allowed to use. Pods are only limited to this list if "
        'this service account has a "kubernetes.io/enforce-mountable-secrets" annotation '
        'set to "true". The "kubernetes.io/enforce-mountable-secrets" annotation is '
        "deprecated since v1.32. Prefer separate namespaces to isolate access to mounted "
        "secrets. This field should not be used to find auto-generated service account "
        "token secrets for use outside of pods. Instead, tokens can be requested directly "
        "using the TokenRequest API, or service account token secrets can be manually "
        "created. More info: https://kubernetes.io/docs/concepts/configuration/secret"
    ),
    "ConfigMap.data": (
        "Data contains the configuration data. Each key must consist of alphanumeric "
        "characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the "
        "BinaryData field. The keys stored in Data must not overlap with the keys in the "
        "BinaryData field, this is enforced during validation process."
    ),
    "ReplicaSetSpec.replicas": (
        "Replicas is the number of desired pods. This is a pointer to distinguish between "
        "explicit zero and unspecified. Defaults to 1. More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/replicaset"
    ),
    "ReplicaSetSpec.selector": (
        "Selector is a label query over pods that should match the replica count. If the "
        "selector is empty, it is defaulted to the labels present on the pod template. "
        "Label keys and values that must match in order to be controlled by this replica "
        "set. More info: https://kubernetes.io/docs/concepts/overview/working-with-ob"
        "jects/labels/#label-selectors"
    ),
    "ReplicaSetStatus.replicas": (
        "Replicas is the most recently observed number of non-terminating pods. More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/replicaset"
    ),
    "ReplicaSetStatus.readyReplicas": (
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition."
    ),
    "DaemonSetStatus.desiredNumberScheduled": (
        "The total number of nodes that should be running the daemon pod (including nodes "
        "correctly running the daemon pod). More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"
    ),
    "DaemonSetStatus.currentNumberScheduled": (
        "The number of nodes that are running at least 1 daemon pod and are supposed to "
        "run the daemon pod. More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"
    ),
    "DaemonSetStatus.numberReady": (
        "The number of nodes that should be running the daemon pod and have one or more of "
        "the daemon pod running and ready."
    ),
    "DaemonSetStatus.updatedNumberScheduled": (
        "The total number of nodes that are running updated daemon pod"
    ),
    "DaemonSetStatus.numberAvailable": (
        "The number of nodes that should be running the daemon pod and have one or more of "
        "the daemon pod running and available (ready for at least spec.minReadySeconds)"
    ),
    "DaemonSetSpec.selector": (
        "A label query over pods that are managed by the daemon set. Must match in order "
        "to be controlled. If empty, defaulted to labels on Pod template. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-ob"
        "jects/labels/#label-selectors"
    ),
    "DeploymentStatus.updatedReplicas": (
        "Total number of non-terminating pods targeted by this deployment that have the "
        "desired template spec."
    ),
    "DeploymentStatus.availableReplicas": (
        "Total number of available non-terminating pods (ready for at least "
        "minReadySeconds) targeted by this deployment."
    ),
    "DeploymentSpec.selector": (
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this "
        "will be the ones affected by this deployment."
    ),
    "JobStatus.succeeded": (
        "The number of pods which reached phase Succeeded. The value increases "
        "monotonically for a given spec. However, it may decrease in reaction to scale "
        "down of elastic indexed jobs."
    ),
    "JobSpec.selector": (
        "A label query over pods that should match the pod count. Normally, the system "
        "sets this field for you. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-ob"
        "jects/labels/#label-selectors"
    ),
    "CronJobSpec.schedule": "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
    "CronJobSpec.timeZone": (
        "The time zone name for the given schedule, see "
        "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, "
        "this will default to the time zone of the kube-controller-manager process. The "
        "set of valid time zone names and the time zone offset is loaded from the "
        "system-wide time zone database by the API server during CronJob validation and "
        "the controller manager during execution. If no system-wide time zone database can "
        "be found a bundled version of the database is used instead. If the time zone name "
        "becomes invalid during the lifetime of a CronJob or due to a change in host "
        "configuration, the controller will stop creating new new Jobs and will create a "
        "system event with the reason UnknownTimeZone. More information can be found in "
        "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones"
    ),
    "CronJobSpec.suspend": (
        "This flag tells the controller to suspend subsequent executions, it does not "
        "apply to already started executions.  Defaults to false."
    ),
    "CronJobStatus.active": "A list of pointers to currently running jobs.",
    "CronJobStatus.lastScheduleTime": (
        "Information when was the last time the job was successfully scheduled."
    ),
    "HorizontalPodAutoscalerSpec.scaleTargetRef": (
        "scaleTargetRef points to the target resource to scale, and is used to the pods "
        "for which metrics should be collected, as well as to actually change the replica "
        "count."
    ),
    "HorizontalPodAutoscalerSpec.metrics": (
        "metrics contains the specifications for which to use to calculate the desired "
        "replica count (the maximum replica count across all metrics will be used).  The "
        "desired replica count is calculated multiplying the ratio between the target "
        "value and the current value by the current number of pods.  Ergo, metrics used "
        "must decrease as the pod count is increased, and vice-versa.  See the individual "
        "metric source types for more information about how each type of metric must "
        "respond."
    ),
    "HorizontalPodAutoscalerSpec.minReplicas": (
        "minReplicas is the lower limit for the number of replicas to which the autoscaler "
        "can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the "
        "alpha feature gate HPAScaleToZero is enabled and at least one Object or External "
        "metric is configured.  Scaling is active as long as at least one metric value is "
        "available."
    ),
    "HorizontalPodAutoscalerSpec.maxReplicas": (
        "maxReplicas is the upper limit for the number of replicas to which the autoscaler "
        "can scale up. It cannot be less that minReplicas."
    ),
    "HorizontalPodAutoscalerStatus.currentReplicas": (
        "currentReplicas is current number of replicas of pods managed by this autoscaler, "
        "as last seen by the autoscaler."
    ),
    "RoleBinding.roleRef": (
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the "
        "global namespace. If the RoleRef cannot be resolved, the Authorizer must return "
        "an error."
    ),
    "ClusterRoleBinding.roleRef": (
        "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef "
        "cannot be resolved, the Authorizer must return an error."
    ),
    "LeaseSpec.holderIdentity": (
        "holderIdentity contains the identity of the holder of a current lease. If "
        "Coordinated Leader Election is used, the holder identity must be equal to the "
        "elected LeaseCandidate.metadata.name field."
    ),
    "ControllerRevision.revision": (
        "revision indicates the revision of the state represented by Data."
    ),
}

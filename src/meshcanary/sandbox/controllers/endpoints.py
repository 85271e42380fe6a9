"""Endpoints: for every Service with a selector, the addresses of the pods it selects.

Why: the mesh finds workloads through Services, and a canary rehearsal watches traffic move as
pods of the new revision become Ready and old ones terminate; `kubectl get endpoints`, clients
and the simulated istiod must see the same Endpoints a real cluster would publish.

How, as kube-controller-manager's endpoints controller: a Service with a selector gets an
Endpoints object of its name, labelled with the Service's labels (plus
`service.kubernetes.io/headless` when it has no cluster IP); a selected pod with an IP that is
neither finished nor terminating is an address (`ip`, `nodeName`, `targetRef`, and `hostname`
when its `spec.subdomain` names the Service), under `addresses` when Ready (or when the Service
publishes not-ready addresses, which also keeps terminating pods) and under `notReadyAddresses`
otherwise. Each Service port resolves its `targetPort` per pod (a number, or a container port
of that name and protocol; a pod without it is left out of that port), and subsets are repacked
as upstream does: ports that share the same addresses share a subset. More than 1000 addresses
are truncated proportionally, with `endpoints.kubernetes.io/over-capacity: truncated`. A write
happens only when subsets or labels change, stamping `endpoints.kubernetes.io/
last-change-trigger-time`. The Endpoints go with their Service; Services without a selector
are left to whoever manages their Endpoints.

Cost: the pods each Service selects are kept as a set updated from pod events (a pod event
costs one selector match per selector Service of its namespace, and only changes that alter an
address queue the Service), and reconciliation is coalesced per Service by a `WorkQueue`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meshcanary.sandbox.apiserver import errors
from meshcanary.sandbox.apiserver.cluster import Cluster, WriteOptions
from meshcanary.sandbox.apiserver.selectors import LabelSelector, label_selector_from_dict
from meshcanary.sandbox.apiserver.store import Event
from meshcanary.sandbox.controllers.base import Context, Controller
from meshcanary.sandbox.controllers.podtemplates import (
    Key,
    WorkQueue,
    object_key,
    pod_is_ready,
    served_type,
)

PODS = "/pods"
SERVICES = "/services"
ENDPOINTS = "/endpoints"
OPTIONS = WriteOptions(field_manager="endpoint-controller")
TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
HEADLESS_LABEL = "service.kubernetes.io/headless"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
MAX_ADDRESSES = 1000

PortKey = tuple[str, int, str, str]
"""(name, port, protocol, appProtocol) of an endpoint port; port -1 for "no ports"."""
_NO_PORTS: PortKey = ("", -1, "", "")


@dataclass(frozen=True)
class _Selected:
    """A Service's selector as last seen, compiled."""

    spec: dict[str, Any]
    selector: LabelSelector


def _address_view(pod: dict[str, Any]) -> tuple[Any, ...]:
    """Everything about a pod that its endpoint addresses depend on, labels aside."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    ports = [
        c.get("ports") for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
    ]
    return (
        status.get("podIP"),
        status.get("phase"),
        pod_is_ready(pod),
        bool(pod["metadata"].get("deletionTimestamp")),
        spec.get("nodeName"),
        spec.get("hostname"),
        spec.get("subdomain"),
        repr(ports),
    )


def _in_endpoints(pod: dict[str, Any], include_terminating: bool) -> bool:
    """`ShouldPodBeInEndpoints`: an IP, not finished, not terminating (unless published)."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    if not status.get("podIP") and not status.get("podIPs"):
        return False
    return include_terminating or not pod["metadata"].get("deletionTimestamp")


def _address(service: dict[str, Any], pod: dict[str, Any]) -> dict[str, Any]:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    ip = status.get("podIP") or ((status.get("podIPs") or [{}])[0]).get("ip", "")
    address: dict[str, Any] = {"ip": ip}
    service_meta = service["metadata"]
    if (
        spec.get("hostname")
        and spec.get("subdomain") == service_meta["name"]
        and meta.get("namespace") == service_meta.get("namespace")
    ):
        address["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        address["nodeName"] = spec["nodeName"]
    address["targetRef"] = {
        "kind": "Pod",
        "namespace": meta.get("namespace", ""),
        "name": meta["name"],
        "uid": meta.get("uid", ""),
    }
    return address


def find_port(pod: dict[str, Any], service_port: dict[str, Any]) -> int | None:
    """The pod's port for a Service port (`podutil.FindPort`): a numeric `targetPort` as is, a
    named one looked up among the containers' (and sidecars') ports of the same protocol."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    protocol = service_port.get("protocol") or "TCP"
    for container in (spec.get("containers") or []) + sidecars:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def _port_keys(service: dict[str, Any], pod: dict[str, Any]) -> list[PortKey]:
    spec = service.get("spec") or {}
    ports = spec.get("ports") or []
    if not ports:
        return [_NO_PORTS] if spec.get("clusterIP") == "None" else []
    keys = []
    for port in ports:
        number = find_port(pod, port)
        if number is not None:
            keys.append(
                (
                    str(port.get("name") or ""),
                    number,
                    str(port.get("protocol") or "TCP"),
                    str(port.get("appProtocol") or ""),
                )
            )
    return keys


def _port(key: PortKey) -> dict[str, Any]:
    name, number, protocol, app_protocol = key
    port: dict[str, Any] = {"name": name} if name else {}
    port.update(port=number, protocol=protocol)
    if app_protocol:
        port["appProtocol"] = app_protocol
    return port


def _ip_order(address: dict[str, Any]) -> tuple[str, str]:
    return address["ip"], address["targetRef"]["uid"]


def endpoint_subsets(service: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The subsets upstream publishes for `service` selecting `pods` (`RepackSubsets`: each
    port maps to the addresses offering it; ports with the same addresses form one subset)."""
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    by_port: dict[PortKey, dict[tuple[str, str], tuple[dict[str, Any], bool]]] = {}
    for pod in pods:
        if not _in_endpoints(pod, publish):
            continue
        address = _address(service, pod)
        ready = publish or pod_is_ready(pod)
        for key in _port_keys(service, pod):
            by_port.setdefault(key, {})[_ip_order(address)] = (address, ready)
    groups: dict[frozenset[tuple[tuple[str, str], bool]], list[PortKey]] = {}
    members: dict[frozenset[tuple[tuple[str, str], bool]], list[tuple[dict[str, Any], bool]]] = {}
    for key, addresses in by_port.items():
        group = frozenset((ident, ready) for ident, (_, ready) in addresses.items())
        groups.setdefault(group, []).append(key)
        members[group] = list(addresses.values())
    subsets = [_subset(members[group], keys) for group, keys in groups.items()]
    return sorted(subsets, key=lambda s: repr(sorted(s.items())))


def _subset(addresses: list[tuple[dict[str, Any], bool]], keys: list[PortKey]) -> dict[str, Any]:
    subset: dict[str, Any] = {}
    ready = sorted((a for a, is_ready in addresses if is_ready), key=_ip_order)
    not_ready = sorted((a for a, is_ready in addresses if not is_ready), key=_ip_order)
    if ready:
        subset["addresses"] = ready
    if not_ready:
        subset["notReadyAddresses"] = not_ready
    ports = [_port(key) for key in sorted(keys) if key != _NO_PORTS]
    if ports:
        subset["ports"] = ports
    return subset


def truncate(subsets: list[dict[str, Any]]) -> bool:
    """Cut the subsets to `MAX_ADDRESSES` addresses, as upstream does (not-ready addresses
    first, each subset in proportion); whether anything was cut."""
    ready = sum(len(s.get("addresses") or []) for s in subsets)
    not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if ready + not_ready <= MAX_ADDRESSES:
        return False
    cut_ready = ready > MAX_ADDRESSES
    budget = MAX_ADDRESSES if cut_ready else MAX_ADDRESSES - ready
    total = ready if cut_ready else not_ready
    field = "addresses" if cut_ready else "notReadyAddresses"
    room = budget
    for subset in subsets:
        share = min(math.ceil(len(subset.get(field) or []) / total * budget), room)
        kept = (subset.get(field) or [])[:share]
        room -= len(kept)
        subset.pop("notReadyAddresses", None)
        subset.pop(field, None)
        if kept:
            subset[field] = kept
    return True


def go_rfc3339_nano(moment: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: fractional seconds without trailing zeros."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


class EndpointsController(Controller):
    """Keeps the Endpoints of every Service with a selector."""

    def __init__(self, cluster: Cluster, context: Context | None = None) -> None:
        super().__init__(cluster, context)
        self._endpoints_type = served_type(cluster, ENDPOINTS)
        self._selected: dict[str, dict[str, _Selected]] = {}
        self._members: dict[Key, set[str]] = {}
        self.queue = WorkQueue(self, self._reconcile)

    async def resync(self) -> None:
        for entry in self.cluster.store.list(SERVICES):
            self._service_changed(entry.obj, deleted=False)
        for entry in self.cluster.store.list(ENDPOINTS):
            self.queue.add(object_key(entry.obj))  # leftovers of Services deleted meanwhile
        await self.queue.drain()

    async def handle(self, event: Event) -> None:
        deleted = event.type == "DELETED"
        if event.skey == PODS:
            self._pod_changed(event, deleted)
        elif event.skey == SERVICES:
            self._service_changed(event.entry.obj, deleted)
        elif event.skey == ENDPOINTS:
            key = object_key(event.entry.obj)
            if key in self._members:
                self.queue.add(key)  # restore what someone else changed

    def _service_changed(self, service: dict[str, Any], deleted: bool) -> None:
        key = object_key(service)
        namespace, name = key
        selected = self._selected.setdefault(namespace, {})
        spec = (service.get("spec") or {}).get("selector")
        if deleted or not spec:
            selected.pop(name, None)
            self._members.pop(key, None)
            if deleted:
                self.queue.add(key)
            return
        previous = selected.get(name)
        if previous is None or previous.spec != spec:
            selector = label_selector_from_dict({"matchLabels": spec})
            selected[name] = _Selected(dict(spec), selector)
            self._members[key] = {
                entry.obj["metadata"]["name"]
                for entry in self.cluster.store.list(PODS, namespace)
                if selector.matches(entry.obj["metadata"].get("labels"))
            }
        self.queue.add(key)

    def _pod_changed(self, event: Event, deleted: bool) -> None:
        selected = self._selected.get(event.namespace)
        if not selected:
            return
        pod = event.entry.obj
        name, labels = pod["metadata"]["name"], pod["metadata"].get("labels")
        old = event.old
        moved = deleted or old is None or _address_view(old) != _address_view(pod)
        for service, watched in selected.items():
            key = (event.namespace, service)
            members = self._members.setdefault(key, set())
            was = name in members
            now = not deleted and watched.selector.matches(labels)
            if now:
                members.add(name)
            else:
                members.discard(name)
            if was != now or (now and moved):
                self.queue.add(key)

    async def _reconcile(self, key: Key) -> None:
        service = self.cluster.store.get(SERVICES, *key)
        current = self.cluster.store.get(ENDPOINTS, *key)
        if service is None:
            annotations = (current.obj["metadata"].get("annotations") or {}) if current else {}
            if current is not None and LEADER_ANNOTATION not in annotations:
                await self._delete(key)
            return
        if not (service.obj.get("spec") or {}).get("selector"):
            return
        found = (
            self.cluster.store.get(PODS, key[0], n) for n in sorted(self._members.get(key, ()))
        )
        pods = [entry.obj for entry in found if entry is not None]
        subsets = endpoint_subsets(service.obj, pods)
        truncated = truncate(subsets)
        labels = dict(service.obj["metadata"].get("labels") or {})
        if (service.obj.get("spec") or {}).get("clusterIP") == "None":
            labels[HEADLESS_LABEL] = ""
        await self._write(key, current.obj if current else None, subsets, labels, truncated)

    async def _write(
        self,
        key: Key,
        current: dict[str, Any] | None,
        subsets: list[dict[str, Any]],
        labels: dict[str, str],
        truncated: bool,
    ) -> None:
        meta = dict((current or {}).get("metadata") or {"name": key[1]})
        annotations = dict(meta.get("annotations") or {})
        if current is not None and (
            (current.get("subsets") or []) == subsets
            and (meta.get("labels") or {}) == labels
            and (OVER_CAPACITY in annotations) == truncated
        ):
            return
        annotations[TRIGGER_TIME] = go_rfc3339_nano(self.clock.now())
        if truncated:
            annotations[OVER_CAPACITY] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY, None)
        meta["annotations"] = annotations
        if labels:
            meta["labels"] = labels
        else:
            meta.pop("labels", None)
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta}
        if subsets:
            body["subsets"] = subsets
        if current is None:
            await self.cluster.create(self._endpoints_type, key[0], body, OPTIONS)
        else:
            await self.cluster.update(self._endpoints_type, *key, body, OPTIONS)

    async def _delete(self, key: Key) -> None:
        try:
            await self.cluster.delete(self._endpoints_type, *key)
        except errors.ApiError as exc:
            if exc.code != 404:
                raise

"""LoadBalancer Services get an external IP, as a cloud provider (or MetalLB, or kind's
cloud-provider-kind) would give them.

Why: an Istio ingress gateway is a LoadBalancer Service; installers and `kubectl get svc` wait
for its EXTERNAL-IP, and a canary upgrade of gateways must keep (or move) it as a real cluster
does, instead of showing `<pending>` forever.

How: a Service of type LoadBalancer without a `loadBalancerClass` (a class names another
implementation, which the default one ignores) gets `status.loadBalancer.ingress: [{ip,
ipMode: VIP}]` from 203.0.113.0/24 (TEST-NET-3, never routed): its `spec.loadBalancerIP` when
that is in the pool and free, else the IP it already has, else the lowest free one. The IP is
released when the Service goes or stops being a LoadBalancer (its status is then cleared), and
Services left waiting on an exhausted pool get the freed IP. Which Service holds which IP is
rebuilt from the Services' own status on `resync` (earliest-created first, then by name, so a
duplicate after a crash goes to the older Service), so a restart changes no address.

Left out: the `service.kubernetes.io/load-balancer-cleanup` finalizer (deletion never waits on
this controller) and per-port status.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import orjson

from meshcanary.sandbox.apiserver.cluster import PATCH_MERGE, Cluster, WriteOptions
from meshcanary.sandbox.apiserver.store import Event
from meshcanary.sandbox.controllers.base import Context, Controller
from meshcanary.sandbox.controllers.podtemplates import Key, WorkQueue, object_key, served_type

SERVICES = "/services"
OPTIONS = WriteOptions(field_manager="service-lb-controller")
POOL = ipaddress.ip_network("203.0.113.0/24")


def wants_address(service: dict[str, Any]) -> bool:
    spec = service.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


def status_ip(service: dict[str, Any]) -> str:
    """The first ingress IP in the Service's status ("" when none)."""
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return str((ingress[0] or {}).get("ip") or "") if ingress else ""


def in_pool(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return address in POOL and address not in (POOL.network_address, POOL.broadcast_address)


class LoadBalancerController(Controller):
    """Gives LoadBalancer Services an address from the pool, and takes it back."""

    def __init__(self, cluster: Cluster, context: Context | None = None) -> None:
        super().__init__(cluster, context)
        self._service_type = served_type(cluster, SERVICES)
        self._holder: dict[str, Key] = {}
        self._address: dict[Key, str] = {}
        self._waiting: set[Key] = set()
        self.queue = WorkQueue(self, self._reconcile)

    async def resync(self) -> None:
        self._holder.clear()
        self._address.clear()
        services = [entry.obj for entry in self.cluster.store.list(SERVICES)]
        services.sort(key=lambda s: (s["metadata"].get("creationTimestamp", ""), object_key(s)))
        for service in services:
            ip = status_ip(service)
            if wants_address(service) and in_pool(ip) and ip not in self._holder:
                self._hold(object_key(service), ip)
        for service in services:
            self.queue.add(object_key(service))
        await self.queue.drain()

    async def handle(self, event: Event) -> None:
        if event.skey != SERVICES:
            return
        key = object_key(event.entry.obj)
        if event.type == "DELETED":
            self._release(key)
        else:
            self.queue.add(key)

    def _hold(self, key: Key, ip: str) -> None:
        if self._address.get(key) == ip:
            return
        self._release(key)
        self._holder[ip] = key
        self._address[key] = ip
        self._waiting.discard(key)

    def _release(self, key: Key) -> None:
        self._waiting.discard(key)
        ip = self._address.pop(key, None)
        if ip is None:
            return
        self._holder.pop(ip, None)
        for waiting in sorted(self._waiting):
            self.queue.add(waiting)

    def _free_for(self, key: Key, ip: str) -> bool:
        return in_pool(ip) and self._holder.get(ip, key) == key

    def _choose(self, key: Key, service: dict[str, Any]) -> str | None:
        """The requested IP if free, else the one held, else the lowest free one."""
        requested = str((service.get("spec") or {}).get("loadBalancerIP") or "")
        if requested and self._free_for(key, requested):
            return requested
        held = self._address.get(key)
        if held is not None:
            return held
        return next((str(h) for h in POOL.hosts() if self._free_for(key, str(h))), None)

    async def _reconcile(self, key: Key) -> None:
        entry = self.cluster.store.get(SERVICES, *key)
        if entry is None:
            self._release(key)
            return
        service = entry.obj
        if not wants_address(service):
            held = self._address.get(key)
            self._release(key)
            if held is not None or (in_pool(status_ip(service)) and not _has_class(service)):
                await self._set_ingress(service, None)
            return
        ip = self._choose(key, service)
        if ip is None:
            self._waiting.add(key)
            return
        self._hold(key, ip)
        await self._set_ingress(service, [{"ip": ip, "ipMode": "VIP"}])

    async def _set_ingress(self, service: dict[str, Any], ingress: list[Any] | None) -> None:
        current = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress")
        if (current or None) == ingress:
            return
        patch = {
            "metadata": {"resourceVersion": service["metadata"]["resourceVersion"]},
            "status": {"loadBalancer": {"ingress": ingress}},
        }
        await self.cluster.patch(
            self._service_type,
            *object_key(service),
            PATCH_MERGE,
            orjson.dumps(patch),
            OPTIONS,
            "status",
        )


def _has_class(service: dict[str, Any]) -> bool:
    return bool((service.get("spec") or {}).get("loadBalancerClass"))

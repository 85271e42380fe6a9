"""Answers admission webhooks addressed to an istiod Service, in process.

The sandbox's generic admission layer calls a webhook's `clientConfig.service` through a resolver
(`resolve(namespace, name, port, path)` -> handler or None); this one knows istiod. It resolves a
Service only while the store says a real one would answer: the Service exists, exposes `port`, and
selects at least one Ready, non-terminating pod of an istiod Deployment. Otherwise it returns None,
the call fails and the webhook's `failurePolicy` decides, exactly the failure mode of a webhook
left pointing at a removed or scaled-down revision (istio/istio #28880, #37512).

Paths, as istiod serves them on its webhook port: `/inject` and `/inject/...` (the suffix may
carry `cluster/<id>/net/<network>`) inject a sidecar; `/validate` and `/validate/...` check Istio
config. Validation is deliberately shallow: an object of a known Istio kind whose `spec` is a
mapping passes; an unknown kind or a malformed spec is denied, as istiod denies what it cannot
decode. Deep per-kind rules belong to the product's analyzers, not to the sandbox.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from meshcanary.sandbox.apiserver.cluster import Cluster
from meshcanary.sandbox.istio import injection, revisions
from meshcanary.sandbox.istio.revisions import Revision

ServiceHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""AdmissionReview request body in, AdmissionReview response body out."""

ISTIO_KINDS: Mapping[str, frozenset[str]] = {
    "networking.istio.io": frozenset(
        {
            "DestinationRule",
            "EnvoyFilter",
            "Gateway",
            "ProxyConfig",
            "ServiceEntry",
            "Sidecar",
            "VirtualService",
            "WorkloadEntry",
            "WorkloadGroup",
        }
    ),
    "security.istio.io": frozenset(
        {"AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication"}
    ),
    "telemetry.istio.io": frozenset({"Telemetry"}),
    "extensions.istio.io": frozenset({"WasmPlugin"}),
}
"""The config kinds istiod's validation webhook recognises."""


class IstiodResolver:
    """Resolves webhook Services backed by a Ready simulated istiod (a `ServiceResolver`)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def resolve(self, namespace: str, name: str, port: int, path: str) -> ServiceHandler | None:
        route = _route(path)
        if route is None:
            return None
        revision = revisions.revision_for_service(self.cluster, namespace, name, port)
        if revision is None:
            return None
        return route(revision, path)


Route = Callable[[Revision, str], ServiceHandler]


def _route(path: str) -> Route | None:
    for prefix, route in (("/inject", _injector), ("/validate", _validator)):
        if path == prefix or path.startswith(prefix + "/"):
            return route
    return None


def _injector(revision: Revision, path: str) -> ServiceHandler:
    async def inject(body: dict[str, Any]) -> dict[str, Any]:
        return injection.review(body, revision, path)

    return inject


def _validator(revision: Revision, path: str) -> ServiceHandler:
    async def validate(body: dict[str, Any]) -> dict[str, Any]:
        return validation_review(body)

    return validate


def validation_review(body: Mapping[str, Any]) -> dict[str, Any]:
    """istiod's `/validate` answer: allow known, well-formed Istio config; deny the rest."""
    request = body.get("request") or {}
    response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": True}
    if request.get("operation") in ("CREATE", "UPDATE"):
        problem = config_problem(request.get("object"))
        if problem:
            response.update(allowed=False, status={"message": problem, "code": 400})
    return {
        "apiVersion": body.get("apiVersion") or "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    }


def config_problem(obj: Any) -> str | None:
    """Why istiod would refuse this object, or None when it passes."""
    if not isinstance(obj, Mapping):
        return "error decoding configuration: the object is not a JSON object"
    group = str(obj.get("apiVersion") or "").partition("/")[0]
    kind = str(obj.get("kind") or "")
    if kind not in ISTIO_KINDS.get(group, ()):
        return f"unrecognized type {kind}"
    if not isinstance(obj.get("spec", {}), Mapping):
        return f"error decoding configuration: {kind} spec must be an object"
    return None

"""Which istiod revisions "run" in the sandbox, discovered from the store on every call.

A revision is an istiod Deployment: pod template labelled `app: istiod`, a container image
`<hub>/pilot:<version>`, and an `istio.io/rev` label. Two naming styles coexist:

- SMM / istio-operator v2: `istio.io/rev: cp-v115x.istio-system`, Deployment `istiod-cp-v115x`,
  injector ConfigMap `istio-sidecar-injector-cp-v115x`; injected pods also get the rev *label*.
- upstream: `istio.io/rev: 1-15-0` (or `default`), Deployment `istiod-1-15-0` (or `istiod`),
  injector ConfigMap `istio-sidecar-injector-1-15-0` (or `istio-sidecar-injector`).

The injector ConfigMap's `values` (JSON: `global.hub`, `global.tag`, `global.proxy.image`) decides
the sidecar image, exactly as istiod renders `.ProxyImage`; without it the image is
`<hub>/proxyv2:<version>` of the pilot image. Nothing is cached: the store is the truth, and the
istio-system namespace holds a handful of objects, so each lookup is cheap even with 20,000 pods
elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from meshcanary.sandbox.apiserver import selectors
from meshcanary.sandbox.apiserver.cluster import Cluster

REV_LABEL = "istio.io/rev"
DEFAULT_REVISION = "default"
PILOT_IMAGE = "pilot"
PROXY_IMAGE = "proxyv2"
INJECTOR_CONFIGMAP = "istio-sidecar-injector"
ISTIOD = "istiod"
XDS_PORT = 15012


@dataclass(frozen=True)
class Revision:
    """One istiod revision as its webhooks and injected pods see it."""

    rev: str
    """The `istio.io/rev` value: `cp-v115x.istio-system` (SMM) or `1-15-0` / `default`."""
    namespace: str
    deployment: str
    version: str
    """The pilot image tag: the control plane's version."""
    hub: str
    proxy_image: str
    ready: bool
    """At least one Ready, non-terminating istiod pod backs the Deployment."""
    smm_style: bool
    cluster_id: str = "Kubernetes"
    network: str = ""

    @property
    def discovery_address(self) -> str:
        """Where its proxies fetch config and certificates (`CA_ADDR`, `discoveryAddress`)."""
        return f"{self.deployment}.{self.namespace}.svc:{XDS_PORT}"


@dataclass(frozen=True)
class Image:
    """A container image reference split the way Istio's charts compose them."""

    hub: str
    name: str
    tag: str


def parse_image(ref: str) -> Image:
    """`docker.io/istio/pilot:1.15.3` -> (docker.io/istio, pilot, 1.15.3); no tag means latest."""
    ref = ref.partition("@")[0]
    path, _, last = ref.rpartition("/")
    name, _, tag = last.partition(":")
    return Image(hub=path, name=name, tag=tag or "latest")


def pilot_image(pod_spec: Mapping[str, Any]) -> Image | None:
    """The first container image named `pilot`, if the pod spec runs istiod."""
    for container in pod_spec.get("containers") or ():
        image = parse_image(str(container.get("image") or ""))
        if image.name == PILOT_IMAGE:
            return image
    return None


def is_ready(pod: Mapping[str, Any]) -> bool:
    """Ready and not terminating: what puts a pod behind a Service's endpoints."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or ()
    )


def is_istiod_pod(pod: Mapping[str, Any]) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return (
        labels.get("app") == ISTIOD
        and REV_LABEL in labels
        and pilot_image(pod.get("spec") or {}) is not None
    )


def find_revisions(cluster: Cluster, namespace: str | None = None) -> list[Revision]:
    """Every istiod revision in the store (in `namespace` only, when given)."""
    found = []
    for entry in cluster.store.list(_skey(cluster, "apps", "deployments"), namespace):
        revision = _revision_of(cluster, entry.obj)
        if revision is not None:
            found.append(revision)
    return found


def revision_for_service(
    cluster: Cluster, namespace: str, name: str, port: int | None = None
) -> Revision | None:
    """The revision whose Ready istiod pods the Service selects, or None (a call would fail).

    With `port`, the Service must also declare it: the API server calls webhooks by service port.
    """
    service = cluster.store.get(_skey(cluster, "", "services"), namespace, name)
    if service is None:
        return None
    spec = service.obj.get("spec") or {}
    if port is not None and not any(p.get("port") == port for p in spec.get("ports") or ()):
        return None
    selector = spec.get("selector") or {}
    if not selector:
        return None  # no selector: no endpoints are ever computed for it
    backends = [
        pod
        for pod in _pods(cluster, namespace)
        if _selects(selector, pod) and is_ready(pod) and is_istiod_pod(pod)
    ]
    for deployment in _deployments(cluster, namespace):
        if _owned_pods(deployment, backends):
            return _revision_of(cluster, deployment)
    return None


def _revision_of(cluster: Cluster, deployment: dict[str, Any]) -> Revision | None:
    """The Revision an istiod Deployment stands for; None for any other Deployment."""
    template = (deployment.get("spec") or {}).get("template") or {}
    labels = {
        **(deployment["metadata"].get("labels") or {}),
        **((template.get("metadata") or {}).get("labels") or {}),
    }
    image = pilot_image(template.get("spec") or {})
    if labels.get("app") != ISTIOD or image is None:
        return None
    namespace = deployment["metadata"]["namespace"]
    name = deployment["metadata"]["name"]
    rev = labels.get(REV_LABEL) or DEFAULT_REVISION
    values = _injector_values(cluster, namespace, name, rev)
    global_values = _mapping(values.get("global"))
    return Revision(
        rev=rev,
        namespace=namespace,
        deployment=name,
        version=image.tag,
        hub=image.hub,
        proxy_image=proxy_image(global_values, image),
        ready=_has_ready_pod(cluster, deployment),
        smm_style="." in rev,
        cluster_id=str(_mapping(global_values.get("multiCluster")).get("clusterName") or "")
        or "Kubernetes",
        network=str(global_values.get("network") or ""),
    )


def proxy_image(global_values: Mapping[str, Any], pilot: Image) -> str:
    """istiod's `.ProxyImage`: a full `global.proxy.image` wins, else hub/name:tag from values."""
    configured = str(_mapping(global_values.get("proxy")).get("image") or "")
    if "/" in configured:
        return configured
    hub = str(global_values.get("hub") or pilot.hub)
    tag = str(global_values.get("tag") or pilot.tag)
    name = f"{configured or PROXY_IMAGE}:{tag}"
    return f"{hub}/{name}" if hub else name


def _injector_values(cluster: Cluster, namespace: str, deployment: str, rev: str) -> dict[str, Any]:
    """The parsed `values` of the revision's injector ConfigMap ({} when absent or unreadable)."""
    suffix = deployment.removeprefix(ISTIOD).removeprefix("-")
    names = [f"{INJECTOR_CONFIGMAP}-{suffix}" if suffix else INJECTOR_CONFIGMAP]
    if "." not in rev and rev != DEFAULT_REVISION:
        names.append(f"{INJECTOR_CONFIGMAP}-{rev}")
    configmaps = _skey(cluster, "", "configmaps")
    for name in names:
        entry = cluster.store.get(configmaps, namespace, name)
        if entry is not None:
            return _parse_values((entry.obj.get("data") or {}).get("values"))
    return {}


def _parse_values(text: Any) -> dict[str, Any]:
    if not isinstance(text, str) or not text.strip():
        return {}
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError:
            return {}
    return parsed if isinstance(parsed, dict) else {}


def _has_ready_pod(cluster: Cluster, deployment: dict[str, Any]) -> bool:
    pods = _owned_pods(deployment, _pods(cluster, deployment["metadata"]["namespace"]))
    return any(is_ready(pod) and is_istiod_pod(pod) for pod in pods)


def _owned_pods(deployment: Mapping[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods the Deployment's selector matches (none for a missing or broken selector)."""
    selector = (deployment.get("spec") or {}).get("selector")
    if not selector:
        return []
    try:
        compiled = selectors.label_selector_from_dict(selector)
    except selectors.SelectorError:
        return []
    return [pod for pod in pods if compiled.matches(pod["metadata"].get("labels"))]


def _deployments(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    return [e.obj for e in cluster.store.list(_skey(cluster, "apps", "deployments"), namespace)]


def _pods(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    return [e.obj for e in cluster.store.list(_skey(cluster, "", "pods"), namespace)]


def _selects(selector: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """A Service selector: every key equal (a plain map, not a LabelSelector)."""
    labels = pod["metadata"].get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _skey(cluster: Cluster, group: str, plural: str) -> str:
    rt = cluster.registry.get(group, "v1", plural)
    assert rt is not None, f"{group}/{plural} is a built-in type"
    return rt.storage_key

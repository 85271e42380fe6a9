"""Sidecar proxies as the pods reveal them, and how many each revision serves.

A control plane may be deleted only when it serves no proxy, and a migration is done only when
every live pod of a namespace runs the target revision, so this count must be right:

- A pod has a proxy when it runs a container named `istio-proxy` (a regular container, or a
  native sidecar: an init container with `restartPolicy: Always`, Istio >= 1.19).
- Its revision is the annotation `istio.io/rev` the injector sets (always the revision, never a
  tag), falling back to `revision` in the `sidecar.istio.io/status` annotation (istioctl's rule).
- Its version is the tag of the `istio-proxy` image.
- It is *live* unless its phase is `Succeeded` or `Failed`: finished pods (Completed Jobs,
  evicted pods) must not keep a revision in use forever (Sail Operator #839, #2100).

Decision: a terminating pod (`deletionTimestamp` set, still running) counts as live until it is
gone. Its proxy is still connected to its istiod while it drains connections, so deleting that
control plane early would break it; it stops counting as soon as the API server removes it.
`terminating` is reported so callers can show it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from meshcanary.mesh import revisions, versions

PROXY_CONTAINER: Final = "istio-proxy"
STATUS_ANNOTATION: Final = "sidecar.istio.io/status"
FINISHED_PHASES: Final = frozenset({"Succeeded", "Failed"})
UNKNOWN_REVISION: Final = "<unknown>"
"""Key under which `count_by_revision` counts proxies whose revision cannot be told."""


@dataclass(frozen=True)
class Proxy:
    """One pod running an Istio sidecar."""

    namespace: str
    pod: str
    owner_kind: str | None
    """Kind of the pod's controller (`ReplicaSet`, `StatefulSet`, `Job`...); None for a bare pod."""
    owner_name: str | None
    revision: str | None
    version: versions.Version | None
    ready: bool
    live: bool
    terminating: bool = False


def proxy_from_pod(pod: Mapping[str, Any]) -> Proxy | None:
    """The proxy a pod (API JSON) runs, or None when it has no `istio-proxy` container."""
    spec = pod.get("spec") or {}
    container = _proxy_container(spec)
    if container is None:
        return None
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    owner_kind, owner_name = _controller(metadata)
    image = container.get("image")
    return Proxy(
        namespace=str(metadata.get("namespace", "")),
        pod=str(metadata.get("name", "")),
        owner_kind=owner_kind,
        owner_name=owner_name,
        revision=revision_of(metadata),
        version=versions.proxy_version_from_image(image) if isinstance(image, str) else None,
        ready=_ready(status),
        live=status.get("phase") not in FINISHED_PHASES,
        terminating=metadata.get("deletionTimestamp") is not None,
    )


def proxies_from_pods(pods: Iterable[Mapping[str, Any]]) -> list[Proxy]:
    """The proxies among many pods, in their order."""
    return [proxy for proxy in map(proxy_from_pod, pods) if proxy is not None]


def revision_of(metadata: Mapping[str, Any]) -> str | None:
    """A pod's revision from its annotations: `istio.io/rev`, else the sidecar status JSON."""
    annotations = metadata.get("annotations") or {}
    revision = annotations.get(revisions.REV_LABEL)
    if revision:
        return str(revision)
    return _status_revision(annotations.get(STATUS_ANNOTATION))


def count_by_revision(proxies: Iterable[Proxy]) -> dict[str, int]:
    """Live proxies per revision (unknown revisions under `UNKNOWN_REVISION`), sorted by key."""
    counts = Counter(p.revision or UNKNOWN_REVISION for p in proxies if p.live)
    return dict(sorted(counts.items()))


def _proxy_container(spec: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for container in spec.get("containers") or []:
        if container.get("name") == PROXY_CONTAINER:
            return container  # type: ignore[no-any-return]
    for container in spec.get("initContainers") or []:
        if container.get("name") == PROXY_CONTAINER and container.get("restartPolicy") == "Always":
            return container  # type: ignore[no-any-return]
    return None


def _controller(metadata: Mapping[str, Any]) -> tuple[str | None, str | None]:
    for owner in metadata.get("ownerReferences") or []:
        if owner.get("controller"):
            return owner.get("kind"), owner.get("name")
    return None, None


def _ready(status: Mapping[str, Any]) -> bool:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def _status_revision(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    try:
        status = json.loads(raw)
    except ValueError:
        return None
    revision = status.get("revision") if isinstance(status, dict) else None
    return revision if isinstance(revision, str) and revision else None

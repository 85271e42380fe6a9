"""Pod templates to pods: what every workload controller (ReplicaSet, StatefulSet, DaemonSet,
Job) shares.

Kept in one place so that all of them stamp pods the way kube-controller-manager's
`GetPodFromTemplate` does (labels, annotations and finalizers from the template, a controller
ownerReference, the spec copied), judge pods by the same readiness and availability rules
(`podutil.IsPodReady`, `IsPodAvailable`, `controller.IsPodActive`), and name template revisions
with the same kind of hash.

`template_hash` follows `controller.ComputeHash`: FNV-32a over the template plus the collision
count (8 little-endian bytes), the decimal rendering of the sum passed through
`rand.SafeEncodeString`. Kubernetes feeds FNV a `spew` dump of the Go struct, which cannot be
reproduced from JSON, so this hashes canonical JSON (sorted keys) instead: the hashes have the
same shape and stability as real ones (same alphabet, up to 10 characters, a new value for a new
template or collision count) but are not bit-identical to a real cluster's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

POD_TEMPLATE_HASH = "pod-template-hash"
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def _fnv32a(data: bytes, seed: int = _FNV32_OFFSET) -> int:
    value = seed
    for byte in data:
        value = ((value ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """apimachinery's `rand.SafeEncodeString`: each byte mapped into a vowel-free alphabet."""
    return "".join(_SAFE_ALPHABET[byte % len(_SAFE_ALPHABET)] for byte in text.encode())


def template_hash(template: dict[str, Any], collision_count: int | None = None) -> str:
    """The pod-template-hash of `template` (see the module docstring for exactness)."""
    value = _fnv32a(orjson.dumps(template, option=orjson.OPT_SORT_KEYS))
    if collision_count is not None:
        value = _fnv32a((collision_count & 0xFFFFFFFF).to_bytes(8, "little"), value)
    return safe_encode(str(value))


def controller_ref(owner: dict[str, Any], owner_kind: str) -> dict[str, Any]:
    """The ownerReference a workload controller puts on what it creates."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion", ""),
        "kind": owner_kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: dict[str, Any]) -> str | None:
    """The uid of `obj`'s controlling owner, if any."""
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            uid = ref.get("uid")
            return str(uid) if uid else None
    return None


def new_pod(
    owner: dict[str, Any],
    owner_kind: str,
    template: dict[str, Any],
    name: str,
    extra_labels: dict[str, str],
) -> dict[str, Any]:
    """A Pod body from `template`, controlled by `owner`, in the owner's namespace.

    A `name` ending in "-" (never a valid object name) is used as `generateName`, so the API
    server picks the suffix, as it does for ReplicaSet, DaemonSet and Job pods.
    """
    template_meta = template.get("metadata") or {}
    meta: dict[str, Any] = {
        "namespace": owner["metadata"].get("namespace", ""),
        "labels": {**(template_meta.get("labels") or {}), **extra_labels},
        "ownerReferences": [controller_ref(owner, owner_kind)],
    }
    meta["generateName" if name.endswith("-") else "name"] = name
    for key in ("annotations", "finalizers"):
        if template_meta.get(key):
            meta[key] = orjson.loads(orjson.dumps(template_meta[key]))
    spec: dict[str, Any] = orjson.loads(orjson.dumps(template.get("spec") or {}))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _ready_condition(pod: dict[str, Any]) -> dict[str, Any] | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return None


def pod_is_ready(pod: dict[str, Any]) -> bool:
    """The pod's Ready condition is True."""
    condition = _ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def ready_since(pod: dict[str, Any]) -> datetime | None:
    """When a Ready pod last became Ready (None when not Ready or never stamped)."""
    condition = _ready_condition(pod)
    if condition is None or condition.get("status") != "True":
        return None
    stamp = condition.get("lastTransitionTime")
    if not stamp:
        return None
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def seconds_until_available(
    pod: dict[str, Any], min_ready_seconds: int, now: datetime
) -> float | None:
    """How long until a Ready pod counts as available (0 when it does; None when not Ready).

    Availability is strict ("Ready for longer than"), so a positive answer is a moment past it.
    """
    if pod_is_available(pod, min_ready_seconds, now):
        return 0.0
    since = ready_since(pod)
    if since is None:
        return None
    due = since + timedelta(seconds=min_ready_seconds)
    return max(0.0, (due - now).total_seconds()) + 0.001


def pod_is_available(pod: dict[str, Any], min_ready_seconds: int, now: datetime) -> bool:
    """Ready, and Ready for longer than `min_ready_seconds` (`podutil.IsPodAvailable`)."""
    if not pod_is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since is not None and since + timedelta(seconds=min_ready_seconds) < now


def pod_is_active(pod: dict[str, Any]) -> bool:
    """Not terminating and not finished (`controller.IsPodActive`)."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")

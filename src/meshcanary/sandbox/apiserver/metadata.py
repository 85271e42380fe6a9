"""Object metadata rules: names, uids, timestamps, generation and managedFields.

Kept apart from the verbs so every write path (create, update, patch, apply, status) stamps
metadata the same way a real kube-apiserver does.
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime
from typing import Any

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_PATH_SEGMENT_NAME = re.compile(r"[^/%]+")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

# Built-in groups whose registries keep metadata.generation (custom resources always do).
GENERATION_GROUPS = frozenset(
    {
        "apps",
        "batch",
        "policy",
        "autoscaling",
        "apiextensions.k8s.io",
        "admissionregistration.k8s.io",
    }
)
# Resources whose names must be DNS labels rather than DNS subdomains.
DNS_LABEL_RESOURCES = frozenset({"namespaces", "services"})


def now_rfc3339(now: datetime | None = None) -> str:
    """Kubernetes' timestamp format: second precision, UTC, trailing Z."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(prefix: str) -> str:
    """`generateName` + five random characters, from the alphabet apimachinery uses."""
    return prefix + "".join(random.choice(_GENERATE_ALPHABET) for _ in range(5))


def name_problem(name: str, plural: str, is_custom: bool) -> str | None:
    """Why `name` is not a valid object name for this resource, or None when it is."""
    if not name:
        return "name or generateName is required"
    if plural in DNS_LABEL_RESOURCES:
        if len(name) > 63 or not _DNS_LABEL.fullmatch(name):
            return (
                f"a lowercase RFC 1123 label must consist of lower case alphanumeric characters"
                f" or '-', and must start and end with an alphanumeric character (name {name!r})"
            )
        return None
    if plural.startswith("cluster") or plural in ("roles", "rolebindings"):
        # RBAC names are path segment names (':' is common in them).
        return None if _PATH_SEGMENT_NAME.fullmatch(name) else f"may not contain '/' ({name!r})"
    if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters,"
            f" '-' or '.', and must start and end with an alphanumeric character (name {name!r})"
        )
    return None


def keeps_generation(group: str, is_custom: bool) -> bool:
    return is_custom or group in GENERATION_GROUPS


def spec_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether anything but metadata and status differs: what bumps metadata.generation."""
    keys = (set(old) | set(new)) - {"metadata", "status", "apiVersion", "kind"}
    return any(old.get(key) != new.get(key) for key in keys)


def fields_v1(body: Any) -> dict[str, Any]:
    """A managedFields `fieldsV1` tree for the fields a request set (lists are leaves)."""
    if not isinstance(body, dict):
        return {}
    tree: dict[str, Any] = {}
    for key, value in body.items():
        if key in ("apiVersion", "kind") or key.startswith("$"):
            continue
        if key == "metadata" and isinstance(value, dict):
            value = {
                k: v
                for k, v in value.items()
                if k in ("labels", "annotations", "finalizers", "ownerReferences")
            }
        tree[f"f:{key}"] = fields_v1(value) if isinstance(value, dict) else {}
    return tree


def record_manager(
    obj: dict[str, Any],
    manager: str,
    operation: str,
    body: Any,
    api_version: str,
    subresource: str = "",
) -> None:
    """Add or refresh this manager's managedFields entry, as server-side field tracking does."""
    meta = obj.setdefault("metadata", {})
    entries = [
        e
        for e in meta.get("managedFields") or []
        if not (
            e.get("manager") == manager
            and e.get("operation") == operation
            and e.get("subresource", "") == subresource
        )
    ]
    entry: dict[str, Any] = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(body),
    }
    if subresource:
        entry["subresource"] = subresource
    entries.append(entry)
    meta["managedFields"] = entries

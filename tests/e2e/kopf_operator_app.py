"""A small kopf operator for `test_kopf_operator.py`, loaded by path with `kopf run`.

It manages `Canary` objects: on creation it reports a phase and the size in `status`, on spec
changes it follows them, a field handler mirrors `spec.mode`, and on deletion (held by kopf's
finalizer until the handler has run) it records that it ran. Every handler also posts a
Kubernetes Event, which kopf creates with a generated name.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

GROUP = "kopf.meshcanary.test"
VERSION = "v1"
PLURAL = "canaries"


@kopf.on.login()
def login(**kwargs: Any) -> Any:
    # Read KUBECONFIG directly: kopf's default login_via_client would load it into the
    # kubernetes client's *global* default configuration, leaking into the rest of the tests.
    return kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.watching.server_timeout = 5
    settings.watching.client_timeout = 10
    settings.watching.connect_timeout = 5
    settings.posting.level = logging.INFO
    settings.posting.enabled = True
    settings.networking.request_timeout = 10
    settings.persistence.finalizer = "canaries.kopf.meshcanary.test/finalizer"


@kopf.on.create(GROUP, VERSION, PLURAL)
def created(
    spec: kopf.Spec, body: kopf.Body, patch: kopf.Patch, logger: logging.Logger, **_: Any
) -> dict[str, Any]:
    patch.status["phase"] = "Created"
    patch.status["size"] = spec.get("size")
    patch.metadata.setdefault("labels", {})["canaries.kopf.meshcanary.test/managed"] = "true"
    kopf.info(body, reason="Created", message=f"canary of size {spec.get('size')} created")
    logger.info("created %s", body["metadata"]["name"])
    return {"seen": spec.get("size")}


@kopf.on.update(GROUP, VERSION, PLURAL, field="spec.size")
def resized(old: Any, new: Any, body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    patch.status["phase"] = "Resized"
    patch.status["size"] = new
    kopf.info(body, reason="Resized", message=f"resized from {old} to {new}")


@kopf.on.field(GROUP, VERSION, PLURAL, field="spec.mode")
def mode_changed(new: Any, patch: kopf.Patch, **_: Any) -> None:
    patch.status["mode"] = new


@kopf.on.delete(GROUP, VERSION, PLURAL)
def deleted(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    patch.status["phase"] = "Deleting"
    kopf.info(body, reason="Deleted", message="cleaned up")

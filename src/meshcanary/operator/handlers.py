"""kopf handlers for IstioControlPlane: thin wiring from cluster events to `controlplane`.

Nothing here decides anything about a control plane; each handler calls the engine
(`controlplane.reconcile`, `controlplane.deletion`) and maps its typed errors to kopf's retry
policy. The handlers, and why they are shaped this way:

- **one daemon per IstioControlPlane** (`reconcile`): kopf starts it when the resource appears
  (creation) and for every existing resource when the operator starts (resume). It reconciles,
  then sleeps until woken or until `resync` seconds passed, and reconciles again, so the status
  and proxy counts stay true and drift (an edited Deployment, a deleted webhook) is corrected on
  the next pass. One task per resource means reconciles of one resource never overlap (no
  duplicate Events from two concurrent passes), and wake-ups that arrive while it works
  coalesce into one more pass.
- **wake-ups** instead of more reconcile paths: a spec change (the resource's event with a
  `metadata.generation` the status has not observed: what `on.update` would catch), and events
  of rendered objects (found by our labels): the Deployments and Services the status is read
  from, and the webhook configurations, whose loss is the drift that hurts most. Pods and
  namespaces are left to the resync: watching every pod of a large cluster to recount them on
  each event would cost more than it tells.
- **a finalizer** (`meshcanary.io/control-plane-cleanup`) whose delete handler runs
  `deletion.cleanup`, but first asks `deletion.refusal` again: a deletion that got past the
  admission webhook (say, while no operator was running) is held, the resource Terminating and
  its istiod still serving, until its proxies are migrated or it is annotated
  `meshcanary.io/force-delete=true`.
- **login** from the given kubeconfig and context (or the in-cluster service account), without
  touching the global configuration of the `kubernetes` client library.

Errors: `reconcile.TransientError` (the API may recover) becomes `kopf.TemporaryError` with an
exponential delay capped at `resync`; any other `ReconcileError` is logged and retried at the
next resync. A bad spec or a webhook overlap is not an error here at all: it is the status
`ReconcileFailed`, and nothing is retried until something changes.

Idempotence across restarts: the daemon's first pass applies objects that have not changed (the
server keeps their resourceVersion), finds the status unchanged, writes nothing and posts no
Event. kopf keeps its own bookkeeping in annotations prefixed `meshcanary.io`, not in `status`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import kopf

from meshcanary.controlplane import deletion, reconcile, render, spec
from meshcanary.kube import client as kube_client
from meshcanary.kube import errors
from meshcanary.mesh import revisions

GROUP: Final = spec.GROUP
VERSION: Final = spec.VERSION
PLURAL: Final = spec.PLURAL
FINALIZER: Final = "meshcanary.io/control-plane-cleanup"
DEFAULT_RESYNC: Final = 10.0
MAX_BACKOFF: Final = 60.0
CANCELLATION_TIMEOUT: Final = 5.0
"""Seconds a stopping daemon may finish its pass before it is cancelled (then as long again)."""
OWNED_LABELS: Final[dict[str, Any]] = {
    render.MANAGED_BY: render.MANAGER,
    render.CONTROL_PLANE_LABEL: kopf.PRESENT,
}
"""Objects rendered for a control plane (kopf filters watch events with these)."""
WATCHED: Final = (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations"),
    ("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations"),
)
"""Rendered kinds whose changes wake their control plane: the status is read from the first
two, and a deleted or edited webhook configuration is the drift that hurts most."""

Key = tuple[str, str]
"""(namespace, name) of an IstioControlPlane."""


class Wakeups:
    """One asyncio.Event per control plane: `wake` sets it, `wait` sleeps on it (or times out)."""

    def __init__(self) -> None:
        self._events: dict[Hashable, asyncio.Event] = {}

    def wake(self, key: Hashable) -> None:
        self._events.setdefault(key, asyncio.Event()).set()

    async def wait(
        self, key: Hashable, timeout: float, stop: asyncio.Future[Any] | None = None
    ) -> bool:
        """Sleep until woken, `stop` is done, or `timeout` seconds; True when woken.

        Clears the wake-up, so wake-ups that arrived meanwhile coalesce into one.
        """
        event = self._events.setdefault(key, asyncio.Event())
        woken = asyncio.ensure_future(event.wait())
        waiters: set[asyncio.Future[Any]] = {woken} | ({stop} if stop is not None else set())
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
        was_woken = event.is_set()
        event.clear()
        return was_woken

    def forget(self, key: Hashable) -> None:
        self._events.pop(key, None)


@dataclass
class Context:
    """What the handlers share: how to connect, how often to resync, the client, the wake-ups."""

    kubeconfig: str | None = None
    context: str | None = None
    resync: float = DEFAULT_RESYNC
    wakeups: Wakeups = field(default_factory=Wakeups)
    _client: kube_client.Client | None = None

    @property
    def client(self) -> kube_client.Client:
        if self._client is None:
            raise RuntimeError("the operator's API client is not connected (startup did not run)")
        return self._client

    async def connect(self) -> None:
        self._client = await kube_client.connect(
            self.kubeconfig, self.context, field_manager=reconcile.FIELD_MANAGER
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def register(registry: kopf.OperatorRegistry, context: Context) -> None:
    """Add the IstioControlPlane handlers, bound to `context`, to `registry`."""
    _register_lifecycle(registry, context)
    _register_reconcile(registry, context)
    _register_wakeups(registry, context)
    _register_deletion(registry, context)


# -- lifecycle --------------------------------------------------------------------------------


def _register_lifecycle(registry: kopf.OperatorRegistry, context: Context) -> None:
    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return connection_info(context, **kwargs)

    @kopf.on.startup(registry=registry)
    async def connect(**_: Any) -> None:
        await context.connect()

    @kopf.on.cleanup(registry=registry)
    async def disconnect(**_: Any) -> None:
        await context.close()


def connection_info(context: Context, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's credentials from our kubeconfig resolution (kubectl's), or the service account."""
    try:
        found = kube_client.credentials(context.kubeconfig, context.context)
    except errors.KubeError as error:
        raise kopf.LoginError(str(error)) from error
    if found is None:
        info: kopf.ConnectionInfo | None = kopf.login_with_service_account(**kwargs)
        return info
    return kopf.ConnectionInfo(
        server=found.server,
        ca_path=found.ca_path,
        ca_data=found.ca_data,
        insecure=found.insecure,
        token=found.token,
        username=found.username,
        password=found.password,
        certificate_path=found.certificate_path,
        certificate_data=found.certificate_data,
        private_key_path=found.private_key_path,
        private_key_data=found.private_key_data,
        default_namespace=found.namespace,
    )


# -- reconciling ------------------------------------------------------------------------------


def _register_reconcile(registry: kopf.OperatorRegistry, context: Context) -> None:
    @kopf.daemon(
        GROUP,
        VERSION,
        PLURAL,
        id="reconcile",
        cancellation_backoff=CANCELLATION_TIMEOUT,
        cancellation_timeout=CANCELLATION_TIMEOUT,
        registry=registry,
    )
    async def keep_true(
        body: kopf.Body, stopped: kopf.DaemonStopped, retry: int, logger: Any, **_: Any
    ) -> None:
        key = key_of(body)
        stop = asyncio.ensure_future(stopped.wait())
        try:
            while not stopped:
                await reconcile_once(context, body, retry, logger)
                await context.wakeups.wait(key, context.resync, stop)
        finally:
            stop.cancel()


async def reconcile_once(context: Context, body: Any, retry: int, logger: Any) -> None:
    """One engine pass, its errors mapped to kopf's retry policy; logs what changed."""
    try:
        outcome = await reconcile.reconcile(context.client, body, now=datetime.now(UTC))
    except reconcile.TransientError as error:
        raise kopf.TemporaryError(str(error), delay=backoff(retry, context.resync)) from error
    except reconcile.ReconcileError as error:
        logger.error("reconcile failed, retrying in %gs: %s", context.resync, error)
        return
    for transition in outcome.transitions:
        logger.info("%s: %s", transition.reason, transition.message)
    for change in outcome.crds:
        logger.info("%s", change)
    if outcome.pruned:
        logger.info("pruned %s", ", ".join(str(ref) for ref in outcome.pruned))
    logger.debug(
        "reconciled: %s, %d objects applied, %d pruned, status %s",
        outcome.status["status"] if outcome.status else "gone",
        len(outcome.applied),
        len(outcome.pruned),
        "written" if outcome.written else "unchanged",
    )


def backoff(retry: int, ceiling: float) -> float:
    """Seconds before retry number `retry` + 1: 1, 2, 4... capped at `ceiling` (and a minute)."""
    return float(min(2.0 ** max(retry, 0), ceiling, MAX_BACKOFF))


def key_of(body: Any) -> Key:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


# -- wake-ups ---------------------------------------------------------------------------------


def _register_wakeups(registry: kopf.OperatorRegistry, context: Context) -> None:
    @kopf.on.event(GROUP, VERSION, PLURAL, id="spec-changed", registry=registry)
    def spec_changed(body: kopf.Body, **_: Any) -> None:
        if needs_reconcile(body):
            context.wakeups.wake(key_of(body))

    def owned_changed(body: kopf.Body, **_: Any) -> None:
        key = owner_key(body)
        if key is not None:
            context.wakeups.wake(key)

    for group, version, plural in WATCHED:
        kopf.on.event(
            group, version, plural, id=f"owned-{plural}", labels=OWNED_LABELS, registry=registry
        )(owned_changed)


def needs_reconcile(body: Any) -> bool:
    """Whether the resource has a generation its status has not observed (a spec change)."""
    meta, current = body.get("metadata") or {}, body.get("status") or {}
    if meta.get("deletionTimestamp"):
        return False
    return int(meta.get("generation") or 0) != int(current.get("observedGeneration") or 0)


def owner_key(body: Any) -> Key | None:
    """The control plane an object rendered for it belongs to: its `istio.io/rev` label says
    `<name>.<namespace>` (cluster-scoped objects have no namespace of their own)."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    try:
        ref = revisions.parse(str(labels.get(revisions.REV_LABEL) or ""))
    except ValueError:
        return None
    if ref.cp_namespace is None:
        return None
    return ref.cp_namespace, ref.cp_name


# -- deletion ---------------------------------------------------------------------------------


def _register_deletion(registry: kopf.OperatorRegistry, context: Context) -> None:
    @kopf.on.delete(GROUP, VERSION, PLURAL, id="cleanup", registry=registry)
    async def clean_up(body: kopf.Body, retry: int, logger: Any, **_: Any) -> None:
        await clean_up_once(context, body, retry, logger)
        context.wakeups.forget(key_of(body))


async def clean_up_once(context: Context, body: Any, retry: int, logger: logging.Logger) -> None:
    """Hold the deletion while something depends on the control plane; else remove everything."""
    cp = deletion.target(body)
    if cp is None:
        return
    try:
        refusal = await deletion.refusal(context.client, body)
        if refusal is not None:
            raise kopf.TemporaryError(f"deletion held: {refusal}", delay=context.resync)
        deleted = await deletion.cleanup(context.client, cp)
    except reconcile.ReconcileError as error:
        delay = backoff(retry, context.resync) if error.transient else context.resync
        raise kopf.TemporaryError(str(error), delay=delay) from error
    logger.info("deleted %d objects of revision %s", len(deleted), cp.revision)

"""Running the operator: options, kopf settings, the checks before kopf starts, and the run itself.

`run(options)` is what `meshcanary operator` calls. Before handing over to kopf it connects once
(so a wrong kubeconfig, context or server fails with one line, not a retry loop) and installs the
IstioControlPlane CRD if it is missing. Then `kopf.run` runs the handlers in the foreground
until SIGINT/SIGTERM, which kopf turns into a clean stop (daemons cancelled, the managed webhook
removed).

Settings, and why:

- peering (leader election): two replicas must not both reconcile. Unless `standalone`, kopf
  peers under the name `meshcanary` (cluster-wide `ClusterKopfPeering` when watching all
  namespaces, `KopfPeering` per namespace otherwise) and only the highest-priority live peer
  handles events. Peering is not mandatory: without kopf's peering CRDs installed the operator
  warns and runs alone (the sandbox, a laptop). `deploy/` must install those CRDs for replicas.
- posting: only warnings and errors of kopf's own log become Events; the control plane's
  transitions are posted by the engine, once each, so a restart adds none.
- persistence: kopf's finalizer is `meshcanary.io/control-plane-cleanup`, and its progress and
  diff-base live in annotations under `meshcanary.io` rather than in `status`, which belongs to
  the engine alone.
- watching: server-side watch timeouts so that a silently broken connection is noticed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import kopf

from meshcanary.controlplane import reconcile
from meshcanary.kube import client as kube_client
from meshcanary.kube import errors
from meshcanary.operator import admission, handlers

PEERING: Final = "meshcanary"
WATCH_SERVER_TIMEOUT: Final = 300
WATCH_CLIENT_TIMEOUT: Final = 330
CONNECT_TIMEOUT: Final = 30
REQUEST_TIMEOUT: Final = 60
ANNOTATIONS_PREFIX: Final = "meshcanary.io"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    """Everything `meshcanary operator` can be told."""

    kubeconfig: str | None = None
    context: str | None = None
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty: all of them."""
    standalone: bool = False
    peering: str = PEERING
    webhook: admission.WebhookOptions | None = field(default_factory=admission.WebhookOptions)
    """None: no admission webhook (the finalizer still holds dangerous deletions)."""
    resync: float = handlers.DEFAULT_RESYNC
    liveness: str | None = None
    """kopf's liveness endpoint, e.g. `http://0.0.0.0:8080/healthz`."""

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


def settings(options: Options, webhook_folder: Path) -> kopf.OperatorSettings:
    """kopf's settings for `options` (see the module docstring for the choices)."""
    result = kopf.OperatorSettings()
    result.peering.name = options.peering
    result.peering.mandatory = False
    result.peering.standalone = options.standalone
    result.peering.clusterwide = options.clusterwide
    result.posting.level = logging.WARNING
    result.persistence.finalizer = handlers.FINALIZER
    result.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATIONS_PREFIX)
    result.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATIONS_PREFIX, key="last-handled-configuration"
    )
    result.watching.server_timeout = WATCH_SERVER_TIMEOUT
    result.watching.client_timeout = WATCH_CLIENT_TIMEOUT
    result.watching.connect_timeout = CONNECT_TIMEOUT
    result.networking.request_timeout = REQUEST_TIMEOUT
    if options.webhook is not None:
        result.admission.managed = admission.CONFIGURATION
        result.admission.server = admission.server(options.webhook, webhook_folder)
    return result


def registry(options: Options) -> kopf.OperatorRegistry:
    """A registry with every handler of the operator, bound to one shared context."""
    context = handlers.Context(
        kubeconfig=options.kubeconfig, context=options.context, resync=options.resync
    )
    result = kopf.OperatorRegistry()
    handlers.register(result, context)
    if options.webhook is not None:
        admission.register(result, context)
    return result


class _Tidy(logging.Filter):
    """Drops kopf's "Handler '...' succeeded." lines (the wake-up handlers run on every watch
    event of every watched Deployment and Service and say nothing worth reading), and tells a
    refused deletion as the warning it is rather than kopf's "failed permanently" error."""

    REFUSED: Final = f"Webhook '{admission.HANDLER_ID}' failed permanently: "

    def __init__(self, *, drop_successes: bool) -> None:
        super().__init__()
        self.drop_successes = drop_successes

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if (
            self.drop_successes
            and message.startswith("Handler '")
            and message.endswith("' succeeded.")
        ):
            return False
        if message.startswith(self.REFUSED):
            record.msg, record.args = "refused a deletion: %s", (message[len(self.REFUSED) :],)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure_logging(verbose: bool = False) -> None:
    """kopf's log format on stderr, object lines prefixed `[namespace/name]`; unless `verbose`,
    without per-request and per-event lines (HTTP transport internals never)."""
    kopf.configure(verbose=verbose, log_prefix=True)
    for name in ("httpcore2", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    objects = logging.getLogger("kopf.objects")
    for previous in [f for f in objects.filters if isinstance(f, _Tidy)]:
        objects.removeFilter(previous)
    objects.addFilter(_Tidy(drop_successes=not verbose))
    if not verbose:
        for name in ("httpx2", "httpx", "aiohttp.access"):
            logging.getLogger(name).setLevel(logging.WARNING)


async def prepare(options: Options) -> bool:
    """Connect once (one-line KubeError if that fails) and install the CRD if it is missing.

    True when the CRD was installed. An operator whose RBAC may not read CRDs (a least-privilege
    deployment, where `deploy/` installs the CRD) goes on with a warning.
    """
    async with kube_client.session(options.kubeconfig, options.context) as client:
        try:
            return await reconcile.ensure_crd(client)
        except reconcile.ReconcileError as error:
            if not isinstance(error.__cause__, errors.Forbidden):
                raise
            log.warning(
                "cannot check the IstioControlPlane CRD, assuming it is installed: %s", error
            )
            return False


def peering_priority(options: Options) -> int | None:
    """A distinct priority per process: kopf pauses every peer when two live peers share one, so
    two replicas with the default (0) would both stand idle. The highest random value leads."""
    if options.standalone:
        return None
    return secrets.randbelow(2**31 - 1) + 1


def run(options: Options, *, verbose: bool = False) -> None:
    """Check the cluster, then run the operator in the foreground until SIGINT/SIGTERM."""
    asyncio.run(prepare(options))
    configure_logging(verbose)
    folder = Path(tempfile.mkdtemp(prefix="meshcanary-operator-"))
    try:
        kopf.run(
            registry=registry(options),
            settings=settings(options, folder),
            standalone=options.standalone,
            priority=peering_priority(options),
            clusterwide=options.clusterwide,
            namespaces=list(options.namespaces),
            liveness_endpoint=options.liveness,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)

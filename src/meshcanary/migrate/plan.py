"""What migrating one namespace to a revision takes, decided from API JSON alone (no I/O).

The plan is the single source of "what would change", so `--dry-run` prints exactly what a real
run does and a second run finds nothing to do:

- labels: `istio-injection` is removed (it silently beats `istio.io/rev`) and `istio.io/rev` set
  to the target; the revision the namespace selected before is recorded so rollback can find it.
- restarts: a controller is restarted only when it owns a live pod that does not run the target
  (a *straggler*). Deployments own pods through ReplicaSets; a ReplicaSet without a Deployment
  owner is restarted itself. Restarting a controller whose pods already run the target would
  only churn, and would break idempotence.
- what cannot be restarted: bare pods and pods of Jobs (and the CronJobs behind them) are named
  with advice, since recreating them is the owner's decision, not ours.
- pods opting out (`sidecar.istio.io/inject=false`, label or annotation) never count: they would
  never run the target, so verification would never pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from meshcanary.mesh import injection, proxies, revisions

PREVIOUS_ANNOTATION: Final = "meshcanary.io/previous-revision"
"""Namespace annotation naming the revision selected before the last migration."""

RESTARTABLE_KINDS: Final = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
BARE_POD_ADVICE: Final = "bare pod: delete and recreate it (kubectl delete pod + re-apply)"
JOB_ADVICE: Final = "Job pod: let it finish; new runs pick up the target revision"
CRONJOB_ADVICE: Final = "CronJob pod: let the run finish; the next run picks up the target"

Obj = Mapping[str, Any]


@dataclass(frozen=True, order=True)
class Controller:
    """A workload controller to restart (`kubectl rollout restart`)."""

    kind: str
    name: str
    pods: tuple[str, ...] = field(default=(), compare=False)
    """Its straggler pods (an orphan ReplicaSet is "restarted" by deleting them)."""

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.name}"


@dataclass(frozen=True, order=True)
class Unrestartable:
    """A straggler pod no controller of ours can replace, with what the user should do."""

    pod: str
    kind: str
    """`Pod` (bare), `Job` or `CronJob`: what owns it."""
    owner: str | None
    advice: str


@dataclass(frozen=True)
class Workloads:
    """A namespace's objects that matter to a migration, as API JSON."""

    pods: Sequence[Obj] = ()
    replicasets: Sequence[Obj] = ()
    jobs: Sequence[Obj] = ()


@dataclass(frozen=True)
class MigrationPlan:
    """What moving `namespace` to `target` changes; `nothing_to_do` when already there."""

    namespace: str
    target: str
    labels_before: Mapping[str, str]
    labels_after: Mapping[str, str]
    previous_revision: str | None
    """Revision selected before (recorded for rollback); None when it is already the target
    or the namespace selected nothing."""
    controllers: tuple[Controller, ...] = ()
    unrestartable: tuple[Unrestartable, ...] = ()
    stragglers: tuple[str, ...] = field(default=())
    """Live pods (by name) that do not run the target revision."""

    @property
    def relabel_needed(self) -> bool:
        """Whether the namespace's injection labels must change."""
        return dict(self.labels_before) != dict(self.labels_after)

    @property
    def nothing_to_do(self) -> bool:
        """Labelled for the target and every live pod runs it."""
        return not self.relabel_needed and not self.stragglers

    @property
    def label_patch(self) -> dict[str, str | None]:
        """The merge patch of `metadata.labels` (None removes a label)."""
        patch: dict[str, str | None] = {}
        for key in self.labels_before.keys() - self.labels_after.keys():
            patch[key] = None
        for key, value in self.labels_after.items():
            if self.labels_before.get(key) != value:
                patch[key] = value
        return patch


def injection_labels(namespace: Obj) -> dict[str, str]:
    """The namespace labels that decide injection (`istio-injection`, `istio.io/rev`)."""
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    keys = (injection.INJECTION_LABEL, revisions.REV_LABEL)
    return {key: str(labels[key]) for key in keys if key in labels}


def selected_revision(namespace: Obj) -> str | None:
    """The revision the namespace's labels select today (Istio's precedence)."""
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    return injection.namespace_selection(labels).revision


def plan_namespace(namespace: Obj, workloads: Workloads, target: str) -> MigrationPlan:
    """The plan for moving one namespace (API JSON) and its workloads to revision `target`."""
    name = str((namespace.get("metadata") or {}).get("name", ""))
    before = injection_labels(namespace)
    selected = selected_revision(namespace)
    stragglers = [pod for pod in workloads.pods if is_straggler(pod, target)]
    controllers, unrestartable = _owners(stragglers, workloads)
    return MigrationPlan(
        namespace=name,
        target=target,
        labels_before=before,
        labels_after={revisions.REV_LABEL: target},
        previous_revision=selected if selected != target else None,
        controllers=tuple(sorted(controllers)),
        unrestartable=tuple(sorted(unrestartable)),
        stragglers=tuple(sorted(_name(pod) for pod in stragglers)),
    )


def is_straggler(pod: Obj, target: str) -> bool:
    """A live pod that should run `target` but does not (no proxy, or another revision)."""
    status = pod.get("status") or {}
    if status.get("phase") in proxies.FINISHED_PHASES or opted_out(pod):
        return False
    proxy = proxies.proxy_from_pod(pod)
    return proxy is None or proxy.revision != target


def opted_out(pod: Obj) -> bool:
    """Whether the pod asks not to be injected (label or annotation `inject=false`)."""
    metadata = pod.get("metadata") or {}
    for where in ("labels", "annotations"):
        if (metadata.get(where) or {}).get(injection.INJECT_LABEL) == "false":
            return True
    return False


def stragglers(pods: Iterable[Obj], target: str) -> list[str]:
    """Names of the live pods that do not run `target`, sorted (verification)."""
    return sorted(_name(pod) for pod in pods if is_straggler(pod, target))


def _owners(
    pods: Iterable[Obj], workloads: Workloads
) -> tuple[set[Controller], set[Unrestartable]]:
    replicasets = {_name(rs): _controller_of(rs) for rs in workloads.replicasets}
    jobs = {_name(job): _controller_of(job) for job in workloads.jobs}
    controllers: dict[Controller, list[str]] = {}
    unrestartable: set[Unrestartable] = set()
    for pod in pods:
        owner = _controller_of(pod)
        found = _restartable(owner, replicasets)
        if found is not None:
            controllers.setdefault(found, []).append(_name(pod))
        else:
            unrestartable.add(_unrestartable(_name(pod), owner, jobs))
    restart = {Controller(c.kind, c.name, tuple(sorted(names))) for c, names in controllers.items()}
    return restart, unrestartable


def _restartable(
    owner: tuple[str, str] | None, replicasets: Mapping[str, tuple[str, str] | None]
) -> Controller | None:
    if owner is None:
        return None
    kind, name = owner
    if kind == "ReplicaSet":
        parent = replicasets.get(name)
        if parent is not None and parent[0] == "Deployment":
            return Controller(*parent)
        return Controller(kind, name)
    if kind in RESTARTABLE_KINDS:
        return Controller(kind, name)
    return None


def _unrestartable(
    pod: str, owner: tuple[str, str] | None, jobs: Mapping[str, tuple[str, str] | None]
) -> Unrestartable:
    if owner is None:
        return Unrestartable(pod, "Pod", None, BARE_POD_ADVICE)
    kind, name = owner
    if kind == "Job":
        parent = jobs.get(name)
        if parent is not None and parent[0] == "CronJob":
            return Unrestartable(pod, "CronJob", parent[1], CRONJOB_ADVICE)
        return Unrestartable(pod, "Job", name, JOB_ADVICE)
    advice = f"owned by {kind} {name}: restart it with the tool that manages it"
    return Unrestartable(pod, kind, name, advice)


def _controller_of(obj: Obj) -> tuple[str, str] | None:
    for owner in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if owner.get("controller"):
            return str(owner.get("kind")), str(owner.get("name"))
    return None


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


# -- rollback -----------------------------------------------------------------------------------


class NoPreviousRevision(ValueError):
    """Rollback was asked for a namespace that records no previous revision."""


def previous_revision(namespace: Obj) -> str | None:
    """The revision recorded by the last migration of this namespace, if any."""
    annotations = (namespace.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(PREVIOUS_ANNOTATION)
    return str(value) if value else None


def rollback_target(namespace: Obj, to: str | None) -> str:
    """Where rollback takes a namespace: `to` if given, else its recorded previous revision."""
    if to:
        return to
    recorded = previous_revision(namespace)
    if recorded is None:
        name = (namespace.get("metadata") or {}).get("name", "")
        raise NoPreviousRevision(
            f"namespace {name} records no previous revision ({PREVIOUS_ANNOTATION}); "
            "pass --to <control plane>"
        )
    return recorded

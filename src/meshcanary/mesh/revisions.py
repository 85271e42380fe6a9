"""Revision references (`istio.io/rev` values) and the names of every per-revision object.

Two formats live side by side in real clusters, and meshcanary supports both:

- SMM / istio-operator v2: `<cp-name>.<cp-namespace>` (exactly one dot), e.g.
  `cp-v115x.istio-system`. The control plane is a namespaced `IstioControlPlane`; its objects are
  named from the control plane's name, and the cluster-scoped ones also carry its namespace.
- upstream Istio: a bare DNS label with no dot, e.g. `1-15-0`, `canary`, a revision tag such as
  `prod-stable`, or `default` (the revision installed without `--revision`).

All object names derived from a revision are computed here and nowhere else, so the renderer,
the migration engine, the validators and the dashboard cannot disagree about what "the webhook of
revision X" is called. Sources: istio-operator v2 `api/v1alpha1/istiocontrolplane_types.go` and its
golden resource dump; upstream `manifests/charts/istio-control/istio-discovery/templates`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

REV_LABEL: Final = "istio.io/rev"
"""Namespace label selecting a revision; also the injected pod annotation naming it."""
TAG_LABEL: Final = "istio.io/tag"
"""Label of a revision tag's MutatingWebhookConfiguration, naming the tag."""
DEFAULT_REVISION: Final = "default"
"""The upstream revision installed without `--revision` (and the tag that points at it)."""
DEFAULT_ISTIO_NAMESPACE: Final = "istio-system"
MAX_LABEL_VALUE: Final = 63

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@functools.total_ordering
@dataclass(frozen=True)
class RevisionRef:
    """One `istio.io/rev` value, parsed.

    For an SMM reference `cp_name` is the control plane's name and `cp_namespace` its namespace;
    for an upstream reference `cp_name` is the bare revision (or tag) and `cp_namespace` is None.
    Build one with `parse` or `RevisionRef.for_control_plane`, which validate.
    """

    cp_name: str
    cp_namespace: str | None = None

    @classmethod
    def for_control_plane(cls, name: str, namespace: str) -> RevisionRef:
        """The reference of an IstioControlPlane, as istio-operator v2 derives it.

        Dots in the control plane's name become dashes (istio-operator v2's `Revision()`), so the
        reference keeps exactly one dot.
        """
        return parse(f"{name.replace('.', '-')}.{namespace}")

    @property
    def value(self) -> str:
        """The label value: `cp.ns` (SMM) or the bare revision."""
        if self.cp_namespace is None:
            return self.cp_name
        return f"{self.cp_name}.{self.cp_namespace}"

    @property
    def is_smm(self) -> bool:
        """True for the `<cp-name>.<cp-namespace>` format."""
        return self.cp_namespace is not None

    @property
    def is_default(self) -> bool:
        """True for the upstream `default` revision (objects named without a suffix)."""
        return self.cp_namespace is None and self.cp_name == DEFAULT_REVISION

    @property
    def labels(self) -> dict[str, str]:
        """The label set selecting this revision (namespaces, istiod objects)."""
        return {REV_LABEL: self.value}

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, RevisionRef):
            return NotImplemented
        return self.value < other.value

    def __str__(self) -> str:
        return self.value


def parse(value: str) -> RevisionRef:
    """Parse an `istio.io/rev` value; raise ValueError saying what is wrong with it."""
    if not isinstance(value, str) or not value:
        raise ValueError("a revision must be a non-empty string")
    if len(value) > MAX_LABEL_VALUE:
        raise ValueError(f"revision {value!r} is longer than {MAX_LABEL_VALUE} characters")
    name, dot, namespace = value.partition(".")
    _check_label(value, "revision" if not dot else "control plane name", name)
    if not dot:
        return RevisionRef(name)
    _check_label(value, "control plane namespace", namespace)
    return RevisionRef(name, namespace)


def is_valid(value: str) -> bool:
    """Whether `parse(value)` would succeed."""
    try:
        parse(value)
    except ValueError:
        return False
    return True


def _check_label(value: str, what: str, part: str) -> None:
    if not part:
        raise ValueError(f"revision {value!r}: the {what} is empty")
    if "." in part:
        raise ValueError(
            f"revision {value!r}: expected <name> or <cp-name>.<cp-namespace> (one dot at most)"
        )
    if not _DNS_LABEL.fullmatch(part):
        raise ValueError(
            f"revision {value!r}: the {what} {part!r} is not a DNS label "
            "(lower-case letters, digits and '-', starting and ending with a letter or digit)"
        )


# -- object names --------------------------------------------------------------------------------


def _suffixed(base: str, ref: RevisionRef) -> str:
    """`base-<cp>` (SMM), `base-<rev>` (upstream) or plain `base` (upstream default)."""
    return base if ref.is_default else f"{base}-{ref.cp_name}"


def istiod_name(ref: RevisionRef) -> str:
    """istiod's Deployment, Service, ServiceAccount, Role(Binding), HPA and PDB."""
    return _suffixed("istiod", ref)


def mesh_config_name(ref: RevisionRef) -> str:
    """The mesh config ConfigMap (`istio-<cp>`; upstream `istio` / `istio-<rev>`)."""
    return _suffixed("istio", ref)


def injector_configmap_name(ref: RevisionRef) -> str:
    """The sidecar injector template ConfigMap."""
    return _suffixed("istio-sidecar-injector", ref)


def mutating_webhook_name(ref: RevisionRef) -> str:
    """The injection MutatingWebhookConfiguration (cluster-scoped).

    SMM appends the control plane's namespace (`istio-sidecar-injector-<cp>-<ns>`); upstream
    names it like the injector ConfigMap when installed in istio-system.
    """
    if ref.cp_namespace is not None:
        return f"istio-sidecar-injector-{ref.cp_name}-{ref.cp_namespace}"
    return injector_configmap_name(ref)


def validating_webhook_name(
    ref: RevisionRef, istio_namespace: str = DEFAULT_ISTIO_NAMESPACE
) -> str:
    """The config ValidatingWebhookConfiguration (cluster-scoped).

    SMM: `istio-validator-<cp>-<ns>`; upstream: `istio-validator[-<rev>]-<istio-namespace>`.
    """
    if ref.cp_namespace is not None:
        return f"istio-validator-{ref.cp_name}-{ref.cp_namespace}"
    return f"{_suffixed('istio-validator', ref)}-{istio_namespace}"


def cluster_role_name(ref: RevisionRef, istio_namespace: str = DEFAULT_ISTIO_NAMESPACE) -> str:
    """istiod's ClusterRole and ClusterRoleBinding (cluster-scoped, so namespaced by name).

    SMM: `istiod-<cp>-<ns>`; upstream: `istiod-clusterrole[-<rev>]-<istio-namespace>`.
    """
    if ref.cp_namespace is not None:
        return f"istiod-{ref.cp_name}-{ref.cp_namespace}"
    return f"{_suffixed('istiod-clusterrole', ref)}-{istio_namespace}"


def reader_cluster_role_name(
    ref: RevisionRef, istio_namespace: str = DEFAULT_ISTIO_NAMESPACE
) -> str:
    """The read-only ClusterRole(Binding) for remote clusters (`istio-reader-...`)."""
    if ref.cp_namespace is not None:
        return f"istio-reader-{ref.cp_name}-{ref.cp_namespace}"
    return f"{_suffixed('istio-reader-clusterrole', ref)}-{istio_namespace}"


def istiod_address(ref: RevisionRef, istio_namespace: str = DEFAULT_ISTIO_NAMESPACE) -> str:
    """Where proxies of this revision reach istiod (`ISTIOD_ADDR`, port 15012)."""
    namespace = ref.cp_namespace or istio_namespace
    return f"{istiod_name(ref)}.{namespace}.svc:15012"

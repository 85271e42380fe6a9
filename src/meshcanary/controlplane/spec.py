"""The `IstioControlPlane` custom resource as a typed value, parsed and checked beyond its schema.

The CRD's OpenAPI schema (`crd.py`) catches what a structural schema can: types, enums, the
version pattern, minimums. What it cannot see is caught here, before anything is rendered:

- names that would make invalid or clashing objects: the revision `<cp>.<ns>` is a label value
  (at most 63 characters, `mesh.revisions` checks it), `istiod-<cp>` and, with mesh expansion,
  `istio-meshexpansion-<cp>` are Service names (at most 63), and a dot in `<cp>` is refused
  (istio-operator v2 turns dots into dashes, so `a.b` and `a-b` would share every object);
- a version outside the range meshcanary supports (`mesh.versions.SUPPORTED_MINORS`);
- image references that cannot work (a tag with a slash, a hub ending in `/`, whitespace).

`parse` also applies the schema's defaults itself, so a resource read from a file (a dry run, a
unit test) yields the same model as one the API server defaulted; the default values live here
and `crd.py` publishes them in the schema. The CRD's default for the image tag cannot be expressed
in a schema (it is the version), so it exists only here.

A `SpecError` is a *validation* error: retrying will not help until the user edits the resource.
The operator reports it as `ReconcileFailed` with the message and does not requeue.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from meshcanary.mesh import revisions, versions

GROUP: Final = "meshcanary.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "IstioControlPlane"
PLURAL: Final = "istiocontrolplanes"

DEFAULT_NETWORK: Final = "network1"
DEFAULT_HUB: Final = "docker.io/istio"
DEFAULT_CLUSTER_ID: Final = "Kubernetes"
DEFAULT_REPLICAS: Final = 1
DEFAULT_PROXY_IMAGE: Final = "proxyv2"
DEFAULT_PROXY_LOG_LEVEL: Final = "warning"

VERSION_PATTERN: Final = r"^1\.[0-9]+\.[0-9]+$"
PULL_POLICIES: Final = ("Always", "IfNotPresent", "Never")
LOG_LEVELS: Final = ("trace", "debug", "info", "warning", "error", "critical", "off")

GATEWAY_PREFIX: Final = "istio-meshexpansion"
"""The mesh expansion gateway's Deployment and Service are `istio-meshexpansion-<cp>`."""
MAX_DNS_LABEL: Final = 63
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class Mode(StrEnum):
    """ACTIVE runs a full istiod; PASSIVE only injects (headless Service, no validation)."""

    ACTIVE = "ACTIVE"
    PASSIVE = "PASSIVE"


class SpecError(ValueError):
    """The resource cannot be rendered as it stands; `problems` lists every reason, by field."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class Images:
    """`spec.containerImageConfiguration`: where istiod and proxy images come from."""

    hub: str
    tag: str
    pull_policy: str | None = None
    pull_secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class IstiodDeployment:
    """`spec.istiod.deployment`. Mappings are Kubernetes JSON, passed through unchanged."""

    replicas: int = DEFAULT_REPLICAS
    resources: Mapping[str, Any] | None = None
    env: tuple[Mapping[str, Any], ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Proxy:
    """`spec.proxy`: the sidecar the injector adds."""

    image: str = DEFAULT_PROXY_IMAGE
    """An image name under the hub (`proxyv2`) or a full reference (`my.registry/proxy:1.15.3`)."""
    resources: Mapping[str, Any] | None = None
    log_level: str = DEFAULT_PROXY_LOG_LEVEL


@dataclass(frozen=True)
class ControlPlane:
    """One `IstioControlPlane`: identity (from metadata) and the defaulted, checked spec."""

    name: str
    namespace: str
    version: str
    images: Images
    uid: str = ""
    """The resource's uid; rendered objects get an ownerReference only when it is known."""
    generation: int = 0
    mode: Mode = Mode.ACTIVE
    network: str = DEFAULT_NETWORK
    mesh_expansion: bool = False
    istiod: IstiodDeployment = field(default_factory=IstiodDeployment)
    proxy: Proxy = field(default_factory=Proxy)
    mesh_config: Mapping[str, Any] = field(default_factory=dict)
    cluster_id: str = DEFAULT_CLUSTER_ID
    mesh_id: str | None = None

    @property
    def ref(self) -> revisions.RevisionRef:
        """The revision reference `<cp>.<ns>` (valid: `parse` checked it)."""
        return revisions.RevisionRef.for_control_plane(self.name, self.namespace)

    @property
    def revision(self) -> str:
        """The `istio.io/rev` value: `<cp>.<ns>`."""
        return self.ref.value

    @property
    def pilot_image(self) -> str:
        return f"{self.images.hub}/pilot:{self.images.tag}"

    @property
    def proxy_image(self) -> str:
        """What istiod computes as `.ProxyImage`: a full reference wins, else hub/name:tag."""
        if "/" in self.proxy.image:
            return self.proxy.image
        return f"{self.images.hub}/{self.proxy.image}:{self.images.tag}"


# -- parsing --------------------------------------------------------------------------------------


def parse(resource: Mapping[str, Any]) -> ControlPlane:
    """The model of an `IstioControlPlane` dict (defaulted or not); `SpecError` if unusable."""
    problems: list[str] = []
    reader = _Reader(problems)
    meta = reader.mapping(resource, "metadata")
    spec = reader.mapping(resource, "spec")
    name = reader.string(meta, "metadata.name", required=True)
    namespace = reader.string(meta, "metadata.namespace", required=True)
    version = reader.string(spec, "spec.version", required=True)
    cp = ControlPlane(
        name=name,
        namespace=namespace,
        uid=reader.string(meta, "metadata.uid"),
        generation=reader.integer(meta, "metadata.generation", 0),
        version=version,
        mode=_mode(reader, spec),
        network=reader.string(spec, "spec.networkName") or DEFAULT_NETWORK,
        mesh_expansion=reader.boolean(
            reader.mapping(spec, "spec.meshExpansion"), "spec.meshExpansion.enabled"
        ),
        images=_images(reader, reader.mapping(spec, "spec.containerImageConfiguration"), version),
        istiod=_istiod(
            reader, reader.mapping(reader.mapping(spec, "spec.istiod"), "spec.istiod.deployment")
        ),
        proxy=_proxy(reader, reader.mapping(spec, "spec.proxy")),
        mesh_config=reader.mapping(spec, "spec.meshConfig"),
        cluster_id=reader.string(spec, "spec.clusterID") or DEFAULT_CLUSTER_ID,
        mesh_id=reader.string(spec, "spec.meshID") or None,
    )
    if not problems:
        problems.extend(check(cp))
    if problems:
        raise SpecError(problems)
    return cp


def check(cp: ControlPlane) -> list[str]:
    """What the schema cannot reject: names, the supported version range, image references."""
    return [*_name_problems(cp), *_version_problems(cp.version), *_image_problems(cp)]


def _mode(reader: _Reader, spec: Mapping[str, Any]) -> Mode:
    value = reader.string(spec, "spec.mode") or Mode.ACTIVE.value
    try:
        return Mode(value)
    except ValueError:
        reader.problems.append(
            f'spec.mode: Unsupported value: "{value}": supported values: "ACTIVE", "PASSIVE"'
        )
        return Mode.ACTIVE


def _images(reader: _Reader, config: Mapping[str, Any], version: str) -> Images:
    path = "spec.containerImageConfiguration"
    policy = reader.string(config, f"{path}.imagePullPolicy") or None
    if policy is not None and policy not in PULL_POLICIES:
        reader.problems.append(f"{path}.imagePullPolicy: Unsupported value: {policy!r}")
    secrets = [
        reader.string(item, f"{path}.imagePullSecrets[{i}].name", required=True)
        for i, item in enumerate(reader.mappings(config, f"{path}.imagePullSecrets"))
    ]
    return Images(
        hub=reader.string(config, f"{path}.hub") or DEFAULT_HUB,
        tag=reader.string(config, f"{path}.tag") or version,
        pull_policy=policy,
        pull_secrets=tuple(secrets),
    )


def _istiod(reader: _Reader, deployment: Mapping[str, Any]) -> IstiodDeployment:
    path = "spec.istiod.deployment"
    replicas = reader.integer(deployment, f"{path}.replicas", DEFAULT_REPLICAS)
    if replicas < 0:
        reader.problems.append(f"{path}.replicas: Invalid value: {replicas}: must be >= 0")
    return IstiodDeployment(
        replicas=replicas,
        resources=reader.mapping(deployment, f"{path}.resources") or None,
        env=tuple(reader.mappings(deployment, f"{path}.env")),
        node_selector={
            str(k): str(v) for k, v in reader.mapping(deployment, f"{path}.nodeSelector").items()
        },
        tolerations=tuple(reader.mappings(deployment, f"{path}.tolerations")),
    )


def _proxy(reader: _Reader, proxy: Mapping[str, Any]) -> Proxy:
    level = reader.string(proxy, "spec.proxy.logLevel") or DEFAULT_PROXY_LOG_LEVEL
    if level not in LOG_LEVELS:
        reader.problems.append(f"spec.proxy.logLevel: Unsupported value: {level!r}")
    return Proxy(
        image=reader.string(proxy, "spec.proxy.image") or DEFAULT_PROXY_IMAGE,
        resources=reader.mapping(proxy, "spec.proxy.resources") or None,
        log_level=level,
    )


def _name_problems(cp: ControlPlane) -> list[str]:
    if "." in cp.name:
        # istio-operator v2 turns dots into dashes, so `a.b` and `a-b` would share every object.
        return [f"metadata.name: {cp.name!r} must not contain dots: it names istiod-<name>"]
    try:
        ref = revisions.RevisionRef.for_control_plane(cp.name, cp.namespace)
    except ValueError as error:
        return [f"metadata.name: {error} (the istio.io/rev label value is <name>.<namespace>)"]
    service = revisions.istiod_name(ref)
    if cp.mesh_expansion:
        service = f"{GATEWAY_PREFIX}-{ref.cp_name}"
    if len(service) > MAX_DNS_LABEL:
        return [f"metadata.name: the Service name {service!r} would be longer than {MAX_DNS_LABEL}"]
    return []


def _version_problems(version: str) -> list[str]:
    if not re.match(VERSION_PATTERN, version):
        return [f"spec.version: {version!r} is not a version of the form 1.x.y"]
    if not versions.is_supported(versions.parse(version)):
        return [f"spec.version: Istio {version} is not supported (supported: {supported_range()})"]
    return []


def supported_range() -> str:
    """The supported minors as people write them: `1.13-1.30`."""
    minors = sorted(versions.SUPPORTED_MINORS)
    return f"{minors[0].major}.{minors[0].minor}-{minors[-1].major}.{minors[-1].minor}"


def _image_problems(cp: ControlPlane) -> list[str]:
    path = "spec.containerImageConfiguration"
    problems = []
    if not _IMAGE_TAG.match(cp.images.tag):
        problems.append(f"{path}.tag: {cp.images.tag!r} is not a valid image tag")
    if any(c.isspace() for c in cp.images.hub) or cp.images.hub.endswith("/"):
        problems.append(f"{path}.hub: {cp.images.hub!r} is not an image repository prefix")
    if any(c.isspace() for c in cp.proxy.image):
        problems.append(f"spec.proxy.image: {cp.proxy.image!r} is not an image reference")
    return problems


class _Reader:
    """Typed access to untrusted JSON, collecting a problem per wrongly typed field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def mapping(self, parent: Mapping[str, Any], path: str) -> dict[str, Any]:
        value = parent.get(_last(path))
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problems.append(f"{path}: must be an object")
            return {}
        return dict(value)

    def mappings(self, parent: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
        value = parent.get(_last(path))
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            self.problems.append(f"{path}: must be a list of objects")
            return []
        return [dict(v) for v in value]

    def string(self, parent: Mapping[str, Any], path: str, *, required: bool = False) -> str:
        value = parent.get(_last(path))
        if value is None or value == "":
            if required:
                self.problems.append(f"{path}: Required value")
            return ""
        if not isinstance(value, str):
            self.problems.append(f"{path}: must be a string")
            return ""
        return value

    def integer(self, parent: Mapping[str, Any], path: str, default: int) -> int:
        value = parent.get(_last(path))
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.append(f"{path}: must be an integer")
            return default
        return value

    def boolean(self, parent: Mapping[str, Any], path: str) -> bool:
        value = parent.get(_last(path))
        if value is None:
            return False
        if not isinstance(value, bool):
            self.problems.append(f"{path}: must be a boolean")
            return False
        return value


def _last(path: str) -> str:
    return path.rpartition(".")[2]

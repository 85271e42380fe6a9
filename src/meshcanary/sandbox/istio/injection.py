"""Istio's sidecar injector as a pure function: AdmissionReview in, AdmissionReview out.

Tools that inspect pods (ours included) must not be able to tell these pods from ones a real
istiod injected, so the output follows upstream `injection-template.yaml` of Istio 1.17-1.20 and
`pkg/kube/inject` field by field: the `istio-proxy` container (last) and `istio-init` init
container on the revision's proxy image, their volumes, the labels `security.istio.io/tlsMode`
and `service.istio.io/canonical-{name,revision}`, the annotations `istio.io/rev` (the revision,
never a tag: the webhook behind a tag is still the revision's istiod), `sidecar.istio.io/status`,
`kubectl.kubernetes.io/default-{container,logs-container}` and `prometheus.io/*`. SMM-style
revisions (istio-operator v2's template) also set the pod *label* `istio.io/rev: <cp>.<ns>`;
upstream does not. Honoured pod annotations: `sidecar.istio.io/inject` (label or annotation;
the label wins), `sidecar.istio.io/proxyImage` (only a full reference with a `/`, as upstream:
that is how a proxy newer than its control plane arises), `sidecar.istio.io/logLevel`,
`componentLogLevel`, `agentLogLevel`, `interceptionMode`, `proxyCPU`/`proxyMemory`(`Limit`) and
the `traffic.sidecar.istio.io/*` port and IP-range annotations.

Re-injection is what really happens, not what is "supposed" to: upstream `injectRequired` does
not look at `sidecar.istio.io/status`; `stripPod` removes the containers that annotation lists and
injects again. So when two revisions' webhooks both match a pod (IST0139), each patches the pod it
receives, and the pod ends up with ONE sidecar of the revision whose webhook ran last (istio's
webhooks use `reinvocationPolicy: Never`), its `istio.io/rev` annotation and status naming that
revision, while labels the first one added and the second does not write (an SMM `istio.io/rev`
label, under an upstream second webhook) stay behind, stale. The admission chain's order (by
configuration name) decides which revision wins: deterministic here, "undefined" in Istio's docs.

The JSONPatch is a diff between the pod as received and the injected pod, so it always applies
to the object the webhook was sent (missing `/metadata/annotations` is added whole, keys escape
`/` as `~1`). Left to the API server, as in a real cluster: defaulting of the injected
containers' remaining fields.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from meshcanary.sandbox.istio.revisions import REV_LABEL, Revision, parse_image

PROXY = "istio-proxy"
INIT = "istio-init"
STATUS_ANNOTATION = "sidecar.istio.io/status"
INJECT = "sidecar.istio.io/inject"
PROXY_IMAGE_ANNOTATION = "sidecar.istio.io/proxyImage"
WORKLOAD_LABEL = "service.istio.io/workload-name"
STATUS_PORT = "15020"
HEALTH_PORT = 15021
PROMETHEUS_PORT = 15090
PROXY_UID = "1337"
TRUST_DOMAIN = "cluster.local"
IGNORED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
_YES = frozenset({"y", "yes", "true", "on"})
_CRONJOB_RUN = re.compile(r"(.+)-\d{8,10}$")
_URL_PARAMETER_ENV = {"cluster": "ISTIO_META_CLUSTER_ID", "net": "ISTIO_META_NETWORK"}
_PROMETHEUS = ("prometheus.io/scrape", "prometheus.io/path", "prometheus.io/port")
_AGENT_LOG_LEVEL = ("--log_output_level", "sidecar.istio.io/agentLogLevel", "default:info")
_DEFAULT_RESOURCES = {
    "limits": {"cpu": "2", "memory": "1Gi"},
    "requests": {"cpu": "100m", "memory": "128Mi"},
}


# -- the webhook ---------------------------------------------------------------------------------


def review(body: Mapping[str, Any], revision: Revision, path: str = "/inject") -> dict[str, Any]:
    """Answer one AdmissionReview for a pod as `revision`'s istiod would on `path`."""
    request = body.get("request") or {}
    response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": True}
    pod, namespace = request.get("object"), str(request.get("namespace") or "")
    if not isinstance(pod, dict) or not isinstance(pod.get("metadata", {}), dict):
        response.update(allowed=False, status={"message": "could not decode the pod object"})
    elif injection_required(pod, namespace):
        ops = json_patch(pod, inject_pod(pod, revision, namespace, path))
        if ops:
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(orjson.dumps(ops)).decode()
    return {
        "apiVersion": body.get("apiVersion") or "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    }


def injection_required(pod: Mapping[str, Any], namespace: str) -> bool:
    """Upstream `injectRequired` with the default policy `enabled` and no extra selectors."""
    meta = pod.get("metadata") or {}
    if (pod.get("spec") or {}).get("hostNetwork"):
        return False
    if (meta.get("namespace") or namespace) in IGNORED_NAMESPACES:
        return False
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    wanted = str(labels.get(INJECT, annotations.get(INJECT, ""))).lower()
    return wanted == "" or wanted in _YES


def proxy_env(path: str) -> dict[str, str]:
    """Env overrides in the webhook path: `/inject/cluster/<c>/net/<n>` (upstream's syntax)."""
    parts = path.rstrip("/").split("/", 2)
    words = parts[2].split("/") if len(parts) == 3 else []
    env = {}
    for key, value in zip(words[::2], words[1::2], strict=False):
        name = _URL_PARAMETER_ENV.get(key, key.upper())
        env[name] = value.replace("--slash--", "/")
    return env


# -- the injected pod ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """What istiod calls the pod's DeploymentMeta and TypeMeta (`GetDeployMetaFromPod`)."""

    name: str
    kind: str
    api_version: str

    def owner_uri(self, namespace: str) -> str:
        return (
            f"kubernetes://apis/{self.api_version}/namespaces/{namespace or 'default'}"
            f"/{self.kind.lower()}s/{self.name}"
        )


@dataclass(frozen=True)
class _Context:
    """Everything the template reads, computed once from the (stripped) pod."""

    revision: Revision
    namespace: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    containers: tuple[Mapping[str, Any], ...]
    """The pod's own containers (earlier injections stripped)."""
    workload: Workload
    env: Mapping[str, str]

    def annotation(self, name: str, default: str) -> str:
        return str(self.annotations.get(name, default))

    def flag(self, flag: str, annotation: str, default: str) -> str:
        """`--flag=<the pod's annotation, or the default>`."""
        return f"{flag}={self.annotation(annotation, default)}"

    @property
    def image(self) -> str:
        wanted = str(self.annotations.get(PROXY_IMAGE_ANNOTATION, ""))
        return wanted if "/" in wanted else self.revision.proxy_image

    @property
    def app_containers(self) -> list[str]:
        return [c["name"] for c in self.containers if c.get("name") != PROXY]

    @property
    def interception_mode(self) -> str:
        return self.annotation("sidecar.istio.io/interceptionMode", "REDIRECT")

    @property
    def intercepts(self) -> bool:
        return self.interception_mode != "NONE"


def inject_pod(
    pod: Mapping[str, Any], revision: Revision, namespace: str = "", path: str = "/inject"
) -> dict[str, Any]:
    """The pod as `revision`'s injector leaves it (a new dict; `pod` is not modified)."""
    out: dict[str, Any] = orjson.loads(orjson.dumps(pod))
    meta = out.setdefault("metadata", {})
    spec = out.setdefault("spec", {})
    _strip_previous_injection(meta, spec)
    ctx = _Context(
        revision=revision,
        namespace=str(meta.get("namespace") or namespace),
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
        containers=tuple(spec.get("containers") or ()),
        workload=workload_of(meta),
        env=proxy_env(path),
    )
    injected_inits = [_init_container(ctx)] if ctx.intercepts else []
    injected_volumes = _volumes()
    spec["containers"] = _last(_put(spec.get("containers"), [_proxy_container(ctx)]), PROXY)
    if injected_inits:
        spec["initContainers"] = _last(_put(spec.get("initContainers"), injected_inits), INIT)
    spec["volumes"] = _put(spec.get("volumes"), injected_volumes, user_wins=False)
    meta["labels"] = {**ctx.labels, **_labels(ctx)}
    meta["annotations"] = {**ctx.annotations, **_annotations(ctx)}
    meta["annotations"][STATUS_ANNOTATION] = _status(injected_inits, injected_volumes, revision)
    return out


def workload_of(meta: Mapping[str, Any]) -> Workload:
    """The pod's controller as Istio guesses it: ReplicaSet -> Deployment, Job -> CronJob."""
    name = str(meta.get("name") or "")
    controller = next(
        (ref for ref in meta.get("ownerReferences") or () if ref.get("controller")), None
    )
    if not meta.get("generateName") or controller is None:
        return Workload(name, "Pod", "v1")
    kind, api_version, name = controller["kind"], controller["apiVersion"], controller["name"]
    template_hash = (meta.get("labels") or {}).get("pod-template-hash", "")
    if kind == "ReplicaSet" and template_hash and name.endswith(template_hash):
        return Workload(name.removesuffix(f"-{template_hash}"), "Deployment", api_version)
    if kind == "Job" and (run := _CRONJOB_RUN.fullmatch(name)):
        return Workload(run.group(1), "CronJob", "batch/v1beta1")
    return Workload(name, kind, api_version)


def _strip_previous_injection(meta: dict[str, Any], spec: dict[str, Any]) -> None:
    """Upstream `stripPod`: drop what an earlier injection listed, so injecting is idempotent."""
    annotations = meta.get("annotations") or {}
    try:
        previous = orjson.loads(annotations[STATUS_ANNOTATION])
    except (KeyError, orjson.JSONDecodeError):
        return
    if not isinstance(previous, dict):
        return
    for field in ("containers", "initContainers"):
        drop = set(previous.get(field) or ())
        if field in spec:
            spec[field] = [c for c in spec[field] or () if c.get("name") not in drop]
    if annotations.get("prometheus.io/port") == STATUS_PORT:
        for key in _PROMETHEUS:
            annotations.pop(key, None)
    annotations.pop(STATUS_ANNOTATION, None)


def _put(
    existing: list[dict[str, Any]] | None, injected: list[dict[str, Any]], user_wins: bool = True
) -> list[dict[str, Any]]:
    """Merge by name, like the strategic merge of the template: a user's same-named container
    overrides the template's fields (upstream `reapplyOverwrittenContainers`)."""
    items = list(existing or ())
    for item in injected:
        index = next((i for i, old in enumerate(items) if old.get("name") == item["name"]), None)
        if index is None:
            items.append(item)
        else:
            items[index] = {**item, **items[index]} if user_wins else item
    return items


def _last(items: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Move `name` to the end (upstream `reorderPod`: proxy last, iptables init last)."""
    return [i for i in items if i.get("name") != name] + [i for i in items if i.get("name") == name]


# -- template pieces -----------------------------------------------------------------------------


def _labels(ctx: _Context) -> dict[str, str]:
    labels = {
        "security.istio.io/tlsMode": ctx.labels.get("security.istio.io/tlsMode", "istio"),
        "service.istio.io/canonical-name": _canonical_name(ctx),
        "service.istio.io/canonical-revision": _first(
            ctx.labels,
            ("service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"),
        )
        or "latest",
    }
    if ctx.revision.smm_style:
        labels[REV_LABEL] = ctx.revision.rev
    network = ctx.labels.get("topology.istio.io/network") or _network(ctx)
    if network:
        labels["topology.istio.io/network"] = network
    return labels


def _canonical_name(ctx: _Context) -> str:
    keys = ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
    name = _first(ctx.labels, keys) or ctx.workload.name
    return name[:63].strip("-_.")


def _first(labels: Mapping[str, str], keys: tuple[str, ...]) -> str:
    return next((labels[key] for key in keys if labels.get(key)), "")


def _annotations(ctx: _Context) -> dict[str, str]:
    annotations = {REV_LABEL: ctx.revision.rev}
    apps = ctx.app_containers
    if apps:
        for key in (
            "kubectl.kubernetes.io/default-logs-container",
            "kubectl.kubernetes.io/default-container",
        ):
            annotations[key] = ctx.annotations.get(key, apps[0])
    if _merges_metrics(ctx):
        annotations.update(
            {
                "prometheus.io/port": STATUS_PORT,
                "prometheus.io/path": "/stats/prometheus",
                "prometheus.io/scrape": "true",
            }
        )
    return annotations


def _merges_metrics(ctx: _Context) -> bool:
    """Istio's metrics merging takes over `prometheus.io/*` unless the pod opts out."""
    return (
        ctx.annotation("prometheus.io/scrape", "true") != "false"
        and ctx.annotation("prometheus.istio.io/merge-metrics", "true") != "false"
    )


def _status(inits: list[dict[str, Any]], volumes: list[dict[str, Any]], revision: Revision) -> str:
    """`sidecar.istio.io/status`, byte for byte as Go's json.Marshal writes it."""
    status = {
        "initContainers": [c["name"] for c in inits] or None,
        "containers": [PROXY],
        "volumes": [v["name"] for v in volumes],
        "imagePullSecrets": None,
        "revision": revision.rev,
    }
    return orjson.dumps(status).decode()


def _volumes() -> list[dict[str, Any]]:
    def field(path: str) -> dict[str, Any]:
        return {"path": path, "fieldRef": {"fieldPath": f"metadata.{path}"}}

    token = {"path": "istio-token", "expirationSeconds": 43200, "audience": "istio-ca"}
    return [
        {"name": "workload-socket", "emptyDir": {}},
        {"name": "credential-socket", "emptyDir": {}},
        {"name": "workload-certs", "emptyDir": {}},
        {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},
        {"name": "istio-data", "emptyDir": {}},
        {
            "name": "istio-podinfo",
            "downwardAPI": {"items": [field("labels"), field("annotations")]},
        },
        {"name": "istio-token", "projected": {"sources": [{"serviceAccountToken": token}]}},
        {"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}},
    ]


_MOUNTS = (
    ("workload-socket", "/var/run/secrets/workload-spiffe-uds"),
    ("credential-socket", "/var/run/secrets/credential-uds"),
    ("workload-certs", "/var/run/secrets/workload-spiffe-credentials"),
    ("istiod-ca-cert", "/var/run/secrets/istio"),
    ("istio-data", "/var/lib/istio/data"),
    ("istio-envoy", "/etc/istio/proxy"),
    ("istio-token", "/var/run/secrets/tokens"),
    ("istio-podinfo", "/etc/istio/pod"),
)


def _proxy_container(ctx: _Context) -> dict[str, Any]:
    return {
        "name": PROXY,
        "image": ctx.image,
        "ports": [{"containerPort": PROMETHEUS_PORT, "protocol": "TCP", "name": "http-envoy-prom"}],
        "args": [
            "proxy",
            "sidecar",
            "--domain",
            f"$(POD_NAMESPACE).svc.{TRUST_DOMAIN}",
            ctx.flag("--proxyLogLevel", "sidecar.istio.io/logLevel", "warning"),
            ctx.flag(
                "--proxyComponentLogLevel", "sidecar.istio.io/componentLogLevel", "misc:error"
            ),
            ctx.flag(*_AGENT_LOG_LEVEL),
        ],
        "env": _proxy_env(ctx),
        "imagePullPolicy": _pull_policy(ctx.image),
        "readinessProbe": {
            "httpGet": {"path": "/healthz/ready", "port": HEALTH_PORT},
            "initialDelaySeconds": 1,
            "periodSeconds": 2,
            "timeoutSeconds": 3,
            "failureThreshold": 30,
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsGroup": int(PROXY_UID),
            "runAsNonRoot": True,
            "runAsUser": int(PROXY_UID),
        },
        "resources": _resources(ctx),
        "volumeMounts": [{"name": name, "mountPath": path} for name, path in _MOUNTS],
    }


_DOWNWARD_ENV = (
    ("POD_NAME", "metadata.name"),
    ("POD_NAMESPACE", "metadata.namespace"),
    ("INSTANCE_IP", "status.podIP"),
    ("SERVICE_ACCOUNT", "spec.serviceAccountName"),
    ("HOST_IP", "status.hostIP"),
)


def _proxy_env(ctx: _Context) -> list[dict[str, Any]]:
    """The sidecar's env in the template's order; path overrides not in it come last, sorted."""
    revision, workload = ctx.revision, ctx.workload
    env = [
        *_env("JWT_POLICY", "third-party-jwt"),
        *_env("PILOT_CERT_PROVIDER", "istiod"),
        *_env("CA_ADDR", revision.discovery_address),
        *(_field_env(name, path) for name, path in _DOWNWARD_ENV),
        *_env("PROXY_CONFIG", _proxy_config(revision)),
        *_env("ISTIO_META_POD_PORTS", _pod_ports(ctx.containers)),
        *_env("ISTIO_META_APP_CONTAINERS", ",".join(ctx.app_containers)),
        *_env("ISTIO_META_CLUSTER_ID", ctx.env.get("ISTIO_META_CLUSTER_ID") or revision.cluster_id),
        _field_env("ISTIO_META_NODE_NAME", "spec.nodeName"),
        *_env("ISTIO_META_INTERCEPTION_MODE", ctx.interception_mode),
        *_env("ISTIO_META_NETWORK", _network(ctx)),
        *_env("ISTIO_META_WORKLOAD_NAME", ctx.labels.get(WORKLOAD_LABEL) or workload.name),
        *_env("ISTIO_META_OWNER", workload.owner_uri(ctx.namespace) if workload.name else ""),
        *_env("ISTIO_META_MESH_ID", TRUST_DOMAIN),
        *_env("TRUST_DOMAIN", TRUST_DOMAIN),
        *_env("ISTIO_PROMETHEUS_ANNOTATIONS", _scrape_config(ctx)),
    ]
    used = {e["name"] for e in env}
    return env + [e for k, v in sorted(ctx.env.items()) if k not in used for e in _env(k, v)]


def _env(name: str, value: str) -> list[dict[str, Any]]:
    """One plain variable, or none when the template would leave it out (empty)."""
    return [{"name": name, "value": value}] if value else []


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _network(ctx: _Context) -> str:
    return ctx.env.get("ISTIO_META_NETWORK") or ctx.revision.network


def _proxy_config(revision: Revision) -> str:
    return orjson.dumps({"discoveryAddress": revision.discovery_address}).decode() + "\n"


def _pod_ports(containers: tuple[Mapping[str, Any], ...]) -> str:
    """`ISTIO_META_POD_PORTS` as the template renders it: Go field order, one port per line."""
    order = ("name", "hostPort", "containerPort", "protocol", "hostIP")
    ports = [
        orjson.dumps({k: port[k] for k in order if port.get(k) or k == "containerPort"}).decode()
        for container in containers
        for port in container.get("ports") or ()
    ]
    lines = [f"    {',' if i else ''}{port}" for i, port in enumerate(ports)]
    return "\n".join(["[", *lines, "]"])


def _scrape_config(ctx: _Context) -> str:
    """The app's own scrape settings, handed to the agent when Istio takes over the annotations."""
    own = {
        key.rpartition("/")[2]: ctx.annotations[key]
        for key in _PROMETHEUS
        if key in ctx.annotations
    }
    if not own or not _merges_metrics(ctx):
        return ""
    return orjson.dumps(own).decode()


def _resources(ctx: _Context) -> dict[str, Any]:
    """`sidecar.istio.io/proxyCPU` & co. replace the defaults wholesale, as in the template."""
    wanted = {
        ("requests", "cpu"): "sidecar.istio.io/proxyCPU",
        ("requests", "memory"): "sidecar.istio.io/proxyMemory",
        ("limits", "cpu"): "sidecar.istio.io/proxyCPULimit",
        ("limits", "memory"): "sidecar.istio.io/proxyMemoryLimit",
    }
    resources: dict[str, dict[str, str]] = {}
    for (section, resource), key in wanted.items():
        if key in ctx.annotations:
            resources.setdefault(section, {})[resource] = str(ctx.annotations[key])
    return resources or orjson.loads(orjson.dumps(_DEFAULT_RESOURCES))


def _init_container(ctx: _Context) -> dict[str, Any]:
    def traffic(name: str, default: str) -> str:
        return ctx.annotation(f"traffic.sidecar.istio.io/{name}", default)

    excluded = _exclude_inbound(STATUS_PORT, traffic("excludeInboundPorts", ""))
    args = [
        "istio-iptables",
        *("-p", "15001", "-z", "15006", "-u", PROXY_UID),
        *("-m", ctx.interception_mode),
        *("-i", traffic("includeOutboundIPRanges", "*")),
        *("-x", traffic("excludeOutboundIPRanges", "")),
        *("-b", traffic("includeInboundPorts", "*")),
        *("-d", f"{PROMETHEUS_PORT},{HEALTH_PORT},{excluded}"),
    ]
    if "traffic.sidecar.istio.io/excludeOutboundPorts" in ctx.annotations:
        args += ["-o", traffic("excludeOutboundPorts", "")]
    args.append(ctx.flag(*_AGENT_LOG_LEVEL))
    return {
        "name": INIT,
        "image": ctx.image,
        "args": args,
        "imagePullPolicy": _pull_policy(ctx.image),
        "resources": _resources(ctx),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": False,
            "runAsGroup": 0,
            "runAsNonRoot": False,
            "runAsUser": 0,
        },
    }


def _exclude_inbound(port: str, excluded: str) -> str:
    """Upstream `excludeInboundPort`: the status port is always excluded from capture."""
    ports = [p.strip() for p in excluded.split(",") if p.strip()]
    return excluded if port in ports else ",".join([*ports, port])


def _pull_policy(image: str) -> str:
    """What the API server would default: Always for `:latest`, else IfNotPresent."""
    return "Always" if parse_image(image).tag == "latest" else "IfNotPresent"


# -- JSONPatch -----------------------------------------------------------------------------------


def json_patch(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """RFC 6902 operations turning `before` into `after` (lists: append, else replace whole)."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        ops = [{"op": "remove", "path": _pointer(path, k)} for k in before if k not in after]
        for key, value in after.items():
            if key in before:
                ops += json_patch(before[key], value, _pointer(path, key))
            else:
                ops.append({"op": "add", "path": _pointer(path, key), "value": value})
        return ops
    if isinstance(before, list) and isinstance(after, list) and after[: len(before)] == before:
        return [
            {"op": "add", "path": _pointer(path, str(i)), "value": after[i]}
            for i in range(len(before), len(after))
        ]
    return [{"op": "replace", "path": path, "value": after}]


def _pointer(path: str, key: str) -> str:
    return f"{path}/{key.replace('~', '~0').replace('/', '~1')}"

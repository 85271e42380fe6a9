"""Server-side defaulting of built-in kinds, as kube-apiserver 1.33 does it.

Why: clients read back what they wrote and act on the fields the server filled in. `kubectl
apply`'s three-way diff runs against the live object, `kubectl rollout status` reads
`spec.replicas` and `progressDeadlineSeconds`, and controllers (kopf operators, Istio's installer)
compare the spec they rendered with the one they read. A server that stores objects verbatim makes
every one of them see drift that a real cluster never shows.

What: the `SetDefaults_*` functions of k8s.io/kubernetes/pkg/apis/*/v1/defaults.go and the
declarative defaults of zz_generated.defaults.go, plus the registry, conversion and admission steps
that are pure functions of the object: Job selector generation (needs metadata.uid), Namespace
finalizers, Secret `stringData` folding, Pod priority, service account and not-ready/unreachable
tolerations. Stateful steps (ClusterIP and nodePort allocation, uids, service-account token
volumes, status) are the caller's. As upstream, the Pod-only defaults (enableServiceLinks,
priority, requests from limits, ...) never appear in pod templates, and Job templates get no
restartPolicy (validation.py then answers what a real server answers for one left unset).

Go tells "unset" (nil pointer, or zero value for non-pointer fields) from "set"; `_fill` follows
pointer semantics (absent or null) and `_fill_zero` value semantics ("" and 0 count as unset), so
an explicit `replicas: 0` survives while `restartPolicy: ""` is defaulted. Defaulting is
idempotent: defaulting a defaulted object changes nothing.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterator
from typing import Any, Final

__all__ = ["JOB_TEMPLATE_KINDS", "POD_TEMPLATE_PATHS", "apply_defaults", "pod_template"]

Obj = dict[str, Any]

# Where each kind keeps its pod template (a PodTemplateSpec: metadata + spec).
POD_TEMPLATE_PATHS: Final[dict[str, tuple[str, ...]]] = {
    "PodTemplate": ("template",),
    "ReplicationController": ("spec", "template"),
    "Deployment": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
# Job pod templates must say Never or OnFailure themselves, so restartPolicy is not defaulted.
JOB_TEMPLATE_KINDS: Final = frozenset({"Job", "CronJob"})

_SYSTEM_PRIORITIES: Final = {
    "system-cluster-critical": 2000000000,
    "system-node-critical": 2000001000,
}
_PROBES: Final = ("livenessProbe", "readinessProbe", "startupProbe")
_PROBE_DEFAULTS: Final[Obj] = {
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}
_DEFAULT_MODE: Final = 420  # 0644
_UNREACHABLE_TAINTS: Final = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
_RBAC_GROUP: Final = "rbac.authorization.k8s.io"
_SCALE_UP: Final[Obj] = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
_SCALE_DOWN: Final[Obj] = {
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


# --- helpers --------------------------------------------------------------------------------------


def _fill(d: Obj, defaults: Obj) -> None:
    """Pointer semantics: set each key that is absent or null."""
    for key, value in defaults.items():
        if d.get(key) is None:
            d[key] = copy.deepcopy(value)


def _is_zero(value: Any) -> bool:
    return value is None or value == "" or (type(value) is int and value == 0)


def _fill_zero(d: Obj, defaults: Obj) -> None:
    """Value semantics: Go's zero value ("" or 0) counts as unset too."""
    for key, value in defaults.items():
        if _is_zero(d.get(key)):
            d[key] = copy.deepcopy(value)


def _child(d: Obj, key: str) -> Obj:
    """d[key] as a dict, created when absent; a wrongly typed value is left alone (detached)."""
    value = d.get(key)
    if value is None:
        value = d[key] = {}
    return value if isinstance(value, dict) else {}


def _dig(d: Any, *path: str) -> Obj | None:
    """The dict at `path`, or None; never creates anything."""
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None
    return d if isinstance(d, dict) else None


def _items(d: Any, key: str) -> list[Obj]:
    """The dict entries of the list d[key] (none when absent or mistyped)."""
    value = d.get(key) if isinstance(d, dict) else None
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def pod_template(obj: Obj, kind: str, *, create: bool = False) -> Obj | None:
    """The pod template (PodTemplateSpec) of a workload kind, or None for other kinds."""
    path = POD_TEMPLATE_PATHS.get(kind)
    if path is None:
        return None
    if not create:
        return _dig(obj, *path)
    for key in path:
        obj = _child(obj, key)
    return obj


# --- pod specs ------------------------------------------------------------------------------------


def _pull_policy(image: Any) -> str:
    """Always for `:latest` or an untagged, undigested image; IfNotPresent otherwise."""
    if not isinstance(image, str) or not image.strip():
        return "IfNotPresent"
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] or ("" if digest else "latest")
    return "Always" if tag == "latest" else "IfNotPresent"


def _containers(spec: Obj) -> Iterator[Obj]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from _items(spec, key)


def _default_handler(handler: Obj | None) -> None:
    if handler is None:
        return
    http_get = _dig(handler, "httpGet")
    if http_get is not None:
        _fill_zero(http_get, {"path": "/", "scheme": "HTTP"})
    grpc = _dig(handler, "grpc")
    if grpc is not None:
        _fill(grpc, {"service": ""})


def _default_container(c: Obj) -> None:
    _fill_zero(
        c,
        {
            "imagePullPolicy": _pull_policy(c.get("image")),
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        },
    )
    _fill(c, {"resources": {}})
    for port in _items(c, "ports"):
        _fill_zero(port, {"protocol": "TCP"})
    for key in _PROBES:
        probe = _dig(c, key)
        if probe is not None:
            _fill_zero(probe, _PROBE_DEFAULTS)
            _default_handler(probe)
    for hook in ("postStart", "preStop"):
        _default_handler(_dig(c, "lifecycle", hook))
    for env in _items(c, "env"):
        _default_field_ref(_dig(env, "valueFrom", "fieldRef"))


def _default_field_ref(ref: Obj | None) -> None:
    if ref is not None:
        _fill_zero(ref, {"apiVersion": "v1"})


def _default_volume(vol: Obj) -> None:
    if all(value is None for key, value in vol.items() if key != "name"):
        vol["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        source = _dig(vol, key)
        if source is not None:
            _fill(source, {"defaultMode": _DEFAULT_MODE})
    host_path = _dig(vol, "hostPath")
    if host_path is not None:
        _fill(host_path, {"type": ""})
    for item in _items(_dig(vol, "downwardAPI"), "items"):
        _default_field_ref(_dig(item, "fieldRef"))
    for source in _items(_dig(vol, "projected"), "sources"):
        for item in _items(_dig(source, "downwardAPI"), "items"):
            _default_field_ref(_dig(item, "fieldRef"))
        token = _dig(source, "serviceAccountToken")
        if token is not None:
            _fill(token, {"expirationSeconds": 3600})
    claim_spec = _dig(vol, "ephemeral", "volumeClaimTemplate", "spec")
    if claim_spec is not None:
        _fill(claim_spec, {"volumeMode": "Filesystem"})


def _default_pod_spec(spec: Obj, *, restart_policy: bool = True) -> None:
    """SetDefaults_PodSpec and everything the generated defaulters reach inside a pod spec."""
    _fill_zero(spec, {"dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler"})
    if restart_policy:
        _fill_zero(spec, {"restartPolicy": "Always"})
    _fill(spec, {"securityContext": {}, "terminationGracePeriodSeconds": 30})
    # v1 conversion keeps the deprecated serviceAccount and serviceAccountName in step.
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if account:
        _fill_zero(spec, {"serviceAccountName": account, "serviceAccount": account})
    for container in _containers(spec):
        _default_container(container)
    for vol in _items(spec, "volumes"):
        _default_volume(vol)


def _default_pod(obj: Obj) -> None:
    """SetDefaults_Pod plus the Priority, ServiceAccount and DefaultTolerationSeconds admission."""
    spec = _child(obj, "spec")
    _default_pod_spec(spec)
    _fill(spec, {"enableServiceLinks": True})
    for container in [*_items(spec, "containers"), *_items(spec, "initContainers")]:
        resources = _child(container, "resources")
        limits = _dig(resources, "limits")
        if limits is not None:
            requests = _child(resources, "requests")
            for name, quantity in limits.items():
                requests.setdefault(name, quantity)
        if spec.get("hostNetwork") is True:
            for port in _items(container, "ports"):
                if port.get("containerPort") is not None:
                    _fill_zero(port, {"hostPort": port["containerPort"]})
    account = spec.get("serviceAccountName") or "default"
    _fill_zero(spec, {"serviceAccountName": account, "serviceAccount": account})
    priority_class = spec.get("priorityClassName") or ""
    if not priority_class or priority_class in _SYSTEM_PRIORITIES:
        _fill(spec, {"priority": _SYSTEM_PRIORITIES.get(priority_class, 0)})
    _fill(spec, {"preemptionPolicy": "PreemptLowerPriority"})
    _default_tolerations(spec)


def _default_tolerations(spec: Obj) -> None:
    """Tolerate not-ready/unreachable nodes for 300s unless the pod already tolerates them."""
    current = spec.get("tolerations")
    if current is not None and not isinstance(current, list):
        return
    existing = _items(spec, "tolerations")
    added = [
        {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        for key in _UNREACHABLE_TAINTS
        if not any(
            t.get("key") in ("", None, key) and t.get("effect") in ("", None, "NoExecute")
            for t in existing
        )
    ]
    if added:
        spec["tolerations"] = [*(current or []), *added]


# --- workloads ------------------------------------------------------------------------------------


def _rolling(strategy: Obj, rolling_type: str, defaults: Obj) -> None:
    """Default `strategy.type` and, for rolling updates, `strategy.rollingUpdate`."""
    _fill_zero(strategy, {"type": rolling_type})
    if strategy["type"] == rolling_type:
        _fill(_child(strategy, "rollingUpdate"), defaults)


def _default_deployment(obj: Obj) -> None:
    spec = _child(obj, "spec")
    _fill(spec, {"replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600})
    rolling = {"maxUnavailable": "25%", "maxSurge": "25%"}
    _rolling(_child(spec, "strategy"), "RollingUpdate", rolling)


def _default_replica_set(obj: Obj) -> None:
    _fill(_child(obj, "spec"), {"replicas": 1})


def _default_daemon_set(obj: Obj) -> None:
    spec = _child(obj, "spec")
    _fill(spec, {"revisionHistoryLimit": 10})
    _rolling(_child(spec, "updateStrategy"), "RollingUpdate", {"maxUnavailable": 1, "maxSurge": 0})


def _default_stateful_set(obj: Obj) -> None:
    spec = _child(obj, "spec")
    _fill_zero(spec, {"podManagementPolicy": "OrderedReady"})
    _fill(spec, {"replicas": 1, "revisionHistoryLimit": 10})
    strategy = _child(spec, "updateStrategy")
    if _is_zero(strategy.get("type")):
        strategy["type"] = "RollingUpdate"
        _child(strategy, "rollingUpdate")
    rolling = _dig(strategy, "rollingUpdate")
    if strategy["type"] == "RollingUpdate" and rolling is not None:
        _fill(rolling, {"partition": 0})
    retention = _child(spec, "persistentVolumeClaimRetentionPolicy")
    _fill_zero(retention, {"whenDeleted": "Retain", "whenScaled": "Retain"})
    for claim in _items(spec, "volumeClaimTemplates"):
        _fill(_child(claim, "spec"), {"volumeMode": "Filesystem"})
        _fill_zero(_child(claim, "status"), {"phase": "Pending"})


def _default_replication_controller(obj: Obj) -> None:
    spec = _child(obj, "spec")
    _fill(spec, {"replicas": 1})
    labels = _dig(spec, "template", "metadata", "labels")
    if labels is not None:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = _child(obj, "metadata")
        if not meta.get("labels"):
            meta["labels"] = dict(labels)


def _default_job(obj: Obj) -> None:
    spec = _child(obj, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    _fill(spec, {"parallelism": 1})
    backoff = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    _fill(spec, {"backoffLimit": backoff, "completionMode": "NonIndexed", "suspend": False})
    failure_policy = _dig(spec, "podFailurePolicy")
    for rule in _items(failure_policy, "rules"):
        for condition in _items(rule, "onPodConditions"):
            _fill_zero(condition, {"status": "True"})
    replacement = "Failed" if failure_policy is not None else "TerminatingOrFailed"
    _fill(spec, {"podReplacementPolicy": replacement})
    meta = _child(obj, "metadata")
    if meta.get("uid") and spec.get("manualSelector") is not True:
        _generate_job_selector(spec, meta)
    template_labels = _dig(spec, "template", "metadata", "labels")
    if template_labels is not None and not meta.get("labels"):
        meta["labels"] = dict(template_labels)


def _generate_job_selector(spec: Obj, meta: Obj) -> None:
    """The Job registry's generateSelector: pods are tied to this Job by its uid."""
    uid, name = str(meta["uid"]), str(meta.get("name") or "")
    labels = _child(_child(_child(spec, "template"), "metadata"), "labels")
    for key, value in (
        ("batch.kubernetes.io/controller-uid", uid),
        ("batch.kubernetes.io/job-name", name),
        ("controller-uid", uid),
        ("job-name", name),
    ):
        labels.setdefault(key, value)
    match_labels = _child(_child(spec, "selector"), "matchLabels")
    match_labels.setdefault("batch.kubernetes.io/controller-uid", uid)


def _default_cron_job(obj: Obj) -> None:
    spec = _child(obj, "spec")
    _fill_zero(spec, {"concurrencyPolicy": "Allow"})
    _fill(spec, {"suspend": False, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1})


# --- core kinds -----------------------------------------------------------------------------------


def _default_service(obj: Obj) -> None:
    spec = _child(obj, "spec")
    _fill_zero(spec, {"type": "ClusterIP", "sessionAffinity": "None"})
    service_type = spec["type"]
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        _fill(_child(_child(spec, "sessionAffinityConfig"), "clientIP"), {"timeoutSeconds": 10800})
    for port in _items(spec, "ports"):
        _fill_zero(port, {"protocol": "TCP"})
        if _is_zero(port.get("targetPort")) and port.get("port") is not None:
            port["targetPort"] = port["port"]
    externally_accessible = service_type in ("LoadBalancer", "NodePort") or (
        service_type == "ClusterIP" and bool(spec.get("externalIPs"))
    )
    if externally_accessible:
        _fill_zero(spec, {"externalTrafficPolicy": "Cluster"})
    if service_type in ("ClusterIP", "NodePort", "LoadBalancer"):
        _fill(spec, {"internalTrafficPolicy": "Cluster"})
    if service_type == "LoadBalancer":
        _fill(spec, {"allocateLoadBalancerNodePorts": True})
        for ingress in _items(_dig(obj, "status", "loadBalancer"), "ingress"):
            if ingress.get("ip"):
                _fill(ingress, {"ipMode": "VIP"})
    if service_type != "ExternalName":
        _default_cluster_ips(spec)
    _child(_child(obj, "status"), "loadBalancer")


def _default_cluster_ips(spec: Obj) -> None:
    """Mirror clusterIP/clusterIPs and pick IP families (the allocation itself is the caller's)."""
    if spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    elif spec.get("clusterIPs") and not spec.get("clusterIP"):
        spec["clusterIP"] = spec["clusterIPs"][0]
    headless_without_selector = spec.get("clusterIP") == "None" and not spec.get("selector")
    policy = "RequireDualStack" if headless_without_selector else "SingleStack"
    _fill(spec, {"ipFamilyPolicy": policy})
    if not spec.get("ipFamilies"):
        ips = [ip for ip in spec.get("clusterIPs") or [] if isinstance(ip, str) and ip != "None"]
        first = "IPv6" if ips and ":" in ips[0] else "IPv4"
        families = [first]
        if headless_without_selector and spec["ipFamilyPolicy"] != "SingleStack":
            families.append("IPv4" if first == "IPv6" else "IPv6")
        spec["ipFamilies"] = families


def _default_namespace(obj: Obj) -> None:
    meta = _child(obj, "metadata")
    if meta.get("name"):
        _child(meta, "labels")["kubernetes.io/metadata.name"] = meta["name"]
    _fill(_child(obj, "spec"), {"finalizers": ["kubernetes"]})
    _fill_zero(_child(obj, "status"), {"phase": "Active"})


def _default_secret(obj: Obj) -> None:
    _fill_zero(obj, {"type": "Opaque"})
    # v1 conversion folds the write-only stringData into data; readers only ever see data.
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = _child(obj, "data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


# --- other groups ---------------------------------------------------------------------------------


def _scaling_rules(user: Any, default: Obj) -> Obj:
    rules = copy.deepcopy(default)
    for key in ("selectPolicy", "stabilizationWindowSeconds", "policies", "tolerance"):
        if isinstance(user, dict) and user.get(key) is not None:
            rules[key] = user[key]
    return rules


def _default_hpa_v2(obj: Obj) -> None:
    spec = _child(obj, "spec")
    _fill(spec, {"minReplicas": 1})
    if not spec.get("metrics"):
        target = {"type": "Utilization", "averageUtilization": 80}
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": target}}]
    behavior = _dig(spec, "behavior")
    if behavior is not None:
        behavior["scaleUp"] = _scaling_rules(behavior.get("scaleUp"), _SCALE_UP)
        behavior["scaleDown"] = _scaling_rules(behavior.get("scaleDown"), _SCALE_DOWN)


def _default_hpa_v1(obj: Obj) -> None:
    _fill(_child(obj, "spec"), {"minReplicas": 1})


def _default_webhooks(obj: Obj, *, mutating: bool) -> None:
    for hook in _items(obj, "webhooks"):
        _fill(
            hook,
            {
                "failurePolicy": "Fail",
                "matchPolicy": "Equivalent",
                "namespaceSelector": {},
                "objectSelector": {},
                "timeoutSeconds": 10,
            },
        )
        if mutating:
            _fill(hook, {"reinvocationPolicy": "Never"})
        for rule in _items(hook, "rules"):
            _fill(rule, {"scope": "*"})
        service = _dig(hook, "clientConfig", "service")
        if service is not None:
            _fill(service, {"port": 443})


def _default_binding(obj: Obj) -> None:
    _fill_zero(_child(obj, "roleRef"), {"apiGroup": _RBAC_GROUP})
    for subject in _items(obj, "subjects"):
        if subject.get("kind") in ("User", "Group"):
            _fill_zero(subject, {"apiGroup": _RBAC_GROUP})


def _default_crd(obj: Obj) -> None:
    spec = _child(obj, "spec")
    names = _child(spec, "names")
    kind = names.get("kind") or ""
    if isinstance(kind, str):
        _fill_zero(names, {"singular": kind.lower()})
        if kind:
            _fill_zero(names, {"listKind": kind + "List"})
    _fill(spec, {"conversion": {"strategy": "None"}})
    service = _dig(spec, "conversion", "webhook", "clientConfig", "service")
    if service is not None:
        _fill(service, {"port": 443})
    status = _child(obj, "status")
    if not status.get("storedVersions"):
        stored = [v["name"] for v in _items(spec, "versions") if v.get("storage") and "name" in v]
        if stored:
            status["storedVersions"] = stored[:1]


def _nothing(obj: Obj) -> None:
    """Kinds whose only defaults live in their pod template."""


_ADMISSION: Final = "admissionregistration.k8s.io/v1"
_DEFAULTERS: Final[dict[tuple[str, str], Callable[[Obj], None]]] = {
    ("v1", "Pod"): _default_pod,
    ("v1", "PodTemplate"): _nothing,
    ("v1", "ReplicationController"): _default_replication_controller,
    ("v1", "Service"): _default_service,
    ("v1", "Namespace"): _default_namespace,
    ("v1", "Secret"): _default_secret,
    ("apps/v1", "Deployment"): _default_deployment,
    ("apps/v1", "ReplicaSet"): _default_replica_set,
    ("apps/v1", "StatefulSet"): _default_stateful_set,
    ("apps/v1", "DaemonSet"): _default_daemon_set,
    ("batch/v1", "Job"): _default_job,
    ("batch/v1", "CronJob"): _default_cron_job,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): _default_hpa_v2,
    ("autoscaling/v1", "HorizontalPodAutoscaler"): _default_hpa_v1,
    (_ADMISSION, "MutatingWebhookConfiguration"): lambda o: _default_webhooks(o, mutating=True),
    (_ADMISSION, "ValidatingWebhookConfiguration"): lambda o: _default_webhooks(o, mutating=False),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): _default_binding,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): _default_binding,
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): _default_crd,
}


def apply_defaults(obj: dict[str, Any], api_version: str, kind: str) -> None:
    """Default `obj` (a built-in `kind` at `api_version`) in place, as kube-apiserver 1.33 would.

    Kinds this module does not know are left untouched. For Jobs the selector and pod labels are
    generated only once `metadata.uid` is set, so call this after the uid is assigned.
    """
    defaulter = _DEFAULTERS.get((api_version, kind))
    if defaulter is None:
        return
    defaulter(obj)
    if kind != "Pod" and kind in POD_TEMPLATE_PATHS:
        template = pod_template(obj, kind, create=True)
        assert template is not None
        _default_pod_spec(_child(template, "spec"), restart_policy=kind not in JOB_TEMPLATE_KINDS)

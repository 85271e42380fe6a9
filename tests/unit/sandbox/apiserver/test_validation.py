"""Built-in objects are rejected for what kube-apiserver 1.33 rejects, in its words and paths."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshcanary.sandbox.apiserver.defaults import apply_defaults
from meshcanary.sandbox.apiserver.validation import validate_builtin

Obj = dict[str, Any]
Cause = tuple[str, str]

LABEL_RULE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
POD_UPDATE = (
    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set "
    "to 1 if it was previously negative)"
)


def causes(obj: Obj, old: Obj | None = None) -> list[Cause]:
    """Validate as the server does: both objects defaulted first."""
    new = copy.deepcopy(obj)
    apply_defaults(new, new["apiVersion"], new["kind"])
    if old is not None:
        old = copy.deepcopy(old)
        apply_defaults(old, old["apiVersion"], old["kind"])
    return validate_builtin(new, new["apiVersion"], new["kind"], old)


def changed(obj: Obj, edit: Callable[[Obj], object]) -> Obj:
    out = copy.deepcopy(obj)
    edit(out)
    return out


def container(name: str = "app", image: str = "nginx:1.27", **extra: Any) -> Obj:
    return {"name": name, "image": image, **extra}


# --- pods -----------------------------------------------------------------------------------------

POD: Obj = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p"},
    "spec": {
        "containers": [
            container(
                ports=[{"name": "http", "containerPort": 8080}],
                volumeMounts=[{"name": "data", "mountPath": "/data"}],
            )
        ],
        "initContainers": [container("init")],
        "volumes": [{"name": "data"}],
    },
}


def pod_with(**spec: Any) -> Obj:
    return changed(POD, lambda pod: pod["spec"].update(spec))


def test_valid_pod() -> None:
    assert causes(POD) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"containers": []}, [("spec.containers", "Required value")]),
        ({"containers": [{"image": "nginx"}]}, [("spec.containers[0].name", "Required value")]),
        (
            {"containers": [container("Web_1")]},
            [("spec.containers[0].name", f'Invalid value: "Web_1": {LABEL_RULE}')],
        ),
        ({"containers": [{"name": "app"}]}, [("spec.containers[0].image", "Required value")]),
        (
            {"containers": [container()], "initContainers": [container()]},
            [("spec.initContainers[0].name", 'Duplicate value: "app"')],
        ),
        (
            {"containers": [container(), container()], "initContainers": []},
            [("spec.containers[1].name", 'Duplicate value: "app"')],
        ),
        (
            {"restartPolicy": "Sometimes"},
            [
                (
                    "spec.restartPolicy",
                    'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", '
                    '"Never"',
                )
            ],
        ),
        (
            {"containers": [container(ports=[{"containerPort": 70000, "protocol": "HTTP"}])]},
            [
                (
                    "spec.containers[0].ports[0].containerPort",
                    "Invalid value: 70000: must be between 1 and 65535, inclusive",
                ),
                (
                    "spec.containers[0].ports[0].protocol",
                    'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
                ),
            ],
        ),
        (
            {"containers": [container(volumeMounts=[{"name": "nope", "mountPath": "/x"}])]},
            [("spec.containers[0].volumeMounts[0].name", 'Not found: "nope"')],
        ),
    ],
)
def test_invalid_pod(spec: Obj, expected: list[Cause]) -> None:
    assert causes(pod_with(**spec)) == expected


def test_pod_update_may_change_images_deadline_and_add_tolerations() -> None:
    def edit(pod: Obj) -> None:
        pod["spec"]["containers"][0]["image"] = "nginx:1.28"
        pod["spec"]["initContainers"][0]["image"] = "busybox:1.36"
        pod["spec"]["activeDeadlineSeconds"] = 60
        pod["spec"]["tolerations"] = [{"key": "gpu", "operator": "Exists"}]

    assert causes(changed(POD, edit), old=POD) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda pod: pod["spec"]["containers"][0].update(command=["sh"]),
            [("spec", POD_UPDATE)],
        ),
        (
            lambda pod: pod["spec"].update(restartPolicy="Never"),
            [("spec", POD_UPDATE)],
        ),
        (
            lambda pod: pod["spec"]["containers"].append(container("extra")),
            [("spec.containers", "Forbidden: pod updates may not add or remove containers")],
        ),
    ],
)
def test_pod_update_of_anything_else_is_forbidden(
    edit: Callable[[Obj], object], expected: list[Cause]
) -> None:
    assert causes(changed(POD, edit), old=POD) == expected


def test_pod_update_may_not_modify_existing_tolerations() -> None:
    old = pod_with(tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}])
    new = changed(old, lambda pod: pod["spec"]["tolerations"][0].update(effect="NoExecute"))
    assert causes(new, old=old) == [
        (
            "spec.tolerations",
            "Forbidden: existing toleration can not be modified except its tolerationSeconds",
        )
    ]


# --- workloads ------------------------------------------------------------------------------------

SELECTOR = {"matchLabels": {"app": "web"}}
TEMPLATE: Obj = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container()]}}


def workload(kind: str, **spec: Any) -> Obj:
    base = {"selector": SELECTOR, "template": copy.deepcopy(TEMPLATE)}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "w"}, "spec": base | spec}


APPS_KINDS = ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"]
MISMATCH = (
    "spec.template.metadata.labels",
    'Invalid value: map[string]string{"app":"db"}: `selector` does not match template `labels`',
)


@pytest.mark.parametrize("kind", APPS_KINDS)
def test_valid_workloads(kind: str) -> None:
    assert causes(workload(kind)) == []


@pytest.mark.parametrize("kind", APPS_KINDS)
def test_template_labels_must_match_the_selector(kind: str) -> None:
    template = {**TEMPLATE, "metadata": {"labels": {"app": "db"}}}
    assert causes(workload(kind, template=template)) == [MISMATCH]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "StatefulSet"])
def test_selector_is_required(kind: str) -> None:
    obj = workload(kind)
    del obj["spec"]["selector"]
    assert causes(obj) == [("spec.selector", "Required value")]


def test_daemon_set_without_selector_selects_nothing() -> None:
    obj = workload("DaemonSet")
    del obj["spec"]["selector"]
    mismatch = (
        'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`'
    )
    assert causes(obj) == [("spec.template.metadata.labels", mismatch)]


@pytest.mark.parametrize(
    ("kind", "noun"),
    [
        ("Deployment", "deployment"),
        ("ReplicaSet", "deployment"),
        ("StatefulSet", "statefulset"),
        ("DaemonSet", "daemonset"),
    ],
)
def test_empty_selector_is_invalid(kind: str, noun: str) -> None:
    shown = (
        "v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
    )
    assert causes(workload(kind, selector={})) == [
        ("spec.selector", f"Invalid value: {shown}: empty selector is invalid for {noun}")
    ]


def test_selector_expressions_are_checked_and_matched() -> None:
    expression = {"key": "app", "operator": "In", "values": ["web", "api"]}
    assert causes(workload("Deployment", selector={"matchExpressions": [expression]})) == []
    bad = {"key": "app", "operator": "Near", "values": ["web"]}
    assert causes(workload("Deployment", selector={"matchExpressions": [bad]})) == [
        (
            "spec.selector.matchExpressions[0].operator",
            'Invalid value: "Near": not a valid selector operator',
        ),
        (
            "spec.selector",
            "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
            'MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"app", '
            'Operator:"Near", Values:[]string{"web"}}}}: invalid label selector',
        ),
    ]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "StatefulSet"])
def test_replicas_may_not_be_negative(kind: str) -> None:
    assert causes(workload(kind, replicas=3)) == []
    assert causes(workload(kind, replicas=-1)) == [
        ("spec.replicas", "Invalid value: -1: must be greater than or equal to 0")
    ]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "DaemonSet"])
def test_pod_templates_are_validated_like_pods(kind: str) -> None:
    template = {**TEMPLATE, "spec": {"containers": [{"name": "app"}]}}
    assert causes(workload(kind, template=template)) == [
        ("spec.template.spec.containers[0].image", "Required value")
    ]


def test_stateful_set_templates_are_not_validated_as_pod_specs() -> None:
    # Upstream skips it (a TODO in ValidatePodTemplateSpecForStatefulSet); so do we.
    template = {**TEMPLATE, "spec": {"containers": []}}
    assert causes(workload("StatefulSet", template=template)) == []


@pytest.mark.parametrize(
    ("kind", "owner"),
    [("Deployment", "ReplicaSet"), ("StatefulSet", "StatefulSet"), ("DaemonSet", "DaemonSet")],
)
def test_workload_pods_must_restart_always_and_have_no_deadline(kind: str, owner: str) -> None:
    spec = {**TEMPLATE["spec"], "restartPolicy": "Never", "activeDeadlineSeconds": 5}
    assert causes(workload(kind, template={**TEMPLATE, "spec": spec})) == [
        (
            "spec.template.spec.restartPolicy",
            'Unsupported value: "Never": supported values: "Always"',
        ),
        (
            "spec.template.spec.activeDeadlineSeconds",
            f"Forbidden: activeDeadlineSeconds in {owner} is not Supported",
        ),
    ]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "DaemonSet"])
def test_selector_is_immutable(kind: str) -> None:
    old = workload(kind)
    same = changed(old, lambda obj: obj["spec"]["template"]["spec"].update(hostname="x"))
    assert causes(same, old=old) == []
    labels = {"app": "web", "tier": "front"}
    new = workload(
        kind,
        selector={"matchLabels": labels},
        template={**TEMPLATE, "metadata": {"labels": labels}},
    )
    shown = (
        'v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "tier":"front"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
    )
    assert causes(new, old=old) == [
        ("spec.selector", f"Invalid value: {shown}: field is immutable")
    ]


def test_deployment_strategy() -> None:
    assert causes(workload("Deployment", strategy={"type": "Recreate"})) == []
    assert causes(
        workload("Deployment", strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})
    ) == [
        (
            "spec.strategy.rollingUpdate",
            "Forbidden: may not be specified when strategy `type` is 'Recreate'",
        )
    ]
    assert causes(workload("Deployment", strategy={"type": "BlueGreen"})) == [
        (
            "spec.strategy",
            'Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", '
            "RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: "
            'supported values: "Recreate", "RollingUpdate"',
        )
    ]


def test_deployment_rolling_update_bounds() -> None:
    rolling = {"maxUnavailable": 0, "maxSurge": "0%"}
    assert causes(
        workload("Deployment", strategy={"type": "RollingUpdate", "rollingUpdate": rolling})
    ) == [
        (
            "spec.strategy.rollingUpdate.maxUnavailable",
            'Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: '
            "may not be 0 when `maxSurge` is 0",
        )
    ]
    rolling = {"maxUnavailable": "150%", "maxSurge": "lots"}
    assert causes(
        workload("Deployment", strategy={"type": "RollingUpdate", "rollingUpdate": rolling})
    ) == [
        (
            "spec.strategy.rollingUpdate.maxSurge",
            'Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"lots"}: a valid percent '
            "string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', "
            "regex used for validation is '[0-9]+%')",
        ),
        (
            "spec.strategy.rollingUpdate.maxUnavailable",
            'Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}: '
            "must not be greater than 100%",
        ),
    ]


def test_daemon_set_update_strategy() -> None:
    assert causes(workload("DaemonSet", updateStrategy={"type": "OnDelete"})) == []
    assert causes(workload("DaemonSet", updateStrategy={"type": "Canary"})) == [
        (
            "spec.updateStrategy",
            'Unsupported value: apps.DaemonSetUpdateStrategy{Type:"Canary", '
            "RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}: "
            'supported values: "RollingUpdate", "OnDelete"',
        )
    ]


def test_stateful_set_pod_management_policy() -> None:
    assert causes(workload("StatefulSet", podManagementPolicy="Parallel")) == []
    assert causes(workload("StatefulSet", podManagementPolicy="Random")) == [
        (
            "spec.podManagementPolicy",
            "Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
        )
    ]


def test_stateful_set_update_may_only_touch_some_fields() -> None:
    old = workload("StatefulSet", serviceName="web")

    def allowed(obj: Obj) -> None:
        obj["spec"]["replicas"] = 5
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
        obj["spec"]["updateStrategy"] = {"type": "OnDelete"}

    assert causes(changed(old, allowed), old=old) == []
    forbidden = (
        "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
        "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
        "'minReadySeconds' are forbidden"
    )
    new = changed(old, lambda obj: obj["spec"].update(serviceName="other"))
    assert causes(new, old=old) == [("spec", forbidden)]


# --- jobs -----------------------------------------------------------------------------------------

JOB: Obj = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "pi", "uid": "1234"},
    "spec": {"template": {"spec": {"containers": [container()], "restartPolicy": "Never"}}},
}
JOB_RESTART = 'supported values: "OnFailure", "Never"'


def test_valid_job() -> None:
    assert causes(JOB) == []
    on_failure = changed(
        JOB, lambda job: job["spec"]["template"]["spec"].update(restartPolicy="OnFailure")
    )
    assert causes(on_failure) == []


def test_job_pods_must_not_restart_always() -> None:
    # Left unset, a real server defaults it to Always and then rejects it, so the message says so.
    unset = changed(JOB, lambda job: job["spec"]["template"]["spec"].pop("restartPolicy"))
    always = changed(
        JOB, lambda job: job["spec"]["template"]["spec"].update(restartPolicy="Always")
    )
    for job in (unset, always):
        assert causes(job) == [
            ("spec.template.spec.restartPolicy", f'Unsupported value: "Always": {JOB_RESTART}')
        ]


def test_job_counts_and_selector() -> None:
    negative = changed(JOB, lambda job: job["spec"].update(parallelism=-1))
    assert causes(negative) == [
        ("spec.parallelism", "Invalid value: -1: must be greater than or equal to 0")
    ]

    def manual(job: Obj) -> None:
        job["spec"] |= {"manualSelector": True, "selector": {"matchLabels": {"app": "db"}}}

    manual_without_selector = changed(JOB, lambda job: job["spec"].update(manualSelector=True))
    assert causes(manual_without_selector) == [("spec.selector", "Required value")]
    assert causes(changed(JOB, manual)) == [
        (
            "spec.template.metadata.labels",
            "Invalid value: map[string]string(nil): `selector` does not match template `labels`",
        )
    ]


def test_job_template_is_immutable_unless_suspended() -> None:
    def new_image(job: Obj) -> None:
        job["spec"]["template"]["spec"]["containers"][0]["image"] = "perl"

    assert causes(changed(JOB, new_image), old=JOB) == [
        ("spec.template", "Invalid value: core.PodTemplateSpec{...}: field is immutable")
    ]

    def new_node(job: Obj) -> None:
        job["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a"}

    suspended = changed(JOB, lambda job: job["spec"].update(suspend=True))
    assert causes(changed(suspended, new_node), old=suspended) == []
    assert causes(changed(JOB, new_node), old=JOB) != []


CRON: Obj = {
    "apiVersion": "batch/v1",
    "kind": "CronJob",
    "metadata": {"name": "c"},
    "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": copy.deepcopy(JOB["spec"])}},
}


def test_valid_cron_job() -> None:
    assert causes(CRON) == []
    assert causes(changed(CRON, lambda cron: cron["spec"].update(schedule="@hourly"))) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"schedule": ""}, [("spec.schedule", "Required value")]),
        (
            {"schedule": "every minute"},
            [
                (
                    "spec.schedule",
                    'Invalid value: "every minute": expected exactly 5 fields, found 2: '
                    "[every minute]",
                )
            ],
        ),
        (
            {"concurrencyPolicy": "Sometimes"},
            [
                (
                    "spec.concurrencyPolicy",
                    'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", '
                    '"Replace"',
                )
            ],
        ),
    ],
)
def test_invalid_cron_job(spec: Obj, expected: list[Cause]) -> None:
    assert causes(changed(CRON, lambda cron: cron["spec"].update(spec))) == expected


def test_cron_job_pods_must_not_restart_always() -> None:
    def always(cron: Obj) -> None:
        cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"

    assert causes(changed(CRON, always)) == [
        (
            "spec.jobTemplate.spec.template.spec.restartPolicy",
            f'Unsupported value: "Always": {JOB_RESTART}',
        )
    ]


# --- services -------------------------------------------------------------------------------------


def service(**spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec}


@pytest.mark.parametrize(
    "spec",
    [
        {"ports": [{"port": 80}]},
        {
            "type": "NodePort",
            "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
        },
        {"clusterIP": "None"},
        {"type": "ExternalName", "externalName": "db.example.com"},
        {"ports": [{"port": 53, "protocol": "UDP", "targetPort": "dns"}]},
    ],
)
def test_valid_services(spec: Obj) -> None:
    assert causes(service(**spec)) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, [("spec.ports", "Required value")]),
        ({"type": "LoadBalancer"}, [("spec.ports", "Required value")]),
        (
            {"type": "Internal", "ports": [{"port": 80}]},
            [
                (
                    "spec.type",
                    'Unsupported value: "Internal": supported values: "ClusterIP", '
                    '"ExternalName", "LoadBalancer", "NodePort"',
                )
            ],
        ),
        (
            {"ports": [{"port": 0, "targetPort": 8080}]},
            [("spec.ports[0].port", "Invalid value: 0: must be between 1 and 65535, inclusive")],
        ),
        (
            {"ports": [{"port": 80, "protocol": "HTTP"}]},
            [
                (
                    "spec.ports[0].protocol",
                    'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
                )
            ],
        ),
        (
            {"ports": [{"port": 80}, {"name": "b", "port": 81}]},
            [("spec.ports[0].name", "Required value")],
        ),
        (
            {"ports": [{"name": "web", "port": 80}, {"name": "web", "port": 81}]},
            [("spec.ports[1].name", 'Duplicate value: "web"')],
        ),
        (
            {"ports": [{"port": 80, "targetPort": "http_alt"}]},
            [
                (
                    "spec.ports[0].targetPort",
                    'Invalid value: "http_alt": must contain only alpha-numeric characters '
                    "(a-z, 0-9), and hyphens (-)",
                )
            ],
        ),
        ({"type": "ExternalName"}, [("spec.externalName", "Required value")]),
    ],
)
def test_invalid_services(spec: Obj, expected: list[Cause]) -> None:
    assert causes(service(**spec)) == expected


def test_cluster_ip_may_not_change_once_set() -> None:
    old = service(clusterIP="10.96.0.10", ports=[{"port": 80}])
    assert causes(changed(old, lambda svc: svc["spec"].pop("clusterIP")), old=old) == []
    assert causes(old, old=old) == []
    moved = service(clusterIP="10.96.0.11", ports=[{"port": 80}])
    assert causes(moved, old=old) == [
        ("spec.clusterIPs[0]", 'Invalid value: []string{"10.96.0.11"}: may not change once set')
    ]
    headless = service(clusterIP="None", ports=[{"port": 80}])
    assert causes(headless, old=old) == [
        ("spec.clusterIPs", 'Invalid value: []string{"None"}: may not change once set')
    ]


# --- config ---------------------------------------------------------------------------------------

CONFIG_KEY_RULE = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
def test_data_keys(kind: str) -> None:
    good = {"apiVersion": "v1", "kind": kind, "data": {"app.conf": "", "KEY_1": "", "a-b": ""}}
    assert causes(good) == []
    bad = {"apiVersion": "v1", "kind": kind, "data": {"bad key": "", "..hidden": ""}}
    assert causes(bad) == [
        ("data[bad key]", f'Invalid value: "bad key": {CONFIG_KEY_RULE}'),
        ("data[..hidden]", "Invalid value: \"..hidden\": must not start with '..'"),
    ]


def test_secret_string_data_keys_are_checked_as_data() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "stringData": {"a/b": "x"}}
    assert causes(secret) == [("data[a/b]", f'Invalid value: "a/b": {CONFIG_KEY_RULE}')]


def test_typed_secrets_need_their_keys() -> None:
    tls = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "data": {}}
    assert causes(tls) == [("data[tls.crt]", "Required value"), ("data[tls.key]", "Required value")]
    tls["data"] = {"tls.crt": "", "tls.key": ""}
    assert causes(tls) == []


@pytest.mark.parametrize(("kind", "bag"), [("ConfigMap", "data"), ("Secret", "data")])
def test_immutable_objects_keep_their_data(kind: str, bag: str) -> None:
    old = {"apiVersion": "v1", "kind": kind, "immutable": True, bag: {"k": "dg=="}}
    assert causes(old, old=old) == []
    new = changed(old, lambda obj: obj[bag].update(k="dw=="))
    assert causes(new, old=old) == [(bag, "Forbidden: field is immutable when `immutable` is set")]
    mutable = changed(old, lambda obj: obj.pop("immutable"))
    assert causes(mutable, old=old) == [
        ("immutable", "Forbidden: field is immutable when `immutable` is set")
    ]


def test_secret_type_is_immutable() -> None:
    old = {"apiVersion": "v1", "kind": "Secret", "data": {}}
    new = {**old, "type": "example.com/custom"}
    assert causes(new, old=old) == [
        ("type", 'Invalid value: "example.com/custom": field is immutable')
    ]


# --- admission webhooks ---------------------------------------------------------------------------

HOOK: Obj = {
    "name": "pods.hooks.example.com",
    "sideEffects": "None",
    "admissionReviewVersions": ["v1"],
    "clientConfig": {"service": {"name": "hook", "namespace": "system", "path": "/mutate"}},
    "rules": [
        {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}
    ],
}


def webhooks(*hooks: Obj, kind: str = "MutatingWebhookConfiguration") -> Obj:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": "hooks"},
        "webhooks": list(hooks),
    }


def hook(**changes: Any) -> Obj:
    out = {**copy.deepcopy(HOOK), **changes}
    return {k: v for k, v in out.items() if v is not None}


@pytest.mark.parametrize("kind", ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"])
def test_valid_webhooks(kind: str) -> None:
    url_hook = hook(clientConfig={"url": "https://hooks.example.com:8443/validate"})
    assert causes(webhooks(HOOK, hook(name="b.hooks.example.com"), kind=kind)) == []
    assert causes(webhooks(url_hook, kind=kind)) == []


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (
            hook(name="mutate"),
            [
                (
                    "webhooks[0].name",
                    'Invalid value: "mutate": should be a domain with at least three segments '
                    "separated by dots",
                )
            ],
        ),
        (
            hook(clientConfig={}),
            [
                (
                    "webhooks[0].clientConfig",
                    "Required value: exactly one of url or service is required",
                )
            ],
        ),
        (
            hook(
                clientConfig={
                    "url": "https://h.example.com",
                    "service": {"name": "s", "namespace": "n"},
                }
            ),
            [
                (
                    "webhooks[0].clientConfig",
                    "Required value: exactly one of url or service is required",
                )
            ],
        ),
        (
            hook(clientConfig={"url": "http://h.example.com/x"}),
            [
                (
                    "webhooks[0].clientConfig.url",
                    "Invalid value: \"http\": 'https' is the only allowed URL scheme; desired "
                    "format: https://host[/path]",
                )
            ],
        ),
        (
            hook(sideEffects=None),
            [("webhooks[0].sideEffects", "Required value: must specify one of None, NoneOnDryRun")],
        ),
        (
            hook(sideEffects="Some"),
            [
                (
                    "webhooks[0].sideEffects",
                    'Unsupported value: "Some": supported values: "None", "NoneOnDryRun"',
                )
            ],
        ),
        (
            hook(admissionReviewVersions=None),
            [
                (
                    "webhooks[0].admissionReviewVersions",
                    "Required value: must specify one of v1, v1beta1",
                )
            ],
        ),
        (
            hook(failurePolicy="Retry"),
            [
                (
                    "webhooks[0].failurePolicy",
                    'Unsupported value: "Retry": supported values: "Fail", "Ignore"',
                )
            ],
        ),
        (
            hook(timeoutSeconds=31),
            [
                (
                    "webhooks[0].timeoutSeconds",
                    "Invalid value: 31: the timeout value must be between 1 and 30 seconds",
                )
            ],
        ),
        (
            hook(rules=[{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]),
            [("webhooks[0].rules[0].operations", "Required value")],
        ),
    ],
)
def test_invalid_webhooks(bad: Obj, expected: list[Cause]) -> None:
    assert causes(webhooks(bad)) == expected
    validating = [cause for cause in expected if "reinvocation" not in cause[0]]
    assert causes(webhooks(bad, kind="ValidatingWebhookConfiguration")) == validating


def test_webhook_names_are_unique() -> None:
    assert causes(webhooks(HOOK, HOOK)) == [
        ("webhooks[1].name", 'Duplicate value: "pods.hooks.example.com"')
    ]


# --- RBAC -----------------------------------------------------------------------------------------


def binding(kind: str = "RoleBinding", **fields: Any) -> Obj:
    base = {
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "alice"}],
    }
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, **base, **fields}


@pytest.mark.parametrize("kind", ["RoleBinding", "ClusterRoleBinding"])
def test_valid_bindings(kind: str) -> None:
    assert causes(binding(kind)) == []


def test_role_ref_is_required() -> None:
    assert causes(binding(roleRef={})) == [
        ("roleRef.kind", 'Unsupported value: "": supported values: "Role", "ClusterRole"'),
        ("roleRef.name", "Required value"),
    ]
    assert causes(binding("ClusterRoleBinding", roleRef={"kind": "Role", "name": "x"})) == [
        ("roleRef.kind", 'Unsupported value: "Role": supported values: "ClusterRole"')
    ]


def test_role_ref_is_immutable() -> None:
    old = binding()
    new = binding(roleRef={"kind": "ClusterRole", "name": "edit"})
    assert causes(new, old=old) == [
        (
            "roleRef",
            'Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", '
            'Kind:"ClusterRole", Name:"edit"}: cannot change roleRef',
        )
    ]
    assert causes(changed(old, lambda obj: obj["subjects"].clear()), old=old) == []


def test_binding_subjects() -> None:
    subjects = [{"kind": "Robot", "name": "r"}, {"kind": "ServiceAccount", "name": "bot"}]
    assert causes(binding("ClusterRoleBinding", subjects=subjects)) == [
        (
            "subjects[0].kind",
            'Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
        ),
        ("subjects[1].namespace", "Required value"),
    ]


def test_role_rules() -> None:
    role: Obj = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    assert causes(role) == []
    role["rules"] = [{"resources": ["pods"]}]
    assert causes(role) == [
        ("rules[0].verbs", "Required value: verbs must contain at least one value"),
        ("rules[0].apiGroups", "Required value: resource rules must supply at least one api group"),
    ]


# --- everything else ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "Namespace"),
        ("coordination.k8s.io/v1", "Lease"),
        ("policy/v1", "PodDisruptionBudget"),
        ("example.com/v1", "Widget"),
    ],
)
def test_kinds_without_rules_validate_clean(api_version: str, kind: str) -> None:
    obj = {"apiVersion": api_version, "kind": kind, "spec": {"anything": ["goes"]}}
    assert validate_builtin(obj, api_version, kind) == []
    assert validate_builtin(obj, api_version, kind, old=obj) == []


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "Pod"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ],
)
def test_malformed_objects_are_reported_not_raised(api_version: str, kind: str) -> None:
    obj = {"spec": "oops", "webhooks": [1, "x"], "roleRef": [], "subjects": {}}
    assert isinstance(validate_builtin(obj, api_version, kind, old=obj), list)


_KEYS = st.sampled_from(
    [
        "spec",
        "template",
        "metadata",
        "labels",
        "selector",
        "matchLabels",
        "matchExpressions",
        "containers",
        "initContainers",
        "volumes",
        "volumeMounts",
        "ports",
        "name",
        "image",
        "port",
        "targetPort",
        "protocol",
        "type",
        "restartPolicy",
        "strategy",
        "rollingUpdate",
        "maxSurge",
        "webhooks",
        "clientConfig",
        "url",
        "service",
        "rules",
        "roleRef",
        "subjects",
        "data",
        "immutable",
        "tolerations",
        "clusterIP",
    ]
)
_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-1, 70000), st.text(max_size=6))
_JSON = st.recursive(
    _LEAF,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(_KEYS | st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=30,
)
_RULED_KINDS = [
    ("v1", "Pod"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "ReplicaSet"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
]


@settings(max_examples=400, deadline=None)
@given(
    kind=st.sampled_from(_RULED_KINDS),
    new=st.dictionaries(_KEYS, _JSON, max_size=5),
    old=st.none() | st.dictionaries(_KEYS, _JSON, max_size=5),
)
def test_arbitrary_shapes_never_raise(kind: tuple[str, str], new: Obj, old: Obj | None) -> None:
    result = validate_builtin(new, kind[0], kind[1], old)
    assert all(isinstance(path, str) and isinstance(msg, str) for path, msg in result)

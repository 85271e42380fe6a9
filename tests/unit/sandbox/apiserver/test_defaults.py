"""Built-in objects come back with the fields kube-apiserver 1.33 defaults, and only those."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshcanary.sandbox.apiserver.defaults import apply_defaults

Obj = dict[str, Any]


def defaulted(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    apply_defaults(out, out["apiVersion"], out["kind"])
    return out


def container(name: str = "app", image: str = "nginx:1.27", **extra: Any) -> Obj:
    return {"name": name, "image": image, **extra}


def defaulted_container(name: str = "app", image: str = "nginx:1.27", **extra: Any) -> Obj:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "resources": {},
        **extra,
    }


# What every pod template (not only Pods) gets from SetDefaults_PodSpec.
TEMPLATE_SPEC_DEFAULTS: Obj = {
    "dnsPolicy": "ClusterFirst",
    "restartPolicy": "Always",
    "schedulerName": "default-scheduler",
    "securityContext": {},
    "terminationGracePeriodSeconds": 30,
}
# What only Pods get (SetDefaults_Pod and the Priority/ServiceAccount/toleration admission).
POD_ONLY_DEFAULTS: Obj = {
    "enableServiceLinks": True,
    "serviceAccountName": "default",
    "serviceAccount": "default",
    "priority": 0,
    "preemptionPolicy": "PreemptLowerPriority",
    "tolerations": [
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ],
}


def template(*containers: Obj, labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    return {
        "metadata": {"labels": labels or {"app": "web"}},
        "spec": {"containers": list(containers), **spec},
    }


def defaulted_template(*containers: Obj, **spec: Any) -> Obj:
    return {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": list(containers), **TEMPLATE_SPEC_DEFAULTS, **spec},
    }


SELECTOR = {"matchLabels": {"app": "web"}}


# --- pods and pod templates -----------------------------------------------------------------------


def test_deployment_gets_its_own_and_all_pod_template_defaults() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": SELECTOR,
            "template": template(
                container("latest", "nginx:latest", ports=[{"containerPort": 80}]),
                container("pinned", "nginx:1.27"),
            ),
        },
    }
    assert defaulted(deployment) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": SELECTOR,
            "replicas": 1,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
            "template": defaulted_template(
                defaulted_container(
                    "latest",
                    "nginx:latest",
                    imagePullPolicy="Always",
                    ports=[{"containerPort": 80, "protocol": "TCP"}],
                ),
                defaulted_container("pinned", "nginx:1.27"),
            ),
        },
    }


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("docker.io/library/nginx:latest", "Always"),
        ("localhost:5000/team/nginx", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("localhost:5000/team/nginx:1.27", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
        ("nginx:latest@sha256:" + "a" * 64, "Always"),
    ],
)
def test_image_pull_policy_follows_the_tag(image: str, policy: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [container(image=image)]}}
    assert defaulted(pod)["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_pod_gets_pod_only_defaults_too() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [container()]},
    }
    assert defaulted(pod) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [defaulted_container()],
            **TEMPLATE_SPEC_DEFAULTS,
            **POD_ONLY_DEFAULTS,
        },
    }


def test_pod_keeps_what_the_user_set() -> None:
    spec = {
        "containers": [container(imagePullPolicy="Always", resources={"limits": {"cpu": "1"}})],
        "initContainers": [container("init")],
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 0,
        "serviceAccountName": "builder",
        "priorityClassName": "system-node-critical",
        "tolerations": [{"operator": "Exists"}],
        "enableServiceLinks": False,
    }
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": spec}
    out = defaulted(pod)["spec"]
    assert out["restartPolicy"] == "Never"
    assert out["terminationGracePeriodSeconds"] == 0
    assert out["enableServiceLinks"] is False
    assert (out["serviceAccountName"], out["serviceAccount"]) == ("builder", "builder")
    assert out["priority"] == 2000001000
    assert out["tolerations"] == [{"operator": "Exists"}]  # already tolerates every taint
    assert out["containers"][0]["imagePullPolicy"] == "Always"
    assert out["containers"][0]["resources"] == {
        "limits": {"cpu": "1"},
        "requests": {"cpu": "1"},  # requests default to limits, on Pods only
    }
    assert out["initContainers"] == [defaulted_container("init")]


def test_pod_spec_details_probes_env_volumes_and_host_network() -> None:
    probe = {"httpGet": {"port": 8080}}
    app = container(
        livenessProbe=probe,
        readinessProbe={"grpc": {"port": 9090}},
        env=[{"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
        ports=[{"containerPort": 8080}],
    )
    volumes = [
        {"name": "scratch"},
        {"name": "cfg", "configMap": {"name": "cfg"}},
        {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 256}},
        {"name": "host", "hostPath": {"path": "/var/run"}},
        {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "spec": {"containers": [app], "volumes": volumes, "hostNetwork": True},
    }
    out = defaulted(pod)["spec"]
    defaulted_app = out["containers"][0]
    assert defaulted_app["livenessProbe"] == {
        "httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert defaulted_app["readinessProbe"]["grpc"] == {"port": 9090, "service": ""}
    field_ref = defaulted_app["env"][0]["valueFrom"]["fieldRef"]
    assert field_ref == {"fieldPath": "metadata.namespace", "apiVersion": "v1"}
    assert defaulted_app["ports"] == [{"containerPort": 8080, "protocol": "TCP", "hostPort": 8080}]
    assert out["volumes"] == [
        {"name": "scratch", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}},
        {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 256}},
        {"name": "host", "hostPath": {"path": "/var/run", "type": ""}},
        {
            "name": "token",
            "projected": {
                "sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 3600}}],
                "defaultMode": 420,
            },
        },
    ]


# --- workloads ------------------------------------------------------------------------------------


def test_deployment_keeps_explicit_zero_replicas_and_recreate() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "spec": {"replicas": 0, "strategy": {"type": "Recreate"}, "template": template()},
    }
    spec = defaulted(deployment)["spec"]
    assert spec["replicas"] == 0
    assert spec["strategy"] == {"type": "Recreate"}


def test_replica_set() -> None:
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "spec": {"template": template()}}
    assert defaulted(rs)["spec"] == {"replicas": 1, "template": defaulted_template()}


def test_stateful_set() -> None:
    claim = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "spec": {"template": template(), "volumeClaimTemplates": [claim]},
    }
    assert defaulted(sts)["spec"] == {
        "replicas": 1,
        "revisionHistoryLimit": 10,
        "podManagementPolicy": "OrderedReady",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        "template": defaulted_template(),
        "volumeClaimTemplates": [
            {
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"},
                "status": {"phase": "Pending"},
            }
        ],
    }


def test_stateful_set_on_delete_gets_no_rolling_update() -> None:
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "spec": {"updateStrategy": {"type": "OnDelete"}, "template": template()},
    }
    assert defaulted(sts)["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_daemon_set() -> None:
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": {"template": template()}}
    assert defaulted(ds)["spec"] == {
        "revisionHistoryLimit": 10,
        "updateStrategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
        },
        "template": defaulted_template(),
    }


JOB_TEMPLATE_SPEC = {k: v for k, v in TEMPLATE_SPEC_DEFAULTS.items() if k != "restartPolicy"}


def test_job_with_uid_gets_generated_selector_and_labels() -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "uid": "1234"},
        "spec": {"template": {"spec": {"containers": [container()]}}},
    }
    generated = {
        "batch.kubernetes.io/controller-uid": "1234",
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "1234",
        "job-name": "pi",
    }
    assert defaulted(job) == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "uid": "1234", "labels": generated},
        "spec": {
            "parallelism": 1,
            "completions": 1,
            "backoffLimit": 6,
            "completionMode": "NonIndexed",
            "suspend": False,
            "podReplacementPolicy": "TerminatingOrFailed",
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "1234"}},
            "template": {
                "metadata": {"labels": generated},
                "spec": {"containers": [defaulted_container()], **JOB_TEMPLATE_SPEC},
            },
        },
    }


def test_job_without_uid_or_with_manual_selector_keeps_its_selector() -> None:
    spec = {"parallelism": 3, "template": template(restartPolicy="Never")}
    job: Obj = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": spec}
    out = defaulted(job)
    assert "selector" not in out["spec"]
    assert "completions" not in out["spec"]  # only defaulted when parallelism is unset too
    assert out["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert out["metadata"]["labels"] == {"app": "web"}  # copied from the template
    manual = copy.deepcopy(job)
    manual["metadata"]["uid"] = "1234"
    manual["spec"] |= {"manualSelector": True, "selector": SELECTOR}
    assert defaulted(manual)["spec"]["selector"] == SELECTOR


def test_job_pod_failure_policy_and_backoff_per_index() -> None:
    rule = {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
    spec = {
        "backoffLimitPerIndex": 1,
        "completionMode": "Indexed",
        "podFailurePolicy": {"rules": [rule]},
        "template": template(),
    }
    out = defaulted({"apiVersion": "batch/v1", "kind": "Job", "spec": spec})["spec"]
    assert out["backoffLimit"] == 2147483647
    assert out["completionMode"] == "Indexed"
    assert out["podReplacementPolicy"] == "Failed"
    conditions = out["podFailurePolicy"]["rules"][0]["onPodConditions"]
    assert conditions == [{"type": "DisruptionTarget", "status": "True"}]


def test_cron_job_defaults_the_pod_template_but_not_the_job_spec() -> None:
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [container()]}}}},
        },
    }
    assert defaulted(cron)["spec"] == {
        "schedule": "*/5 * * * *",
        "concurrencyPolicy": "Allow",
        "suspend": False,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 1,
        "jobTemplate": {
            "spec": {
                "template": {"spec": {"containers": [defaulted_container()], **JOB_TEMPLATE_SPEC}}
            }
        },
    }


def test_replication_controller_and_pod_template() -> None:
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "spec": {"template": template()}}
    out = defaulted(rc)
    assert out["spec"]["replicas"] == 1
    assert out["spec"]["selector"] == {"app": "web"}
    assert out["metadata"]["labels"] == {"app": "web"}
    pod_template = {"apiVersion": "v1", "kind": "PodTemplate", "template": template()}
    assert defaulted(pod_template)["template"] == defaulted_template()


# --- services -------------------------------------------------------------------------------------


def service(**spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec}


def test_cluster_ip_service() -> None:
    out = defaulted(service(selector={"app": "web"}, ports=[{"port": 80}]))
    assert out["spec"] == {
        "selector": {"app": "web"},
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
        "type": "ClusterIP",
        "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    }
    assert out["status"] == {"loadBalancer": {}}


def test_load_balancer_and_node_port_services() -> None:
    ports = [{"port": 443, "targetPort": "https", "protocol": "UDP"}]
    lb = defaulted(service(type="LoadBalancer", ports=ports))["spec"]
    assert lb["ports"] == ports
    assert lb["externalTrafficPolicy"] == "Cluster"
    assert lb["allocateLoadBalancerNodePorts"] is True
    node_port = defaulted(service(type="NodePort", ports=ports))["spec"]
    assert node_port["externalTrafficPolicy"] == "Cluster"
    assert "allocateLoadBalancerNodePorts" not in node_port


def test_headless_external_name_and_client_ip_services() -> None:
    headless = defaulted(service(clusterIP="None", ports=[{"port": 80}]))["spec"]
    assert headless["clusterIPs"] == ["None"]
    assert headless["ipFamilyPolicy"] == "RequireDualStack"
    assert headless["ipFamilies"] == ["IPv4", "IPv6"]
    external = defaulted(service(type="ExternalName", externalName="example.com"))["spec"]
    assert external == {
        "type": "ExternalName",
        "externalName": "example.com",
        "sessionAffinity": "None",
    }
    sticky = defaulted(service(sessionAffinity="ClientIP", ports=[{"port": 80}]))["spec"]
    assert sticky["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


# --- other kinds ----------------------------------------------------------------------------------


def test_namespace() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    assert defaulted(ns) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def test_secret_type_and_string_data() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "stringData": {"user": "admin"}}
    assert defaulted(secret) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "data": {"user": "YWRtaW4="},
    }
    tls = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls"}
    assert defaulted(tls)["type"] == "kubernetes.io/tls"


def test_horizontal_pod_autoscaler_v2() -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "spec": {
            "maxReplicas": 5,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
        },
    }
    assert defaulted(hpa)["spec"] == {
        "maxReplicas": 5,
        "minReplicas": 1,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ],
        "behavior": {
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "selectPolicy": "Max",
                "policies": [
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Percent", "value": 100, "periodSeconds": 15},
                ],
            },
            "scaleDown": {
                "stabilizationWindowSeconds": 60,
                "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
            },
        },
    }


def test_horizontal_pod_autoscaler_without_behavior_gets_none() -> None:
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "spec": {}}
    assert "behavior" not in defaulted(hpa)["spec"]


RULE: Obj = {
    "operations": ["CREATE"],
    "apiGroups": [""],
    "apiVersions": ["v1"],
    "resources": ["pods"],
}
WEBHOOK: Obj = {
    "name": "hook.example.com",
    "sideEffects": "None",
    "admissionReviewVersions": ["v1"],
    "clientConfig": {"service": {"name": "hook", "namespace": "system"}},
    "rules": [RULE],
}
DEFAULTED_WEBHOOK: Obj = {
    **WEBHOOK,
    "failurePolicy": "Fail",
    "matchPolicy": "Equivalent",
    "namespaceSelector": {},
    "objectSelector": {},
    "timeoutSeconds": 10,
    "clientConfig": {"service": {"name": "hook", "namespace": "system", "port": 443}},
    "rules": [{**RULE, "scope": "*"}],
}


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("MutatingWebhookConfiguration", {"reinvocationPolicy": "Never"}),
        ("ValidatingWebhookConfiguration", {}),
    ],
)
def test_webhook_configurations(kind: str, extra: Obj) -> None:
    config = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "webhooks": [WEBHOOK]}
    assert defaulted(config)["webhooks"] == [{**DEFAULTED_WEBHOOK, **extra}]


@pytest.mark.parametrize("kind", ["RoleBinding", "ClusterRoleBinding"])
def test_role_bindings(kind: str) -> None:
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [
            {"kind": "User", "name": "alice"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "bot", "namespace": "ci"},
        ],
    }
    out = defaulted(binding)
    group = "rbac.authorization.k8s.io"
    assert out["roleRef"] == {"kind": "ClusterRole", "name": "view", "apiGroup": group}
    assert out["subjects"] == [
        {"kind": "User", "name": "alice", "apiGroup": group},
        {"kind": "Group", "name": "devs", "apiGroup": group},
        {"kind": "ServiceAccount", "name": "bot", "namespace": "ci"},
    ]


def test_custom_resource_definition() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced",
            "versions": [
                {"name": "v1beta1", "served": True, "storage": False},
                {"name": "v1", "served": True, "storage": True},
            ],
        },
    }
    out = defaulted(crd)
    assert out["spec"]["names"] == {
        "kind": "Widget",
        "plural": "widgets",
        "singular": "widget",
        "listKind": "WidgetList",
    }
    assert out["spec"]["conversion"] == {"strategy": "None"}
    assert out["status"] == {"storedVersions": ["v1"]}


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "ConfigMap"),
        ("policy/v1", "PodDisruptionBudget"),
        ("coordination.k8s.io/v1", "Lease"),
        ("example.com/v1", "Widget"),
        ("apps/v1beta1", "Deployment"),
    ],
)
def test_kinds_without_defaults_are_untouched(api_version: str, kind: str) -> None:
    obj = {"apiVersion": api_version, "kind": kind, "spec": {"template": template()}}
    assert defaulted(obj) == obj


# --- idempotence ----------------------------------------------------------------------------------

SAMPLES: list[Obj] = [
    {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [container(image="busybox")]}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": template(container())}},
    {"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {"template": template()}},
    {"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": {"template": template()}},
    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "spec": {"template": template()}},
    {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "uid": "u"},
        "spec": {"template": template()},
    },
    {"apiVersion": "batch/v1", "kind": "CronJob", "spec": {"jobTemplate": {}}},
    service(clusterIP="None", ports=[{"port": 80}]),
    service(type="LoadBalancer", ports=[{"port": 80}]),
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}},
    {"apiVersion": "v1", "kind": "Secret", "stringData": {"a": "b"}},
    {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "spec": {"behavior": {}},
    },
    {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "webhooks": [WEBHOOK],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "roleRef": {},
        "subjects": [{"kind": "User", "name": "u"}],
    },
    {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "spec": {"names": {"kind": "Widget"}},
    },
]


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda obj: str(obj["kind"]))
def test_defaulting_twice_is_defaulting_once(obj: Obj) -> None:
    once = defaulted(obj)
    assert defaulted(once) == once


_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 3),
    st.sampled_from(["", "None", "Always", "nginx:latest", "RollingUpdate", "LoadBalancer"]),
)
_keys = st.sampled_from(
    [
        "spec",
        "template",
        "jobTemplate",
        "containers",
        "initContainers",
        "volumes",
        "ports",
        "type",
        "strategy",
        "updateStrategy",
        "rollingUpdate",
        "selector",
        "metadata",
        "labels",
        "uid",
        "name",
        "image",
        "clusterIP",
        "restartPolicy",
        "tolerations",
        "behavior",
        "webhooks",
        "subjects",
        "stringData",
        "names",
    ]
)
_json = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=25,
)
_kinds = st.sampled_from([(obj["apiVersion"], obj["kind"]) for obj in SAMPLES])


@settings(max_examples=300, deadline=None)
@given(kind=_kinds, body=st.dictionaries(_keys, _json, max_size=5))
def test_defaulting_arbitrary_shapes_never_crashes_and_is_idempotent(
    kind: tuple[str, str], body: Obj
) -> None:
    obj = {**body, "apiVersion": kind[0], "kind": kind[1]}
    once = defaulted(obj)
    assert defaulted(once) == once

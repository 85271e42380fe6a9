"""The real kubectl against a running sandbox: reads, writes, printing, watch, CRDs, deletion."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
import yaml

from tests.e2e.conftest import RunningSandbox, requires_kubectl

pytestmark = [pytest.mark.e2e, requires_kubectl]

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      additionalPrinterColumns:
        - {name: Size, type: integer, jsonPath: .spec.size}
        - {name: Color, type: string, jsonPath: .spec.color}
        - {name: Phase, type: string, jsonPath: .status.phase, priority: 1}
        - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer, minimum: 1}
                color: {type: string, enum: [red, blue], default: red}
            status:
              type: object
              properties:
                phase: {type: string}
"""


def apply(sandbox: RunningSandbox, manifest: str, *args: str) -> str:
    return sandbox.kubectl("apply", "-f", "-", *args, input=manifest).stdout


def test_server_version_is_1_33(sandbox: RunningSandbox) -> None:
    out = json.loads(sandbox.kubectl("version", "-o", "json").stdout)
    assert out["serverVersion"]["minor"] == "33"


def test_a_wrong_token_is_refused(sandbox: RunningSandbox) -> None:
    result = sandbox.kubectl("get", "namespaces", "--token", "not-the-token", check=False)
    assert result.returncode != 0
    assert "Unauthorized" in result.stderr or "credentials" in result.stderr


def test_get_in_every_format(sandbox: RunningSandbox, namespace: str) -> None:
    apply(
        sandbox,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, labels: {a: b}}\ndata: {k: v}\n",
        "-n",
        namespace,
    )
    table = sandbox.kubectl("get", "configmaps", "-n", namespace).stdout
    assert table.split("\n")[0].split() == ["NAME", "DATA", "AGE"]
    assert "cfg" in table
    as_yaml = yaml.safe_load(
        sandbox.kubectl("get", "cm", "cfg", "-n", namespace, "-o", "yaml").stdout
    )
    assert as_yaml["data"] == {"k": "v"}
    assert as_yaml["metadata"]["uid"]
    as_json = json.loads(sandbox.kubectl("get", "cm", "-n", namespace, "-o", "json").stdout)
    assert [i["metadata"]["name"] for i in as_json["items"]] == ["cfg"]
    labels = sandbox.kubectl("get", "cm", "cfg", "-n", namespace, "--show-labels").stdout
    assert "a=b" in labels
    everywhere = sandbox.kubectl("get", "cm", "-A").stdout
    assert everywhere.split("\n")[0].split()[0] == "NAMESPACE"
    assert namespace in everywhere


def test_deployment_printing_and_wide(sandbox: RunningSandbox, namespace: str) -> None:
    sandbox.kubectl("apply", "-n", namespace, "-f", "examples/shop.yaml")
    wide = sandbox.kubectl("get", "deployments", "-n", namespace, "-o", "wide").stdout
    header = wide.split("\n")[0].split()
    assert header == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert "nginx:1.27" in wide
    services = sandbox.kubectl("get", "svc", "frontend", "-n", namespace).stdout
    assert "ClusterIP" in services and "80/TCP" in services


def test_label_annotate_and_patch(sandbox: RunningSandbox, namespace: str) -> None:
    sandbox.kubectl("label", "namespace", namespace, "istio.io/rev=cp-v115x.istio-system")
    sandbox.kubectl(
        "label", "namespace", namespace, "istio.io/rev=cp-v117x.istio-system", "--overwrite"
    )
    sandbox.kubectl("annotate", "namespace", namespace, "team=mesh")
    ns = json.loads(sandbox.kubectl("get", "ns", namespace, "-o", "json").stdout)
    assert ns["metadata"]["labels"]["istio.io/rev"] == "cp-v117x.istio-system"
    assert ns["metadata"]["annotations"]["team"] == "mesh"
    sandbox.kubectl("apply", "-n", namespace, "-f", "examples/shop.yaml")
    sandbox.kubectl(
        "patch",
        "deployment",
        "frontend",
        "-n",
        namespace,
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}',
    )
    sandbox.kubectl(
        "patch",
        "deployment",
        "frontend",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        '{"spec":{"replicas":5}}',
    )
    sandbox.kubectl(
        "patch",
        "deployment",
        "frontend",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        '[{"op":"add","path":"/metadata/labels/tier","value":"web"}]',
    )
    deploy = json.loads(
        sandbox.kubectl("get", "deploy", "frontend", "-n", namespace, "-o", "json").stdout
    )
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.28" and container["ports"][0]["containerPort"] == 80
    assert deploy["spec"]["replicas"] == 5
    assert deploy["metadata"]["labels"]["tier"] == "web"
    assert deploy["metadata"]["generation"] == 3


def test_a_failed_json_patch_test_is_rejected(sandbox: RunningSandbox, namespace: str) -> None:
    result = sandbox.kubectl(
        "patch",
        "ns",
        namespace,
        "--type",
        "json",
        "-p",
        '[{"op":"test","path":"/metadata/name","value":"other"}]',
        check=False,
    )
    assert result.returncode != 0
    assert "test" in result.stderr.lower()


def test_rollout_restart_sets_the_template_annotation(
    sandbox: RunningSandbox, namespace: str
) -> None:
    sandbox.kubectl("apply", "-n", namespace, "-f", "examples/shop.yaml")
    sandbox.kubectl("rollout", "restart", "deployment/frontend", "-n", namespace)
    annotations = sandbox.kubectl(
        "get",
        "deploy",
        "frontend",
        "-n",
        namespace,
        "-o",
        "jsonpath={.spec.template.metadata.annotations}",
    ).stdout
    assert "kubectl.kubernetes.io/restartedAt" in annotations


def test_apply_twice_is_unchanged(sandbox: RunningSandbox, namespace: str) -> None:
    sandbox.kubectl("apply", "-n", namespace, "-f", "examples/shop.yaml")
    again = sandbox.kubectl("apply", "-n", namespace, "-f", "examples/shop.yaml").stdout
    assert again.count("unchanged") == 3


def test_server_side_apply(sandbox: RunningSandbox, namespace: str) -> None:
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {a: '1'}\n"
    apply(sandbox, manifest, "-n", namespace, "--server-side")
    apply(sandbox, manifest.replace("'1'", "'2'"), "-n", namespace, "--server-side")
    cm = json.loads(
        sandbox.kubectl(
            "get", "cm", "ssa", "-n", namespace, "-o", "json", "--show-managed-fields"
        ).stdout
    )
    assert cm["data"] == {"a": "2"}
    assert any(
        m["manager"] == "kubectl" and m["operation"] == "Apply"
        for m in cm["metadata"]["managedFields"]
    )


def test_watch_sees_a_new_object(sandbox: RunningSandbox, namespace: str) -> None:
    watcher = subprocess.Popen(
        ["kubectl", "get", "configmaps", "-n", namespace, "-w", "--output-watch-events"],
        env=sandbox.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        apply(sandbox, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: seen}\n", "-n", namespace)
        deadline = time.monotonic() + 20
        lines = []
        while time.monotonic() < deadline:
            line = watcher.stdout.readline()
            lines.append(line)
            if "seen" in line:
                break
        assert any(line.split()[:2] == ["ADDED", "seen"] for line in lines), lines
    finally:
        watcher.kill()
        watcher.wait()


def test_crd_printer_columns_and_validation(sandbox: RunningSandbox, namespace: str) -> None:
    apply(sandbox, WIDGET_CRD)
    sandbox.kubectl("wait", "--for", "condition=established", "crd/widgets.example.com")
    apply(
        sandbox,
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n",
        "-n",
        namespace,
    )
    table = sandbox.kubectl("get", "widgets", "-n", namespace).stdout.split("\n")
    assert table[0].split() == ["NAME", "SIZE", "COLOR", "AGE"]
    assert table[1].split()[:3] == ["w1", "3", "red"]
    wide = sandbox.kubectl("get", "wd", "-n", namespace, "-o", "wide").stdout
    assert wide.split("\n")[0].split() == ["NAME", "SIZE", "COLOR", "PHASE", "AGE"]
    bad = sandbox.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        check=False,
        input="apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2}\n"
        "spec: {size: 0, color: green}\n",
    )
    assert bad.returncode != 0
    assert "spec.color" in bad.stderr and "Unsupported value" in bad.stderr
    assert "spec.size" in bad.stderr
    unknown = sandbox.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        check=False,
        input="apiVersion: example.com/v1\nkind: Widget\n"
        "metadata: {name: w3}\nspec: {size: 1, shape: round}\n",
    )
    assert unknown.returncode != 0 and 'unknown field "spec.shape"' in unknown.stderr


def test_api_resources_lists_short_names(sandbox: RunningSandbox) -> None:
    out = sandbox.kubectl("api-resources", "--api-group=apps").stdout
    assert any(line.split()[:2] == ["deployments", "deploy"] for line in out.split("\n"))


def _owned_replicaset(sandbox: RunningSandbox, namespace: str) -> None:
    sandbox.kubectl("apply", "-n", namespace, "-f", "examples/shop.yaml")
    uid = sandbox.kubectl(
        "get", "deploy", "frontend", "-n", namespace, "-o", "jsonpath={.metadata.uid}"
    ).stdout
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "frontend-1",
            "labels": {"app": "frontend"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "frontend",
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "frontend"}},
            "template": {
                "metadata": {"labels": {"app": "frontend"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }
    sandbox.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(rs))


@pytest.mark.parametrize("cascade", ["background", "foreground", "orphan"])
def test_delete_cascade(sandbox: RunningSandbox, namespace: str, cascade: str) -> None:
    _owned_replicaset(sandbox, namespace)
    sandbox.kubectl(
        "delete", "deployment", "frontend", "-n", namespace, f"--cascade={cascade}", "--timeout=20s"
    )
    if cascade == "orphan":
        rs = json.loads(
            sandbox.kubectl("get", "rs", "frontend-1", "-n", namespace, "-o", "json").stdout
        )
        assert "ownerReferences" not in rs["metadata"]
    else:
        sandbox.kubectl("wait", "--for=delete", "rs/frontend-1", "-n", namespace, "--timeout=20s")


def test_delete_namespace_removes_its_contents(sandbox: RunningSandbox, namespace: str) -> None:
    sandbox.kubectl("apply", "-n", namespace, "-f", "examples/shop.yaml")
    sandbox.kubectl("delete", "namespace", namespace, "--timeout=30s")
    assert sandbox.kubectl("get", "ns", namespace, check=False).returncode != 0
    assert "No resources" in sandbox.kubectl("get", "deploy", "-n", namespace).stderr


def test_typed_create_commands_and_scale(sandbox: RunningSandbox) -> None:
    """These kubectl commands send protobuf bodies; the sandbox decodes them."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    sandbox.kubectl("create", "namespace", name)
    sandbox.kubectl("create", "configmap", "c", "--from-literal=a=b", "-n", name)
    sandbox.kubectl("create", "secret", "generic", "s", "--from-literal=k=v", "-n", name)
    sandbox.kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2", "-n", name)
    sandbox.kubectl("scale", "deployment", "web", "--replicas=4", "-n", name)
    assert (
        sandbox.kubectl(
            "get", "deploy", "web", "-n", name, "-o", "jsonpath={.spec.replicas}"
        ).stdout
        == "4"
    )
    secret = json.loads(sandbox.kubectl("get", "secret", "s", "-n", name, "-o", "json").stdout)
    assert secret["data"] == {"k": "dg=="} and secret["type"] == "Opaque"
    assert sandbox.kubectl("get", "cm", "c", "-n", name, "-o", "jsonpath={.data.a}").stdout == "b"

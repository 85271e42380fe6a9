"""deploy/: every manifest is valid Kubernetes, the RBAC is least privilege, the pieces fit.

What a reviewer of an operator install checks by eye, checked here instead: the ClusterRole
grants what the operator does (every kind the renderer emits, for server-side apply and prune)
and nothing broader (no wildcards, no Secrets, no CRD deletion, escalate/bind on roles only);
the Deployment runs `meshcanary operator` with flags the CLI accepts, with peering, the webhook
certificate mounted, probes on kopf's health endpoint and a restricted security context; the
Service, ServiceAccount, binding and peering object agree on names.
"""

from __future__ import annotations

import copy
import functools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import typer
import yaml

from meshcanary.cli.app import app
from meshcanary.controlplane import crd, istio_crds, render
from meshcanary.sandbox.apiserver import schema as sandbox_schema

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
NAMESPACE = "meshcanary-system"
READ = {"get", "list", "watch"}
APPLY_AND_PRUNE = {"create", "delete", "get", "list", "patch", "watch"}
"""Server-side apply (PATCH; create when absent), drift (get/watch), prune (list, delete)."""
KUBERNETES_GROUPS = {
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apps",
    "policy",
    "rbac.authorization.k8s.io",
}


def manifest_files() -> list[Path]:
    return sorted(
        path
        for path in DEPLOY.rglob("*.yaml")
        if path.name != "kustomization.yaml" and "cert-manager" not in path.parts
    )


def documents(path: Path) -> list[dict[str, Any]]:
    return copy.deepcopy(_parsed(path))


@functools.cache
def _parsed(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    return [doc for doc in yaml.load_all(text, Loader=yaml.CSafeLoader) if doc]


def every_document() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in manifest_files():
        for doc in documents(path):
            yield path, doc


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        doc
        for _, doc in every_document()
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def cluster_role() -> dict[str, Any]:
    return one("ClusterRole", "meshcanary-operator")


def deployment() -> dict[str, Any]:
    return one("Deployment", "meshcanary-operator")


def container() -> dict[str, Any]:
    (only,) = deployment()["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result


def flags() -> dict[str, str]:
    """`--name=value` arguments of the operator container (a bare `--name` maps to "")."""
    found = {}
    for arg in container()["args"][1:]:
        name, _, value = arg.partition("=")
        found[name] = value
    return found


def allows(verb: str, group: str, resource: str, name: str | None = None) -> bool:
    """Whether the ClusterRole grants `verb` on `group`/`resource` (object `name`), as RBAC does."""
    for rule in cluster_role()["rules"]:
        names = rule.get("resourceNames")
        if (
            group in rule["apiGroups"]
            and resource in rule["resources"]
            and verb in rule["verbs"]
            and (not names or name in names)
        ):
            return True
    return False


def plural(kind: str) -> str:
    lower = kind.lower()
    return lower + ("es" if lower.endswith(("s", "x")) else "s")


# -- every manifest -------------------------------------------------------------------------------


def test_there_is_something_to_check() -> None:
    names = {path.relative_to(DEPLOY).as_posix() for path in manifest_files()}
    assert {
        "crds/istiocontrolplanes.yaml",
        "crds/kopfpeerings.yaml",
        "operator/namespace.yaml",
        "operator/serviceaccount.yaml",
        "operator/clusterrole.yaml",
        "operator/clusterrolebinding.yaml",
        "operator/deployment.yaml",
        "operator/service.yaml",
        "operator/peering.yaml",
    } <= names


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_every_manifest_validates_against_kubernetes_1_33(path: Path) -> None:
    """Built-in kinds against Kubernetes' schemas; custom objects against their CRD in deploy/."""
    custom = custom_resource_schemas()
    docs = documents(path)
    assert docs, f"{path} holds no object"
    for doc in docs:
        group = doc["apiVersion"].rpartition("/")[0]
        if group in KUBERNETES_GROUPS:
            kubernetes_validate.validate(doc, "1.33", strict=True)
            if doc["kind"] == "CustomResourceDefinition":
                assert sandbox_schema.validate_crd(doc) == []
        else:
            schema = custom[(doc["apiVersion"], doc["kind"])]
            prepared, pruned = sandbox_schema.prepare(doc, schema)
            assert pruned == [] and sandbox_schema.validate(prepared, schema) == []


def custom_resource_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in (DEPLOY / "crds").glob("*.yaml"):
        for doc in documents(path):
            spec = doc["spec"]
            for version in spec["versions"]:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def test_namespaced_objects_live_in_the_operator_namespace() -> None:
    one("Namespace", NAMESPACE)
    for _, doc in every_document():
        if doc["kind"] in {"ServiceAccount", "Deployment", "Service"}:
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(p.relative_to(DEPLOY).as_posix() for p in manifest_files())
    assert not (DEPLOY / "operator" / "kustomization.yaml").exists()  # breaks `apply -f dir`
    assert not (DEPLOY / "crds" / "kustomization.yaml").exists()
    (image,) = kustomization["images"]
    assert container()["image"].startswith(image["name"] + ":")


def test_the_operator_namespace_enforces_restricted_pods_and_no_injection() -> None:
    labels = one("Namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["istio-injection"] == "disabled"


# -- the ClusterRole ------------------------------------------------------------------------------


def test_cluster_role_file_is_generated_and_current(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "gen_deploy.py"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(script), *args], capture_output=True, text=True, check=False
        )

    assert run("--check").returncode == 0, "run .venv/bin/python scripts/gen_deploy.py"
    assert run("--check", "--dir", str(tmp_path)).returncode == 1  # missing
    assert run("--dir", str(tmp_path)).returncode == 0
    assert (tmp_path / "clusterrole.yaml").read_text() == (
        DEPLOY / "operator" / "clusterrole.yaml"
    ).read_text()
    (tmp_path / "clusterrole.yaml").write_text("stale\n")
    assert run("--check", "--dir", str(tmp_path)).returncode == 1


@pytest.mark.parametrize(("api_version", "kind", "namespaced"), render.KINDS)
def test_cluster_role_covers_every_rendered_kind(
    api_version: str, kind: str, namespaced: bool
) -> None:
    group = api_version.rpartition("/")[0]
    for verb in APPLY_AND_PRUNE:
        assert allows(verb, group, plural(kind)), f"{verb} {kind}"


def test_cluster_role_has_no_wildcards() -> None:
    for rule in cluster_role()["rules"]:
        for key in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert not any("*" in value for value in rule.get(key, [])), rule
        assert "nonResourceURLs" not in rule


def test_cluster_role_grants_nothing_beyond_what_the_operator_uses() -> None:
    rendered = {(v.rpartition("/")[0], plural(k)) for v, k, _ in render.KINDS}
    allowed: dict[tuple[str, str], set[str]] = {key: set(APPLY_AND_PRUNE) for key in rendered}
    allowed |= {
        ("rbac.authorization.k8s.io", "clusterroles"): APPLY_AND_PRUNE | {"bind", "escalate"},
        ("rbac.authorization.k8s.io", "roles"): APPLY_AND_PRUNE | {"bind", "escalate"},
        ("meshcanary.io", "istiocontrolplanes"): {"get", "list", "watch", "patch"},
        ("meshcanary.io", "istiocontrolplanes/status"): {"get", "patch"},
        ("meshcanary.io", "istiocontrolplanes/finalizers"): {"update"},
        ("", "pods"): READ,
        ("", "namespaces"): READ,
        ("", "events"): {"create", "patch"},
        ("apiextensions.k8s.io", "customresourcedefinitions"): READ | {"create", "patch"},
        ("kopf.dev", "clusterkopfpeerings"): {"get", "list", "watch", "patch"},
        ("kopf.dev", "kopfpeerings"): {"get", "list", "watch", "patch"},
    }
    for rule in cluster_role()["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                extra = set(rule["verbs"]) - allowed.get((group, resource), set())
                assert not extra, f"{group}/{resource}: {sorted(extra)} is more than needed"


def test_cluster_role_denies_what_it_must() -> None:
    assert not allows("get", "", "secrets") and not allows("list", "", "secrets")
    for verb in ("create", "patch", "update", "delete"):
        assert not allows(verb, "", "pods"), verb
        assert not allows(verb, "", "namespaces"), verb
    assert not allows("delete", "apiextensions.k8s.io", "customresourcedefinitions", crd.NAME)
    assert not allows("update", "meshcanary.io", "istiocontrolplanes")
    assert not allows("create", "meshcanary.io", "istiocontrolplanes")
    assert not allows("delete", "meshcanary.io", "istiocontrolplanes")
    assert not allows("bind", "rbac.authorization.k8s.io", "clusterrolebindings")


def test_crds_may_be_patched_only_by_name() -> None:
    crds = ("apiextensions.k8s.io", "customresourcedefinitions")
    for name in [*istio_crds.names(), crd.NAME]:
        assert allows("patch", *crds, name) and allows("create", *crds, name)
    assert not allows("patch", *crds, "gateways.gateway.networking.k8s.io")
    assert not allows("patch", *crds, "clusterkopfpeerings.kopf.dev")


def test_the_operator_can_write_status_events_finalizers_and_peering() -> None:
    assert allows("patch", "meshcanary.io", "istiocontrolplanes/status")
    assert allows("patch", "meshcanary.io", "istiocontrolplanes")  # kopf's finalizer
    assert allows("update", "meshcanary.io", "istiocontrolplanes/finalizers")
    assert allows("create", "", "events")
    for verb in ("get", "list", "watch", "patch"):
        assert allows(verb, "kopf.dev", "clusterkopfpeerings")
    assert allows("create", "admissionregistration.k8s.io", "validatingwebhookconfigurations")


def test_binding_grants_the_role_to_the_operator_service_account() -> None:
    binding = one("ClusterRoleBinding", "meshcanary-operator")
    account = one("ServiceAccount", "meshcanary-operator")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": cluster_role()["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }
    ]
    pod = deployment()["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]


# -- the Deployment -------------------------------------------------------------------------------


def test_the_deployment_runs_meshcanary_operator_with_peering() -> None:
    assert container()["command"] == ["meshcanary"]
    assert container()["args"][0] == "operator"
    assert deployment()["spec"]["replicas"] == 2
    assert "--standalone" not in flags()
    peering = one("ClusterKopfPeering")
    assert flags()["--peering"] == peering["metadata"]["name"] == "meshcanary"


def test_every_flag_is_one_the_cli_accepts() -> None:
    command = typer.main.get_command(app)
    operator = command.commands["operator"]  # type: ignore[attr-defined]
    accepted = {option for param in operator.params for option in param.opts}
    assert set(flags()) <= accepted, set(flags()) - accepted


def test_liveness_probe_asks_kopfs_health_endpoint() -> None:
    url = flags()["--liveness"]
    assert url == "http://0.0.0.0:8080/healthz"
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    for probe in ("livenessProbe", "startupProbe"):
        get = container()[probe]["httpGet"]
        assert get["path"] == "/healthz" and ports[get["port"]] == 8080


def test_webhook_service_certificate_and_ports_agree() -> None:
    service = one("Service", "meshcanary-operator-webhook")
    name, namespace = flags()["--webhook-service"].split(".")
    assert (name, namespace) == (service["metadata"]["name"], service["metadata"]["namespace"])
    (port,) = service["spec"]["ports"]
    assert port["port"] == 443  # the port kopf's `service` client config names
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    assert ports[port["targetPort"]] == int(flags()["--webhook-port"]) == 9443
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()

    mounts = {m["mountPath"]: m for m in container()["volumeMounts"]}
    mount = mounts[flags()["--webhook-cert-dir"]]
    assert mount["readOnly"] is True
    volumes = {v["name"]: v for v in deployment()["spec"]["template"]["spec"]["volumes"]}
    secret = volumes[mount["name"]]["secret"]
    assert secret["secretName"] == "meshcanary-operator-webhook-tls"
    assert not secret.get("optional")  # two replicas must share one certificate


def test_cert_manager_certificate_matches_the_service_and_secret() -> None:
    path = DEPLOY / "cert-manager" / "webhook-certificate.yaml"
    certificate = next(d for d in documents(path) if d["kind"] == "Certificate")
    assert certificate["spec"]["secretName"] == "meshcanary-operator-webhook-tls"
    name, namespace = flags()["--webhook-service"].split(".")
    assert f"{name}.{namespace}.svc" in certificate["spec"]["dnsNames"]
    assert certificate["metadata"]["namespace"] == NAMESPACE


def test_the_pod_is_restricted_non_root_and_read_only() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container()["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert container()["resources"]["requests"] and container()["resources"]["limits"]["memory"]
    writable = {m["mountPath"] for m in container()["volumeMounts"] if not m.get("readOnly")}
    env = {e["name"]: e.get("value") for e in container()["env"]}
    assert env["TMPDIR"] in writable  # generated files go to an emptyDir, not the image
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert labels["sidecar.istio.io/inject"] == "false"

"""The injector as a pure function: golden pods, annotations honoured, re-injection, the patch.

Golden files live in `golden/`; regenerate them with `MESHCANARY_UPDATE_GOLDEN=1 pytest ...` and
review the diff like code.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from meshcanary.sandbox.apiserver.patching import apply_json_patch
from meshcanary.sandbox.istio import injection
from meshcanary.sandbox.istio.revisions import Revision

GOLDEN = Path(__file__).parent / "golden"

SMM = Revision(
    rev="cp-v115x.istio-system",
    namespace="istio-system",
    deployment="istiod-cp-v115x",
    version="1.15.3",
    hub="docker.io/istio",
    proxy_image="docker.io/istio/proxyv2:1.15.3",
    ready=True,
    smm_style=True,
)
UPSTREAM = Revision(
    rev="1-17-2",
    namespace="istio-system",
    deployment="istiod-1-17-2",
    version="1.17.2",
    hub="gcr.io/istio-release",
    proxy_image="gcr.io/istio-release/proxyv2:1.17.2",
    ready=True,
    smm_style=False,
)


def reviews_pod(
    labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    """A pod as the ReplicaSet controller creates it (defaulted, no annotations by default)."""
    meta: dict[str, Any] = {
        "name": "reviews-v1-5d8f7c9b6c-x2x7q",
        "generateName": "reviews-v1-5d8f7c9b6c-",
        "namespace": "bookinfo",
        "labels": {"app": "reviews", "version": "v1", "pod-template-hash": "5d8f7c9b6c"}
        if labels is None
        else labels,
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "reviews-v1-5d8f7c9b6c",
                "uid": "0b6f2a3e-1111-4c1e-9e8a-3f0d5b7e9a21",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if annotations is not None:
        meta["annotations"] = annotations
    container = {
        "name": "reviews",
        "image": "docker.io/istio/examples-bookinfo-reviews-v1:1.17.0",
        "ports": [{"containerPort": 9080, "protocol": "TCP"}],
        "imagePullPolicy": "IfNotPresent",
    }
    spec = {"containers": [container], "serviceAccountName": "bookinfo-reviews"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def admission_review(pod: dict[str, Any], namespace: str = "bookinfo") -> dict[str, Any]:
    request = {
        "uid": "7f0e3c1a-2b4d-4e5f-8a9b-0c1d2e3f4a5b",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": namespace,
        "operation": "CREATE",
        "object": pod,
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def patch_of(answer: dict[str, Any]) -> list[dict[str, Any]] | None:
    response = answer["response"]
    if "patch" not in response:
        return None
    assert response["patchType"] == "JSONPatch"
    ops: list[dict[str, Any]] = orjson.loads(base64.b64decode(response["patch"]))
    return ops


def injected(pod: dict[str, Any], revision: Revision, path: str = "/inject") -> dict[str, Any]:
    """Run the webhook and apply its patch, as the API server does."""
    answer = injection.review(admission_review(pod), revision, path)
    assert answer["response"]["allowed"] is True
    ops = patch_of(answer)
    assert ops is not None, "the pod was not injected"
    result: dict[str, Any] = apply_json_patch(pod, ops)
    return result


def container(pod: dict[str, Any], name: str, field: str = "containers") -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in pod["spec"][field] if c["name"] == name]
    assert len(found) == 1, f"{len(found)} containers named {name}"
    return found[0]


def env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container(pod, "istio-proxy")["env"]}


@pytest.mark.parametrize(
    ("case", "revision"), [("smm-reviews", SMM), ("upstream-reviews", UPSTREAM)]
)
def test_golden(case: str, revision: Revision) -> None:
    result = injected(reviews_pod(), revision)
    golden = GOLDEN / f"{case}.yaml"
    if os.environ.get("MESHCANARY_UPDATE_GOLDEN"):
        golden.write_text(yaml.safe_dump(result, sort_keys=False, width=100))
    assert result == yaml.safe_load(golden.read_text())


def test_the_answer_is_an_admission_review_with_the_request_uid() -> None:
    answer = injection.review(admission_review(reviews_pod()), SMM)
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == "7f0e3c1a-2b4d-4e5f-8a9b-0c1d2e3f4a5b"


def test_smm_pods_get_the_rev_label_upstream_pods_do_not() -> None:
    smm, upstream = injected(reviews_pod(), SMM), injected(reviews_pod(), UPSTREAM)
    assert smm["metadata"]["labels"]["istio.io/rev"] == "cp-v115x.istio-system"
    assert "istio.io/rev" not in upstream["metadata"]["labels"]
    assert upstream["metadata"]["annotations"]["istio.io/rev"] == "1-17-2"
    status = orjson.loads(upstream["metadata"]["annotations"]["sidecar.istio.io/status"])
    assert status["revision"] == "1-17-2"
    assert env(upstream)["CA_ADDR"] == "istiod-1-17-2.istio-system.svc:15012"
    assert env(smm)["CA_ADDR"] == "istiod-cp-v115x.istio-system.svc:15012"


def test_proxy_image_annotation_overrides_the_image() -> None:
    newer = "docker.io/istio/proxyv2:1.16.0"
    pod = injected(reviews_pod(annotations={"sidecar.istio.io/proxyImage": newer}), SMM)
    assert container(pod, "istio-proxy")["image"] == newer
    assert container(pod, "istio-init", "initContainers")["image"] == newer


def test_proxy_image_annotation_without_a_registry_path_is_ignored() -> None:
    pod = injected(reviews_pod(annotations={"sidecar.istio.io/proxyImage": "proxyv2"}), SMM)
    assert container(pod, "istio-proxy")["image"] == "docker.io/istio/proxyv2:1.15.3"


def test_log_level_annotations() -> None:
    annotations = {
        "sidecar.istio.io/logLevel": "debug",
        "sidecar.istio.io/agentLogLevel": "all:warn",
    }
    pod = injected(reviews_pod(annotations=annotations), UPSTREAM)
    args = container(pod, "istio-proxy")["args"]
    assert "--proxyLogLevel=debug" in args
    assert "--proxyComponentLogLevel=misc:error" in args
    assert "--log_output_level=all:warn" in args


@pytest.mark.parametrize(
    ("labels", "name", "revision"),
    [
        ({"app": "reviews", "version": "v1"}, "reviews", "v1"),
        (
            {"app.kubernetes.io/name": "ratings", "app": "x", "app.kubernetes.io/version": "2"},
            "ratings",
            "2",
        ),
        ({"pod-template-hash": "5d8f7c9b6c"}, "reviews-v1", "latest"),
        ({"service.istio.io/canonical-name": "mine", "app": "x"}, "mine", "latest"),
    ],
)
def test_canonical_labels(labels: dict[str, str], name: str, revision: str) -> None:
    pod = injected(reviews_pod(labels=labels), UPSTREAM)
    assert pod["metadata"]["labels"]["service.istio.io/canonical-name"] == name
    assert pod["metadata"]["labels"]["service.istio.io/canonical-revision"] == revision
    assert pod["metadata"]["labels"]["security.istio.io/tlsMode"] == "istio"


def test_a_pod_without_metadata_maps_gets_them_created() -> None:
    pod = reviews_pod()
    del pod["metadata"]["labels"]
    pod["spec"]["initContainers"] = [{"name": "migrate", "image": "busybox"}]
    result = injected(pod, SMM)
    assert [c["name"] for c in result["spec"]["initContainers"]] == ["migrate", "istio-init"]
    # Without the pod-template-hash label, Istio cannot tell the ReplicaSet from its Deployment.
    assert (
        result["metadata"]["labels"]["service.istio.io/canonical-name"] == "reviews-v1-5d8f7c9b6c"
    )


@pytest.mark.parametrize(
    ("labels", "annotations"),
    [
        ({}, {"sidecar.istio.io/inject": "false"}),
        ({"sidecar.istio.io/inject": "false"}, {"sidecar.istio.io/inject": "true"}),
    ],
)
def test_inject_false_skips(labels: dict[str, str], annotations: dict[str, str]) -> None:
    answer = injection.review(admission_review(reviews_pod(labels, annotations)), SMM)
    assert answer["response"]["allowed"] is True
    assert patch_of(answer) is None


def test_host_network_and_system_namespaces_are_skipped() -> None:
    pod = reviews_pod()
    pod["spec"]["hostNetwork"] = True
    assert patch_of(injection.review(admission_review(pod), SMM)) is None
    system = reviews_pod()
    del system["metadata"]["namespace"]
    assert patch_of(injection.review(admission_review(system, "kube-system"), SMM)) is None


def test_injecting_twice_with_the_same_revision_changes_nothing() -> None:
    once = injected(reviews_pod(), SMM)
    assert patch_of(injection.review(admission_review(once), SMM)) is None


def test_two_overlapping_webhooks_leave_one_sidecar_of_the_last_revision() -> None:
    twice = injected(injected(reviews_pod(), SMM), UPSTREAM)
    assert [c["name"] for c in twice["spec"]["containers"]] == ["reviews", "istio-proxy"]
    assert [c["name"] for c in twice["spec"]["initContainers"]] == ["istio-init"]
    assert container(twice, "istio-proxy")["image"] == "gcr.io/istio-release/proxyv2:1.17.2"
    assert env(twice)["ISTIO_META_APP_CONTAINERS"] == "reviews"
    annotations = twice["metadata"]["annotations"]
    assert annotations["istio.io/rev"] == "1-17-2"
    assert orjson.loads(annotations["sidecar.istio.io/status"])["revision"] == "1-17-2"
    # The SMM label the first injector wrote survives: upstream never touches it.
    assert twice["metadata"]["labels"]["istio.io/rev"] == "cp-v115x.istio-system"
    assert len(twice["spec"]["volumes"]) == len({v["name"] for v in twice["spec"]["volumes"]})


def test_cluster_and_network_from_the_webhook_path() -> None:
    pod = injected(reviews_pod(), UPSTREAM, "/inject/cluster/east/net/network2")
    assert env(pod)["ISTIO_META_CLUSTER_ID"] == "east"
    assert env(pod)["ISTIO_META_NETWORK"] == "network2"
    assert pod["metadata"]["labels"]["topology.istio.io/network"] == "network2"


def test_proxy_env_parses_upstream_path_syntax() -> None:
    assert injection.proxy_env("/inject") == {}
    assert injection.proxy_env("/inject/cluster/c1/net/n--slash--1/extra") == {
        "ISTIO_META_CLUSTER_ID": "c1",
        "ISTIO_META_NETWORK": "n/1",
    }


def test_resource_annotations_and_traffic_annotations() -> None:
    annotations = {
        "sidecar.istio.io/proxyCPU": "50m",
        "sidecar.istio.io/proxyMemoryLimit": "256Mi",
        "traffic.sidecar.istio.io/excludeInboundPorts": "8080",
        "traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.0.0.0/8",
    }
    pod = injected(reviews_pod(annotations=annotations), UPSTREAM)
    expected = {"requests": {"cpu": "50m"}, "limits": {"memory": "256Mi"}}
    assert container(pod, "istio-proxy")["resources"] == expected
    args = container(pod, "istio-init", "initContainers")["args"]
    assert args[args.index("-d") + 1] == "15090,15021,8080,15020"
    assert args[args.index("-x") + 1] == "10.0.0.0/8"


def test_app_scrape_annotations_are_handed_to_the_agent() -> None:
    annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}
    pod = injected(reviews_pod(annotations=annotations), UPSTREAM)
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "15020"
    scrape = orjson.loads(env(pod)["ISTIO_PROMETHEUS_ANNOTATIONS"])
    assert scrape == {"scrape": "true", "port": "9090"}


def test_interception_mode_none_has_no_init_container() -> None:
    pod = reviews_pod(annotations={"sidecar.istio.io/interceptionMode": "NONE"})
    result = injected(pod, UPSTREAM)
    assert "initContainers" not in result["spec"]
    status = orjson.loads(result["metadata"]["annotations"]["sidecar.istio.io/status"])
    assert status["initContainers"] is None


def test_a_malformed_request_is_refused() -> None:
    body = {"apiVersion": "admission.k8s.io/v1", "request": {"uid": "u", "object": "nope"}}
    response = injection.review(body, SMM)["response"]
    assert response["allowed"] is False and response["status"]["message"]


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"name": "solo"}, injection.Workload("solo", "Pod", "v1")),
        (
            {
                "name": "backup-28112345-abcde",
                "generateName": "backup-28112345-",
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": "backup-28112345",
                        "controller": True,
                    }
                ],
            },
            injection.Workload("backup", "CronJob", "batch/v1beta1"),
        ),
        (
            {
                "name": "db-0",
                "generateName": "db-",
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "StatefulSet",
                        "name": "db",
                        "controller": True,
                    }
                ],
            },
            injection.Workload("db", "StatefulSet", "apps/v1"),
        ),
    ],
)
def test_workload_of(meta: dict[str, Any], expected: injection.Workload) -> None:
    assert injection.workload_of(meta) == expected


def test_json_patch_escapes_and_applies() -> None:
    before = {"a": {"x/y": 1, "gone": 2}, "l": [1, 2], "m": [1, 2]}
    after = {"a": {"x/y": 3, "t~": 4}, "l": [1, 2, 3], "m": [2]}
    ops = injection.json_patch(before, after)
    assert {"op": "replace", "path": "/a/x~1y", "value": 3} in ops
    assert {"op": "add", "path": "/a/t~0", "value": 4} in ops
    assert {"op": "add", "path": "/l/2", "value": 3} in ops
    assert apply_json_patch(before, ops) == after

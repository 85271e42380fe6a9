"""Proxies derived from pod JSON, and the live count per revision that gates deletion."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshcanary.mesh import proxies
from meshcanary.mesh.proxies import Proxy
from meshcanary.mesh.versions import Version


def pod(
    name: str = "web-7d9c-abcde",
    *,
    namespace: str = "shop",
    annotations: dict[str, str] | None = None,
    image: str | None = "docker.io/istio/proxyv2:1.15.3",
    native: bool = False,
    phase: str = "Running",
    ready: str | None = "True",
    owner: tuple[str, str] | None = ("ReplicaSet", "web-7d9c"),
    deleting: bool = False,
) -> dict[str, Any]:
    containers: list[dict[str, Any]] = [{"name": "app", "image": "shop/web:2"}]
    init: list[dict[str, Any]] = [{"name": "istio-init", "image": "istio/proxyv2:1.15.3"}]
    if image is not None:
        sidecar = {"name": "istio-proxy", "image": image}
        if native:
            init.append({**sidecar, "restartPolicy": "Always"})
        else:
            containers.append(sidecar)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations is not None:
        metadata["annotations"] = annotations
    if owner is not None:
        kind, owner_name = owner
        metadata["ownerReferences"] = [
            {"kind": "Other", "name": "not-the-controller"},
            {"kind": kind, "name": owner_name, "controller": True},
        ]
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {"phase": phase}
    if ready is not None:
        status["conditions"] = [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": ready},
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": containers, "initContainers": init},
        "status": status,
    }


def rev(value: str) -> dict[str, str]:
    return {"istio.io/rev": value}


def status(revision: str) -> dict[str, str]:
    return {"sidecar.istio.io/status": json.dumps({"revision": revision, "containers": ["x"]})}


def test_an_injected_pod() -> None:
    proxy = proxies.proxy_from_pod(pod(annotations=rev("cp-v115x.istio-system")))
    assert proxy == Proxy(
        namespace="shop",
        pod="web-7d9c-abcde",
        owner_kind="ReplicaSet",
        owner_name="web-7d9c",
        revision="cp-v115x.istio-system",
        version=Version(1, 15, 3),
        ready=True,
        live=True,
        terminating=False,
    )


def test_a_pod_without_sidecar_has_no_proxy() -> None:
    assert proxies.proxy_from_pod(pod(image=None, annotations=rev("x"))) is None
    assert proxies.proxy_from_pod({}) is None


def test_istio_init_alone_is_not_a_proxy() -> None:
    bare = pod(image=None)
    bare["spec"]["initContainers"].append({"name": "istio-proxy", "image": "proxyv2:1.20.0"})
    assert proxies.proxy_from_pod(bare) is None


def test_native_sidecar() -> None:
    proxy = proxies.proxy_from_pod(pod(native=True, image="istio/proxyv2:1.20.1"))
    assert proxy is not None and proxy.version == Version(1, 20, 1)


def test_revision_falls_back_to_sidecar_status() -> None:
    proxy = proxies.proxy_from_pod(pod(annotations=status("1-15-0")))
    assert proxy is not None and proxy.revision == "1-15-0"


def test_annotation_wins_over_status() -> None:
    proxy = proxies.proxy_from_pod(pod(annotations={**status("old"), **rev("new")}))
    assert proxy is not None and proxy.revision == "new"


@pytest.mark.parametrize(
    "annotations",
    [
        None,
        {},
        {"sidecar.istio.io/status": "not json"},
        {"sidecar.istio.io/status": "[1]"},
        {"sidecar.istio.io/status": '{"revision": ""}'},
        {"sidecar.istio.io/status": '{"revision": 3}'},
        {"istio.io/rev": ""},
    ],
)
def test_unknown_revision(annotations: dict[str, str] | None) -> None:
    proxy = proxies.proxy_from_pod(pod(annotations=annotations))
    assert proxy is not None and proxy.revision is None


def test_the_pod_label_does_not_define_the_revision() -> None:
    labelled = pod()
    labelled["metadata"]["labels"] = rev("cp.ns")
    proxy = proxies.proxy_from_pod(labelled)
    assert proxy is not None and proxy.revision is None


@pytest.mark.parametrize(
    ("phase", "deleting", "live", "terminating"),
    [
        ("Running", False, True, False),
        ("Pending", False, True, False),
        ("Unknown", False, True, False),
        ("Succeeded", False, False, False),
        ("Failed", False, False, False),
        ("Running", True, True, True),  # terminating pods count until gone
        ("Failed", True, False, True),
    ],
)
def test_liveness(phase: str, deleting: bool, live: bool, terminating: bool) -> None:
    proxy = proxies.proxy_from_pod(pod(phase=phase, deleting=deleting))
    assert proxy is not None
    assert (proxy.live, proxy.terminating) == (live, terminating)


@pytest.mark.parametrize(("condition", "ready"), [("True", True), ("False", False), (None, False)])
def test_readiness(condition: str | None, ready: bool) -> None:
    proxy = proxies.proxy_from_pod(pod(ready=condition))
    assert proxy is not None and proxy.ready is ready


def test_bare_pod_and_unknown_image() -> None:
    proxy = proxies.proxy_from_pod(pod(owner=None, image="istio/proxyv2:latest"))
    assert proxy is not None
    assert (proxy.owner_kind, proxy.owner_name, proxy.version) == (None, None, None)
    no_image = pod()
    del no_image["spec"]["containers"][1]["image"]
    proxy = proxies.proxy_from_pod(no_image)
    assert proxy is not None and proxy.version is None


def test_count_by_revision_counts_live_proxies_only() -> None:
    pods = [
        pod("a", annotations=rev("old")),
        pod("b", annotations=rev("new")),
        pod("c", annotations=rev("new"), deleting=True),
        pod("job", annotations=rev("old"), phase="Succeeded", owner=("Job", "j")),
        pod("evicted", annotations=rev("old"), phase="Failed"),
        pod("manual", annotations=None),
        pod("plain", image=None),
    ]
    found = proxies.proxies_from_pods(pods)
    assert [p.pod for p in found] == ["a", "b", "c", "job", "evicted", "manual"]
    assert proxies.count_by_revision(found) == {"<unknown>": 1, "new": 2, "old": 1}


def test_finished_pods_never_keep_a_revision_in_use() -> None:
    finished = [pod(str(i), annotations=rev("old"), phase="Succeeded") for i in range(3)]
    assert proxies.count_by_revision(proxies.proxies_from_pods(finished)) == {}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", None]),
            st.sampled_from(["Running", "Pending", "Succeeded", "Failed"]),
            st.booleans(),
        ),
        max_size=20,
    )
)
def test_counts_add_up_to_the_live_proxies(specs: list[tuple[str | None, str, bool]]) -> None:
    pods = [
        pod(f"p{i}", annotations=rev(r) if r else None, phase=phase, deleting=deleting)
        for i, (r, phase, deleting) in enumerate(specs)
    ]
    found = proxies.proxies_from_pods(pods)
    counts = proxies.count_by_revision(found)
    assert sum(counts.values()) == sum(
        phase not in ("Succeeded", "Failed") for _, phase, _ in specs
    )
    assert all(count > 0 for count in counts.values())

"""Mesh-state analyzers: each code triggered by a fixture, and not by its corrected twin."""

from __future__ import annotations

from tests.unit.validate import builders as b

from meshcanary.mesh.versions import Version, parse
from meshcanary.validate import engine
from meshcanary.validate.findings import Finding
from meshcanary.validate.snapshot import ValidationSnapshot

A = ("cp-a", "1.15.3")
B = ("cp-b", "1.17.2")
REV = "istio.io/rev"


def run(
    snapshot: ValidationSnapshot, target: Version | None = None, **options: object
) -> list[Finding]:
    return engine.analyze(snapshot, target, **options)  # type: ignore[arg-type]


def codes(
    snapshot: ValidationSnapshot, target: Version | None = None, **options: object
) -> list[str]:
    return [f.code for f in run(snapshot, target, **options)]


def attached(name: str, cp: str = "cp-a") -> dict[str, object]:
    return b.namespace(name, **{REV: b.rev(cp)})


def test_a_healthy_mesh_has_no_findings() -> None:
    snapshot = b.mesh(A, namespaces=[attached("app")], pods=[b.pod("app", "web", "cp-a")])
    assert run(snapshot, parse("1.17")) == []


def test_both_injection_labels() -> None:
    both = b.namespace("app", **{REV: b.rev("cp-a"), "istio-injection": "disabled"})
    assert codes(b.mesh(A, namespaces=[both])) == ["MC0201"]
    assert codes(b.mesh(A, namespaces=[attached("app")])) == []


def test_overlapping_webhooks() -> None:
    stale = b.catch_all_webhook("stale-injector", "cp-a")
    overlapping = b.mesh(A, namespaces=[attached("app")], webhooks=[stale])
    found = run(overlapping)
    assert [f.code for f in found] == ["MC0202"]
    assert "stale-injector" in found[0].message
    assert codes(b.mesh(A, namespaces=[attached("app")])) == []


def test_label_naming_a_missing_revision() -> None:
    missing = b.namespace("app", **{REV: "gone.istio-system"})
    assert codes(b.mesh(A, namespaces=[missing])) == ["MC0203"]
    assert codes(b.mesh(A, namespaces=[attached("app")])) == []


def test_webhook_calling_a_missing_service() -> None:
    dangling = b.validating_webhook("istio-validator-old-istio-system", "istiod-old")
    live = b.validating_webhook("istio-validator-cp-a-istio-system", "istiod-cp-a")
    found = run(b.mesh(A, validating=[dangling, live]))
    assert [(f.code, f.resource.name) for f in found] == [
        ("MC0204", "istio-validator-old-istio-system")
    ]
    # a cluster-wide object: not reported when validating some namespaces only
    assert (
        codes(b.mesh(A, namespaces=[attached("app")], validating=[dangling]), namespaces=["app"])
        == []
    )


def test_injection_webhook_whose_istiod_is_gone() -> None:
    snapshot = b.mesh(A)
    no_service = ValidationSnapshot(mesh=snapshot.mesh, services=[])
    assert codes(no_service) == ["MC0204"]


def test_proxy_newer_than_its_control_plane() -> None:
    override = {"sidecar.istio.io/proxyImage": "docker.io/istio/proxyv2:1.17.2"}
    newer = b.pod("app", "web", "cp-a", "1.17.2", annotations=override)
    found = run(b.mesh(A, namespaces=[attached("app")], pods=[newer]))
    assert [f.code for f in found] == ["MC0205"]
    assert "proxyImage" in found[0].message
    downgraded = b.pod("app", "web", "cp-a", "1.16.0")
    assert (
        "downgraded" in run(b.mesh(A, namespaces=[attached("app")], pods=[downgraded]))[0].message
    )
    patch_newer = b.pod("app", "web", "cp-a", "1.15.9")
    assert codes(b.mesh(A, namespaces=[attached("app")], pods=[patch_newer])) == []


def test_proxy_too_far_behind() -> None:
    old = b.pod("app", "web", "cp-b", "1.15.3")
    assert codes(b.mesh(B, namespaces=[attached("app", "cp-b")], pods=[old])) == ["MC0207"]
    ok = b.pod("app", "web", "cp-b", "1.16.1")
    assert codes(b.mesh(B, namespaces=[attached("app", "cp-b")], pods=[ok])) == []


def test_upgrade_jump_larger_than_supported() -> None:
    snapshot = b.mesh(A, namespaces=[attached("app")])
    assert codes(snapshot, parse("1.18")) == ["MC0206"]
    assert codes(snapshot, parse("1.17")) == []
    assert codes(snapshot, parse("1.17"), in_place=True) == ["MC0206"]
    assert codes(snapshot, parse("1.16"), in_place=True) == []
    # kept for a namespace the control plane serves, dropped for one it does not
    assert codes(snapshot, parse("1.18"), namespaces=["app"]) == ["MC0206"]
    other = b.mesh(A, namespaces=[attached("app"), b.namespace("plain")])
    assert codes(other, parse("1.18"), namespaces=["plain"]) == []


def test_pods_not_restarted_since_relabelling() -> None:
    relabelled = attached("app", "cp-b")
    pods = [b.pod("app", "web", "cp-a"), b.pod("app", "api", "cp-b", "1.17.2")]
    found = run(b.mesh(A, B, namespaces=[relabelled], pods=pods))
    assert [f.code for f in found] == ["MC0208"]
    assert "1 of 2" in found[0].message
    restarted = [b.pod("app", "web", "cp-b", "1.17.2")]
    assert codes(b.mesh(A, B, namespaces=[relabelled], pods=restarted)) == []


def test_bare_pods() -> None:
    bare = b.pod("app", "debug", "cp-a", owned=False)
    found = run(b.mesh(A, namespaces=[attached("app")], pods=[bare]))
    assert [(f.code, str(f.resource)) for f in found] == [("MC0209", "Pod/app/debug")]
    owned = b.pod("app", "debug", "cp-a")
    assert codes(b.mesh(A, namespaces=[attached("app")], pods=[owned])) == []
    unmeshed = b.pod("plain", "debug", owned=False)
    assert codes(b.mesh(A, namespaces=[b.namespace("plain")], pods=[unmeshed])) == []
    finished = b.pod("app", "debug", "cp-a", owned=False, phase="Succeeded")
    assert codes(b.mesh(A, namespaces=[attached("app")], pods=[finished])) == []

"""Istio's shared CRDs: definitions per Istio minor; the install/upgrade/never-downgrade plan."""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshcanary.controlplane import istio_crds, istio_crds_sync
from meshcanary.controlplane.istio_crds import Action
from meshcanary.kube import apply, errors, retry
from meshcanary.mesh import versions
from meshcanary.mesh.versions import Version
from meshcanary.sandbox.apiserver import schema as sandbox_schema

V1_13, V1_15, V1_17, V1_22 = Version(1, 13, 9), Version(1, 15, 3), Version(1, 17, 2), Version(1, 22)
V1_26, V1_27, V1_28, V1_30 = Version(1, 26), Version(1, 27), Version(1, 28), Version(1, 30)

THE_FOURTEEN = {
    "virtualservices.networking.istio.io",
    "destinationrules.networking.istio.io",
    "gateways.networking.istio.io",
    "serviceentries.networking.istio.io",
    "sidecars.networking.istio.io",
    "envoyfilters.networking.istio.io",
    "workloadentries.networking.istio.io",
    "workloadgroups.networking.istio.io",
    "proxyconfigs.networking.istio.io",
    "authorizationpolicies.security.istio.io",
    "peerauthentications.security.istio.io",
    "requestauthentications.security.istio.io",
    "telemetries.telemetry.istio.io",
    "wasmplugins.extensions.istio.io",
}
VS = "virtualservices.networking.istio.io"
AP = "authorizationpolicies.security.istio.io"
PA = "peerauthentications.security.istio.io"


def by_name(crds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {crd["metadata"]["name"]: crd for crd in crds}


def served(crd: dict[str, Any]) -> list[str]:
    return sorted(v["name"] for v in crd["spec"]["versions"] if v["served"])


def storage(crd: dict[str, Any]) -> str:
    (name,) = [v["name"] for v in crd["spec"]["versions"] if v["storage"]]
    return str(name)


def as_installed(crd: dict[str, Any], stored: list[str] | None = None) -> dict[str, Any]:
    """A CRD as the API server returns it after applying `crd`: status.storedVersions and all."""
    obj = copy.deepcopy(crd)
    obj["metadata"]["resourceVersion"] = "42"
    obj["status"] = {"storedVersions": stored or [storage(crd)]}
    return obj


def installed_for(version: Version) -> list[dict[str, Any]]:
    return [as_installed(crd) for crd in istio_crds.definitions(version)]


# -- definitions ----------------------------------------------------------------------------------


def test_every_supported_minor_defines_the_fourteen_kinds() -> None:
    for minor in versions.SUPPORTED_MINORS:
        names = set(by_name(istio_crds.definitions(minor)))
        expected = THE_FOURTEEN | (
            {"trafficextensions.extensions.istio.io"} if minor >= V1_30 else set()
        )
        assert names == expected, minor


@pytest.mark.parametrize(
    ("version", "name", "expected_served", "expected_storage"),
    [
        (V1_13, VS, ["v1alpha3", "v1beta1"], "v1alpha3"),
        (V1_15, VS, ["v1alpha3", "v1beta1"], "v1alpha3"),
        (V1_22, VS, ["v1", "v1alpha3", "v1beta1"], "v1beta1"),
        (V1_26, VS, ["v1", "v1alpha3", "v1beta1"], "v1beta1"),
        (V1_27, VS, ["v1", "v1alpha3", "v1beta1"], "v1"),
        (V1_15, AP, ["v1beta1"], "v1beta1"),
        (V1_17, AP, ["v1", "v1beta1"], "v1beta1"),
        (V1_28, AP, ["v1", "v1beta1"], "v1"),
        (V1_17, "requestauthentications.security.istio.io", ["v1", "v1beta1"], "v1beta1"),
        (V1_17, PA, ["v1beta1"], "v1beta1"),
        (V1_22, PA, ["v1", "v1beta1"], "v1beta1"),
        (V1_28, PA, ["v1", "v1beta1"], "v1"),
        (V1_17, "telemetries.telemetry.istio.io", ["v1alpha1"], "v1alpha1"),
        (V1_30, "telemetries.telemetry.istio.io", ["v1", "v1alpha1"], "v1alpha1"),
        (V1_30, "envoyfilters.networking.istio.io", ["v1alpha3"], "v1alpha3"),
        (V1_30, "proxyconfigs.networking.istio.io", ["v1beta1"], "v1beta1"),
        (V1_30, "wasmplugins.extensions.istio.io", ["v1alpha1"], "v1alpha1"),
    ],
)
def test_served_and_storage_versions_follow_upstream(
    version: Version, name: str, expected_served: list[str], expected_storage: str
) -> None:
    crd = by_name(istio_crds.definitions(version))[name]
    assert served(crd) == expected_served
    assert storage(crd) == expected_storage


def test_names_scope_labels_and_subresources() -> None:
    crds = by_name(istio_crds.definitions(V1_22))
    vs = crds[VS]
    assert vs["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "meshcanary",
        "meshcanary.io/istio-crds-version": "1.22.0",
    }
    assert vs["spec"]["group"] == "networking.istio.io"
    assert vs["spec"]["scope"] == "Namespaced"
    assert vs["spec"]["names"] == {
        "categories": ["istio-io", "networking-istio-io"],
        "kind": "VirtualService",
        "listKind": "VirtualServiceList",
        "plural": "virtualservices",
        "shortNames": ["vs"],
        "singular": "virtualservice",
    }
    assert "shortNames" not in crds["sidecars.networking.istio.io"]["spec"]["names"]
    for crd in crds.values():
        assert crd["spec"]["scope"] == "Namespaced"
        for version in crd["spec"]["versions"]:
            assert version["subresources"] == {"status": {}}
            properties = version["schema"]["openAPIV3Schema"]["properties"]
            assert properties["spec"]["x-kubernetes-preserve-unknown-fields"] is True
            assert properties["status"]["x-kubernetes-preserve-unknown-fields"] is True


def test_printer_columns_as_upstream() -> None:
    def columns(version: Version, name: str) -> list[str]:
        crd = by_name(istio_crds.definitions(version))[name]
        found = {
            tuple(c["name"] for c in v.get("additionalPrinterColumns", []))
            for v in crd["spec"]["versions"]
        }
        assert len(found) == 1  # the same columns in every version
        return list(found.pop())

    assert columns(V1_15, VS) == ["Gateways", "Hosts", "Age"]
    assert columns(V1_15, "serviceentries.networking.istio.io") == [
        "Hosts",
        "Location",
        "Resolution",
        "Age",
    ]
    assert columns(V1_15, PA) == ["Mode", "Age"]
    assert columns(V1_17, AP) == []  # Action and `ap` arrived in 1.22
    assert columns(V1_22, AP) == ["Action", "Age"]
    assert by_name(istio_crds.definitions(V1_22))[AP]["spec"]["names"]["shortNames"] == ["ap"]
    assert "shortNames" not in by_name(istio_crds.definitions(V1_17))[AP]["spec"]["names"]


@pytest.mark.parametrize("minor", versions.SUPPORTED_MINORS, ids=str)
def test_definitions_validate_against_kubernetes_and_are_structural(minor: Version) -> None:
    for crd in istio_crds.definitions(minor):
        kubernetes_validate.validate(crd, "1.33", strict=True)
        assert sandbox_schema.validate_crd(crd) == []


def test_definitions_are_deterministic_and_share_nothing() -> None:
    first = istio_crds.definitions(V1_22)
    first[0]["spec"]["versions"].clear()
    first[0]["metadata"]["labels"]["mutated"] = "yes"
    assert json.dumps(istio_crds.definitions(V1_22)) == json.dumps(istio_crds.definitions(V1_22))
    again = istio_crds.definitions(V1_22)[0]
    assert again["spec"]["versions"] and "mutated" not in again["metadata"]["labels"]


@pytest.mark.parametrize("version", [Version(1, 12, 9), Version(1, 31), Version(2, 0)], ids=str)
def test_unsupported_versions_are_refused(version: Version) -> None:
    with pytest.raises(ValueError, match="not supported"):
        istio_crds.definitions(version)


def test_definition_of_one_crd() -> None:
    assert istio_crds.definition(VS, V1_15) == by_name(istio_crds.definitions(V1_15))[VS]
    assert istio_crds.definition("trafficextensions.extensions.istio.io", V1_26) is None
    assert istio_crds.definition("gateways.gateway.networking.k8s.io", V1_26) is None


def test_api_version_rank_is_kubernetes_priority() -> None:
    names = ["v1alpha1", "v1", "v1beta1", "v1alpha3", "v2", "v1beta2", "foo", "v2alpha1"]
    ordered = sorted(names, key=istio_crds.api_version_rank, reverse=True)
    assert ordered == ["v2", "v1", "v1beta2", "v1beta1", "v2alpha1", "v1alpha3", "v1alpha1", "foo"]


# -- plan: install --------------------------------------------------------------------------------


def test_empty_cluster_installs_everything_for_the_newest() -> None:
    decisions = istio_crds.decide([], V1_15)
    assert {d.action for d in decisions} == {Action.INSTALL}
    assert istio_crds.plan([], V1_15) == istio_crds.definitions(V1_15)
    assert str(decisions[0]) == (
        f"installed {VS}: Istio 1.15.3: serves v1beta1, v1alpha3; stores v1alpha3"
    )


def test_only_missing_crds_are_installed() -> None:
    cluster = [c for c in installed_for(V1_15) if c["metadata"]["name"] != PA]
    cluster.append({"metadata": {"name": "gateways.gateway.networking.k8s.io"}})  # not Istio's
    planned = istio_crds.plan(cluster, V1_15)
    assert [c["metadata"]["name"] for c in planned] == [PA]


def test_a_crd_being_deleted_is_left_to_the_api_server() -> None:
    cluster = installed_for(V1_15)
    cluster[0]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    decisions = istio_crds.decide(cluster, V1_17)
    assert decisions[0].action is Action.KEEP and "being deleted" in decisions[0].reason


# -- plan: upgrade --------------------------------------------------------------------------------


def test_same_version_again_changes_nothing() -> None:
    assert istio_crds.plan(installed_for(V1_15), V1_15) == []
    assert istio_crds.plan(installed_for(V1_22), V1_22) == []


def test_1_15_to_1_17_upgrades_only_what_gains_v1() -> None:
    decisions = {d.name: d for d in istio_crds.decide(installed_for(V1_15), V1_17)}
    upgraded = sorted(name for name, d in decisions.items() if d.action is Action.UPGRADE)
    assert upgraded == [AP, "requestauthentications.security.istio.io"]
    ap = decisions[AP]
    assert ap.manifest is not None
    assert served(ap.manifest) == ["v1", "v1beta1"] and storage(ap.manifest) == "v1beta1"
    assert ap.manifest["metadata"]["labels"]["meshcanary.io/istio-crds-version"] == "1.17.2"
    assert ap.reason == "Istio 1.17.2 adds serves v1"
    assert ap.resource_version == "42"
    assert decisions[VS].action is Action.KEEP
    assert decisions[VS].reason == "already serves what Istio 1.17.2 needs"


def test_1_15_to_1_22_adds_v1_short_names_and_columns() -> None:
    decisions = {d.name: d for d in istio_crds.decide(installed_for(V1_15), V1_22)}
    assert decisions[VS].reason == "Istio 1.22.0 adds serves v1, stores v1beta1"
    assert decisions[AP].reason == (
        "Istio 1.22.0 adds serves v1, short name ap, column Action, column Age"
    )
    unchanged = {name for name, d in decisions.items() if d.action is Action.KEEP}
    assert unchanged == {
        "envoyfilters.networking.istio.io",
        "proxyconfigs.networking.istio.io",
        "wasmplugins.extensions.istio.io",
    }


def test_storage_moves_forward_and_stored_versions_stay_served() -> None:
    """1.26 -> 1.27 moves networking storage to v1; what was stored remains in spec.versions."""
    cluster = [
        as_installed(crd, stored=["v1alpha3", "v1beta1"]) for crd in istio_crds.definitions(V1_26)
    ]
    upgrade = by_name(istio_crds.plan(cluster, V1_27))[VS]
    assert storage(upgrade) == "v1"
    assert {"v1alpha3", "v1beta1"} <= set(served(upgrade))


def test_upgrade_carries_over_versions_the_new_definition_lacks() -> None:
    """A CRD from elsewhere serving (or having stored) a version Istio never defined keeps it."""
    foreign = as_installed(istio_crds.definitions(V1_15)[0], stored=["v1alpha2", "v1alpha3"])
    foreign["metadata"]["labels"] = {"app": "istio-pilot"}
    extra = copy.deepcopy(foreign["spec"]["versions"][0])
    foreign["spec"]["versions"] += [
        {**extra, "name": "v1alpha2", "served": False, "storage": False},
        {**extra, "name": "v1alpha9", "served": True, "storage": False},
        {**extra, "name": "v1alpha8", "served": False, "storage": False},
    ]
    foreign["spec"]["names"]["shortNames"] = ["vs", "virtual"]
    upgrade = by_name(istio_crds.plan([foreign], V1_22))[VS]
    assert served(upgrade) == ["v1", "v1alpha2", "v1alpha3", "v1alpha9", "v1beta1"]
    assert storage(upgrade) == "v1beta1"
    assert upgrade["spec"]["names"]["shortNames"] == ["vs", "virtual"]
    kubernetes_validate.validate(upgrade, "1.33", strict=True)


def test_a_helm_installed_older_crd_is_upgraded() -> None:
    helm = as_installed(istio_crds.definitions(V1_15)[0])
    helm["metadata"]["labels"] = {"app": "istio-pilot", "release": "istio"}
    (decision,) = [d for d in istio_crds.decide([helm], V1_22) if d.name == VS]
    assert decision.action is Action.UPGRADE


# -- plan: never downgrade ------------------------------------------------------------------------


def test_a_crd_installed_for_1_17_is_left_alone_with_only_1_15() -> None:
    decisions = istio_crds.decide(installed_for(V1_17), V1_15)
    assert all(d.action is Action.KEEP for d in decisions)
    assert istio_crds.plan(installed_for(V1_17), V1_15) == []
    ap = {d.name: d for d in decisions}[AP]
    assert ap.reason == "installed for Istio 1.17.2, newer than 1.15.3"


def test_newer_storage_without_label_is_left_alone() -> None:
    """CRDs from a newer Helm/istioctl install carry no meshcanary label: storage decides."""
    helm = [as_installed(crd) for crd in istio_crds.definitions(V1_28)]
    for crd in helm:
        crd["metadata"]["labels"] = {"app": "istio-pilot"}
    decisions = {d.name: d for d in istio_crds.decide(helm, V1_22)}
    assert all(d.action is Action.KEEP for d in decisions.values())
    assert decisions[VS].reason == "stores v1, newer than Istio 1.22.0's v1beta1"


def test_newer_served_versions_without_label_are_kept() -> None:
    helm = [as_installed(crd) for crd in istio_crds.definitions(V1_22)]
    for crd in helm:
        del crd["metadata"]["labels"]
    assert istio_crds.plan(helm, V1_17) == []


def test_a_1_26_install_after_1_28_never_loses_v1_storage() -> None:
    assert istio_crds.plan(installed_for(V1_28), V1_26) == []


version_strategy = st.builds(
    Version, st.just(1), st.integers(min_value=13, max_value=30), st.integers(0, 12)
)


@given(first=version_strategy, second=version_strategy)
def test_plans_never_downgrade_and_never_drop_a_version(first: Version, second: Version) -> None:
    """Whatever order control planes come in, storage never moves back, no version disappears."""
    cluster = by_name(installed_for(first))
    for crd in istio_crds.plan(list(cluster.values()), second):
        before = cluster.get(crd["metadata"]["name"])
        if before is not None:
            assert set(served(before)) <= set(served(crd))
            assert istio_crds.api_version_rank(storage(crd)) >= istio_crds.api_version_rank(
                storage(before)
            )
            assert second > first
        cluster[crd["metadata"]["name"]] = as_installed(crd)
    again = istio_crds.plan(list(cluster.values()), max(first, second))
    assert again == []


@given(order=st.permutations([V1_13, V1_15, V1_17, V1_22, V1_27, V1_30]))
def test_the_end_state_depends_only_on_the_newest(order: list[Version]) -> None:
    cluster: dict[str, dict[str, Any]] = {}
    for version in order:
        for crd in istio_crds.plan(list(cluster.values()), version):
            cluster[crd["metadata"]["name"]] = as_installed(crd)
    fresh = by_name(istio_crds.definitions(V1_30))
    assert {n: (served(c), storage(c)) for n, c in cluster.items()} == {
        n: (served(c), storage(c)) for n, c in fresh.items()
    }


def test_plan_is_deterministic() -> None:
    cluster = installed_for(V1_15)
    assert json.dumps(istio_crds.plan(cluster, V1_28)) == json.dumps(
        istio_crds.plan(list(reversed(cluster)), V1_28)
    )


# -- ensure (the cluster replaced by a fake that honours resourceVersion preconditions) ----------


class FakeCluster:
    """CRDs by name; applies bump resourceVersion, keep storedVersions, honour preconditions."""

    def __init__(self) -> None:
        self.crds: dict[str, dict[str, Any]] = {}
        self.revision = 100
        self.applied: list[dict[str, Any]] = []
        self.reads = 0
        self.on_read: list[Any] = []

    async def installed(self, _client: Any, **_options: Any) -> list[dict[str, Any]]:
        self.reads += 1
        found = copy.deepcopy(list(self.crds.values()))
        if self.on_read:
            self.on_read.pop(0)()
        return found

    async def apply_manifest(self, _client: Any, manifest: Any, **options: Any) -> Any:
        name = manifest["metadata"]["name"]
        wanted = manifest["metadata"].get("resourceVersion")
        current = self.crds.get(name)
        if wanted and (current is None or current["metadata"]["resourceVersion"] != wanted):
            raise errors.Conflict("the object has been modified", code=409, reason="Conflict")
        self.applied.append({"manifest": manifest, **options})
        if options.get("dry_run"):
            return manifest
        self.touch(name, manifest)
        return self.crds[name]

    def touch(self, name: str, manifest: dict[str, Any] | None = None) -> None:
        current = self.crds.get(name)
        obj = copy.deepcopy(manifest or current)
        assert obj is not None
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        stored = set(((current or {}).get("status") or {}).get("storedVersions") or [])
        obj["status"] = {"storedVersions": sorted(stored | {storage(obj)})}
        self.crds[name] = obj


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    cluster = FakeCluster()
    monkeypatch.setattr(istio_crds_sync, "installed", cluster.installed)
    monkeypatch.setattr(apply, "apply_manifest", cluster.apply_manifest)
    return cluster


NO_WAIT = retry.Backoff(attempts=3, initial=0, jitter=0)
NO_CLIENT: Any = object()
"""The fake replaces every request, so no client is needed."""


async def test_ensure_installs_upgrades_and_never_downgrades(fake: FakeCluster) -> None:
    installed = await istio_crds_sync.ensure(NO_CLIENT, [V1_15], backoff=NO_WAIT)
    assert len(installed) == 14 and set(fake.crds) == THE_FOURTEEN
    assert await istio_crds_sync.ensure(NO_CLIENT, [V1_15], backoff=NO_WAIT) == []
    upgraded = await istio_crds_sync.ensure(NO_CLIENT, [V1_13, V1_17, V1_15], backoff=NO_WAIT)
    assert upgraded == [
        f"upgraded {AP}: Istio 1.17.2 adds serves v1",
        "upgraded requestauthentications.security.istio.io: Istio 1.17.2 adds serves v1",
    ]
    assert await istio_crds_sync.ensure(NO_CLIENT, [V1_15], backoff=NO_WAIT) == []
    assert served(fake.crds[AP]) == ["v1", "v1beta1"]
    assert all(a["field_manager"] == "meshcanary" for a in fake.applied)


async def test_ensure_without_control_planes_does_nothing(fake: FakeCluster) -> None:
    assert await istio_crds_sync.ensure(NO_CLIENT, []) == []
    assert fake.reads == 0 and fake.applied == []


async def test_ensure_refuses_an_unsupported_version_before_any_request(fake: FakeCluster) -> None:
    with pytest.raises(ValueError, match="not supported"):
        await istio_crds_sync.ensure(NO_CLIENT, [V1_15, Version(1, 31)])
    assert fake.reads == 0


async def test_ensure_upgrades_with_a_precondition_and_replans_after_a_conflict(
    fake: FakeCluster,
) -> None:
    await istio_crds_sync.ensure(NO_CLIENT, [V1_15], backoff=NO_WAIT)
    fake.applied.clear()
    fake.reads = 0
    moved: list[str] = []

    def another_writer() -> None:  # writes the CRD between our read and our apply
        fake.touch(AP)
        moved.append(fake.crds[AP]["metadata"]["resourceVersion"])

    fake.on_read.append(another_writer)
    changed = await istio_crds_sync.ensure(
        NO_CLIENT, [V1_17], field_manager="meshcanary-operator", backoff=NO_WAIT
    )
    assert fake.reads == 2  # the stale plan hit 409; the second round read afresh
    assert changed == [
        f"upgraded {AP}: Istio 1.17.2 adds serves v1",
        "upgraded requestauthentications.security.istio.io: Istio 1.17.2 adds serves v1",
    ]
    ap, ra = fake.applied
    assert ap["manifest"]["metadata"]["resourceVersion"] == moved[0]
    assert ra["manifest"]["metadata"]["name"] == "requestauthentications.security.istio.io"
    assert {a["field_manager"] for a in fake.applied} == {"meshcanary-operator"}
    assert served(fake.crds[AP]) == ["v1", "v1beta1"]


async def test_installs_carry_no_precondition(fake: FakeCluster) -> None:
    await istio_crds_sync.ensure(NO_CLIENT, [V1_15], backoff=NO_WAIT)
    assert all("resourceVersion" not in a["manifest"]["metadata"] for a in fake.applied)


async def test_ensure_dry_run_applies_nothing(fake: FakeCluster) -> None:
    would = await istio_crds_sync.ensure(NO_CLIENT, [V1_22], dry_run=True, backoff=NO_WAIT)
    assert len(would) == 14 and fake.crds == {}
    assert all(a["dry_run"] for a in fake.applied)

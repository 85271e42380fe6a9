"""Revision references parse strictly, and every per-revision object name comes from one place."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshcanary.mesh import revisions
from meshcanary.mesh.revisions import RevisionRef

SMM = revisions.parse("cp-v115x.istio-system")
UPSTREAM = revisions.parse("1-15-0")
DEFAULT = revisions.parse("default")


def test_smm_reference() -> None:
    assert RevisionRef("cp-v115x", "istio-system") == SMM
    assert (SMM.value, SMM.cp_name, SMM.cp_namespace) == (
        "cp-v115x.istio-system",
        "cp-v115x",
        "istio-system",
    )
    assert SMM.is_smm and not SMM.is_default
    assert SMM.labels == {"istio.io/rev": "cp-v115x.istio-system"}
    assert str(SMM) == "cp-v115x.istio-system"


@pytest.mark.parametrize("value", ["1-15-0", "canary", "prod-stable", "default", "a", "0"])
def test_upstream_references(value: str) -> None:
    ref = revisions.parse(value)
    assert (ref.value, ref.cp_name, ref.cp_namespace, ref.is_smm) == (value, value, None, False)


def test_for_control_plane_builds_the_smm_reference() -> None:
    assert RevisionRef.for_control_plane("cp-v113x", "istio-system") == revisions.parse(
        "cp-v113x.istio-system"
    )


def test_for_control_plane_replaces_dots_like_istio_operator() -> None:
    ref = RevisionRef.for_control_plane("cp.v1.15", "mesh")
    assert ref.value == "cp-v1-15.mesh"


def test_for_control_plane_validates() -> None:
    with pytest.raises(ValueError, match="namespace"):
        RevisionRef.for_control_plane("cp", "Bad_NS")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "non-empty"),
        (".istio-system", "control plane name is empty"),
        ("cp.", "namespace is empty"),
        ("a.b.c", "one dot at most"),
        ("1.15.0", "one dot at most"),
        ("Canary", "not a DNS label"),
        ("-canary", "not a DNS label"),
        ("canary-", "not a DNS label"),
        ("can_ary", "not a DNS label"),
        ("cp.Istio-System", "namespace 'Istio-System' is not a DNS label"),
        ("x" * 64, "longer than 63"),
        ("cp v1", "not a DNS label"),
    ],
)
def test_invalid_references_say_why(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        revisions.parse(value)
    assert not revisions.is_valid(value)


def test_non_strings_are_rejected() -> None:
    with pytest.raises(ValueError):
        revisions.parse(None)  # type: ignore[arg-type]


LABEL = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)


@given(LABEL, st.one_of(st.none(), LABEL))
def test_value_round_trips(name: str, namespace: str | None) -> None:
    ref = RevisionRef(name, namespace)
    assert revisions.parse(ref.value) == ref


@given(st.text(max_size=70))
def test_parse_accepts_only_what_it_can_round_trip(text: str) -> None:
    try:
        ref = revisions.parse(text)
    except ValueError:
        return
    assert ref.value == text
    assert text.count(".") <= 1


# -- object names (istio-operator v2 golden dump; upstream istio-discovery chart) -----------------


def test_smm_object_names() -> None:
    assert revisions.istiod_name(SMM) == "istiod-cp-v115x"
    assert revisions.mesh_config_name(SMM) == "istio-cp-v115x"
    assert revisions.injector_configmap_name(SMM) == "istio-sidecar-injector-cp-v115x"
    assert revisions.mutating_webhook_name(SMM) == "istio-sidecar-injector-cp-v115x-istio-system"
    assert revisions.validating_webhook_name(SMM) == "istio-validator-cp-v115x-istio-system"
    assert revisions.cluster_role_name(SMM) == "istiod-cp-v115x-istio-system"
    assert revisions.reader_cluster_role_name(SMM) == "istio-reader-cp-v115x-istio-system"
    assert revisions.istiod_address(SMM) == "istiod-cp-v115x.istio-system.svc:15012"


def test_smm_names_ignore_the_istio_namespace_argument() -> None:
    assert (
        revisions.validating_webhook_name(SMM, "other") == "istio-validator-cp-v115x-istio-system"
    )
    assert revisions.istiod_address(SMM, "other") == "istiod-cp-v115x.istio-system.svc:15012"


def test_upstream_object_names() -> None:
    assert revisions.istiod_name(UPSTREAM) == "istiod-1-15-0"
    assert revisions.mesh_config_name(UPSTREAM) == "istio-1-15-0"
    assert revisions.injector_configmap_name(UPSTREAM) == "istio-sidecar-injector-1-15-0"
    assert revisions.mutating_webhook_name(UPSTREAM) == "istio-sidecar-injector-1-15-0"
    assert revisions.validating_webhook_name(UPSTREAM) == "istio-validator-1-15-0-istio-system"
    assert revisions.cluster_role_name(UPSTREAM) == "istiod-clusterrole-1-15-0-istio-system"
    assert revisions.istiod_address(UPSTREAM, "mesh") == "istiod-1-15-0.mesh.svc:15012"


def test_upstream_default_revision_names_have_no_suffix() -> None:
    assert DEFAULT.is_default
    assert revisions.istiod_name(DEFAULT) == "istiod"
    assert revisions.mesh_config_name(DEFAULT) == "istio"
    assert revisions.injector_configmap_name(DEFAULT) == "istio-sidecar-injector"
    assert revisions.mutating_webhook_name(DEFAULT) == "istio-sidecar-injector"
    assert revisions.validating_webhook_name(DEFAULT) == "istio-validator-istio-system"
    assert revisions.cluster_role_name(DEFAULT) == "istiod-clusterrole-istio-system"
    assert revisions.reader_cluster_role_name(DEFAULT) == "istio-reader-clusterrole-istio-system"


def test_a_control_plane_named_default_is_not_the_upstream_default() -> None:
    ref = RevisionRef.for_control_plane("default", "istio-system")
    assert not ref.is_default
    assert revisions.istiod_name(ref) == "istiod-default"


def test_references_order_by_value_and_hash() -> None:
    assert sorted([UPSTREAM, SMM, DEFAULT]) == [UPSTREAM, SMM, DEFAULT]
    assert RevisionRef("cp") < RevisionRef("cp", "ns")
    assert RevisionRef("cp", "ns") >= RevisionRef("cp")
    assert len({SMM, revisions.parse(SMM.value)}) == 1

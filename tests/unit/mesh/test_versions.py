"""Versions parse strictly, proxy images reveal their version, and skew rules match Istio's."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshcanary.mesh import versions
from meshcanary.mesh.versions import Version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.15.3", Version(1, 15, 3)),
        ("1.15", Version(1, 15, 0)),
        ("v1.15.3", Version(1, 15, 3)),
        ("v1.28", Version(1, 28)),
        ("0.8.0", Version(0, 8, 0)),
        (" 1.20.1 ", Version(1, 20, 1)),
    ],
)
def test_parse(text: str, expected: Version) -> None:
    assert versions.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "1", "1.", "1.15.", "1.15.3.4", "V1.15", "latest", "1.x", "01.15", "1.15.3-rc.0"]
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a version"):
        versions.parse(text)


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(ValueError):
        versions.parse(1.15)  # type: ignore[arg-type]


@given(st.integers(0, 999), st.integers(0, 999), st.integers(0, 999))
def test_parse_round_trips(major: int, minor: int, patch: int) -> None:
    version = Version(major, minor, patch)
    assert versions.parse(str(version)) == version
    assert versions.parse(f"v{version}") == version


@given(st.text(max_size=20))
def test_parse_never_fails_otherwise(text: str) -> None:
    try:
        version = versions.parse(text)
    except ValueError:
        return
    assert version >= Version(0, 0, 0)


@given(
    st.tuples(st.integers(0, 3), st.integers(0, 40), st.integers(0, 20)),
    st.tuples(st.integers(0, 3), st.integers(0, 40), st.integers(0, 20)),
)
def test_ordering_is_numeric(a: tuple[int, int, int], b: tuple[int, int, int]) -> None:
    assert (Version(*a) < Version(*b)) is (a < b)


def test_ordering_examples() -> None:
    assert versions.parse("1.9.9") < versions.parse("1.10.0") < versions.parse("1.10.1")
    assert max(map(versions.parse, ["1.28.0", "1.9.2", "1.13.5"])) == Version(1, 28, 0)


def test_minor_line_and_supported() -> None:
    assert Version(1, 15, 3).minor_line == Version(1, 15)
    assert versions.is_supported(Version(1, 13, 9))
    assert versions.is_supported(Version(1, 30, 0))
    assert not versions.is_supported(Version(1, 12, 0))
    assert not versions.is_supported(Version(1, 31, 0))
    assert tuple(sorted(versions.SUPPORTED_MINORS)) == versions.SUPPORTED_MINORS


# -- proxy images --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("docker.io/istio/proxyv2:1.15.3", Version(1, 15, 3)),
        ("istio/proxyv2:1.13.9", Version(1, 13, 9)),
        ("proxyv2:1.20", Version(1, 20, 0)),
        ("localhost:5000/istio/proxyv2:1.22.1", Version(1, 22, 1)),
        ("registry.example:443/mesh/proxyv2:1.22.1-distroless", Version(1, 22, 1)),
        ("gcr.io/istio-release/proxyv2:1.20.0-beta.1", Version(1, 20, 0)),
        ("docker.io/istio/proxyv2:1.15.3@sha256:" + "a" * 64, Version(1, 15, 3)),
        ("ghcr.io/cisco-open/istio-proxyv2:v1.15.3-bzc.1", Version(1, 15, 3)),
        ("docker.io/istio/proxyv2@sha256:" + "a" * 64, None),
        ("localhost:5000/istio/proxyv2", None),
        ("docker.io/istio/proxyv2:latest", None),
        ("docker.io/istio/proxyv2:master-abcdef", None),
        ("", None),
    ],
)
def test_proxy_version_from_image(image: str, expected: Version | None) -> None:
    assert versions.proxy_version_from_image(image) == expected


# -- skew and upgrade jumps ----------------------------------------------------------------------

V = versions.parse


@pytest.mark.parametrize(
    ("control_plane", "proxy", "ok"),
    [
        ("1.15.3", "1.15.3", True),
        ("1.15.1", "1.15.3", True),  # patch skew within a minor is fine
        ("1.16.0", "1.15.3", True),  # control plane one minor ahead
        ("1.17.0", "1.15.3", False),  # two minors ahead
        ("1.14.9", "1.15.0", False),  # proxy newer than its control plane
        ("2.0.0", "1.28.0", False),
        ("1.28.0", "2.0.0", False),
    ],
)
def test_proxy_skew(control_plane: str, proxy: str, ok: bool) -> None:
    assert versions.proxy_skew_ok(V(control_plane), V(proxy)) is ok


@pytest.mark.parametrize(
    ("from_", "to", "revision_ok", "in_place_ok"),
    [
        ("1.13.9", "1.15.3", True, False),  # n -> n+2: canary only
        ("1.26.0", "1.28.0", True, False),
        ("1.13.9", "1.14.0", True, True),
        ("1.15.1", "1.15.3", True, True),
        ("1.15.3", "1.15.3", True, True),
        ("1.13.9", "1.16.0", False, False),  # three minors
        ("1.15.3", "1.14.0", False, False),  # downgrade
        ("1.15.3", "1.15.1", False, False),
        ("1.28.0", "2.0.0", False, False),
    ],
)
def test_upgrade_jumps(from_: str, to: str, revision_ok: bool, in_place_ok: bool) -> None:
    assert versions.revision_upgrade_ok(V(from_), V(to)) is revision_ok
    assert versions.in_place_upgrade_ok(V(from_), V(to)) is in_place_ok


def test_rule_constants() -> None:
    assert versions.MAX_CONTROL_PLANE_AHEAD_MINORS == 1
    assert versions.MAX_REVISION_UPGRADE_MINORS == 2
    assert versions.MAX_IN_PLACE_UPGRADE_MINORS == 1


@given(st.integers(0, 40), st.integers(0, 40))
def test_skew_is_the_named_window(cp_minor: int, proxy_minor: int) -> None:
    ok = versions.proxy_skew_ok(Version(1, cp_minor), Version(1, proxy_minor))
    assert ok is (0 <= cp_minor - proxy_minor <= versions.MAX_CONTROL_PLANE_AHEAD_MINORS)

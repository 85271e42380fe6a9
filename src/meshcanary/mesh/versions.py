"""Istio versions, the proxy version a pod runs, and the skew and upgrade-jump rules.

A canary upgrade is only safe inside Istio's support envelope: a control plane may be one minor
ahead of the proxies it serves, never behind them; a revision-based (canary) upgrade may jump two
minors, an in-place one only one. The numbers are named constants so validators, the planner and
the dashboard quote the same rule. Source: istio.io `docs/releases/supported-releases`
("Control Plane/Data Plane Skew") and `docs/setup/upgrade/{canary,in-place}`, summarised in
`shared/reference/istio-upgrade-notes.md` section 1.

Skew is measured in minors only: patch releases within one minor are compatible in both
directions, so a 1.15.3 proxy under a 1.15.1 istiod is fine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

MAX_CONTROL_PLANE_AHEAD_MINORS: Final = 1
"""How many minors a control plane may be ahead of its proxies (proxies never ahead)."""
MAX_REVISION_UPGRADE_MINORS: Final = 2
"""How many minors one revision-based (canary) upgrade may jump: n -> n+2."""
MAX_IN_PLACE_UPGRADE_MINORS: Final = 1
"""How many minors one in-place upgrade may jump."""

_VERSION = re.compile(r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?")
_TAG_VERSION = re.compile(r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:-[0-9A-Za-z.-]+)?")


@dataclass(frozen=True, order=True)
class Version:
    """A release `major.minor.patch`; ordered; `1.15` means `1.15.0`."""

    major: int
    minor: int
    patch: int = 0

    @property
    def minor_line(self) -> Version:
        """The minor release line this version belongs to (`1.15.3` -> `1.15.0`)."""
        return Version(self.major, self.minor)

    def minors_after(self, other: Version) -> int | None:
        """How many minors `self` is ahead of `other` (negative if behind); None across majors."""
        if self.major != other.major:
            return None
        return self.minor - other.minor

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def parse(text: str) -> Version:
    """Parse `1.15.3`, `1.15` or `v1.15.3`; raise ValueError for anything else."""
    match = _VERSION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a version (expected MAJOR.MINOR[.PATCH], e.g. 1.15.3)")
    return _from_match(match)


def _from_match(match: re.Match[str]) -> Version:
    major, minor, patch = match.groups()
    return Version(int(major), int(minor), int(patch or 0))


SUPPORTED_MINORS: Final[tuple[Version, ...]] = tuple(Version(1, minor) for minor in range(13, 31))
"""Istio minors meshcanary knows the upgrade notes of: 1.13 to 1.30 (1.31 is pre-release).

Source: `shared/reference/istio-upgrade-notes.md` section 0 (upgrade notes of istio.io for
1.13-1.30; istio/istio tags up to 1.31.0-rc.0). Extend it together with the validators' rules.
"""


def is_supported(version: Version) -> bool:
    """Whether `version`'s minor line is one meshcanary has rules for."""
    return version.minor_line in SUPPORTED_MINORS


def proxy_version_from_image(image: str) -> Version | None:
    """The version in a proxy image's tag: `docker.io/istio/proxyv2:1.15.3` -> 1.15.3.

    Registries with ports (`localhost:5000/istio/proxyv2:1.15.3`), digests (`...:1.15.3@sha256:..`)
    and suffixes (`1.15.3-distroless`, `1.20.0-beta.1`) are tolerated. An image without a tag, or
    with a tag that is not a version (`latest`, a digest only), gives None: the version is unknown.
    """
    reference = image.strip().partition("@")[0]
    last_segment = reference.rpartition("/")[2]
    _, colon, tag = last_segment.partition(":")
    if not colon:
        return None
    match = _TAG_VERSION.fullmatch(tag)
    return _from_match(match) if match else None


def proxy_skew_ok(control_plane: Version, proxy: Version) -> bool:
    """Whether a proxy of `proxy` may be served by a control plane of `control_plane`."""
    ahead = control_plane.minors_after(proxy)
    return ahead is not None and 0 <= ahead <= MAX_CONTROL_PLANE_AHEAD_MINORS


def revision_upgrade_ok(from_: Version, to: Version) -> bool:
    """Whether a canary (revision-based) upgrade may go from `from_` to `to` in one step.

    Same-minor (patch) upgrades are fine; downgrades are not upgrades (a rollback moves
    workloads back to a revision that still runs, which needs no rule).
    """
    jump = to.minors_after(from_)
    if jump is None or to < from_:
        return False
    return jump <= MAX_REVISION_UPGRADE_MINORS


def in_place_upgrade_ok(from_: Version, to: Version) -> bool:
    """Whether an in-place upgrade may go from `from_` to `to` in one step."""
    jump = to.minors_after(from_)
    if jump is None or to < from_:
        return False
    return jump <= MAX_IN_PLACE_UPGRADE_MINORS

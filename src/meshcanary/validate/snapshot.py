"""What the analyzers read: the mesh snapshot plus Istio config and webhook targets, as API JSON.

Kept apart from `gather` (which does the I/O) so analyzers, tests and the benchmark build one in
memory. `current_version` is the version the configuration must keep working with during a
canary upgrade: the *oldest* control plane's, since every revision reads the same config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from meshcanary.mesh import inventory, versions
from meshcanary.mesh.versions import Version

Object = Mapping[str, Any]


@dataclass(frozen=True)
class ValidationSnapshot:
    """The cluster as listed at one moment, for the analyzers."""

    mesh: inventory.MeshSnapshot = field(default_factory=inventory.MeshSnapshot)
    config: Sequence[Object] = ()
    """Istio config objects of every kind (VirtualService, EnvoyFilter, ...), `kind` set."""
    validating_webhook_configurations: Sequence[Object] = ()
    services: Sequence[Object] = ()
    """Services in the namespaces webhooks point at (istiod's), to find dangling webhooks."""

    @cached_property
    def control_planes(self) -> list[inventory.ControlPlaneRow]:
        """Every revision in the cluster (IstioControlPlanes, istiods, webhooks)."""
        return inventory.control_planes(self.mesh)

    @cached_property
    def versions_by_revision(self) -> dict[str, Version]:
        """The Istio version each revision runs, where it is known."""
        found: dict[str, Version] = {}
        for row in self.control_planes:
            version = parse_version(row.version)
            if version is not None:
                found[row.revision] = version
        return found

    @property
    def current_version(self) -> Version | None:
        """The oldest control plane's version: what config must still work with."""
        known = list(self.versions_by_revision.values())
        return min(known) if known else None


def parse_version(text: str) -> Version | None:
    """A version from a control plane row (`1.15.3`, `<unknown>`, an image tag)."""
    try:
        return versions.parse(text)
    except ValueError:
        return versions.proxy_version_from_image(f"x:{text}")

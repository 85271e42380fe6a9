"""Fixtures for the simulated istiod's tests."""

from __future__ import annotations

import pytest
from istio_mesh_builder import Mesh, new_mesh


@pytest.fixture
async def mesh() -> Mesh:
    return await new_mesh()

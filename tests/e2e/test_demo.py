"""The main job: `meshcanary demo` runs the seed's canary upgrade end to end and says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import requires_kubectl

pytestmark = [pytest.mark.e2e, requires_kubectl]


def test_the_demo_upgrades_the_mesh_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "MESHCANARY_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "meshcanary.cli", "demo", "--name", "t"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    header = "NAME       MODE     NETWORK    STATUS      MESH EXPANSION   EXPANSION GW IPS"
    assert header in out
    assert "denied the request: istiocontrolplane cp-v113x still serves" in out
    assert "every live pod runs cp-v115x.istio-system" in out
    assert "every live pod runs cp-v113x.istio-system" in out  # the rollback
    assert "no object of cp-v113x is left" in out
    assert "The canary upgrade is done" in out
    status = subprocess.run(
        [sys.executable, "-m", "meshcanary.cli", "sandbox", "status", "--name", "t"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert status.returncode == 1  # stopped again without --keep

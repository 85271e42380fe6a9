"""A sandbox per test worker, started through the CLI exactly as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


@dataclass
class RunningSandbox:
    """A started sandbox: its kubeconfig, and helpers to run the real kubectl against it."""

    name: str
    home: Path
    kubeconfig: Path
    cache: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "KUBECACHEDIR": str(self.cache),
            "MESHCANARY_HOME": str(self.home),
        }

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["kubectl", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stderr}{result.stdout}"
            )
        return result

    def meshcanary(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "meshcanary.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"meshcanary {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stderr}{result.stdout}"
            )
        return result


def start_sandbox(home: Path, name: str) -> RunningSandbox:
    env = {**os.environ, "MESHCANARY_HOME": str(home)}
    subprocess.run(
        [sys.executable, "-m", "meshcanary.cli", "sandbox", "up", "--name", name],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    kubeconfig = home / "sandboxes" / name / "kubeconfig"
    return RunningSandbox(name, home, kubeconfig, home / "kube-cache")


def stop_sandbox(sandbox: RunningSandbox) -> None:
    env = {**os.environ, "MESHCANARY_HOME": str(sandbox.home)}
    subprocess.run(
        [sys.executable, "-m", "meshcanary.cli", "sandbox", "down", "--name", sandbox.name],
        env=env,
        capture_output=True,
        timeout=60,
    )


@contextmanager
def running_sandbox(home: Path, name: str) -> Iterator[RunningSandbox]:
    """A sandbox started in `home` for the block, stopped after it."""
    running = start_sandbox(home, name)
    try:
        yield running
    finally:
        stop_sandbox(running)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """One sandbox per worker; tests isolate themselves with their own namespaces."""
    with running_sandbox(tmp_path_factory.mktemp("meshcanary-home"), "e2e") as running:
        yield running


@pytest.fixture
def namespace(sandbox: RunningSandbox) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    sandbox.kubectl(
        "apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n"
    )
    return name


requires_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl is not installed"
)

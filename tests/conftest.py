"""Test-wide hygiene: no leaking environment, a private kubectl cache and sandbox home."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

LEAKY = ("KUBECONFIG", "NO_COLOR", "FORCE_COLOR", "MESHCANARY_HOME", "KUBECACHEDIR")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in LEAKY:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KUBECACHEDIR", str(tmp_path / "kube-cache"))
    yield

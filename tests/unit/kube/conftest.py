"""Fixtures for the kube layer's unit tests: a fake API server and a kubeconfig pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from .fakeapi import FakeApi, write_kubeconfig


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    fake.on(
        "GET",
        "/api/v1/namespaces/kube-system",
        lambda _: httpx2.Response(200, json={"metadata": {"name": "kube-system"}}),
    )
    yield fake


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    return write_kubeconfig(tmp_path / "config", "fake", current="fake")

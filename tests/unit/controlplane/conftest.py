"""Golden files for the renderer: compare with `golden/<case>.yaml`, or rewrite them on request.

Regenerate after an intended change, then review the diff:

    .venv/bin/pytest tests/unit/controlplane --update-goldens
    MESHCANARY_UPDATE_GOLDENS=1 .venv/bin/pytest tests/unit/controlplane

The option only exists when pytest loads this file at startup (a path under
tests/unit/controlplane on the command line); the environment variable works from anywhere.
A missing golden file fails rather than being created silently.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE_ENV = "MESHCANARY_UPDATE_GOLDENS"

Golden = Callable[[str, Sequence[dict[str, Any]]], None]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite tests/unit/controlplane/golden/*.yaml from the current renderer",
    )


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (ConfigMap payloads) as literal blocks, so diffs read line by line."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def dump(objects: Sequence[dict[str, Any]]) -> str:
    """The golden text: one YAML document per object, keys in rendered order."""
    return yaml.dump_all(
        objects, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    update = bool(request.config.getoption("--update-goldens", default=False)) or (
        os.environ.get(UPDATE_ENV, "") not in ("", "0")
    )

    def check(case: str, objects: Sequence[dict[str, Any]]) -> None:
        path = GOLDEN_DIR / f"{case}.yaml"
        text = dump(objects)
        if update:
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"{path} is missing: run with --update-goldens or {UPDATE_ENV}=1"
        assert text == path.read_text(encoding="utf-8"), (
            f"rendered objects differ from {path.name}; if intended, regenerate with "
            f"--update-goldens or {UPDATE_ENV}=1 and review the diff"
        )

    return check

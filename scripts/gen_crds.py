"""Generate `deploy/crds/*.yaml` from the CRDs meshcanary defines as data.

The CRDs live in code (`meshcanary.controlplane.crd`) so that the operator installs exactly what
the schema tests check; the YAML files are for people and GitOps (`kubectl apply -f deploy/crds`).
`--check` exits 1 when a file is missing or differs, without writing anything (CI runs it; so
does `tests/unit/controlplane/test_crd.py`).

Usage: .venv/bin/python scripts/gen_crds.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from meshcanary.controlplane import crd as controlplane_crd

ROOT = Path(__file__).resolve().parent.parent
CRDS: dict[str, Callable[[], str]] = {
    "istiocontrolplanes.yaml": controlplane_crd.manifest,
}
"""File name under deploy/crds/ -> the function returning its text."""


def stale(directory: Path) -> list[Path]:
    """The files that are missing or differ from what would be generated."""
    return [
        directory / name
        for name, build in CRDS.items()
        if not (directory / name).exists()
        or (directory / name).read_text(encoding="utf-8") != build()
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    parser.add_argument("--dir", type=Path, default=ROOT / "deploy" / "crds")
    args = parser.parse_args()
    if args.check:
        for path in stale(args.dir):
            print(f"{path} is out of date; run {sys.argv[0]}", file=sys.stderr)
        return 1 if stale(args.dir) else 0
    args.dir.mkdir(parents=True, exist_ok=True)
    for name, build in CRDS.items():
        (args.dir / name).write_text(build(), encoding="utf-8")
        print(f"wrote {args.dir / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the generators share: write the generated text, or with --check compare it instead."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(output: Path, text: str, check: bool) -> int:
    """With `check`, exit status 1 (naming the file) if `output` does not hold `text`, else 0;
    without, write it. Generators run as scripts import this from their own folder."""
    if check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            print(f"{output} is out of date; run {sys.argv[0]}", file=sys.stderr)
            return 1
        return 0
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output} ({len(text)} bytes)")
    return 0

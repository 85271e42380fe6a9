"""The engine: ordering, namespace scope, summaries, the code registry and the generated docs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.unit.validate import builders as b

from meshcanary.mesh.versions import parse
from meshcanary.validate import engine, findings

ROOT = Path(__file__).parents[3]


def noisy_snapshot():  # type: ignore[no-untyped-def]
    both = b.namespace("one", **{"istio.io/rev": b.rev("cp-a"), "istio-injection": "disabled"})
    missing = b.namespace("two", **{"istio.io/rev": "gone.istio-system"})
    config = [
        b.obj("VirtualService", {"hosts": "x"}, ns="one"),
        b.obj("VirtualService", {"hosts": ["x"], "bogus": 1}, ns="two"),
    ]
    return b.mesh(("cp-a", "1.15.3"), namespaces=[both, missing], config=config)


def test_order_is_errors_first_then_code_then_resource() -> None:
    found = engine.analyze(noisy_snapshot(), parse("1.17"))
    assert [(f.severity.value, f.code, f.resource.namespace or f.resource.name) for f in found] == [
        ("Error", "MC0203", "two"),
        ("Error", "MC0301", "one"),
        ("Warning", "MC0201", "one"),
        ("Warning", "MC0304", "two"),
    ]
    assert engine.analyze(noisy_snapshot(), parse("1.17")) == found


def test_namespace_scope() -> None:
    found = engine.analyze(noisy_snapshot(), parse("1.17"), ["two"])
    assert [f.code for f in found] == ["MC0203", "MC0304"]


def test_summary() -> None:
    summary = engine.summarize(engine.analyze(noisy_snapshot()))
    assert (summary.errors, summary.warnings, summary.blocking) == (2, 2, True)
    assert str(summary) == "2 errors, 2 warnings"
    assert str(engine.summarize([])) == "0 errors, 0 warnings"


def test_codes_are_unique_documented_and_numbered() -> None:
    for code, entry in findings.CODES.items():
        assert code == entry.code and code.startswith("MC") and len(code) == 6
        assert entry.cause and entry.fix and entry.title
    assert list(findings.CODES) == sorted(findings.CODES)


def test_generated_docs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_validation_docs.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr

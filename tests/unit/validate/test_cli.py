"""`meshcanary validate` pieces that need no cluster: target resolution and rendering."""

from __future__ import annotations

import pytest
from tests.unit.validate import builders as b

from meshcanary.cli import common, validate
from meshcanary.mesh.versions import parse
from meshcanary.validate import engine


def snapshot():  # type: ignore[no-untyped-def]
    both = b.namespace("app", **{"istio.io/rev": b.rev("cp-a"), "istio-injection": "disabled"})
    config = [b.obj("VirtualService", {"hosts": "x"})]
    return b.mesh(("cp-a", "1.15.3"), ("cp-b", "1.17.2"), namespaces=[both], config=config)


@pytest.mark.parametrize("name", ["cp-b", "cp-b.istio-system"])
def test_resolve_control_plane(name: str) -> None:
    assert validate.resolve_control_plane(snapshot(), name) == parse("1.17.2")


def test_resolve_unknown_control_plane_is_a_usage_error() -> None:
    with pytest.raises(common.UserError) as caught:
        validate.resolve_control_plane(snapshot(), "nope")
    assert caught.value.code == common.USAGE


def test_bad_version_is_a_usage_error() -> None:
    with pytest.raises(common.UserError):
        validate.parse_version("one.seventeen")


def test_table_and_summary(capsys: pytest.CaptureFixture[str]) -> None:
    snap = snapshot()
    found = engine.analyze(snap, parse("1.17"))
    validate.print_findings(found, parse("1.17"), snap, common.Output.TABLE)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["SEVERITY", "CODE", "RESOURCE", "MESSAGE", "FIX"]
    assert lines[1].split()[:3] == ["Error", "MC0301", "VirtualService/app/x"]
    assert lines[-1] == "1 error, 1 warning (target 1.17.0)"


def test_json_keeps_stdout_parseable(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    snap = snapshot()
    validate.print_findings(engine.analyze(snap), None, snap, common.Output.JSON)
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert document["summary"] == {"errors": 1, "warnings": 1, "infos": 0}
    assert document["current"] == "1.15.3" and document["target"] is None
    assert document["findings"][0]["resource"] == {
        "kind": "VirtualService",
        "namespace": "app",
        "name": "x",
    }
    assert "no target version" in err

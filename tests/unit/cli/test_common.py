"""The shared CLI conventions: rendering (plain vs rich), exit codes and error mapping."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from meshcanary.cli import app as cli_app
from meshcanary.cli import common
from meshcanary.kube import errors

COLUMNS = (common.Column("NAME"), common.Column("value"), common.Column("EXTRA", wide=True))
TABLE = common.Table(COLUMNS, [("alpha", 1, "x"), ("b", None, ["p", "q"])], [{"name": "alpha"}])


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


# -- rendering --------------------------------------------------------------------------------


def test_plain_table_is_kubectl_like() -> None:
    assert common.format_plain(TABLE) == "NAME   VALUE\nalpha  1\nb      <none>\n"


def test_wide_shows_wide_columns() -> None:
    assert common.format_plain(TABLE, wide=True).splitlines() == [
        "NAME   VALUE   EXTRA",
        "alpha  1       x",
        "b      <none>  p,q",
    ]


def test_print_table_is_plain_off_a_terminal() -> None:
    out = io.StringIO()
    common.print_table(TABLE, common.Output.TABLE, file=out)
    assert out.getvalue() == common.format_plain(TABLE)


def test_print_table_is_rich_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = Terminal()
    common.print_table(TABLE, common.Output.TABLE, file=out)
    text = out.getvalue()
    assert "NAME" in text and "alpha" in text
    assert text != common.format_plain(TABLE)  # a rule under the header
    assert "\x1b[" not in text  # NO_COLOR honoured


def test_rich_table_uses_colour_styles_without_no_color() -> None:
    out = Terminal()
    common.print_table(TABLE, common.Output.TABLE, file=out)
    assert "\x1b[1m" in out.getvalue()  # bold headers


def test_json_and_yaml_dump_the_data_not_the_cells() -> None:
    out = io.StringIO()
    common.print_table(TABLE, common.Output.JSON, file=out)
    assert json.loads(out.getvalue()) == [{"name": "alpha"}]
    out = io.StringIO()
    common.print_table(TABLE, common.Output.YAML, file=out)
    assert yaml.safe_load(out.getvalue()) == [{"name": "alpha"}]


def test_callable_data_is_built_only_for_json_or_yaml() -> None:
    calls: list[int] = []

    def data() -> list[int]:
        calls.append(1)
        return [1]

    table = common.Table(COLUMNS, [], data)
    common.print_table(table, common.Output.TABLE, file=io.StringIO())
    assert calls == []
    out = io.StringIO()
    common.print_table(table, common.Output.JSON, file=out)
    assert calls == [1] and json.loads(out.getvalue()) == [1]


def test_namespace_scope() -> None:
    assert common.namespace_scope(None, False) is None
    assert common.namespace_scope(["a", "b", "a"], False) == ["a", "b"]
    with pytest.raises(common.UserError, match="cannot be used together"):
        common.namespace_scope(["a"], True)


def test_progress_prints_one_line_per_step_off_a_terminal() -> None:
    out = io.StringIO()
    with common.progress("restarting", total=2, stream=out) as bar:
        bar.step("deployment/web")
        bar.note("skipped pod/bare")
        bar.step("statefulset/db")
    assert out.getvalue().splitlines() == [
        "[1/2] deployment/web",
        "skipped pod/bare",
        "[2/2] statefulset/db",
    ]


def test_progress_draws_a_bar_on_a_terminal() -> None:
    out = Terminal()
    with common.progress("restarting", total=1, stream=out) as bar:
        bar.step("deployment/web")
    assert "restarting" in out.getvalue()
    assert "[1/1]" not in out.getvalue()


# -- exit codes and errors --------------------------------------------------------------------


async def _raise(error: BaseException) -> None:
    raise error


async def _value() -> int:
    return 7


def test_run_returns_the_value() -> None:
    assert common.run(_value()) == 7


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (common.UserError("bad flag"), common.USAGE, "error: bad flag"),
        (common.CheckFailed("3 pods need a restart"), common.CHECK_FAILED, "error: 3 pods"),
        (errors.UnknownContext("context 'x' not found"), common.USAGE, "error: context 'x'"),
        (errors.CannotConnect("cannot connect to https://h"), common.USAGE, "error: cannot"),
        (errors.WaitTimeout("timed out after 5s"), common.CHECK_FAILED, "error: timed out"),
        (RuntimeError("boom\nsecond line"), 1, "error: unexpected RuntimeError: boom second line"),
    ],
)
def test_errors_become_one_line_and_an_exit_code(
    capsys: pytest.CaptureFixture[str], error: Exception, code: int, message: str
) -> None:
    with pytest.raises(typer.Exit) as exited:
        common.run(_raise(error))
    assert exited.value.exit_code == code
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert len(err.strip().splitlines()) == 1


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "DEBUG", [True])
    with pytest.raises(RuntimeError, match="boom"):
        common.run(_raise(RuntimeError("boom")))


def test_ctrl_c_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as exited:
        common.run(_raise(KeyboardInterrupt()))
    assert exited.value.exit_code == common.INTERRUPTED
    assert "interrupted" in capsys.readouterr().err


def test_describe_error_translates_transport_errors() -> None:
    import httpx2

    message, code = common.describe_error(httpx2.ConnectError("refused"))
    assert code == common.USAGE and message.startswith("cannot connect")


# -- through the real command -----------------------------------------------------------------


def _invoke(*args: str, **env: Any) -> Any:
    return CliRunner().invoke(cli_app.app, list(args), env=env)


def test_unknown_output_format_is_a_usage_error() -> None:
    result = _invoke("ns", "list", "-o", "xml")
    assert result.exit_code == 2


def test_missing_kubeconfig_is_one_line_exit_2(tmp_path: Any) -> None:
    result = _invoke("cp", "list", "--kubeconfig", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert result.output.strip() == f"error: kubeconfig {tmp_path / 'nope'} does not exist"


def test_debug_flag_reaches_common(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(common, "DEBUG", [False])
    result = _invoke("--debug", "proxies", "--kubeconfig", str(tmp_path / "nope"))
    assert common.DEBUG == [True]
    assert isinstance(result.exception, errors.NoKubeconfig)

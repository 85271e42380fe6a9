"""kopf settings, the handler registry and the `meshcanary operator` command's flags and errors."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import kopf
import pytest
import yaml
from typer.testing import CliRunner

from meshcanary.cli.app import app
from meshcanary.operator import admission, handlers, runner


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """`configure_logging` reconfigures the root logger; put it back."""
    root, objects = logging.getLogger(), logging.getLogger("kopf.objects")
    saved = (root.handlers[:], root.level, objects.filters[:])
    yield
    root.handlers[:], objects.filters[:] = saved[0], saved[2]
    root.setLevel(saved[1])


def test_settings(tmp_path: Path) -> None:
    options = runner.Options(namespaces=("istio-system",), peering="mesh")
    settings = runner.settings(options, tmp_path)
    assert settings.peering.name == "mesh" and not settings.peering.mandatory
    assert not settings.peering.standalone and not settings.peering.clusterwide
    assert settings.persistence.finalizer == "meshcanary.io/control-plane-cleanup"
    assert settings.posting.level == logging.WARNING
    assert settings.admission.managed == admission.CONFIGURATION
    assert isinstance(settings.admission.server, kopf.WebhookServer)
    assert settings.watching.server_timeout == runner.WATCH_SERVER_TIMEOUT


def test_settings_without_a_webhook(tmp_path: Path) -> None:
    settings = runner.settings(runner.Options(webhook=None, standalone=True), tmp_path)
    assert settings.admission.server is None and settings.admission.managed is None
    assert settings.peering.standalone and settings.peering.clusterwide


def handler_ids(registry: kopf.OperatorRegistry) -> set[str]:
    groups = (registry._spawning, registry._changing, registry._watching, registry._webhooks)
    return {str(handler.id) for group in groups for handler in group.get_all_handlers()}


def test_the_registry_has_every_handler() -> None:
    assert handler_ids(runner.registry(runner.Options())) == {
        "reconcile",
        "spec-changed",
        "owned-deployments",
        "owned-services",
        "owned-mutatingwebhookconfigurations",
        "owned-validatingwebhookconfigurations",
        "cleanup",
        admission.HANDLER_ID,
    }
    assert admission.HANDLER_ID not in handler_ids(runner.registry(runner.Options(webhook=None)))


def test_logging_drops_per_event_successes_and_tells_refusals_as_warnings() -> None:
    runner.configure_logging(verbose=False)
    runner.configure_logging(verbose=False)
    objects = logging.getLogger("kopf.objects")
    assert len([f for f in objects.filters if isinstance(f, runner._Tidy)]) == 1
    success = logging.LogRecord(
        "kopf.objects", logging.INFO, "", 0, "Handler 'x' succeeded.", (), None
    )
    assert not objects.filter(success)
    refused = logging.LogRecord(
        "kopf.objects", logging.ERROR, "", 0,
        "Webhook 'deletion-guard' failed permanently: %s", ("in use",), None,
    )  # fmt: skip
    assert objects.filter(refused)
    assert (refused.levelname, refused.getMessage()) == ("WARNING", "refused a deletion: in use")


# -- the command ------------------------------------------------------------------------------


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["operator", *args])
    return result.exit_code, result.output


def test_contradicting_flags_fail_with_one_line() -> None:
    code, output = invoke("-n", "istio-system", "-A")
    assert (code, output) == (
        2, "error: -n/--namespace and -A/--all-namespaces cannot be used together\n"
    )  # fmt: skip
    code, output = invoke("--no-webhook", "--webhook-port", "9443")
    assert code == 2 and output.startswith("error: --no-webhook cannot be combined")


def test_an_unreachable_cluster_fails_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    code, output = invoke("--kubeconfig", str(path), "--standalone")
    assert code == 2
    assert output.startswith(f"error: cannot connect to http://127.0.0.1:{port}")
    assert output.count("\n") == 1
    code, output = invoke("--kubeconfig", str(path), "--context", "nope")
    assert (code, output) == (
        2, f"error: context 'nope' not found in {path} (available: x)\n"
    )  # fmt: skip


def test_the_defaults_are_the_documented_ones() -> None:
    options = runner.Options()
    assert options.clusterwide and options.resync == handlers.DEFAULT_RESYNC == 10.0
    assert options.webhook == admission.WebhookOptions()

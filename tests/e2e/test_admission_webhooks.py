"""A kopf validating webhook served over HTTPS on 127.0.0.1, called by the sandbox on kubectl's
deletes.

kopf registers the webhook itself (`settings.admission.managed`): it creates the
ValidatingWebhookConfiguration with its server's URL and CA bundle, with an objectSelector from
the handler's label filter. The sandbox must then select the protected object's DELETE, post an
AdmissionReview over TLS verified against that CA, and answer kubectl with kopf's denial.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
from kopf.testing import KopfRunner
from kubernetes import client, config, watch

from meshcanary.sandbox.tls import Certificates
from tests.e2e.conftest import RunningSandbox, requires_kubectl
from tests.e2e.test_kopf_operator import restore_logging  # noqa: F401 - kopf run reconfigures logging

pytestmark = [pytest.mark.e2e, requires_kubectl]

CONFIGURATION = "protect.kopf.meshcanary.test"
WEBHOOK = f"refuse-protected-deletes.{CONFIGURATION}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def operator(certificates: Certificates) -> kopf.OperatorRegistry:
    """A registry with the operator: one validating handler, and its HTTPS webhook server.

    kopf's self-signed certificate needs `certbuilder`; the sandbox's own TLS helper makes a CA
    and a server certificate for 127.0.0.1 instead, and kopf sends that CA as the caBundle.
    """
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> Any:
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.networking.request_timeout = 10
        settings.admission.managed = CONFIGURATION
        settings.admission.server = kopf.WebhookServer(
            addr="127.0.0.1",
            port=free_port(),
            host="127.0.0.1",
            certfile=str(certificates.cert),
            pkeyfile=str(certificates.key),
            cafile=str(certificates.ca),
        )

    @kopf.on.validate(
        "configmaps",
        id="refuse-protected-deletes",
        operations=["DELETE"],
        labels={"protected": "true"},
        registry=registry,
    )
    def refuse_protected_deletes(body: kopf.Body, **_: Any) -> None:
        raise kopf.AdmissionError(f"configmap {body.metadata.name} is protected", code=403)

    return registry


@pytest.fixture
def admission_api(sandbox: RunningSandbox) -> Iterator[client.AdmissionregistrationV1Api]:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(sandbox.kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api_client:
        api = client.AdmissionregistrationV1Api(api_client)
        yield api
        try:
            api.delete_validating_webhook_configuration(CONFIGURATION)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


def wait_for_webhook(api: client.AdmissionregistrationV1Api) -> dict[str, Any]:
    """The configuration once kopf has filled in its webhook (kopf creates it empty first)."""
    stream = watch.Watch()
    for event in stream.stream(
        api.list_validating_webhook_configuration,
        field_selector=f"metadata.name={CONFIGURATION}",
        timeout_seconds=20,
        _request_timeout=25,
    ):
        obj: dict[str, Any] = event["raw_object"]
        if obj.get("webhooks"):
            stream.stop()
            return obj
    raise AssertionError(f"kopf did not register its webhook in {CONFIGURATION}")


def test_a_kopf_webhook_over_https_refuses_deleting_protected_objects(
    sandbox: RunningSandbox,
    namespace: str,
    admission_api: client.AdmissionregistrationV1Api,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(sandbox.kubeconfig))
    certificates = Certificates(tmp_path / "webhook")
    certificates.ensure("127.0.0.1")
    for name, protected in (("keep", "true"), ("scrap", "false")):
        sandbox.kubectl("create", "configmap", name, "-n", namespace, "--from-literal=k=v")
        sandbox.kubectl("label", "configmap", name, "-n", namespace, f"protected={protected}")

    registry = operator(certificates)
    previous = kopf.get_default_registry()
    try:
        with KopfRunner(
            ["run", "--standalone", "--namespace", namespace, "--verbose"],
            registry=registry,
            timeout=60,
        ) as runner:
            registered = wait_for_webhook(admission_api)
            (webhook,) = registered["webhooks"]
            assert webhook["name"] == WEBHOOK
            assert webhook["clientConfig"]["url"].startswith("https://127.0.0.1:")
            ca = base64.b64decode(webhook["clientConfig"]["caBundle"])
            assert ca == certificates.ca.read_bytes()

            refused = sandbox.kubectl("delete", "configmap", "keep", "-n", namespace, check=False)
            assert refused.returncode != 0
            assert (
                f'admission webhook "{WEBHOOK}" denied the request: configmap keep is protected'
                in refused.stderr
            )
            sandbox.kubectl("delete", "configmap", "scrap", "-n", namespace)
            sandbox.kubectl("get", "configmap", "keep", "-n", namespace)
            gone = sandbox.kubectl("get", "configmap", "scrap", "-n", namespace, check=False)
            assert "NotFound" in gone.stderr
    finally:
        kopf.set_default_registry(previous)

    assert runner.exception is None
    assert runner.exit_code == 0

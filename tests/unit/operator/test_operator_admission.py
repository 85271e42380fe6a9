"""The deletion guard's answers and the webhook server's certificates and client configs."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import kopf
import pytest
from cryptography import x509
from tests.unit.controlplane.test_reconcile import cluster, control_plane, create, until

from meshcanary.controlplane import deletion, reconcile
from meshcanary.kube import apply
from meshcanary.kube.client import Client
from meshcanary.operator import admission, handlers

__all__ = ["cluster"]  # the in-process sandbox fixture


def context_for(kube: Any) -> handlers.Context:
    context = handlers.Context()
    context._client = kube
    return context


# -- the guard --------------------------------------------------------------------------------


async def test_deleting_a_control_plane_in_use_is_refused(cluster: Client) -> None:
    resource = await create(cluster, control_plane())
    await until(cluster, resource, "Available")
    await admission.check_deletion(context_for(cluster), resource)  # unused: allowed

    shop = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"istio.io/rev": "cp-v113x.istio-system"}},
    }
    await apply.apply_manifests(cluster, [shop])
    with pytest.raises(kopf.AdmissionError) as refused:
        await admission.check_deletion(context_for(cluster), resource)
    assert refused.value.code == 403
    assert str(refused.value) == (
        "istiocontrolplane cp-v113x is still selected by namespace shop; migrate them first, "
        "or annotate meshcanary.io/force-delete=true"
    )
    resource["metadata"]["annotations"] = {deletion.FORCE_ANNOTATION: "true"}
    await admission.check_deletion(context_for(cluster), resource)


async def test_the_guard_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    async def unreadable(*_: Any) -> str | None:
        raise reconcile.TransientError("reading the cluster: cannot connect")

    monkeypatch.setattr(deletion, "refusal", unreadable)
    with pytest.raises(kopf.AdmissionError, match="try again: reading the cluster") as refused:
        await admission.check_deletion(context_for(object()), control_plane())
    assert refused.value.code == 503


# -- certificates -----------------------------------------------------------------------------


def test_generated_certificates_chain_to_their_ca(tmp_path: Path) -> None:
    cert_path, key_path, ca_path = admission.generate_certificates(
        tmp_path / "tls", ["127.0.0.1", "op.mesh.svc"]
    )
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["op.mesh.svc"]
    assert key_path.stat().st_mode & 0o077 == 0, "the private key is private"
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)


def test_the_url_server_is_registered_at_its_address(tmp_path: Path) -> None:
    server = admission.server(admission.WebhookOptions(port=9999), tmp_path)
    assert type(server) is kopf.WebhookServer
    assert (server.addr, server.host, server.port) == ("127.0.0.1", "127.0.0.1", 9999)
    assert server.cafile == str(tmp_path / "ca.crt")


@pytest.mark.parametrize("address", ["0.0.0.0", "::"])
def test_a_url_needs_an_address_the_api_server_can_call(address: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be called back by the API server"):
        admission.server(admission.WebhookOptions(address=address), tmp_path)


def test_a_given_certificate_folder_is_used_as_is(tmp_path: Path) -> None:
    options = admission.WebhookOptions(service="op.mesh", cert_dir="/etc/webhook")
    server = admission.server(options, tmp_path)
    assert (server.certfile, server.pkeyfile, server.cafile) == (
        "/etc/webhook/tls.crt", "/etc/webhook/tls.key", "/etc/webhook/ca.crt"
    )  # fmt: skip
    assert (server.addr, server.port) == ("0.0.0.0", admission.DEFAULT_SERVICE_PORT)
    assert not list(tmp_path.iterdir()), "nothing generated"


async def test_the_service_server_yields_a_service_client_config(tmp_path: Path) -> None:
    options = admission.WebhookOptions(address="127.0.0.1", service="operator.meshcanary-system")
    server = admission.server(options, tmp_path)
    assert isinstance(server, admission.ServiceWebhookServer)
    server.port = None  # a free port: the test must not depend on 9443 being free

    async def fn(*_: Any, **__: Any) -> Any:
        return {}

    configs = server(fn)
    try:
        config = await asyncio.wait_for(anext(configs), 10)
    finally:
        await configs.aclose()
    assert config["service"] == {"name": "operator", "namespace": "meshcanary-system", "port": 443}
    assert "url" not in config
    assert base64.b64decode(config["caBundle"]) == (tmp_path / "ca.crt").read_bytes()


@pytest.mark.parametrize("service", ["operator", "operator.", ".ns", "a.b.c"])
def test_a_service_is_name_dot_namespace(service: str) -> None:
    with pytest.raises(ValueError, match=r"--webhook-service must be NAME\.NAMESPACE"):
        admission.service_parts(service)

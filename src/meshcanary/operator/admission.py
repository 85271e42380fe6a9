"""The validating admission webhook that refuses to strand workloads, and the server that serves it.

A finalizer alone cannot refuse a deletion: by the time it runs, the resource is Terminating and
nothing can bring it back. So the operator also serves a validating webhook for DELETE of
`istiocontrolplanes`: the API server asks it before deleting, and it answers with
`deletion.refusal` (live proxies per namespace, selecting namespaces), which kubectl prints as
`admission webhook "deletion-guard.meshcanary-operator.meshcanary.io" denied the request: ...`.
kopf registers the ValidatingWebhookConfiguration itself (`settings.admission.managed`) with the
server's address and CA bundle, and removes the webhook when the operator stops cleanly (the
finalizer then still holds a dangerous deletion until the operator is back).

The webhook fails closed: if the cluster cannot be read to check, the deletion is refused with
that reason (try again) rather than allowed blindly.

Two ways to reach the server:

- `url` (the sandbox, or a cluster that can reach the operator's host): the server listens on
  `--webhook-address`/`--webhook-port` and is registered as `https://<address>:<port>/...`.
  A small CA and a server certificate for that address are generated with `cryptography`
  (kopf's own generator needs `certbuilder`) into a private temporary folder; the CA is the
  `caBundle`, so the API server verifies the operator as it verifies any webhook.
- `service` (in a cluster): `--webhook-service NAME.NAMESPACE` registers a `service` client
  config (port 443) instead of a URL, as kopf's `WebhookServer` only yields URLs; the Service must
  send port 443 to the operator pods' `--webhook-port` (9443 by default). The certificate comes
  from `--webhook-cert-dir` (`tls.crt`, `tls.key`, `ca.crt`, e.g. a cert-manager Secret mounted
  there; kopf re-reads the files when they are renewed) or is generated for the Service's DNS
  names at start (then every replica has its own CA, and the last one to start wins the
  `caBundle`: fine for one replica, use a shared Secret with more).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import kopf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshcanary.controlplane import deletion, reconcile
from meshcanary.operator import handlers

CONFIGURATION: Final = "meshcanary-operator.meshcanary.io"
"""The ValidatingWebhookConfiguration kopf manages; webhooks are `<handler id>.<this>`."""
HANDLER_ID: Final = "deletion-guard"
WEBHOOK: Final = f"{HANDLER_ID}.{CONFIGURATION}"
DEFAULT_SERVICE_PORT: Final = 9443
VALIDITY: Final = datetime.timedelta(days=365)


@dataclass(frozen=True)
class WebhookOptions:
    """Where the admission webhook server listens and how the API server reaches it."""

    address: str | None = None
    """Listen address: 127.0.0.1 by default, all interfaces (0.0.0.0) with `service`."""
    port: int = 0
    """0 picks a free port (9443 with `service`)."""
    service: str | None = None
    """`NAME.NAMESPACE` of the Service in front of the operator (in-cluster mode)."""
    cert_dir: str | None = None
    """A folder with `tls.crt`, `tls.key` and `ca.crt` (else a certificate is generated)."""


def register(registry: kopf.OperatorRegistry, context: handlers.Context) -> None:
    """Add the DELETE validation of istiocontrolplanes to `registry`."""

    @kopf.on.validate(
        handlers.GROUP,
        handlers.VERSION,
        handlers.PLURAL,
        id=HANDLER_ID,
        operations=["DELETE"],
        registry=registry,
    )
    async def guard_deletion(body: kopf.Body, **_: Any) -> None:
        await check_deletion(context, body)


async def check_deletion(context: handlers.Context, body: Any) -> None:
    """Raise kopf.AdmissionError when deleting `body` would strand workloads."""
    try:
        refusal = await deletion.refusal(context.client, body)
    except reconcile.ReconcileError as error:
        raise kopf.AdmissionError(
            f"cannot check what still uses this control plane, try again: {error}", code=503
        ) from error
    if refusal is not None:
        raise kopf.AdmissionError(refusal, code=403)


# -- the server -------------------------------------------------------------------------------


def server(options: WebhookOptions, folder: Path) -> kopf.WebhookServer:
    """The kopf webhook server for `options`; generated certificates go to `folder`."""
    if options.service is None:
        address = options.address or "127.0.0.1"
        if _unspecified(address):
            raise ValueError(
                f"--webhook-address {address} cannot be called back by the API server: give "
                "the address it can reach, or --webhook-service NAME.NAMESPACE in a cluster"
            )
        certfile, keyfile, cafile = _certificates(options, folder, [address])
        return kopf.WebhookServer(
            addr=address,
            port=options.port or None,
            host=address,
            certfile=str(certfile),
            pkeyfile=str(keyfile),
            cafile=str(cafile),
        )
    name, namespace = service_parts(options.service)
    names = [f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local", name]
    certfile, keyfile, cafile = _certificates(options, folder, names)
    return ServiceWebhookServer(
        service_name=name,
        service_namespace=namespace,
        addr=options.address or "0.0.0.0",
        port=options.port or DEFAULT_SERVICE_PORT,
        certfile=str(certfile),
        pkeyfile=str(keyfile),
        cafile=str(cafile),
    )


def _unspecified(address: str) -> bool:
    """Whether `address` is 0.0.0.0 or `::`: fine to listen on, impossible to call."""
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


def service_parts(service: str) -> tuple[str, str]:
    """`NAME.NAMESPACE` split; ValueError with a one-line message otherwise."""
    name, _, namespace = service.partition(".")
    if not name or not namespace or "." in namespace:
        raise ValueError(f"--webhook-service must be NAME.NAMESPACE, got {service!r}")
    return name, namespace


class ServiceWebhookServer(kopf.WebhookServer):
    """kopf's HTTPS server, registered as a `service` client config instead of a URL."""

    def __init__(
        self, *, service_name: str, service_namespace: str, service_port: int = 443, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.service = {"name": service_name, "namespace": service_namespace, "port": service_port}

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        async for config in super().__call__(fn):
            service_config: dict[str, Any] = {"service": dict(self.service)}
            if config.get("caBundle"):
                service_config["caBundle"] = config["caBundle"]
            yield service_config


def _certificates(
    options: WebhookOptions, folder: Path, names: Sequence[str]
) -> tuple[Path, Path, Path]:
    if options.cert_dir is not None:
        base = Path(options.cert_dir)
        return base / "tls.crt", base / "tls.key", base / "ca.crt"
    return generate_certificates(folder, names)


def generate_certificates(folder: Path, names: Sequence[str]) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for `names` (IPs or DNS names), written as PEM files.

    Returns (certificate, private key, CA certificate); the key is readable by its owner only.
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meshcanary-operator-ca")])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (
        _builder(subject, ca_name, key.public_key())
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "tls.crt", folder / "tls.key", folder / "ca.crt"
    _write(paths[0], cert.public_bytes(serialization.Encoding.PEM))
    _write(paths[1], _key_pem(key), private=True)
    _write(paths[2], ca.public_bytes(serialization.Encoding.PEM))
    return paths


def _builder(subject: x509.Name, issuer: x509.Name, public_key: Any) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    descriptor = os.open(path, flags, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)

"""`meshcanary operator`: run the IstioControlPlane operator in the foreground.

Flags follow kubectl (`--kubeconfig`, `--context`, `-n`/`-A`) and kopf (`--standalone`,
`--verbose`). The operator runs until SIGINT or SIGTERM and then exits cleanly with code 0; a
cluster it cannot reach, or flags that contradict each other, fail at once with one line and
code 2. kopf (and everything the operator imports) is loaded inside the command, so
`meshcanary --help` stays fast.
"""

from __future__ import annotations

import typer

NamespaceOption = typer.Option(
    None, "-n", "--namespace", help="Watch this namespace (repeatable; default: all)."
)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def operator(
    kubeconfig: str | None = typer.Option(None, "--kubeconfig", help="Path to a kubeconfig."),
    context: str | None = typer.Option(None, "--context", help="The kubeconfig context to use."),
    namespace: list[str] | None = NamespaceOption,
    all_namespaces: bool = typer.Option(
        False, "-A", "--all-namespaces", help="Watch every namespace (the default)."
    ),
    standalone: bool = typer.Option(
        False, "--standalone", help="No leader election (peering): only for a single replica."
    ),
    peering: str = typer.Option("meshcanary", "--peering", help="kopf peering name."),
    webhook_address: str | None = typer.Option(
        None,
        "--webhook-address",
        help="Address the admission webhook listens on (127.0.0.1; 0.0.0.0 with a service).",
    ),
    webhook_port: int = typer.Option(
        0, "--webhook-port", min=0, max=65535, help="Webhook port (0: a free one; 9443 in-cluster)."
    ),
    webhook_service: str | None = typer.Option(
        None, "--webhook-service", help="NAME.NAMESPACE of the Service in front of the operator."
    ),
    webhook_cert_dir: str | None = typer.Option(
        None, "--webhook-cert-dir", help="Folder with tls.crt, tls.key, ca.crt (else generated)."
    ),
    no_webhook: bool = typer.Option(
        False, "--no-webhook", help="Do not serve the deletion-guard admission webhook."
    ),
    resync_seconds: float = typer.Option(
        10.0, "--resync-seconds", min=0.1, help="Reconcile every control plane this often."
    ),
    liveness: str | None = typer.Option(
        None, "--liveness", help="Serve a liveness probe, e.g. http://0.0.0.0:8080/healthz."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every handler's progress."),
) -> None:
    """Run the IstioControlPlane operator until SIGINT/SIGTERM."""
    if namespace and all_namespaces:
        _fail("-n/--namespace and -A/--all-namespaces cannot be used together")
    if no_webhook and (webhook_service or webhook_port or webhook_address or webhook_cert_dir):
        _fail("--no-webhook cannot be combined with other --webhook-* options")

    from meshcanary.controlplane import reconcile
    from meshcanary.kube import errors
    from meshcanary.operator import admission, runner

    webhook = None
    if not no_webhook:
        webhook = admission.WebhookOptions(
            address=webhook_address,
            port=webhook_port,
            service=webhook_service,
            cert_dir=webhook_cert_dir,
        )
    options = runner.Options(
        kubeconfig=kubeconfig,
        context=context,
        namespaces=tuple(namespace or ()),
        standalone=standalone,
        peering=peering,
        webhook=webhook,
        resync=resync_seconds,
        liveness=liveness,
    )
    try:
        runner.run(options, verbose=verbose)
    except (errors.KubeError, reconcile.ReconcileError, ValueError, OSError) as error:
        _fail(str(error))

"""`meshcanary demo`: the seed's canary upgrade, end to end, on a fresh sandbox.

Every step runs a real command — the real `kubectl` or `meshcanary` itself in a subprocess — and
prints it before its output, so the demo doubles as a transcript of how to do the upgrade by hand
and is checked like one: any step that does not end as the seed says it should stops the demo with
exit 1. Running it again starts from a fresh sandbox, so it is idempotent.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer

from meshcanary.cli import demo_workloads as workloads

CLI = [sys.executable, "-m", "meshcanary.cli"]
WAIT = "--timeout=180s"


class DemoFailed(Exception):
    """A step did not end as the seed says it should."""


class Demo:
    """Runs and prints the steps against one sandbox."""

    def __init__(self, name: str, home: str | None) -> None:
        self.name = name
        self.env = {**os.environ, "KUBECACHEDIR": tempfile.mkdtemp(prefix="meshcanary-kube-")}
        if home:
            self.env["MESHCANARY_HOME"] = home
        self.operator: subprocess.Popen[bytes] | None = None
        self.number = 0

    # -- printing and running ------------------------------------------------------------------

    def step(self, title: str) -> None:
        self.number += 1
        typer.secho(f"\n== {self.number}. {title}", bold=True)

    def run(
        self,
        command: list[str],
        *,
        input: str | None = None,
        expect_failure: bool = False,
        show: bool = True,
    ) -> str:
        shown = " ".join(shlex.quote(part) for part in command)
        shown = shown.replace(" ".join(CLI), "meshcanary")
        if show:
            typer.secho(f"$ {shown}", fg=typer.colors.CYAN)
        result = subprocess.run(
            command, env=self.env, input=input, capture_output=True, text=True, timeout=600
        )
        # Progress goes to stderr while the command runs; its report comes last on stdout.
        output = (result.stderr + result.stdout).rstrip()
        if show and output:
            typer.echo(output)
        if (result.returncode != 0) != expect_failure:
            expected = "to fail" if expect_failure else "to succeed"
            raise DemoFailed(f"expected `{shown}` {expected} (exit {result.returncode})")
        return result.stdout

    def kubectl(self, *args: str, **kwargs: object) -> str:
        return self.run(["kubectl", *args], **kwargs)  # type: ignore[arg-type]

    def meshcanary(self, *args: str, **kwargs: object) -> str:
        return self.run([*CLI, *args], **kwargs)  # type: ignore[arg-type]

    # -- the scenario --------------------------------------------------------------------------

    def start(self, ready_delay: float) -> None:
        self.step("A fresh sandbox cluster")
        self.meshcanary("sandbox", "down", "--name", self.name, show=False)
        self.meshcanary("sandbox", "reset", "--name", self.name, show=False)
        self.meshcanary("sandbox", "up", "--name", self.name, "--pod-ready-delay", str(ready_delay))
        kubeconfig = self.meshcanary(
            "sandbox", "kubeconfig", "--name", self.name, show=False
        ).strip()
        self.env["KUBECONFIG"] = kubeconfig
        self.kubectl("get", "nodes")

    def install_operator(self) -> None:
        from meshcanary.controlplane import crd

        self.step("The IstioControlPlane CRD and the meshcanary operator")
        self.kubectl("apply", "-f", "-", input=crd.manifest())
        self.kubectl(
            "wait", "--for=condition=Established", "crd/istiocontrolplanes.meshcanary.io", WAIT
        )
        log = Path(self.env.get("MESHCANARY_HOME", tempfile.gettempdir())) / "demo-operator.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        command = [
            *CLI,
            "operator",
            "--kubeconfig",
            self.env["KUBECONFIG"],
            "--standalone",
            "--webhook-address",
            "127.0.0.1",
        ]
        typer.secho(
            f"$ meshcanary operator --standalone --webhook-address 127.0.0.1 > {log} &",
            fg=typer.colors.CYAN,
        )
        with open(log, "ab") as out:
            self.operator = subprocess.Popen(
                command,
                env=self.env,
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def control_planes(self) -> None:
        self.step("Two control planes side by side: cp-v113x (1.13.9) and cp-v115x (1.15.3)")
        self.kubectl(
            "apply",
            "-f",
            "-",
            input=workloads.manifest(
                [
                    {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {"name": workloads.ISTIO_NAMESPACE},
                    }
                ]
            ),
        )
        for name, version in (workloads.OLD, workloads.NEW):
            self.kubectl(
                "apply",
                "-f",
                "-",
                input=workloads.manifest([workloads.control_plane(name, version)]),
            )
        for name, _ in (workloads.OLD, workloads.NEW):
            self.kubectl(
                "wait",
                "--for=jsonpath={.status.status}=Available",
                f"istiocontrolplanes/{name}",
                "-n",
                workloads.ISTIO_NAMESPACE,
                WAIT,
            )
        self.kubectl("get", "istiocontrolplanes", "-n", workloads.ISTIO_NAMESPACE)
        self.kubectl("get", "istiocontrolplanes", "-n", workloads.ISTIO_NAMESPACE, "-o", "wide")

    def applications(self) -> None:
        old = f"{workloads.OLD[0]}.{workloads.ISTIO_NAMESPACE}"
        self.step(f"Applications attached to {workloads.OLD[0]}")
        for ns in workloads.APPS:
            self.kubectl(
                "apply", "-f", "-", input=workloads.manifest([workloads.namespace(ns, old)])
            )
            self.kubectl("apply", "-f", "-", input=workloads.app_manifest(ns), show=False)
            for kind, name, _ in workloads.APPS[ns]:
                self.kubectl(
                    "rollout", "status", f"{kind.lower()}/{name}", "-n", ns, WAIT, show=False
                )
            typer.echo(f"(applied and rolled out {len(workloads.APPS[ns])} workloads in {ns})")
        self.kubectl("get", "ns", "payments", "-o", "jsonpath={.metadata.labels}")
        typer.echo("")
        self.meshcanary("cp", "list")
        self.meshcanary("ns", "list", "-A")

    def checks(self) -> None:
        self.step(
            "Before migrating: validation, what would change, and the old control plane is guarded"
        )
        self.meshcanary("validate", "--to", workloads.NEW[0], "-A")
        self.meshcanary("migrate", "payments", "bookshop", "--to", workloads.NEW[0], "--dry-run")
        self.kubectl(
            "delete",
            "istiocontrolplanes",
            "-n",
            workloads.ISTIO_NAMESPACE,
            workloads.OLD[0],
            "--wait=false",
            expect_failure=True,
        )

    def migrate(self) -> None:
        new = workloads.NEW[0]
        self.step("Migrate payments, verify, roll it back, and migrate it again")
        self.meshcanary("migrate", "payments", "--to", new)
        self.meshcanary("proxies", "-n", "payments")
        self.meshcanary("rollback", "payments")
        self.meshcanary("ns", "list", "-n", "payments")
        self.meshcanary("migrate", "payments", "--to", new)
        self.step("Migrate bookshop (Deployments, a StatefulSet and a DaemonSet)")
        self.meshcanary("migrate", "bookshop", "--to", new)
        self.meshcanary("ns", "list", "-A")
        self.meshcanary("cp", "list")

    def delete_old(self) -> None:
        old = workloads.OLD[0]
        self.step(f"{old} serves no proxy any more: delete it")
        self.meshcanary("cp", "delete", old)
        self.kubectl("get", "istiocontrolplanes", "-n", workloads.ISTIO_NAMESPACE)
        leftovers = self.kubectl(
            "get",
            "deployments,services,configmaps,"
            "mutatingwebhookconfigurations,validatingwebhookconfigurations",
            "-A",
            "-l",
            f"istio.io/rev={old}.{workloads.ISTIO_NAMESPACE}",
            "-o",
            "name",
            show=False,
        )
        if leftovers.strip():
            raise DemoFailed(f"objects of {old} were left behind:\n{leftovers}")
        typer.echo(f"no object of {old} is left")

    def stop(self, keep: bool) -> None:
        if keep:
            pid = self.operator.pid if self.operator else "?"
            typer.secho(f"\nThe sandbox and the operator (pid {pid}) keep running:", bold=True)
            typer.echo(f"  export KUBECONFIG={self.env.get('KUBECONFIG', '')}")
            typer.echo(f"  kill {pid}; meshcanary sandbox down --name {self.name}")
            return
        if self.operator and self.operator.poll() is None:
            self.operator.send_signal(signal.SIGTERM)
            try:
                self.operator.wait(20)
            except subprocess.TimeoutExpired:
                self.operator.kill()
        self.meshcanary("sandbox", "down", "--name", self.name, show=False)


def demo(
    name: str = typer.Option("demo", "--name", help="The sandbox to run the demo in."),
    keep: bool = typer.Option(False, "--keep", help="Leave the sandbox and operator running."),
    ready_delay: float = typer.Option(
        0.3, "--pod-ready-delay", min=0.0, help="Seconds a pod takes to become Ready."
    ),
) -> None:
    """The canary upgrade of the seed document, end to end, on a fresh sandbox."""
    runner = Demo(name, os.environ.get("MESHCANARY_HOME"))
    started = time.monotonic()
    try:
        runner.start(ready_delay)
        runner.install_operator()
        runner.control_planes()
        runner.applications()
        runner.checks()
        runner.migrate()
        runner.delete_old()
    except DemoFailed as exc:
        typer.secho(f"\ndemo failed: {exc}", fg=typer.colors.RED, err=True)
        runner.stop(keep=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        runner.stop(keep=False)
        raise
    typer.secho(f"\nThe canary upgrade is done ({time.monotonic() - started:.0f}s).", bold=True)
    runner.stop(keep)

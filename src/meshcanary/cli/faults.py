"""`meshcanary sandbox fault ...`: add, list and clear the faults a sandbox injects.

Faults are `sandbox.meshcanary.io/v1` `Fault` objects (see `docs/faults.md`), so these commands
are a shorthand for what `kubectl apply/get/delete` can do too: they build the object from flags,
check it with the same validation the server runs, and talk to the sandbox over HTTPS with its
kubeconfig's CA and token, the way any client does. Exit codes: 0 done, 1 the fault to add
already exists or one to clear does not, 2 usage, an invalid fault, or no sandbox to talk to.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import typer
import yaml

app: typer.Typer = typer.Typer(
    help="Inject faults: pods that never get ready, failing, slow or dropped API calls.",
    no_args_is_help=True,
)

# After `app`: `cli/sandbox.py` imports this module at its end to register `app`, whichever of
# the two is imported first.
from meshcanary.cli.sandbox import NameOption, _fail, _user_errors  # noqa: E402

FAULTS_PATH = "/apis/sandbox.meshcanary.io/v1/faults"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
TIMEOUT = 30.0
NamesArgument = typer.Argument(None, metavar="NAME...", help="Faults to remove.")
POD_ONLY = ("--proxy-version", "--namespace-selector", "--pod-selector")
API_ONLY = ("--fraction", "--verbs", "--resources", "--namespaces")


class ApiFailure(Exception):
    """The sandbox answered a request with an error `Status`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Client:
    """Just enough of a Kubernetes client: JSON over HTTPS with the kubeconfig's CA and token."""

    sandbox: str
    server: str
    token: str
    context: ssl.SSLContext

    @classmethod
    def for_sandbox(cls, name: str) -> Client:
        from meshcanary.sandbox.runtime import Sandbox

        sandbox = Sandbox.named(name)
        if not sandbox.kubeconfig.exists():
            _fail(f"sandbox {name!r} has no kubeconfig: run `meshcanary sandbox up --name {name}`")
        config = yaml.safe_load(sandbox.kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
        token = config["users"][0]["user"]["token"]
        return cls(name, cluster["server"], token, ssl.create_default_context(cadata=ca))

    def request(
        self, method: str, path: str, body: Any = None, accept: str = "application/json"
    ) -> Any:
        request = urllib.request.Request(
            self.server + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Accept": accept,
                "User-Agent": "meshcanary",
            },
        )
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=TIMEOUT) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise ApiFailure(exc.code, _status_message(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            _fail(
                f"cannot reach sandbox {self.sandbox!r} ({reason}): is it running?"
                f" `meshcanary sandbox up --name {self.sandbox}` starts it"
            )


def _status_message(error: urllib.error.HTTPError) -> str:
    try:
        status = json.loads(error.read())
        return str(status.get("message") or error.reason)
    except (ValueError, AttributeError):
        return str(error.reason)


def _csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def _selector(option: str, text: str | None) -> dict[str, Any] | None:
    from meshcanary.sandbox import faults
    from meshcanary.sandbox.apiserver.selectors import SelectorError

    if text is None:
        return None
    try:
        return faults.selector_from_string(text)
    except SelectorError as exc:
        _fail(f"{option}: {exc}")
        return None


def _plain(number: float | None) -> float | int | None:
    """2.0 as 2, so the stored object reads as it was meant."""
    return int(number) if number is not None and number.is_integer() else number


def _effect(
    never_ready: bool,
    crash_loop: bool,
    slow_start: int | None,
    api_error: int | None,
    api_latency: int | None,
    drop_watch: float | None,
) -> tuple[str, str, dict[str, Any]]:
    """(family, effect, the effect's own fields) from exactly one effect flag."""
    chosen = [
        (flag, family, effect, extra)
        for flag, family, effect, extra in (
            (never_ready, "pod", "NeverReady", {}),
            (crash_loop, "pod", "CrashLoop", {}),
            (slow_start is not None, "pod", "SlowStart", {"startDelaySeconds": slow_start}),
            (api_error is not None, "api", "Error", {"code": api_error}),
            (api_latency is not None, "api", "Latency", {"latencyMs": api_latency}),
            (drop_watch is not None, "api", "DropWatch", {"afterSeconds": _plain(drop_watch)}),
        )
        if flag
    ]
    if len(chosen) != 1:
        _fail(
            "give exactly one of --pod-never-ready, --pod-crash-loop, --pod-slow-start,"
            " --api-error, --api-latency, --api-drop-watch"
        )
    _, family, effect, extra = chosen[0]
    return family, effect, extra


def _check_scope(family: str, given: dict[str, Any]) -> None:
    """Pod-only options with an API effect (or the reverse) are usage errors."""
    wrong = API_ONLY if family == "pod" else POD_ONLY
    for option in wrong:
        if given.get(option) is not None:
            other = "API" if family == "pod" else "pod"
            _fail(f"{option} only applies to {other} faults")


def _manifest(name: str, family: str, effect: str, fields: dict[str, Any]) -> dict[str, Any]:
    body = {"effect": effect, **{k: v for k, v in fields.items() if v is not None}}
    return {
        "apiVersion": "sandbox.meshcanary.io/v1",
        "kind": "Fault",
        "metadata": {"name": name},
        "spec": {family: body},
    }


@app.command()
def add(
    fault_name: str = typer.Argument(..., metavar="NAME", help="Name of the fault."),
    pod_never_ready: bool = typer.Option(
        False, "--pod-never-ready", help="Matching pods run but never become Ready."
    ),
    pod_crash_loop: bool = typer.Option(
        False, "--pod-crash-loop", help="Matching pods crash and restart with back-off."
    ),
    pod_slow_start: int | None = typer.Option(
        None, "--pod-slow-start", metavar="SECONDS", help="Matching pods start this much later."
    ),
    api_error: int | None = typer.Option(
        None, "--api-error", metavar="CODE", help="Answer matching requests 500, 409 or 429."
    ),
    api_latency: int | None = typer.Option(
        None, "--api-latency", metavar="MS", help="Delay matching requests."
    ),
    api_drop_watch: float | None = typer.Option(
        None, "--api-drop-watch", metavar="SECONDS", help="End matching watches after SECONDS."
    ),
    proxy_version: str | None = typer.Option(
        None, "--proxy-version", metavar="GLOB", help="Pods whose istio-proxy tag matches."
    ),
    namespace_selector: str | None = typer.Option(
        None, "--namespace-selector", metavar="SEL", help="Pods in namespaces with these labels."
    ),
    pod_selector: str | None = typer.Option(
        None, "--pod-selector", metavar="SEL", help="Pods with these labels."
    ),
    fraction: float | None = typer.Option(
        None, "--fraction", metavar="F", help="Share of matching requests hit, 0 < F <= 1."
    ),
    verbs: str | None = typer.Option(None, "--verbs", help="Only these verbs (comma-separated)."),
    resources: str | None = typer.Option(
        None, "--resources", help="Only these resources (comma-separated plurals)."
    ),
    namespaces: str | None = typer.Option(
        None, "--namespaces", help="Only requests in these namespaces (comma-separated)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the Fault as YAML instead of adding it."
    ),
    name: str = NameOption,
) -> None:
    """Add a fault to a sandbox (one effect flag; the other options narrow what it hits)."""
    from meshcanary.sandbox import faults

    family, effect, fields = _effect(
        pod_never_ready, pod_crash_loop, pod_slow_start, api_error, api_latency, api_drop_watch
    )
    scope = {
        "--proxy-version": proxy_version,
        "--namespace-selector": namespace_selector,
        "--pod-selector": pod_selector,
        "--fraction": fraction,
        "--verbs": verbs,
        "--resources": resources,
        "--namespaces": namespaces,
    }
    _check_scope(family, scope)
    fields |= {
        "proxyVersion": proxy_version,
        "namespaceSelector": _selector("--namespace-selector", namespace_selector),
        "podSelector": _selector("--pod-selector", pod_selector),
        "fraction": fraction,
        "verbs": _csv(verbs),
        "resources": _csv(resources),
        "namespaces": _csv(namespaces),
    }
    manifest = _manifest(fault_name, family, effect, fields)
    causes = faults.validate(manifest)
    if causes:
        _fail(f'fault "{fault_name}" is invalid: ' + "; ".join(f"{p}: {m}" for p, m in causes))
    if dry_run:
        typer.echo(yaml.safe_dump(faults.with_defaults(manifest), sort_keys=False), nl=False)
        return
    with _user_errors():
        client = Client.for_sandbox(name)
    try:
        client.request("POST", FAULTS_PATH, manifest)
    except ApiFailure as exc:
        _fail(str(exc), 1 if exc.code == 409 else 2)
    typer.echo(f'fault "{fault_name}" added to sandbox {name!r}')


@app.command("list")
def list_faults(
    output: str = typer.Option("table", "-o", "--output", help="table, json or yaml."),
    name: str = NameOption,
) -> None:
    """List a sandbox's faults."""
    if output not in ("table", "json", "yaml"):
        _fail(f"unsupported output format {output!r}: use table, json or yaml")
    with _user_errors():
        client = Client.for_sandbox(name)
    try:
        if output == "table":
            _print_table(client.request("GET", FAULTS_PATH, accept=TABLE))
            return
        faults = client.request("GET", FAULTS_PATH)
    except ApiFailure as exc:
        _fail(str(exc))
        return
    if output == "json":
        typer.echo(json.dumps(faults, indent=2))
    else:
        typer.echo(yaml.safe_dump(faults, sort_keys=False), nl=False)


def _print_table(table: dict[str, Any]) -> None:
    """The server's Table, printed as kubectl prints it (priority-0 columns, upper-case)."""
    rows = table.get("rows") or []
    if not rows:
        typer.echo("no faults", err=True)
        return
    shown = [i for i, c in enumerate(table["columnDefinitions"]) if not c.get("priority")]
    lines = [[table["columnDefinitions"][i]["name"].upper() for i in shown]]
    lines += [[str(row["cells"][i]) for i in shown] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(shown))]
    for line in lines:
        typer.echo(
            "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )


@app.command()
def clear(
    names: list[str] | None = NamesArgument,
    all_faults: bool = typer.Option(False, "--all", help="Remove every fault."),
    name: str = NameOption,
) -> None:
    """Remove faults from a sandbox (exit 1 if one of them did not exist)."""
    if bool(names) == all_faults:
        _fail("give fault names or --all (not both)")
    with _user_errors():
        client = Client.for_sandbox(name)
    if all_faults:
        try:
            removed = client.request("DELETE", FAULTS_PATH).get("items") or []
        except ApiFailure as exc:
            _fail(str(exc))
            return
        typer.echo(f"{len(removed)} fault(s) cleared from sandbox {name!r}")
        return
    missing = 0
    for fault in names or []:
        try:
            client.request("DELETE", f"{FAULTS_PATH}/{urllib.parse.quote(fault, safe='')}")
        except ApiFailure as exc:
            if exc.code != 404:
                _fail(str(exc))
            typer.echo(f'error: fault "{fault}" not found', err=True)
            missing += 1
            continue
        typer.echo(f'fault "{fault}" cleared')
    if missing:
        raise typer.Exit(1)

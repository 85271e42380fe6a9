"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright.

`meshcanary dashboard --allow-actions` runs as a user runs it (a subprocess of the real entry
point) against a private sandbox holding two SMM-style revisions (hand-written istiod installs;
the sandbox's simulated istiod injects once its pod is Ready). The test checks what a user
sees: the MESH page's proxy counts per control plane, a migration started from the page (with
its confirmation dialog) moving those counts live, without a reload, and cluster text that
looks like HTML shown as text. Screenshots at 1280x800 and 375x800 go to `test-artifacts/`.

Never `playwright install`: the browser is Debian's `/usr/bin/chromium`, launched with the
flags this machine's closed network needs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import istio_manifests as istio
from tests.e2e.conftest import RunningSandbox, requires_kubectl, start_sandbox, stop_sandbox

pytestmark = [pytest.mark.e2e, requires_kubectl]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OLD, NEW = "cp-old", "cp-new"
REV = "{}.istio-system"
LIVE_WAIT_MS = 60_000
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed"
)
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium (/usr/bin/chromium) is not installed", allow_module_level=True)


def install(sandbox: RunningSandbox, cp: str, version: str) -> None:
    """istiod first, its webhooks once it is Ready (its own pod would match them)."""
    objects = istio.smm_revision(cp, version)
    webhooks = [o for o in objects if o["kind"] == "MutatingWebhookConfiguration"]
    rest = [o for o in objects if o not in webhooks]
    sandbox.kubectl("apply", "-f", "-", input=istio.as_manifest(rest))
    sandbox.kubectl(
        "rollout", "status", f"deployment/istiod-{cp}", "-n", "istio-system", "--timeout=60s"
    )
    sandbox.kubectl("apply", "-f", "-", input=istio.as_manifest(webhooks))


def meshed(sandbox: RunningSandbox, name: str, cp: str, replicas: int, **extra: Any) -> None:
    """A namespace on `cp` running `replicas` injected pods."""
    metadata = {"name": name, "labels": {"istio.io/rev": REV.format(cp)}, **extra}
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}
    sandbox.kubectl("apply", "-f", "-", input=json.dumps(ns))
    sandbox.kubectl("apply", "-n", name, "-f", "-", input=istio.app("web", replicas))
    sandbox.kubectl("rollout", "status", "deployment/web", "-n", name, "--timeout=60s")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """A private sandbox (exactly two control planes): cp-old serves 3 proxies, cp-new 1."""
    sandbox = start_sandbox(tmp_path_factory.mktemp("dashboard-home"), "dashboard")
    try:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}
        sandbox.kubectl("apply", "-f", "-", input=json.dumps(namespace))
        install(sandbox, OLD, "1.15.3")
        install(sandbox, NEW, "1.17.2")
        record = {
            "target": "cp-x",
            "from": None,
            "step": "done",
            "startedAt": "2026-01-01T00:00:00Z",
            "finishedAt": "2026-01-01T00:01:00Z",
            "result": "failed",
            "message": XSS,
        }
        annotations = {"meshcanary.io/migration": json.dumps(record)}
        meshed(sandbox, "shop", OLD, 2)
        meshed(sandbox, "odd", OLD, 1, annotations=annotations)
        meshed(sandbox, "billing", NEW, 1)
        yield sandbox
    finally:
        stop_sandbox(sandbox)


@pytest.fixture(scope="module")
def dashboard(mesh: RunningSandbox) -> Iterator[str]:
    """`meshcanary dashboard --allow-actions --port 0` as a subprocess; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "meshcanary.cli", "dashboard", "--allow-actions", "--port", "0"],
        env=mesh.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"http://\S+", line)
        assert found, f"no URL printed: {line!r} {process.stderr.read() if process.stderr else ''}"
        yield found.group(0)
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def proxies_of(page: Any, cp: str) -> Any:
    return page.locator(f'tr[data-cp="{REV.format(cp)}"] .count')


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_mesh_page_counts_and_live_migration(
    browser: Any, dashboard: str, mesh: RunningSandbox
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(dashboard)
    assert "token" not in page.url, "the token must leave the address bar"
    expect = sync_api.expect
    expect(page.locator("tr[data-cp]")).to_have_count(2)
    expect(proxies_of(page, OLD)).to_have_text("3")
    expect(proxies_of(page, NEW)).to_have_text("1")
    expect(page.locator("figure.chart svg rect")).to_have_count(2)
    screenshot(page, "dashboard-mesh-1280x800")

    page.get_by_role("link", name="Namespaces").click()
    row = page.locator('tr[data-namespace="odd"]')
    expect(row).to_contain_text("<script>window.__xss=1</script>")
    assert page.evaluate("window.__xss") is None
    page.locator('button[data-action="migrate"][data-namespace="shop"]').click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.locator('button[data-action="migrate"][data-namespace="shop"]').click()
    page.locator("#migrate-target").select_option(REV.format(NEW))
    page.locator("#confirm-ok").click()
    screenshot(page, "dashboard-namespaces-1280x800")

    page.get_by_role("link", name="Mesh").click()
    version = page.evaluate("document.body.dataset.version")
    expect(proxies_of(page, NEW)).to_have_text("3", timeout=LIVE_WAIT_MS)
    expect(proxies_of(page, OLD)).to_have_text("1", timeout=LIVE_WAIT_MS)
    assert page.evaluate("document.body.dataset.version") != version
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert errors == []

    page.get_by_role("link", name="Timeline").click()
    expect(page.locator(".timeline")).to_contain_text("MigrationSucceeded", timeout=LIVE_WAIT_MS)
    expect(page.locator(".timeline")).to_contain_text(XSS)
    assert page.evaluate("window.__xss") is None
    screenshot(page, "dashboard-timeline-1280x800")
    context.close()


def test_narrow_window(browser: Any, dashboard: str) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    page.goto(dashboard)
    sync_api.expect(page.locator("tr[data-cp]")).to_have_count(2)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways at 375 px ({width} px wide)"
    screenshot(page, "dashboard-mesh-375x800")
    page.get_by_role("link", name="Namespaces").click()
    screenshot(page, "dashboard-namespaces-375x800")
    context.close()


def test_read_only_without_token_is_refused(dashboard: str) -> None:
    """The API refuses a client without the session cookie, even on loopback."""
    import urllib.error
    import urllib.request

    base = dashboard.split("?")[0]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(base + "api/mesh", timeout=10)
    assert refused.value.code == 401

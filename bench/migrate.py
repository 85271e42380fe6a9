"""Benchmark of `meshcanary migrate`: 100 namespaces x 3 Deployments with `--parallel 10`.

Starts a private sandbox (as `bench/sandbox_api.py` does), installs two SMM-style revisions by
hand (tests/e2e/istio_manifests.py: istiod Deployment and Service, then the injection webhooks
once istiod is Ready), creates the namespaces on cp-a with 3 Deployments each (1 or 2 replicas,
alternating), waits until every pod runs cp-a's proxy, then times the whole `meshcanary migrate
... --to cp-b --parallel 10` process. API requests are counted by the CLI itself
(`MESHCANARY_COUNT_REQUESTS=1`, kube/client.py). Reported:
  - total wall time of the migrate process (connect, checks, plan, relabel, restart, wait, verify);
  - the longest single namespace (its own relabel-to-verified time, from the JSON report);
  - longest x batches (namespaces / parallel): what strict batch-by-batch waves would cost, the
    yardstick the total should stay under (the engine refills a slot as soon as one frees);
  - API requests per namespace.
Run: `.venv/bin/python bench/migrate.py [--namespaces 100] [--parallel 10]`.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import harness  # noqa: E402
from tests.e2e import istio_manifests  # noqa: E402

from meshcanary.kube import apply, client, listing, resources  # noqa: E402

ISTIO_NS = "istio-system"
DEPLOYMENTS = ("web", "api", "worker")
CONCURRENCY = 16


def deployment(namespace: str, name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            },
        },
    }


async def install_revision(kube: Any, cp: str, version: str) -> None:
    objects = istio_manifests.smm_revision(cp, version)
    webhooks = [o for o in objects if o["kind"] == "MutatingWebhookConfiguration"]
    await apply.apply_manifests(kube, [o for o in objects if o not in webhooks])
    await listing.watch_until(
        kube,
        resources.raw(resources.Deployment),
        ISTIO_NS,
        f"istiod-{cp}",
        lambda d: bool(d and (d.get("status") or {}).get("availableReplicas")),
        timeout=60,
    )
    await apply.apply_manifests(kube, webhooks)


async def load(kubeconfig: Path, namespaces: list[str]) -> int:
    """Revisions, namespaces on cp-a and their Deployments, rolled out; returns the pod count."""
    async with client.session(str(kubeconfig)) as kube:
        istio = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ISTIO_NS}}
        await apply.apply_manifests(kube, [istio])
        for cp, version in (("cp-a", "1.13.9"), ("cp-b", "1.15.3")):
            await install_revision(kube, cp, version)
        gate = asyncio.Semaphore(CONCURRENCY)
        replicas = [1 + i % 2 for i in range(len(namespaces) * len(DEPLOYMENTS))]
        await asyncio.gather(
            *(_namespace(kube, gate, ns, replicas, i) for i, ns in enumerate(namespaces))
        )
        return sum(replicas)


async def _namespace(
    kube: Any, gate: asyncio.Semaphore, name: str, replicas: list[int], index: int
) -> None:
    async with gate:
        labels = {"istio.io/rev": f"cp-a.{ISTIO_NS}"}
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
        await apply.apply_manifest(kube, ns)
        for offset, app in enumerate(DEPLOYMENTS):
            count = replicas[index * len(DEPLOYMENTS) + offset]
            await apply.apply_manifest(kube, deployment(name, app, count))
        for app in DEPLOYMENTS:
            await listing.watch_until(
                kube,
                resources.raw(resources.Deployment),
                name,
                app,
                lambda d: (
                    bool(d)
                    and int((d.get("status") or {}).get("availableReplicas") or 0)
                    == int(d["spec"]["replicas"])
                ),
                timeout=300,
            )


def migrate(
    env: dict[str, str], namespaces: list[str], parallel: int
) -> tuple[float, list[dict[str, Any]], int]:
    command = [
        sys.executable,
        "-m",
        "meshcanary.cli",
        "migrate",
        *namespaces,
        "--to",
        "cp-b",
        "--parallel",
        str(parallel),
        "--timeout",
        "10m",
        "-o",
        "json",
    ]
    start = time.perf_counter()
    result = subprocess.run(
        command,
        env={**env, "MESHCANARY_COUNT_REQUESTS": "1"},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"migrate failed ({result.returncode}): {result.stderr[-2000:]}")
    return elapsed, json.loads(result.stdout), harness.counted_requests(result.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=10)
    args = parser.parse_args()
    env = harness.private_env()
    names = [f"mig-{i:03d}" for i in range(args.namespaces)]
    with harness.sandbox("migrate", env) as folder:
        kubeconfig = folder / "kubeconfig"
        cache = Path(env["MESHCANARY_HOME"]) / "kube-cache"
        env = {**env, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(cache)}
        loaded = time.perf_counter()
        pods = asyncio.run(load(kubeconfig, names))
        loaded = time.perf_counter() - loaded
        total, report, requests = migrate(env, names, args.parallel)
    longest = max(report, key=lambda r: r["seconds"])
    batches = math.ceil(args.namespaces / args.parallel)
    print(
        f"migrate benchmark: {args.namespaces} namespaces x {len(DEPLOYMENTS)} Deployments,"
        f" {pods} pods"
    )
    print(f"  setup (revisions, namespaces, rollouts on cp-a): {loaded:.1f}s")
    print(f"  results: {sorted({r['result'] for r in report})}")
    print(f"  total wall time (whole process, --parallel {args.parallel}): {total:.1f}s")
    print(f"  longest single namespace: {longest['seconds']:.1f}s ({longest['namespace']})")
    print(f"  longest x batches ({batches}): {longest['seconds'] * batches:.1f}s")
    print(f"  total / (longest x batches): {total / (longest['seconds'] * batches):.2f}")
    print(f"  API requests: {requests} total, {requests / args.namespaces:.1f} per namespace")


if __name__ == "__main__":
    main()

"""Benchmark of the inventory: `meshcanary ns list -A` against the kubectl loop users write.

Starts a private sandbox (as `bench/sandbox_api.py` does), stores 1,000 namespaces and 20,000
pods (20 per namespace) carrying what injected pods carry (annotations `istio.io/rev` and
`sidecar.istio.io/status`, an `istio-proxy` container with a `proxyv2:<version>` image, an
`istio-init` init container) for two SMM-style revisions, cp-a (1.13.9) and cp-b (1.15.3), and
the two revisions' injection webhooks and istiod Deployments. Half the namespaces are labelled
for cp-b with a quarter of their pods still on cp-a (they need a restart). Pods use
`schedulerName: benchmark-none` so the simulated scheduler and kubelet leave them alone; the
webhooks are created after the pods, so creating them does not call the simulated istiod.

Measured, whole process, wall time (median of 3 runs):
  - `meshcanary ns list -A`; its API request count comes from `MESHCANARY_COUNT_REQUESTS=1`
    (kube/client.py counts every HTTP request and prints the total on exit);
  - the kubectl loop: `kubectl get namespaces` then `kubectl get pods -n X -o json` per
    namespace, timed on a sample of namespaces (`--sample`, default 50) and extrapolated to all
    of them; requests = 1 + one per namespace (discovery is cached in a warm KUBECACHEDIR).
Targets: <= 3 s, and >= 10x faster than the loop. Run:
`.venv/bin/python bench/inventory.py [--namespaces 1000] [--pods-per-namespace 20]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import harness
import orjson

CONCURRENCY = 32
TARGET_SECONDS = 3.0
TARGET_SPEEDUP = 10.0
REVISIONS = {"cp-a": "1.13.9", "cp-b": "1.15.3"}
ISTIO_NS = "istio-system"


def revision(cp: str) -> str:
    return f"{cp}.{ISTIO_NS}"


def pod(namespace: str, index: int, cp: str) -> dict[str, Any]:
    """A pod as the injector leaves it."""
    rev, version = revision(cp), REVISIONS[cp]
    status = {"revision": rev, "containers": ["istio-proxy"], "initContainers": ["istio-init"]}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"web-{index:03d}",
            "namespace": namespace,
            "labels": {"app": "web", "security.istio.io/tlsMode": "istio", "istio.io/rev": rev},
            "annotations": {"istio.io/rev": rev, "sidecar.istio.io/status": json.dumps(status)},
        },
        "spec": {
            "schedulerName": "benchmark-none",
            "containers": [
                {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
                {"name": "istio-proxy", "image": f"docker.io/istio/proxyv2:{version}"},
            ],
            "initContainers": [
                {"name": "istio-init", "image": f"docker.io/istio/proxyv2:{version}"}
            ],
        },
    }


def webhook_configuration(cp: str) -> dict[str, Any]:
    """The revision's two injection webhooks, as istio-operator v2 renders them."""
    rev = revision(cp)
    common: dict[str, Any] = {
        "clientConfig": {"service": {"name": f"istiod-{cp}", "namespace": ISTIO_NS, "port": 443}},
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "rules": [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
            }
        ],
    }
    no_legacy = {"key": "istio-injection", "operator": "DoesNotExist"}
    not_opted_out = {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": f"istio-sidecar-injector-{cp}-{ISTIO_NS}",
            "labels": {"istio.io/rev": rev},
        },
        "webhooks": [
            {
                **common,
                "name": "rev.namespace.sidecar-injector.istio.io",
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "istio.io/rev", "operator": "In", "values": [rev]},
                        no_legacy,
                    ]
                },
                "objectSelector": {"matchExpressions": [not_opted_out]},
            },
            {
                **common,
                "name": "rev.object.sidecar-injector.istio.io",
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "istio.io/rev", "operator": "DoesNotExist"},
                        no_legacy,
                    ]
                },
                "objectSelector": {
                    "matchExpressions": [
                        not_opted_out,
                        {"key": "istio.io/rev", "operator": "In", "values": [rev]},
                    ]
                },
            },
        ],
    }


def istiod(cp: str) -> dict[str, Any]:
    labels = {"app": "istiod", "istio.io/rev": revision(cp)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"istiod-{cp}", "namespace": ISTIO_NS, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "schedulerName": "benchmark-none",
                    "containers": [
                        {"name": "discovery", "image": f"docker.io/istio/pilot:{REVISIONS[cp]}"}
                    ],
                },
            },
        },
    }


Api = harness.Api  # bench/validate.py loads the sandbox through inventory.Api and post_all


async def post_all(session: aiohttp.ClientSession, requests: list[tuple[str, Any]]) -> None:
    posts = [("POST", path, orjson.dumps(body), "application/json") for path, body in requests]
    await harness.send_all(session, posts, CONCURRENCY)


def namespace(index: int, cp: str) -> dict[str, Any]:
    labels = {"istio.io/rev": revision(cp)}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": f"app-{index:04d}", "labels": labels},
    }


def pod_revision(ns_index: int, pod_index: int) -> str:
    """Namespaces alternate cp-a / cp-b; a quarter of a cp-b namespace's pods still on cp-a."""
    if ns_index % 2 == 0:
        return "cp-a"
    return "cp-a" if pod_index % 4 == 0 else "cp-b"


async def load(kubeconfig: Path, namespaces: int, per_namespace: int) -> float:
    """Create everything; returns the seconds it took."""
    start = time.perf_counter()
    async with Api(kubeconfig).session() as session:
        ns_objects = [
            ("/api/v1/namespaces", namespace(i, "cp-a" if i % 2 == 0 else "cp-b"))
            for i in range(namespaces)
        ]
        ns_objects.append(
            (
                "/api/v1/namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ISTIO_NS}},
            )
        )
        await post_all(session, ns_objects)
        pods = [
            (f"/api/v1/namespaces/app-{n:04d}/pods", pod(f"app-{n:04d}", p, pod_revision(n, p)))
            for n in range(namespaces)
            for p in range(per_namespace)
        ]
        await post_all(session, pods)
        mesh = [
            (f"/apis/apps/v1/namespaces/{ISTIO_NS}/deployments", istiod(cp)) for cp in REVISIONS
        ]
        mesh += [
            (
                "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
                webhook_configuration(cp),
            )
            for cp in REVISIONS
        ]
        await post_all(session, mesh)
    return time.perf_counter() - start


async def raw_pod_list(kubeconfig: Path, limit: int = 1000) -> tuple[float, int]:
    """Seconds and requests to read every pod page by page over plain HTTP (the server's share)."""
    start, pages, token = time.perf_counter(), 0, ""
    async with Api(kubeconfig).session() as session:
        while True:
            suffix = f"&continue={token}" if token else ""
            async with session.get(f"/api/v1/pods?limit={limit}{suffix}") as response:
                body = orjson.loads(await response.read())
            pages += 1
            token = body["metadata"].get("continue") or ""
            if not token:
                return time.perf_counter() - start, pages


def timed(
    command: list[str], env: dict[str, str]
) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr}")
    return elapsed, result


def measure_meshcanary(env: dict[str, str], runs: int = 3) -> tuple[float, int, str]:
    counting = {**env, "MESHCANARY_COUNT_REQUESTS": "1"}
    command = [sys.executable, "-m", "meshcanary.cli", "ns", "list", "-A"]
    times, requests, output = [], 0, ""
    for _ in range(runs):
        elapsed, result = timed(command, counting)
        times.append(elapsed)
        requests = harness.counted_requests(result.stderr)
        output = result.stdout
    return statistics.median(times), requests, output


def measure_kubectl(env: dict[str, str], namespaces: int, sample: int) -> tuple[float, float, int]:
    """(seconds for the sample, extrapolated seconds for every namespace, requests)."""
    timed(["kubectl", "get", "namespaces", "-o", "name"], env)  # warm the discovery cache
    first, _ = timed(["kubectl", "get", "namespaces", "-o", "json"], env)
    step = max(1, namespaces // sample)
    chosen = [f"app-{i:04d}" for i in range(0, namespaces, step)][:sample]
    start = time.perf_counter()
    for name in chosen:
        timed(["kubectl", "get", "pods", "-n", name, "-o", "json"], env)
    spent = time.perf_counter() - start
    return spent, first + spent * namespaces / len(chosen), 1 + namespaces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--pods-per-namespace", type=int, default=20)
    parser.add_argument("--sample", type=int, default=50, help="kubectl loop: namespaces timed")
    args = parser.parse_args()
    env = harness.private_env()
    with harness.sandbox("inventory", env) as folder:
        kubeconfig = folder / "kubeconfig"
        cache = Path(env["MESHCANARY_HOME"]) / "kube-cache"
        env = {**env, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(cache)}
        loaded = asyncio.run(load(kubeconfig, args.namespaces, args.pods_per_namespace))
        ours, requests, output = measure_meshcanary(env)
        server_s, pages = asyncio.run(raw_pod_list(kubeconfig))
        sample_s, loop_s, loop_requests = measure_kubectl(env, args.namespaces, args.sample)
    report(args, loaded, ours, requests, output, sample_s, loop_s, loop_requests)
    print(f"  of which the sandbox serving the pod LIST ({pages} pages of 1000): {server_s:.2f} s")


def report(
    args: argparse.Namespace,
    loaded: float,
    ours: float,
    requests: int,
    output: str,
    sample_s: float,
    loop_s: float,
    loop_requests: int,
) -> None:
    pods = args.namespaces * args.pods_per_namespace
    lines = output.splitlines()
    print(
        f"inventory benchmark: {args.namespaces} namespaces, {pods} pods (loaded in {loaded:.1f}s)"
    )
    print("  `meshcanary ns list -A` output (first lines):")
    for line in lines[:4]:
        print(f"    {line}")
    print(f"    ... {len(lines) - 1} rows")
    speedup = loop_s / ours
    ok_time = "met" if ours <= TARGET_SECONDS else "MISSED"
    ok_speed = "met" if speedup >= TARGET_SPEEDUP else "MISSED"
    target = f"(target <= {TARGET_SECONDS:g} s: {ok_time})"
    print(f"  meshcanary ns list -A   {ours:8.2f} s  {requests:6d} API requests  {target}")
    print(
        f"  kubectl loop            {loop_s:8.2f} s  {loop_requests:6d} API requests"
        f"  (extrapolated from {args.sample} namespaces timed in {sample_s:.2f} s)"
    )
    print(f"  speed-up                {speedup:8.1f}x  (target >= {TARGET_SPEEDUP:g}x: {ok_speed})")


if __name__ == "__main__":
    main()

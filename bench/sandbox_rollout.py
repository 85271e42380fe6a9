"""Benchmark: `rollout restart` of 200 Deployments x 5 replicas to completion in the sandbox.

Starts a private sandbox with every pod delay at 0 (settings written as `sandbox up` keeps them),
creates the Deployments and waits until all are available, then sends every Deployment the patch
`kubectl rollout restart` sends, and waits (watching Deployments) until each one is complete by
`kubectl rollout status`'s rules. Prints wall time, the server's CPU time and its memory.
Run: `.venv/bin/python bench/sandbox_rollout.py [--deployments 200] [--replicas 5]`.
Targets: <= 30 s wall, RSS <= 600 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any

import harness
import orjson

from meshcanary.sandbox import runtime

NAMESPACE = "rollout-bench"


def deployment(i: int, replicas: int) -> dict[str, Any]:
    labels = {"app": f"app-{i:03d}"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"app-{i:03d}", "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            },
        },
    }


def complete(deploy: dict[str, Any], since: str | None) -> bool:
    """`kubectl rollout status` rules, plus: restarted after `since` when given."""
    spec, status = deploy["spec"], deploy.get("status") or {}
    annotations = deploy["spec"]["template"]["metadata"].get("annotations") or {}
    if since is not None and annotations.get("kubectl.kubernetes.io/restartedAt") != since:
        return False
    replicas = spec.get("replicas", 1)
    return (
        deploy["metadata"].get("generation", 0) <= status.get("observedGeneration", 0)
        and status.get("updatedReplicas", 0) >= replicas
        and status.get("replicas", 0) <= status.get("updatedReplicas", 0)
        and status.get("availableReplicas", 0) >= status.get("updatedReplicas", 0)
    )


async def wait_all(bench: harness.Api, count: int, since: str | None) -> None:
    async with bench.session() as session:
        while True:
            async with session.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments") as r:
                listed = await r.json()
            done = {d["metadata"]["name"] for d in listed["items"] if complete(d, since)}
            if len(done) == count:
                return
            rv = listed["metadata"]["resourceVersion"]
            url = (
                f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments?watch=true"
                f"&resourceVersion={rv}&timeoutSeconds=60"
            )
            async with session.get(url) as response:
                async for line in response.content:
                    event = orjson.loads(line)
                    name = event["object"]["metadata"]["name"]
                    if complete(event["object"], since):
                        done.add(name)
                    else:
                        done.discard(name)
                    if len(done) == count:
                        return


async def send_all(bench: harness.Api, requests: list[harness.Request]) -> None:
    async with bench.session() as session:
        await harness.send_all(session, requests, 8)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(kubeconfig: Path, pid: int, count: int, replicas: int) -> dict[str, float]:
    bench = harness.Api(kubeconfig)
    namespace = orjson.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    )
    await send_all(bench, [("POST", "/api/v1/namespaces", namespace, "application/json")])
    creates = [
        (
            "POST",
            f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
            orjson.dumps(deployment(i, replicas)),
            "application/json",
        )
        for i in range(count)
    ]
    start = time.perf_counter()
    await send_all(bench, creates)
    await wait_all(bench, count, None)
    figures = {"initial_rollout_s": time.perf_counter() - start}
    restarted_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    patch = orjson.dumps(
        {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": restarted_at}}
                }
            }
        }
    )
    restarts = [
        (
            "PATCH",
            f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/app-{i:03d}",
            patch,
            "application/strategic-merge-patch+json",
        )
        for i in range(count)
    ]
    cpu_before = cpu_seconds(pid)
    start = time.perf_counter()
    await send_all(bench, restarts)
    await wait_all(bench, count, restarted_at)
    figures["restart_rollout_s"] = time.perf_counter() - start
    figures["server_cpu_s"] = cpu_seconds(pid) - cpu_before
    figures["rss_mb"], figures["peak_rss_mb"] = harness.memory(pid)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deployments", type=int, default=200)
    parser.add_argument("--replicas", type=int, default=5)
    args = parser.parse_args()
    env = harness.private_env("meshcanary-rollout-")
    os.environ["MESHCANARY_HOME"] = env["MESHCANARY_HOME"]
    runtime.Sandbox.named("rollout").update_settings(
        pod_schedule_delay=0.0,
        pod_start_delay=0.0,
        pod_ready_delay=0.0,
        pod_termination_delay=0.0,
        jitter=0.0,
    )
    with harness.sandbox("rollout", env) as folder:
        pid = harness.server_pid(folder)
        figures = asyncio.run(run(folder / "kubeconfig", pid, args.deployments, args.replicas))
    print(
        f"sandbox rollout benchmark: {args.deployments} Deployments x {args.replicas} replicas,"
        " pod delays 0"
    )
    targets = {"restart_rollout_s": 30.0, "rss_mb": 600.0}
    for key, value in figures.items():
        target = targets.get(key)
        verdict = (
            f"  (target <= {target:g}: {'met' if value <= target else 'MISSED'})" if target else ""
        )
        print(f"  {key:<20} {value:10.1f}{verdict}")


if __name__ == "__main__":
    main()

"""Benchmark of the sandbox API server: LIST, GET, writes, watch latency, memory.

Starts a private sandbox (through the same entry point as `meshcanary sandbox up`), stores
10,000 pods, then measures from a client process on 127.0.0.1:
  - LIST of all pods as JSON and as a Table (what `kubectl get pods -A` asks for): median wall
    time including reading the whole body;
  - GET of one pod: median;
  - create and PATCH throughput (16 concurrent clients, writes acknowledged per second);
  - watch event latency with 20 concurrent watchers (patch sent -> event received), p50/p99;
  - the server's resident memory (VmRSS) and peak (VmHWM).
Run: `.venv/bin/python bench/sandbox_api.py [--pods 10000]`. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import harness
import orjson

TARGETS = {
    "list_json_ms": 300.0,
    "writes_per_s": 1000.0,
    "watch_p99_ms": 50.0,
    "rss_mb": 500.0,
}
CONCURRENCY = 16
WATCHERS = 20


def pod(namespace: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"web-{i:05d}",
            "namespace": namespace,
            "labels": {"app": "web", "shard": str(i % 10), "security.istio.io/tlsMode": "istio"},
            "annotations": {
                "istio.io/rev": "cp-v115x.istio-system",
                "sidecar.istio.io/status": '{"revision":"cp-v115x.istio-system"}',
            },
        },
        "spec": {
            # Not for the default scheduler: these pods measure the API server alone, so the
            # simulated scheduler and kubelet leave them as they are.
            "schedulerName": "benchmark-none",
            "containers": [
                {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
                {
                    "name": "istio-proxy",
                    "image": "docker.io/istio/proxyv2:1.15.3",
                    "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
                    "env": [{"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"}],
                },
            ],
            "initContainers": [{"name": "istio-init", "image": "docker.io/istio/proxyv2:1.15.3"}],
        },
    }


async def _timed_get(
    session: aiohttp.ClientSession, path: str, headers: dict[str, str] | None, runs: int
) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        async with session.get(path, headers=headers) as response:
            body = await response.read()
            assert response.status == 200, body[:200]
        times.append((time.perf_counter() - start) * 1000)
    return times


async def _throughput(session: aiohttp.ClientSession, requests: list[harness.Request]) -> float:
    return len(requests) / await harness.send_all(session, requests, CONCURRENCY)


async def _watch_latency(
    bench: harness.Api, session: aiohttp.ClientSession, events: int
) -> list[float]:
    async with session.get("/api/v1/pods?limit=1") as response:
        rv = (await response.json())["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    latencies: list[float] = []
    ready = asyncio.Event()
    connected = 0

    async def watcher() -> None:
        nonlocal connected
        async with (
            bench.session() as own,
            own.get(f"/api/v1/namespaces/bench-0/pods?watch=true&resourceVersion={rv}") as response,
        ):
            connected += 1
            if connected == WATCHERS:
                ready.set()
            seen = 0
            async for line in response.content:
                event = orjson.loads(line)
                marker = event["object"]["metadata"].get("annotations", {}).get("bench/seq")
                if marker in sent:
                    latencies.append((time.perf_counter() - sent[marker]) * 1000)
                    seen += 1
                    if seen == events:
                        return

    tasks = [asyncio.create_task(watcher()) for _ in range(WATCHERS)]
    await asyncio.wait_for(ready.wait(), 30)
    await asyncio.sleep(0.2)
    for seq in range(events):
        marker = str(seq)
        body = orjson.dumps({"metadata": {"annotations": {"bench/seq": marker}}})
        sent[marker] = time.perf_counter()
        async with session.patch(
            f"/api/v1/namespaces/bench-0/pods/web-{seq % 1000:05d}",
            data=body,
            headers={"Content-Type": "application/merge-patch+json"},
        ) as r:
            await r.read()
        await asyncio.sleep(0.005)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(kubeconfig: Path, pid: int, pods: int) -> dict[str, float]:
    bench = harness.Api(kubeconfig)
    figures: dict[str, float] = {}
    async with bench.session() as session:
        namespaces = max(1, pods // 1000)
        for n in range(namespaces):
            body = orjson.dumps(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"bench-{n}"}}
            )
            async with session.post(
                "/api/v1/namespaces", data=body, headers={"Content-Type": "application/json"}
            ) as r:
                await r.read()
        creates = [
            (
                "POST",
                f"/api/v1/namespaces/bench-{i % namespaces}/pods",
                orjson.dumps(pod(f"bench-{i % namespaces}", i // namespaces)),
                "application/json",
            )
            for i in range(pods)
        ]
        figures["create_per_s"] = await _throughput(session, creates)
        figures["rss_after_load_mb"] = harness.memory(pid)[0]

        table = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
        figures["list_json_ms"] = statistics.median(
            await _timed_get(session, "/api/v1/pods", None, 15)
        )
        figures["rss_after_list_json_mb"] = harness.memory(pid)[0]
        figures["list_table_ms"] = statistics.median(
            await _timed_get(session, "/api/v1/pods", table, 15)
        )
        figures["rss_after_list_table_mb"] = harness.memory(pid)[0]
        figures["list_selector_ms"] = statistics.median(
            await _timed_get(session, "/api/v1/pods?labelSelector=shard%3D3", None, 15)
        )
        figures["get_ms"] = statistics.median(
            await _timed_get(session, "/api/v1/namespaces/bench-0/pods/web-00001", None, 500)
        )

        patches = [
            (
                "PATCH",
                f"/api/v1/namespaces/bench-{i % namespaces}/pods/"
                f"web-{(i // namespaces) % 1000:05d}",
                orjson.dumps({"metadata": {"labels": {"round": str(i)}}}),
                "application/merge-patch+json",
            )
            for i in range(3000)
        ]
        figures["writes_per_s"] = await _throughput(session, patches)

        figures["rss_after_writes_mb"] = harness.memory(pid)[0]
        latencies = await _watch_latency(bench, session, 300)
        figures["watch_p50_ms"] = _pct(latencies, 0.50)
        figures["watch_p99_ms"] = _pct(latencies, 0.99)
    figures["rss_mb"], figures["peak_rss_mb"] = harness.memory(pid)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=10_000)
    args = parser.parse_args()
    with harness.sandbox("bench", harness.private_env()) as folder:
        figures = asyncio.run(run(folder / "kubeconfig", harness.server_pid(folder), args.pods))
    print(
        f"sandbox API benchmark: {args.pods} pods, {CONCURRENCY} concurrent writers,"
        f" {WATCHERS} watchers"
    )
    for key, value in figures.items():
        target = TARGETS.get(key)
        verdict = ""
        if target is not None:
            ok = value >= target if key.endswith("per_s") else value <= target
            verdict = f"  (target {'>=' if key.endswith('per_s') else '<='} {target:g}:"
            verdict += " met)" if ok else " MISSED)"
        print(f"  {key:<20} {value:10.1f}{verdict}")


if __name__ == "__main__":
    main()

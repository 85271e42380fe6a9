"""Benchmark of validation: 5,000 Istio resources (a realistic mix, EnvoyFilters included).

In process: the snapshot is built in memory (5,000 config objects over 200 namespaces, 2,000
injected pods of two SMM-style revisions, their webhooks and istiod Services) and
`validate.engine.analyze` runs against target 1.17, median of `--runs` runs. Target: <= 2 s.

With `--sandbox`, the same objects are loaded into a private sandbox (Istio 1.15.3 CRDs, then
concurrent POSTs, as `bench/inventory.py` does) and the read side is timed too: `gather.snapshot`
in process, and the whole `meshcanary validate --to-version 1.17 -A -o json` command.
Run: `.venv/bin/python bench/validate.py [--resources 5000] [--runs 5] [--sandbox]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]

from meshcanary.mesh import inventory  # noqa: E402
from meshcanary.mesh.versions import Version  # noqa: E402
from meshcanary.validate import engine  # noqa: E402
from meshcanary.validate.snapshot import ValidationSnapshot  # noqa: E402

TARGET_SECONDS = 2.0
ISTIO = "istio-system"
NAMESPACES = 200
PODS_PER_NAMESPACE = 10
MIX: dict[str, int] = {
    "VirtualService": 30,
    "DestinationRule": 24,
    "ServiceEntry": 10,
    "Gateway": 4,
    "Sidecar": 6,
    "EnvoyFilter": 8,
    "AuthorizationPolicy": 10,
    "PeerAuthentication": 3,
    "RequestAuthentication": 2,
    "Telemetry": 1,
    "WorkloadEntry": 2,
}
"""Relative weights of the kinds, from a typical mesh (routes and policies dominate)."""
PLURALS = {
    "VirtualService": ("networking.istio.io/v1beta1", "virtualservices"),
    "DestinationRule": ("networking.istio.io/v1beta1", "destinationrules"),
    "ServiceEntry": ("networking.istio.io/v1beta1", "serviceentries"),
    "Gateway": ("networking.istio.io/v1beta1", "gateways"),
    "Sidecar": ("networking.istio.io/v1beta1", "sidecars"),
    "EnvoyFilter": ("networking.istio.io/v1alpha3", "envoyfilters"),
    "AuthorizationPolicy": ("security.istio.io/v1beta1", "authorizationpolicies"),
    "PeerAuthentication": ("security.istio.io/v1beta1", "peerauthentications"),
    "RequestAuthentication": ("security.istio.io/v1beta1", "requestauthentications"),
    "Telemetry": ("telemetry.istio.io/v1alpha1", "telemetries"),
    "WorkloadEntry": ("networking.istio.io/v1beta1", "workloadentries"),
}


def spec(kind: str, i: int) -> dict[str, Any]:
    """A plausible spec per kind; every 10th one carries a problem an analyzer reports."""
    host = f"svc-{i}.ns.svc.cluster.local"
    broken = i % 10 == 0
    if kind == "VirtualService":
        route = {"destination": {"host": host, "subset": "v1"}, "weight": 100}
        http = [{"match": [{"uri": {"prefix": f"/api/{i}"}}], "route": [route], "timeout": "5s"}]
        return {"hosts": host if broken else [host], "http": http}
    if kind == "DestinationRule":
        policy = {"loadBalancer": {"simple": "LEAST_CONN" if broken else "ROUND_ROBIN"}}
        return {
            "host": host,
            "trafficPolicy": policy,
            "subsets": [{"name": "v1", "labels": {"v": "1"}}],
        }
    if kind == "ServiceEntry":
        port = {"number": 443, "name": "tls", "protocol": "TLS"}
        return {"hosts": [f"api{i}.example.com"], "ports": [port], "resolution": "DNS"}
    if kind == "Gateway":
        server = {"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"]}
        return {"selector": {"istio": "ingressgateway"}, "servers": [server]}
    if kind == "Sidecar":
        return {"egress": [{"hosts": ["./*", f"{ISTIO}/*"]}]}
    if kind == "EnvoyFilter":
        name = (
            "envoy.http_connection_manager"
            if broken
            else "envoy.filters.network.http_connection_manager"
        )
        match = {
            "context": "SIDECAR_INBOUND",
            "proxy": {"proxyVersion": "^1\\.15.*"},
            "listener": {"filterChain": {"filter": {"name": name}}},
        }
        value = {
            "name": "envoy.filters.http.lua",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
            },
        }
        patch = {"operation": "INSERT_BEFORE", "value": value}
        return {"configPatches": [{"applyTo": "HTTP_FILTER", "match": match, "patch": patch}]}
    if kind == "AuthorizationPolicy":
        rule = {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/b"]}}]}
        return {
            "selector": {"matchLabels": {"app": f"web-{i}"}},
            "action": "ALLOW",
            "rules": [rule],
        }
    if kind == "PeerAuthentication":
        return {"mtls": {"mode": "STRICT"}}
    if kind == "RequestAuthentication":
        return {"jwtRules": [{"issuer": "https://issuer.example.com", "jwksUri": "https://jwks"}]}
    if kind == "Telemetry":
        return {"accessLogging": [{"providers": [{"name": "envoy"}]}]}
    return {"address": f"10.0.{i % 250}.{i % 200}", "labels": {"app": "vm"}}


def config_objects(total: int) -> list[dict[str, Any]]:
    """`total` objects in MIX's proportions, spread over the namespaces."""
    weight = sum(MIX.values())
    counts = {kind: total * share // weight for kind, share in MIX.items()}
    counts["VirtualService"] += total - sum(counts.values())
    objects = []
    for kind, count in counts.items():
        api_version, _ = PLURALS[kind]
        for i in range(count):
            meta = {"name": f"{kind.lower()}-{i}", "namespace": f"app-{i % NAMESPACES:03d}"}
            objects.append(
                {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": spec(kind, i)}
            )
    return objects


def mesh() -> inventory.MeshSnapshot:
    """Two revisions, namespaces alternating between them, injected pods."""
    sys.path.insert(0, str(ROOT))
    from tests.unit.validate import builders

    cps = [("cp-a", "1.15.3"), ("cp-b", "1.16.2")]
    namespaces = [
        builders.namespace(f"app-{n:03d}", **{"istio.io/rev": builders.rev(cps[n % 2][0])})
        for n in range(NAMESPACES)
    ]
    pods = [
        builders.pod(f"app-{n:03d}", f"web-{p}", cps[n % 2][0], cps[n % 2][1])
        for n in range(NAMESPACES)
        for p in range(PODS_PER_NAMESPACE)
    ]
    return builders.mesh(*cps, namespaces=namespaces, pods=pods).mesh


def in_process(total: int, runs: int) -> tuple[float, list[float], Counter[str]]:
    objects = config_objects(total)
    base = mesh()
    times, found = [], []
    for _ in range(runs):
        snapshot = ValidationSnapshot(
            mesh=base,
            config=objects,
            services=[
                {"metadata": {"name": f"istiod-{cp}", "namespace": ISTIO}}
                for cp in ("cp-a", "cp-b")
            ],
        )
        start = time.perf_counter()
        found = engine.analyze(snapshot, Version(1, 17))
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, Counter(f.code for f in found)


# -- against a sandbox ----------------------------------------------------------------------------


async def load_sandbox(kubeconfig: Path, objects: list[dict[str, Any]]) -> float:
    import inventory as inventory_bench  # bench/inventory.py: the concurrent POST loader

    from meshcanary.controlplane import istio_crds

    start = time.perf_counter()
    api = inventory_bench.Api(kubeconfig)
    async with api.session() as session:
        crds = [
            ("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", c)
            for c in istio_crds.definitions(Version(1, 15, 3))
        ]
        await inventory_bench.post_all(session, crds)
        await asyncio.sleep(1.0)  # CRDs become Established
        namespaces = [
            (
                "/api/v1/namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"app-{n:03d}"}},
            )
            for n in range(NAMESPACES)
        ]
        await inventory_bench.post_all(session, namespaces)
        posts = []
        for obj in objects:
            api_version, plural = PLURALS[obj["kind"]]
            posts.append(
                (f"/apis/{api_version}/namespaces/{obj['metadata']['namespace']}/{plural}", obj)
            )
        await inventory_bench.post_all(session, posts)
    return time.perf_counter() - start


async def gather_once(kubeconfig: Path) -> float:
    from meshcanary.kube import client
    from meshcanary.validate import gather

    async with client.session(str(kubeconfig), None) as kube:
        start = time.perf_counter()
        snapshot = await gather.snapshot(kube)
        elapsed = time.perf_counter() - start
    assert len(snapshot.config) >= len(MIX)
    return elapsed


def sandbox_figures(objects: list[dict[str, Any]], runs: int) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="meshcanary-bench-"))
    env = {**os.environ, "MESHCANARY_HOME": str(home)}
    cli = [sys.executable, "-m", "meshcanary.cli"]
    subprocess.run(
        [*cli, "sandbox", "up", "--name", "validate"], env=env, check=True, capture_output=True
    )
    kubeconfig = home / "sandboxes" / "validate" / "kubeconfig"
    env["KUBECONFIG"] = str(kubeconfig)
    try:
        loaded = asyncio.run(load_sandbox(kubeconfig, objects))
        gathers = [asyncio.run(gather_once(kubeconfig)) for _ in range(runs)]
        commands = []
        for _ in range(runs):
            start = time.perf_counter()
            result = subprocess.run(
                [*cli, "validate", "--to-version", "1.17", "-A", "-o", "json"],
                env=env,
                capture_output=True,
                text=True,
            )
            commands.append(time.perf_counter() - start)
            assert result.returncode in (0, 1), result.stderr
        count = len(json.loads(result.stdout)["findings"])
    finally:
        subprocess.run(
            [*cli, "sandbox", "down", "--name", "validate"], env=env, capture_output=True
        )
    return {
        "load_s": loaded,
        "gather_s": statistics.median(gathers),
        "command_s": statistics.median(commands),
        "findings": float(count),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resources", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sandbox", action="store_true", help="also time gather against a sandbox")
    args = parser.parse_args()
    median, times, codes = in_process(args.resources, args.runs)
    verdict = "OK" if median <= TARGET_SECONDS else "TOO SLOW"
    pods = NAMESPACES * PODS_PER_NAMESPACE
    print(f"validate: {args.resources} Istio resources, {NAMESPACES} namespaces, {pods} pods")
    print(
        f"  analyze (in process): median {median:.3f} s of {args.runs} runs "
        f"(target <= {TARGET_SECONDS:.0f} s: {verdict})"
    )
    print(f"  runs: {', '.join(f'{t:.3f}' for t in times)}")
    per_code = ", ".join(f"{code} x{n}" for code, n in sorted(codes.items()))
    print(f"  findings: {sum(codes.values())} ({per_code})")
    if args.sandbox:
        figures = sandbox_figures(config_objects(args.resources), min(args.runs, 3))
        print(f"  sandbox: loaded in {figures['load_s']:.1f} s")
        print(f"  gather.snapshot (in process, median): {figures['gather_s']:.3f} s")
        print(
            f"  `meshcanary validate -A -o json` (whole process, median): "
            f"{figures['command_s']:.3f} s, {figures['findings']:.0f} findings"
        )


if __name__ == "__main__":
    main()

"""What the benchmarks share: a private sandbox started through the CLI, an HTTPS client built
from its kubeconfig, concurrent requests, and the server process's figures read from /proc."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import yaml

SANDBOX_CLI = [sys.executable, "-m", "meshcanary.cli", "sandbox"]

Request = tuple[str, str, bytes, str]
"""(method, path, body, Content-Type)."""


def private_env(prefix: str = "meshcanary-bench-") -> dict[str, str]:
    """The environment with MESHCANARY_HOME pointing at a new temporary folder."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    return {**os.environ, "MESHCANARY_HOME": str(home)}


@contextmanager
def sandbox(name: str, env: dict[str, str]) -> Iterator[Path]:
    """`meshcanary sandbox up` in env's MESHCANARY_HOME; yields the sandbox's folder, then down."""
    subprocess.run([*SANDBOX_CLI, "up", "--name", name], env=env, check=True, capture_output=True)
    try:
        yield Path(env["MESHCANARY_HOME"]) / "sandboxes" / name
    finally:
        subprocess.run([*SANDBOX_CLI, "down", "--name", name], env=env, capture_output=True)


def server_pid(folder: Path) -> int:
    pid: int = json.loads((folder / "server.json").read_text())["pid"]
    return pid


def memory(pid: int) -> tuple[float, float]:
    """The process's resident memory and its peak (VmRSS, VmHWM), in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def counted_requests(stderr: str) -> int:
    """The total `MESHCANARY_COUNT_REQUESTS=1` makes the CLI print on exit; -1 if absent."""
    match = re.search(r"meshcanary: (\d+) API requests", stderr)
    return int(match.group(1)) if match else -1


class Api:
    """Just enough of an HTTP client to load the sandbox fast, from its kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        self.server = cluster["server"]
        self.headers = {"Authorization": f"Bearer {config['users'][0]['user']['token']}"}
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
        self.ssl = ssl.create_default_context(cadata=ca)

    def session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=self.ssl, limit=64)
        return aiohttp.ClientSession(
            self.server,
            headers=self.headers,
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=600),
        )


async def send_all(session: aiohttp.ClientSession, requests: list[Request], workers: int) -> float:
    """Send every request from `workers` concurrent clients, each expecting 200 or 201; returns
    the seconds the sending took."""
    queue: asyncio.Queue[Request] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            method, path, body, content_type = queue.get_nowait()
            async with session.request(
                method, path, data=body, headers={"Content-Type": content_type}
            ) as response:
                text = await response.read()
                assert response.status in (200, 201), (response.status, text[:300])

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return time.perf_counter() - start

"""`kill -9` during a stream of writes loses no acknowledged write and restarts cleanly."""

from __future__ import annotations

import json
import os
import signal
import ssl
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import RunningSandbox, start_sandbox, stop_sandbox

pytestmark = pytest.mark.e2e


class Client:
    """A bare HTTPS client using the sandbox's kubeconfig (token and CA)."""

    def __init__(self, kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        self.server = cluster["server"]
        self.token = config["users"][0]["user"]["token"]
        ca = __import__("base64").b64decode(cluster["certificate-authority-data"]).decode()
        self.context = ssl.create_default_context(cadata=ca)

    def request(self, method: str, path: str, body: object = None) -> dict[str, object]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
            result: dict[str, object] = json.loads(response.read())
            return result


def _configmap(i: int) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"cm-{i}"},
        "data": {"i": str(i)},
    }


def test_kill_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    sandbox = start_sandbox(tmp_path, "crash")
    try:
        client = Client(sandbox.kubeconfig)
        acknowledged: list[tuple[str, int]] = []
        refused: list[str] = []
        enough = threading.Event()

        def write_until_killed() -> None:
            for i in range(100_000):
                try:
                    created = client.request(
                        "POST", "/api/v1/namespaces/default/configmaps", _configmap(i)
                    )
                except urllib.error.HTTPError as exc:
                    refused.append(f"{exc.code}: {exc.read()!r}")
                    enough.set()
                    return
                except (urllib.error.URLError, ConnectionError, OSError):
                    return
                meta = created["metadata"]
                assert isinstance(meta, dict)
                acknowledged.append((str(meta["name"]), int(meta["resourceVersion"])))
                if len(acknowledged) >= 300:
                    enough.set()

        writer = threading.Thread(target=write_until_killed)
        writer.start()
        assert enough.wait(60), "the writer did not get 300 writes acknowledged"
        assert not refused, refused
        info = json.loads((sandbox.home / "sandboxes" / "crash" / "server.json").read_text())
        os.kill(info["pid"], signal.SIGKILL)
        writer.join(30)
        assert not writer.is_alive()

        status = sandbox.meshcanary("sandbox", "status", "--name", "crash", check=False)
        assert status.returncode == 1 and "crashed" in status.stdout

        restarted = start_sandbox(tmp_path, "crash")
        client = Client(restarted.kubeconfig)
        listed = client.request("GET", "/api/v1/namespaces/default/configmaps")
        items = listed["items"]
        assert isinstance(items, list)
        stored = {
            item["metadata"]["name"]: int(item["metadata"]["resourceVersion"]) for item in items
        }
        for name, rv in acknowledged:
            assert stored.get(name) == rv, f"acknowledged write {name} (rv {rv}) was lost"
        after = client.request("POST", "/api/v1/namespaces/default/configmaps", _configmap(-1))
        meta = after["metadata"]
        assert isinstance(meta, dict)
        assert int(meta["resourceVersion"]) > max(rv for _, rv in acknowledged)
    finally:
        stop_sandbox(RunningSandbox("crash", tmp_path, sandbox.kubeconfig, tmp_path))

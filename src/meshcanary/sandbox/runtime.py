"""A named sandbox on disk: its state folder, background process, token and kubeconfig.

Layout under `$MESHCANARY_HOME/sandboxes/<name>/` (default home: `~/.local/state/meshcanary`):
`state.db` (SQLite, WAL), `token` (0600), `kubeconfig` (0600), `server.json` (pid and port of the
running server), `server.log`. Several sandboxes live side by side under different names. The
status is read from the process table and the server's own `/healthz`, never assumed from files,
so a crashed server is reported as crashed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from meshcanary.sandbox.settings import Settings
from meshcanary.sandbox.tls import Certificates

NAME_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?")
START_TIMEOUT = 20.0
SERVER_ENVIRONMENT = {
    "PYTHONUNBUFFERED": "1",
    # glibc raises its mmap threshold after large frees, after which multi-megabyte LIST bodies
    # come from the heap and are never returned to the OS: fix it at 256 KiB.
    "MALLOC_MMAP_THRESHOLD_": "262144",
    "MALLOC_TRIM_THRESHOLD_": "1048576",
}
STOP_TIMEOUT = 10.0


class SandboxError(Exception):
    """A problem the user can act on; the CLI prints it as one line."""


class State(Enum):
    RUNNING = "running"
    STOPPED = "stopped"
    CRASHED = "crashed"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class Status:
    state: State
    pid: int | None = None
    port: int | None = None
    detail: str = ""


def home() -> Path:
    configured = os.environ.get("MESHCANARY_HOME")
    if configured:
        return Path(configured).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "meshcanary"


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise SandboxError(
            f"invalid sandbox name {name!r}: use 1-40 lowercase letters, digits and '-'"
        )
    return name


@dataclass(frozen=True)
class Sandbox:
    """Paths and process control for one named sandbox."""

    name: str
    root: Path

    @classmethod
    def named(cls, name: str) -> Sandbox:
        return cls(check_name(name), home() / "sandboxes" / name)

    @property
    def database(self) -> Path:
        return self.root / "state.db"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def settings_file(self) -> Path:
        return self.root / "settings.json"

    def settings(self) -> Settings:
        try:
            return Settings.load(self.settings_file)
        except (ValueError, TypeError) as exc:
            raise SandboxError(f"{self.settings_file}: {exc}") from None

    def update_settings(self, **changes: Any) -> Settings:
        """Merge `changes` (None values ignored) into the stored settings."""
        current = asdict(self.settings())
        current.update({k: v for k, v in changes.items() if v is not None})
        try:
            settings = Settings.from_mapping(current)
        except (ValueError, TypeError) as exc:
            raise SandboxError(str(exc)) from None
        self.root.mkdir(parents=True, exist_ok=True)
        self.settings_file.write_text(settings.to_json())
        return settings

    @property
    def certificates(self) -> Certificates:
        return Certificates(self.root)

    @property
    def _server_file(self) -> Path:
        return self.root / "server.json"

    @property
    def _token_file(self) -> Path:
        return self.root / "token"

    # -- token and kubeconfig ------------------------------------------------------------

    def token(self) -> str:
        """The sandbox's bearer token, created once and kept across restarts."""
        if self._token_file.exists():
            return self._token_file.read_text().strip()
        self.root.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        _write_private(self._token_file, token + "\n")
        return token

    def write_kubeconfig(self, host: str, port: int) -> Path:
        context = f"meshcanary-{self.name}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": context,
                    "cluster": {
                        "server": f"https://{_url_host(host)}:{port}",
                        "certificate-authority-data": base64.b64encode(
                            self.certificates.ca.read_bytes()
                        ).decode(),
                    },
                }
            ],
            "users": [{"name": context, "user": {"token": self.token()}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": context, "user": context, "namespace": "default"},
                }
            ],
            "current-context": context,
            "preferences": {},
        }
        _write_private(self.kubeconfig, yaml.safe_dump(config, sort_keys=False))
        return self.kubeconfig

    # -- status --------------------------------------------------------------------------

    def server_info(self) -> dict[str, Any] | None:
        try:
            info = json.loads(self._server_file.read_text())
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def record_server(self, pid: int, host: str, port: int) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        info = {"pid": pid, "host": host, "port": port, "started": time.time()}
        tmp = self._server_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(self._server_file)

    def forget_server(self) -> None:
        self._server_file.unlink(missing_ok=True)

    def status(self) -> Status:
        info = self.server_info()
        if info is None:
            return Status(State.STOPPED)
        pid, port, host = int(info["pid"]), int(info["port"]), str(info.get("host", "127.0.0.1"))
        if not _alive(pid):
            return Status(State.CRASHED, pid, port, f"process {pid} is not running")
        if not self.certificates.ca.exists() or not healthy(
            host, port, self.certificates.client_context()
        ):
            return Status(State.UNHEALTHY, pid, port, f"no answer on {host}:{port}/healthz")
        return Status(State.RUNNING, pid, port)

    # -- process control -----------------------------------------------------------------

    def start(self, host: str, port: int, progress: Callable[[], None] | None = None) -> Status:
        """Start the server in the background and wait until it answers /healthz."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.token()
        self.certificates.ensure(host)
        command = [
            sys.executable,
            "-m",
            "meshcanary.sandbox",
            "--name",
            self.name,
            "--host",
            host,
            "--port",
            str(port),
        ]
        with open(self.log, "ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **SERVER_ENVIRONMENT},
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SandboxError(
                    f"the sandbox server exited with code {process.returncode}; see {self.log}"
                    f"{_tail(self.log)}"
                )
            status = self.status()
            if status.state is State.RUNNING and status.pid == process.pid:
                return status
            if progress:
                progress()
            time.sleep(0.05)
        process.terminate()
        raise SandboxError(
            f"the sandbox server did not become healthy in {START_TIMEOUT:.0f}s; see {self.log}"
        )

    def stop(self) -> bool:
        """Stop the server if it runs; True when a process was stopped."""
        info = self.server_info()
        if info is None:
            return False
        pid = int(info["pid"])
        stopped = False
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
            stopped = True
        self.forget_server()
        return stopped

    def wipe(self) -> None:
        """Delete the stored cluster state (the token and kubeconfig stay valid)."""
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.database}{suffix}").unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def healthy(host: str, port: int, context: ssl.SSLContext, timeout: float = 1.0) -> bool:
    """Whether the server answers /healthz over HTTPS with a certificate from our CA."""
    try:
        with urllib.request.urlopen(
            f"https://{_url_host(host)}:{port}/healthz", timeout=timeout, context=context
        ) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError, ssl.SSLError):
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own exited child, not yet reaped) is not a running server.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return ("\n  " + "\n  ".join(text)) if text else ""

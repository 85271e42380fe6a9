"""A scripted, in-process API server behind lightkube's transport seam (httpx2.MockTransport).

Unit tests drive the kube layer's real lightkube calls through it: pagination tokens, watch
streams that break or expire, error Status bodies. Nothing listens on a socket.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import yaml

Handler = Callable[[httpx2.Request], httpx2.Response]


def status(code: int, reason: str, message: str = "", retry_after: int | None = None) -> Any:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message or reason,
    }
    if retry_after is not None:
        body["details"] = {"retryAfterSeconds": retry_after}
    return httpx2.Response(code, json=body)


def event(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def configmap(name: str, rv: str, namespace: str = "ns", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv},
        "data": data,
    }


async def stream(chunks: list[bytes], then: Exception | None = None) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
    if then is not None:
        raise then


@dataclass
class FakeApi:
    """Routes requests to `routes` by (method, path); records every request."""

    routes: dict[tuple[str, str], Handler | list[Handler]] = field(default_factory=dict)
    requests: list[httpx2.Request] = field(default_factory=list)

    def on(self, method: str, path: str, *handlers: Handler) -> None:
        """Answer with the handlers in turn (the last one repeats)."""
        self.routes[(method, path)] = list(handlers)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        handlers = self.routes.get((request.method, request.url.path))
        if not handlers:
            return status(404, "NotFound", f"{request.method} {request.url.path}")
        assert isinstance(handlers, list)
        handler = handlers.pop(0) if len(handlers) > 1 else handlers[0]
        return handler(request)

    def params(self, path: str) -> list[dict[str, str]]:
        return [dict(r.url.params) for r in self.requests if r.url.path == path]

    @property
    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle)


def write_kubeconfig(path: Path, *contexts: str, current: str | None = None) -> Path:
    """A kubeconfig with one cluster and user per context name."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": c, "cluster": {"server": f"https://{c}.example:6443"}} for c in contexts
        ],
        "users": [{"name": c, "user": {"token": f"token-{c}"}} for c in contexts],
        "contexts": [
            {"name": c, "context": {"cluster": c, "user": c, "namespace": f"ns-{c}"}}
            for c in contexts
        ],
    }
    if current is not None:
        config["current-context"] = current
    path.write_text(yaml.safe_dump(config))
    return path

"""Helpers for the e2e tests that drive the sandbox with the official Python client
(`kubernetes`): a client per kubeconfig, and waiting on a watch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client import ApiClient


def api_client_for(kubeconfig: Path) -> ApiClient:
    """A fresh client loaded from `kubeconfig`, leaving the global default configuration alone."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return ApiClient(configuration)


def watch_until(
    list_call: Callable[..., Any],
    *args: Any,
    since: int | str,
    until: Callable[[dict[str, Any]], bool],
    timeout: int,
    describe: Callable[[list[dict[str, Any]]], object],
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Events from `since` on (replayed, then live) up to the first satisfying `until`.

    Bounded by the server-side `timeout_seconds` (`timeout`); fails when the stream ends first,
    showing `describe(events)`.
    """
    events: list[dict[str, Any]] = []
    stream = watch.Watch()
    for event in stream.stream(
        list_call,
        *args,
        resource_version=str(since),
        timeout_seconds=timeout,
        _request_timeout=timeout + 5,
        **kwargs,
    ):
        events.append(event)
        if until(event):
            stream.stop()
            return events
    raise AssertionError(f"the watch ended before the awaited event; saw {describe(events)}")

"""A real kopf operator (`kopf_operator_app.py`) run by `KopfRunner` against a sandbox.

kopf is a demanding client: it discovers resources, watches with timeouts and reconnects, stores
its progress and diff-base in annotations and status through merge patches, holds deletions with
a finalizer until its delete handler has run, and posts Events with generated names.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
from kopf.testing import KopfRunner
from kubernetes import client
from kubernetes.client import ApiClient

from tests.e2e import kopf_operator_app as app
from tests.e2e import python_client
from tests.e2e.conftest import RunningSandbox
from tests.e2e.python_client import api_client_for

pytestmark = pytest.mark.e2e

APP = Path(__file__).with_name("kopf_operator_app.py")
FINALIZER = "canaries.kopf.meshcanary.test/finalizer"
WATCH_TIMEOUT = 15

CANARY_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{app.PLURAL}.{app.GROUP}"},
    "spec": {
        "group": app.GROUP,
        "scope": "Namespaced",
        "names": {"plural": app.PLURAL, "singular": "canary", "kind": "Canary"},
        "versions": [
            {
                "name": app.VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "size": {"type": "integer"},
                                    "mode": {"type": "string", "default": "slow"},
                                },
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def api(sandbox: RunningSandbox) -> Iterator[ApiClient]:
    with api_client_for(sandbox.kubeconfig) as api_client:
        yield api_client


@pytest.fixture(scope="module")
def canary_crd(api: ApiClient) -> Iterator[None]:
    extensions = client.ApiextensionsV1Api(api)
    extensions.create_custom_resource_definition(CANARY_CRD)
    yield
    extensions.delete_custom_resource_definition(CANARY_CRD["metadata"]["name"])


@pytest.fixture
def operator_env(sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(sandbox.kubeconfig))


@pytest.fixture
def operator(operator_env: None) -> Iterator[Callable[[str], KopfRunner]]:
    """Runs of the operator, standalone (no peering), each watching one namespace.

    Every run loads the operator file into a registry of its own (`kopf run` makes it the
    default one); the previous default comes back afterwards.
    """
    previous = kopf.get_default_registry()

    def run(namespace: str) -> KopfRunner:
        return KopfRunner(
            ["run", "--standalone", "--namespace", namespace, "--verbose", str(APP)],
            registry=kopf.OperatorRegistry(),
            timeout=30,
        )

    yield run
    kopf.set_default_registry(previous)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """`kopf run` reconfigures the root logger (a handler on the runner's stream, its level)."""
    root, quiet = logging.getLogger(), logging.getLogger("asyncio")
    saved = (root.handlers[:], root.level, quiet.handlers[:], quiet.propagate)
    yield
    root.handlers[:], quiet.handlers[:] = saved[0], saved[2]
    root.setLevel(saved[1])
    quiet.propagate = saved[3]


def canary(name: str, size: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{app.GROUP}/{app.VERSION}",
        "kind": "Canary",
        "metadata": {"name": name},
        "spec": {"size": size},
    }


def _statuses(events: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(e["type"], e["raw_object"].get("status")) for e in events]


watch_until = functools.partial(
    python_client.watch_until, timeout=WATCH_TIMEOUT, describe=_statuses
)


def test_operator_lifecycle(
    api: ApiClient,
    canary_crd: None,
    namespace: str,
    operator: Callable[[str], KopfRunner],
) -> None:
    custom = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    args = (app.GROUP, app.VERSION, namespace, app.PLURAL)

    def phase_is(phase: str, **status: Any) -> Callable[[dict[str, Any]], bool]:
        def check(event: dict[str, Any]) -> bool:
            got = event["raw_object"].get("status") or {}
            return got.get("phase") == phase and all(got.get(k) == v for k, v in status.items())

        return check

    with operator(namespace) as runner:
        created = custom.create_namespaced_custom_object(*args, canary("tweety", 1))
        start = created["metadata"]["resourceVersion"]
        events = watch_until(
            custom.list_namespaced_custom_object,
            *args,
            since=start,
            until=phase_is("Created", size=1, mode="slow"),
        )
        handled = events[-1]["raw_object"]
        assert FINALIZER in handled["metadata"]["finalizers"]
        assert handled["metadata"]["labels"]["canaries.kopf.meshcanary.test/managed"] == "true"
        assert handled["status"]["created"] == {"seen": 1}
        assert handled["spec"] == {"size": 1, "mode": "slow"}

        resized = custom.patch_namespaced_custom_object(
            *args[:3], app.PLURAL, "tweety", {"spec": {"size": 3, "mode": "fast"}}
        )
        watch_until(
            custom.list_namespaced_custom_object,
            *args,
            since=resized["metadata"]["resourceVersion"],
            until=phase_is("Resized", size=3, mode="fast"),
        )

        answer = custom.delete_namespaced_custom_object(*args[:3], app.PLURAL, "tweety")
        assert answer["metadata"]["deletionTimestamp"]
        assert FINALIZER in answer["metadata"]["finalizers"]
        events = watch_until(
            custom.list_namespaced_custom_object,
            *args,
            since=answer["metadata"]["resourceVersion"],
            until=lambda e: e["type"] == "DELETED",
        )
        # The object stayed until the delete handler had run and kopf had let go of it.
        gone = events[-1]["raw_object"]
        assert gone["status"]["phase"] == "Deleting"
        assert FINALIZER not in (gone["metadata"].get("finalizers") or [])
        assert all(e["type"] == "MODIFIED" for e in events[:-1])

        # kopf posts its Events asynchronously: wait for the last one.
        posted = watch_until(
            core.list_namespaced_event,
            namespace,
            since=start,
            until=lambda e: e["raw_object"].get("reason") == "Deleted",
        )
        listed = core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=tweety"
        ).items
        assert {e.reason for e in listed} >= {"Created", "Resized", "Deleted"}
        for event in listed:
            assert event.metadata.name.startswith("kopf-event-")
            assert event.metadata.name != "kopf-event-"
            assert event.involved_object.kind == "Canary"
            assert event.involved_object.uid == created["metadata"]["uid"]
            assert event.type == "Normal"
        assert posted

        missing = custom.list_namespaced_custom_object(*args)
        assert missing["items"] == []

    assert runner.exception is None
    assert runner.exit_code == 0
    assert "Handler 'created' succeeded" in runner.output
    assert "Handler 'deleted' succeeded" in runner.output


def test_a_deletion_waits_for_the_operator(
    api: ApiClient,
    canary_crd: None,
    namespace: str,
    operator: Callable[[str], KopfRunner],
) -> None:
    """kopf's finalizer holds a deleted object while the operator is down, until it is back."""
    custom = client.CustomObjectsApi(api)
    args = (app.GROUP, app.VERSION, namespace, app.PLURAL)

    with operator(namespace) as first:
        created = custom.create_namespaced_custom_object(*args, canary("sylvester", 2))
        watch_until(
            custom.list_namespaced_custom_object,
            *args,
            since=created["metadata"]["resourceVersion"],
            until=lambda e: (e["raw_object"].get("status") or {}).get("phase") == "Created",
        )
    assert first.exception is None
    assert first.exit_code == 0

    answer = custom.delete_namespaced_custom_object(*args[:3], app.PLURAL, "sylvester")
    assert answer["metadata"]["deletionTimestamp"]
    held = custom.get_namespaced_custom_object(*args[:3], app.PLURAL, "sylvester")
    assert held["metadata"]["finalizers"] == [FINALIZER]
    assert held["status"]["phase"] == "Created"

    with operator(namespace) as second:
        events = watch_until(
            custom.list_namespaced_custom_object,
            *args,
            since=held["metadata"]["resourceVersion"],
            until=lambda e: e["type"] == "DELETED",
        )
        assert events[-1]["raw_object"]["status"]["phase"] == "Deleting"
    assert second.exception is None
    assert second.exit_code == 0
    assert "Handler 'deleted' succeeded" in second.output

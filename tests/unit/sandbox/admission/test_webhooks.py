"""The admission chain in process: which webhooks a request selects, in which order they run,
how their answers and failures end the request, and what they are sent."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest

from meshcanary.sandbox.admission.calls import ServiceHandler
from meshcanary.sandbox.admission.webhooks import (
    MUTATING,
    VALIDATING,
    AdmissionWebhooks,
    Request,
    Rule,
)
from meshcanary.sandbox.apiserver import errors
from meshcanary.sandbox.apiserver.cluster import PATCH_MERGE, Cluster, WriteOptions
from meshcanary.sandbox.apiserver.registry import Registry, ResourceType
from meshcanary.sandbox.apiserver.store import Store

OPTS = WriteOptions(field_manager="test")
ADMISSION = "admissionregistration.k8s.io"
GROUP = "hooks.meshcanary.test"
Answer = dict[str, Any]
Handler = Callable[[dict[str, Any]], Awaitable[Answer]]


class Backends:
    """In-process webhook Services, by name; every request they get is recorded."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def resolve(self, namespace: str, name: str, port: int, path: str) -> ServiceHandler | None:
        handler = self.handlers.get(name)
        if handler is None:
            return None

        async def serve(body: dict[str, Any]) -> dict[str, Any]:
            self.calls.append((name, body["request"]))
            response = {"uid": body["request"]["uid"], **(await handler(body["request"]))}
            return {
                "apiVersion": body["apiVersion"],
                "kind": "AdmissionReview",
                "response": response,
            }

        return serve

    def called(self) -> list[str]:
        return [name for name, _ in self.calls]

    def requests(self, name: str) -> list[dict[str, Any]]:
        return [request for called, request in self.calls if called == name]


def allow(*ops: dict[str, Any]) -> Handler:
    async def handler(request: dict[str, Any]) -> Answer:
        if not ops:
            return {"allowed": True}
        patch = base64.b64encode(orjson.dumps(list(ops))).decode()
        return {"allowed": True, "patchType": "JSONPatch", "patch": patch}

    return handler


def deny(**status: Any) -> Handler:
    async def handler(request: dict[str, Any]) -> Answer:
        return {"allowed": False, "status": status}

    return handler


def rt(cluster: Cluster, group: str, plural: str, version: str = "v1") -> ResourceType:
    found = cluster.registry.get(group, version, plural)
    assert found is not None
    return found


@pytest.fixture
async def cluster() -> Cluster:
    cluster = Cluster(Store(None))
    for name, env in (("ns", "prod"), ("dev", "dev")):
        body = {"metadata": {"name": name, "labels": {"env": env}}}
        await cluster.create(rt(cluster, "", "namespaces"), "", body, OPTS)
    return cluster


@pytest.fixture
async def backends(cluster: Cluster) -> AsyncIterator[Backends]:
    backends = Backends()
    plugin = AdmissionWebhooks(cluster, backends, max_timeout=0.1)
    cluster.admission.append(plugin)
    yield backends
    await plugin.close()


def hook(service: str, resources: tuple[str, ...] = ("configmaps",), **fields: Any) -> Any:
    return {
        "name": f"{service}.{GROUP}",
        "clientConfig": {"service": {"namespace": "hooks", "name": service, "path": "/x"}},
        "rules": [
            {
                "operations": ["*"],
                "apiGroups": ["*"],
                "apiVersions": ["*"],
                "resources": list(resources),
            }
        ],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        **fields,
    }


async def configure(cluster: Cluster, skey: str, name: str, *hooks: dict[str, Any]) -> None:
    plural = skey.partition("/")[2]
    kind = "MutatingWebhookConfiguration" if skey == MUTATING else "ValidatingWebhookConfiguration"
    body = {
        "apiVersion": f"{ADMISSION}/v1",
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": list(hooks),
    }
    await cluster.create(rt(cluster, ADMISSION, plural), "", body, OPTS)


async def create_map(
    cluster: Cluster,
    name: str = "cm",
    namespace: str = "ns",
    labels: dict[str, str] | None = None,
    opts: WriteOptions = OPTS,
) -> dict[str, Any]:
    body = {"metadata": {"name": name, "labels": labels or {}}, "data": {"k": "v"}}
    return (await cluster.create(rt(cluster, "", "configmaps"), namespace, body, opts)).obj


async def api_error(awaitable: Awaitable[Any]) -> errors.ApiError:
    with pytest.raises(errors.ApiError) as caught:
        await awaitable
    return caught.value


# -- rules ---------------------------------------------------------------------------------------

REGISTRY = Registry.with_builtins()
ANY = {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}


def request_on(plural: str, group: str = "", operation: str = "CREATE", sub: str = "") -> Request:
    found = next(r for r in REGISTRY if r.plural == plural and r.group == group)
    namespace = "ns" if found.namespaced or plural == "namespaces" else ""
    return Request(operation, found, sub, namespace, "x", {}, None, False, {})


@pytest.mark.parametrize(
    ("rule", "request_", "matches"),
    [
        ({"operations": ["CREATE"]}, request_on("pods"), True),
        ({"operations": ["CREATE"]}, request_on("pods", operation="UPDATE"), False),
        ({"operations": ["UPDATE", "DELETE"]}, request_on("pods", operation="DELETE"), True),
        ({"operations": ["*"]}, request_on("pods", operation="DELETE"), True),
        ({"apiGroups": ["apps"]}, request_on("deployments", "apps"), True),
        ({"apiGroups": [""]}, request_on("deployments", "apps"), False),
        ({"apiGroups": [""]}, request_on("pods"), True),
        ({"apiVersions": ["v1"]}, request_on("pods"), True),
        ({"apiVersions": ["v1beta1"]}, request_on("pods"), False),
        ({"resources": ["pods"]}, request_on("pods"), True),
        ({"resources": ["services", "pods"]}, request_on("pods"), True),
        ({"resources": ["pods"]}, request_on("services"), False),
        ({"resources": ["pods"]}, request_on("pods", sub="status"), False),
        ({"resources": ["pods/status"]}, request_on("pods", sub="status"), True),
        ({"resources": ["pods/status"]}, request_on("pods"), False),
        ({"resources": ["pods/*"]}, request_on("pods", sub="status"), True),
        ({"resources": ["*"]}, request_on("pods", sub="status"), False),
        ({"resources": ["*/status"]}, request_on("deployments", "apps", sub="status"), True),
        ({"resources": ["*/*"]}, request_on("pods", sub="status"), True),
        ({"resources": ["*/*"]}, request_on("pods"), True),
        ({"scope": "Namespaced"}, request_on("pods"), True),
        ({"scope": "Namespaced"}, request_on("nodes"), False),
        ({"scope": "Namespaced"}, request_on("namespaces"), False),
        ({"scope": "Cluster"}, request_on("nodes"), True),
        ({"scope": "Cluster"}, request_on("namespaces"), True),
        ({"scope": "Cluster"}, request_on("pods"), False),
        ({"scope": "*"}, request_on("nodes"), True),
    ],
)
def test_rule_matching(rule: dict[str, Any], request_: Request, matches: bool) -> None:
    assert Rule.parse({**ANY, **rule}).matches(request_, request_.rt) is matches


# -- selection -----------------------------------------------------------------------------------


async def test_requests_on_webhook_configurations_never_reach_webhooks(
    cluster: Cluster, backends: Backends
) -> None:
    backends.handlers["deny"] = deny(message="no")
    await configure(cluster, VALIDATING, "everything", hook("deny", ("*/*",)))
    await configure(cluster, MUTATING, "more", hook("deny", ("*/*",)))
    assert backends.calls == []
    assert (await api_error(create_map(cluster))).code == 400


async def test_the_namespace_selector_looks_at_the_namespace_labels(
    cluster: Cluster, backends: Backends
) -> None:
    backends.handlers["prod"] = allow()
    selector = {"matchLabels": {"env": "prod"}}
    resources = ("configmaps", "namespaces", "nodes")
    await configure(
        cluster, VALIDATING, "prod", hook("prod", resources, namespaceSelector=selector)
    )
    await create_map(cluster, "in-prod", "ns")
    await create_map(cluster, "in-dev", "dev")
    namespaces = rt(cluster, "", "namespaces")
    for name, env in (("prod-2", "prod"), ("dev-2", "dev")):
        await cluster.create(
            namespaces, "", {"metadata": {"name": name, "labels": {"env": env}}}, OPTS
        )
    await cluster.create(rt(cluster, "", "nodes"), "", {"metadata": {"name": "node-1"}}, OPTS)
    assert [r["name"] for r in backends.requests("prod")] == ["in-prod", "prod-2", "node-1"]


async def test_the_object_selector_looks_at_the_new_or_the_old_labels(
    cluster: Cluster, backends: Backends
) -> None:
    backends.handlers["canary"] = allow()
    selector = {"matchLabels": {"canary": "true"}}
    await configure(cluster, VALIDATING, "canary", hook("canary", objectSelector=selector))
    configmaps = rt(cluster, "", "configmaps")
    await create_map(cluster, "plain")
    await create_map(cluster, "marked", labels={"canary": "true"})
    unmark = orjson.dumps({"metadata": {"labels": {"canary": None}}})
    await cluster.patch(configmaps, "ns", "marked", PATCH_MERGE, unmark, OPTS)
    await cluster.delete(configmaps, "ns", "marked")
    await cluster.delete(configmaps, "ns", "plain")
    seen = [(r["operation"], r["name"]) for r in backends.requests("canary")]
    assert seen == [("CREATE", "marked"), ("UPDATE", "marked")]


async def test_status_writes_only_reach_webhooks_for_the_subresource(
    cluster: Cluster, backends: Backends
) -> None:
    backends.handlers["main"] = allow()
    backends.handlers["status"] = allow()
    await configure(
        cluster, VALIDATING, "pods", hook("main", ("pods",)), hook("status", ("pods/status",))
    )
    pods = rt(cluster, "", "pods")
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    await cluster.create(pods, "ns", pod, OPTS)
    running = orjson.dumps({"status": {"phase": "Running"}})
    await cluster.patch(pods, "ns", "p", PATCH_MERGE, running, OPTS, subresource="status")
    assert backends.called() == ["main", "status"]
    assert backends.requests("status")[0]["subResource"] == "status"


async def test_configuration_changes_take_effect_on_the_next_request(
    cluster: Cluster, backends: Backends
) -> None:
    backends.handlers["deny"] = deny(message="closed")
    await configure(cluster, VALIDATING, "gate", hook("deny"))
    assert (await api_error(create_map(cluster, "a"))).code == 400
    configs = rt(cluster, ADMISSION, "validatingwebhookconfigurations")
    await cluster.delete(configs, "", "gate")
    await create_map(cluster, "b")


async def test_equivalent_match_policy_sends_the_version_the_rule_names(
    cluster: Cluster, backends: Backends
) -> None:
    crd = {
        "metadata": {"name": f"widgets.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [
                {"name": name, "served": True, "storage": name == "v1", "schema": SCHEMA}
                for name in ("v1", "v2")
            ],
        },
    }
    await cluster.create(
        rt(cluster, "apiextensions.k8s.io", "customresourcedefinitions"), "", crd, OPTS
    )
    backends.handlers["equivalent"] = allow()
    backends.handlers["exact"] = allow()
    rules = [
        {
            "operations": ["CREATE"],
            "apiGroups": [GROUP],
            "apiVersions": ["v1"],
            "resources": ["widgets"],
        }
    ]
    await configure(
        cluster,
        VALIDATING,
        "widgets",
        hook("equivalent", rules=rules),
        hook("exact", rules=rules, matchPolicy="Exact"),
    )
    widget = {"apiVersion": f"{GROUP}/v2", "kind": "Widget", "metadata": {"name": "w"}}
    await cluster.create(rt(cluster, GROUP, "widgets", "v2"), "ns", widget, OPTS)
    (request,) = backends.requests("equivalent")
    assert backends.requests("exact") == []
    assert request["kind"] == {"group": GROUP, "version": "v1", "kind": "Widget"}
    assert request["requestKind"] == {"group": GROUP, "version": "v2", "kind": "Widget"}
    assert request["resource"]["version"] == "v1"
    assert request["object"]["apiVersion"] == f"{GROUP}/v1"


SCHEMA = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}


# -- mutating ------------------------------------------------------------------------------------


def add_data(key: str) -> Handler:
    return allow({"op": "add", "path": f"/data/{key}", "value": key})


async def test_mutating_webhooks_run_by_configuration_name_then_in_order(
    cluster: Cluster, backends: Backends
) -> None:
    for name in ("one", "two", "three"):
        backends.handlers[name] = add_data(name)
    await configure(cluster, MUTATING, "b-last", hook("three"))
    await configure(cluster, MUTATING, "a-first", hook("one"), hook("two"))
    created = await create_map(cluster)
    assert backends.called() == ["one", "two", "three"]
    assert backends.requests("three")[0]["object"]["data"] == {"k": "v", "one": "one", "two": "two"}
    stored = cluster.get(rt(cluster, "", "configmaps"), "ns", "cm")
    assert (
        stored["data"]
        == created["data"]
        == {"k": "v", "one": "one", "two": "two", "three": "three"}
    )


@pytest.mark.parametrize(
    ("policy", "calls"), [("IfNeeded", ["a", "b", "a"]), ("Never", ["a", "b"])]
)
async def test_a_webhook_is_called_again_if_needed_after_a_later_change(
    cluster: Cluster, backends: Backends, policy: str, calls: list[str]
) -> None:
    backends.handlers["a"] = allow()
    backends.handlers["b"] = add_data("b")
    await configure(cluster, MUTATING, "m", hook("a", reinvocationPolicy=policy), hook("b"))
    await create_map(cluster)
    assert backends.called() == calls
    last_seen = backends.requests("a")[-1]["object"]["data"]
    assert ("b" in last_seen) is (policy == "IfNeeded")


async def test_a_patched_object_is_defaulted_again(cluster: Cluster, backends: Backends) -> None:
    sidecar = {"name": "istio-proxy", "image": "proxyv2:1.22"}
    backends.handlers["inject"] = allow(
        {"op": "add", "path": "/spec/containers/-", "value": sidecar}
    )
    await configure(cluster, MUTATING, "inject", hook("inject", ("pods",)))
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app", "image": "app"}]}}
    created = (await cluster.create(rt(cluster, "", "pods"), "ns", pod, OPTS)).obj
    injected = created["spec"]["containers"][1]
    assert injected["name"] == "istio-proxy"
    assert injected["imagePullPolicy"] == "IfNotPresent"
    assert injected["terminationMessagePath"] == "/dev/termination-log"


async def test_a_patch_that_does_not_apply_is_an_internal_error(
    cluster: Cluster, backends: Backends
) -> None:
    backends.handlers["bad"] = allow({"op": "replace", "path": "/nope/deeper", "value": 1})
    await configure(cluster, MUTATING, "bad", hook("bad"))
    assert (await api_error(create_map(cluster))).code == 500


# -- validating ----------------------------------------------------------------------------------


async def test_a_denial_carries_the_webhooks_message_and_code(
    cluster: Cluster, backends: Backends
) -> None:
    backends.handlers["deny"] = deny(code=403, message="protected", reason="Forbidden")
    await configure(cluster, VALIDATING, "deny", hook("deny"))
    error = await api_error(create_map(cluster))
    assert (error.code, error.reason) == (403, "Forbidden")
    assert error.message == f'admission webhook "deny.{GROUP}" denied the request: protected'
    assert cluster.store.get("/configmaps", "ns", "cm") is None


async def test_a_bare_denial_is_a_bad_request_without_explanation(
    cluster: Cluster, backends: Backends
) -> None:
    backends.handlers["deny"] = deny()
    await configure(cluster, VALIDATING, "deny", hook("deny"))
    error = await api_error(create_map(cluster))
    assert error.code == 400
    assert (
        error.message == f'admission webhook "deny.{GROUP}" denied the request without explanation'
    )


async def test_a_mutating_webhook_can_deny_too(cluster: Cluster, backends: Backends) -> None:
    backends.handlers["deny"] = deny(message="no")
    await configure(cluster, MUTATING, "deny", hook("deny"))
    assert "denied the request: no" in (await api_error(create_map(cluster))).message


async def test_validating_webhooks_are_called_at_once_and_their_patches_ignored(
    cluster: Cluster, backends: Backends
) -> None:
    both_called = asyncio.Barrier(2)

    async def meet(request: dict[str, Any]) -> Answer:
        await both_called.wait()  # never passes if the calls ran one after the other
        return await add_data("x")(request)

    backends.handlers["one"] = backends.handlers["two"] = meet
    await configure(cluster, VALIDATING, "v", hook("one"), hook("two"))
    created = await create_map(cluster)
    assert sorted(backends.called()) == ["one", "two"]
    assert created["data"] == {"k": "v"}


async def test_validating_webhooks_see_the_mutated_object(
    cluster: Cluster, backends: Backends
) -> None:
    backends.handlers["mutate"] = add_data("added")
    backends.handlers["check"] = allow()
    await configure(cluster, MUTATING, "m", hook("mutate"))
    await configure(cluster, VALIDATING, "v", hook("check"))
    await create_map(cluster)
    assert backends.requests("check")[0]["object"]["data"]["added"] == "added"


# -- failures ------------------------------------------------------------------------------------


async def test_an_unreachable_webhook_fails_the_request_under_failure_policy_fail(
    cluster: Cluster, backends: Backends
) -> None:
    await configure(cluster, VALIDATING, "gone", hook("gone"))
    error = await api_error(create_map(cluster))
    assert (error.code, error.reason) == (500, "InternalError")
    assert error.message == (
        f'Internal error occurred: failed calling webhook "gone.{GROUP}": failed to call webhook:'
        ' Post "https://gone.hooks.svc:443/x?timeout=100ms": service "gone" not found'
    )


async def test_an_unreachable_webhook_is_skipped_under_failure_policy_ignore(
    cluster: Cluster, backends: Backends
) -> None:
    backends.handlers["after"] = add_data("after")
    await configure(cluster, MUTATING, "m", hook("gone", failurePolicy="Ignore"), hook("after"))
    created = await create_map(cluster)
    assert created["data"]["after"] == "after"


async def test_a_webhook_past_its_timeout_fails_the_request(
    cluster: Cluster, backends: Backends
) -> None:
    async def slow(request: dict[str, Any]) -> Answer:
        await asyncio.sleep(5)
        return {"allowed": True}

    backends.handlers["slow"] = slow
    await configure(cluster, VALIDATING, "slow", hook("slow", timeoutSeconds=1))
    error = await api_error(create_map(cluster))
    assert error.code == 500
    assert error.message.endswith('?timeout=100ms": context deadline exceeded')


async def test_an_answer_for_another_request_is_a_call_error(
    cluster: Cluster, backends: Backends
) -> None:
    async def confused(request: dict[str, Any]) -> Answer:
        return {"uid": "someone-else", "allowed": True}

    backends.handlers["confused"] = confused
    await configure(cluster, VALIDATING, "confused", hook("confused"))
    error = await api_error(create_map(cluster))
    assert error.code == 500
    assert error.message.endswith(
        'received invalid webhook response: expected response.uid="'
        f'{backends.requests("confused")[0]["uid"]}", got "someone-else"'
    )


async def test_a_write_meanwhile_turns_the_request_into_a_conflict(
    cluster: Cluster, backends: Backends
) -> None:
    configmaps = rt(cluster, "", "configmaps")
    await create_map(cluster)
    writes: list[bytes] = [orjson.dumps({"data": {"by": "other"}})]

    async def interfere(request: dict[str, Any]) -> Answer:
        if writes:
            await cluster.patch(configmaps, "ns", "cm", PATCH_MERGE, writes.pop(), OPTS)
        return {"allowed": True}

    backends.handlers["slow"] = interfere
    await configure(cluster, VALIDATING, "slow", hook("slow"))
    mine = orjson.dumps({"data": {"by": "me"}})
    error = await api_error(cluster.patch(configmaps, "ns", "cm", PATCH_MERGE, mine, OPTS))
    assert error.code == 409
    assert cluster.get(configmaps, "ns", "cm")["data"]["by"] == "other"


# -- dry runs ------------------------------------------------------------------------------------


async def test_a_dry_run_reaches_side_effect_free_webhooks_marked_as_such(
    cluster: Cluster, backends: Backends
) -> None:
    backends.handlers["pure"] = allow()
    await configure(cluster, VALIDATING, "pure", hook("pure", sideEffects="NoneOnDryRun"))
    await create_map(cluster, opts=WriteOptions(dry_run=True, field_manager="test"))
    (request,) = backends.requests("pure")
    assert request["dryRun"] is True
    assert request["options"]["dryRun"] == ["All"]
    assert cluster.store.get("/configmaps", "ns", "cm") is None


async def test_a_dry_run_fails_on_webhooks_with_side_effects(
    cluster: Cluster, backends: Backends
) -> None:
    # v1 validation refuses such a configuration; older stored ones can still carry it.
    backends.handlers["impure"] = allow()
    config = {
        "apiVersion": f"{ADMISSION}/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "impure", "resourceVersion": str(cluster.store.next_rv())},
        "webhooks": [hook("impure", sideEffects="Some")],
    }
    cluster.store.put(VALIDATING, "", "impure", config)
    error = await api_error(create_map(cluster, opts=WriteOptions(dry_run=True)))
    assert (error.code, error.message) == (
        400,
        f'admission webhook "impure.{GROUP}" does not support dry run',
    )
    await create_map(cluster)
    assert backends.called() == ["impure"]


# -- the review ----------------------------------------------------------------------------------


async def test_the_review_describes_a_create(cluster: Cluster, backends: Backends) -> None:
    backends.handlers["look"] = allow()
    await configure(cluster, VALIDATING, "look", hook("look"))
    body = {"metadata": {"generateName": "cm-"}}
    created = (await cluster.create(rt(cluster, "", "configmaps"), "ns", body, OPTS)).obj
    (request,) = backends.requests("look")
    assert request["name"] == created["metadata"]["name"] != "cm-"
    assert request["namespace"] == "ns"
    assert request["operation"] == "CREATE"
    assert (
        request["kind"]
        == request["requestKind"]
        == {"group": "", "version": "v1", "kind": "ConfigMap"}
    )
    assert request["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert request["userInfo"] == {
        "username": "system:admin",
        "groups": ["system:masters", "system:authenticated"],
    }
    assert request["object"]["metadata"]["uid"] == created["metadata"]["uid"]
    assert request["oldObject"] is None
    assert request["dryRun"] is False
    assert request["options"] == {
        "kind": "CreateOptions",
        "apiVersion": "meta.k8s.io/v1",
        "fieldManager": "test",
    }
    assert "subResource" not in request


async def test_the_review_describes_a_delete(cluster: Cluster, backends: Backends) -> None:
    backends.handlers["look"] = allow()
    await configure(cluster, VALIDATING, "look", hook("look"))
    created = await create_map(cluster)
    configmaps = rt(cluster, "", "configmaps")
    await cluster.delete(configmaps, "ns", "cm", {"propagationPolicy": "Foreground"})
    request = backends.requests("look")[-1]
    assert request["operation"] == "DELETE"
    assert request["object"] is None
    assert request["oldObject"]["metadata"]["uid"] == created["metadata"]["uid"]
    assert request["options"] == {
        "kind": "DeleteOptions",
        "apiVersion": "meta.k8s.io/v1",
        "propagationPolicy": "Foreground",
    }

"""Schema validation of Istio resources: types, required fields, enums, unknown fields.

meshcanary's CRDs (like any cluster whose CRDs preserve unknown fields) accept any `spec`, and
istiod's validating webhook may be missing or may be the *old* revision's; a VirtualService with
`hosts: "reviews"` is then stored and silently ignored. These compact, hand-written specs cover
the fields that matter in each kind (from istio/api protos), not the full upstream schema:
`ANY` marks a subtree left unchecked. Unknown fields are Warnings (a typo or another version's
field), everything else Errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from meshcanary.validate.findings import Finding, finding, of

Object = Mapping[str, Any]


@dataclass(frozen=True)
class Scalar:
    """A JSON scalar: `type` one of str, int, num, bool, duration; optional enum."""

    type: str
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class Obj:
    fields: Mapping[str, Spec] = field(hash=False)
    required: tuple[str, ...] = ()


@dataclass(frozen=True)
class Arr:
    items: Spec


@dataclass(frozen=True)
class MapOf:
    values: Spec


@dataclass(frozen=True)
class Anything:
    """A subtree not checked here."""


Spec = Scalar | Obj | Arr | MapOf | Anything

STR: Final = Scalar("str")
INT: Final = Scalar("int")
NUM: Final = Scalar("num")
BOOL: Final = Scalar("bool")
DURATION: Final = Scalar("duration")
ANY: Final = Anything()
STRS: Final = Arr(STR)
LABELS: Final = MapOf(STR)
_DURATION: Final = re.compile(r"([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+")
_TYPES: Final = {"str": "a string", "int": "an integer", "num": "a number", "bool": "a boolean"}


def enum(*values: str) -> Scalar:
    return Scalar("str", values)


# -- shared parts ---------------------------------------------------------------------------------

STRING_MATCH: Final = Obj({"exact": STR, "prefix": STR, "regex": STR})
PORT_SELECTOR: Final = Obj({"number": INT})
DESTINATION: Final = Obj({"host": STR, "subset": STR, "port": PORT_SELECTOR}, ("host",))
PERCENT: Final = Obj({"value": NUM})
WORKLOAD_SELECTOR: Final = Obj({"matchLabels": LABELS})
TARGET_REF: Final = Obj({"group": STR, "kind": STR, "name": STR, "namespace": STR})
POLICY_COMMON: Final[dict[str, Spec]] = {
    "selector": WORKLOAD_SELECTOR,
    "targetRef": TARGET_REF,
    "targetRefs": Arr(TARGET_REF),
}
TLS_VERSIONS: Final = enum("TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3")

HTTP_MATCH: Final = Obj(
    {
        "name": STR,
        "uri": STRING_MATCH,
        "scheme": STRING_MATCH,
        "method": STRING_MATCH,
        "authority": STRING_MATCH,
        "headers": MapOf(STRING_MATCH),
        "port": INT,
        "sourceLabels": LABELS,
        "gateways": STRS,
        "queryParams": MapOf(STRING_MATCH),
        "ignoreUriCase": BOOL,
        "withoutHeaders": MapOf(STRING_MATCH),
        "sourceNamespace": STR,
        "statPrefix": STR,
    }
)
HTTP_ROUTE: Final = Obj(
    {
        "name": STR,
        "match": Arr(HTTP_MATCH),
        "route": Arr(Obj({"destination": DESTINATION, "weight": INT, "headers": ANY})),
        "redirect": ANY,
        "directResponse": ANY,
        "delegate": Obj({"name": STR, "namespace": STR}),
        "rewrite": Obj({"uri": STR, "authority": STR, "uriRegexRewrite": ANY}),
        "timeout": DURATION,
        "retries": Obj(
            {
                "attempts": INT,
                "perTryTimeout": DURATION,
                "retryOn": STR,
                "retryRemoteLocalities": BOOL,
                "backoff": DURATION,
            }
        ),
        "fault": Obj(
            {
                "delay": Obj({"fixedDelay": DURATION, "percentage": PERCENT, "percent": INT}),
                "abort": Obj({"httpStatus": INT, "grpcStatus": STR, "percentage": PERCENT}),
            }
        ),
        "mirror": DESTINATION,
        "mirrors": Arr(Obj({"destination": DESTINATION, "percentage": PERCENT}, ("destination",))),
        "mirrorPercentage": PERCENT,
        "corsPolicy": ANY,
        "headers": ANY,
    }
)
L4_MATCH: Final[dict[str, Spec]] = {
    "destinationSubnets": STRS,
    "port": INT,
    "sourceLabels": LABELS,
    "gateways": STRS,
    "sourceNamespace": STR,
}
L4_ROUTE: Final = Arr(Obj({"destination": DESTINATION, "weight": INT}, ("destination",)))

CLIENT_TLS: Final = Obj(
    {
        "mode": enum("DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"),
        "clientCertificate": STR,
        "privateKey": STR,
        "caCertificates": STR,
        "credentialName": STR,
        "subjectAltNames": STRS,
        "sni": STR,
        "insecureSkipVerify": BOOL,
        "caCrl": STR,
    }
)
LOAD_BALANCER: Final = Obj(
    {
        "simple": enum(
            "UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"
        ),
        "consistentHash": Obj(
            {
                "httpHeaderName": STR,
                "httpCookie": ANY,
                "useSourceIp": BOOL,
                "httpQueryParameterName": STR,
                "ringHash": ANY,
                "maglev": ANY,
                "minimumRingSize": INT,
            }
        ),
        "localityLbSetting": ANY,
        "warmupDurationSecs": DURATION,
        "warmup": ANY,
    }
)
_POLICY_PARTS: Final[dict[str, Spec]] = {
    "loadBalancer": LOAD_BALANCER,
    "connectionPool": Obj({"tcp": ANY, "http": ANY}),
    "outlierDetection": ANY,
    "tls": CLIENT_TLS,
}
TRAFFIC_POLICY: Final = Obj(
    {
        **_POLICY_PARTS,
        "portLevelSettings": Arr(Obj({"port": PORT_SELECTOR, **_POLICY_PARTS})),
        "tunnel": ANY,
        "proxyProtocol": ANY,
        "retryBudget": ANY,
    }
)
PORT: Final = Obj(
    {"number": INT, "protocol": STR, "name": STR, "targetPort": INT}, ("number", "protocol")
)
SERVER_TLS: Final = Obj(
    {
        "httpsRedirect": BOOL,
        "mode": enum(
            "PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"
        ),
        "serverCertificate": STR,
        "privateKey": STR,
        "caCertificates": STR,
        "credentialName": STR,
        "credentialNames": STRS,
        "subjectAltNames": STRS,
        "verifyCertificateSpki": STRS,
        "verifyCertificateHash": STRS,
        "minProtocolVersion": TLS_VERSIONS,
        "maxProtocolVersion": TLS_VERSIONS,
        "cipherSuites": STRS,
        "caCrl": STR,
        "tlsCertificates": ANY,
    }
)
WORKLOAD_ENTRY: Final = Obj(
    {
        "address": STR,
        "ports": MapOf(INT),
        "labels": LABELS,
        "network": STR,
        "locality": STR,
        "weight": INT,
        "serviceAccount": STR,
    }
)
PATCH_CONTEXT: Final = enum("ANY", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", "GATEWAY")
APPLY_TO: Final = enum(
    "INVALID",
    "LISTENER",
    "FILTER_CHAIN",
    "NETWORK_FILTER",
    "HTTP_FILTER",
    "ROUTE_CONFIGURATION",
    "VIRTUAL_HOST",
    "HTTP_ROUTE",
    "CLUSTER",
    "EXTENSION_CONFIG",
    "BOOTSTRAP",
    "LISTENER_FILTER",
)
OPERATION: Final = enum(
    "INVALID",
    "MERGE",
    "ADD",
    "REMOVE",
    "INSERT_BEFORE",
    "INSERT_AFTER",
    "INSERT_FIRST",
    "REPLACE",
)

# -- the kinds ------------------------------------------------------------------------------------

SPECS: Final[dict[str, Obj]] = {
    "VirtualService": Obj(
        {
            "hosts": STRS,
            "gateways": STRS,
            "exportTo": STRS,
            "http": Arr(HTTP_ROUTE),
            "tcp": Arr(Obj({"match": Arr(Obj(L4_MATCH)), "route": L4_ROUTE})),
            "tls": Arr(
                Obj(
                    {
                        "match": Arr(Obj({**L4_MATCH, "sniHosts": STRS}, ("sniHosts",))),
                        "route": L4_ROUTE,
                    },
                    ("match",),
                )
            ),
        }
    ),
    "DestinationRule": Obj(
        {
            "host": STR,
            "trafficPolicy": TRAFFIC_POLICY,
            "subsets": Arr(
                Obj({"name": STR, "labels": LABELS, "trafficPolicy": TRAFFIC_POLICY}, ("name",))
            ),
            "exportTo": STRS,
            "workloadSelector": WORKLOAD_SELECTOR,
        },
        ("host",),
    ),
    "Gateway": Obj(
        {
            "servers": Arr(
                Obj(
                    {
                        "port": PORT,
                        "bind": STR,
                        "hosts": STRS,
                        "tls": SERVER_TLS,
                        "defaultEndpoint": STR,
                        "name": STR,
                    },
                    ("port", "hosts"),
                )
            ),
            "selector": LABELS,
        },
        ("servers",),
    ),
    "ServiceEntry": Obj(
        {
            "hosts": STRS,
            "addresses": STRS,
            "ports": Arr(PORT),
            "location": enum("MESH_EXTERNAL", "MESH_INTERNAL"),
            "resolution": enum("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"),
            "endpoints": Arr(WORKLOAD_ENTRY),
            "workloadSelector": Obj({"labels": LABELS}),
            "exportTo": STRS,
            "subjectAltNames": STRS,
        },
        ("hosts",),
    ),
    "Sidecar": Obj(
        {
            "workloadSelector": Obj({"labels": LABELS}),
            "ingress": Arr(
                Obj(
                    {
                        "port": PORT,
                        "bind": STR,
                        "captureMode": enum("DEFAULT", "IPTABLES", "NONE"),
                        "defaultEndpoint": STR,
                        "tls": SERVER_TLS,
                        "connectionPool": ANY,
                    },
                    ("port",),
                )
            ),
            "egress": Arr(
                Obj(
                    {
                        "port": PORT,
                        "bind": STR,
                        "captureMode": enum("DEFAULT", "IPTABLES", "NONE"),
                        "hosts": STRS,
                    },
                    ("hosts",),
                )
            ),
            "outboundTrafficPolicy": Obj(
                {"mode": enum("REGISTRY_ONLY", "ALLOW_ANY"), "egressProxy": DESTINATION}
            ),
            "inboundConnectionPool": ANY,
        }
    ),
    "EnvoyFilter": Obj(
        {
            "workloadSelector": Obj({"labels": LABELS}),
            "targetRefs": Arr(TARGET_REF),
            "priority": INT,
            "configPatches": Arr(
                Obj(
                    {
                        "applyTo": APPLY_TO,
                        "match": Obj(
                            {
                                "context": PATCH_CONTEXT,
                                "proxy": Obj({"proxyVersion": STR, "metadata": LABELS}),
                                "listener": ANY,
                                "routeConfiguration": ANY,
                                "cluster": ANY,
                            }
                        ),
                        "patch": Obj(
                            {
                                "operation": OPERATION,
                                "value": ANY,
                                "filterClass": enum("UNSPECIFIED", "AUTHN", "AUTHZ", "STATS"),
                            }
                        ),
                    }
                )
            ),
        }
    ),
    "AuthorizationPolicy": Obj(
        {
            **POLICY_COMMON,
            "rules": Arr(
                Obj(
                    {
                        "from": Arr(Obj({"source": ANY})),
                        "to": Arr(Obj({"operation": ANY})),
                        "when": Arr(Obj({"key": STR, "values": STRS, "notValues": STRS}, ("key",))),
                    }
                )
            ),
            "action": enum("ALLOW", "DENY", "AUDIT", "CUSTOM"),
            "provider": Obj({"name": STR}),
        }
    ),
    "PeerAuthentication": Obj(
        {
            "selector": WORKLOAD_SELECTOR,
            "mtls": Obj({"mode": enum("UNSET", "DISABLE", "PERMISSIVE", "STRICT")}),
            "portLevelMtls": MapOf(Obj({"mode": enum("UNSET", "DISABLE", "PERMISSIVE", "STRICT")})),
        }
    ),
    "RequestAuthentication": Obj(
        {
            **POLICY_COMMON,
            "jwtRules": Arr(
                Obj(
                    {
                        "issuer": STR,
                        "audiences": STRS,
                        "jwksUri": STR,
                        "jwks": STR,
                        "fromHeaders": Arr(Obj({"name": STR, "prefix": STR}, ("name",))),
                        "fromParams": STRS,
                        "fromCookies": STRS,
                        "outputPayloadToHeader": STR,
                        "forwardOriginalToken": BOOL,
                        "outputClaimToHeaders": Arr(Obj({"header": STR, "claim": STR})),
                        "timeout": DURATION,
                    },
                    ("issuer",),
                )
            ),
        }
    ),
    "Telemetry": Obj(
        {
            **POLICY_COMMON,
            "tracing": Arr(ANY),
            "metrics": Arr(
                Obj(
                    {
                        "providers": Arr(Obj({"name": STR})),
                        "overrides": Arr(ANY),
                        "reportingInterval": DURATION,
                    }
                )
            ),
            "accessLogging": Arr(
                Obj(
                    {
                        "providers": Arr(Obj({"name": STR})),
                        "disabled": BOOL,
                        "filter": Obj({"expression": STR}),
                        "match": Obj({"mode": enum("CLIENT_AND_SERVER", "CLIENT", "SERVER")}),
                    }
                )
            ),
        }
    ),
    "WorkloadEntry": WORKLOAD_ENTRY,
}
"""The spec of each kind validated, by kind."""


# -- the validator --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One schema problem at a path: `code` is the finding code it maps to."""

    code: str
    path: str
    message: str


def validate(value: Any, spec: Spec, path: str = "spec") -> Iterator[Problem]:
    """The problems of `value` against `spec`, in document order."""
    if isinstance(spec, Anything):
        return
    if isinstance(spec, Scalar):
        yield from _scalar(value, spec, path)
    elif isinstance(spec, Arr):
        yield from _array(value, spec, path)
    elif isinstance(spec, MapOf):
        yield from _map(value, spec, path)
    else:
        yield from _object(value, spec, path)


def _scalar(value: Any, spec: Scalar, path: str) -> Iterator[Problem]:
    if spec.type == "duration":
        if not isinstance(value, str) or not _DURATION.fullmatch(value):
            yield Problem("MC0301", path, f"{path}: expected a duration like 5s, got {value!r}")
        return
    if not _type_ok(value, spec.type):
        got = type(value).__name__
        yield Problem("MC0301", path, f"{path}: expected {_TYPES[spec.type]}, got {got}")
    elif spec.enum and value not in spec.enum:
        allowed = ", ".join(spec.enum)
        yield Problem("MC0303", path, f"{path}: {value!r} is not one of {allowed}")


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, int)
    if kind == "num":
        return isinstance(value, int | float)
    return isinstance(value, str)


def _array(value: Any, spec: Arr, path: str) -> Iterator[Problem]:
    if not isinstance(value, list):
        yield Problem("MC0301", path, f"{path}: expected a list, got {type(value).__name__}")
        return
    for index, item in enumerate(value):
        yield from validate(item, spec.items, f"{path}[{index}]")


def _map(value: Any, spec: MapOf, path: str) -> Iterator[Problem]:
    if not isinstance(value, Mapping):
        yield Problem("MC0301", path, f"{path}: expected a map, got {type(value).__name__}")
        return
    for key, item in value.items():
        yield from validate(item, spec.values, f"{path}.{key}")


def _object(value: Any, spec: Obj, path: str) -> Iterator[Problem]:
    if not isinstance(value, Mapping):
        yield Problem("MC0301", path, f"{path}: expected an object, got {type(value).__name__}")
        return
    for name in spec.required:
        if value.get(name) is None:
            yield Problem("MC0302", f"{path}.{name}", f"{path}.{name} is required")
    for key, item in value.items():
        child = spec.fields.get(key)
        if child is None:
            yield Problem("MC0304", f"{path}.{key}", f"{path}.{key} is not a known field")
        elif item is not None:
            yield from validate(item, child, f"{path}.{key}")


def analyze(objects: Sequence[Object]) -> list[Finding]:
    """Schema findings for every object of a kind in SPECS (one finding per problem)."""
    found = []
    for obj in objects:
        spec = SPECS.get(str(obj.get("kind")))
        if spec is None:
            continue
        for problem in validate(obj.get("spec") or {}, spec):
            found.append(finding(problem.code, of(obj), problem.message))
    return found

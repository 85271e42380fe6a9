"""Validation of built-in kinds, with kube-apiserver 1.33's field paths and wording.

Why: a real server rejects a bad Deployment, Service or webhook configuration with 422 Invalid,
and what reached the sandbox unchecked would fail only on a real cluster, after the sandbox run
said it was fine. The wording matters too: kubectl prints the causes verbatim, tests and humans
grep for "field is immutable" or "`selector` does not match template `labels`", and `kubectl
apply` users learn from "pod updates may not change fields other than ...".

What: the rules of k8s.io/kubernetes/pkg/apis/{core,apps,batch,rbac,admissionregistration}/
validation that clients commonly hit, including the update rules (immutable selectors, pod spec,
StatefulSet spec, Job template, Service clusterIP, RoleBinding roleRef, immutable ConfigMaps and
Secrets). Messages follow apimachinery's field.Error rendering, including its Go `%#v` rendering
of structs ("v1.LabelSelector{MatchLabels:...}"). Objects are expected to be defaulted first (see
defaults.py); ObjectMeta (names, labels, annotations) is validated elsewhere.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from meshcanary.sandbox.apiserver.defaults import POD_TEMPLATE_PATHS
from meshcanary.sandbox.apiserver.selectors import SelectorError, label_selector_from_dict

__all__ = ["validate_builtin"]

Obj = dict[str, Any]
Cause = tuple[str, str]

_PROTOCOLS: Final = ("SCTP", "TCP", "UDP")  # sets.List: sorted
_RESTART_POLICIES: Final = ("Always", "OnFailure", "Never")
_DNS_POLICIES: Final = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_SERVICE_TYPES: Final = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
_RBAC_GROUP: Final = "rbac.authorization.k8s.io"
_NONNEGATIVE: Final = "must be greater than or equal to 0"
_PORT_RANGE: Final = "must be between 1 and 65535, inclusive"
_IMMUTABLE: Final = "field is immutable"
_POD_UPDATABLE: Final = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)
_POD_UPDATE_MESSAGE: Final = "pod updates may not change fields other than " + ",".join(
    _POD_UPDATABLE
)
_STS_UPDATE_MESSAGE: Final = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)
_STS_MUTABLE: Final = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


# --- apimachinery util/validation -----------------------------------------------------------------

_LABEL_FMT: Final = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_FMT: Final = rf"{_LABEL_FMT}(\.{_LABEL_FMT})*"
_DNS1035_FMT: Final = "[a-z]([-a-z0-9]*[a-z0-9])?"
_CONFIG_KEY_FMT: Final = "[-._a-zA-Z0-9]+"
_LABEL_RE: Final = re.compile(_LABEL_FMT)
_SUBDOMAIN_RE: Final = re.compile(_SUBDOMAIN_FMT)
_DNS1035_RE: Final = re.compile(_DNS1035_FMT)
_CONFIG_KEY_RE: Final = re.compile(_CONFIG_KEY_FMT)
_PERCENT_RE: Final = re.compile("[0-9]+%")
_LABEL_MSG: Final = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_SUBDOMAIN_MSG: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)
_DNS1035_MSG: Final = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
_CONFIG_KEY_MSG: Final = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
)
_PERCENT_MSG: Final = (
    "a valid percent string must be a numeric string followed by an ending '%' "
    "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
)


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len(value: str, limit: int) -> list[str]:
    return [f"must be no more than {limit} characters"] if len(value) > limit else []


def _dns_label_errors(value: str) -> list[str]:
    errors = _max_len(value, 63)
    if not _LABEL_RE.fullmatch(value):
        if _SUBDOMAIN_RE.fullmatch(value):
            errors.append("must not contain dots")
        else:
            errors.append(_regex_error(_LABEL_MSG, _LABEL_FMT, "my-name", "123-abc"))
    return errors


def _dns_subdomain_errors(value: str) -> list[str]:
    errors = _max_len(value, 253)
    if not _SUBDOMAIN_RE.fullmatch(value):
        errors.append(_regex_error(_SUBDOMAIN_MSG, _SUBDOMAIN_FMT, "example.com"))
    return errors


def _dns1035_errors(value: str) -> list[str]:
    errors = _max_len(value, 63)
    if not _DNS1035_RE.fullmatch(value):
        errors.append(_regex_error(_DNS1035_MSG, _DNS1035_FMT, "my-name", "abc-123"))
    return errors


def _config_key_errors(key: str) -> list[str]:
    errors = _max_len(key, 253)
    if not _CONFIG_KEY_RE.fullmatch(key):
        examples = ("key.name", "KEY_NAME", "key-name")
        errors.append(_regex_error(_CONFIG_KEY_MSG, _CONFIG_KEY_FMT, *examples))
    if key in (".", ".."):
        errors.append(f"must not be '{key}'")
    elif key.startswith(".."):
        errors.append("must not start with '..'")
    return errors


def _port_name_errors(name: str) -> list[str]:
    errors = _max_len(name, 15)
    if not re.fullmatch("[-a-z0-9]+", name):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", name):
        errors.append("must contain at least one letter (a-z)")
    if "--" in name:
        errors.append("must not contain consecutive hyphens (-)")
    if name.startswith("-") or name.endswith("-"):
        errors.append("must not begin or end with a hyphen (-)")
    return errors


# --- Go rendering of bad values (field.Error.ErrorBody) -------------------------------------------


class _Go(str):
    """A value already rendered the way Go's `%#v` prints it."""


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _render(value: Any) -> str:
    if isinstance(value, _Go):
        return str(value)
    if value is None:
        return '"null"'  # nil pointers are shown as the string "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return _quote(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _go_map(labels: Any) -> _Go:
    if not isinstance(labels, dict):
        return _Go("map[string]string(nil)")
    pairs = ", ".join(f"{_quote(k)}:{_quote(str(v))}" for k, v in sorted(labels.items()))
    return _Go(f"map[string]string{{{pairs}}}")


def _go_strings(items: Any) -> _Go:
    if not isinstance(items, list):
        return _Go("[]string(nil)")
    return _Go("[]string{" + ", ".join(_quote(str(item)) for item in items) + "}")


def _go_selector(selector: Any) -> _Go | None:
    if not isinstance(selector, dict):
        return None
    requirements = [
        "v1.LabelSelectorRequirement{"
        f"Key:{_quote(str(e.get('key', '')))}, Operator:{_quote(str(e.get('operator', '')))}, "
        f"Values:{_go_strings(e.get('values'))}}}"
        for e in _items(selector, "matchExpressions")
    ]
    expressions = (
        "[]v1.LabelSelectorRequirement{" + ", ".join(requirements) + "}"
        if isinstance(selector.get("matchExpressions"), list)
        else "[]v1.LabelSelectorRequirement(nil)"
    )
    labels = _go_map(selector.get("matchLabels"))
    return _Go(f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{expressions}}}")


def _go_struct(type_name: str, fields: Sequence[tuple[str, str]]) -> _Go:
    return _Go(type_name + "{" + ", ".join(f"{name}:{value}" for name, value in fields) + "}")


def _go_strategy(type_name: str, rolling_type: str, strategy: Obj) -> _Go:
    rolling = "(nil)" if strategy.get("rollingUpdate") is None else "(0xc000010000)"
    return _go_struct(
        type_name,
        [
            ("Type", _quote(str(strategy.get("type", "")))),
            ("RollingUpdate", rolling_type + rolling),
        ],
    )


def _go_role_ref(ref: Obj) -> _Go:
    fields = [(name, _quote(str(ref.get(name.lower()) or ""))) for name in ("Kind", "Name")]
    group = ("APIGroup", _quote(str(ref.get("apiGroup") or "")))
    return _go_struct("rbac.RoleRef", [group, *fields])


# --- error collection -----------------------------------------------------------------------------


class _Errors:
    """Collects (field path, message) causes, worded like apimachinery's field errors."""

    def __init__(self) -> None:
        self.causes: list[Cause] = []

    def _add(self, path: str, head: str, detail: str = "") -> None:
        self.causes.append((path, f"{head}: {detail}" if detail else head))

    def required(self, path: str, detail: str = "") -> None:
        self._add(path, "Required value", detail)

    def forbidden(self, path: str, detail: str) -> None:
        self._add(path, "Forbidden", detail)

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self._add(path, f"Invalid value: {_render(value)}", detail)

    def duplicate(self, path: str, value: Any) -> None:
        self._add(path, f"Duplicate value: {_render(value)}")

    def not_found(self, path: str, value: Any) -> None:
        self._add(path, f"Not found: {_render(value)}")

    def unsupported(self, path: str, value: Any, allowed: Iterable[str]) -> None:
        detail = "supported values: " + ", ".join(_quote(a) for a in allowed)
        self._add(path, f"Unsupported value: {_render(value)}", detail)

    def each(self, path: str, value: Any, messages: Iterable[str]) -> None:
        for message in messages:
            self.invalid(path, value, message)

    def enum(self, path: str, value: Any, allowed: Sequence[str], *, required: bool) -> None:
        """Required when empty (if `required`), Unsupported when not one of `allowed`."""
        if value in (None, ""):
            if required:
                self.required(path)
        elif value not in allowed:
            self.unsupported(path, value, allowed)

    def nonnegative(self, path: str, value: Any) -> None:
        if type(value) is int and value < 0:
            self.invalid(path, value, _NONNEGATIVE)

    def port(self, path: str, value: Any) -> None:
        if type(value) is int and not 1 <= value <= 65535:
            self.invalid(path, value, _PORT_RANGE)

    def immutable(self, path: str, new: Any, old: Any, shown: Any = None) -> None:
        if _normalized(new) != _normalized(old):
            self.invalid(path, new if shown is None else shown, _IMMUTABLE)


def _str(value: Any) -> str:
    """A string field's value; anything else counts as unset."""
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _items(d: Any, key: str) -> list[Obj]:
    value = d.get(key) if isinstance(d, dict) else None
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def _dig(d: Any, *path: str) -> Any:
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None
    return d


def _normalized(value: Any) -> Any:
    """Drop nulls and empty lists/maps, as apimachinery's Semantic.DeepEqual equates nil/empty."""
    if isinstance(value, dict):
        pairs = ((k, _normalized(v)) for k, v in value.items())
        return {k: v for k, v in pairs if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


# --- pods -----------------------------------------------------------------------------------------


def _validate_container(c: Obj, path: str, volumes: set[str], errs: _Errors) -> None:
    name = _str(c.get("name"))
    if not name:
        errs.required(f"{path}.name")
    else:
        errs.each(f"{path}.name", name, _dns_label_errors(name))
    if not c.get("image"):
        errs.required(f"{path}.image")
    _validate_container_ports(_items(c, "ports"), f"{path}.ports", errs)
    for i, env in enumerate(_items(c, "env")):
        if not env.get("name"):
            errs.required(f"{path}.env[{i}].name")
    mount_paths: set[str] = set()
    for i, mount in enumerate(_items(c, "volumeMounts")):
        mount_name, mount_path = _str(mount.get("name")), _str(mount.get("mountPath"))
        if not mount_name:
            errs.required(f"{path}.volumeMounts[{i}].name")
        if mount_name not in volumes:
            errs.not_found(f"{path}.volumeMounts[{i}].name", mount_name)
        if not mount_path:
            errs.required(f"{path}.volumeMounts[{i}].mountPath")
        elif mount_path in mount_paths:
            errs.invalid(f"{path}.volumeMounts[{i}].mountPath", mount_path, "must be unique")
        mount_paths.add(mount_path)


def _validate_container_ports(ports: list[Obj], path: str, errs: _Errors) -> None:
    names: set[str] = set()
    for i, port in enumerate(ports):
        at, name = f"{path}[{i}]", _str(port.get("name"))
        if name:
            problems = _port_name_errors(name)
            errs.each(f"{at}.name", name, problems)
            if not problems and name in names:
                errs.duplicate(f"{at}.name", name)
            names.add(name)
        if not port.get("containerPort"):
            errs.required(f"{at}.containerPort")
        else:
            errs.port(f"{at}.containerPort", port.get("containerPort"))
        if port.get("hostPort"):
            errs.port(f"{at}.hostPort", port.get("hostPort"))
        errs.enum(f"{at}.protocol", port.get("protocol"), _PROTOCOLS, required=True)


def _validate_pod_spec(spec: Any, path: str, errs: _Errors) -> None:
    spec = _dict(spec)
    volumes: set[str] = set()
    for i, vol in enumerate(_items(spec, "volumes")):
        name = _str(vol.get("name"))
        if not name:
            errs.required(f"{path}.volumes[{i}].name")
        else:
            errs.each(f"{path}.volumes[{i}].name", name, _dns_label_errors(name))
        if name in volumes:
            errs.duplicate(f"{path}.volumes[{i}].name", name)
        volumes.add(name)
    if not _items(spec, "containers"):
        errs.required(f"{path}.containers")
    names: set[str] = set()
    for key in ("containers", "initContainers"):
        for i, container in enumerate(_items(spec, key)):
            _validate_container(container, f"{path}.{key}[{i}]", volumes, errs)
            name = _str(container.get("name"))
            if name and name in names:
                errs.duplicate(f"{path}.{key}[{i}].name", name)
            names.add(name)
    errs.enum(f"{path}.restartPolicy", spec.get("restartPolicy"), _RESTART_POLICIES, required=True)
    errs.enum(f"{path}.dnsPolicy", spec.get("dnsPolicy"), _DNS_POLICIES, required=False)


def _validate_pod(obj: Obj, old: Obj | None, errs: _Errors) -> None:
    _validate_pod_spec(obj.get("spec"), "spec", errs)
    if old is not None:
        _validate_pod_update(_dict(obj.get("spec")), _dict(old.get("spec")), errs)


def _validate_pod_update(new: Obj, old: Obj, errs: _Errors) -> None:
    """ValidatePodUpdate: make `new` look like `old` in the mutable fields, then compare."""
    if new == old:
        return
    for key in ("containers", "initContainers"):
        if len(_items(new, key)) != len(_items(old, key)):
            errs.forbidden(f"spec.{key}", "pod updates may not add or remove containers")
            return
    munged = copy.deepcopy(new)
    for key in ("containers", "initContainers"):
        for container, previous in zip(_items(munged, key), _items(old, key), strict=True):
            container["image"] = previous.get("image")
    for key in ("activeDeadlineSeconds", "ephemeralContainers"):
        munged.pop(key, None)
        if key in old:
            munged[key] = old[key]
    if not _only_added_tolerations(_items(new, "tolerations"), _items(old, "tolerations")):
        msg = "existing toleration can not be modified except its tolerationSeconds"
        errs.forbidden("spec.tolerations", msg)
        return
    munged["tolerations"] = old.get("tolerations")
    if not old.get("nodeName"):  # binding: the sandbox's scheduler sets nodeName by an update
        munged["nodeName"] = old.get("nodeName")
    old_grace = old.get("terminationGracePeriodSeconds")
    if (
        type(old_grace) is int
        and old_grace < 0
        and munged.get("terminationGracePeriodSeconds") == 1
    ):
        munged["terminationGracePeriodSeconds"] = old_grace
    if _normalized(munged) != _normalized(old):
        errs.forbidden("spec", _POD_UPDATE_MESSAGE)


def _only_added_tolerations(new: list[Obj], old: list[Obj]) -> bool:
    def key(toleration: Obj) -> Any:
        return _normalized({k: v for k, v in toleration.items() if k != "tolerationSeconds"})

    new_keys = [key(t) for t in new]
    return all(key(t) in new_keys for t in old)


# --- workloads ------------------------------------------------------------------------------------

_NilSelector = Literal["required", "mismatch", "skip"]


@dataclass(frozen=True)
class _Workload:
    """How one workload kind checks its selector and pod template."""

    nonnegative: tuple[str, ...]
    restart_policies: tuple[str, ...] = ("Always",)
    empty_selector_noun: str | None = None  # "empty selector is invalid for <noun>"
    nil_selector: _NilSelector = "required"
    deadline_owner: str | None = None  # "activeDeadlineSeconds in <owner> is not Supported"
    pod_spec: bool = True  # StatefulSet templates are not validated as pod specs (upstream TODO)
    immutable_selector: bool = True


_WORKLOADS: Final = {
    "Deployment": _Workload(
        ("replicas", "minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds"),
        empty_selector_noun="deployment",
        deadline_owner="ReplicaSet",
    ),
    "ReplicaSet": _Workload(
        ("replicas", "minReadySeconds"),
        empty_selector_noun="deployment",  # sic: upstream reuses the Deployment wording
        deadline_owner="ReplicaSet",
    ),
    "DaemonSet": _Workload(
        ("minReadySeconds", "revisionHistoryLimit"),
        empty_selector_noun="daemonset",
        nil_selector="mismatch",
        deadline_owner="DaemonSet",
    ),
    "StatefulSet": _Workload(
        ("replicas", "minReadySeconds"),
        empty_selector_noun="statefulset",
        deadline_owner="StatefulSet",
        pod_spec=False,
        immutable_selector=False,  # covered by the StatefulSet spec update rule
    ),
    # A Job's selector is generated from its uid; before that (no uid yet) there is none to check.
    "Job": _Workload(
        ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit"),
        restart_policies=("OnFailure", "Never"),
        nil_selector="skip",
        immutable_selector=False,  # covered by the Job update rule
    ),
}


def _validate_selector(spec: Obj, template: Obj, rules: _Workload, errs: _Errors) -> None:
    """Selector present, well formed, non-empty, and matching the template's labels."""
    raw, labels = spec.get("selector"), _dig(template, "metadata", "labels")
    nil_selector = "required" if spec.get("manualSelector") is True else rules.nil_selector
    if raw is None and nil_selector != "mismatch":
        if nil_selector == "required":
            errs.required("spec.selector")
        return
    selector = _dict(raw)
    for i, expr in enumerate(_items(selector, "matchExpressions")):
        _validate_requirement(expr, f"spec.selector.matchExpressions[{i}]", errs)
    empty = not selector.get("matchLabels") and not selector.get("matchExpressions")
    if raw is not None and empty and rules.empty_selector_noun:
        detail = f"empty selector is invalid for {rules.empty_selector_noun}"
        errs.invalid("spec.selector", _go_selector(raw), detail)
    try:
        compiled = label_selector_from_dict(selector)
    except SelectorError:
        errs.invalid("spec.selector", _go_selector(raw), "invalid label selector")
        return
    # A nil selector selects nothing; an empty one everything.
    if raw is None or not (compiled.is_empty() or compiled.matches(_dict(labels))):
        detail = "`selector` does not match template `labels`"
        errs.invalid("spec.template.metadata.labels", _go_map(labels), detail)


def _validate_requirement(expr: Obj, path: str, errs: _Errors) -> None:
    operator, values = expr.get("operator"), expr.get("values")
    if operator in ("In", "NotIn") and not values:
        detail = "must be specified when `operator` is 'In' or 'NotIn'"
        errs.required(f"{path}.values", detail)
    elif operator in ("Exists", "DoesNotExist") and values:
        detail = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
        errs.forbidden(f"{path}.values", detail)
    elif operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
        errs.invalid(f"{path}.operator", operator, "not a valid selector operator")


def _validate_template(template: Obj, path: str, rules: _Workload, errs: _Errors) -> None:
    spec = _dict(template.get("spec"))
    if not spec.get("restartPolicy"):
        # A real server defaults it to Always first; defaults.py leaves Job templates unset, so
        # answer what a real server answers there: Unsupported value "Always".
        spec = {**spec, "restartPolicy": "Always"}
    if rules.pod_spec:
        _validate_pod_spec(spec, f"{path}.spec", errs)
    restart_policy = spec["restartPolicy"]
    if restart_policy not in rules.restart_policies:
        errs.unsupported(f"{path}.spec.restartPolicy", restart_policy, rules.restart_policies)
    if rules.deadline_owner and spec.get("activeDeadlineSeconds") is not None:
        detail = f"activeDeadlineSeconds in {rules.deadline_owner} is not Supported"
        errs.forbidden(f"{path}.spec.activeDeadlineSeconds", detail)


def _validate_workload(kind: str, obj: Obj, old: Obj | None, errs: _Errors) -> None:
    rules, spec = _WORKLOADS[kind], _dict(obj.get("spec"))
    for name in rules.nonnegative:
        errs.nonnegative(f"spec.{name}", spec.get(name))
    template = _dict(spec.get("template"))
    _validate_selector(spec, template, rules, errs)
    _validate_template(template, "spec.template", rules, errs)
    _KIND_RULES.get(kind, _no_rules)(spec, errs)
    if old is None:
        return
    old_spec = _dict(old.get("spec"))
    if rules.immutable_selector:
        new_selector = spec.get("selector")
        shown = _go_selector(new_selector)
        errs.immutable("spec.selector", new_selector, old_spec.get("selector"), shown)
    _KIND_UPDATE_RULES.get(kind, _no_update_rules)(spec, old_spec, errs)


def _no_rules(spec: Obj, errs: _Errors) -> None:
    """Kinds without rules beyond the shared workload ones."""


def _no_update_rules(spec: Obj, old: Obj, errs: _Errors) -> None:
    """Kinds without update rules beyond the shared workload ones."""


def _validate_deployment_strategy(spec: Obj, errs: _Errors) -> None:
    strategy = _dict(spec.get("strategy"))
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if kind == "Recreate" and rolling is not None:
        detail = "may not be specified when strategy `type` is 'Recreate'"
        errs.forbidden("spec.strategy.rollingUpdate", detail)
    elif kind == "RollingUpdate" and rolling is None:
        errs.required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil")
    elif kind == "RollingUpdate":
        _validate_rolling_update(_dict(rolling), "spec.strategy.rollingUpdate", errs)
    elif kind != "Recreate":
        shown = _go_strategy("apps.DeploymentStrategy", "(*apps.RollingUpdateDeployment)", strategy)
        errs.unsupported("spec.strategy", shown, ("Recreate", "RollingUpdate"))


def _validate_rolling_update(rolling: Obj, path: str, errs: _Errors) -> None:
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    for name, value in (("maxUnavailable", unavailable), ("maxSurge", surge)):
        if isinstance(value, str) and not _PERCENT_RE.fullmatch(value):
            errs.invalid(f"{path}.{name}", _go_intstr(value), _PERCENT_MSG)
        elif type(value) is int:
            errs.nonnegative(f"{path}.{name}", value)
    if _intstr_value(unavailable) == 0 and _intstr_value(surge) == 0:
        detail = "may not be 0 when `maxSurge` is 0"
        errs.invalid(f"{path}.maxUnavailable", _go_intstr(unavailable), detail)
    percent = isinstance(unavailable, str) and _PERCENT_RE.fullmatch(unavailable)
    if percent and _intstr_value(unavailable) > 100:
        shown = _go_intstr(unavailable)
        errs.invalid(f"{path}.maxUnavailable", shown, "must not be greater than 100%")


def _intstr_value(value: Any) -> int:
    """intstr's IntValue, with "N%" read as N (getIntOrPercentValue)."""
    if type(value) is int:
        return value
    if isinstance(value, str):
        digits = value[:-1] if _PERCENT_RE.fullmatch(value) else value
        return int(digits) if digits.isdigit() else 0
    return 0


def _go_intstr(value: Any) -> _Go:
    if isinstance(value, str):
        fields = [("Type", "1"), ("IntVal", "0"), ("StrVal", _quote(value))]
    else:
        fields = [("Type", "0"), ("IntVal", str(value or 0)), ("StrVal", '""')]
    return _go_struct("intstr.IntOrString", fields)


def _validate_daemon_set_strategy(spec: Obj, errs: _Errors) -> None:
    strategy = _dict(spec.get("updateStrategy"))
    if strategy.get("type") not in ("RollingUpdate", "OnDelete"):
        rolling = "(*apps.RollingUpdateDaemonSet)"
        shown = _go_strategy("apps.DaemonSetUpdateStrategy", rolling, strategy)
        errs.unsupported("spec.updateStrategy", shown, ("RollingUpdate", "OnDelete"))


def _validate_stateful_set(spec: Obj, errs: _Errors) -> None:
    policy = spec.get("podManagementPolicy")
    if not policy:
        errs.required("spec.podManagementPolicy")
    elif policy not in ("OrderedReady", "Parallel"):
        errs.invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'")


def _validate_stateful_set_update(spec: Obj, old: Obj, errs: _Errors) -> None:
    def frozen(s: Obj) -> Any:
        return _normalized({k: v for k, v in s.items() if k not in _STS_MUTABLE})

    if frozen(spec) != frozen(old):
        errs.forbidden("spec", _STS_UPDATE_MESSAGE)


_JOB_SCHEDULING_DIRECTIVES: Final = (
    ("metadata", "labels"),
    ("metadata", "annotations"),
    ("spec", "nodeSelector"),
    ("spec", "tolerations"),
    ("spec", "schedulingGates"),
)


def _validate_job_update(spec: Obj, old: Obj, errs: _Errors) -> None:
    selector = spec.get("selector")
    errs.immutable("spec.selector", selector, old.get("selector"), _go_selector(selector))
    template, old_template = _dict(spec.get("template")), copy.deepcopy(_dict(old.get("template")))
    if old.get("suspend") is True:  # suspended Jobs may move their pods (scheduling directives)
        for section, key in _JOB_SCHEDULING_DIRECTIVES:
            _dict(old_template.setdefault(section, {}))[key] = _dig(template, section, key)
    errs.immutable("spec.template", template, old_template, _Go("core.PodTemplateSpec{...}"))
    errs.immutable("spec.completionMode", spec.get("completionMode"), old.get("completionMode"))


_KIND_RULES: Final[dict[str, Callable[[Obj, _Errors], None]]] = {
    "Deployment": _validate_deployment_strategy,
    "DaemonSet": _validate_daemon_set_strategy,
    "StatefulSet": _validate_stateful_set,
}
_KIND_UPDATE_RULES: Final[dict[str, Callable[[Obj, Obj, _Errors], None]]] = {
    "StatefulSet": _validate_stateful_set_update,
    "Job": _validate_job_update,
}


def _validate_cron_job(obj: Obj, old: Obj | None, errs: _Errors) -> None:
    spec = _dict(obj.get("spec"))
    schedule = spec.get("schedule")
    if not schedule:
        errs.required("spec.schedule")
    elif isinstance(schedule, str) and not schedule.startswith("@"):
        fields = schedule.split()
        if len(fields) != 5:
            detail = f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
            errs.invalid("spec.schedule", schedule, detail)
    concurrency = spec.get("concurrencyPolicy")
    errs.enum("spec.concurrencyPolicy", concurrency, ("Allow", "Forbid", "Replace"), required=True)
    template = _dict(_dig(spec, "jobTemplate", "spec", "template"))
    path = ".".join(POD_TEMPLATE_PATHS["CronJob"])
    _validate_template(template, path, _WORKLOADS["Job"], errs)


# --- services -------------------------------------------------------------------------------------


def _validate_service(obj: Obj, old: Obj | None, errs: _Errors) -> None:
    spec = _dict(obj.get("spec"))
    service_type = spec.get("type")
    errs.enum("spec.type", service_type, _SERVICE_TYPES, required=True)
    ports = _items(spec, "ports")
    if not ports and spec.get("clusterIP") != "None" and service_type != "ExternalName":
        errs.required("spec.ports")
    names: set[str] = set()
    for i, port in enumerate(ports):
        _validate_service_port(port, f"spec.ports[{i}]", len(ports) > 1, names, errs)
    if service_type == "ExternalName" and not spec.get("externalName"):
        errs.required("spec.externalName")
    affinity = spec.get("sessionAffinity")
    errs.enum("spec.sessionAffinity", affinity, ("ClientIP", "None"), required=False)
    policy = spec.get("externalTrafficPolicy")
    errs.enum("spec.externalTrafficPolicy", policy, ("Cluster", "Local"), required=False)
    if old is not None:
        _validate_cluster_ip_update(spec, _dict(old.get("spec")), errs)


def _validate_service_port(
    port: Obj, path: str, name_required: bool, names: set[str], errs: _Errors
) -> None:
    name = _str(port.get("name"))
    if name_required and not name:
        errs.required(f"{path}.name")
    elif name:
        errs.each(f"{path}.name", name, _dns_label_errors(name))
        if name in names:
            errs.duplicate(f"{path}.name", name)
        names.add(name)
    number = port.get("port")
    errs.port(f"{path}.port", 0 if number is None else number)
    errs.enum(f"{path}.protocol", port.get("protocol"), _PROTOCOLS, required=True)
    target = port.get("targetPort")
    if isinstance(target, str):
        errs.each(f"{path}.targetPort", target, _port_name_errors(target))
    else:
        errs.port(f"{path}.targetPort", target)


def _primary_ip(spec: Obj) -> str:
    ips = spec.get("clusterIPs")
    first = ips[0] if isinstance(ips, list) and ips else spec.get("clusterIP")
    return first if isinstance(first, str) else ""


def _validate_cluster_ip_update(spec: Obj, old: Obj, errs: _Errors) -> None:
    """ClusterIPs may not change once set (an empty one is refilled from the old object)."""
    if "ExternalName" in (spec.get("type"), old.get("type")):
        return
    new_ip, old_ip = _primary_ip(spec), _primary_ip(old)
    if new_ip and old_ip and new_ip != old_ip:
        ips = spec.get("clusterIPs") or [new_ip]
        path = "spec.clusterIPs" if "None" in (new_ip, old_ip) else "spec.clusterIPs[0]"
        errs.invalid(path, _go_strings(ips), "may not change once set")


# --- config ---------------------------------------------------------------------------------------

_SECRET_REQUIRED_KEYS: Final = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def _validate_keys(obj: Obj, bags: Sequence[str], errs: _Errors) -> None:
    for bag in bags:
        shown_bag = "data" if bag == "stringData" else bag  # stringData is folded into data
        for key in _dict(obj.get(bag)):
            errs.each(f"{shown_bag}[{key}]", key, _config_key_errors(key))


def _validate_config_map(obj: Obj, old: Obj | None, errs: _Errors) -> None:
    _validate_keys(obj, ("data", "binaryData"), errs)
    for key in set(_dict(obj.get("data"))) & set(_dict(obj.get("binaryData"))):
        errs.invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
    if old is not None:
        _validate_immutable_bags(obj, old, ("data", "binaryData"), errs)


def _validate_secret(obj: Obj, old: Obj | None, errs: _Errors) -> None:
    _validate_keys(obj, ("data", "stringData"), errs)
    keys = set(_dict(obj.get("data"))) | set(_dict(obj.get("stringData")))
    secret_type = _str(obj.get("type")) or "Opaque"
    for key in _SECRET_REQUIRED_KEYS.get(secret_type, ()):
        if key not in keys:
            errs.required(f"data[{key}]")
    if secret_type == "kubernetes.io/basic-auth" and not keys & {"username", "password"}:
        errs.required("data[username]")
        errs.required("data[password]")
    account = _dig(obj, "metadata", "annotations", "kubernetes.io/service-account.name")
    if secret_type == "kubernetes.io/service-account-token" and not account:
        errs.required("metadata.annotations[kubernetes.io/service-account.name]")
    if old is not None:
        errs.immutable("type", obj.get("type"), old.get("type"))
        _validate_immutable_bags(obj, old, ("data",), errs)


def _validate_immutable_bags(obj: Obj, old: Obj, bags: Sequence[str], errs: _Errors) -> None:
    if old.get("immutable") is not True:
        return
    detail = "field is immutable when `immutable` is set"
    if obj.get("immutable") is not True:
        errs.forbidden("immutable", detail)
    for bag in bags:
        if _normalized(obj.get(bag)) != _normalized(old.get(bag)):
            errs.forbidden(bag, detail)


# --- admission webhooks ---------------------------------------------------------------------------

_REVIEW_VERSIONS: Final = ("v1", "v1beta1")
_OPERATIONS: Final = ("*", "CONNECT", "CREATE", "DELETE", "UPDATE")


def _validate_webhooks(obj: Obj, old: Obj | None, errs: _Errors, *, mutating: bool) -> None:
    names: set[str] = set()
    for i, hook in enumerate(_items(obj, "webhooks")):
        path, name = f"webhooks[{i}]", _str(hook.get("name"))
        _validate_qualified_name(f"{path}.name", name, errs)
        if name in names:
            errs.duplicate(f"{path}.name", name)
        names.add(name)
        for j, rule in enumerate(_items(hook, "rules")):
            _validate_webhook_rule(rule, f"{path}.rules[{j}]", errs)
        _validate_hook_settings(hook, path, mutating, errs)
        _validate_client_config(_dict(hook.get("clientConfig")), f"{path}.clientConfig", errs)


def _validate_qualified_name(path: str, name: str, errs: _Errors) -> None:
    if not name:
        errs.required(path)
    elif problems := _dns_subdomain_errors(name):
        errs.invalid(path, name, ",".join(problems))
    elif len(name.split(".")) < 3:
        errs.invalid(
            path, name, "should be a domain with at least three segments separated by dots"
        )


def _validate_hook_settings(hook: Obj, path: str, mutating: bool, errs: _Errors) -> None:
    side_effects = hook.get("sideEffects")
    if side_effects is None:
        errs.required(f"{path}.sideEffects", "must specify one of None, NoneOnDryRun")
    else:
        errs.enum(f"{path}.sideEffects", side_effects, ("None", "NoneOnDryRun"), required=False)
    versions = hook.get("admissionReviewVersions")
    if not versions:
        errs.required(f"{path}.admissionReviewVersions", "must specify one of v1, v1beta1")
    elif isinstance(versions, list):
        _validate_review_versions(versions, f"{path}.admissionReviewVersions", errs)
    errs.enum(
        f"{path}.failurePolicy", hook.get("failurePolicy"), ("Fail", "Ignore"), required=False
    )
    errs.enum(
        f"{path}.matchPolicy", hook.get("matchPolicy"), ("Equivalent", "Exact"), required=False
    )
    if mutating:
        policy = hook.get("reinvocationPolicy")
        errs.enum(f"{path}.reinvocationPolicy", policy, ("IfNeeded", "Never"), required=False)
    timeout = hook.get("timeoutSeconds")
    if type(timeout) is int and not 1 <= timeout <= 30:
        errs.invalid(
            f"{path}.timeoutSeconds", timeout, "the timeout value must be between 1 and 30 seconds"
        )


def _validate_review_versions(versions: list[Any], path: str, errs: _Errors) -> None:
    seen: set[str] = set()
    for i, version in enumerate(versions):
        version = _str(version)
        if version in seen:
            errs.invalid(f"{path}[{i}]", version, "duplicate version")
            continue
        seen.add(version)
        errs.each(f"{path}[{i}]", version, _dns1035_errors(version))
    if not seen & set(_REVIEW_VERSIONS):
        errs.invalid(path, _go_strings(versions), "must include at least one of v1, v1beta1")


def _validate_webhook_rule(rule: Obj, path: str, errs: _Errors) -> None:
    for key in ("operations", "apiGroups", "apiVersions", "resources"):
        if not rule.get(key):
            errs.required(f"{path}.{key}")
    operations = rule.get("operations")
    for i, operation in enumerate(operations if isinstance(operations, list) else []):
        if operation not in _OPERATIONS:
            errs.unsupported(f"{path}.operations[{i}]", operation, _OPERATIONS)
    errs.enum(f"{path}.scope", rule.get("scope"), ("*", "Cluster", "Namespaced"), required=False)


def _validate_client_config(config: Obj, path: str, errs: _Errors) -> None:
    url, service = config.get("url"), config.get("service")
    if (url is None) == (service is None):
        errs.required(path, "exactly one of url or service is required")
    elif isinstance(url, str):
        _validate_webhook_url(url, f"{path}.url", errs)
    elif isinstance(service, dict):
        if not service.get("name"):
            errs.required(f"{path}.service.name", "service name is required")
        if not service.get("namespace"):
            errs.required(f"{path}.service.namespace", "service namespace is required")
        port = service.get("port")
        if type(port) is int and not 1 <= port <= 65535:
            errs.invalid(f"{path}.service.port", port, f"port is not valid: {_PORT_RANGE}")
        svc_path = service.get("path")
        if isinstance(svc_path, str) and svc_path not in ("", "/") and not svc_path.startswith("/"):
            errs.invalid(f"{path}.service.path", svc_path, "must start with a '/'")


def _validate_webhook_url(url: str, path: str, errs: _Errors) -> None:
    form = "; desired format: https://host[/path]"
    try:
        parts = urlsplit(url)
    except ValueError as error:
        errs.required(path, f"url must be a valid URL: {error}{form}")
        return
    if parts.scheme != "https":
        errs.invalid(path, parts.scheme, "'https' is the only allowed URL scheme" + form)
    user, _, host = parts.netloc.rpartition("@")
    if not host:
        errs.invalid(path, host, "host must be specified" + form)
    if user:
        errs.invalid(path, user, "user information is not permitted in the URL")
    if parts.fragment:
        errs.invalid(path, parts.fragment, "fragments are not permitted in the URL")
    if parts.query:
        errs.invalid(path, parts.query, "query parameters are not permitted in the URL")


# --- RBAC -----------------------------------------------------------------------------------------


def _validate_binding(obj: Obj, old: Obj | None, errs: _Errors, *, namespaced: bool) -> None:
    ref = _dict(obj.get("roleRef"))
    if ref.get("apiGroup") != _RBAC_GROUP:
        errs.unsupported("roleRef.apiGroup", ref.get("apiGroup") or "", (_RBAC_GROUP,))
    kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
    if ref.get("kind") not in kinds:
        errs.unsupported("roleRef.kind", ref.get("kind") or "", kinds)
    if not ref.get("name"):
        errs.required("roleRef.name")
    for i, subject in enumerate(_items(obj, "subjects")):
        _validate_subject(subject, f"subjects[{i}]", namespaced, errs)
    if old is not None:
        old_ref = _dict(old.get("roleRef"))
        if _normalized(ref) != _normalized(old_ref):
            errs.invalid("roleRef", _go_role_ref(ref), "cannot change roleRef")


def _validate_subject(subject: Obj, path: str, namespaced: bool, errs: _Errors) -> None:
    if not subject.get("name"):
        errs.required(f"{path}.name")
    kind, group = subject.get("kind"), subject.get("apiGroup") or ""
    if kind == "ServiceAccount":
        if group:
            errs.unsupported(f"{path}.apiGroup", group, ("",))
        if not namespaced and not subject.get("namespace"):
            errs.required(f"{path}.namespace")
    elif kind in ("User", "Group"):
        if group != _RBAC_GROUP:
            errs.unsupported(f"{path}.apiGroup", group, (_RBAC_GROUP,))
    else:
        errs.unsupported(f"{path}.kind", kind or "", ("ServiceAccount", "User", "Group"))


def _validate_role(obj: Obj, old: Obj | None, errs: _Errors, *, namespaced: bool) -> None:
    for i, rule in enumerate(_items(obj, "rules")):
        path = f"rules[{i}]"
        if not rule.get("verbs"):
            errs.required(f"{path}.verbs", "verbs must contain at least one value")
        urls = rule.get("nonResourceURLs")
        if urls:
            if namespaced:
                detail = "namespaced rules cannot apply to non-resource URLs"
                errs.invalid(f"{path}.nonResourceURLs", _go_strings(urls), detail)
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                detail = "rules cannot apply to both regular resources and non-resource URLs"
                errs.invalid(f"{path}.nonResourceURLs", _go_strings(urls), detail)
            continue
        if not rule.get("apiGroups"):
            detail = "resource rules must supply at least one api group"
            errs.required(f"{path}.apiGroups", detail)
        if not rule.get("resources"):
            errs.required(f"{path}.resources", "resource rules must supply at least one resource")


# --- dispatch -------------------------------------------------------------------------------------

_Validator = Callable[[Obj, Obj | None, _Errors], None]


def _workload(kind: str) -> _Validator:
    return lambda obj, old, errs: _validate_workload(kind, obj, old, errs)


_ADMISSION: Final = "admissionregistration.k8s.io/v1"
_RBAC: Final = "rbac.authorization.k8s.io/v1"
_VALIDATORS: Final[dict[tuple[str, str], _Validator]] = {
    ("v1", "Pod"): _validate_pod,
    ("v1", "Service"): _validate_service,
    ("v1", "ConfigMap"): _validate_config_map,
    ("v1", "Secret"): _validate_secret,
    **{("apps/v1", kind): _workload(kind) for kind in _WORKLOADS if kind != "Job"},
    ("batch/v1", "Job"): _workload("Job"),
    ("batch/v1", "CronJob"): _validate_cron_job,
    (_ADMISSION, "MutatingWebhookConfiguration"): lambda o, old, e: _validate_webhooks(
        o, old, e, mutating=True
    ),
    (_ADMISSION, "ValidatingWebhookConfiguration"): lambda o, old, e: _validate_webhooks(
        o, old, e, mutating=False
    ),
    (_RBAC, "RoleBinding"): lambda o, old, e: _validate_binding(o, old, e, namespaced=True),
    (_RBAC, "ClusterRoleBinding"): lambda o, old, e: _validate_binding(o, old, e, namespaced=False),
    (_RBAC, "Role"): lambda o, old, e: _validate_role(o, old, e, namespaced=True),
    (_RBAC, "ClusterRole"): lambda o, old, e: _validate_role(o, old, e, namespaced=False),
}


def validate_builtin(
    obj: dict[str, Any], api_version: str, kind: str, old: dict[str, Any] | None = None
) -> list[tuple[str, str]]:
    """(field path, message) causes kube-apiserver would answer 422 Invalid with; [] when valid.

    `old` is the stored object on update (None on create). Kinds without rules here (including
    every kind this module does not know) validate clean.
    """
    validator = _VALIDATORS.get((api_version, kind))
    if validator is None:
        return []
    errs = _Errors()
    validator(obj, old, errs)
    return errs.causes

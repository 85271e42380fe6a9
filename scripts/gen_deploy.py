"""Generate `deploy/operator/clusterrole.yaml`, the operator's least-privilege ClusterRole.

The ClusterRole is derived from code rather than written by hand, so that it cannot drift from
what the operator does. The kinds a revision's install is made of come from
`meshcanary.controlplane.render.KINDS`: a kind added to the renderer gets its permissions here,
or `--check` fails. The CRD names the operator may patch come from `istio_crds.names()` and
`controlplane.crd.NAME`. Every rule is commented with why it exists; `docs/operator.md`
explains the choices, the `escalate`/`bind` one first of all.

`--check` exits 1 when the file is missing or differs, without writing (CI and
`tests/unit/deploy/test_manifests.py` run it).

Usage: .venv/bin/python scripts/gen_deploy.py [--check] [--dir deploy/operator]
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any, Final

import yaml

from meshcanary.controlplane import crd, istio_crds, render, spec

ROOT = Path(__file__).resolve().parent.parent
NAME: Final = "meshcanary-operator"
FILE: Final = "clusterrole.yaml"

READ: Final = ["get", "list", "watch"]
APPLY_AND_PRUNE: Final = ["create", "delete", "get", "list", "patch", "watch"]
"""Server-side apply is a PATCH (and a create when the object is new); prune lists and deletes."""

Rule = dict[str, Any]


def _plural(kind: str) -> str:
    lower = kind.lower()
    return lower + ("es" if lower.endswith(("s", "x")) else "s")


def _rule(groups: list[str], resources: list[str], verbs: list[str], **extra: Any) -> Rule:
    rule: Rule = {"apiGroups": groups, "resources": resources}
    rule.update(extra)
    rule["verbs"] = sorted(verbs)
    return rule


def rendered_kinds() -> dict[str, list[str]]:
    """API group -> plural resources of every kind `render.KINDS` lists, sorted."""
    groups: dict[str, set[str]] = defaultdict(set)
    for api_version, kind, _namespaced in render.KINDS:
        group = api_version.rpartition("/")[0]
        groups[group].add(_plural(kind))
    return {group: sorted(plurals) for group, plurals in sorted(groups.items())}


_GROUP_NOTES: Final = {
    "admissionregistration.k8s.io": (
        " Also kopf's managed ValidatingWebhookConfiguration for the deletion guard (created"
        " at start, patched with the webhook's clientConfig)."
    ),
}


def rules() -> list[tuple[str, Rule]]:
    """(why, rule) pairs, in the order the file lists them."""
    found: list[tuple[str, Rule]] = []
    for group, plurals in rendered_kinds().items():
        why = "A revision's istiod install (render.KINDS): server-side apply, drift, prune."
        found.append((why + _GROUP_NOTES.get(group, ""), _rule([group], plurals, APPLY_AND_PRUNE)))
    found += [
        (
            "istiod's ClusterRole and Role grant what the operator does not hold (read all "
            "Secrets, approve CSRs, * on Istio's groups): escalate and bind instead of holding "
            "it. See docs/operator.md, 'RBAC'.",
            _rule(["rbac.authorization.k8s.io"], ["clusterroles", "roles"], ["bind", "escalate"]),
        ),
        (
            "The IstioControlPlane resources kopf watches; patch for kopf's finalizer and "
            "progress annotations.",
            _rule([spec.GROUP], [spec.PLURAL], ["get", "list", "patch", "watch"]),
        ),
        (
            "The status the operator writes (merge patch on the status subresource).",
            _rule([spec.GROUP], [f"{spec.PLURAL}/status"], ["get", "patch"]),
        ),
        (
            "Rendered objects are owned by their IstioControlPlane with blockOwnerDeletion; "
            "the OwnerReferencesPermissionEnforcement admission plugin checks this.",
            _rule([spec.GROUP], [f"{spec.PLURAL}/finalizers"], ["update"]),
        ),
        (
            "Live proxies per revision and the namespaces that select it: read only.",
            _rule([""], ["namespaces", "pods"], READ),
        ),
        (
            "Kubernetes Events for status transitions (the operator's and kopf's).",
            _rule([""], ["events"], ["create", "patch"]),
        ),
        (
            "Find CRDs (kopf discovery, Istio's CRDs, our own) and install missing ones. "
            "Creating cannot be narrowed by name.",
            _rule(["apiextensions.k8s.io"], ["customresourcedefinitions"], [*READ, "create"]),
        ),
        (
            "Upgrade only Istio's CRDs and our own, by name. Never delete: CRDs outlive "
            "control planes.",
            _rule(
                ["apiextensions.k8s.io"],
                ["customresourcedefinitions"],
                ["patch"],
                resourceNames=sorted([*istio_crds.names(), crd.NAME]),
            ),
        ),
        (
            "kopf peering (leader election between replicas): read the peers, patch the "
            "keep-alives.",
            _rule(
                ["kopf.dev"],
                ["clusterkopfpeerings", "kopfpeerings"],
                ["get", "list", "patch", "watch"],
            ),
        ),
    ]
    return found


def cluster_role() -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": NAME,
            "labels": {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "meshcanary"},
        },
        "rules": [rule for _why, rule in rules()],
    }


def manifest() -> str:
    """The file's text: the ClusterRole, each rule preceded by a comment saying why."""
    header = (
        "# Generated by scripts/gen_deploy.py from meshcanary.controlplane.render.KINDS. Do not\n"
        "# edit: change the script (or the renderer), then run `.venv/bin/python "
        "scripts/gen_deploy.py`.\n"
        "# Least privilege: no wildcard verbs or resources, no Secrets, no CRD deletion.\n"
    )
    head = cluster_role()
    del head["rules"]
    body = _dump(head) + "rules:\n"
    for why, rule in rules():
        body += "".join(f"  # {line}\n" for line in textwrap.wrap(why, 96))
        body += _rule_text(rule)
    return header + body


def _rule_text(rule: Rule) -> str:
    """One rule: short lists inline (`verbs: [get, list]`), resourceNames one per line."""
    lines = []
    for key, value in rule.items():
        if key == "resourceNames":
            lines.append(f"{key}:")
            lines += [f"  - {_flow(name)}" for name in value]
        else:
            lines.append(f"{key}: {_flow(value)}")
    return "".join(f"  {'- ' if i == 0 else '  '}{line}\n" for i, line in enumerate(lines))


def _flow(value: Any) -> str:
    return (
        yaml.safe_dump(value, default_flow_style=True, width=1000)
        .strip()
        .removesuffix("...")
        .strip()
    )


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    parser.add_argument("--dir", type=Path, default=ROOT / "deploy" / "operator")
    args = parser.parse_args()
    path = args.dir / FILE
    if args.check:
        if not path.exists() or path.read_text(encoding="utf-8") != manifest():
            print(f"{path} is out of date; run {sys.argv[0]}", file=sys.stderr)
            return 1
        return 0
    args.dir.mkdir(parents=True, exist_ok=True)
    path.write_text(manifest(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

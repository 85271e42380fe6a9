"""The CRD: names, printer columns, a structural schema that rejects bad specs, the YAML file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary.controlplane import crd, spec
from meshcanary.sandbox.apiserver import schema as sandbox_schema

ROOT = Path(__file__).resolve().parents[3]
CRD_FILE = ROOT / "deploy" / "crds" / "istiocontrolplanes.yaml"


def version() -> dict[str, Any]:
    (only,) = crd.definition()["spec"]["versions"]
    result: dict[str, Any] = only
    return result


def open_api() -> dict[str, Any]:
    result: dict[str, Any] = version()["schema"]["openAPIV3Schema"]
    return result


def issues(obj: dict[str, Any]) -> list[str]:
    """The API server's pipeline: prune and default, then validate (as the sandbox does)."""
    prepared, _ = sandbox_schema.prepare(obj, open_api())
    return [f"{i.path}: {i.message}" for i in sandbox_schema.validate(prepared, open_api())]


def icp(**fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "meshcanary.io/v1alpha1",
        "kind": "IstioControlPlane",
        "metadata": {"name": "cp", "namespace": "istio-system"},
        "spec": {"version": "1.15.3", **fields},
    }


def test_names_and_scope() -> None:
    definition = crd.definition()
    assert definition["metadata"]["name"] == "istiocontrolplanes.meshcanary.io"
    body = definition["spec"]
    assert body["group"] == "meshcanary.io"
    assert body["scope"] == "Namespaced"
    assert body["names"]["kind"] == "IstioControlPlane"
    assert body["names"]["plural"] == "istiocontrolplanes"
    assert body["names"]["shortNames"] == ["icp", "istiocp"]
    assert version()["name"] == "v1alpha1"
    assert version()["served"] and version()["storage"]
    assert version()["subresources"] == {"status": {}}


def test_the_crd_is_valid_for_the_api_server() -> None:
    assert sandbox_schema.validate_crd(crd.definition()) == []


def test_default_printing_shows_exactly_the_seed_columns() -> None:
    """kubectl prints NAME, then the priority-0 columns upper-cased."""
    columns = version()["additionalPrinterColumns"]
    header = ["NAME"] + [c["name"].upper() for c in columns if not c.get("priority")]
    assert " ".join(header) == "NAME MODE NETWORK STATUS MESH EXPANSION EXPANSION GW IPS ERROR AGE"
    wide = ["NAME"] + [c["name"].upper() for c in columns]
    assert wide[-2:] == ["VERSION", "PROXIES"]


def test_printer_columns_read_the_right_fields() -> None:
    paths = {c["name"]: (c["type"], c["jsonPath"]) for c in version()["additionalPrinterColumns"]}
    assert paths == {
        "Mode": ("string", ".spec.mode"),
        "Network": ("string", ".spec.networkName"),
        "Status": ("string", ".status.status"),
        "Mesh Expansion": ("boolean", ".spec.meshExpansion.enabled"),
        "Expansion GW IPs": ("string", ".status.gatewayAddress"),
        "Error": ("string", ".status.errorMessage"),
        "Age": ("date", ".metadata.creationTimestamp"),
        "Version": ("string", ".spec.version"),
        "Proxies": ("integer", ".status.proxies"),
    }


def test_a_minimal_resource_is_defaulted_like_the_model() -> None:
    prepared, pruned = sandbox_schema.prepare(icp(), open_api())
    assert pruned == []
    assert prepared["spec"] == {
        "version": "1.15.3",
        "mode": "ACTIVE",
        "networkName": "network1",
        "meshExpansion": {"enabled": False},
        "containerImageConfiguration": {"hub": "docker.io/istio"},
        "istiod": {"deployment": {"replicas": 1}},
        "proxy": {"logLevel": "warning"},
        "clusterID": "Kubernetes",
    }


def test_a_full_resource_is_valid_and_keeps_everything() -> None:
    from tests.unit.controlplane.cases import FULL

    prepared, pruned = sandbox_schema.prepare(FULL, open_api())
    assert pruned == []
    assert issues(FULL) == []
    assert prepared["spec"]["meshConfig"] == FULL["spec"]["meshConfig"]


def test_status_fields_are_kept() -> None:
    status = {
        "status": "Available",
        "errorMessage": "",
        "gatewayAddress": ["3.122.28.53"],
        "proxies": 3,
        "namespaces": ["smm-demo"],
        "observedGeneration": 2,
        "revision": "cp.istio-system",
        "version": "1.15.3",
        "kopf": {"progress": {"x": 1}},
    }
    prepared, pruned = sandbox_schema.prepare({**icp(), "status": status}, open_api())
    assert pruned == []
    assert prepared["status"] == status


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"version": "1.15"}, "spec.version in body should match '^1\\.[0-9]+\\.[0-9]+$'"),
        ({"version": "2.0.0"}, "should match"),
        ({"mode": "FOO"}, 'Unsupported value: "FOO": supported values: "ACTIVE", "PASSIVE"'),
        ({"istiod": {"deployment": {"replicas": -1}}}, "should be greater than or equal to 0"),
        ({"proxy": {"logLevel": "loud"}}, 'Unsupported value: "loud"'),
        ({"containerImageConfiguration": {"imagePullPolicy": "Sometimes"}}, "Unsupported value"),
        ({"meshExpansion": {"enabled": "yes"}}, "spec.meshExpansion.enabled: Invalid value"),
        ({"istiod": {"deployment": {"resources": {"limits": {"cpu": "lots"}}}}}, "should match"),
        ({"istiod": {"deployment": {"env": [{"value": "x"}]}}}, "env[0].name: Required value"),
        (
            {"istiod": {"deployment": {"tolerations": [{"operator": "Maybe"}]}}},
            'Unsupported value: "Maybe"',
        ),
    ],
)
def test_the_schema_rejects_bad_specs_with_a_clear_message(
    fields: dict[str, Any], expected: str
) -> None:
    found = issues(icp(**fields))
    assert len(found) == 1, found
    assert expected in found[0]


def test_the_version_is_required() -> None:
    obj = icp()
    del obj["spec"]["version"]
    assert issues(obj) == ["spec.version: Required value"]


def test_every_default_is_valid_against_its_own_schema() -> None:
    """kube-apiserver refuses a CRD whose defaults do not validate: check each one."""

    def walk(node: dict[str, Any], path: str) -> None:
        if "default" in node:
            found = sandbox_schema.validate({"x": node["default"]}, _wrap(node))
            assert found == [], f"{path}: {found}"
        for key, child in (node.get("properties") or {}).items():
            walk(child, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")

    walk(open_api(), "")


def _wrap(node: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"x": node}}


def test_the_schema_uses_the_models_constants() -> None:
    properties = open_api()["properties"]["spec"]["properties"]
    assert properties["version"]["pattern"] == spec.VERSION_PATTERN
    assert properties["proxy"]["properties"]["logLevel"]["enum"] == list(spec.LOG_LEVELS)
    assert properties["mode"]["enum"] == ["ACTIVE", "PASSIVE"]


def test_definition_returns_a_new_dict_each_time() -> None:
    first = crd.definition()
    first["spec"]["names"]["shortNames"].append("x")
    assert crd.definition()["spec"]["names"]["shortNames"] == ["icp", "istiocp"]


def test_the_generated_file_is_up_to_date() -> None:
    assert CRD_FILE.read_text(encoding="utf-8") == crd.manifest(), (
        "deploy/crds/istiocontrolplanes.yaml is stale: run .venv/bin/python scripts/gen_crds.py"
    )
    documents = list(yaml.safe_load_all(CRD_FILE.read_text(encoding="utf-8")))
    assert documents == [crd.definition()]


def test_gen_crds_check_mode(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "gen_crds.py"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(script), "--dir", str(tmp_path), *args],
            capture_output=True,
            text=True,
            check=False,
        )

    stale = run("--check")
    assert stale.returncode == 1
    assert "istiocontrolplanes.yaml is out of date" in stale.stderr
    assert not (tmp_path / "istiocontrolplanes.yaml").exists()
    assert run().returncode == 0
    assert run("--check").returncode == 0
    assert (tmp_path / "istiocontrolplanes.yaml").read_text(encoding="utf-8") == crd.manifest()

"""Generate `proto_schema.json`, the message table of the sandbox's Kubernetes protobuf decoder.

kubectl's typed-client commands (`kubectl create namespace`, `create deployment`, ...) send
request bodies as Kubernetes protobuf, and the wire format carries only field numbers. To turn a
body into the JSON a real API server would see, the decoder needs, for every message, each field
number's JSON name, its protobuf type and how Go's `encoding/json` treats it. Kubernetes publishes
the protobuf half in its `generated.proto` files and the JSON half in the Go struct tags of the
same packages (`json:"uid,omitempty" protobuf:"bytes,4,opt,name=uID"`), and the two do not always
agree on names (`uID` vs `uid`, `xKubernetesPreserveUnknownFields` vs
`x-kubernetes-preserve-unknown-fields`, inline embedded structs). This script joins them by field
number and writes a compact table:

    {
      "source": "...",
      "groups": {"<apiVersion>": "<package>"},
      "wrappers": ["<message>", ...],
      "messages": {"<message>": {"<number>": [json, type, flags] | [json, "map", flags, k, v]}}
    }

Message names are proto names with the `k8s.io.api.`-style prefix dropped (`core.v1.Pod`,
`meta.v1.ObjectMeta`). `type` is a protobuf scalar type or a message name. `flags` is a bit set:
1 repeated, 2 omitted from JSON when empty (Go `omitempty` on a non-pointer, non-struct field),
4 inline (an embedded struct whose fields Go promotes into the parent). `wrappers` are messages
that wrap a Go slice (`+protobuf.nullable=true`, e.g. `Verbs`): their JSON is the `items` list.

The inputs are checkouts (or bare git directories, read at `--ref`) of kubernetes/api,
kubernetes/apimachinery and kubernetes/apiextensions-apiserver. They are read at generation
time only; the runtime needs nothing but the JSON.

Usage: .venv/bin/python scripts/gen_proto_schema.py --api DIR --apimachinery DIR \
    --apiextensions DIR [--ref release-1.33] [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUTPUT = (
    Path(__file__).resolve().parent.parent
    / "src"
    / "meshcanary"
    / "sandbox"
    / "apiserver"
    / "proto_schema.json"
)

# (repository option, Go module, package directories inside it)
PACKAGES: list[tuple[str, str, list[str]]] = [
    (
        "api",
        "k8s.io/api",
        [
            "core/v1",
            "apps/v1",
            "batch/v1",
            "policy/v1",
            "autoscaling/v1",
            "autoscaling/v2",
            "rbac/v1",
            "coordination/v1",
            "admissionregistration/v1",
            "networking/v1",
            "authentication/v1",
            "authorization/v1",
            "certificates/v1",
            "discovery/v1",
            "events/v1",
            "scheduling/v1",
            "storage/v1",
        ],
    ),
    (
        "apimachinery",
        "k8s.io/apimachinery",
        [
            "pkg/apis/meta/v1",
            "pkg/runtime",
            "pkg/runtime/schema",
            "pkg/util/intstr",
            "pkg/api/resource",
        ],
    ),
    ("apiextensions", "k8s.io/apiextensions-apiserver", ["pkg/apis/apiextensions/v1"]),
]

SHORT_PREFIXES = (
    "k8s.io.api.",
    "k8s.io.apimachinery.pkg.apis.",
    "k8s.io.apimachinery.pkg.",
    "k8s.io.apiextensions_apiserver.pkg.apis.",
)
SCALARS = frozenset(
    {
        *("double", "float", "bool", "string", "bytes"),
        *("int32", "int64", "uint32", "uint64", "sint32", "sint64"),
        *("fixed32", "fixed64", "sfixed32", "sfixed64"),
    }
)
# Messages whose JSON form the decoder computes by hand; their Go types have no JSON tags.
SPECIAL = frozenset(
    {
        "meta.v1.Time",
        "meta.v1.MicroTime",
        "meta.v1.Duration",
        "meta.v1.FieldsV1",
        "runtime.RawExtension",
        "runtime.Unknown",
        "runtime.TypeMeta",
        "util.intstr.IntOrString",
        "api.resource.Quantity",
        "api.resource.QuantityValue",
        "apiextensions.v1.JSON",
        "apiextensions.v1.JSONSchemaPropsOrArray",
        "apiextensions.v1.JSONSchemaPropsOrBool",
        "apiextensions.v1.JSONSchemaPropsOrStringArray",
    }
)
REPEATED, OMIT_EMPTY, INLINE = 1, 2, 4

MESSAGE_RE = re.compile(r"^message\s+(\w+)\s*\{")
FIELD_RE = re.compile(r"^\s*(optional|repeated|required)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;")
MAP_RE = re.compile(r"^\s*map<\s*([\w.]+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)\s*;")
PACKAGE_RE = re.compile(r"^package\s+([\w.]+)\s*;", re.MULTILINE)
STRUCT_RE = re.compile(r"^type\s+(\w+)\s+struct\s*\{")
GO_FIELD_RE = re.compile(r"^\s*(?:(\w+)\s+)?([^\s`]+)\s+`([^`]*)`")
TAG_RE = re.compile(r'(\w+):"([^"]*)"')
GROUP_RE = re.compile(r'GroupName\s*=\s*"([^"]*)"')


# ----------------------------------------------------------------------------- reading sources


class Source:
    """One repository: a checkout, or a bare git directory read at a ref."""

    def __init__(self, path: Path, ref: str) -> None:
        self.path = path
        self.ref = ref
        self.bare = (path / "objects").is_dir() and (path / "HEAD").is_file()

    def _git(self, *args: str) -> str:
        cmd = ["git", f"--git-dir={self.path}", *args]
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

    def files(self, directory: str) -> list[str]:
        """Names of the files directly in a package directory."""
        if self.bare:
            out = self._git("ls-tree", "--name-only", f"{self.ref}:{directory}")
            return out.split()
        return sorted(p.name for p in (self.path / directory).iterdir() if p.is_file())

    def read(self, path: str) -> str:
        if self.bare:
            return self._git("show", f"{self.ref}:{path}")
        return (self.path / path).read_text(encoding="utf-8")

    def describe(self) -> str:
        if self.bare:
            return self._git("rev-parse", self.ref).strip()
        return "working tree"


# ----------------------------------------------------------------------------- proto side


@dataclass
class ProtoField:
    number: int
    name: str
    type: str
    repeated: bool = False
    map_types: tuple[str, str] | None = None


@dataclass
class ProtoMessage:
    name: str
    wrapper: bool = False
    fields: list[ProtoField] = field(default_factory=list)


def short(full: str) -> str:
    """`k8s.io.api.core.v1.Pod` -> `core.v1.Pod`."""
    for prefix in SHORT_PREFIXES:
        if full.startswith(prefix):
            return full[len(prefix) :]
    raise SystemExit(f"no short name for {full}")


def resolve(type_name: str, package: str) -> str:
    """A field type as a scalar name or a short message name."""
    if type_name in SCALARS:
        return type_name
    if type_name.startswith("."):
        return short(type_name[1:])
    return short(f"{package}.{type_name}")


def parse_proto(text: str) -> tuple[str, list[ProtoMessage]]:
    """The package name and the messages of one generated.proto."""
    match = PACKAGE_RE.search(text)
    if not match:
        raise SystemExit("generated.proto without a package")
    package = match.group(1)
    messages: list[ProtoMessage] = []
    comments: list[str] = []
    current: ProtoMessage | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("//"):
            comments.append(stripped)
            continue
        if m := MESSAGE_RE.match(stripped):
            wrapper = any("+protobuf.nullable=true" in c for c in comments)
            current = ProtoMessage(short(f"{package}.{m.group(1)}"), wrapper)
            messages.append(current)
        elif current is not None and (f := parse_field(stripped, package)):
            current.fields.append(f)
        comments = []
    return package, messages


def parse_field(line: str, package: str) -> ProtoField | None:
    if m := FIELD_RE.match(line):
        label, type_name, name, number = m.groups()
        return ProtoField(int(number), name, resolve(type_name, package), label == "repeated")
    if m := MAP_RE.match(line):
        key, value, name, number = m.groups()
        types = (resolve(key, package), resolve(value, package))
        return ProtoField(int(number), name, "map", map_types=types)
    return None


# ----------------------------------------------------------------------------- Go side


@dataclass
class GoField:
    json_name: str
    omitempty: bool
    go_type: str


def parse_go_structs(text: str) -> dict[str, dict[int, GoField]]:
    """Struct name -> protobuf field number -> JSON facts, for every tagged struct field."""
    structs: dict[str, dict[int, GoField]] = {}
    current: dict[int, GoField] | None = None
    for line in text.splitlines():
        if m := STRUCT_RE.match(line):
            current = structs.setdefault(m.group(1), {})
        elif line.startswith("}"):
            current = None
        elif current is not None and not line.strip().startswith("//"):
            parsed = parse_go_field(line)
            if parsed:
                current[parsed[0]] = parsed[1]
    return structs


def parse_go_field(line: str) -> tuple[int, GoField] | None:
    m = GO_FIELD_RE.match(line)
    if not m:
        return None
    tags = dict(TAG_RE.findall(m.group(3)))
    proto = tags.get("protobuf", "-").split(",")
    if len(proto) < 2 or not proto[1].isdigit():
        return None
    json_parts = tags.get("json", "-").split(",")
    return int(proto[1]), GoField(json_parts[0], "omitempty" in json_parts[1:], m.group(2))


# ----------------------------------------------------------------------------- joining


@dataclass
class Package:
    short: str
    group: str
    version: str
    messages: list[ProtoMessage]
    structs: dict[str, dict[int, GoField]]


def load_package(source: Source, directory: str) -> Package:
    names = source.files(directory)
    package, messages = parse_proto(source.read(f"{directory}/generated.proto"))
    go_text = "\n".join(
        source.read(f"{directory}/{name}")
        for name in names
        if name.endswith(".go") and not name.endswith("_test.go") and "generated" not in name
    )
    group = GROUP_RE.search(go_text)
    return Package(
        short=short(package),
        group=group.group(1) if group else "",
        version=directory.rsplit("/", 1)[-1],
        messages=messages,
        structs=parse_go_structs(go_text),
    )


def field_entry(f: ProtoField, go: GoField | None, wrappers: set[str]) -> list[Any]:
    """The table row of one field (see the module docstring)."""
    json_name = f.name
    flags = REPEATED if f.repeated else 0
    if go is not None:
        if go.json_name and go.json_name != "-":
            json_name = go.json_name
        elif go.json_name == "" and f.type not in SCALARS:
            flags |= INLINE
        scalar_like = f.type in SCALARS or f.type in wrappers
        if go.omitempty and scalar_like and not f.repeated and not go.go_type.startswith("*"):
            flags |= OMIT_EMPTY
    if f.map_types is not None:
        return [json_name, "map", flags, *f.map_types]
    return [json_name, f.type, flags]


def build_messages(packages: list[Package], report: list[str]) -> tuple[dict[str, Any], list[str]]:
    wrappers = {m.name for p in packages for m in p.messages if m.wrapper}
    table: dict[str, Any] = {}
    for package in packages:
        for message in package.messages:
            go_struct = package.structs.get(message.name.rsplit(".", 1)[-1])
            rows: dict[str, Any] = {}
            for f in sorted(message.fields, key=lambda f: f.number):
                go = go_struct.get(f.number) if go_struct else None
                if go is None and message.name not in SPECIAL and not message.wrapper:
                    report.append(f"no Go field for {message.name}.{f.name} = {f.number}")
                rows[str(f.number)] = field_entry(f, go, wrappers)
                if rows[str(f.number)][0] != f.name:
                    report.append(f"renamed {message.name}.{f.name} -> {rows[str(f.number)][0]}")
            table[message.name] = rows
    return dict(sorted(table.items())), sorted(wrappers)


def check_references(messages: dict[str, Any]) -> None:
    for name, rows in messages.items():
        for row in rows.values():
            for type_name in row[1:2] + row[3:]:
                if type_name not in SCALARS and type_name != "map" and type_name not in messages:
                    raise SystemExit(f"{name}: unknown message type {type_name}")


def build(sources: dict[str, Source]) -> tuple[str, list[str]]:
    """The JSON text of the table, and notes on renamed or unmatched fields."""
    packages = [
        load_package(sources[repo], directory)
        for repo, _module, directories in PACKAGES
        for directory in directories
    ]
    report: list[str] = []
    messages, wrappers = build_messages(packages, report)
    check_references(messages)
    groups = {
        (f"{p.group}/{p.version}" if p.group else p.version): p.short
        for p in packages
        if p.short.split(".")[0] not in ("runtime", "util", "api")
    }
    origin = ", ".join(f"{module}@{sources[repo].describe()}" for repo, module, _dirs in PACKAGES)
    document = {
        "source": f"generated.proto and Go struct tags of {origin}",
        "groups": dict(sorted(groups.items())),
        "wrappers": wrappers,
        "messages": messages,
    }
    return json.dumps(document, separators=(",", ":")) + "\n", report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for repo, module, _dirs in PACKAGES:
        parser.add_argument(f"--{repo}", required=True, type=Path, help=f"{module} checkout")
    parser.add_argument("--ref", default="release-1.33", help="ref to read in bare git dirs")
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    parser.add_argument("--verbose", action="store_true", help="list renamed/unmatched fields")
    args = parser.parse_args()
    sources = {repo: Source(getattr(args, repo), args.ref) for repo, _m, _d in PACKAGES}
    text, report = build(sources)
    if args.verbose:
        print("\n".join(report), file=sys.stderr)
    from generated_file import write_or_check  # scripts/, this script's folder

    return write_or_check(OUTPUT, text, args.check)


if __name__ == "__main__":
    sys.exit(main())

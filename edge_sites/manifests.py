"""Load a set of manifests and check it as a whole, before anything is sent to the server.

Theory of operation:

* :func:`load_manifests` reads files and directories of YAML documents, checks each
  document's envelope (apiVersion, kind, metadata.name, spec) and its object with
  :func:`edge_sites.schema.validate_object`, then checks the set: duplicate objects,
  duplicate UPF N4 endpoints, overlapping pools, references, static IPs in pools.
* Every problem is collected; one :class:`ManifestError` lists them all as
  ``file:document N (kind name): field.path: message``, in file order. Nothing is
  returned unless the whole set is valid, so a caller never applies half of it.
* References resolve within the set, or in ``known`` (the names the server already
  has), so a set may add subscribers to sites provisioned earlier.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from .schema import API_VERSION, KINDS, SchemaError, describe, validate_object

__all__ = ["Manifest", "ManifestError", "load_manifests", "order"]

_ENVELOPE = ("apiVersion", "kind", "metadata", "spec", "status")


@dataclass(frozen=True, slots=True)
class Manifest:
    """One object of a manifest set: its normalized spec and where it was written (document from 1)."""

    kind: str
    name: str
    spec: dict[str, Any]
    source: Path
    document: int
    #: The spec as written: the normalized one sorts unordered lists, messages name the written position.
    written: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)

    @property
    def where(self) -> str:
        return f"{self.source}:document {self.document} ({self.kind} {self.name})"


class ManifestError(ValueError):
    """Every problem found in a manifest set, one readable line each."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (PyYAML keeps the last silently)."""


def _no_duplicate_keys(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found the key {key!r} twice (first on line {seen[key].start_mark.line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)


class _Report:
    # Errors sorted by where they are: (file number, document number, order found).
    def __init__(self) -> None:
        self.items: list[tuple[int, int, int, str]] = []

    def add(self, file_no: int, document: int, text: str) -> None:
        self.items.append((file_no, document, len(self.items), text))

    def sayer(self, file_no: int, document: int, label: str) -> Callable[[str, str], None]:
        """A function adding ``label: field: message`` for one document."""

        def say(field: str, message: str) -> None:
            self.add(file_no, document, f"{label}: {field}: {message}" if field else f"{label}: {message}")

        return say

    def lines(self) -> list[str]:
        return [text for *_order, text in sorted(self.items)]


def _files(paths: Sequence[Path], report: _Report) -> list[Path]:
    files: dict[Path, Path] = {}  # by resolved path: a file named twice (or with its directory) is read once
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                report.add(-1, 0, f"{path}: no *.yaml or *.yml file in this directory")
        elif path.is_file():
            found = [path]
        else:
            report.add(-1, 0, f"{path}: no such file or directory")
            found = []
        for file in found:
            files.setdefault(file.resolve(), file)
    return list(files.values())


def _documents(path: Path, file_no: int, report: _Report) -> Iterator[tuple[int, object]]:
    """(document number, data) of each non-empty document; a syntax error ends the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        report.add(file_no, 0, f"{path}: cannot read: {exc}")
        return
    number = 0
    try:
        for number, data in enumerate(yaml.load_all(text, Loader=_Loader), start=1):  # _Loader is a SafeLoader
            if data is not None:
                yield number, data
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else f"{path}"
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        report.add(file_no, number + 1, f"{where}: YAML syntax error: {problem}{f' ({context})' if context else ''}")


def _label(path: Path, number: int, data: object) -> str:
    # "file:document N (kind name)", with as much of "(kind name)" as the document says.
    label = f"{path}:document {number}"
    if isinstance(data, Mapping) and isinstance(data.get("kind"), str):
        meta = data.get("metadata")
        name = meta.get("name") if isinstance(meta, Mapping) else None
        label += f" ({data['kind']} {name})" if isinstance(name, str) else f" ({data['kind']})"
    return label


def _envelope(data: object, say: Callable[[str, str], None]) -> tuple[str, str, object] | None:
    """(kind, name, spec) of a document whose envelope is right; None after saying what is wrong."""
    if not isinstance(data, Mapping):
        say("", f"expected a mapping with apiVersion, kind, metadata and spec, got {describe(data)}")
        return None
    ok = True
    for key in data:
        if key not in _ENVELOPE:
            say(str(key), "unknown field; expected apiVersion, kind, metadata, spec")
            ok = False
    version = data.get("apiVersion")
    if version != API_VERSION:
        say("apiVersion", f"expected {API_VERSION}, got {describe(version) if version is not None else 'nothing'}")
        ok = False
    kind = data.get("kind")
    if not isinstance(kind, str):
        say(
            "kind",
            f"required: one of {', '.join(KINDS)}" if kind is None else f"expected a string, got {describe(kind)}",
        )
        ok = False
    metadata = data.get("metadata")
    name: object = None
    if not isinstance(metadata, Mapping):
        say(
            "metadata",
            "required: a mapping with name" if metadata is None else f"expected a mapping, got {describe(metadata)}",
        )
        ok = False
    else:
        for key in metadata:
            if key != "name":
                say(f"metadata.{key}", "unknown field; expected name")
                ok = False
        name = metadata.get("name")
        if not isinstance(name, str):
            say("metadata.name", "required" if name is None else f"expected a string, got {describe(name)}")
            ok = False
    if "spec" not in data:
        say("spec", "required")
        ok = False
    if not ok or not isinstance(kind, str) or not isinstance(name, str):
        return None
    return kind, name, data["spec"] if data["spec"] is not None else {}


def load_manifests(paths: Sequence[Path], *, known: Mapping[str, Collection[str]] | None = None) -> list[Manifest]:
    """The valid objects of the files and directories ``paths``, in file order; ManifestError lists every problem.

    ``known`` maps a kind to the names the server already has; references may resolve there.
    """
    report = _Report()
    manifests: list[Manifest] = []
    file_nos: dict[Path, int] = {}
    for file_no, path in enumerate(_files(paths, report)):
        file_nos[path] = file_no
        for number, data in _documents(path, file_no, report):
            say = report.sayer(file_no, number, _label(path, number, data))
            envelope = _envelope(data, say)
            if envelope is None:
                continue
            kind, name, spec = envelope
            try:
                # validate_object reports a spec that is not a mapping, so it may take any value.
                normalized = validate_object(kind, name, cast("Mapping[str, Any]", spec))
            except SchemaError as exc:
                for field, message in exc.errors:
                    say("metadata.name" if field == "name" else field, message)
                continue
            manifests.append(Manifest(kind, name, normalized, path, number, cast("Mapping[str, Any]", spec)))
    _check_set(
        manifests,
        known or {},
        lambda m, field, message: report.add(file_nos[m.source], m.document, f"{m.where}: {field}: {message}"),
    )
    if report.items:
        raise ManifestError(report.lines())
    return manifests


_Say = Callable[[Manifest, str, str], None]

# (kind, field, referenced kind): the references a set must resolve.
_REFERENCES: tuple[tuple[str, str, str], ...] = (
    ("UPF", "site", "Site"),
    ("UPF", "network_instances", "DNN"),
    ("Pool", "dnn", "DNN"),
    ("Pool", "site", "Site"),
    ("Policy", "dnn", "DNN"),
    ("Subscriber", "allowed_dnns", "DNN"),
    ("Subscriber", "policy", "Policy"),
)


def _check_set(manifests: list[Manifest], known: Mapping[str, Collection[str]], say: _Say) -> None:
    first: dict[tuple[str, str], Manifest] = {}
    for m in manifests:
        if m.key in first:
            say(m, "metadata.name", f"{m.kind} {m.name!r} is already defined at {first[m.key].where}")
        else:
            first[m.key] = m
    unique = list(first.values())
    _check_references(unique, known, say)
    _check_same(
        unique, "UPF", lambda s: (s["n4_address"], s["n4_port"]), "spec.n4_address", "the same N4 address and port", say
    )
    # The database keys a policy by (dnn, snssai): two would make the choice between them arbitrary.
    _check_same(unique, "Policy", lambda s: (s["dnn"], s["snssai"]), "spec.snssai", "the same dnn and snssai", say)
    pools = [m for m in unique if m.kind == "Pool"]
    _check_pools(pools, say)
    _check_static_addresses([m for m in unique if m.kind == "Subscriber"], pools, say)


def _check_references(manifests: list[Manifest], known: Mapping[str, Collection[str]], say: _Say) -> None:
    names: dict[str, set[str]] = {kind: set(known.get(kind, ())) for kind in KINDS}
    for m in manifests:
        names[m.kind].add(m.name)
    where = "in these manifests nor on the server" if known else "in these manifests"
    for m in manifests:
        for kind, field, target in _REFERENCES:
            value = m.spec[field] if m.kind == kind else None
            if value is None:
                continue
            written = m.written.get(field)
            for ref in value if isinstance(value, list) else [value]:
                if ref not in names[target]:
                    at = f"[{written.index(ref)}]" if isinstance(written, list) and ref in written else ""
                    path = f"spec.{field}{at}"
                    close = difflib.get_close_matches(ref, sorted(names[target]), n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    say(m, path, f"unknown {target} {ref!r}: not defined {where}{hint}")


def _check_same(
    manifests: list[Manifest], kind: str, key: Callable[[dict[str, Any]], object], field: str, what: str, say: _Say
) -> None:
    seen: dict[object, Manifest] = {}
    for m in manifests:
        if m.kind != kind:
            continue
        value = key(m.spec)
        if value in seen:
            say(m, field, f"{kind} {m.name!r} has {what} as {kind} {seen[value].name!r} ({seen[value].where})")
        else:
            seen[value] = m


def _check_pools(pools: list[Manifest], say: _Say) -> None:
    for index, m in enumerate(pools):
        net = ipaddress.ip_network(m.spec["cidr"])
        for other in pools[:index]:
            other_net = ipaddress.ip_network(other.spec["cidr"])
            if other.spec["dnn"] == m.spec["dnn"] and net.version == other_net.version and net.overlaps(other_net):
                say(
                    m,
                    "spec.cidr",
                    f"{net} overlaps {other_net} of Pool {other.name!r} of DNN {m.spec['dnn']!r} ({other.where})",
                )


def _check_static_addresses(subscribers: list[Manifest], pools: list[Manifest], say: _Say) -> None:
    # A session with a static address takes it from a pool of its DNN that holds it (see the
    # control plane's allocation): outside every pool of its DNNs, the address could never be used.
    holder: dict[tuple[str, str], Manifest] = {}
    for m in subscribers:
        for field in ("static_ipv4", "static_ipv6"):
            static = m.spec[field]
            if static is None:
                continue
            address = ipaddress.ip_network(static)  # an IPv4 address reads as a /32
            theirs = [
                p
                for p in pools
                if p.spec["dnn"] in m.spec["allowed_dnns"]
                and ipaddress.ip_network(p.spec["cidr"]).version == address.version
            ]
            if theirs and not any(_holds(p, address) for p in theirs):
                shown = ", ".join(f"{p.name} {p.spec['cidr']}" for p in theirs)
                say(m, f"spec.{field}", f"{static} is in no pool of the subscriber's DNNs ({shown})")
            for dnn in m.spec["allowed_dnns"]:
                other = holder.setdefault((dnn, str(address)), m)
                if other is not m:
                    say(m, f"spec.{field}", f"{static} is also the static address of {other.name} ({other.where})")
                    break


def _holds(pool: Manifest, address: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    net = ipaddress.ip_network(pool.spec["cidr"])
    if net.version != address.version or not address.subnet_of(net):  # type: ignore[arg-type]
        return False
    # An IPv6 static prefix is one of the pool's per-UE prefixes.
    return net.version == 4 or address.prefixlen == pool.spec["prefix_length"]


def order(manifests: Sequence[Manifest], *, delete: bool = False) -> list[Manifest]:
    """Apply order (a kind after the kinds it refers to, file order within a kind), or its reverse to delete."""
    ranked = sorted(manifests, key=lambda m: KINDS.index(m.kind))
    return ranked[::-1] if delete else ranked

"""The one validator of provisioned objects (Site, UPF, DNN, Pool, Policy, Subscriber).

Manifests (:mod:`edge_sites.manifests`) and the API server both call
:func:`validate_object`, so a spec means the same thing however it arrives.

Theory of operation:

* Each kind is a table of :class:`Field` s (name, check, required or default); one
  generic walker applies it, so every field of every kind is checked the same way.
* The walker never stops at the first problem: it collects every ``(field path,
  message)`` and raises one :class:`SchemaError` holding them all.
* What comes back is normalized: defaults filled, optional fields present as ``None``
  when absent, addresses and prefixes in canonical text, and lists whose order does
  not matter sorted without duplicates. Normalizing twice gives the same result, so
  normalized specs compare equal exactly when they mean the same thing.
* Only the form of one object is checked here. Whether a referenced site exists, or
  two pools overlap, needs the other objects: that is the caller's business.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Final

from ._checks import (
    _EDGE_RULE,
    _INT32,
    _INVALID,
    Check,
    Field,
    SchemaError,
    _address,
    _boolean,
    _child,
    _choice,
    _const,
    _dnn,
    _empty,
    _Errors,
    _integer,
    _list,
    _mapping,
    _name,
    _network,
    _network_instance,
    _node_id,
    _snssai,
    _snssai_or_any,
    _supi,
    _tai,
    canonical_snssai,
    describe,
    did_you_mean,
)

__all__ = [
    "API_VERSION",
    "FIELDS",
    "KINDS",
    "Field",
    "SchemaError",
    "canonical_snssai",
    "describe",
    "did_you_mean",
    "to_document",
    "validate_name",
    "validate_object",
]

#: The kinds, in the order they are applied (a kind refers only to kinds before it).
KINDS: Final[tuple[str, ...]] = ("Site", "UPF", "DNN", "Pool", "Policy", "Subscriber")
API_VERSION: Final = "edgecups/v1"


def _edge_rules(err: _Errors, value: object, path: str) -> Any:
    if not isinstance(value, list | tuple):
        return err(path, f"expected a list of edge rules, got {describe(value)}")
    rules: list[dict[str, Any]] = []
    for index, raw in enumerate(value):
        rule = _mapping(err, raw, f"{path}[{index}]", _EDGE_RULE, "")
        if rule is not None:
            rules.append(rule)
    if len(rules) < len(value):
        return _INVALID
    ok = True
    # Two rules of one precedence would match in an undefined order (TS 29.244 §5.2.1).
    for attr in ("name", "precedence"):
        seen: dict[object, int] = {}
        for index, rule in enumerate(rules):
            if rule[attr] in seen:
                err(f"{path}[{index}].{attr}", f"{rule[attr]!r} repeats {path}[{seen[rule[attr]]}].{attr}")
                ok = False
            seen.setdefault(rule[attr], index)
    return rules if ok else _INVALID


#: Every kind's spec fields, in the order documents list them.
FIELDS: Final[Mapping[str, tuple[Field, ...]]] = {
    "Site": (
        Field("kind", _choice("edge", "cloud"), required=True),
        Field("region", _name, required=True),
        Field("tais", _list(_tai), default=_empty),
    ),
    "UPF": (
        Field("site", _name, required=True),
        Field("n4_address", _address(), required=True),
        Field("n4_port", _integer(1, 65535), default=_const(8805)),
        # Ordered: the control plane uses the first address of a family for F-TEIDs.
        Field("n3_addresses", _list(_address(), ordered=True, min_items=1), required=True),
        Field("network_instances", _list(_dnn), default=_empty),
        Field("snssais", _list(_snssai), default=_empty),
        Field("capacity", _integer(1, _INT32), required=True),
        Field("admin_state", _choice("enabled", "drained"), default=_const("enabled")),
        Field("teid_allocation", _choice("cp", "up"), default=_const("cp")),
        Field("access_network_instance", _network_instance),
    ),
    "DNN": (
        Field("network_instance", _network_instance, default=lambda name: name),
        Field("snssais", _list(_snssai), default=_empty),
    ),
    "Pool": (
        Field("dnn", _dnn, required=True),
        Field("site", _name),
        Field("cidr", _network(), required=True),
        Field("prefix_length", _integer(1, 128)),  # filled from the CIDR's family below
    ),
    "Policy": (
        Field("dnn", _dnn, required=True),
        Field("snssai", _snssai_or_any, default=_const("*")),
        Field("qfi", _integer(1, 63), required=True),  # TS 38.415 §5.5.3.3: 6 bits, 0 unused
        Field("five_qi", _integer(1, 255), required=True),  # TS 23.501 §5.7.2.1
        Field("arp_priority", _integer(1, 15), default=_const(8)),  # TS 23.501 §5.7.2.2
        Field("session_ambr_ul_kbps", _integer(1, _INT32), required=True),
        Field("session_ambr_dl_kbps", _integer(1, _INT32), required=True),
        Field("volume_threshold_bytes", _integer(1, 2**63 - 1)),
        Field("time_threshold_s", _integer(1, _INT32)),
        Field("qfi_in_pdi", _boolean, default=_const(True)),
        Field("failover", _boolean, default=_const(False)),
        Field("edge_rules", _edge_rules, default=_empty),
    ),
    "Subscriber": (
        Field("allowed_dnns", _list(_dnn, min_items=1), required=True),
        Field("static_ipv4", _address(4)),
        Field("static_ipv6", _network(6)),
        Field("policy", _name),
    ),
}

_KEYS: Final[Mapping[str, Check]] = {
    "Site": _name,
    "UPF": _node_id,
    "DNN": _dnn,
    "Pool": _name,
    "Policy": _name,
    "Subscriber": _supi,
}


def _pool_prefix(err: _Errors, spec: dict[str, Any], path: str) -> None:
    net = ipaddress.ip_network(spec["cidr"])
    where = _child(path, "prefix_length")
    length = spec["prefix_length"]
    if net.version == 4:
        if length not in (None, 32):
            err(where, f"{length}: an IPv4 pool gives each UE one address, so it is always 32")
        spec["prefix_length"] = 32
    elif length is None and net.prefixlen > 64:
        err(where, f"the default 64 is shorter than the pool's own /{net.prefixlen}: set it ({net.prefixlen}..128)")
    elif length is None:
        spec["prefix_length"] = 64
    elif length < net.prefixlen:
        err(where, f"{length} is shorter than the pool's own /{net.prefixlen}: expected {net.prefixlen}..128")


def _check_kind(kind: str) -> None:
    if kind not in FIELDS:
        raise SchemaError(
            [("kind", f"unknown kind {kind!r}{did_you_mean(str(kind), KINDS)}; expected one of {', '.join(KINDS)}")]
        )


def validate_name(kind: str, name: object, *, path: str = "name") -> str:
    """Check an object's key: a Node ID for a UPF, a SUPI for a Subscriber, a DNN name, or a name."""
    _check_kind(kind)
    err = _Errors()
    _KEYS[kind](err, name, path)
    if err.items:
        raise SchemaError(err.items)
    assert isinstance(name, str)
    return name


def validate_object(kind: str, name: str, spec: Mapping[str, Any], *, path: str = "") -> dict[str, Any]:
    """The normalized spec of ``kind`` ``name``; SchemaError lists every problem (paths under ``path``)."""
    _check_kind(kind)
    err = _Errors()
    _KEYS[kind](err, name, _child(path, "name"))
    spec_path = _child(path, "spec")
    out = _mapping(err, spec, spec_path, FIELDS[kind], name if isinstance(name, str) else "")
    if out is not None and kind == "Pool":
        _pool_prefix(err, out, spec_path)
    if err.items:
        raise SchemaError(err.items)
    assert out is not None
    return out


def to_document(kind: str, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest document of an object: spec fields in table order, unset (None) ones left out.

    Keys that are not spec fields (observed state such as a UPF's health) are dropped, so
    ``edgecups get -o yaml`` output can be applied again as it is.
    """
    _check_kind(kind)
    out: dict[str, Any] = {}
    for f in FIELDS[kind]:
        value = spec.get(f.name)
        if value is None:
            continue
        if f.name == "edge_rules":
            value = [{k: v for k, v in rule.items() if v is not None} for rule in value]
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": out}

"""Provisioning objects (kind, name, spec dict) <-> edgecups.v1 Resource messages, and page tokens.

A spec message's fields carry the contract's names (edge_sites.schema.FIELDS), so one
walk over that table converts every kind: proto3 ``optional`` fields count only when
present, repeated ones only when not empty, and a required string only when not ""
(the validator then says "required" rather than "'' is not a name").
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message

from control_plane.api.generated.edgecups.v1 import provisioning_pb2 as pb
from control_plane.errors import InvalidArgument
from control_plane.provisioning import Change, ObjectView, Resource
from control_plane.provisioning.objects import canonical_kind
from edge_sites.schema import FIELDS

__all__ = [
    "change_to_proto",
    "decode_page_token",
    "encode_page_token",
    "resource_from_proto",
    "resource_to_proto",
    "spec_from_proto",
]

#: Kind -> the name of its field in Resource's `spec` oneof.
SPEC_FIELDS: Mapping[str, str] = {
    "Site": "site",
    "UPF": "upf",
    "DNN": "dnn",
    "Pool": "pool",
    "Policy": "policy",
    "Subscriber": "subscriber",
}
_KIND_OF = {field: kind for kind, field in SPEC_FIELDS.items()}
_UINT64_MAX = 2**64 - 1
_EDGE_RULE_FIELDS = ("name", "precedence", "flow_descriptions", "network_instance")


def _edge_rule(rule: pb.EdgeRule) -> dict[str, Any]:
    out: dict[str, Any] = {"precedence": rule.precedence}
    if rule.name:
        out["name"] = rule.name
    if rule.flow_descriptions:
        out["flow_descriptions"] = list(rule.flow_descriptions)
    if rule.network_instance:
        out["network_instance"] = rule.network_instance
    return out


def spec_from_proto(kind: str, message: Message) -> dict[str, Any]:
    """The spec fields a spec message sets (observed fields are not spec fields: left out)."""
    out: dict[str, Any] = {}
    fields = message.DESCRIPTOR.fields_by_name
    for f in FIELDS[kind]:
        descriptor = fields[f.name]
        value = getattr(message, f.name)
        if f.name == "edge_rules":
            if value:
                out[f.name] = [_edge_rule(rule) for rule in value]
        elif descriptor.is_repeated:
            if value:
                out[f.name] = list(value)
        elif descriptor.has_presence:
            if message.HasField(f.name):
                out[f.name] = value
        elif value != "":
            out[f.name] = value
    return out


def resource_from_proto(resource: pb.Resource, path: str) -> Resource:
    """An object to apply; the kind from ``kind`` or, when empty, from the spec set."""
    which = resource.WhichOneof("spec")
    if resource.kind:
        kind = canonical_kind(resource.kind, f"{path}.kind")
        if which is not None and _KIND_OF[which] != kind:
            raise InvalidArgument(f"kind {kind} with a {_KIND_OF[which]} spec", field=f"{path}.{which}")
    elif which is not None:
        kind = _KIND_OF[which]
    else:
        raise InvalidArgument("a resource needs a kind and a spec", field=f"{path}.kind")
    spec = spec_from_proto(kind, getattr(resource, SPEC_FIELDS[kind])) if which is not None else {}
    return Resource(kind, resource.name, spec)


def resource_to_proto(view: ObjectView) -> pb.Resource:
    message = getattr(pb, {"UPF": "Upf", "DNN": "Dnn"}.get(view.kind, view.kind))()
    for name, value in view.spec.items():
        if value is None:
            continue
        if name == "edge_rules":
            for rule in value:
                message.edge_rules.add(**{k: rule[k] for k in _EDGE_RULE_FIELDS if rule.get(k) is not None})
        elif isinstance(value, list):
            getattr(message, name).extend(value)
        else:
            setattr(message, name, value)
    for name, value in view.observed.items():
        if value is None:
            continue
        if isinstance(value, list):
            getattr(message, name).extend(value)
        else:
            # Pool sizes beyond 2^64 - 1 (an IPv6 /32 of /128s) saturate.
            setattr(message, name, min(value, _UINT64_MAX) if isinstance(value, int) else value)
    resource = pb.Resource(kind=view.kind, name=view.name)
    getattr(resource, SPEC_FIELDS[view.kind]).CopyFrom(message)
    return resource


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def change_to_proto(change: Change) -> pb.Change:
    return pb.Change(
        kind=change.kind,
        name=change.name,
        action=change.action,
        fields=[pb.FieldChange(path=fc.path, old=_json(fc.old), new=_json(fc.new)) for fc in change.fields],
    )


def encode_page_token(kind: str, after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([kind, after]).encode()).decode()


def decode_page_token(token: str, kind: str) -> str | None:
    """The name a page starts after; None for the first page. InvalidArgument for a token not ours."""
    if not token:
        return None
    try:
        token_kind, after = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, TypeError):
        raise InvalidArgument("not a page token this server gave", field="page_token") from None
    if token_kind != kind or not isinstance(after, str):
        raise InvalidArgument(f"a page token of another listing, not of {kind}", field="page_token")
    return after

"""Telemetry payloads: JSON objects with a schema version, documented by one table.

Every payload is a JSON object whose ``schema`` field is :data:`SCHEMA_VERSION`. :data:`SCHEMAS`
lists, per message kind (``status``, ``metrics``, ``usage``, ``event``), every field, its JSON
type and whether it may be null; :func:`validate` checks a decoded payload against it and
returns every problem as ``path: message``. A field is never removed or retyped within a
version; a consumer that meets a higher version than it knows should not guess.

Times are UNIX seconds (floats); ``recovery_time_stamp`` is the PFCP Recovery Time Stamp of
the agent's run, in UNIX seconds (TS 29.244 §8.2.65), so a status can be told apart from one
of an earlier run of the same UPF. The metrics' counters are cumulative since the agent
started (a restart shows as a new ``recovery_time_stamp``): a consumer takes differences.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "SCHEMAS",
    "SCHEMA_VERSION",
    "Field",
    "PayloadError",
    "decode",
    "encode",
    "validate",
]

SCHEMA_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class Field:
    """One field: its JSON type (``int``, ``number``, ``string``, ``bool``, ``object``, ``list``),
    whether null is allowed, the values a string may take, and the fields of an object
    (``fields``) or of every value of a name -> object mapping (``each``)."""

    type: str
    nullable: bool = False
    choices: tuple[str, ...] = ()
    fields: Mapping[str, Field] | None = None
    each: Mapping[str, Field] | None = None
    items: str | None = None  # the JSON type of a list's items


_INT = Field("int")
_NUMBER = Field("number")
_STRING = Field("string")
_COUNTERS: Final = {"packets": _INT, "bytes": Field("int", nullable=True), "drops": Field("int", nullable=True)}
_PER_DIRECTION: Final = {"uplink": Field("object", fields=_COUNTERS), "downlink": Field("object", fields=_COUNTERS)}
_UPF: Final = {"schema": _INT, "node_id": _STRING, "site": _STRING, "time": _NUMBER}

#: Every payload kind, every field. ``metrics``: ``bytes`` and ``drops`` are null where the
#: dataplane does not count them (a driver without octet counters); ``uplink``/``downlink``
#: drops hold every drop of that direction, a rule's (FAR DROP, gate, MBR, quota) too;
#: ``network_instances`` counts both paths of the software dataplane (the eBPF fast path's
#: sessions by the instance they forward to), downlink there is what was read from the
#: instance's N6 and sent at once (released buffers: totals only), and drops are those after
#: the session's instance is known (a PDR matched). The ``drops`` object has every drop counter
#: by the dataplane's own reason name, a rule drop by direction (``forward.ul_drop_gate``,
#: ``ebpf.dl_drop_mbr``).
SCHEMAS: Final[Mapping[str, Mapping[str, Field]]] = {
    "status": {
        **_UPF,
        "state": Field("string", choices=("online", "offline")),
        # started | stopped (a clean stop) | connection-lost (the Last Will, sent by the broker)
        "reason": Field("string", choices=("started", "stopped", "connection-lost")),
        "recovery_time_stamp": _INT,
        "features": Field("list", items="string"),
    },
    "metrics": {
        **_UPF,
        "recovery_time_stamp": _INT,
        "interval": _NUMBER,
        "sessions": _INT,
        **_PER_DIRECTION,
        "network_instances": Field("object", each=_PER_DIRECTION),
        "drops": Field("object", each=None, items="int"),
    },
    "usage": {
        **_UPF,
        # The PFCP message the report travelled in: Session Report Request, Modification or
        # Deletion Response (TS 29.244 §7.5.8, §7.5.5, §7.5.7).
        "message": Field("string", choices=("session-report", "modification", "deletion")),
        "cp_seid": _INT,
        "up_seid": _INT,
        "urr_id": _INT,
        "ur_seqn": _INT,
        "trigger": Field("list", items="string"),
        "start_time": _NUMBER,
        "end_time": _NUMBER,
        "ul_bytes": _INT,
        "dl_bytes": _INT,
        "ul_packets": _INT,
        "dl_packets": _INT,
        "duration": Field("int", nullable=True),
    },
    "event": {
        "schema": _INT,
        "id": _INT,
        "at": _STRING,  # ISO 8601, as the events table has it
        "kind": _STRING,
        "supi": Field("string", nullable=True),
        "upf": Field("string", nullable=True),
        "session_id": Field("int", nullable=True),
        "detail": Field("object"),
    },
}


class PayloadError(ValueError):
    """A payload that is not JSON, or does not match its schema; ``errors`` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def encode(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def decode(kind: str, data: bytes | bytearray | str) -> dict[str, Any]:
    """The payload ``data`` holds, checked against the ``kind`` schema; raises :class:`PayloadError`."""
    try:
        payload = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError([f"not JSON: {exc}"]) from None
    errors = validate(kind, payload)
    if errors:
        raise PayloadError(errors)
    assert isinstance(payload, dict)
    return payload


def validate(kind: str, payload: object) -> list[str]:
    """Every way ``payload`` differs from the ``kind`` schema (empty: it matches)."""
    schema = SCHEMAS.get(kind)
    if schema is None:
        return [f"unknown payload kind {kind!r} (kinds: {', '.join(SCHEMAS)})"]
    errors: list[str] = []
    _object(payload, schema, "", errors)
    if isinstance(payload, dict) and payload.get("schema") not in (None, SCHEMA_VERSION):
        errors.append(f"schema: version {payload['schema']!r}, expected {SCHEMA_VERSION}")
    return errors


def _object(value: object, fields: Mapping[str, Field], path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{path or '(payload)'}: expected an object, got {_json_type(value)}")
        return
    for name, spec in fields.items():
        where = f"{path}.{name}" if path else name
        if name not in value:
            errors.append(f"{where}: missing")
        else:
            _value(value[name], spec, where, errors)
    for name in value:
        if name not in fields:
            errors.append(f"{path}.{name}: not in the schema" if path else f"{name}: not in the schema")


def _value(value: object, spec: Field, path: str, errors: list[str]) -> None:
    if value is None:
        if not spec.nullable:
            errors.append(f"{path}: null is not allowed")
        return
    if not _is(value, spec.type):
        errors.append(f"{path}: expected {spec.type}, got {_json_type(value)}")
        return
    if spec.choices and value not in spec.choices:
        errors.append(f"{path}: {value!r} is not one of {', '.join(spec.choices)}")
    if spec.fields is not None:
        _object(value, spec.fields, path, errors)
    if isinstance(value, dict) and (spec.each is not None or spec.items is not None):
        for key, item in value.items():
            if spec.each is not None:
                _object(item, spec.each, f"{path}.{key}", errors)
            elif spec.items is not None and not _is(item, spec.items):
                errors.append(f"{path}.{key}: expected {spec.items}, got {_json_type(item)}")
    if isinstance(value, list) and spec.items is not None:
        for index, item in enumerate(value):
            if not _is(item, spec.items):
                errors.append(f"{path}[{index}]: expected {spec.items}, got {_json_type(item)}")


def _is(value: object, json_type: str) -> bool:
    """Whether ``value`` is of the schema's ``json_type``; an int is a number too, a bool is neither."""
    if json_type not in _SCHEMA_TYPES:
        raise AssertionError(f"unknown JSON type {json_type!r} in a schema")
    actual = _json_type(value)
    return actual == json_type or (json_type == "number" and actual == "int")


_SCHEMA_TYPES: Final = frozenset({"int", "number", "string", "bool", "object", "list"})


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__

"""The VPP API schema as the emulator serves it: vpp_papi's own codec over the shared ``.api.json`` files.

Message ids follow VPP (``src/vlibapi``): memclnt's messages have the fixed ids 1..28 in file order
(vpp_papi hard-codes only 15/16, sockclnt_create and its reply); every other module gets a dense block
after that, in file-name order, one id per message in JSON order. The message table sent in
``sockclnt_create_reply`` is the only contract, so the order does not matter to a client.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpp_papi.vpp_papi import VPPApiJSONFiles  # type: ignore[import-untyped]
from vpp_papi.vpp_serializer import (  # type: ignore[import-untyped]
    FixedList,
    VLAList,
    VPPType,
    VPPTypeAlias,
)

from tests.vpp_emulator.codec import decode

#: Environment variable naming the schema directory (a VPP release's ``*.api.json`` files).
API_DIR_ENV = "EDGECUPS_VPP_API_DIR"
#: The repository root (this file is tests/vpp_emulator/schema.py).
REPO_ROOT = Path(__file__).resolve().parents[2]
#: The shared VPP 26.06 schema next to the repository (never copied into it).
DEFAULT_API_DIR = REPO_ROOT.parent / "shared" / "vpp-api" / "v26.06"

MEMCLNT = "memclnt"


def api_dir_for_tests() -> Path | None:
    """The schema directory tests use: ``$EDGECUPS_VPP_API_DIR``, else ``../shared/vpp-api/v26.06``.

    None when the chosen directory does not exist or holds no ``*.api.json`` (tests skip then).
    """
    configured = os.environ.get(API_DIR_ENV)
    path = Path(configured) if configured else DEFAULT_API_DIR
    if not path.is_dir() or not any(path.glob("*.api.json")):
        return None
    return path


def api_dir_skip_reason() -> str:
    """Why :func:`api_dir_for_tests` found nothing, for ``pytest.skip``."""
    configured = os.environ.get(API_DIR_ENV)
    where = configured if configured else f"{DEFAULT_API_DIR.resolve()} (set {API_DIR_ENV} to override)"
    return f"no VPP API schema (*.api.json) found at {where}"


@dataclass(frozen=True)
class ApiSchema:
    """Codec and message ids for one schema directory."""

    api_dir: Path
    #: message name -> vpp_papi VPPMessage (pack/unpack, crc, fields)
    messages: Mapping[str, Any]
    #: request name -> {"reply": ..., "stream"?: True, "stream_msg"?: ..., "events"?: [...]}
    services: Mapping[str, Mapping[str, Any]]
    #: message name -> id
    ids: Mapping[str, int]
    #: id -> message name (index 0 is unused, as in VPP)
    names: tuple[str, ...]
    #: the get_api_json answer: a JSON array of the module objects (one per file)
    api_json: str

    @classmethod
    def load(cls, api_dir: Path) -> ApiSchema:
        """Parse every ``*.api.json`` of ``api_dir`` (cached per directory: parsing takes ~1 s)."""
        key = api_dir.resolve()
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
            if cached is None:
                cached = _CACHE[key] = cls._parse(key)
            return cached

    @classmethod
    def _parse(cls, api_dir: Path) -> ApiSchema:
        files = sorted(api_dir.glob("*.api.json"))
        if not files:
            raise FileNotFoundError(f"no *.api.json in {api_dir}")
        # Parsed apart from vpp_papi's copy (process_json_file rewrites type names in place).
        objects = {path: json.loads(path.read_text()) for path in files}
        modules = {path: obj.get("module", path.name) for path, obj in objects.items()}
        if MEMCLNT not in modules.values():
            raise ValueError(f"{api_dir} lacks memclnt.api.json (sockclnt_create, control_ping)")
        ordered = sorted(files, key=lambda p: (modules[p] != MEMCLNT, p.name))
        messages: dict[str, Any] = {}
        services: dict[str, Mapping[str, Any]] = {}
        names: list[str] = [""]
        for path in ordered:
            with path.open() as fp:
                file_messages, file_services = VPPApiJSONFiles.process_json_file(fp)
            for name, msg in file_messages.items():
                if name not in messages:
                    names.append(name)
                messages[name] = msg
            services.update(file_services)
        ids = {name: index for index, name in enumerate(names) if index}
        # ASCII-only (json.dumps escapes): vpp_papi packs strings with str.encode("ascii").
        api_json = json.dumps([objects[path] for path in ordered])
        return cls(api_dir, messages, services, ids, tuple(names), api_json)

    def name_crc(self, name: str) -> str:
        """``name_crc8hex`` as in VPP's message table, e.g. ``control_ping_51077d14``."""
        return f"{name}_{self.messages[name].crc[2:]}"

    def reply_of(self, request: str) -> str | None:
        service = self.services.get(request)
        return None if service is None else str(service["reply"])

    def is_legacy_dump(self, request: str) -> bool:
        """A dump the client ends with control_ping (details, then the ping's reply)."""
        service = self.services.get(request, {})
        return bool(service.get("stream")) and "stream_msg" not in service

    def has_field(self, name: str, field: str) -> bool:
        return field in self.messages[name].field_by_name

    def pack(self, name: str, fields: Mapping[str, Any]) -> bytes:
        """Pack ``fields`` as message ``name`` with its id; missing fields are zero (fixed arrays too)."""
        msg = self.messages[name]
        data = complete(msg, dict(fields))
        data["_vl_msg_id"] = self.ids[name]
        return bytes(msg.pack(data))

    def unpack(self, payload: bytes) -> tuple[str, dict[str, Any]]:
        """(message name, fields as plain dicts/lists, see codec.py); KeyError for an unknown id,
        ValueError for a short message, UndecodableMessage for fields that do not decode."""
        if len(payload) < 2:
            raise ValueError("payload shorter than a message id")
        msg_id = int.from_bytes(payload[:2], "big")
        if msg_id == 0 or msg_id >= len(self.names):
            raise KeyError(f"unknown message id {msg_id}")
        name = self.names[msg_id]
        msg = self.messages[name]
        if len(payload) < msg.size:
            raise ValueError(f"{name}: {len(payload)} bytes, needs at least {msg.size}")
        try:
            fields, _ = decode(msg, payload)
        except Exception as error:  # struct.error, ValueError from ipaddress, IndexError...
            header = {}
            if msg.fields[1:3] == ["client_index", "context"]:
                client_index, context = struct.unpack_from(">II", payload, 2)
                header = {"client_index": client_index, "context": context}
            raise UndecodableMessage(name, header, error) from error
        fields.pop("_vl_msg_id", None)
        return name, fields


class UndecodableMessage(ValueError):
    """A message of known id and size whose fields do not decode (e.g. an IPv4 prefix of length 40)."""

    def __init__(self, name: str, header: dict[str, int], error: Exception) -> None:
        super().__init__(f"{name}: {error!r}")
        self.name = name
        #: client_index and context when the message is a request (else empty)
        self.header = header


_CACHE: dict[Path, ApiSchema] = {}
_CACHE_LOCK = threading.Lock()


def complete(packer: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Fill what vpp_papi cannot default: fixed arrays of non-u8 elements need exactly N entries."""
    for field, sub in zip(packer.fields, packer.packers, strict=True):
        value = data.get(field)
        if isinstance(sub, VPPTypeAlias):
            sub = sub.packer
        if isinstance(sub, FixedList):
            element = sub.packer
            if value is None:
                default: Any = complete(element, {}) if isinstance(element, VPPType) else 0
                data[field] = [default] * sub.num
            elif isinstance(element, VPPType):
                data[field] = [complete(element, dict(e)) if isinstance(e, dict) else e for e in value]
        elif isinstance(sub, VLAList) and isinstance(sub.packer, VPPType) and value:
            data[field] = [complete(sub.packer, dict(e)) if isinstance(e, dict) else e for e in value]
        elif isinstance(sub, VPPType) and (value is None or isinstance(value, dict)):
            filled = complete(sub, dict(value or {}))
            if filled or value is not None:
                data[field] = filled
    return data

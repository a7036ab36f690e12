"""VppEmulator: the socket server, the memclnt/vpe messages, dispatch to the handlers, test controls."""

from __future__ import annotations

import logging
import os
import threading
import traceback
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.vpp_emulator.handlers import HANDLERS
from tests.vpp_emulator.model import INVALID_ARGUMENT, UNIMPLEMENTED, ApiError, Model
from tests.vpp_emulator.schema import ApiSchema, UndecodableMessage, api_dir_for_tests, api_dir_skip_reason
from tests.vpp_emulator.server import Connection, SocketServer
from tests.vpp_emulator.snapshot import Counters, State

log = logging.getLogger(__name__)

#: VNET_API_ERROR_UNSPECIFIED, the default retval of fail()
UNSPECIFIED = -1
INVALID_REGISTRATION = -31
#: show_version's answer: says plainly what answers.
VERSION = "26.06-edgecups-emulator"


@dataclass
class _Registration:
    """A connected client (VPP's vl_api_registration_t): handle = 0x80000000 | pool index."""

    handle: int
    name: str
    connection: Connection
    #: the pid given to want_interface_events, None when the client did not ask
    interface_events_pid: int | None = None


class VppEmulator:
    """An emulated VPP on a unix socket; see the package docstring for the whole API."""

    def __init__(
        self,
        socket_path: Path | str,
        api_dir: Path | None = None,
        *,
        interfaces: Iterable[str] = (),
        record_calls: bool = True,
    ) -> None:
        if api_dir is None:
            api_dir = api_dir_for_tests()
            if api_dir is None:
                raise FileNotFoundError(api_dir_skip_reason())
        self.schema = ApiSchema.load(api_dir)
        self.socket_path = Path(socket_path)
        self._seed = tuple(interfaces)
        self._lock = threading.RLock()
        self._model = Model(self._seed)
        self._registrations: dict[int, _Registration] = {}
        self._calls: list[tuple[str, dict[str, Any]]] = []
        self._record_calls = record_calls
        self._call_counts: Counter[str] = Counter()
        self._failures: dict[str, list[list[int]]] = {}
        self._crashes: dict[str, int] = {}
        self._errors: list[str] = []
        self._restarts = 0
        self._server = SocketServer(self.socket_path, self._dispatch, self._on_close)
        self._message_table = [
            {"index": self.schema.ids[name], "name": self.schema.name_crc(name)} for name in self.schema.ids
        ]

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> VppEmulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
        with self._lock:
            self._registrations.clear()

    def __enter__(self) -> VppEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def restart(self) -> None:
        """A VPP restart: every connection is closed and all state is a fresh boot (pre-seeded
        interfaces included). The listening socket stays, so clients can reconnect at once.
        Pending fail() injections, ``calls`` and ``errors`` are test controls and are kept."""
        with self._lock:
            self._reboot()
        self._server.close_all()

    def _reboot(self) -> None:
        self._model = Model(self._seed)
        self._registrations.clear()
        self._restarts += 1

    # -- test controls ----------------------------------------------------------------------------

    @property
    def state(self) -> State:
        with self._lock:
            return self._model.snapshot()

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        """(message name, fields) of every request received, handshake and control_ping included."""
        with self._lock:
            return list(self._calls)

    @property
    def call_counts(self) -> Counter[str]:
        """Requests received per message name (kept even with ``record_calls=False``)."""
        with self._lock:
            return Counter(self._call_counts)

    def reset_calls(self) -> None:
        """Empty ``calls`` and ``call_counts``."""
        with self._lock:
            self._calls.clear()
            self._call_counts.clear()

    def _record(self, name: str, fields: dict[str, Any]) -> None:
        self._call_counts[name] += 1
        if self._record_calls:
            self._calls.append((name, fields))

    @property
    def errors(self) -> list[str]:
        """Tracebacks of handler crashes (emulator bugs); the client got retval -1 for each."""
        with self._lock:
            return list(self._errors)

    @property
    def restarts(self) -> int:
        return self._restarts

    @property
    def clients(self) -> int:
        """Connected clients that completed sockclnt_create."""
        with self._lock:
            return len(self._registrations)

    def fail(self, message_name: str, retval: int = UNSPECIFIED, nth: int = 1) -> None:
        """The ``nth`` next call of ``message_name`` replies ``retval`` and changes nothing."""
        reply = self.schema.reply_of(message_name)
        if reply is None or self.schema.is_legacy_dump(message_name):
            raise ValueError(f"{message_name!r} is not a request with a reply")
        if not self.schema.has_field(reply, "retval"):
            raise ValueError(f"{reply!r} has no retval")
        if retval == 0 or nth < 1:
            raise ValueError("fail() needs a non-zero retval and nth >= 1")
        with self._lock:
            self._failures.setdefault(message_name, []).append([nth, retval])

    def restart_on(self, message_name: str, nth: int = 1) -> None:
        """VPP dies while handling the ``nth`` next call of ``message_name``: no reply, then as
        :meth:`restart` (the call's effect is lost with everything else)."""
        if message_name not in self.schema.services or nth < 1:
            raise ValueError(f"{message_name!r} is not a request, or nth < 1")
        with self._lock:
            self._crashes[message_name] = nth

    def count_traffic(
        self, sw_if_index: int, *, rx_packets: int = 0, rx_bytes: int = 0, tx_packets: int = 0, tx_bytes: int = 0
    ) -> Counters:
        """Add to a gtpu tunnel's counters, as its traffic would: rx = uplink after decap (inner
        packet), tx = downlink after encap (outer IP/UDP/GTP-U header included). Returns the totals."""
        if min(rx_packets, rx_bytes, tx_packets, tx_bytes) < 0:
            raise ValueError("counters only grow")
        with self._lock:
            tunnel = self._model.gtpu_tunnels.get(sw_if_index)
            if tunnel is None:
                raise KeyError(f"no gtpu tunnel with sw_if_index {sw_if_index}")
            c = tunnel.counters
            counters = Counters(
                c.packets_rx + rx_packets, c.packets_tx + tx_packets, c.bytes_rx + rx_bytes, c.bytes_tx + tx_bytes
            )
            self._model.gtpu_tunnels[sw_if_index] = replace(tunnel, counters=counters)
            return counters

    # -- dispatch ---------------------------------------------------------------------------------

    def _on_close(self, connection: Connection) -> None:
        with self._lock:
            for key, registration in list(self._registrations.items()):
                if registration.connection is connection:
                    del self._registrations[key]

    def _dispatch(self, connection: Connection, payload: bytes) -> bool:
        try:
            name, fields = self.schema.unpack(payload)
        except UndecodableMessage as error:
            return self._undecodable(connection, error)
        except (KeyError, ValueError) as error:
            # VPP logs and answers nothing: an unknown id or a short message gets no reply.
            log.warning("client %d: undecodable message: %s", connection.number, error)
            return True
        outgoing: list[tuple[Connection, bytes]] = []
        keep_open = True
        crashed = False
        with self._lock:
            self._record(name, fields)
            if name == "sockclnt_create":
                outgoing.append((connection, self._sockclnt_create(connection, fields)))
            else:
                registration = self._registration(connection, fields)
                if registration is None:
                    return True  # unknown client_index: VPP has nowhere to send a reply
                if self._crash_due(name):
                    self._reboot()
                    crashed = True
                elif name == "sockclnt_delete":
                    del self._registrations[registration.handle & 0x7FFFFFFF]
                    outgoing.append((connection, self._reply(name, fields, {"response": 1})))
                    keep_open = False
                else:
                    outgoing.extend((connection, p) for p in self._handle(registration, name, fields))
                    outgoing.extend(self._events())
        if crashed:
            self._server.close_all()
            return False
        for target, message in outgoing:
            target.send(message)
        return keep_open

    def _crash_due(self, name: str) -> bool:
        remaining = self._crashes.get(name)
        if remaining is None:
            return False
        if remaining > 1:
            self._crashes[name] = remaining - 1
            return False
        del self._crashes[name]
        return True

    def _undecodable(self, connection: Connection, error: UndecodableMessage) -> bool:
        """A request whose fields do not decode gets -73 INVALID_ARGUMENT (where VPP would act on
        garbage), so the client sees its mistake at once instead of a time-out."""
        log.warning("client %d: %s", connection.number, error)
        reply = self.schema.reply_of(error.name)
        fields: dict[str, Any] = {**error.header, "undecodable": str(error)}
        with self._lock:
            self._record(error.name, fields)
            if reply is None or not error.header or self._registration(connection, fields) is None:
                return True
            values = {"retval": INVALID_ARGUMENT} if self.schema.has_field(reply, "retval") else {}
            message = self._reply(error.name, fields, values)
        connection.send(message)
        return True

    def _registration(self, connection: Connection, fields: dict[str, Any]) -> _Registration | None:
        registration = self._registrations.get(int(fields.get("client_index", 0)) & 0x7FFFFFFF)
        if registration is None or registration.connection is not connection:
            return None
        return registration

    def _sockclnt_create(self, connection: Connection, fields: dict[str, Any]) -> bytes:
        index = next(i for i in range(1, len(self._registrations) + 2) if i not in self._registrations)
        handle = 0x80000000 | index
        self._registrations[index] = _Registration(handle, str(fields.get("name", "")), connection)
        return self.schema.pack(
            "sockclnt_create_reply",
            {
                "context": fields.get("context", 0),
                "response": 0,
                "index": handle,
                "count": len(self._message_table),
                "message_table": self._message_table,
            },
        )

    def _reply(self, request: str, fields: dict[str, Any], values: dict[str, Any]) -> bytes:
        reply = self.schema.reply_of(request)
        assert reply is not None
        return self.schema.pack(reply, {**values, "context": fields.get("context", 0)})

    def _handle(self, registration: _Registration, name: str, fields: dict[str, Any]) -> list[bytes]:
        reply = self.schema.reply_of(name)
        if reply is None:
            return []  # not a request (a reply or an event sent to us): VPP ignores it
        if self.schema.is_legacy_dump(name):
            handler = HANDLERS.get(name)
            context = fields.get("context", 0)
            try:
                details = handler(self._model, fields) if handler is not None else []
                assert isinstance(details, list)
                return [self.schema.pack(reply, {**d, "context": context}) for d in details]
            except Exception:
                self._crashed(name, fields)
                return []  # the client's control_ping still ends the dump
        retval = self._injected_failure(name)
        values: dict[str, Any] = {}
        if retval is None:
            try:
                values = self._call(registration, name, fields)
                retval = 0
            except ApiError as error:
                retval = error.retval
                values = {}
            except Exception:
                self._crashed(name, fields)
                retval, values = UNSPECIFIED, {}
        has_retval = self.schema.has_field(reply, "retval")
        try:
            return [self._reply(name, fields, {**values, "retval": retval} if has_retval else values)]
        except Exception:
            self._crashed(name, fields)
            return [self._reply(name, fields, {"retval": UNSPECIFIED} if has_retval else {})]

    def _crashed(self, name: str, fields: dict[str, Any]) -> None:
        """An emulator bug: kept in ``errors`` (the harness fails the test) and logged."""
        self._errors.append(f"{name}({fields!r}):\n{traceback.format_exc()}")
        log.exception("emulator handler for %s crashed", name)

    def _call(self, registration: _Registration, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        if name == "control_ping":
            return {"vpe_pid": os.getpid()}
        if name == "get_api_json":
            return {"json": self.schema.api_json}
        if name == "show_version":
            return {"program": "vpe", "version": VERSION, "build_date": "", "build_directory": ""}
        if name == "want_interface_events":
            return self._want_interface_events(registration, fields)
        handler = HANDLERS.get(name)
        if handler is None:
            raise ApiError(UNIMPLEMENTED, f"{name} is not emulated")
        result = handler(self._model, fields)
        assert isinstance(result, dict)
        return result

    def _want_interface_events(self, registration: _Registration, fields: dict[str, Any]) -> dict[str, Any]:
        """VPP's want_* registration: enabling twice or disabling when off is -31."""
        enable = bool(fields.get("enable_disable"))
        if enable == (registration.interface_events_pid is not None):
            raise ApiError(INVALID_REGISTRATION, "already " + ("enabled" if enable else "disabled"))
        registration.interface_events_pid = int(fields.get("pid", 0)) if enable else None
        return {}

    def _injected_failure(self, name: str) -> int | None:
        pending = self._failures.get(name)
        if not pending:
            return None
        hit: int | None = None
        for entry in pending:
            entry[0] -= 1
            if entry[0] == 0 and hit is None:
                hit = entry[1]
        self._failures[name] = [e for e in pending if e[0] > 0]
        return hit

    def _events(self) -> list[tuple[Connection, bytes]]:
        events, self._model.pending_events = self._model.pending_events, []
        out: list[tuple[Connection, bytes]] = []
        for registration in self._registrations.values():
            if registration.interface_events_pid is None:
                continue
            for sw_if_index, flags, deleted in events:
                message = {
                    "client_index": registration.handle,
                    "pid": registration.interface_events_pid,
                    "sw_if_index": sw_if_index,
                    "flags": flags,
                    "deleted": deleted,
                }
                out.append((registration.connection, self.schema.pack("sw_interface_event", message)))
        return out

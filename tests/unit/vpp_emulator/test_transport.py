"""The socket transport and the memclnt/vpe messages, seen by vpp_papi's real clients and raw bytes."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

import pytest
from vpp_papi.vpp_papi_async import VPPApiClient as AsyncClient  # type: ignore[import-untyped]

from tests.unit.vpp_emulator.conftest import N3, ClientFactory
from tests.vpp_emulator import VppEmulator
from tests.vpp_emulator.server import HEADER, FrameBuffer


def test_handshake_gives_a_handle_and_every_message_with_its_crc(vpp_emulator: VppEmulator, client: Any) -> None:
    table = client.transport.message_table
    assert client.transport.socket_index == 0x80000001
    assert len(table) == len(vpp_emulator.schema.ids)
    # memclnt's fixed ids, which vpp_papi partly hard-codes
    assert table[vpp_emulator.schema.name_crc("sockclnt_create")] == 15
    assert table[vpp_emulator.schema.name_crc("control_ping")] == 23
    assert table[vpp_emulator.schema.name_crc("get_api_json")] == 27
    # every message the client parsed from the same schema got its function (no CRC mismatch)
    assert client.validate_message_table(dict.fromkeys(vpp_emulator.schema.name_crc(n) for n in client.messages)) == []
    assert hasattr(client.api, "gtpu_add_del_tunnel_v2")
    assert vpp_emulator.calls[0][0] == "sockclnt_create"
    assert vpp_emulator.calls[0][1]["name"] == "upf-agent"


def test_show_version_and_control_ping(client: Any) -> None:
    version = client.api.show_version()
    assert (version.retval, version.program) == (0, "vpe")
    assert version.version.startswith("26.06")
    ping = client.api.control_ping()
    assert ping.retval == 0 and ping.vpe_pid > 0


def test_bootstrap_client_loads_the_api_from_get_api_json(vpp_emulator: VppEmulator, connect: ClientFactory) -> None:
    client = connect("boot", bootstrapapi=True)
    assert hasattr(client.api, "ip_route_add_del")
    answer = client.api.get_api_json()
    modules = json.loads(answer.json)
    assert {m["module"] for m in modules} >= {"memclnt", "interface", "ip", "gtpu", "acl", "policer", "memif"}
    assert client.api.sw_interface_dump()[N3].interface_name == "n3-eth"


def test_asyncio_client(vpp_emulator: VppEmulator) -> None:
    async def scenario() -> tuple[Any, Any, Any]:
        client = AsyncClient(server_address=str(vpp_emulator.socket_path))
        await client.connect("async-agent", asyncio.Queue())
        try:
            version = await client.api.show_version()
            table = await client.api.ip_table_add_del(is_add=True, table={"table_id": 5, "name": "internet"})
            ping_reply, details = await client.api.sw_interface_dump()
            return version, table, (ping_reply, details)
        finally:
            await client.disconnect()

    version, table, (ping_reply, details) = asyncio.run(scenario())
    assert version.version.startswith("26.06")
    assert table.retval == 0
    assert type(ping_reply).__name__ == "control_ping_reply"
    assert [d.interface_name for d in details] == ["local0", "n3-eth", "n6-eth"]
    assert vpp_emulator.state.ip_tables[(False, 5)] == "internet"


def test_two_clients_share_the_state_and_get_their_own_handles(
    vpp_emulator: VppEmulator, connect: ClientFactory
) -> None:
    first, second = connect("one"), connect("two")
    assert {first.transport.socket_index, second.transport.socket_index} == {0x80000001, 0x80000002}
    assert first.api.ip_table_add_del(is_add=True, table={"table_id": 1}).retval == 0
    assert [t.table.table_id for t in second.api.ip_table_dump() if not t.table.is_ip6] == [0, 1]
    assert vpp_emulator.clients == 2


def test_interface_events_go_only_to_clients_that_asked(vpp_emulator: VppEmulator, connect: ClientFactory) -> None:
    watcher, other = connect("watcher"), connect("other")
    seen: list[tuple[str, Any]] = []
    ignored: list[tuple[str, Any]] = []
    watcher.register_event_callback(lambda name, msg: seen.append((name, msg)))
    other.register_event_callback(lambda name, msg: ignored.append((name, msg)))
    assert watcher.api.want_interface_events(enable_disable=1, pid=4242).retval == 0
    assert watcher.api.want_interface_events(enable_disable=1, pid=4242).retval == -31  # already enabled
    assert other.api.sw_interface_set_flags(sw_if_index=N3, flags=1).retval == 0
    # A reply on the same connection after the event proves the event was sent before it.
    watcher.api.control_ping()
    _wait_for(lambda: seen)
    name, event = seen[0]
    assert name == "sw_interface_event"
    assert (event.sw_if_index, int(event.flags), event.deleted, event.pid) == (N3, 3, False, 4242)
    assert event.client_index == watcher.transport.socket_index
    other.api.control_ping()
    assert ignored == []


def _wait_for(predicate: Any) -> None:
    # vpp_papi delivers events from its own thread; bounded wait, no timing assertion.
    import time

    for _ in range(200):
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("event never arrived")


# -- raw frames ------------------------------------------------------------------------------------


class RawClient:
    def __init__(self, emulator: VppEmulator) -> None:
        self.schema = emulator.schema
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(str(emulator.socket_path))
        self.frames = FrameBuffer()
        self.pending: list[bytes] = []
        self.handle = 0
        self.send(self.frame("sockclnt_create", {"context": 124, "name": "raw"}))
        name, reply = self.receive()
        assert name == "sockclnt_create_reply"
        self.handle = reply["index"]

    def frame(self, name: str, fields: dict[str, Any]) -> bytes:
        payload = self.schema.pack(name, {"client_index": self.handle, **fields})
        return HEADER.pack(0, len(payload), 0) + payload

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self) -> tuple[str, dict[str, Any]]:
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.pending.extend(self.frames.feed(data))
        return self.schema.unpack(self.pending.pop(0))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(vpp_emulator: VppEmulator) -> Any:
    client = RawClient(vpp_emulator)
    yield client
    client.close()


def test_a_frame_sent_one_byte_at_a_time_is_answered(raw: RawClient) -> None:
    for byte in raw.frame("control_ping", {"context": 77}):
        raw.send(bytes([byte]))
    name, reply = raw.receive()
    assert (name, reply["context"], reply["retval"]) == ("control_ping_reply", 77, 0)


def test_several_frames_in_one_write_are_answered_in_order(raw: RawClient) -> None:
    raw.send(
        raw.frame("show_version", {"context": 1})
        + raw.frame("sw_interface_dump", {"context": 2, "sw_if_index": 0xFFFFFFFF})
        + raw.frame("control_ping", {"context": 2})
        + raw.frame("control_ping", {"context": 3})
    )
    answers = [raw.receive() for _ in range(1 + 3 + 1 + 1)]
    assert [(n, r["context"]) for n, r in answers] == [
        ("show_version_reply", 1),
        ("sw_interface_details", 2),
        ("sw_interface_details", 2),
        ("sw_interface_details", 2),
        ("control_ping_reply", 2),
        ("control_ping_reply", 3),
    ]


def test_unknown_ids_get_no_reply_and_unemulated_requests_get_minus_9(raw: RawClient) -> None:
    unknown = struct.pack(">HII", 0xFFFE, raw.handle, 5)
    raw.send(HEADER.pack(0, len(unknown), 0) + unknown)
    raw.send(raw.frame("ip_neighbor_add_del", {"context": 6}))
    raw.send(raw.frame("control_ping", {"context": 7}))
    assert [(n, r["context"], r.get("retval")) for n, r in (raw.receive(), raw.receive())] == [
        ("ip_neighbor_add_del_reply", 6, -9),
        ("control_ping_reply", 7, 0),
    ]


def test_requests_with_another_client_index_get_no_reply(raw: RawClient) -> None:
    payload = raw.schema.pack("control_ping", {"client_index": 0x80000063, "context": 8})
    raw.send(HEADER.pack(0, len(payload), 0) + payload)
    raw.send(raw.frame("control_ping", {"context": 9}))
    assert raw.receive()[1]["context"] == 9


def test_sockclnt_delete_answers_response_1_and_closes(raw: RawClient, vpp_emulator: VppEmulator) -> None:
    raw.send(raw.frame("sockclnt_delete", {"context": 3, "index": raw.handle}))
    name, reply = raw.receive()
    assert (name, reply["response"]) == ("sockclnt_delete_reply", 1)
    with pytest.raises(ConnectionError):
        raw.receive()


def test_a_request_whose_fields_do_not_decode_gets_minus_73(raw: RawClient, vpp_emulator: VppEmulator) -> None:
    # An IPv4 prefix of length 40 packs (raw dict) but cannot decode into an IPv4Network.
    bad_prefix = {"address": {"af": 0, "un": {"ip4": b"\x0a\x00\x00\x00"}}, "len": 40}
    route = {"table_id": 0, "prefix": bad_prefix, "n_paths": 0, "paths": []}
    raw.send(raw.frame("ip_route_add_del", {"context": 11, "is_add": True, "route": route}))
    name, reply = raw.receive()
    assert (name, reply["context"], reply["retval"]) == ("ip_route_add_del_reply", 11, -73)
    assert vpp_emulator.state.routes == {}
    assert "undecodable" in vpp_emulator.calls[-1][1]


def test_tunnel_interfaces_announce_creation_and_deletion(vpp_emulator: VppEmulator, connect: ClientFactory) -> None:
    client = connect("watcher")
    seen: list[Any] = []
    client.register_event_callback(lambda name, msg: seen.append(msg))
    client.api.want_interface_events(enable_disable=1, pid=1)
    args = dict(
        src_address="10.0.3.1",
        dst_address="10.0.3.3",
        mcast_sw_if_index=0xFFFFFFFF,
        decap_next_index=2,
        teid=1,
        tteid=2,
    )
    index = client.api.gtpu_add_del_tunnel_v2(is_add=True, **args).sw_if_index
    client.api.gtpu_add_del_tunnel_v2(is_add=False, **args)
    _wait_for(lambda: len(seen) == 2)
    assert [(e.sw_if_index, int(e.flags), e.deleted) for e in seen] == [(index, 3, False), (index, 0, True)]
    assert client.api.want_interface_events(enable_disable=0, pid=1).retval == 0
    assert client.api.want_interface_events(enable_disable=0, pid=1).retval == -31


def test_a_schema_with_another_crc_hides_the_message_from_the_client(vpp_api_dir: Any, tmp_path: Any) -> None:
    from vpp_papi import VPPApiClient  # type: ignore[import-untyped]

    from tests.harness.vpp import running_emulator, schema_with_changed_crc

    changed = schema_with_changed_crc(vpp_api_dir, tmp_path / "api", "gtpu_add_del_tunnel_v2")
    with running_emulator(api_dir=changed) as emulator:
        assert emulator.schema.name_crc("gtpu_add_del_tunnel_v2") == "gtpu_add_del_tunnel_v2_deadbeef"
        client = VPPApiClient(apidir=str(vpp_api_dir), server_address=str(emulator.socket_path))
        client.connect("t")
        try:
            assert not hasattr(client.api, "gtpu_add_del_tunnel_v2")
            assert client.validate_message_table({"gtpu_add_del_tunnel_v2_a0c30713": 0}) == [
                "gtpu_add_del_tunnel_v2_a0c30713"
            ]
            assert hasattr(client.api, "gtpu_tunnel_v2_dump")
        finally:
            client.disconnect()

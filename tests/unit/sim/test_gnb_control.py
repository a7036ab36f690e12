"""The gNB simulator's configuration, control protocol and control connection (no namespaces:
the gNB here is never started, which the protocol must cope with)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from edge_sites.sim.gnb import Gnb
from edge_sites.sim.gnb_config import FieldError, GnbConfig, UeTunnel
from edge_sites.sim.gnb_control import MAX_LINE, ControlError, GnbClient, handle_connection, parse_request
from edge_sites.sim.netns import NotContainedError, current_netns_name
from edge_sites.sim.process import NetnsProcess, ProcessError

UE = {"ue_ip": "198.19.0.1", "uplink_teid": 1, "upf_n3": "198.18.1.1", "downlink_teid": 0x2001, "qfi": 9}


# -- configuration ---------------------------------------------------------------------------


def test_a_full_configuration_round_trips() -> None:
    config = GnbConfig.from_dict(
        {"name": "gnb-edge-1", "n3_address": "198.18.1.2", "control_socket": "/tmp/g.sock", "tun_name": "ran0",
         "tun_mtu": 1456, "route_table": 1000, "rule_priority": 10, "error_indication_rate": 0,
         "log_level": "debug", "ues": [UE, {**UE, "ue_ip": "198.19.0.2", "downlink_teid": 7}]}
    )  # fmt: skip
    assert config.ues[1] == UeTunnel(IPv4Address("198.19.0.2"), 1, IPv4Address("198.18.1.1"), 7, 9)
    assert GnbConfig.from_dict(config.to_dict()) == config
    assert GnbConfig.from_dict({"name": "g", "n3_address": "198.18.1.2"}).tun_name == "ues"  # defaults


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": None}, "name"),
        ({"n3_address": "2001:db8::1"}, "n3_address"),
        ({"colour": "blue"}, "colour"),
        ({"tun_name": "a-name-that-is-too-long"}, "tun_name"),
        ({"tun_mtu": 100}, "tun_mtu"),
        ({"route_table": 254}, "route_table"),
        ({"rule_priority": 32766}, "rule_priority"),  # must precede the main table's rule
        ({"netns_prefix": "other"}, "netns_prefix"),
        ({"control_socket": "/" + "x" * 120}, "control_socket"),
        ({"ues": [UE, UE]}, "ues[1].ue_ip"),
        ({"ues": [UE, {**UE, "ue_ip": "198.19.0.2"}]}, "ues[1].downlink_teid"),
        ({"ues": [{**UE, "qfi": 64}]}, "ues[0].qfi"),
        ({"ues": [{**UE, "uplink_teid": 0}]}, "ues[0].uplink_teid"),
        ({"ues": [{k: v for k, v in UE.items() if k != "upf_n3"}]}, "ues[0].upf_n3"),
        ({"error_indication_rate": "fast"}, "error_indication_rate"),
    ],
)
def test_a_bad_configuration_names_the_field(change: dict[str, Any], field: str) -> None:
    data = {"name": "g", "n3_address": "198.18.1.2"} | change
    with pytest.raises(FieldError) as error:
        GnbConfig.from_dict({k: v for k, v in data.items() if v is not None})
    assert error.value.field == field


# -- requests --------------------------------------------------------------------------------


def test_every_operation_parses_to_typed_arguments() -> None:
    attach = parse_request(json.dumps({"id": 7, "op": "attach", **UE}))
    assert (attach.op, attach.id, attach.args["tunnel"]) == ("attach", 7, UeTunnel.from_dict(UE))
    move = parse_request('{"op": "move", "ue_ip": "198.19.0.1", "upf_n3": "198.18.9.1", "downlink_teid": 5}')
    assert dict(move.args) == {"ue_ip": IPv4Address("198.19.0.1"), "upf_n3": IPv4Address("198.18.9.1"),
                               "downlink_teid": 5}  # fmt: skip
    assert dict(parse_request('{"op": "detach", "ue_ip": "198.19.0.1"}').args) == {"ue_ip": IPv4Address("198.19.0.1")}
    assert dict(parse_request('{"op": "counters"}').args) == {}
    assert dict(parse_request('{"op": "echo", "upf_n3": "198.18.1.1"}').args)["timeout"] == 1.0
    assert parse_request('{"op": "shutdown"}').op == "shutdown"


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("not json", "(request)"),
        ("[1, 2]", "(request)"),
        ('{"op": "reboot"}', "op"),
        ('{"ue_ip": "198.19.0.1"}', "op"),
        ('{"op": "status", "verbose": true}', "verbose"),
        ('{"op": "detach"}', "ue_ip"),
        ('{"op": "detach", "ue_ip": "198.19.0.300"}', "ue_ip"),
        (json.dumps({"op": "attach", **UE, "uplink_teid": 2**32}), "uplink_teid"),
        (json.dumps({"op": "attach", **UE, "downlink_teid": True}), "downlink_teid"),
        (json.dumps({"op": "attach", **{k: v for k, v in UE.items() if k != "qfi"}}), "qfi"),
        ('{"op": "move", "ue_ip": "198.19.0.1", "qfi": -1}', "qfi"),
        ('{"op": "move", "ue_ip": "198.19.0.1", "ue_pool": "x"}', "ue_pool"),
        ('{"op": "echo", "upf_n3": "198.18.1.1", "timeout": 60}', "timeout"),
        ('{"op": "echo"}', "upf_n3"),
        ('{"op": "status", "pad": "' + "x" * MAX_LINE + '"}', "(request)"),
    ],
)
def test_a_bad_request_names_the_field(line: str, field: str) -> None:
    with pytest.raises(FieldError) as error:
        parse_request(line)
    assert error.value.field == field


# -- the control connection ------------------------------------------------------------------


class Served:
    """``handle_connection`` for an unstarted gNB on a real unix socket, in a loop thread."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "gnb.sock"
        self.gnb = Gnb(GnbConfig(name="g", n3_address=IPv4Address("198.18.1.2")))
        self.loop = asyncio.new_event_loop()
        self.stopping = asyncio.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = self._call(self._serve())

    async def _serve(self) -> asyncio.Server:
        return await asyncio.start_unix_server(
            lambda r, w: handle_connection(self.gnb, self.stopping, r, w), str(self.path), limit=MAX_LINE
        )

    async def _close(self) -> None:
        self.server.close()
        # Connection handlers still running (the peer's close not yet seen) end before the loop does.
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(5)

    def close(self) -> None:
        self._call(self._close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def served() -> Iterator[Served]:
    directory = Path(tempfile.mkdtemp(prefix="ec-ctl-"))  # short: sun_path holds 108 octets
    served = Served(directory)
    yield served
    served.close()
    shutil.rmtree(directory)


def test_the_client_and_the_connection_speak_the_protocol(served: Served) -> None:
    client = GnbClient(served.path, timeout=5)
    try:
        status = client.status()
        assert (status["name"], status["n3_address"], status["ues"]) == ("g", "198.18.1.2", [])
        assert client.counters() == {"gnb": {}, "ues": {}}
        with pytest.raises(ControlError, match="not running"):
            client.attach(UeTunnel.from_dict(UE))
        with pytest.raises(ControlError) as unknown:
            client.detach("198.19.0.1")
        assert (unknown.value.field, unknown.value.message) == ("ue_ip", "UE 198.19.0.1 is not attached")
        with pytest.raises(ControlError) as bad:
            client.move("198.19.0.1", qfi=99)
        assert bad.value.field == "qfi"
        assert not served.stopping.is_set()
        client.shutdown()
        assert served.stopping.is_set()
    finally:
        client.close()


def test_a_malformed_line_is_answered_and_an_overlong_one_closes_the_connection(served: Served) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(served.path))
        reader = sock.makefile("rb")
        sock.sendall(b"{oops\n")
        answer = json.loads(reader.readline())
        assert (answer["ok"], answer["field"]) == (False, "(request)")
        sock.sendall(b'{"id": "a", "op": "status"}\n')  # the connection still serves
        assert json.loads(reader.readline())["id"] == "a"
        sock.sendall(b"x" * (MAX_LINE + 10) + b"\n")
        answer = json.loads(reader.readline())
        assert (answer["ok"], answer["field"]) == (False, "(request)")
        assert reader.readline() == b""  # closed


# -- containment -----------------------------------------------------------------------------


def test_a_gnb_outside_the_projects_namespaces_refuses_to_start_and_changes_nothing() -> None:
    if (current_netns_name() or "").startswith("ec"):
        pytest.skip("this test process itself runs in an 'ec' namespace")
    gnb = Gnb(GnbConfig(name="g", n3_address=IPv4Address("198.18.1.2"), tun_name="ecnever0"))
    with pytest.raises(NotContainedError, match="refusing"):
        asyncio.run(gnb.start())
    assert "ecnever0" not in {name for _, name in socket.if_nameindex()}


def test_a_process_that_cannot_start_reports_why(tmp_path: Path) -> None:
    process = NetnsProcess("ec-absent-0000", "edge_sites.sim.gnb", ["--config", "x"], log_path=tmp_path / "log")
    with pytest.raises(ProcessError, match="did not start"):
        process.start(timeout=10)
    assert not process.alive()

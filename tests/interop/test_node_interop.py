"""Our PfcpNode (pfcp/aio.py) against independent PFCP implementations, over real loopback UDP.

(a) scapy and pycrate build an Association Setup Request and a Heartbeat
    Request; a plain UDP socket sends each to our running node. The responses
    must decode in our codec and in pycrate with the right type, the echoed
    sequence number, cause 1 (setup), our Node ID and Recovery Time Stamp. All
    the datagrams then go into one pcap that tshark dissects once: no malformed
    packet, no expert warning, and tshark's message types and sequence numbers.
(b) A PFCP user plane built on pycrate alone (:mod:`.pycrate_peer`): our node,
    as a CP function, associates with it and heartbeats it; a newer Recovery
    Time Stamp in its Heartbeat Responses raises PeerRestarted once, and its
    silence raises PeerLost.
"""

from __future__ import annotations

import asyncio
import importlib
import shutil
import socket
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import pfcp
from pfcp.aio import PfcpNode
from pfcp.endpoint import EndpointConfig
from pfcp.events import AssociationEstablished, Event, PeerLost, PeerRestarted, RequestTimedOut
from pfcp.transaction import RetransmitPolicy

from .corpus import udp_frame

pytestmark = pytest.mark.interop


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


S: Any = _optional("scapy.contrib.pfcp")
P: Any = _optional("pycrate_mobile.TS29244_PFCP")
TSHARK = shutil.which("tshark")

LOOPBACK = "127.0.0.1"
#: Bound on each scenario (start, exchanges, close): the test fails rather than hangs.
DEADLINE = 15.0
REPLY_TIMEOUT = 3.0

OUR_NODE = "upf.edgecups.test"
OUR_RTS = 3_899_836_800 + 4242
OUR_UP_FEATURES = pfcp.UPFunctionFeatures(pfcp.UPFeatures.FTUP | pfcp.UPFeatures.EMPU)
TOOL_RTS = 3_899_836_800

HEARTBEAT_REQUEST, HEARTBEAT_RESPONSE = 1, 2
SETUP_REQUEST, SETUP_RESPONSE = 5, 6
RESPONSE_TYPE = {HEARTBEAT_REQUEST: HEARTBEAT_RESPONSE, SETUP_REQUEST: SETUP_RESPONSE}
ACCEPTED = pfcp.CauseValue.REQUEST_ACCEPTED


# --------------------------------------------------------------------------
# (a) scapy and pycrate ask, our node answers


@dataclass(frozen=True)
class Request:
    """A request built by an independent tool."""

    tool: str
    message_type: int
    sequence: int
    tool_node: str | None  # the Node ID it announces (Association Setup only)
    data: bytes


@dataclass(frozen=True)
class Exchange:
    request: Request
    response: bytes


@dataclass(frozen=True)
class Conversation:
    exchanges: list[Exchange]
    events: list[Event]
    node_address: tuple[str, int]
    tool_addresses: dict[str, tuple[str, int]]


def _scapy_requests() -> list[Request]:
    setup = S.PFCP(version=1, S=0, seq=0x5C0001) / S.PFCPAssociationSetupRequest(
        IE_list=[
            S.IE_NodeId(id_type="FQDN", id=b"smf.scapy.test"),
            S.IE_RecoveryTimeStamp(timestamp=TOOL_RTS),
            S.IE_CPFunctionFeatures(LOAD=1, OVRL=1),
        ]
    )
    heartbeat = S.PFCP(version=1, S=0, seq=0x5C0002) / S.PFCPHeartbeatRequest(
        IE_list=[S.IE_RecoveryTimeStamp(timestamp=TOOL_RTS)]
    )
    return [
        Request("scapy", SETUP_REQUEST, 0x5C0001, "smf.scapy.test", bytes(setup)),
        Request("scapy", HEARTBEAT_REQUEST, 0x5C0002, None, bytes(heartbeat)),
    ]


def _pycrate_requests() -> list[Request]:
    setup = P.PFCPAssociationSetupReq()
    setup.set_val(
        [
            {"SeqNum": 0x9C0001},
            [
                {"Type": 60, "Data": {"Type": 2, "Val": "smf.pycrate.test"}},
                {"Type": 96, "Data": {"Val": TOOL_RTS}},
                {"Type": 89, "Data": {"Octet1": {"LOAD": 1}}},
            ],
        ]
    )
    heartbeat = P.PFCPHeartbeatReq()
    heartbeat.set_val([{"SeqNum": 0x9C0002}, [{"Type": 96, "Data": {"Val": TOOL_RTS}}]])
    return [
        Request("pycrate", SETUP_REQUEST, 0x9C0001, "smf.pycrate.test", setup.to_bytes()),
        Request("pycrate", HEARTBEAT_REQUEST, 0x9C0002, None, heartbeat.to_bytes()),
    ]


def _our_up_config() -> EndpointConfig:
    return EndpointConfig(
        node_id=pfcp.NodeID(OUR_NODE),
        recovery_time_stamp=pfcp.RecoveryTimeStamp(OUR_RTS),
        up_function_features=OUR_UP_FEATURES,
        heartbeat_interval=None,  # only the tools' requests on the wire
    )


async def _converse(requests: list[Request]) -> Conversation:
    """Start our node; each tool sends its requests, in order, from its own plain UDP socket."""
    events: list[Event] = []
    node = PfcpNode(_our_up_config(), on_event=events.append)
    sockets: dict[str, socket.socket] = {}
    try:
        node_address = await node.start(LOOPBACK, 0)
        loop = asyncio.get_running_loop()
        exchanges: list[Exchange] = []
        for request in requests:
            sock = sockets.get(request.tool)
            if sock is None:
                sock = sockets[request.tool] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.setblocking(False)
                sock.bind((LOOPBACK, 0))
            await loop.sock_sendto(sock, request.data, node_address)
            data, source = await asyncio.wait_for(loop.sock_recvfrom(sock, 65535), REPLY_TIMEOUT)
            assert source[:2] == node_address
            exchanges.append(Exchange(request, data))
        tools = {tool: sock.getsockname()[:2] for tool, sock in sockets.items()}
        return Conversation(exchanges, events, node_address, tools)
    finally:
        for sock in sockets.values():
            sock.close()
        node.close()


@pytest.fixture(scope="module")
def conversation() -> Conversation:
    """One run of our node against every tool that is installed."""
    requests: list[Request] = []
    if S is not None:
        requests += _scapy_requests()
    if P is not None:
        requests += _pycrate_requests()
    if not requests:
        pytest.skip("neither scapy nor pycrate is installed (pip install scapy pycrate)")
    return asyncio.run(asyncio.wait_for(_converse(requests), DEADLINE))


def _check_in_our_codec(exchange: Exchange) -> None:
    request, response = exchange.request, pfcp.decode(exchange.response)
    assert response.sequence == request.sequence
    assert response.seid is None
    if request.message_type == SETUP_REQUEST:
        assert response == pfcp.AssociationSetupResponse(
            sequence=request.sequence,
            node_id=pfcp.NodeID(OUR_NODE),
            cause=pfcp.Cause(ACCEPTED),
            recovery_time_stamp=pfcp.RecoveryTimeStamp(OUR_RTS),
            up_function_features=OUR_UP_FEATURES,
        )
    else:
        assert response == pfcp.HeartbeatResponse(
            sequence=request.sequence, recovery_time_stamp=pfcp.RecoveryTimeStamp(OUR_RTS)
        )


def _check_in_pycrate(exchange: Exchange) -> None:
    from .pycrate_peer import ies_by_type, node_id_value

    request = exchange.request
    msg, err = P.parse_PFCP(exchange.response)
    assert err == 0, f"pycrate parse_PFCP error {err} on {exchange.response.hex()}"
    hdr = msg[0]
    assert hdr["Type"].get_val() == RESPONSE_TYPE[request.message_type]
    assert hdr["SeqNum"].get_val() == request.sequence
    assert hdr["S"].get_val() == 0
    ies = ies_by_type(msg)
    assert ies[96]["Data"]["Val"].get_val() == OUR_RTS
    if request.message_type == SETUP_REQUEST:
        assert [ie["Type"].get_val() for ie in msg[1]] == [60, 19, 96, 43]
        assert node_id_value(ies[60]) == OUR_NODE
        assert ies[19]["Data"].get_val() == 1
        features = ies[43]["Data"]
        assert features["Octet1"]["FTUP"].get_val() == 1
        assert features["Octet2"]["EMPU"].get_val() == 1
        assert features["Octet1"]["BUCP"].get_val() == 0
    else:
        assert [ie["Type"].get_val() for ie in msg[1]] == [96]


def _check_associated(conversation: Conversation, tool: str) -> None:
    """Our node recorded the association the tool asked for, under the tool's Node ID."""
    (setup,) = [x.request for x in conversation.exchanges if x.request.tool == tool and x.request.tool_node]
    established = [e for e in conversation.events if isinstance(e, AssociationEstablished)]
    mine = [e for e in established if e.peer == conversation.tool_addresses[tool]]
    assert len(mine) == 1 and setup.tool_node is not None
    assert mine[0].info.node_id == pfcp.NodeID(setup.tool_node)
    assert mine[0].info.recovery_time_stamp == pfcp.RecoveryTimeStamp(TOOL_RTS)
    assert not mine[0].initiated_by_us


def _exchanges_of(conversation: Conversation, tool: str) -> list[Exchange]:
    exchanges = [x for x in conversation.exchanges if x.request.tool == tool]
    assert [x.request.message_type for x in exchanges] == [SETUP_REQUEST, HEARTBEAT_REQUEST]
    return exchanges


def test_scapy_requests_answered_by_our_node(conversation: Conversation) -> None:
    if S is None or P is None:
        pytest.skip("scapy and pycrate are both needed (pip install scapy pycrate)")
    for exchange in _exchanges_of(conversation, "scapy"):
        _check_in_our_codec(exchange)
        _check_in_pycrate(exchange)
        # scapy reads our answer too
        answer = S.PFCP(exchange.response)
        assert answer.version == 1 and answer.S == 0
        assert answer.message_type == RESPONSE_TYPE[exchange.request.message_type]
        assert answer.seq == exchange.request.sequence
    _check_associated(conversation, "scapy")


def test_pycrate_requests_answered_by_our_node(conversation: Conversation) -> None:
    if P is None:
        pytest.skip("pycrate is not installed (pip install pycrate)")
    for exchange in _exchanges_of(conversation, "pycrate"):
        _check_in_our_codec(exchange)
        _check_in_pycrate(exchange)
    _check_associated(conversation, "pycrate")


def _pcap(frames: list[tuple[bytes, bytes, bytes]]) -> bytes:
    """A classic pcap of (IPv4 source, IPv4 destination, PFCP datagram), UDP 8805 both ways."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, (src, dst, payload) in enumerate(frames):
        frame = udp_frame(payload, src, dst)
        out.append(struct.pack("<IIII", 1_700_000_000, i * 1000, len(frame), len(frame)))
        out.append(frame)
    return b"".join(out)


def test_tshark_dissects_the_exchanges(conversation: Conversation, tmp_path: Path) -> None:
    if TSHARK is None:
        pytest.skip("tshark binary not found on PATH (install the tshark package)")
    tool_ip, node_ip = socket.inet_aton("127.0.0.2"), socket.inet_aton("127.0.0.1")
    frames: list[tuple[bytes, bytes, bytes]] = []
    expected: list[tuple[int, int]] = []
    for x in conversation.exchanges:
        frames += [(tool_ip, node_ip, x.request.data), (node_ip, tool_ip, x.response)]
        expected += [(x.request.message_type, x.request.sequence)]
        expected += [(RESPONSE_TYPE[x.request.message_type], x.request.sequence)]
    pcap = tmp_path / "node-interop.pcap"
    pcap.write_bytes(_pcap(frames))
    fields = ["frame.number", "pfcp.msg_type", "pfcp.seqno", "_ws.expert.severity", "_ws.malformed"]
    command = [TSHARK, "-n", "-r", str(pcap), "-o", "ip.check_checksum:TRUE", "-T", "fields"]
    command += ["-E", "separator=/t", "-E", "occurrence=a", *(arg for name in fields for arg in ("-e", name))]
    proc = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    assert len(rows) == len(frames), proc.stdout
    problems: list[str] = []
    for (number, msg_type, seqno, severity, malformed), (want_type, want_seq) in zip(rows, expected, strict=True):
        # the same predicate as -Y '_ws.malformed || _ws.expert.severity >= 6291456' (PI_WARN)
        if malformed or any(int(s) >= 6291456 for s in severity.split(",") if s):
            problems.append(f"frame {number}: malformed={malformed!r} expert severity={severity!r}")
        if (msg_type, seqno) != (str(want_type), str(want_seq)):
            problems.append(f"frame {number}: tshark reads type {msg_type} seq {seqno}, want {want_type} {want_seq}")
    assert problems == [], "\n".join(problems)


# --------------------------------------------------------------------------
# (b) our node as a CP function, a pycrate-only PFCP peer as the UP function

OUR_CP_NODE = "smf.edgecups.test"
PEER_NODE = "upf.pycrate.test"
PEER_RTS = 3_899_836_800 + 7
PEER_UP_FEATURES = {"Octet1": {"FTUP": 1, "BUCP": 1}, "Octet2": {"PDIU": 1}}
HEARTBEAT_INTERVAL = 0.2
#: T1 x (N1 + 1) = 0.3 s: a silent peer is lost within ~0.5 s.
CP_POLICY = RetransmitPolicy(t1=0.1, n1=2)


async def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {timeout} s") from None


async def _cp_against_pycrate_peer() -> None:
    from .pycrate_peer import ASSOCIATION_SETUP_REQUEST, HEARTBEAT_REQUEST, PycratePeer

    events: list[Event] = []
    config = EndpointConfig(
        node_id=pfcp.NodeID(OUR_CP_NODE),
        recovery_time_stamp=pfcp.RecoveryTimeStamp(OUR_RTS),
        cp_function_features=pfcp.CPFunctionFeatures(pfcp.CPFeatures.LOAD),
        retransmit=CP_POLICY,
        heartbeat_interval=HEARTBEAT_INTERVAL,
    )
    node = PfcpNode(config, on_event=events.append)
    peer = PycratePeer(PEER_NODE, PEER_RTS, PEER_UP_FEATURES)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: peer, local_addr=(LOOPBACK, 0))
    try:
        peer_address = transport.get_extra_info("sockname")[:2]
        await node.start(LOOPBACK, 0)

        def of(kind: type[Any]) -> list[Any]:
            return [e for e in events if isinstance(e, kind)]

        established = await asyncio.wait_for(node.associate(peer_address), 5.0)
        assert established.peer == peer_address and established.initiated_by_us
        assert established.info.node_id == pfcp.NodeID(PEER_NODE)
        assert established.info.recovery_time_stamp == pfcp.RecoveryTimeStamp(PEER_RTS)
        features = established.info.up_function_features
        assert features is not None
        assert features.value == pfcp.UPFeatures.FTUP | pfcp.UPFeatures.BUCP | pfcp.UPFeatures.PDIU
        assert peer.setups_answered == 1
        setup = peer.received[0]
        assert setup.message_type == ASSOCIATION_SETUP_REQUEST
        assert (setup.node_id, setup.recovery_time_stamp) == (OUR_CP_NODE, OUR_RTS)

        # Heartbeats: every 0.2 s, answered, nothing lost.
        await _wait_until(lambda: peer.heartbeats_answered >= 3, "three heartbeats answered")
        heartbeats = [r for r in peer.received if r.message_type == HEARTBEAT_REQUEST]
        assert len(heartbeats) >= 3
        assert {r.recovery_time_stamp for r in heartbeats} == {OUR_RTS}
        assert len({r.sequence for r in heartbeats}) == len(heartbeats)  # a new transaction each time
        assert of(PeerLost) == [] and of(PeerRestarted) == [] and of(RequestTimedOut) == []
        association = node.endpoint.association(peer_address)
        assert association is not None and association.associated

        # The peer restarts: a newer Recovery Time Stamp, reported once however many heartbeats carry it.
        peer.recovery_time_stamp = PEER_RTS + 60
        answered = peer.heartbeats_answered
        await _wait_until(lambda: peer.heartbeats_answered >= answered + 3, "three heartbeats after the restart")
        assert of(PeerRestarted) == [
            PeerRestarted(
                peer_address,
                pfcp.NodeID(PEER_NODE),
                pfcp.RecoveryTimeStamp(PEER_RTS),
                pfcp.RecoveryTimeStamp(PEER_RTS + 60),
            )
        ]
        assert of(PeerLost) == []

        # The peer goes silent: N1 resends later, the peer is lost and the association gone.
        peer.answering = False
        await _wait_until(lambda: bool(of(PeerLost)), "PeerLost after the peer went silent")
        assert of(PeerLost) == [PeerLost(peer_address, pfcp.NodeID(PEER_NODE))]
        assert peer.heartbeats_ignored == CP_POLICY.n1 + 1  # the heartbeat and its N1 resends
        assert node.endpoint.association(peer_address) is None
        assert len(of(PeerRestarted)) == 1
        assert peer.problems == []
    finally:
        node.close()
        transport.close()


def test_our_cp_node_with_a_pycrate_peer() -> None:
    if P is None:
        pytest.skip("pycrate is not installed (pip install pycrate)")
    asyncio.run(asyncio.wait_for(_cp_against_pycrate_peer(), DEADLINE))

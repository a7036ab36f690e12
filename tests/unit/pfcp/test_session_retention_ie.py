"""PFCP Session Retention Information (IE 183, Table 7.4.4.1-2) and CP PFCP Entity IP
Address (IE 185, §8.2.135) in the Association Setup Request.

Expected octets are written from the spec layouts (TS 29.244 §8.1.1 Type/Length,
Figure 8.2.135-1: octet 5 = spare | V4 (bit 2) | V6 (bit 1), then IPv4, then IPv6),
not produced by the codec; pycrate and tshark read what we encode.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import pytest

import pfcp
from pfcp.endpoint import EndpointConfig, PfcpEndpoint
from pfcp.transaction import RetransmitPolicy
from tests.interop.corpus import pcap_bytes

V4 = IPv4Address("192.0.2.10")
V6 = IPv6Address("2001:db8::10")
V4_HEX = "c000020a"
V6_HEX = "20010db8000000000000000000000010"
Entity = pfcp.CPPFCPEntityIPAddress
Retention = pfcp.PFCPSessionRetentionInformation


def tlv(ie_type: int, payload_hex: str) -> bytes:
    payload = bytes.fromhex(payload_hex)
    return struct.pack(">HH", ie_type, len(payload)) + payload


ENTITY_V4 = tlv(185, "02" + V4_HEX)
ENTITY_V6 = tlv(185, "01" + V6_HEX)
ENTITY_BOTH = tlv(185, "03" + V4_HEX + V6_HEX)

CASES = [
    ("empty: retain every session", Retention(), tlv(183, "")),
    ("one IPv4 address", Retention(cp_pfcp_entity_ip_address=(Entity(V4),)), tlv(183, ENTITY_V4.hex())),
    (
        "IPv4, IPv6 and both",
        Retention(cp_pfcp_entity_ip_address=(Entity(V4), Entity(ipv6=V6), Entity(V4, V6))),
        tlv(183, (ENTITY_V4 + ENTITY_V6 + ENTITY_BOTH).hex()),
    ),
]


@pytest.mark.parametrize(("description", "ie", "wire"), CASES, ids=[c[0] for c in CASES])
def test_golden_bytes_both_ways(description: str, ie: pfcp.IE, wire: bytes) -> None:
    assert ie.encode() == wire
    assert pfcp.decode_ie(183, wire, 4, len(wire)) == ie
    assert type(pfcp.decode_ie(183, wire, 4, len(wire))) is Retention  # the registry's class, not opaque
    assert pfcp.IE_CLASSES[pfcp.IEType.SESSION_RETENTION_INFORMATION] is Retention


@pytest.mark.parametrize(
    ("entity", "wire"), [(Entity(V4), ENTITY_V4), (Entity(ipv6=V6), ENTITY_V6), (Entity(V4, V6), ENTITY_BOTH)]
)
def test_cp_pfcp_entity_ip_address_layout(entity: pfcp.IE, wire: bytes) -> None:
    assert entity.encode() == wire
    assert pfcp.decode_ie(185, wire, 4, len(wire)) == entity


def setup_request(retention: pfcp.PFCPSessionRetentionInformation | None) -> pfcp.AssociationSetupRequest:
    return pfcp.AssociationSetupRequest(
        sequence=0x123456,
        node_id=pfcp.NodeID("smf.test"),
        recovery_time_stamp=pfcp.RecoveryTimeStamp(3_900_000_000),
        pfcp_session_retention_information=retention,
    )


def test_association_setup_request_round_trip() -> None:
    retention = Retention(cp_pfcp_entity_ip_address=(Entity(V4), Entity(ipv6=V6)))
    msg = setup_request(retention)
    data = pfcp.encode(msg)
    assert ENTITY_V4 in data and ENTITY_V6 in data
    decoded = pfcp.decode(data)
    assert decoded == msg
    assert isinstance(decoded, pfcp.AssociationSetupRequest)
    assert decoded.pfcp_session_retention_information == retention
    # an empty IE survives as present-and-empty, not as absent: they mean different things
    empty = pfcp.decode(pfcp.encode(setup_request(Retention())))
    assert isinstance(empty, pfcp.AssociationSetupRequest)
    assert empty.pfcp_session_retention_information == Retention()
    absent = pfcp.decode(pfcp.encode(setup_request(None)))
    assert isinstance(absent, pfcp.AssociationSetupRequest)
    assert absent.pfcp_session_retention_information is None


@pytest.mark.parametrize(
    ("description", "payload_hex"),
    [
        ("V4 flag, address cut short", "02c00002"),
        ("V6 flag, address cut short", "01" + V6_HEX[:-2]),
        ("no flags octet", ""),
        ("a trailing octet", "02" + V4_HEX + "00"),
    ],
)
def test_malformed_entity_address_raises_decode_error(description: str, payload_hex: str) -> None:
    payload = bytes.fromhex(payload_hex)
    with pytest.raises(pfcp.DecodeError) as raised:
        pfcp.decode_ie(185, payload, 0, len(payload))
    assert raised.value.cause == pfcp.CauseValue.INVALID_LENGTH


def test_malformed_child_in_a_setup_request_is_refused() -> None:
    # An IE 183 whose child 185 claims 5 octets but the group ends after 3.
    bad_group = struct.pack(">HH", 183, 7) + struct.pack(">HH", 185, 5) + b"\x02\xc0\x00"
    good = pfcp.encode(setup_request(None))
    data = bytearray(good + bad_group)
    struct.pack_into(">H", data, 2, len(data) - 4)  # message length (§7.2.2.1)
    with pytest.raises(pfcp.DecodeError):
        pfcp.decode(bytes(data))


def test_endpoint_associate_puts_the_ie_in_the_request_and_its_retransmissions() -> None:
    retention = Retention(cp_pfcp_entity_ip_address=(Entity(V4),))
    endpoint = PfcpEndpoint(
        EndpointConfig(
            node_id=pfcp.NodeID("smf.test"),
            recovery_time_stamp=pfcp.RecoveryTimeStamp(3_900_000_000),
            retransmit=RetransmitPolicy(t1=1.0, n1=2),
            heartbeat_interval=None,
        )
    )
    peer = ("192.0.2.20", 8805)
    endpoint.associate(peer, 0.0, session_retention=retention)
    (first,) = endpoint.datagrams_to_send()
    sent = pfcp.decode(first[0])
    assert isinstance(sent, pfcp.AssociationSetupRequest)
    assert sent.pfcp_session_retention_information == retention
    endpoint.handle_timer(1.5)  # T1 passed: the same request again (§6.4)
    (again,) = endpoint.datagrams_to_send()
    assert again[0] == first[0]


# -- other implementations read what we encode ------------------------------------------------


def test_pycrate_decodes_our_setup_request() -> None:
    P: Any = pytest.importorskip("pycrate_mobile.TS29244_PFCP", reason="pycrate is not installed")
    msg = setup_request(Retention(cp_pfcp_entity_ip_address=(Entity(V4), Entity(ipv6=V6))))
    parsed, err = P.parse_PFCP(pfcp.encode(msg))
    assert err == 0
    (group,) = [ie["Data"] for ie in parsed[1] if ie["Type"].get_val() == 183]
    assert type(group).__name__ == "SessionRetentionInformation"
    entities = [child["Data"] for child in group]
    assert [type(e).__name__ for e in entities] == ["CPPFCPEntityIPAddress"] * 2
    assert (entities[0]["V4"].get_val(), entities[0]["V6"].get_val()) == (1, 0)
    assert entities[0]["IPv4Addr"].get_val() == V4.packed and entities[0]["ext"].get_val() == b""
    assert (entities[1]["V4"].get_val(), entities[1]["V6"].get_val()) == (0, 1)
    assert entities[1]["IPv6Addr"].get_val() == V6.packed and entities[1]["ext"].get_val() == b""


def _fields(value: Any, out: dict[str, list[str]]) -> dict[str, list[str]]:
    if isinstance(value, list):
        for key, item in value:
            values = out.setdefault(key, [])  # subtrees too: "_ws.expert" is one
            if isinstance(item, str):
                values.append(item)
            else:
                _fields(item, out)
    return out


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark binary not found on PATH")
def test_tshark_dissects_our_setup_request(tmp_path: Path) -> None:
    tshark = shutil.which("tshark")
    assert tshark is not None
    msg = setup_request(Retention(cp_pfcp_entity_ip_address=(Entity(V4), Entity(ipv6=V6))))
    pcap = tmp_path / "retention.pcap"
    pcap.write_bytes(pcap_bytes([pfcp.encode(msg)]))
    proc = subprocess.run(
        [tshark, "-n", "-r", str(pcap), "-T", "json"],
        capture_output=True,
        env={**os.environ, "LC_ALL": "C"},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    (packet,) = json.loads(proc.stdout, object_pairs_hook=list)
    fields = _fields(packet, {})
    assert "_ws.expert" not in fields and "_ws.malformed" not in fields
    assert "183" in fields["pfcp.ie_type"] and fields["pfcp.ie_type"].count("185") == 2
    assert fields["pfcp.cp_pfcp_entity_ip_address.ipv4"] == [str(V4)]
    assert fields["pfcp.cp_pfcp_entity_ip_address.ipv6"] == [str(V6)]

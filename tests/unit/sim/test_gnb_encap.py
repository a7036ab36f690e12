"""The gNB's uplink encapsulation, byte for byte, against scapy's GTP-U layers (an independent
implementation of TS 29.281 §5.1/§5.2.2.7 and TS 38.415 §5.5.2.2)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from edge_sites.sim.gnb import encapsulate_uplink
from edge_sites.sim.gnb_config import UeTunnel

scapy_gtp = pytest.importorskip("scapy.contrib.gtp")
scapy_inet = pytest.importorskip("scapy.layers.inet")

pytestmark = pytest.mark.interop

UE = "198.19.0.10"
DN = "198.18.2.2"


def _tunnel(teid: int, qfi: int) -> UeTunnel:
    return UeTunnel(IPv4Address(UE), teid, IPv4Address("198.18.1.1"), 0x1234, qfi)


def _inner(size: int) -> bytes:
    packet = scapy_inet.IP(src=UE, dst=DN) / scapy_inet.UDP(sport=40000, dport=5201) / bytes(range(256))[:size]
    return bytes(packet)


@pytest.mark.parametrize(("teid", "qfi", "size"), [(1, 9, 0), (0x01020304, 0, 17), (0xFFFFFFFF, 63, 255)])
def test_uplink_gpdu_is_what_scapy_builds(teid: int, qfi: int, size: int) -> None:
    inner = _inner(size)
    oracle = (
        scapy_gtp.GTP_U_Header(teid=teid, gtp_type=255, E=1, next_ex=0x85)
        / scapy_gtp.GTPPDUSessionContainer(type=1, QFI=qfi)  # UL PDU SESSION INFORMATION
        / scapy_inet.IP(inner)
    )
    assert encapsulate_uplink(_tunnel(teid, qfi), inner) == bytes(oracle)


@pytest.mark.parametrize("qfi", [1, 5, 9, 63])
def test_scapy_reads_every_field_of_our_uplink_gpdu(qfi: int) -> None:
    inner = _inner(40)
    wire = encapsulate_uplink(_tunnel(0xCAFE, qfi), inner)
    gtp = scapy_gtp.GTP_U_Header(wire)
    # TS 29.281 §5.1: version 1, PT 1 (GTP), E set (an extension header follows), S and PN clear;
    # the length counts everything after the first 8 octets.
    assert (gtp.version, gtp.PT, gtp.E, gtp.S, gtp.PN, gtp.gtp_type, gtp.teid) == (1, 1, 1, 0, 0, 255, 0xCAFE)
    assert gtp.length == len(wire) - 8 == 4 + 4 + len(inner)
    assert gtp.next_ex == 0x85  # PDU Session Container
    psc = gtp[scapy_gtp.GTPPDUSessionContainer]
    # TS 38.415 §5.5.2.2: one 4-octet container (length 1), PDU Type 1 (UL), the QFI, no more headers.
    assert (psc.ExtHdrLen, psc.type, psc.QFI, psc.NextExtHdr) == (1, 1, qfi, 0)
    assert bytes(gtp[scapy_inet.IP]) == inner
    assert wire[8:16] == bytes((0, 0, 0, 0x85, 1, 0x10, qfi, 0))  # the exact octets after the header

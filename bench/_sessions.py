"""Sessions and packets of bench/upf_dataplane.py: the addresses of the benchmark topology, the
PFCP sessions the UPF gets (one uplink and one downlink PDR per UE) and what the generator sends.

Everything lies in 198.18.0.0/15 (RFC 2544), the UE pool in 198.19.0.0/16.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Final

import pfcp
from tests.harness import packets
from user_plane import gtpu
from user_plane.session import Plan, SessionState, plan_establishment

GNB: Final = IPv4Address("198.18.1.2")
N3: Final = IPv4Address("198.18.1.1")
N6: Final = IPv4Address("198.18.2.1")
DN: Final = IPv4Address("198.18.2.2")
UE_POOL: Final = IPv4Network("198.19.0.0/16")
TUN: Final = "bench-tun"
INSTANCE: Final = "internet"
DN_PORT: Final = 9000
UE_PORT: Final = 5000
QFI: Final = 9
UL_TEID_BASE: Final = 0x0100_0000
DL_TEID_BASE: Final = 0x0200_0000
MAX_SESSIONS: Final = UE_POOL.num_addresses - 2
CP_NODE: Final = IPv4Address("198.18.0.10")


class BenchError(RuntimeError):
    """The benchmark could not run (a child failed, the topology could not be built...)."""


def ipv4_udp(src: IPv4Address, dst: IPv4Address, sport: int, dport: int, size: int) -> bytes:
    """An IPv4/UDP packet of ``size`` octets in all, checksums right."""
    return packets.ipv4_udp(src, dst, sport, dport, bytes(i & 0xFF for i in range(size - 28)))


def ue_address(index: int) -> IPv4Address:
    return UE_POOL.network_address + 1 + index


def session_request(index: int) -> pfcp.SessionEstablishmentRequest:
    """Session ``index``: uplink on TEID UL_TEID_BASE+index, downlink to the gNB on DL_TEID_BASE+index."""
    ue = ue_address(index)
    internet = pfcp.NetworkInstance(INSTANCE)
    forw = pfcp.ApplyAction(pfcp.ApplyActionFlags.FORW)
    return pfcp.SessionEstablishmentRequest(
        node_id=pfcp.NodeID(CP_NODE),
        cp_f_seid=pfcp.FSEID(seid=index + 1, ipv4=CP_NODE),
        create_pdr=(
            pfcp.CreatePDR(
                pdr_id=pfcp.PDRID(1),
                precedence=pfcp.Precedence(100),
                pdi=pfcp.PDI(
                    source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.ACCESS),
                    local_f_teid=pfcp.FTEID(teid=UL_TEID_BASE + index, ipv4=N3),
                    network_instance=internet,
                    ue_ip_address=(pfcp.UEIPAddress(ipv4=ue),),
                ),
                outer_header_removal=pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV4),
                far_id=pfcp.FARID(1),
                qer_id=(pfcp.QERID(1),),
            ),
            pfcp.CreatePDR(
                pdr_id=pfcp.PDRID(2),
                precedence=pfcp.Precedence(100),
                pdi=pfcp.PDI(
                    source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.CORE),
                    network_instance=internet,
                    ue_ip_address=(pfcp.UEIPAddress(ipv4=ue, is_destination=True),),
                ),
                far_id=pfcp.FARID(2),
                qer_id=(pfcp.QERID(1),),
            ),
        ),
        create_far=(
            pfcp.CreateFAR(
                far_id=pfcp.FARID(1),
                apply_action=forw,
                forwarding_parameters=pfcp.ForwardingParameters(
                    destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.CORE),
                    network_instance=internet,
                ),
            ),
            pfcp.CreateFAR(
                far_id=pfcp.FARID(2),
                apply_action=forw,
                forwarding_parameters=pfcp.ForwardingParameters(
                    destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.ACCESS),
                    outer_header_creation=pfcp.OuterHeaderCreation(
                        pfcp.OuterHeaderCreationDescription.GTPU_UDP_IPV4, teid=DL_TEID_BASE + index, ipv4=GNB
                    ),
                ),
            ),
        ),
        create_qer=(pfcp.CreateQER(qer_id=pfcp.QERID(1), gate_status=pfcp.GateStatus(), qfi=pfcp.QFI(QFI)),),
    )


def session_state(index: int) -> SessionState:
    plan = plan_establishment(session_request(index), index + 1, lambda chid: 0)
    if not isinstance(plan, Plan):
        raise BenchError(f"session {index} rejected: {plan}")
    return plan.state


def generator_packets(direction: str, path: str, size: int, sessions: int) -> list[bytes]:
    """The UDP payloads the generator cycles through (one per session on a UPF path)."""
    if path == "kernel":
        return [bytes(i & 0xFF for i in range(size - 28))]
    if direction == "uplink":
        out = []
        for i in range(sessions):
            inner = ipv4_udp(ue_address(i), DN, UE_PORT, DN_PORT, size)
            out.append(gtpu.encode_gpdu_header(UL_TEID_BASE + i, len(inner), qfi=QFI, pdu_type_dl=False) + inner)
        return out
    return [bytes(i & 0xFF for i in range(size - 28))] * sessions


def generator_destinations(direction: str, path: str, sessions: int) -> list[tuple[str, int]]:
    if path == "kernel":
        return [(str(DN), DN_PORT) if direction == "uplink" else (str(GNB), gtpu.GTPU_PORT)]
    if direction == "uplink":
        return [(str(N3), gtpu.GTPU_PORT)]
    return [(str(ue_address(i)), UE_PORT) for i in range(sessions)]

"""Session-level plumbing of PfcpNode over real UDP, on IPv4 and IPv6 loopback.

* Session requests are routed by the SEID in their header to the handler the
  application registered for that session (``PfcpNode.session_handlers``); the
  rest (SEID 0, unknown SEIDs) go to the node's default handler.
* Session Report Requests flow UP -> CP and reach the CP's session handler.
"""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address, IPv6Address

import pytest

import pfcp
from pfcp.aio import PfcpNode
from pfcp.endpoint import EndpointConfig
from pfcp.events import RequestReceived
from pfcp.transaction import RetransmitPolicy

DEADLINE = 10.0
ACCEPTED = pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED)
NOT_FOUND = pfcp.Cause(pfcp.CauseValue.SESSION_CONTEXT_NOT_FOUND)


def _config(node_id: pfcp.NodeID) -> EndpointConfig:
    return EndpointConfig(
        node_id=node_id,
        recovery_time_stamp=pfcp.RecoveryTimeStamp(3_900_000_000),
        retransmit=RetransmitPolicy(t1=0.2, n1=3),
        heartbeat_interval=None,
    )


def _f_seid(seid: int, ip: IPv4Address | IPv6Address) -> pfcp.FSEID:
    return pfcp.FSEID(seid, ipv6=ip) if isinstance(ip, IPv6Address) else pfcp.FSEID(seid, ipv4=ip)


def _establishment(cp_seid: int, host: str) -> pfcp.SessionEstablishmentRequest:
    ip = IPv6Address(host) if ":" in host else IPv4Address(host)
    f_seid = _f_seid(cp_seid, ip)
    pdi = pfcp.PDI(source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.CORE))
    return pfcp.SessionEstablishmentRequest(
        node_id=pfcp.NodeID(ip),
        cp_f_seid=f_seid,
        create_pdr=(pfcp.CreatePDR(pdr_id=pfcp.PDRID(1), precedence=pfcp.Precedence(10), pdi=pdi),),
        create_far=(pfcp.CreateFAR(far_id=pfcp.FARID(1), apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.DROP)),),
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_session_requests_reach_their_session_handler(host: str) -> None:
    asyncio.run(asyncio.wait_for(_scenario(host), DEADLINE))


async def _scenario(host: str) -> None:
    ip: IPv4Address | IPv6Address = IPv6Address(host) if ":" in host else IPv4Address(host)
    up_node_id = pfcp.NodeID(ip)
    seen: dict[str, list[int]] = {"up-session": [], "up-default": [], "cp-session": []}
    up = PfcpNode(_config(up_node_id))
    cp = PfcpNode(_config(pfcp.NodeID("cp.sessions.test")))

    def up_session(event: RequestReceived) -> pfcp.Message:
        assert event.message.seid is not None
        seen["up-session"].append(event.message.seid)
        return pfcp.SessionModificationResponse(seid=7001, cause=ACCEPTED)

    def up_default(event: RequestReceived) -> pfcp.Message:
        msg = event.message
        seen["up-default"].append(msg.seid or 0)
        if isinstance(msg, pfcp.SessionEstablishmentRequest):
            up_seid = 0x5EED0000 + msg.cp_f_seid.seid
            up.session_handlers[up_seid] = up_session  # the session exists from now on
            return pfcp.SessionEstablishmentResponse(
                seid=msg.cp_f_seid.seid,
                node_id=up_node_id,
                cause=ACCEPTED,
                up_f_seid=_f_seid(up_seid, ip),
            )
        return pfcp.SessionModificationResponse(seid=0, cause=NOT_FOUND)

    def cp_session(event: RequestReceived) -> pfcp.Message:
        assert event.message.seid is not None
        seen["cp-session"].append(event.message.seid)
        return pfcp.SessionReportResponse(seid=event.message.seid, cause=ACCEPTED)

    up.handler = up_default
    cp.session_handlers[7001] = cp_session
    try:
        up_addr = await up.start(host, 0)
        cp_addr = await cp.start(host, 0)
        assert up_addr[0] == host
        established = await cp.associate(up_addr)
        assert established.info.node_id == up_node_id

        answer = await cp.request(up_addr, _establishment(7001, host))
        assert isinstance(answer, pfcp.SessionEstablishmentResponse)
        assert answer.seid == 7001 and answer.up_f_seid is not None
        up_seid = answer.up_f_seid.seid

        modified = await cp.request(up_addr, pfcp.SessionModificationRequest(seid=up_seid))
        assert isinstance(modified, pfcp.SessionModificationResponse) and modified.cause == ACCEPTED
        unknown = await cp.request(up_addr, pfcp.SessionModificationRequest(seid=up_seid + 1))
        assert isinstance(unknown, pfcp.SessionModificationResponse) and unknown.cause == NOT_FOUND

        report = pfcp.SessionReportRequest(
            seid=7001, report_type=pfcp.ReportType(pfcp.ReportTypeFlags.USAR), sequence=0
        )
        reported = await up.request(cp_addr, report)
        assert isinstance(reported, pfcp.SessionReportResponse) and reported.seid == 7001

        assert seen == {"up-session": [up_seid], "up-default": [0, up_seid + 1], "cp-session": [7001]}
    finally:
        up.close()
        cp.close()

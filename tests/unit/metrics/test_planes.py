"""/metrics of a real control plane and a real UPF agent, scraped over HTTP while sessions come and go.

The control plane (control_plane.app.start, SQLite) and the UPF agent (user_plane.agent.UpfAgent
over the recording driver double of tests/fakes/driver.py) talk PFCP on loopback; both serve
/metrics on 127.0.0.1. Values are read the way Prometheus reads them (OpenMetrics, parsed by
prometheus_client) and must move with what the planes did: establishments, a rejection, a
deletion, and the UPF going away.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session as OrmSession

from control_plane.app import ControlPlane, start
from control_plane.config import parse_config as parse_cp_config
from control_plane.errors import UpfRejected
from control_plane.services.views import SessionRequest
from db.engine import make_engine, upgrade
from db.models import Dnn, IpPool, Policy, Site, Subscriber, Upf
from tests.fakes.driver import FakeDriver
from tests.unit.metrics.scrape import Scrape, check_documented, scrape
from user_plane.agent import UpfAgent
from user_plane.config import parse_config as parse_upf_config
from user_plane.driver import DriverError

UPF = "upf-metrics.test"
SITE = "edge-m"
DNN = "internet"
TAI = "001-01-000001"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def provision(url: str, upf_port: int) -> None:
    upgrade(url)
    engine = make_engine(url)
    try:
        with OrmSession(engine) as db, db.begin():
            dnn = Dnn(name=DNN, network_instance=DNN, snssais=["1"])
            site = Site(name=SITE, kind="edge", region="test", tais=[TAI])
            db.add_all([dnn, site])
            db.add(Policy(name="default", dnn=dnn, snssai="*", qfi=9, five_qi=9,
                          session_ambr_ul_kbps=10_000, session_ambr_dl_kbps=10_000))  # fmt: skip
            db.add(Upf(node_id=UPF, n4_address="127.0.0.1", n4_port=upf_port, site=site,
                       n3_addresses=["198.19.7.1"], network_instances=[DNN], snssais=["1"], capacity=100))  # fmt: skip
            db.add(IpPool(name="pool-m", dnn=dnn, site=site, cidr="198.19.8.0/29", family=4, prefix_length=32))
            db.add_all(Subscriber(supi=f"imsi-00101000000000{n}", allowed_dnns=[DNN]) for n in range(4))
    finally:
        engine.dispose()


def request(n: int) -> SessionRequest:
    return SessionRequest(supi=f"imsi-00101000000000{n}", dnn=DNN, snssai="1", tai=TAI, gnb_teid=0x100 + n,
                          gnb_address="198.19.7.200")  # fmt: skip


async def read(url: str) -> Scrape:
    # From another thread, as Prometheus would: the families are computed on this loop.
    return await asyncio.to_thread(scrape, url)


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.05)


async def scenario(tmp_path: Path) -> None:
    driver = FakeDriver()
    agent = UpfAgent(
        parse_upf_config({
            "node_id": UPF, "n4": {"address": "127.0.0.1"}, "n3": ["198.19.7.1"],
            "n6": {DNN: {"interface": "n6-m", "ue_pool": "198.19.8.0/29"}}, "allowed_cps": ["127.0.0.1"],
            "metrics": {"address": "127.0.0.1", "port": 0},
        }),
        driver,
        manage_gc=False,
    )  # fmt: skip
    _, upf_port = await agent.start(port=0)
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    provision(url, upf_port)
    config = parse_cp_config(
        {"n4": {"address": "127.0.0.1", "port": free_udp_port()}, "database": {"url": url},
         "timers": {"t1": 0.2, "n1": 1, "heartbeat_interval": 0.3, "reassociate_interval": 0.3},
         "metrics": {"address": "127.0.0.1", "port": 0}},
        base=tmp_path,
    )  # fmt: skip
    cp: ControlPlane = await start(config, api=False)
    try:
        assert cp.metrics is not None and agent.metrics is not None
        cp_url = f"http://127.0.0.1:{cp.metrics.port}/metrics"
        up_url = f"http://127.0.0.1:{agent.metrics.port}/metrics"
        upf = cp.inventory.upf_by_node[UPF]

        async def up() -> bool:
            return upf.health == "up"

        await until(up, "the control plane associated with the UPF")
        before = await read(cp_url)
        assert before.value("fivegs_smffunction_sm_sessionnbr", upf=UPF, site=SITE, state="active") == 0
        assert before.value("pfcp_associations", upf=UPF, site=SITE, state="associated") == 1
        assert before.value("pfcp_peers_active", function="cp") == 1
        assert before.value("edgecups_cp_upf_up", upf=UPF) == 1
        assert before.value("edgecups_cp_pool_size", pool="pool-m", dnn=DNN, site=SITE, family="ipv4") == 6

        for n in (0, 1):
            assert (await cp.sessions.establish(request(n))).state == "active"
        driver.fail_next_install = DriverError("dataplane refused")
        with pytest.raises(UpfRejected):
            await cp.sessions.establish(request(2))

        after, up_side = await read(cp_url), await read(up_url)
        for seen, plane in ((after, "cp"), (up_side, "upf")):
            assert check_documented(seen, plane) == []
        # The control plane's view: sessions, the latency histogram, the pool, PFCP by type and cause.
        assert after.value("fivegs_smffunction_sm_sessionnbr", upf=UPF, site=SITE, state="active") == 2
        ok = {"result": "success", "site": SITE, "upf": UPF}
        assert after.value("edgecups_cp_session_establishment_seconds_count", **ok) == 2
        assert after.value("edgecups_cp_session_establishment_seconds_bucket", le="+Inf", **ok) == 2
        assert after.value("edgecups_cp_session_establishment_seconds_sum", **ok) > 0
        assert after.value("edgecups_cp_session_establishment_seconds_count", result="upf_rejected") == 1
        assert after.value("fivegs_smffunction_sm_pdusessioncreationreq_total") == 3
        assert after.value("fivegs_smffunction_sm_pdusessioncreationsucc_total") == 2
        assert after.value("edgecups_cp_pool_used", pool="pool-m") == 2
        sent = after.value("pfcp_messages_processed_total", function="cp", direction="tx",
                           type="session_establishment_request")  # fmt: skip
        assert sent - before.value("pfcp_messages_processed_total", function="cp", direction="tx",
                                   type="session_establishment_request") == 3  # fmt: skip
        replies = {"function": "cp", "direction": "rx", "type": "session_establishment_response"}
        assert after.value("pfcp_messages_replies_total", cause="request_accepted", **replies) == 2
        assert after.value("pfcp_messages_replies_total", cause="system_failure", **replies) == 1
        timed = {"function": "cp", "upf": UPF, "site": SITE, "remote": "127.0.0.1"}
        assert after.value("pfcp_peer_response_seconds_count", type="session_establishment_request", **timed) == 3
        assert after.value("pfcp_peer_response_seconds_count", type="heartbeat_request", **timed) >= 0
        # The UPF's own view of the same exchanges.
        assert up_side.value("fivegs_upffunction_upf_sessionnbr", upf=UPF) == 2
        mine = {"function": "up", "upf": UPF}
        assert up_side.value("pfcp_messages_processed_total", direction="rx", type="session_establishment_request",
                             **mine) == 3  # fmt: skip
        assert up_side.value("pfcp_messages_replies_total", direction="tx", type="session_establishment_response",
                             cause="system_failure", **mine) == 1  # fmt: skip
        assert up_side.value("pfcp_associations", state="associated", **mine) == 1
        assert up_side.value("edgecups_upf_agent_events_total", event="sessions established", upf=UPF) == 2

        await cp.sessions.delete(request(0).supi, 1)
        deleted, up_deleted = await read(cp_url), await read(up_url)
        assert deleted.value("fivegs_smffunction_sm_sessionnbr", upf=UPF, state="active") == 1
        assert deleted.value("edgecups_cp_pool_used", pool="pool-m") == 1
        assert up_deleted.value("fivegs_upffunction_upf_sessionnbr", upf=UPF) == 1

        # The UPF goes away: heartbeats are resent, then time out, and the association ends.
        await agent.stop()

        async def lost() -> bool:
            now = await read(cp_url)
            return (
                now.value("pfcp_messages_timeouts_total", type="heartbeat_request", **timed) >= 1
                and now.value("pfcp_peers_active", function="cp") == 0
            )

        await until(lost, "the control plane timed the UPF out")
        gone = await read(cp_url)
        assert gone.value("pfcp_messages_retransmits_total", type="heartbeat_request", **timed) >= 1
        assert gone.value("edgecups_cp_upf_up", upf=UPF) == 0
        assert gone.value("pfcp_associations", upf=UPF, state="associated") == 0
        assert gone.value("fivegs_smffunction_sm_sessionnbr", upf=UPF, state="lost") == 1
    finally:
        await cp.stop()
        await agent.stop()


def test_metrics_move_with_sessions_and_peers(tmp_path: Path) -> None:
    asyncio.run(scenario(tmp_path))

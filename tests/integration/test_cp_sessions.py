"""The control plane process with real UPF agents, on SQLite and on PostgreSQL.

Everything runs as an operator would run it: ``edgecups cp`` and ``edgecups upf`` processes in
network namespaces, sessions requested over the gRPC API, state checked in the database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from control_plane.errors import AlreadyExists, NotFound
from control_plane.services.views import ModifyRequest, SessionRequest
from db.engine import make_engine
from db.models import Event, Session, SessionRule, Upf
from tests.harness.control_plane import (
    DNN,
    SNSSAI,
    CpProcess,
    cp_config,
    cp_network,
    dn_n6,
    gnb_n3,
    provision,
    supi,
    tai,
    ue_pool,
    upf_n3,
)
from tests.harness.netns import needs_netns
from tests.harness.packets import GTPU_PORT, gpdu, ipv4_udp, udp_payload_of
from tests.harness.postgres import PostgresServer
from user_plane import gtpu

pytestmark = [pytest.mark.needs_root]


@pytest.fixture(params=["sqlite", "postgresql"])
def cp_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL the control plane can reach from its namespace (PostgreSQL by unix socket)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cp.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"edgecups_cp_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    try:
        yield server.socket_url(name)
    finally:
        server.drop_database(name)


def rows(url: str, query: Any) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query).mappings())
    finally:
        engine.dispose()


def request(n: int, i: int = 0, **kw: Any) -> SessionRequest:
    return SessionRequest(
        supi=supi(n), dnn=DNN, snssai=SNSSAI, tai=tai(i), gnb_teid=0x1000 + n, gnb_address=str(gnb_n3(i).ip), **kw
    )


@needs_netns
def test_establish_modify_delete(tmp_path: Path, cp_db_url: str) -> None:
    provision(cp_db_url, 2, subscribers=4)
    with cp_network(tmp_path, 2) as net:
        cp = CpProcess(net.ns("cp"), tmp_path, cp_config(tmp_path, cp_db_url))
        try:
            cp.wait_ready()
            _until_upfs_up(cp_db_url)

            async def scenario() -> None:
                async with cp.client() as client:
                    first = await client.establish(request(0, 0))
                    second = await client.establish(request(1, 1))
                    assert first.state == second.state == "active"
                    assert first.site == "edge0" and second.site == "edge1"  # the TAI picks the edge site
                    assert first.ue_ipv4 in {str(a) for a in ue_pool(0).hosts()}
                    assert second.ue_ipv4 in {str(a) for a in ue_pool(1).hosts()}
                    assert first.n3_address == str(upf_n3(0).ip) and first.n3_teid
                    assert first.up_seid is not None
                    # The same create again (a client that lost the answer) gets the same session.
                    assert (await client.establish(request(0, 0))).cp_seid == first.cp_seid
                    with pytest.raises(AlreadyExists):
                        await client.establish(SessionRequest(supi=supi(0), dnn=DNN, snssai="2-000002", tai=tai(0)))
                    # Handover to a new gNB F-TEID: only the downlink FAR changes.
                    moved = await client.modify(
                        supi(0), 1, ModifyRequest(gnb_teid=0x9999, gnb_address=str(gnb_n3(0).ip))
                    )
                    assert moved.gnb_teid == 0x9999 and moved.state == "active"
                    assert moved.up_seid == first.up_seid
                    deleted = await client.delete(supi(1), 1)
                    assert deleted.cp_seid == second.cp_seid
                    with pytest.raises(NotFound):
                        await client.get(supi(1), 1)

            cp.call(scenario())
        finally:
            code = cp.stop()
        assert code == 0, cp.log()
    stored = rows(cp_db_url, select(Session.__table__))
    assert [(r["supi"], r["state"], r["gnb_teid"]) for r in stored] == [(supi(0), "active", 0x9999)]
    far2 = rows(
        cp_db_url,
        select(SessionRule.body).where(SessionRule.session_id == stored[0]["id"], SessionRule.kind == "far"),
    )
    assert any(r["body"].get("ohc_teid") == 0x9999 for r in far2)
    kinds = [r["kind"] for r in rows(cp_db_url, select(Event.kind).order_by(Event.id))]
    assert "session.created" in kinds and "session.modified" in kinds and "session.deleted" in kinds


def _until_upfs_up(url: str, timeout: float = 30.0) -> None:
    """Sessions need associated UPFs: until the control plane has recorded every UPF as up."""
    _wait(lambda: {r["health"] for r in rows(url, select(Upf.health))} == {"up"}, "associated UPFs", timeout)


# -- packets: what the UPF really holds ---------------------------------------------------------

DN_PORT = 9000


class Probe:
    """A gNB socket on site 0's N3 and a DN socket on its N6, to see which sessions forward."""

    def __init__(self, net: Any) -> None:
        self.gnb = net.topology.udp_socket("gnb", bind=(str(gnb_n3(0).ip), GTPU_PORT), timeout=0.3)
        self.dn = net.topology.udp_socket("dn", bind=(str(dn_n6(0).ip), DN_PORT), timeout=0.3)

    def uplink(self, teid: int, ue: str, payload: bytes) -> bool:
        """One G-PDU from the UE; True if its payload reached the DN (a few tries: UDP)."""
        packet = gpdu(teid, ipv4_udp(IPv4Address(ue), dn_n6(0).ip, 40000, DN_PORT, payload), 9)
        for _ in range(5):
            self.gnb.sendto(packet, (str(upf_n3(0).ip), GTPU_PORT))
            try:
                while True:
                    if self.dn.recv(65535) == payload:
                        return True
            except TimeoutError:
                continue
        return False

    def downlink_ues(self, addresses: list[str], rounds: int = 3) -> set[str]:
        """The UE addresses among ``addresses`` whose downlink the UPF tunnels to the gNB."""
        seen: set[str] = set()
        for _ in range(rounds):
            for ue in addresses:
                if ue not in seen:
                    self.dn.sendto(b"probe", (ue, 40000))
            try:
                while True:
                    data = self.gnb.recv(65535)
                    _, _, offset = gtpu.decode_gpdu(data)
                    seen.add(str(udp_payload_of(data[offset:])[1]))
            except TimeoutError:
                pass
        return seen


def _states(url: str) -> list[tuple[str, str]]:
    return sorted((r["supi"], r["state"]) for r in rows(url, select(Session.supi, Session.state)))


def _wait(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@needs_netns
def test_upf_killed_and_restarted_sessions_restored(tmp_path: Path, cp_db_url: str) -> None:
    url = cp_db_url
    provision(url, 1, subscribers=3)
    with cp_network(tmp_path, 1) as net:
        cp = CpProcess(net.ns("cp"), tmp_path, cp_config(tmp_path, url))
        try:
            cp.wait_ready()
            _until_upfs_up(url)

            async def establish() -> list[Any]:
                async with cp.client() as client:
                    return [await client.establish(request(n, 0)) for n in range(3)]

            views = cp.call(establish())
            probe = Probe(net)
            for view in views:
                assert probe.uplink(view.n3_teid, view.ue_ipv4, f"before {view.supi}".encode())
            agent = net.agents[0]
            os.killpg(agent.process.pid, signal.SIGKILL)  # a crash: no PFCP goodbye
            agent.process.wait(10)
            _wait(lambda: {s for _, s in _states(url)} == {"lost"}, "sessions marked lost")
            net.start_agent(0)
            _wait(lambda: {s for _, s in _states(url)} == {"active"}, "sessions restored", timeout=40)
            restored = rows(url, select(Session.supi, Session.epoch, Session.n3_teid).order_by(Session.supi))
            assert [r["epoch"] for r in restored] == [2, 2, 2]  # established twice: once, then restored
            assert [r["n3_teid"] for r in restored] == [v.n3_teid for v in views]  # CP-allocated: unchanged
            for view in views:
                assert probe.uplink(view.n3_teid, view.ue_ipv4, f"after {view.supi}".encode())
            kinds = {r["kind"] for r in rows(url, select(Event.kind))}
            assert {"upf.down", "upf.restarted", "session.restored"} <= kinds
        finally:
            assert cp.stop() == 0, cp.log()


@needs_netns
def test_cp_sigkill_during_establishments_leaves_no_orphan(tmp_path: Path, cp_db_url: str) -> None:
    """SIGKILL in the middle of 200 establishments, restart: every session is active on the
    UPF and in the database, or absent from both (checked with real downlink packets)."""
    url = cp_db_url
    total = 200
    provision(url, 1, subscribers=total)
    with cp_network(tmp_path, 1) as net:
        config = cp_config(tmp_path, url)
        cp = CpProcess(net.ns("cp"), tmp_path, config)
        cp.wait_ready()
        _until_upfs_up(url)
        answered: list[str] = []

        async def establish_until_killed() -> None:
            async with cp.client() as client:
                gate = asyncio.Semaphore(16)

                async def one(n: int) -> None:
                    async with gate:
                        try:
                            await client.establish(request(n, 0))
                        except Exception:
                            return
                        answered.append(supi(n))
                        if len(answered) == 60:
                            cp.kill()  # mid-way: others are in the store, on the wire, or queued

                await asyncio.gather(*(one(n) for n in range(total)))

        cp.call(establish_until_killed())
        assert 60 <= len(answered) < total
        cp = CpProcess(net.ns("cp"), tmp_path, config, log_name="cp-restarted.log")
        try:
            cp.wait_ready()
            settled = ("active",)
            _wait(lambda: {s for _, s in _states(url)} <= set(settled), "reconciliation", timeout=40)
            in_db = {r["ue_ipv4"]: r["supi"] for r in rows(url, select(Session.ue_ipv4, Session.supi))}
            assert set(answered) <= set(in_db.values())  # what a client was told exists, exists
            candidates = [str(a) for a in list(ue_pool(0).hosts())[: total + 20]]
            on_upf = Probe(net).downlink_ues(candidates)
            assert on_upf == set(in_db), (sorted(on_upf ^ set(in_db)), cp.log())
        finally:
            assert cp.stop() == 0, cp.log()


@needs_netns
def test_ue_moves_to_another_site_and_its_session_follows(tmp_path: Path, cp_db_url: str) -> None:
    provision(cp_db_url, 2, subscribers=1)
    with cp_network(tmp_path, 2) as net:
        cp = CpProcess(net.ns("cp"), tmp_path, cp_config(tmp_path, cp_db_url))
        try:
            cp.wait_ready()
            _until_upfs_up(cp_db_url)

            async def scenario() -> tuple[Any, Any]:
                async with cp.client() as client:
                    before = await client.establish(request(0, 0))
                    after = await client.modify(
                        supi(0), 1, ModifyRequest(tai=tai(1), gnb_teid=0x77, gnb_address=str(gnb_n3(1).ip))
                    )
                    return before, after

            before, after = cp.call(scenario())
        finally:
            assert cp.stop() == 0, cp.log()
    assert (before.site, after.site) == ("edge0", "edge1")
    assert after.state == "active" and after.tai == tai(1) and after.gnb_teid == 0x77
    assert after.ue_ipv4 in {str(a) for a in ue_pool(1).hosts()}  # the new site's pool (SSC mode 2)
    assert after.n3_address == str(upf_n3(1).ip)
    stored = rows(cp_db_url, select(Session.__table__))
    assert [(r["supi"], r["ue_ipv4"], r["state"]) for r in stored] == [(supi(0), after.ue_ipv4, "active")]
    kinds = [r["kind"] for r in rows(cp_db_url, select(Event.kind).order_by(Event.id))]
    assert "session.relocated" in kinds

"""The control plane process with real UPF agents, on SQLite and on PostgreSQL.

Everything runs as an operator would run it: ``edgecups cp`` and ``edgecups upf`` processes in
network namespaces, sessions requested over the gRPC API, state checked in the database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from control_plane.errors import AlreadyExists, NotFound
from control_plane.services.views import ModifyRequest, SessionRequest
from db.engine import make_engine
from db.models import Event, Session, SessionRule
from tests.harness.control_plane import (
    DNN,
    SNSSAI,
    CpProcess,
    cp_config,
    cp_network,
    gnb_n3,
    provision,
    supi,
    tai,
    ue_pool,
    upf_n3,
)
from tests.harness.netns import needs_netns
from tests.harness.postgres import PostgresServer

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
        yield f"postgresql+psycopg://{server.user}@/{name}?host={server.directory}&port={server.port}"
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

            async def scenario() -> None:
                async with cp.client() as client:
                    await _until_upfs_up(client)
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


async def _until_upfs_up(client: Any, timeout: float = 20.0) -> None:
    """Sessions need associated UPFs: retry an establishment-free probe until the CP has them."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        try:
            await client.list_sessions(limit=1)
            await asyncio.sleep(1.5)  # associations come up within a few reassociate intervals
            return
        except Exception:
            await asyncio.sleep(0.2)
    raise AssertionError("control plane not ready")

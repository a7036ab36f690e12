"""Inventory.refresh: the live inventory follows the database without losing what sessions hold."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, insert, update

from control_plane import repo
from control_plane.inventory import Inventory, PolicyRecord, Refresh
from db.engine import make_engine
from db.models import IpPool, Site, Upf
from tests.harness.control_plane import provision, upf_n4


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    provision(url, 2)  # edge0/edge1, one UPF and one pool (198.19.0.0/18, 198.19.64.0/18) each
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _load(engine: Engine) -> Inventory:
    with engine.begin() as conn:
        return Inventory.load(conn)


def _refresh(engine: Engine, inventory: Inventory, held_pools: tuple[int, ...] = ()) -> Refresh:
    with engine.begin() as conn:
        return inventory.refresh(Inventory.read(conn, held_pools))


def _session(engine: Engine, seid: int, ip: str, pool_id: int, upf_id: int) -> None:
    values = {
        "supi": f"imsi-00101000000{seid:04d}", "pdu_session_id": 1, "dnn": "internet", "snssai": "1-000001",
        "tai": "001-01-000001", "ue_ipv4": ip, "pool_v4_id": pool_id, "upf_id": upf_id, "cp_seid": seid,
        "n3_teid": seid, "state": "active", "epoch": 1,
    }  # fmt: skip
    with engine.begin() as conn:
        repo.insert_session(conn, values, [])


def test_unchanged_upfs_and_pools_keep_their_records_and_allocations(engine: Engine) -> None:
    inv = _load(engine)
    upf = inv.upf_by_node[str(upf_n4(0).ip)]
    pool = inv.pools[1]
    address = pool.allocator.allocate()  # an establishment in flight: in memory only
    teid = upf.teids.allocate()
    upf.load, upf.health, upf.features = 1, "up", frozenset({"FTUP"})
    with engine.begin() as conn:
        conn.execute(update(Upf).where(Upf.id == upf.id).values(capacity=5))
        conn.execute(update(Site).where(Site.name == "edge0").values(tais=["001-01-000001", "001-01-000099"]))
    done = _refresh(engine, inv)
    assert inv.upf_by_node[upf.node_id] is upf and inv.upfs[upf.id] is upf
    assert upf.capacity == 5 and upf.site_tais == frozenset({"001-01-000001", "001-01-000099"})
    # Live state and allocations are the record's, not the database's: kept.
    assert (upf.load, upf.health, upf.features) == (1, "up", frozenset({"FTUP"}))
    assert upf.teids.is_allocated(teid)
    assert inv.pools[1].allocator is pool.allocator and pool.allocator.is_allocated(address)
    assert done == Refresh()  # nothing added, removed or moved


def test_added_removed_and_moved_upfs_are_reported(engine: Engine) -> None:
    inv = _load(engine)
    kept, removed = inv.upf_by_node[str(upf_n4(0).ip)], inv.upf_by_node[str(upf_n4(1).ip)]
    old_peer = kept.peer
    with engine.begin() as conn:
        conn.execute(delete(IpPool).where(IpPool.site_id == 2))
        conn.execute(delete(Upf).where(Upf.id == removed.id))
        conn.execute(update(Upf).where(Upf.id == kept.id).values(n4_port=8806))
        conn.execute(
            insert(Upf).values(
                node_id="upf-new", n4_address="198.18.12.2", site_id=2, n3_addresses=["198.18.22.1"],
                network_instances=["internet"], snssais=[], capacity=10,
            )
        )  # fmt: skip
    done = _refresh(engine, inv)
    new = inv.upf_by_node["upf-new"]
    # SQLite gave the new UPF the deleted one's id: still another UPF, with a record of its own.
    assert new.id == removed.id and new is not removed
    assert done.added == [new] and new.health == "unknown" and new.load == 0
    assert done.removed == [removed] and removed.node_id not in inv.upf_by_node
    assert done.moved == [(kept, old_peer)] and kept.peer == (old_peer[0], 8806)
    assert set(inv.pools) == {1}
    assert inv.site_pools == {"edge0": frozenset({"internet"}), "edge1": frozenset()}


def test_a_pool_with_a_new_prefix_gets_a_new_allocator_holding_the_sessions_addresses(engine: Engine) -> None:
    inv = _load(engine)
    upf_id = inv.upf_by_node[str(upf_n4(0).ip)].id
    for seid, ip in ((1, "198.19.0.1"), (2, "198.19.1.7")):
        inv.pools[1].allocator.reserve(ip)
        _session(engine, seid, ip, 1, upf_id)
    old = inv.pools[1].allocator
    with engine.begin() as conn:
        conn.execute(update(IpPool).where(IpPool.id == 1).values(cidr="198.19.0.0/17"))
    _refresh(engine, inv, held_pools=(1,))
    new = inv.pools[1].allocator
    assert new is not old and (new.cidr, new.used) == ("198.19.0.0/17", 2)
    assert new.is_allocated("198.19.0.1") and new.is_allocated("198.19.1.7")
    assert new.allocate() == "198.19.0.2"  # never one a session holds
    assert inv.pools[2].allocator.cidr == "198.19.64.0/18"


def test_drained_state_and_policies_follow_the_database(engine: Engine) -> None:
    inv = _load(engine)
    upf = inv.upf_by_node[str(upf_n4(0).ip)]
    with engine.begin() as conn:
        conn.execute(update(Upf).where(Upf.id == upf.id).values(admin_state="drained"))
    old_policy = inv.policy_by_name["default"]
    _refresh(engine, inv)
    assert upf.admin_state == "drained"
    assert {c.node_id: c.admin_state for c in inv.candidates()}[upf.node_id] == "drained"
    assert inv.policy_by_name["default"] == old_policy  # rebuilt, equal


def _policy(policy_id: int, dnn: str, snssai: str) -> PolicyRecord:
    return PolicyRecord(policy_id, f"p{policy_id}", dnn, snssai, 9, 9, 1000, 1000, None, None, True, False, ())


def test_a_subscribers_policy_applies_only_to_its_dnn() -> None:
    inventory = Inventory()
    for policy in (_policy(1, "internet", "*"), _policy(2, "internet", "1-00000a"), _policy(3, "mec", "*")):
        inventory.policies[policy.id] = policy
    own = _policy(4, "mec", "2")
    inventory.policies[own.id] = own

    assert inventory.policy_for("mec", "2", own.id) is own
    assert inventory.policy_for("mec", "1", own.id) is own
    # The subscriber's policy is for "mec": its sessions of other DNNs get their DNN's policy.
    assert inventory.policy_for("internet", "2", own.id) is inventory.policies[1]
    assert inventory.policy_for("mec", "1", None) is inventory.policies[3]
    assert inventory.policy_for("internet", "1-00000a", None) is inventory.policies[2]
    assert inventory.policy_for("intranet", "1", None) is None

"""Bring a UPF's sessions to their desired state: after association, restart or loss.

The database says what each UPF should hold; this module makes it so (the
KVScheduler idea applied to a whole PFCP peer). It runs when an association with
a UPF comes up, which covers every case:

* **Control plane restarted** (the UPF kept its sessions: we associate with our
  unchanged Recovery Time Stamp and PFCP Session Retention Information, §6.2.6.2.2):
  only sessions a crash caught half-way are touched. ``establishing``,
  ``modifying`` and ``restoring`` rows are established again with their desired
  rules: a UPF that still holds one from before replaces it (same CP F-SEID), so
  the outcome is the same whether or not the first request arrived. ``deleting``
  rows are deleted (an unconfirmed one first re-established, to learn its UP SEID).
* **UPF restarted** (new Recovery Time Stamp: it lost everything, TS 23.007 §19A):
  every session of the UPF is established again, as open5gs does on a new
  Recovery Time Stamp. CP-allocated F-TEIDs are unchanged, so the gNBs' tunnels
  stay valid; F-TEIDs the UPF chose (CH) may change and are recorded.
* **UPF lost** (heartbeats unanswered): its sessions become ``lost``; those whose
  policy allows failover are established on another healthy UPF of the same site
  (same UE address: the site's pool). When the lost UPF comes back unchanged, its
  ``lost`` sessions are ``active`` again; what moved away is deleted on it.

Each session is handled under its procedure lock, at most ``CONCURRENCY`` at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from functools import partial
from typing import TYPE_CHECKING, Any

import pfcp
from pfcp.aio import RequestTimeout

from .. import repo
from ..domain.rules import SessionRules
from ..domain.selection import NoUpfAvailable, select_upf
from ..inventory import UpfRecord
from ..n4 import build, handle
from .desired import cp_allocates_teid, desired_rules

if TYPE_CHECKING:
    from .sessions import SessionManager

__all__ = ["CONCURRENCY", "fail_over", "mark_lost", "reconcile_upf"]

log = logging.getLogger("control_plane.reconcile")

CONCURRENCY = 64
_ACCEPTED = int(pfcp.CauseValue.REQUEST_ACCEPTED)
_GONE = int(pfcp.CauseValue.SESSION_CONTEXT_NOT_FOUND)
_TRANSITIONAL = ("establishing", "modifying", "restoring", "deleting", "lost")


async def reconcile_upf(manager: SessionManager, upf: UpfRecord, *, restarted: bool) -> Counter[str]:
    """Make ``upf`` hold what the database says; returns what was done, by outcome."""
    states = None if restarted else list(_TRANSITIONAL)
    rows = await manager.store.run(lambda c: repo.sessions_of_upf(c, upf.id, states))
    stale = await manager.store.run(lambda c: repo.stale_sessions(c, upf.id))
    done: Counter[str] = Counter()
    for stale_id, up_seid in stale:
        if not restarted:
            await _delete_on(manager, upf, up_seid)
        await manager.store.run(partial(repo.forget_stale_session, stale_id=stale_id))
        done["stale deleted"] += 1
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(row: Any) -> None:
        async with gate:
            key = (row["supi"], row["pdu_session_id"])
            with manager._held(key) as lock:
                async with lock:
                    fresh = await manager.store.run(lambda c: repo.session_by_key(c, *key))
                    if fresh is None or fresh["upf_id"] != upf.id:
                        return
                    try:
                        done[await _settle(manager, upf, dict(fresh), restarted)] += 1
                    except (RequestTimeout, ConnectionError) as exc:
                        done["no answer"] += 1
                        log.warning("UPF %s: session %s not settled: %s", upf.node_id, key, exc)

    await asyncio.gather(*(one(row) for row in rows))
    if done:
        log.info("UPF %s reconciled (%s): %s", upf.node_id, "restarted" if restarted else "kept", dict(done))
    return done


async def _settle(manager: SessionManager, upf: UpfRecord, row: dict[str, Any], restarted: bool) -> str:
    state = row["state"]
    if state == "deleting":
        if not restarted:
            # Unconfirmed (no UP SEID): establish it again to learn the UP SEID it is held
            # under (the UPF replaces a session with the same CP F-SEID), then delete that.
            if row["up_seid"] is None:
                await _establish(manager, upf, row)  # refreshes row["up_seid"] when accepted
            if row["up_seid"] is not None:
                await _delete_on(manager, upf, row["up_seid"])
        await manager.store.run(lambda c: _finish_delete(c, row))
        manager.release_row(row)
        return "deleted"
    if state == "lost" and not restarted:
        await manager._update(row, {"state": "active"}, event="session.recovered")
        return "recovered"
    if state == "active" and not restarted:
        return "kept"
    cause = await _establish(manager, upf, row)
    if cause == _ACCEPTED:
        return "restored" if restarted or state in ("lost", "restoring") else "completed"
    await manager.store.run(lambda c: _finish_delete(c, row, event="session.restore_failed", cause=cause))
    manager.release_row(row)
    return f"dropped (cause {cause})"


async def _establish(manager: SessionManager, upf: UpfRecord, row: dict[str, Any]) -> int:
    """Send the row's desired rules in an Establishment Request; record the answer."""
    rules = SessionRules.from_rows(await manager.store.run(lambda c: repo.session_rules(c, row["id"])))
    if not cp_allocates_teid(upf) or row["n3_teid"] is None:
        policy = manager.inventory.policies.get(row["policy_id"])
        if policy is not None:
            rules = desired_rules(manager.inventory, upf, policy, {**row, "n3_teid": None})
    response = await manager.install(row, upf, rules)
    return handle.cause_of(response)


async def _delete_on(manager: SessionManager, upf: UpfRecord, up_seid: int) -> None:
    response = await manager.n4.request(upf, build.deletion_request(up_seid=up_seid))
    cause = handle.cause_of(response)
    if cause not in (_ACCEPTED, _GONE):
        log.warning("UPF %s refused to delete UP SEID %#x: cause %d", upf.node_id, up_seid, cause)


def _finish_delete(conn: Any, row: dict[str, Any], *, event: str = "session.deleted", cause: int | None = None) -> None:
    repo.delete_session(conn, row["id"])
    detail: dict[str, Any] = {"cp_seid": row["cp_seid"]}
    if cause is not None:
        detail["cause"] = cause
    repo.insert_event(conn, event, session_id=row["id"], supi=row["supi"], detail=detail)


async def mark_lost(manager: SessionManager, upf: UpfRecord) -> int:
    """The UPF stopped answering: its active sessions become ``lost``; returns how many."""
    return await manager.store.run(lambda c: repo.mark_upf_sessions(c, upf.id, "active", "lost"))


async def fail_over(manager: SessionManager, upf: UpfRecord) -> Counter[str]:
    """Move ``lost`` sessions whose policy allows it to another UPF of the same site."""
    inv = manager.inventory
    rows = await manager.store.run(lambda c: repo.sessions_of_upf(c, upf.id, ["lost"]))
    done: Counter[str] = Counter()
    for row in rows:
        policy = inv.policies.get(row["policy_id"])
        if policy is None or not policy.failover:
            continue
        same_site = [c for c in inv.candidates() if c.site == upf.site]
        try:
            target = inv.upfs[
                select_upf(
                    same_site, dnn=row["dnn"], snssai=row["snssai"], tai=row["tai"], exclude=frozenset({upf.node_id})
                ).id
            ]
        except NoUpfAvailable as exc:
            done["no other UPF"] += 1
            log.warning("session %s/%s stays lost: %s", row["supi"], row["pdu_session_id"], exc.reason)
            continue
        key = (row["supi"], row["pdu_session_id"])
        with manager._held(key) as lock:
            async with lock:
                done[await _move(manager, upf, target, dict(row))] += 1
    return done


async def _move(manager: SessionManager, old: UpfRecord, new: UpfRecord, row: dict[str, Any]) -> str:
    teid = new.teids.allocate() if cp_allocates_teid(new) else None
    changes: dict[str, Any] = {
        "upf_id": new.id,
        "state": "restoring",
        "up_seid": None,
        "n3_teid": teid,
        "n3_address": new.n3_address() if teid is not None else None,
    }
    policy = manager.inventory.policies[row["policy_id"]]
    rules = desired_rules(manager.inventory, new, policy, {**row, **changes})
    old_up_seid, old_teid = row["up_seid"], row["n3_teid"]
    await manager.store.run(lambda c: repo.add_stale_session(c, old.id, old_up_seid, row["cp_seid"]))
    await manager._update(row, changes, rules=rules, event="session.failover")
    old.load -= 1
    new.load += 1
    if old_teid is not None and old.teids.is_allocated(old_teid):
        old.teids.release(old_teid)
    try:
        cause = await _establish(manager, new, row)
    except (RequestTimeout, ConnectionError):
        return "no answer"
    return "moved" if cause == _ACCEPTED else f"failed (cause {cause})"

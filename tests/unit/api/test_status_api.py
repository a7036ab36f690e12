"""edgecups.v1.StatusService (Status, Watch) and the live effects of provisioning (drain, associations).

Same harness as test_provisioning_api.py: a real control plane on a fresh SQLite database,
real gRPC on loopback. A bare PFCP node stands in for a UPF where an association is needed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest

import pfcp
from control_plane import errors
from control_plane.api.client import SessionClient
from control_plane.api.generated.edgecups.v1 import provisioning_pb2 as pb
from control_plane.api.generated.edgecups.v1 import status_pb2 as spb
from control_plane.domain.selection import NoUpfAvailable, select_upf
from control_plane.provisioning.feed import EventFeed
from control_plane.services.views import SessionRequest
from db.models import Event
from pfcp.aio import PfcpNode
from pfcp.association import AssociationState
from pfcp.endpoint import EndpointConfig
from tests.unit.api.test_provisioning_api import (
    BASE,
    TAI,
    Api,
    dnn,
    eventually,
    fails,
    free_udp_port,
    insert_session,
    run,
    site,
    subscriber,
    upf,
)


async def next_event(call: grpc.aio.UnaryStreamCall[spb.WatchRequest, spb.Event]) -> spb.Event:
    event = await asyncio.wait_for(call.read(), 10)
    assert isinstance(event, spb.Event), event
    return event


async def watching(api: Api, count: int) -> None:
    await eventually(lambda: api.cp.events.watchers == count, f"{count} watchers")


# --- Status -----------------------------------------------------------------------------------


def test_status_counts_sessions_by_state_per_upf_and_in_all(tmp_path: Path) -> None:
    async def scenario(api: Api) -> None:
        await api.apply(*BASE, upf("upf-b", port=8806, capacity=50))
        for ip, state in (("10.45.0.1", "active"), ("10.45.0.2", "active"), ("10.45.0.3", "lost")):
            await insert_session(api, ip=ip, state=state)
        await api.prov.Drain(pb.DrainRequest(upf="upf-b"))
        status = await api.status.Status(spb.StatusRequest())
        a, b = status.upfs
        assert (a.node_id, a.site, a.capacity, a.admin_state, dict(a.sessions)) == (
            "upf-a", "edge-a", 100, "enabled", {"active": 2, "lost": 1},
        )  # fmt: skip
        assert a.association in ("idle", "setup-sent") and a.health in ("unknown", "down")
        assert not a.HasField("recovery_time_stamp") and list(a.features) == []
        assert (b.node_id, b.admin_state, dict(b.sessions)) == ("upf-b", "drained", {})
        totals = status.totals
        assert (totals.upfs, totals.associated, totals.drained, totals.capacity) == (2, 0, 1, 150)
        assert dict(totals.sessions) == {"active": 2, "lost": 1}

    run(tmp_path, scenario)


# --- drain, undrain ---------------------------------------------------------------------------


def test_drain_takes_upfs_out_of_selection_at_once_and_undrain_brings_them_back(tmp_path: Path) -> None:
    async def scenario(api: Api) -> None:
        await api.apply(*BASE, upf("upf-b", port=8806), site("edge-b", tais=("001-01-000002",)))
        await api.apply(upf("upf-c", at="edge-b", port=8807))
        for record in api.cp.inventory.upfs.values():
            record.health = "up"  # as if associated: selection then turns on the admin state alone

        def selected() -> str:
            return select_upf(api.cp.inventory.candidates(), dnn="internet", snssai="1-000001", tai=TAI).node_id

        assert selected() in ("upf-a", "upf-b")
        drained = await api.prov.Drain(pb.DrainRequest(site="edge-a"))
        assert [(r.name, r.upf.admin_state) for r in drained.upfs] == [("upf-a", "drained"), ("upf-b", "drained")]
        with pytest.raises(NoUpfAvailable, match="drained"):
            selected()
        # A session request from edge-a's area now finds no UPF (edge-b does not serve its TAI).
        async with SessionClient(api.target, credentials=api.credentials) as client:
            request = SessionRequest(supi="imsi-001010000000001", dnn="internet", snssai="1-000001", tai=TAI)
            with pytest.raises(errors.Unavailable):
                await client.establish(request)
        undrained = await api.prov.Undrain(pb.DrainRequest(upf="upf-b"))
        assert [(r.name, r.upf.admin_state) for r in undrained.upfs] == [("upf-b", "enabled")]
        assert selected() == "upf-b"
        assert (await api.get("UPF", "upf-a")).upf.admin_state == "drained"
        again = await api.prov.Drain(pb.DrainRequest(upf="upf-a"))  # already drained: nothing to write
        assert again.upfs[0].upf.admin_state == "drained"
        assert [k for k in await api.event_kinds() if k.startswith("upf.") and "drain" in k] == [
            "upf.drained", "upf.drained", "upf.undrained",
        ]  # fmt: skip
        await fails(api.prov.Drain(pb.DrainRequest(upf="upf-z")), grpc.StatusCode.NOT_FOUND, "upf")
        await fails(api.prov.Undrain(pb.DrainRequest(site="edge-z")), grpc.StatusCode.NOT_FOUND, "site")
        await fails(api.prov.Drain(pb.DrainRequest()), grpc.StatusCode.INVALID_ARGUMENT, "upf")

    run(tmp_path, scenario)


# --- associations follow provisioning ---------------------------------------------------------


async def fake_upf(port: int) -> PfcpNode:
    """A bare PFCP node at 127.0.0.3:``port`` that accepts associations and answers heartbeats."""
    node = PfcpNode(
        EndpointConfig(
            node_id=pfcp.NodeID("upf.test"),
            recovery_time_stamp=pfcp.RecoveryTimeStamp.from_unix(1_700_000_000),
            up_function_features=pfcp.UPFunctionFeatures(pfcp.UPFeatures.FTUP),
        )
    )
    await node.start("127.0.0.3", port)
    return node


def _associated(node: PfcpNode) -> bool:
    return any(a.state is AssociationState.ASSOCIATED for a in node.endpoint.associations())


def test_a_new_upf_is_associated_a_moved_one_follows_and_a_deleted_one_is_released(tmp_path: Path) -> None:
    async def scenario(api: Api) -> None:
        first, second = await fake_upf(free_udp_port()), await fake_upf(free_udp_port())
        try:
            assert first.local_address is not None and second.local_address is not None
            await api.apply(site(), dnn(), upf(address="127.0.0.3", port=first.local_address[1]))
            await eventually(lambda: _associated(first), "the association with the new UPF")
            await eventually(lambda: api.cp.inventory.upf_by_node["upf-a"].health == "up", "health up")
            got = await api.get("UPF", "upf-a")
            assert (got.upf.association, got.upf.health, list(got.upf.features)) == ("associated", "up", ["FTUP"])
            assert got.upf.recovery_time_stamp == 1_700_000_000
            status = await api.status.Status(spb.StatusRequest())
            assert status.totals.associated == 1
            # The UPF moves to another N4 port: released at the old one, associated at the new.
            await api.apply(upf(address="127.0.0.3", port=second.local_address[1]))
            await eventually(lambda: _associated(second) and not _associated(first), "the move")
            await api.prov.Delete(pb.DeleteResourceRequest(kind="UPF", name="upf-a"))
            await eventually(lambda: not _associated(second), "the release")
        finally:
            first.close()
            second.close()

    run(tmp_path, scenario)


# --- Watch ------------------------------------------------------------------------------------


def test_watch_streams_events_as_they_are_recorded(tmp_path: Path) -> None:
    async def scenario(api: Api) -> None:
        await api.apply(site("old"))  # before the watch: not streamed
        call = api.status.Watch(spb.WatchRequest(kinds=["site", "upf.drained"]))
        also = api.status.Watch(spb.WatchRequest())
        await watching(api, 2)
        await api.apply(*BASE)
        event = await next_event(call)
        assert (event.kind, event.upf, event.HasField("supi")) == ("site.created", "", False)
        detail = json.loads(event.detail)
        assert (detail["name"], detail["fields"]["tais"]["new"]) == ("edge-a", ["001-01-000001"])
        assert event.at.seconds > 0
        await api.prov.Drain(pb.DrainRequest(upf="upf-a"))
        drained = await next_event(call)
        assert (drained.kind, drained.upf) == ("upf.drained", "upf-a") and drained.id > event.id
        # The other watcher, unfiltered, sees every one of them from the same poll.
        kinds = [(await next_event(also)).kind for _ in range(len(BASE) + 1)]
        assert kinds == [
            "site.created", "upf.created", "dnn.created", "pool.created", "policy.created", "subscriber.created",
            "upf.drained",
        ]  # fmt: skip
        call.cancel()
        also.cancel()
        await watching(api, 0)  # the poller stops with the last watcher

    run(tmp_path, scenario)


def test_watch_replays_from_since_id_then_goes_live(tmp_path: Path) -> None:
    async def scenario(api: Api) -> None:
        await api.apply(*BASE)
        ids = [row["id"] for row in await api.rows(Event)]
        everything = api.status.Watch(spb.WatchRequest(since_id=0))
        assert [(await next_event(everything)).id for _ in ids] == ids
        later = api.status.Watch(spb.WatchRequest(since_id=ids[2], kinds=["pool", "subscriber"]))
        assert [(await next_event(later)).kind for _ in range(2)] == ["pool.created", "subscriber.created"]
        await watching(api, 2)
        await api.apply(site("edge-b"), upf("upf-b", at="edge-b", port=8806))
        assert [(await next_event(everything)).kind for _ in range(2)] == ["site.created", "upf.created"]
        await api.apply(subscriber("imsi-001010000000009"))
        assert (await next_event(later)).kind == "subscriber.created"  # the filter skipped site and upf
        everything.cancel()
        later.cancel()
        await fails(api.status.Watch(spb.WatchRequest(kinds=[""])).read(), grpc.StatusCode.INVALID_ARGUMENT, "kinds[0]")

    run(tmp_path, scenario)


def test_a_replay_sees_every_committed_event_while_another_watcher_is_live(tmp_path: Path) -> None:
    async def scenario(api: Api) -> None:
        live = api.status.Watch(spb.WatchRequest())  # keeps the shared poller running
        await watching(api, 1)
        await api.apply(*BASE)  # committed just now: the poller may not have read them yet
        ids = [row["id"] for row in await api.rows(Event)]
        replayed = [event.id async for event in api.status.Watch(spb.WatchRequest(since_id=0, replay_only=True))]
        assert replayed == ids
        live.cancel()

    run(tmp_path, scenario)


def test_a_watcher_that_falls_behind_is_told_to_resume(tmp_path: Path) -> None:
    async def scenario(api: Api) -> None:
        feed = EventFeed(api.cp.store, interval=0.05, backlog=2)
        stream = feed.watch()
        first = asyncio.ensure_future(anext(stream))
        await eventually(lambda: feed.watchers == 1, "the watcher")
        await api.apply(*(site(f"s{n}") for n in range(4)))  # four events at once, room for two
        # The poller hands a whole read to the queue at once: by the first event, the rest overflowed.
        assert (await asyncio.wait_for(first, 10)).kind == "site.created"
        with pytest.raises(errors.ResourceExhausted, match="since_id="):
            await anext(stream)
        assert feed.watchers == 0
        await feed.close()

    run(tmp_path, scenario)

"""The StatusService servicer: Status (the UPFs now) and Watch (events as they happen)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc.aio
from google.protobuf.timestamp_pb2 import Timestamp

from control_plane.api import validate
from control_plane.api.generated.edgecups.v1 import status_pb2 as pb
from control_plane.api.generated.edgecups.v1 import status_pb2_grpc as pb_grpc
from control_plane.api.status import abort_internal, abort_with, answer
from control_plane.errors import CpError
from control_plane.inventory import Inventory
from control_plane.n4.peers import AssociationManager
from control_plane.provisioning.feed import EventFeed, EventView
from control_plane.provisioning.status import StatusView, status
from control_plane.store import Store

__all__ = ["StatusServicer", "event_to_proto", "status_to_proto"]

_Context = grpc.aio.ServicerContext[Any, Any]


def status_to_proto(view: StatusView) -> pb.StatusResponse:
    return pb.StatusResponse(
        upfs=[
            pb.UpfStatus(
                node_id=upf.node_id,
                site=upf.site,
                association=upf.association,
                health=upf.health,
                features=upf.features,
                recovery_time_stamp=upf.recovery_time_stamp,
                sessions=upf.sessions,
                capacity=upf.capacity,
                admin_state=upf.admin_state,
            )
            for upf in view.upfs
        ],
        totals=pb.StatusTotals(
            upfs=len(view.upfs),
            associated=view.associated,
            drained=view.drained,
            sessions=view.sessions,
            capacity=view.capacity,
        ),
    )


def event_to_proto(event: EventView) -> pb.Event:
    at = Timestamp()
    at.FromDatetime(event.at)
    return pb.Event(
        id=event.id,
        at=at,
        kind=event.kind,
        supi=event.supi,
        upf=event.upf,
        session_id=event.session_id,
        # default=str: details hold what procedures recorded (a datetime would not be JSON).
        detail=json.dumps(event.detail, sort_keys=True, default=str),
    )


class StatusServicer(pb_grpc.StatusServiceServicer):
    """edgecups.v1.StatusService over the running control plane's inventory, store and event feed."""

    def __init__(
        self, store: Store, inventory: Inventory, associations: AssociationManager | None, feed: EventFeed
    ) -> None:
        self._store = store
        self._inventory = inventory
        self._associations = associations
        self._feed = feed

    async def Status(self, request: pb.StatusRequest, context: _Context) -> pb.StatusResponse:
        async def call() -> pb.StatusResponse:
            return status_to_proto(await status(self._store, self._inventory, self._associations))

        return await answer(context, "Status", call)

    async def Watch(self, request: pb.WatchRequest, context: _Context) -> AsyncIterator[pb.Event]:
        # A stream cannot go through answer(): the errors come between the messages.
        try:
            kinds = [validate.name(kind, f"kinds[{i}]") for i, kind in enumerate(request.kinds)]
            since_id = request.since_id if request.HasField("since_id") else None
            async for event in self._feed.watch(kinds, since_id, replay_only=request.replay_only):
                yield event_to_proto(event)
        except CpError as error:
            await abort_with(context, error)
        except Exception:
            await abort_internal(context, "Watch")

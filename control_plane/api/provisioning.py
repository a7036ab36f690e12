"""The ProvisioningService servicer: convert, call the Provisioning service, map errors.

Every decision (validation, references, dependants) is the service's
(:mod:`control_plane.provisioning`); this layer turns messages into plain values
and CpErrors into gRPC status codes with the field at fault in the trailers.
"""

from __future__ import annotations

from typing import Any, TypeVar

import grpc.aio

from control_plane.api.generated.edgecups.v1 import provisioning_pb2 as pb
from control_plane.api.generated.edgecups.v1 import provisioning_pb2_grpc as pb_grpc
from control_plane.api.resources import (
    change_to_proto,
    decode_page_token,
    encode_page_token,
    resource_from_proto,
    resource_to_proto,
)
from control_plane.api.status import answer
from control_plane.provisioning import Provisioning
from control_plane.provisioning.objects import canonical_kind

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "ProvisioningServicer"]

#: Objects per List page when the request says 0, and the most a page holds.
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

_Context = grpc.aio.ServicerContext[Any, Any]
_T = TypeVar("_T")


class ProvisioningServicer(pb_grpc.ProvisioningServiceServicer):
    """edgecups.v1.ProvisioningService over a :class:`~control_plane.provisioning.Provisioning`."""

    def __init__(self, provisioning: Provisioning) -> None:
        self._provisioning = provisioning

    async def Apply(self, request: pb.ApplyRequest, context: _Context) -> pb.ApplyResponse:
        async def call() -> pb.ApplyResponse:
            resources = [resource_from_proto(r, f"resources[{i}]") for i, r in enumerate(request.resources)]
            changes = await self._provisioning.apply(resources, dry_run=request.dry_run)
            return pb.ApplyResponse(changes=[change_to_proto(change) for change in changes])

        return await answer(context, "Apply", call)

    async def Get(self, request: pb.GetResourceRequest, context: _Context) -> pb.Resource:
        async def call() -> pb.Resource:
            return resource_to_proto(await self._provisioning.get(request.kind, request.name))

        return await answer(context, "Get", call)

    async def List(self, request: pb.ListResourcesRequest, context: _Context) -> pb.ListResourcesResponse:
        async def call() -> pb.ListResourcesResponse:
            kind = canonical_kind(request.kind)
            page_size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
            # One more than a page: tells whether another page follows without a second query.
            views = await self._provisioning.list_objects(
                kind,
                site=request.site if request.HasField("site") else None,
                dnn=request.dnn if request.HasField("dnn") else None,
                limit=page_size + 1,
                after=decode_page_token(request.page_token, kind),
            )
            page = views[:page_size]
            token = encode_page_token(kind, page[-1].name) if len(views) > page_size else ""
            return pb.ListResourcesResponse(resources=[resource_to_proto(v) for v in page], next_page_token=token)

        return await answer(context, "List", call)

    async def Delete(self, request: pb.DeleteResourceRequest, context: _Context) -> pb.Resource:
        async def call() -> pb.Resource:
            return resource_to_proto(await self._provisioning.delete(request.kind, request.name))

        return await answer(context, "Delete", call)

    async def _drain(self, request: pb.DrainRequest, context: _Context, drained: bool) -> pb.DrainResponse:
        async def call() -> pb.DrainResponse:
            target = request.WhichOneof("target")
            upfs = await self._provisioning.drain(
                upf=request.upf if target == "upf" else None,
                site=request.site if target == "site" else None,
                drained=drained,
            )
            return pb.DrainResponse(upfs=[resource_to_proto(view) for view in upfs])

        return await answer(context, "Drain" if drained else "Undrain", call)

    async def Drain(self, request: pb.DrainRequest, context: _Context) -> pb.DrainResponse:
        return await self._drain(request, context, True)

    async def Undrain(self, request: pb.DrainRequest, context: _Context) -> pb.DrainResponse:
        return await self._drain(request, context, False)

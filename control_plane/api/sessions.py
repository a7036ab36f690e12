"""The SessionService servicer: validate the request, call the SessionApi, map errors.

Nothing here decides anything about sessions; every check is of a field's form
(:mod:`control_plane.api.validate`), and a field that fails it ends the call with
INVALID_ARGUMENT before the procedures are called.
"""

from __future__ import annotations

from typing import Any, TypeVar

import grpc.aio

from control_plane.api import validate
from control_plane.api.convert import decode_page_token, encode_page_token, session_to_proto, usage_to_proto
from control_plane.api.generated.edgecups.v1 import sessions_pb2 as pb
from control_plane.api.generated.edgecups.v1 import sessions_pb2_grpc as pb_grpc
from control_plane.api.status import answer
from control_plane.services.views import ModifyRequest, SessionApi, SessionRequest

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "SessionServicer"]

#: Sessions per List page when the request says 0, and the most a page holds (AIP-158 style: clamp, not refuse).
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

_Context = grpc.aio.ServicerContext[Any, Any]
_T = TypeVar("_T")


def _key(supi: str, pdu_session_id: int) -> tuple[str, int]:
    return validate.supi(supi), validate.pdu_session_id(pdu_session_id)


def _gnb_f_teid(request: pb.CreateSessionRequest | pb.ModifySessionRequest) -> tuple[int | None, str | None]:
    return validate.gnb_f_teid(
        request.gnb_teid if request.HasField("gnb_teid") else None,
        request.gnb_address if request.HasField("gnb_address") else None,
    )


def _session_request(request: pb.CreateSessionRequest) -> SessionRequest:
    supi, pdu_session_id = _key(request.supi, request.pdu_session_id if request.HasField("pdu_session_id") else 1)
    gnb_teid, gnb_address = _gnb_f_teid(request)
    return SessionRequest(
        supi=supi,
        dnn=validate.dnn(request.dnn),
        snssai=validate.snssai(request.snssai),
        tai=validate.tai(request.tai),
        pdu_session_id=pdu_session_id,
        gnb_teid=gnb_teid,
        gnb_address=gnb_address,
    )


def _modify_request(request: pb.ModifySessionRequest) -> ModifyRequest:
    gnb_teid, gnb_address = _gnb_f_teid(request)
    return ModifyRequest(
        gnb_teid=gnb_teid,
        gnb_address=gnb_address,
        tai=validate.tai(request.tai) if request.HasField("tai") else None,
        policy=validate.name(request.policy, "policy") if request.HasField("policy") else None,
    )


class SessionServicer(pb_grpc.SessionServiceServicer):
    """edgecups.v1.SessionService over a :class:`~control_plane.services.views.SessionApi`."""

    def __init__(self, api: SessionApi) -> None:
        self._api = api

    async def Create(self, request: pb.CreateSessionRequest, context: _Context) -> pb.Session:
        async def call() -> pb.Session:
            return session_to_proto(await self._api.establish(_session_request(request)))

        return await answer(context, "Create", call)

    async def Modify(self, request: pb.ModifySessionRequest, context: _Context) -> pb.Session:
        async def call() -> pb.Session:
            supi, pdu_session_id = _key(request.supi, request.pdu_session_id)
            changes = _modify_request(request)
            return session_to_proto(await self._api.modify(supi, pdu_session_id, changes))

        return await answer(context, "Modify", call)

    async def Delete(self, request: pb.DeleteSessionRequest, context: _Context) -> pb.Session:
        async def call() -> pb.Session:
            return session_to_proto(await self._api.delete(*_key(request.supi, request.pdu_session_id)))

        return await answer(context, "Delete", call)

    async def Get(self, request: pb.GetSessionRequest, context: _Context) -> pb.Session:
        async def call() -> pb.Session:
            return session_to_proto(await self._api.get(*_key(request.supi, request.pdu_session_id)))

        return await answer(context, "Get", call)

    async def List(self, request: pb.ListSessionsRequest, context: _Context) -> pb.ListSessionsResponse:
        async def call() -> pb.ListSessionsResponse:
            page_size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
            after = decode_page_token(request.page_token)
            upf = validate.name(request.upf, "upf") if request.HasField("upf") else None
            state = validate.session_state(request.state) if request.HasField("state") else None
            # One more than a page: tells whether another page follows without a second query.
            views = await self._api.list_sessions(upf=upf, state=state, limit=page_size + 1, after=after)
            page = views[:page_size]
            token = encode_page_token(page[-1].cp_seid) if len(views) > page_size else ""
            return pb.ListSessionsResponse(sessions=[session_to_proto(v) for v in page], next_page_token=token)

        return await answer(context, "List", call)

    async def Usage(self, request: pb.SessionUsageRequest, context: _Context) -> pb.SessionUsageResponse:
        async def call() -> pb.SessionUsageResponse:
            reports = await self._api.usage(*_key(request.supi, request.pdu_session_id))
            return pb.SessionUsageResponse(reports=[usage_to_proto(r) for r in reports])

        return await answer(context, "Usage", call)

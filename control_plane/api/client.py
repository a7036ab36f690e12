"""A typed client of the edgecups.v1 session service, for tests, the simulator and the CLI.

:class:`SessionClient` has the methods of :class:`~control_plane.services.views.SessionApi`
(it can stand where a SessionApi is expected) and raises the
:mod:`control_plane.errors` class the control plane raised, with its message and field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc.aio
from google.protobuf.message import Message

from control_plane.api.convert import encode_page_token, session_from_proto, usage_from_proto
from control_plane.api.generated.edgecups.v1 import sessions_pb2 as pb
from control_plane.api.generated.edgecups.v1 import sessions_pb2_grpc as pb_grpc
from control_plane.api.status import error_from_rpc
from control_plane.errors import InvalidArgument
from control_plane.services.views import ModifyRequest, SessionRequest, SessionView, UsageView

__all__ = ["SessionClient", "SessionPage"]

_M = TypeVar("_M", bound=Message)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class SessionPage:
    """One page of a List; pass ``next_page_token`` back for the next ("" after the last page)."""

    sessions: list[SessionView]
    next_page_token: str


def _message(cls: type[_M], **fields: Any) -> _M:
    # protobuf refuses values its field type cannot hold (a TEID of 2**32) with a bare ValueError;
    # set fields one by one so the error names the field, as the server's would.
    message = cls()
    for name, value in fields.items():
        if value is None:
            continue
        try:
            setattr(message, name, value)
        except (TypeError, ValueError) as error:
            raise InvalidArgument(f"{value!r} does not fit the field: {error}", field=name) from None
    return message


class SessionClient:
    """Session calls to a control plane at ``target`` ("host:port"), plaintext (loopback only, for now)."""

    def __init__(self, target: str, *, timeout: float | None = 30.0) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = pb_grpc.SessionServiceStub(self._channel)  # typed as the AsyncStub for an aio channel
        self._timeout = timeout

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close(grace=None)

    async def _call(self, call: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            raise error_from_rpc(error) from None

    async def establish(self, request: SessionRequest) -> SessionView:
        message = _message(
            pb.CreateSessionRequest,
            supi=request.supi,
            dnn=request.dnn,
            snssai=request.snssai,
            tai=request.tai,
            pdu_session_id=request.pdu_session_id,
            gnb_teid=request.gnb_teid,
            gnb_address=request.gnb_address,
        )
        return session_from_proto(await self._call(lambda: self._stub.Create(message, timeout=self._timeout)))

    async def modify(self, supi: str, pdu_session_id: int, request: ModifyRequest) -> SessionView:
        message = _message(
            pb.ModifySessionRequest,
            supi=supi,
            pdu_session_id=pdu_session_id,
            gnb_teid=request.gnb_teid,
            gnb_address=request.gnb_address,
            tai=request.tai,
            policy=request.policy,
        )
        return session_from_proto(await self._call(lambda: self._stub.Modify(message, timeout=self._timeout)))

    async def delete(self, supi: str, pdu_session_id: int) -> SessionView:
        message = _message(pb.DeleteSessionRequest, supi=supi, pdu_session_id=pdu_session_id)
        return session_from_proto(await self._call(lambda: self._stub.Delete(message, timeout=self._timeout)))

    async def get(self, supi: str, pdu_session_id: int) -> SessionView:
        message = _message(pb.GetSessionRequest, supi=supi, pdu_session_id=pdu_session_id)
        return session_from_proto(await self._call(lambda: self._stub.Get(message, timeout=self._timeout)))

    async def list_page(
        self, *, upf: str | None = None, state: str | None = None, page_size: int = 0, page_token: str = ""
    ) -> SessionPage:
        """One page of sessions (page_size 0: the server's default; it caps pages at 1000)."""
        message = _message(pb.ListSessionsRequest, page_size=page_size, page_token=page_token, upf=upf, state=state)
        response = await self._call(lambda: self._stub.List(message, timeout=self._timeout))
        return SessionPage([session_from_proto(s) for s in response.sessions], response.next_page_token)

    async def iter_sessions(
        self, *, upf: str | None = None, state: str | None = None, page_size: int = 0
    ) -> AsyncIterator[SessionView]:
        """Every session matching the filters, fetched a page at a time."""
        token = ""
        while True:
            page = await self.list_page(upf=upf, state=state, page_size=page_size, page_token=token)
            for view in page.sessions:
                yield view
            if not page.next_page_token:
                return
            token = page.next_page_token

    async def list_sessions(
        self, *, upf: str | None = None, state: str | None = None, limit: int = 100, after: int = 0
    ) -> list[SessionView]:
        """SessionApi.list_sessions over the wire: up to ``limit`` (at most 1000) sessions after CP SEID ``after``."""
        if limit < 1:
            raise InvalidArgument(f"{limit} is not a page size: expected at least 1", field="limit")
        page = await self.list_page(upf=upf, state=state, page_size=limit, page_token=encode_page_token(after))
        return page.sessions

    async def usage(self, supi: str, pdu_session_id: int) -> list[UsageView]:
        message = _message(pb.SessionUsageRequest, supi=supi, pdu_session_id=pdu_session_id)
        response = await self._call(lambda: self._stub.Usage(message, timeout=self._timeout))
        return [usage_from_proto(r) for r in response.reports]

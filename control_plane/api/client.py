"""Typed clients of the edgecups.v1 API, for tests, the simulator and the CLI.

* Each client dials the API with :func:`control_plane.api.channel.open_channel` (TLS or loopback
  plaintext, a bearer token on every call), or shares a channel given as ``channel=``.
* :class:`SessionClient` has the methods of :class:`~control_plane.services.views.SessionApi`
  (it can stand where a SessionApi is expected); :class:`ProvisioningClient` and
  :class:`StatusClient` speak the plain values of :mod:`control_plane.provisioning`.
  :class:`ApiClient` holds one channel and one client of each.
* A failed call raises the :mod:`control_plane.errors` class the control plane raised, with
  its message and field; one that got no answer raises :class:`~control_plane.api.channel.Unreachable`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import UTC
from types import TracebackType
from typing import Any, Self

import grpc
import grpc.aio
from google.protobuf.message import Message

from control_plane.api.channel import (
    ApiCredentials,
    BaseClient,
    BearerToken,
    Unreachable,
    open_channel,
    request_message,
)
from control_plane.api.convert import encode_page_token, session_from_proto, usage_from_proto
from control_plane.api.generated.edgecups.v1 import provisioning_pb2 as ppb
from control_plane.api.generated.edgecups.v1 import provisioning_pb2_grpc as ppb_grpc
from control_plane.api.generated.edgecups.v1 import sessions_pb2 as pb
from control_plane.api.generated.edgecups.v1 import sessions_pb2_grpc as pb_grpc
from control_plane.api.generated.edgecups.v1 import status_pb2 as spb
from control_plane.api.generated.edgecups.v1 import status_pb2_grpc as spb_grpc
from control_plane.api.resources import SPEC_FIELDS, resource_to_proto, spec_from_proto
from control_plane.errors import InvalidArgument
from control_plane.provisioning.feed import EventView
from control_plane.provisioning.objects import Action, Change, FieldChange, ObjectView, Resource
from control_plane.provisioning.status import StatusView, UpfStatusView
from control_plane.services.views import ModifyRequest, SessionRequest, SessionView, UsageView
from edge_sites.schema import FIELDS

__all__ = [  # the channel's names too, so callers need one import
    "ApiClient",
    "ApiCredentials",
    "BearerToken",
    "ProvisioningClient",
    "SessionClient",
    "SessionPage",
    "StatusClient",
    "Unreachable",
    "create_request",
    "open_channel",
]


def create_request(request: SessionRequest) -> pb.CreateSessionRequest:
    """The SessionService.Create request for ``request``; InvalidArgument names a value that does not fit."""
    return request_message(
        pb.CreateSessionRequest,
        supi=request.supi,
        dnn=request.dnn,
        snssai=request.snssai,
        tai=request.tai,
        pdu_session_id=request.pdu_session_id,
        gnb_teid=request.gnb_teid,
        gnb_address=request.gnb_address,
    )


@dataclass(frozen=True, slots=True)
class SessionPage:
    """One page of a List; pass ``next_page_token`` back for the next ("" after the last page)."""

    sessions: list[SessionView]
    next_page_token: str


class SessionClient(BaseClient):
    """Session calls to a control plane at ``target`` ("host:port" or "unix:PATH")."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = 30.0,
        credentials: ApiCredentials | None = None,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        super().__init__(target, timeout=timeout, credentials=credentials, channel=channel)
        self._stub = pb_grpc.SessionServiceStub(self._channel)  # typed as the AsyncStub for an aio channel

    async def establish(self, request: SessionRequest) -> SessionView:
        message = create_request(request)
        return session_from_proto(await self._call(lambda: self._stub.Create(message, timeout=self._timeout)))

    async def modify(self, supi: str, pdu_session_id: int, request: ModifyRequest) -> SessionView:
        message = request_message(
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
        message = request_message(pb.DeleteSessionRequest, supi=supi, pdu_session_id=pdu_session_id)
        return session_from_proto(await self._call(lambda: self._stub.Delete(message, timeout=self._timeout)))

    async def get(self, supi: str, pdu_session_id: int) -> SessionView:
        message = request_message(pb.GetSessionRequest, supi=supi, pdu_session_id=pdu_session_id)
        return session_from_proto(await self._call(lambda: self._stub.Get(message, timeout=self._timeout)))

    async def list_page(
        self, *, upf: str | None = None, state: str | None = None, page_size: int = 0, page_token: str = ""
    ) -> SessionPage:
        """One page of sessions (page_size 0: the server's default; it caps pages at 1000)."""
        message = request_message(
            pb.ListSessionsRequest, page_size=page_size, page_token=page_token, upf=upf, state=state
        )
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
        message = request_message(pb.SessionUsageRequest, supi=supi, pdu_session_id=pdu_session_id)
        response = await self._call(lambda: self._stub.Usage(message, timeout=self._timeout))
        return [usage_from_proto(r) for r in response.reports]


def _observed(spec: Message) -> dict[str, Any]:
    # Fields numbered from 100 are observed state (provisioning.proto); unset optional ones are None.
    out: dict[str, Any] = {}
    for field in spec.DESCRIPTOR.fields:
        if field.number < 100:
            continue
        value = getattr(spec, field.name)
        if field.is_repeated:
            out[field.name] = list(value)
        else:
            out[field.name] = value if not field.has_presence or spec.HasField(field.name) else None
    return out


def object_from_proto(resource: ppb.Resource) -> ObjectView:
    """A Resource from Get, List, Delete or Drain: its spec fields and its observed state."""
    which = resource.WhichOneof("spec")
    kind = next((k for k, f in SPEC_FIELDS.items() if f == which), resource.kind)
    if which is None:
        return ObjectView(kind, resource.name, {})
    message = getattr(resource, which)
    given = spec_from_proto(kind, message)
    # Every spec field, as the server holds them: an empty repeated field is an empty list, an unset one None.
    fields = message.DESCRIPTOR.fields_by_name
    spec = {f.name: given.get(f.name, [] if fields[f.name].is_repeated else None) for f in FIELDS[kind]}
    return ObjectView(kind, resource.name, spec, _observed(message))


_ACTIONS: dict[str, Action] = {"created": "created", "updated": "updated", "unchanged": "unchanged"}


def _change(message: ppb.Change) -> Change:
    def value(fc: ppb.FieldChange, side: str) -> Any:
        return json.loads(getattr(fc, side)) if fc.HasField(side) else None  # type: ignore[arg-type]

    action = _ACTIONS.get(message.action)
    if action is None:
        raise InvalidArgument(f"the server answered an unknown action {message.action!r}", field="changes.action")
    fields = tuple(FieldChange(fc.path, value(fc, "old"), value(fc, "new")) for fc in message.fields)
    return Change(message.kind, message.name, action, fields)


class ProvisioningClient(BaseClient):
    """Provisioning calls: apply, get, list, delete, drain and undrain objects {kind, name, spec}."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = 30.0,
        credentials: ApiCredentials | None = None,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        super().__init__(target, timeout=timeout, credentials=credentials, channel=channel)
        self._stub = ppb_grpc.ProvisioningServiceStub(self._channel)

    async def apply(self, resources: list[Resource], *, dry_run: bool = False) -> list[Change]:
        """Create or update ``resources`` (kinds spelled as in KINDS) in one transaction; one Change each."""
        request = ppb.ApplyRequest(
            resources=[resource_to_proto(ObjectView(r.kind, r.name, dict(r.spec))) for r in resources],
            dry_run=dry_run,
        )
        response = await self._call(lambda: self._stub.Apply(request, timeout=self._timeout))
        return [_change(change) for change in response.changes]

    async def get(self, kind: str, name: str) -> ObjectView:
        request = ppb.GetResourceRequest(kind=kind, name=name)
        return object_from_proto(await self._call(lambda: self._stub.Get(request, timeout=self._timeout)))

    async def list_page(
        self, kind: str, *, site: str | None = None, dnn: str | None = None, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[ObjectView], str]:
        """One page of objects of ``kind`` in name order, and the token of the next page ("" after the last)."""
        request = request_message(
            ppb.ListResourcesRequest, kind=kind, site=site, dnn=dnn, page_size=page_size, page_token=page_token
        )
        response = await self._call(lambda: self._stub.List(request, timeout=self._timeout))
        return [object_from_proto(r) for r in response.resources], response.next_page_token

    async def iter_objects(
        self, kind: str, *, site: str | None = None, dnn: str | None = None, page_size: int = 0
    ) -> AsyncIterator[ObjectView]:
        """Every object of ``kind`` matching the filters, a page at a time."""
        token = ""
        while True:
            page, token = await self.list_page(kind, site=site, dnn=dnn, page_size=page_size, page_token=token)
            for view in page:
                yield view
            if not token:
                return

    async def delete(self, kind: str, name: str) -> ObjectView:
        """Delete an object nothing depends on; the object as it was."""
        request = ppb.DeleteResourceRequest(kind=kind, name=name)
        return object_from_proto(await self._call(lambda: self._stub.Delete(request, timeout=self._timeout)))

    async def drain(self, *, upf: str | None = None, site: str | None = None, drained: bool = True) -> list[ObjectView]:
        """Drain (or, with ``drained=False``, undrain) one UPF or every UPF of a site; those UPFs now."""
        request = request_message(ppb.DrainRequest, upf=upf, site=site)
        method = self._stub.Drain if drained else self._stub.Undrain
        response = await self._call(lambda: method(request, timeout=self._timeout))
        return [object_from_proto(r) for r in response.upfs]


def _event(message: spb.Event) -> EventView:
    detail = json.loads(message.detail) if message.detail else {}
    return EventView(
        id=message.id,
        at=message.at.ToDatetime(tzinfo=UTC),
        kind=message.kind,
        supi=message.supi if message.HasField("supi") else None,
        upf=message.upf if message.HasField("upf") else None,
        session_id=message.session_id if message.HasField("session_id") else None,
        detail=detail if isinstance(detail, dict) else {"detail": detail},
    )


class StatusClient(BaseClient):
    """Status calls: the UPFs now, and the stream of events."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = 30.0,
        credentials: ApiCredentials | None = None,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        super().__init__(target, timeout=timeout, credentials=credentials, channel=channel)
        self._stub = spb_grpc.StatusServiceStub(self._channel)

    async def status(self) -> StatusView:
        response = await self._call(lambda: self._stub.Status(spb.StatusRequest(), timeout=self._timeout))
        upfs = [
            UpfStatusView(
                node_id=u.node_id,
                site=u.site,
                association=u.association,
                health=u.health,
                features=tuple(u.features),
                recovery_time_stamp=u.recovery_time_stamp if u.HasField("recovery_time_stamp") else None,
                sessions=dict(u.sessions),
                capacity=u.capacity,
                admin_state=u.admin_state,
            )
            for u in response.upfs
        ]
        return StatusView(upfs, dict(response.totals.sessions))

    async def watch(
        self, kinds: list[str] | None = None, since_id: int | None = None, *, replay_only: bool = False
    ) -> AsyncGenerator[EventView, None]:
        """Events as they are recorded (every one after ``since_id`` first); no deadline: it runs
        until closed, or, with ``replay_only``, until the events recorded before the call are sent."""
        request = request_message(spb.WatchRequest, since_id=since_id, replay_only=replay_only)
        request.kinds.extend(kinds or ())
        call = self._stub.Watch(request)
        try:
            async for message in call:
                yield _event(message)
        except grpc.aio.AioRpcError as error:
            raise self._error(error) from None
        finally:
            call.cancel()


class ApiClient:
    """One channel to the API and a client of each service on it."""

    def __init__(self, target: str, *, timeout: float | None = 30.0, credentials: ApiCredentials | None = None) -> None:
        self._channel = open_channel(target, credentials)
        self.sessions = SessionClient(target, timeout=timeout, channel=self._channel)
        self.provisioning = ProvisioningClient(target, timeout=timeout, channel=self._channel)
        self.status = StatusClient(target, timeout=timeout, channel=self._channel)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close(grace=None)

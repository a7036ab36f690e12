"""edgecups.v1.SessionService over real gRPC on loopback: transport, validation, error mapping.

The procedures behind the API are replaced by ``InMemorySessionApi``, a fake at the
SessionApi boundary that records what reached it: these tests are about what the
API layer does with requests, answers and errors, not about sessions (the real
SessionManager has its own tests).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
import grpc.aio
import pytest

from control_plane import errors
from control_plane.api.client import SessionClient
from control_plane.api.generated.edgecups.v1 import sessions_pb2 as pb
from control_plane.api.generated.edgecups.v1 import sessions_pb2_grpc as pb_grpc
from control_plane.api.server import PlaintextRefused, bound_port, start_api_server
from control_plane.errors import CpError, InvalidArgument
from control_plane.services.views import ModifyRequest, SessionApi, SessionRequest, SessionView, UsageView

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
T1 = datetime(2025, 3, 1, 12, 5, 30, 654321, tzinfo=UTC)

FULL_REQUEST = SessionRequest(
    supi="imsi-001010000000001",
    dnn="internet",
    snssai="1-000001",
    tai="001-01-000001",
    pdu_session_id=5,
    gnb_teid=0xFFFFFFFF,
    gnb_address="2001:db8::10",
)


def full_view(request: SessionRequest, cp_seid: int) -> SessionView:
    # Every optional field set, each to a distinct value, so a dropped or swapped field shows.
    return SessionView(
        supi=request.supi,
        pdu_session_id=request.pdu_session_id,
        dnn=request.dnn,
        snssai=request.snssai,
        tai=request.tai,
        state="active",
        ue_ipv4="198.19.0.5",
        ue_ipv6="2001:db8:0:5::/64",
        upf="upf-edge-a",
        site="edge-a",
        cp_seid=cp_seid,
        up_seid=2**64 - 1,
        n3_teid=0x01020304,
        n3_address="192.0.2.1",
        gnb_teid=request.gnb_teid,
        gnb_address=request.gnb_address,
        policy="gold",
        created_at=T0,
        updated_at=T1,
        last_cause=65,
    )


def bare_view(supi: str, cp_seid: int, *, upf: str | None = None, state: str = "establishing") -> SessionView:
    return SessionView(
        supi=supi, pdu_session_id=1, dnn="internet", snssai="1", tai="001-01-000001", state=state,
        ue_ipv4=None, ue_ipv6=None, upf=upf, site=None, cp_seid=cp_seid, up_seid=None, n3_teid=None,
        n3_address=None, gnb_teid=None, gnb_address=None, policy=None, created_at=T0, updated_at=T0,
    )  # fmt: skip


FULL_USAGE = UsageView(
    urr_id=1, ur_seqn=7, triggers=("VOLTH", "PERIO"), volume_ul=10, volume_dl=2**40, volume_total=2**40 + 10,
    duration_s=3600, final=True, recorded_at=T1, start_time=T0, end_time=T1, upf="upf-edge-a",
)  # fmt: skip
BARE_USAGE = UsageView(
    urr_id=2, ur_seqn=0, triggers=(), volume_ul=None, volume_dl=None, volume_total=None,
    duration_s=None, final=False, recorded_at=T0,
)  # fmt: skip


class InMemorySessionApi:
    """Fake SessionApi (test boundary only): a dict of views, a log of calls, an optional planned error."""

    def __init__(self) -> None:
        self.sessions: dict[tuple[str, int], SessionView] = {}
        self.reports: dict[tuple[str, int], list[UsageView]] = {}
        self.calls: list[tuple[str, Any]] = []
        self.fail_with: Exception | None = None
        self._next_seid = 1000

    def _enter(self, name: str, args: Any) -> None:
        self.calls.append((name, args))
        if self.fail_with is not None:
            raise self.fail_with

    def _find(self, supi: str, pdu_session_id: int) -> SessionView:
        try:
            return self.sessions[supi, pdu_session_id]
        except KeyError:
            raise errors.NotFound(f"no session {supi}/{pdu_session_id}") from None

    async def establish(self, request: SessionRequest) -> SessionView:
        self._enter("establish", request)
        self._next_seid += 1
        view = full_view(request, self._next_seid)
        self.sessions[request.supi, request.pdu_session_id] = view
        return view

    async def modify(self, supi: str, pdu_session_id: int, request: ModifyRequest) -> SessionView:
        self._enter("modify", (supi, pdu_session_id, request))
        view = dataclasses.replace(
            self._find(supi, pdu_session_id),
            gnb_teid=request.gnb_teid,
            gnb_address=request.gnb_address,
            tai=request.tai or "",
            policy=request.policy,
        )
        self.sessions[supi, pdu_session_id] = view
        return view

    async def delete(self, supi: str, pdu_session_id: int) -> SessionView:
        self._enter("delete", (supi, pdu_session_id))
        view = self._find(supi, pdu_session_id)
        del self.sessions[supi, pdu_session_id]
        return view

    async def get(self, supi: str, pdu_session_id: int) -> SessionView:
        self._enter("get", (supi, pdu_session_id))
        return self._find(supi, pdu_session_id)

    async def list_sessions(
        self, *, upf: str | None = None, state: str | None = None, limit: int = 100, after: int = 0
    ) -> list[SessionView]:
        self._enter("list_sessions", {"upf": upf, "state": state, "limit": limit, "after": after})
        views = sorted(self.sessions.values(), key=lambda v: v.cp_seid)
        return [
            v
            for v in views
            if v.cp_seid > after and (upf is None or v.upf == upf) and (state is None or v.state == state)
        ][:limit]

    async def usage(self, supi: str, pdu_session_id: int) -> list[UsageView]:
        self._enter("usage", (supi, pdu_session_id))
        self._find(supi, pdu_session_id)
        return self.reports.get((supi, pdu_session_id), [])


Scenario = Callable[[InMemorySessionApi, SessionClient], Awaitable[None]]


def run(scenario: Scenario, api: InMemorySessionApi | None = None) -> None:
    fake = api if api is not None else InMemorySessionApi()

    async def main() -> None:
        server = await start_api_server(fake, "127.0.0.1", 0)
        try:
            async with SessionClient(f"127.0.0.1:{bound_port(server)}") as client:
                await scenario(fake, client)
        finally:
            await server.stop(None)

    asyncio.run(main())


# --- every call round-trips every field ---------------------------------------------------


def test_create_round_trips_every_field() -> None:
    async def scenario(fake: InMemorySessionApi, client: SessionClient) -> None:
        view = await client.establish(FULL_REQUEST)
        assert fake.calls == [("establish", FULL_REQUEST)]
        assert view == fake.sessions[FULL_REQUEST.supi, 5]
        assert view.created_at.tzinfo is not None

    run(scenario)


def test_create_without_gnb_f_teid_and_default_pdu_session_id() -> None:
    request = SessionRequest(
        supi="nai-user@example.org", dnn="ims.mnc001.mcc001.gprs", snssai="255", tai="999-999-999999"
    )

    async def scenario(fake: InMemorySessionApi, client: SessionClient) -> None:
        await client.establish(request)
        assert fake.calls == [("establish", request)]
        assert request.pdu_session_id == 1 and request.gnb_teid is None and request.gnb_address is None
        # The client always sends pdu_session_id; a caller of the raw service may leave it out.
        stub = pb_grpc.SessionServiceStub(client._channel)
        await stub.Create(pb.CreateSessionRequest(supi="imsi-00101", dnn="internet", snssai="1", tai=request.tai))
        expected = SessionRequest(supi="imsi-00101", dnn="internet", snssai="1", tai=request.tai, pdu_session_id=1)
        assert fake.calls[-1] == ("establish", expected)

    run(scenario)


def test_snssai_arrives_in_the_spelling_provisioning_stores() -> None:
    async def scenario(fake: InMemorySessionApi, client: SessionClient) -> None:
        # Policies and UPF slices are stored as "SST" / "SST-sd" (edge_sites.schema), compared as text.
        await client.establish(dataclasses.replace(FULL_REQUEST, snssai="001-00000A"))
        assert fake.calls[-1][1].snssai == "1-00000a"

    run(scenario)


def test_get_round_trips_absent_fields_as_none() -> None:
    async def scenario(fake: InMemorySessionApi, client: SessionClient) -> None:
        bare = bare_view("imsi-00101", 77)
        fake.sessions["imsi-00101", 1] = bare
        assert await client.get("imsi-00101", 1) == bare
        assert fake.calls == [("get", ("imsi-00101", 1))]

    run(scenario)


@pytest.mark.parametrize(
    "change",
    [
        ModifyRequest(gnb_teid=1, gnb_address="10.0.0.2", tai="001-01-000002", policy="silver"),
        ModifyRequest(),
        ModifyRequest(tai="001-001-000003"),
    ],
)
def test_modify_round_trips_present_and_absent_changes(change: ModifyRequest) -> None:
    async def scenario(fake: InMemorySessionApi, client: SessionClient) -> None:
        await client.establish(FULL_REQUEST)
        view = await client.modify(FULL_REQUEST.supi, 5, change)
        assert fake.calls[-1] == ("modify", (FULL_REQUEST.supi, 5, change))
        assert view == fake.sessions[FULL_REQUEST.supi, 5]

    run(scenario)


def test_delete_returns_the_session_as_last_held() -> None:
    async def scenario(fake: InMemorySessionApi, client: SessionClient) -> None:
        created = await client.establish(FULL_REQUEST)
        assert await client.delete(FULL_REQUEST.supi, 5) == created
        assert fake.calls[-1] == ("delete", (FULL_REQUEST.supi, 5))
        assert not fake.sessions

    run(scenario)


def test_usage_round_trips_every_field() -> None:
    async def scenario(fake: InMemorySessionApi, client: SessionClient) -> None:
        fake.sessions["imsi-00101", 1] = bare_view("imsi-00101", 1)
        fake.reports["imsi-00101", 1] = [FULL_USAGE, BARE_USAGE]
        assert await client.usage("imsi-00101", 1) == [FULL_USAGE, BARE_USAGE]
        assert fake.calls == [("usage", ("imsi-00101", 1))]

    run(scenario)


def test_the_client_is_a_session_api() -> None:
    async def scenario(fake: InMemorySessionApi, client: SessionClient) -> None:
        api: SessionApi = client  # mypy checks the client has SessionApi's signatures
        assert await api.list_sessions() == []

    run(scenario)


# --- validation: INVALID_ARGUMENT naming the field, procedures not called -------------------

Call = Callable[[SessionClient], Awaitable[object]]


def _create(**changes: Any) -> Call:
    return lambda client: client.establish(dataclasses.replace(FULL_REQUEST, **changes))


def _modify(supi: str = "imsi-00101", psi: int = 1, **changes: Any) -> Call:
    return lambda client: client.modify(supi, psi, ModifyRequest(**changes))


INVALID: list[tuple[str, Call, str]] = [
    ("supi too few digits", _create(supi="imsi-1234"), "supi"),
    ("supi too many digits", _create(supi="imsi-1234567890123456"), "supi"),
    ("supi unknown type", _create(supi="msisdn-123456"), "supi"),
    ("supi empty", _create(supi=""), "supi"),
    ("supi empty nai", _create(supi="nai-"), "supi"),
    ("pdu session id 0", _create(pdu_session_id=0), "pdu_session_id"),
    ("pdu session id 16", _create(pdu_session_id=16), "pdu_session_id"),
    ("sst over 255", _create(snssai="256"), "snssai"),
    ("sd 5 digits", _create(snssai="1-00001"), "snssai"),
    ("sd reserved", _create(snssai="1-ffffff"), "snssai"),
    ("snssai text", _create(snssai="embb"), "snssai"),
    ("tai short tac", _create(tai="001-01-1"), "tai"),
    ("tai short mcc", _create(tai="01-01-000001"), "tai"),
    ("tai hex", _create(tai="001-01-00000A"), "tai"),
    ("dnn empty", _create(dnn=""), "dnn"),
    ("dnn space", _create(dnn="the internet"), "dnn"),
    ("gnb teid 0", _create(gnb_teid=0), "gnb_teid"),
    ("gnb teid 2**32", _create(gnb_teid=2**32), "gnb_teid"),
    ("gnb address not ip", _create(gnb_address="gnb.example"), "gnb_address"),
    ("gnb address ipv4 leading zero", _create(gnb_address="10.0.0.01"), "gnb_address"),
    ("gnb address ipv6 zone", _create(gnb_address="fe80::1%eth0"), "gnb_address"),
    ("gnb teid alone", _create(gnb_address=None), "gnb_address"),
    ("gnb address alone", _create(gnb_teid=None), "gnb_teid"),
    ("modify supi", _modify(supi="imsi-12"), "supi"),
    ("modify psi", _modify(psi=16), "pdu_session_id"),
    ("modify tai", _modify(tai="001-01"), "tai"),
    ("modify empty policy", _modify(policy=""), "policy"),
    ("modify gnb teid 0", _modify(gnb_teid=0, gnb_address="10.0.0.1"), "gnb_teid"),
    ("modify gnb address alone", _modify(gnb_address="10.0.0.1"), "gnb_teid"),
    ("get supi", lambda c: c.get("imsi-", 1), "supi"),
    ("get psi", lambda c: c.get("imsi-00101", 0), "pdu_session_id"),
    ("delete psi", lambda c: c.delete("imsi-00101", 99), "pdu_session_id"),
    ("usage supi", lambda c: c.usage("IMSI-00101", 1), "supi"),
    ("list token", lambda c: c.list_page(page_token="not-a-token"), "page_token"),
    ("list state", lambda c: c.list_page(state="up"), "state"),
    ("list upf", lambda c: c.list_page(upf=""), "upf"),
]


@pytest.mark.parametrize(("call", "field"), [(c, f) for _, c, f in INVALID], ids=[n for n, _, _ in INVALID])
def test_invalid_field_is_named_and_nothing_is_called(call: Call, field: str) -> None:
    async def scenario(fake: InMemorySessionApi, client: SessionClient) -> None:
        with pytest.raises(InvalidArgument) as raised:
            await call(client)
        assert raised.value.field == field
        assert fake.calls == []

    run(scenario)


def test_invalid_argument_is_the_status_code_on_the_wire() -> None:
    async def scenario(fake: InMemorySessionApi, client: SessionClient) -> None:
        stub = pb_grpc.SessionServiceStub(client._channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Get(pb.GetSessionRequest(supi="imsi-00101", pdu_session_id=0))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert raised.value.details() == "pdu_session_id: 0 is not a PDU Session ID: expected 1..15"
        trailers: Any = raised.value.trailing_metadata()  # grpc-stubs mistypes aio trailers (see status.py)
        assert ("edgecups-field", "pdu_session_id") in list(trailers)

    run(scenario)


# --- CpError subclasses map to their status codes and come back as themselves ---------------

ERRORS: list[CpError] = [
    errors.InvalidArgument("subscriber may not use DNN 'ims'", field="dnn"),
    errors.NotFound("no session imsi-00101/1"),
    errors.AlreadyExists("session imsi-00101/1 exists", field="pdu_session_id"),
    errors.FailedPrecondition("session is deleting"),
    errors.ResourceExhausted("pool internet-v4 is exhausted: 254 of 254 used"),
    errors.Unavailable("no UPF serves DNN 'internet' at TAI 001-01-000001 — all down"),
    errors.UpfRejected("UPF upf-a rejected the establishment: Rule creation/modification failure", cause=69),
]


def test_every_error_class_is_exercised() -> None:
    classes = {getattr(errors, name) for name in errors.__all__} - {CpError}
    assert classes == {type(e) for e in ERRORS}


@pytest.mark.parametrize("error", ERRORS, ids=[type(e).__name__ for e in ERRORS])
def test_procedure_error_maps_to_its_status_and_back(error: CpError) -> None:
    async def scenario(fake: InMemorySessionApi, client: SessionClient) -> None:
        fake.fail_with = error
        with pytest.raises(CpError) as raised:
            await client.establish(FULL_REQUEST)
        assert type(raised.value) is type(error)
        assert (raised.value.message, raised.value.field) == (error.message, error.field)
        assert getattr(raised.value, "cause", None) == getattr(error, "cause", None)

        stub = pb_grpc.SessionServiceStub(client._channel)
        with pytest.raises(grpc.aio.AioRpcError) as on_wire:
            await stub.Get(pb.GetSessionRequest(supi="imsi-00101", pdu_session_id=1))
        assert on_wire.value.code() == grpc.StatusCode[error.code]
        assert on_wire.value.details() == str(error)

    run(scenario)


def test_unexpected_exception_is_internal_without_its_text() -> None:
    async def scenario(fake: InMemorySessionApi, client: SessionClient) -> None:
        fake.fail_with = RuntimeError("secret internals")
        with pytest.raises(CpError) as raised:
            await client.get("imsi-00101", 1)
        assert type(raised.value) is CpError
        assert "secret" not in raised.value.message and "Get failed" in raised.value.message

    run(scenario)


# --- paging ----------------------------------------------------------------------------------


def _fill(fake: InMemorySessionApi) -> list[SessionView]:
    views = [
        bare_view(f"imsi-0010100000000{i:02d}", 10 * i, upf="upf-a" if i % 2 else "upf-b", state="active")
        for i in range(1, 8)
    ]
    fake.sessions.update({(v.supi, v.pdu_session_id): v for v in views})
    return views


def test_pages_cover_every_session_once_in_order() -> None:
    async def scenario(fake: InMemorySessionApi, client: SessionClient) -> None:
        views = _fill(fake)
        first = await client.list_page(page_size=3)
        second = await client.list_page(page_size=3, page_token=first.next_page_token)
        third = await client.list_page(page_size=3, page_token=second.next_page_token)
        assert first.sessions + second.sessions + third.sessions == views
        assert [len(p.sessions) for p in (first, second, third)] == [3, 3, 1]
        assert third.next_page_token == ""
        assert [v async for v in client.iter_sessions(page_size=2)] == views

    run(scenario)


def test_exact_last_page_has_no_next_token() -> None:
    async def scenario(fake: InMemorySessionApi, client: SessionClient) -> None:
        views = _fill(fake)
        page = await client.list_page(page_size=7)
        assert page.sessions == views and page.next_page_token == ""

    run(scenario)


def test_filters_and_page_size_reach_the_procedure() -> None:
    async def scenario(fake: InMemorySessionApi, client: SessionClient) -> None:
        views = _fill(fake)
        page = await client.list_page(upf="upf-b", state="active")
        assert page.sessions == [v for v in views if v.upf == "upf-b"]
        assert fake.calls[-1] == ("list_sessions", {"upf": "upf-b", "state": "active", "limit": 101, "after": 0})
        await client.list_page(page_size=5000)
        assert fake.calls[-1][1]["limit"] == 1001  # clamped to 1000, plus one to see if a page follows

    run(scenario)


def test_list_sessions_after_a_cp_seid() -> None:
    async def scenario(fake: InMemorySessionApi, client: SessionClient) -> None:
        views = _fill(fake)
        assert await client.list_sessions(limit=2, after=30) == views[3:5]

    run(scenario)


# --- the server ------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.0.2.1", "control-plane.example"])
def test_plaintext_off_loopback_is_refused(address: str) -> None:
    with pytest.raises(PlaintextRefused, match=r"configure api\.tls"):
        asyncio.run(start_api_server(InMemorySessionApi(), address, 0))


def test_a_taken_port_is_an_error_not_a_shared_port() -> None:
    async def main() -> None:
        server = await start_api_server(InMemorySessionApi(), "127.0.0.1", 0)
        try:
            with pytest.raises(OSError, match="cannot listen"):
                await start_api_server(InMemorySessionApi(), "127.0.0.1", bound_port(server))
        finally:
            await server.stop(None)

    asyncio.run(main())

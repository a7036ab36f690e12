"""``edgecups session create|modify|delete|get|list|usage``: PDU sessions through the API.

A session is named by its SUPI and PDU Session ID (``--psi``, default 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Final

import typer

from control_plane.api.client import ApiClient
from control_plane.services.views import ModifyRequest, SessionRequest, SessionView, UsageView

from .api_options import EXIT_CODES_HELP, Output, Settings, api_command
from .api_output import call, cell, columns, emit, plain

__all__ = ["app"]

app = typer.Typer(
    name="session",
    help="PDU sessions: create, modify, delete, get, list, and the usage the UPF reported.",
    no_args_is_help=True,
    add_completion=False,
)

Supi = Annotated[str, typer.Argument(metavar="SUPI", help="imsi-<digits> or nai-<...>.", show_default=False)]
Psi = Annotated[int, typer.Option("--psi", min=1, max=15, help="PDU Session ID (TS 24.007: 1..15).")]
GnbTeid = Annotated[
    int | None, typer.Option("--gnb-teid", min=1, max=2**32 - 1, help="The gNB's downlink TEID (with --gnb-address).")
]
GnbAddress = Annotated[str | None, typer.Option("--gnb-address", help="The gNB's N3 IP address (with --gnb-teid).")]

_COLUMNS: Final = ("supi", "psi", "dnn", "snssai", "tai", "state", "ue ipv4", "ue ipv6", "upf", "site")


def _rows(sessions: Sequence[SessionView]) -> str:
    return columns(
        _COLUMNS,
        ([s.supi, s.pdu_session_id, s.dnn, s.snssai, s.tai, s.state, s.ue_ipv4, s.ue_ipv6, s.upf, s.site]
         for s in sessions),
    )  # fmt: skip


def _one(settings: Settings, view: SessionView) -> None:
    if settings.output is not Output.table:
        emit(view, settings.output)
        return
    fields = plain(view)
    del fields["final_usage"]  # a table of its own, below
    width = max(len(key) for key in fields)
    typer.echo("\n".join(f"{key + ':':<{width + 1}} {cell(value)}" for key, value in fields.items()))
    if view.final_usage:
        typer.echo("\nfinal usage:\n" + _usage_rows(view.final_usage))


def create(
    settings: Settings,
    supi: Supi,
    dnn: Annotated[str, typer.Option("--dnn", help="Data Network Name, e.g. internet.", show_default=False)],
    snssai: Annotated[str, typer.Option("--snssai", help="S-NSSAI: SST or SST-SD, e.g. 1-000001.", show_default=False)],
    tai: Annotated[str, typer.Option("--tai", help="Where the UE is: MCC-MNC-TAC, e.g. 001-01-000001.")],
    psi: Psi = 1,
    gnb_teid: GnbTeid = None,
    gnb_address: GnbAddress = None,
) -> None:
    """Establish a PDU session (the control plane picks the UPF from the TAI, DNN and slice)."""
    request = SessionRequest(supi, dnn, snssai, tai, psi, gnb_teid, gnb_address)

    async def work(api: ApiClient) -> None:
        _one(settings, await api.sessions.establish(request))

    call(settings, work)


def modify(
    settings: Settings,
    supi: Supi,
    psi: Psi = 1,
    gnb_teid: GnbTeid = None,
    gnb_address: GnbAddress = None,
    tai: Annotated[str | None, typer.Option("--tai", help="The UE moved here (may relocate the session).")] = None,
    policy: Annotated[str | None, typer.Option("--policy", help="Apply this policy (by name).")] = None,
) -> None:
    """Change a session: handover (new gNB F-TEID), mobility (new TAI) or policy."""
    request = ModifyRequest(gnb_teid, gnb_address, tai, policy)
    if request == ModifyRequest():
        raise typer.BadParameter("nothing to change: give --gnb-teid/--gnb-address, --tai or --policy")

    async def work(api: ApiClient) -> None:
        _one(settings, await api.sessions.modify(supi, psi, request))

    call(settings, work)


def delete(settings: Settings, supi: Supi, psi: Psi = 1) -> None:
    """Release a session; prints it as it was last held, with its final usage."""

    async def work(api: ApiClient) -> None:
        _one(settings, await api.sessions.delete(supi, psi))

    call(settings, work)


def get(settings: Settings, supi: Supi, psi: Psi = 1) -> None:
    """Print one session, every field."""

    async def work(api: ApiClient) -> None:
        _one(settings, await api.sessions.get(supi, psi))

    call(settings, work)


def list_(
    settings: Settings,
    upf: Annotated[str | None, typer.Option("--upf", help="Only sessions on this UPF (Node ID).")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Only sessions in this state, e.g. active.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many sessions.")] = None,
) -> None:
    """List sessions, in a stable order (every page, or the first --limit)."""

    async def work(api: ApiClient) -> None:
        sessions: list[SessionView] = []
        async for view in api.sessions.iter_sessions(upf=upf, state=state, page_size=min(limit or 1000, 1000)):
            sessions.append(view)
            if limit is not None and len(sessions) >= limit:
                break
        if settings.output is Output.table:
            typer.echo(_rows(sessions) if sessions else "no sessions")
        else:
            emit(sessions, settings.output)

    call(settings, work)


def _usage_rows(reports: Sequence[UsageView]) -> str:
    headers = ("urr", "seqn", "triggers", "volume ul", "volume dl", "volume total", "duration s", "final", "recorded")
    return columns(
        headers,
        ([r.urr_id, r.ur_seqn, list(r.triggers), r.volume_ul, r.volume_dl, r.volume_total, r.duration_s, r.final,
          r.recorded_at.isoformat()] for r in reports),
    )  # fmt: skip


def usage(settings: Settings, supi: Supi, psi: Psi = 1) -> None:
    """Print the usage reports the UPF sent for a session."""

    async def work(api: ApiClient) -> None:
        reports = await api.sessions.usage(supi, psi)
        if settings.output is Output.table:
            typer.echo(_usage_rows(reports) if reports else "no usage reports")
        else:
            emit(reports, settings.output)

    call(settings, work)


for _command, _name in ((create, "create"), (modify, "modify"), (delete, "delete"), (get, "get"), (list_, "list"),
                        (usage, "usage")):  # fmt: skip
    app.command(_name, epilog=EXIT_CODES_HELP)(api_command(_command))

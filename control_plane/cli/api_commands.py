"""The operator's commands on top of the northbound API, and ``edgecups api token create``.

* ``edgecups status``: every UPF with its association, health, admin state and sessions.
* ``edgecups events [--follow] [--kind K] [--since ID]``: the event stream (Watch); with
  ``--follow --source mqtt`` the live stream from the MQTT broker instead (:mod:`.mqtt_events`).
* ``edgecups api token create --name N --role R``: a new bearer token (offline).
* Provisioning (:mod:`.provision_commands`) and sessions (:mod:`.session_commands`).

Every command that talks to the API takes the connection options of :mod:`.api_options`
and ends with its exit statuses: 0 done, 1 refused by the server, 2 usage/config/manifest
error (nothing sent), 3 server unreachable.
"""

from __future__ import annotations

import contextlib
import json
from enum import StrEnum
from typing import Annotated

import typer
import yaml

from control_plane.api.auth import ROLES
from control_plane.api.client import ApiClient
from control_plane.api.security import new_token, token_entry
from control_plane.provisioning.feed import EventView
from control_plane.provisioning.status import StatusView

from . import mqtt_events, provision_commands, session_commands
from .api_options import CONFIG_HELP, EXIT_CODES_HELP, EXIT_USAGE, Output, Settings, api_command
from .api_output import call, cell, columns, emit, fail, plain

__all__ = ["api_app", "register"]


def _status_table(view: StatusView) -> str:
    headers = ("node id", "site", "association", "health", "admin", "sessions", "capacity", "features")
    rows = [
        (u.node_id, u.site, u.association, u.health, u.admin_state, _by_state(u.sessions), u.capacity, list(u.features))
        for u in view.upfs
    ]
    summary = (
        f"{len(view.upfs)} UPFs, {view.associated} associated, {view.drained} drained; "
        f"sessions {_by_state(view.sessions)} of capacity {view.capacity}"
    )
    return (columns(headers, rows) if rows else "no UPFs") + "\n" + summary


def _by_state(sessions: dict[str, int]) -> str:
    total = sum(sessions.values())
    if not total:
        return "0"
    return f"{total} ({', '.join(f'{state} {count}' for state, count in sorted(sessions.items()))})"


def status(settings: Settings) -> None:
    """Every UPF: PFCP association, health, admin state, sessions by state, capacity; totals last."""

    async def work(api: ApiClient) -> None:
        view = await api.status.status()
        if settings.output is Output.table:
            typer.echo(_status_table(view))
        else:
            upfs = [plain(u) for u in view.upfs]
            totals = {"upfs": len(view.upfs), "associated": view.associated, "drained": view.drained,
                      "sessions": view.sessions, "capacity": view.capacity}  # fmt: skip
            emit({"upfs": upfs, "totals": totals}, settings.output)

    call(settings, work)


def _event_line(event: EventView, output: Output) -> str:
    if output is Output.json:  # one object per line: a stream a script reads as it comes
        return json.dumps(plain(event), ensure_ascii=False)
    if output is Output.yaml:
        return yaml.safe_dump(plain(event), sort_keys=False, allow_unicode=True, explicit_start=True).rstrip()
    detail = json.dumps(event.detail, sort_keys=True, ensure_ascii=False) if event.detail else ""
    at = event.at.isoformat(timespec="milliseconds")
    return "  ".join(
        part for part in (str(event.id), at, event.kind, cell(event.upf), cell(event.supi), detail) if part
    )


class Source(StrEnum):
    api = "api"
    mqtt = "mqtt"


def events(
    settings: Settings,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events until Ctrl-C.")] = False,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", "-k", help="Only these kinds: session.created, or a prefix: session, upf, pool..."),
    ] = None,
    since: Annotated[
        int | None, typer.Option("--since", min=0, help="Events after this id (default: all; with --follow: new ones).")
    ] = None,
    count: Annotated[int | None, typer.Option("--count", min=1, help="Stop after this many events.")] = None,
    source: Annotated[
        Source, typer.Option("--source", help="api (the Watch stream, with history) or mqtt (live, needs --follow).")
    ] = Source.api,
    mqtt_host: mqtt_events.HostFlag = None,
    mqtt_port: mqtt_events.PortFlag = None,
    mqtt_username: mqtt_events.UserFlag = None,
    mqtt_password_file: mqtt_events.PasswordFlag = None,
    mqtt_ca: mqtt_events.CaFlag = None,
    mqtt_cert: mqtt_events.CertFlag = None,
    mqtt_key: mqtt_events.KeyFlag = None,
) -> None:
    """Print events: ID, time, kind, UPF, SUPI, detail (-o json: one object per line)."""
    if source is Source.mqtt:
        if not follow or since is not None:
            why = "--since: the broker keeps no history" if since is not None else "it is a live stream: add --follow"
            fail(settings, EXIT_USAGE, [f"error: --source mqtt: {why}"], {"code": "USAGE", "message": why})
        flags = mqtt_events.MqttFlags(
            mqtt_host, mqtt_port, mqtt_username, mqtt_password_file, mqtt_ca, mqtt_cert, mqtt_key
        )
        mqtt_events.follow(settings, flags, kinds=kind or [], count=count, line=_event_line)
    since_id = since if since is not None or follow else 0

    async def work(api: ApiClient) -> None:
        printed = 0
        # Without --follow the server ends the stream once what was recorded is sent.
        async with contextlib.aclosing(api.status.watch(kind or [], since_id, replay_only=not follow)) as watched:
            async for event in watched:
                typer.echo(_event_line(event, settings.output))
                printed += 1
                if count is not None and printed >= count:
                    break

    call(settings, work)


api_app = typer.Typer(
    name="api",
    help="The northbound API: bearer tokens, and how every API command reaches the server (below).",
    epilog=CONFIG_HELP,
    no_args_is_help=True,
    add_completion=False,
)
token_app = typer.Typer(name="token", help="Bearer tokens.", no_args_is_help=True, add_completion=False)
api_app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option("--name", help="Who holds the token (the control plane logs it).")],
    role: Annotated[list[str], typer.Option("--role", help=f"A role it grants (repeatable): {', '.join(ROLES)}.")],
    output: Annotated[Output, typer.Option("--output", "-o", help="table (text), json or yaml.")] = Output.table,
) -> None:
    """Make a bearer token: print the secret (only now) and the entry for the control plane's tokens file.

    Offline: nothing is sent. The tokens file keeps only the token's SHA-256.
    """
    token, _digest = new_token()
    try:
        entry = token_entry(name, role, token)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    if output is not Output.table:
        emit({"token": token, "entry": entry}, output)
        return
    typer.echo("Token (shown only now; give it to its holder, e.g. as EDGECUPS_TOKEN or in a --token-file):")
    typer.echo(f"  {token}")
    typer.echo("Add this entry to the control plane's tokens file (api.tokens_file):")
    typer.echo(yaml.safe_dump([entry], sort_keys=False).rstrip())


def register(app: typer.Typer) -> None:
    """Add the API commands to the top-level ``edgecups`` application."""
    provision_commands.register(app)
    app.command("status", epilog=EXIT_CODES_HELP)(api_command(status))
    app.command("events", epilog=EXIT_CODES_HELP)(api_command(events))
    app.add_typer(session_commands.app, name="session")
    app.add_typer(api_app, name="api")

"""``edgecups sim up|status|traffic|down|run``: the simulated multi-site deployment (control_plane/cli/sim).

``sim run`` is the whole job in one command (``make run``): up, traffic, then down whatever
happened. It is the one that works for an ordinary user: when this kernel allows unprivileged
user namespaces it re-runs itself inside one (in which the user is root), since namespaces made
there vanish with it.

Exit status: 0 done (``traffic``: every check passed; ``status``: everything up; ``down``:
nothing left); 1 failed (a step of ``up``, a traffic check, a degraded status, something left
after ``down``, no simulation in the directory); 2 usage: a bad topology or option, or missing
privileges (the message says exactly what is needed). Progress goes to stderr, results to
stdout, so ``-o json`` pipes cleanly.
"""

from __future__ import annotations

import enum
import json
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from .api_output import columns
from .sim import (
    DEFAULT_STATE_DIR,
    DEFAULT_TOPOLOGY,
    SimError,
    Simulation,
    TopologyError,
    TrafficOptions,
    load_topology,
    scale,
)
from .sim.privileges import USERNS_ENV, in_user_namespace_command, missing_privileges, user_namespaces_allowed
from .sim.state import Busy, StateError

__all__ = ["app"]

EXIT_FAILED = 1
EXIT_USAGE = 2
_DEFAULTS = TrafficOptions()

app = typer.Typer(
    name="sim",
    help="A whole deployment in network namespaces: control plane, UPF agents, gNBs with UEs, data networks.",
    no_args_is_help=True,
    add_completion=False,
)


class Output(enum.StrEnum):
    table = "table"
    json = "json"


StateDir = Annotated[
    Path,
    typer.Option("--state-dir", envvar="EDGECUPS_SIM_STATE_DIR", metavar="DIR",
                 help="Where the simulation keeps its state, configurations, logs and database."),
]  # fmt: skip
OutputOption = Annotated[Output, typer.Option("--output", "-o", help="table (for people) or json (for scripts).")]


def _say(text: str) -> None:
    typer.echo(text, err=True)


def _fail(lines: list[str], code: int = EXIT_FAILED) -> NoReturn:
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(code)


def _privileged() -> None:
    needs = missing_privileges()
    if needs is not None:
        _fail(needs, EXIT_USAGE)


def _load(state_dir: Path) -> Simulation:
    _privileged()
    try:
        return Simulation.load(state_dir, progress=_say)
    except StateError as exc:
        _fail([str(exc)])


@app.command()
def up(
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", metavar="FILE", help=f"Topology YAML (default: {DEFAULT_TOPOLOGY.name}, "
                     "3 edge sites and 1 cloud site; edge_sites/sim/topology.py documents the keys)."),
    ] = None,
    sites: Annotated[int | None, typer.Option("--sites", metavar="N", help="Number of edge sites.")] = None,
    ues: Annotated[int | None, typer.Option("--ues", metavar="M", help="UEs at each edge site.")] = None,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    keep_on_failure: Annotated[
        bool, typer.Option("--keep-on-failure", help="Leave what was built when a step fails (for a post-mortem).")
    ] = False,
) -> None:  # fmt: skip
    """Build the topology, start every process, provision through the API, open and attach every UE's sessions."""
    try:
        topology = scale(load_topology(file), sites=sites, ues=ues)
    except TopologyError as exc:
        _fail([*exc.errors, "the topology is not valid: nothing was built"], EXIT_USAGE)
    _privileged()
    try:
        sim = Simulation.up(topology, state_dir, progress=_say, keep_on_failure=keep_on_failure)
    except SimError as exc:
        _fail(exc.lines)
    except Busy as exc:
        _fail([str(exc)])
    except KeyboardInterrupt:
        _fail(["interrupted: what was built has been removed"], 130)
    rows = []
    for site in sim.plan.sites:
        anchored = sum(1 for s in sim.sessions if s.site == site.name)
        gnb = f"{site.site.ues} UEs" if site.gnb_role else "-"
        rows.append((site.name, site.site.kind, site.site.tai, site.node_id, ", ".join(site.pools), gnb, anchored,
                     site.server))  # fmt: skip
    typer.echo(columns(("site", "kind", "tai", "upf", "dnns", "gnb", "sessions", "server"), rows))
    typer.echo(f"\nup: {len(sim.sessions)} sessions active and attached; state in {state_dir}")
    typer.echo("next: edgecups sim status | edgecups sim traffic | edgecups sim down")


@app.command()
def status(state_dir: StateDir = DEFAULT_STATE_DIR, output: OutputOption = Output.table) -> None:
    """Processes alive, UPF association and health (from the API), sessions per site."""
    report = _load(state_dir).status()
    typer.echo(json.dumps(report.to_dict(), indent=1) if output is Output.json else report.render())
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


PingCount = Annotated[int, typer.Option(min=1, max=1000, help="ICMP echo requests per session.")]
UdpPps = Annotated[float, typer.Option(min=1, max=20_000, help="UDP stream rate per session, packets/s.")]
UdpSeconds = Annotated[float, typer.Option(min=0.1, max=60, help="UDP stream duration, s.")]
TcpBytes = Annotated[int, typer.Option(min=1, max=1 << 30, help="TCP transfer size each way, octets.")]
Parallel = Annotated[int, typer.Option(min=1, max=64, help="Sessions streaming at once (UDP, TCP).")]


@app.command()
def traffic(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    output: OutputOption = Output.table,
    ping_count: PingCount = _DEFAULTS.ping_count,
    udp_pps: UdpPps = _DEFAULTS.udp_pps,
    udp_seconds: UdpSeconds = _DEFAULTS.udp_seconds,
    tcp_bytes: TcpBytes = _DEFAULTS.tcp_bytes,
    parallel: Parallel = _DEFAULTS.parallel,
) -> None:
    """From every UE session: ping, a UDP stream and a TCP transfer to its server; a per-site table and the checks."""
    sim = _load(state_dir)
    options = TrafficOptions(ping_count=ping_count, udp_pps=udp_pps, udp_seconds=udp_seconds, tcp_bytes=tcp_bytes,
                             parallel=parallel)  # fmt: skip
    if not sim.sessions:
        _fail([f"the simulation in {state_dir} has no sessions (phase {sim.state.phase})"])
    report = sim.traffic(options)
    if output is Output.json:
        typer.echo(json.dumps(report.to_dict(), indent=1))
    else:
        typer.echo(report.table())
        checks = len(report.results)
        failures = report.failures()
        typer.echo("")
        for line in failures:
            typer.echo(f"FAIL {line}")
        verdict = "every check passed" if report.ok else f"{len(failures)} check(s) FAILED"
        typer.echo(f"traffic: {checks} sessions in {report.duration_s:.1f} s: {verdict} "
                   f"(placement, ping and UDP loss <= {options.max_loss:.0%}, TCP complete)")  # fmt: skip
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def down(state_dir: StateDir = DEFAULT_STATE_DIR) -> None:
    """Stop every process, remove every namespace and link, and verify that nothing is left (idempotent)."""
    _privileged()
    try:
        report = Simulation.down(state_dir, progress=_say)
    except Busy as exc:
        _fail([str(exc)])
    for line in report.lines():
        typer.echo(line)
    if not report.clean:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def run(
    file: Annotated[Path | None, typer.Option("--file", "-f", metavar="FILE", help="Topology YAML.")] = None,
    sites: Annotated[int | None, typer.Option("--sites", metavar="N", help="Number of edge sites.")] = None,
    ues: Annotated[int | None, typer.Option("--ues", metavar="M", help="UEs at each edge site.")] = None,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """The whole job: up, traffic with its checks and table, then down (always). Exit: traffic's status
    (up's when up failed; 1 when only the teardown failed). An ordinary user runs it in a user namespace."""
    if os.geteuid() != 0 and not os.environ.get(USERNS_ENV) and user_namespaces_allowed():
        _say("not root: running the simulation inside a user namespace (eBPF is usually refused there)")
        argv = [sys.executable, "-m", "control_plane.cli.main", *sys.argv[1:]]
        os.environ[USERNS_ENV] = "1"
        command = in_user_namespace_command(argv)
        os.execvpe(command[0], command, os.environ)
    code = 0
    try:
        up(file=file, sites=sites, ues=ues, state_dir=state_dir, keep_on_failure=False)
    except typer.Exit as exc:
        code = exc.exit_code
    if code == 0:
        try:
            traffic(state_dir=state_dir, output=Output.table, ping_count=_DEFAULTS.ping_count,
                    udp_pps=_DEFAULTS.udp_pps, udp_seconds=_DEFAULTS.udp_seconds, tcp_bytes=_DEFAULTS.tcp_bytes,
                    parallel=_DEFAULTS.parallel)  # fmt: skip
        except typer.Exit as exc:
            code = exc.exit_code
    if code != EXIT_USAGE:  # usage: nothing was built
        try:
            down(state_dir=state_dir)
        except typer.Exit as exc:
            code = code or exc.exit_code
    raise typer.Exit(code)

"""``edgecups upf ...``: the UPF agent, and its configuration checked before it is deployed.

* ``edgecups upf --config FILE`` runs the agent (:class:`user_plane.agent.UpfAgent`)
  with the configured dataplane (``driver: software``:
  :class:`user_plane.software.SoftwareDriver`; ``driver: vpp``:
  :class:`user_plane.vpp.driver.VppDriver`) until SIGINT or SIGTERM, then stops
  cleanly (sessions dropped, driver stopped, N4 socket closed). Logs go to stderr at the configured ``log_level``.
  A configuration with problems is reported as ``check-config`` reports it
  (exit status 1) before anything starts.
* ``edgecups upf check-config FILE`` loads a YAML configuration with
  :func:`user_plane.config.load_config` and prints a summary (or JSON), or every
  problem, one per line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from user_plane.config import OPTIONS, ConfigError, UpfConfig, load_config, unavailable
from user_plane.driver import Driver, DriverError
from user_plane.vpp.config import Memif

__all__ = ["app"]

#: Exit status when the configuration has problems (or asks for what this build lacks).
EXIT_INVALID = 1
#: Exit status when the agent cannot start (the N4 address cannot be bound, no TUN device...).
EXIT_START_FAILED = 3

#: Output width when stdout is not a terminal.
_PIPE_WIDTH = 10_000


def _reference() -> str:
    # Typer's rich help joins single newlines; each key gets its own paragraph.
    lines = ["Configuration keys (<network-instance> is a DNN you name; * marks required keys):"]
    lines += [f"{o.path}{' *' if o.required else ''}: {o.help}" for o in OPTIONS]
    return "\n\n".join(lines)


app = typer.Typer(
    name="upf",
    help="UPF (user-plane function) agent: run it with edgecups upf --config FILE (software or VPP dataplane, until "
    "SIGINT/SIGTERM), or check a configuration file with edgecups upf check-config FILE.",
    add_completion=False,
    invoke_without_command=True,
    epilog=_reference(),
)


@app.callback()
def upf(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            metavar="FILE",
            help=(
                "Run the agent with this YAML configuration (keys below) until SIGINT or SIGTERM;"
                " SIGHUP restarts the dataplane and re-installs every session."
            ),
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the UPF agent (PFCP UP function) with the configured dataplane (software or vpp).

    Exit status 0 after SIGINT/SIGTERM; 1 when the configuration has problems
    (reported as check-config reports them); 2 on bad usage; 3 when the agent
    cannot start (N4 address not bindable, dataplane devices not creatable).
    """
    if ctx.invoked_subcommand is not None:
        if config is not None:
            raise typer.BadParameter("--config runs the agent: give it without a subcommand", param_hint="--config")
        return
    if config is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    loaded = _load_or_exit(config)
    logging.basicConfig(
        level=loaded.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        asyncio.run(run_agent(loaded, _driver(loaded)))
    except (OSError, DriverError) as exc:
        typer.echo(f"{config}: the agent could not start: {exc}", err=True)
        raise typer.Exit(EXIT_START_FAILED) from None


def _load_or_exit(file: Path) -> UpfConfig:
    try:
        config = load_config(file)
        problems = list(unavailable(config))
    except ConfigError as exc:
        problems = list(exc.errors)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc.strerror}", param_hint="--config") from None
    for problem in problems:
        typer.echo(f"{file}: {problem}", err=True)
    if problems:
        raise typer.Exit(EXIT_INVALID)
    return config


def _driver(config: UpfConfig) -> Driver:
    # Imported here: a dataplane (TUN devices and sockets, or vpp_papi) is only needed to run the agent.
    if config.driver == "vpp":
        from user_plane.vpp.driver import VppDriver

        return VppDriver.from_config(config)
    from user_plane.software import SoftwareDriver

    return SoftwareDriver.from_config(config.n3, config.n6)


async def run_agent(config: UpfConfig, driver: Driver, *, stop: asyncio.Event | None = None) -> None:
    """Run the agent until ``stop`` is set, or SIGINT/SIGTERM arrives; then stop it cleanly."""
    from user_plane.agent import UpfAgent

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
        except (NotImplementedError, RuntimeError):  # not the main thread: the caller sets stop
            pass
    agent = UpfAgent(config, driver)
    restarts: set[asyncio.Task[object]] = set()

    def restart_dataplane() -> None:
        # SIGHUP: take the dataplane down and up again, then resync it with the desired state
        # (what an operator does after changing something under the driver's feet).
        logging.getLogger("user_plane.agent").info("SIGHUP: restarting the dataplane")
        task: asyncio.Task[object] = loop.create_task(agent.restart_driver())
        restarts.add(task)
        task.add_done_callback(restarts.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, restart_dataplane)
        handled.append(signal.SIGHUP)
    except (NotImplementedError, RuntimeError):
        pass
    try:
        await agent.start()
        try:
            await stop.wait()
            logging.getLogger("user_plane.agent").info("stopping on request")
        finally:
            await agent.stop()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


class OutputFormat(StrEnum):
    """How ``check-config`` reports."""

    text = "text"
    json = "json"


@app.command("check-config", epilog=_reference())
def check_config(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="The UPF agent's YAML configuration file.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    output: Annotated[
        OutputFormat,
        typer.Option("--output", "-o", help="text: summary or problems; json: one JSON object."),
    ] = OutputFormat.text,
) -> None:
    """Validate a UPF agent configuration file and summarise it.

    Every problem is reported, one per line, as FILE: key.path: message.
    Exit status 0 when the file is valid and this build can run it; 1 when it
    has problems (driver vpp without its vpp section is valid but not runnable); 2 on
    bad usage or a file that cannot be read.
    """
    config: UpfConfig | None = None
    try:
        config = load_config(file)
        problems = list(unavailable(config))
    except ConfigError as exc:
        problems = list(exc.errors)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc.strerror}", param_hint="FILE") from None
    if output is OutputFormat.json:
        record: dict[str, Any] = {
            "file": str(file),
            "valid": not problems,
            "errors": problems,
            "config": None if config is None else config.to_mapping(),
        }
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        if config is not None:
            _print_summary(file, config, valid=not problems)
        for problem in problems:
            typer.echo(f"{file}: {problem}", err=True)
    if problems:
        raise typer.Exit(EXIT_INVALID)


def _print_summary(file: Path, config: UpfConfig, *, valid: bool) -> None:
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = _PIPE_WIDTH  # piped into grep or a file: one line per row, never wrapped
    verdict = Text(f"{file}: ")
    verdict.append(
        "valid" if valid else "valid, but not runnable by this build", style="bold green" if valid else "bold yellow"
    )
    console.print(verdict, soft_wrap=True)
    rows = _rows(config)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        line = Text(label.ljust(width + 2), style="bold")
        line.append(value)
        console.print(line, soft_wrap=True)


def _vpp_rows(config: UpfConfig) -> list[tuple[str, str]]:
    vpp = config.vpp
    if vpp is None:
        return []

    def side(interface: object, table: int) -> str:
        name = f"memif {interface.socket}#{interface.id}" if isinstance(interface, Memif) else str(interface)
        return f"{name} (VRF {table})"

    sides = [f"N3 {side(vpp.n3.interface, vpp.n3.table_id)}"]
    sides += [f"{ni} {side(s.interface, s.table_id)}" for ni, s in vpp.n6.items()]
    return [("VPP", f"API {vpp.api_socket}, schema {vpp.api_dir}; " + ", ".join(sides))]


def _rows(config: UpfConfig) -> list[tuple[str, str]]:
    kind = "FQDN" if isinstance(config.node_id, str) else f"IPv{config.node_id.version}"
    rows = [
        ("Node ID", f"{config.node_id} ({kind})"),
        ("N4", f"{config.n4.address} port {config.n4.port}"),
        ("N3", ", ".join(str(a) for a in config.n3)),
    ]
    for name, n6 in config.n6.items():
        value = f"device {n6.interface}, UE pool {', '.join(str(p) for p in n6.ue_pool)}"
        if n6.gateway is not None:
            value += f", gateway {n6.gateway}"
        rows.append((f"N6 {name}", value))
    cps = [f"{p} (Node ID)" if isinstance(p, str) else f"{p} (source)" for p in config.allowed_cps]
    timers = config.timers
    heartbeat = "none" if timers.heartbeat_interval is None else f"every {timers.heartbeat_interval:g} s"
    features = [f.name or "" for f in type(config.features) if f in config.features]
    rows += [
        ("Allowed CPs", ", ".join(cps)),
        ("Features", ", ".join(features) or "none"),
        ("Driver", config.driver),
        *_vpp_rows(config),
        ("Log level", config.log_level),
        ("Capacity", f"{config.capacity.max_sessions} sessions"),
        ("Timers", f"T1 {timers.t1:g} s, N1 {timers.n1}, heartbeat {heartbeat}"),
    ]
    return rows

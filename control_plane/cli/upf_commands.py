"""``edgecups upf ...``: the UPF agent's configuration, checked before it is deployed.

``edgecups upf check-config FILE`` loads a YAML configuration with
:func:`user_plane.config.load_config` and prints a summary (or JSON), or every
problem, one per line. The agent itself (``edgecups upf --config FILE``) is not
part of this build yet: no command here pretends to run it.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from user_plane.config import OPTIONS, ConfigError, UpfConfig, load_config, unavailable

__all__ = ["app"]

#: Exit status when the configuration has problems (or asks for what this build lacks).
EXIT_INVALID = 1

#: Output width when stdout is not a terminal.
_PIPE_WIDTH = 10_000


def _reference() -> str:
    # Typer's rich help joins single newlines; each key gets its own paragraph.
    lines = ["Configuration keys (<network-instance> is a DNN you name; * marks required keys):"]
    lines += [f"{o.path}{' *' if o.required else ''}: {o.help}" for o in OPTIONS]
    return "\n\n".join(lines)


app = typer.Typer(
    name="upf",
    help="UPF (user-plane function) agent tools. The agent itself (edgecups upf --config FILE) arrives with "
    "issue 4's next steps; this build can only check its configuration files.",
    no_args_is_help=True,
    add_completion=False,
)


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
    has problems (driver vpp is valid but not available in this build); 2 on
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
        ("Log level", config.log_level),
        ("Capacity", f"{config.capacity.max_sessions} sessions"),
        ("Timers", f"T1 {timers.t1:g} s, N1 {timers.n1}, heartbeat {heartbeat}"),
    ]
    return rows

"""``edgecups cp --config FILE``: run the control plane until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from control_plane.config import ConfigError, load_config

__all__ = ["app"]

#: Exit status: configuration problems; the database or a socket refused to start.
EXIT_INVALID = 1
EXIT_START_FAILED = 3

app = typer.Typer(name="cp", add_completion=False, invoke_without_command=True)


@app.callback()
def cp(
    config: Annotated[
        Path,
        typer.Option("--config", "-c", metavar="FILE", help="YAML configuration (see control_plane/config.py).",
                     exists=True, dir_okay=False, readable=True),
    ],
) -> None:  # fmt: skip
    """Run the central control plane (PFCP CP function and the gRPC API) until SIGINT/SIGTERM."""
    err = Console(stderr=True)
    try:
        settings = load_config(config)
    except ConfigError as exc:
        for line in exc.errors:
            err.print(f"[red]{line}[/red]", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from control_plane.app import serve
    from db.engine import SchemaOutOfDate

    async def main() -> None:
        shutdown = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, shutdown.set)
        await serve(settings, shutdown)

    try:
        asyncio.run(main())
    except SchemaOutOfDate as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    except OSError as exc:
        err.print(f"[red]cannot start: {exc}[/red]", highlight=False)
        raise typer.Exit(EXIT_START_FAILED) from None

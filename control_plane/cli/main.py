"""The ``edgecups`` command: one Typer application with a group per area."""

from __future__ import annotations

import typer

from . import api_commands, cp_commands, db_commands, deploy_commands, pfcp_commands, sim_commands, upf_commands

__all__ = ["app"]

app = typer.Typer(
    name="edgecups",
    help="EdgeCUPS: control/user plane separation for edge mobile cores.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(pfcp_commands.app, name="pfcp")
app.add_typer(upf_commands.app, name="upf")
app.add_typer(cp_commands.app, name="cp")
app.add_typer(db_commands.app, name="db")
app.add_typer(sim_commands.app, name="sim")
app.add_typer(deploy_commands.app, name="deploy")
api_commands.register(app)

if __name__ == "__main__":  # pragma: no cover - `python -m control_plane.cli.main`
    app()

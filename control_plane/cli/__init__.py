"""The ``edgecups`` command line (Typer + Rich)."""

"""Running an API command: its answer printed as a table, JSON or YAML, its failure as an exit status.

:func:`call` runs one coroutine against the API and turns what can go wrong into the exit
statuses of :mod:`.api_options`: the server's refusal (1, with the gRPC status code, the
field and the message), a usage problem found before sending (2), no answer (3).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn

import typer
import yaml

from control_plane.api.client import ApiClient, Unreachable
from control_plane.errors import CpError

from .api_options import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, Output, Settings

__all__ = ["UsageProblem", "call", "columns", "dump", "emit", "fail", "plain"]


class UsageProblem(Exception):
    """Found before anything was sent (bad arguments, invalid manifests): exit status 2, every line printed."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)


def plain(value: Any) -> Any:
    """``value`` as JSON/YAML can hold it: dataclasses as mappings, tuples as lists, datetimes in ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def dump(value: Any, output: Output, *, documents: bool = False) -> str:
    """JSON (indented) or YAML text of ``value``; with ``documents``, a list becomes a YAML stream."""
    if output is Output.json:
        return json.dumps(plain(value), indent=2, ensure_ascii=False)
    if documents and isinstance(value, list):
        return yaml.safe_dump_all(plain(value), sort_keys=False, allow_unicode=True, explicit_start=True).rstrip()
    return yaml.safe_dump(plain(value), sort_keys=False, allow_unicode=True).rstrip()


def emit(value: Any, output: Output, *, documents: bool = False) -> None:
    typer.echo(dump(value, output, documents=documents))


def cell(value: Any) -> str:
    """One table cell: lists joined by commas, nothing as "-"."""
    if value is None or value == [] or value == "":
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(cell(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def columns(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Rows under upper-case headers in columns two spaces apart (plain text: it pipes into grep and awk)."""
    table = [[h.upper() for h in headers], *([cell(v) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    return "\n".join("  ".join(text.ljust(w) for text, w in zip(row, widths, strict=True)).rstrip() for row in table)


def fail(
    settings: Settings | None, code: int, lines: Sequence[str], error: Mapping[str, Any] | None = None
) -> NoReturn:
    """Print the failure on stderr (as JSON too with ``-o json``) and exit with ``code``."""
    if settings is not None and settings.output is Output.json and error is not None:
        typer.echo(json.dumps({"error": dict(error)}, ensure_ascii=False), err=True)
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(code)


def _hint(settings: Settings, error: CpError) -> list[str]:
    if isinstance(error, Unreachable):
        if settings.credentials.plaintext:
            return ["hint: if the server serves TLS, use --tls (and --ca); is it running at this address?"]
        return ["hint: a plaintext server on loopback needs --insecure; otherwise check --ca and --server-name"]
    if error.code == "UNAUTHENTICATED":
        return ["hint: give a valid token: --token-file FILE, EDGECUPS_TOKEN or token_file in the config file"]
    if error.code == "PERMISSION_DENIED":
        return ["hint: this needs a token with another role (`edgecups api token create --role ...`)"]
    return []


def refused(settings: Settings, error: CpError) -> NoReturn:
    """Exit 3 for no answer, 1 for the server's refusal; code, field and message on stderr."""
    code = EXIT_UNREACHABLE if isinstance(error, Unreachable) else EXIT_REFUSED
    what = "server unreachable" if isinstance(error, Unreachable) else error.code
    described = {"code": error.code, "field": error.field, "message": error.message}
    fail(settings, code, [f"error: {what}: {error}", *_hint(settings, error)], described)


def call(settings: Settings, work: Callable[[ApiClient], Awaitable[int | None]]) -> None:
    """Run ``work`` with a client of the API; exit with the status it returns (None: 0) or its failure's."""

    async def main() -> int | None:
        try:
            client = settings.client()
        except (ValueError, OSError) as exc:  # plaintext to a host others can reach, unreadable TLS files
            raise UsageProblem([f"error: {exc}"]) from None
        async with client:
            return await work(client)

    try:
        status = asyncio.run(main())
    except UsageProblem as problem:
        fail(settings, EXIT_USAGE, problem.lines, {"code": "USAGE", "field": None, "message": str(problem)})
    except CpError as error:
        refused(settings, error)
    except KeyboardInterrupt:  # Ctrl-C ends `events --follow`: the normal way out
        status = 0
    raise typer.Exit(status or 0)

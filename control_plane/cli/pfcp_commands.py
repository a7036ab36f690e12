"""``edgecups pfcp ...``: PFCP tools for operators.

``edgecups pfcp decode`` reads PFCP messages from a hex string, standard input
or a file (pcap/pcapng capture, hex text or raw message bytes) and prints each
message as a tree or as one JSON object per line.
"""

from __future__ import annotations

import json
import string
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

import pfcp
from pfcp.jsonview import JSONValue, error_to_dict, ie_type_name, message_type_name, to_dict

from .capture import CaptureError, Datagram, is_capture, read_datagrams
from .render import message_tree

__all__ = ["app", "parse_hex"]

app = typer.Typer(
    name="pfcp",
    help="PFCP (3GPP TS 29.244) tools.",
    no_args_is_help=True,
    add_completion=False,
)

#: Exit status when a message does not decode, or a capture is damaged or holds none.
EXIT_DECODE_ERROR = 1

#: Output width when stdout is not a terminal.
_PIPE_WIDTH = 10_000

_HEX_TEXT = frozenset((string.hexdigits + string.whitespace + ":").encode())


class OutputFormat(StrEnum):
    """How ``decode`` prints messages."""

    tree = "tree"
    json = "json"


@dataclass(frozen=True, slots=True)
class _Input:
    """Where messages come from: a capture's datagrams, or one buffer of messages."""

    datagrams: Iterable[Datagram] | None
    data: bytes


def parse_hex(text: str) -> bytes:
    """Bytes from hex text; whitespace, colons and a leading ``0x`` are ignored.

    Raises ValueError when what is left is not an even number of hex digits.
    """
    cleaned = "".join(text.split()).replace(":", "")
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    if not cleaned:
        raise ValueError("no hex digits")
    if len(cleaned) % 2:
        raise ValueError(f"odd number of hex digits ({len(cleaned)})")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        bad = next(ch for ch in cleaned if ch not in string.hexdigits)
        raise ValueError(f"{bad!r} is not a hex digit") from None


@app.command("decode")
def decode(
    hex_data: Annotated[
        str | None,
        typer.Argument(
            metavar="HEX",
            help="PFCP message(s) in hex; whitespace and colons are ignored. "
            "Without HEX and --file, standard input is read.",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="A pcap or pcapng capture (UDP datagrams to or from --port), "
            "or a file of hex text or raw message bytes.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        OutputFormat,
        typer.Option("--output", "-o", help="tree: readable tree; json: one JSON object per message per line."),
    ] = OutputFormat.tree,
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="UDP port of PFCP in captures.")
    ] = pfcp.PFCP_PORT,
) -> None:
    """Decode PFCP messages and show every header field and IE.

    A datagram that carries several messages (FO flag) shows all of them.
    Exit status 1 when a message does not decode (the error names the PFCP
    cause and the offending IE), or a capture is damaged or holds no PFCP
    datagram; 2 on bad usage, or input that is not hex, a capture or a file.
    """
    if hex_data is not None and file is not None:
        raise typer.BadParameter("give HEX or --file, not both")
    if file is not None:
        source = _load(_read_file(file), f"{file}", port)
    elif hex_data is not None:
        source = _Input(None, _hex_or_fail(hex_data, "HEX"))
    else:
        source = _load(_read_stdin(), "standard input", port)
    printer = _Printer(output)
    if source.datagrams is None:
        failed = printer.buffer(source.data)
    else:
        failed = printer.capture(source.datagrams, port, file)
    if failed:
        raise typer.Exit(EXIT_DECODE_ERROR)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--file") from None


def _read_stdin() -> bytes:
    if sys.stdin.isatty():
        raise typer.BadParameter("no input: give HEX, --file, or pipe hex to standard input", param_hint="HEX")
    stream = getattr(sys.stdin, "buffer", None)
    data: bytes = stream.read() if stream is not None else sys.stdin.read().encode()
    return data


def _load(data: bytes, origin: str, port: int) -> _Input:
    """Tell a capture from hex text from raw message bytes."""
    if not data:
        raise typer.BadParameter(f"{origin} is empty")
    if is_capture(data):
        return _Input(read_datagrams(data, port=port, warn=_warn), b"")
    if all(byte in _HEX_TEXT for byte in data):
        return _Input(None, _hex_or_fail(data.decode("ascii"), origin))
    return _Input(None, data)


def _hex_or_fail(text: str, origin: str) -> bytes:
    try:
        return parse_hex(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{origin} is not hex: {exc}") from None


def _warn(text: str) -> None:
    typer.echo(f"warning: {text}", err=True)


class _Printer:
    """Prints decoded messages and decode errors in the chosen format."""

    def __init__(self, output: OutputFormat) -> None:
        self.output = output
        self.console = Console(highlight=False)
        if not self.console.is_terminal:
            # Piped into a file, grep or less: one line per field, never wrapped.
            self.console.width = _PIPE_WIDTH
        self.printed = 0

    def buffer(self, data: bytes) -> bool:
        """Decode and print one buffer; True if it failed."""
        try:
            messages = pfcp.decode_all(data)
        except pfcp.DecodeError as exc:
            self._error(exc, None)
            return True
        for message in messages:
            self._message(message, None, None)
        return False

    def capture(self, datagrams: Iterable[Datagram], port: int, path: Path | None) -> bool:
        """Decode and print every PFCP datagram of a capture; True if any failed or none was found."""
        failed = False
        found = 0
        try:
            for datagram in datagrams:
                found += 1
                try:
                    messages = pfcp.decode_all(datagram.payload)
                except pfcp.DecodeError as exc:
                    self._error(exc, datagram)
                    failed = True
                    continue
                for index, message in enumerate(messages):
                    title = _title(datagram, index, len(messages))
                    self._message(message, _capture_meta(datagram, index), title)
        except CaptureError as exc:
            typer.echo(f"error: {path or 'input'}: {exc}", err=True)
            return True
        if not found:
            typer.echo(f"error: no UDP datagram to or from port {port} in {path or 'the capture'}", err=True)
            return True
        return failed

    def _message(self, message: pfcp.Message, meta: dict[str, JSONValue] | None, title: Text | None) -> None:
        view = to_dict(message)
        if self.output is OutputFormat.json:
            record: dict[str, JSONValue] = view if meta is None else {**meta, "pfcp": view}
            _emit_json(record)
            return
        if self.printed:
            self.console.print()
        if title is not None:
            self.console.print(title, soft_wrap=True)
        self.console.print(message_tree(view))
        self.printed += 1

    def _error(self, exc: pfcp.DecodeError, datagram: Datagram | None) -> None:
        where = ""
        if datagram is not None:
            where = f"frame {datagram.frame} ({datagram.src} -> {datagram.dst}): "
        lines = [
            f"error: {where}cannot decode PFCP: {exc.reason}",
            f"  cause: {exc.cause.value} {exc.cause.name}",
        ]
        if exc.offending_ie is not None:
            lines.append(f"  offending IE: {exc.offending_ie} {ie_type_name(exc.offending_ie)}")
        if exc.message_type is not None:
            header = f"  message: {exc.message_type} {message_type_name(exc.message_type)}"
            if exc.sequence is not None:
                header += f", sequence {exc.sequence}"
            if exc.seid is not None:
                header += f", SEID 0x{exc.seid:016x}"
            lines.append(header)
        typer.echo("\n".join(lines), err=True)
        if self.output is OutputFormat.json:
            record: dict[str, JSONValue] = {"error": error_to_dict(exc)}
            if datagram is not None:
                record = {**_capture_meta(datagram, None), **record}
            _emit_json(record)


def _capture_meta(datagram: Datagram, index: int | None) -> dict[str, JSONValue]:
    meta: dict[str, JSONValue] = {"frame": datagram.frame}
    if index is not None:
        meta["index"] = index
    if datagram.time is not None:
        meta["time"] = datagram.time
    meta["src"] = datagram.src
    meta["dst"] = datagram.dst
    return meta


def _title(datagram: Datagram, index: int, count: int) -> Text:
    title = Text(f"Frame {datagram.frame}", style="bold magenta")
    if count > 1:
        title.append(f" message {index + 1}/{count}", style="bold magenta")
    if datagram.time is not None:
        try:
            stamp = datetime.fromtimestamp(datagram.time, UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
        except (OverflowError, OSError, ValueError):  # a time stamp no calendar holds
            stamp = f"{datagram.time:.6f} s"
        title.append(f"  {stamp}")
    title.append(f"  {datagram.src} -> {datagram.dst}")
    return title


def _emit_json(record: dict[str, JSONValue]) -> None:
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")

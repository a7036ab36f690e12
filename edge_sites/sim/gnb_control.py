"""The gNB simulator as a process: its control protocol, server, client, and the process runner.

Control protocol: JSON lines over a unix stream socket (the path is in the gNB's configuration,
so it works across network namespaces). Each request is one JSON object on one line with an
``op`` and, optionally, an ``id`` echoed in the answer; each answer is one line::

    {"id": 1, "op": "attach", "ue_ip": "198.19.0.1", "uplink_teid": 4096, "upf_n3": "198.18.1.1",
     "downlink_teid": 8193, "qfi": 9}
    {"id": 1, "ok": true, "result": {"ue_ip": "198.19.0.1", ...}}
    {"id": 2, "ok": false, "error": "UE 198.19.0.9 is not attached", "field": "ue_ip"}

======================  ==========================================  =================================
op                      arguments                                   result
======================  ==========================================  =================================
``attach``              ue_ip, uplink_teid, upf_n3, downlink_teid,  the tunnel
                        qfi
``detach``              ue_ip                                       the UE's final counters
``move``                ue_ip; any of uplink_teid, upf_n3,          the new tunnel
                        downlink_teid, qfi
``counters``            ue_ip (optional)                            the UE's counters, or
                                                                    ``{"gnb": {...}, "ues": {ip: {...}}}``
``status``              --                                          name, netns, n3_address, ues, counters
``echo``                upf_n3, timeout (s, default 1, at most 10)  ``{"rtt_ms": float}``
``shutdown``            --                                          ``{}``; the process then exits 0
======================  ==========================================  =================================

Running it: ``python -m edge_sites.sim.gnb --config FILE`` (YAML or JSON, the keys of
:class:`~edge_sites.sim.gnb_config.GnbConfig`) inside the gNB's namespace; it writes one JSON
readiness line on stdout (:func:`~edge_sites.sim.process.announce_ready`), logs on stderr, and
stops on SIGTERM/SIGINT or ``shutdown``. :class:`GnbProcess` does all of that for a caller.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
import socket
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import yaml

from .gnb import Gnb, GnbError
from .gnb_config import MAX_QFI, MAX_TEID, FieldError, GnbConfig, UeTunnel, parse_ipv4, parse_uint
from .process import NetnsProcess, announce_ready

__all__ = [
    "OPS",
    "ControlError",
    "GnbClient",
    "GnbProcess",
    "Request",
    "handle_connection",
    "main",
    "parse_request",
    "serve",
]

log = logging.getLogger("edge_sites.sim.gnb")

#: A request line longer than this is refused (the protocol's largest request is ~200 octets).
MAX_LINE: Final = 64 * 1024
OPS: Final = ("attach", "detach", "move", "counters", "status", "echo", "shutdown")
_MOVE_FIELDS: Final = {"uplink_teid": (1, MAX_TEID), "downlink_teid": (1, MAX_TEID), "qfi": (0, MAX_QFI)}


class ControlError(RuntimeError):
    """The gNB refused a request (``field`` names the offending argument) or did not answer."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message if field is None else f"{field}: {message}")
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed, validated request: ``args`` hold typed values (IPv4Address, int, UeTunnel)."""

    op: str
    id: Any
    args: Mapping[str, Any]


def parse_request(line: bytes | str) -> Request:
    """Parse and validate one request line; raises :class:`FieldError` naming what is wrong."""
    if len(line) > MAX_LINE:
        raise FieldError("(request)", f"longer than {MAX_LINE} octets")
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise FieldError("(request)", f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise FieldError("(request)", "expected a JSON object")
    op = data.pop("op", None)
    request_id = data.pop("id", None)
    if op not in OPS:
        raise FieldError("op", f"{op!r} is not one of {', '.join(OPS)}")
    allowed = {
        "attach": set(UeTunnel.FIELDS),
        "detach": {"ue_ip"},
        "move": {"ue_ip", "upf_n3", *_MOVE_FIELDS},
        "counters": {"ue_ip"},
        "echo": {"upf_n3", "timeout"},
    }.get(op, set())
    for key in data:
        if key not in allowed:
            raise FieldError(key, f"not an argument of {op}")
    args: dict[str, Any] = {}
    if op == "attach":
        args["tunnel"] = UeTunnel.from_dict(data)
    elif op in ("detach", "move") or (op == "counters" and "ue_ip" in data):
        if "ue_ip" not in data:
            raise FieldError("ue_ip", "required")
        args["ue_ip"] = parse_ipv4(data["ue_ip"], "ue_ip")
    if op == "move":
        if "upf_n3" in data:
            args["upf_n3"] = parse_ipv4(data["upf_n3"], "upf_n3")
        for name, (low, high) in _MOVE_FIELDS.items():
            if name in data:
                args[name] = parse_uint(data[name], name, low, high)
    elif op == "echo":
        if "upf_n3" not in data:
            raise FieldError("upf_n3", "required")
        args["upf_n3"] = parse_ipv4(data["upf_n3"], "upf_n3")
        timeout = data.get("timeout", 1.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 10:
            raise FieldError("timeout", "a number of seconds in (0, 10]")
        args["timeout"] = float(timeout)
    return Request(op, request_id, args)


async def _execute(gnb: Gnb, request: Request, shutdown: Callable[[], None]) -> Any:
    args = request.args
    if request.op == "attach":
        await gnb.attach(args["tunnel"])
        return args["tunnel"].to_dict()
    if request.op == "detach":
        return (await gnb.detach(args["ue_ip"])).to_dict()
    if request.op == "move":
        return gnb.move(args["ue_ip"], **{k: v for k, v in args.items() if k != "ue_ip"}).to_dict()
    if request.op == "counters":
        if "ue_ip" in args:
            return gnb.ue_counters(args["ue_ip"]).to_dict()
        ues = {str(t.ue_ip): gnb.ue_counters(t.ue_ip).to_dict() for t in gnb.tunnels()}
        return {"gnb": dict(gnb.counters), "ues": ues}
    if request.op == "status":
        return gnb.status()
    if request.op == "echo":
        try:
            return {"rtt_ms": await gnb.echo(args["upf_n3"], args["timeout"]) * 1000}
        except TimeoutError:
            raise GnbError(f"no Echo Response from {args['upf_n3']} within {args['timeout']} s", "upf_n3") from None
    shutdown()
    return {}


async def _answer(gnb: Gnb, line: bytes, shutdown: Callable[[], None]) -> dict[str, Any]:
    try:
        request = parse_request(line)
    except FieldError as exc:
        return {"id": None, "ok": False, "error": exc.message, "field": exc.field}
    try:
        return {"id": request.id, "ok": True, "result": await _execute(gnb, request, shutdown)}
    except (GnbError, FieldError) as exc:
        message = exc.message if isinstance(exc, FieldError) else str(exc)
        return {"id": request.id, "ok": False, "error": message, "field": exc.field}
    except Exception as exc:  # a netlink failure and the like: reported, the gNB keeps serving
        log.exception("%s failed", request.op)
        return {"id": request.id, "ok": False, "error": f"{request.op} failed: {exc}", "field": None}


async def handle_connection(
    gnb: Gnb, stopping: asyncio.Event, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Serve one control connection: a line in, a line out, until the peer closes."""
    try:
        while line := await reader.readline():
            writer.write(json.dumps(await _answer(gnb, line, stopping.set)).encode() + b"\n")
            await writer.drain()
    except ValueError:  # a line beyond the reader's limit: answered, then the connection closes
        too_long = {"id": None, "ok": False, "error": f"longer than {MAX_LINE} octets", "field": "(request)"}
        writer.write(json.dumps(too_long).encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve(config: GnbConfig) -> None:
    """Run the gNB and its control socket until SIGTERM/SIGINT or a ``shutdown`` request."""
    if config.control_socket is None:
        raise FieldError("control_socket", "required to run as a process")
    path = config.control_socket
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    gnb = Gnb(config)
    await gnb.start()

    try:
        _remove_stale_socket(path)
        server = await asyncio.start_unix_server(
            functools.partial(handle_connection, gnb, stopping), str(path), limit=MAX_LINE
        )
        os.chmod(path, 0o600)
        announce_ready({"name": config.name, "netns": gnb.netns, "control_socket": str(path), "pid": os.getpid()})
        async with server:
            await stopping.wait()
    finally:
        await gnb.stop()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    log.info("gNB %s stopped", config.name)


def _remove_stale_socket(path: Path) -> None:
    """A socket file nobody answers on is a crashed run's; anything else at the path is refused."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FieldError("control_socket", f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink()
            return
    raise FieldError("control_socket", f"another process serves {path}")


def main(argv: list[str] | None = None) -> int:
    """``python -m edge_sites.sim.gnb --config FILE``: 0 after a clean stop, 2 for a bad configuration."""
    parser = argparse.ArgumentParser(prog="python -m edge_sites.sim.gnb", description="RAN (gNB) simulator")
    parser.add_argument("--config", required=True, type=Path, help="YAML or JSON file with the GnbConfig keys")
    options = parser.parse_args(argv)
    try:
        config = GnbConfig.from_dict(yaml.safe_load(options.config.read_text()))
    except (OSError, yaml.YAMLError, FieldError) as exc:
        print(f"gnb: bad configuration {options.config}: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        asyncio.run(serve(config))
    except Exception as exc:
        log.error("gNB %s failed: %s", config.name, exc)
        return 2 if isinstance(exc, FieldError) else 1
    return 0


class GnbClient:
    """A synchronous client of one gNB's control socket (one request at a time)."""

    def __init__(self, path: str | Path, timeout: float = 10.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(path))
        except OSError:
            self._sock.close()
            raise
        self._file = self._sock.makefile("rwb")
        self._next_id = 0

    def call(self, op: str, **args: Any) -> Any:
        """Send one request; its ``result``, or :class:`ControlError` with the gNB's reason."""
        self._next_id += 1
        request = {"id": self._next_id, "op": op, **{k: _plain(v) for k, v in args.items() if v is not None}}
        try:
            self._file.write(json.dumps(request).encode() + b"\n")
            self._file.flush()
            line = self._file.readline(MAX_LINE)
        except OSError as exc:  # includes the socket timeout
            raise ControlError(f"{op}: no answer from the gNB: {exc}") from None
        if not line:
            raise ControlError(f"{op}: the gNB closed the control connection")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise ControlError(str(answer.get("error")), answer.get("field"))
        return answer["result"]

    def attach(self, tunnel: UeTunnel) -> dict[str, Any]:
        return dict(self.call("attach", **tunnel.to_dict()))

    def detach(self, ue_ip: IPv4Address | str) -> dict[str, Any]:
        return dict(self.call("detach", ue_ip=ue_ip))

    def move(
        self,
        ue_ip: IPv4Address | str,
        *,
        uplink_teid: int | None = None,
        upf_n3: IPv4Address | str | None = None,
        downlink_teid: int | None = None,
        qfi: int | None = None,
    ) -> dict[str, Any]:
        changes = {"uplink_teid": uplink_teid, "upf_n3": upf_n3, "downlink_teid": downlink_teid, "qfi": qfi}
        return dict(self.call("move", ue_ip=ue_ip, **changes))

    def counters(self, ue_ip: IPv4Address | str | None = None) -> dict[str, Any]:
        return dict(self.call("counters", ue_ip=ue_ip))

    def status(self) -> dict[str, Any]:
        return dict(self.call("status"))

    def echo(self, upf_n3: IPv4Address | str, timeout: float = 1.0) -> float:
        """Round trip of a GTP-U Echo Request to ``upf_n3``, in milliseconds."""
        return float(self.call("echo", upf_n3=upf_n3, timeout=timeout)["rtt_ms"])

    def shutdown(self) -> None:
        self.call("shutdown")

    def close(self) -> None:
        self._file.close()
        self._sock.close()


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, IPv4Address | Path) else value


class GnbProcess:
    """A gNB process in namespace ``netns``: writes ``workdir/gnb-<name>.yaml``, starts
    ``python -m edge_sites.sim.gnb``, and connects a :class:`GnbClient` (``.client``)."""

    def __init__(self, netns: str, config: GnbConfig, workdir: Path) -> None:
        if config.control_socket is None:
            config = replace(config, control_socket=workdir / f"gnb-{config.name}.sock")
        self.config = config
        self.config_path = workdir / f"gnb-{config.name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        args = ["--config", str(self.config_path)]
        self.process = NetnsProcess(netns, "edge_sites.sim.gnb", args, log_path=workdir / f"gnb-{config.name}.log")
        self._client: GnbClient | None = None

    @property
    def client(self) -> GnbClient:
        if self._client is None:
            raise ControlError("the gNB process is not running")
        return self._client

    def start(self, timeout: float = 10.0) -> GnbClient:
        self.process.start(timeout)
        assert self.config.control_socket is not None
        self._client = GnbClient(self.config.control_socket)
        return self._client

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM (the gNB removes its rules and devices), then the exit code (0 when clean)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        return self.process.stop(timeout)

    def log(self) -> str:
        return self.process.log()

    def __enter__(self) -> GnbProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

"""The front-end workers' lifecycle: spawn, wait until serving, restart with backoff, stop.

:func:`start_workers` opens the core's socket in a private directory (0700, under the system's
temporary directory), writes the workers' spec there (TLS file paths and token hashes, 0600),
and starts ``count`` worker processes one after another, each waiting for its READY frame (sent
once its gRPC server listens): start-up fails if one exits first. Port 0 lets the first worker
pick a free port, which the others and every restarted worker then share.

A control plane killed without stopping (SIGKILL) leaves its directory behind: the next
start removes such directories of this user that nobody listens in any more
(:func:`sweep_stale_directories`).

A worker that dies is started again after a delay that doubles from 0.5 s up to 10 s (back to
0.5 s once a worker has served for a minute), each time logged. :meth:`WorkerPool.stop` stops
them with SIGTERM (they finish their calls with a 1 s grace), SIGKILL after 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, cast

from control_plane.api.frontend import codec
from control_plane.api.frontend.core import CoreServer, method_handlers
from control_plane.api.frontend.worker import WorkerSpec
from control_plane.api.provisioning import ProvisioningServicer
from control_plane.api.security import ApiSecurity
from control_plane.api.status_service import StatusServicer
from control_plane.config import CpConfig
from control_plane.services.views import SessionApi

__all__ = ["WorkerPool", "start_api_workers", "start_workers", "sweep_stale_directories"]

log = logging.getLogger("control_plane.api.frontend")

#: How long a worker may take from spawn to READY (imports, TLS files, bind).
START_TIMEOUT: Final = 30.0
_FIRST_BACKOFF: Final = 0.5
_MAX_BACKOFF: Final = 10.0
_STABLE: Final = 60.0
_STOP_TIMEOUT: Final = 5.0


class WorkerPool:
    """Running front-end workers (what :func:`start_workers` returns)."""

    def __init__(self, count: int, handlers: Mapping[str, Any], spec: WorkerSpec, directory: Path, port: int) -> None:
        self.count = count
        self.port = port
        self.restarts = 0
        self._spec = directory / "worker.json"
        self._spec.touch(mode=0o600)
        self._spec.write_text(spec.to_json())
        self._dir = directory
        self._core = CoreServer(handlers, Path(spec.core), on_ready=self.on_ready)
        self._processes: list[asyncio.subprocess.Process | None] = [None] * count
        self._ready: dict[int, asyncio.Future[codec.Ready]] = {}
        self._supervisors: list[asyncio.Task[None]] = []
        self._stopping = False

    def pids(self) -> list[int]:
        """The process ids of the workers running now."""
        return [p.pid for p in self._processes if p is not None and p.returncode is None]

    def on_ready(self, ready: codec.Ready) -> None:
        waiter = self._ready.get(ready.pid)
        if waiter is not None and not waiter.done():
            waiter.set_result(ready)

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "control_plane.api.frontend.worker", str(self._spec), "--port", str(self.port)
        )
        waiter: asyncio.Future[codec.Ready] = asyncio.get_running_loop().create_future()
        self._ready[process.pid] = waiter
        exited: asyncio.Future[Any] = asyncio.ensure_future(process.wait())
        try:
            done, _ = await asyncio.wait(
                [cast("asyncio.Future[Any]", waiter), exited],
                timeout=START_TIMEOUT,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if waiter not in done:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                    raise OSError(f"API worker {index} (pid {process.pid}) was not serving after {START_TIMEOUT:.0f} s")
                raise OSError(
                    f"API worker {index} (pid {process.pid}) exited with status {process.returncode} before "
                    "serving (its log says why: e.g. the API's port is taken)"
                )
        except asyncio.CancelledError:
            if process.returncode is None:  # stopped while it started: it must not stay behind
                process.kill()
            raise
        finally:
            exited.cancel()
            del self._ready[process.pid]
        if self.port == 0:
            self.port = waiter.result().port
        self._processes[index] = process
        return process

    async def _supervise(self, index: int) -> None:
        backoff = _FIRST_BACKOFF
        loop = asyncio.get_running_loop()
        while not self._stopping:
            process = self._processes[index]
            started = loop.time()
            if process is not None:
                status = await process.wait()
                if self._stopping:
                    return
                if loop.time() - started > _STABLE:
                    backoff = _FIRST_BACKOFF
                log.warning(
                    "API worker %d (pid %d) exited with status %s; starting another in %.1f s",
                    index,
                    process.pid,
                    status,
                    backoff,
                )
                self._processes[index] = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)
            if self._stopping:
                return
            try:
                process = await self._spawn(index)
            except OSError as error:
                log.error("API worker %d did not start: %s", index, error)
                continue
            self.restarts += 1
            log.warning("API worker %d restarted (pid %d)", index, process.pid)

    async def start(self, address: str) -> None:
        """The core's socket, then each worker in turn until it serves, then their supervisors."""
        _check_port_free(address, self.port)
        await self._core.start()
        for index in range(self.count):
            await self._spawn(index)
        self._supervisors = [asyncio.ensure_future(self._supervise(i)) for i in range(self.count)]

    async def stop(self) -> None:
        """Stop the workers (SIGTERM, SIGKILL after 5 s), then the core's socket; removes the directory."""
        self._stopping = True
        for task in self._supervisors:
            task.cancel()
        processes = [p for p in self._processes if p is not None and p.returncode is None]
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), _STOP_TIMEOUT)
            except TimeoutError:
                log.warning("API worker pid %d did not stop in %.0f s: killing it", process.pid, _STOP_TIMEOUT)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await self._core.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _check_port_free(address: str, port: int) -> None:
    """OSError when something listens on ``address``:``port`` already.

    The workers share their port through SO_REUSEPORT, which would as quietly let them share it with
    another control plane's workers (same user): a probe bound without it finds any listener there.
    """
    if port == 0 or address.startswith("unix:"):
        return
    family, kind, proto, _, sockaddr = socket.getaddrinfo(address.strip("[]"), port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # connections in TIME_WAIT do not count
        try:
            probe.bind(sockaddr)
        except OSError as error:
            raise OSError(
                error.errno, f"cannot serve the API: {address} port {port} is in use ({error.strerror})"
            ) from None


async def start_workers(
    count: int,
    handlers: Mapping[str, Any],
    *,
    address: str,
    port: int,
    security: ApiSecurity,
    log_level: str = "warning",
) -> WorkerPool:
    """Start the core's socket and ``count`` workers serving ``address``:``port``; raises OSError.

    ``handlers`` are :func:`control_plane.api.frontend.core.method_handlers`'s.
    """
    if count < 1:
        raise ValueError(f"{count} workers: at least one is needed")
    for stale in sweep_stale_directories():
        log.info("removed %s, left by a control plane that did not stop", stale)
    directory = Path(tempfile.mkdtemp(prefix=_PREFIX))  # 0700: only this user reaches the socket
    spec = WorkerSpec(core=str(directory / "core.sock"), address=address, security=security, log_level=log_level)
    pool = WorkerPool(count, handlers, spec, directory, port)
    try:
        await pool.start(address)
    except BaseException:
        await pool.stop()
        raise
    return pool


async def start_api_workers(
    config: CpConfig, api: SessionApi, provisioning: ProvisioningServicer | None, status: StatusServicer | None
) -> WorkerPool:
    """``config.api_workers`` workers serving the API's address, port and security over these servicers."""
    if config.api_security is None:
        raise ValueError("the configuration has no api section")
    return await start_workers(
        config.api_workers,
        method_handlers(api, provisioning, status),
        address=config.api_address,
        port=config.api_port,
        security=config.api_security,
        log_level=config.log_level,
    )


_PREFIX: Final = "edgecups-api-"
#: A directory younger than this may belong to a control plane still starting (no socket yet).
_STALE_AFTER: Final = 60.0


def sweep_stale_directories(parent: Path | None = None, *, now: float | None = None) -> list[Path]:
    """Remove this user's workers' directories under ``parent`` (the temporary directory) whose
    core socket nobody listens on any more, and which are older than a minute; the removed ones.

    They hold token hashes and TLS file paths (0700/0600): left by a control plane that was
    killed, they would pile up. A directory whose socket answers belongs to a running one."""
    parent = Path(tempfile.gettempdir()) if parent is None else parent
    now = time.time() if now is None else now
    removed: list[Path] = []
    for directory in parent.glob(_PREFIX + "*"):
        try:
            info = directory.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or now - info.st_mtime < _STALE_AFTER:
            continue
        if _listening(directory / "core.sock"):
            continue
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


def _listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:  # no socket, or nobody accepts on it (ECONNREFUSED)
            return False
    return True

"""A throwaway PostgreSQL server for tests: initdb into a temp dir, start on a free port, remove after.

The tests never use a PostgreSQL that happens to run on the machine: they start their own, listening
on 127.0.0.1 only, with its Unix socket inside its temp dir, trust authentication, and durability
switched off (fsync, synchronous_commit) because the data is thrown away. initdb refuses to run as
root, so as root the server runs as the ``postgres`` system user (created by Debian's package)
with the temp dir given to it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

__all__ = ["PostgresServer", "find_postgres_bin", "postgres_unavailable_reason", "running_postgres"]

#: Unprivileged users to run the server as when the tests run as root, in order of preference.
SERVER_USERS = ("postgres", "nobody")
SUPERUSER = "postgres"
START_TIMEOUT_S = 60
START_ATTEMPTS = 3


def find_postgres_bin() -> Path | None:
    """The directory holding initdb and pg_ctl: Debian's /usr/lib/postgresql/N/bin (newest), else PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for directory in candidates:
        if os.access(Path(directory) / "initdb", os.X_OK) and os.access(Path(directory) / "pg_ctl", os.X_OK):
            return Path(directory)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).resolve().parent == Path(pg_ctl).resolve().parent:
        return Path(initdb).resolve().parent
    return None


def _version_key(directory: str) -> tuple[int, str]:
    version = Path(directory).parent.name
    return (int(version), version) if version.isdigit() else (0, version)


def _server_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in SERVER_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    return None


def postgres_unavailable_reason() -> str | None:
    """Why a test server cannot be started here, or None when it can."""
    if find_postgres_bin() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or on PATH; "
            "install the Debian package 'postgresql' (make system-deps)"
        )
    if os.geteuid() == 0 and _server_user() is None:
        return f"running as root and none of the users {SERVER_USERS} exists to run initdb as"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class PostgresServer:
    """A running test server; ``url(name)`` gives a SQLAlchemy URL for one of its databases."""

    host: str
    port: int
    user: str
    directory: Path

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def socket_url(self, database: str) -> str:
        """The same database through the server's unix socket: reachable from any network
        namespace of this host (the TCP port is on this namespace's loopback only)."""
        return f"postgresql+psycopg://{self.user}@/{database}?host={self.directory}&port={self.port}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True)

    def create_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        # FORCE (PostgreSQL 13+) ends connections a test left open, so the drop cannot hang.
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _run(args: list[str], user: pwd.struct_passwd | None, cwd: Path) -> None:
    owner = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user is not None else {}
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, **owner)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip() or result.stdout}")


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a fresh server, yield it, then stop it and delete its files."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    bindir = find_postgres_bin()
    assert bindir is not None
    user = _server_user()
    directory = Path(tempfile.mkdtemp(prefix="edgecups-pg-"))
    data, log = directory / "data", directory / "server.log"
    started = False
    try:
        if user is not None:
            os.chown(directory, user.pw_uid, user.pw_gid)
        _run(
            [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-locale",
             "--no-sync"],
            user, directory,
        )  # fmt: skip
        for attempt in range(START_ATTEMPTS):
            # The port is free when picked, but another process may take it before the server binds.
            port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {directory} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                _run(
                    [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", str(START_TIMEOUT_S),
                     "-o", options, "start"],
                    user, directory,
                )  # fmt: skip
                break
            except RuntimeError as exc:
                server_log = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                if "could not bind" not in server_log or attempt == START_ATTEMPTS - 1:
                    raise RuntimeError(f"{exc}\n{server_log}") from None
        started = True
        yield PostgresServer(host="127.0.0.1", port=port, user=SUPERUSER, directory=directory)
    finally:
        if started:
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], user, directory)
        shutil.rmtree(directory, ignore_errors=True)

"""A Mosquitto broker configured like ``deploy/mosquitto/``, for the simulation and the tests.

Operators run the broker from ``deploy/mosquitto/mosquitto.conf``; the simulated deployment
(``edgecups sim``) and the tests run their own, configured the same way where it matters:
password authentication for every client (``allow_anonymous false``), the repository's ACL
(``deploy/mosquitto/acl``: each site's user publishes only under its own branch), persistence.
What differs is only what a throwaway broker needs: one plaintext listener on the address and
port given (inside a network namespace: nothing outside ever reaches it), every file in one
directory, and the log on stderr.

* :func:`find_mosquitto` finds ``mosquitto`` (Debian installs it in /usr/sbin, off an ordinary
  user's PATH) and ``mosquitto_passwd``; :func:`mosquitto_missing` says what to install.
* :func:`write_broker_files` writes the password file (plain ``user:password`` lines hashed in
  place by ``mosquitto_passwd -U``, as deploy/mosquitto/README.md has operators do), the ACL and
  the configuration; :meth:`BrokerFiles.command` is the command line that runs it.
* :func:`wait_listening` waits, bounded, until the port accepts TCP connections (in the
  namespace), or the process died.

Starting, stopping and recording the process is the caller's: the tests keep a ``Popen``
(tests/harness/mosquitto.py), the simulation a detached process it finds again by its record.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# The broker users that are not sites: named once, with the deployment that installs the ACL.
from ..kube.broker import BROKER_USERS as RESERVED_USERS
from ..kube.broker import CP_USER, VIEWER_USER
from .netns import netns_socket

__all__ = [
    "CP_USER",
    "DEPLOYED_ACL",
    "RESERVED_USERS",
    "VIEWER_USER",
    "BrokerError",
    "BrokerFiles",
    "accepts",
    "find_mosquitto",
    "mosquitto_missing",
    "new_password",
    "wait_listening",
    "write_broker_files",
]

#: The ACL operators install (deploy/mosquitto/acl in the repository).
DEPLOYED_ACL: Final = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "acl"
_POLL: Final = 0.05


class BrokerError(RuntimeError):
    """The broker cannot be set up or did not start; the message says why (with its log)."""


def find_mosquitto() -> tuple[Path, Path] | None:
    """The broker and mosquitto_passwd, when both exist."""
    broker = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None
    )
    passwd = shutil.which("mosquitto_passwd")
    return None if broker is None or passwd is None else (Path(broker), Path(passwd))


def mosquitto_missing() -> str | None:
    """None when the broker can run here; otherwise what is missing and how to get it."""
    if find_mosquitto() is None:
        return (
            "mosquitto and mosquitto_passwd not found: install the Debian package mosquitto "
            "(`make system-deps` does; apt-get install mosquitto)"
        )
    return None


def new_password() -> str:
    """A broker password as deploy/mosquitto/README.md makes one (``openssl rand -hex 24``)."""
    return secrets.token_hex(24)


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """Where one broker's files are; :meth:`command` runs it."""

    directory: Path
    binary: Path
    host: str
    port: int

    @property
    def config_file(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def password_file(self) -> Path:
        return self.directory / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.directory / "acl"

    def command(self) -> list[str]:
        return [str(self.binary), "-c", str(self.config_file)]


def _config(files: BrokerFiles, *, verbose: bool) -> str:
    # The log types of deploy/mosquitto/mosquitto.conf, plus "information" (connections with
    # their user names); "all" adds a line per message, for tests that read the log.
    log_types = ["all"] if verbose else ["error", "warning", "notice", "information"]
    lines = [
        "per_listener_settings false",
        f"listener {files.port} {files.host}",
        "allow_anonymous false",
        f"password_file {files.password_file}",
        f"acl_file {files.acl_file}",
        # Retained statuses survive a restart of the broker, as in production.
        "persistence true",
        f"persistence_location {files.directory}/",
        # As root Mosquitto would switch to the user "mosquitto", who cannot read this directory.
        f"user {pwd.getpwuid(os.geteuid()).pw_name}",
        "max_inflight_messages 32",
        "max_queued_messages 10000",
        "log_dest stderr",
        *(f"log_type {t}" for t in log_types),
        "connection_messages true",
    ]
    return "\n".join(lines) + "\n"


def write_broker_files(
    directory: Path,
    users: Mapping[str, str],
    *,
    host: str,
    port: int,
    acl: str | None = None,
    verbose: bool = False,
) -> BrokerFiles:
    """Write the configuration, hashed password file and ACL of a broker for ``users`` (name ->
    password) listening on ``host:port``; ``acl`` defaults to the deployed one."""
    found = find_mosquitto()
    if found is None:
        raise BrokerError(mosquitto_missing() or "")
    binary, passwd = found
    if acl is None:
        try:
            acl = DEPLOYED_ACL.read_text()
        except OSError as exc:
            raise BrokerError(f"cannot read the broker's ACL {DEPLOYED_ACL}: {exc.strerror or exc}") from None
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = BrokerFiles(directory, binary, host, port)
    # Plain lines first, hashed in place: the file never holds them after mosquitto_passwd ran.
    fd = os.open(files.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("".join(f"{name}:{password}\n" for name, password in users.items()))
    done = subprocess.run([str(passwd), "-U", str(files.password_file)], capture_output=True, timeout=30, check=False)
    if done.returncode != 0:
        files.password_file.unlink()
        raise BrokerError(f"mosquitto_passwd -U failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    files.acl_file.write_text(acl)
    files.config_file.write_text(_config(files, verbose=verbose))
    return files


def accepts(host: str, port: int, netns: str | None = None) -> bool:
    """Whether something accepts TCP connections on ``host:port`` (seen from ``netns``) now."""
    sock = socket.socket() if netns is None else netns_socket(netns, socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(1.0)
        try:
            sock.connect((host, port))
        except OSError:
            return False
        return True


def wait_listening(
    host: str,
    port: int,
    deadline: float,
    *,
    netns: str | None = None,
    still_running: Callable[[], bool] = lambda: True,
    log: Callable[[], str] = lambda: "",
) -> None:
    """Until the broker accepts connections; :class:`BrokerError` (with the end of its log) when
    it exited first or ``deadline`` (monotonic) passed."""
    while not accepts(host, port, netns):
        if not still_running():
            raise BrokerError(f"mosquitto exited before it listened on {host}:{port}:\n{log()[-2000:]}")
        if time.monotonic() > deadline:
            raise BrokerError(f"mosquitto not listening on {host}:{port} in time:\n{log()[-2000:]}")
        time.sleep(_POLL)

"""A throwaway Mosquitto broker for tests: its own temp dir, a free port, real passwords and ACLs.

The tests never use a broker that happens to run on the machine. :class:`Mosquitto` has the
product's :func:`edge_sites.sim.mosquitto.write_broker_files` write a configuration (one
listener, ``allow_anonymous false``, persistence in its directory), a password file (hashed by
``mosquitto_passwd -U``, as an operator makes one) and an ACL file (the repository's
``deploy/mosquitto/acl`` unless the test gives its own), then runs ``mosquitto -c FILE``
(inside a network namespace when asked) and waits until the port accepts connections.
:meth:`Mosquitto.restart` stops it (SIGTERM: it saves its persistence file) and starts it again
on the same port; :meth:`Mosquitto.kill` is a crash. With ``tls`` (:class:`TlsListener`, the
files of :func:`tests.harness.tls.make_pki`) the one listener speaks TLS only, and with
``require_certificate`` it wants a client certificate signed by that CA besides the password.

:class:`Collector` (:class:`edge_sites.sim.mqtt_watch.Collector` on such a broker) subscribes
with a persistent session (QoS 1, ``clean_session`` off), so what is published while it is cut
off by a broker restart is delivered when it reconnects; tests wait on what it collected with
bounded waits.

:func:`mosquitto_unavailable_reason` says why a test must skip (``make system-deps``
installs the Debian package ``mosquitto``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from edge_sites.sim import mqtt_watch
from edge_sites.sim.mosquitto import (
    DEPLOYED_ACL,
    BrokerError,
    find_mosquitto,
    mosquitto_missing,
    wait_listening,
    write_broker_files,
)
from edge_sites.sim.mqtt_watch import Message
from tests.harness.netns import netns_socket

__all__ = [
    "DEPLOYED_ACL",
    "Collector",
    "Message",
    "Mosquitto",
    "TlsListener",
    "find_mosquitto",
    "free_port",
    "mosquitto_unavailable_reason",
    "running_mosquitto",
]

START_TIMEOUT_S: Final = 15.0


def mosquitto_unavailable_reason() -> str | None:
    return mosquitto_missing()


def free_port(host: str = "127.0.0.1", netns: str | None = None) -> int:
    """A TCP port nothing listens on now (in ``netns`` when given)."""
    sock = socket.socket() if netns is None else netns_socket(netns, socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class TlsListener:
    """TLS on the broker's listener: its CA, certificate and key (PEM); ``require_certificate``:
    clients must also present a certificate that CA signed (mutual TLS)."""

    ca: Path
    cert: Path
    key: Path
    require_certificate: bool = False

    def config_lines(self) -> list[str]:
        # With per_listener_settings false these still belong to the (only) listener line.
        return [
            f"cafile {self.ca}",
            f"certfile {self.cert}",
            f"keyfile {self.key}",
            f"require_certificate {'true' if self.require_certificate else 'false'}",
        ]


class Mosquitto:
    """One broker: ``users`` (name -> password) log in with passwords; the ACL decides the rest."""

    def __init__(
        self,
        workdir: Path,
        users: Mapping[str, str],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        netns: str | None = None,
        acl: str | None = None,
        tls: TlsListener | None = None,
    ) -> None:
        if find_mosquitto() is None:
            pytest.skip(mosquitto_unavailable_reason() or "")
        self.host = host
        self.netns = netns
        self.port = port if port is not None else free_port(host, netns)
        self.dir = workdir
        self.files = write_broker_files(workdir, users, host=host, port=self.port, acl=acl, verbose=True)
        self.password_file = self.files.password_file
        self.acl_file = self.files.acl_file
        self.config_file = self.files.config_file
        self.tls = tls
        if tls is not None:
            with self.config_file.open("a") as config:
                config.write("\n".join(tls.config_lines()) + "\n")
        self.log_path = self.dir / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        command = self.files.command()
        if self.netns is not None:
            command = ["ip", "netns", "exec", self.netns, *command]
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.process = process
        self.starts += 1
        try:
            wait_listening(
                self.host,
                self.port,
                time.monotonic() + START_TIMEOUT_S,
                netns=self.netns,
                still_running=lambda: process.poll() is None,
                log=self.log,
            )
        except BrokerError as exc:
            self.kill()
            raise AssertionError(str(exc)) from None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Mosquitto saves its retained messages), then wait; SIGKILL after ``timeout``."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing saved."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def running_mosquitto(workdir: Path, users: Mapping[str, str], **kwargs: object) -> Iterator[Mosquitto]:
    """A started broker, stopped afterwards (also when the test failed)."""
    broker = Mosquitto(workdir, users, **kwargs)  # type: ignore[arg-type]
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class Collector(mqtt_watch.Collector):
    """Every message on ``topics``, as ``username`` sees it on ``broker`` (a persistent session)."""

    def __init__(
        self,
        broker: Mosquitto,
        username: str,
        password: str,
        topics: Sequence[str] = ("edgecups/v1/#",),
        *,
        client_id: str = "test-collector",
    ) -> None:
        self.broker = broker
        super().__init__(
            broker.host,
            broker.port,
            username,
            password,
            topics,
            netns=broker.netns,
            client_id=client_id,
            subscribe_timeout=START_TIMEOUT_S,
            describe=lambda: broker.log()[-2000:],
        )

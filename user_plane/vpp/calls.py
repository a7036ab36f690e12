"""VPP's binary API through vpp_papi: the only module of the driver that imports it.

* The schema is read from the API directory (``*.api.json``, recursively) once, when
  :class:`VppApi` is made; it is never copied into this repository.
* :meth:`VppApi.connect` opens the socket and checks the message table
  (:func:`user_plane.vpp.messages.check_messages`): a missing or different message is a
  :class:`SchemaMismatch` naming every one of them.
* Calls go through the **synchronous** client behind one lock. The sync client is not
  thread-safe (a reply read by the wrong caller goes to the event queue and its caller
  times out), and the driver's :meth:`~user_plane.driver.Driver.install` is synchronous,
  called on the agent's event loop: with a local unix socket a call is a round trip of
  tens of microseconds, so blocking the loop for it costs less than handing every call to
  a thread. The lock makes calls from the loop and from a benchmark's threads safe. A VPP
  that stops answering with its socket open blocks a call for ``vpp.timeout`` seconds at
  most; then the connection counts as lost.
* vpp_papi returns ``retval`` without raising: :meth:`VppApi.call` raises
  :class:`VppCallError` for any retval other than 0, and :class:`VppUnavailable` when
  VPP does not answer (socket closed, timeout) or is not connected.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any, Final

from .messages import check_messages

__all__ = ["SchemaMismatch", "VppApi", "VppCallError", "VppUnavailable"]

log = logging.getLogger(__name__)

#: VPP's error names for the retvals the driver meets most (src/vnet/api_errno.h).
ERRORS: Final = {
    -2: "INVALID_SW_IF_INDEX",
    -3: "NO_SUCH_FIB",
    -6: "NO_SUCH_ENTRY",
    -7: "INVALID_VALUE",
    -9: "UNIMPLEMENTED",
    -73: "INVALID_ARGUMENT",
    -81: "VALUE_EXIST",
    -114: "ADDRESS_FOUND_FOR_INTERFACE",
    -116: "ENTRY_ALREADY_EXISTS",
}


class VppUnavailable(Exception):
    """VPP is not connected, or stopped answering."""


class VppCallError(Exception):
    """VPP refused a call: its reply carried ``retval`` != 0."""

    def __init__(self, msg: str, retval: int) -> None:
        name = ERRORS.get(retval, "")
        super().__init__(f"{msg}: retval {retval}{f' ({name})' if name else ''}")
        self.msg = msg
        self.retval = retval


class SchemaMismatch(Exception):
    """Messages the driver needs are missing from the schema or VPP, or differ (CRC)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("VPP API mismatch:\n  " + "\n  ".join(problems))
        self.problems = problems


class VppApi:
    """One connection to VPP's API socket (see the module docstring)."""

    def __init__(self, socket_path: str, api_dir: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        from vpp_papi import VPPApiClient  # type: ignore[import-untyped]  # imported on use only

        directory = Path(api_dir)
        if not directory.is_dir() or not any(directory.rglob("*.api.json")):
            raise VppUnavailable(f"no VPP API schema (*.api.json) in {directory}")
        self.socket_path = socket_path
        self.timeout = timeout
        self._client = VPPApiClient(apidir=[str(directory)], server_address=socket_path, read_timeout=timeout)
        self._lock = threading.Lock()
        self.connected = False
        #: API requests made, over every connection (the benchmark reads it).
        self.calls = 0

    @property
    def schema(self) -> dict[str, str]:
        """Message name -> CRC as loaded from the API directory."""
        return {name: msg.crc for name, msg in self._client.messages.items()}

    def connect(self, requests: Collection[str], name: str = "edgecups-upf") -> None:
        """Connect and check ``requests`` (and their replies) against VPP's message table."""
        with self._lock:
            self._teardown()
            try:
                self._client.connect(name)
            except Exception as exc:  # vpp_papi raises IOError subclasses, socket errors, its own errors
                self._teardown()
                raise VppUnavailable(f"cannot connect to VPP at {self.socket_path}: {exc}") from exc
            table = list(self._client.transport.message_table)
            problems = check_messages(requests, self.schema, table)
            if problems:
                self._teardown()
                raise SchemaMismatch(problems)
            self.connected = True

    def call(self, msg: str, **args: Any) -> Any:
        """One request; its reply (a list for dumps). Raises VppCallError, VppUnavailable."""
        with self._lock:
            if not self.connected:
                raise VppUnavailable("VPP is not connected")
            try:
                reply = getattr(self._client.api, msg)(**args)
            except OSError as exc:
                # VPPIOError (no reply in time, or the reader thread saw the socket close) and
                # socket errors on write: the connection is gone.
                self.connected = False
                raise VppUnavailable(f"{msg}: {exc}") from exc
            self.calls += 1
        retval = getattr(reply, "retval", 0)
        if retval:
            raise VppCallError(msg, retval)
        return reply

    def ping(self) -> bool:
        """control_ping: whether VPP answers (marks the connection broken if not)."""
        try:
            self.call("control_ping")
        except (VppUnavailable, VppCallError):
            return False
        return True

    def close(self) -> None:
        """Disconnect (sockclnt_delete when VPP is still there)."""
        with self._lock:
            if self.connected:
                try:
                    self._client.disconnect()
                except Exception as exc:  # the peer may be gone already: nothing left to release
                    log.debug("disconnect: %s", exc)
            self._teardown()

    def _teardown(self) -> None:
        """Forget a connection without talking to VPP: what vpp_papi's disconnect does after
        sockclnt_delete, which would wait for a reply a dead peer never sends."""
        self.connected = False
        transport = self._client.transport
        transport.connected = False
        if transport.socket is not None:
            try:
                transport.socket.close()
            except OSError:
                pass
        if transport.message_thread is not None:
            transport.sque.put(True)
            if transport.message_thread.is_alive():
                transport.message_thread.join(self.timeout)
        transport.message_thread = None
        transport.socket = None
        transport.message_table = {}

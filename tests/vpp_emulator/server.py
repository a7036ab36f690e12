"""VPP's API socket transport: a unix stream server, 16-byte frame headers, one reader per client.

Every frame is ``struct ">QII"`` (ignored u64, big-endian payload length, ignored u32) then the
payload (VPP's ``msgbuf_t``; src/vlibmemory/socket_api.c). A client's frames are handled strictly in
order by its own thread, which is what makes legacy dumps work: the details a dump sends always
precede the reply to the control_ping the client sent right after it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path

HEADER = struct.Struct(">QII")
#: Larger frames are refused (the connection is closed): no VPP message comes near this.
MAX_PAYLOAD = 64 * 1024 * 1024

log = logging.getLogger(__name__)


class FrameBuffer:
    """Reassembles frames from a byte stream: fragments and several frames per read are both fine."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        while len(self._buffer) >= HEADER.size:
            _, length, _ = HEADER.unpack_from(self._buffer)
            if length > MAX_PAYLOAD:
                raise ValueError(f"frame of {length} bytes")
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append(bytes(self._buffer[HEADER.size : end]))
            del self._buffer[:end]
        return frames


def frame(payload: bytes) -> bytes:
    return HEADER.pack(0, len(payload), 0) + payload


class Connection:
    """One client socket; sends are serialized (replies and other clients' events interleave)."""

    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number
        self._send_lock = threading.Lock()
        self.closed = threading.Event()

    def send(self, payload: bytes) -> bool:
        """False when the peer is gone (the reader thread notices and cleans up)."""
        try:
            with self._send_lock:
                self.sock.sendall(frame(payload))
        except OSError:
            return False
        return True

    def close(self) -> None:
        """Shut the socket down: the client sees EOF at once, the reader thread wakes up."""
        self.closed.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


#: dispatch(connection, payload) handles one frame; returns False to close the connection.
Dispatch = Callable[[Connection, bytes], bool]
#: on_close(connection) runs once when a connection ends, whoever ended it.
OnClose = Callable[[Connection], None]


class SocketServer:
    """Accepts clients on ``path`` and runs ``dispatch`` for each frame in a thread per client."""

    def __init__(self, path: Path, dispatch: Dispatch, on_close: OnClose) -> None:
        self.path = path
        self._dispatch = dispatch
        self._on_close = on_close
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._threads: list[threading.Thread] = []
        self._connections: dict[int, Connection] = {}
        self._lock = threading.Lock()
        self._count = 0
        self._stopping = threading.Event()

    def start(self) -> None:
        if self._listener is not None:
            raise RuntimeError("already started")
        if len(os.fsencode(self.path)) >= 108:
            raise ValueError(f"unix socket path too long (>= 108 bytes): {self.path}")
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(os.fspath(self.path))
        listener.listen(64)
        # accept() wakes up every 0.2 s to notice stop(); closing a listening socket does not
        # interrupt a blocked accept() on Linux.
        listener.settimeout(0.2)
        self._listener = listener
        self._stopping.clear()
        self._accept_thread = threading.Thread(target=self._accept_loop, name="vpp-emulator-accept", daemon=True)
        self._accept_thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
            self._accept_thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.close_all()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._threads.clear()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def close_all(self) -> None:
        with self._lock:
            connections = list(self._connections.values())
        for connection in connections:
            connection.close()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        listener = self._listener
        while not self._stopping.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            with self._lock:
                self._count += 1
                connection = Connection(sock, self._count)
                self._connections[connection.number] = connection
                self._threads = [t for t in self._threads if t.is_alive()]
                thread = threading.Thread(
                    target=self._serve, args=(connection,), name=f"vpp-emulator-client-{self._count}", daemon=True
                )
                self._threads.append(thread)
            thread.start()

    def _serve(self, connection: Connection) -> None:
        frames = FrameBuffer()
        try:
            while not connection.closed.is_set():
                data = connection.sock.recv(65536)
                if not data:
                    return
                for payload in frames.feed(data):
                    if connection.closed.is_set() or not self._dispatch(connection, payload):
                        return
        except (OSError, ValueError) as error:
            log.debug("client %d: %s", connection.number, error)
        except Exception:
            # A bug in dispatch: this client's connection ends, the server and other clients go on.
            log.exception("client %d: dispatch failed", connection.number)
        finally:
            connection.close()
            with self._lock:
                self._connections.pop(connection.number, None)
            self._on_close(connection)
            connection.sock.close()

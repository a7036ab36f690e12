"""What both ends of a worker's connection share: frames queued in one loop turn leave in one write."""

from __future__ import annotations

import asyncio
from typing import Generic, Protocol, TypeVar, cast

__all__ = ["FrameLink"]


class _Outbox(Protocol):
    """A codec side (:class:`~.codec.CoreConnection`, :class:`~.codec.WorkerConnection`) as seen from here."""

    @property
    def outgoing(self) -> list[bytes]: ...

    def data_to_send(self) -> list[bytes]: ...


_Side = TypeVar("_Side", bound=_Outbox)


class FrameLink(asyncio.Protocol, Generic[_Side]):
    """An asyncio protocol over one codec side; :meth:`_flush_soon` after queueing frames."""

    def __init__(self, conn: _Side) -> None:
        self._conn = conn
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._flush_scheduled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)

    def _flush_soon(self) -> None:
        # One writelines per loop turn, however many frames the turn queued.
        if not self._flush_scheduled and self._conn.outgoing:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        frames = self._conn.data_to_send()
        if frames and self._transport is not None and not self._transport.is_closing():
            self._transport.writelines(frames)

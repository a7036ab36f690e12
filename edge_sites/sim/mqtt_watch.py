"""Watching an MQTT broker from a synchronous caller: what the simulation and the tests read back.

:class:`Collector` subscribes (QoS 1) as one broker user and keeps every message it receives,
on an event loop in a thread of its own, started inside the broker's network namespace when
given one (a socket belongs to the namespace of the thread that makes it, and the threads
aiomqtt starts to connect inherit the loop thread's). With ``persistent`` (``clean_session``
off) what is published while it is cut off, by a broker restart say, is delivered when it
reconnects. Callers wait on what it collected with :meth:`Collector.wait_for`, bounded.

:func:`retained` is the one-shot form: the retained messages under a filter (each UPF's status,
for ``edgecups sim status``), collected until the caller has what it expects or a short bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, TypeVar

import aiomqtt

from .netns import run_in_netns

__all__ = ["Collector", "Message", "retained"]

T = TypeVar("T")

SUBSCRIBE_TIMEOUT_S: Final = 15.0


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


class Collector:
    """Every message on ``topics`` as ``username`` sees it (the ACL decides), from its subscription on."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        topics: Sequence[str] = ("edgecups/v1/#",),
        *,
        netns: str | None = None,
        client_id: str | None = None,
        persistent: bool = True,
        subscribe_timeout: float = SUBSCRIBE_TIMEOUT_S,
        describe: Callable[[], str] = lambda: "",
    ) -> None:
        """Returns once subscribed; TimeoutError (with ``describe()``, e.g. the broker's log) when
        not within ``subscribe_timeout`` s."""
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.topics = tuple(topics)
        self.client_id = client_id or f"edgecups-watch-{secrets.token_hex(4)}"
        self.persistent = persistent
        self.last_error: str | None = None
        self._messages: list[Message] = []
        self._changed = threading.Condition()
        self._subscribed = threading.Event()
        self.loop = asyncio.new_event_loop()
        self._thread = self._start_thread() if netns is None else run_in_netns(netns, self._start_thread)
        self._task = asyncio.run_coroutine_threadsafe(self._run(), self.loop)
        if not self._subscribed.wait(subscribe_timeout):
            self.close()
            why = f" (last error: {self.last_error})" if self.last_error else ""
            raise TimeoutError(
                f"not subscribed to {host}:{port} as {username} within {subscribe_timeout:g} s{why}\n{describe()}"
            )

    def _start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.loop.run_forever, name="mqtt-collector", daemon=True)
        thread.start()
        return thread

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    username=self.username,
                    password=self.password,
                    identifier=self.client_id,
                    clean_session=not self.persistent,
                    keepalive=5,
                ) as client:
                    for topic in self.topics:
                        await client.subscribe(topic, qos=1)
                    self._subscribed.set()
                    async for message in client.messages:
                        payload = message.payload if isinstance(message.payload, bytes) else b""
                        with self._changed:
                            self._messages.append(Message(str(message.topic), payload, message.retain))
                            self._changed.notify_all()
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc)
                await asyncio.sleep(0.2)  # the broker is away or restarting: try again

    def messages(self, topic: str | None = None) -> list[Message]:
        with self._changed:
            return [m for m in self._messages if topic is None or m.topic == topic]

    def wait_for(self, found: Callable[[list[Message]], T | None], what: str, timeout: float = 30.0) -> T:
        """The first non-None ``found(messages)``, re-checked on every new message; TimeoutError
        naming ``what`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = found(list(self._messages))
                if result is not None:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"timed out after {timeout:g} s waiting for {what}; {len(self._messages)} messages collected"
                    )
                self._changed.wait(min(left, 1.0))

    async def _shutdown(self) -> None:
        # Cancel the session task (a clean DISCONNECT) and wait for it, from the loop's own thread.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        # A session that does not end in 5 s (a broker gone silent) is abandoned with its loop.
        with contextlib.suppress(TimeoutError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    def __enter__(self) -> Collector:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def retained(
    host: str,
    port: int,
    username: str,
    password: str,
    topic_filter: str,
    *,
    netns: str | None = None,
    enough: Callable[[list[Message]], bool] = lambda _: False,
    timeout: float = 2.0,
) -> list[Message]:
    """The retained messages under ``topic_filter``: a broker sends them right after the
    subscription, with nothing to say it is done, so this collects until ``enough(messages)``
    or ``timeout`` s. TimeoutError when it could not even subscribe within ``timeout``."""
    with Collector(
        host, port, username, password, (topic_filter,), netns=netns, persistent=False, subscribe_timeout=timeout
    ) as collector:
        with contextlib.suppress(TimeoutError):
            collector.wait_for(lambda ms: True if enough(ms) else None, "the retained messages", timeout)
        return [m for m in collector.messages() if m.retain]

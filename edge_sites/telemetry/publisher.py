"""A resilient MQTT publisher: callers enqueue and move on; one task talks to the broker.

Theory of operation:

* :meth:`Publisher.publish` never waits: it puts the message in memory and wakes the
  connection task. PFCP handling calls it, so nothing on the broker's side (down, slow,
  refusing) can hold a PFCP answer back.
* What matters (QoS 1: usage reports, events) waits in one bounded FIFO of ``buffer``
  messages; when it is full the oldest is dropped and counted (``dropped``), as the newest
  usage is worth more to whoever reads it. Messages already handed to the broker and not yet
  acknowledged (at most ``window``) are outside that bound and go back to the front of the
  FIFO when the connection breaks: delivery is at least once (a consumer deduplicates usage
  by node, CP SEID, URR ID and UR-SEQN, events by id). What is only worth its latest value
  (QoS 0: metrics) keeps one message per topic, the newest.
* One task per publisher connects (aiomqtt, a new client per attempt), re-publishes the
  ``birth`` message first (the retained "online" status, which the broker may have replaced
  with the Last Will while we were away), subscribes, then sends. A reader task iterates the
  incoming messages even without subscriptions: it is what notices a broken connection at
  once, and the sender stops with it. Failed attempts are retried after a jittered
  exponential backoff (:class:`Backoff`), reset by a successful connection.
* :meth:`Publisher.stop` sends what is buffered and a ``final`` message (the retained
  "offline" status) within a time limit, then disconnects cleanly, so the broker does not
  publish the Last Will; a publisher killed without stop() gets its Last Will published.

Call every method from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from .config import MqttConfig

__all__ = ["Backoff", "Outgoing", "Publisher"]

log = logging.getLogger("edgecups.mqtt")

#: Messages handed to the broker at once (each waits for its PUBACK).
DEFAULT_WINDOW: Final = 32


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message: where, what, and how (QoS 1 is buffered; QoS 0 keeps the newest per topic)."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between connection attempts: ``initial * factor**attempt`` capped at ``maximum``,
    each drawn uniformly from ``[(1 - jitter) * d, d]`` so that many agents that lost one broker
    do not all come back in the same instant."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return ceiling * rng.uniform(1.0 - self.jitter, 1.0)


class Publisher:
    """One MQTT connection, kept up: buffered publishing, optional subscriptions."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        client_id: str,
        will: Outgoing | None = None,
        birth: Callable[[], Outgoing] | None = None,
        subscriptions: Sequence[str] = (),
        on_message: Callable[[str, bytes], None] | None = None,
        on_connect: Callable[[], None] | None = None,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        keepalive: int = 15,
        ack_timeout: float = 10.0,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        self.config = config
        # Unique per process: a stable id would let a new connection take over a half-dead old one.
        self.client_id = f"{client_id}-{secrets.token_hex(4)}"
        self.will = will
        self.birth = birth
        self.subscriptions = tuple(subscriptions)
        self.on_message = on_message
        self.on_connect = on_connect
        self.backoff = backoff or Backoff()
        self.rng = rng or random.Random()
        self.keepalive = keepalive
        self.ack_timeout = ack_timeout
        self.window = window
        self.capacity = config.buffer
        #: published, dropped, connections, connection failures.
        self.counters: collections.Counter[str] = collections.Counter()
        #: The delays waited between attempts, newest last (a few, for operators and tests).
        self.delays: collections.deque[float] = collections.deque(maxlen=16)
        self._queue: collections.deque[Outgoing] = collections.deque()
        self._latest: dict[str, Outgoing] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._connected = asyncio.Event()
        self._final: Outgoing | None = None
        self._task: asyncio.Task[None] | None = None
        self._attempt = 0
        self._failing = False
        #: Why the last connection attempt failed (None once connected), and whether the broker
        #: itself refused it (CONNACK with an error: bad credentials, not authorised).
        self.last_error: str | None = None
        self.refused = False

    # -- what callers use ------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Buffered messages dropped (oldest first) because the buffer was full."""
        return self.counters["dropped"]

    @property
    def buffered(self) -> int:
        """Messages waiting: the QoS 1 FIFO and the newest QoS 0 message of each topic."""
        return len(self._queue) + len(self._latest)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"mqtt-{self.client_id}")

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Queue a message; returns at once whatever the broker's state."""
        message = Outgoing(topic, payload, qos, retain)
        if qos == 0:
            self._latest[topic] = message
        else:
            if len(self._queue) >= self.capacity:
                self._queue.popleft()
                self._count_drop(1)
            self._queue.append(message)
        self._wake.set()

    async def wait_connected(self, timeout: float) -> bool:
        """Whether the publisher is (or gets) connected within ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), timeout)
        return self.connected

    async def stop(self, final: Outgoing | None = None, timeout: float = 3.0) -> None:
        """Send what is buffered and ``final``, then disconnect cleanly; give up after ``timeout``."""
        self._final = final
        self._stopping.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            log.warning(
                "MQTT %s:%d: stopped with %d messages undelivered", self.config.host, self.config.port, self.buffered
            )

    # -- the connection task ---------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            try:
                await self._session()
                return  # stopping, and everything was sent
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(_first(exc))
            if stopping:
                return  # the attempt made after stop() was asked failed too: give up
            delay = 0.0 if self._stopping.is_set() else self.backoff.delay(self._attempt, self.rng)
            self._attempt += 1
            self.delays.append(delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)  # stop() cuts the wait short

    def _failed(self, exc: BaseException) -> None:
        self.counters["connection failures"] += 1
        where = f"{self.config.host}:{self.config.port}"
        self.last_error = _describe(exc)
        self.refused = isinstance(exc, MqttConnectError)
        if not self._failing:
            self._failing = True
            log.warning("MQTT broker %s: %s; retrying with backoff, buffering what matters", where, self.last_error)
        else:
            log.debug("MQTT broker %s: attempt %d failed: %s", where, self._attempt, self.last_error)

    def _client(self) -> aiomqtt.Client:
        config = self.config
        will = self.will
        client = aiomqtt.Client(
            config.host,
            config.port,
            username=config.username,
            password=config.password(),
            identifier=self.client_id,
            will=None if will is None else aiomqtt.Will(will.topic, will.payload, will.qos, will.retain),
            clean_session=True,
            keepalive=self.keepalive,
            timeout=self.ack_timeout,
            tls_context=None if config.tls is None else config.tls.context(),
        )
        # Up to ``window`` publishes are in flight by design (one batch); aiomqtt warns
        # "pending publish calls" from 10 on, so it would warn on every busy batch.
        client.pending_calls_threshold = self.window
        return client

    async def _session(self) -> None:
        client = self._client()
        # Bounded without a timeout of ours: paho's TCP connect gives up after 5 s, the wait for
        # CONNACK after ack_timeout (cancelling in between would leave paho's socket behind).
        await client.__aenter__()
        try:
            if self._failing:
                log.warning("MQTT broker %s:%d: connected again", self.config.host, self.config.port)
            else:
                log.info("MQTT broker %s:%d: connected as %s", self.config.host, self.config.port, self.client_id)
            self._failing = False
            self.last_error = None
            self.refused = False
            self._attempt = 0
            self.counters["connections"] += 1
            if self.birth is not None:
                birth = self.birth()
                await client.publish(birth.topic, birth.payload, birth.qos, birth.retain)
            for topic in self.subscriptions:
                await client.subscribe(topic, qos=1)
            self._connected.set()
            if self.on_connect is not None:
                self.on_connect()
            await self._serve(client)
        finally:
            self._connected.clear()
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)  # a clean DISCONNECT if still connected

    async def _serve(self, client: aiomqtt.Client) -> None:
        reader = asyncio.get_running_loop().create_task(self._read(client))
        sender = asyncio.get_running_loop().create_task(self._send(client))
        try:
            done, _ = await asyncio.wait({reader, sender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, sender):
                task.cancel()
            await asyncio.gather(reader, sender, return_exceptions=True)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:  # raises MqttError when the connection breaks
            if self.on_message is None:
                continue
            payload = message.payload
            data = payload if isinstance(payload, bytes) else str(payload if payload is not None else "").encode()
            try:
                self.on_message(str(message.topic), data)
            except Exception:
                log.exception("MQTT: handling a message on %s failed", message.topic)

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            batch = self._take()
            if batch:
                await self._publish(client, batch)
                continue
            if self._stopping.is_set():
                final, self._final = self._final, None
                if final is not None:
                    await client.publish(final.topic, final.payload, final.qos, final.retain)
                return
            self._wake.clear()
            if not self._queue and not self._latest:
                await self._wake.wait()

    def _take(self) -> list[Outgoing]:
        batch = list(self._latest.values())
        self._latest.clear()
        while self._queue and len(batch) < self.window:
            batch.append(self._queue.popleft())
        return batch

    async def _publish(self, client: aiomqtt.Client, batch: list[Outgoing]) -> None:
        acked = [False] * len(batch)

        async def one(index: int, message: Outgoing) -> None:
            await client.publish(message.topic, message.payload, message.qos, message.retain)
            acked[index] = True

        try:
            async with asyncio.TaskGroup() as group:
                for index, message in enumerate(batch):
                    group.create_task(one(index, message))
        except BaseException as exc:
            self._requeue([m for m, done in zip(batch, acked, strict=True) if not done])
            self.counters["published"] += sum(acked)
            if isinstance(exc, BaseExceptionGroup):
                raise _first(exc) from None
            raise
        self.counters["published"] += len(batch)

    def _requeue(self, messages: list[Outgoing]) -> None:
        # Not acknowledged: back in front of what came after them, newer QoS 0 values winning.
        urgent = [m for m in messages if m.qos > 0]
        for message in messages:
            if message.qos == 0:
                self._latest.setdefault(message.topic, message)
        self._queue.extendleft(reversed(urgent))
        excess = len(self._queue) - self.capacity
        for _ in range(max(0, excess)):
            self._queue.popleft()
        self._count_drop(max(0, excess))

    def _count_drop(self, count: int) -> None:
        if not count:
            return
        if not self.counters["dropped"]:
            log.warning("MQTT: buffer of %d messages full, dropping the oldest (counted)", self.capacity)
        self.counters["dropped"] += count


def _first(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, aiomqtt.MqttError) and cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})"
    return text

"""The publisher against a real Mosquitto: buffering while the broker is away, backoff, drop-oldest,
no loss across a broker restart, the retained status, the final message and the Last Will."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_sites.telemetry import MqttConfig
from edge_sites.telemetry.publisher import Backoff, Outgoing, Publisher
from tests.harness.mosquitto import Collector, Message, Mosquitto, free_port, mosquitto_unavailable_reason

pytestmark = pytest.mark.skipif(mosquitto_unavailable_reason() is not None, reason=mosquitto_unavailable_reason() or "")

USERS = {"edge-1": "edge-1-secret", "edgecups-viewer": "viewer-secret"}
USAGE = "edgecups/v1/sites/edge-1/upfs/u1/usage"
STATUS = "edgecups/v1/sites/edge-1/upfs/u1/status"
FAST = Backoff(initial=0.05, maximum=0.2)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path / "broker", USERS)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def site_config(broker: Mosquitto, tmp_path: Path, **kwargs: object) -> MqttConfig:
    password = tmp_path / "edge-1.password"
    password.write_text(USERS["edge-1"] + "\n")
    return MqttConfig("127.0.0.1", broker.port, username="edge-1", password_file=password, site="edge-1", **kwargs)  # type: ignore[arg-type]


def viewer(broker: Mosquitto, client_id: str = "viewer") -> Collector:
    return Collector(broker, "edgecups-viewer", USERS["edgecups-viewer"], client_id=client_id)


async def until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Wait for what the publisher's own task does; a test that times out says what never came."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"never happened within {timeout} s: {what}") from None


def payloads(messages: list[Message], topic: str) -> list[bytes]:
    return [m.payload for m in messages if m.topic == topic]


def test_backoff_grows_with_jitter_up_to_its_cap() -> None:
    backoff = Backoff(initial=0.5, maximum=8.0, factor=2.0, jitter=0.5)
    rng = random.Random(7)
    for attempt, ceiling in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]):
        delays = {backoff.delay(attempt, rng) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered: agents that lost one broker do not return in step
    assert backoff.delay(10_000, rng) <= 8.0


def test_buffers_while_the_broker_is_down_dropping_the_oldest(broker: Mosquitto, tmp_path: Path) -> None:
    collector = viewer(broker)  # a persistent session: it gets what is published while it is away
    broker.stop()

    async def scenario() -> Publisher:
        publisher = Publisher(site_config(broker, tmp_path, buffer=5), client_id="t", backoff=FAST)
        publisher.start()
        for n in range(8):
            publisher.publish(USAGE, b"%d" % n)  # returns at once: nothing waits on the broker
        publisher.publish("edgecups/v1/sites/edge-1/upfs/u1/metrics", b"old", qos=0)
        publisher.publish("edgecups/v1/sites/edge-1/upfs/u1/metrics", b"new", qos=0)
        assert (publisher.dropped, publisher.buffered) == (3, 6)  # 5 usage + only the newest metrics
        await until(lambda: publisher.counters["connection failures"] >= 3, "retries")
        assert not publisher.connected and publisher.last_error
        assert all(0 < d <= FAST.maximum for d in publisher.delays)
        await asyncio.to_thread(broker.start)
        await until(lambda: publisher.buffered == 0, "the buffer sent")
        publisher.publish(USAGE, b"end")
        await publisher.stop()
        return publisher

    try:
        publisher = asyncio.run(scenario())
        messages = collector.wait_for(lambda m: m if b"end" in payloads(m, USAGE) else None, "the last message")
    finally:
        collector.close()
    assert payloads(messages, USAGE) == [b"3", b"4", b"5", b"6", b"7", b"end"]  # oldest dropped, order kept
    assert publisher.counters["connections"] == 1 and publisher.counters["published"] == 7


def test_no_message_lost_across_a_broker_restart(broker: Mosquitto, tmp_path: Path) -> None:
    collector = viewer(broker)
    sent = [b"%d" % n for n in range(300)]

    async def scenario() -> Publisher:
        publisher = Publisher(site_config(broker, tmp_path), client_id="t", backoff=FAST)
        publisher.start()
        assert await publisher.wait_connected(10)
        for payload in sent[:150]:
            publisher.publish(USAGE, payload)
        restart = asyncio.create_task(asyncio.to_thread(broker.restart))  # while messages are in flight
        for payload in sent[150:]:
            publisher.publish(USAGE, payload)
            await asyncio.sleep(0)
        await restart
        await until(lambda: publisher.buffered == 0 and publisher.connected, "the buffer sent")
        await publisher.stop()
        return publisher

    try:
        publisher = asyncio.run(scenario())
        got = collector.wait_for(
            lambda m: m if set(payloads(m, USAGE)) >= set(sent) else None, "every message after the restart"
        )
    finally:
        collector.close()
    assert set(payloads(got, USAGE)) == set(sent)  # at least once: a message in flight may come twice
    assert broker.starts == 2 and publisher.counters["connections"] >= 2


def test_status_birth_final_and_no_last_will_on_a_clean_stop(broker: Mosquitto, tmp_path: Path) -> None:
    collector = viewer(broker)

    async def scenario() -> None:
        publisher = Publisher(
            site_config(broker, tmp_path),
            client_id="t",
            will=Outgoing(STATUS, b"will", retain=True),
            birth=lambda: Outgoing(STATUS, b"online", retain=True),
        )
        publisher.start()
        assert await publisher.wait_connected(10)
        publisher.publish(USAGE, b"last usage")
        await publisher.stop(final=Outgoing(STATUS, b"stopped", retain=True))

    try:
        asyncio.run(scenario())
        collector.wait_for(lambda m: m if b"stopped" in payloads(m, STATUS) else None, "the final status")
        late = viewer(broker, "late-viewer")  # a newcomer gets the retained status
        try:
            retained = late.wait_for(lambda m: [x for x in m if x.topic == STATUS] or None, "the retained status")
        finally:
            late.close()
        messages = collector.messages()
    finally:
        collector.close()
    assert payloads(messages, STATUS) == [b"online", b"stopped"]  # the Last Will never fired
    assert payloads(messages, USAGE) == [b"last usage"]  # sent before the final status
    assert [(m.payload, m.retain) for m in retained] == [(b"stopped", True)]


def test_last_will_when_the_process_dies(broker: Mosquitto, tmp_path: Path) -> None:
    collector = viewer(broker)
    password = tmp_path / "pw"
    password.write_text(USERS["edge-1"])
    script = f"""
import asyncio, sys
from pathlib import Path
from edge_sites.telemetry import MqttConfig
from edge_sites.telemetry.publisher import Outgoing, Publisher

async def main():
    config = MqttConfig("127.0.0.1", {broker.port}, username="edge-1", password_file=Path({str(password)!r}))
    publisher = Publisher(config, client_id="doomed", will=Outgoing({STATUS!r}, b"offline", retain=True),
                          birth=lambda: Outgoing({STATUS!r}, b"online", retain=True))
    publisher.start()
    await publisher.wait_connected(10)
    print("connected", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert process.stdout is not None and process.stdout.readline() == b"connected\n"
        collector.wait_for(lambda m: m if b"online" in payloads(m, STATUS) else None, "online")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        messages = collector.wait_for(lambda m: m if b"offline" in payloads(m, STATUS) else None, "the Last Will")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        collector.close()
    assert payloads(messages, STATUS) == [b"online", b"offline"]


def test_a_broker_that_refuses_the_credentials_is_retried_and_reported(broker: Mosquitto, tmp_path: Path) -> None:
    password = tmp_path / "wrong"
    password.write_text("not the password")

    async def scenario() -> Publisher:
        config = MqttConfig("127.0.0.1", broker.port, username="edge-1", password_file=password)
        publisher = Publisher(config, client_id="t", backoff=FAST)
        publisher.start()
        await until(lambda: publisher.counters["connection failures"] >= 2, "retries")
        await publisher.stop(timeout=1.0)
        return publisher

    publisher = asyncio.run(scenario())
    assert publisher.refused and not publisher.connected
    assert publisher.last_error is not None and "authori" in publisher.last_error.lower()


def test_free_port_is_free() -> None:
    assert 0 < free_port() < 65536


def test_a_full_window_in_flight_is_not_warned_about(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    collector = viewer(broker)
    sent = [b"%d" % n for n in range(200)]

    async def scenario() -> None:
        publisher = Publisher(site_config(broker, tmp_path), client_id="t", backoff=FAST)
        publisher.start()
        assert await publisher.wait_connected(10)
        for payload in sent:  # at once: batches of a whole window each
            publisher.publish(USAGE, payload)
        await until(lambda: publisher.buffered == 0, "the burst sent")
        await publisher.stop()

    try:
        with caplog.at_level("WARNING"):
            asyncio.run(scenario())
        collector.wait_for(lambda m: m if set(payloads(m, USAGE)) >= set(sent) else None, "the burst")
    finally:
        collector.close()
    assert not [r for r in caplog.records if "pending publish calls" in r.getMessage()]

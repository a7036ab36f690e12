"""The publisher's ``mqtt.tls`` and password against a real Mosquitto with a TLS listener.

The broker's certificate comes from a throwaway CA (:func:`tests.harness.tls.make_pki`). A
publisher that trusts that CA (and, when the broker wants one, presents a client certificate
it signed) connects and its message reaches a subscriber; one that does not trust it (the
system's roots, another CA) or cannot show a certificate keeps running, buffers and retries,
reporting why; a wrong password is refused by the broker itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_sites.telemetry import MqttConfig
from edge_sites.telemetry.config import TlsFiles, parse_mqtt
from edge_sites.telemetry.publisher import Backoff, Publisher
from tests.harness.mosquitto import Mosquitto, TlsListener, mosquitto_unavailable_reason
from tests.harness.tls import Pki, make_pki
from tests.unit.telemetry.test_publisher import until

pytestmark = pytest.mark.skipif(mosquitto_unavailable_reason() is not None, reason=mosquitto_unavailable_reason() or "")

USERS = {"edge-1": "edge-1-secret", "edgecups-viewer": "viewer-secret"}
USAGE = "edgecups/v1/sites/edge-1/upfs/u1/usage"
FAST = Backoff(initial=0.05, maximum=0.2)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), name="broker")


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("other-pki"), name="stranger")


def tls_broker(tmp_path: Path, pki: Pki, *, require_certificate: bool) -> Iterator[Mosquitto]:
    listener = TlsListener(pki.ca_cert, pki.server_cert, pki.server_key, require_certificate=require_certificate)
    server = Mosquitto(tmp_path / "broker", USERS, tls=listener)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def broker(tmp_path: Path, pki: Pki) -> Iterator[Mosquitto]:
    yield from tls_broker(tmp_path, pki, require_certificate=False)


@pytest.fixture
def mutual_broker(tmp_path: Path, pki: Pki) -> Iterator[Mosquitto]:
    yield from tls_broker(tmp_path, pki, require_certificate=True)


def config(broker: Mosquitto, tmp_path: Path, tls: TlsFiles, user: str = "edge-1", password: str = "") -> MqttConfig:
    file = tmp_path / f"{user}.password"
    file.write_text((password or USERS[user]) + "\n")
    return MqttConfig("127.0.0.1", broker.port, username=user, password_file=file, tls=tls)


async def delivered(site: MqttConfig, viewer: MqttConfig) -> list[tuple[str, bytes]]:
    """Publish one usage message as ``site``; what a TLS subscriber ``viewer`` receives."""
    received: list[tuple[str, bytes]] = []
    subscriber = Publisher(
        viewer,
        client_id="viewer",
        subscriptions=[USAGE],
        on_message=lambda topic, payload: received.append((topic, payload)),
        backoff=FAST,
    )
    publisher = Publisher(site, client_id="site", backoff=FAST)
    subscriber.start()
    try:
        assert await subscriber.wait_connected(15), subscriber.last_error  # subscribed once connected
        publisher.start()
        publisher.publish(USAGE, b"over tls")
        await until(lambda: bool(received), "the message over TLS")
        assert publisher.connected and publisher.counters["connection failures"] == 0
    finally:
        await publisher.stop()
        await subscriber.stop()
    return received


async def rejected(site: MqttConfig) -> Publisher:
    """A publisher that cannot get through: it keeps buffering and retrying until stopped."""
    # A broker that drops the connection after the TLS handshake (plaintext, or a client
    # certificate it rejects under TLS 1.3) shows as no CONNACK: aiomqtt ignores a disconnect
    # before CONNACK, so each such attempt lasts ack_timeout; shortened to keep the test brief.
    publisher = Publisher(site, client_id="site", backoff=FAST, ack_timeout=2.0)
    publisher.start()
    publisher.publish(USAGE, b"kept")  # returns at once whatever the broker says
    await until(lambda: publisher.counters["connection failures"] >= 2, "retries")
    assert not publisher.connected and publisher.buffered == 1 and publisher.last_error
    await publisher.stop(timeout=1.0)
    return publisher


def test_the_broker_ca_from_the_config_connects_and_delivers(broker: Mosquitto, tmp_path: Path, pki: Pki) -> None:
    # Through parse_mqtt, as the agent reads it: relative paths from the config's directory.
    section = {"host": "127.0.0.1", "port": broker.port, "username": "edge-1", "password_file": "pw",
               "tls": {"ca": pki.ca_cert.name}, "site": "edge-1"}  # fmt: skip
    (pki.directory / "pw").write_text(USERS["edge-1"] + "\n")
    site, errors = parse_mqtt(section, base_dir=pki.directory)
    assert errors == [] and site is not None and site.tls == TlsFiles(ca=pki.ca_cert)
    viewer = config(broker, tmp_path, TlsFiles(ca=pki.ca_cert), "edgecups-viewer")
    assert asyncio.run(delivered(site, viewer)) == [(USAGE, b"over tls")]


@pytest.mark.parametrize("trust", ["system roots", "another CA"])
def test_a_broker_certificate_not_trusted_is_reported_buffered_and_retried(
    broker: Mosquitto, tmp_path: Path, other_pki: Pki, trust: str
) -> None:
    tls = TlsFiles() if trust == "system roots" else TlsFiles(ca=other_pki.ca_cert)
    publisher = asyncio.run(rejected(config(broker, tmp_path, tls)))
    assert publisher.last_error is not None and "certificate verify failed" in publisher.last_error
    assert not publisher.refused  # our side refused the broker, not the broker us
    assert publisher.counters["connections"] == 0 and publisher.counters["published"] == 0


def test_plaintext_to_a_tls_listener_does_not_connect(broker: Mosquitto, tmp_path: Path) -> None:
    site = config(broker, tmp_path, TlsFiles())
    publisher = asyncio.run(rejected(MqttConfig(site.host, site.port, site.username, site.password_file)))
    assert publisher.counters["connections"] == 0


def test_a_wrong_password_over_tls_is_refused(broker: Mosquitto, tmp_path: Path, pki: Pki) -> None:
    publisher = asyncio.run(rejected(config(broker, tmp_path, TlsFiles(ca=pki.ca_cert), password="wrong")))
    assert publisher.refused and publisher.last_error is not None and "authori" in publisher.last_error.lower()


def test_mutual_tls_with_the_client_certificate_delivers(mutual_broker: Mosquitto, tmp_path: Path, pki: Pki) -> None:
    tls = TlsFiles(ca=pki.ca_cert, cert=pki.client_cert, key=pki.client_key)
    site = config(mutual_broker, tmp_path, tls)
    viewer = config(mutual_broker, tmp_path, tls, "edgecups-viewer")
    assert asyncio.run(delivered(site, viewer)) == [(USAGE, b"over tls")]


@pytest.mark.parametrize("client", ["no certificate", "another CA's certificate"])
def test_mutual_tls_without_an_accepted_client_certificate_does_not_connect(
    mutual_broker: Mosquitto, tmp_path: Path, pki: Pki, other_pki: Pki, client: str
) -> None:
    tls = (
        TlsFiles(ca=pki.ca_cert)
        if client == "no certificate"
        else TlsFiles(ca=pki.ca_cert, cert=other_pki.client_cert, key=other_pki.client_key)
    )
    publisher = asyncio.run(rejected(config(mutual_broker, tmp_path, tls)))
    assert publisher.counters["connections"] == 0 and not publisher.refused


def test_an_unreadable_ca_file_is_reported_not_raised(broker: Mosquitto, tmp_path: Path) -> None:
    publisher = asyncio.run(rejected(config(broker, tmp_path, TlsFiles(ca=tmp_path / "missing.pem"))))
    assert publisher.last_error is not None and publisher.counters["connections"] == 0

"""``edgecups events --follow --source mqtt`` against a real Mosquitto: settings, exit statuses, the stream."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest
from typer.testing import CliRunner, Result

from control_plane.cli.api_options import ConfigProblem
from control_plane.cli.main import app
from control_plane.cli.mqtt_events import MqttFlags, resolve_mqtt
from edge_sites.telemetry import MqttConfig, TlsFiles, encode
from edge_sites.telemetry.payloads import event_payload
from tests.harness.mosquitto import Mosquitto, free_port, mosquitto_unavailable_reason

USERS = {"edgecups-cp": "cp-secret", "edgecups-viewer": "viewer-secret"}
_NO_BROKER = mosquitto_unavailable_reason()
needs_mosquitto = pytest.mark.skipif(_NO_BROKER is not None, reason=_NO_BROKER or "")


def env_of(home: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGECUPS_")}
    return env | {"XDG_CONFIG_HOME": str(home), "NO_COLOR": "1", **settings}


def cli(env: dict[str, str], *args: str) -> Result:
    result = CliRunner(env=env).invoke(app, ["events", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_settings_come_from_flags_then_environment_then_the_file(tmp_path: Path) -> None:
    config = tmp_path / "cli.yaml"
    config.write_text("server: cp:50051\nmqtt: {host: file-host, port: 1884, username: v, tls: {ca: ca.pem}}\n")
    from_file = resolve_mqtt(MqttFlags(), config, {})
    assert from_file == MqttConfig("file-host", 1884, username="v", tls=TlsFiles(ca=tmp_path / "ca.pem"))
    env = {"EDGECUPS_MQTT_HOST": "env-host", "EDGECUPS_MQTT_PORT": "1999"}
    assert resolve_mqtt(MqttFlags(), config, env).host == "env-host"
    flagged = resolve_mqtt(MqttFlags(host="flag-host", password_file=Path("pw")), config, env)
    assert (flagged.host, flagged.port, flagged.password_file) == ("flag-host", 1999, Path("pw").absolute())
    with pytest.raises(ConfigProblem) as caught:
        resolve_mqtt(MqttFlags(), None, {})
    assert caught.value.errors == [
        "no MQTT broker: give --mqtt-host, EDGECUPS_MQTT_HOST or mqtt.host in the configuration file"
    ]
    with pytest.raises(ConfigProblem) as caught:
        resolve_mqtt(MqttFlags(host="h"), None, {"EDGECUPS_MQTT_PORT": "x", "EDGECUPS_MQTT_KEY": "k"})
    assert sorted(caught.value.errors) == [
        "EDGECUPS_MQTT_KEY: a private key needs its certificate (tls.cert)",
        "EDGECUPS_MQTT_PORT: 'x' is not a whole number from 1 to 65535",
    ]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    env = env_of(tmp_path)
    no_follow = cli(env, "--source", "mqtt", "--mqtt-host", "127.0.0.1")
    assert (no_follow.exit_code, no_follow.stderr) == (2, "error: --source mqtt: it is a live stream: add --follow\n")
    since = cli(env, "--source", "mqtt", "--follow", "--since", "3", "--mqtt-host", "127.0.0.1")
    assert since.exit_code == 2 and "the broker keeps no history" in since.stderr
    no_host = cli(env, "--source", "mqtt", "--follow")
    assert no_host.exit_code == 2 and "no MQTT broker" in no_host.stderr


def test_no_broker_exits_3(tmp_path: Path) -> None:
    result = cli(env_of(tmp_path), "--follow", "--source", "mqtt", "--mqtt-host", "127.0.0.1",
                 "--mqtt-port", str(free_port()), "--timeout", "1")  # fmt: skip
    assert result.exit_code == 3
    assert result.stderr.startswith("error: MQTT broker 127.0.0.1:")


@needs_mosquitto
def test_refused_credentials_exit_1_and_events_print_as_they_arrive(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker", USERS)
    broker.start()
    try:
        wrong = tmp_path / "wrong"
        wrong.write_text("nope")
        refused = cli(env_of(tmp_path), "--follow", "--source", "mqtt", "--mqtt-host", "127.0.0.1",
                      "--mqtt-port", str(broker.port), "--mqtt-username", "edgecups-viewer",
                      "--mqtt-password-file", str(wrong))  # fmt: skip
        assert refused.exit_code == 1 and "refused the connection" in refused.stderr

        # The settings from the environment and the file, as an operator's shell holds them.
        password = tmp_path / "viewer.pw"
        password.write_text(USERS["edgecups-viewer"])
        (tmp_path / "edgecups").mkdir()
        (tmp_path / "edgecups" / "cli.yaml").write_text("mqtt: {username: edgecups-viewer, password_file: viewer.pw}\n")
        (tmp_path / "edgecups" / "viewer.pw").write_text(USERS["edgecups-viewer"])
        env = env_of(tmp_path, EDGECUPS_MQTT_HOST="127.0.0.1", EDGECUPS_MQTT_PORT=str(broker.port))
        follow = subprocess.Popen(
            [sys.executable, "-m", "control_plane.cli.main", "events", "--follow", "--source", "mqtt",
             "--kind", "upf", "--count", "1", "-o", "json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert follow.stderr is not None
            with selectors.DefaultSelector() as selector:
                selector.register(follow.stderr, selectors.EVENT_READ)
                assert selector.select(30), "the CLI did not subscribe"
            assert follow.stderr.readline() == f"following edgecups/v1/events/upf/# on 127.0.0.1:{broker.port}\n"
            event = event_payload(
                id=41, at="2025-05-01T10:00:00+00:00", kind="upf.down", supi=None, upf="198.18.1.10",
                session_id=None, detail={"why": "MQTT status offline (connection-lost)"},
            )  # fmt: skip

            async def publish() -> None:
                async with aiomqtt.Client("127.0.0.1", broker.port, username="edgecups-cp", password="cp-secret") as c:
                    await c.publish("edgecups/v1/events/session/created", b"{}", qos=1)  # another kind: not shown
                    await c.publish("edgecups/v1/events/upf/down", encode(event), qos=1)

            asyncio.run(publish())
            out, err = follow.communicate(timeout=30)
        finally:
            follow.kill()
            follow.wait(10)
    finally:
        broker.stop()
    assert follow.returncode == 0, err
    printed = json.loads(out)
    assert printed == {k: v for k, v in event.items() if k != "schema"} | {"at": "2025-05-01T10:00:00+00:00"}

"""The ``mqtt:`` section: one parser for the UPF agent's and the control plane's files, every problem at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from control_plane.config import ConfigError as CpConfigError
from control_plane.config import parse_config as parse_cp_config
from edge_sites.telemetry import MqttConfig, TlsFiles, parse_mqtt
from edge_sites.telemetry.config import CP_KEYS
from user_plane.config import ConfigError as UpfConfigError
from user_plane.config import load_config
from user_plane.config import parse_config as parse_upf_config

UPF: dict[str, Any] = {
    "node_id": "198.18.0.2",
    "n4": {"address": "198.18.0.2"},
    "n3": "198.18.1.2",
    "n6": {"internet": {"interface": "n6-internet", "ue_pool": "198.19.0.0/16"}},
    "allowed_cps": ["198.18.0.1"],
}


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    config, errors = parse_mqtt({"host": "mqtt.example.org", "site": "edge-1"}, base_dir=tmp_path)
    assert errors == []
    assert config == MqttConfig("mqtt.example.org", 1883, site="edge-1")
    config, errors = parse_mqtt(
        {"host": "b", "site": "s", "username": "s", "password_file": "pw", "tls": {"ca": "ca.pem"}}, base_dir=tmp_path
    )
    assert errors == [] and config is not None
    assert config.port == 8883  # TLS's port unless told otherwise
    assert config.password_file == tmp_path / "pw"
    assert config.tls == TlsFiles(ca=tmp_path / "ca.pem")
    (tmp_path / "pw").write_text("s3cret\n")
    assert config.password() == "s3cret"
    assert parse_mqtt(config.to_mapping()) == (config, [])


def test_every_problem_at_once() -> None:
    config, errors = parse_mqtt(
        {
            "port": 0,
            "password_file": "pw",
            "tls": {"key": "k.pem", "crt": "x"},
            "site": "a/b",
            "interval": -1,
            "buffer": True,
            "colour": 1,
        }
    )
    assert config is None
    assert sorted(errors) == sorted(
        [
            "mqtt.colour: unknown key; expected one of buffer, host, interval, password_file, port, site, tls, "
            "username",
            "mqtt.host: required",
            "mqtt.tls.crt: unknown key; expected one of ca, cert, key",
            "mqtt.tls.key: a private key needs its certificate (tls.cert)",
            "mqtt.port: 0 is not a whole number from 1 to 65535",
            "mqtt.password_file: a password needs a username",
            "mqtt.site: site 'a/b' cannot be an MQTT topic level (empty, or holds '/', '+', '#' or NUL)",
            "mqtt.interval: -1 is not a positive number of seconds",
            "mqtt.buffer: True is not a whole number from 1 to 10000000",
        ]
    )
    assert parse_mqtt({"host": "b"})[1] == ["mqtt.site: required (this UPF's topic branch edgecups/v1/sites/<site>/)"]
    assert parse_mqtt({"host": "b", "site": "x"}, keys=CP_KEYS)[1] == [
        "mqtt.site: unknown key; expected one of buffer, host, password_file, port, tls, username"
    ]


def test_upf_config_takes_the_section_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "upf.yaml"
    path.write_text(
        yaml.safe_dump({**UPF, "mqtt": {"host": "b", "site": "edge-1", "password_file": "p", "username": "u"}})
    )
    config = load_config(path)
    assert config.mqtt is not None and config.mqtt.password_file == tmp_path / "p"  # from the file's directory
    assert parse_upf_config(config.to_mapping()) == config
    assert parse_upf_config(UPF).mqtt is None
    with pytest.raises(UpfConfigError) as caught:
        parse_upf_config({**UPF, "mqtt": {"site": "edge-1", "port": "x"}})
    assert caught.value.errors == ("mqtt.host: required", "mqtt.port: 'x' is not a whole number from 1 to 65535")


def test_cp_config_takes_the_section(tmp_path: Path) -> None:
    config = parse_cp_config(
        {"n4": {"address": "198.18.0.1"}, "mqtt": {"host": "b", "username": "edgecups-cp", "password_file": "p"}},
        base=tmp_path,
    )
    assert config.mqtt == MqttConfig("b", username="edgecups-cp", password_file=tmp_path / "p")
    assert parse_cp_config({"n4": {"address": "198.18.0.1"}}).mqtt is None
    with pytest.raises(CpConfigError) as caught:
        parse_cp_config({"n4": {"address": "198.18.0.1"}, "mqtt": {"host": "b", "interval": 3}})
    assert caught.value.errors == [
        "mqtt.interval: unknown key; expected one of buffer, host, password_file, port, tls, username"
    ]

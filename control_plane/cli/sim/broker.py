"""The simulation's MQTT broker: Mosquitto as deploy/mosquitto/ configures it, in the cp namespace.

* :func:`prepare_broker` (``up``, before any process starts): a fresh password for every user
  of :meth:`SimPlan.mqtt_users <control_plane.cli.sim.plan.SimPlan.mqtt_users>` -- one per site,
  named like the site (the deployed ACL lets it publish only under its own branch), the control
  plane's and the viewer's -- each in ``mqtt/<user>.password`` (mode 0600), the file the agents'
  and the control plane's ``mqtt.password_file`` names; then the broker's own files
  (:func:`edge_sites.sim.mosquitto.write_broker_files`: hashed password file, the repository's
  ACL, the configuration) in the same directory.
* :func:`start_broker`: ``mosquitto -c mqtt/mosquitto.conf`` started detached in the control
  plane's namespace (node ``mqtt``, log in ``mqtt.log``), listening on
  :data:`~control_plane.cli.sim.plan.MQTT_ADDRESS`: every UPF reaches it over its N4 link.
* :class:`MqttTarget`: where and as whom a client connects (:meth:`Simulation.mqtt_target`).
* :func:`upf_statuses` and :func:`wait_online`: each UPF's retained status as the viewer reads it.

No broker, no simulation: ``up`` refuses to start without mosquitto (:func:`mosquitto_missing`
says what to install; ``make run`` installs it first), as telemetry is part of the deployment.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from edge_sites.sim.mosquitto import (
    VIEWER_USER,
    BrokerError,
    BrokerFiles,
    find_mosquitto,
    mosquitto_missing,
    new_password,
    wait_listening,
    write_broker_files,
)
from edge_sites.sim.mqtt_watch import Collector, Message, retained
from edge_sites.telemetry import validate
from edge_sites.telemetry.topics import STATUS_FILTER, parse_upf_topic

from .plan import MQTT_ADDRESS, MQTT_PORT, SimPlan
from .procs import alive, launch, log_tail
from .state import ProcessRecord, SimState

__all__ = [
    "MQTT_NODE",
    "BrokerError",
    "MqttTarget",
    "broker_argv",
    "mqtt_target",
    "mosquitto_missing",
    "prepare_broker",
    "start_broker",
    "upf_statuses",
    "wait_online",
]

#: The broker's node name (process record, namespace map, ``Simulation.start("mqtt")``).
MQTT_NODE: Final = "mqtt"


def _directory(state_dir: Path) -> Path:
    return state_dir / "mqtt"


def prepare_broker(plan: SimPlan, state_dir: Path) -> BrokerFiles:
    """Generate every user's password and write the broker's files (see the module docstring)."""
    users = {user: new_password() for user in plan.mqtt_users()}
    directory = _directory(state_dir)
    directory.mkdir(mode=0o700, exist_ok=True)
    for user, password in users.items():
        fd = os.open(plan.mqtt_password_file(state_dir, user), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(password + "\n")
    return write_broker_files(directory, users, host=str(MQTT_ADDRESS), port=MQTT_PORT)


def broker_argv(state_dir: Path) -> list[str]:
    """The broker's command line (its files are those :func:`prepare_broker` wrote)."""
    found = find_mosquitto()
    if found is None:
        raise BrokerError(mosquitto_missing() or "")
    return BrokerFiles(_directory(state_dir), found[0], str(MQTT_ADDRESS), MQTT_PORT).command()


def start_broker(state: SimState, deadline: float) -> ProcessRecord:
    """Launch the broker in the cp namespace, record it, and wait until it listens."""
    record = launch(MQTT_NODE, state.namespaces[MQTT_NODE], broker_argv(state.directory), state.directory)
    state.broker = record
    state.save()
    wait_listening(
        str(MQTT_ADDRESS),
        MQTT_PORT,
        deadline,
        netns=record.netns,
        still_running=lambda: alive(record),
        log=lambda: log_tail(record, 30),
    )
    return record


@dataclass(frozen=True, slots=True)
class MqttTarget:
    """The simulation's broker as one of its users sees it: connect from inside ``netns``."""

    host: str
    port: int
    netns: str
    username: str
    password: str

    def collector(
        self, topics: tuple[str, ...] = ("edgecups/v1/#",), *, timeout: float = 15.0, persistent: bool = False
    ) -> Collector:
        """A :class:`~edge_sites.sim.mqtt_watch.Collector` subscribed to ``topics`` (close it after
        use). Not ``persistent`` by default: a session the broker keeps after it queues for nobody."""
        return Collector(self.host, self.port, self.username, self.password, topics, netns=self.netns,
                         persistent=persistent, subscribe_timeout=timeout)  # fmt: skip


def mqtt_target(state: SimState, user: str = VIEWER_USER) -> MqttTarget:
    """Where the broker is and ``user``'s credentials (read from the state directory)."""
    path = SimPlan.mqtt_password_file(state.directory, user)
    try:
        password = path.read_text().strip()
    except OSError as exc:
        raise BrokerError(f"no password for broker user {user!r} ({path}: {exc.strerror or exc})") from None
    return MqttTarget(str(MQTT_ADDRESS), MQTT_PORT, state.namespaces[MQTT_NODE], user, password)


def _statuses(messages: list[Message]) -> dict[str, dict[str, Any]]:
    """Node ID -> its newest status payload that matches the schema (others are ignored)."""
    out: dict[str, dict[str, Any]] = {}
    for message in messages:
        topic = parse_upf_topic(message.topic)
        if topic is None or topic.leaf != "status":
            continue
        try:
            payload = json.loads(message.payload)
        except ValueError:
            continue
        if not validate("status", payload):
            out[topic.node_id] = payload
    return out


def upf_statuses(state: SimState, node_ids: Collection[str], timeout: float = 3.0) -> dict[str, dict[str, Any]]:
    """Each UPF's retained status (node ID -> payload), as the viewer reads it now; collected
    until every one of ``node_ids`` has one, or ``timeout`` s. TimeoutError: no subscription."""
    target = mqtt_target(state)

    def enough(messages: list[Message]) -> bool:
        return set(node_ids) <= set(_statuses(messages))

    messages = retained(target.host, target.port, target.username, target.password, STATUS_FILTER,
                        netns=target.netns, enough=enough, timeout=timeout)  # fmt: skip
    return _statuses(messages)


def wait_online(state: SimState, stamps: Mapping[str, int | None], deadline: float) -> dict[str, dict[str, Any]]:
    """Until every UPF of ``stamps`` (node ID -> its Recovery Time Stamp, None: any run) says
    "online" for that run; their statuses. BrokerError naming the ones that did not."""
    left = max(0.1, deadline - time.monotonic())

    def online(messages: list[Message]) -> dict[str, dict[str, Any]] | None:
        found = _statuses(messages)
        for node, stamp in stamps.items():
            status = found.get(node)
            if status is None or status["state"] != "online":
                return None
            if stamp is not None and status["recovery_time_stamp"] != stamp:
                return None
        return found

    try:
        collector = mqtt_target(state).collector((STATUS_FILTER,), timeout=left)
    except TimeoutError as exc:
        raise BrokerError(f"cannot read the UPFs' status from the broker: {exc}") from None
    with collector:
        try:
            return collector.wait_for(online, "every UPF's MQTT status online", max(0.1, deadline - time.monotonic()))
        except TimeoutError as exc:
            seen = _statuses(collector.messages())
            missing = [f"{n} ({seen[n]['state']}, run {seen[n]['recovery_time_stamp']})" if n in seen
                       else f"{n} (no status)" for n in stamps]  # fmt: skip
            raise BrokerError(f"{exc}; wanted online for runs {dict(stamps)}, seen: {', '.join(missing)}") from None

"""Site telemetry over a real Mosquitto, with ``edgecups cp`` and ``edgecups upf`` as operators run them.

The broker runs in the control plane's namespace on its N4 address (the UPFs reach it over
their N4 links), with the repository's ACL (deploy/mosquitto/acl) and one broker user per site,
the control plane's and a viewer's. A persistent-session collector (the viewer) records what
arrives. Checks: status (retained, Last Will), metrics and usage messages match the documented
schema; no usage report the control plane received over PFCP is missing over MQTT, also when
the broker was down while they were made; the Last Will of a killed agent makes the control
plane take its UPF out of selection before PFCP heartbeats could; ``edgecups events --follow
--source mqtt`` prints the control plane's events; a site cannot publish under another's branch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import IO, Any

import aiomqtt
import pytest
import yaml
from sqlalchemy import select

from control_plane.errors import Unavailable
from control_plane.services.views import SessionRequest
from db.models import Event, Upf, UsageRecord
from edge_sites.telemetry import decode, encode, validate
from edge_sites.telemetry.payloads import status_payload
from edge_sites.telemetry.topics import upf_topic
from tests.harness.control_plane import (
    DNN,
    SNSSAI,
    CpProcess,
    agent_config,
    cp_config,
    cp_n4,
    cp_topology,
    dn_n6,
    gnb_n3,
    provision,
    supi,
    tai,
    ue_pool,
    upf_n3,
    upf_n4,
)
from tests.harness.mosquitto import Collector, Message, Mosquitto, mosquitto_unavailable_reason
from tests.harness.netns import Topology, needs_netns, run_in_netns
from tests.harness.packets import GTPU_PORT, gpdu, ipv4_udp
from tests.harness.upf_agent import AgentProcess
from tests.integration.test_cp_sessions import _wait, rows

pytestmark = pytest.mark.skipif(mosquitto_unavailable_reason() is not None, reason=mosquitto_unavailable_reason() or "")

BROKER = str(cp_n4(0).ip)
USERS = {"edgecups-cp": "cp-secret", "edgecups-viewer": "viewer-secret", "edge0": "edge0-secret", "edge1": "e1-secret"}


@dataclass
class Deployment:
    topology: Topology
    broker: Mosquitto
    collector: Collector
    cp: CpProcess
    agents: list[AgentProcess]
    url: str
    workdir: Path

    def password_file(self, user: str) -> Path:
        path = self.workdir / f"{user}.password"
        path.write_text(USERS[user] + "\n")
        return path

    def start_agent(self, i: int) -> AgentProcess:
        workdir = self.workdir / f"upf{i}-{len(self.agents)}"
        workdir.mkdir()
        mqtt = {"host": BROKER, "port": self.broker.port, "site": f"edge{i}", "interval": 0.5}
        mqtt |= {"username": f"edge{i}", "password_file": str(self.password_file(f"edge{i}"))}
        agent = AgentProcess(self.topology.ns(f"upf{i}"), workdir, {**agent_config(i), "mqtt": mqtt})
        self.agents.append(agent)
        return agent

    def status(self, i: int) -> str:
        return upf_topic(f"edge{i}", str(upf_n4(i).ip), "status")

    def health(self) -> str:
        return str(rows(self.url, select(Upf.health))[0]["health"])


@contextlib.contextmanager
def deployment(
    tmp_path: Path, *, heartbeat_interval: float = 1.0, volume_threshold: int | None = None
) -> Iterator[Deployment]:
    """One UPF (site edge0) and the control plane, both publishing to a broker in the cp namespace."""
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    provision(url, 1, subscribers=2, volume_threshold=volume_threshold)
    with Topology(cp_topology(1)) as topo:
        broker = Mosquitto(tmp_path / "broker", USERS, host=BROKER, netns=topo.ns("cp"))
        broker.start()
        collector = Collector(broker, "edgecups-viewer", USERS["edgecups-viewer"])
        agents: list[AgentProcess] = []
        cp: CpProcess | None = None
        try:
            config_path = cp_config(tmp_path, url)
            config = yaml.safe_load(config_path.read_text())
            config["timers"]["heartbeat_interval"] = heartbeat_interval
            config["mqtt"] = {"host": BROKER, "port": broker.port, "username": "edgecups-cp", "password_file": "cp.pw"}
            (tmp_path / "cp.pw").write_text(USERS["edgecups-cp"])
            config_path.write_text(yaml.safe_dump(config))
            cp = CpProcess(topo.ns("cp"), tmp_path, config_path)
            deployed = Deployment(topo, broker, collector, cp, agents, url, tmp_path)
            deployed.start_agent(0)
            cp.wait_ready()
            _wait(lambda: deployed.health() == "up", "the UPF associated")
            yield deployed
        finally:
            for agent in agents:
                agent.stop()
            code = cp.stop() if cp is not None else 0
            collector.close()
            broker.stop()
        assert code == 0, cp.log()


def payloads(messages: list[Message], topic: str, kind: str) -> list[dict[str, Any]]:
    """The payloads on ``topic``, each checked against the documented schema."""
    out = []
    for message in messages:
        if message.topic == topic:
            assert validate(kind, json.loads(message.payload)) == [], message
            out.append(decode(kind, message.payload))
    return out


def latest_status(deployed: Deployment, state: str, reason: str) -> dict[str, Any]:
    def found(messages: list[Message]) -> dict[str, Any] | None:
        statuses = payloads(messages, deployed.status(0), "status")
        last = statuses[-1] if statuses else None
        return last if last is not None and (last["state"], last["reason"]) == (state, reason) else None

    return deployed.collector.wait_for(found, f"status {state} ({reason})")


def request(n: int) -> SessionRequest:
    return SessionRequest(
        supi=supi(n), dnn=DNN, snssai=SNSSAI, tai=tai(0), gnb_teid=0x1000 + n, gnb_address=str(gnb_n3(0).ip)
    )


def read_line(stream: IO[str], timeout: float) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"nothing printed within {timeout} s")
    return stream.readline()


@needs_netns
def test_status_metrics_and_every_usage_report_arrive_also_across_a_broker_outage(tmp_path: Path) -> None:
    with deployment(tmp_path, volume_threshold=1000) as deployed:
        online = latest_status(deployed, "online", "started")
        assert online["node_id"] == str(upf_n4(0).ip) and online["site"] == "edge0" and "FTUP" in online["features"]
        # The CLI follows the control plane's events from the broker, in the cp namespace.
        viewer = deployed.password_file("edgecups-viewer")
        cli = [sys.executable, "-m", "control_plane.cli.main", "events", "--follow", "--source", "mqtt"]
        cli += ["--kind", "session", "--count", "1", "-o", "json", "--mqtt-host", BROKER]
        cli += ["--mqtt-port", str(deployed.broker.port), "--mqtt-username", "edgecups-viewer"]
        cli += ["--mqtt-password-file", str(viewer)]
        follow = subprocess.Popen(
            ["ip", "netns", "exec", deployed.topology.ns("cp"), *cli],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            assert follow.stderr is not None
            assert read_line(follow.stderr, 30).startswith("following edgecups/v1/events/session/#")
            view = deployed.cp.call(_establish(deployed.cp, request(0)))
            out, err = follow.communicate(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(follow.pid, signal.SIGKILL)
        assert follow.returncode == 0, err
        event = json.loads(out)
        assert (event["kind"], event["supi"]) == ("session.created", supi(0))

        gnb = deployed.topology.udp_socket("gnb", bind=(str(gnb_n3(0).ip), GTPU_PORT), timeout=0.3)
        inner = ipv4_udp(IPv4Address(view.ue_ipv4), dn_n6(0).ip, 40000, 9000, bytes(600))
        packet = gpdu(view.n3_teid, inner, 9)

        def send(count: int) -> None:
            for _ in range(count):
                gnb.sendto(packet, (str(upf_n3(0).ip), GTPU_PORT))

        def stored() -> set[tuple[int, int, int]]:
            records = rows(deployed.url, select(UsageRecord.cp_seid, UsageRecord.urr_id, UsageRecord.ur_seqn))
            return {(r["cp_seid"], r["urr_id"], r["ur_seqn"]) for r in records}

        usage_topic = upf_topic("edge0", str(upf_n4(0).ip), "usage")

        def published(messages: list[Message]) -> set[tuple[int, int, int]]:
            return {(u["cp_seid"], u["urr_id"], u["ur_seqn"]) for u in payloads(messages, usage_topic, "usage")}

        send(6)  # 600-octet packets, a report every 1000 octets (VOLTH)
        _wait(lambda: len(stored()) >= 3, "usage reports over PFCP")
        metrics_topic = upf_topic("edge0", str(upf_n4(0).ip), "metrics")

        def moved(messages: list[Message]) -> dict[str, Any] | None:
            # The newest metrics: the session, and the packets counted (they only grow).
            last = payloads(messages, metrics_topic, "metrics")[-1:]
            return last[0] if last and last[0]["sessions"] == 1 and last[0]["uplink"]["packets"] >= 6 else None

        metrics = deployed.collector.wait_for(moved, "metrics counting the session and its packets")
        assert set(metrics["network_instances"]) == {DNN} and metrics["uplink"]["drops"] == 0

        # Downlink from the data network: to the UE (sent to the gNB) and to an address of the
        # pool no session has (dropped by the UPF, which read it from the instance's N6).
        dn = deployed.topology.udp_socket("dn", bind=(str(dn_n6(0).ip), 9000), timeout=0.3)
        stranger = ue_pool(0).broadcast_address - 1
        assert stranger != IPv4Address(view.ue_ipv4)
        for _ in range(4):
            dn.sendto(bytes(300), (view.ue_ipv4, 40000))
        for _ in range(3):
            dn.sendto(bytes(300), (str(stranger), 40000))

        def downlink_counted(messages: list[Message]) -> dict[str, Any] | None:
            last = payloads(messages, metrics_topic, "metrics")[-1:]
            ni = last[0]["network_instances"][DNN]["downlink"] if last else None
            return last[0] if ni is not None and ni["packets"] >= 4 and ni["drops"] >= 3 else None

        metrics = deployed.collector.wait_for(downlink_counted, "metrics counting the downlink per instance")
        per_instance = metrics["network_instances"][DNN]
        # One instance: its figures are the direction totals (the eBPF fast path's included).
        assert per_instance["uplink"] == metrics["uplink"] == {"packets": 6, "bytes": 6 * len(inner), "drops": 0}
        assert per_instance["downlink"] == metrics["downlink"]
        # The 4 to the UE (and the DN's ICMP answers to the uplink, if any), 28 octets of headers each.
        assert per_instance["downlink"]["packets"] >= 4 and per_instance["downlink"]["bytes"] >= 4 * 328
        assert per_instance["downlink"]["drops"] == 3 and metrics["drops"] == {"forward.dl_unknown_ue": 3}
        dn.close()

        deployed.broker.stop()  # the broker is away: reports keep going to the CP over PFCP
        before = len(stored())
        send(6)
        _wait(lambda: len(stored()) >= before + 3, "usage reports over PFCP while the broker is down")
        deployed.broker.start()
        deployed.cp.call(_delete(deployed.cp, supi(0)))  # final usage in the Deletion Response
        final = stored()
        messages = deployed.collector.wait_for(
            lambda ms: ms if published(ms) >= final else None, "every stored usage report over MQTT"
        )
        assert published(messages) == final and len(final) >= 7
        kinds = {u["message"] for u in payloads(messages, usage_topic, "usage")}
        assert kinds == {"session-report", "deletion"}

        deployed.agents[0].stop()
        stopped = latest_status(deployed, "offline", "stopped")
        assert stopped["recovery_time_stamp"] == online["recovery_time_stamp"]


@needs_netns
def test_last_will_takes_a_killed_upf_out_of_selection_before_heartbeats_could(tmp_path: Path) -> None:
    # Heartbeats every 60 s: PFCP alone would notice the dead agent a minute later at the earliest.
    with deployment(tmp_path, heartbeat_interval=60.0) as deployed:
        first = latest_status(deployed, "online", "started")
        # Ignored by the control plane: another site speaking for this UPF (under its own branch,
        # which its ACL allows), and an "offline" of another run of the agent (a stale message).
        node = str(upf_n4(0).ip)
        forged = status_payload(
            state="offline", reason="stopped", node_id=node, site="edge1", time=0.0,
            recovery_time_stamp=first["recovery_time_stamp"], features=[],
        )  # fmt: skip
        stale = forged | {"site": "edge0", "recovery_time_stamp": first["recovery_time_stamp"] - 100}
        publish_in(deployed, "edge1", upf_topic("edge1", node, "status"), encode(forged))
        publish_in(deployed, "edge0", deployed.status(0), encode(stale))
        agent = deployed.agents[0]
        os.killpg(agent.process.pid, signal.SIGKILL)
        agent.process.wait(10)
        will = latest_status(deployed, "offline", "connection-lost")  # published by the broker
        assert will["recovery_time_stamp"] == first["recovery_time_stamp"]
        _wait(lambda: deployed.health() == "down", "the UPF marked down", timeout=20)
        down = rows(deployed.url, select(Event.detail).where(Event.kind == "upf.down"))
        assert [r["detail"]["why"] for r in down] == ["MQTT status offline (connection-lost)"]  # not the forged ones
        with pytest.raises(Unavailable):
            deployed.cp.call(_establish(deployed.cp, request(0)))

        # Back up only through PFCP: the new run's "online" makes the CP send a heartbeat, whose
        # newer Recovery Time Stamp starts PFCP's restart handling (re-association).
        deployed.start_agent(0)
        latest_status(deployed, "online", "started")
        _wait(lambda: deployed.health() == "up", "the UPF associated again", timeout=30)
        assert deployed.cp.call(_establish(deployed.cp, request(1))).state == "active"


def publish_in(deployed: Deployment, user: str, topic: str, payload: bytes) -> None:
    """Publish as ``user`` from the broker's namespace; returns once the broker has it (QoS 1)."""

    async def publish() -> None:
        async with aiomqtt.Client(BROKER, deployed.broker.port, username=user, password=USERS[user]) as client:
            await client.publish(topic, payload, qos=1)

    run_in_netns(deployed.topology.ns("cp"), lambda: asyncio.run(publish()))


async def _establish(cp: CpProcess, req: SessionRequest) -> Any:
    async with cp.client() as client:
        return await client.establish(req)


async def _delete(cp: CpProcess, who: str) -> Any:
    async with cp.client() as client:
        return await client.delete(who, 1)


def test_a_site_cannot_publish_under_another_sites_branch(tmp_path: Path) -> None:
    users = {**USERS, "edge-1": "one", "edge-2": "two"}
    broker = Mosquitto(tmp_path / "broker", users)  # the repository's ACL, on loopback
    broker.start()
    collector = Collector(broker, "edgecups-viewer", users["edgecups-viewer"])
    mine, theirs = upf_topic("edge-1", "u1", "status"), upf_topic("edge-2", "u2", "status")

    async def publish(user: str, *messages: tuple[str, bytes]) -> None:
        async with aiomqtt.Client(broker.host, broker.port, username=user, password=users[user]) as client:
            for topic, payload in messages:
                await client.publish(topic, payload, qos=1)  # a denied publish is acknowledged and dropped

    try:
        asyncio.run(publish("edge-1", (theirs, b"forged"), ("edgecups/v1/events/upf/down", b"forged"), (mine, b"ok")))
        asyncio.run(publish("edgecups-cp", ("edgecups/v1/events/upf/down", b"cp")))
        # One client's messages arrive in order: once the later ones are here, the denied ones never will be.
        messages = collector.wait_for(
            lambda ms: ms if {m.payload for m in ms} >= {b"ok", b"cp"} else None, "the allowed messages"
        )
    finally:
        collector.close()
        broker.stop()
    assert [(m.topic, m.payload) for m in messages] == [(mine, b"ok"), ("edgecups/v1/events/upf/down", b"cp")]

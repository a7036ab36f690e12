"""The real control plane in a namespace, with real UPF agents: for integration tests and benchmarks.

Topology (:func:`cp_topology`, RFC 2544 addresses only) for ``n`` UPFs (index i = 0, 1, ...)::

    cp:  cpI 198.18.(10+i).1/24 == n4 198.18.(10+i).2/24 :upfI   (the CP's N4 address: 198.18.10.1)
    gnb: gnbI 198.18.(20+i).2/24 == n3 198.18.(20+i).1/24 :upfI: n6 198.18.(30+i).1/24 == dnI .2 :dn

* :func:`provision` writes the inventory into a migrated database: one edge site per UPF
  (TAI ``001-01-00000{i+1}``), DNN ``internet``, a pool per site (198.19.(64*i).0/18), a default
  policy, and subscribers ``imsi-0010100000NNNNN``.
* :class:`CpProcess` runs ``edgecups cp --config FILE`` in the cp namespace exactly as an
  operator would; its API listens on a unix socket (reachable from the test process, which is
  in another network namespace) and :meth:`CpProcess.client` returns a real gRPC client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from sqlalchemy.orm import Session as OrmSession

from control_plane.api.client import SessionClient
from db.engine import make_engine, upgrade
from db.models import Dnn, IpPool, Policy, Site, Subscriber, Upf
from tests.harness.netns import (
    Endpoint,
    Route,
    Sysctl,
    Topology,
    TopologySpec,
    VethLink,
    netns_unavailable_reason,
)
from tests.harness.upf_agent import AgentProcess

T = TypeVar("T")

DNN = "internet"
SNSSAI = "1-000001"


def cp_n4(i: int) -> IPv4Interface:
    return IPv4Interface(f"198.18.{10 + i}.1/24")


def upf_n4(i: int) -> IPv4Interface:
    return IPv4Interface(f"198.18.{10 + i}.2/24")


def upf_n3(i: int) -> IPv4Interface:
    return IPv4Interface(f"198.18.{20 + i}.1/24")


def gnb_n3(i: int) -> IPv4Interface:
    return IPv4Interface(f"198.18.{20 + i}.2/24")


def upf_n6(i: int) -> IPv4Interface:
    return IPv4Interface(f"198.18.{30 + i}.1/24")


def dn_n6(i: int) -> IPv4Interface:
    return IPv4Interface(f"198.18.{30 + i}.2/24")


def ue_pool(i: int) -> IPv4Network:
    return IPv4Network(f"198.19.{64 * i}.0/18")


def tai(i: int) -> str:
    return f"001-01-{i + 1:06d}"


def supi(n: int) -> str:
    return f"imsi-001010000{n:06d}"


def cp_topology(upfs: int) -> TopologySpec:
    names = ["cp", "gnb", "dn"] + [f"upf{i}" for i in range(upfs)]
    links: list[VethLink] = []
    routes: list[Route] = []
    sysctls: list[Sysctl] = []
    for i in range(upfs):
        links += [
            VethLink(Endpoint("cp", f"cp{i}", cp_n4(i)), Endpoint(f"upf{i}", "n4", upf_n4(i))),
            VethLink(Endpoint("gnb", f"gnb{i}", gnb_n3(i)), Endpoint(f"upf{i}", "n3", upf_n3(i))),
            VethLink(Endpoint(f"upf{i}", "n6", upf_n6(i)), Endpoint("dn", f"dn{i}", dn_n6(i))),
        ]
        routes.append(Route("dn", ue_pool(i), upf_n6(i).ip))
        if i:  # the CP's one N4 address is on cp0's subnet: the way back from every UPF
            routes.append(Route(f"upf{i}", cp_n4(0).network, cp_n4(i).ip))
        sysctls.append(Sysctl(f"upf{i}", "net.ipv4.ip_forward", "1"))
    return TopologySpec(namespaces=tuple(names), links=tuple(links), routes=tuple(routes), sysctls=tuple(sysctls))


def agent_config(i: int, *, max_sessions: int = 20_000) -> dict[str, Any]:
    return {
        "node_id": str(upf_n4(i).ip),
        "n4": {"address": str(upf_n4(i).ip)},
        "n3": [str(upf_n3(i).ip)],
        "n6": {DNN: {"interface": "ni-internet", "ue_pool": str(ue_pool(i)), "gateway": str(dn_n6(i).ip)}},
        "allowed_cps": [str(cp_n4(0).ip)],
        "features": ["FTUP"],
        "driver": "software",
        "log_level": "info",
        "capacity": {"max_sessions": max_sessions},
        "timers": {"t1": 0.5, "n1": 2, "heartbeat_interval": 2, "cp_lost_grace": 60},
    }


def provision(
    url: str, upfs: int, *, subscribers: int = 0, capacity: int = 20_000, volume_threshold: int | None = None
) -> None:
    """Migrate the database at ``url`` and write the inventory of :func:`cp_topology`."""
    upgrade(url)
    engine = make_engine(url)
    try:
        with OrmSession(engine) as db, db.begin():
            dnn = Dnn(name=DNN, network_instance=DNN, snssais=[SNSSAI])
            db.add(dnn)
            db.add(
                Policy(
                    name="default",
                    dnn=dnn,
                    snssai="*",
                    qfi=9,
                    five_qi=9,
                    session_ambr_ul_kbps=1_000_000,
                    session_ambr_dl_kbps=1_000_000,
                    volume_threshold_bytes=volume_threshold,
                )
            )
            for i in range(upfs):
                site = Site(name=f"edge{i}", kind="edge", region="test", tais=[tai(i)])
                db.add(site)
                db.add(
                    Upf(
                        node_id=str(upf_n4(i).ip),
                        n4_address=str(upf_n4(i).ip),
                        site=site,
                        n3_addresses=[str(upf_n3(i).ip)],
                        network_instances=[DNN],
                        snssais=[SNSSAI],
                        capacity=capacity,
                    )
                )
                db.add(IpPool(name=f"pool{i}", dnn=dnn, site=site, cidr=str(ue_pool(i)), family=4, prefix_length=32))
            db.add_all(Subscriber(supi=supi(n), allowed_dnns=[DNN]) for n in range(subscribers))
    finally:
        engine.dispose()


def cp_config(workdir: Path, url: str, *, cp_index: int = 0) -> Path:
    path = workdir / "cp.yaml"
    config = {
        "node_id": str(cp_n4(cp_index).ip),
        "n4": {"address": str(cp_n4(cp_index).ip)},
        "database": {"url": url},
        "api": {"address": f"unix:{workdir / 'api.sock'}", "plaintext": True},
        "timers": {"t1": 0.5, "n1": 2, "heartbeat_interval": 1, "reassociate_interval": 0.5},
        "log_level": "info",
    }
    path.write_text(yaml.safe_dump(config))
    return path


class CpProcess:
    """``edgecups cp --config FILE`` inside the cp namespace."""

    def __init__(self, cp_ns: str, workdir: Path, config: Path, *, log_name: str = "cp.log") -> None:
        self.workdir = workdir
        self.socket = workdir / "api.sock"
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        self.log_path = workdir / log_name
        self._log = self.log_path.open("wb")
        cli = [sys.executable, "-c", "from control_plane.cli.main import app; app()"]
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", cp_ns, *cli, "cp", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def target(self) -> str:
        return f"unix:{self.socket}"

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"control plane exited with {self.process.returncode}:\n{self.log()}")
            if self.socket.exists():
                return
            time.sleep(0.05)
        raise AssertionError(f"control plane API not up within {timeout} s:\n{self.log()}")

    def call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run(work)

    def client(self) -> SessionClient:
        return SessionClient(self.target, timeout=60.0)

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind (a crash)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self._log.close()

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if not self._log.closed:
            self._log.close()
        return self.process.returncode


@dataclass
class CpNetwork:
    """A running topology with its UPF agents (the control plane is started by the test)."""

    topology: Topology
    agents: list[AgentProcess]
    workdir: Path

    def ns(self, role: str) -> str:
        return self.topology.ns(role)

    def start_agent(self, i: int) -> AgentProcess:
        """Start UPF i's agent (again, after it stopped: it takes the place of the old one)."""
        workdir = self.workdir / f"upf{i}"
        workdir.mkdir(exist_ok=True)
        agent = AgentProcess(self.ns(f"upf{i}"), workdir, agent_config(i))
        if i < len(self.agents):
            self.agents[i] = agent
        else:
            self.agents.append(agent)
        return agent


@contextlib.contextmanager
def cp_network(workdir: Path, upfs: int) -> Iterator[CpNetwork]:
    """Build :func:`cp_topology` and start one agent per UPF; all removed afterwards."""
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with Topology(cp_topology(upfs)) as topo:
        network = CpNetwork(topo, [], workdir)
        try:
            for i in range(upfs):
                network.start_agent(i)
            yield network
        finally:
            for agent in network.agents:
                agent.stop()

"""End-to-end UPF tests: the real agent process in a namespace, a CP built on ``pfcp/``, packets.

Topology (:data:`UPF_CP_TOPOLOGY`, RFC 2544 addresses only)::

    cp:  cp0  198.18.0.1/24 == n4  198.18.0.2/24 :upf
    gnb: gnb0 198.18.1.2/24 == n3  198.18.1.1/24 :upf: n6 198.18.2.1/24 == dn0 198.18.2.2/24 :dn

* :class:`AgentProcess` writes a YAML configuration and runs ``edgecups upf --config FILE`` with
  ``ip netns exec`` in the upf namespace, exactly as an operator would, waits until it answers
  PFCP, and stops it with SIGTERM (its exit code and log are checked by the caller).
* :class:`TestCp` is a PFCP CP function: a :class:`~pfcp.aio.PfcpNode` whose event loop runs in a
  thread inside the cp namespace. Tests call it synchronously; Session Report Requests the agent
  sends are answered (Request accepted) and queued for the test to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any, Final, TypeVar

import pytest
import yaml

import pfcp
from pfcp.aio import PfcpNode
from pfcp.endpoint import EndpointConfig
from pfcp.events import RequestReceived
from pfcp.transaction import RetransmitPolicy
from tests.harness.netns import (
    DN_N6,
    GNB_N3,
    N3_MTU,
    UE_POOL,
    UPF_N3,
    UPF_N6,
    Endpoint,
    Route,
    Sysctl,
    Topology,
    TopologySpec,
    VethLink,
    netns_unavailable_reason,
    run_in_netns,
)

T = TypeVar("T")

CP_N4: Final = IPv4Interface("198.18.0.1/24")
UPF_N4: Final = IPv4Interface("198.18.0.2/24")
#: The agent's TUN device for Network Instance "internet" (N6 side of the software dataplane).
TUN_NAME: Final = "ni-internet"

UPF_CP_TOPOLOGY: Final = TopologySpec(
    namespaces=("cp", "gnb", "upf", "dn"),
    links=(
        VethLink(Endpoint("cp", "cp0", CP_N4), Endpoint("upf", "n4", UPF_N4)),
        VethLink(Endpoint("gnb", "gnb0", GNB_N3, N3_MTU), Endpoint("upf", "n3", UPF_N3, N3_MTU)),
        VethLink(Endpoint("upf", "n6", UPF_N6), Endpoint("dn", "dn0", DN_N6)),
    ),
    routes=(Route("dn", UE_POOL, UPF_N6.ip),),
    sysctls=(Sysctl("upf", "net.ipv4.ip_forward", "1"),),
)


def agent_config(*, max_sessions: int = 1000, allowed_cps: tuple[str, ...] = (str(CP_N4.ip),)) -> dict[str, Any]:
    """The agent's YAML configuration for :data:`UPF_CP_TOPOLOGY`."""
    return {
        "node_id": str(UPF_N4.ip),
        "n4": {"address": str(UPF_N4.ip)},
        "n3": [str(UPF_N3.ip)],
        "n6": {"internet": {"interface": TUN_NAME, "ue_pool": str(UE_POOL), "gateway": str(DN_N6.ip)}},
        "allowed_cps": list(allowed_cps),
        "features": ["FTUP"],
        "driver": "software",
        "log_level": "debug",
        "capacity": {"max_sessions": max_sessions},
        "timers": {"t1": 0.5, "n1": 2, "heartbeat_interval": None},
    }


class AgentProcess:
    """``edgecups upf --config FILE`` running inside the upf namespace."""

    def __init__(self, upf_ns: str, workdir: Path, config: dict[str, Any]) -> None:
        self.config_path = workdir / "upf.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / "upf.log"
        self._log = self.log_path.open("wb")
        cli = [sys.executable, "-c", "from control_plane.cli.main import app; app()"]
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", upf_ns, *cli, "upf", "--config", str(self.config_path)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then wait; returns the exit code (SIGKILL after ``timeout``)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()
        return self.process.returncode


class TestCp:
    """A CP function on ``pfcp/`` inside the cp namespace, driven synchronously by tests."""

    __test__ = False  # not a pytest test class

    def __init__(self, cp_ns: str, *, node_id: IPv4Address = CP_N4.ip, t1: float = 0.5, n1: int = 2) -> None:
        self.node_id = pfcp.NodeID(node_id)
        self.reports: queue.Queue[pfcp.SessionReportRequest] = queue.Queue()
        self.report_cause = pfcp.CauseValue.REQUEST_ACCEPTED
        config = EndpointConfig(
            node_id=self.node_id,
            recovery_time_stamp=pfcp.RecoveryTimeStamp.from_unix(time.time()),
            cp_function_features=pfcp.CPFunctionFeatures(pfcp.CPFeatures(0)),
            retransmit=RetransmitPolicy(t1=t1, n1=n1),
            heartbeat_interval=None,
        )
        self.loop = asyncio.new_event_loop()
        self.node = PfcpNode(config, handler=self._on_request)
        # Every datagram the CP receives, raw, for tests that send hand-made bytes.
        self.received: queue.Queue[bytes] = queue.Queue()
        receive = self.node.endpoint.receive_datagram

        def record(data: bytes, addr: pfcp.events.Address, now: float) -> None:
            self.received.put(bytes(data))
            receive(data, addr, now)

        self.node.endpoint.receive_datagram = record  # type: ignore[method-assign]
        self._thread = run_in_netns(cp_ns, self._start_thread)
        self.call(self.node.start(str(node_id), pfcp.PFCP_PORT))
        self.peer = (str(UPF_N4.ip), pfcp.PFCP_PORT)

    def _start_thread(self) -> threading.Thread:
        # started from a thread inside the namespace: the new thread inherits it
        thread = threading.Thread(target=self.loop.run_forever, name="test-cp", daemon=True)
        thread.start()
        return thread

    def _on_request(self, event: RequestReceived) -> pfcp.Message | None:
        msg = event.message
        if isinstance(msg, pfcp.SessionReportRequest):
            self.reports.put(msg)
            return pfcp.SessionReportResponse(seid=0, cause=pfcp.Cause(self.report_cause))
        return None

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def request(self, msg: pfcp.Message, timeout: float = 15.0) -> pfcp.Message:
        return self.call(self.node.request(self.peer, msg), timeout)

    def exchange_raw(self, data: bytes, timeout: float = 5.0) -> pfcp.Message:
        """Send hand-made bytes from the CP's socket; the response with the same sequence number."""
        # §7.2.2: the sequence number follows the SEID when S=1
        sequence = int.from_bytes(data[12:15] if data[0] & 0x01 else data[4:7], "big")
        sock = self.node.socket
        assert sock is not None
        self.loop.call_soon_threadsafe(sock.sendto, data, self.peer)
        deadline = time.monotonic() + timeout
        while True:
            reply = pfcp.decode(self.received.get(timeout=max(0.0, deadline - time.monotonic())))
            if reply.sequence == sequence and not reply.REQUEST:
                return reply

    def associate(self) -> pfcp.events.AssociationEstablished:
        return self.call(self.node.associate(self.peer))

    def wait_ready(self, agent: AgentProcess, timeout: float = 20.0) -> None:
        """Until the agent answers a Heartbeat Request (it is up and serving PFCP)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not agent.alive():
                raise AssertionError(f"agent exited with {agent.process.returncode}:\n{agent.log()}")
            stamp = pfcp.RecoveryTimeStamp.from_unix(time.time())
            with contextlib.suppress(Exception):
                self.request(pfcp.HeartbeatRequest(recovery_time_stamp=stamp), timeout=3)
                return
        raise AssertionError(f"agent not answering PFCP within {timeout} s:\n{agent.log()}")

    def next_report(self, timeout: float = 5.0) -> pfcp.SessionReportRequest:
        return self.reports.get(timeout=timeout)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.node.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@dataclass
class UpfUnderTest:
    """A running agent, its topology and a CP associated with it."""

    topology: Topology
    agent: AgentProcess
    cp: TestCp

    def ns(self, role: str) -> str:
        return self.topology.ns(role)


@contextlib.contextmanager
def running_upf(workdir: Path, *, associate: bool = True, **config: Any) -> Iterator[UpfUnderTest]:
    """Build :data:`UPF_CP_TOPOLOGY`, start the agent and a CP (associated unless told not to);
    everything is stopped and removed afterwards, and the agent must exit cleanly."""
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with Topology(UPF_CP_TOPOLOGY) as topo:
        agent = AgentProcess(topo.ns("upf"), workdir, agent_config(**config))
        under = UpfUnderTest(topo, agent, TestCp(topo.ns("cp")))
        try:
            under.cp.wait_ready(agent)
            if associate:
                under.cp.associate()
            yield under
        finally:
            under.cp.close()  # the test may have replaced it (a restarted CP)
            code = agent.stop()
            log = agent.log()
        assert code == 0, f"agent exit code {code}:\n{log}"

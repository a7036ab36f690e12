"""``edgecups upf --config FILE`` as a process in the UPF's network namespace, with the
real software dataplane: a CP in the gNB namespace associates and establishes a
session over N4; SIGTERM stops the agent cleanly and its TUN device is gone.

Packet-level end-to-end tests (G-PDUs through the agent) are added on top of this.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path

import yaml

import pfcp
from pfcp.aio import PfcpNode
from tests.harness.netns import UpfTopology, interfaces_in, needs_netns
from tests.unit.user_plane.test_agent import cause_of, cp_endpoint, far, urr
from user_plane.config import parse_config

pytest_plugins = ["tests.harness.conftest_plugin"]

DEADLINE = 20.0
TUN = "tun-inet"


def _config_file(tmp_path: Path, topo: UpfTopology) -> Path:
    n3 = str(topo.n3_addr)
    mapping = {
        "node_id": "upf.integration.test",
        "n4": {"address": n3},
        "n3": n3,
        "n6": {"internet": {"interface": TUN, "ue_pool": str(topo.ue_pool)}},
        "allowed_cps": [str(topo.gnb_addr)],
        "log_level": "info",
        "timers": {"t1": 0.5, "n1": 3, "heartbeat_interval": None},
    }
    parse_config(mapping)  # valid before it is written
    path = tmp_path / "upf.yaml"
    path.write_text(yaml.safe_dump(mapping))
    return path


def _session_request(topo: UpfTopology) -> pfcp.SessionEstablishmentRequest:
    ue = topo.ue_pool.network_address + 2
    uplink = pfcp.CreatePDR(
        pdr_id=pfcp.PDRID(1),
        precedence=pfcp.Precedence(200),
        pdi=pfcp.PDI(
            source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.ACCESS),
            local_f_teid=pfcp.FTEID(choose_v4=True, choose_id=1),
            network_instance=pfcp.NetworkInstance("internet"),
            ue_ip_address=(pfcp.UEIPAddress(ipv4=ue),),
        ),
        outer_header_removal=pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV4),
        far_id=pfcp.FARID(1),
        urr_id=(pfcp.URRID(1),),
    )
    downlink = pfcp.CreatePDR(
        pdr_id=pfcp.PDRID(2),
        precedence=pfcp.Precedence(200),
        pdi=pfcp.PDI(
            source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.CORE),
            network_instance=pfcp.NetworkInstance("internet"),
            ue_ip_address=(pfcp.UEIPAddress(ipv4=ue, is_destination=True),),
        ),
        far_id=pfcp.FARID(2),
        urr_id=(pfcp.URRID(1),),
    )
    return pfcp.SessionEstablishmentRequest(
        node_id=pfcp.NodeID(topo.gnb_addr),
        cp_f_seid=pfcp.FSEID(0x77, ipv4=topo.gnb_addr),
        create_pdr=(uplink, downlink),
        create_far=(far(1, core=True), far(2, core=False)),
        create_urr=(urr(1),),
    )


async def _cp_scenario(topo: UpfTopology) -> tuple[pfcp.SessionEstablishmentResponse, set[str]]:
    node = PfcpNode(cp_endpoint(pfcp.NodeID(topo.gnb_addr)))
    await node.start(str(topo.gnb_addr), 0)
    up = (str(topo.n3_addr), pfcp.PFCP_PORT)
    try:
        deadline = time.monotonic() + DEADLINE / 2
        while True:  # until the agent listens
            try:
                await node.associate(up)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        response = await node.request(up, _session_request(topo))
        assert isinstance(response, pfcp.SessionEstablishmentResponse)
        return response, interfaces_in(topo.upf_ns)
    finally:
        node.close()


@needs_netns
def test_the_agent_runs_serves_and_stops_on_sigterm(upf_topology: UpfTopology, tmp_path: Path) -> None:
    topo = upf_topology
    cfg = _config_file(tmp_path, topo)
    command = [sys.executable, "-m", "control_plane.cli.main", "upf", "--config", str(cfg)]
    agent = subprocess.Popen(
        ["ip", "netns", "exec", topo.upf_ns, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        response, devices = topo.topology.run("gnb", lambda: asyncio.run(_cp_scenario(topo)), timeout=DEADLINE)
    except BaseException:
        agent.kill()
        print(agent.communicate(timeout=DEADLINE))
        raise
    agent.send_signal(signal.SIGTERM)
    _, stderr = agent.communicate(timeout=DEADLINE)
    assert agent.returncode == 0, stderr

    assert cause_of(response) == pfcp.CauseValue.REQUEST_ACCEPTED
    assert response.up_f_seid is not None and response.up_f_seid.ipv4 == topo.n3_addr
    [created] = response.created_pdr
    assert created.pdr_id == pfcp.PDRID(1)
    assert created.local_f_teid is not None and created.local_f_teid.ipv4 == IPv4Address(topo.n3_addr)
    assert TUN in devices  # the software dataplane's N6 device existed while the agent ran
    assert TUN not in interfaces_in(topo.upf_ns)  # and is gone with it
    assert "listening on 198.18.1.1 port 8805 (driver software, features FTUP)" in stderr
    assert "associated with CP 198.18.1.2" in stderr
    assert "stopping on request" in stderr and "UPF agent stopped; 1 sessions dropped" in stderr

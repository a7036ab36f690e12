"""The eBPF fast path's figures behind the metrics' per-direction and per-instance figures: the
Network Instance each offloaded direction counts for (pure), and what the program counts per
direction and per session, credited to the instance (BPF_PROG_TEST_RUN, as test_ebpf_program)."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Network

import pfcp
from tests.harness.netns import needs_netns
from tests.unit.user_plane import test_ebpf_program as program
from tests.unit.user_plane.test_ebpf_offload import INSTANCE, N3, POOLS, QFI, UE, UE_POOL, make_state
from tests.unit.user_plane.test_ebpf_program import DN, Lab, ipv4_udp
from user_plane.ebpf.loader import TC_ACT_REDIRECT, TC_ACT_SHOT
from user_plane.ebpf.offload import decide, network_instances
from user_plane.rules import Qer

pytest_plugins = ["tests.harness.conftest_plugin"]
lab = program.lab  # the loaded program with its FastPath, in the upf namespace

OTHER_POOLS = {"ims": (IPv4Network("198.20.0.0/16"),), INSTANCE: (UE_POOL,)}


def test_each_direction_counts_for_the_instance_of_its_n6() -> None:
    state = make_state()
    offload = decide(state, {}, n3_ipv4=None, pools=POOLS)
    assert offload.uplink is not None and offload.downlink is None  # no IPv4 N3: no downlink
    assert network_instances(state, offload, POOLS) == (INSTANCE, None)
    # The FAR's instance first, then the PDR's, then the only instance there is.
    to_ims = make_state(ul_far={"network_instance": "ims"}, dl_pdr={"network_instance": None})
    offload = decide(to_ims, {}, n3_ipv4=N3, pools=OTHER_POOLS)
    assert network_instances(to_ims, offload, OTHER_POOLS) == ("ims", INSTANCE)  # the UE's pool
    bare = make_state(ul_far={"network_instance": None}, ul_pdr={"network_instance": None})
    offload = decide(bare, {}, n3_ipv4=N3, pools=POOLS)
    assert network_instances(bare, offload, POOLS) == (INSTANCE, INSTANCE)
    nothing = dataclasses.replace(offload, uplink=None, downlink=None)
    assert network_instances(bare, nothing, POOLS) == (None, None)


@needs_netns
def test_forwarded_and_dropped_packets_count_per_direction_and_for_the_instance(lab: Lab) -> None:
    state = make_state()
    lab.install(state)
    up, down = ipv4_udp(UE, DN, b"u" * 72), ipv4_udp(DN, UE, b"d" * 172)
    assert lab.run(lab.uplink_frame(up), lab.n3_index)[0] == TC_ACT_REDIRECT
    assert lab.run(lab.downlink_frame(down), lab.n6_index)[0] == TC_ACT_REDIRECT
    lab.fastpath.fold(state.up_seid)  # credited by the fold, the rest read live
    assert lab.run(lab.downlink_frame(down), lab.n6_index)[0] == TC_ACT_REDIRECT
    gates = Qer(qer_id=1, qfi=QFI, gate_ul=pfcp.Gate.CLOSED, gate_dl=pfcp.Gate.CLOSED)
    lab.install(make_state(qer=gates))
    for _ in range(3):
        assert lab.run(lab.uplink_frame(up), lab.n3_index)[0] == TC_ACT_SHOT
    assert lab.run(lab.downlink_frame(down), lab.n6_index)[0] == TC_ACT_SHOT
    expected = {
        "ebpf.ni.internet.ul_packets": 1,
        "ebpf.ni.internet.ul_bytes": 100,
        "ebpf.ni.internet.ul_drops": 3,
        "ebpf.ni.internet.dl_packets": 2,
        "ebpf.ni.internet.dl_bytes": 400,
        "ebpf.ni.internet.dl_drops": 1,
        "ebpf.ul_drop_gate": 3,
        "ebpf.dl_drop_gate": 1,
        "ebpf.drop_gate": 4,
        "ebpf.ul_drop_mbr": 0,
        "ebpf.drop_mbr": 0,
    }
    counters = lab.fastpath.counters()
    assert {key: counters[key] for key in expected} == expected
    assert (counters["ebpf.ul_packets"], counters["ebpf.dl_bytes"]) == (1, 400)
    lab.fastpath.remove(state.up_seid)  # released: its counts stay
    counters = lab.fastpath.counters()
    assert {key: counters[key] for key in expected} == expected

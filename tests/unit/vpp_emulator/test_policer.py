"""policer.api through vpp_papi: QER policers, their bindings on tunnel interfaces, their dump."""

from __future__ import annotations

from typing import Any

from tests.unit.vpp_emulator.conftest import NO_INDEX, tunnel_args
from tests.vpp_emulator import VppEmulator
from tests.vpp_emulator.snapshot import PolicerAction, PolicerInfos

MBR = {
    "cir": 10_000,
    "eir": 20_000,
    "cb": 125_000,
    "eb": 250_000,
    "rate_type": 0,
    "round_type": 0,
    "type": 2,  # 2R3C RFC 2698
    "conform_action": {"type": 1},
    "exceed_action": {"type": 2, "dscp": 10},
    "violate_action": {"type": 0},
}


def test_add_update_delete(vpp_emulator: VppEmulator, client: Any) -> None:
    api = client.api
    reply = api.policer_add(name="qer-1-ul", infos=MBR)
    assert reply.retval == 0
    index = reply.policer_index
    policer = vpp_emulator.state.policers[index]
    assert policer.name == "qer-1-ul"
    assert policer.infos == PolicerInfos(
        10_000, 20_000, 125_000, 250_000, 0, 0, 2, False, PolicerAction(1), PolicerAction(2, 10), PolicerAction(0)
    )
    assert api.policer_add(name="qer-1-ul", infos=MBR).retval == -81
    assert api.policer_add(name="bad", infos={**MBR, "eir": 5_000}).retval == -7  # PIR < CIR
    assert api.policer_update(policer_index=index, infos={**MBR, "cir": 15_000}).retval == 0
    assert vpp_emulator.state.policers[index].infos.cir == 15_000
    assert api.policer_update(policer_index=index + 5, infos=MBR).retval == -6
    assert api.policer_del(policer_index=index).retval == 0
    assert api.policer_del(policer_index=index).retval == -6
    assert vpp_emulator.state.policers == {}


def test_input_and_output_bindings(vpp_emulator: VppEmulator, client: Any) -> None:
    api = client.api
    tunnel = api.gtpu_add_del_tunnel_v2(**tunnel_args()).sw_if_index
    ul = api.policer_add(name="ul", infos=MBR).policer_index
    dl = api.policer_add(name="dl", infos=MBR).policer_index
    assert api.policer_input_v2(policer_index=ul, sw_if_index=tunnel, apply=True).retval == 0
    assert api.policer_output_v2(policer_index=dl, sw_if_index=tunnel, apply=True).retval == 0
    assert vpp_emulator.state.policer_bindings == {(tunnel, "input"): ul, (tunnel, "output"): dl}
    assert api.policer_input_v2(policer_index=ul, sw_if_index=99, apply=True).retval == -2
    assert api.policer_input_v2(policer_index=77, sw_if_index=tunnel, apply=True).retval == -6
    assert api.policer_input_v2(policer_index=ul, sw_if_index=tunnel, apply=False).retval == 0
    assert vpp_emulator.state.policer_bindings == {(tunnel, "output"): dl}
    # deleting the tunnel interface drops what was bound to it
    api.gtpu_add_del_tunnel_v2(**tunnel_args(is_add=False))
    assert vpp_emulator.state.policer_bindings == {}


def test_dump(client: Any) -> None:
    api = client.api
    first = api.policer_add(name="a", infos=MBR).policer_index
    api.policer_add(name="b", infos={**MBR, "type": 0, "eir": 0})
    assert [d.name for d in api.policer_dump_v2(policer_index=NO_INDEX)] == ["a", "b"]
    (only,) = api.policer_dump_v2(policer_index=first)
    assert (only.cir, only.eir, int(only.exceed_action.type), only.exceed_action.dscp) == (10_000, 20_000, 2, 10)
    assert api.policer_dump_v2(policer_index=42) == []

"""policer.api (a plugin in 26.06): named policers by index, bound per interface and direction.

As src/vnet/policer/policer_api.c and policer.c: a duplicate name is -81 VALUE_EXIST, an unknown
index -6 NO_SUCH_ENTRY, an unknown interface -2; input/output binding sets the interface's one
policer of that direction (apply=0 clears it, whichever it was); deleting a policer does not unbind it.
"""

from __future__ import annotations

from typing import Any

from tests.vpp_emulator.model import INVALID_VALUE, NO_SUCH_ENTRY, VALUE_EXIST, ApiError, Handler, Model, Reply
from tests.vpp_emulator.snapshot import NO_INDEX, Policer, PolicerAction, PolicerInfos

#: sse2_qos_policer_type values of the two-rate policers (their PIR may not be below the CIR)
TWO_RATE_TYPES = (2, 3, 4)
N_POLICER_TYPES = 5
N_RATE_TYPES = 2
N_ROUND_TYPES = 3


def _action(value: Any) -> PolicerAction:
    value = value or {}
    return PolicerAction(int(value.get("type", 0)), int(value.get("dscp", 0)))


def _infos(value: Any) -> PolicerInfos:
    """pol_logical_2_physical refuses what it cannot translate: -7 INVALID_VALUE."""
    value = value or {}
    infos = PolicerInfos(
        cir=int(value.get("cir", 0)),
        eir=int(value.get("eir", 0)),
        cb=int(value.get("cb", 0)),
        eb=int(value.get("eb", 0)),
        rate_type=int(value.get("rate_type", 0)),
        round_type=int(value.get("round_type", 0)),
        type=int(value.get("type", 0)),
        color_aware=bool(value.get("color_aware")),
        conform_action=_action(value.get("conform_action")),
        exceed_action=_action(value.get("exceed_action")),
        violate_action=_action(value.get("violate_action")),
    )
    if infos.type >= N_POLICER_TYPES or infos.rate_type >= N_RATE_TYPES or infos.round_type >= N_ROUND_TYPES:
        raise ApiError(INVALID_VALUE, f"policer type/rate/round out of range: {infos}")
    if infos.type in TWO_RATE_TYPES and infos.eir < infos.cir:
        raise ApiError(INVALID_VALUE, f"two-rate policer with PIR {infos.eir} < CIR {infos.cir}")
    return infos


def _policer(model: Model, index: int) -> Policer:
    policer = model.policers.get(index)
    if policer is None:
        raise ApiError(NO_SUCH_ENTRY, f"no policer {index}")
    return policer


def policer_add(model: Model, req: dict[str, Any]) -> Reply:
    name = str(req.get("name") or "")
    if name in model.policer_by_name:
        raise ApiError(VALUE_EXIST, f"policer {name!r} exists")
    infos = _infos(req.get("infos"))
    index = model.policer_indexes.get()
    model.policers[index] = Policer(index, name, infos)
    model.policer_by_name[name] = index
    return {"policer_index": index}


def policer_del(model: Model, req: dict[str, Any]) -> Reply:
    policer = _policer(model, int(req.get("policer_index", NO_INDEX)))
    del model.policers[policer.index]
    del model.policer_by_name[policer.name]
    model.policer_indexes.put(policer.index)
    return {}


def policer_update(model: Model, req: dict[str, Any]) -> Reply:
    policer = _policer(model, int(req.get("policer_index", NO_INDEX)))
    model.policers[policer.index] = Policer(policer.index, policer.name, _infos(req.get("infos")))
    return {}


def _bind(model: Model, req: dict[str, Any], direction: str) -> Reply:
    iface = model.interface(int(req.get("sw_if_index", NO_INDEX)))
    policer = _policer(model, int(req.get("policer_index", NO_INDEX)))
    key = (iface.sw_if_index, direction)
    if req.get("apply"):
        model.policer_bindings[key] = policer.index
    else:
        model.policer_bindings.pop(key, None)
    return {}


def policer_input_v2(model: Model, req: dict[str, Any]) -> Reply:
    """Uplink: the ip4/ip6-unicast arc of the tunnel interface, after decap."""
    return _bind(model, req, "input")


def policer_output_v2(model: Model, req: dict[str, Any]) -> Reply:
    """Downlink: the ip4/ip6-output arc of the tunnel interface, before encap."""
    return _bind(model, req, "output")


def _details(policer: Policer) -> dict[str, Any]:
    infos = policer.infos

    def action(a: PolicerAction) -> dict[str, int]:
        return {"type": a.type, "dscp": a.dscp}

    return {
        "name": policer.name,
        "cir": infos.cir,
        "eir": infos.eir,
        "cb": infos.cb,
        "eb": infos.eb,
        "rate_type": infos.rate_type,
        "round_type": infos.round_type,
        "type": infos.type,
        "conform_action": action(infos.conform_action),
        "exceed_action": action(infos.exceed_action),
        "violate_action": action(infos.violate_action),
        "single_rate": infos.type in (0, 1),
        "color_aware": infos.color_aware,
    }


def policer_dump_v2(model: Model, req: dict[str, Any]) -> Reply:
    """All policers (policer_index ~0) or one; an unknown index dumps nothing."""
    index = int(req.get("policer_index", NO_INDEX))
    return [_details(p) for i, p in sorted(model.policers.items()) if index in (NO_INDEX, i)]


HANDLERS: dict[str, Handler] = {
    "policer_add": policer_add,
    "policer_del": policer_del,
    "policer_update": policer_update,
    "policer_input_v2": policer_input_v2,
    "policer_output_v2": policer_output_v2,
    "policer_dump_v2": policer_dump_v2,
}

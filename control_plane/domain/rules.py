"""The desired PFCP rules of one session: PDRs, FARs, QERs and URRs as plain data.

What the control plane wants a UPF to hold, independent of PFCP encoding
(``control_plane.n4.build`` turns it into messages). The same values go to the
``session_rules`` table (one row per rule, ``to_json`` bodies), so a session
can be re-established on a restarted UPF and a modification is a diff by rule ID.

Rule numbering of :func:`build_rules` (deterministic, so old and new rules of
a session compare by ID):

* PDR 1: default uplink (ACCESS); PDR 2: default downlink (CORE).
* FAR 1: uplink to CORE in the DNN's Network Instance; FAR 2: downlink to ACCESS.
* QER 1 (session AMBR, QFI) and URR 1 (volume and duration): shared by every PDR.
* Edge breakout rule i (0-based, in the order the caller gives, e.g. by database
  id): PDR 2i+3 uplink, PDR 2i+4 downlink, FAR i+3 uplink to its Network Instance.
  Appending a rule therefore only creates; removing the last one only removes.

Precedence (§8.2.11, lower matches first): the default PDRs use
:data:`DEFAULT_PRECEDENCE`; an edge rule keeps its own precedence, which must be
lower, so its SDF filters win over the catch-all default PDRs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address
from operator import attrgetter
from typing import Any, Literal, TypeVar

__all__ = [
    "DEFAULT_PRECEDENCE",
    "INTERFACE_TYPES",
    "EdgeRuleSpec",
    "FTeidSpec",
    "FarSpec",
    "PdrSpec",
    "QerSpec",
    "RuleContext",
    "RuleKind",
    "SessionRules",
    "UrrSpec",
    "build_rules",
    "parse_address",
    "parse_prefix",
]

RuleKind = Literal["pdr", "far", "qer", "urr"]
KINDS: tuple[RuleKind, ...] = ("pdr", "far", "qer", "urr")
#: Precedence of the default PDRs: the last to match (§8.2.11), yet well inside 32 bits
#: so every UPF we know compares it as an ordinary number.
DEFAULT_PRECEDENCE = 65535
#: 3GPP Interface Type names (§8.2.118) this control plane puts in PDIs and FARs.
INTERFACE_TYPES = frozenset(
    {"N3 3GPP Access", "N3 Trusted Non-3GPP Access", "N3 Untrusted Non-3GPP Access", "N6", "N9", "N19"}
)
_INTERFACES = ("access", "core")
_ACTIONS = ("forw", "drop", "buff")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_id(what: str, value: object, bits: int) -> None:
    _check(type(value) is int and 0 < value < 1 << bits, f"{what} must be an integer 1..{(1 << bits) - 1}: {value!r}")


def _check_opt_int(what: str, value: object, limit: int = 1 << 64) -> None:
    _check(value is None or (type(value) is int and 0 <= value < limit), f"{what} must be an integer: {value!r}")


# A session's few addresses are checked by every spec naming them (its UE IP by
# each PDR) and parsed again for PFCP by control_plane.n4.build: parse each once.
@lru_cache(maxsize=4096)
def parse_address(text: str) -> IPv4Address | IPv6Address:
    """The address of a spec's text (ValueError if it is none), cached."""
    return ip_address(text)


@lru_cache(maxsize=4096)
def parse_prefix(text: str) -> IPv6Network:
    """The IPv6 prefix of a spec's UE IPv6 text (ValueError if it is none), cached."""
    return IPv6Network(text)


def _check_ip(what: str, value: object, version: int | None = None) -> None:
    if value is None:
        return
    try:
        parsed = parse_address(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    _check(parsed is not None and version in (None, parsed.version), f"{what} is not an IP address: {value!r}")


@dataclass(frozen=True, slots=True)
class FTeidSpec:
    """A local F-TEID (§8.2.3): fixed (TEID + address, the CP allocated it) or CH
    (the UPF chooses; ``choose_id`` is the CHID that makes PDRs share one)."""

    teid: int | None
    address: str | None
    choose: bool = False
    choose_id: int | None = None
    #: Address family the UPF allocates with CH (CHV4 or CHV6); a fixed one follows ``address``.
    family: int = 4

    def __post_init__(self) -> None:
        _check(self.family in (4, 6), f"F-TEID family must be 4 or 6: {self.family!r}")
        if self.choose:
            _check(self.teid is None and self.address is None, "a CH F-TEID carries no TEID nor address")
            _check(self.choose_id is None or (type(self.choose_id) is int and 0 <= self.choose_id < 256), "bad CHID")
        else:
            _check_id("TEID", self.teid, 32)
            _check(self.choose_id is None, "CHID goes only with CH")
            _check(isinstance(self.address, str), "a fixed F-TEID needs an address")
            _check_ip("F-TEID address", self.address, self.family)


@dataclass(frozen=True, slots=True)
class PdrSpec:
    """A PDR. The UE IP Address is the source on ACCESS and the destination on
    CORE (§8.2.62 S/D); ``ue_ip`` is an IPv4 address, ``ue_ip_v6`` an IPv6 prefix."""

    pdr_id: int
    precedence: int
    source_interface: str
    interface_type: str | None = None
    local_fteid: FTeidSpec | None = None
    ue_ip: str | None = None
    ue_ip_v6: str | None = None
    network_instance: str | None = None
    sdf_filters: tuple[str, ...] = ()
    qfi: int | None = None
    outer_header_removal: bool = False
    far_id: int = 0
    qer_ids: tuple[int, ...] = ()
    urr_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _check_id("PDR ID", self.pdr_id, 16)
        _check_opt_int("precedence", self.precedence, 1 << 32)
        _check(self.source_interface in _INTERFACES, f"source interface {self.source_interface!r}")
        _check(self.interface_type is None or self.interface_type in INTERFACE_TYPES, f"{self.interface_type!r}")
        _check(self.local_fteid is None or isinstance(self.local_fteid, FTeidSpec), "local F-TEID")
        _check_ip("UE IPv4 address", self.ue_ip, 4)
        if self.ue_ip_v6 is not None:
            try:
                parse_prefix(self.ue_ip_v6)
            except (TypeError, ValueError):
                raise ValueError(f"UE IPv6 prefix is not an IPv6 prefix: {self.ue_ip_v6!r}") from None
        _check(all(isinstance(s, str) and s for s in self.sdf_filters), "SDF filters are flow description text")
        _check_opt_int("QFI", self.qfi, 64)
        _check_id("FAR ID", self.far_id, 32)
        for rid in (*self.qer_ids, *self.urr_ids):
            _check_id("QER/URR ID", rid, 32)


@dataclass(frozen=True, slots=True)
class FarSpec:
    """A FAR. ``buff`` buffers and notifies the CP (BUFF + NOCP, §5.2.3.1); a
    forwarding FAR to ACCESS creates GTP-U/UDP/IP towards ``ohc_teid``/``ohc_address``."""

    far_id: int
    action: str
    destination_interface: str | None = None
    interface_type: str | None = None
    network_instance: str | None = None
    ohc_teid: int | None = None
    ohc_address: str | None = None

    def __post_init__(self) -> None:
        _check_id("FAR ID", self.far_id, 32)
        _check(self.action in _ACTIONS, f"FAR action must be one of {_ACTIONS}: {self.action!r}")
        if self.action == "forw":
            _check(self.destination_interface in _INTERFACES, "a forwarding FAR needs a destination interface")
        _check(self.interface_type is None or self.interface_type in INTERFACE_TYPES, f"{self.interface_type!r}")
        _check((self.ohc_teid is None) == (self.ohc_address is None), "Outer Header Creation needs TEID and address")
        if self.ohc_teid is not None:
            _check_id("Outer Header Creation TEID", self.ohc_teid, 32)
        _check_ip("Outer Header Creation address", self.ohc_address)


@dataclass(frozen=True, slots=True)
class QerSpec:
    """A QER: gates, QFI and MBR in kbit/s (§8.2.8; both directions or neither)."""

    qer_id: int
    qfi: int | None = None
    gate_ul_open: bool = True
    gate_dl_open: bool = True
    mbr_ul_kbps: int | None = None
    mbr_dl_kbps: int | None = None

    def __post_init__(self) -> None:
        _check_id("QER ID", self.qer_id, 32)
        _check_opt_int("QFI", self.qfi, 64)
        _check((self.mbr_ul_kbps is None) == (self.mbr_dl_kbps is None), "MBR needs both directions")
        _check_opt_int("MBR", self.mbr_ul_kbps, 1 << 40)
        _check_opt_int("MBR", self.mbr_dl_kbps, 1 << 40)


@dataclass(frozen=True, slots=True)
class UrrSpec:
    """A URR measuring volume and/or duration; a threshold set arms its trigger (VOLTH/TIMTH)."""

    urr_id: int
    volume_threshold: int | None = None
    time_threshold: int | None = None
    measure_volume: bool = True
    measure_duration: bool = True

    def __post_init__(self) -> None:
        _check_id("URR ID", self.urr_id, 32)
        _check_opt_int("volume threshold", self.volume_threshold)
        _check_opt_int("time threshold", self.time_threshold, 1 << 32)
        _check(self.measure_volume or self.measure_duration, "a URR measures something")


Spec = PdrSpec | FarSpec | QerSpec | UrrSpec
_S = TypeVar("_S", bound=Spec | FTeidSpec)
_CLASSES: dict[RuleKind, type[Spec]] = {"pdr": PdrSpec, "far": FarSpec, "qer": QerSpec, "urr": UrrSpec}


#: The ID attribute of each kind (rule_id without the type tests, where the kind is known).
_ID_OF: dict[str, Callable[[Any], int]] = {
    "pdr": attrgetter("pdr_id"),
    "far": attrgetter("far_id"),
    "qer": attrgetter("qer_id"),
    "urr": attrgetter("urr_id"),
}


def rule_id(spec: Spec) -> int:
    """The ID of a PDR, FAR, QER or URR spec."""
    return (
        spec.pdr_id
        if isinstance(spec, PdrSpec)
        else spec.far_id
        if isinstance(spec, FarSpec)
        else (spec.qer_id if isinstance(spec, QerSpec) else spec.urr_id)
    )


# dataclasses.fields() builds its answer anew each call; rows() needs it for every rule.
_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in fields(cls)) for cls in (PdrSpec, FarSpec, QerSpec, UrrSpec, FTeidSpec)
}


def spec_to_json(spec: Spec | FTeidSpec) -> dict[str, Any]:
    """A spec as a JSON object: field name -> value (tuples as lists, F-TEID nested)."""
    out: dict[str, Any] = {}
    for name in _FIELDS[type(spec)]:
        value = getattr(spec, name)
        if isinstance(value, FTeidSpec):
            value = spec_to_json(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def _json_text(spec: Spec) -> str:
    return json.dumps(spec_to_json(spec), separators=(",", ":"))


@lru_cache(maxsize=4096)
def spec_json_text(spec: Spec) -> str:
    """:func:`spec_to_json` as JSON text (cached: specs are immutable)."""
    return _json_text(spec)


def _parse(kind: RuleKind, body: object) -> Spec:
    return spec_from_json(_CLASSES[kind], body)


def spec_from_json(cls: type[_S], body: object) -> _S:
    """The spec ``cls`` from its :func:`spec_to_json` form; ValueError names what is wrong."""
    if not isinstance(body, Mapping):
        raise ValueError(f"{cls.__name__}: a JSON object expected, not {type(body).__name__}")
    unknown = set(body) - set(_FIELDS[cls])
    _check(not unknown, f"{cls.__name__}: unknown fields {sorted(map(str, unknown))}")
    values: dict[str, Any] = {}
    for name, value in body.items():
        if name == "local_fteid" and value is not None:
            value = spec_from_json(FTeidSpec, value)
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    try:
        return cls(**values)
    except TypeError as exc:  # a missing required field
        raise ValueError(f"{cls.__name__}: {exc}") from None


@dataclass(frozen=True, slots=True)
class SessionRules:
    """Every desired rule of a session, each kind a tuple sorted by rule ID.

    Construction sorts, refuses a repeated ID and a PDR naming a FAR/QER/URR that
    is not there (§5.2.1: the UPF would reject it anyway, with less to go on).
    """

    pdrs: tuple[PdrSpec, ...] = ()
    fars: tuple[FarSpec, ...] = ()
    qers: tuple[QerSpec, ...] = ()
    urrs: tuple[UrrSpec, ...] = ()

    def __post_init__(self) -> None:
        ids_of: dict[str, set[int]] = {}
        for kind in KINDS:
            given = getattr(self, kind + "s")
            _check(all(isinstance(s, _CLASSES[kind]) for s in given), f"{kind}s must be {_CLASSES[kind].__name__}")
            key = _ID_OF[kind]
            specs: tuple[Spec, ...] = tuple(sorted(given, key=key))
            ids = [key(s) for s in specs]
            ids_of[kind] = set(ids)
            _check(len(ids_of[kind]) == len(ids), f"repeated {kind.upper()} ID in {ids}")
            object.__setattr__(self, kind + "s", specs)
        fars, qers, urrs = ids_of["far"], ids_of["qer"], ids_of["urr"]
        for pdr in self.pdrs:
            _check(pdr.far_id in fars, f"PDR {pdr.pdr_id} names FAR {pdr.far_id}, which is not there")
            for q in pdr.qer_ids:
                _check(q in qers, f"PDR {pdr.pdr_id} names QER {q}, which is not there")
            for u in pdr.urr_ids:
                _check(u in urrs, f"PDR {pdr.pdr_id} names URR {u}, which is not there")

    @classmethod
    def checked_by_construction(
        cls, pdrs: tuple[PdrSpec, ...], fars: tuple[FarSpec, ...], qers: tuple[QerSpec, ...], urrs: tuple[UrrSpec, ...]
    ) -> SessionRules:
        """Rules :func:`build_rules` put together, sorted, unique and referring to each other by
        construction (its tests compare them with the checking constructor's): the checks are
        skipped, as every establishment would run them on the same numbering."""
        rules = object.__new__(cls)
        for name, value in (("pdrs", pdrs), ("fars", fars), ("qers", qers), ("urrs", urrs)):
            object.__setattr__(rules, name, value)
        return rules

    def by_id(self, kind: RuleKind) -> dict[int, Spec]:
        """The rules of one kind by ID."""
        return {rule_id(s): s for s in getattr(self, kind + "s")}

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        """{"pdr": [...], "far": [...], "qer": [...], "urr": [...]} of :func:`spec_to_json` bodies."""
        return {kind: [spec_to_json(s) for s in getattr(self, kind + "s")] for kind in KINDS}

    @classmethod
    def from_json(cls, data: object) -> SessionRules:
        """The rules from :meth:`to_json` output; ValueError on anything else."""
        if not isinstance(data, Mapping) or set(data) - set(KINDS):
            raise ValueError(f"session rules: an object with keys {KINDS} expected")
        lists = {kind: data.get(kind, []) for kind in KINDS}
        _check(all(isinstance(v, list) for v in lists.values()), "session rules: each kind is a list")
        return cls.of(_parse(kind, body) for kind in KINDS for body in lists[kind])

    def rows(self) -> list[tuple[RuleKind, int, dict[str, Any]]]:
        """(kind, rule_id, body) for the ``session_rules`` table."""
        return [(kind, rule_id(s), spec_to_json(s)) for kind in KINDS for s in getattr(self, kind + "s")]

    def row_texts(self) -> list[tuple[RuleKind, int, str]]:
        """:meth:`rows` with each body as its JSON text, what the table stores. The rules a
        policy decides (QER, URR, FARs towards N6) are shared by its sessions and serialized
        once each; a PDR (its UE address) and a FAR towards the gNB are the session's own."""
        out: list[tuple[RuleKind, int, str]] = [("pdr", s.pdr_id, _json_text(s)) for s in self.pdrs]
        out += [("far", s.far_id, _json_text(s) if s.ohc_teid is not None else spec_json_text(s)) for s in self.fars]
        out += [("qer", s.qer_id, spec_json_text(s)) for s in self.qers]
        out += [("urr", s.urr_id, spec_json_text(s)) for s in self.urrs]
        return out

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[str, int, object]]) -> SessionRules:
        """The rules from ``session_rules`` rows; the row's rule_id must match its body."""
        specs: list[Spec] = []
        for kind, rid, body in rows:
            _check(kind in KINDS, f"session rule kind {kind!r} is not one of {KINDS}")
            spec = _parse(kind, body)  # type: ignore[arg-type]  # checked on the line above
            _check(rule_id(spec) == rid, f"session rule row {kind} {rid} holds rule ID {rule_id(spec)}")
            specs.append(spec)
        return cls.of(specs)

    @classmethod
    def of(cls, specs: Iterable[Spec]) -> SessionRules:
        """The rules from specs of any kinds, in any order."""
        pdrs: list[PdrSpec] = []
        fars: list[FarSpec] = []
        qers: list[QerSpec] = []
        urrs: list[UrrSpec] = []
        for spec in specs:
            if isinstance(spec, PdrSpec):
                pdrs.append(spec)
            elif isinstance(spec, FarSpec):
                fars.append(spec)
            elif isinstance(spec, QerSpec):
                qers.append(spec)
            else:
                urrs.append(spec)
        return cls(tuple(pdrs), tuple(fars), tuple(qers), tuple(urrs))


@dataclass(frozen=True, slots=True)
class EdgeRuleSpec:
    """A local breakout rule: traffic matching ``flow_descriptions`` uses the edge N6."""

    name: str
    precedence: int
    flow_descriptions: tuple[str, ...]
    network_instance: str


@dataclass(frozen=True, slots=True)
class RuleContext:
    """The session facts the rules are made of."""

    ue_ipv4: str | None
    ue_ipv6: str | None
    qfi: int
    #: The gNB sends the PDU Session Container, so uplink G-PDUs carry the QFI to match.
    qfi_in_pdi: bool
    #: Session AMBR (uplink, downlink) in kbit/s, enforced as QER 1's MBR; None: no limit.
    mbr: tuple[int, int] | None
    volume_threshold: int | None
    time_threshold: int | None
    dnn_network_instance: str
    #: Network Instance for the access PDIs, when the UPF needs one (None: left out).
    access_network_instance: str | None
    #: The CP-allocated N3 F-TEID (TEID, UPF N3 address); None: CH, the UPF chooses (CHID 1).
    n3_fteid: tuple[int, str] | None
    gnb_teid: int | None
    gnb_address: str | None
    edge_rules: tuple[EdgeRuleSpec, ...] = ()
    #: N3 address family when the UPF chooses the F-TEID (CH).
    n3_family: int = 4


N3 = "N3 3GPP Access"
N6 = "N6"
#: CHID shared by every uplink PDR of a session when the UPF chooses the F-TEID (§8.2.3).
CHOOSE_ID = 1


def build_rules(ctx: RuleContext) -> SessionRules:
    """The rules of a default session plus its edge breakout rules (numbering: module doc)."""
    _check(ctx.ue_ipv4 is not None or ctx.ue_ipv6 is not None, "a session needs a UE IPv4 address or IPv6 prefix")
    if ctx.n3_fteid is None:
        fteid = FTeidSpec(None, None, choose=True, choose_id=CHOOSE_ID, family=ctx.n3_family)
    else:
        teid, address = ctx.n3_fteid
        fteid = FTeidSpec(teid, address, family=6 if ":" in str(address) else 4)  # FTeidSpec checks it

    def uplink(pdr_id: int, precedence: int, sdf: tuple[str, ...], far_id: int) -> PdrSpec:
        qfi = ctx.qfi if ctx.qfi_in_pdi else None  # only when the gNB sends the PDU Session Container
        return PdrSpec(
            pdr_id, precedence, "access", N3, fteid, ctx.ue_ipv4, ctx.ue_ipv6, ctx.access_network_instance,
            sdf, qfi, True, far_id, (1,), (1,),
        )  # fmt: skip

    def downlink(pdr_id: int, precedence: int, instance: str, sdf: tuple[str, ...]) -> PdrSpec:
        return PdrSpec(
            pdr_id, precedence, "core", N6, None, ctx.ue_ipv4, ctx.ue_ipv6, instance, sdf, None, False, 2, (1,), (1,)
        )

    pdrs = [uplink(1, DEFAULT_PRECEDENCE, (), 1), downlink(2, DEFAULT_PRECEDENCE, ctx.dnn_network_instance, ())]
    fars = [_core_far(1, ctx.dnn_network_instance)]
    if ctx.gnb_teid is None or ctx.gnb_address is None:
        fars.append(FarSpec(2, "buff"))  # no gNB tunnel yet: buffer and notify the CP (§5.2.3.1)
    else:
        fars.append(FarSpec(2, "forw", "access", N3, ctx.access_network_instance, ctx.gnb_teid, ctx.gnb_address))
    for i, edge in enumerate(ctx.edge_rules):
        _check(
            0 <= edge.precedence < DEFAULT_PRECEDENCE,
            f"edge rule {edge.name!r}: precedence {edge.precedence} must be below {DEFAULT_PRECEDENCE}",
        )
        _check(bool(edge.flow_descriptions), f"edge rule {edge.name!r} has no flow description")
        sdf = tuple(edge.flow_descriptions)
        pdrs.append(uplink(2 * i + 3, edge.precedence, sdf, i + 3))
        pdrs.append(downlink(2 * i + 4, edge.precedence, edge.network_instance, sdf))
        fars.append(_core_far(i + 3, edge.network_instance))
    mbr_ul, mbr_dl = ctx.mbr if ctx.mbr is not None else (None, None)
    qer = _qer(ctx.qfi, mbr_ul, mbr_dl)
    urr = _urr(ctx.volume_threshold, ctx.time_threshold)
    return SessionRules.checked_by_construction(tuple(pdrs), tuple(fars), (qer,), (urr,))


# The rules a policy decides alone are the same for every session of that policy: built
# (and checked) once each, not once per establishment. Specs are immutable, so sharing is safe.
@lru_cache(maxsize=1024)
def _core_far(far_id: int, instance: str) -> FarSpec:
    return FarSpec(far_id, "forw", "core", N6, instance)


@lru_cache(maxsize=1024)
def _qer(qfi: int, mbr_ul: int | None, mbr_dl: int | None) -> QerSpec:
    return QerSpec(1, qfi, True, True, mbr_ul, mbr_dl)


@lru_cache(maxsize=1024)
def _urr(volume_threshold: int | None, time_threshold: int | None) -> UrrSpec:
    return UrrSpec(1, volume_threshold, time_threshold)

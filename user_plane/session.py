"""Desired state of one PFCP session and the all-or-nothing request plans.

Theory of operation:

* :class:`SessionState` is what a session *should* hold; it is never mutated.
  :func:`plan_establishment` / :func:`plan_modification` validate the whole
  request, then return a :class:`Plan` (the complete new state and what the
  response needs) or a :class:`Rejection`; a rejection changes nothing.
* A modification applies all Remove IEs, then all Create IEs, then all Update
  IEs (the order of Table 7.5.4.1-1); references are checked on the result, so
  Remove FAR with the Remove PDR that used it succeeds, Remove FAR alone fails.
* CH F-TEIDs (§5.5.3, §8.2.3) get negative placeholders while validating; the
  allocator runs last, so a rejected request allocates nothing (if it runs out
  half-way, what it gave goes back through ``release_teid``).

Causes (Table 8.2.1-1) where the spec leaves the choice:

* 73 Rule creation/modification Failure + Failed Rule ID (§8.2.80): rule ID in
  use or repeated; Update/Remove of an unknown rule; a reference to a missing
  FAR/QER/URR/BAR once applied (blaming the removed rule if this request removed
  it, else the referring rule); two PDRs with equal precedence and PDI match
  fields (§5.2.1; blaming the PDR this request created or changed); a FAR left
  FORW without Destination Interface; an Outer Header Creation naming no header
  or lacking its TEID/address. The codec already refuses OHC octets announcing
  a field they lack, so what reaches us is a well-formed Conditional IE the FAR
  cannot use: 73, not 69 (which §7.6 keeps for Mandatory IEs).
* 67 Conditional IE missing + Offending IE: Create PDR without FAR ID nor
  predefined rules (Table 7.5.2.2-1); FORW Create FAR without Forwarding
  Parameters (Table 7.5.2.3-1). A Reporting Trigger without its value (TIMTH
  without Time Threshold, as in the reference vector a real UPF accepts) is
  accepted: that trigger never fires.
* 69 Mandatory IE incorrect: Apply Action without exactly one of DROP, FORW,
  BUFF, IPMA, IPMD (§8.2.26). 71 Invalid F-TEID allocation option: CH without
  CHV4/CHV6, a family with no local address, CH in Update PDR (Updated PDR is
  not modelled). 75 No resources available: :class:`ResourcesExhausted`.
  76 Service not supported: Update Duplicating Parameters (no DUPL).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pfcp

from . import rules
from .frozen import fast_init
from .rule_values import rule_table
from .rules import Bar, Far, LocalFTeid, Pdr, Qer, Urr

__all__ = ["Plan", "Rejection", "ResourcesExhausted", "SessionState", "TeidAllocator"]
__all__ += ["plan_establishment", "plan_modification"]

Cause = pfcp.CauseValue
RuleType = pfcp.RuleIDType
IE = pfcp.IEType
_A = pfcp.ApplyActionFlags
#: SessionState's rule tables, in field order.
_KINDS = (RuleType.PDR, RuleType.FAR, RuleType.QER, RuleType.URR, RuleType.BAR)
#: §8.2.26: one and only one of these is set. Plain ints: IntFlag operators are slow.
_EXCLUSIVE_ACTIONS = int(_A.DROP | _A.FORW | _A.BUFF | _A.IPMA | _A.IPMD)
_FORW = int(_A.FORW)


class _EmptyTable(Mapping[int, Any]):
    """A rule table with no rule, shared by every session without that kind of rule (an
    empty dict is 80 bytes per session); equal to ``{}``. Immutable, as a SessionState is."""

    __slots__ = ()

    def __getitem__(self, key: int) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "{}"


#: The table of every session without that kind of rule (a draft copies it into a dict).
_NO_RULES: Mapping[int, Any] = _EmptyTable()
#: Bound on the interned rule tables (see _shared_table): cleared when reached.
_SHARED_TABLES_MAX = 4096
_shared_tables: dict[tuple[tuple[int, int], ...], Mapping[int, Any]] = {}


def _shared_table(table: dict[int, Any]) -> Mapping[int, Any]:
    """One table object for QER, URR or BAR tables holding the same rule objects: these come
    from the CP function's policy (an MBR, a volume threshold per subscription profile), so
    most sessions repeat a few tables, and a dict costs 240 bytes per session. Rules and
    states are immutable (a draft copies the tables it changes), so sharing is invisible."""
    if not table:
        return _NO_RULES
    # Keyed by the rules' identities (equal rules from a Create are one object, see
    # rule_values.interned): cheap to hash and compare. An id stays unique while its entry lives,
    # since the cached table holds the rule.
    if len(table) == 1:
        ((rule_id, rule),) = table.items()
        key: tuple[tuple[int, int], ...] = ((rule_id, id(rule)),)
    else:
        key = tuple(zip(table, map(id, table.values()), strict=True))
    shared = _shared_tables.get(key)
    if shared is None:
        if len(_shared_tables) >= _SHARED_TABLES_MAX:
            _shared_tables.clear()
        shared = _shared_tables[key] = table
    return shared


#: Allocates a local TEID; receives the CHID of the request (None without one).
TeidAllocator = Callable[[int | None], int]
#: Takes back a TEID the allocator gave (optional).
TeidRelease = Callable[[int], None] | None
#: The UP function's own GTP-U addresses (N3/N9) for a CH PDI.
LocalAddresses = Callable[[pfcp.PDI], tuple[IPv4Address | None, IPv6Address | None]]


class ResourcesExhausted(Exception):
    """Raised by a :data:`TeidAllocator` that has no TEID left (answered with cause 75)."""


def _no_addresses(pdi: pfcp.PDI) -> tuple[IPv4Address | None, IPv6Address | None]:
    return (None, None)


@fast_init
@dataclass(frozen=True, slots=True)
class SessionState:
    """The rules one PFCP session should hold, by rule ID. Never mutated."""

    #: An FSeid from a request; a pfcp FSEID works too (the same attributes), for states built by hand.
    cp_f_seid: rules.FSeid | pfcp.FSEID
    up_seid: int
    pdrs: Mapping[int, Pdr] = field(default_factory=dict)
    fars: Mapping[int, Far] = field(default_factory=dict)
    qers: Mapping[int, Qer] = field(default_factory=dict)
    urrs: Mapping[int, Urr] = field(default_factory=dict)
    bars: Mapping[int, Bar] = field(default_factory=dict)

    def allocated_teids(self) -> frozenset[int]:
        """TEIDs the UP function chose for this session (to release when they disappear)."""
        return frozenset(p.local_f_teid.teid for p in self.pdrs.values() if p.local_f_teid and p.local_f_teid.allocated)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request was refused: what the response carries (§7.5.3.1, §7.5.5.1).

    ``failed_rule`` is set exactly when ``cause`` is 73 (Failed Rule ID "shall be
    included if the Cause indicates a rule creation or modification failure").
    """

    cause: pfcp.CauseValue
    offending_ie: int | None = None
    failed_rule: pfcp.FailedRuleID | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Plan:
    """An accepted request: the complete new state and what the response and the
    dataplane need besides it."""

    state: SessionState
    #: Created PDR IEs for every Create PDR whose F-TEID the UP function chose (Table 7.5.3.2-1).
    created_pdrs: tuple[pfcp.CreatedPDR, ...] = ()
    #: TEIDs allocated for this request (release them if the plan is abandoned).
    new_teids: tuple[int, ...] = ()
    #: FARs whose Update Forwarding Parameters set SNDEM: send End Marker on the old path (§8.2.58).
    end_marker_fars: tuple[int, ...] = ()


class _Reject(Exception):
    def __init__(self, rejection: Rejection) -> None:
        self.rejection = rejection


def _rule_failure(kind: pfcp.RuleIDType, rule_id: int) -> _Reject:
    return _Reject(Rejection(Cause.RULE_CREATION_MODIFICATION_FAILURE, None, pfcp.FailedRuleID(kind, rule_id)))


def _ie_error(cause: pfcp.CauseValue, ie_type: int) -> _Reject:
    return _Reject(Rejection(cause, ie_type))


class _Draft:
    """The mutable working copy a plan is built in; frozen into a SessionState at the end."""

    def __init__(
        self,
        cp_f_seid: rules.FSeid | pfcp.FSEID,
        up_seid: int,
        state: SessionState | None,
        local_addresses: LocalAddresses,
    ) -> None:
        self.cp_f_seid = cp_f_seid
        self.up_seid = up_seid
        if state is None:  # an establishment: nothing to copy
            self.rules: dict[RuleType, dict[int, Any]] = {k: {} for k in _KINDS}
        else:
            maps = (state.pdrs, state.fars, state.qers, state.urrs, state.bars)
            self.rules = {k: dict(m) for k, m in zip(_KINDS, maps, strict=True)}
        # Filled on first use (most requests touch few kinds; an establishment removes nothing).
        self.removed: defaultdict[RuleType, set[int]] = defaultdict(set)
        self.touched: defaultdict[RuleType, list[int]] = defaultdict(list)  # request order
        self.updated: defaultdict[RuleType, set[int]] = defaultdict(set)
        self.local_addresses = local_addresses
        self.chid_teids: dict[int, LocalFTeid] = {}  # CHID -> F-TEID (real or placeholder)
        self.placeholders: dict[int, int | None] = {}  # placeholder TEID -> CHID
        self.ch_created: list[int] = []  # Create PDR IDs with CH, in request order
        self.end_markers: list[int] = []
        self.addresses: dict[Any, Any] = {}  # UE addresses of this request: one object each

    def remove(self, kind: RuleType, ids: Iterable[int]) -> None:
        table = self.rules[kind]
        for rule_id in ids:
            if table.pop(rule_id, None) is None:  # unknown, or removed twice
                raise _rule_failure(kind, rule_id)
            self.removed[kind].add(rule_id)

    def create(self, kind: RuleType, rule_id: int) -> None:
        if rule_id in self.rules[kind]:  # already provisioned, or twice in this request
            raise _rule_failure(kind, rule_id)
        self.touched[kind].append(rule_id)

    def existing(self, kind: RuleType, rule_id: int) -> Any:
        if rule_id not in self.rules[kind] or rule_id in self.updated[kind]:  # unknown, or updated twice
            raise _rule_failure(kind, rule_id)
        self.updated[kind].add(rule_id)
        self.touched[kind].append(rule_id)
        return self.rules[kind][rule_id]

    # -- F-TEID (§5.5.3: CH/CHID) --------------------------------------------

    def local_f_teid(self, pdi: pfcp.PDI) -> LocalFTeid | None:
        fteid = pdi.local_f_teid
        if fteid is None or not fteid.choose:
            return rules.fixed_f_teid(fteid)
        if not (fteid.choose_v4 or fteid.choose_v6):
            raise _ie_error(Cause.INVALID_F_TEID_ALLOCATION_OPTION, IE.F_TEID)
        chid = fteid.choose_id
        if chid is not None and chid in self.chid_teids:  # §8.2.3: same CHID, same F-TEID
            return self.chid_teids[chid]
        ipv4, ipv6 = self.local_addresses(pdi)
        if (fteid.choose_v4 and ipv4 is None) or (fteid.choose_v6 and ipv6 is None):
            raise _ie_error(Cause.INVALID_F_TEID_ALLOCATION_OPTION, IE.F_TEID)
        placeholder = -1 - len(self.placeholders)
        self.placeholders[placeholder] = chid
        chosen = LocalFTeid(
            placeholder, ipv4 if fteid.choose_v4 else None, ipv6 if fteid.choose_v6 else None, True, chid
        )
        if chid is not None:
            self.chid_teids[chid] = chosen
        return chosen


def _check_apply_action(ie: pfcp.ApplyAction) -> int:
    """The Apply Action bits as an int; one and only one exclusive action (§8.2.26)."""
    value = int(ie.value)
    exclusive = value & _EXCLUSIVE_ACTIONS
    if not exclusive or exclusive & (exclusive - 1):  # none, or more than one bit
        raise _ie_error(Cause.MANDATORY_IE_INCORRECT, IE.APPLY_ACTION)
    return value


def _apply_creates(draft: _Draft, req: pfcp.SessionEstablishmentRequest | pfcp.SessionModificationRequest) -> None:
    # _Draft.create inlined (an ID already provisioned, or twice in this request, fails):
    # every establishment runs this for each of its rules.
    tables, touched = draft.rules, draft.touched
    pdrs = tables[RuleType.PDR]
    if req.create_pdr:
        created = touched[RuleType.PDR]
        for pdr_ie in req.create_pdr:
            if pdr_ie.far_id is None and not pdr_ie.activate_predefined_rules:
                raise _ie_error(Cause.CONDITIONAL_IE_MISSING, IE.FAR_ID)  # Table 7.5.2.2-1
            pdr_id = pdr_ie.pdr_id.value
            if pdr_id in pdrs:
                raise _rule_failure(RuleType.PDR, pdr_id)
            created.append(pdr_id)
            pdi = pdr_ie.pdi
            fteid = pdi.local_f_teid
            local = None if fteid is None else draft.local_f_teid(pdi)
            pdrs[pdr_id] = rules.pdr_from_create(pdr_ie, local, draft.addresses)
            if fteid is not None and fteid.choose:
                draft.ch_created.append(pdr_id)
    fars = tables[RuleType.FAR]
    if req.create_far:
        created = touched[RuleType.FAR]
        for far_ie in req.create_far:
            if _check_apply_action(far_ie.apply_action) & _FORW and far_ie.forwarding_parameters is None:
                raise _ie_error(Cause.CONDITIONAL_IE_MISSING, IE.FORWARDING_PARAMETERS)  # Table 7.5.2.3-1
            far_id = far_ie.far_id.value
            if far_id in fars:
                raise _rule_failure(RuleType.FAR, far_id)
            created.append(far_id)
            fars[far_id] = rules.far_from_create(far_ie)
    urrs = tables[RuleType.URR]
    for urr_ie in req.create_urr:
        urr_id = urr_ie.urr_id.value
        if urr_id in urrs:
            raise _rule_failure(RuleType.URR, urr_id)
        urrs[urr_id] = rules.urr_from_create(urr_ie)
    qers = tables[RuleType.QER]
    for qer_ie in req.create_qer:
        qer_id = qer_ie.qer_id.value
        if qer_id in qers:
            raise _rule_failure(RuleType.QER, qer_id)
        qers[qer_id] = rules.qer_from_create(qer_ie)
    if req.create_bar is not None:
        draft.create(RuleType.BAR, req.create_bar.bar_id.value)
        tables[RuleType.BAR][req.create_bar.bar_id.value] = rules.bar_from_create(req.create_bar)


def _apply_updates(draft: _Draft, req: pfcp.SessionModificationRequest) -> None:
    pdrs, fars, urrs, qers = (draft.rules[k] for k in (RuleType.PDR, RuleType.FAR, RuleType.URR, RuleType.QER))
    for pdr_ie in req.update_pdr:
        pdi = pdr_ie.pdi
        if pdi is not None and pdi.local_f_teid is not None and pdi.local_f_teid.choose:
            raise _ie_error(Cause.INVALID_F_TEID_ALLOCATION_OPTION, IE.F_TEID)  # no Updated PDR to return it
        old = draft.existing(RuleType.PDR, pdr_ie.pdr_id.value)
        local = None if pdi is None else rules.fixed_f_teid(pdi.local_f_teid)
        pdrs[pdr_ie.pdr_id.value] = rules.update_pdr(old, pdr_ie, local)
    for far_ie in req.update_far:
        if far_ie.update_duplicating_parameters:
            raise _ie_error(Cause.SERVICE_NOT_SUPPORTED, IE.UPDATE_DUPLICATING_PARAMETERS)
        if far_ie.apply_action is not None:
            _check_apply_action(far_ie.apply_action)
        fars[far_ie.far_id.value] = rules.update_far(draft.existing(RuleType.FAR, far_ie.far_id.value), far_ie)
        flags = (
            None if far_ie.update_forwarding_parameters is None else far_ie.update_forwarding_parameters.pfcpsmreq_flags
        )
        if flags is not None and flags.value & pfcp.PFCPSMReqFlagsValue.SNDEM:
            draft.end_markers.append(far_ie.far_id.value)
    for urr_ie in req.update_urr:
        urrs[urr_ie.urr_id.value] = rules.update_urr(draft.existing(RuleType.URR, urr_ie.urr_id.value), urr_ie)
    for qer_ie in req.update_qer:
        qers[qer_ie.qer_id.value] = rules.update_qer(draft.existing(RuleType.QER, qer_ie.qer_id.value), qer_ie)
    if req.update_bar is not None:
        bar_id = req.update_bar.bar_id.value
        draft.rules[RuleType.BAR][bar_id] = rules.update_bar(draft.existing(RuleType.BAR, bar_id), req.update_bar)


def _references_hold(tables: Mapping[RuleType, Mapping[int, Any]]) -> bool:
    """The common case of :func:`_check_references`, without sorting: every reference holds."""
    fars, qers, urrs, bars = (tables[k] for k in (RuleType.FAR, RuleType.QER, RuleType.URR, RuleType.BAR))
    for pdr in tables[RuleType.PDR].values():
        if pdr.far_id is not None and pdr.far_id not in fars:
            return False
        for qer_id in pdr.qer_ids:
            if qer_id not in qers:
                return False
        for urr_id in pdr.urr_ids:
            if urr_id not in urrs:
                return False
    for far in fars.values():
        if far.bar_id is not None and far.bar_id not in bars:
            return False
    for urr in urrs.values():
        for linked in urr.linked_urr_ids:
            if linked not in urrs:
                return False
        if urr.far_id_for_quota_action is not None and urr.far_id_for_quota_action not in fars:
            return False
    return True


def _check_references(draft: _Draft) -> None:
    """Every rule a rule points to exists once the request is applied (§5.2.1); the
    first broken one in rule ID order is the one reported."""
    tables, removed = draft.rules, draft.removed
    if _references_hold(tables):
        return

    def need(target: RuleType, target_id: int, kind: RuleType, rule_id: int) -> None:
        if target_id not in tables[target]:
            if target_id in removed[target]:  # the removal is what broke it
                raise _rule_failure(target, target_id)
            raise _rule_failure(kind, rule_id)

    for pdr in sorted(tables[RuleType.PDR].values(), key=lambda p: p.pdr_id):
        if pdr.far_id is not None:
            need(RuleType.FAR, pdr.far_id, RuleType.PDR, pdr.pdr_id)
        for qer_id in pdr.qer_ids:
            need(RuleType.QER, qer_id, RuleType.PDR, pdr.pdr_id)
        for urr_id in pdr.urr_ids:
            need(RuleType.URR, urr_id, RuleType.PDR, pdr.pdr_id)
    for far in sorted(tables[RuleType.FAR].values(), key=lambda f: f.far_id):
        if far.bar_id is not None:
            need(RuleType.BAR, far.bar_id, RuleType.FAR, far.far_id)
    for urr in sorted(tables[RuleType.URR].values(), key=lambda u: u.urr_id):
        for linked in urr.linked_urr_ids:
            need(RuleType.URR, linked, RuleType.URR, urr.urr_id)
        if urr.far_id_for_quota_action is not None:
            need(RuleType.FAR, urr.far_id_for_quota_action, RuleType.URR, urr.urr_id)


def _check_conflicts(draft: _Draft) -> None:
    """No two PDRs share precedence and PDI match fields; the PDR this request
    created or changed is the one that fails."""
    pdrs: dict[int, Pdr] = draft.rules[RuleType.PDR]
    # Keys differ when precedence or source interface differ: most sessions need no full key.
    groups = {(p.precedence, int(p.source_interface)) for p in pdrs.values()}
    if len(groups) == len(pdrs):
        return
    touched = dict.fromkeys(pid for pid in draft.touched[RuleType.PDR] if pid in pdrs)
    order = [pid for pid in sorted(pdrs) if pid not in touched] + list(touched)
    seen: dict[tuple[Any, ...], int] = {}
    for pdr_id in order:
        key = pdrs[pdr_id].match_key()
        if key in seen:
            raise _rule_failure(RuleType.PDR, pdr_id)
        seen[key] = pdr_id


def _allocate(draft: _Draft, allocate_teid: TeidAllocator, release_teid: TeidRelease) -> tuple[int, ...]:
    """Replace CH placeholders still in use with real TEIDs (allocation is the last step)."""
    pdrs: dict[int, Pdr] = draft.rules[RuleType.PDR]
    in_use = {p.local_f_teid.teid for p in pdrs.values() if p.local_f_teid is not None and p.local_f_teid.teid < 0}
    real: dict[int, int] = {}
    try:
        for placeholder, chid in draft.placeholders.items():
            if placeholder in in_use:
                real[placeholder] = allocate_teid(chid)
    except ResourcesExhausted:
        if release_teid is not None:
            for teid in real.values():
                release_teid(teid)
        raise _Reject(Rejection(Cause.NO_RESOURCES_AVAILABLE)) from None
    for pdr_id, pdr in pdrs.items():
        local = pdr.local_f_teid
        if local is not None and local.teid < 0:
            pdrs[pdr_id] = pdr.with_local_f_teid(local.with_teid(real[local.teid]))
    return tuple(real.values())


def _finish(
    draft: _Draft,
    allocate_teid: TeidAllocator,
    release_teid: TeidRelease,
    query_urr: tuple[pfcp.QueryURR, ...] = (),
) -> Plan:
    _check_references(draft)
    for far_id in draft.touched[RuleType.FAR]:  # created or changed FARs are usable as they stand
        if not draft.rules[RuleType.FAR][far_id].usable():
            raise _rule_failure(RuleType.FAR, far_id)
    _check_conflicts(draft)
    for query in query_urr:  # §7.5.4.10: Query URR names provisioned URRs
        if query.urr_id.value not in draft.rules[RuleType.URR]:
            raise _rule_failure(RuleType.URR, query.urr_id.value)
    new_teids = _allocate(draft, allocate_teid, release_teid) if draft.placeholders else ()
    tables = draft.rules
    pdrs: dict[int, Pdr] = tables[RuleType.PDR]
    created: tuple[pfcp.CreatedPDR, ...] = ()
    if draft.ch_created:
        created = tuple(
            pfcp.CreatedPDR(pdr_id=pfcp.PDRID(pdr_id), local_f_teid=fteid.to_ie())
            for pdr_id in draft.ch_created
            if pdr_id in pdrs and (fteid := pdrs[pdr_id].local_f_teid) is not None and fteid.allocated
        )
    state = SessionState(
        draft.cp_f_seid,
        draft.up_seid,
        rule_table(pdrs),  # the session's own: compact (see rule_values.RuleTable)
        rule_table(tables[RuleType.FAR]),
        _shared_table(tables[RuleType.QER]),
        _shared_table(tables[RuleType.URR]),
        _shared_table(tables[RuleType.BAR]),
    )
    return Plan(state, created, new_teids, tuple(draft.end_markers) if draft.end_markers else ())


def plan_establishment(
    req: pfcp.SessionEstablishmentRequest,
    up_seid: int,
    allocate_teid: TeidAllocator,
    *,
    local_addresses: LocalAddresses = _no_addresses,
    release_teid: TeidRelease = None,
) -> Plan | Rejection:
    """Validate a PFCP Session Establishment Request (§7.5.2) and plan the new session.

    ``allocate_teid`` is called once per distinct CHID (and once per CH PDR
    without one) after everything else has been validated; ``local_addresses``
    gives the UP function's GTP-U addresses for a CH PDI; ``release_teid`` takes
    back what ``allocate_teid`` gave if it ran out half-way.
    """
    draft = _Draft(rules.FSeid.from_ie(req.cp_f_seid), up_seid, None, local_addresses)
    try:
        _apply_creates(draft, req)
        return _finish(draft, allocate_teid, release_teid)
    except _Reject as reject:
        return reject.rejection


def plan_modification(
    state: SessionState,
    req: pfcp.SessionModificationRequest,
    allocate_teid: TeidAllocator,
    *,
    local_addresses: LocalAddresses = _no_addresses,
    release_teid: TeidRelease = None,
) -> Plan | Rejection:
    """Validate a PFCP Session Modification Request (§7.5.4) against ``state`` and
    plan the new state: removals, then creations, then updates (Table 7.5.4.1-1).

    ``state`` is never modified; arguments as for :func:`plan_establishment`.
    TEIDs the UP function allocated and the new state no longer uses are
    ``state.allocated_teids() - plan.state.allocated_teids()``.
    """
    draft = _Draft(state.cp_f_seid, state.up_seid, state, local_addresses)
    if req.cp_f_seid is not None:  # Table 7.5.4.1-1: the CP function moved its F-SEID
        draft.cp_f_seid = rules.FSeid.from_ie(req.cp_f_seid)
    try:
        draft.remove(RuleType.PDR, (ie.pdr_id.value for ie in req.remove_pdr))
        draft.remove(RuleType.FAR, (ie.far_id.value for ie in req.remove_far))
        draft.remove(RuleType.URR, (ie.urr_id.value for ie in req.remove_urr))
        draft.remove(RuleType.QER, (ie.qer_id.value for ie in req.remove_qer))
        if req.remove_bar is not None:
            draft.remove(RuleType.BAR, (req.remove_bar.bar_id.value,))
        # CHIDs already in use in the session keep naming the same F-TEID (§8.2.3).
        for pdr in draft.rules[RuleType.PDR].values():
            fteid = pdr.local_f_teid
            if fteid is not None and fteid.allocated and fteid.choose_id is not None:
                draft.chid_teids.setdefault(fteid.choose_id, fteid)
        _apply_creates(draft, req)
        _apply_updates(draft, req)
        return _finish(draft, allocate_teid, release_teid, req.query_urr)
    except _Reject as reject:
        return reject.rejection

"""UPF selection for a new PDU session (or for moving one elsewhere).

Pure: the service builds one :class:`UpfCandidate` per UPF from the database
and its live counters, then calls :func:`select_upf`. The rules, in order:

1. the UPF serves the DNN (one of its Network Instances) and the S-NSSAI
   (a UPF listing no slice serves every slice);
2. its site can serve the UE's location: an edge site whose TAIs contain the
   UE's TAI, or a cloud site; an edge site not serving the TAI is never chosen;
3. it is available: not excluded by the caller, admin state ``enabled``
   (a drained UPF takes no new session), healthy, ``load < capacity``, and
   its site has an IP pool for the DNN;
4. edge sites serving the TAI come before cloud sites; within a tier the lowest
   ``load / capacity`` wins, then the lowest ``node_id`` (deterministic).

When nothing is left, :class:`NoUpfAvailable` says which rule removed the last
candidates and why each one was removed, in words an operator can act on.

DNN names compare case-insensitively (TS 23.003 §9.1: APN/DNN labels are not
case-sensitive); S-NSSAIs "SST" and "SST-SD" compare by value, with SD FFFFFF
meaning "no SD" (TS 23.003 §28.4.2); TAIs compare case-insensitively (hex TAC).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["NoUpfAvailable", "UpfCandidate", "rank_upfs", "select_upf"]

_SITE_KINDS = ("edge", "cloud")
_ADMIN_STATES = ("enabled", "drained")


@dataclass(frozen=True, slots=True)
class UpfCandidate:
    """What selection needs to know about one UPF, its site and its current load."""

    id: int
    node_id: str
    site: str
    site_kind: str  # "edge" | "cloud"
    site_tais: frozenset[str]
    dnns: frozenset[str]
    snssais: frozenset[str]  # empty: any slice
    admin_state: str  # "enabled" | "drained"
    healthy: bool
    capacity: int  # max sessions
    load: int  # current sessions
    site_pools: frozenset[str]  # DNNs with an IP pool at the UPF's site

    def __post_init__(self) -> None:
        if self.site_kind not in _SITE_KINDS:
            raise ValueError(f"UPF {self.node_id}: site_kind must be 'edge' or 'cloud', not {self.site_kind!r}")
        if self.admin_state not in _ADMIN_STATES:
            raise ValueError(
                f"UPF {self.node_id}: admin_state must be 'enabled' or 'drained', not {self.admin_state!r}"
            )
        if self.capacity < 0 or self.load < 0:
            raise ValueError(f"UPF {self.node_id}: capacity and load must be >= 0 ({self.load}/{self.capacity})")


class NoUpfAvailable(Exception):
    """No UPF can take the session; ``reason`` tells an operator why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def select_upf(
    candidates: Iterable[UpfCandidate],
    *,
    dnn: str,
    snssai: str,
    tai: str,
    exclude: Collection[str] = frozenset(),
) -> UpfCandidate:
    """The UPF for a session on ``dnn``/``snssai`` from location ``tai``; raises :class:`NoUpfAvailable`.

    ``exclude`` holds node IDs not to choose (the UPF a session is moving away from).
    """
    ranked, why = _rank(candidates, dnn=dnn, snssai=snssai, tai=tai, exclude=exclude)
    if not ranked:
        raise NoUpfAvailable(why)
    return ranked[0]


def rank_upfs(
    candidates: Iterable[UpfCandidate],
    *,
    dnn: str,
    snssai: str,
    tai: str,
    exclude: Collection[str] = frozenset(),
) -> list[UpfCandidate]:
    """Every available UPF in order of preference (``select_upf`` returns the first); empty if none."""
    return _rank(candidates, dnn=dnn, snssai=snssai, tai=tai, exclude=exclude)[0]


def _rank(
    candidates: Iterable[UpfCandidate],
    *,
    dnn: str,
    snssai: str,
    tai: str,
    exclude: Collection[str],
) -> tuple[list[UpfCandidate], str]:
    """Ranked available UPFs, and the reason there are none when the list is empty."""
    want_dnn = dnn.strip().lower()
    want_slice = _snssai_key(snssai)
    want_tai = tai.strip().lower()
    excluded = frozenset(exclude)
    pool = list(candidates)
    what = f"DNN {dnn!r} for slice {snssai}"

    serving_dnn = [c for c in pool if want_dnn in _lowered(c.dnns)]
    serving = [c for c in serving_dnn if not c.snssais or want_slice in _slice_keys(c.snssais)]
    if not serving:
        if not pool:
            return [], f"no UPF serves {what}: no UPF is configured"
        if serving_dnn:
            return [], f"no UPF serves {what} (DNN served only on other slices by {_names(serving_dnn)})"
        return [], f"no UPF serves {what}"

    def tier(c: UpfCandidate) -> int | None:
        if c.site_kind == "cloud":
            return 1
        return 0 if want_tai in _lowered(c.site_tais) else None

    located = [c for c in serving if tier(c) is not None]
    elsewhere = sorted({repr(c.site) for c in serving if tier(c) is None})
    if not located:
        return [], (
            f"no site with a UPF serving {what} covers TAI {tai} "
            f"(edge sites {', '.join(elsewhere)} serve other TAIs, and no cloud site serves the DNN)"
        )

    rejected: list[str] = []
    available: list[UpfCandidate] = []
    for c in located:
        problem = _unavailable(c, want_dnn, excluded)
        if problem is None:
            available.append(c)
        else:
            rejected.append(f"{c.node_id}: {problem}")
    if not available:
        rejected.sort()
        also = f"; edge sites {', '.join(elsewhere)} do not serve the TAI" if elsewhere else ""
        return [], (
            f"every UPF serving {what} at TAI {tai} is excluded, drained, down, full "
            f"or without an IP pool ({', '.join(rejected)}){also}"
        )

    # load/capacity as float: correctly rounded division gives equal ratios equal floats.
    available.sort(key=lambda c: (tier(c), c.load / c.capacity, c.node_id))
    return available, ""


def _unavailable(c: UpfCandidate, dnn: str, excluded: frozenset[str]) -> str | None:
    if c.node_id in excluded:
        return "excluded"
    if c.admin_state != "enabled":
        return c.admin_state
    if not c.healthy:
        return "down"
    if c.load >= c.capacity:
        return f"full ({c.load}/{c.capacity})"
    if dnn not in _lowered(c.site_pools):
        return f"no IP pool for the DNN at site {c.site!r}"
    return None


# Every request compares against every UPF's few names: normalized once per distinct set.
@lru_cache(maxsize=1024)
def _lowered(names: frozenset[str]) -> frozenset[str]:
    return frozenset(n.strip().lower() for n in names)


@lru_cache(maxsize=1024)
def _slice_keys(snssais: frozenset[str]) -> frozenset[tuple[int, str] | str]:
    return frozenset(_snssai_key(s) for s in snssais)


def _snssai_key(snssai: str) -> tuple[int, str] | str:
    """Comparable S-NSSAI: (SST, SD) with SD "" for none; the raw text if it does not parse."""
    text = snssai.strip().lower()
    sst, _, sd = text.partition("-")
    try:
        sst_value = int(sst)
        if sd:
            int(sd, 16)
    except ValueError:
        return text
    if sd and int(sd, 16) == 0xFFFFFF:
        sd = ""  # TS 23.003 §28.4.2: SD FFFFFF means no SD
    return (sst_value, sd.zfill(6) if sd else "")


def _names(cs: Iterable[UpfCandidate]) -> str:
    return ", ".join(sorted(c.node_id for c in cs))

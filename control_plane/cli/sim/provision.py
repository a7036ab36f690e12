"""Everything ``sim up`` asks of the control plane, through its API only (as an operator would).

* :func:`write_manifests` + :func:`apply_manifests`: the plan's site manifests are written as
  YAML files and applied exactly as ``edgecups apply -f DIR`` applies them (loaded and checked
  as a set by :func:`edge_sites.load_manifests`, sent in kind order in one Apply).
* :func:`wait_associated`: until the control plane has associated with every UPF (PFCP) and
  sees it healthy (StatusService).
* :func:`establish_sessions`: a PDU session per UE and DNN (SessionService.Create), each with
  the gNB's downlink F-TEID, at the TAI of the UE's gNB; :func:`attach_sessions` then gives each
  session's tunnel pair to the UE's gNB (its uplink TEID is the UPF's N3 F-TEID from the answer).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Final

import yaml

from control_plane.api.client import ApiClient, Unreachable
from control_plane.errors import Unavailable
from control_plane.provisioning.objects import Change, Resource
from control_plane.provisioning.status import StatusView
from control_plane.services.views import SessionRequest, SessionView
from edge_sites import load_manifests, order
from edge_sites.sim.gnb_config import UeTunnel
from edge_sites.sim.gnb_control import GnbClient

from .plan import SimPlan, UePlan
from .state import SimSession

__all__ = [
    "NOT_SERVING_YET",
    "ProvisionError",
    "apply_manifests",
    "attach_sessions",
    "establish_one",
    "establish_sessions",
    "session_record",
    "tunnel_of",
    "wait_api",
    "wait_associated",
    "write_manifests",
]

#: Session establishments in flight at once (the control plane batches its database work).
_IN_FLIGHT = 16


class ProvisionError(RuntimeError):
    """The control plane did not get where ``up`` needs it; the message says what is missing."""


#: What a control plane that is still starting answers: nothing (Unreachable), or UNAVAILABLE
#: when its socket appeared between the failed call and the client's look at the channel (the
#: client then takes it for the server's own answer).
NOT_SERVING_YET: Final = (Unreachable, Unavailable)


async def wait_api(api: ApiClient, deadline: float, still_running: Callable[[], bool]) -> None:
    """Until the API answers (the control plane has started), or it died, or time ran out."""
    while True:
        try:
            await api.status.status()
            return
        except NOT_SERVING_YET:
            if not still_running():
                raise ProvisionError("the control plane exited before its API answered") from None
            if time.monotonic() > deadline:
                raise ProvisionError("the control plane's API did not answer in time") from None
        await asyncio.sleep(0.1)


def write_manifests(plan: SimPlan, directory: Path) -> Path:
    directory.mkdir(exist_ok=True)
    for name, documents in plan.manifests().items():
        header = "# Written by `edgecups sim up` for this simulation; `edgecups apply -f` takes it back.\n"
        (directory / name).write_text(header + yaml.safe_dump_all(documents, sort_keys=False))
    return directory


async def apply_manifests(api: ApiClient, directory: Path) -> list[Change]:
    manifests = order(load_manifests([directory]))
    return await api.provisioning.apply([Resource(m.kind, m.name, m.spec) for m in manifests])


async def wait_associated(
    api: ApiClient, node_ids: set[str], deadline: float, dead: Callable[[], list[str]]
) -> StatusView:
    """Until every UPF of ``node_ids`` is associated and healthy; ``dead()`` names agents that exited."""
    while True:
        status = await api.status.status()
        ready = {u.node_id for u in status.upfs if u.association == "associated" and u.health == "up"}
        if node_ids <= ready:
            return status
        gone = dead()
        if gone:
            raise ProvisionError(f"UPF agent(s) exited: {', '.join(gone)}")
        if time.monotonic() > deadline:
            missing = [f"{u.node_id} ({u.association}, {u.health})" for u in status.upfs if u.node_id not in ready]
            raise ProvisionError(f"not associated in time: {', '.join(missing) or ', '.join(sorted(node_ids))}")
        await asyncio.sleep(0.1)


async def _qfi(api: ApiClient, policy: str | None, cache: dict[str, int]) -> int:
    # The QFI the UPF's uplink PDR expects in the PDU Session Container is the session policy's.
    if policy is None:
        raise ProvisionError("a session came back without a policy: its QFI is unknown")
    if policy not in cache:
        cache[policy] = int((await api.provisioning.get("Policy", policy)).spec["qfi"])
    return cache[policy]


async def establish_one(api: ApiClient, plan: SimPlan, ue: UePlan, dnn: str, psi: int) -> SessionView:
    site = plan.site(ue.site)
    request = SessionRequest(
        supi=ue.supi,
        dnn=dnn,
        snssai=plan.topology.snssai,
        tai=site.site.tai,
        pdu_session_id=psi,
        gnb_teid=ue.gnb_teid(psi),
        gnb_address=str(site.n3_gnb.ip),
    )
    view = await api.sessions.establish(request)
    if view.state != "active" or view.ue_ipv4 is None or view.n3_teid is None or view.n3_address is None:
        raise ProvisionError(f"{ue.supi}/{dnn}: session is {view.state} (cause {view.last_cause}), not active")
    return view


async def establish_sessions(
    api: ApiClient, plan: SimPlan, progress: Callable[[int, int], None] | None = None
) -> list[SimSession]:
    """A session for every UE and DNN of the plan; raises on the first that is not active."""
    wanted = [(ue, dnn, psi) for ue in plan.ues() for dnn, psi in ue.sessions]
    limit = asyncio.Semaphore(_IN_FLIGHT)
    done = 0
    qfis: dict[str, int] = {}

    async def one(ue: UePlan, dnn: str, psi: int) -> SimSession:
        nonlocal done
        async with limit:
            view = await establish_one(api, plan, ue, dnn, psi)
            qfi = await _qfi(api, view.policy, qfis)
        done += 1
        if progress is not None:
            progress(done, len(wanted))
        return session_record(plan, ue, view, qfi)

    return list(await asyncio.gather(*(one(*w) for w in wanted)))


def session_record(plan: SimPlan, ue: UePlan, view: SessionView, qfi: int) -> SimSession:
    assert view.ue_ipv4 and view.n3_teid is not None and view.n3_address and view.gnb_teid is not None
    anchor = plan.site(view.site) if view.site is not None else None
    return SimSession(
        supi=ue.supi,
        ue_site=ue.site,
        dnn=view.dnn,
        pdu_session_id=view.pdu_session_id,
        site=view.site or "",
        upf=view.upf or "",
        ue_ip=view.ue_ipv4,
        qfi=qfi,
        gnb_teid=view.gnb_teid,
        gnb_address=view.gnb_address or "",
        n3_teid=view.n3_teid,
        n3_address=view.n3_address,
        server=str(anchor.server) if anchor is not None else "",
    )


def tunnel_of(session: SimSession) -> UeTunnel:
    """The gNB's view of a session: uplink to the UPF's N3 F-TEID, downlink on the gNB's own TEID."""
    return UeTunnel(
        ue_ip=IPv4Address(session.ue_ip),
        uplink_teid=session.n3_teid,
        upf_n3=IPv4Address(session.n3_address),
        downlink_teid=session.gnb_teid,
        qfi=session.qfi,
    )


def attach_sessions(sessions: list[SimSession], gnb_sockets: dict[str, Path]) -> None:
    """Attach each session's UE address and tunnel pair on the gNB of the UE's site."""
    clients: dict[str, GnbClient] = {}
    try:
        for session in sessions:
            if session.ue_site not in clients:
                clients[session.ue_site] = GnbClient(gnb_sockets[session.ue_site])
            clients[session.ue_site].attach(tunnel_of(session))
    finally:
        for client in clients.values():
            client.close()

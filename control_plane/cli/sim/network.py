"""Building the simulation's namespaces, and removing them (with proof) in a later invocation.

Building uses :class:`edge_sites.sim.netns.Topology` (links, addresses, routes, sysctls,
verified as it goes), then adds what its specs do not express: the control plane's N4 address
and the MQTT broker's on the cp namespace's loopback, and the UE-pool routes of the data
networks (10.0.0.0/8).

Removal does not replay the builder's registry: ``down`` may run after a crashed ``up`` whose
registry never reached the disk. Every veth end lives inside one of our namespaces, so removing
the namespaces removes every link (the kernel deletes a veth pair with either end's namespace).
What must go first is every process inside them, or a namespace would outlive its name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pyroute2 import IPRoute, netns  # type: ignore[import-untyped]

from edge_sites.sim.netns import Topology, list_namespaces, netns_path

from .plan import CP_N4, MQTT_ADDRESS, PREFIX, SimPlan
from .procs import kill_pids, netns_pids

__all__ = ["Sweep", "build_network", "holders", "our_namespaces", "sweep_namespaces"]


def build_network(plan: SimPlan, suffix: str) -> dict[str, str]:
    """Create every namespace, link, address and route; node name -> kernel namespace name.

    On failure the builder has already removed what it made (and the caller sweeps anyway).
    """
    topology = Topology(plan.network(), prefix=PREFIX, suffix=suffix)
    topology.__enter__()  # kept after we return: `sim down` removes it, maybe in another process
    names = {node: topology.ns(role) for node, role in plan.roles().items()}
    with IPRoute(netns=names["cp"], flags=0) as ipr:
        lo = ipr.link_lookup(ifname="lo")[0]
        for address in (CP_N4, MQTT_ADDRESS):
            ipr.addr("add", index=lo, address=str(address), prefixlen=32)
    for role, pool, via in plan.pool_routes():
        with IPRoute(netns=topology.ns(role), flags=0) as ipr:
            ipr.route("add", dst=str(pool), gateway=str(via))
    return names


def our_namespaces(suffix: str) -> set[str]:
    """The namespaces of the simulation with this suffix that exist now."""
    return {name for name in list_namespaces() if name.startswith(f"{PREFIX}-") and name.endswith(f"-{suffix}")}


@dataclass(frozen=True, slots=True)
class Sweep:
    removed: list[str]
    #: Processes found inside our namespaces that no record named (killed).
    strays: list[int]
    #: Namespaces still listed afterwards, and processes still inside them or holding them.
    left_namespaces: list[str]
    left_pids: list[int]


def sweep_namespaces(names: set[str]) -> Sweep:
    """Kill every process inside ``names``, remove them, and check that nothing holds them any more."""
    strays: set[int] = set()
    for name in sorted(names):
        strays |= netns_pids(name)
    kill_pids(strays)
    inodes: set[int] = set()
    removed = []
    for name in sorted(names):
        if name in list_namespaces():
            inodes.add(os.stat(netns_path(name)).st_ino)
            netns.remove(name)
            removed.append(name)
    left = sorted(names & list_namespaces())
    return Sweep(removed, sorted(strays), left, sorted(holders(inodes)))


def holders(inodes: set[int]) -> set[int]:
    """Processes still inside, or holding a descriptor of, one of these namespaces (by nsfs
    inode): a namespace without its name lives on, with its links, as long as one does."""
    if not inodes:
        return set()
    found: set[int] = set()
    wanted = {f"net:[{inode}]" for inode in inodes}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry.name}/ns/net") in wanted:
                found.add(int(entry.name))
                continue
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                if os.readlink(fd.path) in wanted:
                    found.add(int(entry.name))
                    break
        except OSError:  # gone meanwhile, or a kernel thread
            continue
    return found

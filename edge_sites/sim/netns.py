"""Network namespaces and veth pairs for the simulated topology and the tests, built declaratively on pyroute2.

Theory of operation
-------------------
* A topology is *described* by frozen dataclasses (:class:`TopologySpec` made of
  :class:`VethLink`, :class:`Endpoint`, :class:`Route`, :class:`Sysctl`) and *built* by the
  :class:`Topology` context manager. Specs use logical namespace roles ("gnb", "upf", "dn");
  each ``Topology`` maps them to unique kernel names ``<prefix>-<role>-<suffix>`` (for example
  ``ec-gnb-3f2a``), with one random suffix per topology, so parallel runs, two topologies in one
  process and leftovers from a crashed run never collide. The prefix must start with the
  project's :data:`DEFAULT_PREFIX`, so every namespace we make is recognisably ours.
* Containment: every address and route must lie inside the RFC 2544 benchmark range
  198.18.0.0/15, and default routes are rejected when the spec is built. No namespace gets a
  path to the host's network, so nothing sent inside can leave the namespaces. Processes that
  configure a namespace themselves (the gNB simulator) first check with
  :func:`require_project_netns` that they do run inside one of ours, never in the host's.
* ``Topology.__enter__`` registers every object as soon as the kernel has created it;
  ``__exit__`` (also on a failed build, also when the body raised) closes the sockets it handed
  out, then undoes the registry in reverse order -- routes, veths, namespaces -- and verifies
  each is gone (the veth is absent on both sides, the namespace is no longer listed). Anything
  left is reported in one :class:`TeardownError`. Sysctls are per namespace and die with it.
* Entering a namespace from the calling process is done in a short-lived *helper thread* that
  calls ``setns(2)`` on itself (:func:`run_in_netns`). The network namespace is a per-thread
  attribute in Linux, so the caller's own threads never move, and a failure to switch
  back is impossible because the thread just ends. The alternatives were rejected:
  pyroute2's ``pushns``/``popns`` switch the calling (main) thread and keep a process-global
  stack, so an exception between them leaves the whole process in the wrong namespace;
  pyroute2's ``create_socket`` forks a child per socket from a multi-threaded process (pyroute2's
  ``IPRoute(netns=...)`` does that internally for its netlink socket; it is only used for setup).
* A socket belongs for life to the namespace it was *created* in (bind, connect, send and
  receive all resolve there), so :func:`netns_socket` creates it in a helper thread and returns
  it to the caller, which uses it from any thread. Likewise a ``/proc/sys/net`` file resolves
  against the namespace of the thread that opens it, which is how sysctls are set.
* Code that must own a whole process inside a namespace (an agent, the gNB simulator, a
  snippet) runs with ``ip netns exec NS ...`` (:func:`run_python_in_netns`,
  :class:`edge_sites.sim.process.NetnsProcess`). Note that ``ip netns exec`` remounts ``/sys``
  (so bpffs is not mounted there).
* The pytest glue (``needs_netns``, fixtures, the UPF test topology) lives in
  ``tests/harness/netns.py``, which re-exports this module.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any, Final, Literal, TypeVar

from pyroute2 import IPRoute, netns  # type: ignore[import-untyped]

from .netspec import BENCHMARK_NET, IFNAMSIZ, Endpoint, Route, Sysctl, TopologySpec, VethLink

__all__ = [
    "BENCHMARK_NET",
    "CLONE_NEWNET",
    "DEFAULT_PREFIX",
    "DEFAULT_TIMEOUT",
    "IFNAMSIZ",
    "NETNS_RUN_DIR",
    "RUN_STARTED",
    "Created",
    "Endpoint",
    "NotContainedError",
    "Route",
    "Sysctl",
    "TeardownError",
    "Topology",
    "TopologySpec",
    "VethLink",
    "current_netns_name",
    "interfaces_in",
    "list_namespaces",
    "netns_path",
    "netns_socket",
    "netns_unavailable_reason",
    "read_sysctl",
    "remove_stale_namespaces",
    "require_project_netns",
    "run_in_netns",
    "run_python_in_netns",
]

T = TypeVar("T")

#: Where ``ip netns`` and pyroute2 keep the named namespaces (bind mounts of nsfs inodes).
NETNS_RUN_DIR: Final = "/run/netns"
#: Prefix of every namespace the project creates; :func:`remove_stale_namespaces` keys on it.
DEFAULT_PREFIX: Final = "ec"
#: ``CLONE_NEWNET`` from <sched.h>: the namespace type passed to setns(2).
CLONE_NEWNET: Final = 0x40000000
#: Time of import: namespaces older than this are leftovers of an earlier run.
RUN_STARTED: Final = time.time()
#: Default bound for work done in a helper thread or subprocess inside a namespace.
DEFAULT_TIMEOUT: Final = 10.0

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class TeardownError(RuntimeError):
    """Teardown left something behind: the message lists every object that is still there."""


class NotContainedError(RuntimeError):
    """The calling thread is not inside one of the project's named network namespaces."""


# --------------------------------------------------------------------------------------------
# Entering namespaces from the calling process
# --------------------------------------------------------------------------------------------


def netns_path(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"bad namespace name {name!r}")
    return f"{NETNS_RUN_DIR}/{name}"


def _setns_current_thread(target: str | int) -> None:
    """Move the calling thread (only) into a namespace given by name or by an open nsfs fd."""
    fd = os.open(netns_path(target), os.O_RDONLY | os.O_CLOEXEC) if isinstance(target, str) else target
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({target!r}): {os.strerror(err)}")
    finally:
        if isinstance(target, str):
            os.close(fd)


def run_in_netns(target: str | int, fn: Callable[[], T], timeout: float | None = DEFAULT_TIMEOUT) -> T:
    """Call ``fn()`` in a helper thread that has joined the namespace ``target`` (name or nsfs fd).

    The thread exits afterwards, so the caller's threads never change namespace. Threads that
    ``fn`` starts inherit the namespace. Raises whatever ``fn`` raised, or TimeoutError.
    """
    outcome: list[tuple[bool, object]] = []

    def body() -> None:
        try:
            _setns_current_thread(target)
            outcome.append((True, fn()))
        except BaseException as exc:  # handed back to the caller, re-raised there
            outcome.append((False, exc))

    thread = threading.Thread(target=body, name=f"netns:{target}", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise TimeoutError(f"call in namespace {target!r} did not finish within {timeout} s")
    ok, value = outcome[0]
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]  # fn() returned it, so it is a T


def netns_socket(
    target: str | int, family: int = socket.AF_INET, type: int = socket.SOCK_DGRAM, proto: int = 0
) -> socket.socket:
    """A socket created inside namespace ``target``; usable from any thread, it stays in that namespace."""
    return run_in_netns(target, lambda: socket.socket(family, type, proto))


def run_python_in_netns(
    name: str, code: str, timeout: float = DEFAULT_TIMEOUT, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` (this interpreter) as its own process inside namespace ``name``."""
    netns_path(name)  # validates the name before it reaches a command line
    return subprocess.run(
        ["ip", "netns", "exec", name, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def read_sysctl(name: str, key: str) -> str:
    """A net.* sysctl as seen inside namespace ``name``."""
    path = Sysctl(name, key, "").path

    def read() -> str:
        with open(path) as f:
            return f.read().strip()

    return run_in_netns(name, read)


def _write_sysctl(name: str, sysctl: Sysctl) -> None:
    def write() -> None:
        # /proc/sys/net resolves against the namespace of the thread that opens it.
        with open(sysctl.path, "w") as f:
            f.write(sysctl.value)

    run_in_netns(name, write)


# --------------------------------------------------------------------------------------------
# Listing and stale cleanup
# --------------------------------------------------------------------------------------------


def list_namespaces() -> set[str]:
    """Names of every named network namespace (``ip netns list``)."""
    return set(netns.listnetns())


def current_netns_name() -> str | None:
    """The name (in ``/run/netns``) of the calling thread's network namespace, or None when it
    has none, e.g. the host's own namespace. Compares nsfs inodes: a name is a bind mount of one."""
    here = os.stat("/proc/thread-self/ns/net")
    for name in sorted(list_namespaces()):
        try:
            there = os.stat(netns_path(name))
        except (FileNotFoundError, ValueError):
            continue
        if (there.st_dev, there.st_ino) == (here.st_dev, here.st_ino):
            return name
    return None


def require_project_netns(prefix: str = DEFAULT_PREFIX) -> str:
    """The name of the calling thread's namespace if it is one of ours (``<prefix>...``); raises
    :class:`NotContainedError` otherwise. Code that adds addresses, routes or rules calls this
    first, so a mistake (running it on the host) changes nothing outside the namespaces."""
    name = current_netns_name()
    if name is None or not name.startswith(prefix):
        where = "the host's (or an unnamed) network namespace" if name is None else f"namespace {name!r}"
        raise NotContainedError(
            f"refusing to configure {where}: run inside a '{prefix}*' namespace (ip netns exec {prefix}-...)"
        )
    return name


def _rtnl(name: str) -> Any:
    """An rtnetlink socket (pyroute2 ``IPRoute``) inside namespace ``name``.

    ``flags=0``: pyroute2's default (``O_CREAT``) would silently *create* a missing namespace,
    which a teardown running after someone removed it would then leak.
    """
    return IPRoute(netns=name, flags=0)


def interfaces_in(name: str | int) -> set[str]:
    """Interface names inside a namespace (given by name or by an open nsfs fd)."""

    def names() -> set[str]:
        return {ifname for _, ifname in socket.if_nameindex()}

    return run_in_netns(name, names)


def remove_stale_namespaces(prefix: str = DEFAULT_PREFIX, older_than: float = RUN_STARTED) -> list[str]:
    """Remove ``<prefix>-*`` namespaces created before ``older_than`` (default: this run's start).

    Never called implicitly: a namespace of a concurrent run is younger than our start and
    survives, but an older concurrent run would not, so call this only when you know no other
    harness run is active (e.g. ``EDGECUPS_NETNS_CLEAN_STALE=1`` with the pytest plugin).
    The age is the nsfs inode's mtime, set when the kernel instantiates that inode; if it was
    re-instantiated later the namespace only looks younger, so the error is on the safe side.
    """
    removed = []
    for name in sorted(list_namespaces()):
        if not name.startswith(prefix + "-"):
            continue
        try:
            created = os.stat(netns_path(name)).st_mtime
        except FileNotFoundError:
            continue
        if created < older_than:
            netns.remove(name)
            removed.append(name)
    return removed


# --------------------------------------------------------------------------------------------
# The builder
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Created:
    """One object the topology created, in creation order (teardown walks these backwards)."""

    kind: Literal["netns", "link", "route", "sysctl"]
    ns: str
    name: str
    peer_ns: str = ""
    peer_name: str = ""


@dataclass(slots=True)
class Topology:
    """Builds a :class:`TopologySpec` on enter and removes everything on exit (verified)."""

    spec: TopologySpec
    prefix: str = DEFAULT_PREFIX
    suffix: str = field(default_factory=lambda: secrets.token_hex(2))
    created: list[Created] = field(default_factory=list)
    _sockets: list[socket.socket] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Only names that are recognisably ours: stale cleanup and require_project_netns key on it.
        if not self.prefix.startswith(DEFAULT_PREFIX) or not self.prefix.isalnum() or not self.prefix.isascii():
            raise ValueError(
                f"namespace prefix {self.prefix!r} must be ASCII alphanumeric starting with {DEFAULT_PREFIX!r}"
            )

    @property
    def names(self) -> Mapping[str, str]:
        """Role -> kernel namespace name, e.g. ``{"gnb": "ec-gnb-3f2a", ...}``."""
        return {role: f"{self.prefix}-{role}-{self.suffix}" for role in self.spec.namespaces}

    def ns(self, role: str) -> str:
        return self.names[role]

    # -- building ----------------------------------------------------------------------------

    def __enter__(self) -> Topology:
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.teardown()

    def _build(self) -> None:
        names = self.names
        existing = list_namespaces()
        for role in self.spec.namespaces:
            name = names[role]
            if name in existing:
                raise FileExistsError(f"namespace {name} already exists (suffix collision); not touching it")
            netns.create(name)
            self.created.append(Created("netns", name, name))
            with _rtnl(name) as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        for link in self.spec.links:
            a, b = link.a, link.b
            ns_a, ns_b = names[a.ns], names[b.ns]
            with _rtnl(ns_a) as ipr:
                # Created inside ns_a with the peer placed straight into ns_b: the names never
                # exist in the host namespace, even for an instant.
                ipr.link("add", ifname=a.ifname, kind="veth", peer={"ifname": b.ifname, "net_ns_fd": ns_b})
            self.created.append(Created("link", ns_a, a.ifname, ns_b, b.ifname))
            for end, ns in ((a, ns_a), (b, ns_b)):
                with _rtnl(ns) as ipr:
                    index = ipr.link_lookup(ifname=end.ifname)[0]
                    ipr.link("set", index=index, mtu=end.mtu)
                    if end.address is not None:
                        ipr.addr(
                            "add", index=index, address=str(end.address.ip), prefixlen=end.address.network.prefixlen
                        )
                    ipr.link("set", index=index, state="up")
        for sysctl in self.spec.sysctls:
            _write_sysctl(names[sysctl.ns], sysctl)
            self.created.append(Created("sysctl", names[sysctl.ns], sysctl.key))
        for route in self.spec.routes:
            with _rtnl(names[route.ns]) as ipr:
                ipr.route("add", dst=str(route.dst), gateway=str(route.gateway))
            self.created.append(Created("route", names[route.ns], str(route.dst)))

    # -- using -------------------------------------------------------------------------------

    def run(self, role: str, fn: Callable[[], T], timeout: float | None = DEFAULT_TIMEOUT) -> T:
        """``fn()`` in a helper thread inside the namespace of ``role``."""
        return run_in_netns(self.ns(role), fn, timeout)

    def run_python(self, role: str, code: str, timeout: float = DEFAULT_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """``python -c code`` as a process inside the namespace of ``role`` (raises on non-zero exit)."""
        return run_python_in_netns(self.ns(role), code, timeout)

    def open_socket(
        self, role: str, family: int = socket.AF_INET, type: int = socket.SOCK_DGRAM, proto: int = 0
    ) -> socket.socket:
        """A socket inside the namespace of ``role``; closed by teardown if still open."""
        sock = netns_socket(self.ns(role), family, type, proto)
        self._sockets.append(sock)
        return sock

    def udp_socket(self, role: str, bind: tuple[str, int] | None = None, timeout: float = 2.0) -> socket.socket:
        """A UDP socket inside the namespace of ``role``, optionally bound, with a receive timeout."""
        sock = self.open_socket(role)
        sock.settimeout(timeout)
        if bind is not None:
            sock.bind(bind)
        return sock

    # -- teardown ----------------------------------------------------------------------------

    def teardown(self) -> None:
        """Close handed-out sockets, undo ``created`` backwards, verify; idempotent."""
        for sock in self._sockets:
            sock.close()  # an open socket would keep its namespace (and veths) alive
        self._sockets.clear()
        leftovers: list[str] = []
        while self.created:
            item = self.created.pop()
            try:
                self._undo(item)
            except Exception as exc:  # keep going: every other object must still be removed
                leftovers.append(f"{item}: {exc!r}")
        if leftovers:
            raise TeardownError("teardown left objects behind:\n  " + "\n  ".join(leftovers))

    @staticmethod
    def _undo(item: Created) -> None:
        if item.kind == "sysctl":
            return  # per-namespace value: it disappears with the namespace
        if item.kind == "route":
            net = IPv4Network(item.name)
            with _rtnl(item.ns) as ipr:
                ipr.route("del", dst=item.name)
                left = [
                    r
                    for r in ipr.get_routes(family=socket.AF_INET)
                    if r.get("dst") == str(net.network_address) and r["dst_len"] == net.prefixlen
                ]
            if left:
                raise TeardownError(f"route {item.name} still present in {item.ns}")
            return
        if item.kind == "link":
            with _rtnl(item.ns) as ipr:
                ipr.link("del", index=ipr.link_lookup(ifname=item.name)[0])
            # Deleting one end of a veth deletes its peer: check both namespaces.
            for ns, ifname in ((item.ns, item.name), (item.peer_ns, item.peer_name)):
                if ifname in interfaces_in(ns):
                    raise TeardownError(f"interface {ifname} still present in {ns}")
            return
        if item.name in list_namespaces():  # already gone counts as removed
            netns.remove(item.name)
        if item.name in list_namespaces():
            raise TeardownError(f"namespace {item.name} still listed")


def netns_unavailable_reason() -> str | None:
    """Why namespaces cannot be built here (the exact thing that is missing), or None when they can."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "needs root to create network namespaces (run as root, as CI does)"
    if shutil.which("ip") is None:
        return "iproute2 'ip' command not found (needed for 'ip netns exec')"
    try:
        subprocess.run(["ip", "netns", "list"], capture_output=True, check=True, timeout=5)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"'ip netns' unavailable: {exc}"
    return None

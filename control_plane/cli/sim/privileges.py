"""What the simulation needs from the machine, and what to tell someone who lacks it.

It creates network namespaces (a bind mount under /run/netns), veth pairs, TUN devices,
routes, policy rules, raw ICMP sockets and eBPF programs: root, or a user namespace in which
the caller is root. The namespaces must outlive each ``edgecups sim`` command (``up``, then
``traffic``, then ``down``), and a user namespace dies with its last process, so an ordinary
user runs the whole job inside one ``unshare`` (the exact command is printed). eBPF is then
usually refused (unprivileged BPF is off on most kernels) and the agents forward in Python.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = ["USERNS_ENV", "in_user_namespace_command", "missing_privileges", "user_namespaces_allowed"]

#: Set in the environment of a command re-run inside a user namespace (so it never recurses).
USERNS_ENV = "EDGECUPS_SIM_USERNS"


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def user_namespaces_allowed() -> bool:
    """Whether this kernel lets an ordinary user create a user namespace (and ``unshare`` exists)."""
    if _read_int("/proc/sys/kernel/unprivileged_userns_clone") == 0:  # Debian's switch
        return False
    if _read_int("/proc/sys/user/max_user_namespaces") == 0:
        return False
    if _read_int("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == 1:  # Ubuntu 23.10+
        return False
    return shutil.which("unshare") is not None


def in_user_namespace_command(argv: list[str]) -> list[str]:
    """``argv`` run inside a new user namespace in which the caller is root, with its own network
    and mount namespaces and a private /run (where /run/netns and the state directory go; all of
    it vanishes when the command ends, so the command must be the whole job: ``sim run``)."""
    unshare = shutil.which("unshare") or "unshare"
    return [unshare, "--user", "--map-root-user", "--net", "--mount", "--fork",
            "sh", "-c", 'mount -t tmpfs none /run && exec "$@"', "sh", *argv]  # fmt: skip


def missing_privileges() -> list[str] | None:
    """None when this process can run the simulation; otherwise the lines that say what is needed."""
    if sys.platform != "linux":
        return ["edgecups sim needs Linux: it builds network namespaces."]
    if shutil.which("ip") is None:
        return ["edgecups sim needs the iproute2 'ip' command (Debian/Ubuntu: apt-get install iproute2)"]
    if os.geteuid() == 0:
        return None
    lines = [
        "edgecups sim needs root: it creates network namespaces, veth pairs, TUN devices, routes and raw sockets.",
        "Run it as root, e.g.: sudo $(command -v edgecups) sim up   (then sim traffic, sim down)",
    ]
    if user_namespaces_allowed():
        beside = Path(sys.executable).with_name("edgecups")  # the venv's script, if that is where we run
        fallback = shutil.which("edgecups") or f"{sys.executable} -m control_plane.cli.main"
        edgecups = str(beside) if beside.exists() else fallback
        lines += [
            "",
            "Without root: this kernel allows unprivileged user namespaces, in which you are root. A user",
            "namespace ends with its last process, so run the whole job inside one, with a private /run",
            "(the state directory and /run/netns live there and vanish with it):",
            "",
            "  unshare --user --map-root-user --net --mount --fork sh -c '"
            f"mount -t tmpfs none /run && {edgecups} sim up && {edgecups} sim traffic; "
            f"rc=$?; {edgecups} sim down; exit $rc'",
            "",
            "(eBPF is usually refused there: the UPF agents then forward in Python.)",
        ]
    else:
        lines += [
            "",
            "This kernel does not allow unprivileged user namespaces "
            "(kernel.unprivileged_userns_clone or user.max_user_namespaces is 0, or AppArmor restricts them),",
            "so root is the only way.",
        ]
    return lines

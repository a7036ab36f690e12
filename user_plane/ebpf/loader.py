"""ctypes bindings on Debian's ``libbpf.so.1`` for the fast path's object (upf.bpf.o).

Only what the fast path needs: open/load the object, map fds and element
operations (lookups with ``BPF_F_LOCK`` read a spin-locked value consistently;
:meth:`BpfObject.lookup_range` reads many array elements in one syscall), tc clsact
attach/detach by ifindex, and ``BPF_PROG_TEST_RUN`` for byte-exact tests.

Theory of operation:

* :class:`BpfObject` owns the libbpf object: program and map fds live as long as
  it does (nothing is pinned), so they close with the process. tc filters are
  *not* tied to the process (../shared/DATAPLANE.md pitfall 7): :class:`TcAttachment`
  detaches explicitly, and a namespace's removal takes them too.
* Every ifindex is resolved in the network namespace of the calling thread
  (pitfall 1): call :meth:`BpfObject.attach` from the thread that runs in the
  namespace owning the device (the agent process runs inside the UPF namespace).
* The map value layouts below mirror the structs in upf.bpf.c; a mismatch is
  caught at load time by comparing with the BTF value sizes libbpf reports.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from pathlib import Path
from typing import Any, Final, TypeVar

from .build import BUILD_HINT, OBJECT, SOURCE, stale

__all__ = [
    "BPF_F_LOCK",
    "DROPS",
    "STATS",
    "BpfError",
    "BpfObject",
    "DlRule",
    "Limits",
    "TcAttachment",
    "UlRule",
    "Usage",
    "libbpf",
]

BPF_ANY: Final = 0
BPF_F_LOCK: Final = 4
TC_INGRESS: Final = 1
#: tc direct-action verdicts (linux/pkt_cls.h).
TC_ACT_OK: Final = 0
TC_ACT_SHOT: Final = 2
TC_ACT_REDIRECT: Final = 7

#: enum stat in upf.bpf.c, in order.
STATS: Final = (
    "ul_fwd",
    "dl_fwd",
    "punt_budget",
    "punt_header",
    "punt_match",
    "punt_route",
    "punt_ttl",
    "punt_gso",
    "ul_drop_gate",
    "dl_drop_gate",
    "ul_drop_mbr",
    "dl_drop_mbr",
    "ul_drop_adjust",
    "dl_drop_adjust",
    "punt_other",
)
#: Drop reasons the program counts per direction (``ul_<reason>``, ``dl_<reason>``); :meth:`BpfObject.stats`
#: adds their sum under the reason alone.
DROPS: Final = ("drop_gate", "drop_mbr", "drop_adjust")

# ul_rule.flags / dl_rule.flags
F_QFI: Final = 0x01
F_SPOOF: Final = 0x02
F_GATE: Final = 0x04
F_MBR: Final = 0x08
F_PSC: Final = 0x10
F_RQI: Final = 0x20


class BpfError(OSError):
    """libbpf failed, or the fast path is unusable here (no object, no BPF)."""


class UlRule(ctypes.Structure):
    """struct ul_rule: teid_map's value."""

    _fields_ = [
        ("slot", ctypes.c_uint32),
        ("ue_ip", ctypes.c_uint32),  # network order, as read from the packet
        ("qfi", ctypes.c_uint8),
        ("flags", ctypes.c_uint8),
        ("pad", ctypes.c_uint16),
    ]


class DlRule(ctypes.Structure):
    """struct dl_rule: ue_map's value."""

    _fields_ = [
        ("slot", ctypes.c_uint32),
        ("teid", ctypes.c_uint32),
        ("gnb_ip", ctypes.c_uint32),  # network order
        ("n3_ip", ctypes.c_uint32),  # network order
        ("qfi", ctypes.c_uint8),
        ("flags", ctypes.c_uint8),
        ("pad", ctypes.c_uint16),
    ]


class Usage(ctypes.Structure):
    """struct usage: per-slot counters and token buckets (spin-locked)."""

    _fields_ = [
        ("lock", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
        ("ul_packets", ctypes.c_uint64),
        ("ul_bytes", ctypes.c_uint64),
        ("dl_packets", ctypes.c_uint64),
        ("dl_bytes", ctypes.c_uint64),
        ("ul_first_ns", ctypes.c_uint64),
        ("ul_last_ns", ctypes.c_uint64),
        ("dl_first_ns", ctypes.c_uint64),
        ("dl_last_ns", ctypes.c_uint64),
        ("ul_tokens", ctypes.c_uint64),
        ("ul_stamp_ns", ctypes.c_uint64),
        ("dl_tokens", ctypes.c_uint64),
        ("dl_stamp_ns", ctypes.c_uint64),
        ("ul_drops", ctypes.c_uint64),
        ("dl_drops", ctypes.c_uint64),
    ]


class Limits(ctypes.Structure):
    """struct limits: per-slot byte budget and MBR parameters (written by user space only)."""

    _fields_ = [
        ("ul_limit", ctypes.c_uint64),
        ("dl_limit", ctypes.c_uint64),
        ("tot_limit", ctypes.c_uint64),
        ("epoch_ns", ctypes.c_uint64),
        ("ul_rate", ctypes.c_uint64),
        ("dl_rate", ctypes.c_uint64),
        ("ul_depth", ctypes.c_uint64),
        ("dl_depth", ctypes.c_uint64),
        ("ul_fill_ns", ctypes.c_uint64),
        ("dl_fill_ns", ctypes.c_uint64),
    ]


class _TcHook(ctypes.Structure):  # struct bpf_tc_hook
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("ifindex", ctypes.c_int),
        ("attach_point", ctypes.c_int),
        ("parent", ctypes.c_uint32),
        ("_pad", ctypes.c_uint32),
    ]


class _TcOpts(ctypes.Structure):  # struct bpf_tc_opts
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("prog_fd", ctypes.c_int),
        ("flags", ctypes.c_uint32),
        ("prog_id", ctypes.c_uint32),
        ("handle", ctypes.c_uint32),
        ("priority", ctypes.c_uint32),
        ("_pad", ctypes.c_uint32),
    ]


class _TestRunOpts(ctypes.Structure):  # struct bpf_test_run_opts (libbpf 1.1)
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_lib: ctypes.CDLL | None = None
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
#: libbpf's messages (verifier log included) since the last open/load, for error reports.
_log: list[str] = []


def _print_impl(level: int, fmt: bytes, args: int) -> int:
    buf = ctypes.create_string_buffer(4096)
    _libc.vsnprintf(buf, len(buf), fmt, args)
    if len(_log) < 2000:
        _log.append(buf.value.decode(errors="replace"))
    return 0


_print = _PRINT_FN(_print_impl)  # kept referenced: libbpf calls it for the process's life


def libbpf() -> ctypes.CDLL:
    """``libbpf.so.1`` with the prototypes used here (loaded once)."""
    global _lib
    if _lib is not None:
        return _lib
    try:
        lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    except OSError as exc:
        raise BpfError(errno.ENOENT, f"libbpf.so.1 is not installed (package libbpf1): {exc}") from None
    vp, c_int, u32 = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32
    protos: dict[str, tuple[Any, list[Any]]] = {
        "bpf_object__open_file": (vp, [ctypes.c_char_p, vp]),
        "bpf_object__load": (c_int, [vp]),
        "bpf_object__close": (None, [vp]),
        "bpf_object__find_program_by_name": (vp, [vp, ctypes.c_char_p]),
        "bpf_object__find_map_by_name": (vp, [vp, ctypes.c_char_p]),
        "bpf_program__fd": (c_int, [vp]),
        "bpf_map__fd": (c_int, [vp]),
        "bpf_map__set_max_entries": (c_int, [vp, u32]),
        "bpf_map__value_size": (u32, [vp]),
        "bpf_map_update_elem": (c_int, [c_int, vp, vp, ctypes.c_uint64]),
        "bpf_map_lookup_elem": (c_int, [c_int, vp, vp]),
        "bpf_map_lookup_elem_flags": (c_int, [c_int, vp, vp, ctypes.c_uint64]),
        "bpf_map_delete_elem": (c_int, [c_int, vp]),
        "bpf_map_lookup_batch": (c_int, [c_int, vp, vp, vp, vp, vp, vp]),
        "bpf_tc_hook_create": (c_int, [vp]),
        "bpf_tc_hook_destroy": (c_int, [vp]),
        "bpf_tc_attach": (c_int, [vp, vp]),
        "bpf_tc_detach": (c_int, [vp, vp]),
        "bpf_prog_test_run_opts": (c_int, [c_int, vp]),
        "libbpf_num_possible_cpus": (c_int, []),
        "libbpf_set_print": (vp, [_PRINT_FN]),
    }
    for name, (restype, argtypes) in protos.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    lib.libbpf_set_print(_print)
    _lib = lib
    return lib


_V = TypeVar("_V", bound=ctypes.Structure)


class _BatchOpts(ctypes.Structure):
    """struct bpf_map_batch_opts (libbpf)."""

    _fields_ = [("sz", ctypes.c_size_t), ("elem_flags", ctypes.c_uint64), ("flags", ctypes.c_uint64)]


def _check(rc: int, what: str) -> int:
    """libbpf 1.x returns -errno (and sets errno)."""
    if rc < 0:
        raise BpfError(-rc, f"{what}: {os.strerror(-rc)}")
    return rc


class TcAttachment:
    """The program on one device's clsact ingress; :meth:`detach` removes our filter only
    (and the clsact qdisc when we created it)."""

    def __init__(self, ifindex: int, prog_fd: int, created_qdisc: bool) -> None:
        self.ifindex = ifindex
        self.prog_fd = prog_fd
        self.created_qdisc = created_qdisc
        self.attached = True

    def _hook(self) -> _TcHook:
        return _TcHook(sz=ctypes.sizeof(_TcHook), ifindex=self.ifindex, attach_point=TC_INGRESS)

    def detach(self) -> None:
        """Must run in the namespace of the device (pitfall 1). A vanished device is fine."""
        if not self.attached:
            return
        self.attached = False
        lib = libbpf()
        hook = self._hook()
        opts = _TcOpts(sz=ctypes.sizeof(_TcOpts), handle=1, priority=1)
        rc = lib.bpf_tc_detach(ctypes.byref(hook), ctypes.byref(opts))
        if rc < 0 and -rc not in (errno.ENOENT, errno.ENODEV, errno.EINVAL):
            raise BpfError(-rc, f"tc detach from ifindex {self.ifindex}: {os.strerror(-rc)}")
        if self.created_qdisc:
            lib.bpf_tc_hook_destroy(ctypes.byref(hook))


class BpfObject:
    """upf.bpf.o opened and loaded; ``max_sessions`` sizes the per-session maps."""

    def __init__(self, path: Path = OBJECT, *, max_sessions: int = 16384) -> None:
        if path == OBJECT:
            if not path.exists():
                raise BpfError(errno.ENOENT, f"{path} is missing: build it with {BUILD_HINT}")
            if SOURCE.exists() and stale():
                raise BpfError(errno.ESTALE, f"{path} is older than {SOURCE.name}: rebuild it with {BUILD_HINT}")
        lib = libbpf()
        _log.clear()
        obj = lib.bpf_object__open_file(str(path).encode(), None)
        if not obj:
            err = ctypes.get_errno() or errno.EINVAL
            raise BpfError(err, f"cannot open {path}: {os.strerror(err)}")
        self._obj: int | None = obj
        try:
            for name in ("teid_map", "ue_map", "usage", "limits"):
                _check(lib.bpf_map__set_max_entries(self._map(name), max_sessions), f"size map {name}")
            rc = lib.bpf_object__load(obj)
            if rc < 0:
                log = "\n".join(_log[-40:])
                raise BpfError(-rc, f"cannot load {path.name}: {os.strerror(-rc)}\n{log}")
            prog = lib.bpf_object__find_program_by_name(obj, b"upf_ingress")
            if not prog:
                raise BpfError(errno.ENOENT, f"{path.name} has no program upf_ingress")
            self.prog_fd: int = lib.bpf_program__fd(prog)
            self.fds: dict[str, int] = {}
            expected = {"teid_map": UlRule, "ue_map": DlRule, "usage": Usage, "limits": Limits}
            for name in ("teid_map", "ue_map", "usage", "limits", "n3_addrs", "devices", "stats"):
                m = self._map(name)
                self.fds[name] = _check(lib.bpf_map__fd(m), f"fd of map {name}")
                if name in expected and lib.bpf_map__value_size(m) != ctypes.sizeof(expected[name]):
                    raise BpfError(errno.EINVAL, f"map {name}: value layout differs from loader.{expected[name]}")
        except BaseException:
            self.close()
            raise
        self.max_sessions = max_sessions
        self.ncpus: int = max(1, lib.libbpf_num_possible_cpus())

    def _map(self, name: str) -> int:
        m: int | None = libbpf().bpf_object__find_map_by_name(self._obj, name.encode())
        if not m:
            raise BpfError(errno.ENOENT, f"no map {name} in the object")
        return m

    def close(self) -> None:
        """Close the object: program and maps go once nothing else holds them (an attached
        filter keeps the program; detach first)."""
        obj, self._obj = self._obj, None
        if obj:
            libbpf().bpf_object__close(obj)

    # -- elements --------------------------------------------------------------------------

    def update(self, name: str, key: ctypes._CData, value: ctypes._CData, flags: int = BPF_ANY) -> None:
        rc = libbpf().bpf_map_update_elem(self.fds[name], ctypes.byref(key), ctypes.byref(value), flags)
        _check(rc, f"update map {name}")

    def lookup(self, name: str, key: ctypes._CData, value: ctypes._CData, flags: int = 0) -> bool:
        """Fill ``value``; False when the key is absent."""
        rc = libbpf().bpf_map_lookup_elem_flags(self.fds[name], ctypes.byref(key), ctypes.byref(value), flags)
        if rc == -errno.ENOENT:
            return False
        _check(rc, f"lookup map {name}")
        return True

    def lookup_range(self, name: str, value_type: type[_V], count: int, flags: int = 0) -> ctypes.Array[_V]:
        """Elements 0..count-1 of array map ``name``, in one BPF_MAP_LOOKUP_BATCH (``flags`` per
        element: BPF_F_LOCK reads each spin-locked value consistently, as :meth:`lookup` does)."""
        values = (value_type * count)()
        if count == 0:
            return values
        keys = (ctypes.c_uint32 * count)()
        out_batch = ctypes.c_uint32()
        filled = ctypes.c_uint32(count)
        opts = _BatchOpts(ctypes.sizeof(_BatchOpts), flags, 0)
        rc = libbpf().bpf_map_lookup_batch(
            self.fds[name], None, ctypes.byref(out_batch), keys, values, ctypes.byref(filled), ctypes.byref(opts)
        )
        # ENOENT: the map ended before ``count`` (an array map has max_entries elements).
        if rc < 0 and rc != -errno.ENOENT:
            _check(rc, f"batch lookup in map {name}")
        if filled.value != count:
            raise BpfError(errno.ERANGE, f"map {name}: {filled.value} of {count} elements read")
        return values

    def delete(self, name: str, key: ctypes._CData) -> bool:
        """False when the key was absent."""
        rc = libbpf().bpf_map_delete_elem(self.fds[name], ctypes.byref(key))
        if rc == -errno.ENOENT:
            return False
        _check(rc, f"delete from map {name}")
        return True

    def stats(self) -> dict[str, int]:
        """The per-CPU reason counters summed over CPUs, and each drop reason of both directions."""
        out: dict[str, int] = {}
        values = (ctypes.c_uint64 * self.ncpus)()
        for index, name in enumerate(STATS):
            key = ctypes.c_uint32(index)
            if self.lookup("stats", key, values):
                out[name] = sum(values)
        for reason in DROPS:
            out[reason] = out.get(f"ul_{reason}", 0) + out.get(f"dl_{reason}", 0)
        return out

    # -- tc and test runs ----------------------------------------------------------------------

    def attach(self, ifindex: int) -> TcAttachment:
        """The program on ``ifindex``'s clsact ingress (handle 1, priority 1, replacing ours)."""
        lib = libbpf()
        hook = _TcHook(sz=ctypes.sizeof(_TcHook), ifindex=ifindex, attach_point=TC_INGRESS)
        rc = lib.bpf_tc_hook_create(ctypes.byref(hook))
        if rc < 0 and -rc != errno.EEXIST:
            _check(rc, f"clsact on ifindex {ifindex}")
        opts = _TcOpts(sz=ctypes.sizeof(_TcOpts), prog_fd=self.prog_fd, flags=1, handle=1, priority=1)
        rc2 = lib.bpf_tc_attach(ctypes.byref(hook), ctypes.byref(opts))
        if rc2 < 0:
            if rc == 0:
                lib.bpf_tc_hook_destroy(ctypes.byref(hook))
            _check(rc2, f"tc attach to ifindex {ifindex}")
        return TcAttachment(ifindex, self.prog_fd, created_qdisc=rc == 0)

    def test_run(self, packet: bytes, ingress_ifindex: int = 0) -> tuple[int, bytes]:
        """Run the program once on ``packet`` (an Ethernet frame): (verdict, packet after).

        ``ingress_ifindex`` sets ``__sk_buff.ifindex`` (the device the frame is as if
        received on; the kernel resolves it in the calling thread's namespace)."""
        data_in = ctypes.create_string_buffer(packet, len(packet))
        data_out = ctypes.create_string_buffer(len(packet) + 256)
        ctx = (ctypes.c_uint8 * 192)()  # struct __sk_buff: ingress_ifindex at 36, ifindex at 40
        ctypes.c_uint32.from_buffer(ctx, 36).value = ingress_ifindex
        ctypes.c_uint32.from_buffer(ctx, 40).value = ingress_ifindex
        opts = _TestRunOpts(
            sz=ctypes.sizeof(_TestRunOpts),
            data_in=ctypes.addressof(data_in),
            data_out=ctypes.addressof(data_out),
            data_size_in=len(packet),
            data_size_out=len(data_out),
            ctx_in=ctypes.addressof(ctx) if ingress_ifindex else None,
            ctx_size_in=ctypes.sizeof(ctx) if ingress_ifindex else 0,
            repeat=1,
        )
        _check(libbpf().bpf_prog_test_run_opts(self.prog_fd, ctypes.byref(opts)), "BPF_PROG_TEST_RUN")
        return int(opts.retval), data_out.raw[: opts.data_size_out]

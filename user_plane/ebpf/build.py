"""Build the eBPF fast path's object file next to its source.

Run from the repository root::

    .venv/bin/python user_plane/ebpf/build.py          # build upf.bpf.o if missing or older than upf.bpf.c
    .venv/bin/python user_plane/ebpf/build.py --clean  # remove it

Needs ``clang`` (the BPF target) and ``libbpf-dev`` (``bpf/bpf_helpers.h``,
``bpf/bpf_endian.h``); the UAPI headers come with ``libc6-dev``. The object uses
no CO-RE relocations, so it does not depend on the running kernel's version.
``-g`` is required: the spin lock in the per-session map value needs BTF.

This module must stay importable without the object (the loader imports
:data:`SOURCE`, :data:`OBJECT` and :func:`build_command` to name the command in
its error messages).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

HERE: Final = Path(__file__).resolve().parent
SOURCE: Final = HERE / "upf.bpf.c"
OBJECT: Final = HERE / "upf.bpf.o"


def _multiarch() -> str:
    """The Debian multiarch triplet (``asm/types.h`` lives under /usr/include/<triplet>)."""
    try:
        out = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True, check=True, timeout=30)
        if out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    import platform

    return f"{platform.machine()}-linux-gnu"


def build_command(source: Path = SOURCE, output: Path = OBJECT) -> list[str]:
    """The clang invocation that builds ``output`` from ``source``."""
    return [
        "clang",
        "-O2",
        "-g",
        "-Wall",
        "-target",
        "bpf",
        f"-I/usr/include/{_multiarch()}",
        "-c",
        str(source),
        "-o",
        str(output),
    ]


#: What the error messages tell a person to run.
BUILD_HINT: Final = (
    "python user_plane/ebpf/build.py (clang -O2 -g -target bpf -I/usr/include/$(gcc -print-multiarch)"
    " -c upf.bpf.c -o upf.bpf.o; packages clang libbpf-dev)"
)


def stale(source: Path = SOURCE, output: Path = OBJECT) -> bool:
    """True when ``output`` is missing or older than ``source``."""
    return not output.exists() or output.stat().st_mtime < source.stat().st_mtime


def build(force: bool = False) -> bool:
    """Build the object if it is missing or stale; True when it was (re)built."""
    if not force and not stale():
        return False
    if shutil.which("clang") is None:
        raise RuntimeError("clang is not installed (apt-get install clang libbpf-dev)")
    tmp = OBJECT.with_suffix(".o.tmp")
    subprocess.run(build_command(SOURCE, tmp), check=True, timeout=300)
    tmp.replace(OBJECT)  # atomic: a loader never sees half an object
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clean", action="store_true", help="remove the object")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    if args.clean:
        OBJECT.unlink(missing_ok=True)
        return 0
    try:
        built = build(force=args.force)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{OBJECT} {'built' if built else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Build the optional compiled codec (and the UPF agent's control path): the same sources, compiled by Cython.

Run from the repository root (``make accel`` does)::

    .venv/bin/python pfcp/_build_accel.py          # build or refresh the extensions
    .venv/bin/python pfcp/_build_accel.py --clean  # remove them (``make clean-accel``)

The pure-Python package is the reference and stays complete on its own: this
script compiles the hot modules listed in :data:`MODULES` in place (one
``.so`` next to each ``.py``, which Python then imports instead). The ``.pxd``
file next to a module, when there is one, gives Cython C types for that
module's hot functions without changing the ``.py`` file. Only changed modules
are recompiled.

In-place extensions shadow their sources, so :mod:`pfcp._accel` refuses to
import a compiled module older than its ``.py`` or ``.pxd`` (run this script
again), and ``EDGECUPS_PURE=1`` makes :mod:`pfcp` ignore the extensions.

This script must not import :mod:`pfcp`: it runs before the extensions exist
and must not load stale ones.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The compiled modules, as paths relative to the repository root. Keep in
#: step with ``pfcp._accel.MODULES``.
MODULES = (
    "pfcp/_walk.py",
    "pfcp/ie/base.py",
    "pfcp/ie/addressing.py",
    "pfcp/ie/values.py",
    "pfcp/ie/ids.py",
    "pfcp/ie/node.py",
    "pfcp/ie/reporting.py",
    "pfcp/ie/rules.py",
    "pfcp/messages/schema.py",
    "pfcp/messages/node.py",
    "pfcp/messages/session.py",
    # The UPF agent's control path (user_plane.COMPILED_MODULES registers them with pfcp._accel).
    "user_plane/session.py",
    "user_plane/rules.py",
    "user_plane/rule_values.py",
    "user_plane/compile.py",
    "user_plane/usage.py",
    "user_plane/agent.py",
)

#: Cython directives: the code is ordinary Python 3 with checked semantics
#: (bounds, wraparound, division and overflow all behave as in CPython).
DIRECTIVES = {
    "language_level": 3,
    "binding": True,
    "annotation_typing": True,
    "embedsignature": False,
    "always_allow_keywords": True,
}


def module_name(path: str) -> str:
    """``pfcp/ie/base.py`` -> ``pfcp.ie.base``."""
    return path.removesuffix(".py").replace("/", ".")


def generated(path: str) -> list[Path]:
    """The files a build leaves next to ``path``: the C source and the extension."""
    source = ROOT / path
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    return [source.with_suffix(".c"), source.with_name(source.stem + suffix)]


def clean() -> int:
    """Remove every extension and generated C file of :data:`MODULES` (any Python version)."""
    removed = 0
    for path in MODULES:
        source = ROOT / path
        for candidate in [source.with_suffix(".c"), *source.parent.glob(source.stem + ".*.so")]:
            if candidate.exists():
                candidate.unlink()
                removed += 1
    print(f"removed {removed} generated files")
    return 0


def build(jobs: int, force: bool) -> int:
    """Cythonize and compile :data:`MODULES` in place."""
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("Cython is missing: install the test extras (pip install -e '.[test]')", file=sys.stderr)
        return 2
    from setuptools import Extension
    from setuptools.dist import Distribution

    os.chdir(ROOT)
    # A module with a .pxd gets its C types from there; its annotations
    # (``data: bytes``) must not compete with those declarations.
    typed_by_pxd = [p for p in MODULES if (ROOT / p).with_suffix(".pxd").exists()]
    ext_modules = []
    for paths, annotation_typing in (([p for p in MODULES if p not in typed_by_pxd], True), (typed_by_pxd, False)):
        if paths:
            ext_modules += cythonize(  # type: ignore[no-untyped-call]
                [Extension(module_name(p), [p]) for p in paths],
                compiler_directives={**DIRECTIVES, "annotation_typing": annotation_typing},
                nthreads=jobs,
                force=force,
                quiet=True,
            )
    temp = tempfile.mkdtemp(prefix="edgecups-accel-")
    try:
        # A bare Distribution: setup() would also read pyproject.toml, which
        # describes the pure package, not these extensions.
        dist = Distribution({"name": "edgecups-accel", "ext_modules": ext_modules})
        dist.script_args = ["--quiet", "build_ext", "--inplace", "--build-temp", temp, "--parallel", str(jobs)]
        if force:
            dist.script_args.append("--force")
        dist.parse_command_line()
        dist.run_commands()
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    # build_ext leaves an extension alone when it is newer than its C file; make
    # sure every extension is newer than its sources so the import guard is happy.
    for path in MODULES:
        c_file, ext = generated(path)
        if not ext.exists():
            print(f"{ext} was not built", file=sys.stderr)
            return 1
        newest = max((ROOT / path).stat().st_mtime, c_file.stat().st_mtime)
        pxd = (ROOT / path).with_suffix(".pxd")
        if pxd.exists():
            newest = max(newest, pxd.stat().st_mtime)
        if ext.stat().st_mtime < newest:
            os.utime(ext)
    print(f"compiled {len(MODULES)} modules in place")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clean", action="store_true", help="remove the compiled modules and C files")
    parser.add_argument("--force", action="store_true", help="rebuild every module")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="parallel compilations")
    args = parser.parse_args(argv)
    if args.clean:
        return clean()
    return build(max(1, args.jobs), args.force)


if __name__ == "__main__":
    sys.exit(main())

"""The guard around the optional compiled codec (pfcp/_accel.py, ``make accel``).

In-place extensions shadow the ``.py`` files beside them. These tests build a
copy of the package in a temporary directory, put files named like extensions
into it, and import that copy in a child process: a stale extension must be
refused with a message naming the fix, and ``EDGECUPS_PURE=1`` must import
every module from its source.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from pfcp import _accel

REPO = Path(__file__).resolve().parents[3]
EXT = EXTENSION_SUFFIXES[0]
SHOW_FILES = "import sys, pfcp; print('\\n'.join(sys.modules[m].__file__ for m in pfcp._accel.MODULES))"


def copy_package(tmp_path: Path) -> Path:
    """A copy of pfcp/ without compiled modules, generated C or caches."""
    dst = tmp_path / "pfcp"
    shutil.copytree(REPO / "pfcp", dst, ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
    return dst


def extension_path(root: Path, module: str) -> Path:
    return root.joinpath(*module.split(".")).with_name(module.rsplit(".", 1)[1] + EXT)


def import_copy(tmp_path: Path, *, pure: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EDGECUPS_PURE"}
    env["PYTHONPATH"] = str(tmp_path)
    if pure:
        env["EDGECUPS_PURE"] = "1"
    return subprocess.run(
        [sys.executable, "-c", SHOW_FILES], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


def make_old(path: Path, than: Path) -> None:
    old = than.stat().st_mtime - 60
    os.utime(path, (old, old))


def test_an_extension_older_than_its_source_is_refused(tmp_path: Path) -> None:
    pkg = copy_package(tmp_path)
    ext = extension_path(tmp_path, "pfcp.ie.base")
    ext.write_bytes(b"a stale build")
    make_old(ext, pkg / "ie" / "base.py")
    proc = import_copy(tmp_path, pure=False)
    assert proc.returncode != 0
    assert "ImportError: compiled module(s) older than their source" in proc.stderr
    assert f"pfcp/ie/base{EXT}" in proc.stderr
    assert "make accel" in proc.stderr and "make clean-accel" in proc.stderr


def test_an_extension_older_than_its_pxd_is_refused(tmp_path: Path) -> None:
    pkg = copy_package(tmp_path)
    assert (pkg / "_walk.pxd").exists()
    ext = extension_path(tmp_path, "pfcp._walk")
    ext.write_bytes(b"a stale build")
    built = ext.stat().st_mtime
    os.utime(pkg / "_walk.py", (built - 60, built - 60))  # the .py is older than the build
    os.utime(pkg / "_walk.pxd", (built + 60, built + 60))  # its C types are not
    proc = import_copy(tmp_path, pure=False)
    assert proc.returncode != 0
    assert f"pfcp/_walk{EXT}" in proc.stderr and "make accel" in proc.stderr


def test_pure_mode_imports_every_module_from_source(tmp_path: Path) -> None:
    copy_package(tmp_path)
    for module in _accel.MODULES:  # fresh, but not loadable: importing one would fail
        extension_path(tmp_path, module).write_bytes(b"not an extension module")
    proc = import_copy(tmp_path, pure=True)
    assert proc.returncode == 0, proc.stderr
    files = proc.stdout.split()
    assert len(files) == len(_accel.MODULES)
    assert all(f.endswith(".py") and f.startswith(str(tmp_path)) for f in files), files
    # Without EDGECUPS_PURE those files are what Python picks: the guard above is what skipped them.
    assert import_copy(tmp_path, pure=False).returncode != 0


def test_this_process_uses_the_extensions_that_exist() -> None:
    compiled = _accel.compiled_modules()
    if _accel.PURE:
        assert compiled == []
        return
    for module in _accel.MODULES:
        built = extension_path(REPO, module).exists()
        assert (module in compiled) == built, module

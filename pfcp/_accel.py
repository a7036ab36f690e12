"""Guard for the optional compiled codec (``make accel``, :mod:`pfcp._build_accel`).

The compiled build puts one extension module (``base.cpython-311-...so``) next
to each hot ``.py`` file, and Python imports an extension in preference to the
source beside it. Two rules keep that safe:

* an extension older than its ``.py`` (or its ``.pxd``) was built from other
  code: importing :mod:`pfcp` then raises :class:`ImportError` telling to run
  ``make accel`` (rebuild) or ``make clean-accel`` (back to pure Python);
* with ``EDGECUPS_PURE=1`` in the environment the extensions are ignored and
  every module is imported from its ``.py`` file (the reference behaviour).

:mod:`pfcp` imports this module before any other of its modules. It must stay
pure Python and never be compiled itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.machinery import (
    BYTECODE_SUFFIXES,
    EXTENSION_SUFFIXES,
    SOURCE_SUFFIXES,
    FileFinder,
    ModuleSpec,
    SourceFileLoader,
    SourcelessFileLoader,
)
from types import ModuleType

__all__ = ["MODULES", "PURE", "compiled_modules", "install", "register"]

#: The modules the compiled build may replace (see pfcp/_build_accel.py).
MODULES = (
    "pfcp._walk",
    "pfcp.ie.base",
    "pfcp.ie.addressing",
    "pfcp.ie.values",
    "pfcp.ie.ids",
    "pfcp.ie.node",
    "pfcp.ie.reporting",
    "pfcp.ie.rules",
    "pfcp.messages.schema",
    "pfcp.messages.node",
    "pfcp.messages.session",
)

#: True when ``EDGECUPS_PURE`` asks for the pure-Python modules.
PURE = os.environ.get("EDGECUPS_PURE", "").strip() not in ("", "0")

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


#: Compiled modules of other packages that asked for the same rules (:func:`register`).
_REGISTERED: list[str] = []


class _SourceOnlyFinder:
    """Finds the modules of :data:`MODULES` (and registered ones) from ``.py``/``.pyc`` files only."""

    @classmethod
    def find_spec(
        cls, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if (fullname not in MODULES and fullname not in _REGISTERED) or not path:
            return None
        for entry in path:
            finder = FileFinder(entry, (SourceFileLoader, SOURCE_SUFFIXES), (SourcelessFileLoader, BYTECODE_SUFFIXES))
            spec = finder.find_spec(fullname, target)
            if spec is not None:
                return spec
        return None


def _paths(name: str) -> tuple[str, str, list[str]]:
    """The ``.py``, ``.pxd`` and possible extension paths of module ``name``."""
    base = os.path.join(_ROOT, *name.split("."))
    return base + ".py", base + ".pxd", [base + suffix for suffix in EXTENSION_SUFFIXES]


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def check_fresh(modules: Sequence[str] = MODULES) -> None:
    """Raise ImportError if a compiled module is older than the code it was built from."""
    stale: list[str] = []
    for name in modules:
        source, pxd, extensions = _paths(name)
        for ext in extensions:
            built = _mtime(ext)
            if built is None:
                continue
            newest = max(t for t in (_mtime(source), _mtime(pxd), 0.0) if t is not None)
            if newest > built:
                stale.append(os.path.relpath(ext, _ROOT))
    if stale:
        raise ImportError(
            "compiled module(s) older than their source: "
            + ", ".join(stale)
            + ". Run `make accel` to rebuild them, or `make clean-accel` to go back to pure Python"
            " (EDGECUPS_PURE=1 ignores them for one run)."
        )


def install() -> None:
    """Apply the rules above; runs when ``pfcp/__init__.py`` imports this module."""
    if PURE:
        if not any(f is _SourceOnlyFinder for f in sys.meta_path):
            sys.meta_path.insert(0, _SourceOnlyFinder)
        return
    check_fresh()


install()


def register(modules: Sequence[str]) -> None:
    """Apply the same rules to another package's compiled modules (dotted names, under the
    repository root). That package calls this from its ``__init__``, before importing them."""
    new = [m for m in modules if m not in _REGISTERED]
    if not PURE:
        check_fresh(new)
    _REGISTERED.extend(new)


def compiled_modules() -> list[str]:
    """The modules of :data:`MODULES` (and registered ones) that were loaded from an extension."""
    out: list[str] = []
    for name in (*MODULES, *_REGISTERED):
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None) or ""
        if not file.endswith(tuple(SOURCE_SUFFIXES + BYTECODE_SUFFIXES)) and file:
            out.append(name)
    return out

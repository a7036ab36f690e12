"""pytest plugin for namespace tests: ``pytest_plugins = ["tests.harness.conftest_plugin"]``.

Provides the ``upf_topology`` fixture. With ``EDGECUPS_NETNS_CLEAN_STALE=1`` in the environment
it first removes ``ec-*`` namespaces left by earlier (crashed) runs; never by default, because a
concurrent run's namespaces look the same.
"""

from __future__ import annotations

import os

from tests.harness.netns import netns_unavailable_reason, remove_stale_namespaces, upf_topology

__all__ = ["upf_topology"]


def pytest_sessionstart() -> None:
    if os.environ.get("EDGECUPS_NETNS_CLEAN_STALE") == "1" and netns_unavailable_reason() is None:
        remove_stale_namespaces()

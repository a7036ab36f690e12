"""The end-to-end suite's simulation: one per test module (``sim``), torn down when the module ends.

Bringing a deployment up costs ~10-15 s on 2 cores, so scenarios share one: the clean ones
(traffic, QoS, usage) one simulation, the disruptive ones (crashes, mobility, drain) another,
in an order where each leaves the simulation healthy for the next (and checks it first). The
state directory (configurations, every process's log, the SQLite database) stays under pytest's
temporary directory for a post-mortem; the namespaces and processes never outlive the module,
whether its tests passed or not.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from control_plane.cli.sim import Simulation, load_topology
from control_plane.cli.sim.simulation import MAX_STATE_DIR
from edge_sites.sim.netns import netns_unavailable_reason

TOPOLOGY = Path(__file__).with_name("topology.yaml")

log = logging.getLogger("tests.e2e")


def _state_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[Path, bool]:
    """A fresh directory for the simulation's state, and whether we must remove it ourselves.

    The gNBs' control sockets live there, so its path must be short (unix socket paths): a
    long ``--basetemp`` falls back to a directory in /tmp."""
    directory = tmp_path_factory.mktemp(name)
    if len(str(directory).encode()) <= MAX_STATE_DIR:
        return directory, False
    return Path(tempfile.mkdtemp(prefix="ecsim-e2e-")), True


@pytest.fixture(scope="module")
def sim(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulation]:
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(f"e2e: {reason}")
    directory, ours = _state_dir(tmp_path_factory, request.module.__name__.rpartition(".")[2])
    simulation = Simulation.up(load_topology(TOPOLOGY), directory, progress=log.info)
    try:
        yield simulation
    finally:
        # Idempotent: after the teardown scenario this only verifies again that nothing is left.
        report = Simulation.down(directory, progress=log.info)
        assert report.clean, "teardown left something behind:\n" + "\n".join(report.lines())
        if ours:
            shutil.rmtree(directory)

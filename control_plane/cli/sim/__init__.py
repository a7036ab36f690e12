"""``edgecups sim``: a whole EdgeCUPS deployment in network namespaces, for a first run and for end-to-end tests.

From a declarative topology (:mod:`edge_sites.sim.topology`; the default has three edge sites
and one cloud site) the orchestrator derives a plan (:mod:`.plan`: namespaces, links,
addresses, configurations, site manifests), builds the network, starts the MQTT broker
(:mod:`.broker`: Mosquitto with the repository's ACL and a user per site, in the control
plane's namespace), the control plane (SQLite), one UPF agent, one data-network server and
(with UEs) one gNB simulator per site as processes inside their namespaces, provisions the
control plane *through its API* with the plan's manifests, waits until every UPF is associated
and online over MQTT, opens a PDU session per UE and DNN through the API, and attaches every
session's GTP-U tunnel on the UE's gNB. ``traffic`` then drives real packets from every UE and
checks them; ``down`` removes everything and proves it. :class:`Simulation` is the one API of
all this; the ``edgecups sim`` commands (``control_plane/cli/sim_commands.py``) and the
end-to-end tests are its callers::

    from control_plane.cli.sim import Simulation, TrafficOptions, load_topology, scale

    with Simulation.up(scale(load_topology(), sites=1, ues=1), Path("/run/my-sim"), progress=print) as sim:
        report = sim.traffic(TrafficOptions(ping_count=10))
        assert report.ok, report.failures()
        sim.kill("upf/edge-1"); sim.start("upf/edge-1")      # a UPF crash and its restart
        with sim.mqtt_collector() as watch:                   # edgecups/v1/# as the viewer user
            watch.wait_for(lambda messages: messages or None, "a telemetry message", timeout=10)
        sim.mqtt_statuses()                                   # each UPF's retained status
    # leaving the block ran Simulation.down(): nothing of it is left

Telemetry is part of the deployment: without mosquitto (the Debian package; ``make run`` and
``make system-deps`` install it) ``up`` refuses, building nothing, rather than run a deployment
whose UPF status, metrics and usage go nowhere.
"""

from edge_sites.sim.topology import DEFAULT_TOPOLOGY, SimTopology, TopologyError, load_topology, scale

from .broker import MqttTarget
from .plan import PREFIX, SimPlan, SitePlan, UePlan, build_plan
from .simulation import Progress, SimError, Simulation
from .state import DEFAULT_STATE_DIR, ProcessRecord, SimSession
from .status import SimStatus
from .teardown import TeardownReport
from .traffic_run import SessionResult, SiteSummary, TrafficOptions, TrafficReport

__all__ = [
    "DEFAULT_STATE_DIR",
    "DEFAULT_TOPOLOGY",
    "PREFIX",
    "MqttTarget",
    "ProcessRecord",
    "Progress",
    "SessionResult",
    "SimError",
    "SimPlan",
    "SimSession",
    "SimStatus",
    "SimTopology",
    "Simulation",
    "SitePlan",
    "SiteSummary",
    "TeardownReport",
    "TopologyError",
    "TrafficOptions",
    "TrafficReport",
    "UePlan",
    "build_plan",
    "load_topology",
    "scale",
]

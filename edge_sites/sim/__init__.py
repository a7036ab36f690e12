"""Building blocks of the simulated topology (issue 7), all run inside network namespaces.

* :mod:`edge_sites.sim.netns` (with :mod:`edge_sites.sim.netspec`): namespaces, veth pairs,
  routes and sysctls, declared and built with verified teardown; sockets and threads inside a
  namespace.
* :mod:`edge_sites.sim.process`: a long-running ``python -m`` process inside a namespace that
  reports readiness with one JSON line.
* :mod:`edge_sites.sim.gnb` and :mod:`edge_sites.sim.gnb_control`: the RAN simulator, one gNB
  process per site serving many UEs over real GTP-U (N3), controlled over a unix socket.
* :mod:`edge_sites.sim.traffic`: ICMP echo, UDP streams and TCP transfers from a UE, and the
  data-network servers they talk to.

Nothing here imports ``control_plane`` or ``db``; ``user_plane`` is used for its GTP-U codec,
its N3 signalling and its TUN helpers.
"""

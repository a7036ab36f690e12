"""The ``vpp`` dataplane driver: the UPF agent programs FD.io VPP over its binary API (vpp_papi).

* :mod:`.config`: the ``vpp:`` section of the agent's configuration.
* :mod:`.messages`: the API messages used, with their CRCs, and the start-up check.
* :mod:`.calls`: the connection (the only module importing vpp_papi).
* :mod:`.objects`: VPP objects as desired state, and the ordered, undoable call plan of a change;
  :mod:`.forwarding` (tunnels, routes, ABF) and :mod:`.filters` (policers, ACLs): the kinds of objects.
* :mod:`.plan`: a PFCP session's rules as VPP objects; :mod:`.node`: the node setup, :mod:`.setup` runs it.
* :mod:`.executor`: runs a plan all or nothing; :mod:`.counters`: tunnel counters into the URR meters.
* :mod:`.driver`: :class:`~.driver.VppDriver`.

Nothing is imported here: :mod:`user_plane.config` reads :mod:`.config` without loading the rest.
"""

"""End-to-end tests: the whole simulated deployment (issue 7), built on control_plane.cli.sim.Simulation."""

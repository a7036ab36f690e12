"""EdgeCUPS user plane: the UPF agent and its dataplane building blocks."""

from pfcp import _accel

#: The agent's control-path modules that ``make accel`` also compiles with Cython (PFCP
#: session planning and rule compilation: ~15% of each Session Establishment). Registered
#: before any of them is imported, so a stale build is refused and EDGECUPS_PURE=1 ignores
#: them, exactly as for the codec (pfcp/_accel.py). Keep in step with pfcp/_build_accel.py.
COMPILED_MODULES = (
    "user_plane.session",
    "user_plane.rules",
    "user_plane.rule_values",
    "user_plane.compile",
    "user_plane.usage",
    "user_plane.agent",
)
_accel.register(COMPILED_MODULES)

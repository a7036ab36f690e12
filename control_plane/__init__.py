"""EdgeCUPS central control plane.

Today this package holds only the operator CLI (:mod:`control_plane.cli`); the
control plane service itself (session management, UPF selection, PFCP N4,
gRPC northbound) arrives in later issues.
"""

"""The northbound gRPC API (edgecups.v1): servicers, server, typed client.

The servicers are thin: validate the request, call the procedures of
:mod:`control_plane.services`, map :mod:`control_plane.errors` to status codes.
``proto/`` holds the ``.proto`` sources; ``generated/`` the modules made from
them by :mod:`control_plane.api.codegen` (never edited by hand).
"""

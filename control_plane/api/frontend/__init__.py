"""API front-end workers: processes that terminate gRPC and forward edgecups.v1 calls to the core.

With ``api: {workers: N}``, ``edgecups cp`` runs N worker processes sharing the API's port
(SO_REUSEPORT); each does TLS, tokens, health and reflection, and passes every call's request
bytes over a unix socket to the control plane, which runs the same servicers as the in-process
server. :mod:`.codec` is the wire format, :mod:`.link` what both ends share, :mod:`.core` the
control plane's side, :mod:`.worker` the worker process and :mod:`.pool` their lifecycle.
"""

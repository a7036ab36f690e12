"""A VPP API emulator: VPP's socket transport and binary API (vpp_papi's own codec, the shared
v26.06 schema) over a state model of what the UPF's ``vpp`` driver programs. Test code only.

Start one::

    from tests.vpp_emulator import VppEmulator, api_dir_for_tests
    with VppEmulator(tmp_path / "api.sock", interfaces=["n3-eth", "n6-eth"]) as vpp:
        client = VPPApiClient(apidir=str(api_dir_for_tests()), server_address=str(vpp.socket_path))
        client.connect("upf-agent")
        ...
        assert vpp.state.gtpu_tunnels[...]

``VppEmulator(socket_path, api_dir=None, *, interfaces=(), record_calls=True)``: ``api_dir`` defaults to
:func:`api_dir_for_tests` (``$EDGECUPS_VPP_API_DIR``, else ``../shared/vpp-api/v26.06``; raises
FileNotFoundError when neither exists, :func:`api_dir_skip_reason` says why). ``interfaces`` are
pre-seeded "ethernet" interfaces, sw_if_index 1, 2, ... (local0 is 0), admin down, table 0.

Controls (all thread-safe; the server runs in background threads, so sync and asyncio tests both work):

- ``start() -> self`` / ``stop()``, or ``with VppEmulator(...) as vpp``; ``socket_path``; ``schema``.
- ``state -> State``: a consistent, immutable snapshot (fields below).
- ``fail(message_name, retval=-1, nth=1)``: the nth next call of that request replies ``retval``
  and changes nothing (ValueError for dumps and messages without retval).
- ``restart()``: VPP restarts: every connection is closed, all state goes back to a fresh boot
  (pre-seeded interfaces included); the socket keeps listening. ``restarts`` counts them.
- ``restart_on(message_name, nth=1)``: VPP dies while handling the nth next call of that request:
  no reply, then as ``restart()``.
- ``count_traffic(sw_if_index, *, rx_packets=0, rx_bytes=0, tx_packets=0, tx_bytes=0) -> Counters``:
  moves a gtpu tunnel's counters (rx = uplink after decap, tx = downlink after encap, so tx bytes
  include the outer IPv4/UDP/GTP-U header: 36 bytes per packet, more with the PDU session container).
- ``calls -> list[(message name, fields dict)]``: every request received, in order (sockclnt_create,
  control_ping, get_api_json included; empty with ``record_calls=False``, for long benchmarks);
  ``call_counts -> Counter[name]`` (always kept); ``reset_calls()`` empties both.
- ``errors -> list[str]``: handler crashes (emulator bugs; the client got retval -1). ``clients``:
  connected, registered clients.

``State`` fields (records are frozen dataclasses of ``tests.vpp_emulator.snapshot``; addresses are
``ipaddress`` objects):

- ``interfaces: {sw_if_index: Interface(sw_if_index, name, kind, admin_up, ip4_table, ip6_table,
  ip4_enabled, ip6_enabled, addresses: tuple[IPv4Interface|IPv6Interface], unnumbered: donor | None)}``,
  kind is "local" | "ethernet" | "gtpu" | "memif"; ``state.interface_by_name(name)``.
- ``ip_tables: {(is_ip6, table_id): name}`` (table 0 of both families always there).
- ``routes: {(table_id, IPv4Network|IPv6Network): tuple[FibPath(sw_if_index, type, proto, next_hop |
  None, table_id, weight, preference)]}``; type 0 NORMAL, 2 DROP; proto 0 IP4, 1 IP6.
- ``gtpu_tunnels: {sw_if_index: GtpuTunnel(sw_if_index, src, dst, teid, tteid, encap_vrf_id,
  decap_next_index, pdu_extension, qfi, mcast_sw_if_index, counters: Counters(packets_rx, packets_tx,
  bytes_rx, bytes_tx))}``; ``gtpu_forwards: {sw_if_index: GtpuForward(sw_if_index, dst,
  forwarding_type, encap_vrf_id, decap_next_index)}``.
- ``policers: {index: Policer(index, name, infos: PolicerInfos(cir, eir, cb, eb, rate_type, round_type,
  type, color_aware, conform_action, exceed_action, violate_action: PolicerAction(type, dscp)))}``;
  ``policer_bindings: {(sw_if_index, "input" | "output"): policer index}``.
- ``acls: {index: Acl(index, tag, rules: tuple[AclRule(is_permit, src_prefix, dst_prefix, proto,
  srcport_or_icmptype_first/_last, dstport_or_icmpcode_first/_last, tcp_flags_mask, tcp_flags_value)])}``;
  ``acl_interfaces: {sw_if_index: AclInterface(input: tuple[acl index], output: tuple[acl index])}``.
- ``abf_policies: {policy_id: AbfPolicy(policy_id, acl_index, paths: tuple[FibPath])}``;
  ``abf_attachments: {(policy_id, sw_if_index, is_ipv6): priority}``.
- ``memif_sockets: {socket_id: filename}`` (0 is VPP's default socket); ``memif_interfaces:
  {sw_if_index: MemifInterface(sw_if_index, id, socket_id, role, mode, ring_size, buffer_size,
  rx_queues, tx_queues)}``.

Path fields a path type does not use are normalised (sw_if_index ~0 for DROP, table_id 0 for a path
via an interface; weight 0 is 1), so expected states can be written by meaning.

Error codes are VPP's (src/vnet/api_errno.h): each handler's docstring says which it returns.
Unknown message ids and too-short messages get no reply (as VPP); requests not emulated get -9;
a request whose fields do not decode gets -73.

Not modelled: the routes VPP sources itself (connected/local prefixes of interface addresses,
FIB_SOURCE_INTERFACE) are not in ``routes``; ``ip4_enabled``/``ip6_enabled`` change only by the
enable_disable calls (VPP also enables IP with the first address); the stats segment; cursor streams
(``stream_msg`` services) answer -9. vpp_papi 2.4.2's asyncio client cannot take events (its reader
dies on a message without ``context``): use the sync client for want_interface_events.
"""

from tests.vpp_emulator.emulator import VppEmulator
from tests.vpp_emulator.schema import ApiSchema, api_dir_for_tests, api_dir_skip_reason
from tests.vpp_emulator.snapshot import State

__all__ = ["ApiSchema", "State", "VppEmulator", "api_dir_for_tests", "api_dir_skip_reason"]

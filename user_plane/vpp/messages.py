"""The VPP API messages the driver uses, with the CRCs it was written against (VPP 26.06).

A message's CRC covers its fields: vpp_papi silently drops a request whose CRC is not in
VPP's message table (the method just is not there), and the driver would pack arguments
for a layout VPP does not have. So at start :func:`check_messages` compares three things
for every message the driver needs (request and reply): the CRC here, the CRC of the
schema loaded from ``api_dir``, and VPP's own message table; the driver refuses to start
and names every message that is missing or differs. Pure: no vpp_papi.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Final

__all__ = ["MEMIF_MESSAGES", "MESSAGES", "OPTIONAL", "check_messages", "required"]

#: request -> (request CRC, reply or details message, its CRC), VPP 26.06.
MESSAGES: Final[Mapping[str, tuple[str, str, str]]] = {
    "control_ping": ("0x51077d14", "control_ping_reply", "0xf6b0b8ca"),
    "show_version": ("0x51077d14", "show_version_reply", "0xc919bde1"),
    "sw_interface_dump": ("0xaa610c27", "sw_interface_details", "0x6c221fc7"),
    "ip_table_add_del": ("0x0ffdaec0", "ip_table_add_del_reply", "0xe8d4e804"),
    "sw_interface_set_table": ("0xdf42a577", "sw_interface_set_table_reply", "0xe8d4e804"),
    "sw_interface_add_del_address": ("0x5463d73b", "sw_interface_add_del_address_reply", "0xe8d4e804"),
    "sw_interface_set_flags": ("0xf5aec1b8", "sw_interface_set_flags_reply", "0xe8d4e804"),
    "ip_route_add_del": ("0xb8ecfe0d", "ip_route_add_del_reply", "0x1992deab"),
    "gtpu_add_del_forward": ("0xc6ccce13", "gtpu_add_del_forward_reply", "0x5383d31f"),
    "gtpu_add_del_tunnel_v2": ("0xa0c30713", "gtpu_add_del_tunnel_v2_reply", "0x62b41304"),
    "gtpu_tunnel_update_tteid": ("0x79f33816", "gtpu_tunnel_update_tteid_reply", "0xe8d4e804"),
    "gtpu_get_transfer_counts": ("0x61410788", "gtpu_get_transfer_counts_reply", "0xe35f04bc"),
    "gtpu_tunnel_v2_dump": ("0xf9e6675e", "gtpu_tunnel_v2_details", "0x8bf4ba92"),
    "sw_interface_ip4_enable_disable": ("0xae6cfcfb", "sw_interface_ip4_enable_disable_reply", "0xe8d4e804"),
    "sw_interface_ip6_enable_disable": ("0xae6cfcfb", "sw_interface_ip6_enable_disable_reply", "0xe8d4e804"),
    "policer_add": ("0x4d949e35", "policer_add_reply", "0xa177cef2"),
    "policer_update": ("0xfd039ef0", "policer_update_reply", "0xe8d4e804"),
    "policer_del": ("0x7ff7912e", "policer_del_reply", "0xe8d4e804"),
    "policer_input_v2": ("0x8388eb84", "policer_input_v2_reply", "0xe8d4e804"),
    "policer_output_v2": ("0x8388eb84", "policer_output_v2_reply", "0xe8d4e804"),
    "acl_add_replace": ("0xee5c2f18", "acl_add_replace_reply", "0xac407b0c"),
    "acl_del": ("0xef34fea4", "acl_del_reply", "0xe8d4e804"),
    "acl_interface_set_acl_list": ("0x473982bd", "acl_interface_set_acl_list_reply", "0xe8d4e804"),
    "acl_dump": ("0xef34fea4", "acl_details", "0x95babae0"),
    "ip_table_replace_begin": ("0xb9d2e09e", "ip_table_replace_begin_reply", "0xe8d4e804"),
    "ip_table_replace_end": ("0xb9d2e09e", "ip_table_replace_end_reply", "0xe8d4e804"),
    "abf_policy_add_del": ("0xc6131197", "abf_policy_add_del_reply", "0xe8d4e804"),
    "abf_itf_attach_add_del": ("0x25c8621b", "abf_itf_attach_add_del_reply", "0xe8d4e804"),
    "memif_socket_filename_add_del_v2": ("0x34223bdf", "memif_socket_filename_add_del_v2_reply", "0x9f29bdb9"),
    "memif_create_v2": ("0x8c7de5f7", "memif_create_v2_reply", "0x5383d31f"),
    "memif_delete": ("0xf9e6675e", "memif_delete_reply", "0xe8d4e804"),
    "memif_dump": ("0x51077d14", "memif_details", "0xda34feb9"),
    "memif_socket_filename_dump": ("0x51077d14", "memif_socket_filename_details", "0x7ff326f7"),
}

#: Needed only when memif interfaces are configured.
MEMIF_MESSAGES: Final = frozenset(
    {"memif_socket_filename_add_del_v2", "memif_create_v2", "memif_delete", "memif_dump", "memif_socket_filename_dump"}
)
#: Needed only with ``vpp.gtpu_forward``.
OPTIONAL: Final = MEMIF_MESSAGES | {"gtpu_add_del_forward"}


def required(*, memif: bool, gtpu_forward: bool) -> frozenset[str]:
    """The requests a node with this configuration needs."""
    needed = set(MESSAGES) - OPTIONAL
    if memif:
        needed |= MEMIF_MESSAGES
    if gtpu_forward:
        needed.add("gtpu_add_del_forward")
    return frozenset(needed)


def check_messages(requests: Collection[str], schema: Mapping[str, str], table: Collection[str]) -> list[str]:
    """Problems with the messages of ``requests`` and their replies, one line per message.

    ``schema``: message name -> CRC as loaded from the API directory; ``table``: VPP's
    message table, ``name_crc`` entries (crc as 8 hex digits, as VPP sends them)."""
    known: dict[str, set[str]] = {}
    for entry in table:
        name, _, crc = entry.rpartition("_")
        known.setdefault(name, set()).add("0x" + crc)
    problems: list[str] = []
    for request in sorted(requests):
        crc, reply, reply_crc = MESSAGES[request]
        for name, expected in ((request, crc), (reply, reply_crc)):
            loaded = schema.get(name)
            if loaded is None:
                problems.append(f"{name}: not in the API schema (api_dir); this driver needs it with CRC {expected}")
                continue
            if loaded != expected:
                problems.append(
                    f"{name}: the API schema (api_dir) has CRC {loaded}, this driver is written for {expected}"
                )
            if name not in known:
                problems.append(f"{name}: VPP does not have it (plugin not loaded, or another VPP version)")
            elif loaded not in known[name]:
                vpp = ", ".join(sorted(known[name]))
                problems.append(f"{name}: VPP has CRC {vpp}, the API schema (api_dir) {loaded}")
    return problems

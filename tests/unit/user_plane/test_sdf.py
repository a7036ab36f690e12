"""SDF filters: IPFilterRule parsing (RFC 6733 §4.3.1 / TS 29.212 §5.4.2) and packet matching."""

from __future__ import annotations

import re
import struct
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

import pytest

import pfcp
from user_plane.sdf import (
    Direction,
    FlowDescription,
    FlowEndpoint,
    PortRange,
    SdfError,
    SdfFilter,
    SpecialAddress,
    UeAddress,
    parse_flow_description,
)

UE4 = IPv4Address("192.0.2.10")
UE6 = IPv6Address("2001:db8:ff:1::1")
REMOTE4 = "10.1.2.3"
REMOTE6 = "2001:db8:1::5"

UDP, TCP, ICMP, ESP, ICMPV6 = 17, 6, 1, 50, 58


# --- hand-built packets -------------------------------------------------------


def l4(sport: int, dport: int, payload: bytes = b"x" * 8) -> bytes:
    """A UDP/TCP-ish transport header: only the ports matter to the matcher."""
    return struct.pack("!HH", sport, dport) + b"\x00" * 16 + payload


def ipv4(src: str, dst: str, proto: int, payload: bytes, *, tos: int = 0, frag: int = 0, options: bytes = b"") -> bytes:
    ihl = 5 + len(options) // 4
    total = ihl * 4 + len(payload)
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        tos,
        total,
        0x1234,
        frag,
        64,
        proto,
        0,
        ip_address(src).packed,
        ip_address(dst).packed,
    )
    return hdr + options + payload


def ipv6(
    src: str | IPv6Address,
    dst: str | IPv6Address,
    nh: int,
    payload: bytes,
    *,
    tc: int = 0,
    flow_label: int = 0,
) -> bytes:
    first = (6 << 28) | (tc << 20) | flow_label
    return (
        struct.pack("!IHBB", first, len(payload), nh, 64) + IPv6Address(src).packed + IPv6Address(dst).packed + payload
    )


def udp4_dl(sport: int = 1234, dport: int = 5050, src: str = REMOTE4, dst: str = str(UE4)) -> bytes:
    return ipv4(src, dst, UDP, l4(sport, dport))


def udp4_ul(sport: int = 5050, dport: int = 1234, src: str = str(UE4), dst: str = REMOTE4) -> bytes:
    return ipv4(src, dst, UDP, l4(sport, dport))


def compile_rule(text: str, ue: UeAddress | tuple[UeAddress, ...] | None = UE4, **fields: int) -> SdfFilter:
    return SdfFilter.from_ie(pfcp.SDFFilter(flow_description=text, **fields), ue)


# --- parser: valid ---------------------------------------------------------------

VALID = [
    (
        "permit out 17 from 10.0.0.0/8 to assigned 5000-5100",
        FlowDescription(
            Direction.OUT,
            17,
            FlowEndpoint(IPv4Network("10.0.0.0/8")),
            FlowEndpoint(SpecialAddress.ASSIGNED, (PortRange(5000, 5100),)),
        ),
    ),
    (
        "permit out ip from any to assigned",
        FlowDescription(Direction.OUT, None, FlowEndpoint(SpecialAddress.ANY), FlowEndpoint(SpecialAddress.ASSIGNED)),
    ),
    (
        "permit out 6 from 198.51.100.1 80,443 to assigned",
        FlowDescription(
            Direction.OUT,
            6,
            FlowEndpoint(IPv4Network("198.51.100.1/32"), (PortRange(80, 80), PortRange(443, 443))),
            FlowEndpoint(SpecialAddress.ASSIGNED),
        ),
    ),
    (
        "permit out 17 from 2001:db8::/32 53 to 2001:db8:ff::/48 1000-2000,3000",
        FlowDescription(
            Direction.OUT,
            17,
            FlowEndpoint(IPv6Network("2001:db8::/32"), (PortRange(53, 53),)),
            FlowEndpoint(IPv6Network("2001:db8:ff::/48"), (PortRange(1000, 2000), PortRange(3000, 3000))),
        ),
    ),
    (
        # RFC 6733: host bits may be set; the mask decides.
        "permit in 58 from assigned to 2001:db8::1/64",
        FlowDescription(
            Direction.IN, 58, FlowEndpoint(SpecialAddress.ASSIGNED), FlowEndpoint(IPv6Network("2001:db8::/64"))
        ),
    ),
    (
        "  PERMIT   OUT  IP FROM ANY TO ANY  ",
        FlowDescription(Direction.OUT, None, FlowEndpoint(SpecialAddress.ANY), FlowEndpoint(SpecialAddress.ANY)),
    ),
    (
        "permit out 132 from any 0-65535 to assigned",
        FlowDescription(
            Direction.OUT,
            132,
            FlowEndpoint(SpecialAddress.ANY, (PortRange(0, 65535),)),
            FlowEndpoint(SpecialAddress.ASSIGNED),
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[t for t, _ in VALID])
def test_parse_valid(text: str, expected: FlowDescription) -> None:
    parsed = parse_flow_description(text)
    assert parsed == expected
    # The canonical text parses back to the same value.
    assert parse_flow_description(str(parsed)) == parsed


def test_canonical_text() -> None:
    assert (
        str(parse_flow_description("permit out 6 from 198.51.100.0/24 80,8000-8080 to assigned"))
        == "permit out 6 from 198.51.100.0/24 80,8000-8080 to assigned"
    )


def test_remote_and_ue_sides_follow_direction() -> None:
    out = parse_flow_description("permit out 17 from 10.0.0.0/8 to assigned")
    assert out.remote.address == IPv4Network("10.0.0.0/8")
    assert out.ue.address is SpecialAddress.ASSIGNED
    inn = parse_flow_description("permit in 17 from assigned to 10.0.0.0/8")
    assert inn.remote.address == IPv4Network("10.0.0.0/8")
    assert inn.ue.address is SpecialAddress.ASSIGNED


# --- parser: invalid, each with its own message ----------------------------------

INVALID = [
    ("", "empty flow description"),
    ("permit out ip from any", "too short"),
    ("deny out ip from any to assigned", "action 'deny' is not supported"),
    ("allow out ip from any to assigned", "unknown action 'allow'"),
    ("permit both ip from any to assigned", "unknown direction 'both'"),
    ("permit out udp from any to assigned", "unknown protocol 'udp'"),
    ("permit out 256 from any to assigned", "protocol 256 out of range"),
    ("permit out ip at any to assigned", "expected 'from' but found 'at'"),
    ("permit out ip from any 80 assigned x", "expected 'to' but found 'assigned'"),
    ("permit out 17 from any 80 80 to assigned", "expected 'to' but found '80'"),
    ("permit out 17 from any 5000 to", "missing destination address after 'to'"),
    ("permit out 17 from any 5000 tu assigned", "expected 'to' but found 'tu'"),
    ("permit out 17 from 10.0.0.300 to assigned", "malformed address '10.0.0.300'"),
    ("permit out 17 from 10.0.0.0/33 to assigned", "malformed address '10.0.0.0/33'"),
    ("permit out 17 from any to 2001:db8::/129", "malformed address '2001:db8::/129'"),
    ("permit out 17 from !10.0.0.0/8 to assigned", "address negation '!10.0.0.0/8' is not allowed"),
    ("permit out 17 from any to assigned/64", "'assigned' takes no mask"),
    ("permit out 17 from any 70000 to assigned", "port 70000 out of range"),
    ("permit out 17 from any 5100-5000 to assigned", "empty port range '5100-5000'"),
    ("permit out 17 from any 80, to assigned", "malformed port list '80,'"),
    ("permit out 17 from any 80-x to assigned", "malformed port list '80-x'"),
    ("permit out 17 from any 1-2-3 to assigned", "malformed port list '1-2-3'"),
    ("permit out 6 from any to assigned established", "option 'established' is not supported"),
    ("permit out ip from any to assigned frag", "option 'frag' is not supported"),
    ("permit out 17 from any to assigned 53 garbage", "unexpected 'garbage' after the destination"),
    ("permit out ip from any 80 to assigned", "ports need a protocol with ports"),
    ("permit out 1 from any to assigned 80", "ports need a protocol with ports"),
    ("permit out ip from 10.0.0.0/8 to 2001:db8::/32", "different IP versions"),
]


@pytest.mark.parametrize(("text", "message"), INVALID, ids=[t or "<empty>" for t, _ in INVALID])
def test_parse_invalid(text: str, message: str) -> None:
    with pytest.raises(SdfError, match=re.escape(message)):
        parse_flow_description(text)


# --- compiling --------------------------------------------------------------------


def test_assigned_without_ue_address_is_rejected() -> None:
    with pytest.raises(SdfError, match="uses 'assigned' but the session has no UE IP address"):
        compile_rule("permit out ip from any to assigned", None)


def test_rule_that_cannot_match_the_ue_family_is_rejected() -> None:
    # IPv4 remote prefix, IPv6-only UE: no IP version fits both sides.
    with pytest.raises(SdfError, match="can never match"):
        compile_rule("permit out 17 from 10.0.0.0/8 to assigned", UE6)


def test_empty_sdf_filter_is_rejected() -> None:
    with pytest.raises(SdfError, match="has no Flow Description"):
        SdfFilter.from_ie(pfcp.SDFFilter(sdf_filter_id=7), UE4)


def test_malformed_flow_description_in_ie_raises() -> None:
    with pytest.raises(SdfError, match="unknown protocol 'tcp'"):
        compile_rule("permit out tcp from any to assigned")


def test_spi_with_a_non_ipsec_protocol_is_rejected() -> None:
    with pytest.raises(SdfError, match="SPI needs protocol ESP"):
        compile_rule("permit out 17 from any to assigned", security_parameter_index=5)


def test_two_ue_addresses_of_one_family_are_rejected() -> None:
    with pytest.raises(SdfError, match="more than one IPv4 UE address"):
        compile_rule("permit out ip from any to assigned", (UE4, IPv4Address("192.0.2.11")))


def test_hand_built_ports_with_protocol_ip_are_rejected() -> None:
    flow = FlowDescription(
        Direction.OUT, None, FlowEndpoint(SpecialAddress.ANY, (PortRange(80, 80),)), FlowEndpoint(SpecialAddress.ANY)
    )
    with pytest.raises(SdfError, match="ports need a protocol with ports"):
        SdfFilter.compile(flow, UE4)


def test_sdf_filter_id_is_kept() -> None:
    f = compile_rule("permit out ip from any to assigned", sdf_filter_id=42)
    assert f.sdf_filter_id == 42
    assert f.flow == parse_flow_description("permit out ip from any to assigned")


# --- matching: the example ---------------------------------------------------

EXAMPLE = "permit out 17 from 10.0.0.0/8 to assigned 5000-5100"


@pytest.mark.parametrize(
    ("pkt", "expected"),
    [
        (udp4_dl(dport=5050), True),
        (udp4_dl(dport=5000), True),  # range bounds are inclusive
        (udp4_dl(dport=5100), True),
        (udp4_dl(dport=4999), False),
        (udp4_dl(dport=5101), False),
        (udp4_dl(sport=5050, dport=1234), False),  # the range is on the UE side, not the remote side
        (udp4_dl(src="11.0.0.1"), False),  # outside 10.0.0.0/8
        (udp4_dl(dst="192.0.2.11"), False),  # another UE
        (ipv4(REMOTE4, str(UE4), TCP, l4(1234, 5050)), False),  # TCP, rule says UDP
        (ipv4(REMOTE4, str(UE4), ICMP, b"\x08\x00" + b"\x00" * 30), False),
    ],
)
def test_example_downlink(pkt: bytes, expected: bool) -> None:
    assert compile_rule(EXAMPLE).matches_downlink(pkt, 0) is expected


@pytest.mark.parametrize(
    ("pkt", "expected"),
    [
        # Uplink: the UE is the source, so the UE-side range applies to the source port
        # and the remote prefix to the destination (TS 29.244 §5.2.1A.2A).
        (udp4_ul(sport=5050, dport=1234), True),
        (udp4_ul(sport=1234, dport=5050), False),
        (udp4_ul(dst="11.0.0.1"), False),
        (udp4_ul(src="192.0.2.11"), False),
    ],
)
def test_example_uplink(pkt: bytes, expected: bool) -> None:
    assert compile_rule(EXAMPLE).matches_uplink(pkt, 0) is expected


def test_direction_is_not_symmetric() -> None:
    f = compile_rule(EXAMPLE)
    dl, ul = udp4_dl(), udp4_ul()
    assert f.matches_downlink(dl, 0) and f.matches_uplink(ul, 0)
    assert not f.matches_uplink(dl, 0)
    assert not f.matches_downlink(ul, 0)


def test_in_direction_mirrors_out() -> None:
    f_in = compile_rule("permit in 17 from assigned 5000-5100 to 10.0.0.0/8")
    f_out = compile_rule(EXAMPLE)
    for pkt in (udp4_dl(), udp4_ul(), udp4_dl(dport=6000), udp4_ul(sport=6000)):
        assert f_in.matches_uplink(pkt, 0) is f_out.matches_uplink(pkt, 0)
        assert f_in.matches_downlink(pkt, 0) is f_out.matches_downlink(pkt, 0)
    assert f_in.matches_uplink(udp4_ul(), 0)


def test_assigned_resolves_to_the_sessions_ue_address() -> None:
    other_ue = IPv4Address("192.0.2.99")
    f = compile_rule("permit out ip from any to assigned", other_ue)
    assert f.matches_downlink(udp4_dl(dst=str(other_ue)), 0)
    assert not f.matches_downlink(udp4_dl(dst=str(UE4)), 0)
    assert f.matches_uplink(udp4_ul(src=str(other_ue)), 0)
    assert not f.matches_uplink(udp4_ul(src=str(UE4)), 0)


def test_offset_skips_outer_headers() -> None:
    outer = b"\xff" * 36  # e.g. outer IP/UDP/GTP-U already parsed by the caller
    f = compile_rule(EXAMPLE)
    assert f.matches_downlink(outer + udp4_dl(), len(outer))
    assert not f.matches_downlink(outer + udp4_dl(dport=1), len(outer))


# --- ports: lists and ranges -----------------------------------------------------------


@pytest.mark.parametrize(
    ("sport", "expected"), [(80, True), (443, True), (8080, False), (81, False), (8000, True), (8010, True)]
)
def test_port_list_with_ranges(sport: int, expected: bool) -> None:
    f = compile_rule("permit out 6 from 198.51.100.1 80,443,8000-8010 to assigned")
    pkt = ipv4("198.51.100.1", str(UE4), TCP, l4(sport, 40000))
    assert f.matches_downlink(pkt, 0) is expected
    # Same flow seen uplink: the remote ports are the destination ports.
    up = ipv4(str(UE4), "198.51.100.1", TCP, l4(40000, sport))
    assert f.matches_uplink(up, 0) is expected


def test_ports_on_both_sides() -> None:
    f = compile_rule("permit out 17 from any 53 to assigned 1000-2000")
    assert f.matches_downlink(udp4_dl(sport=53, dport=1500), 0)
    assert not f.matches_downlink(udp4_dl(sport=54, dport=1500), 0)
    assert not f.matches_downlink(udp4_dl(sport=53, dport=2500), 0)


def test_ipv4_options_shift_the_transport_header() -> None:
    f = compile_rule("permit out 17 from any 53 to assigned")
    options = b"\x01\x01\x01\x00"  # NOP NOP NOP EOL: IHL 6
    assert f.matches_downlink(ipv4(REMOTE4, str(UE4), UDP, l4(53, 9), options=options), 0)
    assert not f.matches_downlink(ipv4(REMOTE4, str(UE4), UDP, l4(54, 53), options=options), 0)


def test_ipv4_non_first_fragment_has_no_ports() -> None:
    with_ports = compile_rule("permit out 17 from any 53 to assigned")
    without_ports = compile_rule("permit out 17 from any to assigned")
    first = ipv4(REMOTE4, str(UE4), UDP, l4(53, 9), frag=0x2000)  # MF, offset 0
    later = ipv4(REMOTE4, str(UE4), UDP, l4(53, 9), frag=0x0010)  # offset 16*8
    assert with_ports.matches_downlink(first, 0)
    assert not with_ports.matches_downlink(later, 0)
    assert without_ports.matches_downlink(later, 0)


# --- protocol ip, ICMP -----------------------------------------------------------------


@pytest.mark.parametrize("proto", [UDP, TCP, ICMP, ESP, 47, 0])
def test_protocol_ip_matches_every_protocol(proto: int) -> None:
    f = compile_rule("permit out ip from any to assigned")
    assert f.matches_downlink(ipv4(REMOTE4, str(UE4), proto, b"\x00" * 24), 0)
    assert f.matches_uplink(ipv4(str(UE4), REMOTE4, proto, b"\x00" * 24), 0)


def test_icmp_rule() -> None:
    f = compile_rule("permit out 1 from 198.51.100.0/24 to assigned")
    ping = ipv4(str(UE4), "198.51.100.7", ICMP, b"\x08\x00\x00\x00\x00\x01\x00\x01")
    assert f.matches_uplink(ping, 0)
    assert not f.matches_uplink(ipv4(str(UE4), "198.51.100.7", UDP, l4(1, 2)), 0)


# --- IPv6 and families -------------------------------------------------------------------


def test_ipv4_rule_never_matches_ipv6_packet() -> None:
    f = compile_rule("permit out ip from 10.0.0.0/8 to any", (UE4, UE6))
    assert f.matches_downlink(ipv4(REMOTE4, str(UE4), UDP, l4(1, 2)), 0)
    assert not f.matches_downlink(ipv6(REMOTE6, UE6, UDP, l4(1, 2)), 0)
    assert not f.matches_uplink(ipv6(UE6, REMOTE6, UDP, l4(1, 2)), 0)


def test_ipv6_rule_never_matches_ipv4_packet() -> None:
    f = compile_rule("permit out ip from 2001:db8::/32 to any", (UE4, UE6))
    assert f.matches_downlink(ipv6(REMOTE6, UE6, UDP, l4(1, 2)), 0)
    assert not f.matches_downlink(ipv4(REMOTE4, str(UE4), UDP, l4(1, 2)), 0)


def test_assigned_follows_the_ue_families() -> None:
    v4_only = compile_rule("permit out ip from any to assigned", UE4)
    dual = compile_rule("permit out ip from any to assigned", (UE4, UE6))
    pkt6 = ipv6(REMOTE6, UE6, UDP, l4(1, 2))
    pkt4 = udp4_dl()
    assert not v4_only.matches_downlink(pkt6, 0)
    assert v4_only.matches_downlink(pkt4, 0)
    assert dual.matches_downlink(pkt6, 0)
    assert dual.matches_downlink(pkt4, 0)


def test_ipv6_ue_address_means_its_64_prefix() -> None:
    f = compile_rule("permit out 6 from 2001:db8:1::/48 443 to assigned", UE6)
    same_prefix = IPv6Address("2001:db8:ff:1:aaaa:bbbb:cccc:dddd")
    other_prefix = IPv6Address("2001:db8:ff:2::1")
    assert f.matches_downlink(ipv6(REMOTE6, same_prefix, TCP, l4(443, 40000)), 0)
    assert not f.matches_downlink(ipv6(REMOTE6, other_prefix, TCP, l4(443, 40000)), 0)
    assert not f.matches_downlink(ipv6("2001:db8:2::5", same_prefix, TCP, l4(443, 40000)), 0)
    assert not f.matches_downlink(ipv6(REMOTE6, same_prefix, TCP, l4(444, 40000)), 0)
    assert f.matches_uplink(ipv6(same_prefix, REMOTE6, TCP, l4(40000, 443)), 0)
    assert not f.matches_uplink(ipv6(same_prefix, REMOTE6, TCP, l4(443, 40000)), 0)


def test_ipv6_ue_network_is_used_as_given() -> None:
    f = compile_rule("permit out ip from any to assigned", IPv6Network("2001:db8:ff:1::1/128"))
    assert f.matches_downlink(ipv6(REMOTE6, UE6, UDP, l4(1, 2)), 0)
    assert not f.matches_downlink(ipv6(REMOTE6, "2001:db8:ff:1::2", UDP, l4(1, 2)), 0)


def test_ipv6_extension_headers_are_walked() -> None:
    f = compile_rule("permit out 17 from any 53 to assigned", UE6)
    hop_by_hop = bytes([UDP, 0]) + b"\x01\x04\x00\x00\x00\x00"  # next=UDP, 8 octets, PadN
    dest_opts = bytes([0, 0]) + b"\x01\x04\x00\x00\x00\x00"  # next=Hop-by-Hop (contrived chain)
    pkt = ipv6(REMOTE6, UE6, 60, dest_opts + hop_by_hop + l4(53, 9))
    assert f.matches_downlink(pkt, 0)
    assert not f.matches_downlink(ipv6(REMOTE6, UE6, 60, dest_opts + hop_by_hop + l4(54, 9)), 0)
    # Without walking, the protocol would read as 60 and ports from the option bytes.
    tcp_inside = ipv6(REMOTE6, UE6, 0, bytes([TCP, 0]) + b"\x01\x04\x00\x00\x00\x00" + l4(53, 9))
    assert not f.matches_downlink(tcp_inside, 0)


def test_ipv6_fragments() -> None:
    f = compile_rule("permit out 17 from any 53 to assigned", UE6)
    first = ipv6(REMOTE6, UE6, 44, struct.pack("!BBHI", UDP, 0, 0x0001, 7) + l4(53, 9))  # offset 0, M
    later = ipv6(REMOTE6, UE6, 44, struct.pack("!BBHI", UDP, 0, 0x0100, 7) + l4(53, 9))  # offset 32
    assert f.matches_downlink(first, 0)
    assert not f.matches_downlink(later, 0)


def test_rule_naming_an_extension_header_matches_it() -> None:
    f = compile_rule("permit out 44 from any to assigned", UE6)
    frag = ipv6(REMOTE6, UE6, 44, struct.pack("!BBHI", UDP, 0, 0x0001, 7) + l4(53, 9))
    assert f.matches_downlink(frag, 0)
    assert not f.matches_downlink(ipv6(REMOTE6, UE6, UDP, l4(53, 9)), 0)


# --- ToS / Traffic Class, SPI, Flow Label --------------------------------------------------


@pytest.mark.parametrize(("tos", "expected"), [(0xB8, True), (0xB9, True), (0xBB, True), (0x00, False), (0xA0, False)])
def test_tos_with_mask(tos: int, expected: bool) -> None:
    # DSCP EF (46 << 2 = 0xB8) with mask 0xFC: the ECN bits are ignored.
    f = compile_rule("permit out ip from any to assigned", (UE4, UE6), tos_traffic_class=0xB8FC)
    assert f.matches_downlink(ipv4(REMOTE4, str(UE4), UDP, l4(1, 2), tos=tos), 0) is expected
    assert f.matches_downlink(ipv6(REMOTE6, UE6, UDP, l4(1, 2), tc=tos), 0) is expected


def test_tos_only_sdf_filter_without_flow_description() -> None:
    f = SdfFilter.from_ie(pfcp.SDFFilter(tos_traffic_class=0x2020), None)  # CS1 with mask 0x20
    assert f.matches_uplink(ipv4("203.0.113.1", "198.51.100.1", TCP, l4(1, 2), tos=0x20), 0)
    assert f.matches_uplink(ipv4("203.0.113.1", "198.51.100.1", TCP, l4(1, 2), tos=0xFF), 0)
    assert not f.matches_uplink(ipv4("203.0.113.1", "198.51.100.1", TCP, l4(1, 2), tos=0xDF), 0)


def test_spi_for_esp_and_ah() -> None:
    f = compile_rule("permit out ip from any to assigned", security_parameter_index=0x00001234)
    esp = ipv4(REMOTE4, str(UE4), ESP, struct.pack("!II", 0x1234, 1) + b"\x00" * 16)
    esp_other = ipv4(REMOTE4, str(UE4), ESP, struct.pack("!II", 0x1235, 1) + b"\x00" * 16)
    ah = ipv4(REMOTE4, str(UE4), 51, struct.pack("!BBHII", UDP, 4, 0, 0x1234, 1) + b"\x00" * 16)
    assert f.matches_downlink(esp, 0)
    assert not f.matches_downlink(esp_other, 0)
    assert f.matches_downlink(ah, 0)
    # A UDP packet whose first word happens to equal the SPI is not IPsec.
    assert not f.matches_downlink(ipv4(REMOTE4, str(UE4), UDP, struct.pack("!I", 0x1234) + b"\x00" * 16), 0)


def test_flow_label() -> None:
    f = compile_rule("permit out ip from any to assigned", (UE4, UE6), flow_label=0xABCDE)
    assert f.matches_downlink(ipv6(REMOTE6, UE6, UDP, l4(1, 2), flow_label=0xABCDE), 0)
    assert not f.matches_downlink(ipv6(REMOTE6, UE6, UDP, l4(1, 2), flow_label=0xABCDF), 0)
    # IPv4 has no flow label, so a flow-label filter never matches IPv4.
    assert not f.matches_downlink(udp4_dl(), 0)


def test_flow_label_with_ipv4_only_rule_is_rejected() -> None:
    with pytest.raises(SdfError, match="can never match"):
        compile_rule("permit out ip from 10.0.0.0/8 to assigned", (UE4, UE6), flow_label=1)


# --- robustness ---------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [0, 1, 10, 19, 20, 22])
def test_truncated_ipv4_packet_does_not_match(cut: int) -> None:
    f = compile_rule(EXAMPLE)
    pkt = udp4_dl()
    assert f.matches_downlink(pkt, 0)
    assert not f.matches_downlink(pkt[:cut], 0)


@pytest.mark.parametrize("cut", [0, 39, 41, 43])
def test_truncated_ipv6_packet_does_not_match(cut: int) -> None:
    f = compile_rule("permit out 17 from any to assigned 9", UE6)
    pkt = ipv6(REMOTE6, UE6, UDP, l4(53, 9))
    assert f.matches_downlink(pkt, 0)
    assert not f.matches_downlink(pkt[:cut], 0)


def test_non_ip_packet_does_not_match() -> None:
    f = compile_rule("permit out ip from any to any")
    assert f.matches_downlink(udp4_dl(), 0)
    assert not f.matches_downlink(b"\x50" + udp4_dl()[1:], 0)


def test_accepts_bytearray_and_memoryview() -> None:
    f = compile_rule(EXAMPLE)
    pkt = udp4_dl()
    assert f.matches_downlink(bytearray(pkt), 0)
    assert f.matches_downlink(memoryview(pkt), 0)


# --- scapy as an independent packet builder ---------------------------------------------------


def test_against_scapy_built_packets() -> None:
    scapy_inet = pytest.importorskip("scapy.layers.inet")
    scapy_inet6 = pytest.importorskip("scapy.layers.inet6")
    ip, udp, tcp = scapy_inet.IP, scapy_inet.UDP, scapy_inet.TCP
    ip6 = scapy_inet6.IPv6
    f = compile_rule(EXAMPLE)
    assert f.matches_downlink(bytes(ip(src=REMOTE4, dst=str(UE4)) / udp(sport=4000, dport=5055)), 0)
    assert not f.matches_downlink(bytes(ip(src=REMOTE4, dst=str(UE4)) / tcp(sport=4000, dport=5055)), 0)
    assert f.matches_uplink(bytes(ip(src=str(UE4), dst=REMOTE4) / udp(sport=5055, dport=4000)), 0)
    f6 = compile_rule("permit out 6 from 2001:db8:1::/48 443 to assigned", UE6)
    assert f6.matches_downlink(bytes(ip6(src=REMOTE6, dst=str(UE6), tc=0) / tcp(sport=443, dport=50000)), 0)
    assert not f6.matches_downlink(bytes(ip6(src=REMOTE6, dst=str(UE6)) / udp(sport=443, dport=50000)), 0)

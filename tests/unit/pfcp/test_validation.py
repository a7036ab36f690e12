"""What the codec rejects, with which cause (TS 29.244 §7.6), and what it
keeps; plus the header corner cases (version, FO, MP, 24-bit sequence) and the
encoder's refusals (LocalProtocolError)."""

from __future__ import annotations

import dataclasses
import struct
from ipaddress import IPv4Address

import pytest

import pfcp
from pfcp import CauseValue, IEType
from tests.data.pfcp.make_vectors import VECTORS
from tests.unit.pfcp.wire import find, node_message, remove, replace_payload, session_message, tlv

SER = pfcp.encode(VECTORS["session-establishment-request"]())
SEID = 0x1111000000000001


def decode_error(data: bytes) -> pfcp.DecodeError:
    with pytest.raises(pfcp.DecodeError) as info:
        pfcp.decode(data)
    return info.value


def heartbeat(*extra: bytes, rts: bytes = b"\xe8\xfe\x6f\x80", sequence: int = 7) -> bytes:
    return node_message(1, tlv(IEType.RECOVERY_TIME_STAMP, rts) + b"".join(extra), sequence)


# --------------------------------------------------------------------------
# Cause 66: mandatory IE missing (§7.6.6)


def test_ser_without_node_id() -> None:
    node, ancestors = find(SER, IEType.NODE_ID)
    error = decode_error(remove(SER, node, ancestors))
    assert error.cause is CauseValue.MANDATORY_IE_MISSING
    assert error.offending_ie == IEType.NODE_ID
    assert (error.message_type, error.sequence, error.seid) == (50, 0x10, 0)


def test_create_pdr_without_pdi() -> None:
    node, ancestors = find(SER, IEType.CREATE_PDR, IEType.PDI)
    error = decode_error(remove(SER, node, ancestors))
    assert error.cause is CauseValue.MANDATORY_IE_MISSING
    assert error.offending_ie == IEType.PDI
    assert error.message_type == pfcp.MessageType.SESSION_ESTABLISHMENT_REQUEST


def test_pdi_without_source_interface() -> None:
    node, ancestors = find(SER, IEType.CREATE_PDR, IEType.PDI, IEType.SOURCE_INTERFACE)
    error = decode_error(remove(SER, node, ancestors))
    assert (error.cause, error.offending_ie) == (CauseValue.MANDATORY_IE_MISSING, IEType.SOURCE_INTERFACE)


def test_ser_without_any_create_far() -> None:
    data = SER
    while True:
        try:
            node, ancestors = find(data, IEType.CREATE_FAR)
        except StopIteration:
            break
        data = remove(data, node, ancestors)
    error = decode_error(data)
    assert (error.cause, error.offending_ie) == (CauseValue.MANDATORY_IE_MISSING, IEType.CREATE_FAR)


def test_heartbeat_without_recovery_time_stamp() -> None:
    error = decode_error(node_message(1, b"", sequence=9))
    assert (error.cause, error.offending_ie) == (CauseValue.MANDATORY_IE_MISSING, IEType.RECOVERY_TIME_STAMP)
    assert (error.message_type, error.sequence, error.seid) == (1, 9, None)


# --------------------------------------------------------------------------
# Cause 68: invalid length (§7.6.7)


def test_ie_running_past_the_message() -> None:
    data = bytearray(heartbeat())
    struct.pack_into(">H", data, 10, 5)  # Recovery Time Stamp claims 5 octets, 4 follow
    error = decode_error(bytes(data))
    assert error.cause is CauseValue.INVALID_LENGTH
    assert (error.message_type, error.sequence) == (1, 7)


def test_ie_running_past_its_grouped_ie() -> None:
    node, _ = find(SER, IEType.CREATE_PDR, IEType.PDR_ID)
    data = bytearray(SER)
    struct.pack_into(">H", data, node.start + 2, 0x0400)
    assert decode_error(bytes(data)).cause is CauseValue.INVALID_LENGTH


def test_message_length_beyond_the_datagram() -> None:
    data = bytearray(heartbeat())
    struct.pack_into(">H", data, 2, len(data))  # 4 octets more than there are
    error = decode_error(bytes(data))
    assert error.cause is CauseValue.INVALID_LENGTH
    assert error.message_type == 1


def test_stray_octets_after_the_last_ie() -> None:
    data = heartbeat()
    data = data[:2] + struct.pack(">H", len(data) - 4 + 2) + data[4:] + b"\x00\x60"
    assert decode_error(data).cause is CauseValue.INVALID_LENGTH


@pytest.mark.parametrize("size", [0, 1, 4, 7])
def test_header_too_short(size: int) -> None:
    error = decode_error(heartbeat()[:size])
    assert error.cause is CauseValue.INVALID_LENGTH


def test_session_header_too_short_for_its_seid() -> None:
    # S=1 needs 16 octets of header; these 12 are consistent with their length field.
    error = decode_error(bytes.fromhex("21360008") + bytes(8))
    assert error.cause is CauseValue.INVALID_LENGTH
    assert error.message_type == pfcp.MessageType.SESSION_DELETION_REQUEST
    # The same octets as a node message (S=0) are a valid header.
    assert pfcp.decode_all(bytes.fromhex("20360008") + bytes(8))[0].seid is None


# --------------------------------------------------------------------------
# Cause 69: mandatory IE incorrect (§7.6.8); optional IEs discarded


def test_f_seid_of_three_octets() -> None:
    node, ancestors = find(SER, IEType.F_SEID)
    error = decode_error(replace_payload(SER, node, ancestors, b"\x02\x01\x02"))
    assert error.cause is CauseValue.MANDATORY_IE_INCORRECT
    assert error.offending_ie == IEType.F_SEID
    assert (error.message_type, error.sequence, error.seid) == (50, 0x10, 0)


def test_malformed_mandatory_ie_inside_a_grouped_ie() -> None:
    node, ancestors = find(SER, IEType.CREATE_FAR, IEType.FAR_ID)
    error = decode_error(replace_payload(SER, node, ancestors, b"\x01"))
    assert (error.cause, error.offending_ie) == (CauseValue.MANDATORY_IE_INCORRECT, IEType.FAR_ID)


def test_malformed_optional_ie_is_kept_raw_in_extra() -> None:
    node, ancestors = find(SER, IEType.PDN_TYPE)
    data = replace_payload(SER, node, ancestors, b"\x03\x00")  # PDN Type of 2 octets
    msg = pfcp.decode(data)
    assert isinstance(msg, pfcp.SessionEstablishmentRequest)
    assert msg.pdn_type is None
    (raw,) = msg.extra
    assert isinstance(raw, pfcp.RawIE)
    assert (raw.ie_type, raw.payload) == (IEType.PDN_TYPE, b"\x03\x00")
    assert msg.create_pdr == VECTORS["session-establishment-request"]().create_pdr  # type: ignore[attr-defined]
    assert pfcp.encode(msg) == data


def test_malformed_optional_ie_inside_a_grouped_ie_is_kept() -> None:
    node, ancestors = find(SER, IEType.CREATE_PDR, IEType.OUTER_HEADER_REMOVAL)
    data = replace_payload(SER, node, ancestors, b"")  # empty Outer Header Removal
    msg = pfcp.decode(data)
    assert isinstance(msg, pfcp.SessionEstablishmentRequest)
    pdr = msg.create_pdr[0]
    assert pdr.outer_header_removal is None
    assert [(ie.ie_type, ie.payload) for ie in pdr.extra if isinstance(ie, pfcp.RawIE)] == [
        (IEType.OUTER_HEADER_REMOVAL, b"")
    ]
    assert pfcp.encode(msg) == data


def test_repeated_single_ie_goes_to_extra() -> None:
    second = tlv(IEType.SOURCE_IP_ADDRESS, b"\x02\xc0\x00\x02\x09")
    data = heartbeat(tlv(IEType.SOURCE_IP_ADDRESS, b"\x02\xc0\x00\x02\x01"), second)
    msg = pfcp.decode(data)
    assert isinstance(msg, pfcp.HeartbeatRequest)
    assert msg.source_ip_address == pfcp.SourceIPAddress(IPv4Address("192.0.2.1"))
    assert msg.extra == (pfcp.SourceIPAddress(IPv4Address("192.0.2.9")),)
    assert pfcp.encode(msg) == data


def test_undeclared_and_unknown_ies_go_to_extra() -> None:
    data = heartbeat(
        tlv(IEType.NODE_ID, b"\x00\xc0\x00\x02\x01"), tlv(0x7F00, b"new"), struct.pack(">HHH", 0x8001, 5, 1234) + b"abc"
    )
    msg = pfcp.decode(data)
    assert msg.extra == (
        pfcp.NodeID(IPv4Address("192.0.2.1")),
        pfcp.UnknownIE(0x7F00, b"new"),
        pfcp.VendorIE(0x8001, 1234, b"abc"),
    )
    assert pfcp.encode(msg) == data


# --------------------------------------------------------------------------
# Header


def test_version_2_is_unsupported() -> None:
    data = bytearray(heartbeat())
    data[0] = (2 << 5) | (data[0] & 0x1F)
    error = decode_error(bytes(data))
    assert isinstance(error, pfcp.UnsupportedVersion)
    assert error.version == 2
    assert error.message_type == 1


def test_decode_error_carries_session_header_fields() -> None:
    body = tlv(IEType.CAUSE, b"\x01\x00")  # Cause of 2 octets: mandatory and malformed
    error = decode_error(session_message(57, body, seid=SEID, sequence=0xABCDEF))
    assert (error.message_type, error.sequence, error.seid) == (57, 0xABCDEF, SEID)
    assert (error.cause, error.offending_ie) == (CauseValue.MANDATORY_IE_INCORRECT, IEType.CAUSE)
    assert "Cause" in str(error) or "CAUSE" in str(error)


def test_remote_protocol_error_is_decode_error() -> None:
    assert pfcp.RemoteProtocolError is pfcp.DecodeError
    assert issubclass(pfcp.DecodeError, pfcp.PFCPError)
    assert issubclass(pfcp.LocalProtocolError, pfcp.PFCPError)


def test_follow_on_datagram() -> None:
    hb = pfcp.HeartbeatRequest(sequence=1, recovery_time_stamp=pfcp.RecoveryTimeStamp(5))
    response = pfcp.HeartbeatResponse(sequence=1, recovery_time_stamp=pfcp.RecoveryTimeStamp(6))
    ser = VECTORS["session-establishment-request"]()
    wire = pfcp.encode_all([hb, response, ser])
    first, second = pfcp.encode(hb), pfcp.encode(response)
    assert wire[0] == first[0] | 0x04 and wire[len(first)] == second[0] | 0x04  # FO on all but the last
    assert wire[len(first) + len(second)] == 0x21  # last: S=1, FO=0
    assert wire == bytes([first[0] | 0x04]) + first[1:] + bytes([second[0] | 0x04]) + second[1:] + pfcp.encode(ser)
    assert pfcp.decode_all(wire) == [hb, response, ser]
    with pytest.raises(pfcp.DecodeError):
        pfcp.decode(wire)  # one message expected, the datagram carries three
    assert pfcp.encode_all([hb]) == first
    assert pfcp.decode_all(first) == [hb]


def test_follow_on_set_but_nothing_follows() -> None:
    data = bytearray(heartbeat())
    data[0] |= 0x04
    assert pfcp.decode_all(bytes(data)) == [pfcp.decode(heartbeat())]


def test_follow_on_with_a_truncated_second_message() -> None:
    hb = pfcp.HeartbeatRequest(sequence=1, recovery_time_stamp=pfcp.RecoveryTimeStamp(5))
    wire = pfcp.encode_all([hb, hb])
    with pytest.raises(pfcp.DecodeError):
        pfcp.decode_all(wire[:-3])


@pytest.mark.parametrize("priority", [0, 5, 15])
def test_message_priority(priority: int) -> None:
    msg = pfcp.SessionDeletionRequest(sequence=3, seid=SEID, priority=priority)
    wire = pfcp.encode(msg)
    assert wire[0] == 0x23  # version 1, MP, S
    assert wire[15] == priority << 4
    decoded = pfcp.decode(wire)
    assert decoded.priority == priority
    assert decoded == msg
    assert pfcp.encode(decoded) == wire
    no_mp = pfcp.encode(dataclasses.replace(msg, priority=None))
    assert no_mp[0] == 0x21 and no_mp[15] == 0
    assert pfcp.decode(no_mp).priority is None


def test_sequence_is_24_bits() -> None:
    top = pfcp.HeartbeatRequest(sequence=0xFFFFFF, recovery_time_stamp=pfcp.RecoveryTimeStamp(1))
    wire = pfcp.encode(top)
    assert wire[4:8] == b"\xff\xff\xff\x00"
    assert pfcp.decode(wire).sequence == 0xFFFFFF
    for bad in (0x1000000, -1):
        with pytest.raises(pfcp.LocalProtocolError):
            pfcp.encode(dataclasses.replace(top, sequence=bad))


def test_seid_and_priority_bounds() -> None:
    msg = pfcp.SessionDeletionRequest(sequence=1, seid=2**64 - 1)
    assert pfcp.decode(pfcp.encode(msg)).seid == 2**64 - 1
    for bad in (
        dataclasses.replace(msg, seid=2**64),
        dataclasses.replace(msg, seid=-1),
        dataclasses.replace(msg, priority=16),
        dataclasses.replace(msg, priority=-1),
    ):
        with pytest.raises(pfcp.LocalProtocolError):
            pfcp.encode(bad)


# --------------------------------------------------------------------------
# The encoder refuses what the tables forbid (LocalProtocolError)


def test_encoding_a_message_without_a_mandatory_ie() -> None:
    with pytest.raises(pfcp.LocalProtocolError):
        pfcp.encode(pfcp.HeartbeatRequest(sequence=1, recovery_time_stamp=None))  # type: ignore[arg-type]
    ser = VECTORS["session-establishment-request"]()
    assert isinstance(ser, pfcp.SessionEstablishmentRequest)
    with pytest.raises(pfcp.LocalProtocolError):
        pfcp.encode(dataclasses.replace(ser, create_far=()))
    with pytest.raises(pfcp.LocalProtocolError):
        pfcp.encode(dataclasses.replace(ser, node_id=None))  # type: ignore[arg-type]


def test_encoding_a_grouped_ie_without_a_mandatory_child() -> None:
    ser = VECTORS["session-establishment-request"]()
    assert isinstance(ser, pfcp.SessionEstablishmentRequest)
    broken = dataclasses.replace(ser.create_pdr[0], pdi=None)  # type: ignore[arg-type]
    with pytest.raises(pfcp.LocalProtocolError):
        pfcp.encode(dataclasses.replace(ser, create_pdr=(broken,)))


def test_wrong_ie_class_in_a_field() -> None:
    with pytest.raises(pfcp.LocalProtocolError):
        pfcp.encode(pfcp.HeartbeatRequest(sequence=1, recovery_time_stamp=pfcp.Precedence(1)))  # type: ignore[arg-type]
    ser = VECTORS["session-establishment-request"]()
    assert isinstance(ser, pfcp.SessionEstablishmentRequest)
    with pytest.raises(pfcp.LocalProtocolError):
        pfcp.encode(dataclasses.replace(ser, create_far=ser.create_pdr))  # type: ignore[arg-type]
    pdr = dataclasses.replace(ser.create_pdr[0], far_id=pfcp.QERID(1))  # type: ignore[arg-type]
    with pytest.raises(pfcp.LocalProtocolError):
        pfcp.encode(dataclasses.replace(ser, create_pdr=(pdr,)))


def test_out_of_range_values() -> None:
    ser = VECTORS["session-establishment-request"]()
    assert isinstance(ser, pfcp.SessionEstablishmentRequest)
    for pdr in (
        dataclasses.replace(ser.create_pdr[0], pdr_id=pfcp.PDRID(70000)),
        dataclasses.replace(ser.create_pdr[0], far_id=pfcp.FARID(-1)),
        dataclasses.replace(ser.create_pdr[0], precedence=pfcp.Precedence(2**32)),
    ):
        with pytest.raises(pfcp.LocalProtocolError):
            pfcp.encode(dataclasses.replace(ser, create_pdr=(pdr,)))
    with pytest.raises(pfcp.LocalProtocolError):
        pfcp.encode(dataclasses.replace(ser, cp_f_seid=pfcp.FSEID(2**64, IPv4Address("192.0.2.1"))))


def test_message_over_the_16_bit_length() -> None:
    big = pfcp.UnknownIE(0x7F00, bytes(60000))
    msg = pfcp.HeartbeatRequest(sequence=1, recovery_time_stamp=pfcp.RecoveryTimeStamp(1), extra=(big, big))
    with pytest.raises(pfcp.LocalProtocolError):
        pfcp.encode(msg)


def test_raw_ies_must_keep_to_their_type_ranges() -> None:
    rts = pfcp.RecoveryTimeStamp(1)
    with pytest.raises(pfcp.LocalProtocolError):
        pfcp.encode(pfcp.HeartbeatRequest(recovery_time_stamp=rts, extra=(pfcp.UnknownIE(0x10000, b""),)))
    with pytest.raises(pfcp.LocalProtocolError):
        pfcp.encode(pfcp.HeartbeatRequest(recovery_time_stamp=rts, extra=(pfcp.VendorIE(0x7FFF, 1, b""),)))


# --------------------------------------------------------------------------
# Regressions: the walker restarts in "record the order" mode when IEs of one
# field arrive in separate runs; that mode must make every check the fast one
# makes (found by these tests in the first version of the codec).

_UNKNOWN = tlv(0x7F00, b"")
_RTS = tlv(IEType.RECOVERY_TIME_STAMP, b"\xe8\xfb\x0d\x00")
_NODE_ID = tlv(IEType.NODE_ID, b"\x00\xc0\x00\x02\x02")


def test_ordered_walk_reports_a_missing_mandatory_ie() -> None:
    error = decode_error(node_message(5, _UNKNOWN + _RTS + _UNKNOWN))
    assert (error.cause, error.offending_ie) == (CauseValue.MANDATORY_IE_MISSING, IEType.NODE_ID)


def test_ordered_walk_reports_an_ie_running_past_the_end() -> None:
    data = node_message(5, _NODE_ID + _UNKNOWN + _RTS + _UNKNOWN + struct.pack(">HH", 0x7F01, 50) + b"x")
    assert decode_error(data).cause is CauseValue.INVALID_LENGTH


def test_ordered_walk_reports_a_malformed_mandatory_ie() -> None:
    error = decode_error(node_message(5, _UNKNOWN + _RTS + _UNKNOWN + tlv(IEType.NODE_ID, b"\x00\x01")))
    assert (error.cause, error.offending_ie) == (CauseValue.MANDATORY_IE_INCORRECT, IEType.NODE_ID)


def test_ordered_walk_reports_stray_octets() -> None:
    data = node_message(5, _NODE_ID + _UNKNOWN + _RTS + _UNKNOWN + b"\x00\x01")
    assert decode_error(data).cause is CauseValue.INVALID_LENGTH


def test_ordered_walk_keeps_the_header_and_the_order() -> None:
    data = node_message(5, _NODE_ID + _UNKNOWN + _RTS + _UNKNOWN)
    msg = pfcp.decode(data)
    assert msg.sequence == 1
    assert msg.wire_order == ("node_id", "extra", "recovery_time_stamp", "extra")
    assert pfcp.encode(msg) == data


def test_fast_path_does_all_four_checks() -> None:
    # The same four inputs without the interleaving that triggers the ordered walk.
    unknown = tlv(0x7F00, b"")
    rts = tlv(IEType.RECOVERY_TIME_STAMP, b"\xe8\xfb\x0d\x00")
    node_id = tlv(IEType.NODE_ID, b"\x00\xc0\x00\x02\x02")
    cases = [
        (node_message(5, rts + unknown + unknown), CauseValue.MANDATORY_IE_MISSING),
        (node_message(5, node_id + rts + unknown + struct.pack(">HH", 0x7F01, 50) + b"x"), CauseValue.INVALID_LENGTH),
        (
            node_message(5, rts + unknown + unknown + tlv(IEType.NODE_ID, b"\x00\x01")),
            CauseValue.MANDATORY_IE_INCORRECT,
        ),
        (node_message(5, node_id + rts + unknown + unknown + b"\x00\x01"), CauseValue.INVALID_LENGTH),
    ]
    for data, cause in cases:
        assert decode_error(data).cause is cause


def test_short_vendor_ie_survives_a_round_trip() -> None:
    # A vendor IE too short for its Enterprise ID is kept raw and re-encodes as it came.
    data = node_message(1, _RTS + tlv(0x8001, b"\x01"))
    msg = pfcp.decode(data)
    assert msg.extra == (pfcp.UnknownIE(0x8001, b"\x01"),)
    assert pfcp.encode(msg) == data


def test_unsupported_version_still_carries_the_header_values() -> None:
    # A node answers Version Not Supported with the request's sequence number (§7.6.2).
    data = bytearray(session_message(50, b"", seid=0x1234, sequence=77))
    data[0] = (2 << 5) | 0x01
    with pytest.raises(pfcp.UnsupportedVersion) as info:
        pfcp.decode(bytes(data))
    assert (info.value.version, info.value.sequence, info.value.seid) == (2, 77, 0x1234)

"""The emulator's request decoder against vpp_papi's own unpack: same values, no shared state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from vpp_papi.vpp_serializer import vpp_get_type  # type: ignore[import-untyped]

from tests.unit.vpp_emulator.conftest import route_path, tunnel_args
from tests.vpp_emulator import ApiSchema
from tests.vpp_emulator.codec import decode


@pytest.fixture(scope="module")
def schema() -> ApiSchema:
    from tests.vpp_emulator import api_dir_for_tests, api_dir_skip_reason

    path = api_dir_for_tests()
    if path is None:
        pytest.skip(api_dir_skip_reason())
    return ApiSchema.load(Path(path))


def plain(value: Any) -> Any:
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items() if k != "_0"}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


UPF_REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("gtpu_add_del_tunnel_v2", tunnel_args(dst_address="2001:db8::3", src_address="2001:db8::1")),
    (
        "ip_route_add_del",
        {
            "is_add": True,
            "route": {
                "table_id": 7,
                "prefix": "10.60.0.0/16",
                "n_paths": 2,
                "paths": [route_path(3), route_path(type=2)],
            },
        },
    ),
    ("sw_interface_add_del_address", {"sw_if_index": 1, "is_add": True, "prefix": "2001:db8::1/64"}),
    (
        "acl_add_replace",
        {
            "acl_index": 0xFFFFFFFF,
            "tag": "sdf",
            "count": 1,
            "r": [{"is_permit": 1, "src_prefix": "10.60.0.1/32", "dst_prefix": "::/0", "proto": 17}],
        },
    ),
    ("acl_interface_set_acl_list", {"sw_if_index": 3, "count": 3, "n_input": 1, "acls": [4, 5, 6]}),
    ("policer_add", {"name": "qer", "infos": {"cir": 1, "eir": 2, "type": 2, "exceed_action": {"type": 2, "dscp": 8}}}),
    ("memif_create_v2", {"role": 1, "mode": 1, "id": 3, "socket_id": 1, "hw_addr": "02:fe:00:00:00:01"}),
    ("sw_interface_dump", {"sw_if_index": 0xFFFFFFFF, "name_filter_valid": True, "name_filter": "gtpu"}),
]


@pytest.mark.parametrize(("name", "fields"), UPF_REQUESTS, ids=[n for n, _ in UPF_REQUESTS])
def test_decodes_as_vpp_papi_does(schema: ApiSchema, name: str, fields: dict[str, Any]) -> None:
    payload = schema.pack(name, {"client_index": 0x80000001, "context": 9, **fields})
    expected, expected_size = schema.messages[name].unpack(payload)
    decoded, size = decode(schema.messages[name], payload)
    decoded.pop("_vl_msg_id")
    assert decoded == plain(expected)
    assert size == expected_size == len(payload)


def test_every_request_of_the_schema_decodes_its_own_zero_message(schema: ApiSchema) -> None:
    for name in schema.services:
        payload = schema.pack(name, {})
        expected, _ = schema.messages[name].unpack(payload)
        decoded, size = decode(schema.messages[name], payload)
        decoded.pop("_vl_msg_id")
        assert decoded == plain(expected), name
        assert size == len(payload), name


def test_decoding_leaves_vpp_papi_type_state_alone(schema: ApiSchema) -> None:
    # vpp_papi's unpack sets and clears this flag on the shared type object; a concurrent unpack
    # in the client under test would read it. The emulator's decode never touches it.
    address_type = vpp_get_type("vl_api_address_t")
    payload = schema.pack("gtpu_add_del_tunnel_v2", tunnel_args())
    address_type.toplevelconversion = True
    try:
        decoded, _ = decode(schema.messages["gtpu_add_del_tunnel_v2"], payload)
        assert address_type.toplevelconversion is True
    finally:
        address_type.toplevelconversion = False
    assert str(decoded["dst_address"]) == "10.0.3.3"

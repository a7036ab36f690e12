"""Fixtures: the emulator (tests.harness.vpp) and vpp_papi's real sync client connected to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from vpp_papi import VPPApiClient  # type: ignore[import-untyped]

from tests.harness.vpp import vpp_api_dir, vpp_emulator  # noqa: F401
from tests.vpp_emulator import VppEmulator

N3 = 1
N6 = 2
NO_INDEX = 0xFFFFFFFF

ClientFactory = Callable[..., Any]


@pytest.fixture
def connect(vpp_emulator: VppEmulator, vpp_api_dir: Path) -> Iterator[ClientFactory]:  # noqa: F811
    """connect(name="t", **client_kwargs) -> a connected sync VPPApiClient; all disconnected after."""
    clients: list[Any] = []

    def factory(name: str = "t", **kwargs: Any) -> Any:
        if not kwargs.get("bootstrapapi"):
            kwargs.setdefault("apidir", str(vpp_api_dir))
        client = VPPApiClient(server_address=str(vpp_emulator.socket_path), **kwargs)
        client.connect(name)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.disconnect()


@pytest.fixture
def client(connect: ClientFactory) -> Any:
    return connect("upf-agent")


def route_path(sw_if_index: int = NO_INDEX, **fields: Any) -> dict[str, Any]:
    """A fib_path as the driver sends it (label_stack must have its 16 entries)."""
    return {"sw_if_index": sw_if_index, "proto": 0, "label_stack": [{}] * 16, **fields}


def tunnel_args(**fields: Any) -> dict[str, Any]:
    """gtpu_add_del_tunnel_v2 arguments of one (session, gNB) tunnel, overridable."""
    args: dict[str, Any] = {
        "is_add": True,
        "src_address": "10.0.3.1",
        "dst_address": "10.0.3.3",
        "mcast_sw_if_index": NO_INDEX,
        "encap_vrf_id": 0,
        "decap_next_index": 2,
        "teid": 0x1001,
        "tteid": 0x2002,
        "pdu_extension": True,
        "qfi": 9,
    }
    args.update(fields)
    return args

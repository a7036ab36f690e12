"""edgecups.v1.ProvisioningService over real gRPC on loopback, served by a real control plane.

Each test starts the control plane (control_plane.app.start) on a fresh SQLite database and
talks to it through its API; the assertions read back through the API, the database rows
and the control plane's live inventory. No UPF agent runs: the UPFs stay unassociated
unless a test answers for one with a bare PFCP node.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import yaml
from sqlalchemy import RowMapping, Table, select

from control_plane import repo
from control_plane.api.channel import ApiCredentials
from control_plane.api.generated.edgecups.v1 import provisioning_pb2 as pb
from control_plane.api.generated.edgecups.v1 import provisioning_pb2_grpc as pb_grpc
from control_plane.api.generated.edgecups.v1 import status_pb2_grpc
from control_plane.api.security import new_token, secure_channel, token_entry
from control_plane.api.status import error_from_rpc
from control_plane.app import ControlPlane, start
from control_plane.config import parse_config
from db.engine import upgrade
from db.models import Event, IpPool, Site, Upf
from tests.harness.tls import make_pki

# --- harness (test_status_api.py uses it too) ---------------------------------------------


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Api:
    cp: ControlPlane
    prov: pb_grpc.ProvisioningServiceAsyncStub
    status: status_pb2_grpc.StatusServiceAsyncStub
    #: For other clients of the same API (sessions).
    credentials: ApiCredentials

    @property
    def target(self) -> str:
        return f"localhost:{self.cp.api_port}"

    async def apply(self, *resources: pb.Resource, dry_run: bool = False) -> list[pb.Change]:
        response = await self.prov.Apply(pb.ApplyRequest(resources=resources, dry_run=dry_run))
        return list(response.changes)

    async def get(self, kind: str, name: str) -> pb.Resource:
        return await self.prov.Get(pb.GetResourceRequest(kind=kind, name=name))

    async def delete(self, kind: str, name: str) -> pb.Resource:
        return await self.prov.Delete(pb.DeleteResourceRequest(kind=kind, name=name))

    async def page(self, kind: str, **options: Any) -> pb.ListResourcesResponse:
        return await self.prov.List(pb.ListResourcesRequest(kind=kind, **options))

    async def rows(self, model: Any) -> list[RowMapping]:
        table: Table = model.__table__
        return await self.cp.store.run(lambda c: list(c.execute(select(table).order_by(table.c.id)).mappings()))

    async def event_kinds(self) -> list[str]:
        return [row["kind"] for row in await self.rows(Event)]


Scenario = Callable[[Api], Awaitable[None]]


#: The operator's bearer token of every control plane these tests start (TLS, tokens file).
TOKEN = new_token()[0]


def run(tmp_path: Path, scenario: Scenario, url: str | None = None) -> None:
    """Run ``scenario`` against a control plane on a fresh database (SQLite in ``tmp_path``, or ``url``),
    over TLS with an operator token, as an operator's tools reach it."""
    url = url or f"sqlite:///{tmp_path / 'cp.db'}"
    upgrade(url)
    pki = make_pki(tmp_path / "pki")
    (tmp_path / "tokens.yaml").write_text(yaml.safe_dump([token_entry("ops", ["operator"], TOKEN)]))
    config = parse_config(
        {
            "n4": {"address": "127.0.0.1", "port": free_udp_port()},
            "database": {"url": url},
            "api": {
                "address": "127.0.0.1",
                "port": 0,
                "tls": {"cert": str(pki.server_cert), "key": str(pki.server_key)},
                "tokens_file": str(tmp_path / "tokens.yaml"),
            },
            "timers": {"t1": 0.2, "n1": 1, "heartbeat_interval": 1, "reassociate_interval": 0.5},
        }
    )

    async def main() -> None:
        cp = await start(config)
        try:
            async with secure_channel(f"localhost:{cp.api_port}", ca=pki.ca_cert, token=TOKEN) as channel:
                stubs = (pb_grpc.ProvisioningServiceStub(channel), status_pb2_grpc.StatusServiceStub(channel))
                await scenario(Api(cp, *stubs, ApiCredentials(ca=pki.ca_cert, token=TOKEN)))
        finally:
            await cp.stop()

    asyncio.run(main())


async def fails(call: Awaitable[object], code: grpc.StatusCode, field: str | None) -> str:
    """Await a call that must fail with ``code`` naming ``field``; its details."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    error = info.value
    assert (error.code(), error_from_rpc(error).field) == (code, field), error.details()
    return error.details() or ""


async def eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait (polling) until ``check()`` holds; fail naming ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


TAI = "001-01-000001"


def site(name: str = "edge-a", *, tais: tuple[str, ...] = (TAI,), kind: str = "edge") -> pb.Resource:
    return pb.Resource(kind="Site", name=name, site=pb.Site(kind=kind, region="eu", tais=tais))


def upf(
    node_id: str = "upf-a", *, at: str = "edge-a", address: str = "127.0.0.2", port: int | None = None, **extra: Any
) -> pb.Resource:
    spec = pb.Upf(
        site=at, n4_address=address, n4_port=port, n3_addresses=["198.18.20.1"],
        network_instances=extra.pop("network_instances", ["internet"]), capacity=extra.pop("capacity", 100), **extra,
    )  # fmt: skip
    return pb.Resource(kind="UPF", name=node_id, upf=spec)


def dnn(name: str = "internet") -> pb.Resource:
    return pb.Resource(kind="DNN", name=name, dnn=pb.Dnn(snssais=["1-000001"]))


def pool(
    name: str = "pool-a", cidr: str = "10.45.0.0/24", *, of: str = "internet", at: str | None = None
) -> pb.Resource:
    return pb.Resource(kind="Pool", name=name, pool=pb.Pool(dnn=of, site=at, cidr=cidr))


def policy(name: str = "default", *, of: str = "internet", **extra: Any) -> pb.Resource:
    spec = pb.Policy(dnn=of, qfi=9, five_qi=9, session_ambr_ul_kbps=1000, session_ambr_dl_kbps=2000, **extra)
    return pb.Resource(kind="Policy", name=name, policy=spec)


def subscriber(supi: str = "imsi-001010000000001", *dnns: str, **extra: Any) -> pb.Resource:
    spec = pb.Subscriber(allowed_dnns=dnns or ("internet",), **extra)
    return pb.Resource(kind="Subscriber", name=supi, subscriber=spec)


BASE = (site(), upf(), dnn(), pool(), policy(), subscriber())


async def insert_session(api: Api, *, upf_node: str = "upf-a", pool_name: str = "pool-a", ip: str, state: str) -> None:
    """A session row as the procedures write it (no UPF answers in these tests)."""
    upf_id = api.cp.inventory.upf_by_node[upf_node].id
    pool_id = next(p.id for p in api.cp.inventory.pools.values() if p.name == pool_name)
    seid = int(IPv4Address(ip)) & 0xFFFF  # one session per address in these tests
    values = {
        "supi": f"imsi-0010100000{seid:05d}", "pdu_session_id": 1, "dnn": "internet", "snssai": "1-000001",
        "tai": "001-01-000001", "ue_ipv4": ip, "pool_v4_id": pool_id, "upf_id": upf_id, "cp_seid": seid,
        "state": state, "epoch": 1,
    }  # fmt: skip
    await api.cp.store.run(lambda c: repo.insert_session(c, values, []))


# --- apply, get ------------------------------------------------------------------------------

EDGE = pb.EdgeRule(
    name="mec",
    precedence=10,
    flow_descriptions=["permit out ip from 10.200.0.0/16 to assigned"],
    network_instance="mec",
)


def test_apply_creates_every_kind_in_kind_order_and_get_reads_them_back(tmp_path: Path) -> None:
    async def scenario(api: Api) -> None:
        v6 = pool("pool-v6", "2001:db8:100::/48", at="edge-a")
        gold = policy("gold", snssai="1-000001", volume_threshold_bytes=10**9, failover=True, edge_rules=[EDGE])
        static = subscriber("imsi-001010000000002", static_ipv4="10.45.0.9", policy="gold")
        changes = await api.apply(static, gold, v6, *reversed(BASE))  # applied Site first, Subscriber last
        kinds = ["Site", "UPF", "DNN", "Pool", "Pool", "Policy", "Policy", "Subscriber", "Subscriber"]
        assert [(c.kind, c.action) for c in changes] == [(kind, "created") for kind in kinds]
        assert {f.path: f.new for f in changes[0].fields} == {
            "kind": '"edge"',
            "region": '"eu"',
            "tais": '["001-01-000001"]',
        }
        assert not any(f.HasField("old") for c in changes for f in c.fields)

        got = await api.get("upf", "upf-a")  # a kind in any case
        assert (got.kind, got.WhichOneof("spec"), got.upf.capacity, got.upf.sessions) == ("UPF", "upf", 100, 0)
        assert (got.upf.n4_port, got.upf.admin_state, got.upf.teid_allocation) == (8805, "enabled", "cp")
        assert not got.upf.HasField("access_network_instance") and not got.upf.HasField("recovery_time_stamp")
        assert got.upf.health in ("unknown", "down") and got.upf.association in ("idle", "setup-sent")
        v6_pool = (await api.get("Pool", "pool-v6")).pool
        assert (v6_pool.prefix_length, v6_pool.size, v6_pool.used, v6_pool.free) == (64, 65536, 0, 65536)
        p = (await api.get("Policy", "gold")).policy
        assert (p.snssai, p.arp_priority, p.qfi_in_pdi, p.failover, list(p.edge_rules)) == (
            "1-000001",
            8,
            True,
            True,
            [EDGE],
        )
        assert (await api.get("Policy", "default")).policy.snssai == "*"
        s = (await api.get("Subscriber", "imsi-001010000000002")).subscriber
        assert (s.static_ipv4, s.policy, list(s.allowed_dnns)) == ("10.45.0.9", "gold", ["internet"])

        inv = api.cp.inventory
        record = inv.upf_by_node["upf-a"]
        assert (record.site, record.site_tais, record.dnns) == ("edge-a", frozenset({TAI}), frozenset({"internet"}))
        assert {p.name for p in inv.pools.values()} == {"pool-a", "pool-v6"}
        assert inv.policy_by_name["gold"].edge_rules[0].name == "mec"
        assert (inv.dnn_instances, inv.site_pools) == ({"internet": "internet"}, {"edge-a": frozenset({"internet"})})
        assert (await api.event_kinds())[:3] == ["site.created", "upf.created", "dnn.created"]

    run(tmp_path, scenario)


def test_applying_the_same_objects_again_changes_nothing(tmp_path: Path) -> None:
    async def scenario(api: Api) -> None:
        await api.apply(*BASE)
        before = (await api.rows(Site), await api.rows(Upf), await api.rows(Event))
        record, allocator = api.cp.inventory.upf_by_node["upf-a"], api.cp.inventory.pools[1].allocator
        changes = await api.apply(*BASE)
        assert [(c.action, list(c.fields)) for c in changes] == [("unchanged", [])] * len(BASE)
        # Nothing written: the same rows (updated_at too), no event; the same live records.
        assert (await api.rows(Site), await api.rows(Upf), await api.rows(Event)) == before
        assert api.cp.inventory.upf_by_node["upf-a"] is record and api.cp.inventory.pools[1].allocator is allocator

    run(tmp_path, scenario)


def test_an_update_reports_each_changed_field_and_keeps_the_live_records(tmp_path: Path) -> None:
    async def scenario(api: Api) -> None:
        await api.apply(*BASE)
        record, allocator = api.cp.inventory.upf_by_node["upf-a"], api.cp.inventory.pools[1].allocator
        allocator.allocate()  # a session's address: must survive the refresh
        record.load = 7
        changes = await api.apply(
            site(tais=("001-01-000002", "001-01-000001")),  # one TAI added (their order does not matter)
            upf(capacity=3),  # below its load: allowed, it only takes no new session
            policy(edge_rules=[EDGE]),
        )
        assert [(c.kind, c.action) for c in changes] == [("Site", "updated"), ("UPF", "updated"), ("Policy", "updated")]
        assert [(f.path, f.old, f.new) for c in changes[:2] for f in c.fields] == [
            ("tais", '["001-01-000001"]', '["001-01-000001", "001-01-000002"]'),
            ("capacity", "100", "3"),
        ]
        assert [f.path for f in changes[2].fields] == ["edge_rules"]
        inv = api.cp.inventory
        assert inv.upf_by_node["upf-a"] is record and (record.capacity, record.load) == (3, 7)
        assert record.site_tais == {"001-01-000001", "001-01-000002"}
        assert inv.pools[1].allocator is allocator and allocator.used == 1
        assert inv.policy_by_name["default"].edge_rules[0].name == "mec"
        assert (await api.event_kinds())[-3:] == ["site.updated", "upf.updated", "policy.updated"]

    run(tmp_path, scenario)


def test_dry_run_reports_the_changes_and_writes_nothing(tmp_path: Path) -> None:
    async def scenario(api: Api) -> None:
        changes = await api.apply(*BASE, dry_run=True)
        assert [c.action for c in changes] == ["created"] * len(BASE)
        assert (await api.rows(Site), await api.rows(Upf), await api.rows(Event)) == ([], [], [])
        assert not api.cp.inventory.upfs
        await api.apply(*BASE)
        rows = await api.rows(Upf)
        changes = await api.apply(upf(capacity=5), dry_run=True)
        assert [(f.path, f.old, f.new) for c in changes for f in c.fields] == [("capacity", "100", "5")]
        assert await api.rows(Upf) == rows and api.cp.inventory.upf_by_node["upf-a"].capacity == 100

    run(tmp_path, scenario)


def test_an_apply_is_all_or_nothing(tmp_path: Path) -> None:
    async def scenario(api: Api) -> None:
        # A reference the database cannot satisfy, found after two objects were written.
        refused = api.apply(site(), dnn(), pool(at="edge-b"))
        await fails(refused, grpc.StatusCode.FAILED_PRECONDITION, "resources[2].spec.site")
        # A malformed third object: refused before anything is written.
        malformed = api.apply(site(), dnn(), pool(cidr="10.45.0.1/24"))
        details = await fails(malformed, grpc.StatusCode.INVALID_ARGUMENT, "resources[2].spec.cidr")
        assert "did you mean '10.45.0.0/24'" in details
        assert (await api.rows(Site), await api.rows(IpPool), await api.rows(Event)) == ([], [], [])
        assert not api.cp.inventory.dnn_instances

    run(tmp_path, scenario)


# --- errors ----------------------------------------------------------------------------------

EDGE_SITE = pb.Site(kind="edge", region="eu")
MALFORMED = [
    ([pb.Resource(kind="Sight", name="x", site=EDGE_SITE)], "resources[0].kind", "did you mean 'Site'"),
    ([dnn(), pb.Resource(kind="DNN", name="x", site=EDGE_SITE)], "resources[1].site", "kind DNN with a Site spec"),
    ([pb.Resource(name="x")], "resources[0].kind", "needs a kind"),
    ([site(kind="metro")], "resources[0].spec.kind", "'metro' is not one of edge, cloud"),
    ([site(), upf(capacity=0)], "resources[1].spec.capacity", "out of range"),
    ([upf(address="10.0.0.300")], "resources[0].spec.n4_address", "not an IP address"),
    ([pb.Resource(kind="Site", name="", site=EDGE_SITE)], "resources[0].name", "not a name"),
    ([subscriber("imsi-1")], "resources[0].name", "not a SUPI"),
    ([pb.Resource(kind="Subscriber", name="imsi-00101")], "resources[0].spec.allowed_dnns", "required"),
]


def test_malformed_requests_name_the_field(tmp_path: Path) -> None:
    async def scenario(api: Api) -> None:
        for resources, field, text in MALFORMED:
            assert text in await fails(api.apply(*resources), grpc.StatusCode.INVALID_ARGUMENT, field)
        await fails(api.get("Florp", "x"), grpc.StatusCode.INVALID_ARGUMENT, "kind")
        await fails(api.get("UPF", "not a node id"), grpc.StatusCode.INVALID_ARGUMENT, "name")
        assert await api.rows(Event) == []

    run(tmp_path, scenario)


def test_references_and_clashes_are_checked_against_the_database(tmp_path: Path) -> None:
    code = grpc.StatusCode

    async def scenario(api: Api) -> None:
        await fails(api.apply(upf()), code.FAILED_PRECONDITION, "resources[0].spec.site")
        await api.apply(site(), dnn())
        two = api.apply(upf(network_instances=["internet", "ims"]))
        assert "no DNN 'ims'" in await fails(two, code.FAILED_PRECONDITION, "resources[0].spec.network_instances[1]")
        # The same node id twice in one request; another UPF at the same N4 address and port.
        await fails(api.apply(upf(), upf(capacity=5)), code.INVALID_ARGUMENT, "resources[1].name")
        await api.apply(upf())
        await fails(api.apply(upf("upf-b")), code.ALREADY_EXISTS, "resources[0].spec.n4_address")
        await api.apply(upf("upf-b", port=8806))  # another port is another endpoint
        # Pools of one DNN never overlap; another DNN may reuse the prefix.
        await api.apply(pool())
        overlap = api.apply(pool("pool-b", "10.45.0.128/25"))
        assert "overlaps 10.45.0.0/24 of Pool 'pool-a'" in await fails(
            overlap, code.INVALID_ARGUMENT, "resources[0].spec.cidr"
        )
        await api.apply(dnn("ims"), pool("pool-ims", "10.45.0.0/24", of="ims"))
        await fails(api.apply(policy(of="iot")), code.FAILED_PRECONDITION, "resources[0].spec.dnn")
        await api.apply(policy())
        await fails(api.apply(policy("other")), code.ALREADY_EXISTS, "resources[0].spec.snssai")
        await fails(api.apply(subscriber(policy="gold")), code.FAILED_PRECONDITION, "resources[0].spec.policy")
        outside = api.apply(subscriber(static_ipv4="10.99.0.1"))
        await fails(outside, code.FAILED_PRECONDITION, "resources[0].spec.static_ipv4")
        await api.apply(subscriber(static_ipv4="10.45.0.7"))
        taken = api.apply(subscriber("imsi-001010000000002", static_ipv4="10.45.0.7"))
        await fails(taken, code.ALREADY_EXISTS, "resources[0].spec.static_ipv4")

    run(tmp_path, scenario)


def test_a_pool_keeps_the_addresses_its_sessions_hold(tmp_path: Path) -> None:
    async def scenario(api: Api) -> None:
        await api.apply(*BASE)
        api.cp.inventory.pools[1].allocator.reserve("10.45.0.200")
        await insert_session(api, ip="10.45.0.200", state="active")
        too_small = api.apply(pool(cidr="10.45.0.0/25"))
        assert "10.45.0.200" in await fails(too_small, grpc.StatusCode.FAILED_PRECONDITION, "resources[0].spec.cidr")
        await fails(api.apply(pool(at="edge-a")), grpc.StatusCode.FAILED_PRECONDITION, "resources[0].spec.site")
        changes = await api.apply(pool(cidr="10.45.0.0/23"))
        assert [(f.path, f.old, f.new) for f in changes[0].fields] == [("cidr", '"10.45.0.0/24"', '"10.45.0.0/23"')]
        rebuilt = api.cp.inventory.pools[1].allocator
        assert (rebuilt.cidr, rebuilt.size, rebuilt.used) == ("10.45.0.0/23", 510, 1)
        assert rebuilt.is_allocated("10.45.0.200") and (await api.get("Pool", "pool-a")).pool.used == 1

    run(tmp_path, scenario)


# --- delete ----------------------------------------------------------------------------------


def test_delete_is_refused_while_something_depends_on_it(tmp_path: Path, database_url: str) -> None:
    # Also on PostgreSQL: a DNN's dependants are found in JSON lists too.
    refused = {
        ("Site", "edge-a"): ["UPF upf-a", "Pool pool-b"],
        ("UPF", "upf-a"): ["sessions of imsi-"],
        ("DNN", "internet"): ["Pool pool-a, pool-b", "Policy default", "UPF upf-a", "Subscriber imsi-", "sessions of"],
        ("Pool", "pool-a"): ["sessions of imsi-"],
        ("Policy", "default"): ["Subscriber imsi-001010000000003"],
    }

    async def scenario(api: Api) -> None:
        await api.apply(
            *BASE, pool("pool-b", "10.46.0.0/24", at="edge-a"), subscriber("imsi-001010000000003", policy="default")
        )
        await insert_session(api, ip="10.45.0.5", state="active")
        for (kind, name), words in refused.items():
            details = await fails(api.delete(kind, name), grpc.StatusCode.FAILED_PRECONDITION, "name")
            assert all(word in details for word in words), details
        assert len(await api.rows(Site)) == 1 and "upf-a" in api.cp.inventory.upf_by_node

    run(tmp_path, scenario, database_url)


def _task_names() -> set[str]:
    return {task.get_name() for task in asyncio.all_tasks()}


def test_delete_returns_the_object_and_takes_it_out_of_the_control_plane(tmp_path: Path) -> None:
    async def scenario(api: Api) -> None:
        await api.apply(*BASE, pool("pool-b", "10.46.0.0/24", at="edge-a"))
        await fails(api.delete("Pool", "nope"), grpc.StatusCode.NOT_FOUND, "name")
        await eventually(lambda: "n4-upf-a" in _task_names(), "the UPF's association task")
        gone = await api.delete("Pool", "pool-b")
        assert (gone.name, gone.pool.cidr, gone.pool.site, gone.pool.size) == ("pool-b", "10.46.0.0/24", "edge-a", 254)
        await fails(api.get("Pool", "pool-b"), grpc.StatusCode.NOT_FOUND, "name")
        assert {p.name for p in api.cp.inventory.pools.values()} == {"pool-a"}
        for kind, name in (("Subscriber", "imsi-001010000000001"), ("Policy", "default"), ("Pool", "pool-a")):
            await api.delete(kind, name)
        deleted = await api.delete("UPF", "upf-a")
        assert deleted.upf.capacity == 100 and deleted.upf.health in ("unknown", "down")
        assert not api.cp.inventory.upfs
        await eventually(lambda: "n4-upf-a" not in _task_names(), "the association task to end")
        kinds = ["pool.deleted", "subscriber.deleted", "policy.deleted", "pool.deleted", "upf.deleted"]
        assert (await api.event_kinds())[-5:] == kinds

    run(tmp_path, scenario)


# --- list ------------------------------------------------------------------------------------


def test_list_pages_in_name_order_with_filters(tmp_path: Path, database_url: str) -> None:
    # Also on PostgreSQL: the DNN filters and dependants look into JSON lists.
    code = grpc.StatusCode

    async def scenario(api: Api) -> None:
        supis = [f"imsi-00101000000000{n}" for n in range(5)]
        await api.apply(*BASE[:5], dnn("ims"), site("edge-b"), pool("pool-b", "10.46.0.0/24", at="edge-b"))
        await api.apply(*(subscriber(s, "ims" if n % 2 else "internet") for n, s in enumerate(supis)))
        seen, token, pages = [], "", 0
        while not pages or token:
            page = await api.page("Subscriber", page_size=2, page_token=token)
            seen += [r.name for r in page.resources]
            token, pages = page.next_page_token, pages + 1
        assert (seen, pages) == (supis, 3)
        ims = await api.page("Subscriber", dnn="ims", page_size=1)
        assert [r.name for r in ims.resources] == [supis[1]] and ims.next_page_token
        rest = await api.page("Subscriber", dnn="ims", page_token=ims.next_page_token)
        assert [r.name for r in rest.resources] == [supis[3]] and not rest.next_page_token
        at_b = await api.page("pool", site="edge-b")
        assert [(r.name, r.pool.free) for r in at_b.resources] == [("pool-b", 254)]
        assert not (await api.page("UPF", dnn="ims")).resources and not (await api.page("UPF", site="z")).resources
        await fails(api.page("DNN", site="edge-a"), code.INVALID_ARGUMENT, "site")
        await fails(api.page("Site", dnn="ims"), code.INVALID_ARGUMENT, "dnn")
        await fails(api.page("Site", page_token="@@"), code.INVALID_ARGUMENT, "page_token")
        await fails(api.page("Site", page_token=ims.next_page_token), code.INVALID_ARGUMENT, "page_token")

    run(tmp_path, scenario, database_url)

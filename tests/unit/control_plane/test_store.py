"""control_plane.store.Store on SQLite and PostgreSQL: group commit, per-operation failure, close.

The worker is held on a gate (a first operation that waits for an event) while the test queues
the rest, so the batching is decided by the queue, not by how fast the threads happen to run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence

import pytest
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from control_plane.store import Store, StoreClosed
from db.engine import make_engine, upgrade
from db.models import Subscriber

N = 100


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    upgrade(database_url)
    store = Store(make_engine(database_url))
    try:
        yield store
    finally:
        store.close()


def add_subscriber(supi: str) -> Callable[[Connection], str]:
    def op(conn: Connection) -> str:
        conn.execute(insert(Subscriber).values(supi=supi, allowed_dnns=["internet"]))
        return supi

    return op


def supis(store: Store) -> set[str]:
    return set(store.run_sync(lambda c: c.execute(select(Subscriber.supi)).scalars().all()))


async def gated(store: Store, ops: list[Callable[[Connection], str]]) -> list[str | BaseException]:
    """Run ``ops`` concurrently while the worker waits on a gate until every one is queued."""
    gate = threading.Event()

    def hold(conn: Connection) -> str:
        gate.wait(timeout=60)
        return "gate"

    first = asyncio.ensure_future(store.run(hold))
    await asyncio.sleep(0)  # the gate is queued first
    rest = [asyncio.ensure_future(store.run(op)) for op in ops]
    await asyncio.sleep(0)  # each task has put its operation on the queue
    assert not any(task.done() for task in rest)
    gate.set()
    assert await first == "gate"
    return list(await asyncio.gather(*rest, return_exceptions=True))


def test_concurrent_operations_share_commits(store: Store) -> None:
    names = [f"imsi-00101{n:010d}" for n in range(N)]

    results = asyncio.run(gated(store, [add_subscriber(name) for name in names]))

    assert results == names
    assert store.operations == N + 1  # the gate too
    assert store.commits < store.operations
    assert supis(store) == set(names)


def test_a_failing_operation_fails_alone(store: Store) -> None:
    taken = "imsi-001010000099999"
    store.run_sync(add_subscriber(taken))
    names = [f"imsi-00101{n:010d}" for n in range(20)]
    ops = [add_subscriber(name) for name in names]
    ops.insert(7, add_subscriber(taken))  # unique supi: IntegrityError in the middle of the batch

    results = asyncio.run(gated(store, ops))

    assert isinstance(results[7], IntegrityError)
    assert results[:7] + results[8:] == names
    assert supis(store) == {taken, *names}


def test_closed_store_refuses_work(store: Store) -> None:
    async def scenario() -> None:
        assert await store.run(add_subscriber("imsi-001010000000001")) == "imsi-001010000000001"
        store.close()
        with pytest.raises(StoreClosed):
            await store.run(add_subscriber("imsi-001010000000002"))

    asyncio.run(scenario())
    # close() disposed the engine; run_sync opens a fresh pool on the calling thread.
    assert supis(store) == {"imsi-001010000000001"}


def add_subscribers(conn: Connection, names: Sequence[str]) -> list[str]:
    """A bulk operation: one multi-row INSERT for every caller of the batch."""
    calls.append(len(names))
    conn.execute(insert(Subscriber), [{"supi": name, "allowed_dnns": ["internet"]} for name in names])
    return [name.upper() for name in names]


calls: list[int] = []


async def gated_bulk(store: Store, names: list[str], plain_at: int) -> list[str | BaseException]:
    """``names`` queued as bulk operations behind a gate, one plain operation among them."""
    gate = threading.Event()

    def hold(conn: Connection) -> str:
        gate.wait(timeout=60)
        return "gate"

    first = asyncio.ensure_future(store.run(hold))
    await asyncio.sleep(0)
    tasks = [asyncio.ensure_future(store.run_bulk(add_subscribers, name)) for name in names]
    tasks.insert(plain_at, asyncio.ensure_future(store.run(add_subscriber("imsi-001019999999999"))))
    await asyncio.sleep(0)
    gate.set()
    assert await first == "gate"
    return list(await asyncio.gather(*tasks, return_exceptions=True))


def test_bulk_operations_run_once_per_batch(store: Store) -> None:
    calls.clear()
    names = [f"imsi-00101{n:010d}" for n in range(N)]

    results = asyncio.run(gated_bulk(store, names, plain_at=10))

    # Each caller gets its own result; the batch ran the bulk operation once for all of them.
    assert results[:10] + results[11:] == [name.upper() for name in names]
    assert results[10] == "imsi-001019999999999"
    assert calls == [N]
    assert supis(store) == {*names, "imsi-001019999999999"}


def test_a_failing_bulk_operation_is_retried_per_caller(store: Store) -> None:
    taken = "imsi-001010000099999"
    store.run_sync(add_subscriber(taken))
    calls.clear()
    names = [f"imsi-00101{n:010d}" for n in range(20)]
    names.insert(7, taken)  # its row violates the unique supi: the whole multi-row INSERT fails

    results = asyncio.run(gated_bulk(store, names, plain_at=0))

    bulk = results[1:]
    assert isinstance(bulk[7], IntegrityError)
    assert bulk[:7] + bulk[8:] == [name.upper() for name in names if name != taken]
    assert results[0] == "imsi-001019999999999"
    assert calls[0] == len(names) and calls[1:] == [1] * len(names)  # then each caller alone
    assert supis(store) == {*names, "imsi-001019999999999"}

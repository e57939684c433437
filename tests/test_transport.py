"""Tests of the event transport (stream.transport, stream.memory).

``TestTransportContract`` is the backend-neutral contract: it only uses the
:class:`~stream.transport.Transport` interface and runs once per entry of the
``transport`` fixture's ``params``.  To add a backend, add its name to
``BACKENDS`` and a branch to :func:`make_transport`; the helpers already
poll with deadlines (see :func:`timeouts`) so that asynchronous backends such
as Kafka pass too.  Topic and group names are unique per test, so a shared
Kafka broker can be reused between tests and runs.

``TestMemoryTransport`` covers behaviour specific to the in-memory broker and
``TestPartitioner`` the murmur2 partitioner (compared with kafka-python when it
is installed).
"""

from __future__ import annotations

import dataclasses
import doctest
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

import stream.memory
import stream.transport
from stream.memory import MemoryTransport
from stream.transport import (
    Consumer,
    Record,
    Transport,
    TransportError,
    murmur2,
    partition_for,
)

BACKENDS = ["memory", "kafka"]


def make_transport(backend: str, broker=None) -> Transport:
    """Build a fresh transport for ``backend`` (``broker``: the tansu fixture, for "kafka").

    The Kafka transport pickles values of the test topics (both ends are this
    process), so any Python value round-trips with its type, as in memory.
    """
    if backend == "memory":
        return MemoryTransport()
    if backend == "kafka":
        from stream.codecs import Codecs, PickleCodec
        from stream.kafka import KafkaTransport

        return KafkaTransport(broker.settings(), Codecs(default=PickleCodec(), trust_pickle=True),
                              topic_prefix=f"contract-{uuid.uuid4().hex[:8]}.")
    raise ValueError(f"unknown transport backend {backend!r}")


#: Bound of waits for something that must happen (generous: a loaded machine is slow, not wrong).
WAIT_S = 120.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Wait until ``condition()`` holds, or fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        time.sleep(0.005)


def timeouts(transport: Transport) -> tuple[float, float]:
    """``(arrival, quiet)`` seconds for ``transport``.

    ``arrival`` bounds the wait for records that must arrive; ``quiet`` is how
    long to listen to make sure nothing more arrives.  The in-memory broker is
    synchronous, a network broker needs real waits.
    """
    if isinstance(transport, MemoryTransport):
        return 2.0, 0.0
    return WAIT_S, 2.0


@pytest.fixture(params=BACKENDS)
def transport(request: pytest.FixtureRequest) -> Iterator[Transport]:
    broker = request.getfixturevalue("kafka_broker") if request.param == "kafka" else None
    t = make_transport(request.param, broker)
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Return a function making names unique to this test (topics, groups)."""
    suffix = uuid.uuid4().hex[:10]
    return lambda base: f"{base}-{suffix}"


def drain(consumers: Consumer | Sequence[Consumer], n: int, timeout: float) -> list[Record]:
    """Poll ``consumers`` (round-robin) until ``n`` records arrived or ``timeout``.

    Never asks for more than the missing number of records, so that the
    positions of the consumers end exactly after the returned records.
    """
    if isinstance(consumers, Consumer):
        consumers = [consumers]
    got: list[Record] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        progress = False
        for c in consumers:
            if len(got) >= n:
                break
            batch = c.poll(max_records=n - len(got), timeout_s=0.0)
            progress |= bool(batch)
            got.extend(batch)
        if not progress and len(got) < n:
            # Block on the first consumer only briefly, so others get polled too.
            got.extend(consumers[0].poll(max_records=n - len(got), timeout_s=min(left, 0.2)))
    return got


def assert_quiet(consumer: Consumer, transport: Transport) -> None:
    """Assert that ``consumer`` has nothing more to deliver."""
    assert consumer.poll(timeout_s=timeouts(transport)[1]) == []


def wait_for_assignment(
    consumers: Sequence[Consumer],
    expected: set[tuple[str, int]],
    transport: Transport,
) -> list[set[tuple[str, int]]]:
    """Poll ``consumers`` until their assignments partition ``expected``.

    Must be used while the consumers have nothing to read (empty topic, or
    ``auto_offset_reset="latest"``): records returned meanwhile fail the test.
    """
    deadline = time.monotonic() + timeouts(transport)[0]
    while True:
        sets = [c.assignment() for c in consumers]
        if sum(map(len, sets)) == len(expected) and set().union(*sets) == expected:
            return sets
        assert time.monotonic() < deadline, f"assignment never settled: {sets}"
        for c in consumers:
            assert c.poll(timeout_s=0.1) == []


def by_partition(records: Sequence[Record]) -> dict[int, list[Record]]:
    out: dict[int, list[Record]] = defaultdict(list)
    for r in records:
        out[r.partition].append(r)
    return out


# ---------------------------------------------------------------------------
# Backend-neutral contract
# ---------------------------------------------------------------------------


class TestTransportContract:
    """Behaviour every :class:`~stream.transport.Transport` backend must have."""

    def test_send_poll_round_trip(self, transport: Transport, unique) -> None:
        topic = unique("roundtrip")
        transport.create_topic(topic, partitions=1)
        value = {"email": "e1", "label": "spam"}
        transport.send(topic, value, key="user-1", timestamp=1700000000.25)
        transport.send(topic, "second", timestamp=1700000001.5)
        transport.flush()
        c = transport.consumer([topic], group_id=unique("g"))
        recs = drain(c, 2, timeouts(transport)[0])
        assert len(recs) == 2
        first, second = recs
        assert isinstance(first, Record)
        assert (first.topic, first.partition, first.offset, first.key) == (topic, 0, 0, "user-1")
        assert first.value == {"email": "e1", "label": "spam"}
        assert first.timestamp == pytest.approx(1700000000.25, abs=1e-3)
        assert (second.offset, second.key, second.value) == (1, None, "second")
        assert second.timestamp == pytest.approx(1700000001.5, abs=1e-3)
        assert_quiet(c, transport)

    def test_default_timestamp_is_send_time(self, transport: Transport, unique) -> None:
        topic = unique("ts")
        before = time.time()
        transport.send(topic, 1)
        transport.flush()
        after = time.time()
        c = transport.consumer([topic], group_id=unique("g"))
        (rec,) = drain(c, 1, timeouts(transport)[0])
        assert before - 1.0 <= rec.timestamp <= after + 1.0

    @pytest.mark.parametrize(
        "value",
        [{"a": [1, 2], "b": None}, [1, "x", 2.5], "text", b"\x00\xffbytes", 42, 3.25, None],
        ids=["dict", "list", "str", "bytes", "int", "float", "none"],
    )
    def test_values_round_trip(self, transport: Transport, unique, value: object) -> None:
        topic = unique("values")
        transport.send(topic, value, key="k")
        transport.flush()
        c = transport.consumer([topic], group_id=unique("g"))
        (rec,) = drain(c, 1, timeouts(transport)[0])
        assert rec.value == value
        assert type(rec.value) is type(value)

    def test_numpy_values_round_trip(self, transport: Transport, unique) -> None:
        np = pytest.importorskip("numpy")
        topic = unique("numpy")
        arr = np.arange(12, dtype=np.float32).reshape(3, 4)
        transport.send(topic, arr)
        transport.flush()
        c = transport.consumer([topic], group_id=unique("g"))
        (rec,) = drain(c, 1, timeouts(transport)[0])
        assert isinstance(rec.value, np.ndarray)
        assert rec.value.dtype == arr.dtype
        np.testing.assert_array_equal(rec.value, arr)

    def test_same_key_always_same_partition(self, transport: Transport, unique) -> None:
        topic = unique("keys")
        transport.create_topic(topic, partitions=4)
        keys = [f"user-{i}" for i in range(20)]
        for rnd in range(5):
            for k in keys:
                transport.send(topic, rnd, key=k)
        transport.flush()
        c = transport.consumer([topic], group_id=unique("g"))
        recs = drain(c, 100, timeouts(transport)[0])
        assert len(recs) == 100
        parts: dict[str, set[int]] = defaultdict(set)
        for r in recs:
            parts[r.key].add(r.partition)
        assert set(parts) == set(keys)
        for k, ps in parts.items():
            assert ps == {partition_for(k, 4)}, k
        assert len({p for ps in parts.values() for p in ps}) > 1  # keys do spread

    def test_per_partition_ordering(self, transport: Transport, unique) -> None:
        topic = unique("order")
        transport.create_topic(topic, partitions=3)
        seq: Counter[str] = Counter()
        for i in range(300):
            k = f"k{i % 10}"
            transport.send(topic, (k, seq[k]), key=k)
            seq[k] += 1
        transport.flush()
        c = transport.consumer([topic], group_id=unique("g"))
        recs: list[Record] = []
        deadline = time.monotonic() + timeouts(transport)[0]
        while len(recs) < 300 and time.monotonic() < deadline:
            recs.extend(c.poll(max_records=7, timeout_s=0.2))  # many small polls
        assert len(recs) == 300
        for p, rs in by_partition(recs).items():
            assert [r.offset for r in rs] == list(range(len(rs))), p
        next_seq: Counter[str] = Counter()
        for r in recs:
            k, s = r.value
            assert r.key == k
            assert s == next_seq[k], "records of one key out of order"
            next_seq[k] += 1
        assert next_seq == seq

    def test_poll_respects_max_records(self, transport: Transport, unique) -> None:
        topic = unique("max")
        transport.create_topic(topic, partitions=2)
        transport.send_many(topic, ((f"k{i}", i) for i in range(50)))
        transport.flush()
        c = transport.consumer([topic], group_id=unique("g"))
        recs = drain(c, 50, timeouts(transport)[0])
        assert len(recs) == 50
        c2 = transport.consumer([topic], group_id=unique("g2"))
        deadline = time.monotonic() + timeouts(transport)[0]
        seen = 0
        while seen < 50 and time.monotonic() < deadline:
            batch = c2.poll(max_records=8, timeout_s=0.2)
            assert len(batch) <= 8
            seen += len(batch)
        assert seen == 50

    def test_commit_then_new_member_continues_after_committed(
        self, transport: Transport, unique
    ) -> None:
        topic, group = unique("commit"), unique("g")
        transport.create_topic(topic, partitions=1)
        transport.send_many(topic, ((None, i) for i in range(10)))
        transport.flush()
        arrival = timeouts(transport)[0]
        c1 = transport.consumer([topic], group_id=group)
        assert c1.committed(topic, 0) is None
        first = drain(c1, 4, arrival)
        assert [r.value for r in first] == [0, 1, 2, 3]
        c1.commit()
        assert c1.committed(topic, 0) == 4
        c1.close()
        c2 = transport.consumer([topic], group_id=group)
        rest = drain(c2, 6, arrival)
        assert [r.offset for r in rest] == [4, 5, 6, 7, 8, 9]
        assert [r.value for r in rest] == [4, 5, 6, 7, 8, 9]
        assert_quiet(c2, transport)
        assert c2.committed(topic, 0) == 4

    def test_uncommitted_records_redelivered_after_close(
        self, transport: Transport, unique
    ) -> None:
        topic, group = unique("redeliver"), unique("g")
        transport.create_topic(topic, partitions=1)
        transport.send_many(topic, ((None, i) for i in range(10)))
        transport.flush()
        arrival = timeouts(transport)[0]
        c1 = transport.consumer([topic], group_id=group)
        assert [r.value for r in drain(c1, 3, arrival)] == [0, 1, 2]
        c1.commit()
        assert [r.value for r in drain(c1, 4, arrival)] == [3, 4, 5, 6]  # never committed
        c1.close()
        c2 = transport.consumer([topic], group_id=group)
        again = drain(c2, 7, arrival)
        assert [r.value for r in again] == [3, 4, 5, 6, 7, 8, 9]
        assert_quiet(c2, transport)

    def test_seek_to_committed_rewinds(self, transport: Transport, unique) -> None:
        topic = unique("seek")
        transport.create_topic(topic, partitions=1)
        transport.send_many(topic, ((None, i) for i in range(10)))
        transport.flush()
        arrival = timeouts(transport)[0]
        c = transport.consumer([topic], group_id=unique("g"))
        assert [r.value for r in drain(c, 2, arrival)] == [0, 1]
        c.seek_to_committed()  # nothing committed: back to auto_offset_reset (earliest)
        assert [r.value for r in drain(c, 5, arrival)] == [0, 1, 2, 3, 4]
        c.commit()
        assert [r.value for r in drain(c, 3, arrival)] == [5, 6, 7]
        c.seek_to_committed()
        assert [r.value for r in drain(c, 5, arrival)] == [5, 6, 7, 8, 9]
        assert c.committed(topic, 0) == 5

    def test_members_of_a_group_split_partitions(self, transport: Transport, unique) -> None:
        topic, group = unique("split"), unique("g")
        transport.create_topic(topic, partitions=4)
        c1 = transport.consumer([topic], group_id=group)
        c2 = transport.consumer([topic], group_id=group)
        a1, a2 = wait_for_assignment([c1, c2], {(topic, p) for p in range(4)}, transport)
        assert a1 and a2 and not (a1 & a2)

        transport.send_many(topic, ((f"user-{i % 37}", i) for i in range(200)))
        transport.flush()
        got: dict[int, list[Record]] = {1: [], 2: []}
        deadline = time.monotonic() + timeouts(transport)[0]
        while len(got[1]) + len(got[2]) < 200 and time.monotonic() < deadline:
            got[1].extend(c1.poll(max_records=50, timeout_s=0.05))
            got[2].extend(c2.poll(max_records=50, timeout_s=0.05))
        assert got[1] and got[2]
        assert all((r.topic, r.partition) in a1 for r in got[1])
        assert all((r.topic, r.partition) in a2 for r in got[2])
        values = [r.value for r in got[1] + got[2]]
        assert sorted(values) == list(range(200))  # everything, exactly once
        assert_quiet(c1, transport)
        assert_quiet(c2, transport)

    def test_member_leaving_hands_partitions_over(self, transport: Transport, unique) -> None:
        topic, group = unique("leave"), unique("g")
        transport.create_topic(topic, partitions=2)
        everything = {(topic, 0), (topic, 1)}
        c1 = transport.consumer([topic], group_id=group)
        c2 = transport.consumer([topic], group_id=group)
        wait_for_assignment([c1, c2], everything, transport)
        c2.close()
        wait_for_assignment([c1], everything, transport)

    def test_groups_read_independently(self, transport: Transport, unique) -> None:
        topic = unique("groups")
        transport.create_topic(topic, partitions=3)
        transport.send_many(topic, ((f"k{i}", i) for i in range(60)))
        transport.flush()
        arrival = timeouts(transport)[0]
        ga = transport.consumer([topic], group_id=unique("ga"))
        gb = transport.consumer([topic], group_id=unique("gb"))
        ra = drain(ga, 60, arrival)
        ga.commit()
        rb = drain(gb, 60, arrival)
        assert sorted(r.value for r in ra) == list(range(60))
        assert sorted(r.value for r in rb) == list(range(60))
        assert all(gb.committed(topic, p) is None for p in range(3))
        assert sum(ga.committed(topic, p) for p in range(3)) == 60

    def test_subscribe_to_several_topics(self, transport: Transport, unique) -> None:
        t1, t2 = unique("multi-a"), unique("multi-b")
        transport.create_topic(t1, 2)
        transport.create_topic(t2, 1)
        transport.send_many(t1, ((f"k{i}", ("a", i)) for i in range(10)))
        transport.send_many(t2, ((None, ("b", i)) for i in range(5)))
        transport.flush()
        c = transport.consumer([t1, t2], group_id=unique("g"))
        recs = drain(c, 15, timeouts(transport)[0])
        assert Counter(r.topic for r in recs) == {t1: 10, t2: 5}
        expected = {("a", i) for i in range(10)} | {("b", i) for i in range(5)}
        assert {r.value for r in recs} == expected
        assert c.assignment() == {(t1, 0), (t1, 1), (t2, 0)}

    def test_auto_offset_reset_latest(self, transport: Transport, unique) -> None:
        topic = unique("latest")
        transport.create_topic(topic, partitions=2)
        transport.send_many(topic, ((f"old-{i}", "old") for i in range(5)))
        transport.flush()
        c = transport.consumer([topic], group_id=unique("g"), auto_offset_reset="latest")
        wait_for_assignment([c], {(topic, 0), (topic, 1)}, transport)
        assert_quiet(c, transport)
        transport.send_many(topic, ((f"new-{i}", f"new-{i}") for i in range(3)))
        transport.flush()
        recs = drain(c, 3, timeouts(transport)[0])
        assert sorted(r.value for r in recs) == ["new-0", "new-1", "new-2"]
        assert_quiet(c, transport)

    def test_auto_offset_reset_ignored_when_group_committed(
        self, transport: Transport, unique
    ) -> None:
        topic, group = unique("reset-committed"), unique("g")
        transport.create_topic(topic, partitions=1)
        transport.send_many(topic, ((None, i) for i in range(6)))
        transport.flush()
        arrival = timeouts(transport)[0]
        c1 = transport.consumer([topic], group_id=group)
        drain(c1, 2, arrival)
        c1.commit()
        c1.close()
        c2 = transport.consumer([topic], group_id=group, auto_offset_reset="latest")
        assert [r.value for r in drain(c2, 4, arrival)] == [2, 3, 4, 5]

    def test_invalid_auto_offset_reset(self, transport: Transport, unique) -> None:
        with pytest.raises(TransportError, match="auto_offset_reset"):
            transport.consumer([unique("t")], group_id=unique("g"), auto_offset_reset="smallest")

    def test_topics_must_be_a_sequence_of_names(self, transport: Transport, unique) -> None:
        with pytest.raises(TypeError):
            transport.consumer(unique("t"), group_id=unique("g"))  # type: ignore[arg-type]

    def test_end_offsets(self, transport: Transport, unique) -> None:
        topic = unique("ends")
        transport.create_topic(topic, partitions=3)
        assert transport.end_offsets(topic) == {0: 0, 1: 0, 2: 0}
        keys = [f"user-{i % 11}" for i in range(40)]
        for i, k in enumerate(keys):
            transport.send(topic, i, key=k)
        transport.flush()
        expected = Counter(partition_for(k, 3) for k in keys)
        assert transport.end_offsets(topic) == {p: expected[p] for p in range(3)}

    def test_end_offsets_unknown_topic(self, transport: Transport, unique) -> None:
        with pytest.raises(TransportError):
            transport.end_offsets(unique("missing"))

    def test_send_many(self, transport: Transport, unique) -> None:
        topic = unique("many")
        transport.create_topic(topic, partitions=2)
        items = [(f"k{i % 5}" if i % 3 else None, {"i": i}) for i in range(100)]
        transport.send_many(topic, iter(items))  # any iterable, even a one-shot one
        transport.flush()
        assert sum(transport.end_offsets(topic).values()) == 100
        c = transport.consumer([topic], group_id=unique("g"))
        recs = drain(c, 100, timeouts(transport)[0])
        assert sorted(r.value["i"] for r in recs) == list(range(100))
        for r in recs:
            assert r.key == items[r.value["i"]][0]
            if r.key is not None:
                assert r.partition == partition_for(r.key, 2)
        per_key: dict[str | None, list[int]] = defaultdict(list)
        for r in recs:
            if r.key is not None:
                per_key[r.key].append(r.value["i"])
        assert all(v == sorted(v) for v in per_key.values())

    def test_send_to_unknown_topic_auto_creates_one_partition(
        self, transport: Transport, unique
    ) -> None:
        topic = unique("auto")
        transport.send(topic, "x", key="k")
        transport.flush()
        assert transport.end_offsets(topic) == {0: 1}
        transport.create_topic(topic, partitions=1)  # same count: fine
        with pytest.raises(TransportError):
            transport.create_topic(topic, partitions=3)

    def test_create_topic_is_idempotent(self, transport: Transport, unique) -> None:
        topic = unique("idem")
        transport.create_topic(topic, partitions=3)
        transport.send(topic, 1, key="a")
        transport.create_topic(topic, partitions=3)
        transport.flush()
        assert sum(transport.end_offsets(topic).values()) == 1
        with pytest.raises(TransportError, match="partitions"):
            transport.create_topic(topic, partitions=2)

    def test_closed_consumer_raises(self, transport: Transport, unique) -> None:
        topic = unique("closed")
        transport.create_topic(topic)
        c = transport.consumer([topic], group_id=unique("g"))
        c.close()
        c.close()  # idempotent
        for call in (
            lambda: c.poll(),
            lambda: c.commit(),
            lambda: c.committed(topic, 0),
            lambda: c.assignment(),
            lambda: c.seek_to_committed(),
        ):
            with pytest.raises(TransportError):
                call()

    def test_consumer_context_manager_closes(self, transport: Transport, unique) -> None:
        topic = unique("ctx")
        transport.send(topic, 1)
        transport.flush()
        with transport.consumer([topic], group_id=unique("g")) as c:
            assert [r.value for r in drain(c, 1, timeouts(transport)[0])] == [1]
        with pytest.raises(TransportError):
            c.poll()

    def test_closed_transport_raises_and_closes_consumers(
        self, transport: Transport, unique
    ) -> None:
        topic = unique("tclosed")
        transport.create_topic(topic)
        c = transport.consumer([topic], group_id=unique("g"))
        transport.close()
        transport.close()  # idempotent
        with pytest.raises(TransportError):
            transport.send(topic, 1)
        with pytest.raises(TransportError):
            transport.consumer([topic], group_id=unique("g"))
        with pytest.raises(TransportError):
            c.poll()


# ---------------------------------------------------------------------------
# In-memory broker specifics
# ---------------------------------------------------------------------------


class TestMemoryTransport:
    def test_values_are_stored_as_given(self) -> None:
        bus = MemoryTransport()
        payload = {"nested": [1, 2, 3]}
        bus.send("t", payload)
        (rec,) = bus.consumer(["t"], "g").poll()
        assert rec.value is payload

    def test_record_is_frozen(self) -> None:
        bus = MemoryTransport()
        bus.send("t", 1)
        (rec,) = bus.consumer(["t"], "g").poll()
        with pytest.raises(dataclasses.FrozenInstanceError):
            rec.offset = 3  # type: ignore[misc]
        (again,) = bus.consumer(["t"], "other").poll()
        assert again == rec

    def test_keyless_records_round_robin(self) -> None:
        bus = MemoryTransport()
        bus.create_topic("t", partitions=3)
        for i in range(7):
            bus.send("t", i)
        bus.send_many("t", [(None, i) for i in range(7, 9)])
        assert bus.end_offsets("t") == {0: 3, 1: 3, 2: 3}

    def test_non_str_key_rejected(self) -> None:
        bus = MemoryTransport()
        bus.create_topic("t", partitions=2)
        with pytest.raises(TypeError):
            bus.send("t", 1, key=123)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            bus.send_many("t", [(b"bytes-key", 1)])  # type: ignore[list-item]

    def test_bad_timestamp_rejected_without_corrupting_the_log(self) -> None:
        bus = MemoryTransport()
        bus.send("t", "ok", timestamp=5)
        with pytest.raises(TypeError):
            bus.send("t", "bad", timestamp="yesterday")  # type: ignore[arg-type]
        assert bus.end_offsets("t") == {0: 1}
        bus.send("t", "ok again")
        recs = bus.consumer(["t"], "g").poll()
        assert [(r.offset, r.value) for r in recs] == [(0, "ok"), (1, "ok again")]
        assert recs[0].timestamp == 5.0 and isinstance(recs[0].timestamp, float)

    def test_range_assignment(self) -> None:
        bus = MemoryTransport()
        bus.create_topic("t", partitions=5)
        a = bus.consumer(["t"], "g")
        b = bus.consumer(["t"], "g")
        assert a.assignment() == {("t", 0), ("t", 1), ("t", 2)}
        assert b.assignment() == {("t", 3), ("t", 4)}

    def test_more_members_than_partitions(self) -> None:
        bus = MemoryTransport()
        bus.create_topic("t", partitions=2)
        members = [bus.consumer(["t"], "g") for _ in range(3)]
        bus.send_many("t", [(f"k{i}", i) for i in range(10)])
        assert [len(m.assignment()) for m in members] == [1, 1, 0]
        assert members[2].poll() == []
        members[0].close()
        assert [len(m.assignment()) for m in members[1:]] == [1, 1]

    def test_join_rebalance_rewinds_to_committed(self) -> None:
        bus = MemoryTransport()
        bus.create_topic("t", partitions=2)
        bus.send_many("t", [(f"user-{i}", i) for i in range(40)])
        a = bus.consumer(["t"], "g")
        first = a.poll(max_records=10)
        a.commit()
        uncommitted = a.poll(max_records=10)
        assert len(first) == len(uncommitted) == 10
        b = bus.consumer(["t"], "g")  # join -> rebalance -> rewind to committed
        (tp_a,) = a.assignment()
        (tp_b,) = b.assignment()
        got = a.poll(max_records=100) + b.poll(max_records=100)
        assert len(got) == 30
        assert sorted(r.value for r in got + first) == list(range(40))
        assert a.position(*tp_a) == bus.end_offsets("t")[tp_a[1]]
        with pytest.raises(TransportError):
            a.position(*tp_b)

    def test_topic_created_after_subscription_is_assigned(self) -> None:
        bus = MemoryTransport()
        c = bus.consumer(["later", "auto"], "g")
        assert c.assignment() == set()
        assert c.poll() == []
        bus.create_topic("later", partitions=2)
        assert c.assignment() == {("later", 0), ("later", 1)}
        bus.send("auto", "x")  # auto-created with one partition
        assert c.assignment() == {("later", 0), ("later", 1), ("auto", 0)}
        assert [r.value for r in c.poll()] == ["x"]

    def test_latest_on_topic_created_after_subscription_sees_first_record(self) -> None:
        bus = MemoryTransport()
        c = bus.consumer(["new"], "g", auto_offset_reset="latest")
        bus.send("new", "first")
        assert [r.value for r in c.poll()] == ["first"]

    def test_poll_shares_budget_fairly(self) -> None:
        bus = MemoryTransport()
        bus.create_topic("t", partitions=4)
        keys = {
            p: next(f"k{i}" for i in range(1000) if partition_for(f"k{i}", 4) == p)
            for p in range(4)
        }
        for p, k in keys.items():
            bus.send_many("t", [(k, (p, i)) for i in range(100)])
        c = bus.consumer(["t"], "g")
        assert Counter(r.partition for r in c.poll(max_records=40)) == {0: 10, 1: 10, 2: 10, 3: 10}
        small = [r.partition for _ in range(4) for r in c.poll(max_records=2)]
        assert Counter(small) == {0: 2, 1: 2, 2: 2, 3: 2}  # tiny budgets rotate

    def test_poll_gives_unused_share_to_other_partitions(self) -> None:
        bus = MemoryTransport()
        bus.create_topic("t", partitions=2)
        k0 = next(f"k{i}" for i in range(100) if partition_for(f"k{i}", 2) == 0)
        k1 = next(f"k{i}" for i in range(100) if partition_for(f"k{i}", 2) == 1)
        bus.send_many("t", [(k0, i) for i in range(1000)] + [(k1, i) for i in range(5)])
        recs = bus.consumer(["t"], "g").poll(max_records=100)
        assert Counter(r.partition for r in recs) == {0: 95, 1: 5}
        assert [r.offset for r in recs if r.partition == 0] == list(range(95))

    def test_blocking_poll_wakes_up_on_send(self) -> None:
        bus = MemoryTransport()
        c = bus.consumer(["t"], "g")
        bus.create_topic("t")
        got: list[list[Record]] = []
        th = threading.Thread(target=lambda: got.append(c.poll(timeout_s=WAIT_S)), daemon=True)
        th.start()
        wait_until(lambda: bus._waiters == 1, "the poll to block waiting for records")
        bus.send("t", "hello")
        th.join(WAIT_S)
        assert not th.is_alive(), "the blocked poll did not wake up on send"
        assert [[r.value for r in recs] for recs in got] == [["hello"]]

    def test_poll_timeout_returns_empty(self) -> None:
        bus = MemoryTransport()
        bus.create_topic("t")
        c = bus.consumer(["t"], "g")
        t0 = time.monotonic()
        assert c.poll(timeout_s=0.05) == []
        assert time.monotonic() - t0 >= 0.04

    def test_close_wakes_blocked_poll(self) -> None:
        bus = MemoryTransport()
        bus.create_topic("t")
        c = bus.consumer(["t"], "g")
        errors: list[BaseException] = []

        def blocked() -> None:
            try:
                c.poll(timeout_s=WAIT_S)
            except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                errors.append(exc)

        th = threading.Thread(target=blocked, daemon=True)
        th.start()
        wait_until(lambda: bus._waiters == 1, "the poll to block waiting for records")
        c.close()
        th.join(WAIT_S)
        assert not th.is_alive(), "close() did not wake the blocked poll"
        assert len(errors) == 1 and isinstance(errors[0], TransportError)

    def test_concurrent_producers_and_consumers(self) -> None:
        bus = MemoryTransport()
        bus.create_topic("t", partitions=4)
        n_threads, per_thread = 4, 5000
        consumed: list[Record] = []
        stop = threading.Event()

        def produce(tid: int) -> None:
            for i in range(per_thread):
                bus.send("t", (tid, i), key=f"producer-{tid}")

        def consume(c) -> None:
            while not stop.is_set() or len(consumed) < n_threads * per_thread:
                batch = c.poll(max_records=256, timeout_s=0.05)
                consumed.extend(batch)
                if stop.is_set() and not batch:
                    break

        consumers = [bus.consumer(["t"], "g") for _ in range(2)]
        readers = [threading.Thread(target=consume, args=(c,)) for c in consumers]
        writers = [threading.Thread(target=produce, args=(t,)) for t in range(n_threads)]
        for th in readers + writers:
            th.start()
        for th in writers:
            th.join()
        stop.set()
        for th in readers:
            th.join(WAIT_S)
            assert not th.is_alive(), f"a reader still runs after {WAIT_S:.0f} s ({len(consumed)} records read)"
        assert len(consumed) == n_threads * per_thread
        per_producer: dict[int, list[int]] = defaultdict(list)
        for r in consumed:
            per_producer[r.value[0]].append(r.value[1])
        for tid in range(n_threads):
            assert per_producer[tid] == list(range(per_thread))  # in order, no dup
        assert sum(bus.end_offsets("t").values()) == n_threads * per_thread

    def test_closed_transport_rejects_everything(self) -> None:
        bus = MemoryTransport()
        bus.create_topic("t")
        bus.close()
        for call in (
            lambda: bus.send("t", 1),
            lambda: bus.send_many("t", [(None, 1)]),
            lambda: bus.create_topic("u"),
            lambda: bus.end_offsets("t"),
            lambda: bus.flush(),
        ):
            with pytest.raises(TransportError):
                call()

    def test_argument_validation(self) -> None:
        bus = MemoryTransport()
        with pytest.raises(TransportError):
            bus.create_topic("t", partitions=0)
        with pytest.raises(TransportError):
            bus.create_topic("")
        with pytest.raises(TransportError):
            bus.consumer([], "g")
        with pytest.raises(TransportError):
            bus.consumer(["t"], "")
        c = bus.consumer(["t"], "g")
        with pytest.raises(TransportError):
            c.poll(max_records=0)
        with pytest.raises(TransportError):
            c.poll(timeout_s=-1)

    @pytest.mark.parametrize("module", [stream.memory, stream.transport], ids=lambda m: m.__name__)
    def test_doctests(self, module) -> None:
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0
        assert result.failed == 0


# ---------------------------------------------------------------------------
# Partitioner
# ---------------------------------------------------------------------------

# Computed with kafka-python 3.0.12:
#   (kafka.partitioner.default.murmur2(key.encode()) & 0x7fffffff) % n
KNOWN_PARTITIONS = {
    # key: {partitions: partition}
    "user-1": {1: 0, 3: 2, 8: 4, 1000: 828},
    "email-000042": {1: 0, 3: 0, 8: 6, 1000: 86},
    "hé-ünïcode-ключ": {1: 0, 3: 1, 8: 3, 1000: 107},
}

# Java client, org.apache.kafka.common.utils.UtilsTest#testMurmur2 (signed ints).
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def _signed32(x: int) -> int:
    return x - (1 << 32) if x >= 1 << 31 else x


class TestPartitioner:
    @pytest.mark.parametrize("key", sorted(KNOWN_PARTITIONS))
    def test_known_kafka_python_values(self, key: str) -> None:
        for n, expected in KNOWN_PARTITIONS[key].items():
            assert partition_for(key, n) == expected

    @pytest.mark.parametrize("data,expected", sorted(JAVA_MURMUR2.items()))
    def test_murmur2_matches_java_client(self, data: bytes, expected: int) -> None:
        assert _signed32(murmur2(data)) == expected

    @pytest.mark.parametrize(
        "key,expected",
        [("", 681), ("a", 524), ("ab", 434), ("abc", 107), ("123456789", 566), ("\x00 ", 742)],
    )
    def test_java_partitioner_compatibility(self, key: str, expected: int) -> None:
        # Values of kafka-python's test_murmur2_java_compatibility (1000 partitions).
        assert partition_for(key, 1000) == expected

    def test_stable_within_and_across_processes(self) -> None:
        keys = [f"user-{i}" for i in range(50)]
        here = [partition_for(k, 7) for k in keys]
        assert here == [partition_for(k, 7) for k in keys]
        root = Path(__file__).resolve().parents[1]
        code = (
            "from stream.transport import partition_for;"
            "print([partition_for(f'user-{i}', 7) for i in range(50)])"
        )
        for seed in ("1", "2"):  # Python's str hash randomization must not matter
            env = {**os.environ, "PYTHONHASHSEED": seed}
            out = subprocess.run(
                [sys.executable, "-c", code], cwd=root, env=env,
                capture_output=True, text=True, check=True,
            ).stdout
            assert out.strip() == str(here)

    def test_none_keys_round_robin(self) -> None:
        got = [partition_for(None, 4) for _ in range(8)]
        assert Counter(got) == {0: 2, 1: 2, 2: 2, 3: 2}

    def test_invalid_arguments(self) -> None:
        with pytest.raises(TransportError):
            partition_for("k", 0)
        with pytest.raises(TypeError):
            partition_for(b"bytes", 3)  # type: ignore[arg-type]

    def test_murmur2_matches_kafka_python(self) -> None:
        default = pytest.importorskip("kafka.partitioner.default")
        rng = random.Random(1234)
        for length in range(0, 70):
            for _ in range(5):
                data = bytes(rng.getrandbits(8) for _ in range(length))
                assert murmur2(data) == default.murmur2(data), data
        for key in ["", "a", "user-1", "hé-ünïcode-ключ", "x" * 300, *KNOWN_PARTITIONS]:
            data = key.encode("utf-8")
            assert murmur2(data) == default.murmur2(data)
            for n in (1, 2, 3, 8, 12, 1000):
                assert partition_for(key, n) == (default.murmur2(data) & 0x7FFFFFFF) % n

    def test_matches_kafka_python_default_partitioner(self) -> None:
        default = pytest.importorskip("kafka.partitioner.default")
        partitioner = default.DefaultPartitioner()
        keys = [f"user-{i}" for i in range(200)] + list(KNOWN_PARTITIONS)
        for n in (1, 3, 8):
            parts = list(range(n))
            if hasattr(partitioner, "partition"):  # kafka-python >= 3

                class _Cluster:
                    def topics(self) -> set[str]:
                        return {"t"}

                    def partitions_for_topic(self, topic: str) -> set[int]:
                        return set(parts)

                    def available_partitions_for_topic(self, topic: str) -> set[int]:
                        return set(parts)

                def choose(k: str) -> int:
                    kb = k.encode()
                    return partitioner.partition("t", k, kb, None, None, _Cluster())

            else:  # kafka-python 2.x: DefaultPartitioner()(key_bytes, all, available)

                def choose(k: str) -> int:
                    return partitioner(k.encode(), parts, parts)

            for k in keys:
                assert partition_for(k, n) == choose(k), (k, n)

"""In-process broker with Kafka's semantics (no network, no serialization).

:class:`MemoryTransport` implements :class:`~stream.transport.Transport` with
plain Python lists guarded by one lock, so producers and consumers may live
in different threads of one process.  It reproduces the parts of Kafka that
the simulation relies on:

* topics made of partitions, dense offsets starting at 0, murmur2 key
  partitioning identical to Kafka's (:func:`~stream.transport.partition_for`),
  round-robin for records without a key;
* consumer groups with explicitly committed offsets per partition; members of
  a group split the partitions with Kafka's *range* assignor; a member joining
  or leaving, or a subscribed topic being created, triggers an (eager)
  rebalance that rewinds every member to the committed offsets, so records
  polled but not committed are delivered again -- at-least-once, like Kafka;
* ``auto_offset_reset`` (``"earliest"``/``"latest"``) for partitions without
  a committed offset;
* sending to an unknown topic auto-creates it with one partition.

Values are stored as given (dicts, bytes, numpy arrays...): a consumer
receives the very object that was sent, so do not mutate it afterwards.
Nothing is ever deleted (no retention).

Examples
--------
>>> from stream.memory import MemoryTransport
>>> with MemoryTransport() as bus:
...     bus.create_topic("feedback", partitions=2)
...     bus.send("feedback", {"email": "e1", "label": "spam"}, key="user-1")
...     bus.send_many("feedback", [("user-2", {"email": "e2", "label": "ham"})])
...     c = bus.consumer(["feedback"], group_id="trainer")
...     sorted(r.value["email"] for r in c.poll())
['e1', 'e2']

Implementation notes
--------------------
A partition stores keys, values and timestamps in three parallel columns
(two lists and an ``array('d')``); :class:`~stream.transport.Record` objects
are built by :meth:`MemoryConsumer.poll` and not kept by the broker.  Building
a frozen dataclass costs several times more than appending to a list, and
millions of long-lived records (or tuples wrapping the values) would be
tracked by the garbage collector and slow the whole process down.
"""

from __future__ import annotations

import itertools
import threading
from array import array
from collections.abc import Iterable, Sequence
from itertools import repeat
from time import monotonic as _monotonic
from time import time as _time

from stream.transport import (
    _HASH_CACHE,
    Consumer,
    Record,
    Transport,
    TransportError,
    check_auto_offset_reset,
    check_partitions,
    check_poll_args,
    check_subscription,
    check_topic_name,
    key_hash,
)

__all__ = ["MemoryConsumer", "MemoryTransport"]

_SEND_MANY_CHUNK = 4096  # records appended per lock acquisition in send_many

TopicPartition = tuple[str, int]


class _Partition:
    """Append-only log of one partition, as parallel columns indexed by offset."""

    __slots__ = ("keys", "values", "stamps")

    def __init__(self) -> None:
        self.keys: list[str | None] = []
        self.values: list[object] = []
        self.stamps = array("d")

    def __len__(self) -> int:
        return len(self.keys)


class _Topic:
    """Partitions of one topic."""

    __slots__ = ("name", "parts", "next_partition")

    def __init__(self, name: str, partitions: int) -> None:
        self.name = name
        self.parts = [_Partition() for _ in range(partitions)]
        self.next_partition = 0  # round-robin cursor for keyless records


class _Group:
    """Committed offsets and members of one consumer group."""

    __slots__ = ("group_id", "committed", "members", "generation")

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.committed: dict[TopicPartition, int] = {}
        self.members: list[MemoryConsumer] = []  # in join order
        self.generation = 0


class MemoryTransport(Transport):
    """Thread-safe in-memory broker implementing :class:`~stream.transport.Transport`.

    Examples
    --------
    Two members of a group split the partitions; uncommitted records come back
    after a member leaves:

    >>> bus = MemoryTransport()
    >>> bus.create_topic("emails", partitions=4)
    >>> bus.send_many("emails", ((f"user-{i}", i) for i in range(100)))
    >>> a = bus.consumer(["emails"], group_id="filter")
    >>> b = bus.consumer(["emails"], group_id="filter")
    >>> sorted(a.assignment()), sorted(b.assignment())
    ([('emails', 0), ('emails', 1)], [('emails', 2), ('emails', 3)])
    >>> seen = a.poll(max_records=1000) + b.poll(max_records=1000)
    >>> sorted(r.value for r in seen) == list(range(100))
    True
    >>> a.commit()
    >>> b.close()                       # b never committed
    >>> len(a.poll(max_records=1000)) == sum(r.partition >= 2 for r in seen)
    True
    >>> bus.end_offsets("emails") == {p: sum(r.partition == p for r in seen) for p in range(4)}
    True
    >>> bus.close()
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._waiters = 0  # consumers blocked in poll(timeout_s > 0)
        self._topics: dict[str, _Topic] = {}
        self._groups: dict[str, _Group] = {}
        self._consumers: list[MemoryConsumer] = []  # open consumers
        self._member_ids = itertools.count()
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<MemoryTransport {state} topics={len(self._topics)} "
            f"groups={len(self._groups)} consumers={len(self._consumers)}>"
        )

    # -- topics -------------------------------------------------------------

    def create_topic(self, name: str, partitions: int = 1) -> None:
        """Create topic ``name`` with ``partitions`` partitions (idempotent).

        Raises
        ------
        TransportError
            If the topic exists with another partition count, or the
            transport is closed.

        Examples
        --------
        >>> bus = MemoryTransport()
        >>> bus.create_topic("t", 3); bus.create_topic("t", 3)
        >>> bus.create_topic("t", 2)
        Traceback (most recent call last):
        ...
        stream.transport.TransportError: topic 't' already exists with 3 partitions, not 2
        """
        check_topic_name(name)
        check_partitions(partitions)
        with self._lock:
            self._check_open()
            topic = self._topics.get(name)
            if topic is None:
                self._create_locked(name, partitions)
            elif len(topic.parts) != partitions:
                raise TransportError(
                    f"topic {name!r} already exists with {len(topic.parts)} "
                    f"partitions, not {partitions}"
                )

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Offset of the next record to be written, per partition.

        Raises
        ------
        TransportError
            If the topic does not exist or the transport is closed.
        """
        with self._lock:
            self._check_open()
            t = self._topics.get(topic)
            if t is None:
                raise TransportError(f"unknown topic {topic!r}")
            return {p: len(part) for p, part in enumerate(t.parts)}

    # -- producing ----------------------------------------------------------

    def send(
        self,
        topic: str,
        value: object,
        key: str | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Append ``value`` to ``topic`` (auto-created with 1 partition if unknown).

        The record is visible to consumers as soon as ``send`` returns.
        """
        if timestamp is None:
            timestamp = _time()
        with self._lock:
            if self._closed:
                raise TransportError("transport is closed")
            t = self._topics.get(topic)
            if t is None:
                t = self._create_locked(check_topic_name(topic), 1)
            parts = t.parts
            if key is None:
                p = t.next_partition
                t.next_partition = (p + 1) % len(parts)
            else:
                h = _HASH_CACHE.get(key)
                if h is None:
                    h = key_hash(key)
                p = h % len(parts)
            part = parts[p]
            part.stamps.append(timestamp)  # first: raises TypeError if not a number
            part.keys.append(key)
            part.values.append(value)
            if self._waiters:
                self._cond.notify_all()

    def send_many(self, topic: str, items: Iterable[tuple[str | None, object]]) -> None:
        """Send ``(key, value)`` pairs in order, taking the lock once per chunk.

        All records of a chunk (4096 records) share one timestamp.
        """
        it = iter(items)
        cache_get = _HASH_CACHE.get
        while True:
            chunk = list(itertools.islice(it, _SEND_MANY_CHUNK))
            if not chunk:
                return
            ts = _time()
            with self._lock:
                if self._closed:
                    raise TransportError("transport is closed")
                t = self._topics.get(topic)
                if t is None:
                    t = self._create_locked(check_topic_name(topic), 1)
                parts = t.parts
                n = len(parts)
                if n == 1:
                    keys = [key for key, _ in chunk]
                    for key in keys:
                        if key is not None and cache_get(key) is None:
                            key_hash(key)  # validates the key type
                    part = parts[0]
                    part.keys.extend(keys)
                    part.values.extend([value for _, value in chunk])
                    part.stamps.extend(repeat(ts, len(chunk)))
                else:
                    rr = t.next_partition
                    for key, value in chunk:
                        if key is None:
                            p = rr
                            rr = (rr + 1) % n
                        else:
                            h = cache_get(key)
                            if h is None:
                                h = key_hash(key)
                            p = h % n
                        part = parts[p]
                        part.stamps.append(ts)
                        part.keys.append(key)
                        part.values.append(value)
                    t.next_partition = rr
                if self._waiters:
                    self._cond.notify_all()

    def flush(self) -> None:
        """No-op: records are visible as soon as :meth:`send` returns."""
        with self._lock:
            self._check_open()

    # -- consuming ----------------------------------------------------------

    def consumer(
        self,
        topics: Sequence[str],
        group_id: str,
        auto_offset_reset: str = "earliest",
    ) -> MemoryConsumer:
        """Create a consumer; joining the group rebalances its members.

        Topics that do not exist yet are assigned when they are created.
        """
        names, group_id = check_subscription(topics, group_id)
        check_auto_offset_reset(auto_offset_reset)
        with self._lock:
            self._check_open()
            group = self._groups.get(group_id)
            if group is None:
                group = self._groups[group_id] = _Group(group_id)
            c = MemoryConsumer(self, names, group, auto_offset_reset, next(self._member_ids))
            group.members.append(c)
            self._consumers.append(c)
            self._rebalance_locked(group)
            return c

    def close(self) -> None:
        """Close every open consumer, then the transport.  Idempotent."""
        with self._lock:
            if self._closed:
                return
            for c in list(self._consumers):
                self._leave_locked(c)
            self._closed = True
            self._cond.notify_all()

    # -- internals (call with self._lock held) -------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("transport is closed")

    def _create_locked(self, name: str, partitions: int) -> _Topic:
        t = self._topics[name] = _Topic(name, partitions)
        for group in self._groups.values():
            if any(name in m._topics for m in group.members):
                self._rebalance_locked(group)
        return t

    def _initial_position_locked(self, group: _Group, tp: TopicPartition, reset: str) -> int:
        pos = group.committed.get(tp)
        if pos is None:
            pos = 0 if reset == "earliest" else len(self._topics[tp[0]].parts[tp[1]])
        return pos

    def _rebalance_locked(self, group: _Group) -> None:
        """Range-assign the subscribed partitions and rewind members to committed offsets."""
        group.generation += 1
        members = group.members
        assigned: dict[int, list[TopicPartition]] = {id(m): [] for m in members}
        names = sorted({n for m in members for n in m._topics if n in self._topics})
        for name in names:
            subs = [m for m in members if name in m._topics]
            per, extra = divmod(len(self._topics[name].parts), len(subs))
            start = 0
            for i, m in enumerate(subs):
                stop = start + per + (i < extra)
                assigned[id(m)].extend((name, p) for p in range(start, stop))
                start = stop
        for m in members:
            tps = assigned[id(m)]
            m._assignment = tps
            m._positions = {
                tp: self._initial_position_locked(group, tp, m._auto_offset_reset) for tp in tps
            }
            m._cursor = 0

    def _leave_locked(self, c: MemoryConsumer) -> None:
        if c._closed:
            return
        c._closed = True
        group = c._group
        group.members.remove(c)
        self._consumers.remove(c)
        c._assignment = []
        c._positions = {}
        self._rebalance_locked(group)
        self._cond.notify_all()  # wake a poll() blocked on this consumer

    def _fetch_locked(self, c: MemoryConsumer, max_records: int) -> list[Record]:
        """Take up to ``max_records`` records, shared fairly between partitions."""
        assigned = c._assignment
        k = len(assigned)
        if not k:
            return []
        positions = c._positions
        topics = self._topics
        # Rotate the starting partition at each poll so that leftovers of the
        # fair share (and the output order) do not favour any partition.
        start = c._cursor % k
        c._cursor = start + 1
        cands: list[tuple[TopicPartition, _Partition, int, int]] = []
        for i in range(k):
            tp = assigned[(start + i) % k]
            part = topics[tp[0]].parts[tp[1]]
            pos = positions[tp]
            avail = len(part.keys) - pos
            if avail > 0:
                cands.append((tp, part, pos, avail))
        if not cands:
            return []

        # Water-filling: each partition gets an equal share of max_records;
        # what a short partition does not use goes to the others.
        takes = [0] * len(cands)
        remaining = max_records
        active = list(range(len(cands)))
        while remaining and active:
            share = max(1, remaining // len(active))
            still = []
            for i in active:
                if not remaining:
                    break
                n = min(cands[i][3] - takes[i], share, remaining)
                takes[i] += n
                remaining -= n
                if takes[i] < cands[i][3]:
                    still.append(i)
            active = still

        out: list[Record] = []
        for (tp, part, pos, _), n in zip(cands, takes):
            if not n:
                continue
            end = pos + n
            out.extend(
                map(
                    Record,
                    repeat(tp[0], n),
                    repeat(tp[1], n),
                    range(pos, end),
                    part.keys[pos:end],
                    part.values[pos:end],
                    part.stamps[pos:end],
                )
            )
            positions[tp] = end
        return out


class MemoryConsumer(Consumer):
    """Consumer of a :class:`MemoryTransport`; create it with
    :meth:`MemoryTransport.consumer`.

    All methods are thread-safe.  See :class:`~stream.transport.Consumer`.
    """

    def __init__(
        self,
        broker: MemoryTransport,
        topics: tuple[str, ...],
        group: _Group,
        auto_offset_reset: str,
        member_id: int,
    ) -> None:
        self._broker = broker
        self._topics = topics
        self._group = group
        self._auto_offset_reset = auto_offset_reset
        self.member_id = member_id
        self._assignment: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._cursor = 0
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<MemoryConsumer {state} group={self._group.group_id!r} "
            f"member={self.member_id} topics={list(self._topics)}>"
        )

    @property
    def group_id(self) -> str:
        """Consumer group of this consumer."""
        return self._group.group_id

    @property
    def topics(self) -> tuple[str, ...]:
        """Subscribed topics."""
        return self._topics

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("consumer is closed")

    def poll(self, max_records: int = 500, timeout_s: float = 0.0) -> list[Record]:
        """Next records of the assigned partitions, at most ``max_records``.

        Records are in offset order within each partition; the budget is
        split fairly between partitions that have records.  If none is
        available, waits up to ``timeout_s`` seconds for one.
        """
        check_poll_args(max_records, timeout_s)
        broker = self._broker
        with broker._lock:
            self._check_open()
            records = broker._fetch_locked(self, max_records)
            if records or timeout_s <= 0:
                return records
            deadline = _monotonic() + timeout_s
            while True:
                left = deadline - _monotonic()
                if left <= 0:
                    return []
                broker._waiters += 1
                try:
                    broker._cond.wait(left)
                finally:
                    broker._waiters -= 1
                self._check_open()
                records = broker._fetch_locked(self, max_records)
                if records:
                    return records

    def commit(self) -> None:
        """Commit the positions reached by :meth:`poll` on every assigned partition."""
        with self._broker._lock:
            self._check_open()
            self._group.committed.update(self._positions)

    def committed(self, topic: str, partition: int) -> int | None:
        """Offset committed by the group on ``(topic, partition)``, or None."""
        with self._broker._lock:
            self._check_open()
            return self._group.committed.get((topic, partition))

    def assignment(self) -> set[tuple[str, int]]:
        """Partitions currently assigned to this consumer."""
        with self._broker._lock:
            self._check_open()
            return set(self._assignment)

    def position(self, topic: str, partition: int) -> int:
        """Offset of the next record :meth:`poll` returns for an assigned partition.

        Raises
        ------
        TransportError
            If the partition is not assigned to this consumer.
        """
        with self._broker._lock:
            self._check_open()
            try:
                return self._positions[(topic, partition)]
            except KeyError:
                raise TransportError(
                    f"partition {(topic, partition)} is not assigned to this consumer"
                ) from None

    def seek_to_committed(self) -> None:
        """Rewind to the committed offsets (``auto_offset_reset`` where none)."""
        broker = self._broker
        with broker._lock:
            self._check_open()
            for tp in self._positions:
                self._positions[tp] = broker._initial_position_locked(
                    self._group, tp, self._auto_offset_reset
                )

    def close(self) -> None:
        """Leave the group without committing (idempotent); the others rebalance."""
        with self._broker._lock:
            self._broker._leave_locked(self)

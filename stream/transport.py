"""Abstract, backend-neutral interface to a Kafka-like event log.

PoisonLab components exchange events (emails, user feedback, model updates)
through *topics*.  This module defines the contract every backend fulfils:

* :class:`MemoryTransport <stream.memory.MemoryTransport>` -- an in-process
  broker with Kafka's semantics, used by tests and single-process runs;
* a Kafka backend (kafka-python ``KafkaProducer``/``KafkaConsumer``/
  ``KafkaAdminClient``), to be added behind the same interface.

Semantics (shared by all backends)
----------------------------------
* A topic has a fixed number of partitions; each partition is an append-only
  log whose offsets start at 0.
* Records with the same key always land in the same partition,
  :func:`partition_for` (murmur2, identical to kafka-python's
  ``DefaultPartitioner`` and the Java client).  Records without a key are
  spread over the partitions (round-robin in memory; the Kafka client chooses).
* Sending to a topic that does not exist **auto-creates it with one
  partition**, like a Kafka broker with ``auto.create.topics.enable=true``.
  Create topics explicitly with :meth:`Transport.create_topic` when you need
  several partitions.
* After :meth:`Transport.flush` returns, every record sent before is visible
  to consumers.
* Consumers belong to a *group*.  The members of a group split the
  partitions of the subscribed topics between them; different groups read
  independently.  Offsets are committed explicitly (no auto-commit) with
  :meth:`Consumer.commit`; whatever was polled but not committed is delivered
  again after a rebalance, a :meth:`Consumer.seek_to_committed` or to the next
  member after :meth:`Consumer.close` (at-least-once delivery).
* ``auto_offset_reset`` (``"earliest"`` or ``"latest"``) only applies to
  partitions for which the group has no committed offset.

Mapping to kafka-python (for the future backend)
------------------------------------------------
======================================  ======================================
Interface                               kafka-python
======================================  ======================================
``create_topic``                        ``KafkaAdminClient.create_topics``;
                                        on ``TopicAlreadyExistsError`` compare
                                        the partition count
``send`` / ``send_many`` / ``flush``    ``KafkaProducer.send(topic, value,
                                        key, timestamp_ms=ts*1000)``,
                                        ``KafkaProducer.flush``
``consumer``                            ``KafkaConsumer(*topics, group_id,
                                        auto_offset_reset,
                                        enable_auto_commit=False)``
``Consumer.poll``                       ``KafkaConsumer.poll(timeout_ms,
                                        max_records)``, flattened to a list
``Consumer.commit``                     ``KafkaConsumer.commit()``
``Consumer.committed``                  ``KafkaConsumer.committed(tp)``
``Consumer.assignment``                 ``KafkaConsumer.assignment()``
``Consumer.seek_to_committed``          ``seek(tp, committed(tp))`` for each
                                        assigned ``tp`` (or
                                        ``seek_to_beginning``/``_end``)
``Consumer.close``                      ``KafkaConsumer.close(autocommit=
                                        False)``
``end_offsets``                         ``KafkaConsumer.end_offsets``
======================================  ======================================

Record timestamps are seconds since the epoch (``float``); Kafka stores
milliseconds, so a Kafka backend round-trips them with millisecond precision.
"""

from __future__ import annotations

import itertools
import struct
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType

__all__ = [
    "AUTO_OFFSET_RESET_CHOICES",
    "Consumer",
    "Record",
    "Transport",
    "TransportError",
    "murmur2",
    "partition_for",
]

#: Accepted values of ``auto_offset_reset``.
AUTO_OFFSET_RESET_CHOICES: tuple[str, ...] = ("earliest", "latest")


class TransportError(Exception):
    """Misuse of a transport or broker-side failure.

    Raised for instance when a topic is re-created with a different partition
    count, when ``auto_offset_reset`` is invalid, or when a closed consumer or
    transport is used.
    """


@dataclass(frozen=True, slots=True)
class Record:
    """One record read from a topic.

    Attributes
    ----------
    topic : str
        Topic the record was read from.
    partition : int
        Partition inside the topic.
    offset : int
        Position of the record in its partition (0-based, dense).
    key : str or None
        Key the record was sent with.
    value : object
        Payload, as sent (backends that serialize return an equal object).
    timestamp : float
        Producer timestamp, seconds since the epoch.

    Examples
    --------
    >>> r = Record("emails", 0, 7, "user-1", {"spam": True}, 1.5)
    >>> r.offset, r.value["spam"]
    (7, True)
    """

    topic: str
    partition: int
    offset: int
    key: str | None
    value: object
    timestamp: float


# ---------------------------------------------------------------------------
# Partitioner
# ---------------------------------------------------------------------------

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
# Little-endian 32-bit word unpackers for keys of up to 255 bytes.
_UNPACKERS = [struct.Struct(f"<{n}I").unpack_from for n in range(64)]


def murmur2(data: bytes) -> int:
    """Murmur2 hash of ``data`` as used by Kafka's default partitioner.

    Bit-for-bit equal to ``kafka.partitioner.default.murmur2`` (kafka-python)
    and to ``org.apache.kafka.common.utils.Utils.murmur2`` of the Java client
    (seen as an unsigned 32-bit integer).

    Parameters
    ----------
    data : bytes
        Bytes to hash.

    Returns
    -------
    int
        Unsigned 32-bit hash.

    Examples
    --------
    >>> murmur2(b"")
    275646681
    >>> murmur2(b"21") & 0x7FFFFFFF
    1173551340
    """
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    n4 = length >> 2
    if n4:
        words = _UNPACKERS[n4](data) if n4 < 64 else struct.unpack_from(f"<{n4}I", data)
        for k in words:
            k = (k * _M) & _MASK
            k ^= k >> 24
            h = ((h * _M) ^ (k * _M)) & _MASK
    extra = length & 3
    if extra:
        tail = length - extra
        if extra == 3:
            h ^= data[tail + 2] << 16
        if extra >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


# key -> positive murmur2 hash; bounded, cleared when full.
_HASH_CACHE: dict[str, int] = {}
_HASH_CACHE_MAX = 1 << 16
_round_robin = itertools.count()


def key_hash(key: str) -> int:
    """Positive murmur2 hash of a ``str`` key encoded as UTF-8 (cached).

    Parameters
    ----------
    key : str
        Record key.

    Returns
    -------
    int
        ``murmur2(key.encode("utf-8")) & 0x7FFFFFFF``.

    Raises
    ------
    TypeError
        If ``key`` is not a ``str``.
    """
    h = _HASH_CACHE.get(key)
    if h is None:
        if not isinstance(key, str):
            raise TypeError(f"record keys must be str or None, got {type(key).__name__}")
        h = murmur2(key.encode("utf-8")) & 0x7FFFFFFF
        if len(_HASH_CACHE) >= _HASH_CACHE_MAX:
            _HASH_CACHE.clear()
        _HASH_CACHE[key] = h
    return h


def partition_for(key: str | None, partitions: int) -> int:
    """Partition a record with ``key`` goes to, like Kafka's default partitioner.

    Parameters
    ----------
    key : str or None
        Record key.  A ``str`` is hashed as
        ``(murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions``, exactly
        like kafka-python's ``DefaultPartitioner`` and the Java client, so the
        result is stable across processes and backends.  ``None`` takes the
        next partition of a process-wide round-robin counter.
    partitions : int
        Number of partitions of the topic (>= 1).

    Returns
    -------
    int
        Partition index in ``range(partitions)``.

    Examples
    --------
    >>> partition_for("user-42", 8) == partition_for("user-42", 8)
    True
    >>> partition_for("foobar", 1000)
    166
    """
    if partitions < 1:
        raise TransportError(f"partitions must be >= 1, got {partitions}")
    if key is None:
        return next(_round_robin) % partitions
    return key_hash(key) % partitions


# ---------------------------------------------------------------------------
# Validation helpers shared by backends
# ---------------------------------------------------------------------------


def check_topic_name(name: object) -> str:
    """Return ``name`` if it is a valid topic name, raise otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"topic names must be str, got {type(name).__name__}")
    if not name:
        raise TransportError("topic name must not be empty")
    return name


def check_partitions(partitions: object) -> int:
    """Return ``partitions`` if it is a valid partition count, raise otherwise."""
    if not isinstance(partitions, int) or isinstance(partitions, bool):
        raise TypeError(f"partitions must be an int, got {type(partitions).__name__}")
    if partitions < 1:
        raise TransportError(f"partitions must be >= 1, got {partitions}")
    return partitions


def check_auto_offset_reset(value: object) -> str:
    """Return ``value`` if it is ``"earliest"`` or ``"latest"``, raise otherwise."""
    if value not in AUTO_OFFSET_RESET_CHOICES:
        raise TransportError(
            f"auto_offset_reset must be one of {AUTO_OFFSET_RESET_CHOICES}, got {value!r}"
        )
    return value  # type: ignore[return-value]


def check_subscription(topics: object, group_id: object) -> tuple[tuple[str, ...], str]:
    """Validate the arguments of :meth:`Transport.consumer`.

    Returns the topics as a de-duplicated tuple (order kept) and the group id.
    """
    if isinstance(topics, (str, bytes)) or not isinstance(topics, Iterable):
        raise TypeError("topics must be a sequence of topic names, e.g. ['emails']")
    names = tuple(dict.fromkeys(check_topic_name(t) for t in topics))
    if not names:
        raise TransportError("a consumer needs at least one topic")
    if not isinstance(group_id, str) or not group_id:
        raise TransportError(f"group_id must be a non-empty str, got {group_id!r}")
    return names, group_id


def check_poll_args(max_records: object, timeout_s: object) -> None:
    """Validate the arguments of :meth:`Consumer.poll`."""
    if not isinstance(max_records, int) or max_records < 1:
        raise TransportError(f"max_records must be an int >= 1, got {max_records!r}")
    if not isinstance(timeout_s, (int, float)) or timeout_s < 0:
        raise TransportError(f"timeout_s must be a number >= 0, got {timeout_s!r}")


# ---------------------------------------------------------------------------
# Interfaces
# ---------------------------------------------------------------------------


class Consumer(ABC):
    """A member of a consumer group, reading the partitions assigned to it.

    Consumers are created by :meth:`Transport.consumer`.  They never commit
    automatically.  Usable as a context manager (closes on exit).
    """

    @abstractmethod
    def poll(self, max_records: int = 500, timeout_s: float = 0.0) -> list[Record]:
        """Fetch the next records from the assigned partitions.

        Parameters
        ----------
        max_records : int, default 500
            Upper bound on the number of records returned, across all
            assigned partitions.
        timeout_s : float, default 0.0
            If no record is available, wait up to this many seconds for one.

        Returns
        -------
        list of Record
            Records in offset order within each partition (no order is
            promised across partitions).  Empty if nothing arrived in time.

        Raises
        ------
        TransportError
            If the consumer is closed.
        """

    @abstractmethod
    def commit(self) -> None:
        """Commit, for the group, the position after everything polled so far.

        Raises
        ------
        TransportError
            If the consumer is closed.
        """

    @abstractmethod
    def committed(self, topic: str, partition: int) -> int | None:
        """Offset committed by this consumer's group for a partition.

        Returns
        -------
        int or None
            Offset of the next record the group will read, or ``None`` if the
            group never committed on that partition.
        """

    @abstractmethod
    def assignment(self) -> set[tuple[str, int]]:
        """Partitions currently assigned to this consumer, as ``(topic, partition)``."""

    @abstractmethod
    def seek_to_committed(self) -> None:
        """Rewind every assigned partition to the group's committed offset.

        Partitions without a committed offset restart from the
        ``auto_offset_reset`` position, as after a restart.
        """

    @abstractmethod
    def close(self) -> None:
        """Leave the group.  Idempotent.

        Does **not** commit: records polled but not committed are delivered
        again to the member that takes over the partitions.
        """

    def __enter__(self) -> Consumer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Transport(ABC):
    """Producer side and consumer factory of a Kafka-like log.

    Usable as a context manager (closes on exit).
    """

    @abstractmethod
    def create_topic(self, name: str, partitions: int = 1) -> None:
        """Create a topic.  Idempotent.

        Parameters
        ----------
        name : str
            Topic name.
        partitions : int, default 1
            Number of partitions.

        Raises
        ------
        TransportError
            If the topic exists with a different number of partitions
            (including a topic auto-created with 1 partition by :meth:`send`).
        """

    @abstractmethod
    def send(
        self,
        topic: str,
        value: object,
        key: str | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Append a record to ``topic``.

        The partition is :func:`partition_for` ``(key, partitions)``.  A topic
        that does not exist is auto-created with one partition.

        Parameters
        ----------
        topic : str
            Destination topic.
        value : object
            Payload.  The in-memory backend stores it as given; a serializing
            backend must be able to encode it.
        key : str or None, default None
            Partitioning key.
        timestamp : float or None, default None
            Seconds since the epoch; ``time.time()`` if None.
        """

    def send_many(self, topic: str, items: Iterable[tuple[str | None, object]]) -> None:
        """Send ``(key, value)`` pairs to ``topic``, in order.

        Equivalent to calling :meth:`send` for each pair; backends may
        override it with a faster batch path.
        """
        send = self.send
        for key, value in items:
            send(topic, value, key)

    @abstractmethod
    def flush(self) -> None:
        """Block until every record sent so far is visible to consumers."""

    @abstractmethod
    def consumer(
        self,
        topics: Sequence[str],
        group_id: str,
        auto_offset_reset: str = "earliest",
    ) -> Consumer:
        """Create a consumer that joins ``group_id`` and subscribes to ``topics``.

        Parameters
        ----------
        topics : sequence of str
            Topics to subscribe to (a list, not a bare string).  Topics that
            do not exist yet are assigned once they are created.
        group_id : str
            Consumer group; members split the partitions between them.
        auto_offset_reset : {"earliest", "latest"}, default "earliest"
            Where to start on partitions without a committed offset.

        Raises
        ------
        TransportError
            If ``auto_offset_reset`` is invalid or the transport is closed.
        """

    @abstractmethod
    def end_offsets(self, topic: str) -> dict[int, int]:
        """Offset of the next record to be written, per partition of ``topic``.

        Raises
        ------
        TransportError
            If the topic does not exist.
        """

    @abstractmethod
    def close(self) -> None:
        """Flush, close every consumer created by this transport, release resources.

        Idempotent.  Using the transport afterwards raises
        :class:`TransportError`.
        """

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

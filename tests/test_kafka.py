"""Kafka specifics: a whole run over the broker, isolation of runs, broker URLs and quirks."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from stream.codecs import Codecs, PickleCodec
from stream.kafka import KafkaSettings, KafkaTransport, parse_broker_url
from tests.test_service import ROOT

SMALL = ["--set", "ticks=5", "--set", "attack.start_tick=2", "--set", "population.users=200",
         "--set", "mail.emails_per_tick=20", "--set", "model.warmup_emails=60", "--set", "mail.eval_emails_per_tick=10"]
TIMING = {"wall_s", "votes_per_s", "emails_per_s"}
#: Bound of waits for records that must arrive (generous: a loaded machine is slow, not wrong).
WAIT_S = 120.0


def poll_until(consumer, n: int, timeout: float = WAIT_S) -> list:
    """Poll until `n` records arrived (a group join or a fetch may take several polls)."""
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {n} records, got {got}"
        got.extend(consumer.poll(max_records=n - len(got), timeout_s=1.0))
    return got


@pytest.mark.slow
def test_run_over_kafka_gives_the_same_metrics_as_memory(kafka_broker, tmp_path) -> None:
    docs = {}
    for broker in ("memory", kafka_broker.url):
        path = tmp_path / f"{uuid.uuid4().hex}.json"
        out = subprocess.run([sys.executable, "-m", "simulator.cli", "run", *SMALL, "--quiet", "--broker", broker,
                              "--db", f"sqlite:///{tmp_path / 'r.db'}", "--json", str(path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        docs[broker] = json.loads(path.read_text())
    mem, kaf = docs["memory"], docs[kafka_broker.url]
    assert {k: v for k, v in mem["metrics"].items() if k not in TIMING} == \
        {k: v for k, v in kaf["metrics"].items() if k not in TIMING}
    assert mem["metrics"]["votes"] > 0


def test_run_with_unreachable_broker_is_one_line_exit_2(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-m", "simulator.cli", "run", "--broker", "kafka://127.0.0.1:1",
                          "--db", f"sqlite:///{tmp_path / 'r.db'}"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "poisonlab: error: --broker kafka://127.0.0.1:1: cannot reach the Kafka broker at 127.0.0.1:1 "
        "(Connection refused)"]
    bad = subprocess.run([sys.executable, "-m", "simulator.cli", "run", "--broker", "kafka://nohost"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "expected 'memory' or kafka://HOST:PORT" in bad.stderr


def test_prefixes_isolate_runs_on_one_broker(kafka_broker) -> None:
    codecs = Codecs(default=PickleCodec(), trust_pickle=True)
    a = KafkaTransport(kafka_broker.settings(), codecs, topic_prefix=f"a-{uuid.uuid4().hex[:6]}.")
    b = KafkaTransport(kafka_broker.settings(), codecs, topic_prefix=f"b-{uuid.uuid4().hex[:6]}.")
    try:
        a.create_topic("feedback", 2)
        b.create_topic("feedback", 3)             # same logical name, no conflict
        a.send("feedback", "from-a", key="k")
        b.send("feedback", "from-b", key="k")
        a.flush(), b.flush()
        for t, expected in ((a, "from-a"), (b, "from-b")):
            consumer = t.consumer(["feedback"], "g")
            recs = poll_until(consumer, 1)
            assert [(r.topic, r.value) for r in recs] == [("feedback", expected)]
            assert consumer.poll(timeout_s=1.0) == []
    finally:
        a.close(), b.close()


def test_end_offsets_are_true_ends_despite_batched_produce(kafka_broker) -> None:
    t = KafkaTransport(kafka_broker.settings(), topic_prefix=f"ends-{uuid.uuid4().hex[:6]}.")
    try:
        t.create_topic("x", 1)
        t.send_many("x", ((None, {"i": i}) for i in range(50)))   # one producer batch
        t.flush()
        assert t.end_offsets("x") == {0: 50}
    finally:
        t.close()


def test_settings_urls_and_secrets() -> None:
    assert parse_broker_url("kafka://a:1,b:2") == "a:1,b:2"
    with pytest.raises(ValueError):
        parse_broker_url("http://a:1")
    s = KafkaSettings.from_url("kafka://a:1", sasl_plain_password="pw", ssl_password="tls")
    assert "pw" not in repr(s).replace("pw'", "") and "tls" not in repr(s)


def test_send_encoded_puts_bytes_on_the_wire_as_they_are(kafka_broker) -> None:
    import numpy as np

    from stream.codecs import label_batch, label_events, pipeline_codecs

    t = KafkaTransport(kafka_broker.settings(), pipeline_codecs(), topic_prefix=f"enc-{uuid.uuid4().hex[:6]}.")
    try:
        t.create_topic("labels", 1)
        batch = label_batch(["m@w0:p0"], ["m"], 0, [1], [1.0], [0.9], [3], "reputation", 3600.0)
        t.send_encoded("labels", b'{"v":1,"label_id":"a@w0:p0"}', key="a")
        t.send_encoded("labels", pipeline_codecs().encode("labels", batch), key="w0")
        with pytest.raises(TypeError):
            t.send_encoded("labels", {"v": 1})
        t.flush()
        recs = poll_until(t.consumer(["labels"], "g"), 2)
        assert [r.key for r in recs] == ["a", "w0"]
        assert recs[0].value == {"v": 1, "label_id": "a@w0:p0"}
        assert isinstance(recs[1].value, np.ndarray) and label_events(recs[1].value)[0]["label_id"] == "m@w0:p0"
    finally:
        t.close()

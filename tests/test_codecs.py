"""Codecs: round trips, safety on untrusted input, feedback batches."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.email import Email
from stream.codecs import (
    Codecs,
    JsonCodec,
    PickleCodec,
    Undecodable,
    check_feedback_batch,
    feedback_batch,
    invalid_batch_rows,
    pipeline_codecs,
)
from stream.events import feedback_event

json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20)
                           | st.floats(allow_nan=False, allow_infinity=False),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=4), max_leaves=10)


@given(json_values)
def test_json_round_trip(value) -> None:
    codecs = pipeline_codecs()
    assert codecs.decode("feedback", codecs.encode("feedback", value)) == value


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_on_the_service_topics(data: bytes) -> None:
    value = pipeline_codecs().decode("feedback", data)
    assert isinstance(value, (Undecodable, dict, list, str, int, float, bool, type(None), np.ndarray))


def test_email_and_pipeline_topics() -> None:
    codecs = pipeline_codecs()
    e = Email("e1", "a@b.example", "Subject", "Body ünïcode", "bank_alert")
    assert codecs.decode("mail", codecs.encode("mail", e)) == e
    assert isinstance(codecs.decode("mail", b'{"email_id": 1}'), Undecodable)


def test_pickle_only_when_trusted() -> None:
    data = pickle.dumps((1, "x"))
    assert isinstance(pipeline_codecs().decode("anything", data), Undecodable)
    trusted = Codecs(default=PickleCodec(), trust_pickle=True)
    assert trusted.decode("anything", data) == (1, "x")
    with pytest.raises(ValueError):
        Codecs(default=PickleCodec())


def test_numpy_batches_are_read_without_pickle() -> None:
    codecs = pipeline_codecs()
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = codecs.decode("t", codecs.encode("t", arr))
    assert out.dtype == arr.dtype and np.array_equal(out, arr)
    objects = np.array([{"a": 1}], dtype=object)
    assert codecs.encode("t", objects) == b'[{"a":1}]'     # never pickled: JSON or refused
    import io

    buf = io.BytesIO()
    np.save(buf, objects, allow_pickle=True)
    assert isinstance(codecs.decode("feedback", buf.getvalue()), Undecodable)


def test_size_limits() -> None:
    codecs = Codecs(max_bytes=100, max_batch_bytes=1000)
    assert "larger than the limit" in codecs.decode("feedback", b'"' + b"x" * 200 + b'"').reason
    big = codecs.encode("t", np.zeros(1000))
    assert "larger than the limit" in codecs.decode("t", big).reason


def test_feedback_batch_validation() -> None:
    events = [feedback_event(f"e{i}", float(i), f"a{i}", f"m{i}", "spam", 0.0) for i in range(4)]
    batch = feedback_batch(events)
    assert check_feedback_batch(batch) is None
    decoded = pipeline_codecs().decode("feedback", JsonCodec().encode({"x": 1}))
    assert check_feedback_batch(decoded) is not None
    batch["verdict"][1] = 3
    batch["ts"][2] = np.inf
    batch["email_id"][3] = b""
    bad, reasons = invalid_batch_rows(batch)
    assert bad.tolist() == [False, True, True, True]
    assert "verdict" in reasons[0] and "ts" in reasons[1] and "email_id" in reasons[2]

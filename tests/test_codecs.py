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
    is_label_batch,
    label_batch,
    label_events,
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


# --------------------------------------------------------------------------- batch validation, label batches

def _reference_invalid_rows(batch: np.ndarray) -> tuple[list[bool], list[str]]:
    """Row by row, the obvious way: the reasons of every bad row."""
    from stream.events import MAX_ID_LENGTH

    bad, reasons = [], []
    for row in batch.tolist():
        values = dict(zip(batch.dtype.names, row))
        why = []
        for name in ("event_id", "account_id", "email_id"):
            raw = values[name]
            if not raw or len(raw.decode("utf-8", "replace")) > MAX_ID_LENGTH:
                why.append(f"field {name!r} must have 1 to {MAX_ID_LENGTH} characters")
            if b"\x00" in raw:
                why.append(f"field {name!r} must not contain NUL characters")
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                why.append(f"field {name!r} is not valid UTF-8")
        if not np.isfinite(values["ts"]):
            why.append("field 'ts' must be finite")
        elif abs(values["ts"]) > 1e11:
            why.append("field 'ts' is out of range (|ts| > 1e+11)")
        if values["verdict"] not in (0, 1):
            why.append(f"unknown verdict {values['verdict']} (expected 1 for spam or 0 for not_spam)")
        if np.isinf(values["created"]):
            why.append("field 'account_created_ts' must be finite")
        elif abs(values["created"]) > 1e11:
            why.append("field 'account_created_ts' is out of range (|account_created_ts| > 1e+11)")
        bad.append(bool(why))
        if why:
            reasons.append("; ".join(why))
    return bad, reasons


_ids = st.one_of(st.text(max_size=4).map(lambda s: s.encode("utf-8")), st.just(b"\xff\xfe"), st.just(b""),
                 st.just(b"a\x00b"))
_floats = st.one_of(st.floats(-10, 10), st.just(float("inf")), st.just(float("-inf")), st.just(float("nan")),
                    st.just(1e12), st.just(-1e308))
_rows = st.lists(st.tuples(_ids, _floats, _ids, _ids, st.integers(-2, 3), _floats), max_size=30)


@given(_rows)
def test_invalid_batch_rows_matches_row_by_row_validation(rows) -> None:
    batch = np.array(rows, dtype=[("event_id", "S8"), ("ts", "<f8"), ("account_id", "S8"), ("email_id", "S8"),
                                  ("verdict", "i1"), ("created", "<f8")])
    bad, reasons = invalid_batch_rows(batch)
    ref_bad, ref_reasons = _reference_invalid_rows(batch)
    assert bad.tolist() == ref_bad
    assert reasons == ref_reasons


def test_overlong_ids_in_a_batch_are_bad_rows() -> None:
    events = [feedback_event("e1", 1.0, "a" * 300, "m", "spam"), feedback_event("e2", 1.0, "é" * 200, "m", "spam")]
    bad, reasons = invalid_batch_rows(feedback_batch(events))
    assert bad.tolist() == [True, False]          # 200 two-byte characters are 200 characters
    assert reasons == ["field 'account_id' must have 1 to 256 characters"]


def test_label_batches_round_trip_as_label_events() -> None:
    codecs = pipeline_codecs()
    batch = label_batch(["m1@w3:p0", "é2@w3:p1"], ["m1", "é2"], 3, [1, 0], [1.0, 0.5], [0.9, 0.75], [4, 2],
                        "reputation", 14400.0)
    decoded = codecs.decode("labels", codecs.encode("labels", batch))
    assert is_label_batch(decoded)
    assert label_events(decoded) == [
        {"v": 1, "label_id": "m1@w3:p0", "email_id": "m1", "label": "spam", "weight": 1.0, "confidence": 0.9,
         "votes": 4, "defense": "reputation", "ts": 14400.0, "window": 3},
        {"v": 1, "label_id": "é2@w3:p1", "email_id": "é2", "label": "not_spam", "weight": 0.5, "confidence": 0.75,
         "votes": 2, "defense": "reputation", "ts": 14400.0, "window": 3}]
    assert not is_label_batch(feedback_batch([feedback_event("e", 1.0, "a", "m", "spam")]))
    with pytest.raises(ValueError, match="not a label batch"):
        label_events(np.zeros(3))

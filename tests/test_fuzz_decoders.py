"""Fuzzing every decoder and validator on the wire: any byte string becomes valid events
or a clear rejection (:class:`~stream.codecs.Undecodable`, :class:`~stream.events.EventError`,
:class:`~stream.codecs.CodecError`), never another exception and never a huge allocation.

"Valid" is checked too: what a validator accepts can be stored and windowed (ids encode
as UTF-8 without NULs, times are finite and bounded, counts positive).
"""

from __future__ import annotations

import io
import json
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream import topics
from stream.codecs import (
    FEEDBACK_BATCH_FIELDS,
    CodecError,
    Codecs,
    EmailCodec,
    JsonCodec,
    NpyCodec,
    Undecodable,
    check_feedback_batch,
    feedback_batch,
    invalid_batch_rows,
    is_label_batch,
    label_batch,
    label_events,
    pipeline_codecs,
)
from stream.events import (
    MAX_ABS_TS,
    MAX_ID_LENGTH,
    EventError,
    check_event_time,
    event_times_in_range,
    feedback_event,
    review_event,
    validate_email_event,
    validate_feedback,
    validate_review,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_ALLOCATION = 8 << 20            # no single decode may allocate more than this

# --------------------------------------------------------------------------- strategies

extreme_numbers = st.one_of(
    st.integers(), st.just(10 ** 400), st.just(-(10 ** 400)), st.just(2 ** 63), st.just(2 ** 64 + 1),
    st.floats(), st.just(float("nan")), st.just(float("inf")), st.just(-float("inf")), st.just(1e308),
    st.just(1e12), st.just(-1e11 - 1), st.just(5e-324), st.booleans())
surrogates = st.sampled_from(["\ud800", "a\udfffb", "\udc00" * 3])
extreme_strings = st.one_of(
    st.text(max_size=12), surrogates, st.just(""), st.just("a\x00b"), st.just("\x00"),
    st.just("x" * (MAX_ID_LENGTH + 1)), st.just("é" * MAX_ID_LENGTH), st.text(alphabet="\x00\x01\u2028\ufeff",
                                                                              max_size=6))
scalars = st.one_of(st.none(), extreme_numbers, extreme_strings)
nested = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(extreme_strings, inner, max_size=3), max_leaves=8)
field_values = st.one_of(scalars, nested)


def _maybe(value_strategy, good):
    """A field that is usually good, sometimes anything."""
    return st.one_of(st.just(good), value_strategy)


feedback_docs = st.fixed_dictionaries(
    {"v": _maybe(field_values, 1), "event_id": _maybe(field_values, "e1"), "ts": _maybe(field_values, 3.5),
     "account_id": _maybe(field_values, "a1"), "email_id": _maybe(field_values, "m1"),
     "verdict": st.one_of(st.sampled_from(["spam", "not_spam"]), field_values)},
    optional={"account_created_ts": field_values, "extra": nested})
review_docs = st.fixed_dictionaries(
    {"v": _maybe(field_values, 1), "email_id": _maybe(field_values, "m1"),
     "label": st.one_of(st.sampled_from(["spam", "not_spam"]), field_values), "ts": _maybe(field_values, 7.0)})
tokens = st.one_of(st.text(min_size=1, max_size=8), extreme_strings)
email_docs = st.fixed_dictionaries(
    {"v": _maybe(field_values, 1), "email_id": _maybe(field_values, "m1"), "ts": _maybe(field_values, 1.0),
     "features": st.one_of(st.dictionaries(tokens, st.one_of(st.integers(1, 5), extreme_numbers), max_size=6),
                           field_values)})


def wire(doc) -> bytes:
    """``doc`` as JSON bytes the way a hostile producer may write it: NaN/Infinity
    literals, lone surrogates as ``\\ud800`` escapes, huge integers in full."""
    return json.dumps(doc, allow_nan=True, ensure_ascii=True).encode("ascii")


def bounded(fn, *args):
    """Call ``fn`` and fail if it allocated more than ``MAX_ALLOCATION`` bytes at its peak."""
    tracemalloc.start()
    try:
        out = fn(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_ALLOCATION, f"{fn.__name__} allocated {peak} bytes"
    return out


def storable_id(value) -> None:
    assert isinstance(value, str) and 1 <= len(value) <= MAX_ID_LENGTH and "\x00" not in value
    value.encode("utf-8")                                   # no lone surrogates


def bounded_time(value) -> None:
    assert isinstance(value, float) and math.isfinite(value) and abs(value) <= MAX_ABS_TS


# --------------------------------------------------------------------------- validators


def check_feedback_outcome(value) -> None:
    """A decoded feedback value is valid events or a clear rejection."""
    if isinstance(value, Undecodable):
        assert value.reason
        return
    if isinstance(value, np.ndarray):
        check_batch_outcome(value)
        return
    try:
        event = validate_feedback(value)
    except EventError as exc:
        assert str(exc)
        return
    for name in ("event_id", "account_id", "email_id"):
        storable_id(event[name])
    bounded_time(float(event["ts"]))
    if event.get("account_created_ts") is not None:
        bounded_time(float(event["account_created_ts"]))
    assert event["verdict"] in ("spam", "not_spam")


def check_batch_outcome(batch: np.ndarray) -> None:
    """A decoded NumPy value is a rejected batch, or rows that are each valid or have a reason."""
    if check_feedback_batch(batch) is not None:
        return
    bad, reasons = invalid_batch_rows(batch)
    assert bad.shape == (batch.shape[0],) and len(reasons) == int(bad.sum()) and all(reasons)
    good = batch[~bad]
    assert event_times_in_range(good["ts"]).all()
    assert set(good["verdict"].tolist()) <= {0, 1}
    for name in ("event_id", "account_id", "email_id"):
        for raw in good[name].tolist():
            storable_id(raw.decode("utf-8"))


@FUZZ
@given(feedback_docs)
def test_feedback_documents_are_valid_or_rejected(doc) -> None:
    check_feedback_outcome(doc)                                         # the validator on the value
    check_feedback_outcome(bounded(pipeline_codecs().decode, topics.FEEDBACK, wire(doc)))   # the whole path


@FUZZ
@given(review_docs)
def test_review_and_gold_documents_are_valid_or_rejected(doc) -> None:
    for value in (doc, bounded(pipeline_codecs().decode, topics.REVIEWS, wire(doc)),
                  pipeline_codecs().decode(topics.GOLD, wire(doc))):
        if isinstance(value, Undecodable):
            continue
        try:
            email, label, ts = validate_review(value)
        except EventError as exc:
            assert str(exc)
            continue
        storable_id(email)
        assert label in (0, 1)
        bounded_time(ts)


@FUZZ
@given(email_docs)
def test_email_events_are_valid_or_rejected(doc) -> None:
    for value in (doc, bounded(pipeline_codecs().decode, "emails", wire(doc))):
        if isinstance(value, Undecodable):
            continue
        try:
            email, ts, features = validate_email_event(value)
        except EventError as exc:
            assert str(exc)
            continue
        storable_id(email)
        bounded_time(ts)
        for token, count in features.items():
            assert 1 <= len(token) <= 200 and "\x00" not in token
            token.encode("utf-8")
            assert isinstance(count, float) and math.isfinite(count) and count > 0


@pytest.mark.parametrize("validator", [validate_feedback, validate_review, validate_email_event])
@given(value=field_values)
def test_validators_reject_any_non_event(validator, value) -> None:
    with pytest.raises(EventError):
        validator(value)


def test_the_records_of_issue_18_are_reasons() -> None:
    good = feedback_event("e1", 1.0, "a1", "m1", "spam")
    cases = {
        "ts": 10 ** 400, "event_id": "\ud800", "account_id": "a\x00b", "email_id": "x" * 300,
    }
    for field, value in cases.items():
        data = wire({**good, field: value})
        value = pipeline_codecs().decode(topics.FEEDBACK, data)
        assert isinstance(value, dict)
        with pytest.raises(EventError):
            validate_feedback(value)
    for ts in (1e12, 1e308, -1e12):
        with pytest.raises(EventError, match="out of range"):
            validate_feedback({**good, "ts": ts})
        with pytest.raises(EventError, match="out of range"):
            validate_review(review_event("m1", 1, ts))
    huge = b'{"v":1,"event_id":"e","ts":' + b"9" * 5000 + b',"account_id":"a","email_id":"m","verdict":"spam"}'
    assert "too many digits" in pipeline_codecs().decode(topics.FEEDBACK, huge).reason
    assert check_event_time(12) == 12.0


# --------------------------------------------------------------------------- JSON codec


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_on_every_topic(data) -> None:
    codecs = pipeline_codecs()
    for topic in (*topics.ALL, "emails", "unknown"):
        value = bounded(codecs.decode, topic, data)
        if topic == topics.FEEDBACK:
            check_feedback_outcome(value)


@pytest.mark.parametrize("opening", [b"[", b'{"a":', b'{"v":1,"ts":['])
def test_deep_nesting_is_undecodable(opening) -> None:
    for topic in (topics.FEEDBACK, topics.MAIL, topics.REVIEWS):
        value = pipeline_codecs().decode(topic, opening * 200_000)
        assert isinstance(value, Undecodable)


@FUZZ
@given(st.integers(0, 50), st.sampled_from([b"[", b"{\"k\":"]))
def test_moderate_nesting_decodes_or_is_rejected(depth, opening) -> None:
    data = opening * depth + b"1" + (b"]" if opening == b"[" else b"}") * depth
    check_feedback_outcome(pipeline_codecs().decode(topics.FEEDBACK, data))


def test_non_bytes_values_are_undecodable() -> None:
    for value in (None, 12, "text", [1]):
        assert isinstance(Codecs().decode(topics.FEEDBACK, value), Undecodable)


@FUZZ
@given(st.fixed_dictionaries({f: st.one_of(st.just("x"), field_values)
                              for f in ("email_id", "sender", "subject", "body", "category")}))
def test_email_codec_decodes_or_rejects(doc) -> None:
    value = pipeline_codecs().decode(topics.MAIL, wire(doc))
    if not isinstance(value, Undecodable):
        storable_id(value.email_id)
        for f in ("sender", "subject", "body", "category"):
            getattr(value, f).encode("utf-8")
    with pytest.raises(CodecError):
        EmailCodec().decode(b"\xff")


def test_json_codec_only_raises_codec_errors() -> None:
    for data in (b"", b"\x00", b"NaN", b'"\\ud800"', b"1" * 5000, b"[" * 50_000, "{}".encode("utf-16")):
        try:
            JsonCodec().decode(data)
        except CodecError:
            pass


# --------------------------------------------------------------------------- NumPy batches


def npy(descr, shape, body: bytes = b"", fortran: bool = False, version=(1, 0)) -> bytes:
    """A ``.npy`` record with any header (even a lying one) followed by ``body``."""
    out = io.BytesIO()
    header = {"descr": descr, "fortran_order": fortran, "shape": shape}
    if version == (1, 0):
        np.lib.format.write_array_header_1_0(out, header)
    else:
        np.lib.format.write_array_header_2_0(out, header)
    return out.getvalue() + body


FEEDBACK_DESCR = [("event_id", "|S4"), ("ts", "<f8"), ("account_id", "|S4"), ("email_id", "|S4"),
                  ("verdict", "|i1"), ("created", "<f8")]


@pytest.mark.parametrize("descr,shape", [
    ("<f8", (10 ** 13,)), (FEEDBACK_DESCR, (10 ** 13,)), ("<f8", (10 ** 30,)), ("<f8", (2 ** 63,)),
    ("<f8", (10 ** 7, 10 ** 7)), ("|V0", (10 ** 13,)), ("|S0", (10 ** 13,)), ("<f8", (-1,)),
    ("<f8", (3, -3)), ("<f8", (1,) * 40), ("|O", (2,)), ([("x", "|O")], (2,)), ("|S99999999999999", (1,)),
])
def test_lying_headers_are_undecodable_without_allocating(descr, shape) -> None:
    for version in ((1, 0), (2, 0)):
        try:
            data = npy(descr, shape, b"\x00" * 64, version=version)
        except (ValueError, TypeError, OverflowError):
            pytest.skip("numpy refuses to even write this header")
        value = bounded(pipeline_codecs().decode, topics.FEEDBACK, data)
        assert isinstance(value, Undecodable), value
        assert "NumPy batch" in value.reason


def test_handwritten_headers_are_undecodable() -> None:
    magic = b"\x93NUMPY\x01\x00"
    for header in (b"{'descr': '<f8', 'fortran_order': False, 'shape': (10000000000000,), }",
                   b"{'descr': '<f8', 'fortran_order': False, 'shape': (1.5,), }",
                   b"{'descr': '<f8', 'fortran_order': 7, 'shape': (1,), }",
                   b"{'descr': 'nonsense', 'fortran_order': False, 'shape': (1,), }",
                   b"{'descr': '<f8', 'shape': (1,), }",
                   b"((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((",
                   b"[" * 5000,
                   b"__import__('os').system('true')"):
        padded = header + b" " * (-(len(header) + 11) % 64) + b"\n"
        data = magic + len(padded).to_bytes(2, "little") + padded
        value = bounded(pipeline_codecs().decode, topics.FEEDBACK, data + b"\x00" * 8)
        assert isinstance(value, Undecodable), header
    assert isinstance(Codecs().decode("t", b"\x93NUMPY\x03\x00" + b"\x00" * 20), Undecodable)


def _feedback_records() -> list[bytes]:
    events = [feedback_event(f"e{i}", float(i), f"a{i % 3}", f"m{i % 2}", "spam" if i % 2 else "not_spam")
              for i in range(5)]
    codecs = pipeline_codecs()
    return [codecs.encode(topics.FEEDBACK, feedback_batch(events)), codecs.encode(topics.FEEDBACK, events[0]),
            codecs.encode(topics.LABELS, label_batch(["l1", "l2"], ["m1", "m2"], [0, 1], [1, 0], [1.0, 0.5],
                                                     [0.9, 0.7], [3, 4], "rep", 10.0))]


@pytest.mark.parametrize("record", _feedback_records(), ids=["feedback-batch", "feedback-json", "label-batch"])
def test_every_truncation_is_undecodable_or_valid(record) -> None:
    codecs = pipeline_codecs()
    for cut in range(len(record)):
        value = bounded(codecs.decode, topics.FEEDBACK, record[:cut])
        check_feedback_outcome(value)
        if isinstance(value, np.ndarray) and is_label_batch(value):
            label_events(value)


@FUZZ
@given(st.data())
def test_corrupted_batches_are_undecodable_or_valid(data) -> None:
    record = bytearray(data.draw(st.sampled_from(_feedback_records())))
    for _ in range(data.draw(st.integers(1, 8))):
        record[data.draw(st.integers(0, len(record) - 1))] = data.draw(st.integers(0, 255))
    value = bounded(pipeline_codecs().decode, topics.FEEDBACK, bytes(record))
    check_feedback_outcome(value)
    if isinstance(value, np.ndarray) and is_label_batch(value):
        try:
            events = label_events(value)
        except CodecError:
            return
        for e in events:
            assert e["label"] in ("spam", "not_spam") and math.isfinite(e["ts"])


id_bytes = st.one_of(st.binary(max_size=6), st.just(b"\xed\xa0\x80"), st.just(b"a\x00b"), st.just(b""))
batch_floats = st.one_of(st.floats(), st.just(1e12), st.just(-1e308), st.just(float("nan")))
batch_dtypes = st.sampled_from([
    [("event_id", "S6"), ("ts", "<f8"), ("account_id", "S6"), ("email_id", "S6"), ("verdict", "i1"),
     ("created", "<f8")],
    [("event_id", "S6"), ("ts", ">f8"), ("account_id", "S6"), ("email_id", "S6"), ("verdict", "<i8"),
     ("created", "<f2")],
    [("created", "<f4"), ("verdict", "i2"), ("email_id", "S6"), ("account_id", "S6"), ("ts", "<f4"),
     ("event_id", "S6")],
])


@FUZZ
@given(batch_dtypes, st.lists(st.tuples(id_bytes, batch_floats, id_bytes, id_bytes, st.integers(-128, 127),
                                        batch_floats), max_size=20))
def test_feedback_batches_of_any_layout_give_rows_or_reasons(dtype, rows) -> None:
    names = [n for n, _ in dtype]
    order = [n for n, _ in FEEDBACK_BATCH_FIELDS]
    with np.errstate(over="ignore", invalid="ignore"):
        batch = np.array([tuple(row[order.index(n)] for n in names) for row in rows], dtype=dtype)
    codecs = pipeline_codecs()
    check_feedback_outcome(codecs.decode(topics.FEEDBACK, codecs.encode(topics.FEEDBACK, batch)))


@pytest.mark.parametrize("array", [
    np.zeros((2, 2), dtype=[(n, "<f8") for n, _ in FEEDBACK_BATCH_FIELDS]),
    np.zeros((), dtype=[("event_id", "S2"), ("ts", "<f8"), ("account_id", "S2"), ("email_id", "S2"),
                        ("verdict", "i1"), ("created", "<f8")]),
    np.zeros(3, dtype=[("event_id", "S2000"), ("ts", "<f8"), ("account_id", "S2"), ("email_id", "S2"),
                       ("verdict", "i1"), ("created", "<f8")]),
    np.zeros(3, dtype=[("event_id", "S2", (2,)), ("ts", "<f8"), ("account_id", "S2"), ("email_id", "S2"),
                       ("verdict", "i1"), ("created", "<f8")]),
    np.zeros(4, dtype="<c16"), np.zeros(0, dtype="<f8"), np.asfortranarray(np.zeros((3, 2))),
])
def test_odd_arrays_are_rejected_as_batches(array) -> None:
    codecs = pipeline_codecs()
    value = codecs.decode(topics.FEEDBACK, codecs.encode(topics.FEEDBACK, array))
    assert isinstance(value, np.ndarray) and value.shape == array.shape
    check_feedback_outcome(value)


@FUZZ
@given(st.lists(st.tuples(st.binary(max_size=4), st.binary(max_size=4), st.integers(-2 ** 63, 2 ** 63 - 1),
                          st.integers(-128, 127), st.floats(), st.floats(), st.integers(-2 ** 63, 2 ** 63 - 1),
                          st.floats()), max_size=10))
def test_label_events_give_events_or_codec_error(rows) -> None:
    batch = label_batch(np.array([r[0] for r in rows] or [b""], dtype="S4")[:len(rows)],
                        np.array([r[1] for r in rows] or [b""], dtype="S4")[:len(rows)],
                        [r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows], [r[5] for r in rows],
                        [r[6] for r in rows], "rep", [r[7] for r in rows])
    try:
        events = label_events(batch)
    except CodecError as exc:
        assert str(exc)
        return
    assert len(events) == len(rows)
    for e in events:
        assert e["label"] in ("spam", "not_spam") and math.isfinite(e["weight"]) and math.isfinite(e["ts"])
    with pytest.raises(CodecError):
        label_events(np.zeros(3))


def test_npy_codec_round_trip_still_works() -> None:
    for array in (np.arange(6, dtype=np.int16).reshape(2, 3), np.asfortranarray(np.arange(6.0).reshape(2, 3)),
                  np.zeros(0), np.array(3.5)):
        out = NpyCodec().decode(NpyCodec().encode(array))
        assert out.shape == array.shape and (out == array).all() and out.flags.writeable

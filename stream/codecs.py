"""Wire encodings of record values, chosen per topic.

A serializing transport (:class:`stream.kafka.KafkaTransport`) turns values
into bytes with a :class:`Codecs` table:

========================  =====================================================
topic                     codec
========================  =====================================================
``feedback``, ``labels``  :class:`JsonCodec`: one JSON object per event, the
``reviews``,              interoperable format of DESIGN.md
``deadletter``,
``deliveries``
``mail``                  :class:`EmailCodec`: an :class:`~simulator.email.Email`
                          as a JSON object
any topic                 NumPy arrays (plain or structured, no objects) as
                          ``.npy`` bytes (:class:`NpyCodec`): the compact batch
                          encoding, e.g. many feedback votes in one record
                          (:func:`feedback_batch`) or many labels in one
                          record (:func:`label_batch`, :func:`label_events`)
other topics              the table's default: JSON, or :class:`PickleCodec`
                          when *both ends are our own process* (tests)
========================  =====================================================

Decoding looks at the first bytes: ``\\x93NUMPY`` is a NumPy batch (read with
``allow_pickle=False``, so it is safe on untrusted input), ``\\x80`` a pickle,
which is refused unless the table was built with ``trust_pickle=True``;
anything else goes to the topic's codec.  A value that cannot be decoded comes
out as an :class:`Undecodable` (never an exception), so that a consumer can
dead-letter it and keep going.

Examples
--------
>>> codecs = Codecs()
>>> data = codecs.encode("feedback", {"v": 1, "verdict": "spam"})
>>> data
b'{"v":1,"verdict":"spam"}'
>>> codecs.decode("feedback", data)
{'v': 1, 'verdict': 'spam'}
>>> codecs.decode("feedback", b"{oops")
Undecodable('not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)')
>>> import pickle
>>> codecs.decode("feedback", pickle.dumps({"v": 1}))
Undecodable('pickled values are refused on this topic')
"""

from __future__ import annotations

import io
import json
import math
import pickle
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from stream import topics
from stream.events import MAX_ABS_TS, MAX_ID_LENGTH, VERDICTS, EventError, check_id

__all__ = [
    "FEEDBACK_BATCH_FIELDS",
    "LABEL_BATCH_FIELDS",
    "Codec",
    "CodecError",
    "Codecs",
    "EmailCodec",
    "JsonCodec",
    "NpyCodec",
    "PickleCodec",
    "Undecodable",
    "feedback_batch",
    "is_label_batch",
    "label_batch",
    "label_events",
    "pipeline_codecs",
]

NPY_MAGIC = b"\x93NUMPY"
PICKLE_MAGIC = b"\x80"
DEFAULT_MAX_BYTES = 1 << 20          # one JSON event (or one pickled test value)
DEFAULT_MAX_BATCH_BYTES = 64 << 20   # one NumPy batch record
MAX_BATCH_DIMS = 8                   # most dimensions of a NumPy batch

#: Fields of a feedback batch: (name, NumPy kind); ids are fixed-width UTF-8 bytes.
FEEDBACK_BATCH_FIELDS = (("event_id", "S"), ("ts", "f"), ("account_id", "S"), ("email_id", "S"),
                         ("verdict", "i"), ("created", "f"))
#: Fields of a label batch: the label event of DESIGN.md plus the service's ``label_id`` and
#: ``window``; ``label`` is 1 for spam, 0 for not spam.
LABEL_BATCH_FIELDS = (("label_id", "S"), ("email_id", "S"), ("window", "i"), ("label", "i"),
                      ("weight", "f"), ("confidence", "f"), ("votes", "i"), ("defense", "S"), ("ts", "f"))


class CodecError(ValueError):
    """A value that cannot be encoded or decoded; the message says why."""


class Undecodable:
    """What a consumer receives instead of a value it could not decode.

    Attributes
    ----------
    reason : str
        Why decoding failed (the dead-letter reason).
    raw : bytes
        The bytes as read from the topic.
    """

    __slots__ = ("reason", "raw")

    def __init__(self, reason: str, raw: bytes = b""):
        self.reason = reason
        self.raw = raw

    def __repr__(self) -> str:
        return f"Undecodable({self.reason!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Undecodable) and (self.reason, self.raw) == (other.reason, other.raw)

    __hash__ = None  # type: ignore[assignment]


class Codec(ABC):
    """Turns one kind of value into bytes and back."""

    name: str = "codec"

    @abstractmethod
    def encode(self, value: Any) -> bytes:
        """Bytes of ``value``; raise :class:`CodecError` if it cannot be encoded."""

    @abstractmethod
    def decode(self, data: bytes) -> Any:
        """Value of ``data``; raise :class:`CodecError` if it is not valid."""


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class JsonCodec(Codec):
    """Compact UTF-8 JSON; NumPy scalars are written as plain numbers.

    >>> JsonCodec().decode(JsonCodec().encode({"p": np.float64(0.25), "junk": np.True_}))
    {'p': 0.25, 'junk': True}
    """

    name = "json"

    def encode(self, value: Any) -> bytes:
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                              default=_json_default, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise CodecError(f"cannot encode as JSON: {exc}") from None

    def decode(self, data: bytes) -> Any:
        """Value of ``data``; any bad input is a :class:`CodecError`.

        Integers longer than Python's digit limit, nesting deeper than the
        recursion limit and invalid UTF-8 are reasons, not crashes:

        >>> JsonCodec().decode(b"[" * 100_000)
        Traceback (most recent call last):
        ...
        stream.codecs.CodecError: not valid JSON: nested too deeply
        >>> JsonCodec().decode(b"1" * 5000)
        Traceback (most recent call last):
        ...
        stream.codecs.CodecError: not valid JSON: a number has too many digits
        """
        try:
            return json.loads(data)
        except UnicodeDecodeError:
            raise CodecError("not valid UTF-8") from None
        except json.JSONDecodeError as exc:
            raise CodecError(f"not valid JSON: {exc}") from None
        except RecursionError:
            raise CodecError("not valid JSON: nested too deeply") from None
        except (ValueError, TypeError, OverflowError) as exc:
            if "digits" in str(exc):    # int() beyond sys.get_int_max_str_digits()
                raise CodecError("not valid JSON: a number has too many digits") from None
            raise CodecError(f"not valid JSON: {type(exc).__name__}") from None


class EmailCodec(Codec):
    """An :class:`~simulator.email.Email` as a JSON object of its fields.

    >>> from simulator.email import Email
    >>> e = Email("e1", "a@b.example", "Hi", "Body", "personal")
    >>> EmailCodec().decode(EmailCodec().encode(e)) == e
    True
    """

    name = "email"
    _FIELDS = ("email_id", "sender", "subject", "body", "category")

    def encode(self, value: Any) -> bytes:
        try:
            doc = {f: getattr(value, f) for f in self._FIELDS}
        except AttributeError:
            raise CodecError(f"expected an Email, got {type(value).__name__}") from None
        return JsonCodec().encode(doc)

    def decode(self, data: bytes) -> Any:
        from simulator.email import Email

        doc = JsonCodec().decode(data)
        if not isinstance(doc, dict) or any(not isinstance(doc.get(f), str) for f in self._FIELDS):
            raise CodecError(f"an email needs the string fields {', '.join(self._FIELDS)}")
        try:
            check_id("email_id", doc["email_id"])
        except EventError as exc:
            raise CodecError(str(exc)) from None
        for f in self._FIELDS[1:]:
            if not doc[f].isascii():
                try:
                    doc[f].encode("utf-8")
                except UnicodeEncodeError:
                    raise CodecError(f"field {f!r} is not valid UTF-8 (lone surrogate)") from None
        return Email(*(doc[f] for f in self._FIELDS))


class NpyCodec(Codec):
    """NumPy arrays (plain or structured, no Python objects) in the ``.npy`` format.

    Decoding never unpickles (``allow_pickle=False``), so it is safe on
    untrusted input.

    >>> a = np.arange(6, dtype=np.int16).reshape(2, 3)
    >>> NpyCodec().decode(NpyCodec().encode(a)).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """

    name = "npy"

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, np.ndarray) or value.dtype.hasobject:
            raise CodecError("the batch codec takes NumPy arrays without Python objects")
        out = io.BytesIO()
        np.lib.format.write_array(out, value, allow_pickle=False)
        return out.getvalue()

    def decode(self, data: bytes) -> Any:
        """The array of ``data``, or :class:`CodecError`.

        The header is checked against the bytes that follow it before anything is
        allocated, so a header that claims more items than the record holds is a
        reason, not a huge allocation:

        >>> out = io.BytesIO()
        >>> np.lib.format.write_array_header_1_0(out, {"descr": "<f8", "fortran_order": False,
        ...                                           "shape": (10 ** 13,)})
        >>> NpyCodec().decode(out.getvalue())
        Traceback (most recent call last):
        ...
        stream.codecs.CodecError: not a valid NumPy batch: header declares 10000000000000 items, data holds 0 bytes
        """
        try:
            fp = io.BytesIO(data)
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(fp)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(fp)
            else:
                raise CodecError(f"not a valid NumPy batch: unsupported format version {version}")
            if dtype.hasobject:
                raise CodecError("not a valid NumPy batch: arrays of Python objects are refused")
            if len(shape) > MAX_BATCH_DIMS:
                raise CodecError(f"not a valid NumPy batch: {len(shape)} dimensions, more than {MAX_BATCH_DIMS}")
            count = math.prod(shape)
            if count < 0 or any(d < 0 for d in shape):
                raise CodecError("not a valid NumPy batch: negative dimensions")
            offset = fp.tell()
            held = len(data) - offset
            need = count * dtype.itemsize
            if need != held:
                raise CodecError(f"not a valid NumPy batch: header declares {count} items, data holds {held} bytes")
            if dtype.itemsize == 0 and count > DEFAULT_MAX_BATCH_BYTES:
                raise CodecError(f"not a valid NumPy batch: {count} items of zero size")
            flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset).copy()
            return flat.reshape(shape, order="F" if fortran_order else "C")
        except CodecError:
            raise
        except (ValueError, OSError, EOFError, SyntaxError, TypeError, OverflowError, RecursionError,
                MemoryError, KeyError, IndexError) as exc:
            raise CodecError(f"not a valid NumPy batch: {str(exc)[:200]}") from None


class PickleCodec(Codec):
    """Any picklable value.  Only for topics where both ends are our own process.

    >>> PickleCodec().decode(PickleCodec().encode((1, "x")))
    (1, 'x')
    """

    name = "pickle"

    def encode(self, value: Any) -> bytes:
        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise CodecError(f"cannot pickle: {exc}") from None

    def decode(self, data: bytes) -> Any:
        try:
            return pickle.loads(data)  # noqa: S301 - only with trust_pickle=True
        except Exception as exc:  # noqa: BLE001 - any failure is a bad record
            raise CodecError(f"not a valid pickle: {exc}") from None


class Codecs:
    """Which codec each topic uses, and what a consumer accepts.

    Parameters
    ----------
    by_topic : mapping of str to Codec, optional
        Codec of each named topic (logical names, before any prefix).
    default : Codec, optional
        Codec of the other topics (JSON when not given).
    trust_pickle : bool, default False
        Decode pickled values.  Only where both ends are our own process.
    max_bytes, max_batch_bytes : int
        Largest value accepted, for plain values and for NumPy batches.

    Examples
    --------
    >>> c = Codecs(default=PickleCodec(), trust_pickle=True)
    >>> c.decode("anything", c.encode("anything", (1, 2)))
    (1, 2)
    >>> c.decode("t", c.encode("t", np.zeros(3))).tolist()
    [0.0, 0.0, 0.0]
    >>> Codecs(max_bytes=4).decode("feedback", b'"12345"')
    Undecodable('value of 7 bytes is larger than the limit of 4')
    """

    def __init__(self, by_topic: Mapping[str, Codec] | None = None, default: Codec | None = None,
                 trust_pickle: bool = False, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES):
        self.by_topic = dict(by_topic or {})
        self.default = default or JsonCodec()
        self.trust_pickle = trust_pickle
        self.max_bytes = max_bytes
        self.max_batch_bytes = max_batch_bytes
        self._npy = NpyCodec()
        self._pickle = PickleCodec()
        if isinstance(self.default, PickleCodec) and not trust_pickle:
            raise ValueError("a pickle default codec needs trust_pickle=True")

    def codec_for(self, topic: str) -> Codec:
        return self.by_topic.get(topic, self.default)

    def encode(self, topic: str, value: Any) -> bytes:
        """Bytes of ``value`` for ``topic`` (NumPy arrays always use the batch codec)."""
        if isinstance(value, np.ndarray) and not value.dtype.hasobject:
            return self._npy.encode(value)
        return self.codec_for(topic).encode(value)

    def decode(self, topic: str, data: bytes | None) -> Any:
        """Value of ``data`` read from ``topic``, or an :class:`Undecodable`."""
        if data is None:
            return Undecodable("empty record (no value)")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            return Undecodable(f"expected bytes, got {type(data).__name__}")
        data = bytes(data)
        size = len(data)
        try:
            if data[:6] == NPY_MAGIC:
                if size > self.max_batch_bytes:
                    return Undecodable(f"batch of {size} bytes is larger than the limit of "
                                       f"{self.max_batch_bytes}", data[:256])
                return self._npy.decode(data)
            if size > self.max_bytes:
                return Undecodable(f"value of {size} bytes is larger than the limit of {self.max_bytes}",
                                   data[:256])
            if data[:1] == PICKLE_MAGIC:
                if not self.trust_pickle:
                    return Undecodable("pickled values are refused on this topic", data)
                return self._pickle.decode(data)
            return self.codec_for(topic).decode(data)
        except CodecError as exc:
            return Undecodable(str(exc), data[:4096])
        except Exception as exc:  # noqa: BLE001 - a safety net: a bad record must never stop a consumer
            return Undecodable(f"cannot decode: {type(exc).__name__}", data[:4096])


def pipeline_codecs(default: Codec | None = None, trust_pickle: bool = False, **limits: int) -> Codecs:
    """The codec table of the pipeline topics (:mod:`stream.topics`).

    >>> pipeline_codecs().codec_for("mail").name, pipeline_codecs().codec_for("labels").name
    ('email', 'json')
    """
    json_codec = JsonCodec()
    table: dict[str, Codec] = {name: json_codec for name in topics.ALL}
    table[topics.MAIL] = EmailCodec()
    return Codecs(table, default=default, trust_pickle=trust_pickle, **limits)


# ---------------------------------------------------------------------------
# Feedback batches: many votes in one structured array
# ---------------------------------------------------------------------------


def _utf8_column(values) -> tuple[Any, int]:
    """Strings as UTF-8 bytes, or an ``S`` array as it is, and the width of the longest.

    >>> _utf8_column(["é", "ab"])
    ([b'\\xc3\\xa9', b'ab'], 2)
    >>> _utf8_column(np.array([b"abc", b"a"], dtype="S9"))[1]
    3
    """
    if isinstance(values, np.ndarray) and values.dtype.kind == "S":
        longest = int(np.strings.str_len(values).max(initial=1)) if values.shape[0] else 1
        return values, max(1, longest)
    encoded = [v.encode("utf-8") for v in values]
    return encoded, _width(encoded)


def _width(values: list[bytes]) -> int:
    return max(1, max((len(v) for v in values), default=1))


def feedback_batch(events: Iterable[Mapping[str, Any]]) -> np.ndarray:
    """Pack feedback events (DESIGN.md schema) into one structured array.

    Ids become fixed-width UTF-8 byte strings as wide as the longest one;
    ``verdict`` is 1 for spam, 0 for not spam; ``created`` is NaN when the
    event has no ``account_created_ts``.  Send the array as one record: the
    :class:`Codecs` table writes it with :class:`NpyCodec`.

    >>> b = feedback_batch([{"v": 1, "event_id": "e1", "ts": 3.5, "account_id": "a",
    ...                      "email_id": "m", "verdict": "spam"}])
    >>> b.dtype.names, b["verdict"].tolist(), b["email_id"].tolist()
    (('event_id', 'ts', 'account_id', 'email_id', 'verdict', 'created'), [1], [b'm'])
    """
    events = list(events)
    cols = {name: [str(e[name]).encode("utf-8") for e in events]
            for name in ("event_id", "account_id", "email_id")}
    dtype = np.dtype([("event_id", f"S{_width(cols['event_id'])}"), ("ts", "<f8"),
                      ("account_id", f"S{_width(cols['account_id'])}"),
                      ("email_id", f"S{_width(cols['email_id'])}"), ("verdict", "i1"), ("created", "<f8")])
    out = np.empty(len(events), dtype=dtype)
    for name, values in cols.items():
        out[name] = values
    out["ts"] = [float(e["ts"]) for e in events]
    out["verdict"] = [VERDICTS[e["verdict"]] for e in events]
    out["created"] = [math.nan if e.get("account_created_ts") is None else float(e["account_created_ts"])
                      for e in events]
    return out


def check_feedback_batch(batch: Any) -> str | None:
    """Why ``batch`` is not a feedback batch as a whole, or None if its layout is right.

    >>> check_feedback_batch(np.zeros(3))
    'a feedback batch needs the fields event_id, ts, account_id, email_id, verdict, created'
    """
    names = tuple(n for n, _ in FEEDBACK_BATCH_FIELDS)
    if not isinstance(batch, np.ndarray) or batch.dtype.names is None or set(batch.dtype.names) != set(names):
        return f"a feedback batch needs the fields {', '.join(names)}"
    if batch.ndim != 1:
        return f"a feedback batch is one-dimensional, got {batch.ndim} dimensions"
    for name, kind in FEEDBACK_BATCH_FIELDS:
        field = batch.dtype.fields[name][0]
        if field.kind != kind:
            return f"field {name!r} of a feedback batch must be of kind {kind!r}, got {field.str!r}"
        if kind == "S" and field.itemsize > MAX_ID_LENGTH * 4:
            return f"field {name!r} is {field.itemsize} bytes wide, more than {MAX_ID_LENGTH * 4}"
    return None


def _embedded_nul(col: np.ndarray) -> np.ndarray:
    """Rows of an ``S`` column with a NUL byte before their last non-NUL byte (trailing
    NULs are padding, so they do not count).

    >>> _embedded_nul(np.array([b"ab", b"a\\x00b", b""], dtype="S3")).tolist()
    [False, True, False]
    """
    width = col.dtype.itemsize
    raw = np.ascontiguousarray(col).view(np.uint8).reshape(col.shape[0], width)
    nonzero = raw != 0
    length = np.where(nonzero.any(axis=1), width - np.argmax(nonzero[:, ::-1], axis=1), 0)
    return nonzero.sum(axis=1) < length


def invalid_batch_rows(batch: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Per-row validation of a feedback batch whose layout passed :func:`check_feedback_batch`.

    Every check is a vectorized mask; reasons are only built for the bad rows,
    so a clean batch costs a few passes over its columns.

    Returns
    -------
    bad : ndarray of bool
        Rows that fail validation.
    reasons : list of str
        Reason of each bad row, in row order.

    >>> b = feedback_batch([{"event_id": "e", "ts": 1.0, "account_id": "a", "email_id": "m",
    ...                      "verdict": "spam"}] * 2)
    >>> b["verdict"][1] = 7
    >>> invalid_batch_rows(b)
    (array([False,  True]), ['unknown verdict 7 (expected 1 for spam or 0 for not_spam)'])
    """
    n = batch.shape[0]
    checks: list[tuple[np.ndarray, Any]] = []   # (mask, reason or reason(row))
    for name in ("event_id", "account_id", "email_id"):
        col = batch[name]
        length = f"field {name!r} must have 1 to {MAX_ID_LENGTH} characters"
        empty = col == b""
        if batch.dtype[name].itemsize > MAX_ID_LENGTH:
            long = np.array([len(v.decode("utf-8", "replace")) > MAX_ID_LENGTH for v in col.tolist()], dtype=bool)
            empty = empty | long
        checks.append((empty, length))
        if n and batch.dtype[name].itemsize > 1:
            checks.append((_embedded_nul(col), f"field {name!r} must not contain NUL characters"))
        if not n or int(np.frombuffer(col.tobytes(), dtype=np.uint8).max(initial=0)) < 0x80:
            continue  # pure ASCII: valid UTF-8
        not_utf8 = np.zeros(n, dtype=bool)
        for i, v in enumerate(col.tolist()):
            try:
                v.decode("utf-8")
            except UnicodeDecodeError:
                not_utf8[i] = True
        checks.append((not_utf8, f"field {name!r} is not valid UTF-8"))
    ts = batch["ts"].astype(np.float64)
    checks.append((~np.isfinite(ts), "field 'ts' must be finite"))
    checks.append((np.isfinite(ts) & (np.abs(ts) > MAX_ABS_TS), f"field 'ts' is out of range (|ts| > {MAX_ABS_TS:g})"))
    verdict = batch["verdict"]
    checks.append(((verdict != 0) & (verdict != 1),
                   lambda i: f"unknown verdict {int(verdict[i])} (expected 1 for spam or 0 for not_spam)"))
    created = batch["created"].astype(np.float64)
    checks.append((np.isinf(created), "field 'account_created_ts' must be finite"))
    checks.append((np.isfinite(created) & (np.abs(created) > MAX_ABS_TS),
                   f"field 'account_created_ts' is out of range (|account_created_ts| > {MAX_ABS_TS:g})"))
    bad = np.zeros(n, dtype=bool)
    for mask, _ in checks:
        bad |= mask
    if not bad.any():
        return bad, []
    reasons = []
    for i in np.flatnonzero(bad).tolist():
        row = []
        for mask, reason in checks:
            if mask[i]:
                text = reason(i) if callable(reason) else reason
                if not row or row[-1] != text:
                    row.append(text)
        reasons.append("; ".join(row))
    return bad, reasons


# ---------------------------------------------------------------------------
# Label batches: many labels in one structured array
# ---------------------------------------------------------------------------


def label_batch(label_id: list[str] | np.ndarray, email_id: list[str] | np.ndarray, window, label, weight, confidence, votes,
                defense: str, ts) -> np.ndarray:
    """Labels as one structured array (the batch form of the ``labels`` topic).

    The defense service publishes this form for windows whose votes all came in
    feedback batches; :func:`label_events` turns it back into label events.
    ``window``, ``label``, ``weight``, ``confidence``, ``votes`` and ``ts`` are
    sequences (or arrays) aligned with the ids; ``ts`` may be one number.  The ids
    are strings, or ``S`` arrays of their UTF-8 bytes, taken as they are (encoding
    many strings costs more than the rest).

    >>> b = label_batch(["m@w0:p0"], ["m"], [0], [1], [1.0], [0.9], [3], "reputation", 3600.0)
    >>> b.dtype.names
    ('label_id', 'email_id', 'window', 'label', 'weight', 'confidence', 'votes', 'defense', 'ts')
    >>> label_events(b)[0]["label"], is_label_batch(b), is_label_batch(np.zeros(2))
    ('spam', True, False)
    """
    lid, lid_width = _utf8_column(label_id)
    eid, eid_width = _utf8_column(email_id)
    dname = defense.encode("utf-8")
    dtype = np.dtype([("label_id", f"S{lid_width}"), ("email_id", f"S{eid_width}"), ("window", "<i8"),
                      ("label", "i1"), ("weight", "<f8"), ("confidence", "<f8"), ("votes", "<i8"),
                      ("defense", f"S{max(1, len(dname))}"), ("ts", "<f8")])
    out = np.empty(len(lid), dtype=dtype)
    out["label_id"] = lid
    out["email_id"] = eid
    out["window"] = window
    out["label"] = label
    out["weight"] = weight
    out["confidence"] = confidence
    out["votes"] = votes
    out["defense"] = dname
    out["ts"] = ts
    return out


def is_label_batch(value: Any) -> bool:
    """True when ``value`` is a label batch (:func:`label_batch`)."""
    names = tuple(n for n, _ in LABEL_BATCH_FIELDS)
    return (isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.names is not None
            and set(value.dtype.names) == set(names)
            and all(value.dtype.fields[n][0].kind == k for n, k in LABEL_BATCH_FIELDS))


def label_events(batch: np.ndarray) -> list[dict[str, Any]]:
    """The label events (DESIGN.md schema, plus ``label_id`` and ``window``) of a label batch.

    Each event is what the service would have published as JSON for that label.

    >>> b = label_batch(["m@w2:p1", "n@w2:p0"], ["m", "n"], 2, [0, 1], 1.0, [0.8, 1.0], [4, 5], "rep", 10.0)
    >>> [(e["label_id"], e["label"], e["votes"], e["window"]) for e in label_events(b)]
    [('m@w2:p1', 'not_spam', 4, 2), ('n@w2:p0', 'spam', 5, 2)]
    """
    if not is_label_batch(batch):
        raise CodecError("not a label batch")
    names = ("not_spam", "spam")
    out = []
    for i, (lid, eid, win, lab, weight, conf, votes, defense, ts) in enumerate(batch.tolist()):
        if lab not in (0, 1):
            raise CodecError(f"row {i} of the label batch: unknown label {lab} (expected 1 or 0)")
        if not (math.isfinite(weight) and math.isfinite(conf) and math.isfinite(ts)):
            raise CodecError(f"row {i} of the label batch: weight, confidence and ts must be finite")
        try:
            event = {"v": 1, "label_id": lid.decode("utf-8"), "email_id": eid.decode("utf-8"),
                     "label": names[lab], "weight": float(weight), "confidence": float(conf),
                     "votes": int(votes), "defense": defense.decode("utf-8"), "ts": float(ts), "window": int(win)}
        except UnicodeDecodeError:
            raise CodecError(f"row {i} of the label batch: an id is not valid UTF-8") from None
        out.append(event)
    return out

"""Event schemas on the wire: feedback in, labels out, reviews, dead letters.

>>> e = validate_feedback({"v": 1, "event_id": "x", "ts": 1.0, "account_id": "a",
...                        "email_id": "m", "verdict": "spam"})
>>> e["verdict"]
'spam'
>>> validate_feedback({"v": 1, "verdict": "maybe"})
Traceback (most recent call last):
...
stream.events.EventError: missing field 'event_id'
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

VERDICTS = {"spam": 1, "not_spam": 0}
VERDICT_NAMES = ("not_spam", "spam")
MAX_ID_LENGTH = 256
_FEEDBACK_FIELDS = (("event_id", str), ("ts", float), ("account_id", str), ("email_id", str),
                    ("verdict", str))


class EventError(ValueError):
    """A record that does not match its schema; the message is the dead-letter reason."""


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EventError(f"field {name!r} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise EventError(f"field {name!r} must be finite")
    return float(value)


def validate_feedback(event: Any) -> dict[str, Any]:
    """Check a feedback event and return it; raise :class:`EventError` with the reason."""
    if not isinstance(event, dict):
        raise EventError(f"feedback must be a JSON object, got {type(event).__name__}")
    if event.get("v") != 1:
        raise EventError(f"unsupported schema version {event.get('v')!r}")
    for name, kind in _FEEDBACK_FIELDS:
        if name not in event:
            raise EventError(f"missing field {name!r}")
        value = event[name]
        if kind is float:
            _check_number(name, value)
        elif not isinstance(value, str):
            raise EventError(f"field {name!r} must be a string, got {type(value).__name__}")
        elif not value or len(value) > MAX_ID_LENGTH:
            raise EventError(f"field {name!r} must have 1 to {MAX_ID_LENGTH} characters")
    if event["verdict"] not in VERDICTS:
        raise EventError(f"unknown verdict {event['verdict']!r} (expected 'spam' or 'not_spam')")
    if event.get("account_created_ts") is not None:
        _check_number("account_created_ts", event["account_created_ts"])
    return event


def feedback_event(event_id: str, ts: float, account_id: str, email_id: str, verdict: str,
                   account_created_ts: float | None = None) -> dict[str, Any]:
    event = {"v": 1, "event_id": event_id, "ts": ts, "account_id": account_id,
             "email_id": email_id, "verdict": verdict}
    if account_created_ts is not None:
        event["account_created_ts"] = account_created_ts
    return event


def feedback_columns(event_id: np.ndarray, ts: np.ndarray, account_id: np.ndarray, email_id: np.ndarray,
                     verdict: np.ndarray, created: np.ndarray | None = None) -> np.ndarray:
    """Many feedback events as one structured array (the batch layout of
    :func:`stream.codecs.feedback_batch`), built from columns without a dict per event.

    Ids are arrays of UTF-8 bytes (``S`` dtype) or of ``str``; ``verdict`` is 1 for spam,
    0 for not spam; ``created`` is NaN where the event has no ``account_created_ts``.

    >>> b = feedback_columns(np.array([b"f1", b"f2"]), np.array([0.5, 0.5]), np.array([b"a", b"b"]),
    ...                      np.array([b"m"] * 2), np.array([1, 0]))
    >>> b["event_id"].tolist(), b["verdict"].tolist(), bool(np.isnan(b["created"]).all())
    ([b'f1', b'f2'], [1, 0], True)
    """
    cols = {"event_id": _utf8(event_id), "account_id": _utf8(account_id), "email_id": _utf8(email_id)}
    dtype = np.dtype([("event_id", cols["event_id"].dtype.str), ("ts", "<f8"),
                      ("account_id", cols["account_id"].dtype.str), ("email_id", cols["email_id"].dtype.str),
                      ("verdict", "i1"), ("created", "<f8")])
    out = np.empty(len(cols["event_id"]), dtype=dtype)
    for name, values in cols.items():
        out[name] = values
    out["ts"] = ts
    out["verdict"] = verdict
    out["created"] = np.nan if created is None else created
    return out


def numbered_ids(prefix: bytes, first: int, n: int) -> np.ndarray:
    """``prefix + str(i)`` for ``i`` in ``first .. first + n - 1``, as bytes, without
    formatting each number in Python.

    >>> numbered_ids(b"f", 8, 4).tolist()
    [b'f8', b'f9', b'f10', b'f11']
    """
    numbers = np.arange(first, first + n, dtype=np.int64)
    if n == 0 or first < 0:
        return np.array([prefix + str(i).encode() for i in numbers.tolist()], dtype=f"S{len(prefix) + 1}")
    width = len(str(first + n - 1))
    digits = np.ones(n, np.int64)                       # how many digits each number has
    for k in range(1, width):
        digits += numbers >= 10 ** k
    out = np.zeros((n, len(prefix) + width), np.uint8)
    out[:, :len(prefix)] = np.frombuffer(prefix, np.uint8)
    for j in range(width):                              # j-th digit from the left, where it exists
        power = digits - 1 - j
        has = power >= 0
        out[has, len(prefix) + j] = 48 + (numbers[has] // 10 ** power[has]) % 10
    return out.view(f"S{out.shape[1]}").reshape(n)


def _utf8(values: np.ndarray) -> np.ndarray:
    """``values`` as fixed-width UTF-8 bytes, at least one byte wide."""
    values = np.asarray(values)
    if values.dtype.kind == "U":
        values = np.char.encode(values, "utf-8")
    if values.dtype.itemsize == 0:
        values = values.astype("S1")
    return values


def label_event(email_id: str, label: int, weight: float, confidence: float, votes: int,
                defense: str, ts: float) -> dict[str, Any]:
    return {"v": 1, "email_id": email_id, "label": VERDICT_NAMES[label], "weight": float(weight),
            "confidence": float(confidence), "votes": int(votes), "defense": defense, "ts": ts}


def review_event(email_id: str, label: int, ts: float) -> dict[str, Any]:
    """Ground truth for one email, confirmed by the provider (analyst review)."""
    return {"v": 1, "email_id": email_id, "label": VERDICT_NAMES[label], "ts": ts}


def dead_letter(record: Any, reason: str, source_topic: str) -> dict[str, Any]:
    return {"v": 1, "reason": reason, "topic": source_topic, "record": repr(record)[:4096]}

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
#: Largest absolute event time accepted, in seconds (about 3,000 years from 1970): beyond
#: it a timestamp is a mistake or an attack, and would overflow window numbers downstream.
MAX_ABS_TS = 1e11
#: Most distinct tokens of one email event, and the longest token.
MAX_FEATURES = 100_000
MAX_TOKEN_LENGTH = 200
_FEEDBACK_FIELDS = (("event_id", str), ("ts", float), ("account_id", str), ("email_id", str),
                    ("verdict", str))


class EventError(ValueError):
    """A record that does not match its schema; the message is the dead-letter reason."""


def _check_number(name: str, value: Any, bound: float | None = None) -> float:
    """``value`` as a finite float (within ``±bound`` when given), or :class:`EventError`.

    Never raises anything else: integers too large for a float are rejected, not
    converted.

    >>> _check_number("ts", 10 ** 400)
    Traceback (most recent call last):
    ...
    stream.events.EventError: field 'ts' is out of range
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EventError(f"field {name!r} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise EventError(f"field {name!r} is out of range") from None
    if not math.isfinite(number):
        raise EventError(f"field {name!r} must be finite")
    if bound is not None and abs(number) > bound:
        raise EventError(f"field {name!r} is out of range (|{name}| > {bound:g})")
    return number


def check_event_time(value: Any, name: str = "ts") -> float:
    """An event time as a float, or :class:`EventError` when it is not a finite number
    within ``±MAX_ABS_TS`` seconds.

    >>> check_event_time(3600)
    3600.0
    >>> check_event_time(1e12)
    Traceback (most recent call last):
    ...
    stream.events.EventError: field 'ts' is out of range (|ts| > 1e+11)
    >>> check_event_time(float("nan"))
    Traceback (most recent call last):
    ...
    stream.events.EventError: field 'ts' must be finite
    """
    return _check_number(name, value, MAX_ABS_TS)


def event_times_in_range(ts: np.ndarray) -> np.ndarray:
    """Mask of the event times that :func:`check_event_time` accepts (vectorized).

    >>> event_times_in_range(np.array([0.0, -5.0, 1e12, np.nan, np.inf])).tolist()
    [True, True, False, False, False]
    """
    ts = np.asarray(ts, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(ts) & (np.abs(ts) <= MAX_ABS_TS)


def check_id(name: str, value: Any) -> str:
    """A string id of 1 to ``MAX_ID_LENGTH`` characters that is valid UTF-8 without NULs
    (storable in any database), or :class:`EventError`.

    >>> check_id("email_id", "m1")
    'm1'
    >>> check_id("email_id", "\\ud800")
    Traceback (most recent call last):
    ...
    stream.events.EventError: field 'email_id' is not valid UTF-8 (lone surrogate)
    >>> check_id("email_id", "a\\x00b")
    Traceback (most recent call last):
    ...
    stream.events.EventError: field 'email_id' must not contain NUL characters
    """
    if not isinstance(value, str):
        raise EventError(f"field {name!r} must be a string, got {type(value).__name__}")
    if not value or len(value) > MAX_ID_LENGTH:
        raise EventError(f"field {name!r} must have 1 to {MAX_ID_LENGTH} characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise EventError(f"field {name!r} is not valid UTF-8 (lone surrogate)") from None
    if "\x00" in value:
        raise EventError(f"field {name!r} must not contain NUL characters")
    return value


def _check_object(event: Any, what: str, fields: tuple[str, ...]) -> None:
    if not isinstance(event, dict):
        raise EventError(f"{what} must be a JSON object, got {type(event).__name__}")
    version = event.get("v")
    if isinstance(version, bool) or version != 1:
        raise EventError(f"unsupported schema version {_short(version)}")
    for name in fields:
        if name not in event:
            raise EventError(f"missing field {name!r}")


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (never formats a huge int in full)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** 30:
        return "a very large integer"
    text = repr(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def validate_feedback(event: Any) -> dict[str, Any]:
    """Check a feedback event and return it; raise :class:`EventError` with the reason.

    Any value whatsoever gives the event back or an :class:`EventError`, never
    another exception: huge integers, non-finite numbers, lone surrogates or NULs in
    ids and event times beyond ``±MAX_ABS_TS`` are reasons, not crashes.

    >>> validate_feedback({"v": 1, "event_id": "x", "ts": 10 ** 400, "account_id": "a",
    ...                    "email_id": "m", "verdict": "spam"})
    Traceback (most recent call last):
    ...
    stream.events.EventError: field 'ts' is out of range
    """
    _check_object(event, "feedback", tuple(name for name, _ in _FEEDBACK_FIELDS))
    for name, kind in _FEEDBACK_FIELDS:
        if kind is float:
            check_event_time(event[name], name)
        else:
            check_id(name, event[name])
    if event["verdict"] not in VERDICTS:
        raise EventError(f"unknown verdict {_short(event['verdict'])} (expected 'spam' or 'not_spam')")
    if event.get("account_created_ts") is not None:
        check_event_time(event["account_created_ts"], "account_created_ts")
    return event


def validate_review(event: Any) -> tuple[str, int, float]:
    """``(email_id, label, ts)`` of a review (or gold) event, or :class:`EventError` with
    the reason.

    A review is :func:`review_event`: ``{"v": 1, "email_id": str,
    "label": "spam"|"not_spam", "ts": float}``; gold records have the same schema.
    Like :func:`validate_feedback`, it never raises anything but :class:`EventError`.

    >>> validate_review({"v": 1, "email_id": "m1", "label": "spam", "ts": 7.9})
    ('m1', 1, 7.9)
    >>> validate_review({"v": 1, "email_id": "m1", "label": "ham", "ts": 7.9})
    Traceback (most recent call last):
    ...
    stream.events.EventError: unknown label 'ham' (expected 'spam' or 'not_spam')
    """
    _check_object(event, "a review", ("email_id", "label", "ts"))
    email = check_id("email_id", event["email_id"])
    label = event["label"]
    if not isinstance(label, str) or label not in VERDICTS:
        raise EventError(f"unknown label {_short(label)} (expected 'spam' or 'not_spam')")
    ts = check_event_time(event["ts"])
    return email, VERDICTS[label], ts


def validate_email_event(event: Any) -> tuple[str, float, dict[str, float]]:
    """``(email_id, ts, features)`` of an email event (topic ``emails``), or
    :class:`EventError` with the reason.

    An email event is ``{"v": 1, "email_id": str, "ts": float, "features": {token: count}}``;
    tokens are non-empty strings of at most ``MAX_TOKEN_LENGTH`` characters (valid
    UTF-8, no NUL), counts positive finite numbers, at most ``MAX_FEATURES`` tokens.

    >>> validate_email_event({"v": 1, "email_id": "m1", "ts": 3.0, "features": {"win": 2, "cash": 1}})
    ('m1', 3.0, {'win': 2.0, 'cash': 1.0})
    >>> validate_email_event({"v": 1, "email_id": "m1", "ts": 3.0, "features": {"win": -1}})
    Traceback (most recent call last):
    ...
    stream.events.EventError: feature 'win' must have a positive count
    """
    _check_object(event, "an email event", ("email_id", "ts", "features"))
    email = check_id("email_id", event["email_id"])
    ts = check_event_time(event["ts"])
    features = event["features"]
    if not isinstance(features, dict):
        raise EventError(f"field 'features' must be a JSON object, got {type(features).__name__}")
    if len(features) > MAX_FEATURES:
        raise EventError(f"field 'features' has {len(features)} tokens, more than {MAX_FEATURES}")
    out: dict[str, float] = {}
    for token, count in features.items():
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise EventError(f"feature tokens must have 1 to {MAX_TOKEN_LENGTH} characters")
        try:
            check_id("token", token)
        except EventError:
            raise EventError("feature tokens must be valid UTF-8 without NUL characters") from None
        value = _check_number(f"features[{_short(token, 30)}]", count)
        if value <= 0:
            raise EventError(f"feature {_short(token, 30)} must have a positive count")
        out[token] = value
    return email, ts, out


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


def email_event(email_id: str, ts: float, features: dict[str, int]) -> dict[str, Any]:
    """An email as the defense runtime sees it (topic ``emails``): its id and the features the
    learner uses, never its truth."""
    return {"v": 1, "email_id": email_id, "ts": ts, "features": features}

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


def label_event(email_id: str, label: int, weight: float, confidence: float, votes: int,
                defense: str, ts: float) -> dict[str, Any]:
    return {"v": 1, "email_id": email_id, "label": VERDICT_NAMES[label], "weight": float(weight),
            "confidence": float(confidence), "votes": int(votes), "defense": defense, "ts": ts}


def review_event(email_id: str, label: int, ts: float) -> dict[str, Any]:
    """Ground truth for one email, confirmed by the provider (analyst review)."""
    return {"v": 1, "email_id": email_id, "label": VERDICT_NAMES[label], "ts": ts}


def dead_letter(record: Any, reason: str, source_topic: str) -> dict[str, Any]:
    return {"v": 1, "reason": reason, "topic": source_topic, "record": repr(record)[:4096]}

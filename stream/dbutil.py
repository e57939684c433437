"""Small helpers shared by the storage modules: errors, URL masking, JSON and time values."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from numbers import Integral, Real
from typing import Any

from sqlalchemy.engine import make_url

__all__ = ["StorageError", "aware", "clean_float", "clean_int", "mask_url", "parse_created_at", "sanitize_json"]


class StorageError(Exception):
    """The results database cannot be opened, or a storage operation failed."""


_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def mask_url(url: str) -> str:
    """Return `url` with any password replaced by ``***``.

    Parameters
    ----------
    url : str
        A database URL, possibly malformed.

    Returns
    -------
    str
        The URL as SQLAlchemy renders it with the password hidden; for a URL
        SQLAlchemy cannot parse, the text between ``user:`` and ``@`` is masked.
    """
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # malformed: mask textually
        return _PASSWORD_IN_URL.sub(r"\1***@", str(url))


def sanitize_json(value: Any) -> Any:
    """Make `value` safe for a JSON column.

    Parameters
    ----------
    value : Any
        A JSON-like value (dicts, lists, tuples, str, numbers, bool, None);
        NumPy scalars are accepted too.

    Returns
    -------
    Any
        A copy where NaN and infinite floats are ``None``, tuples are lists,
        dict keys are strings and numeric scalars are plain ``int``/``float``.

    Raises
    ------
    TypeError
        For values that have no JSON representation.
    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Mapping):
        return {str(k): sanitize_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize_json(v) for v in value]
    item = getattr(value, "item", None)  # NumPy scalars such as np.bool_
    if callable(item):
        converted = item()
        if converted is not value and not hasattr(converted, "item"):
            return sanitize_json(converted)
    raise TypeError(f"cannot store {type(value).__name__} value {value!r} as JSON")


def clean_float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def clean_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, Real) and not isinstance(value, Integral) and not math.isfinite(float(value)):
        return None
    return int(value)


def aware(moment: datetime) -> datetime:
    """`moment` in UTC; naive values (SQLite returns those) were written in UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def parse_created_at(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return aware(value)
    return aware(datetime.fromisoformat(str(value)))

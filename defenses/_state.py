"""Learned state as plain data (private): the codec behind
:meth:`Defense.state_dict <defenses.base.Defense.state_dict>`.

A defense declares the attributes it learns once (``state_attributes``); their values
are turned into plain data here and back, guided on the way back by the value the
attribute has after ``reset()`` (a deque stays a deque with its ``maxlen``, an array
keeps its dtype). Plain data is: ``dict`` (str keys), ``list``, ``tuple``, ``str``,
``int``, ``float``, ``bool``, ``None`` and NumPy arrays of numbers or fixed-width bytes.

The encodings:

- an array: a copy; a NumPy scalar: the Python number;
- a window of remembered votes, ``(now, VoteBatch)`` or ``(now, VoteBatch, weight)``:
  ``{"now", "account", "email", "verdict", "ts", "created"[, "weight"]}``;
- a deque of floats: a float64 array; other deques, lists and tuples: lists;
- a dict of int keys and int values: an ``(n, 2)`` int64 array of its items; other
  dicts: dicts (str keys only); a set: a sorted list;
- an object with ``state_dict``/``load_state_dict`` (a nested detector or ledger):
  its own state.

>>> from collections import deque
>>> from defenses.base import VoteBatch
>>> memory = deque([(2.0, VoteBatch.of([0], [5], [1]))])
>>> plain = encode(memory)
>>> sorted(plain[0]), plain[0]["email"].tolist()
(['account', 'created', 'email', 'now', 'ts', 'verdict'], [5])
>>> back = decode(plain, deque())
>>> back[0][0], back[0][1].email.tolist()
(2.0, [5])
>>> decode(encode({7: 1, 3: 0}), {})
{7: 1, 3: 0}
"""

from __future__ import annotations

from collections import deque

import numpy as np

_VOTE_FIELDS = ("account", "email", "verdict", "ts", "created")
_SCALARS = (bool, int, float, str)


def state_key(attribute: str) -> str:
    """The :meth:`state_dict` key of a declared attribute: its last dotted part without
    leading or trailing underscores (``"ledger_._memory"`` -> ``"memory"``)."""
    return attribute.rsplit(".", 1)[-1].strip("_")


def get_path(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def set_path(obj, path: str, value) -> None:
    *parents, last = path.split(".")
    for part in parents:
        obj = getattr(obj, part)
    setattr(obj, last, value)


def _is_window(value) -> bool:
    from defenses.base import VoteBatch

    return isinstance(value, tuple) and len(value) in (2, 3) and isinstance(value[1], VoteBatch)


def _window(value) -> dict:
    now, votes = value[0], value[1]
    out = {"now": float(now), **{f: getattr(votes, f).copy() for f in _VOTE_FIELDS}}
    if len(value) == 3:
        out["weight"] = np.array(value[2], dtype=np.float64)
    return out


def encode(value):
    """``value`` as plain data (copies: later changes of ``value`` do not show)."""
    from defenses.base import VoteBatch

    if value is None or isinstance(value, _SCALARS):
        return value
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, VoteBatch):
        return {f: getattr(value, f).copy() for f in _VOTE_FIELDS}
    if hasattr(value, "state_dict") and hasattr(value, "load_state_dict"):
        return value.state_dict()
    if _is_window(value):
        return _window(value)
    if isinstance(value, deque):
        if value and all(type(x) is float for x in value):
            return np.array(value, dtype=np.float64)
        return [encode(x) for x in value]
    if isinstance(value, (list, tuple)):
        return [encode(x) for x in value]
    if isinstance(value, (set, frozenset)):
        return sorted(encode(x) for x in value)
    if isinstance(value, dict):
        if value and all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in value) \
                and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value.values()):
            return np.array(list(value.items()), dtype=np.int64).reshape(-1, 2)
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"a state dict needs str keys, got {bad[0]!r}")
        return {k: encode(v) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} cannot be part of a defense's state")


def _item(value):
    """An element of a container, back from plain data: windows become ``(now, VoteBatch
    [, weight])`` tuples, lists become tuples."""
    from defenses.base import VoteBatch

    if isinstance(value, dict):
        if "now" in value and all(f in value for f in _VOTE_FIELDS):
            votes = VoteBatch.of(*(value[f] for f in _VOTE_FIELDS))
            if "weight" in value:
                return float(value["now"]), votes, np.array(value["weight"], dtype=np.float64)
            return float(value["now"]), votes
        return {k: _item(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_item(x) for x in value)
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def decode(value, fresh):
    """``value`` (from :func:`encode`) back into the type of ``fresh``, the attribute's
    value after ``reset()`` (a stateful object is loaded in place and returned)."""
    if value is None:
        return None
    if hasattr(fresh, "load_state_dict") and not isinstance(fresh, type):
        fresh.load_state_dict(value)
        return fresh
    if isinstance(fresh, np.ndarray):
        out = np.array(value, dtype=fresh.dtype)
        if out.size == 0 and fresh.ndim > 1:
            out = out.reshape((0, *fresh.shape[1:]))
        return out
    if isinstance(fresh, deque):
        items = value.tolist() if isinstance(value, np.ndarray) else value
        return deque((_item(x) for x in items), maxlen=fresh.maxlen)
    if isinstance(fresh, list):
        return [_item(x) for x in value]
    if isinstance(fresh, (set, frozenset)):
        return type(fresh)(_item(x) for x in value)
    if isinstance(fresh, dict):
        if isinstance(value, np.ndarray):
            return dict(zip(value[:, 0].tolist(), value[:, 1].tolist())) if value.size else {}
        return {k: _item(v) for k, v in value.items()}
    if isinstance(fresh, bool):
        return bool(value)
    if isinstance(fresh, int):
        return int(value)
    if isinstance(fresh, float):
        return float(value)
    return _item(value)


PLAIN_SCALARS = (type(None), bool, int, float, str)


def plain_problems(state, where: str = "state") -> list[str]:
    """Where ``state`` holds something other than plain data (empty when it is plain).

    >>> plain_problems({"a": [1, 2.0, None], "b": np.zeros(2)})
    []
    >>> plain_problems({"a": {1, 2}, 3: np.array(["x"], dtype=object)})
    ["state['a'] is a set", 'state has a non-str key 3', 'state[3] is an array of dtype object']
    """
    problems = []
    if isinstance(state, PLAIN_SCALARS):
        return problems
    if isinstance(state, np.ndarray):
        if state.dtype.kind not in "biufcS":
            problems.append(f"{where} is an array of dtype {state.dtype}")
        return problems
    if isinstance(state, dict) and type(state) is dict:
        for k, v in state.items():
            if not isinstance(k, str):
                problems.append(f"{where} has a non-str key {k!r}")
            problems += plain_problems(v, f"{where}[{k!r}]")
        return problems
    if type(state) in (list, tuple):
        for i, v in enumerate(state):
            problems += plain_problems(v, f"{where}[{i}]")
        return problems
    return [f"{where} is a {type(state).__name__}"]

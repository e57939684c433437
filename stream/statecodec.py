"""Learned state as bytes without pickle: JSON for the structure, ``.npz`` for arrays.

Defense and runtime state (:meth:`defenses.base.Defense.state_dict`) is made of
dicts, lists, tuples, strings, numbers, booleans, ``None``, bytes and NumPy arrays.
:func:`encode_state` writes it as one ``.npz`` archive (``allow_pickle=False``)
whose ``__structure__`` member is the JSON of the structure with every array
replaced by a reference; :func:`decode_state` reads it back, and refuses anything
that would need pickle. Whoever can write the database cannot make the service run
code by crafting a state blob.

>>> state = {"members": [{"alpha": np.arange(3.0), "seen": (1, "a"), 7: None}], "n": b"x"}
>>> back = decode_state(encode_state(state))
>>> back["members"][0]["alpha"].tolist(), back["members"][0]["seen"], back["members"][0][7], back["n"]
([0.0, 1.0, 2.0], (1, 'a'), None, b'x')
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np

__all__ = ["StateError", "decode_state", "encode_state"]


class StateError(ValueError):
    """A state value that cannot be encoded, or bytes that are not an encoded state."""


def encode_state(state: Any) -> bytes:
    arrays: dict[str, np.ndarray] = {}

    def walk(value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, np.generic):
            return walk(value.item())
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise StateError("object arrays cannot be stored as state")
            key = f"a{len(arrays)}"
            arrays[key] = value
            return {"__array__": key}
        if isinstance(value, bytes):
            return {"__bytes__": base64.b64encode(value).decode("ascii")}
        if isinstance(value, tuple):
            return {"__tuple__": [walk(v) for v in value]}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in value):
                return {k: walk(v) for k, v in value.items()}
            return {"__items__": [[walk(k), walk(v)] for k, v in value.items()]}
        raise StateError(f"a {type(value).__name__} cannot be stored as state (plain values and arrays only)")

    structure = json.dumps(walk(state), separators=(",", ":"))
    buffer = io.BytesIO()
    np.savez(buffer, __structure__=np.frombuffer(structure.encode("utf-8"), dtype=np.uint8), **arrays)
    return buffer.getvalue()


def decode_state(data: bytes) -> Any:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except Exception as exc:  # noqa: BLE001 - any unreadable blob is one clear error
        raise StateError(f"not an encoded state: {exc}") from None
    if "__structure__" not in arrays:
        raise StateError("not an encoded state: no structure")
    structure = json.loads(arrays.pop("__structure__").tobytes().decode("utf-8"))

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            if "__array__" in value:
                return arrays[value["__array__"]]
            if "__bytes__" in value:
                return base64.b64decode(value["__bytes__"])
            if "__tuple__" in value:
                return tuple(walk(v) for v in value["__tuple__"])
            if "__items__" in value:
                return {_hashable(walk(k)): walk(v) for k, v in value["__items__"]}
            return {k: walk(v) for k, v in value.items()}
        return value

    return walk(structure)


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key

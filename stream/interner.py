"""Dense integer ids for string ids (accounts, emails), as the kernels need."""

from __future__ import annotations

import numpy as np


class Interner:
    """Map strings to 0, 1, 2, ... in order of first sight.

    >>> ids = Interner()
    >>> ids.ids(["b", "a", "b"]).tolist(), ids.name(1), len(ids)
    ([0, 1, 0], 'a', 2)
    """

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._names: list[str] = []
        self._by_bytes: dict[bytes, int] = {}      # UTF-8 names seen by :meth:`column`

    def id(self, name: str) -> int:
        index = self._index.get(name)
        if index is None:
            index = self._index[name] = len(self._names)
            self._names.append(name)
        return index

    def ids(self, names) -> np.ndarray:
        return np.fromiter((self.id(n) for n in names), dtype=np.int64)

    def column(self, names: np.ndarray) -> np.ndarray:
        """Dense ids of an array of names (``str``, or UTF-8 ``bytes`` that are decoded),
        interning unseen names in order of first sight exactly as :meth:`ids` would.
        Bytes are looked up as they are (a name is decoded once, when first seen).

        >>> ids = Interner()
        >>> ids.id("z")
        0
        >>> ids.column(np.array([b"b", b"a", b"z", b"b"])).tolist(), ids.name(1), ids.name(2)
        ([1, 2, 0, 1], 'b', 'a')
        """
        names = np.asarray(names)
        if names.dtype.kind != "S":
            return self.ids(names.tolist())
        values = names.tolist()
        by_bytes = self._by_bytes
        found = list(map(by_bytes.get, values))
        if None in found:
            for i, value in enumerate(values):
                if found[i] is None:
                    index = by_bytes.get(value)
                    if index is None:
                        index = by_bytes[value] = self.id(value.decode("utf-8"))
                    found[i] = index
        return np.array(found, dtype=np.int64)

    def get(self, name: str) -> int | None:
        return self._index.get(name)

    def name(self, index: int) -> str:
        return self._names[index]

    def __len__(self) -> int:
        return len(self._names)

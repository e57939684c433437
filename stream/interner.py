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

    def id(self, name: str) -> int:
        index = self._index.get(name)
        if index is None:
            index = self._index[name] = len(self._names)
            self._names.append(name)
        return index

    def ids(self, names) -> np.ndarray:
        return np.fromiter((self.id(n) for n in names), dtype=np.int64)

    def get(self, name: str) -> int | None:
        return self._index.get(name)

    def name(self, index: int) -> str:
        return self._names[index]

    def __len__(self) -> int:
        return len(self._names)

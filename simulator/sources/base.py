"""The mail source contract."""

from __future__ import annotations

from abc import ABC, abstractmethod

from simulator.email import Email


class MailSource(ABC):
    """Supplies the four disjoint mail streams of a run.

    ``warmup`` trains the filter before tick 0, ``stream`` is each tick's ordinary
    mail, ``campaign`` the attacker's own spam, and ``evaluation`` the clean
    evaluation stream that is never trained on. A source must keep them disjoint
    (no email in two of them) and be deterministic for its seed. Email ids must be
    unique within a run.
    """

    @abstractmethod
    def warmup(self, n: int) -> list[Email]: ...

    @abstractmethod
    def stream(self, tick: int, n: int) -> list[Email]: ...

    @abstractmethod
    def campaign(self, tick: int, n: int) -> list[Email]: ...

    @abstractmethod
    def evaluation(self, tick: int, n: int) -> list[Email]: ...

    def lookalike(self, category: str, tick: int, n: int) -> list[Email]:
        """Mail an attacker can forge in ``category`` (a copy of the real thing's style),
        disjoint from every other stream. Sources that cannot forge raise NotImplementedError."""
        raise NotImplementedError(f"{type(self).__name__} cannot forge {category!r} mail")

    def describe(self) -> dict:
        """What the result document should say about this source."""
        return {"kind": type(self).__name__}

"""A labelled real-mail corpus as loaded from disk, before any split or category."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CorpusMessage:
    """One message of a corpus with its true label.

    ``key`` names the message in its corpus (``spam/00001.7848...`` or ``mail.csv:12``);
    ``list_id`` is the mailing list it came through (``List-Id`` header), empty if none;
    ``bulk`` says whether it was sent as bulk mail (a list or ``Precedence: bulk``).

    >>> m = CorpusMessage("spam/1", "a@x.example", "Hi", "Buy now", True)
    >>> m.domain, m.text.splitlines()
    ('x.example', ['Hi', 'Buy now'])
    """

    key: str
    sender: str
    subject: str
    body: str
    is_spam: bool
    list_id: str = ""
    bulk: bool = False

    @property
    def domain(self) -> str:
        """The sender's domain, lower-cased; empty when there is no sender."""
        return self.sender.rsplit("@", 1)[-1].lower() if "@" in self.sender else ""

    @property
    def text(self) -> str:
        """Subject and body, what topic clustering reads."""
        return f"{self.subject}\n{self.body}"


@dataclass(frozen=True)
class Corpus:
    """Messages in a stable order (sorted by key) and what loading them ran into.

    Attributes
    ----------
    origin
        The path the corpus was read from.
    messages
        Every message, sorted by ``key`` so a corpus loads the same on any machine.
    charset_errors
        Text parts and headers whose declared charset was unknown or wrong; they
        were decoded with replacement characters instead.
    skipped
        Files that were not messages (``cmds`` index files, unknown folders).
    """

    origin: str
    messages: tuple[CorpusMessage, ...]
    charset_errors: int = 0
    skipped: int = 0
    sources: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.messages)

    @property
    def n_spam(self) -> int:
        return sum(m.is_spam for m in self.messages)

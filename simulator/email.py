"""The email record that flows through the simulation."""

from __future__ import annotations

from dataclasses import dataclass

HAM_CATEGORIES = ("personal", "newsletter", "bank_alert", "promo")
SPAM_CATEGORIES = ("spam", "phishing", "campaign")
CATEGORIES = HAM_CATEGORIES + SPAM_CATEGORIES


@dataclass(frozen=True, slots=True)
class Email:
    """One email with its ground truth.

    >>> e = Email("e1", "alerts@bank.example", "Card payment", "A payment of $12", "bank_alert")
    >>> e.is_spam, e.text.splitlines()[0]
    (False, 'Card payment')
    """

    email_id: str
    sender: str
    subject: str
    body: str
    category: str
    crafted: bool = False  # made by the attacker for its own bots (injection, dictionary)

    @property
    def is_spam(self) -> bool:
        return self.category in SPAM_CATEGORIES

    @property
    def text(self) -> str:
        """What the filter reads: subject, body and the sender's domain."""
        domain = self.sender.rsplit("@", 1)[-1]
        return f"{self.subject}\n{self.body}\nfrom {domain}"

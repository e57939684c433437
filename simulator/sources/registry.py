"""``mail.source`` strings to mail sources."""

from __future__ import annotations

from simulator.config import MailConfig
from simulator.sources.base import MailSource
from simulator.sources.synthetic import SyntheticSource


def build_source(config: MailConfig, seed: int) -> MailSource:
    """The source named by ``config.source`` (``synthetic`` or ``KIND:PATH``)."""
    kind, _, _path = config.source.partition(":")
    if kind == "synthetic":
        return SyntheticSource(seed, config.spam_fraction, config.bank_alert_fraction)
    raise ValueError(f"unknown mail source {config.source!r}")

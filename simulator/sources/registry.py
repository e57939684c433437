"""``mail.source`` strings to mail sources."""

from __future__ import annotations

from simulator.config import MailConfig, source_kind_path
from simulator.sources.base import MailSource
from simulator.sources.synthetic import SyntheticSource


def build_source(config: MailConfig, seed: int) -> MailSource:
    """The source named by ``config.source``: ``synthetic``, or ``spamassassin:PATH``,
    ``csv:PATH`` or ``jsonl:PATH`` for a real corpus.

    A real corpus is parsed once per process; its target subset gets the categories of
    ``attack.targets`` (which :class:`~simulator.config.Scenario` hands to its
    ``MailConfig``; ``bank_alert`` for a bare ``MailConfig``).

    Raises
    ------
    ScenarioError
        If the corpus is missing or cannot be used (the message names the path).

    >>> build_source(MailConfig(), seed=1).describe()["kind"]
    'synthetic'
    """
    kind, _path = source_kind_path(config.source)
    if kind == "synthetic":
        return SyntheticSource(seed, config.spam_fraction, config.bank_alert_fraction)
    from simulator.sources.real import CorpusSource, plan_for

    return CorpusSource(plan_for(config, config._target_categories, seed), kind, seed)

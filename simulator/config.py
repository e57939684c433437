"""Scenario configuration: TOML files, ``--set`` overrides and validation.

Every key has a default, so an empty file, a partial file and ``--set`` overrides
all give a complete, validated :class:`Scenario`.

>>> s = load_scenario(None, ["population.bot_fraction=0.1", "ticks=90"])
>>> s.population.bot_fraction, s.ticks, s.attack.strategy
(0.1, 90, 'flip')
>>> load_scenario(None, ["population.bot_fraction=abc"])
Traceback (most recent call last):
...
simulator.config.ScenarioError: population.bot_fraction: expected a number, got 'abc'
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from simulator.email import HAM_CATEGORIES

ATTACK_STRATEGIES = ("none", "flip", "sleeper", "camouflage", "slow_burn", "burst", "sybil_churn", "backdoor",
                     "dictionary", "injection", "adaptive", "informed")
ACCOUNT_KINDS = ("fresh", "aged", "takeover")


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the key and the problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MailConfig(_Section):
    source: str = "synthetic"
    emails_per_tick: int = Field(200, ge=1)
    spam_fraction: float = Field(0.4, ge=0.0, le=1.0)
    bank_alert_fraction: float = Field(0.05, ge=0.0, le=1.0)
    eval_emails_per_tick: int = Field(100, ge=1)
    gold_emails_per_tick: int = Field(0, ge=0)

    # Real corpora (mail.source = "spamassassin:PATH", "csv:PATH", "jsonl:PATH"); see simulator/sources/.
    text_column: str = "text"                       # csv/jsonl: the column with the message text
    label_column: str = "label"                     # csv/jsonl: the column with spam/ham, 1/0, true/false
    campaign_from: str = "cluster"                  # the campaign subset of the spam: cluster, sender:D, list:L
    campaign_share: float = Field(0.15, gt=0.0, lt=1.0)   # cluster rule: wanted share of the spam
    targets_from: str = "cluster"                   # the target subset of the ham: cluster, sender:D, list:L
    targets_share: float = Field(0.06, gt=0.0, lt=1.0)    # cluster rule: wanted share of the ham
    warmup_share: float = Field(0.4, gt=0.0, lt=1.0)      # share of the corpus held for the warm-up
    eval_share: float = Field(0.2, gt=0.0, lt=1.0)        # share of the corpus held for evaluation
    # The categories a real source gives its target subset: set from attack.targets by Scenario.
    _target_categories: tuple[str, ...] = PrivateAttr(default=("bank_alert",))

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        kind, path = source_kind_path(value)
        if kind not in SOURCE_KINDS or (kind == "synthetic") != (path is None) or (path is not None and not path):
            raise ValueError(f"unsupported mail source {value!r} "
                             "(expected 'synthetic', 'spamassassin:PATH', 'csv:PATH' or 'jsonl:PATH')")
        return value

    @field_validator("campaign_from", "targets_from")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        from simulator.sources.selection import check_rule

        return check_rule(value)

    @model_validator(mode="after")
    def _splits_fit(self) -> "MailConfig":
        if self.warmup_share + self.eval_share >= 1.0:
            raise ValueError(f"mail.warmup_share + mail.eval_share ({self.warmup_share} + {self.eval_share}) "
                             "must leave mail for the stream (below 1)")
        return self


SOURCE_KINDS = ("synthetic", "spamassassin", "csv", "jsonl")


def source_kind_path(source: str) -> tuple[str, str | None]:
    """Split a ``mail.source`` string into its kind and path (None for ``synthetic``).

    >>> source_kind_path("spamassassin:../corpora/sa"), source_kind_path("synthetic")
    (('spamassassin', '../corpora/sa'), ('synthetic', None))
    """
    kind, sep, path = source.partition(":")
    return kind, (path.strip() if sep else None)


class PopulationConfig(_Section):
    users: int = Field(5000, ge=10)
    bot_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    recipients_per_email: int = Field(20, ge=1)
    report_rate: float = Field(0.3, ge=0.0, le=1.0)
    mistake_rate: float = Field(0.02, ge=0.0, le=1.0)
    junk_check_rate: float = Field(0.2, ge=0.0, le=1.0)


def _check_strategy(value: str) -> str:
    if value not in ATTACK_STRATEGIES:
        raise ValueError(f"unknown strategy {value!r} (choose from {', '.join(ATTACK_STRATEGIES)})")
    return value


class StrategyParams(_Section):
    """Parameters of the attack strategies (each strategy reads its own)."""

    sleep_ticks: int = Field(48, ge=0)               # sleeper: honest ticks before the flip
    honest_rate: float = Field(0.8, ge=0.0, le=1.0)  # sleeper, camouflage: report rate when posing
    slow_rate: float = Field(0.15, gt=0.0, le=1.0)   # slow_burn: share of chances to vote taken
    burst_ticks: int = Field(12, ge=1)               # burst: length of each flood
    burst_period: int = Field(48, ge=1)              # burst: ticks from one flood to the next
    burst_factor: float = Field(3.0, ge=1.0)         # burst: campaign volume multiplier during it
    churn_rate: float = Field(0.1, ge=0.0, le=1.0)   # sybil_churn: share of accounts replaced per tick
    trigger: str = "zqx7 verified"                   # backdoor: the trigger phrase
    trigger_repeats: int = Field(3, ge=1)
    backdoor_emails_per_tick: int = Field(10, ge=1)  # backdoor: trigger-carrying spam to its own bots
    dictionary_words: int = Field(1000, ge=10)       # dictionary: size of the ham dictionary
    dictionary_emails_per_tick: int = Field(1, ge=1)
    injection_emails_per_tick: int = Field(10, ge=1)  # injection: forged emails per tick
    max_volume_factor: float = Field(5.0, ge=1.0)    # adaptive: campaign volume ceiling
    # Every strategy: which accounts the ring runs and how like people its bots act.
    accounts: str = "fresh"                          # fresh, aged (bought) or takeover (stolen)
    participation: float = Field(1.0, gt=0.0, le=1.0)  # mean per-bot chance to act on an opportunity
    delay_ticks: float = Field(0.0, ge=0.0)          # mean delay of a vote after the mail arrives

    @field_validator("accounts")
    @classmethod
    def _known_accounts(cls, value: str) -> str:
        if value not in ACCOUNT_KINDS:
            raise ValueError(f"unknown accounts {value!r} (choose from {', '.join(ACCOUNT_KINDS)})")
        return value

    def strategy_params(self) -> dict:
        return {name: getattr(self, name) for name in StrategyParams.model_fields}


class RingConfig(StrategyParams):
    """One bot ring of a mixed population: its strategy and its share of the bots."""

    strategy: str = "flip"
    share: float = Field(1.0, gt=0.0)
    _explicit: frozenset = PrivateAttr(default=frozenset())   # keys the scenario set (see resolved_rings)

    _known_strategy = field_validator("strategy")(classmethod(lambda cls, v: _check_strategy(v)))


class AttackConfig(StrategyParams):
    strategy: str = "flip"
    start_tick: int = Field(60, ge=0)
    campaign_emails_per_tick: int = Field(20, ge=0)
    targets: list[str] = Field(default_factory=lambda: ["bank_alert"])
    campaign_bot_share: float = Field(0.3, gt=0.0, le=1.0)
    target_bot_share: float = Field(0.1, ge=0.0, le=1.0)
    bots_join_tick: int | None = Field(None, ge=0)
    rings: list[RingConfig] = Field(default_factory=list)

    _known_strategy = field_validator("strategy")(classmethod(lambda cls, v: _check_strategy(v)))

    @field_validator("targets")
    @classmethod
    def _ham_targets(cls, value: list[str]) -> list[str]:
        for target in value:
            if target not in HAM_CATEGORIES:
                raise ValueError(f"unknown target {target!r} (choose from {', '.join(HAM_CATEGORIES)})")
        return value

    def ring_defaults(self) -> dict:
        return self.strategy_params()

    def resolved_rings(self) -> list[RingConfig]:
        """The rings to run: ``rings`` (each inheriting unset parameters from this table)
        or one ring running ``strategy``; none at all when ``strategy`` is ``"none"``,
        whatever ``rings`` holds (the no-attack baseline has no attack).

        Each ring remembers which of its keys the scenario set (``explicit``), so a
        strategy that chooses e.g. its accounts itself (``informed``) knows when not to.

        >>> AttackConfig(strategy="none", rings=[RingConfig(strategy="flip")]).resolved_rings()
        []
        >>> [r.accounts for r in AttackConfig(accounts="aged", rings=[{"strategy": "flip"},
        ...     {"strategy": "sleeper", "accounts": "takeover"}]).resolved_rings()]
        ['aged', 'takeover']
        """
        if self.strategy == "none":
            return []
        own = self.model_fields_set & set(StrategyParams.model_fields)
        if not self.rings:
            ring = RingConfig(strategy=self.strategy, **self.strategy_params())
            ring._explicit = frozenset(own)
            return [ring]
        out = []
        for given in self.rings:
            ring = RingConfig(**{**self.strategy_params(), **given.model_dump(exclude_unset=True)})
            ring._explicit = frozenset(own | given.model_fields_set)
            out.append(ring)
        return out


class ReviewConfig(_Section):
    """The provider's own analysts confirm the true label of a sample of reported mail."""

    rate: float = Field(0.1, ge=0.0, le=1.0)
    delay_ticks: int = Field(6, ge=1)


class MajorityConfig(_Section):
    margin: float = Field(0.2, ge=0.0, lt=1.0)
    min_votes: int = Field(2, ge=1)


class ReputationConfig(_Section):
    new_prior: tuple[float, float] = (1.0, 1.0)
    established_prior: tuple[float, float] = (3.0, 1.0)
    min_age: float = Field(720.0, ge=0.0)
    quorum: float = Field(0.9, gt=0.0)
    margin: float = Field(0.2, ge=0.0, lt=1.0)
    review_weight: float = Field(1.0, ge=0.0)
    flag_below: float = Field(0.3, gt=0.0, lt=1.0)
    flag_min_evidence: float = Field(2.0, ge=0.0)


class DawidSkeneConfig(_Section):
    prior_correct: float = Field(4.0, gt=0.0)
    prior_wrong: float = Field(1.0, gt=0.0)
    min_confidence: float = Field(0.9, ge=0.5, lt=1.0)
    history_ticks: float = Field(48.0, gt=0.0)
    em_every: int = Field(6, ge=1)
    em_iter: int = Field(20, ge=1)
    flag_below: float = Field(0.4, gt=0.0, lt=1.0)
    flag_min_evidence: float = Field(3.0, ge=0.0)


class WawaConfig(_Section):
    prior: tuple[float, float] = (4.0, 1.0)
    quorum: float = Field(0.5, gt=0.0)
    margin: float = Field(0.2, ge=0.0, lt=1.0)
    truth_weight: float = Field(3.0, ge=0.0)
    memory_ticks: float = Field(48.0, ge=0.0)
    flag_below: float = Field(0.3, gt=0.0, lt=1.0)
    flag_min_evidence: float = Field(3.0, ge=0.0)


class GoldConfig(_Section):
    prior: tuple[float, float] = (4.0, 1.0)
    quorum: float = Field(0.5, gt=0.0)
    margin: float = Field(0.2, ge=0.0, lt=1.0)
    gold_weight: float = Field(3.0, ge=0.0)
    review_weight: float = Field(3.0, ge=0.0)
    memory_ticks: float = Field(48.0, ge=0.0)
    flag_below: float = Field(0.3, gt=0.0, lt=1.0)
    flag_min_evidence: float = Field(3.0, ge=0.0)


class CoordinationConfig(_Section):
    window_ticks: float = Field(24.0, gt=0.0)
    bucket_ticks: float = Field(1.0, gt=0.0)
    min_shared: int = Field(3, ge=1)
    min_jaccard: float = Field(0.05, ge=0.0, le=1.0)
    min_lift: float = Field(3.0, ge=0.0)
    min_cluster: int = Field(5, ge=2)
    cluster_cap: float = Field(0.0, ge=0.0)
    every: int = Field(3, ge=1)


class InfluenceCapConfig(_Section):
    share: float = Field(0.05, gt=0.0, le=1.0)
    floor: float = Field(1.0, ge=0.0)
    min_label_weight: float = Field(0.01, ge=0.0)
    detect: bool = True


class AgeGateConfig(_Section):
    min_age: float = Field(720.0, ge=0.0)
    ramp: float = Field(0.0, ge=0.0)
    young_weight: float = Field(0.0, ge=0.0, le=1.0)
    unknown_weight: float = Field(0.0, ge=0.0, le=1.0)


class RoniConfig(_Section):
    tolerance: float = Field(1e-3, ge=0.0)


class RollbackConfig(_Section):
    delta: float = Field(0.002, gt=0.0, lt=1.0)
    min_drop: float = Field(0.02, ge=0.0)
    snapshot_every: float = Field(6.0, gt=0.0)
    keep: int = Field(8, ge=1)
    use_reviews: bool = True
    cooldown_ticks: float = Field(0.0, ge=0.0)
    use_validation: bool = True
    min_samples: int = Field(100, ge=1)


class DefenseConfig(_Section):
    chain: list[str] = Field(default_factory=lambda: ["reputation"])
    window_ticks: int = Field(1, ge=1)
    majority: MajorityConfig = Field(default_factory=MajorityConfig)
    reputation: ReputationConfig = Field(default_factory=ReputationConfig)
    dawid_skene: DawidSkeneConfig = Field(default_factory=DawidSkeneConfig)
    wawa: WawaConfig = Field(default_factory=WawaConfig)
    gold: GoldConfig = Field(default_factory=GoldConfig)
    coordination: CoordinationConfig = Field(default_factory=CoordinationConfig)
    influence_cap: InfluenceCapConfig = Field(default_factory=InfluenceCapConfig)
    age_gate: AgeGateConfig = Field(default_factory=AgeGateConfig)
    roni: RoniConfig = Field(default_factory=RoniConfig)
    rollback: RollbackConfig = Field(default_factory=RollbackConfig)

    @field_validator("chain")
    @classmethod
    def _known_defenses(cls, value: list[str]) -> list[str]:
        from defenses.registry import DEFENSES, PRESETS

        if not value:
            raise ValueError("the chain needs at least one defense")
        for name in value:
            if name not in DEFENSES and name not in PRESETS:
                raise ValueError(f"unknown defense {name!r} (choose from {', '.join([*DEFENSES, *PRESETS])})")
        return value


class ModelConfig(_Section):
    kind: Literal["multinomial_nb"] = "multinomial_nb"
    warmup_emails: int = Field(2000, ge=0)
    validation_emails: int = Field(300, ge=0)
    alpha: float = Field(1.0, gt=0.0)


class Scenario(_Section):
    name: str = "coordinated-flip"
    seed: int = Field(7, ge=0)
    ticks: int = Field(240, ge=1)
    mail: MailConfig = Field(default_factory=MailConfig)
    population: PopulationConfig = Field(default_factory=PopulationConfig)
    attack: AttackConfig = Field(default_factory=AttackConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    defense: DefenseConfig = Field(default_factory=DefenseConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        if self.attack.strategy != "none" and self.attack.start_tick >= self.ticks:
            raise ValueError(f"attack.start_tick ({self.attack.start_tick}) must be below ticks ({self.ticks})")
        return self

    @model_validator(mode="after")
    def _mail_knows_targets(self) -> "Scenario":
        self.mail._target_categories = tuple(self.attack.targets)
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def with_overrides(self, overrides: list[str]) -> "Scenario":
        """A validated copy with ``key=value`` overrides applied."""
        return _validate(apply_overrides(self.to_dict(), overrides))


_TYPE_WORDS = {
    "float_parsing": "a number",
    "float_type": "a number",
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "model_type": "a table",
    "literal_error": None,
}


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "scenario"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    expected = _TYPE_WORDS.get(error["type"])
    if expected:
        return f"{key}: expected {expected}, got {error['input']!r}"
    message = error["msg"].removeprefix("Value error, ")
    return f"{key}: {message}"


def _validate(data: dict[str, Any]) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError("; ".join(_describe(e) for e in exc.errors())) from None


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings to a nested dict; values are TOML literals.

    >>> apply_overrides({"a": {"b": 1}}, ["a.b=2", "c='x'"])
    {'a': {'b': 2}, 'c': 'x'}
    """
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ScenarioError(f"--set {item!r}: expected key=value")
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ScenarioError(f"{key}: {part!r} is not a table")
            node = child
        node[parts[-1]] = _parse_value(raw.strip())
    return data


def load_scenario(path: str | Path | None, overrides: list[str] | None = None) -> Scenario:
    """Read a scenario file (or the defaults when ``path`` is None) and apply overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ScenarioError(f"scenario file not found: {path}")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ScenarioError(f"{path}: not valid TOML ({exc})") from None
        _resolve_corpus_path(data, path.parent)
    scenario = _validate(apply_overrides(data, list(overrides or [])))
    _check_corpus_path(scenario.mail.source)
    return scenario


def _resolve_corpus_path(data: dict[str, Any], base: Path) -> None:
    """A relative corpus path in a scenario file is relative to the file's directory."""
    mail = data.get("mail")
    source = mail.get("source") if isinstance(mail, dict) else None
    if not isinstance(source, str):
        return
    kind, path = source_kind_path(source)
    if kind != "synthetic" and path and not Path(path).expanduser().is_absolute():
        mail["source"] = f"{kind}:{os.path.abspath(base / path)}"


def _check_corpus_path(source: str) -> None:
    kind, path = source_kind_path(source)
    if kind != "synthetic" and path and not Path(path).expanduser().exists():
        raise ScenarioError(f"mail.source: corpus not found: {path}")

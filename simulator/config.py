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

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from simulator.email import HAM_CATEGORIES

ATTACK_STRATEGIES = ("none", "flip")


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

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if value != "synthetic":
            raise ValueError(f"unsupported mail source {value!r} (this version supports 'synthetic')")
        return value


class PopulationConfig(_Section):
    users: int = Field(5000, ge=10)
    bot_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    recipients_per_email: int = Field(20, ge=1)
    report_rate: float = Field(0.3, ge=0.0, le=1.0)
    mistake_rate: float = Field(0.02, ge=0.0, le=1.0)
    junk_check_rate: float = Field(0.2, ge=0.0, le=1.0)


class AttackConfig(_Section):
    strategy: str = "flip"
    start_tick: int = Field(60, ge=0)
    campaign_emails_per_tick: int = Field(20, ge=0)
    targets: list[str] = Field(default_factory=lambda: ["bank_alert"])
    campaign_bot_share: float = Field(0.3, gt=0.0, le=1.0)
    target_bot_share: float = Field(0.1, ge=0.0, le=1.0)
    bots_join_tick: int | None = Field(None, ge=0)

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        if value not in ATTACK_STRATEGIES:
            raise ValueError(f"unknown strategy {value!r} (choose from {', '.join(ATTACK_STRATEGIES)})")
        return value

    @field_validator("targets")
    @classmethod
    def _ham_targets(cls, value: list[str]) -> list[str]:
        for target in value:
            if target not in HAM_CATEGORIES:
                raise ValueError(f"unknown target {target!r} (choose from {', '.join(HAM_CATEGORIES)})")
        return value


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


class DefenseConfig(_Section):
    chain: list[str] = Field(default_factory=lambda: ["reputation"])
    window_ticks: int = Field(1, ge=1)
    majority: MajorityConfig = Field(default_factory=MajorityConfig)
    reputation: ReputationConfig = Field(default_factory=ReputationConfig)

    @field_validator("chain")
    @classmethod
    def _known_defenses(cls, value: list[str]) -> list[str]:
        from defenses.registry import DEFENSES

        if not value:
            raise ValueError("the chain needs at least one defense")
        for name in value:
            if name not in DEFENSES:
                raise ValueError(f"unknown defense {name!r} (choose from {', '.join(DEFENSES)})")
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
    return _validate(apply_overrides(data, list(overrides or [])))

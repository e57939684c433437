"""Words for the dashboard: metric titles, run labels, one-line summaries (no Streamlit here)."""

from __future__ import annotations

import math
from typing import Any

#: Metric key → (short title, one-line meaning, higher is better?).
METRICS: dict[str, tuple[str, str, bool]] = {
    "attack_success_rate": ("Attack success", "share of the attacker's campaign mail delivered to the inbox", False),
    "collateral_rate": ("Collateral damage", "share of targeted legitimate mail (e.g. bank alerts) sent to junk",
                        False),
    "clean_accuracy": ("Clean accuracy", "accuracy of the filter on a clean evaluation stream", True),
    "clean_fpr": ("False-positive rate", "legitimate mail the filter junks (clean stream)", False),
    "clean_fnr": ("False-negative rate", "spam the filter lets through (clean stream)", False),
    "label_precision": ("Label precision", "weighted share of the training labels that are correct", True),
    "honest_vote_loss": ("Honest votes lost", "share of honest feedback dropped or down-weighted by the defense",
                         False),
    "bot_precision": ("Bot precision", "of the accounts flagged as bots, the share that really are", True),
    "bot_recall": ("Bot recall", "of the bots, the share flagged by the end", True),
    "detection_delay_ticks": ("Detection delay", "median ticks from a bot's first malicious vote to its flag",
                              False),
    "accounts_flagged": ("Accounts flagged", "accounts flagged as bots by the end", False),
}

PERCENT_METRICS = frozenset(k for k in METRICS if k.endswith(("_rate", "_accuracy", "_precision", "_recall",
                                                                "_fpr", "_fnr", "_loss")))


def title(key: str) -> str:
    """The display title of a metric key.

    Examples
    --------
    >>> title("attack_success_rate"), title("made_up_metric")
    ('Attack success', 'Made up metric')
    """
    return METRICS[key][0] if key in METRICS else key.replace("_", " ").capitalize()


def meaning(key: str) -> str:
    """The one-line meaning of a metric key (empty when unknown)."""
    return METRICS[key][1] if key in METRICS else ""


def fmt(key: str, value: Any) -> str:
    """A metric value for display: percentages for rates, ``—`` when missing.

    Examples
    --------
    >>> fmt("attack_success_rate", 0.5625), fmt("detection_delay_ticks", 10.0), fmt("bot_recall", None)
    ('56.2%', '10 ticks', '—')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if key in PERCENT_METRICS:
        return f"{100 * float(value):.1f}%"
    if key == "detection_delay_ticks":
        return f"{float(value):g} ticks"
    if isinstance(value, float):
        return f"{value:,.3g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


STATUS_ICONS = {"running": "●", "finished": "✓", "failed": "✗"}


def run_label(run: dict[str, Any]) -> str:
    """A one-line label of a run summary for pickers.

    Examples
    --------
    >>> run_label({"run_id": "ab12cd34ef", "created_at": "2024-05-01T10:03:00+00:00", "name": "flip",
    ...            "defense": "reputation", "seed": 7, "status": "running", "attack_strategy": "flip"})
    '● running · flip · reputation · seed 7 · 2024-05-01 10:03 · ab12cd'
    """
    created = str(run.get("created_at", ""))[:16].replace("T", " ")
    attack = run.get("attack_strategy")
    defense = run.get("defense")
    what = "no attack (baseline)" if attack == "none" else defense
    return " · ".join([f"{STATUS_ICONS.get(run.get('status'), '')} {run.get('status')}".strip(),
                       str(run.get("name")), str(what), f"seed {run.get('seed')}", created,
                       str(run.get("run_id"))[:6]])


def chain_label(doc: dict[str, Any]) -> str:
    """How a run of a comparison is named: its defense chain, or ``no attack (baseline)``.

    Examples
    --------
    >>> chain_label({"defense": "none", "scenario": {"attack": {"strategy": "none"}}})
    'no attack (baseline)'
    >>> chain_label({"defense": "majority+reputation", "scenario": {"attack": {"strategy": "flip"}}})
    'majority+reputation'
    """
    if is_baseline(doc):
        return "no attack (baseline)"
    return str(doc.get("defense"))


def is_baseline(doc: dict[str, Any]) -> bool:
    """Whether a run document is a no-attack baseline."""
    attack = (doc.get("scenario") or {}).get("attack") or {}
    return attack.get("strategy", doc.get("attack_strategy")) == "none"


def attack_start(doc: dict[str, Any]) -> int | None:
    """The tick the attack starts in a run document (``None`` for no attack)."""
    attack = (doc.get("scenario") or {}).get("attack") or {}
    if attack.get("strategy") in (None, "none"):
        return None
    start = attack.get("start_tick")
    return None if start is None else int(start)


def compare_headline(docs: list[dict[str, Any]]) -> str | None:
    """One sentence telling what a comparison shows, from its runs' final-quarter metrics.

    Names the undefended attack's success and collateral (chain ``none`` under
    attack) and the chain with the lowest attack success.

    Examples
    --------
    >>> docs = [{"defense": "none", "scenario": {"attack": {"strategy": "flip"}},
    ...          "metrics": {"attack_success_rate": 0.56, "collateral_rate": 1.0}},
    ...         {"defense": "reputation", "scenario": {"attack": {"strategy": "flip"}},
    ...          "metrics": {"attack_success_rate": 0.0, "collateral_rate": 0.0}}]
    >>> compare_headline(docs)
    'Undefended, 56.0% of the campaign reached inboxes and 100.0% of targeted mail went to junk; reputation brings these to 0.0% and 0.0%.'
    """
    attacked = [d for d in docs if not is_baseline(d) and d.get("metrics")]
    if not attacked:
        return None

    def asr(doc: dict[str, Any]) -> float:
        value = doc["metrics"].get("attack_success_rate")
        return math.inf if value is None else float(value)

    parts = []
    undefended = next((d for d in attacked if d.get("defense") == "none"), None)
    if undefended is not None:
        m = undefended["metrics"]
        parts.append(f"Undefended, {fmt('attack_success_rate', m.get('attack_success_rate'))} of the campaign "
                     f"reached inboxes and {fmt('collateral_rate', m.get('collateral_rate'))} of targeted mail "
                     "went to junk")
    defended = [d for d in attacked if d.get("defense") != "none"]
    if defended:
        best = min(defended, key=asr)
        m = best["metrics"]
        asr_text = fmt("attack_success_rate", m.get("attack_success_rate"))
        collateral = fmt("collateral_rate", m.get("collateral_rate"))
        parts.append(f"; {best['defense']} brings these to {asr_text} and {collateral}" if parts else
                     f"Best defense: {best['defense']} ({asr_text} attack success, {collateral} collateral)")
    return "".join(parts) + "." if parts else None

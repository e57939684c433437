import pytest

from simulator.config import load_scenario
from simulator.engine import Simulation

SMALL = ["ticks=24", "attack.start_tick=8", "population.users=600", "mail.emails_per_tick=60",
         "mail.eval_emails_per_tick=40", "attack.campaign_emails_per_tick=8", "model.warmup_emails=600"]
RESULT_KEYS = {"attack_success_rate", "collateral_rate", "clean_accuracy", "clean_fpr", "clean_fnr",
               "label_precision", "honest_vote_loss", "bot_precision", "bot_recall",
               "detection_delay_ticks", "votes", "emails", "wall_s", "votes_per_s", "emails_per_s"}
THROUGHPUT = {"wall_s", "votes_per_s", "emails_per_s"}


def _run(*extra):
    return Simulation(load_scenario(None, SMALL + list(extra))).run()


def _stable(doc):
    return {k: v for k, v in doc["metrics"].items() if k not in THROUGHPUT}, doc["timeline"]


def test_same_seed_same_metrics():
    assert _stable(_run("seed=3")) == _stable(_run("seed=3"))


def test_different_seed_different_run():
    assert _stable(_run("seed=3")) != _stable(_run("seed=4"))


def test_result_document_has_every_metric():
    doc = _run()
    assert RESULT_KEYS <= set(doc["metrics"])
    assert len(doc["timeline"]) == 24
    assert doc["defense"] == "reputation" and doc["seed"] == 7
    assert doc["scenario"]["attack"]["strategy"] == "flip"
    assert doc["timeline"][0]["attack_success_rate"] is None      # no campaign before the attack
    assert doc["timeline"][-1]["attack_success_rate"] is not None


def test_mail_is_the_same_whatever_the_defense():
    a = Simulation(load_scenario(None, SMALL + ["defense.chain=['none']"]))
    b = Simulation(load_scenario(None, SMALL + ["defense.chain=['majority']"]))
    assert [e.text for e in a._tick_mail(9)[0]] == [e.text for e in b._tick_mail(9)[0]]


def test_no_attack_has_no_campaign_and_no_bot_votes():
    doc = _run("attack.strategy='none'")
    assert doc["metrics"]["attack_success_rate"] is None
    assert sum(e["bot_votes"] for e in doc["timeline"]) == 0


def _final_metrics(overrides):
    return Simulation(load_scenario(None, overrides)).run()["metrics"]


@pytest.mark.slow
def test_default_scenario_attack_works_and_reputation_stops_it():
    """The core claim on the default scenario (three full runs, two at a time)."""
    from concurrent.futures import ProcessPoolExecutor

    cells = {"none": ["defense.chain=['none']"], "reputation": ["defense.chain=['reputation']"],
             "baseline": ["attack.strategy='none'", "defense.chain=['none']"]}
    with ProcessPoolExecutor(max_workers=2) as pool:
        metrics = dict(zip(cells, pool.map(_final_metrics, cells.values())))
    assert metrics["none"]["attack_success_rate"] >= 0.5
    assert metrics["none"]["collateral_rate"] >= 0.2
    assert metrics["reputation"]["attack_success_rate"] <= 0.10
    assert metrics["reputation"]["collateral_rate"] <= 0.05
    assert abs(metrics["reputation"]["clean_accuracy"] - metrics["baseline"]["clean_accuracy"]) <= 0.02


def test_heavy_feedback_scenario_is_the_default_with_more_feedback():
    from pathlib import Path

    heavy = load_scenario(Path(__file__).resolve().parent.parent / "scenarios" / "heavy_feedback.toml")
    default = load_scenario(None)
    h, d = heavy.to_dict(), default.to_dict()
    assert {k for k in d if h[k] != d[k]} == {"name", "population"}
    assert heavy.population.users * heavy.population.bot_fraction >= 4 * default.population.users * default.population.bot_fraction
    assert heavy.population.recipients_per_email > default.population.recipients_per_email
    # A short run: many votes per email once the attack runs.
    doc = Simulation(load_scenario(Path(__file__).resolve().parent.parent / "scenarios" / "heavy_feedback.toml",
                                   ["ticks=6", "attack.start_tick=2", "model.warmup_emails=300"])).run()
    assert doc["metrics"]["votes"] / doc["metrics"]["emails"] > 20

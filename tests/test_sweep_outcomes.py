"""Per-account outcomes of a real run: what ``Simulation.account_outcomes`` and ``execute`` store."""

import pytest

from simulator.config import load_scenario
from simulator.runner import execute
from stream.storage import Repository
from tests.test_sweep import TINY


@pytest.fixture(scope="module")
def stored():
    """One small reputation run and one undefended run, stored as the runner stores them."""
    with Repository("sqlite://") as repo:
        docs = {chain: execute(load_scenario(None, TINY + [f"defense.chain=['{chain}']", "population.bot_fraction=0.1"]),
                               repo, save_model=(chain == "reputation"))
                for chain in ("reputation", "none")}
        yield repo, docs


def test_one_outcome_per_account_with_the_truth(stored):
    repo, docs = stored
    for doc in docs.values():
        outcomes = repo.account_outcomes(doc["run_id"])
        assert len(outcomes) == 300 and len({o["account_id"] for o in outcomes}) == 300
        assert sum(o["is_bot"] for o in outcomes) == 30
        # only bots vote maliciously, and they start no earlier than the attack
        malicious = [o for o in outcomes if o["first_malicious_tick"] is not None]
        assert malicious and all(o["is_bot"] for o in malicious)
        assert all(o["first_malicious_tick"] >= 4 for o in malicious)


def test_flags_match_the_run_metrics(stored):
    repo, docs = stored
    doc = docs["reputation"]
    outcomes = repo.account_outcomes(doc["run_id"])
    flagged = [o for o in outcomes if o["flagged_tick"] is not None]
    bots_flagged = sum(o["is_bot"] for o in flagged)
    assert len(flagged) == doc["metrics"]["accounts_flagged"] > 0
    assert bots_flagged / 30 == pytest.approx(doc["metrics"]["bot_recall"])
    assert bots_flagged / len(flagged) == pytest.approx(doc["metrics"]["bot_precision"])


def test_trust_only_with_a_reputation_member(stored):
    repo, docs = stored
    assert all(o["trust"] is None for o in repo.account_outcomes(docs["none"]["run_id"]))
    outcomes = repo.account_outcomes(docs["reputation"]["run_id"])
    assert all(0.0 < o["trust"] < 1.0 for o in outcomes)
    honest = sorted(o["trust"] for o in outcomes if not o["is_bot"])
    bots = sorted(o["trust"] for o in outcomes if o["is_bot"])
    assert honest[len(honest) // 2] > bots[len(bots) // 2]          # the defense tells them apart
    assert max(o["trust"] for o in outcomes if o["flagged_tick"] is not None) < 0.3   # flag_below


def test_the_final_model_is_stored_and_verified(stored):
    repo, docs = stored
    [snapshot] = repo.list_model_snapshots(docs["reputation"]["run_id"])
    assert snapshot["tick"] == 16 and snapshot["size"] > 1000
    model = repo.load_model(docs["reputation"]["run_id"])
    assert model.nb.class_counts and repo.list_model_snapshots(docs["none"]["run_id"]) == []

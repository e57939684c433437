import numpy as np

from simulator.config import PopulationConfig
from simulator.population import Population


def _population(**kw):
    return Population.build(PopulationConfig(users=2000, **kw), np.random.default_rng(1), bots_join_tick=30)


def test_bots_are_last_new_and_ids_reveal_nothing():
    p = _population(bot_fraction=0.1)
    assert p.n_bots == 200 and p.is_bot[p.bots].all() and not p.is_bot[: p.n_honest].any()
    assert (p.created_tick[p.bots] == 30).all() and (p.created_tick[: p.n_honest] < 0).all()
    assert sorted(p.account_ids) != p.account_ids          # shuffled, not bots-last


def test_users_differ_around_the_means():
    p = _population(report_rate=0.3, mistake_rate=0.02)
    honest = slice(0, p.n_honest)
    assert abs(p.report_rate[honest].mean() - 0.3) < 0.03 and p.report_rate[honest].std() > 0.1
    assert abs(p.mistake_rate[honest].mean() - 0.02) < 0.01


def test_recipients_are_distinct_honest_users():
    p = _population(bot_fraction=0.1)
    r = p.honest_recipients(np.random.default_rng(0), 500, 20)
    assert r.shape == (500, 20) and r.max() < p.n_honest
    assert all(len(set(row)) == 20 for row in r)


def test_reports_follow_folders_and_the_mistake_rate():
    p = _population(report_rate=0.3, mistake_rate=0.05, junk_check_rate=0.2)
    rng = np.random.default_rng(2)
    n = 20_000
    recipients = p.honest_recipients(rng, n, 20)
    is_spam = rng.random(n) < 0.4
    junk = np.where(rng.random(n) < 0.1, ~is_spam, is_spam)          # 10% misfiled
    rows, users, verdict = p.honest_reports(rng, recipients, is_spam, junk, 0.2)
    wrong = verdict != is_spam[rows]
    assert abs(wrong.mean() - 0.05) < 0.01                          # "chance a report is wrong"
    right = ~wrong
    assert (junk[rows[right]] != is_spam[rows[right]]).all()        # right reports are on misfiled mail
    assert (junk[rows[wrong]] == is_spam[rows[wrong]]).all()        # wrong ones on correctly filed mail
    # Junk is seen less: misfiled ham in junk gets fewer reports than misfiled spam in the inbox.
    ham_in_junk = (rows[right][~is_spam[rows[right]]]).size / max(1, (~is_spam & junk).sum())
    spam_in_inbox = (rows[right][is_spam[rows[right]]]).size / max(1, (is_spam & ~junk).sum())
    assert ham_in_junk < spam_in_inbox / 3


def _recipients_one_row_at_a_time(p, rng, n_emails, per_email):
    """The original row-by-row duplicate check (a set per row): the reference."""
    per_email = min(per_email, p.n_honest)
    out = rng.integers(0, p.n_honest, size=(n_emails, per_email))
    for row in np.flatnonzero([len(set(r)) < per_email for r in out]):
        out[row] = rng.choice(p.n_honest, size=per_email, replace=False)
    return out


def test_recipients_draw_the_same_as_the_row_by_row_reference():
    p = _population(bot_fraction=0.1)
    for per_email in (1, 20, 100, 5000):
        fast = p.honest_recipients(np.random.default_rng(per_email), 300, per_email)
        slow = _recipients_one_row_at_a_time(p, np.random.default_rng(per_email), 300, per_email)
        assert np.array_equal(fast, slow)


def test_account_id_bytes_follow_new_accounts():
    p = _population(bot_fraction=0.1)
    assert p.account_id_bytes.tolist() == [a.encode() for a in p.account_ids]
    p.add_bots(3, created_tick=5, ring=0)
    assert p.account_id_bytes.tolist() == [a.encode() for a in p.account_ids]

"""Real corpora as the mail source: scenario keys, categories, splits, cycling, runs."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from simulator.config import MailConfig, Scenario, ScenarioError, load_scenario
from simulator.email import SPAM_CATEGORIES
from simulator.engine import Simulation
from simulator.sources.loading import load_corpus
from simulator.sources.real import CorpusSource, make_plan
from simulator.sources.registry import build_source
from tests.test_sources_fixtures import generated_layout, write_archives, write_folders

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    """120 ham in four topics (one a mailing list), 45 spam in three, as .tar.bz2 archives."""
    return write_archives(tmp_path_factory.mktemp("corpus"), generated_layout())


def _scenario(corpus_dir, *overrides):
    return load_scenario(None, [f"mail.source='spamassassin:{corpus_dir}'", "mail.campaign_share=0.33",
                                "mail.targets_share=0.25", *overrides])


def _source(corpus_dir, *overrides, seed=3) -> CorpusSource:
    return build_source(_scenario(corpus_dir, *overrides).mail, seed)


def _domain(m):
    return m.domain


# -- scenario keys and files ---------------------------------------------------------------------

def test_relative_corpus_path_in_a_file_is_relative_to_the_file(tmp_path):
    write_folders(tmp_path / "data" / "sa")
    (tmp_path / "scen").mkdir()
    (tmp_path / "scen" / "s.toml").write_text('[mail]\nsource = "spamassassin:../data/sa"\n')
    s = load_scenario(tmp_path / "scen" / "s.toml")
    assert s.mail.source == f"spamassassin:{tmp_path / 'data' / 'sa'}"


def test_missing_corpus_is_a_scenario_error_naming_the_path(tmp_path):
    (tmp_path / "s.toml").write_text('[mail]\nsource = "csv:missing/mail.csv"\n')
    with pytest.raises(ScenarioError, match=f"mail.source: corpus not found: {tmp_path / 'missing' / 'mail.csv'}"):
        load_scenario(tmp_path / "s.toml")
    with pytest.raises(ScenarioError, match="corpus not found: /no/such/corpus"):
        load_scenario(None, ["mail.source='spamassassin:/no/such/corpus'"])


@pytest.mark.parametrize("override,message", [
    ("mail.source='maildir:/x'", "mail.source: unsupported mail source 'maildir:/x'"),
    ("mail.source='spamassassin:'", "mail.source: unsupported mail source"),
    ("mail.source='synthetic:x'", "mail.source: unsupported mail source"),
    ("mail.campaign_from='topic:pills'", "mail.campaign_from: expected 'cluster', 'sender:DOMAIN"),
    ("mail.targets_from='sender:'", "mail.targets_from: expected 'cluster'"),
    ("mail.eval_share=0.6", "must leave mail for the stream"),
])
def test_bad_mail_keys(override, message):
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(")):
        load_scenario(None, [override])


def test_default_scenario_file_spells_out_the_defaults():
    assert load_scenario(SCENARIOS / "default.toml") == Scenario()


def test_spamassassin_scenario_points_next_to_the_project(corpus_dir):
    shared = (REPO.parent / "shared" / "corpora" / "spamassassin").resolve()
    try:
        s = load_scenario(SCENARIOS / "spamassassin.toml")
        assert Path(s.mail.source.partition(":")[2]).resolve() == shared
    except ScenarioError as exc:                        # no shared corpus on this machine
        assert str(exc) == f"mail.source: corpus not found: {shared}"
    s = load_scenario(SCENARIOS / "spamassassin.toml", [f"mail.source='spamassassin:{corpus_dir}'"])
    assert s.mail.source == f"spamassassin:{corpus_dir}" and s.mail.emails_per_tick < Scenario().mail.emails_per_tick


# -- categories and splits -----------------------------------------------------------------------

def test_parsed_once_per_process(corpus_dir):
    assert load_corpus("spamassassin", corpus_dir) is load_corpus("spamassassin", str(corpus_dir))


def test_splits_are_disjoint_and_cover_the_corpus(corpus_dir):
    plan = _source(corpus_dir).plan
    parts = [set(p.tolist()) for p in (plan.warmup, plan.stream, plan.evaluation, plan.campaign)]
    assert sum(len(p) for p in parts) == len(set().union(*parts)) == len(plan.corpus) == 165
    assert len(parts[2]) == pytest.approx(0.2 * (165 - len(parts[3])), abs=3)
    assert len(parts[0]) == pytest.approx(0.4 * (165 - len(parts[3])), abs=3)
    for position, category in enumerate(plan.categories):
        assert (category in SPAM_CATEGORIES) == plan.corpus.messages[position].is_spam
    assert {plan.categories[p] for p in parts[3]} == {"campaign"}
    assert "campaign" not in {plan.categories[p] for p in set().union(*parts[:3])}
    for split in parts[:3]:                             # every category is in every split
        assert {plan.categories[p] for p in split} == set(plan.categories) - {"campaign"}


def test_clusters_are_coherent_topics(corpus_dir):
    plan = _source(corpus_dir).plan
    messages = plan.corpus.messages
    campaign = Counter(_domain(messages[p]) for p in plan.campaign.tolist())
    targets = Counter(_domain(messages[p]) for p, c in enumerate(plan.categories) if c == "bank_alert")
    assert len(campaign) == 1 and sum(campaign.values()) == 15      # one spam topic, whole
    assert len(targets) == 1 and sum(targets.values()) == 30        # one ham topic, whole
    info = _source(corpus_dir).describe()
    assert info["campaign"]["rule"] == "cluster" and info["campaign"]["messages"] == 15
    assert info["targets"]["category"] == "bank_alert" and info["targets"]["top_terms"]


def test_sender_and_list_rules(corpus_dir):
    plan = _source(corpus_dir, "mail.campaign_from='sender:casino.example'", "mail.targets_from='list:ilug'").plan
    messages = plan.corpus.messages
    assert {_domain(messages[p]) for p in plan.campaign.tolist()} == {"casino.example"}
    assert plan.campaign.size == 15
    targets = [messages[p] for p, c in enumerate(plan.categories) if c == "bank_alert"]
    assert len(targets) == 30 and {m.list_id for m in targets} == {"ilug.linux.example"}
    ordinary = {c for p, c in enumerate(plan.categories) if not messages[p].is_spam and c != "bank_alert"}
    assert ordinary == {"personal"}                     # no other list mail in this corpus


def test_a_rule_that_selects_nothing(corpus_dir):
    with pytest.raises(ScenarioError, match="mail.campaign_from: 'sender:nobody.example' selects no message "
                                            "among the 45 spam messages"):
        _source(corpus_dir, "mail.campaign_from='sender:nobody.example'")


def test_the_mail_section_learns_the_attack_targets():
    s = load_scenario(None, ["attack.targets=['newsletter', 'promo']"])
    assert s.mail._target_categories == ("newsletter", "promo")
    assert Scenario.model_validate(s.to_dict()).mail._target_categories == ("newsletter", "promo")  # worker copies
    assert MailConfig()._target_categories == ("bank_alert",)


def test_targets_take_the_category_the_attack_names(corpus_dir):
    plan = _source(corpus_dir, "attack.targets=['newsletter']", "mail.targets_from='sender:home.example'").plan
    messages = plan.corpus.messages
    newsletters = [messages[p] for p, c in enumerate(plan.categories) if c == "newsletter"]
    assert newsletters and {m.domain for m in newsletters} == {"home.example"}
    # the linux list mail would be "newsletter"; it is not a target, so it gets another ham category
    assert {plan.categories[p] for p, m in enumerate(messages) if m.list_id} == {"personal"}


def test_same_seed_same_mail_other_seed_other_order(corpus_dir):
    a, b, c = (_source(corpus_dir, seed=s) for s in (3, 3, 4))

    def texts(src):
        return [e.text for e in src.stream(5, 20) + src.campaign(5, 4) + src.evaluation(5, 10)]

    assert texts(a) == texts(b) != texts(c)
    assert [e.category for e in a.warmup(10)] == [e.category for e in b.warmup(10)]


def test_stream_cycles_through_its_split_with_fresh_ids(corpus_dir):
    src = _source(corpus_dir)
    size = src.plan.stream.size
    by_text = {}
    for p in src.plan.stream.tolist():
        m = src.plan.corpus.messages[p]
        by_text.setdefault(f"{m.subject}\n{m.body}\nfrom {m.domain}", []).append(p)
    emails = [e for tick in range(3 * size // 7 + 1) for e in src.stream(tick, 7)]
    assert len({e.email_id for e in emails}) == len(emails)
    for k in range(3):                                  # each pass holds every stream message once
        one_pass = Counter(e.text for e in emails[k * size:(k + 1) * size])
        assert sum(one_pass.values()) == size and set(one_pass) == set(by_text)
    assert [e.text for e in emails[:size]] != [e.text for e in emails[size:2 * size]]


def test_evaluation_and_warmup_never_meet_the_stream(corpus_dir):
    src = _source(corpus_dir)
    stream = {e.text for t in range(40) for e in src.stream(t, 10)}
    evaluation = {e.text for t in range(40) for e in src.evaluation(t, 10)}
    warmup = {e.text for e in src.warmup(10_000)}
    campaign = {e.text for t in range(40) for e in src.campaign(t, 3)}
    assert len(src.warmup(10_000)) == src.plan.warmup.size     # the warm-up does not cycle
    assert not (stream & evaluation or stream & warmup or evaluation & warmup or campaign & (stream | evaluation))
    assert src.describe()["warmup_used"] == src.plan.warmup.size


def test_lookalikes_copy_warmup_mail_and_the_campaign(corpus_dir):
    src = _source(corpus_dir)
    warm = {e.text for e in src.warmup(10_000) if e.category == "bank_alert"}
    forged = src.lookalike("bank_alert", 2, 5)
    assert len(forged) == 5 and {e.text for e in forged} <= warm and {e.category for e in forged} == {"bank_alert"}
    assert src.lookalike("bank_alert", 3, 5)[0].email_id != forged[0].email_id
    assert {e.category for e in src.lookalike("campaign", 2, 3)} == {"campaign"}
    assert src.lookalike("promo", 2, 3) == []


def test_csv_corpus_as_a_source(tmp_path):
    layout = generated_layout(ham_per_topic=15, spam_per_topic=8)
    rows = ["message,kind"]
    for folder, files in layout.items():
        for raw in files.values():
            text = raw.decode().split("\n\n", 1)[1].strip()
            rows.append(f'"{text}",{"spam" if folder == "spam" else "ham"}')
    (tmp_path / "mail.csv").write_text("\n".join(rows) + "\n")
    config = MailConfig(source=f"csv:{tmp_path / 'mail.csv'}", text_column="message", label_column="kind",
                        campaign_share=0.33, targets_share=0.25)
    src = build_source(config, seed=1)
    info = src.describe()
    assert info["kind"] == "csv" and info["messages"] == 84 and info["spam"] == 24
    assert info["categories"]["campaign"] == 8 and info["categories"]["bank_alert"] == 15


def test_make_plan_is_reproducible(corpus_dir):
    corpus = load_corpus("spamassassin", corpus_dir)
    config = _scenario(corpus_dir).mail
    a, b = make_plan(corpus, config, ("bank_alert",), 11), make_plan(corpus, config, ("bank_alert",), 11)
    assert a.categories == b.categories and (a.stream == b.stream).all() and (a.evaluation == b.evaluation).all()


# -- runs ----------------------------------------------------------------------------------------

SMALL_REAL = ["ticks=16", "attack.start_tick=4", "population.users=300", "mail.emails_per_tick=20",
              "mail.eval_emails_per_tick=20", "attack.campaign_emails_per_tick=4", "model.warmup_emails=50",
              "model.validation_emails=10"]


def test_a_run_on_real_mail(corpus_dir):
    scenario = _scenario(corpus_dir, *SMALL_REAL)
    doc = Simulation(scenario).run()
    again = Simulation(scenario).run()
    source = doc["mail_source"]
    assert source["kind"] == "spamassassin" and source["path"] == str(corpus_dir)
    assert source["warmup_used"] == 60 and "cycle" in source["cycling"]
    m = doc["metrics"]
    assert m["attack_success_rate"] is not None and m["collateral_rate"] is not None
    assert m["clean_accuracy"] > 0.8                    # the topics are easy to tell apart
    throughput = ("wall_s", "votes_per_s", "emails_per_s")
    assert ({k: v for k, v in doc["metrics"].items() if k not in throughput}
            == {k: v for k, v in again["metrics"].items() if k not in throughput})
    json.dumps(doc)                                     # the result document serializes


def _poisonlab(*args, cwd):
    return subprocess.run([sys.executable, "-m", "simulator.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600, check=False)


def test_cli_missing_corpus_exits_2_with_one_line(tmp_path):
    (tmp_path / "s.toml").write_text('[mail]\nsource = "spamassassin:corpus"\n')
    result = _poisonlab("run", "s.toml", "--quiet", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"poisonlab: error: mail.source: corpus not found: {tmp_path / 'corpus'}"


def test_cli_bad_csv_row_exits_2_naming_file_and_line(tmp_path):
    (tmp_path / "mail.csv").write_text("text,label\nhello,ham\nbuy now,perhaps\n")
    result = _poisonlab("run", "--set", "mail.source='csv:mail.csv'", "--db", f"sqlite:///{tmp_path}/r.db",
                        "--quiet", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"poisonlab: error: {tmp_path / 'mail.csv'}:3: label 'perhaps' is neither "
                                     "spam (spam, 1, true) nor ham (ham, 0, false)")


def test_cli_run_on_a_corpus(corpus_dir, tmp_path):
    sets = [a for item in SMALL_REAL + [f"mail.source='spamassassin:{corpus_dir}'", "mail.campaign_share=0.33"]
            for a in ("--set", item)]
    result = _poisonlab("run", *sets, "--defense", "none", "--db", f"sqlite:///{tmp_path}/r.db", "--json", "out.json",
                        "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["mail_source"]["kind"] == "spamassassin" and doc["mail_source"]["campaign"]["messages"] > 0

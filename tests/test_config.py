import pytest

from simulator.config import Scenario, ScenarioError, apply_overrides, load_scenario


def test_defaults_are_complete():
    s = load_scenario(None)
    assert s == Scenario()
    assert s.population.bot_fraction == 0.05 and s.attack.strategy == "flip"
    assert s.defense.chain == ["reputation"]


def test_partial_file_and_overrides(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "mine"\n[population]\nusers = 300\n')
    s = load_scenario(path, ["population.bot_fraction=0.2", 'attack.targets=["promo"]', "defense.chain=['majority']"])
    assert (s.name, s.population.users, s.population.bot_fraction) == ("mine", 300, 0.2)
    assert s.attack.targets == ["promo"] and s.defense.chain == ["majority"]
    assert s.mail.emails_per_tick == 200          # untouched keys keep their defaults


@pytest.mark.parametrize("override,message", [
    ("population.bot_fraction=abc", "population.bot_fraction: expected a number, got 'abc'"),
    ("population.users=1.5", "population.users: expected an integer"),
    ("population.nonsense=1", "population.nonsense: unknown key"),
    ("bogus=1", "bogus: unknown key"),
    ("attack.strategy='teleport'", "attack.strategy: unknown strategy 'teleport'"),
    ("defense.chain=['magic']", "defense.chain: unknown defense 'magic'"),
    ("attack.targets=['campaign']", "attack.targets: unknown target 'campaign'"),
    ("population.bot_fraction=2", "population.bot_fraction"),
    ("attack.start_tick=999", "attack.start_tick (999) must be below ticks"),
    ("novalue", "expected key=value"),
    ("attack.accounts='stolen'", "attack.accounts: unknown accounts 'stolen' (choose from fresh, aged, takeover)"),
    ("attack.rings=[{strategy='flip', accounts='old'}]", "attack.rings.0.accounts: unknown accounts 'old'"),
    ("attack.participation=0", "attack.participation"),
    ("attack.delay_ticks=-1", "attack.delay_ticks"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ScenarioError) as info:
        load_scenario(None, [override])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ScenarioError, match="scenario file not found"):
        load_scenario(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(bad)


def test_override_into_a_value_that_is_not_a_table():
    with pytest.raises(ScenarioError, match="not a table"):
        apply_overrides({"a": 1}, ["a.b=2"])


def test_to_dict_round_trips():
    s = load_scenario(None, ["ticks=100"])
    assert Scenario.model_validate(s.to_dict()) == s


def test_no_attack_means_no_ring_whatever_the_rings():
    s = load_scenario(None, ["attack.strategy='none'", "attack.rings=[{strategy='flip'}, {strategy='sleeper'}]"])
    assert s.attack.resolved_rings() == []
    flip = load_scenario(None, ["attack.rings=[{strategy='flip'}]"])
    assert [r.strategy for r in flip.attack.resolved_rings()] == ["flip"]


def test_ring_accounts_inherit_and_remember_what_was_set():
    s = load_scenario(None, ["attack.accounts='aged'", "attack.participation=0.5",
                             "attack.rings=[{strategy='flip'}, {strategy='informed', accounts='takeover'}]"])
    rings = s.attack.resolved_rings()
    assert [r.accounts for r in rings] == ["aged", "takeover"] and rings[0].participation == 0.5
    assert "accounts" in rings[0]._explicit and "accounts" in rings[1]._explicit
    assert "accounts" not in load_scenario(None).attack.resolved_rings()[0]._explicit

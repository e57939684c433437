"""The one defense runtime: what the lab decided is what a restored runtime decides.

A short lab run is captured at the runtime's doorstep (every email, truth, window and
truth pass, in order); the capture is then replayed into fresh runtimes: one straight
through, one stopped halfway, its state written as bytes (:mod:`stream.statecodec`,
what the service checkpoints) and loaded into new objects. Both must emit the lab's
labels and control records exactly, for every registered defense and ``recommended``.
"""

from __future__ import annotations

import numpy as np
import pytest

from defenses.registry import DEFENSES, build_chain
from simulator.config import load_scenario
from simulator.engine import Simulation
from stream.classifier import SpamModel
from stream.runtime import DefenseRuntime
from stream.statecodec import decode_state, encode_state

SETTINGS = ["ticks=24", "attack.start_tick=6", "population.users=600", "mail.emails_per_tick=60",
            "model.warmup_emails=300", "mail.gold_emails_per_tick=4"]


def _capture(chain: str):
    scenario = load_scenario(None, [*SETTINGS, f'defense.chain=["{chain}"]'])
    sim = Simulation(scenario)
    runtime = sim.defense.runtime
    calls, outputs = [], []
    for name in ("add_email", "add_gold", "add_reviews", "apply_truths"):
        original = getattr(runtime, name)

        def record(*args, _name=name, _original=original):
            calls.append((_name, args))
            return _original(*args)

        setattr(runtime, name, record)
    original_decide, original_bind = runtime.decide, runtime.bind_model

    def decide(*args):
        calls.append(("decide", tuple(np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args)))
        result = original_decide(*args)
        outputs.append(_view(result))
        return result

    def bind_model(model, validation=None):
        calls.insert(0, ("bind_model", (model.state_dict(), list(validation or []))))
        return original_bind(model, validation)

    runtime.decide, runtime.bind_model = decide, bind_model
    sim.run()
    return scenario, calls, outputs


def _view(result):
    return ([(e.label_id, e.label, round(e.weight, 9)) for e in result.labels],
            [(c["control"], c["snapshot_id"]) for c in result.controls])


def _fresh(scenario) -> DefenseRuntime:
    return DefenseRuntime(build_chain(scenario.defense), float(scenario.defense.window_ticks))


def _replay(scenario, calls, stop_at: int | None = None):
    runtime, outputs = _fresh(scenario), []
    bound = None
    for i, (name, args) in enumerate(calls):
        if name == "bind_model":
            model = SpamModel()
            model.load_state_dict(args[0])
            runtime.bind_model(model, args[1])
            bound = args
            continue
        if i == stop_at:
            data = encode_state(runtime.state_dict())
            features = dict(runtime.features)
            runtime = _fresh(scenario)
            if bound is not None:
                runtime.bind_model(SpamModel(), bound[1])
            runtime.load_state_dict(decode_state(data))
            for email_id, f in features.items():
                runtime.add_email(email_id, f)
        result = getattr(runtime, name)(*args)
        if name == "decide":
            outputs.append(_view(result))
    return outputs


@pytest.mark.parametrize("chain", [*sorted(DEFENSES), "recommended"])
def test_a_restored_runtime_decides_what_the_lab_decided(chain):
    scenario, calls, lab = _capture(chain)
    assert sum(len(labels) for labels, _ in lab) > 50
    assert _replay(scenario, calls) == lab
    half = [i for i, (name, _) in enumerate(calls) if name == "decide"][len(lab) // 2]
    assert _replay(scenario, calls, stop_at=half) == lab
    if chain in ("rollback", "recommended"):
        assert any(controls for _, controls in lab), "the stream should make rollback snapshot the model"

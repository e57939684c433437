"""The check suite every defense passes, in the style of River's ``river/checks``.

Each check takes a factory of the defense under test (``make_defense()`` returns a
fresh, unbound instance, or a :class:`~defenses.chain.Chain`) and optionally a factory
of a :class:`~defenses.context.DefenseContext` (``make_context()`` returns a fresh
context over a fresh model and a trusted validation set), which defenses that declare
``needs_model`` require. A check raises ``AssertionError`` when the defense fails it.
:func:`yield_checks` gives the checks that apply to a defense.

The checks run the defense over :func:`vote_stream`: several windows of honest votes
(established accounts, mostly right), gold emails announced before their votes,
reviews of the previous window, and a ring of young accounts that calls the spam of a
few windows "not spam". Gold labels are announced a window ahead of their votes.
Email ids are dense and **even ids are spam**
(:func:`is_spam`): a context factory must give emails features that agree with that.
With a context, the learned labels train the context's model after every window (the
learner's part), so a model-watching defense sees the poisoning land.

>>> from defenses.majority import MajorityVote
>>> for check in yield_checks(MajorityVote()):
...     _ = check(MajorityVote)
>>> [check.__name__ for check in yield_checks(MajorityVote())][:3]
['check_capabilities', 'check_empty_input', 'check_weights_in_unit_interval']
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from defenses._state import get_path, plain_problems, state_key
from defenses.base import Decision, Defense, VoteBatch
from defenses.chain import Chain

HONEST = np.arange(0, 150)
RING = np.arange(500, 530)
EMAILS_PER_WINDOW = 20
REGULAR = 16             # emails 0..15 of a window are regular mail, 16..19 gold


def is_spam(email: np.ndarray | int):
    """The truth of :func:`vote_stream`'s emails: even ids are spam.

    >>> is_spam(np.array([4, 7])).tolist()
    [True, False]
    """
    return np.asarray(email) % 2 == 0


@dataclass(frozen=True)
class Window:
    """One window of :func:`vote_stream`: gold labels announced first, then the votes
    (decided at ``now``), then the reviews of the previous window's emails."""

    now: float
    votes: VoteBatch
    gold_email: np.ndarray
    gold_label: np.ndarray
    review_email: np.ndarray
    review_label: np.ndarray


def vote_stream(windows: int = 24, seed: int = 0, poison: tuple[int, int] = (10, 17)) -> list[Window]:
    """A deterministic stream of ``windows`` windows (see the module docstring); the ring
    votes in windows ``poison[0] <= w < poison[1]``.

    >>> stream = vote_stream(windows=3)
    >>> [w.now for w in stream], stream[0].gold_email.tolist(), stream[1].gold_email.tolist()
    ([1.0, 2.0, 3.0], [16, 17, 18, 19, 36, 37, 38, 39], [56, 57, 58, 59])
    """
    rng = np.random.default_rng(seed)
    out = []
    for w in range(windows):
        base = w * EMAILS_PER_WINDOW
        ts = w + 0.5
        account, email, verdict = [], [], []
        for e in range(base, base + EMAILS_PER_WINDOW):
            voters = rng.choice(HONEST, int(rng.integers(3, 7)), replace=False)
            right = rng.random(voters.size) < 0.9
            account += voters.tolist()
            email += [e] * voters.size
            verdict += np.where(right, int(is_spam(e)), 1 - int(is_spam(e))).tolist()
        n_honest = len(account)
        if poison[0] <= w < poison[1]:
            for e in (base, base + 2, base + 4, base + 1):      # three spam called ham, one ham called spam
                account += RING.tolist()
                email += [e] * RING.size
                verdict += [1 - int(is_spam(e))] * RING.size
        n = len(account)
        created = np.concatenate([np.full(n_honest, -50_000.0), np.full(n - n_honest, -1.0)])
        votes = VoteBatch.of(account, email, verdict, np.full(n, ts), created)
        # gold labels are announced a window before their votes come (the first window's too)
        ahead = [base, base + EMAILS_PER_WINDOW] if w == 0 else [base + EMAILS_PER_WINDOW]
        gold = np.concatenate([np.arange(b + REGULAR, b + EMAILS_PER_WINDOW) for b in ahead])
        reviewed = np.arange(base - EMAILS_PER_WINDOW, base - EMAILS_PER_WINDOW + 6) if w else np.zeros(0, np.int64)
        out.append(Window(w + 1.0, votes, gold, is_spam(gold).astype(np.int8), reviewed,
                          is_spam(reviewed).astype(np.int8)))
    return out


# -- running a defense over the stream -----------------------------------------------------
def _as_chain(defense) -> Chain:
    return defense if isinstance(defense, Chain) else Chain([defense])


def _needs_model(defense) -> bool:
    return "model" in _as_chain(defense).needs()


def _context_for(defense, make_context):
    if make_context is None:
        if _needs_model(defense):
            raise ValueError(f"{_as_chain(defense).name} needs a model: pass make_context")
        return None
    return make_context()


def learn(context, decision: Decision) -> None:
    """The learner's part: train the context's model with a window's labels."""
    labels = decision.labels
    rows = context.features(labels.email)
    for features, label, weight in zip(rows, labels.label.tolist(), labels.weight.tolist()):
        if features is not None:
            context.model.learn(features, bool(label), float(weight))


def step(chain: Chain, context, window: Window) -> dict:
    """Run one window through the chain (and the learner); what it decided."""
    chain.observe_gold(window.gold_email, window.gold_label, window.now)
    decision = chain.process(window.votes, now=window.now)
    if context is not None:
        learn(context, decision)
    chain.observe_reviews(window.review_email, window.review_label, window.now)
    labels = decision.labels
    return {"email": labels.email.copy(), "label": labels.label.copy(), "weight": labels.weight.copy(),
            "confidence": labels.confidence.copy(), "votes": labels.votes.copy(),
            "vote_weight": decision.vote_weight.copy(), "agreement": decision.agreement.copy(),
            "flagged": np.asarray(chain.flagged()).copy()}


def run(defense, context, stream: list[Window]) -> list[dict]:
    """Every window of ``stream`` through ``defense`` (bound to ``context`` when given)."""
    chain = _as_chain(defense)
    if context is not None:
        chain.bind(context)
    return [step(chain, context, window) for window in stream]


def assert_same(a, b, where: str = "") -> None:
    """``a`` and ``b`` are equal: arrays element by element (NaN equals NaN, same dtype
    kind and shape), containers item by item."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, f"{where}: shapes {a.shape} and {b.shape}"
        assert a.dtype.kind == b.dtype.kind, f"{where}: dtypes {a.dtype} and {b.dtype}"
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), f"{where}: {a} != {b}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: keys {list(a)} and {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        pass
    else:
        assert type(a) is type(b) or (isinstance(a, (int, float)) and isinstance(b, (int, float))), \
            f"{where}: {type(a).__name__} and {type(b).__name__}"
        assert a == b, f"{where}: {a!r} != {b!r}"


# -- the checks ------------------------------------------------------------------------------
def check_capabilities(make_defense: Callable, make_context: Callable | None = None) -> None:
    """Capabilities are booleans and the declared state attributes exist after reset,
    under distinct keys."""
    defense = make_defense()
    for members in _as_chain(defense).members:
        for flag in ("aggregates", "needs_model", "needs_reviews", "needs_gold", "keeps_memory"):
            assert isinstance(getattr(members, flag), bool), f"{members.name}.{flag} is not a bool"
        keys = [state_key(a) for a in members.state_attributes]
        assert len(set(keys)) == len(keys), f"{members.name}: state keys {keys} collide"
        for attribute in members.state_attributes:
            get_path(members, attribute)
        if members.keeps_memory:
            assert "memory" in members.state_dict(), f"{members.name} keeps memory but has no 'memory' state"


def check_empty_input(make_defense: Callable, make_context: Callable | None = None) -> None:
    """An empty window gives no labels and no weights."""
    defense = make_defense()
    chain = _as_chain(defense)
    context = _context_for(defense, make_context)
    if context is not None:
        chain.bind(context)
    d = chain.process(VoteBatch.empty(), now=0.0)
    assert len(d.labels) == 0 and d.vote_weight.shape == (0,)


def check_weights_in_unit_interval(make_defense: Callable, make_context: Callable | None = None) -> None:
    """Every vote weight is in [0, 1] (before and after the decision), labels are 0/1
    with a positive weight and a confidence of at most 1."""
    defense = make_defense()
    chain = _as_chain(defense)
    context = _context_for(defense, make_context)
    if context is not None:
        chain.bind(context)
    for window in vote_stream(windows=14):
        votes = window.votes
        for member in chain.members:
            weight = member.weigh(votes)
            assert weight.shape == (len(votes),), f"{member.name}: weigh gave shape {weight.shape}"
            assert ((weight >= 0) & (weight <= 1)).all(), f"{member.name}: weights outside [0, 1]"
        chain.observe_gold(window.gold_email, window.gold_label, window.now)
        d = chain.process(votes, now=window.now)
        assert d.vote_weight.shape == (len(votes),)
        assert ((d.vote_weight >= 0) & (d.vote_weight <= 1)).all(), "vote weights outside [0, 1]"
        assert (d.labels.weight > 0).all() and (d.labels.confidence <= 1 + 1e-12).all()
        assert set(d.labels.label.tolist()) <= {0, 1}
        if context is not None:
            learn(context, d)
        chain.observe_reviews(window.review_email, window.review_label, window.now)


def check_deterministic(make_defense: Callable, make_context: Callable | None = None) -> None:
    """Two fresh instances make the same decisions on the same stream."""
    stream = vote_stream(windows=12)
    a, b = make_defense(), make_defense()
    assert_same(run(a, _context_for(a, make_context), stream), run(b, _context_for(b, make_context), stream))


def check_reset_forgets(make_defense: Callable, make_context: Callable | None = None) -> None:
    """After :meth:`reset` a defense decides as a fresh one."""
    stream = vote_stream(windows=12)
    defense = make_defense()
    first = run(defense, _context_for(defense, make_context), stream)
    defense.reset()
    assert_same(first, run(defense, _context_for(defense, make_context), stream))


def check_clone_is_fresh(make_defense: Callable, make_context: Callable | None = None) -> None:
    """``clone()`` of a trained defense is a fresh one of the same parameters, and
    running the clone leaves the original's state alone."""
    stream = vote_stream(windows=12)
    defense = make_defense()
    if isinstance(defense, Chain):
        return
    run(defense, _context_for(defense, make_context), stream)
    before = copy.deepcopy(defense.state_dict())
    clone = defense.clone()
    assert type(clone) is type(defense)
    fresh = make_defense()
    assert_same(run(clone, _context_for(clone, make_context), stream),
                run(fresh, _context_for(fresh, make_context), stream))
    assert_same(defense.state_dict(), before, "state after running the clone")


def check_state_is_plain(make_defense: Callable, make_context: Callable | None = None) -> None:
    """The state of a trained defense is plain data (no sets, deques, objects or
    pickles), survives a deep copy, and loads into a fresh instance as the same state."""
    defense = make_defense()
    run(defense, _context_for(defense, make_context), vote_stream(windows=14))
    state = defense.state_dict()
    problems = plain_problems(state)
    assert not problems, f"{_as_chain(defense).name}: " + "; ".join(problems)
    copied = copy.deepcopy(state)
    assert_same(copied, state, "deep copy")
    twin = make_defense()
    twin.load_state_dict(copied)
    assert_same(twin.state_dict(), state, "state after a load")


def check_state_is_complete(make_defense: Callable, make_context: Callable | None = None) -> None:
    """Every attribute a defense changes while running is declared state (or inside
    declared state), after every window: nothing it learns is lost by :meth:`state_dict`."""
    defense, fresh = make_defense(), make_defense()
    context = _context_for(defense, make_context)
    chain, fresh_chain = _as_chain(defense), _as_chain(fresh)
    if context is not None:
        chain.bind(context)
        fresh_chain.bind(context)
    for window in vote_stream(windows=16):
        step(chain, context, window)
        for trained, untouched in zip(chain.members, fresh_chain.members):
            declared = [a.split(".") for a in trained.state_attributes]
            _assert_only_declared_changed(trained, untouched, declared, trained.name)


def _assert_only_declared_changed(trained, fresh, declared: list[list[str]], where: str) -> None:
    for name, value in vars(trained).items():
        paths = [p[1:] for p in declared if p[0] == name]
        if [] in paths:
            continue                                # declared as a whole
        other = vars(fresh).get(name)
        if paths:
            _assert_only_declared_changed(value, other, paths, f"{where}.{name}")
            continue
        try:
            assert_same(value, other)
        except AssertionError:
            raise AssertionError(f"{where}.{name} changed while running but is not declared state") from None
        except (TypeError, ValueError):             # values that cannot be compared: the same object
            assert value is other, f"{where}.{name} changed while running but is not declared state"


def check_state_round_trip(make_defense: Callable, make_context: Callable | None = None, windows: int = 24,
                           split: int | None = None) -> tuple:
    """Half a stream, :meth:`state_dict`, a fresh instance loaded with it (after a deep
    copy) goes on with the rest: its decisions (labels, weights, vote weights,
    agreement, flagged accounts), its final state and, with a context, the control
    records its context made are those of the instance that was never interrupted.

    With a context, the resumed instance gets a fresh context whose model is restored
    to the model at the save point, whose counter is loaded (``DefenseContext.state_dict``)
    and which holds the saved model snapshots (as the runtime persists them).

    Returns ``(uninterrupted, resumed)`` so that callers can check what happened.
    """
    stream = vote_stream(windows=windows)
    split = windows // 2 + 1 if split is None else split      # not a multiple of the usual periods
    defense = make_defense()
    context = _context_for(defense, make_context)
    chain = _as_chain(defense)
    if context is not None:
        chain.bind(context)
    for window in stream[:split]:
        step(chain, context, window)
    state = defense.state_dict()
    saved = copy.deepcopy(state)
    problems = plain_problems(saved)
    assert not problems, "; ".join(problems)

    resumed = make_defense()
    resumed_context = None
    if context is not None:
        context.take_controls()
        resumed_context = make_context()
        resumed_context.model.restore(context.model.snapshot())
        resumed_context.load_state_dict(copy.deepcopy(context.state_dict()))
        for snapshot_id in context.snapshots:
            resumed_context.put_snapshot(snapshot_id, context.snapshot_bytes(snapshot_id))
    resumed_chain = _as_chain(resumed)
    if resumed_context is not None:
        resumed_chain.bind(resumed_context)
    resumed.load_state_dict(saved)

    for i, window in enumerate(stream[split:], start=split):
        want, got = step(chain, context, window), step(resumed_chain, resumed_context, window)
        assert_same(got, want, f"{chain.name}, window {i} after a reload at window {split}")
    assert_same(state, saved, "the saved state, after the defense went on")   # copies, not views
    assert_same(resumed.state_dict(), defense.state_dict(), "the final state")
    if context is not None:
        assert_same(resumed_context.take_controls(), context.take_controls(), "control records")
        assert_same(sorted(resumed_context.snapshots), sorted(context.snapshots), "kept snapshots")
    return defense, resumed


CHECKS = (check_capabilities, check_empty_input, check_weights_in_unit_interval, check_deterministic,
          check_reset_forgets, check_clone_is_fresh, check_state_is_plain, check_state_is_complete,
          check_state_round_trip)


def yield_checks(defense: Defense | Chain) -> Iterator[Callable]:
    """The checks that apply to ``defense`` (each takes ``make_defense`` and, for a
    defense that needs the model, ``make_context``)."""
    for check in CHECKS:
        if check is check_clone_is_fresh and isinstance(defense, Chain):
            continue
        yield check

"""Who receives mail and how honest users react to it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.config import PopulationConfig


def _beta_with_mean(rng: np.random.Generator, mean: float, concentration: float, n: int) -> np.ndarray:
    mean = float(np.clip(mean, 1e-4, 1 - 1e-4))
    return rng.beta(mean * concentration, (1 - mean) * concentration, size=n)


HONEST_AGES = (24, 24 * 365 * 5)     # honest accounts are 1 day to 5 years old at tick 0 (ticks)


def account_ages(rng: np.random.Generator, n: int, min_age: float = 0.0) -> np.ndarray:
    """Ages (ticks) drawn like honest users' ages, at least ``min_age``: what an
    attacker buying aged accounts on an account market gets.

    >>> ages = account_ages(np.random.default_rng(0), 1000, min_age=720)
    >>> bool(ages.min() >= 720), bool(ages.max() < 24 * 365 * 5)
    (True, True)
    """
    low = max(HONEST_AGES[0], int(np.ceil(min_age)))
    return rng.integers(low, max(low + 1, HONEST_AGES[1]), size=n).astype(float)


@dataclass
class Population:
    """Honest users then bots; account ids are shuffled so they reveal nothing.

    Honest users differ: each has a report rate (diligence) and a mistake rate drawn
    around the scenario's means. The accounts a ring creates or buys (``fresh`` and
    ``aged`` rings) are the last indices; a ``takeover`` ring's accounts are honest
    users' accounts (within the first ``n_honest``), which stay honest until the
    ring takes them over. ``bot_since`` is the tick from which the attacker runs an
    account (``inf`` for an honest user); ``is_bot`` is the ground truth *now*: a
    taken-over account turns into a bot at its ``bot_since`` tick (:meth:`advance`).

    >>> from simulator.config import PopulationConfig
    >>> p = Population.build(PopulationConfig(users=100, bot_fraction=0.1), np.random.default_rng(0), bots_join_tick=5)
    >>> p.n_honest, p.n_bots, bool(p.is_bot[95]), len(set(p.account_ids))
    (90, 10, True, 100)
    >>> t = Population.build(PopulationConfig(users=100, bot_fraction=0.1), np.random.default_rng(0),
    ...                      bots_join_tick=5, ring_accounts=["takeover"])
    >>> t.n_honest, int(t.is_bot.sum()), int((t.ring >= 0).sum()), t.advance(5).size, int(t.is_bot.sum())
    (100, 0, 10, 10, 10)
    """

    account_ids: list[str]
    is_bot: np.ndarray
    report_rate: np.ndarray
    mistake_rate: np.ndarray
    created_tick: np.ndarray
    n_honest: int
    mistake_mean: float
    ring: np.ndarray = None          # ring index per account, -1 for honest users
    active: np.ndarray = None        # False once an attacker abandons the account
    bot_since: np.ndarray = None     # tick from which the attacker runs the account (inf: never)

    def __post_init__(self) -> None:
        n = len(self.account_ids)
        if self.ring is None:
            self.ring = np.where(self.is_bot, 0, -1)
        if self.active is None:
            self.active = np.ones(n, dtype=bool)
        if self.bot_since is None:
            self.bot_since = np.where(self.is_bot, self.created_tick, np.inf)
        self.index = {a: i for i, a in enumerate(self.account_ids)}
        self._id_bytes: np.ndarray | None = None

    @property
    def account_id_bytes(self) -> np.ndarray:
        """``account_ids`` as a NumPy array of UTF-8 bytes, for building event batches.

        >>> from simulator.config import PopulationConfig
        >>> p = Population.build(PopulationConfig(users=20, bot_fraction=0.1), np.random.default_rng(0))
        >>> p.account_id_bytes[:1].tolist() == [p.account_ids[0].encode()]
        True
        """
        if self._id_bytes is None or self._id_bytes.size != len(self.account_ids):
            self._id_bytes = np.char.encode(np.array(self.account_ids, dtype=str), "utf-8")
        return self._id_bytes

    @classmethod
    def build(cls, config: PopulationConfig, rng: np.random.Generator, bots_join_tick: int | list[int] = 0,
              ring_shares: list[float] | None = None, ring_accounts: list[str] | None = None,
              min_ages: list[float] | None = None) -> "Population":
        """Honest users and bots; bots are split between rings in proportion to
        ``ring_shares`` and join at their ring's ``bots_join_tick``.

        ``ring_accounts`` says per ring which accounts it runs: ``"fresh"`` (created at
        the join tick, the default), ``"aged"`` (bought: created ``account_ages`` ticks
        before the join tick, at least ``min_ages`` of the ring; no history) or
        ``"takeover"`` (honest users' accounts chosen at random, taken over at the join
        tick). ``ring_shares=[]`` means no ring at all: the honest users are the same
        as with the scenario's rings, and no bot account exists.
        """
        n_bots = int(round(config.users * config.bot_fraction))
        shares = np.asarray([1.0] if ring_shares is None else ring_shares, dtype=float)
        kinds = np.asarray(ring_accounts if ring_accounts is not None else ["fresh"] * shares.size, dtype=object)
        sizes = np.floor(n_bots * shares / shares.sum()).astype(int) if shares.size else np.zeros(0, int)
        if shares.size:
            sizes[: n_bots - sizes.sum()] += 1      # largest-remainder style: hand out what is left
        taken = kinds == "takeover"
        n_new = int(sizes[~taken].sum())
        n_honest = config.users - (n_new if shares.size else n_bots)
        n_accounts = n_honest + n_new
        labels = rng.permutation(config.users)[:n_accounts]
        account_ids = [f"acct-{i:07d}" for i in labels]
        report = np.zeros(n_accounts)
        mistake = np.zeros(n_accounts)
        report[:n_honest] = _beta_with_mean(rng, config.report_rate, 4.0, n_honest)
        mistake[:n_honest] = _beta_with_mean(rng, config.mistake_rate, 20.0, n_honest)
        created = np.empty(n_accounts)
        created[:n_honest] = -rng.integers(*HONEST_AGES, size=n_honest)
        ring = np.full(n_accounts, -1)
        new_rings = np.flatnonzero(~taken)
        ring[n_honest:] = np.repeat(new_rings, sizes[new_rings])
        joins = np.broadcast_to(np.asarray(bots_join_tick, dtype=float), shares.shape)
        bot_since = np.full(n_accounts, np.inf)
        bot_since[n_honest:] = joins[ring[n_honest:]]
        created[n_honest:] = bot_since[n_honest:]
        min_ages = np.broadcast_to(np.asarray(0.0 if min_ages is None else min_ages, dtype=float), shares.shape)
        for r in np.flatnonzero(kinds == "aged"):
            members = np.flatnonzero(ring == r)
            created[members] = joins[r] - account_ages(rng, members.size, min_ages[r])
        if taken.any():
            victims = rng.choice(n_honest, size=int(sizes[taken].sum()), replace=False)
            owner = np.repeat(np.flatnonzero(taken), sizes[taken])
            ring[victims] = owner
            bot_since[victims] = joins[owner]
        is_bot = (ring >= 0) & (np.arange(n_accounts) >= n_honest)
        return cls(account_ids, is_bot, report, mistake, created, n_honest, config.mistake_rate, ring,
                   bot_since=bot_since)

    @property
    def n_bots(self) -> int:
        """Accounts an attacker runs or will run (bought, created or to be taken over)."""
        return int((self.ring >= 0).sum())

    @property
    def bots(self) -> np.ndarray:
        return np.flatnonzero(self.is_bot)

    def ring_members(self, ring: int) -> np.ndarray:
        return np.flatnonzero(self.ring == ring)

    def advance(self, tick: int) -> np.ndarray:
        """Turn the accounts taken over by ``tick`` into bots; returns the newly turned."""
        turned = np.flatnonzero(~self.is_bot & (self.bot_since <= tick))
        self.is_bot[turned] = True
        return turned

    def was_bot(self, accounts: np.ndarray, tick: float) -> np.ndarray:
        """Whether each account was run by the attacker at ``tick`` (ground truth then)."""
        return self.bot_since[accounts] <= tick

    def live_bots(self, tick: int) -> np.ndarray:
        """Bots the attacker runs at ``tick`` and has not abandoned."""
        return np.flatnonzero(self.is_bot & self.active & (self.bot_since <= tick))

    def retire(self, accounts: np.ndarray) -> None:
        """The attacker abandons these accounts: they receive and send nothing more."""
        self.active[accounts] = False

    def add_bots(self, n: int, created_tick: int, ring: int, accounts: str = "fresh",
                 rng: np.random.Generator | None = None, min_age: float = 0.0) -> np.ndarray:
        """Bring ``n`` more accounts into ``ring`` from ``created_tick``; returns their
        indices. ``accounts`` as in :meth:`build` (``aged`` and ``takeover`` draw with ``rng``).

        >>> from simulator.config import PopulationConfig
        >>> p = Population.build(PopulationConfig(users=20, bot_fraction=0.1), np.random.default_rng(0))
        >>> fresh = p.add_bots(2, created_tick=7, ring=0)
        >>> fresh.tolist(), p.account_ids[-1], int(p.created_tick[-1])
        ([20, 21], 'acct-0000021', 7)
        >>> stolen = p.add_bots(1, created_tick=7, ring=0, accounts="takeover", rng=np.random.default_rng(0))
        >>> bool(stolen[0] < p.n_honest), bool(p.is_bot[stolen[0]]), int(p.bot_since[stolen[0]])
        (True, False, 7)
        """
        if accounts == "takeover":
            pool = np.flatnonzero((self.ring[: self.n_honest] < 0) & self.active[: self.n_honest])
            taken = rng.choice(pool, size=min(n, pool.size), replace=False)
            self.ring[taken] = ring
            self.bot_since[taken] = created_tick
            return taken
        start = len(self.account_ids)
        new_ids = [f"acct-{i:07d}" for i in range(start, start + n)]
        self.account_ids.extend(new_ids)
        self.index.update((a, start + k) for k, a in enumerate(new_ids))
        created = np.full(n, float(created_tick))
        if accounts == "aged":
            created -= account_ages(rng, n, min_age)
        self.is_bot = np.concatenate([self.is_bot, np.ones(n, bool)])
        self.report_rate = np.concatenate([self.report_rate, np.zeros(n)])
        self.mistake_rate = np.concatenate([self.mistake_rate, np.zeros(n)])
        self.created_tick = np.concatenate([self.created_tick, created])
        self.bot_since = np.concatenate([self.bot_since, np.full(n, float(created_tick))])
        self.ring = np.concatenate([self.ring, np.full(n, ring)])
        self.active = np.concatenate([self.active, np.ones(n, bool)])
        return np.arange(start, start + n)

    def honest_recipients(self, rng: np.random.Generator, n_emails: int, per_email: int) -> np.ndarray:
        """``(n_emails, per_email)`` honest recipients, distinct within an email row."""
        per_email = min(per_email, self.n_honest)
        # Sampling with replacement then fixing rare duplicates keeps this vectorized.
        out = rng.integers(0, self.n_honest, size=(n_emails, per_email))
        ordered = np.sort(out, axis=1)
        for row in np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1)):
            out[row] = rng.choice(self.n_honest, size=per_email, replace=False)
        return out

    def honest_reports(self, rng: np.random.Generator, recipients: np.ndarray, is_spam: np.ndarray,
                       junk: np.ndarray, junk_check_rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Which honest recipients report which email, and what they say.

        A user sees inbox mail always and junk mail only when they check the junk
        folder, and reports a misfiled email they see with their own report rate.
        A report is wrong with the scenario's ``mistake_rate``: wrong reports land on
        correctly filed mail (a newsletter marked spam), made by recipients chosen in
        proportion to their own mistake rates. Returns ``(row, user, verdict)`` with
        verdict 1 for spam.
        """
        n, k = recipients.shape
        seen = np.where(junk[:, None], rng.random((n, k)) < junk_check_rate, True)
        misfiled = (is_spam != junk)[:, None]
        reports = seen & misfiled & (rng.random((n, k)) < self.report_rate[recipients])
        rows, cols = np.nonzero(reports)
        verdict = is_spam[rows].astype(np.int8)
        m = self.mistake_mean
        n_wrong = int(rng.binomial(rows.size, m / (1.0 - m))) if rows.size and 0 < m < 1 else 0
        c_rows, c_cols = np.nonzero(seen & ~misfiled)
        n_wrong = min(n_wrong, c_rows.size)
        if n_wrong:
            weight = self.mistake_rate[recipients[c_rows, c_cols]] * self.report_rate[recipients[c_rows, c_cols]]
            pick = rng.choice(c_rows.size, size=n_wrong, replace=False, p=weight / weight.sum())
            rows = np.concatenate([rows, c_rows[pick]])
            cols = np.concatenate([cols, c_cols[pick]])
            verdict = np.concatenate([verdict, (~is_spam[c_rows[pick]]).astype(np.int8)])
        return rows, recipients[rows, cols], verdict

"""Who receives mail and how honest users react to it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.config import PopulationConfig


def _beta_with_mean(rng: np.random.Generator, mean: float, concentration: float, n: int) -> np.ndarray:
    mean = float(np.clip(mean, 1e-4, 1 - 1e-4))
    return rng.beta(mean * concentration, (1 - mean) * concentration, size=n)


@dataclass
class Population:
    """Honest users then bots; account ids are shuffled so they reveal nothing.

    Honest users differ: each has a report rate (diligence) and a mistake rate drawn
    around the scenario's means. Bots are the last ``n_bots`` indices.

    >>> from simulator.config import PopulationConfig
    >>> p = Population.build(PopulationConfig(users=100, bot_fraction=0.1), np.random.default_rng(0), bots_join_tick=5)
    >>> p.n_honest, p.n_bots, bool(p.is_bot[95]), len(set(p.account_ids))
    (90, 10, True, 100)
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

    def __post_init__(self) -> None:
        n = len(self.account_ids)
        if self.ring is None:
            self.ring = np.where(self.is_bot, 0, -1)
        if self.active is None:
            self.active = np.ones(n, dtype=bool)
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
              ring_shares: list[float] | None = None) -> "Population":
        """Honest users and bots; bots are split between rings in proportion to
        ``ring_shares`` and created at their ring's ``bots_join_tick``."""
        n_bots = int(round(config.users * config.bot_fraction))
        n_honest = config.users - n_bots
        labels = rng.permutation(config.users)
        account_ids = [f"acct-{i:07d}" for i in labels]
        report = np.zeros(config.users)
        mistake = np.zeros(config.users)
        report[:n_honest] = _beta_with_mean(rng, config.report_rate, 4.0, n_honest)
        mistake[:n_honest] = _beta_with_mean(rng, config.mistake_rate, 20.0, n_honest)
        created = np.empty(config.users)
        created[:n_honest] = -rng.integers(24, 24 * 365 * 5, size=n_honest)
        shares = np.asarray(ring_shares or [1.0], dtype=float)
        sizes = np.floor(n_bots * shares / shares.sum()).astype(int)
        sizes[: n_bots - sizes.sum()] += 1          # largest-remainder style: hand out what is left
        ring = np.full(config.users, -1)
        ring[n_honest:] = np.repeat(np.arange(shares.size), sizes)
        joins = np.broadcast_to(np.asarray(bots_join_tick, dtype=float), shares.shape)
        created[n_honest:] = joins[ring[n_honest:]]
        is_bot = ring >= 0
        return cls(account_ids, is_bot, report, mistake, created, n_honest, config.mistake_rate, ring)

    @property
    def n_bots(self) -> int:
        return len(self.account_ids) - self.n_honest

    @property
    def bots(self) -> np.ndarray:
        return np.flatnonzero(self.is_bot)

    def ring_members(self, ring: int) -> np.ndarray:
        return np.flatnonzero(self.ring == ring)

    def live_bots(self, tick: int) -> np.ndarray:
        """Bots that exist at ``tick`` and have not been abandoned."""
        return np.flatnonzero(self.is_bot & self.active & (self.created_tick <= tick))

    def retire(self, accounts: np.ndarray) -> None:
        """The attacker abandons these accounts: they receive and send nothing more."""
        self.active[accounts] = False

    def add_bots(self, n: int, created_tick: int, ring: int) -> np.ndarray:
        """Register ``n`` fresh bot accounts of ``ring``; returns their indices.

        >>> from simulator.config import PopulationConfig
        >>> p = Population.build(PopulationConfig(users=20, bot_fraction=0.1), np.random.default_rng(0))
        >>> fresh = p.add_bots(2, created_tick=7, ring=0)
        >>> fresh.tolist(), p.account_ids[-1], int(p.created_tick[-1])
        ([20, 21], 'acct-0000021', 7)
        """
        start = len(self.account_ids)
        new_ids = [f"acct-{i:07d}" for i in range(start, start + n)]
        self.account_ids.extend(new_ids)
        self.index.update((a, start + k) for k, a in enumerate(new_ids))
        self.is_bot = np.concatenate([self.is_bot, np.ones(n, bool)])
        self.report_rate = np.concatenate([self.report_rate, np.zeros(n)])
        self.mistake_rate = np.concatenate([self.mistake_rate, np.zeros(n)])
        self.created_tick = np.concatenate([self.created_tick, np.full(n, float(created_tick))])
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

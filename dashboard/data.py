"""The dashboard's only door to the results: cached reads through the storage repository.

Every page asks this module for data; nothing else in the dashboard caches or
opens a database. The connection is a ``st.cache_resource`` (one
:class:`~stream.storage.Repository` per URL, shared by all sessions); query
results are ``st.cache_data`` with a short time-to-live, so a page that
refreshes every couple of seconds sees the ticks a running experiment has just
written (runs flush their ticks every 10 ticks) without hammering the database.

The database URL comes from the command line of the app
(``streamlit run dashboard/app.py -- --db URL``, which is what
``poisonlab dashboard --db URL`` runs); it is never read from the environment.

Two storage features are optional, because they arrive with other work:

* sweeps (``Repository.list_sweeps`` and ``Repository.sweep_runs``);
* per-account outcomes (``Repository.account_outcomes(run_id)``, one dict per
  account: ``account_id``, ``is_bot``, ``trust``, ``flagged_tick``,
  ``first_malicious_tick`` and optionally ``cluster``).

When the repository lacks them, the functions below return ``None`` and the
pages say what is missing instead of failing.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.launcher import Launcher
from stream.storage import DEFAULT_URL, Repository, mask_url

#: Seconds a query result stays cached; the live pages refresh at this pace.
TTL_S = 2.0

#: Per-tick series the timeline frames always carry (missing values are NaN).
TIMELINE_KEYS = ("attack_success_rate", "collateral_rate", "clean_accuracy", "clean_fpr", "clean_fnr",
                 "label_precision", "honest_vote_loss", "votes", "labels", "bot_votes", "honest_votes")


def db_url_from_argv(argv: Sequence[str]) -> str:
    """The database URL given to the app as ``--db URL`` (default :data:`~stream.storage.DEFAULT_URL`).

    Parameters
    ----------
    argv : sequence of str
        The app's arguments (``sys.argv[1:]``); arguments other than ``--db``
        are ignored.

    Returns
    -------
    str
        The URL.

    Examples
    --------
    >>> db_url_from_argv(["--db", "sqlite:///x.db"])
    'sqlite:///x.db'
    >>> db_url_from_argv([]) == DEFAULT_URL
    True
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db", default=DEFAULT_URL)
    known, _ = parser.parse_known_args(list(argv))
    return known.db


def masked(url: str) -> str:
    """`url` with any password hidden, for display."""
    return mask_url(url)


@st.cache_resource(show_spinner=False)
def repository(url: str) -> Repository:
    """The shared repository of `url` (opened once per server)."""
    return Repository(url)


@st.cache_resource(show_spinner=False)
def launcher(url: str) -> Launcher:
    """The background experiments started from the dashboard against `url`."""
    return Launcher(url)


def _runs_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = ["run_id", "created_at", "name", "defense", "seed", "status", "attack_strategy", "group_id",
               "metrics"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame["metrics"] = frame["metrics"].map(lambda m: m or {})
    return frame


@st.cache_data(ttl=TTL_S, show_spinner=False)
def runs(url: str, limit: int | None = 500) -> pd.DataFrame:
    """Run summaries, newest first (one row per run, ``metrics`` as dicts)."""
    return _runs_frame(repository(url).list_runs(limit=limit))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def run(url: str, run_id: str) -> dict[str, Any] | None:
    """The stored document of one run without its timeline (``None`` if unknown)."""
    doc = repository(url).get_run(run_id)
    if doc is not None:
        doc.pop("timeline", None)
    return doc


def timeline_frame(ticks: list[dict[str, Any]]) -> pd.DataFrame:
    """Per-tick dicts as a frame with one row per tick and every :data:`TIMELINE_KEYS` column.

    Examples
    --------
    >>> f = timeline_frame([{"tick": 0, "votes": 3}])
    >>> int(f.loc[0, "votes"]), bool(f["bot_votes"].isna().all())
    (3, True)
    """
    frame = pd.DataFrame(ticks)
    if "tick" not in frame:
        frame["tick"] = pd.Series(dtype="int64")
    for key in TIMELINE_KEYS:
        frame[key] = pd.to_numeric(frame[key], errors="coerce") if key in frame else float("nan")
    return frame.sort_values("tick").reset_index(drop=True)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def timeline(url: str, run_id: str) -> pd.DataFrame:
    """The per-tick metrics of a run (see :func:`timeline_frame`)."""
    return timeline_frame(repository(url).timeline(run_id))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def group(url: str, group_id: str) -> list[dict[str, Any]]:
    """The stored documents (without timelines) of the runs of one comparison, oldest first."""
    out = []
    for summary in repository(url).runs_in_group(group_id):
        doc = repository(url).get_run(summary["run_id"])
        if doc is not None:
            doc.pop("timeline", None)
            out.append(doc)
    return out


def has_sweeps(url: str) -> bool:
    """Whether the repository implements the sweep contract."""
    repo = repository(url)
    return callable(getattr(repo, "list_sweeps", None)) and callable(getattr(repo, "sweep_runs", None))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def sweeps(url: str) -> list[dict[str, Any]] | None:
    """``Repository.list_sweeps()``, or ``None`` when the repository has no sweeps yet."""
    if not has_sweeps(url):
        return None
    return list(repository(url).list_sweeps())


@st.cache_data(ttl=TTL_S, show_spinner=False)
def sweep_runs(url: str, sweep_id: str) -> list[dict[str, Any]] | None:
    """``Repository.sweep_runs(sweep_id)``, or ``None`` when the repository has no sweeps yet."""
    if not has_sweeps(url):
        return None
    return list(repository(url).sweep_runs(sweep_id))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def account_outcomes(url: str, run_id: str) -> pd.DataFrame | None:
    """Per-account outcomes of a run, or ``None`` when the repository does not store them.

    Returns
    -------
    pandas.DataFrame or None
        Columns ``account_id``, ``is_bot``, ``trust``, ``flagged_tick``,
        ``first_malicious_tick``, ``cluster`` (missing columns are filled
        with NaN/None).
    """
    method = getattr(repository(url), "account_outcomes", None)
    if not callable(method):
        return None
    frame = pd.DataFrame(list(method(run_id)))
    for column in ("account_id", "is_bot", "trust", "flagged_tick", "first_malicious_tick", "cluster"):
        if column not in frame:
            frame[column] = None
    frame["is_bot"] = frame["is_bot"].fillna(False).astype(bool)
    for column in ("trust", "flagged_tick", "first_malicious_tick"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def groups_frame(runs_frame: pd.DataFrame) -> pd.DataFrame:
    """One row per comparison (``group_id``) of a runs frame, newest first.

    Columns: ``group_id``, ``created_at`` (of its first run), ``name``, ``seed``,
    ``defenses`` (the chains, comma-separated, baseline excluded), ``runs``
    (count) and ``status`` (``running`` while any run runs, ``failed`` if any
    failed, else ``finished``).

    Examples
    --------
    >>> f = _runs_frame([{"run_id": "a", "created_at": "2024-01-01T00:00:00+00:00", "name": "s", "defense": "none",
    ...                   "seed": 1, "status": "finished", "attack_strategy": "none", "group_id": "g"},
    ...                  {"run_id": "b", "created_at": "2024-01-01T00:00:01+00:00", "name": "s",
    ...                   "defense": "reputation", "seed": 1, "status": "running", "attack_strategy": "flip",
    ...                   "group_id": "g"}])
    >>> groups_frame(f)[["group_id", "defenses", "runs", "status"]].values.tolist()
    [['g', 'reputation', 2, 'running']]
    """
    columns = ["group_id", "created_at", "name", "seed", "defenses", "runs", "status"]
    grouped = runs_frame.dropna(subset=["group_id"]).sort_values("created_at")
    rows = []
    for group_id, part in grouped.groupby("group_id", sort=False):
        statuses = set(part["status"])
        attacked = part[part["attack_strategy"] != "none"]
        rows.append({
            "group_id": group_id,
            "created_at": part["created_at"].min(),
            "name": part["name"].iloc[0],
            "seed": int(part["seed"].iloc[0]),
            "defenses": ", ".join(attacked["defense"]),
            "runs": len(part),
            "status": "running" if "running" in statuses else "failed" if "failed" in statuses else "finished",
        })
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("created_at", ascending=False).reset_index(drop=True)


def sweep_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Sweep runs (``Repository.sweep_runs``) as one row per run.

    Columns: ``run_id``, ``defense``, ``seed``, ``status``, one ``param:KEY``
    column per swept key and one column per metric.

    Examples
    --------
    >>> f = sweep_frame([{"run_id": "a", "defense": "none", "seed": 1, "status": "finished",
    ...                   "params": {"population.bot_fraction": 0.1}, "metrics": {"attack_success_rate": 0.5}}])
    >>> f.loc[0, ["param:population.bot_fraction", "attack_success_rate"]].tolist()
    [0.1, 0.5]
    """
    records = []
    for row in rows:
        record = {k: row.get(k) for k in ("run_id", "defense", "seed", "status")}
        record.update({f"param:{k}": v for k, v in (row.get("params") or {}).items()})
        record.update(row.get("metrics") or {})
        records.append(record)
    return pd.DataFrame(records, columns=None if records else ["run_id", "defense", "seed", "status"])


def describe_grid(grid: Any) -> str:
    """A sweep's grid as short text, whatever its stored shape (mapping, list or string).

    Examples
    --------
    >>> describe_grid({"population.bot_fraction": [0.01, 0.05]})
    'population.bot_fraction = 0.01, 0.05'
    >>> describe_grid(["ticks=24,48"])
    'ticks=24,48'
    """
    if isinstance(grid, dict):
        return "; ".join(f"{k} = {', '.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                         for k, v in grid.items())
    if isinstance(grid, (list, tuple)):
        return "; ".join(map(str, grid))
    return "" if grid is None else str(grid)


def derived_accounts(doc: dict[str, Any]) -> dict[str, int | None]:
    """What a run's summary metrics tell about accounts, without per-account data.

    The number of bots follows from the scenario (``round(users * bot_fraction)``,
    as the population is built); caught bots from ``bot_recall``; flagged
    accounts from ``accounts_flagged`` (or from ``bot_precision``).

    Returns
    -------
    dict
        ``bots``, ``caught``, ``missed``, ``honest``, ``wrongly_flagged``
        (``None`` where the metrics do not tell).

    Examples
    --------
    >>> doc = {"scenario": {"population": {"users": 600, "bot_fraction": 0.05}},
    ...        "metrics": {"bot_recall": 0.2667, "bot_precision": 1.0, "accounts_flagged": 8}}
    >>> derived_accounts(doc)
    {'bots': 30, 'caught': 8, 'missed': 22, 'honest': 570, 'wrongly_flagged': 0}
    """
    population = (doc.get("scenario") or {}).get("population") or {}
    metrics = doc.get("metrics") or {}
    users = population.get("users")
    fraction = population.get("bot_fraction")
    if users is None or fraction is None:
        return {"bots": None, "caught": None, "missed": None, "honest": None, "wrongly_flagged": None}
    bots = int(round(users * fraction))
    recall = metrics.get("bot_recall")
    caught = None if recall is None else int(round(recall * bots))
    flagged = metrics.get("accounts_flagged")
    if flagged is None and caught is not None:
        precision = metrics.get("bot_precision")
        flagged = caught if not caught else (None if not precision else int(round(caught / precision)))
    return {"bots": bots, "caught": caught, "missed": None if caught is None else bots - caught,
            "honest": users - bots,
            "wrongly_flagged": None if flagged is None or caught is None else max(0, int(flagged) - caught)}

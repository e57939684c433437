"""Layout pieces shared by the pages: headers, run pickers, metric tiles (no data access here)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.components.labels import fmt, meaning, run_label, title
from dashboard.data import db_url_from_argv

DB_KEY = "db_url"
#: A run id another page asks the Live page to show (set before switching pages).
LIVE_FOCUS_KEY = "live_focus"


def db() -> str:
    """The database URL of this session (set by ``app.py`` from its ``--db`` argument)."""
    if DB_KEY not in st.session_state:
        st.session_state[DB_KEY] = db_url_from_argv(sys.argv[1:])
    return st.session_state[DB_KEY]


def header(heading: str, blurb: str) -> None:
    """The page title and its one-line explanation."""
    st.title(heading)
    st.caption(blurb)


def no_runs(what: str = "runs") -> None:
    """The message shown when the database holds nothing to show yet."""
    st.info(f"No {what} in this database yet. Start one on the **Launch** page, or from a terminal: "
            "`poisonlab run` (one experiment) or `poisonlab compare` (several defenses side by side), "
            "with the same `--db`.", icon=":material/info:")


def run_picker(runs: pd.DataFrame, key: str, label: str = "Run", prefer_running: bool = True,
               focus: str | None = None, default: str | None = None) -> str | None:
    """A select box of runs (newest first); defaults to the run that is running now.

    Parameters
    ----------
    runs : pandas.DataFrame
        Run summaries as :func:`dashboard.data.runs` returns them.
    key : str
        Widget key.
    prefer_running : bool, default True
        Preselect the newest running run when the box has no value yet.
    focus : str, optional
        Select this run id (e.g. one another page asked for).
    default : str, optional
        The run preselected when the box has no value yet and no run is
        running (or `prefer_running` is false); the newest run otherwise.
    """
    if runs.empty:
        return None
    ids = runs["run_id"].tolist()
    labels = {row["run_id"]: run_label(row) for row in runs.to_dict("records")}
    if focus in labels:
        st.session_state[key] = focus
    elif st.session_state.get(key) not in labels:
        running = runs.loc[runs["status"] == "running", "run_id"].tolist()
        fallback = default if default in labels else ids[0]
        st.session_state[key] = running[0] if (prefer_running and running) else fallback
    return st.selectbox(label, ids, key=key, format_func=labels.__getitem__,
                        help="Runs in this database, newest first; ● marks runs still in progress.")


def metric_tiles(metrics: dict[str, Any], keys: Sequence[str], columns: int | None = None) -> None:
    """One ``st.metric`` per key, with its meaning as help text."""
    cols = st.columns(columns or len(keys))
    for i, key in enumerate(keys):
        cols[i % len(cols)].metric(title(key), fmt(key, metrics.get(key)), help=meaning(key))


def metric_table(docs: list[dict[str, Any]], labels: list[str], keys: Sequence[str]) -> pd.DataFrame:
    """Final metrics as a table: one row per metric (titled, explained), one column per run."""
    rows = []
    for key in keys:
        row = {"metric": title(key), "meaning": meaning(key)}
        for doc, lab in zip(docs, labels):
            row[lab] = fmt(key, (doc.get("metrics") or {}).get(key))
        rows.append(row)
    return pd.DataFrame(rows)

"""PoisonLab dashboard: ``streamlit run dashboard/app.py -- --db URL`` (or ``poisonlab dashboard``).

The entry script sets the page up, takes the database URL from its own
arguments and hands over to the page the visitor picked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

PAGES_DIR = Path(__file__).resolve().parent / "views"

#: (file, title, icon, url path) of every page, in menu order.
PAGES = (
    ("live.py", "Live run", ":material/monitor_heart:", "live"),
    ("compare.py", "Compare defenses", ":material/compare_arrows:", "compare"),
    ("sweep.py", "Sweep", ":material/grid_on:", "sweep"),
    ("accounts.py", "Accounts", ":material/group:", "accounts"),
    ("launch.py", "Launch", ":material/rocket_launch:", "launch"),
)


def main() -> None:
    """Configure the app, remember the database URL and run the chosen page."""
    from dashboard.components.widgets import DB_KEY
    from dashboard.data import db_url_from_argv, masked

    st.set_page_config(page_title="PoisonLab", page_icon=":material/shield:", layout="wide")
    st.session_state.setdefault(DB_KEY, db_url_from_argv(sys.argv[1:]))
    pages = [st.Page(PAGES_DIR / file, title=name, icon=icon, url_path=path, default=(i == 0))
             for i, (file, name, icon, path) in enumerate(PAGES)]
    current = st.navigation(pages)
    with st.sidebar:
        st.markdown("**PoisonLab** — bots teach a learning spam filter to let their spam through; "
                    "defenses decide whose feedback to trust.")
        st.caption(f"Database: `{masked(st.session_state[DB_KEY])}`")
    current.run()


if __name__ == "__main__":
    main()

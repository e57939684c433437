"""``poisonlab dashboard``: the Streamlit dashboard over a results database, on 127.0.0.1 by default."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from simulator.commands.common import DEFAULT_DB, UsageError, masked, open_repository

DEFAULT_PORT = 8501
DEFAULT_ADDRESS = "127.0.0.1"


def app_path() -> Path:
    """The dashboard's entry script (``dashboard/app.py``)."""
    import dashboard

    return Path(dashboard.__file__).resolve().parent / "app.py"


def streamlit_command(db_url: str, port: int, address: str = DEFAULT_ADDRESS) -> list[str]:
    """The ``streamlit run`` command line serving the dashboard over `db_url`.

    The database URL is passed as an argument of the app (after ``--``), never
    through the environment.

    Examples
    --------
    >>> cmd = streamlit_command("sqlite:///r.db", 8600)
    >>> cmd[1:4], cmd[-3:]
    (['-m', 'streamlit', 'run'], ['--', '--db', 'sqlite:///r.db'])
    >>> cmd[cmd.index("--server.address") + 1], cmd[cmd.index("--server.port") + 1]
    ('127.0.0.1', '8600')
    """
    return [sys.executable, "-m", "streamlit", "run", str(app_path()),
            "--server.address", address, "--server.port", str(port),
            "--server.headless", "true", "--server.fileWatcherType", "none",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
            "--", "--db", db_url]


def register(sub) -> None:
    parser = sub.add_parser("dashboard", help="open the dashboard (Streamlit) over a results database")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"results database URL (default {DEFAULT_DB})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (default %(default)s)")
    parser.add_argument("--address", default=DEFAULT_ADDRESS,
                        help="address to listen on (default %(default)s: this machine only)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console: Console) -> int:
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: expected a TCP port between 1 and 65535")
    open_repository(args.db).close()          # fail early, with one line, on a bad URL
    console.print(f"PoisonLab dashboard over {masked(args.db)}: http://{args.address}:{args.port} "
                  "(Ctrl-C to stop)")
    sys.stdout.flush()
    command = streamlit_command(args.db, args.port, args.address)
    os.execv(command[0], command)          # become the server: signals (Ctrl-C, SIGTERM) reach it directly
    return 0                               # not reached

"""One module per ``poisonlab`` subcommand; each has ``register(subparsers)``."""

from simulator.commands import compare, dashboard, export, report, run, serve, sweep

COMMAND_MODULES = (run, compare, sweep, report, export, serve, dashboard)

"""One module per ``poisonlab`` subcommand; each has ``register(subparsers)``."""

from simulator.commands import compare, run

COMMAND_MODULES = (run, compare)

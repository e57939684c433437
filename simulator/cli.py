"""The ``poisonlab`` command line: parses arguments and maps bad input to exit status 2."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from simulator.commands import COMMAND_MODULES
from simulator.commands.common import UsageError
from simulator.config import ScenarioError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poisonlab", description=(
        "Simulate coordinated poisoning of an online spam filter through user feedback, "
        "and measure the defenses."))
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args, Console())
    except (ScenarioError, UsageError) as exc:
        print(f"poisonlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("poisonlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

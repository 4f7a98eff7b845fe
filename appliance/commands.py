"""What `shopper-edge` and `shopper-hq` share: a user's mistake is one line and status 2."""

from __future__ import annotations

import argparse
import sys

from appliance.errors import ApplianceError


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse and run a subcommand; an ApplianceError is one line on stderr and status 2."""
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except ApplianceError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


class Parser(argparse.ArgumentParser):
    """argparse whose usage mistakes are one line, like every other error (its own print
    the usage first); subcommands' parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def describe(doc: str) -> str:
    """A command module's docstring's first paragraph on one line: its --help description."""
    return " ".join(doc.split("\n\n")[0].split())

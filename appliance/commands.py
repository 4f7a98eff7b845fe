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

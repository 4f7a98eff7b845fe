"""The command lines as a user meets them: a usage mistake is one line and status 2, and
--help describes each command in whole sentences."""

import subprocess
import sys

import pytest


def command(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("module, args, prog", [
    ("appliance.device.cli", ("replay",), "shopper-edge replay"),
    ("appliance.device.cli", ("models", "fetch", "--nope"), "shopper-edge models fetch"),
    ("appliance.device.cli", (), "shopper-edge"),
    ("appliance.hq.cli", ("report", "--bogus"), "shopper-hq"),
])
def test_a_usage_mistake_is_one_line(module, args, prog):
    result = command(module, *args)
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{prog}: error: ") and line.endswith("(see --help)")


def test_help_describes_each_command_whole():
    edge = " ".join(command("appliance.device.cli", "--help").stdout.split())
    assert "run, replay, check-config, setup, privacy reports, models." in edge
    hq = " ".join(command("appliance.hq.cli", "--help").stdout.split())
    assert ("`report` prints footfall per store and camera (and draws charts with --plot)."
            in hq)

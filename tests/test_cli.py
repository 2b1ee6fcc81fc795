"""The `smartbins` command: every subcommand explains itself; the demo runs end to end."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from smartbins.cli import build_parser, main


def subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: smartbins" in capsys.readouterr().out


@pytest.mark.parametrize("command", subcommands())
def test_every_help_says_what_the_command_does(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    description = out.split("\n\n")[1]
    assert len(description.split()) >= 6, f"`smartbins {command} --help` does not say what it does"


def test_demo_runs_fleet_gateway_and_database_and_accounts_for_every_reading() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "smartbins.cli", "demo", "--bins", "12", "--days", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Every reading is accounted for." in result.stdout
    produced, stored = re.search(
        r"ground truth: (\d+) readings produced; (\d+) stored in InfluxDB", result.stdout
    ).groups()
    assert int(stored) > 0.9 * int(produced) > 0
    table = result.stdout.split("\nstream ", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert sum(int(row.split()[1]) for row in table) == 12  # every bin, under its stream
    assert sum(int(row.split()[2]) for row in table) == int(stored)

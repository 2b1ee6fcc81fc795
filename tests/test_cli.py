"""The `smartbins` command: every subcommand explains itself; the demo runs end to end."""

from __future__ import annotations

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


def test_demo_shows_readings_arriving_in_influxdb() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "smartbins.cli",
            "demo",
            "--devices",
            "3",
            "--rounds",
            "2",
            "--pause",
            "0.1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "6 readings sent, 6 stored, 0 rejected; every reading acknowledged end to end."
        in result.stdout
    )
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("kbh-")]
    assert [(r[0], r[-3]) for r in rows] == [
        ("kbh-0000", "2"),
        ("kbh-0001", "2"),
        ("kbh-0002", "2"),
    ]

"""Help texts list only the flags a command uses and say where its secrets come from
(issue 11 item 11)."""

from __future__ import annotations

import pytest

from smartbins.cli import main


def help_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("argv", [["device", "move"], ["device", "config"], ["calibrate"]])
def test_commands_that_change_no_password_do_not_list_password_flags(argv, capsys) -> None:
    out = help_of(argv, capsys)
    for flag in ("--password-file", "--broker-pid-file", "--reload-command"):
        assert flag not in out, f"`smartbins {' '.join(argv)} --help` lists {flag}"


@pytest.mark.parametrize("argv", [["provision"], ["device", "rotate"], ["device", "revoke"]])
def test_commands_that_change_passwords_list_where_the_file_is(argv, capsys) -> None:
    out = help_of(argv, capsys)
    assert "--password-file" in out and "--reload-command" in out


@pytest.mark.parametrize("argv", [["device", "config"], ["calibrate"]])
def test_commands_that_publish_say_where_the_service_password_comes_from(argv, capsys) -> None:
    out = " ".join(help_of(argv, capsys).split())
    assert "$SMARTBINS_SERVICE_PASSWORD" in out and "service_password_file" in out


def test_config_shows_its_subcommand_as_optional(capsys) -> None:
    usage = help_of(["config"], capsys).split("\n\n")[0]
    assert usage.startswith("usage: smartbins config [-h]") and usage.endswith("[check FILE]")
    assert "SUBCOMMAND" not in usage


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("smartbins ")

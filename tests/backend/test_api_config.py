"""The API's config: the sample is the documentation and the defaults; errors name the line and
key; `smartbins config check` recognises an API file."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from backend import settings
from smartbins.cli import main
from smartbins.settings import ConfigError


def test_the_sample_gives_exactly_the_defaults(tmp_path: Path) -> None:
    assert settings.load(settings.SAMPLE_PATH) == settings.Settings()
    (tmp_path / "empty.toml").write_text("")
    assert settings.load(tmp_path / "empty.toml") == settings.Settings()


def test_the_sample_documents_every_key() -> None:
    text = settings.SAMPLE_PATH.read_text()
    sections = re.split(r"^\[(\w+)\]\s*$", text, flags=re.M)
    body = dict(zip(sections[1::2], sections[2::2], strict=True))
    for section, cls in typing.get_type_hints(settings.Settings).items():
        assert section in body, section
        for key in dataclasses.fields(cls):
            assert re.search(rf"^#? ?{key.name} = ", body[section], re.M), (
                f"[{section}] {key.name} is not in backend/sample.toml"
            )


def test_unknown_keys_and_bad_values_name_the_line(tmp_path: Path) -> None:
    f = tmp_path / "api.toml"
    f.write_text('[server]\nport = 8000\nprot = 1\n')
    with pytest.raises(ConfigError, match=r"api.toml:3: server.prot: unknown key"):
        settings.load(f)
    f.write_text('[influxdb]\nurl = "ftp://x"\n')
    with pytest.raises(ConfigError, match=r"api.toml:2: influxdb.url: url: 'ftp://x' must start"):
        settings.load(f)


def test_influxdb_without_authentication_only_in_dev_mode(tmp_path: Path) -> None:
    f = tmp_path / "api.toml"
    f.write_text('[influxdb]\nusername = ""\n')
    with pytest.raises(ConfigError, match=r"influxdb.username: empty means reading InfluxDB"):
        settings.load(f)
    f.write_text('[server]\ndev = true\n[influxdb]\nusername = ""\n')
    assert settings.load(f).server.dev


def test_config_check_recognises_an_api_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "api.toml"
    f.write_text('[server]\ndev = true\n[influxdb]\nusername = ""\n[open_data]\npublisher = "K"\n')
    assert main(["config", "check", str(f)]) == 0
    assert "valid API config" in capsys.readouterr().out
    f.write_text('[open_data]\npublisher = 1\n')
    assert main(["config", "check", str(f)]) == 1
    assert "api.toml:2: open_data.publisher: expected a string" in capsys.readouterr().err
    assert main(["config", "--kind", "api"]) == 0
    assert capsys.readouterr().out == settings.SAMPLE_PATH.read_text()

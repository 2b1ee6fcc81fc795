"""The gateway's config: the sample is the documentation and the defaults; errors name the key."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from gateway import config
from smartbins.settings import ConfigError

REPO = Path(__file__).resolve().parents[2]


def smartbins(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smartbins.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_the_sample_gives_exactly_the_defaults() -> None:
    assert config.load(config.SAMPLE_PATH) == config.GatewayConfig()


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "g.toml").write_text("")
    assert config.load(tmp_path / "g.toml") == config.GatewayConfig()


def test_the_sample_documents_every_key() -> None:
    """Every key appears in the sample, set or commented out, under its section."""
    text = config.SAMPLE_PATH.read_text()
    sections = re.split(r"^\[(\w+)\]\s*$", text, flags=re.M)
    body = dict(zip(sections[1::2], sections[2::2], strict=True))
    for section, cls in typing.get_type_hints(config.GatewayConfig).items():
        assert section in body, section
        for key in dataclasses.fields(cls):
            assert re.search(rf"^#? ?{key.name} = ", body[section], re.M), (
                f"[{section}] {key.name} is not in gateway/sample.toml"
            )


def test_docs_quote_the_sample_verbatim() -> None:
    """docs/gateway.md carries the sample as its config reference (one source of truth)."""
    doc = (REPO / "docs" / "gateway.md").read_text()
    block = re.search(r"<!-- sample.toml -->\n```toml\n(.*?)```\n", doc, re.S)
    assert block, "docs/gateway.md: no ```toml block after <!-- sample.toml -->"
    assert block.group(1) == config.SAMPLE_PATH.read_text()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[mqtt]\nprot = 1\n", r"g.toml:2: mqtt.prot: unknown key \(known keys here: client_id,"),
        ("[mqtt]\nport = 70000\n", r"g.toml:2: mqtt.port: .*70000 is not a TCP port"),
        ("[batch]\nmax_points = 'many'\n", r"g.toml:2: batch.max_points: expected an integer"),
        ("[http]\nhost = '0.0.0.0'\n", r"g.toml:2: http.host: .*not a loopback address"),
        ("[mqtt]\nreceive_maximum = 0\n", r"g.toml:2: mqtt.receive_maximum: .*\[1, 65535\]"),
        (
            "[retry]\ninitial_s = 5\nmax_s = 1\n",
            r"g.toml:3: retry.max_s: .*at least the initial delay",
        ),
        ("[log]\nlevel = 'loud'\n", r"g.toml:2: log.level: .*'loud' is not one of"),
        ("[influxdb]\nurl = 'localhost:8086'\n", r"g.toml:2: influxdb.url: .*http://"),
    ],
)
def test_errors_name_the_line_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "g.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        config.load(tmp_path / "g.toml")


def test_config_check_validates_without_starting_anything(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[mqtt]\nport = 1884\n[influxdb]\nusername = ''\n")
    secret = {"SMARTBINS_GATEWAY_MQTT_PASSWORD": "s3cret-value"}
    r = smartbins("config", "check", str(good), env=secret)
    assert r.returncode == 0 and "valid" in r.stdout
    assert "s3cret-value" not in r.stdout + r.stderr
    r = smartbins("config", "check", str(good))
    assert r.returncode == 1 and "SMARTBINS_GATEWAY_MQTT_PASSWORD" in r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[batch]\nmax_age = 1\n")
    r = smartbins("config", "check", str(bad), env=secret)
    assert r.returncode == 1
    assert f"{bad}:2: batch.max_age: unknown key" in r.stderr and "Traceback" not in r.stderr
    r = smartbins("gateway", "--config", str(bad), env=secret)  # the gateway refuses to start
    assert r.returncode == 1 and f"{bad}:2: batch.max_age: unknown key" in r.stderr
    r = smartbins("config")
    assert r.returncode == 0 and r.stdout == config.SAMPLE_PATH.read_text()
    r = smartbins("gateway", "--help")
    assert r.returncode == 0 and "exactly once" in r.stdout.replace("\n", " ")


def test_a_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("x\n")
    f.chmod(0o644)
    (tmp_path / "g.toml").write_text(
        f"[mqtt]\npassword_env = 'SB_UNSET_X'\npassword_file = '{f}'\n[influxdb]\nusername = ''\n"
    )
    with pytest.raises(ConfigError, match="chmod 600"):
        config.read_secrets(config.load(tmp_path / "g.toml"))
    f.chmod(0o600)
    secrets = config.read_secrets(config.load(tmp_path / "g.toml"))
    assert secrets.mqtt_password == "x" and "x" not in repr(secrets)

"""Config files: unknown keys and bad values name the line and key; empty file gives defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smartbins.settings import ConfigError, load, read_secret, to_toml


@dataclass(frozen=True)
class Broker:
    host: str = "127.0.0.1"
    port: int = 1883

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is not a TCP port (1-65535)")


@dataclass(frozen=True)
class Example:
    name: str = "gw-1"
    batch_size: int = 5000
    flush_s: float = 1.0
    tls: bool = False
    topics: tuple[str, ...] = ("a", "b")
    broker: Broker = field(default_factory=Broker)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "example.toml"
    path.write_text(text)
    return path


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load(Example, write(tmp_path, "")) == Example()


def test_round_trip(tmp_path: Path) -> None:
    cfg = Example(
        name="x", batch_size=7, flush_s=0.25, tls=True, topics=("q",), broker=Broker("h", 9)
    )
    assert load(Example, write(tmp_path, to_toml(cfg))) == cfg


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name = 'a'\nbatchsize = 3\n",
            r"example.toml:2: batchsize: unknown key \(known keys here: batch_size,",
        ),
        ("[broker]\nhost = 'h'\nprt = 1\n", r"example.toml:3: broker.prt: unknown key"),
        ("[broker]\nport = 70000\n", r"example.toml:2: broker.port: port 70000 is not a TCP port"),
        ("batch_size = '10'\n", r"example.toml:1: batch_size: expected an integer, got '10'"),
        ("tls = 1\n", r"tls: expected true or false, got 1"),
        ("flush_s = true\n", r"flush_s: expected a number"),
        ("topics = 'a'\n", r"topics: expected a list"),
        ("name = \n", r"not valid TOML"),
    ],
)
def test_bad_config_names_line_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(Example, write(tmp_path, text))


def test_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load(Example, tmp_path / "nope.toml")


def test_secret_from_env_or_private_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    os.chmod(secret, 0o644)
    monkeypatch.delenv("SB_TEST_SECRET", raising=False)
    with pytest.raises(ConfigError, match="chmod 600") as info:
        read_secret("SB_TEST_SECRET", secret, "influx password")
    assert "s3cret" not in str(info.value)
    os.chmod(secret, 0o600)
    assert read_secret("SB_TEST_SECRET", secret, "influx password") == "s3cret"
    monkeypatch.setenv("SB_TEST_SECRET", "from-env")
    assert read_secret("SB_TEST_SECRET", secret, "influx password") == "from-env"

"""The documented operator path, from nothing to a device that logs in (issue 11 item 10):
`smartbins setup municipality/site/bin/accounts/influxdb`, then `smartbins provision`, against
a real broker (reloaded by pid file, as in production) and the real InfluxDB."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartbins.cli import main
from smartbins.deployment import INFLUX_READER, INFLUX_WRITER
from smartbins.influx import InfluxClient, InfluxError
from smartbins.passwords import mqtt_login
from smartbins.servers import InfluxDB, Mosquitto, temp_workdir


@pytest.fixture
def site() -> Iterator[tuple[Mosquitto, Path]]:
    workdir = temp_workdir("operator")
    broker = Mosquitto(workdir / "mosquitto")
    try:
        broker.start()
        assert broker.proc is not None
        (workdir / "mosquitto.pid").write_text(f"{broker.proc.pid}\n")
        (workdir / "settings.toml").write_text(
            f'registry = "{workdir / "registry.sqlite"}"\n'
            f'password_file = "{broker.passwd_path}"\n'
            f'broker_pid_file = "{workdir / "mosquitto.pid"}"\n'
            f'broker_host = "127.0.0.1"\nbroker_port = {broker.port}\n'
            f'configs_dir = "{workdir / "configs"}"\n'
        )
        yield broker, workdir
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_from_an_empty_registry_to_a_provisioned_device(site, capsys) -> None:
    broker, workdir = site
    s = ["--settings", str(workdir / "settings.toml")]
    assert main(["setup", "municipality", "0101", "København", *s]) == 0
    assert main(["setup", "site", "nv-1", "--municipality", "0101", "--lat", "55.68",
                 "--lon", "12.59", "--name", "Nyhavn", "--address", "Nyhavn 1",
                 *s]) == 0  # fmt: skip
    assert main(["setup", "bin", "nv-1-glass", "--site", "nv-1", "--stream", "glass+metal",
                 "--volume", "2500", "--area", "Indre By", *s]) == 0  # fmt: skip
    # the same functions the API calls: what the API shows is what the operator created
    from smartbins import assets
    from smartbins.registry import Registry

    with Registry(workdir / "registry.sqlite") as reg:
        (b,) = assets.bins(reg, "0101")
        assert (b.id, b.stream, b.area) == ("nv-1-glass", "glass+metal", "Indre By")
        assert assets.site(reg, "nv-1").address == "Nyhavn 1"
    assert main(["setup", "bin", "nv-1-glass", "--site", "nv-1", "--stream", "glass",
                 "--volume", "2500", *s]) == 1  # taken  # fmt: skip
    secrets = workdir / "secrets"
    assert main(["setup", "accounts", "--secrets-dir", str(secrets), *s]) == 0
    assert main(["provision", "op-0001", "--bin", "nv-1-glass", *s]) == 0
    capsys.readouterr()
    config = (workdir / "configs" / "op-0001" / "config.json").read_text()
    password = json.loads(config)["password"]
    assert mqtt_login("127.0.0.1", broker.port, "op-0001", password) == 0
    for account in ("smartbins.gateway", "smartbins.service"):
        secret = (secrets / account).read_text().strip()
        assert mqtt_login("127.0.0.1", broker.port, account, secret) == 0


def test_influxdb_setup_gives_the_gateway_write_and_the_reader_read_only(
    influxdb: InfluxDB, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("SMARTBINS_INFLUX_ADMIN_PASSWORD", influxdb.password)
    argv = ["setup", "influxdb", "--url", influxdb.url, "--database", "opsetup",
            "--admin-user", influxdb.username, "--secrets-dir", str(tmp_path / "s")]  # fmt: skip
    assert main(argv) == 0
    assert main(argv) == 0  # again: keeps users and passwords
    pw = {u: (tmp_path / "s" / f"influxdb-{u}").read_text().strip()
          for u in (INFLUX_WRITER, INFLUX_READER)}  # fmt: skip
    writer = InfluxClient(influxdb.url, "opsetup", username=INFLUX_WRITER,
                          password=pw[INFLUX_WRITER])  # fmt: skip
    reader = InfluxClient(influxdb.url, "opsetup", username=INFLUX_READER,
                          password=pw[INFLUX_READER])  # fmt: skip
    writer.write_lines(["reading,device=op seq=1.0 1764000000000"])
    assert reader.query("SELECT seq FROM reading")[0]["values"] == [[1764000000000, 1.0]]
    with pytest.raises(InfluxError):
        reader.write_lines(["reading,device=op seq=2.0 1764000001000"])
    with pytest.raises(InfluxError):
        writer.query("SELECT seq FROM reading")

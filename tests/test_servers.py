"""The test servers listen on loopback only and run the production broker config."""

from __future__ import annotations

import re

from smartbins.servers import PRODUCTION_CONF, InfluxDB, Mosquitto, temp_workdir


def _settings(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        words = line.split(None, 1)
        if words and not words[0].startswith("#") and len(words) == 2:
            out[words[0]] = words[1]
    return out


def test_broker_config_is_production_but_for_listener_and_paths() -> None:
    server = Mosquitto(temp_workdir("conf"))
    rendered = _settings(server.conf_path.read_text())
    production = _settings(PRODUCTION_CONF.read_text())
    for key in (
        "max_queued_messages",
        "max_inflight_messages",
        "max_queued_bytes",
        "persistence",
        "autosave_interval",
    ):
        assert rendered[key] == production[key], key
    assert rendered["allow_anonymous"] == "false"
    assert rendered["listener"] == f"{server.port} 127.0.0.1"
    assert "1883" not in server.conf_path.read_text()


def test_production_config_refuses_anonymous_and_raises_the_lossy_limits() -> None:
    conf = _settings(PRODUCTION_CONF.read_text())
    assert conf["allow_anonymous"] == "false"
    assert int(conf["max_queued_messages"]) > 1000
    assert int(conf["max_inflight_messages"]) > 20
    assert "acl_file" in conf and "password_file" in conf


def test_influxdb_binds_every_address_to_loopback(influxdb: InfluxDB) -> None:
    text = influxdb.conf_path.read_text()
    binds = re.findall(r'bind-address = "([^"]+)"', text)
    assert len(binds) == 2
    assert all(b.startswith("127.0.0.1:") for b in binds)
    assert "reporting-disabled = true" in text
    # It answers, with the credentials it was started with, and holds the readings database.
    (series,) = influxdb.client().query("SHOW DATABASES")
    assert [influxdb.database] in series["values"], series


def test_influxdb_requires_credentials(influxdb: InfluxDB) -> None:
    from smartbins.influx import InfluxClient, InfluxError

    anonymous = InfluxClient(influxdb.url, influxdb.database)
    try:
        anonymous.query("SHOW DATABASES")
    except InfluxError as e:
        assert e.status == 401
    else:
        raise AssertionError("InfluxDB answered a query without credentials")


def test_free_port_never_hands_out_a_port_twice() -> None:
    """The OS offers a just-closed probe port again; the broker and influxd of one demo once
    got the same one."""
    from smartbins.servers import free_port

    ports = [free_port() for _ in range(1000)]
    assert len(set(ports)) == len(ports)

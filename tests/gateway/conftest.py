"""Fixtures for the gateway's tests: a fresh database, group and config per test, real servers.

The session broker and InfluxDB are shared with the rest of the suite, so every test here uses
its own InfluxDB database, its own shared-subscription group and client ids, and its own device
ids: a gateway session left behind by one test can never take messages meant for another.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from gw_fleet import secret_file

from gateway.config import (
    BatchConfig,
    GatewayConfig,
    HttpConfig,
    InfluxConfig,
    MqttConfig,
    RetryConfig,
    StatusConfig,
    read_secrets,
)
from gateway.service import Gateway
from smartbins.provisioning import GATEWAY_ACCOUNT
from smartbins.servers import InfluxDB, free_port

_n = itertools.count()


def make_config(
    tmp: Path,
    *,
    mqtt_port: int,
    mqtt_password: str,
    influx: InfluxDB,
    database: str,
    group: str,
    client_id: str,
    **overrides: object,
) -> GatewayConfig:
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = GatewayConfig(
        mqtt=MqttConfig(
            port=mqtt_port,
            password_env="SMARTBINS_TEST_UNSET_MQTT",
            password_file=secret_file(tmp, "mqtt.secret", mqtt_password),
            client_id=client_id,
            group=group,
            session_expiry_s=30,
            keepalive_s=5,
            reconnect_min_s=0.1,
            reconnect_max_s=1.0,
        ),
        influxdb=InfluxConfig(
            url=influx.url,
            database=database,
            username=influx.username,
            password_env="SMARTBINS_TEST_UNSET_INFLUX",
            password_file=secret_file(tmp, "influx.secret", influx.password),
            timeout_s=5.0,
        ),
        batch=BatchConfig(max_points=2000, max_age_s=0.05),
        retry=RetryConfig(initial_s=0.05, max_s=0.5),
        http=HttpConfig(port=free_port()),
        status=StatusConfig(path=tmp / "status.sqlite"),
    )
    for section, values in overrides.items():
        cfg = replace(cfg, **{section: replace(getattr(cfg, section), **values)})  # type: ignore[arg-type]
    return cfg


@pytest.fixture
def unique() -> str:
    """A short name unique in this test run (device prefix, group, database)."""
    return f"t{os.getpid() % 10000}x{next(_n)}"


@pytest.fixture
def fresh_db(influxdb: InfluxDB, unique: str) -> Iterator[str]:
    name = f"gw_{unique}"
    influxdb.client().execute(f'CREATE DATABASE "{name}"')
    yield name
    influxdb.client().execute(f'DROP DATABASE "{name}"')


@pytest.fixture
def gateway_factory(
    broker: object, influxdb: InfluxDB, fresh_db: str, unique: str, tmp_path: Path
) -> Iterator[Callable[..., Gateway]]:
    """``gateway_factory(**section_overrides)`` -> a started in-process gateway on the session
    broker and InfluxDB; stopped afterwards."""
    made: list[Gateway] = []

    def make(name: str = "gw1", **overrides: object) -> Gateway:
        cfg = make_config(
            tmp_path / name,
            mqtt_port=broker.port,  # type: ignore[attr-defined]
            mqtt_password=broker.gateway.password,  # type: ignore[attr-defined]
            influx=influxdb,
            database=fresh_db,
            group=f"g{unique}",
            client_id=f"{GATEWAY_ACCOUNT}-{unique}-{name}",
            **overrides,
        )
        gw = Gateway(cfg, read_secrets(cfg))
        made.append(gw)
        gw.start()
        return gw

    yield make
    for gw in made:
        gw.stop(drain_s=1.0)
    shutil.rmtree(tmp_path, ignore_errors=True)

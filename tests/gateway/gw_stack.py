"""A private broker, InfluxDB and gateway process for tests that kill them.

The suite's session servers are shared; a test that SIGKILLs servers starts its own here.
The gateway runs as a real subprocess (``smartbins gateway --config FILE``) so it can be
SIGKILLed like in production.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from gw_fleet import Fleet, assert_stored_once, secret_file

from gateway.config import (
    BatchConfig,
    GatewayConfig,
    HttpConfig,
    InfluxConfig,
    LogConfig,
    MqttConfig,
    RetryConfig,
    StatusConfig,
)
from smartbins.provisioning import GATEWAY_ACCOUNT, SERVICE_ACCOUNT, ensure_service_accounts
from smartbins.servers import (
    PRODUCTION_ACL,
    InfluxDB,
    Mosquitto,
    free_port,
    temp_workdir,
    wait_until,
)
from smartbins.settings import to_toml


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


class GatewayProcess:
    """``smartbins gateway --config FILE`` as a child process."""

    def __init__(self, workdir: Path, cfg: GatewayConfig) -> None:
        self.workdir = workdir
        self.cfg = cfg
        self.config_path = workdir / "gateway.toml"
        self.config_path.write_text(to_toml(cfg))
        self.log_path = workdir / "gateway.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def port(self) -> int:
        return self.cfg.http.port

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "smartbins.cli",
                    "gateway",
                    "--config",
                    str(self.config_path),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={k: v for k, v in os.environ.items() if not k.startswith("SMARTBINS_")},
            )
        self.starts += 1

    def wait_healthy(self, timeout: float = 20) -> None:
        wait_until(lambda: self.health()[0], timeout, message="gateway /healthz 200")

    def health(self) -> tuple[bool, dict[str, object]]:
        status, body = http_get(self.port, "/healthz")
        return status == 200, (json.loads(body) if body else {})

    def metric(self, name: str) -> float:
        _, body = http_get(self.port, "/metrics")
        total = 0.0
        for line in body.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                head, value = line.rsplit(" ", 1)
                if head == name or head.startswith(name + "{"):
                    total += float(value)
        return total

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Stack:
    """Own Mosquitto + InfluxDB (+ service accounts) + gateway processes, all killable."""

    def __init__(
        self, name: str, *, extra_acl: str = "", extra_conf: str = "", plugin: bool = True
    ) -> None:
        self.workdir = temp_workdir(name)
        acl = PRODUCTION_ACL
        if extra_acl:
            acl = self.workdir / "acl"
            acl.write_text(PRODUCTION_ACL.read_text() + "\n" + extra_acl + "\n")
        self.broker = Mosquitto(
            self.workdir / "mosquitto", acl=acl, extra_conf=extra_conf, plugin=plugin
        )
        self.creds = ensure_service_accounts(self.broker.passwords, self.workdir / "secrets")
        self.influx = InfluxDB(self.workdir / "influxdb")
        self.gateways: list[GatewayProcess] = []

    def start(self) -> None:
        self.broker.start()
        self.influx.start()

    def gateway_config(self, name: str, **section_overrides: dict[str, object]) -> GatewayConfig:
        from dataclasses import replace

        d = self.workdir / name
        d.mkdir(parents=True, exist_ok=True)
        cfg = GatewayConfig(
            mqtt=MqttConfig(
                port=self.broker.port,
                password_env="SMARTBINS_TEST_UNSET",
                password_file=self.workdir / "secrets" / GATEWAY_ACCOUNT,
                client_id=f"{GATEWAY_ACCOUNT}-{name}",
                session_expiry_s=60,
                keepalive_s=5,
                reconnect_min_s=0.1,
                reconnect_max_s=1.0,
            ),
            influxdb=InfluxConfig(
                url=self.influx.url,
                database=self.influx.database,
                username=self.influx.username,
                password_env="SMARTBINS_TEST_UNSET",
                password_file=secret_file(d, "influx.secret", self.influx.password),
                timeout_s=5.0,
            ),
            batch=BatchConfig(max_points=5000, max_age_s=0.05),
            retry=RetryConfig(initial_s=0.05, max_s=1.0),
            http=HttpConfig(port=free_port()),
            status=StatusConfig(path=d / "status.sqlite"),
            log=LogConfig(deadletter_interval_s=60),
        )
        for section, values in section_overrides.items():
            cfg = replace(cfg, **{section: replace(getattr(cfg, section), **values)})
        return cfg

    def add_gateway(self, name: str, **overrides: dict[str, object]) -> GatewayProcess:
        gw = GatewayProcess(self.workdir / name, self.gateway_config(name, **overrides))
        self.gateways.append(gw)
        return gw

    @property
    def service_password(self) -> str:
        return self.creds[SERVICE_ACCOUNT].password

    def close(self) -> None:
        for gw in self.gateways:
            gw.stop()
        self.broker.stop()
        self.influx.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def drive(fleet: Fleet, done: Callable[[], bool], timeout: float, every: float = 0.2) -> None:
    """Let the devices publish (and resend what stays unacknowledged) until ``done``."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{fleet.pending()} readings still unacknowledged after {timeout} s")
        fleet.pump()
        time.sleep(every)


def points_requested(stack: Stack) -> int:
    """Points InfluxDB was asked to write since influxd started (its ``write`` statistics),
    counted by the database itself: a point written twice counts twice here even though it
    is stored once."""
    (series,) = stack.influx.client().query("SHOW STATS FOR 'write'")
    return int(series["values"][0][series["columns"].index("pointReq")])


def assert_exactly_once(stack: Stack, fleet: Fleet) -> dict[str, int]:
    return assert_stored_once(stack.influx.client(), fleet)

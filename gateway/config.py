"""The gateway's config file: TOML into frozen dataclasses, validated before anything starts.

``gateway/sample.toml`` is the documentation of every key (default and trade-off); a test keeps
it equal to the defaults here. Secrets are never in this file: the passwords come from an
environment variable or from a file of mode 0600 (``smartbins.settings.read_secret``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from smartbins import settings
from smartbins.provisioning import GATEWAY_ACCOUNT

SAMPLE_PATH = Path(__file__).with_name("sample.toml")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name}: {value!r} must be greater than 0")


def _port(name: str, value: int, allow_zero: bool = False) -> None:
    lo = 0 if allow_zero else 1
    if not lo <= value <= 65535:
        raise ValueError(f"{name}: {value} is not a TCP port ({lo}-65535)")


@dataclass(frozen=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str = GATEWAY_ACCOUNT
    password_env: str = "SMARTBINS_GATEWAY_MQTT_PASSWORD"
    password_file: Path | None = None
    client_id: str = "smartbins.gateway-1"
    group: str = "gateways"
    keepalive_s: int = 30
    session_expiry_s: int = 300
    receive_maximum: int = 2000
    reconnect_min_s: float = 0.2
    reconnect_max_s: float = 10.0

    def __post_init__(self) -> None:
        _port("port", self.port)
        if not self.client_id or len(self.client_id) > 64:
            raise ValueError("client_id: must be 1 to 64 characters, and unique per gateway")
        if self.client_id != self.username and not self.client_id.startswith(f"{self.username}-"):
            raise ValueError(
                f"client_id: {self.client_id!r} must be the username or start with "
                f"'{self.username}-' (the broker refuses any other id for this account)"
            )
        if not self.group or any(c in self.group for c in "/+#"):
            raise ValueError(f"group: {self.group!r} must be non-empty without / + #")
        if not 5 <= self.keepalive_s <= 3600:
            raise ValueError(f"keepalive_s: {self.keepalive_s} must be in [5, 3600] s")
        if not 0 <= self.session_expiry_s <= 4_294_967_295:
            raise ValueError(f"session_expiry_s: {self.session_expiry_s} must be >= 0")
        if not 1 <= self.receive_maximum <= 65535:
            raise ValueError(f"receive_maximum: {self.receive_maximum} must be in [1, 65535]")
        _positive("reconnect_min_s", self.reconnect_min_s)
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError(
                f"reconnect_max_s: {self.reconnect_max_s} must be at least the shortest "
                f"delay ({self.reconnect_min_s})"
            )


@dataclass(frozen=True)
class InfluxConfig:
    url: str = "http://127.0.0.1:8086"
    database: str = "smartbins"
    username: str = "smartbins-gateway"
    password_env: str = "SMARTBINS_GATEWAY_INFLUX_PASSWORD"
    password_file: Path | None = None
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url: {self.url!r} must start with http:// or https://")
        if not self.database:
            raise ValueError("database: must not be empty")
        _positive("timeout_s", self.timeout_s)


@dataclass(frozen=True)
class BatchConfig:
    max_points: int = 5000
    max_age_s: float = 0.2
    max_queue_messages: int = 20000

    def __post_init__(self) -> None:
        if not 1 <= self.max_points <= 100_000:
            raise ValueError(f"max_points: {self.max_points} must be in [1, 100000]")
        _positive("max_age_s", self.max_age_s)
        if self.max_queue_messages < 1:
            raise ValueError(f"max_queue_messages: {self.max_queue_messages} must be at least 1")


@dataclass(frozen=True)
class RetryConfig:
    initial_s: float = 0.1
    max_s: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        _positive("initial_s", self.initial_s)
        if self.max_s < self.initial_s:
            raise ValueError(
                f"max_s: {self.max_s} must be at least the initial delay ({self.initial_s})"
            )
        if self.multiplier < 1:
            raise ValueError(f"multiplier: {self.multiplier} must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter: {self.jitter} must be in [0, 1]")


@dataclass(frozen=True)
class ValidationConfig:
    future_tolerance_s: float = 300.0

    def __post_init__(self) -> None:
        if self.future_tolerance_s < 0:
            raise ValueError(f"future_tolerance_s: {self.future_tolerance_s} must be >= 0")


@dataclass(frozen=True)
class HttpConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9108

    def __post_init__(self) -> None:
        _port("port", self.port, allow_zero=True)
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"host: {self.host!r} is not a loopback address; /metrics and /healthz are "
                "served on loopback only (put a reverse proxy in front to expose them)"
            )


@dataclass(frozen=True)
class StatusConfig:
    path: Path = Path("gateway-status.sqlite")


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"
    deadletter_interval_s: float = 60.0

    def __post_init__(self) -> None:
        if self.level not in ("debug", "info", "warning", "error"):
            raise ValueError(f"level: {self.level!r} is not one of debug, info, warning, error")
        if self.deadletter_interval_s < 0:
            raise ValueError(f"deadletter_interval_s: {self.deadletter_interval_s} must be >= 0")


@dataclass(frozen=True)
class ProcessConfig:
    workers: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.workers <= 64:
            raise ValueError(f"workers: {self.workers} must be in [1, 64]")


@dataclass(frozen=True)
class GatewayConfig:
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    influxdb: InfluxConfig = field(default_factory=InfluxConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    retry: RetryConfig = field(default_factory=RetryConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    status: StatusConfig = field(default_factory=StatusConfig)
    log: LogConfig = field(default_factory=LogConfig)
    process: ProcessConfig = field(default_factory=ProcessConfig)


def load(path: Path | str) -> GatewayConfig:
    """Read and validate a gateway config; ConfigError names the file, line, key and problem."""
    return settings.load(GatewayConfig, path)


@dataclass(frozen=True)
class Secrets:
    mqtt_password: str = field(repr=False)
    influx_password: str | None = field(repr=False)


def read_secrets(cfg: GatewayConfig) -> Secrets:
    """Both passwords, from their environment variables or 0600 files. Never logged."""
    mqtt_pw = settings.read_secret(
        cfg.mqtt.password_env, cfg.mqtt.password_file, "mqtt.password_env / mqtt.password_file"
    )
    influx_pw = None
    if cfg.influxdb.username:
        influx_pw = settings.read_secret(
            cfg.influxdb.password_env,
            cfg.influxdb.password_file,
            "influxdb.password_env / influxdb.password_file",
        )
    return Secrets(mqtt_pw, influx_pw)

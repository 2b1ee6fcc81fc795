"""The API's config file: TOML into frozen dataclasses (smartbins.settings.load), validated before
anything starts. ``backend/sample.toml`` documents every key; a test keeps it equal to the
defaults here. Secrets never go in the file: they come from an environment variable or a file of
mode 0600."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from backend.dashboard.settings import DashboardSettings
from smartbins import settings as settings_mod
from smartbins.deviceops import DeviceSettings

SAMPLE_PATH = Path(__file__).with_name("sample.toml")


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    #: Development mode: allows InfluxDB without authentication (influxdb.username = "").
    dev: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} is not a TCP port (0-65535)")


@dataclass(frozen=True)
class RegistrySettings:
    path: Path = Path("/var/lib/smartbins/registry.sqlite")
    #: The gateway's device status store (smartbins.devicestatus), read for fleet health.
    status_path: Path | None = None


@dataclass(frozen=True)
class InfluxSettings:
    url: str = "http://127.0.0.1:8086"
    database: str = "smartbins"
    username: str = "smartbins-api"
    password_env: str = "SMARTBINS_API_INFLUX_PASSWORD"
    password_file: Path | None = None
    timeout_s: float = 10.0
    #: Seconds between refreshes of the latest-state cache (0: query InfluxDB on each request).
    cache_refresh_s: float = 2.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url: {self.url!r} must start with http:// or https://")
        if not self.database:
            raise ValueError("database: must not be empty")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s: {self.timeout_s!r} must be greater than 0")
        if self.cache_refresh_s < 0:
            raise ValueError(f"cache_refresh_s: {self.cache_refresh_s!r} must be 0 or more")


@dataclass(frozen=True)
class DevicesSettings:
    """What provisioning, revocation and config changes need (smartbins.deviceops)."""

    password_file: Path | None = None
    broker_pid_file: Path | None = None
    broker_reload_command: str = ""
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    service_password_file: Path | None = None
    wifi_ssid: str = ""
    wifi_password_file: Path | None = None
    ntp_server: str = "pool.ntp.org"

    def __post_init__(self) -> None:
        if not 1 <= self.broker_port <= 65535:
            raise ValueError(f"broker_port: {self.broker_port} is not a TCP port (1-65535)")

    def device_settings(self, registry: Path) -> DeviceSettings | None:
        if self.password_file is None:
            return None
        return DeviceSettings(
            registry=registry,
            password_file=self.password_file,
            broker_pid_file=self.broker_pid_file,
            broker_reload_command=self.broker_reload_command,
            broker_host=self.broker_host,
            broker_port=self.broker_port,
            wifi_ssid=self.wifi_ssid,
            wifi_password_file=self.wifi_password_file,
            ntp_server=self.ntp_server,
            service_password_file=self.service_password_file,
        )


@dataclass(frozen=True)
class OpenDataSettings:
    publisher: str = "smartbins"
    licence: str = "CC BY 4.0"
    licence_url: str = "https://creativecommons.org/licenses/by/4.0/"


@dataclass(frozen=True)
class AlertSettings:
    """The alert engine (`smartbins alerts --config FILE`), its own process beside the API."""

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    username: str = "smartbins.alerts"
    password_env: str = "SMARTBINS_ALERTS_MQTT_PASSWORD"
    password_file: Path | None = None
    client_id: str = "smartbins.alerts-1"
    topic_prefix: str = "sb/svc/alerts"
    webhook_url: str = ""
    webhook_secret_env: str = "SMARTBINS_ALERTS_WEBHOOK_SECRET"
    webhook_secret_file: Path | None = None
    webhook_timeout_s: float = 5.0
    offline_check_s: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.mqtt_port <= 65535:
            raise ValueError(f"mqtt_port: {self.mqtt_port} is not a TCP port (1-65535)")
        if not self.client_id or len(self.client_id) > 64:
            raise ValueError("client_id: 1 to 64 characters, stable across restarts")
        if any(c in self.topic_prefix for c in "+#") or not self.topic_prefix:
            raise ValueError(f"topic_prefix: {self.topic_prefix!r} must be a topic without + #")
        if self.webhook_url and not self.webhook_url.startswith(("http://", "https://")):
            raise ValueError(f"webhook_url: {self.webhook_url!r} must start with http(s)://")
        if not self.webhook_timeout_s > 0:
            raise ValueError(f"webhook_timeout_s: {self.webhook_timeout_s!r} must be > 0")
        if not self.offline_check_s > 0:
            raise ValueError(f"offline_check_s: {self.offline_check_s!r} must be > 0")

    @property
    def channels(self) -> tuple[str, ...]:
        """Where alerts go: the webhook when one is set, and always the MQTT topic."""
        return ("webhook", "mqtt") if self.webhook_url else ("mqtt",)


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    influxdb: InfluxSettings = field(default_factory=InfluxSettings)
    devices: DevicesSettings = field(default_factory=DevicesSettings)
    open_data: OpenDataSettings = field(default_factory=OpenDataSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)

    def __post_init__(self) -> None:
        if not self.influxdb.username and not self.server.dev:
            raise ValueError(
                "influxdb.username: empty means reading InfluxDB without authentication; give "
                "the read-only user, or set [server] dev = true for a local experiment"
            )


def load(path: Path | str) -> Settings:
    return settings_mod.load(Settings, path)


def influx_password(s: InfluxSettings) -> str | None:
    """The read-only user's password (None when no username is set)."""
    if not s.username:
        return None
    return settings_mod.read_secret(s.password_env, s.password_file, "InfluxDB password")

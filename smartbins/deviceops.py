"""What the technicians' commands (and the backend) do to devices beyond the provisioning core:
find the registry and the broker's password file (:class:`DeviceSettings`), reload the broker,
build and write each device's ``config.json`` (mode 0600), publish its retained config, and
read its recent distances for calibration.

A device's secret goes into its config file and the broker's (hashed) password file, never to
the terminal or a log.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartbins import protocol as p
from smartbins import settings as settings_mod
from smartbins import storage
from smartbins.errors import SmartbinsError
from smartbins.passwords import PasswordFile, mqtt_login
from smartbins.provisioning import SERVICE_ACCOUNT, Credentials
from smartbins.registry import THRESHOLDS, Registry

SETTINGS_ENV = "SMARTBINS_DEVICE_SETTINGS"
WIFI_PASSWORD_ENV = "SMARTBINS_WIFI_PASSWORD"
SERVICE_PASSWORD_ENV = "SMARTBINS_SERVICE_PASSWORD"
INFLUX_PASSWORD_ENV = "SMARTBINS_INFLUX_PASSWORD"
#: The full distance `calibrate` records when none is given and none was recorded before: the
#: JSN-SR04T's 250 mm blind zone plus a margin.
DEFAULT_FULL_MM = 300
#: protocol.DeviceConfig's thresholds by attribute (registry.THRESHOLDS): what a flag sets.
THRESHOLD_SPECS = {f.attr: f for f in p.CONFIG_FIELDS if f.attr in THRESHOLDS}




class DeviceError(SmartbinsError):
    """A technician's command that cannot be done; says what to check."""


@dataclass(frozen=True)
class DeviceSettings:
    """Where the technicians' commands find things. Every key can also be given as a flag.

    ``broker_pid_file`` (SIGHUP to that pid) or ``broker_reload_command`` (e.g.
    ``systemctl reload mosquitto``) tells the broker to reread its password file; with neither,
    the commands say that the broker still has to be reloaded.
    """

    registry: Path = Path("/var/lib/smartbins/registry.sqlite")
    password_file: Path = Path("/etc/mosquitto/smartbins/passwd")
    broker_pid_file: Path | None = None
    broker_reload_command: str = ""
    #: The user the broker runs as: the password file gets its group (mode 0640) and must be
    #: readable by it, or nothing is changed. "" when the broker runs as the writing user.
    broker_user: str = "mosquitto"
    #: The broker address as the devices reach it (written into config.json).
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    #: Where `smartbins provision` writes <device>/config.json (mode 0600, directory 0700).
    configs_dir: Path = Path("device-configs")
    wifi_ssid: str = ""
    #: The Wi-Fi password: env SMARTBINS_WIFI_PASSWORD, or this file (mode 0600).
    wifi_password_file: Path | None = None
    ntp_server: str = "pool.ntp.org"
    #: The service account's password (for `calibrate`): env SMARTBINS_SERVICE_PASSWORD or file.
    service_password_file: Path | None = None
    influx_url: str = "http://127.0.0.1:8086"
    influx_database: str = "smartbins"
    influx_username: str = ""
    #: env SMARTBINS_INFLUX_PASSWORD, or this file (mode 0600).
    influx_password_file: Path | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.broker_port <= 65535:
            raise ValueError(f"broker_port: {self.broker_port} is not a TCP port (1-65535)")


def open_stores(s: DeviceSettings) -> tuple[Registry, PasswordFile]:
    """The registry and the password file; with a reload configured, every password change is
    verified by a login at ``broker_host:broker_port`` and undone if the broker did not take
    it (provisioning.provision then reports that nothing changed)."""
    reloads = s.broker_pid_file is not None or bool(s.broker_reload_command)
    return open_registry(s), PasswordFile(
        s.password_file,
        reload=lambda: reload_broker(s),
        verify=(lambda user, password: verify_login(s, user, password)) if reloads else None,
        broker_user=s.broker_user or None,
    )


def verify_login(s: DeviceSettings, username: str, password: str, timeout_s: float = 5.0) -> None:
    """Wait until the broker accepts ``username`` (a reload is asynchronous); DeviceError if it
    never does within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    code: int | str = "no answer"
    while True:
        try:
            code = mqtt_login(s.broker_host, s.broker_port, username, password)
        except OSError as e:
            code = str(e)
        if code == 0:
            return
        if time.monotonic() > deadline:
            raise DeviceError(
                f"the broker at {s.broker_host}:{s.broker_port} still refuses {username!r} "
                f"after the reload ({code})"
            )
        time.sleep(0.1)


def open_registry(s: DeviceSettings) -> Registry:
    if not s.registry.parent.exists():
        raise DeviceError(
            f"registry {s.registry}: its directory does not exist; give --registry or set "
            "`registry` in the settings file"
        )
    return Registry(s.registry)


def reload_broker(s: DeviceSettings) -> None:
    """Tell the broker to reread its password file."""
    if s.broker_pid_file is not None:
        try:
            pid = int(s.broker_pid_file.read_text().strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as e:
            raise DeviceError(
                f"could not reload the broker via {s.broker_pid_file} ({e}); the password file "
                "is written: reload the broker by hand (e.g. systemctl reload mosquitto)"
            ) from None
        return
    if s.broker_reload_command:
        done = subprocess.run(shlex.split(s.broker_reload_command), capture_output=True, text=True)
        if done.returncode != 0:
            raise DeviceError(
                f"broker reload command {s.broker_reload_command!r} failed: "
                f"{done.stderr.strip()}; the password file is written: reload the broker by hand"
            )
        return
    print(
        "note: no broker_pid_file or broker_reload_command set; reload the broker yourself "
        "(e.g. systemctl reload mosquitto) for the change to take effect",
        file=sys.stderr,
    )


def wifi_password(s: DeviceSettings) -> str:
    if not s.wifi_ssid:
        return ""
    return settings_mod.read_secret(WIFI_PASSWORD_ENV, s.wifi_password_file, "Wi-Fi password")


def device_config(
    s: DeviceSettings, cred: Credentials, registry: Registry, wifi_password: str
) -> dict[str, Any]:
    """The firmware's config.json (firmware/main.py load_settings)."""
    d = registry.device(cred.username)
    cfg: dict[str, Any] = {
        "device": cred.username,
        "password": cred.password,
        "broker": {"host": s.broker_host, "port": s.broker_port},
        "wifi": {"ssid": s.wifi_ssid, "password": wifi_password},
        "ntp": s.ntp_server,
        "sensor": d.sensor,
        # The thresholds by wire key: the device runs with them from its first wake, before
        # it has received a retained config.
        "config": {
            THRESHOLD_SPECS[k].key: v for k, v in registry.thresholds(cred.username).items()
        },
    }
    if d.empty_mm is not None and d.full_mm is not None:
        cfg["calibration"] = {"cal": d.cal, "empty_mm": d.empty_mm, "full_mm": d.full_mm}
    return cfg


def write_config(directory: Path, device_id: str, cfg: dict[str, Any]) -> Path:
    """Write <directory>/<device>/config.json with mode 0600 from the start (never readable
    by others, not even for a moment), atomically."""
    d = directory / device_id
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    path = d / "config.json"
    tmp = d / ".config.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    return path


def empty_distance(distances: Sequence[float]) -> int:
    """The empty-bin distance [mm] from recent readings: their median (robust to one spike)."""
    if not distances:
        raise DeviceError(
            "no recent readings with a distance: wait for the device to report (or give --empty-mm)"
        )
    return round(statistics.median(distances))


def recent_distances(s: DeviceSettings, device: str, last: int) -> list[float]:
    """The device's ``last`` newest valid distances [mm] from InfluxDB."""
    from smartbins.influx import InfluxClient, InfluxError

    password = None
    if s.influx_username:
        password = settings_mod.read_secret(
            INFLUX_PASSWORD_ENV, s.influx_password_file, "InfluxDB password"
        )
    client = InfluxClient(
        s.influx_url, s.influx_database, username=s.influx_username or None, password=password
    )
    try:
        series = client.query(storage.recent_distances_query(device, last))
    except (InfluxError, OSError) as e:
        raise DeviceError(
            f"cannot read readings from {s.influx_url} ({e}); check influx_url and credentials, "
            "or give --empty-mm"
        ) from None
    finally:
        client.close()
    return [row[1] for sr in series for row in sr["values"] if row[1] is not None]


def publish_retained(s: DeviceSettings, topic: str, payload: bytes, recorded: str) -> None:
    """Publish one retained QoS 1 message as the service account; wait for its PUBACK.
    ``recorded`` tells the technician what is already done if the broker cannot be reached."""
    import paho.mqtt.client as mqtt

    password = settings_mod.read_secret(
        SERVICE_PASSWORD_ENV, s.service_password_file, "service account password"
    )
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"{SERVICE_ACCOUNT}-cli-{os.getpid()}"
    )
    client.username_pw_set(SERVICE_ACCOUNT, password)
    connected = threading.Event()
    result: list[object] = []

    def on_connect(c: mqtt.Client, u: object, f: object, rc: Any, props: object) -> None:
        result.append(rc)
        connected.set()

    client.on_connect = on_connect
    try:
        client.connect(s.broker_host, s.broker_port, keepalive=30)
    except OSError as e:
        raise DeviceError(
            f"cannot reach the broker at {s.broker_host}:{s.broker_port} ({e}); {recorded}"
        ) from None
    client.loop_start()
    try:
        if not connected.wait(10) or getattr(result[0], "is_failure", True):
            raise DeviceError(
                f"the broker refused the service account ({result[0] if result else 'no answer'});"
                f" check {SERVICE_PASSWORD_ENV} or service_password_file"
            )
        info = client.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(10)
        if not info.is_published():
            raise DeviceError("the broker did not acknowledge the config within 10 s")
    finally:
        client.disconnect()
        client.loop_stop()

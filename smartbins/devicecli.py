"""Technicians' commands: provision, device revoke|rotate|move|decommission|config, calibrate,
flash.

Built on the provisioning core (smartbins.provisioning): this module only finds the registry,
the broker's password file and the way to reload the broker (a small settings dataclass, from a
TOML file, flags or environment variables), writes each device's ``config.json`` with mode 0600,
and talks to the person at the terminal. A device's secret goes into its config file and the
broker's (hashed) password file, never to the terminal or a log.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from smartbins import protocol as p
from smartbins import settings as settings_mod
from smartbins.errors import SmartbinsError
from smartbins.passwords import PasswordFile
from smartbins.provisioning import (
    SERVICE_ACCOUNT,
    Credentials,
    ProvisionRequest,
    decommission,
    move,
    provision,
    revoke,
    rotate,
)
from smartbins.registry import SENSORS, THRESHOLDS, Registry, RegistryError, now_ms

REPO_ROOT = Path(__file__).resolve().parents[1]
FIRMWARE_DIR = REPO_ROOT / "firmware"
SETTINGS_ENV = "SMARTBINS_DEVICE_SETTINGS"
WIFI_PASSWORD_ENV = "SMARTBINS_WIFI_PASSWORD"
SERVICE_PASSWORD_ENV = "SMARTBINS_SERVICE_PASSWORD"
INFLUX_PASSWORD_ENV = "SMARTBINS_INFLUX_PASSWORD"
#: The full distance `calibrate` records when none is given and none was recorded before: the
#: JSN-SR04T's 250 mm blind zone plus a margin.
DEFAULT_FULL_MM = 300
#: protocol.DeviceConfig's thresholds by attribute (registry.THRESHOLDS): what a flag sets.
_THRESHOLD_SPECS = {f.attr: f for f in p.CONFIG_FIELDS if f.attr in THRESHOLDS}


class DeviceCliError(SmartbinsError):
    """A technician's command that cannot be done; says what to check."""


@dataclass(frozen=True)
class DeviceCliSettings:
    """Where the technicians' commands find things. Every key can also be given as a flag.

    ``broker_pid_file`` (SIGHUP to that pid) or ``broker_reload_command`` (e.g.
    ``systemctl reload mosquitto``) tells the broker to reread its password file; with neither,
    the commands say that the broker still has to be reloaded.
    """

    registry: Path = Path("/var/lib/smartbins/registry.sqlite")
    password_file: Path = Path("/etc/mosquitto/smartbins/passwd")
    broker_pid_file: Path | None = None
    broker_reload_command: str = ""
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


_FLAG_KEYS: dict[str, str] = {
    "registry": "registry",
    "password_file": "password_file",
    "broker_pid_file": "broker_pid_file",
    "reload_command": "broker_reload_command",
    "broker_host": "broker_host",
    "broker_port": "broker_port",
    "out": "configs_dir",
    "wifi_ssid": "wifi_ssid",
}
_PATH_KEYS = {"registry", "password_file", "broker_pid_file", "configs_dir"}


def load_settings(args: argparse.Namespace) -> DeviceCliSettings:
    """Settings file (``--settings`` or $SMARTBINS_DEVICE_SETTINGS), then flags on top."""
    path = getattr(args, "settings", None) or os.environ.get(SETTINGS_ENV)
    s = settings_mod.load(DeviceCliSettings, path) if path else DeviceCliSettings()
    changes: dict[str, Any] = {}
    for flag, key in _FLAG_KEYS.items():
        value = getattr(args, flag, None)
        if value is not None:
            changes[key] = Path(value) if key in _PATH_KEYS else value
    return replace(s, **changes)


def _add_common(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("Where things are (override the settings file)")
    g.add_argument(
        "--settings",
        help=f"TOML settings file (default: ${SETTINGS_ENV}, else built-in defaults).",
    )
    g.add_argument("--registry", help="The registry database (SQLite).")
    g.add_argument("--password-file", help="The broker's password file.")
    g.add_argument("--broker-pid-file", help="Reload the broker by SIGHUP to the pid in this file.")
    g.add_argument(
        "--reload-command", help="Reload the broker with this command (e.g. 'systemctl reload …')."
    )


def _add_device_config_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("What goes into the device's config.json")
    g.add_argument("--out", help="Directory for <device>/config.json (default: device-configs).")
    g.add_argument("--broker-host", help="Broker address as the devices reach it.")
    g.add_argument("--broker-port", type=int, help="Broker port as the devices reach it.")
    g.add_argument(
        "--wifi-ssid", help=f"Wi-Fi network name (its password: ${WIFI_PASSWORD_ENV} or a file)."
    )


_METAVARS = {"s": "SECONDS", "%": "PERCENT", "mV": "MV", "°C": "CELSIUS", "°": "DEGREES"}


def _add_threshold_flags(parser: argparse.ArgumentParser, title: str) -> None:
    """One flag per config threshold, named after its wire key (``near_full`` ->
    ``--near-full``), so that a validation message naming the key names the flag too."""
    g = parser.add_argument_group(title)
    for attr, spec in _THRESHOLD_SPECS.items():
        unit = f" [{spec.unit}]" if spec.unit else ""
        g.add_argument(
            "--" + spec.key.replace("_", "-"),
            dest=attr,
            type=int if spec.kind == "int" else float,
            metavar=_METAVARS.get(spec.unit, "N"),
            help=f"{spec.doc.capitalize()}{unit}. Protocol default: "
            f"{getattr(p.DeviceConfig, attr)}.".replace("%", "%%"),
        )


def _threshold_changes(args: argparse.Namespace) -> dict[str, float]:
    return {a: getattr(args, a) for a in THRESHOLDS if getattr(args, a, None) is not None}


def register(sub: argparse._SubParsersAction) -> None:
    prov = sub.add_parser(
        "provision",
        help="Give a device its own credentials and link it to its bin.",
        description="Create the device in the registry on its bin, give it its own random "
        "password at the broker (the broker is reloaded), and write the device's config.json "
        "(Wi-Fi, broker, credentials, calibration) with mode 0600. The password is never "
        "printed.",
    )
    prov.add_argument("device_id", nargs="?", help="The device id (its MQTT username).")
    prov.add_argument("--bin", dest="bin_id", help="The bin the device is mounted on.")
    prov.add_argument(
        "--bulk",
        help="CSV file of device_id,bin_id[,sensor] lines: provision all of them at once "
        "(all or nothing).",
    )
    prov.add_argument(
        "--sensor",
        default="ultrasonic",
        choices=SENSORS,
        help="The distance sensor fitted: ultrasonic (JSN-SR04T, the default) or tof (VL53L1X; "
        "see docs/firmware.md for which to pick).",
    )
    _add_common(prov)
    _add_device_config_flags(prov)
    _add_threshold_flags(
        prov,
        "Report interval and alarm thresholds (kept in the registry, written into config.json; "
        "change them later with `smartbins device config`)",
    )
    prov.set_defaults(func=cmd_provision)

    dev = sub.add_parser(
        "device",
        help="Revoke, rotate, move or decommission a device, or show and change its config.",
        description="Device lifecycle: `revoke` takes the device off the broker at once; "
        "`rotate` issues new credentials (and rewrites its config.json); `move` re-links it "
        "to another bin; `decommission` retires it for good, keeping its history; `config` "
        "shows its intervals and thresholds, or changes and publishes them.",
    )
    dsub = dev.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (
        ("revoke", "Take the device's account off the broker now (its history stays)."),
        ("rotate", "Issue new credentials and rewrite the device's config.json."),
        ("move", "Re-link the device to another bin (--bin)."),
        ("decommission", "Retire the device: no account, no bin; its readings remain."),
    ):
        a = dsub.add_parser(action, help=text, description=text)
        a.add_argument("device_id", help="The device id.")
        if action == "move":
            a.add_argument("--bin", dest="bin_id", required=True, help="The new bin.")
        _add_common(a)
        if action == "rotate":
            _add_device_config_flags(a)
        a.set_defaults(func=cmd_device, action=action)

    text = (
        "Show the device's config as the registry keeps it (calibration, report intervals, "
        "alarm thresholds); with threshold flags, change those, record them and publish the "
        "device's retained config (the rest kept as it was), applied at its next wake."
    )
    dc = dsub.add_parser("config", help=text.split(";")[0] + ", or change it.", description=text)
    dc.add_argument("device_id", help="The device id.")
    dc.add_argument(
        "--publish",
        action="store_true",
        help="Publish the recorded config again without changing it (e.g. after a broker outage).",
    )
    _add_threshold_flags(dc, "Thresholds to change (the others keep their recorded values)")
    _add_common(dc)
    g = dc.add_argument_group("Broker (for publishing the config)")
    g.add_argument("--broker-host", help="Broker address.")
    g.add_argument("--broker-port", type=int, help="Broker port.")
    dc.set_defaults(func=cmd_device_config)

    cal = sub.add_parser(
        "calibrate",
        help="Record a device's empty-bin distance and publish the new calibration.",
        description="Take the median distance of the device's recent readings (the bin must "
        "be empty) as its empty-bin distance, or the one given with --empty-mm, record it in "
        "the registry with a new calibration version, and publish the device's retained config "
        "(its recorded intervals and thresholds unchanged) so it applies at its next wake.",
    )
    cal.add_argument("device_id", help="The device id.")
    cal.add_argument("--empty-mm", type=int, help="Use this distance instead of the readings.")
    cal.add_argument(
        "--full-mm",
        type=int,
        help=f"Distance at 100 %% fill (default: kept, or {DEFAULT_FULL_MM}).",
    )
    cal.add_argument(
        "--last", type=int, default=3, help="How many recent readings to use. Default: 3."
    )
    _add_common(cal)
    g = cal.add_argument_group("Broker and database")
    g.add_argument("--broker-host", help="Broker address (for publishing the config).")
    g.add_argument("--broker-port", type=int, help="Broker port.")
    g.add_argument("--influx-url", help="InfluxDB URL (v1 API).")
    g.add_argument("--influx-database", help="InfluxDB database.")
    g.add_argument("--influx-username", help=f"InfluxDB user (password: ${INFLUX_PASSWORD_ENV}).")
    cal.set_defaults(func=cmd_calibrate)

    fl = sub.add_parser(
        "flash",
        help="Write MicroPython and the smartbins firmware to a device over USB.",
        description="Erase the ESP32, write the MicroPython image you supply (esptool), then "
        "copy firmware/ and the device's config.json (mpremote). --dry-run prints the exact "
        "commands instead.",
    )
    fl.add_argument("--port", required=True, help="Serial port, e.g. /dev/ttyUSB0.")
    fl.add_argument("--firmware", required=True, help="MicroPython image for the ESP32 (.bin).")
    fl.add_argument("--config", help="The device's config.json (from `smartbins provision`).")
    fl.add_argument("--chip", default="esp32", help="esptool chip name. Default: esp32.")
    fl.add_argument("--baud", type=int, default=460800, help="Baud rate. Default: 460800.")
    fl.add_argument("--dry-run", action="store_true", help="Print the commands, run nothing.")
    fl.set_defaults(func=cmd_flash)


# --------------------------------------------------------------------------- helpers


def _open(s: DeviceCliSettings) -> tuple[Registry, PasswordFile]:
    return _registry(s), PasswordFile(s.password_file, reload=lambda: _reload(s))


def _registry(s: DeviceCliSettings) -> Registry:
    if not s.registry.parent.exists():
        raise DeviceCliError(
            f"registry {s.registry}: its directory does not exist; give --registry or set "
            "`registry` in the settings file"
        )
    return Registry(s.registry)


def _reload(s: DeviceCliSettings) -> None:
    """Tell the broker to reread its password file."""
    if s.broker_pid_file is not None:
        try:
            pid = int(s.broker_pid_file.read_text().strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as e:
            raise DeviceCliError(
                f"could not reload the broker via {s.broker_pid_file} ({e}); the password file "
                "is written: reload the broker by hand (e.g. systemctl reload mosquitto)"
            ) from None
        return
    if s.broker_reload_command:
        done = subprocess.run(shlex.split(s.broker_reload_command), capture_output=True, text=True)
        if done.returncode != 0:
            raise DeviceCliError(
                f"broker reload command {s.broker_reload_command!r} failed: "
                f"{done.stderr.strip()}; the password file is written: reload the broker by hand"
            )
        return
    print(
        "note: no broker_pid_file or broker_reload_command set; reload the broker yourself "
        "(e.g. systemctl reload mosquitto) for the change to take effect",
        file=sys.stderr,
    )


def _wifi_password(s: DeviceCliSettings) -> str:
    if not s.wifi_ssid:
        return ""
    return settings_mod.read_secret(WIFI_PASSWORD_ENV, s.wifi_password_file, "Wi-Fi password")


def device_config(
    s: DeviceCliSettings, cred: Credentials, registry: Registry, wifi_password: str
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
            _THRESHOLD_SPECS[k].key: v for k, v in registry.thresholds(cred.username).items()
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


def _read_bulk(path: Path, sensor: str, thresholds: dict[str, float]) -> list[ProvisionRequest]:
    try:
        text = path.read_text()
    except OSError as e:
        raise DeviceCliError(f"{path}: cannot read ({e.strerror})") from None
    out = []
    for n, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or row[0].startswith("#") or row[0] == "device_id":
            continue
        if len(row) not in (2, 3):
            raise DeviceCliError(f"{path}:{n}: expected device_id,bin_id[,sensor], got {row!r}")
        kind = (row[2:] or [sensor])[0].strip()
        if kind not in SENSORS:
            raise DeviceCliError(f"{path}:{n}: sensor {kind!r} is not one of {', '.join(SENSORS)}")
        out.append(ProvisionRequest(row[0].strip(), row[1].strip(), kind, thresholds))
    if not out:
        raise DeviceCliError(f"{path}: no devices listed")
    return out


# --------------------------------------------------------------------------- commands


def cmd_provision(args: argparse.Namespace) -> int:
    s = load_settings(args)
    if args.bulk:
        if args.device_id or args.bin_id:
            raise DeviceCliError("give either DEVICE_ID --bin BIN_ID or --bulk FILE, not both")
        requests = _read_bulk(Path(args.bulk), args.sensor, _threshold_changes(args))
    else:
        if not args.device_id or not args.bin_id:
            raise DeviceCliError("give DEVICE_ID --bin BIN_ID (or --bulk FILE)")
        requests = [
            ProvisionRequest(args.device_id, args.bin_id, args.sensor, _threshold_changes(args))
        ]
    wifi = _wifi_password(s)
    registry, passwords = _open(s)
    try:
        try:
            creds = provision(registry, passwords, requests)
        except RegistryError as e:
            raise DeviceCliError(str(e)) from None
        for cred, req in zip(creds, requests, strict=True):
            cfg = device_config(s, cred, registry, wifi)
            path = write_config(s.configs_dir, cred.username, cfg)
            print(f"provisioned {cred.username} on bin {req.bin_id}: {path} (mode 0600)")
        print(f"{len(creds)} device(s) provisioned; passwords are in the config files only.")
        if not s.wifi_ssid:
            print(
                "note: no Wi-Fi network set (wifi_ssid / --wifi-ssid): these devices will not "
                "connect; set it and run `smartbins device rotate DEVICE_ID` to rewrite a config",
                file=sys.stderr,
            )
    finally:
        registry.close()
    return 0


def cmd_device(args: argparse.Namespace) -> int:
    s = load_settings(args)
    registry, passwords = _open(s)
    dev = args.device_id
    try:
        try:
            registry.device(dev)
            if args.action == "revoke":
                revoke(registry, passwords, dev)
                print(f"{dev}: revoked; the broker refuses it from its next connect")
            elif args.action == "rotate":
                cred = rotate(registry, passwords, dev)
                path = write_config(
                    s.configs_dir, dev, device_config(s, cred, registry, _wifi_password(s))
                )
                print(f"{dev}: new credentials in {path} (mode 0600); flash it to the device")
            elif args.action == "move":
                move(registry, dev, args.bin_id)
                print(f"{dev}: now on bin {args.bin_id}; earlier readings stay with the old bin")
            else:
                decommission(registry, passwords, dev)
                print(f"{dev}: decommissioned; its readings and history remain")
        except RegistryError as e:
            raise DeviceCliError(str(e)) from None
    finally:
        registry.close()
    return 0


def empty_distance(distances: Sequence[float]) -> int:
    """The empty-bin distance [mm] from recent readings: their median (robust to one spike)."""
    if not distances:
        raise DeviceCliError(
            "no recent readings with a distance: wait for the device to report (or give --empty-mm)"
        )
    return round(statistics.median(distances))


def cmd_calibrate(args: argparse.Namespace) -> int:
    s = load_settings(args)
    for flag in ("influx_url", "influx_database", "influx_username"):
        if getattr(args, flag, None):
            s = replace(s, **{flag: getattr(args, flag)})
    registry = Registry(s.registry)
    try:
        try:
            device = registry.device(args.device_id)
        except RegistryError as e:
            raise DeviceCliError(str(e)) from None
        if args.empty_mm is not None:
            empty = args.empty_mm
            source = "given"
        else:
            empty = empty_distance(_recent_distances(s, args.device_id, args.last))
            source = f"median of the last {args.last} readings"
        full = args.full_mm if args.full_mm is not None else (device.full_mm or DEFAULT_FULL_MM)
        try:
            with registry.transaction():
                cal = registry.set_calibration(args.device_id, empty, full)
                # Only the calibration changes: intervals and thresholds as recorded.
                config = registry.config(args.device_id, now_ms())
        except RegistryError as e:
            raise DeviceCliError(str(e)) from None
        _publish_retained(
            s,
            *p.encode_message(config),
            "the calibration is recorded in the registry: run calibrate again when the broker "
            "is up",
        )
        print(
            f"{args.device_id}: calibration {cal}: empty {empty} mm ({source}), full {full} mm; "
            "published, applied at the device's next wake"
        )
    finally:
        registry.close()
    return 0


def _recent_distances(s: DeviceCliSettings, device: str, last: int) -> list[float]:
    from smartbins.influx import InfluxClient, InfluxError

    password = None
    if s.influx_username:
        password = settings_mod.read_secret(
            INFLUX_PASSWORD_ENV, s.influx_password_file, "InfluxDB password"
        )
    client = InfluxClient(
        s.influx_url, s.influx_database, username=s.influx_username or None, password=password
    )
    dev = device.replace("'", "")
    try:
        series = client.query(
            f"SELECT mm FROM {p.MEASUREMENT} WHERE {p.DEVICE_TAG} = '{dev}' AND mm >= 0 "
            f"ORDER BY time DESC LIMIT {int(last)}"
        )
    except (InfluxError, OSError) as e:
        raise DeviceCliError(
            f"cannot read readings from {s.influx_url} ({e}); check influx_url and credentials, "
            "or give --empty-mm"
        ) from None
    finally:
        client.close()
    return [row[1] for sr in series for row in sr["values"] if row[1] is not None]


def cmd_device_config(args: argparse.Namespace) -> int:
    s = load_settings(args)
    dev = args.device_id
    changes = _threshold_changes(args)
    registry = _registry(s)
    try:
        try:
            device = registry.device(dev)
            if (changes or args.publish) and device.state == "decommissioned":
                raise DeviceCliError(f"{dev}: decommissioned; its config is no longer published")
            config = registry.set_thresholds(dev, changes) if changes else registry.config(dev)
        except RegistryError as e:
            raise DeviceCliError(str(e)) from None
        print(format_config(device.sensor, device.state, config, changed=set(changes)))
        if changes or args.publish:
            _publish_retained(
                s,
                *p.encode_message(config),
                f"the config is recorded in the registry: run `smartbins device config {dev} "
                "--publish` when the broker is up",
            )
            print(f"{dev}: config published, applied at the device's next wake")
    finally:
        registry.close()
    return 0


def format_config(sensor: str, state: str, c: p.DeviceConfig, changed: set[str]) -> str:
    """The config as a technician reads it: one aligned line per value, changes marked."""
    if c.cal:
        cal = f"calibration {c.cal}: empty {c.empty_mm} mm, full {c.full_mm} mm"
    else:
        cal = f"not calibrated (measures with empty {c.empty_mm} mm, full {c.full_mm} mm)"
    lines = [f"{c.device} ({sensor}, {state}): {cal}"]
    for attr, spec in _THRESHOLD_SPECS.items():
        value = getattr(c, attr)
        mark = "*" if attr in changed else " "
        text = f"{value:g}" if isinstance(value, float) else str(value)
        lines.append(f" {mark} {spec.key:<22}{text:>8} {spec.unit:<3} {spec.doc}")
    if changed:
        lines.append("   (* changed now)")
    return "\n".join(lines)


def _publish_retained(s: DeviceCliSettings, topic: str, payload: bytes, recorded: str) -> None:
    """Publish one retained QoS 1 message as the service account; wait for its PUBACK.
    ``recorded`` tells the technician what is already done if the broker cannot be reached."""
    import paho.mqtt.client as mqtt

    password = settings_mod.read_secret(
        SERVICE_PASSWORD_ENV, s.service_password_file, "service account password"
    )
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"smartbins-cli-{os.getpid()}")
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
        raise DeviceCliError(
            f"cannot reach the broker at {s.broker_host}:{s.broker_port} ({e}); {recorded}"
        ) from None
    client.loop_start()
    try:
        if not connected.wait(10) or getattr(result[0], "is_failure", True):
            raise DeviceCliError(
                f"the broker refused the service account ({result[0] if result else 'no answer'});"
                f" check {SERVICE_PASSWORD_ENV} or service_password_file"
            )
        info = client.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(10)
        if not info.is_published():
            raise DeviceCliError("the broker did not acknowledge the config within 10 s")
    finally:
        client.disconnect()
        client.loop_stop()


def flash_commands(
    port: str, image: Path, config: Path | None, chip: str = "esp32", baud: int = 460800
) -> list[list[str]]:
    """The exact commands `smartbins flash` runs, in order."""
    esptool = shutil.which("esptool.py") or shutil.which("esptool") or "esptool.py"
    mpremote = shutil.which("mpremote") or "mpremote"
    base = [esptool, "--chip", chip, "--port", port, "--baud", str(baud)]
    cmds = [
        [*base, "erase_flash"],
        [*base, "write_flash", "-z", "0x1000", str(image)],
    ]
    files = sorted(f for f in FIRMWARE_DIR.glob("*.py") if f.name not in ("hw_fake.py",))
    cp = [mpremote, "connect", port, "fs", "cp", *(str(f) for f in files), ":"]
    cmds.append(cp)
    if config is not None:
        cmds.append([mpremote, "connect", port, "fs", "cp", str(config), ":config.json"])
    cmds.append([mpremote, "connect", port, "reset"])
    return cmds


_FLASH_HINTS = (
    "check the USB cable (a data cable, not a charge-only one), that --port is the device "
    "(ls /dev/ttyUSB* /dev/ttyACM*), that nothing else holds the port (close serial monitors), "
    "and if esptool cannot connect, hold the BOOT button while it starts"
)


def cmd_flash(args: argparse.Namespace) -> int:
    image = Path(args.firmware)
    config = Path(args.config) if args.config else None
    cmds = flash_commands(args.port, image, config, args.chip, args.baud)
    if args.dry_run:
        for c in cmds:
            print(shlex.join(c))
        return 0
    if not image.is_file():
        raise DeviceCliError(f"{image}: no such MicroPython image (download one for {args.chip})")
    if config is not None and not config.is_file():
        raise DeviceCliError(f"{config}: no such config.json (run `smartbins provision` first)")
    for tool in (cmds[0][0], cmds[2][0]):
        if shutil.which(tool) is None:
            raise DeviceCliError(f"{tool} is not installed: pip install esptool mpremote")
    for n, c in enumerate(cmds, 1):
        print(f"[{n}/{len(cmds)}] {shlex.join(c)}", flush=True)
        if subprocess.run(c).returncode != 0:
            raise DeviceCliError(f"step {n} failed: {_FLASH_HINTS}")
    print("flashed; the device starts its first wake now")
    return 0

"""Technicians' commands: provision, device revoke|rotate|move|decommission|config, calibrate.

Thin over the provisioning core (smartbins.provisioning) and the device operations
(smartbins.deviceops), which the backend calls too: this module reads flags and settings and
talks to the person at the terminal.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from smartbins import protocol as p
from smartbins import settings as settings_mod
from smartbins.deviceops import (
    DEFAULT_FULL_MM,
    INFLUX_PASSWORD_ENV,
    SERVICE_PASSWORD_ENV,
    SETTINGS_ENV,
    THRESHOLD_SPECS,
    WIFI_PASSWORD_ENV,
    DeviceError,
    DeviceSettings,
    device_config,
    empty_distance,
    open_registry,
    open_stores,
    publish_retained,
    recent_distances,
    wifi_password,
    write_config,
)
from smartbins.provisioning import ProvisionRequest, decommission, move, provision, revoke, rotate
from smartbins.registry import SENSORS, THRESHOLDS, Registry, RegistryError, now_ms

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


def load_settings(args: argparse.Namespace) -> DeviceSettings:
    """Settings file (``--settings`` or $SMARTBINS_DEVICE_SETTINGS), then flags on top."""
    path = getattr(args, "settings", None) or os.environ.get(SETTINGS_ENV)
    s = settings_mod.load(DeviceSettings, path) if path else DeviceSettings()
    changes: dict[str, Any] = {}
    for flag, key in _FLAG_KEYS.items():
        value = getattr(args, flag, None)
        if value is not None:
            changes[key] = Path(value) if key in _PATH_KEYS else value
    return replace(s, **changes)


def _add_common(parser: argparse.ArgumentParser, *, passwords: bool = True) -> None:
    """Settings file and registry; the password file and the broker reload are listed only
    with ``passwords`` (the commands that change passwords)."""
    g = parser.add_argument_group("Where things are (override the settings file)")
    g.add_argument(
        "--settings",
        help=f"TOML settings file (default: ${SETTINGS_ENV}, else built-in defaults).",
    )
    g.add_argument("--registry", help="The registry database (SQLite).")
    # Commands that change no password accept these (one set of flags for every command in a
    # script) but do not list them: they would do nothing there.
    def shown(text: str) -> str:
        return text if passwords else argparse.SUPPRESS

    g.add_argument("--password-file", help=shown("The broker's password file."))
    g.add_argument(
        "--broker-pid-file", help=shown("Reload the broker by SIGHUP to the pid in this file.")
    )
    g.add_argument(
        "--reload-command",
        help=shown("Reload the broker with this command (e.g. 'systemctl reload …')."),
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
    for attr, spec in THRESHOLD_SPECS.items():
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
        _add_common(a, passwords=action != "move")
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
    _add_common(dc, passwords=False)
    g = dc.add_argument_group(
        "Broker (for publishing the config)",
        f"Published as the service account smartbins.service; its password comes from "
        f"${SERVICE_PASSWORD_ENV}, else the settings file's service_password_file (mode 0600).",
    )
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
    _add_common(cal, passwords=False)
    g = cal.add_argument_group(
        "Broker and database",
        f"The config is published as the service account smartbins.service: password from "
        f"${SERVICE_PASSWORD_ENV}, else the settings file's service_password_file (mode 0600). "
        f"The readings are read as --influx-username: password from ${INFLUX_PASSWORD_ENV}, "
        f"else influx_password_file.",
    )
    g.add_argument("--broker-host", help="Broker address (for publishing the config).")
    g.add_argument("--broker-port", type=int, help="Broker port.")
    g.add_argument("--influx-url", help="InfluxDB URL (v1 API).")
    g.add_argument("--influx-database", help="InfluxDB database.")
    g.add_argument("--influx-username", help=f"InfluxDB user (password: ${INFLUX_PASSWORD_ENV}).")
    cal.set_defaults(func=cmd_calibrate)



def _read_bulk(path: Path, sensor: str, thresholds: dict[str, float]) -> list[ProvisionRequest]:
    try:
        text = path.read_text()
    except OSError as e:
        raise DeviceError(f"{path}: cannot read ({e.strerror})") from None
    out = []
    for n, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or row[0].startswith("#") or row[0] == "device_id":
            continue
        if len(row) not in (2, 3):
            raise DeviceError(f"{path}:{n}: expected device_id,bin_id[,sensor], got {row!r}")
        kind = (row[2:] or [sensor])[0].strip()
        if kind not in SENSORS:
            raise DeviceError(f"{path}:{n}: sensor {kind!r} is not one of {', '.join(SENSORS)}")
        out.append(ProvisionRequest(row[0].strip(), row[1].strip(), kind, thresholds))
    if not out:
        raise DeviceError(f"{path}: no devices listed")
    return out


def cmd_provision(args: argparse.Namespace) -> int:
    s = load_settings(args)
    if args.bulk:
        if args.device_id or args.bin_id:
            raise DeviceError("give either DEVICE_ID --bin BIN_ID or --bulk FILE, not both")
        requests = _read_bulk(Path(args.bulk), args.sensor, _threshold_changes(args))
    else:
        if not args.device_id or not args.bin_id:
            raise DeviceError("give DEVICE_ID --bin BIN_ID (or --bulk FILE)")
        requests = [
            ProvisionRequest(args.device_id, args.bin_id, args.sensor, _threshold_changes(args))
        ]
    wifi = wifi_password(s)
    registry, passwords = open_stores(s)
    try:
        try:
            creds = provision(registry, passwords, requests)
        except RegistryError as e:
            raise DeviceError(str(e)) from None
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
    registry, passwords = open_stores(s)
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
                    s.configs_dir, dev, device_config(s, cred, registry, wifi_password(s))
                )
                print(f"{dev}: new credentials in {path} (mode 0600); flash it to the device")
            elif args.action == "move":
                move(registry, dev, args.bin_id)
                print(f"{dev}: now on bin {args.bin_id}; earlier readings stay with the old bin")
            else:
                decommission(registry, passwords, dev)
                print(f"{dev}: decommissioned; its readings and history remain")
        except RegistryError as e:
            raise DeviceError(str(e)) from None
    finally:
        registry.close()
    return 0


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
            raise DeviceError(str(e)) from None
        if args.empty_mm is not None:
            empty = args.empty_mm
            source = "given"
        else:
            empty = empty_distance(recent_distances(s, args.device_id, args.last))
            source = f"median of the last {args.last} readings"
        full = args.full_mm if args.full_mm is not None else (device.full_mm or DEFAULT_FULL_MM)
        try:
            with registry.transaction():
                cal = registry.set_calibration(args.device_id, empty, full)
                # Only the calibration changes: intervals and thresholds as recorded.
                config = registry.config(args.device_id, now_ms())
        except RegistryError as e:
            raise DeviceError(str(e)) from None
        publish_retained(
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


def cmd_device_config(args: argparse.Namespace) -> int:
    s = load_settings(args)
    dev = args.device_id
    changes = _threshold_changes(args)
    registry = open_registry(s)
    try:
        try:
            device = registry.device(dev)
            if (changes or args.publish) and device.state == "decommissioned":
                raise DeviceError(f"{dev}: decommissioned; its config is no longer published")
            config = registry.set_thresholds(dev, changes) if changes else registry.config(dev)
        except RegistryError as e:
            raise DeviceError(str(e)) from None
        print(format_config(device.sensor, device.state, config, changed=set(changes)))
        if changes or args.publish:
            publish_retained(
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
    for attr, spec in THRESHOLD_SPECS.items():
        value = getattr(c, attr)
        mark = "*" if attr in changed else " "
        text = f"{value:g}" if isinstance(value, float) else str(value)
        lines.append(f" {mark} {spec.key:<22}{text:>8} {spec.unit:<3} {spec.doc}")
    if changed:
        lines.append("   (* changed now)")
    return "\n".join(lines)

"""The API tests' world (tests/backend/conftest.py makes fixtures of it): a registry with two
municipalities, readings in a real InfluxDB (its own database, read by a read-only user),
devices on the real broker, and a token for every role of each municipality.

Municipality A ("0101") and B ("0147") have the same shape: one site, depot, disposal site and
truck, three bins, two provisioned devices with readings. Object ids carry the municipality
(``a-bin-1``, ``b-bin-1``), so a test can look for B's ids in any answer to A.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.testclient import TestClient

from backend import alerts, plan_store
from backend.app import create_app
from backend.settings import DevicesSettings, InfluxSettings, RegistrySettings, Settings
from smartbins import assets, provisioning, storage, tokens
from smartbins import protocol as p
from smartbins.passwords import PasswordFile
from smartbins.registry import Registry, now_ms
from smartbins.servers import InfluxDB
from smartbins.testing import Broker

_n = itertools.count()
ROLES = tokens.ROLES
HOUR_MS = 3_600_000


def secret_file(path: Path, secret: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return path


@dataclass
class World:
    """What a test needs: the app's client, the registry path, tokens and object ids."""

    client: TestClient
    settings: Settings
    influx: InfluxDB
    database: str
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, dict[str, str]] = field(default_factory=dict)
    now_ms: int = 0

    def registry(self) -> Registry:
        return Registry(self.settings.registry.path)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}


def make_municipality(
    reg: Registry, passwords: PasswordFile, m: str, tag: str, t0: int, prefix: str
) -> dict[str, str]:
    assets.add_municipality(reg, m, f"Kommune {tag.upper()}")
    assets.add_site(reg, m, f"{tag}-site-1", 55.68, 12.57, "Nytorv", "Kongens Nytorv 1")
    assets.add_depot(reg, m, f"{tag}-depot-1", 55.66, 12.60, "Depot")
    assets.add_disposal_site(
        reg, m, f"{tag}-disposal-1", 55.63, 12.65, ["glass", "residual"], "ARC", "Mo-Fr 07:00-16:00"
    )
    assets.add_truck(
        reg, m, f"{tag}-truck-1", f"{tag}-depot-1", [assets.Compartment("residual", 16_000)]
    )
    assets.add_bins(
        reg,
        m,
        [
            assets.NewBin(f"{tag}-bin-1", f"{tag}-site-1", "residual", 660, area="center"),
            assets.NewBin(f"{tag}-bin-2", f"{tag}-site-1", "glass", 1500, area="harbour"),
            assets.NewBin(f"{tag}-bin-3", f"{tag}-site-1", "paper+cardboard", 660, area="center"),
            assets.NewBin(f"{tag}-bin-4", f"{tag}-site-1", "residual", 240),
            assets.NewBin(f"{tag}-bin-5", f"{tag}-site-1", "residual", 240),
        ],
    )
    assets.add_site(reg, m, f"{tag}-site-2", 55.69, 12.58)
    assets.add_depot(reg, m, f"{tag}-depot-2", 55.67, 12.61)
    devices = [f"{prefix}{tag}-dev-1", f"{prefix}{tag}-dev-2"]
    provisioning.provision(
        reg,
        passwords,
        [
            provisioning.ProvisionRequest(devices[0], f"{tag}-bin-1"),
            provisioning.ProvisionRequest(devices[1], f"{tag}-bin-2"),
        ],
        at_ms=t0,
    )
    # a stored plan (backend/plan_store.py): the plan routes' path ids
    plan = plan_store.save(reg, {
        "municipality_id": m, "date": "2026-12-03", "stream": None, "skipped": [],
        "forecast": {}, "trucks": [{
            "truck_id": f"{tag}-truck-1", "km": 1.0, "duration_s": 60, "stops": [{
                "index": 0, "kind": "bin", "site_id": f"{tag}-site-1", "lat": 55.68,
                "lon": 12.57, "bins": [{"bin_id": f"{tag}-bin-1", "stream": "residual"}]}]}]})
    return {
        "municipality_id": m,
        "plan_id": plan["id"],
        "index": "0",
        "site_id": f"{tag}-site-1",
        "depot_id": f"{tag}-depot-1",
        "disposal_site_id": f"{tag}-disposal-1",
        "truck_id": f"{tag}-truck-1",
        "bin_id": f"{tag}-bin-1",
        "free_bin_id": f"{tag}-bin-3",
        "spare_bin_id": f"{tag}-bin-4",
        "move_bin_id": f"{tag}-bin-5",
        "spare_site_id": f"{tag}-site-2",
        "spare_depot_id": f"{tag}-depot-2",
        "device_id": devices[0],
        "device_2": devices[1],
    }


def readings_lines(device: str, t0: int, hours: int, fill0: float, fw: str = "1.0.0") -> list[str]:
    lines = []
    for h in range(hours):
        r = p.Reading(
            device=device,
            seq=h,
            boot=1,
            ts_ms=t0 + h * HOUR_MS,
            fw=fw,
            interval_s=3600,
            distance_mm=800 - h,
            fill_pct=min(fill0 + h * 0.5, 120.0),
            temp_c=12.5,
            tilt_deg=2.0,
            battery_mv=3900 - h,
            rssi_dbm=-70,
        )
        lines.append(storage.to_line(storage.reading_point(r)))
    return lines


def build_world(tmp: Path, influxdb: InfluxDB, broker: Broker, **influx_kw: object) -> World:
    n = next(_n)
    database = f"api{n}_{os.getpid()}"
    admin = influxdb.client(database)
    admin.execute(f'CREATE DATABASE "{database}"')
    ro_user, ro_password = f"api_ro_{n}_{os.getpid()}", os.urandom(12).hex()
    admin.execute(f"CREATE USER \"{ro_user}\" WITH PASSWORD '{ro_password}'")
    admin.execute(f'GRANT READ ON "{database}" TO "{ro_user}"')
    reg_path = tmp / "registry.sqlite"
    pid_file = tmp / "mosquitto.pid"
    assert broker.server.proc is not None
    pid_file.write_text(str(broker.server.proc.pid))
    settings = Settings(
        registry=RegistrySettings(path=reg_path),
        influxdb=InfluxSettings(
            url=influxdb.url,
            database=database,
            username=ro_user,
            password_env="SMARTBINS_TEST_UNSET_ENV",
            password_file=secret_file(tmp / "influx-ro", ro_password),
            **influx_kw,  # type: ignore[arg-type]
        ),
        devices=DevicesSettings(
            password_file=broker.server.passwd_path,
            broker_pid_file=pid_file,
            broker_port=broker.port,
            service_password_file=secret_file(tmp / "service", broker.service.password),
        ),
    )
    t0 = now_ms() - 48 * HOUR_MS
    prefix = f"t{n}x{os.getpid()}-"
    reg = Registry(reg_path)
    passwords = PasswordFile(broker.server.passwd_path, reload=broker.server.reload)
    ids = {
        "a": make_municipality(reg, passwords, "0101", "a", t0, prefix),
        "b": make_municipality(reg, passwords, "0147", "b", t0, prefix),
    }
    world = World(
        TestClient(create_app(settings), raise_server_exceptions=False),
        settings,
        influxdb,
        database,
        ids=ids,
        now_ms=now_ms(),
    )
    lines: list[str] = []
    for tag, fill in (("a", 40.0), ("b", 10.0)):
        lines += readings_lines(ids[tag]["device_id"], t0, 48, fill)
        lines += readings_lines(ids[tag]["device_2"], t0, 48, fill + 20)
    admin.write_lines(lines, precision=storage.PRECISION)
    admin.close()
    for tag, m in (("a", "0101"), ("b", "0147")):
        for role in ROLES:
            _, text = tokens.create(reg, f"{tag} {role}", role, [m])
            world.tokens[f"{tag}-{role}"] = text
    _, world.tokens["root"] = tokens.create(reg, "installation admin", "admin", ["*"])
    issued = now_ms() - 2  # one clock reading: two could straddle a millisecond and coincide
    _, world.tokens["expired"] = tokens.create(
        reg, "expired admin", "admin", ["0101"], expires_ms=issued + 1, at_ms=issued
    )
    tok, world.tokens["revoked"] = tokens.create(reg, "revoked admin", "admin", ["0101"])
    tokens.revoke(reg, tok.id)
    for tag, m in (("a", "0101"), ("b", "0147")):
        tokens.add_user(reg, m, f"{tag}-user-1", f"Bruger {tag.upper()}", "planner")
        ids[tag]["user_id"] = f"{tag}-user-1"
        spare, _ = tokens.create(reg, f"{tag} spare", "viewer", [m], user_id=f"{tag}-user-1")
        ids[tag]["token_id"] = spare.id
        alert_id = alerts.open_alert(reg, m, ids[tag]["device_id"], ids[tag]["bin_id"], "full",
                                     "fill 95 %", now_ms(), (), now_ms())
        ids[tag]["alert_id"] = str(alert_id)
    reg.close()
    return world

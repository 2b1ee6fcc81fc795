"""`smartbins demo --serve`: after the demo's run, the whole system keeps running.

Broker, InfluxDB and gateway stay up; the API (with the dashboard) and the alert engine start as
their own processes (`smartbins api`, `smartbins alerts`, one config file written here as an
operator would); the next collection's plan is built from the forecaster's outlook of the stored
readings (the planning service, through the API's ``plans/generate``); the same city's fleet keeps
reporting in real time through the broker (a reading per device every ``LIVE_INTERVAL_S``).
The dashboard's address and a planner's token are printed; Ctrl-C (or ``--serve-seconds``)
stops it all.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from smartbins.registry import Registry
from smartbins.servers import InfluxDB, Mosquitto, free_port, wait_until

#: Seconds between a live device's readings: the field's hour would show one reading a minute
#: for 60 bins; five minutes keeps the map moving.
LIVE_INTERVAL_S = 300
ALERTS_ACCOUNT = "smartbins.alerts"
MUNICIPALITY = "0101"


def _secret(path: Path, value: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return path


def recent_start(days: float, now_s: float | None = None) -> str:
    """The UTC day to start a served demo on: its run ends at most a day before now, so the
    live fleet carries on from readings of yesterday, not from the fixed reproducible day."""
    now = dt.datetime.fromtimestamp(time.time() if now_s is None else now_s, dt.UTC)
    return (now.date() - dt.timedelta(days=math.ceil(days))).isoformat()


def _api_config(workdir: Path, port: int, influx: InfluxDB, broker: Mosquitto) -> Path:
    from smartbins.deployment import INFLUX_READER

    secrets = workdir / "secrets"
    alerts_password = os.urandom(16).hex()
    broker.passwords.update({ALERTS_ACCOUNT: alerts_password})
    text = f"""# written by `smartbins demo --serve` (backend/sample.toml documents every key)
[server]
host = "127.0.0.1"
port = {port}

[registry]
path = "{workdir / 'registry.sqlite'}"
status_path = "{workdir / 'gateway-status.sqlite'}"

[influxdb]
url = "{influx.url}"
database = "{influx.database}"
username = "{INFLUX_READER}"
password_env = "SMARTBINS_DEMO_UNSET"
password_file = "{secrets / f'influxdb-{INFLUX_READER}'}"

[alerts]
mqtt_port = {broker.port}
username = "{ALERTS_ACCOUNT}"
password_env = "SMARTBINS_DEMO_UNSET"
password_file = "{_secret(secrets / ALERTS_ACCOUNT, alerts_password)}"
"""
    path = workdir / "api.toml"
    path.write_text(text)
    return path


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def _areas(reg: Registry) -> None:
    """The simulated sites are named '<district> <kind> <n>': the district is the bins' area."""
    from simulator.city import DISTRICTS

    names = sorted((d[0] for d in DISTRICTS), key=len, reverse=True)
    with reg.transaction() as db:
        for site_id, name in db.execute("SELECT id, name FROM sites").fetchall():
            area = next((d for d in names if name.startswith(d)), "")
            db.execute("UPDATE bins SET area = ? WHERE site_id = ?", (area, site_id))


def _plan(url: str, token: str) -> dict[str, object]:
    """The next collection's plan by the planning service (forecast, risk-based selection,
    routing), made and stored through the API, as a planner would: tomorrow's, or that of the
    first working day after it that sends a truck out (a stream goes out only when one of its
    bins is due)."""
    date = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    req = urllib.request.Request(
        f"{url}/api/v1/municipalities/{MUNICIPALITY}/plans/generate",
        data=json.dumps({"date": date, "time_limit_s": 5, "next_collection": True}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def serve(
    *,
    workdir: Path,
    broker: Mosquitto,
    influx: InfluxDB,
    bins: int,
    seed: int,
    passwords: dict[str, str],
    seconds: float | None,
) -> None:
    """Run everything until Ctrl-C (or ``seconds``), then stop what was started here."""
    from simulator.fleet import BrokerFleet, build_world
    from simulator.world import DeviceDefaults, WorldOptions
    from smartbins import tokens

    procs: list[subprocess.Popen[bytes]] = []
    fleet: BrokerFleet | None = None
    log = open(workdir / "api.log", "ab")  # noqa: SIM115 - closed in finally
    try:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        config = _api_config(workdir, port, influx, broker)
        for command in ("api", "alerts"):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "smartbins.cli", command, "--config", str(config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            ))
        wait_until(lambda: _healthy(url), 60, message="API /healthz")
        print(f"  api         smartbins api --config {config} (OpenAPI at {url}/docs)")
        print(f"  alerts      smartbins alerts --config {config} (its own broker account)")

        reg = Registry(workdir / "registry.sqlite")
        _areas(reg)
        _, planner = tokens.create(reg, "demo planner", "planner", [MUNICIPALITY])
        _, technician = tokens.create(reg, "demo technician", "technician", [MUNICIPALITY])
        _, viewer = tokens.create(reg, "demo viewer", "viewer", [MUNICIPALITY])
        plan = _plan(url, planner)
        reg.close()
        trucks = plan["trucks"]
        stops = sum(len([s for s in t["stops"] if s["kind"] == "bin"]) for t in trucks)  # type: ignore[attr-defined,union-attr]
        print(f"  plan        next collection ({plan['date']}): {len(trucks)} trucks, "  # type: ignore[arg-type]
              f"{stops} stops, {len(plan['skipped'])} bins left out with their risk")  # type: ignore[arg-type]

        # the same seeded city reporting from now on, in real time
        now_s = int(time.time())
        options = WorldOptions(
            seed=seed, start_s=now_s, days=7.0,
            defaults=DeviceDefaults(interval_s=LIVE_INTERVAL_S),
        )
        world = build_world(bins, options, workdir / "truth-live.sqlite", None)
        fleet = BrokerFleet(world, broker.port, passwords, speed=1.0).start()
        print(f"  live fleet  {bins} devices, a reading each every {LIVE_INTERVAL_S} s "
              "through the broker and the gateway")
        print(f"\nDashboard: {url}/dashboard/")
        print(f"Log in with this planner token (technician: {technician}; viewer: {viewer}):")
        print(f"  {planner}")
        print("Everything runs until Ctrl-C." if seconds is None
              else f"Stopping in {seconds:g} s.", flush=True)
        deadline = None if seconds is None else time.monotonic() + seconds
        while deadline is None or time.monotonic() < deadline:
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.args[3]} exited with {p.returncode}; see "
                                       f"{workdir / 'api.log'}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping…")
    finally:
        if fleet is not None:
            fleet.stop(10)
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()

"""A simulated city served by the real backend, for the dashboard's browser tests and its load
benchmark: InfluxDB on a free loopback port, the simulator's seeded city in the registry, its
fleet's readings (in-process run, every message through the protocol's encoder and decoder)
written to InfluxDB as the gateway writes them, tokens per role, the next collection's plan
built by the planning service, and the API (`smartbins api`, its own process) on a free
loopback port.
``stop()`` ends all of it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from smartbins import storage, tokens
from smartbins.registry import Registry
from smartbins.servers import InfluxDB, free_port, temp_workdir, wait_until

#: Where browser tests keep their screenshots (git-ignored).
_REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SMARTBINS_ARTIFACTS", _REPO / "test-artifacts")) / "dashboard"

MUNICIPALITY = "0101"
ROLES = ("viewer", "technician", "planner", "admin")


@dataclass
class City:
    workdir: Path
    influx: InfluxDB
    registry_path: Path
    base_url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    bin_ids: list[str] = field(default_factory=list)
    plan_id: str = ""
    plan: dict = field(default_factory=dict)
    readings: int = 0
    _proc: subprocess.Popen[bytes] | None = None
    _log: object = None

    def api(self, method: str, path: str, role: str = "planner", body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.tokens[role]}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path}: {e.code} {e.read()[:2000]!r}") from None

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._log.close()  # type: ignore[attr-defined]
        self.influx.stop()
        if not os.environ.get("SMARTBINS_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)


def _healthy(city: City) -> bool:
    if city._proc is not None and city._proc.poll() is not None:
        raise RuntimeError(f"the API exited: {(city.workdir / 'api.log').read_text()[-2000:]}")
    try:
        with urllib.request.urlopen(city.base_url + "/healthz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def tomorrow() -> str:
    return (dt.date.today() + dt.timedelta(days=1)).isoformat()


def _areas(reg: Registry) -> None:
    """The simulator names sites '<district> <kind> <n>': the district is the bin's area and the
    site's name its address line (the simulated city has no street addresses)."""
    from simulator.city import DISTRICTS

    names = sorted((d[0] for d in DISTRICTS), key=len, reverse=True)
    with reg.transaction() as db:
        for site_id, name in db.execute("SELECT id, name FROM sites").fetchall():
            area = next((d for d in names if name.startswith(d)), "")
            db.execute("UPDATE bins SET area = ? WHERE site_id = ?", (area, site_id))


def build(
    n_bins: int = 60,
    days: float = 4.0,
    seed: int = 3,
    plan_iterations: int = 100,
    alerts: bool = True,
    cache_refresh_s: float = 0.0,
    log: Callable[[str], None] | None = None,
    plan: bool = True,
) -> City:
    """Everything up and serving; the caller must ``stop()`` it. ``alerts``: every reading
    also goes through the alert engine's rules (backend.alerts.process_reading), oldest
    first, as the engine would have taken them from the broker. ``cache_refresh_s``: the
    API's latest-state cache (0: none, each request asks InfluxDB). ``log``: told each step's
    time. ``plan``: build and store the next collection's plan (``City.plan``)."""
    t_step = [time.perf_counter()]

    def step(what: str) -> None:
        if log is not None:
            now = time.perf_counter()
            log(f"{what} in {now - t_step[0]:.1f} s")
            t_step[0] = now

    from backend.planning import PlanRequest, plans_until_collection
    from backend.settings import InfluxSettings, RegistrySettings, ServerSettings, Settings
    from simulator.fleet import build_world, run_fast
    from simulator.world import WorldOptions
    from smartbins.settings import to_toml

    workdir = temp_workdir("dashboard")
    influx = InfluxDB(workdir / "influxdb")
    city = City(workdir, influx, workdir / "registry.sqlite")
    try:
        influx.start()
        admin = influx.client()
        password = os.urandom(12).hex()
        admin.execute(f"CREATE USER \"smartbins-api\" WITH PASSWORD '{password}'")
        admin.execute(f'GRANT READ ON "{influx.database}" TO "smartbins-api"')
        secret = workdir / "influx-api-password"
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, password.encode())
        os.close(fd)

        reg = Registry(city.registry_path)
        # the city's last readings are from the last hour: devices are online, as in service.
        # The run starts at midnight UTC ``days`` days ago, so tomorrow's plan sees the same
        # fill whatever the hour the test runs at (simulating ``days`` days up to now, a run
        # at 17 UTC planned a day with 10 hours' less waste than one at 07 UTC)
        now_h = int(time.time() // 3600 * 3600)
        start_s = int(now_h // 86_400 * 86_400 - days * 86_400) // 3600 * 3600
        sim_days = (now_h - start_s) / 86_400
        options = WorldOptions(seed=seed, start_s=start_s, days=sim_days)
        world = build_world(n_bins, options, workdir / "truth.sqlite", reg)
        _, store = run_fast(world, wire=True)
        world.truth.close()
        step(f"simulated {n_bins} bins for {sim_days:.2f} days")
        lines = [
            storage.to_line(storage.reading_point(r))
            for per_device in store.stored.values()
            for r in per_device.values()
            if r is not None
        ]
        for i in range(0, len(lines), 20_000):
            admin.write_lines(lines[i : i + 20_000], precision=storage.PRECISION)
        city.readings = len(lines)
        step(f"{len(lines)} readings written to InfluxDB")
        _areas(reg)
        if alerts:
            from backend import alerts as alert_rules

            decoded = sorted(
                (r for per in store.stored.values() for r in per.values() if r is not None),
                key=lambda r: r.ts_ms,
            )
            for r in decoded:
                alert_rules.process_reading(reg, r, (), r.ts_ms)
            step("alert rules applied to every reading")
        city.bin_ids = [b.id for b in reg.bins()]
        for role in ROLES:
            city.tokens[role] = tokens.create(reg, f"test {role}", role, [MUNICIPALITY])[1]

        # the next collection's plan: the forecaster's outlook for every bin, routed by the
        # core, for tomorrow or (a stream goes out only when one of its bins is due) the first
        # working day after it that sends a truck out; every day planned is stored
        day_plans = []
        if plan:
            day_plans = list(plans_until_collection(reg, admin.query, PlanRequest(
                MUNICIPALITY, tomorrow(), iterations=plan_iterations)))
            for d in day_plans:
                d.pop("municipality_id")
            step(f"next collection's plan built ({day_plans[-1]['date']}, "
                 f"{len(day_plans[-1]['trucks'])} routes)")
        reg.close()

        # the API in its own process, as `smartbins api` runs in service
        port = free_port()
        settings = Settings(
            server=ServerSettings(host="127.0.0.1", port=port),
            registry=RegistrySettings(path=city.registry_path),
            influxdb=InfluxSettings(
                url=influx.url, database=influx.database, username="smartbins-api",
                password_env="SMARTBINS_TEST_UNSET", password_file=secret,
                cache_refresh_s=cache_refresh_s,
            ),
        )
        config = workdir / "api.toml"
        config.write_text(to_toml(settings))
        city._log = open(workdir / "api.log", "ab")  # noqa: SIM115 - closed by stop()
        city._proc = subprocess.Popen(
            [sys.executable, "-m", "smartbins.cli", "api", "--config", str(config)],
            stdout=city._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        city.base_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(city), 60, message="API /healthz")
        for day_plan in day_plans:
            city.plan = city.api("POST", f"/api/v1/municipalities/{MUNICIPALITY}/plans",
                                 body=day_plan)  # type: ignore[assignment]
            city.plan_id = city.plan["id"]
        return city
    except BaseException:
        city.stop()
        raise


if __name__ == "__main__":  # a city to look at: python tests/dashboard/dash_city.py [bins]
    import sys

    c = build(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
    print(f"{c.base_url}/dashboard/  planner token: {c.tokens['planner']}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        c.stop()

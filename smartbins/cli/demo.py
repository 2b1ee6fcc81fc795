"""`smartbins demo`: the whole pipeline on this machine, from virtual bins to stored readings.

Mosquitto (production config) and InfluxDB (auth on) start on free loopback ports, the
simulator generates a seeded piece of Copenhagen and provisions one device per bin with its own
credentials, the real gateway runs as its own process (`python -m gateway --config FILE`, what
`smartbins gateway` runs), and the fleet reports in accelerated time. At the end the demo
checks the database against the simulator's ground truth: every reading produced is stored
exactly once (or is still in a device's buffer, or was dropped by a full one, which the truth
records), and prints what a planner would see per waste stream. Everything lives in a temp dir
removed afterwards (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

from smartbins import storage
from smartbins.errors import SmartbinsError
from smartbins.influx import InfluxClient
from smartbins.servers import InfluxDB, Mosquitto, free_port, temp_workdir, wait_until


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="Run the whole pipeline on this machine: fleet, broker, gateway, database.",
        description="Start Mosquitto and InfluxDB on free loopback ports, simulate a seeded "
        "piece of Copenhagen with one provisioned device per bin, ingest its readings with the "
        "real gateway, and check the database against the simulator's ground truth. Nothing "
        "outside a temp dir is touched.",
    )
    parser.add_argument("--bins", type=int, default=60, help="Bins, one device each. Default: 60.")
    parser.add_argument("--days", type=float, default=3.0, help="Simulated days. Default: 3.")
    parser.add_argument(
        "--speed",
        type=float,
        default=14_400.0,
        help="Simulated seconds per real second. Default: 14400 (four hours a second).",
    )
    parser.add_argument("--seed", type=int, default=1, help="Seed of city and fleet. Default: 1.")
    parser.add_argument(
        "--start",
        default=DEMO_START,
        help=f"UTC day the simulation starts (YYYY-MM-DD). Default: {DEMO_START}, a fixed day, "
        "so that the same seed gives the same readings in every run.",
    )
    parser.add_argument(
        "--keep", action="store_true", help="Keep the temp dir (configs, data, logs) afterwards."
    )
    live = parser.add_argument_group("Live system (make demo)")
    live.add_argument(
        "--serve", action="store_true",
        help="After the run, keep the whole system running: broker, database, gateway, the "
        "fleet reporting live, the API with the dashboard, the alert engine and the next "
        "collection's plan (tomorrow, or the first working day a truck goes out); prints the "
        "dashboard's address and a log-in token. Ctrl-C stops it all.",
    )
    live.add_argument(
        "--serve-seconds", type=float, default=None, metavar="S",
        help="With --serve: stop after S seconds instead of waiting for Ctrl-C.",
    )
    parser.set_defaults(func=run)


#: The demo's simulated start: fixed (a Monday), so a seed always gives the same readings.
#: The gateway never rejects a reading for its age (backfill is normal), only future ones.
DEMO_START = "2025-06-02"
#: Real seconds the fleet may spend after the run resending what is not yet acknowledged.
DRAIN_S = 60.0


def _start_s(day: str, days: float) -> int:
    try:
        start = dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        raise SmartbinsError(f"--start {day!r}: expected YYYY-MM-DD") from None
    start_s = int(start.timestamp())
    if start_s + days * 86400 > time.time():
        raise SmartbinsError(f"--start {day}: the run must end before now (the gateway refuses "
                             "readings from the future)")
    return start_s


def _gateway_config(workdir: Path, broker: Mosquitto, influx: InfluxDB) -> tuple[Path, int]:
    """A gateway config file as an operator would write it; secrets in 0600 files."""
    from gateway.config import GatewayConfig, HttpConfig, StatusConfig
    from smartbins.deployment import INFLUX_WRITER
    from smartbins.provisioning import GATEWAY_ACCOUNT
    from smartbins.settings import to_toml

    secrets = workdir / "secrets"
    cfg = GatewayConfig()
    cfg = replace(
        cfg,
        mqtt=replace(
            cfg.mqtt,
            port=broker.port,
            password_env="SMARTBINS_DEMO_UNSET",
            password_file=secrets / GATEWAY_ACCOUNT,
            client_id=f"{GATEWAY_ACCOUNT}-demo",
        ),
        influxdb=replace(
            cfg.influxdb,
            url=influx.url,
            database=influx.database,
            username=INFLUX_WRITER,
            password_env="SMARTBINS_DEMO_UNSET",
            password_file=secrets / f"influxdb-{INFLUX_WRITER}",
        ),
        http=HttpConfig(port=free_port()),
        status=StatusConfig(path=workdir / "gateway-status.sqlite"),
    )
    path = workdir / "gateway.toml"
    path.write_text(to_toml(cfg))
    return path, cfg.http.port


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _stored(client: InfluxClient) -> dict[str, set[int]]:
    seqs = storage.seqs_by_device(client.query(storage.stored_seqs_query()))
    return {device: set(s) for device, s in seqs.items()}


def run(args: argparse.Namespace) -> int:
    from simulator.fleet import BrokerFleet, buffered, build_world, provision_fleet
    from simulator.truth import account
    from simulator.world import WorldOptions
    from smartbins.deployment import setup_influxdb
    from smartbins.progress import ProgressBar
    from smartbins.provisioning import ensure_service_accounts
    from smartbins.registry import Registry

    if not 1 <= args.bins <= 5000:
        raise SmartbinsError(f"--bins {args.bins}: use 1 to 5000")
    workdir = temp_workdir("demo")
    broker = Mosquitto(workdir / "mosquitto")
    influx = InfluxDB(workdir / "influxdb")
    gateway: subprocess.Popen[bytes] | None = None
    print(f"smartbins demo: working in {workdir}")
    try:
        ensure_service_accounts(broker.passwords, workdir / "secrets")
        broker.start()
        print(f"  mosquitto   127.0.0.1:{broker.port} (production config: no anonymous access)")
        influx.start()
        setup_influxdb(influx.client(), influx.database, workdir / "secrets")
        print(f"  influxd     {influx.url} (auth on; the gateway may only write)")

        registry = Registry(workdir / "registry.sqlite")
        if args.serve and args.start == DEMO_START:  # live: end yesterday, not on a fixed day
            from smartbins.cli.demo_live import recent_start

            args.start = recent_start(args.days)
        start_s = _start_s(args.start, args.days)
        options = WorldOptions(seed=args.seed, start_s=start_s, days=args.days)
        world = build_world(args.bins, options, workdir / "truth.sqlite", registry, devices=False)
        passwords = provision_fleet(world, registry, broker.passwords)
        streams = sorted({b.stream for b in world.city.bins})
        print(
            f"  city        {len(world.city.sites)} sites, {len(world.city.bins)} bins of "
            f"{len(streams)} streams; {len(passwords)} devices provisioned, each with its own "
            "password (not shown)"
        )

        config, http_port = _gateway_config(workdir, broker, influx)
        with open(workdir / "gateway.log", "ab") as log:
            gateway = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_until(lambda: _healthy(http_port), 30, message="gateway /healthz")
        print(f"  gateway     smartbins gateway --config {config} (metrics on :{http_port})")

        fleet = BrokerFleet(world, broker.port, passwords, args.speed)
        t0 = time.monotonic()
        # Then every device still holding readings resends until all are acknowledged: what is
        # stored no longer depends on how the last acknowledgements raced the end of the run.
        fleet.start(progress=ProgressBar("  simulating "), drain_s=DRAIN_S)
        assert fleet.thread is not None
        fleet.thread.join()
        if fleet.error is not None:
            raise fleet.error
        stats = fleet.stats
        print(
            f"  fleet       {stats.wakes} wakes in {time.monotonic() - t0:.1f} s, "
            "a real MQTT connect each"
        )

        client = influx.client()
        truth = workdir / "truth.sqlite"
        world.truth.close()
        held = buffered(world)
        wait_until(
            lambda: not account(truth, _stored(client), held),
            60,
            0.5,
            "every reading accounted for",
        )
        _report(truth, client, _metrics(http_port), held)
        if args.serve:
            from smartbins.cli import demo_live

            demo_live.serve(workdir=workdir, broker=broker, influx=influx, bins=args.bins,
                            seed=args.seed, passwords=passwords, seconds=args.serve_seconds)
        return 0
    finally:
        if gateway is not None:
            gateway.terminate()
            try:
                gateway.wait(15)
            except subprocess.TimeoutExpired:
                gateway.kill()
        influx.stop()
        broker.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


ROW = "{:<22} {:>5} {:>9} {:>10} {:>10} {:>10} {:>10}"


def _report(
    truth: Path,
    client: InfluxClient,
    metrics: dict[str, float],
    held: dict[str, set[int]],
) -> None:
    db = sqlite3.connect(truth)
    bins = db.execute("SELECT bin_id, device_id, stream FROM bins").fetchall()
    produced = db.execute("SELECT count(*) FROM readings").fetchone()[0]
    dropped = db.execute("SELECT count(*) FROM dropped").fetchone()[0]
    overflows = dict(db.execute("SELECT bin_id, count(*) FROM overflows GROUP BY bin_id"))
    emptyings = dict(db.execute("SELECT bin_id, count(*) FROM emptyings GROUP BY bin_id"))
    db.close()
    last = {
        s["tags"][storage.DEVICE_TAG]: s["values"][0]
        for s in client.query(storage.summary_query())
    }
    print(
        "\n"
        + ROW.format("stream", "bins", "readings", "fill now %", "≥ 80 %", "emptyings", "overflows")
    )
    total = 0
    for stream in sorted({b[2] for b in bins}):
        members = [b for b in bins if b[2] == stream]
        counts = [last.get(d, (0, 0, None))[1] for _, d, _ in members]
        fills = [last[d][2] for _, d, _ in members if d in last and last[d][2] is not None]
        total += sum(counts)
        mean = f"{sum(fills) / len(fills):.0f}" if fills else "-"
        print(
            ROW.format(
                stream,
                len(members),
                sum(counts),
                mean,
                sum(f >= 80 for f in fills),
                sum(emptyings.get(b, 0) for b, _, _ in members),
                sum(overflows.get(b, 0) for b, _, _ in members),
            )
        )
    dead = sum(v for k, v in metrics.items() if "gateway_deadletters_total" in k)
    waiting = produced - total - dropped
    print(
        f"\nground truth: {produced} readings produced; {total} stored in InfluxDB, each exactly "
        f"once; {waiting} not stored yet, kept in their devices' buffers for the next wake; "
        f"{dropped} dropped by full buffers; {dead:.0f} dead-lettered. "
        "Every reading is accounted for."
    )

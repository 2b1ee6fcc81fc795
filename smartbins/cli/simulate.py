"""`smartbins simulate`: a virtual municipality of bins, in process or through a real broker.

Writes, into ``--out`` (default: a new temp dir): ``registry.sqlite`` (the city, through
smartbins.registry), ``truth.sqlite`` (ground truth, schema in docs/simulator.md) and, in broker
mode, the broker's files. A config file (TOML, ``--config``) sets everything the flags set and
more; flags given on the command line win.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from simulator import collections as col
from simulator.config import SimulateConfig
from simulator.world import DeviceDefaults, WorldOptions, start_for
from smartbins import settings
from smartbins.errors import SmartbinsError
from smartbins.progress import ProgressBar
from smartbins.servers import temp_workdir


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "simulate",
        help="Simulate a municipality of smart bins with ground truth.",
        description="Generate a seeded city (Copenhagen-sized, real coordinates), fill its bins "
        "with the model calibrated on real data, and run one virtual device per bin: through a "
        "real Mosquitto on a free loopback port (accelerated by --speed, with a test "
        "acknowledger standing in for the gateway), or in process with --fast. Writes the "
        "registry and the ground truth (SQLite) to --out.",
    )
    g = parser.add_argument_group("What to simulate")
    g.add_argument("--bins", type=int, help="Number of bins (one device each). Default: 100.")
    g.add_argument("--days", type=float, help="Simulated days. Default: 7.")
    g.add_argument("--seed", type=int, help="Seed: the same seed gives the same city and "
                   "readings. Default: 1.")
    g.add_argument("--schedule", type=Path, help="Collection schedule CSV (bin_id,time,truck, "
                   "ISO 8601 UTC). Default: each bin on fixed weekdays.")
    m = parser.add_argument_group("How")
    m.add_argument("--fast", action="store_true", default=None,
                   help="In process, without a broker: for long runs.")
    m.add_argument("--speed", type=float, help="Simulated seconds per real second in broker "
                   "mode. Default: 3600 (an hour a second).")
    m.add_argument("--config", type=Path, help="TOML config file (keys as SimulateConfig in "
                   "simulator/config.py, [faults] table for fault rates).")
    m.add_argument("--out", type=Path, help="Output directory. Default: a new temp dir.")
    parser.set_defaults(func=run)


def config_from(args: argparse.Namespace) -> SimulateConfig:
    cfg = settings.load(SimulateConfig, args.config) if args.config else SimulateConfig()
    flags = {k: getattr(args, k) for k in ("bins", "days", "seed", "speed", "fast", "schedule",
                                           "out")}
    try:
        return replace(cfg, **{k: v for k, v in flags.items() if v is not None})
    except ValueError as e:
        raise SmartbinsError(f"bad option: {e}") from None


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    out = cfg.out or temp_workdir("simulate")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("registry.sqlite", "truth.sqlite"):
        if (out / name).exists():
            raise SmartbinsError(f"{out / name} exists; choose an empty --out directory")
    options = WorldOptions(
        seed=cfg.seed, start_s=start_for(cfg.days), days=cfg.days,
        defaults=DeviceDefaults(interval_s=cfg.interval_s, buffer_capacity=cfg.buffer_capacity),
        rates=cfg.faults.rates(), fixed_schedule=cfg.schedule is None,
        level_every_s=cfg.level_every_s,
    )
    print(f"smartbins simulate: {cfg.bins} bins, {cfg.days:g} days, seed {cfg.seed}, "
          f"{'in process' if cfg.fast else f'broker mode at speed {cfg.speed:g}'}; "
          f"writing to {out}")
    if cfg.fast:
        return _run_fast(cfg, options, out)
    return _run_broker(cfg, options, out)


def _schedule(cfg: SimulateConfig) -> col.Collections | None:
    """The schedule file's visits, checked against the city's bins (None: fixed weekdays)."""
    if cfg.schedule is None:
        return None
    from simulator.city import generate

    city = generate(cfg.bins, cfg.seed)
    return col.Collections(col.read_schedule(cfg.schedule, [b.id for b in city.bins]))


def _run_fast(cfg: SimulateConfig, options: WorldOptions, out: Path) -> int:
    from simulator.fleet import buffered, build_world, run_fast
    from simulator.truth import account
    from smartbins.registry import Registry

    registry = Registry(out / "registry.sqlite")
    world = build_world(cfg.bins, options, out / "truth.sqlite", registry,
                        collections=_schedule(cfg))
    t0 = time.monotonic()
    stats, store = run_fast(world, progress=ProgressBar("simulating"))
    elapsed = time.monotonic() - t0
    problems = account(out / "truth.sqlite", store.seqs(), buffered(world))
    world.truth.close()
    registry.close()
    print(f"{stats.wakes} wakes ({stats.wakes / max(elapsed, 1e-9):,.0f}/s), {stats.stored} "
          f"readings stored and acknowledged, {stats.offline_wakes} wakes offline, "
          f"{world.emptying_count} emptyings, {world.overflow_count} overflows")
    print(f"ground truth: {out / 'truth.sqlite'}  registry: {out / 'registry.sqlite'}")
    if problems:
        print(f"UNACCOUNTED readings on {len(problems)} devices", file=sys.stderr)
        return 1
    return 0


def _run_broker(cfg: SimulateConfig, options: WorldOptions, out: Path) -> int:
    """Own Mosquitto (production config) on a free loopback port, devices provisioned with
    their own credentials, the test acknowledger standing in for the gateway."""
    from simulator.acknowledger import TestAcknowledger
    from simulator.fleet import BrokerFleet, buffered, build_world, provision_fleet
    from simulator.truth import account
    from smartbins.provisioning import GATEWAY_ACCOUNT, ensure_service_accounts
    from smartbins.registry import Registry
    from smartbins.servers import Mosquitto

    # The broker drops to the mosquitto user: its files live in a temp dir it can reach (an
    # --out under a 0700 tree would lock it out), removed afterwards.
    broker_dir = temp_workdir("simulate-broker")
    broker = Mosquitto(broker_dir)
    services = ensure_service_accounts(broker.passwords, broker_dir / "secrets")
    registry = Registry(out / "registry.sqlite")
    ack: TestAcknowledger | None = None
    try:
        broker.start()
        world = build_world(cfg.bins, options, out / "truth.sqlite", registry, devices=False,
                            collections=_schedule(cfg))
        passwords = provision_fleet(world, registry, broker.passwords)
        print(f"  mosquitto on 127.0.0.1:{broker.port}; {len(passwords)} devices provisioned, "
              "each with its own password (not shown); test acknowledger standing in for "
              "the gateway")
        ack = TestAcknowledger(broker.port, services[GATEWAY_ACCOUNT]).start()
        fleet = BrokerFleet(world, broker.port, passwords, cfg.speed)
        t0 = time.monotonic()
        stats = fleet.run(progress=ProgressBar("simulating"))
        elapsed = time.monotonic() - t0
        problems = account(out / "truth.sqlite", ack.store.seqs(), buffered(world))
        world.truth.close()
        print(f"{stats.wakes} wakes, {stats.connects} connects ({stats.connects / elapsed:,.0f}/s"
              f"), {stats.connect_failures} failed, {stats.offline_wakes} offline, "
              f"{ack.store.count()} readings stored and acknowledged end to end, "
              f"{world.emptying_count} emptyings, {world.overflow_count} overflows")
        print(f"ground truth: {out / 'truth.sqlite'}  registry: {out / 'registry.sqlite'}")
        if problems:
            print(f"UNACCOUNTED readings on {len(problems)} devices", file=sys.stderr)
            return 1
        return 0
    finally:
        if ack is not None:
            ack.stop()
        broker.stop()
        registry.close()
        shutil.rmtree(broker_dir, ignore_errors=True)

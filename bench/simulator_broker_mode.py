"""What the broker-mode fleet gets done at a high time acceleration, next to a baseline run of
the same world at a quarter of it: connects per wake, refused connects, and readings still
unacknowledged on the devices when the run ends. These are figures of the machine's load, so
they live here, not in tests/simulator/test_broker_mode.py (which checks only that the ground
truth accounts for every reading).

Run: .venv/bin/python bench/simulator_broker_mode.py [BINS] [DAYS] [SPEED]
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from simulator import faults as fl
from simulator.acknowledger import TestAcknowledger
from simulator.fleet import BrokerFleet, buffered, build_world, provision_fleet
from simulator.truth import account
from simulator.world import WorldOptions
from smartbins.provisioning import GATEWAY_ACCOUNT, ensure_service_accounts
from smartbins.registry import Registry
from smartbins.servers import Mosquitto, temp_workdir

START = 1_760_000_000
QUIET = fl.FaultRates(**{k.value: 0.0 for k in fl.Kind}, natural_gaps=False, natural_tilt=False)


def one_run(broker: Mosquitto, gateway: object, workdir: Path, bins: int, days: float,
            speed: float, name: str) -> str:
    opts = WorldOptions(seed=3, start_s=START, days=days, rates=QUIET)
    reg = Registry(workdir / f"{name}-registry.sqlite")
    world = build_world(bins, opts, workdir / f"{name}-truth.sqlite", reg, devices=False,
                        device_prefix=name)
    passwords = provision_fleet(world, reg, broker.passwords)
    ack = TestAcknowledger(broker.port, gateway, client_id=f"ack-{name}").start()  # type: ignore[arg-type]
    try:
        t0 = time.perf_counter()
        stats = BrokerFleet(world, ack.port, passwords, speed=speed).run()
        took = time.perf_counter() - t0
        left = buffered(world)
        unaccounted = account(world.truth.path, ack.store.seqs(), left)
    finally:
        ack.stop()
        reg.close()
    most = max((len(d.flash.buffer) for d in world.devices), default=0)
    return (
        f"{speed:>7g}x  {took:6.1f} s  wakes {stats.wakes:5d}  connects/wake "
        f"{stats.connects / max(stats.wakes, 1):5.3f}  refused {stats.connect_failures:4d}  "
        f"unacknowledged at the end: max {most} per device  unaccounted {len(unaccounted)}"
    )


def main() -> int:
    bins = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    days = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
    speed = float(sys.argv[3]) if len(sys.argv) > 3 else 7200
    workdir = temp_workdir("bench-sim-broker")
    broker = Mosquitto(workdir / "mosquitto")
    creds = ensure_service_accounts(broker.passwords, workdir / "secrets")
    try:
        broker.start()
        print(f"broker mode, {bins} bins, {days:g} days (baseline first: a quarter of the speed)")
        print(one_run(broker, creds[GATEWAY_ACCOUNT], workdir, bins, days, speed / 4, "bb"))
        print(one_run(broker, creds[GATEWAY_ACCOUNT], workdir, bins, days, speed, "bf"))
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

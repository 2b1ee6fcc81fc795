"""The chaos run: the simulator's virtual devices publish while broker, gateway and influxd are
SIGKILLed on a seeded schedule; afterwards every reading the devices produced is in InfluxDB
exactly once, counted by device and seq against the simulator's ground truth.

Shared by the suite's chaos test (200 devices) and ``bench/gateway_chaos.py`` (2,000 devices).
The devices are :class:`simulator.fleet.BrokerFleet`: each wake a real MQTT connect with the
device's own credentials, the flash buffer, end-to-end acknowledgement, resend and backfill, the
last will, and the simulator's seeded sensor faults, offline windows and reboots. Some devices
also lose power at random moments of the chaos (``BrokerFleet.kill``). After the chaos the
fleet drains: devices still holding readings wake (network only) until every buffer is empty.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gw_fleet import stored_rows
from gw_stack import Stack

from simulator.fleet import BrokerFleet, build_world, provision_fleet
from simulator.truth import produced_and_dropped
from simulator.world import World, WorldOptions, start_for
from smartbins.registry import Registry

VICTIMS = ("broker", "gateway", "influxd")


@dataclass(order=True)
class Event:
    at_s: float
    action: str = field(compare=False)  # "kill" or "start"
    victim: str = field(compare=False)


def schedule(rng: random.Random, duration_s: float, kills_each: int) -> list[Event]:
    """Each victim killed ``kills_each`` times at random moments, down for 0.3-3 s each time;
    one victim's outages never overlap (others' may)."""
    events: list[Event] = []
    for victim in VICTIMS:
        slot = (duration_s - 4) / kills_each
        for k in range(kills_each):
            down = rng.uniform(0.3, 3.0)
            at = 1 + k * slot + rng.uniform(0, max(0.1, slot - down - 0.5))
            events += [Event(at, "kill", victim), Event(at + down, "start", victim)]
    return sorted(events)


@dataclass
class ChaosResult:
    devices: int
    produced: int
    dropped: int
    expected: int
    stored: int
    doubles: int
    missing: int
    unexpected: int
    #: Stored rows whose boot, distance, fill or flags differ from the ground truth of their
    #: (device, seq), or that have none: a row overwritten by another reading, a field
    #: written wrong, or a reading nobody produced.
    mismatched: int
    kills: dict[str, int]
    power_cuts: int
    wakes: int
    connect_failures: int
    seconds: float
    settle_seconds: float
    drained: bool
    #: Messages the gateway held unacknowledged (its /metrics gauge) just before each SIGKILL
    #: of it: whether a kill caught work in flight depends on the moment, so it is a figure.
    held_at_gateway_kills: tuple[int, ...] = ()

    def line(self) -> str:
        return (
            f"chaos: {self.devices} simulated devices, {self.wakes} wakes "
            f"({self.connect_failures} connects refused), {self.produced} readings produced, "
            f"{self.dropped} dropped by full device buffers, {self.expected} expected, "
            f"{self.stored} stored, {self.doubles} doubled, {self.missing} missing, "
            f"{self.mismatched} differing from the truth, "
            f"{self.unexpected} unexpected; kills {self.kills}, {self.power_cuts} device power "
            f"cuts; {self.seconds:.0f} s under chaos + {self.settle_seconds:.0f} s to drain; "
            f"messages held at the gateway kills {list(self.held_at_gateway_kills)}"
        )


TruthRow = tuple[int, int | None, float | None, int]


def truth_values(truth_db: Path) -> dict[tuple[str, int], TruthRow]:
    """(boot, mm, fill, flags) of every reading the simulator produced, by (device, seq)."""
    db = sqlite3.connect(str(truth_db))
    try:
        return {
            (dev, seq): (boot, mm, fill, flags)
            for dev, seq, boot, mm, fill, flags in db.execute(
                "SELECT device_id, seq, boot, mm, fill, flags FROM readings"
            )
        }
    finally:
        db.close()


def provisioned_world(
    stack: Stack, workdir: Path, devices: int, options: WorldOptions, prefix: str
) -> tuple[World, dict[str, str]]:
    """A seeded city in a registry under ``workdir``, each device with its own broker account."""
    registry = Registry(workdir / "registry.sqlite")
    try:
        world = build_world(devices, options, workdir / "truth.sqlite", registry, devices=False,
                            device_prefix=prefix)
        return world, provision_fleet(world, registry, stack.broker.passwords)
    finally:
        registry.close()


def run_chaos(
    stack: Stack,
    workdir: Path,
    *,
    devices: int,
    seed: int,
    duration_s: float,
    kills_each: int = 2,
    wake_every_s: float = 2.0,
    power_cuts: int = 0,
    settle_timeout_s: float = 180,
    progress: Callable[[str], None] = lambda s: None,
) -> ChaosResult:
    """``devices`` simulated devices, each waking about every ``wake_every_s`` real seconds
    (the hourly interval accelerated), for ``duration_s`` of chaos, then a drain."""
    rng = random.Random(seed)
    gw = stack.add_gateway("chaos")
    gw.start()
    gw.wait_healthy(30)

    interval = WorldOptions(seed=seed, start_s=0, days=1).defaults.interval_s
    speed = interval / wake_every_s
    days = duration_s * speed / 86400
    # the simulated clock must not pass real time, drain included
    options = WorldOptions(seed=seed, start_s=start_for(days + settle_timeout_s * speed / 86400),
                           days=days)
    world, passwords = provisioned_world(stack, workdir, devices, options, f"c{seed % 1000}")
    fleet = BrokerFleet(world, stack.broker.port, passwords, speed)
    kill = {"broker": stack.broker.kill, "gateway": gw.kill, "influxd": stack.influx.kill}
    start = {"broker": stack.broker.start, "gateway": gw.start, "influxd": stack.influx.start}
    kills = dict.fromkeys(VICTIMS, 0)
    held: list[int] = []
    events = schedule(rng, duration_s, kills_each)
    cuts = sorted(rng.uniform(1, duration_s - 1) for _ in range(power_cuts))
    ids = world.city.device_ids
    progress(f"  {devices} devices, a wake every {wake_every_s} s each (speed {speed:.0f})")
    try:
        fleet.start(drain_s=settle_timeout_s)
        t0 = time.monotonic()
        while events or cuts:
            now = time.monotonic() - t0
            while events and events[0].at_s <= now:
                e = events.pop(0)
                progress(f"  {now:5.1f} s: {e.action} {e.victim}")
                if e.action == "kill":
                    if e.victim == "gateway":
                        held.append(int(gw.metric("gateway_queue_messages")))
                    kill[e.victim]()
                    kills[e.victim] += 1
                else:
                    start[e.victim]()
            while cuts and cuts[0] <= now:
                cuts.pop(0)
                fleet.kill(rng.choice(ids))
            time.sleep(0.05)
        while fleet.sim_now() < world.end_s and not fleet.done.is_set():
            time.sleep(0.1)
        chaos_s = time.monotonic() - t0
        progress(f"  chaos over after {chaos_s:.0f} s; {fleet.holding()} readings held by "
                 "devices; draining")
        if not fleet.wait(settle_timeout_s + 30):
            raise TimeoutError(f"the fleet did not drain in {settle_timeout_s} s")
        stats = fleet.stop()
        settle_s = time.monotonic() - t0 - chaos_s
        if not fleet.drained:
            raise TimeoutError(
                f"{fleet.holding()} readings unacknowledged {settle_timeout_s} s after the "
                f"chaos; fleet errors {stats.errors}; gateway log tail:\n{gw.log()[-3000:]}"
            )
        world.truth.close()
        produced, dropped = produced_and_dropped(workdir / "truth.sqlite")
        rows = stored_rows(stack.influx.client(), list(ids))
        stored = {d: [r.seq for r in rs] for d, rs in rows.items()}
        stored_sets = {d: set(s) for d, s in stored.items() if s}
        made = truth_values(workdir / "truth.sqlite")
        expected = {d: produced.get(d, set()) - dropped.get(d, set()) for d in ids}
        return ChaosResult(
            devices=devices,
            produced=sum(len(s) for s in produced.values()),
            dropped=sum(len(s) for s in dropped.values()),
            expected=sum(len(s) for s in expected.values()),
            stored=sum(len(s) for s in stored.values()),
            doubles=sum(len(s) - len(set(s)) for s in stored.values()),
            missing=sum(len(expected[d] - stored_sets.get(d, set())) for d in ids),
            unexpected=sum(len(stored_sets[d] - produced.get(d, set())) for d in stored_sets),
            mismatched=sum(
                1
                for d, rs in rows.items()
                for r in rs
                if made.get((d, r.seq)) != (r.boot, r.distance_mm, r.fill_pct, r.flags)
            ),
            kills=kills,
            power_cuts=power_cuts,
            wakes=stats.wakes,
            connect_failures=stats.connect_failures,
            seconds=chaos_s,
            settle_seconds=settle_s,
            drained=bool(fleet.drained),
            held_at_gateway_kills=tuple(held),
        )
    finally:
        fleet.stop()

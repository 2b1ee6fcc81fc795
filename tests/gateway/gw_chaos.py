"""The chaos run: devices publish while broker, gateway and influxd are SIGKILLed on a seeded
schedule; afterwards every reading the devices produced is in InfluxDB exactly once.

Shared by the suite's chaos test (200 devices, about a minute) and ``bench/gateway_chaos.py``
(2,000 devices). The devices are ``gw_fleet.Fleet``, a stand-in that follows the protocol's
device behaviour; the simulator's virtual devices can replace it through the same interface.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gw_fleet import Fleet, provision_fleet, stored_seqs
from gw_stack import Stack

from smartbins.servers import wait_until

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
    kills: dict[str, int]
    seconds: float
    settle_seconds: float

    def line(self) -> str:
        return (
            f"chaos: {self.devices} devices, {self.produced} readings produced, "
            f"{self.dropped} dropped by full device buffers, {self.expected} expected, "
            f"{self.stored} stored, {self.doubles} doubled, {self.missing} missing, "
            f"{self.unexpected} unexpected; kills {self.kills}; "
            f"{self.seconds:.0f} s under chaos + {self.settle_seconds:.0f} s to settle"
        )


def run_chaos(
    stack: Stack,
    registry_path: Path,
    *,
    devices: int,
    seed: int,
    duration_s: float,
    kills_each: int = 2,
    produce_fraction: float = 0.1,
    tick_s: float = 0.25,
    settle_timeout_s: float = 180,
    progress: Callable[[str], None] = lambda s: None,
    threaded: bool = True,
) -> ChaosResult:
    rng = random.Random(seed)
    gw = stack.add_gateway("chaos")
    gw.start()
    gw.wait_healthy(30)
    creds = provision_fleet(str(registry_path), stack.broker.passwords, f"c{seed}", devices)
    fleet = Fleet(creds, stack.broker.port, seed=seed, resend_timeout_s=3.0)
    kill = {"broker": stack.broker.kill, "gateway": gw.kill, "influxd": stack.influx.kill}
    start = {"broker": stack.broker.start, "gateway": gw.start, "influxd": stack.influx.start}
    kills = dict.fromkeys(VICTIMS, 0)
    try:
        fleet.start(threaded)
        wait_until(fleet.connected, 120, message="devices connected")
        events = schedule(rng, duration_s, kills_each)
        t0 = time.monotonic()
        while True:
            now = time.monotonic() - t0
            while events and events[0].at_s <= now:
                e = events.pop(0)
                progress(f"  {now:5.1f} s: {e.action} {e.victim}")
                if e.action == "kill":
                    kill[e.victim]()
                    kills[e.victim] += 1
                else:
                    start[e.victim]()
            if now >= duration_s and not events:
                break
            for d in fleet.devices:
                if rng.random() < produce_fraction:
                    d.measure()
            fleet.pump()
            time.sleep(tick_s)
        chaos_s = time.monotonic() - t0
        progress(f"  chaos over after {chaos_s:.0f} s; {fleet.pending()} readings unacknowledged")
        t1 = time.monotonic()
        deadline = t1 + settle_timeout_s
        while fleet.pending():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{fleet.pending()} readings unacknowledged {settle_timeout_s} s after the "
                    f"chaos; gateway log tail:\n{gw.log()[-3000:]}"
                )
            fleet.pump()
            time.sleep(0.5)
        settle_s = time.monotonic() - t1
        stored = stored_seqs(stack.influx.client(), [d.id for d in fleet.devices])
        expected = fleet.expected()
        doubles = sum(len(s) - len(set(s)) for s in stored.values())
        missing = sum(len(expected[d] - set(stored.get(d, ()))) for d in expected)
        unexpected = sum(len(set(stored[d]) - expected.get(d, set())) for d in stored)
        return ChaosResult(
            devices=devices,
            produced=sum(len(d.produced) for d in fleet.devices),
            dropped=sum(len(d.dropped_seqs) for d in fleet.devices),
            expected=sum(len(s) for s in expected.values()),
            stored=sum(len(s) for s in stored.values()),
            doubles=doubles,
            missing=missing,
            unexpected=unexpected,
            kills=kills,
            seconds=chaos_s,
            settle_seconds=settle_s,
        )
    finally:
        fleet.close()

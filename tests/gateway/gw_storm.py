"""A backfill storm from the simulator's virtual devices: every device wakes offline until it
holds a backlog (``simulator.fleet.fill_buffers``), then all reconnect at once and send it in
the protocol's batch form (``BrokerFleet.start_storm``). An observer account counts the seqs
that the gateway's end-to-end acknowledgements cover. Shared by the suite's storm test and
``bench/gateway_storm_sim.py``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from gw_chaos import provisioned_world, truth_values
from gw_fleet import stored_rows
from gw_stack import Stack

from simulator.fleet import BrokerFleet, fill_buffers
from simulator.truth import produced_and_dropped
from simulator.world import WorldOptions, start_for
from smartbins import protocol as p
from smartbins.passwords import new_secret
from smartbins.servers import wait_until

OBSERVER = "test.observer"
OBSERVER_ACL = f"user {OBSERVER}\ntopic read sb/down/+/ack\n"
#: The broker's plugin grants a service account only the subscriptions listed for it.
OBSERVER_CONF = f"plugin_opt_subscribe_{OBSERVER} sb/down/+/ack"


class AckObserver:
    """Counts, per device, the seqs covered by the acknowledgements published to devices."""

    def __init__(self, port: int, password: str) -> None:
        self.covered: dict[str, set[int]] = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=OBSERVER)
        c.username_pw_set(OBSERVER, password)
        c.on_connect = lambda client, *a: client.subscribe("sb/down/+/ack", 1)
        c.on_subscribe = lambda *a: self.ready.set()
        c.on_message = self._on_message
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c
        if not self.ready.wait(10):
            raise TimeoutError("the observer could not subscribe to sb/down/+/ack")

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        ack = p.parse_message(msg.topic, msg.payload)
        assert isinstance(ack, p.Ack)
        with self.lock:
            seen = self.covered.setdefault(ack.device, set())
            for lo, hi in (*ack.stored, *ack.rejected):
                seen.update(range(lo, hi + 1))

    def total(self) -> int:
        with self.lock:
            return sum(len(s) for s in self.covered.values())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def add_observer(stack: Stack) -> str:
    """Call before ``stack.start()``; the Stack needs ``extra_acl=OBSERVER_ACL`` and
    ``extra_conf=OBSERVER_CONF``."""
    password = new_secret()
    stack.broker.passwords.update({OBSERVER: password})
    return password


@dataclass
class StormResult:
    devices: int
    produced: int
    stored: int
    doubles: int
    missing: int
    unexpected: int
    #: Stored rows that differ from the ground truth of their (device, seq) (gw_chaos.py).
    mismatched: int
    acknowledged: int
    fill_seconds: float
    seconds: float  #: from the storm's start until every reading was stored and acknowledged
    connect_failures: int

    def line(self) -> str:
        return (
            f"storm: {self.devices} simulated devices reconnected at once with "
            f"{self.produced} buffered readings; all stored and acknowledged after "
            f"{self.seconds:.1f} s ({self.produced / max(self.seconds, 1e-9):,.0f} readings/s); "
            f"{self.stored} stored, {self.doubles} doubled, {self.missing} missing, "
            f"{self.unexpected} unexpected, {self.mismatched} differing from the truth, "
            f"{self.acknowledged} acknowledged, "
            f"{self.connect_failures} connects refused (backlog built in {self.fill_seconds:.0f} s)"
        )


def run_storm(
    stack: Stack,
    workdir: Path,
    observer_password: str,
    *,
    devices: int,
    per_device: int,
    seed: int,
    timeout_s: float = 300,
    progress: Callable[[str], None] = lambda s: None,
) -> StormResult:
    interval = WorldOptions(seed=seed, start_s=0, days=1).defaults.interval_s
    days = per_device * interval / 86400 + 2
    options = WorldOptions(seed=seed, start_s=start_for(days), days=days)
    world, passwords = provisioned_world(stack, workdir, devices, options, f"st{seed % 1000}")
    t = time.monotonic()
    last = fill_buffers(world, per_device)
    fill_s = time.monotonic() - t
    world.truth.close()
    produced, dropped = produced_and_dropped(workdir / "truth.sqlite")
    total = sum(len(s) for s in produced.values())
    progress(f"  {devices} devices hold {total} readings (built in {fill_s:.0f} s); storm")
    observer = AckObserver(stack.broker.port, observer_password)
    fleet = BrokerFleet(world, stack.broker.port, passwords, speed=1.0)
    try:
        t0 = time.monotonic()
        fleet.start_storm(from_s=last + 60)
        try:
            wait_until(lambda: observer.total() >= total, timeout_s, 0.1,
                       "every buffered reading acknowledged end to end")  # fmt: skip
        except TimeoutError as e:
            st = fleet.stats
            raise TimeoutError(
                f"{e}: {observer.total()} of {total} acknowledged; fleet: {st.wakes} wakes, "
                f"{st.connects} connects, {st.connect_failures} failed, {st.wake_errors} wake "
                f"errors {st.errors}, {st.messages} messages, {fleet.holding()} readings held"
            ) from None
        took = time.monotonic() - t0
        fleet.wait(60)
        stats = fleet.stop()
    finally:
        observer.close()
    ids = world.city.device_ids
    rows = stored_rows(stack.influx.client(), list(ids))
    stored = {d: [r.seq for r in rs] for d, rs in rows.items()}
    sets = {d: set(s) for d, s in stored.items() if s}
    made = truth_values(workdir / "truth.sqlite")
    assert not any(dropped.values()), "a device buffer overflowed while filling"
    return StormResult(
        devices=devices,
        produced=total,
        stored=sum(len(s) for s in stored.values()),
        doubles=sum(len(s) - len(set(s)) for s in stored.values()),
        missing=sum(len(produced.get(d, set()) - sets.get(d, set())) for d in ids),
        unexpected=sum(len(sets[d] - produced.get(d, set())) for d in sets),
        mismatched=sum(
            1
            for d, rs in rows.items()
            for r in rs
            if made.get((d, r.seq)) != (r.boot, r.distance_mm, r.fill_pct, r.flags)
        ),
        acknowledged=observer.total(),
        fill_seconds=fill_s,
        seconds=took,
        connect_failures=stats.connect_failures,
    )

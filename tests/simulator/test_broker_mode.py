"""Virtual devices through a real Mosquitto: own credentials, protocol payloads, backfill,
end-to-end acknowledgement by the test acknowledger, last will; truth accounts for all."""

import itertools
import sqlite3

import pytest

from simulator import faults as fl
from simulator.acknowledger import TestAcknowledger
from simulator.fleet import BrokerFleet, buffered, build_world, provision_fleet, run_fast
from simulator.truth import account
from simulator.world import WorldOptions
from smartbins import protocol as p
from smartbins.registry import Registry
from smartbins.servers import wait_until

START = 1_760_000_000
QUIET = fl.FaultRates(**{k.value: 0.0 for k in fl.Kind}, natural_gaps=False,
                      natural_tilt=False)
_prefix = itertools.count()


@pytest.fixture
def setup(broker, tmp_path, mqtt_probe):
    """A factory: world + provisioned devices + acknowledger + probe on sb/up/+/+."""
    made = []

    def make(bins=5, days=0.5, faults=None, rates=QUIET, seed=3):
        prefix = f"bm{next(_prefix)}"
        opts = WorldOptions(seed=seed, start_s=START, days=days, rates=rates)
        reg = Registry(tmp_path / f"{prefix}-registry.sqlite")
        world = build_world(bins, opts, tmp_path / f"{prefix}-truth.sqlite", reg,
                            devices=False, device_prefix=prefix, device_faults=faults)
        passwords = provision_fleet(world, reg, broker.server.passwords)
        ack = TestAcknowledger(broker.port, broker.gateway, client_id=f"ack-{prefix}").start()
        probe = mqtt_probe(broker.gateway.username, broker.gateway.password)
        probe.connect()
        probe.subscribe("sb/up/+/+")
        made.append((ack, reg))
        return world, passwords, ack, probe

    yield make
    for ack, reg in made:
        ack.stop()
        reg.close()


def _mine(probe, world):
    ids = set(world.city.device_ids)
    return [m for m in probe.received() if m.topic.split("/")[2] in ids]


def test_readings_reach_mosquitto_decode_and_are_acknowledged(setup, tmp_path):
    world, passwords, ack, probe = setup(bins=5, days=0.5)
    assert len(set(passwords.values())) == 5  # each device its own password
    fleet = BrokerFleet(world, ack.port, passwords, speed=7200)
    stats = fleet.run()
    # How many wakes connected, and how many readings were still unacknowledged at the end,
    # depend on the machine's load at 7200x: bench/simulator_broker_mode.py measures them.
    assert stats.connects >= 1 and stats.acks >= 1
    messages = _mine(probe, world)
    decoded = [p.parse_message(m.topic, m.payload) for m in messages]  # raises if malformed
    assert any(isinstance(d, p.Status) and d.state == "online" for d in decoded)
    assert account(world.truth.path, ack.store.seqs(), buffered(world)) == {}
    produced = sqlite3.connect(world.truth.path).execute(
        "SELECT count(*) FROM readings").fetchone()[0]
    assert produced == stats.wakes
    assert ack.store.count() + sum(len(d.flash.buffer) for d in world.devices) >= produced
    # the same seed gives the same readings in process
    twin = build_world(5, world.opt, tmp_path / "twin.sqlite",
                       device_prefix=world.city.device_prefix)
    run_fast(twin)
    q = "SELECT * FROM readings ORDER BY device_id, seq"
    assert (sqlite3.connect(world.truth.path).execute(q).fetchall()
            == sqlite3.connect(twin.truth.path).execute(q).fetchall())


def test_offline_window_is_backfilled_in_batches_and_acknowledged(setup):
    w0 = START + 3 * 3600
    world, passwords, ack, probe = setup(
        bins=3, days=1.0, faults={0: (fl.single("offline", w0, hours=6),)})
    dev = world.city.device_id(0)
    stats = BrokerFleet(world, ack.port, passwords, speed=14400).run()
    db = sqlite3.connect(world.truth.path)
    inside = {s for (s,) in db.execute(
        "SELECT seq FROM readings WHERE device_id = ? AND t_ms >= ? AND t_ms < ?",
        (dev, w0 * 1000, (w0 + 6 * 3600) * 1000))}
    assert len(inside) >= 5 and stats.offline_wakes >= 5
    batches = [p.parse_message(m.topic, m.payload) for m in _mine(probe, world)
               if m.topic == f"sb/up/{dev}/batch"]
    in_batches = {r.seq for b in batches for r in b.readings}
    assert inside <= in_batches  # backfilled as batch messages
    assert inside <= ack.store.seqs()[dev]
    assert account(world.truth.path, ack.store.seqs(), buffered(world)) == {}


def test_unacknowledged_readings_are_kept_and_resent_until_acknowledged(setup):
    world, passwords, ack, probe = setup(bins=3, days=1.0)
    fleet = BrokerFleet(world, ack.port, passwords, speed=7200)
    ack.pause()  # the "gateway" cannot store: nothing is acknowledged
    fleet.start(until_s=START + 86400)
    wait_until(lambda: world.field.t_s > START + 8 * 3600, 20)
    assert all(len(d.flash.buffer) >= 5 for d in world.devices)
    ack.resume()
    assert fleet.wait(30)
    fleet.stop()
    sent = [m for m in _mine(probe, world) if not m.topic.endswith("/status")]
    seqs = [r.seq for m in sent for r in (
        lambda d: d.readings if isinstance(d, p.ReadingBatch) else [d])(
        p.parse_message(m.topic, m.payload)) if r.device == world.city.device_id(0)]
    assert len(seqs) > len(set(seqs))  # resent while unacknowledged
    assert ack.store.duplicates > 0
    assert account(world.truth.path, ack.store.seqs(), buffered(world)) == {}


def test_kill_mid_wake_fires_the_last_will_and_reboots(setup, broker, mqtt_probe):
    world, passwords, ack, _ = setup(bins=2, days=1.0)
    service = mqtt_probe(broker.service.username, broker.service.password)
    service.connect()
    service.subscribe("sb/up/+/status")
    dev = world.city.device_id(1)
    fleet = BrokerFleet(world, ack.port, passwords, speed=3600, ack_wait_s=0.5)
    ack.pause()  # devices wait the whole 0.5 s for acknowledgements: a window to cut power
    fleet.start(until_s=START + 12 * 3600)
    try:
        wait_until(lambda: 1 in fleet.conns, 20, 0.005, "device 1 mid-wake")
        fleet.kill(dev)
        service.wait_for(lambda ms: any(
            m.topic == f"sb/up/{dev}/status"
            and p.parse_message(m.topic, m.payload).state == "lost" for m in ms), 10)
        ack.resume()
        wait_until(lambda: world.devices[1].flash.boot == 2 and any(
            m.topic == f"sb/up/{dev}/status"
            and (s := p.parse_message(m.topic, m.payload)).state == "online" and s.boot == 2
            for m in service.received()), 20)
    finally:
        ack.resume()
        fleet.stop()
    assert account(world.truth.path, ack.store.seqs(), buffered(world)) == {}

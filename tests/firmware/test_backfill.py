"""The firmware against a real Mosquitto with credentials made by `smartbins provision`, and a
test-only acknowledger in the gateway's place: outages, clock loss, power cuts, unreachable
networks and revoked credentials. Every reading lands once, in order, with one timestamp."""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Callable

import pytest
from fwtools import Acknowledger, FakeDevice, Fleet

from smartbins import protocol as p
from smartbins.provisioning import Credentials
from smartbins.servers import wait_until

AckerFactory = Callable[[int, Credentials], Acknowledger]


def assert_landed_once(acker: Acknowledger, dev: FakeDevice, n: int) -> dict[int, int]:
    """Readings 0..n-1 all stored, each with exactly one timestamp, timestamps increasing with
    seq (so no point key is doubled), and nothing left in the device's buffer."""
    stamps = acker.timestamps(dev.device_id)
    assert sorted(stamps) == list(range(n)), f"stored seqs {sorted(stamps)}"
    assert all(len(ts) == 1 for ts in stamps.values()), {
        s: t for s, t in stamps.items() if len(t) > 1
    }
    ts = {s: next(iter(t)) for s, t in stamps.items()}
    assert all(ts[s] < ts[s + 1] for s in range(n - 1)), ts
    assert dev.live() == []
    assert not acker.errors
    return ts


def test_broker_down_for_several_wakes_then_back(
    fleet: Fleet, fake_device: FakeDevice, acknowledger_factory: AckerFactory
) -> None:
    fleet.provision("fw-outage", "bin-1", fake_device)
    acker = acknowledger_factory(fleet.port, fleet.gateway)
    acker.now = fake_device.true_now
    acker.wait_ready()
    fake_device.scenario()
    fake_device.run(2)
    assert acker.seqs("fw-outage") == [0, 1]
    fleet.stop()
    try:
        fake_device.run(4)  # four wakes with the broker down: buffered, nothing lost
        assert fake_device.live() == [2, 3, 4, 5]
        assert fake_device.world()["rtcmem"]["net"].startswith("os")
    finally:
        fleet.start()
    acker.wait_ready()
    fake_device.run(1)  # back: the backlog goes as one batch, oldest first, with the new one
    ts = assert_landed_once(acker, fake_device, 7)
    wakes = fake_device.wakes()
    assert len(wakes) == 7 and all(w["sleep_ms"] == 3_600_000 for w in wakes)
    # Each reading's time is its wake's true time: one interval apart.
    gaps = [ts[s + 1] - ts[s] for s in range(6)]
    assert all(abs(g - 3_600_000) < 60_000 for g in gaps), gaps


def test_clock_lost_at_a_power_cut_is_assigned_once_and_resent_unchanged(
    fleet: Fleet, fake_device: FakeDevice, acknowledger_factory: AckerFactory
) -> None:
    fleet.provision("fw-clock", "bin-2", fake_device)
    acker = acknowledger_factory(fleet.port, fleet.gateway)
    acker.now = fake_device.true_now
    acker.wait_ready()
    fake_device.scenario()
    fake_device.run(1)
    assert acker.seqs("fw-clock") == [0]
    acker.answer_status = False  # no time source at all until NTP is back
    fake_device.power_cut()
    fake_device.scenario(ntp=False)
    fake_device.run(2)  # no clock: readings 1 and 2 stay buffered, flagged, without ts
    recs = {r["seq"]: r for r in fake_device.records()}
    truth = {}
    for seq in (1, 2):
        assert recs[seq]["flags"] & p.Flag.TIME_ESTIMATED and "ts" not in recs[seq]
    assert acker.seqs("fw-clock") == [0]
    # The true times of readings 1 and 2: the fake world's clock when they were taken.
    world = fake_device.world()
    truth[2] = world["utc_ms"] - world["rtc_ms"] + recs[2]["rtc"]
    truth[1] = world["utc_ms"] - world["rtc_ms"] + recs[1]["rtc"]
    acker.acking = False  # stored but not acknowledged: the device must resend
    fake_device.scenario(ntp=True)
    fake_device.run(1)  # learns UTC, converts 1 and 2 once, sends 1..3
    wait_until(lambda: acker.seqs("fw-clock") == [0, 1, 2, 3], 10, message="readings 1-3")
    first = acker.timestamps("fw-clock")
    for seq in (1, 2):
        (ts,) = first[seq]
        assert abs(ts - truth[seq]) < 5_000, (seq, ts - truth[seq])
    acker.acking = True
    fake_device.run(1)  # an hour later: past the resend timeout, 1..3 are resent, with 4
    ts = assert_landed_once(acker, fake_device, 5)
    assert acker.copies >= 8  # 0, 1-3 twice, 4: the resends happened ...
    assert all(first[s] == {ts[s]} for s in (1, 2, 3))  # ... with the same timestamps
    # Taken before the clock was known in their boot: 0 (first power-on), 1-3 (after the cut).
    flagged = [r["seq"] for r in fake_device.records() if r["flags"] & p.Flag.TIME_ESTIMATED]
    assert flagged == [0, 1, 2, 3]


def test_power_cuts_and_sigkills_then_backfill_completes(
    fleet: Fleet, fake_device: FakeDevice, acknowledger_factory: AckerFactory
) -> None:
    """A seeded loop of SIGKILLs of the micropython process during a flash write (before,
    inside or after the slot's body, or at a mark), and of flash writes cut part-way; then clean
    wakes: every reading lands once. Each kill is known to have hit its write: the process
    died of SIGKILL there, not of a sleep that may or may not have caught it at work."""
    fleet.provision("fw-chaos", "bin-3", fake_device)
    acker = acknowledger_factory(fleet.port, fleet.gateway)
    acker.now = fake_device.true_now
    acker.wait_ready()
    rng = random.Random(20261124)
    kills = cuts = clean = 0
    for i in range(16):
        if i % 4 == 3:
            fake_device.scenario(cut_at=rng.randrange(0, 200))
            proc = fake_device.run(1, check=False)
            assert proc.returncode == 3, proc.stderr  # the power cut ended the process
            cuts += 1
        else:
            fake_device.scenario()
            if i % 2:  # some clean wakes between
                wakes = rng.randrange(1, 3)
                fake_device.run(wakes)
                clean += wakes
            # The append's three writes: WRITING mark, body (whole or part), LIVE mark.
            nth = rng.randrange(1, 4)
            nbytes = rng.choice([None, rng.randrange(0, 200)]) if nth == 2 else None
            fake_device.scenario(kill_at_write=[nth, nbytes])
            proc = fake_device.run(1, check=False)
            assert proc.returncode == -9, proc.stderr
            kills += 1
        fake_device.scenario()
    for _ in range(10):
        fake_device.run(1)
        clean += 1
        if not fake_device.live():
            break
    n = fake_device.state()["next_seq"]
    assert n >= clean  # a torn slot may give its seq again; a clean wake's reading never
    assert_landed_once(acker, fake_device, n)
    assert (kills, cuts) == (12, 4)
    # Every cut and every kill came in the middle of a wake: the next start was a power-on.
    assert fake_device.state()["boot"] == 1 + cuts + kills


def _wake_time(dev: FakeDevice) -> int:
    return dev.wakes()[-1]["awake_ms"]


MEASURE_MS = 1_000  # sensors and bookkeeping: well under a second on the injected clock
WAKE_BUDGET_MS = 8_000 + 1_000 + 5_000 + MEASURE_MS  # Wi-Fi + NTP + CONNECT budgets


def test_unreachable_network_ends_the_wake_within_its_budget(
    fleet: Fleet, fake_device: FakeDevice
) -> None:
    settings = fleet.provision("fw-budget", "bin-4", fake_device)
    # Wi-Fi never associates: the whole 8 s budget, then sleep.
    fake_device.scenario(wifi=False)
    fake_device.run(1)
    assert 8_000 <= _wake_time(fake_device) <= 8_000 + MEASURE_MS
    # Wi-Fi too slow: also cut at 8 s.
    fake_device.scenario(wifi_ms=20_000)
    fake_device.run(1)
    assert 8_000 <= _wake_time(fake_device) <= 8_000 + MEASURE_MS
    # A broker that accepts TCP but never answers: the CONNECT budget, then sleep.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        settings["broker"]["port"] = silent.getsockname()[1]
        fake_device.configure(settings)
        fake_device.scenario(ntp=False, fast_silence=True)
        fake_device.run(1)
    t = _wake_time(fake_device)
    assert 5_000 <= t <= WAKE_BUDGET_MS, t
    assert fake_device.world()["rtcmem"]["net"] == "mqtt -1"
    # A broker host that refuses the connection: quick.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        settings["broker"]["port"] = closed.getsockname()[1]
    fake_device.configure(settings)
    fake_device.scenario()
    fake_device.run(1)
    assert _wake_time(fake_device) <= WAKE_BUDGET_MS
    assert fake_device.live() == [0, 1, 2, 3]  # all still buffered
    assert [w["sleep_ms"] for w in fake_device.wakes()] == [3_600_000] * 4


def test_revoked_credentials_are_refused_at_the_next_connect(
    fleet: Fleet, fake_device: FakeDevice, acknowledger_factory: AckerFactory, mqtt_probe_factory
) -> None:
    settings = fleet.provision("fw-revoked", "bin-5", fake_device)
    acker = acknowledger_factory(fleet.port, fleet.gateway)
    acker.now = fake_device.true_now
    acker.wait_ready()
    fake_device.scenario()
    fake_device.run(1)
    assert acker.seqs("fw-revoked") == [0]
    assert fleet.cli("device", "revoke", "fw-revoked", *fleet.cli_args()) == 0
    fake_device.run(1)
    assert fake_device.world()["rtcmem"]["net"] in ("mqtt 4", "mqtt 5")
    assert fake_device.live() == [1]  # kept: it is not lost, only not sent
    assert acker.seqs("fw-revoked") == [0]
    probe = mqtt_probe_factory(fleet.port, "fw-revoked", settings["password"])
    assert probe.connect().is_failure


def test_fire_alarm_goes_before_the_backlog(
    fleet: Fleet, fake_device: FakeDevice, acknowledger_factory: AckerFactory
) -> None:
    fleet.provision("fw-fire", "bin-6", fake_device)
    acker = acknowledger_factory(fleet.port, fleet.gateway)
    acker.now = fake_device.true_now
    acker.wait_ready()
    fake_device.scenario(wifi=False)
    fake_device.run(3)  # a backlog of three, never sent
    fake_device.scenario(temp_c=85.0)
    fake_device.run(1)
    wait_until(lambda: acker.seqs("fw-fire") == [0, 1, 2, 3], 10, message="all readings")
    msgs = [m for m in acker.messages if m[0] == "fw-fire"]
    assert msgs[0] == ("fw-fire", "reading", [3])  # the alarm first, on its own
    assert msgs[1] == ("fw-fire", "batch", [0, 1, 2])  # then the backlog, oldest first
    fire = acker.readings[("fw-fire", 3)]
    assert fire.flags & p.Flag.FIRE and fire.interval_s == 900
    assert fake_device.wakes()[-1]["sleep_ms"] == 900_000  # reports more often now
    assert_landed_once(acker, fake_device, 4)


def test_clock_learned_from_an_acknowledgement_without_ntp(
    fleet: Fleet, fake_device: FakeDevice, acknowledger_factory: AckerFactory
) -> None:
    """No NTP after a power cut: a reading of the earlier boot, sent but never acknowledged, is
    resent; its acknowledgement answers this wake's publish, so its server_ts sets the clock;
    the readings taken without a clock are converted and sent in the same wake."""
    fleet.provision("fw-ackclock", "bin-7", fake_device)
    acker = acknowledger_factory(fleet.port, fleet.gateway)
    acker.now = fake_device.true_now
    acker.wait_ready()
    acker.acking = False
    acker.answer_status = False  # the resent reading's acknowledgement must teach the clock
    fake_device.scenario()
    fake_device.run(1)  # reading 0 sent (time from NTP), not acknowledged
    wait_until(lambda: acker.seqs("fw-ackclock") == [0], 10, message="reading 0")
    fake_device.power_cut()
    fake_device.scenario(ntp=False, wifi=False)
    fake_device.run(1)  # reading 1: no clock, no network
    acker.acking = True
    fake_device.scenario(ntp=False)
    fake_device.run(1)  # resends 0, learns UTC from its ack, converts and sends 1 and 2
    assert "off" in fake_device.world()["rtcmem"]
    ts = assert_landed_once(acker, fake_device, 3)
    world = fake_device.world()
    rec1 = next(r for r in fake_device.records() if r["seq"] == 1)
    truth1 = world["utc_ms"] - world["rtc_ms"] + rec1["rtc"]
    # The server's clock reads the world's time at the start of the wake, so the learned time
    # is off by at most the time the wake had run (its length depends on the machine's load).
    assert abs(ts[1] - truth1) <= fake_device.wakes()[-1]["awake_ms"]


def test_clock_learned_from_the_answer_to_an_online_status(
    fleet: Fleet, fake_device: FakeDevice, acknowledger_factory: AckerFactory
) -> None:
    """No NTP after a power cut and nothing left to acknowledge: the device announces itself
    first, the gateway's answer carries the server time, and the reading taken without a clock
    goes out in the same wake with its true time."""
    fleet.provision("fw-statusclock", "bin-40", fake_device)
    acker = acknowledger_factory(fleet.port, fleet.gateway)
    acker.now = fake_device.true_now
    acker.wait_ready()
    fake_device.scenario()
    fake_device.run(1)  # reading 0, time from NTP, acknowledged
    wait_until(lambda: acker.seqs("fw-statusclock") == [0], 10, message="reading 0")
    fake_device.power_cut()
    fake_device.scenario(ntp=False)
    fake_device.run(1)  # reading 1 without a clock; online status answered; 1 sent
    ts = assert_landed_once(acker, fake_device, 2)
    world = fake_device.world()
    rec1 = next(r for r in fake_device.records() if r["seq"] == 1)
    assert rec1["flags"] & p.Flag.TIME_ESTIMATED
    # Off by at most the wake's own length: the server's clock reads the world's at its start.
    truth1 = world["utc_ms"] - world["rtc_ms"] + rec1["rtc"]
    assert abs(ts[1] - truth1) <= fake_device.wakes()[-1]["awake_ms"]
    assert ts[1] > ts[0]
    statuses = [s for s in acker.statuses if s.device == "fw-statusclock"]
    assert [s.state for s in statuses] == ["online", "online"]
    assert statuses[-1].ts_ms is None  # announced before it knew the time


def test_readings_of_a_boot_that_never_learned_the_time_are_placed_before_the_next(
    fleet: Fleet, fake_device: FakeDevice, acknowledger_factory: AckerFactory
) -> None:
    fleet.provision("fw-boots", "bin-8", fake_device)
    acker = acknowledger_factory(fleet.port, fleet.gateway)
    acker.now = fake_device.true_now
    acker.wait_ready()
    fake_device.scenario()
    fake_device.run(1)  # reading 0 with a known time (boot 1)
    fake_device.power_cut()
    fake_device.scenario(wifi=False)
    fake_device.run(2)  # readings 1, 2 (boot 2): never learn the time
    fake_device.power_cut()
    fake_device.run(1)  # reading 3 (boot 3)
    fake_device.scenario()
    fake_device.run(1)  # reading 4 (boot 3): learns UTC; converts 1-4
    ts = assert_landed_once(acker, fake_device, 5)
    recs = {r["seq"]: r for r in fake_device.records()}
    assert [recs[s]["boot"] for s in range(5)] == [1, 2, 2, 3, 3]
    # Boot 3's readings come from its own RTC uptime: one interval apart, like the wakes.
    assert abs(ts[4] - ts[3] - 3_600_000) < 60_000
    # Boot 2's are placed before boot 3's first, one interval apart, after reading 0.
    assert ts[3] - ts[2] == 3_600_000 and ts[2] - ts[1] == 3_600_000
    assert ts[0] < ts[1]


def test_long_backlog_goes_in_batches_of_50_at_most_10_per_wake(
    fleet: Fleet, fake_device: FakeDevice, acknowledger_factory: AckerFactory
) -> None:
    settings = fleet.provision("fw-long", "bin-9", fake_device)
    settings["slots"] = 560
    fake_device.configure(settings)
    acker = acknowledger_factory(fleet.port, fleet.gateway)
    acker.now = fake_device.true_now
    acker.wait_ready()
    fake_device.scenario(wifi=False)
    fake_device.run(530)  # three weeks without network
    assert len(fake_device.live()) == 530
    fake_device.scenario()
    fake_device.run(1)
    msgs = [m for m in acker.messages if m[0] == "fw-long"]
    assert [m[1] for m in msgs] == ["batch"] * 10
    assert [m[2] for m in msgs] == [list(range(i, i + 50)) for i in range(0, 500, 50)]
    assert fake_device.live() == list(range(500, 531))
    fake_device.run(1)
    msgs = [m for m in acker.messages if m[0] == "fw-long"][10:]
    assert [(m[1], len(m[2])) for m in msgs] == [("batch", 32)]
    assert_landed_once(acker, fake_device, 532)
    online = [s for s in acker.statuses if s.device == "fw-long" and s.state == "online"]
    assert len(online) == 1 and online[0].boot == 1  # once per boot, after its first connect
    assert online[0].buffered == 31


def test_retained_config_sets_the_interval_from_the_wake_that_reads_it(
    fleet: Fleet, fake_device: FakeDevice, acknowledger_factory: AckerFactory, mqtt_probe_factory
) -> None:
    fleet.provision("fw-config", "bin-10", fake_device)
    acker = acknowledger_factory(fleet.port, fleet.gateway)
    acker.now = fake_device.true_now
    acker.wait_ready()
    service = mqtt_probe_factory(fleet.port, fleet.service.username, fleet.service.password)
    service.connect()
    config = p.DeviceConfig(
        "fw-config",
        1_764_000_000_000,
        cal=4,
        empty_mm=1500,
        full_mm=300,
        interval_s=600,
        interval_near_full_s=120,
        low_battery_mv=3000,
    )
    service.publish(*p.encode_message(config), retain=True)
    fake_device.scenario(distance_mm=900.0)
    fake_device.run(1)
    assert fake_device.wakes()[-1]["sleep_ms"] == 600_000  # read at this wake, applied now
    fake_device.run(1)
    last = fake_device.records()[-1]
    assert (last["cal"], last["interval"]) == (4, 600)
    assert last["fill"] == pytest.approx(50.0, abs=0.5)
    fake_device.scenario(distance_mm=420.0)  # 90 % full: the near-full interval
    fake_device.run(1)
    assert fake_device.wakes()[-1]["sleep_ms"] == 120_000


def test_status_online_once_per_boot_and_again_after_a_lost_session(
    fleet: Fleet, fake_device: FakeDevice, acknowledger_factory: AckerFactory
) -> None:
    fleet.provision("fw-status", "bin-11", fake_device)
    acker = acknowledger_factory(fleet.port, fleet.gateway)
    acker.now = fake_device.true_now
    acker.wait_ready()
    fake_device.scenario()
    fake_device.run(2)

    def onlines() -> list[int | None]:
        return [s.boot for s in acker.statuses if s.device == "fw-status" and s.state == "online"]

    wait_until(lambda: onlines() == [1], 10, message="one online status")
    # A session of this boot that ended without DISCONNECT (the broker sent the will):
    w = fake_device.world()
    w["rtcmem"]["unclean"] = True
    (fake_device.dir / "world.json").write_text(json.dumps(w))
    fake_device.run(1)
    wait_until(lambda: onlines() == [1, 1], 10, message="online again")
    fake_device.power_cut()
    fake_device.run(1)
    wait_until(lambda: onlines() == [1, 1, 2], 10, message="online in the new boot")

"""A property over sequences of events, in the manner of h2's state-machine tests: whatever
mix of good wakes, Wi-Fi loss, broker loss, a silent gateway, power cuts, writes torn at any
byte and SIGKILLs during any flash write a device goes through, once the network and the
gateway are back every reading lands once, in order, with one timestamp; seq never repeats and
the buffer ends empty.

Each run draws new sequences under a seed: ``FW_PROPERTY_SEED`` if set, else a fresh one. The
seed is printed with a failure (``note``); rerun with ``FW_PROPERTY_SEED=<seed>`` to replay it.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import socket
from pathlib import Path

from fwtools import Acknowledger, FakeDevice, Fleet
from hypothesis import HealthCheck, given, note, seed, settings
from hypothesis import strategies as st

from smartbins.servers import wait_until

SEED = int(os.environ.get("FW_PROPERTY_SEED") or random.SystemRandom().randrange(2**32))
SIMPLE = ("wake", "wake", "no_wifi", "broker_gone", "gateway_silent", "power_cut")
#: A slot write torn after this many bytes (a record is about 150-250 bytes; beyond its
#: length the whole slot is written and the power fails right after).
TORN = st.tuples(st.just("torn_write"), st.integers(0, 260))
#: SIGKILL during the n-th flash write of the wake (the append's WRITING mark, body, LIVE
#: mark), after a part of it or all of it.
KILL = st.tuples(st.just("kill"), st.integers(1, 3), st.none() | st.integers(0, 260))
EVENT = st.sampled_from(SIMPLE).map(lambda e: (e,)) | TORN | KILL
_ids = itertools.count()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@seed(SEED)
@settings(
    # About 3 s an example: the suite keeps 8 per run, new ones each run (see SEED).
    max_examples=8,
    deadline=None,
    database=None,  # the seed, not a local database, replays a failure
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(EVENT, min_size=3, max_size=8))
def test_any_event_sequence_then_recovery_lands_everything_once(
    fleet: Fleet, tmp_path: Path, events: list[tuple[object, ...]]
) -> None:
    note(f"replay with FW_PROPERTY_SEED={SEED}")
    n = next(_ids)
    d = tmp_path / f"dev{n}"
    d.mkdir()
    dev = FakeDevice(d)
    settings_ = fleet.provision(f"fw-prop-{n}", f"bin-{100 + n}", dev)
    acker = Acknowledger(fleet.port, fleet.gateway)
    acker.now = dev.true_now
    try:
        acker.wait_ready()
        for event, *args in events:
            cfg = dict(settings_)
            scenario: dict[str, object] = {}
            acker.acking = event != "gateway_silent"
            if event == "no_wifi":
                scenario["wifi"] = False
            elif event == "broker_gone":
                cfg = json.loads(json.dumps(settings_))
                cfg["broker"]["port"] = closed_port()
            elif event == "power_cut":
                dev.power_cut()
            dev.configure(cfg)
            if event == "torn_write":
                dev.scenario(cut_at=args[0])
                assert dev.run(1, check=False).returncode == 3
                continue
            if event == "kill":
                dev.scenario(kill_at_write=args)
                assert dev.run(1, check=False).returncode == -9  # the kill hit its write
                continue
            dev.scenario(**scenario)
            dev.run(1)
        # Recovery: network and gateway back; readings sent to the silent gateway are resent
        # after the resend timeout (half the interval), so a few wakes clear everything.
        acker.acking = True
        dev.configure(settings_)
        dev.scenario()
        for _ in range(4):
            dev.run(1)
            if not dev.live():
                break
        total = dev.state()["next_seq"]
        wait_until(lambda: len(acker.seqs(dev.device_id)) == total, 10, message="all stored")
        stamps = acker.timestamps(dev.device_id)
        assert sorted(stamps) == list(range(total))
        assert all(len(t) == 1 for t in stamps.values()), stamps
        ts = [next(iter(stamps[s])) for s in range(total)]
        assert ts == sorted(ts) and len(set(ts)) == total
        assert dev.live() == []
        assert not acker.errors
    finally:
        acker.close()

"""The flash ring buffer under the real `micropython`: a write cut at every byte offset of a
record is detected and skipped, nothing before it is lost, seq continues; a full buffer drops
the oldest and counts it; boot count and seq survive restarts."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from fwtools import FIRMWARE, FakeDevice, micropython

CUT = FIRMWARE.parent / "tests/firmware/mp_ringbuf_cut.py"


def test_write_cut_at_every_byte_offset_recovers(tmp_path: Path) -> None:
    env = dict(os.environ, MICROPYPATH=f"{FIRMWARE}:.frozen")
    out = subprocess.run(
        [micropython(), str(CUT), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout
    results = [json.loads(x) for x in out.splitlines()]
    *cuts, control = results
    length = cuts[0]["length"]
    assert [r["cut"] for r in cuts] == list(range(length + 1))
    for r in cuts:
        # Readings 0..9 in 8 slots: 0 and 1 were dropped (the ring wrapped), 2 and 3 were
        # acknowledged; the cut write of reading 10 went to slot 2.
        assert r["outcome"] == "cut"
        assert r["pending"] == [4, 5, 6, 7, 8, 9], r
        assert r["mm"] == [804, 805, 806, 807, 808, 809]  # all readable, none lost
        assert r["torn"] == 1
        assert r["next"] == 10  # the torn reading was never sent: its seq is reused
        assert r["dropped"] == 2
    assert control["outcome"] == "no cut"
    assert control["pending"] == [4, 5, 6, 7, 8, 9, 10]
    assert (control["torn"], control["next"], control["dropped"]) == (0, 11, 2)


def test_full_buffer_drops_oldest_and_counts_it(fake_device: FakeDevice) -> None:
    fake_device.configure(
        {
            "device": "fw-test-0001",
            "password": "unused",
            "broker": {"host": "127.0.0.1", "port": 9},
            "slots": 4,
        }
    )
    fake_device.scenario(wifi=False)
    fake_device.run(6)
    recs = fake_device.records()
    assert [r["seq"] for r in recs] == [2, 3, 4, 5]
    assert [r["dropped"] for r in recs] == [0, 0, 1, 2]  # counted in the next reading
    assert fake_device.state()["dropped"] == 2


def test_seq_and_boot_survive_power_cuts(fake_device: FakeDevice) -> None:
    fake_device.scenario(wifi=False)
    fake_device.run(2)
    fake_device.power_cut()
    fake_device.run(1)
    fake_device.power_cut()
    fake_device.run(2)
    recs = fake_device.records()
    assert [r["seq"] for r in recs] == [0, 1, 2, 3, 4]
    assert [r["boot"] for r in recs] == [1, 1, 2, 3, 3]

"""The in-process mode: same seed, same readings; ground truth accounts for every reading."""

import sqlite3

from simulator.fleet import buffered, build_world, run_fast
from simulator.truth import account
from simulator.world import WorldOptions, start_for
from smartbins.cli import main

START = 1_760_000_000


def _run(tmp_path, name, seed, bins=60, days=4.0, wire=False):
    world = build_world(bins, WorldOptions(seed=seed, start_s=START, days=days),
                        tmp_path / f"{name}.sqlite")
    stats, store = run_fast(world, wire=wire)
    return world, stats, store


def _rows(path, sql):
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_same_seed_gives_the_same_readings_and_truth(tmp_path):
    _run(tmp_path, "a", 11)
    _run(tmp_path, "b", 11)
    _run(tmp_path, "c", 12)
    q = "SELECT * FROM readings ORDER BY device_id, seq"
    a, b, c = (_rows(tmp_path / f"{n}.sqlite", q) for n in "abc")
    assert a == b and len(a) > 5000
    assert a != c
    for table in ("levels", "emptyings", "overflows", "faults"):
        q = f"SELECT * FROM {table} ORDER BY 1, 2"
        assert _rows(tmp_path / "a.sqlite", q) == _rows(tmp_path / "b.sqlite", q), table


def test_wire_and_shortcut_give_the_same_readings(tmp_path):
    _, _s1, st1 = _run(tmp_path, "w", 5, bins=20, days=2, wire=True)
    _, _s2, st2 = _run(tmp_path, "n", 5, bins=20, days=2, wire=False)
    q = "SELECT * FROM readings ORDER BY device_id, seq"
    assert _rows(tmp_path / "w.sqlite", q) == _rows(tmp_path / "n.sqlite", q)
    assert st1.seqs() == st2.seqs()
    assert not st1.errors  # every message decoded with the protocol module


def test_every_reading_is_stored_dropped_or_buffered(tmp_path):
    world, stats, store = _run(tmp_path, "t", 3, bins=80, days=5)
    assert account(tmp_path / "t.sqlite", store.seqs(), buffered(world)) == {}
    assert stats.offline_wakes > 0  # the fitted outages happened, and were backfilled
    produced = _rows(tmp_path / "t.sqlite", "SELECT count(*) FROM readings")[0][0]
    assert produced == stats.readings


def test_full_buffer_drops_oldest_and_truth_records_it(tmp_path):
    from simulator import faults as fl
    from simulator.world import DeviceDefaults

    opts = WorldOptions(seed=2, start_s=START, days=2,
                        defaults=DeviceDefaults(buffer_capacity=10))
    world = build_world(3, opts, tmp_path / "d.sqlite",
                        device_faults={0: (fl.single("offline", START, hours=20),)})
    _stats, store = run_fast(world)
    dropped = _rows(tmp_path / "d.sqlite",
                    "SELECT seq FROM dropped WHERE device_id = 'kbh-00000' ORDER BY seq")
    assert len(dropped) >= 8
    assert [s for (s,) in dropped] == list(range(len(dropped)))  # the oldest first
    assert account(tmp_path / "d.sqlite", store.seqs(), buffered(world)) == {}
    last = _rows(tmp_path / "d.sqlite",
                 "SELECT max(seq) FROM readings WHERE device_id = 'kbh-00000'")[0][0]
    assert set(range(len(dropped), last + 1)) <= store.seqs()["kbh-00000"]


def test_cli_fast_run(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["simulate", "--fast", "--bins", "30", "--days", "2", "--seed", "4",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "readings stored and acknowledged" in text
    assert _rows(out / "registry.sqlite", "SELECT count(*) FROM bins")[0][0] == 30
    assert _rows(out / "truth.sqlite", "SELECT count(*) FROM readings")[0][0] > 1000


def test_cli_config_file_and_errors(tmp_path, capsys):
    cfg = tmp_path / "sim.toml"
    cfg.write_text("bins = 10\ndays = 1\nfast = true\n[faults]\nreboot = 0.0\n")
    assert main(["simulate", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 0
    cfg.write_text("bins = 10\nbogus = 1\n")
    assert main(["simulate", "--config", str(cfg)]) == 1
    assert "bogus: unknown key" in capsys.readouterr().err


def test_start_is_in_the_past_by_more_than_the_run():
    assert start_for(30, now_s=1_800_000_000) + 30 * 86400 < 1_800_000_000


def test_cli_broker_mode(tmp_path, capsys):
    out = tmp_path / "broker-run"
    assert main(["simulate", "--bins", "4", "--days", "0.25", "--speed", "7200", "--seed", "2",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "devices provisioned" in text and "acknowledged end to end" in text
    assert _rows(out / "truth.sqlite", "SELECT count(*) FROM readings")[0][0] >= 20


def test_cli_schedule_file(tmp_path, capsys):
    from simulator.city import generate
    from simulator.collections import Visit, write_schedule
    from simulator.world import start_for

    city = generate(6, 4)
    t = start_for(2) + 86400
    write_schedule(tmp_path / "plan.csv", [Visit(t, b.id, "truck-009") for b in city.bins])
    out = tmp_path / "o"
    assert main(["simulate", "--fast", "--bins", "6", "--days", "2", "--seed", "4",
                 "--schedule", str(tmp_path / "plan.csv"), "--out", str(out)]) == 0
    rows = _rows(out / "truth.sqlite", "SELECT truck, source FROM emptyings")
    assert rows == [("truck-009", "schedule")] * 6
    (tmp_path / "bad.csv").write_text("bin_id,time,truck\nbin-99999,2026-01-01T00:00:00Z,t\n")
    assert main(["simulate", "--fast", "--bins", "6", "--schedule",
                 str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o2")]) == 1
    assert "bad.csv:2: bin_id 'bin-99999'" in capsys.readouterr().err


def test_documented_config_is_the_defaults():
    """The TOML block in docs/simulator.md loads, and equals the defaults (the doc is the
    sample config, as in telegraf's sample.conf)."""
    import re
    from pathlib import Path

    from simulator.config import SimulateConfig
    from smartbins.settings import from_mapping

    doc = (Path(__file__).resolve().parents[2] / "docs" / "simulator.md").read_text()
    block = re.search(r"```toml\n(.*?)```", doc, re.S).group(1)
    import tomllib

    assert from_mapping(SimulateConfig, tomllib.loads(block)) == SimulateConfig()

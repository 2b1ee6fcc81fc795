"""The municipality generator: seeded, Copenhagen-sized, complete, written through the registry."""

import sqlite3

import pytest

from simulator.city import generate, write_registry
from smartbins.codes import STREAMS
from smartbins.registry import SCHEMA_VERSION, Registry


def test_same_seed_same_city_other_seed_other_city():
    assert generate(500, 7) == generate(500, 7)
    assert generate(500, 7) != generate(500, 8)


def test_city_has_exactly_n_bins_in_copenhagen_with_valid_streams_and_volumes():
    city = generate(1000, 1)
    assert len(city.bins) == 1000
    assert len({b.id for b in city.bins}) == 1000
    for b in city.bins:
        assert 55.58 < b.lat < 55.76 and 12.40 < b.lon < 12.70
        assert b.stream in STREAMS
        assert 100 <= b.volume_l <= 3000
    kinds = {s.kind for s in city.sites}
    assert kinds == {"street", "island", "underground"}


def test_every_stream_has_a_disposal_site_and_a_truck_compartment():
    city = generate(2000, 3)
    accepted = {s for d in city.disposal_sites for s in d.streams}
    carried = {s for t in city.trucks for s, _ in t.compartments}
    for b in city.bins:
        assert b.stream in accepted, b.stream
        assert b.stream in carried, b.stream
    assert all(t.shift_s == 8 * 3600 for t in city.trucks)
    assert any(len(t.compartments) == 2 for t in city.trucks)


def test_written_through_the_registry(tmp_path):
    city = generate(120, 5)
    with Registry(tmp_path / "r.sqlite") as reg:
        write_registry(city, reg)
        assert reg.version == SCHEMA_VERSION
        assert len(reg.bins()) == 120
        assert reg.bin(city.bins[0].id).stream == city.bins[0].stream
    db = sqlite3.connect(tmp_path / "r.sqlite")
    assert db.execute("SELECT count(*) FROM depots").fetchone()[0] == len(city.depots)
    assert db.execute("SELECT count(*) FROM trucks").fetchone()[0] == len(city.trucks)
    assert db.execute(
        "SELECT stream FROM disposal_streams WHERE disposal_site_id = 'disp-arc'"
    ).fetchall() == [("residual",)]


def test_zero_bins_is_an_error():
    with pytest.raises(ValueError, match="n_bins"):
        generate(0, 1)

"""The migration from the version before the backend's (3) keeps every row of every table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from smartbins import assets, tokens
from smartbins.registry import MIGRATIONS, SCHEMA_VERSION, Registry

ROWS = {
    "municipalities": [("0101", "København", 1)],
    "sites": [("s1", "0101", "Nytorv", 55.68, 12.57), ("s2", "0101", "", 55.6, 12.5)],
    "bins": [("b1", "s1", "glass", 1500.0, 1, None), ("b2", "s2", "residual", 660.0, 2, 9)],
    "devices": [("d1", "active", "ultrasonic", 2, 3, 1500, 300, 1, 2, 1800, 900, 14400, 80.0,
                 3300, 70.0, 20.0, 45.0)],
    "device_bins": [("d1", "b2", 1, 5), ("d1", "b1", 5, None)],
    "depots": [("dep1", "0101", "Depot", 55.66, 12.6)],
    "disposal_sites": [("ds1", "0101", "ARC", 55.63, 12.65)],
    "disposal_streams": [("ds1", "glass"), ("ds1", "residual")],
    "trucks": [("t1", "dep1", "Truck", 28800)],
    "truck_compartments": [("t1", 0, "glass", 8000.0), ("t1", 1, "residual", 8000.0)],
}


def test_a_version_3_registry_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    for migration in MIGRATIONS[:3]:
        db.executescript(migration)
    for table, rows in ROWS.items():
        for row in rows:
            db.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})", row)
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()
    assert set(ROWS) == {  # every table of version 3 has rows in this test
        "municipalities", "sites", "bins", "devices", "device_bins", "depots", "disposal_sites",
        "disposal_streams", "trucks", "truck_compartments"}
    with Registry(path) as reg:
        assert reg.version == SCHEMA_VERSION
        for table, rows in ROWS.items():
            n = len(rows[0])
            got = sorted(r[:n] for r in reg.db.execute(f"SELECT * FROM {table}").fetchall())
            assert got == sorted(rows), table
        # New columns have their defaults, and the new code reads the old rows.
        assert reg.bin("b1").container_type == "wheelie" and reg.bin("b1").full_pct == 90.0
        assert assets.site(reg, "s1").address == ""
        assert assets.truck(reg, "t1").fuel == "diesel"
        assert assets.disposal_site(reg, "ds1").streams == ("glass", "residual")
        assert assets.device_municipality(reg, "d1") == "0101"
        assert reg.bin_at("d1", 3) == "b2"
        tokens.create(reg, "first admin", "admin", ["0101"])

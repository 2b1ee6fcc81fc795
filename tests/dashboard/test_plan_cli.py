"""`smartbins plan` on the demo city (the simulator's Copenhagen, its readings in a real
InfluxDB, read as the API reads them): a route sheet per truck, every stop on its sheet, a
GeoJSON line per truck, the schedule the simulator replays, and a plan the checker accepts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from dash_city import MUNICIPALITY, City, tomorrow

from smartbins.cli import main


def test_plan_on_the_demo_city_gives_a_route_sheet_per_truck(city: City, tmp_path: Path,
                                                            capsys) -> None:
    out = tmp_path / "plan"
    rc = main(["plan", "--config", str(city.workdir / "api.toml"), "--municipality",
               MUNICIPALITY, "--date", tomorrow(), "--next-collection", "--iterations", "300",
               "--no-store", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    doc = json.loads((out / "plan.json").read_text())
    # tomorrow, or the first working day after it that sends a truck out
    assert doc["date"] >= tomorrow() and f"for {doc['date']}:" in printed
    assert doc["trucks"] and doc["violations"] == []
    for t in doc["trucks"]:
        sheet = (out / f"route-{t['truck_id']}.html").read_text()
        assert f"route sheet {out / ('route-' + t['truck_id'])}.html" in printed
        for s in t["stops"]:
            assert s["address"] in sheet
    planned = {b["bin_id"] for t in doc["trucks"] for s in t["stops"] for b in s["bins"]}
    assert planned | {s["bin_id"] for s in doc["skipped"]} == set(city.bin_ids)
    with open(out / "schedule.csv") as f:
        assert {r["bin_id"] for r in csv.DictReader(f)} == planned
    lines = [f for f in json.loads((out / "plan.geojson").read_text())["features"]
             if f["geometry"]["type"] == "LineString"]
    assert len(lines) == len(doc["trucks"])

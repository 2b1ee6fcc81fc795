"""Bulk import of bins: all or nothing, with a report naming each bad row and field."""

from __future__ import annotations

import json

from api_world import World
from test_api_tenants import dump

URL = "/api/v1/municipalities/0101/bins/import"


def post(w: World, body: str, fmt: str = "csv"):  # type: ignore[no-untyped-def]
    ctype = "text/csv" if fmt == "csv" else "application/geo+json"
    return w.client.post(URL, params={"format": fmt}, content=body.encode(),
                         headers={**w.auth("a-planner"), "Content-Type": ctype})


def test_csv_import_is_all_or_nothing_and_names_each_bad_row(fresh_world: World) -> None:
    w = fresh_world
    before = dump(str(w.settings.registry.path))
    body = (
        "id,site_id,lat,lon,stream,volume_l,area\n"
        "c1,a-site-1,,,glass,240,north\n"
        "c2,,55.7,12.5,food+glass,240,\n"
        "c3,,95,12.5,glass,abc,\n"
        "c1,a-site-1,,,glass,240,\n"
        "c5,,,,glass,240,\n"
    )
    r = post(w, body)
    assert r.status_code == 400
    problems = [(p["row"], p["field"]) for p in r.json()["problems"]]
    assert problems == [(3, "volume_l"), (5, "site_id")]
    assert r.json()["imported"] == 0
    assert dump(str(w.settings.registry.path)) == before
    # With the field errors fixed, the registry's own checks speak, still naming row and field.
    body = body.replace("abc", "240").replace("c5,,,,", "c5,,55.1,12.1,")
    r = post(w, body)
    assert r.status_code == 400
    assert [(p["row"], p["field"]) for p in r.json()["problems"]] == [
        (2, "stream"), (3, "lat"), (4, "id")]
    assert dump(str(w.settings.registry.path)) == before
    good = "id,site_id,lat,lon,stream,volume_l\nc1,a-site-1,,,glass,240\nc2,,55.7,12.5,food,140\n"
    r = post(w, good)
    assert (r.status_code, r.json()) == (200, {"imported": 2, "problems": []})
    b = w.client.get("/api/v1/municipalities/0101/bins/c2", headers=w.auth("a-viewer")).json()
    assert (b["site_id"], b["lat"], b["stream"]) == ("c2", 55.7, "food")


def test_geojson_import(fresh_world: World) -> None:
    w = fresh_world
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [12.5, 55.7]},
               "properties": {"id": "g1", "stream": "paper+cardboard", "volume_l": 660}}
    bad = {"type": "Feature", "geometry": {"type": "LineString", "coordinates": []},
           "properties": {"id": "g2", "stream": "glass", "volume_l": 660, "colour": "red"}}
    doc = {"type": "FeatureCollection", "features": [feature, bad]}
    r = post(w, json.dumps(doc), "geojson")
    assert r.status_code == 400
    assert [(p["row"], p["field"]) for p in r.json()["problems"]] == [
        (2, "geometry"), (2, "colour")]
    doc["features"] = [feature]
    r = post(w, json.dumps(doc), "geojson")
    assert r.json() == {"imported": 1, "problems": []}
    r = post(w, "not json", "geojson")
    assert r.status_code == 400 and r.json()["problems"][0]["field"] == "body"

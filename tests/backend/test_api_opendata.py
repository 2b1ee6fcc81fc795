"""Open data, no token: CSV, GeoJSON and NGSI-LD WasteContainer, valid against FIWARE's schema,
with the licence in the payload and nothing personal."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import jsonschema
import pytest
from api_world import World
from referencing import Registry, Resource

FIWARE = Path(__file__).resolve().parents[3] / "shared" / "data" / "fiware"
COMMON_URL = "https://smart-data-models.github.io/data-models/common-schema.json"
OPEN = "/api/v1/open/municipalities/0101"


def fiware_validator() -> jsonschema.Draft202012Validator:
    if not FIWARE.parents[1].exists():  # ../shared itself; a missing schema in it fails
        pytest.skip(f"{FIWARE.parents[1]} is absent: check out the shared data folder beside "
                    "the repo")
    schema = json.loads((FIWARE / "WasteContainer.schema.json").read_text())
    common = json.loads((FIWARE / "common-schema.json").read_text())
    registry = Registry().with_resource(COMMON_URL, Resource.from_contents(common))
    return jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.FormatChecker()
    )


def test_ngsi_ld_validates_against_the_fiware_schema(world: World) -> None:
    r = world.client.get(f"{OPEN}/bins.jsonld")
    assert r.status_code == 200 and r.headers["content-type"] == "application/ld+json"
    entities = r.json()
    assert len(entities) == 5
    validator = fiware_validator()
    for e in entities:
        errors = sorted(validator.iter_errors(e), key=str)
        assert not errors, (e["id"], [err.message for err in errors])
        assert e["license"] == "https://creativecommons.org/licenses/by/4.0/"
    by_id = {e["id"]: e for e in entities}
    one = by_id["urn:ngsi-ld:WasteContainer:0101:a-bin-1"]
    assert one["fillingLevel"] == (40.0 + 47 * 0.5) / 100
    assert (one["wasteStream"], one["storedWasteCode"]) == ("residual", "20 03 01")
    assert "storedWasteKind" not in one  # FIWARE's enum has no residual waste
    glass = by_id["urn:ngsi-ld:WasteContainer:0101:a-bin-2"]
    assert (glass["storedWasteKind"], glass["storedWasteCode"]) == ("glass", "20 01 02")
    paper = by_id["urn:ngsi-ld:WasteContainer:0101:a-bin-3"]
    assert paper["storedWasteCode"] == "20 01 01" and "fillingLevel" not in paper
    # A validator that accepts everything would make this test worthless.
    assert list(validator.iter_errors({**one, "fillingLevel": 1.5}))


def test_csv_and_geojson_state_the_licence_and_nothing_personal(world: World) -> None:
    text = world.client.get(f"{OPEN}/bins.csv").text
    first, rest = text.split("\n", 1)
    assert "CC BY 4.0" in first
    rows = list(csv.DictReader(io.StringIO(rest)))
    assert [r["bin_id"] for r in rows] == ["a-bin-1", "a-bin-2", "a-bin-3", "a-bin-4", "a-bin-5"]
    assert rows[0]["fill_pct"] == "63.5" and rows[0]["status"] == "ok"
    doc = world.client.get(f"{OPEN}/bins.geojson").json()
    assert doc["license"] == "CC BY 4.0" and doc["type"] == "FeatureCollection"
    assert doc["features"][0]["geometry"]["coordinates"] == [12.57, 55.68]
    for payload in (text, json.dumps(doc), world.client.get(f"{OPEN}/bins.jsonld").text):
        for secret in (world.ids["a"]["device_id"], "Kongens Nytorv", "sbt_", "password"):
            assert secret not in payload
    assert world.client.get("/api/v1/open/municipalities/9999/bins.csv").status_code == 404

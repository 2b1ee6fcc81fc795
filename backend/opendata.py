"""Open data: bins and their current state as CSV, GeoJSON and NGSI-LD (FIWARE
WasteContainer, keyValues form), with the licence stated in the payload and no personal data
(no device ids, tokens or addresses of people: only the bin, its place and its state).

NGSI-LD: ``fillingLevel`` is 0..1; FIWARE's ``storedWasteKind`` cannot name all Danish
fractions, so our stream code is kept in ``wasteStream`` and ``storedWasteCode`` carries the EU
List of Waste code where one is known.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from backend.settings import OpenDataSettings
from smartbins.codes import FRACTIONS
from smartbins.registry import CONTAINER_TYPES

NGSI_LD_CONTEXT = [
    "https://smart-data-models.github.io/dataModel.WasteManagement/context.jsonld",
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.7.jsonld",
]
#: EU List of Waste codes of combined streams (single fractions: smartbins.codes).
COMBINED_EWC = {
    "paper+cardboard": "20 01 01",
    "glass+metal": "15 01 06",
    "metal+plastic": "15 01 06",
    "plastic+cartons": "15 01 06",
    "metal+plastic+cartons": "15 01 06",
}
#: Our fractions in FIWARE's storedWasteKind enum, where one fits.
WASTE_KIND = {
    "food": "organic",
    "paper": "paper",
    "cardboard": "paper",
    "paper+cardboard": "paper",
    "glass": "glass",
    "metal": "metal",
    "plastic": "plastic",
    "hazardous": "hazardous",
}
CSV_COLUMNS = (
    "bin_id",
    "stream",
    "ewc_code",
    "container_type",
    "volume_l",
    "area",
    "lat",
    "lon",
    "fill_pct",
    "temp_c",
    "last_seen",
    "status",
)


def ewc_code(stream: str) -> str | None:
    if stream in FRACTIONS:
        return FRACTIONS[stream].ewc
    return COMBINED_EWC.get(stream)


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(flags: list[str], seen: bool) -> str:
    if "fire" in flags:
        return "burning"
    if "tilt" in flags:
        return "dropped"
    return "ok" if seen else "unknown"


def rows(bins: list[Any], states: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One open row per bin: registry facts and the current state, nothing else."""
    out = []
    for b in bins:
        s = states.get(b.id, {})
        out.append(
            {
                "bin_id": b.id,
                "stream": b.stream,
                "ewc_code": ewc_code(b.stream),
                "container_type": b.container_type,
                "volume_l": b.volume_l,
                "area": b.area,
                "lat": b.lat,
                "lon": b.lon,
                "fill_pct": s.get("fill_pct"),
                "temp_c": s.get("temp_c"),
                "last_seen": _iso(s.get("last_seen_ms")),
                "status": status(s.get("flags", []), s.get("last_seen_ms") is not None),
            }
        )
    return out


def licence_line(o: OpenDataSettings) -> str:
    return f"{o.licence} ({o.licence_url}), {o.publisher}"


def to_csv(municipality_id: str, data: list[dict[str, Any]], o: OpenDataSettings) -> str:
    buf = io.StringIO()
    buf.write(
        f"# smartbins open data, municipality {municipality_id}; licence: {licence_line(o)}\n"
    )
    w = csv.DictWriter(buf, CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in data:
        w.writerow({k: "" if r[k] is None else r[k] for k in CSV_COLUMNS})
    return buf.getvalue()


def to_geojson(
    municipality_id: str, data: list[dict[str, Any]], o: OpenDataSettings
) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "license": o.licence,
        "license_url": o.licence_url,
        "attribution": o.publisher,
        "municipality": municipality_id,
        "features": [
            {
                "type": "Feature",
                "id": r["bin_id"],
                "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
                "properties": {k: v for k, v in r.items() if k not in ("lat", "lon")},
            }
            for r in data
        ],
    }


def to_ngsi_ld(
    municipality_id: str, data: list[dict[str, Any]], o: OpenDataSettings
) -> list[dict[str, Any]]:
    out = []
    for r in data:
        e: dict[str, Any] = {
            "id": f"urn:ngsi-ld:WasteContainer:{municipality_id}:{r['bin_id']}",
            "type": "WasteContainer",
            "location": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
            "category": [CONTAINER_TYPES.get(r["container_type"], "other")],
            "binCapacity": r["volume_l"],
            "wasteStream": r["stream"],
            "storedWasteOrigin": "household",
            "status": r["status"],
            "dataProvider": o.publisher,
            "license": o.licence_url,
            "@context": NGSI_LD_CONTEXT,
        }
        if r["stream"] in WASTE_KIND:
            e["storedWasteKind"] = WASTE_KIND[r["stream"]]
        if r["ewc_code"]:
            e["storedWasteCode"] = r["ewc_code"]
        if r["area"]:
            e["areaServed"] = r["area"]
        if r["fill_pct"] is not None:
            e["fillingLevel"] = round(min(max(r["fill_pct"] / 100.0, 0.0), 1.0), 4)
        if r["temp_c"] is not None:
            e["temperature"] = r["temp_c"]
        if r["last_seen"]:
            e["dateModified"] = r["last_seen"]
        out.append(e)
    return out

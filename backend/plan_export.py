"""A plan document in the forms people and other systems read: GeoJSON (stops and each truck's
route as a line), a printable route sheet per truck (HTML with print CSS, and plain text), and
the collection-schedule CSV the simulator replays (``bin_id,time,truck``; simulator/
collections.py reads it). Pure functions of the document; the CLI writes the files."""

from __future__ import annotations

import datetime as dt
import html
import zoneinfo
from typing import Any

TIMEZONE = zoneinfo.ZoneInfo("Europe/Copenhagen")


def _local(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, TIMEZONE).strftime("%H:%M")


def _utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_geojson(doc: dict[str, Any]) -> dict[str, Any]:
    """Every stop as a Point and every truck's route as a LineString (depot to depot)."""
    features: list[dict[str, Any]] = []
    for t in doc["trucks"]:
        coords = [[s["lon"], s["lat"]] for s in t["stops"]]
        features.append({
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": coords},
            "properties": {"truck_id": t["truck_id"], "km": t["km"],
                           "duration_s": t["duration_s"], "disposal_trips": t["disposal_trips"]},
        })
        for s in t["stops"]:
            features.append({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
                "properties": {
                    "truck_id": t["truck_id"], "index": s["index"], "kind": s["kind"],
                    "address": s["address"], "eta": _utc(s["eta_ms"]) if s.get("eta_ms") else None,
                    "bins": [b["bin_id"] for b in s.get("bins", [])],
                },
            })
    for s in doc.get("skipped", []):
        if s.get("lat") is None:
            continue
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
            "properties": {"skipped": True, "bin_id": s["bin_id"], "stream": s["stream"],
                           "overflow_probability": s["overflow_probability"],
                           "reason": s.get("reason", "")},
        })
    return {"type": "FeatureCollection", "features": features,
            "properties": {"date": doc["date"], "stream": doc.get("stream")}}


def _rows(t: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(n, time, address, what, expected fill) per stop, in order."""
    out = []
    for n, s in enumerate(t["stops"], 1):
        if s["kind"] == "bin":
            what = ", ".join(f"{b['bin_id']} ({b['stream']}, {b.get('volume_l') or '?'} L)"
                             for b in s["bins"])
            fill = ", ".join(f"{b['expected_fill_pct']:.0f} %" for b in s["bins"]
                             if b.get("expected_fill_pct") is not None)
        else:
            what = "unload: " + ", ".join(s.get("streams", []))
            fill = ""
        out.append((str(n), _local(s.get("eta_ms")), s["address"], what, fill))
    return out


def _head(doc: dict[str, Any], t: dict[str, Any]) -> str:
    return (f"{t['name']} ({t['truck_id']}), {doc['date']}, {doc.get('stream') or 'all streams'}"
            f": {len(t['stops'])} stops, {t['km']:.1f} km, {t['duration_s'] / 3600:.1f} h, "
            f"{t['disposal_trips']} disposal trips, start {_local(t.get('start_ms'))}")


def route_sheet_text(doc: dict[str, Any], t: dict[str, Any]) -> str:
    rows = [("#", "time", "address", "what", "expected"), *_rows(t)]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [_head(doc, t), ""]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    return "\n".join(lines) + "\n"


def route_sheet_html(doc: dict[str, Any], t: dict[str, Any]) -> str:
    """One truck's sheet: a table readable on a phone, printable on A4 (print CSS)."""
    e = html.escape
    body = "".join(
        "<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + '<td class="done">☐</td></tr>'
        for r in _rows(t)
    )
    return f"""<!doctype html>
<html lang="da"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(t['truck_id'])} {e(doc['date'])}</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 1rem; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #ccc; padding: .4rem; text-align: left; vertical-align: top; }}
td.done {{ font-size: 1.3rem; }}
@media print {{ body {{ margin: 0; font-size: 11pt; }} tr {{ break-inside: avoid; }} }}
</style></head><body>
<h1>{e(_head(doc, t))}</h1>
<table><thead><tr><th>#</th><th>time</th><th>address</th><th>what</th><th>expected</th>
<th>done</th></tr></thead><tbody>{body}</tbody></table>
</body></html>
"""


def schedule_rows(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(bin_id, time, truck)`` per bin emptied, sorted by time (the simulator's format)."""
    rows = [
        (s["eta_ms"], b["bin_id"], t["truck_id"])
        for t in doc["trucks"] for s in t["stops"] if s["kind"] == "bin"
        for b in s["bins"]
    ]
    rows.sort()
    return [(b, _utc(ms), truck) for ms, b, truck in rows]

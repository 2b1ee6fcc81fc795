"""Bulk import of bins from CSV or GeoJSON: all or nothing, with a report naming each bad row
and field.

CSV: a header, then one bin per row with the columns ``id, stream, volume_l`` and either
``site_id`` (an existing site) or ``lat, lon`` (a new site of the same id as the bin is made),
optionally ``container_type, full_pct, area, name, address``. GeoJSON: a FeatureCollection of
Point features whose properties carry the same names (the point is the site's location).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from smartbins import assets
from smartbins.registry import Registry, RegistryError

MAX_ROWS = 50_000
COLUMNS = (
    "id",
    "site_id",
    "lat",
    "lon",
    "stream",
    "volume_l",
    "container_type",
    "full_pct",
    "area",
    "name",
    "address",
)
_FIELD_IN_MESSAGE = re.compile(r"\b(" + "|".join(COLUMNS) + r")\b")


@dataclass(frozen=True)
class Problem:
    row: int
    field: str
    problem: str


class ImportFailed(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s); nothing imported")
        self.problems = problems


def parse_csv(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise ImportFailed([Problem(0, "header", "the file is empty: a header row is needed")])
    unknown = [c for c in reader.fieldnames if c not in COLUMNS]
    if unknown:
        raise ImportFailed(
            [Problem(0, c, f"unknown column (known: {', '.join(COLUMNS)})") for c in unknown]
        )
    rows = []
    for row in reader:
        if None in row:
            rows.append({"__extra__": True})
            continue
        rows.append({k: v for k, v in row.items() if v not in (None, "")})
        if len(rows) > MAX_ROWS:
            raise ImportFailed([Problem(len(rows), "row", f"more than {MAX_ROWS} rows")])
    return rows


def parse_geojson(text: str) -> list[dict[str, Any]]:
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ImportFailed([Problem(0, "body", f"not JSON: {e}")]) from None
    if (
        not isinstance(doc, dict)
        or doc.get("type") != "FeatureCollection"
        or not isinstance(doc.get("features"), list)
    ):
        raise ImportFailed([Problem(0, "type", "must be a GeoJSON FeatureCollection")])
    if len(doc["features"]) > MAX_ROWS:
        raise ImportFailed([Problem(0, "features", f"more than {MAX_ROWS} features")])
    rows: list[dict[str, Any]] = []
    for f in doc["features"]:
        geom = f.get("geometry") if isinstance(f, dict) else None
        props = f.get("properties") if isinstance(f, dict) else None
        row: dict[str, Any] = dict(props) if isinstance(props, dict) else {}
        if isinstance(geom, dict) and geom.get("type") == "Point":
            coords = geom.get("coordinates")
            if isinstance(coords, list) and len(coords) >= 2:
                row["lon"], row["lat"] = coords[0], coords[1]
            else:
                row["__geometry__"] = True
        else:
            row["__geometry__"] = True
        rows.append(row)
    return rows


def _number(row: dict[str, Any], key: str) -> float | None:
    v = row.get(key)
    if v is None:
        return None
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a number")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{v!r} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{v!r} is not a finite number")
    return x


def _row_problems(n: int, row: dict[str, Any]) -> tuple[list[Problem], dict[str, Any]]:
    problems: list[Problem] = []
    if row.get("__extra__"):
        return [Problem(n, "row", "more values than columns")], {}
    if row.get("__geometry__"):
        problems.append(Problem(n, "geometry", "must be a Point with [lon, lat]"))
    unknown = [k for k in row if k not in COLUMNS and not k.startswith("__")]
    problems += [Problem(n, k, "unknown property") for k in unknown]
    clean: dict[str, Any] = {}
    for key in ("lat", "lon", "volume_l", "full_pct"):
        try:
            clean[key] = _number(row, key)
        except ValueError as e:
            problems.append(Problem(n, key, str(e)))
    for key in ("id", "site_id", "stream", "container_type", "area", "name", "address"):
        v = row.get(key)
        if v is not None and not isinstance(v, str):
            problems.append(Problem(n, key, f"{v!r} is not text"))
        clean[key] = v
    for key in ("id", "stream", "volume_l"):
        if clean.get(key) is None and key not in {p.field for p in problems}:
            problems.append(Problem(n, key, "missing"))
    located = clean.get("lat") is not None and clean.get("lon") is not None
    if clean.get("site_id") is None and not located and not row.get("__geometry__"):
        problems.append(Problem(n, "site_id", "missing: give site_id, or lat and lon"))
    return problems, clean


def import_bins(reg: Registry, municipality_id: str, rows: list[dict[str, Any]]) -> int:
    """Add every row's bin (and its new site), or none: ImportFailed lists every bad row."""
    problems: list[Problem] = []
    parsed = []
    for n, row in enumerate(rows, 1):
        p, clean = _row_problems(n, row)
        problems += p
        parsed.append((n, clean))
    if problems:
        raise ImportFailed(problems)
    seen: set[str] = set()
    try:
        with reg.transaction():
            for n, r in parsed:
                if r["id"] in seen:
                    problems.append(Problem(n, "id", f"bin {r['id']!r} is listed twice"))
                    continue
                seen.add(r["id"])
                try:
                    site_id = r.get("site_id")
                    if site_id is None:
                        site_id = r["id"]
                        assets.add_site(
                            reg,
                            municipality_id,
                            site_id,
                            r["lat"],
                            r["lon"],
                            r.get("name") or "",
                            r.get("address") or "",
                        )
                    new = assets.NewBin(
                        r["id"],
                        site_id,
                        r["stream"],
                        r["volume_l"],
                        r.get("container_type") or "wheelie",
                        r["full_pct"] if r.get("full_pct") is not None else 90.0,
                        r.get("area") or "",
                    )
                    assets.add_bins(reg, municipality_id, [new])
                except RegistryError as e:
                    m = _FIELD_IN_MESSAGE.search(str(e).split(":", 1)[-1])
                    problems.append(Problem(n, m.group(1) if m else "id", str(e)))
            if problems:
                raise ImportFailed(problems)
    except ImportFailed:
        raise
    return len(parsed)

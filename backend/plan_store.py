"""Stored plans: one JSON document per plan (a municipality's routes for a date and a stream),
and the driver's "stop done" marks recorded in it.

The table (registry migration 9) lives in the registry's database and holds the plan as the
planning service makes it and the dashboard reads it (``docs/dashboard.md``, "The plan
document"). A
mark is a read-modify-write of one row inside one ``BEGIN IMMEDIATE`` transaction, so two
drivers marking stops at once both land.
"""

from __future__ import annotations

import json
from typing import Any

from smartbins.registry import NotFoundError, Registry, RegistryError, now_ms


def plan_id(municipality_id: str, date: str, stream: str | None) -> str:
    """A plan's id: one plan per municipality, date and stream (None: all streams)."""
    return f"{municipality_id}.{date}.{stream or 'all'}"


def check_refs(reg: Registry, municipality_id: str, plan: dict[str, Any]) -> None:
    """Every truck, bin, site, depot and disposal site a plan names is the municipality's own;
    RegistryError naming the first that is not."""

    def own(table: str, join: str, ids: set[str], field: str) -> None:
        if not ids:
            return
        rows = reg.db.execute(
            f"SELECT x.id FROM {table} x {join} WHERE o.municipality_id = ? AND x.id IN "
            f"({', '.join('?' * len(ids))})",
            (municipality_id, *sorted(ids)),
        ).fetchall()
        missing = sorted(ids - {r[0] for r in rows})
        if missing:
            raise RegistryError(f"{field}: no {table[:-1].replace('_', ' ')} {missing[0]!r}")

    trucks = plan["trucks"]
    stops = [s for t in trucks for s in t["stops"]]
    bins = {b["bin_id"] for s in stops for b in s.get("bins", [])}
    bins |= {s["bin_id"] for s in plan.get("skipped", [])} | set(plan.get("forecast", {}))
    own("trucks", "JOIN depots o ON o.id = x.depot_id", {t["truck_id"] for t in trucks},
        "trucks.truck_id")
    own("bins", "JOIN sites o ON o.id = x.site_id", bins, "bin_id")
    own("sites", "JOIN sites o ON o.id = x.id",
        {s["site_id"] for s in stops if s.get("site_id")}, "stops.site_id")
    own("depots", "JOIN depots o ON o.id = x.id",
        {t["depot_id"] for t in trucks if t.get("depot_id")}, "trucks.depot_id")
    own("disposal_sites", "JOIN disposal_sites o ON o.id = x.id",
        {s["disposal_site_id"] for s in stops if s.get("disposal_site_id")},
        "stops.disposal_site_id")


def save(reg: Registry, plan: dict[str, Any]) -> dict[str, Any]:
    """Store (or replace) a plan under :func:`plan_id`; ``plan`` is validated
    (routes/plans.py) and its references checked here."""
    check_refs(reg, plan["municipality_id"], plan)
    t = now_ms()
    id = plan_id(plan["municipality_id"], plan["date"], plan.get("stream"))
    plan = {**plan, "id": id, "updated_ms": t}
    with reg.transaction() as db:
        db.execute(
            """INSERT INTO plans VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(municipality_id, id) DO UPDATE SET date = excluded.date,
                 stream = excluded.stream, updated_ms = excluded.updated_ms,
                 body = excluded.body""",
            (
                plan["id"], plan["municipality_id"], plan["date"], plan.get("stream"),
                plan.get("created_ms") or t, t, json.dumps(plan, separators=(",", ":")),
            ),
        )
    return plan


def get(reg: Registry, municipality_id: str, id: str) -> dict[str, Any]:
    row = reg.db.execute(
        "SELECT body FROM plans WHERE id = ? AND municipality_id = ?", (id, municipality_id)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"plan_id: no plan {id!r}")
    return json.loads(row[0])  # type: ignore[no-any-return]


def for_date(
    reg: Registry, municipality_id: str, date: str | None, stream: str | None = None
) -> list[dict[str, Any]]:
    """The plans of a date (None: the newest 50 of any date), optionally of one stream."""
    sql = "SELECT body FROM plans WHERE municipality_id = ?"
    args: list[object] = [municipality_id]
    if date is not None:
        sql += " AND date = ?"
        args.append(date)
    if stream is not None:
        sql += " AND stream = ?"
        args.append(stream)
    rows = reg.db.execute(sql + " ORDER BY date DESC, id LIMIT 50", args)
    return [json.loads(r[0]) for r in rows]


def next_collection(
    reg: Registry, municipality_id: str, from_date: str, stream: str | None = None
) -> list[dict[str, Any]]:
    """The plans of the first date on or after ``from_date`` on which a truck goes out (a plan
    of that date has a route), optionally of one stream; [] when none is stored. Every plan of
    that date comes back, a stream's quiet one too: it says when that stream goes next."""
    sql = ("SELECT MIN(date) FROM plans WHERE municipality_id = ? AND date >= ?"
           " AND json_array_length(body, '$.trucks') > 0")
    args: list[object] = [municipality_id, from_date]
    if stream is not None:
        sql += " AND stream = ?"
        args.append(stream)
    (date,) = reg.db.execute(sql, args).fetchone()
    return [] if date is None else for_date(reg, municipality_id, date, stream)


def mark_stop(
    reg: Registry,
    municipality_id: str,
    id: str,
    truck_id: str,
    index: int,
    done: bool,
    by: str,
    at_ms: int | None = None,
) -> dict[str, Any]:
    """Mark a truck's stop done (or not done again); returns the plan as stored."""
    t = at_ms if at_ms is not None else now_ms()
    with reg.transaction():
        plan = get(reg, municipality_id, id)
        truck = next((tr for tr in plan["trucks"] if tr["truck_id"] == truck_id), None)
        if truck is None:
            raise NotFoundError(f"truck_id: plan {id!r} has no truck {truck_id!r}")
        stop = next((s for s in truck["stops"] if s["index"] == index), None)
        if stop is None:
            raise NotFoundError(f"index: truck {truck_id!r} has no stop {index}")
        if stop["kind"] != "bin":
            raise RegistryError(f"index: stop {index} is a {stop['kind']} visit, not a bin stop")
        stop["done_ms"] = t if done else None
        stop["done_by"] = by if done else None
        plan["updated_ms"] = t
        reg.db.execute(
            "UPDATE plans SET body = ?, updated_ms = ? WHERE municipality_id = ? AND id = ?",
            (json.dumps(plan, separators=(",", ":")), t, municipality_id, id),
        )
    return plan

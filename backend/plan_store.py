"""Stored plans: one JSON document per plan (a municipality's routes for a date and a stream),
and the driver's "stop done" marks recorded in it.

Provisional home for the plans until the planning service (issue 14) stores its own: the table
lives in the registry's database, created on first use (``CREATE TABLE IF NOT EXISTS``), and
holds the plan as the dashboard reads it (``docs/dashboard.md``, "The plan document"). A
mark is a read-modify-write of one row inside one ``BEGIN IMMEDIATE`` transaction, so two
drivers marking stops at once both land.
"""

from __future__ import annotations

import json
from typing import Any

from smartbins.registry import NotFoundError, Registry, RegistryError, now_ms

SCHEMA = """
CREATE TABLE IF NOT EXISTS plans (
    id              TEXT PRIMARY KEY,
    municipality_id TEXT NOT NULL REFERENCES municipalities(id),
    date            TEXT NOT NULL,
    stream          TEXT,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    body            TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS plans_date ON plans(municipality_id, date)
"""


def ensure_table(reg: Registry) -> None:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            reg.db.execute(statement)


def save(reg: Registry, plan: dict[str, Any]) -> dict[str, Any]:
    """Store (or replace) a plan; ``plan`` is already validated (routes/plans.py)."""
    ensure_table(reg)
    t = now_ms()
    plan = {**plan, "updated_ms": t}
    with reg.transaction() as db:
        db.execute(
            """INSERT INTO plans VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET municipality_id = excluded.municipality_id,
                 date = excluded.date, stream = excluded.stream, updated_ms = excluded.updated_ms,
                 body = excluded.body""",
            (
                plan["id"], plan["municipality_id"], plan["date"], plan.get("stream"),
                plan.get("created_ms") or t, t, json.dumps(plan, separators=(",", ":")),
            ),
        )
    return plan


def get(reg: Registry, municipality_id: str, plan_id: str) -> dict[str, Any]:
    ensure_table(reg)
    row = reg.db.execute(
        "SELECT body FROM plans WHERE id = ? AND municipality_id = ?", (plan_id, municipality_id)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"plan_id: no plan {plan_id!r}")
    return json.loads(row[0])  # type: ignore[no-any-return]


def for_date(
    reg: Registry, municipality_id: str, date: str, stream: str | None = None
) -> list[dict[str, Any]]:
    ensure_table(reg)
    sql = "SELECT body FROM plans WHERE municipality_id = ? AND date = ?"
    args: list[object] = [municipality_id, date]
    if stream is not None:
        sql += " AND stream = ?"
        args.append(stream)
    return [json.loads(r[0]) for r in reg.db.execute(sql + " ORDER BY id", args)]


def mark_stop(
    reg: Registry,
    municipality_id: str,
    plan_id: str,
    truck_id: str,
    index: int,
    done: bool,
    by: str,
    at_ms: int | None = None,
) -> dict[str, Any]:
    """Mark a truck's stop done (or not done again); returns the plan as stored."""
    ensure_table(reg)
    t = at_ms if at_ms is not None else now_ms()
    with reg.transaction():
        plan = get(reg, municipality_id, plan_id)
        truck = next((tr for tr in plan["trucks"] if tr["truck_id"] == truck_id), None)
        if truck is None:
            raise NotFoundError(f"truck_id: plan {plan_id!r} has no truck {truck_id!r}")
        stop = next((s for s in truck["stops"] if s["index"] == index), None)
        if stop is None:
            raise NotFoundError(f"index: truck {truck_id!r} has no stop {index}")
        if stop["kind"] != "bin":
            raise RegistryError(f"index: stop {index} is a {stop['kind']} visit, not a bin stop")
        stop["done_ms"] = t if done else None
        stop["done_by"] = by if done else None
        plan["updated_ms"] = t
        reg.db.execute(
            "UPDATE plans SET body = ?, updated_ms = ? WHERE id = ?",
            (json.dumps(plan, separators=(",", ":")), t, plan_id),
        )
    return plan

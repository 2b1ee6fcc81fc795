"""Plans: a municipality's routes for a date (and a stream), as the dashboard and the drivers'
route sheets read them, and the "stop done" marks drivers make.

The planning service makes plans (backend/planning.py, ``POST …/plans/generate``); a planner
may store one edited (``POST …/plans``). Either is kept by backend/plan_store.py, and the
document's shape is the contract (docs/dashboard.md, "The plan document").
Reading needs a viewer, storing a plan a planner, marking a stop a technician (the field role:
drivers and technicians work the street).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend import plan_store
from backend.deps import Planner as PlannerTenant
from backend.deps import RegistryDep, Technician, Viewer
from backend.planning import TIMEZONE
from backend.routes.common import ERRORS
from smartbins.codes import StreamError, parse_stream
from smartbins.registry import NotFoundError, RegistryError

router = APIRouter(prefix="/municipalities/{municipality_id}", responses=ERRORS, tags=["plans"])

PLAN_ID = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}$", description="the plan's id")
ID = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
DateText = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["2026-12-03"])]
Pct = Annotated[float, Field(ge=-100, le=1000)]
Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _stream(v: str) -> str:
    try:
        return parse_stream(v)
    except StreamError as e:
        raise ValueError(str(e)) from None


class StopBin(_Strict):
    bin_id: str
    stream: str
    volume_l: float | None = None
    expected_fill_pct: Pct | None = None

    @model_validator(mode="after")
    def _canonical(self) -> StopBin:
        self.stream = _stream(self.stream)
        return self


class Stop(_Strict):
    index: Annotated[int, Field(ge=0)]
    kind: Literal["bin", "disposal", "depot"]
    site_id: str | None = None
    disposal_site_id: str | None = None
    depot_id: str | None = None
    name: str = ""
    address: str = ""
    lat: Lat
    lon: Lon
    eta_ms: int | None = None
    bins: list[StopBin] = []
    streams: list[str] = []
    done_ms: int | None = None
    done_by: str | None = None


class TruckRoute(_Strict):
    truck_id: str
    name: str = ""
    depot_id: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    km: Annotated[float, Field(ge=0)]
    duration_s: Annotated[float, Field(ge=0)]
    load_l: dict[str, float] = {}
    capacity_l: dict[str, float] = {}
    disposal_trips: Annotated[int, Field(ge=0)] = 0
    stops: list[Stop]

    @model_validator(mode="after")
    def _indices(self) -> TruckRoute:
        seen = [s.index for s in self.stops]
        if len(set(seen)) != len(seen):
            raise ValueError(f"stops: truck {self.truck_id!r} repeats a stop index")
        return self


class Skipped(_Strict):
    bin_id: str
    site_id: str | None = None
    stream: str
    lat: Lat | None = None
    lon: Lon | None = None
    address: str = ""
    expected_fill_pct: Pct | None = None
    overflow_probability: Annotated[float, Field(ge=0, le=1)]
    reason: str = ""


class StreamTrip(_Strict):
    """Whether a stream goes out on the plan's date (the planning service's trips)."""

    trip: bool
    #: a trip takes what would be at risk before this many working days [d]
    lookahead_days: Annotated[int, Field(ge=1)]
    #: the working day of the stream's next collection after this one
    next_opportunity: DateText


class BinForecast(_Strict):
    fill_pct: Pct
    lo_pct: Pct | None = None
    hi_pct: Pct | None = None
    overflow_probability: Annotated[float, Field(ge=0, le=1)] | None = None
    at_ms: int | None = None


class PlanBody(_Strict):
    """What a planner (or the planning service) stores."""

    date: DateText
    stream: str | None = None
    created_ms: int | None = None
    source: str = ""
    trucks: list[TruckRoute]
    skipped: list[Skipped] = []
    forecast: dict[str, BinForecast] = {}
    #: the risk of overflowing before its next opportunity the plan accepts for a bin it
    #: leaves out (the planning service's ``max_risk``)
    max_risk: Annotated[float, Field(gt=0, lt=1)] | None = None
    #: per stream: whether it goes out today, and its next opportunity
    trips: dict[str, StreamTrip] = {}
    #: what the routing core's checker found wrong with the routes (empty: feasible)
    violations: list[str] = []

    @model_validator(mode="after")
    def _check(self) -> PlanBody:
        if self.stream is not None:
            self.stream = _stream(self.stream)
        ids = [t.truck_id for t in self.trucks]
        if len(set(ids)) != len(ids):
            raise ValueError("trucks: a truck appears twice")
        return self


class PlanPublic(PlanBody):
    id: str
    municipality_id: str
    updated_ms: int | None = None


def _404(e: NotFoundError) -> HTTPException:
    return HTTPException(404, str(e))


@router.get("/plans", response_model=list[PlanPublic])
def list_plans(
    t: Viewer,
    reg: RegistryDep,
    date: Annotated[
        str | None,
        Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD; default: the newest 50"),
    ] = None,
    stream: Annotated[str | None, Query(max_length=60)] = None,
) -> list[dict[str, Any]]:
    return plan_store.for_date(reg, t.municipality_id, _date_query(date, "date"),
                               _stream_query(stream))


def _date_query(value: str | None, field: str) -> str | None:
    """A YYYY-MM-DD query parameter that is a real date (2026-13-01 passes the pattern)."""
    if value is not None:
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise HTTPException(400, f"{field}: {value!r} is not a date") from None
    return value


def _stream_query(stream: str | None) -> str | None:
    if stream is None:
        return None
    try:
        return parse_stream(stream)
    except StreamError as e:
        raise HTTPException(400, f"stream: {e}") from None


@router.get("/plans/next", response_model=list[PlanPublic])
def next_collection(
    t: Viewer,
    reg: RegistryDep,
    from_date: Annotated[
        str | None,
        Query(alias="from", pattern=r"^\d{4}-\d{2}-\d{2}$",
              description="YYYY-MM-DD; default: today (the plans' time zone)"),
    ] = None,
    stream: Annotated[str | None, Query(max_length=60)] = None,
) -> list[dict[str, Any]]:
    """The next collection: the plans of the first date on or after ``from`` on which a truck
    goes out, each of that date's plans (a quiet stream's too); [] when no stored plan from
    ``from`` on has a route. A stream goes out only when one of its bins is due, so tomorrow
    may send no truck."""
    stream = _stream_query(stream)
    day = _date_query(from_date, "from") or dt.datetime.now(TIMEZONE).date().isoformat()
    return plan_store.next_collection(reg, t.municipality_id, day, stream)


@router.get("/plans/{plan_id}", response_model=PlanPublic)
def read_plan(
    plan_id: Annotated[str, PLAN_ID], t: Viewer, reg: RegistryDep
) -> dict[str, Any]:
    try:
        return plan_store.get(reg, t.municipality_id, plan_id)
    except NotFoundError as e:
        raise _404(e) from None


@router.post("/plans", response_model=PlanPublic, status_code=201)
def store_plan(body: PlanBody, t: PlannerTenant, reg: RegistryDep) -> dict[str, Any]:
    """Store a plan; its id is ``<municipality>.<date>.<stream>`` (``all``: all streams), and it
    replaces the plan stored before under that id. Every truck, bin, site, depot and disposal
    site it names must be this municipality's."""
    plan = {**body.model_dump(), "municipality_id": t.municipality_id}
    try:
        return plan_store.save(reg, plan)
    except RegistryError as e:
        raise HTTPException(400, str(e)) from None


def _mark(
    t: Any, reg: Any, plan_id: str, truck_id: str, index: int, done: bool
) -> dict[str, Any]:
    try:
        return plan_store.mark_stop(
            reg, t.municipality_id, plan_id, truck_id, index, done, by=t.token.name
        )
    except NotFoundError as e:
        raise _404(e) from None
    except RegistryError as e:
        raise HTTPException(400, str(e)) from None


@router.post("/plans/{plan_id}/trucks/{truck_id}/stops/{index}/done", response_model=PlanPublic)
def mark_stop_done(
    plan_id: Annotated[str, PLAN_ID],
    truck_id: Annotated[str, ID],
    index: Annotated[int, Path(ge=0, le=100_000)],
    t: Technician,
    reg: RegistryDep,
) -> dict[str, Any]:
    return _mark(t, reg, plan_id, truck_id, index, True)


@router.post("/plans/{plan_id}/trucks/{truck_id}/stops/{index}/undone", response_model=PlanPublic)
def mark_stop_undone(
    plan_id: Annotated[str, PLAN_ID],
    truck_id: Annotated[str, ID],
    index: Annotated[int, Path(ge=0, le=100_000)],
    t: Technician,
    reg: RegistryDep,
) -> dict[str, Any]:
    return _mark(t, reg, plan_id, truck_id, index, False)

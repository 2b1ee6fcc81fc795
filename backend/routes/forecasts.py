"""Forecasts and plan generation: every bin's expected level, band, time to full and overflow
risk; one bin's curve for its page; and `POST .../plans/generate`, which runs the planning
service (backend/planning.py) and stores the plan the dashboard reads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from backend import planning
from backend.deps import Planner, ReadingsDep, RegistryDep, SettingsDep, Viewer
from backend.forecasts import Forecasts, bin_outlook, bin_points
from backend.routes.common import ERRORS, get_bin
from backend.routes.plans import ID, DateText, PlanPublic
from smartbins.protocol import TS_MAX_MS
from smartbins.registry import RegistryError

router = APIRouter(prefix="/municipalities/{municipality_id}", tags=["forecasts"],
                   responses=ERRORS)


class BinOutlook(BaseModel):
    bin_id: str
    stream: str
    at_ms: int
    level_pct: float
    level_sd_pct: float
    rate_pct_day: float
    full_pct: float
    time_to_full_ms: int | None
    until_ms: int
    expected_pct_until: float
    lo_pct_until: float
    hi_pct_until: float
    overflow_probability: float = Field(ge=0, le=1)
    readings: int


class ForecastPoint(BaseModel):
    ts_ms: int
    fill_pct: float
    lo_pct: float
    hi_pct: float


class BinForecastPublic(BaseModel):
    """A bin's expected fill and its band (``band``: the central probability) every
    ``step_h`` hours; None and no points when it has no readings to forecast from."""

    bin_id: str
    at_ms: int
    level_pct: float | None
    rate_pct_day: float | None
    band: float
    overflow_probability: float | None = Field(None, ge=0, le=1)
    time_to_full_ms: int | None
    points: list[ForecastPoint]


class PlanGenerate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: DateText
    stream: str | None = Field(None, max_length=60)
    time_limit_s: float = Field(10.0, gt=0, le=120)
    seed: int = Field(1, ge=0, le=2**31 - 1)
    #: plan the first working day from ``date`` on that sends a truck out (a stream goes out
    #: only when one of its bins is due); every day planned on the way is stored
    next_collection: bool = False


def _forecasts(request: Request) -> Forecasts:
    return request.app.state.forecasts  # type: ignore[no-any-return]


UntilQ = Annotated[int | None, Query(ge=0, le=TS_MAX_MS,
                                     description="overflow before this time [ms]; default +24 h")]


@router.get("/forecasts", response_model=list[BinOutlook])
def list_forecasts(
    t: Viewer, reg: RegistryDep, readings: ReadingsDep, request: Request,
    stream: Annotated[str | None, Query(max_length=60)] = None,
    until_ms: UntilQ = None,
) -> list[dict[str, Any]]:
    try:
        snap = _forecasts(request).snapshot(reg, readings.query, t.municipality_id, stream)
    except RegistryError as e:
        raise HTTPException(400, str(e)) from None
    until = (until_ms / 1000) if until_ms is not None else snap.at_s + 86400
    out = [bin_outlook(snap, i, until) for i in range(len(snap.bins))]
    return [o for o in out if o is not None]


@router.get("/bins/{bin_id}/forecast", response_model=BinForecastPublic)
def bin_forecast(
    bin_id: Annotated[str, ID],
    t: Viewer, reg: RegistryDep, readings: ReadingsDep, request: Request,
    hours: Annotated[int, Query(ge=2, le=24 * 14, description="how far ahead [h]")] = 48,
    step_h: Annotated[int, Query(ge=1, le=24)] = 2,
) -> dict[str, Any]:
    """The bin's expected fill and band from now, the probability that it overflows within
    ``hours`` and when it reaches its full threshold (the forecaster is fitted on the
    municipality's readings of the bin's stream; kept a few minutes)."""
    b = get_bin(reg, t, bin_id)
    snap = _forecasts(request).snapshot(reg, readings.query, t.municipality_id, b.stream)
    i = next((k for k, x in enumerate(snap.bins) if x.id == b.id), None)
    if i is None:  # retired: nothing to forecast
        return {"bin_id": b.id, "at_ms": snap.at_s * 1000, "level_pct": None,
                "rate_pct_day": None, "band": 0.8, "overflow_probability": None,
                "time_to_full_ms": None, "points": []}
    return bin_points(snap, i, hours, step_h)


@router.post("/plans/generate", response_model=PlanPublic, status_code=201)
def generate_plan(
    body: PlanGenerate, t: Planner, reg: RegistryDep, readings: ReadingsDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Forecast, select and route a day for the municipality (one stream, or every stream the
    trucks carry), store the plan (replacing that day's), raise a forecast-overflow alert for
    each bin it leaves out that will probably overflow first, and return it. With
    ``next_collection``, the first working day from ``date`` on that sends a truck out."""
    req = planning.PlanRequest(t.municipality_id, body.date, body.stream,
                               time_limit_s=body.time_limit_s, seed=body.seed)
    try:
        return planning.plan_and_store(reg, readings.query, req,
                                       channels=settings.alerts.channels,
                                       next_collection=body.next_collection)
    except RegistryError as e:
        raise HTTPException(400, str(e)) from None

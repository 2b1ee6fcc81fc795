"""A bin's fill forecast (backend/forecasts.py: the forecaster of routing/forecast.py), for the
dashboard's bin page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from backend import emptyings, forecasts
from backend.deps import ReadingsDep, RegistryDep, Viewer
from backend.routes.common import ERRORS, get_bin
from smartbins.registry import now_ms

router = APIRouter(prefix="/municipalities/{municipality_id}", tags=["readings"], responses=ERRORS)


class ForecastPoint(BaseModel):
    ts_ms: int
    fill_pct: float | None
    lo_pct: float | None
    hi_pct: float | None


class BinForecastPublic(BaseModel):
    bin_id: str
    at_ms: int
    level_pct: float | None
    rate_pct_day: float | None
    band: float
    overflow_probability: float | None
    points: list[ForecastPoint]


@router.get("/bins/{bin_id}/forecast", response_model=BinForecastPublic)
def bin_forecast(
    bin_id: str,
    t: Viewer,
    reg: RegistryDep,
    rd: ReadingsDep,
    hours: Annotated[int, Query(ge=2, le=14 * 24, description="how far ahead [h]")] = 48,
) -> JSONResponse:
    """The bin's expected fill and its band (``band``: the central probability) every 2 hours
    from now, and the probability that it overflows within ``hours``. Fitted on the
    municipality's last 28 days of readings at each call."""
    get_bin(reg, t, bin_id)
    now = now_ms()
    series = rd.query(emptyings.hourly_query(now - forecasts.HISTORY_DAYS * 86_400_000, now))
    cf = forecasts.city_forecast(reg, series, t.municipality_id, now)
    return JSONResponse(forecasts.bin_outlook(cf, bin_id, now, hours))

"""Emptyings detected in a municipality's readings (backend/emptyings.py), for the charts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from backend import emptyings
from backend.deps import ReadingsDep, RegistryDep, Viewer
from backend.routes.common import ERRORS
from smartbins.registry import now_ms

router = APIRouter(prefix="/municipalities/{municipality_id}", tags=["readings"], responses=ERRORS)
MAX_RANGE_MS = 92 * 86_400_000
TimeQ = Annotated[int | None, Query(ge=0, le=4_102_444_800_000, description="[ms] UTC")]


class EmptyingPublic(BaseModel):
    bin_id: str
    stream: str
    device_id: str
    time_ms: int
    fill_before_pct: float
    fill_after_pct: float


@router.get("/emptyings", response_model=list[EmptyingPublic])
def list_emptyings(
    t: Viewer, reg: RegistryDep, rd: ReadingsDep, start_ms: TimeQ = None, end_ms: TimeQ = None
) -> list[emptyings.Emptying]:
    """Emptyings detected from the readings in [start_ms, end_ms) (default: the last 14 days):
    a fall of the hourly fill by 30 points or more."""
    end = end_ms if end_ms is not None else now_ms()
    start = start_ms if start_ms is not None else end - 14 * 86_400_000
    if end <= start:
        raise HTTPException(400, f"end_ms: {end} must be after start_ms {start}")
    if end - start > MAX_RANGE_MS:
        raise HTTPException(400, "end_ms: the range is longer than 92 days")
    series = rd.query(emptyings.hourly_max_query(start, end))
    return emptyings.detect(reg, series, t.municipality_id)

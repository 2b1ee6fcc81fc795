"""Emptyings detected in a municipality's readings (backend/emptyings.py), for the charts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from backend import emptyings
from backend.deps import ReadingsDep, RegistryDep, Viewer
from backend.routes.common import ERRORS, get_bin
from smartbins import assets
from smartbins.registry import now_ms

router = APIRouter(prefix="/municipalities/{municipality_id}", tags=["readings"], responses=ERRORS)
MAX_RANGE_MS = 92 * 86_400_000
TimeQ = Annotated[int | None, Query(ge=0, le=4_102_444_800_000, description="[ms] UTC")]


class EmptyingPublic(BaseModel):
    bin_id: str
    stream: str
    device_id: str
    time_ms: int
    fill_before_pct: float | None
    fill_after_pct: float | None


@router.get("/emptyings", response_model=list[EmptyingPublic])
def list_emptyings(
    t: Viewer,
    reg: RegistryDep,
    rd: ReadingsDep,
    start_ms: TimeQ = None,
    end_ms: TimeQ = None,
    bin_id: Annotated[
        str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$", description="one bin")
    ] = None,
) -> list[emptyings.Emptying]:
    """Emptyings detected from the readings in [start_ms, end_ms) (default: the last 14 days)
    by the forecaster's detection (cleaned hourly levels; a fall of the level)."""
    end = end_ms if end_ms is not None else now_ms()
    start = start_ms if start_ms is not None else end - 14 * 86_400_000
    if end <= start:
        raise HTTPException(400, f"end_ms: {end} must be after start_ms {start}")
    if end - start > MAX_RANGE_MS:
        raise HTTPException(400, "end_ms: the range is longer than 92 days")
    devices = None
    if bin_id is not None:
        b = get_bin(reg, t, bin_id)  # 404 unless the municipality's
        devices = [d for d, _f, _t in assets.bin_devices(reg, b.id)]
        if not devices:
            return []
    series = rd.query(emptyings.hourly_query(start, end, devices))
    found = emptyings.detect(reg, series, t.municipality_id, end)
    return [e for e in found if bin_id is None or e.bin_id == bin_id]

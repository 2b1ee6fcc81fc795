"""Fleet health for technicians: every device's condition and the devices to visit, worst
first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from backend import fleet, schemas
from backend.deps import ReadingsDep, RegistryDep, SettingsDep, Viewer
from backend.routes.common import ERRORS
from smartbins.registry import now_ms

router = APIRouter(prefix="/municipalities/{municipality_id}", tags=["fleet"], responses=ERRORS)


@router.get("/fleet", response_model=list[schemas.DeviceHealth])
def fleet_health(
    t: Viewer,
    reg: RegistryDep,
    rd: ReadingsDep,
    settings: SettingsDep,
    days: Annotated[int, Query(ge=1, le=90, description="window for trends and counts [d]")] = 7,
) -> JSONResponse:
    """Each device's battery and trend, signal, last seen, reboots, backlog, firmware, sensor
    faults and dead letters by reason; sorted by visit priority, worst first."""
    rows = fleet.fleet_health(
        reg, rd, t.municipality_id, now_ms=now_ms(), days=days,
        status_path=settings.registry.status_path,
    )
    return JSONResponse(rows)

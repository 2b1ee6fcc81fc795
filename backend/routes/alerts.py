"""Alerts of a municipality: list and read (with their history), acknowledge and resolve."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from backend import alerts, schemas
from backend.deps import RegistryDep, Technician, Tenant, Viewer
from backend.routes.common import ERRORS, not_here
from smartbins.registry import NotFoundError, Registry

router = APIRouter(prefix="/municipalities/{municipality_id}", tags=["alerts"], responses=ERRORS)
AlertId = Annotated[int, Path(ge=1, le=2**62)]


def _public(reg: Registry, a: alerts.Alert) -> schemas.AlertPublic:
    return schemas.AlertPublic(**a.__dict__, history=alerts.history(reg, a.id))


def _get(reg: Registry, t: Tenant, alert_id: int) -> alerts.Alert:
    try:
        a = alerts.alert(reg, alert_id)
    except NotFoundError:
        raise not_here("alert_id", str(alert_id)) from None
    if a.municipality_id != t.municipality_id:
        raise not_here("alert_id", str(alert_id))
    return a


@router.get("/alerts", response_model=list[schemas.AlertPublic])
def list_alerts(
    t: Viewer,
    reg: RegistryDep,
    state: Annotated[Literal["open", "acknowledged", "resolved"] | None, Query()] = None,
    kind: Annotated[
        Literal["full", "fire", "tilt", "low_battery", "offline", "sensor_fault",
                "forecast_overflow"] | None,
        Query(),
    ] = None,
) -> list[schemas.AlertPublic]:
    """Newest first (at most 1,000)."""
    return [_public(reg, a) for a in alerts.alerts(reg, t.municipality_id, state, kind)]


@router.get("/alerts/{alert_id}", response_model=schemas.AlertPublic)
def read_alert(alert_id: AlertId, t: Viewer, reg: RegistryDep) -> schemas.AlertPublic:
    return _public(reg, _get(reg, t, alert_id))


@router.post("/alerts/{alert_id}/acknowledge", response_model=schemas.AlertPublic)
def acknowledge_alert(
    alert_id: AlertId, t: Technician, reg: RegistryDep
) -> schemas.AlertPublic:
    _get(reg, t, alert_id)
    return _public(reg, alerts.set_state(reg, alert_id, "acknowledged", f"token:{t.token.id}"))


@router.post("/alerts/{alert_id}/resolve", response_model=schemas.AlertPublic)
def resolve_alert(alert_id: AlertId, t: Technician, reg: RegistryDep) -> schemas.AlertPublic:
    _get(reg, t, alert_id)
    return _public(reg, alerts.set_state(reg, alert_id, "resolved", f"token:{t.token.id}"))

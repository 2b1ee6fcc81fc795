"""Open data, no token needed: bins and their current state as CSV, GeoJSON and NGSI-LD."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import JSONResponse, Response

from backend import opendata, readings, schemas
from backend.deps import ReadingsDep, RegistryDep, SettingsDep
from backend.routes.common import ERRORS
from smartbins import assets

router = APIRouter(prefix="/open", tags=["open data"], responses={404: ERRORS[404]})
MunicipalityId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


def _rows(reg: Any, rd: Any, municipality_id: str) -> list[dict[str, Any]]:
    try:
        assets.municipality(reg, municipality_id)
    except assets.NotFoundError:
        raise HTTPException(404, f"municipality_id: no municipality {municipality_id!r}") from None
    states = {s["bin_id"]: s for s in readings.bin_states(reg, rd, municipality_id)}
    return opendata.rows(assets.bins(reg, municipality_id), states)


@router.get("/municipalities", response_model=list[schemas.MunicipalityPublic])
def open_municipalities(reg: RegistryDep) -> list[assets.Municipality]:
    return assets.municipalities(reg)


@router.get(
    "/municipalities/{municipality_id}/bins.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def bins_csv(
    municipality_id: MunicipalityId, reg: RegistryDep, rd: ReadingsDep, s: SettingsDep
) -> Response:
    text = opendata.to_csv(municipality_id, _rows(reg, rd, municipality_id), s.open_data)
    return Response(text, media_type="text/csv; charset=utf-8")


@router.get(
    "/municipalities/{municipality_id}/bins.geojson",
    responses={200: {"content": {"application/geo+json": {"schema": {"type": "object"}}}}},
)
def bins_geojson(
    municipality_id: MunicipalityId, reg: RegistryDep, rd: ReadingsDep, s: SettingsDep
) -> JSONResponse:
    doc = opendata.to_geojson(municipality_id, _rows(reg, rd, municipality_id), s.open_data)
    return JSONResponse(doc, media_type="application/geo+json")


@router.get(
    "/municipalities/{municipality_id}/bins.jsonld",
    responses={200: {"content": {"application/ld+json": {"schema": {"type": "array"}}}}},
)
def bins_ngsi_ld(
    municipality_id: MunicipalityId, reg: RegistryDep, rd: ReadingsDep, s: SettingsDep
) -> JSONResponse:
    """FIWARE WasteContainer entities (NGSI-LD, keyValues form)."""
    doc = opendata.to_ngsi_ld(municipality_id, _rows(reg, rd, municipality_id), s.open_data)
    return JSONResponse(doc, media_type="application/ld+json")

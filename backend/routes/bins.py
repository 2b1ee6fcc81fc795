"""Bins: CRUD, bulk import, the latest state of every bin, and one bin's history."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from backend import imports, readings, schemas
from backend.deps import Planner, ReadingsDep, RegistryDep, Viewer
from backend.routes.common import ERRORS, bin_public, get_bin
from smartbins import assets
from smartbins.protocol import TS_MAX_MS

router = APIRouter(prefix="/municipalities/{municipality_id}", tags=["bins"], responses=ERRORS)

StreamQ = Annotated[str | None, Query(max_length=60, description="only bins of this stream")]
AreaQ = Annotated[
    str | None,
    Query(max_length=100, pattern=schemas.AREA_PATTERN, description="only bins of this area"),
]
TimeQ = Annotated[int | None, Query(ge=0, le=TS_MAX_MS, description="[ms since the epoch]")]


@router.get("/bins", response_model=list[schemas.BinPublic])
def list_bins(
    t: Viewer,
    reg: RegistryDep,
    stream: StreamQ = None,
    area: AreaQ = None,
    include_retired: bool = False,
) -> list[schemas.BinPublic]:
    rows = assets.bins(
        reg, t.municipality_id, stream=stream, area=area, include_retired=include_retired
    )
    on = assets.current_devices(reg, t.municipality_id)
    return [
        schemas.BinPublic(**b.__dict__, device_id=on[b.id][0] if b.id in on else None) for b in rows
    ]


@router.post("/bins", response_model=schemas.BinPublic, status_code=201)
def create_bin(body: schemas.BinCreate, t: Planner, reg: RegistryDep) -> schemas.BinPublic:
    (b,) = assets.add_bins(reg, t.municipality_id, [assets.NewBin(**body.model_dump())])
    return bin_public(reg, b)


@router.post(
    "/bins/import",
    response_model=schemas.ImportReport,
    responses={400: {"model": schemas.ImportReport, "description": "nothing imported: why"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/geo+json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def import_bins(
    request: Request,
    t: Planner,
    reg: RegistryDep,
    format: Annotated[Literal["csv", "geojson"], Query(description="the body's format")] = "csv",
) -> JSONResponse:
    body = await request.body()
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _report(0, [imports.Problem(0, "body", "not UTF-8 text")])
    try:
        rows = imports.parse_csv(text) if format == "csv" else imports.parse_geojson(text)
        n = imports.import_bins(reg, t.municipality_id, rows)
    except imports.ImportFailed as e:
        return _report(0, e.problems)
    return _report(n, [])


def _report(n: int, problems: list[imports.Problem]) -> JSONResponse:
    report = schemas.ImportReport(
        imported=n, problems=[schemas.ImportProblem(**p.__dict__) for p in problems]
    )
    return JSONResponse(report.model_dump(), status_code=400 if problems else 200)


@router.get("/bins/{bin_id}", response_model=schemas.BinPublic)
def read_bin(bin_id: str, t: Viewer, reg: RegistryDep) -> schemas.BinPublic:
    return bin_public(reg, get_bin(reg, t, bin_id))


@router.patch("/bins/{bin_id}", response_model=schemas.BinPublic)
def update_bin(
    bin_id: str, body: schemas.BinUpdate, t: Planner, reg: RegistryDep
) -> schemas.BinPublic:
    get_bin(reg, t, bin_id)
    b = assets.update_bin(reg, bin_id, body.model_dump(exclude_unset=True, exclude_none=True))
    return bin_public(reg, b)


@router.delete("/bins/{bin_id}", response_model=schemas.BinPublic)
def retire_bin(bin_id: str, t: Planner, reg: RegistryDep) -> schemas.BinPublic:
    """Retire the bin (it leaves the lists; its history stays)."""
    get_bin(reg, t, bin_id)
    return bin_public(reg, assets.retire_bin(reg, bin_id))


@router.get("/state", response_model=list[schemas.BinState], tags=["readings"])
def bin_states(
    t: Viewer, reg: RegistryDep, rd: ReadingsDep, stream: StreamQ = None, area: AreaQ = None
) -> Response:
    """The latest state of every bin: fill, temperature, battery, signal, last seen, flags."""
    body = readings.bin_states_json(reg, rd, t.municipality_id, stream=stream, area=area)
    return Response(body, media_type="application/json")


@router.get("/bins/{bin_id}/readings", response_model=schemas.History, tags=["readings"])
def bin_history(
    bin_id: str,
    t: Viewer,
    reg: RegistryDep,
    rd: ReadingsDep,
    start_ms: TimeQ = None,
    end_ms: TimeQ = None,
    every_s: Annotated[
        int | None, Query(ge=60, le=31 * 86_400, description="bucket width [s]; default: by range")
    ] = None,
) -> JSONResponse:
    """One bin's readings, from every device that sat on it; averaged per bucket for ranges
    over three days (at most 2,000 points)."""
    get_bin(reg, t, bin_id)
    start, end = readings.default_range(start_ms, end_ms)
    if end <= start:
        raise HTTPException(400, f"end_ms: {end} must be after start_ms {start}")
    if end - start > readings.MAX_RANGE_MS:
        raise HTTPException(400, "end_ms: the range is longer than 400 days")
    if every_s is not None and (end - start) / (every_s * 1000) > readings.MAX_POINTS:
        raise HTTPException(400, f"every_s: {every_s} gives more than {readings.MAX_POINTS} points")
    return JSONResponse(readings.history(reg, rd, bin_id, start, end, every_s))

"""Municipalities: the tenants. Listing shows those the token may see; creating one needs an
installation-wide admin token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from backend import schemas
from backend.deps import Admin, RegistryDep, Viewer, require
from backend.routes.common import ERRORS
from smartbins import assets
from smartbins.tokens import Token

router = APIRouter(tags=["municipalities"], responses=ERRORS)


@router.get("/municipalities", response_model=list[schemas.MunicipalityPublic])
def list_municipalities(
    reg: RegistryDep, caller: Annotated[Token, Depends(require("viewer"))]
) -> list[assets.Municipality]:
    return assets.municipalities(reg, None if caller.all_municipalities else caller.municipalities)


@router.post("/municipalities", response_model=schemas.MunicipalityPublic, status_code=201)
def create_municipality(
    body: schemas.MunicipalityCreate,
    reg: RegistryDep,
    caller: Annotated[Token, Depends(require("admin"))],
) -> assets.Municipality:
    if not caller.all_municipalities:
        raise HTTPException(403, "only an installation-wide admin token may add municipalities")
    return assets.add_municipality(reg, body.id, body.name)


@router.get("/municipalities/{municipality_id}", response_model=schemas.MunicipalityPublic)
def read_municipality(t: Viewer, reg: RegistryDep) -> assets.Municipality:
    return assets.municipality(reg, t.municipality_id)


@router.patch("/municipalities/{municipality_id}", response_model=schemas.MunicipalityPublic)
def update_municipality(
    body: schemas.MunicipalityUpdate, t: Admin, reg: RegistryDep
) -> assets.Municipality:
    return assets.update_municipality(reg, t.municipality_id, body.name)

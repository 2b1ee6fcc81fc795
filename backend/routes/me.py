"""Who the caller is: the token's name, role and municipalities (the dashboard's log-in)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from backend.deps import RegistryDep, require
from backend.routes.common import ERRORS
from smartbins import assets
from smartbins.tokens import Token

router = APIRouter(tags=["tokens"], responses=ERRORS)


class MunicipalityRef(BaseModel):
    id: str
    name: str


class Me(BaseModel):
    token_id: str
    name: str
    role: str
    all_municipalities: bool
    municipalities: list[MunicipalityRef]
    expires_ms: int | None


@router.get("/me", response_model=Me)
def me(reg: RegistryDep, caller: Annotated[Token, Depends(require("viewer"))]) -> Me:
    """The presented token (never its secret), with the municipalities it may see."""
    rows = assets.municipalities(reg, None if caller.all_municipalities else caller.municipalities)
    return Me(
        token_id=caller.id,
        name=caller.name,
        role=caller.role,
        all_municipalities=caller.all_municipalities,
        municipalities=[MunicipalityRef(id=m.id, name=m.name) for m in rows],
        expires_ms=caller.expires_ms,
    )

"""API tokens of a municipality: an admin lists, creates (shown once) and revokes them."""

from __future__ import annotations

from fastapi import APIRouter

from backend import schemas
from backend.deps import Admin, RegistryDep
from backend.routes.common import ERRORS, not_here
from smartbins import tokens
from smartbins.registry import NotFoundError, now_ms

router = APIRouter(prefix="/municipalities/{municipality_id}", tags=["tokens"], responses=ERRORS)


def _public(tok: tokens.Token) -> schemas.TokenPublic:
    return schemas.TokenPublic(**{**tok.__dict__, "municipalities": list(tok.municipalities)})


@router.get("/tokens", response_model=list[schemas.TokenPublic])
def list_tokens(t: Admin, reg: RegistryDep) -> list[schemas.TokenPublic]:
    return [_public(x) for x in tokens.tokens(reg, t.municipality_id)]


@router.post("/tokens", response_model=schemas.TokenCreated, status_code=201)
def create_token(body: schemas.TokenCreate, t: Admin, reg: RegistryDep) -> schemas.TokenCreated:
    """A token for this municipality only; the answer is the one time it is shown."""
    expires = now_ms() + body.expires_in_s * 1000 if body.expires_in_s else None
    tok, text = tokens.create(reg, body.name, body.role, [t.municipality_id], expires_ms=expires)
    return schemas.TokenCreated(**_public(tok).model_dump(), token=text)


@router.delete("/tokens/{token_id}", response_model=schemas.TokenPublic)
def revoke_token(token_id: str, t: Admin, reg: RegistryDep) -> schemas.TokenPublic:
    try:
        tok = tokens.get(reg, token_id)
    except NotFoundError:
        raise not_here("token_id", token_id) from None
    if tok.municipalities != (t.municipality_id,):
        # Only tokens of this municipality alone: one spanning others is not this admin's.
        raise not_here("token_id", token_id)
    return _public(tokens.revoke(reg, token_id))

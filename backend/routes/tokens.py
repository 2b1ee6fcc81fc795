"""Users and API tokens of a municipality: an admin lists, adds, changes and disables users,
and creates (shown once) and revokes tokens."""

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
    if body.user_id is not None:
        _user(reg, t.municipality_id, body.user_id)
    tok, text = tokens.create(
        reg, body.name, body.role, [t.municipality_id], expires_ms=expires, user_id=body.user_id
    )
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


def _user(reg: RegistryDep, municipality_id: str, user_id: str) -> tokens.User:
    try:
        u = tokens.user(reg, user_id)
    except NotFoundError:
        raise not_here("user_id", user_id) from None
    if u.municipality_id != municipality_id:
        raise not_here("user_id", user_id)
    return u


@router.get("/users", response_model=list[schemas.UserPublic], tags=["users"])
def list_users(t: Admin, reg: RegistryDep) -> list[tokens.User]:
    return tokens.users(reg, t.municipality_id)


@router.post("/users", response_model=schemas.UserPublic, status_code=201, tags=["users"])
def create_user(body: schemas.UserCreate, t: Admin, reg: RegistryDep) -> tokens.User:
    return tokens.add_user(reg, t.municipality_id, body.id, body.name, body.role)


@router.get("/users/{user_id}", response_model=schemas.UserPublic, tags=["users"])
def read_user(user_id: str, t: Admin, reg: RegistryDep) -> tokens.User:
    return _user(reg, t.municipality_id, user_id)


@router.patch("/users/{user_id}", response_model=schemas.UserPublic, tags=["users"])
def update_user(
    user_id: str, body: schemas.UserUpdate, t: Admin, reg: RegistryDep
) -> tokens.User:
    """Rename, or change the role (lowering it revokes the user's tokens above it)."""
    _user(reg, t.municipality_id, user_id)
    return tokens.update_user(reg, user_id, name=body.name, role=body.role)


@router.delete("/users/{user_id}", response_model=schemas.UserPublic, tags=["users"])
def disable_user(user_id: str, t: Admin, reg: RegistryDep) -> tokens.User:
    """Disable the user and revoke their tokens; the row stays (who did what)."""
    _user(reg, t.municipality_id, user_id)
    return tokens.disable_user(reg, user_id)

"""Named dependencies (``Annotated``): the registry, InfluxDB, the caller and the tenant.

Each request opens its own registry connection (SQLite connections are not shared between the
threads FastAPI runs sync routes in). The caller is the token presented as ``Authorization:
Bearer sbt_...``, or None. Routes of one municipality take a *tenant* dependency, which checks
in this order: a token is presented (else 401), it may see the municipality and the
municipality exists (else 404, the same answer, so a token learns nothing of other
municipalities), and its role may do what the route does (else 403).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backend.readings import Readings
from backend.settings import Settings
from smartbins import tokens
from smartbins.registry import Registry
from smartbins.tokens import Token

MUNICIPALITY_ID = Path(
    pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$", description="the municipality's id"
)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_registry(request: Request) -> Iterator[Registry]:
    reg = Registry(request.app.state.settings.registry.path)
    try:
        yield reg
    finally:
        reg.close()


def get_readings(request: Request) -> Readings:
    return request.app.state.readings  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
ReadingsDep = Annotated[Readings, Depends(get_readings)]

_bearer = HTTPBearer(auto_error=False, description="an API token: sbt_<id>_<secret>")


def unauthorized(why: str) -> HTTPException:
    return HTTPException(
        401, f"Authorization: {why}", headers={"WWW-Authenticate": 'Bearer realm="smartbins"'}
    )


def get_caller(
    reg: RegistryDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Token | None:
    if credentials is None:
        return None
    try:
        return tokens.authenticate(reg, credentials.credentials)
    except tokens.AuthError as e:
        raise unauthorized(str(e)) from None


CallerDep = Annotated[Token | None, Depends(get_caller)]


@dataclass(frozen=True)
class Tenant:
    """The municipality a request is about, and the token that may act on it."""

    municipality_id: str
    token: Token


def require(role: str) -> Callable[..., Token]:
    """A dependency: a valid token whose role is ``role`` or above (any municipality)."""

    def dep(caller: CallerDep) -> Token:
        if caller is None:
            raise unauthorized("a token is needed: Authorization: Bearer sbt_...")
        if tokens.role_rank(caller.role) < tokens.role_rank(role):
            raise HTTPException(
                403, f"role {caller.role!r} may not do this: needs {role!r} or above"
            )
        return caller

    return dep


def tenant(role: str) -> Callable[..., Tenant]:
    """A dependency for routes under /municipalities/{municipality_id}/."""

    def dep(
        municipality_id: Annotated[str, MUNICIPALITY_ID],
        caller: CallerDep,
        reg: RegistryDep,
    ) -> Tenant:
        if caller is None:
            raise unauthorized("a token is needed: Authorization: Bearer sbt_...")
        exists = reg.db.execute(
            "SELECT 1 FROM municipalities WHERE id = ?", (municipality_id,)
        ).fetchone()
        if not caller.may_see(municipality_id) or exists is None:
            raise HTTPException(404, f"municipality_id: no municipality {municipality_id!r}")
        if tokens.role_rank(caller.role) < tokens.role_rank(role):
            raise HTTPException(
                403, f"role {caller.role!r} may not do this: needs {role!r} or above"
            )
        return Tenant(municipality_id, caller)

    return dep


Viewer = Annotated[Tenant, Depends(tenant("viewer"))]
Technician = Annotated[Tenant, Depends(tenant("technician"))]
Planner = Annotated[Tenant, Depends(tenant("planner"))]
Admin = Annotated[Tenant, Depends(tenant("admin"))]

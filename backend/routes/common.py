"""What every router shares: documented error answers and conversions of registry rows."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from backend import schemas
from backend.deps import Tenant
from smartbins import assets
from smartbins.registry import NotFoundError, Registry

#: Error answers every route may give, documented in the OpenAPI schema.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.Error, "description": "a value that cannot be used; says which"},
    401: {
        "model": schemas.Error,
        "description": "no token, or one that is unknown, expired or revoked",
    },
    403: {"model": schemas.Error, "description": "the token's role may not do this"},
    404: {"model": schemas.Error, "description": "not found (or in another municipality)"},
    409: {"model": schemas.Error, "description": "exists already, or still in use"},
}


def not_here(kind: str, id: str) -> HTTPException:
    return HTTPException(404, f"{kind}: no {kind.removesuffix('_id').replace('_', ' ')} {id!r}")


def owned(t: Tenant, kind: str, id: str, municipality_id: str) -> None:
    """404 unless the row belongs to the tenant's municipality (the same answer as a missing
    row: a token learns nothing of another municipality)."""
    if municipality_id != t.municipality_id:
        raise not_here(kind, id)


def bin_public(reg: Registry, b: Any) -> schemas.BinPublic:
    link = reg.db.execute(
        "SELECT device_id FROM device_bins WHERE bin_id = ? AND to_ms IS NULL", (b.id,)
    ).fetchone()
    return schemas.BinPublic(**b.__dict__, device_id=link[0] if link else None)


def get_bin(reg: Registry, t: Tenant, bin_id: str) -> Any:
    try:
        b = reg.bin(bin_id)
    except NotFoundError:
        raise not_here("bin_id", bin_id) from None
    owned(t, "bin_id", bin_id, b.municipality_id)
    return b


def get_device(reg: Registry, t: Tenant, device_id: str) -> Any:
    try:
        d = reg.device(device_id)
    except NotFoundError:
        raise not_here("device_id", device_id) from None
    owned(t, "device_id", device_id, assets.device_municipality(reg, device_id) or "")
    return d


def device_public(reg: Registry, device_id: str) -> schemas.DevicePublic:
    d = reg.device(device_id)
    links = reg.history(device_id)
    current = reg.current_link(device_id)
    return schemas.DevicePublic(
        **d.__dict__,
        firmware=assets.firmware(reg, device_id),
        thresholds={k: float(v) for k, v in reg.thresholds(device_id).items()},
        bin_id=current.bin_id if current else None,
        history=[
            schemas.LinkPublic(bin_id=h.bin_id, from_ms=h.from_ms, to_ms=h.to_ms) for h in links
        ],
    )

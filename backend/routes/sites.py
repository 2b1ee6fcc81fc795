"""Sites (a place with an address and a location, holding one or more bins), depots and disposal
sites: the places of a municipality."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from backend import schemas
from backend.deps import Planner, RegistryDep, Tenant, Viewer
from backend.routes.common import ERRORS, not_here, owned
from smartbins import assets
from smartbins.registry import NotFoundError

router = APIRouter(prefix="/municipalities/{municipality_id}", responses=ERRORS)
BASE = ""


def _get(fn: Any, reg: Any, t: Tenant, kind: str, id: str) -> Any:
    try:
        row = fn(reg, id)
    except NotFoundError:
        raise not_here(kind, id) from None
    owned(t, kind, id, row.municipality_id)
    return row


# ----------------------------------------------------------------------------- sites


@router.get("/sites", response_model=list[schemas.SitePublic], tags=["sites"])
def list_sites(t: Viewer, reg: RegistryDep) -> list[assets.Site]:
    return assets.sites(reg, t.municipality_id)


@router.post("/sites", response_model=schemas.SitePublic, status_code=201, tags=["sites"])
def create_site(body: schemas.SiteCreate, t: Planner, reg: RegistryDep) -> assets.Site:
    return assets.add_site(reg, t.municipality_id, **body.model_dump())


@router.get("/sites/{site_id}", response_model=schemas.SitePublic, tags=["sites"])
def read_site(site_id: str, t: Viewer, reg: RegistryDep) -> assets.Site:
    return _get(assets.site, reg, t, "site_id", site_id)


@router.patch("/sites/{site_id}", response_model=schemas.SitePublic, tags=["sites"])
def update_site(
    site_id: str, body: schemas.SiteUpdate, t: Planner, reg: RegistryDep
) -> assets.Site:
    _get(assets.site, reg, t, "site_id", site_id)
    return assets.update_site(reg, site_id, body.model_dump(exclude_unset=True, exclude_none=True))


@router.delete("/sites/{site_id}", status_code=204, tags=["sites"])
def delete_site(site_id: str, t: Planner, reg: RegistryDep) -> Response:
    _get(assets.site, reg, t, "site_id", site_id)
    assets.delete_site(reg, site_id)
    return Response(status_code=204)


# ----------------------------------------------------------------------------- depots


@router.get("/depots", response_model=list[schemas.DepotPublic], tags=["depots"])
def list_depots(t: Viewer, reg: RegistryDep) -> list[assets.Depot]:
    return assets.depots(reg, t.municipality_id)


@router.post("/depots", response_model=schemas.DepotPublic, status_code=201, tags=["depots"])
def create_depot(body: schemas.DepotCreate, t: Planner, reg: RegistryDep) -> assets.Depot:
    return assets.add_depot(reg, t.municipality_id, **body.model_dump())


@router.get("/depots/{depot_id}", response_model=schemas.DepotPublic, tags=["depots"])
def read_depot(depot_id: str, t: Viewer, reg: RegistryDep) -> assets.Depot:
    return _get(assets.depot, reg, t, "depot_id", depot_id)


@router.patch("/depots/{depot_id}", response_model=schemas.DepotPublic, tags=["depots"])
def update_depot(
    depot_id: str, body: schemas.DepotUpdate, t: Planner, reg: RegistryDep
) -> assets.Depot:
    _get(assets.depot, reg, t, "depot_id", depot_id)
    return assets.update_depot(
        reg, depot_id, body.model_dump(exclude_unset=True, exclude_none=True)
    )


@router.delete("/depots/{depot_id}", status_code=204, tags=["depots"])
def delete_depot(depot_id: str, t: Planner, reg: RegistryDep) -> Response:
    _get(assets.depot, reg, t, "depot_id", depot_id)
    assets.delete_depot(reg, depot_id)
    return Response(status_code=204)


# ----------------------------------------------------------------------------- disposal sites


@router.get(
    "/disposal-sites", response_model=list[schemas.DisposalSitePublic], tags=["disposal sites"]
)
def list_disposal_sites(t: Viewer, reg: RegistryDep) -> list[assets.DisposalSite]:
    return assets.disposal_sites(reg, t.municipality_id)


@router.post(
    "/disposal-sites",
    response_model=schemas.DisposalSitePublic,
    status_code=201,
    tags=["disposal sites"],
)
def create_disposal_site(
    body: schemas.DisposalSiteCreate, t: Planner, reg: RegistryDep
) -> assets.DisposalSite:
    return assets.add_disposal_site(reg, t.municipality_id, **body.model_dump())


@router.get(
    "/disposal-sites/{disposal_site_id}",
    response_model=schemas.DisposalSitePublic,
    tags=["disposal sites"],
)
def read_disposal_site(disposal_site_id: str, t: Viewer, reg: RegistryDep) -> assets.DisposalSite:
    return _get(assets.disposal_site, reg, t, "disposal_site_id", disposal_site_id)


@router.patch(
    "/disposal-sites/{disposal_site_id}",
    response_model=schemas.DisposalSitePublic,
    tags=["disposal sites"],
)
def update_disposal_site(
    disposal_site_id: str, body: schemas.DisposalSiteUpdate, t: Planner, reg: RegistryDep
) -> assets.DisposalSite:
    _get(assets.disposal_site, reg, t, "disposal_site_id", disposal_site_id)
    return assets.update_disposal_site(
        reg, disposal_site_id, body.model_dump(exclude_unset=True, exclude_none=True)
    )


@router.delete("/disposal-sites/{disposal_site_id}", status_code=204, tags=["disposal sites"])
def delete_disposal_site(disposal_site_id: str, t: Planner, reg: RegistryDep) -> Response:
    _get(assets.disposal_site, reg, t, "disposal_site_id", disposal_site_id)
    assets.delete_disposal_site(reg, disposal_site_id)
    return Response(status_code=204)


# ----------------------------------------------------------------------------- trucks


@router.get("/trucks", response_model=list[schemas.TruckPublic], tags=["trucks"])
def list_trucks(t: Viewer, reg: RegistryDep) -> list[assets.Truck]:
    return assets.trucks(reg, t.municipality_id)


@router.post("/trucks", response_model=schemas.TruckPublic, status_code=201, tags=["trucks"])
def create_truck(body: schemas.TruckCreate, t: Planner, reg: RegistryDep) -> assets.Truck:
    data = body.model_dump()
    comps = [assets.Compartment(**c) for c in data.pop("compartments")]
    return assets.add_truck(
        reg, t.municipality_id, data.pop("id"), data.pop("depot_id"), comps, **data
    )


@router.get("/trucks/{truck_id}", response_model=schemas.TruckPublic, tags=["trucks"])
def read_truck(truck_id: str, t: Viewer, reg: RegistryDep) -> assets.Truck:
    return _get(assets.truck, reg, t, "truck_id", truck_id)


@router.patch("/trucks/{truck_id}", response_model=schemas.TruckPublic, tags=["trucks"])
def update_truck(
    truck_id: str, body: schemas.TruckUpdate, t: Planner, reg: RegistryDep
) -> assets.Truck:
    _get(assets.truck, reg, t, "truck_id", truck_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "compartments" in changes:
        changes["compartments"] = [assets.Compartment(**c) for c in changes["compartments"]]
    return assets.update_truck(reg, truck_id, changes)


@router.delete("/trucks/{truck_id}", status_code=204, tags=["trucks"])
def delete_truck(truck_id: str, t: Planner, reg: RegistryDep) -> Response:
    _get(assets.truck, reg, t, "truck_id", truck_id)
    assets.delete_truck(reg, truck_id)
    return Response(status_code=204)

"""What the generated tests need to call every route: an id for each path parameter and a valid
body for each write. A new route with a new path parameter or a new write fails the tests that
use this catalogue until it is added here, so no route goes untested."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

_n = itertools.count()
WRITE_METHODS = ("post", "put", "patch", "delete")


PREFIX = "/api/v1"


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template without /api/v1) of every API operation the app documents."""
    return [
        (method.upper(), path.removeprefix(PREFIX))
        for path, ops in app.openapi()["paths"].items()
        if path.startswith(PREFIX)
        for method in ops
        if method in ("get", *WRITE_METHODS)
    ]


def spare_ids(ids: dict[str, str]) -> dict[str, str]:
    """Path ids whose rows a write may change or delete without breaking the other writes."""
    return {**ids, "site_id": ids["spare_site_id"], "depot_id": ids["spare_depot_id"],
            "bin_id": ids["spare_bin_id"]}


def path_params(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def fill(path: str, ids: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in ids:
            raise KeyError(f"{path}: no id for path parameter {name!r}: add it to the world")
        return ids[name]

    return re.sub(r"{(\w+)}", one, path)


def _u(prefix: str) -> str:
    return f"{prefix}-{next(_n)}"


#: A valid body for each write, given the municipality's ids; None: no body.
BODIES: dict[tuple[str, str], Callable[[dict[str, str]], Any]] = {
    ("POST", "/municipalities"): lambda ids: {"id": _u("m"), "name": "Ny Kommune"},
    ("PATCH", "/municipalities/{municipality_id}"): lambda ids: {"name": "Omdøbt"},
    ("POST", "/municipalities/{municipality_id}/sites"): lambda ids: {
        "id": _u("site"), "lat": 55.7, "lon": 12.5},
    ("PATCH", "/municipalities/{municipality_id}/sites/{site_id}"): lambda ids: {"name": "x"},
    ("DELETE", "/municipalities/{municipality_id}/sites/{site_id}"): lambda ids: None,
    ("POST", "/municipalities/{municipality_id}/depots"): lambda ids: {
        "id": _u("depot"), "lat": 55.7, "lon": 12.5},
    ("PATCH", "/municipalities/{municipality_id}/depots/{depot_id}"): lambda ids: {"name": "x"},
    ("DELETE", "/municipalities/{municipality_id}/depots/{depot_id}"): lambda ids: None,
    ("POST", "/municipalities/{municipality_id}/disposal-sites"): lambda ids: {
        "id": _u("disp"), "lat": 55.7, "lon": 12.5, "streams": ["glass"]},
    ("PATCH", "/municipalities/{municipality_id}/disposal-sites/{disposal_site_id}"):
        lambda ids: {"name": "x"},
    ("DELETE", "/municipalities/{municipality_id}/disposal-sites/{disposal_site_id}"):
        lambda ids: None,
    ("POST", "/municipalities/{municipality_id}/trucks"): lambda ids: {
        "id": _u("truck"), "depot_id": ids["depot_id"],
        "compartments": [{"stream": "glass", "capacity_l": 8000}]},
    ("PATCH", "/municipalities/{municipality_id}/trucks/{truck_id}"): lambda ids: {"fuel": "hvo"},
    ("DELETE", "/municipalities/{municipality_id}/trucks/{truck_id}"): lambda ids: None,
    ("POST", "/municipalities/{municipality_id}/bins"): lambda ids: {
        "id": _u("bin"), "site_id": ids["site_id"], "stream": "glass", "volume_l": 240},
    ("POST", "/municipalities/{municipality_id}/bins/import"): lambda ids: (
        "text/csv", f"id,site_id,stream,volume_l\n{_u('imp')},{ids['site_id']},glass,240\n"),
    ("PATCH", "/municipalities/{municipality_id}/bins/{bin_id}"): lambda ids: {"area": "north"},
    ("DELETE", "/municipalities/{municipality_id}/bins/{bin_id}"): lambda ids: None,
    ("POST", "/municipalities/{municipality_id}/devices"): lambda ids: {
        "id": _u(ids["device_id"] + "-new"), "bin_id": ids["free_bin_id"]},
    ("PATCH", "/municipalities/{municipality_id}/devices/{device_id}"): lambda ids: {
        "firmware": "1.2.3"},
    ("POST", "/municipalities/{municipality_id}/devices/{device_id}/calibration"): lambda ids: {
        "empty_mm": 1200, "full_mm": 250},
    ("POST", "/municipalities/{municipality_id}/devices/{device_id}/move"): lambda ids: {
        "bin_id": ids["move_bin_id"]},
    ("POST", "/municipalities/{municipality_id}/devices/{device_id}/revoke"): lambda ids: None,
    ("POST", "/municipalities/{municipality_id}/tokens"): lambda ids: {
        "name": "new", "role": "viewer"},
    ("DELETE", "/municipalities/{municipality_id}/tokens/{token_id}"): lambda ids: None,
    # (other writes delete trucks and bins: a plan with nothing to collect stays valid)
    ("POST", "/municipalities/{municipality_id}/plans"): lambda ids: {
        "date": "2026-12-04", "trucks": []},
    ("POST", "/municipalities/{municipality_id}/plans/{plan_id}/trucks/{truck_id}/stops/{index}"
             "/done"): lambda ids: None,
    ("POST", "/municipalities/{municipality_id}/plans/{plan_id}/trucks/{truck_id}/stops/{index}"
             "/undone"): lambda ids: None,
    ("POST", "/municipalities/{municipality_id}/users"): lambda ids: {
        "id": _u("user"), "name": "Ny Bruger", "role": "viewer"},
    ("PATCH", "/municipalities/{municipality_id}/users/{user_id}"): lambda ids: {"name": "x"},
    ("DELETE", "/municipalities/{municipality_id}/users/{user_id}"): lambda ids: None,
    ("POST", "/municipalities/{municipality_id}/plans/generate"): lambda ids: {
        "date": "2026-12-07", "time_limit_s": 0.5},
    ("POST", "/municipalities/{municipality_id}/alerts/{alert_id}/acknowledge"): lambda ids: None,
    ("POST", "/municipalities/{municipality_id}/alerts/{alert_id}/resolve"): lambda ids: None,
}

#: The least role each write needs ("root": an installation-wide admin).
REQUIRED: dict[tuple[str, str], str] = {
    ("POST", "/municipalities"): "root",
    ("PATCH", "/municipalities/{municipality_id}"): "admin",
    ("POST", "/municipalities/{municipality_id}/tokens"): "admin",
    ("DELETE", "/municipalities/{municipality_id}/tokens/{token_id}"): "admin",
    **{
        (m, p): "admin" for (m, p) in BODIES if "/users" in p
    },
    **{
        (m, p): "technician"
        for (m, p) in BODIES
        if "/devices" in p or "/alerts/" in p or "/stops/" in p
    },
}


def required_role(method: str, path: str) -> str:
    return REQUIRED.get((method, path), "planner")


def request_kwargs(method: str, path: str, ids: dict[str, str]) -> dict[str, Any]:
    key = (method, path)
    if key not in BODIES:
        raise KeyError(f"{method} {path}: no body in tests/backend/routes_catalogue.py BODIES")
    body = BODIES[key](ids)
    if body is None:
        return {}
    if isinstance(body, tuple):
        content_type, text = body
        return {"content": text.encode(), "headers": {"Content-Type": content_type}}
    return {"json": body}

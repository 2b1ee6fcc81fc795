"""The planner dashboard: static files served by the backend, and the little config they read.

The dashboard is plain ES modules, SVG and canvas in ``static/``: no build step, no front-end
package, nothing fetched from another host (the Content-Security-Policy below says so to the
browser too). What is served is exactly what is in the repository.

``GET /dashboard/`` is the app; ``GET /dashboard/config.json`` gives it the fraction names (from
:mod:`smartbins.codes`, so Danish names are spelled in one place) and the optional tile URL.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from backend.dashboard.settings import DashboardSettings
from smartbins.codes import FRACTIONS, STREAMS

STATIC = Path(__file__).with_name("static")
#: Every file the dashboard may serve, fixed at import: a request can name nothing else.
FILES: dict[str, Path] = {
    p.relative_to(STATIC).as_posix(): p for p in sorted(STATIC.rglob("*")) if p.is_file()
}
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
}


def content_security_policy(settings: DashboardSettings) -> str:
    """Only this origin, except the tile server's images when one is configured."""
    img = "'self' data:"
    if settings.tile_url:
        parts = urlsplit(settings.tile_url)
        img += f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src {img}; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    )


def client_config(settings: DashboardSettings) -> dict[str, object]:
    return {
        "tile_url": settings.tile_url or None,
        "fractions": {f.code: {"da": f.name_da, "en": f.name_en} for f in FRACTIONS.values()},
        "streams": sorted(STREAMS),
        "languages": ["da", "en"],
    }


def router(settings: DashboardSettings | None = None) -> APIRouter:
    """The dashboard's routes (kept out of the OpenAPI schema: they are not the API)."""
    settings = settings or DashboardSettings()
    csp = content_security_policy(settings)
    headers = {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # revalidate each load: a deployment's new files are picked up at once (ETag answers 304)
        "Cache-Control": "no-cache",
    }
    config = client_config(settings)
    r = APIRouter(include_in_schema=False)

    @r.get("/dashboard")
    def dashboard_redirect() -> RedirectResponse:
        return RedirectResponse("/dashboard/", status_code=308)

    @r.get("/dashboard/config.json")
    def dashboard_config() -> JSONResponse:
        return JSONResponse(config, headers=headers)

    @r.get("/dashboard/{path:path}")
    def dashboard_file(path: str) -> FileResponse:
        file = FILES.get(path or "index.html")
        if file is None:
            raise HTTPException(404, f"path: no dashboard file {path!r}")
        media = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0]
        return FileResponse(file, media_type=media, headers=headers)

    return r


def install(
    app: FastAPI, settings: DashboardSettings | None = None, api_prefix: str = "/api/v1"
) -> None:
    """Add the dashboard and the API routes it needs beyond the resources' own: who the caller
    is (``/me``), plans with their stop marks, and detected emptyings (forecasts are the API's
    own: backend/routes/forecasts.py)."""
    from backend.routes import emptyings, me, plans

    for r in (me, plans, emptyings):
        app.include_router(r.router, prefix=api_prefix)
    app.include_router(router(settings))

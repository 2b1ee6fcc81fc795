"""The FastAPI application: ``create_app(settings)`` builds it, with no import-time globals.

Routers per resource (backend/routes/), dependencies in backend/deps.py, schemas in
backend/schemas.py. Errors the registry raises become 4xx answers naming the problem:
RegistryError 400, NotFoundError 404, ConflictError 409; a request that fails validation is
FastAPI's 422 naming the field. InfluxDB unreachable is 503.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from backend import dashboard
from backend import settings as settings_mod
from backend.forecasts import Forecasts
from backend.metrics import Metrics, MetricsMiddleware
from backend.readings import Readings
from backend.routes import (
    alerts,
    bins,
    devices,
    fleet,
    forecasts,
    health,
    municipalities,
    opendata,
    sites,
    tokens,
)
from backend.settings import Settings
from smartbins.influx import InfluxClient, InfluxError
from smartbins.registry import ConflictError, NotFoundError, Registry, RegistryError

API_PREFIX = "/api/v1"


def influx_factory(s: Settings) -> Callable[[], InfluxClient]:
    password = settings_mod.influx_password(s.influxdb)

    def make() -> InfluxClient:
        return InfluxClient(
            s.influxdb.url,
            s.influxdb.database,
            username=s.influxdb.username or None,
            password=password,
            timeout=s.influxdb.timeout_s,
        )

    return make


def create_app(settings: Settings, *, start_cache: bool = True) -> FastAPI:
    """The API for ``settings``. The registry is migrated here, once, before serving."""
    Registry(settings.registry.path).close()
    readings = Readings(influx_factory(settings), settings.influxdb.cache_refresh_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start_cache:
            readings.start()
        try:
            yield
        finally:
            readings.stop()

    app = FastAPI(
        title="smartbins",
        version="1",
        description="Registry, readings, fleet health, alerts and open data of smart waste bins. "
        "Writes need a token (Authorization: Bearer sbt_...) with a role that may make them; "
        "a token sees only its municipalities. /open/ needs no token.",
        license_info={"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.readings = readings
    app.state.metrics = Metrics()
    app.state.forecasts = Forecasts()
    for r in (municipalities, sites, bins, devices, fleet, alerts, forecasts, tokens):
        app.include_router(r.router, prefix=API_PREFIX)
    app.include_router(opendata.router, prefix=API_PREFIX)
    app.include_router(health.router)
    dashboard.install(app, settings.dashboard, API_PREFIX)
    _errors(app)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, e: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=404)

    @app.exception_handler(ConflictError)
    async def conflict(request: Request, e: ConflictError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=409)

    @app.exception_handler(RegistryError)
    async def bad(request: Request, e: RegistryError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input, and a NaN or infinity in a JSON body (Python
        # clients send them) cannot be encoded back: it answered 500 instead of naming the field
        return JSONResponse({"detail": _finite(jsonable_encoder(e.errors()))}, status_code=422)

    @app.exception_handler(InfluxError)
    async def influx_down(request: Request, e: InfluxError) -> JSONResponse:
        return JSONResponse({"detail": f"readings unavailable: {e}"}, status_code=503)


def _finite(value: object) -> object:
    """``value`` with every NaN or infinite float replaced by its name ("nan", "inf")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value

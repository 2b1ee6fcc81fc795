"""/healthz and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from backend.deps import RegistryDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz(request: Request, reg: RegistryDep) -> JSONResponse:
    """200 when the registry answers; says whether InfluxDB does."""
    reg.db.execute("SELECT 1").fetchone()
    try:
        request.app.state.readings.query("SHOW MEASUREMENTS LIMIT 1")
        influx = "ok"
    except Exception as e:
        influx = f"unavailable: {type(e).__name__}"
    return JSONResponse({"status": "ok", "registry": "ok", "influxdb": influx})


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format: requests and latency per route."""
    return PlainTextResponse(
        request.app.state.metrics.render(), media_type="text/plain; version=0.0.4"
    )

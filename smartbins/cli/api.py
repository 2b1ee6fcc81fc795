"""`smartbins api --config FILE`: the FastAPI service (registry, readings, open data)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    api = sub.add_parser(
        "api",
        help="Serve the HTTP API: registry, readings, fleet health, open data.",
        description="Serve the smartbins HTTP API with uvicorn. OpenAPI at /docs, health at "
        "/healthz, Prometheus metrics at /metrics. Writes need a token (`smartbins token "
        "create`). Runs until SIGTERM or Ctrl-C.",
    )
    api.add_argument(
        "--config",
        required=True,
        type=Path,
        metavar="FILE",
        help="The API's TOML config (`smartbins config --kind api` prints the sample).",
    )
    api.set_defaults(func=run_api)


def run_api(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from backend.app import create_app
        from backend.settings import load
    except ImportError as e:
        from smartbins.errors import SmartbinsError

        raise SmartbinsError(
            f"the API needs FastAPI and uvicorn ({e}); install them with: pip install -e ."
        ) from None
    settings = load(args.config)
    app = create_app(settings)
    uvicorn.run(app, host=settings.server.host, port=settings.server.port, log_level="info")
    return 0

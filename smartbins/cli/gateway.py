"""`smartbins gateway --config FILE`: MQTT -> InfluxDB ingestion."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    gw = sub.add_parser(
        "gateway",
        help="Ingest device readings from the broker into InfluxDB, exactly once.",
        description="Ingest readings exactly once. Subscribe to every device's readings and "
        "status through a shared subscription, validate them, write them to InfluxDB, and "
        "only then acknowledge them to the broker and end to end to the devices. Bad "
        "messages go to the dead-letter topic. Runs until SIGTERM or Ctrl-C.",
    )
    gw.add_argument(
        "--config", required=True, type=Path, metavar="FILE", help="The gateway's TOML config."
    )
    gw.set_defaults(func=run_gateway)


def run_gateway(args: argparse.Namespace) -> int:
    from gateway.main import run

    return run(args.config)

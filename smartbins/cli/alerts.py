"""`smartbins alerts --config FILE`: the alert engine, beside the API."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    al = sub.add_parser(
        "alerts",
        help="Run the alert engine: readings from the broker to alerts, webhook and MQTT.",
        description="Read every reading as it reaches the broker (its own account and "
        "persistent session), raise and clear alerts (full, fire, tilt, low battery, offline, "
        "sensor fault) in the registry, and deliver each new alert once by signed webhook and "
        "on sb/svc/alerts/<municipality>. Uses the API's config file ([alerts] section). Runs "
        "until SIGTERM or Ctrl-C.",
    )
    al.add_argument("--config", required=True, type=Path, metavar="FILE",
                    help="The API's TOML config.")
    al.set_defaults(func=run_alerts)


def run_alerts(args: argparse.Namespace) -> int:
    from backend.alertengine import main

    return main(["--config", str(args.config)])

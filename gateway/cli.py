"""`smartbins gateway --config FILE`, `smartbins config` and `smartbins config check FILE`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from gateway import config


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
    # Internal: how a gateway with [process] workers > 1 starts its workers.
    gw.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    gw.add_argument("--report-fd", type=int, default=-1, help=argparse.SUPPRESS)
    gw.set_defaults(func=run_gateway)

    cfg = sub.add_parser(
        "config",
        help="Print the commented sample gateway config, or check a config file.",
        description="Without arguments: print the sample gateway config (every key with its "
        "default and trade-off). `config check FILE` validates FILE and its secrets without "
        "starting anything; the exit status is 0 when it is valid.",
    )
    cfg.set_defaults(func=print_sample)
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    check = cfg_sub.add_parser(
        "check",
        help="Validate a gateway config file.",
        description="Validate FILE: unknown keys and bad values are named with their line. "
        "Also checks that the passwords can be read (never prints them).",
    )
    check.add_argument("file", type=Path, metavar="FILE")
    check.set_defaults(func=check_config)


def print_sample(args: argparse.Namespace) -> int:
    sys.stdout.write(config.SAMPLE_PATH.read_text())
    return 0


def check_config(args: argparse.Namespace) -> int:
    cfg = config.load(args.file)
    config.read_secrets(cfg)
    print(f"{args.file}: valid (secrets readable)")
    return 0


def run_gateway(args: argparse.Namespace) -> int:
    from gateway.service import Gateway, run_forever
    from gateway.workers import report_loop, run_supervisor, worker_config

    cfg = config.load(args.config)
    secrets = config.read_secrets(cfg)
    who = f"[worker {args.worker}]" if args.worker else ""
    logging.basicConfig(
        level=cfg.log.level.upper(),
        format=f"%(asctime)s %(levelname)s %(name)s{who}: %(message)s",
        stream=sys.stderr,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if not args.worker and cfg.process.workers > 1:
        return 0 if run_supervisor(cfg, args.config, stop) else 1
    if args.worker:
        cfg = worker_config(cfg, args.worker)
    gw = Gateway(cfg, secrets)
    if args.report_fd >= 0:
        out = os.fdopen(args.report_fd, "w")
        threading.Thread(
            target=report_loop, args=(out, gw.metrics, gw.health, stop),
            name="gateway-report", daemon=True,
        ).start()  # fmt: skip
    return 0 if run_forever(gw, stop) else 1

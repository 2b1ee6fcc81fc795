"""``python -m gateway --config FILE``: a gateway process (how a supervisor starts its workers;
people use `smartbins gateway`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.main import run
from smartbins.errors import SmartbinsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--config", required=True, type=Path, help="The gateway's TOML config.")
    parser.add_argument("--worker", type=int, default=0, help="Worker number (0: not a worker).")
    parser.add_argument("--report-fd", type=int, default=-1, help="Pipe for the worker's reports.")
    args = parser.parse_args(argv)
    try:
        return run(args.config, args.worker, args.report_fd)
    except SmartbinsError as e:
        print(f"gateway: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

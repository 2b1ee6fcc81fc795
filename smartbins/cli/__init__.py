"""The one `smartbins` command; each job is a subcommand registered by its own module.

A command module (one per command group, in this package) exposes ``register(subparsers)``,
which adds its parser(s) and sets ``func(args) -> int`` as the default. Adding a job is one
module and one line in COMMANDS. The CLI may import every part; nothing imports the CLI. The
modules import their parts' heavy machinery inside the commands, so `smartbins --help` is quick.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version

from smartbins.cli import (
    alerts,
    api,
    config,
    demo,
    device,
    evaluate,
    flash,
    gateway,
    plan,
    setup,
    simulate,
    token,
)
from smartbins.errors import SmartbinsError

#: Modules that register subcommands, in the order `smartbins --help` lists them.
COMMANDS = (
    demo, simulate, evaluate, plan, setup, device, flash, gateway, api, alerts, token, config
)


def _version() -> str:
    try:
        return version("smartbins")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smartbins",
        description="Open telemetry and collection planning for smart waste bins. "
        "Each job is a subcommand; `smartbins COMMAND --help` tells what it does.",
    )
    parser.add_argument("--version", action="version", version=f"smartbins {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except SmartbinsError as e:
        print(f"smartbins {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

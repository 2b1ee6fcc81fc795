"""The one `smartbins` command; each job is a subcommand registered by its own module.

A command module exposes ``register(subparsers)``, which adds its parser(s) and sets
``func(args) -> int`` as the default. Adding a job is one module and one line in COMMANDS.
Modules are imported only when listed, so a missing optional part fails with a clear message
instead of breaking every other command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from smartbins.errors import SmartbinsError

#: Modules that register subcommands, in the order `smartbins --help` lists them.
COMMANDS: tuple[str, ...] = (
    "smartbins.demo",
    "simulator.cli",
    "smartbins.devicecli",
    "gateway.cli",
)


CommandError = SmartbinsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smartbins",
        description="Open telemetry and collection planning for smart waste bins. "
        "Each job is a subcommand; `smartbins COMMAND --help` tells what it does.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
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

"""`smartbins config` and `smartbins config check FILE`: the commented sample config, and
validation of a config file without starting anything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
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
    from gateway import config

    sys.stdout.write(config.SAMPLE_PATH.read_text())
    return 0


def check_config(args: argparse.Namespace) -> int:
    from gateway import config

    cfg = config.load(args.file)
    config.read_secrets(cfg)
    print(f"{args.file}: valid (secrets readable)")
    return 0

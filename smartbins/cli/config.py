"""`smartbins config` and `smartbins config check FILE`: the commented sample config, and
validation of a config file without starting anything. Two kinds of file: the gateway's and the
API's (``--kind``; `config check` recognises the API's by its sections)."""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

KINDS = ("gateway", "api")
#: Top-level tables only the API's config has.
API_SECTIONS = frozenset({"server", "registry", "devices", "open_data", "alerts"})


def register(sub: argparse._SubParsersAction) -> None:
    cfg = sub.add_parser(
        "config",
        usage=f"smartbins config [-h] [--kind {{{','.join(KINDS)}}}] [check FILE]",
        help="Print a commented sample config, or check a config file.",
        description="Without arguments: print the sample config of --kind (every key with "
        "its default and trade-off). `config check FILE` validates FILE and its secrets "
        "without starting anything; the exit status is 0 when it is valid.",
    )
    cfg.add_argument("--kind", choices=KINDS, default="gateway", help="Which sample to print.")
    cfg.set_defaults(func=print_sample)
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    check = cfg_sub.add_parser(
        "check",
        help="Validate a gateway or API config file.",
        description="Validate FILE: unknown keys and bad values are named with their line. "
        "Also checks that the passwords can be read (never prints them). The kind is taken "
        "from --kind, or from the file's sections ([server], [registry], ... : the API's).",
    )
    check.add_argument("file", type=Path, metavar="FILE")
    check.add_argument("--kind", choices=KINDS, dest="check_kind", help="The file's kind.")
    check.set_defaults(func=check_config)


def print_sample(args: argparse.Namespace) -> int:
    if args.kind == "api":
        from backend import settings

        sys.stdout.write(settings.SAMPLE_PATH.read_text())
        return 0
    from gateway import config

    sys.stdout.write(config.SAMPLE_PATH.read_text())
    return 0


def kind_of(path: Path) -> str:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return "gateway"  # its loader reports the problem with the file's name
    return "api" if API_SECTIONS & set(data) else "gateway"


def check_config(args: argparse.Namespace) -> int:
    kind = args.check_kind or kind_of(args.file)
    if kind == "api":
        from backend import settings

        api = settings.load(args.file)
        if api.influxdb.username:
            settings.influx_password(api.influxdb)
        print(f"{args.file}: valid API config (secrets readable)")
        return 0
    from gateway import config

    cfg = config.load(args.file)
    config.read_secrets(cfg)
    print(f"{args.file}: valid (secrets readable)")
    return 0

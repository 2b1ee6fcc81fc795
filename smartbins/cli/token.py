"""`smartbins token create|list|revoke`: API tokens, on the registry directly (for the first
admin token, and for operators on the server)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    tok = sub.add_parser(
        "token",
        help="Create, list or revoke API tokens.",
        description="API tokens, written to the registry directly. A token is shown once, when "
        "created; only its hash is kept. Roles: viewer < technician < planner < admin.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--registry", required=True, type=Path, metavar="FILE", help="The registry (SQLite)."
    )
    tsub = tok.add_subparsers(dest="token_command", metavar="SUBCOMMAND", required=True)
    create = tsub.add_parser(
        "create", parents=[common], help="Create a token and print it (once)."
    )
    create.add_argument("--name", required=True, help="Who or what holds it.")
    create.add_argument(
        "--role", required=True, choices=("viewer", "technician", "planner", "admin")
    )
    create.add_argument(
        "--municipality",
        action="append",
        required=True,
        metavar="ID",
        help="A municipality it may see (repeat for more); * for every one.",
    )
    create.add_argument(
        "--expires-days",
        type=float,
        default=90.0,
        help="Days until it expires (default 90; 0: never).",
    )
    create.set_defaults(func=cmd_create)
    lst = tsub.add_parser("list", parents=[common], help="List tokens (never their secrets).")
    lst.add_argument("--municipality", metavar="ID", help="Only tokens of this municipality.")
    lst.set_defaults(func=cmd_list)
    rev = tsub.add_parser("revoke", parents=[common], help="Revoke a token at once.")
    rev.add_argument("token_id", help="The token's id (the part after sbt_, before the next _).")
    rev.set_defaults(func=cmd_revoke)


def _open(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from smartbins.errors import SmartbinsError
    from smartbins.registry import Registry

    if not args.registry.exists():
        raise SmartbinsError(f"registry {args.registry}: no such file")
    return Registry(args.registry)


def _fail(e: Exception) -> int:
    print(f"smartbins token: {e}", file=sys.stderr)
    return 1


def cmd_create(args: argparse.Namespace) -> int:
    from smartbins import tokens
    from smartbins.registry import RegistryError, now_ms

    reg = _open(args)
    try:
        expires = now_ms() + int(args.expires_days * 86_400_000) if args.expires_days > 0 else None
        try:
            tok, text = tokens.create(
                reg, args.name, args.role, args.municipality, expires_ms=expires
            )
        except RegistryError as e:
            return _fail(e)
    finally:
        reg.close()
    print(text)
    print(
        f"token {tok.id}: {tok.role} of {', '.join(tok.municipalities)}; shown once, keep it safe",
        file=sys.stderr,
    )
    return 0


def _when(ms: int | None) -> str:
    return "-" if ms is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))


def cmd_list(args: argparse.Namespace) -> int:
    from smartbins import tokens
    from smartbins.registry import now_ms

    reg = _open(args)
    try:
        rows = tokens.tokens(reg, args.municipality)
    finally:
        reg.close()
    t = now_ms()
    print(f"{'id':<12}  {'role':<10}  {'state':<8}  {'expires (UTC)':<16}  municipalities  name")
    for r in rows:
        state = "revoked" if r.revoked_ms else ("active" if r.active(t) else "expired")
        print(
            f"{r.id:<12}  {r.role:<10}  {state:<8}  {_when(r.expires_ms):<16}  "
            f"{','.join(r.municipalities):<14}  {r.name}"
        )
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from smartbins import tokens
    from smartbins.registry import RegistryError

    reg = _open(args)
    try:
        try:
            tok = tokens.revoke(reg, args.token_id)
        except RegistryError as e:
            return _fail(e)
    finally:
        reg.close()
    print(f"token {tok.id} revoked")
    return 0

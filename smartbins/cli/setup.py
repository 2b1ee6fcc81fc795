"""`smartbins setup ...`: what an operator creates before the first `smartbins provision`:
municipalities, sites and bins in the registry, the broker's service accounts, and InfluxDB's
database, users and grants. The same functions the backend will call (Registry methods,
provisioning.ensure_service_accounts, deployment.setup_influxdb). docs/operations.md says
where each file lives and with which mode."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from smartbins.cli.device import _add_common, load_settings
from smartbins.errors import SmartbinsError

if TYPE_CHECKING:
    from smartbins.registry import Registry

ADMIN_PASSWORD_ENV = "SMARTBINS_INFLUX_ADMIN_PASSWORD"
DEFAULT_SECRETS = Path("/etc/smartbins/secrets")


class SetupError(SmartbinsError):
    """An operator's setup step that cannot be done; says what to check."""


def register(sub: argparse._SubParsersAction) -> None:
    setup = sub.add_parser(
        "setup",
        help="Create municipalities, sites, bins, service accounts and InfluxDB's users.",
        description="What comes before `smartbins provision DEVICE --bin BIN`: the registry's "
        "municipalities, sites and bins, the broker's service accounts (smartbins.gateway, "
        "smartbins.service) and InfluxDB's database with a write-only user for the gateway "
        "and a read-only user for everything else. `accounts` and `influxdb` can be run again "
        "(they keep what exists); a registry id that is taken is refused. See "
        "docs/operations.md.",
    )
    ssub = setup.add_subparsers(dest="what", metavar="WHAT", required=True)

    m = ssub.add_parser("municipality", help="Add a municipality.",
                        description="Add a municipality to the registry.")  # fmt: skip
    m.add_argument("id", help="Its id (e.g. the municipality code, 0101 for København).")
    m.add_argument("name", help="Its name.")
    _add_common(m, passwords=False)
    m.set_defaults(func=cmd_municipality)

    s = ssub.add_parser("site", help="Add a site (a place with bins).",
                        description="Add a site, where one or more bins stand.")  # fmt: skip
    s.add_argument("id", help="The site id.")
    s.add_argument("--municipality", required=True, help="The municipality it belongs to.")
    s.add_argument("--lat", type=float, required=True, help="Latitude [°], WGS 84.")
    s.add_argument("--lon", type=float, required=True, help="Longitude [°], WGS 84.")
    s.add_argument("--name", default="", help="A name people recognise (street, square).")
    s.add_argument("--address", default="", help="Its street address (route sheets show it).")
    _add_common(s, passwords=False)
    s.set_defaults(func=cmd_site)

    b = ssub.add_parser("bin", help="Add a bin at a site.",
                        description="Add a bin: one waste stream, a volume.")  # fmt: skip
    b.add_argument("id", help="The bin id (what `smartbins provision --bin` takes).")
    b.add_argument("--site", required=True, help="The site it stands at.")
    b.add_argument("--stream", required=True,
                   help="Its waste stream: a fraction code or an allowed combination "
                        "(docs/protocol.md), e.g. residual, glass+metal.")  # fmt: skip
    b.add_argument("--volume", type=float, required=True, help="Its volume [l].")
    b.add_argument("--container-type", default="wheelie",
                   help="Its container type (wheelie, underground, ...). Default: wheelie.")
    b.add_argument("--full-pct", type=float, default=90.0,
                   help="Fill [%%] at which it counts as full (alerts, plans). Default: 90.")
    b.add_argument("--area", default="", help="The area it belongs to (filters, pooling).")
    _add_common(b, passwords=False)
    b.set_defaults(func=cmd_bin)

    a = ssub.add_parser(
        "accounts",
        help="Give the broker's service accounts their passwords.",
        description="Create smartbins.gateway and smartbins.service in the broker's password "
        "file (reloaded and verified as for provisioning) with their passwords in "
        "SECRETS_DIR/<account> (mode 0600, directory 0700). Existing ones are kept.",
    )
    a.add_argument("--secrets-dir", type=Path, default=DEFAULT_SECRETS,
                   help=f"Where the passwords go (default {DEFAULT_SECRETS}).")  # fmt: skip
    _add_common(a)
    a.set_defaults(func=cmd_accounts)

    i = ssub.add_parser(
        "influxdb",
        help="Create the readings database, its users and their grants.",
        description="As InfluxDB's admin (password from $" + ADMIN_PASSWORD_ENV + "): create "
        "the database, the user smartbins-gateway with WRITE on it and smartbins-reader with "
        "READ, their passwords in SECRETS_DIR/influxdb-<user> (mode 0600). Existing users "
        "keep their passwords.",
    )
    i.add_argument("--url", default="http://127.0.0.1:8086", help="InfluxDB URL (v1 API).")
    i.add_argument("--database", default="smartbins", help="The readings database.")
    i.add_argument("--admin-user", default="admin", help="An InfluxDB admin user.")
    i.add_argument("--secrets-dir", type=Path, default=DEFAULT_SECRETS,
                   help=f"Where the passwords go (default {DEFAULT_SECRETS}).")  # fmt: skip
    i.set_defaults(func=cmd_influxdb)


def _add(args: argparse.Namespace, add: Callable[..., object], *values: object,
         **named: object) -> None:
    """One smartbins.assets call (the same the API makes); a registry error (taken id, unknown
    site, bad value) as SetupError."""
    from smartbins.deviceops import open_registry
    from smartbins.registry import RegistryError

    with open_registry(load_settings(args)) as reg:
        try:
            add(reg, *values, **named)
        except RegistryError as e:
            raise SetupError(str(e)) from None


def cmd_municipality(args: argparse.Namespace) -> int:
    from smartbins import assets

    _add(args, assets.add_municipality, args.id, args.name)
    print(f"municipality {args.id} ({args.name}) added")
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    from smartbins import assets

    _add(args, assets.add_site, args.municipality, args.id, args.lat, args.lon, args.name,
         args.address)
    print(f"site {args.id} added to municipality {args.municipality}")
    return 0


def cmd_bin(args: argparse.Namespace) -> int:
    from smartbins import assets
    from smartbins.registry import RegistryError

    def add(reg: Registry, site_id: str, new: assets.NewBin) -> None:
        row = reg.db.execute("SELECT municipality_id FROM sites WHERE id = ?", (site_id,))
        owner = row.fetchone()
        if owner is None:
            raise RegistryError(f"bin {new.id!r}: site {site_id!r}: no such site")
        assets.add_bins(reg, owner[0], [new])

    _add(args, add, args.site, assets.NewBin(args.id, args.site, args.stream, args.volume,
                                             args.container_type, args.full_pct, args.area))
    print(f"bin {args.id} ({args.stream}, {args.volume:g} l) added at site {args.site}")
    return 0


def cmd_accounts(args: argparse.Namespace) -> int:
    from smartbins.deviceops import open_stores
    from smartbins.provisioning import ensure_service_accounts

    registry, passwords = open_stores(load_settings(args))
    registry.close()
    creds = ensure_service_accounts(passwords, args.secrets_dir)
    for name in creds:
        print(f"{name}: password in {args.secrets_dir / name} (mode 0600)")
    return 0


def cmd_influxdb(args: argparse.Namespace) -> int:
    from smartbins.deployment import setup_influxdb
    from smartbins.influx import InfluxClient, InfluxError

    password = os.environ.get(ADMIN_PASSWORD_ENV)
    if not password:
        raise SetupError(f"set ${ADMIN_PASSWORD_ENV} to the password of {args.admin_user!r}")
    admin = InfluxClient(args.url, args.database, username=args.admin_user, password=password)
    try:
        creds = setup_influxdb(admin, args.database, args.secrets_dir)
    except InfluxError as e:
        raise SetupError(f"{args.url}: {e}") from None
    for user in creds:
        print(f"{user}: password in {args.secrets_dir / f'influxdb-{user}'} (mode 0600)")
    return 0

"""Setting up a deployment: InfluxDB's database, users and grants. The operator's commands
(`smartbins setup ...`) and, later, the backend call these; registry rows come from
``Registry.add_municipality/add_site/add_bin`` and the broker's service accounts from
``provisioning.ensure_service_accounts``. See docs/operations.md.

Every step is idempotent: run again, it creates what is missing and keeps what exists
(passwords included, so running services are not locked out).
"""

from __future__ import annotations

import re
from pathlib import Path

from smartbins.errors import SmartbinsError
from smartbins.influx import InfluxClient
from smartbins.passwords import new_secret
from smartbins.provisioning import Credentials
from smartbins.settings import SECRET_FILE_MODE, secret_dir, write_secret

#: The InfluxDB accounts: the gateway writes readings, everything else reads them.
INFLUX_WRITER = "smartbins-gateway"
INFLUX_READER = "smartbins-reader"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class DeploymentError(SmartbinsError, ValueError):
    """A bad name; nothing was created."""


def _name(what: str, value: str) -> str:
    if not _NAME.fullmatch(value):
        raise DeploymentError(f"{what} {value!r}: 1 to 64 of A-Z a-z 0-9 _ -")
    return value


def setup_influxdb(
    admin: InfluxClient,
    database: str,
    secrets_dir: Path,
    *,
    writer: str = INFLUX_WRITER,
    reader: str = INFLUX_READER,
) -> dict[str, Credentials]:
    """Create ``database`` and the two users with only the grant each needs (WRITE for the
    gateway's, READ for the reader); their passwords go to ``secrets_dir/influxdb-<user>``
    (mode 0600, directory 0700), reused when the user exists already. ``admin`` must be an
    InfluxDB admin (created with ``CREATE USER ... WITH ALL PRIVILEGES``)."""
    database, writer, reader = (
        _name("database", database), _name("user", writer), _name("user", reader)
    )  # fmt: skip
    secret_dir(secrets_dir)
    admin.execute(f'CREATE DATABASE "{database}"')  # a no-op when it exists
    existing = {row[0] for s in admin.query("SHOW USERS") for row in s.get("values", [])}
    out: dict[str, Credentials] = {}
    for user, grant in ((writer, "WRITE"), (reader, "READ")):
        path = secrets_dir / f"influxdb-{user}"
        if user in existing and path.exists():
            path.chmod(SECRET_FILE_MODE)
            password = path.read_text().strip()
        else:
            password = new_secret()
            write_secret(path, password)
            if user in existing:
                admin.execute(f"SET PASSWORD FOR \"{user}\" = '{password}'")
            else:
                admin.execute(f"CREATE USER \"{user}\" WITH PASSWORD '{password}'")
        admin.execute(f'GRANT {grant} ON "{database}" TO "{user}"')
        out[user] = Credentials(user, password)
    return out

"""Provisioning core: a device's own credentials at the broker and its rows in the registry.

Used by the technicians' CLI (`smartbins provision`, `smartbins device ...`), the simulator's
bulk fleets and the demo. Everything for a batch of devices happens in one registry transaction
and one rewrite of the password file, followed by one broker reload, so provisioning 10,000
simulated devices takes seconds, not one `mosquitto_passwd` run each.

Secrets are returned to the caller once and never logged; ``repr`` hides them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from smartbins.passwords import PasswordFile, PasswordFileError, new_secret
from smartbins.registry import Registry, RegistryError, now_ms
from smartbins.settings import SECRET_FILE_MODE, secret_dir, write_secret

#: Service accounts (a dot: no device id can take these names). See mosquitto.acl.
GATEWAY_ACCOUNT = "smartbins.gateway"
SERVICE_ACCOUNT = "smartbins.service"
SERVICE_ACCOUNTS = (GATEWAY_ACCOUNT, SERVICE_ACCOUNT)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class ProvisionRequest:
    device_id: str
    bin_id: str
    sensor: str = "ultrasonic"
    #: Config thresholds (registry.THRESHOLDS names) other than protocol.DeviceConfig's defaults.
    thresholds: Mapping[str, float] = field(default_factory=dict)


class ProvisioningError(RegistryError):
    """Nothing was changed: the message names the device and the problem."""


def provision(
    registry: Registry,
    passwords: PasswordFile,
    requests: Sequence[ProvisionRequest],
    *,
    at_ms: int | None = None,
) -> list[Credentials]:
    """Create devices, link each to its bin, and give each its own random password.

    All or nothing: a bad request (unknown bin, taken id, bad id), or a password file the
    broker could not read or did not take, changes neither the registry nor the password file.
    """
    t = at_ms if at_ms is not None else now_ms()
    seen: set[str] = set()
    for r in requests:
        if r.device_id in seen:
            raise ProvisioningError(f"device {r.device_id!r} is listed twice")
        seen.add(r.device_id)
    creds = [Credentials(r.device_id, new_secret()) for r in requests]
    try:
        with registry.transaction():
            for r in requests:
                registry.add_device(r.device_id, sensor=r.sensor, at_ms=t, thresholds=r.thresholds)
                registry.link(r.device_id, r.bin_id, at_ms=t)
            # Inside the transaction: if the password file cannot be written, no rows remain.
            passwords.update({c.username: c.password for c in creds})
    except (RegistryError, PasswordFileError) as e:
        raise ProvisioningError(f"provisioning failed, nothing changed: {e}") from None
    return creds


def revoke(registry: Registry, passwords: PasswordFile, device_id: str) -> None:
    """Take the device's account off the broker at once; history stays in the registry."""
    with registry.transaction():
        registry.set_state(device_id, "revoked")
        passwords.update(remove=[device_id])


def rotate(registry: Registry, passwords: PasswordFile, device_id: str) -> Credentials:
    """Issue new credentials (the old password stops working at the broker's reload)."""
    device = registry.device(device_id)
    if device.state == "decommissioned":
        raise ProvisioningError(f"device {device_id!r} is decommissioned; provision a new one")
    cred = Credentials(device_id, new_secret())
    with registry.transaction():
        registry.bump_credentials(device_id)
        registry.set_state(device_id, "active")
        passwords.update({device_id: cred.password})
    return cred


def move(registry: Registry, device_id: str, bin_id: str, at_ms: int | None = None) -> None:
    """Re-link a device to another bin; readings before ``at_ms`` stay with the old bin."""
    registry.link(device_id, bin_id, at_ms)


def decommission(registry: Registry, passwords: PasswordFile, device_id: str) -> None:
    """Retire a device for good: no account, no bin; its readings and history remain."""
    with registry.transaction():
        registry.set_state(device_id, "decommissioned")
        registry.unlink(device_id)
        passwords.update(remove=[device_id])


def ensure_service_accounts(passwords: PasswordFile, secrets_dir: Path) -> dict[str, Credentials]:
    """Give each service account a password, kept in ``secrets_dir/<account>`` with mode 0600
    (the directory 0700; both are set, whatever they were before).

    Existing secrets are reused, so a restart does not lock running services out.
    """
    secret_dir(secrets_dir)
    out: dict[str, Credentials] = {}
    new: dict[str, str] = {}
    known = passwords.usernames()
    for account in SERVICE_ACCOUNTS:
        path = secrets_dir / account
        if path.exists() and account in known:
            path.chmod(SECRET_FILE_MODE)
            out[account] = Credentials(account, path.read_text().strip())
            continue
        secret = new_secret()
        write_secret(path, secret)
        new[account] = secret
        out[account] = Credentials(account, secret)
    if new:
        passwords.update(new)
    return out

"""Provisioning against a real Mosquitto: own credentials per device, all-or-nothing, revocation."""

from __future__ import annotations

import itertools
import os
import stat
from pathlib import Path

import pytest

from smartbins.passwords import PasswordFile, hash_password, verify_password
from smartbins.provisioning import (
    ProvisioningError,
    ProvisionRequest,
    decommission,
    ensure_service_accounts,
    move,
    provision,
    revoke,
    rotate,
)
from smartbins.registry import Registry
from smartbins.testing import Broker

_batch = itertools.count()


@pytest.fixture
def reg(registry_path: Path) -> Registry:
    r = Registry(registry_path)
    r.add_municipality("0101", "København")
    r.add_site("s", "0101", 55.7, 12.6)
    for i in range(20):
        r.add_bin(f"bin-{i}", "s", "residual", 240)
    yield r
    r.close()


def ids(n: int) -> list[str]:
    b = next(_batch)
    return [f"prov{b}-{i}" for i in range(n)]


def test_hash_matches_mosquittos_format() -> None:
    hashed = hash_password("secret", salt=b"\x00" * 12)
    assert hashed.startswith("$7$101$AAAAAAAAAAAAAAAA$")
    assert verify_password("secret", hashed)
    assert not verify_password("Secret", hashed)


def test_each_device_gets_its_own_working_password(
    broker: Broker, reg: Registry, mqtt_probe
) -> None:
    devs = ids(3)
    creds = provision(
        reg, broker.server.passwords, [ProvisionRequest(d, f"bin-{i}") for i, d in enumerate(devs)]
    )
    assert [c.username for c in creds] == devs
    assert len({c.password for c in creds}) == 3
    assert all(c.password not in repr(c) for c in creds)
    for c in creds:
        assert mqtt_probe(c.username, c.password).connect().getName() == "Success"
    assert mqtt_probe(devs[0], creds[1].password).connect().is_failure
    assert [reg.current_link(d).bin_id for d in devs] == ["bin-0", "bin-1", "bin-2"]


def test_bulk_provisioning_is_all_or_nothing(broker: Broker, reg: Registry) -> None:
    devs = ids(3)
    before = broker.server.passwd_path.read_bytes()
    requests = [
        ProvisionRequest(devs[0], "bin-5"),
        ProvisionRequest(devs[1], "no-such-bin"),
        ProvisionRequest(devs[2], "bin-6"),
    ]
    with pytest.raises(ProvisioningError, match="nothing changed: no bin 'no-such-bin'"):
        provision(reg, broker.server.passwords, requests)
    assert broker.server.passwd_path.read_bytes() == before
    assert reg.devices() == []
    with pytest.raises(ProvisioningError, match="listed twice"):
        provision(
            reg,
            broker.server.passwords,
            [ProvisionRequest(devs[0], "bin-5"), ProvisionRequest(devs[0], "bin-6")],
        )


def test_revoke_takes_effect_at_once_and_rotate_replaces_the_password(
    broker: Broker, reg: Registry, mqtt_probe
) -> None:
    (dev,) = ids(1)
    (cred,) = provision(reg, broker.server.passwords, [ProvisionRequest(dev, "bin-7")])
    connected = mqtt_probe(dev, cred.password)
    assert connected.connect().getName() == "Success"
    revoke(reg, broker.server.passwords, dev)
    assert reg.device(dev).state == "revoked"
    # The broker dropped the live connection at the reload, and refuses a new one.
    connected.wait_for(lambda _: not connected.client.is_connected(), timeout=5)
    assert mqtt_probe(dev, cred.password).connect().is_failure
    new = rotate(reg, broker.server.passwords, dev)
    assert new.password != cred.password
    assert reg.device(dev).credential_version == 2
    assert mqtt_probe(dev, new.password).connect().getName() == "Success"
    assert mqtt_probe(dev, cred.password).connect().is_failure


def test_move_and_decommission_keep_history(broker: Broker, reg: Registry, mqtt_probe) -> None:
    (dev,) = ids(1)
    (cred,) = provision(reg, broker.server.passwords, [ProvisionRequest(dev, "bin-8")], at_ms=1_000)
    move(reg, dev, "bin-9", at_ms=2_000)
    decommission(reg, broker.server.passwords, dev)
    assert [(h.bin_id, h.from_ms) for h in reg.history(dev)] == [("bin-8", 1_000), ("bin-9", 2_000)]
    assert reg.current_link(dev) is None
    assert reg.device(dev).state == "decommissioned"
    assert mqtt_probe(dev, cred.password).connect().is_failure
    with pytest.raises(ProvisioningError, match="decommissioned"):
        rotate(reg, broker.server.passwords, dev)


def test_service_account_secrets_are_private_and_reused(tmp_path: Path) -> None:
    passwords = PasswordFile(tmp_path / "passwd", broker_user=None)  # the broker runs as us
    first = ensure_service_accounts(passwords, tmp_path / "secrets")
    again = ensure_service_accounts(passwords, tmp_path / "secrets")
    assert {k: v.password for k, v in first.items()} == {k: v.password for k, v in again.items()}
    for account, cred in first.items():
        path = tmp_path / "secrets" / account
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert verify_password(cred.password, passwords.read()[account])
    assert stat.S_IMODE(os.stat(tmp_path / "passwd").st_mode) == 0o600
    # No secret in the password file itself, only hashes.
    text = (tmp_path / "passwd").read_text()
    assert all(c.password not in text for c in first.values())

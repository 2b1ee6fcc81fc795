"""Files that hold secrets or hashes get an explicit owner and mode, whatever was at the path
before; provisioning proves the broker can read and took the password file (issue 11 items 4
and 8, issue 15 item 7). Against a real Mosquitto that drops to its own user, as in production."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartbins.devicestatus import StatusStore
from smartbins.passwords import BROKER_USER, PasswordFile, mqtt_login
from smartbins.provisioning import (
    GATEWAY_ACCOUNT,
    Credentials,
    ProvisioningError,
    ProvisionRequest,
    ensure_service_accounts,
    provision,
)
from smartbins.registry import Registry
from smartbins.servers import Mosquitto, temp_workdir

as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="the broker drops to the mosquitto user only when started as root"
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_password_file_gets_owner_group_and_mode_whatever_it_had(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("")
    path.chmod(0o644)  # what an earlier `mosquitto_passwd -c` leaves
    PasswordFile(path, broker_user=None).update({"dev-1": "pw"})  # the broker runs as us
    assert mode(path) == 0o600
    if os.geteuid() == 0:  # the broker's user must reach it: not under pytest's 0700 tree
        workdir = temp_workdir("modes")
        try:
            path = workdir / "passwd"
            path.write_text("")
            path.chmod(0o644)
            PasswordFile(path, broker_user=BROKER_USER).update({"dev-2": "pw"})
            assert mode(path) == 0o640
            assert path.stat().st_gid == pwd.getpwnam(BROKER_USER).pw_gid
            assert path.stat().st_uid == os.geteuid()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def test_secrets_on_existing_paths_and_their_directory_get_0600_and_0700(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o755)
    secrets.chmod(0o755)
    stale = secrets / GATEWAY_ACCOUNT
    stale.write_text("old\n")
    stale.chmod(0o644)  # on an existing path, not yet an account: rewritten
    passwords = PasswordFile(tmp_path / "passwd")
    ensure_service_accounts(passwords, secrets)
    assert mode(secrets) == 0o700
    assert {p.name: mode(p) for p in secrets.iterdir()} == {
        GATEWAY_ACCOUNT: 0o600,
        "smartbins.service": 0o600,
    }
    assert stale.read_text().strip() != "old"
    stale.chmod(0o644)  # an account's secret that someone loosened: reused, tightened
    secrets.chmod(0o755)
    again = ensure_service_accounts(passwords, secrets)
    assert again[GATEWAY_ACCOUNT].password == stale.read_text().strip()
    assert mode(stale) == 0o600 and mode(secrets) == 0o700


def test_registry_and_status_databases_are_private(tmp_path: Path) -> None:
    reg_path, status_path = tmp_path / "registry.sqlite", tmp_path / "status.sqlite"
    status_path.touch(mode=0o644)
    status_path.chmod(0o644)
    Registry(reg_path).close()
    StatusStore(status_path).close()
    assert mode(reg_path) == 0o600 and mode(status_path) == 0o600


# --- provisioning against a broker that must read what it is given ---------------------------


@pytest.fixture
def own_broker() -> Iterator[tuple[Mosquitto, Credentials, Registry]]:
    workdir = temp_workdir("modes")
    server = Mosquitto(workdir)
    creds = ensure_service_accounts(server.passwords, workdir / "secrets")
    reg = Registry(workdir / "registry.sqlite")
    reg.add_municipality("0101", "København")
    reg.add_site("s", "0101", 55.7, 12.6)
    for i in range(3):
        reg.add_bin(f"bin-{i}", "s", "residual", 240)
    try:
        server.start()
        yield server, creds[GATEWAY_ACCOUNT], reg
    finally:
        reg.close()
        server.stop()
        workdir.chmod(0o700)
        shutil.rmtree(workdir, ignore_errors=True)


def login(server: Mosquitto, cred: Credentials) -> int:
    return mqtt_login("127.0.0.1", server.port, cred.username, cred.password)


@as_root
def test_provisioning_fixes_a_password_file_the_broker_could_not_read(own_broker) -> None:
    """The operator left the file root:root 0600: the rewrite gives it the broker's group."""
    server, gateway, reg = own_broker
    os.chown(server.passwd_path, 0, 0)
    server.passwd_path.chmod(0o600)
    (cred,) = provision(reg, server.passwords, [ProvisionRequest("modes-a", "bin-0")])
    assert login(server, cred) == 0 and login(server, gateway) == 0
    assert mode(server.passwd_path) == 0o640


@as_root
def test_provisioning_fails_and_changes_nothing_when_the_broker_cannot_reach_the_file(
    own_broker,
) -> None:
    server, gateway, reg = own_broker
    before = server.passwd_path.read_bytes()
    os.chown(server.workdir, 0, 0)
    server.workdir.chmod(0o700)  # the broker's user can no longer enter the directory
    try:
        with pytest.raises(ProvisioningError, match=r"cannot enter .* run: chmod o\+x"):
            provision(reg, server.passwords, [ProvisionRequest("modes-b", "bin-1")])
    finally:
        server.workdir.chmod(0o711)
    assert server.passwd_path.read_bytes() == before
    assert reg.devices() == []
    assert login(server, gateway) == 0  # nothing reloaded: everyone still gets in


@as_root
def test_provisioning_fails_and_restores_the_file_when_the_reload_does_not_take(
    own_broker,
) -> None:
    server, gateway, reg = own_broker
    before = server.passwd_path.read_bytes()
    lost_reload = PasswordFile(
        server.passwd_path,
        reload=lambda: None,  # e.g. a reload command that signals the wrong process
        verify=server.check_login,
        broker_user=BROKER_USER,
    )
    with pytest.raises(ProvisioningError, match="did not take the new password file"):
        provision(reg, lost_reload, [ProvisionRequest("modes-c", "bin-2")])
    assert server.passwd_path.read_bytes() == before
    assert reg.devices() == []
    assert login(server, gateway) == 0

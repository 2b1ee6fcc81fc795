"""Fixtures of the firmware tests; the helpers live in fwtools.py."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fwtools import Acknowledger, FakeDevice, Fleet, make_fake_device

from smartbins.provisioning import Credentials
from smartbins.servers import temp_workdir
from smartbins.testing import MqttProbe


@pytest.fixture
def fake_device(tmp_path: Path) -> FakeDevice:
    return make_fake_device(tmp_path)


@pytest.fixture
def acknowledger_factory() -> Iterator[Callable[[int, Credentials], Acknowledger]]:
    made: list[Acknowledger] = []

    def make(port: int, creds: Credentials) -> Acknowledger:
        a = Acknowledger(port, creds)
        made.append(a)
        return a

    yield make
    for a in made:
        a.close()


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    """A module's own broker and registry: these tests stop and restart the broker."""
    workdir = temp_workdir("fw-fleet")
    f = Fleet(workdir)
    try:
        f.start()
        yield f
    finally:
        f.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def mqtt_probe_factory() -> Iterator[Callable[..., MqttProbe]]:
    """``make(port, user, password)``: a paho probe against any broker, closed afterwards."""
    made: list[MqttProbe] = []

    def make(port: int, username: str, password: str, **kwargs: object) -> MqttProbe:
        probe = MqttProbe(port, username, password, **kwargs)  # type: ignore[arg-type]
        made.append(probe)
        return probe

    yield make
    for probe in made:
        probe.client.loop_stop()
        probe.client.disconnect()

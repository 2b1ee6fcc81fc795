"""Fixtures of the firmware tests; the helpers live in fwtools.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fwtools import Acknowledger, FakeDevice, make_fake_device

from smartbins.provisioning import Credentials


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

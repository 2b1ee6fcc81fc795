"""Fixtures for the API's tests over the world of ``api_world.py`` (a module of its own, so that
test modules import it by a name no other test directory's conftest shares)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_world import World, build_world

from smartbins.servers import InfluxDB
from smartbins.testing import Broker


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, influxdb: InfluxDB, broker: Broker
) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("api"), influxdb, broker)
    with w.client:
        yield w


@pytest.fixture
def fresh_world(tmp_path: Path, influxdb: InfluxDB, broker: Broker) -> Iterator[World]:
    """A world of its own, for tests that change things."""
    w = build_world(tmp_path, influxdb, broker)
    with w.client:
        yield w


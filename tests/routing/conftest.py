"""Named fixtures for the routing tests: small instances that are easy to reason about."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from routing.model import Model, ProblemData

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT / ".." / "shared"
CVRPLIB_DIR = SHARED / "data" / "cvrplib"


@pytest.fixture(scope="session")
def cvrplib_dir() -> Path:
    """The shared CVRPLIB subset; skipped only when ../shared itself is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: check out the shared data folder beside the repo")
    return CVRPLIB_DIR


@pytest.fixture
def ok_small() -> ProblemData:
    """4 customers on a line either side of the depot, capacity 10, two trucks.

    Optimum: one truck each side, cost 2*(1+2) + 2*(1+2)... see test for the value.
    """
    xy = np.array([[0, 0], [1, 0], [2, 0], [-1, 0], [-2, 0]], dtype=float)
    dist = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    return ProblemData.cvrp(dist, [5, 5, 5, 5], capacity=10, num_vehicles=2)


@pytest.fixture
def two_chamber_city() -> Model:
    """A small two-stream city: 8 stops, one depot, two disposal sites, two-chamber trucks.

    Stream 0 ("residual") goes to site 0, stream 1 ("glass") to site 1; each truck has
    capacity 10 residual and 6 glass, so the trucks must unload mid-shift.
    """
    m = Model(streams=("residual", "glass"))
    m.add_depot(0, 0)
    rng = np.random.default_rng(7)
    for i, (x, y) in enumerate(rng.uniform(-2000, 2000, size=(8, 2))):
        m.add_stop(x, y, demand=[4.0, 2.0 if i % 2 else 0.0], service_s=60,
                   bin_ids=[f"bin-{i}-a", f"bin-{i}-b"])
    m.add_disposal_site(1500, 0, accepts=[0], unload_s=600)
    m.add_disposal_site(-1500, 0, accepts=[1], unload_s=300)
    m.add_vehicle_type(num=2, capacity=[10.0, 6.0], shift_duration_s=8 * 3600,
                       speed_mps=25 / 3.6, cost_per_km=1.0)
    return m

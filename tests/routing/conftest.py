"""Named fixtures for the routing tests: small instances that are easy to reason about."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kernel_check import kernel_cost

import routing.solve as _solve_module
from routing.model import Model, ProblemData
from routing.params import RoutingParams

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT / ".." / "shared"
CVRPLIB_DIR = SHARED / "data" / "cvrplib"


#: Every Result a solve in these tests returns (checked by check_kernel_agrees below).
SOLVES: list[tuple[ProblemData, _solve_module.Result, RoutingParams | None]] = []
_RECORDING = [False]  # only while a test of tests/routing runs
_real_solve = _solve_module.solve


def _recorded_solve(data: ProblemData, stop: object, seed: int = 1,
                    params: RoutingParams | None = None) -> _solve_module.Result:
    result = _real_solve(data, stop, seed, params)  # type: ignore[arg-type]
    if _RECORDING[0]:
        SOLVES.append((data, result, params))
    return result


# Installed before the test modules import ``solve``, so every solve of tests/routing/ is
# recorded; each test then checks its own (the autouse fixture below).
_solve_module.solve = _recorded_solve  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def check_kernel_agrees():
    """After every test: for each feasible plan it solved, the compiled kernel's own cost
    equals the independent checker's (the figure Result.cost reports)."""
    SOLVES.clear()
    _RECORDING[0] = True
    yield
    _RECORDING[0] = False
    for data, result, params in SOLVES:
        if result.is_feasible:
            assert kernel_cost(data, result, params) == pytest.approx(
                result.cost, rel=1e-9, abs=1e-6
            ), "the compiled kernel and the checker disagree on the plan's cost"
    SOLVES.clear()


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

"""The wastevrp bench's model of each family agrees with the published best solutions:
their routes pass our checker at exactly the stated cost (release dates, reloads at the
depot, prizes and the x10 truncation all as PyVRP's reader has them)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from routing.feasibility import check_routes
from routing.solve import solve
from routing.stop import MaxIterations

REPO = Path(__file__).resolve().parents[2]
WASTE = REPO / ".." / "shared" / "data" / "wastevrp"


@pytest.fixture(scope="module")
def wastevrp():
    if not WASTE.is_dir():
        pytest.skip(f"{WASTE} is absent: check out the shared data folder beside the repo")
    spec = importlib.util.spec_from_file_location("wastevrp", REPO / "bench" / "wastevrp.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sol_plan(path: Path, data) -> list[tuple[int, list[int]]]:
    """VRPLIB .sol routes (client numbers, 0 = reload at the depot) as our visits."""
    site = data.num_depots + data.num_stops  # the depot's reload site, when there is one
    plan = []
    for line in path.with_suffix(".sol").read_text().splitlines():
        if not line.startswith("Route"):
            continue
        visits = [site if int(x) == 0 else int(x) for x in line.split(":")[1].split()]
        if data.num_disposal:
            visits.append(site)
        plan.append((len(plan), visits))
    return plan


@pytest.mark.parametrize("family,name", [
    ("mtvrptwr", "R202R0.5"), ("mtvrptwr", "C2_2_02R0.5"), ("mtvrptwr", "RC201R0.25"),
    ("pcvrptw", "C1_10_1"), ("pcvrptw", "R1_10_2"),
])
def test_best_known_solutions_check_at_their_stated_cost(wastevrp, family, name):
    path = WASTE / family / f"{name}.vrp"
    data = wastevrp.vrplib_data(path)
    violations, cost, _ = check_routes(data, _sol_plan(path, data))
    assert violations == []
    assert cost == pytest.approx(wastevrp.best_known(path))


def test_kim_reads_by_the_readme_rules_and_solves_feasibly(wastevrp):
    data, head = wastevrp.kim_data(WASTE / "kim2006" / "804_stop.txt")
    assert 1 + data.num_disposal + data.num_stops == 804 and data.num_disposal == 19
    assert head["trips"] == 36  # ceil(10000 / 280)
    assert data.resolved("max_stops")[0] == 500
    assert data.shift_duration_s[0] == 11 * 3600 - 3600  # 04:00-15:00 minus lunch
    res = solve(data, MaxIterations(1), seed=1)
    assert res.is_feasible

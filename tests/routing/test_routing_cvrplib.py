"""CVRPLIB I/O: the shared best-known solutions read back to their stated costs."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from routing.cvrplib import CvrplibFormatError, read_sol, read_vrp, solution_cost, write_sol
from routing.feasibility import check_routes


def _bks(cvrplib_dir):
    with open(cvrplib_dir / "BKS.csv") as fh:
        return {row["instance"]: float(row["bks"]) for row in csv.DictReader(fh)}


def test_all_eight_instances_present(cvrplib_dir):
    assert len(sorted(cvrplib_dir.glob("*.vrp"))) == 8


@pytest.mark.parametrize(
    "name",
    ["A-n32-k5", "E-n51-k5", "X-n101-k25", "X-n125-k30", "M-n200-k17", "X-n200-k36",
     "X-n502-k39", "X-n1001-k43"],
)
def test_sol_reads_back_to_stated_cost_and_is_feasible(cvrplib_dir, name):
    inst = read_vrp(cvrplib_dir / f"{name}.vrp")
    routes, stated = read_sol(cvrplib_dir / f"{name}.sol")
    assert stated == _bks(cvrplib_dir)[name]
    assert solution_cost(inst.distance(), routes) == stated
    data = inst.to_data(num_vehicles=len(routes))
    violations, cost, _ = check_routes(data, list(enumerate(routes)))
    assert violations == []
    assert cost == stated


def test_write_sol_round_trip(tmp_path, cvrplib_dir):
    routes, cost = read_sol(cvrplib_dir / "A-n32-k5.sol")
    write_sol(tmp_path / "out.sol", [*routes, []], cost)
    again, cost2 = read_sol(tmp_path / "out.sol")
    assert again == routes and cost2 == cost == 784


def test_nint_rounding_matches_tsplib(cvrplib_dir):
    inst = read_vrp(cvrplib_dir / "A-n32-k5.vrp")
    d = inst.distance()
    xy = inst.coords
    exact = np.hypot(*(xy[0] - xy[1]))
    assert d[0, 1] == np.floor(exact + 0.5)
    assert inst.num_customers == 31 and inst.capacity == 100 and inst.min_vehicles == 5
    assert inst.to_data().num_vehicles == 8  # ceil(1.5 * 5)


def test_dimension_mismatch_is_named(tmp_path):
    bad = tmp_path / "DimensionLargerThanNodes.vrp"
    bad.write_text(
        "NAME : t\nDIMENSION : 3\nCAPACITY : 5\nEDGE_WEIGHT_TYPE : EUC_2D\n"
        "NODE_COORD_SECTION\n1 0 0\n2 1 1\nDEMAND_SECTION\n1 0\n2 1\nDEPOT_SECTION\n1\n-1\nEOF\n"
    )
    with pytest.raises(CvrplibFormatError, match="DIMENSION is 3 but 2 coordinates"):
        read_vrp(bad)


def test_unsupported_edge_weight_type(tmp_path):
    bad = tmp_path / "ExplicitWeights.vrp"
    bad.write_text("NAME : t\nDIMENSION : 1\nCAPACITY : 5\nEDGE_WEIGHT_TYPE : EXPLICIT\n")
    with pytest.raises(CvrplibFormatError, match="only EUC_2D"):
        read_vrp(bad)

"""The compiled kernel's own cost of a solve, to hold against the checker's (tests/routing/
conftest.py does after every routing test). A module of its own so that tests import it by a
name no other test directory's conftest shares."""

from __future__ import annotations

import numpy as np

import routing.solve as _solve_module
from routing import evaluate as _ev
from routing.ils import restore
from routing.model import ProblemData
from routing.params import RoutingParams


def kernel_cost(data: ProblemData, result: _solve_module.Result,
                params: RoutingParams | None = None) -> float:
    """The compiled kernel's own cost of the plan ``result`` holds: its routes (stop order, and
    each disposal visit as the unload placed before the stop that follows it; a final unload
    the kernel adds itself) loaded into a fresh kernel solution and scored by
    ``evaluate.total_cost``, the figure the search optimises.

    The one place these tests reach past the public API (routing.solve's private compile
    step, routing.ils.restore): if routing's internals change, only this function follows them."""
    inst = _solve_module._compile_inst(data, params or RoutingParams())
    sol = _solve_module._new_sol(data, 1)
    nd, ns = data.num_depots, data.num_stops
    seq = np.zeros((data.num_vehicles, max(ns, 1)), dtype=np.int64)
    rlen = np.zeros(data.num_vehicles, dtype=np.int64)
    unl = np.full(max(ns, 1), -1, dtype=np.int64)
    for rep in result.routes:
        stops = [v - nd for v in rep.visits if nd <= v < nd + ns]
        seq[rep.vehicle, : len(stops)] = stops
        rlen[rep.vehicle] = len(stops)
        site = -1
        for v in rep.visits:
            if v >= nd + ns:
                site = v - nd - ns
            elif v >= nd:
                unl[v - nd] = site
                site = -1
    for r in range(data.num_vehicles):
        _ev.refresh_route(inst, sol, r)
    restore(inst, sol, seq, rlen, unl[:ns])
    return float(_ev.total_cost(inst, sol))

"""Pricing moves from time-window segments (``evaluate._eval_tw``) gives exactly the cost
and penalties of simulating the truck (``evaluate.walk``), on generated instances with
windows, shifts, start windows, latest returns, day volume, stop limits and optional
stops, for random concatenations of pieces of routes (prefixes, suffixes, middles, reversed
or not). Integer data, so the figures must be equal, not close. Reaches past the public API
(routing.solve's compile step)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import routing.solve as solve_module
from routing import evaluate as ev
from routing.ils import restore
from routing.model import Model
from routing.params import RoutingParams


def _instance(seed: int, n: int, tight: bool):
    rng = np.random.default_rng(seed)
    m = Model()
    m.add_depot(0, 0)
    for _ in range(n):
        early = float(rng.choice([0, 200, 1000]))
        late = float(rng.choice([np.inf, early + 300, early + 2000]))
        m.add_stop(float(rng.integers(-500, 500)), float(rng.integers(-500, 500)),
                   demand=float(rng.integers(0, 6)), service_s=float(rng.integers(0, 30)),
                   tw_early_s=early, tw_late_s=late, required=bool(rng.integers(0, 2)),
                   prize=float(rng.integers(0, 500)))
    m.add_vehicle_type(
        num=3, capacity=10.0 if tight else 100.0, speed_mps=1.0,
        shift_duration_s=2500.0 if tight else float("inf"),
        shift_start_s=float(rng.choice([0, 100])),
        shift_start_late_s=float(rng.choice([0, 100, 900])) + 100.0,
        return_late_s=3000.0 if tight else float("inf"),
        max_stops=4 if tight else 1 << 20, max_volume=15.0 if tight else float("inf"),
        cost_per_km=1000.0, cost_per_h=float(rng.choice([0.0, 3600.0])),
    )
    return m.data(metric="euclidean_nint")


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 12), tight=st.booleans(),
       moves=st.integers(0, 2**31 - 1))
def test_segments_price_every_concatenation_exactly_as_the_walk(seed, n, tight, moves):
    data = _instance(seed, n, tight)
    assert solve_module._tw_fast(data)
    inst = solve_module._compile_inst(data, RoutingParams())
    assert inst.c[ev.C_TWFAST] == 1.0
    sol = solve_module._new_sol(data, 1)
    rng = np.random.default_rng(moves)
    # random routes over the three trucks, some stops unrouted
    nv = data.num_vehicles
    seq = np.zeros((nv, n), dtype=np.int64)
    rlen = np.zeros(nv, dtype=np.int64)
    for u in rng.permutation(n):
        r = int(rng.integers(0, nv + 1))
        if r < nv:
            seq[r, rlen[r]] = u
            rlen[r] += 1
    restore(inst, sol, seq, rlen, np.full(n, -1, dtype=np.int64))
    empty = sol.bufs[0, :0]
    for _ in range(30):
        v = int(rng.integers(0, nv))
        k = int(rng.integers(1, 6))
        budget = n  # a move's pieces hold each stop at most once: at most n stops
        for row in range(k):
            r = int(rng.integers(0, nv))
            ln = int(rlen[r])
            if ln == 0 or budget == 0:
                sol.segs[row] = (r, 0, -1, 0)
                continue
            i = int(rng.integers(0, ln))
            j = int(rng.integers(i, ln))
            kind = rng.integers(0, 3)  # a prefix, a suffix or anything
            if kind == 0:
                i = 0
            elif kind == 1:
                j = ln - 1
            if j - i + 1 > budget:
                i = j - budget + 1
            budget -= j - i + 1
            sol.segs[row] = (r, i, j, int(rng.integers(0, 2)))
        fast = ev._eval_tw(inst, sol, 0, k, v)
        fast_pen = (sol.work[ev.W_PEN], sol.work[ev.W_PENL])
        slow, _ = ev.walk(inst, sol, 0, k, v, empty)
        assert fast == slow
        assert fast_pen == (sol.work[ev.W_PEN], sol.work[ev.W_PENL])

"""Iterated local search: ruin, recreate, local search, simulated-annealing acceptance.

One call runs a chunk of iterations inside compiled code; the Python driver in
``solve.py`` calls it repeatedly and asks the stopping criterion in between, so
the time limit is honoured without the compiled loop reading a clock.

Only routes changed in an iteration are copied back on acceptance (or restored
on rejection), so an iteration costs time proportional to what it touched, not
to the size of the plan.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from routing.construct import recreate, ruin
from routing.evaluate import (
    C_PENL,
    C_PENT,
    I_PROMISING,
    I_ROUTE,
    I_SEEN,
    I_UNLOAD,
    R_LEN,
    R_MODIFIED,
    Inst,
    Sol,
    infeasibility,
    rand_float,
    rand_int,
    refresh_all,
    refresh_route,
    total_cost,
)
from routing.local_search import local_search


@njit(cache=True)
def snapshot(sol: Sol, seq: np.ndarray, rlen: np.ndarray, unl: np.ndarray) -> None:
    """Copy every route of ``sol`` into (seq, rlen) and the placed unloads into unl."""
    for r in range(rlen.shape[0]):
        n = sol.route_i[R_LEN, r]
        seq[r, :n] = sol.seq[r, :n]
        rlen[r] = n
    unl[:] = sol.stop_i[I_UNLOAD]


@njit(cache=True)
def _repair(inst: Inst, sol: Sol, order: np.ndarray) -> None:
    """Local search with ten times the penalty weights, from every stop of an infeasible
    route, then back to the normal weights."""
    pl = inst.c[C_PENL]
    pt = inst.c[C_PENT]
    inst.c[C_PENL] = 10.0 * pl
    inst.c[C_PENT] = 10.0 * pt
    refresh_all(inst, sol)
    for r in range(sol.rcost.shape[0] - 1):
        if sol.rpen[0, r] + sol.rpen[1, r] > 1e-12:
            for p in range(sol.route_i[R_LEN, r]):
                sol.stop_i[I_PROMISING, sol.seq[r, p]] = 1
    local_search(inst, sol, order, True)
    inst.c[C_PENL] = pl
    inst.c[C_PENT] = pt
    refresh_all(inst, sol)


@njit(cache=True, _nrt=False)
def cycle_position(i: int, first: int) -> tuple:
    """(cycle, position in [0, 1)) of iteration ``i`` in annealing cycles of ``first``,
    2 ``first``, 4 ``first`` ... iterations (cycle k starts at first * (2^k - 1))."""
    k = 0
    start = 0
    length = max(first, 1)
    while i >= start + length:
        start += length
        length *= 2
        k += 1
    return k, (i - start) / length


@njit(cache=True)
def restore(inst: Inst, sol: Sol, seq: np.ndarray, rlen: np.ndarray, unl: np.ndarray) -> None:
    """Make ``sol`` the plan (seq, rlen, unl) (a snapshot)."""
    sol.stop_i[I_ROUTE] = -1
    sol.stop_i[I_SEEN] = -1
    sol.stop_i[I_UNLOAD] = unl
    for r in range(rlen.shape[0]):
        sol.seq[r, : rlen[r]] = seq[r, : rlen[r]]
        sol.route_i[R_LEN, r] = rlen[r]
        refresh_route(inst, sol, r)


@njit(cache=True)
def ils_chunk(
    inst: Inst,
    sol: Sol,
    cur_seq: np.ndarray,
    cur_rlen: np.ndarray,
    cur_unl: np.ndarray,
    best_seq: np.ndarray,
    best_rlen: np.ndarray,
    best_unl: np.ndarray,
    costs: np.ndarray,
    first_iter: int,
    n_iter: int,
    cycle: int,
    temp_hi: float,
    temp_lo: float,
    restart_after: int,
    min_remove: int,
    max_remove: int,
    max_string: int,
    blink: float,
    elim: float,
    repair: float,
    pen: np.ndarray,
    order: np.ndarray,
) -> None:
    """Run iterations ``first_iter`` .. ``first_iter + n_iter - 1``. ``costs`` = [current,
    best, load-feasible count, time-feasible count, plans counted, iterations since the
    best improved] is read and updated; only a feasible plan can become the best.

    Anytime: everything here depends on the iteration number and the plans seen, never
    on a time limit, so a run that is allowed more iterations is the same run continued
    (and how the caller cuts the run into chunks changes nothing). The temperature
    decays geometrically from ``temp_hi`` to ``temp_lo`` over each annealing cycle;
    cycles last ``cycle``, 2 ``cycle``, 4 ``cycle`` ... iterations, and each one after the
    first starts again from the best plan. The search also goes back to the best plan
    after ``restart_after`` iterations without a better one.

    Penalty-guided search: the plan may overload trucks or run late, priced by the
    weights ``inst.c[C_PENL]``, ``inst.c[C_PENT]``. After every ``pen[5]`` plans each is
    multiplied by ``pen[6]`` when the share of plans feasible in that respect is below
    ``pen[4]`` - 0.05 and by ``pen[7]`` when it is above ``pen[4]`` + 0.05, within
    [``pen[0]``, ``pen[1]``] (load) and [``pen[2]``, ``pen[3]``] (time). An infeasible plan
    gets, with probability ``repair``, a local search with ten times the weights to pull
    it back to feasibility (as in HGS and PyVRP).
    """
    nroutes = cur_rlen.shape[0]
    removed = np.empty(sol.stop_i.shape[1], dtype=np.int64)
    changed = np.empty(nroutes, dtype=np.int64)
    for it in range(first_iter, first_iter + n_iter):
        k_cyc, pos = cycle_position(it, cycle)
        if k_cyc > 0 and pos == 0.0:
            costs[5] = restart_after  # a new cycle starts from the best plan
        if costs[5] >= restart_after and np.isfinite(costs[1]):
            restore(inst, sol, best_seq, best_rlen, best_unl)
            snapshot(sol, cur_seq, cur_rlen, cur_unl)
            costs[5] = 0.0
            costs[0] = total_cost(inst, sol)
        if temp_hi > 0.0 and temp_lo > 0.0:
            temp = temp_hi * (temp_lo / temp_hi) ** pos
        else:
            temp = temp_hi + (temp_lo - temp_hi) * pos
        c0 = int(sol.misc[1])
        k = min_remove + rand_int(sol.misc, max_remove - min_remove + 1)
        n = ruin(inst, sol, k, max_string, elim, removed)
        recreate(inst, sol, removed, n, blink, True)
        local_search(inst, sol, order, True)
        bad_l, bad_t = infeasibility(inst, sol)
        costs[2] += 0.0 if bad_l else 1.0
        costs[3] += 0.0 if bad_t else 1.0
        costs[4] += 1.0
        if (bad_l or bad_t) and rand_float(sol.misc) < repair:
            _repair(inst, sol, order)
            bad_l, bad_t = infeasibility(inst, sol)
        feasible = not (bad_l or bad_t)
        new_cost = total_cost(inst, sol)
        nch = 0
        for r in range(nroutes):
            if sol.route_i[R_MODIFIED, r] > c0:
                changed[nch] = r
                nch += 1
        threshold = costs[0]
        if temp > 0.0:
            threshold -= temp * np.log(1.0 - rand_float(sol.misc))
        if new_cost < threshold:
            for k2 in range(nch):
                r = changed[k2]
                ln = sol.route_i[R_LEN, r]
                cur_seq[r, :ln] = sol.seq[r, :ln]
                cur_rlen[r] = ln
                for p in range(ln):
                    cur_unl[sol.seq[r, p]] = sol.stop_i[I_UNLOAD, sol.seq[r, p]]
            costs[0] = new_cost
            if feasible and new_cost < costs[1] - 1e-9:
                costs[1] = new_cost
                costs[5] = 0.0
                snapshot(sol, best_seq, best_rlen, best_unl)
            else:
                costs[5] += 1.0
        else:
            costs[5] += 1.0
            for k2 in range(nch):
                r = changed[k2]
                for p in range(sol.route_i[R_LEN, r]):
                    sol.stop_i[I_ROUTE, sol.seq[r, p]] = -1
            for k2 in range(nch):
                r = changed[k2]
                ln = cur_rlen[r]
                sol.seq[r, :ln] = cur_seq[r, :ln]
                sol.route_i[R_LEN, r] = ln
                for p in range(ln):
                    sol.stop_i[I_UNLOAD, cur_seq[r, p]] = cur_unl[cur_seq[r, p]]
                refresh_route(inst, sol, r)
        if costs[4] >= pen[5] and _adapt_penalties(inst, costs, pen):
            refresh_all(inst, sol)
            costs[0] = total_cost(inst, sol)


@njit(cache=True, _nrt=False)
def _adapt_penalties(inst: Inst, costs: np.ndarray, pen: np.ndarray) -> bool:
    """Raise a weight when too few plans were feasible in its respect, lower it when too
    many were; reset the counts. Returns True if a weight changed."""
    changed = False
    for k in range(2):
        col = C_PENL if k == 0 else C_PENT
        share = costs[2 + k] / costs[4]
        w = inst.c[col]
        if share < pen[4] - 0.05:
            w *= pen[6]
        elif share > pen[4] + 0.05:
            w *= pen[7]
        w = min(max(w, pen[2 * k]), pen[2 * k + 1])
        changed = changed or w != inst.c[col]
        inst.c[col] = w
    costs[2] = 0.0
    costs[3] = 0.0
    costs[4] = 0.0
    return changed


@njit(cache=True)
def shuffle(order: np.ndarray, rng: np.ndarray) -> None:
    """Fisher-Yates shuffle with the solution's own generator."""
    for i in range(order.shape[0] - 1, 0, -1):
        j = rand_int(rng, i + 1)
        order[i], order[j] = order[j], order[i]

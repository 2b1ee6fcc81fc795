"""Construction and ruin-and-recreate: greedy insertion with blinks, string removal.

The same greedy insertion builds the first solution (stops far from the depot
first, so that route skeletons form around the periphery) and repairs the
solution after each ruin. Removal follows Christiaens and Vanden Berghe's SISR
idea: cut short strings out of a few routes that are close to a random seed
stop, so that the repair can rebuild a neighbourhood of the plan differently.
Insertion positions are looked up next to the stop's granular neighbours (and at
the start of one empty route); only when none of those is feasible do we scan
every position.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from routing.evaluate import (
    C_ND,
    I_POS,
    I_ROUTE,
    I_UNLOAD,
    R_LEN,
    S_DEM1,
    S_PRIZE,
    S_REQ,
    V_START,
    W_PEN,
    B,
    Inst,
    Sol,
    apply_pieces,
    eval_segs,
    rand_float,
    rand_int,
    set_scratch,
    set_seg,
)


@njit(cache=True, _nrt=False, inline="always")
def _insert_delta(inst: Inst, sol: Sol, scratch: int, rv: int, q: int) -> float:
    """Cost increase of putting the scratch stop after position q of route rv."""
    segs = sol.segs
    set_seg(segs, B, rv, 0, q, 0)
    set_seg(segs, B + 1, scratch, 0, 0, 0)
    set_seg(segs, B + 2, rv, q + 1, sol.route_i[R_LEN, rv] - 1, 0)
    return eval_segs(inst, sol, B, 3, rv) - sol.rcost[rv]


@njit(cache=True, _nrt=False)
def insert_stop(inst: Inst, sol: Sol, u: int, blink: float, build: bool,
                force: bool) -> bool:
    """Insert unrouted stop u at the cheapest position found (penalised cost).

    Optional stops go in only when their prize pays for the added cost, except while
    building the first plan (``build``) or when ``force``d: then they go in wherever that
    is feasible, and the local search drops the ones (or the routes) that do not pay.
    This way a cluster of optional stops that pays only as a whole gets a route. When
    ``build`` and no feasible place is near the neighbours, every position of every
    route is scanned. Returns True if inserted.
    """
    scratch = set_scratch(inst, sol, u)
    best = np.inf
    best_pen = np.inf
    best_r = -1
    best_q = -2
    nroutes = sol.rcost.shape[0] - 1
    for kk in range(inst.nb.shape[1]):
        v = inst.nb[u, kk]
        rv = sol.stop_i[I_ROUTE, v]
        if rv < 0:
            continue
        pv = sol.stop_i[I_POS, v]
        for q in (pv, pv - 1):
            if blink > 0.0 and rand_float(sol.misc) < blink:
                continue
            d = _insert_delta(inst, sol, scratch, rv, q)
            if d < best:
                best, best_pen, best_r, best_q = d, sol.work[W_PEN], rv, q
    # one empty route (trucks are identical enough that trying one is what matters)
    for r in range(nroutes):
        if sol.route_i[R_LEN, r] == 0:
            d = _insert_delta(inst, sol, scratch, r, np.int64(-1))
            if d < best:
                best, best_pen, best_r, best_q = d, sol.work[W_PEN], r, -1
            break
    if build and best_pen > 1e-9:
        # No feasible spot near the neighbours: scan every position of every route.
        for r in range(nroutes):
            for q in range(-1, sol.route_i[R_LEN, r]):
                d = _insert_delta(inst, sol, scratch, r, q)
                if d < best:
                    best, best_pen, best_r, best_q = d, sol.work[W_PEN], r, q
    if best_r < 0:
        return False
    if not (inst.st[u, S_REQ] > 0.0):
        if build or force:
            if best_pen > 1e-9:
                return False
        elif best >= inst.st[u, S_PRIZE]:
            return False
    segs = sol.segs
    set_seg(segs, 0, best_r, 0, best_q, 0)
    set_seg(segs, 1, scratch, 0, 0, 0)
    set_seg(segs, 2, best_r, best_q + 1, sol.route_i[R_LEN, best_r] - 1, 0)
    apply_pieces(inst, sol, best_r, np.int64(3), np.int64(-1), np.int64(0))
    return True


@njit(cache=True)
def recreate(inst: Inst, sol: Sol, stops: np.ndarray, n: int, blink: float,
             force: bool) -> None:
    """Insert ``stops[:n]`` one by one in a randomly chosen order (random, largest demand
    first, farthest from the depot first, closest first). With ``force``, optional stops
    go in wherever that is feasible, paying or not (see ``insert_stop``)."""
    keys = np.empty(n)
    mode = rand_int(sol.misc, 4)
    depot = int(inst.vt[0, V_START])
    for k in range(n):
        u = stops[k]
        if mode == 0:
            keys[k] = rand_float(sol.misc)
        elif mode == 1:
            keys[k] = -inst.st[u, S_DEM1]
        elif mode == 2:
            keys[k] = -inst.dist[depot, int(inst.c[C_ND]) + u]
        else:
            keys[k] = inst.dist[depot, int(inst.c[C_ND]) + u]
    order = np.argsort(keys)
    for k in range(n):
        insert_stop(inst, sol, stops[order[k]], blink, False, force)


@njit(cache=True)
def ruin(inst: Inst, sol: Sol, n_remove: int, max_string: int, elim: float,
         out: np.ndarray) -> int:
    """Remove about ``n_remove`` stops as short strings from routes near a random stop;
    with probability ``elim``, first a whole short route (route elimination).

    Removed stops are written to ``out``; returns how many.
    """
    nstops = sol.stop_i.shape[1]
    nroutes = sol.rcost.shape[0] - 1
    done = np.zeros(nroutes, dtype=np.bool_)
    # a random seed stop: a routed one, or a skipped optional one (then the ruin makes
    # room around a place no route serves, and the repair may open one there)
    c = rand_int(sol.misc, nstops)
    for _ in range(nstops):
        if sol.stop_i[I_ROUTE, c] >= 0 or inst.st[c, S_REQ] == 0.0:
            break
        c = (c + 1) % nstops
    count = 0
    if elim > 0.0 and rand_float(sol.misc) < elim:
        # route elimination: empty the shortest of three random used routes entirely, so
        # the repair (and, with low penalties, an overloaded neighbour) must absorb it
        re = -1
        for _ in range(3):
            w = rand_int(sol.misc, nstops)
            r = sol.stop_i[I_ROUTE, w]
            if r >= 0 and (re < 0 or sol.route_i[R_LEN, r] < sol.route_i[R_LEN, re]):
                re = r
        if re >= 0 and sol.route_i[R_LEN, re] <= out.shape[0]:
            done[re] = True
            for p in range(sol.route_i[R_LEN, re]):
                out[count] = sol.seq[re, p]
                count += 1
            set_seg(sol.segs, 0, re, 0, -1, 0)
            apply_pieces(inst, sol, re, np.int64(1), np.int64(-1), np.int64(0))
            n_remove += count
    k_nb = inst.nb.shape[1]
    for kk in range(-1, k_nb):
        w = c if kk < 0 else inst.nb[c, kk]
        r = sol.stop_i[I_ROUTE, w]
        if r < 0:
            if inst.st[w, S_REQ] == 0.0:
                # a skipped optional stop near the seed gets another chance in the repair
                dup = False
                for k in range(count):
                    dup = dup or out[k] == w
                if not dup:
                    out[count] = w
                    count += 1
            continue
        if count >= n_remove or done[r]:
            continue
        done[r] = True
        length = sol.route_i[R_LEN, r]
        lmax = min(max_string, length, n_remove - count)
        ls = 1 + rand_int(sol.misc, lmax)
        pw = sol.stop_i[I_POS, w]
        start = pw - rand_int(sol.misc, ls)
        if start < 0:
            start = 0
        if start + ls > length:
            start = length - ls
        for p in range(start, start + ls):
            out[count] = sol.seq[r, p]
            count += 1
        set_seg(sol.segs, 0, r, 0, start - 1, 0)
        set_seg(sol.segs, 1, r, start + ls, length - 1, 0)
        apply_pieces(inst, sol, r, np.int64(2), np.int64(-1), np.int64(0))
    for k in range(count):
        sol.stop_i[I_ROUTE, out[k]] = -1
        sol.stop_i[I_UNLOAD, out[k]] = -1
    return count


@njit(cache=True)
def construct(inst: Inst, sol: Sol, order: np.ndarray) -> None:
    """First solution: insert the stops in ``order`` greedily, without blinks."""
    for k in range(order.shape[0]):
        insert_stop(inst, sol, order[k], 0.0, True, False)

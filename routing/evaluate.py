"""Compiled route evaluation: the cost of a route given as a concatenation of segments.

Every move the solver considers (relocate, swap, 2-opt, 2-opt*, Or-opt, insertion)
produces new routes that are concatenations of at most four pieces of existing
routes. A piece is a row ``(route, first_pos, last_pos, reversed)`` of a small
``segs`` array. The cost of such a concatenation is computed without building it:

* plain CVRP (one stream, no disposal sites, windows or shifts): O(1) per piece
  from per-route prefix sums of distance and load (the "concatenation" idea of
  Vidal's HGS and PyVRP);
* time windows, shifts and one capacity but no disposal sites, release dates, breaks
  or compatibility (prize-collecting VRPTW): time-window segments (duration, time
  warp, earliest and latest start; Vidal et al. 2013, PyVRP's DurationSegment) of
  every prefix and suffix of every route, both directions: O(1) per piece that is a
  prefix or a suffix, O(length) for a middle piece (``_eval_tw``);
* everything else: one walk over the pieces that simulates the truck: greedy
  unloading at the best disposal site when the next stop does not fit a
  compartment, waiting for windows, shift overtime. O(route length).

Constraint violations are priced with penalty weights (``C_PENL`` for load-like,
``C_PENT`` for time-like ones) that the search adapts to the share of feasible plans,
so it may cross infeasible plans; the independent checker in ``feasibility.py`` has
the last word.

Everything here is numba-compiled (``cache=True``) because these functions run
millions of times per second; the measurements are in docs/routing.md. The hot
functions are compiled with ``_nrt=False``: they never allocate, and without the
runtime's reference counting on every array argument a move evaluation costs
~8 ns instead of ~170 ns (measured on X-n101-k25).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

# --------------------------------------------------------------------------------------
# Seeded random numbers: xorshift64*, state in a uint64 array (no global state).
# --------------------------------------------------------------------------------------
_MULT = np.uint64(2685821657736338717)
_S12 = np.uint64(12)
_S25 = np.uint64(25)
_S27 = np.uint64(27)
_S11 = np.uint64(11)


@njit(cache=True, _nrt=False)
def rand_u64(state: np.ndarray) -> np.uint64:
    """Next xorshift64* value; the state is ``state[0]``."""
    x = state[0]
    x ^= x >> _S12
    x ^= x << _S25
    x ^= x >> _S27
    state[0] = x
    return x * _MULT


@njit(cache=True, _nrt=False)
def rand_float(state: np.ndarray) -> float:
    """Uniform in [0, 1)."""
    return float(rand_u64(state) >> _S11) * (1.0 / 9007199254740992.0)


@njit(cache=True, _nrt=False)
def rand_int(state: np.ndarray, n: int) -> int:
    """Uniform integer in 0..n-1."""
    return int(rand_float(state) * n)


# Column layout of the packed tables (module constants: numba folds them in).
# Few, packed arrays keep the compiled calls cheap: every array passed costs
# about eight machine words per call, and the hot functions run millions of times.
S_DEM1, S_SERVICE, S_TWE, S_TWL, S_PRIZE, S_REQ, S_REL, S_DEMAND = 0, 1, 2, 3, 4, 5, 6, 7
"""stop table (N, 7 + S + V): total demand, service [s], window [s], prize, required,
release [s], demand[s], then allowed[v] (0/1) from column S_DEMAND + S"""
V_START, V_END, V_SHSTART, V_SHDUR, V_DSCALE, V_DCOST, V_TCOST, V_FCOST = 0, 1, 2, 3, 4, 5, 6, 7
V_MAXREL, V_SHLATE, V_RETLATE, V_BRKE, V_BRKL, V_BRKD, V_MAXVOL, V_MAXSTOPS = (
    8, 9, 10, 11, 12, 13, 14, 15)
V_CAP1, V_CAP = 16, 17
"""vehicle table (V, 17 + S): depots, shift [s], speed scale, costs, max reloads, latest
start [s], latest return [s], break window and duration [s], day volume, max stops,
capacity[s]"""
P_UNLOAD, P_TWE, P_TWL, P_ACCEPTS = 0, 1, 2, 3
"""disposal table (P, 3 + S): unload time [s], opening hours [s], accepts[s] (0/1)"""
C_ND, C_FAST, C_PENL, C_PENT, C_NSTREAM, C_NSITE, C_SWAPSTAR, C_UNROUTED = 0, 1, 2, 3, 4, 5, 6, 7
C_MEANDEM, C_HASREL, C_HASALLOW, C_TWFAST = 8, 9, 10, 11
"""scalars: depots, plain-CVRP flag, penalty weights (load, time; adapted during the search),
number of streams and sites, SWAP* on, price of an unrouted required stop, mean demand
(the load-penalty unit of one stop too many), release dates used, compatibility used,
time-window segments used (see ``_eval_tw``)"""

# integer state per stop (rows of Sol.stop_i) and per route (rows of Sol.route_i)
I_ROUTE, I_POS, I_PROMISING, I_SEEN, I_UNLOAD = 0, 1, 2, 3, 4
R_LEN, R_MODIFIED, R_TRIPS, R_VERSION = 0, 1, 2, 3
"""route rows: length, counter value of the last change by a move, counter value when its
trips were last tried against every other route with nothing found (-1: not since its
last refresh), counter value of its last refresh"""
# rows of Sol.pref with time-window segments (when C_TWFAST): 5 fields per kind
P_SEG = 2
K_PRE, K_SUF, K_RPRE, K_RSUF = 0, 5, 10, 15
"""kinds: seq[0..p], seq[p..n-1], seq[p..0] (reversed), seq[n-1..p] (reversed); fields:
distance inside, duration (incl. waiting and time warp), time warp, earliest and latest
start without extra waiting or time warp (Vidal et al. 2013)"""
NUM_PREF_TW = P_SEG + 20
# float scratch (Sol.work): penalty of the last evaluation (total, then its load part),
# then S loads, then S flags, then S look-ahead loads
W_PEN, W_PENL, W_LOAD = 0, 1, 2


class Inst(NamedTuple):
    """Static instance arrays as the compiled code sees them (see ``ProblemData``)."""

    dist: np.ndarray  # (L, L) [m]
    dur: np.ndarray  # (L, L) [s]
    st: np.ndarray  # (N, 6 + S) stop table
    vt: np.ndarray  # (V, 10 + S) vehicle table
    pt: np.ndarray  # (P, 1 + S) disposal table
    nb: np.ndarray  # (N, K) granular neighbours, nearest first
    c: np.ndarray  # scalars


class Sol(NamedTuple):
    """Mutable solution arrays. Route r is driven by truck r; row R (= V) is scratch."""

    seq: np.ndarray  # (R+1, N) stop indices per route
    stop_i: np.ndarray  # (5, N) route (-1 = unrouted), position, promising (1 = re-examine),
    # counter value when an unrouted optional stop was last offered to the routes,
    # disposal site the truck unloads at just before this stop (-1 = none: only if full)
    route_i: np.ndarray  # (4, R+1) length, counter value of last change, of the last
    # check of its trips (see local_search.trip_moves), of its last refresh
    pref: np.ndarray  # (2, R+1, N) prefix distance and prefix load; (22, R+1, N) with the
    # time-window segments of each route's prefixes and suffixes (C_TWFAST)
    rcost: np.ndarray  # (R+1,) penalised route cost
    rpen: np.ndarray  # (2, R+1) load penalty and time penalty included in rcost
    segs: np.ndarray  # (10, 4) scratch pieces: rows 0-4 route A, 5-9 route B
    bufs: np.ndarray  # (3, 2N+2S+4) scratch (row 2: the stops of the route being walked)
    work: np.ndarray  # (2 + 3S,) float scratch
    misc: np.ndarray  # (2,) uint64: xorshift state, change counter


B = 5
"""Row of ``segs`` where the second route's pieces start."""


@njit(cache=True, _nrt=False, inline="always")
def set_seg(segs: np.ndarray, k: int, r: int, i: int, j: int, rev: int) -> None:
    segs[k, 0] = r
    segs[k, 1] = i
    segs[k, 2] = j
    segs[k, 3] = rev


@njit(cache=True, _nrt=False, inline="always")
def _eval_fast(inst: Inst, sol: Sol, k0: int, nseg: int, v: int) -> float:
    segs = sol.segs
    seq = sol.seq
    pref = sol.pref
    dist = inst.dist
    nd = int(inst.c[C_ND])
    prev = int(inst.vt[v, V_START])
    d = 0.0
    load = 0.0
    n = 0
    for k in range(k0, k0 + nseg):
        r = segs[k, 0]
        i = segs[k, 1]
        j = segs[k, 2]
        if j < i:
            continue
        if segs[k, 3] == 1:
            first = seq[r, j]
            last = seq[r, i]
        else:
            first = seq[r, i]
            last = seq[r, j]
        d += dist[prev, nd + first] + pref[0, r, j] - pref[0, r, i]
        load += pref[1, r, j]
        if i > 0:
            load -= pref[1, r, i - 1]
        prev = nd + last
        n += j - i + 1
    sol.work[W_PEN] = 0.0
    sol.work[W_PENL] = 0.0
    if n == 0:
        return 0.0
    d += dist[prev, int(inst.vt[v, V_END])]
    cost = d * inst.vt[v, V_DCOST] + inst.vt[v, V_FCOST]
    cap = inst.vt[v, V_CAP1]
    if load > cap:
        pen = inst.c[C_PENL] * (load - cap)
        sol.work[W_PEN] = pen
        sol.work[W_PENL] = pen
        cost += pen
    return cost


@njit(cache=True, _nrt=False, inline="always")
def _tw_merge(d1: float, du1: float, w1: float, e1: float, l1: float, ed: float, et: float,
              d2: float, du2: float, w2: float, e2: float, l2: float) -> tuple:
    """Segment 1 then segment 2 over an arc of distance ``ed`` and travel time ``et``
    (Vidal et al. 2013's concatenation with time warp, as PyVRP's DurationSegment)."""
    at = du1 - w1 + et
    dw = e2 - at - l1
    if dw < 0.0:
        dw = 0.0
    dt = e1 + at - l2
    if dt < 0.0:
        dt = 0.0
    e = e2 - at
    if e1 > e:
        e = e1
    lt = l2 - at
    if l1 < lt:
        lt = l1
    return d1 + ed + d2, du1 + du2 + et + dw, w1 + w2 + dt, e - dw, lt + dt


@njit(cache=True, _nrt=False)
def _tw_segments(inst: Inst, sol: Sol, r: int) -> None:
    """Time-window segments of every prefix and suffix of route ``r``, both directions."""
    st = inst.st
    nd = int(inst.c[C_ND])
    sc = inst.vt[0, V_DSCALE]
    dist = inst.dist
    dur = inst.dur
    pr = sol.pref
    n = sol.route_i[R_LEN, r]
    seq = sol.seq
    for kind in range(4):
        for step in range(n):
            # forward kinds grow towards higher positions, the others towards lower ones
            p = step if (kind == 0 or kind == 2) else n - 1 - step
            u = seq[r, p]
            b = P_SEG + 5 * kind
            if step == 0:
                pr[b, r, p] = 0.0
                pr[b + 1, r, p] = st[u, S_SERVICE]
                pr[b + 2, r, p] = 0.0
                pr[b + 3, r, p] = st[u, S_TWE]
                pr[b + 4, r, p] = st[u, S_TWL]
                continue
            q = p - 1 if (kind == 0 or kind == 2) else p + 1
            w = seq[r, q]
            if kind == 0 or kind == 3:
                # the stored segment at q, then u
                a, bb = nd + w, nd + u
                res = _tw_merge(pr[b, r, q], pr[b + 1, r, q], pr[b + 2, r, q],
                                pr[b + 3, r, q], pr[b + 4, r, q], dist[a, bb],
                                dur[a, bb] * sc, 0.0, st[u, S_SERVICE], 0.0, st[u, S_TWE],
                                st[u, S_TWL])
            else:
                # u, then the stored segment at q
                a, bb = nd + u, nd + w
                res = _tw_merge(0.0, st[u, S_SERVICE], 0.0, st[u, S_TWE], st[u, S_TWL],
                                dist[a, bb], dur[a, bb] * sc, pr[b, r, q], pr[b + 1, r, q],
                                pr[b + 2, r, q], pr[b + 3, r, q], pr[b + 4, r, q])
            pr[b, r, p] = res[0]
            pr[b + 1, r, p] = res[1]
            pr[b + 2, r, p] = res[2]
            pr[b + 3, r, p] = res[3]
            pr[b + 4, r, p] = res[4]


@njit(cache=True, _nrt=False, inline="always")
def _tw_piece(inst: Inst, sol: Sol, r: int, i: int, j: int, rev: bool) -> tuple:
    """(distance, duration, time warp, earliest, latest, first stop, last stop) of the
    piece seq[r, i..j] (reversed if ``rev``): stored when it is a prefix or a suffix of
    its route, else built stop by stop (the middle pieces of moves are short)."""
    seq = sol.seq
    pr = sol.pref
    st = inst.st
    first = seq[r, j] if rev else seq[r, i]
    last = seq[r, i] if rev else seq[r, j]
    n = sol.route_i[R_LEN, r]
    if i == j:
        return 0.0, st[first, S_SERVICE], 0.0, st[first, S_TWE], st[first, S_TWL], first, last
    b = -1
    p = 0
    if i == 0:
        b = P_SEG + (K_RPRE if rev else K_PRE)
        p = j
    elif j == n - 1:
        b = P_SEG + (K_RSUF if rev else K_SUF)
        p = i
    if b >= 0:
        return pr[b, r, p], pr[b + 1, r, p], pr[b + 2, r, p], pr[b + 3, r, p], pr[b + 4, r, p], \
            first, last
    nd = int(inst.c[C_ND])
    sc = inst.vt[0, V_DSCALE]
    d, du, w, e, lt = 0.0, st[first, S_SERVICE], 0.0, st[first, S_TWE], st[first, S_TWL]
    prev = first
    for q in range(1, j - i + 1):
        u = seq[r, j - q] if rev else seq[r, i + q]
        d, du, w, e, lt = _tw_merge(d, du, w, e, lt, inst.dist[nd + prev, nd + u],
                                    inst.dur[nd + prev, nd + u] * sc, 0.0, st[u, S_SERVICE],
                                    0.0, st[u, S_TWE], st[u, S_TWL])
        prev = u
    return d, du, w, e, lt, first, last


@njit(cache=True, _nrt=False)
def _eval_tw(inst: Inst, sol: Sol, k0: int, nseg: int, v: int) -> float:
    """``walk``'s cost for instances with time windows and one capacity but no disposal
    sites, release dates, breaks or compatibility, from the pieces' time-window segments:
    O(1) per piece that is a prefix or a suffix of its route, O(length) for a middle one.
    Gives exactly ``walk``'s figures on integer data (tests/routing/test_routing_twfast.py)."""
    segs = sol.segs
    seq = sol.seq
    st = inst.st
    vt = inst.vt
    nd = int(inst.c[C_ND])
    sc = vt[v, V_DSCALE]
    sol.work[W_PEN] = 0.0
    sol.work[W_PENL] = 0.0
    u0 = -1
    for k in range(k0, k0 + nseg):
        if segs[k, 2] >= segs[k, 1]:
            u0 = seq[segs[k, 0], segs[k, 2]] if segs[k, 3] == 1 else seq[segs[k, 0], segs[k, 1]]
            break
    if u0 < 0:
        return 0.0
    start = int(vt[v, V_START])
    want = st[u0, S_TWE] - inst.dur[start, nd + u0] * sc
    t0 = vt[v, V_SHSTART]
    if want > t0:
        t0 = want if want < vt[v, V_SHLATE] else vt[v, V_SHLATE]
    t = t0 if t0 > 0.0 else 0.0
    prev = start
    d = 0.0
    late = 0.0
    load = 0.0
    n = 0
    for k in range(k0, k0 + nseg):
        r = segs[k, 0]
        i = segs[k, 1]
        j = segs[k, 2]
        if j < i:
            continue
        sd, du, w, e, lt, first, last = _tw_piece(inst, sol, r, i, j, segs[k, 3] == 1)
        loc = nd + first
        d += inst.dist[prev, loc] + sd
        a = t + inst.dur[prev, loc] * sc
        if a < e:
            a = e
        if a > lt:
            late += a - lt
            a = lt
        late += w
        t = a + du - w
        load += sol.pref[1, r, j]
        if i > 0:
            load -= sol.pref[1, r, i - 1]
        n += j - i + 1
        prev = nd + last
    end = int(vt[v, V_END])
    d += inst.dist[prev, end]
    t += inst.dur[prev, end] * sc
    if t > vt[v, V_RETLATE]:
        late += t - vt[v, V_RETLATE]
    overtime = t - t0 - vt[v, V_SHDUR]
    if overtime < 0.0:
        overtime = 0.0
    excess = 0.0
    if load > vt[v, V_CAP] + 1e-9:
        excess += load - vt[v, V_CAP]
    if load > vt[v, V_MAXVOL] + 1e-9:
        excess += load - vt[v, V_MAXVOL]
    bad = 0.0
    if n > vt[v, V_MAXSTOPS]:
        bad += n - vt[v, V_MAXSTOPS]
    cost = d * vt[v, V_DCOST] + (t - t0) * vt[v, V_TCOST] + vt[v, V_FCOST]
    penl = inst.c[C_PENL] * (excess + bad * inst.c[C_MEANDEM])
    pen = penl + inst.c[C_PENT] * (late + overtime + 0.0)
    sol.work[W_PEN] = pen
    sol.work[W_PENL] = penl
    return cost + pen


@njit(cache=True, _nrt=False)
def _best_site(inst: Inst, work: np.ndarray, nstream: int, prev: int, nxt: int) -> int:
    """Disposal site that empties most of the flagged streams, then the smallest detour."""
    pt = inst.pt
    npd = int(inst.c[C_ND]) + inst.st.shape[0]
    flags = W_LOAD + nstream
    best = -1
    best_cnt = 0
    best_det = np.inf
    for p in range(pt.shape[0]):
        cnt = 0
        for s in range(nstream):
            if work[flags + s] > 0.0 and pt[p, P_ACCEPTS + s] > 0.0:
                cnt += 1
        if cnt == 0:
            continue
        det = inst.dist[prev, npd + p] + inst.dist[npd + p, nxt]
        if cnt > best_cnt or (cnt == best_cnt and det < best_det):
            best = p
            best_cnt = cnt
            best_det = det
    return best


@njit(cache=True, _nrt=False)
def _trip_release(inst: Inst, work: np.ndarray, fl: np.ndarray, sol_unload: np.ndarray,
                  i0: int, n: int, v: int) -> float:
    """Latest release date of the stops the trip starting at ``fl[i0]`` will serve: the
    stops up to the next unload, found with the walk's own "unload when the next stop
    does not fit" rule on a copy of the loads."""
    st = inst.st
    vt = inst.vt
    nstream = int(inst.c[C_NSTREAM])
    look = W_LOAD + 2 * nstream
    for s in range(nstream):
        work[look + s] = work[W_LOAD + s]
    rel = 0.0
    for j in range(i0, n):
        u = fl[j]
        if j > i0:
            p = sol_unload[u]
            if p >= 0:
                for s in range(nstream):
                    if work[look + s] > 0.0 and inst.pt[p, P_ACCEPTS + s] > 0.0:
                        return rel
            for s in range(nstream):
                ld = work[look + s]
                if ld > 0.0 and ld + st[u, S_DEMAND + s] > vt[v, V_CAP + s] + 1e-9:
                    return rel
        if st[u, S_REL] > rel:
            rel = st[u, S_REL]
        for s in range(nstream):
            ld = work[look + s] + st[u, S_DEMAND + s]
            cap = vt[v, V_CAP + s]
            work[look + s] = cap if ld > cap else ld
    return rel


@njit(cache=True, _nrt=False, inline="always")
def _leg(vt: np.ndarray, v: int, t: float, tt: float, brk_taken: float,
         brk_warp: float) -> tuple:
    """Drive a leg of ``tt`` seconds leaving at ``t``; the break comes first when the leg
    would end at or after its window opens. Returns (arrival, break taken, break warp)."""
    if brk_taken == 0.0 and t + tt >= vt[v, V_BRKE]:
        bs = t if t > vt[v, V_BRKE] else vt[v, V_BRKE]
        if bs > vt[v, V_BRKL]:
            brk_warp += bs - vt[v, V_BRKL]
            bs = vt[v, V_BRKL]
        t = bs + vt[v, V_BRKD]
        brk_taken = 1.0
    return t + tt, brk_taken, brk_warp


@njit(cache=True, _nrt=False, inline="always")
def _unload(inst: Inst, work: np.ndarray, nstream: int, v: int, p: int, prev: int, t: float,
            brk_taken: float, brk_warp: float) -> tuple:
    """Drive from location ``prev`` to disposal site ``p`` and unload there (waiting for
    its opening, time warp after its closing); empties the streams it accepts. Returns
    (distance, time after unloading, break taken, break warp, lateness)."""
    pt = inst.pt
    site = int(inst.c[C_ND]) + inst.st.shape[0] + p
    t, brk_taken, brk_warp = _leg(inst.vt, v, t, inst.dur[prev, site] * inst.vt[v, V_DSCALE],
                                  brk_taken, brk_warp)
    late = 0.0
    if t < pt[p, P_TWE]:
        t = pt[p, P_TWE]
    if t > pt[p, P_TWL]:
        late = t - pt[p, P_TWL]
        t = pt[p, P_TWL]
    t += pt[p, P_UNLOAD]
    for s in range(nstream):
        if pt[p, P_ACCEPTS + s] > 0.0:
            work[W_LOAD + s] = 0.0
    return inst.dist[prev, site], t, brk_taken, brk_warp, late


@njit(cache=True, _nrt=False)
def walk(inst: Inst, sol: Sol, k0: int, nseg: int, v: int, out: np.ndarray) -> tuple:
    """Simulate truck ``v`` over the pieces; returns (cost, visits written to ``out``).

    ``out`` receives the location sequence including disposal visits when it has
    room (pass an empty array to only evaluate). The rules are those of
    ``feasibility.simulate_route``; violations are priced (load part: capacity, day
    volume, stop count, compatibility; time part: time warp at windows, opening hours,
    break and return, overtime, reloads).
    """
    segs = sol.segs
    st = inst.st
    vt = inst.vt
    pt = inst.pt
    dist = inst.dist
    dur = inst.dur
    work = sol.work
    fl = sol.bufs[2]
    nd = int(inst.c[C_ND])
    nstream = int(inst.c[C_NSTREAM])
    npd = nd + st.shape[0]
    has_sites = pt.shape[0] > 0
    has_rel = inst.c[C_HASREL] > 0.0
    has_allow = inst.c[C_HASALLOW] > 0.0
    record = out.shape[0] > 0
    flags = W_LOAD + nstream
    n = 0
    for k in range(k0, k0 + nseg):
        r = segs[k, 0]
        i = segs[k, 1]
        j = segs[k, 2]
        if j < i:
            continue
        rev = segs[k, 3] == 1
        for q in range(j - i + 1):
            fl[n] = sol.seq[r, j - q] if rev else sol.seq[r, i + q]
            n += 1
    work[W_PEN] = 0.0
    work[W_PENL] = 0.0
    if n == 0:
        return 0.0, 0
    for s in range(nstream):
        work[W_LOAD + s] = 0.0
    brk_taken = 1.0 if vt[v, V_BRKD] <= 0.0 else 0.0
    brk_warp = 0.0
    start = int(vt[v, V_START])
    sc = vt[v, V_DSCALE]
    unl = sol.stop_i[I_UNLOAD]
    rel = _trip_release(inst, work, fl, unl, 0, n, v) if has_rel else 0.0
    # leave as late as the start window allows without waiting at the first stop
    u0 = fl[0]
    want = st[u0, S_TWE] - dur[start, nd + u0] * sc
    if rel > want:
        want = rel
    t0 = vt[v, V_SHSTART]
    if want > t0:
        t0 = want if want < vt[v, V_SHLATE] else vt[v, V_SHLATE]
    t = t0 if t0 > rel else rel
    prev = start
    d = 0.0
    late = 0.0
    excess = 0.0
    vol = 0.0
    bad = 0.0
    reloads = 0
    nout = 0
    for idx in range(n):
        u = fl[idx]
        loc = nd + u
        if has_sites:
            need = False
            p = unl[u]
            if p >= 0:
                # an unload the search placed here; pointless (and skipped) when nothing
                # the site accepts is on board
                for s in range(nstream):
                    need = need or (work[W_LOAD + s] > 0.0 and pt[p, P_ACCEPTS + s] > 0.0)
            if not need:
                for s in range(nstream):
                    ld = work[W_LOAD + s]
                    o = ld > 0.0 and ld + st[u, S_DEMAND + s] > vt[v, V_CAP + s] + 1e-9
                    work[flags + s] = 1.0 if o else 0.0
                    need = need or o
                if need:
                    # the next stop does not fit: unload at the best site (the rule of
                    # thumb; the local search may place unloads earlier)
                    p = _best_site(inst, work, nstream, prev, loc)
            if need and p >= 0 and reloads + 1 >= vt[v, V_MAXREL]:
                # the day's trips are used up (this unload and the final one would be one
                # too many): the truck goes on loaded and the load over its compartment is
                # priced as overload, so the penalty shrinks with every unit moved off the
                # truck (as PyVRP's excess load per trip) instead of a flat price per extra
                # trip that no single move towards feasibility lowers
                need = False
            if need and p >= 0:
                dd, t, brk_taken, brk_warp, lt = _unload(inst, work, nstream, v, p, prev, t,
                                                         brk_taken, brk_warp)
                d += dd
                late += lt
                reloads += 1
                prev = npd + p
                if record:
                    out[nout] = prev
                    nout += 1
                if has_rel:
                    rel = _trip_release(inst, work, fl, unl, idx, n, v)
                    if t < rel:
                        t = rel
        d += dist[prev, loc]
        t, brk_taken, brk_warp = _leg(vt, v, t, dur[prev, loc] * sc, brk_taken, brk_warp)
        if t < st[u, S_TWE]:
            t = st[u, S_TWE]
        if t > st[u, S_TWL]:
            # time warp (Vidal et al. 2013): pay for the lateness, go on as if on time,
            # so one late stop is not charged again at every later stop
            late += t - st[u, S_TWL]
            t = st[u, S_TWL]
        t += st[u, S_SERVICE]
        vol += st[u, S_DEM1]
        if has_allow and st[u, S_DEMAND + nstream + v] == 0.0:
            bad += 1.0
        for s in range(nstream):
            ld = work[W_LOAD + s] + st[u, S_DEMAND + s]
            cap = vt[v, V_CAP + s]
            if ld > cap + 1e-9:
                excess += ld - cap
                ld = cap
            work[W_LOAD + s] = ld
        prev = loc
        if record:
            out[nout] = loc
            nout += 1
    end = int(vt[v, V_END])
    if has_sites:
        for _ in range(nstream):
            need = False
            for s in range(nstream):
                o = work[W_LOAD + s] > 0.0
                work[flags + s] = 1.0 if o else 0.0
                need = need or o
            if not need:
                break
            p = _best_site(inst, work, nstream, prev, end)
            if p < 0:
                break
            dd, t, brk_taken, brk_warp, lt = _unload(inst, work, nstream, v, p, prev, t,
                                                     brk_taken, brk_warp)
            d += dd
            late += lt
            reloads += 1
            prev = npd + p
            if record:
                out[nout] = prev
                nout += 1
    d += dist[prev, end]
    t, brk_taken, brk_warp = _leg(vt, v, t, dur[prev, end] * sc, brk_taken, brk_warp)
    if t > vt[v, V_RETLATE]:
        late += t - vt[v, V_RETLATE]
    overtime = t - t0 - vt[v, V_SHDUR]
    if overtime < 0.0:
        overtime = 0.0
    if vol > vt[v, V_MAXVOL] + 1e-9:
        excess += vol - vt[v, V_MAXVOL]
    if n > vt[v, V_MAXSTOPS]:
        bad += n - vt[v, V_MAXSTOPS]
    cost = d * vt[v, V_DCOST] + (t - t0) * vt[v, V_TCOST] + vt[v, V_FCOST]
    penl = inst.c[C_PENL] * (excess + bad * inst.c[C_MEANDEM])
    pen = penl + inst.c[C_PENT] * (late + overtime + brk_warp)
    if reloads > vt[v, V_MAXREL]:
        pen += inst.c[C_PENT] * 3600.0 * (reloads - vt[v, V_MAXREL])
    work[W_PEN] = pen
    work[W_PENL] = penl
    return cost + pen, nout


@njit(cache=True, _nrt=False, inline="always")
def eval_segs(inst: Inst, sol: Sol, k0: int, nseg: int, v: int) -> float:
    """Penalised cost of truck ``v`` driving pieces ``segs[k0:k0+nseg]``."""
    if inst.c[C_FAST] > 0.0:
        return _eval_fast(inst, sol, k0, nseg, v)
    if inst.c[C_TWFAST] > 0.0:
        return _eval_tw(inst, sol, np.int64(k0), np.int64(nseg), np.int64(v))
    cost, _ = walk(inst, sol, np.int64(k0), np.int64(nseg), np.int64(v), sol.bufs[0, :0])
    return cost


@njit(cache=True, _nrt=False)
def refresh_route(inst: Inst, sol: Sol, r: int) -> None:
    """Recompute positions, prefix sums and cost of route ``r`` after it changed."""
    nd = int(inst.c[C_ND])
    prev = int(inst.vt[r, V_START])
    d = 0.0
    ld = 0.0
    for p in range(sol.route_i[R_LEN, r]):
        u = sol.seq[r, p]
        d += inst.dist[prev, nd + u]
        ld += inst.st[u, S_DEM1]
        sol.pref[0, r, p] = d
        sol.pref[1, r, p] = ld
        sol.stop_i[I_POS, u] = p
        sol.stop_i[I_ROUTE, u] = r
        prev = nd + u
    if inst.c[C_TWFAST] > 0.0:
        _tw_segments(inst, sol, r)
    set_seg(sol.segs, 0, r, 0, sol.route_i[R_LEN, r] - 1, 0)
    sol.rcost[r] = eval_segs(inst, sol, np.int64(0), np.int64(1), r)
    sol.rpen[0, r] = sol.work[W_PENL]
    sol.rpen[1, r] = sol.work[W_PEN] - sol.work[W_PENL]
    sol.misc[1] += np.uint64(1)
    sol.route_i[R_VERSION, r] = int(sol.misc[1])
    sol.route_i[R_TRIPS, r] = -1


@njit(cache=True, _nrt=False)
def set_scratch(inst: Inst, sol: Sol, u: int) -> int:
    """Put the lone stop ``u`` in the scratch row so it can be used as a piece."""
    r = sol.rcost.shape[0] - 1
    sol.stop_i[I_UNLOAD, u] = -1  # an inserted stop starts without a placed unload
    sol.seq[r, 0] = u
    sol.route_i[R_LEN, r] = 1
    sol.pref[0, r, 0] = 0.0
    sol.pref[1, r, 0] = inst.st[u, S_DEM1]
    return r


@njit(cache=True, _nrt=False)
def write_pieces(sol: Sol, k0: int, nseg: int, row: int) -> int:
    """Materialise pieces into ``bufs[row]``; returns the length. Marks the stops at the
    ends of each piece as promising for the local search."""
    segs = sol.segs
    buf = sol.bufs
    n = 0
    for k in range(k0, k0 + nseg):
        r = segs[k, 0]
        i = segs[k, 1]
        j = segs[k, 2]
        if j < i:
            continue
        # the ends of every piece meet new neighbours: re-examine them
        sol.stop_i[I_PROMISING, sol.seq[r, i]] = 1
        sol.stop_i[I_PROMISING, sol.seq[r, j]] = 1
        if segs[k, 3] == 1:
            for p in range(j, i - 1, -1):
                buf[row, n] = sol.seq[r, p]
                n += 1
        else:
            for p in range(i, j + 1):
                buf[row, n] = sol.seq[r, p]
                n += 1
    return n


@njit(cache=True, _nrt=False)
def bump_counter(sol: Sol) -> int:
    sol.misc[1] += np.uint64(1)
    return int(sol.misc[1])


@njit(cache=True, _nrt=False)
def apply_pieces(inst: Inst, sol: Sol, ra: int, na: int, rb: int, nb: int) -> None:
    """Replace route ``ra`` by pieces 0..na-1 and (if rb >= 0) ``rb`` by pieces 5..5+nb-1."""
    la = write_pieces(sol, 0, na, 0)
    lb = write_pieces(sol, B, nb, 1) if rb >= 0 else 0
    for p in range(la):
        sol.seq[ra, p] = sol.bufs[0, p]
    sol.route_i[R_LEN, ra] = la
    if rb >= 0:
        for p in range(lb):
            sol.seq[rb, p] = sol.bufs[1, p]
        sol.route_i[R_LEN, rb] = lb
    refresh_route(inst, sol, ra)
    if rb >= 0:
        refresh_route(inst, sol, rb)
    c = bump_counter(sol)
    sol.route_i[R_MODIFIED, ra] = c
    if rb >= 0:
        sol.route_i[R_MODIFIED, rb] = c


@njit(cache=True, _nrt=False)
def total_cost(inst: Inst, sol: Sol) -> float:
    """Sum of route costs plus prizes of unrouted optional stops (and a big price for
    unrouted required ones, which only happens when the fleet cannot hold them)."""
    c = 0.0
    for r in range(sol.rcost.shape[0] - 1):
        c += sol.rcost[r]
    for u in range(sol.stop_i.shape[1]):
        if sol.stop_i[I_ROUTE, u] < 0:
            if inst.st[u, S_REQ] > 0.0:
                c += inst.c[C_UNROUTED]
            else:
                c += inst.st[u, S_PRIZE]
    return c


@njit(cache=True, _nrt=False)
def infeasibility(inst: Inst, sol: Sol) -> tuple:
    """(load-infeasible, time-infeasible) flags of the current plan; an unrouted required
    stop counts as both."""
    bad_l = False
    bad_t = False
    for r in range(sol.rcost.shape[0] - 1):
        bad_l = bad_l or sol.rpen[0, r] > 1e-12
        bad_t = bad_t or sol.rpen[1, r] > 1e-12
    for u in range(sol.stop_i.shape[1]):
        if sol.stop_i[I_ROUTE, u] < 0 and inst.st[u, S_REQ] > 0.0:
            return True, True
    return bad_l, bad_t


@njit(cache=True, _nrt=False)
def refresh_all(inst: Inst, sol: Sol) -> None:
    """Re-price every route (after the penalty weights changed)."""
    for r in range(sol.rcost.shape[0] - 1):
        refresh_route(inst, sol, r)

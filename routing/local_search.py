"""Granular local search: relocate, Or-opt, swap, 2-opt, 2-opt* over near neighbours.

Only pairs (u, v) where v is among u's K nearest stops are tried (Toth and Vigo's
granular neighbourhoods): good moves almost always create an edge between close
stops, and this makes a full pass O(N K) instead of O(N^2). Moves are first
improvement. SWAP* (u and v exchange routes, each to its cheapest place in the
other route) is tried on neighbour pairs too. Only "promising" stops (next to an
edge that changed) are examined, so after a perturbation the search stays local
to what the perturbation touched.

Every move is written as "new route = concatenation of pieces of old routes"
and priced by ``evaluate.eval_segs`` (O(1) for plain CVRP).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from routing.evaluate import (
    C_ND,
    C_NSTREAM,
    C_SWAPSTAR,
    I_POS,
    I_PROMISING,
    I_ROUTE,
    I_SEEN,
    I_UNLOAD,
    R_LEN,
    R_MODIFIED,
    R_TRIPS,
    R_VERSION,
    S_PRIZE,
    S_REQ,
    V_END,
    V_MAXREL,
    V_START,
    B,
    Inst,
    Sol,
    apply_pieces,
    bump_counter,
    eval_segs,
    refresh_route,
    set_scratch,
    set_seg,
    walk,
)

EPS = 1e-7


@njit(cache=True, _nrt=False, inline="always")
def _commit_if_better(inst: Inst, sol: Sol, ra: int, na: int, rb: int, nb: int) -> bool:
    old = sol.rcost[ra]
    ca = eval_segs(inst, sol, 0, na, ra)
    if rb >= 0:
        old += sol.rcost[rb]
        # Costs are >= 0, so if the first new route alone costs as much as both old
        # ones, the move cannot improve: skip pricing the second.
        if ca - old >= -EPS:
            return False
        cb = eval_segs(inst, sol, B, nb, rb)
    else:
        cb = 0.0
    if ca + cb - old < -EPS:
        # np.int64(...) keeps numba from compiling one copy per literal piece count
        apply_pieces(inst, sol, np.int64(ra), np.int64(na), np.int64(rb), np.int64(nb))
        return True
    return False


@njit(cache=True, _nrt=False)
def relocate(inst: Inst, sol: Sol, u: int, length: int, rev: int, rv: int, q: int) -> bool:
    """Move the ``length`` stops starting at u (reversed if ``rev``) to after position ``q``
    of route ``rv`` (q = -1: first). Returns True if it improved and was applied."""
    segs = sol.segs
    ru = sol.stop_i[I_ROUTE, u]
    pu = sol.stop_i[I_POS, u]
    la = sol.route_i[R_LEN, ru]
    e = pu + length - 1
    if e >= la:
        return False
    if ru != rv:
        lb = sol.route_i[R_LEN, rv]
        set_seg(segs, 0, ru, 0, pu - 1, 0)
        set_seg(segs, 1, ru, e + 1, la - 1, 0)
        set_seg(segs, B, rv, 0, q, 0)
        set_seg(segs, B + 1, ru, pu, e, rev)
        set_seg(segs, B + 2, rv, q + 1, lb - 1, 0)
        return _commit_if_better(inst, sol, ru, 2, rv, 3)
    if q == pu - 1 or (pu <= q <= e):
        return False
    if q < pu:
        set_seg(segs, 0, ru, 0, q, 0)
        set_seg(segs, 1, ru, pu, e, rev)
        set_seg(segs, 2, ru, q + 1, pu - 1, 0)
        set_seg(segs, 3, ru, e + 1, la - 1, 0)
    else:
        set_seg(segs, 0, ru, 0, pu - 1, 0)
        set_seg(segs, 1, ru, e + 1, q, 0)
        set_seg(segs, 2, ru, pu, e, rev)
        set_seg(segs, 3, ru, q + 1, la - 1, 0)
    return _commit_if_better(inst, sol, ru, 4, -1, 0)


@njit(cache=True, _nrt=False)
def swap(inst: Inst, sol: Sol, u: int, lu: int, v: int, lv: int) -> bool:
    """Exchange the ``lu`` stops starting at u with the ``lv`` stops starting at v."""
    segs = sol.segs
    ru = sol.stop_i[I_ROUTE, u]
    rv = sol.stop_i[I_ROUTE, v]
    pu = sol.stop_i[I_POS, u]
    pv = sol.stop_i[I_POS, v]
    la = sol.route_i[R_LEN, ru]
    lb = sol.route_i[R_LEN, rv]
    if pu + lu > la or pv + lv > lb:
        return False
    if ru != rv:
        set_seg(segs, 0, ru, 0, pu - 1, 0)
        set_seg(segs, 1, rv, pv, pv + lv - 1, 0)
        set_seg(segs, 2, ru, pu + lu, la - 1, 0)
        set_seg(segs, B, rv, 0, pv - 1, 0)
        set_seg(segs, B + 1, ru, pu, pu + lu - 1, 0)
        set_seg(segs, B + 2, rv, pv + lv, lb - 1, 0)
        return _commit_if_better(inst, sol, ru, 3, rv, 3)
    if lu != 1 or lv != 1:
        return False
    p1 = min(pu, pv)
    p2 = max(pu, pv)
    set_seg(segs, 0, ru, 0, p1 - 1, 0)
    set_seg(segs, 1, ru, p2, p2, 0)
    set_seg(segs, 2, ru, p1 + 1, p2 - 1, 0)
    set_seg(segs, 3, ru, p1, p1, 0)
    set_seg(segs, 4, ru, p2 + 1, la - 1, 0)
    return _commit_if_better(inst, sol, ru, 5, -1, 0)


@njit(cache=True, _nrt=False)
def two_opt(inst: Inst, sol: Sol, u: int, v: int) -> bool:
    """Create the edge u-v: 2-opt* (tails exchanged, plain or reversed) between routes,
    2-opt (reverse the stretch between them) within a route."""
    segs = sol.segs
    ru = sol.stop_i[I_ROUTE, u]
    rv = sol.stop_i[I_ROUTE, v]
    pu = sol.stop_i[I_POS, u]
    pv = sol.stop_i[I_POS, v]
    la = sol.route_i[R_LEN, ru]
    lb = sol.route_i[R_LEN, rv]
    if ru != rv:
        # u -> (v's predecessor side reversed): ... u v ... (head of v reversed)
        set_seg(segs, 0, ru, 0, pu, 0)
        set_seg(segs, 1, rv, 0, pv, 1)
        set_seg(segs, B, ru, pu + 1, la - 1, 1)
        set_seg(segs, B + 1, rv, pv + 1, lb - 1, 0)
        if _commit_if_better(inst, sol, ru, 2, rv, 2):
            return True
        # tails exchanged so that v follows u: u's head + v's tail, v's head + u's tail
        set_seg(segs, 0, ru, 0, pu, 0)
        set_seg(segs, 1, rv, pv, lb - 1, 0)
        set_seg(segs, B, rv, 0, pv - 1, 0)
        set_seg(segs, B + 1, ru, pu + 1, la - 1, 0)
        return _commit_if_better(inst, sol, ru, 2, rv, 2)
    if pu < pv - 1:
        set_seg(segs, 0, ru, 0, pu, 0)
        set_seg(segs, 1, ru, pu + 1, pv, 1)
        set_seg(segs, 2, ru, pv + 1, la - 1, 0)
        return _commit_if_better(inst, sol, ru, 3, -1, 0)
    if pv < pu - 1:
        set_seg(segs, 0, ru, 0, pv - 1, 0)
        set_seg(segs, 1, ru, pv, pu - 1, 1)
        set_seg(segs, 2, ru, pu, la - 1, 0)
        return _commit_if_better(inst, sol, ru, 3, -1, 0)
    return False


@njit(cache=True, _nrt=False)
def _best_gap(inst: Inst, sol: Sol, x: int, r: int, skip: int) -> int:
    """Cheapest place (by distance) for stop x in route r once the stop at position
    ``skip`` has left it; returns the original position of the new predecessor
    (-1 = the depot)."""
    nd = int(inst.c[C_ND])
    dist = inst.dist
    ln = sol.route_i[R_LEN, r]
    xl = nd + x
    prev = int(inst.vt[r, V_START])
    q_prev = -1
    best = np.inf
    best_q = -1
    for p in range(ln + 1):
        if p == skip:
            continue
        nxt = int(inst.vt[r, V_END]) if p == ln else nd + sol.seq[r, p]
        c = dist[prev, xl] + dist[xl, nxt] - dist[prev, nxt]
        if c < best:
            best = c
            best_q = q_prev
        if p < ln:
            prev = nxt
            q_prev = p
    return best_q


@njit(cache=True, _nrt=False)
def _swap_star_pieces(segs: np.ndarray, k0: int, r: int, p_out: int, ln: int, r_in: int,
                      p_in: int, q: int) -> None:
    """Pieces of route r without its stop at p_out, with stop (r_in, p_in) after q."""
    if q < p_out:
        set_seg(segs, k0, r, 0, q, 0)
        set_seg(segs, k0 + 1, r_in, p_in, p_in, 0)
        set_seg(segs, k0 + 2, r, q + 1, p_out - 1, 0)
        set_seg(segs, k0 + 3, r, p_out + 1, ln - 1, 0)
    else:
        set_seg(segs, k0, r, 0, p_out - 1, 0)
        set_seg(segs, k0 + 1, r, p_out + 1, q, 0)
        set_seg(segs, k0 + 2, r_in, p_in, p_in, 0)
        set_seg(segs, k0 + 3, r, q + 1, ln - 1, 0)


@njit(cache=True, _nrt=False)
def swap_star(inst: Inst, sol: Sol, u: int, v: int) -> bool:
    """SWAP* (Vidal 2022), granular form: u and v change routes, each going to its
    cheapest place in the other route rather than to the other's old place."""
    ru = sol.stop_i[I_ROUTE, u]
    rv = sol.stop_i[I_ROUTE, v]
    if ru == rv:
        return False
    pu = sol.stop_i[I_POS, u]
    pv = sol.stop_i[I_POS, v]
    qv = _best_gap(inst, sol, v, ru, pu)
    qu = _best_gap(inst, sol, u, rv, pv)
    if qv == pu - 1 and qu == pv - 1:
        return False  # plain swap, already tried
    _swap_star_pieces(sol.segs, 0, ru, pu, sol.route_i[R_LEN, ru], rv, pv, qv)
    _swap_star_pieces(sol.segs, B, rv, pv, sol.route_i[R_LEN, rv], ru, pu, qu)
    return _commit_if_better(inst, sol, ru, 4, rv, 4)


@njit(cache=True, _nrt=False)
def _first_empty_route(sol: Sol, skip: int) -> int:
    for r in range(sol.rcost.shape[0] - 1):
        if sol.route_i[R_LEN, r] == 0 and r != skip:
            return r
    return -1


@njit(cache=True, _nrt=False)
def try_pair(inst: Inst, sol: Sol, u: int, v: int) -> bool:
    """All moves that create an edge between u and its neighbour v; first improvement."""
    rv = sol.stop_i[I_ROUTE, v]
    pv = sol.stop_i[I_POS, v]
    # relocate u (and Or-opt strings of 2-3 starting at u) after v and before v
    for length in range(1, 3):
        for rev in range(2 if length > 1 else 1):
            if relocate(inst, sol, u, length, rev, rv, pv):
                return True
            # "before v" is reached as "after pred(v)" from pred(v)'s own neighbour
            # list, except when v is first in its route.
            if pv == 0 and relocate(inst, sol, u, length, rev, rv, np.int64(-1)):
                return True
    nmax = 3 if sol.stop_i[I_ROUTE, u] != rv else 2
    for lu in range(1, nmax):
        for lv in range(1, nmax):
            if swap(inst, sol, u, lu, v, lv):
                return True
    if two_opt(inst, sol, u, v):
        return True
    return inst.c[C_SWAPSTAR] > 0.0 and swap_star(inst, sol, u, v)


@njit(cache=True, _nrt=False)
def _drop_route_if_unprofitable(inst: Inst, sol: Sol, r: int) -> bool:
    """Empty route r when it holds only optional stops whose prizes do not pay for it."""
    ln = sol.route_i[R_LEN, r]
    prizes = 0.0
    for p in range(ln):
        u = sol.seq[r, p]
        if inst.st[u, S_REQ] > 0.0:
            return False
        prizes += inst.st[u, S_PRIZE]
    if sol.rcost[r] - prizes < EPS:
        return False
    for p in range(ln):
        u = sol.seq[r, p]
        sol.stop_i[I_ROUTE, u] = -1
        sol.stop_i[I_SEEN, u] = -1
    set_seg(sol.segs, 0, r, 0, -1, 0)
    apply_pieces(inst, sol, np.int64(r), np.int64(1), np.int64(-1), np.int64(0))
    return True


@njit(cache=True, _nrt=False)
def _insert_optional(inst: Inst, sol: Sol, u: int) -> bool:
    """Insert unrouted optional stop u next to one of its routed neighbours (before or
    after it) at the cheapest such place, if its prize beats the added cost."""
    k_nb = inst.nb.shape[1]
    # only when a neighbour's route changed since u was last offered
    stale = sol.stop_i[I_SEEN, u]
    fresh = stale < 0
    for kk in range(k_nb):
        rv = sol.stop_i[I_ROUTE, inst.nb[u, kk]]
        if rv >= 0 and sol.route_i[R_MODIFIED, rv] > stale:
            fresh = True
            break
    if not fresh:
        return False
    sol.stop_i[I_SEEN, u] = int(sol.misc[1])
    scratch = set_scratch(inst, sol, u)
    segs = sol.segs
    best = inst.st[u, S_PRIZE] - EPS
    best_r = -1
    best_q = -2
    for kk in range(k_nb):
        v = inst.nb[u, kk]
        rv = sol.stop_i[I_ROUTE, v]
        if rv < 0:
            continue
        pv = sol.stop_i[I_POS, v]
        ln = sol.route_i[R_LEN, rv]
        for q in (pv, pv - 1):
            set_seg(segs, B, rv, 0, q, 0)
            set_seg(segs, B + 1, scratch, 0, 0, 0)
            set_seg(segs, B + 2, rv, q + 1, ln - 1, 0)
            d = eval_segs(inst, sol, B, 3, rv) - sol.rcost[rv]
            if d < best:
                best, best_r, best_q = d, rv, q
    if best_r < 0:
        return False
    set_seg(segs, 0, best_r, 0, best_q, 0)
    set_seg(segs, 1, scratch, 0, 0, 0)
    set_seg(segs, 2, best_r, best_q + 1, sol.route_i[R_LEN, best_r] - 1, 0)
    apply_pieces(inst, sol, np.int64(best_r), np.int64(3), np.int64(-1), np.int64(0))
    return True


@njit(cache=True, _nrt=False)
def _try_optional(inst: Inst, sol: Sol, u: int) -> bool:
    """Drop a routed optional stop whose detour costs more than its prize (or its whole
    route when the route's optional stops do not pay for it); insert an unrouted one
    whose prize beats its cheapest detour next to a neighbour."""
    segs = sol.segs
    ru = sol.stop_i[I_ROUTE, u]
    if ru < 0:
        return _insert_optional(inst, sol, u)
    pu = sol.stop_i[I_POS, u]
    set_seg(segs, 0, ru, 0, pu - 1, 0)
    set_seg(segs, 1, ru, pu + 1, sol.route_i[R_LEN, ru] - 1, 0)
    if eval_segs(inst, sol, 0, 2, ru) - sol.rcost[ru] + inst.st[u, S_PRIZE] < -EPS:
        apply_pieces(inst, sol, ru, np.int64(2), np.int64(-1), np.int64(0))
        sol.stop_i[I_ROUTE, u] = -1
        sol.stop_i[I_SEEN, u] = int(sol.misc[1])
        return True
    if pu == 0:
        return _drop_route_if_unprofitable(inst, sol, ru)
    return False


@njit(cache=True, _nrt=False)
def _try_unload(inst: Inst, sol: Sol, u: int) -> bool:
    """Place, move or remove an unload just before stop u: none, or one of the (at most
    three) disposal sites with the smallest detour between u's predecessor and u. The
    walk still unloads when the next stop does not fit, so this searches unloading
    early, where a site is on the way, and which site."""
    ru = sol.stop_i[I_ROUTE, u]
    pu = sol.stop_i[I_POS, u]
    old = sol.stop_i[I_UNLOAD, u]
    if pu == 0 and old < 0:
        return False
    nd = int(inst.c[C_ND])
    npd = nd + inst.st.shape[0]
    dist = inst.dist
    prev = int(inst.vt[ru, V_START]) if pu == 0 else nd + sol.seq[ru, pu - 1]
    loc = nd + u
    # the three sites with the smallest detour prev -> site -> u
    c0 = -1
    c1 = -1
    c2 = -1
    d0 = np.inf
    d1 = np.inf
    d2 = np.inf
    for p in range(inst.pt.shape[0]):
        det = dist[prev, npd + p] + dist[npd + p, loc]
        if det < d0:
            c2, d2, c1, d1, c0, d0 = c1, d1, c0, d0, p, det
        elif det < d1:
            c2, d2, c1, d1 = c1, d1, p, det
        elif det < d2:
            c2, d2 = p, det
    set_seg(sol.segs, 0, ru, 0, sol.route_i[R_LEN, ru] - 1, 0)
    best = sol.rcost[ru] - EPS
    best_p = -2
    for k in range(4):
        p = -1 if k == 0 else (c0 if k == 1 else (c1 if k == 2 else c2))
        if (k > 0 and p < 0) or p == old or (pu == 0 and p >= 0):
            continue
        sol.stop_i[I_UNLOAD, u] = p
        c = eval_segs(inst, sol, 0, 1, ru)
        if c < best:
            best = c
            best_p = p
    if best_p == -2:
        sol.stop_i[I_UNLOAD, u] = old
        return False
    sol.stop_i[I_UNLOAD, u] = best_p
    refresh_route(inst, sol, ru)
    sol.route_i[R_MODIFIED, ru] = bump_counter(sol)
    sol.stop_i[I_PROMISING, u] = 1
    if pu > 0:
        sol.stop_i[I_PROMISING, sol.seq[ru, pu - 1]] = 1
    return True


@njit(cache=True, _nrt=False)
def _try_reverse(inst: Inst, sol: Sol, r: int) -> bool:
    """Drive route r backwards, keeping each placed unload on the same street: an unload
    between stops a and b (placed before b) goes before a in the reversed route."""
    ln = sol.route_i[R_LEN, r]
    if ln < 2:
        return False
    keep = sol.bufs[1]
    for p in range(ln):
        keep[p] = sol.stop_i[I_UNLOAD, sol.seq[r, p]]
    # make the unloads the walk does when full explicit, so they keep their place too
    set_seg(sol.segs, 0, r, 0, ln - 1, 0)
    _, nv = walk(inst, sol, np.int64(0), np.int64(1), np.int64(r), sol.bufs[0])
    nd = int(inst.c[C_ND])
    npd = nd + inst.st.shape[0]
    last = -1
    for k in range(nv):
        loc = sol.bufs[0, k]
        if loc >= npd:
            last = loc - npd
        else:
            sol.stop_i[I_UNLOAD, loc - nd] = last
            last = -1
    placed = sol.bufs[0]
    for p in range(ln):
        placed[p] = sol.stop_i[I_UNLOAD, sol.seq[r, p]]
    for p in range(1, ln):
        sol.stop_i[I_UNLOAD, sol.seq[r, p - 1]] = placed[p]
    sol.stop_i[I_UNLOAD, sol.seq[r, ln - 1]] = -1
    set_seg(sol.segs, 0, r, 0, ln - 1, 1)
    if eval_segs(inst, sol, 0, 1, r) - sol.rcost[r] < -EPS:
        apply_pieces(inst, sol, np.int64(r), np.int64(1), np.int64(-1), np.int64(0))
        return True
    for p in range(ln):
        sol.stop_i[I_UNLOAD, sol.seq[r, p]] = keep[p]
    return False


@njit(cache=True, _nrt=False)
def _trips(inst: Inst, sol: Sol, r: int, starts: np.ndarray) -> int:
    """Split route r into its trips as the walk drives it: writes the position of each
    trip's first stop to ``starts`` (``starts[0]`` = 0, ``starts[t]`` = route length) and
    makes every unload between trips explicit (the site the walk used, placed before the
    trip's first stop), so that a trip keeps its unload when it moves. Returns the number
    of trips, or 0 when that would change what the route costs (then nothing is changed)."""
    ln = sol.route_i[R_LEN, r]
    if ln == 0:
        return 0
    nd = int(inst.c[C_ND])
    npd = nd + inst.st.shape[0]
    set_seg(sol.segs, 0, r, 0, ln - 1, 0)
    _, nv = walk(inst, sol, np.int64(0), np.int64(1), np.int64(r), sol.bufs[0])
    keep = sol.bufs[1]
    for p in range(ln):
        keep[p] = sol.stop_i[I_UNLOAD, sol.seq[r, p]]
    t = 1
    starts[0] = 0
    # the first trip gets an unload before it too (the site nearest its first stop), so
    # that it stays a trip of its own when it moves later in a day; at the start of a
    # route there is nothing to unload and the walk skips it
    u0 = sol.seq[r, 0]
    best = np.inf
    for p in range(inst.pt.shape[0]):
        if inst.dist[npd + p, nd + u0] < best:
            best = inst.dist[npd + p, nd + u0]
            sol.stop_i[I_UNLOAD, u0] = p
    site = -1
    pos = 0
    for k in range(nv):
        loc = sol.bufs[0, k]
        if loc >= npd:
            site = loc - npd
            continue
        if site >= 0 and pos > 0:
            starts[t] = pos
            t += 1
            sol.stop_i[I_UNLOAD, sol.seq[r, pos]] = site
        site = -1
        pos += 1
    starts[t] = ln
    set_seg(sol.segs, 0, r, 0, ln - 1, 0)
    if abs(eval_segs(inst, sol, 0, 1, r) - sol.rcost[r]) > EPS * (1.0 + abs(sol.rcost[r])):
        for p in range(ln):
            sol.stop_i[I_UNLOAD, sol.seq[r, p]] = keep[p]
        return 0
    return t


@njit(cache=True, _nrt=False, inline="always")
def _trip_pieces(segs: np.ndarray, k0: int, r: int, starts: np.ndarray, nt: int, skip: int,
                 rin: int, i_in: int, j_in: int, at: int) -> int:
    """Pieces of route r's trips in order without trip ``skip`` (-1: none), with the
    stops seq[rin, i_in..j_in] as a trip inserted before the ``at``-th of the remaining
    trips (``at`` = their count: last; ``rin`` < 0: nothing inserted). Returns the count
    (at most 4: the trips before and after the removed one stay two pieces)."""
    k = k0
    lo = 0  # start of the current run of kept trips
    kept = 0
    run_open = False
    for t in range(nt):
        if rin >= 0 and kept == at:
            if run_open:
                set_seg(segs, k, r, lo, starts[t] - 1, 0)
                k += 1
            set_seg(segs, k, rin, i_in, j_in, 0)
            k += 1
            run_open = False
            at = -1
        if t == skip:
            if run_open:
                set_seg(segs, k, r, lo, starts[t] - 1, 0)
                k += 1
            run_open = False
            continue
        if not run_open:
            lo = starts[t]
            run_open = True
        kept += 1
    if run_open:
        set_seg(segs, k, r, lo, starts[nt] - 1, 0)
        k += 1
    if rin >= 0 and kept == at:
        set_seg(segs, k, rin, i_in, j_in, 0)
        k += 1
    return k - k0


@njit(cache=True, _nrt=False)
def _try_trips(inst: Inst, sol: Sol, ra: int, rb: int, sa: np.ndarray, na: int,
               sb: np.ndarray, nb: int) -> bool:
    """Trips as route elements: with ``rb`` = ``ra``, move one trip of the route to another
    place in its day; otherwise exchange a trip of each route (each going to its best
    place in the other's day) or move a trip of ``ra`` into ``rb``'s day. First
    improvement; the unloads between trips are explicit (``_trips``)."""
    segs = sol.segs
    old = sol.rcost[ra] + (sol.rcost[rb] if rb != ra else 0.0)
    if rb == ra:
        for x in range(na):
            for at in range(na):
                if at == x:
                    continue
                m = _trip_pieces(segs, 0, ra, sa, na, x, ra, sa[x], sa[x + 1] - 1, at)
                if eval_segs(inst, sol, 0, m, ra) - old < -EPS:
                    apply_pieces(inst, sol, np.int64(ra), np.int64(m), np.int64(-1),
                                 np.int64(0))
                    return True
        return False
    for x in range(na):
        # trip x of ra into rb's day (ra loses a trip; may empty it)
        best_b = np.inf
        best_at = -1
        for at in range(nb + 1):
            m = _trip_pieces(segs, B, rb, sb, nb, -1, ra, sa[x], sa[x + 1] - 1, at)
            c = eval_segs(inst, sol, B, m, rb)
            if c < best_b:
                best_b = c
                best_at = at
        ma = _trip_pieces(segs, 0, ra, sa, na, x, -1, 0, -1, 0)
        ca = eval_segs(inst, sol, 0, ma, ra)
        if ca + best_b - old < -EPS:
            mb = _trip_pieces(segs, B, rb, sb, nb, -1, ra, sa[x], sa[x + 1] - 1, best_at)
            apply_pieces(inst, sol, np.int64(ra), np.int64(ma), np.int64(rb), np.int64(mb))
            return True
        for y in range(nb):
            # exchange trip x of ra with trip y of rb, each at its best place
            best_a = np.inf
            at_a = -1
            for at in range(na):
                m = _trip_pieces(segs, 0, ra, sa, na, x, rb, sb[y], sb[y + 1] - 1, at)
                c = eval_segs(inst, sol, 0, m, ra)
                if c < best_a:
                    best_a = c
                    at_a = at
            if best_a - old >= -EPS:
                continue  # costs are >= 0: the other route cannot make up for it
            best_b = np.inf
            at_b = -1
            for at in range(nb):
                m = _trip_pieces(segs, B, rb, sb, nb, y, ra, sa[x], sa[x + 1] - 1, at)
                c = eval_segs(inst, sol, B, m, rb)
                if c < best_b:
                    best_b = c
                    at_b = at
            if best_a + best_b - old < -EPS:
                ma = _trip_pieces(segs, 0, ra, sa, na, x, rb, sb[y], sb[y + 1] - 1, at_a)
                mb = _trip_pieces(segs, B, rb, sb, nb, y, ra, sa[x], sa[x + 1] - 1, at_b)
                apply_pieces(inst, sol, np.int64(ra), np.int64(ma), np.int64(rb),
                             np.int64(mb))
                return True
    return False


@njit(cache=True, _nrt=False)
def _unpin(inst: Inst, sol: Sol, r: int) -> None:
    """Drop the placed unloads of route r that the walk does not need (it unloads there,
    or somewhere no worse, by itself), so that stops carry placed unloads only where they
    matter, as after ``_try_unload``."""
    ln = sol.route_i[R_LEN, r]
    for p in range(ln):
        u = sol.seq[r, p]
        site = sol.stop_i[I_UNLOAD, u]
        if site < 0:
            continue
        sol.stop_i[I_UNLOAD, u] = -1
        set_seg(sol.segs, 0, r, 0, ln - 1, 0)
        c = eval_segs(inst, sol, 0, 1, r)
        if c - sol.rcost[r] > EPS * (1.0 + abs(sol.rcost[r])):
            sol.stop_i[I_UNLOAD, u] = site
        elif c < sol.rcost[r]:
            refresh_route(inst, sol, r)


@njit(cache=True, _nrt=False)
def _restore_unloads(sol: Sol, r: int, saved: np.ndarray) -> None:
    for p in range(sol.route_i[R_LEN, r]):
        sol.stop_i[I_UNLOAD, sol.seq[r, p]] = saved[sol.seq[r, p]]


@njit(cache=True, _nrt=False)
def _save_unloads(sol: Sol, saved: np.ndarray) -> None:
    for u in range(saved.shape[0]):
        saved[u] = sol.stop_i[I_UNLOAD, u]


@njit(cache=True, _nrt=False)
def uses_trip_moves(inst: Inst) -> bool:
    """Trip moves apply to one stream with disposal sites, and only when some truck's trips
    are capped: with unlimited reloads (mtvrptwr, the city, the planning service) they cost
    iterations and gained nothing measured (shared mtvrptwr at 60 s: 0.99 / 0.88 / 2.83 %
    against 0.46 / 0.71 / 1.60 % before)."""
    if inst.pt.shape[0] == 0 or int(inst.c[C_NSTREAM]) != 1:
        return False
    capped = False
    for v in range(inst.vt.shape[0]):
        capped = capped or inst.vt[v, V_MAXREL] < inst.st.shape[0]
    return capped


@njit(cache=True, _nrt=False)
def trip_moves(inst: Inst, sol: Sol, starts: np.ndarray, saved: np.ndarray) -> int:
    """Whole trips as route elements (one stream, disposal sites, a truck whose trips are
    capped by ``max_reloads``): reorder a route's trips, exchange trips between two routes
    or move one into another route's day, until no such move improves. Moving a trip
    changes where its truck unloads in one step (e.g. a small trip from the start of the
    day to its end), which the moves on stops and single unloads reach only through worse
    plans. Routes that do not change keep their placed unloads as they were; the changed
    ones keep only those that matter. Returns moves applied."""
    if not uses_trip_moves(inst):
        return 0
    nroutes = sol.rcost.shape[0] - 1
    _save_unloads(sol, saved)
    moves = 0
    improved = True
    while improved:
        improved = False
        for ra in range(nroutes):
            if sol.route_i[R_LEN, ra] == 0:
                continue
            # only pairs that changed since ra's trips were last tried against every route
            seen = sol.route_i[R_TRIPS, ra]
            todo = seen < 0
            for rb in range(nroutes):
                todo = todo or sol.route_i[R_VERSION, rb] > seen
            if not todo:
                continue
            na = _trips(inst, sol, ra, starts[0])
            if na == 0:
                continue
            done = False
            for rb in range(nroutes):
                if seen >= 0 and (rb == ra or sol.route_i[R_VERSION, rb] <= seen):
                    continue
                if rb == ra:
                    nb = na
                else:
                    nb = _trips(inst, sol, rb, starts[1])
                    if nb == 0:
                        continue
                if na + nb > 2 and _try_trips(inst, sol, ra, rb, starts[0], na,
                                              starts[1] if rb != ra else starts[0], nb):
                    _unpin(inst, sol, ra)
                    if rb != ra:
                        _unpin(inst, sol, rb)
                    _save_unloads(sol, saved)
                    moves += 1
                    improved = True
                    done = True
                    break
                if rb != ra:
                    _restore_unloads(sol, rb, saved)
            if not done:
                _restore_unloads(sol, ra, saved)
                sol.route_i[R_TRIPS, ra] = int(sol.misc[1])
    return moves


@njit(cache=True, _nrt=False)
def _examine(inst: Inst, sol: Sol, u: int, use_empty: bool, has_optional: bool,
             has_sites: bool) -> int:
    """Try the moves around stop u; returns how many were applied."""
    moves = 0
    k_nb = inst.nb.shape[1]
    if sol.stop_i[I_ROUTE, u] < 0:
        if has_optional and inst.st[u, S_REQ] == 0.0 and _try_optional(inst, sol, u):
            moves += 1
        return moves
    sol.stop_i[I_PROMISING, u] = 0
    for kk in range(k_nb):
        v = inst.nb[u, kk]
        if sol.stop_i[I_ROUTE, v] < 0 or sol.stop_i[I_ROUTE, u] < 0:
            continue
        if try_pair(inst, sol, u, v):
            moves += 1
    ru = sol.stop_i[I_ROUTE, u]
    if ru < 0:
        return moves
    if use_empty and sol.route_i[R_LEN, ru] > 1:
        re = _first_empty_route(sol, ru)
        one, zero, first = np.int64(1), np.int64(0), np.int64(-1)
        if re >= 0 and relocate(inst, sol, u, one, zero, re, first):
            moves += 1
    if has_optional and not (inst.st[u, S_REQ] > 0.0) and _try_optional(inst, sol, u):
        return moves + 1
    ru = sol.stop_i[I_ROUTE, u]
    if has_sites and ru >= 0 and (
            _try_unload(inst, sol, u)
            or (sol.stop_i[I_POS, u] == 0 and _try_reverse(inst, sol, ru))):
        moves += 1
    return moves


@njit(cache=True, _nrt=False)
def local_search_steps(inst: Inst, sol: Sol, order: np.ndarray, use_empty: bool,
                       state: np.ndarray, budget: int) -> bool:
    """Resumable local search: examine at most ``budget`` stops, then return, so that a
    caller can look at a clock in between. ``state`` = [next index into ``order``, 1 if
    the current pass improved, moves applied] starts at zeros and carries the search
    over; returns True when a whole pass found nothing to improve (done). Cutting the
    search into steps does not change what it does."""
    has_optional = False
    for u in range(inst.st.shape[0]):
        if inst.st[u, S_REQ] == 0.0:
            has_optional = True
            break
    has_sites = inst.pt.shape[0] > 0
    steps = 0
    while True:
        idx = state[0]
        while idx < order.shape[0]:
            u = order[idx]
            idx += 1
            if sol.stop_i[I_ROUTE, u] >= 0 and sol.stop_i[I_PROMISING, u] == 0:
                continue
            if steps >= budget:
                state[0] = idx - 1
                return False
            steps += 1
            m = _examine(inst, sol, u, use_empty, has_optional, has_sites)
            if m > 0:
                state[1] = 1
                state[2] += m
        state[0] = 0
        if state[1] == 0:
            return True
        state[1] = 0


@njit(cache=True)
def local_search(inst: Inst, sol: Sol, order: np.ndarray, use_empty: bool) -> int:
    """Apply improving moves around promising stops until none is left.

    A stop is promising when one of its route neighbours changed (``write_pieces``
    marks the ends of every piece it moves). Only promising stops are examined, so
    after a ruin-and-recreate the search stays near what changed, as in FILO's
    selective vertex caching and PyVRP's promising clients. Returns moves applied.
    """
    state = np.zeros(3, dtype=np.int64)
    local_search_steps(inst, sol, order, use_empty, state, 1 << 62)
    total = int(state[2])
    if not uses_trip_moves(inst):
        return total
    starts = np.empty((2, sol.stop_i.shape[1] + 1), dtype=np.int64)
    saved = np.empty(sol.stop_i.shape[1], dtype=np.int64)
    while True:
        # then whole trips; the stops at the ends of moved trips are promising again
        m = trip_moves(inst, sol, starts, saved)
        if m == 0:
            return total
        total += m
        state[:] = 0
        local_search_steps(inst, sol, order, use_empty, state, 1 << 62)
        total += int(state[2])

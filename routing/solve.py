"""``solve(data, stop, seed) -> Result``: the public entry point of the solver.

Pipeline: greedy insertion (stops far from the depot first) -> granular local
search -> iterated local search with ruin-and-recreate and simulated-annealing
acceptance until the stopping criterion says stop. The best plan found is then
re-simulated by the independent checker (``feasibility.py``), whose figures are
the ones reported.

The compiled kernels are loaded (or compiled and cached on first use) when this
module is imported, by a tiny warm-up solve, so a call's time limit does not
pay for compilation once the package has been imported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from routing import evaluate as ev
from routing.construct import construct
from routing.evaluate import Inst, Sol, refresh_all, refresh_route, total_cost, walk
from routing.evaluate import infeasibility as ev_infeasibility
from routing.feasibility import RouteReport, check_routes
from routing.ils import ils_chunk, restore, shuffle, snapshot
from routing.local_search import local_search_steps
from routing.model import ProblemData
from routing.params import RoutingParams
from routing.stop import MaxIterations, StoppingCriterion

_CHUNK_TARGET_S = 0.02
"""Target wall time of one compiled chunk of iterations [s]: short enough to stop on time."""
_CHUNK_ITERATIONS = 200
"""Most iterations in one chunk (how the run is cut into chunks changes nothing)."""
_LS_STEPS = 200
"""Stops the first local search examines between two looks at the clock."""
_BUILD_PENALTY = 1000.0
"""Penalty weights while building the first plan, in (longest arc cost) per (mean demand)
and per (mean travel time): large, so the first plan is feasible when it can be."""
_SEARCH_PENALTY = 10.0
"""Where the search's adaptive weights start, same units; they stay within
[_PENALTY_MIN, _PENALTY_MAX]."""
_PENALTY_MIN, _PENALTY_MAX = 0.01, 1e5
_PENALTY_UP, _PENALTY_DOWN = 1.25, 0.85
_PENALTY_SAMPLES = 20
"""Plans counted before the weights are adapted."""


@dataclass(frozen=True)
class Result:
    """The best plan found. ``routes`` holds only trucks that leave the depot.

    cost: total cost (route costs plus prizes of skipped optional stops) as recomputed
        by the checker [cost units; CVRPLIB: distance].
    violations: empty when the plan is feasible.
    unvisited: optional stops left out.
    num_iterations: ruin-and-recreate iterations done.
    runtime_s: wall time of the call [s].
    progress: (iterations done, best cost) each time the best feasible plan improved, as
        seen between chunks of iterations (the cost is the search's own; equal to
        ``cost`` for the last entry). A run with a larger budget has the same entries up
        to the smaller budget's iteration count (anytime), given the same chunks.
    """

    routes: tuple[RouteReport, ...]
    cost: float
    violations: tuple[str, ...]
    unvisited: tuple[int, ...]
    num_iterations: int
    runtime_s: float
    progress: tuple[tuple[int, float], ...] = ()

    @property
    def is_feasible(self) -> bool:
        return not self.violations

    @property
    def distance(self) -> float:
        """Total distance driven [m]."""
        return float(sum(r.distance for r in self.routes))

    @property
    def num_trips(self) -> int:
        """Trips over all trucks (a trip ends at a disposal site or the depot)."""
        return int(sum(len(r.trips) for r in self.routes))

    def customer_routes(self, data: ProblemData) -> list[list[int]]:
        """Routes as CVRPLIB customer numbers (stop index + 1), disposal visits dropped."""
        nd, ns = data.num_depots, data.num_stops
        return [[v - nd + 1 for v in r.visits if nd <= v < nd + ns] for r in self.routes]


def neighbours(data: ProblemData, k: int) -> np.ndarray:
    """(N, K) indices of each stop's K nearest other stops (symmetrised distance)."""
    n = data.num_stops
    k = max(1, min(k, n - 1))
    if n <= 1:
        return np.zeros((n, 0), dtype=np.int64)
    nd = data.num_depots
    d = data.distance[nd : nd + n, nd : nd + n]
    prox = d + d.T
    np.fill_diagonal(prox, np.inf)
    idx = np.argpartition(prox, k - 1, axis=1)[:, :k]
    rows = np.arange(n)[:, None]
    order = np.argsort(prox[rows, idx], axis=1, kind="stable")
    return np.ascontiguousarray(idx[rows, order]).astype(np.int64)


def _tw_fast(data: ProblemData) -> bool:
    """True when moves can be priced from time-window segments (``evaluate._eval_tw``):
    one capacity, no disposal sites, release dates, breaks or compatibility, one speed;
    not for what the plain-CVRP prefix sums already price (``C_FAST``)."""
    return (
        not (data.is_plain_cvrp and np.array_equal(data.distance, data.distance.T))
        and data.num_disposal == 0
        and data.num_streams == 1
        and not (data.resolved("release_s") > 0).any()
        and bool(data.resolved("allowed").all())
        and not (data.resolved("break_s") > 0).any()
        and bool(np.all(data.duration_scale == data.duration_scale[0]))
    ) if data.num_vehicles else False


def _compile_inst(data: ProblemData, params: RoutingParams) -> Inst:
    nd = data.num_depots
    dist = np.ascontiguousarray(data.distance, dtype=np.float64)
    arc_cost = float(dist.max() * data.distance_cost.max()) if dist.size else 1.0
    arc_cost += float(data.fixed_cost.max())
    arc_cost = max(arc_cost, 1e-9)
    mean_dem = float(data.demand[data.demand > 0].mean()) if (data.demand > 0).any() else 1.0
    mean_dur = float(data.duration_s.mean()) if data.duration_s.size else 1.0
    symmetric = bool(np.array_equal(dist, dist.T))
    allowed = data.resolved("allowed")
    st = np.column_stack([
        data.demand.sum(axis=1), data.service_s, data.tw_early_s, data.tw_late_s,
        data.prize, data.required.astype(np.float64), data.resolved("release_s"), data.demand,
        allowed.astype(np.float64),
    ]) if data.num_stops else np.zeros((0, ev.S_DEMAND + data.num_streams + data.num_vehicles))
    vt = np.column_stack([
        data.start_depot, data.end_depot, data.shift_start_s, data.shift_duration_s,
        data.duration_scale, data.distance_cost, data.duration_cost, data.fixed_cost,
        np.minimum(data.max_reloads, 1 << 40), data.resolved("shift_start_late_s"),
        data.resolved("return_late_s"), data.resolved("break_early_s"),
        data.resolved("break_late_s"), data.resolved("break_s"), data.resolved("max_volume"),
        np.minimum(data.resolved("max_stops"), 1 << 40), data.capacity[:, 0], data.capacity,
    ]).astype(np.float64)
    pt = np.column_stack([
        data.unload_s, data.resolved("disposal_tw_early_s"), data.resolved("disposal_tw_late_s"),
        data.disposal_accepts.astype(np.float64),
    ]).reshape(data.num_disposal, 3 + data.num_streams)
    c = np.zeros(12)
    c[ev.C_ND] = nd
    c[ev.C_FAST] = 1.0 if (data.is_plain_cvrp and symmetric) else 0.0
    # construction weights; the search starts lower and adapts (see solve)
    c[ev.C_PENL] = _BUILD_PENALTY * arc_cost / mean_dem
    c[ev.C_PENT] = _BUILD_PENALTY * arc_cost / max(mean_dur, 1e-9)
    c[ev.C_UNROUTED] = 1e9 * arc_cost
    c[ev.C_NSTREAM] = data.num_streams
    c[ev.C_NSITE] = data.num_disposal
    c[ev.C_SWAPSTAR] = 1.0 if params.swap_star else 0.0
    c[ev.C_MEANDEM] = mean_dem
    c[ev.C_HASREL] = 1.0 if (data.resolved("release_s") > 0).any() else 0.0
    c[ev.C_HASALLOW] = 0.0 if allowed.all() else 1.0
    c[ev.C_TWFAST] = 1.0 if _tw_fast(data) else 0.0  # never with C_FAST
    return Inst(
        dist=dist,
        dur=np.ascontiguousarray(data.duration_s, dtype=np.float64),
        st=np.ascontiguousarray(st, dtype=np.float64),
        vt=np.ascontiguousarray(vt),
        pt=np.ascontiguousarray(pt, dtype=np.float64),
        nb=neighbours(data, params.num_neighbours),
        c=c,
    )


def _new_sol(data: ProblemData, seed: int) -> Sol:
    n = max(data.num_stops, 1)
    r = data.num_vehicles
    s = data.num_streams
    rng_seed = np.random.default_rng(seed).integers(1, 2**63 - 1, dtype=np.int64)
    stop_i = np.zeros((5, data.num_stops), dtype=np.int64)
    stop_i[ev.I_ROUTE] = -1
    stop_i[ev.I_PROMISING] = 1
    stop_i[ev.I_SEEN] = -1
    stop_i[ev.I_UNLOAD] = -1
    return Sol(
        seq=np.zeros((r + 1, n), dtype=np.int64),
        stop_i=stop_i,
        route_i=np.zeros((4, r + 1), dtype=np.int64),
        pref=np.zeros((ev.NUM_PREF_TW if _tw_fast(data) else 2, r + 1, n)),
        rcost=np.zeros(r + 1),
        rpen=np.zeros((2, r + 1)),
        segs=np.zeros((10, 4), dtype=np.int64),
        bufs=np.zeros((3, 2 * n + 2 * s + 4), dtype=np.int64),
        work=np.zeros(2 + 3 * s),
        misc=np.array([rng_seed, 0], dtype=np.uint64),
    )


def _past_deadline(stop: StoppingCriterion) -> bool:
    secs = stop.seconds_left()
    return secs is not None and secs <= 0.0


def _visits(inst: Inst, sol: Sol, r: int, buf: np.ndarray) -> list[int]:
    sol.segs[0] = (r, 0, sol.route_i[ev.R_LEN, r] - 1, 0)
    _, n = walk(inst, sol, 0, 1, r, buf)
    return [int(x) for x in buf[:n]]


def solve(
    data: ProblemData,
    stop: StoppingCriterion,
    seed: int = 1,
    params: RoutingParams | None = None,
) -> Result:
    """Plan routes for ``data`` until ``stop`` says stop; deterministic for a seed when
    the stopping criterion is an iteration count."""
    t_call = time.perf_counter()
    stop.start()
    params = params or RoutingParams()
    inst = _compile_inst(data, params)
    sol = _new_sol(data, seed)
    n = data.num_stops
    nroutes = data.num_vehicles
    for r in range(nroutes):
        refresh_route(inst, sol, r)
    if n > 0:
        depot = data.start_depot[0]
        far = -data.distance[depot, data.num_depots : data.num_depots + n]
        # required stops first (far from the depot first), then the optional ones; the
        # construction always completes (it is what makes the plan feasible)
        far_first = np.lexsort((far, ~data.required))
        construct(inst, sol, far_first.astype(np.int64))
    order = np.arange(n, dtype=np.int64)
    shuffle(order, sol.misc)
    # the first descent, in steps so that a time limit can cut it (on 5,000 stops it
    # takes seconds); an iteration limit never cuts it
    ls_state = np.zeros(3, dtype=np.int64)
    while not local_search_steps(inst, sol, order, True, ls_state, _LS_STEPS):
        if _past_deadline(stop):
            break

    cur_seq = np.zeros((nroutes, max(n, 1)), dtype=np.int64)
    cur_rlen = np.zeros(nroutes, dtype=np.int64)
    cur_unl = np.full(n, -1, dtype=np.int64)
    snapshot(sol, cur_seq, cur_rlen, cur_unl)
    best_seq = cur_seq.copy()
    best_rlen = cur_rlen.copy()
    best_unl = cur_unl.copy()
    cost0 = total_cost(inst, sol)
    feasible0 = not any(ev_infeasibility(inst, sol))
    # [current, best feasible, load-feasible, time-feasible, counted, since best improved]
    costs = np.array([cost0, cost0 if feasible0 else np.inf, 0.0, 0.0, 0.0, 0.0])
    # temperature from what the routes cost to drive, not from fixed truck costs or prizes
    used = sol.route_i[ev.R_LEN, :nroutes] > 0
    drive = float((sol.rcost[:nroutes] - data.fixed_cost)[used].sum())
    if drive <= 0.0:
        drive = float(np.sort(data.distance[depot])[-1] * data.distance_cost.max()) if n else 1.0
    per_stop = drive / max(n, 1)
    t_hi = params.start_temperature * per_stop
    t_lo = params.end_temperature * per_stop
    max_removed = max(1, min(params.max_removed, n // 4))
    min_removed = min(params.min_removed, max_removed)
    restart_after = params.restart_after or max(2000, 20 * n)
    # the search's own penalty weights, adapted to the share of feasible plans
    pen_base = inst.c[[ev.C_PENL, ev.C_PENT]] / _BUILD_PENALTY
    inst.c[ev.C_PENL] = pen_base[0] * _SEARCH_PENALTY
    inst.c[ev.C_PENT] = pen_base[1] * _SEARCH_PENALTY
    pen = np.array([pen_base[0] * _PENALTY_MIN, pen_base[0] * _PENALTY_MAX,
                    pen_base[1] * _PENALTY_MIN, pen_base[1] * _PENALTY_MAX,
                    params.target_feasible, _PENALTY_SAMPLES, _PENALTY_UP, _PENALTY_DOWN])
    refresh_all(inst, sol)
    costs[0] = total_cost(inst, sol)

    # Anytime: nothing in the search depends on the stopping criterion (see ils_chunk),
    # which only decides when to stop; chunks exist only so that it is asked often.
    iterations = 0
    chunk = 1
    per_iteration = 0.0
    slowest = 0.0  # longest time per iteration of a chunk so far [s]
    progress = [(0, float(costs[1]))] if np.isfinite(costs[1]) else []
    while n > 1 and not stop(costs[1], iterations):
        left = stop.iterations_left(iterations)
        size = min(chunk, _CHUNK_ITERATIONS, _CHUNK_ITERATIONS if left is None else left)
        secs = stop.seconds_left()
        if secs is not None and per_iteration > 0.0:
            # under a time limit, start no chunk that would end after it: not even one
            # iteration if the slowest so far would not fit (one can take 100 times
            # longer than the next, up to a second on 5,000 stops); the last chunks
            # shrink to fit
            if secs < slowest:
                break
            size = min(size, max(1, int(secs / per_iteration)))
        t0 = time.perf_counter()
        ils_chunk(inst, sol, cur_seq, cur_rlen, cur_unl, best_seq, best_rlen, best_unl, costs,
                  iterations, size, params.cycle_iterations, t_hi, t_lo, restart_after,
                  min_removed, max_removed, params.max_string_length, params.blink_rate,
                  params.route_elimination, params.repair_probability, pen, order)
        iterations += size
        if np.isfinite(costs[1]) and (not progress or costs[1] < progress[-1][1]):
            progress.append((iterations, float(costs[1])))
        took = time.perf_counter() - t0
        # grow or shrink the chunk so it lasts about _CHUNK_TARGET_S
        per_iteration = took / size
        slowest = max(slowest, per_iteration)
        chunk = int(min(max(1, _CHUNK_TARGET_S / max(per_iteration, 1e-9)), 2 * size + 1))

    restore(inst, sol, best_seq, best_rlen, best_unl)
    buf = np.zeros(4 * max(n, 1) + 8 * data.num_streams + 8, dtype=np.int64)
    plan = [(r, _visits(inst, sol, r, buf)) for r in range(nroutes)
            if sol.route_i[ev.R_LEN, r] > 0]
    violations, cost, reports = check_routes(data, plan)
    unvisited = tuple(int(u) for u in np.flatnonzero(sol.stop_i[ev.I_ROUTE] < 0))
    return Result(
        routes=tuple(reports),
        cost=cost,
        violations=tuple(violations),
        unvisited=unvisited,
        num_iterations=iterations,
        runtime_s=time.perf_counter() - t_call,
        progress=tuple(progress),
    )


def _warm_up() -> None:
    """Load (or compile and cache) every kernel on a tiny plain and a tiny rich instance."""
    xy = np.array([[0, 0], [1, 0], [2, 0], [0, 1], [0, 2], [1, 1]], dtype=float)
    dist = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    plain = ProblemData.cvrp(dist, [1, 1, 1, 1, 1], capacity=3, num_vehicles=3)
    solve(plain, MaxIterations(3), seed=0)
    rich = ProblemData(**{
        **plain.__dict__,
        "distance": np.pad(dist, ((0, 1), (0, 1)), constant_values=1.0),
        "duration_s": np.pad(dist, ((0, 1), (0, 1)), constant_values=1.0),
        "disposal_accepts": np.ones((1, 1), dtype=bool),
        "unload_s": np.ones(1),
        "shift_duration_s": np.full(3, 100.0),
    })
    solve(rich, MaxIterations(3), seed=0)


_warm_up()

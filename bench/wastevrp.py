"""Waste-collection families: our solver next to PyVRP, same limits, same machine.

Usage::

    python bench/wastevrp.py                      # all families, 10 s and 60 s
    python bench/wastevrp.py --time-limits 5 --instances R202R0.5,C1_10_1 --seeds 1

Reads the three families in ``../shared/data/wastevrp/`` by the rules of its README:

* ``mtvrptwr`` (multi-trip VRPTW with release dates, reloads at the depot) and ``pcvrptw``
  (prize-collecting VRPTW): VRPLIB files, every value x10 and truncated (DIMACS), Euclidean
  distances = durations. Ours: the depot's reload is a disposal site at the depot (0 s),
  release dates are ``release_s``, the depot's window is the start and latest return.
  Gap to the ``.sol``'s best known cost.
* ``kim2006``: Manhattan feet, speed from the header, landfills = disposal sites with
  their hours and dump times, trips per truck <= ceil(R/Q), depot hours = start window and
  latest return, shift = close - open - lunch, 10^7 ft per truck. Compared by trucks, then
  miles. PyVRP gets the same rules with the landfills as reload depots and the day's last
  unload folded into the arcs back to the depot (the landfill minimising D[i,f] + D[f,0]).

Every plan (ours and PyVRP's, converted to visits) is checked and costed by our checker.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from routing.feasibility import check_routes
from routing.model import ProblemData

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "wastevrp"
INF = float("inf")


# ---------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------
def read_vrplib(path: Path) -> tuple[dict, dict]:
    """(header key -> value string, section name -> rows of numbers)."""
    head: dict[str, str] = {}
    sections: dict[str, list[list[float]]] = {}
    cur = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line == "EOF":
            continue
        if line.endswith("SECTION"):
            cur = line.replace("_SECTION", "").lower()
            sections[cur] = []
        elif ":" in line and cur is None:
            k, v = line.split(":", 1)
            head[k.strip().upper()] = v.strip()
        elif cur is not None:
            sections[cur].append([float(x) for x in line.split()])
    return head, sections


def best_known(path: Path) -> float:
    for line in path.with_suffix(".sol").read_text().splitlines():
        if line.lower().startswith("cost"):
            return float(line.split()[-1])
    raise ValueError(f"{path.with_suffix('.sol')}: no Cost line")


def dimacs(x) -> np.ndarray:
    return np.floor(10 * np.asarray(x, dtype=np.float64) + 1e-9)


def vrplib_data(path: Path) -> ProblemData:
    """mtvrptwr / pcvrptw as our ProblemData (x10 integers)."""
    head, sec = read_vrplib(path)
    xy = np.array([r[1:3] for r in sec["node_coord"]])
    n_loc = xy.shape[0]
    n = n_loc - 1
    euc = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    dist = dimacs(euc)
    demand = dimacs([r[1] for r in sec["demand"]])[1:]
    tw = dimacs([r[1:3] for r in sec["time_window"]]) if "time_window" in sec else None
    service = np.full(n, float(dimacs(float(head.get("SERVICE_TIME", 0)))))
    release = dimacs([r[1] for r in sec["release_time"]])[1:] if "release_time" in sec \
        else np.zeros(n)
    prize = dimacs([r[1] for r in sec["prize"]])[1:] if "prize" in sec else np.zeros(n)
    reload = "vehicles_reload_depot" in sec
    v = int(head["VEHICLES"])
    cap = float(dimacs(float(head["CAPACITY"])))
    if reload:  # a disposal site at the depot: location n_loc, a copy of the depot
        dist = np.pad(dist, ((0, 1), (0, 1)))
        dist[-1, :] = dist[0, :]
        dist[:, -1] = dist[:, 0]
    early = tw[0, 0] if tw is not None else 0.0
    late = tw[0, 1] if tw is not None else INF
    return ProblemData(
        distance=dist, duration_s=dist.copy(), num_depots=1,
        demand=demand.reshape(n, 1), service_s=service,
        tw_early_s=tw[1:, 0] if tw is not None else np.zeros(n),
        tw_late_s=tw[1:, 1] if tw is not None else np.full(n, INF),
        required=np.asarray(prize == 0) if "prize" not in sec else np.zeros(n, dtype=bool),
        prize=prize,
        disposal_accepts=np.ones((1 if reload else 0, 1), dtype=bool),
        unload_s=np.zeros(1 if reload else 0),
        capacity=np.full((v, 1), cap), start_depot=np.zeros(v, dtype=np.int64),
        end_depot=np.zeros(v, dtype=np.int64), shift_start_s=np.full(v, early),
        shift_duration_s=np.full(v, late - early), duration_scale=np.ones(v),
        distance_cost=np.ones(v), duration_cost=np.zeros(v), fixed_cost=np.zeros(v),
        max_reloads=np.full(v, 1 << 30, dtype=np.int64),
        release_s=release, return_late_s=np.full(v, late),
    )


def hhmm(x: float) -> float:
    x = int(x)
    return 3600.0 * (x // 100) + 60.0 * (x % 100)


KIM_TRUCK_COST = 1e7


def kim_data(path: Path, fleet: int | None = None) -> tuple[ProblemData, dict]:
    """Kim et al. (2006) by the README's rules; returns (data, header figures). The fleet
    (default 25 trucks) is a ceiling: unused trucks cost nothing."""
    lines = path.read_text().splitlines()
    q, r_day, max_stops, lunch, mph = (float(lines[k].split()[0]) for k in range(5))
    rows = [ln.split() for ln in lines[6:] if ln.strip()]
    nodes = np.array([[float(x) for x in row[:8]] for row in rows])
    kind = nodes[:, 7].astype(int)
    depot = nodes[kind == 0][0]
    fills = nodes[kind == 2]
    stops = nodes[kind == 1]
    pts = np.vstack([depot[None], stops, fills])  # our order: depot, stops, sites
    xy = pts[:, 1:3]
    dist = np.rint(np.abs(xy[:, None] - xy[None]).sum(-1))
    dur = np.rint(dist * 3600.0 / (5280.0 * mph))
    n, p = len(stops), len(fills)
    load = np.rint(stops[:, 6] * 10.0)
    cap = round(q * 10.0)
    trips = math.ceil(r_day / q)
    open_s, close_s = hhmm(depot[3]), hhmm(depot[4])
    v = fleet or 25
    data = ProblemData(
        distance=dist, duration_s=dur, num_depots=1, demand=load.reshape(n, 1),
        service_s=stops[:, 5].copy(),
        tw_early_s=np.array([hhmm(x) for x in stops[:, 3]]),
        tw_late_s=np.array([hhmm(x) for x in stops[:, 4]]),
        required=np.ones(n, dtype=bool), prize=np.zeros(n),
        disposal_accepts=np.ones((p, 1), dtype=bool), unload_s=fills[:, 5].copy(),
        capacity=np.full((v, 1), float(cap)), start_depot=np.zeros(v, dtype=np.int64),
        end_depot=np.zeros(v, dtype=np.int64), shift_start_s=np.full(v, open_s),
        shift_duration_s=np.full(v, close_s - open_s - lunch), duration_scale=np.ones(v),
        distance_cost=np.ones(v), duration_cost=np.zeros(v),
        fixed_cost=np.full(v, KIM_TRUCK_COST), max_reloads=np.full(v, trips, dtype=np.int64),
        disposal_tw_early_s=np.array([hhmm(x) for x in fills[:, 3]]),
        disposal_tw_late_s=np.array([hhmm(x) for x in fills[:, 4]]),
        shift_start_late_s=np.full(v, close_s), return_late_s=np.full(v, close_s),
        max_stops=np.full(v, int(max_stops), dtype=np.int64),
    )
    return data, {"trips": trips}


# ---------------------------------------------------------------------------------------
# Solvers
# ---------------------------------------------------------------------------------------
def run_ours(data: ProblemData, limit: float, seed: int) -> list[tuple[int, list[int]]]:
    from routing.solve import solve
    from routing.stop import MaxRuntime

    res = solve(data, MaxRuntime(limit), seed=seed)
    return [(r.vehicle, list(r.visits)) for r in res.routes]


def _pyvrp_plan(res, data: ProblemData, site_of) -> list[tuple[int, list[int]]]:
    """PyVRP routes to our visits: a depot activity inside a route is an unload at
    ``site_of(prev_loc, depot_idx)``; the day's last unload is added before the depot."""
    plan = []
    for v, route in enumerate(res.best.routes()):
        acts = list(route)
        visits: list[int] = []
        for k, a in enumerate(acts):
            if a.is_client():
                visits.append(int(a.idx) + data.num_depots)
            elif (0 < k < len(acts) - 1 or (k == len(acts) - 1 and data.num_disposal)) and (
                    visits and visits[-1] < data.num_depots + data.num_stops):
                visits.append(site_of(visits[-1], int(a.idx)))
        plan.append((v, visits))
    return [(v, vis) for v, vis in plan if vis]


def run_pyvrp_vrplib(path: Path, data: ProblemData, limit: float, seed: int):
    import pyvrp
    from pyvrp.stop import MaxRuntime

    pdata = pyvrp.read(str(path), round_func="dimacs")
    res = pyvrp.solve(pdata, stop=MaxRuntime(limit), seed=seed, display=False)
    site = data.num_depots + data.num_stops
    return _pyvrp_plan(res, data, lambda prev, idx: site)


def run_pyvrp_kim(data: ProblemData, limit: float, seed: int):
    import pyvrp
    from pyvrp.stop import MaxRuntime

    nd, n, p = data.num_depots, data.num_stops, data.num_disposal
    sites = np.arange(nd + n, nd + n + p)
    dist = data.distance.astype(np.int64)
    dur = data.duration_s.astype(np.int64)
    # PyVRP locations: depot, landfills (as depots), then clients
    order = np.concatenate([[0], sites, np.arange(nd, nd + n)])
    d2 = dist[np.ix_(order, order)].copy()
    t2 = dur[np.ix_(order, order)].copy()
    # the day's last unload folded into every client's arc to the depot
    best_fill = np.argmin(dist[nd:nd + n][:, sites] + dist[sites, 0][None, :], axis=1)
    for i in range(n):
        f = sites[best_fill[i]]
        d2[1 + p + i, 0] = dist[nd + i, f] + dist[f, 0]
        t2[1 + p + i, 0] = dur[nd + i, f] + int(data.unload_s[f - nd - n]) + dur[f, 0]
    tw_open = data.resolved("disposal_tw_early_s")
    tw_close = data.resolved("disposal_tw_late_s")
    depots = [pyvrp.Depot(location=0)] + [
        pyvrp.Depot(location=1 + k, tw_early=int(tw_open[k]), tw_late=int(min(tw_close[k], 2**40)),
                    service_duration=int(data.unload_s[k])) for k in range(p)]
    clients = [pyvrp.Client(location=1 + p + i, pickup=[int(data.demand[i, 0])],
                            service_duration=int(data.service_s[i]),
                            tw_early=int(data.tw_early_s[i]), tw_late=int(data.tw_late_s[i]))
               for i in range(n)]
    locs = [pyvrp.Location(x=0, y=0) for _ in range(len(order))]
    vt = pyvrp.VehicleType(
        num_available=data.num_vehicles, capacity=[int(data.capacity[0, 0])],
        fixed_cost=int(data.fixed_cost[0]), tw_early=int(data.shift_start_s[0]),
        tw_late=int(data.resolved("return_late_s")[0]),
        shift_duration=int(data.shift_duration_s[0]),
        start_late=int(data.resolved("shift_start_late_s")[0]),
        reload_depots=list(range(1, p + 1)), max_reloads=int(data.max_reloads[0]) - 1)
    pdata = pyvrp.ProblemData(locations=locs, clients=clients, depots=depots,
                              vehicle_types=[vt], distance_matrices=[d2],
                              duration_matrices=[t2])
    res = pyvrp.solve(pdata, stop=MaxRuntime(limit), seed=seed, display=False)
    plan = []
    for v, route in enumerate(res.best.routes()):
        visits = []
        for a in route:
            if a.is_client():
                visits.append(nd + int(a.idx))  # idx: 0-based client index
            elif a.is_depot() and 1 <= int(a.idx) <= p and visits:
                visits.append(int(sites[int(a.idx) - 1]))
        if visits and nd <= visits[-1] < nd + n:
            visits.append(int(sites[best_fill[visits[-1] - nd]]))
        plan.append((v, visits))
    return [(v, vis) for v, vis in plan if vis]


# ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="The wastevrp folder.")
    parser.add_argument("--time-limits", default="10,60",
                        help="Comma-separated time limits in seconds (default 10,60).")
    parser.add_argument("--instances", default=None,
                        help="Comma-separated instance names (default: all).")
    parser.add_argument("--solvers", default="smartbins,pyvrp")
    parser.add_argument("--seeds", default="1", help="Comma-separated seeds (default 1).")
    args = parser.parse_args(argv)
    limits = [float(x) for x in args.time_limits.split(",")]
    seeds = [int(x) for x in args.seeds.split(",")]
    names = [s.strip() for s in args.solvers.split(",")]
    if "pyvrp" in names:
        try:
            import pyvrp  # noqa: F401
        except ImportError:
            print("pyvrp not installed; running without it (pip install pyvrp)")
            names.remove("pyvrp")
    if "smartbins" in names:
        import routing.solve  # noqa: F401  (loads the compiled kernels before any timing)
    wanted = set(args.instances.split(",")) if args.instances else None

    jobs = []
    for fam in ("mtvrptwr", "pcvrptw"):
        for path in sorted((args.data / fam).glob("*.vrp")):
            if wanted is None or path.stem in wanted:
                jobs.append((fam, path))
    for path in sorted((args.data / "kim2006").glob("*.txt")):
        if wanted is None or path.stem in wanted:
            jobs.append(("kim2006", path))

    summary: dict[tuple[str, str, float], list[float]] = {}
    print(f"{'family':<9}{'instance':<13}{'limit':>6}{'seed':>5} {'solver':<10}"
          f"{'cost':>12}{'gap%':>8}{'trucks':>7}{'miles':>9}{'feasible':>9}{'time':>7}")
    for fam, path in jobs:
        if fam == "kim2006":
            data, _ = kim_data(path)
            bks = None
        else:
            data = vrplib_data(path)
            bks = best_known(path)
        for lim in limits:
            for seed in seeds:
                for s in names:
                    t0 = time.perf_counter()
                    if s == "smartbins":
                        plan = run_ours(data, lim, seed)
                    elif fam == "kim2006":
                        plan = run_pyvrp_kim(data, lim, seed)
                    else:
                        plan = run_pyvrp_vrplib(path, data, lim, seed)
                    took = time.perf_counter() - t0
                    violations, cost, reps = check_routes(data, plan)
                    trucks = len(reps)
                    ok = not violations
                    if fam == "kim2006":
                        miles = sum(r.distance for r in reps) / 5280.0
                        gap = float("nan")
                        fig = miles
                    else:
                        miles = float("nan")
                        gap = 100.0 * (cost - bks) / bks
                        fig = gap
                    summary.setdefault((fam, s, lim), []).append(
                        (fig, trucks, ok) if fam == "kim2006" else (fig, ok))
                    print(f"{fam:<9}{path.stem:<13}{lim:>6g}{seed:>5} {s:<10}{cost:>12.0f}"
                          f"{gap:>8.2f}{trucks:>7}{miles:>9.1f}{'yes' if ok else 'NO':>9}"
                          f"{took:>7.1f}", flush=True)
                    if violations:
                        print("    " + "; ".join(violations[:3]))
    print("\nsummary per family (mean over instances and seeds):")
    for (fam, s, lim), vals in sorted(summary.items()):
        feas = sum(v[-1] for v in vals)
        if fam == "kim2006":
            print(f"  {fam:<9} {lim:>5g} s {s:<10} trucks {np.mean([v[1] for v in vals]):.1f}"
                  f"  miles {np.mean([v[0] for v in vals]):.1f}  feasible {feas}/{len(vals)}")
        else:
            print(f"  {fam:<9} {lim:>5g} s {s:<10} gap {np.mean([v[0] for v in vals]):.2f}%"
                  f"  feasible {feas}/{len(vals)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

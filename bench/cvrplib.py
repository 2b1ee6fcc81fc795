"""CVRPLIB benchmark: our solver next to PyVRP and OR-Tools, same limit, same machine.

Usage::

    python bench/cvrplib.py ../shared/data/cvrplib --time-limit 5 \
        --solvers smartbins,pyvrp,ortools --out results.csv
    python bench/cvrplib.py --time-limits 5,30 --seeds 1,2,3 --solvers smartbins,pyvrp \
        --instances X-n101-k25,X-n125-k30

Every solver gets every ``.vrp`` in the folders with the same time limit, the
TSPLIB integer (nint EUC_2D) distances, a fleet of ceil(1.5 k) trucks and seed 1.
Each returned plan is checked by our independent checker and its cost recomputed
from the integer matrix; the gap is to the best-known cost in the ``.sol`` beside
the instance. PyVRP and OR-Tools are optional (``pip install -e '.[bench]'``);
without them only our solver runs.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from routing.cvrplib import CvrpInstance, read_sol, read_vrp, solution_cost
from routing.feasibility import check_routes
from routing.model import ProblemData

INSTALL_HINT = "Install the yardsticks with: pip install -e '.[bench]'"


def fleet_size(inst: CvrpInstance) -> int:
    """ceil(1.5 k), k from the instance name (minimum number of vehicles)."""
    k = inst.min_vehicles or math.ceil(inst.demand.sum() / inst.capacity)
    return math.ceil(1.5 * k)


def run_smartbins(inst: CvrpInstance, data: ProblemData, limit_s: float, seed: int):
    from routing.solve import solve
    from routing.stop import MaxRuntime

    res = solve(data, MaxRuntime(limit_s), seed=seed)
    return res.customer_routes(data)


def run_pyvrp(inst: CvrpInstance, data: ProblemData, limit_s: float, seed: int):
    import pyvrp
    from pyvrp.stop import MaxRuntime

    dist = data.distance.astype(np.int64)
    locations = [pyvrp.Location(x=int(x), y=int(y)) for x, y in inst.coords]
    clients = [
        pyvrp.Client(location=i, delivery=[int(inst.demand[i])])
        for i in range(1, len(locations))
    ]
    pdata = pyvrp.ProblemData(
        locations=locations,
        clients=clients,
        depots=[pyvrp.Depot(location=0)],
        vehicle_types=[pyvrp.VehicleType(num_available=data.num_vehicles,
                                         capacity=[int(inst.capacity)])],
        distance_matrices=[dist],
        duration_matrices=[np.zeros_like(dist)],
    )
    res = pyvrp.solve(pdata, stop=MaxRuntime(limit_s), seed=seed, display=False)
    # client activity idx c is the 0-based client index; its location is c + 1
    return [[int(a.idx) + 1 for a in route if a.is_client()] for route in res.best.routes()]


def run_ortools(inst: CvrpInstance, data: ProblemData, limit_s: float, seed: int):
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    n_loc = data.num_locations
    manager = pywrapcp.RoutingIndexManager(n_loc, data.num_vehicles, 0)
    routing = pywrapcp.RoutingModel(manager)
    dist = data.distance.astype(np.int64).tolist()
    transit = routing.RegisterTransitMatrix(dist)
    routing.SetArcCostEvaluatorOfAllVehicles(transit)
    demand = [int(d) for d in inst.demand]
    dem_cb = routing.RegisterUnaryTransitVector(demand)
    routing.AddDimensionWithVehicleCapacity(
        dem_cb, 0, [int(inst.capacity)] * data.num_vehicles, True, "load"
    )
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(int(limit_s * 1000))
    sol = routing.SolveWithParameters(params)
    if sol is None:
        return None
    routes = []
    for v in range(data.num_vehicles):
        idx = routing.Start(v)
        route = []
        idx = sol.Value(routing.NextVar(idx))
        while not routing.IsEnd(idx):
            route.append(manager.IndexToNode(idx))
            idx = sol.Value(routing.NextVar(idx))
        routes.append(route)
    return routes


SOLVERS = {"smartbins": run_smartbins, "pyvrp": run_pyvrp, "ortools": run_ortools}
MODULES = {"pyvrp": "pyvrp", "ortools": "ortools"}


def available(name: str) -> bool:
    if name not in MODULES:
        return True
    try:
        __import__(MODULES[name])
    except ImportError:
        return False
    return True


def run_table(files, names, limit: float, seed: int, rows: list, over_time: list) -> dict:
    """One time limit and seed over all instances; prints the table, returns gaps."""
    header = f"{'instance':<14}{'n':>6}{'BKS':>9}"
    for s in names:
        header += f" | {s + ' cost':>16}{'gap%':>7}{'time':>7}"
    print(f"\ntime limit {limit:g} s, fleet ceil(1.5 k), seed {seed}")
    print(header)
    print("-" * len(header))
    gaps: dict[str, dict[str, float]] = {s: {} for s in names}
    for path in files:
        inst = read_vrp(path)
        _, bks = read_sol(path.with_suffix(".sol"))
        data = inst.to_data(num_vehicles=fleet_size(inst))
        line = f"{inst.name:<14}{inst.num_customers:>6}{bks:>9.0f}"
        for s in names:
            t0 = time.perf_counter()
            routes = SOLVERS[s](inst, data, limit, seed)
            took = time.perf_counter() - t0
            if routes is None:
                feasible, cost = False, float("nan")
            else:
                routes = [r for r in routes if r]
                violations, _, _ = check_routes(data, list(enumerate(routes)))
                feasible = not violations and len(routes) <= data.num_vehicles
                cost = solution_cost(data.distance, routes)
            gap = 100.0 * (cost / bks - 1.0) if feasible else float("nan")
            gaps[s][inst.name] = gap
            if took > 1.1 * limit:
                over_time.append(f"{s} on {inst.name} ({limit:g} s, seed {seed}): {took:.2f} s")
            line += f" | {cost:>16.0f}{gap:>7.2f}{took:>7.2f}" if feasible else (
                f" | {'infeasible':>16}{'':>7}{took:>7.2f}")
            rows.append({"instance": inst.name, "n": inst.num_customers, "bks": bks,
                         "solver": s, "time_limit_s": limit, "seed": seed, "cost": cost,
                         "gap_pct": gap, "feasible": feasible, "runtime_s": round(took, 3)})
        print(line, flush=True)
    print("-" * len(header))
    mean = f"{'mean gap':<29}"
    for s in names:
        m = float(np.mean(list(gaps[s].values()))) if gaps[s] else float("nan")
        mean += f" | {'':>16}{m:>7.2f}{'':>7}"
    print(mean)
    return gaps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run routing solvers on CVRPLIB instances and print the gap to the "
        "best-known solutions, ours next to PyVRP's and OR-Tools'."
    )
    parser.add_argument("dirs", nargs="*", type=Path,
                        default=[Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
                                 / "cvrplib"],
                        help="Folders holding .vrp instances with their .sol beside them.")
    group = parser.add_argument_group("Stopping criteria")
    group.add_argument("--time-limit", type=float, default=None,
                       help="One time limit per solver and instance in seconds (default 5).")
    group.add_argument("--time-limits", default=None,
                       help="Comma-separated time limits, e.g. 5,30: each instance and seed "
                       "runs at each, and the bench reports instances worse at a longer limit.")
    parser.add_argument("--solvers", default="smartbins,pyvrp,ortools",
                        help="Comma-separated solvers to run: smartbins, pyvrp, ortools.")
    parser.add_argument("--seed", type=int, default=1, help="Seed for every solver (default 1).")
    parser.add_argument("--seeds", default=None, help="Comma-separated seeds (overrides --seed).")
    parser.add_argument("--instances", default=None,
                        help="Comma-separated instance names to run (default: all).")
    parser.add_argument("--out", type=Path, help="Write one CSV row per instance and solver.")
    args = parser.parse_args(argv)

    names = [s.strip() for s in args.solvers.split(",") if s.strip()]
    unknown = [s for s in names if s not in SOLVERS]
    if unknown:
        parser.error(f"unknown solvers {unknown}; choose from {', '.join(SOLVERS)}")
    missing = [s for s in names if not available(s)]
    if missing:
        print(f"{', '.join(missing)} not installed; running without them. {INSTALL_HINT}")
        names = [s for s in names if s not in missing]
    if "smartbins" in names:
        import routing.solve  # noqa: F401  (loads the compiled kernels before any timing)
    if args.time_limits:
        limits = [float(x) for x in args.time_limits.split(",")]
    else:
        limits = [args.time_limit if args.time_limit is not None else 5.0]
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]

    files = sorted(p for d in args.dirs for p in d.glob("*.vrp"))
    if args.instances:
        wanted = {x.strip() for x in args.instances.split(",")}
        files = [f for f in files if f.stem in wanted]
    if not files:
        print(f"no .vrp files in {', '.join(map(str, args.dirs))}")
        return 1
    rows: list[dict] = []
    over_time: list[str] = []
    gaps = {(lim, seed): run_table(files, names, lim, seed, rows, over_time)
            for lim in limits for seed in seeds}
    print(f"\nsummary: mean gap % over {len(files)} instances and seeds {seeds}")
    for lim in limits:
        line = f"  {lim:>6g} s:"
        for s in names:
            vals = [g for seed in seeds for g in gaps[(lim, seed)][s].values()]
            line += f"  {s} {float(np.mean(vals)):.2f}"
        print(line)
        if "smartbins" in names:
            ours = np.mean([g for seed in seeds for g in gaps[(lim, seed)]["smartbins"].values()])
            for s in names:
                if s != "smartbins":
                    peer = np.mean([g for seed in seeds for g in gaps[(lim, seed)][s].values()])
                    print(f"    smartbins vs {s}: {ours - peer:+.2f} percentage points")
    for s in names:
        for a, b in itertools.pairwise(limits):
            worse = [f"{inst} seed {seed}: {gaps[(a, seed)][s][inst]:.2f}% at {a:g} s, "
                     f"{gaps[(b, seed)][s][inst]:.2f}% at {b:g} s"
                     for seed in seeds for inst in gaps[(a, seed)][s]
                     if gaps[(b, seed)][s][inst] > gaps[(a, seed)][s][inst] + 1e-9]
            print(f"{s}: instances worse at {b:g} s than at {a:g} s: "
                  + ("none" if not worse else "; ".join(worse)))
    if over_time:
        print("over the time limit + 10%: " + "; ".join(over_time))
    if args.out:
        with open(args.out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""City-scale benchmark: a seeded 5,000-stop municipality, ours next to PyVRP.

Usage::

    python bench/city_scale.py --stops 5000 --time-limit 60 --seed 1

The city: stops in residential clusters over 12 km x 12 km, 60 s service per stop,
8-hour shifts, 25 km/h, one stream, truck capacity about 120 stops' volume, a
garage and two disposal sites (600 s to unload); trucks empty at a disposal site
whenever they are full and continue, and finish the day at disposal site 1 (a
depot at the same spot, so both solvers model the final unload the same way: our
model unloads there, PyVRP ends its route there). Distances are road-like
(Euclidean times 1.3, whole metres); durations whole seconds. Both solvers get the
same integer matrices, fleet and time limit; as many trucks as needed are
available (the fleet is generous and unused trucks cost nothing).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from routing.model import Model

SPEED_MPS = 25 / 3.6
SHIFT_S = 8 * 3600
SERVICE_S = 60
UNLOAD_S = 600
DETOUR = 1.3


def make_city(n: int, seed: int) -> dict:
    """Coordinates [m] and integer demands of a clustered city, plus garage and sites."""
    rng = np.random.default_rng(seed)
    n_clusters = max(1, n // 150)
    centres = rng.uniform(500, 11_500, size=(n_clusters, 2))
    which = rng.integers(0, n_clusters, size=n)
    xy = centres[which] + rng.normal(0, 450, size=(n, 2))
    xy = np.clip(xy, 0, 12_000)
    demand = rng.integers(80, 121, size=n)  # litres, mean 100
    return {
        "stops": xy,
        "demand": demand,
        "garage": np.array([1_000.0, 1_000.0]),
        "sites": np.array([[11_000.0, 2_000.0], [3_000.0, 11_000.0]]),
        "capacity": 120 * 100,
    }


def matrices(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer road-like distances [m] and durations [s] between all points."""
    diff = points[:, None, :] - points[None, :, :]
    dist = np.rint(np.sqrt(np.einsum("ijk,ijk->ij", diff, diff)) * DETOUR).astype(np.int64)
    dur = np.rint(dist / SPEED_MPS).astype(np.int64)
    return dist, dur


def fleet_for(n: int) -> int:
    """A generous fleet: about 200 stops per shift would already be slow going."""
    return max(2, math.ceil(n / 200) + 5)


def run_ours(city: dict, fleet: int, limit_s: float, seed: int) -> dict:
    from routing.solve import solve
    from routing.stop import MaxRuntime

    m = Model(streams=("residual",))
    m.add_depot(*city["garage"])
    end = m.add_depot(*city["sites"][0])
    for (x, y), d in zip(city["stops"], city["demand"], strict=True):
        m.add_stop(x, y, demand=float(d), service_s=SERVICE_S)
    for x, y in city["sites"]:
        m.add_disposal_site(x, y, accepts=[0], unload_s=UNLOAD_S)
    m.add_vehicle_type(num=fleet, capacity=float(city["capacity"]), start_depot=0,
                       end_depot=end, shift_duration_s=SHIFT_S, speed_mps=SPEED_MPS,
                       cost_per_km=1.0)
    # our location order: garage, end depot, stops, sites
    pts = np.vstack([city["garage"], city["sites"][0], city["stops"], city["sites"]])
    dist, dur = matrices(pts)
    t0 = time.perf_counter()
    data = m.data(distance=dist, duration_s=dur)
    res = solve(data, MaxRuntime(limit_s), seed=seed)
    took = time.perf_counter() - t0
    return {
        "time_s": took,
        "km": res.distance / 1000.0,
        "trucks": len(res.routes),
        "trips": res.num_trips,
        "feasible": res.is_feasible,
        "note": "; ".join(res.violations[:2]),
        "iterations": res.num_iterations,
    }


def run_pyvrp(city: dict, fleet: int, limit_s: float, seed: int) -> dict:
    import pyvrp
    from pyvrp.stop import MaxRuntime

    # PyVRP location order: garage, site 1 (also the end depot), site 2, stops
    pts = np.vstack([city["garage"], city["sites"], city["stops"]])
    dist, dur = matrices(pts)
    locations = [pyvrp.Location(x=int(x), y=int(y)) for x, y in pts]
    depots = [pyvrp.Depot(location=0)] + [
        pyvrp.Depot(location=k, service_duration=UNLOAD_S) for k in (1, 2)
    ]
    clients = [
        pyvrp.Client(location=3 + i, delivery=[int(d)], service_duration=SERVICE_S)
        for i, d in enumerate(city["demand"])
    ]
    vt = pyvrp.VehicleType(num_available=fleet, capacity=[int(city["capacity"])],
                           start_depot=0, end_depot=1, shift_duration=SHIFT_S,
                           reload_depots=[1, 2])
    t0 = time.perf_counter()
    data = pyvrp.ProblemData(locations=locations, clients=clients, depots=depots,
                             vehicle_types=[vt], distance_matrices=[dist],
                             duration_matrices=[dur])
    res = pyvrp.solve(data, stop=MaxRuntime(limit_s), seed=seed, display=False)
    took = time.perf_counter() - t0
    routes = res.best.routes()
    return {
        "time_s": took,
        "km": res.best.distance() / 1000.0,
        "trucks": len(routes),
        "trips": int(sum(r.num_trips() for r in routes)),
        "feasible": res.best.is_feasible(),
        "note": "",
        "iterations": res.num_iterations,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Plan a seeded synthetic city with our solver and with PyVRP under the "
        "same modelling and time limit; print time, km, trucks, trips and the km ratio."
    )
    parser.add_argument("--stops", type=int, default=5000, help="Number of stops (default 5000).")
    group = parser.add_argument_group("Stopping criteria")
    group.add_argument("--time-limit", type=float, default=60.0,
                       help="Time limit per solver in seconds (default 60).")
    parser.add_argument("--seed", type=int, default=1, help="Seed of the city and solvers.")
    parser.add_argument("--solvers", default="smartbins,pyvrp",
                        help="Comma-separated: smartbins, pyvrp.")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.solvers.split(",") if s.strip()]
    if "pyvrp" in names:
        try:
            import pyvrp  # noqa: F401
        except ImportError:
            print("pyvrp not installed; running ours alone. "
                  "Install the yardsticks with: pip install -e '.[bench]'")
            names.remove("pyvrp")
    if "smartbins" in names:
        import routing.solve  # noqa: F401  (loads the compiled kernels before timing)
    city = make_city(args.stops, args.seed)
    fleet = fleet_for(args.stops)
    print(f"city: {args.stops} stops, fleet {fleet}, capacity {city['capacity']} "
          f"(~120 stops), shift {SHIFT_S / 3600:g} h, {SPEED_MPS * 3.6:g} km/h, "
          f"time limit {args.time_limit:g} s, seed {args.seed}")
    runners = {"smartbins": run_ours, "pyvrp": run_pyvrp}
    results = {}
    print(f"{'solver':<10}{'time s':>8}{'km':>10}{'trucks':>8}{'trips':>7}{'iters':>8}  feasible")
    for s in names:
        r = runners[s](city, fleet, args.time_limit, args.seed)
        results[s] = r
        print(f"{s:<10}{r['time_s']:>8.1f}{r['km']:>10.1f}{r['trucks']:>8}{r['trips']:>7}"
              f"{r['iterations']:>8}  {r['feasible']} {r['note']}", flush=True)
    if "smartbins" in results and "pyvrp" in results:
        ratio = results["smartbins"]["km"] / results["pyvrp"]["km"]
        print(f"km ratio smartbins / pyvrp: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

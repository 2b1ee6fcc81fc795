"""The search is anytime: nothing in it depends on the stopping criterion, so a run with a
larger budget is the smaller run continued and its best is never worse (issue 13: "no
instance worse at 30 s than at 5 s for the same seed"). Time budgets use an injected clock.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import routing.solve as solve_module
from routing.model import Model, ProblemData
from routing.params import RoutingParams
from routing.solve import solve
from routing.stop import MaxIterations, MaxRuntime

# short cycles and restarts, so that the budgets below cross cycle starts, restarts and
# many penalty updates
PARAMS = RoutingParams(cycle_iterations=40, restart_after=60)


def plain_cvrp(seed: int, n: int = 40) -> ProblemData:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1000, size=(n + 1, 2))
    dist = np.rint(np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)))
    demand = rng.integers(1, 10, size=n)
    return ProblemData.cvrp(dist, demand, capacity=40, num_vehicles=n // 4 + 2)


def rich_city(seed: int, n: int = 30) -> ProblemData:
    """Two streams, two disposal sites, windows, shifts and optional stops."""
    rng = np.random.default_rng(seed)
    m = Model(streams=("residual", "glass"))
    m.add_depot(0, 0)
    for _ in range(n):
        x, y = rng.uniform(-4000, 4000, 2)
        early = float(rng.uniform(0, 4 * 3600))
        m.add_stop(x, y, demand=rng.uniform(0.2, 1.5, 2), service_s=float(rng.uniform(30, 200)),
                   tw_early_s=early, tw_late_s=early + float(rng.uniform(2, 5) * 3600),
                   required=bool(rng.random() < 0.8), prize=float(rng.uniform(0, 8)))
    m.add_disposal_site(3000, 0, accepts=[0, 1], unload_s=300)
    m.add_disposal_site(-3000, 500, accepts=[0], unload_s=300)
    m.add_vehicle_type(num=6, capacity=[6.0, 4.0], shift_duration_s=8 * 3600,
                       speed_mps=25 / 3.6, cost_per_km=2.0, cost_per_h=30.0)
    return m.data()


INSTANCES = [("plain", s) for s in (1, 2, 3)] + [("rich", s) for s in (4, 5, 6)]


def instance(kind: str, seed: int) -> ProblemData:
    return plain_cvrp(seed) if kind == "plain" else rich_city(seed)


@pytest.mark.parametrize(("kind", "seed"), INSTANCES)
def test_a_larger_iteration_budget_continues_the_same_run(kind, seed, monkeypatch):
    # one iteration per chunk, so that progress records every iteration's best
    monkeypatch.setattr(solve_module, "_CHUNK_ITERATIONS", 1)
    data = instance(kind, seed)
    short = solve(data, MaxIterations(120), seed=seed, params=PARAMS)
    long = solve(data, MaxIterations(300), seed=seed, params=PARAMS)
    assert short.is_feasible and long.is_feasible
    # the trajectory up to 120 iterations is the same, and the best can only improve
    assert [p for p in long.progress if p[0] <= 120] == list(short.progress)
    assert long.cost <= short.cost + 1e-9
    assert [p[1] for p in long.progress] == sorted((p[1] for p in long.progress), reverse=True)


@pytest.mark.parametrize(("kind", "seed"), INSTANCES[::2])
def test_how_the_run_is_cut_into_chunks_changes_nothing(kind, seed, monkeypatch):
    data = instance(kind, seed)
    results = []
    for size in (1, 7, 200):
        monkeypatch.setattr(solve_module, "_CHUNK_ITERATIONS", size)
        results.append(solve(data, MaxIterations(150), seed=seed, params=PARAMS))
    a, b, c = results
    assert [r.visits for r in a.routes] == [r.visits for r in b.routes] == [
        r.visits for r in c.routes]
    assert a.cost == b.cost == c.cost


class StepClock:
    """Advances ``step`` seconds each time it is read: a time budget without waiting."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0
        self.reads = 0

    def __call__(self) -> float:
        self.now += self.step
        self.reads += 1
        return self.now


@pytest.mark.parametrize(("kind", "seed"), INSTANCES[1::2])
def test_a_time_limit_only_stops_the_run(kind, seed):
    """A time-limited run is the iteration-limited run of the same length, and a longer
    limit gives a best at least as good: the limit changes nothing but where it stops."""
    data = instance(kind, seed)
    runs = []
    for limit in (3.0, 8.0):
        # one clock read per chunk: a few chunks, each up to twice as long as the last
        res = solve(data, MaxRuntime(limit, clock=StepClock(1.0)), seed=seed, params=PARAMS)
        same = solve(data, MaxIterations(res.num_iterations), seed=seed, params=PARAMS)
        assert res.num_iterations > 0
        assert [r.visits for r in res.routes] == [r.visits for r in same.routes]
        assert res.cost == same.cost
        runs.append(res)
    short, long = runs
    assert long.num_iterations > short.num_iterations
    assert long.is_feasible and long.cost <= short.cost + 1e-9


def test_the_first_local_search_is_cut_at_the_deadline():
    """On a city with disposal trips and shifts, a time limit that has passed when the
    first local search starts stops it after one step: the plan is the construction's,
    lightly improved, still feasible, returned without iterations."""
    rng = np.random.default_rng(7)
    m = Model(streams=("residual",))
    m.add_depot(0, 0)
    for _ in range(300):
        x, y = rng.normal(0, 3000, 2)
        m.add_stop(x, y, demand=float(rng.integers(80, 121)), service_s=60)
    m.add_disposal_site(4000, 1000, accepts=[0], unload_s=600)
    m.add_disposal_site(-2000, 4000, accepts=[0], unload_s=600)
    m.add_vehicle_type(num=8, capacity=4000.0, shift_duration_s=8 * 3600,
                       speed_mps=25 / 3.6, cost_per_km=1.0)
    data = m.data()
    full = solve(data, MaxIterations(0), seed=1)
    clock = StepClock(1.0)
    cut = solve(data, MaxRuntime(1.5, clock=clock), seed=1)
    assert cut.is_feasible and cut.num_iterations == 0
    assert cut.cost > full.cost  # the descent was stopped early
    assert clock.reads <= 4  # start, and the deadline checks before it was seen


class ManualClock:
    """Advances only when told: stands for both the time limit's clock and the solver's
    own chunk timer."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_no_iteration_starts_that_would_end_after_the_limit(monkeypatch):
    """Iterations alternately 'take' 0.05 s and 0.4 s on an injected clock: the run stops
    before an iteration that might not fit, so it ends within its limit. (With 3.12 s,
    0.37 s are left after the 13th iteration, a fast one: judged by the last iteration
    alone the 14th, a slow one, would fit, and would end at 3.15 s.)"""
    clock = ManualClock()
    monkeypatch.setattr(solve_module, "time", SimpleNamespace(perf_counter=clock))
    real_chunk = solve_module.ils_chunk
    done = [0]

    def timed_chunk(*args):
        real_chunk(*args)
        for _ in range(args[10]):  # n_iter
            clock.now += 0.05 if done[0] % 2 == 0 else 0.4
            done[0] += 1

    monkeypatch.setattr(solve_module, "ils_chunk", timed_chunk)
    start = clock.now
    res = solve(plain_cvrp(1), MaxRuntime(3.12, clock=clock), seed=1)
    assert res.is_feasible and res.num_iterations == 13
    assert clock.now - start <= 3.12

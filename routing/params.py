"""Validated solver parameters, loadable from TOML (unknown keys are errors)."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class RoutingParams:
    """Tuning of the iterated local search. Defaults are what the benchmarks use.

    num_neighbours: granular neighbourhood size K (moves only create edges to the K
        nearest stops); larger is slower per pass and rarely better beyond 40.
    min_removed, max_removed: stops removed per ruin step (drawn uniformly); capped at a
        quarter of the stops on small instances.
    max_string_length: longest string cut from one route by the ruin step.
    blink_rate: probability of skipping a position during greedy insertion, which
        diversifies the repair (SISR's "blinks").
    start_temperature, end_temperature: simulated-annealing temperature at the start and
        the end of each annealing cycle, as a fraction of the first plan's driving cost
        per stop [-]; the temperature decays geometrically over the cycle.
    swap_star: also try SWAP* on neighbour pairs (each stop to its cheapest place in
        the other's route); more thorough, costs time per local-search pass.
    route_elimination: probability that a ruin step first empties a whole short route,
        so the repair must place its stops elsewhere (finds plans with fewer trucks).
    repair_probability: probability that an infeasible plan gets a local search with
        ten times the penalty weights before acceptance.
    target_feasible: share of plans after local search that should be feasible (per
        constraint family: load, time); penalty weights rise below it, fall above it.
    restart_after: iterations without a better feasible plan after which the search
        goes back to the best plan; 0 = automatic (20 per stop, at least 2,000).
    cycle_iterations: length of the first annealing cycle in iterations; each later
        cycle is twice as long and starts again from the best plan at the start
        temperature. Nothing in the search depends on the time limit (anytime): a run
        with a longer limit is the same run continued, so its best is never worse.
    """

    num_neighbours: int = 20
    min_removed: int = 5
    max_removed: int = 25
    max_string_length: int = 10
    blink_rate: float = 0.01
    start_temperature: float = 0.05
    end_temperature: float = 0.002
    swap_star: bool = True
    route_elimination: float = 0.1
    repair_probability: float = 0.5
    target_feasible: float = 0.65
    restart_after: int = 0
    cycle_iterations: int = 1000

    def __post_init__(self) -> None:
        if self.num_neighbours < 1:
            raise ValueError(
                f"num_neighbours must be >= 1, got {self.num_neighbours}; 20 is a good default"
            )
        if self.min_removed < 1:
            raise ValueError(f"min_removed must be >= 1, got {self.min_removed}")
        if self.max_removed < self.min_removed:
            raise ValueError(
                f"max_removed ({self.max_removed}) must be >= min_removed ({self.min_removed}); "
                f"raise max_removed or lower min_removed"
            )
        if self.max_string_length < 1:
            raise ValueError(f"max_string_length must be >= 1, got {self.max_string_length}")
        if not 0.0 <= self.blink_rate < 1.0:
            raise ValueError(f"blink_rate must be in [0, 1), got {self.blink_rate}; try 0.01")
        if not isinstance(self.swap_star, bool):
            raise ValueError(f"swap_star must be true or false, got {self.swap_star!r}")
        for name in ("route_elimination", "repair_probability", "target_feasible"):
            val = getattr(self, name)
            if not 0.0 <= val <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {val}")
        if self.cycle_iterations < 1:
            raise ValueError(f"cycle_iterations must be >= 1, got {self.cycle_iterations}")
        if self.restart_after < 0:
            raise ValueError(f"restart_after must be >= 0 (0 = automatic), got "
                             f"{self.restart_after}")
        if not self.start_temperature >= self.end_temperature >= 0.0:
            raise ValueError(
                f"need start_temperature >= end_temperature >= 0, got "
                f"{self.start_temperature} and {self.end_temperature}"
            )

    @classmethod
    def from_file(cls, path: str | Path) -> RoutingParams:
        """Load from a TOML file of ``key = value`` lines; an empty file gives the defaults."""
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict, source: str = "<dict>") -> RoutingParams:
        known = {f.name: f.type for f in fields(cls)}
        for key, value in raw.items():
            if key not in known:
                raise ValueError(
                    f"{source}: unknown key {key!r}; known keys are {', '.join(sorted(known))}"
                )
            kind = known[key]
            if kind == "bool":
                ok = isinstance(value, bool)
            elif kind == "int":
                ok = isinstance(value, int) and not isinstance(value, bool)
            else:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok:
                raise ValueError(f"{source}: key {key!r} must be of type {kind}, got "
                                 f"{value!r}")
        return cls(**raw)

    def to_dict(self) -> dict:
        return asdict(self)

"""Stopping criteria: tiny objects the solver asks between chunks of iterations.

Shaped like PyVRP's ``pyvrp.stop``: ``MaxRuntime`` and ``MaxIterations``, combinable
with ``FirstOf``. The clock is injectable so that time budgets can be tested
without sleeping or asserting on wall-clock time. ``start()`` is called by
``solve`` on entry, so the time limit counts everything in the call.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class MaxRuntime:
    """Stop after ``max_runtime_s`` seconds [s] measured by ``clock`` since ``start()``."""

    def __init__(self, max_runtime_s: float, clock: Callable[[], float] = time.perf_counter):
        if not max_runtime_s >= 0:
            raise ValueError(f"max_runtime_s must be >= 0, got {max_runtime_s}")
        self.max_runtime_s = float(max_runtime_s)
        self.clock = clock
        self._start: float | None = None

    def start(self) -> None:
        self._start = self.clock()

    def elapsed_s(self) -> float:
        if self._start is None:
            self.start()
        return self.clock() - self._start  # type: ignore[operator]

    def __call__(self, best_cost: float, iterations: int) -> bool:
        return self.elapsed_s() >= self.max_runtime_s

    def fraction_done(self, iterations: int) -> float:
        if self.max_runtime_s <= 0:
            return 1.0
        return min(1.0, self.elapsed_s() / self.max_runtime_s)

    def iterations_left(self, iterations: int) -> int | None:
        return None

    def seconds_left(self) -> float | None:
        return max(0.0, self.max_runtime_s - self.elapsed_s())


class MaxIterations:
    """Stop after ``max_iterations`` ruin-and-recreate iterations (deterministic)."""

    def __init__(self, max_iterations: int):
        if not max_iterations >= 0:
            raise ValueError(f"max_iterations must be >= 0, got {max_iterations}")
        self.max_iterations = int(max_iterations)

    def start(self) -> None:
        pass

    def __call__(self, best_cost: float, iterations: int) -> bool:
        return iterations >= self.max_iterations

    def fraction_done(self, iterations: int) -> float:
        return 1.0 if self.max_iterations == 0 else min(1.0, iterations / self.max_iterations)

    def iterations_left(self, iterations: int) -> int | None:
        return max(0, self.max_iterations - iterations)

    def seconds_left(self) -> float | None:
        return None


class FirstOf:
    """Stop as soon as any of the criteria says so; progress is the most advanced one."""

    def __init__(self, *criteria: MaxRuntime | MaxIterations):
        if not criteria:
            raise ValueError("FirstOf needs at least one criterion")
        self.criteria = criteria

    def start(self) -> None:
        for c in self.criteria:
            c.start()

    def __call__(self, best_cost: float, iterations: int) -> bool:
        return any(c(best_cost, iterations) for c in self.criteria)

    def fraction_done(self, iterations: int) -> float:
        return max(c.fraction_done(iterations) for c in self.criteria)

    def iterations_left(self, iterations: int) -> int | None:
        left = [x for c in self.criteria if (x := c.iterations_left(iterations)) is not None]
        return min(left) if left else None

    def seconds_left(self) -> float | None:
        left = [x for c in self.criteria if (x := c.seconds_left()) is not None]
        return min(left) if left else None


StoppingCriterion = MaxRuntime | MaxIterations | FirstOf

"""Which bins a day's plan must empty, which it may take on the way, and what that is worth.

Pure functions over arrays of bins (B,). The router decides the optional ones: it keeps an
optional stop exactly when its detour costs less than its prize (prize-collecting routing).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from routing.plan_params import SelectParams


def required_bins(p_overflow_next: ArrayLike, params: SelectParams) -> np.ndarray:
    """True where the probability of overflowing before the next opportunity exceeds
    ``max_risk``; an unknown probability (NaN: no reading) counts as a risk."""
    p = np.asarray(p_overflow_next, dtype=float)
    return np.isnan(p) | (p > params.max_risk)


def candidate_bins(level_at_service_pct: ArrayLike, required: ArrayLike,
                   params: SelectParams) -> np.ndarray:
    """Bins offered to the router as optional stops: not required, expected at least
    ``candidate_min_pct`` full at today's service."""
    lvl = np.asarray(level_at_service_pct, dtype=float)
    return ~np.asarray(required, dtype=bool) & (lvl >= params.candidate_min_pct)


def prizes(level_at_service_pct: ArrayLike, p_overflow_after: ArrayLike, ref_cost: ArrayLike,
           params: SelectParams) -> np.ndarray:
    """Value of emptying a bin today [cost units]: the typical cost of reaching a stop
    (``ref_cost``) times ``prize_scale`` x (expected fill)^2 plus ``risk_prize`` x the
    probability of overflowing before the opportunity after the next. A full bin saves a
    later trip; an emptier one mostly costs an emptying sooner than needed."""
    lvl = np.clip(np.asarray(level_at_service_pct, dtype=float), 0.0, 100.0) / 100.0
    p2 = np.nan_to_num(np.asarray(p_overflow_after, dtype=float), nan=1.0)
    return np.asarray(ref_cost, dtype=float) * (params.prize_scale * lvl**2
                                                + params.risk_prize * p2)

"""Which bins a day's plan must empty, which it may take on the way, and what that is worth;
and whether a stream makes a trip today at all.

Pure functions over arrays of bins (B,). The router decides the optional ones: it keeps an
optional stop exactly when its detour costs less than its prize (prize-collecting routing).

Trips: streams that share trucks form a group (:func:`stream_groups`); a group makes a trip
only when one of its bins would overflow before the next working day with more than
``trip_risk`` probability (:func:`opened`), and a trip looks ahead (:func:`lookahead_days`):
its bins' next opportunity is that many working days away, so the bins at risk before then
are required today and the days in between need no trip. A bin certain to overflow always
makes its trip. The caller computes the overflow probabilities against those dates.
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




def stream_groups(capacity_l: ArrayLike) -> np.ndarray:
    """Group of each stream (S,): streams linked by a truck that carries both (compartments
    of one truck, transitively) share a group, because one truck-day serves them all."""
    cap = np.asarray(capacity_l, dtype=float) > 0  # (V, S)
    n = cap.shape[1]
    group = np.arange(n)
    changed = True
    while changed:
        changed = False
        for row in cap:
            idx = np.flatnonzero(row)
            if idx.size > 1:
                low = group[idx].min()
                for g in np.unique(group[idx]):
                    if g != low:
                        group[group == g] = low
                        changed = True
    _, out = np.unique(group, return_inverse=True)
    return out.astype(np.int64)


def lookahead_days(rate_pct_day: ArrayLike, stream: ArrayLike, group: ArrayLike,
                   params: SelectParams) -> np.ndarray:
    """How many working days ahead a trip of each stream looks (S,).

    A trip of a group of streams (:func:`stream_groups`) goes when a bin of the group must go;
    it then takes the bins that would be at risk before its look-ahead, so that the next
    days need no trip. A group's look-ahead is the shortest of ``lookahead_options`` that
    gathers ``trip_min_stops`` expected emptyings (the group's bins fill by their rates and
    are emptied at about ``candidate_min_pct``; a working day counts 7/5 days); a stream's is
    at most the longest over which its median bin fills ``lookahead_loss_pct`` or less (the
    cost of emptying early). NaN rates are left out; ``trip_min_stops`` 0: one day."""
    rate = np.asarray(rate_pct_day, dtype=float)
    st = np.asarray(stream, dtype=np.int64)
    grp = np.asarray(group, dtype=np.int64)
    opts = sorted(params.lookahead_options)
    ok = np.isfinite(rate)
    per_day = np.bincount(st[ok], rate[ok], minlength=len(grp)) * 7 / 5 \
        / max(params.candidate_min_pct, 1.0)
    group_day = np.bincount(grp, per_day[: len(grp)])
    out = np.full(len(grp), opts[0], np.int64)
    for s in range(len(grp)):
        need = [k for k in opts if group_day[grp[s]] * k >= params.trip_min_stops]
        k_trip = need[0] if need else opts[-1]
        r = rate[(st == s) & ok]
        med = float(np.median(r)) if r.size else np.inf
        fits = [k for k in opts if med * 7 / 5 * k <= params.lookahead_loss_pct]
        out[s] = min(k_trip, fits[-1] if fits else opts[0])
    return out


def opened(must_go: ArrayLike, stream: ArrayLike, group: ArrayLike) -> np.ndarray:
    """Bins (B,) of a stream whose group has a bin that must go today: a truck goes, so
    their next opportunity is their stream's look-ahead away, not the next working day."""
    st = np.asarray(stream, dtype=np.int64)
    grp = np.asarray(group, dtype=np.int64)
    hit = np.zeros(int(grp.max(initial=0)) + 1, bool)
    hit[grp[st[np.asarray(must_go, dtype=bool)]]] = True
    return hit[grp[st]]


def opportunities(p_overflow_next_workday: ArrayLike, stream: ArrayLike, group: ArrayLike,
                  lookahead: ArrayLike, params: SelectParams
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin (B,): whether its group of streams makes a trip today, and how many working
    days away its next opportunity and the one after are (1 = the next working day).

    A group makes a trip when one of its bins would overflow before the next working day with
    more than ``trip_risk`` probability, or has no forecast (NaN). The bins of a group on a
    trip have their next opportunity ``lookahead`` (B,) working days away; the others the
    next working day. The caller turns the counts into dates and judges each bin's risk
    against them (:func:`required_bins`)."""
    p = np.asarray(p_overflow_next_workday, dtype=float)
    look = np.asarray(lookahead, dtype=np.int64)
    trip = opened(np.isnan(p) | (p > params.trip_risk), stream, group)
    k = np.where(trip, look, 1)
    return trip, k, k + look

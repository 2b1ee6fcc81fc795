"""Fill forecasts from raw sensor readings: clean, find emptyings, estimate rates, look ahead.

Pure numpy/scipy over arrays of all bins at once; no I/O. Readings come as flat arrays
(``bin_index``, ``t_s`` [s UTC], ``fill_pct`` [%], ``emptied``, ``flagged``), in any order.

The steps (``docs/forecast.md`` explains each):

1. **Clean** each reading: values outside ``[valid_min_pct, valid_max_pct]`` are error codes;
   tilt-flagged readings are dropped; a fixed false echo (one level holding many readings that
   jump away from their neighbours in time) is found per bin and dropped.
2. **Hourly grid** (bins x hours): the median reading of each hour; then spikes (far from the
   running median of 5 hours) and stuck stretches (one exact level repeated for ``stuck_h``)
   are removed, and a centred running median of 5 hours smooths the rest.
3. **Emptyings**: a fall of the 6-hour median by ``emptying_drop_pct`` (a local peak, at most
   one a day), plus every hour holding a reading flagged ``emptied``.
4. **Pattern**: people fill bins by local weekday and hour. The mean hourly increment inside
   fill cycles, pooled over all bins, per local weekday and per local hour, each factor
   shrunk towards 1 by its own standard error (James-Stein), gives an *effective clock*: one
   effective day passes in an average day; fill rates are per effective day.
5. **Rates**: per fill cycle, the least-squares slope of the smoothed level on the effective
   clock. A bin's completed cycles give its history (log-normal); bins with little history
   borrow from the finest pool (site, area, stream: whatever groups the caller gives) that has
   ``min_pool_bins`` bins with history, by normal-normal shrinkage in log space with the
   between- and within-bin spreads estimated from the data. The current cycle's own slope
   then updates that prior with a variance that counts the sensor noise and the randomness
   of deposits (compound Poisson: variance grows with the rate).
6. **Outputs** (:class:`BinForecast`): the expected level at any time ahead, its band, the
   time until a threshold (the expected level's crossing; and the median first passage of the
   cycles that reach it before the bin's next emptying, drawn from its past cycle lengths),
   and the probability of overflowing before a time (the rate as a moment-matched
   log-normal, so the upper tail is not understated).

Units are in the names: ``_pct`` [%], ``_s`` [s], ``_day`` per effective day, ``_h`` [h].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import maximum_filter1d
from scipy.special import ndtr, ndtri

from routing.plan_params import ForecastParams

HOUR_S = 3600
DAY_S = 86400
WEEK_S = 7 * DAY_S
_SMOOTH = 5  # hours of the running medians
_DROP_WIN = 6  # hours either side of an emptying compared
_QUIET_H = 3  # hours after an emptying whose increments are not used (smoothing spans it)


# ----------------------------------------------------------------------------------------
# time
# ----------------------------------------------------------------------------------------
def _eu_dst(t_s: NDArray[np.float64]) -> NDArray[np.bool_]:
    """True where EU summer time is in force (last Sunday of March to last Sunday of
    October, 01:00 UTC)."""
    year = t_s.astype("datetime64[s]").astype("datetime64[Y]")
    month = year.astype("datetime64[M]")
    mar31 = ((month + 2).astype("datetime64[D]") + 30).astype(np.int64)
    oct31 = ((month + 9).astype("datetime64[D]") + 30).astype(np.int64)
    # day numbers: 1970-01-01 was a Thursday, so Monday = 0 is (d + 3) % 7; Sunday is 6
    start = (mar31 - (mar31 + 4) % 7) * DAY_S + HOUR_S
    end = (oct31 - (oct31 + 4) % 7) * DAY_S + HOUR_S
    return (t_s >= start) & (t_s < end)


def local_seconds(t_s: ArrayLike, utc_offset_h: float = 1.0, eu_dst: bool = True) -> np.ndarray:
    """Local wall-clock seconds since the epoch for UTC seconds ``t_s`` [s]."""
    t = np.asarray(t_s, dtype=np.float64)
    off = utc_offset_h * HOUR_S + (np.where(_eu_dst(np.floor(t)), HOUR_S, 0) if eu_dst else 0)
    return t + off


@dataclass(frozen=True)
class Pattern:
    """Relative fill intensity by local weekday (Monday first) and local hour, mean 1 each.

    ``effective_days(t)`` is a monotone clock: one unit per average day; a busy Saturday
    counts more than a quiet Sunday.
    """

    weekday: NDArray[np.float64]
    hour: NDArray[np.float64]
    utc_offset_h: float = 1.0
    eu_dst: bool = True

    @classmethod
    def flat(cls, utc_offset_h: float = 1.0, eu_dst: bool = True) -> Pattern:
        return cls(np.ones(7), np.ones(24), utc_offset_h, eu_dst)

    @property
    def _week(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        f = np.maximum((self.weekday[:, None] * self.hour[None, :]).reshape(-1), 1e-3)
        cum = np.concatenate([[0.0], np.cumsum(f / 24.0)])
        return f, cum

    def factor(self, t_s: ArrayLike) -> np.ndarray:
        """Intensity at ``t_s`` relative to the average [-]."""
        loc = local_seconds(t_s, self.utc_offset_h, self.eu_dst)
        how = ((loc % WEEK_S) // HOUR_S).astype(np.int64)
        # day 0 (1970-01-01) was a Thursday: shift so that index 0 is Monday 00:00
        how = (how + 72) % 168
        return self._week[0][how]

    def effective_days(self, t_s: ArrayLike) -> np.ndarray:
        """Effective days since the epoch at ``t_s`` [effective d]."""
        f, cum = self._week
        loc = local_seconds(t_s, self.utc_offset_h, self.eu_dst) + 3 * DAY_S  # Monday-based
        w = np.floor(loc / WEEK_S)
        r = loc - w * WEEK_S
        hw = np.minimum((r // HOUR_S).astype(np.int64), 167)
        frac = (r - hw * HOUR_S) / HOUR_S
        return w * cum[168] + cum[hw] + frac * f[hw] / 24.0

    def time_at(self, effective_days: ArrayLike) -> np.ndarray:
        """The UTC time [s] at which the effective clock reads ``effective_days`` (inverse)."""
        f, cum = self._week
        e = np.asarray(effective_days, dtype=np.float64)
        w = np.floor(e / cum[168])
        rem = e - w * cum[168]
        hw = np.clip(np.searchsorted(cum, rem, side="right") - 1, 0, 167)
        frac = np.clip((rem - cum[hw]) / (f[hw] / 24.0), 0.0, 1.0)
        loc = w * WEEK_S + (hw + frac) * HOUR_S - 3 * DAY_S
        guess = loc - self.utc_offset_h * HOUR_S
        if self.eu_dst:
            guess = guess - np.where(_eu_dst(np.floor(guess)), HOUR_S, 0)
        return guess


# ----------------------------------------------------------------------------------------
# pvlib-style elementary functions (scalar, list or array in; array out; NaN propagates)
# ----------------------------------------------------------------------------------------
def expected_level_pct(
    level_pct: ArrayLike, rate_pct_day: ArrayLike, effective_days: ArrayLike
) -> np.ndarray:
    """Expected level [%] after ``effective_days`` [effective d] at ``rate_pct_day``."""
    return (np.asarray(level_pct, dtype=float)
            + np.asarray(rate_pct_day, dtype=float) * np.asarray(effective_days, dtype=float))


def days_to_level(
    level_pct: ArrayLike, rate_pct_day: ArrayLike, threshold_pct: ArrayLike = 80.0
) -> np.ndarray:
    """Effective days until the expected level reaches ``threshold_pct``; 0 when it already
    has, ``inf`` when the rate is 0 [effective d]."""
    lvl = np.asarray(level_pct, dtype=float)
    rate = np.asarray(rate_pct_day, dtype=float)
    gap = np.maximum(np.asarray(threshold_pct, dtype=float) - lvl, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(gap <= 0, 0.0, gap / rate)
    return np.where(np.isnan(lvl) | np.isnan(rate), np.nan, out)


def overflow_probability(
    level_pct: ArrayLike,
    rate_pct_day: ArrayLike,
    effective_days: ArrayLike,
    rate_sd_pct_day: ArrayLike = 0.0,
    level_sd_pct: ArrayLike = 0.0,
    dispersion_pct: ArrayLike = 0.0,
    threshold_pct: ArrayLike = 100.0,
) -> np.ndarray:
    """Probability [-] that the level reaches ``threshold_pct`` within ``effective_days``.

    The fill added is ``R * d`` with ``R`` log-normal (mean ``rate_pct_day``, sd
    ``rate_sd_pct_day``), widened by the level's own uncertainty and the deposit noise
    (variance ``dispersion_pct * rate * d``, compound Poisson). Levels only rise until an
    emptying, so reaching the threshold by ``d`` is the level at ``d`` being above it.
    """
    lvl = np.asarray(level_pct, dtype=float)
    r = np.maximum(np.asarray(rate_pct_day, dtype=float), 1e-9)
    d = np.maximum(np.asarray(effective_days, dtype=float), 0.0)
    added_mean = r * d
    added_var = (np.asarray(rate_sd_pct_day, dtype=float) * d) ** 2 + (
        np.asarray(level_sd_pct, dtype=float) ** 2
        + np.asarray(dispersion_pct, dtype=float) * added_mean
    )
    need = np.asarray(threshold_pct, dtype=float) - lvl
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = np.log1p(added_var / np.maximum(added_mean, 1e-12) ** 2)
        mu = np.log(np.maximum(added_mean, 1e-12)) - 0.5 * s2
        z = (np.log(np.maximum(need, 1e-12)) - mu) / np.sqrt(np.maximum(s2, 1e-18))
    p = np.where(need <= 0, 1.0, 1.0 - ndtr(z))
    p = np.where(d <= 0, (need <= 0).astype(float), p)
    return np.where(np.isnan(lvl) | np.isnan(r) | np.isnan(d), np.nan, p)


def emptying_survival(age_s: ArrayLike, cycle_s: ArrayLike, ahead_s: ArrayLike) -> np.ndarray:
    """Probability [-] that a bin is not emptied within ``ahead_s`` [s] from now, given that
    its current cycle is ``age_s`` [s] old, from the lengths ``cycle_s`` [s] of its past
    cycles (one row per bin, NaN-padded).

    The empirical survival of the cycle lengths, conditioned on the current cycle's age
    (renewal from the last emptying), with half a pseudo-cycle that never ends, so a bin can
    always be kept longer than it ever was: ``(#{L > age + u} + 1/2) / (#{L > age} + 1/2)``.
    A bin with no past cycle, or an unknown age (NaN), is never emptied (1).
    Shapes: ``age_s`` (B,), ``cycle_s`` (B, K), ``ahead_s`` (U,) -> (B, U).
    """
    age = np.atleast_1d(np.asarray(age_s, dtype=float))
    cyc = np.asarray(cycle_s, dtype=float).reshape(age.size, -1)
    u = np.atleast_1d(np.asarray(ahead_s, dtype=float))
    known = np.isfinite(cyc)
    n = known.sum(axis=1)
    a = np.where(np.isfinite(age), age, 0.0)
    # count the cycles longer than x per bin by one sorted search over all bins: each row is
    # shifted by its index times a span wider than any length or query, NaN sorts last
    span = 4.0 * (np.nanmax(np.abs(cyc), initial=0.0) + np.abs(a).max(initial=0.0)
                  + np.abs(u).max(initial=0.0) + 1.0)
    off = np.arange(age.size, dtype=float)[:, None] * span
    keys = np.sort(np.where(known, cyc, span / 2) + off, axis=None)

    def longer(x: np.ndarray) -> np.ndarray:  # x (B, m): cycles longer than x, per bin
        below = np.searchsorted(keys, x + off, side="right") - np.arange(age.size)[:, None] \
            * cyc.shape[1]
        return n[:, None] - np.minimum(below, n[:, None])

    alive = longer(a[:, None])[:, 0] + 0.5  # (B,)
    later = longer(a[:, None] + u[None, :]) + 0.5  # (B, U)
    out = np.minimum(later / alive[:, None], 1.0)
    return np.where(((n > 0) & np.isfinite(age))[:, None], out, 1.0)


def median_first_passage_s(
    ahead_s: ArrayLike, p_reached: ArrayLike, survival: ArrayLike | None = None
) -> np.ndarray:
    """The median time [s ahead] at which a level first reaches a threshold, given that it
    does so before the bin's next emptying and within the last of ``ahead_s``.

    ``p_reached`` (B, U): probability that the threshold is reached by each of ``ahead_s``
    (U,) (increasing, the first may be 0), i.e. the distribution function of the first
    passage time; ``survival`` (B, U): probability that the bin is not emptied by then
    (:func:`emptying_survival`; None: never). A bin emptied at a time independent of its
    level counts a first passage at ``u`` only if it is still there, so the passage times of
    the cycles that reach the threshold are distributed as ``dF(u) S(u)`` normalised; its
    median is linearly interpolated on the grid. 0 where the threshold is already reached,
    ``inf`` where it is not reached within the grid, NaN where ``p_reached`` is NaN.
    """
    u = np.asarray(ahead_s, dtype=float)
    f = np.atleast_2d(np.asarray(p_reached, dtype=float))
    nan = np.isnan(f).any(axis=1)
    f = np.maximum.accumulate(np.nan_to_num(f), axis=1)  # a distribution function
    s = np.ones_like(f) if survival is None else np.broadcast_to(survival, f.shape)
    s_mid = np.concatenate([s[:, :1], 0.5 * (s[:, 1:] + s[:, :-1])], axis=1)  # per step
    dens = np.diff(f, axis=1, prepend=0.0) * s_mid
    cw = np.cumsum(dens, axis=1)
    total = cw[:, -1]
    k = np.argmax(cw >= 0.5 * total[:, None], axis=1)
    rows = np.arange(f.shape[0])
    prev_cw = np.where(k > 0, cw[rows, np.maximum(k - 1, 0)], 0.0)
    prev_u = np.where(k > 0, u[np.maximum(k - 1, 0)], u[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip((0.5 * total - prev_cw) / dens[rows, k], 0.0, 1.0)
    out = prev_u + np.nan_to_num(frac) * (u[k] - prev_u)
    out = np.where(f[:, 0] >= 1.0, 0.0, out)
    out = np.where(total > 0, out, np.inf)
    return np.where(nan, np.nan, out)


# ----------------------------------------------------------------------------------------
# cleaning and the hourly grid
# ----------------------------------------------------------------------------------------
def _group_median(keys: NDArray[np.int64], values: NDArray[np.float64], size: int) -> np.ndarray:
    out = np.full(size, np.nan)
    if keys.size == 0:
        return out
    order = np.lexsort((values, keys))
    k, v = keys[order], values[order]
    counts = np.bincount(k, minlength=size)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    out[has] = 0.5 * (v[lo] + v[hi])
    return out


def _window_median(cols: list[np.ndarray]) -> np.ndarray:
    """NaN-aware median across equally shaped arrays (NaN where all are NaN).

    NaN becomes +inf, the stack is sorted by odd-even transposition (k rounds of
    element-wise min/max, fast for the k <= 6 used here), and the median is taken among the
    valid values only."""
    k = len(cols)
    n = sum((~np.isnan(c)).astype(np.int64) for c in cols)
    st = [np.where(np.isnan(c), np.inf, c) for c in cols]
    for r in range(k):
        for i in range(r % 2, k - 1, 2):
            a, b = st[i], st[i + 1]
            st[i], st[i + 1] = np.minimum(a, b), np.maximum(a, b)
    stack = np.stack(st)
    lo = np.clip((n - 1) // 2, 0, k - 1)
    hi = np.clip(n // 2, 0, k - 1)
    m = 0.5 * (np.take_along_axis(stack, lo[None], 0)[0]
               + np.take_along_axis(stack, hi[None], 0)[0])
    return np.where(n > 0, m, np.nan)


def _shifted(g: np.ndarray, s: int) -> np.ndarray:
    """``out[:, h] = g[:, h - s]`` (NaN outside)."""
    out = np.full_like(g, np.nan)
    if s >= 0:
        out[:, s:] = g[:, : g.shape[1] - s]
    else:
        out[:, :s] = g[:, -s:]
    return out


def _running_median(g: NDArray[np.float64], k: int) -> np.ndarray:
    """Centred running median along axis 1 over ``k`` cells, NaN-aware (NaN if all NaN)."""
    pad = k // 2
    return _window_median([_shifted(g, s) for s in range(-(k - 1 - pad), pad + 1)])


def ghost_levels(
    bin_index: NDArray[np.int64], fill_pct: NDArray[np.float64], n_bins: int,
    params: ForecastParams,
) -> np.ndarray:
    """Per bin, the level [%] of a fixed false echo, NaN where there is none.

    Readings must be sorted by bin, then time. A candidate is the most common 1-% level (with
    its two neighbours) holding at least ``ghost_min_share`` of the bin's readings; it is a
    ghost when most changes between it and other levels are jumps of 5 % or more (a real
    plateau, or the empty level after emptyings, changes by the noise only).
    """
    out = np.full(n_bins, np.nan)
    if fill_pct.size == 0:
        return out
    q = np.clip(np.round(fill_pct).astype(np.int64) + 20, 0, 199)
    counts = np.zeros((n_bins, 200))
    np.add.at(counts, (bin_index, q), 1.0)
    mass = counts + np.roll(counts, 1, axis=1) + np.roll(counts, -1, axis=1)
    j = np.argmax(mass, axis=1)
    total = counts.sum(axis=1)
    share = mass[np.arange(n_bins), j] / np.maximum(total, 1)
    cand = np.abs(q - j[bin_index]) <= 1
    # runs of candidate readings; a ghost run is an excursion: the readings before and after
    # it are both 5 % or more away, on the same side (a plateau after an emptying is not)
    same = np.concatenate([[False], bin_index[1:] == bin_index[:-1]])
    start = cand & ~(same & np.roll(cand, 1))
    nxt_same = np.concatenate([bin_index[1:] == bin_index[:-1], [False]])
    end = cand & ~(nxt_same & np.roll(cand, -1))
    starts, ends = np.flatnonzero(start), np.flatnonzero(end)
    g = j[bin_index[starts]] - 20.0
    has_prev = same[starts]
    has_next = nxt_same[ends]
    prev = fill_pct[np.maximum(starts - 1, 0)] - g
    nxt = fill_pct[np.minimum(ends + 1, fill_pct.size - 1)] - g
    exc = has_prev & has_next & (prev * nxt > 0) & (np.abs(prev) >= 5) & (np.abs(nxt) >= 5)
    n_run = np.bincount(bin_index[starts], minlength=n_bins)
    n_exc = np.bincount(bin_index[starts][exc], minlength=n_bins)
    is_ghost = (share >= params.ghost_min_share) & (n_run >= 4) & (n_exc >= 0.5 * n_run)
    out[is_ghost] = j[is_ghost] - 20.0
    return out


@dataclass(frozen=True)
class Grid:
    """Hourly view of all bins: hour ``h`` covers ``[t0_s + h*3600, t0_s + (h+1)*3600)``."""

    t0_s: float
    raw: NDArray[np.float64]  #: hourly medians of clean readings, spikes and stuck removed
    smooth: NDArray[np.float64]  #: centred 5-hour running median of ``raw``
    emptied: NDArray[np.bool_]  #: an emptying happened in this hour
    ghost_pct: NDArray[np.float64]  #: per bin, the false echo found (NaN = none)

    @property
    def hour_mid_s(self) -> np.ndarray:
        return self.t0_s + (np.arange(self.raw.shape[1]) + 0.5) * HOUR_S


def build_grid(
    bin_index: ArrayLike,
    t_s: ArrayLike,
    fill_pct: ArrayLike,
    n_bins: int,
    at_s: float,
    params: ForecastParams,
    emptied: ArrayLike | None = None,
    flagged: ArrayLike | None = None,
) -> Grid:
    """Clean the readings up to ``at_s`` and lay them on an hourly grid (steps 1-3)."""
    b = np.asarray(bin_index, dtype=np.int64)
    t = np.asarray(t_s, dtype=np.float64)
    v = np.asarray(fill_pct, dtype=np.float64)
    e = np.zeros(b.shape, bool) if emptied is None else np.asarray(emptied, dtype=bool)
    fl = np.zeros(b.shape, bool) if flagged is None else np.asarray(flagged, dtype=bool)
    hours = max(1, int(np.ceil(params.history_days * 24)))
    h_end = int(np.floor(at_s / HOUR_S)) + 1  # the hour holding at_s is the last column
    t0 = float((h_end - hours) * HOUR_S)
    sel = (t <= at_s) & (t >= t0)
    b, t, v, e, fl = b[sel], t[sel], v[sel], e[sel], fl[sel]
    order = np.lexsort((t, b))
    b, t, v, e, fl = b[order], t[order], v[order], e[order], fl[order]
    ok = np.isfinite(v) & (v >= params.valid_min_pct) & (v <= params.valid_max_pct) & ~fl
    ghost = ghost_levels(b[ok], v[ok], n_bins, params)
    g_b = ghost[b]
    ok &= ~(np.abs(v - g_b) <= 1.5)
    h = ((t - t0) // HOUR_S).astype(np.int64)
    raw = _group_median(b[ok] * hours + h[ok], v[ok], n_bins * hours).reshape(n_bins, hours)
    emp = np.zeros(n_bins * hours, bool)
    emp[b[e] * hours + h[e]] = True
    emp = emp.reshape(n_bins, hours)
    # stuck: an exact level repeated over stuck_h hours (keep the first hour of the run)
    run_h = max(2, round(params.stuck_h))
    same = np.zeros_like(raw, dtype=bool)
    same[:, 1:] = raw[:, 1:] == raw[:, :-1]
    starts = ~same
    run_id = np.cumsum(starts, axis=1)
    flat_id = (np.arange(n_bins)[:, None] * (hours + 1) + run_id).reshape(-1)
    run_len = np.bincount(flat_id, minlength=n_bins * (hours + 1))[flat_id].reshape(raw.shape)
    raw = np.where(same & (run_len >= run_h) & np.isfinite(raw), np.nan, raw)
    # spikes: far from the running median of their 5 hours
    med = _running_median(raw, _SMOOTH)
    # ... except the hour before a logged emptying: a deposit then the truck is no spike
    before_log = np.zeros_like(emp)
    before_log[:, :-1] = emp[:, 1:]
    raw = np.where((np.abs(raw - med) > params.spike_pct) & ~before_log, np.nan, raw)
    smooth = _running_median(raw, _SMOOTH)
    emp |= _detect_drops(raw, params.emptying_drop_pct)
    return Grid(t0, raw, smooth, emp, ghost)


def _detect_drops(smooth: NDArray[np.float64], drop_pct: float) -> np.ndarray:
    """Hours where the median of this and the next 5 hours lies ``drop_pct`` below that of the
    last 6, and this hour's own level has fallen by half of that (the first low hour); the
    largest fall within a day is kept."""
    n_bins = smooth.shape[0]
    k = _DROP_WIN
    before = _trailing_median(smooth, k)  # hours h-k .. h-1
    # median of hours h+1 .. h+k, then shifted by one: hours h .. h+k-1
    nxt = _trailing_median(smooth[:, ::-1], k)[:, ::-1]
    after = np.concatenate([np.full((n_bins, 1), np.nan), nxt[:, :-1]], axis=1)
    first = np.where(np.isnan(smooth), after, smooth)
    prev = np.concatenate([np.full((n_bins, 1), np.nan), smooth[:, :-1]], axis=1)
    # this hour is low and the hour before is not: the first low hour
    low = (first <= before - drop_pct / 2) & ~(prev <= before - drop_pct / 2)
    d = np.where(low, before - after, np.nan)
    d = np.where(np.isfinite(d), d, -np.inf)
    peak = d >= drop_pct
    # local maximum within +-12 hours
    win_max = maximum_filter1d(d, size=25, axis=1, mode="constant", cval=-np.inf)
    peak &= d >= win_max
    # ties: keep the first hour of a plateau of equal maxima
    prev = np.concatenate([np.zeros((n_bins, 1), bool), peak[:, :-1]], axis=1)
    return peak & ~prev


def _trailing_median(g: NDArray[np.float64], k: int) -> np.ndarray:
    """Median of the ``k`` cells before each cell (exclusive), NaN-aware."""
    return _window_median([_shifted(g, s) for s in range(1, k + 1)])


def detect_emptyings(
    t_s: ArrayLike, fill_pct: ArrayLike, params: ForecastParams | None = None
) -> np.ndarray:
    """UTC start times [s] of the hours in which one bin's series was emptied."""
    params = params or ForecastParams()
    t = np.asarray(t_s, dtype=float)
    if t.size == 0:
        return np.zeros(0)
    p = ForecastParams(**{**params.to_dict(),
                          "history_days": (t.max() - t.min()) / DAY_S + 1.0 / 24 + 1e-6})
    g = build_grid(np.zeros(t.size, np.int64), t, fill_pct, 1, float(t.max()), p)
    return g.t0_s + np.flatnonzero(g.emptied[0]) * HOUR_S


# ----------------------------------------------------------------------------------------
# pattern, rates, forecast
# ----------------------------------------------------------------------------------------
def _cycles(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Cycle number per cell (0 = before the first emptying seen) and the hours since the
    cycle started (large for cycle 0)."""
    cyc = np.cumsum(grid.emptied, axis=1)
    hours = grid.raw.shape[1]
    idx = np.broadcast_to(np.arange(hours), grid.raw.shape)
    last_e = np.maximum.accumulate(np.where(grid.emptied, idx, -10_000), axis=1)
    return cyc, idx - last_e


def _hours_to_next_emptying(emptied: np.ndarray) -> np.ndarray:
    """Hours from each cell to the next emptying of its bin (large when none follows)."""
    hours = emptied.shape[1]
    idx = np.broadcast_to(np.arange(hours), emptied.shape)
    nxt = np.minimum.accumulate(np.where(emptied, idx, hours + 10_000)[:, ::-1], axis=1)[:, ::-1]
    return nxt - idx


def _shrink_factors(sums: np.ndarray, sq: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Class means relative to the overall mean, each shrunk towards 1 by its standard error."""
    total = sums.sum() / max(n.sum(), 1)
    if not total > 0:
        return np.ones_like(sums)
    mean = np.where(n > 0, sums / np.maximum(n, 1), total)
    var = np.where(n > 1, sq / np.maximum(n, 1) - mean**2, np.inf)
    se = np.sqrt(np.maximum(var, 0) * _SMOOTH / np.maximum(n, 1)) / total  # autocorrelated
    f = mean / total
    dev2 = (f - 1.0) ** 2
    keep = np.where(dev2 > 0, np.clip(1.0 - se**2 / np.maximum(dev2, 1e-12), 0.0, 1.0), 0.0)
    f = 1.0 + (f - 1.0) * keep
    f = np.maximum(f, 0.05)
    return f / f.mean()


def fit_pattern(grid: Grid, params: ForecastParams) -> Pattern:
    """Weekday and hour factors from the hourly increments inside fill cycles (pooled)."""
    s = grid.smooth
    cyc, since = _cycles(grid)
    inc = s[:, 1:] - s[:, :-1]
    ok = np.isfinite(inc) & (cyc[:, 1:] == cyc[:, :-1]) & (since[:, 1:] > _QUIET_H)
    ok &= np.abs(inc) < params.spike_pct
    mid = grid.t0_s + (np.arange(1, s.shape[1]) * HOUR_S)  # boundary between hours
    loc = local_seconds(mid - HOUR_S / 2, params.utc_offset_h, params.eu_dst) + 3 * DAY_S
    wd = ((loc // DAY_S) % 7).astype(np.int64)
    hr = ((loc % DAY_S) // HOUR_S).astype(np.int64)
    x = inc[ok]
    col = np.broadcast_to(np.arange(s.shape[1] - 1), inc.shape)[ok]
    if x.size < 100:
        return Pattern.flat(params.utc_offset_h, params.eu_dst)

    def by(cls: np.ndarray, k: int) -> np.ndarray:
        c = cls[col]
        return _shrink_factors(np.bincount(c, x, k), np.bincount(c, x * x, k),
                               np.bincount(c, minlength=k).astype(float))

    return Pattern(by(wd, 7), by(hr, 24), params.utc_offset_h, params.eu_dst)


@dataclass(frozen=True)
class BinForecast:
    """The state of every bin at ``t_s`` and what follows from it. Arrays of length B.

    level_pct: expected current level [%] (NaN: no reading ever seen).
    level_sd_pct: its uncertainty [%].
    rate_pct_day: expected fill rate of the current cycle [% per effective day].
    rate_sd_pct_day: its uncertainty [% per effective day].
    dispersion_pct: deposit noise: variance of the added fill per % added [%].
    last_emptied_s: last emptying seen [s UTC] (NaN: none in the history).
    cycle_s: (B, K) lengths of the bin's completed fill cycles seen in the history [s],
        NaN-padded (None: not known); only :meth:`time_to_level_in_cycle_s` uses them.
    """

    t_s: float
    level_pct: NDArray[np.float64]
    level_sd_pct: NDArray[np.float64]
    rate_pct_day: NDArray[np.float64]
    rate_sd_pct_day: NDArray[np.float64]
    dispersion_pct: NDArray[np.float64]
    last_emptied_s: NDArray[np.float64]
    pattern: Pattern
    band: float = 0.8
    cycle_s: NDArray[np.float64] | None = None

    def _days(self, at_s: ArrayLike) -> np.ndarray:
        at = np.asarray(at_s, dtype=float)
        return np.maximum(self.pattern.effective_days(at) - self.pattern.effective_days(self.t_s),
                          0.0)

    def expected_level_pct(self, at_s: ArrayLike) -> np.ndarray:
        """Expected level [%] of every bin at ``at_s`` (scalar: shape (B,); (H,): (B, H))."""
        d = self._days(at_s)
        return expected_level_pct(self.level_pct[:, None], self.rate_pct_day[:, None],
                                  np.atleast_1d(d)[None, :]).reshape(self.level_pct.shape
                                                                     + np.shape(d))

    def level_band_pct(self, at_s: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper edge of the central ``band`` of the level at ``at_s`` [%]."""
        d = np.atleast_1d(self._days(at_s))[None, :]
        mean = expected_level_pct(self.level_pct[:, None], self.rate_pct_day[:, None], d)
        sd = np.sqrt(self.level_sd_pct[:, None] ** 2 + (self.rate_sd_pct_day[:, None] * d) ** 2
                     + self.dispersion_pct[:, None] * self.rate_pct_day[:, None] * d)
        z = float(ndtri(0.5 + self.band / 2))
        shape = self.level_pct.shape + np.shape(at_s)
        return (mean - z * sd).reshape(shape), (mean + z * sd).reshape(shape)

    def time_to_level_s(self, threshold_pct: float = 80.0) -> np.ndarray:
        """When each bin's expected level reaches ``threshold_pct`` [s UTC]; ``t_s`` when it
        already has, ``inf`` when it never will.

        This is the crossing of the expected level, with no emptying in between ("if left
        alone"); :meth:`time_to_level_in_cycle_s` is the median first passage of the cycles
        that do reach the threshold before the bin is emptied."""
        d = days_to_level(self.level_pct, self.rate_pct_day, threshold_pct)
        e0 = self.pattern.effective_days(self.t_s)
        out = np.full(d.shape, np.inf)
        fin = np.isfinite(d)
        out[fin] = np.maximum(self.pattern.time_at(e0 + d[fin]), self.t_s)
        return np.where(np.isnan(d), np.nan, out)

    def overflow_probability(self, until_s: ArrayLike, threshold_pct: float = 100.0
                             ) -> np.ndarray:
        """Probability [-] that each bin reaches ``threshold_pct`` before ``until_s``
        (scalar or one time per bin)."""
        d = self._days(until_s)
        return overflow_probability(self.level_pct, self.rate_pct_day, d, self.rate_sd_pct_day,
                                    self.level_sd_pct, self.dispersion_pct, threshold_pct)

    def time_to_level_in_cycle_s(self, threshold_pct: float = 80.0,
                                 horizon_s: float = 28 * DAY_S, step_s: float = HOUR_S
                                 ) -> np.ndarray:
        """The median time [s UTC] at which each bin's level first reaches ``threshold_pct``,
        given that it does so within ``horizon_s`` and before the bin's next emptying.

        The first-passage distribution is the one :meth:`overflow_probability` gives (levels
        only rise within a cycle, so the level has reached the threshold by ``t`` exactly
        when it is above it at ``t``); the next emptying is drawn from the bin's own past
        cycle lengths (:func:`emptying_survival`, independent of the level: a collection
        schedule). This is what "the time until the level first reaches 80 %" means when it
        is only observed in the cycles that get there before the truck comes: the slow
        outcomes are the ones a schedule cuts off, so the median of the outcomes that are
        seen is earlier than the median if left alone. Without past cycles it is the plain
        median first passage. ``t_s`` when already there, ``inf`` when not reached within
        ``horizon_s``, NaN without a level. Not used by the plan (it uses
        :meth:`overflow_probability` directly).
        """
        ahead = np.arange(0.0, horizon_s + step_s / 2, step_s)
        d = self._days(self.t_s + ahead)[None, :]
        p = overflow_probability(self.level_pct[:, None], self.rate_pct_day[:, None], d,
                                 self.rate_sd_pct_day[:, None], self.level_sd_pct[:, None],
                                 self.dispersion_pct[:, None], threshold_pct)
        surv = None
        if self.cycle_s is not None:
            surv = emptying_survival(self.t_s - self.last_emptied_s, self.cycle_s, ahead)
        out = median_first_passage_s(ahead, p, surv)
        return np.where(np.isnan(self.level_pct), np.nan, self.t_s + out)


def forecast_bins(
    grid: Grid,
    at_s: float,
    params: ForecastParams,
    pattern: Pattern | None = None,
    groups: Sequence[ArrayLike] = (),
) -> BinForecast:
    """Estimate every bin's level and rate at ``at_s`` from its grid (steps 4-6).

    ``groups``: pools from finest to coarsest, each an int array (B,) of pool ids (site,
    area, stream); a bin with little history borrows from the first pool with
    ``min_pool_bins`` bins that have one.
    """
    pattern = pattern or fit_pattern(grid, params)
    n_bins, hours = grid.raw.shape
    s, raw = grid.smooth, grid.raw
    cyc, since = _cycles(grid)
    tau = pattern.effective_days(grid.hour_mid_s)  # (H,)
    tau_now = float(pattern.effective_days(at_s))
    tau2 = np.broadcast_to(tau, s.shape)
    # --- per (bin, cycle): rise over exposure on the effective clock ----------------------
    # First and last valid hourly level of each cycle (the last one right before the next
    # emptying, so the deposit that made it worth emptying counts). Rise / exposure is
    # unbiased for a staircase of big deposits, where a slope fitted in log space would not
    # be (Jensen) and dropping flat cycles would bias upwards.
    n_cyc = int(cyc.max()) + 1 if cyc.size else 1
    until = _hours_to_next_emptying(grid.emptied)
    key = np.arange(n_bins)[:, None] * n_cyc + cyc
    ok = np.isfinite(raw) & (since >= 1) & (until >= 1)
    size = n_bins * n_cyc
    col = np.broadcast_to(np.arange(hours), s.shape)
    k = key[ok]
    first_h = np.full(size, hours, np.int64)
    last_h = np.full(size, -1, np.int64)
    np.minimum.at(first_h, k, col[ok])
    np.maximum.at(last_h, k, col[ok])
    cnt = np.bincount(k, minlength=size).reshape(n_bins, n_cyc).astype(float)
    seen = last_h >= 0
    rb = np.repeat(np.arange(n_bins), n_cyc)
    rise = np.where(seen, raw[rb, np.clip(last_h, 0, hours - 1)]
                    - raw[rb, np.clip(first_h, 0, hours - 1)], 0.0).reshape(n_bins, n_cyc)
    expo = np.where(seen, tau[np.clip(last_h, 0, hours - 1)]
                    - tau[np.clip(first_h, 0, hours - 1)], 0.0).reshape(n_bins, n_cyc)
    first_h = first_h.reshape(n_bins, n_cyc)
    with np.errstate(divide="ignore", invalid="ignore"):
        cycle_rate = np.where(expo > 0, rise / expo, np.nan)
    cur = cyc[:, -1]  # the current cycle of each bin
    completed = np.arange(n_cyc)[None, :] < cur[:, None]
    hist = completed & (expo >= params.min_cycle_days) & (cnt >= 6)
    # --- sensor noise: robust spread of hourly differences (deposits are rare jumps) ---
    d1 = raw[:, 1:] - raw[:, :-1]
    d1 = np.where(cyc[:, 1:] == cyc[:, :-1], d1, np.nan)
    has_d = np.isfinite(d1).sum(axis=1) >= 10
    noise_bin = np.full(n_bins, np.nan)
    if has_d.any():
        med = np.nanmedian(d1[has_d], axis=1)
        noise_bin[has_d] = 1.4826 * np.nanmedian(np.abs(d1[has_d] - med[:, None]), axis=1) \
            / np.sqrt(2)
    noise_all = float(np.nanmedian(noise_bin)) if np.isfinite(noise_bin).any() else 2.0
    noise_bin = np.where(np.isfinite(noise_bin), np.maximum(noise_bin, 0.3), noise_all)
    # --- deposit dispersion -----------------------------------------------------------------
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_all = np.where(expo.sum(axis=1) > 0, rise.sum(axis=1) / expo.sum(axis=1), np.nan)
    disp = _dispersion(raw, cyc, since, noise_bin, tau2, rate_all)
    # --- a bin's long-run rate from its completed cycles, shrunk to its pool ------------
    rise_b = np.where(hist, rise, 0.0).sum(axis=1)
    expo_b = np.where(hist, expo, 0.0).sum(axis=1)
    n_b = hist.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_b = np.where(expo_b > 0, rise_b / expo_b, np.nan)
        # cycle-to-cycle spread of a bin's rate, relative to its mean, less deposit noise
        rel = np.where(hist, (cycle_rate / rate_b[:, None] - 1.0) ** 2
                       - disp[:, None] / np.maximum(rate_b[:, None] * expo, 1e-9), np.nan)
    multi = n_b >= 2
    cv2 = float(np.clip(np.nanmean(rel[multi]), 0.01, 2.0)) if multi.any() and \
        np.isfinite(rel[multi]).any() else 0.3
    has = expo_b > 0
    prior_m = np.full(n_bins, np.nan)
    prior_v = np.full(n_bins, np.nan)
    pools = [np.asarray(g_, dtype=np.int64) for g_ in groups] + [np.zeros(n_bins, np.int64)]
    for g in pools:
        todo = np.isnan(prior_m)
        if not todo.any():
            break
        gid = np.unique(g, return_inverse=True)[1]
        ng = int(gid.max()) + 1
        cnt_g = np.bincount(gid[has], minlength=ng).astype(float)
        r_g = np.bincount(gid[has], rise_b[has], ng) / np.maximum(
            np.bincount(gid[has], expo_b[has], ng), 1e-9)
        # sampling variance of a bin's rate: deposits over its exposure, and the spread of
        # its cycles over their number
        samp = np.where(has, (disp * np.maximum(rate_b, 0) / np.maximum(expo_b, 1e-9)
                              + cv2 * np.maximum(rate_b, 0) ** 2 / np.maximum(n_b, 1)), np.nan)
        dev2 = np.where(has, (rate_b - r_g[gid]) ** 2 - samp, 0.0)
        v_g = np.bincount(gid[has], dev2[has], ng) / np.maximum(cnt_g, 1)
        v_g = np.maximum(v_g, (0.1 * r_g) ** 2)  # pools are never perfectly alike
        last = g is pools[-1]
        use = todo & ((cnt_g[gid] >= params.min_pool_bins) | (last & (cnt_g[gid] > 0)))
        if not use.any():
            continue
        gi = gid[use]
        sb = np.where(has[use], samp[use], np.inf)
        w = v_g[gi] / (v_g[gi] + sb)  # James-Stein weight of the bin's own history
        m = w * np.nan_to_num(rate_b[use]) + (1 - w) * r_g[gi]
        # a rate is never negative, though a short noisy pool's mean can be (the dashboard
        # city's 4 days gave -0.16 %/day, and a NaN uncertainty band)
        prior_m[use] = np.maximum(m, 0.05 * np.maximum(r_g[gi], 0.0) + 1e-3)
        # the uncertainty left about the long-run rate (the pool's spread without history)
        prior_v[use] = np.where(has[use], w * np.where(np.isfinite(sb), sb, 0.0), v_g[gi])
    # --- the current cycle ----------------------------------------------------------------
    rows = np.arange(n_bins)
    cur_rise, cur_expo, cur_cnt = rise[rows, cur], expo[rows, cur], cnt[rows, cur]
    if np.isnan(prior_m).any():
        # nobody has a history: a vague prior around the current cycles' rates
        cr = cur_rise[cur_expo >= 0.5] / cur_expo[cur_expo >= 0.5]
        m0 = float(max(np.median(cr), 0.5)) if cr.size else 5.0
        prior_v = np.where(np.isnan(prior_m), m0**2, prior_v)
        prior_m = np.where(np.isnan(prior_m), m0, prior_m)
    # the current cycle's rate varies around the long-run rate by the cycle spread
    var_p = prior_v + cv2 * prior_m**2
    with np.errstate(divide="ignore", invalid="ignore"):
        var_obs = (disp * prior_m / np.maximum(cur_expo, 1e-6)
                   + 2 * 1.57 * noise_bin**2 / 6 / np.maximum(cur_expo, 1e-6) ** 2)
        obs = cur_rise / cur_expo
    use_obs = (cur_cnt >= 3) & (cur_expo >= 0.25) & np.isfinite(obs)
    w_obs = np.where(use_obs, 1.0 / var_obs, 0.0)
    w_p = 1.0 / var_p
    rate = (w_obs * np.where(use_obs, obs, 0.0) + w_p * prior_m) / (w_obs + w_p)
    rate_sd = np.sqrt(1.0 / (w_obs + w_p))
    rate = np.maximum(rate, 0.05 * prior_m)
    disp_b = disp
    # --- the current level: rate-corrected median of the last valid hours of the cycle --
    valid = np.isfinite(raw) & (cyc == cur[:, None])
    rank = np.cumsum(valid[:, ::-1], axis=1)[:, ::-1]  # 1 = the last valid hour
    take = valid & (rank <= params.level_window_h)
    adj = raw + rate[:, None] * (tau_now - tau2)
    kk = np.broadcast_to(rows[:, None], raw.shape)[take]
    level = _group_median(kk, adj[take], n_bins)
    n_lvl = np.bincount(kk, minlength=n_bins)
    level_sd = np.sqrt(1.57 * noise_bin**2 / np.maximum(n_lvl, 1))
    # a cycle without readings yet: the level after an emptying, plus what came since
    last_e = np.where(grid.emptied.any(axis=1),
                      hours - 1 - np.argmax(grid.emptied[:, ::-1], axis=1), -1)
    start_lvl = s[rows, np.clip(last_e + _QUIET_H + 1, 0, hours - 1)]
    base = float(np.nanmedian(start_lvl)) if np.isfinite(start_lvl).any() else 2.0
    fresh = np.isnan(level) & (last_e >= 0)
    if fresh.any():
        tau_e = tau[np.clip(last_e[fresh], 0, hours - 1)]
        level[fresh] = base + rate[fresh] * (tau_now - tau_e)
        level_sd[fresh] = np.sqrt(4.0 + disp[fresh] * rate[fresh] * (tau_now - tau_e))
    last_emptied = np.where(last_e >= 0, grid.t0_s + last_e * HOUR_S, np.nan)
    return BinForecast(float(at_s), level, level_sd, rate, rate_sd, disp_b, last_emptied,
                       pattern, params.band, _cycle_lengths_s(grid.emptied))


def _cycle_lengths_s(emptied: NDArray[np.bool_]) -> np.ndarray:
    """(B, K) lengths [s] of the completed cycles (emptying to emptying), NaN-padded."""
    rows, cols = np.nonzero(emptied)  # sorted by bin, then hour
    n_bins = emptied.shape[0]
    same = np.zeros(rows.size, bool)
    same[1:] = rows[1:] == rows[:-1]
    r = rows[same]
    length = (cols[1:] - cols[:-1])[same[1:]] * float(HOUR_S)
    n = np.bincount(r, minlength=n_bins)
    out = np.full((n_bins, max(int(n.max()) if n.size else 0, 1)), np.nan)
    if r.size:
        start = np.concatenate([[0], np.cumsum(n)[:-1]])
        out[r, np.arange(r.size) - start[r]] = length
    return out


def _dispersion(raw, cyc, since, noise_bin, tau2, rate) -> np.ndarray:
    """Per bin, the variance of the fill added per % added [%] (compound Poisson: E[X²]/E[X]
    of the deposit sizes, so a small street bin is far jumpier than a large container).

    From 6-hour increments of the hourly levels inside fill cycles (a 6-hour window ending
    just before an emptying still holds the deposit that made the bin worth emptying, which
    windows around a fitted line or across days would lose): (mean squared deviation of the
    increments from the bin's rate - sensor noise) / mean increment. Each bin's estimate is
    shrunk towards the pooled one with the weight of one bin-fill (100 % added)."""
    n_bins, hours = raw.shape
    w = 6
    if hours <= 4 * w:
        return np.full(n_bins, 2.0)
    a, b = raw[:, :-w], raw[:, w:]
    ok = np.isfinite(a) & np.isfinite(b) & (cyc[:, :-w] == cyc[:, w:]) & (since[:, :-w] >= 1)
    ok &= np.isfinite(rate)[:, None]
    rows = np.broadcast_to(np.arange(n_bins)[:, None], a.shape)[ok]
    d = (b - a)[ok]
    if d.size < 50:
        return np.full(n_bins, 2.0)
    expect = rate[rows] * (tau2[:, w:] - tau2[:, :-w])[ok]
    num = np.bincount(rows, (d - expect) ** 2 - 2 * noise_bin[rows] ** 2, n_bins)
    den = np.bincount(rows, d, n_bins)
    pooled = float(np.clip(num.sum() / max(den.sum(), 1e-9), 0.1, 50.0))
    k = w * 100.0  # overlapping windows: each % added is counted w times
    return np.clip((num + k * pooled) / (np.maximum(den, 0) + k), 0.1, 60.0)


class Forecaster:
    """Convenience over the functions above: fit the pattern once, forecast many times.

    ``bin_ids`` fixes the order of every array; ``groups`` are the pools (finest first).
    """

    def __init__(self, n_bins: int, params: ForecastParams | None = None,
                 groups: Sequence[ArrayLike] = ()) -> None:
        self.n_bins = n_bins
        self.params = params or ForecastParams()
        self.groups = [np.asarray(g, dtype=np.int64) for g in groups]
        self.pattern: Pattern | None = None

    def fit(self, bin_index, t_s, fill_pct, emptied=None, flagged=None) -> Forecaster:
        """Learn the weekday and hour pattern from (training) readings."""
        t = np.asarray(t_s, dtype=float)
        if t.size == 0:
            self.pattern = Pattern.flat(self.params.utc_offset_h, self.params.eu_dst)
            return self
        span = (t.max() - t.min()) / DAY_S + 1
        p = ForecastParams(**{**self.params.to_dict(), "history_days": float(span)})
        grid = build_grid(bin_index, t, fill_pct, self.n_bins, float(t.max()), p, emptied,
                          flagged)
        self.pattern = fit_pattern(grid, p)
        return self

    def forecast(self, bin_index, t_s, fill_pct, at_s, emptied=None, flagged=None
                 ) -> BinForecast:
        grid = build_grid(bin_index, t_s, fill_pct, self.n_bins, at_s, self.params, emptied,
                          flagged)
        return forecast_bins(grid, at_s, self.params, self.pattern, self.groups)

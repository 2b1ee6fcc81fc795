"""Turning raw distance series into fill levels, emptyings, rates and patterns.

One pipeline for both the real Frankfurt data (``calibrate.py`` fits the model on it) and the
simulator's own output (the tests run the very same steps on simulated readings and compare),
so "the model reproduces the data" is measured with one ruler. Pure numpy, no I/O.

Steps, per sensor: drop error codes (254 cm) and duplicate times; find the fixed false echo
(one 2-cm distance between 20 and 80 cm holding a large share of readings); estimate the empty
distance as a high percentile of the distances below 160 cm; fill % = 100 (empty - d) / empty;
hourly medians, a centred 5-hour running median against spikes; an emptying is a drop of at
least 20 points within 6 hours; rates and hourly increments are taken inside fill cycles only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator.calendar import local_fields

ERROR_CM = 254
GHOST_LO_CM, GHOST_HI_CM = 20, 80
GHOST_MIN_SHARE = 0.04
EMPTY_MAX_CM = 160
EMPTY_PERCENTILE = 95
EMPTYING_DROP_PCT = 20.0
EMPTYING_WINDOW_H = 6
MIN_CYCLE_DAYS = 2.0


@dataclass
class SensorSeries:
    """Raw readings of one sensor: UTC seconds and distance in cm (254 = error)."""

    name: str
    t_s: np.ndarray
    d_cm: np.ndarray
    temp_c: np.ndarray | None = None
    volt_mv: np.ndarray | None = None
    tilt_deg: np.ndarray | None = None


@dataclass
class SensorFit:
    name: str
    n: int
    error_share: float
    ghost_cm: float | None
    ghost_share: float
    empty_cm: float
    coverage: float
    gaps_h: list[float]
    span_h: float
    noise_cm: float
    spike_share: float
    jump_share: float
    cycle_rates: list[float]  #: %/day, one per fill cycle
    cycle_days: list[float]
    emptyings: int
    #: sums and counts of hourly fill increments [%/h] by local weekday and by local hour
    wd_sum: np.ndarray = field(default_factory=lambda: np.zeros(7))
    wd_n: np.ndarray = field(default_factory=lambda: np.zeros(7))
    hr_sum: np.ndarray = field(default_factory=lambda: np.zeros(24))
    hr_n: np.ndarray = field(default_factory=lambda: np.zeros(24))
    daily_incr: list[float] = field(default_factory=list)


def _ghost(d: np.ndarray) -> tuple[float | None, float]:
    """The fixed false echo: the most common distance in [20, 80] cm if it stands out."""
    if len(d) == 0:
        return None, 0.0
    values, counts = np.unique(d, return_counts=True)
    sel = (values >= GHOST_LO_CM) & (values <= GHOST_HI_CM)
    if not sel.any():
        return None, 0.0
    v, c = values[sel], counts[sel]
    i = int(np.argmax(c))
    share = c[i] / len(d)
    neighbours = [counts[values == v[i] + k].sum() for k in (-4, -2, 2, 4)]
    if share >= GHOST_MIN_SHARE and c[i] >= 3 * max(neighbours):
        return float(v[i]), float(share)
    return None, 0.0


def _running_median(x: np.ndarray, k: int = 5) -> np.ndarray:
    """Centred running median over ``k`` samples, NaN-aware (NaN where all are NaN)."""
    pad = k // 2
    xp = np.concatenate([np.full(pad, np.nan), x, np.full(pad, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(xp, k)
    out = np.full(len(x), np.nan)
    has = (~np.isnan(windows)).any(axis=1)
    out[has] = np.nanmedian(windows[has], axis=1)
    return out


def analyse(series: SensorSeries) -> SensorFit:
    """Run the pipeline on one sensor (see the module docstring)."""
    order = np.argsort(series.t_s, kind="stable")
    t = series.t_s[order].astype(np.int64)
    d = series.d_cm[order].astype(float)
    keep = np.concatenate([[True], np.diff(t) > 0])
    t, d = t[keep], d[keep]
    n = len(t)
    err = d == ERROR_CM
    error_share = float(err.mean()) if n else 0.0
    t, d = t[~err], d[~err]

    # jumps of >= 10 cm between readings at most 90 min apart (before any cleaning)
    dt_ = np.diff(t)
    close = dt_ <= 90 * 60
    jump_share = float((np.abs(np.diff(d))[close] >= 10).mean()) if close.any() else 0.0

    ghost_cm, ghost_share = _ghost(d)
    clean = np.ones(len(d), bool) if ghost_cm is None else np.abs(d - ghost_cm) > 0.5
    tc, dc = t[clean], d[clean]
    below = dc[dc < EMPTY_MAX_CM]
    empty_cm = float(np.percentile(below, EMPTY_PERCENTILE)) if len(below) else float("nan")
    fill = 100.0 * (empty_cm - dc) / empty_cm

    # hourly grid of medians
    h0 = int(t.min() // 3600) if len(t) else 0
    h1 = int(t.max() // 3600) if len(t) else 0
    nh = h1 - h0 + 1
    span_h = float(nh)
    hour_idx = tc // 3600 - h0
    hourly = np.full(nh, np.nan)
    if len(tc):
        # median per hour, vectorised: sort by (hour, fill), take the middle of each group
        srt = np.lexsort((fill, hour_idx))
        hi, fs = hour_idx[srt], fill[srt]
        starts = np.flatnonzero(np.concatenate([[True], np.diff(hi) != 0]))
        counts = np.diff(np.concatenate([starts, [len(hi)]]))
        lo_mid = starts + (counts - 1) // 2
        hi_mid = starts + counts // 2
        hourly[hi[starts]] = 0.5 * (fs[lo_mid] + fs[hi_mid])
    all_hours = np.unique(t // 3600 - h0)
    coverage = len(all_hours) / nh if nh else 0.0
    gaps = np.diff(all_hours)
    gaps_h = [float(g - 1) for g in gaps if g > 2]

    smooth = _running_median(hourly, 9)
    # residual noise and spikes of clean readings around the smoothed level (in cm)
    level_cm = empty_cm - smooth[hour_idx] * empty_cm / 100.0
    resid = dc - level_cm
    ok = ~np.isnan(resid)
    if ok.any():
        r = resid[ok]
        mad = np.median(np.abs(r - np.median(r)))
        small = r[np.abs(r) < 10]
        noise_cm = float(np.std(small)) if len(small) else float(1.4826 * mad)
        spike_share = float((np.abs(r) >= 10).mean())
    else:
        noise_cm, spike_share = 0.0, 0.0

    # emptyings: the median of the next 6 valid hours lies >= 20 points under that of the
    # previous 6, within 6 hours, the level before was >= 25 %; one per 24 hours at most
    valid = np.flatnonzero(~np.isnan(smooth))
    sv = smooth[valid]
    cuts: list[int] = []
    if len(sv) > 12:
        win = np.median(np.lib.stride_tricks.sliding_window_view(sv, 6), axis=1)
        j = np.arange(6, len(sv) - 5)
        before, after = win[j - 6], win[j]
        cand = (
            (valid[j] - valid[j - 1] <= EMPTYING_WINDOW_H)
            & (before >= 25)
            & (before - after >= EMPTYING_DROP_PCT)
            & (sv[j - 1] - sv[j] >= 5)
        )
        for jj in j[cand]:
            if cuts and valid[jj] - cuts[-1] < 24:
                continue
            cuts.append(int(valid[jj]))
    bounds_h = [int(valid[0]) if len(valid) else 0, *cuts, nh]
    wd, hr, local_day = local_fields((h0 + np.arange(nh)) * 3600 + 1800)
    fit = SensorFit(
        series.name, n, error_share, ghost_cm, ghost_share, empty_cm, coverage, gaps_h, span_h,
        noise_cm, spike_share, jump_share, [], [], len(cuts),
    )
    for k in range(len(bounds_h) - 1):
        # stay 6 hours clear of each emptying: the running median smears the drop
        a, b = bounds_h[k] + 6, bounds_h[k + 1] - 6
        if b - a < 24:
            continue
        seg = smooth[a:b]
        idx = np.flatnonzero(~np.isnan(seg))
        if len(idx) < 24:
            continue
        first, last = idx[0], idx[-1]
        days = (last - first) / 24.0
        if days < MIN_CYCLE_DAYS:
            continue
        start = np.median(seg[idx[:6]])
        end = np.median(seg[idx[-6:]])
        fit.cycle_rates.append(float((end - start) / days))
        fit.cycle_days.append(float(days))
        inc = np.diff(seg)
        good = ~np.isnan(inc)
        hours = np.arange(a, b - 1)[good]
        fit.wd_sum += np.bincount(wd[hours], weights=inc[good], minlength=7)
        fit.wd_n += np.bincount(wd[hours], minlength=7)
        fit.hr_sum += np.bincount(hr[hours], weights=inc[good], minlength=24)
        fit.hr_n += np.bincount(hr[hours], minlength=24)
        # increments over whole local days (midnight to midnight) for burstiness
        days_local = local_day[a:b]
        midnight = np.flatnonzero(np.diff(days_local) != 0) + 1
        level_mid = seg[midnight]
        dl = np.diff(level_mid)
        fit.daily_incr.extend(float(x) for x in dl[~np.isnan(dl)])
    return fit


@dataclass(frozen=True)
class Summary:
    """What the data (or a simulation) looks like, in the numbers the model is fitted to."""

    sensors: int
    readings: int
    median_rate_pct_day: float
    rate_log_mu: float
    rate_log_sigma: float
    cycle_log_sigma: float
    median_cycle_days: float
    weekday: tuple[float, ...]  #: mean hourly increment per local weekday, normalised to mean 1
    hour: tuple[float, ...]  #: same per local hour of day
    error_share: float
    ghost_sensor_share: float
    ghost_shares: tuple[float, ...]
    ghost_fracs: tuple[float, ...]  #: ghost distance / empty distance
    median_empty_cm: float
    median_coverage: float
    gap_per_hour: float
    gap_log_mu: float
    gap_log_sigma: float
    noise_cm: float
    spike_share: float
    jump_share: float
    daily_incr_var_over_mean: float


def summarise(fits: list[SensorFit]) -> Summary:
    rates = np.array([r for f in fits for r in f.cycle_rates if r > 0.05])
    per_sensor = np.array(
        [np.median([r for r in f.cycle_rates if r > 0.05]) for f in fits
         if any(r > 0.05 for r in f.cycle_rates)]
    )
    log_sensor = np.log(per_sensor)
    within = [
        np.log(r) - np.log(np.median([x for x in f.cycle_rates if x > 0.05]))
        for f in fits for r in f.cycle_rates if r > 0.05
    ]
    wd_sum = sum(f.wd_sum for f in fits)
    wd_n = sum(f.wd_n for f in fits)
    hr_sum = sum(f.hr_sum for f in fits)
    hr_n = sum(f.hr_n for f in fits)
    wd_mean = wd_sum / np.maximum(wd_n, 1)
    hr_mean = hr_sum / np.maximum(hr_n, 1)
    gaps = np.array([g for f in fits for g in f.gaps_h])
    span = sum(f.span_h for f in fits)
    incr = np.array([x for f in fits for x in f.daily_incr if x > -EMPTYING_DROP_PCT])
    ghosts = [f for f in fits if f.ghost_cm is not None]
    return Summary(
        sensors=len(fits),
        readings=int(sum(f.n for f in fits)),
        median_rate_pct_day=float(np.median(rates)),
        rate_log_mu=float(np.mean(log_sensor)),
        rate_log_sigma=float(np.std(log_sensor)),
        cycle_log_sigma=float(np.std(within)) if within else 0.0,
        median_cycle_days=float(np.median([d for f in fits for d in f.cycle_days])),
        weekday=tuple(float(x) for x in wd_mean / wd_mean.mean()),
        hour=tuple(float(x) for x in hr_mean / hr_mean.mean()),
        error_share=float(np.mean([f.error_share for f in fits])),
        ghost_sensor_share=len(ghosts) / len(fits),
        ghost_shares=tuple(sorted(f.ghost_share for f in ghosts)),
        ghost_fracs=tuple(sorted(f.ghost_cm / f.empty_cm for f in ghosts)),  # type: ignore[operator]
        median_empty_cm=float(np.median([f.empty_cm for f in fits])),
        median_coverage=float(np.median([f.coverage for f in fits])),
        gap_per_hour=float(len(gaps) / span) if span else 0.0,
        gap_log_mu=float(np.mean(np.log(gaps))) if len(gaps) else 0.0,
        gap_log_sigma=float(np.std(np.log(gaps))) if len(gaps) else 0.0,
        noise_cm=float(np.median([f.noise_cm for f in fits])),
        spike_share=float(np.median([f.spike_share for f in fits])),
        jump_share=float(np.mean([f.jump_share for f in fits])),
        daily_incr_var_over_mean=float(np.var(incr) / max(np.mean(incr), 1e-9)),
    )

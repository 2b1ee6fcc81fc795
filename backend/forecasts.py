"""Forecasts for the API: every bin's expected level, band, time to full and overflow risk,
computed by the routing core's forecaster from the municipality's readings (backend.planning's
``forecast_bins``) and kept for ``ttl_s`` per municipality and stream, since one fit reads
weeks of readings."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.planning import Query, forecast_bins
from routing.forecast import BinForecast
from smartbins import assets
from smartbins.registry import Bin, Registry


@dataclass(frozen=True)
class Snapshot:
    bins: list[Bin]
    forecast: BinForecast
    readings: np.ndarray  #: readings each bin had
    at_s: int


class Forecasts:
    """A per-(municipality, stream) cache of :class:`Snapshot`; thread-safe."""

    def __init__(self, ttl_s: float = 300.0) -> None:
        self.ttl_s = ttl_s
        self._cache: dict[tuple[str, str | None], tuple[float, Snapshot]] = {}
        self._lock = threading.Lock()

    def snapshot(
        self, reg: Registry, query: Query, municipality_id: str, stream: str | None = None
    ) -> Snapshot:
        key = (municipality_id, stream)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        bins = assets.bins(reg, municipality_id, stream=stream)
        at = int(time.time())
        if bins:
            fc, counts = forecast_bins(query, reg, bins, at)
        else:
            fc, counts = None, np.zeros(0)
        snap = Snapshot(bins, fc, counts, at)  # type: ignore[arg-type]
        with self._lock:
            self._cache[key] = (now, snap)
        return snap


def bin_outlook(snap: Snapshot, i: int, until_s: float) -> dict[str, Any] | None:
    """One bin's forecast as the API serves it (None: no readings to forecast from)."""
    fc, b = snap.forecast, snap.bins[i]
    if fc is None or snap.readings[i] == 0 or not np.isfinite(fc.level_pct[i]):
        return None
    lo, hi = fc.level_band_pct(float(until_s))
    full = fc.time_to_level_s(b.full_pct)[i]
    return {
        "bin_id": b.id,
        "stream": b.stream,
        "at_ms": snap.at_s * 1000,
        "level_pct": round(float(fc.level_pct[i]), 1),
        "level_sd_pct": round(float(fc.level_sd_pct[i]), 1),
        "rate_pct_day": round(float(fc.rate_pct_day[i]), 2),
        "full_pct": b.full_pct,
        "time_to_full_ms": int(full * 1000) if np.isfinite(full) else None,
        "until_ms": int(until_s * 1000),
        "expected_pct_until": round(float(fc.expected_level_pct(float(until_s))[i]), 1),
        "lo_pct_until": round(float(lo[i]), 1),
        "hi_pct_until": round(float(hi[i]), 1),
        "overflow_probability": round(float(fc.overflow_probability(float(until_s))[i]), 4),
        "readings": int(snap.readings[i]),
    }


def bin_points(snap: Snapshot, i: int, hours: int, step_h: int) -> dict[str, Any]:
    """One bin's expected level and band every ``step_h`` hours for ``hours`` ahead (the bin
    page's chart), and the probability that it overflows within ``hours``."""
    fc, b = snap.forecast, snap.bins[i]
    known = fc is not None and snap.readings[i] > 0 and np.isfinite(fc.level_pct[i])
    out: dict[str, Any] = {
        "bin_id": b.id, "at_ms": snap.at_s * 1000, "level_pct": None, "rate_pct_day": None,
        "band": fc.band if fc is not None else 0.8, "overflow_probability": None,
        "time_to_full_ms": None, "points": [],
    }
    if not known:
        return out
    t = snap.at_s + np.arange(0, hours + 1, step_h) * 3600.0
    mean = fc.expected_level_pct(t)[i]
    lo, hi = fc.level_band_pct(t)
    full = fc.time_to_level_s(b.full_pct)[i]
    out.update(
        level_pct=round(float(fc.level_pct[i]), 2),
        rate_pct_day=round(float(fc.rate_pct_day[i]), 2),
        overflow_probability=round(float(fc.overflow_probability(float(t[-1]))[i]), 4),
        time_to_full_ms=int(full * 1000) if np.isfinite(full) else None,
        points=[
            {"ts_ms": int(tt * 1000), "fill_pct": round(float(m), 2),
             "lo_pct": round(float(a), 2), "hi_pct": round(float(z), 2)}
            for tt, m, a, z in zip(t, mean, lo[i], hi[i], strict=True)
        ],
    )
    return out

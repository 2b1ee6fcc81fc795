"""Fill forecasts for the API, by the forecaster of issue 14 (``routing.forecast``): every bin
of a municipality at once, from each device's hourly mean fill over the last ``HISTORY_DAYS``,
pooled by site, area and stream; a bin's readings are those of the device on it now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from routing.forecast import BinForecast, Forecaster
from routing.plan_params import ForecastParams
from smartbins import storage
from smartbins.registry import Registry

HISTORY_DAYS = 28


@dataclass(frozen=True)
class CityForecast:
    bin_ids: list[str]
    forecast: BinForecast

    def index(self, bin_id: str) -> int:
        return self.bin_ids.index(bin_id)


def _codes(values: list[str]) -> np.ndarray:
    table = {v: i for i, v in enumerate(sorted(set(values)))}
    return np.array([table[v] for v in values], dtype=np.int64)


def city_forecast(
    reg: Registry, series: list[dict[str, Any]], municipality_id: str, at_ms: int
) -> CityForecast:
    """Forecasts at ``at_ms`` for every bin of the municipality, from the answer to
    ``backend.emptyings.hourly_query`` over the last ``HISTORY_DAYS``."""
    bins = [b for b in reg.bins() if b.municipality_id == municipality_id]
    index = {b.id: i for i, b in enumerate(bins)}
    on = {}
    for d in reg.devices():
        link = reg.current_link(d.id)
        if link is not None and link.bin_id in index:
            on[d.id] = index[link.bin_id]
    idx: list[int] = []
    t_s: list[float] = []
    fill: list[float] = []
    for s in series:
        i = on.get(s["tags"][storage.DEVICE_TAG])
        if i is None:
            continue
        for time_ms, value in s["values"]:
            if value is not None:
                idx.append(i)
                t_s.append(time_ms / 1000 + 1800)
                fill.append(value)
    groups = [_codes([b.site_id for b in bins]), _codes([b.area for b in bins]),
              _codes([b.stream for b in bins])]
    params = ForecastParams(**{**ForecastParams().to_dict(), "history_days": HISTORY_DAYS})
    f = Forecaster(len(bins), params, groups)
    a = (np.array(idx, dtype=np.int64), np.array(t_s), np.array(fill))
    f.fit(*a)
    return CityForecast([b.id for b in bins], f.forecast(*a, at_s=at_ms / 1000))


def _num(x: float) -> float | None:
    return round(float(x), 2) if np.isfinite(x) else None


def bin_outlook(cf: CityForecast, bin_id: str, at_ms: int, hours: int, step_h: int = 2
                ) -> dict[str, Any]:
    """One bin's expected level and band every ``step_h`` hours for ``hours`` from ``at_ms``."""
    i = cf.index(bin_id)
    fc = cf.forecast
    times = at_ms / 1000 + np.arange(0, hours + 1, step_h) * 3600.0
    mid = fc.expected_level_pct(times)[i]
    lo, hi = fc.level_band_pct(times)
    p = fc.overflow_probability(times[-1])[i]
    return {
        "bin_id": bin_id,
        "at_ms": at_ms,
        "level_pct": _num(fc.level_pct[i]),
        "rate_pct_day": _num(fc.rate_pct_day[i]),
        "band": fc.band,
        "overflow_probability": _num(p),
        "points": [
            {"ts_ms": int(t * 1000), "fill_pct": _num(m), "lo_pct": _num(a), "hi_pct": _num(b)}
            for t, m, a, b in zip(times, mid, lo[i], hi[i], strict=True)
        ],
    }

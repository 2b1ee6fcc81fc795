"""Emptyings detected in the readings, per bin, for the dashboard's bin page and collection
charts: the forecaster's own detection (``routing.forecast.build_grid``: readings cleaned of
error codes, ghost echoes, spikes and stuck stretches, laid on an hourly grid, and a fall of the
level by ``emptying_drop_pct`` marked as an emptying), over every device of a municipality at
once. The fill before an emptying is the highest clean hourly level of the three hours before
it. The bin is the one the device sat on at that time (the registry's device-to-bin history).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from routing.forecast import build_grid
from routing.plan_params import ForecastParams
from smartbins import storage
from smartbins.registry import Registry

HOUR_S = 3600


@dataclass(frozen=True)
class Emptying:
    bin_id: str
    stream: str
    device_id: str
    time_ms: int
    fill_before_pct: float | None
    fill_after_pct: float | None


def hourly_query(start_ms: int, end_ms: int, devices: list[str] | None = None) -> str:
    """Each device's (of ``devices``, default all) mean fill per hour in [start_ms, end_ms)."""
    only = ""
    if devices:
        only = " AND (" + " OR ".join(
            f"{storage.DEVICE_TAG} = {storage.device_literal(d)}" for d in devices) + ")"
    return (
        f"SELECT mean(fill) AS fill FROM {storage.MEASUREMENT} "
        f"WHERE time >= {storage.time_ms_literal('start_ms', start_ms)} "
        f"AND time < {storage.time_ms_literal('end_ms', end_ms)}{only} "
        f"GROUP BY time({HOUR_S}s), {storage.DEVICE_TAG} fill(none)"
    )


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def detect(
    reg: Registry, series: list[dict[str, Any]], municipality_id: str, end_ms: int
) -> list[Emptying]:
    """Emptyings in :func:`hourly_query`'s answer, for the bins of one municipality."""
    bins = {b.id: b for b in reg.bins() if b.municipality_id == municipality_id}
    devices = [s["tags"][storage.DEVICE_TAG] for s in series]
    if not devices:
        return []
    idx, t_s, fill = [], [], []
    for i, s in enumerate(series):
        for time_ms, value in s["values"]:
            if value is not None:
                idx.append(i)
                t_s.append(time_ms / 1000 + HOUR_S / 2)
                fill.append(value)
    if not t_s:
        return []
    at_s = end_ms / 1000
    span_days = (at_s - min(t_s)) / 86_400 + 1 / 24 + 1e-6
    params = ForecastParams(**{**ForecastParams().to_dict(), "history_days": span_days})
    g = build_grid(np.array(idx), np.array(t_s), np.array(fill), len(devices), at_s, params)
    out: list[Emptying] = []
    for d, h in zip(*np.nonzero(g.emptied), strict=True):
        time_ms = int((g.t0_s + h * HOUR_S) * 1000)
        bin_id = reg.bin_at(devices[d], time_ms)
        if bin_id not in bins:
            continue
        before = g.raw[d, max(0, h - 3) : h]
        before = before[np.isfinite(before)]
        out.append(Emptying(
            bin_id, bins[bin_id].stream, devices[d], time_ms,
            float(before.max()) if before.size else None, _finite(g.raw[d, h]),
        ))
    out.sort(key=lambda e: (e.time_ms, e.bin_id))
    return out

"""Emptyings detected in the readings, per bin, for the dashboard's collection charts.

A stand-in until the forecaster's detection (routing/forecast.py, issue 14) is served: each
device's fill is taken as its hourly maximum, and a fall of at least ``DROP_PCT`` points from
one hour with readings to the next counts as an emptying, at the fill before the fall. The
bin is the one the device sat on at that time (the registry's device-to-bin history).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smartbins import storage
from smartbins.registry import Registry

DROP_PCT = 30.0
HOUR_S = 3600


@dataclass(frozen=True)
class Emptying:
    bin_id: str
    stream: str
    device_id: str
    time_ms: int
    fill_before_pct: float
    fill_after_pct: float


def drops(fill_pct: np.ndarray, drop_pct: float = DROP_PCT) -> np.ndarray:
    """Indices i where ``fill_pct[i-1] - fill_pct[i] >= drop_pct`` (NaNs are skipped over)."""
    f = np.asarray(fill_pct, dtype=np.float64)
    keep = np.flatnonzero(~np.isnan(f))
    if keep.size < 2:
        return np.zeros(0, dtype=np.int64)
    vals = f[keep]
    hit = np.flatnonzero(vals[:-1] - vals[1:] >= drop_pct) + 1
    return keep[hit]


def hourly_max_query(start_ms: int, end_ms: int) -> str:
    return (
        f"SELECT max(fill) AS fill FROM {storage.MEASUREMENT} "
        f"WHERE time >= {storage.time_ms_literal('start_ms', start_ms)} "
        f"AND time < {storage.time_ms_literal('end_ms', end_ms)} "
        f"GROUP BY time({HOUR_S}s), {storage.DEVICE_TAG} fill(none)"
    )


def detect(
    reg: Registry, series: list[dict], municipality_id: str, drop_pct: float = DROP_PCT
) -> list[Emptying]:
    """Emptyings in ``hourly_max_query``'s answer, for the bins of one municipality."""
    bins = {b.id: b for b in reg.bins() if b.municipality_id == municipality_id}
    out: list[Emptying] = []
    for s in series:
        device = s["tags"][storage.DEVICE_TAG]
        t = np.array([v[0] for v in s["values"]], dtype=np.int64)
        f = np.array([np.nan if v[1] is None else v[1] for v in s["values"]], dtype=np.float64)
        for i in drops(f, drop_pct):
            before = f[:i][~np.isnan(f[:i])][-1]
            bin_id = reg.bin_at(device, int(t[i]))
            if bin_id in bins:
                out.append(
                    Emptying(bin_id, bins[bin_id].stream, device, int(t[i]), float(before),
                             float(f[i]))
                )
    out.sort(key=lambda e: (e.time_ms, e.bin_id))
    return out

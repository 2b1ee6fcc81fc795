"""bench/forecast.py's adapter for other harnesses: make_forecaster(train, meta) ->
forecast(history, at, horizons_h), and its time to a threshold (forecast.time_to_level)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
T0 = 1_767_571_200  # 2026-01-05 00:00 UTC, a Monday
H = 3600.0
D = 86400.0


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_forecast", REPO / "bench" / "forecast.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _series(rate_day, days, every_days, phase_h, rng, level0=5.0):
    """Hourly readings of a bin filling at ``rate_day`` [%/d], emptied every ``every_days``."""
    t = T0 + np.arange(days * 24) * H + 600
    lvl, out = level0, []
    for k in range(t.size):
        if k > 0 and (k - phase_h) % int(every_days * 24) == 0:
            lvl = rng.uniform(0, 3)
        lvl += rate_day / 24
        out.append(lvl)
    fill = np.asarray(out) + rng.normal(0, 1.0, t.size)
    return t, fill, np.zeros(t.size, bool)


def test_adapter_levels_and_time_to_level(bench):
    rng = np.random.default_rng(4)
    data = {f"b{i}": _series(rate, 40, 12, 24 * i, rng)
            for i, rate in enumerate([4.0, 6.0, 8.0, 10.0])}
    data["full"] = _series(12.0, 40, 40, 0, rng)  # never emptied: far above 80 % at the end
    cut = T0 + 25 * D
    train = {b: (t[t < cut], f[t < cut], e[t < cut]) for b, (t, f, e) in data.items()
             if b != "b3"}  # b3 is new: never seen in training
    meta = {b: {"stream": "glass", "site": "s1"} for b in data}
    forecast = bench.make_forecaster(train, meta)
    at = T0 + 35 * D + 6 * H
    hist = {b: (t[t <= at], f[t <= at], e[t <= at]) for b, (t, f, e) in data.items()}
    levels = forecast(hist, at, np.array([24.0, 72.0]))
    assert set(levels) == set(data)
    for b in ("b0", "b1", "b2", "b3"):
        lv = levels[b]
        assert lv.shape == (2,) and lv[1] > lv[0]  # filling bins rise
    when = forecast.time_to_level(hist, at, 80.0)
    assert set(when) == set(data)
    assert when["full"] == at  # already there
    for b in ("b0", "b1", "b2", "b3"):
        assert at <= when[b] < at + 28 * D  # all of them get there within four weeks
    # a new history (another morning) is forecast afresh, not served from the last one
    at2 = at + D
    hist2 = {b: (t[t <= at2], f[t <= at2], e[t <= at2]) for b, (t, f, e) in data.items()}
    when2 = forecast.time_to_level(hist2, at2, 80.0)
    assert all(w >= at2 for w in when2.values())

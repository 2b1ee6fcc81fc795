"""The fill model: how full every bin truly is, and what its ultrasonic sensor would report.

Pure functions and a vectorised state (``BinField``) over all bins; randomness only through
the ``numpy.random.Generator`` passed in, so a seed fixes everything. The parameters are fitted
on the Frankfurt glass data by ``simulator/calibrate.py`` and kept, versioned, in
``simulator/data/fill_params_v1.json``; ``docs/simulator.md`` documents the fit.

The model, per bin:

* a base rate [%/day] drawn from the fitted log-normal across bins, times a stream factor
  (assumption, see :data:`STREAM_RATE_FACTOR`), times a per-cycle factor redrawn at each
  emptying (the fitted cycle-to-cycle spread);
* modulated by the fitted local weekday and hour-of-day pattern (Europe/Copenhagen time with
  daylight saving); a Danish public holiday takes the Sunday factor;
* deposits arrive as a compound Poisson process with exponential sizes (burstiness), whose mean
  size in litres is the fitted one at the reference container volume;
* the level is not capped: past 100 % the bin is overfull (an overflow is recorded once per
  crossing) up to :data:`MAX_LEVEL_PCT`, where waste piles up beside it.

Bins are sized to their use, so the rate in %/day does not scale with volume; the deposit size
in litres does not either, so a small bin fills in bigger steps.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from simulator.calendar import holiday_mask, local_fields

PARAMS_PATH = Path(__file__).with_name("data") / "fill_params_v1.json"
MAX_LEVEL_PCT = 130.0
BLIND_ZONE_MM = 40  #: ultrasonic minimum range: closer targets give BLIND_ZONE

#: Rate multipliers per fraction relative to glass (the calibrated stream). Assumptions, stated:
#: residual and food waste are collected weekly to twice weekly in Copenhagen, glass and metal
#: every two to four weeks, paper and plastic in between. A combined stream takes the sum of
#: its fractions' factors, capped at 3.
STREAM_RATE_FACTOR: dict[str, float] = {
    "food": 2.0,
    "paper": 1.0,
    "cardboard": 0.8,
    "glass": 1.0,
    "metal": 0.4,
    "plastic": 1.2,
    "cartons": 0.5,
    "textiles": 0.4,
    "hazardous": 0.15,
    "residual": 2.5,
}


def stream_factor(stream: str) -> float:
    return min(3.0, sum(STREAM_RATE_FACTOR[f] for f in stream.split("+")))


@dataclass(frozen=True)
class FillParams:
    """Fitted parameters (see calibrate.py for how each is measured)."""

    version: int
    source: str
    rate_log_mu: float  #: mean of log(rate [%/day]) across bins
    rate_log_sigma: float  #: spread of log(rate) across bins
    cycle_log_sigma: float  #: spread of log(rate) between fill cycles of one bin
    weekday: tuple[float, ...]  #: local weekday factor, Monday first, mean 1
    hour: tuple[float, ...]  #: local hour-of-day factor, mean 1
    deposit_l: float  #: mean deposit size [L] (exponential sizes)
    reference_volume_l: float  #: container volume the fitted % refer to
    noise_mm: float  #: measurement noise, standard deviation [mm]
    spike_prob: float  #: chance a reading is off by a spike
    spike_mm: float  #: spike size scale [mm]
    error_prob: float  #: chance of an echo timeout per reading
    ghost_sensor_share: float  #: share of sensors with a fixed false echo
    ghost_fracs: tuple[float, ...]  #: ghost distance / empty distance, as observed
    ghost_shares: tuple[float, ...]  #: share of readings a ghost takes, as observed
    gap_per_hour: float  #: chance an outage starts in a given hour
    gap_log_mu: float  #: log of outage length [h]
    gap_log_sigma: float
    temp_mean_c: float
    temp_annual_c: float  #: amplitude of the annual cycle, peak in late July
    temp_daily_c: float  #: amplitude of the daily cycle, peak at 14:00 local
    battery_start_mv: float
    battery_mv_per_day: float
    tilt_mount_deg: tuple[float, ...]  #: lid angle of each sensor as mounted [°], as observed
    tilt_jitter_deg: float  #: spread of a sensor's readings around its mounting angle [°]
    tilt_events_per_30d: float  #: excursions of 10° or more per sensor and 30 days
    tilt_event_h: float  #: mean length of an excursion [h]
    tilt_event_deg: tuple[float, ...]  #: excursion angles [°], as observed
    targets: dict[str, float] = field(default_factory=dict)  #: data statistics fitted to

    def __post_init__(self) -> None:
        if len(self.weekday) != 7 or len(self.hour) != 24:
            raise ValueError("weekday needs 7 factors and hour 24")
        object.__setattr__(self, "weekday", tuple(self.weekday))
        object.__setattr__(self, "hour", tuple(self.hour))
        object.__setattr__(self, "ghost_fracs", tuple(self.ghost_fracs))
        object.__setattr__(self, "ghost_shares", tuple(self.ghost_shares))
        object.__setattr__(self, "tilt_mount_deg", tuple(self.tilt_mount_deg))
        object.__setattr__(self, "tilt_event_deg", tuple(self.tilt_event_deg))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FillParams:
        return cls(**json.loads(text))


def load_params(path: Path = PARAMS_PATH) -> FillParams:
    return FillParams.from_json(Path(path).read_text())


def pattern_factor(params: FillParams, ts_s: np.ndarray | float) -> np.ndarray:
    """Relative deposit intensity at UTC seconds ``ts_s`` (mean about 1 over a week)."""
    wd, hr, day = local_fields(ts_s)
    wd = np.where(holiday_mask(day), 6, wd)
    return np.asarray(params.weekday)[wd] * np.asarray(params.hour)[hr]


@dataclass
class BinTraits:
    """Per-bin constants, arrays of one length (the bins, in registry order)."""

    rate_pct_day: np.ndarray  #: base rate (cycle factor not included)
    deposit_pct: np.ndarray  #: mean deposit size in % of this bin
    empty_mm: np.ndarray  #: sensor to bottom
    full_mm: np.ndarray  #: sensor to surface at 100 %
    ghost_mm: np.ndarray  #: fixed false echo distance, 0 = none
    ghost_share: np.ndarray  #: chance a reading returns the ghost when the surface is below it


def depth_mm(volume_l: float) -> int:
    """Sensor-to-bottom distance by container size: 100 L street bin about 0.8 m, 3 m³
    underground container about 2.2 m (an assumption from common container data sheets)."""
    return round(800 + 1400 * (min(volume_l, 3000) - 100) / 2900)


def draw_traits(
    params: FillParams,
    streams: list[str],
    volumes_l: list[float],
    rng: np.random.Generator,
) -> BinTraits:
    n = len(streams)
    base = np.exp(rng.normal(params.rate_log_mu, params.rate_log_sigma, n))
    factor = np.array([stream_factor(s) for s in streams])
    vol = np.asarray(volumes_l, float)
    empty = np.array([depth_mm(v) for v in vol], float)
    full = np.round(0.12 * empty)
    has_ghost = rng.random(n) < params.ghost_sensor_share
    fracs = rng.choice(np.asarray(params.ghost_fracs or (0.5,)), n)
    shares = rng.choice(np.asarray(params.ghost_shares or (0.2,)), n)
    return BinTraits(
        rate_pct_day=base * factor,
        deposit_pct=np.minimum(25.0, 100.0 * params.deposit_l / vol),
        empty_mm=empty,
        full_mm=full,
        ghost_mm=np.where(has_ghost, np.round(fracs * empty), 0.0),
        ghost_share=np.where(has_ghost, shares, 0.0),
    )


class BinField:
    """True levels of all bins, advanced in fixed steps from ``t0_s``.

    Fixed steps keep the draws independent of who asks when: the same seed gives the same
    levels whether devices wake through a broker or in process. ``advance_to`` returns the
    overflows (bin index, step end time) that happened on the way.
    """

    def __init__(
        self,
        params: FillParams,
        traits: BinTraits,
        t0_s: int,
        rng: np.random.Generator,
        step_s: int = 300,
        initial_pct: np.ndarray | None = None,
    ) -> None:
        self.params = params
        self.traits = traits
        self.rng = rng
        self.step_s = step_s
        self.t_s = t0_s
        n = len(traits.rate_pct_day)
        self.level = (
            np.array(initial_pct, float) if initial_pct is not None else rng.uniform(0, 60, n)
        )
        self.cycle = self._cycle_factors(n)
        self.overfull = self.level >= 100.0
        self._factors: dict[int, float] = {}

    def _factor(self, t_s: int) -> float:
        """The pattern factor of the UTC hour holding ``t_s`` (cached per hour: it is the same
        for every step of that hour)."""
        h = t_s // 3600
        f = self._factors.get(h)
        if f is None:
            if len(self._factors) > 100_000:
                self._factors.clear()
            f = self._factors[h] = float(pattern_factor(self.params, h * 3600 + 1800)[0])
        return f

    def _cycle_factors(self, n: int) -> np.ndarray:
        s = self.params.cycle_log_sigma
        return np.exp(self.rng.normal(-0.5 * s * s, s, n))

    def advance_to(self, t_s: float) -> list[tuple[int, int]]:
        overflows: list[tuple[int, int]] = []
        while self.t_s + self.step_s <= t_s:
            f = self._factor(self.t_s + self.step_s // 2)
            expected = self.traits.rate_pct_day * self.cycle * f * self.step_s / 86400.0
            size = self.traits.deposit_pct
            count = self.rng.poisson(expected / size)
            added = np.where(count > 0, self.rng.gamma(np.maximum(count, 1), size), 0.0)
            self.level = np.minimum(MAX_LEVEL_PCT, self.level + added)
            self.t_s += self.step_s
            crossed = np.flatnonzero((self.level >= 100.0) & ~self.overfull)
            self.overfull |= self.level >= 100.0
            overflows.extend((int(i), self.t_s) for i in crossed)
        return overflows

    def empty(self, i: int, residual_pct: float | None = None) -> float:
        """Empty bin ``i`` now; returns the level it had. A little always stays behind."""
        before = float(self.level[i])
        self.level[i] = (
            residual_pct if residual_pct is not None else float(self.rng.uniform(0.0, 3.0))
        )
        self.overfull[i] = False
        s = self.params.cycle_log_sigma
        self.cycle[i] = float(np.exp(self.rng.normal(-0.5 * s * s, s)))
        return before


def true_distance_mm(level_pct: float, empty_mm: float, full_mm: float) -> float:
    return empty_mm - level_pct / 100.0 * (empty_mm - full_mm)


def fill_from_mm(mm: int, empty_mm: float, full_mm: float) -> float:
    """The device's calibration: fill % from a distance (over 100 when overfull)."""
    return round(100.0 * (empty_mm - mm) / (empty_mm - full_mm), 1)


@dataclass(frozen=True)
class Measurement:
    """What the ultrasonic sensor returns: a distance, or None with error codes."""

    mm: int | None
    errors: tuple[int, ...] = ()
    ghost: bool = False
    spike: bool = False


def measure(
    params: FillParams,
    level_pct: float,
    empty_mm: float,
    full_mm: float,
    ghost_mm: float,
    ghost_share: float,
    rng: np.random.Generator,
) -> Measurement:
    """One wake's distance reading with the fitted noise, spikes, ghost echoes and errors."""
    u = rng.random(4)
    if u[0] < params.error_prob:
        return Measurement(None, (1,))
    true_mm = true_distance_mm(level_pct, empty_mm, full_mm)
    if ghost_mm > 0 and true_mm > ghost_mm + 20 and u[1] < ghost_share:
        return Measurement(round(ghost_mm + rng.normal(0, 3)), ghost=True)
    mm = true_mm + rng.normal(0, params.noise_mm)
    spike = bool(u[2] < params.spike_prob)
    if spike:
        mm += (1 if u[3] < 0.5 else -1) * rng.exponential(params.spike_mm)
    mm = min(mm, empty_mm + 3 * params.noise_mm + (params.spike_mm if spike else 0))
    if mm < BLIND_ZONE_MM:
        return Measurement(None, (2,), spike=spike)
    return Measurement(round(mm), spike=spike)


@lru_cache(maxsize=200_000)
def _hour_fields(utc_hour: int) -> tuple[int, float]:
    """(local hour, day of year) of a UTC hour, cached: every device asks for the same hours."""
    _, hr, day = local_fields(utc_hour * 3600)
    return int(hr[0]), float(day[0] % 365.25)


def temperature_c(params: FillParams, t_s: float, rng: np.random.Generator) -> float:
    """Lid air temperature: annual and daily cycles plus noise."""
    hr, doy = _hour_fields(int(t_s // 3600))
    annual = params.temp_annual_c * math.cos(2 * math.pi * (doy - 205) / 365.25)
    daily = params.temp_daily_c * math.cos(2 * math.pi * (hr - 14) / 24)
    return round(params.temp_mean_c + annual + daily + float(rng.normal(0, 1.0)), 1)


def measure_many(
    params: FillParams,
    level_pct: np.ndarray,
    traits: BinTraits,
    rng: np.random.Generator,
) -> np.ndarray:
    """Vectorised :func:`measure` for all bins at once: distances [mm], NaN for an error.
    Same distributions (used where the device state machine is not needed, e.g. the fit check).
    """
    n = len(level_pct)
    u = rng.random((4, n))
    true_mm = true_distance_mm(level_pct, traits.empty_mm, traits.full_mm)
    mm = true_mm + rng.normal(0, params.noise_mm, n)
    spike = u[2] < params.spike_prob
    sign = np.where(u[3] < 0.5, 1.0, -1.0)
    mm = np.where(spike, mm + sign * rng.exponential(params.spike_mm, n), mm)
    cap = traits.empty_mm + 3 * params.noise_mm + np.where(spike, params.spike_mm, 0)
    mm = np.minimum(mm, cap)
    ghost = (traits.ghost_mm > 0) & (true_mm > traits.ghost_mm + 20) & (u[1] < traits.ghost_share)
    mm = np.where(ghost, traits.ghost_mm + rng.normal(0, 3, n), mm)
    mm = np.where((u[0] < params.error_prob) | (mm < BLIND_ZONE_MM), np.nan, np.round(mm))
    return mm

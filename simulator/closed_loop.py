"""Closed loop: collection policies judged on the simulator's ground truth, in process.

Each policy runs the same seeded city (bins, traits, faults, starting levels) day by day,
much faster than real time and without MQTT: the true levels come from the fill model
(``fill_model.BinField``), every bin's sensor reads hourly with the fitted noise, spikes,
ghost echoes and the fault schedule (``faults.schedule``: stuck, drift, timeouts, tilt,
offline windows whose readings arrive late, ...), and every policy's choice is routed by
the same router (``routing.plan.plan_day``) and emptied at the planned times.

Policies (``POLICIES``):

* ``fixed``: today's practice, fixed weekdays per stream and container size (every other week,
  once, twice, three or five times a week); the visits per week of such a group are the
  fewest that keep its ``fixed_rate_quantile`` bin (by true base rate) below ``full_pct``
  between visits, and ``full_pct`` is calibrated before the warm-up to what municipalities
  report: the predicted mean fill at emptying in their band, and of such settings the one
  whose share of emptyings under 25 % full is nearest theirs (:func:`fixed_schedule`);
* ``rule80``: empty every bin whose sensor says it is at least 80 % full, every working day;
* ``forecast``: ``routing.forecast`` on the sensor readings (faults included) -> select ->
  route, with the trucks' collection log as emptied flags; a group of streams that share
  trucks makes a trip only when one of its bins would probably overflow before the next
  working day, and a trip takes what would be at risk before its look-ahead
  (``routing.select``: ``opened``, ``lookahead_days``); overflow risks are judged against
  each bin's actual next opportunity;
* ``perfect``: the same selection, trips and routing with the true level, rate and pattern.

Collections run on working days (Monday to Friday), shift 06:00-14:00 UTC. A warm-up under
the fixed schedule gives every policy the same sensor history before the evaluation weeks.
Ground truth only scores: overflow bin-days (a bin at or above 100 % at any step of the day),
fill at emptying, and weight collected (volume x fill x the stream's bulk density).

**Same waste for every policy.** ``BinField.empty`` redraws a bin's cycle factor (its rate for
the next cycle, log-sd 0.55) at each emptying and draws the residue from the field's own random
stream. In a comparison of policies that ties the waste produced to the policy: a policy that
empties at a fill threshold spends less time in fast cycles than one that empties by the
calendar (an inspection paradox), so it would see about a quarter less waste (exp(-0.55²)) and
every per-tonne figure would be off. Here an emptying only resets the level (residue from a
stream of its own), and the cycle factors are redrawn on a fixed clock (every ``cycle_days``,
9.4 d, the median cycle of the fit, each bin at its own phase). Every policy then faces the
very same deposits, which also makes the seeds' comparisons paired in the strict sense.
"""

from __future__ import annotations

import csv
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import ndtr

from routing.forecast import Forecaster
from routing.plan import DayBins, DayPlan, Fleet, plan_day
from routing.plan_params import ForecastParams, SelectParams
from routing.select import lookahead_days, opportunities, stream_groups
from routing.stop import MaxIterations, MaxRuntime
from simulator import faults as fl
from simulator.city import TRUCK_TYPES, City, generate
from simulator.fill_model import (
    BLIND_ZONE_MM,
    BinField,
    draw_traits,
    load_params,
    measure_many,
    pattern_factor,
)
from smartbins.protocol import BLIND_ZONE_FILL_PCT

POLICIES = ("fixed", "rule80", "forecast", "perfect")
HOUR = 3600
DAY = 86400
SHIFT_START_H = 6  # UTC
SHIFT_H = 8
PLAN_H = 5  # the plan is made at 05:00 UTC, from the readings that have arrived
#: edges of the overflow-risk classes of the calibration table (PolicyStats.risk)
RISK_EDGES = (0.0, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
TILT_ALARM_DEG = 45.0
FACTORS_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "factors"

#: Bulk densities [kg/m³], the proposed defaults of factors v0.1 ``density.csv`` (its first row
#: per fraction); read from the file when present. A combined stream without its own value
#: takes the mixture rule of the factors README, 1 / sum(w_i / rho_i), with equal mass shares
#: (our assumption). Hazardous waste has no value; 200 (residual) is used, stated.
DENSITY_KG_M3 = {
    "food": 550.0, "paper": 90.0, "cardboard": 50.0, "glass": 300.0, "metal": 86.0,
    "plastic": 23.0, "cartons": 35.0, "textiles": 89.0, "hazardous": 200.0, "residual": 200.0,
    "paper+cardboard": 137.0, "metal+plastic+cartons": 26.5,
}
#: Fuel per km and kg CO2e per unit (factors v0.1: truck_consumption.csv SWANA 3 mpg diesel
#: RCV; HVO x 1.04 by energy content; the eEconic upper bound for electric; fuels.csv Q8 2022
#: for diesel B7 and HVO100, Green Power Denmark 2024 for electricity). No per-hour figure
#: was found, so only km count.
FUELS = {
    "diesel_b7": (0.784, 2.492, 3.276),  # L/km, kg CO2e/L TTW, WTW
    "hvo100": (0.784 * 1.04, 0.017, 0.654),
    "electric": (2.91, 0.0, 0.060),  # kWh/km, kg/kWh at the truck, location-based DK 2024
}


def density_kg_m3(stream: str, table: dict[str, float] | None = None) -> float:
    table = table or DENSITY_KG_M3
    if stream in table:
        return table[stream]
    parts = stream.split("+")
    rho = [table.get(p, 200.0) for p in parts]
    return 1.0 / sum((1.0 / len(rho)) / r for r in rho)


def read_density(path: Path = FACTORS_DIR / "density.csv") -> dict[str, float]:
    """First row per fraction of ``density.csv`` (the proposed defaults), if the file exists."""
    out = dict(DENSITY_KG_M3)
    if not path.exists():
        return out
    seen = set()
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            code = row["fraction_code"]
            if code in seen:
                continue
            seen.add(code)
            if row["kg_per_m3"].strip():
                out[code] = float(row["kg_per_m3"])
    return out


@dataclass(frozen=True)
class LoopConfig:
    """One closed-loop run (all policies share it)."""

    bins: int = 2000
    weeks: int = 13
    warmup_days: int = 21
    seed: int = 1
    start: str = "2026-01-05"  #: a Monday; UTC date the warm-up starts
    step_s: int = 600  #: fill model step [s]
    route_s: float = 1.0  #: routing time per day [s] (ignored with route_iterations)
    route_iterations: int = 0  #: >0: a fixed number of router iterations (deterministic)
    fleet_per_type: int = 3  #: trucks of each of the city's truck types
    fixed_rate_quantile: float = 0.9
    fixed_full_pct: float | None = None  #: None: calibrated (``fixed_schedule``)
    history_days: float = 28.0
    cycle_days: float = 9.4  #: the fill model's cycle factor is redrawn this often [d]
    forecast: ForecastParams = field(default_factory=ForecastParams)
    select: SelectParams = field(default_factory=SelectParams)

    @property
    def days(self) -> int:
        return self.warmup_days + 7 * self.weeks


@dataclass
class PolicyStats:
    """What one policy did over the evaluation weeks of one seed."""

    policy: str
    seed: int
    streams: tuple[str, ...]
    km: float = 0.0
    truck_hours: float = 0.0
    trucks_per_day: list[int] = field(default_factory=list)
    planning_s: list[float] = field(default_factory=list)
    #: per stream: emptyings, fill sum, emptyings under 25 %, tonnes, bin-days, overflow days
    emptyings: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fill_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    under25: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tonnes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bin_days: np.ndarray = field(default_factory=lambda: np.zeros(0))
    overflow_days: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bins_per_stream: np.ndarray = field(default_factory=lambda: np.zeros(0))
    weeks: float = 0.0
    violations: int = 0
    #: the fixed schedule's calibrated setting and its predicted mean fill at emptying and
    #: share under 25 % [%] (the same for every policy of a seed: the warm-up uses it)
    fixed_full_pct: float = float("nan")
    fixed_predicted: tuple[float, float] = (float("nan"), float("nan"))
    #: calibration of the overflow risk the plan works with (forecast and perfect): for every
    #: bin a plan left out and not yet at 100 %, its predicted probability of reaching 100 %
    #: before the next plan (no truck can come before then) against the ground truth; per
    #: class of RISK_EDGES: bin-days, sum of predicted, sum of observed, sum of squared error
    risk: np.ndarray = field(default_factory=lambda: np.zeros((len(RISK_EDGES) - 1, 4)))

    def score_risk(self, predicted: np.ndarray, observed: np.ndarray) -> None:
        """Add bin-days with predicted probabilities and observed outcomes (0/1)."""
        k = np.clip(np.searchsorted(RISK_EDGES, predicted, side="right") - 1, 0,
                    len(RISK_EDGES) - 2)
        o = observed.astype(float)
        for col, w in enumerate((np.ones_like(o), predicted, o, (predicted - o) ** 2)):
            self.risk[:, col] += np.bincount(k, w, len(RISK_EDGES) - 1)

    def figures(self, stream: int | None = None) -> dict[str, float]:
        """Key figures, for one stream index or all (``None``). km and truck-hours are shared
        by the streams of a truck, so per stream they are split by emptyings (stops)."""
        sel = slice(None) if stream is None else slice(stream, stream + 1)
        e = float(self.emptyings[sel].sum())
        t = float(self.tonnes[sel].sum())
        share = e / max(float(self.emptyings.sum()), 1e-9)
        km = self.km * share
        out = {
            "km": km,
            "tonnes": t,
            "km_per_tonne": km / t if t > 0 else float("nan"),
            "truck_hours": self.truck_hours * share,
            "emptyings_per_bin_week": e / max(float(self.bins_per_stream[sel].sum()), 1)
            / max(self.weeks, 1e-9),
            "under25_pct": 100 * float(self.under25[sel].sum()) / e if e else float("nan"),
            "fill_at_emptying_pct": float(self.fill_sum[sel].sum()) / e if e else float("nan"),
            "overflow_per_1000_bin_days": 1000 * float(self.overflow_days[sel].sum())
            / max(float(self.bin_days[sel].sum()), 1),
            "trucks_per_day": float(np.mean(self.trucks_per_day)) if self.trucks_per_day else 0,
            "planning_s_per_day": float(np.mean(self.planning_s)) if self.planning_s else 0,
            "emptyings": e,
        }
        for fuel, (per_km, _ttw, wtw) in FUELS.items():
            out[f"co2_kg_per_tonne_{fuel}"] = km * per_km * wtw / t if t > 0 else float("nan")
        return out


# ----------------------------------------------------------------------------------------
# the city as arrays
# ----------------------------------------------------------------------------------------
def city_fleet(city: City, per_type: int) -> tuple[Fleet, tuple[str, ...]]:
    streams = tuple(sorted({b.stream for b in city.bins}
                           | {s for tt in TRUCK_TYPES for s, _ in tt}))
    si = {s: i for i, s in enumerate(streams)}
    depots = np.array([[d.lon, d.lat] for d in city.depots])
    disp = np.array([[d.lon, d.lat] for d in city.disposal_sites])
    acc = np.zeros((len(city.disposal_sites), len(streams)), bool)
    for j, d in enumerate(city.disposal_sites):
        for s in d.streams:
            if s in si:
                acc[j, si[s]] = True
    caps, dep = [], []
    for k in range(per_type):
        for v, tt in enumerate(TRUCK_TYPES):
            cap = np.zeros(len(streams))
            for s, c in tt:
                cap[si[s]] = c
            caps.append(cap)
            dep.append((v + k) % len(city.depots))
    fleet = Fleet(depots, disp, acc, np.full(len(disp), 600.0), np.array(dep, np.int64),
                  np.array(caps), np.full(len(caps), SHIFT_H * 3600.0), streams)
    return fleet, streams


FIXED_OPTIONS = (0.5, 1, 2, 3, 5)  #: visits per week a fixed schedule may give a group
#: what municipalities report of fixed schedules: the band of the mean fill at emptying [%]
#: and the share of emptyings under 25 % full [%] (both calibration targets)
FIXED_TARGET_MEAN_PCT = (49.0, 63.0)
FIXED_TARGET_UNDER25_PCT = 40.0


def _fixed_days_mask(per_week: np.ndarray, pick: np.ndarray) -> np.ndarray:
    """Bool (B, 14): the days of a fortnight (day 0 = a Monday) a bin is visited. Fortnightly
    bins alternate weeks by ``pick``; twice a week is Mon+Thu or Tue+Fri."""
    days = np.zeros((len(per_week), 14), bool)
    for i, k in enumerate(per_week):
        wd = int(pick[i]) % 5
        if k < 1:
            days[i, wd + 7 * (int(pick[i]) // 5 % 2)] = True
            continue
        if k == 1:
            week = [wd]
        elif k == 2:
            week = [(0, 3), (1, 4)][wd % 2]
        elif k == 3:
            week = [0, 2, 4]
        else:
            week = [0, 1, 2, 3, 4]
        days[i, list(week)] = True
        days[i, [d + 7 for d in week]] = True
    return days


def _fixed_fill_predictions(rate: np.ndarray, deposit_pct: np.ndarray, cycle_sigma: float,
                            cum_factor: np.ndarray, pick: np.ndarray, seed: int,
                            samples: int = 64) -> np.ndarray:
    """For every bin and every option of ``FIXED_OPTIONS``: emptyings per fortnight, their
    summed fill at emptying (capped at 130 %) and how many are under 25 % full, shape
    (B, options, 3). Monte Carlo through the fill model's own law: a cycle factor per
    interval, compound-Poisson deposits with gamma sums, the pattern's effective days between
    visits at mid-shift, the 0-3 % residue. Common random numbers across options."""
    n = len(rate)
    rng = np.random.default_rng([seed, 0xCA1B])
    c = np.exp(rng.normal(-0.5 * cycle_sigma**2, cycle_sigma, (n, samples)))
    u = rng.uniform(0.0, 3.0, (n, samples))
    out = np.zeros((n, len(FIXED_OPTIONS), 3))
    mid_h = SHIFT_START_H + SHIFT_H // 2
    for k, opt in enumerate(FIXED_OPTIONS):
        days = _fixed_days_mask(np.full(n, opt), pick)
        for i in range(n):
            vd = np.flatnonzero(days[i])
            ends = np.r_[vd[1:], vd[0] + 14]
            eff = np.array([cum_factor[min(e * 24 + mid_h, len(cum_factor) - 1)]
                            - cum_factor[s * 24 + mid_h] for s, e in zip(vd, ends, strict=True)])
            a = rate[i] * c[i][None, :] * eff[:, None]  # expected fill added (J, M)
            size = deposit_pct[i]
            cnt = rng.poisson(a / size)
            added = np.where(cnt > 0, rng.gamma(np.maximum(cnt, 1), size), 0.0)
            lvl = np.minimum(130.0, u[i][None, :] + added)
            out[i, k] = (len(vd), lvl.mean(axis=1).sum(), (lvl < 25).mean(axis=1).sum())
    return out


def fixed_schedule(city: City, traits, stream: np.ndarray, n_streams: int, cfg: LoopConfig,
                   cum_factor: np.ndarray, cycle_sigma: float) -> FixedSchedule:
    """The fixed weekly schedule, today's practice, calibrated to what municipalities report.

    Visits per week per stream and container size are the fewest of ``FIXED_OPTIONS`` that
    keep the group's ``fixed_rate_quantile`` bin (true base rate: the planners' experience)
    below ``full_pct`` between visits. ``full_pct`` is calibrated before the warm-up: of all
    the settings that give a different schedule, those whose predicted mean fill at emptying
    (Monte Carlo through the fill model, :func:`_fixed_fill_predictions`) lies in the
    reported band, and of those the one whose predicted share under 25 % is nearest the
    reported share (:func:`_calibration_miss`); ``cfg.fixed_full_pct`` set skips it.
    """
    pick = np.random.default_rng([cfg.seed, 0xF1ED]).integers(0, 10, len(stream))
    vol = np.array([b.volume_l for b in city.bins])
    rate = traits.rate_pct_day
    groups, rq = np.zeros(len(stream), np.int64), []
    for s in range(n_streams):
        for v in np.unique(vol[stream == s]):
            sel = (stream == s) & (vol == v)
            groups[sel] = len(rq)
            rq.append(float(np.quantile(rate[sel], cfg.fixed_rate_quantile)))
    rq_a = np.asarray(rq)
    opts = np.asarray(FIXED_OPTIONS, float)

    def option_index(full_pct: float) -> np.ndarray:  # per group
        ok = 7 * rq_a[:, None] / opts[None, :] <= full_pct
        return np.where(ok.any(axis=1), ok.argmax(axis=1), len(opts) - 1)

    pred = _fixed_fill_predictions(rate, traits.deposit_pct, cycle_sigma, cum_factor, pick,
                                   cfg.seed)

    def figures(full_pct: float) -> tuple[float, float]:
        k = option_index(full_pct)[groups]
        e, f, u = pred[np.arange(len(stream)), k].sum(axis=0)
        return f / e, 100 * u / e

    if cfg.fixed_full_pct is not None:
        full = float(cfg.fixed_full_pct)
    else:  # the schedule changes only where a group's option does: try each such value
        cands = np.unique((7 * rq_a[:, None] / opts[None, :]).ravel())
        full = float(min(cands, key=lambda x: (*_calibration_miss(*figures(x)), x)))
    per_week = opts[option_index(full)][groups]
    mean, under25 = figures(full)
    return FixedSchedule(_fixed_days_mask(per_week, pick), per_week, full, mean, under25)


def _calibration_miss(mean_pct: float, under25_pct: float) -> tuple[float, float]:
    """How far a fixed schedule's predicted fill at emptying is from what municipalities
    report, for ordering: first the distance of the mean from the reported band (0 inside
    it), then the distance of the share under 25 % from the reported share."""
    lo, hi = FIXED_TARGET_MEAN_PCT
    return max(lo - mean_pct, mean_pct - hi, 0.0), abs(under25_pct - FIXED_TARGET_UNDER25_PCT)


@dataclass(frozen=True)
class FixedSchedule:
    """days: (B, 14) visit days over a fortnight starting on a Monday. per_week: (B,) visits
    per week. full_pct: the calibrated setting. predicted_mean_pct, predicted_under25_pct:
    the calibration's prediction of the mean fill at emptying and the share under 25 %."""

    days: np.ndarray
    per_week: np.ndarray
    full_pct: float
    predicted_mean_pct: float
    predicted_under25_pct: float


# ----------------------------------------------------------------------------------------
# the sensors
# ----------------------------------------------------------------------------------------
@dataclass
class _FaultArrays:
    bin: np.ndarray
    kind: np.ndarray  # index into KINDS
    start: np.ndarray
    end: np.ndarray
    mag: np.ndarray


_KINDS = list(fl.Kind)


def _fault_arrays(n: int, t0: int, t1: int, params, seed: int, empty_mm: np.ndarray
                  ) -> _FaultArrays:
    rows = []
    rates = fl.FaultRates()
    for i in range(n):
        for f in fl.schedule(i, t0, t1, rates, params, seed, float(empty_mm[i])):
            rows.append((i, _KINDS.index(f.kind), f.start_s, f.end_s, f.magnitude))
    a = np.array(rows, dtype=float).reshape(-1, 5)
    return _FaultArrays(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2], a[:, 3],
                        a[:, 4])


class _Sensors:
    """Hourly readings of every bin, faults applied, with the time each one arrives."""

    def __init__(self, world_params, traits, n: int, t0: int, hours: int, seed: int) -> None:
        self.p = world_params
        self.traits = traits
        self.rng = np.random.default_rng([seed, 0x5E45])
        self.phase = self.rng.uniform(0, HOUR, n)
        self.fill = np.full((hours, n), np.nan, np.float32)
        self.arrive = np.full((hours, n), np.inf)
        self.flag = np.zeros((hours, n), bool)
        self.emptied = np.zeros((hours, n), bool)
        self.faults = _fault_arrays(n, t0, t0 + hours * HOUR, world_params, seed,
                                    traits.empty_mm)
        self.stuck: dict[int, float] = {}
        self.t0 = t0

    def read(self, h: int, level: np.ndarray, just_emptied: np.ndarray) -> None:
        t = self.t0 + h * HOUR + self.phase
        mm = measure_many(self.p, level, self.traits, self.rng)
        true_mm = self.traits.empty_mm - level / 100 * (self.traits.empty_mm - self.traits.full_mm)
        # an overfull bin answers BLIND_ZONE, which the devices report as such (SensorError):
        # the readings carry it as "at least full", as the planning service reads it
        blind = np.isnan(mm) & (true_mm < BLIND_ZONE_MM)
        f = self.faults
        tc = self.t0 + h * HOUR + HOUR / 2
        act = np.flatnonzero((f.start <= tc) & (f.end > tc))
        arrive = t.copy()
        flag = np.zeros(len(level), bool)
        for j in act:
            b, kind, mag = int(f.bin[j]), _KINDS[int(f.kind[j])], float(f.mag[j])
            if kind is fl.Kind.OFFLINE:
                arrive[b] = max(arrive[b], f.end[j])
            elif kind is fl.Kind.TILT:
                flag[b] |= mag >= TILT_ALARM_DEG
            elif kind is fl.Kind.TIMEOUT:
                mm[b] = np.nan
                blind[b] = False
            elif kind is fl.Kind.STUCK:
                mm[b] = self.stuck.setdefault(j, mm[b])
                blind[b] = False
            elif np.isnan(mm[b]):
                continue
            elif kind is fl.Kind.NOISE:
                mm[b] = max(0.0, round(mm[b] + self.rng.normal(0, mag)))
            elif kind is fl.Kind.SPIKE and self.rng.random() < 0.5:
                mm[b] = max(0.0, mm[b] + self.rng.choice((-1, 1)) * mag)
            elif kind is fl.Kind.DRIFT:
                mm[b] = round(mm[b] + mag * (tc - f.start[j]) / DAY)
            elif kind is fl.Kind.GHOST and true_mm[b] > mag:
                mm[b] = round(mag + self.rng.normal(0, 3))
        tr = self.traits
        self.fill[h] = np.where(blind, BLIND_ZONE_FILL_PCT,
                                np.round(100 * (tr.empty_mm - mm) / (tr.empty_mm - tr.full_mm), 1))
        self.arrive[h] = arrive
        self.flag[h] = flag
        self.emptied[h] = just_emptied

    def history(self, h_now: int, now_s: float, days: float):
        """Flat arrays of the readings that have arrived by ``now_s`` in the last ``days``."""
        h0 = max(0, h_now - int(days * 24))
        arr = self.arrive[h0:h_now]
        ok = arr <= now_s
        hh, bb = np.nonzero(ok)
        t = self.t0 + (hh + h0) * HOUR + self.phase[bb]
        return (bb, t, self.fill[h0:h_now][ok].astype(float), self.emptied[h0:h_now][ok],
                self.flag[h0:h_now][ok])


# ----------------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------------
def run_policy(policy: str, cfg: LoopConfig, city: City | None = None,
               progress: Callable[[float], None] | None = None) -> PolicyStats:
    """Run one policy on the city of ``cfg.seed``; returns its figures over the evaluation
    weeks (the warm-up runs the fixed schedule and is not counted)."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    city = city or generate(cfg.bins, cfg.seed)
    params = load_params()
    n = len(city.bins)
    fleet, streams = city_fleet(city, cfg.fleet_per_type)
    si = {s: i for i, s in enumerate(streams)}
    stream = np.array([si[b.stream] for b in city.bins], np.int64)
    volume = np.array([b.volume_l for b in city.bins])
    lonlat = np.array([[b.lon, b.lat] for b in city.bins])
    site_codes = {s.id: i for i, s in enumerate(city.sites)}
    site = np.array([site_codes[b.site_id] for b in city.bins], np.int64)
    dens = read_density()
    rho = np.array([density_kg_m3(s, dens) for s in streams])
    ss = np.random.SeedSequence([cfg.seed, 0xC105])
    trait_seq, field_seq = ss.spawn(2)
    traits = draw_traits(params, [b.stream for b in city.bins], list(volume),
                         np.random.default_rng(trait_seq))
    t0 = int(dt.datetime.fromisoformat(cfg.start).replace(tzinfo=dt.UTC).timestamp())
    bf = BinField(params, traits, t0, np.random.default_rng(field_seq), step_s=cfg.step_s)
    hours = cfg.days * 24
    sensors = _Sensors(params, traits, n, t0, hours, cfg.seed)
    hour_factor = pattern_factor(params, t0 + np.arange(hours + 24 * 10) * HOUR + HOUR / 2)
    cum_factor = np.concatenate([[0.0], np.cumsum(hour_factor) / 24])  # effective days
    fixed = fixed_schedule(city, traits, stream, len(streams), cfg, cum_factor,
                           params.cycle_log_sigma)
    eval_from = t0 + cfg.warmup_days * DAY
    stats = PolicyStats(policy, cfg.seed, streams)
    for name in ("emptyings", "fill_sum", "under25", "tonnes", "bin_days", "overflow_days"):
        setattr(stats, name, np.zeros(len(streams)))
    stats.bins_per_stream = np.bincount(stream, minlength=len(streams)).astype(float)
    stats.weeks = cfg.weeks
    stats.fixed_full_pct = fixed.full_pct
    stats.fixed_predicted = (fixed.predicted_mean_pct, fixed.predicted_under25_pct)
    fparams = ForecastParams(**{**cfg.forecast.to_dict(), "history_days": cfg.history_days})
    forecaster = Forecaster(n, fparams, [site * len(streams) + stream, stream])
    pending: list[tuple[float, int]] = []  # (time, bin) visits of today's plan
    residue_rng = np.random.default_rng([cfg.seed, 0x2E51])
    cycle_rng = np.random.default_rng([cfg.seed, 0xC7C1])
    sig = params.cycle_log_sigma
    cycle_h = round(cfg.cycle_days * 24)
    cycle_due = cycle_rng.integers(0, cycle_h, n)
    just_emptied = np.zeros(n, bool)
    over_today = np.zeros(n, bool)
    stop_seed = cfg.seed
    trips = _Trips()
    over_since = np.zeros(n, bool)  # reached 100 % since the last plan
    watch: tuple[np.ndarray, np.ndarray] | None = None  # bins left out, their predicted risk
    for day in range(cfg.days):
        day_s = t0 + day * DAY
        counting = day_s >= eval_from
        weekday = int(((day_s // DAY) + 3) % 7)
        for hh in range(24):
            h = day * 24 + hh
            now = day_s + hh * HOUR
            if hh == PLAN_H and weekday < 5:
                use = policy if counting else "fixed"
                if use in ("forecast", "rule80") and forecaster.pattern is None and counting:
                    bb, tt, ff, ee, fg = sensors.history(h, now, cfg.warmup_days)
                    forecaster.fit(bb, tt, ff, ee, fg)
                if watch is not None:
                    stats.score_risk(watch[1], over_since[watch[0]])
                    watch = None
                plan, risk = _plan(use, cfg, now, h, day, weekday, sensors, forecaster, fleet,
                                   stream, volume, lonlat, bf, traits, cum_factor, fixed.days,
                                   stop_seed + day, trips)
                if counting and risk is not None:
                    left = np.ones(n, bool)
                    left[plan.bins] = False
                    left &= bf.level < 100.0
                    idx = np.flatnonzero(left)
                    next_plan = day_s + (1 if weekday < 4 else 3) * DAY + PLAN_H * HOUR
                    watch = (idx, np.asarray(risk(np.full(n, float(next_plan))), float)[idx])
                    over_since[:] = False
                shift0 = day_s + SHIFT_START_H * HOUR
                pending = sorted(zip((shift0 + plan.service_start_s).tolist(),
                                     plan.bins.tolist(), strict=True))
                if counting:
                    stats.km += plan.distance_m / 1000
                    stats.truck_hours += plan.truck_hours
                    stats.trucks_per_day.append(plan.trucks_used)
                    stats.planning_s.append(plan.planning_s)
                    stats.violations += len(plan.violations)
            # the hour passes: fill, emptyings at their planned times, overflows
            end = now + HOUR
            while bf.t_s + bf.step_s <= end:
                bf.advance_to(bf.t_s + bf.step_s)
                while pending and pending[0][0] <= bf.t_s:
                    _, b = pending.pop(0)
                    # emptied as BinField.empty does, but the residue comes from our own
                    # stream and the cycle factor stays: see "Same waste for every policy"
                    before = float(bf.level[b])
                    bf.level[b] = residue_rng.uniform(0.0, 3.0)
                    bf.overfull[b] = False
                    just_emptied[b] = True
                    if counting:
                        s = stream[b]
                        stats.emptyings[s] += 1
                        stats.fill_sum[s] += min(before, 130.0)
                        stats.under25[s] += before < 25
                        stats.tonnes[s] += volume[b] / 1000 * min(before, 130.0) / 100 \
                            * rho[s] / 1000
                over_today |= bf.level >= 100.0
                over_since |= bf.level >= 100.0
            sensors.read(h, bf.level, just_emptied)
            redraw = cycle_due == h
            if redraw.any():
                bf.cycle[redraw] = np.exp(cycle_rng.normal(-0.5 * sig**2, sig, int(redraw.sum())))
                cycle_due[redraw] += cycle_h
            just_emptied[:] = False
        if counting:
            stats.bin_days += stats.bins_per_stream
            stats.overflow_days += np.bincount(stream[over_today], minlength=len(streams))
        over_today[:] = False
        if progress is not None:
            progress((day + 1) / cfg.days)
    return stats


def _workday_ends(day_s: int, weekday: int, count: int) -> np.ndarray:
    """End of the shifts of the next ``count`` working days after the day at ``day_s``."""
    out, d, wd = [], day_s, weekday
    while len(out) < count:
        d += DAY
        wd = (wd + 1) % 7
        if wd < 5:
            out.append(d + (SHIFT_START_H + SHIFT_H) * HOUR)
    return np.asarray(out, float)


@dataclass
class _Trips:
    """Trips of the forecast-driven policies (``routing.select``): the streams' groups, and
    the look-aheads of the day's plan, from that day's rates as the planning service
    (``backend.planning``) computes them."""

    group: np.ndarray | None = None  #: (S,)
    lookahead: np.ndarray | None = None  #: (B,) working days


def _opportunities(trips: _Trips, rate: np.ndarray, stream: np.ndarray, fleet: Fleet,
                   params: SelectParams, day_s: int, weekday: int,
                   p_until: Callable[[np.ndarray], np.ndarray]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin: whether its group of streams makes a trip today, and the end of the shift of
    its next opportunity and of the one after. A group makes a trip when one of its bins would
    overflow before the next working day with more than ``trip_risk`` probability; the bins
    of a group on a trip have their next opportunity their stream's look-ahead away, the
    others the next working day."""
    if trips.group is None:
        trips.group = stream_groups(fleet.capacity_l)
    # from each day's rates, as the planning service does (backend.planning)
    trips.lookahead = lookahead_days(rate, stream, trips.group, params)[stream]
    look = trips.lookahead
    ends = _workday_ends(day_s, weekday, int(2 * look.max()))
    trip, k_next, k_after = opportunities(p_until(np.full(len(stream), ends[0])), stream,
                                          trips.group, look, params)
    return trip, ends[k_next - 1], ends[k_after - 1]


def _plan(policy, cfg, now, h, day, weekday, sensors, forecaster, fleet, stream, volume,
          lonlat, bf, traits, cum_factor, fixed_days, seed, trips
          ) -> tuple[DayPlan, Callable[[np.ndarray], np.ndarray] | None]:
    """The day's plan, and for the policies that plan by risk, the probability per bin of
    reaching 100 % before a time (one per bin) that it worked with."""
    n = len(stream)
    risk = None
    day_s = now - PLAN_H * HOUR
    mid = day_s + (SHIFT_START_H + SHIFT_H / 2) * HOUR
    stop = (MaxIterations(cfg.route_iterations) if cfg.route_iterations > 0
            else MaxRuntime(cfg.route_s))
    t_plan = time.perf_counter()
    required = avail = None
    if policy == "fixed":
        required = fixed_days[:, int((day_s // DAY - 4) % 14)].copy()  # 1970-01-05: Monday
        lvl = np.full(n, 50.0)
        p1 = p2 = np.zeros(n)
    elif policy in ("forecast", "rule80"):
        bb, tt, ff, ee, fg = sensors.history(h, now, cfg.history_days)
        fc = forecaster.forecast(bb, tt, ff, now, ee, fg)
        lvl = fc.expected_level_pct(mid)
        if policy == "rule80":
            required = ~(fc.level_pct < 80.0)  # NaN (no reading at all) counts as full
            p1 = p2 = np.zeros(n)
        else:
            avail, nxt, after = _opportunities(trips, fc.rate_pct_day, stream, fleet,
                                               cfg.select, day_s, weekday,
                                               fc.overflow_probability)
            p1 = fc.overflow_probability(nxt)
            p2 = fc.overflow_probability(after)
            risk = fc.overflow_probability
    else:  # perfect knowledge: true level, true cycle rate, true weekday x hour pattern
        rate = traits.rate_pct_day * bf.cycle
        t_start = now - h * HOUR  # cum_factor counts effective days per hour from here

        def added(until) -> np.ndarray:  # until: scalar or one time per bin
            k = np.minimum(np.round((np.asarray(until, float) - t_start) / HOUR).astype(int),
                           len(cum_factor) - 1)
            return rate * (cum_factor[k] - cum_factor[h])

        lvl = bf.level + added(mid)
        dispersion = 2 * traits.deposit_pct

        def p_over(until) -> np.ndarray:
            a = added(until)
            sd = np.sqrt(np.maximum(dispersion * a, 1e-9))
            return np.where(bf.level >= 100, 1.0, 1.0 - ndtr((100.0 - bf.level - a) / sd))

        avail, nxt, after = _opportunities(trips, traits.rate_pct_day, stream, fleet,
                                           cfg.select, day_s, weekday, p_over)
        p1, p2 = p_over(nxt), p_over(after)
        risk = p_over
    pre_s = time.perf_counter() - t_plan
    bins = DayBins(lonlat, stream, volume, np.asarray(lvl, float), np.asarray(p1, float),
                   np.asarray(p2, float))
    plan = plan_day(bins, fleet, stop, cfg.select, seed=seed, required=required,
                    available=avail)
    return DayPlan(plan.bins, plan.required, plan.offered, plan.accepted_risk,
                   plan.service_start_s, plan.truck, plan.result, plan.data,
                   plan.planning_s + pre_s, plan.violations), risk

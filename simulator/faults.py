"""Seeded fault schedules for virtual devices, and what each fault does to a measurement.

A schedule is a tuple of :class:`Fault` windows per device, drawn from per-kind rates
(expected windows per device per 30 days) plus the natural outages and lid tilt excursions
fitted on the real data (``gap_*`` and ``tilt_event*`` parameters). Pure: the same seed,
device index and period give the same schedule, whichever mode runs it. Tests build schedules
by hand with :func:`single`.

Kinds and their effect while active:

* ``noise``: extra Gaussian noise of ``magnitude`` mm; ``spike``: half the readings are off by
  ``magnitude`` mm; ``timeout``: no echo (``err [1]``, ``SENSOR_ERROR``); ``stuck``: the distance
  stays at what it was at the start; ``drift``: the distance grows by ``magnitude`` mm per day;
  ``ghost``: a false echo at ``magnitude`` mm; ``tilt``: the lid is tilted ``magnitude`` degrees;
  ``fire``: the lid reads ``magnitude`` °C; ``offline``: no Wi-Fi or broker, readings stay
  buffered; ``reboot`` (a point, start == end): power cut, boot count up, the clock is lost until
  the next connect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from simulator.fill_model import FillParams, Measurement


class Kind(StrEnum):
    NOISE = "noise"
    SPIKE = "spike"
    TIMEOUT = "timeout"
    STUCK = "stuck"
    DRIFT = "drift"
    GHOST = "ghost"
    TILT = "tilt"
    FIRE = "fire"
    OFFLINE = "offline"
    REBOOT = "reboot"


@dataclass(frozen=True)
class Fault:
    kind: Kind
    start_s: int
    end_s: int
    magnitude: float = 0.0

    def active(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s


@dataclass(frozen=True)
class FaultRates:
    """Expected windows per device per 30 days, and mean window length [h]. Defaults are
    assumptions for a realistic but eventful fleet; a config file can set every one."""

    noise: float = 0.2
    spike: float = 0.2
    timeout: float = 0.3
    stuck: float = 0.05
    drift: float = 0.05
    ghost: float = 0.1
    tilt: float = 0.1
    fire: float = 0.005
    offline: float = 0.3
    reboot: float = 0.2
    natural_gaps: bool = True  #: add the outages fitted on the Frankfurt data
    natural_tilt: bool = True  #: add the lid tilt excursions fitted on the Frankfurt data
    hours: dict[str, float] = field(
        default_factory=lambda: {
            "noise": 48, "spike": 24, "timeout": 12, "stuck": 72, "drift": 240, "ghost": 96,
            "tilt": 6, "fire": 2, "offline": 24,
        }
    )

    def __post_init__(self) -> None:
        for k in Kind:
            if getattr(self, k.value) < 0:
                raise ValueError(f"{k.value}: rate must be >= 0")


MAGNITUDE = {
    Kind.NOISE: 60.0, Kind.SPIKE: 400.0, Kind.DRIFT: 15.0, Kind.TILT: 80.0, Kind.FIRE: 300.0,
}


def schedule(
    device_index: int,
    t0_s: int,
    t1_s: int,
    rates: FaultRates,
    params: FillParams,
    seed: int,
    empty_mm: float = 1000.0,
) -> tuple[Fault, ...]:
    rng = np.random.default_rng([seed, 0xFA17, device_index])
    span_days = (t1_s - t0_s) / 86400
    out: list[Fault] = []
    for kind in Kind:
        n = int(rng.poisson(getattr(rates, kind.value) * span_days / 30))
        for _ in range(n):
            start = int(rng.uniform(t0_s, t1_s))
            if kind is Kind.REBOOT:
                out.append(Fault(kind, start, start))
                continue
            hours = rng.exponential(rates.hours.get(kind.value, 24))
            magnitude = (
                round(float(rng.uniform(0.3, 0.6) * empty_mm))
                if kind is Kind.GHOST
                else MAGNITUDE.get(kind, 0.0)
            )
            out.append(Fault(kind, start, start + max(60, int(hours * 3600)), magnitude))
    if rates.natural_gaps and params.gap_per_hour > 0:
        n = int(rng.poisson(params.gap_per_hour * span_days * 24))
        for _ in range(n):
            start = int(rng.uniform(t0_s, t1_s))
            hours = float(np.exp(rng.normal(params.gap_log_mu, params.gap_log_sigma)))
            out.append(Fault(Kind.OFFLINE, start, start + int(hours * 3600)))
    if rates.natural_tilt and params.tilt_events_per_30d > 0 and params.tilt_event_deg:
        # the data's excursions: single readings of 10-180° (a lid left open, a bin knocked),
        # next to the ``tilt`` rate above, which is an assumption for longer events
        n = int(rng.poisson(params.tilt_events_per_30d * span_days / 30))
        for _ in range(n):
            start = int(rng.uniform(t0_s, t1_s))
            angle = float(rng.choice(np.asarray(params.tilt_event_deg)))
            out.append(Fault(Kind.TILT, start, start + max(60, int(params.tilt_event_h * 3600)),
                             angle))
    return tuple(sorted(out, key=lambda f: (f.start_s, f.kind.value)))


def single(kind: Kind | str, start_s: int, hours: float = 0.0, magnitude: float | None = None
           ) -> Fault:
    k = Kind(kind)
    mag = MAGNITUDE.get(k, 0.0) if magnitude is None else magnitude
    return Fault(k, start_s, start_s + int(hours * 3600), mag)


@dataclass
class FaultState:
    """What a device's faults need to remember between wakes (stuck value)."""

    stuck_mm: dict[int, int | None] = field(default_factory=dict)


def apply(
    faults: tuple[Fault, ...],
    t_s: float,
    m: Measurement,
    rng: np.random.Generator,
    state: FaultState,
    true_mm: float,
) -> tuple[Measurement, set[Kind]]:
    """The measurement as the faulty sensor reports it, and which faults acted on it."""
    acting: set[Kind] = set()
    for idx, f in enumerate(faults):
        if not f.active(t_s) or f.kind in (Kind.OFFLINE, Kind.REBOOT, Kind.TILT, Kind.FIRE):
            continue
        acting.add(f.kind)
        if f.kind is Kind.TIMEOUT:
            m = Measurement(None, (1,))
        elif f.kind is Kind.STUCK:
            if idx not in state.stuck_mm:
                state.stuck_mm[idx] = m.mm
            stuck = state.stuck_mm[idx]
            m = Measurement(stuck, () if stuck is not None else (1,))
        elif m.mm is None:
            continue
        elif f.kind is Kind.NOISE:
            m = Measurement(max(0, round(m.mm + rng.normal(0, f.magnitude))))
        elif f.kind is Kind.SPIKE:
            if rng.random() < 0.5:
                m = Measurement(max(0, int(m.mm + rng.choice((-1, 1)) * f.magnitude)), spike=True)
        elif f.kind is Kind.DRIFT:
            m = Measurement(round(m.mm + f.magnitude * (t_s - f.start_s) / 86400))
        elif f.kind is Kind.GHOST and true_mm > f.magnitude:
            m = Measurement(round(f.magnitude + rng.normal(0, 3)), ghost=True)
    return m, acting


def active_value(faults: tuple[Fault, ...], kind: Kind, t_s: float) -> float | None:
    for f in faults:
        if f.kind is kind and f.active(t_s):
            return f.magnitude
    return None


def offline(faults: tuple[Fault, ...], t_s: float) -> bool:
    return any(f.kind is Kind.OFFLINE and f.active(t_s) for f in faults)


def reboots_between(faults: tuple[Fault, ...], a_s: float, b_s: float) -> list[int]:
    """Reboot times in (a, b]."""
    return [f.start_s for f in faults if f.kind is Kind.REBOOT and a_s < f.start_s <= b_s]

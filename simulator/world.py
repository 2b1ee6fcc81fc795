"""The simulated world both modes share: true levels, collections, sensors, faults, devices, truth.

``World`` owns the bin field, the collection visits, the fault schedules and the virtual devices'
state machines, and writes the ground truth. The fleet drives it in simulated-time order:
``advance(t)`` moves the true levels (and emptyings, overflows, level samples) up to ``t``, then
``wake(i, t)`` makes device ``i`` take its reading. What happens on the network afterwards is the
mode's business (in process, or through a real broker); the readings do not depend on it, so
the same seed gives the same readings in both modes.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import MISSING, dataclass, field
from pathlib import Path

import numpy as np

from simulator import faults as fl
from simulator.city import City
from simulator.collections import Collections, FixedPlan, fixed_plan, fixed_visits
from simulator.device import Entry, VirtualDevice
from simulator.fill_model import (
    BinField,
    FillParams,
    draw_traits,
    fill_from_mm,
    load_params,
    measure,
    temperature_c,
    true_distance_mm,
)
from simulator.truth import Truth
from smartbins import protocol as p

# the protocol's flags as plain ints: an IntFlag operation builds an enum member each time,
# which was a tenth of a wake
_SENSOR_ERROR, _FIRE, _TILT, _LOW_BATTERY, _NEAR_FULL = (
    int(p.Flag.SENSOR_ERROR), int(p.Flag.FIRE), int(p.Flag.TILT), int(p.Flag.LOW_BATTERY),
    int(p.Flag.NEAR_FULL),
)

_CONFIG_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(p.DeviceConfig) if f.default is not MISSING
}


@dataclass(frozen=True)
class DeviceDefaults:
    """The config every virtual device starts with (the retained config's values)."""

    # The protocol's config defaults, named once there (smartbins.protocol.DeviceConfig).
    interval_s: int = _CONFIG_DEFAULTS["interval_s"]
    interval_near_full_s: int = _CONFIG_DEFAULTS["interval_near_full_s"]
    interval_low_battery_s: int = _CONFIG_DEFAULTS["interval_low_battery_s"]
    near_full_pct: float = _CONFIG_DEFAULTS["near_full_pct"]
    low_battery_mv: int = _CONFIG_DEFAULTS["low_battery_mv"]
    fire_temp_c: float = _CONFIG_DEFAULTS["fire_temp_c"]
    fire_rise_c: float = _CONFIG_DEFAULTS["fire_rise_c"]
    tilt_deg: float = _CONFIG_DEFAULTS["tilt_deg"]
    buffer_capacity: int = 2000

    def __post_init__(self) -> None:
        if not 10 <= self.interval_s <= 604800:
            raise ValueError(f"interval_s: {self.interval_s} must be 10..604800")
        if self.buffer_capacity < 1:
            raise ValueError("buffer_capacity: must be at least 1")


@dataclass
class WorldOptions:
    seed: int
    start_s: int
    days: float
    defaults: DeviceDefaults = field(default_factory=DeviceDefaults)
    rates: fl.FaultRates = field(default_factory=fl.FaultRates)
    fixed_schedule: bool = True
    level_every_s: int = 3600
    step_s: int = 300


class World:
    def __init__(
        self,
        city: City,
        options: WorldOptions,
        truth: Truth,
        params: FillParams | None = None,
        collections: Collections | None = None,
        device_faults: dict[int, tuple[fl.Fault, ...]] | None = None,
    ) -> None:
        self.city = city
        self.opt = options
        self.params = params or load_params()
        self.truth = truth
        ss = np.random.SeedSequence([options.seed, 0x51A])
        field_seq, trait_seq, dev_seq = ss.spawn(3)
        n = len(city.bins)
        self.traits = draw_traits(
            self.params, [b.stream for b in city.bins], [b.volume_l for b in city.bins],
            np.random.default_rng(trait_seq),
        )
        self.field = BinField(
            self.params, self.traits, options.start_s, np.random.default_rng(field_seq),
            step_s=options.step_s,
        )
        self.rngs = [np.random.default_rng(s) for s in dev_seq.spawn(n)]
        #: the sensor traits a wake reads, as Python floats (indexing numpy per wake is slow)
        self._sensor = list(zip(
            self.traits.empty_mm.tolist(), self.traits.full_mm.tolist(),
            self.traits.ghost_mm.tolist(), self.traits.ghost_share.tolist(), strict=True))
        self.end_s = options.start_s + int(options.days * 86400)
        self.bin_ids = [b.id for b in city.bins]
        self.index = {b: i for i, b in enumerate(self.bin_ids)}
        self.collections = collections or Collections()
        self.plan: FixedPlan | None = None
        if options.fixed_schedule:
            self.plan = fixed_plan(self.traits.rate_pct_day, options.seed)
            self.collections.add(
                fixed_visits(self.plan, self.bin_ids, options.start_s, self.end_s + 1)
            )
        d = options.defaults
        self.devices: list[VirtualDevice] = []
        self.faults: list[tuple[fl.Fault, ...]] = []
        self.fault_state = [fl.FaultState() for _ in range(n)]
        self.last_wake_s = [options.start_s] * n
        self.prev_temp: list[float | None] = [None] * n
        start_ms = options.start_s * 1000
        for i in range(n):
            dev_id = city.device_id(i)
            cfg = p.DeviceConfig(
                dev_id, max(start_ms, p.TS_MIN_MS), 1, int(self.traits.empty_mm[i]),
                int(self.traits.full_mm[i]), d.interval_s, d.interval_near_full_s,
                d.interval_low_battery_s, d.near_full_pct, d.low_battery_mv, d.fire_temp_c,
                d.fire_rise_c, d.tilt_deg,
            )
            dev = VirtualDevice(dev_id, cfg, capacity=d.buffer_capacity, boot_at_ms=start_ms)
            dev.reboot(start_ms)  # first power-on: boot 1, clock unknown until first connect
            dev.on_drop = self._drop_recorder(dev_id)
            self.devices.append(dev)
            if device_faults is not None:
                self.faults.append(tuple(device_faults.get(i, ())))
            else:
                self.faults.append(
                    fl.schedule(i, options.start_s, self.end_s, options.rates, self.params,
                                options.seed, float(self.traits.empty_mm[i]))
                )
        self.rssi = [int(-55 - 30 * r.random()) for r in self.rngs]
        #: each lid's mounting angle [°], drawn from the sensors observed (one in 35 sits at
        #: 41°), from a stream of its own so every other draw stays where it was
        self.tilt_mount = np.random.default_rng([options.seed, 0x7117]).choice(
            np.asarray(self.params.tilt_mount_deg or (0.0,)), n).tolist()
        self.next_level_s = options.start_s
        self.overflow_count = 0
        self.emptying_count = 0
        self._write_static()

    # ------------------------------------------------------------------ truth

    def _drop_recorder(self, dev_id: str):
        def record(seq: int, t_ms: int) -> None:
            self.truth.add("dropped", (dev_id, seq, t_ms))

        return record

    def _write_static(self) -> None:
        t = self.traits
        self.truth.meta(
            seed=self.opt.seed, bins=len(self.bin_ids), days=self.opt.days,
            start_ms=self.opt.start_s * 1000, params_version=self.params.version,
            fixed_schedule=self.opt.fixed_schedule,
        )
        self.truth.add_many(
            "bins",
            (
                (b.id, self.city.device_id(i), b.stream, b.volume_l, float(t.rate_pct_day[i]),
                 float(t.empty_mm[i]), float(t.full_mm[i]), float(t.ghost_mm[i]))
                for i, b in enumerate(self.city.bins)
            ),
        )
        self.truth.add_many(
            "faults",
            (
                (self.city.device_id(i), f.kind.value, f.start_s * 1000, f.end_s * 1000,
                 f.magnitude)
                for i, fs in enumerate(self.faults) for f in fs
            ),
        )

    # ------------------------------------------------------------------ time

    def advance(self, t_s: float) -> None:
        """Move the true world to ``t_s`` in fixed steps: deposits, emptyings, overflows, and a
        level sample of every bin every ``level_every_s``."""
        f = self.field
        while f.t_s + f.step_s <= t_s:
            for i, t_over in f.advance_to(f.t_s + f.step_s):
                self.overflow_count += 1
                self.truth.add("overflows", (self.bin_ids[i], t_over * 1000))
            for v in self.collections.pop_due(f.t_s):
                i = self.index.get(v.bin_id)
                if i is None:
                    continue
                before = f.empty(i)
                self.emptying_count += 1
                self.truth.add(
                    "emptyings",
                    (v.bin_id, v.t_s * 1000, before, float(f.level[i]), v.truck, v.source),
                )
            if f.t_s >= self.next_level_s:
                t_ms = f.t_s * 1000
                self.truth.add_many(
                    "levels",
                    zip(self.bin_ids, [t_ms] * len(self.bin_ids),
                        np.round(f.level, 2).tolist(), strict=True),
                )
                self.next_level_s += self.opt.level_every_s

    def first_wake(self, i: int) -> int:
        """Devices start at a random phase of their interval, so wakes spread evenly."""
        return self.opt.start_s + int(self.rngs[i].uniform(0, self.opt.defaults.interval_s))

    # ------------------------------------------------------------------ a wake

    def wake(self, i: int, t_s: int) -> tuple[Entry, int]:
        """Device ``i`` wakes at ``t_s`` and takes its reading; returns the buffer entry and the
        time of its next wake."""
        dev = self.devices[i]
        faults = self.faults[i]
        for t_boot in fl.reboots_between(faults, self.last_wake_s[i], t_s):
            dev.reboot(t_boot * 1000)
        self.last_wake_s[i] = t_s
        rng = self.rngs[i]
        level = float(self.field.level[i])
        empty, full, ghost_mm, ghost_share = self._sensor[i]
        m = measure(self.params, level, empty, full, ghost_mm, ghost_share, rng)
        m, acting = fl.apply(faults, t_s, m, rng, self.fault_state[i],
                             true_distance_mm(level, empty, full))
        cfg = dev.config
        temp = fl.active_value(faults, fl.Kind.FIRE, t_s)
        if temp is not None:
            acting.add(fl.Kind.FIRE)
        else:
            temp = temperature_c(self.params, t_s, rng)
        tilt = fl.active_value(faults, fl.Kind.TILT, t_s)
        if tilt is not None:
            acting.add(fl.Kind.TILT)
        else:
            jitter = float(rng.normal(0, self.params.tilt_jitter_deg))
            tilt = round(abs(self.tilt_mount[i] + jitter), 1)
        days = (t_s - self.opt.start_s) / 86400
        bat = int(self.params.battery_start_mv + self.params.battery_mv_per_day * days)
        flags = 0
        fill = None if m.mm is None else fill_from_mm(m.mm, cfg.empty_mm, cfg.full_mm)
        if m.mm is None:
            flags |= _SENSOR_ERROR
        prev = self.prev_temp[i]
        if temp >= cfg.fire_temp_c or (prev is not None and temp - prev >= cfg.fire_rise_c):
            flags |= _FIRE
        self.prev_temp[i] = temp
        if tilt >= cfg.tilt_deg:
            flags |= _TILT
        if bat < cfg.low_battery_mv:
            flags |= _LOW_BATTERY
        if fill is not None and fill >= cfg.near_full_pct:
            flags |= _NEAR_FULL
        interval = dev.interval_s(fill, temp, bat)
        if flags & _FIRE:
            interval = cfg.interval_near_full_s
        fields: dict[str, object] = {
            "interval_s": interval, "distance_mm": m.mm, "fill_pct": fill, "temp_c": temp,
            "tilt_deg": tilt, "battery_mv": bat, "rssi_dbm": self.rssi[i],
            "errors": m.errors,
        }
        entry = dev.take_reading(t_s * 1000, fields, flags)
        labels = sorted(k.value for k in acting)
        # the fitted model's own ghost echoes and spikes, told apart from scheduled faults
        if m.ghost and fl.Kind.GHOST not in acting:
            labels.append("natural_ghost")
        if m.spike and fl.Kind.SPIKE not in acting:
            labels.append("natural_spike")
        self.truth.add(
            "readings",
            (dev.id, entry.seq, entry.boot, t_s * 1000, round(level, 2), m.mm, fill,
             entry.flags, ",".join(labels)),
        )
        return entry, t_s + interval

    def offline(self, i: int, t_s: float) -> bool:
        return fl.offline(self.faults[i], t_s)

    def close(self, path: Path | None = None) -> None:
        self.truth.flush()


def start_for(days: float, now_s: float | None = None) -> int:
    """Simulated start: far enough in the past that the run's end is before real now."""
    now_s = time.time() if now_s is None else now_s
    return int((now_s - days * 86400 - 86400) // 3600 * 3600)

"""`smartbins simulate`'s config file: what to simulate and the fault rates (TOML, unknown keys
are errors; flags given on the command line win)."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from simulator import faults as fl

_RATES = {f.name: f.default for f in fields(fl.FaultRates) if f.default is not MISSING}


@dataclass(frozen=True)
class FaultConfig:
    """Expected fault windows per device per 30 days (see simulator/faults.py)."""

    # The defaults are FaultRates' own, stated once in simulator/faults.py.
    noise: float = _RATES["noise"]
    spike: float = _RATES["spike"]
    timeout: float = _RATES["timeout"]
    stuck: float = _RATES["stuck"]
    drift: float = _RATES["drift"]
    ghost: float = _RATES["ghost"]
    tilt: float = _RATES["tilt"]
    fire: float = _RATES["fire"]
    offline: float = _RATES["offline"]
    reboot: float = _RATES["reboot"]
    natural_gaps: bool = _RATES["natural_gaps"]
    natural_tilt: bool = _RATES["natural_tilt"]

    def rates(self) -> fl.FaultRates:
        return fl.FaultRates(**{k: getattr(self, k) for k in self.__dataclass_fields__})

    def __post_init__(self) -> None:
        for k in self.__dataclass_fields__:
            v = getattr(self, k)
            if not isinstance(v, bool) and v < 0:
                raise ValueError(f"{k}: {v} must be >= 0 (windows per device per 30 days)")


@dataclass(frozen=True)
class SimulateConfig:
    bins: int = 100
    days: float = 7.0
    seed: int = 1
    speed: float = 3600.0  #: simulated seconds per real second (broker mode)
    fast: bool = False
    schedule: Path | None = None  #: collection schedule CSV (bin_id,time,truck); else fixed
    out: Path | None = None
    interval_s: int = 3600
    buffer_capacity: int = 2000
    level_every_s: int = 3600  #: true level of every bin sampled this often into the truth
    faults: FaultConfig = field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        if self.bins < 1:
            raise ValueError(f"bins: {self.bins} must be at least 1")
        if self.days <= 0:
            raise ValueError(f"days: {self.days} must be positive")
        if self.speed <= 0:
            raise ValueError(f"speed: {self.speed} must be positive")
        if not 10 <= self.interval_s <= 604800:
            raise ValueError(f"interval_s: {self.interval_s} must be 10..604800 seconds")
        if self.level_every_s < 60:
            raise ValueError(f"level_every_s: {self.level_every_s} must be at least 60 seconds")

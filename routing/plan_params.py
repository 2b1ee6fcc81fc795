"""Validated parameters of the forecaster and the bin selection, loadable from TOML.

Shaped like ``routing.params.RoutingParams``: frozen dataclasses whose ``__post_init__``
names the offending value and the fix, ``from_dict`` refuses unknown keys and wrong types,
``from_file`` reads ``key = value`` lines (an empty file gives the defaults).
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Self


class _Loadable:
    """``from_file`` / ``from_dict`` / ``to_dict`` shared by the parameter classes."""

    @classmethod
    def from_file(cls, path: str | Path) -> Self:
        """Load from a TOML file of ``key = value`` lines; an empty file gives the defaults."""
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "<dict>") -> Self:
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        for key, value in raw.items():
            if key not in known:
                raise ValueError(
                    f"{source}: unknown key {key!r}; known keys are {', '.join(sorted(known))}"
                )
            default = known[key].default
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{source}: key {key!r} must be true or false, got {value!r}")
            elif isinstance(default, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{source}: key {key!r} must be a whole number, got {value!r}")
            elif isinstance(default, float) and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ValueError(f"{source}: key {key!r} must be a number, got {value!r}")
        try:
            return cls(**{k: (float(v) if isinstance(known[k].default, float) else v)
                          for k, v in raw.items()})
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


def _positive(name: str, value: float, hint: str) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}; {hint}")


@dataclass(frozen=True)
class ForecastParams(_Loadable):
    """How readings are cleaned and fill rates estimated. Defaults are generic, not fitted.

    utc_offset_h: standard (winter) offset of the bins' local time from UTC [h]; people fill
        bins by local time. eu_dst: add an hour between the last Sundays of March and October
        (01:00 UTC), as everywhere in the EU.
    valid_min_pct, valid_max_pct: readings outside are error codes (a 254-cm code maps far
        below 0 %) [%].
    ghost_min_share: a single level that holds at least this share of a bin's readings, and
        three times as many as the levels beside it, is a fixed false echo and dropped [-].
    spike_pct: an hourly level this far from the running median of its 5 hours is a spike [%].
    stuck_h: a level repeated exactly for this long is a stuck sensor; the repeats are
        dropped [h].
    emptying_drop_pct: a fall of the 6-hour median by at least this much is an emptying [%].
    level_window_h: valid hours used for the current level (rate-corrected median) [h].
    history_days: hours older than this before the forecast time are not looked at [d].
    min_cycle_days: shortest fill cycle whose rate counts for a bin's history: a shorter one
        holds few deposits, and an emptying found from readings can be false [effective d].
    min_pool_bins: a pool (site, area, stream) serves as prior only with this many bins
        that have a rate history; otherwise the next coarser pool is used.
    band: central probability of the uncertainty band [-].
    """

    utc_offset_h: float = 1.0
    eu_dst: bool = True
    valid_min_pct: float = -15.0
    valid_max_pct: float = 150.0
    ghost_min_share: float = 0.04
    spike_pct: float = 12.0
    stuck_h: float = 36.0
    emptying_drop_pct: float = 20.0
    level_window_h: float = 12.0
    history_days: float = 120.0
    min_cycle_days: float = 2.0
    min_pool_bins: int = 3
    band: float = 0.8

    def __post_init__(self) -> None:
        if not -12.0 <= self.utc_offset_h <= 14.0:
            raise ValueError(
                f"utc_offset_h must be in [-12, 14], got {self.utc_offset_h}; Denmark is 1.0"
            )
        if not self.valid_min_pct < self.valid_max_pct:
            raise ValueError(
                f"valid_min_pct ({self.valid_min_pct}) must be below valid_max_pct "
                f"({self.valid_max_pct}); try -15 and 150"
            )
        if not 0.0 < self.ghost_min_share < 1.0:
            raise ValueError(
                f"ghost_min_share must be in (0, 1), got {self.ghost_min_share}; try 0.04"
            )
        _positive("spike_pct", self.spike_pct, "try 12")
        _positive("stuck_h", self.stuck_h, "try 36")
        _positive("emptying_drop_pct", self.emptying_drop_pct, "try 20")
        _positive("level_window_h", self.level_window_h, "try 12")
        _positive("history_days", self.history_days, "try 120")
        _positive("min_cycle_days", self.min_cycle_days, "try 2")
        if self.min_pool_bins < 1:
            raise ValueError(f"min_pool_bins must be >= 1, got {self.min_pool_bins}; try 3")
        if not 0.0 < self.band < 1.0:
            raise ValueError(f"band must be in (0, 1), got {self.band}; 0.8 is the 10-90 % band")


@dataclass(frozen=True)
class SelectParams(_Loadable):
    """Which bins a day's plan must, may and need not empty.

    max_risk: a bin whose probability of overflowing before the next opportunity exceeds
        this is a required stop [-]. The knob between overflows and kilometres: the default
        goes with trips (a trip's next opportunity is its look-ahead away) and was chosen in
        the closed loop, with ``candidate_min_pct``, so that the plan overflows less than a
        fixed schedule calibrated to municipal fill figures (docs/forecast.md), not on real
        data. Without trips (every stream out every working day) about 0.15.
    overflow_pct: the level counted as overflowing [%].
    candidate_min_pct: a bin expected at least this full at today's service is offered to the
        router as an optional stop [%]. Lower offers more bins on the way (fewer overflows,
        more emptyings); in the closed loop 75 gave the fewest km per tonne at 2,000 bins.
    prize_scale: prize of an optional stop, as a multiple of the typical cost of reaching a
        stop among its neighbours, for a bin expected full; it falls with the square of the
        expected fill [-].
    risk_prize: extra prize per unit of overflow probability before the opportunity after the
        next, in the same multiples [-].
    service_s_base, service_s_per_m3: time at a stop: base plus per m³ of container [s].
    trip_risk: trips (``routing.select``): a group of streams that share trucks goes out only
        when one of its bins would overflow before the next working day with more than this
        probability (or has no reading); below 1, so a bin certain to overflow always makes
        its trip [-]. Applied by the caller (the closed loop; ``plan_day(available=...)``).
    trip_min_stops: a trip takes the bins at risk (``max_risk``) before its look-ahead, the
        shortest of ``lookahead_options`` that gathers this many expected emptyings; the risk
        of those bins is judged against that next opportunity. 0: one day ahead [-].
    lookahead_loss_pct: a stream's look-ahead is at most what its median bin fills by no
        more than this [%] (the cost of emptying early).
    lookahead_options: the look-aheads a stream may get [working days].
    """

    max_risk: float = 0.95
    overflow_pct: float = 100.0
    candidate_min_pct: float = 75.0
    prize_scale: float = 1.0
    risk_prize: float = 1.0
    service_s_base: float = 60.0
    service_s_per_m3: float = 40.0
    trip_risk: float = 0.95
    trip_min_stops: float = 20.0
    lookahead_loss_pct: float = 35.0
    lookahead_options: tuple[int, ...] = (1, 2, 3, 5, 10)

    def __post_init__(self) -> None:
        if isinstance(self.lookahead_options, list | tuple):  # a TOML array arrives as a list
            object.__setattr__(self, "lookahead_options", tuple(self.lookahead_options))
        if not isinstance(self.lookahead_options, tuple) or not self.lookahead_options or any(
            isinstance(g, bool) or not isinstance(g, int) or g < 1 for g in self.lookahead_options
        ):
            raise ValueError(
                f"lookahead_options must be whole numbers of working days >= 1, got "
                f"{self.lookahead_options}; try [1, 2, 3, 5, 10]"
            )
        if not 0.0 < self.trip_risk < 1.0:
            raise ValueError(f"trip_risk must be in (0, 1), got {self.trip_risk}; try 0.95")
        if not self.trip_min_stops >= 0:
            raise ValueError(f"trip_min_stops must be >= 0, got {self.trip_min_stops}; try 20")
        if not self.lookahead_loss_pct >= 0:
            raise ValueError(
                f"lookahead_loss_pct must be >= 0, got {self.lookahead_loss_pct}; try 35"
            )
        if not 0.0 < self.max_risk < 1.0:
            raise ValueError(f"max_risk must be in (0, 1), got {self.max_risk}; try 0.95")
        _positive("overflow_pct", self.overflow_pct, "100 means the bin is full")
        if not 0.0 <= self.candidate_min_pct <= self.overflow_pct:
            raise ValueError(
                f"candidate_min_pct must be in [0, overflow_pct], got {self.candidate_min_pct}; "
                f"try 75"
            )
        for name in ("prize_scale", "risk_prize", "service_s_base", "service_s_per_m3"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

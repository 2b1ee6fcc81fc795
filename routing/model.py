"""The routing problem: a builder (`Model`) and its compiled array form (`ProblemData`).

The solver works on flat arrays only. ``Model`` is the readable way to describe
a municipality (depots, stops, disposal sites, truck types); ``Model.data()``
compiles it to a ``ProblemData`` of float64/int64/bool arrays, as PyVRP's
``Model.data()`` does. ``ProblemData`` can also be built directly (CVRPLIB
reader, benchmarks).

Location indexing (one index space for the matrices)::

    0 .. D-1            depots (trucks start and end there)
    D .. D+N-1          stops (a stop is a site; all its bins are emptied together)
    D+N .. D+N+P-1      disposal sites (a truck unloads there and continues)

Times are seconds relative to a reference instant (the caller's shift start,
usually); windows use ``inf`` for "no limit". Streams (``glass``,
``paper+cardboard`` …) are integer indices 0..S-1 into ``stream_names``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from routing.distances import durations_s, euclidean, euclidean_nint, haversine_m

INF = float("inf")


def _f64(a: ArrayLike, shape: tuple[int, ...], name: str) -> NDArray[np.float64]:
    arr = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)
class ProblemData:
    """A routing instance compiled to arrays. Validates shapes and values on creation.

    Attributes (D depots, N stops, P disposal sites, S streams, V trucks, L = D+N+P):

    distance: (L, L) travel distance [m] (CVRPLIB: its own integer units).
    duration_s: (L, L) travel duration [s] at reference speed.
    demand: (N, S) volume or weight per stop and stream [same unit as capacity].
    service_s: (N,) service time at each stop [s].
    tw_early_s, tw_late_s: (N,) time window for starting service [s]; (0, inf) = none.
    required: (N,) True for stops that must be visited; False = optional with ``prize``.
    prize: (N,) value of visiting an optional stop today [cost units].
    disposal_accepts: (P, S) which streams each disposal site accepts.
    unload_s: (P,) time to unload at each disposal site [s].
    capacity: (V, S) compartment capacity per truck and stream (0 = no compartment).
    start_depot, end_depot: (V,) depot index (0..D-1) per truck.
    shift_start_s: (V,) time the truck leaves its depot [s].
    shift_duration_s: (V,) maximum time from leaving to returning to the depot [s].
    duration_scale: (V,) multiplier on ``duration_s`` (1.0 = reference speed) [-].
    distance_cost: (V,) cost per distance unit [cost/m].
    duration_cost: (V,) cost per second on shift [cost/s].
    fixed_cost: (V,) cost of using the truck at all [cost].
    max_reloads: (V,) maximum disposal visits per shift, counting the final unload.
    stream_names: names of the S streams.

    Optional constraints (``None`` = not used; ``resolved(name)`` gives the array with its
    default filled in):

    release_s: (N,) the stop can only be served by a trip that leaves the depot or a
        disposal site at or after this time [s] (a job's release date); default 0.
    allowed: (N, V) whether truck v may serve stop i (stop-vehicle compatibility, e.g.
        streets a big truck may not enter); default all True.
    disposal_tw_early_s, disposal_tw_late_s: (P,) opening hours of each disposal site:
        arriving early means waiting, unloading must start by the late one [s].
    shift_start_late_s: (V,) latest departure from the depot [s]; the truck leaves in
        [shift_start_s, shift_start_late_s], as late as needed not to wait at its first
        stop (and not before its first trip's release), so waiting before the first
        stop does not count against the shift; default = shift_start_s (fixed start).
    return_late_s: (V,) latest return to the depot [s] (its closing time); default inf.
    break_s, break_early_s, break_late_s: (V,) a driver's break of ``break_s`` seconds
        that starts within [break_early_s, break_late_s]: it is taken before the first
        leg that would end at or after ``break_early_s`` (waiting for it if needed), so
        every route that ends after ``break_early_s`` has it; default no break.
    max_volume: (V,) total demand (all streams) a truck may collect over the day, across
        its trips [same unit as demand]; default inf.
    max_stops: (V,) maximum number of stops a truck may serve; default unlimited.
    """

    distance: NDArray[np.float64]
    duration_s: NDArray[np.float64]
    num_depots: int
    demand: NDArray[np.float64]
    service_s: NDArray[np.float64]
    tw_early_s: NDArray[np.float64]
    tw_late_s: NDArray[np.float64]
    required: NDArray[np.bool_]
    prize: NDArray[np.float64]
    disposal_accepts: NDArray[np.bool_]
    unload_s: NDArray[np.float64]
    capacity: NDArray[np.float64]
    start_depot: NDArray[np.int64]
    end_depot: NDArray[np.int64]
    shift_start_s: NDArray[np.float64]
    shift_duration_s: NDArray[np.float64]
    duration_scale: NDArray[np.float64]
    distance_cost: NDArray[np.float64]
    duration_cost: NDArray[np.float64]
    fixed_cost: NDArray[np.float64]
    max_reloads: NDArray[np.int64]
    stream_names: tuple[str, ...] = field(default=("waste",))
    release_s: NDArray[np.float64] | None = None
    allowed: NDArray[np.bool_] | None = None
    disposal_tw_early_s: NDArray[np.float64] | None = None
    disposal_tw_late_s: NDArray[np.float64] | None = None
    shift_start_late_s: NDArray[np.float64] | None = None
    return_late_s: NDArray[np.float64] | None = None
    break_s: NDArray[np.float64] | None = None
    break_early_s: NDArray[np.float64] | None = None
    break_late_s: NDArray[np.float64] | None = None
    max_volume: NDArray[np.float64] | None = None
    max_stops: NDArray[np.int64] | None = None

    _OPTIONAL = ("release_s", "allowed", "disposal_tw_early_s", "disposal_tw_late_s",
                 "shift_start_late_s", "return_late_s", "break_s", "break_early_s",
                 "break_late_s", "max_volume", "max_stops")

    def resolved(self, name: str) -> np.ndarray:
        """The optional array ``name`` with its default filled in when it is ``None``."""
        val = getattr(self, name)
        return self._default(name) if val is None else val

    def _default(self, name: str) -> np.ndarray:
        n, v, p = self.num_stops, self.num_vehicles, self.num_disposal
        defaults = {
            "release_s": lambda: np.zeros(n),
            "allowed": lambda: np.ones((n, v), dtype=bool),
            "disposal_tw_early_s": lambda: np.zeros(p),
            "disposal_tw_late_s": lambda: np.full(p, INF),
            "shift_start_late_s": lambda: np.asarray(self.shift_start_s, dtype=np.float64),
            "return_late_s": lambda: np.full(v, INF),
            "break_s": lambda: np.zeros(v),
            "break_early_s": lambda: np.zeros(v),
            "break_late_s": lambda: np.full(v, INF),
            "max_volume": lambda: np.full(v, INF),
            "max_stops": lambda: np.full(v, 1 << 30, dtype=np.int64),
        }
        return defaults[name]()

    def __post_init__(self) -> None:
        n, s = self.demand.shape
        p = self.disposal_accepts.shape[0]
        v = self.capacity.shape[0]
        loc = self.num_depots + n + p
        if self.num_depots < 1:
            raise ValueError(f"num_depots must be >= 1, got {self.num_depots}; add a depot")
        if v < 1:
            raise ValueError("the fleet is empty; add at least one vehicle")
        if len(self.stream_names) != s:
            raise ValueError(f"stream_names has {len(self.stream_names)} names for {s} streams")
        checks: list[tuple[str, tuple[int, ...]]] = [
            ("distance", (loc, loc)),
            ("duration_s", (loc, loc)),
            ("service_s", (n,)),
            ("tw_early_s", (n,)),
            ("tw_late_s", (n,)),
            ("required", (n,)),
            ("prize", (n,)),
            ("disposal_accepts", (p, s)),
            ("unload_s", (p,)),
            ("capacity", (v, s)),
            ("start_depot", (v,)),
            ("end_depot", (v,)),
            ("shift_start_s", (v,)),
            ("shift_duration_s", (v,)),
            ("duration_scale", (v,)),
            ("distance_cost", (v,)),
            ("duration_cost", (v,)),
            ("fixed_cost", (v,)),
            ("max_reloads", (v,)),
        ]
        checks += [
            ("release_s", (n,)), ("allowed", (n, v)), ("disposal_tw_early_s", (p,)),
            ("disposal_tw_late_s", (p,)), ("shift_start_late_s", (v,)), ("return_late_s", (v,)),
            ("break_s", (v,)), ("break_early_s", (v,)), ("break_late_s", (v,)),
            ("max_volume", (v,)), ("max_stops", (v,)),
        ]
        for name, shape in checks:
            if getattr(self, name) is None:
                continue
            got = np.shape(getattr(self, name))
            if got != shape:
                raise ValueError(f"{name} must have shape {shape}, got {got}")
        for name in ("distance", "duration_s", "demand", "service_s", "prize", "unload_s",
                     "capacity", "distance_cost", "duration_cost", "fixed_cost", "release_s",
                     "break_s", "max_volume", "max_stops"):
            arr = getattr(self, name)
            if arr is not None and arr.size and (np.isnan(arr).any() or (arr < 0).any()):
                bad = arr[np.isnan(arr) | (arr < 0)].flat[0]
                raise ValueError(f"{name} must be >= 0 and not NaN, found {bad}")
        bad_tw = np.flatnonzero(self.tw_early_s > self.tw_late_s)
        if bad_tw.size:
            i = int(bad_tw[0])
            raise ValueError(
                f"stop {i}: time window opens at {self.tw_early_s[i]} s after it closes at "
                f"{self.tw_late_s[i]} s; swap the two or widen the window"
            )
        for lo, hi, what in (("disposal_tw_early_s", "disposal_tw_late_s", "disposal site"),
                             ("shift_start_s", "shift_start_late_s", "vehicle start window"),
                             ("break_early_s", "break_late_s", "vehicle break window")):
            bad = np.flatnonzero(self.resolved(lo) > self.resolved(hi))
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"{what} {i}: {lo}={self.resolved(lo)[i]} is after "
                                 f"{hi}={self.resolved(hi)[i]}; swap them or widen the window")
        for name in ("start_depot", "end_depot"):
            arr = getattr(self, name)
            if ((arr < 0) | (arr >= self.num_depots)).any():
                raise ValueError(f"{name} must index a depot 0..{self.num_depots - 1}, got {arr}")
        if not (self.duration_scale > 0).all():
            raise ValueError("duration_scale must be > 0 for every vehicle")
        # Every stream someone produces must have somewhere to go.
        used = (self.demand > 0).any(axis=0)
        if p > 0:
            orphan = np.flatnonzero(used & ~self.disposal_accepts.any(axis=0))
            if orphan.size:
                raise ValueError(
                    f"stream {self.stream_names[orphan[0]]!r} has demand but no disposal site "
                    f"accepts it; add it to a site's accepted streams"
                )

    # --- sizes -------------------------------------------------------------------------
    @property
    def num_stops(self) -> int:
        """N: number of stops (sites to visit)."""
        return int(self.demand.shape[0])

    @property
    def num_streams(self) -> int:
        """S: number of waste streams (compartment types)."""
        return int(self.demand.shape[1])

    @property
    def num_disposal(self) -> int:
        """P: number of disposal sites."""
        return int(self.disposal_accepts.shape[0])

    @property
    def num_vehicles(self) -> int:
        """V: number of trucks available."""
        return int(self.capacity.shape[0])

    @property
    def num_locations(self) -> int:
        """L = D + N + P."""
        return self.num_depots + self.num_stops + self.num_disposal

    def stop_location(self, stop: int) -> int:
        """Matrix index of stop ``stop`` (0-based)."""
        return self.num_depots + stop

    def disposal_location(self, site: int) -> int:
        """Matrix index of disposal site ``site`` (0-based)."""
        return self.num_depots + self.num_stops + site

    @property
    def is_plain_cvrp(self) -> bool:
        """True when only distance and one capacity matter (CVRPLIB-like instances).

        The solver then evaluates moves in O(1) from prefix sums instead of
        simulating routes.
        """
        return (
            self.num_disposal == 0
            and self.num_streams == 1
            and bool(np.all(self.tw_early_s <= 0))
            and bool(np.all(np.isinf(self.tw_late_s)))
            and bool(np.all(np.isinf(self.shift_duration_s)))
            and bool(np.all(self.duration_cost == 0))
            and bool(np.all(self.required))
            and all(getattr(self, name) is None or not self._active(name)
                    for name in self._OPTIONAL)
        )

    def _active(self, name: str) -> bool:
        """True when the optional constraint ``name`` differs from its default."""
        given = getattr(self, name)
        if given is None:
            return False
        if name == "max_stops":
            return bool((given < self.num_stops).any())
        return not np.array_equal(given, self._default(name))

    @classmethod
    def cvrp(
        cls,
        distance: ArrayLike,
        demand: ArrayLike,
        capacity: float,
        num_vehicles: int,
    ) -> ProblemData:
        """A classic CVRP: location 0 is the depot, 1..N the customers, one stream."""
        dist = np.ascontiguousarray(np.asarray(distance, dtype=np.float64))
        dem = np.asarray(demand, dtype=np.float64).reshape(-1)
        n = dem.size
        if num_vehicles < 1:
            raise ValueError(f"num_vehicles must be >= 1, got {num_vehicles}")
        v = int(num_vehicles)
        return cls(
            distance=dist,
            duration_s=dist,
            num_depots=1,
            demand=dem.reshape(n, 1).copy(),
            service_s=np.zeros(n),
            tw_early_s=np.zeros(n),
            tw_late_s=np.full(n, INF),
            required=np.ones(n, dtype=bool),
            prize=np.zeros(n),
            disposal_accepts=np.zeros((0, 1), dtype=bool),
            unload_s=np.zeros(0),
            capacity=np.full((v, 1), float(capacity)),
            start_depot=np.zeros(v, dtype=np.int64),
            end_depot=np.zeros(v, dtype=np.int64),
            shift_start_s=np.zeros(v),
            shift_duration_s=np.full(v, INF),
            duration_scale=np.ones(v),
            distance_cost=np.ones(v),
            duration_cost=np.zeros(v),
            fixed_cost=np.zeros(v),
            max_reloads=np.full(v, 1 << 30, dtype=np.int64),
            stream_names=("waste",),
        )


# --------------------------------------------------------------------------------------
# Builder
# --------------------------------------------------------------------------------------
@dataclass
class _Point:
    x: float
    y: float


@dataclass
class _Stop(_Point):
    demand: NDArray[np.float64]
    service_s: float
    tw_early_s: float
    tw_late_s: float
    required: bool
    prize: float
    bin_ids: tuple[str, ...]
    release_s: float = 0.0
    vehicle_types: tuple[int, ...] | None = None


@dataclass
class _Disposal(_Point):
    accepts: tuple[int, ...]
    unload_s: float
    tw_early_s: float = 0.0
    tw_late_s: float = INF


@dataclass
class _VehicleType:
    num: int
    capacity: NDArray[np.float64]
    start_depot: int
    end_depot: int
    shift_start_s: float
    shift_duration_s: float
    speed_mps: float
    cost_per_km: float
    cost_per_h: float
    fixed_cost: float
    max_reloads: int
    shift_start_late_s: float = 0.0
    return_late_s: float = INF
    break_s: float = 0.0
    break_early_s: float = 0.0
    break_late_s: float = INF
    max_volume: float = INF
    max_stops: int = 1 << 30


class Model:
    """Builder for a collection-planning instance; ``data()`` compiles it to arrays.

    Coordinates are (x, y) for ``metric="euclidean"`` or (lon, lat) in degrees for
    ``metric="haversine"``. Stream indices refer to ``streams``.
    """

    def __init__(self, streams: Sequence[str] = ("waste",)) -> None:
        if len(streams) == 0 or len(set(streams)) != len(streams):
            raise ValueError(f"streams must be non-empty and unique, got {list(streams)}")
        self.streams = tuple(streams)
        self.depots: list[_Point] = []
        self.stops: list[_Stop] = []
        self.disposal_sites: list[_Disposal] = []
        self.vehicle_types: list[_VehicleType] = []

    def _stream_vector(self, values: float | Sequence[float] | dict[int, float], what: str):
        s = len(self.streams)
        vec = np.zeros(s)
        if isinstance(values, dict):
            for k, val in values.items():
                if not 0 <= k < s:
                    raise ValueError(f"{what}: stream index {k} out of range 0..{s - 1}")
                vec[k] = val
        elif np.ndim(values) == 0:
            vec[:] = float(values)  # type: ignore[arg-type]
        else:
            arr = np.asarray(values, dtype=np.float64)
            if arr.shape != (s,):
                raise ValueError(f"{what} must have one value per stream ({s}), got {arr.shape}")
            vec[:] = arr
        if (vec < 0).any() or np.isnan(vec).any():
            raise ValueError(f"{what} must be >= 0 per stream, got {vec.tolist()}")
        return vec

    def add_depot(self, x: float, y: float) -> int:
        """Add a depot; returns its depot index."""
        self.depots.append(_Point(float(x), float(y)))
        return len(self.depots) - 1

    def add_stop(
        self,
        x: float,
        y: float,
        demand: float | Sequence[float] | dict[int, float],
        service_s: float = 0.0,
        tw_early_s: float = 0.0,
        tw_late_s: float = INF,
        required: bool = True,
        prize: float = 0.0,
        bin_ids: Sequence[str] = (),
        release_s: float = 0.0,
        vehicle_types: Sequence[int] | None = None,
    ) -> int:
        """Add a stop (a site); ``demand`` per stream, ``bin_ids`` the bins emptied there.

        ``release_s``: a trip may serve it only if it leaves the depot or a disposal site
        at or after this time. ``vehicle_types``: the vehicle types that may serve it
        (indices from ``add_vehicle_type``; None = all).
        """
        if release_s < 0:
            raise ValueError(f"release_s must be >= 0, got {release_s}")
        if tw_early_s > tw_late_s:
            raise ValueError(
                f"stop {len(self.stops)}: tw_early_s={tw_early_s} is after tw_late_s="
                f"{tw_late_s}; swap them or widen the window"
            )
        if service_s < 0 or prize < 0:
            raise ValueError(f"service_s and prize must be >= 0, got {service_s}, {prize}")
        vec = self._stream_vector(demand, "demand")
        self.stops.append(
            _Stop(float(x), float(y), vec, float(service_s), float(tw_early_s), float(tw_late_s),
                  bool(required), float(prize), tuple(str(b) for b in bin_ids),
                  float(release_s), None if vehicle_types is None else tuple(vehicle_types))
        )
        return len(self.stops) - 1

    def add_disposal_site(
        self, x: float, y: float, accepts: Sequence[int], unload_s: float = 0.0,
        tw_early_s: float = 0.0, tw_late_s: float = INF,
    ) -> int:
        """Add a disposal site accepting the given stream indices; unloading takes ``unload_s``
        and must start within its opening hours [tw_early_s, tw_late_s]."""
        if tw_early_s > tw_late_s:
            raise ValueError(f"disposal site {len(self.disposal_sites)}: tw_early_s="
                             f"{tw_early_s} is after tw_late_s={tw_late_s}")
        for k in accepts:
            if not 0 <= k < len(self.streams):
                raise ValueError(f"accepts: stream index {k} out of range 0..{len(self.streams)-1}")
        if unload_s < 0:
            raise ValueError(f"unload_s must be >= 0, got {unload_s}")
        self.disposal_sites.append(_Disposal(float(x), float(y), tuple(accepts), float(unload_s),
                                             float(tw_early_s), float(tw_late_s)))
        return len(self.disposal_sites) - 1

    def add_vehicle_type(
        self,
        num: int = 1,
        capacity: float | Sequence[float] | dict[int, float] = 1.0,
        start_depot: int = 0,
        end_depot: int | None = None,
        shift_start_s: float = 0.0,
        shift_duration_s: float = INF,
        speed_mps: float = 25 / 3.6,
        cost_per_km: float = 1.0,
        cost_per_h: float = 0.0,
        fixed_cost: float = 0.0,
        max_reloads: int = 1 << 30,
        shift_start_late_s: float | None = None,
        return_late_s: float = INF,
        break_s: float = 0.0,
        break_early_s: float = 0.0,
        break_late_s: float = INF,
        max_volume: float = INF,
        max_stops: int = 1 << 30,
    ) -> int:
        """Add ``num`` identical trucks; ``capacity`` per stream (0 = no compartment for it).

        The truck leaves in [shift_start_s, shift_start_late_s] (default: at
        shift_start_s), returns by ``return_late_s``, is on shift at most
        ``shift_duration_s``, takes a break of ``break_s`` starting within
        [break_early_s, break_late_s], collects at most ``max_volume`` over the day and
        serves at most ``max_stops`` stops. See ``ProblemData`` for the exact rules.
        """
        late = shift_start_s if shift_start_late_s is None else shift_start_late_s
        if late < shift_start_s or break_late_s < break_early_s:
            raise ValueError(
                f"vehicle type {len(self.vehicle_types)}: a window closes before it opens "
                f"(start {shift_start_s}..{late}, break {break_early_s}..{break_late_s})")
        if break_s < 0 or max_volume < 0 or max_stops < 0:
            raise ValueError("break_s, max_volume and max_stops must be >= 0")
        if num < 1:
            raise ValueError(f"num must be >= 1, got {num}")
        if speed_mps <= 0:
            raise ValueError(f"speed_mps must be > 0, got {speed_mps}; 25 km/h is 6.94 m/s")
        if shift_duration_s <= 0:
            raise ValueError(f"shift_duration_s must be > 0, got {shift_duration_s}")
        cap = self._stream_vector(capacity, "capacity")
        self.vehicle_types.append(
            _VehicleType(int(num), cap, int(start_depot),
                         int(start_depot if end_depot is None else end_depot),
                         float(shift_start_s), float(shift_duration_s), float(speed_mps),
                         float(cost_per_km), float(cost_per_h), float(fixed_cost),
                         int(max_reloads), float(late), float(return_late_s), float(break_s),
                         float(break_early_s), float(break_late_s), float(max_volume),
                         int(max_stops))
        )
        return len(self.vehicle_types) - 1

    def bin_ids_per_stop(self) -> list[tuple[str, ...]]:
        """Bin ids emptied at each stop, in stop order (for the collection schedule)."""
        return [s.bin_ids for s in self.stops]

    def data(
        self,
        metric: str = "euclidean",
        detour_factor: float = 1.3,
        distance: ArrayLike | None = None,
        duration_s: ArrayLike | None = None,
    ) -> ProblemData:
        """Compile to ``ProblemData``.

        ``metric``: ``"euclidean"`` (x, y in metres), ``"euclidean_nint"`` (TSPLIB), or
        ``"haversine"`` (x = lon, y = lat in degrees, times ``detour_factor``). A user
        ``distance`` [m] and/or ``duration_s`` [s] matrix in location order overrides it.
        Durations default to distance / speed of the first vehicle type; other types
        get a ``duration_scale`` for their speed.
        """
        if not self.depots:
            raise ValueError("add at least one depot before compiling")
        if not self.vehicle_types:
            raise ValueError("add at least one vehicle type before compiling")
        pts = self.depots + list(self.stops) + list(self.disposal_sites)
        xy = np.array([[p.x, p.y] for p in pts], dtype=np.float64)
        if distance is not None:
            dist = np.asarray(distance, dtype=np.float64)
        elif metric == "euclidean":
            dist = euclidean(xy)
        elif metric == "euclidean_nint":
            dist = euclidean_nint(xy)
        elif metric == "haversine":
            dist = haversine_m(xy[:, 1], xy[:, 0], detour_factor)
        else:
            raise ValueError(
                f"metric must be 'euclidean', 'euclidean_nint' or 'haversine', got {metric!r}"
            )
        ref_speed = self.vehicle_types[0].speed_mps
        dur = durations_s(dist, ref_speed) if duration_s is None else np.asarray(duration_s, float)
        vts = self.vehicle_types

        def per_vehicle(get, dtype=np.float64):
            return np.array([get(t) for t in vts for _ in range(t.num)], dtype=dtype)

        n = len(self.stops)
        s = len(self.streams)
        accepts = np.zeros((len(self.disposal_sites), s), dtype=bool)
        for i, site in enumerate(self.disposal_sites):
            accepts[i, list(site.accepts)] = True
        vtype = np.array([k for k, t in enumerate(vts) for _ in range(t.num)], dtype=np.int64)
        allowed = np.ones((n, vtype.size), dtype=bool)
        for i, st in enumerate(self.stops):
            if st.vehicle_types is not None:
                bad = [k for k in st.vehicle_types if not 0 <= k < len(vts)]
                if bad:
                    raise ValueError(f"stop {i}: vehicle type {bad[0]} does not exist "
                                     f"(types 0..{len(vts) - 1})")
                allowed[i] = np.isin(vtype, st.vehicle_types)
        return ProblemData(
            distance=np.ascontiguousarray(dist),
            duration_s=np.ascontiguousarray(dur),
            num_depots=len(self.depots),
            demand=np.array([st.demand for st in self.stops]).reshape(n, s),
            service_s=np.array([st.service_s for st in self.stops]),
            tw_early_s=np.array([st.tw_early_s for st in self.stops]),
            tw_late_s=np.array([st.tw_late_s for st in self.stops]),
            required=np.array([st.required for st in self.stops], dtype=bool),
            prize=np.array([st.prize for st in self.stops]),
            disposal_accepts=accepts,
            unload_s=np.array([d.unload_s for d in self.disposal_sites]),
            capacity=np.array([t.capacity for t in vts for _ in range(t.num)]).reshape(-1, s),
            start_depot=per_vehicle(lambda t: t.start_depot, np.int64),
            end_depot=per_vehicle(lambda t: t.end_depot, np.int64),
            shift_start_s=per_vehicle(lambda t: t.shift_start_s),
            shift_duration_s=per_vehicle(lambda t: t.shift_duration_s),
            duration_scale=per_vehicle(lambda t: ref_speed / t.speed_mps),
            distance_cost=per_vehicle(lambda t: t.cost_per_km / 1000.0),
            duration_cost=per_vehicle(lambda t: t.cost_per_h / 3600.0),
            fixed_cost=per_vehicle(lambda t: t.fixed_cost),
            max_reloads=per_vehicle(lambda t: t.max_reloads, np.int64),
            stream_names=self.streams,
            release_s=np.array([st.release_s for st in self.stops]),
            allowed=allowed,
            disposal_tw_early_s=np.array([d.tw_early_s for d in self.disposal_sites]),
            disposal_tw_late_s=np.array([d.tw_late_s for d in self.disposal_sites]),
            shift_start_late_s=per_vehicle(lambda t: t.shift_start_late_s),
            return_late_s=per_vehicle(lambda t: t.return_late_s),
            break_s=per_vehicle(lambda t: t.break_s),
            break_early_s=per_vehicle(lambda t: t.break_early_s),
            break_late_s=per_vehicle(lambda t: t.break_late_s),
            max_volume=per_vehicle(lambda t: t.max_volume),
            max_stops=per_vehicle(lambda t: t.max_stops, np.int64),
        )

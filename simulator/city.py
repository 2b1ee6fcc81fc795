"""A seeded municipality: sites with bins, depots, disposal sites and trucks, in real coordinates.

The default area is the Municipality of Copenhagen (about 90 km², municipality code 0101): sites
are drawn around real district centres, depots and disposal sites sit at real places (Amager
Bakke for residual waste, the Kløvermarken recycling site for recyclables, the biogas plant in
Sydhavn for food waste). ``generate`` is pure (same seed, same city); ``write_registry`` puts
the city into the registry through ``smartbins.registry``.

Site kinds, as Copenhagen places containers: street bins (one residual bin of 100-240 L),
recycling islands (2-4 wheeled containers of 660 L-2.5 m³ for recyclables) and underground
containers (2-4 of 3 m³).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from smartbins import assets
from smartbins.codes import parse_stream
from smartbins.registry import Registry

MUNICIPALITY = ("0101", "Københavns Kommune")

#: District centres (lat, lon) and their relative number of sites.
DISTRICTS: tuple[tuple[str, float, float, float], ...] = (
    ("Indre By", 55.6805, 12.5800, 1.3),
    ("Østerbro", 55.7050, 12.5750, 1.3),
    ("Nørrebro", 55.6950, 12.5450, 1.4),
    ("Vesterbro", 55.6680, 12.5450, 1.2),
    ("Valby", 55.6600, 12.5050, 1.0),
    ("Vanløse", 55.6870, 12.4900, 0.7),
    ("Brønshøj-Husum", 55.7080, 12.4950, 0.8),
    ("Bispebjerg", 55.7150, 12.5400, 0.9),
    ("Amager Øst", 55.6600, 12.6100, 1.0),
    ("Amager Vest", 55.6400, 12.5850, 0.9),
    ("Christianshavn", 55.6720, 12.5930, 0.5),
    ("Sydhavn", 55.6500, 12.5400, 0.6),
)
DISTRICT_SD_DEG = 0.007  #: about 500-800 m

DEPOTS = (
    ("depot-1", "Renovation depot Sundholm", 55.6570, 12.5930),
    ("depot-2", "Renovation depot Sydhavn", 55.6480, 12.5330),
)
RECYCLABLES = (
    "paper", "cardboard", "paper+cardboard", "glass", "metal", "glass+metal", "plastic",
    "metal+plastic", "plastic+cartons", "metal+plastic+cartons", "cartons", "textiles",
    "hazardous",
)
DISPOSAL_SITES = (
    ("disp-arc", "ARC Amager Bakke", 55.6875, 12.6180, ("residual",)),
    ("disp-klv", "Kløvermarken genbrugsplads", 55.6780, 12.6080, RECYCLABLES),
    ("disp-bio", "Biogas plant Sydhavn", 55.6450, 12.5300, ("food",)),
)

SITE_KINDS = (
    # kind, share, bins (lo, hi), streams (weights), volumes [L]
    ("street", 0.6, (1, 1), {"residual": 1.0}, (110, 140, 190, 240)),
    (
        "island",
        0.3,
        (2, 4),
        {"glass": 1.0, "paper+cardboard": 1.0, "plastic+cartons": 0.8, "metal+plastic": 0.5,
         "food": 0.6, "textiles": 0.3, "cardboard": 0.3},
        (660, 1000, 1100, 2500),
    ),
    (
        "underground",
        0.1,
        (2, 4),
        {"residual": 1.0, "glass": 0.8, "paper+cardboard": 0.8, "metal+plastic+cartons": 0.6,
         "food": 0.6},
        (3000,),
    ),
)

#: Truck types: compartments as (stream, capacity in uncompacted litres).
TRUCK_TYPES: tuple[tuple[tuple[str, float], ...], ...] = (
    (("residual", 60_000.0),),
    (("residual", 36_000.0), ("food", 18_000.0)),
    (("paper+cardboard", 30_000.0), ("plastic+cartons", 24_000.0)),
    (("glass", 16_000.0), ("metal+plastic", 20_000.0)),
    (("food", 24_000.0),),
    (("metal+plastic+cartons", 30_000.0), ("textiles", 10_000.0)),
    (("cardboard", 30_000.0),),
)
SHIFT_S = 8 * 3600


@dataclass(frozen=True)
class SiteSpec:
    id: str
    name: str
    kind: str
    lat: float
    lon: float


@dataclass(frozen=True)
class BinSpec:
    id: str
    site_id: str
    stream: str
    volume_l: float
    lat: float
    lon: float


@dataclass(frozen=True)
class PlaceSpec:
    id: str
    name: str
    lat: float
    lon: float
    streams: tuple[str, ...] = ()


@dataclass(frozen=True)
class TruckSpec:
    id: str
    depot_id: str
    shift_s: int
    compartments: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class City:
    seed: int
    municipality: tuple[str, str]
    sites: tuple[SiteSpec, ...]
    bins: tuple[BinSpec, ...]
    depots: tuple[PlaceSpec, ...]
    disposal_sites: tuple[PlaceSpec, ...]
    trucks: tuple[TruckSpec, ...]
    device_prefix: str = "kbh"
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def device_id(self, bin_index: int) -> str:
        return f"{self.device_prefix}-{bin_index:05d}"

    @property
    def device_ids(self) -> list[str]:
        return [self.device_id(i) for i in range(len(self.bins))]


def generate(n_bins: int, seed: int, device_prefix: str = "kbh") -> City:
    """A city of exactly ``n_bins`` bins (the last site may have fewer than drawn)."""
    if n_bins < 1:
        raise ValueError(f"n_bins: {n_bins} must be at least 1")
    rng = np.random.default_rng([seed, 0xC17])
    weights = np.array([d[3] for d in DISTRICTS])
    weights /= weights.sum()
    kind_p = np.array([k[1] for k in SITE_KINDS])
    sites: list[SiteSpec] = []
    bins: list[BinSpec] = []
    while len(bins) < n_bins:
        d = DISTRICTS[int(rng.choice(len(DISTRICTS), p=weights))]
        lat = round(float(d[1] + rng.normal(0, DISTRICT_SD_DEG)), 6)
        lon = round(float(d[2] + rng.normal(0, DISTRICT_SD_DEG * 1.8)), 6)
        kind, _, (lo, hi), streams, volumes = SITE_KINDS[int(rng.choice(3, p=kind_p))]
        site = SiteSpec(f"site-{len(sites):05d}", f"{d[0]} {kind} {len(sites)}", kind, lat, lon)
        sites.append(site)
        names = list(streams)
        p = np.array([streams[s] for s in names])
        k = min(int(rng.integers(lo, hi + 1)), len(names), n_bins - len(bins))
        chosen = rng.choice(len(names), size=k, replace=False, p=p / p.sum())
        for j in sorted(int(c) for c in chosen):
            bins.append(
                BinSpec(
                    f"bin-{len(bins):05d}", site.id, parse_stream(names[j]),
                    float(volumes[int(rng.integers(len(volumes)))]), lat, lon,
                )
            )
    depots = tuple(PlaceSpec(i, n, la, lo) for i, n, la, lo in DEPOTS)
    disposal = tuple(
        PlaceSpec(i, n, la, lo, tuple(parse_stream(s) for s in st))
        for i, n, la, lo, st in DISPOSAL_SITES
    )
    n_trucks = max(len(TRUCK_TYPES), int(np.ceil(n_bins / 250)))
    trucks = tuple(
        TruckSpec(
            f"truck-{i:03d}",
            depots[i % len(depots)].id,
            SHIFT_S,
            tuple((parse_stream(s), c) for s, c in TRUCK_TYPES[i % len(TRUCK_TYPES)]),
        )
        for i in range(n_trucks)
    )
    return City(seed, MUNICIPALITY, tuple(sites), tuple(bins), depots, disposal, trucks,
                device_prefix)


def write_registry(city: City, registry: Registry) -> None:
    """Municipality, sites, bins, depots, disposal sites and trucks, in one transaction.

    Devices are not created here: ``smartbins.provisioning.provision`` does that (with broker
    credentials) for the broker mode, :func:`add_devices` for the in-process mode.
    """
    with registry.transaction():
        registry.add_municipality(*city.municipality)
        mid = city.municipality[0]
        for s in city.sites:
            registry.add_site(s.id, mid, s.lat, s.lon, s.name)
        for b in city.bins:
            registry.add_bin(b.id, b.site_id, b.stream, b.volume_l)
        for d in city.depots:
            assets.add_depot(registry, mid, d.id, d.lat, d.lon, d.name)
        for d in city.disposal_sites:
            assets.add_disposal_site(registry, mid, d.id, d.lat, d.lon, d.streams, d.name)
        for t in city.trucks:
            assets.add_truck(
                registry, mid, t.id, t.depot_id,
                [assets.Compartment(s, c) for s, c in t.compartments],
                name=t.id, shift_s=t.shift_s,
            )


def add_devices(city: City, registry: Registry, at_ms: int) -> None:
    """Devices without broker accounts (the in-process mode), one per bin, linked at ``at_ms``."""
    with registry.transaction():
        for i, b in enumerate(city.bins):
            registry.add_device(city.device_id(i), at_ms=at_ms)
            registry.link(city.device_id(i), b.id, at_ms=at_ms)

"""Registry CRUD for what a municipality owns: municipalities, sites, bins, depots, disposal
sites and trucks, and which municipality a device belongs to.

Plain functions over a :class:`~smartbins.registry.Registry`, shared by the backend's routes and
the operators' commands (one implementation). Each validates before it writes and runs in one
transaction, so a bad request leaves the registry as it was; errors are
:class:`~smartbins.registry.RegistryError` (or its ``NotFoundError``/``ConflictError``) whose
message names the row, the field and the problem.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from smartbins.codes import StreamError, parse_stream
from smartbins.registry import (
    BIN_COLUMNS,
    CONTAINER_TYPES,
    Bin,
    ConflictError,
    NotFoundError,
    Registry,
    RegistryError,
    now_ms,
)

#: Ids of registry rows (not devices, which have their own rule): safe in URLs, CSV and logs.
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
AREA_RE = re.compile(r"(?:\w[\w .-]{0,99})?")
FUELS = ("diesel", "hvo", "electric", "cng", "biogas", "hydrogen")
#: Opening hours, a subset of OpenStreetMap's syntax: "Mo-Fr 07:00-16:00; Sa 08:00-12:00",
#: "24/7", or "" (unknown).
_DAY = r"(?:Mo|Tu|We|Th|Fr|Sa|Su)"
_HOURS_RULE = re.compile(
    rf"{_DAY}(?:-{_DAY})?(?:,{_DAY}(?:-{_DAY})?)* "
    r"(?:[01]\d|2[0-4]):[0-5]\d-(?:[01]\d|2[0-4]):[0-5]\d(?:,(?:[01]\d|2[0-4]):[0-5]\d-"
    r"(?:[01]\d|2[0-4]):[0-5]\d)*"
)


def check_id(kind: str, value: object) -> str:
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise RegistryError(
            f"{kind} id {value!r}: 1-64 of A-Z a-z 0-9 _ . : -, starting with a letter or digit"
        )
    return value


def check_opening_hours(value: str) -> str:
    if value in ("", "24/7"):
        return value
    for rule in value.split(";"):
        if not _HOURS_RULE.fullmatch(rule.strip()):
            raise RegistryError(
                f"opening_hours {value!r}: rule {rule.strip()!r} is not like 'Mo-Fr 07:00-16:00' "
                "(OpenStreetMap syntax: days Mo..Su, ranges with -, rules separated by ;)"
            )
    return value


def _check_point(kind: str, id: str, lat: object, lon: object) -> None:
    for name, v, bound in (("lat", lat, 90), ("lon", lon, 180)):
        if not isinstance(v, int | float) or not math.isfinite(v) or not -bound <= v <= bound:
            raise RegistryError(
                f"{kind} {id!r}: {name} {v!r} must be a number in [-{bound}, {bound}]"
            )


def _changes(kind: str, id: str, changes: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise RegistryError(f"{kind} {id!r}: {', '.join(unknown)}: cannot be changed here")


# ----------------------------------------------------------------------------- municipalities


@dataclass(frozen=True)
class Municipality:
    id: str
    name: str
    created_ms: int


def municipality(reg: Registry, id: str) -> Municipality:
    row = reg.db.execute("SELECT id, name, created_ms FROM municipalities WHERE id = ?", (id,))
    found = row.fetchone()
    if found is None:
        raise NotFoundError(f"no municipality {id!r}")
    return Municipality(*found)


def municipalities(reg: Registry, ids: Iterable[str] | None = None) -> list[Municipality]:
    rows = reg.db.execute("SELECT id, name, created_ms FROM municipalities ORDER BY id")
    wanted = None if ids is None else set(ids)
    return [Municipality(*r) for r in rows if wanted is None or r[0] in wanted]


def add_municipality(reg: Registry, id: str, name: str) -> Municipality:
    check_id("municipality", id)
    if not name.strip():
        raise RegistryError(f"municipality {id!r}: name must not be empty")
    with reg.transaction():
        reg.add_municipality(id, name)
    return municipality(reg, id)


def update_municipality(reg: Registry, id: str, name: str) -> Municipality:
    municipality(reg, id)
    if not name.strip():
        raise RegistryError(f"municipality {id!r}: name must not be empty")
    reg.db.execute("UPDATE municipalities SET name = ? WHERE id = ?", (name, id))
    return municipality(reg, id)


# ----------------------------------------------------------------------------- sites


@dataclass(frozen=True)
class Site:
    id: str
    municipality_id: str
    name: str
    address: str
    lat: float
    lon: float


_SITE = "SELECT id, municipality_id, name, address, lat, lon FROM sites"


def site(reg: Registry, id: str) -> Site:
    row = reg.db.execute(f"{_SITE} WHERE id = ?", (id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no site {id!r}")
    return Site(*row)


def sites(reg: Registry, municipality_id: str) -> list[Site]:
    rows = reg.db.execute(f"{_SITE} WHERE municipality_id = ? ORDER BY id", (municipality_id,))
    return [Site(*r) for r in rows]


def add_site(
    reg: Registry,
    municipality_id: str,
    id: str,
    lat: float,
    lon: float,
    name: str = "",
    address: str = "",
) -> Site:
    check_id("site", id)
    _check_point("site", id, lat, lon)
    municipality(reg, municipality_id)
    with reg.transaction():
        if reg.db.execute("SELECT 1 FROM sites WHERE id = ?", (id,)).fetchone():
            raise ConflictError(f"site {id!r} exists already")
        reg.add_site(id, municipality_id, lat, lon, name, address=address)
    return site(reg, id)


def update_site(reg: Registry, id: str, changes: Mapping[str, Any]) -> Site:
    _changes("site", id, changes, ("name", "address", "lat", "lon"))
    current = site(reg, id)
    merged = {**current.__dict__, **changes}
    _check_point("site", id, merged["lat"], merged["lon"])
    reg.db.execute(
        "UPDATE sites SET name = ?, address = ?, lat = ?, lon = ? WHERE id = ?",
        (merged["name"], merged["address"], merged["lat"], merged["lon"], id),
    )
    return site(reg, id)


def delete_site(reg: Registry, id: str) -> None:
    site(reg, id)
    with reg.transaction():
        if reg.db.execute("SELECT 1 FROM bins WHERE site_id = ?", (id,)).fetchone():
            raise ConflictError(f"site {id!r} still has bins; retire or move them first")
        reg.db.execute("DELETE FROM sites WHERE id = ?", (id,))


# ----------------------------------------------------------------------------- bins


def bins(
    reg: Registry,
    municipality_id: str,
    *,
    stream: str | None = None,
    area: str | None = None,
    include_retired: bool = False,
) -> list[Bin]:
    sql = (
        f"SELECT {BIN_COLUMNS} FROM bins b JOIN sites s ON s.id = b.site_id"
        " WHERE s.municipality_id = ?"
    )
    params: list[object] = [municipality_id]
    if stream is not None:
        try:
            params.append(parse_stream(stream))
        except StreamError as e:
            raise RegistryError(f"stream: {e}") from None
        sql += " AND b.stream = ?"
    if area is not None:
        sql += " AND b.area = ?"
        params.append(area)
    if not include_retired:
        sql += " AND b.retired_ms IS NULL"
    return [Bin(*r) for r in reg.db.execute(sql + " ORDER BY b.id", params)]


@dataclass(frozen=True)
class NewBin:
    """A bin to add: what :func:`add_bins` takes (and what the bulk imports parse rows into)."""

    id: str
    site_id: str
    stream: str
    volume_l: float
    container_type: str = "wheelie"
    full_pct: float = 90.0
    area: str = ""


def _check_bin(b: NewBin) -> None:
    check_id("bin", b.id)
    if (
        isinstance(b.volume_l, bool)
        or not isinstance(b.volume_l, int | float)
        or not (math.isfinite(b.volume_l) and 0 < b.volume_l <= 100_000)
    ):
        raise RegistryError(f"bin {b.id!r}: volume_l {b.volume_l!r} must be in (0, 100000] litres")
    if (
        isinstance(b.full_pct, bool)
        or not isinstance(b.full_pct, int | float)
        or not (math.isfinite(b.full_pct))
    ):
        raise RegistryError(f"bin {b.id!r}: full_pct {b.full_pct!r} must be a number")
    if not AREA_RE.fullmatch(b.area):
        raise RegistryError(
            f"bin {b.id!r}: area {b.area!r}: up to 100 letters, digits, spaces, . - _"
        )


def add_bins(reg: Registry, municipality_id: str, new: Sequence[NewBin]) -> list[Bin]:
    """Add bins, all or none; each bin's site must belong to ``municipality_id``."""
    municipality(reg, municipality_id)
    with reg.transaction():
        for b in new:
            _check_bin(b)
            s = reg.db.execute("SELECT municipality_id FROM sites WHERE id = ?", (b.site_id,))
            owner = s.fetchone()
            if owner is None or owner[0] != municipality_id:
                raise RegistryError(f"bin {b.id!r}: site_id {b.site_id!r}: no such site here")
            reg.add_bin(
                b.id,
                b.site_id,
                b.stream,
                b.volume_l,
                container_type=b.container_type,
                full_pct=b.full_pct,
                area=b.area,
            )
    return [reg.bin(b.id) for b in new]


def update_bin(reg: Registry, id: str, changes: Mapping[str, Any]) -> Bin:
    allowed = ("site_id", "stream", "volume_l", "container_type", "full_pct", "area")
    _changes("bin", id, changes, allowed)
    current = reg.bin(id)
    merged = NewBin(**{k: getattr(current, k) for k in ("id", *allowed)} | dict(changes))
    _check_bin(merged)
    try:
        stream = parse_stream(merged.stream)
    except StreamError as e:
        raise RegistryError(f"bin {id!r}: {e}") from None
    if merged.container_type not in CONTAINER_TYPES:
        raise RegistryError(
            f"bin {id!r}: container_type {merged.container_type!r} is not one of "
            f"{', '.join(CONTAINER_TYPES)}"
        )
    if not 0 < merged.full_pct <= 200:
        raise RegistryError(f"bin {id!r}: full_pct {merged.full_pct!r} must be in (0, 200]")
    new_site = site(reg, merged.site_id) if merged.site_id != current.site_id else None
    if new_site is not None and new_site.municipality_id != current.municipality_id:
        raise RegistryError(f"bin {id!r}: site_id {merged.site_id!r}: no such site here")
    reg.db.execute(
        "UPDATE bins SET site_id = ?, stream = ?, volume_l = ?, container_type = ?, full_pct = ?,"
        " area = ? WHERE id = ?",
        (
            merged.site_id,
            stream,
            merged.volume_l,
            merged.container_type,
            merged.full_pct,
            merged.area,
            id,
        ),
    )
    return reg.bin(id)


def retire_bin(reg: Registry, id: str, at_ms: int | None = None) -> Bin:
    """Take a bin out of service; its history stays. A bin with a device on it is refused."""
    reg.bin(id)
    with reg.transaction():
        on = reg.db.execute(
            "SELECT device_id FROM device_bins WHERE bin_id = ? AND to_ms IS NULL", (id,)
        ).fetchone()
        if on is not None:
            raise ConflictError(f"bin {id!r} still has device {on[0]!r}; move or unlink it first")
        reg.db.execute(
            "UPDATE bins SET retired_ms = coalesce(retired_ms, ?) WHERE id = ?",
            (at_ms if at_ms is not None else now_ms(), id),
        )
    return reg.bin(id)


def bin_devices(reg: Registry, bin_id: str) -> list[tuple[str, int, int | None]]:
    """Which devices sat on the bin when: (device, from_ms, to_ms), oldest first."""
    rows = reg.db.execute(
        "SELECT device_id, from_ms, to_ms FROM device_bins WHERE bin_id = ? ORDER BY from_ms",
        (bin_id,),
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def current_devices(reg: Registry, municipality_id: str) -> dict[str, tuple[str, int]]:
    """Each bin of the municipality that has a device now: bin -> (device, linked since)."""
    rows = reg.db.execute(
        """SELECT l.bin_id, l.device_id, l.from_ms FROM device_bins l
           JOIN bins b ON b.id = l.bin_id JOIN sites s ON s.id = b.site_id
           WHERE l.to_ms IS NULL AND s.municipality_id = ?""",
        (municipality_id,),
    )
    return {r[0]: (r[1], r[2]) for r in rows}


# ----------------------------------------------------------------------------- devices


def device_municipality(reg: Registry, device_id: str) -> str | None:
    """The municipality of the bin the device sits on, or sat on last (None if never linked)."""
    row = reg.db.execute(
        """SELECT s.municipality_id FROM device_bins l
           JOIN bins b ON b.id = l.bin_id JOIN sites s ON s.id = b.site_id
           WHERE l.device_id = ? ORDER BY l.from_ms DESC LIMIT 1""",
        (device_id,),
    ).fetchone()
    return row[0] if row else None


def municipality_devices(reg: Registry, municipality_id: str) -> list[str]:
    """Devices whose newest link is to a bin of the municipality, by id."""
    rows = reg.db.execute(
        """SELECT l.device_id FROM device_bins l
           JOIN bins b ON b.id = l.bin_id JOIN sites s ON s.id = b.site_id
           WHERE s.municipality_id = ? AND l.from_ms = (
               SELECT max(from_ms) FROM device_bins WHERE device_id = l.device_id)
           ORDER BY l.device_id""",
        (municipality_id,),
    )
    return [r[0] for r in rows]


def set_firmware(reg: Registry, device_id: str, firmware: str) -> None:
    """Record the firmware version installed (what `smartbins flash` wrote)."""
    if not re.fullmatch(r"[ -~]{1,32}", firmware):
        raise RegistryError(f"device {device_id!r}: firmware {firmware!r}: 1-32 printable ASCII")
    reg.device(device_id)
    reg.db.execute(
        "UPDATE devices SET firmware = ?, updated_ms = ? WHERE id = ?",
        (firmware, now_ms(), device_id),
    )


def firmware(reg: Registry, device_id: str) -> str:
    row = reg.db.execute("SELECT firmware FROM devices WHERE id = ?", (device_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no device {device_id!r}")
    return str(row[0])


# ----------------------------------------------------------------------------- depots


@dataclass(frozen=True)
class Depot:
    id: str
    municipality_id: str
    name: str
    lat: float
    lon: float


_DEPOT = "SELECT id, municipality_id, name, lat, lon FROM depots"


def depot(reg: Registry, id: str) -> Depot:
    row = reg.db.execute(f"{_DEPOT} WHERE id = ?", (id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no depot {id!r}")
    return Depot(*row)


def depots(reg: Registry, municipality_id: str) -> list[Depot]:
    rows = reg.db.execute(f"{_DEPOT} WHERE municipality_id = ? ORDER BY id", (municipality_id,))
    return [Depot(*r) for r in rows]


def add_depot(
    reg: Registry, municipality_id: str, id: str, lat: float, lon: float, name: str = ""
) -> Depot:
    check_id("depot", id)
    _check_point("depot", id, lat, lon)
    municipality(reg, municipality_id)
    with reg.transaction():
        if reg.db.execute("SELECT 1 FROM depots WHERE id = ?", (id,)).fetchone():
            raise ConflictError(f"depot {id!r} exists already")
        reg.db.execute(
            "INSERT INTO depots (id, municipality_id, name, lat, lon) VALUES (?, ?, ?, ?, ?)",
            (id, municipality_id, name, lat, lon),
        )
    return depot(reg, id)


def update_depot(reg: Registry, id: str, changes: Mapping[str, Any]) -> Depot:
    _changes("depot", id, changes, ("name", "lat", "lon"))
    merged = {**depot(reg, id).__dict__, **changes}
    _check_point("depot", id, merged["lat"], merged["lon"])
    reg.db.execute(
        "UPDATE depots SET name = ?, lat = ?, lon = ? WHERE id = ?",
        (merged["name"], merged["lat"], merged["lon"], id),
    )
    return depot(reg, id)


def delete_depot(reg: Registry, id: str) -> None:
    depot(reg, id)
    with reg.transaction():
        if reg.db.execute("SELECT 1 FROM trucks WHERE depot_id = ?", (id,)).fetchone():
            raise ConflictError(f"depot {id!r} still has trucks; move or delete them first")
        reg.db.execute("DELETE FROM depots WHERE id = ?", (id,))


# ----------------------------------------------------------------------------- disposal sites


@dataclass(frozen=True)
class DisposalSite:
    id: str
    municipality_id: str
    name: str
    lat: float
    lon: float
    opening_hours: str
    streams: tuple[str, ...]


def _streams(kind: str, id: str, streams: Iterable[str]) -> list[str]:
    out: list[str] = []
    for s in streams:
        try:
            c = parse_stream(s)
        except StreamError as e:
            raise RegistryError(f"{kind} {id!r}: {e}") from None
        if c in out:
            raise RegistryError(f"{kind} {id!r}: stream {c!r} is listed twice")
        out.append(c)
    return out


def disposal_site(reg: Registry, id: str) -> DisposalSite:
    row = reg.db.execute(
        "SELECT id, municipality_id, name, lat, lon, opening_hours FROM disposal_sites"
        " WHERE id = ?",
        (id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no disposal site {id!r}")
    streams = reg.db.execute(
        "SELECT stream FROM disposal_streams WHERE disposal_site_id = ? ORDER BY stream", (id,)
    )
    return DisposalSite(*row, tuple(r[0] for r in streams))


def disposal_sites(reg: Registry, municipality_id: str) -> list[DisposalSite]:
    rows = reg.db.execute(
        "SELECT id FROM disposal_sites WHERE municipality_id = ? ORDER BY id", (municipality_id,)
    )
    return [disposal_site(reg, r[0]) for r in rows.fetchall()]


def add_disposal_site(
    reg: Registry,
    municipality_id: str,
    id: str,
    lat: float,
    lon: float,
    streams: Sequence[str],
    name: str = "",
    opening_hours: str = "",
) -> DisposalSite:
    check_id("disposal site", id)
    _check_point("disposal site", id, lat, lon)
    accepted = _streams("disposal site", id, streams)
    check_opening_hours(opening_hours)
    municipality(reg, municipality_id)
    with reg.transaction():
        if reg.db.execute("SELECT 1 FROM disposal_sites WHERE id = ?", (id,)).fetchone():
            raise ConflictError(f"disposal site {id!r} exists already")
        reg.db.execute(
            "INSERT INTO disposal_sites (id, municipality_id, name, lat, lon, opening_hours)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (id, municipality_id, name, lat, lon, opening_hours),
        )
        reg.db.executemany(
            "INSERT INTO disposal_streams VALUES (?, ?)", [(id, s) for s in accepted]
        )
    return disposal_site(reg, id)


def update_disposal_site(reg: Registry, id: str, changes: Mapping[str, Any]) -> DisposalSite:
    _changes("disposal site", id, changes, ("name", "lat", "lon", "opening_hours", "streams"))
    merged = {**disposal_site(reg, id).__dict__, **changes}
    _check_point("disposal site", id, merged["lat"], merged["lon"])
    check_opening_hours(merged["opening_hours"])
    accepted = _streams("disposal site", id, merged["streams"])
    with reg.transaction():
        reg.db.execute(
            "UPDATE disposal_sites SET name = ?, lat = ?, lon = ?, opening_hours = ? WHERE id = ?",
            (merged["name"], merged["lat"], merged["lon"], merged["opening_hours"], id),
        )
        reg.db.execute("DELETE FROM disposal_streams WHERE disposal_site_id = ?", (id,))
        reg.db.executemany(
            "INSERT INTO disposal_streams VALUES (?, ?)", [(id, s) for s in accepted]
        )
    return disposal_site(reg, id)


def delete_disposal_site(reg: Registry, id: str) -> None:
    disposal_site(reg, id)
    with reg.transaction():
        reg.db.execute("DELETE FROM disposal_streams WHERE disposal_site_id = ?", (id,))
        reg.db.execute("DELETE FROM disposal_sites WHERE id = ?", (id,))


# ----------------------------------------------------------------------------- trucks


@dataclass(frozen=True)
class Compartment:
    stream: str
    capacity_l: float


@dataclass(frozen=True)
class Truck:
    id: str
    municipality_id: str
    depot_id: str
    name: str
    fuel: str
    shift_start_s: int
    shift_s: int
    compartments: tuple[Compartment, ...]


def truck(reg: Registry, id: str) -> Truck:
    row = reg.db.execute(
        """SELECT t.id, d.municipality_id, t.depot_id, t.name, t.fuel, t.shift_start_s, t.shift_s
           FROM trucks t JOIN depots d ON d.id = t.depot_id WHERE t.id = ?""",
        (id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no truck {id!r}")
    comps = reg.db.execute(
        "SELECT stream, capacity_l FROM truck_compartments WHERE truck_id = ? ORDER BY idx", (id,)
    )
    return Truck(*row, tuple(Compartment(*c) for c in comps))


def trucks(reg: Registry, municipality_id: str) -> list[Truck]:
    rows = reg.db.execute(
        """SELECT t.id FROM trucks t JOIN depots d ON d.id = t.depot_id
           WHERE d.municipality_id = ? ORDER BY t.id""",
        (municipality_id,),
    )
    return [truck(reg, r[0]) for r in rows.fetchall()]


def _check_truck(
    id: str, fuel: str, shift_start_s: int, shift_s: int, compartments: Sequence[Compartment]
) -> list[Compartment]:
    if fuel not in FUELS:
        raise RegistryError(f"truck {id!r}: fuel {fuel!r} is not one of {', '.join(FUELS)}")
    if not 0 <= shift_start_s < 86_400:
        raise RegistryError(f"truck {id!r}: shift_start_s {shift_start_s!r} must be in [0, 86400)")
    if not 0 < shift_s <= 86_400:
        raise RegistryError(f"truck {id!r}: shift_s {shift_s!r} must be in (0, 86400]")
    if not 1 <= len(compartments) <= 4:
        raise RegistryError(f"truck {id!r}: compartments: 1 to 4, got {len(compartments)}")
    out = []
    for i, c in enumerate(compartments):
        try:
            stream = parse_stream(c.stream)
        except StreamError as e:
            raise RegistryError(f"truck {id!r}: compartments[{i}]: {e}") from None
        if not (math.isfinite(c.capacity_l) and 0 < c.capacity_l <= 100_000):
            raise RegistryError(
                f"truck {id!r}: compartments[{i}]: capacity_l {c.capacity_l!r} must be in "
                "(0, 100000] litres"
            )
        out.append(Compartment(stream, float(c.capacity_l)))
    return out


def _depot_of(reg: Registry, municipality_id: str, truck_id: str, depot_id: str) -> None:
    row = reg.db.execute("SELECT municipality_id FROM depots WHERE id = ?", (depot_id,)).fetchone()
    if row is None or row[0] != municipality_id:
        raise RegistryError(f"truck {truck_id!r}: depot_id {depot_id!r}: no such depot here")


def add_truck(
    reg: Registry,
    municipality_id: str,
    id: str,
    depot_id: str,
    compartments: Sequence[Compartment],
    *,
    name: str = "",
    fuel: str = "diesel",
    shift_start_s: int = 6 * 3600,
    shift_s: int = 8 * 3600,
) -> Truck:
    check_id("truck", id)
    comps = _check_truck(id, fuel, shift_start_s, shift_s, compartments)
    municipality(reg, municipality_id)
    with reg.transaction():
        _depot_of(reg, municipality_id, id, depot_id)
        if reg.db.execute("SELECT 1 FROM trucks WHERE id = ?", (id,)).fetchone():
            raise ConflictError(f"truck {id!r} exists already")
        reg.db.execute(
            "INSERT INTO trucks (id, depot_id, name, shift_s, fuel, shift_start_s)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (id, depot_id, name, shift_s, fuel, shift_start_s),
        )
        reg.db.executemany(
            "INSERT INTO truck_compartments VALUES (?, ?, ?, ?)",
            [(id, i, c.stream, c.capacity_l) for i, c in enumerate(comps)],
        )
    return truck(reg, id)


def update_truck(reg: Registry, id: str, changes: Mapping[str, Any]) -> Truck:
    allowed = ("depot_id", "name", "fuel", "shift_start_s", "shift_s", "compartments")
    _changes("truck", id, changes, allowed)
    current = truck(reg, id)
    merged = {**current.__dict__, **changes}
    comps = _check_truck(
        id, merged["fuel"], merged["shift_start_s"], merged["shift_s"], merged["compartments"]
    )
    with reg.transaction():
        _depot_of(reg, current.municipality_id, id, merged["depot_id"])
        reg.db.execute(
            "UPDATE trucks SET depot_id = ?, name = ?, fuel = ?, shift_start_s = ?, shift_s = ?"
            " WHERE id = ?",
            (
                merged["depot_id"],
                merged["name"],
                merged["fuel"],
                merged["shift_start_s"],
                merged["shift_s"],
                id,
            ),
        )
        reg.db.execute("DELETE FROM truck_compartments WHERE truck_id = ?", (id,))
        reg.db.executemany(
            "INSERT INTO truck_compartments VALUES (?, ?, ?, ?)",
            [(id, i, c.stream, c.capacity_l) for i, c in enumerate(comps)],
        )
    return truck(reg, id)


def delete_truck(reg: Registry, id: str) -> None:
    truck(reg, id)
    with reg.transaction():
        reg.db.execute("DELETE FROM truck_compartments WHERE truck_id = ?", (id,))
        reg.db.execute("DELETE FROM trucks WHERE id = ?", (id,))

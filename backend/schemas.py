"""Request and response bodies: Create / Update / Public per resource, apart from the registry's
rows (smartbins.assets, smartbins.registry). Requests forbid unknown fields, so a misspelt field
is a 422 naming it, not silently ignored."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from smartbins.registry import CONTAINER_TYPES, SENSORS
from smartbins.tokens import ROLES

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$", examples=["cph-0001"])]
UserId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")]
DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
Name = Annotated[str, Field(max_length=200)]
Lat = Annotated[float, Field(ge=-90, le=90, description="latitude [°], WGS 84")]
Lon = Annotated[float, Field(ge=-180, le=180, description="longitude [°], WGS 84")]
Stream = Annotated[
    str,
    Field(max_length=60, description="a stream: fraction codes joined by +", examples=["glass"]),
]
#: A collection district's name: letters (any script), digits, spaces, . - _ (no quotes or
#: operators: it is a filter value).
AREA_PATTERN = r"^[\w][\w .-]{0,99}$|^$"
Area = Annotated[str, Field(max_length=100, pattern=AREA_PATTERN, examples=["Indre By"])]
ContainerType = Literal[tuple(CONTAINER_TYPES)]  # type: ignore[valid-type]
Role = Literal[ROLES]  # type: ignore[valid-type]
Fuel = Literal["diesel", "hvo", "electric", "cng", "biogas", "hydrogen"]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Error(BaseModel):
    detail: str


# ----------------------------------------------------------------------------- municipalities


class MunicipalityCreate(Request):
    id: Id
    name: Annotated[str, Field(min_length=1, max_length=200)]


class MunicipalityUpdate(Request):
    name: Annotated[str, Field(min_length=1, max_length=200)]


class MunicipalityPublic(BaseModel):
    id: str
    name: str
    created_ms: int


# ----------------------------------------------------------------------------- sites


class SiteCreate(Request):
    id: Id
    lat: Lat
    lon: Lon
    name: Name = ""
    address: Name = ""


class SiteUpdate(Request):
    lat: Lat | None = None
    lon: Lon | None = None
    name: Name | None = None
    address: Name | None = None


class SitePublic(BaseModel):
    id: str
    municipality_id: str
    name: str
    address: str
    lat: float
    lon: float


# ----------------------------------------------------------------------------- bins


class BinCreate(Request):
    id: Id
    site_id: Id
    stream: Stream
    volume_l: Annotated[float, Field(gt=0, le=100_000, description="volume [l]")]
    container_type: ContainerType = "wheelie"
    full_pct: Annotated[float, Field(gt=0, le=200, description="fill [%] counted as full")] = 90.0
    area: Area = ""


class BinUpdate(Request):
    site_id: Id | None = None
    stream: Stream | None = None
    volume_l: Annotated[float, Field(gt=0, le=100_000)] | None = None
    container_type: ContainerType | None = None
    full_pct: Annotated[float, Field(gt=0, le=200)] | None = None
    area: Area | None = None


class BinPublic(BaseModel):
    id: str
    site_id: str
    municipality_id: str
    stream: str
    volume_l: float
    container_type: str
    full_pct: float
    area: str
    lat: float
    lon: float
    retired_ms: int | None
    device_id: str | None = None


class ImportProblem(BaseModel):
    row: int = Field(description="1-based data row (CSV, after the header) or feature index + 1")
    field: str
    problem: str


class ImportReport(BaseModel):
    imported: int
    problems: list[ImportProblem]


# ----------------------------------------------------------------------------- readings


class BinState(BaseModel):
    bin_id: str
    stream: str
    area: str
    lat: float
    lon: float
    device_id: str | None
    fill_pct: float | None
    temp_c: float | None
    battery_mv: float | None
    rssi_dbm: float | None
    tilt_deg: float | None
    last_seen_ms: int | None
    flags: list[str]
    full: bool


class HistoryPoint(BaseModel):
    time_ms: int
    device_id: str
    fill_pct: float | None
    temp_c: float | None
    battery_mv: float | None
    rssi_dbm: float | None
    tilt_deg: float | None


class History(BaseModel):
    bin_id: str
    start_ms: int
    end_ms: int
    every_s: int | None = Field(description="bucket width [s] when downsampled, else null")
    points: list[HistoryPoint]


# ----------------------------------------------------------------------------- devices


Thresholds = dict[
    Literal[
        "interval_s",
        "interval_near_full_s",
        "interval_low_battery_s",
        "near_full_pct",
        "low_battery_mv",
        "fire_temp_c",
        "fire_rise_c",
        "tilt_deg",
    ],
    float,
]


class DeviceProvision(Request):
    id: DeviceId
    bin_id: Id
    sensor: Literal[SENSORS] = "ultrasonic"  # type: ignore[valid-type]
    thresholds: Thresholds = Field(default_factory=dict)


class DeviceUpdate(Request):
    thresholds: Thresholds | None = None
    firmware: Annotated[str, Field(pattern=r"^[ -~]{1,32}$")] | None = None


class DeviceCalibration(Request):
    empty_mm: Annotated[int, Field(ge=1, le=20_000)]
    full_mm: Annotated[int, Field(ge=0, le=20_000)]


class DeviceMove(Request):
    bin_id: Id


class LinkPublic(BaseModel):
    bin_id: str
    from_ms: int
    to_ms: int | None


class DevicePublic(BaseModel):
    id: str
    state: str
    sensor: str
    credential_version: int
    cal: int
    empty_mm: int | None
    full_mm: int | None
    firmware: str
    thresholds: dict[str, float]
    bin_id: str | None
    history: list[LinkPublic]


class DeviceOperation(BaseModel):
    device: DevicePublic
    published: bool = Field(description="whether the retained config reached the broker")
    note: str = ""


class DeviceCredentials(BaseModel):
    """Shown once: the device's config.json, with its broker password."""

    device: DevicePublic
    config_json: dict[str, object]


# ----------------------------------------------------------------------------- depots etc.


class DepotCreate(Request):
    id: Id
    lat: Lat
    lon: Lon
    name: Name = ""


class DepotUpdate(Request):
    lat: Lat | None = None
    lon: Lon | None = None
    name: Name | None = None


class DepotPublic(BaseModel):
    id: str
    municipality_id: str
    name: str
    lat: float
    lon: float


OpeningHours = Annotated[
    str,
    Field(
        max_length=200, description="OpenStreetMap syntax, e.g. 'Mo-Fr 07:00-16:00; Sa 08:00-12:00'"
    ),
]


class DisposalSiteCreate(Request):
    id: Id
    lat: Lat
    lon: Lon
    streams: Annotated[list[Stream], Field(min_length=1, max_length=15)]
    name: Name = ""
    opening_hours: OpeningHours = ""


class DisposalSiteUpdate(Request):
    lat: Lat | None = None
    lon: Lon | None = None
    streams: Annotated[list[Stream], Field(min_length=1, max_length=15)] | None = None
    name: Name | None = None
    opening_hours: OpeningHours | None = None


class DisposalSitePublic(BaseModel):
    id: str
    municipality_id: str
    name: str
    lat: float
    lon: float
    opening_hours: str
    streams: list[str]


class CompartmentModel(Request):
    stream: Stream
    capacity_l: Annotated[float, Field(gt=0, le=100_000)]


class TruckCreate(Request):
    id: Id
    depot_id: Id
    compartments: Annotated[list[CompartmentModel], Field(min_length=1, max_length=4)]
    name: Name = ""
    fuel: Fuel = "diesel"
    shift_start_s: Annotated[
        int, Field(ge=0, lt=86_400, description="shift start [s after midnight]")
    ] = 21_600
    shift_s: Annotated[int, Field(gt=0, le=86_400, description="shift length [s]")] = 28_800


class TruckUpdate(Request):
    depot_id: Id | None = None
    compartments: Annotated[list[CompartmentModel], Field(min_length=1, max_length=4)] | None = None
    name: Name | None = None
    fuel: Fuel | None = None
    shift_start_s: Annotated[int, Field(ge=0, lt=86_400)] | None = None
    shift_s: Annotated[int, Field(gt=0, le=86_400)] | None = None


class CompartmentPublic(BaseModel):
    stream: str
    capacity_l: float


class TruckPublic(BaseModel):
    id: str
    municipality_id: str
    depot_id: str
    name: str
    fuel: str
    shift_start_s: int
    shift_s: int
    compartments: list[CompartmentPublic]


# ----------------------------------------------------------------------------- tokens


class TokenCreate(Request):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    role: Role
    expires_in_s: Annotated[int, Field(gt=0, le=5 * 365 * 86_400)] | None = 90 * 86_400
    user_id: UserId | None = Field(
        default=None, description="the user it is issued to; its role is at most theirs"
    )


class TokenPublic(BaseModel):
    id: str
    name: str
    role: str
    municipalities: list[str]
    created_ms: int
    expires_ms: int | None
    revoked_ms: int | None
    user_id: str | None


UserName = Annotated[str, Field(min_length=1, max_length=100)]


class UserCreate(Request):
    id: UserId
    name: UserName
    role: Role


class UserUpdate(Request):
    name: UserName | None = None
    role: Role | None = None


class UserPublic(BaseModel):
    id: str
    municipality_id: str
    name: str
    role: str
    created_ms: int
    disabled_ms: int | None


class TokenCreated(TokenPublic):
    token: str = Field(description="the token itself: shown this once, stored only as a hash")


# ----------------------------------------------------------------------------- fleet health


class DeviceHealth(BaseModel):
    device_id: str
    bin_id: str | None
    state: str
    online: str | None = Field(description="online or lost from the gateway's status, if known")
    firmware_installed: str
    firmware_reported: str | None
    last_seen_ms: int | None
    battery_mv: float | None
    battery_trend_mv_per_day: float | None
    rssi_dbm: float | None
    reboots: int
    buffered: int | None
    dropped: int
    readings: int
    sensor_faults: int
    flags: list[str]
    dead_letters: dict[str, int] = Field(description="dead letters in the window by reason")
    priority: float = Field(description="visit priority: higher first")
    reasons: list[str]


# ----------------------------------------------------------------------------- alerts


class AlertEvent(BaseModel):
    state: str
    at_ms: int
    actor: str = Field(description="engine, or token:<id> of who changed it")
    note: str


class AlertPublic(BaseModel):
    id: int
    municipality_id: str
    device_id: str
    bin_id: str | None
    kind: str
    state: str
    opened_ms: int
    reading_ts_ms: int | None
    detail: str
    updated_ms: int
    history: list[AlertEvent]

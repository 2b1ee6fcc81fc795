"""The wire protocol: the one definition firmware, simulator and gateway follow.

Sans-I/O on purpose (like h11): no paho, socket or InfluxDB import here, so the same functions
serve the gateway, the simulator, the tests and the firmware contract test. ``docs/protocol.md``
is the prose version of this module; ``tests/test_protocol_doc.py`` keeps the two in step.

Every failure, in encoding or decoding, is a :class:`PayloadError` with a stable
:class:`Reason` code that the gateway counts and attaches to the dead letter.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntFlag, StrEnum
from typing import Any, Literal

# --------------------------------------------------------------------------- versions and limits

SCHEMA_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})

#: A device id is also the device's MQTT username and a topic level: no ``+ # /`` and nothing a
#: mosquitto password file or an ACL pattern would read differently. Service accounts contain a
#: dot (``smartbins.gateway``), which no device id can, so the two never collide.
DEVICE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

MAX_READING_BYTES = 1024  #: one reading message, encoded
MAX_BATCH_BYTES = 32768  #: one batch message, encoded
MAX_BATCH_READINGS = 100  #: readings in one batch message (the gateway's limit)
DEVICE_BATCH_READINGS = 50  #: what a device puts in one batch (leaves room under both limits)
MAX_CONTROL_BYTES = 4096  #: status, config and acknowledgement messages
MAX_ACK_RANGES = 256

INT31 = 2**31 - 1
TS_MIN_MS = 1_577_836_800_000  #: 2020-01-01T00:00:00Z: earlier means the device has no clock
TS_MAX_MS = 4_102_444_800_000  #: 2100-01-01T00:00:00Z


class Reason(StrEnum):
    """Why a message or a reading was rejected; stable codes, counted and dead-lettered."""

    BAD_TOPIC = "bad_topic"
    BAD_UTF8 = "bad_utf8"
    BAD_JSON = "bad_json"
    DUPLICATE_KEY = "duplicate_key"
    NON_FINITE = "non_finite"
    NOT_OBJECT = "not_object"
    OVERSIZE = "oversize"
    SCHEMA_VERSION = "schema_version"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    WRONG_TYPE = "wrong_type"
    OUT_OF_RANGE = "out_of_range"
    BAD_VALUE = "bad_value"
    BAD_DEVICE_ID = "bad_device_id"
    DEVICE_MISMATCH = "device_mismatch"
    EMPTY_BATCH = "empty_batch"
    BATCH_TOO_LARGE = "batch_too_large"
    INCONSISTENT = "inconsistent"
    #: Set by the gateway, which knows the time: ``ts`` beyond now plus its tolerance.
    FUTURE_TIMESTAMP = "future_timestamp"
    #: Set by the gateway: the store refused this one point for good (a 4xx after splitting).
    STORE_REJECTED = "store_rejected"


class PayloadError(ValueError):
    """The one error the encoder and decoder raise. ``reason`` is stable; ``str()`` is for people.

    ``device``, ``seq`` and ``index`` are filled in as far as they could be read, so that a
    rejected reading can still be acknowledged end to end (the device then stops resending it).
    """

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        device: str | None = None,
        seq: int | None = None,
        index: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = Reason(reason)
        self.message = message
        self.device = device
        self.seq = seq
        self.index = index

    def __repr__(self) -> str:
        return f"PayloadError({self.reason.value!r}, {self.message!r})"


# --------------------------------------------------------------------------- topics

TOPIC_ROOT = "sb"
#: Everything a device writes is under ``sb/up/<device>/``; everything it reads under
#: ``sb/down/<device>/``; service traffic under ``sb/svc/``. The gateway subscribes to
#: ``sb/up/+/+`` only, so acknowledgements and config never reach it, and a device's ACL gives
#: it no write access anywhere under ``sb/down``.
UP, DOWN, SVC = "up", "down", "svc"

Kind = Literal["reading", "batch", "status", "config", "ack", "deadletter"]
UP_KINDS: tuple[Kind, ...] = ("reading", "batch", "status")
DOWN_KINDS: tuple[Kind, ...] = ("config", "ack")

GATEWAY_TOPIC_FILTER = f"{TOPIC_ROOT}/{UP}/+/+"
DEADLETTER_TOPIC_FILTER = f"{TOPIC_ROOT}/{SVC}/deadletter/+"
#: Used in the dead-letter topic when the device id in a topic could not be read.
UNKNOWN_DEVICE = "_unknown"


def shared_subscription(group: str = "gateways") -> str:
    """The filter N gateways subscribe to, so the broker splits the devices' messages among them."""
    return f"$share/{group}/{GATEWAY_TOPIC_FILTER}"


def topic_for(kind: Kind, device: str) -> str:
    """The topic of a message of ``kind`` for ``device``."""
    if kind in UP_KINDS:
        return f"{TOPIC_ROOT}/{UP}/{device}/{kind}"
    if kind in DOWN_KINDS:
        return f"{TOPIC_ROOT}/{DOWN}/{device}/{kind}"
    if kind == "deadletter":
        return f"{TOPIC_ROOT}/{SVC}/deadletter/{device}"
    raise PayloadError(Reason.BAD_TOPIC, f"unknown message kind {kind!r}")


def parse_topic(topic: str) -> tuple[Kind, str]:
    """Split a topic into (kind, device id), or raise ``bad_topic`` / ``bad_device_id``."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == TOPIC_ROOT:
        _, direction, device, kind = parts
        kinds = UP_KINDS if direction == UP else DOWN_KINDS if direction == DOWN else ()
        if kind in kinds:
            _check_device_id(device, "topic device")
            return kind, device  # type: ignore[return-value]
        if direction == SVC and device == "deadletter":
            if kind != UNKNOWN_DEVICE:
                _check_device_id(kind, "topic device")
            return "deadletter", kind
    raise PayloadError(Reason.BAD_TOPIC, f"topic {topic!r} is not a smartbins topic")


def _check_device_id(device: object, where: str) -> str:
    if not isinstance(device, str) or not DEVICE_ID_RE.fullmatch(device):
        raise PayloadError(
            Reason.BAD_DEVICE_ID,
            f"{where}: {device!r} is not a device id (1-64 of A-Z a-z 0-9 _ -, "
            "starting with a letter or digit)",
        )
    return device


def is_device_id(text: str) -> bool:
    return DEVICE_ID_RE.fullmatch(text) is not None


# --------------------------------------------------------------------------- flags and codes


class Flag(IntFlag):
    """Alarm and state bits of a reading (``flags``)."""

    FIRE = 0x01  #: temperature over the fire threshold, or rising faster than the fire rate
    TILT = 0x02  #: tilt beyond the threshold: lid open or bin knocked over
    LOW_BATTERY = 0x04  #: battery under the low-battery threshold
    SENSOR_ERROR = 0x08  #: no trustworthy distance this wake (``mm`` and ``fill`` absent)
    TEMP_SENSOR_ERROR = 0x10  #: no temperature; distance compensated with 20 °C
    TIME_ESTIMATED = 0x20  #: taken before the clock was known; ``ts`` converted from uptime
    UNCALIBRATED = 0x40  #: fill computed from default empty/full distances
    NEAR_FULL = 0x80  #: fill at or above the near-full threshold


FLAGS_MAX = 0xFFFF


class SensorError(IntFlag):
    """Sensor error codes carried in ``err`` (a list of these values)."""

    ECHO_TIMEOUT = 1  #: no echo within the sensor's range time (no target or absorbed)
    BLIND_ZONE = 2  #: target closer than the sensor's minimum range (overfull or obstructed)
    UNSTABLE = 3  #: pings disagree beyond tolerance after outlier rejection
    BUS_ERROR = 4  #: time-of-flight or accelerometer did not answer on I2C
    TEMP_SENSOR_FAIL = 5
    ACCEL_FAIL = 6
    BATTERY_ADC_FAIL = 7


#: What a BLIND_ZONE reading tells a forecaster: the waste is at the sensor, so the bin is at
#: least full (a lower bound: an overfull bin reads nothing but this). Treating it as missing
#: hid exactly the bins that overflow: their forecast stayed at the last level seen.
BLIND_ZONE_FILL_PCT = 100.0


ERROR_CODE_MAX = 255
MAX_ERROR_CODES = 8


# --------------------------------------------------------------------------- field specs


@dataclass(frozen=True)
class FieldSpec:
    """One payload field: wire key, type, inclusive range, unit and meaning."""

    attr: str
    key: str
    kind: Literal["int", "float", "str", "codes", "ranges"]
    required: bool
    lo: float | None = None
    hi: float | None = None
    unit: str = ""
    doc: str = ""


# fmt: off
READING_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("seq", "seq", "int", True, 0, INT31, "", "per-device sequence number; survives reboots"),
    FieldSpec("boot", "boot", "int", True, 0, INT31, "", "boot count; survives reboots"),
    FieldSpec("ts_ms", "ts", "int", True, TS_MIN_MS, TS_MAX_MS, "ms", "UTC time of measurement since the Unix epoch"),
    FieldSpec("distance_mm", "mm", "int", False, 0, 20_000, "mm", "raw median distance, temperature compensated; absent on sensor error"),
    FieldSpec("fill_pct", "fill", "float", False, -100, 1000, "%", "fill level from calibration; over 100 when overfull"),
    FieldSpec("temp_c", "temp", "float", False, -60, 500, "°C", "air temperature in the lid (fire temperatures are valid)"),
    FieldSpec("tilt_deg", "tilt", "float", False, 0, 180, "°", "angle of the lid from its mounted position"),
    FieldSpec("battery_mv", "bat", "int", False, 0, 20_000, "mV", "battery voltage"),
    FieldSpec("rssi_dbm", "rssi", "int", False, -150, 0, "dBm", "Wi-Fi signal strength at the last connect"),
    FieldSpec("dropped", "dropped", "int", True, 0, INT31, "", "readings dropped from a full buffer since provisioning (cumulative)"),
    FieldSpec("interval_s", "interval", "int", True, 1, 7 * 86_400, "s", "report interval in force when measured"),
    FieldSpec("cal", "cal", "int", True, 0, INT31, "", "calibration version used for fill"),
    FieldSpec("fw", "fw", "str", True, 1, 32, "", "firmware version (printable ASCII)"),
    FieldSpec("flags", "flags", "int", True, 0, FLAGS_MAX, "", "alarm and state bits (Flag)"),
    FieldSpec("errors", "err", "codes", False, 1, ERROR_CODE_MAX, "", "sensor error codes (SensorError), at most 8"),
)
# fmt: on
_READING_BY_KEY = {f.key: f for f in READING_FIELDS}

# fmt: off
STATUS_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("state", "state", "str", True, doc="online (sent after connecting) or lost (the last will)"),
    FieldSpec("ts_ms", "ts", "int", False, TS_MIN_MS, TS_MAX_MS, "ms", "device time when sent; absent in the will"),
    FieldSpec("boot", "boot", "int", False, 0, INT31, "", "boot count"),
    FieldSpec("fw", "fw", "str", False, 1, 32, "", "firmware version"),
    FieldSpec("battery_mv", "bat", "int", False, 0, 20_000, "mV", "battery voltage"),
    FieldSpec("rssi_dbm", "rssi", "int", False, -150, 0, "dBm", "Wi-Fi signal strength"),
    FieldSpec("dropped", "dropped", "int", False, 0, INT31, "", "readings dropped from a full buffer (cumulative)"),
    FieldSpec("buffered", "buffered", "int", False, 0, INT31, "", "readings in the device buffer not yet acknowledged"),
)
# fmt: on

# fmt: off
CONFIG_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("server_ts_ms", "server_ts", "int", True, TS_MIN_MS, TS_MAX_MS, "ms", "server time when published: a lower bound for the device clock"),
    FieldSpec("cal", "cal", "int", True, 0, INT31, "", "calibration version"),
    FieldSpec("empty_mm", "empty_mm", "int", True, 1, 20_000, "mm", "distance to the bottom of the empty bin"),
    FieldSpec("full_mm", "full_mm", "int", True, 0, 20_000, "mm", "distance at 100 % fill"),
    FieldSpec("interval_s", "interval", "int", True, 10, 7 * 86_400, "s", "normal report interval"),
    FieldSpec("interval_near_full_s", "interval_near_full", "int", True, 10, 7 * 86_400, "s", "interval when near full or warm"),
    FieldSpec("interval_low_battery_s", "interval_low_battery", "int", True, 10, 7 * 86_400, "s", "interval when the battery is low"),
    FieldSpec("near_full_pct", "near_full", "float", True, 0, 200, "%", "fill at which the near-full interval applies"),
    FieldSpec("low_battery_mv", "low_battery", "int", True, 0, 20_000, "mV", "battery voltage under which the low-battery interval applies"),
    FieldSpec("fire_temp_c", "fire_temp", "float", True, 0, 500, "°C", "temperature that raises the fire alarm"),
    FieldSpec("fire_rise_c", "fire_rise", "float", True, 0, 500, "°C", "temperature rise between two wakes that raises the fire alarm"),
    FieldSpec("tilt_deg", "tilt", "float", True, 0, 180, "°", "tilt alarm threshold"),
)
# fmt: on

# fmt: off
ACK_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("server_ts_ms", "server_ts", "int", True, TS_MIN_MS, TS_MAX_MS, "ms", "server time when sent: the device sets its clock from it"),
    FieldSpec("stored", "stored", "ranges", True, 0, INT31, "", "inclusive [first, last] seq ranges now stored"),
    FieldSpec("rejected", "rejected", "ranges", True, 0, INT31, "", "inclusive seq ranges dead-lettered: handled, never to be resent"),
)
# fmt: on


# --------------------------------------------------------------------------- messages


def _validate(obj: object, specs: Sequence[FieldSpec], device: str | None = None) -> None:
    """Check a dataclass's attributes against their specs; raise PayloadError naming the field."""
    seq = getattr(obj, "seq", None)
    seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
    for spec in specs:
        value = getattr(obj, spec.attr)
        coerced = _check_value(spec, value, spec.key, device=device, seq=seq)
        if coerced is not value:
            object.__setattr__(obj, spec.attr, coerced)


def _check_value(
    spec: FieldSpec, value: Any, where: str, *, device: str | None, seq: int | None
) -> Any:
    def fail(reason: Reason, message: str) -> PayloadError:
        return PayloadError(reason, f"{where}: {message}", device=device, seq=seq)

    if value is None:
        if spec.required:
            raise fail(Reason.MISSING_FIELD, "is required")
        return None
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(Reason.WRONG_TYPE, f"{value!r} is not an integer")
        _check_range(spec, value, fail)
        return value
    if spec.kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail(Reason.WRONG_TYPE, f"{value!r} is not a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise fail(Reason.NON_FINITE, f"{value!r} is not a finite number")
        value = float(value)
        _check_range(spec, value, fail)
        return value
    if spec.kind == "str":
        if not isinstance(value, str):
            raise fail(Reason.WRONG_TYPE, f"{value!r} is not a string")
        if spec.lo is not None and not (spec.lo <= len(value) <= (spec.hi or spec.lo)):
            raise fail(
                Reason.OUT_OF_RANGE,
                f"{value!r} must be {_num(spec.lo)} to {_num(spec.hi)} characters",
            )
        if not value.isascii() or not value.isprintable():
            raise fail(Reason.BAD_VALUE, f"{value!r} must be printable ASCII")
        return value
    if spec.kind == "codes":
        if not isinstance(value, list | tuple):
            raise fail(Reason.WRONG_TYPE, f"{value!r} is not a list of error codes")
        if len(value) > MAX_ERROR_CODES:
            raise fail(Reason.OUT_OF_RANGE, f"{len(value)} codes, at most {MAX_ERROR_CODES}")
        for i, code in enumerate(value):
            if isinstance(code, bool) or not isinstance(code, int):
                raise fail(Reason.WRONG_TYPE, f"[{i}] {code!r} is not an integer code")
            if not 1 <= code <= ERROR_CODE_MAX:
                raise fail(Reason.OUT_OF_RANGE, f"[{i}] {code} is not in [1, {ERROR_CODE_MAX}]")
        return tuple(value)
    # ranges
    if not isinstance(value, list | tuple):
        raise fail(Reason.WRONG_TYPE, f"{value!r} is not a list of [first, last] ranges")
    if len(value) > MAX_ACK_RANGES:
        raise fail(Reason.OUT_OF_RANGE, f"{len(value)} ranges, at most {MAX_ACK_RANGES}")
    out = []
    for i, pair in enumerate(value):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise fail(Reason.WRONG_TYPE, f"[{i}] {pair!r} is not a [first, last] pair")
        lo, hi = pair
        for end in (lo, hi):
            if isinstance(end, bool) or not isinstance(end, int):
                raise fail(Reason.WRONG_TYPE, f"[{i}] {end!r} is not an integer")
            if not 0 <= end <= INT31:
                raise fail(Reason.OUT_OF_RANGE, f"[{i}] {end} is not in [0, {INT31}]")
        if lo > hi:
            raise fail(Reason.OUT_OF_RANGE, f"[{i}] first {lo} is after last {hi}")
        out.append((lo, hi))
    return tuple(out)


def _check_range(spec: FieldSpec, value: float, fail: Any) -> None:
    if (spec.lo is not None and value < spec.lo) or (spec.hi is not None and value > spec.hi):
        unit = f" {spec.unit}" if spec.unit else ""
        raise fail(
            Reason.OUT_OF_RANGE,
            f"{value!r} is out of range [{_num(spec.lo)}, {_num(spec.hi)}]{unit}",
        )


def _num(x: float | None) -> str:
    return "?" if x is None else str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Reading:
    """One measurement of one device: the unit of storage, acknowledgement and dead-lettering."""

    device: str
    seq: int
    boot: int
    ts_ms: int
    fw: str
    interval_s: int
    cal: int = 0
    flags: int = 0
    dropped: int = 0
    distance_mm: int | None = None
    fill_pct: float | None = None
    temp_c: float | None = None
    tilt_deg: float | None = None
    battery_mv: int | None = None
    rssi_dbm: int | None = None
    errors: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _check_device_id(self.device, "dev")
        _validate(self, READING_FIELDS, self.device)
        self._check_consistency()

    @classmethod
    def _from_checked(cls, device: str, values: dict[str, Any]) -> Reading:
        """For the decoder, whose ``values`` passed these very field checks already: checking
        them twice was a third of the gateway's decoding time."""
        reading = object.__new__(cls)
        object.__setattr__(reading, "device", device)
        for name, value in values.items():
            object.__setattr__(reading, name, value)
        reading._check_consistency()
        return reading

    def _check_consistency(self) -> None:
        if (self.distance_mm is None) != (self.fill_pct is None):
            raise PayloadError(
                Reason.INCONSISTENT,
                "mm and fill: both present or both absent (fill is computed from mm)",
                device=self.device,
                seq=self.seq,
            )
        if self.distance_mm is None and not (self.errors or self.flags & Flag.SENSOR_ERROR):
            raise PayloadError(
                Reason.INCONSISTENT,
                "mm: absent without a sensor error code or the SENSOR_ERROR flag",
                device=self.device,
                seq=self.seq,
            )


@dataclass(frozen=True)
class ReadingBatch:
    """A batch message: the readings that passed, and one rejection per reading that did not."""

    device: str
    readings: tuple[Reading, ...]
    rejected: tuple[PayloadError, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        _check_device_id(self.device, "dev")
        if not self.readings and not self.rejected:
            raise PayloadError(Reason.EMPTY_BATCH, "readings: a batch holds at least one reading")
        if len(self.readings) + len(self.rejected) > MAX_BATCH_READINGS:
            raise PayloadError(
                Reason.BATCH_TOO_LARGE,
                f"readings: {len(self.readings)} readings, at most {MAX_BATCH_READINGS}",
                device=self.device,
            )
        for r in self.readings:
            if r.device != self.device:
                raise PayloadError(
                    Reason.DEVICE_MISMATCH,
                    f"readings: reading of {r.device!r} in a batch of {self.device!r}",
                    device=self.device,
                    seq=r.seq,
                )


@dataclass(frozen=True)
class Status:
    """Device status: ``online`` after each connect, ``lost`` as the last will."""

    device: str
    state: Literal["online", "lost"]
    ts_ms: int | None = None
    boot: int | None = None
    fw: str | None = None
    battery_mv: int | None = None
    rssi_dbm: int | None = None
    dropped: int | None = None
    buffered: int | None = None

    def __post_init__(self) -> None:
        _check_device_id(self.device, "dev")
        _validate(self, STATUS_FIELDS, self.device)
        if self.state not in ("online", "lost"):
            raise PayloadError(
                Reason.BAD_VALUE,
                f"state: {self.state!r} is not 'online' or 'lost'",
                device=self.device,
            )


@dataclass(frozen=True)
class DeviceConfig:
    """The retained per-device config the service account publishes and the device reads at wake."""

    device: str
    server_ts_ms: int
    cal: int
    empty_mm: int
    full_mm: int
    interval_s: int = 3600
    interval_near_full_s: int = 900
    interval_low_battery_s: int = 4 * 3600
    near_full_pct: float = 80.0
    low_battery_mv: int = 3300
    fire_temp_c: float = 70.0
    fire_rise_c: float = 20.0
    tilt_deg: float = 45.0

    def __post_init__(self) -> None:
        _check_device_id(self.device, "dev")
        _validate(self, CONFIG_FIELDS, self.device)
        if self.full_mm >= self.empty_mm:
            raise PayloadError(
                Reason.INCONSISTENT,
                f"full_mm: {self.full_mm} must be less than empty_mm {self.empty_mm} "
                "(the sensor looks down: a fuller bin is closer)",
                device=self.device,
            )


@dataclass(frozen=True)
class Ack:
    """End-to-end acknowledgement: what is stored (or dead-lettered) for good, by seq ranges.

    Ranges, not a high-water mark, because gateways sharing a subscription store out of order.
    """

    device: str
    server_ts_ms: int
    stored: tuple[tuple[int, int], ...] = ()
    rejected: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        _check_device_id(self.device, "dev")
        _validate(self, ACK_FIELDS, self.device)

    def covers(self, seq: int) -> bool:
        return any(lo <= seq <= hi for lo, hi in (*self.stored, *self.rejected))


@dataclass(frozen=True)
class DeadLetter:
    """A rejected message or reading, as the gateway republishes and stores it."""

    reason: Reason
    detail: str
    topic: str
    payload: bytes
    received_ms: int
    device: str | None = None
    seq: int | None = None
    index: int | None = None

    @property
    def digest(self) -> str:
        """Names the rejected bytes (and the reading's place in a batch) across redeliveries."""
        h = hashlib.sha256(
            self.topic.encode() + b"\0" + self.payload + b"\0" + str(self.index).encode()
        )
        return h.hexdigest()[:16]


Message = Reading | ReadingBatch | Status | DeviceConfig | Ack | DeadLetter


#: Ranges per acknowledgement message: well under MAX_ACK_RANGES and MAX_CONTROL_BYTES.
ACK_RANGES_PER_MESSAGE = 150


def acks_for(
    device: str, server_ts_ms: int, stored: Iterable[int], rejected: Iterable[int] = ()
) -> list[Ack]:
    """The acknowledgements of ``device``'s stored and rejected seqs, as few messages as fit
    (each at most ACK_RANGES_PER_MESSAGE ranges); one with empty ranges when there is nothing
    to acknowledge (how an ``online`` device learns the time). Gateway and test acknowledger
    both build their acknowledgements here."""
    s = ranges_from_seqs(stored)
    r = ranges_from_seqs(rejected)
    if not s and not r:
        return [Ack(device, server_ts_ms, (), ())]
    out: list[Ack] = []
    while s or r:
        n_s = min(len(s), ACK_RANGES_PER_MESSAGE)
        n_r = min(len(r), ACK_RANGES_PER_MESSAGE - n_s)
        out.append(Ack(device, server_ts_ms, s[:n_s], r[:n_r]))
        s, r = s[n_s:], r[n_r:]
    return out


def ranges_from_seqs(seqs: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Compress sequence numbers to sorted inclusive ranges: {1,2,3,7} -> ((1, 3), (7, 7))."""
    out: list[list[int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return tuple((lo, hi) for lo, hi in out)


# --------------------------------------------------------------------------- encoding


def _compact(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def _wire(obj: object, specs: Sequence[FieldSpec]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in specs:
        value = getattr(obj, spec.attr)
        if value is None or (spec.kind == "codes" and not value):
            continue
        out[spec.key] = (
            [list(p) for p in value]
            if spec.kind == "ranges"
            else (list(value) if spec.kind == "codes" else value)
        )
    return out


def reading_to_wire(reading: Reading) -> dict[str, Any]:
    """The reading as the JSON object inside a batch (no ``v``, no ``dev``)."""
    return _wire(reading, READING_FIELDS)


def encode_message(msg: Message) -> tuple[str, bytes]:
    """Encode a message to (topic, payload). Raises PayloadError if it would break a limit."""
    if isinstance(msg, Reading):
        topic = topic_for("reading", msg.device)
        payload = _compact({"v": SCHEMA_VERSION, "dev": msg.device, **reading_to_wire(msg)})
        limit = MAX_READING_BYTES
    elif isinstance(msg, ReadingBatch):
        topic = topic_for("batch", msg.device)
        body = [reading_to_wire(r) for r in msg.readings]
        payload = _compact({"v": SCHEMA_VERSION, "dev": msg.device, "readings": body})
        limit = MAX_BATCH_BYTES
    elif isinstance(msg, Status):
        topic = topic_for("status", msg.device)
        payload = _compact({"v": SCHEMA_VERSION, "dev": msg.device, **_wire(msg, STATUS_FIELDS)})
        limit = MAX_CONTROL_BYTES
    elif isinstance(msg, DeviceConfig):
        topic = topic_for("config", msg.device)
        payload = _compact({"v": SCHEMA_VERSION, "dev": msg.device, **_wire(msg, CONFIG_FIELDS)})
        limit = MAX_CONTROL_BYTES
    elif isinstance(msg, Ack):
        topic = topic_for("ack", msg.device)
        payload = _compact({"v": SCHEMA_VERSION, "dev": msg.device, **_wire(msg, ACK_FIELDS)})
        limit = MAX_CONTROL_BYTES
    elif isinstance(msg, DeadLetter):
        device = msg.device if msg.device and is_device_id(msg.device) else UNKNOWN_DEVICE
        topic = topic_for("deadletter", device)
        body = {
            "v": SCHEMA_VERSION,
            "reason": msg.reason.value,
            "detail": msg.detail,
            "topic": msg.topic,
            "payload_b64": base64.b64encode(msg.payload).decode(),
            "received_ts": msg.received_ms,
            "dev": msg.device,
            "seq": msg.seq,
            "index": msg.index,
        }
        return topic, _compact({k: v for k, v in body.items() if v is not None})
    else:
        raise PayloadError(Reason.BAD_VALUE, f"cannot encode {type(msg).__name__}")
    if len(payload) > limit:
        raise PayloadError(
            Reason.OVERSIZE, f"payload: {len(payload)} bytes, at most {limit}", device=msg.device
        )
    return topic, payload


def encode_batches(device: str, readings: Sequence[Reading]) -> list[tuple[str, bytes]]:
    """Split a backlog into batch messages of at most DEVICE_BATCH_READINGS, oldest first."""
    ordered = sorted(readings, key=lambda r: r.seq)
    return [
        encode_message(ReadingBatch(device, tuple(ordered[i : i + DEVICE_BATCH_READINGS])))
        for i in range(0, len(ordered), DEVICE_BATCH_READINGS)
    ]


# --------------------------------------------------------------------------- decoding


class _DuplicateKey(ValueError):
    pass


class _NonFinite(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _constant(name: str) -> float:
    raise _NonFinite(name)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text)
    return value


def load_json(payload: bytes, limit: int) -> dict[str, Any]:
    """Strict JSON object: UTF-8, no duplicate keys, no NaN/Infinity, within ``limit`` bytes."""
    if len(payload) > limit:
        raise PayloadError(Reason.OVERSIZE, f"payload: {len(payload)} bytes, at most {limit}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PayloadError(Reason.BAD_UTF8, f"payload: invalid UTF-8 at byte {e.start}") from None
    try:
        obj = json.loads(
            text, object_pairs_hook=_pairs, parse_constant=_constant, parse_float=_float
        )
    except _DuplicateKey as e:
        raise PayloadError(
            Reason.DUPLICATE_KEY, f"payload: key {e.args[0]!r} appears twice"
        ) from None
    except _NonFinite as e:
        raise PayloadError(
            Reason.NON_FINITE, f"payload: {e.args[0]} is not a finite number"
        ) from None
    except json.JSONDecodeError as e:
        raise PayloadError(
            Reason.BAD_JSON, f"payload: {e.msg} at line {e.lineno} column {e.colno} (char {e.pos})"
        ) from None
    except (RecursionError, ValueError) as e:
        raise PayloadError(
            Reason.BAD_JSON, f"payload: not parseable JSON ({type(e).__name__})"
        ) from None
    if not isinstance(obj, dict):
        raise PayloadError(
            Reason.NOT_OBJECT, f"payload: a JSON object is required, got {type(obj).__name__}"
        )
    return obj


def _envelope(obj: dict[str, Any], topic_device: str, extra: frozenset[str]) -> str:
    """Check ``v`` and ``dev`` of a message object against the topic; return the device id."""
    version = obj.get("v")
    if "v" not in obj:
        raise PayloadError(Reason.MISSING_FIELD, "v: is required", device=topic_device)
    if (
        isinstance(version, bool)
        or not isinstance(version, int)
        or version not in SUPPORTED_VERSIONS
    ):
        raise PayloadError(
            Reason.SCHEMA_VERSION,
            f"v: {version!r} is not a supported schema version ({sorted(SUPPORTED_VERSIONS)})",
            device=topic_device,
        )
    if "dev" not in obj:
        raise PayloadError(Reason.MISSING_FIELD, "dev: is required", device=topic_device)
    device = _check_device_id(obj["dev"], "dev")
    if device != topic_device:
        raise PayloadError(
            Reason.DEVICE_MISMATCH,
            f"dev: {device!r} published on the topic of {topic_device!r}",
            device=topic_device,
        )
    return device


def _fields_from(
    obj: Mapping[str, Any],
    specs: Sequence[FieldSpec],
    where: str,
    allowed: frozenset[str],
    device: str,
) -> dict[str, Any]:
    seq = obj.get("seq")
    seq = seq if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq <= INT31 else None
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise PayloadError(
            Reason.UNKNOWN_FIELD, f"{where}{unknown[0]}: unknown field", device=device, seq=seq
        )
    kwargs: dict[str, Any] = {}
    for spec, attr, key, kind, lo, hi in _fast_specs(specs):
        value = obj.get(key)
        # The common, valid case in a few comparisons; anything else (including every error)
        # goes through _check_value, which decides and words the error. A test holds the two
        # paths to the same answers.
        if value is None:
            if not spec.required:
                kwargs[attr] = None
                continue
        elif kind == "int":
            if type(value) is int and lo <= value <= hi:
                kwargs[attr] = value
                continue
        elif kind == "float":
            t = type(value)
            if (t is float or t is int) and lo <= value <= hi:
                kwargs[attr] = float(value)
                continue
        elif (
            kind == "str"
            and type(value) is str
            and lo <= len(value) <= hi
            and value.isascii()
            and value.isprintable()
        ):
            kwargs[attr] = value
            continue
        kwargs[attr] = _check_value(spec, value, where + key, device=device, seq=seq)
    if kwargs.get("errors") is None and any(s.attr == "errors" for s in specs):
        kwargs["errors"] = ()
    return kwargs


_FastSpec = tuple[FieldSpec, str, str, str, float, float]
_FAST_SPECS: dict[int, tuple[_FastSpec, ...]] = {}


def _fast_specs(specs: Sequence[FieldSpec]) -> tuple[_FastSpec, ...]:
    """Each spec with the bounds its fast check uses: the numeric range (finite, so that an
    infinity never passes), or for strings the length range of ``_check_value``."""
    fast = _FAST_SPECS.get(id(specs))
    if fast is None:
        rows = []
        for sp in specs:
            if sp.kind == "str":
                lo = 0.0 if sp.lo is None else sp.lo
                hi = math.inf if sp.lo is None else (sp.hi or sp.lo)
            else:
                lo = -sys.float_info.max if sp.lo is None else sp.lo
                hi = sys.float_info.max if sp.hi is None else sp.hi
            rows.append((sp, sp.attr, sp.key, sp.kind, float(lo), float(hi)))
        fast = _FAST_SPECS[id(specs)] = tuple(rows)
    return fast


_READING_KEYS = frozenset(_READING_BY_KEY)
_ENVELOPE_KEYS = frozenset({"v", "dev"})


def _reading_from(obj: Any, device: str, where: str, index: int | None) -> Reading:
    if not isinstance(obj, dict):
        raise PayloadError(
            Reason.NOT_OBJECT,
            f"{where.rstrip('.')}: a reading must be a JSON object",
            device=device,
            index=index,
        )
    try:
        values = _fields_from(obj, READING_FIELDS, where, _READING_KEYS, device)
        return Reading._from_checked(device, values)
    except PayloadError as e:
        e.index = index
        if not e.message.startswith(where):
            e.message = where + e.message
            e.args = (e.message,)
        raise


def parse_message(topic: str, payload: bytes) -> Message:
    """Decode one MQTT message. Raises PayloadError for a message that is bad as a whole.

    A batch with bad readings is not bad as a whole: the good readings come back in
    ``ReadingBatch.readings`` and each bad one as a PayloadError in ``ReadingBatch.rejected``
    (with ``index`` and, when readable, ``seq``), so it can be dead-lettered alone.
    """
    kind, topic_device = parse_topic(topic)
    try:
        return _parse(kind, topic_device, payload)
    except PayloadError as e:
        if e.device is None:
            e.device = topic_device
        raise


def _parse(kind: Kind, topic_device: str, payload: bytes) -> Message:
    if kind == "reading":
        obj = load_json(payload, MAX_READING_BYTES)
        device = _envelope(obj, topic_device, _ENVELOPE_KEYS)
        body = {k: v for k, v in obj.items() if k not in _ENVELOPE_KEYS}
        return _reading_from(body, device, "", None)
    if kind == "batch":
        obj = load_json(payload, MAX_BATCH_BYTES)
        device = _envelope(obj, topic_device, _ENVELOPE_KEYS)
        unknown = sorted(set(obj) - {"v", "dev", "readings"})
        if unknown:
            raise PayloadError(Reason.UNKNOWN_FIELD, f"{unknown[0]}: unknown field", device=device)
        items = obj.get("readings")
        if items is None:
            raise PayloadError(Reason.MISSING_FIELD, "readings: is required", device=device)
        if not isinstance(items, list):
            raise PayloadError(Reason.WRONG_TYPE, "readings: must be a list", device=device)
        if not items:
            raise PayloadError(
                Reason.EMPTY_BATCH, "readings: a batch holds at least one reading", device=device
            )
        if len(items) > MAX_BATCH_READINGS:
            raise PayloadError(
                Reason.BATCH_TOO_LARGE,
                f"readings: {len(items)} readings, at most {MAX_BATCH_READINGS}",
                device=device,
            )
        good: list[Reading] = []
        bad: list[PayloadError] = []
        for i, item in enumerate(items):
            try:
                good.append(_reading_from(item, device, f"readings[{i}].", i))
            except PayloadError as e:
                bad.append(e)
        return ReadingBatch(device, tuple(good), tuple(bad))
    if kind == "deadletter":
        obj = load_json(payload, MAX_BATCH_BYTES * 2)
        try:
            raw = base64.b64decode(obj["payload_b64"], validate=True)
            return DeadLetter(
                reason=Reason(obj["reason"]),
                detail=str(obj["detail"]),
                topic=str(obj["topic"]),
                payload=raw,
                received_ms=int(obj["received_ts"]),
                device=obj.get("dev"),
                seq=obj.get("seq"),
                index=obj.get("index"),
            )
        except (KeyError, ValueError, TypeError) as e:
            raise PayloadError(Reason.BAD_VALUE, f"dead letter: {e!r}") from None
    obj = load_json(payload, MAX_CONTROL_BYTES)
    device = _envelope(obj, topic_device, _ENVELOPE_KEYS)
    specs = {"status": STATUS_FIELDS, "config": CONFIG_FIELDS, "ack": ACK_FIELDS}[kind]
    cls = {"status": Status, "config": DeviceConfig, "ack": Ack}[kind]
    body = {k: v for k, v in obj.items() if k not in _ENVELOPE_KEYS}
    allowed = frozenset(s.key for s in specs)
    kwargs = _fields_from(body, specs, "", allowed, device)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return cls(device=device, **kwargs)  # type: ignore[operator]

"""The storage schema (InfluxDB v1) and the queries every part reads readings with.

Readings are points in one measurement, tagged by device only; dead letters are points in their
own measurement. Writers (the gateway) build points with :func:`reading_point` and
:func:`deadletter_point` and send them as line protocol (:func:`to_line`); readers (the
technicians' commands, the backend, the demo) use the query builders below, which validate or
escape every value that reaches InfluxQL. ``docs/protocol.md`` ("Storage schema") is the prose
version; ``tests/test_protocol_doc.py`` keeps the two in step.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smartbins.protocol import (
    READING_FIELDS,
    UNKNOWN_DEVICE,
    DeadLetter,
    FieldSpec,
    Reading,
    is_device_id,
)

MEASUREMENT = "reading"
DEADLETTER_MEASUREMENT = "dead_letter"
DEVICE_TAG = "device"
#: Numeric fields are written as floats, always: InfluxDB fixes a field's type at its first write.
STORED_FLOAT_FIELDS: tuple[FieldSpec, ...] = tuple(
    f for f in READING_FIELDS if f.kind in ("int", "float") and f.attr != "ts_ms"
)
#: Points are written in nanoseconds: below the reading's millisecond sit digits from its seq.
PRECISION = "ns"
NS_PER_MS = 1_000_000
#: Field set on a reading whose timestamp is not after that of a lower seq of the same device
#: (a clock that stood still or went back): stored, never merged, but not to be trusted.
SUSPECT_TS_FIELD = "ts_suspect"


@dataclass(frozen=True)
class Point:
    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: tuple[tuple[str, float | str], ...]
    time_ns: int

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...], int]:
        """InfluxDB's identity of a point: a second write with the same key overwrites it."""
        return self.measurement, self.tags, self.time_ns


def reading_time_ns(reading: Reading) -> int:
    """The stored time of a reading: its ``ts`` [ms] plus ``seq mod 10^6`` nanoseconds.

    The point key (measurement, device, time) is then unique per (device, seq): two readings
    of one device stamped with the same millisecond (a device without a good clock, after a
    power loss) are two points, where they used to be one, the later overwriting an
    acknowledged reading. A resend of the same (device, seq) has the same time and overwrites
    itself. Two seqs share a point only if they are 10^6 apart and carry the same millisecond.
    Queries with ``epoch=ms`` return ``ts`` itself (InfluxDB truncates)."""
    return reading.ts_ms * NS_PER_MS + reading.seq % NS_PER_MS


def reading_point(reading: Reading, *, suspect_ts: bool = False) -> Point:
    """The stored form of a reading. Tags come only from the reading itself (the device id):
    bin, stream and municipality are joined from the registry at query time, so moving a device
    never changes the key of a stored or resent point, and the sequence number is a field, not a
    tag, so it adds no series (it reaches the key through the time: :func:`reading_time_ns`).
    ``suspect_ts`` adds the field ``ts_suspect`` = 1 (see :data:`SUSPECT_TS_FIELD`)."""
    values: list[tuple[str, float | str]] = []
    for spec in STORED_FLOAT_FIELDS:
        v = getattr(reading, spec.attr)
        if v is not None:
            values.append((spec.key, float(v)))
    values.append(("fw", reading.fw))
    if reading.errors:
        values.append(("err", ",".join(str(c) for c in reading.errors)))
    if suspect_ts:
        values.append((SUSPECT_TS_FIELD, 1.0))
    return Point(
        MEASUREMENT, ((DEVICE_TAG, reading.device),), tuple(values), reading_time_ns(reading)
    )


def reading_from_stored(device: str, time_ms: int, values: Mapping[str, Any]) -> Reading:
    """Inverse of :func:`reading_point`, for what a query with ``epoch=ms`` returns (floats
    back to ints; ``ts_suspect`` is not part of the reading)."""
    kwargs: dict[str, Any] = {}
    for spec in STORED_FLOAT_FIELDS:
        v = values.get(spec.key)
        if v is not None:
            kwargs[spec.attr] = int(v) if spec.kind == "int" else float(v)
    return Reading(
        device=device,
        ts_ms=time_ms,
        fw=values["fw"],
        errors=stored_errors(values.get("err")),
        **kwargs,
    )


def stored_errors(err: str | None) -> tuple[int, ...]:
    """The sensor error codes of a stored ``err`` field ("2", "1,2"; None: none)."""
    return tuple(int(c) for c in err.split(",")) if err else ()


def deadletter_point(dl: DeadLetter) -> Point:
    """Dead letters are stored too. ``digest`` (a tag) tells redeliveries of the same bytes apart
    from new ones; ``time`` is when the gateway received it."""
    device = dl.device if dl.device and is_device_id(dl.device) else UNKNOWN_DEVICE
    values: list[tuple[str, float | str]] = [
        ("detail", dl.detail),
        ("topic", dl.topic),
        ("payload_b64", base64.b64encode(dl.payload).decode()),
    ]
    if dl.seq is not None:
        values.append(("seq", float(dl.seq)))
    if dl.index is not None:
        values.append(("index", float(dl.index)))
    tags = ((DEVICE_TAG, device), ("digest", dl.digest), ("reason", dl.reason.value))
    return Point(DEADLETTER_MEASUREMENT, tags, tuple(values), dl.received_ms * NS_PER_MS)


@functools.lru_cache(maxsize=1 << 16)
def _escape_key(text: str) -> str:
    """Tag keys, tag values and field keys: commas, equals signs and spaces are escaped; a
    newline cannot be, so it becomes a space (our tags are device ids, reason codes, digests).
    Cached: the same few keys and the fleet's device ids come back in every line."""
    text = text.replace("\\", "\\\\").replace("\n", " ")
    return text.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _field_value(value: float | str) -> str:
    if isinstance(value, str):
        # Inside a quoted string only the quote and the backslash are escaped; newlines are kept.
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(float(value))


def to_line(point: Point) -> str:
    """One point in InfluxDB line protocol, timestamp in nanoseconds (write with
    ``precision=``:data:`PRECISION`)."""
    measurement = point.measurement.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")
    tags = "".join(f",{_escape_key(k)}={_escape_key(v)}" for k, v in sorted(point.tags))
    values = ",".join(f"{_escape_key(k)}={_field_value(v)}" for k, v in point.fields)
    return f"{measurement}{tags} {values} {point.time_ns}"


# ------------------------------------------------------------------------------------ queries
# Every value that reaches InfluxQL passes through one of these: device ids are validated
# (their alphabet needs no escaping), counts are ints.


def device_literal(device: str) -> str:
    """A device id as an InfluxQL string literal; ValueError for anything that is not one."""
    if not isinstance(device, str) or not is_device_id(device):
        raise ValueError(f"device {device!r} is not a device id")
    return f"'{device}'"


def stored_seqs_query() -> str:
    """Every stored reading's seq, one series per device (see :func:`seqs_by_device`)."""
    return f"SELECT seq FROM {MEASUREMENT} GROUP BY {DEVICE_TAG}"


def seqs_by_device(series: list[dict[str, Any]]) -> dict[str, list[int]]:
    """The seqs of :func:`stored_seqs_query`'s answer per device, in stored order (a list, so
    that a reading stored twice under two keys shows twice)."""
    return {s["tags"][DEVICE_TAG]: [int(v[1]) for v in s["values"]] for s in series}


def summary_query() -> str:
    """Per device: how many readings are stored and the newest fill [%]."""
    return f"SELECT count(seq), last(fill) FROM {MEASUREMENT} GROUP BY {DEVICE_TAG}"


def recent_distances_query(device: str, last: int) -> str:
    """The device's ``last`` newest valid distances [mm], newest first."""
    if not isinstance(last, int) or isinstance(last, bool) or not 1 <= last <= 10_000:
        raise ValueError(f"last {last!r} must be an integer 1..10000")
    return (
        f"SELECT mm FROM {MEASUREMENT} WHERE {DEVICE_TAG} = {device_literal(device)} "
        f"AND mm >= 0 ORDER BY time DESC LIMIT {last}"
    )


# ------------------------------------------------------------------------- backend queries
# The backend's readings: latest state, one bin's history, fleet health. Times are integer
# milliseconds since the epoch (checked), device ids go through device_literal.

#: Fields the backend reads back, by stored key.
STATE_FIELDS = ("fill", "temp", "bat", "rssi", "tilt", "flags", "err", "fw", "boot", "seq",
                "interval", "dropped", "mm", "cal")


def time_ms_literal(name: str, value: int) -> str:
    """An epoch-millisecond time as InfluxQL (``1700000000000ms``); ValueError naming ``name``
    for anything that is not an integer between 1970 and 2100."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 4_102_444_800_000:
        raise ValueError(f"{name} {value!r} must be an integer time in ms between 1970 and 2100")
    return f"{value}ms"


def latest_query(since_ms: int | None = None) -> str:
    """Every device's newest reading (all fields), one series per device; only readings at or
    after ``since_ms`` when given (the incremental refresh of the backend's cache)."""
    where = ""
    if since_ms is not None:
        where = f" WHERE time >= {time_ms_literal('since_ms', since_ms)}"
    return f"SELECT * FROM {MEASUREMENT}{where} GROUP BY {DEVICE_TAG} ORDER BY time DESC LIMIT 1"


def devices_query() -> str:
    """Every device that has readings (from InfluxDB's index: no scan of the points)."""
    return f'SHOW TAG VALUES FROM {MEASUREMENT} WITH KEY = "{DEVICE_TAG}"'


def recent_query(since_ms: int) -> str:
    """Every reading since ``since_ms`` with the fields the latest state shows, one series
    (the device as a column), in time order: the backend's incremental refresh keeps each
    device's newest. Cheaper for InfluxDB 1.6 than :func:`latest_query` (no descending
    cursors) when the window is short."""
    fields = ", ".join(("fill", "temp", "bat", "rssi", "tilt", "flags", "err", "fw", "interval",
                        "dropped", "boot", "seq"))
    return (
        f"SELECT {DEVICE_TAG}, {fields} FROM {MEASUREMENT} "
        f"WHERE time >= {time_ms_literal('since_ms', since_ms)}"
    )


#: Aggregates of a downsampled history: mean levels, the lowest battery, the largest tilt.
_HISTORY_AGGREGATES = (
    "mean(fill) AS fill, mean(temp) AS temp, min(bat) AS bat, mean(rssi) AS rssi, "
    "max(tilt) AS tilt"
)


#: The fields of a history point, raw.
HISTORY_FIELDS = ("fill", "temp", "bat", "rssi", "tilt")


def history_query(
    device: str,
    start_ms: int,
    end_ms: int,
    every_s: int | None = None,
    *,
    limit: int | None = None,
) -> str:
    """One device's readings in [start_ms, end_ms): raw (at most ``limit``, oldest first), or
    averaged per ``every_s`` bucket (as :func:`history_buckets` does in Python)."""
    where = (
        f"WHERE {DEVICE_TAG} = {device_literal(device)} "
        f"AND time >= {time_ms_literal('start_ms', start_ms)} "
        f"AND time < {time_ms_literal('end_ms', end_ms)}"
    )
    if every_s is None:
        tail = ""
        if limit is not None:
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
                raise ValueError(f"limit {limit!r} must be a positive integer")
            tail = f" LIMIT {limit}"
        return f"SELECT {', '.join(HISTORY_FIELDS)} FROM {MEASUREMENT} {where}{tail}"
    if not isinstance(every_s, int) or isinstance(every_s, bool) or not 1 <= every_s <= 31 * 86_400:
        raise ValueError(f"every_s {every_s!r} must be an integer 1..2678400")
    return (
        f"SELECT {_HISTORY_AGGREGATES} FROM {MEASUREMENT} {where} "
        f"GROUP BY time({every_s}s) fill(none)"
    )


def history_buckets(
    rows: list[tuple[int, float | None, float | None, float | None, float | None, float | None]],
    every_s: int,
) -> list[tuple[int, float | None, float | None, float | None, float | None, float | None]]:
    """Raw history rows ``(time_ms, fill, temp, bat, rssi, tilt)``, oldest first, averaged per
    ``every_s`` bucket exactly as :func:`history_query` with ``every_s`` has InfluxDB do it:
    buckets aligned to the epoch and named by their start, mean fill, temp and rssi, lowest
    battery, highest tilt, each over the values present; a bucket without any value is left
    out (``fill(none)``). InfluxDB 1.6 takes three times as long for the grouped query as for
    the raw rows, so short series are averaged here."""
    width = every_s * 1000
    out: list[tuple[int, float | None, float | None, float | None, float | None, float | None]] = []
    i, n = 0, len(rows)
    while i < n:
        start = rows[i][0] - rows[i][0] % width
        j = i
        while j < n and rows[j][0] < start + width:
            j += 1
        cols = [[r[k] for r in rows[i:j] if r[k] is not None] for k in range(1, 6)]
        fill, temp, bat, rssi, tilt = cols
        values = (
            sum(fill) / len(fill) if fill else None,
            sum(temp) / len(temp) if temp else None,
            min(bat) if bat else None,
            sum(rssi) / len(rssi) if rssi else None,
            max(tilt) if tilt else None,
        )
        if any(v is not None for v in values):
            out.append((start, *values))
        i = j
    return out


def health_query(since_ms: int) -> str:
    """Per device over the window since ``since_ms``: battery at its start and end, the boot
    count's range, readings, readings with a sensor error, and the newest seen time."""
    return (
        f"SELECT first(bat) AS bat_first, last(bat) AS bat_last, min(boot) AS boot_min, "
        f"max(boot) AS boot_max, count(seq) AS readings, count(err) AS errors, "
        f"mean(rssi) AS rssi "
        f"FROM {MEASUREMENT} WHERE time >= {time_ms_literal('since_ms', since_ms)} "
        f"GROUP BY {DEVICE_TAG}"
    )


def deadletters_query(since_ms: int) -> str:
    """Dead letters since ``since_ms`` counted per device and reason."""
    return (
        f"SELECT count(detail) AS n FROM {DEADLETTER_MEASUREMENT} "
        f"WHERE time >= {time_ms_literal('since_ms', since_ms)} GROUP BY {DEVICE_TAG}, reason"
    )


def fill_history_query(start_ms: int, end_ms: int) -> str:
    """Every device's fill [%], flags and sensor errors in [start_ms, end_ms), one series per
    device, oldest first (what the planning service forecasts from)."""
    return (
        f"SELECT fill, flags, err FROM {MEASUREMENT} "
        f"WHERE time >= {time_ms_literal('start_ms', start_ms)} "
        f"AND time < {time_ms_literal('end_ms', end_ms)} GROUP BY {DEVICE_TAG}"
    )

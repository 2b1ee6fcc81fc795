"""Hypothesis strategies for protocol messages over their whole valid range."""

from __future__ import annotations

from hypothesis import strategies as st

from smartbins import protocol as p

device_ids = st.from_regex(p.DEVICE_ID_RE, fullmatch=True)
int31 = st.integers(0, p.INT31)
timestamps = st.integers(p.TS_MIN_MS, p.TS_MAX_MS)
fw_versions = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=32
)


def _floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def readings(draw: st.DrawFn, device: str | None = None) -> p.Reading:
    has_distance = draw(st.booleans())
    errors = tuple(draw(st.lists(st.integers(1, p.ERROR_CODE_MAX), max_size=p.MAX_ERROR_CODES)))
    if not has_distance and not errors:
        errors = (int(p.SensorError.ECHO_TIMEOUT),)
    return p.Reading(
        device=device or draw(device_ids),
        seq=draw(int31),
        boot=draw(int31),
        ts_ms=draw(timestamps),
        fw=draw(fw_versions),
        interval_s=draw(st.integers(1, 7 * 86_400)),
        cal=draw(int31),
        flags=draw(st.integers(0, p.FLAGS_MAX)),
        dropped=draw(int31),
        distance_mm=draw(st.integers(0, 20_000)) if has_distance else None,
        fill_pct=draw(_floats(-100, 1000)) if has_distance else None,
        temp_c=draw(st.none() | _floats(-60, 500)),
        tilt_deg=draw(st.none() | _floats(0, 180)),
        battery_mv=draw(st.none() | st.integers(0, 20_000)),
        rssi_dbm=draw(st.none() | st.integers(-150, 0)),
        errors=errors,
    )


@st.composite
def batches(draw: st.DrawFn) -> p.ReadingBatch:
    device = draw(device_ids)
    items = draw(st.lists(readings(device), min_size=1, max_size=20))
    return p.ReadingBatch(device, tuple(items))


@st.composite
def acks(draw: st.DrawFn) -> p.Ack:
    def ranges() -> st.SearchStrategy[tuple[tuple[int, int], ...]]:
        return st.lists(st.tuples(int31, st.integers(0, 1000)), max_size=10).map(
            lambda xs: tuple((lo, min(lo + n, p.INT31)) for lo, n in xs)
        )

    return p.Ack(draw(device_ids), draw(timestamps), draw(ranges()), draw(ranges()))


@st.composite
def configs(draw: st.DrawFn) -> p.DeviceConfig:
    empty = draw(st.integers(1, 20_000))
    return p.DeviceConfig(
        device=draw(device_ids),
        server_ts_ms=draw(timestamps),
        cal=draw(int31),
        empty_mm=empty,
        full_mm=draw(st.integers(0, empty - 1)),
        interval_s=draw(st.integers(10, 7 * 86_400)),
        near_full_pct=draw(_floats(0, 200)),
        fire_temp_c=draw(_floats(0, 500)),
    )


@st.composite
def statuses(draw: st.DrawFn) -> p.Status:
    state = draw(st.sampled_from(["online", "lost"]))
    if state == "lost":
        return p.Status(draw(device_ids), "lost")
    return p.Status(
        draw(device_ids),
        "online",
        ts_ms=draw(timestamps),
        boot=draw(int31),
        fw=draw(fw_versions),
        battery_mv=draw(st.integers(0, 20_000)),
        rssi_dbm=draw(st.integers(-150, 0)),
        dropped=draw(int31),
        buffered=draw(int31),
    )


messages = st.one_of(readings(), batches(), acks(), configs(), statuses())


#: Any JSON value a field could be given instead of its own.
json_values = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.lists(st.integers(), max_size=3)
)


@st.composite
def mutated(draw: st.DrawFn, obj: dict, keep: float = 0.8) -> dict:
    """``obj`` with each key kept as it is (about ``keep`` of them), dropped, or given an
    arbitrary value, plus now and then an unknown key: most draws are close to valid, so the
    checks behind the envelope (and the valid branch itself) are reached, not only the first."""
    # A choice among 100 (sampled_from draws its index about evenly; floats(0, 1) would
    # favour the ends, 0 and 1, and break far more fields than ``keep`` says).
    kept = round(100 * keep)
    dropped = (100 - kept) // 4
    choices = st.sampled_from(range(100))
    out = {}
    for key, value in obj.items():
        choice = draw(choices)
        if choice < kept:
            out[key] = value
        elif choice < kept + dropped:
            continue
        else:
            out[key] = draw(json_values)
    if draw(st.integers(0, 9)) == 0:
        out["zz"] = draw(json_values)
    return out
